/* main.c - the g4 command line: run, info, synth, bench.
 *
 *   g4 run   [MODEL] [--ids "2 105 ..."] [-n N] [sampling] [--ctx N] [--batch N] [--bf16]
 *            [--kernels NAME] [--mem-limit SIZE] [--dump-logits FILE] [--tap NAME[.L]=FILE]
 *   g4 info  FILE [--ctx N]
 *   g4 synth --config 12b|tiny --type f32|bf16|q8_0|q4_0 [--seed N] -o FILE
 *   g4 bench [MODEL] [--pp N] [--tg N] [-t N] [--ctx N] [--kernels NAME] [--reps R]
 *
 * MODEL is a GGUF file, a .safetensors / index.json / folder with config.json, a synthetic spec
 * "synth:CONFIG[:TYPE[:SEED]]" (built in memory), or omitted: the default model, synthetic
 * "tiny" in f32 with seed 1.
 *
 * Output convention of `run`: the generated token ids go to stdout (one line, flushed as they
 * come), everything else (model, config, kernels, memory plan, timings) to stderr, so
 * `g4 run ... 2>/dev/null` is just the ids. Errors are one line "g4: <message>" and exit 1; a
 * bad command line prints the usage of the command and exits 2.
 */
#include "g4.h"
#include "../bench/bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- usage ------------------------------------------------------------------------------ */

static const char *usage_main =
    "usage: g4 COMMAND [options]     (g4 COMMAND --help for the options of one command)\n"
    "\n"
    "commands:\n"
    "  run    generate token ids with a model (default: the built-in synthetic tiny model)\n"
    "  info   describe a model file: metadata, tensors, memory estimate\n"
    "  synth  write a deterministic synthetic model (tiny or 12B shape) as GGUF\n"
    "  bench  time prefill and decode, print JSON lines (llama-bench style)\n"
    "\n"
    "MODEL, where a command takes one:\n"
    "  path.gguf                         GGUF (general.architecture = gemma4)\n"
    "  file.safetensors | index.json | folder   HF checkpoint with config.json beside it\n"
    "  synth:CONFIG[:TYPE[:SEED]]        synthetic weights in memory, e.g. synth:tiny:q8_0:7,\n"
    "                                    synth:12b:q4_0:1 (TYPE default f32, SEED default 1)\n"
    "  (omitted)                         synth:tiny:f32:1\n";

static const char *usage_run =
    "usage: g4 run [MODEL] [options]\n"
    "  -p TEXT               a user message: the Gemma 4 chat template wraps it (with any\n"
    "                        --image/--audio), the reply streams as text\n"
    "  --system TEXT         a system turn before the user message (with -p or --chat)\n"
    "  --think               thinking on (<|think|>); off by default (empty thought channel)\n"
    "  --raw                 with -p: tokenize TEXT as it is (specials allowed), <bos> first,\n"
    "                        no template\n"
    "  --chat                interactive chat on stdin, one message per line; the KV cache is\n"
    "                        kept between turns (default --ctx 4096)\n"
    "  --vocab PATH          tokenizer: a GGUF, a tokenizer.json or a folder (default: the\n"
    "                        model's own; the built-in tiny model has a small one)\n"
    "  --ids \"2 105 ...\"     prompt as token ids, space or comma separated (default \"2\");\n"
    "                        the output is ids too\n"
    "  -n N                  tokens to generate (default 16); stops early on the stop ids\n"
    "  --temp T              temperature, 0 = greedy (default 0)\n"
    "  --top-k K             keep the K most likely tokens, 0 = off (default 0)\n"
    "  --top-p P             nucleus sampling, 1 = off (default 1)\n"
    "  --seed S              sampler seed (default 1)\n"
    "  --ctx N               KV cache positions (default: prompt + N)\n"
    "  --batch N             prompt tokens per forward pass (default 32)\n"
    "  --bf16                round to bf16 where the HF bf16 reference does (spec 1.6a)\n"
    "  --kernels NAME        kernel table (default: best for this CPU, or $G4_KERNELS): avx512,\n"
    "                        avx2, neon, ref; the opt-in q8 mode (int8 activations in decode,\n"
    "                        faster, not exact): avx512-q8, avx2-q8, neon-q8, ref-q8\n"
    "  -t N                  threads for the opt kernels (sets $G4_THREADS; default: online\n"
    "                        CPUs); results do not depend on it\n"
    "  --mem-limit SIZE      refuse to run above this (e.g. 16G; default: MemAvailable)\n"
    "  --image FILE.png      an image: <|image> + N x <|image|> + <image|> replaces the\n"
    "                        image placeholder id in --ids (or goes after the first token)\n"
    "  --audio FILE.wav      a clip: <|audio> + n x <|audio|> + <audio|>, placed the same way\n"
    "  --mmproj FILE         GGUF projector (clip, gemma4uv/gemma4ua) for a GGUF text model\n"
    "  --max-soft-tokens N   image token budget: 70, 140, 280, 560 or 1120 (default 280)\n"
    "  --max-audio-seconds S longest clip accepted (default 30, the model card's limit; 0 = any)\n"
    "  --dump-logits FILE    write the logits of every prompt position: float32 LE [T][vocab]\n"
    "  --tap NAME[.L]=FILE   write the rows the decoder taps at NAME (embed, layer_out,\n"
    "                        attn_out, ffn_out, final_norm, logits), layer L or every call,\n"
    "                        for the prompt positions: float32 LE [calls*T][n]; repeatable\n"
    "ids go to stdout; model, config, kernels, memory plan and timings to stderr.\n";

static const char *usage_info =
    "usage: g4 info FILE [--ctx N]\n"
    "  FILE       GGUF, .safetensors, index.json or a checkpoint folder\n"
    "  --ctx N    context for the memory estimate (default 4096)\n";

static const char *usage_synth =
    "usage: g4 synth --config 12b|tiny --type f32|bf16|q8_0|q4_0 [--seed N] [--vocab PATH]\n"
    "                [--mmproj FILE] -o FILE\n"
    "  --vocab PATH   put a tokenizer (GGUF, tokenizer.json or folder) in the file; the model's\n"
    "                 vocabulary grows to cover it and the suppressed ids follow its pieces\n"
    "  --mmproj FILE  also write the vision/audio embedders as a GGUF projector (clip)\n"
    "  writes deterministic synthetic weights (a function of config, type and seed) as GGUF,\n"
    "  streaming row by row; `g4 run FILE` then gives the same tokens as `g4 run\n"
    "  synth:CONFIG:TYPE:SEED`. Other types g4 can encode (f16, q4_k, q6_k) also work when the\n"
    "  row lengths fit their blocks.\n";

static const char *usage_bench =
    "usage: g4 bench [MODEL] [options]\n"
    "  --pp N          prefill test of N tokens (default 16; 0 = skip)\n"
    "  --tg N          decode test of N steps after the prefill (default 8; 0 = skip)\n"
    "  --reps R        timed repetitions per test (default 3)\n"
    "  -t N            threads for the opt kernels (sets $G4_THREADS; default: online CPUs)\n"
    "  --ctx N         KV cache positions (default pp + tg)\n"
    "  --kernels NAME  kernel table (default: best for this CPU; see g4 run --help)\n"
    "prints one JSON object per test on stdout.\n"
    "       g4 bench --kernels-micro [--help]    per-kernel GFLOP/s and GB/s beside the\n"
    "  machine's measured DRAM bandwidth and FMA peak\n"
    "       g4 bench --tokenizer [VOCAB] [--text FILE] [--tokens N] [--reps R]\n"
    "  tokenizer speed on a long document (default: the test corpus repeated to 262144 tokens,\n"
    "  with $G4_GEMMA3_TOKENIZER or the test vocabulary)\n";

/* print one error line, exit 1 */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("g4: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* a bad command line: say what, print the usage, exit 2 */
static void bad_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void bad_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("g4: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs(usage, stderr);
    exit(2);
}

/* ---- flag parsing ----------------------------------------------------------------------- */

/* A tiny getopt: flags "--name VALUE", "--name=VALUE" or "-n VALUE"; positional arguments are
 * collected in order. */
typedef struct {
    int argc; char **argv; int i;
    const char *usage;
    const char *pos[4]; int npos;
} args;

/* if argv[i] is flag `name`, consume it and set *val to its value (NULL for switches) */
static int flag(args *a, const char *name, int takes_value, const char **val)
{
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(s, name, n) != 0) return 0;
    if (s[n] == '=' && takes_value) { *val = s + n + 1; a->i++; return 1; }
    if (s[n] != 0) return 0;
    if (!takes_value) { *val = NULL; a->i++; return 1; }
    if (a->i + 1 >= a->argc) bad_usage(a->usage, "%s needs a value", name);
    *val = a->argv[a->i + 1];
    a->i += 2;
    return 1;
}

static long parse_int(const args *a, const char *name, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        bad_usage(a->usage, "%s: '%s' is not an integer in [%ld, %ld]", name, v, lo, hi);
    return x;
}

static double parse_float(const args *a, const char *name, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        bad_usage(a->usage, "%s: '%s' is not a number in [%g, %g]", name, v, lo, hi);
    return x;
}

static uint64_t parse_u64(const args *a, const char *name, const char *v)
{
    char *end;
    errno = 0;
    if (*v == '-') bad_usage(a->usage, "%s: '%s' is not a non-negative integer", name, v);
    unsigned long long x = strtoull(v, &end, 0);
    if (errno || end == v || *end) bad_usage(a->usage, "%s: '%s' is not a non-negative integer", name, v);
    return (uint64_t)x;
}

/* call when no known flag matched argv[a->i] */
static void positional_or_bad(args *a, int max_pos)
{
    const char *s = a->argv[a->i];
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) { fputs(a->usage, stdout); exit(0); }
    if (s[0] == '-' && s[1] != 0) bad_usage(a->usage, "unknown option '%s'", s);
    if (a->npos >= max_pos) bad_usage(a->usage, "unexpected argument '%s'", s);
    a->pos[a->npos++] = s;
    a->i++;
}

/* ---- sizes and printing ----------------------------------------------------------------- */

static const char *human(size_t b, char *buf)   /* buf >= 32 */
{
    if (b >= (size_t)1 << 30) snprintf(buf, 32, "%.2f GiB", b / 1073741824.0);
    else if (b >= (size_t)1 << 20) snprintf(buf, 32, "%.1f MiB", b / 1048576.0);
    else if (b >= 1024) snprintf(buf, 32, "%.1f KiB", b / 1024.0);
    else snprintf(buf, 32, "%zu B", b);
    return buf;
}

static void print_config(FILE *f, const g4_config *c)
{
    int ng = 0;
    for (int l = 0; l < c->n_layers; l++) ng += c->is_global[l];
    fprintf(f, "config   %s: %d layers (%d sliding + %d global), d_model %d, d_ff %d, heads %d, "
            "kv heads %d/%d, head_dim %d/%d, vocab %d, window %d, rope %g/%g (partial %g), "
            "eps %g, softcap %g, k_eq_v %d\n",
            c->name, c->n_layers, c->n_layers - ng, ng, c->d_model, c->d_ff, c->n_heads,
            c->n_kv_swa, c->n_kv_full, c->hd_swa, c->hd_full, c->vocab, c->window,
            (double)c->rope_theta_swa, (double)c->rope_theta_full, (double)c->rope_partial_full,
            (double)c->eps, (double)c->softcap, c->k_eq_v);
    fprintf(f, "tokens   bos %d, eos %d, pad %d, stop", c->bos, c->eos, c->pad);
    for (int i = 0; i < c->n_stop; i++) fprintf(f, " %d", c->stop[i]);
    fprintf(f, ", suppressed");
    for (int i = 0; i < c->n_suppress; i++) fprintf(f, " %d", c->suppress[i]);
    if (!c->n_suppress) fprintf(f, " none");
    fputc('\n', f);
}

/* Weight bytes of config c with matrices in type t, without building the model (the memory
 * plan of a synthetic model is checked before its 12B of values are generated). Counts the same
 * tensors as g4_model_weight_bytes. */
static size_t planned_weight_bytes(const g4_config *c, g4_type t)
{
    size_t d = (size_t)c->d_model;
    size_t n = g4_row_bytes(t, c->d_model) * (size_t)c->vocab + d * 4;
    for (int l = 0; l < c->n_layers; l++) {
        size_t hd = (size_t)g4_hd(c, l), nkv = (size_t)g4_nkv(c, l), nq = (size_t)c->n_heads;
        int has_v = !(c->k_eq_v && c->is_global[l]);
        n += g4_row_bytes(t, c->d_model) * (nq * hd + nkv * hd * (has_v ? 2 : 1));   /* q, k, v */
        n += g4_row_bytes(t, (int64_t)(nq * hd)) * d;                               /* o */
        n += g4_row_bytes(t, c->d_model) * (size_t)c->d_ff * 2;                     /* gate, up */
        n += g4_row_bytes(t, c->d_ff) * d;                                          /* down */
        n += (4 * d + 2 * hd + 1) * 4;                                              /* norms, scalar */
    }
    if (c->mm_dim > 0) {       /* the synthetic embedders (ref/synth.c): f32, else bf16 matrices */
        g4_type mt = t == G4_T_F32 ? G4_T_F32 : G4_T_BF16;
        size_t e = (size_t)c->mm_dim;
        n += g4_row_bytes(mt, G4_PATCH_DIM) * e + g4_row_bytes(mt, c->mm_dim) * d +
             g4_row_bytes(mt, c->audio_dim) * d +
             ((size_t)2 * G4_PATCH_DIM + 5 * e + 2 * (size_t)c->mm_posemb * e) * sizeof(float);
    }
    return n;
}

/* Activation bytes of g4_state for (ctx, batch): the buffers listed in g4.h's g4_state. */
static size_t planned_act_bytes(const g4_config *c, int ctx, int batch, int all_logits)
{
    size_t hdmax = (size_t)(c->hd_full > c->hd_swa ? c->hd_full : c->hd_swa), kvmax = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t kv = (size_t)g4_nkv(c, l) * g4_hd(c, l);
        if (kv > kvmax) kvmax = kv;
    }
    size_t B = (size_t)batch;
    size_t f = B * (3 * (size_t)c->d_model + 2 * (size_t)c->n_heads * hdmax + 2 * kvmax +
                    2 * (size_t)c->d_ff)
             + (size_t)ctx + B + (size_t)c->vocab * (all_logits ? B : 1)
             + 2 * (size_t)c->vocab;  /* sampler scratch */
    return f * 4;
}

/* ---- opening a model -------------------------------------------------------------------- */

typedef struct {
    int synthetic;
    g4_config cfg;             /* synthetic: the config */
    g4_type type;              /* synthetic: matrix type */
    uint64_t seed;
} model_spec;

/* "synth:CONFIG[:TYPE[:SEED]]" or NULL (the default) -> synthetic; anything else is a path */
static void parse_spec(const char *s, model_spec *ms)
{
    memset(ms, 0, sizeof *ms);
    if (s && strncmp(s, "synth:", 6) != 0) return;
    ms->synthetic = 1;
    char buf[128], *parts[4] = { "tiny", "f32", "1", NULL };
    if (s) {
        snprintf(buf, sizeof buf, "%s", s + 6);
        char *p = buf;
        for (int i = 0; i < 3 && p; i++) {
            char *colon = strchr(p, ':');
            if (colon) *colon = 0;
            if (*p) parts[i] = p;
            p = colon ? colon + 1 : NULL;
        }
        if (p) die("%s: a synthetic model is synth:CONFIG[:TYPE[:SEED]]", s);
    }
    if (g4_config_builtin(parts[0], &ms->cfg))
        die("%s: unknown config '%s' (known: 12b, tiny)", s ? s : "default model", parts[0]);
    int t = g4_type_from_name(parts[1]);
    if (t < 0) die("%s: unknown weight type '%s' (f32, bf16, q8_0, q4_0, ...)", s, parts[1]);
    ms->type = (g4_type)t;
    char *end;
    errno = 0;
    ms->seed = strtoull(parts[2], &end, 0);
    if (errno || *end || parts[2][0] == '-') die("%s: seed '%s' is not a non-negative integer", s, parts[2]);
}

/* Open the model; the memory plan (weights + kv + act) is checked against `limit` before a
 * synthetic model is generated (files are mapped, so it is checked right after the map). */
static double open_model(const char *spec, g4_model *m, size_t kv_act, size_t limit)
{
    model_spec ms;
    parse_spec(spec, &ms);
    g4_err err = {{0}};
    double t0 = g4_now();
    if (ms.synthetic) {
        size_t w = planned_weight_bytes(&ms.cfg, ms.type);
        char b1[32], b2[32];
        if (limit && w + kv_act > limit)
            die("synthetic %s %s needs %s (weights %s) but the memory limit is %s",
                ms.cfg.name, g4_type_name(ms.type), human(w + kv_act, b1), human(w, b2),
                human(limit, (char[32]){0}));
        if (g4_model_synth(m, &ms.cfg, ms.type, ms.seed, &err)) die("%s", err.msg);
    } else {
        if (g4_model_load(m, spec, &err)) die("%s", err.msg);
    }
    return g4_now() - t0;
}

static void check_plan(const g4_model *m, int ctx, int batch, int all_logits, size_t limit,
                       const char *limit_src, FILE *f)
{
    size_t w = g4_model_weight_bytes(m), kv = g4_kv_bytes(&m->cfg, ctx);
    size_t act = planned_act_bytes(&m->cfg, ctx, batch, all_logits);
    size_t total = w + kv + act;
    char b[5][32];
    if (f)
        fprintf(f, "memory   weights %s + KV %s (ctx %d) + activations %s = %s; limit %s (%s)\n",
                human(w, b[0]), human(kv, b[1]), ctx, human(act, b[2]), human(total, b[3]),
                limit ? human(limit, b[4]) : "none", limit_src);
    if (limit && total > limit)
        die("the model needs %s (weights %s + KV %s at ctx %d + activations %s) but the limit is "
            "%s (%s)", human(total, b[0]), human(w, b[1]), human(kv, b[2]), ctx, human(act, b[3]),
            human(limit, b[4]), limit_src);
}

/* ---- little-endian float32 output ------------------------------------------------------- */

static int host_is_le(void) { const uint16_t one = 1; return *(const uint8_t *)&one == 1; }

/* write n floats as little-endian float32 */
static int write_f32le(FILE *f, const float *x, size_t n)
{
    if (host_is_le()) return fwrite(x, sizeof(float), n, f) == n ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u; memcpy(&u, &x[i], 4);
        uint8_t b[4] = { (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
        if (fwrite(b, 1, 4, f) != 4) return -1;
    }
    return 0;
}

/* ---- taps ------------------------------------------------------------------------------- */

#define MAX_TAPS 16
typedef struct {
    char name[64]; int layer;  /* layer -2 = every call of that name */
    const char *path; FILE *f;
    long rows; int n;          /* rows written, row length */
    int write_err;
} tap_file;

typedef struct {
    tap_file t[MAX_TAPS]; int n;
    int active;                /* only the prompt positions are written */
    char seen[512];            /* names the decoder called, for the error message */
} taps;

static void tap_cb(void *ctx, const char *name, int layer, const float *x, int T, int n)
{
    taps *tp = ctx;
    if (!strstr(tp->seen, name) && strlen(tp->seen) + strlen(name) + 2 < sizeof tp->seen) {
        if (tp->seen[0]) strcat(tp->seen, ", ");
        strcat(tp->seen, name);
    }
    if (!tp->active) return;
    for (int i = 0; i < tp->n; i++) {
        tap_file *t = &tp->t[i];
        if (strcmp(t->name, name) != 0 || (t->layer != -2 && t->layer != layer)) continue;
        if (t->rows && t->n != n) { t->write_err = 1; continue; }
        t->n = n;
        if (write_f32le(t->f, x, (size_t)T * n)) t->write_err = 1;
        t->rows += T;
    }
}

/* NAME[.LAYER]=FILE */
static void parse_tap(const args *a, taps *tp, const char *v)
{
    if (tp->n == MAX_TAPS) bad_usage(a->usage, "--tap: at most %d taps", MAX_TAPS);
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1]) bad_usage(a->usage, "--tap '%s': expected NAME[.LAYER]=FILE", v);
    tap_file *t = &tp->t[tp->n++];
    memset(t, 0, sizeof *t);
    size_t n = (size_t)(eq - v);
    if (n >= sizeof t->name) bad_usage(a->usage, "--tap '%s': name too long", v);
    memcpy(t->name, v, n);
    t->layer = -2;
    char *dot = strrchr(t->name, '.');
    if (dot) {
        char *end;
        long l = strtol(dot + 1, &end, 10);
        if (end == dot + 1 || *end || l < 0 || l >= G4_MAX_LAYERS)
            bad_usage(a->usage, "--tap '%s': the layer after '.' must be a number", v);
        t->layer = (int)l;
        *dot = 0;
    }
    t->path = eq + 1;
}

/* ---- g4 run ----------------------------------------------------------------------------- */

static int parse_ids(const char *s, int **out)
{
    int cap = 16, n = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) die("out of memory");
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX) { free(ids); return -1; }
        if (n == cap) {
            cap *= 2;
            int *q = realloc(ids, (size_t)cap * sizeof *ids);
            if (!q) die("out of memory");
            ids = q;
        }
        ids[n++] = (int)v;
        p = end;
    }
    *out = ids;
    return n;
}

/* ---- multimodal prompt (spec 2.4, 3 item 4) ---------------------------------------------- */

/* One media item spliced into the prompt: begin id, n soft tokens (with their rows), end id. */
typedef struct {
    int begin, soft, end;      /* <|image> / <|image|> / <image|>, or the audio ids */
    int n;                     /* soft tokens */
    float *rows;               /* [n][d_model] embedder output, used unscaled */
    int bidirectional;         /* 1 for images: a g4_block on sliding layers (spec 2.5) */
} media;

/* Expand ids: each media item replaces the first occurrence of its soft-token id in ids (the
 * placeholder the chat template writes), or, when absent, goes after the first token (BOS).
 * Out: tokens [n], mm rows [n][d] and mask [n], and the image blocks. */
static int expand_prompt(const int *ids, int n_ids, media *md, int n_md, int d, int **tok_out,
                         float **mm_out, uint8_t **mask_out, g4_block *blocks, int *n_blocks)
{
    int total = n_ids;
    for (int i = 0; i < n_md; i++) total += md[i].n + 2;   /* upper bound: no placeholder */
    int *tok = malloc((size_t)total * sizeof *tok);
    float *mm = calloc((size_t)total * d, sizeof *mm);
    uint8_t *mask = calloc((size_t)total, 1);
    if (!tok || !mm || !mask) die("out of memory for a prompt of %d tokens", total);
    int at[8];                                       /* where each item goes in ids */
    for (int i = 0; i < n_md; i++) {
        at[i] = -1;
        for (int j = 0; j < n_ids && at[i] < 0; j++) if (ids[j] == md[i].soft) at[i] = j;
    }
    int o = 0, nb = 0, placed[8] = { 0 };
    for (int j = 0; j <= n_ids; j++) {
        for (int i = 0; i < n_md; i++) {
            int here = at[i] >= 0 ? at[i] == j : j == (n_ids > 0 ? 1 : 0);
            if (!here || placed[i]) continue;
            placed[i] = 1;
            tok[o++] = md[i].begin;
            if (md[i].bidirectional) { blocks[nb].start = o; blocks[nb].end = o + md[i].n; nb++; }
            for (int r = 0; r < md[i].n; r++, o++) {
                tok[o] = md[i].soft; mask[o] = 1;
                memcpy(mm + (size_t)o * d, md[i].rows + (size_t)r * d, (size_t)d * sizeof *mm);
            }
            tok[o++] = md[i].end;
        }
        if (j == n_ids) break;
        int is_placeholder = 0;
        for (int i = 0; i < n_md; i++) if (at[i] == j) is_placeholder = 1;
        if (!is_placeholder) tok[o++] = ids[j];
    }
    *tok_out = tok; *mm_out = mm; *mask_out = mask; *n_blocks = nb;
    return o;
}

static int is_stop(const g4_config *c, int tok)
{
    for (int i = 0; i < c->n_stop; i++) if (c->stop[i] == tok) return 1;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    args a = { argc, argv, 0, usage_run, {0}, 0 };
    const char *ids_s = "2", *kernels = NULL, *dump = NULL, *v;
    long n_gen = 16, ctx = 0, batch = 32, top_k = 0;
    double temp = 0, top_p = 1;
    uint64_t seed = 1;
    int bf16 = 0;
    size_t limit = 0; const char *limit_src = "MemAvailable";
    const char *image = NULL, *audio = NULL, *mmproj = NULL;
    const char *text = NULL, *system = NULL, *vocab = NULL;
    int think = 0, raw = 0, chat = 0;
    long max_soft = 280; double max_audio_s = 30;
    static taps tp;
    while (a.i < argc) {
        if (flag(&a, "--ids", 1, &v)) ids_s = v;
        else if (flag(&a, "-p", 1, &v)) text = v;
        else if (flag(&a, "--system", 1, &v)) system = v;
        else if (flag(&a, "--think", 0, &v)) think = 1;
        else if (flag(&a, "--raw", 0, &v)) raw = 1;
        else if (flag(&a, "--chat", 0, &v)) chat = 1;
        else if (flag(&a, "--vocab", 1, &v)) vocab = v;
        else if (flag(&a, "--image", 1, &v)) image = v;
        else if (flag(&a, "--audio", 1, &v)) audio = v;
        else if (flag(&a, "--mmproj", 1, &v)) mmproj = v;
        else if (flag(&a, "--max-soft-tokens", 1, &v)) {
            max_soft = parse_int(&a, "--max-soft-tokens", v, 70, 1120);
            if (max_soft != 70 && max_soft != 140 && max_soft != 280 && max_soft != 560 && max_soft != 1120)
                bad_usage(a.usage, "--max-soft-tokens must be 70, 140, 280, 560 or 1120, not %ld", max_soft);
        }
        else if (flag(&a, "--max-audio-seconds", 1, &v)) max_audio_s = parse_float(&a, "--max-audio-seconds", v, 0, 1e6);
        else if (flag(&a, "-n", 1, &v)) n_gen = parse_int(&a, "-n", v, 0, 1 << 24);
        else if (flag(&a, "--temp", 1, &v)) temp = parse_float(&a, "--temp", v, 0, 1e6);
        else if (flag(&a, "--top-k", 1, &v)) top_k = parse_int(&a, "--top-k", v, 0, INT32_MAX);
        else if (flag(&a, "--top-p", 1, &v)) top_p = parse_float(&a, "--top-p", v, 0, 1);
        else if (flag(&a, "--seed", 1, &v)) seed = parse_u64(&a, "--seed", v);
        else if (flag(&a, "--ctx", 1, &v)) ctx = parse_int(&a, "--ctx", v, 1, 1 << 24);
        else if (flag(&a, "--batch", 1, &v)) batch = parse_int(&a, "--batch", v, 1, 1 << 16);
        else if (flag(&a, "--bf16", 0, &v)) bf16 = 1;
        else if (flag(&a, "--kernels", 1, &v)) kernels = v;
        else if (flag(&a, "-t", 1, &v)) {
            parse_int(&a, "-t", v, 1, 4096);
            setenv("G4_THREADS", v, 1);   /* read by the opt kernels' thread pool */
        }
        else if (flag(&a, "--mem-limit", 1, &v)) {
            if (g4_parse_size(v, &limit) || limit == 0)
                bad_usage(a.usage, "--mem-limit: '%s' is not a size like 16G or 512M", v);
            limit_src = "--mem-limit";
        }
        else if (flag(&a, "--dump-logits", 1, &v)) dump = v;
        else if (flag(&a, "--tap", 1, &v)) parse_tap(&a, &tp, v);
        else positional_or_bad(&a, 1);
    }
    int *ids;
    int n_prompt = parse_ids(ids_s, &ids);
    if (n_prompt < 0) bad_usage(a.usage, "--ids: '%s' is not a list of token ids", ids_s);
    if (n_prompt == 0) bad_usage(a.usage, "--ids: the prompt is empty");
    /* media first (their token counts size the context); errors name the file */
    g4_err err = {{0}};
    float *patches = NULL, *frames = NULL; int *ppos = NULL, n_img = 0, n_aud = 0;
    if (image && g4_image_prepare(image, (int)max_soft, &patches, &ppos, &n_img, &err)) die("%s", err.msg);
    int max_frames = max_audio_s > 0 ? (int)(max_audio_s * G4_AUDIO_RATE / G4_AUDIO_FRAME + 0.5) : 0;
    if (audio && g4_audio_prepare(audio, max_frames, &frames, &n_aud, &err)) die("%s", err.msg);
    int n_media_tok = (image ? n_img + 2 : 0) + (audio ? n_aud + 2 : 0);
    if (text && chat) bad_usage(a.usage, "-p and --chat do not go together");
    if (raw && !text) bad_usage(a.usage, "--raw needs -p");
    if (chat && (image || audio)) bad_usage(a.usage, "--chat takes text only (use -p for images and audio)");
    /* text: at most one token per byte, plus the template's few dozen */
    const int n_est = text ? (int)strlen(text) + (system ? (int)strlen(system) : 0) + 64 : n_prompt;
    if (chat && ctx == 0) ctx = 4096;
    if (ctx == 0) ctx = n_est + n_media_tok + (n_gen > 0 ? n_gen : 1);
    if (!text && !chat && ctx < n_prompt + n_media_tok + (n_gen > 0 ? n_gen - 1 : 0))
        die("--ctx %ld is too small for %d prompt tokens + %ld generated", ctx,
            n_prompt + n_media_tok, n_gen);
    if (!limit) limit = g4_mem_available();
    const char *spec = a.npos ? a.pos[0] : NULL;
    int all_logits = dump != NULL;
    if (batch > n_est + n_media_tok) batch = n_est + n_media_tok;
    if (image && batch < n_img) batch = n_img;   /* an image block is never split */

    const g4_kernels *k = g4_kernels_pick(kernels, &err);
    if (!k) die("%s", err.msg);

    /* the plan without weights, so a synthetic model is refused before it is generated */
    g4_config pre;
    model_spec ms; parse_spec(spec, &ms);
    pre = ms.cfg;
    size_t kv_act = ms.synthetic ? g4_kv_bytes(&pre, (int)ctx) +
                                   planned_act_bytes(&pre, (int)ctx, (int)batch, all_logits) : 0;
    g4_model m;
    double load_s = open_model(spec, &m, kv_act, limit);
    const g4_config *c = &m.cfg;
    fprintf(stderr, "model    %s (%s matrices)\n", m.source, g4_type_name(m.wtype) ? g4_type_name(m.wtype) : "?");
    print_config(stderr, c);
    fprintf(stderr, "kernels  %s\n", k->name);
    check_plan(&m, (int)ctx, (int)batch, all_logits, limit, limit_src, stderr);
    fprintf(stderr, "load     %.3f s\n", load_s);
    for (int i = 0; i < n_prompt; i++)
        if (ids[i] >= c->vocab) die("--ids: token id %d is out of range (vocab %d)", ids[i], c->vocab);
    if (mmproj && g4_mmproj_load(&m, mmproj, &err)) { g4_model_free(&m); die("%s", err.msg); }

    /* embed the media and splice them into the prompt */
    media md[2]; int n_md = 0;
    if (image || audio) {
        if (image && !m.mm.has_vision) die("%s: the model has no vision embedder (use --mmproj FILE)", image);
        if (audio && !m.mm.has_audio) die("%s: the model has no audio embedder (use --mmproj FILE)", audio);
        double tm = g4_now();
        if (image) {
            float *rows = malloc((size_t)n_img * c->d_model * sizeof *rows);   /* [n_img][d] */
            if (!rows || g4_vision_embed(&m, k, patches, ppos, n_img, rows, bf16, &err)) die("%s: %s", image, err.msg);
            md[n_md++] = (media){ c->boi, c->image_tok, c->eoi, n_img, rows, 1 };
            fprintf(stderr, "image    %s: %d patches of 48x48\n", image, n_img);
        }
        if (audio) {
            float *rows = malloc((size_t)n_aud * c->d_model * sizeof *rows);   /* [n_aud][d] */
            if (!rows || g4_audio_embed(&m, k, frames, n_aud, rows, bf16, &err)) die("%s: %s", audio, err.msg);
            md[n_md++] = (media){ c->boa, c->audio_tok, c->eoa, n_aud, rows, 0 };
            fprintf(stderr, "audio    %s: %d frames of 40 ms\n", audio, n_aud);
        }
        fprintf(stderr, "embed    %.3f s\n", g4_now() - tm);
    }
    float *mmrows = NULL; uint8_t *mmask = NULL; g4_block blocks[2]; int n_blocks = 0;
    g4_tokenizer *tok = NULL;
    if (text || chat || vocab) {
        tok = vocab ? g4_tokenizer_load(vocab, &err) : g4_tokenizer_for_model(&m, spec, &err);
        if (!tok) die("%s", err.msg);
        fprintf(stderr, "vocab    %s (%d ids)\n", g4_tok_source(tok), g4_tok_n_vocab(tok));
    }
    /* suppressed ids: the config's, plus ids without a usable piece (holes of a sparse test
     * vocabulary, which a GGUF stores as UNUSED, or ids past the tokenizer's end): sampling
     * one could print nothing */
    const int *sup = c->suppress;
    int n_sup = c->n_suppress, *holes = NULL;
    if (tok) {
        holes = malloc((size_t)(c->vocab + c->n_suppress) * sizeof *holes);
        if (!holes) die("out of memory");
        memcpy(holes, c->suppress, (size_t)c->n_suppress * sizeof *holes);
        for (int id = 0; id < c->vocab; id++) {
            int ty = g4_tok_type(tok, id);
            if (ty == G4_TOKT_NONE || ty == G4_TOKT_UNUSED) holes[n_sup++] = id;
        }
        sup = holes;
    }
    if (text) {
        /* the prompt from text: the chat template, or the raw text with <bos> first */
        g4_prompt pr = { 0 };
        if (raw) {
            if (n_md) die("--raw takes no --image/--audio (their blocks need the template)");
            int *t, nt;
            if (g4_tokenize(tok, text, strlen(text), 1, &t, &nt, &err)) die("%s", err.msg);
            free(ids);
            ids = malloc(((size_t)nt + 1) * sizeof *ids);
            if (!ids) die("out of memory");
            ids[0] = g4_tok_bos(tok) >= 0 ? g4_tok_bos(tok) : c->bos;
            memcpy(ids + 1, t, (size_t)nt * sizeof *ids);
            free(t);
            n_prompt = nt + 1;
        } else {
            g4_chat_part parts[3]; int np = 0;
            for (int i = 0; i < n_md; i++)
                parts[np++] = (g4_chat_part){ md[i].bidirectional ? G4_PART_IMAGE : G4_PART_AUDIO, NULL, md[i].n };
            parts[np++] = (g4_chat_part){ G4_PART_TEXT, text, 0 };
            g4_chat_part sys = { G4_PART_TEXT, system, 0 };
            g4_chat_msg msgs[2]; int nm = 0;
            if (system) msgs[nm++] = (g4_chat_msg){ "system", &sys, 1 };
            msgs[nm++] = (g4_chat_msg){ "user", parts, np };
            g4_chat_opts o = { think, 1, 0 };
            if (g4_chat_build(tok, msgs, nm, &o, &pr, &err)) die("%s", err.msg);
            /* the media rows go where the template put their soft tokens */
            mmrows = calloc((size_t)pr.n * c->d_model, sizeof *mmrows);
            mmask = malloc((size_t)pr.n);
            if (!mmrows || !mmask) die("out of memory for a prompt of %d tokens", pr.n);
            memcpy(mmask, pr.mm_mask, (size_t)pr.n);
            for (int i = 0, ii = 0, ia = 0; i < n_md; i++) {
                const g4_block *b = md[i].bidirectional ? &pr.images[ii++] : &pr.audio[ia++];
                memcpy(mmrows + (size_t)b->start * c->d_model, md[i].rows,
                       (size_t)md[i].n * c->d_model * sizeof *mmrows);
                if (md[i].bidirectional) blocks[n_blocks++] = *b;
            }
            free(ids);
            ids = malloc((size_t)pr.n * sizeof *ids);
            if (!ids) die("out of memory");
            memcpy(ids, pr.ids, (size_t)pr.n * sizeof *ids);
            n_prompt = pr.n;
            g4_prompt_free(&pr);
        }
        for (int i = 0; i < n_md; i++) free(md[i].rows);
        n_md = 0;
        if (n_prompt + (n_gen > 0 ? n_gen - 1 : 0) > ctx)
            die("--ctx %ld is too small for %d prompt tokens + %ld generated", ctx, n_prompt, n_gen);
        if (batch < n_img) batch = n_img;
    }
    if (n_md) {
        int *full;
        n_prompt = expand_prompt(ids, n_prompt, md, n_md, c->d_model, &full, &mmrows, &mmask,
                                 blocks, &n_blocks);
        free(ids);
        ids = full;
        for (int i = 0; i < n_md; i++) free(md[i].rows);
    }
    free(patches); free(ppos); free(frames);

    g4_state s;
    if (g4_state_init(&s, &m, k, (int)ctx, (int)batch, all_logits, &err)) {
        g4_model_free(&m); die("%s", err.msg);
    }
    s.bf16 = bf16;
    g4_sampler smp;
    if (g4_sampler_init(&smp, c->vocab, (float)temp, (int)top_k, (float)top_p, seed)) {
        g4_state_free(&s); g4_model_free(&m); die("out of memory for the sampler");
    }
    if (chat) {
        g4_chat_cfg cc = { system, think, (int)n_gen, "> " };
        int r = g4_chat_loop(&s, &smp, tok, &cc, stdin, stdout, &err);
        if (r) fprintf(stderr, "g4: %s\n", err.msg);
        fprintf(stderr, "peak RSS %s\n", human(g4_peak_rss(), (char[32]){0}));
        g4_sampler_free(&smp); g4_state_free(&s); g4_tokenizer_free(tok); g4_model_free(&m);
        free(ids);
        free(holes);
        return r ? 1 : 0;
    }
    FILE *df = NULL;
    if (dump && !(df = fopen(dump, "wb"))) die("%s: cannot create: %s", dump, strerror(errno));
    for (int i = 0; i < tp.n; i++)
        if (!(tp.t[i].f = fopen(tp.t[i].path, "wb")))
            die("%s: cannot create: %s", tp.t[i].path, strerror(errno));
    if (tp.n) { s.tap = tap_cb; s.tap_ctx = &tp; tp.active = 1; }

    /* prefill, in chunks of --batch so --dump-logits sees every position */
    double t0 = g4_now();
    const float *last = s.logits;
    for (int p = 0, nb; p < n_prompt; p += nb) {
        nb = n_prompt - p < batch ? n_prompt - p : (int)batch;
        for (int i = 0; i < n_blocks; i++)   /* end the chunk before a block it would cut */
            if (blocks[i].start > p && blocks[i].start < p + nb && blocks[i].end > p + nb)
                nb = blocks[i].start - p;
        if (g4_forward(&s, ids + p, nb, mmrows ? mmrows + (size_t)p * c->d_model : NULL,
                       mmask ? mmask + p : NULL, blocks, n_blocks, &err)) die("%s", err.msg);
        if (df && write_f32le(df, s.logits, (size_t)nb * c->vocab))
            die("%s: write failed: %s", dump, strerror(errno));
        last = all_logits ? s.logits + (size_t)(nb - 1) * c->vocab : s.logits;
    }
    double t_prefill = g4_now() - t0;
    tp.active = 0;
    if (df && fclose(df)) die("%s: write failed: %s", dump, strerror(errno));
    for (int i = 0; i < tp.n; i++) {
        tap_file *t = &tp.t[i];
        if (fclose(t->f) || t->write_err)
            die("%s: write failed (or the row length of tap %s changed)", t->path, t->name);
        if (t->rows == 0) {
            char lay[16] = "";
            if (t->layer >= 0) snprintf(lay, sizeof lay, ".%d", t->layer);
            die("--tap %s%s: the decoder made no such call (taps seen: %s)", t->name, lay,
                tp.seen[0] ? tp.seen : "none");
        }
        fprintf(stderr, "tap      %s -> %s: %ld rows of %d\n", t->name, t->path, t->rows, t->n);
    }
    if (df) fprintf(stderr, "logits   %s: %d positions x %d\n", dump, n_prompt, c->vocab);

    /* generation: sample, print, feed back */
    float *lg = malloc((size_t)c->vocab * sizeof(float));   /* [vocab] sampler input */
    if (!lg) die("out of memory");
    double t1 = g4_now();
    int n_out = 0, n_steps = 0;
    g4_detok dt;
    if (text && g4_detok_init(&dt, tok, 1, &err)) die("%s", err.msg);
    for (int i = 0; i < n_gen; i++) {
        memcpy(lg, last, (size_t)c->vocab * sizeof(float));
        int id = g4_sample(&smp, lg, sup, n_sup);
        if (text) {            /* text in, text out: the reply streams, the stop id is not shown */
            const char *piece; size_t len;
            if (!is_stop(c, id)) {
                if (g4_detok_push(&dt, id, &piece, &len, &err)) die("%s", err.msg);
                fwrite(piece, 1, len, stdout);
            }
        } else printf("%s%d", n_out ? " " : "", id);
        fflush(stdout);
        n_out++;
        if (is_stop(c, id) || i == n_gen - 1) break;
        if (g4_forward(&s, &id, 1, NULL, NULL, NULL, 0, &err)) die("%s", err.msg);
        last = s.logits;
        n_steps++;
    }
    double t_decode = g4_now() - t1;
    if (text) {
        const char *piece; size_t len;
        g4_detok_flush(&dt, &piece, &len);
        fwrite(piece, 1, len, stdout);
        g4_detok_free(&dt);
    }
    if (n_out) printf("\n");
    fflush(stdout);
    fprintf(stderr, "prefill  %d tokens in %.3f s (%.2f tok/s)\n", n_prompt, t_prefill,
            t_prefill > 0 ? n_prompt / t_prefill : 0.0);
    fprintf(stderr, "decode   %d tokens in %.3f s (%.2f tok/s)\n", n_steps, t_decode,
            n_steps && t_decode > 0 ? n_steps / t_decode : 0.0);
    char b[32];
    fprintf(stderr, "peak RSS %s\n", human(g4_peak_rss(), b));
    free(lg);
    free(ids); free(mmrows); free(mmask);
    g4_tokenizer_free(tok);
    free(holes);
    g4_sampler_free(&smp);
    g4_state_free(&s);
    g4_model_free(&m);
    return 0;
}

/* ---- g4 info ---------------------------------------------------------------------------- */

static void print_str(FILE *f, const char *s, uint64_t n, size_t max)
{
    fputc('"', f);
    for (uint64_t i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') fputs("\\n", f);
        else if (ch == '"' || ch == '\\') { fputc('\\', f); fputc(ch, f); }
        else if (ch < 32) fprintf(f, "\\x%02x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
    if (n > max) fprintf(f, "... (%" PRIu64 " bytes)", n);
}

static void print_value(FILE *f, const g4_gguf_value *v)
{
    switch (v->type) {
    case G4_GGUF_U8: case G4_GGUF_U16: case G4_GGUF_U32: case G4_GGUF_U64:
        fprintf(f, "%" PRIu64, v->v.u); break;
    case G4_GGUF_I8: case G4_GGUF_I16: case G4_GGUF_I32: case G4_GGUF_I64:
        fprintf(f, "%" PRId64, v->v.i); break;
    case G4_GGUF_F32: case G4_GGUF_F64: fprintf(f, "%g", v->v.f); break;
    case G4_GGUF_BOOL: fputs(v->v.u ? "true" : "false", f); break;
    case G4_GGUF_STRING: print_str(f, v->v.str.s, v->v.str.len, 80); break;
    case G4_GGUF_ARRAY: {
        fprintf(f, "[%s x %" PRIu64 "]", g4_gguf_vtype_name(v->arr_type), v->arr_n);
        uint64_t show = v->arr_type == G4_GGUF_STRING ? 4 : 8;
        for (uint64_t i = 0; i < v->arr_n && i < show; i++) {
            fputs(i ? ", " : " ", f);
            switch (v->arr_type) {
            case G4_GGUF_F32: case G4_GGUF_F64: fprintf(f, "%g", g4_gguf_arr_float(v, i)); break;
            case G4_GGUF_BOOL: fputs(g4_gguf_arr_int(v, i) ? "true" : "false", f); break;
            case G4_GGUF_STRING: { g4_str s = g4_gguf_arr_str(v, i); print_str(f, s.s, s.len, 24); break; }
            case G4_GGUF_ARRAY: fputs("[...]", f); break;
            default: fprintf(f, "%" PRId64, g4_gguf_arr_int(v, i)); break;
            }
        }
        if (v->arr_n > show) fputs(", ...", f);
        break;
    }
    default: fputs("?", f);
    }
}

static void print_tensors(const g4_tensor *ts, uint64_t n)
{
    printf("tensors  %" PRIu64 "\n", n);
    printf("  %-44s %-6s %-22s %14s\n", "name", "type", "shape (ggml order)", "bytes");
    size_t total = 0, per_type[64] = {0};
    int64_t params = 0;
    for (uint64_t i = 0; i < n; i++) {
        const g4_tensor *t = &ts[i];
        char shape[64] = "[", *p = shape + 1;
        for (int d = 0; d < t->n_dims; d++)
            p += snprintf(p, (size_t)(shape + sizeof shape - p), "%s%lld", d ? ", " : "",
                          (long long)t->ne[d]);
        snprintf(p, (size_t)(shape + sizeof shape - p), "]");
        const char *tn = g4_type_name(t->type);
        printf("  %-44s %-6s %-22s %14zu\n", t->name, tn ? tn : "?", shape, t->nbytes);
        total += t->nbytes;
        params += g4_tensor_nelem(t);
        if (t->type >= 0 && t->type < 64) per_type[t->type] += t->nbytes;
    }
    char b[32];
    printf("totals   %" PRIu64 " tensors, %lld values, %zu bytes (%s):", n, (long long)params, total,
           human(total, b));
    for (int ty = 0; ty < 64; ty++)
        if (per_type[ty]) printf(" %s %s", g4_type_name((g4_type)ty) ? g4_type_name((g4_type)ty) : "?",
                                 human(per_type[ty], b));
    printf("\n");
}

static int cmd_info(int argc, char **argv)
{
    args a = { argc, argv, 0, usage_info, {0}, 0 };
    long ctx = 4096;
    const char *v;
    while (a.i < argc) {
        if (flag(&a, "--ctx", 1, &v)) ctx = parse_int(&a, "--ctx", v, 1, 1 << 24);
        else positional_or_bad(&a, 1);
    }
    if (!a.npos) bad_usage(a.usage, "info needs a FILE");
    const char *path = a.pos[0];
    g4_err err = {{0}};
    char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    int opened = f != NULL;
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    printf("file     %s\n", path);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        g4_gguf *g = g4_gguf_open(path, &err);
        if (!g) die("%s", err.msg);
        printf("format   GGUF v%u, %zu bytes, %" PRIu64 " metadata keys, %" PRIu64 " tensors, "
               "alignment %" PRIu64 ", data at offset %" PRIu64 "\n", g->version, g->size, g->n_kv,
               g->n_tensors, g->alignment, g->data_offset);
        printf("metadata\n");
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const g4_gguf_kv *kv = &g->kv[i];
            printf("  %-48.*s %-6s ", (int)kv->key.len, kv->key.s, g4_gguf_vtype_name(kv->val.type));
            print_value(stdout, &kv->val);
            printf("\n");
        }
        print_tensors(g->tensors, g->n_tensors);
        g4_gguf_close(g);
    } else {
        if (!opened && access(path, F_OK) != 0) die("%s: cannot open: %s", path, strerror(errno));
        g4_st *st = g4_st_open(path, &err);
        if (!st) die("%s", err.msg);
        printf("format   safetensors, %d file(s), %d tensors\n", st->n_files, st->n_tensors);
        for (int i = 0; i < st->n_files; i++)
            printf("  %s (%zu bytes)\n", st->files[i].path, st->files[i].size);
        print_tensors(st->tensors, (uint64_t)st->n_tensors);
        g4_st_close(st);
    }
    /* bind it as a model: proves it runs, and gives the memory estimate */
    g4_model m;
    if (g4_model_load(&m, path, &err)) die("%s", err.msg);
    print_config(stdout, &m.cfg);
    size_t w = g4_model_weight_bytes(&m), kv = g4_kv_bytes(&m.cfg, (int)ctx);
    char b[3][32];
    printf("memory   weights %s + KV %s at ctx %ld = %s (activations extra, see g4 run)\n",
           human(w, b[0]), human(kv, b[1]), ctx, human(w + kv, b[2]));
    g4_model_free(&m);
    return 0;
}

/* ---- g4 synth --------------------------------------------------------------------------- */

static int cmd_synth(int argc, char **argv)
{
    args a = { argc, argv, 0, usage_synth, {0}, 0 };
    const char *cfg = NULL, *type = NULL, *out = NULL, *vocab = NULL, *mmproj = NULL, *v;
    uint64_t seed = 1;
    while (a.i < argc) {
        if (flag(&a, "--config", 1, &v)) cfg = v;
        else if (flag(&a, "--type", 1, &v)) type = v;
        else if (flag(&a, "--seed", 1, &v)) seed = parse_u64(&a, "--seed", v);
        else if (flag(&a, "-o", 1, &v)) out = v;
        else if (flag(&a, "--vocab", 1, &v)) vocab = v;
        else if (flag(&a, "--mmproj", 1, &v)) mmproj = v;
        else positional_or_bad(&a, 0);
    }
    if (!cfg || !type || !out) bad_usage(a.usage, "synth needs --config, --type and -o");
    g4_config c;
    if (g4_config_builtin(cfg, &c)) bad_usage(a.usage, "--config: unknown config '%s'", cfg);
    int t = g4_type_from_name(type);
    if (t < 0) bad_usage(a.usage, "--type: unknown type '%s'", type);
    g4_err err = {{0}};
    double t0 = g4_now();
    g4_tokenizer *tok = NULL;
    if (vocab) {
        if (!(tok = g4_tokenizer_load(vocab, &err))) die("%s", err.msg);
        /* the model covers every id of the vocabulary; the suppressed ids are the vocabulary's
         * <image|> and <audio|> (spec 1.3 step 6), whatever the built-in config said */
        if (g4_tok_n_vocab(tok) > c.vocab) c.vocab = g4_tok_n_vocab(tok);
        c.n_suppress = 0;
        const char *sup[2] = { "<audio|>", "<image|>" };
        for (int i = 0; i < 2; i++) {
            int id = g4_tok_id(tok, sup[i]);
            if (id >= 0) c.suppress[c.n_suppress++] = id;
        }
        if (g4_tok_bos(tok) >= 0) c.bos = g4_tok_bos(tok);
        if (g4_tok_eos(tok) >= 0) c.eos = g4_tok_eos(tok);
    }
    if (g4_synth_write_gguf_vocab(&c, (g4_type)t, seed, out, 1, tok, &err)) die("%s", err.msg);
    g4_tokenizer_free(tok);
    if (mmproj) {
        /* the embedders come from the in-memory synthetic model (same generator, same values) */
        g4_model m;
        if (c.mm_dim <= 0) die("--mmproj: config %s has no vision/audio embedders", cfg);
        if (g4_model_synth(&m, &c, (g4_type)t, seed, &err) || g4_mmproj_write(&m, mmproj, &err))
            die("%s", err.msg);
        g4_model_free(&m);
        fprintf(stderr, "g4: wrote %s (vision + audio embedders)\n", mmproj);
    }
    char b[32];
    fprintf(stderr, "g4: synth %s %s seed %llu -> %s in %.1f s, peak RSS %s\n", cfg, type,
            (unsigned long long)seed, out, g4_now() - t0, human(g4_peak_rss(), b));
    return 0;
}

/* ---- g4 bench --------------------------------------------------------------------------- */

static int cmd_bench_tokenizer(int argc, char **argv)
{
    args a = { argc, argv, 0, usage_bench, {0}, 0 };
    const char *text = NULL, *v;
    long tokens = 0, reps = 3;
    while (a.i < argc) {
        if (flag(&a, "--text", 1, &v)) text = v;
        else if (flag(&a, "--tokens", 1, &v)) tokens = parse_int(&a, "--tokens", v, 1, 1 << 28);
        else if (flag(&a, "--reps", 1, &v)) reps = parse_int(&a, "--reps", v, 1, 1000);
        else positional_or_bad(&a, 1);
    }
    g4_err err = {{0}};
    if (g4_bench_tokenizer(a.npos ? a.pos[0] : NULL, text, (int)tokens, (int)reps, stdout, &err))
        die("%s", err.msg);
    return 0;
}

static int cmd_bench(int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "--tokenizer") == 0) return cmd_bench_tokenizer(argc - 1, argv + 1);
    args a = { argc, argv, 0, usage_bench, {0}, 0 };
    const char *kernels = NULL, *v;
    long pp = 16, tg = 8, threads = sysconf(_SC_NPROCESSORS_ONLN), ctx = 0, reps = 3;
    while (a.i < argc) {
        if (flag(&a, "--pp", 1, &v)) pp = parse_int(&a, "--pp", v, 0, 1 << 16);
        else if (flag(&a, "--tg", 1, &v)) tg = parse_int(&a, "--tg", v, 0, 1 << 20);
        else if (flag(&a, "-t", 1, &v)) threads = parse_int(&a, "-t", v, 1, 4096);
        else if (flag(&a, "--ctx", 1, &v)) ctx = parse_int(&a, "--ctx", v, 1, 1 << 24);
        else if (flag(&a, "--kernels", 1, &v)) kernels = v;
        else if (flag(&a, "--reps", 1, &v)) reps = parse_int(&a, "--reps", v, 1, 1000);
        else positional_or_bad(&a, 1);
    }
    if (pp == 0 && tg == 0) bad_usage(a.usage, "nothing to do: --pp 0 and --tg 0");
    if (threads < 1) threads = 1;
    char tb[32];
    snprintf(tb, sizeof tb, "%ld", threads);
    setenv("G4_THREADS", tb, 1);       /* read by the opt kernels' thread pool */
    g4_err err = {{0}};
    const g4_kernels *k = g4_kernels_pick(kernels, &err);
    if (!k) die("%s", err.msg);
    if (ctx < pp + tg + 1) ctx = pp + tg + 1;
    g4_model m;
    g4_bench_opts o = { (int)pp, (int)tg, (int)reps, (int)ctx, (int)threads, 0 };
    o.load_s = open_model(a.npos ? a.pos[0] : NULL, &m, 0, 0);
    int r = g4_bench_run(&m, k, &o, stdout, &err);
    g4_model_free(&m);
    if (r) die("%s", err.msg);
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2) { fputs(usage_main, stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench") && argc > 2 && !strcmp(argv[2], "--kernels-micro"))
        return g4_bench_kernels_cli(argc - 3, argv + 3);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "g4: unknown command '%s'\n", cmd);
    fputs(usage_main, stderr);
    return 2;
}

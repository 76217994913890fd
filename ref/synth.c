/* synth.c - deterministic synthetic weights for any config (tiny tests, 12B benchmarks).
 *
 * Stage: model files (the tensor set of spec 5.2, filled with made-up values).
 * Input:  a g4_config, a matrix type (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k) and a 64-bit seed.
 * Output: either an in-memory g4_model laid out like a loaded one (g4_model_synth), or a GGUF
 *         file written row by row through the streaming writer (g4_synth_write_gguf), so a 12B
 *         model never has to fit in memory.
 *
 * Both paths produce the SAME bytes: every value is a pure function of
 * (seed, tensor name, row, column), computed by synth_row() below, and every matrix row is
 * encoded with g4_quant_row (the in-memory path calls it here, the writer calls it for us).
 *
 * The generator is counter-based: hash(seed, name) -> tensor key; mix64(tensor key, row) -> row
 * key; mix64(row key + pair counter) -> 64 random bits, which make two values. Each value is the
 * sum of four uniform bytes, centred and scaled to unit variance (Irwin-Hall, n = 4: bell-shaped,
 * bounded by +-3.45 sigma), then mean + std * z. This is cheap (one 64-bit mix per two values),
 * which matters: a 12B file is 12e9 values.
 *
 * Scales (chosen so activations stay finite and O(1) through any number of layers):
 *   token_embd          std 1/sqrt(d_model): the x sqrt(d_model) embedding scale gives rms ~1
 *   every matrix        std 1/sqrt(cols):    y = W x keeps the rms of x
 *   RMSNorm weights     1 + 0.1 z  (in [0.65, 1.35], always positive; Gemma 4 multiplies by w)
 *   q_norm / k_norm     1 + 0.1 z as well. Attention has scale 1.0 (spec 1.5), so scores q.k
 *                       have std ~sqrt(hd) (16 at hd 256): peaked attention, as trained models
 *                       have. (Weights ~hd^(-1/4), scores ~1, were tried: near-uniform
 *                       attention averages the positions together and after ~30 layers every
 *                       position holds the same vector, "rank collapse", so the 12B-shaped model
 *                       predicted the same logits everywhere.)
 *   layer_output_scale  0.92 - 0.915 u^2, u uniform in [0, 1): the published range
 *                       [0.005, 0.92] with the published mean 0.62 (spec 1.3); a plain uniform
 *                       (mean 0.46) shrinks the residual so fast that positions collapse too
 *   rope_freqs          [hd_full/2]: 1.0 for the rotated pairs, 1e30 for the rest (spec 1.5)
 * Even so, random layers mix positions: on the 12B shape the logits of different positions
 * still correlate at ~0.97-0.99 after 48 layers (measured), so greedy decoding tends to repeat a
 * token. These weights are for speed, memory and bit-exactness checks, not for text.
 */
#include "g4.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the generator ---------------------------------------------------------------------- */

#define GOLDEN 0x9E3779B97F4A7C15ull

/* the splitmix64 output function: a bijective 64-bit mix */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) { h ^= (uint8_t)*s; h *= 0x100000001B3ull; }
    return h;
}

typedef enum { SY_NORMAL, SY_SKEWED, SY_ROPE } sy_kind;

/* one tensor to generate: ne = [cols, rows] (ggml order); 1-D tensors have rows = 1 */
typedef struct {
    char name[96];
    g4_type type;              /* G4_T_F32 for vectors, the requested type for matrices */
    int n_dims;
    int64_t ne[2];
    sy_kind kind;
    float a, b;                /* NORMAL: mean, std; SKEWED: lo, hi; ROPE: rotated pairs */
    uint64_t key;              /* from (seed, name) */
    /* where the in-memory model keeps it (exactly one is set) */
    g4_tensor *view;           /* matrices */
    float **vec;               /* vectors */
    float *scalar;             /* layer_output_scale */
} sy_tensor;

/* std of the sum of four independent uniform bytes: sqrt(4 * (256^2 - 1) / 12) */
#define IH4_MEAN 510.0f
#define IH4_INV_STD (1.0f / 147.80054127f)

/* Row `row` of tensor t as fp32 [ne[0]]. A pure function of (t->key, t->kind, a, b, row, col). */
static void synth_row(const sy_tensor *t, int64_t row, float *out)
{
    const int64_t n = t->ne[0];
    const uint64_t rk = mix64(t->key + (uint64_t)(row + 1) * 0xD1B54A32D192ED03ull);
    if (t->kind == SY_ROPE) {
        for (int64_t i = 0; i < n; i++) out[i] = i < (int64_t)t->b ? 1.0f : 1e30f;
        return;
    }
    if (t->kind == SY_SKEWED) {
        for (int64_t i = 0; i < n; i++) {
            uint64_t h = mix64(rk + (uint64_t)(i + 1) * GOLDEN);
            float u = (float)(h >> 40) * (1.0f / 16777216.0f);   /* 24 bits: exact in fp32 */
            out[i] = t->b - (t->b - t->a) * u * u;               /* in (lo, hi], mean hi - (hi-lo)/3 */
        }
        return;
    }
    const float mean = t->a, scale = t->b * IH4_INV_STD;
    const uint64_t m8 = 0x00FF00FF00FF00FFull;
    for (int64_t j = 0; j < n; j += 2) {
        uint64_t h = mix64(rk + (uint64_t)(j / 2 + 1) * GOLDEN);
        /* byte sums in 16-bit lanes: lane k = byte 2k + byte 2k+1 */
        uint64_t s = (h & m8) + ((h >> 8) & m8);
        int lo = (int)((s & 0xFFFF) + ((s >> 16) & 0xFFFF));          /* bytes 0..3 */
        int hi = (int)(((s >> 32) & 0xFFFF) + (s >> 48));             /* bytes 4..7 */
        out[j] = mean + scale * ((float)lo - IH4_MEAN);
        if (j + 1 < n) out[j + 1] = mean + scale * ((float)hi - IH4_MEAN);
    }
}

static void synth_row_cb(void *ctx, int64_t row, float *out) { synth_row(ctx, row, out); }

/* ---- the tensor list (spec 5.2 names and shapes) ----------------------------------------- */

typedef struct {
    sy_tensor *t; int n, cap;
    uint64_t seed;
    g4_type wtype;
    int with_mm;               /* also the vision/audio embedders (in-memory models only) */
} sy_list;

static sy_tensor *add(sy_list *L, const char *name, g4_type type, int64_t cols, int64_t rows,
                      int n_dims, sy_kind kind, float a, float b)
{
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 256;
        sy_tensor *p = realloc(L->t, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        L->t = p; L->cap = cap;
    }
    sy_tensor *t = &L->t[L->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type; t->n_dims = n_dims;
    t->ne[0] = cols; t->ne[1] = rows;
    t->kind = kind; t->a = a; t->b = b;
    t->key = mix64(mix64(L->seed ^ GOLDEN) ^ fnv1a64(name));
    return t;
}

/* a matrix of rows x cols: W x keeps the rms of x */
static sy_tensor *add_mat(sy_list *L, const char *name, int64_t rows, int64_t cols, g4_tensor *view)
{
    sy_tensor *t = add(L, name, L->wtype, cols, rows, 2, SY_NORMAL, 0.0f, 1.0f / sqrtf((float)cols));
    if (t) t->view = view;
    return t;
}

/* a norm weight vector: mean `mean`, relative noise 0.1 */
static sy_tensor *add_norm(sy_list *L, const char *name, int64_t n, float mean, float **vec)
{
    sy_tensor *t = add(L, name, G4_T_F32, n, 1, 1, SY_NORMAL, mean, 0.1f * mean);
    if (t) t->vec = vec;
    return t;
}

/* a vector (or a table of rows x n values) with mean `mean` and std `std` */
static sy_tensor *add_vec(sy_list *L, const char *name, int64_t n, int64_t rows, float mean,
                          float std, float **vec)
{
    sy_tensor *t = add(L, name, G4_T_F32, n, rows, rows > 1 ? 2 : 1, SY_NORMAL, mean, std);
    if (t) t->vec = vec;
    return t;
}

/* The vision and audio embedders (spec 2.3, 3), under the GGUF mmproj names of spec 5.3 but in
 * HF layout (patch columns HWC, position table [posemb][2][mm_dim]), as g4_mm holds them.
 * Matrices are f32 when the text matrices are, else bf16 (the published projector's type).
 * Scales: LayerNorm weights ~1, biases ~0.02; patch_dense and projections std 1/sqrt(cols);
 * position rows std 0.5 (added to a LayerNorm output of rms 1). */
static int build_mm_list(sy_list *L, const g4_config *c, g4_model *m)
{
    g4_mm *mm = &m->mm;
    const int e = c->mm_dim, d = c->d_model;
    const g4_type keep = L->wtype;
    L->wtype = keep == G4_T_F32 ? G4_T_F32 : G4_T_BF16;
    int ok = add_vec(L, "v.patch_norm.1.weight", G4_PATCH_DIM, 1, 1.0f, 0.1f, &mm->ln1_w) &&
             add_vec(L, "v.patch_norm.1.bias", G4_PATCH_DIM, 1, 0.0f, 0.02f, &mm->ln1_b) &&
             add_mat(L, "v.patch_embd.weight", e, G4_PATCH_DIM, &mm->patch_dense) &&
             add_vec(L, "v.patch_embd.bias", e, 1, 0.0f, 0.02f, &mm->patch_b) &&
             add_vec(L, "v.patch_norm.2.weight", e, 1, 1.0f, 0.1f, &mm->ln2_w) &&
             add_vec(L, "v.patch_norm.2.bias", e, 1, 0.0f, 0.02f, &mm->ln2_b) &&
             add_vec(L, "v.position_embd.weight", e, (int64_t)c->mm_posemb * 2, 0.0f, 0.5f, &mm->pos) &&
             add_vec(L, "v.patch_norm.3.weight", e, 1, 1.0f, 0.1f, &mm->pos_norm_w) &&
             add_vec(L, "v.patch_norm.3.bias", e, 1, 0.0f, 0.02f, &mm->pos_norm_b) &&
             add_mat(L, "mm.input_projection.weight", d, e, &mm->vis_proj) &&
             add_mat(L, "mm.a.input_projection.weight", d, c->audio_dim, &mm->aud_proj);
    L->wtype = keep;
    if (!ok) return -1;
    mm->has_vision = mm->has_audio = 1;
    return 0;
}

/* Build the list for config c; m (may be NULL) receives the view/array pointers. The order is
 * the GGUF order: token_embd, rope_freqs, blk.0 ... blk.N-1, output_norm. */
static int build_list(sy_list *L, const g4_config *c, g4_model *m)
{
    g4_model dummy;
    if (!m) { memset(&dummy, 0, sizeof dummy); m = &dummy; }
    const int d = c->d_model;
    int any_global = 0;
    for (int l = 0; l < c->n_layers; l++) any_global |= c->is_global[l];

    /* token_embd [d, vocab]: rows = vocab; std 1/sqrt(d), like every matrix with d columns */
    if (!add_mat(L, "token_embd.weight", c->vocab, d, &m->tok_embd)) return -1;
    if (any_global) {
        /* rotated pairs of proportional RoPE: int(partial * hd_full / 2) (spec 1.5) */
        int rot = (int)(c->rope_partial_full * (float)c->hd_full / 2.0f);
        if (!add(L, "rope_freqs.weight", G4_T_F32, c->hd_full / 2, 1, 1, SY_ROPE, 0.0f, (float)rot))
            return -1;
    }
    char name[96];
    for (int l = 0; l < c->n_layers; l++) {
        g4_layer *Y = &m->layers[l];
        const int hd = g4_hd(c, l), nkv = g4_nkv(c, l), nq = c->n_heads;
#define N(S) (snprintf(name, sizeof name, "blk.%d." S, l), name)
        if (!add_norm(L, N("attn_norm.weight"), d, 1.0f, &Y->attn_norm) ||
            !add_mat(L, N("attn_q.weight"), (int64_t)nq * hd, d, &Y->wq) ||
            !add_mat(L, N("attn_k.weight"), (int64_t)nkv * hd, d, &Y->wk))
            return -1;
        /* K=V global layers have no v_proj (spec 1.5 item 2) */
        if (!(c->k_eq_v && c->is_global[l]) &&
            !add_mat(L, N("attn_v.weight"), (int64_t)nkv * hd, d, &Y->wv))
            return -1;
        sy_tensor *s;
        if (!add_mat(L, N("attn_output.weight"), d, (int64_t)nq * hd, &Y->wo) ||
            !add_norm(L, N("attn_q_norm.weight"), hd, 1.0f, &Y->q_norm) ||
            !add_norm(L, N("attn_k_norm.weight"), hd, 1.0f, &Y->k_norm) ||
            !add_norm(L, N("post_attention_norm.weight"), d, 1.0f, &Y->post_attn_norm) ||
            !add_norm(L, N("ffn_norm.weight"), d, 1.0f, &Y->ffn_norm) ||
            !add_mat(L, N("ffn_gate.weight"), c->d_ff, d, &Y->w_gate) ||
            !add_mat(L, N("ffn_up.weight"), c->d_ff, d, &Y->w_up) ||
            !add_mat(L, N("ffn_down.weight"), d, c->d_ff, &Y->w_down) ||
            !add_norm(L, N("post_ffw_norm.weight"), d, 1.0f, &Y->post_ffn_norm) ||
            !(s = add(L, N("layer_output_scale.weight"), G4_T_F32, 1, 1, 1, SY_SKEWED, 0.005f, 0.92f)))
            return -1;
        s->scalar = &Y->layer_scalar;
#undef N
    }
    if (!add_norm(L, "output_norm.weight", d, 1.0f, &m->out_norm)) return -1;
    return L->with_mm ? build_mm_list(L, c, m) : 0;
}

/* common checks; fills the list */
static int prepare(sy_list *L, const g4_config *c, g4_type wtype, uint64_t seed, g4_model *m,
                   int with_mm, const char *what, g4_err *err)
{
    memset(L, 0, sizeof *L);
    L->seed = seed; L->wtype = wtype; L->with_mm = with_mm;
    if (g4_config_check(c, err)) return -1;
    const char *tn = g4_type_name(wtype);
    if (!tn || wtype == G4_T_NONE)
        return g4_fail(err, "%s: unsupported weight type id %d", what, (int)wtype);
    int64_t blk = g4_type_block(wtype);
    int64_t cols[3] = { c->d_model, c->d_ff, (int64_t)c->n_heads * c->hd_swa };
    for (int i = 0; i < 3; i++)
        if (cols[i] % blk)
            return g4_fail(err, "%s: config %s has a row length %lld that is not a multiple of "
                           "the %s block (%lld)", what, c->name, (long long)cols[i], tn, (long long)blk);
    if ((int64_t)c->n_heads * c->hd_full % blk)
        return g4_fail(err, "%s: config %s: n_heads * hd_full is not a multiple of the %s block",
                       what, c->name, tn);
    if (build_list(L, c, m)) { free(L->t); L->t = NULL; return g4_fail(err, "%s: out of memory", what); }
    return 0;
}

/* ---- in memory -------------------------------------------------------------------------- */

int g4_model_synth(g4_model *m, const g4_config *c, g4_type wtype, uint64_t seed, g4_err *err)
{
    memset(m, 0, sizeof *m);
    sy_list L;
    /* the in-memory model carries the embedders too when the config has them */
    if (prepare(&L, c, wtype, seed, m, c->mm_dim > 0, "synth", err)) return -1;
    m->cfg = *c;
    m->wtype = wtype;
    snprintf(m->source, sizeof m->source, "synthetic %s %s seed %llu", c->name,
             g4_type_name(wtype), (unsigned long long)seed);
    int64_t maxcols = 1;                           /* the longest row of any tensor */
    for (int i = 0; i < L.n; i++) if (L.t[i].ne[0] > maxcols) maxcols = L.t[i].ne[0];
    float *row = malloc((size_t)maxcols * sizeof(float));   /* [maxcols] */
    if (!row) { free(L.t); return g4_fail(err, "synth: out of memory"); }
    int r = 0;
    for (int i = 0; i < L.n && r == 0; i++) {
        sy_tensor *t = &L.t[i];
        if (t->kind == SY_ROPE) continue;          /* the decoder derives RoPE from the config */
        if (t->view) {
            size_t rb = g4_row_bytes(t->type, t->ne[0]);
            uint8_t *buf = g4_model_own(m, rb * (size_t)t->ne[1]);
            if (!buf) { r = g4_fail(err, "synth: out of memory for %s (%zu bytes)", t->name,
                                    rb * (size_t)t->ne[1]); break; }
            for (int64_t y = 0; y < t->ne[1]; y++) {
                synth_row(t, y, row);
                g4_quant_row(t->type, row, buf + (size_t)y * rb, t->ne[0]);
            }
            g4_tensor *v = t->view;
            memset(v, 0, sizeof *v);
            snprintf(v->name, sizeof v->name, "%s", t->name);
            v->type = t->type; v->n_dims = 2;
            v->ne[0] = t->ne[0]; v->ne[1] = t->ne[1]; v->ne[2] = v->ne[3] = 1;
            v->data = buf; v->nbytes = rb * (size_t)t->ne[1];
        } else {
            /* vectors are stored F32, so the fp32 row is exactly what a loader reads back */
            float *buf = g4_model_own(m, (size_t)t->ne[0] * t->ne[1] * sizeof(float));
            if (!buf) { r = g4_fail(err, "synth: out of memory"); break; }
            for (int64_t y = 0; y < t->ne[1]; y++) synth_row(t, y, buf + y * t->ne[0]);
            if (t->vec) *t->vec = buf;
            if (t->scalar) *t->scalar = buf[0];
        }
    }
    /* K=V layers: mark the absent v_proj */
    for (int l = 0; l < c->n_layers; l++)
        if (c->k_eq_v && c->is_global[l]) { memset(&m->layers[l].wv, 0, sizeof(g4_tensor));
                                            m->layers[l].wv.type = G4_T_NONE; }
    free(row);
    free(L.t);
    if (r) g4_model_free(m);
    return r;
}

/* ---- streaming to GGUF ------------------------------------------------------------------ */

/* llama.cpp's general.file_type (LLAMA_FTYPE_*) for a uniform matrix type */
static uint32_t file_type_of(g4_type t)
{
    switch (t) {
    case G4_T_F32: return 0;
    case G4_T_F16: return 1;
    case G4_T_Q4_0: return 2;
    case G4_T_Q8_0: return 7;
    case G4_T_Q4_K: return 15;   /* Q4_K_M */
    case G4_T_Q6_K: return 18;
    case G4_T_BF16: return 32;
    default: return 0;
    }
}

typedef struct { double t0, last; int tty; } progress_ctx;

static void progress(void *ctx, uint64_t done, uint64_t total)
{
    progress_ctx *p = ctx;
    double now = g4_now();
    if (done < total && now - p->last < (p->tty ? 0.5 : 10.0)) return;
    p->last = now;
    double el = now - p->t0, mib = done / 1048576.0;
    fprintf(stderr, "%sg4: synth %8.1f / %.1f MiB (%5.1f%%) %6.1f s %7.1f MiB/s%s",
            p->tty ? "\r" : "", mib, total / 1048576.0, total ? 100.0 * done / total : 100.0,
            el, el > 0 ? mib / el : 0.0, p->tty && done < total ? "" : "\n");
    fflush(stderr);
}

int g4_synth_write_gguf(const g4_config *c, g4_type wtype, uint64_t seed, const char *path,
                        int verbose, g4_err *err)
{
    return g4_synth_write_gguf_vocab(c, wtype, seed, path, verbose, NULL, err);
}

int g4_synth_write_gguf_vocab(const g4_config *c, g4_type wtype, uint64_t seed, const char *path,
                              int verbose, const g4_tokenizer *tok, g4_err *err)
{
    sy_list L;
    if (prepare(&L, c, wtype, seed, NULL, 0, path, err)) return -1;
    g4_gguf_writer *w = g4_gguf_writer_new();
    if (!w) { free(L.t); return g4_fail(err, "%s: out of memory", path); }

    char buf[160];
    g4_config_write_gguf(w, c);                          /* gemma4.* keys of spec 5.2 */
    snprintf(buf, sizeof buf, "g4 synthetic %s %s seed %llu", c->name, g4_type_name(wtype),
             (unsigned long long)seed);
    g4_gguf_add_str(w, "general.name", buf);
    g4_gguf_add_u32(w, "general.file_type", file_type_of(wtype));
    /* marker keys: this file is synthetic, and how to make it again (the seed is a string
     * because the writer has no u64 and seeds use all 64 bits) */
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    g4_gguf_add_str(w, "g4.synthetic.seed", buf);
    g4_gguf_add_str(w, "g4.synthetic.config", c->name);
    g4_gguf_add_str(w, "g4.synthetic.type", g4_type_name(wtype));
    if (!tok) g4_config_write_gguf_ids(w, c);
    else if (g4_tokenizer_write_gguf(tok, w, err)) { g4_gguf_writer_free(w); free(L.t); return -1; }

    for (int i = 0; i < L.n; i++) {
        sy_tensor *t = &L.t[i];
        g4_gguf_add_tensor_rows(w, t->name, t->type, t->n_dims, t->ne, synth_row_cb, t);
    }
    progress_ctx pc = { g4_now(), g4_now(), isatty(2) };
    int r = g4_gguf_write(w, path, verbose ? progress : NULL, &pc, err);
    if (r == 0 && verbose)
        fprintf(stderr, "g4: wrote %s: %d tensors in %.1f s\n", path, L.n, g4_now() - pc.t0);
    g4_gguf_writer_free(w);
    free(L.t);
    return r;
}

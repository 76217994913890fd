/* bench.c - end-to-end benchmark: prefill and decode speed of one model, as JSON lines.
 *
 * Two tests, named like llama-bench's: "ppN" (one forward pass over N prompt tokens from an
 * empty cache) and "tgN" (N single-token decode steps after an untimed N_pp-token prefill, each
 * feeding back the greedy token). Each is repeated `reps` times after one untimed warm-up pass
 * (the warm-up pays the first touch of the weights: page faults of the mmap or of fresh
 * memory, slow on these VMs; it is reported as first_s).
 *
 * Every line carries its context so results can be compared across commits and machines:
 * commit (read at run time with git, "unknown" outside a work tree) and whether the tree was
 * dirty, CPU model, kernel table, threads, model source, weight type and bytes, the samples,
 * median, tokens/s, achieved weight bandwidth for decode (weight bytes / seconds per token),
 * load time, peak RSS, the load average when the run started, and an FNV-1a hash of the final
 * logits' float bits (a bit-exactness fingerprint: equal hashes, equal logits).
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- context of the run ----------------------------------------------------------------- */

/* copy a string, cut to cap - 1 bytes */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* first line of a command's output, trimmed; "" if it failed */
static void run_line(const char *cmd, char *out, size_t cap)
{
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (!fgets(out, (int)cap, p)) out[0] = 0;
    while (fgetc(p) != EOF) {}
    if (pclose(p) != 0) out[0] = 0;
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) out[--n] = 0;
}

/* git commit of the tree the binary lives in (or the current directory) */
static void git_commit(char *commit, size_t cap, int *dirty)
{
    char dir[512] = ".", cmd[700], tmp[64];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n > 0) {
        dir[n] = 0;
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
    } else snprintf(dir, sizeof dir, ".");
    if (strchr(dir, '\'')) snprintf(dir, sizeof dir, ".");
    snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse --short HEAD 2>/dev/null", dir);
    run_line(cmd, commit, cap);
    if (!commit[0]) { run_line("git rev-parse --short HEAD 2>/dev/null", commit, cap); snprintf(dir, sizeof dir, "."); }
    if (!commit[0]) { snprintf(commit, cap, "unknown"); *dirty = -1; return; }
    snprintf(cmd, sizeof cmd, "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null | head -1", dir);
    run_line(cmd, tmp, sizeof tmp);
    *dirty = tmp[0] != 0;
}

/* the CPU's name from /proc/cpuinfo (x86 "model name", arm "Hardware"/"CPU part", riscv "uarch") */
static void cpu_model(char *out, size_t cap)
{
    static const char *keys[] = { "model name", "Hardware", "uarch", "cpu model", "Processor", "isa" };
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512], best[512] = "";
    int best_rank = 99;
    while (fgets(line, sizeof line, f)) {
        for (int k = 0; k < (int)(sizeof keys / sizeof keys[0]); k++) {
            size_t kl = strlen(keys[k]);
            if (k < best_rank && strncmp(line, keys[k], kl) == 0 && (line[kl] == ' ' || line[kl] == '\t' || line[kl] == ':')) {
                char *colon = strchr(line, ':');
                if (!colon) continue;
                colon++;
                while (*colon == ' ' || *colon == '\t') colon++;
                size_t n = strlen(colon);
                while (n && (colon[n - 1] == '\n' || colon[n - 1] == ' ')) colon[--n] = 0;
                if (n) { copy_str(best, sizeof best, colon); best_rank = k; }
            }
        }
    }
    fclose(f);
    if (best[0]) copy_str(out, cap, best);
}

static void loadavg(double la[3])
{
    la[0] = la[1] = la[2] = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = la[1] = la[2] = -1;
    fclose(f);
}

void g4_bench_json_head(FILE *f, const g4_bench_host *h, const char *kernels, int threads)
{
    fprintf(f, "{\"commit\": ");
    g4_bench_json_str(f, h->commit);
    fprintf(f, ", \"dirty\": %s, \"cpu\": ", h->dirty < 0 ? "null" : h->dirty ? "true" : "false");
    g4_bench_json_str(f, h->cpu);
    fprintf(f, ", \"kernels\": ");
    g4_bench_json_str(f, kernels);
    fprintf(f, ", \"threads\": %d", threads);
}

void g4_bench_host_read(g4_bench_host *h)
{
    loadavg(h->loadavg);           /* before we add load ourselves */
    git_commit(h->commit, sizeof h->commit, &h->dirty);
    cpu_model(h->cpu, sizeof h->cpu);
}

/* ---- helpers ---------------------------------------------------------------------------- */

void g4_bench_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') { fputc('\\', f); fputc(ch, f); }
        else if (ch < 32) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double g4_bench_median(const double *v, int n)
{
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return v[0];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* FNV-1a over the bytes of the float bits (little-endian order of each 32-bit word, so the hash
 * is the same on any host) */
static uint64_t logits_hash(const float *x, int n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int b = 0; b < 4; b++) { h ^= (u >> (8 * b)) & 0xFF; h *= 0x100000001B3ull; }
    }
    return h;
}

typedef struct {
    g4_bench_host host;        /* commit, cpu, load average at the start */
    const g4_model *m; const g4_kernels *k; const g4_bench_opts *o;
    size_t wbytes;
    double first_s;
} ctx_t;

static void emit(FILE *out, const ctx_t *c, const char *test, int n_tok, const double *samples,
                 int reps, int decode, uint64_t hash)
{
    double med = g4_bench_median(samples, reps);
    /* the ref table is single-threaded whatever -t says */
    g4_bench_json_head(out, &c->host, c->k->name, strcmp(c->k->name, "ref") ? c->o->threads : 1);
    fprintf(out, ", \"model\": ");
    g4_bench_json_str(out, c->m->source);
    fprintf(out, ", \"config\": ");
    g4_bench_json_str(out, c->m->cfg.name);
    fprintf(out, ", \"wtype\": ");
    const char *tn = g4_type_name(c->m->wtype);
    g4_bench_json_str(out, tn ? tn : "?");
    fprintf(out, ", \"weight_bytes\": %zu, \"test\": \"%s\", \"n_tokens\": %d, \"ctx\": %d, "
            "\"samples\": [", c->wbytes, test, n_tok, c->o->ctx);
    for (int i = 0; i < reps; i++) fprintf(out, "%s%.6f", i ? ", " : "", samples[i]);
    fprintf(out, "], \"median_s\": %.6f, \"tok_s\": %.4f", med, med > 0 ? n_tok / med : 0.0);
    if (decode && med > 0) fprintf(out, ", \"gb_s\": %.4f", c->wbytes / (med / n_tok) / 1e9);
    else fprintf(out, ", \"gb_s\": null");
    fprintf(out, ", \"load_s\": %.6f, \"first_s\": %.6f, \"peak_rss\": %zu, "
            "\"loadavg\": [%.2f, %.2f, %.2f], \"logits_hash\": \"%016llx\"}\n",
            c->o->load_s, c->first_s, g4_peak_rss(), c->host.loadavg[0], c->host.loadavg[1], c->host.loadavg[2],
            (unsigned long long)hash);
    fflush(out);
}

/* ---- the tests -------------------------------------------------------------------------- */

int g4_bench_run(const g4_model *m, const g4_kernels *k, const g4_bench_opts *o, FILE *out,
                 g4_err *err)
{
    const g4_config *cfg = &m->cfg;
    ctx_t c;
    memset(&c, 0, sizeof c);
    g4_bench_host_read(&c.host);
    c.m = m; c.k = k; c.o = o;
    c.wbytes = g4_model_weight_bytes(m);

    int pp = o->pp > 0 ? o->pp : 1;           /* the tg test needs a prompt of at least one */
    int *prompt = malloc((size_t)pp * sizeof *prompt);       /* [pp] token ids */
    double *samples = malloc((size_t)o->reps * sizeof *samples);
    float *lg = malloc((size_t)cfg->vocab * sizeof *lg);     /* [vocab] sampler scratch */
    g4_state s; memset(&s, 0, sizeof s);
    g4_sampler smp; memset(&smp, 0, sizeof smp);
    int r = -1;
    if (!prompt || !samples || !lg) { g4_fail(err, "bench: out of memory"); goto done; }
    /* a fixed prompt: BOS, then ids spread over the vocabulary */
    prompt[0] = cfg->bos;
    for (int i = 1; i < pp; i++) prompt[i] = (int)((1000003ull * i + 12345) % (uint64_t)cfg->vocab);
    if (g4_state_init(&s, m, k, o->ctx, pp, 0, err)) goto done;
    if (g4_sampler_init(&smp, cfg->vocab, 0.0f, 0, 1.0f, 1)) { g4_fail(err, "bench: out of memory"); goto done; }

    /* warm-up: one token, which reads every weight once (first touch of the mmap or of fresh
     * memory); a long prefill here would only double the run time */
    double t0 = g4_now();
    if (g4_forward(&s, prompt, 1, NULL, NULL, NULL, 0, err)) goto done;
    c.first_s = g4_now() - t0;

    char name[32];
    if (o->pp > 0) {
        uint64_t h = 0;
        for (int rep = 0; rep < o->reps; rep++) {
            g4_state_reset(&s);
            t0 = g4_now();
            if (g4_forward(&s, prompt, o->pp, NULL, NULL, NULL, 0, err)) goto done;
            samples[rep] = g4_now() - t0;
            h = logits_hash(s.logits, cfg->vocab);
        }
        snprintf(name, sizeof name, "pp%d", o->pp);
        emit(out, &c, name, o->pp, samples, o->reps, 0, h);
    }
    if (o->tg > 0) {
        uint64_t h = 0;
        for (int rep = 0; rep < o->reps; rep++) {
            g4_state_reset(&s);
            if (g4_forward(&s, prompt, pp, NULL, NULL, NULL, 0, err)) goto done;
            t0 = g4_now();
            for (int i = 0; i < o->tg; i++) {
                memcpy(lg, s.logits, (size_t)cfg->vocab * sizeof *lg);
                int tok = g4_sample(&smp, lg, cfg->suppress, cfg->n_suppress);   /* greedy */
                if (g4_forward(&s, &tok, 1, NULL, NULL, NULL, 0, err)) goto done;
            }
            samples[rep] = g4_now() - t0;
            h = logits_hash(s.logits, cfg->vocab);
        }
        snprintf(name, sizeof name, "tg%d", o->tg);
        emit(out, &c, name, o->tg, samples, o->reps, 1, h);
    }
    r = 0;
done:
    g4_sampler_free(&smp);
    g4_state_free(&s);
    free(lg); free(samples); free(prompt);
    return r;
}

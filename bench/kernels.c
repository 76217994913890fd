/* kernels.c - `g4 bench --kernels-micro`: the kernels one by one at the 12B shapes, next to the
 * machine's own limits measured in the same run.
 *
 * Limits (measured first, best of 3):
 *   dram_read  bytes/s of a plain read loop over a 512 MiB buffer (far beyond any cache), on 1
 *              thread and on the kernel thread count: what a bandwidth-bound kernel can reach
 *   fma_peak   GFLOP/s of an fp32 FMA loop of the fastest table this CPU runs (its fma_peak
 *              entry: independent vector FMA chains), on 1 thread and on the thread count
 * Kernels (table chosen like `g4 run`: --kernels, $G4_KERNELS, or the best for this CPU):
 *   gemv_<type>  T = 1 matmul (decode): 15360 x 3840 (ffn gate/up) and 3840 x 15360 (ffn down).
 *                Several copies of the matrix are cycled through so the working set (>= 256 MiB)
 *                never fits a cache: weight bytes stream from DRAM as in a decode step. Reported
 *                as GB/s of weights and as a fraction of dram_read on the same thread count.
 *   gemv_cached_<type>  the same GEMV on 1 thread on a slice of <= 512 KiB (cols 3840),
 *                repeated so the weights come from cache: one core's compute ceiling in weight
 *                GB/s. Below the 1-thread dram_read, decode is bound by the kernel, not DRAM.
 *   gemm_<type>  T = 64, 280, 750 (prompt, image, 30 s of audio) on 15360 x 3840: useful GFLOP/s
 *                (2 rows cols T / s) and the fraction of fma_peak.
 *   rmsnorm (3840), attention (16 heads x 256, 1024 keys: a decode step of a sliding layer),
 *   geglu (64 x 15360), softcap (262144 logits): seconds per call.
 * Output: one JSON object per line on stdout with the run's context (commit, dirty, cpu,
 * kernels, threads, loadavg) like `g4 bench`; progress on stderr. docs/BENCH.md has the fields.
 *
 * Uses only g4.h (this file is linked into g4-ref too); threads for the limits are its own.
 */
#include "bench.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: g4 bench --kernels-micro [options]\n"
    "  --types LIST    weight types, comma separated (default f32,f16,bf16,q8_0,q4_0,q4_k,q6_k)\n"
    "  --T LIST        GEMM token counts (default 64,280,750; 64 for the ref table)\n"
    "  -t N            threads for the kernels (default: online CPUs)\n"
    "  --reps R        timed repetitions, median reported (default 3)\n"
    "  --kernels NAME  kernel table (default: best for this CPU, or $G4_KERNELS)\n"
    "  --quick         1/16 of the shapes and a 64 MiB read buffer (a smoke test)\n"
    "  --limits        only the limits (DRAM read, FMA peak): for scripts that bench something else\n"
    "prints one JSON object per line on stdout.\n";

/* ---- context ------------------------------------------------------------------------------ */

typedef struct {
    g4_bench_host host;        /* commit, cpu, load average (bench/bench.c) */
    const g4_kernels *k;
    int threads;
    double dram[2], fma[2];   /* limits: [0] 1 thread, [1] `threads` threads (<0 unknown) */
    FILE *out;
} ctx_t;

static void jnum(FILE *f, const char *key, double v)
{
    if (v >= 0 && isfinite(v)) fprintf(f, ", \"%s\": %.6g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

/* one line: test, type and shape, samples, and the figures with their limits */
static void emit(const ctx_t *c, const char *test, const char *wtype, int64_t rows, int64_t cols,
                 int T, int threads, double *samples, int reps, double flop, double bytes)
{
    FILE *f = c->out;
    double med = g4_bench_median(samples, reps);
    g4_bench_json_head(f, &c->host, c->k->name, threads);
    fprintf(f, ", \"loadavg\": [%.2f, %.2f, %.2f], \"test\": ",
            c->host.loadavg[0], c->host.loadavg[1], c->host.loadavg[2]);
    g4_bench_json_str(f, test);
    fprintf(f, ", \"wtype\": ");
    if (wtype) g4_bench_json_str(f, wtype); else fprintf(f, "null");
    fprintf(f, ", \"rows\": %lld, \"cols\": %lld, \"T\": %d, \"samples\": [",
            (long long)rows, (long long)cols, T);
    for (int i = 0; i < reps; i++) fprintf(f, "%s%.6g", i ? ", " : "", samples[i]);
    fprintf(f, "], \"median_s\": %.6g", med);
    const int li = threads > 1 ? 1 : 0;
    double gf = flop > 0 && med > 0 ? flop / med / 1e9 : -1, gb = bytes > 0 && med > 0 ? bytes / med / 1e9 : -1;
    jnum(f, "gflop_s", gf);
    jnum(f, "gb_s", gb);
    jnum(f, "limit_fma_gflop_s", c->fma[li]);
    jnum(f, "frac_fma", gf > 0 && c->fma[li] > 0 ? gf / c->fma[li] : -1);
    jnum(f, "limit_dram_gb_s", c->dram[li]);
    jnum(f, "frac_dram", gb > 0 && c->dram[li] > 0 ? gb / c->dram[li] : -1);
    fprintf(f, "}\n");
    fflush(f);
}

/* a limit line: the figure alone */
static void emit_limit(const ctx_t *c, const char *test, int threads, const char *key, double v)
{
    FILE *f = c->out;
    g4_bench_json_head(f, &c->host, c->k->name, threads);
    fprintf(f, ", \"loadavg\": [%.2f, %.2f, %.2f], \"test\": ",
            c->host.loadavg[0], c->host.loadavg[1], c->host.loadavg[2]);
    g4_bench_json_str(f, test);
    jnum(f, key, v);
    fprintf(f, "}\n");
    fflush(f);
}

/* ---- limits ------------------------------------------------------------------------------- */

typedef struct { const uint64_t *a; size_t n; uint64_t sum; atomic_int *go; } rd_arg;

static void *read_part(void *p)
{
    rd_arg *r = p;
    while (r->go && !atomic_load(r->go)) {}
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (size_t i = 0; i + 8 <= r->n; i += 8) {
        s0 += r->a[i]; s1 += r->a[i + 1]; s2 += r->a[i + 2]; s3 += r->a[i + 3];
        s4 += r->a[i + 4]; s5 += r->a[i + 5]; s6 += r->a[i + 6]; s7 += r->a[i + 7];
    }
    r->sum = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    return NULL;
}

/* GB/s reading n words with `threads` threads (each its own slice), best of 3 */
static double dram_read(const uint64_t *a, size_t n, int threads)
{
    double best = -1;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[64];
        rd_arg args[64];
        atomic_int go;
        atomic_init(&go, 0);
        if (threads > 64) threads = 64;
        size_t per = n / (size_t)threads / 8 * 8;
        int started = 0;
        for (int i = 0; i < threads; i++) {
            args[i] = (rd_arg){ a + per * i, per, 0, &go };
            if (i > 0) { if (pthread_create(&th[i], NULL, read_part, &args[i])) break; started++; }
        }
        double t0 = g4_now();
        atomic_store(&go, 1);
        read_part(&args[0]);
        for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
        double t = g4_now() - t0;
        if (started != threads - 1) return -1;
        double gb = (double)per * threads * 8 / t / 1e9;
        volatile uint64_t sink = args[0].sum;
        (void)sink;
        if (gb > best) best = gb;
    }
    return best;
}

static void limits(ctx_t *c, int quick)
{
    const size_t bytes = (size_t)(quick ? 64 : 512) << 20;
    size_t n = bytes / 8;
    uint64_t *a = malloc(bytes);
    c->dram[0] = c->dram[1] = c->fma[0] = c->fma[1] = -1;
    if (a) {
        for (size_t i = 0; i < n; i++) a[i] = i * 0x9E3779B97F4A7C15ull;   /* touch every page */
        c->dram[0] = dram_read(a, n, 1);
        c->dram[1] = c->threads > 1 ? dram_read(a, n, c->threads) : c->dram[0];
        free(a);
    }
    /* the FMA peak of the best table here (the ref table has no vector unit of its own) */
    g4_err err;
    const g4_kernels *best = g4_kernels_pick(NULL, &err);
    if (c->k->fma_peak) best = c->k;
    if (best && best->fma_peak) {
        for (int rep = 0; rep < 3; rep++) {
            double g1 = best->fma_peak(1, quick ? 0.05 : 0.2);
            double gn = c->threads > 1 ? best->fma_peak(c->threads, quick ? 0.05 : 0.2) : g1;
            if (g1 > c->fma[0]) c->fma[0] = g1;
            if (gn > c->fma[1]) c->fma[1] = gn;
        }
    }
    emit_limit(c, "dram_read", 1, "gb_s", c->dram[0]);
    if (c->threads > 1) emit_limit(c, "dram_read", c->threads, "gb_s", c->dram[1]);
    emit_limit(c, "fma_peak", 1, "gflop_s", c->fma[0]);
    if (c->threads > 1) emit_limit(c, "fma_peak", c->threads, "gflop_s", c->fma[1]);
    fprintf(stderr, "limits: DRAM read %.1f GB/s (1 thread), %.1f GB/s (%d); fp32 FMA %.1f GFLOP/s (1), %.1f (%d)\n",
            c->dram[0], c->dram[1], c->threads, c->fma[0], c->fma[1], c->threads);
}

/* ---- matrices ----------------------------------------------------------------------------- */

static uint64_t rng = 7;
static float grand(void)
{
    uint64_t r = g4_splitmix64(&rng);
    return (float)(((int)(r & 0xff) + (int)((r >> 8) & 0xff) + (int)((r >> 16) & 0xff) +
                    (int)((r >> 24) & 0xff) - 510) / 147.0);
}

/* a rows x cols matrix of type t with random values (std ~1/sqrt(cols)) */
static uint8_t *make_matrix(g4_type t, int64_t rows, int64_t cols)
{
    size_t rb = g4_row_bytes(t, cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    float *row = malloc(sizeof(float) * (size_t)cols);
    if (!w || !row) { free(w); free(row); return NULL; }
    const float s = 1.0f / sqrtf((float)cols);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = grand() * s;
        g4_quant_row(t, row, w + (size_t)r * rb, cols);
    }
    free(row);
    return w;
}

static g4_tensor view(g4_type t, const uint8_t *data, int64_t rows, int64_t cols)
{
    g4_tensor w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "bench");
    w.type = t; w.n_dims = 2; w.ne[0] = cols; w.ne[1] = rows; w.ne[2] = w.ne[3] = 1;
    w.data = data; w.nbytes = g4_row_bytes(t, cols) * (size_t)rows;
    return w;
}

static float *rand_floats(size_t n, float scale)
{
    float *x = malloc(sizeof(float) * n);
    if (x) for (size_t i = 0; i < n; i++) x[i] = grand() * scale;
    return x;
}

/* GEMV: cycle through copies so the working set is >= 256 MiB (never cached) */
static int bench_gemv(ctx_t *c, g4_type t, int64_t rows, int64_t cols, int reps, int quick)
{
    const size_t bytes = g4_row_bytes(t, cols) * (size_t)rows;
    int copies = (int)(((size_t)(quick ? 64 : 256) << 20) / bytes) + 1;
    if (copies < 2) copies = 2;
    uint8_t **w = calloc((size_t)copies, sizeof *w);
    float *x = rand_floats((size_t)cols, 1.0f), *y = malloc(sizeof(float) * (size_t)rows);
    int ok = w && x && y;
    if (ok && (w[0] = make_matrix(t, rows, cols)) == NULL) ok = 0;
    for (int i = 1; ok && i < copies; i++) {
        if (!(w[i] = malloc(bytes))) { ok = 0; break; }
        memcpy(w[i], w[0], bytes);
    }
    if (ok) {
        double s[64];
        for (int i = 0; i < copies; i++) { g4_tensor v = view(t, w[i], rows, cols); c->k->matmul(y, &v, x, 1); }
        for (int rep = 0; rep < reps; rep++) {
            double t0 = g4_now();
            for (int i = 0; i < copies; i++) { g4_tensor v = view(t, w[i], rows, cols); c->k->matmul(y, &v, x, 1); }
            s[rep] = (g4_now() - t0) / copies;
        }
        char name[32];
        snprintf(name, sizeof name, "gemv_%s", g4_type_name(t));
        emit(c, name, g4_type_name(t), rows, cols, 1, c->threads, s, reps, 2.0 * rows * cols, (double)bytes);
    }
    for (int i = 0; w && i < copies; i++) free(w[i]);
    free(w); free(x); free(y);
    return ok ? 0 : -1;
}

/* GEMV from cache on one thread: a slice of at most 512 KiB of rows (the cols of the 12B shape),
 * called over and over, so it stays in L2 (or L3). Weight GB/s here is one core's compute
 * ceiling: when it is below the 1-thread dram_read, decode is bound by the kernel's vector work,
 * not by DRAM (frac_dram says by how much). One thread, because waking the pool for calls this
 * short would measure the wake-up instead. */
static int bench_gemv_cached(ctx_t *c, g4_type t, int64_t cols, int reps)
{
    const size_t rb = g4_row_bytes(t, cols);
    int64_t rows = (int64_t)((512u << 10) / rb) / 16 * 16;     /* whole 4-row tiles */
    if (rows < 16) rows = 16;
    uint8_t *w = make_matrix(t, rows, cols);
    float *x = rand_floats((size_t)cols, 1.0f), *y = malloc(sizeof(float) * (size_t)rows);
    int ok = w && x && y;
    if (ok) {
        if (c->k->threads) c->k->threads(1);
        g4_tensor v = view(t, w, rows, cols);
        double s[64];
        int inner = 1;
        for (;;) {                                       /* about 20 ms per sample */
            double t0 = g4_now();
            for (int i = 0; i < inner; i++) c->k->matmul(y, &v, x, 1);
            if (g4_now() - t0 > 0.02 || inner > (1 << 20)) break;
            inner *= 2;
        }
        for (int rep = 0; rep < reps; rep++) {
            double t0 = g4_now();
            for (int i = 0; i < inner; i++) c->k->matmul(y, &v, x, 1);
            s[rep] = (g4_now() - t0) / inner;
        }
        char name[40];
        snprintf(name, sizeof name, "gemv_cached_%s", g4_type_name(t));
        emit(c, name, g4_type_name(t), rows, cols, 1, 1, s, reps, 2.0 * rows * cols, (double)v.nbytes);
        if (c->k->threads) c->k->threads(c->threads);
    }
    free(w); free(x); free(y);
    return ok ? 0 : -1;
}

static int bench_gemm(ctx_t *c, g4_type t, int64_t rows, int64_t cols, const int *Ts, int nT, int reps)
{
    uint8_t *w = make_matrix(t, rows, cols);
    if (!w) return -1;
    g4_tensor v = view(t, w, rows, cols);
    int r = 0;
    for (int i = 0; i < nT && r == 0; i++) {
        const int T = Ts[i];
        float *x = rand_floats((size_t)T * cols, 1.0f), *y = malloc(sizeof(float) * (size_t)T * rows);
        if (!x || !y) { r = -1; free(x); free(y); break; }
        double s[64];
        c->k->matmul(y, &v, x, T);                          /* warm-up */
        for (int rep = 0; rep < reps; rep++) {
            double t0 = g4_now();
            c->k->matmul(y, &v, x, T);
            s[rep] = g4_now() - t0;
        }
        char name[32];
        snprintf(name, sizeof name, "gemm_%s", g4_type_name(t));
        emit(c, name, g4_type_name(t), rows, cols, T, c->threads, s, reps, 2.0 * rows * cols * T,
             (double)v.nbytes);
        free(x); free(y);
    }
    free(w);
    return r;
}

/* ---- the other kernels -------------------------------------------------------------------- */

static void bench_ops(ctx_t *c, int reps, int quick)
{
    const int d = quick ? 256 : 3840, dff = quick ? 1024 : 15360, V = quick ? 16384 : 262144;
    const int H = 16, hd = 256, group = 2, nk = quick ? 128 : 1024, Tg = 64;
    float *x = rand_floats((size_t)Tg * dff, 1.0f), *y = malloc(sizeof(float) * (size_t)Tg * dff);
    float *w = rand_floats((size_t)d, 1.0f), *u = rand_floats((size_t)Tg * dff, 1.0f);
    float *K = rand_floats((size_t)nk * (H / group) * hd, 1.0f), *Vv = rand_floats((size_t)nk * (H / group) * hd, 1.0f);
    float *q = rand_floats((size_t)H * hd, 0.2f), *o = malloc(sizeof(float) * H * hd);
    float *sc = malloc(sizeof(float) * (size_t)(nk + 1)), *lg = rand_floats((size_t)V, 20.0f);
    const float **kr = malloc(sizeof(float *) * nk), **vr = malloc(sizeof(float *) * nk);
    if (!x || !y || !w || !u || !K || !Vv || !q || !o || !sc || !lg || !kr || !vr) goto done;
    for (int j = 0; j < nk; j++) { kr[j] = K + (size_t)j * (H / group) * hd; vr[j] = Vv + (size_t)j * (H / group) * hd; }
    double s[64];
    const int inner = quick ? 10 : 200;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = g4_now();
        for (int i = 0; i < inner; i++) c->k->rmsnorm(y, x, w, d, 1e-6f);
        s[rep] = (g4_now() - t0) / inner;
    }
    emit(c, "rmsnorm", NULL, 1, d, 1, 1, s, reps, -1, 3.0 * d * 4);
    for (int rep = 0; rep < reps; rep++) {
        double t0 = g4_now();
        for (int i = 0; i < inner / 10 + 1; i++) c->k->attention(o, q, H, hd, group, kr, vr, nk, sc, 0);
        s[rep] = (g4_now() - t0) / (inner / 10 + 1);
    }
    emit(c, "attention", NULL, H, hd, nk, c->threads, s, reps, 4.0 * H * hd * nk,
         2.0 * nk * (H / group) * hd * 4);
    for (int rep = 0; rep < reps; rep++) {
        double t0 = g4_now();
        c->k->geglu(y, x, u, Tg * dff, 0);
        s[rep] = g4_now() - t0;
    }
    emit(c, "geglu", NULL, Tg, dff, Tg, c->threads, s, reps, -1, 3.0 * Tg * dff * 4);
    for (int rep = 0; rep < reps; rep++) {
        memcpy(y, lg, sizeof(float) * (size_t)(V < Tg * dff ? V : Tg * dff));
        double t0 = g4_now();
        c->k->softcap(lg, V, 30.0f, 0);
        s[rep] = g4_now() - t0;
    }
    emit(c, "softcap", NULL, 1, V, 1, c->threads, s, reps, -1, 2.0 * V * 4);
done:
    free(x); free(y); free(w); free(u); free(K); free(Vv); free(q); free(o); free(sc); free(lg);
    free(kr); free(vr);
}

/* ---- command line ------------------------------------------------------------------------- */

static int parse_list(const char *s, int *out, int max, int is_type)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == max) return -1;
        if (is_type) { out[n] = g4_type_from_name(tok); if (out[n] < 0) return -1; }
        else { char *e; long v = strtol(tok, &e, 10); if (*e || v < 1 || v > 4096) return -1; out[n] = (int)v; }
        n++;
    }
    return n;
}

int g4_bench_kernels_cli(int argc, char **argv)
{
    int types[16] = { G4_T_F32, G4_T_F16, G4_T_BF16, G4_T_Q8_0, G4_T_Q4_0, G4_T_Q4_K, G4_T_Q6_K };
    int ntypes = 7, Ts[16] = { 64, 280, 750 }, nT = 3, T_given = 0, reps = 3, quick = 0, limits_only = 0;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *kname = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 0; }
        if (!strcmp(a, "--quick")) { quick = 1; continue; }
        if (!strcmp(a, "--limits")) { limits_only = 1; continue; }
        if (strcmp(a, "--types") && strcmp(a, "--T") && strcmp(a, "-t") && strcmp(a, "--reps") &&
            strcmp(a, "--kernels")) { fprintf(stderr, "g4: unknown option '%s'\n%s", a, usage); return 2; }
        if (!v) { fprintf(stderr, "g4: %s needs a value\n%s", a, usage); return 2; }
        i++;
        if (!strcmp(a, "--types")) {
            if ((ntypes = parse_list(v, types, 16, 1)) < 1) { fprintf(stderr, "g4: --types: bad list '%s'\n%s", v, usage); return 2; }
        } else if (!strcmp(a, "--T")) {
            if ((nT = parse_list(v, Ts, 16, 0)) < 1) { fprintf(stderr, "g4: --T: bad list '%s'\n%s", v, usage); return 2; }
            T_given = 1;
        } else if (!strcmp(a, "-t")) {
            threads = strtol(v, NULL, 10);
            if (threads < 1 || threads > 256) { fprintf(stderr, "g4: -t: '%s' is not 1..256\n%s", v, usage); return 2; }
        } else if (!strcmp(a, "--reps")) {
            reps = (int)strtol(v, NULL, 10);
            if (reps < 1 || reps > 64) { fprintf(stderr, "g4: --reps: '%s' is not 1..64\n%s", v, usage); return 2; }
        } else kname = v;                /* --kernels */
    }
    if (threads < 1) threads = 1;
    g4_err err;
    ctx_t c;
    memset(&c, 0, sizeof c);
    g4_bench_host_read(&c.host);
    c.out = stdout;
    c.k = g4_kernels_pick(kname, &err);
    if (!c.k) { fprintf(stderr, "g4: %s\n", err.msg); return 1; }
    c.threads = c.k->threads ? c.k->threads((int)threads) : 1;   /* ref: always one thread */
    if (!c.k->threads && !T_given) { Ts[0] = 64; nT = 1; }
    const int64_t d = quick ? 256 : 3840, ff = quick ? 1024 : 15360;
    fprintf(stderr, "bench kernels: table %s, %d thread(s)\n", c.k->name, c.threads);
    limits(&c, quick);
    if (limits_only) return 0;
    int rc = 0;
    for (int i = 0; i < ntypes; i++) {
        g4_type t = (g4_type)types[i];
        fprintf(stderr, "bench kernels: %s\n", g4_type_name(t));
        if (bench_gemv(&c, t, ff, d, reps, quick) || bench_gemv(&c, t, d, ff, reps, quick) ||
            bench_gemv_cached(&c, t, d, reps) ||
            bench_gemm(&c, t, ff, d, Ts, nT, reps)) {
            fprintf(stderr, "g4: bench --kernels-micro: out of memory for %s\n", g4_type_name(t));
            rc = 1;
        }
    }
    bench_ops(&c, reps, quick);
    return rc;
}

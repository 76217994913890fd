/* test_kernels.c - every entry of every opt kernel table this CPU runs, against its ref twin.
 *
 * Inputs are random with awkward sizes: odd lengths and column tails for the float weight types,
 * non-multiples of the 8-lane width, quantized rows of 1..n blocks, one row, one token,
 * T = 1, 3, 17, 64 (token blocks and tile tails), row counts that cross the 16-row chunks. Every
 * output buffer has canaries on both sides (an overrun fails) and starts as NaN (an output that
 * is never written fails). NaN/Inf in any output fails.
 *
 * Tolerances (docs/NUMERICS.md, "opt"), u = 2^-24, gamma(m) = m u / (1 - m u):
 *  - matmul, every weight type: opt forms exactly ref's fp32 weights in registers (the same
 *    integers, scales and single rounding; test_dequant_exact checks it) and both sides sum the
 *    same products w_i x_i in different orders (ref: one accumulator of rounded products; opt:
 *    8 or 4 FMA lanes in column order, a fixed horizontal sum, an FMA tail). Each is within
 *    gamma(n) sum |w_i x_i| of the exact sum (recursive summation), so
 *        |opt - ref| <= 2 gamma(n + 4) sum_i |w_i x_i|.
 *  - rmsnorm: sums of squares in double in another order; ms may round to the neighbouring
 *    float: |opt - ref| <= 6 u |ref|.
 *  - layernorm: the mean may round to the neighbouring float:
 *        |opt - ref| <= 4 u (|mean| + |x - mean|) rstd |w| + 4 u |ref| + 1e-30.
 *  - rope: the same fp32 operations: bit-identical.
 *  - attention: scores differ by at most D = max_j 2 gamma(hd + 4) sum_i |q_i k_ji|; each
 *    e_j = exp(s_j - max) then differs relatively by r_j <= expm1(2D + 2u |s_j - max|
 *    + 2 E_EXP), the normalized p_j by r_j + max_j r_j + 4u, and the output by
 *        |opt_i - ref_i| <= sum_j (r_j + r_max + 4u + 2 gamma(n_keys + 2)) p_j |v_ji|.
 *  - geglu: both compute y = c (g + 0.044715 g^3) with the same operations; tanh differs by at
 *    most E_TANH (opt) + 2u (libm):
 *        |opt - ref| <= 0.5 |g| |up| (E_TANH + 12 u) + 4 u |ref|.
 *  - softcap: |opt - ref| <= cap (E_TANH + 2u) + 2 u |ref|.
 *  E_TANH = 8u (absolute) and E_EXP = 4u (relative) are the opt implementations' bounds: the
 *  vector tanh's error is measured here against double tanh over a dense sweep
 *  (test_tanh_accuracy); the exp bound is from an exhaustive sweep (docs/NUMERICS.md).
 * Every checker is shown to fail on a perturbed output (test_checks_can_fail).
 *
 * Also: quantized weights dequantized in registers equal g4_dequant_row bit for bit; results
 * bit-identical for 1, 2 and 3 threads; batches of < 8 tokens bit-identical to one token at a
 * time, a token's result the same in any batch of >= 8; the GEMM (T >= 8) of every table equal
 * to a scalar fmaf chain in column order, bit for bit (so the same on every ISA); bf16 = 1
 * entries identical to ref (they fall back to it). Tables of the opt-in q8 mode: their GEMV on
 * Q8_0/Q4_0 weights bit-identical to ref-q8; ref-q8 itself within its derived bound of ref
 * (test_q8_mode_bound).
 *
 * G4_TEST_SMALL=1 (tests/test_neon.sh under qemu) shrinks the shapes.
 */
#include "g4.h"
#include "harness.h"
#include "../opt/opt.h"

#include <float.h>
#include <stdint.h>

#define U (1.0 / 16777216.0)
#define E_TANH (8 * U)
#define E_EXP (4 * U)
#define CANARY 16
#define CANARY_VAL 12345.678f

static double gam(double m) { return m * U / (1 - m * U); }

static int small;
static uint64_t rng = 42;

static double urand(void) { return (double)(g4_splitmix64(&rng) >> 11) / 9007199254740992.0; }
/* bell-shaped in about [-2, 2] */
static float grand(void) { return (float)(urand() + urand() + urand() + urand() - 2.0); }

/* ---- guarded output buffers ------------------------------------------------------------- */

typedef struct { float *base, *p; size_t n; } gbuf;

static gbuf gb_new(size_t n)
{
    gbuf g = { malloc((n + 2 * CANARY) * sizeof(float)), NULL, n };
    for (size_t i = 0; i < n + 2 * CANARY; i++) g.base[i] = CANARY_VAL;
    g.p = g.base + CANARY;
    for (size_t i = 0; i < n; i++) g.p[i] = NAN;
    return g;
}

static int gb_ok(const gbuf *g)
{
    for (int i = 0; i < CANARY; i++)
        if (g->base[i] != CANARY_VAL || g->base[CANARY + g->n + i] != CANARY_VAL) return 0;
    return 1;
}

static void gb_free(gbuf *g) { free(g->base); g->base = g->p = NULL; }

/* ---- the checker every kernel uses ------------------------------------------------------ */

typedef struct { double worst; long bad, nonfinite, n, same; } stat;   /* same: held bit for bit to ref-q8 */

/* count outputs outside their bound; ratio = |a - b| / bound (0/0 counts as 0) */
static void check_vals(stat *s, const float *opt, const float *ref, const double *bound, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->n++;
        if (!isfinite(opt[i]) || !isfinite(ref[i])) { s->nonfinite++; s->bad++; continue; }
        double e = fabs((double)opt[i] - ref[i]);
        double r = e == 0 ? 0 : (bound[i] > 0 ? e / bound[i] : INFINITY);
        if (r > s->worst) s->worst = r;
        if (r > 1) s->bad++;
    }
}

static void report(const char *what, const stat *s)
{
    if (s->same) printf("    %-40s %8ld values  bit-identical to ref-q8 (the q8 mode)\n", what, s->same);
    else printf("    %-40s %8ld values  worst err/bound %.3g%s\n", what, s->n, s->worst,
                s->nonfinite ? "  NON-FINITE" : "");
    CHECK(s->bad == 0, "%s: %ld of %ld values outside the bound (%ld non-finite)", what, s->bad,
          s->n, s->nonfinite);
}

/* ---- tables under test ------------------------------------------------------------------ */

static const g4_kernels *tables[8];
static int n_tables;

/* ---- matmul -------------------------------------------------------------------------------- */

static const g4_type TYPES[] = { G4_T_F32, G4_T_F16, G4_T_BF16, G4_T_Q8_0, G4_T_Q4_0, G4_T_Q4_K, G4_T_Q6_K };
#define N_TYPES 7

typedef struct {
    g4_tensor W;
    uint8_t *wbytes;
    float *wdeq;      /* [rows][cols] dequantized */
    float *mag;       /* [rows][cols] |w| */
    int64_t rows, cols;
} wmat;

static int is_quant(g4_type t) { return g4_type_block(t) > 1; }

static wmat make_w(g4_type t, int64_t rows, int64_t cols)
{
    wmat m = { .rows = rows, .cols = cols };
    size_t rb = g4_row_bytes(t, cols);
    m.wbytes = malloc(rb * rows);
    m.wdeq = malloc(sizeof(float) * rows * cols);
    m.mag = malloc(sizeof(float) * rows * cols);
    float *row = malloc(sizeof(float) * cols);
    for (int64_t r = 0; r < rows; r++) {
        float scale = (float)(0.01 + 2 * urand());
        for (int64_t c = 0; c < cols; c++) row[c] = grand() * scale;
        if (r % 5 == 3) for (int64_t c = 0; c < cols && c < 32; c++) row[c] = 0;   /* a zero block */
        if (r % 7 == 2) row[cols / 2] = 40 * scale;                                  /* an outlier */
        g4_quant_row(t, row, m.wbytes + r * rb, cols);
        g4_dequant_row(t, m.wbytes + r * rb, m.wdeq + r * cols, cols);
        for (int64_t c = 0; c < cols; c++) m.mag[r * cols + c] = fabsf(m.wdeq[r * cols + c]);
    }
    free(row);
    memset(&m.W, 0, sizeof m.W);
    snprintf(m.W.name, sizeof m.W.name, "w");
    m.W.type = t; m.W.n_dims = 2;
    m.W.ne[0] = cols; m.W.ne[1] = rows; m.W.ne[2] = m.W.ne[3] = 1;
    m.W.data = m.wbytes; m.W.nbytes = rb * rows;
    return m;
}

static void free_w(wmat *m) { free(m->wbytes); free(m->wdeq); free(m->mag); }

static float *make_x(int T, int64_t cols)
{
    float *x = malloc(sizeof(float) * T * cols);
    for (int t = 0; t < T; t++) {
        float scale = (float)(0.05 + 3 * urand());
        for (int64_t c = 0; c < cols; c++) x[t * cols + c] = grand() * scale;
        if (t % 3 == 1 && cols >= 32) for (int c = 0; c < 32; c++) x[t * cols + c] = 0;  /* d = 0 */
        if (t % 4 == 2) x[t * cols + cols - 1] = 25 * scale;                              /* spike */
    }
    return x;
}

/* the bound of every output: 2 gamma(n + 4) sum |w_i x_i| */
static void mm_bounds(const wmat *m, const float *X, int T, double *b1)
{
    const int64_t n = m->cols;
    for (int t = 0; t < T; t++) {
        const float *x = X + (int64_t)t * n;
        for (int64_t r = 0; r < m->rows; r++) {
            const float *mg = m->mag + r * n;
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += (double)mg[i] * fabs(x[i]);
            b1[(int64_t)t * m->rows + r] = 2 * gam((double)n + 4) * s;
        }
    }
}

static void check_mm(const g4_kernels *k, g4_type ty, int64_t rows, int64_t cols, int T, stat *s1)
{
    wmat m = make_w(ty, rows, cols);
    float *X = make_x(T, cols);
    const size_t ny = (size_t)T * rows;
    gbuf Y = gb_new(ny);
    float *Yr = malloc(sizeof(float) * ny);
    double *b1 = malloc(sizeof(double) * ny);
    k->matmul(Y.p, &m.W, X, T);
    CHECK(gb_ok(&Y), "%s %s %lldx%lld T=%d: output canary overwritten", k->name,
          g4_type_name(ty), (long long)rows, (long long)cols, T);
    if (k->act_q8 && (ty == G4_T_Q8_0 || ty == G4_T_Q4_0)) {
        /* the q8 mode's GEMV and GEMM: bit-identical to ref-q8 */
        g4_kernels_ref_q8.matmul(Yr, &m.W, X, T);
        long bad = 0;
        for (size_t i = 0; i < ny; i++) if (memcmp(&Yr[i], &Y.p[i], sizeof(float))) bad++;
        CHECK(bad == 0, "%s %s %lldx%lld T=%d: %ld outputs differ from ref-q8", k->name, g4_type_name(ty),
              (long long)rows, (long long)cols, T, bad);
        s1->same += (long)ny;
    } else {
        g4_kernels_ref.matmul(Yr, &m.W, X, T);
        mm_bounds(&m, X, T, b1);
        check_vals(s1, Y.p, Yr, b1, ny);
    }
    gb_free(&Y); free(Yr); free(b1); free(X); free_w(&m);
}

static void test_matmul(void)
{
    static const int64_t fcols[] = { 1, 7, 8, 33, 100, 257 };
    static const int64_t qcols32[] = { 32, 96, 288 };
    static const int64_t qcols256[] = { 256, 768 };
    static const int64_t rowss[] = { 1, 5, 17, 37 };
    static const int Ts[] = { 1, 3, 17, 64 };
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        for (int yi = 0; yi < N_TYPES; yi++) {
            g4_type ty = TYPES[yi];
            const int64_t *cs; int nc;
            if (!is_quant(ty)) { cs = fcols; nc = 6; }
            else if (g4_type_block(ty) == 32) { cs = qcols32; nc = 3; }
            else { cs = qcols256; nc = 2; }
            stat s1 = { 0 };
            for (int ci = 0; ci < nc; ci++)
                for (int ri = 0; ri < 4; ri++)
                    for (int t = 0; t < 4; t++) {
                        if (small && (Ts[t] == 64 || rowss[ri] == 37) && ci > 0) continue;
                        check_mm(k, ty, rowss[ri], cs[ci], Ts[t], &s1);
                    }
            char what[96];
            snprintf(what, sizeof what, "%s matmul %s vs ref", k->name, g4_type_name(ty));
            report(what, &s1);
        }
    }
}

/* a larger shape like the model's, once per type (skipped in small mode) */
static void test_matmul_large(void)
{
    if (small) { printf("    (small mode: skipped)\n"); return; }
    for (int ti = 0; ti < n_tables; ti++)
        for (int yi = 0; yi < N_TYPES; yi++) {
            stat s1 = { 0 };
            check_mm(tables[ti], TYPES[yi], 70, 1536, 13, &s1);
            char what[96];
            snprintf(what, sizeof what, "%s matmul %s 70x1536 T=13", tables[ti]->name, g4_type_name(TYPES[yi]));
            report(what, &s1);
        }
}

/* Bit-identical for 1, 2, 3 threads (T = 5, 19 and 300). A batch of fewer than 8 tokens equals
 * one token at a time (both GEMV). A token's result is the same in every batch of >= 8 tokens
 * (T = 19 vs its last 16 tokens, vs the first 19 of T = 300, which crosses the 256-token GEMM
 * group): the GEMM's order does not depend on the tile, the group or T. Across the two paths
 * (GEMV vs GEMM) results differ only in fp32 order, held to the bound by test_matmul. */
static void test_matmul_invariance(void)
{
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        if (!k->threads) continue;
        const int keep = k->threads(0);
        for (int yi = 0; yi < N_TYPES; yi++) {
            g4_type ty = TYPES[yi];
            const int64_t rows = 203, cols = is_quant(ty) ? 512 : 203;   /* 3 GEMM row chunks */
            const int TT[3] = { 5, 19, small ? 40 : 300 };
            wmat m = make_w(ty, rows, cols);
            float *X = make_x(TT[2], cols);
            float *Y[3][3];
            int ok_t = 1;
            for (int q = 0; q < 3; q++)
                for (int n = 1; n <= 3; n++) {
                    k->threads(n);
                    Y[q][n - 1] = malloc(sizeof(float) * TT[q] * rows);
                    k->matmul(Y[q][n - 1], &m.W, X, TT[q]);
                    if (n > 1 && memcmp(Y[q][0], Y[q][n - 1], sizeof(float) * TT[q] * rows)) ok_t = 0;
                }
            k->threads(keep);
            CHECK(ok_t, "%s %s: results differ between 1, 2 and 3 threads", k->name, g4_type_name(ty));
            float *Y1 = malloc(sizeof(float) * 5 * rows), *Y16 = malloc(sizeof(float) * 16 * rows);
            for (int t = 0; t < 5; t++) k->matmul(Y1 + (int64_t)t * rows, &m.W, X + (int64_t)t * cols, 1);
            CHECK(memcmp(Y[0][0], Y1, sizeof(float) * 5 * rows) == 0,
                  "%s %s: T=5 at once differs from one token at a time", k->name, g4_type_name(ty));
            k->matmul(Y16, &m.W, X + 3 * cols, 16);
            CHECK(memcmp(Y[1][0] + 3 * rows, Y16, sizeof(float) * 16 * rows) == 0,
                  "%s %s: tokens 3..18 differ between batches of 19 and 16", k->name, g4_type_name(ty));
            CHECK(memcmp(Y[1][0], Y[2][0], sizeof(float) * 19 * rows) == 0,
                  "%s %s: the first 19 tokens differ between batches of 19 and %d", k->name,
                  g4_type_name(ty), TT[2]);
            for (int q = 0; q < 3; q++) for (int n = 0; n < 3; n++) free(Y[q][n]);
            free(Y1); free(Y16); free(X); free_w(&m);
        }
        printf("    %s: 1/2/3 threads bit-identical; T=5 == one token at a time; a token's result "
               "the same in batches of 16, 19 and %d, for all types\n", k->name, small ? 40 : 300);
    }
}

/* The GEMM rule (T >= 8), held exactly: every table's output equals, bit for bit, one scalar
 * fmaf chain over the columns in order on g4_dequant_row's weights (fmaf is correctly
 * rounded, like every vector FMA). So prefill results are the same on every ISA and table;
 * T = 8, 40 (tile tails) and 300 (two 256-token groups; 40 under G4_TEST_SMALL). The q8
 * mode's tables on Q8_0/Q4_0: its own serial rule, one fmaf per block
 * (g4_dot_row_q8_serial, on g4_quant_act_q8's rounding), bit for bit. */
static void test_gemm_serial_fma(void)
{
    static const int TT[] = { 8, 40, 300 };
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        int all = 1;
        for (int yi = 0; yi < N_TYPES; yi++) {
            g4_type ty = TYPES[yi];
            const int64_t rows = 101, cols = is_quant(ty) ? 512 : 203;
            wmat m = make_w(ty, rows, cols);
            float *X = make_x(300, cols), *Y = malloc(sizeof(float) * 300 * rows);
            for (int q = 0; q < 3; q++) {
                const int T = small && TT[q] == 300 ? 40 : TT[q];
                k->matmul(Y, &m.W, X, T);
                long bad = 0;
                const int q8 = k->act_q8 && (ty == G4_T_Q8_0 || ty == G4_T_Q4_0);
                int8_t q[512];
                float d[16];
                for (int t = 0; t < T; t++) {
                    if (q8) g4_quant_act_q8(X + (int64_t)t * cols, cols, q, d);
                    for (int64_t r = 0; r < rows; r++) {
                        float acc = 0.0f;
                        if (q8) acc = g4_dot_row_q8_serial(ty, (const uint8_t *)m.W.data + r * g4_row_bytes(ty, cols), q, d, cols);
                        else
                            for (int64_t c = 0; c < cols; c++) acc = fmaf(m.wdeq[r * cols + c], X[(int64_t)t * cols + c], acc);
                        if (memcmp(&acc, &Y[(int64_t)t * rows + r], sizeof acc)) bad++;
                    }
                }
                CHECK(bad == 0, "%s %s T=%d: %ld outputs differ from the serial fmaf chain", k->name,
                      g4_type_name(ty), T, bad);
                if (bad) all = 0;
            }
            free(X); free(Y); free_w(&m);
        }
        printf("    %s: T >= 8 equals the serial fmaf chain bit for bit, all types%s: %s\n", k->name,
               k->act_q8 ? " (Q8_0/Q4_0: the q8 mode's chain, one fmaf per block)" : "", all ? "yes" : "NO");
    }
}

/* The q8 mode's own error (ref-q8 vs ref, Q8_0 and Q4_0 weights), derived: with
 * x^ = d q the rounded activations, |x - x^| <= d (1/2 + 2^-12) (rounding to nearest of
 * x * fl(1/d), whose two roundings move it by < 2 * 127 u); in the fp32 part of ref-q8 a term
 * meets the scale's rounding, at most ceil(nb/2) FMA roundings in its parity's accumulator, the
 * parity add and 3 tree levels, so it is within gamma(ceil(nb/2) + 5) sum |w x^|; ref's sum
 * within gamma(n) sum |w x|. So
 *   |ref-q8 - ref| <= sum_b d_b (1/2 + 2^-12) sum_{i in b} |w_i| + gamma(ceil(nb/2) + 5) sum |w x^|
 *                     + gamma(n) sum |w x|.
 * From G4_Q8_MAX_T tokens on (the serial rule, g4_dot_row_q8_serial) a term meets the scale's
 * rounding and at most nb FMA roundings: gamma(nb + 1) replaces gamma(ceil(nb/2) + 5).
 * Non-finite activations must give non-finite outputs (d = NaN), never a silent 0. */
static void test_q8_mode_bound(void)
{
    static const g4_type qt[] = { G4_T_Q8_0, G4_T_Q4_0 };
    double worst = 0;
    long n_out = 0;
    for (int yi = 0; yi < 4; yi++) {
        const int64_t rows = 37, cols = 288, nb = cols / 32;
        const int T = yi < 2 ? 7 : 9;        /* the GEMV's lane-wise rule, then the GEMM's serial one */
        const double gq = T < G4_Q8_MAX_T ? gam((double)((nb + 1) / 2 + 5)) : gam((double)(nb + 1));
        wmat m = make_w(qt[yi % 2], rows, cols);
        float *X = make_x(T, cols), *Y = malloc(sizeof(float) * T * rows), *Yr = malloc(sizeof(float) * T * rows);
        float d[9];
        int8_t q[288];
        g4_kernels_ref_q8.matmul(Y, &m.W, X, T);
        g4_kernels_ref.matmul(Yr, &m.W, X, T);
        for (int t = 0; t < T; t++) {
            const float *x = X + (int64_t)t * cols;
            g4_quant_act_q8(x, cols, q, d);
            for (int64_t r = 0; r < rows; r++) {
                const float *w = m.wdeq + r * cols;
                double b = 0, sq = 0, sx = 0;
                for (int64_t i = 0; i < cols; i++) {
                    b += d[i / 32] * (0.5 + 1.0 / 4096) * fabs(w[i]);
                    sq += fabs((double)w[i] * d[i / 32] * q[i]);
                    sx += fabs((double)w[i] * x[i]);
                }
                b += gq * sq + gam((double)cols) * sx;
                const double e = fabs((double)Y[t * rows + r] - Yr[t * rows + r]);
                CHECK(isfinite(Y[t * rows + r]) && e <= b, "ref-q8 %s t=%d r=%lld: |q8 - exact| %g > bound %g",
                      g4_type_name(qt[yi % 2]), t, (long long)r, e, b);
                if (b > 0 && e / b > worst) worst = e / b;
                n_out++;
            }
        }
        /* a NaN or an infinity in a block poisons that token's outputs */
        X[5] = NAN; X[cols + 40] = INFINITY;
        g4_kernels_ref_q8.matmul(Y, &m.W, X, T);
        long fin = 0;
        for (int64_t i = 0; i < 2 * rows; i++) if (isfinite(Y[i])) fin++;
        CHECK(fin == 0, "ref-q8 %s: %ld finite outputs from non-finite activations", g4_type_name(qt[yi % 2]), fin);
        free(X); free(Y); free(Yr); free_w(&m);
    }
    printf("    ref-q8 vs ref (q8_0, q4_0; T = 7 lane-wise, T = 9 serial): %ld outputs, worst err/bound %.3g; "
           "non-finite inputs stay non-finite\n",
           n_out, worst);
    CHECK(worst > 0.01, "the q8 bound is never approached (%.3g): not a useful checker", worst);
}

/* The q8 mode's prefill GEMM (opt_q8_gemm) on the shapes its driver cuts: several 64-row work
 * items and a tail, rows fewer than a sub-panel, chunks of 64 blocks and a short last chunk,
 * T at the GEMM's threshold and odd; bit for bit against ref-q8 in every q8 table, and the plain
 * C chunk kernel (opt_q8_gemm_c, the fallback of ISAs without their own) likewise. */
static void test_q8_gemm_shapes(void)
{
    static const int64_t rs[] = { 1, 16, 70, 131 }, cs[] = { 32, 2080, 4128 };
    static const int Ts[] = { 8, 9, 33 };
    static const g4_type qt[] = { G4_T_Q8_0, G4_T_Q4_0 };
    long n = 0, bad_all = 0;
    for (int yi = 0; yi < 2; yi++)
        for (int ri = 0; ri < 4; ri++)
            for (int ci = 0; ci < 3; ci++) {
                if (small && (rs[ri] > 70 || cs[ci] > 2080)) continue;
                const int64_t rows = rs[ri], cols = cs[ci];
                wmat m = make_w(qt[yi], rows, cols);
                float *X = make_x(33, cols), *Y = malloc(sizeof(float) * 33 * rows), *Yr = malloc(sizeof(float) * 33 * rows);
                for (int ti = 0; ti < 3; ti++) {
                    const int T = Ts[ti];
                    g4_kernels_ref_q8.matmul(Yr, &m.W, X, T);
                    for (int k = -1; k < n_tables; k++) {
                        if (k >= 0 && !tables[k]->act_q8) continue;
                        if (k < 0) CHECK(opt_q8_gemm(&opt_q8_gemm_c, NULL, Y, &m.W, X, T) == 0, "opt_q8_gemm_c declined");
                        else tables[k]->matmul(Y, &m.W, X, T);
                        long bad = 0;
                        for (int64_t i = 0; i < T * rows; i++) if (memcmp(&Y[i], &Yr[i], sizeof(float))) bad++;
                        CHECK(bad == 0, "%s %s %lldx%lld T=%d: %ld outputs differ from ref-q8",
                              k < 0 ? "opt_q8_gemm_c" : tables[k]->name, g4_type_name(qt[yi]), (long long)rows,
                              (long long)cols, T, bad);
                        bad_all += bad;
                        n += T * rows;
                    }
                }
                free(X); free(Y); free(Yr); free_w(&m);
            }
    printf("    q8 GEMM (plain C and every q8 table) vs ref-q8: %ld outputs, %ld differ\n", n, bad_all);
}

/* The vector rounding of activations (opt_q8_quant_isa: vcvtps2dq / vcvtnq_s32_f32) must be
 * g4_quant_act_q8 bit for bit, with the group sums: random blocks of every scale, exact ties
 * (x / d = k + 1/2 must go to even), zeros, subnormals, and blocks with an infinity or a NaN. */
static void test_q8_quant_isa(void)
{
    opt_q8_quant_fn f = opt_q8_quant_isa();
    if (!f) { printf("    no vector q8 rounding on this CPU\n"); return; }
    enum { NB = 40, N = 32 * NB };
    static float x[N];
    static int8_t q0[N], q1[N];
    static float d0[NB], d1[NB];
    static int32_t g0[N / 4], g1[N / 4];
    uint64_t s = 99;
    for (int b = 0; b < NB; b++) {
        const float scale = ldexpf(1.0f, (b % 13) * 3 - 20);
        for (int i = 0; i < 32; i++) x[32 * b + i] = ((float)(g4_splitmix64(&s) % 20001) / 10000.0f - 1.0f) * scale;
    }
    for (int i = 0; i < 32; i++) x[32 * 3 + i] = (float)(i - 16) + 0.5f;   /* amax 16.5: no ties after scaling */
    x[32 * 4] = 127.0f;                                                    /* d = 1: x / d = x, ties to even */
    for (int i = 1; i < 32; i++) x[32 * 4 + i] = (float)(i - 16) + 0.5f;
    for (int i = 0; i < 32; i++) x[32 * 5 + i] = i % 2 ? -0.0f : 0.0f;    /* all zero: d = 0, q = 0 */
    for (int i = 0; i < 32; i++) x[32 * 6 + i] = ldexpf((float)(i - 16), -140);   /* subnormals */
    x[32 * 7 + 9] = INFINITY;
    x[32 * 8 + 30] = -INFINITY;
    x[32 * 9 + 0] = NAN;
    x[32 * 10 + 31] = -NAN;
    opt_q8_quant_ref(x, N, q0, d0, g0);
    f(x, N, q1, d1, g1);
    int bad = 0;
    for (int b = 0; b < NB; b++) {
        const int dsame = memcmp(&d0[b], &d1[b], sizeof(float)) == 0 || (isnan(d0[b]) && isnan(d1[b]));
        if (!dsame || memcmp(q0 + 32 * b, q1 + 32 * b, 32) || memcmp(g0 + 8 * b, g1 + 8 * b, 32)) bad++;
    }
    printf("    vector q8 rounding vs g4_quant_act_q8: %d of %d blocks differ (ties, zeros, subnormals, inf, NaN)\n",
           bad, NB);
    CHECK(bad == 0, "vector q8 rounding differs from g4_quant_act_q8 in %d blocks", bad);
    CHECK(isnan(d1[7]) && isnan(d1[8]) && isnan(d1[9]) && isnan(d1[10]), "non-finite blocks must get d = NaN");
    CHECK(q1[32 * 4 + 3] == -12 && q1[32 * 4 + 4] == -12, "ties must round to even (-12.5 -> -12, -11.5 -> -12)");
    CHECK(d1[6] == 0.0f && q1[32 * 6] == 0, "a block whose 1/d overflows must count as zero");
}

/* ---- norms, rope -------------------------------------------------------------------------- */

static const int NS[] = { 1, 7, 8, 9, 33, 256, 3840 };

static void test_rmsnorm(void)
{
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        stat s = { 0 };
        for (int ni = 0; ni < 7; ni++)
            for (int wi = 0; wi < 2; wi++) {
                int n = NS[ni];
                float *x = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n);
                double *b = malloc(sizeof(double) * n);
                float sc = (float)(1e-3 + 10 * urand());
                for (int i = 0; i < n; i++) { x[i] = grand() * sc; w[i] = 1 + 0.3f * grand(); }
                gbuf y = gb_new(n);
                g4_kernels_ref.rmsnorm(yr, x, wi ? w : NULL, n, 1e-6f);
                k->rmsnorm(y.p, x, wi ? w : NULL, n, 1e-6f);
                CHECK(gb_ok(&y), "%s rmsnorm n=%d: canary", k->name, n);
                for (int i = 0; i < n; i++) b[i] = 6 * U * fabs(yr[i]);
                check_vals(&s, y.p, yr, b, n);
                /* in place, as the decoder calls it */
                memcpy(y.p, x, sizeof(float) * n);
                k->rmsnorm(y.p, y.p, wi ? w : NULL, n, 1e-6f);
                check_vals(&s, y.p, yr, b, n);
                gb_free(&y); free(x); free(w); free(yr); free(b);
            }
        char what[64];
        snprintf(what, sizeof what, "%s rmsnorm", k->name);
        report(what, &s);
    }
}

static void test_layernorm(void)
{
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        stat s = { 0 };
        for (int ni = 0; ni < 7; ni++) {
            int n = NS[ni];
            float *x = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * n), *bb = malloc(sizeof(float) * n);
            float *yr = malloc(sizeof(float) * n);
            double *b = malloc(sizeof(double) * n);
            float off = (float)(4 * urand() - 2), sc = (float)(0.01 + 3 * urand());
            for (int i = 0; i < n; i++) { x[i] = off + grand() * sc; w[i] = grand(); bb[i] = 0.1f * grand(); }
            gbuf y = gb_new(n);
            g4_kernels_ref.layernorm(yr, x, w, bb, n, 1e-5f);
            k->layernorm(y.p, x, w, bb, n, 1e-5f);
            CHECK(gb_ok(&y), "%s layernorm n=%d: canary", k->name, n);
            double sum = 0, sq = 0;
            for (int i = 0; i < n; i++) sum += x[i];
            double mean = sum / n;
            for (int i = 0; i < n; i++) sq += (x[i] - mean) * (x[i] - mean);
            double rstd = 1 / sqrt(sq / n + 1e-5);
            for (int i = 0; i < n; i++)
                b[i] = 4 * U * (fabs(mean) + fabs(x[i] - mean)) * rstd * fabs(w[i]) * 1.01 +
                       4 * U * fabs(yr[i]) + 1e-30;
            check_vals(&s, y.p, yr, b, n);
            gb_free(&y); free(x); free(w); free(bb); free(yr); free(b);
        }
        char what[64];
        snprintf(what, sizeof what, "%s layernorm", k->name);
        report(what, &s);
    }
}

static void test_rope(void)
{
    static const int hds[] = { 2, 6, 16, 34, 64, 256, 512 };
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        int differ = 0, bad = 0;
        for (int hi = 0; hi < 7; hi++)
            for (int nh = 1; nh <= 16; nh += 5)
                for (int bf = 0; bf < 2; bf++) {
                    int hd = hds[hi], n = nh * hd;
                    float *x = malloc(sizeof(float) * n), *xr = malloc(sizeof(float) * n);
                    float *c = malloc(sizeof(float) * hd / 2), *sn = malloc(sizeof(float) * hd / 2);
                    for (int i = 0; i < hd / 2; i++) {
                        float a = (float)(urand() * 100);
                        c[i] = cosf(a); sn[i] = sinf(a);
                        if (bf) { c[i] = g4_round_bf16(c[i]); sn[i] = g4_round_bf16(sn[i]); }
                    }
                    for (int i = 0; i < n; i++) x[i] = xr[i] = grand() * 3;
                    gbuf y = gb_new(n);
                    memcpy(y.p, x, sizeof(float) * n);
                    g4_kernels_ref.rope(xr, nh, hd, c, sn, bf);
                    k->rope(y.p, nh, hd, c, sn, bf);
                    if (!gb_ok(&y)) bad++;
                    if (memcmp(y.p, xr, sizeof(float) * n) != 0) differ++;
                    gb_free(&y); free(x); free(xr); free(c); free(sn);
                }
        printf("    %s rope: %d of 42 shapes differ from ref (bound: bit-identical)\n", k->name, differ);
        CHECK(differ == 0 && bad == 0, "%s rope: %d shapes differ, %d canaries", k->name, differ, bad);
    }
}

/* ---- attention ---------------------------------------------------------------------------- */

static void check_att(const g4_kernels *k, int n_heads, int hd, int group, int n_keys, int bf16,
                      stat *s, int *bf_differ)
{
    const int nkv = n_heads / group, row = nkv * hd;
    float *q = malloc(sizeof(float) * n_heads * hd), *K = malloc(sizeof(float) * n_keys * row);
    float *V = malloc(sizeof(float) * n_keys * row);
    const float **kr = malloc(sizeof(float *) * n_keys), **vr = malloc(sizeof(float *) * n_keys);
    float *sc = malloc(sizeof(float) * (n_keys + 1)), *outr = malloc(sizeof(float) * n_heads * hd);
    double *b = malloc(sizeof(double) * n_heads * hd);
    const float qs = (float)(0.2 + 1.5 * urand());
    for (int i = 0; i < n_heads * hd; i++) q[i] = grand() * qs;
    for (int i = 0; i < n_keys * row; i++) { K[i] = grand(); V[i] = grand(); }
    for (int j = 0; j < n_keys; j++) {   /* rows out of order, as a ring buffer gives them */
        int jj = (j * 7 + 3) % n_keys;
        kr[j] = K + (int64_t)jj * row; vr[j] = V + (int64_t)jj * row;
    }
    gbuf out = gb_new((size_t)n_heads * hd);
    g4_kernels_ref.attention(outr, q, n_heads, hd, group, kr, vr, n_keys, sc, bf16);
    k->attention(out.p, q, n_heads, hd, group, kr, vr, n_keys, sc, bf16);
    CHECK(gb_ok(&out), "%s attention: canary", k->name);
    if (bf16) {
        if (memcmp(out.p, outr, sizeof(float) * n_heads * hd) != 0) (*bf_differ)++;
    } else {
        double *sd = malloc(sizeof(double) * n_keys), *rj = malloc(sizeof(double) * n_keys);
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + h * hd;
            const int off = (h / group) * hd;
            double D = 0, mx = -INFINITY, sum = 0, rmax = 0;
            for (int j = 0; j < n_keys; j++) {
                double s = 0, a = 0;
                for (int i = 0; i < hd; i++) { s += (double)qh[i] * kr[j][off + i]; a += fabs((double)qh[i] * kr[j][off + i]); }
                sd[j] = s;
                if (2 * gam(hd + 4) * a > D) D = 2 * gam(hd + 4) * a;
                if (s > mx) mx = s;
            }
            for (int j = 0; j < n_keys; j++) {
                rj[j] = expm1(2 * D + 2 * U * (fabs(sd[j] - mx) + 2 * D) + 2 * E_EXP) * 1.01;
                if (rj[j] > rmax) rmax = rj[j];
                sum += exp(sd[j] - mx);
            }
            for (int i = 0; i < hd; i++) {
                double bi = 0;
                for (int j = 0; j < n_keys; j++) {
                    double p = exp(sd[j] - mx) / sum;
                    bi += (rj[j] + rmax + 4 * U + 2 * gam(n_keys + 2)) * p * fabs(vr[j][off + i]);
                }
                b[h * hd + i] = bi * 1.01;
            }
        }
        check_vals(s, out.p, outr, b, (size_t)n_heads * hd);
        free(sd); free(rj);
    }
    gb_free(&out);
    free(q); free(K); free(V); free(kr); free(vr); free(sc); free(outr); free(b);
}

/* attention_batch (tables that have it): T queries over spans of one shared row list, bit for
 * bit the table's own per-query `attention` on each span. Spans as the decoder makes them
 * (causal growth, a sliding window moving on, an image block seen whole by its queries) and
 * awkward ones (disjoint spans, one key, the last block of < OPT_ATT_QB queries); hd with a
 * 16-wide block, an 8-wide one and a scalar tail; 1, 2 and 3 threads. */
static void test_attention_batch(void)
{
    static const int hds[] = { 4, 12, 32, 76, 256 };
    static const int hg[][2] = { { 1, 1 }, { 4, 2 }, { 16, 2 } };
    long n_checked = 0, tables_run = 0;
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        if (!k->attention_batch) continue;
        tables_run++;
        const int keep = k->threads ? k->threads(0) : 1;
        for (int hi_ = 0; hi_ < 5; hi_++)
            for (int gi = 0; gi < 3; gi++)
                for (int pat = 0; pat < 4; pat++) {
                    const int hd = hds[hi_], n_heads = hg[gi][0], group = hg[gi][1], row = n_heads / group * hd;
                    if (small && hd == 256 && gi == 2) continue;
                    const int T = pat == 3 ? 6 : 23, n = 40;
                    int lo[23], hi[23];
                    for (int t = 0; t < T; t++) {
                        const int p = 10 + t;            /* query positions 10 .. 10 + T - 1 */
                        switch (pat) {
                        case 0: lo[t] = 0; hi[t] = p; break;                                  /* causal */
                        case 1: lo[t] = p - 7 > 0 ? p - 7 : 0;                                 /* window 8, */
                                hi[t] = p >= 14 && p < 20 ? 19 : p; break;                     /* image 14..19 */
                        case 2: lo[t] = p - 2; hi[t] = p - 2 + (t % 3 == 0 ? 0 : 2); break;    /* short, some 1 key */
                        default: lo[t] = 6 * t; hi[t] = 6 * t + 3; break;                      /* disjoint */
                        }
                    }
                    float *q = malloc(sizeof(float) * T * n_heads * hd), *K = malloc(sizeof(float) * n * row);
                    float *V = malloc(sizeof(float) * n * row), *sc = malloc(sizeof(float) * (n + 1));
                    float *want = malloc(sizeof(float) * T * n_heads * hd);
                    const float **kr = malloc(sizeof(float *) * n), **vr = malloc(sizeof(float *) * n);
                    for (int i = 0; i < T * n_heads * hd; i++) q[i] = grand();
                    for (int i = 0; i < n * row; i++) { K[i] = grand(); V[i] = grand(); }
                    for (int j = 0; j < n; j++) {
                        int jj = (j * 7 + 3) % n;
                        kr[j] = K + (int64_t)jj * row; vr[j] = V + (int64_t)jj * row;
                    }
                    const int64_t qs = (int64_t)n_heads * hd;
                    for (int t = 0; t < T; t++)
                        k->attention(want + t * qs, q + t * qs, n_heads, hd, group, kr + lo[t], vr + lo[t],
                                     hi[t] - lo[t] + 1, sc, 0);
                    for (int th = 1; th <= 3; th++) {
                        if (k->threads) k->threads(th);
                        else if (th > 1) break;
                        gbuf out = gb_new((size_t)T * qs);
                        k->attention_batch(out.p, q, T, n_heads, hd, group, kr, vr, lo, hi, sc, 0);
                        CHECK(gb_ok(&out), "%s attention_batch: canary", k->name);
                        long bad = 0;
                        for (int i = 0; i < T * qs; i++) bad += memcmp(&out.p[i], &want[i], sizeof(float)) != 0;
                        CHECK(bad == 0, "%s attention_batch hd %d heads %d/%d spans %d, %d threads: %ld of %lld "
                              "outputs differ from its per-query attention", k->name, hd, n_heads, group, pat, th,
                              bad, (long long)(T * qs));
                        n_checked += T * qs;
                        gb_free(&out);
                    }
                    free(q); free(K); free(V); free(sc); free(want); free(kr); free(vr);
                }
        if (k->threads) k->threads(keep);
    }
    printf("    attention_batch in %ld table(s): %ld outputs, bit-identical to per-query attention "
           "(1-3 threads)\n", tables_run, n_checked);
}

static void test_attention(void)
{
    /* hd 76 = a 64-wide register block + one of 8 + a scalar tail (the avx2 P.V) */
    static const int hds[] = { 2, 12, 32, 76, 256 };
    static const int nks[] = { 1, 2, 5, 8, 9, 13, 33, 300 };
    static const int hg[][2] = { { 1, 1 }, { 4, 2 }, { 8, 4 }, { 16, 2 } };
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        stat s = { 0 };
        int bfd = 0;
        for (int hi = 0; hi < 5; hi++)
            for (int ni = 0; ni < 8; ni++)
                for (int gi = 0; gi < 4; gi++) {
                    if (small && (hds[hi] == 256 || nks[ni] == 300) && gi > 1) continue;
                    check_att(k, hg[gi][0], hds[hi], hg[gi][1], nks[ni], 0, &s, &bfd);
                    if (gi == 1) check_att(k, hg[gi][0], hds[hi], hg[gi][1], nks[ni], 1, &s, &bfd);
                }
        char what[64];
        snprintf(what, sizeof what, "%s attention", k->name);
        report(what, &s);
        CHECK(bfd == 0, "%s attention bf16=1 differs from ref in %d cases", k->name, bfd);
    }
}

/* ---- geglu, softcap ------------------------------------------------------------------------ */

static void test_geglu(void)
{
    static const int ns[] = { 1, 7, 8, 9, 100, 20001 };
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        stat s = { 0 };
        int bfd = 0;
        for (int ni = 0; ni < 6; ni++)
            for (int bf = 0; bf < 2; bf++) {
                int n = ns[ni];
                float *g = malloc(sizeof(float) * n), *up = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n);
                double *b = malloc(sizeof(double) * n);
                for (int i = 0; i < n; i++) {
                    g[i] = grand() * (float)(i % 11 == 0 ? 12 : i % 13 == 0 ? 1e-3 : 2.5);
                    up[i] = grand() * 2;
                }
                gbuf y = gb_new(n);
                g4_kernels_ref.geglu(yr, g, up, n, bf);
                k->geglu(y.p, g, up, n, bf);
                CHECK(gb_ok(&y), "%s geglu n=%d: canary", k->name, n);
                if (bf) { if (memcmp(y.p, yr, sizeof(float) * n)) bfd++; }
                else {
                    for (int i = 0; i < n; i++)
                        b[i] = 0.5 * fabs(g[i]) * fabs(up[i]) * (E_TANH + 12 * U) + 4 * U * fabs(yr[i]);
                    check_vals(&s, y.p, yr, b, n);
                }
                gb_free(&y); free(g); free(up); free(yr); free(b);
            }
        char what[64];
        snprintf(what, sizeof what, "%s geglu", k->name);
        report(what, &s);
        CHECK(bfd == 0, "%s geglu bf16=1 differs from ref", k->name);
    }
}

static void test_softcap(void)
{
    static const int ns[] = { 1, 7, 9, 100, 20001 };
    static const float caps[] = { 30.0f, 1.0f, 7.5f };
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        stat s = { 0 };
        int bfd = 0;
        for (int ni = 0; ni < 5; ni++)
            for (int ci = 0; ci < 3; ci++)
                for (int bf = 0; bf < 2; bf++) {
                    int n = ns[ni];
                    float cap = caps[ci];
                    float *x = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n);
                    double *b = malloc(sizeof(double) * n);
                    for (int i = 0; i < n; i++) x[i] = grand() * (float)(i % 3 == 0 ? 100 : i % 3 == 1 ? 5 : 0.01);
                    gbuf y = gb_new(n);
                    memcpy(yr, x, sizeof(float) * n);
                    memcpy(y.p, x, sizeof(float) * n);
                    g4_kernels_ref.softcap(yr, n, cap, bf);
                    k->softcap(y.p, n, cap, bf);
                    CHECK(gb_ok(&y), "%s softcap n=%d: canary", k->name, n);
                    if (bf) { if (memcmp(y.p, yr, sizeof(float) * n)) bfd++; }
                    else {
                        for (int i = 0; i < n; i++) b[i] = cap * (E_TANH + 2 * U) + 2 * U * fabs(yr[i]);
                        check_vals(&s, y.p, yr, b, n);
                    }
                    gb_free(&y); free(x); free(yr); free(b);
                }
        char what[64];
        snprintf(what, sizeof what, "%s softcap", k->name);
        report(what, &s);
        CHECK(bfd == 0, "%s softcap bf16=1 differs from ref", k->name);
    }
}

/* softcap with cap 1 is tanh itself: its absolute error against double tanh must stay within
 * E_TANH (the figure the geglu and softcap bounds use) */
static void test_tanh_accuracy(void)
{
    const int n = small ? 20000 : 2000000;
    float *x = malloc(sizeof(float) * n);
    for (int ti = 0; ti < n_tables; ti++) {
        const g4_kernels *k = tables[ti];
        for (int i = 0; i < n; i++) x[i] = (float)(-12.0 + 24.0 * i / (n - 1));
        k->softcap(x, n, 1.0f, 0);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double e = fabs(x[i] - tanh((float)(-12.0 + 24.0 * i / (n - 1))));
            if (!(e <= worst)) worst = e;
        }
        printf("    %s tanh: max abs error %.3g = %.2f u over %d points in [-12, 12] (bound %.0f u)\n",
               k->name, worst, worst / U, n, E_TANH / U);
        CHECK(worst <= E_TANH, "%s tanh error %.3g > %.3g", k->name, worst, E_TANH);
    }
    free(x);
}

/* every checker rejects an output moved just past its bound, and a NaN */
static void test_checks_can_fail(void)
{
    float ref[4] = { 1, 2, 3, 4 }, opt[4];
    double b[4] = { 1e-6, 1e-6, 1e-6, 1e-6 };
    stat s = { 0 };
    memcpy(opt, ref, sizeof opt);
    opt[2] += 3e-6f;
    check_vals(&s, opt, ref, b, 4);
    CHECK(s.bad == 1, "a value 3x past its bound was not caught");
    memcpy(opt, ref, sizeof opt);
    opt[1] = NAN;
    stat s2 = { 0 };
    check_vals(&s2, opt, ref, b, 4);
    CHECK(s2.bad == 1 && s2.nonfinite == 1, "a NaN was not caught");
    /* a real kernel result moved by what a one-step error in one weight would cause must
     * fail the matmul check (Q4_0, row 3, the column with the largest |x|) */
    if (!n_tables) return;
    const g4_kernels *k = tables[0];
    wmat m = make_w(G4_T_Q4_0, 8, 256);
    float *X = make_x(2, 256);
    float Y[16], Yr[16];
    double b1[16];
    k->matmul(Y, &m.W, X, 2);
    g4_kernels_ref.matmul(Yr, &m.W, X, 2);
    mm_bounds(&m, X, 2, b1);
    stat a = { 0 };
    check_vals(&a, Y, Yr, b1, 16);
    CHECK(a.bad == 0, "unperturbed Q4_0 result failed");
    int im = 0;
    for (int i = 1; i < 256; i++) if (fabsf(X[i]) > fabsf(X[im])) im = i;
    float step = 0;
    for (int i = im / 32 * 32; i < im / 32 * 32 + 32; i++) step = fmaxf(step, fabsf(m.wdeq[3 * 256 + i]) / 8);
    const float bug = step * fabsf(X[im]);
    Y[3] += bug;
    stat c = { 0 };
    check_vals(&c, Y, Yr, b1, 16);
    printf("    one-step weight bug moves output 3 by %.3g; its bound is %.3g\n", bug, b1[3]);
    CHECK(c.bad == 1, "a one-step weight error was not caught");
    free(X); free_w(&m);
}

/* X = the identity (T = cols): Y[t][r] = 0 + ... + w_rt * 1 + ... is w_rt exactly, so the
 * weights each table dequantizes in registers must equal g4_dequant_row's (as numbers: a sum
 * with +0 turns -0 into +0) */
static void test_dequant_exact(void)
{
    for (int ti = 0; ti < n_tables; ti++)
        for (int yi = 0; yi < N_TYPES; yi++) {
            const g4_type ty = TYPES[yi];
            const int64_t cols = is_quant(ty) ? 256 : 40, rows = 19;
            wmat m = make_w(ty, rows, cols);
            float *X = calloc((size_t)(cols * cols), sizeof(float)), *Y = malloc(sizeof(float) * cols * rows);
            for (int64_t i = 0; i < cols; i++) X[i * cols + i] = 1.0f;
            tables[ti]->matmul(Y, &m.W, X, (int)cols);
            long diff = 0;
            if (tables[ti]->act_q8 && (ty == G4_T_Q8_0 || ty == G4_T_Q4_0)) {
                /* the q8 mode dots the stored integers (1 rounds to 127 * (1/127)): ref-q8's bits */
                float *Yq = malloc(sizeof(float) * cols * rows);
                g4_kernels_ref_q8.matmul(Yq, &m.W, X, (int)cols);
                for (int64_t i = 0; i < cols * rows; i++) if (memcmp(&Y[i], &Yq[i], sizeof(float))) diff++;
                free(Yq);
            } else
                for (int64_t t = 0; t < cols; t++)
                    for (int64_t r = 0; r < rows; r++)
                        if (!(Y[t * rows + r] == m.wdeq[r * cols + t])) diff++;   /* -0 == +0 */
            CHECK(diff == 0, "%s %s: %ld dequantized weights differ from g4_dequant_row",
                  tables[ti]->name, g4_type_name(ty), diff);
            free(X); free(Y); free_w(&m);
        }
    printf("    every table, every type: in-register weights == g4_dequant_row exactly (q8 mode, Q8_0/Q4_0: "
           "== ref-q8 bit for bit)\n");
}

int main(void)
{
    const char *e = getenv("G4_TEST_SMALL");
    small = e && *e && *e != '0';
    printf("# opt tables on this CPU:");
    for (int i = 0; i < opt_n_tables; i++) {
        const g4_kernels *k = opt_tables[i].get();
        if (!k || k == &g4_kernels_ref || k == &g4_kernels_ref_q8) continue;
        tables[n_tables++] = k;
        printf(" %s", k->name);
    }
    printf("%s\n", n_tables ? "" : " none (only ref)");
    if (n_tables && tables[0]->threads) printf("# threads: %d\n", tables[0]->threads(0));
    RUN(test_checks_can_fail);
    RUN(test_dequant_exact);
    RUN(test_matmul);
    RUN(test_matmul_large);
    RUN(test_matmul_invariance);
    RUN(test_gemm_serial_fma);
    RUN(test_q8_mode_bound);
    RUN(test_q8_gemm_shapes);
    RUN(test_q8_quant_isa);
    RUN(test_rmsnorm);
    RUN(test_layernorm);
    RUN(test_rope);
    RUN(test_attention);
    RUN(test_attention_batch);
    RUN(test_geglu);
    RUN(test_softcap);
    RUN(test_tanh_accuracy);
    return h_finish();
}

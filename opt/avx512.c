/* avx512.c - the x86-64 kernel table "avx512": the avx2 table with an AVX-512F prefill GEMM.
 *
 * What it changes: only the prefill matmul (T >= OPT_GEMM_MIN_T tokens). Its micro-kernel
 * holds 6 rows x 32 tokens of accumulators in 12 zmm registers; per column it loads two
 * 16-token vectors and broadcasts one weight per row: 12 FMAs of 16 lanes for 8 loads, twice
 * the work per instruction of the avx2 kernel (a CPU with two 512-bit FMA units, like this
 * project's benchmark VM, doubles its fp32 FMA peak). The panel of weights is formed by the
 * avx2 table's former (exactly g4_dequant_row's values), the GEMM driver is opt_gemm
 * (opt/gemm.c), and every output is the same serial fp32 FMA chain in column order as the
 * avx2 GEMM: the two tables give bit-identical prefill results.
 *
 * Everything else (decode GEMV, norms, rope, attention, geglu, softcap, threads) is the avx2
 * table's: 512-bit vectors do not pay there on these CPUs (the GEMV is bound by forming the
 * weights, whose byte shuffles and conversions run on fewer ports at 512 bits).
 *
 * "avx512-q8" is the same table in the opt-in q8 mode (its decode GEMV is opt_avx2_q8_gemv).
 *
 * Chosen at run time: opt_avx512_table() returns the table only when cpuid reports AVX-512F,
 * the OS saves the zmm state (XCR0 bits 1, 2, 5, 6, 7) and the avx2 table is available.
 * Compiled for any x86-64 (target pragma on the kernels only); elsewhere the getter alone.
 */
#include "opt.h"

#if defined(__x86_64__)

#include <cpuid.h>

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
#include <immintrin.h>

#define AI static inline __attribute__((always_inline))

/* C[i][16 v + j] (+)= sum over the panel's kc columns of P[i][k] XT[k][16 v + j] (XT: this
 * token tile, 16 V values per column), R <= 6 rows, V <= 2 vectors of 16 tokens; first:
 * start from 0 instead of C */
AI void kernel(const int R, const int V, const float *P, const float *XT, int64_t tgp, int64_t kc,
               float *C, int first)
{
    __m512 a[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) a[i][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(C + i * tgp + 16 * v);
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        const float *xk = XT + k * 16 * V;
        __m512 x[2];
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) x[v] = _mm512_loadu_ps(xk + 16 * v);
#pragma GCC unroll 6
        for (int i = 0; i < R; i++) {
            const __m512 b = _mm512_set1_ps(P[i * OPT_GEMM_KC + k]);
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) a[i][v] = _mm512_fmadd_ps(b, x[v], a[i][v]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) _mm512_storeu_ps(C + i * tgp + 16 * v, a[i][v]);
}

#define K(R, V) case 10 * R + V: kernel(R, V, P + ri * OPT_GEMM_KC, x, tgp, kc, c, first); break;

/* one panel: every token tile (32 tokens: XT[tile][k][32]) x every 6-row tile */
static void panel(const float *P, int nr, const float *XT, int64_t cols, int64_t k0, int64_t kc,
                  int64_t tgp, float *C, int first)
{
    const int64_t nv = tgp / 16;
    for (int64_t v0 = 0; v0 < nv; v0 += 2) {
        const int V = (int)(nv - v0 < 2 ? nv - v0 : 2);
        const float *x = XT + (v0 / 2) * 32 * cols + k0 * 16 * V;
        for (int ri = 0; ri < nr; ri += 6) {
            const int R = nr - ri < 6 ? nr - ri : 6;
            float *c = C + ri * tgp + 16 * v0;
            switch (10 * R + V) {
            K(1, 1) K(1, 2) K(2, 1) K(2, 2) K(3, 1) K(3, 2)
            K(4, 1) K(4, 2) K(5, 1) K(5, 2) K(6, 1) K(6, 2)
            default: break;
            }
        }
    }
}

static opt_gemm_isa G;              /* { 16, 32, the avx2 panel former, panel }: set by the getter */
static const g4_kernels *base;      /* the avx2 table */

static void avx512_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if (opt_gemm(&G, Y, W, X, T) == 0) return;
    base->matmul(Y, W, X, T);
}

static void avx512_q8_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if (opt_avx2_q8_gemv(Y, W, X, T) == 0) return;
    avx512_matmul(Y, W, X, T);
}

/* the machine limit for this table: 12 independent 16-lane FMA chains */
static void fma_loop(void *ctx)
{
    const int64_t iters = *(const int64_t *)ctx;
    const __m512 m = _mm512_set1_ps(0.99999994f), c = _mm512_set1_ps(1e-7f);
    __m512 a[12];
    for (int k = 0; k < 12; k++) a[k] = _mm512_set1_ps(1.0f + (float)k);
    for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++) a[k] = _mm512_fmadd_ps(a[k], m, c);
    }
    __m512 s = a[0];
    for (int k = 1; k < 12; k++) s = _mm512_add_ps(s, a[k]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
}

static double avx512_fma_peak(int threads, double seconds)
{
    int64_t iters = 1 << 20;
    double t = opt_time_threads(fma_loop, &iters, 1);
    if (t <= 0) return -1;
    iters = (int64_t)(iters * (seconds / t));
    if (iters < (1 << 20)) iters = 1 << 20;
    t = opt_time_threads(fma_loop, &iters, threads);
    return t > 0 ? (double)threads * (double)iters * 12 * 16 * 2 / t / 1e9 : -1;
}

#pragma GCC pop_options

static g4_kernels K, K_q8;

/* compiled for the baseline: the check must run on any x86-64 */
__attribute__((target("no-avx,no-avx2,no-fma,no-f16c")))
const g4_kernels *opt_avx512_table(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX512F)) return NULL;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return NULL;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return NULL;          /* XMM, YMM, opmask, ZMM0-15 high, ZMM16-31 */
    const g4_kernels *b2 = opt_avx2_table();
    if (!b2) return NULL;
    if (!base) {
        base = b2;
        G = opt_avx2_gemm;
        G.vec = 16;
        G.nt = 32;
        G.panel = panel;
        K = *b2;
        K.name = "avx512";
        K.matmul = avx512_matmul;
        K.fma_peak = avx512_fma_peak;
        K_q8 = K;
        K_q8.name = "avx512-q8";
        K_q8.matmul = avx512_q8_matmul;
        K_q8.act_q8 = 1;
    }
    return &K;
}

__attribute__((target("no-avx,no-avx2,no-fma,no-f16c")))
const g4_kernels *opt_avx512_q8_table(void)
{
    return opt_avx512_table() ? &K_q8 : NULL;
}

#else

const g4_kernels *opt_avx512_table(void) { return NULL; }
const g4_kernels *opt_avx512_q8_table(void) { return NULL; }

#endif

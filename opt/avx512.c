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
 * "avx512-q8" is the same table in the opt-in q8 mode: its decode GEMV on Q8_0/Q4_0 weights uses
 * AVX-512 VNNI (vpdpbusd, two blocks per instruction) when the CPU has it, else the avx2 one.
 *
 * Chosen at run time: opt_avx512_table() returns the table only when cpuid reports AVX-512F,
 * the OS saves the zmm state (XCR0 bits 1, 2, 5, 6, 7) and the avx2 table is available.
 * Compiled for any x86-64 (target pragma on the kernels only); elsewhere the getter alone.
 */
#include "opt.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <string.h>

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
    return opt_fma_peak(fma_loop, 12 * 16 * 2, 1 << 20, threads, seconds);
}

#pragma GCC pop_options

/* ---- the q8 mode's GEMV with AVX-512 VNNI (when the CPU has AVX512BW and AVX512_VNNI) -----
 * Bit-identical to ref-q8 like the avx2 one (opt/avx2.c): two blocks per 512-bit vpdpbusd
 * (unsigned weight bytes x signed activation bytes, 4 products per int32 lane, exact: Q4_0
 * nibbles 0..15, Q8_0 moved to 0..255 by + 128; the offsets 8 and 128 times the block's sum of
 * q come back off in int32). Layout of a block pair in a register: values 0-15 of block b, of
 * block b + 1, then 16-31 of b, of b + 1; adding the two 256-bit halves leaves block b's sums
 * in lanes 0-3 and b + 1's in 4-7, and two rounds of vphaddd give 4 rows x 2 blocks. The fp32
 * part is ref's: per block in order, scale = dw * dx, sum = sum + (float)isum * scale. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")

AI int rd16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }

/* the bytes of blocks b, b + 1 (or b alone: pair = 0) of one row, in the pair layout, unsigned */
AI __m512i w_pair(const int ty, const uint8_t *blk, const int pair)
{
    if (ty == G4_T_Q4_0) {
        const __m128i r0 = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
        const __m128i r1 = pair ? _mm_loadu_si128((const __m128i *)(const void *)(blk + 18 + 2)) : _mm_setzero_si128();
        const __m256i lo = _mm256_set_m128i(r1, r0);
        const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_srli_epi16(lo, 4), 1);
        return _mm512_and_si512(z, _mm512_set1_epi8(0x0f));
    }
    const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    const __m256i c = pair ? _mm256_loadu_si256((const __m256i *)(const void *)(blk + 34 + 2)) : _mm256_setzero_si256();
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1);
    return _mm512_xor_si512(_mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8((char)0x80));
}

/* blocks b (and b + 1 when pair) of 4 rows into acc, in block order */
AI __m128 vnni_step(const int ty, const int pair, const uint8_t *const w[4], const int8_t *xq, const float *xd,
                    const int32_t *sq, int64_t b, __m128 acc)
{
    const int64_t bs = ty == G4_T_Q8_0 ? 34 : 18;
    const int off = ty == G4_T_Q8_0 ? 128 : 8;
    __m512i xv = pair ? _mm512_loadu_si512((const void *)(xq + 32 * b))
                      : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(xq + 32 * b)));
    xv = _mm512_shuffle_i64x2(xv, xv, _MM_SHUFFLE(3, 1, 2, 0));
    __m256i y[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const __m512i z = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w_pair(ty, w[i] + bs * b, pair), xv);
        y[i] = _mm256_add_epi32(_mm512_castsi512_si256(z), _mm512_extracti64x4_epi64(z, 1));
    }
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(y[0], y[1]), _mm256_hadd_epi32(y[2], y[3]));
    const int64_t o0 = bs * b, o1 = bs * (b + 1);
    const __m256 dw = _mm256_cvtph_ps(_mm_setr_epi16(
        (short)rd16(w[0] + o0), (short)rd16(w[1] + o0), (short)rd16(w[2] + o0), (short)rd16(w[3] + o0),
        pair ? (short)rd16(w[0] + o1) : 0, pair ? (short)rd16(w[1] + o1) : 0,
        pair ? (short)rd16(w[2] + o1) : 0, pair ? (short)rd16(w[3] + o1) : 0));
    const __m128i i0 = _mm_sub_epi32(_mm256_castsi256_si128(h), _mm_set1_epi32(off * sq[b]));
    acc = _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(i0), _mm_mul_ps(_mm256_castps256_ps128(dw), _mm_set1_ps(xd[b]))));
    if (pair) {
        const __m128i i1 = _mm_sub_epi32(_mm256_extracti128_si256(h, 1), _mm_set1_epi32(off * sq[b + 1]));
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(i1), _mm_mul_ps(_mm256_extractf128_ps(dw, 1), _mm_set1_ps(xd[b + 1]))));
    }
    return acc;
}

AI __m128 q8_rows_vnni(const int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd,
                       const int32_t *sq, int64_t nb)
{
    __m128 acc = _mm_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) acc = vnni_step(ty, 1, w, xq, xd, sq, b, acc);
    if (b < nb) acc = vnni_step(ty, 0, w, xq, xd, sq, b, acc);
    return acc;
}

static void q8_rows_512(int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd, const int32_t *sq,
                        int64_t nb, float out[4])
{
    _mm_storeu_ps(out, ty == G4_T_Q8_0 ? q8_rows_vnni(G4_T_Q8_0, w, xq, xd, sq, nb)
                                       : q8_rows_vnni(G4_T_Q4_0, w, xq, xd, sq, nb));
}

#pragma GCC pop_options

static int vnni;                    /* AVX512BW + AVX512_VNNI: set by the getter */

static void avx512_q8_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if ((vnni ? opt_q8_gemv(q8_rows_512, Y, W, X, T) : opt_avx2_q8_gemv(Y, W, X, T)) == 0) return;
    avx512_matmul(Y, W, X, T);
}

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
        unsigned a7, b7, c7, d7;
        vnni = __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7) && (b7 & bit_AVX512BW) && (c7 & bit_AVX512VNNI);
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

/* avx512.c - the x86-64 kernel table "avx512": the avx2 table with an AVX-512F prefill GEMM.
 *
 * What it changes: only the prefill matmul (T >= OPT_GEMM_MIN_T tokens). Its micro-kernel
 * holds 6 rows x 32 tokens of accumulators in 12 zmm registers; per column it loads two
 * 16-token vectors and broadcasts one weight per row: 12 FMAs of 16 lanes for 8 loads, twice
 * the work per instruction of the avx2 kernel (a CPU with two 512-bit FMA units, like this
 * project's benchmark VM, doubles its fp32 FMA peak). The panel of weights is formed on 16
 * lanes for Q4_0/Q8_0 (form512) and by the avx2 table's former for the other types (exactly
 * g4_dequant_row's values either way), the GEMM driver is opt_gemm
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

/* the f16 at p as fp32 in every lane, by F16C from the 16 bytes at p (a block's first; never
 * past its end): the 256 KiB opt_f16_lut misses L1 for a model's spread of scales (+3% exact
 * GEMM at T = 64). Only lane 0 of the conversion is used. */
AI __m512 f16c_bc512(const uint8_t *p)
{
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    return _mm512_permutexvar_ps(_mm512_setzero_si512(), _mm512_cvtph_ps(_mm256_zextsi128_si256(h)));
}

/* the panel former for Q4_0 and Q8_0 on 16 lanes (other types: the avx2 one). The same
 * arithmetic as the avx2 former, so the same weights bit for bit (ref's single rounding):
 * Q4_0 fma(n, d, -8 d) (-8 d is exact), Q8_0 (float)q * d. A Q4_0 block's 16 bytes widen to 16
 * int32 lanes once; the low nibbles are values 0-15, the high ones 16-31. */
static void form512(g4_type type, const uint8_t *W, size_t rb, int64_t r, int nr, int64_t k0, int64_t kc, float *P)
{
    if (type != G4_T_Q4_0 && type != G4_T_Q8_0) {       /* k0, kc: multiples of 32 (opt_gemm) */
        opt_avx2_gemm.form(type, W, rb, r, nr, k0, kc, P);
        return;
    }
    const __m512i lo4 = _mm512_set1_epi32(0x0f);
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = W + (r + i) * rb;
        float *p = P + (int64_t)i * OPT_GEMM_KC;
        for (int64_t b = k0 / 32; b < (k0 + kc) / 32; b++) {
            float *q = p + 32 * b - k0;
            if (type == G4_T_Q4_0) {
                const uint8_t *blk = row + 18 * b;
                const __m512 d = f16c_bc512(blk);
                const __m512 c = _mm512_mul_ps(d, _mm512_set1_ps(-8.0f));
                const __m512i raw = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2)));
                _mm512_storeu_ps(q, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(raw, lo4)), d, c));
                _mm512_storeu_ps(q + 16, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(raw, 4)), d, c));
            } else {
                const uint8_t *blk = row + 34 * b;
                const __m512 d = f16c_bc512(blk);
                _mm512_storeu_ps(q, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                     _mm_loadu_si128((const __m128i *)(const void *)(blk + 2)))), d));
                _mm512_storeu_ps(q + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                     _mm_loadu_si128((const __m128i *)(const void *)(blk + 18)))), d));
            }
        }
    }
}

static opt_gemm_isa G;              /* { 16, 32, form512, panel }: set by the getter */
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
 * Bit-identical to ref-q8 (ref/quant.c g4_dot_row_q8) like the avx2 one: one 512-bit register
 * holds blocks b and b + 1 of a row, so one vpdpbusd (unsigned weight bytes x signed activation
 * bytes, 4 products per int32 lane) leaves in 8 lanes ref-q8's group sums of block b and in the
 * other 8 those of b + 1: the two parities of ref-q8's accumulators share one fp32 accumulator.
 * The unsigned bytes are Q4_0's nibbles (0..15) and Q8_0's q + 128; the offset times the group's
 * sum of q (8 or 128 times sg) starts the vpdpbusd, so its result is exact. fp32 per lane:
 * scale = dw * dx, acc = fma((float)s, scale, acc); at the row's end the lanes are added in
 * ref-q8's order. An odd last block runs with a zero block b + 1 (adds fma(0, 0, acc) = acc).
 * Which lanes hold which group (the 128-bit quarters of the register, 4 groups each):
 *   Q8_0  [b 0-3 | b 4-7 | b+1 0-3 | b+1 4-7]   the 64 bytes in value order (two loads)
 *   Q4_0  [b 0-3 | b+1 0-3 | b 4-7 | b+1 4-7]   each block's 16 bytes broadcast to two quarters,
 *         the upper two shifted right by 4: the low nibbles (values 0-15) of b and b + 1, then
 *         their high nibbles (values 16-31), with no lane-crossing shuffle per row. The
 *         activations and group sums are put in the same order once per block pair (quarters
 *         0, 2, 1, 3), and the accumulator is put back in value order at the end the same way. */
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")

AI int rd16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }

/* quarters 0, 2, 1, 3 of v (its own inverse) */
AI __m512i swap12(__m512i v) { return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0)); }

/* a in the lanes of block b, c in those of b + 1 (mask m) */
AI __m512 two(float a, float c, __mmask16 m) { return _mm512_mask_mov_ps(_mm512_set1_ps(a), m, _mm512_set1_ps(c)); }

/* blocks b, b + 1 (or b alone: pair = 0) of one row as unsigned bytes in the type's lane order */
AI __m512i w_pair(const int ty, const uint8_t *blk, const int pair)
{
    if (ty == G4_T_Q4_0) {
        __m512i q = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(blk + 2)));
        if (pair) q = _mm512_mask_broadcast_i32x4(q, 0xF0F0, _mm_loadu_si128((const __m128i *)(const void *)(blk + 18 + 2)));
        return _mm512_and_si512(_mm512_srlv_epi64(q, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4)), _mm512_set1_epi8(0x0f));
    }
    const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
    const __m256i c = pair ? _mm256_loadu_si256((const __m256i *)(const void *)(blk + 34 + 2)) : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1), _mm512_set1_epi8((char)0x80));
}

/* the offset's correction for the group sums g: -(128 g) for Q8_0's q + 128, -(8 g) for Q4_0 */
AI __m512i offset_corr(const int ty, __m512i g)
{
    return _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(g, ty == G4_T_Q8_0 ? 7 : 3));
}

/* the GEMV driver's prep (opt_q8_prep_fn), once per token: each whole pair of blocks' 64
 * activation bytes and 16 group sums put in the kernel's lane order (Q4_0: swap12) and the
 * sums turned into the correction the vpdpbusd starts from (offset_corr), in place; a last odd
 * block stays as rounded (vnni_step's pair = 0 does both itself) */
static void vnni_prep(int ty, int8_t *xq, int32_t *sg, int64_t nb)
{
    for (int64_t b = 0; b + 2 <= nb; b += 2) {
        __m512i xv = _mm512_loadu_si512((const void *)(xq + 32 * b)), g = _mm512_loadu_si512((const void *)(sg + 8 * b));
        if (ty == G4_T_Q4_0) { xv = swap12(xv); g = swap12(g); }
        _mm512_storeu_si512((void *)(xq + 32 * b), xv);
        _mm512_storeu_si512((void *)(sg + 8 * b), offset_corr(ty, g));
    }
}

/* blocks b (and b + 1 when pair) of 4 rows into acc; xq, sg as vnni_prep left them */
AI void vnni_step(const int ty, const int pair, const uint8_t *const w[4], const int8_t *xq, const float *xd,
                  const int32_t *sg, int64_t b, size_t pf, __m512 acc[4])
{
    const int64_t bs = ty == G4_T_Q8_0 ? 34 : 18;
    const __mmask16 m1 = ty == G4_T_Q8_0 ? 0xFF00 : 0xF0F0;            /* the lanes of block b + 1 */
    __m512i xv, corr;
    if (pair) {
        xv = _mm512_loadu_si512((const void *)(xq + 32 * b));
        corr = _mm512_loadu_si512((const void *)(sg + 8 * b));
    } else {
        xv = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(xq + 32 * b)));
        __m512i g = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(sg + 8 * b)));
        if (ty == G4_T_Q4_0) { xv = swap12(xv); g = swap12(g); }
        corr = offset_corr(ty, g);
    }
    const __m512 dx = two(xd[b], pair ? xd[b + 1] : 0.0f, m1);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const uint8_t *blk = w[i] + bs * b;
        opt_prefetch(blk + pf);
        if (ty == G4_T_Q8_0) opt_prefetch(blk + pf + 64);    /* a Q8_0 pair spans 68 bytes */
        const __m512i s = _mm512_dpbusd_epi32(corr, w_pair(ty, blk, pair), xv);
        /* a pair's two scales converted by F16C, not looked up in opt_f16_lut: the table is
         * 256 KiB and a model's scales are spread over it, so the lookups missed L1 and held the
         * fill buffers the weight stream needs (decode GEMV from DRAM: Q4_0 +24-33%, Q8_0
         * +11-15%). Same values: the f16 as fp32, exactly. Q4_0: words 0 and 9 of the pair's
         * first 32 bytes; Q8_0: word 0 of each block. */
        __m512 dw;
        if (ty == G4_T_Q4_0 && pair)
            dw = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9),
                                       _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)blk)));
        else if (pair)
            dw = _mm512_permutex2var_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)blk)),
                                        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16, 16),
                                        _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 34))));
        else                                    /* a last odd block alone */
            dw = two(opt_f16_lut[rd16(blk)], 0.0f, m1);
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dx), acc[i]);
    }
}

AI void q8_rows_vnni(const int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd,
                     const int32_t *sg, int64_t nb, size_t pf, float out[4])
{
    __m512 acc[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) acc[i] = _mm512_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) vnni_step(ty, 1, w, xq, xd, sg, b, pf, acc);
    if (b < nb) vnni_step(ty, 0, w, xq, xd, sg, b, pf, acc);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        /* value order (lanes 0-7 parity 0, 8-15 parity 1); a_g = acc[g] + acc[8 + g], then
         * ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)) */
        const __m512 v16 = ty == G4_T_Q4_0 ? _mm512_castsi512_ps(swap12(_mm512_castps_si512(acc[i]))) : acc[i];
        const __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v16), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v16), 1)));
        __m128 v = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        out[i] = _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
    }
}

/* ---- the q8 mode's prefill GEMM with AVX-512 VNNI (opt.h, opt_q8_chunk) --------------------
 * Lanes are tokens: the driver tiles the activations 16 tokens side by side (xt_nt = 16), so
 * one 64-byte load is group g (4 bytes) of block b for 16 tokens, and one vpdpbusd against a
 * row's 4 weight bytes of that group, broadcast, adds 4 products to every token's lane. 8 of them
 * leave each lane the block's int32 sum for that row and token (started at -off times the
 * token's block sum of q, which takes the offset back: exact); then, like
 * g4_dot_row_q8_serial, acc = fma((float)S, dw * dx, acc). The panel is just each row's blocks
 * unpacked to 32 unsigned bytes in value order (Q4_0's nibbles, Q8_0's q + 128) and its scales,
 * so forming it is a row-wise unpack, no transpose (opt_avx2_q8_form). The micro-kernel holds 4 rows x 32 tokens:
 * per block 64 vpdpbusd (8192 products) for 8 conversions, 8 scale products and 8 FMAs. Sums
 * live in C[row][token]; the driver moves them to Y[token][row] after the item's last chunk. */
AI int32_t rd32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

/* rows i0 .. i0 + R - 1 (R <= 4) x token tiles v0 .. v0 + V - 1 (V <= 2) over the chunk */
AI void qg_kernel(const int R, const int V, const opt_q8_chunk *c, int i0, int v0)
{
    const int kb = c->kb;
    const int64_t nb = c->nb, tp = (int64_t)c->ntile * 16;
    const int32_t *xt = c->xt + ((int64_t)v0 * nb + c->b0) * 128;      /* tile v at + v nb 128 */
    const float *xd = c->xtd + ((int64_t)v0 * nb + c->b0) * 16;        /* tile v at + v nb 16 */
    const int32_t *xs = c->xts + ((int64_t)v0 * nb + c->b0) * 16;
    const uint8_t *w = c->P + (size_t)i0 * kb * 32;                     /* row r at + r kb 32 */
    const float *pd = c->PD + (size_t)i0 * kb;
    float *C = c->C + i0 * tp + 16 * v0;
    __m512 fa[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) fa[r][v] = c->first ? _mm512_setzero_ps() : _mm512_loadu_ps(C + r * tp + 16 * v);
    for (int b = 0; b < kb; b++) {
        __m512i ia[4][2];
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) {
            const __m512i s0 = _mm512_loadu_si512((const void *)(xs + v * nb * 16 + 16 * b));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) ia[r][v] = s0;
        }
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m512i x[2];
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) x[v] = _mm512_loadu_si512((const void *)(xt + v * nb * 128 + 128 * b + 16 * g));
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const __m512i wb = _mm512_set1_epi32(rd32(w + (size_t)r * kb * 32 + 32 * b + 4 * g));
#pragma GCC unroll 2
                for (int v = 0; v < V; v++) ia[r][v] = _mm512_dpbusd_epi32(ia[r][v], wb, x[v]);
            }
        }
        __m512 dx[2];
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) dx[v] = _mm512_loadu_ps(xd + v * nb * 16 + 16 * b);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512 dw = _mm512_set1_ps(pd[r * kb + b]);
#pragma GCC unroll 2
            for (int v = 0; v < V; v++)
                fa[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][v]), _mm512_mul_ps(dw, dx[v]), fa[r][v]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) _mm512_storeu_ps(C + r * tp + 16 * v, fa[r][v]);
}

#define QK(R, V) case 10 * R + V: qg_kernel(R, V, c, i, v); break;

static void q8_chunk_vnni(const opt_q8_chunk *c)
{
    for (int v = 0; v < c->ntile; v += 2) {
        const int V = c->ntile - v < 2 ? c->ntile - v : 2;
        for (int i = 0; i < c->nr; i += 4) {
            const int R = c->nr - i < 4 ? c->nr - i : 4;
            switch (10 * R + V) {
            QK(1, 1) QK(1, 2) QK(2, 1) QK(2, 2) QK(3, 1) QK(3, 2) QK(4, 1) QK(4, 2)
            default: break;
            }
        }
    }
}

static const opt_q8_gemm_isa q8_gemm_vnni = { 0, 1, 1, q8_chunk_vnni, 16, opt_avx2_q8_form };

static void q8_rows_512(int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd, const int32_t *sg,
                        int64_t nb, size_t pf, float out[4])
{
    if (ty == G4_T_Q8_0) q8_rows_vnni(G4_T_Q8_0, w, xq, xd, sg, nb, pf, out);
    else q8_rows_vnni(G4_T_Q4_0, w, xq, xd, sg, nb, pf, out);
}

#pragma GCC pop_options

static int vnni;                    /* AVX512BW + AVX512_VNNI: set by the getter */

static void avx512_q8_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if ((vnni ? opt_q8_gemv(q8_rows_512, opt_avx2_q8_quant, vnni_prep, Y, W, X, T) : opt_avx2_q8_gemv(Y, W, X, T)) == 0) return;
    if (opt_q8_gemm(vnni ? &q8_gemm_vnni : opt_avx2_q8_gemm_get(), opt_avx2_q8_quant, Y, W, X, T) == 0) return;
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
        G.form = form512;
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

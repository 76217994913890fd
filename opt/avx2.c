/* avx2.c - the x86-64 AVX2 + FMA + F16C kernel table "avx2".
 *
 * Built for any x86-64: the kernels are compiled for AVX2/FMA/F16C by the pragma below (and
 * OPT_CFLAGS_avx2 in the Makefile), while opt_avx2_table(), the only entry point, is compiled
 * for the baseline and returns the table only when cpuid says the CPU (and the OS) has AVX2, FMA
 * and F16C. On other architectures the file is the getter alone, returning NULL.
 *
 * Entries (each falls back to the ref entry for its bf16 = 1 case):
 *   matmul     every weight type is turned into fp32 in registers, exactly the values ref's
 *              g4_dequant_row gives (F16 by F16C, BF16 by a shift, quantized blocks below).
 *              Decode and batches of fewer than OPT_GEMM_MIN_T tokens (GEMV): 4 rows x 1 token
 *              tiles, one 8-lane FMA accumulator per output, columns in order (8 at a time), a
 *              fixed horizontal sum, and a scalar FMA tail for cols % 8 (float types only).
 *              Prefill (GEMM, T >= OPT_GEMM_MIN_T, driver opt_gemm in opt/gemm.c): the
 *              weights of 96 rows x 256 columns are formed once into an fp32 panel (L2) and
 *              an outer-product micro-kernel (6 rows x 16 tokens of accumulators) runs over
 *              it; each output is one serial fp32 FMA chain in column order, ref's own order.
 *   rmsnorm    sum of squares in double (8 lanes), then exactly ref's fp32 ops.
 *   layernorm  sums in double, then exactly ref's fp32 ops.
 *   rope       ref's operations, vectorized: bit-identical to ref.
 *   attention  heads in parallel; q.k with FMA, 4 keys at a time; vector exp; softmax sum in
 *              double; out += p_j v_j with FMA in key order.
 *   geglu      ref's gelu_tanh operations with the vector tanh below; elements in parallel.
 *   softcap    x / cap, vector tanh, * cap; elements in parallel.
 * Vector exp: Cody-Waite reduction x = n ln2 + r, degree-6 polynomial (Cephes expf
 * coefficients), 2^n by exponent arithmetic. Vector tanh(y) = sign(y) (1 - 2 / (exp(2|y|) + 1)),
 * |y| clamped to 10 (tanh(10) is 1.0f). Error bounds: docs/NUMERICS.md "opt".
 */
#include "opt.h"

#if defined(__x86_64__)

#include <cpuid.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- helpers ------------------------------------------------------------------------------ */

/* the fixed horizontal sum: (lo128 + hi128), then (0+2, 1+3), then (0+1) */
AI float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AI float f16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* the eight 6-bit scales and mins of a Q4_K block as two little-endian u64 of bytes
 * (layout in ref/quant.c): sc[0..3] = b[0..3] & 63, m[0..3] = b[4..7] & 63,
 * sc[4..7] = (b[8..11] & 15) | (b[0..3] >> 6) << 4, m[4..7] = (b[8..11] >> 4) | (b[4..7] >> 6) << 4 */
AI void q4k_scales(const uint8_t *s, uint64_t *sc, uint64_t *mn)
{
    uint32_t w0, w1, w2;
    memcpy(&w0, s, 4); memcpy(&w1, s + 4, 4); memcpy(&w2, s + 8, 4);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, mn_lo = w1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const uint32_t mn_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    *sc = (uint64_t)sc_lo | ((uint64_t)sc_hi << 32);
    *mn = (uint64_t)mn_lo | ((uint64_t)mn_hi << 32);
}

/* ---- float weights: F32, F16, BF16 -------------------------------------------------------- */

enum { TY_F32 = 100, TY_F16, TY_BF16 };   /* distinct from the g4_type ids */

AI __m256 ldw8(const int ty, const uint8_t *row, int64_t k)
{
    if (ty == TY_F32) return _mm256_loadu_ps((const float *)(const void *)(row + 4 * k));
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(row + 2 * k));
    if (ty == TY_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AI float ldw1(const int ty, const uint8_t *row, int64_t k)
{
    if (ty == TY_F32) { float f; memcpy(&f, row + 4 * k, 4); return f; }
    uint16_t h;
    memcpy(&h, row + 2 * k, 2);
    return ty == TY_F16 ? g4_f16_to_f32(h) : g4_bf16_to_f32(h);
}

/* rows r .. r+R-1 (R <= 4) x token t, all columns: one 8-lane FMA accumulator per row, columns
 * in order, the fixed horizontal sum, then the cols % 8 tail with scalar FMA */
AI void fp_tile(const int ty, const int R, const opt_mm *m, int64_t r, int t)
{
    const int64_t cols = m->cols, k8 = cols & ~(int64_t)7;
    const float *x = m->X + (int64_t)t * cols;
    const uint8_t *w[4];
    __m256 acc[4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) { w[i] = m->W + (r + i) * m->rb; acc[i] = _mm256_setzero_ps(); }
    const size_t pf = OPT_PF_ROWS * m->rb;
    const int64_t kline = ty == TY_F32 ? 16 : 32;     /* columns per 64-byte line */
    for (int64_t k = 0; k < k8; k += 8) {
        const __m256 xv = _mm256_loadu_ps(x + k);
        if (k % kline == 0)
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) opt_prefetch(w[i] + k * (ty == TY_F32 ? 4 : 2) + pf);
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) acc[i] = _mm256_fmadd_ps(ldw8(ty, w[i], k), xv, acc[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        float sum = hsum8(acc[i]);
        for (int64_t k = k8; k < cols; k++) sum = fmaf(ldw1(ty, w[i], k), x[k], sum);
        m->Y[(int64_t)t * m->rows + r + i] = sum;
    }
}

/* ---- quantized weights ------------------------------------------------------------------
 * Each 32-value block becomes 4 vectors of 8 fp32 weights (values 8k..8k+7) computed with
 * ref's single rounding from the stored integers q and scales, so they equal g4_dequant_row's:
 *   Q8_0  w = q d                        (exact)
 *   Q4_0  w = fma(q, d, -8 d)            = (q - 8) d, exact
 *   Q4_K  w = fma(q, d sc, -(dmin m))    = round(d sc q - dmin m), d sc q exact as in ref
 *   Q6_K  w = fma(q, d sc, -32 d sc)     = round((q - 32) d sc), ref's one rounding
 * then exactly the F32 dot: acc = fma(w, x, acc) per 8 columns, in column order. f16 scales come
 * from a 64K-entry table as a broadcast load (no shuffle port); bytes and nibbles go to 32-bit
 * lanes with vpshufb on a 16-byte half broadcast to both lanes (lane 0 takes bytes 0..3 or
 * 8..11, lane 1 bytes 4..7 or 12..15). */

float opt_f16_lut[65536];             /* filled by opt_avx2_table() before the table is used */
static float f16_lut24[65536];        /* f16 value x 2^-24 (exact: every f16 stays a normal float) */

AI int rd16(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

AI __m256 bc_f16(const uint8_t *p) { return _mm256_broadcast_ss(&opt_f16_lut[rd16(p)]); }
/* the same value by F16C from the 16 bytes at p (its first word), for loops that stream weights
 * from DRAM: opt_f16_lut is 256 KiB, a model's scales are spread over it, and its L1 misses hold
 * fill buffers the weight stream needs (the q8 GEMV: +10-14% from DRAM on 1 and 2 threads) */
AI __m256 f16c_bc(const uint8_t *p)
{
    return _mm256_permutevar8x32_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)), _mm256_setzero_si256());
}

AI __m256i spread_lo(__m256i v)   /* bytes 0..7 of the half -> 8 dwords */
{
    return _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1,
                                                   4, -1, -1, -1, 5, -1, -1, -1, 6, -1, -1, -1, 7, -1, -1, -1));
}

AI __m256i spread_hi(__m256i v)   /* bytes 8..15 of the half -> 8 dwords */
{
    return _mm256_shuffle_epi8(v, _mm256_setr_epi8(8, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11, -1, -1, -1,
                                                   12, -1, -1, -1, 13, -1, -1, -1, 14, -1, -1, -1, 15, -1, -1, -1));
}

AI __m256i bcast16(const uint8_t *p)
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)p));
}

/* the float scales of super-block sb of a K-type row, computed once per super-block:
 * Q4_K: ks[s] = d sc_s, ks[8 + s] = -(dmin m_s) (both exact); Q6_K: ks[j] = d sc_j (exact) */
AI void kscales(const int ty, const uint8_t *row, int64_t sb, float ks[16])
{
    if (ty == G4_T_Q4_K) {
        const uint8_t *blk = row + 144 * sb;
        uint64_t sc64, mn64;
        q4k_scales(blk + 4, &sc64, &mn64);
        const __m256 d = bc_f16(blk), dmin = bc_f16(blk + 2);
        const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc64)));
        const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mn64)));
        _mm256_storeu_ps(ks, _mm256_mul_ps(d, sc));
        _mm256_storeu_ps(ks + 8, _mm256_xor_ps(_mm256_mul_ps(dmin, mn), _mm256_set1_ps(-0.0f)));
    } else {
        const uint8_t *blk = row + 210 * sb;
        const __m256 d = bc_f16(blk + 208);
        const __m128i sc = _mm_loadu_si128((const __m128i *)(const void *)(blk + 192));
        _mm256_storeu_ps(ks, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc))));
        _mm256_storeu_ps(ks + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)))));
    }
}

/* the 32 weights of block b of a row: w[0..3] = values 0-7, 8-15, 16-23, 24-31 (K types: ks
 * holds the super-block's scales from kscales) */
AI void qblock(const int ty, const uint8_t *row, int64_t b, const float *ks, __m256 w[4])
{
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    if (ty == G4_T_Q8_0) {
        const uint8_t *blk = row + 34 * b;
        const __m256 d = bc_f16(blk);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++)
            w[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                       _mm_loadl_epi64((const __m128i *)(const void *)(blk + 2 + 8 * k)))), d);
    } else if (ty == G4_T_Q4_0) {
        const uint8_t *blk = row + 18 * b;
        const __m256 d = bc_f16(blk), c = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
        const __m256i raw = bcast16(blk + 2);
        const __m256i lo = _mm256_and_si256(raw, lo4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4);
        w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_lo(lo)), d, c);
        w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_hi(lo)), d, c);
        w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_lo(hi)), d, c);
        w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_hi(hi)), d, c);
    } else if (ty == G4_T_Q4_K) {
        /* sub-block s = b % 8 of super-block b / 8: chunk s / 2 of 32 bytes, low nibbles for
         * even s, high for odd s; byte l of the chunk is value l */
        const uint8_t *blk = row + 144 * (b >> 3);
        const int s = (int)(b & 7);
        const __m256 d1 = _mm256_broadcast_ss(&ks[s]), m1 = _mm256_broadcast_ss(&ks[8 + s]);
        const uint8_t *qs = blk + 16 + 32 * (s >> 1);
        __m256i a = bcast16(qs), bb = bcast16(qs + 16);
        if (s & 1) { a = _mm256_srli_epi16(a, 4); bb = _mm256_srli_epi16(bb, 4); }
        a = _mm256_and_si256(a, lo4);
        bb = _mm256_and_si256(bb, lo4);
        w[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_lo(a)), d1, m1);
        w[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_hi(a)), d1, m1);
        w[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_lo(bb)), d1, m1);
        w[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_hi(bb)), d1, m1);
    } else {                            /* Q6_K: group g = b % 8 = 4h + k, q in 0..63 */
        const uint8_t *blk = row + 210 * (b >> 3);
        const int g = (int)(b & 7), h = g >> 2, k = g & 3;
        const __m256i hi2 = _mm256_set1_epi8(0x30);
#pragma GCC unroll 2
        for (int half = 0; half < 2; half++) {      /* values 16 half .. 16 half + 15 */
            const __m256 dv = _mm256_broadcast_ss(&ks[2 * g + half]);
            const __m256 c = _mm256_mul_ps(dv, _mm256_set1_ps(-32.0f));
            const __m256i ql = bcast16(blk + 64 * h + 32 * (k & 1) + 16 * half);
            const __m256i qh = bcast16(blk + 128 + 32 * h + 16 * half);
            const __m256i low = k < 2 ? _mm256_and_si256(ql, lo4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), lo4);
            __m256i high;                           /* bits 2k, 2k+1 of qh to bits 4, 5 */
            if (k == 0) high = _mm256_slli_epi16(qh, 4);
            else if (k == 1) high = _mm256_slli_epi16(qh, 2);
            else if (k == 2) high = qh;
            else high = _mm256_srli_epi16(qh, 2);
            const __m256i qv = _mm256_or_si256(low, _mm256_and_si256(high, hi2));
            w[2 * half] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_lo(qv)), dv, c);
            w[2 * half + 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(spread_hi(qv)), dv, c);
        }
    }
}

/* GEMV for Q8_0 / Q4_0, block-scaled: per block and row, s = sum_j qv_j x_j over the block's 4
 * vectors of 8 (one mul, three FMAs), then acc = fma(s, scale, acc). Q8_0: qv = q (pmovsxbd),
 * scale d. Q4_0: q - 8 is formed in bytes and placed in the top byte of each 32-bit lane, so
 * qv = (q - 8) 2^24 exactly and scale = d 2^-24 (exact, f16_lut24): no sign-extension op. The
 * weight times scale product is exact inside the FMA; this saves the per-weight formation FMA
 * of qblock (decode is bound by these vector ops, not by DRAM, for 4- and 8-bit weights). */
AI __m256i top_lo(__m256i v)      /* bytes 0..7 of the half -> top byte of 8 dwords */
{
    return _mm256_shuffle_epi8(v, _mm256_setr_epi8(-1, -1, -1, 0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3,
                                                   -1, -1, -1, 4, -1, -1, -1, 5, -1, -1, -1, 6, -1, -1, -1, 7));
}

AI __m256i top_hi(__m256i v)      /* bytes 8..15 of the half -> top byte of 8 dwords */
{
    return _mm256_shuffle_epi8(v, _mm256_setr_epi8(-1, -1, -1, 8, -1, -1, -1, 9, -1, -1, -1, 10, -1, -1, -1, 11,
                                                   -1, -1, -1, 12, -1, -1, -1, 13, -1, -1, -1, 14, -1, -1, -1, 15));
}

AI __m256 bsum(const int ty, const uint8_t *blk, const float *xb, __m256 *scale)
{
    __m256 v0, v1, v2, v3;
    if (ty == G4_T_Q8_0) {
        *scale = f16c_bc(blk);      /* F16C, not the table: +17% from DRAM; Q4_0 keeps its table (compute-bound: -5% with F16C) */
#define Q8V(k) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(blk + 2 + 8 * (k)))))
        v0 = Q8V(0); v1 = Q8V(1); v2 = Q8V(2); v3 = Q8V(3);
#undef Q8V
    } else {
        *scale = _mm256_broadcast_ss(&f16_lut24[rd16(blk)]);
        const __m256i lo4 = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
        const __m256i raw = bcast16(blk + 2);
        const __m256i lo = _mm256_sub_epi8(_mm256_and_si256(raw, lo4), eight);
        const __m256i hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(raw, 4), lo4), eight);
        v0 = _mm256_cvtepi32_ps(top_lo(lo)); v1 = _mm256_cvtepi32_ps(top_hi(lo));
        v2 = _mm256_cvtepi32_ps(top_lo(hi)); v3 = _mm256_cvtepi32_ps(top_hi(hi));
    }
    __m256 sum = _mm256_mul_ps(v0, _mm256_loadu_ps(xb));
    sum = _mm256_fmadd_ps(v1, _mm256_loadu_ps(xb + 8), sum);
    sum = _mm256_fmadd_ps(v2, _mm256_loadu_ps(xb + 16), sum);
    return _mm256_fmadd_ps(v3, _mm256_loadu_ps(xb + 24), sum);
}

/* rows r .. r+R-1 (R <= 4) x token t, all blocks: Q8_0 / Q4_0 block-scaled (bsum), the
 * K types as fp_tile with the 4 weight vectors of each block formed by qblock */
AI void dq_tile(const int ty, const int R, const opt_mm *m, int64_t r, int t)
{
    const int64_t nb = m->cols / 32;
    const float *x = m->X + (int64_t)t * m->cols;
    const uint8_t *wr[4];
    __m256 acc[4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) { wr[i] = m->W + (r + i) * m->rb; acc[i] = _mm256_setzero_ps(); }
    if (ty == G4_T_Q4_K || ty == G4_T_Q6_K) {
        /* a super-block at a time: its scales once per row (vector ops), then its 8 blocks
         * unrolled, so each block's position in the super-block is a constant */
        const size_t sbb = ty == G4_T_Q4_K ? 144 : 210, pf = OPT_PF_ROWS * m->rb;
        for (int64_t sb = 0; sb < nb / 8; sb++) {
            float ks[4][16];
#pragma GCC unroll 4
            for (int i = 0; i < R; i++) {
                for (size_t o = 0; o < sbb; o += 64) opt_prefetch(wr[i] + sbb * sb + o + pf);
                kscales(ty, wr[i], sb, ks[i]);
            }
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++) {
                const float *xb = x + 256 * sb + 32 * s;
#pragma GCC unroll 4
                for (int i = 0; i < R; i++) {
                    __m256 w[4];
                    qblock(ty, wr[i], 8 * sb + s, ks[i], w);
                    acc[i] = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(xb), acc[i]);
                    acc[i] = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xb + 8), acc[i]);
                    acc[i] = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xb + 16), acc[i]);
                    acc[i] = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xb + 24), acc[i]);
                }
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) m->Y[(int64_t)t * m->rows + r + i] = hsum8(acc[i]);
        return;
    }
    const size_t pf = OPT_PF_ROWS * m->rb;
    for (int64_t b = 0; b < nb; b++) {            /* Q8_0, Q4_0: block-scaled */
        const float *xb = x + 32 * b;
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = wr[i] + (ty == G4_T_Q8_0 ? 34 : 18) * b;
            if (ty == G4_T_Q8_0 || (b & 1) == 0) opt_prefetch(blk + pf);   /* every 64 bytes or less */
            __m256 sc;
            const __m256 sum = bsum(ty, blk, xb, &sc);
            acc[i] = _mm256_fmadd_ps(sum, sc, acc[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) m->Y[(int64_t)t * m->rows + r + i] = hsum8(acc[i]);
}

/* GEMV rows [r0, r1) x every token, one token at a time in 4-row tiles (4 independent FMA
 * chains); used for decode and for batches of fewer than OPT_GEMM_MIN_T tokens, so a token gets
 * the same bits whether it comes alone or in such a small batch. */
#define DEFINE_ROWS(name, TILE, ty)                                                           \
    static void name(const opt_mm *m, int64_t r0, int64_t r1)                                 \
    {                                                                                         \
        for (int t = 0; t < m->T; t++) {                                                      \
            int64_t r = r0;                                                                   \
            for (; r + 4 <= r1; r += 4) TILE(ty, 4, m, r, t);                                 \
            for (; r < r1; r++) TILE(ty, 1, m, r, t);                                         \
        }                                                                                     \
    }

DEFINE_ROWS(rows_f32, fp_tile, TY_F32)
DEFINE_ROWS(rows_f16, fp_tile, TY_F16)
DEFINE_ROWS(rows_bf16, fp_tile, TY_BF16)
DEFINE_ROWS(rows_q8_0, dq_tile, G4_T_Q8_0)
DEFINE_ROWS(rows_q4_0, dq_tile, G4_T_Q4_0)
DEFINE_ROWS(rows_q4_k, dq_tile, G4_T_Q4_K)
DEFINE_ROWS(rows_q6_k, dq_tile, G4_T_Q6_K)

static const opt_isa ISA = {
    .f32 = rows_f32, .f16 = rows_f16, .bf16 = rows_bf16,
    .q8_0 = rows_q8_0, .q4_0 = rows_q4_0, .q4_k = rows_q4_k, .q6_k = rows_q6_k,
};

/* ---- prefill GEMM (driver: opt/gemm.c, opt_gemm) -----------------------------------------
 * The two ISA parts of the GEMM: the panel former (shared with avx512.c) and this table's
 * micro-kernels. */

/* P[i][k - k0] = W[r + i][k] for i < nr, k0 <= k < k0 + kc (k0, kc multiples of the block),
 * row stride OPT_GEMM_KC: exactly g4_dequant_row's values (ldw8 / qblock) */
static void form_panel(g4_type type, const uint8_t *W, size_t rb, int64_t r, int nr, int64_t k0, int64_t kc,
                       float *P)
{
    const int ty = type == G4_T_F32 ? TY_F32 : type == G4_T_F16 ? TY_F16 : type == G4_T_BF16 ? TY_BF16 : (int)type;
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = W + (r + i) * rb;
        float *p = P + (int64_t)i * OPT_GEMM_KC;
        if (ty >= TY_F32) {
            int64_t k = 0;
            for (; k + 8 <= kc; k += 8) _mm256_storeu_ps(p + k, ldw8(ty, row, k0 + k));
            for (; k < kc; k++) p[k] = ldw1(ty, row, k0 + k);
            continue;
        }
        float ks[16];
        for (int64_t b = k0 / 32; b < (k0 + kc) / 32; b++) {
            if ((ty == G4_T_Q4_K || ty == G4_T_Q6_K) && (b == k0 / 32 || (b & 7) == 0))
                kscales(ty, row, b >> 3, ks);
            __m256 w[4];
            qblock(ty, row, b, ks, w);
            float *q = p + 32 * b - k0;
            _mm256_storeu_ps(q, w[0]); _mm256_storeu_ps(q + 8, w[1]);
            _mm256_storeu_ps(q + 16, w[2]); _mm256_storeu_ps(q + 24, w[3]);
        }
    }
}

/* C[i][8 v + j] (+)= sum over the panel's kc columns of P[i][k] XT[k][8 v + j] (XT: this
 * token tile, 8 V values per column), R <= 6 rows, V <= 2 vectors of 8 tokens; first: start
 * from 0 instead of C. 6 x 2 uses 12 accumulators + 2 token vectors + 1 broadcast: 15 of the
 * 16 ymm registers (no spill), 12 FMAs for 8 loads per column. */
AI void gemm_kernel(const int R, const int V, const float *P, const float *XT, int64_t tgp, int64_t kc,
                    float *C, int first)
{
    __m256 a[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) a[i][v] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(C + i * tgp + 8 * v);
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        const float *xk = XT + k * 8 * V;
        __m256 x[2];
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) x[v] = _mm256_loadu_ps(xk + 8 * v);
#pragma GCC unroll 6
        for (int i = 0; i < R; i++) {
            const __m256 b = _mm256_broadcast_ss(P + i * OPT_GEMM_KC + k);
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) a[i][v] = _mm256_fmadd_ps(b, x[v], a[i][v]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) _mm256_storeu_ps(C + i * tgp + 8 * v, a[i][v]);
}

#define GK(R, V) case 10 * R + V: gemm_kernel(R, V, P + ri * OPT_GEMM_KC, x, tgp, kc, c, first); break;

/* one panel: every token tile (16 tokens: XT[tile][k][16]) x every 6-row tile */
static void gemm_panel(const float *P, int nr, const float *XT, int64_t cols, int64_t k0, int64_t kc,
                       int64_t tgp, float *C, int first)
{
    const int64_t nv = tgp / 8;
    for (int64_t v0 = 0; v0 < nv; v0 += 2) {
        const int V = (int)(nv - v0 < 2 ? nv - v0 : 2);
        const float *x = XT + (v0 / 2) * 16 * cols + k0 * 8 * V;
        for (int ri = 0; ri < nr; ri += 6) {
            const int R = nr - ri < 6 ? nr - ri : 6;
            float *c = C + ri * tgp + 8 * v0;
            switch (10 * R + V) {
            GK(1, 1) GK(1, 2) GK(2, 1) GK(2, 2) GK(3, 1) GK(3, 2)
            GK(4, 1) GK(4, 2) GK(5, 1) GK(5, 2) GK(6, 1) GK(6, 2)
            default: break;
            }
        }
    }
}

const opt_gemm_isa opt_avx2_gemm = { 8, 16, form_panel, gemm_panel };

static void avx2_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if (opt_gemm(&opt_avx2_gemm, Y, W, X, T) == 0) return;
    opt_matmul(&ISA, Y, W, X, T);
}

/* ---- the q8 mode's GEMV (tables "avx2-q8", "avx512-q8"; docs/NUMERICS.md "q8 mode") -------
 * Bit-identical to ref-q8 (ref/quant.c g4_dot_row_q8): the activations are rounded by the same
 * function (g4_quant_act_q8); per block, vpmaddubsw (unsigned x signed bytes to int16 pairs,
 * which cannot saturate here: Q4_0 2 * 15 * 127, Q8_0 with the sign moved onto the activations
 * 2 * 128 * 127) and vpmaddwd by 1 leave in lane g the exact sum of group g (values 4g..4g+3):
 * ref-q8's s. Q4_0 dots the unsigned nibbles and takes 8 * sg (the group's sum of q) back off.
 * Then ref-q8's fp32 part in the same lanes: scale = dw * dx, acc[parity] = fma((float)s,
 * scale, acc[parity]), and at the row's end hsum8(acc[0] + acc[1]), which is ref-q8's tree. */

/* the 8 group sums of block b of one row (ty's layout at blk) against xv, as int32 lanes */
AI __m256i q8_groups(const int ty, const uint8_t *blk, __m256i xv, __m256i corr)
{
    const __m256i ones = _mm256_set1_epi16(1);
    if (ty == G4_T_Q8_0) {
        const __m256i wq = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
        return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(wq), _mm256_sign_epi8(xv, wq)), ones);
    }
    const __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0f));
    return _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(nib, xv), ones), corr);
}

/* block b of 4 rows into their accumulators of parity p (acc[i][p]) */
AI void q8_block(const int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd, const int32_t *sg,
                 int64_t b, size_t pf, __m256 acc[4][2], const int p)
{
    const int64_t bs = ty == G4_T_Q8_0 ? 34 : 18;
    const __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(xq + 32 * b));
    const __m256i corr = ty == G4_T_Q8_0 ? _mm256_setzero_si256()
                                         : _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(sg + 8 * b)), 3);
    const __m256 dx = _mm256_broadcast_ss(xd + b);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        const uint8_t *blk = w[i] + bs * b;
        if (ty == G4_T_Q8_0 || (b & 1) == 0) opt_prefetch(blk + pf);   /* every 64 bytes or less */
        const __m256 scale = _mm256_mul_ps(f16c_bc(blk), dx);
        acc[i][p] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_groups(ty, blk, xv, corr)), scale, acc[i][p]);
    }
}

AI void q8_rows(const int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd, const int32_t *sg,
                int64_t nb, size_t pf, float out[4])
{
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        q8_block(ty, w, xq, xd, sg, b, pf, acc, 0);
        q8_block(ty, w, xq, xd, sg, b + 1, pf, acc, 1);
    }
    if (b < nb) q8_block(ty, w, xq, xd, sg, b, pf, acc, 0);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) out[i] = hsum8(_mm256_add_ps(acc[i][0], acc[i][1]));
}

static void q8_rows_avx2(int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd, const int32_t *sg,
                         int64_t nb, size_t pf, float out[4])
{
    if (ty == G4_T_Q8_0) q8_rows(G4_T_Q8_0, w, xq, xd, sg, nb, pf, out);
    else q8_rows(G4_T_Q4_0, w, xq, xd, sg, nb, pf, out);
}

/* g4_quant_act_q8 for a vector unit, bit for bit: the same amax (a max is exact in any order),
 * the same scalar d = amax / 127 and 1 / d, the product x * (1/d) per lane and its rounding to
 * nearest even by vcvtps2dq (MXCSR's default mode, as rintf's); a block holding an infinity or a
 * NaN (|x| > FLT_MAX or unordered) gets q = 0, d = NaN, one whose 1/d overflows d = 0. Also sg: vpmaddubsw of 1s and q, then
 * vpmaddwd by 1, sums each group of 4 bytes. */
void opt_avx2_q8_quant(const float *x, int64_t n, int8_t *q, float *d, int32_t *sg)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), big = _mm256_set1_ps(FLT_MAX);
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 v[4], mx = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            const __m256 a = _mm256_and_ps(v[k], absm);
            bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, big, _CMP_NLE_UQ));
            mx = _mm256_max_ps(mx, a);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        float db = amax / 127.0f, id = db > 0.0f ? 1.0f / db : 0.0f;
        if (isinf(id)) db = id = 0.0f;
        __m256i qv;
        if (_mm256_movemask_ps(bad)) {
            qv = _mm256_setzero_si256();
            d[b] = NAN;
        } else {
            const __m256 idv = _mm256_set1_ps(id);
            __m256i i32[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) i32[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], idv));
            /* packs work per 128-bit lane: undo the interleave with one dword permute */
            const __m256i p16 = _mm256_packs_epi16(_mm256_packs_epi32(i32[0], i32[1]), _mm256_packs_epi32(i32[2], i32[3]));
            qv = _mm256_permutevar8x32_epi32(p16, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            d[b] = db;
        }
        _mm256_storeu_si256((__m256i *)(void *)(q + 32 * b), qv);
        _mm256_storeu_si256((__m256i *)(void *)(sg + 8 * b),
                            _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), qv), _mm256_set1_epi16(1)));
    }
}

/* ---- the q8 mode's prefill GEMM (opt.h, opt_q8_chunk), lanes = tokens -------------------
 * The panel: each row's blocks of the chunk as 32 bytes in value order (row-wise, no
 * transpose), P[i][b][32], and the scales PD[i][b]. Bytes: Q4_0 unsigned nibbles (uns) or
 * nibble - 8; Q8_0 q + 128 (uns) or q. Shared with the avx512 table (its VNNI kernel). */
void opt_avx2_q8_form(g4_type ty, const uint8_t *W, size_t rb, int64_t r0, int nr, int64_t b0, int kb,
                      int uns, uint8_t *P, float *PD)
{
    const __m128i m4 = _mm_set1_epi8(0x0f), off4 = _mm_set1_epi8(uns ? 0 : 8);
    const __m256i off8 = _mm256_set1_epi8(uns ? (char)0x80 : 0);
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = W + (r0 + i) * rb;
        uint8_t *dst = P + (size_t)i * kb * 32;
        for (int b = 0; b < kb; b++) {
            if (ty == G4_T_Q4_0) {
                const uint8_t *blk = row + 18 * (b0 + b);
                const __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(blk + 2));
                _mm_storeu_si128((__m128i *)(void *)(dst + 32 * b), _mm_sub_epi8(_mm_and_si128(q, m4), off4));
                _mm_storeu_si128((__m128i *)(void *)(dst + 32 * b + 16),
                                 _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), off4));
                PD[i * kb + b] = opt_f16_lut[rd16(blk)];
            } else {
                const uint8_t *blk = row + 34 * (b0 + b);
                const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 2));
                _mm256_storeu_si256((__m256i *)(void *)(dst + 32 * b), _mm256_xor_si256(q, off8));
                PD[i * kb + b] = opt_f16_lut[rd16(blk)];
            }
        }
    }
}

/* The AVX2 chunk kernel: activations tiled 8 tokens side by side (xt_nt = 8); for row r and
 * group g, the row's 4 weight bytes broadcast against 8 tokens' 4 bytes. Q4_0 (unsigned nibbles
 * x int8): vpmaddubsw pairs are at most 2 * 15 * 127, so all 8 groups sum in int16 (at most
 * 30480) before one vpmaddwd by 1 widens to int32, started at -8 x the block sum of q. Q8_0
 * (int8 x int8, off = 0): vpmaddubsw takes |w| (broadcast) and x with w's sign (vpsignb), pairs
 * at most 2 * 128 * 127 = 32512, then vpmaddwd and an int32 add per group. All exact, so each
 * lane holds the block's int32 sum; then acc = fma((float)S, dw * dx, acc) as
 * g4_dot_row_q8_serial. Micro-kernel: 2 rows x 16 tokens. */
AI int32_t rd32i(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

AI void qg2_kernel(const int ty, const int R, const int V, const opt_q8_chunk *c, int i0, int v0)
{
    const int kb = c->kb;
    const int64_t nb = c->nb, tp = (int64_t)c->ntile * 8;
    const int32_t *xt = c->xt + ((int64_t)v0 * nb + c->b0) * 64;       /* tile v at + v nb 64 */
    const float *xd = c->xtd + ((int64_t)v0 * nb + c->b0) * 8;
    const int32_t *xs = c->xts + ((int64_t)v0 * nb + c->b0) * 8;
    const uint8_t *w = c->P + (size_t)i0 * kb * 32;
    const float *pd = c->PD + (size_t)i0 * kb;
    float *C = c->C + i0 * tp + 8 * v0;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 fa[2][2];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) fa[r][v] = c->first ? _mm256_setzero_ps() : _mm256_loadu_ps(C + r * tp + 8 * v);
    for (int b = 0; b < kb; b++) {
        __m256i ia[2][2], s16[2][2];
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m256i x[2];
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) x[v] = _mm256_loadu_si256((const __m256i *)(const void *)(xt + v * nb * 64 + 64 * b + 8 * g));
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) {
                const __m256i wb = _mm256_set1_epi32(rd32i(w + (size_t)r * kb * 32 + 32 * b + 4 * g));
                const __m256i wa = ty == G4_T_Q4_0 ? wb : _mm256_abs_epi8(wb);
#pragma GCC unroll 2
                for (int v = 0; v < V; v++) {
                    if (ty == G4_T_Q4_0) {          /* int16 over the block, widened below */
                        const __m256i p = _mm256_maddubs_epi16(wb, x[v]);
                        s16[r][v] = g == 0 ? p : _mm256_add_epi16(s16[r][v], p);
                    } else {                        /* int32 per group */
                        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wa, _mm256_sign_epi8(x[v], wb)), ones);
                        ia[r][v] = g == 0 ? p : _mm256_add_epi32(ia[r][v], p);
                    }
                }
            }
        }
        if (ty == G4_T_Q4_0)
#pragma GCC unroll 2
            for (int v = 0; v < V; v++) {
                const __m256i s0 = _mm256_loadu_si256((const __m256i *)(const void *)(xs + v * nb * 8 + 8 * b));
#pragma GCC unroll 2
                for (int r = 0; r < R; r++) ia[r][v] = _mm256_add_epi32(s0, _mm256_madd_epi16(s16[r][v], ones));
            }
        __m256 dx[2];
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) dx[v] = _mm256_loadu_ps(xd + v * nb * 8 + 8 * b);
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const __m256 dw = _mm256_set1_ps(pd[r * kb + b]);
#pragma GCC unroll 2
            for (int v = 0; v < V; v++)
                fa[r][v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][v]), _mm256_mul_ps(dw, dx[v]), fa[r][v]);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) _mm256_storeu_ps(C + r * tp + 8 * v, fa[r][v]);
}

#define QK2(R, V) case 10 * R + V: if (q4) qg2_kernel(G4_T_Q4_0, R, V, c, i, v); else qg2_kernel(G4_T_Q8_0, R, V, c, i, v); break;

static void q8_chunk_avx2(const opt_q8_chunk *c)
{
    const int q4 = c->ty == G4_T_Q4_0;   /* Q4_0 unsigned nibbles; Q8_0 int8 (u_q8 = 0) */
    for (int v = 0; v < c->ntile; v += 2) {
        const int V = c->ntile - v < 2 ? c->ntile - v : 2;
        for (int i = 0; i < c->nr; i += 2) {
            const int R = c->nr - i < 2 ? c->nr - i : 2;
            switch (10 * R + V) {
            QK2(1, 1) QK2(1, 2) QK2(2, 1) QK2(2, 2)
            default: break;
            }
        }
    }
}

static const opt_q8_gemm_isa q8_gemm_avx2 = { 0, 1, 0, q8_chunk_avx2, 8, opt_avx2_q8_form };

const opt_q8_gemm_isa *opt_avx2_q8_gemm_get(void) { return &q8_gemm_avx2; }

int opt_avx2_q8_gemv(float *Y, const g4_tensor *W, const float *X, int T)
{
    return opt_q8_gemv(q8_rows_avx2, opt_avx2_q8_quant, NULL, Y, W, X, T);
}

static void avx2_q8_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if (opt_avx2_q8_gemv(Y, W, X, T) == 0 || opt_q8_gemm(&q8_gemm_avx2, opt_avx2_q8_quant, Y, W, X, T) == 0) return;
    avx2_matmul(Y, W, X, T);
}

/* ---- exp and tanh ------------------------------------------------------------------------ */

/* e^x for x in [-87.3, 88.3] (below: 0; above: clamped, never reached by the callers) */
AI __m256 exp8(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f);
    const __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));          /* NaN passes through */
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n ln2, ln2 split in a short high part (n * hi is exact) and a correction */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* tanh(y) = sign(y) (1 - 2 / (e^(2|y|) + 1)), |y| clamped to 10 */
AI __m256 tanh8(__m256 y)
{
    const __m256 signbit = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_min_ps(_mm256_set1_ps(10.0f), _mm256_andnot_ps(signbit, y)); /* NaN stays */
    __m256 e = exp8(_mm256_add_ps(a, a));
    __m256 t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    return _mm256_or_ps(t, _mm256_and_ps(y, signbit));
}

static float tanh1(float y)
{
    float in[8] = { y }, out[8];
    _mm256_storeu_ps(out, tanh8(_mm256_loadu_ps(in)));
    return out[0];
}

/* ---- norms, rope ------------------------------------------------------------------------- */

/* sum of x_i^2 (or (x_i - mean)^2) in double: 8 lanes (two of 4), fixed combination, tail */
static double sumsq_d(const float *x, int n, float mean, int centered)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    const __m256d mv = _mm256_set1_pd(mean);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        if (centered) { lo = _mm256_sub_pd(lo, mv); hi = _mm256_sub_pd(hi, mv); }
        a0 = _mm256_add_pd(a0, _mm256_mul_pd(lo, lo));
        a1 = _mm256_add_pd(a1, _mm256_mul_pd(hi, hi));
    }
    double l[4];
    _mm256_storeu_pd(l, _mm256_add_pd(a0, a1));
    double s = (l[0] + l[1]) + (l[2] + l[3]);
    for (; i < n; i++) { double dv = centered ? (double)x[i] - mean : (double)x[i]; s += dv * dv; }
    return s;
}

static double sum_d(const float *x, int n)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    double l[4];
    _mm256_storeu_pd(l, _mm256_add_pd(a0, a1));
    double s = (l[0] + l[1]) + (l[2] + l[3]);
    for (; i < n; i++) s += x[i];
    return s;
}

static void avx2_rmsnorm(float *y, const float *x, const float *w, int n, float eps)
{
    const float ms = (float)(sumsq_d(x, n, 0.0f, 0) / n) + eps;
    const float r = powf(ms, -0.5f);
    const __m256 rv = _mm256_set1_ps(r);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), rv);
        _mm256_storeu_ps(y + i, w ? _mm256_mul_ps(v, _mm256_loadu_ps(w + i)) : v);
    }
    for (; i < n; i++) { float v = x[i] * r; y[i] = w ? v * w[i] : v; }
}

static void avx2_layernorm(float *y, const float *x, const float *w, const float *b, int n, float eps)
{
    const float mean = (float)(sum_d(x, n) / n);
    const float rstd = 1.0f / sqrtf((float)(sumsq_d(x, n, mean, 1) / n) + eps);
    const __m256 mv = _mm256_set1_ps(mean), rv = _mm256_set1_ps(rstd);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), rv), _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, _mm256_add_ps(v, _mm256_loadu_ps(b + i)));
    }
    for (; i < n; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

static void avx2_rope(float *x, int n_heads, int hd, const float *c, const float *s, int bf16)
{
    if (bf16) { g4_kernels_ref.rope(x, n_heads, hd, c, s, bf16); return; }
    const int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * hd;
        int i = 0;
        for (; i + 8 <= half; i += 8) {
            __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + i + half);
            __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
            _mm256_storeu_ps(v + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
            _mm256_storeu_ps(v + i + half, _mm256_add_ps(_mm256_mul_ps(b, cv), _mm256_mul_ps(a, sv)));
        }
        for (; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
        }
    }
}

/* ---- attention --------------------------------------------------------------------------- */

/* the scores of keys 0 .. n - 1 (krow[j] + off) against q: one FMA accumulator per key,
 * columns in order, fixed hsum, scalar FMA tail; 8 keys at a time share each load of q (then
 * 4, then 1: the same sums) */
static void att_scores(const float *q, int hd, int64_t off, const float *const *krow, int n_keys, float *sc)
{
    const int h8 = hd & ~7;
    int j = 0;
    for (; j + 8 <= n_keys; j += 8) {
        const float *k[8];
        __m256 a[8];
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) { k[u] = krow[j + u] + off; a[u] = _mm256_setzero_ps(); }
        for (int i = 0; i < h8; i += 8) {
            const __m256 qv = _mm256_loadu_ps(q + i);
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) a[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[u] + i), a[u]);
        }
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) {
            float su = hsum8(a[u]);
            for (int i = h8; i < hd; i++) su = fmaf(q[i], k[u][i], su);
            sc[j + u] = su;
        }
    }
    for (; j + 4 <= n_keys; j += 4) {
        const float *k0 = krow[j] + off, *k1 = krow[j + 1] + off, *k2 = krow[j + 2] + off, *k3 = krow[j + 3] + off;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int i = 0; i < h8; i += 8) {
            __m256 qv = _mm256_loadu_ps(q + i);
            a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
            a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), a1);
            a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), a2);
            a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), a3);
        }
        float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);
        for (int i = h8; i < hd; i++) {
            s0 = fmaf(q[i], k0[i], s0); s1 = fmaf(q[i], k1[i], s1);
            s2 = fmaf(q[i], k2[i], s2); s3 = fmaf(q[i], k3[i], s3);
        }
        sc[j] = s0; sc[j + 1] = s1; sc[j + 2] = s2; sc[j + 3] = s3;
    }
    for (; j < n_keys; j++) {
        const float *k0 = krow[j] + off;
        __m256 a0 = _mm256_setzero_ps();
        for (int i = 0; i < h8; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k0 + i), a0);
        float s0 = hsum8(a0);
        for (int i = h8; i < hd; i++) s0 = fmaf(q[i], k0[i], s0);
        sc[j] = s0;
    }
}

/* softmax in place: max, e^(s - max), their sum in double, each scaled by (float)(1 / sum) */
static void att_softmax(float *sc, int n_keys)
{
    int j;
    float mx = -INFINITY;
    for (j = 0; j < n_keys; j++) if (sc[j] > mx) mx = sc[j];
    const __m256 mv = _mm256_set1_ps(mx);
    __m256d d0 = _mm256_setzero_pd(), d1 = d0;
    for (j = 0; j + 8 <= n_keys; j += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), mv));
        _mm256_storeu_ps(sc + j, e);
        d0 = _mm256_add_pd(d0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        d1 = _mm256_add_pd(d1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double l[4];
    _mm256_storeu_pd(l, _mm256_add_pd(d0, d1));
    double sum = (l[0] + l[1]) + (l[2] + l[3]);
    if (j < n_keys) {
        float tmp[8] = { 0 };
        for (int i = j; i < n_keys; i++) tmp[i - j] = sc[i] - mx;
        _mm256_storeu_ps(tmp, exp8(_mm256_loadu_ps(tmp)));
        for (int i = j; i < n_keys; i++) { sc[i] = tmp[i - j]; sum += sc[i]; }
    }
    const float inv = (float)(1.0 / sum);
    for (j = 0; j < n_keys; j++) sc[j] *= inv;
}

/* outputs i0 .. hd - 1 of sum_j p_j v_j over keys 0 .. n - 1 (vrow[j] + off): 8 at a time in a
 * register, then one by one; per output one FMA chain in key order, from 0 */
static void att_pv_rest(float *out, int i0, int hd, int64_t off, const float *const *vrow, int n_keys,
                        const float *sc)
{
    const int h8 = hd & ~7;
    int i = i0;
    for (; i < h8; i += 8) {
        __m256 o = _mm256_setzero_ps();
        for (int j = 0; j < n_keys; j++) o = _mm256_fmadd_ps(_mm256_broadcast_ss(sc + j), _mm256_loadu_ps(vrow[j] + off + i), o);
        _mm256_storeu_ps(out + i, o);
    }
    for (; i < hd; i++) {
        float o = 0.0f;
        for (int j = 0; j < n_keys; j++) o = fmaf(sc[j], vrow[j][off + i], o);
        out[i] = o;
    }
}

static void att_head(float *out, const float *q, int hd, int64_t off, const float *const *krow,
                     const float *const *vrow, int n_keys, float *sc)
{
    const int h8 = hd & ~7;
    int j;
    att_scores(q, hd, off, krow, n_keys, sc);
    att_softmax(sc, n_keys);
    /* out = sum_j p_j v_j: per output one FMA chain in key order, from 0. The outputs are
     * held in registers 64 at a time (then att_pv_rest) while the keys stream past, so each
     * step is one load of v per FMA and no store. */
    int i = 0;
    for (; i + 64 <= h8; i += 64) {
        __m256 o[8];
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) o[u] = _mm256_setzero_ps();
        for (j = 0; j < n_keys; j++) {
            const float *v = vrow[j] + off + i;
            const __m256 p = _mm256_broadcast_ss(sc + j);
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) o[u] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * u), o[u]);
        }
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) _mm256_storeu_ps(out + i + 8 * u, o[u]);
    }
    att_pv_rest(out, i, hd, off, vrow, n_keys, sc);
}

/* OPT_ATT_QB (4) queries of one head (opt_heads_fn), bit for bit att_head per query: every score
 * and every output keeps its own FMA chain in the same order; only the loads are shared. The
 * keys all queries see (Lc .. Hc) are read once for all of them: scores 4 queries x 2 keys per
 * step, P.V 4 queries x 16 outputs per key row; each query's own keys before Lc and after Hc
 * run in their place in its chains. (Blocks the driver cannot share go to att_head.) */
_Static_assert(OPT_ATT_QB == 4, "att_block holds 4 queries");
static void att_block(float *out, const float *q, int64_t qs, int hd, int64_t off,
                      const float *const *krow, const float *const *vrow, const int *lo, const int *hi,
                      int Lc, int Hc, float *sc, int span)
{
    const int h8 = hd & ~7;
    float *s[4];
    const float *qt[4];
    for (int t = 0; t < 4; t++) { s[t] = sc + (int64_t)t * span; qt[t] = q + t * qs; }
    /* scores: each query's keys before Lc, the common keys, its keys after Hc */
    for (int t = 0; t < 4; t++) att_scores(qt[t], hd, off, krow + lo[t], Lc - lo[t], s[t]);
    int j = Lc;
    for (; j + 1 <= Hc; j += 2) {
        const float *k0 = krow[j] + off, *k1 = krow[j + 1] + off;
        __m256 a[4][2];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) a[t][0] = a[t][1] = _mm256_setzero_ps();
        for (int i = 0; i < h8; i += 8) {
            const __m256 kv0 = _mm256_loadu_ps(k0 + i), kv1 = _mm256_loadu_ps(k1 + i);
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                const __m256 qv = _mm256_loadu_ps(qt[t] + i);
                a[t][0] = _mm256_fmadd_ps(qv, kv0, a[t][0]);
                a[t][1] = _mm256_fmadd_ps(qv, kv1, a[t][1]);
            }
        }
        for (int t = 0; t < 4; t++) {
            float s0 = hsum8(a[t][0]), s1 = hsum8(a[t][1]);
            for (int i = h8; i < hd; i++) { s0 = fmaf(qt[t][i], k0[i], s0); s1 = fmaf(qt[t][i], k1[i], s1); }
            s[t][j - lo[t]] = s0;
            s[t][j + 1 - lo[t]] = s1;
        }
    }
    for (int t = 0; t < 4; t++) {
        att_scores(qt[t], hd, off, krow + j, hi[t] - j + 1, s[t] + (j - lo[t]));   /* Hc if left, then its own */
        att_softmax(s[t], hi[t] - lo[t] + 1);
    }
    /* P.V: per output one FMA chain over the query's keys in order, from 0 */
    int i = 0;
    for (; i + 16 <= h8; i += 16) {
        __m256 o[4][2];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) o[t][0] = o[t][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            for (int u = lo[t]; u < Lc; u++) {
                const float *v = vrow[u] + off + i;
                const __m256 p = _mm256_broadcast_ss(s[t] + (u - lo[t]));
                o[t][0] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v), o[t][0]);
                o[t][1] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8), o[t][1]);
            }
        for (int u = Lc; u <= Hc; u++) {
            const float *v = vrow[u] + off + i;
            const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                const __m256 p = _mm256_broadcast_ss(s[t] + (u - lo[t]));
                o[t][0] = _mm256_fmadd_ps(p, v0, o[t][0]);
                o[t][1] = _mm256_fmadd_ps(p, v1, o[t][1]);
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            for (int u = Hc + 1; u <= hi[t]; u++) {
                const float *v = vrow[u] + off + i;
                const __m256 p = _mm256_broadcast_ss(s[t] + (u - lo[t]));
                o[t][0] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v), o[t][0]);
                o[t][1] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8), o[t][1]);
            }
            _mm256_storeu_ps(out + t * qs + i, o[t][0]);
            _mm256_storeu_ps(out + t * qs + i + 8, o[t][1]);
        }
    }
    for (int t = 0; t < 4; t++) att_pv_rest(out + t * qs, i, hd, off, vrow + lo[t], hi[t] - lo[t] + 1, s[t]);
}

static void avx2_attention(float *out, const float *q, int n_heads, int hd, int group,
                           const float *const *krow, const float *const *vrow, int n_keys,
                           float *scores, int bf16)
{
    if (bf16 || n_keys < 1) {
        g4_kernels_ref.attention(out, q, n_heads, hd, group, krow, vrow, n_keys, scores, bf16);
        return;
    }
    opt_attention(att_head, out, q, n_heads, hd, group, krow, vrow, n_keys, scores);
}

static void avx2_attention_batch(float *out, const float *q, int T, int n_heads, int hd, int group,
                                 const float *const *krow, const float *const *vrow,
                                 const int *lo, const int *hi, float *scores, int bf16)
{
    const int64_t qs = (int64_t)n_heads * hd;
    if (bf16 || opt_attention_batch(att_head, att_block, out, q, T, n_heads, hd, group, krow, vrow, lo, hi))
        for (int t = 0; t < T; t++)     /* bf16, or no scratch: query by query, the same sums */
            avx2_attention(out + t * qs, q + t * qs, n_heads, hd, group, krow + lo[t], vrow + lo[t],
                           hi[t] - lo[t] + 1, scores, bf16);
}

/* ---- geglu, softcap ---------------------------------------------------------------------- */

typedef struct { float *out; const float *gate, *up; float cap; } ew_job;

/* gelu_tanh(g) * u with ref's operation order: 0.5 g (1 + tanh(c (g + 0.044715 g^3))) */
static void geglu_part(void *ctx, int64_t i0, int64_t n)
{
    const ew_job *j = ctx;
    const __m256 c = _mm256_set1_ps(0.7978845608028654f), k = _mm256_set1_ps(0.044715f);
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    int64_t i = i0;
    for (; i + 8 <= i0 + n; i += 8) {
        __m256 g = _mm256_loadu_ps(j->gate + i);
        __m256 cube = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(k, g), g), g);
        __m256 t = tanh8(_mm256_mul_ps(c, _mm256_add_ps(g, cube)));
        __m256 ge = _mm256_mul_ps(_mm256_mul_ps(half, g), _mm256_add_ps(one, t));
        _mm256_storeu_ps(j->out + i, _mm256_mul_ps(ge, _mm256_loadu_ps(j->up + i)));
    }
    for (; i < i0 + n; i++) {
        float g = j->gate[i];
        float t = tanh1(0.7978845608028654f * (g + 0.044715f * g * g * g));
        j->out[i] = 0.5f * g * (1.0f + t) * j->up[i];
    }
}

static void avx2_geglu(float *out, const float *gate, const float *up, int n, int bf16)
{
    if (bf16) { g4_kernels_ref.geglu(out, gate, up, n, bf16); return; }
    ew_job j = { out, gate, up, 0 };
    opt_parallel_elems(geglu_part, &j, n);
}

static void softcap_part(void *ctx, int64_t i0, int64_t n)
{
    const ew_job *j = ctx;
    const __m256 cap = _mm256_set1_ps(j->cap);
    int64_t i = i0;
    for (; i + 8 <= i0 + n; i += 8)
        _mm256_storeu_ps(j->out + i, _mm256_mul_ps(tanh8(_mm256_div_ps(_mm256_loadu_ps(j->out + i), cap)), cap));
    for (; i < i0 + n; i++) j->out[i] = tanh1(j->out[i] / j->cap) * j->cap;
}

static void avx2_softcap(float *x, int n, float cap, int bf16)
{
    if (bf16) { g4_kernels_ref.softcap(x, n, cap, bf16); return; }
    ew_job j = { x, NULL, NULL, cap };
    opt_parallel_elems(softcap_part, &j, n);
}

static int avx2_threads(int n) { return opt_threads(n); }

/* ---- the fp32 FMA peak: 12 independent 8-lane FMA chains per thread ----------------------- */

static void fma_loop(void *ctx)
{
    const int64_t iters = *(const int64_t *)ctx;
    const __m256 m = _mm256_set1_ps(0.99999994f), c = _mm256_set1_ps(1e-7f);
    __m256 a[12];
    for (int k = 0; k < 12; k++) a[k] = _mm256_set1_ps(1.0f + (float)k);
    for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++) a[k] = _mm256_fmadd_ps(a[k], m, c);
    }
    __m256 s = a[0];
    for (int k = 1; k < 12; k++) s = _mm256_add_ps(s, a[k]);
    volatile float sink = hsum8(s);
    (void)sink;
}

static double avx2_fma_peak(int threads, double seconds)
{
    return opt_fma_peak(fma_loop, 12 * 8 * 2, 1 << 20, threads, seconds);
}

static const g4_kernels K = {
    .name = "avx2",
    .matmul = avx2_matmul,
    .rmsnorm = avx2_rmsnorm,
    .layernorm = avx2_layernorm,
    .rope = avx2_rope,
    .attention = avx2_attention,
    .attention_batch = avx2_attention_batch,
    .geglu = avx2_geglu,
    .softcap = avx2_softcap,
    .threads = avx2_threads,
    .fma_peak = avx2_fma_peak,
};

#pragma GCC pop_options

/* compiled for the baseline even though the Makefile builds this file with -mavx2 -mfma -mf16c
 * (OPT_CFLAGS_avx2): the check must run on any x86-64 */
__attribute__((target("no-avx,no-avx2,no-fma,no-f16c")))
const g4_kernels *opt_avx2_table(void)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return NULL;
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_F16C)) return NULL;
    static int ready;
    if (!ready) {             /* g4_f16_to_f32 is exact for every bit pattern */
        for (uint32_t h = 0; h < 65536; h++) {
            opt_f16_lut[h] = g4_f16_to_f32((uint16_t)h);
            f16_lut24[h] = ldexpf(opt_f16_lut[h], -24);
        }
        ready = 1;
    }
    return &K;
}

static g4_kernels K_q8;     /* "avx2-q8": K with the q8 GEMV first */

__attribute__((target("no-avx,no-avx2,no-fma,no-f16c")))
const g4_kernels *opt_avx2_q8_table(void)
{
    if (!opt_avx2_table()) return NULL;
    if (!K_q8.name) {
        K_q8 = K;
        K_q8.name = "avx2-q8";
        K_q8.matmul = avx2_q8_matmul;
        K_q8.act_q8 = 1;
    }
    return &K_q8;
}

__attribute__((target("no-avx,no-avx2,no-fma,no-f16c")))
opt_q8_quant_fn opt_avx2_q8_quant_get(void)
{
    return opt_avx2_table() ? opt_avx2_q8_quant : NULL;
}

#else

const g4_kernels *opt_avx2_table(void) { return NULL; }
const g4_kernels *opt_avx2_q8_table(void) { return NULL; }
opt_q8_quant_fn opt_avx2_q8_quant_get(void) { return NULL; }

#endif

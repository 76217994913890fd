/* neon.c - the aarch64 kernel table "neon" (armv8.0 Advanced SIMD: every aarch64 core has it).
 *
 * The whole file is guarded by the target architecture: elsewhere it is the getter alone,
 * returning NULL.
 *
 * Same numerics as opt/avx2.c with 4 lanes instead of 8 (each table is held to ref by
 * tests/test_kernels.c): every weight type is dequantized in registers to exactly ref's fp32
 * values (F16 by FCVTL; BF16 by a 16-bit shift, integer ops only, no bf16 vector types, which
 * GCC 12 miscompiles as constants; quantized blocks as in avx2.c), then one 4-lane FMA
 * accumulator per output in column order, a fixed horizontal sum (l0 + l1) + (l2 + l3), and a
 * scalar FMA tail (GEMV: decode and batches of < 8 tokens); prefill (T >= 8) runs the shared
 * GEMM driver with a NEON panel former and micro-kernel, bit-identical to the x86 GEMM. rmsnorm/layernorm sums in double; rope bit-identical to ref; attention,
 * geglu, softcap with the same exp/tanh construction as avx2.c; bf16 = 1 falls back to ref.
 * Only armv8.0 instructions: tests/test_neon.sh also runs it on an emulated Cortex-A53.
 */
#include "opt.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <float.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float hsum4(float32x4_t v)
{
    return (vgetq_lane_f32(v, 0) + vgetq_lane_f32(v, 1)) + (vgetq_lane_f32(v, 2) + vgetq_lane_f32(v, 3));
}

AI float f16s(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* Q4_K scales and mins (layout in ref/quant.c) */
AI void q4k_scales(const uint8_t *q, uint8_t sc[8], uint8_t mn[8])
{
    for (int s = 0; s < 4; s++) {
        sc[s] = q[s] & 63;
        mn[s] = q[s + 4] & 63;
        sc[s + 4] = (uint8_t)((q[s + 8] & 0x0f) | ((q[s] >> 6) << 4));
        mn[s + 4] = (uint8_t)((q[s + 8] >> 4) | ((q[s + 4] >> 6) << 4));
    }
}

/* ---- float weights ------------------------------------------------------------------------- */

enum { TY_F32, TY_F16, TY_BF16 };

AI float32x4_t ldw4(const int ty, const uint8_t *row, int64_t k)
{
    if (ty == TY_F32) return vld1q_f32((const float *)(const void *)(row + 4 * k));
    const uint16x4_t h = vld1_u16((const uint16_t *)(const void *)(row + 2 * k));
    if (ty == TY_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

AI float ldw1(const int ty, const uint8_t *row, int64_t k)
{
    if (ty == TY_F32) { float f; memcpy(&f, row + 4 * k, 4); return f; }
    uint16_t h;
    memcpy(&h, row + 2 * k, 2);
    return ty == TY_F16 ? g4_f16_to_f32(h) : g4_bf16_to_f32(h);
}

/* rows r .. r+R-1 (R <= 4) x token t: one 4-lane FMA accumulator per row, columns in order, the
 * fixed horizontal sum, then the cols % 4 tail with scalar FMA */
AI void fp_tile(const int ty, const int R, const opt_mm *m, int64_t r, int t)
{
    const int64_t cols = m->cols, k4 = cols & ~(int64_t)3;
    const float *x = m->X + (int64_t)t * cols;
    const uint8_t *w[4];
    float32x4_t acc[4];
    for (int i = 0; i < R; i++) { w[i] = m->W + (r + i) * m->rb; acc[i] = vdupq_n_f32(0.0f); }
    const size_t pf = OPT_PF_ROWS * m->rb;
    const int64_t kline = ty == TY_F32 ? 16 : 32;     /* columns per 64-byte line */
    for (int64_t k = 0; k < k4; k += 4) {
        const float32x4_t xv = vld1q_f32(x + k);
        if (k % kline == 0)
            for (int i = 0; i < R; i++) opt_prefetch(w[i] + k * (ty == TY_F32 ? 4 : 2) + pf);
        for (int i = 0; i < R; i++) acc[i] = vfmaq_f32(acc[i], ldw4(ty, w[i], k), xv);
    }
    for (int i = 0; i < R; i++) {
        float s = hsum4(acc[i]);
        for (int64_t k = k4; k < cols; k++) s = fmaf(ldw1(ty, w[i], k), x[k], s);
        m->Y[(int64_t)t * m->rows + r + i] = s;
    }
}

/* GEMV rows [r0, r1) x every token, one token at a time in 4-row tiles; used for decode and
 * for batches of fewer than OPT_GEMM_MIN_T tokens (larger ones run the GEMM below) */
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

/* ---- quantized weights: dequantized in registers to exactly ref's values -----------------
 * As in avx2.c: w = q d (Q8_0), fma(q, d, -8d) (Q4_0), fma(q, d sc, -dmin m) (Q4_K),
 * fma(q, d sc, -32 d sc) (Q6_K), bit-identical to g4_dequant_row; 32 values = 8 vectors of 4,
 * elements in order. */

AI void u8x16_to_f32(uint8x16_t v, float32x4_t f[4])
{
    const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_high_u8(v);
    f[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)));
    f[1] = vcvtq_f32_u32(vmovl_high_u16(lo));
    f[2] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)));
    f[3] = vcvtq_f32_u32(vmovl_high_u16(hi));
}

/* w[k] = fma(q[k], d, c) for the 16 values of v (unsigned) */
AI void deq16(uint8x16_t v, float d, float c, float32x4_t *w)
{
    float32x4_t f[4];
    u8x16_to_f32(v, f);
    for (int k = 0; k < 4; k++) w[k] = vfmaq_n_f32(vdupq_n_f32(c), f[k], d);
}

AI void deq32(const int ty, const uint8_t *row, int64_t b, float32x4_t w[8])
{
    if (ty == G4_T_Q8_0) {
        const uint8_t *blk = row + 34 * b;
        const float d = f16s(blk);
        for (int h = 0; h < 2; h++) {
            const int8x16_t q = vld1q_s8((const int8_t *)(blk + 2 + 16 * h));
            const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_high_s8(q);
            w[4 * h + 0] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d);
            w[4 * h + 1] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d);
            w[4 * h + 2] = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d);
            w[4 * h + 3] = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d);
        }
    } else if (ty == G4_T_Q4_0) {
        const uint8_t *blk = row + 18 * b;
        const float d = f16s(blk);
        const uint8x16_t raw = vld1q_u8(blk + 2);
        deq16(vandq_u8(raw, vdupq_n_u8(0x0f)), d, -8.0f * d, w);       /* elements 0..15 */
        deq16(vshrq_n_u8(raw, 4), d, -8.0f * d, w + 4);                /* elements 16..31 */
    } else if (ty == G4_T_Q4_K) {
        const uint8_t *blk = row + 144 * (b >> 3);
        const int s = (int)(b & 7);
        uint8_t sc[8], mn[8];
        q4k_scales(blk + 4, sc, mn);
        const float d1 = f16s(blk) * (float)sc[s], m1 = f16s(blk + 2) * (float)mn[s];
        const uint8_t *q = blk + 16 + 32 * (s >> 1);
        for (int h = 0; h < 2; h++) {
            const uint8x16_t raw = vld1q_u8(q + 16 * h);
            deq16((s & 1) ? vshrq_n_u8(raw, 4) : vandq_u8(raw, vdupq_n_u8(0x0f)), d1, -m1, w + 4 * h);
        }
    } else {                            /* Q6_K: group g = b % 8 = 4h + k */
        const uint8_t *blk = row + 210 * (b >> 3);
        const int g = (int)(b & 7), h = g >> 2, k = g & 3;
        const int8_t *sc = (const int8_t *)(blk + 192);
        const float d = f16s(blk + 208);
        for (int half = 0; half < 2; half++) {
            const float ds = d * (float)sc[2 * g + half];
            const uint8x16_t ql = vld1q_u8(blk + 64 * h + 32 * (k & 1) + 16 * half);
            const uint8x16_t qh = vld1q_u8(blk + 128 + 32 * h + 16 * half);
            const uint8x16_t low = k < 2 ? vandq_u8(ql, vdupq_n_u8(0x0f)) : vshrq_n_u8(ql, 4);
            uint8x16_t hb;                                             /* bits 2k, 2k+1 -> 4, 5 */
            if (k == 0) hb = vshlq_n_u8(vandq_u8(qh, vdupq_n_u8(0x03)), 4);
            else if (k == 1) hb = vshlq_n_u8(vandq_u8(qh, vdupq_n_u8(0x0c)), 2);
            else if (k == 2) hb = vandq_u8(qh, vdupq_n_u8(0x30));
            else hb = vshrq_n_u8(vandq_u8(qh, vdupq_n_u8(0xc0)), 2);
            deq16(vorrq_u8(low, hb), ds, -32.0f * ds, w + 4 * half);
        }
    }
}

/* as fp_tile, the 8 weight vectors of each block formed by deq32 */
AI void dq_tile(const int ty, const int R, const opt_mm *m, int64_t r, int t)
{
    const int64_t nb = m->cols / 32;
    const float *x = m->X + (int64_t)t * m->cols;
    const uint8_t *wr[4];
    float32x4_t acc[4];
    for (int i = 0; i < R; i++) { wr[i] = m->W + (r + i) * m->rb; acc[i] = vdupq_n_f32(0.0f); }
    const size_t pf = OPT_PF_ROWS * m->rb, bb256 = m->rb * 256 / (size_t)nb;   /* 256 x bytes per block, exact */
    for (int64_t b = 0; b < nb; b++)
        for (int i = 0; i < R; i++) {
            float32x4_t w[8];
            opt_prefetch(wr[i] + (((size_t)b * bb256) >> 8) + pf);   /* this block's place, 4 rows on */
            deq32(ty, wr[i], b, w);
            for (int k = 0; k < 8; k++) acc[i] = vfmaq_f32(acc[i], w[k], vld1q_f32(x + 32 * b + 4 * k));
        }
    for (int i = 0; i < R; i++) m->Y[(int64_t)t * m->rows + r + i] = hsum4(acc[i]);
}

DEFINE_ROWS(rows_q8_0, dq_tile, G4_T_Q8_0)
DEFINE_ROWS(rows_q4_0, dq_tile, G4_T_Q4_0)
DEFINE_ROWS(rows_q4_k, dq_tile, G4_T_Q4_K)
DEFINE_ROWS(rows_q6_k, dq_tile, G4_T_Q6_K)

static const opt_isa ISA = {
    .f32 = rows_f32, .f16 = rows_f16, .bf16 = rows_bf16,
    .q8_0 = rows_q8_0, .q4_0 = rows_q4_0, .q4_k = rows_q4_k, .q6_k = rows_q6_k,
};

/* ---- prefill GEMM (driver: opt_gemm, opt/gemm.c) -------------------------------------------
 * As avx2.c: the panel of exact fp32 weights, then a 6 rows x 8 tokens outer-product
 * micro-kernel (12 accumulators of 4 lanes, per column 2 token vectors and one broadcast
 * weight per row). Each output is one serial FMA chain in column order, so the prefill
 * results are bit-identical to the x86 tables' (vfmaq_f32 and vfmadd are both one rounding). */

static void form_panel(g4_type type, const uint8_t *W, size_t rb, int64_t r, int nr, int64_t k0, int64_t kc,
                       float *P)
{
    const int fl = type == G4_T_F32 || type == G4_T_F16 || type == G4_T_BF16;
    const int ty = type == G4_T_F32 ? TY_F32 : type == G4_T_F16 ? TY_F16 : type == G4_T_BF16 ? TY_BF16 : (int)type;
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = W + (r + i) * rb;
        float *p = P + (int64_t)i * OPT_GEMM_KC;
        if (fl) {                      /* TY_* overlap the g4_type ids: test the type itself */
            int64_t k = 0;
            for (; k + 4 <= kc; k += 4) vst1q_f32(p + k, ldw4(ty, row, k0 + k));
            for (; k < kc; k++) p[k] = ldw1(ty, row, k0 + k);
            continue;
        }
        for (int64_t b = k0 / 32; b < (k0 + kc) / 32; b++) {
            float32x4_t w[8];
            deq32(ty, row, b, w);
            for (int k = 0; k < 8; k++) vst1q_f32(p + 32 * b - k0 + 4 * k, w[k]);
        }
    }
}

AI void gemm_kernel(const int R, const int V, const float *P, const float *XT, int64_t tgp, int64_t kc,
                    float *C, int first)
{
    float32x4_t a[6][2];
    for (int i = 0; i < R; i++)
        for (int v = 0; v < V; v++) a[i][v] = first ? vdupq_n_f32(0.0f) : vld1q_f32(C + i * tgp + 4 * v);
    for (int64_t k = 0; k < kc; k++) {
        const float *xk = XT + k * 4 * V;
        float32x4_t x[2];
        for (int v = 0; v < V; v++) x[v] = vld1q_f32(xk + 4 * v);
        for (int i = 0; i < R; i++) {
            const float32x4_t b = vld1q_dup_f32(P + i * OPT_GEMM_KC + k);
            for (int v = 0; v < V; v++) a[i][v] = vfmaq_f32(a[i][v], b, x[v]);
        }
    }
    for (int i = 0; i < R; i++)
        for (int v = 0; v < V; v++) vst1q_f32(C + i * tgp + 4 * v, a[i][v]);
}

#define GK(R, V) case 10 * R + V: gemm_kernel(R, V, P + ri * OPT_GEMM_KC, x, tgp, kc, c, first); break;

static void gemm_panel(const float *P, int nr, const float *XT, int64_t cols, int64_t k0, int64_t kc,
                       int64_t tgp, float *C, int first)
{
    const int64_t nv = tgp / 4;
    for (int64_t v0 = 0; v0 < nv; v0 += 2) {
        const int V = (int)(nv - v0 < 2 ? nv - v0 : 2);
        const float *x = XT + (v0 / 2) * 8 * cols + k0 * 4 * V;
        for (int ri = 0; ri < nr; ri += 6) {
            const int R = nr - ri < 6 ? nr - ri : 6;
            float *c = C + ri * tgp + 4 * v0;
            switch (10 * R + V) {
            GK(1, 1) GK(1, 2) GK(2, 1) GK(2, 2) GK(3, 1) GK(3, 2)
            GK(4, 1) GK(4, 2) GK(5, 1) GK(5, 2) GK(6, 1) GK(6, 2)
            default: break;
            }
        }
    }
}

static const opt_gemm_isa GEMM = { 4, 8, form_panel, gemm_panel };

static void neon_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if (opt_gemm(&GEMM, Y, W, X, T) == 0) return;
    opt_matmul(&ISA, Y, W, X, T);
}

/* ---- exp, tanh (as in avx2.c) -------------------------------------------------------------- */

AI float32x4_t exp4(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.3f), hi = vdupq_n_f32(88.3f);
    const uint32x4_t tiny = vcltq_f32(x, lo);
    x = vminq_f32(vmaxq_f32(x, lo), hi);     /* FMIN/FMAX propagate NaN */
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t v = vmulq_f32(p, vreinterpretq_f32_s32(e));
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(v), tiny));
}

AI float32x4_t tanh4(float32x4_t y)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t a = vminq_f32(vabsq_f32(y), vdupq_n_f32(10.0f));
    const float32x4_t e = exp4(vaddq_f32(a, a));
    const float32x4_t t = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one)));
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(y), vdupq_n_u32(0x80000000u));
    return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(t), sign));
}

static float tanh1(float y) { return vgetq_lane_f32(tanh4(vdupq_n_f32(y)), 0); }

/* ---- norms, rope --------------------------------------------------------------------------- */

static double sumsq_d(const float *x, int n, float mean, int centered)
{
    float64x2_t a0 = vdupq_n_f64(0), a1 = vdupq_n_f64(0);
    const float64x2_t mv = vdupq_n_f64(mean);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        if (centered) { lo = vsubq_f64(lo, mv); hi = vsubq_f64(hi, mv); }
        a0 = vaddq_f64(a0, vmulq_f64(lo, lo));
        a1 = vaddq_f64(a1, vmulq_f64(hi, hi));
    }
    double s = (vgetq_lane_f64(a0, 0) + vgetq_lane_f64(a0, 1)) + (vgetq_lane_f64(a1, 0) + vgetq_lane_f64(a1, 1));
    for (; i < n; i++) { double dv = centered ? (double)x[i] - mean : (double)x[i]; s += dv * dv; }
    return s;
}

static double sum_d(const float *x, int n)
{
    float64x2_t a0 = vdupq_n_f64(0), a1 = vdupq_n_f64(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        a0 = vaddq_f64(a0, vcvt_f64_f32(vget_low_f32(v)));
        a1 = vaddq_f64(a1, vcvt_high_f64_f32(v));
    }
    double s = (vgetq_lane_f64(a0, 0) + vgetq_lane_f64(a0, 1)) + (vgetq_lane_f64(a1, 0) + vgetq_lane_f64(a1, 1));
    for (; i < n; i++) s += x[i];
    return s;
}

static void neon_rmsnorm(float *y, const float *x, const float *w, int n, float eps)
{
    const float ms = (float)(sumsq_d(x, n, 0.0f, 0) / n) + eps;
    const float r = powf(ms, -0.5f);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(x + i), r);
        vst1q_f32(y + i, w ? vmulq_f32(v, vld1q_f32(w + i)) : v);
    }
    for (; i < n; i++) { float v = x[i] * r; y[i] = w ? v * w[i] : v; }
}

static void neon_layernorm(float *y, const float *x, const float *w, const float *b, int n, float eps)
{
    const float mean = (float)(sum_d(x, n) / n);
    const float rstd = 1.0f / sqrtf((float)(sumsq_d(x, n, mean, 1) / n) + eps);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_f32(vmulq_n_f32(vsubq_f32(vld1q_f32(x + i), vdupq_n_f32(mean)), rstd), vld1q_f32(w + i));
        vst1q_f32(y + i, vaddq_f32(v, vld1q_f32(b + i)));
    }
    for (; i < n; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

static void neon_rope(float *x, int n_heads, int hd, const float *c, const float *s, int bf16)
{
    if (bf16) { g4_kernels_ref.rope(x, n_heads, hd, c, s, bf16); return; }
    const int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * hd;
        int i = 0;
        for (; i + 4 <= half; i += 4) {
            float32x4_t a = vld1q_f32(v + i), b = vld1q_f32(v + i + half);
            float32x4_t cv = vld1q_f32(c + i), sv = vld1q_f32(s + i);
            vst1q_f32(v + i, vsubq_f32(vmulq_f32(a, cv), vmulq_f32(b, sv)));
            vst1q_f32(v + i + half, vaddq_f32(vmulq_f32(b, cv), vmulq_f32(a, sv)));
        }
        for (; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i] = a * c[i] - b * s[i];
            v[i + half] = b * c[i] + a * s[i];
        }
    }
}

/* ---- attention ----------------------------------------------------------------------------- */

/* the scores of keys 0 .. n - 1 (krow[j] + off) against q: one 4-lane FMA accumulator per key,
 * columns in order, hsum4, scalar FMA tail */
static void att_scores(const float *q, int hd, int64_t off, const float *const *krow, int n_keys, float *sc)
{
    const int h4 = hd & ~3;
    for (int j = 0; j < n_keys; j++) {
        const float *k0 = krow[j] + off;
        float32x4_t a = vdupq_n_f32(0.0f);
        for (int i = 0; i < h4; i += 4) a = vfmaq_f32(a, vld1q_f32(q + i), vld1q_f32(k0 + i));
        float s = hsum4(a);
        for (int i = h4; i < hd; i++) s = fmaf(q[i], k0[i], s);
        sc[j] = s;
    }
}

/* softmax in place: max, e^(s - max) by exp4, their sum in double in key order, each scaled by
 * (float)(1 / sum) */
static void att_softmax(float *sc, int n_keys)
{
    float mx = -INFINITY;
    for (int j = 0; j < n_keys; j++) if (sc[j] > mx) mx = sc[j];
    double sum = 0;
    int j = 0;
    for (; j + 4 <= n_keys; j += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(sc + j), vdupq_n_f32(mx)));
        vst1q_f32(sc + j, e);
    }
    for (; j < n_keys; j++) sc[j] = vgetq_lane_f32(exp4(vdupq_n_f32(sc[j] - mx)), 0);
    for (j = 0; j < n_keys; j++) sum += sc[j];
    const float inv = (float)(1.0 / sum);
    for (j = 0; j < n_keys; j++) sc[j] *= inv;
}

/* outputs i0 .. hd - 1 of out = sum_j p_j v_j over keys 0 .. n - 1 (vrow[j] + off): 4 at a time
 * in a register, then one by one; per output one FMA chain in key order, from 0 */
static void att_pv_rest(float *out, int i0, int hd, int64_t off, const float *const *vrow, int n_keys,
                        const float *sc)
{
    const int h4 = hd & ~3;
    int i = i0;
    for (; i < h4; i += 4) {
        float32x4_t o = vdupq_n_f32(0.0f);
        for (int j = 0; j < n_keys; j++) o = vfmaq_n_f32(o, vld1q_f32(vrow[j] + off + i), sc[j]);
        vst1q_f32(out + i, o);
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
    att_scores(q, hd, off, krow, n_keys, sc);
    att_softmax(sc, n_keys);
    att_pv_rest(out, 0, hd, off, vrow, n_keys, sc);
}

/* OPT_ATT_QB (4) queries of one head (opt_heads_fn), bit for bit att_head per query: every
 * score and every output keeps its own FMA chain in the same order; only the loads are shared.
 * The keys all 4 queries see (Lc .. Hc) are read once for all of them: scores 4 queries x 2
 * keys per step, P.V 4 queries x 16 outputs per key row; each query's own keys before Lc and
 * after Hc run in their place in its chains. (Blocks the driver cannot share go to att_head.) */
_Static_assert(OPT_ATT_QB == 4, "att_block holds 4 queries");
static void att_block(float *out, const float *q, int64_t qs, int hd, int64_t off,
                      const float *const *krow, const float *const *vrow, const int *lo, const int *hi,
                      int Lc, int Hc, float *sc, int span)
{
    const int h4 = hd & ~3;
    float *s[4];
    const float *qt[4];
    for (int t = 0; t < 4; t++) { s[t] = sc + (int64_t)t * span; qt[t] = q + t * qs; }
    for (int t = 0; t < 4; t++) att_scores(qt[t], hd, off, krow + lo[t], Lc - lo[t], s[t]);
    int j = Lc;
    for (; j + 1 <= Hc; j += 2) {
        const float *k0 = krow[j] + off, *k1 = krow[j + 1] + off;
        float32x4_t a[4][2];
        for (int t = 0; t < 4; t++) a[t][0] = a[t][1] = vdupq_n_f32(0.0f);
        for (int i = 0; i < h4; i += 4) {
            const float32x4_t kv0 = vld1q_f32(k0 + i), kv1 = vld1q_f32(k1 + i);
            for (int t = 0; t < 4; t++) {
                const float32x4_t qv = vld1q_f32(qt[t] + i);
                a[t][0] = vfmaq_f32(a[t][0], qv, kv0);
                a[t][1] = vfmaq_f32(a[t][1], qv, kv1);
            }
        }
        for (int t = 0; t < 4; t++) {
            float s0 = hsum4(a[t][0]), s1 = hsum4(a[t][1]);
            for (int i = h4; i < hd; i++) { s0 = fmaf(qt[t][i], k0[i], s0); s1 = fmaf(qt[t][i], k1[i], s1); }
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
    for (; i + 16 <= h4; i += 16) {
        float32x4_t o[4][4];
        for (int t = 0; t < 4; t++) for (int u = 0; u < 4; u++) o[t][u] = vdupq_n_f32(0.0f);
        for (int t = 0; t < 4; t++)
            for (int k = lo[t]; k < Lc; k++) {
                const float *v = vrow[k] + off + i;
                const float p = s[t][k - lo[t]];
                for (int u = 0; u < 4; u++) o[t][u] = vfmaq_n_f32(o[t][u], vld1q_f32(v + 4 * u), p);
            }
        for (int k = Lc; k <= Hc; k++) {
            const float *v = vrow[k] + off + i;
            float32x4_t vv[4];
            for (int u = 0; u < 4; u++) vv[u] = vld1q_f32(v + 4 * u);
            for (int t = 0; t < 4; t++) {
                const float p = s[t][k - lo[t]];
                for (int u = 0; u < 4; u++) o[t][u] = vfmaq_n_f32(o[t][u], vv[u], p);
            }
        }
        for (int t = 0; t < 4; t++) {
            for (int k = Hc + 1; k <= hi[t]; k++) {
                const float *v = vrow[k] + off + i;
                const float p = s[t][k - lo[t]];
                for (int u = 0; u < 4; u++) o[t][u] = vfmaq_n_f32(o[t][u], vld1q_f32(v + 4 * u), p);
            }
            for (int u = 0; u < 4; u++) vst1q_f32(out + t * qs + i + 4 * u, o[t][u]);
        }
    }
    for (int t = 0; t < 4; t++) att_pv_rest(out + t * qs, i, hd, off, vrow + lo[t], hi[t] - lo[t] + 1, s[t]);
}

static void neon_attention(float *out, const float *q, int n_heads, int hd, int group,
                           const float *const *krow, const float *const *vrow, int n_keys,
                           float *scores, int bf16)
{
    if (bf16 || n_keys < 1) {
        g4_kernels_ref.attention(out, q, n_heads, hd, group, krow, vrow, n_keys, scores, bf16);
        return;
    }
    opt_attention(att_head, out, q, n_heads, hd, group, krow, vrow, n_keys, scores);
}

static void neon_attention_batch(float *out, const float *q, int T, int n_heads, int hd, int group,
                                 const float *const *krow, const float *const *vrow,
                                 const int *lo, const int *hi, float *scores, int bf16)
{
    const int64_t qs = (int64_t)n_heads * hd;
    if (bf16 || opt_attention_batch(att_head, att_block, out, q, T, n_heads, hd, group, krow, vrow, lo, hi))
        for (int t = 0; t < T; t++)     /* bf16, or no scratch: query by query, the same sums */
            neon_attention(out + t * qs, q + t * qs, n_heads, hd, group, krow + lo[t], vrow + lo[t],
                           hi[t] - lo[t] + 1, scores, bf16);
}

/* ---- geglu, softcap ------------------------------------------------------------------------ */

typedef struct { float *out; const float *gate, *up; float cap; } ew_job;

static void geglu_part(void *ctx, int64_t i0, int64_t n)
{
    const ew_job *j = ctx;
    int64_t i = i0;
    for (; i + 4 <= i0 + n; i += 4) {
        float32x4_t g = vld1q_f32(j->gate + i);
        float32x4_t cube = vmulq_f32(vmulq_f32(vmulq_n_f32(g, 0.044715f), g), g);
        float32x4_t t = tanh4(vmulq_n_f32(vaddq_f32(g, cube), 0.7978845608028654f));
        float32x4_t ge = vmulq_f32(vmulq_n_f32(g, 0.5f), vaddq_f32(vdupq_n_f32(1.0f), t));
        vst1q_f32(j->out + i, vmulq_f32(ge, vld1q_f32(j->up + i)));
    }
    for (; i < i0 + n; i++) {
        float g = j->gate[i];
        float t = tanh1(0.7978845608028654f * (g + 0.044715f * g * g * g));
        j->out[i] = 0.5f * g * (1.0f + t) * j->up[i];
    }
}

static void neon_geglu(float *out, const float *gate, const float *up, int n, int bf16)
{
    if (bf16) { g4_kernels_ref.geglu(out, gate, up, n, bf16); return; }
    ew_job j = { out, gate, up, 0 };
    opt_parallel_elems(geglu_part, &j, n);
}

static void softcap_part(void *ctx, int64_t i0, int64_t n)
{
    const ew_job *j = ctx;
    const float32x4_t cap = vdupq_n_f32(j->cap);
    int64_t i = i0;
    for (; i + 4 <= i0 + n; i += 4)
        vst1q_f32(j->out + i, vmulq_f32(tanh4(vdivq_f32(vld1q_f32(j->out + i), cap)), cap));
    for (; i < i0 + n; i++) j->out[i] = tanh1(j->out[i] / j->cap) * j->cap;
}

static void neon_softcap(float *x, int n, float cap, int bf16)
{
    if (bf16) { g4_kernels_ref.softcap(x, n, cap, bf16); return; }
    ew_job j = { x, NULL, NULL, cap };
    opt_parallel_elems(softcap_part, &j, n);
}

static int neon_threads(int n) { return opt_threads(n); }

/* ---- fp32 FMA peak: 16 independent 4-lane chains per thread -------------------------------- */

static void fma_loop(void *ctx)
{
    const int64_t iters = *(const int64_t *)ctx;
    const float32x4_t m = vdupq_n_f32(0.99999994f), c = vdupq_n_f32(1e-7f);
    float32x4_t a[16];
    for (int k = 0; k < 16; k++) a[k] = vdupq_n_f32(1.0f + (float)k);
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 16; k++) a[k] = vfmaq_f32(c, a[k], m);
    float32x4_t s = a[0];
    for (int k = 1; k < 16; k++) s = vaddq_f32(s, a[k]);
    volatile float sink = hsum4(s);
    (void)sink;
}

static double neon_fma_peak(int threads, double seconds)
{
    return opt_fma_peak(fma_loop, 16 * 4 * 2, 1 << 18, threads, seconds);
}

static const g4_kernels K = {
    .name = "neon",
    .matmul = neon_matmul, .rmsnorm = neon_rmsnorm, .layernorm = neon_layernorm,
    .rope = neon_rope, .attention = neon_attention, .attention_batch = neon_attention_batch, .geglu = neon_geglu, .softcap = neon_softcap,
    .threads = neon_threads, .fma_peak = neon_fma_peak,
};

/* Advanced SIMD is part of every armv8.0 core */
const g4_kernels *opt_neon_table(void) { return &K; }

/* ---- the q8 mode's GEMV ("neon-q8"; docs/NUMERICS.md "q8 mode") ---------------------------
 * Bit-identical to ref-q8 (ref/quant.c g4_dot_row_q8): the signed weights (Q8_0 q, Q4_0 q - 8,
 * int8) against the int8 activations, exact in int32: with the dotprod extension (chosen at
 * run time from HWCAP) vdotq_s32 sums 4 consecutive bytes per lane, which is ref-q8's group;
 * on armv8.0 vmull_s8 and two pairwise adds give the same group sums. Values 0-15 of a block
 * make groups 0-3 (one vector), values 16-31 groups 4-7. Then ref-q8's fp32 part in those lanes:
 * scale = dw * dx, acc[parity] = fma((float)s, scale, acc[parity]) (vfmaq_f32 is fused), and
 * at the row's end the two parities added and ref-q8's tree. */

/* the 32 signed weights of block b of a row */
AI void q8_wbytes(const int ty, const uint8_t *row, int64_t b, int8x16_t *lo, int8x16_t *hi, float *dw)
{
    if (ty == G4_T_Q8_0) {
        const uint8_t *blk = row + 34 * b;
        *dw = f16s(blk);
        *lo = vld1q_s8((const int8_t *)(blk + 2));
        *hi = vld1q_s8((const int8_t *)(blk + 18));
    } else {
        const uint8_t *blk = row + 18 * b;
        *dw = f16s(blk);
        const uint8x16_t raw = vld1q_u8(blk + 2);
        *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));   /* values 0..15 */
        *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));                /* values 16..31 */
    }
}

/* the 4 group sums of 16 values (groups of 4 consecutive bytes), armv8.0 */
AI int32x4_t gdot_v80(int8x16_t w, int8x16_t x)
{
    const int32x4_t a = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x)));     /* pairs of values 0-7 */
    const int32x4_t b = vpaddlq_s16(vmull_high_s8(w, x));                          /* pairs of values 8-15 */
    return vpaddq_s32(a, b);
}

/* ref-q8's tree over the groups: a[0..3] = groups 0-3, a[4..7] = groups 4-7 */
AI float q8_tree(float32x4_t lo, float32x4_t hi)
{
    const float32x4_t s = vaddq_f32(lo, hi);                          /* a_g + a_{g+4} */
    const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s)); /* (0+2), (1+3) */
    return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

/* The rows function over 4 rows, for one group-dot kernel GDOT(w, x): written once, expanded
 * twice (armv8.0 below, dotprod inside its target region: a dotprod kernel cannot be inlined
 * into code built for armv8.0) */
#define DEFINE_Q8_ROWS(name, GDOT)                                                             \
    AI void name##_blk(const int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd,  \
                       int64_t b, size_t pf, float32x4_t acc[4][2][2], const int p)          \
    {                                                                                         \
        const int8x16_t xl = vld1q_s8(xq + 32 * b), xh = vld1q_s8(xq + 32 * b + 16);          \
        for (int i = 0; i < 4; i++) {                                                         \
            int8x16_t wl, wh;                                                                 \
            float dw;                                                                         \
            q8_wbytes(ty, w[i], b, &wl, &wh, &dw);                                            \
            if (ty == G4_T_Q8_0 || p == 0) opt_prefetch(w[i] + (ty == G4_T_Q8_0 ? 34 : 18) * b + pf); \
            const float32x4_t scale = vdupq_n_f32(dw * xd[b]);                                \
            acc[i][p][0] = vfmaq_f32(acc[i][p][0], vcvtq_f32_s32(GDOT(wl, xl)), scale);       \
            acc[i][p][1] = vfmaq_f32(acc[i][p][1], vcvtq_f32_s32(GDOT(wh, xh)), scale);       \
        }                                                                                     \
    }                                                                                         \
    AI void name##_4(const int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd, \
                     int64_t nb, size_t pf, float out[4])                                     \
    {                                                                                         \
        float32x4_t acc[4][2][2];                                                             \
        for (int i = 0; i < 4; i++)                                                           \
            acc[i][0][0] = acc[i][0][1] = acc[i][1][0] = acc[i][1][1] = vdupq_n_f32(0.0f);   \
        int64_t b = 0;                                                                        \
        for (; b + 2 <= nb; b += 2) {                                                         \
            name##_blk(ty, w, xq, xd, b, pf, acc, 0);                                         \
            name##_blk(ty, w, xq, xd, b + 1, pf, acc, 1);                                     \
        }                                                                                     \
        if (b < nb) name##_blk(ty, w, xq, xd, b, pf, acc, 0);                                 \
        for (int i = 0; i < 4; i++)                                                           \
            out[i] = q8_tree(vaddq_f32(acc[i][0][0], acc[i][1][0]), vaddq_f32(acc[i][0][1], acc[i][1][1])); \
    }                                                                                         \
    static void name(int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd,    \
                     const int32_t *sg, int64_t nb, size_t pf, float out[4])                  \
    {                                                                                         \
        if (ty == G4_T_Q8_0) name##_4(G4_T_Q8_0, w, xq, xd, nb, pf, out);                     \
        else name##_4(G4_T_Q4_0, w, xq, xd, nb, pf, out);                                     \
    }

DEFINE_Q8_ROWS(q8_rows_neon, gdot_v80)

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
AI int32x4_t gdot_dot(int8x16_t w, int8x16_t x) { return vdotq_s32(vdupq_n_s32(0), w, x); }
DEFINE_Q8_ROWS(q8_rows_dot, gdot_dot)
#pragma GCC pop_options

/* g4_quant_act_q8 with Advanced SIMD, bit for bit: the same amax (vmaxvq: a max is exact in any
 * order), the same scalar d and 1 / d, x * (1/d) per lane rounded to nearest even by
 * vcvtnq_s32_f32 (rintf's default mode); a block holding an infinity or a NaN gets q = 0,
 * d = NaN, one whose 1/d overflows d = 0. sg: pairwise widening adds of q (bytes to int16 to int32) sum each group of 4. */
static void neon_q8_quant(const float *x, int64_t n, int8_t *q, float *d, int32_t *sg)
{
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        float32x4_t v[8], mx = vdupq_n_f32(0.0f);
        uint32x4_t bad = vdupq_n_u32(0);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(xb + 4 * k);
            const float32x4_t a = vabsq_f32(v[k]);
            bad = vorrq_u32(bad, vmvnq_u32(vcleq_f32(a, vdupq_n_f32(FLT_MAX))));   /* inf or NaN */
            mx = vmaxq_f32(mx, a);
        }
        const float amax = vmaxvq_f32(mx);
        float db = amax / 127.0f, id = db > 0.0f ? 1.0f / db : 0.0f;
        if (isinf(id)) db = id = 0.0f;
        int8x16_t q0 = vdupq_n_s8(0), q1 = vdupq_n_s8(0);
        if (vmaxvq_u32(bad)) {
            d[b] = NAN;
        } else {
            int16x8_t h[4];
            for (int k = 0; k < 4; k++)
                h[k] = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k], id))),
                                    vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k + 1], id))));
            q0 = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
            q1 = vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3]));
            d[b] = db;
        }
        vst1q_s8(q + 32 * b, q0);
        vst1q_s8(q + 32 * b + 16, q1);
        vst1q_s32(sg + 8 * b, vpaddlq_s16(vpaddlq_s8(q0)));
        vst1q_s32(sg + 8 * b + 4, vpaddlq_s16(vpaddlq_s8(q1)));
    }
}

/* ---- the q8 mode's prefill GEMM (driver: opt_q8_gemm, opt/gemm.c; opt.h, opt_q8_chunk) -----
 * The panel holds 4 rows side by side, signed (lanes = 4, u_q4 = u_q8 = 0: Q4_0 as q - 8, Q8_0
 * as q, so off = 0): for sub-panel s and block b, P + 128 (s kb + b) is 8 vectors of 16 bytes,
 * vector g = group g (values 4g .. 4g + 3) of rows 4s .. 4s + 3, 4 bytes per row, and
 * PD + 4 (s kb + b) their 4 scales. The token's 32 values of the block are two vectors, values
 * 0-15 (groups 0-3) and 16-31 (groups 4-7): group g is 32-bit lane g % 4 of vector g / 4.
 * Lane l of an int32 vector gathers row l's block sum S, by one of two kernels (HWCAP):
 *   dotprod: vdotq_laneq_s32(ia, w_g, x, g % 4) adds to lane l the 4 products of row l's
 *     group g and the token's; 8 of them leave S. A tile is 2 sub-panels (8 rows) x 4 tokens:
 *     per block 16 weight and 8 token vectors feed 64 sdot.
 *   armv8.0: the token's group broadcast to the 4 lanes, vmull_s8 against w_g gives the 16-bit
 *     products of rows 0-1 (low half) and rows 2-3 (high half), exact (|w x| <= 128 x 127);
 *     vpadalq_s16 adds them in pairs to int32 lanes (row, pair) and after 8 groups vpaddq_s32
 *     folds the pairs: lane l = S of row l. A tile is 1 sub-panel x 4 tokens (the pair sums
 *     take twice the registers).
 * The integer sums are exact in any order (|S| <= 32 x 128 x 127 < 2^24, so (float)S is exact
 * too). Then per block, in order, opt_q8_chunk_c's fp32 step: scale = dw * dx rounded once
 * (vmulq_n_f32), acc = fma((float)S, scale, acc) by vfmaq_f32 (fused, one rounding), which is
 * the C kernel's fmaf bit for bit; acc starts from 0 (the first chunk) or from Y. Only rows
 * below nr are read and written (a partial last sub-panel through a 4-float buffer: the lanes
 * past it are another token's or another work item's outputs). A tail of 1-3 tokens runs the
 * same tile with fewer tokens. Every loop over sub-panels, tokens and groups is unrolled
 * (GCC's -O2 keeps such loops and the accumulator arrays go to the stack). */

#define UNROLL _Pragma("GCC unroll 4")

/* 4 outputs from y (n >= 4) or its first n (< 4) and zeros; the store writes back only those */
AI float32x4_t q8c_load(const float *y, int n)
{
    if (n >= 4) return vld1q_f32(y);
    float b[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    memcpy(b, y, sizeof(float) * (size_t)n);
    return vld1q_f32(b);
}

AI void q8c_store(float *y, int n, float32x4_t v)
{
    if (n >= 4) { vst1q_f32(y, v); return; }
    float b[4];
    vst1q_f32(b, v);
    memcpy(y, b, sizeof(float) * (size_t)n);
}

/* group k (0..3) of the 16 values x, broadcast to the 4 lanes (the lane must be an immediate) */
AI int8x16_t q8c_bcast(int8x16_t x, const int k)
{
    const int32x4_t v = vreinterpretq_s32_s8(x);
    switch (k) {
    case 0: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 0));
    case 1: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 1));
    case 2: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 2));
    default: return vreinterpretq_s8_s32(vdupq_laneq_s32(v, 3));
    }
}

/* The block sums of NS sub-panels x TT tokens, armv8.0: w = the block's 8 group vectors of the
 * first sub-panel (sub-panel j at w + j ss), x[t] = token t's 32 values; lane l of ia[j][t] =
 * S of row 4 j + l and token t */
AI void q8c_sums_v80(const int NS, const int TT, const int8_t *w, size_t ss, const int8_t *const x[4],
                     int32x4_t ia[2][4])
{
    int32x4_t a01[2][4], a23[2][4];         /* lanes (row, pair): (0, 0) (0, 1) (1, 0) (1, 1), rows 2, 3 */
    UNROLL for (int j = 0; j < NS; j++)
        UNROLL for (int t = 0; t < TT; t++) a01[j][t] = a23[j][t] = vdupq_n_s32(0);
    UNROLL for (int h = 0; h < 2; h++) {
        int8x16_t xv[4];
        UNROLL for (int t = 0; t < TT; t++) xv[t] = vld1q_s8(x[t] + 16 * h);
        UNROLL for (int k = 0; k < 4; k++)                                  /* group 4 h + k */
            UNROLL for (int j = 0; j < NS; j++) {
                const int8x16_t wg = vld1q_s8(w + j * ss + 16 * (4 * h + k));
                UNROLL for (int t = 0; t < TT; t++) {
                    const int8x16_t xg = q8c_bcast(xv[t], k);
                    a01[j][t] = vpadalq_s16(a01[j][t], vmull_s8(vget_low_s8(wg), vget_low_s8(xg)));
                    a23[j][t] = vpadalq_s16(a23[j][t], vmull_high_s8(wg, xg));
                }
            }
    }
    UNROLL for (int j = 0; j < NS; j++)
        UNROLL for (int t = 0; t < TT; t++) ia[j][t] = vpaddq_s32(a01[j][t], a23[j][t]);
}

/* The chunk kernel around a block-sum kernel SUMS, tiles of at most NSMAX sub-panels x 4
 * tokens: written once, expanded twice like DEFINE_Q8_ROWS (dotprod inside its target region) */
#define DEFINE_Q8_CHUNK(name, SUMS, NSMAX)                                                     \
    AI void name##_tile(const int NS, const int TT, const opt_q8_chunk *c, int s, int t0)     \
    {                                                                                         \
        const size_t ss = (size_t)c->kb * 128;                 /* bytes per sub-panel */      \
        const int8_t *P = (const int8_t *)c->P + s * ss;                                      \
        const float *PD = c->PD + (size_t)s * c->kb * 4;                                      \
        const int8_t *x[4];                                                                   \
        const float *xd[4];                                                                   \
        float *y[4];                                                                          \
        float32x4_t fa[2][4];                                                                 \
        UNROLL for (int t = 0; t < TT; t++) {                                                 \
            x[t] = c->xq + (int64_t)(t0 + t) * c->cols + 32 * c->b0;                          \
            xd[t] = c->xd + (int64_t)(t0 + t) * c->nb + c->b0;                                \
            y[t] = c->Y + (int64_t)(t0 + t) * c->rows + c->r0 + 4 * s;                        \
            UNROLL for (int j = 0; j < NS; j++)                                               \
                fa[j][t] = c->first ? vdupq_n_f32(0.0f) : q8c_load(y[t] + 4 * j, c->nr - 4 * (s + j)); \
        }                                                                                     \
        for (int b = 0; b < c->kb; b++) {                                                     \
            const int8_t *xb[4];                                                              \
            int32x4_t ia[2][4];                                                               \
            UNROLL for (int t = 0; t < TT; t++) xb[t] = x[t] + 32 * b;                        \
            SUMS(NS, TT, P + 128 * b, ss, xb, ia);                                            \
            UNROLL for (int j = 0; j < NS; j++) {                                             \
                const float32x4_t dw = vld1q_f32(PD + (size_t)j * c->kb * 4 + 4 * b);         \
                UNROLL for (int t = 0; t < TT; t++)                                           \
                    fa[j][t] = vfmaq_f32(fa[j][t], vcvtq_f32_s32(ia[j][t]), vmulq_n_f32(dw, xd[t][b])); \
            }                                                                                 \
        }                                                                                     \
        UNROLL for (int t = 0; t < TT; t++)                                                   \
            UNROLL for (int j = 0; j < NS; j++) q8c_store(y[t] + 4 * j, c->nr - 4 * (s + j), fa[j][t]); \
    }                                                                                         \
    static void name(const opt_q8_chunk *c)                                                   \
    {                                                                                         \
        const int nsub = (c->nr + 3) / 4;                                                     \
        for (int s = 0; s < nsub; s += NSMAX) {                                               \
            const int two = NSMAX == 2 && nsub - s >= 2;                                      \
            for (int t0 = 0; t0 < c->T; t0 += 4) {                                            \
                const int tt = c->T - t0 < 4 ? c->T - t0 : 4;                                 \
                if (two) {                                                                    \
                    if (tt == 4) name##_tile(2, 4, c, s, t0);                                 \
                    else if (tt == 3) name##_tile(2, 3, c, s, t0);                            \
                    else if (tt == 2) name##_tile(2, 2, c, s, t0);                            \
                    else name##_tile(2, 1, c, s, t0);                                         \
                } else {                                                                      \
                    if (tt == 4) name##_tile(1, 4, c, s, t0);                                 \
                    else if (tt == 3) name##_tile(1, 3, c, s, t0);                            \
                    else if (tt == 2) name##_tile(1, 2, c, s, t0);                            \
                    else name##_tile(1, 1, c, s, t0);                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_Q8_CHUNK(q8_chunk_neon, q8c_sums_v80, 1)

#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
/* ia + in each lane the 4 products of its 4 bytes of w and group k (0..3) of x (k an immediate) */
AI int32x4_t q8c_sdot(int32x4_t ia, int8x16_t w, int8x16_t x, const int k)
{
    switch (k) {
    case 0: return vdotq_laneq_s32(ia, w, x, 0);
    case 1: return vdotq_laneq_s32(ia, w, x, 1);
    case 2: return vdotq_laneq_s32(ia, w, x, 2);
    default: return vdotq_laneq_s32(ia, w, x, 3);
    }
}

/* as q8c_sums_v80, with dotprod */
AI void q8c_sums_dot(const int NS, const int TT, const int8_t *w, size_t ss, const int8_t *const x[4],
                     int32x4_t ia[2][4])
{
    UNROLL for (int j = 0; j < NS; j++)
        UNROLL for (int t = 0; t < TT; t++) ia[j][t] = vdupq_n_s32(0);
    UNROLL for (int h = 0; h < 2; h++) {
        int8x16_t xv[4];
        UNROLL for (int t = 0; t < TT; t++) xv[t] = vld1q_s8(x[t] + 16 * h);
        UNROLL for (int k = 0; k < 4; k++)                                  /* group 4 h + k */
            UNROLL for (int j = 0; j < NS; j++) {
                const int8x16_t wg = vld1q_s8(w + j * ss + 16 * (4 * h + k));
                UNROLL for (int t = 0; t < TT; t++) ia[j][t] = q8c_sdot(ia[j][t], wg, xv[t], k);
            }
    }
}

DEFINE_Q8_CHUNK(q8_chunk_dot, q8c_sums_dot, 2)
#pragma GCC pop_options

static const opt_q8_gemm_isa q8_gemm_neon = { .lanes = 4, .u_q4 = 0, .u_q8 = 0, .chunk = q8_chunk_neon };
static const opt_q8_gemm_isa q8_gemm_dot = { .lanes = 4, .u_q4 = 0, .u_q8 = 0, .chunk = q8_chunk_dot };

static opt_q8_rows_fn q8_rows;       /* set by the getter: q8_rows_dot or q8_rows_neon */
static const opt_q8_gemm_isa *q8_gemm;   /* and q8_gemm_dot or q8_gemm_neon */

static void neon_q8_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    if (opt_q8_gemv(q8_rows, neon_q8_quant, NULL, Y, W, X, T) == 0) return;
    if (opt_q8_gemm(q8_gemm, neon_q8_quant, Y, W, X, T) == 0) return;
    neon_matmul(Y, W, X, T);
}

static g4_kernels K_q8;

const g4_kernels *opt_neon_q8_table(void)
{
    if (!q8_rows) {
        const int dot = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
        q8_rows = dot ? q8_rows_dot : q8_rows_neon;
        q8_gemm = dot ? &q8_gemm_dot : &q8_gemm_neon;
        K_q8 = K;
        K_q8.name = "neon-q8";
        K_q8.matmul = neon_q8_matmul;
        K_q8.act_q8 = 1;
    }
    return &K_q8;
}

opt_q8_quant_fn opt_neon_q8_quant_get(void) { return neon_q8_quant; }

#else

const g4_kernels *opt_neon_table(void) { return NULL; }
const g4_kernels *opt_neon_q8_table(void) { return NULL; }
opt_q8_quant_fn opt_neon_q8_quant_get(void) { return NULL; }

#endif

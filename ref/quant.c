/* quant.c - tensor element types: fp16/bf16 conversion, block layouts, dequantize, quantize, dot.
 *
 * What it does: converts rows stored in one of the seven supported ggml types to fp32 and back,
 * and computes the reference dot product of a stored row with an fp32 vector.
 *   inputs : a row of n values in type t (n a multiple of the type's block size, see below)
 *   outputs: n float32 values (g4_dequant_row), a stored row (g4_quant_row), one float (g4_dot_row)
 * The byte layouts are those of ggml (the values in g4_type are ggml's type ids), so rows read
 * from any GGUF file are used as they are. Every multi-byte field is little-endian and is read
 * byte by byte, so the code does not depend on the host's byte order or on alignment.
 *
 * Block layouts ("d" fields are IEEE half floats, f16):
 *
 *   F32  (id 0)  1 element, 4 bytes.   F16 (id 1) 1 element, 2 bytes.   BF16 (id 30) 1 element,
 *                2 bytes (the top half of an f32).
 *
 *   Q8_0 (id 8)  32 elements, 34 bytes:  value[i] = d * qs[i]   (qs signed int8)
 *       +------+-----------------------------------+
 *       | d 2B | qs[0] qs[1] ...          qs[31]   |
 *       +------+-----------------------------------+
 *
 *   Q4_0 (id 2)  32 elements, 18 bytes:  value[i] = d * (nibble(i) - 8)
 *       +------+------------------------------------------+
 *       | d 2B | qs[0] .. qs[15]  (16 bytes of two nibbles)  |
 *       +------+------------------------------------------+
 *       byte qs[j]: low nibble = element j, high nibble = element j + 16   (j = 0..15)
 *
 *   Q4_K (id 12) 256 elements (8 sub-blocks of 32), 144 bytes:
 *       value = (d * sc[s]) * q - (dmin * m[s])       q = 4-bit in 0..15, s = element / 32
 *       +------+---------+---------------+-----------------------------+
 *       | d 2B | dmin 2B | scales[12]    | qs[128]                     |
 *       +------+---------+---------------+-----------------------------+
 *       scales: eight 6-bit scales sc[0..7] and eight 6-bit mins m[0..7] packed in 12 bytes
 *       (bit 7 on the left; A..H = sc[0..7], a..h = m[0..7]; upper-case/lower-case letters
 *       in the top two bits of bytes 0..7 are bits 4-5 of sc[4..7] / m[4..7]):
 *           byte 0..3 : EEAAAAAA FFBBBBBB GGCCCCCC HHDDDDDD    sc[0..3] + top bits of sc[4..7]
 *           byte 4..7 : eeaaaaaa ffbbbbbb ggcccccc hhdddddd    m[0..3]  + top bits of m[4..7]
 *           byte 8..11: eeeeEEEE ffffFFFF ggggGGGG hhhhHHHH    low 4 bits of m[4..7] | sc[4..7]
 *       qs: four chunks of 64 elements, 32 bytes each. In chunk c (elements 64c .. 64c+63),
 *       byte qs[32c + l] holds element 64c + l in its low nibble and 64c + 32 + l in its high one.
 *
 *   Q6_K (id 14) 256 elements (16 sub-blocks of 16), 210 bytes:
 *       value = (d * sc[s]) * (q - 32)      q = 6-bit in 0..63, sc signed int8, s = element / 16
 *       +-----------+-----------+---------------+------+
 *       | ql[128]   | qh[64]    | sc[16] (int8) | d 2B |
 *       +-----------+-----------+---------------+------+
 *       Two halves of 128 elements (h = 0, 1), each using ql[64h .. 64h+63] and qh[32h .. 32h+31].
 *       Inside a half, element r = 32k + l (k = 0..3, l = 0..31) has
 *           low 4 bits : k=0 low nibble of ql[64h+l],  k=1 low nibble of ql[64h+32+l],
 *                        k=2 high nibble of ql[64h+l], k=3 high nibble of ql[64h+32+l]
 *           high 2 bits: bits 2k, 2k+1 of qh[32h + l]
 *
 * Dequantization computes exactly ggml's expressions in fp32 (no FMA: the build uses
 * -ffp-contract=off), e.g. Q4_K is (d*sc)*q - dmin*m with each product rounded to fp32, so the
 * results are bit-identical to ggml's and gguf-py's reference dequantizers.
 *
 * Quantizers (g4_quant_row):
 *   - F16/BF16: round to nearest even; NaN stays NaN (quiet), overflow goes to +-inf, f16
 *     subnormals are produced correctly.
 *   - Q8_0 and Q4_0: ggml's reference quantizers (quantize_row_q8_0_ref / _q4_0_ref), bit for bit:
 *     Q8_0: d = amax/127, q = roundf(x/d) (ties away from zero).
 *     Q4_0: m = the element of largest |x| (first one), d = m/-8, q = min(15, trunc(x/d + 8.5)).
 *   - Q4_K and Q6_K: a simple quantizer of our own (ggml's iterative search is not reproduced).
 *     Each sub-block gets the smallest integer scale (and, for Q4_K, min) that covers its whole
 *     range without clipping, given a super-block scale d that is rounded UP to f16 so that every
 *     sub-block scale fits in its 6 (Q4_K) or 8 (Q6_K, signed) bits. Then each element takes the
 *     nearest representable value, evaluated with the dequantization formula itself. So the
 *     error of an element is at most half a step of its sub-block: |err| <= |d*sc[s]|/2 (plus fp32
 *     rounding), see the comments of quant_q4_k / quant_q6_k for the a-priori bounds.
 *   Non-finite inputs give unspecified (but defined, never UB) values for the quantized types.
 *
 * Dot (g4_dot_row): each block is dequantized to fp32 exactly as above, then
 *     sum = 0; for i in 0..n-1 (blocks in order, index order inside a block): sum += y[i] * x[i]
 * with one fp32 accumulator and the product rounded to fp32 before the add. This order is the
 * reference every optimized kernel is compared with.
 *
 * Spec: section 5.2 names the types the published GGUF files use; the byte layouts themselves
 * are ggml's (ggml-common.h / ggml-quants.c), which this file follows.
 */
#include "g4.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------------------------ */
/* type table                                                                                  */

typedef struct { g4_type t; const char *name; int64_t block; size_t bytes; } type_info;

static const type_info TYPES[] = {
    { G4_T_F32,  "f32",  1,   4   },
    { G4_T_F16,  "f16",  1,   2   },
    { G4_T_BF16, "bf16", 1,   2   },
    { G4_T_Q8_0, "q8_0", 32,  34  },
    { G4_T_Q4_0, "q4_0", 32,  18  },
    { G4_T_Q4_K, "q4_k", 256, 144 },
    { G4_T_Q6_K, "q6_k", 256, 210 },
};
#define N_TYPES ((int)(sizeof TYPES / sizeof TYPES[0]))

static const type_info *info_of(int id)
{
    for (int i = 0; i < N_TYPES; i++)
        if ((int)TYPES[i].t == id) return &TYPES[i];
    return NULL;
}

const char *g4_type_name(g4_type t) { const type_info *ti = info_of((int)t); return ti ? ti->name : NULL; }
int g4_type_supported(int id) { return info_of(id) != NULL; }
int64_t g4_type_block(g4_type t) { const type_info *ti = info_of((int)t); return ti ? ti->block : 0; }
size_t g4_type_block_bytes(g4_type t) { const type_info *ti = info_of((int)t); return ti ? ti->bytes : 0; }

int g4_type_from_name(const char *s)
{
    if (!s) return -1;
    for (int i = 0; i < N_TYPES; i++)
        if (strcasecmp(s, TYPES[i].name) == 0) return (int)TYPES[i].t;
    return -1;
}

size_t g4_row_bytes(g4_type t, int64_t n)
{
    const type_info *ti = info_of((int)t);
    if (!ti || n < 0) return 0;
    return (size_t)(n / ti->block) * ti->bytes;
}

/* ------------------------------------------------------------------------------------------ */
/* scalar conversions                                                                          */

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float g4_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t g4_f32_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)          /* NaN: keep sign and top payload, force quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    /* round to nearest even on the 16 dropped bits; a carry into the exponent is correct
     * (it rounds up to the next binade, or to inf past the largest finite bf16) */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float g4_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {                                   /* zero or subnormal: m * 2^-24, exact */
        float v = (float)m * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));   /* inf or NaN (payload kept) */
    return u2f(sign | ((e + 112u) << 23) | (m << 13));        /* rebias 15 -> 127 */
}

uint16_t g4_f32_to_f16(float f)
{
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)                                        /* NaN: quiet, top payload */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);    /* >= 65520 (or inf) -> inf */
    if (a >= 0x38800000u) {                                     /* >= 2^-14: normal f16 */
        uint32_t r = a - 0x38000000u;                           /* rebias exponent 127 -> 15 */
        r += 0xfffu + ((r >> 13) & 1u);                         /* round to nearest even */
        return (uint16_t)(sign | (r >> 13));
    }
    if (a <= 0x33000000u) return sign;                          /* <= 2^-25 rounds to +-0 */
    /* subnormal f16: value = mant * 2^(e-150) = (mant >> shift) units of 2^-24 */
    uint32_t e = a >> 23, mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e;                                  /* 14..24 */
    uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r++;           /* may become 0x400: min normal */
    return (uint16_t)(sign | r);
}

/* ------------------------------------------------------------------------------------------ */
/* block structs: byte arrays only, so there is no padding and no alignment requirement       */

typedef struct { uint8_t d[2]; int8_t qs[32]; } blk_q8_0;                                  /* 34 */
typedef struct { uint8_t d[2]; uint8_t qs[16]; } blk_q4_0;                                 /* 18 */
typedef struct { uint8_t d[2], dmin[2]; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_k;   /* 144 */
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t sc[16]; uint8_t d[2]; } blk_q6_k;  /* 210 */
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(blk_q4_k) == 144, "q4_k block");
_Static_assert(sizeof(blk_q6_k) == 210, "q6_k block");

static float rd_f16(const uint8_t b[2]) { return g4_f16_to_f32((uint16_t)(b[0] | (b[1] << 8))); }
static void wr_f16(uint8_t b[2], uint16_t h) { b[0] = (uint8_t)(h & 0xff); b[1] = (uint8_t)(h >> 8); }
static uint32_t rd_u32(const uint8_t *b)
{ return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24); }
static uint16_t rd_u16(const uint8_t *b) { return (uint16_t)(b[0] | (b[1] << 8)); }

/* Q4_K: unpack 6-bit scale and min of sub-block s (0..7) from the 12 packed bytes */
static void q4k_scale_min(const uint8_t *q, int s, int *sc, int *m)
{
    if (s < 4) {
        *sc = q[s] & 63;
        *m = q[s + 4] & 63;
    } else {
        *sc = (q[s + 4] & 0x0f) | ((q[s - 4] >> 6) << 4);
        *m = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
    }
}

/* ---- dequantize one block: out[block] ---- */

static void deq_q8_0(const blk_q8_0 *b, float *out /* [32] */)
{
    float d = rd_f16(b->d);
    for (int i = 0; i < 32; i++) out[i] = (float)b->qs[i] * d;
}

static void deq_q4_0(const blk_q4_0 *b, float *out /* [32] */)
{
    float d = rd_f16(b->d);
    for (int j = 0; j < 16; j++) {
        out[j] = (float)((b->qs[j] & 0x0f) - 8) * d;
        out[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
    }
}

static void deq_q4_k(const blk_q4_k *b, float *out /* [256] */)
{
    float d = rd_f16(b->d), dmin = rd_f16(b->dmin);
    for (int c = 0; c < 4; c++) {                /* chunk of 64 = sub-blocks 2c and 2c+1 */
        int sc, m;
        q4k_scale_min(b->scales, 2 * c, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        q4k_scale_min(b->scales, 2 * c + 1, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        const uint8_t *q = b->qs + 32 * c;
        for (int l = 0; l < 32; l++) out[64 * c + l] = d1 * (float)(q[l] & 0x0f) - m1;
        for (int l = 0; l < 32; l++) out[64 * c + 32 + l] = d2 * (float)(q[l] >> 4) - m2;
    }
}

static void deq_q6_k(const blk_q6_k *b, float *out /* [256] */)
{
    float d = rd_f16(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        const int8_t *sc = b->sc + 8 * h;
        float *y = out + 128 * h;
        for (int l = 0; l < 32; l++) {
            int s = l / 16;
            int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[s + 0] * (float)q1;
            y[l + 32] = d * (float)sc[s + 2] * (float)q2;
            y[l + 64] = d * (float)sc[s + 4] * (float)q3;
            y[l + 96] = d * (float)sc[s + 6] * (float)q4;
        }
    }
}

/* dequantize block number `ib` of a row into out[block] */
static void deq_block(g4_type t, const uint8_t *row, int64_t ib, float *out)
{
    switch (t) {
    case G4_T_F32: out[0] = u2f(rd_u32(row + 4 * ib)); break;
    case G4_T_F16: out[0] = g4_f16_to_f32(rd_u16(row + 2 * ib)); break;
    case G4_T_BF16: out[0] = g4_bf16_to_f32(rd_u16(row + 2 * ib)); break;
    case G4_T_Q8_0: deq_q8_0((const blk_q8_0 *)(const void *)(row + 34 * ib), out); break;
    case G4_T_Q4_0: deq_q4_0((const blk_q4_0 *)(const void *)(row + 18 * ib), out); break;
    case G4_T_Q4_K: deq_q4_k((const blk_q4_k *)(const void *)(row + 144 * ib), out); break;
    case G4_T_Q6_K: deq_q6_k((const blk_q6_k *)(const void *)(row + 210 * ib), out); break;
    default: break;
    }
}

void g4_dequant_row(g4_type t, const void *row, float *out, int64_t n)
{
    const uint8_t *p = row;
    /* one-element types get a loop of their own (no per-value switch) */
    switch (t) {
    case G4_T_F32:  for (int64_t i = 0; i < n; i++) out[i] = u2f(rd_u32(p + 4 * i)); return;
    case G4_T_F16:  for (int64_t i = 0; i < n; i++) out[i] = g4_f16_to_f32(rd_u16(p + 2 * i)); return;
    case G4_T_BF16: for (int64_t i = 0; i < n; i++) out[i] = g4_bf16_to_f32(rd_u16(p + 2 * i)); return;
    default: break;
    }
    int64_t bs = g4_type_block(t);
    if (bs <= 0) return;
    for (int64_t ib = 0; ib < n / bs; ib++) deq_block(t, row, ib, out + ib * bs);
}

float g4_dot_row(g4_type t, const void *row, const float *x, int64_t n)
{
    const int64_t bs = g4_type_block(t);
    if (bs <= 0) return 0.0f;
    /* one-element "blocks" (f32/f16/bf16) are dequantized 256 at a time: fewer calls, the
     * same summation order */
    const int64_t chunk = bs == 1 ? 256 : bs;
    float y[256];                                /* one dequantized chunk */
    float sum = 0.0f;
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t m = n - i0 < chunk ? n - i0 : chunk;
        g4_dequant_row(t, (const uint8_t *)row + g4_row_bytes(t, i0), y, m);
        const float *xb = x + i0;
        for (int64_t i = 0; i < m; i++) {
            float p = y[i] * xb[i];              /* product rounded to fp32, then added */
            sum += p;
        }
    }
    return sum;
}

/* ------------------------------------------------------------------------------------------ */
/* quantizers                                                                                  */

/* float -> int clamped to [lo, hi]; NaN goes to lo. Never an out-of-range conversion (UB). */
static int clamp_to_int(float v, int lo, int hi)
{
    if (!(v > (float)lo)) return lo;
    if (!(v < (float)hi)) return hi;
    return (int)v;
}

/* the smallest f16 >= v for v >= 0 (f16 max if v is beyond it) */
static uint16_t f16_round_up(float v)
{
    uint16_t h = g4_f32_to_f16(v);
    if (h >= 0x7bffu) return 0x7bffu;            /* overflow: clamp to the largest finite f16 */
    if (g4_f16_to_f32(h) < v) h++;               /* positive f16 bit patterns are ordered */
    return h;
}

/* the smallest integer k >= v, clamped to [0, hi] */
static int ceil_clamp(float v, int hi)
{
    if (!(v > 0.0f)) return 0;
    if (!(v < (float)hi)) return hi;
    int k = (int)v;
    return ((float)k < v) ? k + 1 : k;
}

/* ggml reference Q8_0 */
static void quant_q8_0(const float *x, blk_q8_0 *b)
{
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) { float a = fabsf(x[i]); if (a > amax) amax = a; }
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b->d, g4_f32_to_f16(d));
    for (int i = 0; i < 32; i++) b->qs[i] = (int8_t)clamp_to_int(roundf(x[i] * id), -128, 127);
}

/* ggml reference Q4_0 */
static void quant_q4_0(const float *x, blk_q4_0 *b)
{
    float amax = 0.0f, max = 0.0f;               /* max: the signed value of largest |x| (first) */
    for (int i = 0; i < 32; i++)
        if (amax < fabsf(x[i])) { amax = fabsf(x[i]); max = x[i]; }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b->d, g4_f32_to_f16(d));
    for (int j = 0; j < 16; j++) {
        int q0 = clamp_to_int(x[j] * id + 8.5f, 0, 15);         /* trunc toward 0, then min 15 */
        int q1 = clamp_to_int(x[j + 16] * id + 8.5f, 0, 15);
        b->qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
}

/* Q4_K, our quantizer. For sub-block s with values v: lo_s = min(0, min v), hi_s = max v.
 *   min:   M_s = -lo_s >= 0; dmin = f16 >= max_s M_s / 63 (rounded up); m_s = ceil(M_s / dmin),
 *          so dmin*m_s >= M_s: the lowest representable value -dmin*m_s is <= every value.
 *   scale: S_s = (hi_s + dmin*m_s) / 15 (so 15 steps reach hi_s); d = f16 >= max_s S_s / 63;
 *          sc_s = ceil(S_s / d) <= 63, so d*sc_s >= S_s: no value is clipped.
 *   Each q in 0..15 is the one whose dequantized value (d*sc)*q - dmin*m is nearest to x.
 * A-priori bound: |err| <= d*sc_s/2 <= (S_s + d)/2, with S_s <= (hi_s - lo_s + dmin)/15,
 * d <= (1 + 2^-10) * max_s S_s / 63, dmin <= (1 + 2^-10) * max_s M_s / 63 (f16 relative step,
 * for d and dmin in the f16 normal range), up to fp32 rounding of the expressions. */
static void quant_q4_k(const float *x, blk_q4_k *b)
{
    float lo[8], hi[8], Mq[8], S[8];
    int sc[8], m[8];
    float Mmax = 0.0f;
    for (int s = 0; s < 8; s++) {
        lo[s] = 0.0f; hi[s] = x[32 * s];
        for (int l = 0; l < 32; l++) {
            float v = x[32 * s + l];
            if (v < lo[s]) lo[s] = v;
            if (v > hi[s]) hi[s] = v;
        }
        if (-lo[s] > Mmax) Mmax = -lo[s];
    }
    uint16_t hdmin = f16_round_up(Mmax / 63.0f);
    float dmin = g4_f16_to_f32(hdmin);
    float Smax = 0.0f;
    for (int s = 0; s < 8; s++) {
        m[s] = dmin > 0.0f ? ceil_clamp(-lo[s] / dmin, 63) : 0;
        Mq[s] = dmin * (float)m[s];
        S[s] = (hi[s] + Mq[s]) / 15.0f;
        if (S[s] > Smax) Smax = S[s];
    }
    uint16_t hd = f16_round_up(Smax / 63.0f);
    float d = g4_f16_to_f32(hd);
    for (int s = 0; s < 8; s++) sc[s] = d > 0.0f ? ceil_clamp(S[s] / d, 63) : 0;

    wr_f16(b->d, hd);
    wr_f16(b->dmin, hdmin);
    for (int j = 0; j < 4; j++) {
        b->scales[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        b->scales[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        b->scales[j + 8] = (uint8_t)((sc[j + 4] & 0x0f) | ((m[j + 4] & 0x0f) << 4));
    }
    memset(b->qs, 0, sizeof b->qs);
    for (int s = 0; s < 8; s++) {
        float d1 = d * (float)sc[s], m1 = dmin * (float)m[s];   /* as in deq_q4_k */
        for (int l = 0; l < 32; l++) {
            int e = 32 * s + l;
            float v = x[e];
            int q = d1 > 0.0f ? clamp_to_int(roundf((v + m1) / d1), 0, 15) : 0;
            /* refine with the exact dequantization expression: nearest of q-1, q, q+1 */
            float best = fabsf(d1 * (float)q - m1 - v);
            for (int c = q - 1; c <= q + 1; c += 2) {
                if (c < 0 || c > 15) continue;
                float err = fabsf(d1 * (float)c - m1 - v);
                if (err < best) { best = err; q = c; }
            }
            int chunk = e / 64, r = e % 64;
            if (r < 32) b->qs[32 * chunk + r] |= (uint8_t)q;
            else b->qs[32 * chunk + r - 32] |= (uint8_t)(q << 4);
        }
    }
}

/* Q6_K, our quantizer. For sub-block s (16 values): P = max(0, max v), N = max(0, -min v).
 * q - 32 spans [-32, 31], so a positive scale a covers [-32a, 31a] (needs a >= max(P/31, N/32))
 * and a negative scale -a covers [-31a, 32a] (needs a >= max(P/32, N/31)); take the smaller
 * magnitude S_s and its sign. d = f16 >= max_s S_s / 127 (rounded up), |sc_s| = ceil(S_s / d)
 * <= 127, so no value is clipped; each q is the nearest by the dequantization expression.
 * A-priori bound: |err| <= d*|sc_s|/2 <= (S_s + d)/2 with S_s <= max|v|/31,
 * d <= (1 + 2^-10) * max_s S_s / 127 (f16 normal range), up to fp32 rounding. */
static void quant_q6_k(const float *x, blk_q6_k *b)
{
    float S[16], Smax = 0.0f;
    int neg[16], sc[16];
    for (int s = 0; s < 16; s++) {
        float P = 0.0f, N = 0.0f;
        for (int l = 0; l < 16; l++) {
            float v = x[16 * s + l];
            if (v > P) P = v;
            if (-v > N) N = -v;
        }
        float apos = fmaxf(P / 31.0f, N / 32.0f), aneg = fmaxf(P / 32.0f, N / 31.0f);
        neg[s] = aneg < apos;
        S[s] = neg[s] ? aneg : apos;
        if (S[s] > Smax) Smax = S[s];
    }
    uint16_t hd = f16_round_up(Smax / 127.0f);
    float d = g4_f16_to_f32(hd);
    for (int s = 0; s < 16; s++) {
        int a = d > 0.0f ? ceil_clamp(S[s] / d, 127) : 0;
        sc[s] = neg[s] ? -a : a;
        b->sc[s] = (int8_t)sc[s];
    }
    wr_f16(b->d, hd);
    memset(b->ql, 0, sizeof b->ql);
    memset(b->qh, 0, sizeof b->qh);
    for (int e = 0; e < 256; e++) {
        float ds = d * (float)sc[e / 16];                       /* as in deq_q6_k */
        float v = x[e];
        int q = ds != 0.0f ? clamp_to_int(roundf(v / ds), -32, 31) : 0;
        float best = fabsf(ds * (float)q - v);
        for (int c = q - 1; c <= q + 1; c += 2) {
            if (c < -32 || c > 31) continue;
            float err = fabsf(ds * (float)c - v);
            if (err < best) { best = err; q = c; }
        }
        int u = q + 32;                                         /* 0..63 */
        int h = e / 128, r = e % 128, k = r / 32, l = r % 32;
        int qli = 64 * h + (k & 1) * 32 + l;                    /* k=0,2: ql[l]; k=1,3: ql[l+32] */
        if (k < 2) b->ql[qli] |= (uint8_t)(u & 0x0f);
        else b->ql[qli] |= (uint8_t)((u & 0x0f) << 4);
        b->qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * k));
    }
}

void g4_quant_row(g4_type t, const float *in, void *row, int64_t n)
{
    uint8_t *o = row;
    switch (t) {
    case G4_T_F32:
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = f2u(in[i]);
            o[4 * i] = (uint8_t)u; o[4 * i + 1] = (uint8_t)(u >> 8);
            o[4 * i + 2] = (uint8_t)(u >> 16); o[4 * i + 3] = (uint8_t)(u >> 24);
        }
        break;
    case G4_T_F16:
        for (int64_t i = 0; i < n; i++) wr_f16(o + 2 * i, g4_f32_to_f16(in[i]));
        break;
    case G4_T_BF16:
        for (int64_t i = 0; i < n; i++) wr_f16(o + 2 * i, g4_f32_to_bf16(in[i]));
        break;
    case G4_T_Q8_0:
        for (int64_t ib = 0; ib < n / 32; ib++) quant_q8_0(in + 32 * ib, (blk_q8_0 *)(void *)(o + 34 * ib));
        break;
    case G4_T_Q4_0:
        for (int64_t ib = 0; ib < n / 32; ib++) quant_q4_0(in + 32 * ib, (blk_q4_0 *)(void *)(o + 18 * ib));
        break;
    case G4_T_Q4_K:
        for (int64_t ib = 0; ib < n / 256; ib++) quant_q4_k(in + 256 * ib, (blk_q4_k *)(void *)(o + 144 * ib));
        break;
    case G4_T_Q6_K:
        for (int64_t ib = 0; ib < n / 256; ib++) quant_q6_k(in + 256 * ib, (blk_q6_k *)(void *)(o + 210 * ib));
        break;
    default:
        break;
    }
}

/* ---- q8 activations (the opt-in "q8" numeric mode) -------------------------------------------
 * ggml's Q8_0 format applied to activations: one fp32 scale per 32 values. Rounding: x * (1/d)
 * to nearest, ties to even (rintf in the default rounding mode); |q| <= 127 since
 * |x * (1/d)| <= 127 (1 + 3u). A block so small that 1/d overflows (max |x| below about 2^-121)
 * gets d = 0, q = 0 (it would otherwise round infinities). Integer dot products are exact in
 * int32 (|sum| <= 32 * 128 * 127). */
void g4_quant_act_q8(const float *x, int64_t n, int8_t *q, float *d)
{
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        int bad = 0;
        for (int i = 0; i < 32; i++) {
            const float a = fabsf(xb[i]);
            if (!isfinite(a)) bad = 1;
            else if (a > amax) amax = a;
        }
        float db = amax / 127.0f, id = db > 0.0f ? 1.0f / db : 0.0f;
        if (isinf(id)) db = id = 0.0f;   /* amax < ~2^-121: 1/d overflows; the block counts as 0 */
        for (int i = 0; i < 32; i++) q[32 * b + i] = bad ? 0 : (int8_t)rintf(xb[i] * id);
        d[b] = bad ? NAN : db;
    }
}

/* Block b of a Q8_0 or Q4_0 row as its stored integers, in value order (Q8_0 w = q; Q4_0
 * w = nibble - 8, value j in the low nibble of byte j, value j + 16 in its high nibble), and
 * its scale dw (f16, exact in fp32). */
static float q8_block_w(g4_type t, const uint8_t *r, int64_t b, int32_t wv[32])
{
    if (t == G4_T_Q8_0) {
        const uint8_t *blk = r + 34 * b;                    /* f16 d, then 32 int8 */
        for (int i = 0; i < 32; i++) wv[i] = (int8_t)blk[2 + i];
        return g4_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
    }
    const uint8_t *blk = r + 18 * b;                        /* Q4_0: f16 d, 16 bytes of nibbles */
    for (int j = 0; j < 16; j++) {
        wv[j] = (int32_t)(blk[2 + j] & 0x0f) - 8;
        wv[j + 16] = (int32_t)(blk[2 + j] >> 4) - 8;
    }
    return g4_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
}

/* One row against one token's int8 activations: ref-q8's dot for decode (fewer than
 * G4_Q8_MAX_T tokens; docs/NUMERICS.md "q8 mode").
 * Integers: per block b and group g of 4 values (4g .. 4g+3), s = sum of w_i q_i, exact in
 * int32. fp32: the row keeps 16 accumulators acc[p][g], p = b mod 2 (the block's parity), and
 * per block
 *     scale = dw * d[b]                              (one rounding)
 *     acc[p][g] = fmaf((float)s, scale, acc[p][g])   (one rounding; (float)s is exact)
 * then a[g] = acc[0][g] + acc[1][g] and the fixed tree ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
 * This order is the one a vector unit gets for free when it streams one row at a time: a group
 * of 4 bytes is what one lane of an int8 dot instruction sums (vpmaddubsw+vpmaddwd, vpdpbusd,
 * vdotq_s32), the 8 groups of a block fill 8 fp32 lanes, and two blocks fill a 512-bit
 * register; no horizontal sum is needed until the row ends. */
float g4_dot_row_q8(g4_type t, const void *row, const int8_t *q, const float *d, int64_t n)
{
    float acc[2][8] = { { 0.0f } };                      /* [block parity][group] */
    for (int64_t b = 0; b < n / 32; b++) {
        const int8_t *qb = q + 32 * b;
        int32_t wv[32];                                  /* the block's signed weights */
        const float scale = q8_block_w(t, row, b, wv) * d[b];
        for (int g = 0; g < 8; g++) {
            int32_t s = 0;
            for (int i = 4 * g; i < 4 * g + 4; i++) s += wv[i] * qb[i];
            acc[b & 1][g] = fmaf((float)s, scale, acc[b & 1][g]);
        }
    }
    float a[8];
    for (int g = 0; g < 8; g++) a[g] = acc[0][g] + acc[1][g];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* One row against one token's int8 activations: ref-q8's dot for prefill (G4_Q8_MAX_T tokens
 * or more). Integers: per block, S = sum of its 32 products w_i q_i, exact in int32
 * (|S| <= 32 * 128 * 127 < 2^24, so (float)S is exact too). fp32: one accumulator, blocks in
 * order:
 *     acc = fmaf((float)S, dw * d[b], acc)           (dw * d[b] rounded once)
 * This order is the one a GEMM gets for free when its vector lanes are output rows: each lane
 * sums a whole block of one row in int32 (8 int8 dot steps against the token's 4 bytes,
 * broadcast), then scales it once; the weights of a tile are reused by every token, so the
 * per-block conversion is spread over many rows and tokens. */
float g4_dot_row_q8_serial(g4_type t, const void *row, const int8_t *q, const float *d, int64_t n)
{
    float acc = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        const int8_t *qb = q + 32 * b;
        int32_t wv[32];
        const float scale = q8_block_w(t, row, b, wv) * d[b];
        int32_t s = 0;
        for (int i = 0; i < 32; i++) s += wv[i] * qb[i];
        acc = fmaf((float)s, scale, acc);
    }
    return acc;
}

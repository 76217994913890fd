/* test_quant.c - ref/quant.c: type table, f16/bf16 conversions, known answers from gguf-py,
 * quantize/dequantize round trips against derived error bounds, and the reference dot order.
 *
 * Known answers come from tests/data/quant_kat.gguf, written by tests/data/make_gguf_py.py with
 * the reference gguf Python package (gguf.quants): the same fp32 data quantized by gguf-py to
 * Q8_0 / Q4_0 / BF16 / F16 (our bytes must be identical: those are ggml's reference quantizers),
 * gguf-py's dequantization of those and of random-byte Q8_0 / Q4_0 / Q4_K / Q6_K blocks (ours
 * must be bit-identical), and conversion edge cases. Run from the repo root (or set
 * G4_TEST_DATA to the tests/data folder).
 */
#include "g4.h"
#include "harness.h"

#include <float.h>
#include <stdint.h>

static const char *data_file(const char *name)
{
    static char buf[512];
    const char *dir = getenv("G4_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/data", name);
    return buf;
}

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bitsf(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static uint64_t rng_state = 42;
static double urand(void) { return (double)(g4_splitmix64(&rng_state) >> 11) * (1.0 / 9007199254740992.0); }
static float nrand(void)   /* standard normal (Box-Muller) */
{
    double u = urand(), v = urand();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static const g4_type ALL[] = { G4_T_F32, G4_T_F16, G4_T_BF16, G4_T_Q8_0, G4_T_Q4_0, G4_T_Q4_K, G4_T_Q6_K };
#define N_ALL 7

/* ------------------------------------------------------------------------------------------ */

static void test_type_table(void)
{
    static const struct { g4_type t; const char *name; int64_t blk; size_t bytes; } want[] = {
        { G4_T_F32, "f32", 1, 4 }, { G4_T_F16, "f16", 1, 2 }, { G4_T_BF16, "bf16", 1, 2 },
        { G4_T_Q8_0, "q8_0", 32, 34 }, { G4_T_Q4_0, "q4_0", 32, 18 },
        { G4_T_Q4_K, "q4_k", 256, 144 }, { G4_T_Q6_K, "q6_k", 256, 210 },
    };
    for (int i = 0; i < N_ALL; i++) {
        CHECK(g4_type_name(want[i].t) && strcmp(g4_type_name(want[i].t), want[i].name) == 0, "name of %d", want[i].t);
        CHECK(g4_type_block(want[i].t) == want[i].blk, "block of %s", want[i].name);
        CHECK(g4_type_block_bytes(want[i].t) == want[i].bytes, "bytes of %s", want[i].name);
        CHECK(g4_type_from_name(want[i].name) == (int)want[i].t, "from_name %s", want[i].name);
        CHECK(g4_row_bytes(want[i].t, want[i].blk * 7) == 7 * want[i].bytes, "row bytes %s", want[i].name);
    }
    CHECK(g4_type_from_name("Q4_K") == G4_T_Q4_K && g4_type_from_name("BF16") == G4_T_BF16, "case-insensitive names");
    CHECK(g4_type_from_name("q4_1") == -1 && g4_type_from_name("") == -1, "unknown names");
    int n_supported = 0;
    for (int id = -2; id < 300; id++) n_supported += g4_type_supported(id);
    CHECK(n_supported == 7, "exactly 7 supported ids, got %d", n_supported);
    for (int i = 0; i < N_ALL; i++) CHECK(g4_type_supported((int)ALL[i]), "supported %d", ALL[i]);
    CHECK(!g4_type_supported(3) && !g4_type_supported(13) && !g4_type_supported(G4_T_NONE), "q4_1/q5_k/none unsupported");
    CHECK(g4_type_name(G4_T_NONE) == NULL && g4_type_name((g4_type)3) == NULL, "no name for unsupported");
}

/* value of an f16 bit pattern computed independently in double */
static double f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_f16_exhaustive(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = g4_f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31, m = h & 1023;
        if (e == 31 && m != 0) {          /* NaN: stays NaN, sign kept, and comes back quiet */
            uint16_t back = g4_f32_to_f16(f);
            if (!isnan(f) || (fbits(f) >> 31) != (h >> 15) || (back & 0x7e00) != 0x7e00 ||
                (back & 0x8000) != (h & 0x8000)) bad++;
            continue;
        }
        double want = e == 31 ? ((h >> 15) ? -INFINITY : INFINITY) : f16_value((uint16_t)h);
        if ((double)f != want || !!signbit(f) != !!signbit(want)) bad++;
        if (g4_f32_to_f16(f) != h) bad++;                                  /* exact round trip */
    }
    CHECK(bad == 0, "%d f16 patterns decode or round-trip wrong", bad);
}

/* reference f32 -> f16 (finite x): the nearest f16 by comparing doubles; ties to even mantissa.
 * Values >= 65520 (halfway to the virtual next value 65536) go to inf. */
static uint16_t ref_f32_to_f16(float x)
{
    double a = fabs((double)x);
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    if (a >= 65520.0) return sign | 0x7c00;
    int lo = 0, hi = 0x7bff;                       /* largest k with value(k) <= a */
    while (lo < hi) { int mid = (lo + hi + 1) / 2; if (f16_value((uint16_t)mid) <= a) lo = mid; else hi = mid - 1; }
    double vlo = f16_value((uint16_t)lo), vhi = lo == 0x7bff ? 65536.0 : f16_value((uint16_t)(lo + 1));
    if (vlo == a) return sign | (uint16_t)lo;
    double dl = a - vlo, dh = vhi - a;
    int k = dl < dh ? lo : dh < dl ? lo + 1 : ((lo & 1) ? lo + 1 : lo);
    return sign | (uint16_t)k;
}

/* reference f32 -> bf16 (finite x): nearest of the two bf16 patterns around x, ties to even */
static uint16_t ref_f32_to_bf16(float x)
{
    uint32_t u = fbits(x), s = u & 0x80000000u, a = u & 0x7fffffffu;
    uint32_t lo = a >> 16, hi = lo + 1;
    if ((lo << 16) == a) return (uint16_t)((s >> 16) | lo);
    double v = (double)bitsf(a);
    double vlo = (double)bitsf(lo << 16);
    double vhi = hi == 0x7f80 ? ldexp(1.0, 128) : (double)bitsf(hi << 16);  /* virtual next */
    double dl = v - vlo, dh = vhi - v;
    uint32_t k = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
    return (uint16_t)((s >> 16) | k);
}

static void test_f32_to_f16_rne(void)
{
    int bad = 0, n = 0;
    /* every f16 value, its midpoints with both neighbours and values one f32 ulp around them */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double v = f16_value((uint16_t)h), vn = h == 0x7bff ? 65536.0 : f16_value((uint16_t)(h + 1));
        float mid = (float)((v + vn) / 2);         /* exact in f32 */
        float xs[5] = { (float)v, mid, nextafterf(mid, 0.0f), nextafterf(mid, INFINITY), -mid };
        for (int j = 0; j < 5; j++, n++) {
            uint16_t got = g4_f32_to_f16(xs[j]), want = ref_f32_to_f16(xs[j]);
            if (got != want) { if (bad < 5) printf("    f16(%a) = %04x want %04x\n", (double)xs[j], got, want); bad++; }
        }
    }
    /* random f32 bit patterns over the whole finite range, and dense near the f16 range */
    for (int i = 0; i < 400000; i++, n++) {
        uint32_t u = (uint32_t)g4_splitmix64(&rng_state);
        if (i & 1) u = (u & 0x80ffffffu) | ((uint32_t)(96 + (u >> 24) % 48) << 23);
        if (((u >> 23) & 0xff) == 0xff) continue;
        float x = bitsf(u);
        uint16_t got = g4_f32_to_f16(x), want = ref_f32_to_f16(x);
        if (got != want) { if (bad < 10) printf("    f16(%a) = %04x want %04x\n", (double)x, got, want); bad++; }
    }
    /* named cases */
    CHECK(g4_f32_to_f16(65504.0f) == 0x7bff && g4_f32_to_f16(65519.99f) == 0x7bff, "65504 edge");
    CHECK(g4_f32_to_f16(65520.0f) == 0x7c00 && g4_f32_to_f16(-1e9f) == 0xfc00, "overflow to inf");
    CHECK(g4_f32_to_f16(INFINITY) == 0x7c00 && g4_f32_to_f16(-INFINITY) == 0xfc00, "inf");
    CHECK(g4_f32_to_f16(-0.0f) == 0x8000 && g4_f32_to_f16(0.0f) == 0x0000, "signed zero");
    CHECK(g4_f32_to_f16(ldexpf(1, -24)) == 0x0001 && g4_f32_to_f16(ldexpf(1, -25)) == 0x0000, "min subnormal / tie to 0");
    CHECK(g4_f32_to_f16(ldexpf(3, -25)) == 0x0002 && g4_f32_to_f16(ldexpf(5, -25)) == 0x0002, "1.5 and 2.5 units tie to even 2");
    CHECK(g4_f32_to_f16(ldexpf(1, -14)) == 0x0400 && g4_f32_to_f16(ldexpf(1023, -24)) == 0x03ff, "normal/subnormal edge");
    CHECK(g4_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00 && g4_f32_to_f16(1.0f + ldexpf(3, -11)) == 0x3c02, "ties around 1");
    uint16_t qn = g4_f32_to_f16(NAN);
    CHECK((qn & 0x7c00) == 0x7c00 && (qn & 0x3ff) != 0, "NaN stays NaN (%04x)", qn);
    CHECK(isnan(g4_f16_to_f32(g4_f32_to_f16(bitsf(0x7f800001u)))), "signalling NaN stays NaN");
    CHECK(bad == 0, "%d of %d f32->f16 conversions differ from the reference", bad, n);
    printf("    f32->f16: %d values checked against a double-precision nearest-even reference\n", n);
}

static void test_bf16(void)
{
    int bad = 0, n = 0;
    for (uint32_t h = 0; h < 65536; h++) {          /* decode is a shift; encode is its inverse */
        float f = g4_bf16_to_f32((uint16_t)h);
        if (fbits(f) != h << 16) bad++;
        if (isnan(f)) { uint16_t b = g4_f32_to_bf16(f); if ((b & 0x7fc0) != 0x7fc0 || (b & 0x8000) != (h & 0x8000)) bad++; }
        else if (g4_f32_to_bf16(f) != h) bad++;
    }
    CHECK(bad == 0, "%d bf16 patterns decode or round-trip wrong", bad);
    bad = 0;
    for (int i = 0; i < 400000; i++) {
        uint32_t u = (uint32_t)g4_splitmix64(&rng_state);
        if (i % 3 == 0) u = (u & 0xffff0000u) | 0x8000u;      /* exact ties */
        if (((u >> 23) & 0xff) == 0xff) continue;
        float x = bitsf(u);
        n++;
        uint16_t got = g4_f32_to_bf16(x), want = ref_f32_to_bf16(x);
        if (got != want) { if (bad < 10) printf("    bf16(%a) = %04x want %04x\n", (double)x, got, want); bad++; }
    }
    CHECK(bad == 0, "%d of %d f32->bf16 conversions differ from the reference", bad, n);
    CHECK(g4_f32_to_bf16(bitsf(0x3f808000u)) == 0x3f80 && g4_f32_to_bf16(bitsf(0x3f818000u)) == 0x3f82, "RNE ties");
    CHECK(g4_f32_to_bf16(bitsf(0x7f7fffffu)) == 0x7f80 && g4_f32_to_bf16(bitsf(0x7f7f7fffu)) == 0x7f7f, "overflow edge");
    CHECK(g4_f32_to_bf16(-0.0f) == 0x8000 && g4_f32_to_bf16(bitsf(0x00018000u)) == 0x0002, "-0 and f32 subnormal tie");
    CHECK(g4_f32_to_bf16(bitsf(0x7f800001u)) == 0x7fc0 && g4_f32_to_bf16(-NAN) >= 0xffc0, "NaN quiet, sign kept");
    CHECK(g4_round_bf16(1.00390625f) == 1.0f && g4_round_bf16(1.01171875f) == 1.015625f, "g4_round_bf16");
}

/* ------------------------------------------------------------------------------------------ */
/* known answers from gguf-py                                                                  */

static const g4_tensor *kat(const g4_gguf *g, const char *name, g4_type t, int64_t n)
{
    const g4_tensor *T = g4_gguf_tensor(g, name);
    CHECK(T != NULL, "tensor %s missing from quant_kat.gguf", name);
    if (!T) return NULL;
    CHECK(T->type == t && g4_tensor_nelem(T) == n, "tensor %s: type %d n %lld", name, T->type, (long long)g4_tensor_nelem(T));
    return (T->type == t && g4_tensor_nelem(T) == n) ? T : NULL;
}

/* number of floats whose bit patterns differ */
static int count_bits_diff(const float *a, const float *b, int64_t n)
{
    int d = 0;
    for (int64_t i = 0; i < n; i++) if (fbits(a[i]) != fbits(b[i])) d++;
    return d;
}

static void test_gguf_py_known_answers(void)
{
    g4_err err = { "" };
    g4_gguf *g = g4_gguf_open(data_file("quant_kat.gguf"), &err);
    CHECK(g != NULL, "open quant_kat.gguf: %s", err.msg);
    if (!g) return;
    const int64_t n = 1024;
    float *src = malloc(n * sizeof *src), *deq = malloc(n * sizeof *deq), *want = malloc(n * sizeof *want);
    uint8_t *q = malloc(n * 4);
    const g4_tensor *S = kat(g, "src", G4_T_F32, n);
    if (S) memcpy(src, S->data, n * 4);

    /* quantized by gguf-py from src: our quantizer must give the same bytes, our dequantizer
     * the same floats as gguf-py's */
    static const struct { const char *name; g4_type t; } qd[] = {
        { "q8_0", G4_T_Q8_0 }, { "q4_0", G4_T_Q4_0 }, { "bf16", G4_T_BF16 }, { "f16", G4_T_F16 } };
    for (int k = 0; k < 4 && S; k++) {
        char dn[64];
        snprintf(dn, sizeof dn, "%s.deq", qd[k].name);
        const g4_tensor *Q = kat(g, qd[k].name, qd[k].t, n), *D = kat(g, dn, G4_T_F32, n);
        if (!Q || !D) continue;
        g4_quant_row(qd[k].t, src, q, n);
        CHECK(memcmp(q, Q->data, Q->nbytes) == 0, "%s: g4_quant_row bytes differ from gguf-py", qd[k].name);
        g4_dequant_row(qd[k].t, Q->data, deq, n);
        memcpy(want, D->data, n * 4);
        int nd = count_bits_diff(deq, want, n);
        CHECK(nd == 0, "%s: %d dequantized values differ from gguf-py", qd[k].name, nd);
        printf("    %-5s quantize: bytes %s gguf-py; dequantize: %d/%lld values differ\n", qd[k].name,
               memcmp(q, Q->data, Q->nbytes) == 0 ? "==" : "!=", nd, (long long)n);
    }
    /* random blocks dequantized by gguf-py */
    static const struct { const char *name; g4_type t; } rd[] = {
        { "rand.q8_0", G4_T_Q8_0 }, { "rand.q4_0", G4_T_Q4_0 }, { "rand.q4_k", G4_T_Q4_K }, { "rand.q6_k", G4_T_Q6_K } };
    for (int k = 0; k < 4; k++) {
        char dn[64];
        snprintf(dn, sizeof dn, "%s.deq", rd[k].name);
        const g4_tensor *Q = kat(g, rd[k].name, rd[k].t, n), *D = kat(g, dn, G4_T_F32, n);
        if (!Q || !D) continue;
        memcpy(want, D->data, n * 4);
        g4_dequant_row(rd[k].t, Q->data, deq, n);
        int nd = count_bits_diff(deq, want, n), nonfin = 0;
        for (int64_t i = 0; i < n; i++) nonfin += !isfinite(want[i]);
        CHECK(nd == 0 && nonfin == 0, "%s: %d values differ from gguf-py (%d non-finite)", rd[k].name, nd, nonfin);
        /* the same rows dequantized one row (4 super-blocks of 256) at a time */
        int nd2 = 0;
        for (int r = 0; r < 4; r++) {
            g4_dequant_row(rd[k].t, (const uint8_t *)Q->data + r * g4_row_bytes(rd[k].t, 256), deq, 256);
            nd2 += count_bits_diff(deq, want + 256 * r, 256);
        }
        CHECK(nd2 == 0, "%s: row-by-row dequantization differs", rd[k].name);
        printf("    %-9s random blocks: %d/%lld values differ from gguf-py\n", rd[k].name, nd, (long long)n);
    }
    /* conversion edge cases: NaN payloads, ties, overflow, subnormals */
    const g4_tensor *SP = kat(g, "special", G4_T_F32, 64), *SB = kat(g, "special.bf16", G4_T_BF16, 64),
                    *SH = kat(g, "special.f16", G4_T_F16, 64);
    if (SP && SB && SH) {
        int bb = 0, bh = 0;
        for (int i = 0; i < 64; i++) {
            float x = bitsf(fbits(((const float *)SP->data)[i]));
            uint16_t wb, wh;
            memcpy(&wb, (const uint8_t *)SB->data + 2 * i, 2);
            memcpy(&wh, (const uint8_t *)SH->data + 2 * i, 2);
            if (g4_f32_to_bf16(x) != wb) { bb++; printf("    bf16(%08x) = %04x, gguf-py %04x\n", fbits(x), g4_f32_to_bf16(x), wb); }
            if (g4_f32_to_f16(x) != wh) { bh++; printf("    f16(%08x) = %04x, numpy %04x\n", fbits(x), g4_f32_to_f16(x), wh); }
        }
        CHECK(bb == 0 && bh == 0, "edge cases: %d bf16 and %d f16 conversions differ", bb, bh);
    }
    free(src); free(deq); free(want); free(q);
    g4_gguf_close(g);
}

/* ------------------------------------------------------------------------------------------ */
/* round trips with derived error bounds                                                       */

/* test vectors: n values in blocks of 32 with varied scales and shapes */
static void make_data(float *x, int64_t n, int kind)
{
    for (int64_t b = 0; b < n / 32; b++) {
        float scale = (float)exp(-6.0 + 9.0 * urand());
        int shape = (int)(g4_splitmix64(&rng_state) % 6);
        for (int64_t i = 0; i < 32; i++) {
            float v = nrand() * scale;
            if (kind == 1) v = (float)(urand() * 2 - 1) * scale;
            if (shape == 1) v = fabsf(v);                 /* all positive */
            if (shape == 2) v = -fabsf(v);                /* all negative */
            if (shape == 3 && i == 7) v = 40 * scale;     /* an outlier */
            if (shape == 4) v = 0.0f;                     /* zeros */
            x[b * 32 + i] = v;
        }
    }
}

static const double EPS = FLT_EPSILON;     /* 2^-23 */
static const double F16_REL = 1.0 / 1024;  /* f16 relative step for normal values: 2^-10 */

static double f16_round_err(float d)       /* |f16(d) - d| */
{
    return fabs((double)g4_f16_to_f32(g4_f32_to_f16(d)) - d);
}

/* Each check reports the largest |err| and the largest ratio |err| / bound (must be <= 1). */
typedef struct { double maxerr, maxbound, ratio; int nonfinite; } rt_stat;
static void rt_add(rt_stat *s, double err, double bound)
{
    if (!isfinite(err)) { s->nonfinite++; return; }
    if (err > s->maxerr) s->maxerr = err;
    if (bound > s->maxbound) s->maxbound = bound;
    double r = bound > 0 ? err / bound : (err > 0 ? INFINITY : 0);
    if (r > s->ratio) s->ratio = r;
}

static void rt_report(const char *name, const char *bound, rt_stat *s)
{
    printf("    %-5s bound %s: max |err| %.3g (largest bound %.3g), max err/bound %.4f\n",
           name, bound, s->maxerr, s->maxbound, s->ratio);
    CHECK(s->nonfinite == 0 && s->ratio <= 1.0, "%s: err/bound %.4f, %d non-finite", name, s->ratio, s->nonfinite);
}

static void test_roundtrip_bounds(void)
{
    const int64_t n = 7 * 256;                     /* 7 super-blocks, 56 blocks of 32 */
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint8_t *q = malloc(n * 4);
    rt_stat s[N_ALL];
    memset(s, 0, sizeof s);
    for (int trial = 0; trial < 40; trial++) {
        make_data(x, n, trial & 1);
        for (int k = 0; k < N_ALL; k++) {
            g4_type t = ALL[k];
            g4_quant_row(t, x, q, n);
            g4_dequant_row(t, q, y, n);
            for (int64_t i = 0; i < n; i++) {
                double err = fabs((double)y[i] - x[i]), ax = fabs((double)x[i]), bound = 0;
                if (!isfinite(y[i])) { s[k].nonfinite++; continue; }
                const float *blk32 = x + i / 32 * 32;
                double amax = 0, vmax = 0;
                for (int j = 0; j < 32; j++) if (fabs(blk32[j]) > amax) { amax = fabs(blk32[j]); vmax = blk32[j]; }
                switch (t) {
                case G4_T_F32: bound = 0; break;
                /* half an ulp: 2^-8 |x| (bf16 keeps 8 significant bits) */
                case G4_T_BF16: bound = ldexp(ax, -8); break;
                /* half an ulp: 2^-11 |x| for normal f16, 2^-25 absolute in the subnormal range */
                case G4_T_F16: bound = fmax(ldexp(ax, -11), ldexp(1, -25)); break;
                /* q = round(x/d), d = amax/127: |x - d q| <= d/2; the stored d16 = f16(d) adds
                 * |q| |d16 - d| <= 127 |d16 - d|; the final product adds half an fp32 ulp */
                case G4_T_Q8_0: {
                    float d = (float)amax / 127.0f;
                    bound = 0.5 * d + 127 * f16_round_err(d) + 2 * EPS * amax;
                    break;
                }
                /* d = vmax/-8, q-8 = round(x/d) in [-8, 7]: |x - d(q-8)| <= |d|/2, except x/d > 7.5
                 * (possible only for -vmax side values) clamps to 7: error <= |d|; plus
                 * |q-8| |d16 - d| <= 8 |d16 - d| and fp32 rounding */
                case G4_T_Q4_0: {
                    float d = (float)vmax / -8.0f;
                    double tq = d != 0 ? x[i] / (double)d : 0;
                    bound = (tq > 7.5 ? fabs(d) : 0.5 * fabs(d)) + 8 * f16_round_err(d) + 2 * EPS * amax;
                    break;
                }
                /* a-priori bound of quant_q4_k (see ref/quant.c): per sub-block s of 32,
                 * lo = min(0, min x), hi = max x, M = -lo; dmin <= Mmax/63 (1+2^-10) + 2^-24;
                 * S_s <= (hi - lo + dmin)/15; d <= Smax/63 (1+2^-10) + 2^-24;
                 * |err| <= (S_s + d)/2, plus fp32 rounding of d*sc*q - dmin*m */
                case G4_T_Q4_K: {
                    const float *sb = x + i / 256 * 256;
                    double Mmax = 0, lo[8], hi[8], amaxsb = 0;
                    for (int s2 = 0; s2 < 8; s2++) {
                        lo[s2] = 0; hi[s2] = sb[32 * s2];
                        for (int j = 0; j < 32; j++) {
                            double v = sb[32 * s2 + j];
                            lo[s2] = fmin(lo[s2], v); hi[s2] = fmax(hi[s2], v);
                            amaxsb = fmax(amaxsb, fabs(v));
                        }
                        Mmax = fmax(Mmax, -lo[s2]);
                    }
                    double dmin = Mmax / 63 * (1 + F16_REL) + ldexp(1, -24), Smax = 0;
                    for (int s2 = 0; s2 < 8; s2++) Smax = fmax(Smax, (hi[s2] - lo[s2] + dmin) / 15);
                    double d = Smax / 63 * (1 + F16_REL) + ldexp(1, -24);
                    int s2 = (int)(i % 256 / 32);
                    bound = ((hi[s2] - lo[s2] + dmin) / 15 + d) / 2 + 8 * EPS * (amaxsb + Mmax);
                    break;
                }
                /* a-priori bound of quant_q6_k: per sub-block of 16, S_s <= amax_s/31,
                 * d <= Smax/127 (1+2^-10) + 2^-24, |err| <= (S_s + d)/2, plus fp32 rounding */
                case G4_T_Q6_K: {
                    const float *sb = x + i / 256 * 256;
                    double Smax = 0, Ss = 0, amaxsb = 0;
                    for (int s2 = 0; s2 < 16; s2++) {
                        double a = 0;
                        for (int j = 0; j < 16; j++) a = fmax(a, fabs(sb[16 * s2 + j]));
                        Smax = fmax(Smax, a / 31);
                        amaxsb = fmax(amaxsb, a);
                        if (s2 == (int)(i % 256 / 16)) Ss = a / 31;
                    }
                    double d = Smax / 127 * (1 + F16_REL) + ldexp(1, -24);
                    bound = (Ss + d) / 2 + 4 * EPS * amaxsb;
                    break;
                }
                default: break;
                }
                rt_add(&s[k], err, bound);
            }
        }
    }
    rt_report("f32", "0 (exact)", &s[0]);
    rt_report("f16", "max(2^-11|x|, 2^-25)", &s[1]);
    rt_report("bf16", "2^-8|x|", &s[2]);
    rt_report("q8_0", "d/2 + 127|f16(d)-d|, d=amax/127", &s[3]);
    rt_report("q4_0", "|d|/2 (|d| if clamped) + 8|f16(d)-d|, d=max/-8", &s[4]);
    rt_report("q4_k", "(S_s + d)/2, S_s=(hi-lo+dmin)/15, d=Smax/63", &s[5]);
    rt_report("q6_k", "(S_s + d)/2, S_s=amax_s/31, d=Smax/127", &s[6]);
    free(x); free(y); free(q);
}

/* Q4_K / Q6_K: the tight bound from the stored block itself: |err| <= half a step d*sc/2 of the
 * element's sub-block (no clipping), i.e. the quantizer picks the nearest representable value */
static void test_k_quants_nearest(void)
{
    const int64_t n = 4 * 256;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint8_t *q = malloc(n * 4);
    double r4 = 0, r6 = 0;
    for (int trial = 0; trial < 40; trial++) {
        make_data(x, n, trial & 1);
        g4_quant_row(G4_T_Q4_K, x, q, n);
        g4_dequant_row(G4_T_Q4_K, q, y, n);
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *b = q + i / 256 * 144;
            float d = g4_f16_to_f32((uint16_t)(b[0] | b[1] << 8));
            int s = (int)(i % 256 / 32), sc;
            const uint8_t *sp = b + 4;
            sc = s < 4 ? (sp[s] & 63) : ((sp[s + 4] & 15) | ((sp[s - 4] >> 6) << 4));
            double step = (double)d * sc, err = fabs((double)y[i] - x[i]);
            double bound = step / 2 + 8 * EPS * (fabs(x[i]) + 16 * step);
            r4 = fmax(r4, bound > 0 ? err / bound : (err > 0 ? INFINITY : 0));
        }
        g4_quant_row(G4_T_Q6_K, x, q, n);
        g4_dequant_row(G4_T_Q6_K, q, y, n);
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *b = q + i / 256 * 210;
            float d = g4_f16_to_f32((uint16_t)(b[208] | b[209] << 8));
            double step = fabs((double)d * (int8_t)b[192 + i % 256 / 16]), err = fabs((double)y[i] - x[i]);
            double bound = step / 2 + 4 * EPS * (fabs(x[i]) + 32 * step);
            r6 = fmax(r6, bound > 0 ? err / bound : (err > 0 ? INFINITY : 0));
        }
    }
    printf("    q4_k max err/(d*sc/2) %.4f, q6_k max err/(|d*sc|/2) %.4f\n", r4, r6);
    CHECK(r4 <= 1.0 && r6 <= 1.0, "k-quant not nearest: %.4f %.4f", r4, r6);
    free(x); free(y); free(q);
}

/* all-zero and tiny inputs give zeros / finite values, no NaN */
static void test_degenerate(void)
{
    float x[256], y[256];
    uint8_t q[1024];
    for (int k = 0; k < N_ALL; k++) {
        memset(x, 0, sizeof x);
        g4_quant_row(ALL[k], x, q, 256);
        g4_dequant_row(ALL[k], q, y, 256);
        int bad = 0;
        for (int i = 0; i < 256; i++) bad += !(y[i] == 0.0f);
        CHECK(bad == 0, "%s: zeros do not round-trip (%d)", g4_type_name(ALL[k]), bad);
        for (int i = 0; i < 256; i++) x[i] = (i % 3 - 1) * 1e-30f;
        g4_quant_row(ALL[k], x, q, 256);
        g4_dequant_row(ALL[k], q, y, 256);
        bad = 0;
        for (int i = 0; i < 256; i++) bad += !(isfinite(y[i]) && fabsf(y[i]) <= 1e-7f);
        CHECK(bad == 0, "%s: tiny values give %d bad outputs", g4_type_name(ALL[k]), bad);
        /* non-finite input must not crash (values unspecified) */
        x[3] = NAN; x[200] = INFINITY;
        g4_quant_row(ALL[k], x, q, 256);
        g4_dequant_row(ALL[k], q, y, 256);
    }
}

/* g4_dot_row == dot of g4_dequant_row's output accumulated in fp32 in index order, bit-exact */
static void test_dot_order(void)
{
    static const int64_t sizes[] = { 256, 512, 1792, 3840 };
    for (int si = 0; si < 4; si++) {
        int64_t n = sizes[si];
        float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w), *y = malloc(n * sizeof *y);
        uint8_t *q = malloc(n * 4);
        make_data(w, n, 0);
        for (int64_t i = 0; i < n; i++) x[i] = nrand();
        for (int k = 0; k < N_ALL; k++) {
            g4_type t = ALL[k];
            g4_quant_row(t, w, q, n);
            g4_dequant_row(t, q, y, n);
            float ref = 0.0f;
            for (int64_t i = 0; i < n; i++) { float p = y[i] * x[i]; ref = ref + p; }
            float got = g4_dot_row(t, q, x, n);
            double exact = 0;
            for (int64_t i = 0; i < n; i++) exact += (double)y[i] * x[i];
            CHECK(fbits(got) == fbits(ref) && isfinite(got), "%s n=%lld: dot %.9g, reference order %.9g",
                  g4_type_name(t), (long long)n, got, ref);
            /* also sane against a double sum: fp32 sequential sum error <= n eps sum|y x| */
            double absum = 0;
            for (int64_t i = 0; i < n; i++) absum += fabs((double)y[i] * x[i]);
            CHECK(fabs(got - exact) <= n * EPS * absum, "%s: dot far from the double sum", g4_type_name(t));
        }
        free(x); free(w); free(y); free(q);
    }
}

int main(void)
{
    RUN(test_type_table);
    RUN(test_f16_exhaustive);
    RUN(test_f32_to_f16_rne);
    RUN(test_bf16);
    RUN(test_gguf_py_known_answers);
    RUN(test_roundtrip_bounds);
    RUN(test_k_quants_nearest);
    RUN(test_degenerate);
    RUN(test_dot_order);
    return h_finish();
}

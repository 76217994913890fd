/* kernels.c - the reference kernel table: every operation the stages need, scalar and plain.
 *
 * This table is complete and is the truth that every opt/ table is tested against. The stages
 * never call these functions directly; they go through `const g4_kernels *k` so that an ISA
 * table can replace any entry (docs/ARCHITECTURE.md, "Kernel table").
 *
 * Numerics (docs/MODEL.md, "Numerics"): inputs and outputs are fp32. Sums of squares and
 * softmax denominators accumulate in double (more exact than any fp32 order, so the reference
 * sits closest to every correct implementation); dot products accumulate in fp32 in index order,
 * which is what g4_dot_row defines for stored weights. Built with -ffp-contract=off: no fused
 * multiply-adds sneak in.
 */
#include "g4.h"

#include <math.h>
#include <stdlib.h>

/* Y[t][r] = W[r] . X[t]: one g4_dot_row per output value.
 *   W: rows x cols stored in W->type (ne[0] = cols, ne[1] = rows)
 *   X: [T][cols], Y: [T][rows] */
static void ref_matmul(float *Y, const g4_tensor *W, const float *X, int T)
{
    const int64_t cols = W->ne[0], rows = W->ne[1];
    const size_t rb = g4_row_bytes(W->type, cols);
    const uint8_t *base = W->data;
    for (int t = 0; t < T; t++)
        for (int64_t r = 0; r < rows; r++)
            Y[(int64_t)t * rows + r] = g4_dot_row(W->type, base + r * rb, X + (int64_t)t * cols, cols);
}

/* The opt-in q8 mode (table "ref-q8", docs/NUMERICS.md "q8 mode"): a matmul with Q8_0 or Q4_0
 * weights rounds each token's activations to int8 blocks (g4_quant_act_q8) and dots integers:
 * fewer than G4_Q8_MAX_T tokens (decode, small batches) by g4_dot_row_q8, more (prefill) by
 * g4_dot_row_q8_serial; any other matmul is ref_matmul. The rounding scratch grows once and is
 * kept (this table is used from one thread at a time); if it cannot grow, the call stops with
 * every output NaN (visible, never a silent switch to another rule). */
static void ref_matmul_q8(float *Y, const g4_tensor *W, const float *X, int T)
{
    const int64_t cols = W->ne[0], rows = W->ne[1];
    if ((W->type != G4_T_Q8_0 && W->type != G4_T_Q4_0) || cols % 32 != 0) {
        ref_matmul(Y, W, X, T);
        return;
    }
    static int8_t *q;            /* [cols] one token's int8 activations */
    static float *d;             /* [cols / 32] their scales */
    static int64_t cap;
    if (cols > cap) {
        int8_t *nq = realloc(q, (size_t)cols);
        if (nq) q = nq;
        float *nd = realloc(d, sizeof(float) * (size_t)(cols / 32));
        if (nd) d = nd;
        if (!nq || !nd) {
            for (int64_t i = 0; i < (int64_t)T * rows; i++) Y[i] = NAN;
            return;
        }
        cap = cols;
    }
    float (*dot)(g4_type, const void *, const int8_t *, const float *, int64_t) =
        T < G4_Q8_MAX_T ? g4_dot_row_q8 : g4_dot_row_q8_serial;
    const size_t rb = g4_row_bytes(W->type, cols);
    const uint8_t *base = W->data;
    for (int t = 0; t < T; t++) {
        g4_quant_act_q8(X + (int64_t)t * cols, cols, q, d);
        for (int64_t r = 0; r < rows; r++)
            Y[(int64_t)t * rows + r] = dot(W->type, base + r * rb, q, d, cols);
    }
}

/* RMSNorm, Gemma 4 convention (spec 1.4): y = (x * (mean(x^2) + eps)^-1/2) * w.
 * The weight multiplies as stored: x*w, NOT x*(1+w) as in Gemma 1-3. w == NULL is the weightless
 * norm (v_norm, the multimodal pre-projection norm). pow(., -0.5), like HF, not 1/sqrt. */
static void ref_rmsnorm(float *y, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float ms = (float)(ss / n) + eps;
    float r = powf(ms, -0.5f);
    for (int i = 0; i < n; i++) {
        float v = x[i] * r;
        y[i] = w ? v * w[i] : v;
    }
}

/* LayerNorm as PyTorch computes it (vision embedder, spec 2.3): biased variance, eps inside the
 * square root, then weight and bias; sums in double */
static void ref_layernorm(float *y, const float *x, const float *w, const float *b, int n, float eps)
{
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    const float mean = (float)(sum / n);
    for (int i = 0; i < n; i++) { double d = (double)x[i] - mean; sq += d * d; }
    const float rstd = 1.0f / sqrtf((float)(sq / n) + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

/* rb(x): round to bf16 when asked (PyTorch bf16 tensor-op semantics), identity otherwise */
static inline float rb(float x, int bf16) { return bf16 ? g4_round_bf16(x) : x; }

/* rotate-half RoPE (spec 1.5): pairs (i, i + hd/2). c, s: [hd/2] cos/sin of this position
 * (already bf16 when bf16 is set, as HF casts them to the activation dtype). With bf16 each of
 * x*cos, rotate_half(x)*sin and their sum rounds, like three bf16 tensor ops. */
static void ref_rope(float *x, int n_heads, int hd, const float *c, const float *s, int bf16)
{
    const int half = hd / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (int64_t)h * hd;
        for (int i = 0; i < half; i++) {
            float a = v[i], b = v[i + half];
            v[i]        = rb(rb(a * c[i], bf16) + rb(-b * s[i], bf16), bf16);
            v[i + half] = rb(rb(b * c[i], bf16) + rb(a * s[i], bf16), bf16);
        }
    }
}

/* softmax in place; the largest score is subtracted first; sum in double */
static void softmax(float *x, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* Attention for one query position (spec 1.5 steps 6-7), HF "eager" order:
 *   scores = q . k (fp32 sum; bf16: rounded), scale 1.0 (QK-norm replaces 1/sqrt(d)),
 *   softmax in fp32 (bf16: probabilities rounded), out = sum p_j v_j (fp32 sum; bf16: rounded).
 * GQA: query head h reads KV head h / group (contiguous groups, HF repeat_kv). */
static void ref_attention(float *out, const float *q, int n_heads, int hd, int group,
                          const float *const *krow, const float *const *vrow, int n_keys,
                          float *scores, int bf16)
{
    for (int h = 0; h < n_heads; h++) {
        const float *qh = q + (int64_t)h * hd;
        const int64_t off = (int64_t)(h / group) * hd;
        for (int j = 0; j < n_keys; j++) {
            const float *kj = krow[j] + off;
            float sum = 0;
            for (int i = 0; i < hd; i++) sum += qh[i] * kj[i];
            scores[j] = rb(sum, bf16);
        }
        softmax(scores, n_keys);
        float *oh = out + (int64_t)h * hd;
        for (int i = 0; i < hd; i++) oh[i] = 0;
        for (int j = 0; j < n_keys; j++) {
            const float p = rb(scores[j], bf16), *vj = vrow[j] + off;
            for (int i = 0; i < hd; i++) oh[i] += p * vj[i];
        }
        if (bf16) for (int i = 0; i < hd; i++) oh[i] = g4_round_bf16(oh[i]);
    }
}

/* gelu with the tanh approximation (PyTorch gelu(approximate="tanh") = "gelu_pytorch_tanh"):
 *   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
static float gelu_tanh(float x)
{
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

/* GeGLU (spec 1.6): out = gelu_tanh(gate) * up; bf16: gelu output rounds, then the product */
static void ref_geglu(float *out, const float *gate, const float *up, int n, int bf16)
{
    for (int i = 0; i < n; i++) out[i] = rb(rb(gelu_tanh(gate[i]), bf16) * up[i], bf16);
}

/* final logit soft-cap (spec 1.3 step 5) in HF's operation order: x / cap, tanh, * cap
 * (each a bf16 tensor op when bf16 is set) */
static void ref_softcap(float *x, int n, float cap, int bf16)
{
    for (int i = 0; i < n; i++) x[i] = rb(rb(tanhf(rb(x[i] / cap, bf16)), bf16) * cap, bf16);
}

const g4_kernels g4_kernels_ref = {
    .name = "ref",
    .matmul = ref_matmul,
    .rmsnorm = ref_rmsnorm,
    .layernorm = ref_layernorm,
    .rope = ref_rope,
    .attention = ref_attention,
    .geglu = ref_geglu,
    .softcap = ref_softcap,
};

const g4_kernels g4_kernels_ref_q8 = {
    .name = "ref-q8",
    .matmul = ref_matmul_q8,
    .rmsnorm = ref_rmsnorm,
    .layernorm = ref_layernorm,
    .rope = ref_rope,
    .attention = ref_attention,
    .geglu = ref_geglu,
    .softcap = ref_softcap,
    .act_q8 = 1,
};

/* decoder.c - the Gemma 4 text decoder: token ids (and multimodal rows) -> logits.
 *
 * Stage: decoder (spec sections 1.3-1.6, 1.6a, 2.5, 7).
 * Input:  n token ids at positions pos..pos+n-1 (s->pos is the number of cached tokens);
 *         optional multimodal rows mm [n][d_model] used where mm_mask[i] != 0 (spliced in
 *         unscaled); optional bidirectional image blocks [start, end) in absolute positions.
 * Output: s->logits: [vocab] for the last position, or [n][vocab] for every position when
 *         s->all_logits (the caller then passes n <= max_batch). The KV cache grows by n.
 *
 * Per layer (x is the residual stream [T][d_model]):
 *     h = RMSNorm(x; attn_norm)
 *     q = RoPE(RMSNorm_hd(Wq h; q_norm))          per head, shared [hd] weight
 *     k = RoPE(RMSNorm_hd(Wk h; k_norm))
 *     v = RMSNorm_hd(Wv h)  (no weight)           K=V global layers: v from the raw Wk h
 *     a = softmax(q k^T * 1.0 + mask) v           scale 1.0, GQA contiguous groups
 *     x = x + RMSNorm(Wo a; post_attn_norm)
 *     x = x + RMSNorm(Wdown(gelu_tanh(Wgate h') * Wup h'); post_ffn_norm),  h' = RMSNorm(x; ffn_norm)
 *     x = x * layer_scalar                        the whole residual stream
 * then logits = softcap_30(E . RMSNorm(x; out_norm)) with the tied embedding E.
 *
 * KV cache: sliding layers keep a ring of `window` rows (slot = position % window); global
 * layers keep every position in a buffer that grows by doubling. A batch of T tokens computes
 * its K/V into scratch first, attends to (ring or cache) + scratch, and only then writes the
 * scratch into the cache, so the ring never has to be larger than the window.
 *
 * bf16 mode (s->bf16): round to bf16 wherever HF's bf16 model produces a bf16 tensor
 * (spec 1.6a; eager attention). Weights are used as stored either way.
 */
#include "g4.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void round_rows(float *x, int64_t n, int bf16)
{
    if (bf16) for (int64_t i = 0; i < n; i++) x[i] = g4_round_bf16(x[i]);
}

static void tap(g4_state *s, const char *name, int layer, const float *x, int T, int n)
{
    if (s->tap) s->tap(s->tap_ctx, name, layer, x, T, n);
}

/* ---- state ------------------------------------------------------------------------------ */

static void *alloc_f(g4_state *s, size_t n)
{
    s->bytes += n * sizeof(float);
    return calloc(n ? n : 1, sizeof(float));
}

int g4_state_init(g4_state *s, const g4_model *m, const g4_kernels *k, int max_ctx,
                  int max_batch, int all_logits, g4_err *err)
{
    memset(s, 0, sizeof *s);
    const g4_config *c = &m->cfg;
    if (max_ctx < 1 || max_batch < 1)
        return g4_fail(err, "context (%d) and batch (%d) must be positive", max_ctx, max_batch);
    if (max_batch > max_ctx) max_batch = max_ctx;
    s->m = m; s->k = k; s->max_ctx = max_ctx; s->max_batch = max_batch; s->all_logits = all_logits;
    const int B = max_batch, d = c->d_model;
    const int hd_max = c->hd_swa > c->hd_full ? c->hd_swa : c->hd_full;
    int kv_max = 0;
    for (int l = 0; l < c->n_layers; l++) {
        int r = g4_nkv(c, l) * g4_hd(c, l);
        if (r > kv_max) kv_max = r;
        /* sliding: a window-sized ring; global: start small and grow (g4_forward) */
        int cap = c->is_global[l] ? (max_ctx < 256 ? max_ctx : 256)
                                  : (max_ctx < c->window ? max_ctx : c->window);
        s->kv_cap[l] = cap;
        s->kc[l] = alloc_f(s, (size_t)cap * r);
        s->vc[l] = alloc_f(s, (size_t)cap * r);
        if (!s->kc[l] || !s->vc[l]) goto oom;
    }
    s->x = alloc_f(s, (size_t)B * d);
    s->h = alloc_f(s, (size_t)B * d);
    s->proj = alloc_f(s, (size_t)B * d);
    s->q = alloc_f(s, (size_t)B * c->n_heads * hd_max);
    s->att = alloc_f(s, (size_t)B * c->n_heads * hd_max);
    s->kn = alloc_f(s, (size_t)B * kv_max);
    s->vn = alloc_f(s, (size_t)B * kv_max);
    s->gate = alloc_f(s, (size_t)B * c->d_ff);
    s->up = alloc_f(s, (size_t)B * c->d_ff);
    s->scores = alloc_f(s, (size_t)max_ctx + B);
    s->logits = alloc_f(s, (size_t)(all_logits ? B : 1) * c->vocab);
    s->krow = calloc((size_t)max_ctx + B, sizeof *s->krow);
    s->vrow = calloc((size_t)max_ctx + B, sizeof *s->vrow);
    s->span_lo = calloc((size_t)B, sizeof *s->span_lo);
    s->span_hi = calloc((size_t)B, sizeof *s->span_hi);
    s->rope_c = alloc_f(s, (size_t)hd_max / 2);
    s->rope_s = alloc_f(s, (size_t)hd_max / 2);
    s->bytes += 2 * ((size_t)max_ctx + B) * sizeof(float *) + 2 * (size_t)B * sizeof(int);
    if (!s->x || !s->h || !s->proj || !s->q || !s->att || !s->kn || !s->vn || !s->gate ||
        !s->up || !s->scores || !s->logits || !s->krow || !s->vrow || !s->span_lo || !s->span_hi ||
        !s->rope_c || !s->rope_s)
        goto oom;
    return 0;
oom:
    g4_state_free(s);
    return g4_fail(err, "out of memory for the run state (context %d, batch %d)", max_ctx, max_batch);
}

void g4_state_free(g4_state *s)
{
    for (int l = 0; l < G4_MAX_LAYERS; l++) { free(s->kc[l]); free(s->vc[l]); }
    free(s->x); free(s->h); free(s->proj); free(s->q); free(s->att); free(s->kn); free(s->vn);
    free(s->gate); free(s->up); free(s->scores); free(s->logits); free(s->krow); free(s->vrow);
    free(s->span_lo); free(s->span_hi); free(s->rope_c); free(s->rope_s);
    memset(s, 0, sizeof *s);
}

void g4_state_reset(g4_state *s) { s->pos = 0; }

/* make room for positions < need in a global layer's cache (doubling, capped at max_ctx) */
static int grow_global(g4_state *s, int l, int need, g4_err *err)
{
    if (need <= s->kv_cap[l]) return 0;
    const g4_config *c = &s->m->cfg;
    size_t row = (size_t)g4_nkv(c, l) * g4_hd(c, l);
    int cap = s->kv_cap[l];
    while (cap < need) cap = cap * 2 > s->max_ctx ? s->max_ctx : cap * 2;
    float *k = realloc(s->kc[l], (size_t)cap * row * sizeof(float));
    if (!k) return g4_fail(err, "out of memory growing the KV cache of layer %d to %d positions", l, cap);
    s->kc[l] = k;
    float *v = realloc(s->vc[l], (size_t)cap * row * sizeof(float));
    if (!v) return g4_fail(err, "out of memory growing the KV cache of layer %d to %d positions", l, cap);
    s->vc[l] = v;
    s->bytes += 2 * (size_t)(cap - s->kv_cap[l]) * row * sizeof(float);
    s->kv_cap[l] = cap;
    return 0;
}

/* ---- RoPE tables (spec 1.5) ------------------------------------------------------------- */

/* cos/sin of one position for one layer type, computed like HF in fp32:
 *   inv_freq[i] = 1 / theta^(2i / hd)   for the first `rot` pairs, 0 for the rest
 *   angle = float(pos) * inv_freq[i];   c = cos(angle), s = sin(angle)   (bf16: rounded)
 * Sliding layers: theta 1e4, every pair rotates (rot = hd/2). Global layers ("proportional"):
 * theta 1e6, rot = int(0.25 * hd / 2) = 64 of 256 pairs, and the exponent's denominator is the
 * FULL head_dim (512), not the rotated width. Pairs are (i, i + hd/2), so the rotated ones are
 * (0..63, 256..319); the other dims pass through (cos 1, sin 0). Not ordinary partial RoPE. */
static void rope_table(const g4_config *c, int global, int pos, float *cs, float *sn, int bf16)
{
    const int hd = global ? c->hd_full : c->hd_swa;
    const float theta = global ? c->rope_theta_full : c->rope_theta_swa;
    const int rot = global ? (int)(c->rope_partial_full * hd / 2) : hd / 2;
    for (int i = 0; i < hd / 2; i++) {
        float inv = i < rot ? 1.0f / powf(theta, (float)(2 * i) / (float)hd) : 0.0f;
        float a = (float)pos * inv;
        cs[i] = bf16 ? g4_round_bf16(cosf(a)) : cosf(a);
        sn[i] = bf16 ? g4_round_bf16(sinf(a)) : sinf(a);
    }
}

/* ---- one batch -------------------------------------------------------------------------- */

/* the block holding position p, or NULL */
static const g4_block *block_of(const g4_block *b, int nb, int p)
{
    for (int i = 0; i < nb; i++) if (p >= b[i].start && p < b[i].end) return &b[i];
    return NULL;
}

/* the K and V rows of position kp in layer l: this batch's scratch or the cache (a ring slot
 * on sliding layers) */
static void kv_rows(g4_state *s, int l, int p0, int kp, const float **k, const float **v)
{
    const g4_config *c = &s->m->cfg;
    const int64_t row = (int64_t)g4_nkv(c, l) * g4_hd(c, l);
    if (kp >= p0) {
        *k = s->kn + (int64_t)(kp - p0) * row;
        *v = s->vn + (int64_t)(kp - p0) * row;
    } else {
        int slot = c->is_global[l] ? kp : kp % s->kv_cap[l];
        *k = s->kc[l] + (int64_t)slot * row;
        *v = s->vc[l] + (int64_t)slot * row;
    }
}

/* the key positions lo .. hi query position p may see in layer l. Mask (spec 1.5, 2.5): global
 * layers causal (kv <= q); sliding layers (kv <= q or kv in q's image block) and kv > q - window */
static void key_span(const g4_config *c, int l, int p, const g4_block *blocks, int nb, int *lo, int *hi)
{
    *lo = 0; *hi = p;
    if (!c->is_global[l]) {
        *lo = p - c->window + 1 > 0 ? p - c->window + 1 : 0;
        const g4_block *b = block_of(blocks, nb, p);
        if (b && b->end - 1 > *hi) *hi = b->end - 1;
    }
}

/* attention of layer l for T queries at positions p0.. (K/V of this batch in s->kn/s->vn).
 * The queries' spans overlap or touch (lo and hi grow with p), so their union is one run of
 * positions L .. H: it is listed once, and each query gets its span in the list. */
static void attend(g4_state *s, int l, int T, int p0, const g4_block *blocks, int nb)
{
    const g4_config *c = &s->m->cfg;
    const int hd = g4_hd(c, l), nkv = g4_nkv(c, l), qrow = c->n_heads * hd;
    int L = 0, H = 0;
    for (int t = 0; t < T; t++) {
        int lo, hi;
        key_span(c, l, p0 + t, blocks, nb, &lo, &hi);
        if (t == 0 || lo < L) L = lo;
        if (t == 0 || hi > H) H = hi;
        s->span_lo[t] = lo;
        s->span_hi[t] = hi;
    }
    for (int kp = L; kp <= H; kp++) kv_rows(s, l, p0, kp, &s->krow[kp - L], &s->vrow[kp - L]);
    for (int t = 0; t < T; t++) { s->span_lo[t] -= L; s->span_hi[t] -= L; }
    if (s->k->attention_batch && T > 1) {      /* an opt table reading each row once for several queries */
        s->k->attention_batch(s->att, s->q, T, c->n_heads, hd, c->n_heads / nkv, s->krow, s->vrow,
                              s->span_lo, s->span_hi, s->scores, s->bf16);
        return;
    }
    for (int t = 0; t < T; t++) {
        const int lo = s->span_lo[t], n = s->span_hi[t] - lo + 1;
        s->k->attention(s->att + (int64_t)t * qrow, s->q + (int64_t)t * qrow, c->n_heads, hd,
                        c->n_heads / nkv, s->krow + lo, s->vrow + lo, n, s->scores, s->bf16);
    }
}

static int run_layer(g4_state *s, int l, int T, int p0, const g4_block *blocks, int nb, g4_err *err)
{
    const g4_model *m = s->m;
    const g4_config *c = &m->cfg;
    const g4_kernels *k = s->k;
    const g4_layer *L = &m->layers[l];
    const int d = c->d_model, hd = g4_hd(c, l), nkv = g4_nkv(c, l), nq = c->n_heads;
    const int qrow = nq * hd, kvrow = nkv * hd, bf = s->bf16;

    /* --- attention block --- */
    for (int t = 0; t < T; t++) k->rmsnorm(s->h + (int64_t)t * d, s->x + (int64_t)t * d, L->attn_norm, d, c->eps);
    round_rows(s->h, (int64_t)T * d, bf);
    k->matmul(s->q, &L->wq, s->h, T);
    k->matmul(s->kn, &L->wk, s->h, T);
    round_rows(s->q, (int64_t)T * qrow, bf);
    round_rows(s->kn, (int64_t)T * kvrow, bf);
    if (L->wv.type != G4_T_NONE) {
        k->matmul(s->vn, &L->wv, s->h, T);
        round_rows(s->vn, (int64_t)T * kvrow, bf);
    } else {
        /* K=V (spec 1.5 item 2, trap 7.4): V is the raw K projection, taken BEFORE k_norm and
         * RoPE touch k. It then gets only the weightless v_norm below. */
        memcpy(s->vn, s->kn, (size_t)T * kvrow * sizeof(float));
    }
    for (int t = 0; t < T; t++) {
        float *q = s->q + (int64_t)t * qrow, *kk = s->kn + (int64_t)t * kvrow, *v = s->vn + (int64_t)t * kvrow;
        for (int h = 0; h < nq; h++) k->rmsnorm(q + h * hd, q + h * hd, L->q_norm, hd, c->eps);
        for (int h = 0; h < nkv; h++) {
            k->rmsnorm(kk + h * hd, kk + h * hd, L->k_norm, hd, c->eps);
            k->rmsnorm(v + h * hd, v + h * hd, NULL, hd, c->eps);   /* v_norm: no weight */
        }
        round_rows(q, qrow, bf); round_rows(kk, kvrow, bf); round_rows(v, kvrow, bf);
        rope_table(c, c->is_global[l], p0 + t, s->rope_c, s->rope_s, bf);
        k->rope(q, nq, hd, s->rope_c, s->rope_s, bf);
        k->rope(kk, nkv, hd, s->rope_c, s->rope_s, bf);
    }
    attend(s, l, T, p0, blocks, nb);
    /* now the batch's K/V join the cache */
    if (c->is_global[l] && grow_global(s, l, p0 + T, err)) return -1;
    for (int t = 0; t < T; t++) {
        int slot = c->is_global[l] ? p0 + t : (p0 + t) % s->kv_cap[l];
        memcpy(s->kc[l] + (int64_t)slot * kvrow, s->kn + (int64_t)t * kvrow, (size_t)kvrow * sizeof(float));
        memcpy(s->vc[l] + (int64_t)slot * kvrow, s->vn + (int64_t)t * kvrow, (size_t)kvrow * sizeof(float));
    }
    k->matmul(s->proj, &L->wo, s->att, T);
    round_rows(s->proj, (int64_t)T * d, bf);
    tap(s, "attn_out", l, s->proj, T, d);
    for (int t = 0; t < T; t++) {
        float *pr = s->proj + (int64_t)t * d, *x = s->x + (int64_t)t * d;
        k->rmsnorm(pr, pr, L->post_attn_norm, d, c->eps);
        round_rows(pr, d, bf);
        for (int i = 0; i < d; i++) x[i] = bf ? g4_round_bf16(x[i] + pr[i]) : x[i] + pr[i];
    }

    /* --- feed-forward block (GeGLU) --- */
    for (int t = 0; t < T; t++) k->rmsnorm(s->h + (int64_t)t * d, s->x + (int64_t)t * d, L->ffn_norm, d, c->eps);
    round_rows(s->h, (int64_t)T * d, bf);
    k->matmul(s->gate, &L->w_gate, s->h, T);
    k->matmul(s->up, &L->w_up, s->h, T);
    round_rows(s->gate, (int64_t)T * c->d_ff, bf);
    round_rows(s->up, (int64_t)T * c->d_ff, bf);
    k->geglu(s->gate, s->gate, s->up, T * c->d_ff, bf);
    k->matmul(s->proj, &L->w_down, s->gate, T);
    round_rows(s->proj, (int64_t)T * d, bf);
    tap(s, "ffn_out", l, s->proj, T, d);
    for (int t = 0; t < T; t++) {
        float *pr = s->proj + (int64_t)t * d, *x = s->x + (int64_t)t * d;
        k->rmsnorm(pr, pr, L->post_ffn_norm, d, c->eps);
        round_rows(pr, d, bf);
        for (int i = 0; i < d; i++) {
            float v = bf ? g4_round_bf16(x[i] + pr[i]) : x[i] + pr[i];
            /* layer scalar (trap 7.6): multiplies the WHOLE residual stream, after both adds */
            x[i] = bf ? g4_round_bf16(v * L->layer_scalar) : v * L->layer_scalar;
        }
    }
    tap(s, "layer_out", l, s->x, T, d);
    return 0;
}

/* one batch of T tokens (T <= max_batch) starting at s->pos */
static int run_batch(g4_state *s, const int *tok, int T, const float *mm, const uint8_t *mm_mask,
                     const g4_block *blocks, int nb, int want_logits, g4_err *err)
{
    const g4_model *m = s->m;
    const g4_config *c = &m->cfg;
    const int d = c->d_model, p0 = s->pos;
    /* embedding (spec 1.3 step 1, trap 7.7): E[id] * bf16(sqrt(d_model)) (62.0 for 3840, the
     * scale is cast to the checkpoint's bf16 before the multiply), product rounded in bf16
     * mode. Multimodal rows are used as they come: NOT scaled. */
    const float scale = g4_round_bf16(sqrtf((float)d));
    const size_t rb = g4_row_bytes(m->tok_embd.type, d);
    for (int t = 0; t < T; t++) {
        float *x = s->x + (int64_t)t * d;
        if (mm && mm_mask && mm_mask[t]) {
            memcpy(x, mm + (int64_t)t * d, (size_t)d * sizeof(float));
            round_rows(x, d, s->bf16);
            continue;
        }
        if (tok[t] < 0 || tok[t] >= c->vocab)
            return g4_fail(err, "token id %d at position %d is outside the vocabulary (0..%d)",
                           tok[t], p0 + t, c->vocab - 1);
        g4_dequant_row(m->tok_embd.type, (const uint8_t *)m->tok_embd.data + (size_t)tok[t] * rb, x, d);
        for (int i = 0; i < d; i++) x[i] = s->bf16 ? g4_round_bf16(x[i] * scale) : x[i] * scale;
    }
    tap(s, "embed", -1, s->x, T, d);

    for (int l = 0; l < c->n_layers; l++)
        if (run_layer(s, l, T, p0, blocks, nb, err)) return -1;
    s->pos += T;
    if (!want_logits) return 0;

    /* final norm and tied head, for every row (all_logits) or the last one */
    const int first = s->all_logits ? 0 : T - 1, nrow = T - first;
    for (int t = first; t < T; t++)
        s->k->rmsnorm(s->h + (int64_t)(t - first) * d, s->x + (int64_t)t * d, m->out_norm, d, c->eps);
    round_rows(s->h, (int64_t)nrow * d, s->bf16);
    tap(s, "final_norm", -1, s->h, nrow, d);
    s->k->matmul(s->logits, &m->tok_embd, s->h, nrow);
    round_rows(s->logits, (int64_t)nrow * c->vocab, s->bf16);
    if (c->softcap > 0) s->k->softcap(s->logits, nrow * c->vocab, c->softcap, s->bf16);
    tap(s, "logits", -1, s->logits, nrow, c->vocab);
    return 0;
}

int g4_forward(g4_state *s, const int *tokens, int n, const float *mm, const uint8_t *mm_mask,
               const g4_block *blocks, int n_blocks, g4_err *err)
{
    const g4_config *c = &s->m->cfg;
    if (n < 1) return g4_fail(err, "nothing to run (0 tokens)");
    if (s->pos + n > s->max_ctx)
        return g4_fail(err, "context full: %d cached + %d new tokens > context %d (raise --ctx)",
                       s->pos, n, s->max_ctx);
    if (s->all_logits && n > s->max_batch)
        return g4_fail(err, "all-position logits need the prompt (%d tokens) in one batch (batch %d)",
                       n, s->max_batch);
    for (int i = 0; i < n_blocks; i++) {
        const int bs = blocks[i].start, be = blocks[i].end;
        if (be <= s->pos || bs >= s->pos + n) continue;   /* not in this call */
        if (bs < s->pos || be > s->pos + n)
            return g4_fail(err, "image block [%d, %d) is split by this call (positions %d..%d): "
                           "pass the whole block in one call", bs, be, s->pos, s->pos + n - 1);
        if (be - bs > s->max_batch)
            return g4_fail(err, "image block of %d tokens does not fit one batch (%d): raise --batch",
                           blocks[i].end - blocks[i].start, s->max_batch);
    }
    int done = 0;
    while (done < n) {
        int T = n - done < s->max_batch ? n - done : s->max_batch;
        /* never split a bidirectional block: its queries need the block's later keys */
        int end = s->pos + T;
        const g4_block *b = block_of(blocks, n_blocks, end - 1);
        if (b && b->end > end && b->start > s->pos) T = b->start - s->pos;
        if (run_batch(s, tokens + done, T, mm ? mm + (int64_t)done * c->d_model : NULL,
                      mm_mask ? mm_mask + done : NULL, blocks, n_blocks, done + T == n, err))
            return -1;
        done += T;
    }
    return 0;
}

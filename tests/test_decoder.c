/* test_decoder.c - properties of the decoder and sampler that hold for any weights, checked on
 * the synthetic tiny model (6 layers, 2 global, window 8):
 *   - batched prefill == token-by-token decode, bit for bit, across the sliding window
 *     (same rows, same key order: nothing may differ);
 *   - the sliding ring and growing global cache: 300 positions (ring wraps, global grows past
 *     its first 256-row allocation) give the same logits whatever the batch size;
 *   - an image block is never split across batches, and a block of one token changes nothing;
 *   - the block is bidirectional on sliding layers only: a later token inside the block changes
 *     an earlier position's output, a token after the block does not;
 *   - bf16 mode stays within bf16 distance of fp32;
 *   - sampler: greedy, suppression, top-k 1, seeds, and frequencies near softmax.
 */
#include "g4.h"
#include "harness.h"

static g4_model model;
static g4_config cfg;

static int prompt(int i) { return (int)((i * 7919u + 13) % (unsigned)cfg.vocab); }

/* run n tokens in one g4_forward call with max_batch `batch` (the decoder splits it into
 * batches; batch 1 is token-by-token decode); return a copy of the last (or all) logits */
static float *run(int n, int batch, const g4_block *blocks, int nb, int bf16, int all)
{
    g4_state s; g4_err err;
    if (g4_state_init(&s, &model, &g4_kernels_ref, 512, all ? n : batch, all, &err)) {
        printf("    state: %s\n", err.msg); return NULL;
    }
    s.bf16 = bf16;
    int *tok = malloc((size_t)n * sizeof *tok);
    for (int i = 0; i < n; i++) tok[i] = prompt(i);
    float *out = NULL;
    if (g4_forward(&s, tok, n, NULL, NULL, blocks, nb, &err)) printf("    forward: %s\n", err.msg);
    else {
        size_t len = (size_t)(all ? n : 1) * cfg.vocab;
        out = malloc(len * sizeof *out);
        memcpy(out, s.logits, len * sizeof *out);
    }
    free(tok);
    g4_state_free(&s);
    return out;
}

static int same(const float *a, const float *b, long n)
{
    return a && b && memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

static void test_batch_equals_single_token(void)
{
    const int n = 20;  /* > 2 windows */
    float *ref = run(n, 1, NULL, 0, 0, 0);
    int sizes[] = { 3, 7, 8, 9, 20 };
    for (int i = 0; i < 5; i++) {
        float *x = run(n, sizes[i], NULL, 0, 0, 0);
        CHECK(same(ref, x, cfg.vocab), "batch %d differs from token-by-token", sizes[i]);
        free(x);
    }
    int nf; h_maxdiff(ref, ref, cfg.vocab, &nf);
    CHECK(!nf, "non-finite logits");
    free(ref);
}

static void test_long_context_cache(void)
{
    const int n = 300; /* ring wraps 37 times; global cache grows 256 -> 300 */
    float *a = run(n, 64, NULL, 0, 0, 0), *b = run(n, 300, NULL, 0, 0, 0), *c = run(n, 1, NULL, 0, 0, 0);
    CHECK(same(a, b, cfg.vocab) && same(a, c, cfg.vocab), "300-token logits depend on the batch size");
    free(a); free(b); free(c);
}

static void test_blocks(void)
{
    const int n = 16;
    g4_block blk = { 5, 11 };
    float *whole = run(n, 16, &blk, 1, 0, 0);
    float *split = run(n, 7, &blk, 1, 0, 0);  /* 7 would cut the block: must move the cut */
    CHECK(same(whole, split, cfg.vocab), "a batch boundary inside the block changed the result");
    float *causal = run(n, 16, NULL, 0, 0, 0);
    CHECK(whole && causal && !same(whole, causal, cfg.vocab), "a 6-token block changed nothing");
    g4_block one = { 5, 6 };
    float *single = run(n, 16, &one, 1, 0, 0);
    CHECK(same(single, causal, cfg.vocab), "a block of one token must equal causal attention");
    free(whole); free(split); free(causal); free(single);
}

/* all-position logits: the block lets position 5 see positions 6..10; causal does not */
static void test_block_bidirectional(void)
{
    const int n = 12;
    g4_block blk = { 5, 11 };
    float *a = run(n, n, &blk, 1, 0, 1);
    float *b = run(n, n, NULL, 0, 0, 1);
    if (!a || !b) { CHECK(0, "run failed"); free(a); free(b); return; }
    CHECK(same(a, b, 5L * cfg.vocab), "positions before the block must not change");
    CHECK(!same(a + 5L * cfg.vocab, b + 5L * cfg.vocab, cfg.vocab), "block start must see the block");
    free(a); free(b);
}

/* bf16 mode rounds ~every op to 8 bits of mantissa. After one layer the output must be within
 * a few bf16 ulps of fp32 (relative to the tensor's scale): a handful of chained roundings of
 * 2^-9 each, plus attention's sensitivity; bound 8 ulps = 8 * 2^-8 = 0.031. Deeper layers of the
 * synthetic model are chaotic (peaked attention: a rounding can flip which key wins), so only
 * layer 0 is bounded; the logits must stay finite and must differ (the mode rounds something).
 * The golden test holds bf16 mode to HF's bf16 model on every layer. */
typedef struct { float *x; int n; } cap;
static void cap_layer0(void *ctx, const char *name, int layer, const float *x, int T, int n)
{
    cap *c = ctx;
    if (strcmp(name, "layer_out") != 0 || layer != 0) return;
    c->x = malloc((size_t)T * n * sizeof(float));
    memcpy(c->x, x, (size_t)T * n * sizeof(float));
    c->n = T * n;
}

static void test_bf16_mode_close(void)
{
    cap c[2] = { { 0 } };
    float *lg[2];
    g4_err err;
    int tok[12];
    for (int i = 0; i < 12; i++) tok[i] = prompt(i);
    for (int b = 0; b < 2; b++) {
        g4_state s;
        g4_state_init(&s, &model, &g4_kernels_ref, 16, 12, 0, &err);
        s.bf16 = b; s.tap = cap_layer0; s.tap_ctx = &c[b];
        CHECK(g4_forward(&s, tok, 12, NULL, NULL, NULL, 0, &err) == 0, "%s", err.msg);
        lg[b] = malloc((size_t)cfg.vocab * sizeof(float));
        memcpy(lg[b], s.logits, (size_t)cfg.vocab * sizeof(float));
        g4_state_free(&s);
    }
    int nf = 0, nf2 = 0;
    double mx = 0;
    for (int i = 0; i < c[0].n; i++) if (fabs(c[0].x[i]) > mx) mx = fabs(c[0].x[i]);
    double rel = c[0].x && c[1].x ? h_maxdiff(c[0].x, c[1].x, c[0].n, &nf) / mx : 1e9;
    h_maxdiff(lg[0], lg[1], cfg.vocab, &nf2);
    printf("    layer 0: bf16 vs fp32 rel %.4f (bound 0.031)\n", rel);
    CHECK(!nf && rel <= 0.031, "bf16 mode too far from fp32 after layer 0: %g", rel);
    CHECK(!nf2, "non-finite logits");
    CHECK(memcmp(lg[0], lg[1], (size_t)cfg.vocab * sizeof(float)) != 0, "bf16 mode rounds nothing");
    free(c[0].x); free(c[1].x); free(lg[0]); free(lg[1]);
}

static void test_errors(void)
{
    g4_state s; g4_err err;
    CHECK(g4_state_init(&s, &model, &g4_kernels_ref, 8, 4, 0, &err) == 0, "init");
    int bad[2] = { 1, cfg.vocab };
    CHECK(g4_forward(&s, bad, 2, NULL, NULL, NULL, 0, &err) != 0 && strstr(err.msg, "vocabulary"),
          "out-of-range token must fail: %s", err.msg);
    g4_state_reset(&s);
    int four[4] = { 0 };
    g4_block blk = { 2, 6 };
    CHECK(g4_forward(&s, four, 4, NULL, NULL, &blk, 1, &err) != 0 && strstr(err.msg, "split"),
          "a block cut by the end of the call must fail: %s", err.msg);
    g4_state_reset(&s);
    int ok[9] = { 0 };
    CHECK(g4_forward(&s, ok, 9, NULL, NULL, NULL, 0, &err) != 0 && strstr(err.msg, "context"),
          "context overflow must fail: %s", err.msg);
    g4_state_free(&s);
}

static void test_sampler(void)
{
    g4_sampler sm;
    const int V = 8;
    float base[8] = { 0.1f, 2.0f, 1.5f, 2.0f, -1.0f, 0.0f, 0.5f, 1.9f }, l[8];
    g4_sampler_init(&sm, V, 0, 0, 1, 1);
    memcpy(l, base, sizeof l);
    CHECK(g4_sample(&sm, l, NULL, 0) == 1, "greedy picks the lowest id among ties");
    int sup[2] = { 1, 3 };
    memcpy(l, base, sizeof l);
    CHECK(g4_sample(&sm, l, sup, 2) == 7, "suppressed ids must never be chosen");
    g4_sampler_free(&sm);

    g4_sampler_init(&sm, V, 1.0f, 1, 1, 42);
    memcpy(l, base, sizeof l);
    CHECK(g4_sample(&sm, l, NULL, 0) == 1, "top-k 1 equals greedy");
    g4_sampler_free(&sm);

    /* frequencies vs softmax: 40000 draws, each p within 5 sigma (sigma = sqrt(p(1-p)/N)) */
    const int N = 40000;
    int count[8] = { 0 };
    g4_sampler_init(&sm, V, 1.0f, 0, 1, 7);
    for (int i = 0; i < N; i++) { memcpy(l, base, sizeof l); count[g4_sample(&sm, l, NULL, 0)]++; }
    g4_sampler_free(&sm);
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(base[i]);
    for (int i = 0; i < V; i++) {
        double p = exp(base[i]) / z, f = (double)count[i] / N, sig = sqrt(p * (1 - p) / N);
        CHECK(fabs(f - p) < 5 * sig, "id %d: frequency %.4f vs p %.4f", i, f, p);
    }
    /* top-p 0.5: only the smallest prefix with mass >= 0.5 can appear: ids 1, 3 (and 7) */
    g4_sampler_init(&sm, V, 1.0f, 0, 0.5f, 9);
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        memcpy(l, base, sizeof l);
        int t = g4_sample(&sm, l, NULL, 0);
        if (t != 1 && t != 3 && t != 7) bad++;
    }
    g4_sampler_free(&sm);
    CHECK(bad == 0, "top-p 0.5 drew %d tokens outside the nucleus", bad);
    /* same seed, same sequence */
    int a[16], b[16];
    for (int r = 0; r < 2; r++) {
        g4_sampler_init(&sm, V, 0.8f, 0, 0.95f, 1234);
        for (int i = 0; i < 16; i++) { memcpy(l, base, sizeof l); (r ? b : a)[i] = g4_sample(&sm, l, NULL, 0); }
        g4_sampler_free(&sm);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed must give the same tokens");
}

int main(void)
{
    g4_err err;
    if (g4_config_builtin("tiny", &cfg) || g4_model_synth(&model, &cfg, G4_T_F32, 1, &err)) {
        printf("FAIL setup: %s\n", err.msg);
        return 1;
    }
    RUN(test_batch_equals_single_token);
    RUN(test_long_context_cache);
    RUN(test_blocks);
    RUN(test_block_bidirectional);
    RUN(test_bf16_mode_close);
    RUN(test_errors);
    RUN(test_sampler);
    g4_model_free(&model);
    return h_finish();
}

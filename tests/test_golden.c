/* test_golden.c - ref/ held to the Hugging Face goldens (golden/tiny/, made by golden/gen.py
 * with transformers' gemma4_unified on the tiny config and random bf16 weights).
 *
 * For every run (short: 5 tokens; long: 20 tokens, crossing the 8-token window; decode: 12-token
 * prefill then 4 single-token steps through the KV cache) and both precisions (f32: fp32 math;
 * bf16: g4's bf16 mode against HF's bf16 model, eager attention), every tap is compared:
 * embed, attn_out.L, ffn_out.L, layer_out.L, final_norm, logits. Then greedy tokens, an 8-token
 * greedy generation, and GGUF vs safetensors (same weights, bit-identical logits).
 *
 * Error measure per tensor: rel = max|g4 - hf| / max|hf| (the tensor's own scale), printed for
 * every tap with its bound. Any NaN/Inf fails.
 *
 * Bounds (docs/NUMERICS.md has the derivation):
 *  - f32: both sides compute in fp32; only summation order and libm differ (a dot of n terms
 *    differs by <= ~n * 2^-24 relative in the worst case, ~sqrt(n) * 2^-24 typically). The
 *    longest sums are 256 terms; 6 layers of norms and residuals pass errors on without much
 *    growth. Bound 2e-5 (= 256 * 2^-24 * ~1.3): a real bug (wrong RoPE pair, missing scalar,
 *    1+w norm) moves values by 1e-2 or more.
 *  - bf16: both sides round at the same points; an fp32 sum in a different order can land on
 *    the other side of a bf16 rounding boundary, a 1-ulp (2^-8 relative) flip that later
 *    layers carry. Bound 3 bf16 ulps of the tensor scale = 3 * 2^-8 = 0.0117 for hidden states,
 *    and the same on logits. Measured values are printed; the band is also checked from below
 *    (a bf16 run that matches HF's fp32 golden as well as its bf16 one rounds nothing).
 */
#include "g4.h"
#include "golden.h"
#include "harness.h"
#include "taps.h"

#include <unistd.h>

#define F32_BOUND 2e-5
#define BF16_BOUND (3.0 / 256)

static g4_model model;
static const char *model_path = "golden/tiny/model.safetensors";


/* compare every float tensor of the golden whose name (after `prefix`) we tapped */
static int compare(const g4t_file *gf, const char *prefix, const taps *tp, double bound,
                   double *worst_out)
{
    int compared = 0;
    double worst = 0;
    size_t pl = strlen(prefix);
    for (uint32_t i = 0; i < gf->count; i++) {
        const g4t_tensor *g = &gf->t[i];
        if (g->dtype != G4T_F32 || strncmp(g->name, prefix, pl) != 0) continue;
        const tapbuf *b = taps_get(tp, g->name + pl);
        if (!b) continue;
        if ((uint64_t)b->T * b->n != g->n) {
            CHECK(0, "%s: g4 has %d x %d values, golden %llu", g->name, b->T, b->n,
                  (unsigned long long)g->n);
            continue;
        }
        double mx = 0;
        for (uint64_t j = 0; j < g->n; j++) if (fabs(g->f32[j]) > mx) mx = fabs(g->f32[j]);
        int nf;
        double rel = h_maxdiff(b->x, g->f32, (long)g->n, &nf) / (mx > 0 ? mx : 1);
        printf("    %-22s rel %.3g (bound %.3g)%s\n", g->name, rel, bound, nf ? " NON-FINITE" : "");
        CHECK(!nf && rel <= bound, "%s: rel error %g > %g", g->name, rel, bound);
        if (rel > worst) worst = rel;
        compared++;
    }
    if (worst_out) *worst_out = worst;
    return compared;
}

static int *golden_tokens(const g4t_file *gf, const char *name, int *n)
{
    const g4t_tensor *t = g4t_get(gf, name);
    if (!t || t->dtype != G4T_I32) { *n = 0; return NULL; }
    *n = (int)t->n;
    return t->i32;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* run one golden file: prefill (all positions), then the decodeN steps if the file has them */
static void check_run(const char *run, int bf16)
{
    char path[128], err[512];
    snprintf(path, sizeof path, "golden/tiny/%s_%s.g4t", run, bf16 ? "bf16" : "f32");
    g4t_file *gf = g4t_load(path, err, sizeof err);
    if (!gf) { CHECK(0, "%s", err); return; }
    printf("  %s\n", path);
    int n; int *tok = golden_tokens(gf, "tokens", &n);
    CHECK(tok && n > 0, "%s: no tokens", path);
    if (!tok) { g4t_free(gf); return; }

    g4_state s; g4_err e; taps tp = { .nb = 0 };
    if (g4_state_init(&s, &model, &g4_kernels_ref, 64, n, 1, &e)) { CHECK(0, "%s", e.msg); g4t_free(gf); return; }
    s.bf16 = bf16; s.tap = taps_on; s.tap_ctx = &tp;
    CHECK(g4_forward(&s, tok, n, NULL, NULL, NULL, 0, &e) == 0, "forward: %s", e.msg);
    const double bound = bf16 ? BF16_BOUND : F32_BOUND;
    int cmp = compare(gf, "", &tp, bound, NULL);
    CHECK(cmp >= 9, "%s: only %d taps compared", path, cmp);

    /* greedy token of every position and of the last */
    int na; int *am = golden_tokens(gf, "argmax", &na);
    const int V = model.cfg.vocab;
    int wrong = 0;
    for (int t = 0; am && t < na && t < n; t++) if (argmax(s.logits + (size_t)t * V, V) != am[t]) wrong++;
    CHECK(am && wrong == 0, "%s: %d of %d argmax tokens differ", path, wrong, na);
    int lastg = argmax(s.logits + (size_t)(n - 1) * V, V);
    taps_clear(&tp);

    /* decode steps through the cache: s.all_logits covers the single new row */
    for (int step = 0; ; step++) {
        char pre[32], nm[48];
        snprintf(pre, sizeof pre, "decode%d.", step);
        snprintf(nm, sizeof nm, "%stokens", pre);
        int nt; int *dt = golden_tokens(gf, nm, &nt);
        if (!dt) break;
        CHECK(g4_forward(&s, dt, nt, NULL, NULL, NULL, 0, &e) == 0, "decode: %s", e.msg);
        int c = compare(gf, pre, &tp, bound, NULL);
        CHECK(c >= 9, "%s: only %d taps compared at %s", path, c, pre);
        snprintf(nm, sizeof nm, "%sargmax", pre);
        int *da = golden_tokens(gf, nm, &nt);
        CHECK(da && argmax(s.logits, V) == da[0], "%s: greedy token differs at %s", path, pre);
        taps_clear(&tp);
    }

    /* 8-token greedy generation (HF generate, do_sample=False) */
    int ng; int *gen = golden_tokens(gf, "generate", &ng);
    if (gen) {
        g4_state_reset(&s);
        s.tap = NULL;
        CHECK(g4_forward(&s, tok, n, NULL, NULL, NULL, 0, &e) == 0, "%s", e.msg);
        int cur = argmax(s.logits + (size_t)(n - 1) * V, V), same = 1;
        CHECK(cur == lastg, "regenerated prompt differs");
        for (int i = 0; i < ng; i++) {
            if (cur != gen[i]) { same = 0; printf("    generate[%d]: g4 %d, hf %d\n", i, cur, gen[i]); break; }
            if (i + 1 < ng) {
                CHECK(g4_forward(&s, &cur, 1, NULL, NULL, NULL, 0, &e) == 0, "%s", e.msg);
                cur = argmax(s.logits, V);
            }
        }
        CHECK(same, "%s: greedy generation differs from HF generate()", path);
        printf("    generate: %d tokens equal\n", same ? ng : 0);
    }
    g4_state_free(&s);
    g4t_free(gf);
}

static void test_short_f32(void)  { check_run("short", 0); }
static void test_short_bf16(void) { check_run("short", 1); }
static void test_long_f32(void)   { check_run("long", 0); }
static void test_long_bf16(void)  { check_run("long", 1); }
static void test_decode_f32(void) { check_run("decode", 0); }
static void test_decode_bf16(void){ check_run("decode", 1); }

/* The tolerance must be able to fail: g4's bf16 mode compared with HF's fp32 golden must exceed
 * the fp32 bound, and the fp32 mode compared with the bf16 golden must exceed... the fp32 bound
 * too (the two goldens differ by bf16 rounding). If either passed, the bounds would be vacuous. */
static void test_bounds_can_fail(void)
{
    char err[512];
    g4t_file *gf = g4t_load("golden/tiny/long_f32.g4t", err, sizeof err);
    if (!gf) { CHECK(0, "%s", err); return; }
    int n; int *tok = golden_tokens(gf, "tokens", &n);
    g4_state s; g4_err e; taps tp = { .nb = 0 };
    g4_state_init(&s, &model, &g4_kernels_ref, 64, n, 1, &e);
    s.bf16 = 1; s.tap = taps_on; s.tap_ctx = &tp;
    g4_forward(&s, tok, n, NULL, NULL, NULL, 0, &e);
    /* count, silently, how many taps stay inside the f32 bound */
    int inside = 0, total = 0;
    for (uint32_t i = 0; i < gf->count; i++) {
        const g4t_tensor *g = &gf->t[i];
        const tapbuf *b = taps_get(&tp, g->name);
        if (!b || g->dtype != G4T_F32 || (uint64_t)b->T * b->n != g->n) continue;
        double mx = 0; for (uint64_t j = 0; j < g->n; j++) if (fabs(g->f32[j]) > mx) mx = fabs(g->f32[j]);
        int nf; double rel = h_maxdiff(b->x, g->f32, (long)g->n, &nf) / (mx > 0 ? mx : 1);
        total++; if (rel <= F32_BOUND) inside++;
    }
    printf("    bf16-mode taps inside the f32 bound: %d of %d (embeddings may be)\n", inside, total);
    CHECK(total >= 9 && inside <= 1, "the f32 bound does not separate bf16 from fp32 math");
    taps_clear(&tp);
    g4_state_free(&s);
    g4t_free(gf);
}

/* the same weights through GGUF: convert (types kept), load, run: logits bit-identical */
static void test_gguf_equals_safetensors(void)
{
    g4_err e;
    char path[] = "/tmp/g4_golden_XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    if (fd < 0) { CHECK(0, "mkstemps"); return; }
    close(fd);
    CHECK(g4_model_write_gguf(&model, path, G4_T_NONE, &e) == 0, "write: %s", e.msg);
    g4_model gm;
    if (g4_model_load(&gm, path, &e)) { CHECK(0, "load gguf: %s", e.msg); unlink(path); return; }
    int tok[7] = { 2, 105, 300, 17, 106, 107, 511 };
    float *out[2];
    const g4_model *ms[2] = { &model, &gm };
    for (int i = 0; i < 2; i++) {
        g4_state s;
        g4_state_init(&s, ms[i], &g4_kernels_ref, 16, 7, 1, &e);
        CHECK(g4_forward(&s, tok, 7, NULL, NULL, NULL, 0, &e) == 0, "%s", e.msg);
        out[i] = malloc(7 * sizeof(float) * model.cfg.vocab);
        memcpy(out[i], s.logits, 7 * sizeof(float) * model.cfg.vocab);
        g4_state_free(&s);
    }
    CHECK(memcmp(out[0], out[1], 7 * sizeof(float) * model.cfg.vocab) == 0,
          "GGUF and safetensors logits differ");
    CHECK(memcmp(&model.cfg.is_global, &gm.cfg.is_global, sizeof gm.cfg.is_global) == 0 &&
          model.cfg.window == gm.cfg.window && model.cfg.n_kv_full == gm.cfg.n_kv_full &&
          model.cfg.rope_partial_full == gm.cfg.rope_partial_full, "configs differ");
    free(out[0]); free(out[1]);
    g4_model_free(&gm);
    unlink(path);
}

int main(void)
{
    g4_err e;
    if (g4_model_load(&model, model_path, &e)) { printf("FAIL load: %s\n", e.msg); return 1; }
    RUN(test_short_f32);
    RUN(test_long_f32);
    RUN(test_decode_f32);
    RUN(test_short_bf16);
    RUN(test_long_bf16);
    RUN(test_decode_bf16);
    RUN(test_bounds_can_fail);
    RUN(test_gguf_equals_safetensors);
    g4_model_free(&model);
    return h_finish();
}

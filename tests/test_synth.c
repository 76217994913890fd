/* test_synth.c - synthetic weights (ref/synth.c): the in-memory model and the streamed GGUF hold
 * the same bytes, the values have the documented scales, and they depend on the seed only.
 */
#include "g4.h"
#include "harness.h"

#include <unistd.h>

static char tmp_path[256];

static g4_config tiny(void)
{
    g4_config c;
    memset(&c, 0, sizeof c);
    if (g4_config_builtin("tiny", &c)) printf("    no builtin config 'tiny'\n");
    return c;
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* compare a model matrix with the file's tensor of the same name: type, shape, bytes */
static int same_matrix(const g4_gguf *g, const g4_tensor *t)
{
    if (t->type == G4_T_NONE) return 1;
    const g4_tensor *f = g4_gguf_tensor(g, t->name);
    if (!f) { printf("    %s missing from the file\n", t->name); return 0; }
    if (f->type != t->type || f->ne[0] != t->ne[0] || f->ne[1] != t->ne[1] || f->nbytes != t->nbytes) {
        printf("    %s: file has %s [%lld, %lld] %zu bytes, memory %s [%lld, %lld] %zu bytes\n",
               t->name, g4_type_name(f->type), (long long)f->ne[0], (long long)f->ne[1], f->nbytes,
               g4_type_name(t->type), (long long)t->ne[0], (long long)t->ne[1], t->nbytes);
        return 0;
    }
    if (memcmp(f->data, t->data, t->nbytes) != 0) { printf("    %s: bytes differ\n", t->name); return 0; }
    return 1;
}

/* compare a model fp32 vector with the file's F32 tensor */
static int same_vector(const g4_gguf *g, const char *name, const float *v, int64_t n)
{
    const g4_tensor *f = g4_gguf_tensor(g, name);
    if (!f) { printf("    %s missing from the file\n", name); return 0; }
    if (f->type != G4_T_F32 || f->n_dims != 1 || f->ne[0] != n) {
        printf("    %s: file has %s with ne0 %lld, expected f32 [%lld]\n", name,
               g4_type_name(f->type), (long long)f->ne[0], (long long)n);
        return 0;
    }
    if (memcmp(f->data, v, (size_t)n * 4) != 0) { printf("    %s: values differ\n", name); return 0; }
    return 1;
}

/* every matrix of a model, for loops */
static int matrices(const g4_model *m, const g4_tensor **out)
{
    int n = 0;
    out[n++] = &m->tok_embd;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const g4_layer *L = &m->layers[l];
        out[n++] = &L->wq; out[n++] = &L->wk; out[n++] = &L->wv; out[n++] = &L->wo;
        out[n++] = &L->w_gate; out[n++] = &L->w_up; out[n++] = &L->w_down;
    }
    return n;
}

/* ---- in memory == GGUF ------------------------------------------------------------------ */

static void check_same(g4_type t)
{
    g4_config c = tiny();
    g4_model m; g4_err err = {{0}};
    int r = g4_model_synth(&m, &c, t, 42, &err);
    CHECK(r == 0, "g4_model_synth(%s): %s", g4_type_name(t), err.msg);
    if (r) return;
    r = g4_synth_write_gguf(&c, t, 42, tmp_path, 0, &err);
    CHECK(r == 0, "g4_synth_write_gguf(%s): %s", g4_type_name(t), err.msg);
    g4_gguf *g = r ? NULL : g4_gguf_open(tmp_path, &err);
    CHECK(g != NULL, "g4_gguf_open: %s", err.msg);
    if (!g) { g4_model_free(&m); return; }

    const g4_tensor *mats[1 + 7 * G4_MAX_LAYERS];
    int nm = matrices(&m, mats), ok = 1, nv = 0, nten = 0;
    for (int i = 0; i < nm; i++) {
        ok &= same_matrix(g, mats[i]);
        if (mats[i]->type != G4_T_NONE) nten++;
    }
    CHECK(ok, "matrices differ between memory and file (%s)", g4_type_name(t));
    char name[96];
    ok = same_vector(g, "output_norm.weight", m.out_norm, c.d_model); nv++;
    int n_kv_layers = 0, any_global = 0;
    for (int l = 0; l < c.n_layers; l++) {
        const g4_layer *L = &m.layers[l];
        int hd = g4_hd(&c, l);
#define V(S, P, N) (snprintf(name, sizeof name, "blk.%d." S, l), nv++, same_vector(g, name, P, N))
        ok &= V("attn_norm.weight", L->attn_norm, c.d_model);
        ok &= V("attn_q_norm.weight", L->q_norm, hd);
        ok &= V("attn_k_norm.weight", L->k_norm, hd);
        ok &= V("post_attention_norm.weight", L->post_attn_norm, c.d_model);
        ok &= V("ffn_norm.weight", L->ffn_norm, c.d_model);
        ok &= V("post_ffw_norm.weight", L->post_ffn_norm, c.d_model);
        ok &= V("layer_output_scale.weight", &L->layer_scalar, 1);
#undef V
        /* K=V global layers: no v_proj in memory and none in the file */
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        int kv = c.k_eq_v && c.is_global[l];
        n_kv_layers += kv;
        any_global |= c.is_global[l];
        CHECK((L->wv.type == G4_T_NONE) == kv, "layer %d: wv type %d, K=V %d", l, (int)L->wv.type, kv);
        CHECK((g4_gguf_tensor(g, name) == NULL) == kv, "layer %d: attn_v in file mismatch", l);
    }
    CHECK(ok, "vectors differ between memory and file (%s)", g4_type_name(t));
    /* rope_freqs: 1.0 for int(partial * hd_full / 2) pairs, then 1e30 */
    const g4_tensor *rf = g4_gguf_tensor(g, "rope_freqs.weight");
    CHECK((rf != NULL) == any_global, "rope_freqs present %d, global layers %d", rf != NULL, any_global);
    if (rf) {
        int rot = (int)(c.rope_partial_full * (float)c.hd_full / 2.0f), bad = 0;
        const float *f = rf->data;
        CHECK(rf->ne[0] == c.hd_full / 2, "rope_freqs has %lld values", (long long)rf->ne[0]);
        for (int i = 0; i < c.hd_full / 2 && i < rf->ne[0]; i++) bad += f[i] != (i < rot ? 1.0f : 1e30f);
        CHECK(bad == 0, "rope_freqs: %d wrong values (rotated pairs %d)", bad, rot);
        nten++;
    }
    CHECK((uint64_t)(nten + nv) == g->n_tensors, "file has %llu tensors, expected %d",
          (unsigned long long)g->n_tensors, nten + nv);
    /* metadata marker */
    char s[64] = "";
    CHECK(g4_gguf_get_str(g, "g4.synthetic.seed", s, sizeof s) == 0 && strcmp(s, "42") == 0,
          "g4.synthetic.seed = '%s'", s);
    CHECK(g4_gguf_get_str(g, "general.architecture", s, sizeof s) == 0 && strcmp(s, "gemma4") == 0,
          "general.architecture = '%s'", s);
    printf("    %s: %d matrices + %d vectors identical, %d K=V layers\n", g4_type_name(t), nten, nv,
           n_kv_layers);
    g4_gguf_close(g);
    g4_model_free(&m);
    unlink(tmp_path);
}

static void test_same_f32(void) { check_same(G4_T_F32); }
static void test_same_bf16(void) { check_same(G4_T_BF16); }
static void test_same_q8_0(void) { check_same(G4_T_Q8_0); }
static void test_same_q4_0(void) { check_same(G4_T_Q4_0); }

/* The file loads back as the same model: config from the GGUF metadata equals the built-in one
 * in every field the forward pass uses, and the loader binds the same bytes. */
static void test_load_back(void)
{
    g4_config c = tiny(), f;
    g4_err err = {{0}};
    int r = g4_synth_write_gguf(&c, G4_T_Q8_0, 7, tmp_path, 0, &err);
    CHECK(r == 0, "write: %s", err.msg);
    g4_model a, b;
    if (r) return;
    r = g4_model_load(&b, tmp_path, &err);
    CHECK(r == 0, "g4_model_load: %s", err.msg);
    if (r) { unlink(tmp_path); return; }
    f = b.cfg;
#define SAME(F) CHECK(c.F == f.F, "config field " #F ": builtin %g, from file %g", (double)c.F, (double)f.F)
    SAME(n_layers); SAME(d_model); SAME(d_ff); SAME(n_heads); SAME(n_kv_swa); SAME(n_kv_full);
    SAME(hd_swa); SAME(hd_full); SAME(vocab); SAME(window); SAME(rope_theta_swa);
    SAME(rope_theta_full); SAME(rope_partial_full); SAME(eps); SAME(softcap); SAME(k_eq_v);
    SAME(bos); SAME(eos); SAME(pad); SAME(n_stop); SAME(n_suppress);
#undef SAME
    CHECK(memcmp(c.is_global, f.is_global, sizeof c.is_global) == 0, "layer pattern differs");
    CHECK(memcmp(c.stop, f.stop, sizeof(int) * (size_t)c.n_stop) == 0, "stop ids differ");
    CHECK(memcmp(c.suppress, f.suppress, sizeof(int) * (size_t)c.n_suppress) == 0, "suppress ids differ");
    r = g4_model_synth(&a, &c, G4_T_Q8_0, 7, &err);
    CHECK(r == 0, "synth: %s", err.msg);
    if (r == 0) {
        const g4_tensor *ma[1 + 7 * G4_MAX_LAYERS], *mb[1 + 7 * G4_MAX_LAYERS];
        int n = matrices(&a, ma), bad = 0;
        matrices(&b, mb);
        for (int i = 0; i < n; i++)
            if (ma[i]->type != mb[i]->type || ma[i]->nbytes != mb[i]->nbytes ||
                (ma[i]->type != G4_T_NONE && memcmp(ma[i]->data, mb[i]->data, ma[i]->nbytes))) bad++;
        CHECK(bad == 0, "%d bound matrices differ from the in-memory synth", bad);
        for (int l = 0; l < c.n_layers; l++)
            bad += a.layers[l].layer_scalar != b.layers[l].layer_scalar ||
                   memcmp(a.layers[l].q_norm, b.layers[l].q_norm, (size_t)g4_hd(&c, l) * 4) ||
                   memcmp(a.layers[l].post_ffn_norm, b.layers[l].post_ffn_norm, (size_t)c.d_model * 4);
        bad += memcmp(a.out_norm, b.out_norm, (size_t)c.d_model * 4) != 0;
        CHECK(bad == 0, "bound vectors differ from the in-memory synth");
        /* the text GGUF holds exactly the text weights of the in-memory model */
        g4_config ct = c;
        ct.mm_dim = ct.mm_posemb = 0;
        g4_model at;
        if (g4_model_synth(&at, &ct, G4_T_Q8_0, 7, &err) == 0) {
            CHECK(g4_model_weight_bytes(&at) == g4_model_weight_bytes(&b), "text weight bytes %zu vs %zu",
                  g4_model_weight_bytes(&at), g4_model_weight_bytes(&b));
            g4_model_free(&at);
        } else CHECK(0, "text-only synth: %s", err.msg);
        /* the embedders travel in a separate GGUF mmproj, as published (spec 5.3); the loader
         * keeps the permuted patch matrix as an fp32 copy, so only the values are compared */
        if (a.mm.has_vision) {
            char mp[300];
            snprintf(mp, sizeof mp, "%s.mmproj", tmp_path);
            CHECK(g4_mmproj_write(&a, mp, &err) == 0, "mmproj write: %s", err.msg);
            CHECK(g4_mmproj_load(&b, mp, &err) == 0, "mmproj load: %s", err.msg);
            unlink(mp);
            CHECK(b.mm.has_vision && b.mm.has_audio &&
                  memcmp(a.mm.pos, b.mm.pos, (size_t)c.mm_posemb * 2 * c.mm_dim * 4) == 0 &&
                  memcmp(a.mm.ln1_w, b.mm.ln1_w, (size_t)G4_PATCH_DIM * 4) == 0,
                  "embedders differ after the mmproj round trip");
        }

        g4_model_free(&a);
    }
    g4_model_free(&b);
    unlink(tmp_path);
}

/* ---- scales ----------------------------------------------------------------------------- */

/* Each value is mean + std * z with z = (sum of 4 uniform bytes - 510) / 147.80, so |z| <= 510 /
 * 147.80 = 3.4506 exactly, and the sample mean / std of N values estimate the targets with
 * standard errors std/sqrt(N) and std * sqrt((2 + kurt_excess) / (4 N)) (kurt_excess = -0.3 for
 * Irwin-Hall n=4). We allow 6 standard errors. */
#define ZMAX (510.0 / 147.80054127)

static int check_normal(const char *what, const float *x, int64_t n, double mean, double std)
{
    double s = 0, ss = 0;
    int64_t out = 0, nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) { nonfinite++; continue; }
        s += x[i];
        if (fabs(x[i] - mean) > std * ZMAX * (1 + 1e-5) + 1e-7) out++;
    }
    double mu = s / n;
    for (int64_t i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    double sd = sqrt(ss / (n - 1));
    double tol_mean = 6 * std / sqrt((double)n), tol_sd = 6 * std * sqrt(1.7 / (4.0 * n));
    int ok = nonfinite == 0 && out == 0 && fabs(mu - mean) <= tol_mean && fabs(sd - std) <= tol_sd;
    if (!ok)
        printf("    %s: mean %.6g (want %.6g +- %.2g), std %.6g (want %.6g +- %.2g), %lld beyond "
               "%.3f std, %lld non-finite\n", what, mu, mean, tol_mean, sd, std, tol_sd,
               (long long)out, ZMAX, (long long)nonfinite);
    return ok;
}

static void test_scales(void)
{
    g4_config c = tiny();
    g4_model m; g4_err err = {{0}};
    int r = g4_model_synth(&m, &c, G4_T_F32, 1, &err);
    CHECK(r == 0, "synth: %s", err.msg);
    if (r) return;
    const g4_tensor *mats[1 + 7 * G4_MAX_LAYERS];
    int nm = matrices(&m, mats), bad = 0;
    for (int i = 0; i < nm; i++) {
        const g4_tensor *t = mats[i];
        if (t->type == G4_T_NONE) continue;
        bad += !check_normal(t->name, t->data, g4_tensor_nelem(t), 0.0, 1.0 / sqrt((double)t->ne[0]));
    }
    CHECK(bad == 0, "%d matrices off their scale (std 1/sqrt(cols))", bad);
    printf("    matrices: std 1/sqrt(cols), token_embd std %.4g, within 6 standard errors\n",
           1.0 / sqrt((double)c.d_model));
    /* norms (q/k norms too): 1 + 0.1 z in [1 - 0.345, 1 + 0.345]; layer scalars in
     * [0.005, 0.92] with mean 0.615 (0.92 - 0.915 u^2) */
    bad = 0;
    double lo = 1e9, hi = -1e9, slo = 1e9, shi = -1e9;
    for (int l = 0; l < c.n_layers; l++) {
        const g4_layer *L = &m.layers[l];
        const float *v[4] = { L->attn_norm, L->post_attn_norm, L->ffn_norm, L->post_ffn_norm };
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < c.d_model; i++) {
                if (!(v[k][i] > 0)) bad++;
                if (v[k][i] < lo) lo = v[k][i];
                if (v[k][i] > hi) hi = v[k][i];
            }
        for (int i = 0; i < g4_hd(&c, l); i++)
            bad += fabs(L->q_norm[i] - 1) > 0.1 * ZMAX + 1e-5 || fabs(L->k_norm[i] - 1) > 0.1 * ZMAX + 1e-5;
        if (L->layer_scalar < slo) slo = L->layer_scalar;
        if (L->layer_scalar > shi) shi = L->layer_scalar;
    }
    CHECK(bad == 0 && lo >= 1 - 0.1 * ZMAX - 1e-6 && hi <= 1 + 0.1 * ZMAX + 1e-6,
          "norm weights in [%g, %g], %d bad (want positive, within 1 +- %.3f)", lo, hi, bad, 0.1 * ZMAX);
    CHECK(slo >= 0.005f && shi <= 0.92f, "layer scalars in [%g, %g], want [0.005, 0.92]", slo, shi);
    printf("    norm weights in [%.3f, %.3f], layer scalars in [%.3f, %.3f]\n", lo, hi, slo, shi);
    g4_model_free(&m);
}

/* Activations stay finite and O(1) through the layers. The residual after layer l is
 * s_l * (x + a + m) where a and m come out of RMSNorms with weights <= 1.345, so their rms is
 * <= 1.345 each; with s_l <= 0.92 the rms is bounded by the fixed point
 * 0.92 * 2 * 1.345 / (1 - 0.92) = 30.9 (starting from the embedding rms ~1). Checked: < 31. */
typedef struct { double max_rms; int nonfinite; int calls; } tapstat;
static void tap(void *ctx, const char *name, int layer, const float *x, int T, int n)
{
    tapstat *st = ctx;
    if (strcmp(name, "layer_out") != 0) {
        for (long i = 0; i < (long)T * n; i++) st->nonfinite += !isfinite(x[i]);
        return;
    }
    st->calls++;
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int i = 0; i < n; i++) { ss += (double)x[t * n + i] * x[t * n + i]; st->nonfinite += !isfinite(x[t * n + i]); }
        double rms = sqrt(ss / n);
        if (rms > st->max_rms) st->max_rms = rms;
    }
}

static void test_activations(void)
{
    g4_config c = tiny();
    g4_model m; g4_err err = {{0}};
    int r = g4_model_synth(&m, &c, G4_T_F32, 3, &err);
    CHECK(r == 0, "synth: %s", err.msg);
    if (r) return;
    g4_state s;
    r = g4_state_init(&s, &m, &g4_kernels_ref, 64, 16, 0, &err);
    CHECK(r == 0, "state: %s", err.msg);
    if (r) { g4_model_free(&m); return; }
    tapstat st = { 0, 0, 0 };
    s.tap = tap; s.tap_ctx = &st;
    int ids[16];
    for (int i = 0; i < 16; i++) ids[i] = (i * 37 + 2) % c.vocab;
    r = g4_forward(&s, ids, 16, NULL, NULL, NULL, 0, &err);
    CHECK(r == 0, "forward: %s", err.msg);
    int nf = 0;
    double lmax = 0;
    for (int i = 0; i < c.vocab; i++) { nf += !isfinite(s.logits[i]); if (fabs(s.logits[i]) > lmax) lmax = fabs(s.logits[i]); }
    CHECK(nf == 0 && st.nonfinite == 0, "%d non-finite logits, %d non-finite tapped values", nf, st.nonfinite);
    CHECK(st.calls == c.n_layers, "layer_out tapped %d times for %d layers", st.calls, c.n_layers);
    CHECK(st.max_rms < 31 && st.max_rms > 0, "max residual rms %g (bound 31)", st.max_rms);
    CHECK(lmax <= c.softcap, "max |logit| %g above the soft-cap %g", lmax, (double)c.softcap);
    printf("    max residual rms %.3f (bound 31), max |logit| %.3f\n", st.max_rms, lmax);
    g4_state_free(&s);
    g4_model_free(&m);
}

/* ---- determinism and the seed ----------------------------------------------------------- */

static void test_seeds(void)
{
    g4_config c = tiny();
    g4_model a, b, d; g4_err err = {{0}};
    int r = g4_model_synth(&a, &c, G4_T_Q4_0, 5, &err);
    r |= g4_model_synth(&b, &c, G4_T_Q4_0, 5, &err);
    r |= g4_model_synth(&d, &c, G4_T_Q4_0, 6, &err);
    CHECK(r == 0, "synth: %s", err.msg);
    if (r) return;
    const g4_tensor *ma[1 + 7 * G4_MAX_LAYERS], *mb[1 + 7 * G4_MAX_LAYERS], *md[1 + 7 * G4_MAX_LAYERS];
    int n = matrices(&a, ma), same_ab = 0, same_ad = 0, total = 0;
    matrices(&b, mb); matrices(&d, md);
    for (int i = 0; i < n; i++) {
        if (ma[i]->type == G4_T_NONE) continue;
        total++;
        same_ab += memcmp(ma[i]->data, mb[i]->data, ma[i]->nbytes) == 0;
        same_ad += memcmp(ma[i]->data, md[i]->data, ma[i]->nbytes) == 0;
    }
    CHECK(same_ab == total, "same seed: only %d of %d matrices identical", same_ab, total);
    CHECK(same_ad == 0, "different seeds: %d of %d matrices identical", same_ad, total);
    /* different tensors of one model differ too (the name is part of the key) */
    CHECK(memcmp(a.layers[0].w_gate.data, a.layers[0].w_up.data, a.layers[0].w_gate.nbytes) != 0,
          "ffn_gate and ffn_up of layer 0 are identical");
    CHECK(memcmp(a.layers[0].attn_norm, a.layers[1].attn_norm, (size_t)c.d_model * 4) != 0,
          "attn_norm of layers 0 and 1 are identical");
    CHECK(a.layers[0].layer_scalar != d.layers[0].layer_scalar, "layer scalar ignores the seed");
    CHECK(strcmp(a.source, "synthetic tiny q4_0 seed 5") == 0, "source '%s'", a.source);
    g4_model_free(&a); g4_model_free(&b); g4_model_free(&d);
}

/* bad requests give one error line, not a crash */
static void test_errors(void)
{
    g4_config c = tiny();
    g4_model m; g4_err err = {{0}};
    int r = g4_synth_write_gguf(&c, G4_T_F32, 1, "/nonexistent-dir/x.gguf", 0, &err);
    CHECK(r != 0 && strstr(err.msg, "/nonexistent-dir/x.gguf"), "unwritable path: r=%d '%s'", r, err.msg);
    err.msg[0] = 0;
    g4_config bad = c; bad.d_model = 0;
    r = g4_model_synth(&m, &bad, G4_T_F32, 1, &err);
    CHECK(r != 0 && err.msg[0], "d_model 0 accepted: r=%d", r);
    err.msg[0] = 0;
    r = g4_model_synth(&m, &c, G4_T_NONE, 1, &err);
    CHECK(r != 0 && err.msg[0], "type NONE accepted: r=%d", r);
    printf("    errors: '%s'\n", err.msg);
}

int main(void)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/g4_test_synth_%d.gguf", (int)getpid());
    RUN(test_same_f32);
    RUN(test_same_bf16);
    RUN(test_same_q8_0);
    RUN(test_same_q4_0);
    RUN(test_load_back);
    RUN(test_scales);
    RUN(test_activations);
    RUN(test_seeds);
    RUN(test_errors);
    unlink(tmp_path);
    return h_finish();
}

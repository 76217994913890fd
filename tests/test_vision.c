/* test_vision.c - ref/vision.c (g4_vision_embed, spec 2.3) held to the Hugging Face goldens of
 * golden/tiny_mm/ (made by golden/gen_mm.py: Gemma4UnifiedVisionEmbedder on the HF image
 * processor's patches of 3 synthetic images, grids 4x3, 2x2, 5x1), in f32 and bf16 mode, plus
 * an independent float64 evaluation of spec 2.3 written out here, and the input checks.
 *
 * Error measure per image: rel = max|g4 - ref| / max|ref| (the tensor's own scale). NaN/Inf fail.
 * Bounds (derived; the measured values are printed):
 *  - f32: both sides compute in fp32 and differ only in summation order. The longest sums are
 *    the 6912-term LayerNorm and patch_dense dot products; a sequential fp32 sum of n terms of
 *    random sign has a relative error of about sqrt(n) * 2^-24 = 5.0e-6 for n = 6912 (the
 *    worst case n * 2^-24 = 4e-4 needs every rounding to go the same way, which the goldens'
 *    random data does not do). HF itself is 4.3e-6 away from a float64 evaluation (gen_mm.py
 *    prints it). The three LayerNorms renormalise, so errors do not grow along the chain. Bound
 *    3e-5 = 6 x the typical sum error: a real bug (CHW order, swapped x/y tables, eps 1e-6, no
 *    pixel cast, no RMSNorm) moves the output by 1.6% to 100% of its scale (gen_mm.py's trap
 *    list: 0.068 to 4.4 on max |value| 4.2).
 *  - bf16: HF rounds every module output to bf16; g4 rounds at the same points. A different fp32
 *    summation order can put a value on the other side of a bf16 rounding boundary (1 ulp =
 *    2^-8 relative) and the later stages carry that flip. Bound 3 bf16 ulps of the scale =
 *    3/256, as for the decoder (tests/test_golden.c).
 * The bounds can fail: the bf16 mode compared with the f32 golden, and CHW-ordered or x/y-
 * swapped inputs, are checked to land outside them.
 */
#include "g4.h"
#include "golden.h"
#include "harness.h"

#define F32_BOUND 3e-5
#define BF16_BOUND (3.0 / 256)
#define N_IMAGES 3

static g4_model model;
static g4t_file *inputs;

static double rel_err(const float *a, const float *ref, long n, int *nonfinite)
{
    double mx = 0;
    for (long i = 0; i < n; i++) if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
    return h_maxdiff(a, ref, n, nonfinite) / (mx > 0 ? mx : 1);
}

typedef struct { const float *patches; const int32_t *pos; int n, gw, gh; } image;

static int get_image(int k, image *im)
{
    char name[64];
    snprintf(name, sizeof name, "image%d.patches", k);
    const g4t_tensor *p = g4t_get(inputs, name);
    snprintf(name, sizeof name, "image%d.pos", k);
    const g4t_tensor *q = g4t_get(inputs, name);
    snprintf(name, sizeof name, "image%d.grid", k);
    const g4t_tensor *g = g4t_get(inputs, name);
    if (!p || !q || !g || p->dtype != G4T_F32 || q->dtype != G4T_I32 || g->dtype != G4T_I32 || p->n_dims != 2 ||
        p->dims[1] != G4_PATCH_DIM || q->n != 2 * p->dims[0] || g->n != 2) {
        CHECK(0, "inputs.g4t: image %d tensors missing or malformed", k);
        return -1;
    }
    im->patches = p->f32; im->pos = q->i32; im->n = (int)p->dims[0];
    im->gw = g->i32[0]; im->gh = g->i32[1];
    return 0;
}

/* g4's embedding of image k; returns malloc'd [n][d_model] or NULL */
static float *embed(const image *im, const float *patches, const int *pos, int bf16)
{
    g4_err e;
    float *out = malloc((size_t)im->n * model.cfg.d_model * sizeof(float));
    if (g4_vision_embed(&model, &g4_kernels_ref, patches ? patches : im->patches, pos ? pos : (const int *)im->pos,
                        im->n, out, bf16, &e)) {
        CHECK(0, "g4_vision_embed: %s", e.msg);
        free(out);
        return NULL;
    }
    return out;
}

/* spec 2.3 in float64 from the loaded weights (pixels cast to bf16 first) */
static void spec_f64(const image *im, int t, double *out)
{
    const g4_mm *v = &model.mm;
    const int D = model.cfg.mm_dim, d = model.cfg.d_model, N = G4_PATCH_DIM;
    double *x = malloc(N * sizeof *x), *h = malloc((size_t)D * sizeof *h);
    float *row = malloc(N * sizeof *row);
    double m = 0, var = 0;
    for (int i = 0; i < N; i++) { x[i] = g4_round_bf16(im->patches[(size_t)t * N + i]); m += x[i]; }
    m /= N;
    for (int i = 0; i < N; i++) var += (x[i] - m) * (x[i] - m);
    var /= N;
    for (int i = 0; i < N; i++) x[i] = (x[i] - m) / sqrt(var + 1e-5) * v->ln1_w[i] + v->ln1_b[i];
    const size_t rb = g4_row_bytes(v->patch_dense.type, N);
    for (int r = 0; r < D; r++) {
        g4_dequant_row(v->patch_dense.type, (const uint8_t *)v->patch_dense.data + r * rb, row, N);
        double s = v->patch_b[r];
        for (int i = 0; i < N; i++) s += (double)row[i] * x[i];
        h[r] = s;
    }
    const float *lw[2] = { v->ln2_w, v->pos_norm_w }, *lb[2] = { v->ln2_b, v->pos_norm_b };
    for (int pass = 0; pass < 2; pass++) {
        m = var = 0;
        for (int i = 0; i < D; i++) m += h[i];
        m /= D;
        for (int i = 0; i < D; i++) var += (h[i] - m) * (h[i] - m);
        var /= D;
        for (int i = 0; i < D; i++) h[i] = (h[i] - m) / sqrt(var + 1e-5) * lw[pass][i] + lb[pass][i];
        if (pass == 0) {
            const int px = im->pos[2 * t], py = im->pos[2 * t + 1];
            for (int i = 0; i < D; i++) h[i] += (double)v->pos[((size_t)px * 2 + 0) * D + i] + v->pos[((size_t)py * 2 + 1) * D + i];
        }
    }
    double ss = 0;
    for (int i = 0; i < D; i++) ss += h[i] * h[i];
    const double r = 1.0 / sqrt(ss / D + 1e-6);
    const size_t pb = g4_row_bytes(v->vis_proj.type, D);
    for (int o = 0; o < d; o++) {
        g4_dequant_row(v->vis_proj.type, (const uint8_t *)v->vis_proj.data + o * pb, row, D);
        double s = 0;
        for (int i = 0; i < D; i++) s += (double)row[i] * h[i] * r;
        out[o] = s;
    }
    free(x); free(h); free(row);
}

static void test_model_has_vision(void)
{
    const g4_config *c = &model.cfg;
    CHECK(model.mm.has_vision && model.mm.has_audio, "tiny_mm has vision and audio weights");
    CHECK(c->mm_dim == 96 && c->mm_posemb == 64 && c->audio_dim == 640, "config sizes %d %d %d", c->mm_dim, c->mm_posemb,
          c->audio_dim);
    CHECK(c->boi == 500 && c->boa == 501 && c->image_tok == 502 && c->audio_tok == 503 && c->eoi == 504 && c->eoa == 505,
          "tiny ids from config.json");
    CHECK(model.mm.patch_dense.ne[0] == G4_PATCH_DIM && model.mm.patch_dense.ne[1] == 96, "patch_dense 96 x 6912");
    CHECK(model.mm.vis_proj.ne[0] == 96 && model.mm.vis_proj.ne[1] == 128, "vis_proj rows 128 (d_model), cols 96");
}

static void check_images(int bf16)
{
    char path[128], err[512];
    snprintf(path, sizeof path, "golden/tiny_mm/vision_%s.g4t", bf16 ? "bf16" : "f32");
    g4t_file *gf = g4t_load(path, err, sizeof err);
    if (!gf) { CHECK(0, "%s", err); return; }
    printf("  %s\n", path);
    for (int k = 0; k < N_IMAGES; k++) {
        image im;
        if (get_image(k, &im)) break;
        char name[64];
        snprintf(name, sizeof name, "image%d.embed", k);
        const g4t_tensor *g = g4t_get(gf, name);
        CHECK(g && g->n == (uint64_t)im.n * model.cfg.d_model, "%s: %s", path, name);
        float *out = embed(&im, NULL, NULL, bf16);
        if (!g || !out) { free(out); continue; }
        int nf;
        const long n = (long)g->n;
        double rel = rel_err(out, g->f32, n, &nf);
        double bound = bf16 ? BF16_BOUND : F32_BOUND;
        printf("    image %d (%dx%d grid, %d patches) rel %.3g (bound %.3g)%s\n", k, im.gw, im.gh, im.n, rel, bound,
               nf ? " NON-FINITE" : "");
        CHECK(!nf && rel <= bound, "image %d: rel %g > %g", k, rel, bound);
        if (!bf16) {
            /* independent float64 evaluation of spec 2.3 */
            double *ref = malloc((size_t)n * sizeof *ref);
            float *reff = malloc((size_t)n * sizeof *reff);
            for (int t = 0; t < im.n; t++) spec_f64(&im, t, ref + (size_t)t * model.cfg.d_model);
            for (long i = 0; i < n; i++) reff[i] = (float)ref[i];
            double r64 = rel_err(out, reff, n, &nf), h64 = rel_err(g->f32, reff, n, &nf);
            printf("      vs float64 spec 2.3: g4 %.3g, HF %.3g (bound %.3g)\n", r64, h64, F32_BOUND);
            CHECK(!nf && r64 <= F32_BOUND && h64 <= F32_BOUND, "image %d: float64 check g4 %g HF %g", k, r64, h64);
            free(ref); free(reff);
        }
        free(out);
    }
    g4t_free(gf);
}

static void test_f32(void)  { check_images(0); }
static void test_bf16(void) { check_images(1); }

/* the bounds separate right from wrong: bf16 math vs the f32 golden exceeds the f32 bound;
 * CHW-ordered patches or swapped x/y positions exceed even the bf16 bound */
static void test_bounds_can_fail(void)
{
    char err[512];
    g4t_file *gf = g4t_load("golden/tiny_mm/vision_f32.g4t", err, sizeof err);
    image im;
    if (!gf || get_image(0, &im)) { CHECK(0, "%s", gf ? "image 0" : err); g4t_free(gf); return; }
    const g4t_tensor *g = g4t_get(gf, "image0.embed");
    const long n = (long)im.n * model.cfg.d_model;
    int nf;
    float *b = embed(&im, NULL, NULL, 1);
    float *chw = malloc((size_t)im.n * G4_PATCH_DIM * sizeof(float));
    int *swp = malloc((size_t)im.n * 2 * sizeof(int));
    for (int t = 0; t < im.n; t++) {
        for (int r = 0; r < G4_PATCH; r++)
            for (int c = 0; c < G4_PATCH; c++)
                for (int ch = 0; ch < 3; ch++)
                    chw[(size_t)t * G4_PATCH_DIM + ch * G4_PATCH * G4_PATCH + r * G4_PATCH + c] =
                        im.patches[(size_t)t * G4_PATCH_DIM + (r * G4_PATCH + c) * 3 + ch];
        swp[2 * t] = im.pos[2 * t + 1];
        swp[2 * t + 1] = im.pos[2 * t];
    }
    float *c = embed(&im, chw, NULL, 0), *s = embed(&im, NULL, swp, 0);
    if (b && c && s && g) {
        double rb = rel_err(b, g->f32, n, &nf), rc = rel_err(c, g->f32, n, &nf), rs = rel_err(s, g->f32, n, &nf);
        printf("    bf16 mode vs f32 golden %.3g (> %.3g), CHW patches %.3g, x/y swapped %.3g (> %.3g)\n", rb, F32_BOUND,
               rc, rs, BF16_BOUND);
        CHECK(rb > F32_BOUND, "the f32 bound does not separate bf16 from f32 math");
        CHECK(rc > BF16_BOUND && rs > BF16_BOUND, "a CHW or x/y mix-up would pass");
    }
    free(b); free(c); free(s); free(chw); free(swp);
    g4t_free(gf);
}

/* positions must lie inside the table; clear one-line errors, nothing written */
static void test_position_errors(void)
{
    image im;
    if (get_image(2, &im)) return;      /* 5x1 */
    int pos[10];
    float *out = malloc((size_t)5 * model.cfg.d_model * sizeof(float));
    g4_err e;
    for (int t = 0; t < 5; t++) { pos[2 * t] = 60 + t; pos[2 * t + 1] = 0; }   /* columns 60..64 */
    int rc = g4_vision_embed(&model, &g4_kernels_ref, im.patches, pos, 5, out, 0, &e);
    printf("    %s\n", rc ? e.msg : "(accepted)");
    CHECK(rc != 0 && strstr(e.msg, "image grid of 65 x 1 patches exceeds the position table (64)"), "x out of range");
    for (int t = 0; t < 5; t++) { pos[2 * t] = 0; pos[2 * t + 1] = 64 + t; }
    rc = g4_vision_embed(&model, &g4_kernels_ref, im.patches, pos, 5, out, 0, &e);
    CHECK(rc != 0 && strstr(e.msg, "image grid of 1 x 69 patches exceeds the position table (64)"), "y out of range: %s",
          e.msg);
    pos[4] = -1; pos[5] = -1;
    rc = g4_vision_embed(&model, &g4_kernels_ref, im.patches, pos, 5, out, 0, &e);
    CHECK(rc != 0 && strstr(e.msg, "patch 2 has position (-1, -1)"), "padding position: %s", e.msg);
    /* the last valid row and column are fine */
    for (int t = 0; t < 5; t++) { pos[2 * t] = 63 - t; pos[2 * t + 1] = 63; }
    CHECK(g4_vision_embed(&model, &g4_kernels_ref, im.patches, pos, 5, out, 0, &e) == 0, "63 is valid: %s", e.msg);
    CHECK(g4_vision_embed(&model, &g4_kernels_ref, im.patches, pos, 0, out, 0, &e) == 0, "0 patches: nothing to do");
    /* a model without vision weights */
    g4_model text;
    if (g4_model_load(&text, "golden/tiny/model.safetensors", &e) == 0) {
        CHECK(!text.mm.has_vision && !text.mm.has_audio, "text-only checkpoint: no embedders, no error");
        rc = g4_vision_embed(&text, &g4_kernels_ref, im.patches, pos, 5, out, 0, &e);
        CHECK(rc != 0 && strstr(e.msg, "no vision embedder"), "no vision: %s", e.msg);
        g4_model_free(&text);
    } else {
        CHECK(0, "load golden/tiny: %s", e.msg);
    }
    free(out);
}

/* chunking: more patches than one internal batch (64) give the same rows as one at a time */
static void test_chunks_equal_single(void)
{
    image im;
    if (get_image(0, &im)) return;
    const int n = 150, d = model.cfg.d_model;
    float *p = malloc((size_t)n * G4_PATCH_DIM * sizeof(float)), *all = malloc((size_t)n * d * sizeof(float));
    float *one = malloc((size_t)d * sizeof(float));
    int *pos = malloc((size_t)n * 2 * sizeof(int));
    for (int t = 0; t < n; t++) {
        memcpy(p + (size_t)t * G4_PATCH_DIM, im.patches + (size_t)(t % im.n) * G4_PATCH_DIM, G4_PATCH_DIM * sizeof(float));
        pos[2 * t] = t % 15; pos[2 * t + 1] = t / 15;
    }
    g4_err e;
    CHECK(g4_vision_embed(&model, &g4_kernels_ref, p, pos, n, all, 1, &e) == 0, "%s", e.msg);
    int same = 1;
    for (int t = 0; t < n && same; t++) {
        g4_vision_embed(&model, &g4_kernels_ref, p + (size_t)t * G4_PATCH_DIM, pos + 2 * t, 1, one, 1, &e);
        same = memcmp(one, all + (size_t)t * d, (size_t)d * sizeof(float)) == 0;
    }
    CHECK(same, "150 patches at once (3 chunks) != one at a time");
    free(p); free(all); free(one); free(pos);
}

int main(void)
{
    g4_err e;
    char err[512];
    if (g4_model_load(&model, "golden/tiny_mm/model.safetensors", &e)) { printf("FAIL load: %s\n", e.msg); return 1; }
    if (!(inputs = g4t_load("golden/tiny_mm/inputs.g4t", err, sizeof err))) { printf("FAIL %s\n", err); return 1; }
    RUN(test_model_has_vision);
    RUN(test_f32);
    RUN(test_bf16);
    RUN(test_bounds_can_fail);
    RUN(test_position_errors);
    RUN(test_chunks_equal_single);
    g4t_free(inputs);
    g4_model_free(&model);
    return h_finish();
}

/* test_mmproj.c - ref/mmproj.c: the GGUF mmproj path (spec 5.3) against the safetensors path
 * (spec 5.1), on the tiny_mm golden checkpoint (golden/tiny_mm/, golden/gen_mm.py).
 *
 *  - g4_mmproj_write writes the published layout; g4_mmproj_load of that file gives embeddings
 *    BIT-IDENTICAL to the safetensors weights for the golden images (f32 and bf16 mode) and the
 *    golden audio clips: the loader undoes the CHW permutation and the position planes exactly,
 *    so every sum runs in the same order. Both as an mmproj on top of the safetensors model and
 *    on top of a text GGUF of the same model (whose config lacks the embedder sizes).
 *  - The file really is in the published layout: GGUF column i of v.patch_embd.weight and entry
 *    i of v.patch_norm.1.* hold HF column/entry perm[i] = row*144 + col*3 + ch for the CHW index
 *    i = ch*2304 + row*48 + col (spec 2.2); v.position_embd.weight is planes [2][P][D]; and a
 *    llama.cpp-style evaluation (CHW patch vector straight into the GGUF weights) agrees with the
 *    HF-order evaluation.
 *  - The comparison can fail: an mmproj written WITHOUT the permutation (or with the position
 *    table not split into planes) gives embeddings far from the safetensors ones.
 * Run from the repository root.
 */
#include "g4.h"
#include "golden.h"
#include "harness.h"

#include <unistd.h>

static g4_model st;            /* golden/tiny_mm/model.safetensors */
static g4t_file *inputs;
static char tmpdir[64], mmproj_path[128];

static int chw_to_hwc(int i)
{
    const int ch = i / (48 * 48), row = (i / 48) % 48, col = i % 48;
    return (row * 48 + col) * 3 + ch;
}

static const g4t_tensor *in_get(const char *fmt, int k)
{
    char name[64];
    snprintf(name, sizeof name, fmt, k);
    return g4t_get(inputs, name);
}

/* embeddings of all golden images (then clips) with model m; malloc'd, *n values */
static float *all_embeddings(const g4_model *m, int bf16, long *n)
{
    const int d = m->cfg.d_model;
    long total = 0;
    for (int k = 0; k < 3; k++) total += (long)in_get("image%d.patches", k)->dims[0] * d;
    for (int k = 0; k < 2; k++) total += (long)in_get("clip%d.frames", k)->dims[0] * d;
    float *out = calloc((size_t)total, sizeof(float)), *o = out;
    g4_err e;
    for (int k = 0; k < 3; k++) {
        const g4t_tensor *p = in_get("image%d.patches", k), *q = in_get("image%d.pos", k);
        CHECK(g4_vision_embed(m, &g4_kernels_ref, p->f32, q->i32, (int)p->dims[0], o, bf16, &e) == 0, "%s", e.msg);
        o += p->dims[0] * d;
    }
    for (int k = 0; k < 2; k++) {
        const g4t_tensor *f = in_get("clip%d.frames", k);
        CHECK(g4_audio_embed(m, &g4_kernels_ref, f->f32, (int)f->dims[0], o, bf16, &e) == 0, "%s", e.msg);
        o += f->dims[0] * d;
    }
    *n = total;
    return out;
}

/* same embeddings bit for bit? returns max |diff| (0 = identical) */
static double compare_models(const g4_model *a, const g4_model *b, int bf16, int *identical)
{
    long na, nb;
    float *x = all_embeddings(a, bf16, &na), *y = all_embeddings(b, bf16, &nb);
    int nf;
    double mx = h_maxdiff(x, y, na, &nf);
    *identical = na == nb && !nf && memcmp(x, y, (size_t)na * sizeof(float)) == 0;
    free(x); free(y);
    return nf ? INFINITY : mx;
}

static void test_write_and_load_identical(void)
{
    g4_err e;
    CHECK(g4_mmproj_write(&st, mmproj_path, &e) == 0, "write: %s", e.msg);
    g4_model m;
    if (g4_model_load(&m, "golden/tiny_mm/model.safetensors", &e)) { CHECK(0, "%s", e.msg); return; }
    const void *old_dense = m.mm.patch_dense.data;
    CHECK(g4_mmproj_load(&m, mmproj_path, &e) == 0, "load mmproj: %s", e.msg);
    CHECK(m.mmproj && m.mm.has_vision && m.mm.has_audio && m.mm.patch_dense.data != old_dense,
          "the mmproj's embedders replaced the checkpoint's");
    CHECK(m.mm.patch_dense.type == G4_T_F32 && st.mm.patch_dense.type == G4_T_BF16,
          "patch_embd is f32 in the file (as published), bf16 in the checkpoint");
    for (int bf16 = 0; bf16 < 2; bf16++) {
        int same;
        double mx = compare_models(&st, &m, bf16, &same);
        printf("    %s: safetensors vs GGUF mmproj, 21 patches + 5 frames: max |diff| %g%s\n", bf16 ? "bf16" : "f32 ",
               mx, same ? " (bit-identical)" : "");
        CHECK(same, "GGUF mmproj and safetensors embeddings differ (%s)", bf16 ? "bf16" : "f32");
    }
    /* loading again replaces the first mmproj (no leak, still identical) */
    CHECK(g4_mmproj_load(&m, mmproj_path, &e) == 0, "reload: %s", e.msg);
    int same;
    compare_models(&st, &m, 1, &same);
    CHECK(same, "after a reload");
    g4_model_free(&m);
}

/* a text GGUF (no embedder sizes, no token strings) + the mmproj */
static void test_text_gguf_plus_mmproj(void)
{
    g4_err e;
    char tpath[160];
    snprintf(tpath, sizeof tpath, "%s/text.gguf", tmpdir);
    CHECK(g4_model_write_gguf(&st, tpath, G4_T_NONE, &e) == 0, "write text gguf: %s", e.msg);
    g4_model m;
    if (g4_model_load(&m, tpath, &e)) { CHECK(0, "%s", e.msg); unlink(tpath); return; }
    CHECK(!m.mm.has_vision && m.cfg.mm_dim == 0 && m.cfg.mm_posemb == 0 && m.cfg.audio_dim == 0,
          "a text GGUF has no embedders and no sizes");
    CHECK(g4_mmproj_load(&m, mmproj_path, &e) == 0, "mmproj on a text gguf: %s", e.msg);
    CHECK(m.cfg.mm_dim == 96 && m.cfg.mm_posemb == 64 && m.cfg.audio_dim == 640, "sizes from the mmproj: %d %d %d",
          m.cfg.mm_dim, m.cfg.mm_posemb, m.cfg.audio_dim);
    CHECK(g4_config_check(&m.cfg, &e) == 0, "config still valid: %s", e.msg);
    int same;
    compare_models(&st, &m, 0, &same);
    CHECK(same, "text GGUF + mmproj embeddings differ from the safetensors model");
    g4_model_free(&m);
    unlink(tpath);
}

/* the file is in the published layout */
static void test_published_layout(void)
{
    g4_err e;
    g4_gguf *g = g4_gguf_open(mmproj_path, &e);
    if (!g) { CHECK(0, "%s", e.msg); return; }
    char s[64];
    CHECK(g4_gguf_get_str(g, "general.architecture", s, sizeof s) == 0 && strcmp(s, "clip") == 0, "arch clip");
    CHECK(g4_gguf_get_str(g, "clip.vision.projector_type", s, sizeof s) == 0 && strcmp(s, "gemma4uv") == 0, "gemma4uv");
    CHECK(g4_gguf_get_str(g, "clip.audio.projector_type", s, sizeof s) == 0 && strcmp(s, "gemma4ua") == 0, "gemma4ua");
    int64_t v;
    CHECK(g4_gguf_get_int(g, "clip.vision.embedding_length", &v) == 0 && v == 96, "embedding_length 96");
    CHECK(g4_gguf_get_int(g, "clip.vision.projection_dim", &v) == 0 && v == 128, "projection_dim 128");
    CHECK(g4_gguf_get_int(g, "clip.vision.patch_size", &v) == 0 && v == 16, "patch_size 16 (x3 merge)");
    CHECK(g4_gguf_get_int(g, "clip.audio.embedding_length", &v) == 0 && v == 640, "audio embedding_length 640");

    const g4_tensor *W = g4_gguf_tensor(g, "v.patch_embd.weight"), *L = g4_gguf_tensor(g, "v.patch_norm.1.weight");
    const g4_tensor *B = g4_gguf_tensor(g, "v.patch_norm.1.bias"), *Pt = g4_gguf_tensor(g, "v.position_embd.weight");
    if (!W || !L || !B || !Pt) { CHECK(0, "tensors missing"); g4_gguf_close(g); return; }
    CHECK(W->type == G4_T_F32 && W->ne[0] == 6912 && W->ne[1] == 96, "v.patch_embd.weight f32 [6912, 96]");
    CHECK(Pt->n_dims == 3 && Pt->ne[0] == 96 && Pt->ne[1] == 64 && Pt->ne[2] == 2, "v.position_embd.weight [96, 64, 2]");
    /* column i of the file = HF column perm[i]; and the permutation is not the identity */
    float *hf = malloc(6912 * sizeof(float)), *gg = malloc(6912 * sizeof(float));
    int ok = 1, moved = 0;
    for (int r = 0; r < 96; r++) {
        g4_dequant_row(st.mm.patch_dense.type, (const uint8_t *)st.mm.patch_dense.data + r * g4_row_bytes(st.mm.patch_dense.type, 6912), hf, 6912);
        g4_dequant_row(W->type, (const uint8_t *)W->data + r * g4_row_bytes(W->type, 6912), gg, 6912);
        for (int i = 0; i < 6912; i++) {
            if (gg[i] != hf[chw_to_hwc(i)]) ok = 0;
            if (gg[i] != hf[i]) moved++;
        }
    }
    const float *lw = L->data, *lb = B->data;
    for (int i = 0; i < 6912; i++)
        if (lw[i] != st.mm.ln1_w[chw_to_hwc(i)] || lb[i] != st.mm.ln1_b[chw_to_hwc(i)]) ok = 0;
    CHECK(ok, "file column i != HF column perm[i]");
    CHECK(moved > 96 * 6000, "the columns are really permuted (%d of %d differ from HF order)", moved, 96 * 6912);
    printf("    patch_embd: %d of %d entries differ from HF order; all equal HF[perm[i]]\n", moved, 96 * 6912);
    /* example indices of the permutation, spelled out */
    CHECK(chw_to_hwc(0) == 0 && chw_to_hwc(1) == 3 && chw_to_hwc(48) == 144 && chw_to_hwc(2304) == 1 &&
          chw_to_hwc(6911) == 6911 && chw_to_hwc(4607) == 6910, "perm examples");
    /* planes: plane p, row i = HF pos[i][p] */
    const float *pl = Pt->data;
    ok = 1;
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 64; i++)
            for (int k = 0; k < 96; k++)
                if (pl[((size_t)p * 64 + i) * 96 + k] != st.mm.pos[((size_t)i * 2 + p) * 96 + k]) ok = 0;
    CHECK(ok, "v.position_embd.weight plane p row i != pos_embedding[i][p]");

    /* llama.cpp's way: a CHW patch vector through the GGUF ln1 + patch_embd equals the HF-order
     * HWC vector through the checkpoint's weights (sums in another order: ~1e-6 apart) */
    const g4t_tensor *pt = in_get("image%d.patches", 0);
    float *hwc = malloc(6912 * sizeof(float)), *chw = malloc(6912 * sizeof(float));
    double maxd = 0, maxv = 0;
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < 6912; i++) hwc[i] = g4_round_bf16(pt->f32[(size_t)t * 6912 + i]);
        for (int i = 0; i < 6912; i++) chw[i] = hwc[chw_to_hwc(i)];   /* im2col's order */
        g4_kernels_ref.layernorm(hwc, hwc, st.mm.ln1_w, st.mm.ln1_b, 6912, 1e-5f);
        g4_kernels_ref.layernorm(chw, chw, lw, lb, 6912, 1e-5f);
        for (int r = 0; r < 96; r++) {
            float a = g4_dot_row(st.mm.patch_dense.type, (const uint8_t *)st.mm.patch_dense.data + r * g4_row_bytes(st.mm.patch_dense.type, 6912), hwc, 6912);
            float b = g4_dot_row(W->type, (const uint8_t *)W->data + r * g4_row_bytes(W->type, 6912), chw, 6912);
            if (fabs(a - b) > maxd) maxd = fabs(a - b);
            if (fabs(a) > maxv) maxv = fabs(a);
        }
    }
    printf("    llama.cpp-style CHW evaluation vs HF order: max |diff| %.3g of max %.3g\n", maxd, maxv);
    /* fp32 sums of 6912 terms in two orders: ~sqrt(6912) * 2^-24 relative; 1e-4 leaves room */
    CHECK(maxd <= 1e-4 * maxv, "CHW evaluation with the GGUF weights does not match (%g)", maxd);
    free(hf); free(gg); free(hwc); free(chw);
    g4_gguf_close(g);
}

/* an mmproj written without the permutation / without planes must NOT match: the test above
 * would catch a loader or writer that skipped them */
static void write_variant(const char *path, int unpermuted, int no_planes)
{
    g4_err e;
    g4_gguf *g = g4_gguf_open(mmproj_path, &e);
    if (!g) { CHECK(0, "%s", e.msg); return; }
    g4_gguf_writer *w = g4_gguf_writer_new();
    /* the same metadata */
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const g4_gguf_kv *kv = &g->kv[i];
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.s);
        if (kv->val.type == G4_GGUF_STRING) {
            char v[128];
            snprintf(v, sizeof v, "%.*s", (int)kv->val.v.str.len, kv->val.v.str.s);
            g4_gguf_add_str(w, key, v);
        } else if (kv->val.type == G4_GGUF_BOOL) g4_gguf_add_bool(w, key, (int)kv->val.v.u);
        else if (kv->val.type == G4_GGUF_F32) g4_gguf_add_f32(w, key, (float)kv->val.v.f);
        else if (kv->val.type == G4_GGUF_U32) g4_gguf_add_u32(w, key, (uint32_t)kv->val.v.u);
    }
    float *ln = malloc(2 * 6912 * sizeof(float)), *dense = malloc((size_t)96 * 6912 * sizeof(float));
    float *pos = malloc((size_t)64 * 2 * 96 * sizeof(float));
    for (int i = 0; i < 6912; i++) { ln[i] = st.mm.ln1_w[i]; ln[6912 + i] = st.mm.ln1_b[i]; }
    for (int r = 0; r < 96; r++)
        g4_dequant_row(st.mm.patch_dense.type, (const uint8_t *)st.mm.patch_dense.data + r * g4_row_bytes(st.mm.patch_dense.type, 6912), dense + (size_t)r * 6912, 6912);
    memcpy(pos, st.mm.pos, (size_t)64 * 2 * 96 * sizeof(float));   /* HF layout [P][2][D] */
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const g4_tensor *t = &g->tensors[i];
        const void *data = t->data;
        if (unpermuted && strcmp(t->name, "v.patch_norm.1.weight") == 0) data = ln;
        if (unpermuted && strcmp(t->name, "v.patch_norm.1.bias") == 0) data = ln + 6912;
        if (unpermuted && strcmp(t->name, "v.patch_embd.weight") == 0) data = dense;
        if (no_planes && strcmp(t->name, "v.position_embd.weight") == 0) data = pos;
        g4_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, data);
    }
    CHECK(g4_gguf_write(w, path, NULL, NULL, &e) == 0, "%s", e.msg);
    g4_gguf_writer_free(w);
    g4_gguf_close(g);
    free(ln); free(dense); free(pos);
}

static void test_skipped_permutation_is_caught(void)
{
    const char *what[2] = { "HWC columns (permutation skipped)", "position table not in planes" };
    for (int k = 0; k < 2; k++) {
        char path[160];
        snprintf(path, sizeof path, "%s/variant%d.gguf", tmpdir, k);
        write_variant(path, k == 0, k == 1);
        g4_model m;
        g4_err e;
        if (g4_model_load(&m, "golden/tiny_mm/model.safetensors", &e)) { CHECK(0, "%s", e.msg); return; }
        CHECK(g4_mmproj_load(&m, path, &e) == 0, "%s", e.msg);
        int same;
        double mx = compare_models(&st, &m, 0, &same);
        printf("    mmproj with %s: max |diff| %.3g\n", what[k], mx);
        CHECK(!same && mx > 0.1, "an mmproj with %s gives the same embeddings: the check is blind", what[k]);
        g4_model_free(&m);
        unlink(path);
    }
}

/* vision-only and audio-only mmprojs */
static void test_single_modality(void)
{
    g4_model v = st;           /* a shallow copy that only pretends to lack audio/vision */
    g4_err e;
    char path[160];
    snprintf(path, sizeof path, "%s/one.gguf", tmpdir);
    for (int k = 0; k < 2; k++) {
        v.mm = st.mm;
        if (k == 0) v.mm.has_audio = 0; else v.mm.has_vision = 0;
        CHECK(g4_mmproj_write(&v, path, &e) == 0, "%s", e.msg);
        g4_model m;
        if (g4_model_load(&m, "golden/tiny/model.safetensors", &e)) { CHECK(0, "%s", e.msg); return; }
        /* a text-only config: sizes come from the mmproj */
        int rc = g4_mmproj_load(&m, path, &e);
        CHECK(rc == 0, "%s-only mmproj: %s", k ? "audio" : "vision", e.msg);
        CHECK(rc == 0 && m.mm.has_vision == (k == 0) && m.mm.has_audio == (k == 1), "modalities of a %s-only mmproj",
              k ? "audio" : "vision");
        g4_model_free(&m);
    }
    unlink(path);
}

int main(void)
{
    g4_err e;
    char err[512];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/g4_test_mmproj_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL mkdtemp\n"); return 1; }
    snprintf(mmproj_path, sizeof mmproj_path, "%s/mmproj.gguf", tmpdir);
    if (g4_model_load(&st, "golden/tiny_mm/model.safetensors", &e)) { printf("FAIL load: %s\n", e.msg); return 1; }
    if (!(inputs = g4t_load("golden/tiny_mm/inputs.g4t", err, sizeof err))) { printf("FAIL %s\n", err); return 1; }
    RUN(test_write_and_load_identical);
    RUN(test_text_gguf_plus_mmproj);
    RUN(test_published_layout);
    RUN(test_skipped_permutation_is_caught);
    RUN(test_single_modality);
    unlink(mmproj_path);
    rmdir(tmpdir);
    g4t_free(inputs);
    g4_model_free(&st);
    return h_finish();
}

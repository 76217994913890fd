/* test_bad_mmproj.c - broken multimodal weights give ONE clear error line naming the file, no
 * crash, no leak (this file is also built and run under ASan + UBSan by `make test`).
 *
 * GGUF mmproj (g4_mmproj_load, spec 5.3): files derived from a good mmproj written by
 * g4_mmproj_write for golden/tiny_mm, each with one defect: wrong architecture, wrong projector
 * type, no projector, a missing tensor, wrong shapes (a transposed projection among them), an
 * unsupported vector or position-table type, metadata that contradicts the model, a truncated
 * file, not a GGUF, a missing file. After every failure the model keeps its previous embedders.
 * HF safetensors (g4_mm_bind_safetensors via g4_model_load, spec 5.1): a partial set of vision
 * tensors, a wrong position-table shape, a transposed projection, vision/audio tensors without
 * vision_config/audio_config; and the transformers module names as a good variant.
 * Run from the repository root.
 */
#include "g4.h"
#include "harness.h"

#include <sys/stat.h>
#include <unistd.h>

static g4_model model;         /* golden/tiny_mm */
static char tmpdir[64], good[128];

/* ---- GGUF variants ----------------------------------------------------------------------- */
typedef struct {
    const char *arch;          /* general.architecture override */
    const char *vproj;         /* clip.vision.projector_type override */
    int no_flags;              /* drop has_* flags and projector types */
    const char *drop;          /* tensor left out */
    const char *reshape;       /* tensor whose last dim shrinks by one */
    int transpose_proj;        /* mm.input_projection.weight with ne swapped */
    const char *q8;            /* tensor re-encoded as Q8_0 */
    const char *key; int64_t key_val;   /* an integer key overridden */
} bad;

static void write_bad(const char *path, const bad *b)
{
    g4_err e;
    g4_gguf *g = g4_gguf_open(good, &e);
    if (!g) { CHECK(0, "%s", e.msg); return; }
    g4_gguf_writer *w = g4_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const g4_gguf_kv *kv = &g->kv[i];
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.s);
        if (b->no_flags && (strstr(key, "has_") || strstr(key, "projector_type"))) continue;
        if (kv->val.type == G4_GGUF_STRING) {
            char v[128];
            snprintf(v, sizeof v, "%.*s", (int)kv->val.v.str.len, kv->val.v.str.s);
            if (b->arch && strcmp(key, "general.architecture") == 0) snprintf(v, sizeof v, "%s", b->arch);
            if (b->vproj && strcmp(key, "clip.vision.projector_type") == 0) snprintf(v, sizeof v, "%s", b->vproj);
            g4_gguf_add_str(w, key, v);
        } else if (kv->val.type == G4_GGUF_BOOL) {
            g4_gguf_add_bool(w, key, (int)kv->val.v.u);
        } else if (kv->val.type == G4_GGUF_F32) {
            g4_gguf_add_f32(w, key, (float)kv->val.v.f);
        } else if (kv->val.type == G4_GGUF_U32) {
            g4_gguf_add_u32(w, key, (uint32_t)(b->key && strcmp(key, b->key) == 0 ? b->key_val : (int64_t)kv->val.v.u));
        }
    }
    void *q8buf = NULL;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const g4_tensor *t = &g->tensors[i];
        if (b->drop && strcmp(t->name, b->drop) == 0) continue;
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        g4_type type = t->type;
        const void *data = t->data;
        if (b->reshape && strcmp(t->name, b->reshape) == 0) ne[t->n_dims - 1] -= 1;
        if (b->transpose_proj && strcmp(t->name, "mm.input_projection.weight") == 0) { ne[0] = t->ne[1]; ne[1] = t->ne[0]; }
        if (b->q8 && strcmp(t->name, b->q8) == 0) {
            const int64_t n = g4_tensor_nelem(t);
            float *f = malloc((size_t)n * sizeof(float));
            g4_dequant_row(t->type, t->data, f, n);
            q8buf = malloc(g4_row_bytes(G4_T_Q8_0, n));
            g4_quant_row(G4_T_Q8_0, f, q8buf, n);
            free(f);
            type = G4_T_Q8_0;
            data = q8buf;
        }
        g4_gguf_add_tensor(w, t->name, type, t->n_dims, ne, data);
    }
    CHECK(g4_gguf_write(w, path, NULL, NULL, &e) == 0, "writing the variant: %s", e.msg);
    g4_gguf_writer_free(w);
    g4_gguf_close(g);
    free(q8buf);
}

/* load `path` into the model: must fail with `want` and the path in one line; model unchanged */
static void expect_fail(const char *path, const char *want)
{
    g4_err e = {{0}};
    const void *dense = model.mm.patch_dense.data;
    const int D = model.cfg.mm_dim;
    int rc = g4_mmproj_load(&model, path, &e);
    printf("    %s\n", rc ? e.msg : "(accepted)");
    CHECK(rc != 0 && strstr(e.msg, path) && strstr(e.msg, want) && !strchr(e.msg, '\n'), "want '%s', got '%s'", want,
          rc ? e.msg : "success");
    CHECK(model.mmproj == NULL && model.mm.has_vision && model.mm.patch_dense.data == dense && model.cfg.mm_dim == D,
          "a failed load changed the model");
}

static void gguf_case(int k, const bad *b, const char *want)
{
    char path[160];
    snprintf(path, sizeof path, "%s/bad%d.gguf", tmpdir, k);
    write_bad(path, b);
    expect_fail(path, want);
    unlink(path);
}

static void test_bad_gguf_mmproj(void)
{
    int k = 0;
    gguf_case(k++, &(bad){ .arch = "gemma4" }, "general.architecture is 'gemma4', expected 'clip'");
    gguf_case(k++, &(bad){ .vproj = "gemma3" }, "vision projector_type is 'gemma3'; g4 supports gemma4uv");
    gguf_case(k++, &(bad){ .no_flags = 1 }, "no vision (gemma4uv) or audio (gemma4ua) projector");
    gguf_case(k++, &(bad){ .drop = "v.patch_norm.3.bias" }, "missing tensor v.patch_norm.3.bias");
    gguf_case(k++, &(bad){ .drop = "v.position_embd.weight" }, "missing tensor v.position_embd.weight");
    gguf_case(k++, &(bad){ .drop = "mm.a.input_projection.weight" }, "missing tensor mm.a.input_projection.weight");
    gguf_case(k++, &(bad){ .reshape = "v.patch_embd.weight" }, "v.patch_embd.weight has shape [6912, 95, 1]");
    gguf_case(k++, &(bad){ .reshape = "v.position_embd.weight" }, "v.position_embd.weight has shape [96, 64, 1]");
    gguf_case(k++, &(bad){ .reshape = "v.patch_norm.2.weight" }, "v.patch_norm.2.weight has");
    gguf_case(k++, &(bad){ .transpose_proj = 1 }, "mm.input_projection.weight has shape [128, 96, 1] (ggml order), expected [96, 128]");
    gguf_case(k++, &(bad){ .q8 = "v.patch_norm.2.weight" }, "vectors must be f32/f16/bf16, not q8_0");
    gguf_case(k++, &(bad){ .q8 = "v.position_embd.weight" }, "v.position_embd.weight: type q8_0 unsupported");
    gguf_case(k++, &(bad){ .key = "clip.vision.embedding_length", .key_val = 95 }, "embedding_length 95 != the model's vision width 96");
    gguf_case(k++, &(bad){ .key = "clip.vision.projection_dim", .key_val = 64 }, "clip.vision.projection_dim = 64, expected 128");
    gguf_case(k++, &(bad){ .key = "clip.audio.embedding_length", .key_val = 320 }, "clip.audio.embedding_length = 320, expected 640");
    gguf_case(k++, &(bad){ .key = "clip.vision.patch_size", .key_val = 14 }, "clip.vision.patch_size 14");

    /* truncated: the GGUF reader's error, naming the file */
    char path[160];
    snprintf(path, sizeof path, "%s/trunc.gguf", tmpdir);
    FILE *in = fopen(good, "rb"), *out = fopen(path, "wb");
    if (in && out) {
        fseek(in, 0, SEEK_END);
        long n = ftell(in) / 2;
        fseek(in, 0, SEEK_SET);
        char *buf = malloc((size_t)n);
        if (fread(buf, 1, (size_t)n, in) == (size_t)n) fwrite(buf, 1, (size_t)n, out);
        free(buf);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    expect_fail(path, "");
    unlink(path);
    expect_fail("golden/tiny_mm/model.safetensors", "");        /* not a GGUF */
    snprintf(path, sizeof path, "%s/none.gguf", tmpdir);
    expect_fail(path, "");                                      /* missing */
    /* and a good one still loads afterwards */
    g4_err e;
    CHECK(g4_mmproj_load(&model, good, &e) == 0, "good mmproj: %s", e.msg);
}

/* ---- safetensors variants ---------------------------------------------------------------- */
static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[4096];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b) fclose(b);
    return ok ? 0 : -1;
}

typedef struct {
    const char *config;        /* tests/data/config/<config>/config.json */
    const char *drop;          /* tensor left out */
    int pos_shape;             /* pos_embedding as [64, 2, 95] */
    int transpose_proj;        /* vision projection stored [96, 128] */
    int module_names;          /* transformers' in-memory names for the vision tensors */
    int no_vision;             /* drop every vision tensor */
} stbad;

/* write a checkpoint folder from the golden model's tensors with one change; load it */
static int st_load(const stbad *b, g4_model *m, g4_err *e, char *dir_out)
{
    static int serial;
    char dir[128], path[192], cfg[192];
    snprintf(dir, sizeof dir, "%s/st%d", tmpdir, serial++);
    mkdir(dir, 0755);
    snprintf(cfg, sizeof cfg, "tests/data/config/%s/config.json", b->config);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (copy_file(cfg, path)) { CHECK(0, "copy %s", cfg); return -2; }
    const g4_st *st = model.st;
    g4_tensor *t = calloc((size_t)st->n_tensors, sizeof *t);
    int n = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        g4_tensor x = st->tensors[i];
        const int vis = strstr(x.name, "vision") != NULL;
        if ((b->drop && strcmp(x.name, b->drop) == 0) || (b->no_vision && vis)) continue;
        if (b->pos_shape && strstr(x.name, "pos_embedding")) { x.ne[0] = 95; x.nbytes = (size_t)95 * 2 * 64 * 2; }
        if (b->transpose_proj && strcmp(x.name, "model.embed_vision.embedding_projection.weight") == 0) {
            int64_t r = x.ne[1]; x.ne[1] = x.ne[0]; x.ne[0] = r;
        }
        if (b->module_names && strncmp(x.name, "model.vision_embedder.", 22) == 0) {
            char nm[sizeof x.name];
            memcpy(nm, x.name + 22, sizeof nm - 22);      /* the part after model.vision_embedder. */
            nm[sizeof nm - 22] = 0;
            snprintf(x.name, sizeof x.name, "model.embed_vision.%.70s", nm);
        } else if (b->module_names && strcmp(x.name, "model.embed_vision.embedding_projection.weight") == 0) {
            snprintf(x.name, sizeof x.name, "model.embed_vision.multimodal_embedder.embedding_projection.weight");
        }
        t[n++] = x;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int rc = g4_st_write(path, t, n, e);
    free(t);
    if (rc) { CHECK(0, "st write: %s", e->msg); return -2; }
    if (dir_out) strcpy(dir_out, path);
    return g4_model_load(m, path, e);
}

static void st_cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s/st*", tmpdir);
    if (system(cmd)) printf("    (cleanup failed)\n");
}

static void st_expect_fail(const stbad *b, const char *want)
{
    g4_model m;
    g4_err e = {{0}};
    char path[192] = "";
    int rc = st_load(b, &m, &e, path);
    if (rc == -2) return;
    printf("    %s\n", rc ? e.msg : "(accepted)");
    CHECK(rc != 0 && strstr(e.msg, path) && strstr(e.msg, want), "want '%s', got '%s'", want, rc ? e.msg : "success");
    if (rc == 0) g4_model_free(&m);
}

static void test_bad_safetensors(void)
{
    st_expect_fail(&(stbad){ .config = "tiny", .drop = "model.vision_embedder.pos_norm.bias" },
                   "missing tensor model.vision_embedder.pos_norm.bias (the checkpoint has 9 of the 10 vision tensors)");
    st_expect_fail(&(stbad){ .config = "tiny", .pos_shape = 1 },
                   "model.vision_embedder.pos_embedding has shape [95, 2, 64] (ggml order), expected [96, 2, 64]");
    st_expect_fail(&(stbad){ .config = "tiny", .transpose_proj = 1 },
                   "model.embed_vision.embedding_projection.weight has shape [128, 96, 1] (ggml order), expected [96, 128]");
    st_expect_fail(&(stbad){ .config = "tiny_textonly" }, "has no vision_config");
    st_expect_fail(&(stbad){ .config = "tiny_textonly", .no_vision = 1 }, "model.embed_audio.embedding_projection.weight but its config.json has no audio_config");
    /* good variants: module names; no vision tensors at all (audio only) */
    g4_model m;
    g4_err e;
    int rc = st_load(&(stbad){ .config = "tiny", .module_names = 1 }, &m, &e, NULL);
    CHECK(rc == 0 && m.mm.has_vision && m.mm.has_audio, "transformers module names load: %s", rc ? e.msg : "");
    if (rc == 0) {
        float pv[2][G4_PATCH_DIM], a[2 * 128], b[2 * 128];
        int pos[4] = { 0, 0, 3, 2 };
        for (int i = 0; i < 2 * G4_PATCH_DIM; i++) pv[i / G4_PATCH_DIM][i % G4_PATCH_DIM] = (float)((i * 37) % 256) / 255.0f;
        g4_vision_embed(&m, &g4_kernels_ref, pv[0], pos, 2, a, 0, &e);
        g4_vision_embed(&model, &g4_kernels_ref, pv[0], pos, 2, b, 0, &e);
        g4_model_free(&m);
        CHECK(memcmp(a, b, sizeof a) == 0, "module names give the same embedder");
    }
    rc = st_load(&(stbad){ .config = "tiny", .no_vision = 1 }, &m, &e, NULL);
    CHECK(rc == 0 && !m.mm.has_vision && m.mm.has_audio, "audio-only checkpoint: %s", rc ? e.msg : "");
    if (rc == 0) g4_model_free(&m);
    st_cleanup();
}

int main(void)
{
    g4_err e;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/g4_test_badmm_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL mkdtemp\n"); return 1; }
    snprintf(good, sizeof good, "%s/good.gguf", tmpdir);
    if (g4_model_load(&model, "golden/tiny_mm/model.safetensors", &e)) { printf("FAIL load: %s\n", e.msg); return 1; }
    if (g4_mmproj_write(&model, good, &e)) { printf("FAIL write: %s\n", e.msg); return 1; }
    RUN(test_bad_gguf_mmproj);
    RUN(test_bad_safetensors);
    g4_model_free(&model);
    unlink(good);
    rmdir(tmpdir);
    return h_finish();
}

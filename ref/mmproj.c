/* mmproj.c - the vision and audio embedder weights (g4_mm) from an HF safetensors checkpoint or a
 * GGUF mmproj, and a writer of the published GGUF mmproj layout (for tests and conversions).
 *
 * Stage: model files, multimodal part (spec 2.2, 2.3, 3, 5.1, 5.3, 7.11, 7.12).
 * Input:  an open safetensors checkpoint (m->st) or a GGUF mmproj file; m->cfg (d_model; the
 *         embedder sizes mm_dim / mm_posemb / audio_dim when known).
 * Output: m->mm in HF order (patch vectors HWC, the position table [mm_posemb][2][mm_dim]):
 *         small vectors and the position table as fp32 copies owned by the model, matrices as
 *         views into the file, except patch_dense from a GGUF mmproj, which is an owned copy
 *         with its columns permuted back to HWC (see below).
 *
 * HF safetensors names (spec 5.1). The released checkpoint and transformers' save_pretrained
 * (checked with transformers 5.23: it writes the legacy names back) use the on-disk names
 *     model.vision_embedder.{patch_ln1, patch_dense, patch_ln2, pos_norm}.{weight, bias}
 *     model.vision_embedder.pos_embedding                       [P, 2, D]
 *     model.embed_vision.embedding_projection.weight            [d_model, D]
 *     model.embed_audio.embedding_projection.weight             [d_model, 640]
 * and transformers' in-memory module names are accepted as well:
 *     model.embed_vision.{patch_ln1, ..., pos_norm, pos_embedding}
 *     model.embed_vision.multimodal_embedder.embedding_projection.weight
 * (D = mm_dim, P = mm_posemb). A checkpoint without any of them is text-only (no error).
 *
 * GGUF mmproj (spec 5.3): general.architecture "clip", clip.vision.projector_type "gemma4uv",
 * clip.audio.projector_type "gemma4ua" (or the single clip.projector_type), tensors
 *     v.patch_norm.1.{weight,bias} [6912]          patch_ln1, entries in CHW order
 *     v.patch_embd.weight          [6912, D]       patch_dense, columns in CHW order
 *     v.patch_embd.bias            [D]
 *     v.patch_norm.2.{weight,bias} [D]             patch_ln2
 *     v.position_embd.weight       [D, P, 2]       planes: [2][P][D], plane 0 = x, 1 = y
 *     v.patch_norm.3.{weight,bias} [D]             pos_norm
 *     mm.input_projection.weight   [D, d_model]    embed_vision.embedding_projection
 *     mm.a.input_projection.weight [640, d_model]  embed_audio.embedding_projection
 * (ggml shapes, ne0 first). llama.cpp builds patch vectors with im2col, which emits CHW order
 * (channel, row, col), so its converter permuted the 6912 inputs: GGUF column i, the CHW index
 *     i = ch*48*48 + row*48 + col,
 * holds HF column perm[i] = row*48*3 + col*3 + ch (the HWC index of the same pixel). g4 feeds
 * HWC vectors, so the loader undoes the permutation ONCE: hwc[perm[i]] = gguf[i] for the ln1
 * weight/bias and for every row of patch_embd (an owned copy: kept in its type for f32/f16/
 * bf16, exact; dequantized to f32 for block types, also exact). The position planes are copied
 * to the HF layout [P][2][D]. Then the GGUF and safetensors paths compute exactly the same sums
 * in the same order: bit-identical embeddings. Every tensor is checked against the config; all
 * errors are one line naming the file.
 */
#include "g4.h"

#include <stdlib.h>
#include <string.h>

/* HWC index of the pixel whose CHW index is i (48x48x3 patch) */
static int chw_to_hwc(int i)
{
    const int ch = i / (G4_PATCH * G4_PATCH), row = (i / G4_PATCH) % G4_PATCH, col = i % G4_PATCH;
    return (row * G4_PATCH + col) * 3 + ch;
}

/* ---- shared checks ----------------------------------------------------------------------- */

/* a vector of n values (f32/f16/bf16) -> fp32 owned by the model; perm: CHW -> HWC */
static float *own_vector(g4_model *m, const g4_tensor *t, int64_t n, int perm, const char *path, g4_err *err)
{
    if (g4_tensor_nelem(t) != n || t->ne[0] != n) {
        g4_fail(err, "%s: tensor %s has %lld values (ne0 %lld), expected %lld", path, t->name,
                (long long)g4_tensor_nelem(t), (long long)t->ne[0], (long long)n);
        return NULL;
    }
    if (t->type != G4_T_F32 && t->type != G4_T_F16 && t->type != G4_T_BF16) {
        g4_fail(err, "%s: tensor %s: vectors must be f32/f16/bf16, not %s", path, t->name,
                g4_type_name(t->type) ? g4_type_name(t->type) : "?");
        return NULL;
    }
    float *v = g4_model_own(m, (size_t)n * sizeof(float));
    float *tmp = perm ? malloc((size_t)n * sizeof(float)) : NULL;
    if (!v || (perm && !tmp)) { free(tmp); g4_fail(err, "%s: out of memory", path); return NULL; }
    if (perm) {
        g4_dequant_row(t->type, t->data, tmp, n);
        for (int64_t i = 0; i < n; i++) v[chw_to_hwc((int)i)] = tmp[i];
        free(tmp);
    } else {
        g4_dequant_row(t->type, t->data, v, n);
    }
    return v;
}

/* a matrix of rows x cols (ne = [cols, rows]) in a type g4 can compute with */
static int check_matrix(const g4_tensor *t, int64_t rows, int64_t cols, const char *path, g4_err *err)
{
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return g4_fail(err, "%s: tensor %s has shape [%lld, %lld, %lld] (ggml order), expected [%lld, %lld]", path,
                       t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)cols,
                       (long long)rows);
    if (!g4_type_name(t->type) || g4_type_block(t->type) <= 0 || cols % g4_type_block(t->type) != 0)
        return g4_fail(err, "%s: tensor %s: type %s unsupported for a %lld-column matrix", path, t->name,
                       g4_type_name(t->type) ? g4_type_name(t->type) : "?", (long long)cols);
    return 0;
}

/* ---- HF safetensors ---------------------------------------------------------------------- */

enum { V_LN1_W, V_LN1_B, V_DENSE_W, V_DENSE_B, V_LN2_W, V_LN2_B, V_POS, V_PN_W, V_PN_B, V_PROJ, V_N };

/* [on-disk legacy name, transformers module name] */
static const char *const st_vision[V_N][2] = {
    { "model.vision_embedder.patch_ln1.weight", "model.embed_vision.patch_ln1.weight" },
    { "model.vision_embedder.patch_ln1.bias", "model.embed_vision.patch_ln1.bias" },
    { "model.vision_embedder.patch_dense.weight", "model.embed_vision.patch_dense.weight" },
    { "model.vision_embedder.patch_dense.bias", "model.embed_vision.patch_dense.bias" },
    { "model.vision_embedder.patch_ln2.weight", "model.embed_vision.patch_ln2.weight" },
    { "model.vision_embedder.patch_ln2.bias", "model.embed_vision.patch_ln2.bias" },
    { "model.vision_embedder.pos_embedding", "model.embed_vision.pos_embedding" },
    { "model.vision_embedder.pos_norm.weight", "model.embed_vision.pos_norm.weight" },
    { "model.vision_embedder.pos_norm.bias", "model.embed_vision.pos_norm.bias" },
    { "model.embed_vision.embedding_projection.weight",
      "model.embed_vision.multimodal_embedder.embedding_projection.weight" },
};
static const char *const st_audio = "model.embed_audio.embedding_projection.weight";

static const g4_tensor *st_find(const g4_st *st, const char *const names[2])
{
    const g4_tensor *t = g4_st_tensor(st, names[0]);
    return t ? t : g4_st_tensor(st, names[1]);
}

int g4_mm_bind_safetensors(g4_model *m, const char *path, g4_err *err)
{
    if (!m->st) return 0;
    const g4_config *c = &m->cfg;
    const int64_t D = c->mm_dim, P = c->mm_posemb, d = c->d_model;
    const g4_tensor *vt[V_N];
    int nv = 0;
    for (int i = 0; i < V_N; i++) nv += (vt[i] = st_find(m->st, st_vision[i])) != NULL;
    const g4_tensor *at = g4_st_tensor(m->st, st_audio);
    g4_mm mm;
    memset(&mm, 0, sizeof mm);

    if (nv) {
        if (D <= 0)
            return g4_fail(err, "%s: the checkpoint has vision tensors (%s) but its config.json has no vision_config",
                           path, vt[0] ? vt[0]->name : st_vision[0][0]);
        for (int i = 0; i < V_N; i++)
            if (!vt[i]) return g4_fail(err, "%s: missing tensor %s (the checkpoint has %d of the %d vision tensors)",
                                       path, st_vision[i][0], nv, V_N);
        const g4_tensor *pos = vt[V_POS];
        if (pos->n_dims != 3 || pos->ne[0] != D || pos->ne[1] != 2 || pos->ne[2] != P)
            return g4_fail(err, "%s: tensor %s has shape [%lld, %lld, %lld] (ggml order), expected [%lld, 2, %lld]",
                           path, pos->name, (long long)pos->ne[0], (long long)pos->ne[1], (long long)pos->ne[2],
                           (long long)D, (long long)P);
        if (!(mm.ln1_w = own_vector(m, vt[V_LN1_W], G4_PATCH_DIM, 0, path, err)) ||
            !(mm.ln1_b = own_vector(m, vt[V_LN1_B], G4_PATCH_DIM, 0, path, err)) ||
            !(mm.patch_b = own_vector(m, vt[V_DENSE_B], D, 0, path, err)) ||
            !(mm.ln2_w = own_vector(m, vt[V_LN2_W], D, 0, path, err)) ||
            !(mm.ln2_b = own_vector(m, vt[V_LN2_B], D, 0, path, err)) ||
            !(mm.pos_norm_w = own_vector(m, vt[V_PN_W], D, 0, path, err)) ||
            !(mm.pos_norm_b = own_vector(m, vt[V_PN_B], D, 0, path, err)))
            return -1;
        /* [P][2][D]: the HF layout is g4's, one flat conversion */
        if (pos->type != G4_T_F32 && pos->type != G4_T_F16 && pos->type != G4_T_BF16)
            return g4_fail(err, "%s: tensor %s: type %s unsupported (f32/f16/bf16)", path, pos->name,
                           g4_type_name(pos->type) ? g4_type_name(pos->type) : "?");
        if (!(mm.pos = g4_model_own(m, (size_t)(P * 2 * D) * sizeof(float))))
            return g4_fail(err, "%s: out of memory", path);
        g4_dequant_row(pos->type, pos->data, mm.pos, P * 2 * D);
        if (check_matrix(vt[V_DENSE_W], D, G4_PATCH_DIM, path, err) || check_matrix(vt[V_PROJ], d, D, path, err))
            return -1;
        mm.patch_dense = *vt[V_DENSE_W];
        mm.vis_proj = *vt[V_PROJ];
        mm.has_vision = 1;
    }
    if (at) {
        if (c->audio_dim <= 0)
            return g4_fail(err, "%s: the checkpoint has %s but its config.json has no audio_config", path, st_audio);
        if (check_matrix(at, d, c->audio_dim, path, err)) return -1;
        mm.aud_proj = *at;
        mm.has_audio = 1;
    }
    if (mm.has_vision || mm.has_audio) m->mm = mm;
    return 0;
}

/* ---- GGUF mmproj ------------------------------------------------------------------------- */

static const g4_tensor *gg_need(const g4_gguf *g, const char *name, const char *path, g4_err *err)
{
    const g4_tensor *t = g4_gguf_tensor(g, name);
    if (!t) g4_fail(err, "%s: missing tensor %s", path, name);
    return t;
}

/* an optional integer key that must equal `want` when present */
static int gg_expect(const g4_gguf *g, const char *key, int64_t want, const char *path, g4_err *err)
{
    int64_t v;
    const g4_gguf_value *val = g4_gguf_get(g, key);
    if (!val) return 0;
    if (g4_gguf_get_int(g, key, &v) != 0 || val->type == G4_GGUF_BOOL)
        return g4_fail(err, "%s: %s is not an integer", path, key);
    if (v != want) return g4_fail(err, "%s: %s = %lld, expected %lld", path, key, (long long)v, (long long)want);
    return 0;
}

/* projector type of one modality: the modality's key, else the generic clip.projector_type */
static void gg_projector(const g4_gguf *g, const char *key, char *out, size_t cap)
{
    if (g4_gguf_get_str(g, key, out, cap) != 0) g4_gguf_get_str(g, "clip.projector_type", out, cap);
}

/* a bool key: 1/0, or -1 when absent */
static int gg_bool(const g4_gguf *g, const char *key)
{
    const g4_gguf_value *v = g4_gguf_get(g, key);
    if (!v || v->type != G4_GGUF_BOOL) return -1;
    return v->v.u != 0;
}

/* patch_embd [6912 cols CHW, D rows] -> an owned copy with HWC columns */
static int own_patch_dense(g4_model *m, const g4_tensor *t, g4_tensor *dst, const char *path, g4_err *err)
{
    const int64_t cols = G4_PATCH_DIM, rows = t->ne[1];
    const int keep = t->type == G4_T_F32 || t->type == G4_T_F16 || t->type == G4_T_BF16;
    const g4_type ot = keep ? t->type : G4_T_F32;
    const size_t es = ot == G4_T_F32 ? 4 : 2, irb = g4_row_bytes(t->type, cols);
    uint8_t *o = g4_model_own(m, (size_t)(rows * cols) * es);
    float *tmp = keep ? NULL : malloc((size_t)cols * sizeof(float));
    if (!o || (!keep && !tmp)) { free(tmp); return g4_fail(err, "%s: out of memory", path); }
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *in = (const uint8_t *)t->data + (size_t)r * irb;
        uint8_t *out = o + (size_t)(r * cols) * es;
        if (keep) {
            for (int64_t i = 0; i < cols; i++) memcpy(out + (size_t)chw_to_hwc((int)i) * es, in + (size_t)i * es, es);
        } else {
            g4_dequant_row(t->type, in, tmp, cols);
            for (int64_t i = 0; i < cols; i++) memcpy(out + (size_t)chw_to_hwc((int)i) * 4, &tmp[i], 4);
        }
    }
    free(tmp);
    *dst = *t;
    dst->type = ot;
    dst->data = o;
    dst->nbytes = (size_t)(rows * cols) * es;
    return 0;
}

static int bind_gguf_vision(g4_model *m, const g4_gguf *g, g4_mm *mm, int *D_out, int *P_out, const char *path,
                            g4_err *err)
{
    const g4_config *c = &m->cfg;
    const int64_t d = c->d_model;
    int64_t D;
    if (g4_gguf_get_int(g, "clip.vision.embedding_length", &D) != 0 || D < 1 || D > (1 << 16))
        return g4_fail(err, "%s: clip.vision.embedding_length missing or not in 1..65536", path);
    if (c->mm_dim && D != c->mm_dim)
        return g4_fail(err, "%s: clip.vision.embedding_length %lld != the model's vision width %d", path, (long long)D,
                       c->mm_dim);
    if (gg_expect(g, "clip.vision.projection_dim", d, path, err)) return -1;
    /* llama.cpp stores the teacher patch size (16) and merges 3x3; 48 means merged already */
    int64_t ps;
    if (g4_gguf_get_int(g, "clip.vision.patch_size", &ps) == 0 && ps != G4_PATCH / 3 && ps != G4_PATCH)
        return g4_fail(err, "%s: clip.vision.patch_size %lld: gemma4uv uses 16 (x 3 merge = 48)", path, (long long)ps);
    double eps;
    if (g4_gguf_get_float(g, "clip.vision.attention.layer_norm_epsilon", &eps) == 0 && (float)eps != c->eps)
        return g4_fail(err, "%s: clip.vision.attention.layer_norm_epsilon %g != the model's RMSNorm eps %g", path, eps,
                       c->eps);
    const g4_tensor *t;
    /* position table: ggml [D, P, 2] = planes [2][P][D] */
    if (!(t = gg_need(g, "v.position_embd.weight", path, err))) return -1;
    const int64_t P = t->ne[1];
    if (t->n_dims != 3 || t->ne[0] != D || t->ne[2] != 2 || P < 1 || (c->mm_posemb && P != c->mm_posemb))
        return g4_fail(err, "%s: tensor %s has shape [%lld, %lld, %lld] (ggml order), expected [%lld, %d, 2]", path,
                       t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)D,
                       c->mm_posemb ? c->mm_posemb : (int)P);
    if (t->type != G4_T_F32 && t->type != G4_T_F16 && t->type != G4_T_BF16)
        return g4_fail(err, "%s: tensor %s: type %s unsupported (f32/f16/bf16)", path, t->name,
                       g4_type_name(t->type) ? g4_type_name(t->type) : "?");
    mm->pos = g4_model_own(m, (size_t)(P * 2 * D) * sizeof(float));
    if (!mm->pos) return g4_fail(err, "%s: out of memory", path);
    const size_t rb = g4_row_bytes(t->type, D);
    for (int64_t plane = 0; plane < 2; plane++)
        for (int64_t i = 0; i < P; i++)
            g4_dequant_row(t->type, (const uint8_t *)t->data + (size_t)(plane * P + i) * rb, mm->pos + (i * 2 + plane) * D, D);

    if (!(t = gg_need(g, "v.patch_norm.1.weight", path, err)) || !(mm->ln1_w = own_vector(m, t, G4_PATCH_DIM, 1, path, err)) ||
        !(t = gg_need(g, "v.patch_norm.1.bias", path, err)) || !(mm->ln1_b = own_vector(m, t, G4_PATCH_DIM, 1, path, err)) ||
        !(t = gg_need(g, "v.patch_embd.bias", path, err)) || !(mm->patch_b = own_vector(m, t, D, 0, path, err)) ||
        !(t = gg_need(g, "v.patch_norm.2.weight", path, err)) || !(mm->ln2_w = own_vector(m, t, D, 0, path, err)) ||
        !(t = gg_need(g, "v.patch_norm.2.bias", path, err)) || !(mm->ln2_b = own_vector(m, t, D, 0, path, err)) ||
        !(t = gg_need(g, "v.patch_norm.3.weight", path, err)) || !(mm->pos_norm_w = own_vector(m, t, D, 0, path, err)) ||
        !(t = gg_need(g, "v.patch_norm.3.bias", path, err)) || !(mm->pos_norm_b = own_vector(m, t, D, 0, path, err)))
        return -1;
    if (!(t = gg_need(g, "v.patch_embd.weight", path, err)) || check_matrix(t, D, G4_PATCH_DIM, path, err) ||
        own_patch_dense(m, t, &mm->patch_dense, path, err))
        return -1;
    if (!(t = gg_need(g, "mm.input_projection.weight", path, err)) || check_matrix(t, d, D, path, err)) return -1;
    mm->vis_proj = *t;
    mm->has_vision = 1;
    *D_out = (int)D;
    *P_out = (int)P;
    return 0;
}

static int bind_gguf_audio(g4_model *m, const g4_gguf *g, g4_mm *mm, const char *path, g4_err *err)
{
    const g4_config *c = &m->cfg;
    if (gg_expect(g, "clip.audio.embedding_length", G4_AUDIO_FRAME, path, err) ||
        gg_expect(g, "clip.audio.projection_dim", c->d_model, path, err))
        return -1;
    double eps;
    if (g4_gguf_get_float(g, "clip.audio.attention.layer_norm_epsilon", &eps) == 0 && (float)eps != c->eps)
        return g4_fail(err, "%s: clip.audio.attention.layer_norm_epsilon %g != the model's RMSNorm eps %g", path, eps,
                       c->eps);
    const g4_tensor *t = gg_need(g, "mm.a.input_projection.weight", path, err);
    if (!t || check_matrix(t, c->d_model, G4_AUDIO_FRAME, path, err)) return -1;
    mm->aud_proj = *t;
    mm->has_audio = 1;
    return 0;
}

int g4_mmproj_load(g4_model *m, const char *path, g4_err *err)
{
    g4_gguf *g = g4_gguf_open(path, err);
    if (!g) return -1;
    char arch[64], vtype[64] = "", atype[64] = "";
    g4_mm mm;
    memset(&mm, 0, sizeof mm);
    int D = 0, P = 0;
    if (g4_gguf_get_str(g, "general.architecture", arch, sizeof arch) != 0 || strcmp(arch, "clip") != 0) {
        g4_fail(err, "%s: general.architecture is '%s', expected 'clip' (a GGUF mmproj)", path, arch);
        goto fail;
    }
    gg_projector(g, "clip.vision.projector_type", vtype, sizeof vtype);
    gg_projector(g, "clip.audio.projector_type", atype, sizeof atype);
    /* which encoders: the has_* flags, else whichever projector types name this model */
    int hv = gg_bool(g, "clip.has_vision_encoder"), ha = gg_bool(g, "clip.has_audio_encoder");
    if (hv < 0) hv = g4_gguf_get(g, "clip.vision.projector_type") != NULL || strcmp(vtype, "gemma4uv") == 0;
    if (ha < 0) ha = g4_gguf_get(g, "clip.audio.projector_type") != NULL || strcmp(atype, "gemma4ua") == 0;
    if (hv && strcmp(vtype, "gemma4uv") != 0) {
        g4_fail(err, "%s: vision projector_type is '%s'; g4 supports gemma4uv (Gemma 4 unified)", path, vtype);
        goto fail;
    }
    if (ha && strcmp(atype, "gemma4ua") != 0) {
        g4_fail(err, "%s: audio projector_type is '%s'; g4 supports gemma4ua (Gemma 4 unified)", path, atype);
        goto fail;
    }
    if (!hv && !ha) {
        g4_fail(err, "%s: no vision (gemma4uv) or audio (gemma4ua) projector in this mmproj", path);
        goto fail;
    }
    if (hv && bind_gguf_vision(m, g, &mm, &D, &P, path, err)) goto fail;
    if (ha && bind_gguf_audio(m, g, &mm, path, err)) goto fail;
    /* success: the new embedders replace any earlier ones; sizes join the config */
    if (m->mmproj) g4_gguf_close(m->mmproj);
    m->mmproj = g;
    m->mm = mm;
    if (hv) { m->cfg.mm_dim = D; m->cfg.mm_posemb = P; }
    if (ha) m->cfg.audio_dim = G4_AUDIO_FRAME;
    return 0;
fail:
    g4_gguf_close(g);
    return -1;
}

/* ---- GGUF mmproj writer ------------------------------------------------------------------ */

typedef struct { const g4_tensor *t; float hwc[G4_PATCH_DIM]; } dense_src;

/* one row of patch_embd in the published CHW column order: gguf[i] = hwc[perm[i]] */
static void dense_row(void *ctx, int64_t row, float *out)
{
    dense_src *s = ctx;
    const g4_tensor *t = s->t;
    g4_dequant_row(t->type, (const uint8_t *)t->data + (size_t)row * g4_row_bytes(t->type, G4_PATCH_DIM), s->hwc,
                   G4_PATCH_DIM);
    for (int i = 0; i < G4_PATCH_DIM; i++) out[i] = s->hwc[chw_to_hwc(i)];
}

int g4_mmproj_write(const g4_model *m, const char *path, g4_err *err)
{
    const g4_mm *mm = &m->mm;
    const g4_config *c = &m->cfg;
    if (!mm->has_vision && !mm->has_audio)
        return g4_fail(err, "%s: the model has no vision or audio embedder to write", path);
    const int64_t D = c->mm_dim, P = c->mm_posemb, d = c->d_model;
    g4_gguf_writer *w = g4_gguf_writer_new();
    float *ln1 = mm->has_vision ? malloc(2 * G4_PATCH_DIM * sizeof(float)) : NULL;
    float *planes = mm->has_vision ? malloc((size_t)(2 * P * D) * sizeof(float)) : NULL;
    dense_src *ds = mm->has_vision ? malloc(sizeof *ds) : NULL;
    if (!w || (mm->has_vision && (!ln1 || !planes || !ds))) {
        free(ln1); free(planes); free(ds); g4_gguf_writer_free(w);
        return g4_fail(err, "%s: out of memory", path);
    }
    g4_gguf_add_str(w, "general.architecture", "clip");
    g4_gguf_add_str(w, "general.name", "g4 mmproj");
    g4_gguf_add_bool(w, "clip.has_vision_encoder", mm->has_vision);
    g4_gguf_add_bool(w, "clip.has_audio_encoder", mm->has_audio);
    if (mm->has_vision) {
        static const float mean[3] = { 0, 0, 0 }, stdv[3] = { 1, 1, 1 };
        g4_gguf_add_str(w, "clip.vision.projector_type", "gemma4uv");
        g4_gguf_add_u32(w, "clip.vision.embedding_length", (uint32_t)D);
        g4_gguf_add_u32(w, "clip.vision.projection_dim", (uint32_t)d);
        g4_gguf_add_u32(w, "clip.vision.patch_size", G4_PATCH / 3);
        g4_gguf_add_u32(w, "clip.vision.image_size", 224);
        g4_gguf_add_arr(w, "clip.vision.image_mean", G4_GGUF_F32, mean, 3);
        g4_gguf_add_arr(w, "clip.vision.image_std", G4_GGUF_F32, stdv, 3);
        g4_gguf_add_u32(w, "clip.vision.block_count", 0);
        g4_gguf_add_u32(w, "clip.vision.attention.head_count", 0);
        g4_gguf_add_u32(w, "clip.vision.feed_forward_length", 0);
        g4_gguf_add_f32(w, "clip.vision.attention.layer_norm_epsilon", c->eps);
        /* ln1 in CHW order; the position table as planes [2][P][D] */
        for (int i = 0; i < G4_PATCH_DIM; i++) {
            ln1[i] = mm->ln1_w[chw_to_hwc(i)];
            ln1[G4_PATCH_DIM + i] = mm->ln1_b[chw_to_hwc(i)];
        }
        for (int64_t plane = 0; plane < 2; plane++)
            for (int64_t i = 0; i < P; i++)
                memcpy(planes + (plane * P + i) * D, mm->pos + (i * 2 + plane) * D, (size_t)D * sizeof(float));
        ds->t = &mm->patch_dense;
        const int64_t ne_ln1[1] = { G4_PATCH_DIM }, ne_d[1] = { D };
        const int64_t ne_dense[2] = { G4_PATCH_DIM, D }, ne_pos[3] = { D, P, 2 };
        g4_gguf_add_tensor(w, "v.patch_norm.1.weight", G4_T_F32, 1, ne_ln1, ln1);
        g4_gguf_add_tensor(w, "v.patch_norm.1.bias", G4_T_F32, 1, ne_ln1, ln1 + G4_PATCH_DIM);
        g4_gguf_add_tensor_rows(w, "v.patch_embd.weight", G4_T_F32, 2, ne_dense, dense_row, ds);
        g4_gguf_add_tensor(w, "v.patch_embd.bias", G4_T_F32, 1, ne_d, mm->patch_b);
        g4_gguf_add_tensor(w, "v.patch_norm.2.weight", G4_T_F32, 1, ne_d, mm->ln2_w);
        g4_gguf_add_tensor(w, "v.patch_norm.2.bias", G4_T_F32, 1, ne_d, mm->ln2_b);
        g4_gguf_add_tensor(w, "v.position_embd.weight", G4_T_F32, 3, ne_pos, planes);
        g4_gguf_add_tensor(w, "v.patch_norm.3.weight", G4_T_F32, 1, ne_d, mm->pos_norm_w);
        g4_gguf_add_tensor(w, "v.patch_norm.3.bias", G4_T_F32, 1, ne_d, mm->pos_norm_b);
        g4_gguf_add_tensor(w, "mm.input_projection.weight", mm->vis_proj.type, 2, mm->vis_proj.ne, mm->vis_proj.data);
    }
    if (mm->has_audio) {
        g4_gguf_add_str(w, "clip.audio.projector_type", "gemma4ua");
        g4_gguf_add_u32(w, "clip.audio.embedding_length", G4_AUDIO_FRAME);
        g4_gguf_add_u32(w, "clip.audio.projection_dim", (uint32_t)d);
        g4_gguf_add_u32(w, "clip.audio.num_mel_bins", 128);
        g4_gguf_add_u32(w, "clip.audio.block_count", 0);
        g4_gguf_add_u32(w, "clip.audio.attention.head_count", 0);
        g4_gguf_add_f32(w, "clip.audio.attention.layer_norm_epsilon", c->eps);
        g4_gguf_add_tensor(w, "mm.a.input_projection.weight", mm->aud_proj.type, 2, mm->aud_proj.ne, mm->aud_proj.data);
    }
    int r = g4_gguf_write(w, path, NULL, NULL, err);
    g4_gguf_writer_free(w);
    free(ln1); free(planes); free(ds);
    return r;
}

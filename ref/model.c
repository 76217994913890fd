/* model.c - the weight binder: model files -> one in-memory g4_model.
 *
 * Stage: model files (spec sections 5.1 and 5.2).
 * Input:  a GGUF file (general.architecture = gemma4, tensor names of spec 5.2), or HF
 *         safetensors (one file, a sharded index.json, or a folder) with config.json beside it
 *         and the checkpoint names of spec 5.1.
 * Output: g4_model: config + tensor views into the file map (matrices stay in their stored
 *         type, used in place) + fp32 copies of the small vectors (norm weights, layer scalars).
 *
 * Every tensor is checked against the config before use: present, a supported type, and the
 * exact shape. The rest of the code never sees a file format or a tensor name.
 */
#include "g4.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void *g4_model_own(g4_model *m, size_t bytes)
{
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p; m->cap_owned = cap;
    }
    void *b = calloc(1, bytes ? bytes : 1);
    if (b) m->owned[m->n_owned++] = b;
    return b;
}

void g4_model_free(g4_model *m)
{
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->gguf) g4_gguf_close(m->gguf);
    if (m->st) g4_st_close(m->st);
    if (m->mmproj) g4_gguf_close(m->mmproj);
    memset(m, 0, sizeof *m);
}

/* ---- binding ---------------------------------------------------------------------------- */

/* The names of one model's tensors in one file format. `layer` formats take the layer index. */
typedef struct {
    const char *embd, *out_norm;
    const char *attn_norm, *wq, *wk, *wv, *wo, *q_norm, *k_norm, *post_attn_norm;
    const char *ffn_norm, *w_gate, *w_up, *w_down, *post_ffn_norm, *scalar;
} names;

static const names gguf_names = {
    "token_embd.weight", "output_norm.weight",
    "blk.%d.attn_norm.weight", "blk.%d.attn_q.weight", "blk.%d.attn_k.weight",
    "blk.%d.attn_v.weight", "blk.%d.attn_output.weight", "blk.%d.attn_q_norm.weight",
    "blk.%d.attn_k_norm.weight", "blk.%d.post_attention_norm.weight", "blk.%d.ffn_norm.weight",
    "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight", "blk.%d.ffn_down.weight",
    "blk.%d.post_ffw_norm.weight", "blk.%d.layer_output_scale.weight",
};

/* HF checkpoint names without the prefix ("model.language_model." in the unified checkpoint,
 * "model." in a text-only save). */
static const names hf_names = {
    "embed_tokens.weight", "norm.weight",
    "layers.%d.input_layernorm.weight", "layers.%d.self_attn.q_proj.weight",
    "layers.%d.self_attn.k_proj.weight", "layers.%d.self_attn.v_proj.weight",
    "layers.%d.self_attn.o_proj.weight", "layers.%d.self_attn.q_norm.weight",
    "layers.%d.self_attn.k_norm.weight", "layers.%d.post_attention_layernorm.weight",
    "layers.%d.pre_feedforward_layernorm.weight", "layers.%d.mlp.gate_proj.weight",
    "layers.%d.mlp.up_proj.weight", "layers.%d.mlp.down_proj.weight",
    "layers.%d.post_feedforward_layernorm.weight", "layers.%d.layer_scalar",
};

typedef struct {
    g4_model *m;
    const names *nm;
    const char *prefix;
    const char *path;          /* for error messages */
    g4_err *err;
} binder;

static const g4_tensor *find(binder *b, const char *fmt, int layer)
{
    char name[160], full[200];
    snprintf(name, sizeof name, fmt, layer);
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    return b->m->gguf ? g4_gguf_tensor(b->m->gguf, full) : g4_st_tensor(b->m->st, full);
}

/* a matrix of `rows` x `cols` (ne = [cols, rows]); optional = may be absent (returns 1) */
static int bind_matrix(binder *b, g4_tensor *dst, const char *fmt, int layer, int64_t rows,
                       int64_t cols, int optional)
{
    const g4_tensor *t = find(b, fmt, layer);
    if (!t) {
        if (optional) { memset(dst, 0, sizeof *dst); dst->type = G4_T_NONE; return 1; }
        char name[160]; snprintf(name, sizeof name, fmt, layer);
        return g4_fail(b->err, "%s: missing tensor %s%s", b->path, b->prefix, name);
    }
    if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
        return g4_fail(b->err, "%s: tensor %s has shape [%lld, %lld] (ggml order), expected [%lld, %lld]",
                       b->path, t->name, (long long)t->ne[0], (long long)t->ne[1],
                       (long long)cols, (long long)rows);
    if (cols % g4_type_block(t->type) != 0)
        return g4_fail(b->err, "%s: tensor %s: row length %lld is not a multiple of the %s block",
                       b->path, t->name, (long long)cols, g4_type_name(t->type));
    *dst = *t;
    return 0;
}

/* a vector of n values, converted to fp32 and owned by the model */
static int bind_vector(binder *b, float **dst, const char *fmt, int layer, int64_t n)
{
    const g4_tensor *t = find(b, fmt, layer);
    if (!t) {
        char name[160]; snprintf(name, sizeof name, fmt, layer);
        return g4_fail(b->err, "%s: missing tensor %s%s", b->path, b->prefix, name);
    }
    if (g4_tensor_nelem(t) != n || t->ne[0] != n)
        return g4_fail(b->err, "%s: tensor %s has %lld values, expected %lld", b->path, t->name,
                       (long long)g4_tensor_nelem(t), (long long)n);
    if (t->type != G4_T_F32 && t->type != G4_T_F16 && t->type != G4_T_BF16)
        return g4_fail(b->err, "%s: tensor %s: vectors must be f32/f16/bf16, not %s", b->path,
                       t->name, g4_type_name(t->type));
    float *v = g4_model_own(b->m, (size_t)n * sizeof(float));
    if (!v) return g4_fail(b->err, "%s: out of memory", b->path);
    g4_dequant_row(t->type, t->data, v, n);
    *dst = v;
    return 0;
}

static int bind_all(binder *b)
{
    g4_model *m = b->m;
    const g4_config *c = &m->cfg;
    const names *nm = b->nm;
    const int d = c->d_model;
    if (bind_matrix(b, &m->tok_embd, nm->embd, 0, c->vocab, d, 0)) return -1;
    if (bind_vector(b, &m->out_norm, nm->out_norm, 0, d)) return -1;
    m->wtype = m->tok_embd.type;
    for (int l = 0; l < c->n_layers; l++) {
        g4_layer *L = &m->layers[l];
        const int hd = g4_hd(c, l), nkv = g4_nkv(c, l), nq = c->n_heads;
        if (bind_vector(b, &L->attn_norm, nm->attn_norm, l, d) ||
            bind_matrix(b, &L->wq, nm->wq, l, (int64_t)nq * hd, d, 0) ||
            bind_matrix(b, &L->wk, nm->wk, l, (int64_t)nkv * hd, d, 0) ||
            bind_matrix(b, &L->wo, nm->wo, l, d, (int64_t)nq * hd, 0) ||
            bind_vector(b, &L->q_norm, nm->q_norm, l, hd) ||
            bind_vector(b, &L->k_norm, nm->k_norm, l, hd) ||
            bind_vector(b, &L->post_attn_norm, nm->post_attn_norm, l, d) ||
            bind_vector(b, &L->ffn_norm, nm->ffn_norm, l, d) ||
            bind_matrix(b, &L->w_gate, nm->w_gate, l, c->d_ff, d, 0) ||
            bind_matrix(b, &L->w_up, nm->w_up, l, c->d_ff, d, 0) ||
            bind_matrix(b, &L->w_down, nm->w_down, l, d, c->d_ff, 0) ||
            bind_vector(b, &L->post_ffn_norm, nm->post_ffn_norm, l, d))
            return -1;
        /* K=V (spec 1.5 item 2): a global layer of a k_eq_v model has no v_proj; V is the raw
         * K projection. Every other layer must have one. */
        int kv_shared = c->k_eq_v && c->is_global[l];
        int r = bind_matrix(b, &L->wv, nm->wv, l, (int64_t)nkv * hd, d, kv_shared);
        if (r < 0) return -1;
        if (kv_shared && r == 0)
            return g4_fail(b->err, "%s: layer %d is a K=V global layer but has a v_proj tensor",
                           b->path, l);
        float *s;
        if (bind_vector(b, &s, nm->scalar, l, 1)) return -1;
        L->layer_scalar = s[0];
        if (L->wq.type != m->wtype) m->wtype = L->wq.type;  /* report the layers' type */
    }
    return 0;
}

/* ---- loading ---------------------------------------------------------------------------- */

static int load_gguf(g4_model *m, const char *path, g4_err *err)
{
    m->gguf = g4_gguf_open(path, err);
    if (!m->gguf) return -1;
    if (g4_config_from_gguf(m->gguf, &m->cfg, err) || g4_config_check(&m->cfg, err)) return -1;
    binder b = { m, &gguf_names, "", path, err };
    return bind_all(&b);
}

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }

static int load_safetensors(g4_model *m, const char *path, g4_err *err)
{
    /* config.json lives in the folder of the checkpoint */
    char dir[256], cfg[300];
    if (is_dir(path)) snprintf(dir, sizeof dir, "%s", path);
    else {
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (g4_config_from_json(cfg, &m->cfg, err) || g4_config_check(&m->cfg, err)) return -1;
    m->st = g4_st_open(path, err);
    if (!m->st) return -1;
    const char *prefix = g4_st_tensor(m->st, "model.language_model.embed_tokens.weight")
                             ? "model.language_model." : "model.";
    binder b = { m, &hf_names, prefix, path, err };
    if (bind_all(&b)) return -1;
    /* vision/audio embedders (ref/mmproj.c); a no-op for a text-only checkpoint */
    return g4_mm_bind_safetensors(m, path, err);
}

int g4_model_load(g4_model *m, const char *path, g4_err *err)
{
    memset(m, 0, sizeof *m);
    snprintf(m->source, sizeof m->source, "%s", path);
    int r;
    char magic[4] = {0};
    FILE *f = is_dir(path) ? NULL : fopen(path, "rb");
    if (!is_dir(path) && !f) return g4_fail(err, "%s: cannot open", path);
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) r = load_gguf(m, path, err);
    else r = load_safetensors(m, path, err);
    if (r) g4_model_free(m);
    return r;
}

/* ---- sizes ------------------------------------------------------------------------------ */

size_t g4_model_weight_bytes(const g4_model *m)
{
    const g4_config *c = &m->cfg;
    size_t n = m->tok_embd.nbytes + (size_t)c->d_model * 4;
    for (int l = 0; l < c->n_layers; l++) {
        const g4_layer *L = &m->layers[l];
        const g4_tensor *mats[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (int i = 0; i < 7; i++) if (mats[i]->type != G4_T_NONE) n += mats[i]->nbytes;
        n += (size_t)(4 * c->d_model + 2 * g4_hd(c, l) + 1) * 4;
    }
    /* the vision/audio embedders: matrices as stored, vectors and the position table in fp32 */
    const g4_mm *mm = &m->mm;
    if (mm->has_vision)
        n += mm->patch_dense.nbytes + mm->vis_proj.nbytes +
             ((size_t)2 * G4_PATCH_DIM + 5 * (size_t)c->mm_dim +
              (size_t)2 * c->mm_posemb * c->mm_dim) * sizeof(float);
    if (mm->has_audio) n += mm->aud_proj.nbytes;
    return n;
}

/* fp32 K and V rows; sliding layers keep a window-sized ring, global layers every position */
size_t g4_kv_bytes(const g4_config *c, int ctx)
{
    size_t n = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t keep = c->is_global[l] ? (size_t)ctx : (size_t)(ctx < c->window ? ctx : c->window);
        n += 2 * keep * (size_t)g4_nkv(c, l) * g4_hd(c, l) * sizeof(float);
    }
    return n;
}

/* ---- writing ---------------------------------------------------------------------------- */

void g4_config_write_gguf(g4_gguf_writer *w, const g4_config *c)
{
    int32_t kv[G4_MAX_LAYERS]; uint8_t swa[G4_MAX_LAYERS];
    for (int l = 0; l < c->n_layers; l++) { kv[l] = g4_nkv(c, l); swa[l] = !c->is_global[l]; }
    g4_gguf_add_str(w, "general.architecture", "gemma4");
    g4_gguf_add_u32(w, "gemma4.block_count", (uint32_t)c->n_layers);
    g4_gguf_add_u32(w, "gemma4.context_length", 262144);
    g4_gguf_add_u32(w, "gemma4.embedding_length", (uint32_t)c->d_model);
    g4_gguf_add_u32(w, "gemma4.embedding_length_per_layer_input", 0);
    g4_gguf_add_u32(w, "gemma4.feed_forward_length", (uint32_t)c->d_ff);
    g4_gguf_add_u32(w, "gemma4.attention.head_count", (uint32_t)c->n_heads);
    g4_gguf_add_arr(w, "gemma4.attention.head_count_kv", G4_GGUF_I32, kv, (uint64_t)c->n_layers);
    g4_gguf_add_u32(w, "gemma4.attention.key_length", (uint32_t)c->hd_full);
    g4_gguf_add_u32(w, "gemma4.attention.value_length", (uint32_t)c->hd_full);
    g4_gguf_add_u32(w, "gemma4.attention.key_length_swa", (uint32_t)c->hd_swa);
    g4_gguf_add_u32(w, "gemma4.attention.value_length_swa", (uint32_t)c->hd_swa);
    g4_gguf_add_f32(w, "gemma4.attention.layer_norm_rms_epsilon", c->eps);
    g4_gguf_add_u32(w, "gemma4.attention.shared_kv_layers", 0);
    g4_gguf_add_u32(w, "gemma4.attention.sliding_window", (uint32_t)c->window);
    g4_gguf_add_arr(w, "gemma4.attention.sliding_window_pattern", G4_GGUF_BOOL, swa, (uint64_t)c->n_layers);
    g4_gguf_add_f32(w, "gemma4.final_logit_softcapping", c->softcap);
    g4_gguf_add_u32(w, "gemma4.rope.dimension_count", (uint32_t)c->hd_full);
    g4_gguf_add_u32(w, "gemma4.rope.dimension_count_swa", (uint32_t)c->hd_swa);
    g4_gguf_add_f32(w, "gemma4.rope.freq_base", c->rope_theta_full);
    g4_gguf_add_f32(w, "gemma4.rope.freq_base_swa", c->rope_theta_swa);
    if (c->n_suppress)
        g4_gguf_add_arr(w, "tokenizer.ggml.suppress_tokens", G4_GGUF_I32, c->suppress,
                        (uint64_t)c->n_suppress);
}

/* the special ids as tokenizer.ggml.* keys, for a file without a vocabulary (a written
 * vocabulary carries its own: g4_tokenizer_write_gguf) */
void g4_config_write_gguf_ids(g4_gguf_writer *w, const g4_config *c)
{
    g4_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos);
    g4_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos);
    g4_gguf_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)c->pad);
}

/* re-encode a stored matrix row by row in another type */
typedef struct { const g4_tensor *t; } rowsrc;
static void row_from_tensor(void *ctx, int64_t row, float *out)
{
    const g4_tensor *t = ((rowsrc *)ctx)->t;
    const uint8_t *p = (const uint8_t *)t->data + row * g4_row_bytes(t->type, t->ne[0]);
    g4_dequant_row(t->type, p, out, t->ne[0]);
}

int g4_model_write_gguf(const g4_model *m, const char *path, g4_type wtype, g4_err *err)
{
    const g4_config *c = &m->cfg;
    g4_gguf_writer *w = g4_gguf_writer_new();
    if (!w) return g4_fail(err, "%s: out of memory", path);
    g4_config_write_gguf(w, c);
    g4_config_write_gguf_ids(w, c);
    g4_gguf_add_str(w, "general.name", m->source);

    /* matrices: kept as stored (wtype NONE) or re-encoded; the rowsrc contexts must live until
     * g4_gguf_write, so they sit in one array */
    int nmat = 1 + 7 * c->n_layers, im = 0;
    rowsrc *src = calloc((size_t)nmat, sizeof *src);
    /* layer scalars, then rope_freqs: llama.cpp's encoding of proportional RoPE (spec 1.5):
     * freq factor 1.0 for the rotated pairs, 1e30 (no rotation) for the rest */
    const int rot = (int)(c->rope_partial_full * c->hd_full / 2);
    float *vec = calloc((size_t)(c->n_layers + c->hd_full / 2), sizeof(float));
    if (!src || !vec) { free(src); free(vec); g4_gguf_writer_free(w); return g4_fail(err, "%s: out of memory", path); }
#define MAT(NAME, T) do { \
        const g4_tensor *t_ = (T); \
        if (t_->type != G4_T_NONE) { \
            if (wtype == G4_T_NONE || wtype == t_->type) \
                g4_gguf_add_tensor(w, NAME, t_->type, 2, t_->ne, t_->data); \
            else { src[im].t = t_; \
                g4_gguf_add_tensor_rows(w, NAME, wtype, 2, t_->ne, row_from_tensor, &src[im]); im++; } \
        } } while (0)
#define VEC(NAME, P, N) do { int64_t ne_[1] = { (N) }; \
        g4_gguf_add_tensor(w, NAME, G4_T_F32, 1, ne_, (P)); } while (0)
    char name[96];
    MAT("token_embd.weight", &m->tok_embd);
    VEC("output_norm.weight", m->out_norm, c->d_model);
    float *rf = vec + c->n_layers;
    for (int i = 0; i < c->hd_full / 2; i++) rf[i] = i < rot ? 1.0f : 1e30f;
    VEC("rope_freqs.weight", rf, c->hd_full / 2);
    for (int l = 0; l < c->n_layers; l++) {
        const g4_layer *L = &m->layers[l];
        const int hd = g4_hd(c, l);
#define LNAME(S) (snprintf(name, sizeof name, "blk.%d." S, l), name)
        VEC(LNAME("attn_norm.weight"), L->attn_norm, c->d_model);
        MAT(LNAME("attn_q.weight"), &L->wq);
        MAT(LNAME("attn_k.weight"), &L->wk);
        MAT(LNAME("attn_v.weight"), &L->wv);
        MAT(LNAME("attn_output.weight"), &L->wo);
        VEC(LNAME("attn_q_norm.weight"), L->q_norm, hd);
        VEC(LNAME("attn_k_norm.weight"), L->k_norm, hd);
        VEC(LNAME("post_attention_norm.weight"), L->post_attn_norm, c->d_model);
        VEC(LNAME("ffn_norm.weight"), L->ffn_norm, c->d_model);
        MAT(LNAME("ffn_gate.weight"), &L->w_gate);
        MAT(LNAME("ffn_up.weight"), &L->w_up);
        MAT(LNAME("ffn_down.weight"), &L->w_down);
        VEC(LNAME("post_ffw_norm.weight"), L->post_ffn_norm, c->d_model);
        vec[l] = L->layer_scalar;
        VEC(LNAME("layer_output_scale.weight"), &vec[l], 1);
#undef LNAME
    }
#undef MAT
#undef VEC
    int r = g4_gguf_write(w, path, NULL, NULL, err);
    g4_gguf_writer_free(w);
    free(src); free(vec);
    return r;
}

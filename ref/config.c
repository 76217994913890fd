/* config.c - the model configuration (g4_config): built-in shapes, reading it from a GGUF file or
 * from an HF config.json, sanity checks, and the text decoder's parameter count.
 *
 * Built-ins (spec 1.1, 1.2, 2.4, 3):
 *   "12b"  the released google/gemma-4-12B-it: 48 layers, global (full attention) at
 *          (l+1) % 6 == 0, d_model 3840, d_ff 15360, 16 query heads, KV heads 8 sliding / 1
 *          global, head_dim 256 / 512, vocab 262144, window 1024, RoPE theta 1e4 sliding / 1e6
 *          global with partial factor 0.25 (proportional), RMSNorm eps 1e-6, final soft-cap 30,
 *          K=V on global layers, bos 2 eos 1 pad 0, stop ids {1, 106, 50}, suppressed
 *          {258883 <audio|>, 258882 <image|>}. Multimodal: <|image> 255999, <image|> 258882,
 *          <|image|> 258880, <|audio> 256000, <audio|> 258883, <|audio|> 258881; vision
 *          embedder width 3840 with a 1120-row position table; audio frames of 640 samples.
 *   "tiny" the same architecture at toy size for tests and the default synthetic model:
 *          6 layers, global at (l+1) % 3 == 0 (layers 2 and 5), d_model 128, d_ff 256, 4 heads,
 *          KV heads 2 / 1, head_dim 32 / 64, vocab 512, window 8, the same thetas, partial
 *          factor, eps, soft-cap, K=V, bos/eos/pad and stop ids. Multimodal ids inside its vocab:
 *          <|image> 500, <|audio> 501, <|image|> 502, <|audio|> 503, <image|> 504, <audio|> 505
 *          (suppressed {505, 504} like the 12b); vision width 96 (deliberately != d_model 128, so
 *          a transposed projection cannot pass a test), 64 position rows, 640-sample frames.
 *
 * From GGUF (spec 5.2): the gemma4.* keys; per-layer head_count_kv; sliding_window_pattern
 * (bool per layer, true = sliding); K=V when the global layers have no blk.N.attn_v.weight;
 * the partial rotary factor from rope_freqs.weight (llama.cpp's encoding of proportional RoPE:
 * 1.0 for the rotated pairs, then a huge factor that stops rotation) or 0.25 when absent. The
 * multimodal ids are looked up by their token strings in tokenizer.ggml.tokens (without a
 * token list: the 12b ids when they fit the vocab); the embedder sizes stay 0 until a GGUF
 * mmproj is loaded (ref/mmproj.c fills them in).
 *
 * From config.json: model_type gemma4_unified (fields in text_config) or a bare
 * gemma4_unified_text config, with the defaults of transformers' Gemma4UnifiedTextConfig for
 * absent fields. Global layers take head_dim / num_key_value_heads from per_layer_config when
 * present (what transformers >= 5 writes), else from global_head_dim (default 512) and, when
 * attention_k_eq_v, num_global_key_value_heads (what the published checkpoint has). A
 * generation_config.json next to the config adds its eos ids to the stop list and gives the
 * suppressed ids. Multimodal: the top-level ids (image_token_id, boi_token_id, eoi_token_id,
 * audio_token_id, boa_token_id, eoa_token_index or eoa_token_id; transformers' defaults are the
 * 12b ids), vision_config (mm_embed_dim, mm_posemb_size, output_proj_dims which must equal
 * mm_embed_dim, patch_size * pooling_kernel_size which must be 48) and audio_config
 * (audio_embed_dim, which must be 640). Without a vision_config (audio_config) mm_dim and
 * mm_posemb (audio_dim) are 0 and ids outside the vocab become 0 ("absent").
 *
 * Stop ids: eos, plus 106 (<turn|>) and 50 (<|tool_response>) of the Gemma 4 chat format
 * (spec 6) when they are inside the vocab, plus any further eos ids the files list.
 */
#include "g4.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- built-ins --------------------------------------------------------------------------- */

/* ids of the Gemma 4 chat format (spec 6): <turn|> ends a turn, <|tool_response> stops too */
#define G4_TOK_END_TURN 106
#define G4_TOK_TOOL_RESPONSE 50
/* the 12b's multimodal ids (spec 2.4, 3); <audio|> and <image|> are also the end-of-media ids
 * that IT generation suppresses (spec 1.3 step 6) */
#define G4_TOK_BOI 255999
#define G4_TOK_EOI 258882
#define G4_TOK_IMAGE 258880
#define G4_TOK_BOA 256000
#define G4_TOK_EOA 258883
#define G4_TOK_AUDIO 258881

/* add a stop id once; -1 when the list (8 ids) is full */
static int add_stop(g4_config *c, int id)
{
    for (int k = 0; k < c->n_stop; k++) if (c->stop[k] == id) return 0;
    if (c->n_stop >= (int)(sizeof c->stop / sizeof c->stop[0])) return -1;
    c->stop[c->n_stop++] = id;
    return 0;
}

/* eos first, then the chat-format stop ids that fit in the vocab */
static void default_stops(g4_config *c)
{
    c->n_stop = 0;
    add_stop(c, c->eos);
    if (G4_TOK_END_TURN < c->vocab) add_stop(c, G4_TOK_END_TURN);
    if (G4_TOK_TOOL_RESPONSE < c->vocab) add_stop(c, G4_TOK_TOOL_RESPONSE);
}

/* suppressed: the end-of-media ids <audio|>, <image|> when set (0 = absent) and distinct */
static void default_suppress(g4_config *c)
{
    c->n_suppress = 0;
    if (c->eoa > 0 && c->eoa < c->vocab) c->suppress[c->n_suppress++] = c->eoa;
    if (c->eoi > 0 && c->eoi < c->vocab && c->eoi != c->eoa) c->suppress[c->n_suppress++] = c->eoi;
}

int g4_config_builtin(const char *name, g4_config *c)
{
    memset(c, 0, sizeof *c);
    int period;
    if (name && strcmp(name, "12b") == 0) {
        c->n_layers = 48; c->d_model = 3840; c->d_ff = 15360; c->n_heads = 16;
        c->n_kv_swa = 8; c->n_kv_full = 1; c->hd_swa = 256; c->hd_full = 512;
        c->vocab = 262144; c->window = 1024;
        c->boi = G4_TOK_BOI; c->eoi = G4_TOK_EOI; c->image_tok = G4_TOK_IMAGE;
        c->boa = G4_TOK_BOA; c->eoa = G4_TOK_EOA; c->audio_tok = G4_TOK_AUDIO;
        c->mm_dim = 3840; c->mm_posemb = 1120; c->audio_dim = 640;
        period = 6;
    } else if (name && strcmp(name, "tiny") == 0) {
        c->n_layers = 6; c->d_model = 128; c->d_ff = 256; c->n_heads = 4;
        c->n_kv_swa = 2; c->n_kv_full = 1; c->hd_swa = 32; c->hd_full = 64;
        c->vocab = 512; c->window = 8;
        c->boi = 500; c->boa = 501; c->image_tok = 502; c->audio_tok = 503; c->eoi = 504; c->eoa = 505;
        c->mm_dim = 96; c->mm_posemb = 64; c->audio_dim = 640;
        period = 3;
    } else return -1;
    snprintf(c->name, sizeof c->name, "%s", name);
    for (int l = 0; l < c->n_layers; l++) c->is_global[l] = (l + 1) % period == 0;
    c->rope_theta_swa = 10000.0f;
    c->rope_theta_full = 1000000.0f;
    c->rope_partial_full = 0.25f;
    c->eps = 1e-6f;
    c->softcap = 30.0f;
    c->k_eq_v = 1;
    c->bos = 2; c->eos = 1; c->pad = 0;
    default_stops(c);        /* {1, 106, 50} */
    default_suppress(c);     /* 12b: {258883, 258882}; tiny: {505, 504} */
    return 0;
}

/* ---- checks and counts ------------------------------------------------------------------- */

int g4_config_check(const g4_config *c, g4_err *err)
{
    const char *n = c->name[0] ? c->name : "?";
#define REQ(cond, ...) do { if (!(cond)) { char m_[200]; snprintf(m_, sizeof m_, __VA_ARGS__); \
        return g4_fail(err, "config %s: %s", n, m_); } } while (0)
    REQ(c->n_layers >= 1 && c->n_layers <= G4_MAX_LAYERS, "n_layers %d not in 1..%d", c->n_layers, G4_MAX_LAYERS);
    REQ(c->d_model > 0 && c->d_model <= (1 << 16), "d_model %d not in 1..65536", c->d_model);
    REQ(c->d_ff > 0 && c->d_ff <= (1 << 20), "d_ff %d not in 1..1048576", c->d_ff);
    REQ(c->n_heads > 0 && c->n_heads <= 1024, "n_heads %d not in 1..1024", c->n_heads);
    REQ(c->n_kv_swa > 0 && c->n_heads % c->n_kv_swa == 0, "n_heads %d not a multiple of n_kv_swa %d",
        c->n_heads, c->n_kv_swa);
    REQ(c->n_kv_full > 0 && c->n_heads % c->n_kv_full == 0, "n_heads %d not a multiple of n_kv_full %d",
        c->n_heads, c->n_kv_full);
    REQ(c->hd_swa > 0 && c->hd_swa <= 4096 && c->hd_swa % 2 == 0, "hd_swa %d not an even number in 2..4096", c->hd_swa);
    REQ(c->hd_full > 0 && c->hd_full <= 4096 && c->hd_full % 2 == 0, "hd_full %d not an even number in 2..4096", c->hd_full);
    REQ(c->vocab > 0 && c->vocab <= (1 << 24), "vocab %d not in 1..16777216", c->vocab);
    REQ(c->window > 0, "window %d must be > 0", c->window);
    REQ(isfinite(c->rope_theta_swa) && c->rope_theta_swa > 1.0f, "rope_theta_swa %g must be > 1", c->rope_theta_swa);
    REQ(isfinite(c->rope_theta_full) && c->rope_theta_full > 1.0f, "rope_theta_full %g must be > 1", c->rope_theta_full);
    REQ(c->rope_partial_full > 0.0f && c->rope_partial_full <= 1.0f, "rope_partial_full %g not in (0, 1]",
        c->rope_partial_full);
    REQ(c->eps > 0.0f && c->eps < 1.0f, "eps %g not in (0, 1)", c->eps);
    REQ(isfinite(c->softcap) && c->softcap >= 0.0f, "softcap %g must be >= 0 (0 = off)", c->softcap);
    REQ(c->k_eq_v == 0 || c->k_eq_v == 1, "k_eq_v %d must be 0 or 1", c->k_eq_v);
    for (int l = 0; l < c->n_layers; l++)
        REQ(c->is_global[l] <= 1, "is_global[%d] = %d must be 0 or 1", l, c->is_global[l]);
    REQ(c->bos >= 0 && c->bos < c->vocab, "bos %d outside the vocab of %d", c->bos, c->vocab);
    REQ(c->eos >= 0 && c->eos < c->vocab, "eos %d outside the vocab of %d", c->eos, c->vocab);
    REQ(c->pad >= 0 && c->pad < c->vocab, "pad %d outside the vocab of %d", c->pad, c->vocab);
    REQ(c->n_stop >= 0 && c->n_stop <= 8, "n_stop %d not in 0..8", c->n_stop);
    for (int k = 0; k < c->n_stop; k++)
        REQ(c->stop[k] >= 0 && c->stop[k] < c->vocab, "stop id %d outside the vocab of %d", c->stop[k], c->vocab);
    REQ(c->n_suppress >= 0 && c->n_suppress <= G4_MAX_SUPPRESS, "n_suppress %d not in 0..%d", c->n_suppress,
        G4_MAX_SUPPRESS);
    for (int k = 0; k < c->n_suppress; k++)
        REQ(c->suppress[k] >= 0 && c->suppress[k] < c->vocab, "suppressed id %d outside the vocab of %d",
            c->suppress[k], c->vocab);
    /* multimodal: ids are 0 (absent) or inside the vocab */
    const struct { const char *what; int id; } ids[] = {
        { "boi", c->boi }, { "eoi", c->eoi }, { "image_tok", c->image_tok },
        { "boa", c->boa }, { "eoa", c->eoa }, { "audio_tok", c->audio_tok } };
    for (int k = 0; k < 6; k++)
        REQ(ids[k].id >= 0 && ids[k].id < c->vocab, "%s id %d outside the vocab of %d", ids[k].what, ids[k].id, c->vocab);
    REQ(c->mm_dim >= 0 && c->mm_dim <= (1 << 16), "mm_dim %d not in 0..65536", c->mm_dim);
    REQ(c->mm_posemb >= 0 && c->mm_posemb <= (1 << 20), "mm_posemb %d not in 0..1048576", c->mm_posemb);
    REQ((c->mm_dim == 0) == (c->mm_posemb == 0), "mm_dim %d and mm_posemb %d must both be set or both 0",
        c->mm_dim, c->mm_posemb);
    REQ(c->audio_dim == 0 || c->audio_dim == G4_AUDIO_FRAME, "audio_dim %d must be 0 or %d (samples per frame)",
        c->audio_dim, G4_AUDIO_FRAME);
    /* the ids that are set must all differ (a soft token that is also a delimiter could not be
     * told apart); a modality may lack ids (a text GGUF without token strings + an mmproj): the
     * embedder still works, only prompt building needs them */
    for (int a = 0; a < 6; a++)
        for (int b = a + 1; b < 6; b++)
            REQ(ids[a].id == 0 || ids[a].id != ids[b].id, "%s and %s are the same id %d", ids[a].what, ids[b].what,
                ids[a].id);
#undef REQ
    return 0;
}

/* Text decoder parameters (spec 1.7): tied embedding, per layer q/k/(v)/o, gate/up/down, the 4
 * residual norms, q/k norms and the layer scalar, then the final norm. */
int64_t g4_config_nparams(const g4_config *c)
{
    int64_t d = c->d_model, n = (int64_t)c->vocab * d + d;
    for (int l = 0; l < c->n_layers; l++) {
        int64_t hd = g4_hd(c, l), kv = g4_nkv(c, l), h = c->n_heads;
        int has_v = !(c->is_global[l] && c->k_eq_v);
        n += d * h * hd;                       /* q_proj  [h*hd, d] */
        n += d * kv * hd * (has_v ? 2 : 1);    /* k_proj (and v_proj) [kv*hd, d] */
        n += h * hd * d;                       /* o_proj  [d, h*hd] */
        n += 3 * d * (int64_t)c->d_ff;         /* gate, up [ff, d]; down [d, ff] */
        n += 4 * d + 2 * hd + 1;               /* 4 norms, q/k norms, layer scalar */
    }
    return n;
}

/* ---- from GGUF --------------------------------------------------------------------------- */

/* a positive int key; absent -> `def` (or an error when def < 0) */
static int gg_int(const g4_gguf *g, const char *key, int64_t def, int64_t lo, int64_t hi, int *out, g4_err *err)
{
    int64_t v;
    const g4_gguf_value *val = g4_gguf_get(g, key);
    if (!val) {
        if (def < 0) return g4_fail(err, "%s: missing %s", g->path, key);
        *out = (int)def;
        return 0;
    }
    if (val->type == G4_GGUF_ARRAY) {
        /* per-layer arrays that hold one value everywhere are accepted as that value */
        if (val->arr_n == 0 || val->arr_type == G4_GGUF_STRING || val->arr_type == G4_GGUF_ARRAY)
            return g4_fail(err, "%s: %s is not an integer", g->path, key);
        v = g4_gguf_arr_int(val, 0);
        for (uint64_t i = 1; i < val->arr_n; i++)
            if (g4_gguf_arr_int(val, i) != v)
                return g4_fail(err, "%s: %s varies per layer (unsupported)", g->path, key);
    } else if (g4_gguf_get_int(g, key, &v) != 0 || val->type == G4_GGUF_BOOL) {
        return g4_fail(err, "%s: %s is not an integer (%s)", g->path, key, g4_gguf_vtype_name(val->type));
    }
    if (v < lo || v > hi)
        return g4_fail(err, "%s: %s = %lld out of range %lld..%lld", g->path, key, (long long)v, (long long)lo,
                       (long long)hi);
    *out = (int)v;
    return 0;
}

static int gg_float(const g4_gguf *g, const char *key, double def, float *out, g4_err *err)
{
    double v;
    const g4_gguf_value *val = g4_gguf_get(g, key);
    if (!val) { *out = (float)def; return 0; }
    if (g4_gguf_get_float(g, key, &v) != 0 || !isfinite(v) || !isfinite((float)v))
        return g4_fail(err, "%s: %s is not a finite number", g->path, key);
    *out = (float)v;
    return 0;
}

/* an id key of tokenizer.ggml.* */
static int gg_id(const g4_gguf *g, const char *key, int def, int *out, g4_err *err)
{
    return gg_int(g, key, def, 0, INT_MAX, out, err);
}

/* the multimodal ids of a GGUF (spec 2.4, 3): found by their token strings in the tokenizer's
 * list; without a string list the 12b ids when they fit the vocab; 0 = absent. The embedder
 * sizes are not in a text GGUF (a GGUF mmproj carries them). */
static void gg_mm_ids(const g4_gguf_value *toks, g4_config *c)
{
    static const char *const str[6] = { "<|image>", "<image|>", "<|image|>", "<|audio>", "<audio|>", "<|audio|>" };
    static const int def[6] = { G4_TOK_BOI, G4_TOK_EOI, G4_TOK_IMAGE, G4_TOK_BOA, G4_TOK_EOA, G4_TOK_AUDIO };
    int *dst[6] = { &c->boi, &c->eoi, &c->image_tok, &c->boa, &c->eoa, &c->audio_tok };
    const int have_list = toks && toks->type == G4_GGUF_ARRAY && toks->arr_type == G4_GGUF_STRING;
    for (int k = 0; k < 6; k++) *dst[k] = !have_list && def[k] < c->vocab ? def[k] : 0;
    if (!have_list) return;
    for (uint64_t i = 0; i < toks->arr_n && i < (uint64_t)c->vocab; i++) {
        g4_str t = g4_gguf_arr_str(toks, i);
        if (t.len < 8 || t.len > 9 || t.s[0] != '<') continue;
        for (int k = 0; k < 6; k++)
            if (*dst[k] == 0 && strlen(str[k]) == t.len && memcmp(str[k], t.s, t.len) == 0) *dst[k] = (int)i;
    }
}

int g4_config_from_gguf(const g4_gguf *g, g4_config *c, g4_err *err)
{
    char arch[64];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "file");
    if (g4_gguf_get_str(g, "general.architecture", arch, sizeof arch) != 0)
        return g4_fail(err, "%s: no general.architecture string (not a model GGUF?)", g->path);
    if (strcmp(arch, "gemma4") != 0)
        return g4_fail(err, "%s: general.architecture is '%s'; g4 runs only 'gemma4' (Gemma 4 text models)",
                       g->path, arch);

    if (gg_int(g, "gemma4.block_count", -1, 1, G4_MAX_LAYERS, &c->n_layers, err) ||
        gg_int(g, "gemma4.embedding_length", -1, 1, INT_MAX, &c->d_model, err) ||
        gg_int(g, "gemma4.feed_forward_length", -1, 1, INT_MAX, &c->d_ff, err) ||
        gg_int(g, "gemma4.attention.head_count", -1, 1, INT_MAX, &c->n_heads, err) ||
        gg_int(g, "gemma4.attention.key_length", -1, 1, INT_MAX, &c->hd_full, err) ||
        gg_int(g, "gemma4.attention.key_length_swa", c->hd_full, 1, INT_MAX, &c->hd_swa, err))
        return -1;
    int L = c->n_layers, v;
    /* one head size per layer type: value_length must match key_length (K=V and our buffers) */
    if (gg_int(g, "gemma4.attention.value_length", c->hd_full, 1, INT_MAX, &v, err)) return -1;
    if (v != c->hd_full) return g4_fail(err, "%s: value_length %d != key_length %d (unsupported)", g->path, v, c->hd_full);
    if (gg_int(g, "gemma4.attention.value_length_swa", c->hd_swa, 1, INT_MAX, &v, err)) return -1;
    if (v != c->hd_swa) return g4_fail(err, "%s: value_length_swa %d != key_length_swa %d (unsupported)", g->path, v, c->hd_swa);
    /* full-width RoPE dims; partial rotation is encoded by rope_freqs, not by a shorter n_rot */
    if (gg_int(g, "gemma4.rope.dimension_count", c->hd_full, 1, INT_MAX, &v, err)) return -1;
    if (v != c->hd_full) return g4_fail(err, "%s: rope.dimension_count %d != key_length %d (unsupported)", g->path, v, c->hd_full);
    if (gg_int(g, "gemma4.rope.dimension_count_swa", c->hd_swa, 1, INT_MAX, &v, err)) return -1;
    if (v != c->hd_swa) return g4_fail(err, "%s: rope.dimension_count_swa %d != key_length_swa %d (unsupported)", g->path, v, c->hd_swa);
    /* features of other Gemma 4 variants that this decoder does not implement */
    if (gg_int(g, "gemma4.embedding_length_per_layer_input", 0, 0, INT_MAX, &v, err)) return -1;
    if (v) return g4_fail(err, "%s: per-layer input embeddings (embedding_length_per_layer_input %d) are unsupported", g->path, v);
    if (gg_int(g, "gemma4.attention.shared_kv_layers", 0, 0, INT_MAX, &v, err)) return -1;
    if (v) return g4_fail(err, "%s: shared KV layers (%d) are unsupported", g->path, v);
    if (gg_int(g, "gemma4.expert_count", 0, 0, INT_MAX, &v, err)) return -1;
    if (v) return g4_fail(err, "%s: mixture of experts (%d experts) is unsupported", g->path, v);

    /* layer pattern: bool per layer, true = sliding; absent -> the HF default (every 6th global,
     * last layer global); an integer N means every N-th layer is global */
    const g4_gguf_value *pat = g4_gguf_get(g, "gemma4.attention.sliding_window_pattern");
    if (pat && pat->type == G4_GGUF_ARRAY) {
        if (pat->arr_type != G4_GGUF_BOOL && pat->arr_type != G4_GGUF_U8 && pat->arr_type != G4_GGUF_I8 &&
            pat->arr_type != G4_GGUF_I32 && pat->arr_type != G4_GGUF_U32)
            return g4_fail(err, "%s: sliding_window_pattern must be a bool array", g->path);
        if (pat->arr_n != (uint64_t)L)
            return g4_fail(err, "%s: sliding_window_pattern has %llu entries for %d layers", g->path,
                           (unsigned long long)pat->arr_n, L);
        for (int l = 0; l < L; l++) c->is_global[l] = g4_gguf_arr_int(pat, (uint64_t)l) == 0;
    } else if (pat) {
        int period;
        if (gg_int(g, "gemma4.attention.sliding_window_pattern", 6, 1, INT_MAX, &period, err)) return -1;
        for (int l = 0; l < L; l++) c->is_global[l] = (l + 1) % period == 0;
    } else {
        for (int l = 0; l < L; l++) c->is_global[l] = (l + 1) % 6 == 0;
        if (L >= 1 && L <= G4_MAX_LAYERS) c->is_global[L - 1] = 1;   /* (range checked above) */
    }
    int n_global = 0;
    for (int l = 0; l < L; l++) n_global += c->is_global[l];

    /* KV heads: a per-layer array (one value per layer type) or one value for all layers */
    const g4_gguf_value *kv = g4_gguf_get(g, "gemma4.attention.head_count_kv");
    if (!kv) return g4_fail(err, "%s: missing gemma4.attention.head_count_kv", g->path);
    if (kv->type == G4_GGUF_ARRAY) {
        if (kv->arr_n != (uint64_t)L || kv->arr_type == G4_GGUF_STRING || kv->arr_type == G4_GGUF_ARRAY)
            return g4_fail(err, "%s: head_count_kv must be %d integers (one per layer)", g->path, L);
        c->n_kv_swa = c->n_kv_full = -1;
        for (int l = 0; l < L; l++) {
            int64_t h = g4_gguf_arr_int(kv, (uint64_t)l);
            int *dst = c->is_global[l] ? &c->n_kv_full : &c->n_kv_swa;
            if (h < 1 || h > INT_MAX) return g4_fail(err, "%s: head_count_kv[%d] = %lld out of range", g->path, l, (long long)h);
            if (*dst >= 0 && *dst != h)
                return g4_fail(err, "%s: head_count_kv varies among %s layers (unsupported)", g->path,
                               c->is_global[l] ? "global" : "sliding");
            *dst = (int)h;
        }
        if (c->n_kv_swa < 0) c->n_kv_swa = c->n_kv_full;     /* no layer of that type */
        if (c->n_kv_full < 0) c->n_kv_full = c->n_kv_swa;
    } else {
        if (gg_int(g, "gemma4.attention.head_count_kv", -1, 1, INT_MAX, &c->n_kv_swa, err)) return -1;
        c->n_kv_full = c->n_kv_swa;
    }

    if (gg_int(g, "gemma4.attention.sliding_window", n_global < L ? -1 : 1, 1, INT_MAX, &c->window, err)) return -1;
    if (gg_float(g, "gemma4.rope.freq_base", 1e6, &c->rope_theta_full, err) ||
        gg_float(g, "gemma4.rope.freq_base_swa", 1e4, &c->rope_theta_swa, err) ||
        gg_float(g, "gemma4.attention.layer_norm_rms_epsilon", 1e-6, &c->eps, err) ||
        gg_float(g, "gemma4.final_logit_softcapping", 0.0, &c->softcap, err))
        return -1;

    /* vocab: rows of the (tied) embedding, else the tokenizer's list */
    const g4_tensor *emb = g4_gguf_tensor(g, "token_embd.weight");
    const g4_gguf_value *toks = g4_gguf_get(g, "tokenizer.ggml.tokens");
    if (toks && toks->type != G4_GGUF_ARRAY) return g4_fail(err, "%s: tokenizer.ggml.tokens is not an array", g->path);
    if (emb) {
        if (emb->ne[0] != c->d_model || emb->ne[1] < 1 || emb->ne[1] > INT_MAX || emb->ne[2] != 1 || emb->ne[3] != 1)
            return g4_fail(err, "%s: token_embd.weight has shape [%lld, %lld], expected [%d, vocab]", g->path,
                           (long long)emb->ne[0], (long long)emb->ne[1], c->d_model);
        c->vocab = (int)emb->ne[1];
        if (toks && toks->arr_n > (uint64_t)c->vocab)
            return g4_fail(err, "%s: tokenizer has %llu tokens but token_embd.weight only %d rows", g->path,
                           (unsigned long long)toks->arr_n, c->vocab);
    } else if (toks) {
        if (toks->arr_n < 1 || toks->arr_n > INT_MAX) return g4_fail(err, "%s: tokenizer.ggml.tokens is empty", g->path);
        c->vocab = (int)toks->arr_n;
    } else {
        return g4_fail(err, "%s: no token_embd.weight and no tokenizer.ggml.tokens: vocab size unknown", g->path);
    }

    gg_mm_ids(toks, c);

    /* K=V: global layers without their own V projection */
    int with_v = 0, without_v = 0;
    for (int l = 0; l < L; l++) {
        if (!c->is_global[l]) continue;
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        if (g4_gguf_tensor(g, name)) with_v++; else without_v++;
    }
    if (with_v && without_v)
        return g4_fail(err, "%s: %d global layers have attn_v.weight and %d do not", g->path, with_v, without_v);
    c->k_eq_v = without_v > 0;

    /* partial rotary factor of the global layers from rope_freqs.weight [hd_full/2] */
    c->rope_partial_full = 0.25f;
    const g4_tensor *rf = g4_gguf_tensor(g, "rope_freqs.weight");
    if (rf) {
        int64_t np = c->hd_full / 2;
        if (rf->type != G4_T_F32 || g4_tensor_nelem(rf) != np)
            return g4_fail(err, "%s: rope_freqs.weight must be %lld f32 values (hd_full/2)", g->path, (long long)np);
        int64_t ones = 0;
        for (int64_t i = 0; i < np; i++) {
            float f;
            memcpy(&f, (const uint8_t *)rf->data + 4 * i, 4);
            /* 1.0 = rotate at the normal frequency; >= 1e20 divides the frequency so much that the
             * angle stays below 262144 / 1e20 rad (< float eps): no rotation */
            if (f == 1.0f && ones == i) ones++;
            else if (!(f >= 1e20f))
                return g4_fail(err, "%s: rope_freqs.weight[%lld] = %g: only 1.0 (first) and >= 1e20 are supported",
                               g->path, (long long)i, f);
        }
        if (ones == 0) return g4_fail(err, "%s: rope_freqs.weight rotates no pair", g->path);
        c->rope_partial_full = (float)((double)ones / (double)np);
    }

    if (gg_id(g, "tokenizer.ggml.bos_token_id", 2, &c->bos, err) ||
        gg_id(g, "tokenizer.ggml.eos_token_id", 1, &c->eos, err) ||
        gg_id(g, "tokenizer.ggml.padding_token_id", 0, &c->pad, err))
        return -1;
    default_stops(c);
    if (g4_gguf_get(g, "tokenizer.ggml.eot_token_id")) {
        int eot;
        if (gg_id(g, "tokenizer.ggml.eot_token_id", 0, &eot, err)) return -1;
        if (add_stop(c, eot)) return g4_fail(err, "%s: too many stop ids", g->path);
    }
    const g4_gguf_value *sup = g4_gguf_get(g, "tokenizer.ggml.suppress_tokens");
    c->n_suppress = 0;
    if (sup) {
        if (sup->type != G4_GGUF_ARRAY || sup->arr_type == G4_GGUF_STRING || sup->arr_type == G4_GGUF_ARRAY ||
            sup->arr_type == G4_GGUF_F32 || sup->arr_type == G4_GGUF_F64)
            return g4_fail(err, "%s: tokenizer.ggml.suppress_tokens must be an integer array", g->path);
        if (sup->arr_n > G4_MAX_SUPPRESS)
            return g4_fail(err, "%s: %llu suppressed tokens (at most %d supported)", g->path,
                           (unsigned long long)sup->arr_n, G4_MAX_SUPPRESS);
        for (uint64_t i = 0; i < sup->arr_n; i++) {
            int64_t id = g4_gguf_arr_int(sup, i);
            if (id < 0 || id >= c->vocab)
                return g4_fail(err, "%s: suppressed token %lld outside the vocab of %d", g->path, (long long)id, c->vocab);
            c->suppress[c->n_suppress++] = (int)id;
        }
    }
    return 0;
}

/* ---- from config.json -------------------------------------------------------------------- */

typedef struct {
    const char *path;          /* for messages */
    const char *pre;           /* "text_config." or "" */
    g4_err *err;
} jctx;

/* integer field; absent or null -> def */
static int j_int(const jctx *x, const g4_json *o, const char *key, int def, int lo, int *out)
{
    const g4_json *v = g4_json_get(o, key);
    if (!v || v->type == G4_JNULL) { *out = def; return 0; }
    if (v->type != G4_JNUM || v->num != floor(v->num) || v->num < lo || v->num > INT_MAX)
        return g4_fail(x->err, "%s: %s%s must be an integer >= %d", x->path, x->pre, key, lo);
    *out = (int)v->num;
    return 0;
}

static int j_num(const jctx *x, const g4_json *o, const char *key, double def, double *out)
{
    const g4_json *v = g4_json_get(o, key);
    if (!v || v->type == G4_JNULL) { *out = def; return 0; }
    if (v->type != G4_JNUM) return g4_fail(x->err, "%s: %s%s must be a number", x->path, x->pre, key);
    *out = v->num;
    return 0;
}

static int j_bool(const jctx *x, const g4_json *o, const char *key, int def, int *out)
{
    const g4_json *v = g4_json_get(o, key);
    if (!v || v->type == G4_JNULL) { *out = def; return 0; }
    if (v->type != G4_JBOOL) return g4_fail(x->err, "%s: %s%s must be true or false", x->path, x->pre, key);
    *out = v->boolean;
    return 0;
}

/* an id or a list of ids (eos_token_id, suppress_tokens) into ids[0..*n); absent/null -> none */
static int j_ids(const jctx *x, const g4_json *o, const char *key, int *ids, int cap, int *n)
{
    const g4_json *v = g4_json_get(o, key);
    *n = 0;
    if (!v || v->type == G4_JNULL) return 0;
    int cnt = v->type == G4_JARR ? v->n : 1;
    if (v->type != G4_JARR && v->type != G4_JNUM) cnt = -1;
    if (cnt > cap) return g4_fail(x->err, "%s: %s%s lists %d ids (at most %d supported)", x->path, x->pre, key, cnt, cap);
    for (int k = 0; k < cnt; k++) {
        const g4_json *e = v->type == G4_JARR ? &v->kids[k] : v;
        if (e->type != G4_JNUM || e->num != floor(e->num) || e->num < 0 || e->num > INT_MAX) { cnt = -1; break; }
        ids[k] = (int)e->num;
    }
    if (cnt < 0) return g4_fail(x->err, "%s: %s%s must be a token id or a list of token ids", x->path, x->pre, key);
    *n = cnt;
    return 0;
}

/* rope_parameters.<type> -> theta and the proportional partial factor */
static int j_rope(const jctx *x, const g4_json *rp, const char *type, int global, float *theta, float *partial)
{
    const g4_json *r = g4_json_get(rp, type);
    if (!r || r->type != G4_JOBJ)
        return g4_fail(x->err, "%s: %srope_parameters has no %s object", x->path, x->pre, type);
    const g4_json *t = g4_json_get(r, "rope_type");
    const char *rt = t && t->type == G4_JSTR ? t->str : "default";
    if (t && t->type != G4_JSTR && t->type != G4_JNULL)
        return g4_fail(x->err, "%s: %srope_parameters.%s.rope_type must be a string", x->path, x->pre, type);
    double th, pf, factor;
    const g4_json *tv = g4_json_get(r, "rope_theta");
    if (!tv || tv->type != G4_JNUM)
        return g4_fail(x->err, "%s: %srope_parameters.%s.rope_theta must be a number", x->path, x->pre, type);
    th = tv->num;
    if (j_num(x, r, "partial_rotary_factor", 1.0, &pf) || j_num(x, r, "factor", 1.0, &factor)) return -1;
    if (factor != 1.0)
        return g4_fail(x->err, "%s: %srope_parameters.%s.factor %g: RoPE scaling is unsupported", x->path, x->pre, type, factor);
    if (strcmp(rt, "proportional") != 0 && strcmp(rt, "default") != 0)
        return g4_fail(x->err, "%s: %srope_parameters.%s.rope_type '%s' is unsupported", x->path, x->pre, type, rt);
    /* "default" with a partial factor rotates a prefix with frequencies over the shorter width:
     * not what the global layers do (proportional); and sliding layers always rotate fully */
    if (pf != 1.0 && (strcmp(rt, "default") == 0 || !global))
        return g4_fail(x->err, "%s: %srope_parameters.%s: partial_rotary_factor %g with rope_type %s is unsupported",
                       x->path, x->pre, type, pf, rt);
    if (!(pf > 0.0 && pf <= 1.0) || !(th > 1.0) || !isfinite(th))
        return g4_fail(x->err, "%s: %srope_parameters.%s: bad rope_theta %g or partial_rotary_factor %g",
                       x->path, x->pre, type, th, pf);
    *theta = (float)th;
    *partial = (float)pf;
    return 0;
}

/* Multimodal part of a composite config.json (spec 2.3, 2.4, 3): the special ids at the top
 * level (transformers' defaults are the 12b ids), vision_config and audio_config (null or
 * absent = no such embedder). */
static int mm_config(const jctx *x, const g4_json *top, g4_config *c)
{
    int ids[6];
    static const char *const key[6] = { "boi_token_id", "eoi_token_id", "image_token_id",
                                        "boa_token_id", "eoa_token_index", "audio_token_id" };
    static const int def[6] = { G4_TOK_BOI, G4_TOK_EOI, G4_TOK_IMAGE, G4_TOK_BOA, G4_TOK_EOA, G4_TOK_AUDIO };
    for (int k = 0; k < 6; k++) {
        /* the end-of-audio id is eoa_token_index in transformers' class, eoa_token_id elsewhere */
        const char *kk = key[k];
        if (k == 4 && !g4_json_get(top, kk) && g4_json_get(top, "eoa_token_id")) kk = "eoa_token_id";
        if (j_int(x, top, kk, def[k], 0, &ids[k])) return -1;
    }
    const g4_json *vc = g4_json_get(top, "vision_config"), *ac = g4_json_get(top, "audio_config");
    if (vc && vc->type != G4_JNULL && vc->type != G4_JOBJ)
        return g4_fail(x->err, "%s: vision_config must be an object or null", x->path);
    if (ac && ac->type != G4_JNULL && ac->type != G4_JOBJ)
        return g4_fail(x->err, "%s: audio_config must be an object or null", x->path);
    const int has_v = vc && vc->type == G4_JOBJ, has_a = ac && ac->type == G4_JOBJ;
    jctx xv = { x->path, "vision_config.", x->err }, xa = { x->path, "audio_config.", x->err };
    c->mm_dim = c->mm_posemb = c->audio_dim = 0;
    if (has_v) {
        int dim, posemb, proj, ps, pool, mps;
        double eps;
        /* defaults: transformers Gemma4UnifiedVisionConfig */
        if (j_int(&xv, vc, "mm_embed_dim", 3840, 1, &dim) || j_int(&xv, vc, "mm_posemb_size", 1120, 1, &posemb) ||
            j_int(&xv, vc, "output_proj_dims", dim, 1, &proj) || j_int(&xv, vc, "patch_size", 16, 1, &ps) ||
            j_int(&xv, vc, "pooling_kernel_size", 3, 1, &pool) || j_num(&xv, vc, "rms_norm_eps", 1e-6, &eps))
            return -1;
        if (j_int(&xv, vc, "model_patch_size", ps * pool, 1, &mps)) return -1;
        /* the vision embedder's projection reads the pos_norm output: its input width
         * (output_proj_dims) is the embedder width */
        if (proj != dim)
            return g4_fail(x->err, "%s: vision_config.output_proj_dims %d != mm_embed_dim %d (unsupported)", x->path,
                           proj, dim);
        if ((long)ps * pool != G4_PATCH || mps != G4_PATCH)
            return g4_fail(x->err, "%s: vision_config: model patches of %ld (patch_size %d x pooling_kernel_size %d, "
                           "model_patch_size %d) pixels; g4 supports %d", x->path, (long)ps * pool, ps, pool, mps, G4_PATCH);
        if ((float)eps != c->eps)
            return g4_fail(x->err, "%s: vision_config.rms_norm_eps %g differs from the text eps %g (unsupported)", x->path,
                           eps, c->eps);
        c->mm_dim = dim; c->mm_posemb = posemb;
    }
    if (has_a) {
        double eps;
        if (j_int(&xa, ac, "audio_embed_dim", G4_AUDIO_FRAME, 1, &c->audio_dim) ||
            j_num(&xa, ac, "rms_norm_eps", 1e-6, &eps))
            return -1;
        if (c->audio_dim != G4_AUDIO_FRAME)
            return g4_fail(x->err, "%s: audio_config.audio_embed_dim %d: g4 frames audio in %d samples", x->path,
                           c->audio_dim, G4_AUDIO_FRAME);
        if ((float)eps != c->eps)
            return g4_fail(x->err, "%s: audio_config.rms_norm_eps %g differs from the text eps %g (unsupported)", x->path,
                           eps, c->eps);
    }
    /* ids of a present modality must be real tokens; the others are kept when they fit */
    int *dst[6] = { &c->boi, &c->eoi, &c->image_tok, &c->boa, &c->eoa, &c->audio_tok };
    for (int k = 0; k < 6; k++) {
        int needed = k < 3 ? has_v : has_a;
        if (ids[k] >= c->vocab) {
            if (needed)
                return g4_fail(x->err, "%s: %s %d outside the vocab of %d", x->path, key[k], ids[k], c->vocab);
            ids[k] = 0;
        }
        *dst[k] = ids[k];
    }
    return 0;
}

/* read a whole JSON file */
static g4_json *load_json(const char *path, g4_err *err)
{
    const uint8_t *map; size_t size;
    if (g4_map_file(path, &map, &size, err)) return NULL;
    g4_err jerr = {{0}};
    g4_json *j = g4_json_parse((const char *)map, size, &jerr);
    g4_unmap_file(map, size);
    if (!j) { g4_fail(err, "%s: %s", path, jerr.msg); return NULL; }
    if (j->type != G4_JOBJ) { g4_fail(err, "%s: not a JSON object", path); g4_json_free(j); return NULL; }
    return j;
}

static int text_config(const jctx *x, const g4_json *t, g4_config *c)
{
    int hd, kvh, k_eq_v, ghd, gkv, v;
    double eps, cap;
    /* defaults: transformers Gemma4UnifiedTextConfig */
    if (j_int(x, t, "vocab_size", 262144, 1, &c->vocab) ||
        j_int(x, t, "hidden_size", 2304, 1, &c->d_model) ||
        j_int(x, t, "intermediate_size", 9216, 1, &c->d_ff) ||
        j_int(x, t, "num_hidden_layers", 30, 1, &c->n_layers) ||
        j_int(x, t, "num_attention_heads", 8, 1, &c->n_heads) ||
        j_int(x, t, "num_key_value_heads", 4, 1, &kvh) ||
        j_int(x, t, "head_dim", 256, 1, &hd) ||
        j_int(x, t, "global_head_dim", 512, 1, &ghd) ||
        j_int(x, t, "num_global_key_value_heads", -1, 1, &gkv) ||
        j_int(x, t, "sliding_window", 1024, 1, &c->window) ||
        j_num(x, t, "rms_norm_eps", 1e-6, &eps) ||
        j_num(x, t, "final_logit_softcapping", 0.0, &cap) ||
        j_bool(x, t, "attention_k_eq_v", 0, &k_eq_v) ||
        j_int(x, t, "pad_token_id", 0, 0, &c->pad) ||
        j_int(x, t, "bos_token_id", 2, 0, &c->bos))
        return -1;
    int L = c->n_layers;
    if (L < 1 || L > G4_MAX_LAYERS)
        return g4_fail(x->err, "%s: %snum_hidden_layers %d exceeds the maximum of %d", x->path, x->pre, L, G4_MAX_LAYERS);
    if (!isfinite(eps) || !isfinite(cap) || cap < 0)
        return g4_fail(x->err, "%s: %srms_norm_eps or final_logit_softcapping is out of range", x->path, x->pre);
    c->eps = (float)eps;
    c->softcap = (float)cap;
    c->k_eq_v = k_eq_v;

    /* features this decoder does not implement */
    if (j_int(x, t, "num_kv_shared_layers", 0, 0, &v)) return -1;
    if (v) return g4_fail(x->err, "%s: %snum_kv_shared_layers %d: KV sharing is unsupported", x->path, x->pre, v);
    if (j_bool(x, t, "use_double_wide_mlp", 0, &v)) return -1;
    if (v) return g4_fail(x->err, "%s: %suse_double_wide_mlp is unsupported", x->path, x->pre);
    if (j_bool(x, t, "attention_bias", 0, &v)) return -1;
    if (v) return g4_fail(x->err, "%s: %sattention_bias is unsupported", x->path, x->pre);
    if (j_bool(x, t, "tie_word_embeddings", 1, &v)) return -1;
    if (!v) return g4_fail(x->err, "%s: %stie_word_embeddings false is unsupported (no lm_head)", x->path, x->pre);
    const g4_json *act = g4_json_get(t, "hidden_activation");
    if (act && act->type != G4_JNULL && (act->type != G4_JSTR || strcmp(act->str, "gelu_pytorch_tanh") != 0))
        return g4_fail(x->err, "%s: %shidden_activation must be gelu_pytorch_tanh", x->path, x->pre);
    /* fields of other Gemma 4 variants (not in this class; transformers would ignore them) */
    if (j_bool(x, t, "enable_moe_block", 0, &v)) return -1;
    if (v) return g4_fail(x->err, "%s: %senable_moe_block is unsupported", x->path, x->pre);
    if (j_int(x, t, "hidden_size_per_layer_input", 0, 0, &v)) return -1;
    if (v) return g4_fail(x->err, "%s: %shidden_size_per_layer_input %d: per-layer inputs are unsupported", x->path, x->pre, v);
    const g4_json *bi = g4_json_get(t, "use_bidirectional_attention");
    if (bi && bi->type == G4_JSTR && strcmp(bi->str, "all") == 0)
        return g4_fail(x->err, "%s: %suse_bidirectional_attention \"all\" is unsupported", x->path, x->pre);

    /* layer types; HF forces the last layer to full attention */
    const g4_json *lt = g4_json_get(t, "layer_types");
    if (lt && lt->type != G4_JNULL) {
        if (lt->type != G4_JARR || lt->n != L)
            return g4_fail(x->err, "%s: %slayer_types must list %d layer types", x->path, x->pre, L);
        for (int l = 0; l < L; l++) {
            const g4_json *e = &lt->kids[l];
            if (e->type == G4_JSTR && strcmp(e->str, "full_attention") == 0) c->is_global[l] = 1;
            else if (e->type == G4_JSTR && strcmp(e->str, "sliding_attention") == 0) c->is_global[l] = 0;
            else return g4_fail(x->err, "%s: %slayer_types[%d] is not sliding_attention or full_attention", x->path, x->pre, l);
        }
    } else {
        for (int l = 0; l < L; l++) c->is_global[l] = (l + 1) % 6 == 0;
    }
    if (L >= 1 && L <= G4_MAX_LAYERS) c->is_global[L - 1] = 1;   /* (range checked above) */

    /* per-layer head_dim / KV heads */
    int lhd[G4_MAX_LAYERS], lkv[G4_MAX_LAYERS];
    const g4_json *plc = g4_json_get(t, "per_layer_config");
    for (int l = 0; l < L; l++) { lhd[l] = hd; lkv[l] = kvh; }
    if (plc && plc->type != G4_JNULL) {
        if (plc->type != G4_JOBJ) return g4_fail(x->err, "%s: %sper_layer_config must be an object", x->path, x->pre);
        for (int k = 0; k < plc->n; k++) {
            const g4_json *o = &plc->kids[k];
            char *end;
            long l = strtol(o->key, &end, 10);
            if (!o->key[0] || *end || l < 0 || l >= L || o->type != G4_JOBJ)
                return g4_fail(x->err, "%s: %sper_layer_config key '%s' is not a layer index with an object", x->path, x->pre, o->key);
            for (int m = 0; m < o->n; m++)
                if (strcmp(o->kids[m].key, "head_dim") && strcmp(o->kids[m].key, "num_key_value_heads"))
                    return g4_fail(x->err, "%s: %sper_layer_config.%s.%s is unsupported", x->path, x->pre, o->key, o->kids[m].key);
            if (j_int(x, o, "head_dim", lhd[l], 1, &lhd[l]) || j_int(x, o, "num_key_value_heads", lkv[l], 1, &lkv[l]))
                return -1;
        }
    } else {
        /* transformers' __post_init__: global layers get global_head_dim and, when K=V is on,
         * num_global_key_value_heads (if given) */
        for (int l = 0; l < L; l++) {
            if (!c->is_global[l]) continue;
            lhd[l] = ghd;
            if (k_eq_v && gkv > 0) lkv[l] = gkv;
        }
    }
    c->hd_swa = c->hd_full = c->n_kv_swa = c->n_kv_full = -1;
    for (int l = 0; l < L; l++) {
        int *h = c->is_global[l] ? &c->hd_full : &c->hd_swa, *n = c->is_global[l] ? &c->n_kv_full : &c->n_kv_swa;
        if ((*h >= 0 && *h != lhd[l]) || (*n >= 0 && *n != lkv[l]))
            return g4_fail(x->err, "%s: %shead_dim / KV heads vary among %s layers (unsupported)", x->path, x->pre,
                           c->is_global[l] ? "full_attention" : "sliding_attention");
        *h = lhd[l]; *n = lkv[l];
    }
    if (c->hd_swa < 0) { c->hd_swa = hd; c->n_kv_swa = kvh; }   /* no sliding layer */

    /* RoPE: absent -> the class defaults (1e4 default; 1e6 proportional with factor 0.25) */
    const g4_json *rp = g4_json_get(t, "rope_parameters");
    float dummy;
    if (!rp || rp->type == G4_JNULL) {
        c->rope_theta_swa = 10000.0f; c->rope_theta_full = 1000000.0f; c->rope_partial_full = 0.25f;
    } else if (rp->type != G4_JOBJ) {
        return g4_fail(x->err, "%s: %srope_parameters must be an object", x->path, x->pre);
    } else if (j_rope(x, rp, "sliding_attention", 0, &c->rope_theta_swa, &dummy) ||
               j_rope(x, rp, "full_attention", 1, &c->rope_theta_full, &c->rope_partial_full)) {
        return -1;
    }
    return 0;
}

int g4_config_from_json(const char *path, g4_config *c, g4_err *err)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "file");
    g4_json *root = load_json(path, err), *gen = NULL;
    if (!root) return -1;
    int rc = -1;
    jctx x = { path, "", err };
    const g4_json *mt = g4_json_get(root, "model_type"), *t = root, *top = NULL;
    const char *mts = mt && mt->type == G4_JSTR ? mt->str : "(none)";
    g4_json empty = { .type = G4_JOBJ };
    if (strcmp(mts, "gemma4_unified") == 0) {
        top = root;
        t = g4_json_get(root, "text_config");
        if (!t || t->type == G4_JNULL) t = &empty;          /* all text defaults */
        else if (t->type != G4_JOBJ) { g4_fail(err, "%s: text_config must be an object", path); goto out; }
        x.pre = "text_config.";
        const g4_json *tm = g4_json_get(t, "model_type");
        if (tm && (tm->type != G4_JSTR || strcmp(tm->str, "gemma4_unified_text") != 0)) {
            g4_fail(err, "%s: text_config.model_type must be gemma4_unified_text", path); goto out;
        }
        int tie;
        if (j_bool(&x, top, "tie_word_embeddings", 1, &tie)) goto out;
        if (!tie) { g4_fail(err, "%s: tie_word_embeddings false is unsupported (no lm_head)", path); goto out; }
    } else if (strcmp(mts, "gemma4_unified_text") != 0) {
        g4_fail(err, "%s: model_type is %s; expected gemma4_unified or gemma4_unified_text", path, mts);
        goto out;
    }
    if (text_config(&x, t, c)) goto out;

    /* stop ids: eos (first of a list), the chat-format ids, then every other listed eos */
    int ids[8], n;
    if (j_ids(&x, t, "eos_token_id", ids, 8, &n)) goto out;
    c->eos = n ? ids[0] : 1;
    default_stops(c);
    for (int k = 1; k < n; k++)
        if (add_stop(c, ids[k])) { g4_fail(err, "%s: more than 8 stop ids", path); goto out; }
    jctx xt = { path, "", err };
    if (top) {
        if (j_ids(&xt, top, "eos_token_id", ids, 8, &n)) goto out;
        for (int k = 0; k < n; k++)
            if (add_stop(c, ids[k])) { g4_fail(err, "%s: more than 8 stop ids", path); goto out; }
    }
    /* multimodal ids and embedder sizes (composite config only), then the suppressed ids: the
     * end-of-media ids (eoa, eoi) that fit the vocab */
    if (top && mm_config(&xt, top, c)) goto out;
    default_suppress(c);
    /* generation_config.json beside config.json: its eos ids stop, its suppress_tokens replace */
    char gpath[512];
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(gpath, sizeof gpath, "%.*s/generation_config.json", (int)(slash - path), path);
    else snprintf(gpath, sizeof gpath, "generation_config.json");
    FILE *gf = fopen(gpath, "rb");
    if (gf) {
        fclose(gf);
        if (!(gen = load_json(gpath, err))) goto out;
        jctx xg = { gpath, "", err };
        if (j_ids(&xg, gen, "eos_token_id", ids, 8, &n)) goto out;
        for (int k = 0; k < n; k++)
            if (add_stop(c, ids[k])) { g4_fail(err, "%s: more than 8 stop ids", gpath); goto out; }
        int sup[G4_MAX_SUPPRESS];
        const g4_json *st = g4_json_get(gen, "suppress_tokens");
        if (st && st->type != G4_JNULL) {
            if (j_ids(&xg, gen, "suppress_tokens", sup, G4_MAX_SUPPRESS, &n)) goto out;
            c->n_suppress = 0;
            for (int k = 0; k < n; k++) c->suppress[c->n_suppress++] = sup[k];
        }
    }
    for (int k = 0; k < c->n_stop; k++)
        if (c->stop[k] >= c->vocab) { g4_fail(err, "%s: stop id %d outside the vocab of %d", path, c->stop[k], c->vocab); goto out; }
    for (int k = 0; k < c->n_suppress; k++)
        if (c->suppress[k] >= c->vocab) {
            g4_fail(err, "%s: suppressed id %d outside the vocab of %d", gen ? gpath : path, c->suppress[k], c->vocab);
            goto out;
        }
    rc = 0;
out:
    g4_json_free(root);
    g4_json_free(gen);
    return rc;
}

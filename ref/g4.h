/* g4.h - the one header of g4: types, model files, config, kernels, decoder, sampler.
 *
 * Everything the CLI, the tests and the benchmarks use is declared here. The stages in ref/ are
 * written against this header only; opt/ fills in extra kernel tables (struct g4_kernels).
 *
 * Shape conventions used in every comment of the project:
 *   - a weight matrix W is stored as `rows` rows of `cols` values; y = W x means
 *     y[r] = sum_c W[r][c] * x[c]. In GGUF (ggml order) this is ne = [cols, rows]; in HF
 *     safetensors (PyTorch order) it is shape [rows, cols]. Both are the same bytes.
 *   - activations are row-major [T][dim] float32 (one row per token).
 */
#ifndef G4_H
#define G4_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------------------------------------
 * Errors: every fallible function takes `g4_err *err` and fills one line naming the file and the
 * problem, then returns non-zero / NULL. Nothing in the library prints or exits.
 * ------------------------------------------------------------------------------------------- */
typedef struct { char msg[512]; } g4_err;
int g4_fail(g4_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* returns -1 */

/* ---------------------------------------------------------------------------------------------
 * Tensor types (ref/quant.c). Values are the ggml type ids, as stored in GGUF.
 * ------------------------------------------------------------------------------------------- */
typedef enum {
    G4_T_F32 = 0, G4_T_F16 = 1, G4_T_Q4_0 = 2, G4_T_Q8_0 = 8,
    G4_T_Q4_K = 12, G4_T_Q6_K = 14, G4_T_BF16 = 30,
    G4_T_NONE = -1 /* absent tensor (e.g. v_proj on a K=V global layer) */
} g4_type;

const char *g4_type_name(g4_type t);          /* "f32", "q4_0", ...; NULL if unsupported */
int g4_type_from_name(const char *s);         /* inverse, -1 if unknown */
int g4_type_supported(int ggml_type_id);      /* 1 if g4 can dequantize this ggml type id */
int64_t g4_type_block(g4_type t);             /* elements per block (1, 32 or 256) */
size_t g4_type_block_bytes(g4_type t);        /* bytes per block */
size_t g4_row_bytes(g4_type t, int64_t n);    /* bytes of a row of n values; n % block == 0 */

/* scalar conversions; f32->bf16 and f32->f16 round to nearest even (NaN stays NaN) */
float    g4_bf16_to_f32(uint16_t h);
uint16_t g4_f32_to_bf16(float f);
float    g4_f16_to_f32(uint16_t h);
uint16_t g4_f32_to_f16(float f);
static inline float g4_round_bf16(float f) { return g4_bf16_to_f32(g4_f32_to_bf16(f)); }

void  g4_dequant_row(g4_type t, const void *row, float *out, int64_t n);
void  g4_quant_row(g4_type t, const float *in, void *row, int64_t n); /* f32,f16,bf16,q8_0,q4_0,q4_k,q6_k */
/* Reference dot of one stored row with fp32 x: dequantize each block to fp32 and accumulate in
 * fp32, in index order within a block, blocks in order. The fallback every opt kernel is held to. */
float g4_dot_row(g4_type t, const void *row, const float *x, int64_t n);
/* The q8 numeric mode (docs/NUMERICS.md "q8 mode"). Activations x[n] (n % 32 == 0) to int8 in
 * blocks of 32: d[b] = max|x| / 127, q = rint(x * (1 / d[b])) (0 when d[b] = 0; d[b] = NaN when
 * the block holds a NaN or an infinity, so the result stays non-finite; d[b] = 0, q = 0 when 1/d
 * would overflow, max |x| below about 2^-121). */
#define G4_Q8_MAX_T 8
void g4_quant_act_q8(const float *x, int64_t n, int8_t *q, float *d);
/* sum over blocks of (float)(sum_i w_i q_i) * (dw * d[b]), w_i the stored integers (Q8_0: q;
 * Q4_0: q - 8): int32 sums of 4 values (exact), fp32 in 16 accumulators (block parity x group
 * of 4) with fmaf, then a fixed tree (ref/quant.c has the order); t is Q8_0 or Q4_0 */
float g4_dot_row_q8(g4_type t, const void *row, const int8_t *q, const float *d, int64_t n);
/* the same for prefill (G4_Q8_MAX_T tokens or more): int32 sum of each block (exact), fp32
 * acc = fmaf((float)sum, dw * d[b], acc) over blocks in order */
float g4_dot_row_q8_serial(g4_type t, const void *row, const int8_t *q, const float *d, int64_t n);

/* ---------------------------------------------------------------------------------------------
 * A tensor view: a name, a type, a shape in ggml order and a pointer to its bytes (usually into
 * an mmap). ne[0] is the contiguous (row) length.
 * ------------------------------------------------------------------------------------------- */
#define G4_MAX_DIMS 4
typedef struct {
    char name[96];
    g4_type type;
    int n_dims;
    int64_t ne[G4_MAX_DIMS];   /* unused dims are 1 */
    const void *data;
    size_t nbytes;
} g4_tensor;

static inline int64_t g4_tensor_nelem(const g4_tensor *t)
{ return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

/* ---------------------------------------------------------------------------------------------
 * GGUF v3 (ref/gguf.c): reader on mmap, and a streaming writer.
 * ------------------------------------------------------------------------------------------- */
typedef enum {
    G4_GGUF_U8 = 0, G4_GGUF_I8 = 1, G4_GGUF_U16 = 2, G4_GGUF_I16 = 3, G4_GGUF_U32 = 4,
    G4_GGUF_I32 = 5, G4_GGUF_F32 = 6, G4_GGUF_BOOL = 7, G4_GGUF_STRING = 8, G4_GGUF_ARRAY = 9,
    G4_GGUF_U64 = 10, G4_GGUF_I64 = 11, G4_GGUF_F64 = 12
} g4_gguf_vtype;

typedef struct { uint64_t len; const char *s; } g4_str;   /* not NUL-terminated: points into the map */

typedef struct g4_gguf_value {
    g4_gguf_vtype type;
    union { uint64_t u; int64_t i; double f; g4_str str; } v; /* scalars widened; bool in .u */
    /* arrays: element type and count; elements are decoded lazily with g4_gguf_arr_* */
    g4_gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;          /* first element in the map */
    struct g4_gguf_value *arr_nested; /* for arrays of arrays: arr_n decoded sub-values */
    const g4_str *arr_str;            /* for arrays of strings: arr_n strings (into the map) */
} g4_gguf_value;

typedef struct { g4_str key; g4_gguf_value val; } g4_gguf_kv;

typedef struct g4_gguf {
    char path[256];
    const uint8_t *map; size_t size;  /* the whole file, read-only mmap */
    uint32_t version;
    uint64_t n_kv;  g4_gguf_kv *kv;
    uint64_t n_tensors; g4_tensor *tensors;
    uint64_t alignment;               /* general.alignment or 32 */
    uint64_t data_offset;             /* start of the tensor data section */
} g4_gguf;

g4_gguf *g4_gguf_open(const char *path, g4_err *err);   /* validates everything; NULL on error */
void g4_gguf_close(g4_gguf *g);
const g4_gguf_value *g4_gguf_get(const g4_gguf *g, const char *key);      /* NULL if absent */
const g4_tensor *g4_gguf_tensor(const g4_gguf *g, const char *name);      /* NULL if absent */
/* typed helpers: return 0 and set *out if the key exists and converts; -1 otherwise */
int g4_gguf_get_int(const g4_gguf *g, const char *key, int64_t *out);
int g4_gguf_get_float(const g4_gguf *g, const char *key, double *out);
int g4_gguf_get_str(const g4_gguf *g, const char *key, char *out, size_t cap);
/* array element access (numeric arrays, bool arrays, string arrays) */
int64_t g4_gguf_arr_int(const g4_gguf_value *v, uint64_t i);
double  g4_gguf_arr_float(const g4_gguf_value *v, uint64_t i);
g4_str  g4_gguf_arr_str(const g4_gguf_value *v, uint64_t i);
const char *g4_gguf_vtype_name(g4_gguf_vtype t);

/* Streaming writer: declare metadata and tensors, then write. Tensor data comes either from a
 * memory pointer (already in the tensor's type) or from a row callback that produces fp32 rows,
 * which the writer converts with g4_quant_row (so a 12B file never lives in memory). */
typedef void (*g4_row_fn)(void *ctx, int64_t row, float *out /* [ne0] */);
typedef struct g4_gguf_writer g4_gguf_writer;
g4_gguf_writer *g4_gguf_writer_new(void);
void g4_gguf_writer_free(g4_gguf_writer *w);
void g4_gguf_add_u32(g4_gguf_writer *w, const char *key, uint32_t v);
void g4_gguf_add_i32(g4_gguf_writer *w, const char *key, int32_t v);
void g4_gguf_add_f32(g4_gguf_writer *w, const char *key, float v);
void g4_gguf_add_bool(g4_gguf_writer *w, const char *key, int v);
void g4_gguf_add_str(g4_gguf_writer *w, const char *key, const char *v);
void g4_gguf_add_arr(g4_gguf_writer *w, const char *key, g4_gguf_vtype t, const void *data, uint64_t n);
void g4_gguf_add_str_arr(g4_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
void g4_gguf_add_tensor(g4_gguf_writer *w, const char *name, g4_type t, int n_dims,
                        const int64_t *ne, const void *data);
void g4_gguf_add_tensor_rows(g4_gguf_writer *w, const char *name, g4_type t, int n_dims,
                             const int64_t *ne, g4_row_fn fn, void *ctx);
/* progress: called after each tensor with bytes written so far and total (may be NULL) */
int g4_gguf_write(g4_gguf_writer *w, const char *path,
                  void (*progress)(void *ctx, uint64_t done, uint64_t total), void *pctx, g4_err *err);

/* ---------------------------------------------------------------------------------------------
 * JSON (ref/json.c): a small DOM parser for safetensors headers, index files and config.json.
 * ------------------------------------------------------------------------------------------- */
typedef enum { G4_JNULL, G4_JBOOL, G4_JNUM, G4_JSTR, G4_JARR, G4_JOBJ } g4_jtype;
typedef struct g4_json {
    g4_jtype type;
    double num; int boolean;
    char *str;                 /* G4_JSTR: decoded UTF-8, NUL-terminated */
    char *key;                 /* set when this node is an object member */
    int n; struct g4_json *kids;  /* array elements or object members, in file order */
    size_t len;                /* G4_JSTR: byte length of str (it may hold a \u0000) */
} g4_json;
g4_json *g4_json_parse(const char *text, size_t len, g4_err *err);  /* err names no file */
void g4_json_free(g4_json *j);
const g4_json *g4_json_get(const g4_json *obj, const char *key);    /* NULL if absent */

/* ---------------------------------------------------------------------------------------------
 * HF safetensors (ref/safetensors.c): one file, or a folder / index.json with shards. F32, F16
 * and BF16 tensors; shapes are reported in ggml order (reversed) like GGUF.
 * ------------------------------------------------------------------------------------------- */
typedef struct g4_st {
    int n_files; struct { const uint8_t *map; size_t size; char path[256]; } *files;
    int n_tensors; g4_tensor *tensors;
} g4_st;
g4_st *g4_st_open(const char *path, g4_err *err); /* a .safetensors, an index.json or a folder */
void g4_st_close(g4_st *s);
const g4_tensor *g4_st_tensor(const g4_st *s, const char *name);
/* writer for one file from in-memory tensors (used by tests) */
int g4_st_write(const char *path, const g4_tensor *tensors, int n, g4_err *err);

/* ---------------------------------------------------------------------------------------------
 * Model config (ref/config.c)
 * ------------------------------------------------------------------------------------------- */
#define G4_MAX_LAYERS 64
#define G4_MAX_SUPPRESS 16
typedef struct {
    char name[32];             /* "12b", "tiny", or "file" */
    int n_layers;              /* 48 */
    int d_model;               /* 3840 */
    int d_ff;                  /* 15360 */
    int n_heads;               /* 16 query heads, every layer */
    int n_kv_swa, n_kv_full;   /* 8 / 1 KV heads on sliding / global layers */
    int hd_swa, hd_full;       /* 256 / 512 head_dim on sliding / global layers */
    int vocab;                 /* 262144 */
    int window;                /* 1024: sliding mask kv > q - window */
    float rope_theta_swa;      /* 1e4, default RoPE, every pair rotates */
    float rope_theta_full;     /* 1e6, proportional RoPE */
    float rope_partial_full;   /* 0.25: rotated pairs = int(0.25 * hd_full / 2) */
    float eps;                 /* 1e-6 RMSNorm eps */
    float softcap;             /* 30 final logit soft-cap; 0 = off */
    int k_eq_v;                /* 1: global layers have no v_proj, V = raw K projection */
    uint8_t is_global[G4_MAX_LAYERS]; /* 1 = full attention layer */
    int bos, eos, pad;         /* 2, 1, 0 */
    int n_stop; int stop[8];   /* generation stop ids: 1, 106, 50 */
    int n_suppress; int suppress[G4_MAX_SUPPRESS]; /* 258883, 258882: -inf logits */
    /* multimodal (spec 2.4, 3): special ids and the embedders' sizes; 0 when absent */
    int boi, eoi, image_tok;   /* 255999 <|image>, 258882 <image|>, 258880 <|image|> */
    int boa, eoa, audio_tok;   /* 256000 <|audio>, 258883 <audio|>, 258881 <|audio|> */
    int mm_dim;                /* 3840 vision embedder width (mm_embed_dim) */
    int mm_posemb;             /* 1120 rows of the factorized x/y position table */
    int audio_dim;             /* 640 samples per audio frame (audio_embed_dim) */
} g4_config;

int g4_config_builtin(const char *name, g4_config *c);  /* "12b" | "tiny"; 0 ok, -1 unknown */
int g4_config_from_gguf(const g4_gguf *g, g4_config *c, g4_err *err);
int g4_config_from_json(const char *path, g4_config *c, g4_err *err); /* HF config.json */
int g4_config_check(const g4_config *c, g4_err *err);   /* sanity: sizes > 0, limits */
static inline int g4_hd(const g4_config *c, int l) { return c->is_global[l] ? c->hd_full : c->hd_swa; }
static inline int g4_nkv(const g4_config *c, int l) { return c->is_global[l] ? c->n_kv_full : c->n_kv_swa; }
int64_t g4_config_nparams(const g4_config *c);          /* text decoder parameter count */

/* ---------------------------------------------------------------------------------------------
 * Model weights (ref/model.c). Matrices are tensor views (usually into an mmap); norm weights
 * and layer scalars are converted once to fp32 arrays owned by the model.
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    float *attn_norm;          /* [d_model] input_layernorm */
    g4_tensor wq;              /* rows n_heads*hd, cols d_model */
    g4_tensor wk;              /* rows n_kv*hd,    cols d_model */
    g4_tensor wv;              /* rows n_kv*hd,    cols d_model; type G4_T_NONE on K=V layers */
    g4_tensor wo;              /* rows d_model,    cols n_heads*hd */
    float *q_norm, *k_norm;    /* [hd] shared by all heads */
    float *post_attn_norm;     /* [d_model] */
    float *ffn_norm;           /* [d_model] pre_feedforward_layernorm */
    g4_tensor w_gate, w_up;    /* rows d_ff, cols d_model */
    g4_tensor w_down;          /* rows d_model, cols d_ff */
    float *post_ffn_norm;      /* [d_model] */
    float layer_scalar;        /* multiplies the whole residual after the layer */
} g4_layer;

/* Vision and audio embedders (spec 2.3, 3): weights in HF order (patch vectors HWC). */
typedef struct {
    int has_vision, has_audio;
    float *ln1_w, *ln1_b;      /* [6912] patch_ln1, HWC order (a GGUF mmproj's CHW is permuted back) */
    g4_tensor patch_dense;     /* rows mm_dim, cols 6912 (HWC columns) */
    float *patch_b;            /* [mm_dim] */
    float *ln2_w, *ln2_b;      /* [mm_dim] patch_ln2 */
    float *pos;                /* [mm_posemb][2][mm_dim]: [i][0] = x (column) row, [i][1] = y (row) row */
    float *pos_norm_w, *pos_norm_b; /* [mm_dim] pos_norm */
    g4_tensor vis_proj;        /* rows d_model, cols mm_dim: embed_vision.embedding_projection */
    g4_tensor aud_proj;        /* rows d_model, cols audio_dim: embed_audio.embedding_projection */
} g4_mm;

typedef struct g4_model {
    g4_config cfg;
    g4_mm mm;                  /* vision/audio embedders (has_vision/has_audio 0 when absent) */
    g4_gguf *mmproj;           /* a separate GGUF mmproj file, when loaded */
    g4_tensor tok_embd;        /* rows vocab, cols d_model; also the tied LM head */
    float *out_norm;           /* [d_model] final norm */
    g4_layer layers[G4_MAX_LAYERS];
    /* ownership */
    g4_gguf *gguf; g4_st *st;  /* the file the views point into (one of them, or none) */
    void **owned; int n_owned, cap_owned; /* buffers to free (fp32 norms, synthetic weights) */
    char source[256];          /* file path or "synthetic tiny f32 seed 1" */
    g4_type wtype;             /* dominant matrix type, for printing */
} g4_model;

/* Open GGUF (by magic), a .safetensors / index.json / folder with config.json. Vision and
 * audio weights inside a safetensors checkpoint are bound too (ref/mmproj.c). */
int g4_model_load(g4_model *m, const char *path, g4_err *err);
/* Deterministic synthetic weights in memory (ref/synth.c). */
int g4_model_synth(g4_model *m, const g4_config *c, g4_type wtype, uint64_t seed, g4_err *err);
void g4_model_free(g4_model *m);
/* ref/mmproj.c: bind the embedders from a GGUF mmproj (clip, gemma4uv/gemma4ua), or from the
 * HF names of an already open safetensors checkpoint (called by g4_model_load). */
int g4_mmproj_load(g4_model *m, const char *path, g4_err *err);
int g4_mm_bind_safetensors(g4_model *m, const char *path, g4_err *err);
/* Write m's embedders as a GGUF mmproj in the published layout (spec 5.3: clip, gemma4uv/
 * gemma4ua, patch weights permuted HWC->CHW, position table as planes). */
int g4_mmproj_write(const g4_model *m, const char *path, g4_err *err);
/* Write a model (any source) as GGUF with matrices in `wtype` (G4_T_NONE = keep each type). */
int g4_model_write_gguf(const g4_model *m, const char *path, g4_type wtype, g4_err *err);
/* Write a synthetic model straight to GGUF, row by row, without holding it in memory. */
int g4_synth_write_gguf(const g4_config *c, g4_type wtype, uint64_t seed, const char *path,
                        int verbose, g4_err *err);
/* The same, with a tokenizer's tokenizer.ggml.* keys in the file (tok may be NULL). */
struct g4_tokenizer;
int g4_synth_write_gguf_vocab(const g4_config *c, g4_type wtype, uint64_t seed, const char *path,
                              int verbose, const struct g4_tokenizer *tok, g4_err *err);
size_t g4_model_weight_bytes(const g4_model *m);
/* Add the gemma4.* metadata of spec 5.2 for config c (and its suppressed ids) to a GGUF being
 * written (model.c); g4_config_write_gguf_ids adds bos/eos/pad for a file without a vocabulary. */
void g4_config_write_gguf(g4_gguf_writer *w, const g4_config *c);
void g4_config_write_gguf_ids(g4_gguf_writer *w, const g4_config *c);
/* bytes of KV cache for ctx tokens (fp32): sliding layers hold min(ctx, window) positions */
size_t g4_kv_bytes(const g4_config *c, int ctx);
void *g4_model_own(g4_model *m, size_t bytes); /* zeroed buffer freed with the model */

/* ---------------------------------------------------------------------------------------------
 * Kernels (ref/kernels.c: the complete scalar table; opt/: ISA tables that override entries).
 * Stage code calls only through this table.
 * ------------------------------------------------------------------------------------------- */
typedef struct g4_kernels {
    const char *name;          /* "ref", "avx2", "neon", ... */
    /* Y[t][r] = sum_c W[r][c] * X[t][c] for t < T, r < rows(W); X is [T][cols], Y is [T][rows] */
    void (*matmul)(float *Y, const g4_tensor *W, const float *X, int T);
    /* y = x * w / sqrt(mean(x^2) + eps); w NULL = weightless. Gemma 4 convention: x*w, NOT x*(1+w) */
    void (*rmsnorm)(float *y, const float *x, const float *w, int n, float eps);
    /* PyTorch LayerNorm: y = (x - mean) / sqrt(var + eps) * w + b, biased variance, fp32
     * (vision embedder, eps 1e-5) */
    void (*layernorm)(float *y, const float *x, const float *w, const float *b, int n, float eps);
    /* The `bf16` flag of the entries below asks for PyTorch's bf16 tensor semantics: every
     * intermediate tensor op rounds to bf16 (spec 1.6a). With bf16 = 0 everything stays fp32. */
    /* rotate-half RoPE on n_heads heads of hd values at one position: for i < hd/2,
     *   x[i]' = x[i] c[i] - x[i+hd/2] s[i],  x[i+hd/2]' = x[i+hd/2] c[i] + x[i] s[i] */
    void (*rope)(float *x, int n_heads, int hd, const float *c, const float *s, int bf16);
    /* one query position, all heads: out[h] = softmax(q[h] . K[j]) . V[j] over the n_keys rows
     * whose pointers are given (the caller applied the mask by choosing them). Query head h uses
     * KV head h / group. K/V rows hold n_kv*hd values. scores: [n_keys] scratch. Scale 1.0. */
    void (*attention)(float *out, const float *q, int n_heads, int hd, int group,
                      const float *const *krow, const float *const *vrow, int n_keys,
                      float *scores, int bf16);
    /* Optional (NULL in the ref tables; the decoder then calls `attention` per query): T query
     * positions at once, for prefill. Query t (q and out at t * n_heads * hd) attends to the
     * rows lo[t] .. hi[t] (inclusive) of one shared list krow / vrow, with results equal bit
     * for bit to this table's `attention` on those rows alone. Lets a kernel read each K/V row
     * once for several queries. scores: [the longest span] for a query-by-query fallback. */
    void (*attention_batch)(float *out, const float *q, int T, int n_heads, int hd, int group,
                            const float *const *krow, const float *const *vrow,
                            const int *lo, const int *hi, float *scores, int bf16);
    /* out[i] = gelu_tanh(gate[i]) * up[i] */
    void (*geglu)(float *out, const float *gate, const float *up, int n, int bf16);
    /* x = cap * tanh(x / cap) */
    void (*softcap)(float *x, int n, float cap, int bf16);
    /* Optional entries, NULL in the ref table (scalar, single-threaded; opt/ fills them):
     * threads: n >= 1 uses n threads for the calls that follow, n = 0 only asks; returns the
     * count in use. Results never depend on it (fixed chunks, fixed reduction order).
     * fma_peak: GFLOP/s of an fp32 FMA loop on this table's vector unit with `threads` threads,
     * timed for about `seconds` (the machine limit bench/kernels.c reports beside each kernel). */
    int (*threads)(int n);
    double (*fma_peak)(int threads, double seconds);
    /* 1 in the tables of the opt-in "q8" numeric mode ("ref-q8", "avx2-q8", ...): a matmul
     * with Q8_0 or Q4_0 weights rounds each token's activations to int8 (g4_quant_act_q8) and
     * dots integers (g4_dot_row_q8 below G4_Q8_MAX_T tokens, g4_dot_row_q8_serial from there).
     * 0: fp32 activations. */
    int act_q8;
} g4_kernels;

extern const g4_kernels g4_kernels_ref;
extern const g4_kernels g4_kernels_ref_q8;   /* "ref-q8": ref with the q8 matmul rule */
/* Pick a table: `force` ("ref", "avx2", ...; NULL = best for this CPU, or $G4_KERNELS).
 * Defined in opt/dispatch.c for the full build and in ref/pick.c for the ref-only build. */
const g4_kernels *g4_kernels_pick(const char *force, g4_err *err);

/* ---------------------------------------------------------------------------------------------
 * Decoder (ref/decoder.c)
 * ------------------------------------------------------------------------------------------- */
/* Tap hook: called at fixed points with a name ("embed", "layer_out", "attn_out", "ffn_out",
 * "final_norm", "logits"), the layer (-1 for none) and T rows of n values. */
typedef void (*g4_tap_fn)(void *ctx, const char *name, int layer, const float *x, int T, int n);

/* A bidirectional block of positions [start, end): image soft tokens (spec 2.5). */
typedef struct { int start, end; } g4_block;

typedef struct g4_state {
    const g4_model *m;
    const g4_kernels *k;
    int bf16;                  /* 1: round to bf16 at the HF bf16 rounding points (spec 1.6a) */
    int max_ctx, max_batch;
    int pos;                   /* tokens already in the cache */
    /* KV cache per layer, rows of n_kv*hd floats (normed+roped K, v-normed V) */
    float *kc[G4_MAX_LAYERS], *vc[G4_MAX_LAYERS];
    int kv_cap[G4_MAX_LAYERS]; /* sliding: window (ring, slot = pos % window); global: grows */
    /* activations for a batch of up to max_batch tokens */
    float *x;                  /* [B][d_model] residual stream */
    float *h;                  /* [B][d_model] normed input */
    float *q;                  /* [B][n_heads*hd_max] */
    float *kn, *vn;            /* [B][n_kv_max*hd_max] new K and V of this batch */
    float *att;                /* [B][n_heads*hd_max] attention output */
    float *proj;               /* [B][d_model] */
    float *gate, *up;          /* [B][d_ff] */
    float *scores;             /* [max_ctx + B] one query's scores */
    float *logits;             /* [vocab] last position (or [B][vocab] when all_logits) */
    const float **krow, **vrow;/* [max_ctx + B] the K/V rows the batch's queries may see (the
                                * union of their masked spans, in position order) */
    int *span_lo, *span_hi;    /* [B] each query's rows in krow / vrow (inclusive) */
    float *rope_c, *rope_s;    /* [hd_max/2] cos/sin of one position */
    int all_logits;            /* 1: g4_forward fills logits for every position of the batch */
    g4_tap_fn tap; void *tap_ctx;
    size_t bytes;              /* bytes allocated by this state */
} g4_state;

int  g4_state_init(g4_state *s, const g4_model *m, const g4_kernels *k, int max_ctx,
                   int max_batch, int all_logits, g4_err *err);
void g4_state_free(g4_state *s);
void g4_state_reset(g4_state *s);    /* empty the cache */
/* Run n tokens starting at position s->pos (any n: split into max_batch chunks, but blocks are
 * never split). `mm` optional [n][d_model] rows used (unscaled) where mm_mask[i] != 0.
 * Logits of the last position (or all positions) land in s->logits, after soft-cap. */
int g4_forward(g4_state *s, const int *tokens, int n, const float *mm, const uint8_t *mm_mask,
               const g4_block *blocks, int n_blocks, g4_err *err);

/* ---------------------------------------------------------------------------------------------
 * Vision front end (ref/image.c: PNG -> resized RGB -> 48x48 patches; ref/vision.c: embedder)
 * ------------------------------------------------------------------------------------------- */
#define G4_PATCH 48                    /* pixels per patch side (16 x 3x3 merge) */
#define G4_PATCH_DIM (48 * 48 * 3)     /* 6912 values per patch, HWC */
typedef struct { int w, h; uint8_t *rgb; } g4_image;   /* [h][w][3] uint8 RGB */
int  g4_image_load_png(const char *path, g4_image *img, g4_err *err); /* alpha over white */
void g4_image_free(g4_image *img);
/* the reference resize policy (spec 2.1): largest multiple-of-48 grid within the budget */
int  g4_image_target_size(int h, int w, int max_soft_tokens, int *th, int *tw, g4_err *err);
/* antialiased bicubic on uint8 like torchvision's resize(antialias=True) */
int  g4_image_resize(const g4_image *in, int th, int tw, g4_image *out, g4_err *err);
/* raster-order 48x48 blocks: patches [n][6912] = pixel / 255 (row, col, channel inside the
 * block), pos [n][2] = (x = block column, y = block row); n = (h/48)*(w/48) */
void g4_image_patchify(const g4_image *img, float *patches, int *pos);
/* load + resize + patchify; *patches and *pos are malloc'd */
int  g4_image_prepare(const char *path, int max_soft_tokens, float **patches, int **pos, int *n,
                      g4_err *err);
/* patches [n][6912] + pos [n][2] -> out [n][d_model] (spec 2.3; k: kernels; bf16: rounding) */
int  g4_vision_embed(const g4_model *m, const g4_kernels *k, const float *patches, const int *pos,
                     int n, float *out, int bf16, g4_err *err);

/* ---------------------------------------------------------------------------------------------
 * Audio front end (ref/audio.c: WAV -> 16 kHz mono -> 640-sample frames -> embedder)
 * ------------------------------------------------------------------------------------------- */
#define G4_AUDIO_RATE 16000
#define G4_AUDIO_FRAME 640
#define G4_AUDIO_MAX_FRAMES 750        /* 30 s: the model card's per-clip limit */
typedef struct { int n, rate; float *x; } g4_audio;    /* mono samples, nominally in [-1, 1] */
int  g4_audio_load_wav(const char *path, g4_audio *a, g4_err *err); /* any rate, downmixed */
int  g4_audio_resample(const g4_audio *in, int rate, g4_audio *out, g4_err *err);
void g4_audio_free(g4_audio *a);
/* frames [n][640], last one zero-padded; fails when n > max_frames (0 = no limit) */
int  g4_audio_frames(const g4_audio *a16k, int max_frames, float **frames, int *n, g4_err *err);
/* load + resample + frame */
int  g4_audio_prepare(const char *path, int max_frames, float **frames, int *n, g4_err *err);
/* frames [n][640] -> out [n][d_model]: weightless RMSNorm then the projection (spec 3) */
int  g4_audio_embed(const g4_model *m, const g4_kernels *k, const float *frames, int n,
                    float *out, int bf16, g4_err *err);

/* ---------------------------------------------------------------------------------------------
 * Sampler (ref/sampler.c)
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    float temperature;         /* 0 = greedy */
    int top_k;                 /* 0 = off */
    float top_p;               /* 1 = off */
    uint64_t rng;              /* state, from the seed */
    int *idx; float *prob;     /* [vocab] scratch */
    int vocab;
} g4_sampler;
int  g4_sampler_init(g4_sampler *s, int vocab, float temperature, int top_k, float top_p, uint64_t seed);
void g4_sampler_free(g4_sampler *s);
/* suppressed ids get -inf first; returns the token id */
int  g4_sample(g4_sampler *s, float *logits, const int *suppress, int n_suppress);

/* ---------------------------------------------------------------------------------------------
 * Small utilities (ref/util.c)
 * ------------------------------------------------------------------------------------------- */
double g4_now(void);                   /* seconds, monotonic */
size_t g4_peak_rss(void);              /* bytes, from /proc/self/status VmHWM */
size_t g4_mem_available(void);         /* bytes, MemAvailable from /proc/meminfo (0 if unknown) */
uint64_t g4_splitmix64(uint64_t *state);
int g4_map_file(const char *path, const uint8_t **map, size_t *size, g4_err *err);
void g4_unmap_file(const uint8_t *map, size_t size);
int g4_parse_size(const char *s, size_t *out); /* "16G", "512M", "1000" */

/* ---------------------------------------------------------------------------------------------
 * Tokenizer and chat template (ref/tokenizer.c, ref/chat.c; spec 6)
 * ------------------------------------------------------------------------------------------- */
/* Token types: the GGUF tokenizer.ggml.token_type values (llama.cpp's). */
enum {
    G4_TOKT_NONE = 0,          /* no token has this id (a hole in a sparse tokenizer.json vocab) */
    G4_TOKT_NORMAL = 1,        /* produced by BPE */
    G4_TOKT_UNKNOWN = 2,       /* <unk> */
    G4_TOKT_CONTROL = 3,       /* <bos>, <|turn>, <|image|>...: matched in text only with allow_special */
    G4_TOKT_USER = 4,          /* user-defined: always matched as a whole in text (SentencePiece rule) */
    G4_TOKT_UNUSED = 5,
    G4_TOKT_BYTE = 6           /* <0xXX> byte-fallback token */
};
typedef struct g4_tokenizer g4_tokenizer;   /* opaque; immutable once built, shareable */

/* A GGUF with tokenizer.ggml.model = "gemma4" (tokens, token_type, merges; scores optional). */
g4_tokenizer *g4_tokenizer_from_gguf(const g4_gguf *g, g4_err *err);
/* A HF tokenizer.json (model BPE with byte_fallback, Gemma's normalizer/pre-tokenizer). */
g4_tokenizer *g4_tokenizer_from_json(const char *path, g4_err *err);
/* path: a .gguf, a tokenizer.json, or a folder holding tokenizer.json */
g4_tokenizer *g4_tokenizer_load(const char *path, g4_err *err);
/* The vocabulary for a loaded model: the GGUF's own, the tokenizer.json next to a safetensors
 * checkpoint (model_path = the path given to g4_model_load), or the built-in tiny vocabulary
 * for a vocab-512 model without one. Fails if the tokenizer has ids the model lacks. */
g4_tokenizer *g4_tokenizer_for_model(const g4_model *m, const char *model_path, g4_err *err);
/* The 512-id vocabulary of the built-in "tiny" model (docs/MODEL.md section 7 lists it). */
g4_tokenizer *g4_tokenizer_builtin_tiny(g4_err *err);
/* From arrays: pieces[n] (UTF-8, NUL-terminated; NULL = hole), types[n] (G4_TOKT_*), merges
 * "left right" in rank order. flags: G4_TOKF_* below. */
#define G4_TOKF_SPACE_META    1u  /* normalizer: " " -> U+2581 (and back when decoding) */
#define G4_TOKF_NEWLINE_SPLIT 2u  /* pre-split runs of \n from other text; a run that is a token is emitted whole */
#define G4_TOKF_BYTE_FALLBACK 4u  /* characters without a token become <0xXX> tokens */
#define G4_TOKF_GEMMA4        (G4_TOKF_SPACE_META | G4_TOKF_NEWLINE_SPLIT | G4_TOKF_BYTE_FALLBACK)
g4_tokenizer *g4_tokenizer_new(const char *name, int n, const char *const *pieces, const uint8_t *types,
                               const char *const *merges, int n_merges, unsigned flags, g4_err *err);
void g4_tokenizer_free(g4_tokenizer *t);
/* Add the tokenizer.ggml.* keys (model "gemma4") to a GGUF being written. */
int g4_tokenizer_write_gguf(const g4_tokenizer *t, g4_gguf_writer *w, g4_err *err);

int g4_tok_n_vocab(const g4_tokenizer *t);                  /* highest id + 1 */
int g4_tok_n_merges(const g4_tokenizer *t);
int g4_tok_id(const g4_tokenizer *t, const char *piece);    /* exact piece -> id, -1 if none */
int g4_tok_type(const g4_tokenizer *t, int id);             /* G4_TOKT_*, G4_TOKT_NONE if out of range */
const char *g4_tok_piece(const g4_tokenizer *t, int id, size_t *len); /* not NUL-terminated; NULL if none */
int g4_tok_bos(const g4_tokenizer *t);                      /* special ids, -1 if absent */
int g4_tok_eos(const g4_tokenizer *t);
int g4_tok_pad(const g4_tokenizer *t);
int g4_tok_unk(const g4_tokenizer *t);
const char *g4_tok_source(const g4_tokenizer *t);           /* file path or "built-in tiny" */

/* text (len bytes, any bytes) -> *ids (malloc'd, *n of them). Control/unknown tokens written in
 * the text are recognised only when allow_special; user-defined tokens always (as the reference
 * does). No BOS is added (the chat template writes it). 0 ok, -1 + err. */
int g4_tokenize(const g4_tokenizer *t, const char *text, size_t len, int allow_special,
                int **ids, int *n, g4_err *err);
/* ids -> malloc'd NUL-terminated UTF-8 (*len bytes). skip_control: drop control/unknown/unused
 * tokens. Invalid byte sequences become U+FFFD. */
char *g4_detokenize(const g4_tokenizer *t, const int *ids, int n, int skip_control, size_t *len,
                    g4_err *err);

/* Streaming decoder: push ids one at a time, get back only complete UTF-8 characters (bytes of
 * an unfinished character wait for the next push); flush at the end. */
typedef struct {
    const g4_tokenizer *t;
    int skip_control;
    uint8_t pend[4]; int npend;        /* bytes of an unfinished UTF-8 character */
    char *buf; size_t cap;             /* holds the text of the last push/flush, NUL-terminated */
} g4_detok;
int  g4_detok_init(g4_detok *d, const g4_tokenizer *t, int skip_control, g4_err *err);
/* 0 and the text in *text, *len (valid until the next call), or -1 + err for an id without a token */
int  g4_detok_push(g4_detok *d, int id, const char **text, size_t *len, g4_err *err);
void g4_detok_flush(g4_detok *d, const char **text, size_t *len);  /* pending bytes -> U+FFFD */
void g4_detok_free(g4_detok *d);

/* Chat template (ref/chat.c). A message is a role and a list of parts. */
typedef enum { G4_PART_TEXT = 0, G4_PART_IMAGE = 1, G4_PART_AUDIO = 2 } g4_part_kind;
typedef struct {
    g4_part_kind kind;
    const char *text;          /* G4_PART_TEXT: UTF-8, NUL-terminated (trimmed by the template) */
    int n_soft;                /* IMAGE / AUDIO: soft tokens (patches / 640-sample frames), >= 1 */
} g4_chat_part;
typedef struct {
    const char *role;          /* "system"/"developer" (first message only), "user", "assistant"/"model" */
    const g4_chat_part *parts; int n_parts;
} g4_chat_msg;
typedef struct {
    int thinking;              /* 1: <|think|> opens the system turn; 0: empty thought channel */
    int add_generation_prompt; /* 1: end with <|turn>model\n (+ the empty channel when not thinking) */
    int continuation;          /* 1: the messages extend a conversation already in the KV cache:
                                  no <bos>, no system turn */
} g4_chat_opts;
/* The token ids the template uses, looked up by piece (-1 when the vocabulary lacks one). */
typedef struct {
    int bos, eos, turn_start, turn_end, nl, think, chan_start, chan_end, tool_response;
    int boi, eoi, image, boa, eoa, audio;
} g4_chat_ids;
/* A built prompt: ids, which positions take embedder rows, and where each media item's soft
 * tokens are ([start, end): images are the decoder's bidirectional g4_blocks, audio is causal). */
typedef struct {
    int *ids; int n;           /* [n] */
    uint8_t *mm_mask;          /* [n] 1 = the row comes from the image/audio embedder */
    g4_block *images; int n_images;
    g4_block *audio; int n_audio;
    int cap, cap_img, cap_aud;
} g4_prompt;
int  g4_chat_ids_get(const g4_tokenizer *t, g4_chat_ids *ids, g4_err *err); /* needs turn/nl/bos */
int  g4_chat_build(const g4_tokenizer *t, const g4_chat_msg *msgs, int n_msgs, const g4_chat_opts *o,
                   g4_prompt *p, g4_err *err);              /* appends to p (zero it first) */
void g4_prompt_free(g4_prompt *p);
/* stop ids of the template: eos, <turn|>, <|tool_response> (those present); returns the count */
int  g4_chat_stop_ids(const g4_tokenizer *t, int *stop, int cap);

/* Generation with streamed text (ref/chat.c): run p through the decoder (continuing the cache;
 * mm = [p->n][d_model] rows where p->mm_mask is set, or NULL), then sample up to n_max tokens,
 * stopping at a stop id of the config, writing the text to `out` as it comes. */
typedef struct {
    int n_prompt, n_gen;       /* tokens fed / sampled (the stop id counts, is not printed or fed) */
    int stop_id;               /* the stop id that ended it, -1 if n_max did */
    double t_prefill, t_decode;
} g4_gen_stats;
int g4_generate(g4_state *s, g4_sampler *smp, const g4_tokenizer *t, const g4_prompt *p,
                const float *mm, int n_max, FILE *out, g4_gen_stats *st, g4_err *err);
/* Interactive chat on `in` (one user message per line, EOF ends): the KV cache is kept between
 * turns, each turn appends "<turn|>\n" + the new user turn + the generation prompt. */
typedef struct {
    const char *system;        /* NULL = none */
    int thinking;
    int n_max;                 /* tokens per reply */
    const char *prompt;        /* "> " printed on `out` before each line (NULL = none) */
} g4_chat_cfg;
int g4_chat_loop(g4_state *s, g4_sampler *smp, const g4_tokenizer *t, const g4_chat_cfg *cfg,
                 FILE *in, FILE *out, g4_err *err);

#endif

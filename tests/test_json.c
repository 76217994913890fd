/* test_json.c - ref/json.c: RFC 8259 conformance, errors with byte offsets, and speed.
 *
 * Every accept case checks the decoded value exactly; every reject case checks that the parser
 * returns NULL with a one-line message "json: ... at byte N" (and N where it is well defined).
 * The speed case parses a synthetic ~30 MB tokenizer.json-like document and checks both the
 * absolute time (< 1 s, the budget of the tokenizer loader) and that 10x the input costs well
 * under 100x the time (a quadratic parser would show ~100x).
 */
#include "g4.h"
#include "harness.h"

#include <stdint.h>

static g4_json *P(const char *s, g4_err *e) { return g4_json_parse(s, strlen(s), e); }

/* parse must fail; returns 1 if it did with a well-formed message */
static int rejects(const char *s, const char *why_part)
{
    g4_err e = {{0}};
    g4_json *j = g4_json_parse(s, strlen(s), &e);
    if (j) { g4_json_free(j); printf("    accepted: %s\n", s); return 0; }
    if (strncmp(e.msg, "json: ", 6) != 0 || !strstr(e.msg, " at byte ")) {
        printf("    bad message for %s: %s\n", s, e.msg); return 0;
    }
    if (why_part && !strstr(e.msg, why_part)) {
        printf("    message for %s lacks '%s': %s\n", s, why_part, e.msg); return 0;
    }
    return 1;
}

static double num_of(const char *s, int *ok)
{
    g4_err e = {{0}};
    g4_json *j = P(s, &e);
    *ok = j && j->type == G4_JNUM;
    if (!*ok) { printf("    %s: %s\n", s, j ? "not a number" : e.msg); g4_json_free(j); return 0; }
    double v = j->num;
    g4_json_free(j);
    return v;
}

static void test_literals_and_structure(void)
{
    g4_err e = {{0}};
    g4_json *j = P(" \t\r\n{\"a\": [true, false, null, 1, \"x\", {}, []], \"b\": {\"c\": -2}} \n", &e);
    CHECK(j, "parse: %s", e.msg);
    if (!j) return;
    CHECK(j->type == G4_JOBJ && j->n == 2, "root object with 2 members");
    const g4_json *a = g4_json_get(j, "a");
    CHECK(a && a->type == G4_JARR && a->n == 7, "a is a 7-array");
    if (a && a->n == 7) {
        CHECK(a->kids[0].type == G4_JBOOL && a->kids[0].boolean == 1, "true");
        CHECK(a->kids[1].type == G4_JBOOL && a->kids[1].boolean == 0, "false");
        CHECK(a->kids[2].type == G4_JNULL, "null");
        CHECK(a->kids[3].type == G4_JNUM && a->kids[3].num == 1.0, "1");
        CHECK(a->kids[4].type == G4_JSTR && strcmp(a->kids[4].str, "x") == 0 && a->kids[4].len == 1, "x");
        CHECK(a->kids[5].type == G4_JOBJ && a->kids[5].n == 0 && !a->kids[5].kids, "{}");
        CHECK(a->kids[6].type == G4_JARR && a->kids[6].n == 0, "[]");
        CHECK(a->kids[0].key == NULL, "array elements have no key");
    }
    const g4_json *c = g4_json_get(g4_json_get(j, "b"), "c");
    CHECK(c && c->num == -2.0, "b.c == -2");
    CHECK(strcmp(j->kids[0].key, "a") == 0 && strcmp(j->kids[1].key, "b") == 0, "file order kept");
    CHECK(g4_json_get(j, "zz") == NULL, "absent key");
    CHECK(g4_json_get(a, "a") == NULL, "get on an array is NULL");
    CHECK(g4_json_get(NULL, "a") == NULL, "get on NULL is NULL");
    g4_json_free(j);

    /* scalars at top level are valid JSON texts (RFC 8259) */
    const char *tops[] = { "true", "false", "null", "0", "\"s\"", " [ ] " };
    for (int k = 0; k < 6; k++) {
        j = P(tops[k], &e);
        CHECK(j, "top-level %s: %s", tops[k], e.msg);
        g4_json_free(j);
    }
    /* duplicate names: all kept, get returns the last (as Python's json does) */
    j = P("{\"k\":1,\"k\":2}", &e);
    CHECK(j && j->n == 2 && g4_json_get(j, "k")->num == 2.0, "duplicate key: last wins");
    g4_json_free(j);
    /* UTF-8 BOM is skipped */
    j = P("\xEF\xBB\xBF{\"a\":1}", &e);
    CHECK(j && g4_json_get(j, "a"), "BOM skipped: %s", j ? "" : e.msg);
    g4_json_free(j);
    g4_json_free(NULL);
}

static void test_numbers(void)
{
    struct { const char *s; double v; } ok[] = {
        { "0", 0.0 }, { "-0", -0.0 }, { "7", 7.0 }, { "-123", -123.0 },
        { "999999999999999", 999999999999999.0 },          /* 15 digits: integer fast path */
        { "9007199254740993", 9007199254740992.0 },        /* 2^53+1 rounds to even (strtod) */
        { "1e2", 100.0 }, { "1E+2", 100.0 }, { "1e-2", 0.01 }, { "2.5", 2.5 }, { "-0.125", -0.125 },
        { "0.1", 0.1 }, { "1.0e-6", 1e-6 }, { "1000000.0", 1e6 }, { "1.7976931348623157e308", 1.7976931348623157e308 },
        { "4.9e-324", 4.9e-324 }, { "1e-400", 0.0 },       /* underflow to 0 is fine */
        { "262144", 262144.0 }, { "-1e30", -1e30 },
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        int good;
        double v = num_of(ok[k].s, &good);
        CHECK(good && v == ok[k].v && signbit(v) == signbit(ok[k].v), "%s -> %.17g", ok[k].s, v);
    }
    const char *bad[] = { "01", "-", "+1", "1.", ".5", "1e", "1e+", "1.e3", "0x10", "- 1", "1e400",
                          "-1e400", "NaN", "Infinity", "--1", "1.5.2", "00" };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK(rejects(bad[k], NULL), "number %s must be rejected", bad[k]);
    CHECK(rejects("1e400", "out of range"), "overflow message");
    /* a long number (strtod path with heap buffer) */
    char buf[300] = "0.";
    for (int k = 0; k < 250; k++) strcat(buf, "0");
    strcat(buf, "15");
    int good;
    double v = num_of(buf, &good);
    CHECK(good && v == 1.5e-251, "long number %.17g", v);
}

static void test_strings(void)
{
    g4_err e = {{0}};
    struct { const char *in; const char *out; size_t len; } ok[] = {
        { "\"\"", "", 0 },
        { "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\" \\ / \b \f \n \r \t", 15 },
        { "\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6 },
        { "\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4 },                /* U+1F600 via a pair */
        { "\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4 },                /* U+10FFFF */
        { "\"\\uD800\\uDC00\"", "\xF0\x90\x80\x80", 4 },                /* U+10000 */
        { "\"caf\xC3\xA9 \xE2\x96\x81 \xF0\x9F\x98\x80\"", "caf\xC3\xA9 \xE2\x96\x81 \xF0\x9F\x98\x80", 14 },
        { "\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"", "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF", 11 },
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        g4_json *j = P(ok[k].in, &e);
        CHECK(j && j->type == G4_JSTR, "%s: %s", ok[k].in, j ? "not a string" : e.msg);
        if (j && j->type == G4_JSTR) {
            CHECK(j->len == ok[k].len && memcmp(j->str, ok[k].out, ok[k].len) == 0 && j->str[j->len] == 0,
                  "%s decoded wrong (len %zu)", ok[k].in, j->len);
        }
        g4_json_free(j);
    }
    /* \u0000 is kept: len counts it */
    g4_json *j = P("\"a\\u0000b\"", &e);
    CHECK(j && j->len == 3 && memcmp(j->str, "a\0b", 4) == 0, "embedded NUL");
    g4_json_free(j);
    /* member names are decoded the same way */
    j = P("{\"\\u00e9\\n\": 1}", &e);
    CHECK(j && j->n == 1 && strcmp(j->kids[0].key, "\xC3\xA9\n") == 0, "escaped key");
    CHECK(j && g4_json_get(j, "\xC3\xA9\n"), "get escaped key");
    g4_json_free(j);

    struct { const char *in; const char *why; } bad[] = {
        { "\"abc", "unterminated" },
        { "\"abc\\\"", "unterminated" },
        { "\"\\x\"", "invalid escape" },
        { "\"\\u12\"", "\\u escape" },
        { "\"\\u12G4\"", "\\u escape" },
        { "\"\\udc00\"", "lone low surrogate" },
        { "\"\\ud800\"", "high surrogate" },
        { "\"\\ud800x\"", "high surrogate" },
        { "\"\\ud800\\u0041\"", "high surrogate" },
        { "\"\\ud800\\ud800\"", "high surrogate" },
        { "\"a\tb\"", "control character" },
        { "\"a\nb\"", "control character" },
        { "\"\xC0\x80\"", "UTF-8" },        /* overlong NUL */
        { "\"\xE0\x80\x80\"", "UTF-8" },    /* overlong */
        { "\"\xED\xA0\x80\"", "UTF-8" },    /* encoded surrogate */
        { "\"\xF4\x90\x80\x80\"", "UTF-8" },/* > U+10FFFF */
        { "\"\xF5\x80\x80\x80\"", "UTF-8" },
        { "\"\x80\"", "UTF-8" },            /* lone continuation */
        { "\"\xC3\"", "UTF-8" },            /* truncated sequence before the quote */
        { "\"\xE2\x82\"", "UTF-8" },
        { "\"\xFF\"", "UTF-8" },
        { "{\"a\\q\":1}", "invalid escape" },
        { "\"\\", "unterminated" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK(rejects(bad[k].in, bad[k].why), "string %zu must be rejected (%s)", k, bad[k].why);
    /* a NUL byte inside a string is a raw control character (length-bounded input) */
    const char nul[] = "\"a\0b\"";
    CHECK(!g4_json_parse(nul, 5, &e), "raw NUL in a string rejected");
}

static void test_syntax_errors_and_offsets(void)
{
    struct { const char *in; const char *why; long at; } bad[] = {
        { "", "end of input", 0 },
        { "   ", "end of input", 3 },
        { "{\"a\": tru}", "invalid literal", 6 },
        { "[1 2]", "expected ','", 3 },
        { "[1,]", "unexpected character ']'", 3 },
        { "{\"a\":1,}", "member name", 7 },
        { "{a:1}", "member name", 1 },
        { "{\"a\" 1}", "':'", 5 },
        { "{\"a\":1 \"b\":2}", "expected ','", 7 },
        { "[1] x", "after the JSON value", 4 },
        { "{} {}", "after the JSON value", 3 },
        { "[", "end of input", 1 },
        { "[1", "unterminated array", 0 },
        { "{\"a\":1", "unterminated object", 0 },
        { "{", "unterminated object", 0 },
        { "nul", "invalid literal", 0 },
        { "True", "unexpected character 'T'", 0 },
        { "[\x01]", "unexpected byte 0x01", 1 },
        { "'a'", "unexpected character", 0 },
        { "[1,,2]", "unexpected character ','", 3 },
        { "\xEF\xBB\xBF", "end of input", 3 },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        g4_err e = {{0}};
        g4_json *j = P(bad[k].in, &e);
        char want[32];
        snprintf(want, sizeof want, " at byte %ld", bad[k].at);
        int good = !j && strncmp(e.msg, "json: ", 6) == 0 && strstr(e.msg, bad[k].why) && strstr(e.msg, want);
        CHECK(good, "case %zu '%s': got '%s', want '%s' and '%s'", k, bad[k].in, j ? "(accepted)" : e.msg,
              bad[k].why, want);
        g4_json_free(j);
    }
}

static void test_truncation(void)
{
    /* every proper prefix of a document whose value ends with its last byte must fail cleanly */
    const char *doc = "{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12],"
                      "\"x\":[-1.5e-3,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\",{\"y\":[[]]}]}";
    size_t n = strlen(doc);
    int fails = 0;
    for (size_t k = 0; k < n; k++) {
        g4_err e = {{0}};
        g4_json *j = g4_json_parse(doc, k, &e);   /* not NUL-terminated at k: length-bounded */
        if (j || !strstr(e.msg, " at byte ")) { fails++; g4_json_free(j); }
    }
    CHECK(fails == 0, "%d of %zu prefixes not rejected properly", fails, n);
    g4_err e = {{0}};
    g4_json *j = g4_json_parse(doc, n, &e);
    CHECK(j && j->n == 4, "full doc parses: %s", e.msg);
    g4_json_free(j);
}

static void test_depth(void)
{
    /* 512 nested containers are fine, 513 are an error; 200000 do not overflow the stack */
    int depths[] = { 512, 513, 200000 };
    for (int d = 0; d < 3; d++) {
        int n = depths[d];
        char *s = malloc((size_t)2 * n + 2);
        for (int k = 0; k < n; k++) s[k] = '[';
        for (int k = 0; k < n; k++) s[n + k] = ']';
        s[2 * n] = 0;
        g4_err e = {{0}};
        g4_json *j = g4_json_parse(s, (size_t)2 * n, &e);
        if (n <= 512) CHECK(j != NULL, "depth %d accepted: %s", n, e.msg);
        else CHECK(!j && strstr(e.msg, "nesting deeper than 512") && strstr(e.msg, "at byte 512"),
                   "depth %d rejected: %s", n, j ? "(accepted)" : e.msg);
        g4_json_free(j);
        free(s);
    }
    /* objects count too */
    char s[4000] = "";
    for (int k = 0; k < 513; k++) strcat(s, "{\"a\":");
    g4_err e = {{0}};
    g4_json *j = P(s, &e);
    CHECK(!j && strstr(e.msg, "nesting"), "nested objects: %s", e.msg);
    g4_json_free(j);
}

/* A tokenizer.json-like document of about `mb` MB */
static char *make_big(double mb, size_t *len)
{
    size_t cap = (size_t)(mb * 1e6) + 4096, n = 0;
    char *s = malloc(cap + 65536);   /* slack for the last entry and the scores */
    n += (size_t)sprintf(s + n, "{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\",\"vocab\":{");
    uint64_t st = 1;
    int id = 0;
    size_t half = cap / 2;
    while (n < half) {
        uint64_t r = g4_splitmix64(&st);
        n += (size_t)sprintf(s + n, "%s\"\xE2\x96\x81tok%d_%llx\\u00e9\\ud83d\\ude00\\n\":%d", id ? "," : "", id,
                             (unsigned long long)(r & 0xffff), id);
        id++;
    }
    n += (size_t)sprintf(s + n, "},\"merges\":[");
    int m = 0;
    while (n < cap) {
        uint64_t r = g4_splitmix64(&st);
        n += (size_t)sprintf(s + n, "%s[\"a%llx\",\"b\\\"%d\"]", m ? "," : "", (unsigned long long)(r & 0xfffff), m);
        m++;
    }
    n += (size_t)sprintf(s + n, "]},\"scores\":[");
    for (int k = 0; k < 1000; k++) n += (size_t)sprintf(s + n, "%s%.9g", k ? "," : "", -1e-3 * k - 0.5);
    n += (size_t)sprintf(s + n, "]}");
    *len = n;
    return s;
}

static double time_parse(const char *s, size_t n, int *ok)
{
    g4_err e = {{0}};
    double best = 1e9;
    for (int rep = 0; rep < 2; rep++) {
        double t0 = g4_now();
        g4_json *j = g4_json_parse(s, n, &e);
        double t = g4_now() - t0;
        *ok = j && g4_json_get(j, "model") && g4_json_get(g4_json_get(j, "model"), "vocab");
        g4_json_free(j);
        if (t < best) best = t;
    }
    return best;
}

static void test_speed(void)
{
    size_t n_small, n_big;
    char *small = make_big(3.0, &n_small), *big = make_big(30.0, &n_big);
    int ok1, ok2;
    double ts = time_parse(small, n_small, &ok1);
    double tb = time_parse(big, n_big, &ok2);
    CHECK(ok1 && ok2, "big documents parse");
    printf("    parse %.1f MB: %.3f s (%.0f MB/s); %.1f MB: %.3f s; ratio %.1f for 10x input\n",
           n_big / 1e6, tb, n_big / 1e6 / tb, n_small / 1e6, ts, tb / ts);
    /* budget: the tokenizer loader may spend up to 1 s on a 30 MB tokenizer.json (optimized
     * build; a sanitizer build is several times slower, so only the linearity check applies) */
#if defined(__SANITIZE_ADDRESS__)
    printf("    sanitizer build: absolute time budget not checked\n");
#else
    CHECK(tb < 1.0, "30 MB parse took %.3f s (budget 1 s)", tb);
#endif
    /* linear: 10x input in < 25x time (quadratic would be ~100x; slack for cache effects) */
    CHECK(tb / ts < 25.0, "time ratio %.1f for 10x input: not linear", tb / ts);
    free(small); free(big);
}

int main(void)
{
    RUN(test_literals_and_structure);
    RUN(test_numbers);
    RUN(test_strings);
    RUN(test_syntax_errors_and_offsets);
    RUN(test_truncation);
    RUN(test_depth);
    RUN(test_speed);
    return h_finish();
}

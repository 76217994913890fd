/* json.c - a strict RFC 8259 JSON parser building a small DOM (g4_json).
 *
 * Used for safetensors headers, model.safetensors.index.json, config.json and (later)
 * tokenizer.json, which is ~30 MB: so everything here is linear in the input size.
 *
 * Input : `text` of `len` bytes (need not be NUL-terminated), UTF-8, an optional UTF-8 BOM.
 * Output: a tree of g4_json nodes owned by the caller (free with g4_json_free).
 *   - objects and arrays keep their members in file order in `kids[0..n)`; an object member
 *     carries its name in `key`. Duplicate names are kept; g4_json_get returns the LAST one
 *     (the behaviour of Python's json module, which wrote most of the files we read).
 *   - strings are decoded to UTF-8 (all escapes, \uXXXX surrogate pairs joined), NUL-terminated,
 *     with their byte length in `len` (a string may contain \u0000).
 *   - numbers are doubles (correctly rounded by strtod; integers of <= 15 digits are exact).
 * Errors (one line, "json: <problem> at byte <offset>"), never a crash:
 *   malformed syntax, trailing characters after the value, raw control characters or invalid
 *   UTF-8 inside strings, lone or unpaired surrogates, numbers that overflow a double,
 *   nesting deeper than G4_JSON_MAX_DEPTH containers, out of memory.
 *
 * How it stays linear: a recursive-descent parser (recursion depth bounded by the nesting limit)
 * pushes each finished child onto one growable scratch stack shared by all levels; when a
 * container closes, its children are copied once into an exactly-sized `kids` array and popped.
 */
#include "g4.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define G4_JSON_MAX_DEPTH 512

typedef struct {
    const unsigned char *s;   /* the text */
    size_t n;                 /* its length in bytes */
    size_t i;                 /* cursor */
    g4_json *stk;             /* scratch stack of finished children of the open containers */
    size_t sp, cap;
    g4_err *err;
} jparser;

static int jfail(jparser *p, size_t at, const char *what)
{
    return g4_fail(p->err, "json: %s at byte %zu", what, at);
}

static void node_free(g4_json *j)
{
    free(j->str);
    free(j->key);
    for (int k = 0; k < j->n; k++) node_free(&j->kids[k]);
    free(j->kids);
}

static void skip_ws(jparser *p)
{
    while (p->i < p->n) {
        unsigned char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

static int unexpected(jparser *p)
{
    if (p->i >= p->n) return jfail(p, p->i, "unexpected end of input");
    unsigned char c = p->s[p->i];
    char what[48];
    if (c >= 0x20 && c < 0x7f) snprintf(what, sizeof what, "unexpected character '%c'", c);
    else snprintf(what, sizeof what, "unexpected byte 0x%02x", c);
    return jfail(p, p->i, what);
}

/* Length of the valid UTF-8 sequence starting at s (avail bytes available), 0 if invalid
 * (overlong forms, UTF-16 surrogates and code points above U+10FFFF are invalid). */
static int utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int len; unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;       /* no overlongs */
        if (c == 0xED) hi = 0x9F;       /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;       /* no overlongs */
        if (c == 0xF4) hi = 0x8F;       /* <= U+10FFFF */
    } else return 0;
    if (avail < (size_t)len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    return len;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = s[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parse the string starting at the opening quote; *out = malloc'd decoded bytes + NUL. */
static int parse_string(jparser *p, char **out, size_t *out_len)
{
    const unsigned char *s = p->s;
    size_t open = p->i, a = p->i + 1, i = a;
    int esc = 0, high = 0;
    /* pass 1: find the closing quote; the decoded text is never longer than the raw text */
    for (;;) {
        if (i >= p->n) return jfail(p, open, "unterminated string");
        unsigned char c = s[i];
        if (c == '"') break;
        if (c == '\\') { esc = 1; i += 2; continue; }
        if (c < 0x20) return jfail(p, i, "raw control character in string");
        if (c >= 0x80) high = 1;
        i++;
    }
    size_t b = i;                                   /* s[b] is the closing quote */
    char *o = malloc(b - a + 1);
    if (!o) return jfail(p, open, "out of memory");
    size_t w = 0;
    if (!esc && !high) {
        memcpy(o, s + a, b - a);
        w = b - a;
    } else {
        /* pass 2: decode escapes and validate UTF-8 */
        for (i = a; i < b;) {
            unsigned char c = s[i];
            if (c >= 0x80) {
                int l = utf8_seq_len(s + i, b - i);
                if (!l) { free(o); return jfail(p, i, "invalid UTF-8 in string"); }
                memcpy(o + w, s + i, (size_t)l); w += (size_t)l; i += (size_t)l;
                continue;
            }
            if (c != '\\') { o[w++] = (char)c; i++; continue; }
            unsigned char e = s[i + 1];             /* i + 1 < b: pass 1 skipped escapes whole */
            switch (e) {
            case '"': o[w++] = '"'; break;
            case '\\': o[w++] = '\\'; break;
            case '/': o[w++] = '/'; break;
            case 'b': o[w++] = '\b'; break;
            case 'f': o[w++] = '\f'; break;
            case 'n': o[w++] = '\n'; break;
            case 'r': o[w++] = '\r'; break;
            case 't': o[w++] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (i + 6 > b || hex4(s + i + 2, &cp)) {
                    free(o); return jfail(p, i, "bad \\u escape (need 4 hex digits)");
                }
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    free(o); return jfail(p, i, "lone low surrogate \\u escape");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (i + 12 > b || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s + i + 8, &lo)
                        || lo < 0xDC00 || lo > 0xDFFF) {
                        free(o); return jfail(p, i, "high surrogate \\u escape not followed by a low one");
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                w += put_utf8(o + w, cp);
                i += 6;
                continue;
            }
            default:
                free(o); return jfail(p, i, "invalid escape in string");
            }
            i += 2;
        }
    }
    o[w] = 0;
    *out = o; *out_len = w;
    p->i = b + 1;
    return 0;
}

static int parse_number(jparser *p, double *out)
{
    const unsigned char *s = p->s;
    size_t a = p->i, i = a, n = p->n;
    int neg = 0, frac = 0;
    if (s[i] == '-') { neg = 1; i++; }
    size_t d0 = i;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9') { while (i < n && s[i] >= '0' && s[i] <= '9') i++; }
    else { p->i = i; return jfail(p, i, "invalid number (digit expected)"); }
    size_t ndig = i - d0;
    if (i < n && s[i] == '.') {
        frac = 1; i++;
        if (!(i < n && s[i] >= '0' && s[i] <= '9')) return jfail(p, i, "invalid number (digit expected after '.')");
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        frac = 1; i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (!(i < n && s[i] >= '0' && s[i] <= '9')) return jfail(p, i, "invalid number (digit expected in exponent)");
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    p->i = i;
    if (!frac && ndig <= 15) {                      /* exact: < 2^53 */
        int64_t v = 0;
        for (size_t k = d0; k < i; k++) v = v * 10 + (s[k] - '0');
        *out = neg ? -(double)v : (double)v;
        return 0;
    }
    char small[64], *buf = small;
    size_t len = i - a;
    if (len >= sizeof small) {
        buf = malloc(len + 1);
        if (!buf) return jfail(p, a, "out of memory");
    }
    memcpy(buf, s + a, len);
    buf[len] = 0;
    double v = strtod(buf, NULL);
    if (buf != small) free(buf);
    if (!isfinite(v)) return jfail(p, a, "number out of range of a double");
    *out = v;
    return 0;
}

static int push(jparser *p, const g4_json *v)
{
    if (p->sp == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        g4_json *ns = realloc(p->stk, cap * sizeof *ns);
        if (!ns) return -1;
        p->stk = ns; p->cap = cap;
    }
    p->stk[p->sp++] = *v;
    return 0;
}

/* drop (and free) the scratch entries above base after an error */
static void unwind(jparser *p, size_t base)
{
    while (p->sp > base) node_free(&p->stk[--p->sp]);
}

/* move the children pushed since base into out->kids */
static int close_container(jparser *p, size_t base, g4_json *out, size_t at)
{
    size_t cnt = p->sp - base;
    if (cnt > (size_t)INT_MAX) { unwind(p, base); return jfail(p, at, "too many members"); }
    out->n = (int)cnt;
    out->kids = NULL;
    if (cnt) {
        out->kids = malloc(cnt * sizeof *out->kids);
        if (!out->kids) { unwind(p, base); return jfail(p, at, "out of memory"); }
        memcpy(out->kids, p->stk + base, cnt * sizeof *out->kids);
    }
    p->sp = base;
    return 0;
}

static int parse_value(jparser *p, g4_json *out, int depth);

static int parse_array(jparser *p, g4_json *out, int depth)
{
    size_t open = p->i, base = p->sp;
    out->type = G4_JARR;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == ']') { p->i++; return close_container(p, base, out, open); }
    for (;;) {
        g4_json v;
        if (parse_value(p, &v, depth + 1)) { unwind(p, base); return -1; }
        if (push(p, &v)) { node_free(&v); unwind(p, base); return jfail(p, p->i, "out of memory"); }
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == ']') { p->i++; return close_container(p, base, out, open); }
        unwind(p, base);
        if (p->i >= p->n) return jfail(p, open, "unterminated array");
        return jfail(p, p->i, "expected ',' or ']' in array");
    }
}

static int parse_object(jparser *p, g4_json *out, int depth)
{
    size_t open = p->i, base = p->sp;
    out->type = G4_JOBJ;
    p->i++;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == '}') { p->i++; return close_container(p, base, out, open); }
    for (;;) {
        skip_ws(p);
        if (p->i >= p->n) { unwind(p, base); return jfail(p, open, "unterminated object"); }
        if (p->s[p->i] != '"') { unwind(p, base); return jfail(p, p->i, "expected a string member name"); }
        char *key; size_t klen;
        if (parse_string(p, &key, &klen)) { unwind(p, base); return -1; }
        skip_ws(p);
        if (p->i >= p->n || p->s[p->i] != ':') {
            free(key); unwind(p, base);
            return jfail(p, p->i, "expected ':' after member name");
        }
        p->i++;
        g4_json v;
        if (parse_value(p, &v, depth + 1)) { free(key); unwind(p, base); return -1; }
        v.key = key;
        if (push(p, &v)) { node_free(&v); unwind(p, base); return jfail(p, p->i, "out of memory"); }
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == '}') { p->i++; return close_container(p, base, out, open); }
        unwind(p, base);
        if (p->i >= p->n) return jfail(p, open, "unterminated object");
        return jfail(p, p->i, "expected ',' or '}' in object");
    }
}

static int literal(jparser *p, const char *word)
{
    size_t l = strlen(word);
    if (p->n - p->i < l || memcmp(p->s + p->i, word, l) != 0) return jfail(p, p->i, "invalid literal");
    p->i += l;
    return 0;
}

/* depth = number of containers enclosing this value */
static int parse_value(jparser *p, g4_json *out, int depth)
{
    memset(out, 0, sizeof *out);
    skip_ws(p);
    if (p->i >= p->n) return unexpected(p);
    unsigned char c = p->s[p->i];
    switch (c) {
    case '{': case '[':
        if (depth >= G4_JSON_MAX_DEPTH) {
            char what[64];
            snprintf(what, sizeof what, "nesting deeper than %d levels", G4_JSON_MAX_DEPTH);
            return jfail(p, p->i, what);
        }
        return c == '{' ? parse_object(p, out, depth) : parse_array(p, out, depth);
    case '"':
        out->type = G4_JSTR;
        return parse_string(p, &out->str, &out->len);
    case 't': out->type = G4_JBOOL; out->boolean = 1; return literal(p, "true");
    case 'f': out->type = G4_JBOOL; out->boolean = 0; return literal(p, "false");
    case 'n': out->type = G4_JNULL; return literal(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) { out->type = G4_JNUM; return parse_number(p, &out->num); }
        return unexpected(p);
    }
}

g4_json *g4_json_parse(const char *text, size_t len, g4_err *err)
{
    jparser p = { (const unsigned char *)text, len, 0, NULL, 0, 0, err };
    if (!text) { g4_fail(err, "json: no input"); return NULL; }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.i = 3;   /* UTF-8 BOM */
    g4_json *root = malloc(sizeof *root);
    if (!root) { g4_fail(err, "json: out of memory"); return NULL; }
    int rc = parse_value(&p, root, 0);
    free(p.stk);
    if (rc) { free(root); return NULL; }
    skip_ws(&p);
    if (p.i != p.n) {
        jfail(&p, p.i, "unexpected characters after the JSON value");
        g4_json_free(root);
        return NULL;
    }
    return root;
}

void g4_json_free(g4_json *j)
{
    if (!j) return;
    node_free(j);
    free(j);
}

const g4_json *g4_json_get(const g4_json *obj, const char *key)
{
    if (!obj || obj->type != G4_JOBJ || !key) return NULL;
    for (int k = obj->n - 1; k >= 0; k--)
        if (strcmp(obj->kids[k].key, key) == 0) return &obj->kids[k];
    return NULL;
}

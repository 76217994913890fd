/* test_bad_gguf.c - corrupt and hostile GGUF files must give NULL and one error line naming the
 * file, never a crash, a hang or an oversized allocation (this binary also runs under ASan+UBSan).
 *
 * A valid file is built in memory here (recording the offset of every field), then corrupted one
 * field at a time, truncated at every byte of the header and at points of the data, and fuzzed
 * with random byte changes. Each variant is written to a mkstemp file in /tmp that is removed at
 * the end. A sparse 8 GiB file checks that 64-bit tensor offsets work.
 */
#include "g4.h"
#include "harness.h"

#include <fcntl.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* building a GGUF by hand                                                                     */

typedef struct { uint8_t *p; size_t n, cap; } bb;

static void b_put(bb *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { printf("out of memory\n"); exit(2); }
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void b_u32(bb *b, uint32_t v) { uint8_t x[4]; for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i)); b_put(b, x, 4); }
static void b_u64(bb *b, uint64_t v) { uint8_t x[8]; for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i)); b_put(b, x, 8); }
static void b_str(bb *b, const char *s) { b_u64(b, strlen(s)); b_put(b, s, strlen(s)); }

static void patch_u32(uint8_t *p, size_t off, uint32_t v) { for (int i = 0; i < 4; i++) p[off + i] = (uint8_t)(v >> (8 * i)); }
static void patch_u64(uint8_t *p, size_t off, uint64_t v) { for (int i = 0; i < 8; i++) p[off + i] = (uint8_t)(v >> (8 * i)); }

/* where each field of the built file is */
typedef struct {
    size_t version, n_tensors, n_kv, key0_len, str_vtype, str_len, arr_type, arr_count,
        sarr_count, nest_count, align_val, kb_char;
    struct { size_t name_len, name, n_dims, ne[2], type, offset; } t[3];
    size_t header_end, data_offset;
} layout;

#define N_KV 8
#define N_T 3

/* valid file: 8 keys (string, u32 alignment 32, string, i32 array, string array, nested arrays
 * of depth `nest`, two u8), 3 tensors t0 F32 [8,2], t1 Q8_0 [64,1], t2 Q4_K [256,1] */
static bb build(layout *L, int nest, const char *t0name)
{
    bb b = { 0 };
    b_put(&b, "GGUF", 4);
    L->version = b.n; b_u32(&b, 3);
    L->n_tensors = b.n; b_u64(&b, N_T);
    L->n_kv = b.n; b_u64(&b, N_KV);

    L->key0_len = b.n; b_str(&b, "general.architecture"); b_u32(&b, G4_GGUF_STRING); b_str(&b, "g4bad");
    b_str(&b, "general.alignment"); b_u32(&b, G4_GGUF_U32); L->align_val = b.n; b_u32(&b, 32);
    b_str(&b, "a.str"); L->str_vtype = b.n; b_u32(&b, G4_GGUF_STRING); L->str_len = b.n; b_str(&b, "hello");
    b_str(&b, "a.arr"); b_u32(&b, G4_GGUF_ARRAY); L->arr_type = b.n; b_u32(&b, G4_GGUF_I32);
    L->arr_count = b.n; b_u64(&b, 5);
    for (int i = 0; i < 5; i++) b_u32(&b, (uint32_t)i);
    b_str(&b, "a.strs"); b_u32(&b, G4_GGUF_ARRAY); b_u32(&b, G4_GGUF_STRING);
    L->sarr_count = b.n; b_u64(&b, 2); b_str(&b, "x"); b_str(&b, "yz");
    b_str(&b, "a.nest"); b_u32(&b, G4_GGUF_ARRAY);
    for (int d = 0; d < nest - 1; d++) {           /* nest levels of arrays, innermost [7] */
        b_u32(&b, G4_GGUF_ARRAY);
        if (d == 0) L->nest_count = b.n;
        b_u64(&b, 1);
    }
    b_u32(&b, G4_GGUF_I32); b_u64(&b, 1); b_u32(&b, 7);
    b_str(&b, "k.a"); b_u32(&b, G4_GGUF_U8); uint8_t one = 1; b_put(&b, &one, 1);
    L->kb_char = b.n + 8 + 2; b_str(&b, "k.b"); b_u32(&b, G4_GGUF_U8); b_put(&b, &one, 1);

    static const char *names[N_T] = { "t0", "t1", "t2" };
    static const uint32_t types[N_T] = { G4_T_F32, G4_T_Q8_0, G4_T_Q4_K };
    static const uint64_t ne[N_T][2] = { { 8, 2 }, { 64, 1 }, { 256, 1 } };
    static const uint64_t offs[N_T] = { 0, 64, 160 };      /* 64 B, 68 B (pad to 96), 144 B */
    for (int i = 0; i < N_T; i++) {
        const char *nm = i == 0 && t0name ? t0name : names[i];
        L->t[i].name_len = b.n; L->t[i].name = b.n + 8; b_str(&b, nm);
        L->t[i].n_dims = b.n; b_u32(&b, 2);
        L->t[i].ne[0] = b.n; b_u64(&b, ne[i][0]);
        L->t[i].ne[1] = b.n; b_u64(&b, ne[i][1]);
        L->t[i].type = b.n; b_u32(&b, types[i]);
        L->t[i].offset = b.n; b_u64(&b, offs[i]);
    }
    L->header_end = b.n;
    while (b.n % 32) { uint8_t z = 0; b_put(&b, &z, 1); }
    L->data_offset = b.n;
    uint64_t st = 99;
    for (int i = 0; i < 304; i++) {                /* data: 160 + 144 bytes */
        uint8_t v = (uint8_t)g4_splitmix64(&st);
        b_put(&b, &v, 1);
    }
    /* keep f16 scale fields finite and small so dequantized values are sane */
    for (int k = 0; k < 2; k++) b.p[L->data_offset + 64 + 34 * k + 1] = 0x1c;   /* t1 block d */
    b.p[L->data_offset + 160 + 1] = 0x1c; b.p[L->data_offset + 160 + 3] = 0x1c; /* t2 d, dmin */
    return b;
}

static char PATH[64];

static void write_file(const uint8_t *p, size_t n)
{
    FILE *f = fopen(PATH, "wb");
    if (!f) { printf("cannot write %s\n", PATH); exit(2); }
    if (n && fwrite(p, 1, n, f) != n) { printf("short write\n"); exit(2); }
    fclose(f);
}

/* open p[0..n) as a file: returns 1 if it was rejected correctly (NULL, a one-line message with
 * the path and `substr`), 0 otherwise (and records a failed check) */
static int expect_reject(const uint8_t *p, size_t n, const char *what, const char *substr)
{
    write_file(p, n);
    g4_err err = { "" };
    g4_gguf *g = g4_gguf_open(PATH, &err);
    if (g) {
        g4_gguf_close(g);
        CHECK(0, "%s: accepted", what);
        return 0;
    }
    if (getenv("G4_TEST_VERBOSE")) printf("    %-34s -> %s\n", what, err.msg);
    int ok = strncmp(err.msg, PATH, strlen(PATH)) == 0 && err.msg[strlen(PATH)] == ':' &&
             !strchr(err.msg, '\n') && (!substr || strstr(err.msg, substr));
    CHECK(ok, "%s: message '%s' (want path%s%s)", what, err.msg, substr ? " and " : "", substr ? substr : "");
    return ok;
}

/* ------------------------------------------------------------------------------------------ */

static void test_valid_base(void)
{
    layout L;
    for (int nest = 1; nest <= 8; nest++) {
        bb b = build(&L, nest, NULL);
        write_file(b.p, b.n);
        g4_err err = { "" };
        g4_gguf *g = g4_gguf_open(PATH, &err);
        CHECK(g != NULL, "base file (nest %d) rejected: %s", nest, err.msg);
        if (g) {
            CHECK(g->n_kv == N_KV && g->n_tensors == N_T && g->data_offset == L.data_offset, "base layout");
            const g4_gguf_value *v = g4_gguf_get(g, "a.nest");
            for (int d = 0; v && d < nest - 1; d++) v = (v->arr_n == 1 && v->arr_nested) ? &v->arr_nested[0] : NULL;
            CHECK(v && v->arr_type == G4_GGUF_I32 && g4_gguf_arr_int(v, 0) == 7, "nested value at depth %d", nest);
            const g4_tensor *T = g4_gguf_tensor(g, "t2");
            CHECK(T && (const uint8_t *)T->data == g->map + L.data_offset + 160 && T->nbytes == 144, "t2 view");
            g4_gguf_close(g);
        }
        if (nest == 3) {                           /* GGUF v2 has the same layout: accepted */
            patch_u32(b.p, L.version, 2);
            write_file(b.p, b.n);
            g = g4_gguf_open(PATH, &err);
            CHECK(g != NULL && g->version == 2, "v2 file rejected: %s", err.msg);
            if (g) g4_gguf_close(g);
        }
        free(b.p);
    }
}

static void test_truncations(void)
{
    layout L;
    bb b = build(&L, 3, NULL);
    int bad = 0, n = 0;
    for (size_t cut = 0; cut <= L.data_offset; cut++, n++) bad += !expect_reject(b.p, cut, "truncated header", NULL);
    size_t data_cuts[] = { L.data_offset + 1, L.data_offset + 63, L.data_offset + 64, L.data_offset + 100,
                           L.data_offset + 200, b.n - 1 };
    for (size_t k = 0; k < sizeof data_cuts / sizeof data_cuts[0]; k++, n++)
        bad += !expect_reject(b.p, data_cuts[k], "truncated data", "past the end");
    printf("    %d truncations (every byte of the %zu-byte header, 6 points in the data): %d not rejected properly\n",
           n, L.data_offset, bad);
    free(b.p);
}

typedef enum { P32, P64, PBYTE } pkind;
typedef struct { const char *what; pkind kind; int field; uint64_t value; const char *substr; } corruption;

/* field ids resolved against the layout */
enum { F_MAGIC, F_VERSION, F_NT, F_NKV, F_KEY0LEN, F_STRVT, F_STRLEN, F_ARRTYPE, F_ARRCOUNT, F_SARRCOUNT,
       F_NESTCOUNT, F_ALIGN, F_KB, F_T0NDIMS, F_T0NE0, F_T0NE1, F_T0TYPE, F_T0OFF, F_T1NE0, F_T1OFF,
       F_T1NAME1, F_T0NAME0, F_T2OFF };

static size_t field_off(const layout *L, int f)
{
    switch (f) {
    case F_MAGIC: return 3;
    case F_VERSION: return L->version;
    case F_NT: return L->n_tensors;
    case F_NKV: return L->n_kv;
    case F_KEY0LEN: return L->key0_len;
    case F_STRVT: return L->str_vtype;
    case F_STRLEN: return L->str_len;
    case F_ARRTYPE: return L->arr_type;
    case F_ARRCOUNT: return L->arr_count;
    case F_SARRCOUNT: return L->sarr_count;
    case F_NESTCOUNT: return L->nest_count;
    case F_ALIGN: return L->align_val;
    case F_KB: return L->kb_char;
    case F_T0NDIMS: return L->t[0].n_dims;
    case F_T0NE0: return L->t[0].ne[0];
    case F_T0NE1: return L->t[0].ne[1];
    case F_T0TYPE: return L->t[0].type;
    case F_T0OFF: return L->t[0].offset;
    case F_T1NE0: return L->t[1].ne[0];
    case F_T1OFF: return L->t[1].offset;
    case F_T1NAME1: return L->t[1].name + 1;
    case F_T0NAME0: return L->t[0].name;
    case F_T2OFF: return L->t[2].offset;
    }
    return 0;
}

static void test_corruptions(void)
{
    static const corruption C[] = {
        { "bad magic", PBYTE, F_MAGIC, 'X', "bad magic" },
        { "version 99", P32, F_VERSION, 99, "unsupported GGUF version 99" },
        { "version 1", P32, F_VERSION, 1, "version 1" },
        { "version 0", P32, F_VERSION, 0, "version 0" },
        { "big-endian version", P32, F_VERSION, 0x03000000u, "big-endian" },
        { "huge n_kv", P64, F_NKV, 1ull << 63, "metadata count" },
        { "n_kv all ones", P64, F_NKV, UINT64_MAX, "metadata count" },
        { "n_kv 1000", P64, F_NKV, 1000, "metadata count" },
        { "n_kv one too many", P64, F_NKV, N_KV + 1, NULL },
        { "huge n_tensors", P64, F_NT, 1ull << 62, "tensor count" },
        { "n_tensors one too many", P64, F_NT, N_T + 1, NULL },
        { "huge key length", P64, F_KEY0LEN, UINT64_MAX, "past the end" },
        { "huge string length", P64, F_STRLEN, 1ull << 62, "past the end" },
        { "string length past end", P64, F_STRLEN, 100000, "past the end" },
        { "unknown value type", P32, F_STRVT, 13, "unknown value type 13" },
        { "value type all ones", P32, F_STRVT, UINT32_MAX, "unknown value type" },
        { "huge array count", P64, F_ARRCOUNT, 1ull << 61, "does not fit" },
        { "array count * 4 overflows", P64, F_ARRCOUNT, 1ull << 62, "does not fit" },
        { "array count all ones", P64, F_ARRCOUNT, UINT64_MAX, "does not fit" },
        { "unknown array element type", P32, F_ARRTYPE, 13, "unknown array element type" },
        { "huge string-array count", P64, F_SARRCOUNT, 1ull << 60, "does not fit" },
        { "string-array count too big", P64, F_SARRCOUNT, 40, NULL },
        { "huge nested-array count", P64, F_NESTCOUNT, 1ull << 60, "does not fit" },
        { "alignment 0", P32, F_ALIGN, 0, "power of two" },
        { "alignment 3", P32, F_ALIGN, 3, "power of two" },
        { "alignment 48", P32, F_ALIGN, 48, "power of two" },
        { "alignment 2^31 (data past end)", P32, F_ALIGN, 1u << 31, "past the end" },
        { "duplicate key", PBYTE, F_KB, 'a', "duplicate metadata key 'k.a'" },
        { "n_dims 5", P32, F_T0NDIMS, 5, "n_dims 5" },
        { "n_dims 0", P32, F_T0NDIMS, 0, "n_dims 0" },
        { "ne0 = 0", P64, F_T0NE0, 0, "not positive" },
        { "ne1 = 2^63 (negative)", P64, F_T0NE1, 1ull << 63, "not positive" },
        { "ne product overflows int64", P64, F_T0NE0, 1ull << 62, "overflows" },
        { "ne product 2^63", P64, F_T0NE1, 1ull << 60, "overflows" },
        { "ne larger than the file", P64, F_T0NE1, 1ull << 40, "more than the file size" },
        { "ne0 not a multiple of the block", P64, F_T1NE0, 48, "not a multiple of the q8_0 block" },
        { "unknown tensor type 3", P32, F_T0TYPE, 3, "unsupported tensor type 3 (t0)" },
        { "unknown tensor type 99", P32, F_T0TYPE, 99, "unsupported tensor type 99 (t0)" },
        { "tensor type all ones", P32, F_T0TYPE, UINT32_MAX, "unsupported tensor type 4294967295 (t0)" },
        { "tensor offset past end", P64, F_T2OFF, 4096, "past the end" },
        { "tensor offset overflows", P64, F_T2OFF, UINT64_MAX - 31, "past the end" },
        { "tensor data runs past end", P64, F_T2OFF, 192, "past the end" },
        { "misaligned offset", P64, F_T1OFF, 65, "not a multiple of the alignment" },
        { "misaligned offset 2", P64, F_T0OFF, 4, "not a multiple of the alignment" },
        { "duplicate tensor name", PBYTE, F_T1NAME1, '0', "duplicate tensor name 't0'" },
        { "NUL in tensor name", PBYTE, F_T0NAME0, 0, "NUL" },
    };
    layout L;
    bb base = build(&L, 3, NULL);
    uint8_t *p = malloc(base.n);
    int bad = 0;
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        memcpy(p, base.p, base.n);
        size_t off = field_off(&L, C[k].field);
        if (C[k].kind == P32) patch_u32(p, off, (uint32_t)C[k].value);
        else if (C[k].kind == P64) patch_u64(p, off, C[k].value);
        else p[off] = (uint8_t)C[k].value;
        bad += !expect_reject(p, base.n, C[k].what, C[k].substr);
    }
    printf("    %zu field corruptions: %d not rejected properly\n", sizeof C / sizeof C[0], bad);
    free(p);
    free(base.p);

    /* variants that change the layout */
    bb b = build(&L, 9, NULL);
    expect_reject(b.p, b.n, "arrays nested 9 deep", "nested deeper");
    free(b.p);
    b = build(&L, 3, "a_tensor_name_that_is_much_longer_than_the_ninety_five_bytes_g4_tensor_name_can_hold_xxxxxxxxxxxxx");
    expect_reject(b.p, b.n, "tensor name of 98 bytes", "limit 95");
    free(b.p);
    static const uint8_t tiny[] = { 'G', 'G', 'U', 'F', 3, 0, 0 };
    expect_reject(tiny, sizeof tiny, "7-byte file", "truncated");
    expect_reject((const uint8_t *)"GGU", 3, "3-byte file", "bad magic");
    expect_reject((const uint8_t *)"", 0, "empty file", "empty");
    /* not a file at all */
    g4_err err = { "" };
    CHECK(g4_gguf_open("/nonexistent/x.gguf", &err) == NULL && strstr(err.msg, "/nonexistent/x.gguf:"), "missing file: %s", err.msg);
    CHECK(g4_gguf_open("/tmp", &err) == NULL && strstr(err.msg, "/tmp:"), "directory: %s", err.msg);
}

/* touch everything a valid-looking file exposes, so ASan sees any bad pointer */
static void walk_value(const g4_gguf_value *v, int depth, double *sink)
{
    if (v->type == G4_GGUF_STRING) { if (v->v.str.len) *sink += (unsigned char)v->v.str.s[v->v.str.len - 1]; return; }
    if (v->type != G4_GGUF_ARRAY || depth > 10) return;
    uint64_t n = v->arr_n < 64 ? v->arr_n : 64;
    for (uint64_t i = 0; i < n; i++) {
        if (v->arr_type == G4_GGUF_ARRAY) walk_value(&v->arr_nested[i], depth + 1, sink);
        else if (v->arr_type == G4_GGUF_STRING) { g4_str s = g4_gguf_arr_str(v, i); if (s.len) *sink += (unsigned char)s.s[s.len - 1]; }
        else *sink += g4_gguf_arr_float(v, i) == 0;
    }
    if (v->arr_n && v->arr_type == G4_GGUF_STRING) { g4_str s = g4_gguf_arr_str(v, v->arr_n - 1); if (s.len) *sink += (unsigned char)s.s[s.len - 1]; }
    if (v->arr_n && v->arr_type != G4_GGUF_ARRAY && v->arr_type != G4_GGUF_STRING) *sink += g4_gguf_arr_int(v, v->arr_n - 1) == 0;
}

static void test_fuzz(void)
{
    layout L;
    bb base = build(&L, 3, NULL);
    uint8_t *p = malloc(base.n);
    uint64_t st = 2024;
    int accepted = 0, rejected = 0, badmsg = 0;
    double sink = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(p, base.p, base.n);
        int nflips = 1 + (int)(g4_splitmix64(&st) % 4);
        for (int k = 0; k < nflips; k++) {
            size_t off = (size_t)(g4_splitmix64(&st) % L.header_end);
            uint64_t r = g4_splitmix64(&st);
            p[off] = (r & 0x100) ? (uint8_t)r : (uint8_t)(p[off] ^ (1u << (r % 8)));
            if ((r & 0x600) == 0x600) p[off] = 0xff;
        }
        size_t n = (g4_splitmix64(&st) % 8 == 0) ? (size_t)(g4_splitmix64(&st) % base.n) : base.n;
        write_file(p, n);
        g4_err err = { "" };
        g4_gguf *g = g4_gguf_open(PATH, &err);
        if (g) {
            accepted++;
            for (uint64_t i = 0; i < g->n_kv; i++) walk_value(&g->kv[i].val, 0, &sink);
            for (uint64_t i = 0; i < g->n_tensors; i++) {
                const g4_tensor *T = &g->tensors[i];
                const uint8_t *d = T->data;
                CHECK(d >= g->map && d + T->nbytes <= g->map + g->size, "fuzz: tensor %s outside the map", T->name);
                if (T->nbytes) sink += d[T->nbytes - 1];
                if (T->ne[0] <= 4096) {
                    float row[4096];
                    g4_dequant_row(T->type, T->data, row, T->ne[0]);
                    sink += row[0] == 0;
                }
            }
            g4_gguf_close(g);
        } else {
            rejected++;
            if (strncmp(err.msg, PATH, strlen(PATH)) != 0 || strchr(err.msg, '\n')) {
                if (badmsg++ < 3) printf("    bad message: '%s'\n", err.msg);
            }
        }
    }
    printf("    fuzz: 3000 variants, %d accepted (walked), %d rejected, %d bad messages (sink %g)\n",
           accepted, rejected, badmsg, sink > 0 ? 1.0 : 0.0);
    CHECK(badmsg == 0 && rejected > 1000, "fuzz: %d bad messages, %d rejected", badmsg, rejected);
    free(p);
    free(base.p);
}

/* 64-bit offsets: t0 placed at 8 GiB into the data section of a sparse file */
static void test_big_offsets(void)
{
    layout L;
    bb b = build(&L, 3, NULL);
    const uint64_t off = 1ull << 33;
    patch_u64(b.p, L.t[0].offset, off);
    write_file(b.p, b.n);
    int fd = open(PATH, O_RDWR);
    uint64_t end = L.data_offset + off + 64;
    float vals[16];
    for (int i = 0; i < 16; i++) vals[i] = (float)i + 0.5f;
    int ok = fd >= 0 && ftruncate(fd, (off_t)end) == 0 &&
             pwrite(fd, vals, sizeof vals, (off_t)(L.data_offset + off)) == (ssize_t)sizeof vals;
    if (fd >= 0) close(fd);
    CHECK(ok, "could not make a sparse 8 GiB file in /tmp");
    if (!ok) { free(b.p); return; }
    g4_err err = { "" };
    g4_gguf *g = g4_gguf_open(PATH, &err);
    CHECK(g != NULL, "8 GiB sparse file rejected: %s", err.msg);
    if (g) {
        const g4_tensor *T = g4_gguf_tensor(g, "t0");
        CHECK(g->size == end && T && (const uint8_t *)T->data == g->map + L.data_offset + off, "t0 at 8 GiB");
        if (T) {
            float y[16];
            g4_dequant_row(T->type, T->data, y, 16);
            CHECK(memcmp(y, vals, sizeof vals) == 0, "t0 values at 8 GiB");
        }
        g4_gguf_close(g);
    }
    /* one byte short */
    fd = open(PATH, O_RDWR);
    ok = fd >= 0 && ftruncate(fd, (off_t)(end - 1)) == 0;
    if (fd >= 0) close(fd);
    g = ok ? g4_gguf_open(PATH, &err) : NULL;
    CHECK(ok && g == NULL && strstr(err.msg, "past the end"), "8 GiB file one byte short: %s", err.msg);
    if (g) g4_gguf_close(g);
    free(b.p);
    if (truncate(PATH, 0) != 0) printf("    note: could not shrink %s\n", PATH);
}

int main(void)
{
    snprintf(PATH, sizeof PATH, "/tmp/g4_bad_gguf_XXXXXX");
    int fd = mkstemp(PATH);
    if (fd < 0) { printf("FAIL mkstemp\n"); return 1; }
    close(fd);
    RUN(test_valid_base);
    RUN(test_truncations);
    RUN(test_corruptions);
    RUN(test_fuzz);
    RUN(test_big_offsets);
    unlink(PATH);
    return h_finish();
}

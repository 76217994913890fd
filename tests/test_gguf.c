/* test_gguf.c - ref/gguf.c: read a GGUF written by the reference gguf Python package (every
 * metadata type, nested arrays, several tensor types, alignment 64), and the C writer -> reader
 * round trip (metadata, memory tensors, row-callback tensors, progress, write errors, memory).
 *
 * tests/data/meta_py.gguf is written by tests/data/make_gguf_py.py (gguf.GGUFWriter). Tensor
 * values there follow pat(i) = ((i*37) % 101 - 50) / 32, exact in f32/f16/bf16.
 * Set G4_KEEP_GGUF=/some/file.gguf to keep the C-written file; `python
 * tests/data/make_gguf_py.py --check /some/file.gguf` then verifies it with gguf-py.
 */
#include "g4.h"
#include "harness.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *data_file(const char *name)
{
    static char buf[512];
    const char *dir = getenv("G4_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/data", name);
    return buf;
}

static float pat(int64_t i) { return (float)((i * 37) % 101 - 50) / 32.0f; }

static int str_eq(g4_str s, const char *want)
{
    return s.s && s.len == strlen(want) && memcmp(s.s, want, s.len) == 0;
}

/* ------------------------------------------------------------------------------------------ */

static void test_read_gguf_py_metadata(void)
{
    g4_err err = { "" };
    g4_gguf *g = g4_gguf_open(data_file("meta_py.gguf"), &err);
    CHECK(g != NULL, "open: %s", err.msg);
    if (!g) return;
    CHECK(g->version == 3, "version %u", g->version);
    CHECK(g->alignment == 64 && g->data_offset % 64 == 0, "alignment %llu data_offset %llu",
          (unsigned long long)g->alignment, (unsigned long long)g->data_offset);
    CHECK(g->n_kv == 27, "n_kv %llu", (unsigned long long)g->n_kv);

    const g4_gguf_value *v;
#define SCALAR(key, T, field, want) do { v = g4_gguf_get(g, key); \
        CHECK(v && v->type == T && v->v.field == (want), "%s", key); } while (0)
    SCALAR("t.u8", G4_GGUF_U8, u, 200u);
    SCALAR("t.i8", G4_GGUF_I8, i, -100);
    SCALAR("t.u16", G4_GGUF_U16, u, 60000u);
    SCALAR("t.i16", G4_GGUF_I16, i, -30000);
    SCALAR("t.u32", G4_GGUF_U32, u, 4000000000u);
    SCALAR("t.i32", G4_GGUF_I32, i, -2000000000);
    SCALAR("t.f32", G4_GGUF_F32, f, (double)0.1f);
    SCALAR("t.u64", G4_GGUF_U64, u, 0xFFFFFFFFFFFFFFF0ull);
    SCALAR("t.i64", G4_GGUF_I64, i, -(INT64_C(1) << 62) - 3);
    SCALAR("t.f64", G4_GGUF_F64, f, 0.1);
    SCALAR("t.true", G4_GGUF_BOOL, u, 1u);
    SCALAR("t.false", G4_GGUF_BOOL, u, 0u);
#undef SCALAR
    v = g4_gguf_get(g, "t.str");
    CHECK(v && v->type == G4_GGUF_STRING && str_eq(v->v.str, "h\xc3\xa9llo w\xc3\xb6rld"), "t.str");
    v = g4_gguf_get(g, "t.empty");
    CHECK(v && v->type == G4_GGUF_STRING && v->v.str.len == 0, "t.empty");

    /* typed helpers */
    int64_t i64; double f64; char s[64];
    CHECK(g4_gguf_get_int(g, "t.u32", &i64) == 0 && i64 == 4000000000LL, "get_int u32");
    CHECK(g4_gguf_get_int(g, "t.i8", &i64) == 0 && i64 == -100, "get_int i8");
    CHECK(g4_gguf_get_int(g, "t.u64", &i64) == -1, "get_int u64 > INT64_MAX must fail");
    CHECK(g4_gguf_get_int(g, "t.str", &i64) == -1 && g4_gguf_get_int(g, "nope", &i64) == -1, "get_int non-int/absent");
    CHECK(g4_gguf_get_float(g, "t.f64", &f64) == 0 && f64 == 0.1, "get_float f64");
    CHECK(g4_gguf_get_float(g, "t.i16", &f64) == 0 && f64 == -30000.0, "get_float from int");
    CHECK(g4_gguf_get_str(g, "general.architecture", s, sizeof s) == 0 && strcmp(s, "g4test") == 0, "architecture");
    CHECK(g4_gguf_get_str(g, "general.architecture", s, 6) == -1, "get_str too small must fail");
    CHECK(g4_gguf_get_str(g, "t.u8", s, sizeof s) == -1, "get_str of a non-string");
    /* keys compare by length: prefixes and extensions are different keys */
    CHECK(g4_gguf_get(g, "t.u") == NULL && g4_gguf_get(g, "t.u8x") == NULL && g4_gguf_get(g, "") == NULL, "prefix keys");

    /* arrays */
    v = g4_gguf_get(g, "t.arr_i32");
    CHECK(v && v->type == G4_GGUF_ARRAY && v->arr_type == G4_GGUF_I32 && v->arr_n == 5, "arr_i32 header");
    if (v && v->arr_n == 5) {
        static const int64_t w[5] = { 1, -2, 3, 2147483647, -2147483648LL };
        for (int i = 0; i < 5; i++) CHECK(g4_gguf_arr_int(v, i) == w[i], "arr_i32[%d]", i);
        CHECK(g4_gguf_arr_int(v, 5) == 0, "out of range index gives 0");
    }
    v = g4_gguf_get(g, "t.arr_u8");
    CHECK(v && v->arr_type == G4_GGUF_U8 && v->arr_n == 3 && g4_gguf_arr_int(v, 2) == 255, "arr_u8");
    v = g4_gguf_get(g, "t.arr_i64");
    CHECK(v && v->arr_type == G4_GGUF_I64 && v->arr_n == 2 && g4_gguf_arr_int(v, 0) == -(INT64_C(1) << 40), "arr_i64");
    v = g4_gguf_get(g, "t.arr_u16");
    CHECK(v && v->arr_type == G4_GGUF_U16 && g4_gguf_arr_int(v, 0) == 65535, "arr_u16");
    v = g4_gguf_get(g, "t.arr_f32");
    CHECK(v && v->arr_type == G4_GGUF_F32 && v->arr_n == 3 && g4_gguf_arr_float(v, 1) == -1.25, "arr_f32");
    v = g4_gguf_get(g, "t.arr_f64");
    CHECK(v && v->arr_type == G4_GGUF_F64 && g4_gguf_arr_float(v, 0) == 0.1, "arr_f64");
    v = g4_gguf_get(g, "t.arr_bool");
    CHECK(v && v->arr_type == G4_GGUF_BOOL && v->arr_n == 3 && g4_gguf_arr_int(v, 0) == 1 &&
          g4_gguf_arr_int(v, 1) == 0 && g4_gguf_arr_int(v, 2) == 1, "arr_bool");
    v = g4_gguf_get(g, "t.arr_str");
    CHECK(v && v->arr_type == G4_GGUF_STRING && v->arr_n == 4, "arr_str header");
    if (v && v->arr_n == 4) {
        CHECK(str_eq(g4_gguf_arr_str(v, 0), "a") && str_eq(g4_gguf_arr_str(v, 1), "bc") &&
              g4_gguf_arr_str(v, 2).len == 0 && str_eq(g4_gguf_arr_str(v, 3), "\xc3\xbcn\xc3\xaf"), "arr_str values");
        CHECK(g4_gguf_arr_str(v, 4).s == NULL, "arr_str out of range");
    }
    v = g4_gguf_get(g, "t.arr_arr");      /* [[1, 2, 3], [4, 5]] */
    CHECK(v && v->arr_type == G4_GGUF_ARRAY && v->arr_n == 2 && v->arr_nested, "arr_arr header");
    if (v && v->arr_nested && v->arr_n == 2) {
        const g4_gguf_value *a = &v->arr_nested[0], *b = &v->arr_nested[1];
        CHECK(a->type == G4_GGUF_ARRAY && a->arr_type == G4_GGUF_I32 && a->arr_n == 3 &&
              g4_gguf_arr_int(a, 0) == 1 && g4_gguf_arr_int(a, 2) == 3, "arr_arr[0]");
        CHECK(b->arr_type == G4_GGUF_I32 && b->arr_n == 2 && g4_gguf_arr_int(b, 1) == 5, "arr_arr[1]");
    }
    v = g4_gguf_get(g, "t.arr_arr_str");  /* [["x", "yz"], ["w"]] */
    CHECK(v && v->arr_n == 2 && v->arr_nested && v->arr_nested[0].arr_type == G4_GGUF_STRING &&
          str_eq(g4_gguf_arr_str(&v->arr_nested[0], 1), "yz") && str_eq(g4_gguf_arr_str(&v->arr_nested[1], 0), "w"),
          "arr_arr_str");
    v = g4_gguf_get(g, "t.arr_arr_arr");  /* [[[1], [2, 3]], [[4]]] */
    CHECK(v && v->arr_n == 2 && v->arr_nested && v->arr_nested[0].arr_n == 2 && v->arr_nested[0].arr_nested &&
          g4_gguf_arr_int(&v->arr_nested[0].arr_nested[1], 1) == 3 &&
          v->arr_nested[1].arr_nested && g4_gguf_arr_int(&v->arr_nested[1].arr_nested[0], 0) == 4, "arr_arr_arr");
    CHECK(strcmp(g4_gguf_vtype_name(G4_GGUF_ARRAY), "array") == 0 && strcmp(g4_gguf_vtype_name(G4_GGUF_F64), "f64") == 0, "vtype names");
    g4_gguf_close(g);
}

static void test_read_gguf_py_tensors(void)
{
    g4_err err = { "" };
    g4_gguf *g = g4_gguf_open(data_file("meta_py.gguf"), &err);
    CHECK(g != NULL, "open: %s", err.msg);
    if (!g) return;
    static const struct { const char *name; g4_type t; int nd; int64_t ne[4]; } want[] = {
        { "t.f32", G4_T_F32, 2, { 3, 5, 1, 1 } },
        { "t.f16", G4_T_F16, 2, { 64, 2, 1, 1 } },
        { "t.bf16", G4_T_BF16, 3, { 32, 3, 2, 1 } },
        { "t.q8_0", G4_T_Q8_0, 2, { 64, 2, 1, 1 } },
        { "t.q4_0", G4_T_Q4_0, 4, { 64, 1, 1, 1 } },
        { "t.q4_k", G4_T_Q4_K, 2, { 256, 2, 1, 1 } },
        { "t.q4_k.deq", G4_T_F32, 2, { 256, 2, 1, 1 } },
        { "t.q6_k", G4_T_Q6_K, 2, { 256, 2, 1, 1 } },
        { "t.q6_k.deq", G4_T_F32, 2, { 256, 2, 1, 1 } },
    };
    CHECK(g->n_tensors == 9, "n_tensors %llu", (unsigned long long)g->n_tensors);
    for (int k = 0; k < 9 && k < (int)g->n_tensors; k++) {
        const g4_tensor *T = &g->tensors[k];
        CHECK(strcmp(T->name, want[k].name) == 0, "tensor %d name %s (file order)", k, T->name);
        CHECK(g4_gguf_tensor(g, want[k].name) == T, "lookup %s", want[k].name);
        CHECK(T->type == want[k].t && T->n_dims == want[k].nd, "%s type %d n_dims %d", T->name, T->type, T->n_dims);
        CHECK(memcmp(T->ne, want[k].ne, sizeof T->ne) == 0, "%s ne %lld %lld %lld %lld", T->name,
              (long long)T->ne[0], (long long)T->ne[1], (long long)T->ne[2], (long long)T->ne[3]);
        CHECK(T->nbytes == g4_row_bytes(T->type, T->ne[0]) * (size_t)(g4_tensor_nelem(T) / T->ne[0]), "%s nbytes", T->name);
        CHECK(((const uint8_t *)T->data - g->map) % 64 == 0, "%s data not 64-aligned", T->name);
    }
    CHECK(g4_gguf_tensor(g, "t.f3") == NULL && g4_gguf_tensor(g, "nope") == NULL, "absent tensors");
    float y[512], x[512];
    uint8_t q[1024];
    /* f32 / f16 / bf16: exact pattern values */
    static const char *exact[] = { "t.f32", "t.f16", "t.bf16" };
    for (int k = 0; k < 3; k++) {
        const g4_tensor *T = g4_gguf_tensor(g, exact[k]);
        if (!T) continue;
        int64_t n = g4_tensor_nelem(T);
        g4_dequant_row(T->type, T->data, y, n);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += y[i] != pat(i);
        CHECK(bad == 0, "%s: %d values differ from the pattern", exact[k], bad);
    }
    /* q8_0 / q4_0: gguf-py's bytes equal ours (ggml reference quantizers) */
    static const struct { const char *name; g4_type t; } qq[] = { { "t.q8_0", G4_T_Q8_0 }, { "t.q4_0", G4_T_Q4_0 } };
    for (int k = 0; k < 2; k++) {
        const g4_tensor *T = g4_gguf_tensor(g, qq[k].name);
        if (!T) continue;
        int64_t n = g4_tensor_nelem(T);
        for (int64_t i = 0; i < n; i++) x[i] = pat(i);
        g4_quant_row(qq[k].t, x, q, n);
        CHECK(memcmp(q, T->data, T->nbytes) == 0, "%s: bytes differ from gguf-py", qq[k].name);
    }
    /* k-quants (random bytes): dequantization equals gguf-py's stored result bit for bit */
    static const char *kq[] = { "t.q4_k", "t.q6_k" };
    for (int k = 0; k < 2; k++) {
        char dn[32];
        snprintf(dn, sizeof dn, "%s.deq", kq[k]);
        const g4_tensor *T = g4_gguf_tensor(g, kq[k]), *D = g4_gguf_tensor(g, dn);
        if (!T || !D) { CHECK(0, "%s missing", kq[k]); continue; }
        g4_dequant_row(T->type, T->data, y, 512);
        CHECK(memcmp(y, D->data, 512 * sizeof(float)) == 0, "%s: dequantization differs from gguf-py", kq[k]);
    }
    g4_gguf_close(g);
}

/* ------------------------------------------------------------------------------------------ */
/* writer -> reader                                                                            */

typedef struct { int64_t ne0, nrows, next_row; int out_of_order; } rows_ctx;

/* row r of a tensor of row length ne0: pat(flat index) */
static void pat_rows(void *ctx, int64_t row, float *out)
{
    rows_ctx *c = ctx;
    if (row != c->next_row) c->out_of_order++;
    c->next_row = row + 1;
    for (int64_t i = 0; i < c->ne0; i++) out[i] = pat(row * c->ne0 + i);
}

typedef struct { int calls; uint64_t last_done, total; int non_monotonic; } prog_ctx;
static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    prog_ctx *p = ctx;
    if (done < p->last_done) p->non_monotonic++;
    p->calls++; p->last_done = done; p->total = total;
}

/* a temp path: mkstemp makes the name unique; the writer replaces the file by rename */
static void tmp_path(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/g4_test_%s_XXXXXX", tag);
    int fd = mkstemp(buf);
    if (fd >= 0) close(fd);
}

#define N_ROWT 6
static const struct { const char *name; g4_type t; int nd; int64_t ne[4]; } ROWT[N_ROWT] = {
    { "rows.q8_0", G4_T_Q8_0, 2, { 64, 5, 1, 1 } },
    { "rows.q4_0", G4_T_Q4_0, 2, { 64, 2, 1, 1 } },
    { "rows.q4_k", G4_T_Q4_K, 2, { 256, 2, 1, 1 } },
    { "rows.q6_k", G4_T_Q6_K, 2, { 256, 3, 1, 1 } },
    { "rows.bf16", G4_T_BF16, 3, { 16, 2, 3, 1 } },
    { "rows.f16", G4_T_F16, 4, { 32, 1, 1, 2 } },
};

static void test_c_roundtrip(void)
{
    char path[256];
    const char *keep = getenv("G4_KEEP_GGUF");
    if (keep) snprintf(path, sizeof path, "%s", keep);
    else tmp_path(path, sizeof path, "rt");

    g4_gguf_writer *w = g4_gguf_writer_new();
    CHECK(w != NULL, "writer_new");
    if (!w) return;
    g4_gguf_add_str(w, "general.architecture", "g4test");
    g4_gguf_add_u32(w, "t.u32", 123456789u);
    g4_gguf_add_i32(w, "t.i32", -42);
    g4_gguf_add_f32(w, "t.f32", 0.15625f);
    g4_gguf_add_bool(w, "t.bool", 1);
    g4_gguf_add_str(w, "t.str", "hello, gguf");
    int32_t ai[3] = { 1, -2, 3 };
    float af[2] = { 0.5f, -0.25f };
    uint64_t au[2] = { (1ull << 63) + 1, 5 };
    uint8_t ab[2] = { 1, 0 };
    const char *as[4] = { "a", "bc", "", "\xc3\xbcn\xc3\xaf" };
    g4_gguf_add_arr(w, "t.arr_i32", G4_GGUF_I32, ai, 3);
    g4_gguf_add_arr(w, "t.arr_f32", G4_GGUF_F32, af, 2);
    g4_gguf_add_arr(w, "t.arr_u64", G4_GGUF_U64, au, 2);
    g4_gguf_add_arr(w, "t.arr_bool", G4_GGUF_BOOL, ab, 2);
    g4_gguf_add_str_arr(w, "t.arr_str", as, 4);

    float mem[24];
    for (int i = 0; i < 24; i++) mem[i] = (float)i * 0.25f - 1.0f;
    int64_t ne_mem[2] = { 8, 3 };
    g4_gguf_add_tensor(w, "mem.f32", G4_T_F32, 2, ne_mem, mem);
    rows_ctx rc[N_ROWT];
    for (int k = 0; k < N_ROWT; k++) {
        rc[k] = (rows_ctx){ ROWT[k].ne[0], ROWT[k].ne[1] * ROWT[k].ne[2] * ROWT[k].ne[3], 0, 0 };
        g4_gguf_add_tensor_rows(w, ROWT[k].name, ROWT[k].t, ROWT[k].nd, ROWT[k].ne, pat_rows, &rc[k]);
    }
    g4_err err = { "" };
    prog_ctx pc = { 0, 0, 0, 0 };
    int rcw = g4_gguf_write(w, path, on_progress, &pc, &err);
    g4_gguf_writer_free(w);
    CHECK(rcw == 0, "write: %s", err.msg);
    for (int k = 0; k < N_ROWT; k++)
        CHECK(rc[k].next_row == rc[k].nrows && rc[k].out_of_order == 0, "%s: rows requested %lld, out of order %d",
              ROWT[k].name, (long long)rc[k].next_row, rc[k].out_of_order);
    char tmpname[300];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", path);
    CHECK(access(tmpname, F_OK) != 0, "temp file left behind");

    g4_gguf *g = g4_gguf_open(path, &err);
    CHECK(g != NULL, "read back: %s", err.msg);
    if (!g) { if (!keep) unlink(path); return; }
    CHECK(pc.calls == 1 + N_ROWT && pc.non_monotonic == 0 && pc.last_done == pc.total && pc.total == g->size,
          "progress: %d calls, done %llu total %llu size %zu", pc.calls, (unsigned long long)pc.last_done,
          (unsigned long long)pc.total, g->size);
    CHECK(g->version == 3 && g->alignment == 32 && g->n_kv == 11 && g->n_tensors == 1 + N_ROWT, "header");
    const g4_gguf_value *v;
    int64_t i64; double f64; char s[64];
    CHECK(g4_gguf_get_str(g, "general.architecture", s, sizeof s) == 0 && strcmp(s, "g4test") == 0, "arch");
    CHECK(g->kv[0].key.len == 20 && memcmp(g->kv[0].key.s, "general.architecture", 20) == 0, "metadata order");
    v = g4_gguf_get(g, "t.u32");
    CHECK(v && v->type == G4_GGUF_U32 && v->v.u == 123456789u, "u32");
    CHECK(g4_gguf_get_int(g, "t.i32", &i64) == 0 && i64 == -42 && g4_gguf_get(g, "t.i32")->type == G4_GGUF_I32, "i32");
    CHECK(g4_gguf_get_float(g, "t.f32", &f64) == 0 && f64 == 0.15625 && g4_gguf_get(g, "t.f32")->type == G4_GGUF_F32, "f32");
    v = g4_gguf_get(g, "t.bool");
    CHECK(v && v->type == G4_GGUF_BOOL && v->v.u == 1, "bool");
    CHECK(g4_gguf_get_str(g, "t.str", s, sizeof s) == 0 && strcmp(s, "hello, gguf") == 0, "str");
    v = g4_gguf_get(g, "t.arr_i32");
    CHECK(v && v->arr_type == G4_GGUF_I32 && v->arr_n == 3 && g4_gguf_arr_int(v, 1) == -2, "arr_i32");
    v = g4_gguf_get(g, "t.arr_f32");
    CHECK(v && v->arr_type == G4_GGUF_F32 && v->arr_n == 2 && g4_gguf_arr_float(v, 1) == -0.25, "arr_f32");
    v = g4_gguf_get(g, "t.arr_u64");
    CHECK(v && v->arr_type == G4_GGUF_U64 && v->arr_n == 2 && (uint64_t)g4_gguf_arr_int(v, 0) == (1ull << 63) + 1, "arr_u64");
    v = g4_gguf_get(g, "t.arr_bool");
    CHECK(v && v->arr_type == G4_GGUF_BOOL && g4_gguf_arr_int(v, 0) == 1 && g4_gguf_arr_int(v, 1) == 0, "arr_bool");
    v = g4_gguf_get(g, "t.arr_str");
    CHECK(v && v->arr_n == 4 && str_eq(g4_gguf_arr_str(v, 3), as[3]) && g4_gguf_arr_str(v, 2).len == 0, "arr_str");

    const g4_tensor *T = g4_gguf_tensor(g, "mem.f32");
    CHECK(T && T->type == G4_T_F32 && T->n_dims == 2 && T->ne[0] == 8 && T->ne[1] == 3 &&
          T->nbytes == sizeof mem && memcmp(T->data, mem, sizeof mem) == 0, "mem.f32");
    CHECK(g->n_tensors > 0 && strcmp(g->tensors[0].name, "mem.f32") == 0, "tensor order");
    for (int k = 0; k < N_ROWT; k++) {
        T = g4_gguf_tensor(g, ROWT[k].name);
        CHECK(T != NULL, "%s missing", ROWT[k].name);
        if (!T) continue;
        CHECK(T == &g->tensors[k + 1], "%s order", ROWT[k].name);
        CHECK(T->type == ROWT[k].t && T->n_dims == ROWT[k].nd && memcmp(T->ne, ROWT[k].ne, sizeof T->ne) == 0,
              "%s type/shape", ROWT[k].name);
        CHECK(((const uint8_t *)T->data - g->map) % 32 == 0, "%s alignment", ROWT[k].name);
        /* expected bytes: the pattern quantized with g4_quant_row, row by row */
        int64_t n = g4_tensor_nelem(T);
        float *x = malloc(n * sizeof *x);
        uint8_t *q = malloc(g4_row_bytes(T->type, n) + 1);
        for (int64_t i = 0; i < n; i++) x[i] = pat(i);
        g4_quant_row(T->type, x, q, n);    /* rows are whole blocks, so one call == per row */
        CHECK(T->nbytes == g4_row_bytes(T->type, n) && memcmp(q, T->data, T->nbytes) == 0, "%s bytes", ROWT[k].name);
        free(x); free(q);
    }
    g4_gguf_close(g);
    if (!keep) unlink(path);
    else printf("    kept %s (check with tests/data/make_gguf_py.py --check)\n", path);
}

static int expect_write_error(g4_gguf_writer *w, const char *path, const char *substr)
{
    g4_err err = { "" };
    int rc = g4_gguf_write(w, path, NULL, NULL, &err);
    g4_gguf_writer_free(w);
    int ok = rc != 0 && strstr(err.msg, path) && strstr(err.msg, substr) && !strchr(err.msg, '\n');
    CHECK(ok, "expected an error with '%s', got rc %d '%s'", substr, rc, err.msg);
    return ok;
}

static void noop_rows(void *ctx, int64_t row, float *out) { (void)ctx; (void)row; (void)out; }

static void test_writer_errors(void)
{
    char path[256];
    tmp_path(path, sizeof path, "werr");
    int64_t ne[5] = { 64, 2, 1, 1, 1 };
    float data[128] = { 0 };
    g4_gguf_writer *w;

    w = g4_gguf_writer_new();
    g4_gguf_add_tensor(w, "a", G4_T_F32, 2, ne, data);
    g4_gguf_add_tensor(w, "a", G4_T_F32, 2, ne, data);
    expect_write_error(w, path, "duplicate tensor name");

    w = g4_gguf_writer_new();
    g4_gguf_add_u32(w, "k", 1);
    g4_gguf_add_i32(w, "k", 2);
    expect_write_error(w, path, "duplicate metadata key");

    w = g4_gguf_writer_new();
    g4_gguf_add_tensor_rows(w, "b", (g4_type)3, 2, ne, noop_rows, NULL);
    expect_write_error(w, path, "unsupported tensor type");

    w = g4_gguf_writer_new();
    int64_t ne48[2] = { 48, 2 };
    g4_gguf_add_tensor_rows(w, "c", G4_T_Q8_0, 2, ne48, noop_rows, NULL);
    expect_write_error(w, path, "not a multiple");

    w = g4_gguf_writer_new();
    g4_gguf_add_tensor(w, "d", G4_T_F32, 5, ne, data);
    expect_write_error(w, path, "n_dims");

    w = g4_gguf_writer_new();
    int64_t ne0[2] = { 64, 0 };
    g4_gguf_add_tensor(w, "e", G4_T_F32, 2, ne0, data);
    expect_write_error(w, path, "bad shape");

    w = g4_gguf_writer_new();
    g4_gguf_add_arr(w, "f", G4_GGUF_STRING, data, 1);
    expect_write_error(w, path, "numeric or bool");

    w = g4_gguf_writer_new();
    g4_gguf_add_u32(w, "general.alignment", 64);
    expect_write_error(w, path, "alignment");

    /* a directory that does not exist */
    w = g4_gguf_writer_new();
    g4_gguf_add_u32(w, "k", 1);
    expect_write_error(w, "/nonexistent_dir_g4/x.gguf", "cannot create");

    /* a failing write (file size limit, like a full disk): error reported, temp file removed,
     * destination untouched */
    unlink(path);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 100000;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        w = g4_gguf_writer_new();
        int64_t big[2] = { 1024, 256 };       /* 1 MB of f32 rows */
        g4_gguf_add_tensor_rows(w, "big", G4_T_F32, 2, big, noop_rows, NULL);
        expect_write_error(w, path, "write failed");
        setrlimit(RLIMIT_FSIZE, &old);
        char tmpname[300];
        snprintf(tmpname, sizeof tmpname, "%s.tmp", path);
        CHECK(access(tmpname, F_OK) != 0 && access(path, F_OK) != 0, "temp file or destination left after a failed write");
    } else {
        CHECK(0, "setrlimit failed");
    }
    signal(SIGXFSZ, prev);
    unlink(path);
}

/* the writer streams: a 64 MB fp32 tensor written from a row callback must not raise the peak
 * RSS by more than a few MB (it holds one row and the header, never the tensor) */
static void gen_rows(void *ctx, int64_t row, float *out)
{
    int64_t ne0 = *(int64_t *)ctx;
    for (int64_t i = 0; i < ne0; i++) out[i] = (float)((row * 31 + i) % 97) * 0.01f;
}

static void test_writer_streams(void)
{
    char path[256];
    tmp_path(path, sizeof path, "big");
    size_t before = g4_peak_rss();
    int64_t ne[2] = { 4096, 4096 };       /* 16M values: 64 MB as f32 */
    g4_gguf_writer *w = g4_gguf_writer_new();
    g4_gguf_add_tensor_rows(w, "big.f32", G4_T_F32, 2, ne, gen_rows, &ne[0]);
    g4_gguf_add_tensor_rows(w, "big.q8_0", G4_T_Q8_0, 2, ne, gen_rows, &ne[0]);
    g4_err err = { "" };
    int rc = g4_gguf_write(w, path, NULL, NULL, &err);
    g4_gguf_writer_free(w);
    size_t after = g4_peak_rss();
    CHECK(rc == 0, "write: %s", err.msg);
    double grew = ((double)after - (double)before) / 1048576.0;
    printf("    wrote %s: peak RSS grew by %.1f MB for 81 MB of tensors (limit 8 MB)\n", path, grew);
    CHECK(before > 0 && grew < 8.0, "peak RSS grew by %.1f MB", grew);
    g4_gguf *g = g4_gguf_open(path, &err);
    CHECK(g != NULL, "read back: %s", err.msg);
    if (g) {
        const g4_tensor *T = g4_gguf_tensor(g, "big.q8_0");
        float row[4096], want[4096];
        int64_t r = 4095;
        gen_rows(&ne[0], r, want);
        if (T) {
            g4_dequant_row(T->type, (const uint8_t *)T->data + r * g4_row_bytes(T->type, 4096), row, 4096);
            int bad = 0;
            for (int i = 0; i < 4096; i++) bad += fabsf(row[i] - want[i]) > 0.97f / 127 * (0.5f + 127.0f / 2048);   /* d/2 + 127|f16(d)-d| */
            CHECK(bad == 0, "last q8_0 row: %d values off", bad);
        }
        T = g4_gguf_tensor(g, "big.f32");
        CHECK(T && memcmp((const float *)T->data + r * 4096, want, sizeof want) == 0, "last f32 row");
        g4_gguf_close(g);
    }
    unlink(path);
}

int main(void)
{
    RUN(test_read_gguf_py_metadata);
    RUN(test_read_gguf_py_tensors);
    RUN(test_c_roundtrip);
    RUN(test_writer_errors);
    RUN(test_writer_streams);
    return h_finish();
}

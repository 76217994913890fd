/* test_safetensors.c - ref/safetensors.c reading files written by the real `safetensors` Python
 * package (tests/data/st/, made by tests/data/st/make.py), and the C writer's round trip.
 *
 * Values are recomputed here with the formulas of make.py and compared bit-exactly (they are
 * exactly representable in their dtypes, so any difference is a bug, no tolerance needed).
 * Run from the repository root (tests/data/... paths are relative).
 */
#include "g4.h"
#include "harness.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_DIR "tests/data/st"

/* decoders written independently of ref/quant.c */
static float bf16f(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static float f16f(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0) v = ldexp(m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}
static float get(const g4_tensor *t, int64_t i)
{
    const uint8_t *p = t->data;
    if (t->type == G4_T_F32) { float f; memcpy(&f, p + 4 * i, 4); return f; }
    uint16_t h; memcpy(&h, p + 2 * i, 2);
    return t->type == G4_T_BF16 ? bf16f(h) : f16f(h);
}

/* the formulas of make.py */
static float bf16_val(int i, int k) { return (float)((double)((i * 7 + k) % 23 - 11) / 8.0); }
static float f32_val(int i, int k) { return (float)(i * 0.1 - k * 0.01); }
static float f16_val(int i, int k) { return (float)((i - k) / 2.0 + 1.0 / 1024); }

typedef float (*valfn)(int i, int k);

/* check one tensor: type, ggml shape, byte size and every value */
static void check_tensor(const g4_st *s, const char *name, g4_type type, int n_dims, int64_t ne0, int64_t ne1,
                         int64_t ne2, int64_t ne3, valfn f, int k)
{
    const g4_tensor *t = g4_st_tensor(s, name);
    CHECK(t != NULL, "tensor %s present", name);
    if (!t) return;
    CHECK(t->type == type, "%s type %d want %d", name, t->type, type);
    CHECK(t->n_dims == n_dims, "%s n_dims %d want %d", name, t->n_dims, n_dims);
    CHECK(t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == ne2 && t->ne[3] == ne3,
          "%s ne [%lld %lld %lld %lld] want [%lld %lld %lld %lld]", name, (long long)t->ne[0],
          (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], (long long)ne0, (long long)ne1,
          (long long)ne2, (long long)ne3);
    int64_t n = g4_tensor_nelem(t);
    size_t es = type == G4_T_F32 ? 4 : 2;
    CHECK(t->nbytes == (size_t)n * es, "%s nbytes %zu", name, t->nbytes);
    CHECK(((uintptr_t)t->data % es) == 0, "%s data aligned", name);
    int bad = 0;
    for (int64_t i = 0; i < n && f; i++) {
        float got = get(t, i), want = f((int)i, k);
        if (!(got == want)) { if (bad < 3) printf("    %s[%lld] = %.9g want %.9g\n", name, (long long)i, got, want); bad++; }
    }
    CHECK(bad == 0, "%s: %d values differ", name, bad);
}

static float const_075(int i, int k) { (void)i; (void)k; return 0.75f; }
static float const_05(int i, int k) { (void)i; (void)k; return 0.5f; }

static void check_tiny(const g4_st *s)
{
    CHECK(s->n_tensors == 7, "7 tensors, got %d", s->n_tensors);
    CHECK(s->n_files == 1, "1 file, got %d", s->n_files);
    /* PyTorch [3,5] -> ggml ne [5,3] */
    check_tensor(s, "w.bf16", G4_T_BF16, 2, 5, 3, 1, 1, bf16_val, 1);
    check_tensor(s, "w.f32", G4_T_F32, 3, 4, 3, 2, 1, f32_val, 3);
    check_tensor(s, "w.f16", G4_T_F16, 1, 4, 1, 1, 1, f16_val, 2);
    check_tensor(s, "scalar", G4_T_F32, 1, 1, 1, 1, 1, const_075, 0);        /* shape [] */
    check_tensor(s, "layer_scalar", G4_T_BF16, 1, 1, 1, 1, 1, const_05, 0);  /* shape [1] */
    check_tensor(s, "empty", G4_T_F32, 2, 3, 0, 1, 1, NULL, 0);              /* shape [0,3] */
    check_tensor(s, "m.4d", G4_T_BF16, 4, 2, 3, 1, 2, bf16_val, 5);          /* [2,1,3,2] */
    CHECK(g4_st_tensor(s, "nope") == NULL, "absent tensor is NULL");
    CHECK(g4_st_tensor(s, "__metadata__") == NULL, "__metadata__ is not a tensor");
}

static void test_single_file(void)
{
    g4_err e = {{0}};
    g4_st *s = g4_st_open(ST_DIR "/tiny/model.safetensors", &e);
    CHECK(s, "open: %s", e.msg);
    if (s) check_tiny(s);
    g4_st_close(s);
}

static void test_folder_single(void)
{
    g4_err e = {{0}};
    g4_st *s = g4_st_open(ST_DIR "/tiny", &e);
    CHECK(s, "open folder: %s", e.msg);
    if (s) check_tiny(s);
    g4_st_close(s);
}

static void check_shard(const g4_st *s)
{
    CHECK(s->n_tensors == 3 && s->n_files == 2, "3 tensors in 2 files, got %d in %d", s->n_tensors, s->n_files);
    check_tensor(s, "a.weight", G4_T_BF16, 2, 4, 2, 1, 1, bf16_val, 2);
    check_tensor(s, "b.weight", G4_T_F32, 1, 3, 1, 1, 1, f32_val, 7);
    check_tensor(s, "c.weight", G4_T_F16, 2, 2, 2, 1, 1, f16_val, 1);
    /* each view points into its own shard's map */
    const g4_tensor *a = g4_st_tensor(s, "a.weight"), *c = g4_st_tensor(s, "c.weight");
    if (a && c && s->n_files == 2) {
        int fa = -1, fc = -1;
        for (int k = 0; k < 2; k++) {
            const uint8_t *lo = s->files[k].map, *hi = lo + s->files[k].size;
            if ((const uint8_t *)a->data >= lo && (const uint8_t *)a->data < hi) fa = k;
            if ((const uint8_t *)c->data >= lo && (const uint8_t *)c->data < hi) fc = k;
        }
        CHECK(fa >= 0 && fc >= 0 && fa != fc, "a and c in different shard maps");
        CHECK(fa >= 0 && strstr(s->files[fa].path, "model-00001-of-00002.safetensors"), "a in shard 1");
    }
}

static void test_index(void)
{
    g4_err e = {{0}};
    g4_st *s = g4_st_open(ST_DIR "/shard/model.safetensors.index.json", &e);
    CHECK(s, "open index: %s", e.msg);
    if (s) check_shard(s);
    g4_st_close(s);
    s = g4_st_open(ST_DIR "/shard", &e);
    CHECK(s, "open shard folder: %s", e.msg);
    if (s) check_shard(s);
    g4_st_close(s);
}

static char tmpdir[64];

static void test_writer_round_trip(void)
{
    g4_err e = {{0}};
    g4_st *s = g4_st_open(ST_DIR "/tiny/model.safetensors", &e);
    CHECK(s, "open: %s", e.msg);
    if (!s) return;
    /* write all tensors in reverse order, then read back and compare everything */
    int n = s->n_tensors;
    g4_tensor *rev = malloc((size_t)n * sizeof *rev);
    for (int k = 0; k < n; k++) rev[k] = s->tensors[n - 1 - k];
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    int rc = g4_st_write(path, rev, n, &e);
    CHECK(rc == 0, "write: %s", e.msg);
    g4_st *r = rc == 0 ? g4_st_open(path, &e) : NULL;
    CHECK(r, "reopen: %s", e.msg);
    if (r) {
        check_tiny(r);
        CHECK(r->n_tensors == n, "count");
        for (int k = 0; k < n && k < r->n_tensors; k++) {
            const g4_tensor *a = &rev[k], *b = &r->tensors[k];
            CHECK(strcmp(a->name, b->name) == 0, "order kept at %d: %s vs %s", k, a->name, b->name);
            CHECK(a->type == b->type && a->n_dims == b->n_dims && a->nbytes == b->nbytes &&
                  memcmp(a->ne, b->ne, sizeof a->ne) == 0 && (a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0),
                  "tensor %s round trip", a->name);
        }
        /* header is padded so the data section starts 8-aligned */
        uint64_t hlen = 0;
        for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | r->files[0].map[k];
        CHECK(hlen % 8 == 0, "header length %llu multiple of 8", (unsigned long long)hlen);
        /* the header names PyTorch shapes */
        CHECK(memmem(r->files[0].map, r->files[0].size, "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3,4]", 38) != NULL,
              "shape written in PyTorch order");
        CHECK(memmem(r->files[0].map, r->files[0].size, "\"format\":\"pt\"", 13) != NULL, "format metadata");
    }
    g4_st_close(r);
    unlink(path);

    /* a synthetic tensor with a name needing escapes and a 2-D f32 shape */
    float vals[6] = { 1, -2, 3.5f, 0, -0.0f, 1e-30f };
    g4_tensor t;
    memset(&t, 0, sizeof t);
    strcpy(t.name, "we\"ird\\name");
    t.type = G4_T_F32; t.n_dims = 2; t.ne[0] = 3; t.ne[1] = 2; t.ne[2] = t.ne[3] = 1;
    t.data = vals; t.nbytes = sizeof vals;
    rc = g4_st_write(path, &t, 1, &e);
    CHECK(rc == 0, "write synthetic: %s", e.msg);
    r = rc == 0 ? g4_st_open(path, &e) : NULL;
    CHECK(r, "reopen synthetic: %s", e.msg);
    const g4_tensor *b = r ? g4_st_tensor(r, "we\"ird\\name") : NULL;
    CHECK(b && b->ne[0] == 3 && b->ne[1] == 2 && b->n_dims == 2 && memcmp(b->data, vals, sizeof vals) == 0,
          "synthetic round trip");
    g4_st_close(r);
    unlink(path);

    /* writer errors name the path and write nothing */
    g4_tensor bad = t;
    bad.type = G4_T_Q8_0;
    CHECK(g4_st_write(path, &bad, 1, &e) != 0 && strstr(e.msg, path) && access(path, F_OK) != 0,
          "q8_0 rejected: %s", e.msg);
    bad = t; bad.nbytes = 20;
    CHECK(g4_st_write(path, &bad, 1, &e) != 0 && strstr(e.msg, path) && strstr(e.msg, "bytes"),
          "size mismatch rejected: %s", e.msg);
    g4_tensor two[2] = { t, t };
    CHECK(g4_st_write(path, two, 2, &e) != 0 && strstr(e.msg, "twice"), "duplicate rejected: %s", e.msg);
    CHECK(g4_st_write("/nonexistent-dir/x.safetensors", &t, 1, &e) != 0 && strstr(e.msg, "/nonexistent-dir/x"),
          "unwritable path: %s", e.msg);
    free(rev);
    g4_st_close(s);
}

/* a folder with two .safetensors files and no index: both are opened (sorted by name) */
static void test_folder_without_index(void)
{
    g4_err e = {{0}};
    char dir[128], p1[160], p2[160];
    snprintf(dir, sizeof dir, "%s/multi", tmpdir);
    mkdir(dir, 0755);
    float v1[2] = { 1, 2 }, v2[3] = { 3, 4, 5 };
    g4_tensor a, b;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b);
    strcpy(a.name, "x"); a.type = G4_T_F32; a.n_dims = 1; a.ne[0] = 2; a.ne[1] = a.ne[2] = a.ne[3] = 1;
    a.data = v1; a.nbytes = 8;
    b = a; strcpy(b.name, "y"); b.ne[0] = 3; b.data = v2; b.nbytes = 12;
    snprintf(p1, sizeof p1, "%s/b.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/a.safetensors", dir);
    CHECK(g4_st_write(p1, &a, 1, &e) == 0 && g4_st_write(p2, &b, 1, &e) == 0, "write: %s", e.msg);
    g4_st *s = g4_st_open(dir, &e);
    CHECK(s && s->n_files == 2 && s->n_tensors == 2, "open folder of 2: %s", s ? "" : e.msg);
    if (s) {
        CHECK(strstr(s->files[0].path, "/a.safetensors") != NULL, "sorted by file name");
        const g4_tensor *x = g4_st_tensor(s, "x"), *y = g4_st_tensor(s, "y");
        CHECK(x && y && ((const float *)x->data)[1] == 2 && ((const float *)y->data)[2] == 5, "values");
    }
    g4_st_close(s);
    unlink(p1); unlink(p2); rmdir(dir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/g4_test_st_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL mkdtemp\n"); return 1; }
    RUN(test_single_file);
    RUN(test_folder_single);
    RUN(test_index);
    RUN(test_writer_round_trip);
    RUN(test_folder_without_index);
    rmdir(tmpdir);
    return h_finish();
}

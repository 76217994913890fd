/* test_bad_safetensors.c - a catalog of broken safetensors checkpoints, generated at test time in
 * a fresh /tmp folder. Each one must make g4_st_open return NULL with one message that names the
 * offending file (and, where the case is specific, the problem), without crashing, leaking or
 * tripping AddressSanitizer / UBSan (make test builds this file with both).
 *
 * Cases: a valid file truncated at every length; header length huge / past the end / zero; header
 * not JSON or not an object; malformed entries (dtype, shape, data_offsets); offsets out of range;
 * shape/size mismatch; unsupported dtypes; shape overflow; misaligned data; duplicate names in one
 * header and across shards; index problems (missing shard, missing tensor, wrong shard, not JSON,
 * no weight_map, absolute shard path); empty folders; and random header byte flips.
 */
#include "g4.h"
#include "harness.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static int n_cases;

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) { printf("    cannot write %s\n", path); return; }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

/* a safetensors file: 8-byte length `hlen` (as given), the header text, then `dlen` data bytes */
static void mk_raw(const char *path, uint64_t hlen, const char *header, size_t dlen)
{
    size_t hn = strlen(header), n = 8 + hn + dlen;
    uint8_t *b = calloc(1, n);
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(hlen >> (8 * k));
    memcpy(b + 8, header, hn);
    for (size_t k = 0; k < dlen; k++) b[8 + hn + k] = (uint8_t)(k * 37 + 1);
    write_bytes(path, b, n);
    free(b);
}
/* like the real writers, pad the header with spaces so the data section starts 8-aligned */
static void mk(const char *path, const char *header, size_t dlen)
{
    size_t n = strlen(header), padded = (n + 7) / 8 * 8;
    char *h = malloc(padded + 1);
    memcpy(h, header, n);
    memset(h + n, ' ', padded - n);
    h[padded] = 0;
    mk_raw(path, padded, h, dlen);
    free(h);
}

static char *P(const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* open must fail; the message must contain `path` (the file at fault) and `want` (if given) */
static int fails(const char *open_path, const char *path, const char *want)
{
    g4_err e;
    memset(&e, 0, sizeof e);
    n_cases++;
    g4_st *s = g4_st_open(open_path, &e);
    if (s) { g4_st_close(s); printf("    %s: opened but should fail\n", open_path); return 0; }
    if (!strstr(e.msg, path) || (want && !strstr(e.msg, want)) || strchr(e.msg, '\n')) {
        printf("    %s: message '%s' should name %s%s%s\n", open_path, e.msg, path, want ? " and say " : "",
               want ? want : "");
        return 0;
    }
    return 1;
}
#define BAD(file, header, dlen, want) do { char *p_ = P(file); mk(p_, header, dlen); \
    CHECK(fails(p_, p_, want), "case %s", file); } while (0)

/* a small valid single file: w [2,3] BF16, f [2] F32, h [3] F16 */
static const char *VALID = "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
    "\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
    "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[20,26]}}";

static void test_valid_baseline(void)
{
    /* the catalog mutates this: it must open, or every "fails" below would prove nothing */
    g4_err e = {{0}};
    char *p = P("valid.safetensors");
    mk(p, VALID, 26);
    g4_st *s = g4_st_open(p, &e);
    CHECK(s && s->n_tensors == 3, "valid baseline opens: %s", s ? "" : e.msg);
    g4_st_close(s);
}

static void test_truncated(void)
{
    char *p = P("valid.safetensors");
    mk(p, VALID, 26);
    FILE *f = fopen(p, "rb");
    uint8_t buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n > 100, "read valid file");
    int bad = 0;
    char *t = P("trunc.safetensors");
    for (size_t L = 0; L < n; L++) {
        write_bytes(t, buf, L);
        if (!fails(t, t, NULL)) bad++;
    }
    CHECK(bad == 0, "%d of %zu truncations not rejected cleanly", bad, n);
    unlink(t);
}

static void test_header_length(void)
{
    char *p = P("hl.safetensors");
    mk_raw(p, UINT64_MAX, VALID, 26);
    CHECK(fails(p, p, "header length"), "u64 max");
    mk_raw(p, (uint64_t)1 << 63, VALID, 26);
    CHECK(fails(p, p, "header length"), "2^63");
    mk_raw(p, strlen(VALID) + 26 + 1, VALID, 26);       /* one past the end */
    CHECK(fails(p, p, "header length"), "one past end");
    mk_raw(p, strlen(VALID) + 26, VALID, 26);           /* header swallows the data */
    CHECK(fails(p, p, "not valid JSON"), "header to the end");
    mk_raw(p, 0, VALID, 26);
    CHECK(fails(p, p, "JSON"), "zero length");
    mk_raw(p, 5, VALID, 26);                            /* header cut inside the JSON */
    CHECK(fails(p, p, "JSON"), "short length");
    write_bytes(p, "\x01\x00\x00", 3);
    CHECK(fails(p, p, "too small"), "3-byte file");
}

static void test_header_not_json(void)
{
    BAD("nj1.safetensors", "hello world", 0, "not valid JSON");
    BAD("nj2.safetensors", "{\"w\":{\"dtype\":\"BF16\"", 0, "not valid JSON");
    BAD("nj3.safetensors", "[1,2,3]", 0, "not a JSON object");
    BAD("nj4.safetensors", "\"str\"", 0, "not a JSON object");
    BAD("nj5.safetensors", "{\"w\":1} trailing", 0, "not valid JSON");
    BAD("nj6.safetensors", "{\"\xff\":1}", 0, "not valid JSON");
    char *p = P("nj7.safetensors");
    write_bytes(p, "\x04\0\0\0\0\0\0\0\0\0\0\0", 12);
    CHECK(fails(p, p, "JSON"), "NUL header");
}

static void test_bad_entries(void)
{
    BAD("e1.safetensors", "{\"w\":5}", 0, "not a JSON object");
    BAD("e2.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "dtype");
    BAD("e3.safetensors", "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "dtype");
    BAD("e4.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"data_offsets\":[0,2]}}", 2, "shape");
    BAD("e5.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":2,\"data_offsets\":[0,2]}}", 2, "shape");
    BAD("e6.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[-1],\"data_offsets\":[0,2]}}", 2, "shape entry 0");
    BAD("e7.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1.5],\"data_offsets\":[0,2]}}", 2, "shape entry 0");
    BAD("e8.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1,\"2\"],\"data_offsets\":[0,4]}}", 4, "shape entry 1");
    BAD("e9.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1e300],\"data_offsets\":[0,2]}}", 2, "shape entry 0");
    BAD("e10.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,2]}}", 2, "5 dims");
    BAD("e11.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1]}}", 2, "data_offsets");
    BAD("e12.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0]}}", 2, "data_offsets");
    BAD("e13.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2,4]}}", 4, "data_offsets");
    BAD("e14.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[-2,0]}}", 2, "data_offsets");
    BAD("e15.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0.5,2]}}", 2, "data_offsets");
    BAD("e16.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,2]}}", 4, "outside");
    BAD("e17.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":\"0,2\"}}", 2, "data_offsets");
    char name[200] = "{\"", hdr[400];
    for (int k = 0; k < 120; k++) strcat(name, "n");
    snprintf(hdr, sizeof hdr, "%s\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}", name);
    BAD("e18.safetensors", hdr, 2, "name too long");
}

static void test_offsets_and_sizes(void)
{
    /* end beyond the data section (by one byte, and hugely) */
    BAD("o1.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 11, "outside the data section");
    BAD("o2.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9007199254740000,9007199254740004]}}", 8, "outside");
    BAD("o3.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
        "\"v\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}", 6, "tensor v");
    /* shape / size mismatch */
    BAD("s1.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}", 12, "needs 12 bytes");
    BAD("s2.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", 24, "needs 24 bytes");
    BAD("s3.safetensors", "{\"w\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "needs 2 bytes");
    BAD("s4.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,4]}}", 4, "needs 0 bytes");
    /* product overflows 64 bits */
    BAD("s5.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "too large");
    BAD("s6.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4, "shape");
    /* F32 data at an address that is not a multiple of 4 (header of 64 bytes + offset 2) */
    char hdr[128];
    snprintf(hdr, sizeof hdr, "%-64s", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}");
    BAD("a1.safetensors", hdr, 8, "not aligned");
}

static void test_dtypes(void)
{
    const char *dts[] = { "I64", "F8_E4M3", "F8_E5M2", "F64", "I32", "U8", "BOOL", "bf16", "" };
    for (int k = 0; k < 9; k++) {
        char hdr[160], want[64], file[32];
        snprintf(hdr, sizeof hdr, "{\"w\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,8]}}", dts[k]);
        snprintf(want, sizeof want, "tensor w has unsupported dtype %s", dts[k]);
        snprintf(file, sizeof file, "dt%d.safetensors", k);
        BAD(file, hdr, 8, want);
    }
}

static void test_duplicates(void)
{
    BAD("d1.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]},"
        "\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[2,4]}}", 4, "appears twice");
}

/* an index folder: shard1 {a, b}, shard2 {c}; `map` is the weight_map JSON body */
static char *mk_index_dir(const char *name, const char *map, int write_shard2, const char *shard2_hdr)
{
    char *d = P(name);
    mkdir(d, 0755);
    char p[300], *idx = malloc(300);
    snprintf(p, sizeof p, "%s/s1.safetensors", d);
    mk(p, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    if (write_shard2) {
        snprintf(p, sizeof p, "%s/s2.safetensors", d);
        mk(p, shard2_hdr ? shard2_hdr : "{\"c\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    }
    snprintf(idx, 300, "%s/model.safetensors.index.json", d);
    char body[512];
    snprintf(body, sizeof body, "{\"metadata\":{\"total_size\":12},\"weight_map\":%s}", map);
    write_bytes(idx, body, strlen(body));
    return idx;
}

static void test_index(void)
{
    const char *good = "{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\",\"c\":\"s2.safetensors\"}";
    g4_err e = {{0}};
    char *idx = mk_index_dir("i0", good, 1, NULL);
    g4_st *s = g4_st_open(idx, &e);
    CHECK(s && s->n_tensors == 3 && s->n_files == 2, "good index opens: %s", s ? "" : e.msg);
    g4_st_close(s);
    free(idx);

    char sh[300];
    /* missing shard file: message names the shard path and the index */
    idx = mk_index_dir("i1", good, 0, NULL);
    snprintf(sh, sizeof sh, "%s/s2.safetensors", P("i1"));
    CHECK(fails(idx, sh, "cannot open") && fails(idx, idx, NULL), "missing shard");
    CHECK(fails(P("i1"), sh, NULL), "missing shard via folder");
    free(idx);
    /* index names a tensor that its shard does not have */
    idx = mk_index_dir("i2", "{\"a\":\"s1.safetensors\",\"zz\":\"s2.safetensors\"}", 1, NULL);
    CHECK(fails(idx, idx, "tensor zz"), "missing tensor");
    free(idx);
    /* index names the wrong shard for a tensor */
    idx = mk_index_dir("i3", "{\"a\":\"s2.safetensors\",\"c\":\"s1.safetensors\"}", 1, NULL);
    CHECK(fails(idx, idx, "lists tensor"), "wrong shard");
    free(idx);
    /* the same tensor name in two shards */
    idx = mk_index_dir("i4", good, 1, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}");
    snprintf(sh, sizeof sh, "%s/s2.safetensors", P("i4"));
    CHECK(fails(idx, sh, "tensor a is also in"), "duplicate across shards");
    free(idx);
    /* a corrupt shard: the message names the shard */
    idx = mk_index_dir("i5", good, 1, "{\"c\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,4]}}");
    snprintf(sh, sizeof sh, "%s/s2.safetensors", P("i5"));
    CHECK(fails(idx, sh, "unsupported dtype I64"), "bad shard dtype");
    free(idx);
    /* index problems */
    const char *maps[] = { "5", "{}", "{\"a\":3}", "{\"a\":\"/etc/passwd\"}", "{\"a\":\"\"}", "[\"s1.safetensors\"]" };
    const char *wants[] = { "weight_map", "empty", "not a file name", "relative", "not a file name", "weight_map" };
    for (int k = 0; k < 6; k++) {
        char name[16];
        snprintf(name, sizeof name, "j%d", k);
        idx = mk_index_dir(name, maps[k], 1, NULL);
        CHECK(fails(idx, idx, wants[k]), "index case %d", k);
        free(idx);
    }
    char *bad = P("notjson.index.json");
    write_bytes(bad, "{\"weight_map\": {", 16);
    CHECK(fails(bad, bad, "json: "), "index not JSON");
}

static void test_paths(void)
{
    char *d = P("emptydir");
    mkdir(d, 0755);
    CHECK(fails(d, d, "no model.safetensors"), "empty folder");
    char *n = P("does-not-exist.safetensors");
    CHECK(fails(n, n, "cannot open"), "missing file");
    char *e = P("empty.safetensors");
    write_bytes(e, "", 0);
    CHECK(fails(e, e, "empty"), "empty file");
    /* a folder whose model.safetensors is broken */
    char *d2 = P("brokendir"), p[300];
    mkdir(d2, 0755);
    snprintf(p, sizeof p, "%s/model.safetensors", d2);
    mk(p, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[9],\"data_offsets\":[0,2]}}", 2);
    CHECK(fails(d2, p, "needs 18 bytes"), "broken folder model");
}

/* random byte flips in the header of the valid file: open succeeds or fails cleanly; when it
 * succeeds every tensor view must lie inside the mapped file */
static void test_fuzz(void)
{
    char *p = P("fuzz.safetensors");
    size_t hn = (strlen(VALID) + 7) / 8 * 8, n = 8 + hn + 26;
    uint8_t *orig = calloc(1, n), *b = malloc(n);
    for (int k = 0; k < 8; k++) orig[k] = (uint8_t)((uint64_t)hn >> (8 * k));
    memset(orig + 8, ' ', hn);
    memcpy(orig + 8, VALID, strlen(VALID));
    uint64_t st = 12345;
    int opened = 0, failed_ok = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(b, orig, n);
        int flips = 1 + (int)(g4_splitmix64(&st) % 3);
        for (int f = 0; f < flips; f++) {
            size_t at = (size_t)(g4_splitmix64(&st) % (8 + hn));
            uint64_t r = g4_splitmix64(&st);
            b[at] = (r & 1) ? (uint8_t)(r >> 8) : (uint8_t)"{}[],:\"0123456789-e.\\"[(r >> 8) % 21];
        }
        write_bytes(p, b, n);
        g4_err e = {{0}};
        g4_st *s = g4_st_open(p, &e);
        if (s) {
            opened++;
            for (int k = 0; k < s->n_tensors; k++) {
                const uint8_t *lo = s->files[0].map, *hi = lo + s->files[0].size, *d = s->tensors[k].data;
                if (d < lo || d + s->tensors[k].nbytes > hi) bad++;
            }
            g4_st_close(s);
        } else if (strstr(e.msg, p) && !strchr(e.msg, '\n')) failed_ok++;
        else { bad++; printf("    bad message: %s\n", e.msg); }
    }
    printf("    fuzz: %d opened, %d rejected cleanly, %d bad\n", opened, failed_ok, bad);
    CHECK(bad == 0, "fuzz: %d bad outcomes", bad);
    CHECK(failed_ok > 1000, "fuzz mutations mostly rejected (%d)", failed_ok);
    free(orig); free(b);
    unlink(p);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/g4_bad_st_XXXXXX");
    if (!mkdtemp(dir)) { printf("FAIL mkdtemp\n"); return 1; }
    RUN(test_valid_baseline);
    RUN(test_truncated);
    RUN(test_header_length);
    RUN(test_header_not_json);
    RUN(test_bad_entries);
    RUN(test_offsets_and_sizes);
    RUN(test_dtypes);
    RUN(test_duplicates);
    RUN(test_index);
    RUN(test_paths);
    RUN(test_fuzz);
    printf("    %d bad cases checked in %s\n", n_cases, dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);   /* our own mkdtemp folder */
    if (system(cmd) != 0) printf("    could not remove %s\n", dir);
    return h_finish();
}

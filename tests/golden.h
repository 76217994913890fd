/* golden.h - reader for the golden tensor files golden/tiny/<run>_<f32|bf16>.g4t.
 *
 * The files are written by golden/gen.py from the official Hugging Face Gemma 4 Unified code;
 * golden/README.md documents the format byte by byte and lists every tensor name. In short,
 * little-endian throughout:
 *   "G4GT" | u32 version (= G4T_VERSION) | u32 count |
 *   count x ( u32 name_len | name bytes (no NUL) | u32 dtype (0 f32, 1 i32) | u32 n_dims |
 *             u64 dims[n_dims] (outermost first, row-major) | 4*prod(dims) bytes of data )
 * and nothing after the last tensor.
 *
 * Usage:
 *   char err[512];
 *   g4t_file *f = g4t_load("golden/tiny/long_f32.g4t", err, sizeof err);
 *   if (!f) { printf("%s\n", err); ... }
 *   const g4t_tensor *t = g4t_get(f, "logits");   // t->f32 is [dims[0]][dims[1]] floats
 *   g4t_free(f);
 *
 * Validation is strict: magic, version (a stale version tells the command that regenerates the
 * goldens), counts, name length and characters, duplicate names, dtype, dims (1..G4T_MAX_DIMS,
 * every dim >= 1), sizes against the file size with overflow checks, and no trailing bytes. A
 * bad file gives one error line "<path>: <problem>" and NULL; nothing is printed, nothing leaks.
 * The data is copied into separately allocated, aligned arrays (the file has no alignment), and
 * decoded byte by byte so the reader also works on a big-endian host.
 *
 * Header-only (static inline functions), so a test just includes it.
 */
#ifndef G4_GOLDEN_H
#define G4_GOLDEN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define G4T_VERSION 1
#define G4T_MAX_DIMS 8
#define G4T_MAX_NAME 255
#define G4T_MAX_TENSORS 100000
#define G4T_MAX_FILE_BYTES ((uint64_t)1 << 31)   /* goldens are a few hundred KB */
#define G4T_REGEN_CMD "python golden/gen.py (see golden/README.md)"

enum { G4T_F32 = 0, G4T_I32 = 1 };

typedef struct {
    char name[G4T_MAX_NAME + 1];  /* NUL-terminated */
    uint32_t dtype;               /* G4T_F32 or G4T_I32 */
    uint32_t n_dims;              /* 1..G4T_MAX_DIMS */
    uint64_t dims[G4T_MAX_DIMS];  /* outermost first; unused entries are 0 */
    uint64_t n;                   /* number of elements = prod(dims) */
    float *f32;                   /* [n] when dtype == G4T_F32, else NULL */
    int32_t *i32;                 /* [n] when dtype == G4T_I32, else NULL */
} g4t_tensor;

typedef struct {
    char path[512];
    uint32_t version;
    uint32_t count;
    g4t_tensor *t;                /* [count], in file order */
} g4t_file;

static inline void g4t__err(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void g4t__err(char *err, size_t n, const char *fmt, ...)
{
    if (!err || n == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

static inline uint32_t g4t__u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t g4t__u64(const unsigned char *p)
{
    return (uint64_t)g4t__u32(p) | (uint64_t)g4t__u32(p + 4) << 32;
}

static inline void g4t_free(g4t_file *f)
{
    if (!f) return;
    if (f->t) {
        for (uint32_t i = 0; i < f->count; i++) { free(f->t[i].f32); free(f->t[i].i32); }
        free(f->t);
    }
    free(f);
}

/* Parse a whole file image. `path` is only used in messages. */
static inline g4t_file *g4t_parse(const unsigned char *b, uint64_t size, const char *path,
                                  char *err, size_t errn)
{
    uint64_t o = 0;
    if (size < 12) { g4t__err(err, errn, "%s: file too short (%llu bytes) for a g4t header", path, (unsigned long long)size); return NULL; }
    if (memcmp(b, "G4GT", 4) != 0) { g4t__err(err, errn, "%s: bad magic (not a G4GT golden tensor file)", path); return NULL; }
    uint32_t version = g4t__u32(b + 4), count = g4t__u32(b + 8);
    if (version != G4T_VERSION) {
        g4t__err(err, errn, "%s: golden format version %u, this reader reads version %u; regenerate the goldens with: %s",
                 path, version, G4T_VERSION, G4T_REGEN_CMD);
        return NULL;
    }
    if (count == 0 || count > G4T_MAX_TENSORS) { g4t__err(err, errn, "%s: tensor count %u out of range 1..%u", path, count, G4T_MAX_TENSORS); return NULL; }
    /* each tensor takes at least 4+1+4+4+8+4 = 25 bytes */
    if ((uint64_t)count * 25 > size - 12) { g4t__err(err, errn, "%s: truncated: %u tensors cannot fit in %llu bytes", path, count, (unsigned long long)size); return NULL; }
    o = 12;

    g4t_file *f = (g4t_file *)calloc(1, sizeof *f);
    if (!f) { g4t__err(err, errn, "%s: out of memory", path); return NULL; }
    snprintf(f->path, sizeof f->path, "%s", path);
    f->version = version;
    f->t = (g4t_tensor *)calloc(count, sizeof *f->t);
    if (!f->t) { free(f); g4t__err(err, errn, "%s: out of memory", path); return NULL; }
    f->count = count;

    for (uint32_t i = 0; i < count; i++) {
        g4t_tensor *t = &f->t[i];
        if (size - o < 4) { g4t__err(err, errn, "%s: truncated in tensor %u (name length)", path, i); goto fail; }
        uint32_t nl = g4t__u32(b + o); o += 4;
        if (nl == 0 || nl > G4T_MAX_NAME) { g4t__err(err, errn, "%s: tensor %u: name length %u out of range 1..%d", path, i, nl, G4T_MAX_NAME); goto fail; }
        if (size - o < nl) { g4t__err(err, errn, "%s: truncated in tensor %u (name)", path, i); goto fail; }
        for (uint32_t c = 0; c < nl; c++) {
            unsigned char ch = b[o + c];
            if (ch <= 0x20 || ch >= 0x7f) { g4t__err(err, errn, "%s: tensor %u: name has a non-printable or space byte 0x%02x", path, i, ch); goto fail; }
        }
        memcpy(t->name, b + o, nl); t->name[nl] = 0; o += nl;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(f->t[j].name, t->name) == 0) { g4t__err(err, errn, "%s: duplicate tensor name '%s'", path, t->name); goto fail; }
        if (size - o < 8) { g4t__err(err, errn, "%s: tensor '%s': truncated (dtype, n_dims)", path, t->name); goto fail; }
        t->dtype = g4t__u32(b + o); t->n_dims = g4t__u32(b + o + 4); o += 8;
        if (t->dtype != G4T_F32 && t->dtype != G4T_I32) { g4t__err(err, errn, "%s: tensor '%s': unknown dtype %u (0 = f32, 1 = i32)", path, t->name, t->dtype); goto fail; }
        if (t->n_dims < 1 || t->n_dims > G4T_MAX_DIMS) { g4t__err(err, errn, "%s: tensor '%s': n_dims %u out of range 1..%d", path, t->name, t->n_dims, G4T_MAX_DIMS); goto fail; }
        if (size - o < 8ull * t->n_dims) { g4t__err(err, errn, "%s: tensor '%s': truncated (dims)", path, t->name); goto fail; }
        uint64_t n = 1, room = (size - o - 8ull * t->n_dims) / 4;   /* elements the rest of the file can hold */
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v = g4t__u64(b + o + 8ull * d);
            if (v == 0) { g4t__err(err, errn, "%s: tensor '%s': dim %u is 0", path, t->name, d); goto fail; }
            if (v > room || n > room / v) { g4t__err(err, errn, "%s: tensor '%s': dims exceed the file size (truncated or corrupt)", path, t->name); goto fail; }
            t->dims[d] = v; n *= v;
        }
        o += 8ull * t->n_dims;
        t->n = n;
        void *dst = malloc((size_t)n * 4);
        if (!dst) { g4t__err(err, errn, "%s: tensor '%s': out of memory", path, t->name); goto fail; }
        if (t->dtype == G4T_F32) t->f32 = (float *)dst; else t->i32 = (int32_t *)dst;
        for (uint64_t k = 0; k < n; k++) {
            uint32_t u = g4t__u32(b + o + 4 * k);
            memcpy((unsigned char *)dst + 4 * k, &u, 4);
        }
        o += 4 * n;
    }
    if (o != size) { g4t__err(err, errn, "%s: %llu trailing bytes after the last tensor", path, (unsigned long long)(size - o)); goto fail; }
    return f;
fail:
    g4t_free(f);
    return NULL;
}

static inline g4t_file *g4t_load(const char *path, char *err, size_t errn)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) { g4t__err(err, errn, "%s: cannot open (regenerate the goldens with: %s)", path, G4T_REGEN_CMD); return NULL; }
    long sz = -1;
    if (fseek(fp, 0, SEEK_END) == 0) sz = ftell(fp);
    if (sz < 0 || fseek(fp, 0, SEEK_SET) != 0) { fclose(fp); g4t__err(err, errn, "%s: cannot determine the file size", path); return NULL; }
    if ((uint64_t)sz > G4T_MAX_FILE_BYTES) { fclose(fp); g4t__err(err, errn, "%s: file too large (%ld bytes) for a golden file", path, sz); return NULL; }
    unsigned char *buf = (unsigned char *)malloc(sz ? (size_t)sz : 1);
    if (!buf) { fclose(fp); g4t__err(err, errn, "%s: out of memory", path); return NULL; }
    size_t got = fread(buf, 1, (size_t)sz, fp);
    fclose(fp);
    if (got != (size_t)sz) { free(buf); g4t__err(err, errn, "%s: read error", path); return NULL; }
    g4t_file *f = g4t_parse(buf, (uint64_t)sz, path, err, errn);
    free(buf);
    return f;
}

/* The tensor called `name`, or NULL. */
static inline const g4t_tensor *g4t_get(const g4t_file *f, const char *name)
{
    if (!f || !name) return NULL;
    for (uint32_t i = 0; i < f->count; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

#endif

/* safetensors.c - read HF safetensors checkpoints (one file, sharded with an index, or a folder)
 * and write a single safetensors file (used by tests).
 *
 * File layout (https://github.com/huggingface/safetensors, "Format"):
 *   [8 bytes]  N, little-endian uint64: byte length of the header
 *   [N bytes]  JSON object: { "__metadata__": {string: string} (optional, ignored here),
 *                             NAME: {"dtype": "BF16", "shape": [d0, d1, ...], "data_offsets": [b, e]} }
 *              (writers pad it with spaces; the Python package pads N to a multiple of 8)
 *   [rest]     data section; tensor bytes are [b, e) relative to its start, row-major (C order).
 * A sharded checkpoint has model.safetensors.index.json = {"metadata": {...}, "weight_map":
 * {NAME: "model-00001-of-00002.safetensors", ...}}, shard names relative to the index's folder.
 *
 * Reading (g4_st_open): every file is mmapped read-only (g4_map_file) and tensors are views into
 * the map. Everything is validated before use: header length against the file size, the header
 * JSON, dtype (F32, F16, BF16 supported; anything else is an error naming the tensor), shape
 * (at most G4_MAX_DIMS non-negative integer dims), that prod(shape) * dtype size equals e - b,
 * that [b, e) lies inside the data section, alignment of the data to the element size (so later
 * stages may load floats directly), and that no tensor name occurs twice (within or across
 * shards). With an index, every weight_map entry must name a tensor present in that shard.
 * Shapes are reported in ggml order: PyTorch shape [rows, cols] -> ne[0] = cols, ne[1] = rows
 * (same bytes, see g4.h); a 0-dim (scalar) tensor is reported as n_dims 1, ne[0] = 1.
 *
 * Spec: section 5.1 (the HF checkpoint: one model.safetensors, all BF16; names and shapes).
 *
 * Errors: one line "<path>: <problem>" naming the file that is wrong; NULL is returned and
 * nothing is leaked.
 */
#include "g4.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dtypes ---------------------------------------------------------------------------- */

static int st_dtype(const char *s, g4_type *t, size_t *esize)
{
    if (strcmp(s, "F32") == 0) { *t = G4_T_F32; *esize = 4; return 0; }
    if (strcmp(s, "F16") == 0) { *t = G4_T_F16; *esize = 2; return 0; }
    if (strcmp(s, "BF16") == 0) { *t = G4_T_BF16; *esize = 2; return 0; }
    return -1;
}

static const char *st_dtype_name(g4_type t, size_t *esize)
{
    switch (t) {
    case G4_T_F32: *esize = 4; return "F32";
    case G4_T_F16: *esize = 2; return "F16";
    case G4_T_BF16: *esize = 2; return "BF16";
    default: return NULL;
    }
}

/* ---- the open checkpoint being built ----------------------------------------------------- */

typedef struct {
    g4_st *s;
    int cap_files, cap_tensors;
    int *file_of;             /* [n_tensors] index of the file holding each tensor */
    struct name_idx *sorted;  /* [n_tensors] names sorted, after check_duplicates */
} st_build;

static int json_uint(const g4_json *j, uint64_t *out)
{
    /* a non-negative integer that a double holds exactly (< 2^53) */
    if (!j || j->type != G4_JNUM || !(j->num >= 0) || j->num >= 9007199254740992.0) return -1;
    if (j->num != (double)(uint64_t)j->num) return -1;
    *out = (uint64_t)j->num;
    return 0;
}

static int add_tensor(st_build *b, int file, g4_tensor *t, g4_err *err, const char *path)
{
    g4_st *s = b->s;
    if (s->n_tensors == b->cap_tensors) {
        int cap = b->cap_tensors ? b->cap_tensors * 2 : 64;
        g4_tensor *nt = realloc(s->tensors, (size_t)cap * sizeof *nt);
        if (!nt) return g4_fail(err, "%s: out of memory", path);
        s->tensors = nt;
        int *nf = realloc(b->file_of, (size_t)cap * sizeof *nf);
        if (!nf) return g4_fail(err, "%s: out of memory", path);
        b->file_of = nf;
        b->cap_tensors = cap;
    }
    b->file_of[s->n_tensors] = file;
    s->tensors[s->n_tensors++] = *t;
    return 0;
}

/* Parse the header of file `fi` (already mapped) and append its tensors. */
static int parse_header(st_build *b, int fi, g4_err *err)
{
    const uint8_t *map = b->s->files[fi].map;
    size_t size = b->s->files[fi].size;
    const char *path = b->s->files[fi].path;
    if (size < 8) return g4_fail(err, "%s: too small for a safetensors file (%zu bytes)", path, size);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | map[k];
    if (hlen > size - 8)
        return g4_fail(err, "%s: header length %llu exceeds the file size %zu (truncated or not safetensors)",
                       path, (unsigned long long)hlen, size);
    g4_err jerr = {{0}};
    g4_json *h = g4_json_parse((const char *)map + 8, (size_t)hlen, &jerr);
    if (!h) return g4_fail(err, "%s: header is not valid JSON (%s, counting from byte 8)", path, jerr.msg);
    if (h->type != G4_JOBJ) { g4_json_free(h); return g4_fail(err, "%s: header is not a JSON object", path); }

    const uint8_t *data = map + 8 + hlen;
    uint64_t dsize = size - 8 - hlen;
    int rc = -1;
    for (int k = 0; k < h->n; k++) {
        const g4_json *e = &h->kids[k];
        const char *name = e->key;
        if (strcmp(name, "__metadata__") == 0) continue;
        if (strlen(name) >= sizeof ((g4_tensor *)0)->name) {
            g4_fail(err, "%s: tensor name too long (%zu bytes, max %zu): %.60s...", path, strlen(name),
                    sizeof ((g4_tensor *)0)->name - 1, name);
            goto out;
        }
        if (e->type != G4_JOBJ) { g4_fail(err, "%s: tensor %s: entry is not a JSON object", path, name); goto out; }
        const g4_json *jd = g4_json_get(e, "dtype"), *js = g4_json_get(e, "shape"),
                      *jo = g4_json_get(e, "data_offsets");
        if (!jd || jd->type != G4_JSTR) { g4_fail(err, "%s: tensor %s has no \"dtype\" string", path, name); goto out; }
        if (!js || js->type != G4_JARR) { g4_fail(err, "%s: tensor %s has no \"shape\" array", path, name); goto out; }
        if (!jo || jo->type != G4_JARR || jo->n != 2) {
            g4_fail(err, "%s: tensor %s has no \"data_offsets\" [begin, end] pair", path, name); goto out;
        }
        g4_tensor t;
        memset(&t, 0, sizeof t);
        size_t esize;
        if (st_dtype(jd->str, &t.type, &esize)) {
            g4_fail(err, "%s: tensor %s has unsupported dtype %s (F32, F16 and BF16 are supported)", path, name, jd->str);
            goto out;
        }
        if (js->n > G4_MAX_DIMS) {
            g4_fail(err, "%s: tensor %s has %d dims (at most %d supported)", path, name, js->n, G4_MAX_DIMS);
            goto out;
        }
        uint64_t dims[G4_MAX_DIMS], nelem = 1;
        int overflow = 0;
        for (int d = 0; d < js->n; d++) {
            if (json_uint(&js->kids[d], &dims[d])) {
                g4_fail(err, "%s: tensor %s: shape entry %d is not a non-negative integer", path, name, d);
                goto out;
            }
            if (dims[d] > (uint64_t)INT64_MAX) overflow = 1;
            else if (dims[d] && nelem > UINT64_MAX / dims[d]) overflow = 1;
            else nelem *= dims[d];
        }
        if (overflow || nelem > UINT64_MAX / esize) {
            g4_fail(err, "%s: tensor %s: shape is too large", path, name); goto out;
        }
        uint64_t nbytes = nelem * esize, beg, end;
        if (json_uint(&jo->kids[0], &beg) || json_uint(&jo->kids[1], &end)) {
            g4_fail(err, "%s: tensor %s: data_offsets are not non-negative integers", path, name); goto out;
        }
        if (beg > end || end > dsize) {
            g4_fail(err, "%s: tensor %s: data_offsets [%llu, %llu] outside the data section of %llu bytes",
                    path, name, (unsigned long long)beg, (unsigned long long)end, (unsigned long long)dsize);
            goto out;
        }
        if (end - beg != nbytes) {
            g4_fail(err, "%s: tensor %s: shape needs %llu bytes of %s but data_offsets span %llu",
                    path, name, (unsigned long long)nbytes, jd->str, (unsigned long long)(end - beg));
            goto out;
        }
        if ((8 + hlen + beg) % esize) {
            g4_fail(err, "%s: tensor %s: data at file offset %llu is not aligned to its %zu-byte elements",
                    path, name, (unsigned long long)(8 + hlen + beg), esize);
            goto out;
        }
        memcpy(t.name, name, strlen(name) + 1);
        /* PyTorch order [d0 .. d_{n-1}] (last is contiguous) -> ggml order ne[0] = d_{n-1} */
        t.n_dims = js->n ? js->n : 1;
        for (int d = 0; d < G4_MAX_DIMS; d++) t.ne[d] = 1;
        for (int d = 0; d < js->n; d++) t.ne[d] = (int64_t)dims[js->n - 1 - d];
        t.data = data + beg;
        t.nbytes = (size_t)nbytes;
        if (add_tensor(b, fi, &t, err, path)) goto out;
    }
    rc = 0;
out:
    g4_json_free(h);
    return rc;
}

/* map one file and read its header */
static int add_file(st_build *b, const char *path, g4_err *err)
{
    g4_st *s = b->s;
    if (strlen(path) >= sizeof s->files[0].path) return g4_fail(err, "%s: path too long", path);
    if (s->n_files == b->cap_files) {
        int cap = b->cap_files ? b->cap_files * 2 : 4;
        void *nf = realloc(s->files, (size_t)cap * sizeof s->files[0]);
        if (!nf) return g4_fail(err, "%s: out of memory", path);
        s->files = nf;
        b->cap_files = cap;
    }
    int fi = s->n_files;
    if (g4_map_file(path, &s->files[fi].map, &s->files[fi].size, err)) return -1;
    strcpy(s->files[fi].path, path);
    s->n_files++;
    return parse_header(b, fi, err);
}

typedef struct name_idx { const char *name; int idx; } name_idx;

static int cmp_name_idx(const void *a, const void *b)
{
    const name_idx *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sort the names (kept in b->sorted for lookups) and reject a name that occurs twice. */
static int check_duplicates(st_build *b, g4_err *err)
{
    g4_st *s = b->s;
    if (s->n_tensors == 0) return 0;
    b->sorted = malloc((size_t)s->n_tensors * sizeof *b->sorted);
    if (!b->sorted) return g4_fail(err, "%s: out of memory", s->files[0].path);
    for (int k = 0; k < s->n_tensors; k++) { b->sorted[k].name = s->tensors[k].name; b->sorted[k].idx = k; }
    qsort(b->sorted, (size_t)s->n_tensors, sizeof *b->sorted, cmp_name_idx);
    for (int k = 1; k < s->n_tensors; k++) {
        if (strcmp(b->sorted[k - 1].name, b->sorted[k].name) == 0) {
            int fa = b->file_of[b->sorted[k - 1].idx], fc = b->file_of[b->sorted[k].idx];  /* fa <= fc */
            if (fa == fc) return g4_fail(err, "%s: tensor %s appears twice in the header", s->files[fa].path,
                                         b->sorted[k].name);
            return g4_fail(err, "%s: tensor %s is also in %s", s->files[fc].path, b->sorted[k].name,
                           s->files[fa].path);
        }
    }
    return 0;
}

/* index of tensor `name` after check_duplicates, -1 if absent */
static int find_sorted(const st_build *b, const char *name)
{
    int lo = 0, hi = b->s->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(b->sorted[mid].name, name);
        if (c == 0) return b->sorted[mid].idx;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int join(char *out, size_t cap, const char *dir, const char *name, g4_err *err)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return g4_fail(err, "%s/%s: path too long", dir, name);
    return 0;
}

/* model.safetensors.index.json: open every shard of the weight_map */
static int open_index(st_build *b, const char *ipath, g4_err *err)
{
    const uint8_t *map; size_t size;
    if (g4_map_file(ipath, &map, &size, err)) return -1;
    g4_err jerr = {{0}};
    g4_json *j = g4_json_parse((const char *)map, size, &jerr);
    g4_unmap_file(map, size);
    if (!j) return g4_fail(err, "%s: %s", ipath, jerr.msg);
    int rc = -1;
    char dir[256], full[256];
    const g4_json *wm = g4_json_get(j, "weight_map");
    if (!wm || wm->type != G4_JOBJ) { g4_fail(err, "%s: no \"weight_map\" object", ipath); goto out; }
    if (wm->n == 0) { g4_fail(err, "%s: \"weight_map\" is empty", ipath); goto out; }
    /* folder of the index */
    if (strlen(ipath) >= sizeof dir) { g4_fail(err, "%s: path too long", ipath); goto out; }
    strcpy(dir, ipath);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    for (int k = 0; k < wm->n; k++) {
        const g4_json *v = &wm->kids[k];
        if (v->type != G4_JSTR || !v->str[0] || v->len != strlen(v->str)) {
            g4_fail(err, "%s: weight_map entry %s is not a file name", ipath, v->key); goto out;
        }
        if (v->str[0] == '/') {
            g4_fail(err, "%s: weight_map entry %s: shard path %s must be relative", ipath, v->key, v->str); goto out;
        }
        /* open each distinct shard once, in order of first mention */
        int seen = 0;
        for (int m = 0; m < k && !seen; m++) seen = strcmp(wm->kids[m].str, v->str) == 0;
        if (seen) continue;
        if (join(full, sizeof full, dir, v->str, err)) goto out;
        if (add_file(b, full, err)) {
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof err->msg - l, " (shard listed in %s)", ipath);
            goto out;
        }
    }
    if (check_duplicates(b, err)) goto out;
    /* every weight_map entry must be a tensor of the named shard */
    for (int k = 0; k < wm->n; k++) {
        const g4_json *v = &wm->kids[k];
        int found = find_sorted(b, v->key);
        if (join(full, sizeof full, dir, v->str, err)) goto out;
        if (found < 0) {
            g4_fail(err, "%s: weight_map lists tensor %s in %s, but that file has no such tensor", ipath,
                    v->key, v->str);
            goto out;
        }
        if (strcmp(b->s->files[b->file_of[found]].path, full) != 0) {
            g4_fail(err, "%s: weight_map lists tensor %s in %s, but it is in %s", ipath, v->key, v->str,
                    b->s->files[b->file_of[found]].path);
            goto out;
        }
    }
    rc = 0;
out:
    g4_json_free(j);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* a folder: its index, else model.safetensors, else every *.safetensors in it (sorted) */
static int open_folder(st_build *b, const char *dpath, g4_err *err)
{
    char full[256];
    struct stat st;
    if (join(full, sizeof full, dpath, "model.safetensors.index.json", err)) return -1;
    if (stat(full, &st) == 0) return open_index(b, full, err);
    if (join(full, sizeof full, dpath, "model.safetensors", err)) return -1;
    if (stat(full, &st) == 0) return add_file(b, full, err);
    DIR *d = opendir(dpath);
    if (!d) return g4_fail(err, "%s: cannot open folder: %s", dpath, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0, rc = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!ends_with(de->d_name, ".safetensors") || de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) { g4_fail(err, "%s: out of memory", dpath); goto out; }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) { g4_fail(err, "%s: out of memory", dpath); goto out; }
        n++;
    }
    if (n == 0) {
        g4_fail(err, "%s: no model.safetensors.index.json or *.safetensors file in this folder", dpath);
        goto out;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int k = 0; k < n; k++) {
        if (join(full, sizeof full, dpath, names[k], err) || add_file(b, full, err)) goto out;
    }
    rc = check_duplicates(b, err);
out:
    closedir(d);
    for (int k = 0; k < n; k++) free(names[k]);
    free(names);
    return rc;
}

g4_st *g4_st_open(const char *path, g4_err *err)
{
    st_build b;
    memset(&b, 0, sizeof b);
    b.s = calloc(1, sizeof *b.s);
    if (!b.s) { g4_fail(err, "%s: out of memory", path); return NULL; }
    struct stat st;
    int rc;
    if (stat(path, &st) != 0) rc = g4_fail(err, "%s: cannot open: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = open_folder(&b, path, err);
    else if (ends_with(path, ".json")) rc = open_index(&b, path, err);
    else {
        rc = add_file(&b, path, err);
        if (!rc) rc = check_duplicates(&b, err);
    }
    free(b.file_of);
    free(b.sorted);
    if (rc) { g4_st_close(b.s); return NULL; }
    return b.s;
}

void g4_st_close(g4_st *s)
{
    if (!s) return;
    for (int k = 0; k < s->n_files; k++) g4_unmap_file(s->files[k].map, s->files[k].size);
    free(s->files);
    free(s->tensors);
    free(s);
}

const g4_tensor *g4_st_tensor(const g4_st *s, const char *name)
{
    if (!s) return NULL;
    for (int k = 0; k < s->n_tensors; k++)
        if (strcmp(s->tensors[k].name, name) == 0) return &s->tensors[k];
    return NULL;
}

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct { char *p; size_t n, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->n + n + 1 > cap) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = 1; return; }
        b->p = np; b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; sb_put(b, e, 2); }
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); sb_put(b, e, 6); }
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

/* Writes tensors in the given order; dtype from each tensor's type (f32/f16/bf16); the shape is
 * written in PyTorch order (ne reversed); a {"format": "pt"} __metadata__ entry is added. */
int g4_st_write(const char *path, const g4_tensor *tensors, int n, g4_err *err)
{
    sbuf h = {0};
    char tmp[128];
    uint64_t off = 0;
    int rc = -1;
    FILE *f = NULL;
    if (n < 0) return g4_fail(err, "%s: negative tensor count", path);
    sb_str(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int k = 0; k < n; k++) {
        const g4_tensor *t = &tensors[k];
        size_t esize;
        const char *dt = st_dtype_name(t->type, &esize);
        if (!dt) { g4_fail(err, "%s: tensor %s: only f32, f16 and bf16 tensors can be written", path, t->name); goto out; }
        if (t->n_dims < 1 || t->n_dims > G4_MAX_DIMS) {
            g4_fail(err, "%s: tensor %s: n_dims %d out of range", path, t->name, t->n_dims); goto out;
        }
        if (memchr(t->name, 0, sizeof t->name) == NULL || !t->name[0]) {
            g4_fail(err, "%s: tensor %d has no valid name", path, k); goto out;
        }
        for (int m = 0; m < k; m++)
            if (strcmp(tensors[m].name, t->name) == 0) { g4_fail(err, "%s: tensor %s given twice", path, t->name); goto out; }
        uint64_t nelem = 1;
        for (int d = 0; d < G4_MAX_DIMS; d++) {
            if (t->ne[d] < 0 || (d >= t->n_dims && t->ne[d] != 1)) {
                g4_fail(err, "%s: tensor %s: bad shape", path, t->name); goto out;
            }
            if (t->ne[d] && nelem > UINT64_MAX / 8 / (uint64_t)t->ne[d]) {
                g4_fail(err, "%s: tensor %s: shape is too large", path, t->name); goto out;
            }
            nelem *= (uint64_t)t->ne[d];
        }
        if (nelem * esize != t->nbytes || (t->nbytes && !t->data)) {
            g4_fail(err, "%s: tensor %s: %zu bytes given, shape needs %llu", path, t->name, t->nbytes,
                    (unsigned long long)(nelem * esize));
            goto out;
        }
        sb_str(&h, ",");
        sb_json_string(&h, t->name);
        snprintf(tmp, sizeof tmp, ":{\"dtype\":\"%s\",\"shape\":[", dt);
        sb_str(&h, tmp);
        for (int d = t->n_dims - 1; d >= 0; d--) {
            snprintf(tmp, sizeof tmp, "%s%lld", d == t->n_dims - 1 ? "" : ",", (long long)t->ne[d]);
            sb_str(&h, tmp);
        }
        snprintf(tmp, sizeof tmp, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + t->nbytes));
        sb_str(&h, tmp);
        off += t->nbytes;
    }
    sb_str(&h, "}");
    while (h.n % 8) sb_str(&h, " ");     /* data starts 8-aligned, as the Python package does */
    if (h.oom) { g4_fail(err, "%s: out of memory", path); goto out; }
    f = fopen(path, "wb");
    if (!f) { g4_fail(err, "%s: cannot create: %s", path, strerror(errno)); goto out; }
    uint8_t len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (uint8_t)((uint64_t)h.n >> (8 * k));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.p, 1, h.n, f) == h.n;
    for (int k = 0; k < n && ok; k++)
        if (tensors[k].nbytes) ok = fwrite(tensors[k].data, 1, tensors[k].nbytes, f) == tensors[k].nbytes;
    if (fclose(f) != 0) ok = 0;
    f = NULL;
    if (!ok) { g4_fail(err, "%s: write failed: %s", path, strerror(errno)); unlink(path); goto out; }
    rc = 0;
out:
    free(h.p);
    return rc;
}

/* gguf.c - GGUF model files: a validating reader on mmap and a streaming writer.
 *
 * File layout (GGUF v2 and v3, little-endian; v3 only added big-endian files, which we reject):
 *     "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *     n_kv     x { string key, u32 value_type, value }
 *     n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *     zero padding to `alignment` (general.alignment, default 32)   <- data_offset
 *     tensor data: tensor i starts at data_offset + offset_i (a multiple of alignment)
 *   string = u64 length + bytes (no NUL); value = a scalar of its type, a string, or an array:
 *   u32 element type + u64 count + elements (elements may be strings, or arrays again).
 *
 * Reader (g4_gguf_open): maps the file read-only (g4_map_file) and checks every count, length,
 * offset and size against the file size before it is used, so a truncated or corrupt file gives
 * one error line "<path>: <problem>" and NULL, never a crash or an oversized allocation.
 *   outputs: g4_gguf with kv[n_kv] (values point into the map; string arrays and arrays of
 *   arrays are decoded into small tables), tensors[n_tensors] (g4_tensor views, ne in ggml order,
 *   ne[0] = row length, unused dims 1, data pointing into the map).
 *   Rejected: bad magic, version other than 2/3, counts the file cannot hold, strings/arrays past
 *   the end, unknown value types, arrays nested deeper than MAX_DEPTH, duplicate keys,
 *   general.alignment not a non-zero power of two, n_dims outside 1..4, ne < 1, element count
 *   overflowing int64, ne[0] not a multiple of the type's block, tensor types g4 cannot
 *   dequantize, names of 96+ bytes or with NUL, duplicate names, misaligned offsets, data past
 *   the end of the file. Tensors may overlap (nothing in the format forbids it).
 *
 * Writer (g4_gguf_write): v3, alignment 32, u64 counts, metadata in the order added, tensors in
 * the order added, each tensor's data padded to 32 bytes. Tensors come from memory or from a
 * row callback (fp32 rows converted with g4_quant_row, one row at a time), so the writer holds
 * only the header and one row: a 12B model is streamed. It writes "<path>.tmp", flushes and
 * fsyncs it, then renames it to <path>; any write error (disk full ...) is reported and the
 * temp file removed.
 *
 * Spec: section 5.2 (GGUF text model) says what the model files contain; the container format
 * itself is ggml's GGUF (v2/v3), which this file follows.
 */
#include "g4.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEPTH 8            /* arrays of arrays deeper than this are rejected */
#define NAME_CAP 96            /* sizeof(g4_tensor.name) */

/* ------------------------------------------------------------------------------------------ */
/* little-endian reads from the map                                                            */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p)
{ return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24); }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

/* bytes of one element of a scalar value type; 0 for string / array / unknown */
static size_t vtype_size(uint32_t t)
{
    switch (t) {
    case G4_GGUF_U8: case G4_GGUF_I8: case G4_GGUF_BOOL: return 1;
    case G4_GGUF_U16: case G4_GGUF_I16: return 2;
    case G4_GGUF_U32: case G4_GGUF_I32: case G4_GGUF_F32: return 4;
    case G4_GGUF_U64: case G4_GGUF_I64: case G4_GGUF_F64: return 8;
    default: return 0;
    }
}

const char *g4_gguf_vtype_name(g4_gguf_vtype t)
{
    static const char *names[] = { "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                   "string", "array", "u64", "i64", "f64" };
    return ((unsigned)t <= G4_GGUF_F64) ? names[t] : "unknown";
}

/* decode one scalar at p (type t, vtype_size(t) bytes) into v: ints widened, floats to double */
static void decode_scalar(uint32_t t, const uint8_t *p, g4_gguf_value *v)
{
    uint32_t u32; float f32; uint64_t u64; double f64;
    switch (t) {
    case G4_GGUF_U8: case G4_GGUF_BOOL: v->v.u = p[0]; break;
    case G4_GGUF_I8: v->v.i = (int8_t)p[0]; break;
    case G4_GGUF_U16: v->v.u = le16(p); break;
    case G4_GGUF_I16: v->v.i = (int16_t)le16(p); break;
    case G4_GGUF_U32: v->v.u = le32(p); break;
    case G4_GGUF_I32: v->v.i = (int32_t)le32(p); break;
    case G4_GGUF_U64: v->v.u = le64(p); break;
    case G4_GGUF_I64: v->v.i = (int64_t)le64(p); break;
    case G4_GGUF_F32: u32 = le32(p); memcpy(&f32, &u32, 4); v->v.f = f32; break;
    case G4_GGUF_F64: u64 = le64(p); memcpy(&f64, &u64, 8); v->v.f = f64; break;
    default: break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* reader                                                                                      */

typedef struct {
    const uint8_t *base;
    uint64_t size, pos;
    const char *path;
    g4_err *err;
    char what[160];            /* what is being parsed, for messages: "key 'general.name'" */
} cur;

/* a printable, one-line, bounded copy of a string from the file */
static void printable(char *out, size_t cap, const char *s, uint64_t len)
{
    size_t o = 0;
    uint64_t i = 0;
    for (; i < len && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    if (i < len) { out[o++] = '.'; out[o++] = '.'; out[o++] = '.'; }   /* truncated */
    out[o] = 0;
}

static int need(cur *c, uint64_t n, const char *item)
{
    if (n > c->size - c->pos)
        return g4_fail(c->err, "%s: truncated file: %s%s%s at offset %" PRIu64 " needs %" PRIu64
                       " bytes, only %" PRIu64 " left", c->path, c->what, c->what[0] ? ": " : "",
                       item, c->pos, n, c->size - c->pos);
    return 0;
}

static int get_u32(cur *c, uint32_t *v, const char *item)
{
    if (need(c, 4, item)) return -1;
    *v = le32(c->base + c->pos); c->pos += 4;
    return 0;
}

static int get_u64(cur *c, uint64_t *v, const char *item)
{
    if (need(c, 8, item)) return -1;
    *v = le64(c->base + c->pos); c->pos += 8;
    return 0;
}

static int get_str(cur *c, g4_str *s, const char *item)
{
    uint64_t len;
    if (get_u64(c, &len, item)) return -1;
    if (len > c->size - c->pos)
        return g4_fail(c->err, "%s: %s%s%s length %" PRIu64 " at offset %" PRIu64
                       " runs past the end of the file (%" PRIu64 " bytes)", c->path, c->what,
                       c->what[0] ? ": " : "", item, len, c->pos - 8, c->size);
    s->len = len;
    s->s = (const char *)(c->base + c->pos);
    c->pos += len;
    return 0;
}

static void free_value(g4_gguf_value *v)
{
    if (v->type != G4_GGUF_ARRAY) return;
    if (v->arr_nested) {
        for (uint64_t i = 0; i < v->arr_n; i++) free_value(&v->arr_nested[i]);
        free(v->arr_nested);
        v->arr_nested = NULL;
    }
    free((void *)v->arr_str);
    v->arr_str = NULL;
}

static int parse_array_body(cur *c, g4_gguf_value *v, int depth);

/* a value of type t at the cursor */
static int parse_value(cur *c, uint32_t t, g4_gguf_value *v, int depth)
{
    v->type = (g4_gguf_vtype)t;
    if (t == G4_GGUF_STRING) return get_str(c, &v->v.str, "string");
    if (t == G4_GGUF_ARRAY) return parse_array_body(c, v, depth);
    size_t es = vtype_size(t);
    if (es == 0)
        return g4_fail(c->err, "%s: %s: unknown value type %" PRIu32 " at offset %" PRIu64,
                       c->path, c->what, t, c->pos - 4);
    if (need(c, es, g4_gguf_vtype_name((g4_gguf_vtype)t))) return -1;
    decode_scalar(t, c->base + c->pos, v);
    c->pos += es;
    return 0;
}

/* u32 element type, u64 count, elements; v->type is already G4_GGUF_ARRAY */
static int parse_array_body(cur *c, g4_gguf_value *v, int depth)
{
    uint32_t et; uint64_t n;
    v->type = G4_GGUF_ARRAY;
    if (depth >= MAX_DEPTH)
        return g4_fail(c->err, "%s: %s: arrays nested deeper than %d levels", c->path, c->what, MAX_DEPTH);
    if (get_u32(c, &et, "array element type") || get_u64(c, &n, "array count")) return -1;
    if (et > G4_GGUF_F64)
        return g4_fail(c->err, "%s: %s: unknown array element type %" PRIu32 " at offset %" PRIu64,
                       c->path, c->what, et, c->pos - 12);
    v->arr_type = (g4_gguf_vtype)et;
    v->arr_data = c->base + c->pos;
    uint64_t left = c->size - c->pos;
    /* smallest encoding of one element: a scalar's size, 8 for a string, 12 for an array */
    uint64_t min_el = et == G4_GGUF_STRING ? 8 : et == G4_GGUF_ARRAY ? 12 : vtype_size(et);
    if (n > left / min_el)
        return g4_fail(c->err, "%s: %s: array of %" PRIu64 " %s elements at offset %" PRIu64
                       " does not fit in the %" PRIu64 " bytes left in the file", c->path, c->what,
                       n, g4_gguf_vtype_name((g4_gguf_vtype)et), c->pos - 12, left);
    if (et == G4_GGUF_STRING) {
        g4_str *tab = n ? calloc((size_t)n, sizeof *tab) : NULL;
        if (n && !tab) return g4_fail(c->err, "%s: out of memory for a %" PRIu64 "-string array", c->path, n);
        v->arr_str = tab;
        v->arr_n = n;
        for (uint64_t i = 0; i < n; i++)
            if (get_str(c, &tab[i], "array string")) return -1;
    } else if (et == G4_GGUF_ARRAY) {
        g4_gguf_value *sub = n ? calloc((size_t)n, sizeof *sub) : NULL;
        if (n && !sub) return g4_fail(c->err, "%s: out of memory for a %" PRIu64 "-array array", c->path, n);
        v->arr_nested = sub;
        v->arr_n = n;
        for (uint64_t i = 0; i < n; i++)
            if (parse_array_body(c, &sub[i], depth + 1)) return -1;
    } else {
        v->arr_n = n;
        c->pos += n * min_el;                 /* n * min_el <= left: checked above */
    }
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const g4_gguf_kv *x = *(const g4_gguf_kv *const *)a, *y = *(const g4_gguf_kv *const *)b;
    uint64_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int r = n ? memcmp(x->key.s, y->key.s, (size_t)n) : 0;
    if (r) return r;
    return (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

static int cmp_tname(const void *a, const void *b)
{
    return strcmp((*(const g4_tensor *const *)a)->name, (*(const g4_tensor *const *)b)->name);
}

/* reject duplicate keys and duplicate tensor names (sort pointers, compare neighbours) */
static int check_duplicates(g4_gguf *g, const char *path, g4_err *err)
{
    int rc = 0;
    if (g->n_kv > 1) {
        const g4_gguf_kv **p = malloc((size_t)g->n_kv * sizeof *p);
        if (!p) return g4_fail(err, "%s: out of memory", path);
        for (uint64_t i = 0; i < g->n_kv; i++) p[i] = &g->kv[i];
        qsort(p, (size_t)g->n_kv, sizeof *p, cmp_key);
        for (uint64_t i = 1; i < g->n_kv && !rc; i++)
            if (cmp_key(&p[i - 1], &p[i]) == 0) {
                char k[80];
                printable(k, sizeof k, p[i]->key.s, p[i]->key.len);
                rc = g4_fail(err, "%s: duplicate metadata key '%s'", path, k);
            }
        free(p);
    }
    if (!rc && g->n_tensors > 1) {
        const g4_tensor **p = malloc((size_t)g->n_tensors * sizeof *p);
        if (!p) return g4_fail(err, "%s: out of memory", path);
        for (uint64_t i = 0; i < g->n_tensors; i++) p[i] = &g->tensors[i];
        qsort(p, (size_t)g->n_tensors, sizeof *p, cmp_tname);
        for (uint64_t i = 1; i < g->n_tensors && !rc; i++)
            if (strcmp(p[i - 1]->name, p[i]->name) == 0) {
                char k[80];
                printable(k, sizeof k, p[i]->name, strlen(p[i]->name));
                rc = g4_fail(err, "%s: duplicate tensor name '%s'", path, k);
            }
        free(p);
    }
    return rc;
}

static int parse(g4_gguf *g, const char *path, g4_err *err)
{
    cur c = { g->map, g->size, 0, path, err, "" };
    uint32_t version;
    uint64_t n_tensors, n_kv;

    if (g->size < 4 || memcmp(g->map, "GGUF", 4) != 0)
        return g4_fail(err, "%s: not a GGUF file (bad magic)", path);
    c.pos = 4;
    if (get_u32(&c, &version, "version")) return -1;
    if (version != 2 && version != 3) {
        if (version == 1) return g4_fail(err, "%s: GGUF version 1 is not supported (only 2 and 3)", path);
        if (version != 0 && (version & 0xffff) == 0)
            return g4_fail(err, "%s: unsupported GGUF version %" PRIu32 " (a big-endian file?)", path, version);
        return g4_fail(err, "%s: unsupported GGUF version %" PRIu32 " (only 2 and 3)", path, version);
    }
    g->version = version;
    if (get_u64(&c, &n_tensors, "tensor count") || get_u64(&c, &n_kv, "metadata count")) return -1;
    /* each key/value takes at least 13 bytes (8 length + 4 type + 1), each tensor info 32 */
    uint64_t left = c.size - c.pos;
    if (n_kv > left / 13)
        return g4_fail(err, "%s: metadata count %" PRIu64 " is more than the file can hold", path, n_kv);
    if (n_tensors > left / 32)
        return g4_fail(err, "%s: tensor count %" PRIu64 " is more than the file can hold", path, n_tensors);

    /* metadata */
    g->kv = n_kv ? calloc((size_t)n_kv, sizeof *g->kv) : NULL;
    if (n_kv && !g->kv) return g4_fail(err, "%s: out of memory for %" PRIu64 " keys", path, n_kv);
    g->n_kv = n_kv;
    g->alignment = 32;
    for (uint64_t i = 0; i < n_kv; i++) {
        g4_gguf_kv *kv = &g->kv[i];
        uint32_t t;
        snprintf(c.what, sizeof c.what, "metadata entry %" PRIu64, i);
        if (get_str(&c, &kv->key, "key")) return -1;
        char k[80];
        printable(k, sizeof k, kv->key.s, kv->key.len);
        snprintf(c.what, sizeof c.what, "key '%s'", k);
        if (get_u32(&c, &t, "value type")) return -1;
        if (t > G4_GGUF_F64)
            return g4_fail(err, "%s: key '%s': unknown value type %" PRIu32 " at offset %" PRIu64,
                           path, k, t, c.pos - 4);
        if (parse_value(&c, t, &kv->val, 0)) return -1;
    }
    c.what[0] = 0;

    const g4_gguf_value *al = g4_gguf_get(g, "general.alignment");
    if (al) {
        int64_t a;
        if (g4_gguf_get_int(g, "general.alignment", &a) != 0)
            return g4_fail(err, "%s: general.alignment (type %s) is not a usable integer", path,
                           g4_gguf_vtype_name(al->type));
        if (a <= 0 || (a & (a - 1)) != 0)
            return g4_fail(err, "%s: general.alignment %" PRId64 " is not a non-zero power of two", path, a);
        g->alignment = (uint64_t)a;
    }

    /* tensor infos */
    g->tensors = n_tensors ? calloc((size_t)n_tensors, sizeof *g->tensors) : NULL;
    if (n_tensors && !g->tensors) return g4_fail(err, "%s: out of memory for %" PRIu64 " tensors", path, n_tensors);
    g->n_tensors = n_tensors;
    uint64_t *offs = n_tensors ? calloc((size_t)n_tensors, sizeof *offs) : NULL;
    if (n_tensors && !offs) return g4_fail(err, "%s: out of memory", path);
    int rc = 0;
    for (uint64_t i = 0; i < n_tensors && !rc; i++) {
        g4_tensor *T = &g->tensors[i];
        g4_str name;
        uint32_t nd, type;
        char nm[80];
        snprintf(c.what, sizeof c.what, "tensor info %" PRIu64, i);
        if ((rc = get_str(&c, &name, "name"))) break;
        printable(nm, sizeof nm, name.s, name.len);
        if (name.len >= NAME_CAP) { rc = g4_fail(err, "%s: tensor name '%s' is %" PRIu64 " bytes (limit %d)", path, nm, name.len, NAME_CAP - 1); break; }
        if (memchr(name.s, 0, (size_t)name.len)) { rc = g4_fail(err, "%s: tensor name '%s' contains a NUL byte", path, nm); break; }
        memcpy(T->name, name.s, (size_t)name.len);
        T->name[name.len] = 0;
        snprintf(c.what, sizeof c.what, "tensor '%s'", nm);
        if ((rc = get_u32(&c, &nd, "n_dims"))) break;
        if (nd < 1 || nd > G4_MAX_DIMS) { rc = g4_fail(err, "%s: tensor '%s': n_dims %" PRIu32 " is not in 1..%d", path, nm, nd, G4_MAX_DIMS); break; }
        T->n_dims = (int)nd;
        for (int d = 0; d < G4_MAX_DIMS; d++) T->ne[d] = 1;
        int64_t nelem = 1;
        for (uint32_t d = 0; d < nd && !rc; d++) {
            uint64_t ne;
            if ((rc = get_u64(&c, &ne, "ne"))) break;
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                rc = g4_fail(err, "%s: tensor '%s': ne[%" PRIu32 "] = %" PRId64 " is not positive", path, nm, d, (int64_t)ne);
            else if ((int64_t)ne > INT64_MAX / nelem)
                rc = g4_fail(err, "%s: tensor '%s': element count overflows (ne[%" PRIu32 "] = %" PRIu64 ")", path, nm, d, ne);
            else { T->ne[d] = (int64_t)ne; nelem *= (int64_t)ne; }
        }
        if (rc) break;
        if ((rc = get_u32(&c, &type, "type"))) break;
        if (!g4_type_supported((int)type)) { rc = g4_fail(err, "%s: unsupported tensor type %" PRIu32 " (%s)", path, type, nm); break; }
        T->type = (g4_type)type;
        if ((rc = get_u64(&c, &offs[i], "offset"))) break;
        int64_t bs = g4_type_block(T->type);
        if (T->ne[0] % bs != 0) { rc = g4_fail(err, "%s: tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block (%" PRId64 ")", path, nm, T->ne[0], g4_type_name(T->type), bs); break; }
        /* bytes = (ne0 / block) * block_bytes * (nelem / ne0), overflow-checked */
        uint64_t nblk = (uint64_t)(T->ne[0] / bs), bb = g4_type_block_bytes(T->type);
        uint64_t nrows = (uint64_t)(nelem / T->ne[0]);
        if (nblk > UINT64_MAX / bb || nrows > UINT64_MAX / (nblk * bb)) {
            rc = g4_fail(err, "%s: tensor '%s': byte size overflows", path, nm);
            break;
        }
        uint64_t rowb = nblk * bb;
        T->nbytes = (size_t)(rowb * nrows);
        if ((uint64_t)T->nbytes != rowb * nrows || rowb * nrows > g->size) {
            rc = g4_fail(err, "%s: tensor '%s': %" PRIu64 " bytes of data is more than the file size %" PRIu64, path, nm, rowb * nrows, (uint64_t)g->size);
            break;
        }
    }
    c.what[0] = 0;
    if (!rc) {
        /* data section: header end rounded up to the alignment */
        uint64_t end = c.pos, a = g->alignment;
        uint64_t pad = (a - end % a) % a;
        g->data_offset = end + pad;      /* end <= size and pad < a <= INT64_MAX: no overflow */
        for (uint64_t i = 0; i < n_tensors && !rc; i++) {
            g4_tensor *T = &g->tensors[i];
            char nm[80];
            printable(nm, sizeof nm, T->name, strlen(T->name));
            if (offs[i] % a != 0)
                rc = g4_fail(err, "%s: tensor '%s': data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, path, nm, offs[i], a);
            else if (g->data_offset > g->size || offs[i] > g->size - g->data_offset ||
                     (uint64_t)T->nbytes > g->size - g->data_offset - offs[i])
                rc = g4_fail(err, "%s: tensor '%s': %" PRIu64 " bytes at offset %" PRIu64 " of the data section (which starts at %"
                             PRIu64 ") run past the end of the file (%" PRIu64 " bytes)",
                             path, nm, (uint64_t)T->nbytes, offs[i], g->data_offset, (uint64_t)g->size);
            else
                T->data = g->map + g->data_offset + offs[i];
        }
    }
    free(offs);
    if (rc) return rc;
    return check_duplicates(g, path, err);
}

g4_gguf *g4_gguf_open(const char *path, g4_err *err)
{
    g4_gguf *g = calloc(1, sizeof *g);
    if (!g) { g4_fail(err, "%s: out of memory", path); return NULL; }
    snprintf(g->path, sizeof g->path, "%s", path);
    if (g4_map_file(path, &g->map, &g->size, err)) { free(g); return NULL; }
    if (parse(g, path, err)) { g4_gguf_close(g); return NULL; }
    return g;
}

void g4_gguf_close(g4_gguf *g)
{
    if (!g) return;
    for (uint64_t i = 0; i < g->n_kv && g->kv; i++) free_value(&g->kv[i].val);
    free(g->kv);
    free(g->tensors);
    g4_unmap_file(g->map, g->size);
    free(g);
}

const g4_gguf_value *g4_gguf_get(const g4_gguf *g, const char *key)
{
    size_t n = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key.len == n && memcmp(g->kv[i].key.s, key, n) == 0) return &g->kv[i].val;
    return NULL;
}

const g4_tensor *g4_gguf_tensor(const g4_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

int g4_gguf_get_int(const g4_gguf *g, const char *key, int64_t *out)
{
    const g4_gguf_value *v = g4_gguf_get(g, key);
    if (!v) return -1;
    switch (v->type) {
    case G4_GGUF_U8: case G4_GGUF_U16: case G4_GGUF_U32: case G4_GGUF_U64: case G4_GGUF_BOOL:
        if (v->v.u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)v->v.u; return 0;
    case G4_GGUF_I8: case G4_GGUF_I16: case G4_GGUF_I32: case G4_GGUF_I64:
        *out = v->v.i; return 0;
    default: return -1;
    }
}

int g4_gguf_get_float(const g4_gguf *g, const char *key, double *out)
{
    const g4_gguf_value *v = g4_gguf_get(g, key);
    if (!v) return -1;
    int64_t i;
    if (v->type == G4_GGUF_F32 || v->type == G4_GGUF_F64) { *out = v->v.f; return 0; }
    if (v->type != G4_GGUF_BOOL && g4_gguf_get_int(g, key, &i) == 0) { *out = (double)i; return 0; }
    return -1;
}

int g4_gguf_get_str(const g4_gguf *g, const char *key, char *out, size_t cap)
{
    const g4_gguf_value *v = g4_gguf_get(g, key);
    if (!v || v->type != G4_GGUF_STRING || cap == 0 || v->v.str.len >= cap) {
        if (cap) out[0] = 0;
        return -1;
    }
    memcpy(out, v->v.str.s, (size_t)v->v.str.len);
    out[v->v.str.len] = 0;
    return 0;
}

int64_t g4_gguf_arr_int(const g4_gguf_value *v, uint64_t i)
{
    if (!v || v->type != G4_GGUF_ARRAY || i >= v->arr_n) return 0;
    size_t es = vtype_size(v->arr_type);
    if (es == 0) return 0;
    g4_gguf_value e;
    decode_scalar(v->arr_type, v->arr_data + i * es, &e);
    switch (v->arr_type) {
    case G4_GGUF_F32: case G4_GGUF_F64: return (int64_t)e.v.f;
    case G4_GGUF_I8: case G4_GGUF_I16: case G4_GGUF_I32: case G4_GGUF_I64: return e.v.i;
    default: return (int64_t)e.v.u;
    }
}

double g4_gguf_arr_float(const g4_gguf_value *v, uint64_t i)
{
    if (!v || v->type != G4_GGUF_ARRAY || i >= v->arr_n) return 0;
    size_t es = vtype_size(v->arr_type);
    if (es == 0) return 0;
    g4_gguf_value e;
    decode_scalar(v->arr_type, v->arr_data + i * es, &e);
    switch (v->arr_type) {
    case G4_GGUF_F32: case G4_GGUF_F64: return e.v.f;
    case G4_GGUF_I8: case G4_GGUF_I16: case G4_GGUF_I32: case G4_GGUF_I64: return (double)e.v.i;
    default: return (double)e.v.u;
    }
}

g4_str g4_gguf_arr_str(const g4_gguf_value *v, uint64_t i)
{
    g4_str none = { 0, NULL };
    if (!v || v->type != G4_GGUF_ARRAY || v->arr_type != G4_GGUF_STRING || i >= v->arr_n || !v->arr_str)
        return none;
    return v->arr_str[i];
}

/* ------------------------------------------------------------------------------------------ */
/* writer                                                                                      */

typedef struct { uint8_t *p; size_t n, cap; int oom; } buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p; b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v)
{ uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) }; put(b, x, 4); }
static void put_u64(buf *b, uint64_t v) { put_u32(b, (uint32_t)v); put_u32(b, (uint32_t)(v >> 32)); }
static void put_str(buf *b, const char *s, size_t n) { put_u64(b, n); put(b, s, n); }

typedef struct {
    char *key;
    uint32_t type;
    buf val;                   /* the value, serialized (without the type) */
} wkv;

typedef struct {
    char name[NAME_CAP];
    g4_type type;
    int n_dims;
    int64_t ne[G4_MAX_DIMS];
    const void *data;          /* either data ... */
    g4_row_fn fn; void *ctx;   /* ... or a row callback */
    uint64_t nbytes, offset;
} wtensor;

struct g4_gguf_writer {
    wkv *kv; size_t n_kv, cap_kv;
    wtensor *t; size_t n_t, cap_t;
    char err[400];             /* first problem seen while adding (reported by g4_gguf_write) */
};

g4_gguf_writer *g4_gguf_writer_new(void) { return calloc(1, sizeof(g4_gguf_writer)); }

void g4_gguf_writer_free(g4_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kv[i].key); free(w->kv[i].val.p); }
    free(w->kv);
    free(w->t);
    free(w);
}

static void wfail(g4_gguf_writer *w, const char *msg, const char *what)
{
    if (w->err[0]) return;
    snprintf(w->err, sizeof w->err, "%s '%.200s'", msg, what ? what : "");
}

/* a new key/value slot (NULL on error, recorded in w->err) */
static wkv *new_kv(g4_gguf_writer *w, const char *key, uint32_t type)
{
    if (!key || !key[0]) { wfail(w, "empty metadata key", ""); return NULL; }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) { wfail(w, "duplicate metadata key", key); return NULL; }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *p = realloc(w->kv, cap * sizeof *p);
        if (!p) { wfail(w, "out of memory adding key", key); return NULL; }
        w->kv = p; w->cap_kv = cap;
    }
    wkv *kv = &w->kv[w->n_kv];
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    if (!kv->key) { wfail(w, "out of memory adding key", key); return NULL; }
    kv->type = type;
    w->n_kv++;
    return kv;
}

static void check_kv(g4_gguf_writer *w, wkv *kv)
{
    if (kv && kv->val.oom) wfail(w, "out of memory adding key", kv->key);
}

void g4_gguf_add_u32(g4_gguf_writer *w, const char *key, uint32_t v)
{ wkv *kv = new_kv(w, key, G4_GGUF_U32); if (kv) { put_u32(&kv->val, v); check_kv(w, kv); } }

void g4_gguf_add_i32(g4_gguf_writer *w, const char *key, int32_t v)
{ wkv *kv = new_kv(w, key, G4_GGUF_I32); if (kv) { put_u32(&kv->val, (uint32_t)v); check_kv(w, kv); } }

void g4_gguf_add_f32(g4_gguf_writer *w, const char *key, float v)
{
    wkv *kv = new_kv(w, key, G4_GGUF_F32);
    uint32_t u; memcpy(&u, &v, 4);
    if (kv) { put_u32(&kv->val, u); check_kv(w, kv); }
}

void g4_gguf_add_bool(g4_gguf_writer *w, const char *key, int v)
{ wkv *kv = new_kv(w, key, G4_GGUF_BOOL); uint8_t b = v ? 1 : 0; if (kv) { put(&kv->val, &b, 1); check_kv(w, kv); } }

void g4_gguf_add_str(g4_gguf_writer *w, const char *key, const char *v)
{
    if (!v) { wfail(w, "NULL string for key", key); return; }
    wkv *kv = new_kv(w, key, G4_GGUF_STRING);
    if (kv) { put_str(&kv->val, v, strlen(v)); check_kv(w, kv); }
}

/* numeric or bool array: data holds n host-order elements of type t (bool: uint8_t 0/1) */
void g4_gguf_add_arr(g4_gguf_writer *w, const char *key, g4_gguf_vtype t, const void *data, uint64_t n)
{
    size_t es = vtype_size(t);
    if (es == 0) { wfail(w, "g4_gguf_add_arr takes numeric or bool elements only; key", key); return; }
    wkv *kv = new_kv(w, key, G4_GGUF_ARRAY);
    if (!kv) return;
    put_u32(&kv->val, (uint32_t)t);
    put_u64(&kv->val, n);
    const uint8_t *p = data;
    for (uint64_t i = 0; i < n; i++, p += es) {
        switch (es) {
        case 1: put(&kv->val, p, 1); break;
        case 2: { uint16_t x; memcpy(&x, p, 2); uint8_t b[2] = { (uint8_t)x, (uint8_t)(x >> 8) }; put(&kv->val, b, 2); break; }
        case 4: { uint32_t x; memcpy(&x, p, 4); put_u32(&kv->val, x); break; }
        default: { uint64_t x; memcpy(&x, p, 8); put_u64(&kv->val, x); break; }
        }
    }
    check_kv(w, kv);
}

void g4_gguf_add_str_arr(g4_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (!v[i]) { wfail(w, "NULL string in the array of key", key); return; }
    wkv *kv = new_kv(w, key, G4_GGUF_ARRAY);
    if (!kv) return;
    put_u32(&kv->val, G4_GGUF_STRING);
    put_u64(&kv->val, n);
    for (uint64_t i = 0; i < n; i++) put_str(&kv->val, v[i], strlen(v[i]));
    check_kv(w, kv);
}

static wtensor *new_tensor(g4_gguf_writer *w, const char *name, g4_type t, int n_dims, const int64_t *ne)
{
    if (!name || !name[0] || strlen(name) >= NAME_CAP) { wfail(w, "tensor name empty or 96+ bytes:", name ? name : ""); return NULL; }
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) { wfail(w, "duplicate tensor name", name); return NULL; }
    if (!g4_type_supported((int)t)) { wfail(w, "unsupported tensor type for tensor", name); return NULL; }
    if (n_dims < 1 || n_dims > G4_MAX_DIMS) { wfail(w, "n_dims not in 1..4 for tensor", name); return NULL; }
    int64_t nelem = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || ne[d] > INT64_MAX / nelem) { wfail(w, "bad shape (ne < 1 or overflow) for tensor", name); return NULL; }
        nelem *= ne[d];
    }
    if (ne[0] % g4_type_block(t) != 0) { wfail(w, "ne[0] not a multiple of the type's block for tensor", name); return NULL; }
    uint64_t nblk = (uint64_t)(ne[0] / g4_type_block(t)), bb = g4_type_block_bytes(t);
    uint64_t nrows = (uint64_t)(nelem / ne[0]);
    if (nblk > UINT64_MAX / 2 / bb || nrows > UINT64_MAX / 2 / (nblk * bb)) { wfail(w, "tensor too large", name); return NULL; }
    uint64_t rowb = nblk * bb;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) { wfail(w, "out of memory adding tensor", name); return NULL; }
        w->t = p; w->cap_t = cap;
    }
    wtensor *T = &w->t[w->n_t++];
    memset(T, 0, sizeof *T);
    snprintf(T->name, sizeof T->name, "%s", name);
    T->type = t;
    T->n_dims = n_dims;
    for (int d = 0; d < G4_MAX_DIMS; d++) T->ne[d] = d < n_dims ? ne[d] : 1;
    T->nbytes = rowb * nrows;
    return T;
}

/* data: the tensor's bytes already in type t (little-endian, as in the file); must stay valid
 * until g4_gguf_write */
void g4_gguf_add_tensor(g4_gguf_writer *w, const char *name, g4_type t, int n_dims,
                        const int64_t *ne, const void *data)
{
    if (!data) { wfail(w, "NULL data for tensor", name); return; }
    wtensor *T = new_tensor(w, name, t, n_dims, ne);
    if (T) T->data = data;
}

void g4_gguf_add_tensor_rows(g4_gguf_writer *w, const char *name, g4_type t, int n_dims,
                             const int64_t *ne, g4_row_fn fn, void *ctx)
{
    if (!fn) { wfail(w, "NULL row function for tensor", name); return; }
    wtensor *T = new_tensor(w, name, t, n_dims, ne);
    if (T) { T->fn = fn; T->ctx = ctx; }
}

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static const uint8_t ZEROS[32];

int g4_gguf_write(g4_gguf_writer *w, const char *path,
                  void (*progress)(void *ctx, uint64_t done, uint64_t total), void *pctx, g4_err *err)
{
    const uint64_t A = 32;
    if (w->err[0]) return g4_fail(err, "%s: %s", path, w->err);
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment") == 0 &&
            !(w->kv[i].type == G4_GGUF_U32 && w->kv[i].val.n == 4 && le32(w->kv[i].val.p) == A))
            return g4_fail(err, "%s: this writer only writes general.alignment = 32 (u32)", path);

    /* header in memory: metadata can be MBs (a vocabulary), never the tensors */
    buf h = { 0 };
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&h, w->kv[i].key, strlen(w->kv[i].key));
        put_u32(&h, w->kv[i].type);
        put(&h, w->kv[i].val.p, w->kv[i].val.n);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *T = &w->t[i];
        put_str(&h, T->name, strlen(T->name));
        put_u32(&h, (uint32_t)T->n_dims);
        for (int d = 0; d < T->n_dims; d++) put_u64(&h, (uint64_t)T->ne[d]);
        put_u32(&h, (uint32_t)T->type);
        put_u64(&h, off);
        T->offset = off;
        off += (T->nbytes + A - 1) / A * A;
    }
    put(&h, ZEROS, (size_t)((A - h.n % A) % A));
    if (h.oom) { free(h.p); return g4_fail(err, "%s: out of memory for the header", path); }
    uint64_t total = h.n + off, done = 0;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) { free(h.p); return g4_fail(err, "%s: out of memory", path); }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(h.p); free(tmp);
        return g4_fail(err, "%s: cannot create %s.tmp: %s", path, path, strerror(e));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);

    int rc = 0;
    float *xrow = NULL; uint8_t *qrow = NULL;
    if (write_all(f, h.p, h.n)) rc = g4_fail(err, "%s: write failed: %s", path, strerror(errno));
    done = h.n;
    free(h.p);
    for (size_t i = 0; i < w->n_t && !rc; i++) {
        wtensor *T = &w->t[i];
        if (T->data) {
            if (write_all(f, T->data, (size_t)T->nbytes))
                rc = g4_fail(err, "%s: write failed in tensor '%s': %s", path, T->name, strerror(errno));
        } else {
            /* rows of ne[0] values: fp32 from the callback, converted to the tensor's type */
            size_t rowb = g4_row_bytes(T->type, T->ne[0]);
            float *x2 = realloc(xrow, (size_t)T->ne[0] * sizeof *xrow);
            if (x2) xrow = x2;
            uint8_t *q2 = x2 ? realloc(qrow, rowb) : NULL;
            if (q2) qrow = q2;
            if (!x2 || !q2) { rc = g4_fail(err, "%s: out of memory for a row of tensor '%s'", path, T->name); break; }
            int64_t nrows = T->ne[1] * T->ne[2] * T->ne[3];
            for (int64_t r = 0; r < nrows && !rc; r++) {
                T->fn(T->ctx, r, xrow);
                g4_quant_row(T->type, xrow, qrow, T->ne[0]);
                if (write_all(f, qrow, rowb))
                    rc = g4_fail(err, "%s: write failed in tensor '%s': %s", path, T->name, strerror(errno));
            }
        }
        size_t pad = (size_t)((A - T->nbytes % A) % A);
        if (!rc && write_all(f, ZEROS, pad))
            rc = g4_fail(err, "%s: write failed: %s", path, strerror(errno));
        done += T->nbytes + pad;
        if (!rc && progress) progress(pctx, done, total);
    }
    free(xrow);
    free(qrow);
    if (!rc && fflush(f) != 0) rc = g4_fail(err, "%s: write failed: %s", path, strerror(errno));
    if (!rc && fsync(fileno(f)) != 0) rc = g4_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && !rc) rc = g4_fail(err, "%s: write failed at close: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = g4_fail(err, "%s: cannot rename %s.tmp to it: %s", path, path, strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

/* test_golden_format.c - the committed golden files and their reader (tests/golden.h).
 *
 * Checks, without any part of the decoder:
 *   - SHA-256 (implemented below, FIPS 180-4) against published test vectors;
 *   - golden/MANIFEST: provenance lines present, format version = G4T_VERSION, and for every
 *     listed file the size and sha256 match; every .g4t in tiny/ on disk is listed;
 *   - every .g4t loads, every f32 value is finite, and the expected tensors are there with the
 *     expected shapes (names: golden/README.md); internal consistency (argmax/greedy agree with
 *     the logits, logits within the soft-cap, logits = 30 tanh(logits_raw / 30), bf16 files hold
 *     only bf16 values, proportional RoPE leaves the non-rotated dims untouched);
 *   - the reader rejects corrupt input with one error line (bad magic, stale version naming the
 *     regeneration command, every truncation of a valid file, bad dtype/dims/names, duplicates,
 *     trailing bytes) and the manifest checker and the finiteness check do fail when they should.
 * The golden directory is $G4_GOLDEN_DIR or "golden" (make test runs from the repo root).
 */
#include "harness.h"
#include "golden.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* SHA-256                                                                                      */
/* ------------------------------------------------------------------------------------------ */
typedef struct { uint32_t h[8]; uint64_t nbytes; unsigned char blk[64]; size_t nblk; } sha256_ctx;

static const uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr32(uint32_t x, int r) { return (x >> r) | (x << (32 - r)); }

static void sha256_init(sha256_ctx *c)
{
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->nbytes = 0; c->nblk = 0;
}

static void sha256_block(sha256_ctx *c, const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr32(w[i - 15], 7) ^ rotr32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr32(w[i - 2], 17) ^ rotr32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    uint32_t e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + SHA_K[i] + w[i];
        uint32_t S0 = rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22);
        uint32_t mj = (a & b) ^ (a & cc) ^ (b & cc);
        uint32_t t2 = S0 + mj;
        h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
    c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha256_update(sha256_ctx *c, const void *data, size_t n)
{
    const unsigned char *p = (const unsigned char *)data;
    c->nbytes += n;
    while (n > 0) {
        size_t take = 64 - c->nblk;
        if (take > n) take = n;
        memcpy(c->blk + c->nblk, p, take);
        c->nblk += take; p += take; n -= take;
        if (c->nblk == 64) { sha256_block(c, c->blk); c->nblk = 0; }
    }
}

static void sha256_hex_final(sha256_ctx *c, char out[65])
{
    uint64_t bits = c->nbytes * 8;
    unsigned char pad = 0x80, zero = 0, len[8];
    sha256_update(c, &pad, 1);
    while (c->nblk != 56) sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", c->h[i]);
    out[64] = 0;
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, n);
    sha256_hex_final(&c, out);
}

/* sha256 and size of a file; 0 ok, -1 if it cannot be read */
static int sha256_file(const char *path, char out[65], uint64_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    sha256_ctx c;
    sha256_init(&c);
    unsigned char buf[65536];
    size_t n;
    uint64_t total = 0;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) { sha256_update(&c, buf, n); total += n; }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) return -1;
    sha256_hex_final(&c, out);
    *size = total;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* MANIFEST                                                                                     */
/* ------------------------------------------------------------------------------------------ */
#define MF_MAX 64
typedef struct { char hex[65]; unsigned long long size; char rel[256]; } mf_entry;
typedef struct {
    int n; mf_entry e[MF_MAX];
    int format;                         /* "format g4t N" */
    int has_python, has_torch, has_transformers, has_command, has_date;
} manifest;

static const char *gdir(void)
{
    const char *d = getenv("G4_GOLDEN_DIR");
    return d && *d ? d : "golden";
}

/* 0 ok; -1 with a message in err */
static int manifest_read(const char *path, manifest *m, char *err, size_t errn)
{
    memset(m, 0, sizeof *m);
    m->format = -1;
    FILE *fp = fopen(path, "r");
    if (!fp) { snprintf(err, errn, "%s: cannot open", path); return -1; }
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        size_t L = strlen(line);
        if (L && line[L - 1] == '\n') line[--L] = 0;
        if (L == 0 || line[0] == '#') continue;
        if (strncmp(line, "sha256 ", 7) == 0) {
            if (m->n >= MF_MAX) { fclose(fp); snprintf(err, errn, "%s: too many entries", path); return -1; }
            mf_entry *e = &m->e[m->n];
            int used = 0;
            if (sscanf(line + 7, "%64s %llu %255s%n", e->hex, &e->size, e->rel, &used) != 3 ||
                strlen(e->hex) != 64 || line[7 + used] != 0) {
                fclose(fp); snprintf(err, errn, "%s:%d: malformed sha256 line", path, lineno); return -1;
            }
            m->n++;
        } else if (strncmp(line, "format g4t ", 11) == 0) {
            m->format = atoi(line + 11);
        } else if (strncmp(line, "python ", 7) == 0) m->has_python = 1;
        else if (strncmp(line, "torch ", 6) == 0) m->has_torch = 1;
        else if (strncmp(line, "transformers ", 13) == 0) m->has_transformers = 1;
        else if (strncmp(line, "command ", 8) == 0) m->has_command = 1;
        else if (strncmp(line, "date ", 5) == 0) m->has_date = 1;
    }
    fclose(fp);
    return 0;
}

/* Checks size and sha256 of every entry under dir; prints each problem; returns the count. */
static int manifest_verify(const char *dir, const manifest *m)
{
    int bad = 0;
    for (int i = 0; i < m->n; i++) {
        char p[1024], hex[65];
        uint64_t size = 0;
        snprintf(p, sizeof p, "%s/%s", dir, m->e[i].rel);
        if (sha256_file(p, hex, &size) != 0) { printf("    %s: cannot read\n", p); bad++; continue; }
        if (size != m->e[i].size) {
            printf("    %s: size %llu, MANIFEST says %llu\n", p, (unsigned long long)size, m->e[i].size); bad++;
        }
        if (strcmp(hex, m->e[i].hex) != 0) {
            printf("    %s: sha256 %s, MANIFEST says %s\n", p, hex, m->e[i].hex); bad++;
        }
    }
    return bad;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers on tensors                                                                           */
/* ------------------------------------------------------------------------------------------ */
static long count_nonfinite(const g4t_tensor *t)
{
    long bad = 0;
    if (t->dtype != G4T_F32) return 0;
    for (uint64_t i = 0; i < t->n; i++) if (!isfinite(t->f32[i])) bad++;
    return bad;
}

static int is_bf16_value(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return (u & 0xffffu) == 0;
}

/* tensor `name` with dtype and exact shape (n_dims values in ...), else NULL + a CHECK failure */
static const g4t_tensor *want(const g4t_file *f, const char *name, uint32_t dtype, int nd, ...)
{
    const g4t_tensor *t = g4t_get(f, name);
    CHECK(t != NULL, "%s: tensor '%s' missing", f->path, name);
    if (!t) return NULL;
    int ok = t->dtype == dtype && (int)t->n_dims == nd;
    va_list ap;
    va_start(ap, nd);
    for (int d = 0; d < nd; d++) {
        uint64_t v = (uint64_t)va_arg(ap, int);
        if (ok && t->dims[d] != v) ok = 0;
    }
    va_end(ap);
    CHECK(ok, "%s: tensor '%s' has dtype %u / n_dims %u / dims[0] %llu, not the expected shape",
          f->path, name, t->dtype, t->n_dims, (unsigned long long)t->dims[0]);
    return ok ? t : NULL;
}

static int argmax_row(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;   /* first maximum, like numpy */
    return b;
}

#define D_MODEL 128
#define VOCAB 512
#define N_LAYERS 6

/* The taps every forward has: tokens, embed, layer_out.l, final_norm, logits, argmax, greedy. */
static void check_forward(const g4t_file *f, const char *pre, int T, int is_bf16)
{
    char nm[128];
    snprintf(nm, sizeof nm, "%stokens", pre);
    const g4t_tensor *tok = want(f, nm, G4T_I32, 1, T);
    if (tok) for (int i = 0; i < T; i++) CHECK(tok->i32[i] >= 0 && tok->i32[i] < VOCAB, "%s: %s[%d] = %d out of vocab", f->path, nm, i, tok->i32[i]);
    const char *rows[] = {"embed", "final_norm"};
    for (int k = 0; k < 2; k++) { snprintf(nm, sizeof nm, "%s%s", pre, rows[k]); want(f, nm, G4T_F32, 2, T, D_MODEL); }
    for (int l = 0; l < N_LAYERS; l++) { snprintf(nm, sizeof nm, "%slayer_out.%d", pre, l); want(f, nm, G4T_F32, 2, T, D_MODEL); }
    snprintf(nm, sizeof nm, "%slogits", pre);
    const g4t_tensor *lg = want(f, nm, G4T_F32, 2, T, VOCAB);
    snprintf(nm, sizeof nm, "%sargmax", pre);
    const g4t_tensor *am = want(f, nm, G4T_I32, 1, T);
    snprintf(nm, sizeof nm, "%sgreedy", pre);
    const g4t_tensor *gr = want(f, nm, G4T_I32, 1, 1);
    if (lg && am) {
        int mism = 0; float mx = 0;
        for (int t = 0; t < T; t++) if (argmax_row(lg->f32 + (size_t)t * VOCAB, VOCAB) != am->i32[t]) mism++;
        for (uint64_t i = 0; i < lg->n; i++) if (fabsf(lg->f32[i]) > mx) mx = fabsf(lg->f32[i]);
        CHECK(mism == 0, "%s: %sargmax disagrees with the logits at %d positions", f->path, pre, mism);
        CHECK(mx <= 30.0f, "%s: %slogits reach %g, beyond the soft-cap 30", f->path, pre, mx);
        if (gr) CHECK(gr->i32[0] == am->i32[T - 1], "%s: %sgreedy %d != argmax of the last position %d", f->path, pre, gr->i32[0], am->i32[T - 1]);
    }
    /* logits_raw (f32 files, not decode): logits = 30 tanh(raw / 30) as HF computes it in f32:
     * three f32 roundings (raw/30, tanh, *30) each within 0.5 ulp; |d tanh| <= 1, so the total is
     * a few ulp of 30 (ulp(30) = 1.9e-6). C's tanh in double then rounded: bound 8e-6 = ~4 ulp. */
    snprintf(nm, sizeof nm, "%slogits_raw", pre);
    const g4t_tensor *raw = g4t_get(f, nm);
    if (raw && lg) {
        CHECK(raw->n == lg->n, "%s: logits_raw/logits sizes differ", f->path);
        double md = 0;
        for (uint64_t i = 0; i < raw->n && raw->n == lg->n; i++) {
            double w = 30.0 * tanh((double)raw->f32[i] / 30.0);
            double d = fabs(w - lg->f32[i]);
            if (d > md) md = d;
        }
        printf("    %s: max |logits - 30 tanh(raw/30)| = %.3g (bound 8e-6)\n", f->path, md);
        CHECK(md <= 8e-6, "%s: soft-cap relation off by %g", f->path, md);
    }
    if (is_bf16) {   /* a bf16 run holds only bf16 values at every float tap */
        long nb = 0;
        for (uint32_t i = 0; i < f->count; i++) {
            const g4t_tensor *t = &f->t[i];
            if (t->dtype != G4T_F32 || strncmp(t->name, pre, strlen(pre)) != 0) continue;
            for (uint64_t k = 0; k < t->n; k++) if (!is_bf16_value(t->f32[k])) nb++;
        }
        CHECK(nb == 0, "%s: %ld values with prefix '%s' are not bf16-representable", f->path, nb, pre);
    }
}

static void check_golden_file(const char *path)
{
    char err[512];
    g4t_file *f = g4t_load(path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f) return;
    long nonfinite = 0;
    for (uint32_t i = 0; i < f->count; i++) {
        long b = count_nonfinite(&f->t[i]);
        CHECK(b == 0, "%s: tensor '%s' has %ld NaN/Inf values", path, f->t[i].name, b);
        nonfinite += b;
    }
    int is_bf16 = ends_with(path, "_bf16.g4t");
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "short_", 6) == 0) {
        check_forward(f, "", 5, is_bf16);
        const g4t_tensor *es = want(f, "embed_scale", G4T_F32, 1, 1);
        const g4t_tensor *ls = want(f, "layer_scalar", G4T_F32, 1, N_LAYERS);
        /* the checkpoint's scale: sqrt(hidden) cast to bf16 = 11.3125, in both runs (gen.py
         * sets it in the f32 run too, as g4 always uses the checkpoint's value) */
        if (es) CHECK(es->f32[0] == 11.3125f, "%s: embed_scale %.9g", path, es->f32[0]);
        if (ls) for (int l = 0; l < N_LAYERS; l++)
            CHECK(ls->f32[l] >= 0.05f && ls->f32[l] <= 0.95f, "%s: layer_scalar[%d] = %g outside [0.05, 0.95]", path, l, ls->f32[l]);
        for (int l = 0; l < N_LAYERS; l++) {
            char nm[64];
            snprintf(nm, sizeof nm, "attn_out.%d", l); want(f, nm, G4T_F32, 2, 5, D_MODEL);
            snprintf(nm, sizeof nm, "ffn_out.%d", l); want(f, nm, G4T_F32, 2, 5, D_MODEL);
        }
    } else if (strncmp(base, "long_", 5) == 0) {
        check_forward(f, "", 20, is_bf16);
        const g4t_tensor *g = want(f, "generate", G4T_I32, 1, 8);
        const g4t_tensor *gr = g4t_get(f, "greedy");
        if (g && gr) CHECK(g->i32[0] == gr->i32[0], "%s: generate[0] %d != greedy %d", path, g->i32[0], gr->i32[0]);
        if (!is_bf16) {
            /* q/k/v dumps of layer 0 (sliding, hd 32, 2 KV heads) and 2 (global, hd 64, 1 KV head) */
            static const struct { int layer, hd, nkv; } L[2] = {{0, 32, 2}, {2, 64, 1}};
            for (int k = 0; k < 2; k++) {
                char a[64], b[64];
                snprintf(a, sizeof a, "q_prerope.%d", L[k].layer);
                snprintf(b, sizeof b, "q_rope.%d", L[k].layer);
                const g4t_tensor *qp = want(f, a, G4T_F32, 3, 20, 4, L[k].hd);
                const g4t_tensor *qr = want(f, b, G4T_F32, 3, 20, 4, L[k].hd);
                snprintf(a, sizeof a, "k_prerope.%d", L[k].layer); want(f, a, G4T_F32, 3, 20, L[k].nkv, L[k].hd);
                snprintf(a, sizeof a, "k_rope.%d", L[k].layer); want(f, a, G4T_F32, 3, 20, L[k].nkv, L[k].hd);
                snprintf(a, sizeof a, "v.%d", L[k].layer); want(f, a, G4T_F32, 3, 20, L[k].nkv, L[k].hd);
                if (qp && qr) {
                    /* position 0: cos 1, sin 0 -> RoPE is the identity, exactly */
                    CHECK(memcmp(qp->f32, qr->f32, (size_t)4 * L[k].hd * 4) == 0, "%s: RoPE at position 0 is not the identity", path);
                    if (L[k].hd == 64) {   /* proportional: only pairs (i, i+32), i < 8, rotate */
                        long moved = 0, still = 0;
                        for (int t = 1; t < 20; t++) for (int h = 0; h < 4; h++) for (int d = 0; d < 64; d++) {
                            size_t o = ((size_t)t * 4 + h) * 64 + d;
                            int rot = (d % 32) < 8;
                            if (!rot && qp->f32[o] != qr->f32[o]) still++;
                            if (rot && qp->f32[o] != qr->f32[o]) moved++;
                        }
                        CHECK(still == 0, "%s: %ld non-rotated dims changed by global RoPE", path, still);
                        CHECK(moved > 0, "%s: global RoPE rotated nothing", path);
                    }
                }
            }
            const g4t_tensor *iv = want(f, "inv_freq.full", G4T_F32, 1, 32);
            want(f, "inv_freq.swa", G4T_F32, 1, 16);
            if (iv) for (int i = 0; i < 32; i++)
                CHECK(i < 8 ? iv->f32[i] > 0 : iv->f32[i] == 0, "%s: inv_freq.full[%d] = %g", path, i, iv->f32[i]);
        }
    } else if (strncmp(base, "decode_", 7) == 0) {
        check_forward(f, "", 12, is_bf16);
        for (int s = 0; s < 4; s++) {
            char pre[32];
            snprintf(pre, sizeof pre, "decode%d.", s);
            check_forward(f, pre, 1, is_bf16);
        }
    } else {
        CHECK(0, "%s: unknown golden file kind", path);
    }
    printf("    %s: %u tensors, all finite: %s\n", path, f->count, nonfinite ? "no" : "yes");
    g4t_free(f);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                        */
/* ------------------------------------------------------------------------------------------ */
static void test_sha256_known_answers(void)
{
    static const struct { const char *msg, *hex; } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sha256_hex(v[i].msg, strlen(v[i].msg), hex);
        CHECK(strcmp(hex, v[i].hex) == 0, "sha256(\"%s\") = %s", v[i].msg, hex);
    }
    /* one million 'a' (FIPS 180-2 appendix B.3), fed in uneven pieces */
    sha256_ctx c;
    sha256_init(&c);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t left = 1000000, step = 1;
    while (left) { size_t k = step < left ? step : left; if (k > sizeof a) k = sizeof a; sha256_update(&c, a, k); left -= k; step = step * 3 + 1; }
    sha256_hex_final(&c, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0, "sha256(1e6 x 'a') = %s", hex);
}

static void test_manifest_matches_files(void)
{
    char mp[512], err[512];
    manifest m;
    snprintf(mp, sizeof mp, "%s/MANIFEST", gdir());
    int rc = manifest_read(mp, &m, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) return;
    CHECK(m.format == G4T_VERSION, "%s: format g4t %d, reader is version %d; regenerate with: %s", mp, m.format, G4T_VERSION, G4T_REGEN_CMD);
    CHECK(m.has_python && m.has_torch && m.has_transformers && m.has_command && m.has_date,
          "%s: missing provenance lines (python/torch/transformers/command/date)", mp);
    CHECK(m.n >= 8, "%s: only %d files listed (want config, weights and 6 .g4t)", mp, m.n);
    int bad = manifest_verify(gdir(), &m);
    CHECK(bad == 0, "%s: %d size/sha256 mismatches (files changed after generation? regenerate with: %s)", mp, bad, G4T_REGEN_CMD);
    printf("    %s: %d files, %d mismatches\n", mp, m.n, bad);

    /* every .g4t on disk must be in the manifest */
    char td[512];
    snprintf(td, sizeof td, "%s/tiny", gdir());
    DIR *d = opendir(td);
    CHECK(d != NULL, "%s: cannot open directory", td);
    if (!d) return;
    struct dirent *de;
    int n_g4t = 0;
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".g4t")) continue;
        n_g4t++;
        char rel[300];
        snprintf(rel, sizeof rel, "tiny/%s", de->d_name);
        int found = 0;
        for (int i = 0; i < m.n; i++) if (strcmp(m.e[i].rel, rel) == 0) found = 1;
        CHECK(found, "%s/%s is not listed in %s", gdir(), rel, mp);
    }
    closedir(d);
    CHECK(n_g4t == 6, "%s: %d .g4t files, expected 6", td, n_g4t);
}

static void test_golden_contents(void)
{
    char mp[512], err[512];
    manifest m;
    snprintf(mp, sizeof mp, "%s/MANIFEST", gdir());
    int rc = manifest_read(mp, &m, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) return;
    int n = 0;
    for (int i = 0; i < m.n; i++) {
        if (!ends_with(m.e[i].rel, ".g4t")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", gdir(), m.e[i].rel);
        check_golden_file(p);
        n++;
    }
    CHECK(n == 6, "%d .g4t files in the manifest, expected 6", n);
}

/* ---- crafted files for the reader ---- */
typedef struct { unsigned char b[4096]; size_t n; } buf_t;
static void put_u32(buf_t *b, uint32_t v) { for (int i = 0; i < 4; i++) b->b[b->n++] = (unsigned char)(v >> (8 * i)); }
static void put_u64(buf_t *b, uint64_t v) { for (int i = 0; i < 8; i++) b->b[b->n++] = (unsigned char)(v >> (8 * i)); }
static void put_bytes(buf_t *b, const void *p, size_t n) { memcpy(b->b + b->n, p, n); b->n += n; }
static void put_f32(buf_t *b, float f) { uint32_t u; memcpy(&u, &f, 4); put_u32(b, u); }

/* a valid file: "x" f32 [2][3] = 0..5 (x[1][2] = special), "ids" i32 [2] = {-7, 511} */
static void make_valid(buf_t *b, float special)
{
    b->n = 0;
    put_bytes(b, "G4GT", 4); put_u32(b, 1); put_u32(b, 2);
    put_u32(b, 1); put_bytes(b, "x", 1); put_u32(b, 0); put_u32(b, 2); put_u64(b, 2); put_u64(b, 3);
    for (int i = 0; i < 5; i++) put_f32(b, (float)i);
    put_f32(b, special);
    put_u32(b, 3); put_bytes(b, "ids", 3); put_u32(b, 1); put_u32(b, 1); put_u64(b, 2);
    put_u32(b, (uint32_t)-7); put_u32(b, 511);
}

static int parse_fails(const buf_t *b, const char *must_contain)
{
    char err[512] = "";
    g4t_file *f = g4t_parse(b->b, b->n, "crafted.g4t", err, sizeof err);
    if (f) { g4t_free(f); return 0; }
    if (strncmp(err, "crafted.g4t: ", 13) != 0) { printf("    error does not name the file: %s\n", err); return 0; }
    if (must_contain && !strstr(err, must_contain)) { printf("    error lacks '%s': %s\n", must_contain, err); return 0; }
    return 1;
}

static void test_reader_valid_and_rejects_bad(void)
{
    buf_t b;
    char err[512];
    make_valid(&b, 5.0f);
    g4t_file *f = g4t_parse(b.b, b.n, "crafted.g4t", err, sizeof err);
    CHECK(f != NULL, "valid crafted file rejected: %s", err);
    if (f) {
        const g4t_tensor *x = g4t_get(f, "x"), *ids = g4t_get(f, "ids");
        CHECK(x && x->dtype == G4T_F32 && x->n_dims == 2 && x->dims[0] == 2 && x->dims[1] == 3 && x->n == 6 &&
              x->f32 && !x->i32 && x->f32[5] == 5.0f && x->f32[1] == 1.0f, "tensor x read wrong");
        CHECK(ids && ids->dtype == G4T_I32 && ids->i32 && !ids->f32 && ids->i32[0] == -7 && ids->i32[1] == 511, "tensor ids read wrong");
        CHECK(g4t_get(f, "nope") == NULL && g4t_get(f, "i") == NULL, "g4t_get found a missing name");
        g4t_free(f);
    }
    g4t_free(NULL);

    /* every proper prefix of a valid file is rejected, without a crash */
    int prefix_ok = 1;
    for (size_t n = 0; n < b.n; n++) {
        buf_t t = b; t.n = n;
        if (!parse_fails(&t, NULL)) { prefix_ok = 0; printf("    prefix of %zu bytes accepted\n", n); break; }
    }
    CHECK(prefix_ok, "a truncated file was accepted");

    buf_t t;
    t = b; t.b[0] = 'X';                 CHECK(parse_fails(&t, "magic"), "bad magic accepted");
    t = b; t.b[4] = 0;                   CHECK(parse_fails(&t, "golden/gen.py"), "stale version 0 accepted or message lacks the command");
    t = b; t.b[4] = 2;                   CHECK(parse_fails(&t, "regenerate"), "future version 2 accepted");
    t = b; t.b[8] = 0;                   CHECK(parse_fails(&t, "count"), "count 0 accepted");
    t = b; t.b[8] = 3;                   CHECK(parse_fails(&t, NULL), "count larger than the content accepted");
    t = b; t.b[8] = 1;                   CHECK(parse_fails(&t, "trailing"), "trailing bytes accepted");
    t = b; t.b[t.n++] = 0;               CHECK(parse_fails(&t, "trailing"), "one trailing byte accepted");
    t = b; t.b[12] = 0;                  CHECK(parse_fails(&t, "name length"), "empty name accepted");
    t = b; t.b[12] = 0; t.b[13] = 1;     CHECK(parse_fails(&t, "name length"), "name length 256 accepted");
    t = b; t.b[16] = 0;                  CHECK(parse_fails(&t, "name"), "NUL in a name accepted");
    t = b; t.b[16] = ' ';                CHECK(parse_fails(&t, "name"), "space in a name accepted");
    t = b; t.b[17] = 2;                  CHECK(parse_fails(&t, "dtype"), "dtype 2 accepted");
    t = b; t.b[21] = 0;                  CHECK(parse_fails(&t, "n_dims"), "n_dims 0 accepted");
    t = b; t.b[21] = 9;                  CHECK(parse_fails(&t, "n_dims"), "n_dims 9 accepted");
    t = b; t.b[25] = 0;                  CHECK(parse_fails(&t, "dim 0 is 0"), "a zero dim accepted");
    t = b; t.b[25] = 3;                  CHECK(parse_fails(&t, NULL), "dims larger than the data accepted");
    t = b; memset(t.b + 25, 0xff, 8);    CHECK(parse_fails(&t, "exceed"), "huge dim accepted");
    t = b; memset(t.b + 25, 0xff, 4); memset(t.b + 33, 0xff, 4);
                                         CHECK(parse_fails(&t, "exceed"), "dims whose product overflows accepted");
    {   /* two tensors named "a" */
        buf_t d; d.n = 0;
        put_bytes(&d, "G4GT", 4); put_u32(&d, 1); put_u32(&d, 2);
        for (int k = 0; k < 2; k++) { put_u32(&d, 1); put_bytes(&d, "a", 1); put_u32(&d, 0); put_u32(&d, 1); put_u64(&d, 1); put_f32(&d, 1.0f); }
        CHECK(parse_fails(&d, "duplicate"), "duplicate names accepted");
    }

    /* g4t_load: missing file, and a truncated file on disk */
    char p[256];
    snprintf(p, sizeof p, "/tmp/g4t_test_%ld.g4t", (long)getpid());
    f = g4t_load("/nonexistent/dir/x.g4t", err, sizeof err);
    CHECK(!f && strstr(err, "/nonexistent/dir/x.g4t") && strstr(err, "cannot open"), "missing file: %s", err);
    FILE *fp = fopen(p, "wb");
    CHECK(fp != NULL, "cannot write %s", p);
    if (fp) {
        fwrite(b.b, 1, b.n - 3, fp);
        fclose(fp);
        f = g4t_load(p, err, sizeof err);
        CHECK(!f && strncmp(err, p, strlen(p)) == 0, "truncated file on disk: %s", f ? "accepted" : err);
        g4t_free(f);
        fp = fopen(p, "wb");
        if (fp) { fwrite(b.b, 1, b.n, fp); fclose(fp); }
        f = g4t_load(p, err, sizeof err);
        CHECK(f != NULL, "valid file on disk rejected: %s", err);
        g4t_free(f);
        remove(p);
    }
}

/* the finiteness check and the manifest checker must be able to fail */
static void test_checkers_can_fail(void)
{
    buf_t b;
    char err[512];
    make_valid(&b, NAN);
    g4t_file *f = g4t_parse(b.b, b.n, "nan.g4t", err, sizeof err);
    CHECK(f != NULL, "the reader must load NaN (the test flags it): %s", err);
    if (f) { CHECK(count_nonfinite(g4t_get(f, "x")) == 1, "NaN not counted"); g4t_free(f); }
    make_valid(&b, INFINITY);
    f = g4t_parse(b.b, b.n, "inf.g4t", err, sizeof err);
    if (f) { CHECK(count_nonfinite(g4t_get(f, "x")) == 1, "Inf not counted"); g4t_free(f); }

    /* a scratch golden dir: one file, a manifest that matches, then a flipped byte */
    char dir[256], sub[300], file[400], mf[400];
    snprintf(dir, sizeof dir, "/tmp/g4t_mf_%ld", (long)getpid());
    snprintf(sub, sizeof sub, "%s/tiny", dir);
    snprintf(file, sizeof file, "%s/a.g4t", sub);
    snprintf(mf, sizeof mf, "%s/MANIFEST", dir);
    mkdir(dir, 0700);
    mkdir(sub, 0700);
    make_valid(&b, 5.0f);
    FILE *fp = fopen(file, "wb");
    CHECK(fp != NULL, "cannot write %s", file);
    if (!fp) return;
    fwrite(b.b, 1, b.n, fp);
    fclose(fp);
    char hex[65];
    sha256_hex(b.b, b.n, hex);
    fp = fopen(mf, "w");
    if (fp) {
        fprintf(fp, "# test\nformat g4t 1\npython x\ntorch x\ntransformers x\ncommand x\ndate x\nsha256 %s %zu tiny/a.g4t\n", hex, b.n);
        fclose(fp);
    }
    manifest m;
    CHECK(manifest_read(mf, &m, err, sizeof err) == 0 && m.n == 1 && m.format == 1, "scratch manifest unreadable: %s", err);
    CHECK(manifest_verify(dir, &m) == 0, "matching scratch manifest reported problems");
    b.b[b.n - 1] ^= 1;                                   /* same size, one bit flipped */
    fp = fopen(file, "wb");
    if (fp) { fwrite(b.b, 1, b.n, fp); fclose(fp); }
    printf("    (the mismatch below is expected)\n");
    CHECK(manifest_verify(dir, &m) == 1, "a flipped bit was not detected");
    m.e[0].size += 1;
    CHECK(manifest_verify(dir, &m) == 2, "a wrong size was not detected");
    remove(file);
    CHECK(manifest_verify(dir, &m) == 1, "a missing file was not detected");
    fp = fopen(mf, "w");
    if (fp) { fprintf(fp, "sha256 abc 12 tiny/a.g4t\n"); fclose(fp); }
    CHECK(manifest_read(mf, &m, err, sizeof err) != 0, "a malformed sha256 line was accepted");
    remove(mf);
    rmdir(sub);
    rmdir(dir);
}

int main(void)
{
    RUN(test_sha256_known_answers);
    RUN(test_reader_valid_and_rejects_bad);
    RUN(test_checkers_can_fail);
    RUN(test_manifest_matches_files);
    RUN(test_golden_contents);
    return h_finish();
}

/* gemm.c - the ISA-independent half of the opt matmul and attention: work chunks and threads.
 *
 * prefill GEMM (opt_gemm): token grouping, the token-tile copy XT, per-thread panel scratch
 * and the 96-row work items; the ISA supplies the panel former and the micro-kernels
 * (opt.h, "prefill GEMM driver").
 *
 * matmul Y[T][rows] = X[T][cols] W^T (W: rows x cols in any stored type): the rows of W are
 * cut into chunks of OPT_ROW_CHUNK rows; each chunk (all T tokens) is one work item of the
 * pool, and the ISA's row function tiles inside it. A type the ISA has no row function for
 * runs the ref entry.
 *
 * attention: one work item per query head; each head uses one scores buffer of its own (the
 * caller's for thread 0, opt_scratch for the others).
 *
 * Scratch: the per-thread score buffers grow (doubling) when a longer context first appears,
 * then are reused, so decoding allocates nothing. Not reentrant: one caller thread at a time.
 */
#include "opt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- matmul ------------------------------------------------------------------------------- */

typedef struct {
    opt_mm m;
    opt_rows_fn rows;
} mm_job;

static void rows_task(void *ctx, int64_t c, int tid)
{
    const mm_job *j = ctx;
    int64_t r0 = c * OPT_ROW_CHUNK, r1 = r0 + OPT_ROW_CHUNK;
    if (r1 > j->m.rows) r1 = j->m.rows;
    j->rows(&j->m, r0, r1);
}

void opt_matmul(const opt_isa *isa, float *Y, const g4_tensor *W, const float *X, int T)
{
    opt_rows_fn rows = NULL;
    switch (W->type) {
    case G4_T_F32: rows = isa->f32; break;
    case G4_T_F16: rows = isa->f16; break;
    case G4_T_BF16: rows = isa->bf16; break;
    case G4_T_Q8_0: rows = isa->q8_0; break;
    case G4_T_Q4_0: rows = isa->q4_0; break;
    case G4_T_Q4_K: rows = isa->q4_k; break;
    case G4_T_Q6_K: rows = isa->q6_k; break;
    default: break;
    }
    const int64_t cols = W->ne[0], rows_n = W->ne[1], bs = g4_type_block(W->type);
    if (!rows || T < 1 || rows_n < 1 || bs < 1 || cols % bs != 0) {
        g4_kernels_ref.matmul(Y, W, X, T);
        return;
    }
    mm_job j = { { Y, X, T, W->data, rows_n, cols, g4_row_bytes(W->type, cols) }, rows };
    opt_parallel(rows_task, &j, (rows_n + OPT_ROW_CHUNK - 1) / OPT_ROW_CHUNK);
}

/* ---- prefill GEMM (opt.h, "prefill GEMM driver") ---------------------------------------- */

typedef struct {
    const opt_gemm_isa *g;
    g4_type type;
    const uint8_t *W;
    size_t rb;
    int64_t rows, cols;
    float *Y;
    const float *XT;
    int64_t tgp;
    int t0, nt;             /* the group: tokens t0 .. t0 + nt - 1 */
} gemm_job;

static void gemm_task(void *ctx, int64_t chunk, int tid)
{
    const gemm_job *j = ctx;
    const int64_t r0 = chunk * OPT_GEMM_ROWS, tgp = j->tgp;
    const int nr = (int)(j->rows - r0 < OPT_GEMM_ROWS ? j->rows - r0 : OPT_GEMM_ROWS);
    float *P = opt_scratch(tid, (size_t)OPT_GEMM_ROWS * (OPT_GEMM_KC + tgp));  /* [96][KC] panel */
    float *C = P + OPT_GEMM_ROWS * OPT_GEMM_KC;                                 /* [96][tgp] sums */
    for (int64_t k0 = 0; k0 < j->cols; k0 += OPT_GEMM_KC) {
        const int64_t kc = j->cols - k0 < OPT_GEMM_KC ? j->cols - k0 : OPT_GEMM_KC;
        j->g->form(j->type, j->W, j->rb, r0, nr, k0, kc, P);
        j->g->panel(P, nr, j->XT, j->cols, k0, kc, tgp, C, k0 == 0);
    }
    for (int i = 0; i < nr; i++)
        for (int t = 0; t < j->nt; t++) j->Y[(int64_t)(j->t0 + t) * j->rows + r0 + i] = C[i * tgp + t];
}

static float *xt_buf;     /* XT of the current group; grows, never shrinks (no use in decode) */
static size_t xt_cap;

/* the copy X -> XT of one group, on the pool in pieces of XT_COLS columns */
#define XT_COLS 256
typedef struct { const opt_gemm_isa *g; const float *X; int64_t cols, p; int t0, nt; } xt_job;

static void xt_task(void *ctx, int64_t c, int tid)
{
    const xt_job *j = ctx;
    const int64_t k0 = c * XT_COLS, k1 = j->cols - k0 < XT_COLS ? j->cols : k0 + XT_COLS;
    for (int64_t s0 = 0; s0 < j->p; s0 += j->g->nt) {      /* XT[tile][k][w]: tile of w tokens */
        const int w = (int)(j->p - s0 < j->g->nt ? j->p - s0 : j->g->nt);
        float *xt = xt_buf + (s0 / j->g->nt) * j->g->nt * j->cols;
        for (int i = 0; i < w; i++) {
            const int t = (int)s0 + i;
            const float *x = j->X + (int64_t)(j->t0 + t) * j->cols;
            for (int64_t k = k0; k < k1; k++) xt[k * w + i] = t < j->nt ? x[k] : 0.0f;
        }
    }
}

int opt_gemm(const opt_gemm_isa *g, float *Y, const g4_tensor *W, const float *X, int T)
{
    switch (W->type) {
    case G4_T_F32: case G4_T_F16: case G4_T_BF16:
    case G4_T_Q8_0: case G4_T_Q4_0: case G4_T_Q4_K: case G4_T_Q6_K: break;
    default: return -1;
    }
    const int64_t cols = W->ne[0], rows = W->ne[1], bs = g4_type_block(W->type);
    if (T < OPT_GEMM_MIN_T || rows < 1 || cols < 1 || cols % bs != 0) return -1;
    const int64_t tg = T < OPT_GEMM_TG ? T : OPT_GEMM_TG, tgp_max = (tg + g->vec - 1) / g->vec * g->vec;
    const size_t xt_n = (size_t)(cols * ((tgp_max + g->nt - 1) / g->nt * g->nt));
    if (xt_n > xt_cap) {
        float *p = aligned_alloc(64, (sizeof(float) * xt_n + 63) & ~(size_t)63);
        if (!p) return -1;
        free(xt_buf);
        xt_buf = p;
        xt_cap = xt_n;
    }
    if (opt_scratch_reserve((size_t)OPT_GEMM_ROWS * (OPT_GEMM_KC + tgp_max))) return -1;
    gemm_job j = { g, W->type, W->data, g4_row_bytes(W->type, cols), rows, cols, Y, xt_buf, 0, 0, 0 };
    for (int t0 = 0; t0 < T; t0 += OPT_GEMM_TG) {
        const int nt = T - t0 < OPT_GEMM_TG ? T - t0 : OPT_GEMM_TG;
        const int64_t p = (nt + g->vec - 1) / g->vec * g->vec;
        xt_job xj = { g, X, cols, p, t0, nt };
        opt_parallel(xt_task, &xj, (cols + XT_COLS - 1) / XT_COLS);
        j.tgp = p; j.t0 = t0; j.nt = nt;
        opt_parallel(gemm_task, &j, (rows + OPT_GEMM_ROWS - 1) / OPT_GEMM_ROWS);
    }
    return 0;
}

/* ---- the q8 mode: rounding the activations (shared by the GEMV and the GEMM) ------------- */

static int8_t *q8_x;          /* [T][cols] rounded activations; grow, never shrink */
static float *q8_d;           /* [T][cols / 32] their scales */
static int32_t *q8_g;         /* [T][cols / 4] sum of q over each group of 4 (for offsets) */
static int64_t q8_cap;        /* values of q8_x */
static int32_t *q8_xt;        /* the GEMM's activation tiles (opt_q8_chunk: xt, then xtd, xts) */
static int64_t q8_xt_cap;     /* int32 values of q8_xt */

void opt_q8_quant_ref(const float *x, int64_t n, int8_t *q, float *d, int32_t *sg)
{
    g4_quant_act_q8(x, n, q, d);
    for (int64_t g = 0; g < n / 4; g++) sg[g] = q[4 * g] + q[4 * g + 1] + q[4 * g + 2] + q[4 * g + 3];
}

/* a 64-byte aligned buffer of n bytes in place of old (freed when the new one exists), so a
 * kernel's 64-byte loads of a block pair's activations never straddle two cache lines (cols is
 * a multiple of 32 and every token's row starts at t * cols) */
static void *q8_alloc(void *old, size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (p) free(old);
    return p;
}

/* rounds the T tokens into q8_x / q8_d / q8_g; -1: out of memory */
static int q8_round(opt_q8_quant_fn quant, const float *X, int T, int64_t cols)
{
    const int64_t nb = cols / 32;
    if ((int64_t)T * cols > q8_cap) {       /* rewritten every call: no need to keep contents */
        int8_t *nx = q8_alloc(q8_x, (size_t)(T * cols));
        if (nx) q8_x = nx;
        float *nd = q8_alloc(q8_d, sizeof(float) * (size_t)(T * nb));
        if (nd) q8_d = nd;
        int32_t *ng = q8_alloc(q8_g, sizeof(int32_t) * (size_t)(T * cols / 4));
        if (ng) q8_g = ng;
        if (!nx || !nd || !ng) return -1;
        q8_cap = (int64_t)T * cols;
    }
    if (!quant) quant = opt_q8_quant_ref;
    for (int t = 0; t < T; t++)
        quant(X + (int64_t)t * cols, cols, q8_x + (int64_t)t * cols, q8_d + (int64_t)t * nb, q8_g + (int64_t)t * cols / 4);
    return 0;
}

static int q8_applies(const g4_tensor *W)
{
    return (W->type == G4_T_Q8_0 || W->type == G4_T_Q4_0) && W->ne[0] % 32 == 0 && W->ne[0] > 0 && W->ne[1] > 0;
}

/* as ref-q8 when the scratch cannot grow: every output NaN (visible, never another rule) */
static void q8_oom(float *Y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) Y[i] = NAN;
}

/* ---- the q8 mode's GEMV driver (opt.h, docs/NUMERICS.md "q8 mode") ------------------------ */

typedef struct { opt_mm m; int ty; int64_t nb; opt_q8_rows_fn rows; } q8_job;

static void q8_task(void *ctx, int64_t c, int tid)
{
    const q8_job *j = ctx;
    const opt_mm *m = &j->m;
    const int64_t r0 = c * OPT_ROW_CHUNK, r1 = r0 + OPT_ROW_CHUNK < m->rows ? r0 + OPT_ROW_CHUNK : m->rows;
    for (int t = 0; t < m->T; t++) {
        const int8_t *xq = q8_x + (int64_t)t * m->cols;
        const float *xd = q8_d + (int64_t)t * j->nb;
        const int32_t *sg = q8_g + (int64_t)t * m->cols / 4;
        for (int64_t r = r0; r < r1; r += 4) {
            const int R = r1 - r < 4 ? (int)(r1 - r) : 4;
            const uint8_t *w[4];
            for (int i = 0; i < 4; i++) w[i] = m->W + (r + (i < R ? i : 0)) * m->rb;
            float out[4];
            j->rows(j->ty, w, xq, xd, sg, j->nb, OPT_PF_ROWS * m->rb, out);
            for (int i = 0; i < R; i++) m->Y[(int64_t)t * m->rows + r + i] = out[i];
        }
    }
}

int opt_q8_gemv(opt_q8_rows_fn rows, opt_q8_quant_fn quant, opt_q8_prep_fn prep, float *Y, const g4_tensor *W,
                const float *X, int T)
{
    const int64_t cols = W->ne[0], rows_n = W->ne[1], nb = cols / 32;
    if (T >= G4_Q8_MAX_T || T < 1 || !q8_applies(W)) return -1;
    if (q8_round(quant, X, T, cols)) { q8_oom(Y, (int64_t)T * rows_n); return 0; }
    if (prep)
        for (int t = 0; t < T; t++) prep(W->type, q8_x + (int64_t)t * cols, q8_g + (int64_t)t * cols / 4, nb);
    q8_job j = { { Y, X, T, W->data, rows_n, cols, g4_row_bytes(W->type, cols) }, W->type, nb, rows };
    opt_parallel(q8_task, &j, (rows_n + OPT_ROW_CHUNK - 1) / OPT_ROW_CHUNK);
    return 0;
}

/* ---- the q8 mode's prefill GEMM driver (opt.h, docs/NUMERICS.md "q8 mode") --------------- */

/* 8 bytes at p as a little-endian integer (every target g4 runs on is little-endian) */
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Each byte n (0..15) of v as the int8 n - 8, without borrows between bytes: 0x80 + n - 8 never
 * borrows, and flipping bit 7 back leaves n - 8 in two's complement. */
static uint64_t nib_signed(uint64_t v)
{
    const uint64_t h = 0x8080808080808080ull;
    return ((v | h) - 0x0808080808080808ull) ^ h;
}

/* The portable panel of one work item and chunk (opt.h, opt_q8_chunk): rows r0 .. r0 + nr - 1,
 * blocks b0 .. b0 + kb - 1, as int8 weights P[sub][b][g][lane][4] (group g = values 4g .. 4g + 3
 * of the block, in value order) and PD[sub][b][lane]. Rows past nr are zero weights (scale 0).
 * Q4_0 is unpacked 8 values at a time in a 64-bit word. */
static void q8_form(g4_type ty, const uint8_t *W, size_t rb, int64_t r0, int nr, int64_t b0, int kb,
                    int R, uint8_t *P, float *PD)
{
    const int nsub = (nr + R - 1) / R;
    for (int s = 0; s < nsub; s++)
        for (int l = 0; l < R; l++) {
            const int i = s * R + l;
            const uint8_t *row = W + (r0 + (i < nr ? i : 0)) * rb;
            for (int b = 0; b < kb; b++) {
                uint8_t *dst = P + (((size_t)s * kb + b) * 8 * R + l) * 4;     /* group g at dst + 4 R g */
                float *pd = PD + ((size_t)s * kb + b) * R + l;
                uint32_t v[8];
                if (i >= nr) {
                    for (int g = 0; g < 8; g++) v[g] = 0;
                    *pd = 0.0f;
                } else if (ty == G4_T_Q8_0) {
                    const uint8_t *blk = row + 34 * (b0 + b);
                    *pd = g4_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
                    for (int g = 0; g < 8; g++) v[g] = rd32(blk + 2 + 4 * g);
                } else {
                    const uint8_t *blk = row + 18 * (b0 + b);
                    *pd = g4_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
                    const uint64_t m = 0x0f0f0f0f0f0f0f0full, a = rd64(blk + 2), c = rd64(blk + 10);
                    uint64_t q[4] = { a & m, c & m, (a >> 4) & m, (c >> 4) & m };   /* values 0-7, 8-15, 16-23, 24-31 */
                    for (int k = 0; k < 4; k++) {
                        q[k] = nib_signed(q[k]);
                        v[2 * k] = (uint32_t)q[k];
                        v[2 * k + 1] = (uint32_t)(q[k] >> 32);
                    }
                }
                for (int g = 0; g < 8; g++) memcpy(dst + 4 * R * g, &v[g], 4);
            }
        }
}

/* The chunk kernel in plain C on the portable panel (any lanes): for ISAs without their own,
 * and as the statement of what every chunk kernel computes. */
void opt_q8_chunk_c(const opt_q8_chunk *c)
{
    const int R = c->lanes, nsub = (c->nr + R - 1) / R;
    for (int s = 0; s < nsub; s++)
        for (int t = 0; t < c->T; t++)
            for (int l = 0; l < R && s * R + l < c->nr; l++) {
                float *y = c->Y + (int64_t)t * c->rows + c->r0 + s * R + l;
                float acc = c->first ? 0.0f : *y;
                for (int b = 0; b < c->kb; b++) {
                    const uint8_t *p = c->P + ((size_t)s * c->kb + b) * 8 * R * 4 + 4 * l;
                    const int8_t *x = c->xq + (int64_t)t * c->cols + 32 * (c->b0 + b);
                    int32_t S = 0;
                    for (int g = 0; g < 8; g++)
                        for (int k = 0; k < 4; k++) S += (int8_t)p[4 * R * g + k] * x[4 * g + k];
                    acc = fmaf((float)S, c->PD[((size_t)s * c->kb + b) * R + l] * c->xd[(int64_t)t * c->nb + c->b0 + b], acc);
                }
                *y = acc;
            }
}

/* lanes = tokens: the item's sums C[i][t] (row i, token t; tp tokens per row) to Y[t][r0 + i],
 * token by token: each token's nr outputs are written contiguously (the nr lines of C it reads
 * stay in L1 for the next token), not one row's outputs scattered over T lines of Y */
static void q8_put(const opt_q8_chunk *c, int64_t tp)
{
    for (int t = 0; t < c->T; t++) {
        float *y = c->Y + (int64_t)t * c->rows + c->r0;
        for (int i = 0; i < c->nr; i++) y[i] = c->C[i * tp + t];
    }
}

typedef struct {
    const opt_q8_gemm_isa *g;
    g4_type ty;
    const uint8_t *W;
    size_t rb;
    int64_t rows, cols, nb;
    float *Y;
    int T;
    int uns;                            /* the ISA's former writes unsigned bytes (opt_q8_gemm_isa) */
    int nt, ntile;                      /* the activation tiles, when the ISA takes them */
    const int32_t *xt, *xts;
    const float *xtd;
} q8g_job;

static void q8g_task(void *ctx, int64_t item, int tid)
{
    const q8g_job *j = ctx;
    const int64_t r0 = item * OPT_Q8_GEMM_ROWS;
    const int nr = (int)(j->rows - r0 < OPT_Q8_GEMM_ROWS ? j->rows - r0 : OPT_Q8_GEMM_ROWS);
    float *PD = opt_scratch(tid, OPT_Q8_GEMM_SCRATCH + OPT_Q8_GEMM_ROWS * (size_t)j->ntile * j->nt);  /* [sub][KB][lanes] */
    uint8_t *P = (uint8_t *)(PD + OPT_Q8_GEMM_ROWS * OPT_Q8_GEMM_KB);     /* [sub][KB][8][lanes][4], then C */
    opt_q8_chunk c = { .ty = j->ty, .P = P, .PD = PD, .nr = nr, .lanes = j->g->lanes, .xq = q8_x, .xd = q8_d,
                       .cols = j->cols, .nb = j->nb, .T = j->T, .Y = j->Y, .rows = j->rows, .r0 = r0,
                       .nt = j->nt, .ntile = j->ntile, .xt = j->xt, .xtd = j->xtd, .xts = j->xts,
                       .C = (float *)(P + OPT_Q8_GEMM_ROWS * OPT_Q8_GEMM_KB * 32) };
    for (int64_t b0 = 0; b0 < j->nb; b0 += OPT_Q8_GEMM_KB) {
        c.kb = (int)(j->nb - b0 < OPT_Q8_GEMM_KB ? j->nb - b0 : OPT_Q8_GEMM_KB);
        c.b0 = b0;
        c.first = b0 == 0;
        if (j->g->form) j->g->form(j->ty, j->W, j->rb, r0, nr, b0, c.kb, j->uns, P, PD);
        else q8_form(j->ty, j->W, j->rb, r0, nr, b0, c.kb, c.lanes, P, PD);
        j->g->chunk(&c);
    }
    if (j->g->xt_nt > 0) q8_put(&c, (int64_t)j->ntile * j->nt);
}

/* the activation tiles of opt_q8_chunk (xt_nt > 0), once per call; -1: out of memory */
static int q8_tiles(int nt, int T, int64_t cols, int off, q8g_job *j)
{
    const int64_t nb = cols / 32, ntile = (T + nt - 1) / nt, n = ntile * nb * nt * 10;   /* xt: 8, xtd, xts */
    if (n > q8_xt_cap) {
        int32_t *p = realloc(q8_xt, sizeof(int32_t) * (size_t)n);
        if (!p) return -1;
        q8_xt = p;
        q8_xt_cap = n;
    }
    int32_t *xt = q8_xt, *xts = q8_xt + ntile * nb * nt * 9;
    float *xtd = (float *)(q8_xt + ntile * nb * nt * 8);
    for (int64_t v = 0; v < ntile; v++)
        for (int64_t b = 0; b < nb; b++)
            for (int i = 0; i < nt; i++) {
                const int64_t t = v * nt + i, k = (v * nb + b) * nt + i;
                for (int g = 0; g < 8; g++) {
                    int32_t w = 0;
                    if (t < T) memcpy(&w, q8_x + t * cols + 32 * b + 4 * g, 4);
                    xt[((v * nb + b) * 8 + g) * nt + i] = w;
                }
                xtd[k] = t < T ? q8_d[t * nb + b] : 0.0f;
                int32_t s = 0;                          /* the block's sum of q: its 8 group sums */
                for (int g = 0; t < T && g < 8; g++) s += q8_g[(t * nb + b) * 8 + g];
                xts[k] = -off * s;
            }
    j->nt = nt;
    j->ntile = (int)ntile;
    j->xt = xt;
    j->xtd = xtd;
    j->xts = xts;
    return 0;
}

int opt_q8_gemm(const opt_q8_gemm_isa *g, opt_q8_quant_fn quant, float *Y, const g4_tensor *W, const float *X, int T)
{
    const int64_t cols = W->ne[0], rows_n = W->ne[1], nb = cols / 32;
    if (T < G4_Q8_MAX_T || !q8_applies(W)) return -1;
    const int64_t tpad = g->xt_nt > 0 ? (T + g->xt_nt - 1) / g->xt_nt * g->xt_nt : 0;
    if (q8_round(quant, X, T, cols) || opt_scratch_reserve(OPT_Q8_GEMM_SCRATCH + OPT_Q8_GEMM_ROWS * tpad)) {
        q8_oom(Y, (int64_t)T * rows_n);
        return 0;
    }
    const int uns = g->form && (W->type == G4_T_Q8_0 ? g->u_q8 : g->u_q4);
    q8g_job j = { g, W->type, W->data, g4_row_bytes(W->type, cols), rows_n, cols, nb, Y, T, uns, 0, 0, NULL, NULL, NULL };
    if (g->xt_nt > 0 && q8_tiles(g->xt_nt, T, cols, uns ? (W->type == G4_T_Q8_0 ? 128 : 8) : 0, &j)) {
        q8_oom(Y, (int64_t)T * rows_n);
        return 0;
    }
    opt_parallel(q8g_task, &j, (rows_n + OPT_Q8_GEMM_ROWS - 1) / OPT_Q8_GEMM_ROWS);
    return 0;
}

const opt_q8_gemm_isa opt_q8_gemm_c = { 4, 0, 0, opt_q8_chunk_c, 0, NULL };

/* ---- elementwise -------------------------------------------------------------------------- */

typedef struct { void (*fn)(void *, int64_t, int64_t); void *ctx; int64_t n; } el_job;

static void el_task(void *ctx, int64_t c, int tid)
{
    const el_job *j = ctx;
    int64_t i0 = c * OPT_ELEM_CHUNK, m = j->n - i0 < OPT_ELEM_CHUNK ? j->n - i0 : OPT_ELEM_CHUNK;
    j->fn(j->ctx, i0, m);
}

void opt_parallel_elems(void (*fn)(void *ctx, int64_t i0, int64_t n), void *ctx, int64_t n)
{
    if (n <= OPT_ELEM_CHUNK) { if (n > 0) fn(ctx, 0, n); return; }
    el_job j = { fn, ctx, n };
    opt_parallel(el_task, &j, (n + OPT_ELEM_CHUNK - 1) / OPT_ELEM_CHUNK);
}

/* ---- attention ---------------------------------------------------------------------------- */

typedef struct {
    opt_head_fn head;
    float *out; const float *q; int hd, group;
    const float *const *krow, *const *vrow; int n_keys;
    float *scores;
} att_job;

static void att_task(void *ctx, int64_t h, int tid)
{
    const att_job *j = ctx;
    float *sc = tid == 0 ? j->scores : opt_scratch(tid, (size_t)j->n_keys);
    j->head(j->out + h * j->hd, j->q + h * j->hd, j->hd, (int64_t)(h / j->group) * j->hd,
            j->krow, j->vrow, j->n_keys, sc);
}

void opt_attention(opt_head_fn head, float *out, const float *q, int n_heads, int hd, int group,
                   const float *const *krow, const float *const *vrow, int n_keys, float *scores)
{
    att_job j = { head, out, q, hd, group, krow, vrow, n_keys, scores };
    if (n_heads <= 1 || opt_threads(0) <= 1 || opt_scratch_reserve((size_t)n_keys)) {
        for (int h = 0; h < n_heads; h++) att_task(&j, h, 0);   /* serial: the caller's scores */
        return;
    }
    opt_parallel(att_task, &j, n_heads);
}

/* the batched attention (kernel table entry attention_batch): one work item per head and block
 * of OPT_ATT_QB consecutive queries, in head-major order (a head's K/V rows are read by
 * consecutive items); each item has its own outputs and score rows, so nothing is reduced
 * across items and the thread count cannot change a result */
typedef struct {
    opt_head_fn head;
    opt_heads_fn block;
    float *out; const float *q; int T, n_heads, hd, group, nqb, span;
    const float *const *krow, *const *vrow;
    const int *lo, *hi;
} attb_job;

static void attb_task(void *ctx, int64_t c, int tid)
{
    const attb_job *j = ctx;
    const int h = (int)(c / j->nqb), t0 = (int)(c % j->nqb) * OPT_ATT_QB;
    const int nq = j->T - t0 < OPT_ATT_QB ? j->T - t0 : OPT_ATT_QB;
    const int64_t qs = (int64_t)j->n_heads * j->hd, at = t0 * qs + (int64_t)h * j->hd, off = (int64_t)(h / j->group) * j->hd;
    const int *lo = j->lo + t0, *hi = j->hi + t0;
    float *sc = opt_scratch(tid, (size_t)OPT_ATT_QB * j->span);
    int Lc = lo[0], Hc = hi[0];                /* the keys every query of the block sees */
    for (int t = 1; t < nq; t++) { if (lo[t] > Lc) Lc = lo[t]; if (hi[t] < Hc) Hc = hi[t]; }
    if (nq == OPT_ATT_QB && Lc <= Hc) {
        j->block(j->out + at, j->q + at, qs, j->hd, off, j->krow, j->vrow, lo, hi, Lc, Hc, sc, j->span);
        return;
    }
    for (int t = 0; t < nq; t++)
        j->head(j->out + at + t * qs, j->q + at + t * qs, j->hd, off, j->krow + lo[t], j->vrow + lo[t],
                hi[t] - lo[t] + 1, sc);
}

int opt_attention_batch(opt_head_fn head, opt_heads_fn block, float *out, const float *q, int T,
                        int n_heads, int hd, int group, const float *const *krow,
                        const float *const *vrow, const int *lo, const int *hi)
{
    int span = 1;
    for (int t = 0; t < T; t++) if (hi[t] - lo[t] + 1 > span) span = hi[t] - lo[t] + 1;
    if (opt_scratch_reserve((size_t)OPT_ATT_QB * span)) return -1;
    const int nqb = (T + OPT_ATT_QB - 1) / OPT_ATT_QB;
    attb_job j = { head, block, out, q, T, n_heads, hd, group, nqb, span, krow, vrow, lo, hi };
    opt_parallel(attb_task, &j, (int64_t)n_heads * nqb);
    return 0;
}

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

/* ---- the q8 mode's GEMV driver (opt.h, docs/NUMERICS.md "q8 mode") ------------------------ */

static int8_t *q8_x;          /* [T][cols] rounded activations; grow, never shrink */
static float *q8_d;           /* [T][cols / 32] their scales */
static int32_t *q8_g;         /* [T][cols / 4] sum of q over each group of 4 (for offsets) */
static int64_t q8_cap;        /* values of q8_x */

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

void opt_q8_quant_ref(const float *x, int64_t n, int8_t *q, float *d, int32_t *sg)
{
    g4_quant_act_q8(x, n, q, d);
    for (int64_t g = 0; g < n / 4; g++) sg[g] = q[4 * g] + q[4 * g + 1] + q[4 * g + 2] + q[4 * g + 3];
}

int opt_q8_gemv(opt_q8_rows_fn rows, opt_q8_quant_fn quant, float *Y, const g4_tensor *W, const float *X, int T)
{
    const int64_t cols = W->ne[0], rows_n = W->ne[1], nb = cols / 32;
    if (T >= G4_Q8_MAX_T || T < 1 || (W->type != G4_T_Q8_0 && W->type != G4_T_Q4_0) || cols % 32 || rows_n < 1)
        return -1;
    if ((int64_t)T * cols > q8_cap) {
        int8_t *nx = realloc(q8_x, (size_t)(T * cols));
        if (nx) q8_x = nx;
        float *nd = realloc(q8_d, sizeof(float) * (size_t)(T * nb));
        if (nd) q8_d = nd;
        int32_t *ng = realloc(q8_g, sizeof(int32_t) * (size_t)(T * cols / 4));
        if (ng) q8_g = ng;
        if (!nx || !nd || !ng) {                  /* as ref-q8: visible, never another rule */
            for (int64_t i = 0; i < (int64_t)T * rows_n; i++) Y[i] = NAN;
            return 0;
        }
        q8_cap = (int64_t)T * cols;
    }
    if (!quant) quant = opt_q8_quant_ref;
    for (int t = 0; t < T; t++)
        quant(X + (int64_t)t * cols, cols, q8_x + (int64_t)t * cols, q8_d + (int64_t)t * nb, q8_g + (int64_t)t * cols / 4);
    q8_job j = { { Y, X, T, W->data, rows_n, cols, g4_row_bytes(W->type, cols) }, W->type, nb, rows };
    opt_parallel(q8_task, &j, (rows_n + OPT_ROW_CHUNK - 1) / OPT_ROW_CHUNK);
    return 0;
}

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

/* opt.h - the inside of opt/: thread pool, matmul and attention drivers, ISA table getters.
 *
 * Not part of g4.h: only the opt/ sources, tests/test_kernels.c and tests/test_opt.c include
 * it. The stages see the opt tables only through `struct g4_kernels`.
 *
 * Rules every opt kernel follows (docs/ARCHITECTURE.md "Kernel table", docs/NUMERICS.md "opt"):
 *   - Thread-count invariance: work is cut into chunks whose size depends only on the shape
 *     (OPT_ROW_CHUNK output rows, one attention head, OPT_ELEM_CHUNK elements), never on the
 *     number of threads. Each output value is computed by exactly one thread, with code that
 *     does not depend on which thread runs it or on how chunks are handed out.
 *   - Tile invariance: a matmul output is computed by the same sequence of operations whatever
 *     the tile it lands in (R rows x N tokens, or a tail), so Y[t][r] depends only on W[r] and
 *     X[t]: a batched prefill gives the same bits as one token at a time.
 *   - Exact weights: quantized weights are formed in registers with exactly the values
 *     g4_dequant_row gives (same integers, scales and single rounding), so every matmul differs
 *     from ref only by the order of its fp32 sums (docs/NUMERICS.md "opt").
 *   - No allocation while decoding: scratch buffers grow only when a larger shape first appears.
 *   - The tables are called from one caller thread at a time (g4 never calls them
 *     concurrently); the pool's workers are internal.
 */
#ifndef G4_OPT_H
#define G4_OPT_H

#include "g4.h"

/* ---- thread pool (opt/threads.c) ---------------------------------------------------------- */

#define OPT_MAX_THREADS 256

/* fn(ctx, chunk, tid) for chunk = 0 .. n_chunks-1, spread over the pool; tid is the index
 * (0 = the caller) of the thread running it, for per-thread scratch only. Returns when all
 * chunks are done. Must not be called from inside fn. */
typedef void (*opt_task_fn)(void *ctx, int64_t chunk, int tid);
void opt_parallel(opt_task_fn fn, void *ctx, int64_t n_chunks);

/* n >= 1: use n threads (the caller + n-1 workers) from now on; n = 0: only query. Returns the
 * number in use. The first call (or the first opt_parallel) reads $G4_THREADS, else the number
 * of online CPUs. Workers are created once and kept; they never allocate. */
int opt_threads(int n);

/* per-thread float scratch of at least n values for thread tid (grows, never shrinks; the
 * caller grows it before the parallel region: opt_scratch_reserve). NULL on out of memory. */
float *opt_scratch(int tid, size_t n);
int opt_scratch_reserve(size_t n);   /* every thread in use gets >= n floats; 0 ok, -1 OOM */

/* benchmarks only: run fn(ctx) once on each of n new threads (the caller is one of them),
 * released together; returns the wall seconds until all finished, -1 on error */
double opt_time_threads(void (*fn)(void *ctx), void *ctx, int n);
/* the fma_peak entries: loop(&iters) runs `iters` iterations of `flops` FLOPs; it is timed
 * once on 1 thread (at least min_iters) to size a run of about `seconds`, then on `threads`
 * threads. GFLOP/s of all threads together, -1 on error. */
double opt_fma_peak(void (*loop)(void *ctx), double flops, int64_t min_iters, int threads, double seconds);

/* ---- matmul driver (opt/gemm.c) ------------------------------------------------------------ */

#define OPT_ROW_CHUNK 64    /* output rows per GEMV work item: fixed, independent of threads.
                             * Large enough that the first 4-row tile of an item (which its
                             * predecessor's prefetch did not cover: that went to the rows
                             * after it, often another thread's) is 1/16 of the item; measured
                             * 1.1-1.7x over 16 rows on the 12B shapes with 2 threads. */
#define OPT_ELEM_CHUNK 8192 /* elements per work item of elementwise kernels */

/* GEMV software prefetch. A GEMV tile streams 4 rows at once; the hardware prefetcher follows
 * each row only after a few misses, and a row of 3840 Q4_0 values is just 34 cache lines, so it
 * keeps restarting (measured: a 15360 x 3840 Q4_0 GEMV at half the speed of 3840 x 15360). Every
 * GEMV kernel therefore asks, as it reads a row at offset o, for the byte o of the row
 * OPT_PF_ROWS further (the next tile's), into L2 (locality 2: L1 is too small to hold a tile of
 * long f32 rows ahead). Beyond the matrix the request is dropped (prefetch never faults). */
#define OPT_PF_ROWS 4
#define opt_prefetch(p) __builtin_prefetch((const void *)(p), 0, 2)

typedef struct opt_mm {
    float *Y;                  /* [T][rows] */
    const float *X;            /* [T][cols] */
    int T;
    const uint8_t *W;          /* rows x row_bytes */
    int64_t rows, cols;
    size_t rb;                 /* bytes per weight row */
} opt_mm;

/* computes Y[t][r] for every t < T and r0 <= r < r1 */
typedef void (*opt_rows_fn)(const opt_mm *m, int64_t r0, int64_t r1);
typedef struct {
    opt_rows_fn f32, f16, bf16, q8_0, q4_0, q4_k, q6_k;  /* NULL: the ref entry is used */
} opt_isa;

/* Y = W X through `isa` (threads, chunks); types the ISA lacks go to the ref entry */
void opt_matmul(const opt_isa *isa, float *Y, const g4_tensor *W, const float *X, int T);
/* run fn over n elements in OPT_ELEM_CHUNK pieces on the pool: fn(ctx, start, count) */
void opt_parallel_elems(void (*fn)(void *ctx, int64_t i0, int64_t n), void *ctx, int64_t n);

/* ---- prefill GEMM driver (opt/gemm.c) -----------------------------------------------------
 * For T >= OPT_GEMM_MIN_T tokens: tokens in groups of up to OPT_GEMM_TG. For each group the
 * pool copies X into XT, tiles of `nt` tokens, each tile column-major:
 * XT[tile][k][j] = X[t][k] for the tile's tokens (zero padding up to a multiple of `vec`). Each
 * work item (OPT_GEMM_ROWS rows) walks the columns in panels of OPT_GEMM_KC: `form` writes the
 * panel's weights as fp32 (exactly g4_dequant_row's values) to P[rows][OPT_GEMM_KC], then
 * `panel` runs the ISA's micro-kernels over every token tile and row tile of it, continuing
 * the sums in C[rows][tgp] (first: start from 0). Every output must be one serial fp32 FMA
 * chain over k = 0 .. cols-1 (ref's column order): then the result depends on nothing but
 * W[r] and X[t] (not the tile, the group, T >= OPT_GEMM_MIN_T or the thread count). */
#define OPT_GEMM_MIN_T 8
#define OPT_GEMM_TG 256     /* tokens per group: XT holds at most cols x 256 floats (+ tile pad) */
#define OPT_GEMM_KC 256     /* columns per panel */
#define OPT_GEMM_ROWS 96    /* rows per work item: each token tile is read from L3 once per 96 rows */

typedef struct {
    int vec;                /* tokens per vector: tgp (tokens rounded up) is a multiple of it */
    int nt;                 /* tokens per XT tile, a multiple of vec */
    void (*form)(g4_type type, const uint8_t *W, size_t rb, int64_t r, int nr, int64_t k0, int64_t kc,
                 float *P);
    void (*panel)(const float *P, int nr, const float *XT, int64_t cols, int64_t k0, int64_t kc,
                  int64_t tgp, float *C, int first);
} opt_gemm_isa;

/* Y = W X by the GEMM; 0 when done, -1 when not applicable (T < OPT_GEMM_MIN_T, a type or shape
 * it does not take, or no memory for its scratch): then the caller runs its GEMV */
int opt_gemm(const opt_gemm_isa *g, float *Y, const g4_tensor *W, const float *X, int T);
extern const opt_gemm_isa opt_avx2_gemm;     /* opt/avx2.c (x86-64 only) */

/* ---- attention driver (opt/gemm.c): heads in parallel -------------------------------------- */
/* one head: out[hd] from q[hd] over n_keys rows (krow[j] + off, vrow[j] + off); scores [n_keys] */
typedef void (*opt_head_fn)(float *out, const float *q, int hd, int64_t off,
                            const float *const *krow, const float *const *vrow, int n_keys,
                            float *scores);
void opt_attention(opt_head_fn head, float *out, const float *q, int n_heads, int hd, int group,
                   const float *const *krow, const float *const *vrow, int n_keys, float *scores);
/* OPT_ATT_QB queries of one head (attention_batch): query t at q + t * qs (out likewise) over
 * rows lo[t] .. hi[t] (krow[j] + off, vrow[j] + off), every query seeing the rows Lc .. Hc
 * (Lc <= Hc); sc: OPT_ATT_QB rows of span floats (span >= every hi - lo + 1). Equal to the
 * ISA's opt_head_fn per query, bit for bit. */
typedef void (*opt_heads_fn)(float *out, const float *q, int64_t qs, int hd, int64_t off,
                             const float *const *krow, const float *const *vrow,
                             const int *lo, const int *hi, int Lc, int Hc, float *sc, int span);
#define OPT_ATT_QB 4        /* queries per work item of the batched attention (fixed: results
                             * never depend on it, each query's sums are its own) */
/* work items: (head, block of OPT_ATT_QB queries), each run by `block`, or by `head` query by
 * query when the block is short (the last) or its queries share no key; -1 when the scratch
 * cannot grow */
int opt_attention_batch(opt_head_fn head, opt_heads_fn block, float *out, const float *q, int T,
                        int n_heads, int hd, int group, const float *const *krow,
                        const float *const *vrow, const int *lo, const int *hi);

/* ---- the tables (each file defines its getter on every architecture) ----------------------- *
 * The getter returns the table when this CPU can run it, NULL otherwise (and always NULL on a
 * foreign architecture, where the file compiles to the getter alone). */
const g4_kernels *opt_avx2_table(void);
const g4_kernels *opt_avx512_table(void);    /* the avx2 table + an AVX-512F prefill GEMM */
/* the q8 mode (opt-in, docs/NUMERICS.md "q8 mode"): the same tables with int8 activations for
 * the GEMV of Q8_0/Q4_0 weights, bit-identical to "ref-q8" */
const g4_kernels *opt_avx2_q8_table(void);
const g4_kernels *opt_avx512_q8_table(void);
const g4_kernels *opt_neon_q8_table(void);      /* vdotq_s32 when HWCAP has dotprod */
/* the q8 GEMV driver (opt/gemm.c): rounds the T tokens' activations (g4_quant_act_q8, with
 * sg[8 b + g] = the sum of q over group g (values 4g .. 4g+3) of block b, for kernels that dot
 * unsigned bytes and take an offset back off) and runs `rows` over 4-row groups on the pool.
 * rows: the outputs of rows w[0..3] (repeats allowed) for one token, exactly ref-q8's
 * (g4_dot_row_q8); it prefetches the bytes `pf` ahead of those it reads (the next 4 rows).
 * Returns 0 when done, -1 when not applicable (T >= G4_Q8_MAX_T, another weight type): then
 * run the table's own matmul. opt_avx2_q8_gemv: with the AVX2 rows (vpmaddubsw). */
typedef void (*opt_q8_rows_fn)(int ty, const uint8_t *const w[4], const int8_t *xq, const float *xd,
                               const int32_t *sg, int64_t nb, size_t pf, float out[4]);
/* the rounding of one token: q, d exactly g4_quant_act_q8's, and sg[n / 4] the group sums */
typedef void (*opt_q8_quant_fn)(const float *x, int64_t n, int8_t *q, float *d, int32_t *sg);
void opt_q8_quant_ref(const float *x, int64_t n, int8_t *q, float *d, int32_t *sg);   /* scalar */
/* the vector ones, getters like the tables' (NULL when this CPU cannot run it, always NULL on a
 * foreign architecture); opt_q8_quant_isa (dispatch.c): the first this CPU has, for tests */
opt_q8_quant_fn opt_avx2_q8_quant_get(void);
opt_q8_quant_fn opt_neon_q8_quant_get(void);
opt_q8_quant_fn opt_q8_quant_isa(void);
/* prep (optional): puts one token's rounded activations xq[32 nb] and group sums sg[8 nb], in
 * place, in the order and form the ISA's rows kernel reads (work done once per token instead
 * of once per 4 rows); the values the kernel computes from them must stay ref-q8's. */
typedef void (*opt_q8_prep_fn)(int ty, int8_t *xq, int32_t *sg, int64_t nb);
/* quant NULL: opt_q8_quant_ref; prep NULL: the natural order above */
int opt_q8_gemv(opt_q8_rows_fn rows, opt_q8_quant_fn quant, opt_q8_prep_fn prep, float *Y, const g4_tensor *W,
                const float *X, int T);
int opt_avx2_q8_gemv(float *Y, const g4_tensor *W, const float *X, int T);
#if defined(__x86_64__)
void opt_avx2_q8_quant(const float *x, int64_t n, int8_t *q, float *d, int32_t *sg);  /* for avx512.c */
extern float opt_f16_lut[65536];   /* opt/avx2.c: every f16 bit pattern as fp32, once the avx2 getter ran */
#endif
const g4_kernels *opt_neon_table(void);      /* armv8.0 Advanced SIMD */

/* ---- the q8 mode's prefill GEMM driver (opt/gemm.c) ----------------------------------------
 * For T >= G4_Q8_MAX_T tokens: ref-q8's serial rule (g4_dot_row_q8_serial: an int32 sum per
 * block, acc = fma((float)S, dw * dx, acc) over blocks in order). The driver rounds all T tokens
 * (the ISA's quant), cuts the rows into work items of OPT_Q8_GEMM_ROWS and walks each item's
 * blocks in chunks of OPT_Q8_GEMM_KB: it forms the chunk's panel (weights read in place from the
 * mmap), then the ISA's chunk kernel runs every token over it, continuing the sums. Two layouts:
 *  - lanes = rows (form NULL, the portable panel, int8 bytes): `lanes` rows side by side; for
 *    sub-panel s, block b, group g (values 4g .. 4g+3) the 4 weight bytes of each lane's row are
 *    adjacent, so an indexed int8 dot (vdotq_laneq_s32) against the token's group adds 4
 *    products to every lane; 8 steps leave each lane its block's int32 sum, scaled once. The
 *    sums continue in Y (first: from 0).
 *  - lanes = tokens (xt_nt > 0 and the ISA's form): each row's blocks as 32 bytes, the
 *    activations tiled xt_nt tokens side by side by the driver; a row's 4 bytes broadcast
 *    against a tile (vpdpbusd, vpmaddubsw+vpmaddwd). Bytes may be unsigned (u_q4, u_q8: w + 8,
 *    w + 128); the tile's xts then starts each sum at -off x the token's block sum. The sums
 *    continue in C between chunks; the driver writes Y from C after the item's last chunk. */
#define OPT_Q8_GEMM_ROWS 64     /* rows per work item (a multiple of every ISA's lanes) */
#define OPT_Q8_GEMM_KB 64       /* blocks per chunk: a panel of 64 rows x 2048 bytes (128 KiB, L2) */
#define OPT_Q8_GEMM_SCRATCH ((size_t)OPT_Q8_GEMM_ROWS * OPT_Q8_GEMM_KB * 9)   /* floats: PD, then P */
typedef struct {
    g4_type ty;                 /* Q8_0 or Q4_0 */
    const uint8_t *P;           /* the panel: [nsub][kb][8][lanes][4] int8 bytes, nsub = ceil(nr / lanes)
                                 * (lanes = rows), or the ISA's form's layout */
    const float *PD;            /* [nsub][kb][lanes] weight scales (0 for rows past nr), or the form's */
    int nr, kb, lanes;          /* rows of the item, blocks of the chunk, rows per sub-panel */
    int64_t b0;                 /* the chunk's first block */
    const int8_t *xq;           /* [T][cols] the tokens' int8 activations */
    const float *xd;            /* [T][nb] their scales */
    int64_t cols, nb;
    int T;
    float *Y;                   /* [T][rows]: outputs r0 .. r0 + nr - 1 of every token */
    int64_t rows, r0;
    int first;                  /* 1: the sums start from 0, else from Y (or C) */
    /* ISAs with xt_nt > 0 (lanes = tokens): the activations tiled once per call, nt tokens side
     * by side, and a buffer for the item's sums (the driver writes Y from it after the last chunk) */
    int nt, ntile;              /* tokens per tile (xt_nt), tiles (ceil(T / nt); padding tokens are 0) */
    const int32_t *xt;          /* [ntile][nb][8][nt] each token's 4 bytes of group g (as an int32) */
    const float *xtd;           /* [ntile][nb][nt] their scales */
    const int32_t *xts;         /* [ntile][nb][nt] -off x their block sums (where the sums start) */
    float *C;                   /* [OPT_Q8_GEMM_ROWS][ntile * nt] the item's sums between chunks */
} opt_q8_chunk;
typedef struct {
    int lanes;                  /* the portable panel's rows per sub-panel (the int32 lanes) */
    int u_q4, u_q8;             /* with a form: 1 = that type's bytes unsigned (w + 8, w + 128), 0 = int8 */
    void (*chunk)(const opt_q8_chunk *c);   /* for every t < T, i < nr: Y[t][r0 + i] by the rule */
    int xt_nt;                  /* 0, or the tokens per activation tile (above) */
    /* NULL: the portable panel (int8, lanes = rows); else the ISA's own layout in P (<=
     * OPT_Q8_GEMM_ROWS x OPT_Q8_GEMM_KB x 32 bytes) and PD (<= OPT_Q8_GEMM_ROWS x OPT_Q8_GEMM_KB
     * floats), with bytes unsigned when uns */
    void (*form)(g4_type ty, const uint8_t *W, size_t rb, int64_t r0, int nr, int64_t b0, int kb,
                 int uns, uint8_t *P, float *PD);
} opt_q8_gemm_isa;
/* 0 done, -1 not applicable (T < G4_Q8_MAX_T, another type): then the caller's other matmul */
int opt_q8_gemm(const opt_q8_gemm_isa *g, opt_q8_quant_fn quant, float *Y, const g4_tensor *W, const float *X, int T);
void opt_q8_chunk_c(const opt_q8_chunk *c);       /* the chunk kernel in plain C */
extern const opt_q8_gemm_isa opt_q8_gemm_c;       /* { 4 lanes, int8, opt_q8_chunk_c } */
#if defined(__x86_64__)
/* opt/avx2.c, for avx512.c: the row-wise panel former (lanes = tokens) and the avx2 q8 GEMM */
void opt_avx2_q8_form(g4_type ty, const uint8_t *W, size_t rb, int64_t r0, int nr, int64_t b0, int kb,
                      int uns, uint8_t *P, float *PD);
const opt_q8_gemm_isa *opt_avx2_q8_gemm_get(void);
#endif

/* every table g4 knows, best first (dispatch.c): name and getter */
typedef struct {
    const char *name;
    const g4_kernels *(*get)(void);
    int opt_in;            /* 1: only when asked for by name (the q8 mode), never picked by itself */
} opt_entry;
extern const opt_entry opt_tables[];
extern const int opt_n_tables;

#endif

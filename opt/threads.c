/* threads.c - the one persistent thread pool of the opt kernels.
 *
 * What it does: runs fn(ctx, chunk, tid) for chunk = 0 .. n-1 on the caller plus (threads - 1)
 * workers. Chunks are handed out by an atomic counter, so who runs which chunk varies from run to
 * run, but the chunks themselves are cut by the caller from the shape alone (opt.h): the results
 * never depend on the thread count or on the scheduling.
 *
 * Lifetime: the workers are created the first time more than one thread is used and live until
 * the process exits. Between jobs a worker spins briefly on the job counter (a decode step starts
 * hundreds of small jobs; waking a sleeping thread costs tens of microseconds), then sleeps on a
 * condition variable. Asking for fewer threads later leaves the extra workers asleep.
 *
 * Thread count: opt_threads(n), or on first use $G4_THREADS (the CLI's -t sets it), else the
 * number of online CPUs; capped at OPT_MAX_THREADS.
 *
 * Per-thread scratch (opt_scratch): one float buffer per thread index, grown by the caller
 * before a job when a larger size first appears (so nothing allocates inside a job).
 */
#include "opt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ITERS 200000      /* ~100 us of polling before a worker sleeps */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    int n;                     /* threads in use, including the caller; 0 = not initialized */
    int n_workers;             /* workers created (tid 1 .. n_workers) */
    pthread_t th[OPT_MAX_THREADS];
    /* the current job */
    opt_task_fn fn; void *ctx; int64_t n_chunks;
    atomic_llong next;         /* next chunk to hand out */
    atomic_int pending;        /* workers of the current job not finished yet */
    /* the published job, one word: generation << 16 | threads taking part. One word, because a
     * worker that skips a job must never pair that job's generation with the NEXT job's thread
     * count: it would run the next job, leave `pending` once too often, release the caller
     * early and make the last decrement miss zero (a hang). Only the caller writes it. */
    atomic_ullong job;
    int sleepers, caller_sleeping;
    unsigned long long start_job[OPT_MAX_THREADS]; /* `job` when a worker was created */
    /* per-thread scratch */
    float *scratch[OPT_MAX_THREADS];
    size_t scratch_n[OPT_MAX_THREADS];
} P = { .mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER };

static void run_chunks(int tid)
{
    for (;;) {
        int64_t c = atomic_fetch_add(&P.next, 1);
        if (c >= P.n_chunks) break;
        P.fn(P.ctx, c, tid);
    }
}

static void *worker(void *arg)
{
    const int tid = (int)(intptr_t)arg;
    unsigned long long seen = P.start_job[tid]; /* not `job` now: one may already be published */
    for (;;) {
        unsigned long long g = seen;
        for (int i = 0; i < SPIN_ITERS && (g = atomic_load(&P.job)) == seen; i++) {}
        if (g == seen) {
            pthread_mutex_lock(&P.mu);
            while ((g = atomic_load(&P.job)) == seen) {
                P.sleepers++;
                pthread_cond_wait(&P.wake, &P.mu);
                P.sleepers--;
            }
            pthread_mutex_unlock(&P.mu);
        }
        seen = g;
        if (tid >= (int)(g & 0xffff)) continue;      /* not taking part in this job */
        run_chunks(tid);
        if (atomic_fetch_sub(&P.pending, 1) == 1) {  /* the last one out tells the caller */
            pthread_mutex_lock(&P.mu);
            if (P.caller_sleeping) pthread_cond_signal(&P.done);
            pthread_mutex_unlock(&P.mu);
        }
    }
    return NULL;
}

static int default_threads(void)
{
    const char *e = getenv("G4_THREADS");
    long n = 0;
    if (e && *e) n = strtol(e, NULL, 10);
    if (n < 1) n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > OPT_MAX_THREADS) n = OPT_MAX_THREADS;
    return (int)n;
}

int opt_threads(int n)
{
    if (P.n == 0) P.n = default_threads();
    if (n >= 1) P.n = n > OPT_MAX_THREADS ? OPT_MAX_THREADS : n;
    return P.n;
}

/* create the workers up to n - 1 (once each); on failure use fewer threads */
static void ensure_workers(int n)
{
    while (P.n_workers < n - 1) {
        int tid = P.n_workers + 1;
        P.start_job[tid] = atomic_load(&P.job);
        if (pthread_create(&P.th[tid], NULL, worker, (void *)(intptr_t)tid) != 0) {
            P.n = P.n_workers + 1;
            return;
        }
        pthread_detach(P.th[tid]);
        P.n_workers++;
    }
}

void opt_parallel(opt_task_fn fn, void *ctx, int64_t n_chunks)
{
    if (n_chunks <= 0) return;
    int n = opt_threads(0);
    if (n > n_chunks) n = (int)n_chunks;
    if (n > 1) ensure_workers(n);
    if (n > P.n_workers + 1) n = P.n_workers + 1;
    if (n <= 1) {
        for (int64_t c = 0; c < n_chunks; c++) fn(ctx, c, 0);
        return;
    }
    P.fn = fn; P.ctx = ctx; P.n_chunks = n_chunks;
    atomic_store(&P.next, 0);
    atomic_store(&P.pending, n - 1);
    atomic_store(&P.job, ((atomic_load(&P.job) >> 16) + 1) << 16 | (unsigned)n);  /* publish */
    pthread_mutex_lock(&P.mu);
    if (P.sleepers) pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    run_chunks(0);
    for (int i = 0; i < SPIN_ITERS && atomic_load(&P.pending) != 0; i++) {}
    if (atomic_load(&P.pending) != 0) {
        pthread_mutex_lock(&P.mu);
        P.caller_sleeping = 1;
        while (atomic_load(&P.pending) != 0) pthread_cond_wait(&P.done, &P.mu);
        P.caller_sleeping = 0;
        pthread_mutex_unlock(&P.mu);
    }
}

float *opt_scratch(int tid, size_t n)
{
    if (tid < 0 || tid >= OPT_MAX_THREADS || P.scratch_n[tid] < n) return NULL;
    return P.scratch[tid];
}

int opt_scratch_reserve(size_t n)
{
    int nt = opt_threads(0);
    for (int t = 0; t < nt; t++) {
        if (P.scratch_n[t] >= n) continue;
        size_t cap = P.scratch_n[t] ? P.scratch_n[t] : 4096;
        while (cap < n) cap *= 2;                    /* doubling: rare growth as context grows */
        float *p = realloc(P.scratch[t], cap * sizeof(float));
        if (!p) return -1;
        P.scratch[t] = p;
        P.scratch_n[t] = cap;
    }
    return 0;
}

/* ---- benchmark helper: fn(ctx) once on each of n fresh threads, started together -------- */

typedef struct { void (*fn)(void *); void *ctx; atomic_int go, ready; } tb_arg;

static void *tb_main(void *p)
{
    tb_arg *a = p;
    atomic_fetch_add(&a->ready, 1);
    while (!atomic_load(&a->go)) {}
    a->fn(a->ctx);
    return NULL;
}

double opt_time_threads(void (*fn)(void *ctx), void *ctx, int n)
{
    if (n < 1) n = 1;
    if (n > OPT_MAX_THREADS) n = OPT_MAX_THREADS;
    pthread_t th[OPT_MAX_THREADS];
    tb_arg a = { .fn = fn, .ctx = ctx };
    atomic_init(&a.go, 0);
    atomic_init(&a.ready, 0);
    int started = 0;
    for (int i = 1; i < n; i++) {
        if (pthread_create(&th[i], NULL, tb_main, &a)) break;
        started++;
    }
    while (atomic_load(&a.ready) < started) {}
    if (started != n - 1) {           /* could not start them all: let them run, then fail */
        atomic_store(&a.go, 1);
        for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
        return -1;
    }
    double t0 = g4_now();
    atomic_store(&a.go, 1);
    fn(ctx);
    for (int i = 1; i < n; i++) pthread_join(th[i], NULL);
    return g4_now() - t0;
}

double opt_fma_peak(void (*loop)(void *ctx), double flops, int64_t min_iters, int threads, double seconds)
{
    int64_t iters = min_iters;
    double t = opt_time_threads(loop, &iters, 1);
    if (t <= 0) return -1;
    iters = (int64_t)(iters * (seconds / t));
    if (iters < min_iters) iters = min_iters;
    t = opt_time_threads(loop, &iters, threads);
    return t > 0 ? (double)threads * (double)iters * flops / t / 1e9 : -1;
}

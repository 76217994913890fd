/* test_threads.c - the opt thread pool under stress: 200000 tiny jobs while the thread count
 * switches between 1, 2 and 3 every job (what the thread-invariance tests do, thousands of
 * times over). Every chunk must run exactly once per job, and the whole run must finish: a
 * watchdog alarm turns a hang into a failure within 120 s instead of the runner's 20 minutes.
 * It catches the race fixed in opt/threads.c (a worker pairing one job's generation with the
 * next job's thread count), which hung the old pool within the first 20000 jobs. */
#include "g4.h"
#include "harness.h"
#include "../opt/opt.h"

#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

static atomic_long hits;
static void task(void *ctx, int64_t c, int tid) { (void)ctx; (void)c; (void)tid; atomic_fetch_add(&hits, 1); }

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL test_pool_stress (hung: the watchdog fired after 120 s)\n";
    ssize_t r = write(1, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

static void test_pool_stress(void)
{
    long expect = 0, bad = 0;
    for (long i = 0; i < 200000; i++) {
        opt_threads(1 + (int)(i % 3));
        int nc = 1 + (int)(i % 5);
        opt_parallel(task, NULL, nc);
        expect += nc;
        if (atomic_load(&hits) != expect && bad++ == 0)
            printf("    job %ld: %ld chunks run, want %ld\n", i, atomic_load(&hits), expect);
    }
    printf("    200000 jobs, %ld chunks, %ld jobs miscounted\n", expect, bad);
    CHECK(bad == 0, "chunks run more or less than once");
    opt_threads(0);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(120);
    RUN(test_pool_stress);
    return h_finish();
}

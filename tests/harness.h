/* harness.h - the tiny test harness every tests/test_*.c uses.
 *
 * A test file defines static void functions and runs them with RUN(fn). CHECK records a failed
 * condition (with a message) and lets the test go on; a test passes when none of its CHECKs
 * failed. Each test prints "PASS name" or "FAIL name"; tests/run.sh counts those lines across all
 * binaries. The binary exits non-zero if any test failed, so it fails on its own too.
 */
#ifndef G4_HARNESS_H
#define G4_HARNESS_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int h_cur_fail, h_npass, h_nfail;

#define CHECK(cond, ...) do { if (!(cond)) { h_cur_fail++; \
    printf("    check failed (%s:%d): ", __FILE__, __LINE__); printf(__VA_ARGS__); \
    printf("\n"); fflush(stdout); } } while (0)

#define RUN(fn) do { h_cur_fail = 0; fn(); \
    printf("%s %s\n", h_cur_fail ? "FAIL" : "PASS", #fn); fflush(stdout); \
    if (h_cur_fail) h_nfail++; else h_npass++; } while (0)

static inline int h_finish(void) {
    printf("# %d passed, %d failed\n", h_npass, h_nfail);
    return h_nfail ? 1 : 0;
}

/* Compare two float arrays: max |a-b| and whether any value is NaN/Inf (which always fails). */
static inline double h_maxdiff(const float *a, const float *b, long n, int *nonfinite) {
    double m = 0; *nonfinite = 0;
    for (long i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) { *nonfinite = 1; continue; }
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m) m = d;
    }
    return m;
}
#endif

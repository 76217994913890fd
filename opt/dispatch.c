/* dispatch.c - chooses the kernel table at run time.
 *
 * Every ISA table starts from the complete ref table and overrides the entries it implements
 * (issue 5 adds avx2 and neon). Order of choice: the `force` argument (--kernels), then
 * $G4_KERNELS, then the best table this CPU supports.
 */
#include "g4.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    const g4_kernels *table;
    int (*cpu_has)(void);      /* 1 if this CPU can run the table */
} g4_isa;

static int always(void) { return 1; }

/* best first */
static const g4_isa isas[] = {
    { "ref", &g4_kernels_ref, always },
};

const g4_kernels *g4_kernels_pick(const char *force, g4_err *err)
{
    if (!force) force = getenv("G4_KERNELS");
    int n = (int)(sizeof isas / sizeof isas[0]);
    if (force && *force) {
        for (int i = 0; i < n; i++) {
            if (strcmp(force, isas[i].name) != 0) continue;
            if (!isas[i].cpu_has()) {
                g4_fail(err, "kernel table '%s' is not supported by this CPU", force);
                return NULL;
            }
            return isas[i].table;
        }
        g4_fail(err, "unknown kernel table '%s' (known: ref)", force);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (isas[i].cpu_has()) return isas[i].table;
    return &g4_kernels_ref;
}

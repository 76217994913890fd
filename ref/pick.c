/* pick.c - kernel-table choice for the ref-only build (build/g4-ref). The full build links
 * opt/dispatch.c instead, which knows the ISA tables. Only "ref" exists here. */
#include "g4.h"

#include <stdlib.h>
#include <string.h>

const g4_kernels *g4_kernels_pick(const char *force, g4_err *err)
{
    if (!force) force = getenv("G4_KERNELS");
    if (force && *force && strcmp(force, "ref") != 0) {
        g4_fail(err, "kernel table '%s' is not in this build (g4-ref has only 'ref')", force);
        return NULL;
    }
    return &g4_kernels_ref;
}

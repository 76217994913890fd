/* pick.c - kernel-table choice for the ref-only build (build/g4-ref). The full build links
 * opt/dispatch.c instead, which knows the ISA tables. Only "ref" (and the opt-in
 * "ref-q8") exist here. */
#include "g4.h"

#include <stdlib.h>
#include <string.h>

const g4_kernels *g4_kernels_pick(const char *force, g4_err *err)
{
    if (!force) force = getenv("G4_KERNELS");
    if (force && *force && strcmp(force, "ref") != 0) {
        if (strcmp(force, "ref-q8") == 0) return &g4_kernels_ref_q8;
        g4_fail(err, "kernel table '%s' is not in this build (g4-ref has only 'ref' and 'ref-q8')", force);
        return NULL;
    }
    return &g4_kernels_ref;
}

/* dispatch.c - chooses the kernel table at run time.
 *
 * Every ISA table starts from the complete ref table's behaviour and overrides the entries it
 * implements (opt/avx2.c, opt/neon.c; opt/avx512.c starts from the avx2 table). Each ISA file exports a getter that returns its table
 * only when this CPU can run it (cpuid on x86; NEON is baseline on aarch64) and NULL
 * otherwise, on every architecture, so this file needs no #if.
 *
 * Order of choice: the `force` argument (--kernels), then $G4_KERNELS, then the first table of
 * the list below (best first) that this CPU supports. A forced name that is unknown or not
 * supported here is an error, never a silent fallback.
 */
#include "opt.h"

#include <stdlib.h>
#include <string.h>

static const g4_kernels *ref_table(void) { return &g4_kernels_ref; }

static const g4_kernels *ref_q8_table(void) { return &g4_kernels_ref_q8; }

/* best first; the opt-in q8 mode tables last (chosen only by name) */
const opt_entry opt_tables[] = {
    { "avx512", opt_avx512_table, 0 },
    { "avx2", opt_avx2_table, 0 },
    { "neon", opt_neon_table, 0 },
    { "ref", ref_table, 0 },
    { "avx512-q8", opt_avx512_q8_table, 1 },
    { "avx2-q8", opt_avx2_q8_table, 1 },
    { "neon-q8", opt_neon_q8_table, 1 },
    { "ref-q8", ref_q8_table, 1 },
};
const int opt_n_tables = (int)(sizeof opt_tables / sizeof opt_tables[0]);

opt_q8_quant_fn opt_q8_quant_isa(void)
{
    opt_q8_quant_fn f = opt_avx2_q8_quant_get();
    return f ? f : opt_neon_q8_quant_get();
}

const g4_kernels *g4_kernels_pick(const char *force, g4_err *err)
{
    if (!force) force = getenv("G4_KERNELS");
    if (force && *force) {
        for (int i = 0; i < opt_n_tables; i++) {
            if (strcmp(force, opt_tables[i].name) != 0) continue;
            const g4_kernels *k = opt_tables[i].get();
            if (!k) {
                g4_fail(err, "kernel table '%s' is not supported by this CPU", force);
                return NULL;
            }
            return k;
        }
        g4_fail(err, "unknown kernel table '%s' (known: avx512, avx2, neon, ref, avx512-q8, avx2-q8, neon-q8, ref-q8)", force);
        return NULL;
    }
    for (int i = 0; i < opt_n_tables; i++) {
        if (opt_tables[i].opt_in) continue;
        const g4_kernels *k = opt_tables[i].get();
        if (k) return k;
    }
    return &g4_kernels_ref;
}

/* taps.h - collect the decoder's tap calls (g4_state.tap) into named buffers for the golden
 * tests: "embed", "layer_out.3", "final_norm", ... (the names of golden/README.md).
 *
 *   taps tp = { .nb = 0 };
 *   s.tap = taps_on; s.tap_ctx = &tp;   ... g4_forward ...
 *   const tapbuf *b = taps_get(&tp, "layer_out.3");   (b->x is [b->T][b->n])
 *   taps_clear(&tp);
 */
#ifndef G4_TAPS_H
#define G4_TAPS_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAPS_MAX 64
typedef struct { char name[32]; float *x; int T, n; } tapbuf;
typedef struct { tapbuf b[TAPS_MAX]; int nb; } taps;

static inline void taps_on(void *ctx, const char *name, int layer, const float *x, int T, int n)
{
    taps *tp = ctx;
    if (tp->nb == TAPS_MAX) return;
    tapbuf *b = &tp->b[tp->nb++];
    if (layer >= 0) snprintf(b->name, sizeof b->name, "%s.%d", name, layer);
    else snprintf(b->name, sizeof b->name, "%s", name);
    b->x = malloc((size_t)T * n * sizeof(float));
    if (b->x) memcpy(b->x, x, (size_t)T * n * sizeof(float));
    b->T = T; b->n = n;
}

static inline void taps_clear(taps *tp)
{
    for (int i = 0; i < tp->nb; i++) free(tp->b[i].x);
    tp->nb = 0;
}

static inline const tapbuf *taps_get(const taps *tp, const char *name)
{
    for (int i = 0; i < tp->nb; i++) if (strcmp(tp->b[i].name, name) == 0) return &tp->b[i];
    return NULL;
}
#endif

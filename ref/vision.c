/* vision.c - the vision embedder: 48x48-pixel patches -> rows spliced into the token sequence.
 *
 * Stage: vision embedder (spec 2.3; HF Gemma4UnifiedVisionEmbedder + its
 *        Gemma4UnifiedMultimodalEmbedder). There is no vision transformer: each patch is embedded
 *        on its own, plus a learned position for its place in the grid.
 * Input:  patches [n][6912]: one 48x48 RGB block per row, values pixel/255, flattened HWC
 *         (index (row*48 + col)*3 + channel; ref/image.c makes them);
 *         pos [n][2]: (x = block column, y = block row) of each patch, 0..mm_posemb-1.
 * Output: out [n][d_model]: the rows that replace the n <|image|> tokens, NOT scaled by
 *         sqrt(d_model) (spec 7.7).
 *
 * Per patch p (D = mm_dim, 3840 in the 12b, 96 in tiny; P = mm_posemb rows, 1120 / 64):
 *     p  = bf16(p)                                  always: the checkpoint dtype is bf16 and HF
 *                                                   casts pixels to it first (spec 2.1 step 4)
 *     h1 = LayerNorm_6912(p; patch_ln1)             [6912]   eps 1e-5, weight and bias
 *     h2 = patch_dense h1 + patch_b                 [D]      weight rows D x 6912 cols (HWC)
 *     h3 = LayerNorm_D(h2; patch_ln2)               [D]
 *     h4 = h3 + (pos[x][0] + pos[y][1])             [D]      x (column) table, y (row) table;
 *                                                            the two rows are summed first
 *     h5 = LayerNorm_D(h4; pos_norm)                [D]
 *     h6 = RMSNorm_D(h5) without weight             [D]      eps = the text eps (1e-6)
 *     e  = vis_proj h6                              [d_model] weight rows d_model x D cols
 * LayerNorms are PyTorch's (biased variance, eps inside the root; eps 1e-5, PyTorch's default,
 * NOT the 1e-6 of the RMSNorms: spec 7.13).
 *
 * bf16 mode (bf16 = 1) follows HF's bf16 model, where every module returns a bf16 tensor: each
 * LayerNorm, the dense layer (fp32 sum + bias, then ONE rounding: checked against torch's CPU
 * linear), the position sum, the add, the RMSNorm and the projection round to bf16. With
 * bf16 = 0 everything after the pixel cast stays fp32.
 *
 * Only the kernel table is used for the math (k->layernorm, k->rmsnorm, k->matmul). Patches go
 * through in chunks of G4_VISION_CHUNK rows so that the scratch stays small (~1.8 MB).
 */
#include "g4.h"

#include <stdlib.h>
#include <string.h>

#define G4_VISION_LN_EPS 1e-5f   /* nn.LayerNorm default (spec 2.3 steps 1, 3, 5) */
#define G4_VISION_CHUNK 64       /* patches per matmul batch */

static void round_rows(float *x, int64_t n, int bf16)
{
    if (bf16) for (int64_t i = 0; i < n; i++) x[i] = g4_round_bf16(x[i]);
}

int g4_vision_embed(const g4_model *m, const g4_kernels *k, const float *patches, const int *pos,
                    int n, float *out, int bf16, g4_err *err)
{
    const g4_mm *v = &m->mm;
    const g4_config *c = &m->cfg;
    if (!v->has_vision)
        return g4_fail(err, "%s: the model has no vision embedder (use a checkpoint with vision weights "
                       "or load a GGUF mmproj)", m->source);
    if (n < 0) return g4_fail(err, "vision: negative patch count %d", n);
    const int D = c->mm_dim, P = c->mm_posemb, d = c->d_model;

    /* position ids: (x, y) inside the table, else one error naming the grid */
    int maxx = -1, maxy = -1;
    for (int i = 0; i < n; i++) {
        const int x = pos[2 * i], y = pos[2 * i + 1];
        if (x < 0 || y < 0)
            return g4_fail(err, "vision: patch %d has position (%d, %d); padding patches (-1, -1) are not "
                           "embedded, and positions are never negative", i, x, y);
        if (x > maxx) maxx = x;
        if (y > maxy) maxy = y;
    }
    if (maxx >= P || maxy >= P)
        return g4_fail(err, "vision: image grid of %d x %d patches exceeds the position table (%d)",
                       maxx + 1, maxy + 1, P);
    if (n == 0) return 0;

    const int B = n < G4_VISION_CHUNK ? n : G4_VISION_CHUNK;
    float *px = malloc((size_t)B * G4_PATCH_DIM * sizeof(float));   /* [B][6912] pixels, then h1 */
    float *h = malloc((size_t)B * D * sizeof(float));                 /* [B][D] h2 .. h6 */
    float *pe = malloc((size_t)D * sizeof(float));                    /* [D] one position row */
    if (!px || !h || !pe) {
        free(px); free(h); free(pe);
        return g4_fail(err, "vision: out of memory for %d patches", B);
    }

    for (int t0 = 0; t0 < n; t0 += B) {
        const int T = n - t0 < B ? n - t0 : B;
        /* step 0: pixels to bf16 (the checkpoint dtype), then LayerNorm_6912 */
        for (int64_t i = 0; i < (int64_t)T * G4_PATCH_DIM; i++)
            px[i] = g4_round_bf16(patches[(int64_t)t0 * G4_PATCH_DIM + i]);
        for (int t = 0; t < T; t++) {
            float *r = px + (int64_t)t * G4_PATCH_DIM;
            k->layernorm(r, r, v->ln1_w, v->ln1_b, G4_PATCH_DIM, G4_VISION_LN_EPS);
        }
        round_rows(px, (int64_t)T * G4_PATCH_DIM, bf16);
        /* step 2: dense 6912 -> D, bias added before the (single) bf16 rounding */
        k->matmul(h, &v->patch_dense, px, T);
        for (int t = 0; t < T; t++) {
            float *r = h + (int64_t)t * D;
            for (int i = 0; i < D; i++) r[i] += v->patch_b[i];
        }
        round_rows(h, (int64_t)T * D, bf16);
        for (int t = 0; t < T; t++) {
            float *r = h + (int64_t)t * D;
            const int x = pos[2 * (t0 + t)], y = pos[2 * (t0 + t) + 1];
            /* step 3: LayerNorm_D */
            k->layernorm(r, r, v->ln2_w, v->ln2_b, D, G4_VISION_LN_EPS);
            round_rows(r, D, bf16);
            /* step 4: + (x row of table 0 + y row of table 1), summed first as HF does */
            const float *px_row = v->pos + ((int64_t)x * 2 + 0) * D;
            const float *py_row = v->pos + ((int64_t)y * 2 + 1) * D;
            for (int i = 0; i < D; i++) pe[i] = px_row[i] + py_row[i];
            round_rows(pe, D, bf16);
            for (int i = 0; i < D; i++) r[i] += pe[i];
            round_rows(r, D, bf16);
            /* step 5: pos_norm; step 6: weightless RMSNorm (the multimodal embedder's
             * pre-projection norm, fp32 inside, one rounding) */
            k->layernorm(r, r, v->pos_norm_w, v->pos_norm_b, D, G4_VISION_LN_EPS);
            round_rows(r, D, bf16);
            k->rmsnorm(r, r, NULL, D, c->eps);
            round_rows(r, D, bf16);
        }
        /* step 7: projection D -> d_model (no bias, no scaling) */
        float *o = out + (int64_t)t0 * d;
        k->matmul(o, &v->vis_proj, h, T);
        round_rows(o, (int64_t)T * d, bf16);
    }
    free(px); free(h); free(pe);
    return 0;
}

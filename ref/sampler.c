/* sampler.c - logits -> next token id.
 *
 * Stage: sampler (spec 1.3 step 6 for suppressed ids; generation_config defaults in spec 6).
 * Input:  logits [vocab] (after the soft-cap), the suppressed ids (258883 <audio|> and
 *         258882 <image|> for the real model: they get -inf before anything else).
 * Output: one token id.
 * temperature 0 = greedy argmax (lowest id wins a tie). Otherwise, in this order: divide by the
 * temperature, keep the top_k largest (0 = all), softmax, keep the smallest prefix (by
 * descending probability) whose mass reaches top_p, renormalise, draw with a xorshift64*
 * generator seeded from --seed. Same seed, same logits -> same token, on every machine.
 */
#include "g4.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int g4_sampler_init(g4_sampler *s, int vocab, float temperature, int top_k, float top_p, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->vocab = vocab; s->temperature = temperature; s->top_k = top_k; s->top_p = top_p;
    s->rng = seed ? seed : 0x853c49e6748fea9bull;
    s->idx = malloc((size_t)vocab * sizeof *s->idx);       /* [vocab] candidate ids */
    s->prob = malloc((size_t)vocab * sizeof *s->prob);     /* [vocab] their probabilities */
    if (!s->idx || !s->prob) { g4_sampler_free(s); return -1; }
    return 0;
}

void g4_sampler_free(g4_sampler *s)
{
    free(s->idx); free(s->prob);
    s->idx = NULL; s->prob = NULL;
}

/* uniform float in [0, 1) from xorshift64* */
static float uniform(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *st = x;
    return (float)((x * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

/* sort candidates by descending logit, ties by ascending id (a total order: deterministic) */
static const float *g_logits;
static int by_logit(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    if (g_logits[i] != g_logits[j]) return g_logits[i] > g_logits[j] ? -1 : 1;
    return i - j;
}

int g4_sample(g4_sampler *s, float *logits, const int *suppress, int n_suppress)
{
    for (int i = 0; i < n_suppress; i++)
        if (suppress[i] >= 0 && suppress[i] < s->vocab) logits[suppress[i]] = -INFINITY;
    if (s->temperature <= 0) return argmax(logits, s->vocab);

    int n = 0;
    for (int i = 0; i < s->vocab; i++) if (logits[i] != -INFINITY) s->idx[n++] = i;
    if (n == 0) return argmax(logits, s->vocab);
    g_logits = logits;
    qsort(s->idx, (size_t)n, sizeof *s->idx, by_logit);
    if (s->top_k > 0 && s->top_k < n) n = s->top_k;

    const float mx = logits[s->idx[0]] / s->temperature;
    double sum = 0;
    for (int i = 0; i < n; i++) { s->prob[i] = expf(logits[s->idx[i]] / s->temperature - mx); sum += s->prob[i]; }
    if (s->top_p > 0 && s->top_p < 1) {
        double cum = 0; int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i] / sum;
            if (cum >= s->top_p) { keep = i + 1; break; }
        }
        n = keep;
        sum = 0;
        for (int i = 0; i < n; i++) sum += s->prob[i];
    }
    double r = uniform(&s->rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (r < acc) return s->idx[i];
    }
    return s->idx[n - 1];
}

/* bench.h - the end-to-end benchmark behind `g4 bench` (bench/bench.c).
 *
 * main.c parses the flags, opens the model (timing it) and picks the kernel table; g4_bench_run
 * then times a prefill of `pp` tokens and `tg` decode steps, `reps` times each, and prints one
 * JSON object per test (llama-bench style names "pp16", "tg8") on `out`.
 */
#ifndef G4_BENCH_H
#define G4_BENCH_H

#include "g4.h"

typedef struct {
    int pp;                    /* prefill tokens (0 = skip the pp test) */
    int tg;                    /* decode steps (0 = skip the tg test) */
    int reps;                  /* timed repetitions of each test */
    int ctx;                   /* KV cache size; at least pp + tg */
    int threads;               /* threads asked for (the ref table always runs on 1) */
    double load_s;             /* seconds g4_model_load / g4_model_synth took */
} g4_bench_opts;

/* Runs the tests on model m with kernel table k; JSON lines go to `out`. 0 ok, -1 + err. */
int g4_bench_run(const g4_model *m, const g4_kernels *k, const g4_bench_opts *o, FILE *out,
                 g4_err *err);

/* What every benchmark line records about the machine and the tree (bench/bench.c). */
typedef struct {
    char commit[64]; int dirty;    /* git commit of the tree the binary was built in; dirty -1 = unknown */
    char cpu[256];                 /* /proc/cpuinfo model name */
    double loadavg[3];             /* 1/5/15-minute load average (-1 unknown) */
} g4_bench_host;
void g4_bench_host_read(g4_bench_host *h);
void g4_bench_json_str(FILE *f, const char *s);    /* a JSON string literal */
/* open a JSON line with the fields every benchmark line starts with:
 * {"commit", "dirty", "cpu", "kernels", "threads" (the caller goes on with ", ..." and "}") */
void g4_bench_json_head(FILE *f, const g4_bench_host *h, const char *kernels, int threads);
double g4_bench_median(const double *v, int n);

/* `g4 bench --kernels-micro [options]` (bench/kernels.c): per-kernel micro-benchmarks at the
 * 12B shapes next to the machine's limits measured in the same run; JSON lines on stdout.
 * argv holds the options after --kernels-micro. Returns the process exit code (0, 1 error,
 * 2 bad usage). */
int g4_bench_kernels_cli(int argc, char **argv);

/* bench/tokenizer.c: tokenize / detokenize a long document (repeated until it has min_tokens
 * tokens; 0 = 262144) with a vocabulary (a GGUF, a tokenizer.json or a folder; NULL =
 * $G4_GEMMA3_TOKENIZER or tests/data/tok/vocab.json) and a text file (NULL = the test corpus);
 * prints JSON lines "tok_doc", "detok", "tok_line" on `out`. 0 ok, -1 + err. */
int g4_bench_tokenizer(const char *vocab, const char *text_path, int min_tokens, int reps, FILE *out,
                       g4_err *err);

#endif

# run.sh - the end-to-end benchmarks of `make bench`: JSON lines on stdout, one per test.
#
#   bash bench/run.sh build/g4
#
# 1. the built-in synthetic tiny model (in memory), best kernel table and the ref table;
# 2. a 12B-shaped model if $G4_BENCH_MODEL names a file (any model g4 loads; usually the
#    synthetic one, made once with
#        build/g4 synth --config 12b --type q4_0 -o /path/g4-12b-q4_0.gguf   (6.7 GB, ~1-2 min)
#    ). The 12B run is short by default (prefill 8, decode 4, one rep: the ref kernels take
#    seconds per token at that size); override with G4_BENCH_PP, G4_BENCH_TG, G4_BENCH_REPS.
#
# Progress and errors go to stderr; stdout is only JSON lines, so `make bench > results.jsonl`
# keeps a clean record. Compare two results files by test name and kernel table.
set -u
G4=${1:-build/g4}
if [ ! -x "$G4" ]; then echo "bench/run.sh: $G4 is not built" >&2; exit 1; fi
rc=0

echo "bench: kernels at the 12B shapes (quick)" >&2
"$G4" bench --kernels-micro --quick || rc=1

echo "bench: tokenizer (test vocabulary, or \$G4_GEMMA3_TOKENIZER)" >&2
"$G4" bench --tokenizer || rc=1

echo "bench: tiny (synthetic, in memory)" >&2
"$G4" bench --pp 64 --tg 32 --reps 5 || rc=1
"$G4" bench --pp 64 --tg 32 --reps 5 --kernels ref || rc=1

if [ -n "${G4_BENCH_MODEL:-}" ]; then
  if [ -e "$G4_BENCH_MODEL" ]; then
    echo "bench: $G4_BENCH_MODEL" >&2
    "$G4" bench "$G4_BENCH_MODEL" --pp "${G4_BENCH_PP:-8}" --tg "${G4_BENCH_TG:-4}" \
      --reps "${G4_BENCH_REPS:-1}" || rc=1
  else
    echo "bench: G4_BENCH_MODEL=$G4_BENCH_MODEL does not exist; skipped" >&2
  fi
else
  echo "bench: set G4_BENCH_MODEL to a 12B GGUF (e.g. from g4 synth --config 12b --type q4_0) to bench it" >&2
fi
exit $rc

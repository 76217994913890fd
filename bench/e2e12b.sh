# e2e12b.sh - the end-to-end table of docs/BENCH.md: the 12B shape with synthetic Q4_0 and Q8_0
# weights, 1 and 2 threads, prefill of 64 and 512 tokens, 16 decode steps, peak RSS.
#
#   make bench-12b > e2e.jsonl            (or: bash bench/e2e12b.sh build/g4 > e2e.jsonl)
#
# Makes the two synthetic files once in $G4_BENCH_DIR (default /tmp/g4-bench; 6.7 + 12.7 GB,
# ~2 + ~3 min), then runs `g4 bench` per (type, threads): one run with --pp 64 --tg 16 and one
# with --pp 512 (each pays the first touch of the weights once, reported as first_s), with the
# best kernel table, the best table of the opt-in q8 mode (int8 activations in every Q8_0/Q4_0
# matmul) at 1 and 2 threads, and the avx2 table at 2 threads for comparison when the best is
# another.
# The limits (`g4 bench --kernels-micro --limits`: DRAM read, FMA peak) are measured before each
# group of runs. One repetition each ($G4_BENCH_REPS to change): ~40 min on the 2-core VM. JSON
# lines on stdout, progress on stderr. Run nothing else meanwhile.
set -u
G4=${1:-build/g4}
DIR=${G4_BENCH_DIR:-/tmp/g4-bench}
REPS=${G4_BENCH_REPS:-1}
if [ ! -x "$G4" ]; then echo "bench/e2e12b.sh: $G4 is not built" >&2; exit 1; fi
mkdir -p "$DIR" || exit 1
rc=0
for ty in q4_0 q8_0; do
  f="$DIR/g4-12b-$ty.gguf"
  if [ ! -e "$f" ]; then
    echo "bench: writing $f" >&2
    "$G4" synth --config 12b --type "$ty" -o "$f" >&2 || { rc=1; continue; }
  fi
  # the limits (DRAM read, FMA peak) next to each group of runs: the shared VM's bandwidth
  # drifts by 2x over an hour, so each run is a fraction of the limit measured beside it
  echo "bench: limits" >&2
  "$G4" bench --kernels-micro --limits -t 2 || rc=1
  for t in 2 1; do
    echo "bench: $ty, $t thread(s): pp64 + tg16" >&2
    "$G4" bench "$f" --pp 64 --tg 16 --reps "$REPS" -t "$t" || rc=1
    echo "bench: $ty, $t thread(s): pp512" >&2
    "$G4" bench "$f" --pp 512 --tg 0 --reps "$REPS" -t "$t" || rc=1
  done
  # the opt-in q8 mode (int8 activations in the GEMV and GEMM): the best q8 table this CPU has
  q8=""
  for k in avx512-q8 avx2-q8; do
    if "$G4" bench --pp 1 --tg 0 --reps 1 --kernels "$k" >/dev/null 2>&1; then q8=$k; break; fi
  done
  if [ -n "$q8" ]; then
    echo "bench: limits" >&2
    "$G4" bench --kernels-micro --limits -t 2 || rc=1
    for t in 2 1; do
      echo "bench: $ty, $t thread(s), $q8 (q8 mode): pp64 + tg16" >&2
      "$G4" bench "$f" --pp 64 --tg 16 --reps "$REPS" -t "$t" --kernels "$q8" || rc=1
      echo "bench: $ty, $t thread(s), $q8 (q8 mode): pp512" >&2
      "$G4" bench "$f" --pp 512 --tg 0 --reps "$REPS" -t "$t" --kernels "$q8" || rc=1
    done
  fi
  if [ "${G4_KERNELS:-}" = "" ] && "$G4" bench --pp 1 --tg 0 --reps 1 --kernels avx512 >/dev/null 2>&1; then
    echo "bench: $ty, 2 threads, avx2 table: pp64 + tg16" >&2
    "$G4" bench "$f" --pp 64 --tg 16 --reps "$REPS" -t 2 --kernels avx2 || rc=1
  fi
done
exit $rc

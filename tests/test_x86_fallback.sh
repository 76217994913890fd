# test_x86_fallback.sh - one x86-64 binary runs on any x86-64 CPU and picks what it can use.
#
# Runs build/g4 (the default tiny model, 8 greedy tokens) under qemu-x86_64 emulating older CPUs:
# Nehalem (SSE4.2, no AVX: must pick "ref"), Haswell (AVX2/FMA/F16C, no AVX-512: "avx2"). Each
# must exit 0 with the same token ids as the native run (every table gives the same greedy
# tokens on this model), and forcing a table the CPU lacks must be one clear error line and
# exit 1, never an illegal instruction. qemu-user comes with the packages CI installs for the
# NEON tests; on a host that is not x86-64 there is nothing to emulate here.
cd "$(dirname "$0")/.." || exit 1
G4=${G4:-build/g4}
QEMU=${QEMU_X86:-qemu-x86_64}
nfail=0
pass() { echo "PASS $1"; }
fail() { echo "    $2"; echo "FAIL $1"; nfail=$((nfail + 1)); }

if [ "$(uname -m)" != "x86_64" ]; then pass "x86_fallback (skipped: host is $(uname -m), not x86-64)"; exit 0; fi
if ! command -v "$QEMU" >/dev/null; then
  fail x86_fallback_tools "need $QEMU (apt-get install qemu-user)"
  exit 1
fi
if [ ! -x "$G4" ]; then fail x86_fallback_build "$G4 is not built"; exit 1; fi

native=$("$G4" run -n 8 2>/dev/null) || { fail x86_native "g4 run failed natively"; exit 1; }

for pair in Nehalem:ref Haswell:avx2; do
  cpu=${pair%%:*} want=${pair##*:}
  err=$(mktemp)
  out=$(timeout 300 "$QEMU" -cpu "$cpu" "$G4" run -n 8 2>"$err"); rc=$?
  got=$(sed -n 's/^kernels *//p' "$err" | head -1)
  if [ $rc -ne 0 ]; then fail "x86_$cpu" "exit $rc under $QEMU -cpu $cpu: $(tail -1 "$err")"
  elif [ "$got" != "$want" ]; then fail "x86_$cpu" "picked '$got', expected '$want'"
  elif [ "$out" != "$native" ]; then fail "x86_$cpu" "ids '$out' differ from native '$native'"
  else pass "x86_$cpu (picks $got, same tokens as native)"; fi
  rm -f "$err"
done

# a forced table the CPU lacks: one error line naming it, exit 1
for pair in Nehalem:avx2 Haswell:avx512; do
  cpu=${pair%%:*} k=${pair##*:}
  err=$(timeout 300 "$QEMU" -cpu "$cpu" "$G4" run -n 2 --kernels "$k" 2>&1 >/dev/null); rc=$?
  err=$(printf '%s\n' "$err" | grep -v '^qemu-x86_64: warning')   # qemu's own notes on the CPU model
  if [ $rc -eq 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && printf '%s' "$err" | grep -q "'$k' is not supported by this CPU"; then
    pass "x86_${cpu}_refuses_$k"
  else
    fail "x86_${cpu}_refuses_$k" "exit $rc, stderr: $err"
  fi
done
[ $nfail -eq 0 ]

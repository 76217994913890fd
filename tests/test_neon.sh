# test_neon.sh - the aarch64 NEON kernel table, cross-built and run under qemu-aarch64.
#
# Builds build/aarch64/tests/test_kernels and test_opt with $CROSS"gcc" (make aarch64; static
# binaries, no libpng) and runs them under qemu-aarch64 twice: on qemu's default CPU and on an
# emulated Cortex-A53 (plain armv8.0: proves the table uses no later instruction). The opt-in
# "neon-q8" table picks vdotq_s32 from HWCAP: qemu's default CPU has the dotprod extension, the
# Cortex-A53 does not, so the two runs cover both of its kernels. test_kernels
# runs on small shapes (G4_TEST_SMALL=1). The inner PASS/FAIL lines are prefixed with
# "aarch64:" or "a53:" so tests/run.sh counts them apart from the x86 ones.
# Missing cross tools are a FAIL, not a skip: CI installs them (.ci/run).
cd "$(dirname "$0")/.." || exit 1
CROSS=${CROSS:-aarch64-linux-gnu-}
QEMU=${QEMU:-qemu-aarch64}
nfail=0
fail() { echo "    $2"; echo "FAIL $1"; nfail=$((nfail + 1)); }

if ! command -v "${CROSS}gcc" >/dev/null || ! command -v "$QEMU" >/dev/null; then
  fail neon_tools "need ${CROSS}gcc and $QEMU (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)"
  exit 1
fi
if ! out=$(make -s aarch64 CROSS="$CROSS" 2>&1); then
  echo "$out" | tail -20
  fail neon_cross_build "make aarch64 failed"
  exit 1
fi
echo "PASS neon_cross_build"

# run NAME CPU-ARGS BINARY: prefix its PASS/FAIL lines; a non-zero exit without a FAIL line
# (a crash, an illegal instruction) is a failure of its own
run() {
  local name=$1 cpu=$2 bin=$3 log rc
  log=$(mktemp)
  G4_TEST_SMALL=1 timeout 900 "$QEMU" $cpu "$bin" >"$log" 2>&1
  rc=$?
  sed -e "s/^PASS /PASS $name:/" -e "s/^FAIL /FAIL $name:/" "$log"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$log"; then fail "$name:$(basename "$bin")" "exit $rc under $QEMU $cpu"; fi
  if [ $rc -ne 0 ]; then nfail=$((nfail + 1)); fi
  rm -f "$log"
}

for t in test_kernels test_opt; do run aarch64 "" build/aarch64/tests/$t; done
# the armv8.0 baseline: the table must be the one picked and must run on a Cortex-A53
for t in test_kernels test_opt; do run a53 "-cpu cortex-a53" build/aarch64/tests/$t; done
[ $nfail -eq 0 ]

# Run every test binary / script given, count PASS and FAIL lines, and end with
# "N passed, N failed". A program that exits non-zero without printing a FAIL line (a crash, a
# sanitizer report, a timeout) counts as one failure of its own.
pass=0; fail=0
for t in "$@"; do
  name=$(basename "$t")
  echo "== $name"
  log=$(mktemp)
  if [[ "$t" == *.sh ]]; then timeout 1200 bash "$t" >"$log" 2>&1; rc=$?
  else timeout 1200 "$t" >"$log" 2>&1; rc=$?; fi
  cat "$log"
  p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
  pass=$((pass + p)); fail=$((fail + f))
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name (exit $rc without a FAIL line: crash, sanitizer or timeout)"; fail=$((fail + 1))
  fi
  if [ $rc -eq 0 ] && [ "$f" -ne 0 ]; then
    echo "FAIL $name (printed FAIL but exited 0: a harness defect)"; fail=$((fail + 1))
  fi
  if [ $rc -eq 0 ] && [ "$p" -eq 0 ]; then
    echo "FAIL $name (ran no test)"; fail=$((fail + 1))
  fi
  rm -f "$log"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

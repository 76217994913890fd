# test_cli_asan.sh - the whole CLI test (tests/test_cli.sh) again, with g4 built under
# AddressSanitizer and UBSan (build/asan/g4): every path the CLI tests take, bad inputs
# included, must be free of memory errors and undefined behaviour, not just give the right
# output. A sanitizer report aborts g4, which the CLI test then reports as a failure.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
G4=${G4_ASAN:-build/asan/g4} exec bash "$(dirname "$0")/test_cli.sh"

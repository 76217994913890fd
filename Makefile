# g4 - build, run, test, bench. GNU make only; C11; warnings are errors.
#
#   make            build build/g4 (ref + opt kernels) and build/g4-ref (ref/ alone)
#   make run        run the built-in default model (synthetic tiny, in memory)
#   make test       build and run every test; last line "N passed, N failed"
#   make bench      end-to-end and kernel benchmarks (JSON lines)
#   make bench-12b  the 12B table of docs/BENCH.md (Q4_0/Q8_0, 1 and 2 threads; ~40 min)
#   make clean

CC      ?= cc
B       := build
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
# ref/ numerics: no FMA contraction and no fast-math flags (results must be reproducible everywhere)
OPTFLAGS ?= -O2 -ffp-contract=off -g
CFLAGS  := $(CSTD) $(WARN) $(OPTFLAGS) -MMD -MP -Iref
LDLIBS  := -lm -lpng -lpthread

REF_SRC  := $(filter-out ref/main.c ref/pick.c,$(wildcard ref/*.c))
OPT_SRC  := $(wildcard opt/*.c)
BENCH_SRC:= $(wildcard bench/*.c)
LIB_OBJ  := $(REF_SRC:%.c=$(B)/%.o) $(OPT_SRC:%.c=$(B)/%.o) $(BENCH_SRC:%.c=$(B)/%.o)
REF_OBJ  := $(REF_SRC:%.c=$(B)/%.o) $(B)/ref/pick.o $(BENCH_SRC:%.c=$(B)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
# bad-input tests and the kernel tests (every opt kernel on awkward shapes and tails) are also
# built with AddressSanitizer + UBSan
ASAN_TESTS := $(filter $(B)/tests/test_bad% $(B)/tests/test_kernels,$(TEST_BIN))
ASAN_BIN := $(ASAN_TESTS:$(B)/tests/%=$(B)/asan/%)
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# per-file target flags for opt/<name>.c (the file checks the CPU at run time before use)
OPT_CFLAGS_avx2 := -mavx2 -mfma -mf16c
OPT_CFLAGS_avx512 := -mavx512f -mavx2 -mfma -mf16c
# aarch64 cross build of the kernel tests, run under qemu-aarch64 by tests/test_neon.sh:
# ref/ + opt/ without the PNG reader (no libpng for the target), tests linked statically
CROSS   ?= aarch64-linux-gnu-
A64     := $(B)/aarch64
A64_OBJ := $(patsubst %.c,$(A64)/%.o,$(filter-out ref/image.c,$(REF_SRC)) $(OPT_SRC))

.PHONY: all run test bench bench-12b clean aarch64
all: $(B)/g4 $(B)/g4-ref

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(filter opt/%,$<),$(OPT_CFLAGS_$(notdir $*))) -c $< -o $@

$(B)/g4: $(B)/ref/main.o $(LIB_OBJ)
	$(CC) $^ -o $@ $(LDLIBS)

$(B)/g4-ref: $(B)/ref/main.o $(REF_OBJ)
	$(CC) $^ -o $@ $(LDLIBS)

$(B)/tests/%: tests/%.c $(LIB_OBJ) tests/harness.h tests/taps.h tests/golden.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(LIB_OBJ) -o $@ $(LDLIBS)

$(B)/asan/%: tests/%.c $(REF_SRC) $(OPT_SRC) $(BENCH_SRC) tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(ASAN_FLAGS) -ffp-contract=off -Iref -Itests $< $(REF_SRC) $(OPT_SRC) $(BENCH_SRC) -o $@ $(LDLIBS)

# the CLI under AddressSanitizer + UBSan, for tests/test_cli_asan.sh
$(B)/asan/g4: ref/main.c $(REF_SRC) $(OPT_SRC) $(BENCH_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(ASAN_FLAGS) -ffp-contract=off -Iref $^ -o $@ $(LDLIBS)

$(A64)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CROSS)gcc $(CSTD) $(WARN) $(OPTFLAGS) -MMD -MP -Iref -c $< -o $@

$(A64)/libg4.a: $(A64_OBJ)
	rm -f $@
	$(CROSS)ar rcs $@ $^

$(A64)/tests/%: tests/%.c $(A64)/libg4.a tests/harness.h tests/golden.h
	@mkdir -p $(dir $@)
	$(CROSS)gcc $(CSTD) $(WARN) $(OPTFLAGS) -Iref -Itests -static $< $(A64)/libg4.a -o $@ -lm -lpthread

aarch64: $(A64)/tests/test_kernels $(A64)/tests/test_opt

run: $(B)/g4
	$(B)/g4 run --image tests/data/sample.png --audio tests/data/sample.wav --ids "2 105 300 107 106 107" -n 16

test: all $(TEST_BIN) $(ASAN_BIN) $(B)/asan/g4
	@G4=$(B)/g4 G4_REF=$(B)/g4-ref G4_ASAN=$(B)/asan/g4 bash tests/run.sh $(TEST_BIN) $(ASAN_BIN) $(wildcard tests/test_*.sh)

bench: $(B)/g4
	@bash bench/run.sh $(B)/g4

# the 12B end-to-end table of docs/BENCH.md (writes two synthetic GGUFs once; ~40 min)
bench-12b: $(B)/g4
	@bash bench/e2e12b.sh $(B)/g4

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# medthink build. GNU make; `make help` lists the targets.
#
# Layers are built into one archive each, so a test links only the layers it
# needs (and a half-written file in one layer does not break another's tests).

CC      ?= cc
PKGS    := libuv libcurl jansson sqlite3 inih libpng libcrypto
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -MMD -MP \
           -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm -lpthread

# `make SAN=1` builds everything under AddressSanitizer + UBSan into build-asan/.
ifeq ($(SAN),1)
B       := build-asan
CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BIN     := build-asan/bin
else ifeq ($(FUZZ),1)
# `make fuzz` builds the fuzz targets with clang + libFuzzer into build-fuzz/.
B       := build-fuzz
CC      := clang
CFLAGS  += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BIN     := build-fuzz/bin
else
B       := build
BIN     := bin
endif

# medthinkd links jemalloc, as redis does: in paired runs it takes about a
# sixth less CPU per call than glibc's malloc (the loop allocates and frees
# a few hundred small blocks a call; bench/FINDINGS.md). Not under the
# sanitizers, which bring their own allocator; `make MALLOC=libc` builds
# without it (run `make clean` first: objects do not track the switch).
ifeq ($(SAN)$(FUZZ),)
MALLOC ?= jemalloc
else
MALLOC := libc
endif
ifeq ($(MALLOC),jemalloc)
DAEMON_LDLIBS := -ljemalloc
DAEMON_CFLAGS := -DMEDTHINK_JEMALLOC
endif

LAYERS  := common formats store teacher_clients stages daemon
lib_src  = $(filter-out daemon/main.c,$(wildcard $(1)/*.c))
lib_obj  = $(patsubst %.c,$(B)/%.o,$(call lib_src,$(1)))
LIBS     = $(foreach l,$(LAYERS),$(B)/lib$(l).a)
# Link order: upper layers first.
LINKLIBS = $(B)/libdaemon.a $(B)/libstages.a $(B)/libteacher_clients.a $(B)/libstore.a $(B)/libformats.a $(B)/libcommon.a

TEST_SRC := $(wildcard tests/unit/test_*.c)
TESTS    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(TEST_SRC))
SIM_SRC  := $(wildcard tests/sim/*.c)
CLI_SRC  := $(wildcard cli/*.c)

.PHONY: all deps test check-asan check-valgrind bench demo clean help tests fuzz fuzz-build grade-report
all: $(BIN)/medthinkd $(BIN)/medthink $(BIN)/medthink-sim

help:
	@echo "make            build bin/medthinkd, bin/medthink, bin/medthink-sim (simulator)"
	@echo "make deps       install the Debian packages (idempotent)"
	@echo "make test       build and run every test; ends with 'N passed, N failed'"
	@echo "make check-asan the same tests under AddressSanitizer + UBSan"
	@echo "make check-valgrind  a whole pipeline job with the daemon under valgrind"
	@echo "make demo       run the whole pipeline against the simulator; results in ./out"
	@echo "make bench      run the benchmarks; writes docs/PERFORMANCE.md"
	@echo "make bench-issue17  only what decides issue 17 (BENCH_ONLY=issue17 make bench), ~15 min"
	@echo "make grade-report  the answer extractor against real graded answers (docs/grading.md)"
	@echo "make fuzz       run every fuzz target FUZZ_SECONDS (60) each (clang, libFuzzer)"

# The built-in prompt templates: conf/prompts/NAME.txt (the source of truth)
# compiled into libstages, so medthinkd runs with no prompts_dir.
PROMPT_TXT   := $(sort $(wildcard conf/prompts/*.txt))
extra_stages := $(B)/gen/prompts_builtin.o
$(B)/gen/prompts_builtin.c: $(PROMPT_TXT) stages/prompts_builtin.sh
	@mkdir -p $(@D)
	sh stages/prompts_builtin.sh $@ $(PROMPT_TXT)
$(B)/gen/prompts_builtin.o: $(B)/gen/prompts_builtin.c
	$(CC) $(CFLAGS) -c -o $@ $<

# The dashboard's static files (web/), compiled into libdaemon
# (daemon/web.c serves them; docs/dashboard.md).
WEB_FILES    := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))
extra_daemon := $(B)/gen/web_assets.o
$(B)/gen/web_assets.c: $(WEB_FILES) web/assets.sh
	@mkdir -p $(@D)
	sh web/assets.sh $@ $(WEB_FILES)
$(B)/gen/web_assets.o: $(B)/gen/web_assets.c
	$(CC) $(CFLAGS) -c -o $@ $<

define layer_rule
$(B)/lib$(1).a: $(call lib_obj,$(1)) $(extra_$(1))
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call layer_rule,$(l))))

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BIN)/medthinkd: $(B)/daemon/main.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LINKLIBS) $(DAEMON_LDLIBS) $(LDLIBS)

$(B)/daemon/main.o: CFLAGS += $(DAEMON_CFLAGS)

$(BIN)/medthink: $(patsubst %.c,$(B)/%.o,$(CLI_SRC)) $(B)/libcommon.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/medthink-sim: $(patsubst %.c,$(B)/%.o,$(SIM_SRC)) $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(patsubst %.c,$(B)/%.o,$(SIM_SRC)) $(LINKLIBS) $(LDLIBS)

# A test's first line may name the layers it links, upper first, as
# /* layers: store common */ so it builds while other layers are mid-change.
# formats (pure code over common) is linked under any layer above common
# that a test names, so a layer that starts using a format table keeps its
# tests linking.
with_formats = $(if $(filter formats,$(1)),$(1),$(if $(filter-out common,$(1)),$(patsubst common,formats common,$(1)),$(1)))
test_layers = $(call with_formats,$(or $(shell sed -n '1s|^/\* layers: \(.*\) \*/|\1|p' $(1)),daemon stages teacher_clients store common))
define test_rule
$(B)/tests/$(1): $(B)/tests/unit/$(1).o $(foreach l,$(call test_layers,tests/unit/$(1).c),$(B)/lib$(l).a)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS) -o $$@ $$< $(foreach l,$(call test_layers,tests/unit/$(1).c),$(B)/lib$(l).a) $(LDLIBS) -lcmocka
endef
$(foreach t,$(TEST_SRC),$(eval $(call test_rule,$(basename $(notdir $(t))))))

# Fuzz targets (tests/fuzz/fuzz_*.c, docs/fuzzing.md), layers named on the
# first line as for a unit test. The normal build links each with the plain
# replay driver (make test runs it over the corpus); FUZZ=1 with libFuzzer.
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/fuzz_%.c,$(B)/fuzz/%,$(FUZZ_SRC))
ifeq ($(FUZZ),1)
FUZZ_MAIN :=
FUZZ_LINK := -fsanitize=fuzzer
else
FUZZ_MAIN := $(B)/tests/fuzz/driver.o
FUZZ_LINK :=
endif
define fuzz_rule
$(B)/fuzz/$(1): $(B)/tests/fuzz/fuzz_$(1).o $(FUZZ_MAIN) $(foreach l,$(call test_layers,tests/fuzz/fuzz_$(1).c),$(B)/lib$(l).a)
	@mkdir -p $$(@D)
	$(CC) $(LDFLAGS) $(FUZZ_LINK) -o $$@ $$< $(FUZZ_MAIN) $(foreach l,$(call test_layers,tests/fuzz/fuzz_$(1).c),$(B)/lib$(l).a) $(LDLIBS)
endef
$(foreach t,$(FUZZ_SRC),$(eval $(call fuzz_rule,$(patsubst fuzz_%,%,$(basename $(notdir $(t)))))))

# Benchmark helpers (bench/*.c, one program each), built by `make bench`.
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))
$(B)/bench/%: bench/%.c $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LINKLIBS) $(LDLIBS)
# bench/schema_cost.c models schemas on raw SQLite (none of our libraries);
# its zip variant deflates.
$(B)/bench/schema_cost: bench/schema_cost.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lsqlite3 -lz

# A write-fault injector for the fault tests (LD_PRELOAD; tests/faults/).
FAULT_SO := $(B)/tests/libenospc.so
$(FAULT_SO): tests/faults/enospc.c
	@mkdir -p $(@D)
	$(CC) -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl

tests: all $(TESTS) $(FUZZ_BINS) $(FAULT_SO)
fuzz-build: $(FUZZ_BINS)

# Each target that needs the libraries installs them first when one is missing.
deps:
	@sh tests/deps.sh

test:
	@sh tests/deps.sh --if-missing
	@$(MAKE) --no-print-directory tests
	@BIN=$(BIN) B=$(B) sh tests/run.sh

check-asan:
	@sh tests/deps.sh --if-missing
	@$(MAKE) --no-print-directory SAN=1 tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  BIN=build-asan/bin B=build-asan sh tests/run.sh

check-valgrind: all
	@BIN=$(BIN) sh tests/valgrind.sh

demo:
	@sh tests/deps.sh --if-missing
	@$(MAKE) --no-print-directory all
	@sh tests/demo.sh

# The answer extractor on the real graded answers in ../shared/data/answers
# (docs/grading.md). GRADE_REPORT_ARGS=--show lists every disagreement.
grade-report: $(B)/bench/grade_report
	@$(B)/bench/grade_report $(GRADE_REPORT_ARGS)

bench:
	@sh tests/deps.sh --if-missing
	@sh tests/deps.sh --bench
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@sh bench/run.sh

.PHONY: bench-issue17
bench-issue17:
	@$(MAKE) --no-print-directory bench BENCH_ONLY=issue17

# Each fuzz target for FUZZ_SECONDS on a copy of its corpus; fails on a crash
# (the input is saved to tests/fuzz/regress/TARGET/). FUZZ_TARGETS=pattern.
FUZZ_SECONDS ?= 60
export FUZZ_SECONDS
fuzz:
	@sh tests/deps.sh --fuzz
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	@B=build-fuzz sh tests/fuzz/run.sh

clean:
	rm -rf build build-asan build-fuzz bin

-include $(shell find build build-asan build-fuzz -name '*.d' 2>/dev/null)

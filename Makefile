# cozmox-lua -- build, test and demo.
#
#   make                         build the C core for Lua 5.4
#   make LUA_VERSION=5.1|5.3     build for another Lua (LUA=luajit for LuaJIT)
#   make install PREFIX=/tree    install modules, core and the cozmox command
#   make test | make demo | make lint | make clean
#
# Memory safety (each installs what it needs through scripts/deps.sh):
#   make sanitize                the whole suite against an ASan+UBSan core
#   make valgrind                the suite (minus tests tagged #slow) under memcheck
#   make fuzz [FUZZ_SECONDS=60]  libFuzzer on the decoder (fuzz/fuzz_decode.c)

LUA_VERSION ?= 5.4
ifeq ($(LUA),luajit)
  LUA_PC    ?= luajit
  LUA_ABI   := 5.1
  LUA_BIN   ?= luajit
else
  LUA_PC    ?= lua$(LUA_VERSION)
  LUA_ABI   := $(LUA_VERSION)
  LUA_BIN   ?= lua$(LUA_VERSION)
endif
TAG       := $(if $(filter luajit,$(LUA)),luajit,lua$(LUA_VERSION))

PREFIX    ?= /usr/local
LUA_LMOD  ?= $(PREFIX)/share/lua/$(LUA_ABI)
LUA_CMOD  ?= $(PREFIX)/lib/lua/$(LUA_ABI)
BINDIR    ?= $(PREFIX)/bin

CC        ?= cc
OPT       ?= -O2
CFLAGS    ?= $(OPT) -g
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
PKG_CFLAGS = $(shell pkg-config --cflags $(LUA_PC) libcurl zlib 2>/dev/null)
CORE_LIBS  = $(shell pkg-config --libs zlib 2>/dev/null)
CURL_LIBS  = $(shell pkg-config --libs libcurl zlib 2>/dev/null)
# Only luaopen_* leaves a module: each .so keeps its copy of the shared
# sources to itself.
ALL_CFLAGS = -std=gnu99 -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) $(PKG_CFLAGS)
LDFLAGS   ?=
LIBFLAG   ?= -shared

# SANITIZE=1: the same core built by clang with AddressSanitizer and
# UndefinedBehaviorSanitizer into its own tree (build/sanitize), linked to
# the shared ASan runtime, which `make sanitize` preloads into lua5.4.
# -z nodelete keeps core.so mapped after lua_close's dlclose, so leak
# reports printed at exit still name our functions.
SAN_CC    ?= clang
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifeq ($(SANITIZE),1)
  override CC      := $(SAN_CC)
  override CFLAGS  := -O1 -g $(SAN_FLAGS)
  override LDFLAGS := $(SAN_FLAGS) -shared-libasan -Wl,-z,nodelete
  TAG := $(if $(filter lua5.4,$(TAG)),sanitize,sanitize-$(TAG))
endif

# Two C modules.  cozmox.core: the JSON codec, the response sink, URL
# escaping and the clock -- no libcurl, so require("cozmox") and
# require("cozmox.json") never load it.  cozmox.curl: the curl transport,
# loaded on the first request that needs it, with its own copy of the
# codec and the sink (every src/*.c but the curl-only files and the
# core-only entry points).
SRCS      := $(wildcard src/*.c)
HDRS      := $(wildcard src/*.h)
CURL_ONLY := src/curl.c src/easy.c src/transfer.c src/multi.c
CORE_ONLY := src/core.c src/clock.c src/escape.c
BUILD     := build/$(TAG)
obj        = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))
CORE_OBJS := $(call obj,$(filter-out $(CURL_ONLY),$(SRCS)))
CURL_OBJS := $(call obj,$(filter-out $(CORE_ONLY),$(SRCS)))
CORE      := $(BUILD)/cozmox/core.so
CURLMOD   := $(BUILD)/cozmox/curl.so
# Every Lua module under lua/ (subdirectories too), relative to lua/.
LUA_MODS  := $(sort $(patsubst lua/%,%,$(shell find lua -name '*.lua')))

# Where specs, examples and benchmarks find the in-tree modules.
SPEC_LUA_PATH = $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
RUN_ENV    = LUA_PATH="$(SPEC_LUA_PATH)" LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"

.PHONY: all deps install uninstall test demo lint clean sanitize valgrind fuzz

all: $(CORE) $(CURLMOD)

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(CORE_OBJS) $(CORE_LIBS)

$(CURLMOD): $(CURL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(CURL_OBJS) $(CURL_LIBS)

deps:
	@bash scripts/deps.sh

# The cozmox command gets "#!<absolute path of LUA_BIN>" and the tree's
# module paths (scripts/install-bin.lua), so it runs with the Lua it was
# installed for and finds these modules whatever LUA_PATH says.
install: $(CORE) $(CURLMOD)
	@command -v $(LUA_BIN) >/dev/null || { echo "make install: $(LUA_BIN) not found" >&2; exit 1; }
	install -d "$(DESTDIR)$(LUA_CMOD)/cozmox" "$(DESTDIR)$(BINDIR)"
	for f in $(LUA_MODS); do install -D -m 0644 "lua/$$f" "$(DESTDIR)$(LUA_LMOD)/$$f" || exit 1; done
	install -m 0755 $(CORE) "$(DESTDIR)$(LUA_CMOD)/cozmox/core.so"
	install -m 0755 $(CURLMOD) "$(DESTDIR)$(LUA_CMOD)/cozmox/curl.so"
	$(LUA_BIN) scripts/install-bin.lua bin/cozmox "$(DESTDIR)$(BINDIR)/cozmox" \
	  "$$(command -v $(LUA_BIN))" "$(LUA_LMOD)" "$(LUA_CMOD)"

uninstall:
	rm -rf "$(DESTDIR)$(LUA_LMOD)/cozmox" "$(DESTDIR)$(LUA_CMOD)/cozmox"
	rm -f "$(DESTDIR)$(BINDIR)/cozmox"

test: deps
	@$(MAKE) -s --no-print-directory all
	@$(RUN_ENV) LUA_BIN=$(LUA_BIN) bash scripts/with-mock.sh bash scripts/run-specs.sh $(LUA_BIN)

# bin/cozmox against the mock API's demo sessions (scripts/demo.sh).
demo: deps
	@$(MAKE) -s --no-print-directory all
	@$(RUN_ENV) bash scripts/with-mock.sh bash scripts/demo.sh $(LUA_BIN)

# luacheck (Debian lua-check) over everything written in Lua; .luacheckrc
# says which globals each place may use.
LINT_DEPS  := lua-check
# (luacheck checks only *.lua files in a directory: bin/* are named.)
LINT_PATHS := lua spec examples bench $(wildcard bin/*) scripts/install-bin.lua

lint:
	@DEPS_EXTRA="$(LINT_DEPS)" bash scripts/deps.sh
	@luacheck --formatter=plain $(LINT_PATHS) && echo "luacheck: no warnings in $(LINT_PATHS)"

# (luarocks make builds in the checkout: src/*.o and cozmox/core.so.)
clean:
	rm -rf build
	rm -f src/*.o cozmox/core.so
	if [ -d cozmox ]; then rmdir cozmox; fi

# --- make sanitize ----------------------------------------------------------
# Builds build/sanitize/cozmox/core.so (SANITIZE=1 above) and runs every
# spec against it with the mock up.  lua5.4 itself is not instrumented, so
# clang's shared ASan runtime (which carries UBSan too) is preloaded into
# it: the specs run under build/sanitize/bin/lua5.4, a wrapper that
# preloads the runtime and spec/c/unpreload.so, which takes LD_PRELOAD out
# of the environment again, so that only lua5.4 processes -- every process
# that loads core.so -- are instrumented, not the sh/curl/make/gcc the
# specs start.  LUA_BIN points at the wrapper, so the interpreters the
# specs start (util.lua_bin()) get it too; PATH does not (luarocks would
# look for Lua's headers next to it).  Leak checking is on, at exit, after
# lua_close has run every __gc; spec/c/lsan.supp may only list objects of
# code outside this repository.  spec/oom_spec.lua builds its C program
# with the same sanitizers (COZMOX_OOM_CC/CFLAGS).  Reports go to files in
# build/sanitize/reports; the target fails unless the specs pass and that
# directory stays empty.  Blind spot: liblua is not instrumented, so a
# write Lua itself makes past a block -- a Lua stack overrun by pushes
# without lua_checkstack -- goes unseen here; make valgrind and the fuzz
# target's guarded allocator catch those.
SAN_BUILD   := build/sanitize
SAN_BIN     := $(SAN_BUILD)/bin
SAN_REPORTS := $(SAN_BUILD)/reports
# llvm: llvm-symbolizer on PATH, so reports name functions and lines.
SAN_DEPS    := clang libclang-rt-14-dev llvm
# A shell expression (clang may only just have been installed).
ASAN_RT      = $$($(SAN_CC) -print-file-name=libclang_rt.asan-$$(uname -m).so)
SAN_ENV      = ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:log_path=$(CURDIR)/$(SAN_REPORTS)/report:log_exe_name=1" \
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(SAN_REPORTS)/report:log_exe_name=1" \
               LSAN_OPTIONS="suppressions=$(CURDIR)/spec/c/lsan.supp:print_suppressions=0" \
               COZMOX_OOM_CC="$(SAN_CC)" \
               COZMOX_OOM_CFLAGS="$(SAN_FLAGS) -shared-libasan -Wl,-rpath,$$(dirname $(ASAN_RT))"

sanitize:
	@DEPS_EXTRA="$(SAN_DEPS)" bash scripts/deps.sh
	@$(MAKE) -s --no-print-directory SANITIZE=1 all
	@mkdir -p $(SAN_BIN)
	@$(CC) -shared -fPIC -O2 -o $(SAN_BUILD)/unpreload.so spec/c/unpreload.c
	@printf '#!/bin/sh\nLD_PRELOAD="%s %s" exec %s "$$@"\n' \
	  "$(ASAN_RT)" "$(CURDIR)/$(SAN_BUILD)/unpreload.so" "$$(command -v lua5.4)" > $(SAN_BIN)/lua5.4
	@chmod +x $(SAN_BIN)/lua5.4
	@rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	@rc=0; \
	LUA_PATH="$(SPEC_LUA_PATH)" LUA_CPATH="$(CURDIR)/$(SAN_BUILD)/?.so;;" LUA_BIN=$(CURDIR)/$(SAN_BIN)/lua5.4 \
	  bash scripts/with-mock.sh env $(SAN_ENV) \
	  bash scripts/run-specs.sh $(CURDIR)/$(SAN_BIN)/lua5.4 || rc=$$?; \
	n=0; for f in $(SAN_REPORTS)/*; do \
	  [ -f "$$f" ] || continue; n=$$((n + 1)); echo "=== $$f"; cat "$$f"; done; \
	echo "sanitize: $$n sanitizer report(s) (ASan/UBSan/LSan), specs exit status $$rc"; \
	[ $$rc -eq 0 ] && [ $$n -eq 0 ]

# --- make valgrind ----------------------------------------------------------
# The suite under memcheck, with the regular build: the spec runner and
# every lua5.4 the specs start (LUA_BIN) run through the generated wrapper
# build/valgrind/lua5.4-memcheck, one log per process in
# build/valgrind/logs (other programs the specs start run natively).
# Definite and indirect leaks count as errors; spec/valgrind.supp holds
# the suppressions, each commented, for code outside this repository only.
# Tests tagged #slow are skipped here (--exclude-tags=slow: the decoder
# split at every byte of a 32 KB document would take most of an hour under
# memcheck); make test and make sanitize run them.  The target fails
# unless the specs pass and every log ends with "ERROR SUMMARY: 0 errors".
VG_DIR   := build/valgrind
VG_DEPS  := valgrind
VG_FLAGS := --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect \
            --show-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=40 \
            --child-silent-after-fork=yes --suppressions=$(CURDIR)/spec/valgrind.supp \
            --log-file=$(CURDIR)/$(VG_DIR)/logs/vg.%p.log

valgrind:
	@DEPS_EXTRA="$(VG_DEPS)" bash scripts/deps.sh
	@$(MAKE) -s --no-print-directory all
	@rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)/logs
	@printf '#!/bin/sh\nexec valgrind %s %s "$$@"\n' '$(VG_FLAGS)' "$$(command -v lua5.4)" > $(VG_DIR)/lua5.4-memcheck
	@chmod +x $(VG_DIR)/lua5.4-memcheck
	@rc=0; \
	$(RUN_ENV) LUA_BIN=$(CURDIR)/$(VG_DIR)/lua5.4-memcheck \
	  bash scripts/with-mock.sh bash scripts/run-specs.sh $(CURDIR)/$(VG_DIR)/lua5.4-memcheck --exclude-tags=slow \
	  || rc=$$?; \
	procs=0; bad=0; \
	for f in $(VG_DIR)/logs/*.log; do \
	  [ -s "$$f" ] || continue; procs=$$((procs + 1)); \
	  if ! grep -q 'ERROR SUMMARY: 0 errors' "$$f"; then bad=$$((bad + 1)); echo "=== $$f"; cat "$$f"; fi; \
	done; \
	echo "valgrind: $$procs lua5.4 process(es) under memcheck, $$bad with errors, leaks or no summary; specs exit status $$rc"; \
	cat $(VG_DIR)/logs/*.log | sed -n 's/^==[0-9]*== *//p' | \
	  grep -E '^(ERROR SUMMARY|definitely lost|indirectly lost|All heap blocks)' | sort | uniq -c; \
	[ $$rc -eq 0 ] && [ $$bad -eq 0 ] && [ $$procs -gt 0 ]

# --- make fuzz --------------------------------------------------------------
# libFuzzer on the decoder: fuzz/fuzz_decode.c linked with the codec
# sources (no curl) against liblua5.4, all instrumented with ASan+UBSan.
# The seed corpus is spec/fixtures (JSONTestSuite and session.json) and
# fuzz/seeds, copied with 4 parameter bytes in front into fuzz/corpus
# (gitignored), which also keeps what the fuzzer finds interesting.
# Crash artifacts land in fuzz/ (gitignored); replay one with
# build/fuzz/fuzz_decode FILE.  fuzz/run.sh prints the executions, the
# coverage and any finding, and fails if there is one.
# FUZZ_STRICT_ERRORS=1 also requires the same error message from every
# way of feeding (see the top of fuzz/fuzz_decode.c).
FUZZ_SECONDS ?= 60
FUZZ_BIN     := build/fuzz/fuzz_decode
FUZZ_SRCS    := fuzz/fuzz_decode.c src/jdecode.c src/jencode.c src/buffer.c src/keeper.c src/numconv.c
FUZZ_DEPS    := $(SAN_DEPS)

$(FUZZ_BIN): $(FUZZ_SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	$(SAN_CC) -std=gnu99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -fno-omit-frame-pointer $(WARN) -Isrc $(shell pkg-config --cflags lua5.4) \
	  -o $@ $(FUZZ_SRCS) $(shell pkg-config --libs lua5.4) -lm

fuzz:
	@DEPS_EXTRA="$(FUZZ_DEPS)" bash scripts/deps.sh
	@$(MAKE) -s --no-print-directory $(FUZZ_BIN)
	@bash fuzz/run.sh $(FUZZ_BIN) $(FUZZ_SECONDS)

# --- make test-all / make bench ----------------------------------------------
# test-all: the whole suite on every runtime installed (Lua 5.4, 5.3, 5.2,
# 5.1, LuaJIT 2.1), each against its own build of the C core; installs the
# interpreters and headers first.  bench: bench/run.sh (one table, medians).
TEST_ALL_DEPS := lua5.3 liblua5.3-dev lua5.2 liblua5.2-dev lua5.1 liblua5.1-0-dev luajit2
RUNTIMES      := lua5.4:LUA_VERSION=5.4 lua5.3:LUA_VERSION=5.3 lua5.2:LUA_VERSION=5.2 lua5.1:LUA_VERSION=5.1 luajit:LUA=luajit

.PHONY: test-all bench

test-all:
	@DEPS_EXTRA="$(TEST_ALL_DEPS)" bash scripts/deps.sh
	@rc=0; passed=0; failed=0; \
	for rt in $(RUNTIMES); do \
	  bin=$${rt%%:*}; flavour=$${rt#*:}; \
	  command -v $$bin >/dev/null 2>&1 || { echo "test-all: $$bin not installed"; rc=1; continue; }; \
	  echo "=== $$bin"; \
	  $(MAKE) -s --no-print-directory $$flavour all || { rc=1; continue; }; \
	  tag=$$([ $$bin = luajit ] && echo luajit || echo $$bin); \
	  out=$$(LUA_PATH="$(SPEC_LUA_PATH)" LUA_CPATH="$(CURDIR)/build/$$tag/?.so;;" LUA_BIN=$$bin \
	    bash scripts/with-mock.sh bash scripts/run-specs.sh $$bin 2>&1) || rc=1; \
	  echo "$$out" | tail -n 25; \
	  line=$$(echo "$$out" | tail -n 1); \
	  echo "test-all: $$bin: $$line"; \
	  p=$${line%% passed*}; f=$${line#*passed, }; f=$${f%% failed*}; \
	  passed=$$((passed + p)); failed=$$((failed + f)); \
	done; \
	echo "$$passed passed, $$failed failed"; exit $$rc

bench: all
	@bash bench/run.sh

# --- make numcheck -------------------------------------------------------------
# spec/c/numcheck.c on 10 million random literals and 10 million random
# doubles (NUMCHECK_COUNT, NUMCHECK_SEED to change): src/numconv.c against
# glibc's strtod/printf bit for bit (about 2 minutes; the specs run 200,000).
NUMCHECK_COUNT ?= 10000000
NUMCHECK_SEED  ?= 1
.PHONY: numcheck
numcheck:
	@mkdir -p build
	$(CC) -std=gnu99 -O2 -g $(WARN) -Isrc -o build/numcheck spec/c/numcheck.c src/numconv.c -lm
	@./build/numcheck $(NUMCHECK_COUNT) $(NUMCHECK_SEED)
	@./build/numcheck --files spec/fixtures/JSONTestSuite/test_parsing/*.json

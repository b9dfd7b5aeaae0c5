# kagari: one non-recursive Makefile. `make run` and `make test` are the two commands.
# SANITIZE=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer (make test does).

CC      ?= cc
PKGS    := lua5.4 libcurl libcjson libevent libevent_openssl sqlite3 openssl expat libargon2 \
           libqrencode
SANITIZE ?= 0
# Compiler lines are quiet ("CC file" only) unless V=1.
V       ?= 0
ifeq ($(V),1)
Q       :=
SAY     := @true
else
Q       := @
SAY     := @printf '  %-6s %s\n'
endif

ifeq ($(SANITIZE),1)
B       := build/san
OPT     := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
B       := build/rel
OPT     := -O2
endif

# The test hooks (engine/testclock.c: a clock tests can move) are compiled into the test
# build only; a release build refuses the setting that would turn them on.
TEST_HOOKS ?= $(SANITIZE)
ifeq ($(TEST_HOOKS),1)
OPT     += -DKAGARI_TEST_HOOKS
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wwrite-strings
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -I. $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(filter -fsanitize%,$(OPT))
LDLIBS  += $(PKG_LIBS) -lm -lpthread

LIB_SRC  := $(filter-out engine/main.c,$(wildcard engine/*.c connectors/*.c portal/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o) $(B)/gen/portal_assets.o
# The portal's web files, embedded in the binary (scripts/embed.py; no network needed).
PORTAL_WEB := $(wildcard portal/web/*)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/%,$(filter-out tests/unit/test_main.c,$(UNIT_SRC)))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REPLAY := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
MOCK_SRC := $(wildcard tests/mock/*.c)
PLUGIN_SRC := $(wildcard tests/plugin/*.c)

all: $(B)/kagari

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

build/gen/portal_assets.c: portal/web $(PORTAL_WEB) scripts/embed.py
	@mkdir -p $(dir $@)
	$(SAY) GEN $@
	$(Q)python3 scripts/embed.py portal/web $@

$(B)/gen/portal_assets.o: build/gen/portal_assets.c
	@mkdir -p $(dir $@)
	$(SAY) CC $<
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(B)/libkagari.a: $(LIB_OBJ)
	@rm -f $@
	$(SAY) AR $@
	$(Q)ar rcs $@ $^

$(B)/kagari: $(B)/engine/main.o $(B)/libkagari.a
	$(SAY) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/test_%: $(B)/tests/unit/test_%.o $(B)/tests/unit/test_main.o $(B)/libkagari.a
	@mkdir -p $(dir $@)
	$(SAY) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz targets: replay binaries (corpus runner, any compiler) for make test, and real
# libFuzzer binaries with clang for `make fuzz`.
$(B)/fuzz/fuzz_%: $(B)/tests/fuzz/fuzz_%.o $(B)/tests/fuzz/replay.o $(B)/libkagari.a
	@mkdir -p $(dir $@)
	$(SAY) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ifneq ($(MOCK_SRC),)
$(B)/kagari-mock: $(MOCK_SRC:%.c=$(B)/%.o) $(B)/libkagari.a
	$(SAY) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
MOCK_BIN := $(B)/kagari-mock
endif

# The daemon with the test-only plug-ins of tests/plugin linked in (each registers itself):
# a connector added by files alone, as a new vendor's would be.
ifneq ($(PLUGIN_SRC),)
$(B)/kagari-plugtest: $(B)/engine/main.o $(PLUGIN_SRC:%.c=$(B)/%.o) $(B)/libkagari.a
	$(SAY) LD $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
PLUGTEST_BIN := $(B)/kagari-plugtest
endif

build-tests: $(B)/kagari $(UNIT_BIN) $(FUZZ_REPLAY) $(MOCK_BIN) $(PLUGTEST_BIN)

# Each command installs only the Debian packages it needs (scripts/install-deps.sh).
deps:
	@sh scripts/install-deps.sh run
deps-test:
	@sh scripts/install-deps.sh test
deps-bench:
	@sh scripts/install-deps.sh bench
deps-fuzz:
	@sh scripts/install-deps.sh fuzz

# The browser tests' driver: playwright-core, pinned, in the build tree (never global); the
# browser is Debian's chromium (scripts/install-deps.sh).
PLAYWRIGHT_VERSION := 1.61.1
BROWSER_DIR := build/browser
$(BROWSER_DIR)/.playwright-$(PLAYWRIGHT_VERSION):
	@mkdir -p $(BROWSER_DIR)
	@echo '{"private": true}' >$(BROWSER_DIR)/package.json
	cd $(BROWSER_DIR) && npm install --no-audit --no-fund --no-save --loglevel=error \
	    playwright-core@$(PLAYWRIGHT_VERSION)
	@touch $@

browser-deps: $(BROWSER_DIR)/.playwright-$(PLAYWRIGHT_VERSION)

# ---- the two commands ----

run: deps
	@$(MAKE) --no-print-directory SANITIZE=0 all build/rel/kagari-mock
	@sh scripts/demo.sh build/rel/kagari

test: deps-test check browser-deps
	@$(MAKE) --no-print-directory SANITIZE=1 build-tests
	@sh tests/run.sh build/san

# Layering (which folder may include which, no dependency circle, own header first) and
# the format of every C file (.clang-format); scripts/check.py tests its own rules first.
check:
	@python3 scripts/check.py --self-test

bench: deps-bench
	@$(MAKE) --no-print-directory SANITIZE=0 all build/rel/kagari-mock
	@python3 tests/bench/bench.py build/rel/kagari
	@python3 tests/bench/portal_bench.py build/rel

FUZZ_CC ?= clang
fuzz: deps-fuzz build/gen/portal_assets.c
	@mkdir -p build/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  $(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I. \
	    $(PKG_CFLAGS) -o build/fuzz/$$n $$f $(LIB_SRC) build/gen/portal_assets.c $(PKG_LIBS) -lm -lpthread || exit 1; \
	  echo "built build/fuzz/$$n (run: build/fuzz/$$n tests/fuzz/corpus/$${n#fuzz_})"; done

format:
	clang-format -i $(wildcard engine/*.[ch] connectors/*.[ch] portal/*.[ch] tests/unit/*.[ch] \
	  tests/fuzz/*.[ch] tests/mock/*.[ch] tests/plugin/*.[ch])

clean:
	rm -rf build

.PHONY: all deps deps-test deps-bench deps-fuzz browser-deps run test check bench fuzz format clean \
	build-tests
.DELETE_ON_ERROR:
.SECONDARY:

-include $(shell find build -name '*.d' 2>/dev/null)

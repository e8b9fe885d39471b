# rproxy -- build, test, bench.  `make` builds ./rproxy (the host daemon).
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Wpointer-arith
CPPFLAGS = -D_GNU_SOURCE -I. -Iport -Iboards/host
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
BUILD    = build
HOST_SRC = rproxy.c port/posix.c boards/host/main.c
# TLS termination with BearSSL (libbearssl-dev); `make RP_TLS=0` builds without.
RP_TLS  ?= 1
ifeq ($(RP_TLS),1)
CPPFLAGS += -DRP_ENABLE_TLS=1
LDLIBS   += -lbearssl
endif

.PHONY: all deps demo test unit integration valgrind check-symbols size bench bench-tls bench-cache soak clean

all: rproxy check-symbols

# rproxy.c is generated from the sections in src/ (see scripts/amalgamate.sh).
rproxy.c: src/*.c scripts/amalgamate.sh
	sh scripts/amalgamate.sh > $@.tmp && mv $@.tmp $@

rproxy: $(HOST_SRC) rproxy.h port/*.h boards/host/*.h
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -o $@ $(HOST_SRC) $(LDLIBS)

$(BUILD)/rproxy.o: rproxy.c rproxy.h
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ rproxy.c

# The core must not allocate and must export only rp_-prefixed symbols.
check-symbols: $(BUILD)/rproxy.o
	@bad=$$(nm -u $< | awk '{print $$2}' | grep -E '^(malloc|calloc|realloc|free|strdup|aligned_alloc|posix_memalign)$$'); \
	 if [ -n "$$bad" ]; then echo "rproxy.o references allocation: $$bad"; exit 1; fi
	@bad=$$(nm -g --defined-only $< | awk '{print $$3}' | grep -v '^rp_'); \
	 if [ -n "$$bad" ]; then echo "rproxy.o exports symbols without rp_: $$bad"; exit 1; fi
	@echo "check-symbols: ok (no allocation, every export rp_-prefixed)"

# Sanitized daemon for the integration tests.
$(BUILD)/rproxy-asan: $(HOST_SRC) rproxy.h
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(WARN) -O1 -g $(SAN) -o $@ $(HOST_SRC) $(LDLIBS)

# Tiny pools, so the exhaustion paths run in the integration tests.
$(BUILD)/rproxy-small: $(HOST_SRC) rproxy.h
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(WARN) -O1 -g $(SAN) -DRP_MAX_CONNS=8 -DRP_MAX_UPSTREAM=4 -DRP_MAX_TLS_CONNS=2 -o $@ $(HOST_SRC) $(LDLIBS)

$(BUILD)/devsim: tests/devsim.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) -O2 -g -Wall -Wextra -o $@ $<

UNIT_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/test_*.c))
$(BUILD)/unit/%: tests/unit/%.c tests/unit/*.h tests/fakeport.c rproxy.c rproxy.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(CPPFLAGS) -Itests -Itests/unit $(WARN) -O1 -g $(SAN) -o $@ $< rproxy.c tests/fakeport.c $(LDLIBS)

# test_knobs includes rproxy.c too, built with the board's RP_ENABLE_IPV6 0 and
# RP_ENABLE_WALL_CLOCK 0.
$(BUILD)/unit/test_knobs: tests/unit/test_knobs.c tests/unit/*.h tests/fakeport.c rproxy.c rproxy.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(CPPFLAGS) -Itests -Itests/unit $(WARN) -O1 -g $(SAN) -o $@ $< tests/fakeport.c $(LDLIBS)

# test_cache_*.c include rproxy.c themselves (white-box: they call the static
# cache functions), so rproxy.c is not linked again; this rule overrides the
# pattern above (a shorter stem wins).
$(BUILD)/unit/test_cache_%: tests/unit/test_cache_%.c tests/unit/*.h tests/fakeport.c rproxy.c rproxy.h
	@mkdir -p $(BUILD)/unit
	$(CC) $(CPPFLAGS) -Itests -Itests/unit $(WARN) -O1 -g $(SAN) -o $@ $< tests/fakeport.c $(LDLIBS)

# test_cfgimage compares a parsed config with its build-time image, printed by
# build/cfgimage (scripts/cfgimage.c, these knobs) with test certificates.
$(BUILD)/cfgimage: scripts/cfgimage.c rproxy.c rproxy.h port/posix.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(WARN) -O1 -g -o $@ scripts/cfgimage.c rproxy.c port/posix.c $(LDLIBS)

$(BUILD)/unit/cfgimage/ca.crt:
	@mkdir -p $(dir $@)
	cd $(dir $@) && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	    -subj /CN=cfgimage-ec -keyout ec.key -out ec.crt 2>/dev/null && \
	  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=cfgimage-rsa \
	    -keyout rsa.key -out rsa.crt 2>/dev/null && cp ec.crt ca.crt

$(BUILD)/unit/cfgimage-all.c: tests/unit/cfgimage.conf $(BUILD)/cfgimage $(BUILD)/unit/cfgimage/ca.crt
	cd $(BUILD)/unit/cfgimage && ../../cfgimage $(CURDIR)/tests/unit/cfgimage.conf cfgimage_all >../cfgimage-all.c.tmp
	mv $@.tmp $@

$(BUILD)/unit/test_cfgimage: tests/unit/test_cfgimage.c tests/unit/*.h tests/fakeport.c rproxy.c rproxy.h \
                             $(BUILD)/unit/cfgimage-all.c
	$(CC) $(CPPFLAGS) -Itests -Itests/unit -I$(BUILD)/unit $(WARN) -O1 -g $(SAN) \
	    -DCFG_DIR='"$(BUILD)/unit/cfgimage"' -DCFGIMAGE='"$(BUILD)/cfgimage"' \
	    -o $@ $< rproxy.c tests/fakeport.c $(LDLIBS)

deps:
	@sh scripts/deps.sh

# `make unit T="keepalive vary"` runs only the tests those names select in
# each binary (see tests/unit/tap.h); a name no binary knows is an error.
unit: $(UNIT_TESTS)
	@for n in $(T); do for t in $(UNIT_TESTS); do $$t --list; done | grep -qF -- "$$n" || \
	   { echo "unit: no unit test is named like \"$$n\" ($(BUILD)/unit/test_* --list)"; exit 1; }; done
	@for t in $(UNIT_TESTS); do $$t $(if $(T),--allow-unknown $(T)) || true; done

integration: $(BUILD)/rproxy-asan $(BUILD)/rproxy-small $(BUILD)/devsim rproxy
	@RPROXY=$(BUILD)/rproxy-asan RPROXY_SMALL=$(BUILD)/rproxy-small DEVSIM=$(BUILD)/devsim python3 tests/integration/run.py

valgrind: rproxy $(BUILD)/devsim
	@RPROXY=./rproxy DEVSIM=$(BUILD)/devsim RP_VALGRIND=1 python3 tests/integration/run.py --valgrind

# Everything; the last line is "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory $(UNIT_TESTS) $(BUILD)/rproxy-asan $(BUILD)/rproxy-small $(BUILD)/devsim
	@sh scripts/runtests.sh

demo: deps
	@$(MAKE) --no-print-directory rproxy $(BUILD)/devsim
	@sh scripts/demo.sh

size: $(BUILD)/rproxy.o
	@sh scripts/size.sh

bench: rproxy $(BUILD)/devsim
	@sh bench/run.sh

bench-tls: rproxy $(BUILD)/devsim
	@sh bench/tls.sh

bench-cache: rproxy $(BUILD)/devsim
	@sh bench/cache.sh

# 1,000,000 mixed requests at 200 connections; SOAK_VALGRIND=1 for the valgrind run.
soak: rproxy $(BUILD)/devsim
	@sh bench/soak.sh

clean:
	rm -rf $(BUILD) rproxy

# Rules that live beside what they build: the Cortex-M4 firmware and QEMU
# run (boards/mps2-an386), the libFuzzer targets (tests/fuzz).
-include boards/mps2-an386/board.mk
-include tests/fuzz/fuzz.mk

# rproxy -- build, test, bench.  `make` builds ./rproxy (the host daemon).
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Wpointer-arith
CPPFLAGS = -D_GNU_SOURCE -I. -Iport -Iboards/host
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
BUILD    = build
# The core: src/rp_int.h and the sections src/NN-*.c.  rproxy.c is made from
# them (scripts/amalgamate.sh) and is what the daemon, the firmware and a
# user's project compile; the tests compile the sections themselves.
CORE_SRC = $(sort $(wildcard src/[0-9][0-9]-*.c))
CORE_HDR = rproxy.h src/rp_int.h
# make LINES=1: the daemon from an amalgamation with #line directives, so a
# debugger and the sanitizers point at src/ (rproxy.c itself has none).
ifeq ($(LINES),1)
CORE_C   = $(BUILD)/rproxy-lines.c
else
CORE_C   = rproxy.c
endif
HOST_SRC = $(CORE_C) port/posix.c boards/host/main.c
# TLS termination with BearSSL (libbearssl-dev); `make RP_TLS=0` builds without.
RP_TLS  ?= 1
ifeq ($(RP_TLS),1)
CPPFLAGS += -DRP_ENABLE_TLS=1
LDLIBS   += -lbearssl
endif

.PHONY: all deps demo install man deb test unit integration valgrind check-symbols check-modules size size-tables bench bench-tls bench-cache bench-share soak clean

all: rproxy check-symbols check-modules

# rproxy.c is generated from the sections in src/ (see scripts/amalgamate.sh).
rproxy.c: $(CORE_SRC) src/rp_int.h scripts/amalgamate.sh
	sh scripts/amalgamate.sh > $@.tmp && mv $@.tmp $@

$(BUILD)/rproxy-lines.c: $(CORE_SRC) src/rp_int.h scripts/amalgamate.sh
	@mkdir -p $(BUILD)
	sh scripts/amalgamate.sh --lines > $@.tmp && mv $@.tmp $@

# The sections compiled one by one, every warning an error, RP_ASSERT on,
# sanitizers: what the unit tests and the integration daemon link.  Each
# section must compile alone (-Wmissing-prototypes: what it shares is
# declared in src/rp_int.h).
TCORE     = $(BUILD)/tcore
TCORE_OBJ = $(patsubst src/%.c,$(TCORE)/%.o,$(CORE_SRC))
TCFLAGS   = $(WARN) -Wmissing-prototypes -Werror -O1 -g $(SAN) -DRP_ENABLE_ASSERT=1
$(TCORE_OBJ): $(TCORE)/%.o: src/%.c $(CORE_HDR)
	@mkdir -p $(TCORE)
	$(CC) $(CPPFLAGS) -Isrc $(TCFLAGS) -c -o $@ $<

check-modules: $(TCORE_OBJ)
	@echo "check-modules: ok (every src/ section compiles alone, warning-free)"

rproxy: $(HOST_SRC) rproxy.h port/*.h boards/host/*.h
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $(HOST_SRC) $(LDLIBS)

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

# Sanitized daemon for the integration tests: the sections, asserts on.
$(BUILD)/rproxy-asan: $(TCORE_OBJ) port/posix.c boards/host/main.c $(CORE_HDR) port/*.h boards/host/*.h
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(WARN) -O1 -g $(SAN) -DRP_ENABLE_ASSERT=1 -o $@ $(TCORE_OBJ) port/posix.c boards/host/main.c $(LDLIBS)

# Tiny pools, so the exhaustion paths run in the integration tests.
$(BUILD)/rproxy-small: $(CORE_SRC) port/posix.c boards/host/main.c $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) -Isrc $(WARN) -O1 -g $(SAN) -DRP_ENABLE_ASSERT=1 -DRP_MAX_CONNS=8 -DRP_MAX_UPSTREAM=4 -DRP_MAX_TLS_CONNS=2 \
	    -o $@ $(CORE_SRC) port/posix.c boards/host/main.c $(LDLIBS)

$(BUILD)/devsim: tests/devsim.c
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) -O2 -g -Wall -Wextra -o $@ $<

UNIT_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/test_*.c))
UNIT_CC = $(CC) $(CPPFLAGS) -Isrc -Itests -Itests/unit $(WARN) -O1 -g $(SAN) -DRP_ENABLE_ASSERT=1
$(BUILD)/unit/%: tests/unit/%.c tests/unit/*.h tests/fakeport.c $(TCORE_OBJ) $(CORE_HDR)
	@mkdir -p $(BUILD)/unit
	$(UNIT_CC) -o $@ $< $(TCORE_OBJ) tests/fakeport.c $(LDLIBS)

# White-box cache tests (test_cache_*): the sections built again with a small
# arena, so a few operations fill it (tests/unit/cache_scenario.h refuses
# other knobs).
CACHE_KNOBS = -DRP_CACHE_BYTES=65536u -DRP_CACHE_BLOCK=256u -DRP_CACHE_ENTRIES=64 \
              -DRP_MAX_CONNS=8 -DRP_MAX_UPSTREAM=8
TCACHE      = $(BUILD)/tcore-cache
TCACHE_OBJ  = $(patsubst src/%.c,$(TCACHE)/%.o,$(CORE_SRC))
$(TCACHE_OBJ): $(TCACHE)/%.o: src/%.c $(CORE_HDR)
	@mkdir -p $(TCACHE)
	$(CC) $(CPPFLAGS) -Isrc $(TCFLAGS) $(CACHE_KNOBS) -c -o $@ $<
$(BUILD)/unit/test_cache_%: tests/unit/test_cache_%.c tests/unit/*.h tests/fakeport.c $(TCACHE_OBJ) $(CORE_HDR)
	@mkdir -p $(BUILD)/unit
	$(UNIT_CC) $(CACHE_KNOBS) -o $@ $< $(TCACHE_OBJ) tests/fakeport.c $(LDLIBS)

# test_knobs: the sections built with knobs the board turns off, in one command.
$(BUILD)/unit/test_knobs: tests/unit/test_knobs.c tests/unit/*.h tests/fakeport.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)/unit
	$(UNIT_CC) -DRP_ENABLE_IPV6=0 -DRP_ENABLE_WALL_CLOCK=0 -DRP_ENABLE_REDIRECT=0 \
	    -DRP_ENABLE_ACCESS_LOG=0 -DRP_ENABLE_REASONS=0 -DRP_ENABLE_DNS=0 -DRP_ENABLE_LIMITS=0 \
	    -o $@ $< $(CORE_SRC) tests/fakeport.c $(LDLIBS)

# test_loop: the sections built with a small turn bound (3 reports, 4096 bytes).
$(BUILD)/unit/test_loop: tests/unit/test_loop.c tests/unit/*.h tests/fakeport.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)/unit
	$(UNIT_CC) -DRP_TURN_MAX_EVENTS=3 -DRP_TURN_MAX_BYTES=4096 -o $@ $< $(CORE_SRC) tests/fakeport.c $(LDLIBS)

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
	    -keyout rsa.key -out rsa.crt 2>/dev/null && cp ec.crt ca.crt && \
	  printf '# cfgimage\nalice:%s\nbob:%s\n' "$$(openssl passwd -5 -salt s1 a)" "$$(openssl passwd -6 -salt s2 b)" >staff.users

$(BUILD)/unit/cfgimage-all.c: tests/unit/cfgimage.conf $(BUILD)/cfgimage $(BUILD)/unit/cfgimage/ca.crt
	cd $(BUILD)/unit/cfgimage && ../../cfgimage $(CURDIR)/tests/unit/cfgimage.conf cfgimage_all >../cfgimage-all.c.tmp
	mv $@.tmp $@

$(BUILD)/unit/test_cfgimage: tests/unit/test_cfgimage.c tests/unit/*.h tests/fakeport.c $(TCORE_OBJ) $(CORE_HDR) \
                             $(BUILD)/unit/cfgimage-all.c
	$(UNIT_CC) -I$(BUILD)/unit \
	    -DCFG_DIR='"$(BUILD)/unit/cfgimage"' -DCFGIMAGE='"$(BUILD)/cfgimage"' \
	    -o $@ $< $(TCORE_OBJ) tests/fakeport.c $(LDLIBS)

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

# The demo needs only a compiler, BearSSL, curl and openssl (deps.sh demo).
demo:
	@sh scripts/deps.sh demo
	@$(MAKE) --no-print-directory rproxy $(BUILD)/devsim
	@sh scripts/demo.sh

size: $(BUILD)/rproxy.o
	@sh scripts/size.sh

# The memory tables in rproxy.h and README.md, rewritten from scripts/size.sh
# (needs an x86_64 cc and arm-none-eabi-gcc; tests/header_check.sh checks them).
size-tables:
	@sh scripts/size.sh --write

bench: rproxy $(BUILD)/devsim
	@sh bench/run.sh

bench-tls: rproxy $(BUILD)/devsim
	@sh bench/tls.sh

bench-cache: rproxy $(BUILD)/devsim
	@sh bench/cache.sh

bench-share: rproxy
	@sh bench/share.sh

# 1,000,000 mixed requests at 200 connections; SOAK_VALGRIND=1 for the valgrind run.
soak: rproxy $(BUILD)/devsim
	@sh bench/soak.sh

# `make install [PREFIX=/usr/local] [DESTDIR=]`: the daemon, the man pages,
# the systemd unit, logrotate rules and a commented example configuration
# (never over an existing one).  PREFIX=/usr puts the configuration in /etc.
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
INSTALL    ?= install
install: rproxy man/rproxy.8 man/rproxy.conf.5 dist/rproxy.service.in dist/rproxy.conf dist/rproxy.logrotate
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/rproxy $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	$(INSTALL) -m 755 rproxy $(DESTDIR)$(SBINDIR)/rproxy
	$(INSTALL) -m 644 man/rproxy.8 $(DESTDIR)$(MANDIR)/man8/rproxy.8
	$(INSTALL) -m 644 man/rproxy.conf.5 $(DESTDIR)$(MANDIR)/man5/rproxy.conf.5
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' dist/rproxy.service.in \
	    >$(DESTDIR)$(UNITDIR)/rproxy.service.tmp
	mv $(DESTDIR)$(UNITDIR)/rproxy.service.tmp $(DESTDIR)$(UNITDIR)/rproxy.service
	chmod 644 $(DESTDIR)$(UNITDIR)/rproxy.service
	$(INSTALL) -m 644 dist/rproxy.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/rproxy
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/rproxy/rproxy.conf ]; then \
	    echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/rproxy/rproxy.conf"; \
	else $(INSTALL) -m 644 dist/rproxy.conf $(DESTDIR)$(SYSCONFDIR)/rproxy/rproxy.conf; fi

# The man pages are made from README.md (scripts/manpages.py); the package
# test fails when man/ is not what the README makes.
man:
	python3 scripts/manpages.py man

# `make deb [ARCH=arm64|armhf]`: the .deb, built by dpkg-buildpackage in a
# copy of the tree under build/deb/ (it writes to the parent directory);
# the result is build/deb/rproxy_VERSION_ARCH.deb.
DEB_VERSION = $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
deb:
	@v=$$(sed -n 's/^#define RP_VERSION "\(.*\)"/\1/p' rproxy.h); [ "$$v" = "$(DEB_VERSION)" ] || \
	    { echo "deb: debian/changelog says $(DEB_VERSION), rproxy.h $$v"; exit 1; }
	rm -rf $(BUILD)/deb/src-$(or $(ARCH),native) && mkdir -p $(BUILD)/deb/src-$(or $(ARCH),native)/rproxy
	tar --exclude=./build --exclude=./deps --exclude=./.git --exclude=./rproxy -cf - . | \
	    tar -xf - -C $(BUILD)/deb/src-$(or $(ARCH),native)/rproxy
	cd $(BUILD)/deb/src-$(or $(ARCH),native)/rproxy && \
	    dpkg-buildpackage -b -us -uc $(if $(ARCH),-a$(ARCH)) >../build.log 2>&1 || \
	    { tail -40 ../build.log; exit 1; }
	mv $(BUILD)/deb/src-$(or $(ARCH),native)/rproxy_$(DEB_VERSION)_*.deb $(BUILD)/deb/
	rm -rf $(BUILD)/deb/src-$(or $(ARCH),native)
	@ls $(BUILD)/deb/rproxy_$(DEB_VERSION)_$(or $(ARCH),$(shell dpkg --print-architecture)).deb

clean:
	rm -rf $(BUILD) rproxy

# Rules that live beside what they build: the Cortex-M4 firmware and QEMU
# run (boards/mps2-an386), the libFuzzer targets (tests/fuzz).
-include boards/mps2-an386/board.mk
-include tests/fuzz/fuzz.mk

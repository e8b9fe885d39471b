# tests/fuzz/fuzz.mk -- libFuzzer targets; the top-level Makefile includes it.
#
#   make fuzz [FUZZ_SECS=60]     each target for FUZZ_SECS seconds (corpus grows in
#                                build/fuzz/corpus/<target>, seeds from tests/fuzz/corpus)
#   make fuzz-smoke              each target for 60 s, one TAP line per target (CI);
#                                auth and proxyproto at most 30 s (tests/fuzz/run.sh)
#   make fuzz-build              just build build/fuzz/fuzz_<target>
#   build/fuzz/fuzz_conn tests/fuzz/corpus/conn   run one by hand (libFuzzer flags apply)
#
# A crash leaves build/fuzz/<target>-crash-* (the input); reproduce it with
# `build/fuzz/fuzz_<target> FILE`.  Needs clang with libFuzzer (Debian: clang,
# libclang-rt-<N>-dev or the llvm-<N> runtime); `make deps` installs clang.
# The tls target also needs libbearssl-dev, openssl and xxd (its test certificate
# is generated into build/fuzz/ on first build).

FUZZ_CC      ?= clang
FUZZ_SECS    ?= 60
FUZZ_SMOKE_SECS ?= 60
FUZZ_DIR      = build/fuzz
FUZZ_TARGETS  = request response chunked config conn tls cache auth proxyproto share pathmap
FUZZ_BINS     = $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -D_GNU_SOURCE -I. -Isrc -Itests -Itests/fuzz -DRP_ENABLE_ASSERT=1
# Parsers: the default knobs.  The connection target: tiny pools and buffers,
# so exhaustion, full buffers and backpressure happen with small inputs.
FUZZ_SMALL    = -DRP_MAX_CONNS=4 -DRP_MAX_UPSTREAM=3 -DRP_BUF_SIZE=2048 \
                -DRP_MAX_HEAD=1536 -DRP_MAX_URI=512 -DRP_MAX_HEADERS=16
# Every target compiles the core's sections (src/, asserts on), not rproxy.c.
FUZZ_DEPS     = $(CORE_SRC) $(CORE_HDR) tests/fuzz/fuzz.h

.PHONY: fuzz fuzz-smoke fuzz-build

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_conn: tests/fuzz/fuzz_conn.c tests/fakeport.c tests/fakeport.h $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SMALL) -o $@ $< $(CORE_SRC) tests/fakeport.c

# The cache target is white-box (it includes src/rp_int.h for the cache's
# internal functions); a small arena and entry table
# so eviction and a full arena come within a few operations.
FUZZ_CACHE    = -DRP_CACHE_BYTES=16384 -DRP_CACHE_BLOCK=256 -DRP_CACHE_ENTRIES=16 \
                -DRP_MAX_CONNS=4 -DRP_MAX_UPSTREAM=4

$(FUZZ_DIR)/fuzz_cache: tests/fuzz/fuzz_cache.c tests/fakeport.c tests/fakeport.h $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_CACHE) -o $@ $< $(CORE_SRC) tests/fakeport.c

# The TLS target: a throwaway EC P-256 certificate and key, made once here with
# openssl and embedded (xxd -i) -- test material only, never committed.
FUZZ_TLS_CERT = $(FUZZ_DIR)/tls_cert.h

$(FUZZ_TLS_CERT):
	@mkdir -p $(FUZZ_DIR)
	openssl ecparam -name prime256v1 -genkey -noout -out $(FUZZ_DIR)/tls_key.pem
	openssl req -x509 -new -key $(FUZZ_DIR)/tls_key.pem -subj /CN=localhost -days 3650 \
	    -out $(FUZZ_DIR)/tls_crt.pem
	openssl x509 -in $(FUZZ_DIR)/tls_crt.pem -outform DER -out $(FUZZ_DIR)/tls_crt.der
	{ xxd -i -n fz_crt_pem $(FUZZ_DIR)/tls_crt.pem && xxd -i -n fz_key_pem $(FUZZ_DIR)/tls_key.pem \
	  && xxd -i -n fz_crt_der $(FUZZ_DIR)/tls_crt.der; } >$@.tmp && mv $@.tmp $@

$(FUZZ_DIR)/fuzz_tls: tests/fuzz/fuzz_tls.c $(FUZZ_TLS_CERT) tests/fakeport.c tests/fakeport.h $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SMALL) -DRP_MAX_TLS_CONNS=2 -DRP_ENABLE_TLS=1 -I$(FUZZ_DIR) \
	    -o $@ $< $(CORE_SRC) tests/fakeport.c -lbearssl

# The auth target (src/20-auth.c, white-box): on without TLS, so BearSSL is
# linked for its SHA-2; at most 2,000 rounds per hash, so an input costs
# milliseconds, not seconds.
$(FUZZ_DIR)/fuzz_auth: tests/fuzz/fuzz_auth.c $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DRP_ENABLE_AUTH=1 -DRP_AUTH_MAX_ROUNDS=2000 \
	    -o $@ $< $(CORE_SRC) tests/fakeport.c -lbearssl

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRC) tests/fakeport.c

fuzz: $(FUZZ_BINS)
	@sh tests/fuzz/run.sh $(FUZZ_SECS) $(FUZZ_TARGETS)

fuzz-smoke: $(FUZZ_BINS)
	@sh tests/fuzz/run.sh $(FUZZ_SMOKE_SECS) $(FUZZ_TARGETS)

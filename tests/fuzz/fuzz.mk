# tests/fuzz/fuzz.mk -- libFuzzer targets; the top-level Makefile includes it.
#
#   make fuzz [FUZZ_SECS=60]     each target for FUZZ_SECS seconds (corpus grows in
#                                build/fuzz/corpus/<target>, seeds from tests/fuzz/corpus)
#   make fuzz-smoke              each target for 10 s, one TAP line per target (CI)
#   make fuzz-build              just build build/fuzz/fuzz_<target>
#   build/fuzz/fuzz_conn tests/fuzz/corpus/conn   run one by hand (libFuzzer flags apply)
#
# A crash leaves build/fuzz/<target>-crash-* (the input); reproduce it with
# `build/fuzz/fuzz_<target> FILE`.  Needs clang with libFuzzer (Debian: clang,
# libclang-rt-<N>-dev or the llvm-<N> runtime); `make deps` installs clang.

FUZZ_CC      ?= clang
FUZZ_SECS    ?= 60
FUZZ_SMOKE_SECS ?= 10
FUZZ_DIR      = build/fuzz
FUZZ_TARGETS  = request response chunked config conn
FUZZ_BINS     = $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_CFLAGS   = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -D_GNU_SOURCE -I. -Itests -Itests/fuzz
# Parsers: the default knobs.  The connection target: tiny pools and buffers,
# so exhaustion, full buffers and backpressure happen with small inputs.
FUZZ_SMALL    = -DRP_MAX_CONNS=4 -DRP_MAX_UPSTREAM=3 -DRP_BUF_SIZE=2048 \
                -DRP_MAX_HEAD=1536 -DRP_MAX_URI=512 -DRP_MAX_HEADERS=16
FUZZ_DEPS     = rproxy.c rproxy.h tests/fuzz/fuzz.h

.PHONY: fuzz fuzz-smoke fuzz-build

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_conn: tests/fuzz/fuzz_conn.c tests/fakeport.c tests/fakeport.h $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SMALL) -o $@ $< rproxy.c tests/fakeport.c

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< rproxy.c tests/fakeport.c

# One target for $(1) seconds: seeds + grown corpus, dictionary, crash files
# named after the target.  Prints "ok" / "not ok" with the run's numbers.
FUZZ_RUN = t=$$1; secs=$$2; mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	log=$(FUZZ_DIR)/$$t.log; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	$(FUZZ_DIR)/fuzz_$$t -max_total_time=$$secs -timeout=10 -rss_limit_mb=2048 \
	  -max_len=$$(case $$t in conn) echo 8192;; *) echo 16384;; esac) \
	  -dict=tests/fuzz/http.dict -artifact_prefix=$(FUZZ_DIR)/$$t- -print_final_stats=1 \
	  $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t >$$log 2>&1; rc=$$?; \
	runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
	if [ $$rc = 0 ]; then echo "ok $$n - fuzz $$t: $${secs}s, $${runs:-?} runs, nothing found"; \
	else echo "not ok $$n - fuzz $$t: exit $$rc (see $$log; input in $(FUZZ_DIR)/$$t-crash-*)"; \
	  grep -m3 -E 'ERROR|invariant|runtime error' $$log | sed 's/^/# /'; fail=1; fi

fuzz-smoke fuzz: $(FUZZ_BINS)
	@secs=$(if $(filter fuzz-smoke,$@),$(FUZZ_SMOKE_SECS),$(FUZZ_SECS)); \
	 echo "1..$(words $(FUZZ_TARGETS))"; n=0; fail=0; \
	 for t in $(FUZZ_TARGETS); do n=$$((n+1)); set -- $$t $$secs; $(FUZZ_RUN); done; \
	 exit $$fail

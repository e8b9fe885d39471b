#!/bin/sh
# tests/fuzz/run.sh SECS TARGET... -- run each libFuzzer target (build/fuzz/fuzz_TARGET,
# built by tests/fuzz/fuzz.mk) for SECS seconds over its seeds (tests/fuzz/corpus/TARGET)
# and its grown corpus (build/fuzz/corpus/TARGET), with tests/fuzz/TARGET.dict if there
# is one, else tests/fuzz/http.dict.  The small parsers (auth, proxyproto, pathmap: a few hundred
# lines each, saturated within seconds) run at most 30 s, to keep `make test` short.
# One TAP line per target; a crash leaves build/fuzz/TARGET-crash-* and fails the run.
set -u
cd "$(dirname "$0")/../.." || exit 1
secs=$1
shift
echo "1..$#"
n=0
fail=0
for t in "$@"; do
    n=$((n + 1))
    mkdir -p "build/fuzz/corpus/$t"
    log="build/fuzz/$t.log"
    maxlen=16384
    [ "$t" = conn ] && maxlen=8192
    tsecs=$secs
    case "$t" in auth | proxyproto | share | pathmap) [ "$secs" -gt 30 ] && tsecs=30 ;; esac
    dict=tests/fuzz/http.dict
    [ -f "tests/fuzz/$t.dict" ] && dict=tests/fuzz/$t.dict
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "build/fuzz/fuzz_$t" -max_total_time="$tsecs" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$maxlen" -dict="$dict" -artifact_prefix="build/fuzz/$t-" \
        -print_final_stats=1 "build/fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    if [ "$rc" = 0 ]; then
        echo "ok $n - fuzz $t: ${tsecs}s, ${runs:-?} runs, nothing found"
    else
        echo "not ok $n - fuzz $t: exit $rc (log $log, input build/fuzz/$t-crash-*)"
        grep -a -m3 -E 'ERROR|invariant|runtime error' "$log" | sed 's/^/# /'
        fail=1
    fi
done
exit $fail

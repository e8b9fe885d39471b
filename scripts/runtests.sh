#!/bin/sh
# scripts/runtests.sh -- run every test suite and summarise; `make test` calls it
# after building.  Runs, in order:
#   build/unit/test_*                         unit tests (ASan+UBSan)
#   tests/integration/run.py                  against build/rproxy-asan
#   tests/integration/run.py --valgrind       against ./rproxy under valgrind
#   tests/package/run.sh                      install, .deb, unit, daemon, cross
#   tests/lwip-host/run.sh, tests/lwip-rtos/run.sh, tests/qemu/run.sh and
#   protect.sh (the RP_ENABLE_LIMITS firmware), ops.sh (devices by DNS name), the
#   fuzz smoke run and tests/soak-short.sh
# Each prints TAP lines ("ok N - name" / "not ok N - name"); their output is
# shown as it comes and counted.  A suite that exits non-zero without a
# "not ok" line (a crash, a timeout) counts as one failure named after it.
# The failing lines are repeated at the end, and the very last line is
# exactly "N passed, N failed".  Exit status 1 when anything failed.
#
# Environment: RUNTESTS_VALGRIND=0 skips the valgrind run;
#              RUNTESTS_TIMEOUT=SECONDS limits each suite (default 1800).
set -u
cd "$(dirname "$0")/.." || exit 1

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rproxy-tests.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LIMIT=${RUNTESTS_TIMEOUT:-1800}
passed=0
failed=0
: >"$TMP/failures"

# limited CMD...: CMD, killed after $LIMIT seconds when timeout(1) exists.
limited() {
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 10 "$LIMIT" "$@"
    else
        "$@"
    fi
}

# suite NAME CMD...: run CMD with its output shown and kept, count its TAP lines.
suite() {
    name=$1
    shift
    echo "# $name"
    { limited "$@" 2>&1; echo $? >"$TMP/rc"; } | tee "$TMP/out"
    rc=$(cat "$TMP/rc")
    ok=$(grep -c '^ok' "$TMP/out")
    bad=$(grep -c '^not ok' "$TMP/out")
    grep '^not ok' "$TMP/out" | sed "s|^|$name: |" >>"$TMP/failures"
    why=
    if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
        why="exit status $rc"
        [ "$rc" = 124 ] && why="timed out after ${LIMIT}s"
    elif [ "$rc" = 0 ] && [ "$ok" = 0 ] && [ "$bad" = 0 ]; then
        why="printed no test results"
    fi
    if [ -n "$why" ]; then
        echo "not ok - $name ($why)"
        echo "not ok - $name ($why)" >>"$TMP/failures"
        bad=1
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
}

suite header-check sh tests/header_check.sh

for t in build/unit/test_*; do
    [ -f "$t" ] && [ -x "$t" ] && suite "$t" "$t"
done

if [ -f tests/integration/run.py ]; then
    suite integration env RPROXY=build/rproxy-asan RPROXY_SMALL=build/rproxy-small DEVSIM=build/devsim \
        python3 tests/integration/run.py
    if [ "${RUNTESTS_VALGRIND:-1}" = 0 ]; then
        echo "# valgrind run skipped (RUNTESTS_VALGRIND=0)"
    else
        suite valgrind env RPROXY=./rproxy DEVSIM=build/devsim RP_VALGRIND=1 \
            python3 tests/integration/run.py --valgrind
    fi
fi

# The lwIP port on the host (a TAP in a network namespace of its own), the
# sockets port and the raw port under an RTOS (Debian's liblwip, NO_SYS=0)
# the same way, and the Cortex-M4 firmware under QEMU, end to end.
[ -f tests/lwip-host/run.sh ] && suite lwip-host sh tests/lwip-host/run.sh
[ -f tests/lwip-rtos/run.sh ] && suite lwip-rtos sh tests/lwip-rtos/run.sh
[ -f tests/qemu/run.sh ] && suite qemu bash tests/qemu/run.sh
[ -f tests/qemu/plus.sh ] && suite qemu-plus bash tests/qemu/plus.sh
[ -f tests/qemu/protect.sh ] && suite qemu-protect bash tests/qemu/protect.sh
[ -f tests/qemu/ops.sh ] && suite qemu-ops sh tests/qemu/ops.sh
# Issue 18: make install, man pages, the systemd unit, the .debs (amd64,
# arm64, armhf) with lintian and a throwaway root, the daemon conventions,
# the cross binaries under qemu-user.
[ -f tests/package/run.sh ] && suite package sh tests/package/run.sh
# Every libFuzzer target for a short run (make fuzz runs them longer).
[ -f tests/fuzz/fuzz.mk ] && suite fuzz-smoke make --no-print-directory fuzz-smoke
[ -f tests/soak-short.sh ] && suite soak-short sh tests/soak-short.sh

echo
if [ "$failed" != 0 ]; then
    echo "# failures:"
    cat "$TMP/failures"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

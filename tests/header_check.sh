#!/bin/sh
# tests/header_check.sh -- compile checks, as TAP: rproxy.h as C99 and C++,
# rproxy.c warning-free for Cortex-M targets, the symbol rules on rproxy.o,
# the generated parts (rproxy.c, the memory tables) up to date.
set -u
cd "$(dirname "$0")/.." || exit 1
T=$(mktemp -d "${TMPDIR:-/tmp}/rp-hdr.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
n=0
fails=0
check() { # name, command...
    name=$1
    shift
    n=$((n + 1))
    if "$@" >"$T/log" 2>&1 && [ ! -s "$T/log" ]; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        sed 's/^/# /' "$T/log" | head -20
        fails=$((fails + 1))
    fi
}
# rproxy.c is generated from src/ (scripts/amalgamate.sh): the working file
# must match, and so must the committed one whenever src/ is as committed.
check "rproxy.c is the amalgamation of src/" sh scripts/amalgamate.sh --check
if git rev-parse --git-dir >/dev/null 2>&1 && git diff --quiet HEAD -- src scripts/amalgamate.sh; then
    check "the committed rproxy.c matches the committed src/" \
        sh -c 'git show HEAD:rproxy.c >"$1" && sh scripts/amalgamate.sh | cmp -s - "$1"' _ "$T/committed.c"
fi
# src/ is the source: every section compiles on its own (src/rp_int.h is all
# it shares), warning-free with every warning on, for the host with TLS and
# with every optional feature off, and for the board's Cortex-M4 knobs.
modules() { # compiler, flags...: each src/NN-*.c alone
    cc_=$1
    shift
    for f in src/[0-9][0-9]-*.c; do
        "$cc_" -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Wpointer-arith \
            -Wmissing-prototypes -Werror -I. -Isrc "$@" -c "$f" -o "$T/m.o" || return 1
    done
}
check "src/ sections compile alone (host, TLS, asserts on)" \
    modules cc -D_GNU_SOURCE -DRP_ENABLE_TLS=1 -DRP_ENABLE_ASSERT=1
check "src/ sections compile alone (every optional feature off)" \
    modules cc -DRP_ENABLE_CACHE=0 -DRP_ENABLE_STATUS=0 -DRP_ENABLE_ACCESS_LOG=0 \
    -DRP_ENABLE_REDIRECT=0 -DRP_ENABLE_IPV6=0 -DRP_ENABLE_WALL_CLOCK=0 -DRP_ENABLE_LOG=0 \
    -DRP_ENABLE_CONFIG_TEXT=0 -DRP_ENABLE_AUTH=0 -DRP_ENABLE_PROXY_PROTOCOL=0
printf '#include "rproxy.h"\nint main(void) { static rp_proxy p; rp_cfg_error e;\n  (void)e; return rp_proxy_size() == sizeof p ? 0 : 1; }\n' >"$T/h.c"
cp "$T/h.c" "$T/h.cpp"
check "rproxy.h compiles as C99 -pedantic" \
    cc -std=c99 -pedantic -Wall -Wextra -Wundef -I. -c "$T/h.c" -o "$T/h.o"
if command -v c++ >/dev/null 2>&1; then
    check "rproxy.h compiles as C++11 -pedantic" \
        c++ -std=c++11 -pedantic -Wall -Wextra -I. -c "$T/h.cpp" -o "$T/hpp.o"
fi
check "rproxy.c compiles with -Werror -Wall -Wextra -Wundef -Wshadow" \
    cc -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Werror -I. -c rproxy.c -o "$T/r.o"
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
    for cpu in cortex-m0plus cortex-m4 cortex-m7; do
        check "rproxy.c compiles warning-free for $cpu -Os" \
            arm-none-eabi-gcc -mcpu=$cpu -mthumb -Os -std=c99 -Wall -Wextra -Wundef -Wshadow -Werror \
            -DRP_MAX_CONNS=8 -DRP_BUF_SIZE=2048 -DRP_MAX_HEAD=2048 -DRP_MAX_URI=1024 \
            -I. -c rproxy.c -o "$T/$cpu.o"
    done
fi
# The board (boards/mps2-an386): its knobs, Cortex-M4 -Os, BearSSL's headers
# fetched into deps/ like the firmware build does.  Every section compiles
# alone with them, and rproxy.o for them -- cache, balancing, health, TLS
# glue -- stays within 24 KiB of text (issue 6's footprint target).
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
    budget=24576
    sh scripts/fetch-deps.sh bearssl >&2 || echo "# fetching BearSSL's source failed" >&2
    set -- "-DRP_CONFIG_FILE=\"rp_config.h\"" -Iboards/mps2-an386 -I. -Iport -Ideps/lwip/src/include \
        -isystem deps/bearssl/inc -mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os
    check "src/ sections compile alone (board knobs, Cortex-M4 -Os)" modules arm-none-eabi-gcc "$@"
    check "board rproxy.o (mps2-an386 knobs, Cortex-M4 -Os) text <= $budget bytes" sh -c '
        out=$1 budget=$2
        shift 2
        arm-none-eabi-gcc "$@" -std=c99 -ffunction-sections -fdata-sections -Wall -Wextra -Werror \
            -c rproxy.c -o "$out/board.o" || exit 1
        text=$(arm-none-eabi-size "$out/board.o" | awk "NR == 2 { print \$1 }")
        [ "$text" -le "$budget" ] || { echo "text $text bytes, over the $budget budget"; exit 1; }' \
        _ "$T" "$budget" "$@"
fi
# The memory tables in rproxy.h and README.md are scripts/size.sh's output
# (`make size-tables` rewrites them): the host figures need an x86_64 cc,
# the board's arm-none-eabi-gcc; a figure this machine cannot compute is
# not compared (said on a diagnostic line), and with neither the test is a
# TAP SKIP.
name="memory tables in rproxy.h and README.md match scripts/size.sh"
cols=$(sh scripts/size.sh --columns)
case $cols in
"host board") check "$name" sh scripts/size.sh --check ;;
"")
    n=$((n + 1))
    echo "ok $n - $name # SKIP neither an x86_64 cc nor arm-none-eabi-gcc" ;;
*)
    echo "# $name: only the $cols figures can be computed here"
    check "$name" sh scripts/size.sh --check ;;
esac
check "rproxy.o references no allocation symbol" \
    sh -c "nm -u '$T/r.o' | grep -wE 'malloc|calloc|realloc|free|strdup'; test \$? = 1"
check "rproxy.o exports only rp_-prefixed symbols" \
    sh -c "nm -g --defined-only '$T/r.o' | awk '{print \$3}' | grep -v '^rp_'; test \$? = 1"
echo "1..$n"
[ "$fails" = 0 ]

#!/bin/sh
# scripts/size.sh -- the core's footprint (`make size` builds build/rproxy.o first):
#   - text/data/bss of build/rproxy.o (host, default knobs);
#   - with arm-none-eabi-gcc: rproxy.c for a Cortex-M4 (-Os) with small knobs;
#   - sizeof(rp_proxy) -- all of rproxy's RAM -- for each.
# sizeof is read from the symbol size of `char probe[sizeof(rp_proxy)]`, so it
# works for the cross target too without running anything.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
ARMCC=arm-none-eabi-gcc
SMALL="-DRP_MAX_CONNS=8 -DRP_BUF_SIZE=2048 -DRP_MAX_HEAD=2048 -DRP_MAX_URI=1024"
M4="-mcpu=cortex-m4 -mthumb -Os"
WARN="-std=c99 -Wall -Wextra -Wundef -Wshadow"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rproxy-size.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

[ -f build/rproxy.o ] || { echo "size: build/rproxy.o missing: run 'make size'" >&2; exit 1; }
printf '#include "rproxy.h"\nchar probe[sizeof(rp_proxy)];\n' >"$TMP/probe.c"

# proxy_size LABEL COMPILER NM FLAGS...: print sizeof(rp_proxy) for that build.
proxy_size() {
    label=$1 cc=$2 nm=$3
    shift 3
    "$cc" -I. "$@" -c -o "$TMP/probe.o" "$TMP/probe.c" || return 1
    hex=$("$nm" -S "$TMP/probe.o" | awk '$4 == "probe" { print $2 }')
    printf '  %-36s %12d bytes\n' "$label" "0x$hex"
}

echo "== host, default knobs: build/rproxy.o"
size build/rproxy.o
if command -v "$ARMCC" >/dev/null 2>&1; then
    echo
    echo "== Cortex-M4 $M4, $SMALL"
    "$ARMCC" $M4 $WARN -I. $SMALL -c -o "$TMP/rproxy-m4.o" rproxy.c &&
        arm-none-eabi-size "$TMP/rproxy-m4.o" | sed "s|$TMP/||"
else
    echo
    echo "== Cortex-M4: $ARMCC not installed, skipped"
fi

echo
echo "== sizeof(rp_proxy): all of rproxy's RAM"
proxy_size "host, default knobs" "$CC" nm
proxy_size "host, small knobs" "$CC" nm $SMALL
command -v "$ARMCC" >/dev/null 2>&1 &&
    proxy_size "Cortex-M4, small knobs" "$ARMCC" arm-none-eabi-nm $M4 $SMALL
exit 0

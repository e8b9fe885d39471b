#!/bin/sh
# boards/mps2-an386/size.sh BUILD_DIR -- footprint of the gateway firmware.
#
# rproxy.o alone (arm-none-eabi-size, before --gc-sections), then the linked
# firmware split per component from the linker map: every input section
# kept in the image, attributed by the object it came from.  text = code +
# read-only data (flash), data = initialised RAM (also in flash), bss =
# zeroed RAM; the main stack is shown apart.
set -eu
B=${1:-build/mps2-an386}
echo "rproxy.o alone (Cortex-M4, -Os, -ffunction-sections):"
arm-none-eabi-size "$B/rproxy.o" | sed 's/^/  /'
echo
echo "firmware $B/rproxy-gw.elf per component (from the link map):"
awk -v B="$B" '
function hex(s,   i, v) {
    v = 0
    s = tolower(substr(s, 3))
    for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return v
}
function comp(f) {
    if (f == B "/rproxy.o") return "rproxy.c"
    if (index(f, B "/port/") == 1) return "port/lwip.c"
    if (index(f, B "/lwip/") == 1) return "lwIP core"
    if (f == B "/board/lan9118.o") return "LAN9118 driver"
    if (index(f, B "/board/") == 1) return "board (startup, main, UART)"
    if (index(f, B "/bearssl/") == 1) return "BearSSL"
    if (f ~ /lib(c|g|m)_nano\.a|libnosys|libgcc/) return "newlib-nano, libgcc"
    return "other"
}
function add(size, f,   c) {
    c = comp(f)
    seen[c] = 1
    if (out == ".text" || out == ".ARM.exidx") text[c] += size
    else if (out == ".data") data[c] += size
    else if (out == ".bss") bss[c] += size
}
/^Linker script and memory map/ { on = 1; next }
!on { next }
/^\.[A-Za-z]/ { out = $1; if (out == ".stack") stack = hex($3); next }
/^ \*fill\*/ { f = "fill"; if (NF >= 3) { seen["fill"] = 1; add(hex($3), "padding") } next }
NF >= 4 && $2 ~ /^0x/ && $3 ~ /^0x/ { add(hex($3), $4); next }
NF == 3 && $1 ~ /^0x/ && $2 ~ /^0x/ && $3 !~ /^0x/ { add(hex($2), $3); next }
END {
    printf "  %-30s %8s %8s %8s\n", "component", "text", "data", "bss"
    n = split("rproxy.c|port/lwip.c|lwIP core|BearSSL|LAN9118 driver|board (startup, main, UART)|newlib-nano, libgcc|other", order, "|")
    for (i = 1; i <= n; i++) {
        c = order[i]
        if (!(c in seen)) continue
        printf "  %-30s %8d %8d %8d\n", c, text[c], data[c], bss[c]
        tt += text[c]; td += data[c]; tb += bss[c]
    }
    printf "  %-30s %8d %8d %8d\n", "total (without stack)", tt, td, tb
    printf "  %-30s %8s %8s %8d\n", "main stack", "", "", stack
}' "$B/rproxy-gw.map"
echo
arm-none-eabi-size "$B/rproxy-gw.elf" | sed 's/^/  /'

#!/bin/sh
# scripts/size.sh -- the core's footprint, and the memory tables of rproxy.h
# and README.md.
#
#   sh scripts/size.sh                (`make size`, which builds build/rproxy.o
#                                     first) text/data/bss of build/rproxy.o and
#                                     of a Cortex-M4 build with small knobs,
#                                     sizeof(rp_proxy) for a few knob sets, then
#                                     the memory table
#   sh scripts/size.sh --table h|md   the memory table block exactly as it
#                                     stands in rproxy.h (h) and in README.md's
#                                     "Memory" section (md), between the lines
#                                     "BEGIN generated: scripts/size.sh --table
#                                     h|md" and "END generated: ..."
#   sh scripts/size.sh --write        rewrite both blocks (`make size-tables`)
#   sh scripts/size.sh --check        silent when both blocks are what --table
#                                     prints, else a diff and exit 1 (a test in
#                                     tests/header_check.sh)
#   sh scripts/size.sh --columns      which columns this machine can compute:
#                                     "host board", "host", "board" or ""
#
# The memory table is sizeof each part of rp_proxy, in two columns:
#   host  -- the daemon: rproxy.h's defaults with RP_ENABLE_TLS=1, as `make`
#            builds it; needs an x86_64 $CC (default cc) and <bearssl.h>;
#   board -- boards/mps2-an386/rp_config.h on a Cortex-M4, compiled like
#            tests/header_check.sh compiles the board's rproxy.c; needs
#            arm-none-eabi-gcc and BearSSL's headers in deps/ (fetched).
# Each figure is the symbol size (nm -S) of `char rp_size_NAME[N + 1]` in a
# probe compiled for that target, so nothing runs on the target.  A column
# the machine cannot compute prints "?" figures, which --check takes for any
# figure; --write needs both.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
ARMCC=arm-none-eabi-gcc
SMALL="-DRP_MAX_CONNS=8 -DRP_BUF_SIZE=2048 -DRP_MAX_HEAD=2048 -DRP_MAX_URI=1024"
M4="-mcpu=cortex-m4 -mthumb -Os"
WARN="-std=c99 -Wall -Wextra -Wundef -Wshadow"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rproxy-size.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

# The probe: one symbol per figure.  M(T, f) is the size of member f of T.
cat >"$TMP/probe.c" <<'EOF'
#include "rproxy.h"
#define M(T, f) sizeof(((T *)0)->f)
#define SIZE(name, n) char rp_size_##name[(n) + 1]
SIZE(conn, sizeof(struct rp_conn));
SIZE(conns, M(rp_proxy, clients) + M(rp_proxy, devices));
SIZE(block, M(rp_proxy, bufs[0]) + M(rp_proxy, buf_free[0]));
SIZE(bufpool, M(rp_proxy, bufs) + M(rp_proxy, buf_free));
#if RP_ENABLE_TLS
SIZE(tls, sizeof(struct rp_tls));
SIZE(tlsctx, sizeof(struct rp_tls) - M(struct rp_tls, ibuf) - M(struct rp_tls, obuf));
SIZE(tlsslots, M(rp_proxy, tls));
SIZE(tlscache, M(rp_proxy, tls_cache_buf));
SIZE(store, M(rp_config, certs) + M(rp_config, store));
#endif
SIZE(config, sizeof(rp_config));
#if RP_ENABLE_RELOAD
SIZE(config2, M(rp_proxy, cfg2));
#endif
#if RP_ENABLE_CACHE
SIZE(cache, sizeof(struct rp_cache));
SIZE(arena, M(rp_proxy, cache_arena));
#endif
#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
SIZE(clients, M(rp_proxy, clients_seen));
#endif
#if RP_ENABLE_SHARE
SIZE(streams, M(rp_proxy, streams));
SIZE(rings, M(rp_proxy, stream_ring));
#endif
SIZE(proxy, sizeof(rp_proxy));
SIZE(msg, sizeof(rp_http_msg));
EOF

# probe OUT COMPILER NM FLAGS...: "NAME BYTES" lines for that build into OUT.
probe() {
    out=$1 cc=$2 nm=$3
    shift 3
    "$cc" -I. "$@" -c -o "$TMP/probe.o" "$TMP/probe.c" || return 1
    "$nm" -S "$TMP/probe.o" | while read -r _ hex _ sym; do
        case $sym in rp_size_*) printf '%s %d\n' "${sym#rp_size_}" $((0x$hex - 1)) ;; esac
    done >"$out"
}

# The columns this machine can compute.
columns() {
    c=
    case $("$CC" -dumpmachine 2>/dev/null) in x86_64-*) c=host ;; esac
    command -v "$ARMCC" >/dev/null 2>&1 && c="${c:+$c }board"
    echo "$c"
}

# table FORMAT: the memory table in FORMAT: h (rproxy.h's block), md
# (README.md's block) or plain (make size).  Exit 1 when a probe fails.
table() {
    cols=$(columns)
    : >"$TMP/host" && : >"$TMP/board"
    case " $cols " in *" host "*)
        probe "$TMP/host" "$CC" nm -std=c99 -DRP_ENABLE_TLS=1 || return 1 ;;
    esac
    case " $cols " in *" board "*)
        [ -f deps/bearssl/inc/bearssl.h ] || sh scripts/fetch-deps.sh bearssl >&2
        probe "$TMP/board" "$ARMCC" arm-none-eabi-nm "-DRP_CONFIG_FILE=\"rp_config.h\"" \
            -Iboards/mps2-an386 -isystem deps/bearssl/inc -mcpu=cortex-m4 -mthumb \
            -mfloat-abi=soft -std=c99 -Os || return 1 ;;
    esac
    # The rows: NAME|LABEL|WHAT SETS IT (md only)|DEPTH (h and plain indent).
    # "rest" is rp_proxy less the parts above it.
    awk -v fmt="$1" -v cols=" $cols " -v hostf="$TMP/host" -v boardf="$TMP/board" '
    function commas(n,   s) {
        s = n ""
        while (s ~ /[0-9][0-9][0-9][0-9]/)
            sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
        return s
    }
    function load(f, v,   name, n) {
        while ((getline name < f) > 0) { split(name, n, " "); v[n[1]] = n[2] }
        close(f)
    }
    function fig(col, v, key,   r, k, nk, parts) {
        if (index(cols, " " col " ") == 0) return "?"
        if (key == "rest") {
            r = v["proxy"]
            nk = split("conns bufpool tlsslots tlscache config config2 cache arena clients streams rings", parts, " ")
            for (k = 1; k <= nk; k++) r -= v[parts[k]]
            return commas(r)
        }
        return (key in v) ? commas(v[key]) : "-"
    }
    function md_label(s) {
        if (s ~ /^rp_[a-z_]+:/) sub(/^rp_[a-z_]+/, "`&`", s)
        return s
    }
    BEGIN {
        load(hostf, H); load(boardf, B)
        FS = "|"
        if (fmt == "h")
            printf " *   %-42s %12s %11s\n", "bytes", "host daemon", "mps2 board"
        else if (fmt == "plain")
            printf "  %-42s %12s %11s\n", "bytes", "host daemon", "mps2 board"
        else {
            print "| What | host daemon | mps2-an386 board | Size from |"
            print "|---|---:|---:|---|"
        }
    }
    NF == 4 {
        h = fig("host", H, $1); b = fig("board", B, $1)
        label = substr("    ", 1, 2 * $4) $2
        if (fmt == "h")
            printf " *   %-42s %12s %11s\n", label, h, b
        else if (fmt == "plain")
            printf "  %-42s %12s %11s\n", label, h, b
        else
            printf "| %s | %s | %s | %s |\n", md_label($2), h, b, $3
    }' <<'EOF'
conn|rp_conn: one connection slot|a client or a device connection; `RP_ENABLE_ACCESS_LOG` adds the request's method, target and byte count, `RP_ENABLE_PATH_MAP` the client's Host (`RP_MAP_HOST_MAX`)|0
conns|all connection slots|(`RP_MAX_CONNS` + `RP_MAX_UPSTREAM`) × `rp_conn`|1
block|buffer block|`RP_BUF_SIZE` + a free-stack pointer; taken only while a buffer holds bytes|0
bufpool|buffer pool, all blocks|`RP_NBUFS` = 2 × (`RP_MAX_CONNS` + `RP_MAX_UPSTREAM`) blocks|1
tls|rp_tls: one TLS slot|BearSSL's input buffer (`BR_SSL_BUFSIZE_INPUT` 16,709: full records) + `RP_TLS_OBUF_SIZE` + the contexts below|0
tlsctx|of which engine and X.509 contexts|BearSSL's server/client engine and X.509 validator, in unions|1
tlsslots|all TLS slots|`RP_MAX_TLS_CONNS` × `rp_tls`; clients beyond them are refused|1
tlscache|TLS session cache|`RP_TLS_SESSION_CACHE_BYTES`|0
config|rp_config: the configuration|`RP_MAX_LISTENERS`, `RP_MAX_POOLS`, `RP_MAX_DEVICES`, `RP_MAX_ROUTES` tables, `RP_MAX_HEADER_RULES` × 24 B (host) header rules, `RP_ERROR_PAGE_BYTES` error pages, `RP_CFG_STR_BYTES`, the certificates|0
store|of which certificates and their store|`RP_TLS_MAX_CERTS` × `rp_tls_cert` + `RP_TLS_STORE_BYTES` (DER chains, keys)|1
config2|second configuration slot|`RP_ENABLE_RELOAD`: a new configuration is parsed into it while the running one serves (one `rp_config`)|0
cache|rp_cache: the cache tables|`RP_CACHE_ENTRIES` entries and hash buckets + a link per `RP_CACHE_BLOCK` of the arena|0
arena|cache arena|`RP_CACHE_BYTES`; touched only as objects are stored|0
clients|client table|`RP_CLIENT_TABLE` addresses (`client_limit`, the failed-login lock)|0
streams|shared streams|`RP_MAX_STREAMS` × `rp_stream` (the head kept for joiners, boundaries)|0
rings|shared stream rings|`RP_MAX_STREAMS` × `RP_STREAM_RING`; touched only while streams run|0
rest|everything else|counters, listener sockets, free and idle lists, TLS and EC state, the loop's reports kept between turns (64 × `rp_event` with a `RP_TURN_MAX_*` bound) and longest-turn record|0
proxy|rp_proxy: all of rproxy's RAM|`rp_proxy_size()`|0
msg|rp_http_msg: a parsed head, on the stack|`RP_MAX_HEADERS` × `rp_header` + the views; one per head parsed, two at most|0
EOF
}

# block FILE FORMAT [NEW]: the lines between FILE's markers for FORMAT; with
# NEW, FILE's text with those lines replaced by NEW's.  Exit 1 unless FILE
# has one BEGIN and one END marker for FORMAT.
block() {
    awk -v b="BEGIN generated: scripts/size.sh --table $2" \
        -v e="END generated: scripts/size.sh --table $2" -v new="${3:-}" '
        index($0, e) { on = 0; ends++ }
        (on && new == "") || (!on && new != "") { print }
        index($0, b) { on = 1; begins++; while (new != "" && (getline l < new) > 0) print l }
        END { exit !(begins == 1 && ends == 1) }' "$1"
}

# same GENERATED FILEBLOCK: equal line by line, a "?" word in GENERATED
# matching any word.
same() {
    awk 'NR == FNR { g[++ng] = $0; next }
         { f[++nf] = $0 }
         END {
             if (nf != ng) exit 1
             for (i = 1; i <= ng; i++) {
                 if (g[i] == f[i]) continue
                 n = split(g[i], a, /[ \t]+/)
                 if (split(f[i], b, /[ \t]+/) != n) exit 1
                 for (k = 1; k <= n; k++)
                     if (a[k] != b[k] && a[k] != "?") exit 1
             }
         }' "$1" "$2"
}

# The two blocks: FILE FORMAT per line.
TABLES="rproxy.h h
README.md md"

case "${1:-}" in
--columns)
    columns
    exit 0 ;;
--table)
    case "${2:-}" in h | md | plain) table "$2"; exit $? ;; esac
    echo "usage: scripts/size.sh --table h|md|plain" >&2
    exit 2 ;;
--check)
    rc=0
    echo "$TABLES" | while read -r file fmt; do
        table "$fmt" >"$TMP/gen" || { echo "size.sh: a probe did not compile"; exit 1; }
        block "$file" "$fmt" >"$TMP/cur" ||
            { echo "$file: no single BEGIN/END generated: scripts/size.sh --table $fmt block"; exit 1; }
        if ! same "$TMP/gen" "$TMP/cur"; then
            echo "$file: the memory table is not what scripts/size.sh --table $fmt prints ('make size-tables'):"
            diff -u "$TMP/cur" "$TMP/gen" | sed '1,2d'
            exit 1
        fi
    done || rc=1
    exit $rc ;;
--write)
    if [ "$(columns)" != "host board" ]; then
        echo "size.sh --write needs an x86_64 $CC and $ARMCC (have: $(columns))" >&2
        exit 1
    fi
    echo "$TABLES" | while read -r file fmt; do
        table "$fmt" >"$TMP/gen" || exit 1
        block "$file" "$fmt" "$TMP/gen" >"$TMP/new" ||
            { echo "$file: no single BEGIN/END generated: scripts/size.sh --table $fmt block" >&2; exit 1; }
        if cmp -s "$TMP/new" "$file"; then echo "$file: memory table unchanged"
        else cat "$TMP/new" >"$file" && echo "$file: memory table rewritten"; fi
    done
    exit $? ;;
"") ;;
*)
    echo "usage: scripts/size.sh [--table h|md | --write | --check | --columns]" >&2
    exit 2 ;;
esac

[ -f build/rproxy.o ] || { echo "size: build/rproxy.o missing: run 'make size'" >&2; exit 1; }

# proxy_size LABEL COMPILER NM FLAGS...: print sizeof(rp_proxy) for that build.
proxy_size() {
    label=$1
    shift
    probe "$TMP/one" "$@" || return 1
    printf '  %-36s %12d bytes\n' "$label" "$(awk '$1 == "proxy" { print $2 }' "$TMP/one")"
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
proxy_size "host, rproxy.h defaults (no TLS)" "$CC" nm
proxy_size "host, small knobs" "$CC" nm $SMALL
command -v "$ARMCC" >/dev/null 2>&1 &&
    proxy_size "Cortex-M4, small knobs" "$ARMCC" arm-none-eabi-nm $M4 $SMALL

echo
echo "== the memory table (host daemon: defaults + RP_ENABLE_TLS=1; mps2 board:"
echo "   boards/mps2-an386/rp_config.h; '?': no compiler here for that column)"
table plain
exit 0

#!/bin/sh
# bench/cache.sh -- cache HITS: rproxy's response cache side by side with
# HAProxy's cache and nginx's proxy_cache.  A benchmark: it prints figures and
# says PASS / FAIL against the targets below, but it exits 0 either way (it
# exits 1 only when it cannot run).
#
# One device (build/devsim) answers every request with a body of SIZE bytes and
# "Cache-Control: public, max-age=3600"; in front of it, one at a time, each on
# its own loopback port and all configured alike (one worker / thread,
# keep-alive on both sides, no access logging):
#   rproxy    route pool=bench cache=on            (cache defaults: 1 MiB arena)
#   HAProxy   cache section (total-max-size 4 MB, max-object-size 256 KiB,
#             max-age 3600) + http-request cache-use / http-response cache-store
#   nginx     proxy_cache (keys_zone 1m, cache directory on tmpfs), freshness
#             from the device's Cache-Control; sendfile on (Debian's default)
# For each body size (BENCH_SIZES) and each proxy:
#   warm      one GET /obj?size=SIZE (a miss: the proxy stores it)
#   check     a second GET must not reach the device (its request counter,
#             read with SIGUSR1, must not move) -- printed as "2nd req hit"
#   measure   wrk -t1 -c${BENCH_CONNS} -d${BENCH_SECS}s, keep-alive (wrk's
#             default), the same URL: every request should be a hit.  The
#             device's request count before and after is printed; more than
#             BENCH_MAX_DEVICE_REQS device requests during the run means the
#             proxy was not answering from its cache, and the run is INVALID
#             (so is one where more than 0.1 % of the responses were errors).
#   figures   req/s; req/CPU-s = requests / the proxy's own user+system CPU
#             time during the run (/proc/PID/stat), which other work on the
#             machine moves much less than req/s; cpu% (100 = one core busy:
#             below ~90 % the load generator, not the proxy, was the limit);
#             core% / load% = use of the proxy's CPU / the load CPU (wrk, the
#             idle device) by anything: load% ~100 with the proxy's cpu% below
#             90 means wrk was the limit; core% well above cpu% means other
#             work on the machine took the proxy's core -- both are noted under
#             the table, and then req/CPU-s is the figure to compare;
#             the proxy's RSS after the run (VmRSS).  nginx keeps its cached
#             objects in files, not in its RSS: the cache directory's size is
#             printed beside it.
# Targets (rproxy's cache issue): hit req/s >= 1.1x HAProxy's and >= 2x nginx's.
# PASS / FAIL is printed next to each ratio, INVALID when either side did not
# serve from its cache.  The table also goes to bench/results-cache.txt.
#
# Environment:
#   BENCH_SECS=5             length of each measured run
#   BENCH_CONNS=64           wrk connections
#   BENCH_SIZES="1024 16384" body sizes, bytes (one block of runs each)
#   BENCH_ONLY="rproxy haproxy nginx"   which proxies to run
#   BENCH_REPEAT=1           rounds; with N > 1 the proxies run interleaved
#                            (A B C A B C ...) and the table shows medians
#   BENCH_MAX_DEVICE_REQS=5  device requests tolerated during a measured run
#   BENCH_PIPELINE=1         requests per write from wrk (bench/pipeline.lua);
#                            >1 pipelines them, so wrk's own CPU stops being
#                            the limit (wrk -t1 tops out near 75,000 req/s)
#   BENCH_PIN=1              default (2+ CPUs): the proxy on CPU 0, wrk and
#                            devsim on CPU 1 (taskset), as bench/run.sh; 0 = off
#   BENCH_PORT_LO=27000, BENCH_PORT_HI=27999   loopback ports to pick from
#   RPROXY_ARGS=             extra arguments for ./rproxy
#   BENCH_RESULTS=bench/results-cache.txt
#
# Missing nginx-light, haproxy, wrk or curl are installed with apt-get when run
# as root.  nginx and HAProxy run as the current user with their pid, temp and
# log files in a temporary directory; nginx's cache directory is in it when it
# is on tmpfs, else under /dev/shm (tmpfs on Linux); both are removed on exit,
# and every process started here is stopped on exit.
#
# rproxy also gets `status path=/_status` (loopback only): when its status page
# has cache counters, their change during the run is printed.  It runs with -q
# (no access log), as HAProxy and nginx run without one.
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

BENCH_SECS=${BENCH_SECS:-5}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_SIZES=${BENCH_SIZES:-"1024 16384"}
BENCH_ONLY=${BENCH_ONLY:-"rproxy haproxy nginx"}
BENCH_REPEAT=${BENCH_REPEAT:-1}
BENCH_MAX_DEVICE_REQS=${BENCH_MAX_DEVICE_REQS:-5}
BENCH_RESULTS=${BENCH_RESULTS:-bench/results-cache.txt}
RPROXY_ARGS=${RPROXY_ARGS:-}
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ "$NCPU" -ge 2 ]; then BENCH_PIN=${BENCH_PIN:-1}; else BENCH_PIN=0; fi

# the targets: rproxy hit req/s over the other's
TARGET_HAPROXY=1.1
TARGET_NGINX=2.0
STATUS_PATH=/_status

say() { printf '%s\n' "bench: $*" >&2; }
die() { printf '%s\n' "bench: error: $*" >&2; exit 1; }

selected() { case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

case $BENCH_REPEAT in ''|*[!0-9]*|0) die "BENCH_REPEAT must be a positive integer" ;; esac
case $BENCH_SECS in ''|*[!0-9]*|0) die "BENCH_SECS must be whole seconds" ;; esac
case $BENCH_CONNS in ''|*[!0-9]*|0) die "BENCH_CONNS must be a positive number" ;; esac
case $BENCH_MAX_DEVICE_REQS in ''|*[!0-9]*) die "BENCH_MAX_DEVICE_REQS must be a number" ;; esac
[ -n "$BENCH_SIZES" ] || die "BENCH_SIZES is empty"
for s in $BENCH_SIZES; do
    case $s in *[!0-9]*) die "BENCH_SIZES: '$s' is not a byte count" ;; esac
done
for p in $BENCH_ONLY; do
    case $p in rproxy|nginx|haproxy) ;; *) die "BENCH_ONLY: unknown proxy '$p' (rproxy haproxy nginx)" ;; esac
done

# ---- processes, ports, cleanup, measuring (bench/lib.sh) --------------------

. bench/lib.sh

PORT_LO=${BENCH_PORT_LO:-27000}
PORT_HI=${BENCH_PORT_HI:-27999}
case $PORT_LO$PORT_HI in *[!0-9]*) die "BENCH_PORT_LO / BENCH_PORT_HI must be numbers" ;; esac
[ "$PORT_HI" -gt "$PORT_LO" ] || die "BENCH_PORT_HI must be above BENCH_PORT_LO"

# ---- tools ------------------------------------------------------------------

need_pkgs=""
command -v wrk >/dev/null 2>&1 || need_pkgs="$need_pkgs wrk"
command -v curl >/dev/null 2>&1 || need_pkgs="$need_pkgs curl"
if selected nginx && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    need_pkgs="$need_pkgs nginx-light"
fi
if selected haproxy && ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
    need_pkgs="$need_pkgs haproxy"
fi
# shellcheck disable=SC2086
install_missing $need_pkgs
PATH=$PATH:/usr/sbin:/sbin
export PATH
if selected nginx; then
    NGINX=$(command -v nginx) || die "nginx not found"
fi
if selected haproxy; then
    HAPROXY=$(command -v haproxy) || die "haproxy not found"
fi
command -v wrk >/dev/null 2>&1 || die "wrk not found"

# ---- build ------------------------------------------------------------------

make --no-print-directory -s build/devsim >&2 || die "cannot build build/devsim"
if selected rproxy; then
    make --no-print-directory -s rproxy >&2 ||
        die "cannot build ./rproxy (run with BENCH_ONLY=\"haproxy nginx\" to skip it)"
    [ -x ./rproxy ] || die "./rproxy missing after make"
fi

# ---- nginx's cache directory: on tmpfs ---------------------------------------

NGX_CACHE_BASE=""
if selected nginx; then
    if [ "$(stat -f -c %T "$TMP" 2>/dev/null)" = tmpfs ]; then
        NGX_CACHE_BASE=$TMP/nginx-cache
        mkdir -p "$NGX_CACHE_BASE"
    elif [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
        NGX_CACHE_BASE=$(mktemp -d /dev/shm/rproxy-bench-cache.XXXXXX 2>/dev/null); then
        at_exit "rm -rf '$NGX_CACHE_BASE'"
    else
        NGX_CACHE_BASE=$TMP/nginx-cache
        mkdir -p "$NGX_CACHE_BASE"
        say "warning: no tmpfs for nginx's cache directory; it is on $(stat -f -c %T "$TMP" 2>/dev/null)"
    fi
    chmod 755 "$NGX_CACHE_BASE"
fi

# ---- helpers ----------------------------------------------------------------

# get NAME PORT PATH: one GET through a proxy; sets CODE, and the head is in
# $TMP/check-head, the body in $TMP/check-body
get() {
    CODE=$(curl -s -m 5 -D "$TMP/check-head" -o "$TMP/check-body" -w '%{http_code}' \
        "http://127.0.0.1:$2$3" 2>/dev/null)
}

# check_reply NAME SIZE: the reply in $TMP/check-* is the device's, whole
check_reply() {
    [ "$CODE" = 200 ] && grep -qi '^X-Device: bench' "$TMP/check-head" && return 0
    sed 's/^/    /' "$TMP/check-head" >&2 2>/dev/null
    die "$1 does not relay the device's reply (HTTP status '$CODE')"
}
body_ok() { # SIZE
    [ "$(wc -c <"$TMP/check-body")" -eq "$1" ]
}

# rproxy_cache_counters PORT: sets RC_HITS / RC_MISSES from rproxy's status
# page when it has a "cache" object (empty when not)
rproxy_cache_counters() {
    RC_HITS="" RC_MISSES=""
    js=$(curl -s -m 5 "http://127.0.0.1:$1$STATUS_PATH" 2>/dev/null | tr -d ' \n\r\t')
    c=$(printf '%s' "$js" | sed -n 's/.*"cache":{\([^}]*\)}.*/\1/p')
    [ -n "$c" ] || return 0
    RC_HITS=$(printf '%s' "$c" | sed -n 's/.*"hits":\([0-9]*\).*/\1/p')
    RC_MISSES=$(printf '%s' "$c" | sed -n 's/.*"misses":\([0-9]*\).*/\1/p')
}

# ---- the proxies ------------------------------------------------------------

# start_NAME PORT: writes the config, starts the proxy, sets PROXY_PID
start_rproxy() {
    cat >"$TMP/rproxy.conf" <<EOF
# generated by bench/cache.sh
listen 127.0.0.1:$1
pool bench
device bench 127.0.0.1:$DEV_PORT
route pool=bench cache=on
status path=$STATUS_PATH
EOF
    ./rproxy -t -c "$TMP/rproxy.conf" >"$TMP/rproxy-check.log" 2>&1 || {
        sed 's/^/    /' "$TMP/rproxy-check.log" >&2
        die "rproxy rejects the generated config $TMP/rproxy.conf"
    }
    # stderr: one access-log line per request -- discarded during the runs;
    # on a failed start, re-run briefly to show what it says
    # shellcheck disable=SC2086
    $PIN_PROXY ./rproxy -q $RPROXY_ARGS -c "$TMP/rproxy.conf" 2>/dev/null &
    PROXY_PID=$!
    n=0
    while [ $n -lt 100 ] && kill -0 "$PROXY_PID" 2>/dev/null && ! port_listening "$1"; do
        sleep 0.1; n=$((n + 1))
    done
    if ! port_listening "$1"; then
        kill -KILL "$PROXY_PID" 2>/dev/null
        # shellcheck disable=SC2086
        timeout 2 ./rproxy $RPROXY_ARGS -c "$TMP/rproxy.conf" >"$TMP/rproxy.log" 2>&1
        sed 's/^/    /' "$TMP/rproxy.log" >&2
        die "rproxy did not start listening on 127.0.0.1:$1"
    fi
}

start_haproxy() {
    cat >"$TMP/haproxy.cfg" <<EOF
# generated by bench/cache.sh
global
    nbthread 1
    maxconn 8192
    pidfile $TMP/haproxy.pid

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

cache bench
    total-max-size 4
    max-object-size 262144
    max-age 3600

frontend bench
    bind 127.0.0.1:$1
    default_backend device

backend device
    http-request cache-use bench
    http-response cache-store bench
    server device 127.0.0.1:$DEV_PORT
EOF
    "$HAPROXY" -c -q -f "$TMP/haproxy.cfg" >"$TMP/haproxy-check.log" 2>&1 || {
        sed 's/^/    /' "$TMP/haproxy-check.log" >&2
        die "haproxy rejects the generated config $TMP/haproxy.cfg"
    }
    $PIN_PROXY "$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
    PROXY_PID=$!
    wait_port haproxy "$PROXY_PID" "$1" "$TMP/haproxy.log"
}

NGX_CACHE=""
start_nginx() {
    mkdir -p "$TMP/nginx"
    # a fresh, empty cache directory for every start
    NGX_CACHE=$NGX_CACHE_BASE/c$1
    rm -rf "$NGX_CACHE"
    mkdir -p "$NGX_CACHE"
    user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$TMP/nginx/nginx.conf" <<EOF
# generated by bench/cache.sh
$user_line
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
worker_rlimit_nofile 8192;
events {
    worker_connections 4096;
}
http {
    access_log off;
    sendfile on;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    proxy_cache_path $NGX_CACHE levels=1:2 keys_zone=bench:1m max_size=256m inactive=1h use_temp_path=off;
    upstream device {
        server 127.0.0.1:$DEV_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://device;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache bench;
        }
    }
}
EOF
    "$NGINX" -t -q -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
        >"$TMP/nginx/check.log" 2>&1 || {
        sed 's/^/    /' "$TMP/nginx/check.log" "$TMP/nginx/error.log" >&2 2>/dev/null
        die "nginx rejects the generated config $TMP/nginx/nginx.conf"
    }
    $PIN_PROXY "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
        >"$TMP/nginx/stderr.log" 2>&1 &
    PROXY_PID=$!
    wait_port nginx "$PROXY_PID" "$1" "$TMP/nginx/stderr.log"
}

# ---- runs -------------------------------------------------------------------

# one line per size, round and proxy:
#   size proxy rps req_per_cpu_s cpu% rss_kib device_reqs bad requests hit2 extra_kib rc_hits rc_misses load_cpu% proxy_cpu_busy% bytes_per_response round
RESULTS="$TMP/results"
: >"$RESULTS"
: >"$TMP/notes"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
for size in $BENCH_SIZES; do
    free_port
    DEV_PORT=$FREE_PORT
    DEV_LOG=$TMP/devsim-$size.log
    $PIN_LOAD "$ROOT/build/devsim" -p "$DEV_PORT" -a 127.0.0.1 -n bench -s "$size" \
        -H 'Cache-Control: public, max-age=3600' 2>"$DEV_LOG" &
    DEV_PID=$!
    PIDS="$PIDS $DEV_PID"
    wait_port devsim "$DEV_PID" "$DEV_PORT" "$DEV_LOG"
    say "device: build/devsim -s $size on 127.0.0.1:$DEV_PORT (pid $DEV_PID)"
    URLPATH="/obj?size=$size"

    round=1
    while [ "$round" -le "$BENCH_REPEAT" ]; do
        [ "$BENCH_REPEAT" -gt 1 ] && say "size $size: round $round of $BENCH_REPEAT"
        for proxy in $BENCH_ONLY; do
            free_port
            port=$FREE_PORT
            PROXY_PID=""
            "start_$proxy" "$port"
            PIDS="$PIDS $PROXY_PID"
            say "$proxy: 127.0.0.1:$port (pid $PROXY_PID), body $size B"

            # warm: one request, the miss that fills the cache
            devsim_requests "$DEV_PID" "$DEV_LOG"; d0=$DEV_REQS
            get "$proxy" "$port" "$URLPATH"
            check_reply "$proxy"
            body_ok "$size" || say "warning: $proxy: the first reply's body is $(wc -c <"$TMP/check-body") bytes, not $size"
            devsim_requests "$DEV_PID" "$DEV_LOG"; d1=$DEV_REQS
            [ $((d1 - d0)) -ge 1 ] || say "warning: $proxy: the warming request did not reach the device (?)"
            # check: the second must be a hit
            get "$proxy" "$port" "$URLPATH"
            check_reply "$proxy"
            body_ok "$size" || say "warning: $proxy: the second reply's body is $(wc -c <"$TMP/check-body") bytes, not $size"
            devsim_requests "$DEV_PID" "$DEV_LOG"; d2=$DEV_REQS
            if [ "$d2" -eq "$d1" ]; then hit2=yes; else hit2=no; fi
            cs=$(sed -n 's/^[Cc]ache-[Ss]tatus: *//p' "$TMP/check-head" | tr -d '\r' | tr '\n' ' ')
            age=$(sed -n 's/^[Aa]ge: *//p' "$TMP/check-head" | tr -d '\r' | head -n 1)
            say "$proxy: 2nd request $([ "$hit2" = yes ] && echo "did not reach the device (hit)" || echo "REACHED THE DEVICE (not a hit)")${cs:+; Cache-Status: $cs}${age:+; Age: $age}"
            if [ "$proxy" = rproxy ] && [ "$round" = 1 ]; then
                echo "rproxy, body $size B, 2nd request: $([ "$hit2" = yes ] && echo hit || echo 'reached the device')${cs:+, Cache-Status: $cs}${age:+, Age: $age}" >>"$TMP/notes"
            fi

            # measure
            rh0="" rm0=""
            if [ "$proxy" = rproxy ]; then rproxy_cache_counters "$port"; rh0=$RC_HITS rm0=$RC_MISSES; fi
            devsim_requests "$DEV_PID" "$DEV_LOG"; d3=$DEV_REQS
            t0=$(cpu_ticks "$PROXY_PID")
            s0=$(date +%s.%N)
            [ "$BENCH_PIN" = 1 ] && { l0=$(cpu_jiffies 1); c0=$(cpu_jiffies 0); }
            wrk_measure "$TMP/$proxy-$size-$round.txt" "$BENCH_CONNS" "$BENCH_SECS" "http://127.0.0.1:$port$URLPATH"
            t1=$(cpu_ticks "$PROXY_PID")
            s1=$(date +%s.%N)
            lcpu="-" ccpu="-"
            [ "$BENCH_PIN" = 1 ] && { lcpu=$(busy_pct "$l0" "$(cpu_jiffies 1)"); ccpu=$(busy_pct "$c0" "$(cpu_jiffies 0)"); }
            devsim_requests "$DEV_PID" "$DEV_LOG"; d4=$DEV_REQS
            kill -0 "$PROXY_PID" 2>/dev/null || die "$proxy died during the benchmark"
            rss=$(rss_kib "$PROXY_PID")
            rh="-" rmi="-"
            if [ "$proxy" = rproxy ]; then
                rproxy_cache_counters "$port"
                [ -n "$rh0" ] && [ -n "$RC_HITS" ] && rh=$((RC_HITS - rh0))
                [ -n "$rm0" ] && [ -n "$RC_MISSES" ] && rmi=$((RC_MISSES - rm0))
            fi
            extra="-"
            [ "$proxy" = nginx ] && extra=$(du -sk "$NGX_CACHE" 2>/dev/null | awk '{ print $1 }')
            dev=$((d4 - d3))
            eff=$(awk -v n="$WRK_REQS" -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {
                if (b > a && n) printf "%.0f", n / ((b - a) / t); else print 0 }')
            cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" -v s0="$s0" -v s1="$s1" 'BEGIN {
                if (s1 > s0) printf "%.0f", (b - a) * 100 / t / (s1 - s0); else print 0 }')
            [ -n "$WRK_BAD_TEXT" ] && say "warning: $proxy: $WRK_BAD_TEXT"
            say "$proxy: $RPS req/s, $eff req/CPU-s, cpu $cpu% (its CPU $ccpu% busy, load CPU $lcpu%), RSS $rss KiB; device requests during the run: $dev (of $WRK_REQS)$([ "$rh" != - ] && echo "; rproxy cache counters: hits +$rh, misses +$rmi")"
            echo "$size $proxy $RPS $eff $cpu ${rss:-0} $dev $WRK_BAD $WRK_REQS $hit2 ${extra:--} $rh $rmi $lcpu $ccpu $((WRK_BYTES / (WRK_REQS > 0 ? WRK_REQS : 1))) $round" >>"$RESULTS"
            stop_pid "$PROXY_PID"
        done
        round=$((round + 1))
    done
    stop_pid "$DEV_PID"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ---- report -----------------------------------------------------------------

# val SIZE PROXY FIELD: the median over the rounds
val() { awk -v s="$1" -v p="$2" -v f="$3" '$1 == s && $2 == p { print $f }' "$RESULTS" | median; }
# maxv SIZE PROXY FIELD: the largest over the rounds
maxv() { awk -v s="$1" -v p="$2" -v f="$3" '$1 == s && $2 == p { if (!n++ || $f > m) m = $f } END { if (n) print m }' "$RESULTS"; }
# valid SIZE PROXY: every round served from the cache, almost no errors
valid() {
    awk -v s="$1" -v p="$2" -v lim="$BENCH_MAX_DEVICE_REQS" '$1 == s && $2 == p {
            n++; if ($7 > lim || $8 > $9 / 1000) bad = 1 }
        END { exit !(n && !bad) }' "$RESULTS"
}
why_invalid() { # SIZE PROXY
    awk -v s="$1" -v p="$2" -v lim="$BENCH_MAX_DEVICE_REQS" '$1 == s && $2 == p {
            if ($7 > lim) { printf "%s did not serve from its cache (%d of %d requests reached the device)", p, $7, $9; exit }
            if ($8 > $9 / 1000) { printf "%s: %d errors in %d responses", p, $8, $9; exit } }' "$RESULTS"
}
# round_ratios SIZE OTHER FIELD: "MIN MAX" of rproxy/OTHER within each round
round_ratios() {
    awk -v s="$1" -v o="$2" -v f="$3" '$1 == s && $2 == "rproxy" { a[$17] = $f }
        $1 == s && $2 == o { b[$17] = $f }
        END { for (k in a) if ((k in b) && b[k] > 0) { r = a[k] / b[k]; if (!n++ || r < lo) lo = r; if (n == 1 || r > hi) hi = r }
              if (n) printf "%.2f %.2f\n", lo, hi }' "$RESULTS"
}
# verdict SIZE OTHER TARGET: PASS / FAIL on the ratio of median req/s, or
# INVALID; says so when single rounds fell on the other side of the target
verdict() {
    if ! valid "$1" rproxy || ! valid "$1" "$2"; then echo "INVALID (see below)"; return; fi
    r=$(ratio "$(val "$1" rproxy 3)" "$(val "$1" "$2" 3)")
    [ "$r" = - ] && { echo "-"; return; }
    if awk -v r="$r" -v t="$3" 'BEGIN { exit !(r >= t) }'; then v=PASS; else v=FAIL; fi
    if [ "$BENCH_REPEAT" -gt 1 ]; then
        # shellcheck disable=SC2046 # two numbers, split on purpose
        set -- $(round_ratios "$1" "$2" 3) "$3"
        if [ $# -eq 3 ] && awk -v lo="$1" -v hi="$2" -v t="$3" 'BEGIN { exit !(lo < t && hi >= t) }'; then
            v="$v, but rounds ranged $1-$2"
        fi
    fi
    echo "$v"
}
# stolen SIZE PROXY: in how many rounds other work took >= 15 % of the
# proxy's core (prints "N of M"; false when none)
stolen() {
    [ "$BENCH_PIN" = 1 ] || return 1
    awk -v s="$1" -v p="$2" '$1 == s && $2 == p { m++; if ($15 - $5 >= 15) n++ }
        END { if (n) print n " of " m; exit !n }' "$RESULTS"
}
# wrk_bound SIZE PROXY: in how many rounds the load CPU was saturated while
# the proxy's was not
wrk_bound() {
    [ "$BENCH_PIN" = 1 ] || return 1
    awk -v s="$1" -v p="$2" '$1 == s && $2 == p { m++; if ($14 >= 95 && $5 < 90) n++ }
        END { if (n) print n " of " m; exit !n }' "$RESULTS"
}

rproxy_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)
rproxy_dirty=$(git -C "$ROOT" status --porcelain -- src rproxy.h rproxy.c port boards 2>/dev/null | head -n 1)
{
    echo "rproxy cache-hit benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host: $(uname -sr), $NCPU CPU ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
    echo "pinning: $([ "$BENCH_PIN" = 1 ] && echo 'proxy on CPU 0, wrk + devsim on CPU 1' || echo off)"
    echo "load: one warming GET, then wrk -t1 -c$BENCH_CONNS -d${BENCH_SECS}s keep-alive GET /obj?size=N (all hits)$([ "${BENCH_PIPELINE:-1}" -gt 1 ] && echo ", $BENCH_PIPELINE pipelined per write"); device build/devsim -s N -H 'Cache-Control: public, max-age=3600'"
    echo "load average (1/5/15 min) at start: $LOAD_START, at end: $LOAD_END -- other work on the machine skews req/s"
    [ "$BENCH_REPEAT" -gt 1 ] && echo "figures: median of $BENCH_REPEAT interleaved rounds (each round below)"
    selected rproxy && echo "rproxy: $(./rproxy -v 2>&1 | head -n 1) (git $rproxy_rev$([ -n "$rproxy_dirty" ] && echo ', uncommitted changes')), route cache=on, cache defaults, no access log (-q)"
    selected haproxy && echo "haproxy: $("$HAPROXY" -v 2>&1 | awk 'NR == 1 { print $3 }'), nbthread 1, cache total-max-size 4 MB, max-object-size 256 KiB"
    selected nginx && echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), 1 process (master_process off), proxy_cache on $(stat -f -c %T "$NGX_CACHE_BASE" 2>/dev/null) ($NGX_CACHE_BASE), sendfile on"
    echo "B/resp = bytes read by wrk / responses (head + body; from wrk's rounded total)"
    echo "device reqs = requests that reached the device during the measured run (0 = every one a hit; > $BENCH_MAX_DEVICE_REQS = INVALID)"
    echo "cpu% = the proxy's CPU use (100 = one core); req/CPU-s = requests per second of the proxy's own CPU time;"
    echo "core% = use of the proxy's CPU by anything; load% = use of the load CPU (wrk + devsim + anything else there):"
    echo "  load% near 100 with the proxy's cpu% well below it = wrk was the limit; core% well above cpu% = other work took the proxy's core"
    for size in $BENCH_SIZES; do
        echo
        echo "body $size bytes"
        printf '  %-8s %9s %10s %5s %5s %5s %9s %12s %7s %7s %8s\n' proxy 'req/s' 'req/CPU-s' 'cpu%' 'core%' 'load%' 'RSS KiB' 'device reqs' errors 'B/resp' '2nd req'
        for name in $BENCH_ONLY; do
            note=""
            [ "$name" = nginx ] && note="  (+ $(maxv "$size" nginx 11) KiB of cache files on tmpfs)"
            if [ "$name" = rproxy ] && [ "$(maxv "$size" rproxy 12)" != - ]; then
                note="  (status page: hits +$(val "$size" rproxy 12), misses +$(val "$size" rproxy 13))"
            fi
            printf '  %-8s %9s %10s %5s %5s %5s %9s %12s %7s %7s %8s%s\n' "$name" \
                "$(val "$size" "$name" 3)" "$(val "$size" "$name" 4)" "$(val "$size" "$name" 5)" \
                "$(if [ "$BENCH_PIN" = 1 ]; then val "$size" "$name" 15; else echo -; fi)" \
                "$(if [ "$BENCH_PIN" = 1 ]; then val "$size" "$name" 14; else echo -; fi)" \
                "$(val "$size" "$name" 6)" "$(maxv "$size" "$name" 7)" "$(maxv "$size" "$name" 8)" \
                "$(val "$size" "$name" 16)" \
                "$(awk -v s="$size" -v p="$name" '$1 == s && $2 == p && $10 != "yes" { m = 1 } END { print m ? "MISS" : "hit" }' "$RESULTS")" \
                "$note"
        done
        if selected rproxy; then
            for other in haproxy nginx; do
                selected "$other" || continue
                if [ "$other" = haproxy ]; then t=$TARGET_HAPROXY; else t=$TARGET_NGINX; fi
                printf '  rproxy/%-8s req/s %5s (target >= %sx: %s)   req/CPU-s %5s%s   RSS %5s\n' "$other" \
                    "$(ratio "$(val "$size" rproxy 3)" "$(val "$size" "$other" 3)")" "$t" \
                    "$(verdict "$size" "$other" "$t")" \
                    "$(ratio "$(val "$size" rproxy 4)" "$(val "$size" "$other" 4)")" \
                    "$([ "$BENCH_REPEAT" -gt 1 ] && round_ratios "$size" "$other" 4 | awk '{ printf " (rounds %s-%s)", $1, $2 }')" \
                    "$(ratio "$(val "$size" rproxy 6)" "$(val "$size" "$other" 6)")"
            done
        fi
        for name in $BENCH_ONLY; do
            valid "$size" "$name" || echo "  INVALID: $(why_invalid "$size" "$name")"
            n=$(wrk_bound "$size" "$name") &&
                echo "  note: $name: limited by the load generator in $n round(s) (load CPU >= 95 %, $name < 90 %): req/s is a floor there"
            n=$(stolen "$size" "$name") &&
                echo "  note: $name: other work took >= 15 % of its core in $n round(s): req/s understated there, req/CPU-s less affected"
        done
    done
    if [ -s "$TMP/notes" ]; then
        echo
        cat "$TMP/notes"
    fi
    if [ "$BENCH_REPEAT" -gt 1 ]; then
        echo
        echo "rounds (size proxy req/s req/CPU-s cpu% rss_kib device_reqs errors requests 2nd_hit cache_kib rc_hits rc_misses load% core% B/resp round):"
        sed 's/^/  /' "$RESULTS"
    fi
} >"$TMP/table"

cat "$TMP/table"
mkdir -p "$(dirname "$BENCH_RESULTS")"
cp "$TMP/table" "$BENCH_RESULTS"
say "results written to $BENCH_RESULTS"

#!/bin/sh
# bench/run.sh -- rproxy side by side with nginx and HAProxy.  A benchmark,
# not a test: it prints figures, it does not pass or fail on them.
#
# One device (build/devsim) on a free loopback port; rproxy, nginx and HAProxy
# each on their own loopback port in front of it, all configured alike:
# one worker / thread, keep-alive on both sides, pooled device connections,
# no access logging.  The proxies run one at a time.  For each:
#   warm-up    wrk -t1 -c64 -d2s
#   rps@64     wrk -t1 -c64 -d${BENCH_SECS}s      (keep-alive, small replies)
#   rps@256    wrk -t1 -c256 -d${BENCH_SECS_256}s
#   RSS@256    the proxy's peak resident set (VmHWM) during the 256 run
#              (peak counter reset just before it via /proc/PID/clear_refs)
# Then a table, ratios, and the same table in bench/results.txt.
#
# Environment:
#   BENCH_SECS=10            length of the 64-connection run
#   BENCH_SECS_256=5         length of the 256-connection run
#   BENCH_ONLY="rproxy nginx haproxy"   which proxies to run
#   BENCH_PIN=1              default (on machines with 2+ CPUs): the proxy on
#                            CPU 0, wrk and devsim on CPU 1 (taskset).  On the
#                            2-core development machine this gave steadier
#                            numbers run to run than leaving placement to the
#                            scheduler, and it gives every proxy exactly one core
#                            whatever it does.  BENCH_PIN=0 turns it off.
#   BENCH_REPEAT=1           rounds; with N > 1 the proxies run interleaved
#                            (A B C A B C ...) and the table shows medians --
#                            use 3 or 5 on a machine where other work runs
#   BENCH_DEVSIM_SIZE=       reply body size for devsim -s (default: its
#                            16-byte "hello from bench\n")
#   RPROXY_ARGS=             extra arguments for ./rproxy
#   BENCH_DEVICE_OPTS=, BENCH_POOL_OPTS=   options for rproxy's device and pool
#                            lines (e.g. "max_conns=64" and "queue=1000")
#   BENCH_RESULTS=bench/results.txt
#
# Missing nginx-light, haproxy, wrk or curl are installed with apt-get when run
# as root (apt-get update first only when something must be installed).
# nginx and HAProxy run as the current user with their pid, temp and log files
# in a temporary directory that is removed on exit; every process started here
# is stopped on exit.
#
#   BENCH_GUARD=1            the front door on, in every proxy alike: Basic auth
#                            on the route (a $5$ hash, 5000 rounds; every request
#                            carries the right credentials), a per-client
#                            connection and request-rate limit set high enough
#                            never to refuse, an allow= network, and a per-device
#                            connection cap (max_conns 512) -- nginx: auth_basic,
#                            limit_conn, limit_req, allow/deny, server max_conns;
#                            HAProxy: userlist + http-request auth, a stick-table
#                            with conn_cur / http_req_rate, src acl, server
#                            maxconn.  BENCH_ONLY may then also name `plain`:
#                            rproxy without any of it, in the same run.
#
# rproxy writes an access-log line per request to stderr; here that goes to
# /dev/null (nginx and HAProxy log nothing), which still costs rproxy one
# write() per request.
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

BENCH_SECS=${BENCH_SECS:-10}
BENCH_SECS_256=${BENCH_SECS_256:-5}
BENCH_ONLY=${BENCH_ONLY:-"rproxy nginx haproxy"}
BENCH_RESULTS=${BENCH_RESULTS:-bench/results.txt}
BENCH_REPEAT=${BENCH_REPEAT:-1}
RPROXY_ARGS=${RPROXY_ARGS:-}
BENCH_DEVICE_OPTS=${BENCH_DEVICE_OPTS:-}
BENCH_POOL_OPTS=${BENCH_POOL_OPTS:-}
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ "$NCPU" -ge 2 ]; then BENCH_PIN=${BENCH_PIN:-1}; else BENCH_PIN=0; fi

say() { printf '%s\n' "bench: $*" >&2; }
die() { printf '%s\n' "bench: error: $*" >&2; exit 1; }

selected() { case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

case $BENCH_REPEAT in ''|*[!0-9]*|0) die "BENCH_REPEAT must be a positive integer" ;; esac
case $BENCH_SECS$BENCH_SECS_256 in *[!0-9]*) die "BENCH_SECS / BENCH_SECS_256 must be whole seconds" ;; esac
for p in $BENCH_ONLY; do
    case $p in rproxy|nginx|haproxy|plain) ;; *) die "BENCH_ONLY: unknown proxy '$p' (rproxy nginx haproxy plain)" ;; esac
done

# ---- tools ----------------------------------------------------------------

need_pkgs=""
command -v wrk >/dev/null 2>&1 || need_pkgs="$need_pkgs wrk"
command -v curl >/dev/null 2>&1 || need_pkgs="$need_pkgs curl"
if selected nginx && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    need_pkgs="$need_pkgs nginx-light"
fi
if selected haproxy && ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
    need_pkgs="$need_pkgs haproxy"
fi
if [ -n "$need_pkgs" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "missing:$need_pkgs -- install them (apt-get install$need_pkgs) or run as root"
    fi
    say "installing:$need_pkgs"
    export DEBIAN_FRONTEND=noninteractive
    # another apt/dpkg may be running: wait for its lock rather than fail
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null ||
        die "apt-get update failed"
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $need_pkgs >/dev/null ||
        die "apt-get install$need_pkgs failed"
fi
PATH=$PATH:/usr/sbin:/sbin
export PATH
if selected nginx; then
    # Debian's nginx is started by its service on install; ours is separate.
    NGINX=$(command -v nginx) || die "nginx not found"
fi
if selected haproxy; then
    HAPROXY=$(command -v haproxy) || die "haproxy not found"
fi
command -v wrk >/dev/null 2>&1 || die "wrk not found"

# ---- build ----------------------------------------------------------------

make --no-print-directory -s build/devsim >&2 || die "cannot build build/devsim"
if selected rproxy; then
    make --no-print-directory -s rproxy >&2 ||
        die "cannot build ./rproxy (run with BENCH_ONLY=\"nginx haproxy\" to skip it)"
    [ -x ./rproxy ] || die "./rproxy missing after make"
fi

# ---- processes, ports, cleanup (bench/lib.sh) ------------------------------

. bench/lib.sh

# check_proxy NAME PORT: one request through it must reach the device
BENCH_GUARD=${BENCH_GUARD:-0}
GUARD_USER=bench GUARD_PASS=bench-pass
GUARD_AUTH="Authorization: Basic $(printf '%s:%s' "$GUARD_USER" "$GUARD_PASS" | base64)"
if [ "$BENCH_GUARD" = 1 ]; then
    GUARD_HASH=$(openssl passwd -5 -salt benchsaltbench "$GUARD_PASS") || die "openssl passwd -5 failed"
    printf '%s:%s\n' "$GUARD_USER" "$GUARD_HASH" >"$TMP/bench.users"
fi

check_proxy() {
    if [ "$BENCH_GUARD" = 1 ]; then
        code=$(curl -s -m 5 -H "$GUARD_AUTH" -D "$TMP/check-head" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/" 2>&1)
    else
        code=$(curl -s -m 5 -D "$TMP/check-head" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$2/" 2>&1)
    fi
    if [ "$code" = 200 ] && grep -qi '^X-Device: bench' "$TMP/check-head"; then
        return 0
    fi
    die "$1 on port $2 does not relay to the device (HTTP status '$code')"
}

# run_wrk CONNS SECS PORT OUTFILE: sets RPS (requests/sec).  wrk runs in the
# background and is waited for, so a TERM/INT to this script acts at once.
run_wrk() {
    if [ "$BENCH_GUARD" = 1 ]; then
        $PIN_LOAD wrk -t1 -c"$1" -d"$2"s -H "$GUARD_AUTH" "http://127.0.0.1:$3/" >"$4" 2>&1 &
    else
        $PIN_LOAD wrk -t1 -c"$1" -d"$2"s "http://127.0.0.1:$3/" >"$4" 2>&1 &
    fi
    wpid=$!
    PIDS="$PIDS $wpid"
    wait "$wpid"
    wrc=$?
    forget_pid "$wpid"
    if [ "$wrc" -ne 0 ]; then
        sed 's/^/    /' "$4" >&2
        die "wrk failed against port $3 (exit $wrc)"
    fi
    RPS=$(awk '/^Requests\/sec:/ { printf "%.0f\n", $2 }' "$4")
    [ -n "$RPS" ] || { sed 's/^/    /' "$4" >&2; die "no Requests/sec in wrk output"; }
    bad=$(awk '/Non-2xx|Socket errors/' "$4")
    [ -n "$bad" ] && say "warning ($1 conns, port $3): $(printf '%s' "$bad" | tr -s ' \n' ' ')"
    return 0
}

hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
# cpu_ticks PID: user + system CPU time of the process so far, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# ---- the device ------------------------------------------------------------

free_port
DEV_PORT=$FREE_PORT
devsim_args="-p $DEV_PORT -a 127.0.0.1 -n bench"
[ -n "${BENCH_DEVSIM_SIZE:-}" ] && devsim_args="$devsim_args -s $BENCH_DEVSIM_SIZE"
# shellcheck disable=SC2086
$PIN_LOAD "$ROOT/build/devsim" $devsim_args 2>"$TMP/devsim.log" &
DEV_PID=$!
PIDS="$PIDS $DEV_PID"
wait_port devsim "$DEV_PID" "$DEV_PORT" "$TMP/devsim.log"
say "device: build/devsim on 127.0.0.1:$DEV_PORT (pid $DEV_PID)"

# ---- the proxies ------------------------------------------------------------

# start_NAME PORT: writes the config, starts the proxy, sets PROXY_PID
start_plain() { GUARD_OFF=1 start_rproxy "$1"; }
start_rproxy() {
    if [ "$BENCH_GUARD" = 1 ] && [ -z "${GUARD_OFF:-}" ]; then
        cat >"$TMP/rproxy.conf" <<EOF
# generated by bench/run.sh (BENCH_GUARD=1)
listen 127.0.0.1:$1
users bench $TMP/bench.users
pool bench
device bench 127.0.0.1:$DEV_PORT max_conns=512
route pool=bench auth=bench realm=bench allow=127.0.0.0/8
client_limit conns=1024 rate=100000/s burst=65535
EOF
    else
        cat >"$TMP/rproxy.conf" <<EOF
# generated by bench/run.sh
listen 127.0.0.1:$1
pool bench $BENCH_POOL_OPTS
device bench 127.0.0.1:$DEV_PORT $BENCH_DEVICE_OPTS
route pool=bench
EOF
    fi
    ./rproxy -t -c "$TMP/rproxy.conf" >"$TMP/rproxy-check.log" 2>&1 || {
        sed 's/^/    /' "$TMP/rproxy-check.log" >&2
        die "rproxy rejects the generated config $TMP/rproxy.conf"
    }
    # stderr carries one access-log line per request: discard it during the
    # runs, but keep the start-up lines by re-running briefly on failure
    # shellcheck disable=SC2086
    $PIN_PROXY ./rproxy $RPROXY_ARGS -c "$TMP/rproxy.conf" 2>/dev/null &
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

start_nginx() {
    NGINX_GUARD_HTTP= NGINX_GUARD_SERVER= NGINX_GUARD_LOC=
    if [ "$BENCH_GUARD" = 1 ]; then
        NGINX_GUARD_HTTP='    limit_conn_zone $binary_remote_addr zone=perip:1m;
    limit_req_zone $binary_remote_addr zone=rate:1m rate=100000r/s;'
        NGINX_GUARD_SERVER=' max_conns=512'
        NGINX_GUARD_LOC="            auth_basic bench;
            auth_basic_user_file $TMP/bench.users;
            limit_conn perip 1024;
            limit_req zone=rate burst=65535 nodelay;
            allow 127.0.0.0/8;
            deny all;"
    fi
    mkdir -p "$TMP/nginx"
    user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$TMP/nginx/nginx.conf" <<EOF
# generated by bench/run.sh
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
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
$NGINX_GUARD_HTTP
    upstream device {
        server 127.0.0.1:$DEV_PORT$NGINX_GUARD_SERVER;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
$NGINX_GUARD_LOC
            proxy_pass http://device;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
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

start_haproxy() {
    HAP_GUARD_GLOBAL= HAP_GUARD_FRONT= HAP_GUARD_SERVER=
    if [ "$BENCH_GUARD" = 1 ]; then
        HAP_GUARD_GLOBAL="userlist bench
    user $GUARD_USER password $GUARD_HASH"
        HAP_GUARD_FRONT='    stick-table type ip size 64 expire 60s store conn_cur,http_req_rate(1s)
    tcp-request connection track-sc0 src
    http-request deny if !{ src 127.0.0.0/8 }
    http-request auth realm bench unless { http_auth(bench) }
    http-request deny deny_status 429 if { sc0_conn_cur gt 1024 } || { sc0_http_req_rate gt 100000 }'
        HAP_GUARD_SERVER=' maxconn 512'
    fi
    cat >"$TMP/haproxy.cfg" <<EOF
# generated by bench/run.sh
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

$HAP_GUARD_GLOBAL

frontend bench
    bind 127.0.0.1:$1
$HAP_GUARD_FRONT
    default_backend device

backend device
    server device 127.0.0.1:$DEV_PORT$HAP_GUARD_SERVER
EOF
    "$HAPROXY" -c -q -f "$TMP/haproxy.cfg" >"$TMP/haproxy-check.log" 2>&1 || {
        sed 's/^/    /' "$TMP/haproxy-check.log" >&2
        die "haproxy rejects the generated config $TMP/haproxy.cfg"
    }
    $PIN_PROXY "$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
    PROXY_PID=$!
    wait_port haproxy "$PROXY_PID" "$1" "$TMP/haproxy.log"
}

RESULTS="$TMP/results"
: >"$RESULTS"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
round=1
while [ "$round" -le "$BENCH_REPEAT" ]; do
    [ "$BENCH_REPEAT" -gt 1 ] && say "round $round of $BENCH_REPEAT"
    for proxy in $BENCH_ONLY; do
        free_port
        port=$FREE_PORT
        PROXY_PID=""
        "start_$proxy" "$port"
        PIDS="$PIDS $PROXY_PID"
        say "$proxy: 127.0.0.1:$port (pid $PROXY_PID)"
        check_proxy "$proxy" "$port"

        run_wrk 64 2 "$port" "$TMP/$proxy-warm.txt"
        t0=$(cpu_ticks "$PROXY_PID")
        run_wrk 64 "$BENCH_SECS" "$port" "$TMP/$proxy-64.txt"
        rps64=$RPS
        t1=$(cpu_ticks "$PROXY_PID")
        # requests per CPU-second of the proxy: what it costs, whatever else the
        # machine was doing (contention moves rps a lot, this much less)
        eff=$(awk -v f="$TMP/$proxy-64.txt" -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN {
            while ((getline l < f) > 0) if (l ~ / requests in /) { split(l, w, " "); n = w[1] }
            if (b > a && n) printf "%.0f", n / ((b - a) / t); else print 0 }')
        say "$proxy: $rps64 req/s with 64 connections"
        echo 5 >"/proc/$PROXY_PID/clear_refs" 2>/dev/null # reset VmHWM to current RSS
        run_wrk 256 "$BENCH_SECS_256" "$port" "$TMP/$proxy-256.txt"
        rps256=$RPS
        rss=$(hwm_kib "$PROXY_PID")
        [ -n "$rss" ] || rss=0
        say "$proxy: $rps256 req/s with 256 connections, peak RSS $rss KiB"
        kill -0 "$PROXY_PID" 2>/dev/null || die "$proxy died during the benchmark"
        echo "$proxy $rps64 $rps256 $rss $eff" >>"$RESULTS"
        stop_pid "$PROXY_PID"
    done
    round=$((round + 1))
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ---- report ---------------------------------------------------------------

# val PROXY FIELD: the median over the rounds
val() {
    awk -v p="$1" -v f="$2" '$1 == p { print $f }' "$RESULTS" | sort -n |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else if (NR) printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { # A B -> A/B with 2 decimals, or "-"
    if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "-"
    fi
}

{
    echo "rproxy benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host: $(uname -sr), $NCPU CPU ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
    echo "pinning: $([ "$BENCH_PIN" = 1 ] && echo 'proxy on CPU 0, wrk + devsim on CPU 1' || echo off)"
    echo "load: wrk -t1 keep-alive GET /, ${BENCH_SECS}s @64 conns, ${BENCH_SECS_256}s @256 conns; device build/devsim$([ -n "${BENCH_DEVSIM_SIZE:-}" ] && echo " -s $BENCH_DEVSIM_SIZE")"
    echo "load average (1/5/15 min) at start: $LOAD_START, at end: $LOAD_END -- other work on the machine skews the figures"
    [ "$BENCH_REPEAT" -gt 1 ] && echo "figures: median of $BENCH_REPEAT interleaved rounds (each round below)"
    selected nginx && echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), 1 process (master_process off)"
    selected haproxy && echo "haproxy: $("$HAPROXY" -v 2>&1 | awk 'NR == 1 { print $3 }'), nbthread 1"
    selected rproxy && echo "rproxy: $(./rproxy -v 2>&1 | head -n 1), access log to /dev/null"
    [ "$BENCH_GUARD" = 1 ] && echo 'front door on (BENCH_GUARD=1): Basic auth with a $5$ hash (5000 rounds), per-client conns/rate limits, allow, max_conns 512 -- in every proxy but "plain"'
    :
    echo
    printf '%-10s %12s %12s %22s %18s\n' proxy 'rps@64' 'rps@256' 'peak RSS KiB @256' 'req/CPU-s @64'
    for name in $BENCH_ONLY; do
        printf '%-10s %12s %12s %22s %18s\n' "$name" "$(val "$name" 2)" "$(val "$name" 3)" "$(val "$name" 4)" "$(val "$name" 5)"
    done
    if selected rproxy && selected plain; then
        echo
        echo "rproxy with the front door / without (plain) rps @64: $(ratio "$(val rproxy 2)" "$(val plain 2)")   @256: $(ratio "$(val rproxy 3)" "$(val plain 3)")   per CPU-s @64: $(ratio "$(val rproxy 5)" "$(val plain 5)")"
    fi
    if selected rproxy; then
        echo
        if selected nginx; then
            echo "rproxy/nginx   rps @64: $(ratio "$(val rproxy 2)" "$(val nginx 2)")   @256: $(ratio "$(val rproxy 3)" "$(val nginx 3)")   per CPU-s @64: $(ratio "$(val rproxy 5)" "$(val nginx 5)")"
        fi
        if selected haproxy; then
            echo "rproxy/haproxy rps @64: $(ratio "$(val rproxy 2)" "$(val haproxy 2)")   @256: $(ratio "$(val rproxy 3)" "$(val haproxy 3)")   per CPU-s @64: $(ratio "$(val rproxy 5)" "$(val haproxy 5)")"
            echo "rproxy RSS / haproxy RSS @256: $(ratio "$(val rproxy 4)" "$(val haproxy 4)")"
        fi
    fi
    if [ "$BENCH_REPEAT" -gt 1 ]; then
        echo
        echo "rounds (proxy rps@64 rps@256 rss_kib req_per_cpu_s@64):"
        sed 's/^/  /' "$RESULTS"
    fi
} >"$TMP/table"

cat "$TMP/table"
mkdir -p "$(dirname "$BENCH_RESULTS")"
cp "$TMP/table" "$BENCH_RESULTS"
say "results written to $BENCH_RESULTS"

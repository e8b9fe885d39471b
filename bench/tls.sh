#!/bin/sh
# bench/tls.sh -- TLS termination: rproxy side by side with nginx and HAProxy.
# A benchmark, not a test: it prints figures, it does not pass or fail on them.
#
# One device (build/devsim) on a free loopback port; rproxy, nginx and HAProxy
# each terminate TLS on their own loopback port in front of it, all alike:
# one worker / thread, the same ECDSA P-256 certificate (generated here with
# openssl), TLS 1.2 only, the same ECDHE-ECDSA AES-GCM / ChaCha20 suites in
# the same server-preference order, X25519 and P-256, session-ID cache on and
# session tickets off (rproxy has no tickets), keep-alive and pooled device
# connections, no access logging.  The proxies run one at a time.  For each:
#   warm-up    wrk -t1 -c64 -d2s https://
#   ka         wrk -t1 -c${BENCH_CONNS} -d${BENCH_SECS}s https://      keep-alive requests/s
#   close      wrk ... -H "Connection: close"  a new TCP + TLS connection per
#              request; wrk keeps the session, so these are session-ID
#              resumptions (abbreviated handshakes)
#   full       bench/tlsload.c (BearSSL client, ${BENCH_FULL_WORKERS} processes):
#              a new connection and a FULL handshake (ECDHE + ECDSA signature)
#              per request
# For every run the proxy's own CPU time is read from /proc/PID/stat: the
# "cpu%" columns (100 = one core busy) tell whether the proxy was the
# bottleneck; "per core" = rate / (cpu% / 100), the rate one fully busy core
# would give -- the figure to compare when the load generator, on its single
# core, could not saturate a proxy.
# Then a table, ratios rproxy/nginx and rproxy/haproxy, and the same table in
# bench/results-tls.txt.
#
# Environment:
#   BENCH_SECS=10            length of each measured run
#   BENCH_CONNS=64           wrk connections
#   BENCH_FULL_WORKERS=16    tlsload processes for the full-handshake run
#   BENCH_ONLY="rproxy nginx haproxy"   which proxies to run
#   BENCH_PIN=1              default (2+ CPUs): the proxy on CPU 0; wrk,
#                            tlsload and devsim on CPU 1 (taskset); 0 = off
#   BENCH_REPEAT=1           rounds; with N > 1 the proxies run interleaved
#                            and the table shows medians
#   BENCH_DEVSIM_SIZE=       reply body size for devsim -s (default: its
#                            16-byte "hello from bench\n")
#   RPROXY_ARGS=             extra arguments for ./rproxy
#   BENCH_RESULTS=bench/results-tls.txt
#
# Missing nginx-light, haproxy, wrk, curl or openssl are installed with
# apt-get when run as root (as bench/run.sh does); libbearssl-dev is needed
# for ./rproxy's TLS and for tlsload.  Everything runs on loopback, as the
# current user, in a temporary directory removed on exit (keys included);
# every process started here is stopped on exit.
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

BENCH_SECS=${BENCH_SECS:-10}
BENCH_CONNS=${BENCH_CONNS:-64}
BENCH_FULL_WORKERS=${BENCH_FULL_WORKERS:-16}
BENCH_ONLY=${BENCH_ONLY:-"rproxy nginx haproxy"}
BENCH_RESULTS=${BENCH_RESULTS:-bench/results-tls.txt}
BENCH_REPEAT=${BENCH_REPEAT:-1}
RPROXY_ARGS=${RPROXY_ARGS:-}
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
if [ "$NCPU" -ge 2 ]; then BENCH_PIN=${BENCH_PIN:-1}; else BENCH_PIN=0; fi

say() { printf '%s\n' "bench: $*" >&2; }
die() { printf '%s\n' "bench: error: $*" >&2; exit 1; }

selected() { case " $BENCH_ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

case $BENCH_REPEAT in ''|*[!0-9]*|0) die "BENCH_REPEAT must be a positive integer" ;; esac
case $BENCH_SECS in ''|*[!0-9]*|0) die "BENCH_SECS must be whole seconds" ;; esac
case $BENCH_CONNS$BENCH_FULL_WORKERS in *[!0-9]*) die "BENCH_CONNS / BENCH_FULL_WORKERS must be numbers" ;; esac
for p in $BENCH_ONLY; do
    case $p in rproxy|nginx|haproxy) ;; *) die "BENCH_ONLY: unknown proxy '$p' (rproxy nginx haproxy)" ;; esac
done

# ---- tools ----------------------------------------------------------------

need_pkgs=""
command -v wrk >/dev/null 2>&1 || need_pkgs="$need_pkgs wrk"
command -v curl >/dev/null 2>&1 || need_pkgs="$need_pkgs curl"
command -v openssl >/dev/null 2>&1 || need_pkgs="$need_pkgs openssl"
[ -f /usr/include/bearssl.h ] || need_pkgs="$need_pkgs libbearssl-dev"
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
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null ||
        die "apt-get update failed"
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $need_pkgs >/dev/null ||
        die "apt-get install$need_pkgs failed"
fi
PATH=$PATH:/usr/sbin:/sbin
export PATH
if selected nginx; then
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
mkdir -p build
${CC:-cc} -O2 -Wall -Wextra -o build/tlsload bench/tlsload.c -lbearssl >&2 ||
    die "cannot build bench/tlsload.c (needs libbearssl-dev)"

# ---- processes, ports, cleanup (bench/lib.sh) ------------------------------

. bench/lib.sh

# ---- certificate ------------------------------------------------------------

# ECDSA P-256 CA and server certificate for bench.test (+ IP 127.0.0.1)
printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = x\n' >"$TMP/min.cnf"
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.test,IP:127.0.0.1\n' >"$TMP/leaf.ext"
{
    openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/ca.key" &&
    openssl req -x509 -new -config "$TMP/min.cnf" -key "$TMP/ca.key" -subj "/CN=rproxy bench CA" \
        -days 2 -sha256 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign -out "$TMP/ca.crt" &&
    openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/bench.key" &&
    openssl req -new -config "$TMP/min.cnf" -key "$TMP/bench.key" -subj "/CN=bench.test" \
        -out "$TMP/bench.csr" &&
    openssl x509 -req -in "$TMP/bench.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" \
        -set_serial 2 -days 2 -sha256 -extfile "$TMP/leaf.ext" -out "$TMP/bench.crt" &&
    cat "$TMP/bench.crt" "$TMP/bench.key" >"$TMP/bench.pem"     # HAProxy's crt
} >"$TMP/pki.log" 2>&1 || { sed 's/^/    /' "$TMP/pki.log" >&2; die "openssl could not make the certificate"; }

# The same suites in the same order for every proxy (rproxy's modern profile
# order: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; ECDSA certificate).
SUITES="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

# check_proxy NAME PORT: one HTTPS request through it must reach the device;
# sets PROTO (protocol / cipher as curl saw it)
check_proxy() {
    code=$(curl -sS -v -m 5 --cacert "$TMP/ca.crt" --resolve "bench.test:$2:127.0.0.1" \
        -D "$TMP/check-head" -o /dev/null -w '%{http_code}' "https://bench.test:$2/" \
        2>"$TMP/check-err")
    if [ "$code" = 200 ] && grep -qi '^X-Device: bench' "$TMP/check-head"; then
        PROTO=$(sed -n 's/^\* SSL connection using \(.*\)$/\1/p' "$TMP/check-err" | head -n 1)
        return 0
    fi
    sed 's/^/    /' "$TMP/check-err" >&2
    die "$1 on port $2 does not relay HTTPS to the device (HTTP status '$code')"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# cpu_pct T0 T1 SECS: CPU use of the proxy in % of one core
cpu_pct() { awk -v a="$1" -v b="$2" -v s="$3" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", (b - a) * 100 / hz / s }'; }

# run_wrk CONNS SECS PORT OUTFILE [HEADER]: sets RPS
run_wrk() {
    if [ -n "${5:-}" ]; then
        $PIN_LOAD wrk -t1 -c"$1" -d"$2"s -H "$5" "https://127.0.0.1:$3/" >"$4" 2>&1 &
    else
        $PIN_LOAD wrk -t1 -c"$1" -d"$2"s "https://127.0.0.1:$3/" >"$4" 2>&1 &
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
    [ -n "$bad" ] && say "warning ($1 conns, port $3${5:+, $5}): $(printf '%s' "$bad" | tr -s ' \n' ' ')"
    return 0
}

# run_full SECS PORT OUTFILE: sets RPS (full handshakes + request per second)
run_full() {
    $PIN_LOAD ./build/tlsload -p "$2" -C "$TMP/bench.crt" -n bench.test \
        -c "$BENCH_FULL_WORKERS" -d "$1" >"$3" 2>&1 &
    wpid=$!
    PIDS="$PIDS $wpid"
    wait "$wpid"
    wrc=$?
    forget_pid "$wpid"
    if [ "$wrc" -ne 0 ]; then
        sed 's/^/    /' "$3" >&2
        die "tlsload failed against port $2 (exit $wrc)"
    fi
    RPS=$(awk '$1 == "conns" { print $6 }' "$3")
    errs=$(awk '$1 == "conns" { print $8 }' "$3")
    [ -n "$RPS" ] || { sed 's/^/    /' "$3" >&2; die "no rate in tlsload output"; }
    [ "${errs:-0}" != 0 ] && say "warning (full handshakes, port $2): $errs failed exchanges"
    return 0
}

# measure NAME KIND SECS PORT: one run, sets RPS and CPU
measure() {
    t0=$(cpu_ticks "$PROXY_PID")
    s0=$(date +%s.%N)
    case $2 in
        ka) run_wrk "$BENCH_CONNS" "$3" "$4" "$TMP/$1-ka.txt" ;;
        close) run_wrk "$BENCH_CONNS" "$3" "$4" "$TMP/$1-close.txt" "Connection: close" ;;
        full) run_full "$3" "$4" "$TMP/$1-full.txt" ;;
    esac
    t1=$(cpu_ticks "$PROXY_PID")
    s1=$(date +%s.%N)
    CPU=$(cpu_pct "$t0" "$t1" "$(awk -v a="$s0" -v b="$s1" 'BEGIN { print b - a }')")
}

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

start_rproxy() {
    cat >"$TMP/rproxy.conf" <<EOC
# generated by bench/tls.sh
listen 127.0.0.1:$1 tls
tls cert=$TMP/bench.crt key=$TMP/bench.key
pool bench
device bench 127.0.0.1:$DEV_PORT
route pool=bench
EOC
    ./rproxy -t -c "$TMP/rproxy.conf" >"$TMP/rproxy-check.log" 2>&1 || {
        sed 's/^/    /' "$TMP/rproxy-check.log" >&2
        grep -q "TLS not compiled in" "$TMP/rproxy-check.log" &&
            die "./rproxy was built without TLS (make RP_TLS=1 rproxy)"
        die "rproxy rejects the generated config $TMP/rproxy.conf"
    }
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
    mkdir -p "$TMP/nginx"
    user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$TMP/nginx/nginx.conf" <<EOC
# generated by bench/tls.sh
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
    ssl_certificate $TMP/bench.crt;
    ssl_certificate_key $TMP/bench.key;
    ssl_protocols TLSv1.2;
    ssl_ciphers $SUITES;
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets off;
    upstream device {
        server 127.0.0.1:$DEV_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$1 ssl;
        location / {
            proxy_pass http://device;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-Proto https;
        }
    }
}
EOC
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
    cat >"$TMP/haproxy.cfg" <<EOC
# generated by bench/tls.sh
global
    nbthread 1
    maxconn 8192
    pidfile $TMP/haproxy.pid
    ssl-default-bind-ciphers $SUITES
    ssl-default-bind-options ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2 no-tls-tickets
    ssl-default-bind-curves X25519:P-256
    tune.ssl.cachesize 20000

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend bench
    bind 127.0.0.1:$1 ssl crt $TMP/bench.pem alpn http/1.1
    http-request set-header X-Forwarded-Proto https
    default_backend device

backend device
    server device 127.0.0.1:$DEV_PORT
EOC
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
: >"$TMP/protos"

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
        grep -q "^$proxy " "$TMP/protos" || echo "$proxy $PROTO" >>"$TMP/protos"

        run_wrk 64 2 "$port" "$TMP/$proxy-warm.txt"
        measure "$proxy" ka "$BENCH_SECS" "$port"
        ka=$RPS ka_cpu=$CPU
        say "$proxy: keep-alive $ka req/s (proxy CPU $ka_cpu%)"
        measure "$proxy" close "$BENCH_SECS" "$port"
        cl=$RPS cl_cpu=$CPU
        say "$proxy: new connection per request, resumed: $cl req/s (proxy CPU $cl_cpu%)"
        measure "$proxy" full "$BENCH_SECS" "$port"
        fu=$RPS fu_cpu=$CPU
        say "$proxy: new connection per request, full handshake: $fu req/s (proxy CPU $fu_cpu%)"
        kill -0 "$PROXY_PID" 2>/dev/null || die "$proxy died during the benchmark"
        echo "$proxy $ka $ka_cpu $cl $cl_cpu $fu $fu_cpu" >>"$RESULTS"
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
# percore PROXY RATEFIELD CPUFIELD: median over rounds of rate * 100 / cpu
percore() {
    awk -v p="$1" -v r="$2" -v c="$3" '$1 == p && $c > 0 { printf "%.0f\n", $r * 100 / $c }' "$RESULTS" | sort -n |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else if (NR) printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { # A B -> A/B with 2 decimals, or "-"
    if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "-"
    fi
}
ratios() { # OTHER: one line of rproxy/OTHER ratios
    printf '%-16s %9s %9s %9s %9s %9s %9s\n' "rproxy/$1" \
        "$(ratio "$(val rproxy 2)" "$(val "$1" 2)")" "$(ratio "$(percore rproxy 2 3)" "$(percore "$1" 2 3)")" \
        "$(ratio "$(val rproxy 4)" "$(val "$1" 4)")" "$(ratio "$(percore rproxy 4 5)" "$(percore "$1" 4 5)")" \
        "$(ratio "$(val rproxy 6)" "$(val "$1" 6)")" "$(ratio "$(percore rproxy 6 7)" "$(percore "$1" 6 7)")"
}

{
    echo "rproxy TLS benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host: $(uname -sr), $NCPU CPU ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), AES-NI: $(grep -qw aes /proc/cpuinfo && echo yes || echo no)"
    echo "pinning: $([ "$BENCH_PIN" = 1 ] && echo 'proxy on CPU 0, wrk/tlsload + devsim on CPU 1' || echo off)"
    echo "load: ${BENCH_SECS}s each; ka = wrk -t1 -c$BENCH_CONNS keep-alive; close = same with 'Connection: close' (new TCP+TLS per request, session resumed by wrk); full = bench/tlsload.c, $BENCH_FULL_WORKERS processes, full ECDHE handshake per request; device build/devsim$([ -n "${BENCH_DEVSIM_SIZE:-}" ] && echo " -s $BENCH_DEVSIM_SIZE")"
    echo "TLS: 1.2 only, ECDSA P-256 certificate, suites $SUITES (server order), X25519/P-256, session-ID cache, no tickets"
    echo "load average (1/5/15 min) at start: $LOAD_START, at end: $LOAD_END -- other work on the machine skews the figures"
    [ "$BENCH_REPEAT" -gt 1 ] && echo "figures: median of $BENCH_REPEAT interleaved rounds (each round below)"
    selected nginx && echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), 1 process (master_process off), $(openssl version | awk '{ print $1, $2 }')"
    selected haproxy && echo "haproxy: $("$HAPROXY" -v 2>&1 | awk 'NR == 1 { print $3 }'), nbthread 1"
    selected rproxy && echo "rproxy: $(./rproxy -v 2>&1 | head -n 1), BearSSL $(dpkg-query -W -f '${Version}' libbearssl-dev 2>/dev/null || echo '?'), access log to /dev/null"
    echo "negotiated (curl):"
    sed 's/^/  /' "$TMP/protos"
    echo
    echo "req/s; cpu% = the proxy's CPU use (100 = one core); per core = req/s at 100% CPU"
    printf '%-16s %9s %5s %9s %9s %5s %9s %9s %5s %9s\n' proxy 'ka' 'cpu%' 'per core' 'close' 'cpu%' 'per core' 'full' 'cpu%' 'per core'
    for name in $BENCH_ONLY; do
        printf '%-16s %9s %5s %9s %9s %5s %9s %9s %5s %9s\n' "$name" \
            "$(val "$name" 2)" "$(val "$name" 3)" "$(percore "$name" 2 3)" \
            "$(val "$name" 4)" "$(val "$name" 5)" "$(percore "$name" 4 5)" \
            "$(val "$name" 6)" "$(val "$name" 7)" "$(percore "$name" 6 7)"
    done
    if selected rproxy; then
        echo
        printf '%-16s %9s %9s %9s %9s %9s %9s\n' ratio 'ka' 'ka/core' 'close' 'close/co' 'full' 'full/core'
        selected nginx && ratios nginx
        selected haproxy && ratios haproxy
    fi
    if [ "$BENCH_REPEAT" -gt 1 ]; then
        echo
        echo "rounds (proxy ka cpu% close cpu% full cpu%):"
        sed 's/^/  /' "$RESULTS"
    fi
} >"$TMP/table"

cat "$TMP/table"
mkdir -p "$(dirname "$BENCH_RESULTS")"
cp "$TMP/table" "$BENCH_RESULTS"
say "results written to $BENCH_RESULTS"

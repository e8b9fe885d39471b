# bench/lib.sh -- what the benchmarks (bench/run.sh, tls.sh, cache.sh) share:
# a temp dir, the processes they start (stopped on exit), CPU pinning, free
# loopback ports and waiting for a listener; installing missing packages,
# the CPU time and RSS of a process, build/devsim's request count, a wrk run,
# medians and ratios.  Sourced after `say`, `die` and BENCH_PIN are set.


TMP=$(mktemp -d "${TMPDIR:-/tmp}/rproxy-bench.XXXXXX") || die "mktemp failed"
chmod 755 "$TMP"
PIDS=""
AT_EXIT=""

# at_exit 'COMMAND': run on exit after the processes are stopped, before $TMP
# goes (last registered runs first) -- for what lives outside $TMP
at_exit() {
    AT_EXIT="$1
$AT_EXIT"
}

cleanup() {
    for pid in $PIDS; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $PIDS; do
        n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
        kill -KILL "$pid" 2>/dev/null
    done
    eval "$AT_EXIT"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

stop_pid() { # PID: stop one process started here
    kill -TERM "$1" 2>/dev/null
    n=0
    while kill -0 "$1" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    forget_pid "$1"
}
forget_pid() { # PID: no longer ours to clean up
    np=""
    for p in $PIDS; do [ "$p" = "$1" ] || np="$np $p"; done
    PIDS=$np
}

if [ "$BENCH_PIN" = 1 ]; then
    PIN_PROXY="taskset -c 0"
    PIN_LOAD="taskset -c 1"
else
    PIN_PROXY=""
    PIN_LOAD=""
fi

# Is anything bound to local TCP port $1 (any state, v4 or v6)?
port_used() {
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v h="$hex" 'NR > 1 { split($2, a, ":"); if (a[2] == h) f = 1 } END { exit !f }'
}
# Is something listening on 127.0.0.1 (or any address) port $1?
port_listening() {
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v h="$hex" 'NR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == h) f = 1 } END { exit !f }'
}
# Ports come from below the kernel's ephemeral range when there is room, so
# the proxies' own outgoing connections never compete for them.
PORT_LO=20000
PORT_HI=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
if [ -z "$PORT_HI" ] || [ "$PORT_HI" -lt 21000 ]; then PORT_LO=40000; PORT_HI=60000; fi
[ "$PORT_HI" -lt 30000 ] && PORT_LO=10000
TAKEN=""
free_port() { # sets FREE_PORT (no subshell, so TAKEN is remembered)
    seed=$(date +%N 2>/dev/null | sed 's/^0*//;s/^$/0/')
    p=$((PORT_LO + ($$ * 7 + seed) % (PORT_HI - PORT_LO)))
    i=0
    while [ $i -lt 2000 ]; do
        case " $TAKEN " in *" $p "*) ;; *)
            if ! port_used "$p"; then TAKEN="$TAKEN $p"; FREE_PORT=$p; return 0; fi ;;
        esac
        p=$((p + 1)); [ $p -gt "$PORT_HI" ] && p=$PORT_LO
        i=$((i + 1))
    done
    die "no free loopback port found"
}

# wait_port NAME PID PORT LOG: wait until PID listens on PORT (10 s)
wait_port() {
    n=0
    while [ $n -lt 100 ]; do
        kill -0 "$2" 2>/dev/null || {
            say "$1 exited during start-up; its output:"
            [ -n "$4" ] && [ -f "$4" ] && sed 's/^/    /' "$4" >&2
            die "$1 did not start"
        }
        port_listening "$3" && return 0
        sleep 0.1
        n=$((n + 1))
    done
    [ -n "$4" ] && [ -f "$4" ] && sed 's/^/    /' "$4" >&2
    die "$1 (pid $2) is not listening on 127.0.0.1:$3 after 10 s"
}

# install_missing PKG...: apt-get install the packages named (nothing when
# none); root only, `apt-get update` first, waiting for another apt's lock
install_missing() {
    [ $# -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing: $* -- install them (apt-get install $*) or run as root"
    fi
    say "installing: $*"
    DEBIAN_FRONTEND=noninteractive
    export DEBIAN_FRONTEND
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null ||
        die "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@" >/dev/null ||
        die "apt-get install $* failed"
}

# ---- measuring a process ----------------------------------------------------

TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
# cpu_ticks PID: user + system CPU time of the process so far, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
# cpu_jiffies CPU: "BUSY TOTAL" clock ticks of one CPU (number) so far, from
# /proc/stat; busy = all but idle and iowait
cpu_jiffies() {
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
# busy_pct "BUSY0 TOTAL0" "BUSY1 TOTAL1": that CPU's use between the two, in %
busy_pct() {
    echo "$1 $2" | awk '{ if ($4 > $2) printf "%.0f", ($3 - $1) * 100 / ($4 - $2); else print 0 }'
}
# rss_kib PID: resident set now; hwm_kib PID: its peak (VmHWM)
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# devsim_requests PID LOG: sets DEV_REQS to the request heads build/devsim
# (started with stderr to LOG) has parsed so far -- it prints the count on
# SIGUSR1.  Dies if no answer comes within 5 s.
devsim_requests() {
    before=$(grep -c ' requests [0-9]*$' "$2" 2>/dev/null)
    kill -USR1 "$1" 2>/dev/null || die "devsim (pid $1) is gone"
    n=0
    while [ $n -lt 100 ]; do
        now=$(grep -c ' requests [0-9]*$' "$2" 2>/dev/null)
        if [ "${now:-0}" -gt "${before:-0}" ]; then
            DEV_REQS=$(awk '/ requests [0-9]+$/ { n = $NF } END { print n }' "$2")
            return 0
        fi
        sleep 0.05
        n=$((n + 1))
    done
    die "devsim (pid $1) did not report its request count (a build/devsim without SIGUSR1? make build/devsim)"
}

# wrk_measure OUTFILE CONNS SECS URL: one wrk -t1 run (keep-alive) on the load
# CPU, waited for in the background so a TERM/INT acts at once.  Sets RPS
# (requests/s), WRK_REQS (requests completed), WRK_BYTES (bytes read, from
# wrk's rounded "N.NNMB read"), WRK_BAD (non-2xx/3xx
# responses + connect/read/write errors; timeouts not counted) and
# WRK_BAD_TEXT (wrk's own lines about them, or empty).
wrk_measure() {
    pipe=
    [ "${BENCH_PIPELINE:-1}" -gt 1 ] && pipe=$BENCH_PIPELINE
    $PIN_LOAD wrk -t1 -c"$2" -d"$3"s ${pipe:+-s bench/pipeline.lua} "$4" ${pipe:+-- $pipe} >"$1" 2>&1 &
    wpid=$!
    PIDS="$PIDS $wpid"
    wait "$wpid"
    wrc=$?
    forget_pid "$wpid"
    if [ "$wrc" -ne 0 ]; then
        sed 's/^/    /' "$1" >&2
        die "wrk failed against $4 (exit $wrc)"
    fi
    RPS=$(awk '/^Requests\/sec:/ { printf "%.0f\n", $2 }' "$1")
    [ -n "$RPS" ] || { sed 's/^/    /' "$1" >&2; die "no Requests/sec in wrk output"; }
    WRK_REQS=$(awk '/ requests in / { print $1 }' "$1")
    WRK_BYTES=$(awk '/ requests in / { v = $(NF - 1); u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v)
        m = u == "KB" ? 1024 : u == "MB" ? 1048576 : u == "GB" ? 1073741824 : u == "TB" ? 1099511627776 : 1
        printf "%.0f\n", v * m }' "$1")
    WRK_BAD=$(awk '/Non-2xx or 3xx responses:/ { b += $NF }
        /Socket errors:/ { gsub(/,/, ""); b += $4 + $6 + $8 } END { print b + 0 }' "$1")
    WRK_BAD_TEXT=$(awk '/Non-2xx|Socket errors/' "$1" | tr -s ' \n' ' ')
    return 0
}

# ---- reporting ----------------------------------------------------------------

# median: of the numbers on stdin (one per line), rounded; nothing for none
median() {
    sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else if (NR) printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# ratio A B: A/B with 2 decimals, or "-" when either is missing or B is 0
ratio() {
    if [ -n "$1" ] && [ -n "$2" ] && [ "$1" != - ] && [ "$2" != - ] && [ "$2" != 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "-"
    fi
}

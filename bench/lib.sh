# bench/lib.sh -- what bench/run.sh and bench/tls.sh share: a temp dir, the
# processes they start (stopped on exit), CPU pinning, free loopback ports and
# waiting for a listener.  Sourced after `say`, `die` and BENCH_PIN are set.


TMP=$(mktemp -d "${TMPDIR:-/tmp}/rproxy-bench.XXXXXX") || die "mktemp failed"
chmod 755 "$TMP"
PIDS=""

cleanup() {
    for pid in $PIDS; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $PIDS; do
        n=0
        while kill -0 "$pid" 2>/dev/null && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
        kill -KILL "$pid" 2>/dev/null
    done
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

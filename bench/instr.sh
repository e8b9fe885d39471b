#!/bin/sh
# bench/instr.sh -- the instructions rproxy spends on the plain proxy path,
# counted by valgrind's callgrind: repeatable for the same binary and input
# whatever else the machine is doing, so it shows what a change to the core
# costs where wall-clock benchmarks (bench/run.sh) move +-50 % with load.
# A benchmark, not a test: it prints figures, it does not pass or fail.
#
#   sh bench/instr.sh                      ./rproxy
#   sh bench/instr.sh OTHER_RPROXY         ./rproxy and another build (say, an
#                                          older commit's), and their ratio
#
# Workload: build/devsim as the device, INSTR_REQS (20000) keep-alive GETs
# over 4 connections, 16 requests pipelined per write, small replies.  The
# count includes start-up and shutdown (a few hundred thousand instructions).
set -u
cd "$(dirname "$0")/.." || exit 1
N=${INSTR_REQS:-20000}
command -v valgrind >/dev/null 2>&1 || { echo "instr: valgrind missing (sh scripts/deps.sh)" >&2; exit 1; }
[ -x build/devsim ] && [ -x ./rproxy ] || { echo "instr: run 'make rproxy build/devsim' first" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/rp-instr.XXXXXX") || exit 1
pids=
trap 'kill $pids 2>/dev/null; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dport=$(port)
build/devsim -p "$dport" >/dev/null 2>&1 &
pids="$pids $!"

# count BINARY: instructions for the workload, printed as a number
count() {
    lport=$(port)
    printf 'listen 127.0.0.1:%s\npool a\ndevice a 127.0.0.1:%s\nroute pool=a\n' "$lport" "$dport" >"$T/c.conf"
    valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "$1" -q -c "$T/c.conf" 2>"$T/vg.log" &
    vp=$!
    python3 - "$lport" "$N" <<'PY' || { kill $vp; return 1; }
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
end = time.time() + 30
while True:
    try:
        socket.create_connection(("127.0.0.1", port)).close()
        break
    except OSError:
        if time.time() > end:
            sys.exit("rproxy did not start")
        time.sleep(0.2)
req = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
for _ in range(4):
    s = socket.create_connection(("127.0.0.1", port))
    per, sent, got, tail = n // 4, 0, 0, b""
    while got < per:
        if sent < per and sent - got < 16:
            k = min(16, per - sent)
            s.sendall(req * k)
            sent += k
        d = s.recv(65536)
        if not d:
            sys.exit("connection closed after %d responses" % got)
        d = tail + d
        got += d.count(b"HTTP/1.1 200")
        tail = d[-11:]  # shorter than the marker: never counted twice
    s.close()
PY
    kill -TERM $vp
    wait $vp
    callgrind_annotate "$T/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

new=$(count ./rproxy) || exit 1
printf 'rproxy (./rproxy): %s instructions for %s requests, %s per request\n' "$new" "$N" $((new / N))
if [ $# -ge 1 ]; then
    old=$(count "$1") || exit 1
    printf 'other  (%s): %s instructions, %s per request\n' "$1" "$old" $((old / N))
    awk -v a="$new" -v b="$old" 'BEGIN { printf "ratio ./rproxy / other: %.4f\n", a / b }'
fi

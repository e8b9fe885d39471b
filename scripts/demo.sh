#!/bin/sh
# scripts/demo.sh -- two simulated devices behind rproxy's built-in demo config.
#
# Starts build/devsim on 127.0.0.1:9001 ("device-a") and :9002 ("device-b"),
# then ./rproxy (no -c: the embedded demo, listening on :8080) in the
# foreground.  Ctrl-C stops rproxy gracefully; the devices are stopped on the
# way out.  Run it through `make demo`, which builds both first.
set -u
cd "$(dirname "$0")/.." || exit 1

for f in build/devsim ./rproxy; do
    [ -x "$f" ] || { echo "demo: $f missing: run 'make demo'" >&2; exit 1; }
done

pids=
cleanup() {
    [ -n "$pids" ] && kill $pids 2>/dev/null && wait $pids 2>/dev/null
    pids=
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build/devsim -a 127.0.0.1 -p 9001 -n device-a & pids="$pids $!"
build/devsim -a 127.0.0.1 -p 9002 -n device-b & pids="$pids $!"
sleep 0.3 2>/dev/null || sleep 1
for pid in $pids; do
    kill -0 "$pid" 2>/dev/null || { echo "demo: a devsim did not start (port 9001/9002 busy?)" >&2; exit 1; }
done

cat <<'EOF'
rproxy demo: device-a on 127.0.0.1:9001, device-b on 127.0.0.1:9002, rproxy on :8080.
Try, from another terminal:
  curl -si http://127.0.0.1:8080/                     # one request: see X-Device, Via
  for i in 1 2 3 4; do curl -s http://127.0.0.1:8080/; done    # balanced: a, b, a, b
  curl -s -w '%{num_connects} new connection(s)\n' http://127.0.0.1:8080/a http://127.0.0.1:8080/b
                                                      # keep-alive: the second reuses the first
  printf 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n' |
      nc -N 127.0.0.1 8080                            # ambiguous framing: 400
Ctrl-C stops rproxy (in-flight requests finish first) and the devices.

EOF
./rproxy

#!/bin/sh
# scripts/demo.sh -- rproxy in front of five simulated devices, on loopback.
#
# Generates a TLS certificate (openssl) and a configuration into a temp dir,
# starts build/devsim five times and rproxy on that configuration, prints a
# curl line to try for each feature with what to look for, and waits.  Ctrl-C
# (or SIGTERM) stops rproxy gracefully, stops the devices and removes the
# temp dir.  Run it through `make demo`, which installs what it needs
# (scripts/deps.sh demo) and builds rproxy and build/devsim first.
#
# Environment (tests/integration/t_demo.py runs it so, on free ports):
#   DEMO_PORTS="HTTP HTTPS A B SENSOR FILES SLOW"  the seven loopback ports
#              (default "8080 8443 9001 9002 9003 9004 9005")
#   RPROXY, DEVSIM   the binaries (default ./rproxy, build/devsim)
# Each try line starts with "  $ " and is a shell command; the line under it
# says what to look for.
set -u
cd "$(dirname "$0")/.." || exit 1

RPROXY=${RPROXY:-./rproxy}
DEVSIM=${DEVSIM:-build/devsim}
# shellcheck disable=SC2086 # split on purpose
set -- ${DEMO_PORTS:-8080 8443 9001 9002 9003 9004 9005}
[ $# = 7 ] || { echo "demo: DEMO_PORTS wants 7 ports, got $#" >&2; exit 2; }
HTTP=$1 HTTPS=$2 PA=$3 PB=$4 PSENSOR=$5 PFILES=$6 PSLOW=$7
BIG=20000000   # bytes of the large download
SLOW_MS=3000   # the slow device answers after this ...
TIMEOUT=2s     # ... and rproxy gives up after this (504)

for f in "$DEVSIM" "$RPROXY"; do
    [ -x "$f" ] || { echo "demo: $f missing: run 'make demo'" >&2; exit 1; }
done
for c in openssl curl; do
    command -v $c >/dev/null 2>&1 || { echo "demo: $c missing: run 'make demo'" >&2; exit 1; }
done

pids=
dir=
cleanup() {
    # rproxy first (SIGTERM: graceful), then the devices
    [ -n "$pids" ] && kill $pids 2>/dev/null && wait $pids 2>/dev/null
    pids=
    [ -n "$dir" ] && rm -rf "$dir"
    dir=
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

dir=$(mktemp -d "${TMPDIR:-/tmp}/rproxy-demo.XXXXXX") || exit 1

# A self-signed P-256 certificate for 127.0.0.1 and localhost, made now.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=rproxy-demo -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$dir/demo.key" -out "$dir/demo.crt" 2>/dev/null ||
    { echo "demo: openssl could not make a certificate" >&2; exit 1; }

cat >"$dir/demo.conf" <<EOF
# rproxy demo configuration (scripts/demo.sh)
listen 127.0.0.1:$HTTP
listen 127.0.0.1:$HTTPS tls
tls cert=$dir/demo.crt key=$dir/demo.key
pool demo
device demo 127.0.0.1:$PA weight=3
device demo 127.0.0.1:$PB weight=1
pool sensor
device sensor 127.0.0.1:$PSENSOR
pool files
device files 127.0.0.1:$PFILES
pool slow
device slow 127.0.0.1:$PSLOW max_fails=0
status path=/_status
route path=/sensor pool=sensor cache=on
route path=/files/ pool=files
route path=/slow pool=slow
route pool=demo
timeout device=$TIMEOUT
EOF

"$DEVSIM" -p "$PA" -n device-a & pids="$pids $!"
"$DEVSIM" -p "$PB" -n device-b & pids="$pids $!"
"$DEVSIM" -p "$PSENSOR" -n sensor -H 'Cache-Control: max-age=10' & pids="$pids $!"
"$DEVSIM" -p "$PFILES" -n files -s "$BIG" & pids="$pids $!"
"$DEVSIM" -p "$PSLOW" -n slow -d "$SLOW_MS" & pids="$pids $!"
"$RPROXY" -c "$dir/demo.conf" & rpid=$!
pids="$rpid $pids"

# Up when the status page answers (5 s at most).
i=0
until curl -s -o /dev/null "http://127.0.0.1:$HTTP/_status"; do
    i=$((i + 1))
    for pid in $pids; do
        kill -0 "$pid" 2>/dev/null || { echo "demo: a process did not start (ports $*: one busy?)" >&2; exit 1; }
    done
    [ $i -lt 50 ] || { echo "demo: rproxy did not answer on 127.0.0.1:$HTTP" >&2; exit 1; }
    sleep 0.1 2>/dev/null || sleep 1
done

U=http://127.0.0.1:$HTTP
cat <<EOF

rproxy demo: rproxy on $U and https://127.0.0.1:$HTTPS (config: $dir/demo.conf).
Devices (build/devsim): device-a :$PA (weight 3), device-b :$PB (weight 1), sensor :$PSENSOR
(Cache-Control: max-age=10), files :$PFILES ($BIG-byte answers), slow :$PSLOW (answers after
${SLOW_MS} ms; rproxy waits $TIMEOUT). rproxy's access log is printed below as requests come.
Try, from another terminal:

Balancing by weight:
  $ for i in 1 2 3 4; do curl -s $U/; done
  Look for: three answers from device-a for each one from device-b (smooth weighted round-robin).

Response cache (route path=/sensor cache=on):
  $ for i in 1 2; do curl -si $U/sensor | grep -i '^cache-status'; done
  Look for: "fwd=miss; stored" the first time, then "hit; ttl=..." (the sensor was not asked again).

Status page, JSON and Prometheus:
  $ curl -s $U/_status
  Look for: every pool and device with its state, weight, requests and failures, and the cache counters.
  $ curl -s '$U/_status?format=prometheus' | grep '^rproxy_device_requests'
  Look for: one counter per device, in Prometheus text format.

TLS, with the certificate made for this run:
  $ curl -s --cacert $dir/demo.crt https://127.0.0.1:$HTTPS/
  Look for: "hello from device-..." -- the handshake verified against $dir/demo.crt.

A large download, streamed through fixed buffers:
  $ curl -s -o /dev/null -w '%{http_code} %{size_download} bytes\n' $U/files/big
  Look for: "200 $BIG bytes", while rproxy's memory stays flat (ps -o rss= -p $rpid).

A slow device and the device timeout:
  $ curl -s -o /dev/null -w '%{http_code} after %{time_total} s\n' $U/slow
  Look for: "504 after 2.0... s": rproxy stops waiting at timeout device=$TIMEOUT.

Ctrl-C stops rproxy (in-flight requests finish first) and the devices.

EOF
# Wait for rproxy; a signal to this script interrupts the wait and runs
# cleanup.  Ctrl-C in this terminal reaches rproxy too: it stops gracefully
# and exits 0, and so does the demo.
wait "$rpid"
rc=$?
[ $rc -gt 128 ] && exit $rc
pids=${pids#"$rpid "}
[ $rc = 0 ] && exit 0
echo "demo: rproxy exited ($rc)" >&2
exit 1

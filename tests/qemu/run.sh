#!/bin/sh
# tests/qemu/run.sh -- the mps2-an386 gateway firmware end to end under QEMU.
#
# Builds the firmware, starts three device servers (build/devsim) on the
# host's 127.0.0.1 (9101 dev1, 9102 dev2, 9103 big: 1 MiB bodies), boots
# qemu-system-arm -M mps2-an386 with user networking: the only forward is
# 127.0.0.1:$QEMU_PORT -> gateway :80, and the gateway reaches the devices
# through slirp's host alias 10.0.2.2 (= the host's loopback).  Then curl:
# balancing by weight, keep-alive, 1 MiB byte-exact, concurrency, failover.
# TAP output; the UART log is build/qemu-uart.log (kept, and printed on
# failure).  As root, installs qemu-system-arm with apt-get when missing.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
PORT=${QEMU_PORT:-}
if [ -z "$PORT" ]; then # a free loopback port for the forward
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
UART=$B/qemu-uart.log
URL=http://127.0.0.1:$PORT
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi; }
now_ms() { date +%s%3N; }

if ! command -v qemu-system-arm >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "1..0 # SKIP qemu-system-arm missing (apt-get install qemu-system-arm)"; exit 0; }
    echo "# installing qemu-system-arm" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-arm >&2 ||
        { echo "Bail out! cannot install qemu-system-arm"; exit 1; }
fi
command -v arm-none-eabi-gcc >/dev/null || { echo "1..0 # SKIP arm-none-eabi-gcc missing"; exit 0; }
sh scripts/fetch-deps.sh lwip >&2 || exit 1
make -s firmware $B/devsim >&2 || { echo "Bail out! firmware build failed"; exit 1; }
for p in 9101 9102 9103 $PORT; do
    if (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
        echo "Bail out! 127.0.0.1:$p is already in use"
        exit 1
    fi
done 2>/dev/null

pids=
cleanup() { for p in $pids; do kill $p 2>/dev/null; done; }
trap cleanup EXIT INT TERM
$B/devsim -p 9101 -a 127.0.0.1 -n dev1 2>/dev/null & pid1=$!
$B/devsim -p 9102 -a 127.0.0.1 -n dev2 2>/dev/null & pid2=$!
$B/devsim -p 9103 -a 127.0.0.1 -n big -s 1048576 2>/dev/null & pid3=$!
pids="$pid1 $pid2 $pid3"

t0=$(now_ms)
qemu-system-arm -M mps2-an386 -nographic -monitor none -serial stdio \
    -kernel $B/mps2-an386/rproxy-gw.elf \
    -nic user,model=lan9118,hostfwd=tcp:127.0.0.1:$PORT-:80 </dev/null >$UART 2>&1 &
qpid=$!
pids="$pids $qpid"
i=0
while ! grep -q "rproxy gateway ready" $UART 2>/dev/null && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
echo "1..10"
if grep -q "rproxy gateway ready" $UART; then
    ok "firmware booted in $(($(now_ms) - t0)) ms ($(grep -o 'rp_proxy [0-9]* bytes' $UART))"
else
    nok "firmware booted (no banner in 30 s)"
fi

C="curl -s --max-time 20"
body=$($C $URL/hello)
case $body in "hello from dev"*) ok "GET proxied by the Cortex-M4 ($body)" ;; *) nok "GET proxied (got '$body')" ;; esac

# weight 3:1 over 8 requests, a new client connection each
for i in 1 2 3 4 5 6 7 8; do $C -D - -o /dev/null $URL/w$i; done | tr -d '\r' |
    awk '/^X-Device:/ {c[$2]++} END {printf "dev1=%d dev2=%d", c["dev1"], c["dev2"]}' >$B/qemu-wrr
check "balanced by weight 3:1 (X-Device over 8 requests)" "$(cat $B/qemu-wrr)" "dev1=6 dev2=2"

# keep-alive: 20 requests on one client connection
urls=; for i in $(seq 1 20); do urls="$urls -o /dev/null $URL/k$i"; done
conns=$($C -w '%{http_code}:%{num_connects}\n' $urls | sort | uniq -c | tr -s ' ' | tr '\n' ';')
check "keep-alive: 20 requests on one client connection" "$conns" " 19 200:0; 1 200:1;"

# 1 MiB byte-exact (against the device itself) and its time
want=$($C http://127.0.0.1:9103/big | sha256sum | cut -d" " -f1)
t1=$(now_ms)
got=$($C $URL/big -o $B/qemu-big.bin -w '%{size_download}')
t2=$(now_ms)
check "1 MiB download: size" "$got" "1048576"
check "1 MiB download: byte-exact (sha256) in $((t2 - t1)) ms" "$(sha256sum <$B/qemu-big.bin | cut -d" " -f1)" "$want"

# 8 concurrent clients: slirp's host alias carries 8 device connections at once
rm -f $B/qemu-conc
for i in 1 2 3 4 5 6 7 8; do ($C -o /dev/null -w '%{http_code}\n' $URL/c$i >>$B/qemu-conc) & done
wait_n=0
while [ "$(wc -l <$B/qemu-conc 2>/dev/null || echo 0)" -lt 8 ] && [ $wait_n -lt 300 ]; do
    sleep 0.1
    wait_n=$((wait_n + 1))
done
check "8 concurrent clients all 200" "$(sort $B/qemu-conc | uniq -c | tr -s ' ')" " 8 200"

# 8 concurrent 1 MiB downloads, all byte-exact
rm -f $B/qemu-conc-big.*
for i in 1 2 3 4; do ($C $URL/big$i | sha256sum | cut -d" " -f1 >$B/qemu-conc-big.$i) & done
wait_n=0
while [ "$(cat $B/qemu-conc-big.* 2>/dev/null | wc -l)" -lt 4 ] && [ $wait_n -lt 600 ]; do
    sleep 0.1
    wait_n=$((wait_n + 1))
done
check "4 concurrent 1 MiB downloads byte-exact" "$(cat $B/qemu-conc-big.* | sort | uniq -c | tr -s ' ')" " 4 $want"

# failover: dev2 stopped; every request answered, all by dev1
kill $pid2 2>/dev/null
sleep 0.3
for i in 1 2 3 4 5 6 7 8; do $C -D - -o /dev/null $URL/f$i; done | tr -d '\r' |
    awk '/^HTTP/ {s[$2]++} /^X-Device:/ {c[$2]++} END {printf "200=%d dev1=%d dev2=%d", s[200], c["dev1"], c["dev2"]}' >$B/qemu-fo
check "failover: dev2 stopped, 8 of 8 answered by dev1" "$(cat $B/qemu-fo)" "200=8 dev1=8 dev2=0"

if grep -q FATAL $UART; then nok "no fault on the UART"; else ok "no fault on the UART"; fi
if [ $fails != 0 ]; then
    echo "# UART log kept in $UART:"
    tail -30 $UART | sed 's/^/# /'
fi
echo "# $((n - fails)) passed, $fails failed (total $(($(now_ms) - t0)) ms)"
[ $fails = 0 ]

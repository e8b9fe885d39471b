#!/bin/sh
# tests/qemu/run.sh -- the mps2-an386 gateway firmware end to end under QEMU.
#
# Builds the firmware, starts three device servers (build/devsim) on the
# host's 127.0.0.1 (9101 dev1, 9102 dev2, 9103 big: 1 MiB bodies), boots
# qemu-system-arm -M mps2-an386 with user networking: the forwards are
# 127.0.0.1:$QEMU_PORT -> gateway :80 and 127.0.0.1:$QEMU_TLS_PORT -> gateway
# :443 (TLS terminated by BearSSL on the emulated Cortex-M4, with the test
# certificate build/mps2-an386/tls/gw.crt generated at build time), and the
# gateway reaches the devices through slirp's host alias 10.0.2.2 (= the
# host's loopback; 9104 sensor: 3000-byte bodies, max-age=300, behind a
# cache=on route).  Then curl: balancing by weight, keep-alive, 1 MiB
# byte-exact, concurrency, a cache miss then hits that never reach the
# sensor (its request count, read with SIGUSR1), over HTTP and HTTPS, byte-exact
# from the arena, the link down 2 s mid-download (QEMU monitor set_link:
# logged on the UART, download byte-exact), failover; over TLS: a verified GET, the handshake
# time, keep-alive, 1 MiB byte-exact, the protocol and suite (openssl
# s_client), TLS 1.3-only refused.  QEMU_ICOUNT=N runs the guest with
# -icount shift=N (2^N ns per instruction) so the UART's "long turns" and
# "longest turn" figures count instructions.  TAP output; the UART log is
# build/qemu-uart.log (kept, and printed on failure).  As root, installs
# qemu-system-arm and libbearssl-dev with apt-get when missing.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
PORT=${QEMU_PORT:-}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
[ -n "$PORT" ] || PORT=$(free_port) # free loopback ports for the forwards
TPORT=${QEMU_TLS_PORT:-}
while [ -z "$TPORT" ] || [ "$TPORT" = "$PORT" ]; do TPORT=$(free_port); done
ICOUNT=${QEMU_ICOUNT:+-icount shift=$QEMU_ICOUNT}
UART=$B/qemu-uart.log
URL=http://127.0.0.1:$PORT
SURL=https://127.0.0.1:$TPORT
CRT=$B/mps2-an386/tls/gw.crt
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
if [ ! -f /usr/include/bearssl.h ]; then # the build-time config check links the host's BearSSL
    [ "$(id -u)" = 0 ] || { echo "1..0 # SKIP libbearssl-dev missing"; exit 0; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libbearssl-dev >&2 ||
        { echo "Bail out! cannot install libbearssl-dev"; exit 1; }
fi
command -v arm-none-eabi-gcc >/dev/null || { echo "1..0 # SKIP arm-none-eabi-gcc missing"; exit 0; }
command -v openssl >/dev/null || { echo "1..0 # SKIP openssl missing"; exit 0; }
sh scripts/fetch-deps.sh lwip bearssl >&2 || exit 1
make -s firmware $B/devsim >&2 || { echo "Bail out! firmware build failed"; exit 1; }
for p in 9101 9102 9103 9104 $PORT $TPORT; do
    if (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
        echo "Bail out! 127.0.0.1:$p is already in use"
        exit 1
    fi
done 2>/dev/null

pids=
cleanup() { for p in $pids; do kill $p 2>/dev/null; done; }
trap cleanup EXIT INT TERM
. boards/mps2-an386/devices.sh
gw_devices $B/devsim $B/qemu-sensor.log
pid2=$dev2 pid4=$sensor
# sensor_reqs: request heads the sensor has parsed so far
sensor_reqs() {
    kill -USR1 $pid4
    sleep 0.2
    awk '/requests/ { n = $NF } END { print n + 0 }' $B/qemu-sensor.log
}

t0=$(now_ms)
MON=$B/qemu-mon.sock
rm -f $MON
qemu-system-arm -M mps2-an386 -nographic -monitor unix:$MON,server,nowait -serial stdio $ICOUNT \
    -kernel $B/mps2-an386/rproxy-gw.elf \
    -nic user,model=lan9118,hostfwd=tcp:127.0.0.1:$PORT-:80,hostfwd=tcp:127.0.0.1:$TPORT-:443 \
    </dev/null >$UART 2>&1 &
qpid=$!
pids="$pids $qpid"
i=0
while ! grep -q "rproxy gateway ready" $UART 2>/dev/null && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
# monitor: one QEMU monitor command (set_link lan9118.0 off|on)
monitor() {
    python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.2)
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.3)' $MON "$1"
}
echo "1..23"
if grep -q "rproxy gateway ready" $UART; then
    ok "firmware booted in $(($(now_ms) - t0)) ms ($(grep -o 'rp_proxy [0-9]* bytes' $UART))"
else
    nok "firmware booted (no banner in 30 s)"
fi

C="curl -s --max-time 20"
body=$($C -S $URL/hello 2>$B/qemu-first.err)
rc=$?
case $body in "hello from dev"*) ok "GET proxied by the Cortex-M4 ($body)" ;;
*) nok "GET proxied (got '$body', curl exit $rc: $(cat $B/qemu-first.err))" ;; esac

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
# (60 s each: an emulated NIC on a loaded host can be slow; correctness is what counts)
for i in 1 2 3 4; do (curl -s --max-time 60 $URL/big$i | sha256sum | cut -d" " -f1 >$B/qemu-conc-big.$i) & done
wait_n=0
while [ "$(cat $B/qemu-conc-big.* 2>/dev/null | wc -l)" -lt 4 ] && [ $wait_n -lt 650 ]; do
    sleep 0.1
    wait_n=$((wait_n + 1))
done
check "4 concurrent 1 MiB downloads byte-exact" "$(cat $B/qemu-conc-big.* | sort | uniq -c | tr -s ' ')" " 4 $want"

# ---- the cache on the board: 16 KiB arena of 512-byte blocks ----
want_s=$($C http://127.0.0.1:9104/direct | sha256sum | cut -d" " -f1)
base=$(sensor_reqs)
st=$($C -D - -o $B/qemu-sensor.bin $URL/sensor/temp | tr -d '\r' | awk -F': ' '/^Cache-Status:/ {print $2}')
check "cache miss stored (Cache-Status), byte-exact" \
    "$st $(sha256sum <$B/qemu-sensor.bin | cut -d" " -f1)" "rproxy; fwd=miss; fwd-status=200; stored $want_s"
hits=0 same=0
for i in 1 2 3 4 5; do
    st=$($C -D - -o $B/qemu-sensor.bin $URL/sensor/temp | tr -d '\r' | awk -F': ' '/^Cache-Status:/ {print $2}')
    case $st in "rproxy; hit"*) hits=$((hits + 1)) ;; esac
    [ "$(sha256sum <$B/qemu-sensor.bin | cut -d" " -f1)" = "$want_s" ] && same=$((same + 1))
done
check "5 more GETs: hits (Cache-Status), byte-exact from the arena" "hits=$hits same=$same" "hits=5 same=5"
check "the sensor saw the miss only" "$(($(sensor_reqs) - base))" "1"

# ---- HTTPS: TLS terminated by BearSSL on the Cortex-M4 ----
# (generous timeouts: ECDHE + ECDSA P-256 in software on an emulated M4)
S="curl -s --max-time 60 --cacert $CRT"
out=$($S -w '\n%{http_code} %{ssl_verify_result} %{time_appconnect}' $SURL/hello)
hs=$(echo "$out" | tail -1 | awk '{printf "%d", $3 * 1000}')
case $(echo "$out" | head -1)/$(echo "$out" | tail -1 | cut -d' ' -f1,2) in
"hello from dev"*"/200 0") ok "HTTPS GET, certificate verified against $CRT ($(echo "$out" | head -1)), handshake ${hs} ms" ;;
*) nok "HTTPS GET (got '$out')" ;;
esac

# handshake time: the best of 5 fresh handshakes (one TLS slot at a time)
for i in 1 2 3 4 5; do $S -o /dev/null -w '%{time_appconnect}\n' $SURL/h$i; done |
    awk '{ms = $1 * 1000; if (n++ == 0 || ms < min) min = ms; if (ms > max) max = ms; sum += ms}
         END {printf "%d %d %d %d", n, min, sum / (n ? n : 1), max}' >$B/qemu-hs
read hs_n hs_min hs_avg hs_max <$B/qemu-hs
if [ "$hs_n" = 5 ] && [ "$hs_max" -lt 20000 ]; then
    ok "5 full handshakes (ECDHE, ECDSA P-256 sign on the M4): min $hs_min / avg $hs_avg / max $hs_max ms"
else
    nok "5 full handshakes under 20 s (got n=$hs_n max=$hs_max ms)"
fi

# keep-alive: 10 requests over one TLS connection
urls=; for i in $(seq 1 10); do urls="$urls -o /dev/null $SURL/tk$i"; done
conns=$($S -w '%{http_code}:%{num_connects}\n' $urls | sort | uniq -c | tr -s ' ' | tr '\n' ';')
check "TLS keep-alive: 10 requests on one TLS connection" "$conns" " 9 200:0; 1 200:1;"

# 1 MiB over TLS, byte-exact against the device itself
t1=$(now_ms)
got=$($S $SURL/big -o $B/qemu-big-tls.bin -w '%{size_download}')
t2=$(now_ms)
check "1 MiB over TLS: byte-exact (sha256) in $((t2 - t1)) ms" \
    "$got $(sha256sum <$B/qemu-big-tls.bin | cut -d" " -f1)" "1048576 $want"

# a cache hit over TLS: the arena's blocks go through BearSSL.  The key has
# the Host (another port here), so the first HTTPS GET is its own miss.
base=$(sensor_reqs)
$S -o /dev/null $SURL/sensor/temp
st=$($S -D - -o $B/qemu-sensor-tls.bin $SURL/sensor/temp | tr -d '\r' | awk -F': ' '/^Cache-Status:/ {print $2}')
case "$st" in "rproxy; hit"*) st=hit ;; esac
check "HTTPS: miss then a hit, byte-exact, one sensor request" \
    "$st $(sha256sum <$B/qemu-sensor-tls.bin | cut -d" " -f1) $(($(sensor_reqs) - base))" "hit $want_s 1"

# protocol and suite, as openssl s_client sees them
sc=$(echo | timeout 60 openssl s_client -connect 127.0.0.1:$TPORT -servername localhost \
    -CAfile $CRT 2>/dev/null)
proto=$(echo "$sc" | awk '/^ *Protocol *:/ {print $3; exit}')
suite=$(echo "$sc" | awk '/^ *Cipher *:/ {print $3; exit}')
vrfy=$(echo "$sc" | awk '/Verify return code:/ {print $4; exit}')
case "$proto $suite $vrfy" in
"TLSv1.2 ECDHE-"*"-GCM-"*" 0" | "TLSv1.2 ECDHE-"*"-CHACHA20-"*" 0")
    ok "openssl s_client: $proto $suite, verify 0" ;;
*) nok "openssl s_client: TLSv1.2 with an ECDHE AEAD suite (got '$proto $suite verify=$vrfy')" ;;
esac

# a TLS 1.3-only client cannot connect (BearSSL has no 1.3), and the gateway keeps serving
if echo | timeout 60 openssl s_client -tls1_3 -connect 127.0.0.1:$TPORT >/dev/null 2>&1; then
    nok "TLS 1.3-only client refused"
else
    ok "TLS 1.3-only client refused"
fi
body=$($S $SURL/after13)
case $body in "hello from dev"*) ok "HTTPS still served after the refused handshake" ;; *) nok "HTTPS after the refused handshake (got '$body')" ;; esac

# link down 2 s in the middle of a 1 MiB download (QEMU's set_link: the
# LAN9118's PHY reports it, the driver counts it, the UART logs it): TCP
# resends what was lost and the download finishes byte-exact
rm -f $B/qemu-link.res
(curl -s --max-time 60 --limit-rate 200k $URL/big-link | sha256sum | cut -d" " -f1 >$B/qemu-link.res) &
lpid=$!
sleep 1
monitor "set_link lan9118.0 off"
sleep 2
monitor "set_link lan9118.0 on"
wait $lpid
sleep 0.6
check "link down 2 s mid-download: logged down and up on the UART" \
    "$(grep -o 'eth: link [a-z]*' $UART | tr '\n' ' ')" "eth: link down eth: link up "
check "link down 2 s mid-download: 1 MiB byte-exact after it" "$(cat $B/qemu-link.res)" "$want"

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

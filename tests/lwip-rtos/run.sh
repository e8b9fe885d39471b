#!/bin/sh
# tests/lwip-rtos/run.sh -- rproxy on lwIP with an RTOS (Debian's liblwip-dev:
# NO_SYS=0, pthreads, sockets, core locking), end to end, in a network
# namespace with a TAP (tests/lwip-host/netns.sh):
#
#   1. port/sockets.c compiles for Cortex-M4 with -Werror against lwIP's
#      own headers, LWIP_SOCKET=1 (tests/lwip-rtos/m4/lwipopts.h)
#   2. the core scenarios (tests/lwip-host/scenarios.sh) over
#      build/rproxy-lwsock (port/sockets.c), build/rproxy-lwrtos (port/lwip.c,
#      every rproxy call under LOCK_TCPIP_CORE) and build/rproxy-lwrtos -x
#      callback (every rproxy call in the tcpip thread)
#   3. TLS termination and bad input over the sockets port: ENOBUFS from
#      send (injected), no socket for a device or a client (ENFILE,
#      injected as lwIP fails), a client's reset mid-stream, the link down
#      1.5 s and 5 s -- counted, logged, the gateway keeps serving
#   4. the loop task's stack high-water mark (build/rproxy-lwsock-hw, -O2)
#      over plain and TLS traffic
# All under ASan+UBSan except 4.  Needs root, curl, python3, openssl,
# liblwip-dev (scripts/deps.sh).  Prints TAP lines; exit 0 when all passed.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
OUT=$B/lwip-rtos-run

[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (ip netns, TAP)"; exit 0; }
for t in curl python3 openssl arm-none-eabi-gcc; do
    command -v $t >/dev/null || { echo "not ok 1 - $t missing (sh scripts/deps.sh)"; exit 1; }
done
[ -f /usr/include/lwip/lwipopts.h ] || { echo "not ok 1 - liblwip-dev missing (sh scripts/deps.sh)"; exit 1; }
sh scripts/fetch-deps.sh lwip || exit 1 # lwIP's own headers for the Cortex-M4 build
make -s -f tests/lwip-rtos/lwip-rtos.mk BUILD=$B >&2 && make -s BUILD=$B $B/devsim >&2 || exit 1
. tests/lwip-host/netns.sh
. tests/lwip-host/scenarios.sh

# ---- 1. Cortex-M4 build: every port function defined, for ARM (16, and the two
# rp_port_resolve* of RP_ENABLE_DNS, on by default: the sockets port answers RP_ENOTIMPL)
m4=$(arm-none-eabi-objdump -f $B/sockets-m4.o | sed -n 's/^architecture: \(arm\).*/\1/p')
fns=$(arm-none-eabi-nm $B/sockets-m4.o | grep -c ' [TW] rp_port_')
check "port/sockets.c for Cortex-M4 (-Werror, lwIP headers, LWIP_SOCKET=1): $fns port functions" \
    "$m4 $fns" "arm 18"

# ---- 2. the core scenarios over each build
{ echo "listen 80"; scenario_conf; } >$OUT/rproxy.conf
gw_log=
gateway() { # NAME BINARY [ARGS]: start it (its output in $OUT/NAME), $gpid
    gw_log=$OUT/$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)
    mkdir -p $gw_log
    shift
    ip netns exec $NS "$@" >$gw_log/stdout 2>$gw_log/rproxy.log &
    gpid=$!
    pids="$pids $gpid"
    gateway_up $gw_log
}
gateway_stop() { # NAME: SIGTERM, clean exit, its counters line
    kill $gpid
    wait $gpid
    check "$1: clean exit under ASan/UBSan" "$?" "0"
    tail -1 $gw_log/rproxy.log | sed 's/^/# /'
}
run() { # NAME BINARY [ARGS]
    _name=$1
    if gateway "$@" -t $TAPDEV -i $GWIP -g $HOSTIP -c $OUT/rproxy.conf; then
        ok "$_name: up on the TAP"
        scenarios "$_name"
    else
        nok "$_name: up on the TAP"
    fi
    gateway_stop "$_name"
}
run sockets $B/rproxy-lwsock
run "raw+RTOS lock" $B/rproxy-lwrtos
run "raw+RTOS tcpip_callback" $B/rproxy-lwrtos -x callback

# ---- 3. TLS termination and bad input over the sockets port
T=$OUT/tls
mkdir -p $T
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=gw \
    -addext "subjectAltName=IP:$GWIP" -keyout $T/gw.key -out $T/gw.crt 2>/dev/null
cat >$OUT/bad.conf <<CONF
listen 80
listen 443 tls
tls cert=$T/gw.crt key=$T/gw.key
pool main
device main $HOSTIP:9101
pool fresh
device fresh $HOSTIP:9102
pool big
device big $HOSTIP:9103
route path=/big pool=big
route path=/fresh pool=fresh
route pool=main
timeout connect=1000 device=4000 client_idle=4000 device_idle=1500
CONF
G=http://$GWIP
S="--cacert $T/gw.crt https://$GWIP"
C="inns curl -s --max-time 10"
bigsha=$(inns curl -s http://$HOSTIP:9103/big | fsha /dev/stdin)

if gateway bad $B/rproxy-lwsock -t $TAPDEV -i $GWIP -g $HOSTIP -c $OUT/bad.conf \
    -b $T/gw.crt -b $T/gw.key; then ok "sockets: TLS gateway up"; else nok "sockets: TLS gateway up"; fi
check "TLS termination: GET over https, certificate verified" "$($C $S/hello)" "hello from dev1"
check "TLS termination: 1 MB byte-exact" "$($C $S/big | fsha /dev/stdin)" "$bigsha"
urls=; for i in 1 2 3 4 5; do urls="$urls -o /dev/null $S/k$i"; done
check "TLS keep-alive: 5 requests, one handshake" \
    "$($C -w '%{http_code}:%{num_connects}\n' $urls | sort | uniq -c | tr -s ' ' | tr '\n' ';')" \
    " 4 200:0; 1 200:1;"

# ENOBUFS: the next 20 sends fail as a stack out of buffers answers
bg_get nb $G/big --limit-rate 400k
sleep 0.8
kill -USR1 $gpid
wait $bg_nb
check "ENOBUFS x20 mid-download: retried, 1 MB byte-exact" "$(res nb) $(fsha $OUT/nb)" \
    "200 1048576 $bigsha"

# out of sockets for a device connection (socket() -> ENFILE): 503, then 200
kill -USR2 $gpid
sleep 0.1
check "no socket for the device (ENFILE): 503" "$(get_code $G/fresh/a)" "503"
check "no socket for the device (ENFILE): 503 again" "$(get_code $G/fresh/b)" "503"
check "sockets back: 200" "$(get_code $G/fresh/c)" "200"

# out of sockets for a client (accept -> ENFILE, connection closed, as lwIP
# does): no answer, the listener pauses, then 200
kill -HUP $gpid
sleep 0.1
check "no socket for a client (ENFILE): connection closed unanswered" "$(get_code $G/x1 2)" "000"
check "no socket for a client (ENFILE): again" "$(get_code $G/x2 2)" "000"
check "sockets back: a client is served" "$(get_code $G/x3)" "200"

# a client resets mid-stream (SO_LINGER 0: RST with 1 MB still to come)
rst=$(inns python3 -c '
import socket, struct, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /big HTTP/1.1\r\nHost: gw\r\n\r\n")
got = 0
while got < 20000:
    got += len(s.recv(4096))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("reset")' $GWIP 2>&1)
sleep 0.5
check "client reset mid-download, then a GET: 200" "$rst $(get_code $G/after-reset)" "reset 200"

# link down 1.5 s in the middle of a download (the kernel side of the TAP)
bg_get l1 $G/big --limit-rate 400k
sleep 0.8
inns ip link set $TAPDEV down
sleep 1.5
inns ip link set $TAPDEV up
wait $bg_l1
check "link down 1.5 s mid-download: resumes, 1 MB byte-exact ($(took l1) s)" "$(res l1) $(fsha $OUT/l1)" \
    "200 1048576 $bigsha"

# link down 5 s: longer than client_idle/device (4 s)
bg_get l2 $G/big --limit-rate 400k
sleep 0.8
inns ip link set $TAPDEV down
check "link down: a new connection gets no answer" "$(get_code $G/hello 1)" "000"
sleep 4.5
inns ip link set $TAPDEV up
sleep 0.3
check "link up: traffic resumes" "$(get_code $G/hello 5)" "200"
wait $bg_l2
case $(tail -1 $OUT/l2.res) in
rc=0 | rc=28) nok "link down 5 s: the stalled download is cut short ($(res l2), $(tail -1 $OUT/l2.res))" ;;
*) ok "link down 5 s: the stalled download is cut short (curl $(tail -1 $OUT/l2.res))" ;;
esac
check "after all of it: TLS still served" "$($C $S/end)" "hello from dev1"

gateway_stop "sockets, bad input"
line=$(tail -1 $gw_log/rproxy.log)
num() { echo "$line" | sed -n "s/.* $1 \([0-9]*\).*/\1/p"; }
check "counted: nobufs, device sockets refused, clients refused, resets, timeouts" \
    "nobufs=$([ "$(num nobufs)" -ge 1 ] && echo y) connect_nomem=$(num connect_nomem) refused=$(num refused) accept_errors=$(num accept_errors) resets=$([ "$(num resets)" -ge 1 ] && echo y) timeouts=$([ "$(num timeouts)" -ge 1 ] && echo y)" \
    "nobufs=y connect_nomem=2 refused=2 accept_errors=2 resets=y timeouts=y"
check "logged: out of sockets (accept, connect) and buffers (send)" \
    "$(grep -c 'accept: out of sockets' $gw_log/rproxy.log) $(grep -c 'connect: out of sockets' $gw_log/rproxy.log) $(grep -c 'send/recv: out of sockets or buffers' $gw_log/rproxy.log)" \
    "1 1 1"

# ---- 4. the loop task's stack, -O2 without sanitizers: plain, TLS, big
gateway hw $B/rproxy-lwsock-hw -t $TAPDEV -i $GWIP -g $HOSTIP -c $OUT/bad.conf -b $T/gw.crt -b $T/gw.key
r="$($C $G/a) $($C $S/b) $($C $S/big | fsha /dev/stdin)"
check "-O2 build: plain, TLS and TLS 1 MB answered" "$r" "hello from dev1 hello from dev1 $bigsha"
kill $gpid
wait $gpid
hw=$(sed -n 's/.*loop stack high-water \([0-9]*\) bytes.*/\1/p' $gw_log/rproxy.log)
th=$(sed -n 's/.*descriptor and TLS \([0-9]*\)).*/\1/p' $gw_log/rproxy.log)
check "loop task stack high-water: ${hw:-?} bytes, ${th:-?} of them glibc's thread descriptor and TLS (x86-64, -O2, TLS handshake included)" \
    "$([ -n "$hw" ] && [ "$hw" -gt 1024 ] && [ "$hw" -lt 65536 ] && echo sane)" "sane"

echo "1..$n"
[ $fails = 0 ] || { echo "# logs in $OUT"; tail -n 5 $OUT/*/rproxy.log | sed 's/^/# /'; }
echo "# $((n - fails)) passed, $fails failed"
[ $fails = 0 ]

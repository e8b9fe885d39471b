#!/bin/sh
# tests/lwip-host/run.sh -- rproxy over lwIP (port/lwip.c) on Linux, end to end.
#
# Creates its own network namespace with a TAP device in it: the kernel side
# of the TAP (192.168.77.1) runs the device servers (build/devsim) and curl,
# the lwIP side (192.168.77.2) is build/rproxy-lwip (ASan+UBSan).  Nothing
# leaves the namespace, which is deleted at the end.  Needs root, curl and
# python3.  After its own tests, tests/lwip-host/faults.sh (sourced) runs the
# port's fault paths against a second gateway: link/netif down, lost
# address, a stalled reader, tiny segments, exhausted pcbs/pbufs/heap.
# Prints TAP lines; exit 0 when every test passed.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
NS=rplwip$$
TAPDEV=rptap0
HOSTIP=192.168.77.1
GWIP=192.168.77.2
OUT=$B/lwip-host-run
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi; }
inns() { ip netns exec $NS "$@"; }

[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (ip netns, TAP)"; exit 0; }
command -v curl >/dev/null || { echo "1..0 # SKIP curl missing"; exit 0; }
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 0; }
sh scripts/fetch-deps.sh lwip || exit 1
make -s -f tests/lwip-host/lwip-host.mk BUILD=$B >&2 && make -s BUILD=$B $B/devsim >&2 || exit 1
rm -rf $OUT && mkdir -p $OUT

pids=
cleanup() {
    for p in $pids; do kill $p 2>/dev/null; done
    sleep 0.2
    ip netns del $NS 2>/dev/null
}
trap cleanup EXIT INT TERM

ip netns add $NS || exit 1
inns ip link set lo up
inns ip tuntap add dev $TAPDEV mode tap
inns ip addr add $HOSTIP/24 dev $TAPDEV
inns ip link set $TAPDEV up
# Small socket buffers on the kernel side: a stalled or slow reader then
# stalls inside lwIP's window instead of 1 MB vanishing into curl's buffer.
inns sysctl -q -w net.ipv4.tcp_rmem="4096 32768 65536" net.ipv4.tcp_wmem="4096 32768 65536"

devsim() { # port name [size]
    ip netns exec $NS $B/devsim -p $1 -a $HOSTIP -n $2 ${3:+-s $3} 2>>$OUT/devsim.log &
    pids="$pids $!"
    eval "pid_$2=$!"
}
devsim 9101 dev1
devsim 9102 dev2
devsim 9103 big 1048576

cat >$OUT/rproxy.conf <<CONF
listen 80
pool main
device main $HOSTIP:9101 weight=3
device main $HOSTIP:9102 weight=1
pool big
device big $HOSTIP:9103
route path=/big pool=big
route pool=main
timeout connect=1000
CONF
ip netns exec $NS $B/rproxy-lwip -t $TAPDEV -i $GWIP -g $HOSTIP -c $OUT/rproxy.conf >$OUT/stdout 2>$OUT/rproxy.log &
rpid=$!
pids="$pids $rpid"
i=0
while ! grep -q ready $OUT/stdout 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
grep -q ready $OUT/stdout && ok "rproxy-lwip up on the TAP" || nok "rproxy-lwip up on the TAP"
sleep 0.3

C="inns curl -s --max-time 10"
body=$($C http://$GWIP/hello)
case $body in "hello from dev"*) ok "GET proxied over lwIP ($body)" ;; *) nok "GET proxied over lwIP (got '$body')" ;; esac

# smooth WRR 3:1 over 8 requests, each on its own connection
for i in 1 2 3 4 5 6 7 8; do $C -D - -o /dev/null http://$GWIP/w$i; done |
    tr -d '\r' | awk '/^X-Device:/ {c[$2]++} END {printf "dev1=%d dev2=%d", c["dev1"], c["dev2"]}' >$OUT/wrr
check "balanced by weight 3:1" "$(cat $OUT/wrr)" "dev1=6 dev2=2"

# keep-alive: 20 requests in one curl, one connection
urls=; for i in $(seq 1 20); do urls="$urls -o /dev/null http://$GWIP/k$i"; done
conns=$($C -w '%{http_code}:%{num_connects}\n' $urls | sort | uniq -c | tr -s ' ' | tr '\n' ';')
check "keep-alive: 20 requests on one client connection" "$conns" " 19 200:0; 1 200:1;"

# 1 MB byte-exact against the device itself
direct=$($C http://$HOSTIP:9103/big | sha256sum)
proxied=$($C http://$GWIP/big | sha256sum)
size=$($C -o /dev/null -w '%{size_download}' http://$GWIP/big)
check "1 MB download: size" "$size" "1048576"
check "1 MB download: byte-exact (sha256)" "$proxied" "$direct"

# backpressure: a client reading at 400 KB/s; the device is held back through
# lwIP's window (tcp_recved only as rproxy consumes), the bytes stay exact
slow=$($C --max-time 20 --limit-rate 400k http://$GWIP/big | sha256sum)
check "slow client (400 KB/s): 1 MB byte-exact through the TCP window" "$slow" "$direct"

# 16 concurrent clients
for i in $(seq 1 16); do ($C -o /dev/null -w '%{http_code}\n' http://$GWIP/c$i >>$OUT/conc) & done
wait_n=0; while [ $(wc -l <$OUT/conc 2>/dev/null || echo 0) -lt 16 ] && [ $wait_n -lt 100 ]; do sleep 0.1; wait_n=$((wait_n + 1)); done
check "16 concurrent clients all 200" "$(sort $OUT/conc | uniq -c | tr -s ' ')" " 16 200"

# failover: stop dev2, every request still answered by dev1
kill $pid_dev2 2>/dev/null; sleep 0.2
for i in 1 2 3 4 5 6 7 8; do $C -D - -o /dev/null http://$GWIP/f$i; done | tr -d '\r' |
    awk '/^HTTP/ {s[$2]++} /^X-Device:/ {c[$2]++} END {printf "200=%d dev1=%d dev2=%d", s[200], c["dev1"], c["dev2"]}' >$OUT/fo
check "failover: dev2 stopped, all 8 answered by dev1" "$(cat $OUT/fo)" "200=8 dev1=8 dev2=0"

kill $rpid; wait $rpid 2>/dev/null; rc=$?
check "clean exit under ASan/UBSan" "$rc" "0"
tail -1 $OUT/rproxy.log | sed 's/^/# /'

# The port's fault paths: link and netif down, lost address, a stalled
# reader, exhausted pools (a second gateway with a control FIFO).
. tests/lwip-host/faults.sh
echo "1..$n"
[ $fails = 0 ] || { echo "# logs in $OUT"; sed 's/^/# /' $OUT/rproxy.log $OUT/faults/rproxy.log | tail -20; }
echo "# $((n - fails)) passed, $fails failed"
[ $fails = 0 ]

#!/bin/sh
# tests/qemu/protect.sh -- the mps2-an386 gateway built with RP_ENABLE_LIMITS 1
# (`make firmware-protect`, boards/mps2-an386/protect.conf) end to end under
# QEMU: a PLC that serves one connection at a time (tests/qemu/plc.py on the
# host's 127.0.0.1:9105, 100 ms a request; a second connection is closed at
# once) sits behind `device ... max_conns=1` and `pool ... queue=8` (8 clients: one served, 7 waiting; queue=6 would 503 the 8th when all arrive within the first 100 ms).  8
# concurrent clients all get 200 and the PLC never sees two connections at
# once.  The same burst straight at the PLC (no gateway) shows it refusing
# (the check that the device really is one-at-a-time).  TAP output; the UART
# log is build/qemu-protect-uart.log.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
UART=$B/qemu-protect-uart.log
STATS=$B/qemu-plc.stats
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi; }

command -v qemu-system-arm >/dev/null 2>&1 || { echo "1..0 # SKIP qemu-system-arm missing"; exit 0; }
command -v arm-none-eabi-gcc >/dev/null || { echo "1..0 # SKIP arm-none-eabi-gcc missing"; exit 0; }
[ -f /usr/include/bearssl.h ] || { echo "1..0 # SKIP libbearssl-dev missing"; exit 0; }
sh scripts/fetch-deps.sh lwip bearssl >&2 || exit 1
make -s firmware-protect >&2 || { echo "Bail out! firmware-protect build failed"; exit 1; }
if (echo >/dev/tcp/127.0.0.1/9105) 2>/dev/null; then
    echo "Bail out! 127.0.0.1:9105 is already in use"
    exit 1
fi 2>/dev/null

pids=
cleanup() { for p in $pids; do kill $p 2>/dev/null; done; }
trap cleanup EXIT INT TERM
rm -f $STATS
python3 tests/qemu/plc.py 9105 $STATS & pids="$pids $!"
i=0
while [ ! -f $STATS ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

echo "1..4"
# the PLC alone: 4 clients at once, some refused
for k in 1 2 3 4; do (curl -s -o /dev/null --max-time 10 http://127.0.0.1:9105/direct$k) & done
sleep 1
direct=$(cat $STATS)
case $direct in *"refused 0"*) nok "the PLC alone refuses a second connection ($direct)" ;;
*) ok "the PLC alone refuses a second connection ($direct)" ;; esac

qemu-system-arm -M mps2-an386 -nographic -monitor none -serial stdio \
    -kernel $B/mps2-an386-protect/rproxy-gw.elf \
    -nic user,model=lan9118,hostfwd=tcp:127.0.0.1:$PORT-:80 </dev/null >$UART 2>&1 &
pids="$pids $!"
i=0
while ! grep -q "rproxy gateway ready" $UART 2>/dev/null && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
if grep -q "rproxy gateway ready" $UART; then ok "protect firmware booted"; else nok "protect firmware booted"; fi

# the PLC's counters restart from here: a new plc.py
kill $(echo $pids | awk '{print $1}') 2>/dev/null
sleep 0.3
rm -f $STATS
python3 tests/qemu/plc.py 9105 $STATS & pids="$pids $!"
i=0
while [ ! -f $STATS ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done

rm -f $B/qemu-protect.res
for k in 1 2 3 4 5 6 7 8; do
    (curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 http://127.0.0.1:$PORT/plc$k >>$B/qemu-protect.res) &
done
wait_curls() { i=0; while [ "$(wc -l <$B/qemu-protect.res 2>/dev/null || echo 0)" -lt 8 ] && [ $i -lt 400 ]; do sleep 0.1; i=$((i + 1)); done; }
wait_curls
check "8 concurrent clients through max_conns=1 + queue: all 200" \
    "$(sort $B/qemu-protect.res | uniq -c | tr -s ' ')" " 8 200"
sleep 0.3
check "the PLC saw 8 requests, never 2 connections at once, refused none" "$(cat $STATS)" \
    "requests 8 max_live 1 refused 0"
[ $fails = 0 ] || { echo "# UART log:"; sed 's/^/#   /' $UART | tail -30; }
exit $((fails > 0))

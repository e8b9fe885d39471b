#!/bin/sh
# tests/qemu/plus.sh -- the "plus" gateway firmware (make firmware-plus: the
# mps2-an386 board with RP_BOARD_PLUS, boards/mps2-an386/gateway-plus.conf)
# end to end under QEMU: issue 14's device limit with a queue and Basic auth,
# and issue 16's shared stream, on the emulated Cortex-M4.
#
# Devices (tests/qemu/plus_devices.py) on the host's 127.0.0.1, the guest's
# 10.0.2.2: a PLC on 9105 that takes one connection at a time (150 ms a
# request) behind `max_conns=1` and `queue=6`, and a camera on 9106 that
# streams MJPEG to one client only behind `share=on`.  Checked: 6 concurrent
# clients all get 200 while the PLC never has 2 connections; /admin answers
# 401 with the realm without credentials or with a wrong password, 200 with
# the right ones (hashed with openssl passwd -5 at build time, checked with
# BearSSL's SHA-256 on the M4), and the PLC never sees Authorization; three
# viewers of the camera each get whole JPEG parts from one device
# connection, a late viewer's first part is whole, and the device
# connection closes when they leave; the PLC's UI mounted under /sensor/
# (rewrite=/: the PLC sees /status, its redirect to /home comes back as
# /sensor/home) with one response header set by a header rule.  TAP output; the UART log is
# build/qemu-plus-uart.log.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=${QEMU_PORT:-$(free_port)}
UART=$B/qemu-plus-uart.log
URL=http://127.0.0.1:$PORT
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi; }
now_ms() { date +%s%3N; }

command -v qemu-system-arm >/dev/null 2>&1 || { echo "1..0 # SKIP qemu-system-arm missing (tests/qemu/run.sh installs it)"; exit 0; }
command -v arm-none-eabi-gcc >/dev/null || { echo "1..0 # SKIP arm-none-eabi-gcc missing"; exit 0; }
sh scripts/fetch-deps.sh lwip bearssl >&2 || exit 1
make -s firmware-plus >&2 || { echo "Bail out! plus firmware build failed"; exit 1; }
for p in 9105 9106 $PORT; do
    if (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
        echo "Bail out! 127.0.0.1:$p is already in use"
        exit 1
    fi
done 2>/dev/null

pids=
cleanup() { for p in $pids; do kill $p 2>/dev/null; done; }
trap cleanup EXIT INT TERM
python3 tests/qemu/plus_devices.py >$B/qemu-plus-dev.log 2>&1 &
dpid=$!
pids="$pids $dpid"
i=0
while ! grep -q "devices ready" $B/qemu-plus-dev.log 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
# dev_report: the devices' counters, fresh (SIGUSR1)
dev_report() {
    : >$B/qemu-plus-dev.log.mark
    kill -USR1 $dpid
    sleep 0.3
    tail -2 $B/qemu-plus-dev.log
}

t0=$(now_ms)
qemu-system-arm -M mps2-an386 -nographic -monitor none -serial stdio \
    -kernel $B/mps2-an386-plus/rproxy-gw.elf \
    -nic user,model=lan9118,hostfwd=tcp:127.0.0.1:$PORT-:80 \
    </dev/null >$UART 2>&1 &
pids="$pids $!"
i=0
while ! grep -q "rproxy gateway ready" $UART 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
echo "1..16"
if grep -q "rproxy gateway ready" $UART; then
    ok "plus firmware booted in $(($(now_ms) - t0)) ms ($(grep -o 'rp_proxy [0-9]* bytes' $UART))"
else
    nok "plus firmware booted (no banner in 30 s)"
fi

C="curl -s --max-time 30"
# ---- max_conns=1 + queue=6: six clients at once, the PLC sees one connection at a time
rm -f $B/qemu-plus-q
for i in 1 2 3 4 5 6; do ($C -o /dev/null -w '%{http_code}\n' $URL/q$i >>$B/qemu-plus-q) & done
i=0
while [ "$(wc -l <$B/qemu-plus-q 2>/dev/null || echo 0)" -lt 6 ] && [ $i -lt 400 ]; do sleep 0.1; i=$((i + 1)); done
check "6 concurrent clients behind max_conns=1 queue=6: all 200" "$(sort $B/qemu-plus-q | uniq -c | tr -s ' ')" " 6 200"
check "the PLC never had 2 connections at once" "$(dev_report | awk '/^plc/ {print $2}')" "max=1"

# ---- Basic auth on /admin (realm "plus gateway")
h=$($C -D - -o /dev/null $URL/admin/x | tr -d '\r')
check "no credentials: 401" "$(echo "$h" | awk 'NR == 1 {print $2}')" "401"
check "... with the challenge" "$(echo "$h" | awk -F': ' '/^WWW-Authenticate:/ {print $2}')" \
    'Basic realm="plus gateway", charset="UTF-8"'
check "wrong password: 401" "$($C -u admin:wrong -o /dev/null -w '%{http_code}' $URL/admin/x)" "401"
t1=$(now_ms)
code=$($C -u admin:gw-secret -o /dev/null -w '%{http_code}' $URL/admin/x)
t2=$(now_ms)
check "right password (SHA-256-crypt, 5000 rounds, on the M4 in $((t2 - t1)) ms incl. the PLC's 150): 200" "$code" "200"
check "the PLC never saw Authorization" "$(dev_report | awk '/^plc/ {print $3}')" "auth=0"

# ---- issue 15: the PLC's UI under /sensor/ (rewrite=/) with one response header
h=$($C -D - $URL/sensor/status | tr -d '\r')
check "/sensor/status reaches the PLC as /status" "$(echo "$h" | awk '/^plc ok/ {print $4}')" "/status"
check "... with the header rule's Strict-Transport-Security" \
    "$(echo "$h" | awk -F': ' '/^Strict-Transport-Security:/ {print $2}')" "max-age=31536000"
check "the PLC's redirect to /home comes back as /sensor/home" \
    "$($C -D - -o /dev/null $URL/sensor/login | tr -d '\r' | awk -F': ' '/^Location:/ {print $2}')" "/sensor/home"

# ---- share=on: three viewers of the one-client camera
view() { # SECONDS DELAY: count whole MJPEG parts a viewer gets
    python3 - "$PORT" "$1" "$2" <<'PY'
import re, socket, sys, time
port, secs, delay = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
time.sleep(delay)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /cam/live HTTP/1.1\r\nHost: gw\r\n\r\n")
buf, end = b"", time.time() + secs
while time.time() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d:
        break
    buf += d
s.close()
head, _, body = buf.partition(b"\r\n\r\n")
out, i = b"", 0
while True:  # de-chunk what came whole
    j = body.find(b"\r\n", i)
    if j < 0:
        break
    size = int(body[i:j].split(b";")[0] or b"0", 16)
    if size == 0 or j + 2 + size > len(body):
        break
    out += body[j + 2:j + 2 + size]
    i = j + 2 + size + 2
whole = bad = 0
first_ok = out.startswith(b"--frame\r\n")
for part in out.split(b"--frame\r\n")[1:-1]:
    h, _, data = part.partition(b"\r\n\r\n")
    m = re.search(rb"Content-Length: (\d+)", h)
    n = int(m.group(1)) if m else -1
    jpg = data[:n]
    if n > 0 and jpg[:2] == b"\xff\xd8" and jpg[-2:] == b"\xff\xd9" and data[n:] == b"\r\n":
        whole += 1
    else:
        bad += 1
print("status=%s whole=%d bad=%d first=%s" % (head.split(b" ")[1].decode() if b" " in head else "-",
                                               whole, bad, "ok" if first_ok else "cut"))
PY
}
rm -f $B/qemu-plus-v.*
view 4 0 >$B/qemu-plus-v.1 &
v1=$!
view 3.5 0.3 >$B/qemu-plus-v.2 &
v2=$!
view 2.5 1.2 >$B/qemu-plus-v.3 &
v3=$!
wait $v1 $v2 $v3
r1=$(cat $B/qemu-plus-v.1) r2=$(cat $B/qemu-plus-v.2) r3=$(cat $B/qemu-plus-v.3)
echo "# viewers: [$r1] [$r2] [$r3]"
all=$(printf '%s\n%s\n%s\n' "$r1" "$r2" "$r3" | awk '{split($2, w, "="); if ($1 == "status=200" && w[2] >= 20 && $3 == "bad=0") n++} END {print n + 0}')
check "3 viewers, each >= 20 whole JPEG parts (FF D8 .. FF D9, length right), none broken" "$all" "3"
check "the late viewer's first part is whole" "$(echo "$r3" | awk '{print $4}')" "first=ok"
check "the camera (one client only) served one connection" "$(dev_report | awk '/^cam/ {print $2}')" "conns=1"
sleep 1
check "the camera's connection closed after the last viewer left" "$(dev_report | awk '/^cam/ {print $3}')" "open=0"
if grep -q FATAL $UART; then nok "no fault on the UART"; else ok "no fault on the UART"; fi
if [ $fails != 0 ]; then
    echo "# UART log kept in $UART:"
    tail -30 $UART | sed 's/^/# /'
fi
echo "# $((n - fails)) passed, $fails failed (total $(($(now_ms) - t0)) ms)"
[ $fails = 0 ]

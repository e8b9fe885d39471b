#!/bin/sh
# boards/mps2-an386/qemu.sh ELF PORT TLS_PORT -- `make qemu`: the devices
# gateway.conf names, then the firmware under QEMU.
#
# Starts the devices gateway.conf names (devices.sh: build/devsim on the
# host's 127.0.0.1:9101-9104, reached from the guest as 10.0.2.2), prints
# curl lines to try, boots qemu-system-arm with the
# UART on the terminal (Ctrl-A X quits), and stops the devices when it exits.
set -u
cd "$(dirname "$0")/../.." || exit 1
[ $# = 3 ] || { echo "usage: sh boards/mps2-an386/qemu.sh ELF PORT TLS_PORT" >&2; exit 2; }
ELF=$1 PORT=$2 TPORT=$3
CRT=$(dirname "$ELF")/tls/gw.crt

pids=
cleanup() {
    [ -n "$pids" ] && kill $pids 2>/dev/null && wait $pids 2>/dev/null
    pids=
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

. boards/mps2-an386/devices.sh
gw_devices build/devsim /dev/null
sleep 0.3 2>/dev/null || sleep 1
for pid in $pids; do
    kill -0 "$pid" 2>/dev/null || { echo "qemu: a devsim did not start (ports 9101-9104 busy?)" >&2; exit 1; }
done

cat <<EOT
Devices on 127.0.0.1:9101-9104 (10.0.2.2 from the guest).  Once the UART shows the
gateway's address, try from another terminal:
  for i in 1 2 3 4; do curl -s http://127.0.0.1:$PORT/; done    # dev1, dev1, dev2, dev1: weights 3:1
  for i in 1 2; do curl -si http://127.0.0.1:$PORT/sensor | grep -i ^cache-status; done   # miss, then hit
  curl -s -o /dev/null -w '%{http_code} %{size_download} bytes\n' http://127.0.0.1:$PORT/big   # 200 1048576 bytes
  curl -s --cacert $CRT https://127.0.0.1:$TPORT/      # TLS terminated on the emulated Cortex-M4
Ctrl-A X quits QEMU; the devices stop with it.

EOT
qemu-system-arm -M mps2-an386 -nographic -kernel "$ELF" \
    -nic user,model=lan9118,hostfwd=tcp:127.0.0.1:$PORT-:80,hostfwd=tcp:127.0.0.1:$TPORT-:443

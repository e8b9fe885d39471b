#!/bin/sh
# tests/lwip-host/run.sh -- rproxy over lwIP (port/lwip.c) on Linux, end to end.
#
# tests/lwip-host/netns.sh creates a network namespace of its own with a TAP
# device in it: the kernel side of the TAP (192.168.77.1) runs the device
# servers (build/devsim) and curl, the lwIP side (192.168.77.2) is
# build/rproxy-lwip (ASan+UBSan).  Nothing leaves the namespace, which is
# deleted at the end.  Needs root, curl and python3.  The core scenarios
# (tests/lwip-host/scenarios.sh) run over it; then tests/lwip-host/faults.sh
# (sourced) runs the port's fault paths against a second gateway: link/netif
# down, lost address, a stalled reader, tiny segments, exhausted
# pcbs/pbufs/heap.  Prints TAP lines; exit 0 when every test passed.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}
OUT=$B/lwip-host-run

[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (ip netns, TAP)"; exit 0; }
command -v curl >/dev/null || { echo "1..0 # SKIP curl missing"; exit 0; }
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 0; }
sh scripts/fetch-deps.sh lwip || exit 1
make -s -f tests/lwip-host/lwip-host.mk BUILD=$B >&2 && make -s BUILD=$B $B/devsim >&2 || exit 1
. tests/lwip-host/netns.sh
. tests/lwip-host/scenarios.sh

{ echo "listen 80"; scenario_conf; } >$OUT/rproxy.conf
ip netns exec $NS $B/rproxy-lwip -t $TAPDEV -i $GWIP -g $HOSTIP -c $OUT/rproxy.conf >$OUT/stdout 2>$OUT/rproxy.log &
rpid=$!
pids="$pids $rpid"
gateway_up $OUT && ok "rproxy-lwip up on the TAP" || nok "rproxy-lwip up on the TAP"
sleep 0.3

scenarios "raw NO_SYS=1"

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

# tests/lwip-host/netns.sh -- sourced by tests/lwip-host/run.sh and
# tests/lwip-rtos/run.sh: a network namespace of the test's own with a TAP
# device in it, device servers on the kernel side of the TAP, TAP helpers.
#
# The kernel side of the TAP ($HOSTIP) runs the device servers
# (build/devsim) and curl; the lwIP side ($GWIP) is the gateway under test.
# Nothing leaves the namespace, which is deleted at exit (trap).  The caller
# has cd'd to the repository and built $B/devsim; it sets OUT (a fresh log
# directory) first.  Gives: ok, nok, check, inns, devsim NAME..., $pids
# (killed at exit), $pid_NAME for each device, n and fails (TAP counters).
B=${BUILD:-build}
NS=rplwip$$
TAPDEV=rptap0
HOSTIP=192.168.77.1
GWIP=192.168.77.2
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1 (got '$2', want '$3')"; fi; }
inns() { ip netns exec $NS "$@"; }

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

# Client helpers.  bg_get NAME URL [curl options]: a download in the
# background into $BG/NAME, its "code size seconds" then "rc=N" (curl's
# exit) in $BG/NAME.res, its pid in $bg_NAME; res NAME: "code size"; took
# NAME: its seconds; get_code URL [MAX]: the status (000: no answer); fsha
# FILE: its sha256.
BG=$OUT
fsha() { sha256sum <$1 | cut -c1-64; }
res() { head -1 $BG/$1.res | cut -d' ' -f1,2; }
took() { head -1 $BG/$1.res | cut -d' ' -f3 | cut -c1-4; }
bg_get() {
    _n=$1 _u=$2
    shift 2
    (inns curl -s --max-time 20 "$@" -o $BG/$_n -w '%{http_code} %{size_download} %{time_total}\n' $_u \
        >$BG/$_n.res; echo "rc=$?" >>$BG/$_n.res) &
    eval "bg_$_n=$!"
}
get_code() { inns curl -s --max-time ${2:-5} -o /dev/null -w '%{http_code}' "$1"; }

# gateway_up LOGDIR: wait for "ready" on LOGDIR/stdout
gateway_up() {
    i=0
    while ! grep -q ready $1/stdout 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    grep -q ready $1/stdout
}

# tests/lwip-host/faults.sh -- the lwIP port's fault paths (issue 6), sourced
# by tests/lwip-host/run.sh once its own gateway has exited: same namespace,
# TAP, devices and TAP helpers (ok, nok, check, inns, $pids).
#
# A second gateway (build/rproxy-lwip) runs with a control FIFO (-C, see
# tests/lwip-host/main.c) through which the test takes the link or the netif
# down, drops the address, pauses rproxy (lwIP keeps running, rproxy reads
# nothing) or takes every free pool pbuf / TCP pcb / segment / heap byte, and
# reads lwIP's memp and heap use.  Short timeouts, so stalled connections
# fail within the test.  Kernel socket buffers in the namespace are small
# (run.sh), so a stalled transfer really stalls inside lwIP.
#
#   cache hits (rp_port_sendv), Date (rp_port_time)
#   link down 1.5 s mid-download: resumes, byte-exact
#   link down 5 s: new connections unanswered, stalled ones timed out and
#     counted, traffic back after link up
#   netif down/up mid-download; address dropped (lwIP aborts every pcb)
#   rproxy reading nothing: windows close, pool use bounded and stable;
#     tiny segments (40-50 bytes) from a device and from a client are
#     packed, not one pool pbuf each, and arrive byte-exact
#   TCP pcbs exhausted: SYN unanswered and counted, device connect -> 503,
#     recovery; pool pbufs exhausted mid-download; heap + segments
#     exhausted mid-download (tcp_write ERR_MEM)
#   afterwards memp/heap use back to the baseline, no orphaned pcb, clean
#   exit under ASan/UBSan
FOUT=$OUT/faults
CTL=$FOUT/ctl
mkdir -p $FOUT && mkfifo $CTL
cid=0
reply=
ctl() { # COMMAND...: to the gateway; its answer line in $reply
    cid=$((cid + 1))
    echo "$cid $*" >$CTL
    i=0
    while ! reply=$(grep -m1 "^ctl $cid " $FOUT/stdout) && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
}
val() { # KEY [FIELD]: from $reply (FIELD 1..3 of used/max/err, default 1)
    echo "$reply" | tr ' ' '\n' | sed -n "s/^$1=//p" | cut -d/ -f${2:-1}
}
stats() { ctl stats; }
BG=$FOUT # bg_get, res, took (tests/lwip-host/netns.sh)
waitfor() { # FILE PATTERN [TENTHS]
    i=0
    while ! grep -q "$2" $1 2>/dev/null && [ $i -lt ${3:-50} ]; do sleep 0.1; i=$((i + 1)); done
}

ip netns exec $NS $B/devsim -p 9104 -a $HOSTIP -n cached -s 200000 \
    -H 'Cache-Control: public, max-age=3600' 2>>$OUT/devsim.log &
pids="$pids $!"
ip netns exec $NS python3 tests/lwip-host/tinyseg.py device $HOSTIP 9105 >$FOUT/tinyseg.log 2>&1 &
pids="$pids $!"
cat >$FOUT/rproxy.conf <<CONF
listen 80
pool main
device main $HOSTIP:9101
pool big
device big $HOSTIP:9103
pool spare
device spare $HOSTIP:9101
pool tiny
device tiny $HOSTIP:9105
pool cached
device cached $HOSTIP:9104
route path=/big pool=big
route path=/spare pool=spare
route path=/drip pool=tiny
route path=/sum pool=tiny
route path=/cached pool=cached cache=on
route pool=main
timeout connect=1000 device=4000 client_idle=4000 device_idle=1500
CONF
ip netns exec $NS $B/rproxy-lwip -t $TAPDEV -i $GWIP -g $HOSTIP -c $FOUT/rproxy.conf -C $CTL \
    >$FOUT/stdout 2>$FOUT/rproxy.log &
fpid=$!
pids="$pids $fpid"
waitfor $FOUT/stdout ready
waitfor $FOUT/tinyseg.log listening
stats
base=$reply
if grep -q ready $FOUT/stdout && [ -n "$reply" ]; then ok "fault gateway up (control FIFO)"; else nok "fault gateway up (control FIFO)"; fi
bigsha=$(inns curl -s http://$HOSTIP:9103/big | fsha /dev/stdin)
G=http://$GWIP

# ---- rp_port_sendv and rp_port_time over lwIP
csha=$(inns curl -s http://$HOSTIP:9104/c | fsha /dev/stdin)
inns curl -s -o /dev/null $G/cached/c
h1=$(inns curl -s -D - -o $FOUT/c1 $G/cached/c | tr -d '\r')
case $h1 in *"Cache-Status: rproxy; hit"*) hit=hit ;; *) hit="no hit" ;; esac
check "cache hit (gather send from the arena) byte-exact: 200000 bytes" "$hit $(fsha $FOUT/c1)" "hit $csha"
bg_get c2 $G/cached/c --limit-rate 300k
wait $bg_c2
check "cache hit to a slow client (sends end inside pieces) byte-exact" "$(fsha $FOUT/c2)" "$csha"
d=$(echo "$h1" | sed -n 's/^Date: //p')
check "Date added from rp_port_time (host clock overrides the weak 0)" \
    "$(echo "$d" | cut -d' ' -f2-4)" "$(LC_ALL=C date -u '+%d %b %Y')"

# ---- link down 1.5 s in the middle of a download
bg_get l1 $G/big --limit-rate 400k
sleep 0.8
ctl link down
sleep 1.5
stats
drops=$(val cable_drops)
ctl link up
wait $bg_l1
check "link down 1.5 s mid-download: resumes, 1 MiB byte-exact ($drops frames lost, $(took l1) s)" \
    "$(res l1) $(fsha $FOUT/l1) $([ "$drops" -gt 0 ] && echo lost)" \
    "200 1048576 $bigsha lost"

# ---- link down 5 s: longer than client_idle/device (4 s)
stats
t0=$(val timeouts)
bg_get l2 $G/big --limit-rate 400k
sleep 0.8
ctl link down
check "link down: a new connection gets no answer" "$(get_code $G/hello 1)" "000"
sleep 4.5
stats
check "link down 5 s: stalled connections timed out, counted, their slots freed" \
    "$([ "$(val timeouts)" -gt "$t0" ] && echo counted) socks=$(val socks)" "counted socks=1"
ctl link up
check "link up: traffic resumes" "$(get_code $G/hello 5)" "200"
wait $bg_l2
# curl: 0 = it completed, 28 = it hung until --max-time; else cut short (18, 56)
case $(tail -1 $FOUT/l2.res) in
rc=0 | rc=28) nok "link down 5 s: the stalled download is cut short ($(res l2), $(tail -1 $FOUT/l2.res))" ;;
*) ok "link down 5 s: the stalled download is cut short ($(res l2), curl $(tail -1 $FOUT/l2.res))" ;;
esac

# ---- netif down 1.5 s (lwIP drops input, flushes ARP)
bg_get n1 $G/big --limit-rate 400k
sleep 0.8
ctl netif down
sleep 1.5
ctl netif up
wait $bg_n1
check "netif down 1.5 s mid-download: resumes after ARP, byte-exact ($(took n1) s)" \
    "$(res n1) $(fsha $FOUT/n1)" "200 1048576 $bigsha"

# ---- the address goes (a lost lease): lwIP aborts every connection on it
stats
r0=$(val resets)
bg_get a1 $G/big --limit-rate 400k
sleep 0.8
ctl addr drop
sleep 0.3
stats
check "address dropped mid-download: its pcbs aborted (tcp_err), counted, slots freed" \
    "$([ $(($(val resets) - r0)) -ge 2 ] && echo counted) socks=$(val socks)" "counted socks=1"
ctl addr restore
check "address restored: traffic resumes" "$(get_code $G/hello 5)" "200"
wait $bg_a1
case $(tail -1 $FOUT/a1.res) in
rc=0 | rc=28) nok "the aborted download is cut short ($(res a1), $(tail -1 $FOUT/a1.res))" ;;
*) ok "the aborted download is cut short ($(res a1), curl $(tail -1 $FOUT/a1.res))" ;;
esac

# ---- rproxy reads nothing: a download and an upload stall in lwIP's windows
head -c 1048576 /dev/urandom >$FOUT/up.bin
bg_get r1 $G/big --limit-rate 400k
bg_get u1 $G/upload --limit-rate 400k --data-binary @$FOUT/up.bin
sleep 0.6
ctl pause
sleep 0.7
stats
p1=$(val pbuf_pool) z1=$(val zero_wnd)
sleep 0.5
stats
check "rproxy paused: both windows closed, pool use stable and bounded by them" \
    "closed=$([ "$z1" -ge 2 ] && echo yes) stable=$([ "$p1" = "$(val pbuf_pool)" ] && echo yes) bounded=$([ "$p1" -le 36 ] && echo yes) (pool=$p1)" \
    "closed=yes stable=yes bounded=yes (pool=$p1)"
ctl resume
wait $bg_r1 $bg_u1
check "resumed: download byte-exact, upload answered" \
    "$(fsha $FOUT/r1) $(res u1 | cut -d' ' -f1)" "$bigsha 200"

# ---- tiny segments while rproxy reads nothing: packed, not a pool pbuf each
dsha=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes((7*i+3)%256 for i in range(20000))).hexdigest())')
bg_get r2 $G/drip/20000
waitfor $FOUT/tinyseg.log "drip 20000"
ctl pause
sleep 1.5 # the device waits 0.5 s, then 500 segments of 40 bytes
stats
held=$(val held) pool=$(val pbuf_pool)
ctl resume
wait $bg_r2
check "device sends 40-byte segments, rproxy paused: >= 15000 bytes held in <= 24 pool pbufs (held=$held pool=$pool)" \
    "$([ "$held" -ge 15000 ] && [ "$pool" -le 24 ] && echo yes)" "yes"
check "packed segments reach the client byte-exact" "$(fsha $FOUT/r2)" "$dsha"
ip netns exec $NS python3 tests/lwip-host/tinyseg.py post $GWIP 80 200 50 >$FOUT/r3.log 2>&1 &
r3=$!
waitfor $FOUT/r3.log head
ctl pause
waitfor $FOUT/r3.log sent
sleep 0.2
stats
held=$(val held) pool=$(val pbuf_pool)
ctl resume
wait $r3
check "client sends 50-byte segments, rproxy paused: >= 8000 bytes held in <= 12 pool pbufs (held=$held pool=$pool)" \
    "$([ "$held" -ge 8000 ] && [ "$pool" -le 12 ] && echo yes)" "yes"
check "packed upload reaches the device byte-exact (sha256 from the device)" "$(tail -1 $FOUT/r3.log)" "200 match"

# ---- TCP pcbs exhausted
stats
a0=$(val refused) e0=$(val tcp_pcb 3) s0=$(val r5xx)
ctl hog pcb
check "no pcb left: a new connection gets no answer" "$(get_code $G/hello 1.5)" "000"
stats
check "no pcb left: the dropped SYNs are counted (port accept_refused, memp err)" \
    "$([ "$(val refused)" -gt "$a0" ] && [ "$(val tcp_pcb 3)" -gt "$e0" ] && echo counted)" "counted"
ctl free pcb 1
check "one pcb: the client gets it, the device connect cannot: 503" "$(get_code $G/spare/x)" "503"
ctl free pcb
check "pcbs back: 200" "$(get_code $G/spare/x)" "200"

# ---- pool pbufs exhausted mid-download
stats
nb0=$(val nopbuf)
bg_get h4 $G/big --limit-rate 400k
sleep 0.6
ctl hog pool
check "pool empty: a new connection gets no answer" "$(get_code $G/hello 0.5)" "000"
stats
nb1=$(val nopbuf)
ctl free pool
wait $bg_h4
check "pool empty 0.5 s mid-download ($((nb1 - nb0)) frames dropped): resumes, byte-exact ($(took h4) s)" \
    "$([ "$nb1" -gt "$nb0" ] && echo dropped) $(res h4) $(fsha $FOUT/h4)" \
    "dropped 200 1048576 $bigsha"

# ---- heap and TCP segments exhausted mid-download: tcp_write says ERR_MEM
stats
w0=$(val write_mem)
bg_get h5 $G/big --limit-rate 400k
sleep 0.6
ctl hog seg
ctl hog heap
sleep 0.5
stats
w1=$(val write_mem)
ctl free heap
ctl free seg
wait $bg_h5
check "heap and segments empty 0.5 s mid-download: write_mem counted, resumes, byte-exact ($(took h5) s)" \
    "$([ "$w1" -gt "$w0" ] && echo counted) $(res h5) $(fsha $FOUT/h5)" \
    "counted 200 1048576 $bigsha"
check "after exhaustion: 200" "$(get_code $G/hello)" "200"

# ---- nothing leaked: back to the baseline once pooled connections expired
i=0
while stats && [ "$(val socks) $(val tcp_live)" != "1 0" ] && [ $i -lt 50 ]; do
    sleep 0.2
    i=$((i + 1))
done
now=$reply got= want=
for k in pbuf_pool pbuf tcp_seg heap; do
    reply=$base
    want="$want $k=$(val $k)"
    reply=$now
    got="$got $k=$(val $k)"
done
check "memp and heap use back to the baseline:$want" "$got" "$want"
check "no connection left: slots, live pcbs, orphans" \
    "socks=$(val socks) tcp_live=$(val tcp_live) orphans=$(val orphans)" "socks=1 tcp_live=0 orphans=0"
echo "# fault gateway: $(echo "$reply" | cut -d' ' -f4-)"
kill $fpid
wait $fpid
check "fault gateway: clean exit under ASan/UBSan" "$?" "0"

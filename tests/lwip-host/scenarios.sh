# tests/lwip-host/scenarios.sh -- the core scenarios over a gateway on the
# TAP, whatever its port: sourced by tests/lwip-host/run.sh (port/lwip.c,
# NO_SYS=1) and tests/lwip-rtos/run.sh (port/sockets.c and port/lwip.c under
# the RTOS), after tests/lwip-host/netns.sh.  The gateway at $GWIP runs the
# configuration scenario_conf prints; $1 names it in the test lines.
# Routing, smooth WRR, keep-alive, a 1 MB body byte-exact, a slow client
# (backpressure), 16 concurrent clients, a chunked upload, pipelining, a bad
# request (400), a dead device (502), failover; dev2 is restarted at the end.

scenario_conf() {
    cat <<CONF
pool main
device main $HOSTIP:9101 weight=3
device main $HOSTIP:9102 weight=1
pool big
device big $HOSTIP:9103
pool dead
device dead $HOSTIP:9199
route path=/big pool=big
route path=/dead pool=dead
route pool=main
timeout connect=1000
CONF
}

scenarios() {
    sc=$1
    C="inns curl -s --max-time 10"
    body=$($C http://$GWIP/hello)
    case $body in "hello from dev"*) ok "$sc: GET proxied ($body)" ;; *) nok "$sc: GET proxied (got '$body')" ;; esac

    # smooth WRR 3:1 over 8 requests, each on its own connection
    for i in 1 2 3 4 5 6 7 8; do $C -D - -o /dev/null http://$GWIP/w$i; done |
        tr -d '\r' | awk '/^X-Device:/ {c[$2]++} END {printf "dev1=%d dev2=%d", c["dev1"], c["dev2"]}' >$OUT/wrr
    check "$sc: balanced by weight 3:1" "$(cat $OUT/wrr)" "dev1=6 dev2=2"

    # keep-alive: 20 requests in one curl, one connection
    urls=; for i in $(seq 1 20); do urls="$urls -o /dev/null http://$GWIP/k$i"; done
    conns=$($C -w '%{http_code}:%{num_connects}\n' $urls | sort | uniq -c | tr -s ' ' | tr '\n' ';')
    check "$sc: keep-alive: 20 requests on one client connection" "$conns" " 19 200:0; 1 200:1;"

    # 1 MB byte-exact against the device itself
    direct=$($C http://$HOSTIP:9103/big | sha256sum)
    proxied=$($C http://$GWIP/big | sha256sum)
    size=$($C -o /dev/null -w '%{size_download}' http://$GWIP/big)
    check "$sc: 1 MB download: size" "$size" "1048576"
    check "$sc: 1 MB download: byte-exact (sha256)" "$proxied" "$direct"

    # backpressure: a client reading at 400 KB/s, the bytes stay exact
    slow=$($C --max-time 20 --limit-rate 400k http://$GWIP/big | sha256sum)
    check "$sc: slow client (400 KB/s): 1 MB byte-exact through the TCP window" "$slow" "$direct"

    # 16 concurrent clients
    : >$OUT/conc
    for i in $(seq 1 16); do ($C -o /dev/null -w '%{http_code}\n' http://$GWIP/c$i >>$OUT/conc) & done
    wait_n=0; while [ $(wc -l <$OUT/conc) -lt 16 ] && [ $wait_n -lt 100 ]; do sleep 0.1; wait_n=$((wait_n + 1)); done
    check "$sc: 16 concurrent clients all 200" "$(sort $OUT/conc | uniq -c | tr -s ' ')" " 16 200"

    # a chunked upload (200 KB): the device decodes it and answers
    head -c 200000 /dev/urandom >$OUT/up.bin
    code=$($C -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @$OUT/up.bin http://$GWIP/up)
    check "$sc: chunked request body (200 KB) forwarded, answered" "$code" "200"

    # pipelining: three requests in one write, three answers in order
    pipe=$(inns python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(b"".join(b"GET /p%d HTTP/1.1\r\nHost: gw\r\n%s\r\n" % (i, b"Connection: close\r\n" if i == 3 else b"") for i in (1, 2, 3)))
d = b""
while True:
    c = s.recv(65536)
    if not c: break
    d += c
print(d.count(b"HTTP/1.1 200 "), d.count(b"hello from dev"))' $GWIP 2>&1)
    check "$sc: pipelining: 3 requests in one write, 3 responses" "$pipe" "3 3"

    # errors: a malformed request gets 400; a device nobody listens on, 502
    bad=$(inns python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())' $GWIP 2>&1)
    check "$sc: malformed request: 400" "$bad" "HTTP/1.1 400 Bad Request"
    check "$sc: dead device: 502" "$($C -o /dev/null -w '%{http_code}' http://$GWIP/dead/x)" "502"

    # failover: stop dev2, every request still answered by dev1
    kill $pid_dev2 2>/dev/null; sleep 0.2
    : >$OUT/fo-err
    for i in 1 2 3 4 5 6 7 8; do
        t0=$(date +%s%3N)
        $C -D - -o /dev/null http://$GWIP/f$i || echo "f$i: curl exit $? after $(($(date +%s%3N) - t0)) ms" >>$OUT/fo-err
    done | tr -d '\r' |
        awk '/^HTTP/ {s[$2]++} /^X-Device:/ {c[$2]++} END {printf "200=%d dev1=%d dev2=%d", s[200], c["dev1"], c["dev2"]}' >$OUT/fo
    check "$sc: failover: dev2 stopped, all 8 answered by dev1" "$(cat $OUT/fo)" "200=8 dev1=8 dev2=0"
    # (a request that failed: which, how -- seen once as a connection rproxy never accepted)
    [ -s $OUT/fo-err ] && sed 's/^/# /' $OUT/fo-err
    wait $pid_dev2 2>/dev/null
    devsim 9102 dev2
}

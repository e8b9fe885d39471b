"""t_reload.py -- configuration reload on SIGHUP (issue 17 items 1-2): the host daemon re-reads
its -c FILE; a good file is applied between requests (new requests and the next request on an
open keep-alive connection use it at once, exchanges in flight finish on the configuration
they started with), a bad one is logged as FILE:LINE: and changes nothing.

What the daemon logs (every line "rproxy: reload: ..."):
    FILE applied: N listeners, N pools, N devices, N routes; N connections finish on the
        previous configuration
    FILE:LINE: MESSAGE; the running configuration stays
    waiting for N connections on the configuration before the last reload
    refused: N connections still run on the configuration before the last reload; send
        SIGHUP again when they finish
and the status JSON's "reload": {"generation", "reloads", "failures", "draining"}.

Covered: weights changed under a 50 MB download and a WebSocket (both byte-exact); 50 SIGHUPs
under continuous keep-alive and new-connection load (no failed request, no refused
connection); a bad file, a taken listen port, more devices than the build holds (each:
logged, nothing changed, then a good file applies); listeners added/removed/kept (kept: the
same socket); a device's runtime admin state and counters carried over; a removed device's
request in flight finishing; a second SIGHUP while a connection of the configuration before
the last reload still runs (waits, then applies; or refuses after 10 s).
"""

import hashlib
import json
import random
import re
import signal
import socket
import threading
import time

from checks import check, dispatch, eq, fail, pattern, pattern_block, pattern_sha, \
    req_bytes, run_cli, short, test
from devserver import echo, response
from harness import Closed, free_port
from t_balance import one, status_json, wait_until


TIMEOUTS = "timeout client_header=5000 client_idle=10000 connect=2000 device=5000 device_idle=10000"
STATUS = "status path=/status"

APPLIED_RE = re.compile(r"^rproxy: reload: (.+) applied: (\d+) listeners?, (\d+) pools?, "
                        r"(\d+) devices?, (\d+) routes?; (\d+) connection(?:s|\(s\))? finish on the "
                        r"previous configuration$")
STAYS_RE = re.compile(r"^rproxy: reload: (.+?):(\d+): (.+); the running configuration stays$")
WAITING_RE = re.compile(r"^rproxy: reload: waiting for (\d+) connection(?:s|\(s\))? on the configuration "
                        r"before the last reload$")
REFUSED_RE = re.compile(r"^rproxy: reload: refused: (\d+) connection(?:s|\(s\))? still run on the "
                        r"configuration before the last reload; send SIGHUP again when they "
                        r"finish$")


# ==== helpers ====

def conf(listens, lines, timeouts=TIMEOUTS):
    """A config: one listen line per port in listens, then lines, a timeout and the status
    line.  Line numbers: listen lines are 1..len(listens), lines[i] is len(listens)+1+i."""
    out = ["listen 127.0.0.1:%d" % p for p in listens] + list(lines) + [timeouts, STATUS]
    return "\n".join(out) + "\n"


def line_no(text, needle):
    """1-based number of the first line of text containing needle."""
    for i, ln in enumerate(text.split("\n")):
        if needle in ln:
            return i + 1
    fail("test bug: %r not in the config" % needle)


def reload_lines(px):
    return [ln for ln in px.stderr().splitlines() if ln.startswith("rproxy: reload: ")]


def outcomes(px):
    """The reload lines that end a reload: applied, stays (bad file) or refused."""
    return [ln for ln in reload_lines(px)
            if APPLIED_RE.match(ln) or STAYS_RE.match(ln) or REFUSED_RE.match(ln)]


def write(px, text):
    with open(px.conf_path, "w") as f:
        f.write(text)


def hup(px, text=None, timeout=5.0):
    """Write text (when given) to px's config file, send SIGHUP and return the line that
    ends this reload (applied / stays / refused); fails when none comes within timeout."""
    n = len(outcomes(px))
    if text is not None:
        write(px, text)
    check(px.alive(), "rproxy is running before the SIGHUP")
    px.signal(signal.SIGHUP)
    got = wait_until(lambda: len(outcomes(px)) > n, timeout, step=0.02)
    if not got:
        fail("no reload outcome logged within %.1f s of SIGHUP" % timeout,
             "rproxy: reload: FILE applied: ... | FILE:LINE: ...; the running configuration stays",
             px.stderr_tail(8))
    return outcomes(px)[n]


def applied(px, text=None, timeout=5.0):
    """hup() that must apply; returns the APPLIED_RE match."""
    ln = hup(px, text, timeout)
    m = APPLIED_RE.match(ln)
    if not m:
        fail("the reload was not applied", "rproxy: reload: %s applied: ..." % px.conf_path, ln)
    eq(m.group(1), px.conf_path, "the file named in the applied line")
    return m


def stays(px, text, line, timeout=5.0):
    """hup() that must be refused as FILE:LINE: MESSAGE; returns MESSAGE."""
    ln = hup(px, text, timeout)
    m = STAYS_RE.match(ln)
    if not m:
        fail("the bad file was not reported as FILE:LINE: ...; the running configuration stays",
             "rproxy: reload: %s:%d: ...; the running configuration stays" % (px.conf_path, line),
             ln)
    eq((m.group(1), int(m.group(2))), (px.conf_path, line), "FILE:LINE in the reload error")
    return m.group(3)


def reload_state(ctx, port=None):
    js = status_json(ctx, port=port)
    check(isinstance(js.get("reload"), dict), "status JSON has a \"reload\" object",
          '"reload": {...}', short(json.dumps(js).encode(), 300))
    r = js["reload"]
    for k in ("generation", "reloads", "failures", "draining"):
        check(isinstance(r.get(k), int), "status reload.%s is a number" % k, "a number", r)
    return r


def expect_state(ctx, what, **want):
    r = reload_state(ctx)
    got = {k: r[k] for k in want}
    eq(got, want, "status reload %s" % what)
    return r


def wait_draining(ctx, n, timeout=3.0):
    r = wait_until(lambda: reload_state(ctx)["draining"] == n and reload_state(ctx), timeout)
    if not r:
        fail("status reload.draining did not reach %d" % n, n, reload_state(ctx)["draining"])
    return r


PROM = ("rproxy_config_generation", "rproxy_config_reloads_total",
        "rproxy_config_reload_failures_total", "rproxy_config_draining_connections")


def prom_reload(ctx):
    """The reload samples of the Prometheus page, in PROM's order (None: missing)."""
    text = one(ctx, "GET", "/status?format=prometheus").body.decode("utf-8", "replace")
    got = {}
    for ln in text.splitlines():
        w = ln.split()
        if len(w) == 2 and w[0] in PROM:
            got[w[0]] = int(float(w[1]))
    return [got.get(k) for k in PROM]


def served_by(ctx, n, path="/r", port=None):
    got = []
    for i in range(n):
        r = one(ctx, "GET", "%s%d" % (path, i), port=port)
        eq(r.status, 200, "GET %s%d status" % (path, i))
        got.append(r.get("X-Device"))
    return got


def dev_json(ctx, pool, addr):
    js = status_json(ctx)
    for p in js["pools"]:
        if p["name"] == pool:
            for d in p["devices"]:
                if d["addr"] == addr:
                    return d
    fail("device %s not in pool %s on the status page" % (addr, pool))


def connect_refused(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    finally:
        s.close()


def listen_inode(port):
    """The inode of the socket LISTENing on 127.0.0.1:port (from /proc/net/tcp), or None."""
    with open("/proc/net/tcp") as f:
        for ln in f.read().splitlines()[1:]:
            w = ln.split()
            local, st, inode = w[1], w[3], w[9]
            if st == "0A" and int(local.split(":")[1], 16) == port:
                return inode
    return None


# What one exchange in flight counts in reload.draining and the log lines: its client
# connection, and (as the core counts today) its device connection too.
ONE_EXCHANGE = (1, 2)

BIG = 50 << 20


def big_download(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
              b"X-Device: %s\r\nContent-Length: %d\r\n\r\n" % (conn.dev.name.encode(), BIG))
    blk = pattern_block()
    left, off = BIG, 0
    while left:
        k = min(65536, left, len(blk) - off)
        conn.send(blk[off:off + k])
        off = (off + k) % len(blk)
        left -= k
    return True


def ws_echo(conn, req):
    conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nX-Device: %s\r\n"
              b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
              % conn.dev.name.encode())
    while True:
        d = conn.recv_some(timeout=40)
        if not d:
            break
        conn.send(d)
    conn.close()
    return False


def ws_open(ctx, port=None):
    c = ctx.client(port=port, timeout=10)
    c.send(req_bytes("GET", "/ws", headers=[
        ("Connection", "Upgrade"), ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
    r = c.read_head()
    eq(r.status, 101, "WebSocket upgrade")
    return c, r.get("X-Device")


def ws_roundtrip(c, data, what):
    c.send(data)
    try:
        got = c.read_exact(len(data), timeout=10)
    except (Closed, socket.timeout) as e:
        fail("%s: the WebSocket did not echo %d bytes (%s)" % (what, len(data), e),
             len(data), len(c.buf))
    check(got == data, "%s: echoed byte-exact" % what, short(data, 60), short(got, 60))


def pool_lines(pool, devs, weights=None):
    out = ["pool %s" % pool]
    for i, d in enumerate(devs):
        w = weights[i] if weights else 1
        out.append("device %s %s weight=%d" % (pool, d.addr, w))
    return out


# =====================================================================
# 1. weights changed under a download and a WebSocket
# =====================================================================

@test("reload: weights 1:0 -> 0:1 while a 50 MB download and a WebSocket run: both finish "
      "byte-exact on the old configuration, new requests (and the next one on an open "
      "keep-alive connection) follow the new weights", serial=True, timeout=50)
def t_reload_weights(ctx):
    h = dispatch({"/big": big_download, "/ws": ws_echo})
    a = ctx.device(h, name="a", sndbuf=65536)
    b = ctx.device(h, name="b", sndbuf=65536)
    port = free_port()
    c1 = conf([port], pool_lines("p", [a, b], [1, 0]) + ["route pool=p"])
    c2 = conf([port], pool_lines("p", [a, b], [0, 1]) + ["route pool=p"])
    px = ctx.start(c1)
    expect_state(ctx, "at start", generation=1, reloads=0, failures=0, draining=0)
    eq(served_by(ctx, 4), ["a"] * 4, "weights 1:0: every request to a")

    # the download: read the head and 1 MiB, then stop reading (the device blocks)
    dl = ctx.client(rcvbuf=65536, timeout=20)
    dl.send(req_bytes("GET", "/big"))
    r = dl.read_head(timeout=10)
    eq((r.status, r.get("Content-Length"), r.get("X-Device")), (200, str(BIG), "a"),
       "download head (status, Content-Length, device)")
    hsh = hashlib.sha256()
    first = dl.read_exact(1 << 20, timeout=10)
    hsh.update(first)
    n = len(first)

    ws, dev = ws_open(ctx)
    eq(dev, "a", "the WebSocket went to a")
    ws_roundtrip(ws, b"before the reload", "WebSocket before the reload")

    ka = ctx.client()
    ka.send(req_bytes("GET", "/ka1"))
    eq(ka.read_response().get("X-Device"), "a", "keep-alive request before the reload")

    m = applied(px, c2)
    eq([int(x) for x in m.group(2, 3, 4, 5)], [1, 1, 2, 1],
       "applied line: listeners, pools, devices, routes")
    check(2 <= int(m.group(6)) <= 5, "applied line counts the download and the WebSocket "
          "(and their device connections; perhaps the idle keep-alive one) as finishing on the "
          "previous configuration", "2..5", int(m.group(6)))
    st = expect_state(ctx, "after the reload", generation=2, reloads=1, failures=0)
    check(2 <= st["draining"] <= 5, "status reload.draining counts the download and the "
          "WebSocket", "2..5", st["draining"])

    eq(served_by(ctx, 6), ["b"] * 6, "weights 0:1: every new request to b")
    ka.send(req_bytes("GET", "/ka2"))
    try:
        r = ka.read_response()
    except Closed as e:
        fail("the keep-alive connection opened before the reload was closed instead of "
             "answering its next request", "a response", short(e.got))
    eq((r.status, r.get("X-Device")), (200, "b"),
       "next request on the keep-alive connection opened before the reload")
    ka.close()

    ws_roundtrip(ws, b"after the reload", "WebSocket after the reload")
    ws_roundtrip(ws, pattern(200000), "200 kB through the WebSocket after the reload")

    dl.sock.settimeout(20)
    hsh.update(dl.buf)
    n += len(dl.buf)
    dl.buf = b""
    while n < BIG:
        try:
            d = dl.sock.recv(1 << 20)
        except socket.timeout:
            break
        if not d:
            break
        n += len(d)
        hsh.update(d)
    eq(n, BIG, "download bytes received after the reload")
    eq(hsh.hexdigest(), pattern_sha(BIG), "sha256 of the 50 MB download")
    with a.lock:
        eq([q.target for q in a.requests].count("/big"), 1, "the download was requested once")
    with b.lock:
        check(all(q.target not in ("/big", "/ws") for q in b.requests),
              "nothing of the download or the WebSocket reached b", "none",
              [q.target for q in b.requests])

    ws.sock.shutdown(socket.SHUT_WR)
    check(ws.closed_within(5), "the WebSocket closes after the client's close")
    dl.close()
    wait_draining(ctx, 0)
    eq(a.errors + b.errors, [], "device errors")

    # 1:1 -> 1:3 counted at the devices
    applied(px, conf([port], pool_lines("p", [a, b], [1, 1]) + ["route pool=p"]))
    served_by(ctx, 4)
    applied(px, conf([port], pool_lines("p", [a, b], [1, 3]) + ["route pool=p"]))
    na, nb = len(a.requests), len(b.requests)
    served_by(ctx, 40)
    got = (len(a.requests) - na, len(b.requests) - nb)
    ctx.note("weights 1:3 after a reload from 1:1: 40 requests split %d:%d" % got)
    check(9 <= got[0] <= 12 and sum(got) == 40, "weights 1:3: 40 requests split about 10:30 "
          "at the devices", "a 9..12 of 40", got)


# =====================================================================
# 2. 50 SIGHUPs under load
# =====================================================================

@test("reload: 50 SIGHUPs under continuous keep-alive and new-connection load: no failed "
      "request, no refused connection, each reload followed at once; generation 51",
      serial=True, timeout=60)
def t_reload_loop(ctx):
    a, b = ctx.device(name="a"), ctx.device(name="b")
    port = free_port()
    variants = [conf([port], pool_lines("p", [a, b], [1, 0]) + ["route pool=p"]),
                conf([port], pool_lines("p", [a, b], [0, 1]) + ["route pool=p"])]
    want = ["a", "b"]
    px = ctx.start(variants[0])
    stop = threading.Event()
    lock = threading.Lock()
    stats = {"ok": 0, "failed": [], "refused": 0, "ka_ok": 0, "new_ok": 0}

    def failed(msg):
        with lock:
            stats["failed"].append(msg)

    def keepalive(k):
        c = None
        i = 0
        while not stop.is_set():
            try:
                if c is None:
                    c = ctx.client(timeout=5)
                c.send(req_bytes("GET", "/ka%d/%d" % (k, i)))
                r = c.read_response()
                if r.status != 200 or r.get("X-Device") not in ("a", "b"):
                    failed("keep-alive %d/%d: %d from %s" % (k, i, r.status, r.get("X-Device")))
                else:
                    with lock:
                        stats["ok"] += 1
                        stats["ka_ok"] += 1
            except ConnectionRefusedError:
                with lock:
                    stats["refused"] += 1
                c = None
            except (Closed, OSError) as e:
                failed("keep-alive %d request %d: %s: %s" % (k, i, type(e).__name__, e))
                c = None
            i += 1
            time.sleep(0.003)

    def newconn(k):
        i = 0
        while not stop.is_set():
            try:
                c = ctx.client(timeout=5)
                c.send(req_bytes("GET", "/new%d/%d" % (k, i), headers=[("Connection", "close")]))
                r = c.read_response()
                c.close()
                if r.status != 200 or r.get("X-Device") not in ("a", "b"):
                    failed("new connection %d/%d: %d from %s" % (k, i, r.status,
                                                                 r.get("X-Device")))
                else:
                    with lock:
                        stats["ok"] += 1
                        stats["new_ok"] += 1
            except ConnectionRefusedError:
                with lock:
                    stats["refused"] += 1
            except (Closed, OSError) as e:
                failed("new connection %d request %d: %s: %s" % (k, i, type(e).__name__, e))
            i += 1
            time.sleep(0.003)

    threads = [threading.Thread(target=keepalive, args=(k,), daemon=True) for k in range(2)]
    threads += [threading.Thread(target=newconn, args=(k,), daemon=True) for k in range(2)]
    for t in threads:
        t.start()
    wrong = []
    try:
        time.sleep(0.2)
        for i in range(1, 51):
            applied(px, variants[i % 2], timeout=12)
            r = one(ctx, "GET", "/check%d" % i)
            if r.status != 200 or r.get("X-Device") != want[i % 2]:
                wrong.append((i, r.status, r.get("X-Device"), want[i % 2]))
            time.sleep(random.uniform(0.05, 0.1))
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    ctx.note("%d requests under load (%d keep-alive, %d on new connections)"
             % (stats["ok"], stats["ka_ok"], stats["new_ok"]))
    eq(stats["failed"][:5], [], "failed requests under the reload loop (first 5)")
    eq(stats["refused"], 0, "refused connections under the reload loop")
    check(stats["ka_ok"] >= 50 and stats["new_ok"] >= 50, "the load really ran",
          ">= 50 keep-alive and >= 50 new-connection requests",
          (stats["ka_ok"], stats["new_ok"]))
    eq(wrong, [], "a fresh request after each reload follows that reload's weights "
                  "(reload, status, device, wanted)")
    eq(len([ln for ln in reload_lines(px) if APPLIED_RE.match(ln)]), 50, "applied lines logged")
    expect_state(ctx, "after 50 reloads", generation=51, reloads=50, failures=0)
    eq(served_by(ctx, 3), ["a"] * 3, "the 50th reload's weights rule")


# =====================================================================
# 3. a bad file
# =====================================================================

@test("reload: a file with an error half-way -> 'reload: FILE:LINE: MESSAGE; the running "
      "configuration stays', nothing of it applied; the fixed file then applies",
      valgrind=True)
def t_reload_bad_file(ctx):
    a, b = ctx.device(name="a"), ctx.device(name="b")
    port = free_port()
    c1 = conf([port], pool_lines("p", [a]) + ["route pool=p"])
    good = pool_lines("q", [b]) + ["route pool=q"]
    bad = conf([port], good + ["frobnicate now", "route pool=q"])
    fixed = conf([port], good)
    px = ctx.start(c1)
    eq(served_by(ctx, 2), ["a"] * 2, "before")
    bad_line = line_no(bad, "frobnicate")
    msg = stays(px, bad, bad_line)
    # the same message as -t gives for the file
    rc, out, err = run_cli(ctx, ["-t", "-c", px.conf_path])
    eq(rc, 1, "-t on the bad file")
    first = err.splitlines()[0] if err else ""
    eq(first, "%s:%d: %s" % (px.conf_path, bad_line, msg),
       "the reload's message is -t's first line for the same file")
    check(px.alive(), "rproxy still runs after the bad file")
    eq(served_by(ctx, 4), ["a"] * 4, "the old configuration keeps serving (routes to a)")
    expect_state(ctx, "after the bad file", generation=1, reloads=0, failures=1)
    eq([ln for ln in reload_lines(px) if APPLIED_RE.match(ln)], [], "no applied line")

    eq(prom_reload(ctx), [1, 0, 1, 0], "Prometheus generation, reloads, failures, draining "
       "after the bad file")

    m = applied(px, fixed)
    eq([int(x) for x in m.group(2, 3, 4, 5)], [1, 1, 1, 1],
       "applied line: listeners, pools, devices, routes")
    expect_state(ctx, "after the fixed file", generation=2, reloads=1, failures=1)
    eq(prom_reload(ctx), [2, 1, 1, 0], "Prometheus generation, reloads, failures, draining "
       "after the fixed file")
    eq(served_by(ctx, 4), ["b"] * 4, "the fixed file's route to b")


# =====================================================================
# 4. listeners added, removed, kept
# =====================================================================

@test("reload: listeners P1+P2 -> P1+P3: P3 answers, P2 refuses, P1 keeps its socket and "
      "never refuses a connection during the reload")
def t_reload_listeners(ctx):
    a = ctx.device(name="a")
    p1, p2, p3 = free_port(), free_port(), free_port()
    routes = pool_lines("p", [a]) + ["route pool=p"]
    px = ctx.start(conf([p1, p2], routes))
    eq(served_by(ctx, 1, port=p2), ["a"], "P2 answers before")
    idle2 = ctx.client(port=p2)
    idle2.send(req_bytes("GET", "/idle"))
    eq(idle2.read_response().status, 200, "a keep-alive request on P2")
    check(connect_refused(p3), "P3 refuses before the reload")
    ino = listen_inode(p1)
    check(ino is not None, "P1's listening socket found in /proc/net/tcp")

    stop = threading.Event()
    res = {"ok": 0, "bad": []}

    def hammer():
        i = 0
        while not stop.is_set():
            try:
                c = ctx.client(port=p1, timeout=5)
                c.send(req_bytes("GET", "/h%d" % i, headers=[("Connection", "close")]))
                r = c.read_response()
                c.close()
                if r.status == 200:
                    res["ok"] += 1
                else:
                    res["bad"].append("GET /h%d: %d" % (i, r.status))
            except (OSError, Closed) as e:
                res["bad"].append("GET /h%d on P1: %s: %s" % (i, type(e).__name__, e))
            i += 1

    th = threading.Thread(target=hammer, daemon=True)
    th.start()
    try:
        time.sleep(0.2)
        m = applied(px, conf([p1, p3], routes))
        time.sleep(0.3)
    finally:
        stop.set()
        th.join(10)
    eq(int(m.group(2)), 2, "applied line: 2 listeners")
    eq(res["bad"][:5], [], "connections to the kept listener P1 during the reload")
    check(res["ok"] > 5, "P1 was used during the reload", "> 5 requests", res["ok"])
    eq(listen_inode(p1), ino, "P1 is the same listening socket after the reload")
    eq(served_by(ctx, 2, port=p3), ["a"] * 2, "P3 answers after the reload")
    check(idle2.closed_within(3), "an idle keep-alive connection accepted on the removed "
          "listener P2 is closed by the reload", "EOF", "still open")
    check(wait_until(lambda: connect_refused(p2), 2), "P2 refuses connections after the "
          "reload", "connection refused", "accepted")
    expect_state(ctx, "", generation=2, reloads=1, failures=0)


# =====================================================================
# 5. a listen port taken
# =====================================================================

@test("reload: a new listen port another socket holds -> 'FILE:LINE: listen ADDR: reason', "
      "nothing changed; once freed, SIGHUP applies")
def t_reload_port_taken(ctx):
    a, b = ctx.device(name="a"), ctx.device(name="b")
    p1, q = free_port(), free_port()
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ctx.sockets.append(holder)
    holder.bind(("127.0.0.1", q))
    holder.listen(4)
    px = ctx.start(conf([p1], pool_lines("p", [a]) + ["route pool=p"]))
    c2 = conf([p1, q], pool_lines("p", [b]) + ["route pool=p"])
    msg = stays(px, c2, 2)
    check(re.match(r"^listen (127\.0\.0\.1:)?%d: \S" % q, msg),
          "the error names the listen address and a reason",
          "listen 127.0.0.1:%d: <reason>" % q, msg)
    eq(served_by(ctx, 3), ["a"] * 3, "the old configuration keeps serving on P1")
    expect_state(ctx, "after the refused reload", generation=1, reloads=0, failures=1)
    eq(listen_inode(q) is not None, True, "the test's socket still holds the port")

    holder.close()
    m = applied(px, c2)
    eq(int(m.group(2)), 2, "applied line: 2 listeners")
    eq(served_by(ctx, 2, port=q), ["b"] * 2, "the new listener answers once the port is free")
    eq(served_by(ctx, 2), ["b"] * 2, "P1 follows the new routes")
    expect_state(ctx, "after the good reload", generation=2, reloads=1, failures=1)


# =====================================================================
# 6. more devices than the build holds
# =====================================================================

def device_limit(ctx, port):
    """RP_MAX_DEVICES of the binary under test: the line -t rejects in a file with 40."""
    lines = ["pool p"] + ["device p 127.0.0.1:%d" % (20000 + i) for i in range(40)] + \
        ["route pool=p"]
    text = conf([port], lines)
    path = ctx.path("limit.conf")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    m = re.match(r"^%s:(\d+): (.*devices.*)$" % re.escape(path), err.splitlines()[0] if err else "")
    check(rc == 1 and m, "-t rejects 40 devices with a message naming devices",
          "%s:LINE: too many devices ..." % path, err[:300])
    return int(m.group(1)) - line_no(text, "device p") , m.group(2)


@test("reload: a file naming more devices than the build holds -> error at the extra device's "
      "line, nothing changed; exactly the limit applies")
def t_reload_too_many_devices(ctx):
    a, b = ctx.device(name="a"), ctx.device(name="b")
    port = free_port()
    limit, limit_msg = device_limit(ctx, port)
    ctx.note("RP_MAX_DEVICES of this build: %d" % limit)
    check(3 <= limit <= 32, "a plausible device limit", "3..32", limit)
    px = ctx.start(conf([port], pool_lines("p", [a]) + ["route pool=p"]))

    def big(n):
        # a and b in p (routed), the rest in q on unused ports behind /q/
        lines = pool_lines("p", [a, b]) + ["pool q"]
        lines += ["device q 127.0.0.1:%d" % (20000 + i) for i in range(n - 2)]
        lines += ["route path=/q/ pool=q", "route pool=p"]
        return conf([port], lines)

    over = big(limit + 1)
    bad_line = line_no(over, "device q 127.0.0.1:%d" % (20000 + limit - 2))
    msg = stays(px, over, bad_line)
    check(msg.startswith(limit_msg.split("'")[0]), "the message says too many devices",
          limit_msg, msg)
    rc, out, err = run_cli(ctx, ["-t", "-c", px.conf_path])
    eq(err.splitlines()[0] if err else "", "%s:%d: %s" % (px.conf_path, bad_line, msg),
       "the reload's message is -t's for the same file")
    eq(served_by(ctx, 4), ["a"] * 4, "the old configuration keeps serving")
    expect_state(ctx, "after the refused reload", generation=1, reloads=0, failures=1)
    js = status_json(ctx)
    eq([(p["name"], [d["addr"] for d in p["devices"]]) for p in js["pools"]], [("p", [a.addr])],
       "status page: the old pools and devices")

    m = applied(px, big(limit))
    eq(int(m.group(4)), limit, "applied line: the device count")
    eq(sorted(served_by(ctx, 4)), ["a", "a", "b", "b"], "the new pool p (a, b)")
    expect_state(ctx, "after the good reload", generation=2, reloads=1, failures=1)


# =====================================================================
# 7. runtime admin state and counters carried over
# =====================================================================

@test("reload: a device drained through the runtime API stays drained and keeps its request "
      "counter across a reload that adds a route; the other device's counter keeps growing; "
      "a device marked down stays down")
def t_reload_keeps_runtime_state(ctx):
    a, b, c, e = [ctx.device(name=n) for n in "abce"]
    dead = "127.0.0.1:%d" % free_port()     # nothing listens: marked down at its first failure
    port = free_port()
    base = pool_lines("p", [a, b]) + [
        "pool h", "device h %s" % e.addr,
        "device h %s max_fails=1 fail_timeout=60" % dead, "route path=/h/ pool=h"]
    px = ctx.start(conf([port], base + ["route pool=p"]))
    eq(sorted(served_by(ctx, 6)), ["a"] * 3 + ["b"] * 3, "a and b share 6 requests")
    eq(served_by(ctx, 2, path="/h/"), ["e"] * 2, "pool h: e answers (the dead one retried)")
    dd = dev_json(ctx, "h", dead)
    eq((dd["state"], dd["failures"]), ("down", 1), "the dead device is down after 1 failure")
    r = one(ctx, "POST", "/status/device?pool=p&device=%s&state=drain" % a.addr)
    eq((r.status, json.loads(r.body).get("admin")), (200, "drain"), "a drained")
    ra, rb = dev_json(ctx, "p", a.addr)["requests"], dev_json(ctx, "p", b.addr)["requests"]
    eq((ra, rb), (3, 3), "request counters before the reload (a, b)")

    applied(px, conf([port], base + pool_lines("q", [c]) +
                     ["route path=/new/ pool=q", "route pool=p"]))
    dd2 = dev_json(ctx, "h", dead)
    eq((dd2["state"], dd2["failures"]), ("down", 1), "the dead device is still down after "
       "the reload (state, failures)")
    eq(served_by(ctx, 3, path="/h/"), ["e"] * 3, "pool h after the reload")
    eq(dev_json(ctx, "h", dead)["failures"], 1, "the down device was not tried again")
    da = dev_json(ctx, "p", a.addr)
    eq(da["admin"], "drain", "a is still drained after the reload (status admin)")
    eq(da["requests"], ra, "a's request counter after the reload (not reset)")
    bconns = b.conns
    eq(served_by(ctx, 4), ["b"] * 4, "new requests avoid the drained device")
    eq(dev_json(ctx, "p", b.addr)["requests"], rb + 4, "b's counter kept growing (3 + 4)")
    eq(b.conns, bconns, "b's pooled connection from before the reload served them (no new "
       "device connection)")
    eq(served_by(ctx, 2, path="/new/x"), ["c"] * 2, "the new route")
    r = one(ctx, "POST", "/status/device?pool=p&device=%s&state=ready" % a.addr)
    eq((r.status, json.loads(r.body).get("admin")), (200, "ready"),
       "the runtime API works on the carried device")
    eq(sorted(set(served_by(ctx, 4))), ["a", "b"], "a back in rotation")
    expect_state(ctx, "", generation=2, reloads=1, failures=0)


# =====================================================================
# 8. a removed device's request in flight
# =====================================================================

@test("reload: the device a slow request is on is removed: that request still gets its "
      "200 and full body, new requests go to the remaining device")
def t_reload_removed_device(ctx):
    gate = threading.Event()
    body = pattern(1 << 20)

    def slow(conn, req):
        if req.target == "/slow":
            gate.wait(10)
            conn.send(response(200, headers=[("X-Device", conn.dev.name)], body=body))
            return True
        return echo(conn, req)

    a, b = ctx.device(slow, name="a"), ctx.device(name="b")
    port = free_port()
    px = ctx.start(conf([port], pool_lines("p", [a]) + ["route pool=p"]))
    c = ctx.client(timeout=10)
    c.send(req_bytes("GET", "/slow"))
    check(a.wait_for(lambda d: any(q.target == "/slow" for q in d.requests), 3),
          "the slow request reached a")
    m = applied(px, conf([port], pool_lines("p", [b]) + ["route pool=p"]))
    check(int(m.group(6)) in ONE_EXCHANGE, "applied line: the slow request's connection "
          "(client side, and its device side) finishes on the previous configuration",
          ONE_EXCHANGE, int(m.group(6)))
    st = expect_state(ctx, "while the slow request runs", generation=2, reloads=1, failures=0)
    eq(st["draining"], int(m.group(6)), "status reload.draining = the applied line's count")
    js = status_json(ctx)
    eq([(p["name"], [d["addr"] for d in p["devices"]]) for p in js["pools"]], [("p", [b.addr])],
       "status page: only b is left")
    eq(served_by(ctx, 4), ["b"] * 4, "new requests go to b")
    gate.set()
    r = c.read_response(timeout=10)
    eq((r.status, r.get("X-Device")), (200, "a"), "the slow request's answer from a")
    eq(len(r.body), len(body), "its body length")
    check(r.body == body, "its body byte-exact")
    wait_draining(ctx, 0)
    check(a.wait_for(lambda d: d.eofs >= 1, 3), "the connection to the removed device a is "
          "closed once its request finished (not pooled)", "EOF at a", a.eofs)
    with a.lock:
        eq([q.target for q in a.requests], ["/slow"], "a got nothing after the reload")


# =====================================================================
# 9. a second SIGHUP while the configuration before the last reload is still used
# =====================================================================

def second_hup_setup(ctx, timeouts=TIMEOUTS):
    h = dispatch({"/ws": ws_echo})
    a, b = ctx.device(h, name="a"), ctx.device(h, name="b")
    port = free_port()
    px = ctx.start(conf([port], pool_lines("p", [a]) + ["route pool=p"], timeouts))
    ws, dev = ws_open(ctx)
    eq(dev, "a", "the WebSocket went to a")
    ws_roundtrip(ws, b"one", "WebSocket before the first reload")
    applied(px, conf([port], pool_lines("p", [a, b], [1, 0]) + ["route pool=p"], timeouts))
    st = expect_state(ctx, "after the first reload", generation=2, reloads=1, failures=0)
    check(st["draining"] in ONE_EXCHANGE, "the WebSocket is draining (client side, and its "
          "device side)", ONE_EXCHANGE, st["draining"])
    third = conf([port], pool_lines("p", [b]) + ["route pool=p"], timeouts)
    return px, ws, a, b, third


@test("reload: a second SIGHUP while a WebSocket of the configuration before the first reload "
      "is open logs 'waiting for N connections', keeps serving, and applies once it closes")
def t_reload_second_waits(ctx):
    px, ws, a, b, third = second_hup_setup(ctx)
    n = len(outcomes(px))
    write(px, third)
    px.signal(signal.SIGHUP)
    w = wait_until(lambda: [ln for ln in reload_lines(px) if WAITING_RE.match(ln)], 3)
    check(w, "the waiting line", "rproxy: reload: waiting for N connection(s) on the "
          "configuration before the last reload", reload_lines(px)[-3:])
    check(int(WAITING_RE.match(w[0]).group(1)) in ONE_EXCHANGE, "connections waited for: "
          "the WebSocket's", ONE_EXCHANGE, w[0])
    eq(len(outcomes(px)), n, "no outcome yet while waiting")
    # the loop keeps serving while the reload waits: on the second configuration
    eq(served_by(ctx, 2), ["a"] * 2, "requests while the reload waits (second configuration)")
    expect_state(ctx, "while waiting", generation=2, reloads=1, failures=0)
    ws_roundtrip(ws, b"two", "WebSocket while the reload waits")
    ws.sock.shutdown(socket.SHUT_WR)
    check(ws.closed_within(5), "the WebSocket closes")
    ok = wait_until(lambda: len(outcomes(px)) > n, 5)
    check(ok, "an outcome within 5 s of the WebSocket closing", "applied", reload_lines(px)[-3:])
    m = APPLIED_RE.match(outcomes(px)[n])
    check(m, "the waiting reload applied", "rproxy: reload: FILE applied: ...", outcomes(px)[n])
    expect_state(ctx, "after the second reload", generation=3, reloads=2, failures=0)
    eq(served_by(ctx, 2), ["b"] * 2, "the third configuration serves")


@test("reload: a second SIGHUP while a WebSocket of the configuration before the first reload "
      "stays open > 10 s: 'refused: N connections still run ...', failures +1, nothing "
      "changed; SIGHUP after it closes applies", timeout=40)
def t_reload_second_refused(ctx):
    px, ws, a, b, third = second_hup_setup(
        ctx, TIMEOUTS.replace("client_idle=10000", "client_idle=30000"))
    t0 = time.monotonic()
    ln = hup(px, third, timeout=14)
    took = time.monotonic() - t0
    m = REFUSED_RE.match(ln)
    check(m, "the second reload refused after waiting", "rproxy: reload: refused: 1 "
          "connections still run on the configuration before the last reload; send SIGHUP "
          "again when they finish", ln)
    check(int(m.group(1)) in ONE_EXCHANGE, "connections still running: the WebSocket's",
          ONE_EXCHANGE, ln)
    check(took >= 9, "refused only after waiting (~10 s)", ">= 9 s", "%.1f s" % took)
    check([x for x in reload_lines(px) if WAITING_RE.match(x)], "the waiting line came first")
    expect_state(ctx, "after the refusal", generation=2, reloads=1, failures=1)
    eq(served_by(ctx, 2), ["a"] * 2, "the second configuration still serves")
    ws_roundtrip(ws, b"still there", "the WebSocket after the refusal")
    ws.sock.shutdown(socket.SHUT_WR)
    check(ws.closed_within(5), "the WebSocket closes")
    wait_draining(ctx, 0)
    applied(px)
    expect_state(ctx, "after SIGHUP again", generation=3, reloads=2, failures=1)
    eq(served_by(ctx, 2), ["b"] * 2, "the third configuration serves")


# =====================================================================
# 10. max_conns across a reload
# =====================================================================

@test("reload: a one-socket device (max_conns=1) busy on the old configuration: a request "
      "after the reload waits in the queue, the device never sees a second connection")
def t_reload_max_conns(ctx):
    gate = threading.Event()

    def slow(conn, req):
        if req.target == "/slow":
            gate.wait(10)
        return echo(conn, req)

    a = ctx.device(slow, name="a", single=True)
    port = free_port()
    pool = ["pool p queue=4 queue_timeout=8000", "device p %s max_conns=1" % a.addr]
    px = ctx.start(conf([port], pool + ["route pool=p"]))
    c1 = ctx.client(timeout=10)
    c1.send(req_bytes("GET", "/slow"))
    check(a.wait_requests(1, 3), "the slow request reached a")
    applied(px, conf([port], pool + ["route path=/x/ pool=p", "route pool=p"]))
    c2 = ctx.client(timeout=10)
    c2.send(req_bytes("GET", "/two"))
    time.sleep(0.4)
    eq((a.conns, a.refused, len(a.requests)), (1, 0, 1),
       "a while its one connection is busy (connections, refused, requests)")
    gate.set()
    r1, r2 = c1.read_response(), c2.read_response()
    eq((r1.status, r2.status), (200, 200), "both requests answered")
    eq(r2.get("X-Echo-Target"), "/two", "the queued request's answer")
    eq((a.refused, a.max_live), (0, 1), "a never saw a second connection (refused, max open)")


# =====================================================================
# 11. cache entries, health probes, an unreadable file
# =====================================================================

def cacheable(conn, req):
    conn.send(response(200, headers=[("Cache-Control", "max-age=100"),
                                     ("X-Device", conn.dev.name)],
                       body=b"cached " + req.target.encode()))
    return True


@test("reload: a cached response stays cached across a reload that keeps the cached route; "
      "probes stop for a removed device and start for a new one")
def t_reload_cache_health(ctx):
    a = ctx.device(dispatch({"/c/": cacheable}), name="a")
    b = ctx.device(name="b")
    port = free_port()
    routes = ["route path=/c/ pool=p cache=on", "route pool=p"]
    px = ctx.start(conf([port], pool_lines("p", [a]) + routes +
                        ["health p path=/health interval=100"]))
    r1 = one(ctx, "GET", "/c/one")
    eq((r1.status, r1.body), (200, b"cached /c/one"), "the first GET of /c/one")
    check(wait_until(lambda: a.paths().count("/health") >= 2, 3), "a is probed before")
    applied(px, conf([port], pool_lines("p", [a, b]) + routes +
                     ["health p path=/health interval=100"]))
    r2 = one(ctx, "GET", "/c/one")
    eq((r2.status, r2.body), (200, b"cached /c/one"), "/c/one after the reload")
    eq(a.paths().count("/c/one"), 1, "/c/one came from the cache after the reload (the "
       "device saw it once)")
    check(wait_until(lambda: b.paths().count("/health") >= 2, 3), "the new device b is probed",
          ">= 2 probes", b.paths())

    applied(px, conf([port], pool_lines("p", [b]) + routes +
                     ["health p path=/health interval=100"]))
    time.sleep(0.2)     # a probe already sent may still arrive
    n = a.paths().count("/health")
    time.sleep(0.6)
    eq(a.paths().count("/health"), n, "no probes of a after it was removed")
    check(wait_until(lambda: b.paths().count("/health") >= 4, 3), "b is still probed")
    expect_state(ctx, "", generation=3, reloads=2, failures=0)


@test("reload: the file gone -> 'reload: FILE: cannot read: ...; the running configuration "
      "stays', failures +1, nothing changed")
def t_reload_unreadable(ctx):
    import os
    a = ctx.device(name="a")
    port = free_port()
    text = conf([port], pool_lines("p", [a]) + ["route pool=p"])
    px = ctx.start(text)
    os.rename(px.conf_path, px.conf_path + ".away")
    n = len(reload_lines(px))
    px.signal(signal.SIGHUP)
    got = wait_until(lambda: reload_lines(px)[n:], 3)
    check(got, "a reload line after SIGHUP", "rproxy: reload: FILE: cannot read: ...",
          px.stderr_tail(5))
    check(re.match(r"^rproxy: reload: %s: cannot read: .+; the running configuration stays$"
                   % re.escape(px.conf_path), got[0]), "the cannot-read line",
          "rproxy: reload: %s: cannot read: REASON; the running configuration stays"
          % px.conf_path, got[0])
    eq(served_by(ctx, 2), ["a"] * 2, "still serving")
    expect_state(ctx, "after the unreadable file", generation=1, reloads=0, failures=1)
    os.rename(px.conf_path + ".away", px.conf_path)
    applied(px)
    expect_state(ctx, "after the file came back", generation=2, reloads=1, failures=1)


# =====================================================================
# 12. a shared live stream across a reload
# =====================================================================

def sse_seqs(c, want, timeout=5.0):
    """Read from viewer c until `want` more whole events arrived; their sequence numbers."""
    from t_share import SSE_RE
    end = time.monotonic() + timeout
    got = []
    while len(got) < want and time.monotonic() < end:
        m = SSE_RE.search(c.buf)
        if m:
            got.append(int(m.group(1)))
            c.buf = c.buf[m.end():]
            continue
        try:
            c._fill(max(0.01, end - time.monotonic()))
        except socket.timeout:
            break
        if c.eof:
            break
    return got


@test("reload: a shared stream opened before the reload keeps its viewer (events contiguous); "
      "a viewer after the reload opens a new stream on the new configuration, the next one "
      "joins it")
def t_reload_share(ctx):
    from t_share import stream_device, streams
    cam = stream_device(ctx, kind="sse", fps=25, max_conns=3)
    port = free_port()
    routes = ["route path=/cam/ pool=p share=on", "route pool=p"]
    px = ctx.start(conf([port], pool_lines("p", [cam]) + routes))

    def viewer():
        c = ctx.client(timeout=10)
        c.send(req_bytes("GET", "/cam/live"))
        r = c.read_head()
        eq(r.status, 200, "stream head")
        return c

    v1 = viewer()
    s1 = sse_seqs(v1, 3)
    eq(len(s1), 3, "viewer 1: 3 events before the reload")
    applied(px, conf([port], pool_lines("p", [cam]) + ["route path=/x/ pool=p"] + routes))
    v2 = viewer()
    s2 = sse_seqs(v2, 3)
    eq(len(s2), 3, "viewer 2 (after the reload): 3 events")
    eq(len(streams(cam)), 2, "the device serves a second stream for the new configuration")
    v3 = viewer()
    s3 = sse_seqs(v3, 3)
    eq(len(s3), 3, "viewer 3: 3 events")
    eq(len(streams(cam)), 2, "viewer 3 joined the new configuration's stream")
    more = sse_seqs(v1, 10)
    seq1 = s1 + more
    eq(seq1, list(range(seq1[0], seq1[0] + len(seq1))), "viewer 1's events are contiguous "
       "across the reload")
    eq(len(seq1), 13, "viewer 1 kept receiving after the reload")
    v1.close()
    wait_draining(ctx, 0)
    eq(cam.state["refused"], 0, "the device refused no stream")


# =====================================================================
# 13. TLS: a renewed certificate, a plain listener becoming TLS
# =====================================================================

@test("reload: TLS: the certificate replaced (a.test -> b.test) is served to new handshakes, a "
      "TLS keep-alive connection from before keeps working; a plain listener on the same "
      "address turned tls speaks TLS")
def t_reload_tls(ctx):
    import tlsutil as T
    from t_tls import cn, need_tls
    need_tls()
    pki = T.pki(ctx)
    a = ctx.device(name="a")
    pt, pp = free_port(), free_port()
    body = pool_lines("p", [a]) + ["route pool=p"]

    def text(cert, key, plain_opts):
        return "\n".join(["listen 127.0.0.1:%d" % pp + plain_opts, "listen 127.0.0.1:%d tls" % pt,
                          "tls cert=%s key=%s" % (cert, key)] + body + [TIMEOUTS, STATUS]) + "\n"

    px = ctx.start(text(pki.a_crt, pki.a_key, ""))
    r = T.s_client(ctx, pt, servername="a.test")
    check(r.handshake_ok, "TLS handshake before the reload", "ok", r.summary())
    eq(cn(r.subject), "a.test", "certificate before the reload")
    kc = T.tls_client(ctx, pt)
    kc.send(req_bytes("GET", "/tls1"))
    eq(kc.read_response().status, 200, "a request on a TLS keep-alive connection")

    applied(px, text(pki.b_crt, pki.b_key, " tls"))
    r = T.s_client(ctx, pt, servername="b.test")
    check(r.handshake_ok, "TLS handshake after the reload", "ok", r.summary())
    eq(cn(r.subject), "b.test", "the new certificate after the reload")
    kc.send(req_bytes("GET", "/tls2"))
    try:
        r2 = kc.read_response()
    except Closed as e:
        fail("the TLS keep-alive connection from before the reload closed", "a response",
             short(e.got))
    eq((r2.status, r2.get("X-Device")), (200, "a"), "its next request")
    r = T.s_client(ctx, pp, servername="b.test")
    check(r.handshake_ok, "the listener turned tls: handshake", "ok", r.summary())
    eq(cn(r.subject), "b.test", "its certificate")
    tc = T.tls_client(ctx, pp, server_hostname="b.test")
    tc.send(req_bytes("GET", "/was-plain"))
    eq(tc.read_response().status, 200, "HTTP over TLS on the former plain port")


# =====================================================================
# 14. timeouts: an exchange in flight keeps the ones it started with
# =====================================================================

@test("reload: timeout device=5000 -> 300: the slow request in flight keeps its 5 s and gets "
      "its 200; the same request after the reload gets 504")
def t_reload_timeouts(ctx):
    def slow(conn, req):
        if req.target.startswith("/slow"):
            time.sleep(1.2)
        return echo(conn, req)

    a = ctx.device(slow, name="a")
    port = free_port()
    body = pool_lines("p", [a]) + ["route pool=p"]
    px = ctx.start(conf([port], body))
    c = ctx.client(timeout=10)
    c.send(req_bytes("GET", "/slow1"))
    check(a.wait_requests(1, 3), "the slow request reached a")
    applied(px, conf([port], body, TIMEOUTS.replace("device=5000", "device=300")))
    r = c.read_response(timeout=10)
    eq(r.status, 200, "the slow request in flight during the reload (old timeout 5 s)")
    r = one(ctx, "GET", "/slow2", timeout=10)
    eq(r.status, 504, "the same slow request after the reload (new timeout 300 ms)")


# =====================================================================
# 15. devices and pools at new indexes
# =====================================================================

@test("reload: pools and devices reordered (a new pool first, p's devices swapped, a disabled): "
      "requests go to b over b's own pooled connection, counters follow the devices")
def t_reload_reordered(ctx):
    a, b, c = ctx.device(name="a"), ctx.device(name="b"), ctx.device(name="c")
    port = free_port()
    px = ctx.start(conf([port], pool_lines("p", [a, b]) + ["route pool=p"]))
    eq(sorted(served_by(ctx, 4)), ["a", "a", "b", "b"], "a and b before")
    conns = (a.conns, b.conns)
    eq(conns, (1, 1), "one pooled connection to each device")
    applied(px, conf([port], pool_lines("z", [c]) + pool_lines("p", [b, a], [1, 0]) +
                     ["route path=/z/ pool=z", "route pool=p"]))
    eq(served_by(ctx, 4), ["b"] * 4, "a disabled: every request to b")
    eq((a.conns, b.conns), conns, "b's pooled connection served them; none opened to a")
    with a.lock:
        eq(len(a.requests), 2, "a got nothing after the reload")
    eq((dev_json(ctx, "p", a.addr)["requests"], dev_json(ctx, "p", b.addr)["requests"]),
       (2, 6), "request counters (a, b) follow the devices to their new indexes")
    eq((dev_json(ctx, "p", a.addr)["weight"], dev_json(ctx, "p", b.addr)["weight"]), (0, 1),
       "weights from the new file")
    eq(served_by(ctx, 2, path="/z/"), ["c"] * 2, "the new pool z")


# =====================================================================
# 16. devices by name across a reload
# =====================================================================

@test("reload: a device by name keeps its address across a reload (serves at once); a reload "
      "while its lookup is in flight applies once the slow answer came, serving meanwhile",
      timeout=30)
def t_reload_dns(ctx):
    from t_dns import dns
    from harness import RPROXY
    a = ctx.device(name="a")
    other = ctx.device(name="other")
    s = dns(ctx)
    s.delay = 3.0
    s.set("cam1.test", "ok", "127.0.0.1")
    port = free_port()
    body = ["pool p resolve=1s", "device p cam1.test:%d" % a.port,
            "pool q", "device q %s" % other.addr, "route path=/q/ pool=q", "route pool=p"]
    px = ctx.start(conf([port], body), binary=s.wrapper(ctx.dir, RPROXY))
    check(wait_until(lambda: one(ctx, "GET", "/cam").status == 200, 5, step=0.1),
          "cam1.test resolved and serves")
    # the lookups after each resolve=1s now take 3 s to answer
    s.set("cam1.test", "slow", "127.0.0.1")
    n0 = s.count("cam1.test")
    check(wait_until(lambda: s.count("cam1.test") > n0, 4), "a slow lookup is in flight")
    t0 = time.monotonic()
    n = len(outcomes(px))
    write(px, conf([port], body[:-1] + ["route path=/new/ pool=q", "route pool=p"]))
    px.signal(signal.SIGHUP)
    for i in range(5):
        r = one(ctx, "GET", "/q/%d" % i, timeout=3)
        eq((r.status, r.get("X-Device")), (200, "other"), "served while the reload waits")
    ok = wait_until(lambda: len(outcomes(px)) > n, 12)
    check(ok, "the reload is applied after the lookup answered", "applied",
          px.stderr_tail(5))
    check(APPLIED_RE.match(outcomes(px)[n]), "applied", "rproxy: reload: FILE applied: ...",
          outcomes(px)[n])
    ctx.note("applied %.1f s after SIGHUP (lookups take 3 s)" % (time.monotonic() - t0))
    s.set("cam1.test", "ok", "127.0.0.1")
    js = status_json(ctx)
    dv = [x for p in js["pools"] if p["name"] == "p" for x in p["devices"]]
    eq([(x.get("name"), x["addr"], x["state"]) for x in dv],
       [("cam1.test", "127.0.0.1:%d" % a.port, "up")], "the named device keeps its address")
    eq(one(ctx, "GET", "/cam2").get("X-Device"), "a", "served at once after the reload")
    eq(one(ctx, "GET", "/new/x").get("X-Device"), "other", "the new route")


# =====================================================================
# 17. a keep-alive connection whose request was in flight during the reload
# =====================================================================

@test("reload: a keep-alive connection with a request in flight during the reload: its next "
      "request (also a pipelined one) takes the new configuration, it stops counting as "
      "draining, and the next SIGHUP applies without waiting")
def t_reload_ka_in_flight(ctx):
    gate = threading.Event()

    def slow(conn, req):
        if req.target.startswith("/slow"):
            gate.wait(10)
        return echo(conn, req)

    a, b = ctx.device(slow, name="a"), ctx.device(slow, name="b")
    port = free_port()
    px = ctx.start(conf([port], pool_lines("p", [a, b], [1, 0]) + ["route pool=p"]))
    k1 = ctx.client(timeout=10)
    k1.send(req_bytes("GET", "/slow1"))
    k2 = ctx.client(timeout=10)     # the same, with its next request already pipelined
    k2.send(req_bytes("GET", "/slow2") + req_bytes("GET", "/next2"))
    check(a.wait_for(lambda d: len(d.requests) >= 2, 3), "both slow requests reached a")
    applied(px, conf([port], pool_lines("p", [a, b], [0, 1]) + ["route pool=p"]))
    gate.set()
    r = k1.read_response()
    eq((r.status, r.get("X-Device")), (200, "a"), "k1's request in flight finished on a")
    r = k2.read_response()
    eq((r.status, r.get("X-Device")), (200, "a"), "k2's request in flight finished on a")
    r = k2.read_response()
    eq((r.status, r.get("X-Device")), (200, "b"), "k2's pipelined request: new configuration")
    k1.send(req_bytes("GET", "/next1"))
    r = k1.read_response()
    eq((r.status, r.get("X-Device")), (200, "b"), "k1's next request: new configuration")
    r = wait_until(lambda: reload_state(ctx)["draining"] == 0, 3)
    check(r, "the keep-alive connections (still open) no longer count as draining", 0,
          reload_state(ctx)["draining"])
    ln = hup(px, conf([port], pool_lines("p", [a, b], [1, 0]) + ["route pool=p"]), timeout=5)
    check(APPLIED_RE.match(ln), "the next SIGHUP applies at once", "applied", ln)
    eq([x for x in reload_lines(px) if WAITING_RE.match(x)], [], "no waiting line")
    k1.send(req_bytes("GET", "/again"))
    eq(k1.read_response().get("X-Device"), "a", "k1 follows the third configuration")


# =====================================================================
# 18. a request waiting in a pool's queue when the reload removes its device
# =====================================================================

@test("reload: a request waiting in the queue of a pool whose only device the reload removes "
      "is still answered (no hang), new requests go to the new device")
def t_reload_queued(ctx):
    gate = threading.Event()

    def slow(conn, req):
        if req.target.startswith("/slow"):
            gate.wait(10)
        return echo(conn, req)

    a, b = ctx.device(slow, name="a"), ctx.device(name="b")
    port = free_port()
    pool = ["pool p queue=4 queue_timeout=8000"]
    px = ctx.start(conf([port], pool + ["device p %s max_conns=1" % a.addr, "route pool=p"]))
    c1 = ctx.client(timeout=10)
    c1.send(req_bytes("GET", "/slow1"))
    check(a.wait_requests(1, 3), "the slow request reached a")
    c2 = ctx.client(timeout=10)
    c2.send(req_bytes("GET", "/queued"))
    check(wait_until(lambda: status_json(ctx)["pools"][0]["queued"] == 1, 3),
          "the second request waits in p's queue")
    applied(px, conf([port], pool + ["device p %s" % b.addr, "route pool=p"]))
    eq(served_by(ctx, 2), ["b"] * 2, "new requests go to b")
    gate.set()
    eq(c1.read_response().status, 200, "the slow request finished")
    r = c2.read_response(timeout=10)
    eq(r.status, 200, "the queued request was answered")
    ctx.note("the queued request was served by %s" % r.get("X-Device"))
    wait_draining(ctx, 0)


# =====================================================================
# 19. a device's own settings changed: tls toward it
# =====================================================================

@test("reload: the same device address turned `tls`: its pooled plain connection is not "
      "reused (a new connection with a TLS handshake, which this plain device fails)")
def t_reload_device_tls(ctx):
    from t_tls import need_tls
    need_tls()
    a = ctx.device(name="a")
    port = free_port()
    tmo = TIMEOUTS.replace("device=5000", "device=1000") + " handshake=1000"
    px = ctx.start(conf([port], ["pool p", "device p %s" % a.addr, "route pool=p"], tmo))
    eq(served_by(ctx, 2), ["a"] * 2, "plain requests to a")
    eq(a.conns, 1, "one pooled plain connection to a")
    applied(px, conf([port], ["pool p", "device p %s tls verify=off" % a.addr, "route pool=p"],
                     tmo))
    r = one(ctx, "GET", "/after")
    with a.lock:
        paths = [q.target for q in a.requests]
    check("/after" not in paths, "the request after the reload did not go in plain text over "
          "the connection pooled before (the device is `tls` now)", "not at the device",
          (r.status, paths))
    check(r.status in (502, 504), "a plain device behind `tls` fails the handshake: 502, or "
          "504 when it waits for more of what it takes for a request head", "502 or 504",
          r.status)
    check(a.conns >= 2, "a new connection was opened for the TLS device", ">= 2", a.conns)
    with a.lock:
        hello = b"\x16\x03" in bytes(a.raw)
    check(hello, "the device got a TLS ClientHello on the new connection")


# =====================================================================
# 20. half a request head, half an upload across the reload
# =====================================================================

@test("reload: a request head half-sent during the reload is routed by the new configuration; "
      "an upload half-sent finishes byte-exact on the old one")
def t_reload_partial(ctx):
    def upload(conn, req):
        body = json.dumps({"n": len(req.body),
                           "sha": hashlib.sha256(req.body).hexdigest()}).encode()
        conn.send(response(200, headers=[("X-Device", conn.dev.name)], body=body))
        return True

    h = dispatch({"/up": upload})
    a, b = ctx.device(h, name="a"), ctx.device(h, name="b")
    port = free_port()
    px = ctx.start(conf([port], pool_lines("p", [a, b], [1, 0]) + ["route pool=p"]))
    half = ctx.client(timeout=10)
    half.send(b"GET /partial HTTP/1.1\r\nHo")
    data = pattern(2 << 20)
    up = ctx.client(timeout=10)
    up.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data))
    up.send(data[:1 << 20])
    check(a.wait_for(lambda d: any(q.target == "/up" for q in d.requests), 3),
          "the upload's head reached a")
    applied(px, conf([port], pool_lines("p", [a, b], [0, 1]) + ["route pool=p"]))
    half.send(b"st: x\r\n\r\n")
    r = half.read_response()
    eq((r.status, r.get("X-Device")), (200, "b"), "the request completed after the reload")
    up.send(data[1 << 20:])
    r = up.read_response()
    eq((r.status, r.get("X-Device")), (200, "a"), "the upload finished on a")
    eq(json.loads(r.body), {"n": len(data), "sha": hashlib.sha256(data).hexdigest()},
       "the upload arrived byte-exact")
    half.close()
    up.close()
    wait_draining(ctx, 0)

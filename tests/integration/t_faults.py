"""t_faults.py -- exhaustion and fault tests (issue 7), beyond the basic ones.

Covered elsewhere: 9th client on the RP_MAX_CONNS=8 build and 5th device connection on
RP_MAX_UPSTREAM=4 (t_limits.py); 504 on a silent device, 408 on a stalled head,
client_idle, device dying mid-body (Content-Length and chunked), client abort mid-upload
and mid-download, device stalling mid-body (t_errors.py); backpressure both ways
(t_backpressure.py); an early 413 (t_bodies.py).  This file adds: a crowd beyond the
slot table, slowloris, a client that never reads, device hangs/garbage/resets at other
points, extra bytes on an idle pooled connection, pipelined requests behind a dying device,
EMFILE on accept.  Listed in run.py's TOPICS.
"""

import os
import socket
import struct
import threading
import time

from checks import check, dev_info, eq, fail, hang, pattern, req_bytes, short, test
from devserver import echo
from harness import RPROXY, RPROXY_SMALL, Closed


def need_small():
    if not os.path.exists(RPROXY_SMALL):
        fail("small-limits build missing: %s" % RPROXY_SMALL, "a binary", "missing")


def try_get(ctx, path, timeout=5.0):
    """(status or None for a plain close, client)."""
    c = ctx.client(timeout=timeout)
    c.send(req_bytes("GET", path), ignore_errors=True)
    try:
        return c.read_response(timeout=timeout).status, c
    except Closed:
        return None, c


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# =====================================================================
# Exhaustion
# =====================================================================

@test("exhaustion: 30 clients at once on the 8-slot build -> extras refused (503/close), the "
      "8 served keep working, slots come back", serial=True, timeout=40)
def t_fault_crowd(ctx):
    need_small()
    dev = ctx.device()
    ctx.start(devices=[dev], binary=RPROXY_SMALL)
    time.sleep(0.2)
    held = []
    for i in range(8):
        st, c = try_get(ctx, "/held%d" % i)
        eq(st, 200, "client %d served" % i)
        held.append(c)
    refused = 0
    crowd = []
    for i in range(22):
        c = ctx.client(timeout=4)
        c.send(req_bytes("GET", "/crowd%d" % i), ignore_errors=True)
        crowd.append(c)
    for i, c in enumerate(crowd):
        try:
            data = c.read_until_close(timeout=4)
        except socket.timeout:
            fail("extra client %d neither refused nor closed" % i, "503/close", short(c.buf))
        check(data == b"" or data.startswith(b"HTTP/1.1 503"), "extra client %d" % i,
              "503 or close", short(data))
        refused += 1
    eq(refused, 22, "extra clients refused")
    check(not any(q.target.startswith("/crowd") for q in dev.requests),
          "no refused request reached the device", "none", [q.target for q in dev.requests])
    for i, c in enumerate(held):
        c.send(req_bytes("GET", "/again%d" % i))
        eq(c.read_response().status, 200, "held client %d still served" % i)
    for c in held:
        c.close()
    time.sleep(0.3)
    for i in range(8):
        st, _ = try_get(ctx, "/after%d" % i)
        eq(st, 200, "new client %d served once slots are free" % i)


def trickle(c, data, gap, stop):
    for b in data:
        if stop.is_set():
            return
        try:
            c.sock.send(bytes([b]))
        except OSError:
            return
        time.sleep(gap)


@test("slowloris: 8 clients trickling a head byte by byte on the 8-slot build get 408 at "
      "client_header and lose their slots by client_header + linger (2 s) even while they keep "
      "trickling; then a normal client is served", serial=True, timeout=40)
def t_fault_slowloris(ctx):
    need_small()
    dev = ctx.device()
    ctx.start(devices=[dev], binary=RPROXY_SMALL, timeouts={"client_header": 1000})
    time.sleep(0.2)
    stop = threading.Event()
    lorises = []
    head = b"GET /slow HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * 2000 + b"\r\n\r\n"
    t0 = time.monotonic()
    for _ in range(8):
        c = ctx.client(timeout=8)
        th = threading.Thread(target=trickle, args=(c, head, 0.02, stop), daemon=True)
        th.start()
        lorises.append(c)
    time.sleep(0.3)
    st, x = try_get(ctx, "/during", timeout=3)
    check(st in (None, 503), "while 8 lorises hold every slot, a 9th client is refused",
          "503/close", st)
    try:
        for i, c in enumerate(lorises):
            try:
                r = c.read_head(timeout=5)
                eq(r.status, 408, "loris %d gets 408" % i)
            except Closed:
                pass       # a close without 408 is acceptable too
            except socket.timeout:
                fail("loris %d got no 408 within 5 s of client_header=1000" % i, "408/close",
                     "open")
        t408 = time.monotonic() - t0
        check(t408 < 2.5, "408s at client_header", "< 2.5 s", "%.1f s" % t408)
        # still trickling: rproxy sent FIN with the 408 and drains for at most the linger
        # time (2 s, not extended by more bytes), then frees the slot
        deadline = t0 + 1.0 + 2.0 + 1.5
        st = None
        while time.monotonic() < deadline:
            st, _ = try_get(ctx, "/after", timeout=3)
            if st == 200:
                break
            time.sleep(0.2)
        dt = time.monotonic() - t0
        eq(st, 200, "a normal client is served by client_header + linger (+1.5 s) "
           "(after %.1f s)" % dt)
    finally:
        stop.set()
    check(not any(q.target == "/slow" for q in dev.requests), "no trickled head reached the "
          "device", "none", [q.target for q in dev.requests])


def endless(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 30))
    blk = pattern(65536)
    try:
        while not conn.dev.stopping:
            conn.send(blk)
    except OSError:
        pass
    conn.close()
    return False


@test("client that never reads its response: dropped after client_idle, the device connection "
      "is closed, others are served", serial=True, timeout=30)
def t_fault_nonreader(ctx):
    dev = ctx.device(lambda c, r: endless(c, r) if r.target == "/big" else echo(c, r),
                     sndbuf=65536)
    dev.send_timeout = 20.0
    ctx.start(devices=[dev], timeouts={"client_idle": 1000})
    c = ctx.client(rcvbuf=4096, timeout=10)
    c.send(req_bytes("GET", "/big"))
    check(dev.wait_requests(1, 3), "request reached the device", 1, 0)
    t0 = time.monotonic()
    # rproxy must give up on the client and close the device connection: the device's
    # endless send then fails and its thread ends (dev.conns' live socket is closed)
    ok = dev.wait_for(lambda d: d.live and d.live[0].closed, timeout=8)
    dt = time.monotonic() - t0
    check(ok, "device connection released within 8 s of client_idle=1000", "closed",
          "still sending after %.1f s" % dt)
    check(dt > 0.5, "not released before client_idle", "> 0.5 s", "%.2f s" % dt)
    st, _ = try_get(ctx, "/other")
    eq(st, 200, "another client is served")


# =====================================================================
# Device faults
# =====================================================================

def die_after_part(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + pattern(5000))
    time.sleep(0.1)
    conn.close()
    return False


@test("device dies mid-response with a pipelined request queued: short body then close, the "
      "queued request never answered on that connection")
def t_fault_die_pipelined(ctx):
    dev = ctx.device(lambda c, r: die_after_part(c, r) if r.target == "/die" else echo(c, r))
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/die") + req_bytes("GET", "/queued"))
    r = c.read_head()
    eq(r.status, 200, "status")
    try:
        rest = c.read_until_close(timeout=5)
    except socket.timeout:
        fail("client connection still open after the device died mid-body", "close", "open")
    check(len(rest) < 100000, "short body", "< 100000 bytes", len(rest))
    check(b"HTTP/1.1" not in rest, "no second response after the short body", "none",
          short(rest[-200:]))
    st, _ = try_get(ctx, "/next")
    eq(st, 200, "next client served")


def reset_now(conn, req):
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    return False


def reset_mid_body(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + pattern(3000))
    time.sleep(0.1)
    return reset_now(conn, req)


@test("device resets (RST) before answering -> 502 and close; mid-body -> client closed")
def t_fault_reset(ctx):
    dev = ctx.device(lambda c, r: reset_now(c, r) if r.target == "/rst" else
                     reset_mid_body(c, r) if r.target == "/rstbody" else echo(c, r))
    ctx.start(ctx.config(pools=["pool p retries=0", "device p %s max_fails=0" % dev.addr]))
    st, c = try_get(ctx, "/rst")
    eq(st, 502, "reset before the response")
    c2 = ctx.client()
    c2.send(req_bytes("GET", "/rstbody"))
    r = c2.read_head()
    eq(r.status, 200, "status of the reset body")
    try:
        rest = c2.read_until_close(timeout=5)
    except socket.timeout:
        fail("client still open after a device reset mid-body", "close", "open")
    check(len(rest) < 100000, "short body then close", "< 100000", len(rest))
    st, _ = try_get(ctx, "/ok")
    eq(st, 200, "next request served")


@test("device hangs before reading the request, and mid-head -> 504 after timeout device=500",
      serial=True)
def t_fault_hang_points(ctx):
    def handler(conn, req):
        if req.target == "/midhead":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Le")
            return hang(conn, req)
        return echo(conn, req)
    dev = ctx.device(handler)
    # a listener that accepts (kernel backlog) but never reads
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    ctx.sockets.append(silent)
    sp = silent.getsockname()[1]
    ctx.start(ctx.config(pools=["pool p retries=0", "device p %s max_fails=0" % dev.addr,
                                "pool s retries=0", "device s 127.0.0.1:%d max_fails=0" % sp],
                         routes=["route path=/silent pool=s", "route pool=p"],
                         timeouts={"device": 500}))
    for path in ("/silent", "/midhead"):
        t0 = time.monotonic()
        st, c = try_get(ctx, path, timeout=6)
        dt = time.monotonic() - t0
        eq(st, 504, "status for %s" % path)
        check(0.4 <= dt < 4, "504 at the timeout for %s" % path, "0.4..4 s", "%.2f s" % dt)
    st, _ = try_get(ctx, "/fine")
    eq(st, 200, "healthy route still served")


GARBAGE = [
    ("binary", bytes(range(256)) * 4),
    ("status line only, then close", b"HTTP/1.1 200 OK\r\n"),
    ("empty lines then close", b"\r\n\r\n\r\n"),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("status 99", b"HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n"),
    ("status 2000", b"HTTP/1.1 2000 Big\r\nContent-Length: 0\r\n\r\n"),
    ("head over 8 KiB", b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"),
    ("HTTP/1.2 response", b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n"),
]


@test("device answers garbage (binary, truncated head, HTTP/2, bad status, huge head) -> 502, "
      "and the next request is served")
def t_fault_garbage(ctx):
    table = {}
    for i, (_, raw) in enumerate(GARBAGE):
        def h(conn, req, raw=raw):
            conn.send(raw)
            time.sleep(0.05)
            conn.close()
            return False
        table["/g%d" % i] = h
    dev = ctx.device(lambda c, r: table.get(r.target, echo)(c, r))
    ctx.start(ctx.config(pools=["pool p retries=0", "device p %s max_fails=0" % dev.addr]))
    for i, (label, _) in enumerate(GARBAGE):
        st, c = try_get(ctx, "/g%d" % i)
        eq(st, 502, "status for %s" % label)
        st, _ = try_get(ctx, "/ok%d" % i)
        eq(st, 200, "request after %s" % label)


def late_extra(conn, req):
    if req.target == "/late":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        time.sleep(0.2)      # now idle in rproxy's pool ... and babbling
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Evil: 1\r\n\r\nevil")
        return True
    return echo(conn, req)


@test("device sends bytes on an idle pooled connection (after its Content-Length): the "
      "connection is dropped, the next request gets its own response")
def t_fault_idle_babble(ctx):
    dev = ctx.device(late_extra)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/late"))
    r = c.read_response()
    eq(r.body, b"ok", "first response")
    time.sleep(0.5)
    for i in range(3):
        c.send(req_bytes("GET", "/n%d" % i))
        r = c.read_response()
        check(not r.has("X-Evil"), "never the babbled bytes", "echo", short(r.head_raw + r.body))
        eq(dev_info(r)["target"], "/n%d" % i, "response %d" % i)
    check(all(q.conn_index != 0 for q in dev.requests[1:]),
          "the babbling connection was not reused", "conn >= 1",
          [q.conn_index for q in dev.requests])


def early_then_keep(conn, req):
    if req.target == "/early":
        conn.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
        return True      # keeps the connection; the framework then reads the body
    return echo(conn, req)


@test("device answers before reading a 16 MiB upload (keep-alive): client gets the answer "
      "with Connection: close, the half-read device connection is never reused", timeout=40)
def t_fault_early_keepalive(ctx):
    dev = ctx.device(early_then_keep, read_body=False, rcvbuf=65536)
    ctx.start(devices=[dev])
    c = ctx.client(sndbuf=65536, timeout=10)
    size = 16 << 20
    c.send(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    check(dev.wait_requests(1, 3), "head at the device", 1, 0)

    def push():
        blk = pattern(1 << 20)
        try:
            for _ in range(16):
                c.sock.sendall(blk)
        except OSError:
            pass
    sender = threading.Thread(target=push, daemon=True)
    sender.start()
    r = c.read_response(timeout=10)
    eq(r.status, 403, "early answer relayed")
    check("close" in r.conn_tokens(), "Connection: close (request body unfinished)", "close",
          r.head_raw)
    for i in range(3):
        st, c2 = try_get(ctx, "/after%d" % i, timeout=10)
        eq(st, 200, "next client %d" % i)
    targets = [q.target for q in dev.requests]
    eq(targets.count("/early"), 1, "early request once")
    check(all(t in ("/early", "/after0", "/after1", "/after2") for t in targets),
          "body bytes never parsed as requests", "only real targets", targets)
    check(all(q.conn_index != dev.requests[0].conn_index for q in dev.requests[1:]),
          "half-read device connection not reused", "other connections",
          [q.conn_index for q in dev.requests])


def slow_stream(conn, req):
    if req.target == "/stream":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n")
        try:
            for _ in range(500):
                conn.send(pattern(10000))
                time.sleep(0.005)
        except OSError:
            conn.close()
            return False
        return True
    return echo(conn, req)


@test("client resets (RST) mid-download and mid-upload: device connection closed, later "
      "clients served correctly")
def t_fault_client_reset(ctx):
    dev = ctx.device(slow_stream)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/stream"))
    c.read_head()
    c.read_exact(20000)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    c2 = ctx.client()
    c2.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"u" * 5000)
    time.sleep(0.2)
    c2.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c2.close()
    time.sleep(0.3)
    for i in range(5):
        st, c3 = try_get(ctx, "/ok%d" % i)
        eq(st, 200, "client %d after the resets" % i)


# =====================================================================
# EMFILE
# =====================================================================

@test("EMFILE on accept (ulimit -n 40): no busy loop, existing clients served, recovers when "
      "descriptors free up", serial=True, timeout=40)
def t_fault_emfile(ctx):
    dev = ctx.device()
    wrapper = ctx.path("rproxy-lowfd.sh")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nulimit -n 40\nexec %s \"$@\"\n" % RPROXY)
    os.chmod(wrapper, 0o755)
    px = ctx.start(devices=[dev], binary=wrapper)
    time.sleep(0.3)
    keep, _ = try_get(ctx, "/first")
    eq(keep, 200, "first request")
    hogs = []
    for _ in range(60):
        try:
            s = socket.create_connection(("127.0.0.1", ctx.port), timeout=2)
        except OSError:
            break
        ctx.sockets.append(s)
        hogs.append(s)
    time.sleep(0.5)
    pid = px.proc.pid
    cpu0 = cpu_seconds(pid)
    time.sleep(1.5)
    used = cpu_seconds(pid) - cpu0
    check(used < 0.5, "no busy loop while accept fails (CPU in 1.5 s)", "< 0.5 s", "%.2f" % used)
    for s in hogs:
        s.close()
    time.sleep(1.0)
    st, _ = try_get(ctx, "/after")
    eq(st, 200, "served again once descriptors are free")
    check(px.alive(), "rproxy still running", "alive", "exited")


def slow_echo(conn, req):
    time.sleep(0.4)
    return echo(conn, req)


@test("exhaustion: idle pooled connections to one device never starve another device "
      "(4-slot build: 4 idle to A, then B still gets a connection)", serial=True, timeout=30)
def t_fault_idle_pool_starvation(ctx):
    need_small()
    a = ctx.device(slow_echo)
    b = ctx.device()
    ctx.start(pools=["pool a", "device a %s" % a.addr, "pool b", "device b %s" % b.addr],
              routes=["route path=/b pool=b", "route pool=a"], binary=RPROXY_SMALL)
    clients = [ctx.client(timeout=5) for _ in range(4)]
    for i, c in enumerate(clients):          # 4 requests at once: 4 device connections to A
        c.send(req_bytes("GET", "/a%d" % i))
    for i, c in enumerate(clients):
        eq(c.read_response(timeout=5).status, 200, "request %d to A" % i)
    eq(a.conns, 4, "device A connections (now idle in A's pool)")
    st, c = try_get(ctx, "/b")
    eq(st, 200, "a request for B while A's idle connections hold every device slot")
    eq(len(b.requests), 1, "requests at B")

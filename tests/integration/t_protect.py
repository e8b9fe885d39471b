"""t_protect.py -- protecting small devices (issue 14 items 1-2, RP_ENABLE_LIMITS): a device's
max_conns / max_idle, the pool's bounded FIFO queue (queue= / queue_timeout=), hand-off to
whichever device frees first, 503 on a full queue or after queue_timeout (Retry-After), a
queued client that vanishes, health probes within max_conns, retries of a dispatched queued
request, the status page (JSON and Prometheus) and the config errors on the small build.

The devices are real servers on loopback; `single=True` ones serve one connection at a time
(a second one is closed at once) and record the most connections ever open at once.
"""

import json
import re
import threading
import time

from checks import check, dev_info, eq, fail, req_bytes, test
from devserver import echo, response
from harness import RPROXY_SMALL, Closed

STATUS = "status path=/status"


# ==== helpers ====

def one(ctx, path="/", timeout=8.0):
    """GET path on a fresh connection (Connection: close); returns the Response."""
    c = ctx.client(timeout=timeout)
    c.send(req_bytes("GET", path, headers=[("Connection", "close")]))
    try:
        r = c.read_response(timeout=timeout)
    except Closed as e:
        fail("GET %s: closed without a response" % path, "a response", e.got[:200])
    c.close()
    return r


def status_json(ctx):
    r = one(ctx, "/status")
    eq(r.status, 200, "status page")
    return json.loads(r.body)


def pool_status(ctx, name="p"):
    for pl in status_json(ctx)["pools"]:
        if pl["name"] == name:
            return pl
    fail("pool %s not on the status page" % name)


def dev_status(pl, addr):
    for d in pl["devices"]:
        if d["addr"] == addr:
            return d
    fail("device %s not on the status page" % addr)


def wait_pool(ctx, pred, what, timeout=5.0):
    end = time.monotonic() + timeout
    pl = None
    while time.monotonic() < end:
        pl = pool_status(ctx)
        if pred(pl):
            return pl
        time.sleep(0.03)
    fail(what, "within %.1f s" % timeout, pl)


def slow_echo(conn, req):
    time.sleep(0.02)
    return echo(conn, req)


def gated(conn, req):
    """Echo once the test releases one request of this device (state["sem"])."""
    if req.target == "/status" or req.get("User-Agent") == "rproxy-health":
        return echo(conn, req)
    if not conn.dev.state["sem"].acquire(timeout=15):
        return False
    return echo(conn, req)


def gated_dev(ctx, name="dev", **kw):
    d = ctx.device(gated, name=name, **kw)
    d.state["sem"] = threading.Semaphore(0)
    return d


def send(ctx, path):
    c = ctx.client(timeout=10)
    c.send(req_bytes("GET", path, headers=[("Connection", "close")]))
    return c


def burst(ctx, n, path="/b"):
    """n concurrent clients, one GET each; returns their statuses (or the error text)."""
    out = [None] * n

    def run(i):
        try:
            out[i] = one(ctx, "%s%d" % (path, i), timeout=15).status
        except Exception as e:       # noqa: BLE001
            out[i] = repr(e)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    return out


def pool_conf(devs, dev_opts, pool_opts):
    return ["pool p " + pool_opts] + ["device p %s %s" % (d.addr, dev_opts) for d in devs]


# ==== tests ====

@test("limits control: without max_conns, 30 concurrent clients make a one-socket device "
      "see more than one connection (what the next test guards against)")
def t_protect_control(ctx):
    dev = ctx.device(slow_echo, single=True)
    ctx.start(devices=[dev])
    burst(ctx, 30)
    check(dev.max_live > 1 or dev.refused > 0, "the unprotected device is overrun",
          "max_live > 1", (dev.max_live, dev.refused))


@test("max_conns=1 queue=50: 30 concurrent clients all get 200 from a one-socket device, "
      "which never sees 2 connections at once; status: queued_peak > 1, nothing left queued",
      timeout=40)
def t_protect_queue_serial(ctx):
    dev = ctx.device(slow_echo, single=True)
    ctx.start(ctx.config(pools=pool_conf([dev], "max_conns=1", "queue=50"), extra=STATUS))
    st = burst(ctx, 30)
    eq(st, [200] * 30, "statuses of the 30 clients")
    eq(dev.max_live, 1, "most connections the device saw at once")
    eq(dev.refused, 0, "connections the device had to refuse")
    eq(len(dev.requests), 30, "requests at the device")
    pl = pool_status(ctx)
    check(pl["queued_peak"] > 1, "requests waited in the queue", "> 1", pl["queued_peak"])
    eq((pl["queue_max"], pl["queued"], pl["queue_timeouts"], pl["queue_full"]),
       (50, 0, 0, 0), "queue_max, queued, queue_timeouts, queue_full")
    d = dev_status(pl, dev.addr)
    eq((d["max_conns"], d["active"]), (1, 0), "device max_conns, active")
    check(d["idle"] <= 1, "idle within max_conns", "<= 1", d["idle"])


@test("max_conns=1 on 2 devices: a queued request goes to whichever device frees first")
def t_protect_handoff(ctx):
    a, b = gated_dev(ctx, "a"), gated_dev(ctx, "b")
    ctx.start(ctx.config(pools=pool_conf([a, b], "max_conns=1", "queue=10"), extra=STATUS))
    c1, c2 = send(ctx, "/r1"), send(ctx, "/r2")
    check(a.wait_requests(1) and b.wait_requests(1), "one request at each device", "1 + 1",
          (a.paths(), b.paths()))
    c3 = send(ctx, "/r3")
    wait_pool(ctx, lambda pl: pl["queued"] == 1, "r3 queued")
    b.state["sem"].release()                   # b frees first
    check(b.wait_requests(2, 3), "the queued request goes to b, freed first",
          "2 requests at b", (a.paths(), b.paths()))
    eq(len(a.requests), 1, "requests at the still-busy device a")
    b.state["sem"].release()
    a.state["sem"].release()
    for c in (c1, c2, c3):
        r = c.read_response()
        eq(r.status, 200, "status")
    eq(dev_info(r)["device"], "b", "r3 served by the device that freed first")
    eq(pool_status(ctx)["queued"], 0, "queued after the hand-off")


@test("max_conns=1 queue=2: the third waiting request gets 503 at once (queue_full counted, "
      "Prometheus too); the others are served")
def t_protect_queue_full(ctx):
    dev = gated_dev(ctx)
    ctx.start(ctx.config(pools=pool_conf([dev], "max_conns=1", "queue=2"), extra=STATUS))
    c1 = send(ctx, "/r1")
    check(dev.wait_requests(1), "r1 at the device")
    c2 = send(ctx, "/r2")
    wait_pool(ctx, lambda pl: pl["queued"] == 1, "r2 queued")
    c3 = send(ctx, "/r3")
    wait_pool(ctx, lambda pl: pl["queued"] == 2, "r3 queued")
    t0 = time.monotonic()
    r = one(ctx, "/r4")
    eq(r.status, 503, "status with the queue full")
    check(time.monotonic() - t0 < 2.0, "503 at once, not after queue_timeout", "< 2 s",
          time.monotonic() - t0)
    pl = pool_status(ctx)
    eq((pl["queued"], pl["queued_peak"], pl["queue_full"], pl["queue_timeouts"]), (2, 2, 1, 0),
       "queued, queued_peak, queue_full, queue_timeouts")
    prom = one(ctx, "/status?format=prometheus").body.decode()
    for want in ('rproxy_pool_queued{pool="p"} 2', 'rproxy_pool_queued_peak{pool="p"} 2',
                 'rproxy_pool_queue_full_total{pool="p"} 1',
                 'rproxy_pool_queue_timeouts_total{pool="p"} 0'):
        check(want in prom.splitlines(), "Prometheus sample", want, prom[-800:])
    check(re.search(r'^rproxy_device_max_connections\{[^}]*\} 1$', prom, re.M),
          "rproxy_device_max_connections 1", "a sample", prom[-800:])
    check(re.search(r'^rproxy_device_active_connections\{[^}]*\} 1$', prom, re.M),
          "the device's busy connection in Prometheus", "1", prom[-800:])
    for _ in range(3):
        dev.state["sem"].release()
    for c in (c1, c2, c3):
        eq(c.read_response().status, 200, "status of a request that waited")
    eq(dev.paths(), ["/r1", "/r2", "/r3"], "device order (FIFO)")


@test("queue_timeout=300: a request waiting longer gets 503 with Retry-After and never "
      "reaches the device")
def t_protect_queue_timeout(ctx):
    dev = gated_dev(ctx)
    ctx.start(ctx.config(pools=pool_conf([dev], "max_conns=1", "queue=5 queue_timeout=300"),
                         extra=STATUS))
    c1 = send(ctx, "/r1")
    check(dev.wait_requests(1), "r1 at the device")
    t0 = time.monotonic()
    r = one(ctx, "/r2")
    took = time.monotonic() - t0
    eq(r.status, 503, "status after queue_timeout")
    check(r.get("Retry-After") is not None, "Retry-After on the 503", "a header", r.head_raw)
    check(took >= 0.25, "waited about queue_timeout", ">= 0.25 s", took)
    pl = pool_status(ctx)
    eq((pl["queued"], pl["queue_timeouts"], pl["queue_full"]), (0, 1, 0),
       "queued, queue_timeouts, queue_full")
    dev.state["sem"].release()
    eq(c1.read_response().status, 200, "r1")
    eq(dev.paths(), ["/r1"], "the device never saw r2")


@test("a queued client that vanishes leaves the queue: the next one is served, the device "
      "never sees the vanished request, counters right")
def t_protect_vanish(ctx):
    dev = gated_dev(ctx)
    ctx.start(ctx.config(pools=pool_conf([dev], "max_conns=1", "queue=5"), extra=STATUS))
    c1 = send(ctx, "/r1")
    check(dev.wait_requests(1), "r1 at the device")
    c2 = send(ctx, "/gone")
    wait_pool(ctx, lambda pl: pl["queued"] == 1, "/gone queued")
    c3 = send(ctx, "/r3")
    wait_pool(ctx, lambda pl: pl["queued"] == 2, "/r3 queued")
    c2.close()
    wait_pool(ctx, lambda pl: pl["queued"] == 1, "the vanished client left the queue")
    dev.state["sem"].release()
    dev.state["sem"].release()
    eq(c1.read_response().status, 200, "r1")
    eq(c3.read_response().status, 200, "r3, queued behind the vanished one")
    eq(dev.paths(), ["/r1", "/r3"], "requests at the device")
    pl = pool_status(ctx)
    eq((pl["queued"], pl["queued_peak"], pl["queue_timeouts"], pl["queue_full"]),
       (0, 2, 0, 0), "queued, queued_peak, queue_timeouts, queue_full")
    eq(dev_status(pl, dev.addr)["active"], 0, "device active")
    check(ctx.proxy.alive(), "rproxy still running", "alive", "exited")


@test("max_idle=1 max_conns=4: after 4 parallel exchanges the device sees 3 of its "
      "connections closed and 1 kept idle")
def t_protect_max_idle(ctx):
    dev = gated_dev(ctx)
    ctx.start(ctx.config(pools=pool_conf([dev], "max_conns=4 max_idle=1", ""), extra=STATUS))
    cs = [send(ctx, "/r%d" % i) for i in range(4)]
    check(dev.wait_requests(4), "4 requests at the device at once", 4, dev.paths())
    eq(dev.conns, 4, "device connections")
    for _ in range(4):
        dev.state["sem"].release()
    for c in cs:
        eq(c.read_response().status, 200, "status")
    check(dev.wait_for(lambda d: d.eofs >= 3, 3), "3 device connections closed by rproxy",
          3, dev.eofs)
    time.sleep(0.3)
    eq(dev.eofs, 3, "connections closed (one kept idle)")
    d = dev_status(pool_status(ctx), dev.addr)
    eq((d["idle"], d["max_idle"], d["max_conns"]), (1, 1, 4), "idle, max_idle, max_conns")
    r = one(ctx, "/after")
    dev.state["sem"].release()
    eq(dev.conns, 4, "the idle one reused (no new connection)")


def close_echo(conn, req):
    """Like a device that closes after every response (Connection: close); a probe
    takes 80 ms (so requests arrive while it holds the one socket)."""
    time.sleep(0.08 if req.target == "/health" else 0.01)
    body = b"ok"
    conn.send(response(200, headers=[("Connection", "close")], body=body))
    return False


@test("health probes count toward max_conns=1: a one-socket device with probes every "
      "100 ms and queued traffic never sees 2 connections", timeout=30)
def t_protect_health(ctx):
    dev = ctx.device(close_echo, single=True)
    ctx.start(ctx.config(pools=pool_conf([dev], "max_conns=1", "queue=20"),
                         extra="health p path=/health interval=100 timeout=500\n" + STATUS))
    end = time.monotonic() + 3.0
    bad = []
    while time.monotonic() < end:
        st = burst(ctx, 3)
        bad += [s for s in st if s != 200]
        time.sleep(0.17)                        # traffic pauses past interval: probes run
    probes = sum(1 for q in dev.requests if q.target == "/health")
    check(probes >= 3, "probes ran between the requests", ">= 3", probes)
    eq(bad, [], "statuses other than 200")
    eq(dev.max_live, 1, "most connections the device saw at once")
    eq(dev.refused, 0, "connections refused by the device")


def drop_first_r2(conn, req):
    """Hold /r1 until released; drop the connection on the first /r2 without answering."""
    st = conn.dev.state
    if req.target == "/r1":
        st["sem"].acquire(timeout=15)
    elif req.target == "/r2" and not st.get("dropped"):
        st["dropped"] = True
        conn.close()
        return False
    return echo(conn, req)


@test("a queued request, once dispatched, is still retried (device drops it: retried on "
      "a fresh connection, 200)")
def t_protect_retry(ctx):
    dev = ctx.device(drop_first_r2)
    dev.state["sem"] = threading.Semaphore(0)
    ctx.start(ctx.config(pools=pool_conf([dev], "max_conns=1", "queue=5 retries=2"),
                         extra=STATUS))
    c1 = ctx.client(timeout=10)
    c1.send(req_bytes("GET", "/r1"))            # keep-alive: its device connection goes idle
    check(dev.wait_requests(1), "r1 at the device")
    c2 = send(ctx, "/r2")
    wait_pool(ctx, lambda pl: pl["queued"] == 1, "r2 queued")
    dev.state["sem"].release()
    eq(c1.read_response().status, 200, "r1")
    r = c2.read_response()
    eq(r.status, 200, "r2 after the device dropped its first attempt")
    eq(dev.paths(), ["/r1", "/r2", "/r2"], "requests at the device (r2 retried)")
    eq(dev_info(r)["conn"], 1, "retried on a fresh connection")
    eq(dev.max_live, 1, "never 2 connections at once")


@test("small build: max_conns above RP_MAX_UPSTREAM and queue above RP_MAX_CONNS are config "
      "errors naming the setting")
def t_protect_small_config(ctx):
    import subprocess
    for line, want in (("device p 127.0.0.1:9 max_conns=5", "RP_MAX_UPSTREAM"),
                       ("pool q queue=9", "RP_MAX_CONNS")):
        path = ctx.path("bad.conf")
        with open(path, "w") as f:
            f.write("listen 127.0.0.1:1\npool p\n%s\nroute pool=p\n" % line)
        p = subprocess.run([RPROXY_SMALL, "-t", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        err = p.stderr.decode()
        check(p.returncode != 0 and want in err and "bad.conf:3" in err,
              "config error for %r" % line, "bad.conf:3 ... %s" % want, (p.returncode, err))


@test("small build (RP_MAX_UPSTREAM=4): 8 concurrent clients to a slow device, queue=8 -> "
      "all 200 (they wait for a device slot instead of 503), the device never sees > 4",
      timeout=30)
def t_protect_small_slots(ctx):
    dev = ctx.device(slow_echo)
    ctx.start(ctx.config(pools=pool_conf([dev], "", "queue=8")), binary=RPROXY_SMALL)
    st = burst(ctx, 8)
    eq(st, [200] * 8, "statuses of the 8 clients")
    check(dev.max_live <= 4, "device connections within RP_MAX_UPSTREAM", "<= 4", dev.max_live)

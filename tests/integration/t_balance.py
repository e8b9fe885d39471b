"""t_balance.py -- integration tests for issue 3: weighted balancing, passive and
active health, retries, backups, the status page and their config errors.

Listed in run.py's TOPICS.  Every test runs the real daemon
against real device servers on loopback; devices name themselves in the
X-Device response header (devserver.echo), so the tests see which device
answered each request.
"""

import json
import re
import socket
import threading
import time

from checks import check, eq, fail, req_bytes, short, test
from devserver import echo, response
from harness import RPROXY, Closed, free_port

STATUS = "status path=/status"


# ==== helpers ====

def one(ctx, method="GET", path="/", port=None, body=b"", headers=(), timeout=5.0):
    """One request on a fresh connection; returns the Response (fails on a
    connection closed without a response)."""
    c = ctx.client(port=port)
    c.send(req_bytes(method, path, headers=list(headers) + [("Connection", "close")],
                     body=body))
    try:
        r = c.read_response(method=method, timeout=timeout)
    except Closed as e:
        fail("%s %s: connection closed without a response" % (method, path), "a response",
             short(e.got))
    except socket.timeout:
        fail("%s %s: no response within %.1f s" % (method, path, timeout), "a response",
             short(c.buf))
    c.close()
    return r


def ka(c, path, method="GET", body=b""):
    """One request on the keep-alive client c; returns the Response."""
    c.send(req_bytes(method, path, body=body))
    try:
        return c.read_response(method=method)
    except Closed as e:
        fail("%s %s on a keep-alive connection: closed without a response" % (method, path),
             "a response", short(e.got))


def status_raw(ctx, query="", port=None, method="GET", body=b""):
    return one(ctx, method, "/status" + query, port=port, body=body)


def status_json(ctx, port=None):
    r = status_raw(ctx, port=port)
    eq(r.status, 200, "status page status")
    try:
        return json.loads(r.body)
    except ValueError as e:
        fail("status JSON does not parse (%s)" % e, "JSON", short(r.body, 800))


def dev_status(js, addr, pool=None):
    seen = []
    for pl in js.get("pools", []):
        for d in pl.get("devices", []):
            seen.append((pl.get("name"), d.get("addr")))
            if d.get("addr") == addr and (pool is None or pl.get("name") == pool):
                return d
    fail("device %s (pool %s) not in the status page" % (addr, pool), addr, seen)


def real(devs):
    """Requests the devices saw, probes (User-Agent: rproxy-health) left out."""
    n = 0
    for d in devs:
        with d.lock:
            n += sum(1 for q in d.requests if q.get("User-Agent") != "rproxy-health")
    return n


def who(r):
    return r.get("X-Device")


def wait_until(pred, timeout, step=0.03):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return v
        time.sleep(step)


def non_health(dev, path="/health"):
    with dev.lock:
        return [r.target for r in dev.requests if r.target != path]


# =====================================================================
# 1. smooth weighted round-robin
# =====================================================================

@test("balance: weights 5:1:1 -> picks a a b a c a a per cycle, 700 requests = 500/100/100")
def t_bal_swrr(ctx):
    a, b, c = ctx.device(name="a"), ctx.device(name="b"), ctx.device(name="c")
    ctx.start(ctx.config(pools=["pool p", "device p %s weight=5" % a.addr,
                                "device p %s weight=1" % b.addr,
                                "device p %s weight=1" % c.addr]))
    cl = ctx.client()
    seq = []
    for i in range(700):
        r = ka(cl, "/w%d" % i)
        eq(r.status, 200, "status of request %d" % i)
        eq(r.get("X-Echo-Target"), "/w%d" % i, "response %d is for its request" % i)
        seq.append(who(r))
    eq(seq[:7], list("aabacaa"), "first 7 picks (nginx smooth WRR)")
    off = [(k, seq[k]) for k in range(7, 700) if seq[k] != seq[k % 7]]
    check(not off, "every later 7-request cycle repeats a a b a c a a", "no deviation",
          off[:10])
    eq([seq.count(n) for n in "abc"], [500, 100, 100], "responses per device")
    eq([len(d.requests) for d in (a, b, c)], [500, 100, 100], "requests seen by devices")
    for d in (a, b, c):   # the header told the truth: each device got exactly its paths
        want = sorted("/w%d" % k for k in range(700) if seq[k] == d.name)
        eq(sorted(d.paths()), want, "paths seen by device %s" % d.name)


# =====================================================================
# 2. a device dies while three serve
# =====================================================================

def warm(conn, req):
    if req.target.startswith("/warm"):
        time.sleep(0.15)      # overlap: several device connections per device
    return echo(conn, req)


@test("balance: device killed (listener + open/pooled connections) -> 100 GETs all 200",
      timeout=30)
def t_bal_kill(ctx):
    devs = [ctx.device(warm, name=n) for n in ("a", "b", "c")]
    a, b, c = devs
    ctx.start(ctx.config(pools=["pool p"] + ["device p %s" % d.addr for d in devs],
                         extra=STATUS))
    # 6 concurrent keep-alive clients: 2 overlapping requests per device, so every
    # device ends with 2 pooled (idle keep-alive) connections
    clients = [ctx.client() for _ in range(6)]
    for k, cl in enumerate(clients):
        cl.send(req_bytes("GET", "/warm%d" % k))
    for k, cl in enumerate(clients):
        r = cl.read_response()
        eq(r.status, 200, "warm-up %d" % k)
    eq(sorted(len(d.requests) for d in devs), [2, 2, 2], "warm-up spread")
    js = status_json(ctx)
    bs = dev_status(js, b.addr)
    check(bs["idle"] >= 2, "b has pooled idle connections before the kill", ">= 2",
          bs)
    before = {d.name: len(d.requests) for d in devs}
    b.stop()     # listener closed, every open connection (the pooled ones) shut down
    got = []
    for i in range(100):
        if i % 3 == 0:
            r = one(ctx, "GET", "/after%d" % i)                   # fresh client connection
        else:
            r = ka(clients[i % len(clients)], "/after%d" % i)    # keep-alive clients
        eq(r.status, 200, "GET %d after the kill" % i)
        eq(r.get("X-Echo-Target"), "/after%d" % i, "response %d is for its request" % i)
        got.append(who(r))
    check(set(got) <= {"a", "c"}, "only the live devices answer", "a, c", sorted(set(got)))
    eq(len(a.requests) - before["a"] + len(c.requests) - before["c"], 100,
       "requests reaching the live devices (none lost, none doubled)")
    check(got.count("a") >= 30 and got.count("c") >= 30, "load shared by a and c",
          ">= 30 each", (got.count("a"), got.count("c")))
    bs = dev_status(status_json(ctx), b.addr)
    eq(bs["state"], "down", "killed device in the status page")
    check(bs["last_failure"] != "", "last_failure set", "a reason", bs)


# =====================================================================
# 3. a device that accepts and hangs
# =====================================================================

def hang_dev(conn, req):
    while not conn.dev.stopping:
        time.sleep(0.02)
    return False


@test("balance: device accepts and hangs -> 504 only after timeout device=500, marked down, "
      "traffic moves to the other device", serial=True)
def t_bal_hang(ctx):
    h = ctx.device(hang_dev, name="hang")
    g = ctx.device(name="good")
    ctx.start(ctx.config(pools=["pool p", "device p %s" % h.addr, "device p %s" % g.addr],
                         timeouts={"device": 500}, extra=STATUS))
    c = ctx.client()
    t0 = time.monotonic()
    c.send(req_bytes("GET", "/first"))
    try:
        r = c.read_response(timeout=5)
    except Closed as e:
        fail("closed without a response", 504, short(e.got))
    dt = time.monotonic() - t0
    eq(r.status, 504, "status for the hanging device (first pick)")
    eq(len(h.requests), 1, "the request reached the hanging device")
    eq(len(g.requests), 0, "a timed-out request is not replayed on the other device")
    check(dt >= 0.5, "504 not before timeout device=500", ">= 0.500 s", "%.3f s" % dt)
    check(dt < 1.5, "504 soon after the timeout", "< 1.5 s", "%.3f s" % dt)
    js = status_json(ctx)
    hs, gs = dev_status(js, h.addr), dev_status(js, g.addr)
    eq(hs["state"], "down", "hanging device state")
    check(hs["last_failure"] not in ("", None), "hanging device last_failure", "a reason", hs)
    check("time" in hs["last_failure"].lower(), "last_failure names the timeout",
          "timed out", hs["last_failure"])
    check(hs["failures"] >= 1, "hanging device failures", ">= 1", hs["failures"])
    eq((hs["weight"], hs["effective_weight"]), (1, 0),
       "hanging device (weight, effective_weight) after a failure (drops by weight/max_fails)")
    eq(gs["state"], "up", "good device state")
    for i in range(10):
        r = one(ctx, "GET", "/next%d" % i)
        eq(r.status, 200, "request %d after the timeout" % i)
        eq(who(r), "good", "request %d goes to the other device" % i)
    eq(len(h.requests), 1, "the hanging device got nothing more")


# =====================================================================
# 4. backups take over and hand back
# =====================================================================

@test("balance: backup serves while both primaries are stopped; restarted primaries take "
      "traffic back after fail_timeout=1, backup then gets none", serial=True, timeout=30)
def t_bal_backup(ctx):
    p1, p2 = ctx.device(name="p1"), ctx.device(name="p2")
    bk = ctx.device(name="bk")
    ctx.start(ctx.config(pools=["pool p",
                                "device p %s max_fails=1 fail_timeout=1" % p1.addr,
                                "device p %s max_fails=1 fail_timeout=1" % p2.addr,
                                "device p %s backup" % bk.addr], extra=STATUS))
    got = [who(one(ctx, "GET", "/up%d" % i)) for i in range(6)]
    eq(sorted(got), ["p1", "p1", "p1", "p2", "p2", "p2"], "primaries share, backup idle")
    eq(len(bk.requests), 0, "backup requests while primaries are up")
    eq(dev_status(status_json(ctx), bk.addr)["state"], "backup", "backup's state")
    p1.stop()
    p2.stop()
    t_end = time.monotonic() + 2.3        # spans two fail_timeout expiries
    n = 0
    while time.monotonic() < t_end:
        r = one(ctx, "GET", "/down%d" % n)
        eq(r.status, 200, "request %d with both primaries stopped" % n)
        eq(who(r), "bk", "request %d served by the backup" % n)
        n += 1
        time.sleep(0.1)
    js = status_json(ctx)
    eq([dev_status(js, d.addr)["state"] for d in (p1, p2)], ["down", "down"],
       "stopped primaries' state")
    # skipped for fail_timeout=1 after each failure, tried again when it ran out:
    # tried at ~0, ~1 and ~2 s -- not on each of the ~20 requests
    fl = [dev_status(js, d.addr)["failures"] for d in (p1, p2)]
    check(all(2 <= f <= 4 for f in fl), "stopped primaries tried once per fail_timeout "
          "(%d requests in 2.3 s)" % n, "2..4 failures each", fl)
    # restart both primaries on their ports
    q1 = ctx.device(name="p1", port=p1.port)
    q2 = ctx.device(name="p2", port=p2.port)
    t_restart = time.monotonic()
    back = None
    k = 0
    while time.monotonic() - t_restart < 3.0:
        r = one(ctx, "GET", "/back%d" % k)
        eq(r.status, 200, "request %d after the restart" % k)
        k += 1
        if who(r) in ("p1", "p2"):
            back = time.monotonic() - t_restart
            break
        eq(who(r), "bk", "request %d after the restart" % k)
        time.sleep(0.05)
    check(back is not None, "a restarted primary takes traffic within fail_timeout + 2 s",
          "p1 or p2", "only the backup for 3 s")
    check(back <= 1.3, "primaries back within fail_timeout=1 of the restart", "<= 1.3 s",
          "%.2f s" % back)
    bk_before = len(bk.requests)
    got = [who(one(ctx, "GET", "/again%d" % i)) for i in range(20)]
    eq(len(bk.requests) - bk_before, 0, "backup requests once the primaries are back")
    check(set(got) == {"p1", "p2"}, "both primaries serve again", "p1 and p2",
          sorted(set(got)))
    check(min(got.count("p1"), got.count("p2")) >= 8, "primaries share the load",
          ">= 8 of 20 each", (got.count("p1"), got.count("p2")))
    check(len(q1.requests) + len(q2.requests) >= 20, "restarted devices saw the requests",
          ">= 20", len(q1.requests) + len(q2.requests))
    js = status_json(ctx)
    eq([dev_status(js, d.addr)["state"] for d in (p1, p2, bk)], ["up", "up", "backup"],
       "states after the hand-back")


# =====================================================================
# 5. active health
# =====================================================================

def health_device(conn, req):
    """/health answers st["code"] (after 30 ms, to make overlapping probes visible);
    anything else is echoed."""
    st = conn.dev.state
    if req.target != "/health":
        return echo(conn, req)
    with st["lock"]:
        st["inflight"] += 1
        st["max_inflight"] = max(st["max_inflight"], st["inflight"])
        code = st["code"]
    time.sleep(0.03)
    try:
        conn.send(response(code, body="health %d\n" % code))
    finally:
        with st["lock"]:
            st["inflight"] -= 1
            st["probes"].append((time.monotonic(), code, req))
    return False


def health_dev(ctx, name, code=200):
    d = ctx.device(health_device, name=name)
    d.state.update(lock=threading.Lock(), inflight=0, max_inflight=0, code=code, probes=[])
    return d


def answered(d, code):
    with d.state["lock"]:
        return sum(1 for _, c, _ in d.state["probes"] if c == code)


def probe_times(d, t0, t1):
    with d.state["lock"]:
        return [t for t, _, _ in d.state["probes"] if t0 <= t < t1]


@test("health: 500 on /health -> down after fall=3 probes, no traffic; 200 -> up after "
      "rise=2; probes spaced by interval=200, one at a time", serial=True, timeout=30)
def t_health_down_up(ctx):
    s = health_dev(ctx, "sick", code=500)
    h = health_dev(ctx, "healthy", code=200)
    ctx.start(ctx.config(pools=["pool p", "device p %s" % s.addr, "device p %s" % h.addr],
                         extra="health p path=/health interval=200 timeout=500 rise=2 fall=3\n"
                               + STATUS))
    # -- down: never before `fall` failed probes
    t0 = time.monotonic()
    went_down = None
    while time.monotonic() - t0 < 4.0:
        js = status_json(ctx)
        n500 = answered(s, 500)                       # read after the page was written
        ss, hs = dev_status(js, s.addr), dev_status(js, h.addr)
        eq(hs["health"], "up", "healthy device's health")
        if ss["health"] == "down":
            check(n500 >= 3, "down only after fall=3 failed probes", ">= 3 probes answered 500",
                  n500)
            check(ss["probe_failures"] >= 3, "probe_failures when down", ">= 3", ss)
            eq(ss["state"], "down", "state of a device health says is down")
            went_down = time.monotonic() - t0
            break
        eq(ss["health"], "up", "sick device's health before fall probes")
        time.sleep(0.03)
    check(went_down is not None, "sick device marked down by health probes", "down in 4 s",
          "still up")
    check(went_down < 2.0, "down within ~fall x interval", "< 2 s", "%.2f s" % went_down)
    # -- no traffic to it while down
    got = [who(one(ctx, "GET", "/t%d" % i)) for i in range(10)]
    eq(got, ["healthy"] * 10, "devices serving while sick is down")
    eq(non_health(s), [], "requests other than probes at the sick device")
    # -- probes spaced, bounded, one at a time (sick: down, probed; healthy: up, idle)
    w0 = time.monotonic()
    time.sleep(2.0)
    w1 = time.monotonic()
    for d in (s, h):
        ts = probe_times(d, w0, w1)
        expect = (w1 - w0) / 0.2
        check(0.5 * expect <= len(ts) <= expect + 1, "probes at %s over %.1f s" % (d.name,
              w1 - w0), "about %.0f (interval=200)" % expect, len(ts))
        gaps = [round(y - x, 3) for x, y in zip(ts, ts[1:])]
        check(not gaps or min(gaps) >= 0.18, "probe spacing at %s" % d.name,
              ">= interval (0.2 s)", gaps)
        eq(d.state["max_inflight"], 1, "concurrent probes at %s (max)" % d.name)
    # the probe request itself
    with s.state["lock"]:
        req = s.state["probes"][0][2]
    eq(req.head_raw.split(b"\r\n")[0], b"GET /health HTTP/1.1", "probe request line")
    eq(req.get_all("Host"), [s.addr], "probe Host")
    eq(req.get_all("User-Agent"), ["rproxy-health"], "probe User-Agent")
    eq([v.lower() for v in req.get_all("Connection")], ["close"], "probe Connection")
    # -- up: never before `rise` passed probes
    with s.state["lock"]:
        s.state["code"] = 200
    n200_0 = answered(s, 200)
    t0 = time.monotonic()
    came_up = None
    while time.monotonic() - t0 < 4.0:
        js = status_json(ctx)
        n200 = answered(s, 200) - n200_0
        ss = dev_status(js, s.addr)
        if ss["health"] == "up":
            check(n200 >= 2, "up only after rise=2 passed probes", ">= 2 probes answered 200",
                  n200)
            eq(ss["state"], "up", "state once health is up")
            came_up = time.monotonic() - t0
            break
        time.sleep(0.03)
    check(came_up is not None, "sick device back up after passing probes", "up in 4 s",
          "still down")
    check(came_up < 1.5, "up within ~rise x interval", "< 1.5 s", "%.2f s" % came_up)
    got = [who(one(ctx, "GET", "/u%d" % i)) for i in range(10)]
    eq(sorted(got), ["healthy"] * 5 + ["sick"] * 5, "traffic split after recovery")


@test("health: no probes while real traffic vouches for the devices; probes resume after",
      serial=True)
def t_health_quiet(ctx):
    a, b = health_dev(ctx, "a"), health_dev(ctx, "b")
    ctx.start(ctx.config(pools=["pool p", "device p %s" % a.addr, "device p %s" % b.addr],
                         extra="health p path=/health interval=300 timeout=500"))
    c = ctx.client()
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 1.8:     # each device answers every ~100 ms
        eq(ka(c, "/busy%d" % i).status, 200, "traffic request %d" % i)
        i += 1
        time.sleep(0.05)
    t1 = time.monotonic()
    for d in (a, b):
        ts = probe_times(d, t0 + 0.5, t1)   # the start-up probes come first
        eq(len(ts), 0, "probes at %s while traffic answered within the interval" % d.name)
        check(len(non_health(d)) >= 5, "%s took traffic" % d.name, ">= 5", len(non_health(d)))
    time.sleep(1.2)
    for d in (a, b):
        n = len(probe_times(d, t1, time.monotonic()))
        check(1 <= n <= 5, "probes at %s once traffic stopped (1.2 s, interval=300)" % d.name,
              "1..5", n)


# =====================================================================
# 6. retries: POST is not replayed
# =====================================================================

def read_then_close(conn, req):
    """Read the whole request (the Device did) and close without answering."""
    conn.close()
    return False


@test("retries: device closes after reading -> POST (body, head only, empty) and PUT with "
      "a body get 502, never replayed; GET retried on the other device; connect-refused "
      "POST goes to the next device")
def t_bal_no_replay(ctx):
    cp, gp = ctx.device(read_then_close, name="closer-post"), ctx.device(name="good-post")
    cu, gu = ctx.device(read_then_close, name="closer-put"), ctx.device(name="good-put")
    cg, gg = ctx.device(read_then_close, name="closer-get"), ctx.device(name="good-get")
    ch = ctx.device(read_then_close, name="closer-head", read_body=False)
    gh = ctx.device(name="good-head")
    ce, ge = ctx.device(read_then_close, name="closer-empty"), ctx.device(name="good-empty")
    gr = ctx.device(name="good-refused")
    refused = "127.0.0.1:%d" % free_port()
    ctx.start(ctx.config(
        pools=["pool pp", "device pp %s" % cp.addr, "device pp %s" % gp.addr,
               "pool pu", "device pu %s" % cu.addr, "device pu %s" % gu.addr,
               "pool pg", "device pg %s" % cg.addr, "device pg %s" % gg.addr,
               "pool pr", "device pr %s" % refused, "device pr %s" % gr.addr,
               "pool ph", "device ph %s" % ch.addr, "device ph %s" % gh.addr,
               "pool pe", "device pe %s" % ce.addr, "device pe %s" % ge.addr],
        routes=["route path=/post pool=pp", "route path=/put pool=pu",
                "route path=/hpost pool=ph", "route path=/epost pool=pe",
                "route path=/get pool=pg", "route path=/refused pool=pr"],
        extra=STATUS))
    payload = b"temperature=21.5&unit=C"
    # POST whose bytes reached the device
    r = one(ctx, "POST", "/post", body=payload)
    eq(r.status, 502, "POST after the device closed without answering")
    eq([(q.method, q.body) for q in cp.requests], [("POST", payload)],
       "the first device got the whole POST")
    eq([q.method for q in gp.requests], [], "requests at the other device (POST not replayed)")
    # POST whose head (only) reached the device, body not sent yet: no replay either
    c = ctx.client()
    c.send(req_bytes("POST", "/hpost", headers=[("Content-Length", str(len(payload)))]))
    check(ch.wait_requests(1, 3), "POST head reached the first device", "1 request",
          ch.paths())
    try:
        r = c.read_response(timeout=3)
    except Closed as e:
        fail("POST (head only at a device that closed): closed without a response", 502,
             short(e.got))
    eq(r.status, 502, "POST whose head reached a device that closed")
    time.sleep(0.1)
    eq([q.method for q in gh.requests], [], "requests at the other device (POST head not "
       "replayed)")
    # POST with an empty body: the whole request reached the device -> not replayed
    r = one(ctx, "POST", "/epost", headers=[("Content-Length", "0")])
    eq(r.status, 502, "empty POST after the device closed without answering")
    eq([q.method for q in ce.requests], ["POST"], "the first device got the empty POST")
    eq([q.method for q in ge.requests], [], "requests at the other device (empty POST not "
       "replayed)")
    # PUT with a body: idempotent, but its body was streamed -> not replayed either
    r = one(ctx, "PUT", "/put", body=payload)
    eq(r.status, 502, "PUT with a streamed body after the device closed")
    eq([q.method for q in cu.requests], ["PUT"], "the first device got the PUT")
    eq([q.method for q in gu.requests], [], "requests at the other device (PUT not replayed)")
    # GET in the same situation: retried on the other device
    r = one(ctx, "GET", "/get")
    eq(r.status, 200, "GET after the first device closed without answering")
    eq(who(r), "good-get", "GET answered by the other device")
    eq([q.target for q in cg.requests], ["/get"], "the first device got the GET")
    eq([q.target for q in gg.requests], ["/get"], "the other device got it once")
    # connect refused: nothing reached the device, so even a POST goes on
    r = one(ctx, "POST", "/refused", body=payload)
    eq(r.status, 200, "POST when the first device refuses the connection")
    eq(who(r), "good-refused", "POST answered by the next device")
    eq([(q.method, q.body) for q in gr.requests], [("POST", payload)],
       "the next device got the whole POST once")
    rs = dev_status(status_json(ctx), refused, pool="pr")
    check(rs["failures"] >= 1, "the refused device was tried first", "failures >= 1", rs)


# =====================================================================
# 7. leastconn
# =====================================================================

def slow_or_fast(conn, req):
    if "/slow" in req.target:
        time.sleep(1.2)
    return echo(conn, req)


@test("leastconn: a slow request in flight on a -> next requests go to b; weights count "
      "(active/weight); an idle backup gets nothing while busy primaries are up")
def t_bal_leastconn(ctx):
    a, b = ctx.device(slow_or_fast, name="a"), ctx.device(slow_or_fast, name="b")
    wa, wb = ctx.device(slow_or_fast, name="wa"), ctx.device(slow_or_fast, name="wb")
    wk = ctx.device(name="wk")
    ctx.start(ctx.config(
        pools=["pool eq balance=leastconn", "device eq %s" % a.addr, "device eq %s" % b.addr,
               "pool w balance=leastconn", "device w %s weight=2" % wa.addr,
               "device w %s weight=1" % wb.addr, "device w %s backup" % wk.addr],
        routes=["route path=/eq pool=eq", "route path=/w pool=w"], extra=STATUS))
    # equal weights: the slow one goes to a (tie -> SWRR order), the rest to b
    slow = ctx.client()
    slow.send(req_bytes("GET", "/eq/slow"))
    check(a.wait_requests(1, 3), "slow request reached a (first pick on a tie)", "a",
          (a.paths(), b.paths()))
    eq(dev_status(status_json(ctx), a.addr, pool="eq")["active"], 1,
       "status: a's active connections during the slow request")
    got = [who(one(ctx, "GET", "/eq/fast%d" % i)) for i in range(5)]
    eq(got, ["b"] * 5, "requests while a is busy (leastconn)")
    r = slow.read_response(timeout=5)
    eq((r.status, who(r)), (200, "a"), "the slow request's answer")
    # weights 2:1: slow on wa and on wb -> wa has 1/2, wb 1/1 -> wa takes the next ones
    s1 = ctx.client()
    s1.send(req_bytes("GET", "/w/slow1"))
    check(wa.wait_requests(1, 3), "first slow request to wa", "wa", (wa.paths(), wb.paths()))
    s2 = ctx.client()
    s2.send(req_bytes("GET", "/w/slow2"))
    check(wb.wait_requests(1, 3), "second slow request to wb (wa has one)", "wb",
          (wa.paths(), wb.paths()))
    got = [who(one(ctx, "GET", "/w/fast%d" % i)) for i in range(4)]
    eq(got, ["wa"] * 4, "requests with one in flight on each (1/2 < 1/1)")
    eq(len(wk.requests), 0, "backup requests while the primaries are up (only busy)")
    for cl, n in ((s1, "wa"), (s2, "wb")):
        r = cl.read_response(timeout=5)
        eq((r.status, who(r)), (200, n), "slow answer from %s" % n)


# =====================================================================
# 8. the status page
# =====================================================================

PROM_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                       r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                       r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*,?\})?'
                       r' ([-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|NaN|[-+]?Inf))'
                       r'(?: -?[0-9]+)?$')
PROM_TYPE = re.compile(r'^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|'
                       r'untyped)$')


def parse_prom(text):
    """Every line: '# TYPE', '# HELP', another comment, or name{labels} value."""
    samples, types, bad = [], {}, []
    for ln in text.split("\n"):
        if ln == "":
            continue
        if ln.startswith("#"):
            m = PROM_TYPE.match(ln)
            if ln.startswith("# TYPE"):
                if not m:
                    bad.append(ln)
                elif m.group(1) in types:
                    bad.append("duplicate TYPE: " + ln)
                else:
                    types[m.group(1)] = (m.group(2), len(samples))
            continue
        m = PROM_LINE.match(ln)
        if not m:
            bad.append(ln)
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                 m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples, types, bad


@test("status: JSON parses with every pool and device; Prometheus text parses; "
      "disallowed client -> 403 with nothing leaked; POST -> 405")
def t_status_page(ctx):
    a, b, c = ctx.device(name="a"), ctx.device(name="b"), ctx.device(name="c")
    off = "127.0.0.1:%d" % free_port()
    pools = ["pool p", "device p %s weight=5" % a.addr, "device p %s backup" % b.addr,
             "pool q balance=leastconn retries=3", "device q %s" % c.addr,
             "device q %s weight=0" % off]
    conf = ctx.config(pools=pools, routes=["route path=/q pool=q", "route pool=p"],
                      extra="health q path=/ interval=60000\n" + STATUS)
    ctx.start(conf)
    for i in range(3):
        eq(one(ctx, "GET", "/x%d" % i).status, 200, "traffic %d" % i)
    eq(one(ctx, "GET", "/q/y").status, 200, "traffic to q")
    r = status_raw(ctx)
    eq(r.status, 200, "status page")
    check((r.get("Content-Type") or "").startswith("application/json"), "JSON Content-Type",
          "application/json", r.get("Content-Type"))
    try:
        js = json.loads(r.body)
    except ValueError as e:
        fail("status JSON does not parse (%s)" % e, "JSON", short(r.body, 800))
    for k in ("version", "uptime_ms", "accepted", "pools"):
        check(k in js, "top-level key %s" % k, k, sorted(js))
    check(isinstance(js["uptime_ms"], int) and js["uptime_ms"] >= 0, "uptime_ms", "int >= 0",
          js["uptime_ms"])
    check(js["accepted"] >= 5, "accepted counts client connections", ">= 5", js["accepted"])
    eq([(p["name"], p["balance"], p["retries"]) for p in js["pools"]],
       [("p", "wrr", 2), ("q", "leastconn", 3)], "pools (name, balance, retries)")
    eq([[d["addr"] for d in p["devices"]] for p in js["pools"]],
       [[a.addr, b.addr], [c.addr, off]], "device addresses in config order")
    keys = {"addr", "state", "weight", "effective_weight", "active", "idle", "requests",
            "failures", "last_failure", "health", "probes", "probe_failures"}
    for p in js["pools"]:
        for d in p["devices"]:
            check(keys <= set(d), "device %s fields" % d["addr"], sorted(keys), sorted(d))
    da, db = dev_status(js, a.addr), dev_status(js, b.addr)
    dc, do = dev_status(js, c.addr), dev_status(js, off)
    eq([d["state"] for d in (da, db, dc, do)], ["up", "backup", "up", "disabled"], "states")
    eq([d["weight"] for d in (da, db, dc, do)], [5, 1, 1, 0], "weights")
    eq([d["requests"] for d in (da, db, dc)], [3, 0, 1], "requests per device")
    eq([d["failures"] for d in (da, db, dc)], [0, 0, 0], "failures")
    eq(da["last_failure"], "", "last_failure of a device that never failed")
    eq([d["health"] for d in (da, dc)], ["none", "up"], "health (none without a health line)")
    eq(da["effective_weight"], 5, "effective weight of a healthy device")
    # Prometheus
    r = status_raw(ctx, "?format=prometheus")
    eq(r.status, 200, "Prometheus page")
    check((r.get("Content-Type") or "").startswith("text/plain"), "Prometheus Content-Type",
          "text/plain; version=0.0.4", r.get("Content-Type"))
    text = r.body.decode("utf-8")
    check(text.endswith("\n"), "Prometheus text ends with a newline", "\\n", text[-40:])
    samples, types, bad = parse_prom(text)
    eq(bad, [], "Prometheus lines that do not parse")
    check(len(samples) >= 8 * 4, "Prometheus samples", ">= 32", len(samples))
    for name, (typ, first) in types.items():
        idx = [k for k, s in enumerate(samples) if s[0] == name]
        check(idx and idx[0] >= first, "samples of %s follow its TYPE line" % name,
              "after # TYPE", idx[:3])
        check(idx == list(range(idx[0], idx[0] + len(idx))), "samples of %s grouped" % name,
              "contiguous", idx)
    untyped = sorted({s[0] for s in samples} - set(types))
    eq(untyped, [], "metrics without a # TYPE line")
    up = {(s[1].get("pool"), s[1].get("device")): s[2] for s in samples
          if s[0] == "rproxy_device_up"}
    eq(up, {("p", a.addr): 1.0, ("p", b.addr): 1.0, ("q", c.addr): 1.0, ("q", off): 1.0},
       "rproxy_device_up samples")
    w = {s[1].get("device"): s[2] for s in samples if s[0] == "rproxy_device_weight"}
    eq(w, {a.addr: 5.0, b.addr: 1.0, c.addr: 1.0, off: 0.0}, "rproxy_device_weight")
    # HTTP/1.0 (close-delimited) page parses as well
    cl = ctx.client()
    cl.send(req_bytes("GET", "/status", version="HTTP/1.0"))
    r = cl.read_response(timeout=5)
    eq(r.status, 200, "status over HTTP/1.0")
    try:
        json.loads(r.body)
    except ValueError as e:
        fail("status JSON over HTTP/1.0 does not parse (%s)" % e, "JSON", short(r.body, 800))
    # POST -> 405, nothing forwarded
    seen = real((a, b, c))
    r = status_raw(ctx, method="POST", body=b"x=1")
    eq(r.status, 405, "POST to the status path")
    eq(real((a, b, c)), seen, "devices saw the POST")
    # a second rproxy whose status page only allows 10.0.0.0/8: 403 for 127.0.0.1
    conf2 = ctx.config(pools=pools, routes=["route path=/q pool=q", "route pool=p"],
                       extra=STATUS + " allow=10.0.0.0/8")
    px2 = ctx.start(conf2)
    for q in ("", "?format=prometheus"):
        r = status_raw(ctx, q, port=px2.port)
        eq(r.status, 403, "status%s from a disallowed address" % q)
        body = r.body_raw + r.head_raw
        for addr in (a.addr, b.addr, c.addr, off):
            check(addr.encode() not in body, "403 leaks no device address", "absent " + addr,
                  short(body))
            check(addr.split(":")[1].encode() not in body, "403 leaks no device port",
                  "absent", short(body))
        for word in (b"pools", b"rproxy_device", b"uptime"):
            check(word not in body, "403 leaks nothing of the page", "absent %r" % word,
                  short(body))
    eq(real((a, b, c)), seen, "devices saw the refused status requests")
    # allow= listing loopback lets it through
    conf3 = ctx.config(pools=pools, routes=["route path=/q pool=q", "route pool=p"],
                       extra=STATUS + " allow=10.0.0.0/8 allow=127.0.0.1/32")
    px3 = ctx.start(conf3)
    eq(status_raw(ctx, port=px3.port).status, 200, "status from an allowed address")


LOOP_KEYS = {"turns", "bounded", "max_events", "max_bytes", "longest"}
TURN_KEYS = {"ms", "at_ms", "events", "left", "bytes", "tls_steps", "timers"}
BUF_SIZE = 16384  # RP_BUF_SIZE of the test builds (the host default)


@test("status: the event loop's longest turn (JSON loop{}, Prometheus rproxy_loop_*); "
      "a 4 MiB response through the per-turn byte bound arrives byte-exact", timeout=40)
def t_status_loop(ctx):
    big = bytes((i * 7) % 251 for i in range(4 << 20))

    def send_big(conn, req):
        conn.send(response(200, body=big))
        return True

    a = ctx.device(handler=send_big, name="big")
    ctx.start(ctx.config(pools=["pool p", "device p %s" % a.addr], extra=STATUS))
    for i in range(3):
        r = one(ctx, "GET", "/big%d" % i, timeout=30)
        eq(r.status, 200, "4 MiB response %d" % i)
        check(r.body == big, "4 MiB body %d byte-exact" % i, "%d bytes" % len(big),
              "%d bytes%s" % (len(r.body), "" if len(r.body) != len(big) else ", different"))
    js = status_json(ctx)
    lp = js.get("loop")
    check(isinstance(lp, dict) and LOOP_KEYS <= set(lp), "JSON loop object", sorted(LOOP_KEYS),
          lp)
    check(TURN_KEYS <= set(lp["longest"]), "JSON loop.longest fields", sorted(TURN_KEYS),
          lp["longest"])
    eq((lp["max_events"], lp["max_bytes"]), (16, 262144), "compiled bounds (host defaults)")
    lg = lp["longest"]
    check(lp["turns"] >= 6, "turns counted", ">= 6 (3 requests, 4 MiB each)", lp["turns"])
    check(lp["bounded"] <= lp["turns"], "bounded turns <= turns", "<= %d" % lp["turns"],
          lp["bounded"])
    check(lg["events"] >= 1 and lg["bytes"] >= 1, "the longest turn did something",
          "events >= 1, bytes >= 1", lg)
    check(lg["bytes"] <= 262144 + 4 * BUF_SIZE, "the longest turn within the byte bound",
          "<= 262144 + one step (4 x %d)" % BUF_SIZE, lg["bytes"])
    check(lg["events"] + lg["left"] <= 64 and lg["events"] <= 16,
          "the longest turn within the report bound", "events <= 16", lg)
    check(0 <= lg["at_ms"] <= js["uptime_ms"], "longest.at_ms within the uptime",
          "0..%d" % js["uptime_ms"], lg["at_ms"])
    samples, types, bad = parse_prom(status_raw(ctx, "?format=prometheus").body.decode())
    eq(bad, [], "Prometheus lines that do not parse")
    got = {s[0]: s[2] for s in samples if s[0].startswith("rproxy_loop_")}
    want = ["rproxy_loop_bounded_turns_total", "rproxy_loop_longest_turn_bytes",
            "rproxy_loop_longest_turn_events", "rproxy_loop_longest_turn_ms",
            "rproxy_loop_longest_turn_timers", "rproxy_loop_longest_turn_tls_steps",
            "rproxy_loop_turns_total"]
    eq(sorted(got), want, "Prometheus rproxy_loop_* metrics")
    check(got["rproxy_loop_turns_total"] > lp["turns"], "turns still counting",
          "> %d" % lp["turns"], got["rproxy_loop_turns_total"])
    eq(types.get("rproxy_loop_turns_total", ("",))[0], "counter", "rproxy_loop_turns_total type")


# =====================================================================
# 9. config errors
# =====================================================================

BASE_LINES = [
    "listen 127.0.0.1:8080",                                                 # 1
    "pool p balance=leastconn retries=3",                                    # 2
    "device p 127.0.0.1:9001 weight=1000 max_fails=2 fail_timeout=1",        # 3
    "device p 127.0.0.1:9002 backup",                                        # 4
    "pool q",                                                                # 5
    "device q 127.0.0.1:9003 weight=0",                                      # 6
    "device q 127.0.0.1:9004",                                               # 7
    "health p path=/health interval=200 timeout=100 rise=2 fall=3 expect=204",  # 8
    "status path=/status allow=10.0.0.0/8 allow=127.0.0.1",                  # 9
    "route path=/q pool=q",                                                  # 10
    "route pool=p",                                                          # 11
]

# (label, {line number: replacement}, line the error must name)
BAD_BALANCE = [
    ("unknown health option", {8: "health p path=/health colour=red"}, 8),
    ("health path without '/'", {8: "health p path=health"}, 8),
    ("health on an undefined pool", {8: "health nosuch interval=200"}, 8),
    ("weight=1001", {3: "device p 127.0.0.1:9001 weight=1001"}, 3),
    ("backup-only pool", {6: "device q 127.0.0.1:9003 backup",
                          7: "device q 127.0.0.1:9004 backup"}, 5),
    ("bad allow network (/33)", {9: "status path=/status allow=10.0.0.0/33"}, 9),
    ("bad allow network (not an address)", {9: "status path=/status allow=banana"}, 9),
    ("unknown status option", {9: "status path=/status colour=red"}, 9),
    ("status path without '/'", {9: "status path=status"}, 9),
]


def run_t(ctx, text, name):
    import subprocess
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([RPROXY, "-t", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=10)
    return path, p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


@test("config: health/status/weight/backup errors -> FILE:LINE: and exit 1 (the same "
      "config with that line fixed passes -t)")
def t_bal_config_errors(ctx):
    path, rc, out, err = run_t(ctx, "\n".join(BASE_LINES) + "\n", "good.conf")
    eq(rc, 0, "exit status of the good base config (stderr: %r)" % err)
    eq(out.strip(), "%s: ok" % path, "stdout for the good base config")
    fails = []
    for k, (label, repl, line) in enumerate(BAD_BALANCE):
        lines = list(BASE_LINES)
        for n, text in repl.items():
            lines[n - 1] = text
        path, rc, out, err = run_t(ctx, "\n".join(lines) + "\n", "bad%d.conf" % k)
        want = "%s:%d:" % (path, line)
        if rc != 1 or not err.startswith(want) or len(err.strip()) <= len(want):
            fails.append("%s: want exit 1 and %r + message, got exit %s, stderr %r"
                         % (label, want, rc, err.strip()))
    eq(fails, [], "bad configs not reported as FILE:LINE: message with exit 1")

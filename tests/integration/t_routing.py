"""t_routing.py -- choosing the pool and the device: host=/path= routes (case, port,
wildcards, first match, no match -> 404), weighted round robin, leastconn, failover past
a refused device, backup devices, max_fails.  t_balance.py goes deeper (health checks,
retries, the status page).
"""

import time

from checks import check, eq, expect_closed, get, req_bytes, test
from devserver import echo
from harness import free_port


# =====================================================================
# routes
# =====================================================================

@test("routing: host= / path= routes, case-insensitive host without port, first match wins")
def t_routing(ctx):
    a, b, cc, d = (ctx.device(name=n) for n in ("A", "B", "C", "D"))
    pools = ["pool pa", "device pa %s" % a.addr, "pool pb", "device pb %s" % b.addr,
             "pool pc", "device pc %s" % cc.addr, "pool pd", "device pd %s" % d.addr]
    routes = ["route host=a.example pool=pa", "route path=/api pool=pb",
              "route host=c.example path=/x pool=pc",
              "route host=a.example path=/api pool=pd"]
    ctx.start(ctx.config(pools=pools, routes=routes))
    cases = [("a.example", "/", "A"), ("A.EXAMPLE:8080", "/z", "A"),
             ("a.example", "/api/v", "A"), ("b.example", "/api/v", "B"),
             ("b.example", "/apix", "B"), ("c.example", "/x/1", "C")]
    for host, path, want in cases:
        c, r = get(ctx, path, host=host)
        eq(r.status, 200, "status for Host %s %s" % (host, path))
        eq(r.get("X-Device"), want, "device for Host %s path %s" % (host, path))
    c, r = get(ctx, "/y", host="c.example")
    eq(r.status, 404, "Host c.example /y matches no route")
    eq(len(d.requests), 0, "shadowed route's device D untouched")


@test("routing: no route matches -> 404, device untouched")
def t_routing_404(ctx):
    dev = ctx.device()
    ctx.start(ctx.config(pools=["pool p", "device p %s" % dev.addr],
                         routes=["route host=only.example pool=p",
                                 "route path=/only pool=p"]))
    c, r = get(ctx, "/other", host="else.example")
    eq(r.status, 404, "status")
    expect_closed(c, "after a 404 (errors close the connection)")
    time.sleep(0.1)
    eq(dev.conns, 0, "device connections")
    eq(bytes(dev.raw), b"", "bytes at the device")


@test("routing: host=*.cam.example matches subdomains only")
def t_route_wildcard(ctx):
    a, b = ctx.device(name="A"), ctx.device(name="B")
    ctx.start(ctx.config(pools=["pool a", "device a %s" % a.addr, "pool b",
                                "device b %s" % b.addr],
                         routes=["route host=*.cam.example pool=a", "route pool=b"]))
    for host, want in (("x.cam.example", "A"), ("y.z.cam.example:81", "A"),
                       ("xcam.example", "B"), ("other.example", "B")):
        c, r = get(ctx, "/", host=host)
        eq(r.get("X-Device"), want, "device for Host %s" % host)


# =====================================================================
# devices of a pool
# =====================================================================

def _balance(ctx, weights, n):
    devs = [ctx.device(name="D%d" % i) for i in range(len(weights))]
    pools = ["pool p"] + ["device p %s weight=%d" % (d.addr, w) for d, w in zip(devs, weights)]
    ctx.start(ctx.config(pools=pools))
    for i in range(n):
        c, r = get(ctx, "/b%d" % i, headers=[("Connection", "close")])
        eq(r.status, 200, "status of request %d" % i)
        c.close()
    return [len(d.requests) for d in devs]


@test("balancing: two devices weight=1 -> 10 requests split 5/5")
def t_balance_equal(ctx):
    eq(_balance(ctx, [1, 1], 10), [5, 5], "requests per device")


@test("balancing: weights 3 and 1 -> 8 requests split 6/2")
def t_balance_weighted(ctx):
    eq(_balance(ctx, [3, 1], 8), [6, 2], "requests per device")


@test("failover: a refused device is skipped, the live one answers every request")
def t_failover(ctx):
    dev = ctx.device(name="live")
    ctx.start(ctx.config(pools=["pool p", "device p 127.0.0.1:%d" % free_port(),
                                "device p %s" % dev.addr]))
    for i in range(4):
        c, r = get(ctx, "/f%d" % i)
        eq(r.status, 200, "status of request %d" % i)
        eq(r.get("X-Device"), "live", "device")


@test("backup device: unused while the primary is up, used when it is down")
def t_backup(ctx):
    a, b = ctx.device(name="A"), ctx.device(name="B")
    ctx.start(ctx.config(
        pools=["pool p", "device p %s" % a.addr, "device p %s backup" % b.addr,
               "pool q", "device q 127.0.0.1:%d" % free_port(), "device q %s backup" % b.addr],
        routes=["route path=/q pool=q", "route pool=p"]))
    for i in range(4):
        c, r = get(ctx, "/p%d" % i)
        eq(r.get("X-Device"), "A", "primary serves /p%d" % i)
    c, r = get(ctx, "/q")
    eq(r.status, 200, "status with the primary down")
    eq(r.get("X-Device"), "B", "backup serves when the primary is down")


@test("balance=leastconn: while one device is busy, requests go to the other")
def t_leastconn(ctx):
    slow = lambda c, r: (time.sleep(1.0) if r.target == "/slow" else None) or echo(c, r)
    a, b = ctx.device(slow, name="A"), ctx.device(slow, name="B")
    ctx.start(ctx.config(pools=["pool p balance=leastconn", "device p %s" % a.addr,
                                "device p %s" % b.addr]))
    busy = ctx.client()
    busy.send(req_bytes("GET", "/slow"))
    check(a.wait_for(lambda d: len(d.requests) + len(b.requests) >= 1, 3),
          "slow request reached a device", "1", 0)
    time.sleep(0.05)
    busy_dev = "A" if a.requests else "B"
    free_dev = "B" if busy_dev == "A" else "A"
    for i in range(4):
        c, r = get(ctx, "/q%d" % i)
        eq(r.get("X-Device"), free_dev, "device for quick request %d while %s is busy"
           % (i, busy_dev))
    eq(busy.read_response().status, 200, "slow request")


@test("max_fails=1: a device that fails is skipped for fail_timeout, others serve")
def t_max_fails(ctx):
    bad = ctx.device(name="bad", close_on_accept=True)
    good = ctx.device(name="good")
    ctx.start(ctx.config(pools=["pool p", "device p %s max_fails=1 fail_timeout=30" % bad.addr,
                                "device p %s" % good.addr]))
    statuses = []
    for i in range(6):
        c, r = get(ctx, "/m%d" % i)
        statuses.append(r.status)
        c.close()
    check(all(s == 200 for s in statuses[1:]), "requests after the failure", "all 200",
          statuses)
    check(bad.conns <= 1, "failing device tried at most once", "<= 1", bad.conns)

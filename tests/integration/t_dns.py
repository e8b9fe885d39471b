"""t_dns.py -- devices by DNS name (issue 17 item 4, RP_ENABLE_DNS): `device POOL NAME:PORT`
looked up through the POSIX port's resolver threads (getaddrinfo) against a test DNS server of
the test's own (dnsserver.py, 127.53.x.y:53); rproxy runs in a private mount namespace whose
/etc/resolv.conf names that server.  The answer for cam1.test changes mid-test and traffic
follows within resolve= (and runtime control finds it by NAME:PORT); an AAAA-only name is
used over IPv6; a name that does not resolve at start leaves its device down (the
proxy serves the rest) until it does; a name server that takes 5 s to answer delays no
client; empty, truncated, wrong-family, huge and SERVFAIL answers are "not resolved" (the
last good address is kept).
"""

import json
import time

from checks import check, eq, test
from devserver import Device
from dnsserver import DNSServer
from harness import RPROXY
from t_balance import one


def dns(ctx):
    s = DNSServer()
    ctx.sockets.append(s)   # closed with the test's sockets (it has close())
    return s


def start(ctx, server, pools, routes=None):
    conf = ctx.config(pools=pools, routes=routes, extra="status path=/status")
    return ctx.start(conf, binary=server.wrapper(ctx.dir, RPROXY))


def status_devices(ctx):
    r = one(ctx, "GET", "/status")
    eq(r.status, 200, "status page")
    return [d for p in json.loads(r.body)["pools"] for d in p["devices"]]


def wait_for(pred, timeout=8.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return pred()


@test("dns: a device by name follows its DNS answer (cam1.test moves from 127.0.0.1 to "
      "127.0.0.2 within resolve=); the status page shows the name and the current address")
def t_dns_move(ctx):
    a = ctx.device(name="a")
    b = ctx.device(name="b", port=a.port, host="127.0.0.2")   # same port, the new address
    s = dns(ctx)
    s.set("cam1.test", "ok", "127.0.0.1")
    start(ctx, s, ["pool p resolve=1s", "device p cam1.test:%d" % a.port])
    got = wait_for(lambda: one(ctx, "GET", "/x").get("X-Device") == "a")
    check(got, "requests reach a at cam1.test's first address")
    d = status_devices(ctx)[0]
    eq((d["name"], d["addr"], d["resolve"], d["state"]),
       ("cam1.test", "127.0.0.1:%d" % a.port, "ok", "up"), "status: name, address, resolve, state")
    s.set("cam1.test", "ok", "127.0.0.2")
    t0 = time.monotonic()
    moved = wait_for(lambda: one(ctx, "GET", "/y").get("X-Device") == "b", timeout=8)
    check(moved, "after the answer changed, requests reach b at 127.0.0.2")
    ctx.note("moved after %.1f s (resolve=1s)" % (time.monotonic() - t0))
    eq([one(ctx, "GET", "/z%d" % i).get("X-Device") for i in range(4)], ["b"] * 4,
       "and stay there")
    d = status_devices(ctx)[0]
    eq((d["name"], d["addr"]), ("cam1.test", "127.0.0.2:%d" % a.port), "status: new address")
    check(d["resolves"] >= 2, "status: lookups counted", ">= 2", d["resolves"])
    prom = one(ctx, "GET", "/status?format=prometheus").body.decode()
    check('rproxy_device_up{pool="p",device="cam1.test:%d"} 1' % a.port in prom,
          "Prometheus labels the device by NAME:PORT")
    r = one(ctx, "POST", "/status/device?pool=p&device=cam1.test:%d&state=drain" % a.port)
    eq(r.status, 200, "runtime control finds the device by NAME:PORT")
    eq(json.loads(r.body)["device"], "cam1.test:%d" % a.port, "and answers with NAME:PORT")
    eq(one(ctx, "GET", "/drained").status, 503, "drained: its only device takes no request")


@test("dns: an IPv6 answer (AAAA only) is used: the device at [::1] serves")
def t_dns_ipv6(ctx):
    a = ctx.device(name="v6", host="::1")
    s = dns(ctx)
    s.set("six.test", "ok", "::1")
    start(ctx, s, ["pool p resolve=1s", "device p six.test:%d" % a.port])
    check(wait_for(lambda: one(ctx, "GET", "/x").status == 200), "served through the AAAA answer")
    eq(one(ctx, "GET", "/x").get("X-Device"), "v6", "by the device on [::1]")
    eq(status_devices(ctx)[0]["addr"], "[::1]:%d" % a.port, "status: the IPv6 address")


@test("dns: a name that does not resolve at start: the proxy starts, that device is down "
      "(503 on its route, the other pool serves), and it comes up once the name resolves")
def t_dns_unresolvable_at_start(ctx):
    a = ctx.device(name="a")
    other = ctx.device(name="other")
    s = dns(ctx)                                   # cam2.test: NXDOMAIN for now
    start(ctx, s, ["pool p resolve=1s", "device p cam2.test:%d" % a.port,
                   "pool q", "device q %s" % other.addr],
          routes=["route path=/q pool=q", "route pool=p"])
    eq(one(ctx, "GET", "/q").get("X-Device"), "other", "the other pool serves")
    eq(one(ctx, "GET", "/cam").status, 503, "the unresolved device's pool: 503")
    eq(len(a.requests), 0, "nothing reached the device")
    d = status_devices(ctx)[0]
    eq((d["name"], d["addr"], d["state"]), ("cam2.test", "", "down"),
       "status: no address, down")
    check(wait_for(lambda: s.count("cam2.test") >= 2), "looked up again within resolve=")
    s.set("cam2.test", "ok", "127.0.0.1")
    check(wait_for(lambda: one(ctx, "GET", "/cam").status == 200), "up once the name resolves")
    eq(one(ctx, "GET", "/cam").get("X-Device"), "a", "served by the device")


@test("dns: a name server that takes 5 s to answer delays no client (every request on "
      "other devices is answered before the slow lookup is); then the device serves")
def t_dns_slow_server(ctx):
    a = ctx.device(name="a")
    other = ctx.device(name="other")
    s = dns(ctx)
    s.delay = 5.0
    s.set("slow.test", "slow", "127.0.0.1")
    start(ctx, s, ["pool p", "device p slow.test:%d" % a.port,
                   "pool q", "device q %s" % other.addr],
          routes=["route path=/q pool=q", "route pool=p"])
    check(wait_for(lambda: s.count("slow.test") >= 1, 3), "the slow lookup was asked")
    for i in range(20):
        r = one(ctx, "GET", "/q%d" % i, timeout=3.0)
        eq((r.status, r.get("X-Device")), (200, "other"), "request %d during the lookup" % i)
    check("slow.test" not in s.answered,
          "all 20 requests were answered while the name server still held its answer")
    check(wait_for(lambda: one(ctx, "GET", "/cam").status == 200, 10),
          "after the slow answer came, the named device serves")


BAD = ["empty", "truncated", "wrongfam", "huge", "servfail"]


@test("dns: empty, truncated, wrong-family, huge and SERVFAIL answers are 'not resolved': "
      "a device never resolved stays down; one that was resolved keeps its last good address")
def t_dns_bad_answers(ctx):
    a = ctx.device(name="a")
    s = dns(ctx)
    pools, routes = [], []
    for kind in BAD:
        s.set("%s.test" % kind, kind, "127.0.0.1")
        pools += ["pool %s resolve=1s" % kind, "device %s %s.test:%d" % (kind, kind, a.port)]
        routes.append("route path=/%s pool=%s" % (kind, kind))
    s.set("flip.test", "ok", "127.0.0.1")
    pools += ["pool flip resolve=1s", "device flip flip.test:%d" % a.port]
    routes.append("route pool=flip")
    start(ctx, s, pools, routes)
    check(wait_for(lambda: all(s.count("%s.test" % k) >= 1 for k in BAD)),
          "every bad name was asked")
    check(wait_for(lambda: one(ctx, "GET", "/flip").status == 200), "flip.test resolved")
    for kind in BAD:
        eq(one(ctx, "GET", "/%s" % kind).status, 503, "%s answer: the device stays down" % kind)
    devs = {d["name"]: d for d in status_devices(ctx)}
    for kind in BAD:
        d = devs["%s.test" % kind]
        eq((d["addr"], d["state"], d["resolve"]), ("", "down", "failing"),
           "status of the %s answer's device" % kind)
    n = s.count("flip.test")
    s.set("flip.test", "truncated")
    check(wait_for(lambda: s.count("flip.test") > n and
                   {d["name"]: d for d in status_devices(ctx)}["flip.test"]["resolve"]
                   == "failing"), "flip.test looked up again and failing")
    r = one(ctx, "GET", "/flip")
    eq((r.status, r.get("X-Device")), (200, "a"), "the last good address still serves")
    d = {d["name"]: d for d in status_devices(ctx)}["flip.test"]
    eq(d["addr"], "127.0.0.1:%d" % a.port, "status: last good address kept")
    eq(len([1 for p in ctx.proxies if p.alive()]), 1, "rproxy is alive")

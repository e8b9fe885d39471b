"""t_runtime.py -- runtime control on the status path (issue 17 item 3, HAProxy's `set server
state|weight`): POST /status/device?pool=P&device=ADDR&state=ready|drain|maint&weight=N, its
effect on the balancer and the health probes, its JSON answers and errors, and that allow= and
auth= guard it.
"""

import json
import subprocess
import threading
import time

from checks import check, eq, fail, short, test
from devserver import echo
from t_balance import one


STATUS = "status path=/status"


def control(ctx, query, method="POST", body=b"", headers=()):
    r = one(ctx, method, "/status/device?" + query, body=body, headers=headers)
    try:
        js = json.loads(r.body)
    except ValueError:
        fail("runtime answer is not JSON", "JSON", short(r.body))
    return r, js


def devices(ctx):
    r = one(ctx, "GET", "/status")
    eq(r.status, 200, "status page")
    js = json.loads(r.body)
    return {d["addr"]: d for p in js["pools"] for d in p["devices"]}


def served_by(ctx, n):
    got = []
    for i in range(n):
        r = one(ctx, "GET", "/r%d" % i)
        eq(r.status, 200, "request %d" % i)
        got.append(r.get("X-Device"))
    return got


@test("runtime: drain takes a device out of rotation while its request in flight finishes; "
      "ready brings it back; status JSON and Prometheus show the state")
def t_runtime_drain(ctx):
    gate = threading.Event()

    def slow(conn, req):
        if req.target == "/slow":
            gate.wait(5)
        return echo(conn, req)

    a, b = ctx.device(slow, name="a"), ctx.device(name="b")
    ctx.start(ctx.config(pools=["pool p", "device p %s" % a.addr, "device p %s" % b.addr],
                         extra=STATUS))
    eq(sorted(set(served_by(ctx, 4))), ["a", "b"], "both devices serve before the drain")
    # a request in flight on a (wrr a b a b ...: the next pick is a)
    c = ctx.client()
    c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.time() + 3
    while time.time() < deadline and not any(r.target == "/slow" for r in a.requests):
        time.sleep(0.02)
    check(any(r.target == "/slow" for r in a.requests), "the slow request reached a")
    r, js = control(ctx, "pool=p&device=%s&state=drain" % a.addr)
    eq(r.status, 200, "drain answered")
    eq((js["pool"], js["device"], js["admin"], js["weight"]), ("p", a.addr, "drain", 1),
       "drain answer (pool, device, admin, weight)")
    eq(js["active"], 1, "the drained device still has its request in flight")
    eq(served_by(ctx, 6), ["b"] * 6, "new requests avoid the drained device")
    gate.set()
    resp = c.read_response(timeout=5)
    eq(resp.status, 200, "the request in flight on the drained device finished")
    eq(resp.get("X-Device"), "a", "... served by a")
    eq(devices(ctx)[a.addr]["admin"], "drain", "status JSON admin")
    prom = one(ctx, "GET", "/status?format=prometheus").body.decode()
    check('rproxy_device_admin_state{pool="p",device="%s"} 1' % a.addr in prom,
          "Prometheus rproxy_device_admin_state 1 for the drained device", "the sample",
          [l for l in prom.splitlines() if "admin_state" in l])
    r, js = control(ctx, "pool=p&device=%s&state=ready" % a.addr)
    eq((r.status, js["admin"]), (200, "ready"), "ready answered")
    eq(sorted(set(served_by(ctx, 4))), ["a", "b"], "back in rotation after ready")
    err = ctx.proxy.stderr()
    check("runtime: pool p device %s: state ready -> drain" % a.addr in err,
          "the change is logged", "runtime: ... ready -> drain", short(err.encode(), 600))


@test("runtime: maint closes the device's idle connections and stops its health probes; "
      "weight= changes the balance")
def t_runtime_maint_weight(ctx):
    a, b = ctx.device(name="a"), ctx.device(name="b")
    ctx.start(ctx.config(pools=["pool p", "device p %s" % a.addr, "device p %s" % b.addr],
                         extra=STATUS + "\nhealth p path=/hc interval=200"))
    served_by(ctx, 4)  # leaves pooled idle connections to both
    time.sleep(0.5)
    probes_before = devices(ctx)[a.addr]["probes"]
    eofs = a.eofs
    r, js = control(ctx, "pool=p&device=%s&state=maint" % a.addr)
    eq((r.status, js["admin"]), (200, "maint"), "maint answered")
    deadline = time.time() + 3
    while time.time() < deadline and a.eofs == eofs:
        time.sleep(0.02)
    check(a.eofs > eofs, "the device in maintenance saw its idle connection closed", "> %d" % eofs,
          a.eofs)
    eq(devices(ctx)[a.addr]["idle"], 0, "no idle connection left to it")
    p0 = devices(ctx)[a.addr]["probes"]
    time.sleep(0.8)
    eq(devices(ctx)[a.addr]["probes"], p0, "no health probes while in maintenance")
    check(devices(ctx)[b.addr]["probes"] > 0, "the other device is still probed")
    check(p0 >= probes_before, "probe counter sane")
    eq(served_by(ctx, 4), ["b"] * 4, "no requests while in maintenance")
    control(ctx, "pool=p&device=%s&state=ready" % a.addr)
    r, js = control(ctx, "pool=p&device=%s&weight=3" % a.addr)
    eq((r.status, js["weight"], js["admin"]), (200, 3, "ready"), "weight=3 answered")
    got = served_by(ctx, 8)
    eq((got.count("a"), got.count("b")), (6, 2), "weights 3:1 split 8 requests 6:2")
    eq(devices(ctx)[a.addr]["weight"], 3, "status shows the new weight")


@test("runtime: bad requests get a 4xx JSON error and change nothing")
def t_runtime_errors(ctx):
    a = ctx.device(name="a")
    ctx.start(ctx.config(devices=[a], extra=STATUS))
    rows = [
        ("GET", "pool=p&device=%s&state=drain" % a.addr, b"", 405, "runtime control takes POST"),
        ("POST", "pool=nope&device=%s&state=drain" % a.addr, b"", 404, "no such pool"),
        ("POST", "pool=p&device=10.9.9.9:1&state=drain", b"", 404, "no such device in the pool"),
        ("POST", "pool=p&device=%s&state=down" % a.addr, b"", 400, "state: want ready, drain or maint"),
        ("POST", "pool=p&device=%s&weight=1001" % a.addr, b"", 400, "weight: want 0-1000"),
        ("POST", "pool=p&device=%s&weight=-1" % a.addr, b"", 400, "weight: want 0-1000"),
        ("POST", "pool=p&device=%s" % a.addr, b"", 400, "state= or weight= is required"),
        ("POST", "device=%s&state=drain" % a.addr, b"", 400, "pool= and device= are required"),
        ("POST", "pool=p&device=%s&state=drain&colour=red" % a.addr, b"", 400,
         "unknown parameter (pool, device, state, weight)"),
        ("POST", "pool=p&device=%s&state=drain" % a.addr, b"state=drain", 400,
         "runtime control takes no request body"),
        ("POST", "pool=p&device=%zz&state=drain", b"", 400, "device: want IP:PORT"),
        ("POST", "pool=p&device=%25zz&state=drain", b"", 404, "no such device in the pool"),
    ]
    for method, q, body, status, msg in rows:
        r, js = control(ctx, q, method=method, body=body)
        eq((r.status, js.get("error")), (status, msg), "%s ?%s" % (method, q))
    d = devices(ctx)[a.addr]
    eq((d["admin"], d["weight"], d["state"]), ("ready", 1, "up"), "nothing changed")
    eq(one(ctx, "GET", "/x").status, 200, "still served")
    # an encoded address is decoded
    r, js = control(ctx, "pool=p&device=%s&state=drain" % a.addr.replace(":", "%3A"))
    eq((r.status, js["admin"]), (200, "drain"), "device=IP%3APORT is decoded")
    eq(one(ctx, "GET", "/x").status, 503, "the only device drained: 503")


@test("runtime: the control path is guarded by the status page's allow= and auth=")
def t_runtime_guarded(ctx):
    a = ctx.device(name="a")
    hash5 = subprocess.run(["openssl", "passwd", "-5", "-salt", "rtsalt", "pw1"],
                           stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    users = ctx.path("ops.users")
    with open(users, "w") as f:
        f.write("ops:%s\n" % hash5)
    ctx.start(ctx.config(devices=[a], extra="users ops %s\nstatus path=/status "
                                            "allow=127.0.0.0/8 auth=ops realm=\"ops\"" % users))
    r = one(ctx, "POST", "/status/device?pool=p&device=%s&state=drain" % a.addr)
    eq(r.status, 401, "no credentials: 401")
    eq(r.get("WWW-Authenticate"), 'Basic realm="ops", charset="UTF-8"', "the challenge")
    r = one(ctx, "POST", "/status/device?pool=p&device=%s&state=drain" % a.addr,
            headers=[("Authorization", "Basic b3BzOnB3MQ==")])  # ops:pw1
    eq(r.status, 200, "with credentials: 200")
    eq(json.loads(r.body)["admin"], "drain", "drained")

    b = ctx.device(name="b")
    px2 = ctx.start(ctx.config(devices=[b], extra="status path=/status allow=10.0.0.0/8"))
    r = one(ctx, "POST", "/status/device?pool=p&device=%s&state=drain" % b.addr, port=px2.port)
    eq(r.status, 403, "outside allow=: 403")
    eq(one(ctx, "GET", "/x", port=px2.port).status, 200, "nothing changed: still served")

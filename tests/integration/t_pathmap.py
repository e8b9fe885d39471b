"""t_pathmap.py -- device UIs mounted under a path (issue 15): `route path=/cam1/ pool=cam1
rewrite=/` (the device sees /..., the query kept), `pool ... host=NAME` (the Host devices
get), Location / Content-Location / Refresh / Set-Cookie Path= mapped back (absolute ones
with the client's scheme and Host), a curl -L login flow with its cookie through /cam1/,
/cam1 and /cam10/ not under /cam1/, /cam1/../admin refused, mapping on a cache hit, and
bad device Locations (8 KB, NUL, CR) passed whole or 502, never split; header rule sets
(request/response, route/listener, cache hits); long-lived streams (SSE and MJPEG with
gaps longer than timeout device=, route device_timeout= and stream_idle=, timeout tunnel=).
"""

import threading
import time

from checks import check, eq, expect_closed, get, req_bytes, test
from devserver import response
from harness import free_port


def camera(dev_host_seen):
    """A device web UI that assumes it owns /: redirects to /login, sets Path=/ cookies."""
    def handler(conn, req):
        host = req.get("Host", "")
        dev_host_seen.append(host)
        path, _, query = req.target.partition("?")
        cookie = req.get("Cookie", "")
        hdrs = [("X-Echo-Target", req.target), ("X-Echo-Host", host)]
        if path == "/" and "sid=ok" in cookie:
            conn.send(response(200, headers=hdrs, body=b"camera home page\n"))
        elif path == "/":
            conn.send(response(302, headers=hdrs + [("Location", "/login")]))
        elif path == "/login" and req.method == "POST":
            conn.send(response(303, headers=hdrs + [
                ("Location", "http://%s/" % host),
                ("Set-Cookie", "sid=ok; Path=/; HttpOnly")]))
        elif path == "/login":
            conn.send(response(200, headers=hdrs, body=b"login form\n"))
        elif path == "/refresh":
            conn.send(response(200, headers=hdrs + [("Refresh", "0; url=/login")]))
        elif path == "/abs":
            conn.send(response(302, headers=hdrs + [("Location", "http://%s/login?x=1" % conn.dev.addr)]))
        elif path == "/other":
            conn.send(response(302, headers=hdrs + [("Location", "http://other.example/login")]))
        elif path == "/cl":
            conn.send(response(200, headers=hdrs + [("Content-Location", "/cl/x.json"),
                                                    ("Set-Cookie", "a=1; path=/ui; Secure")]))
        elif path == "/cached":
            conn.send(response(200, headers=hdrs + [("Cache-Control", "max-age=60"),
                                                    ("Content-Location", "/cached/v1")],
                               body=b"cacheable\n"))
        elif path == "/long":
            conn.send(response(302, headers=hdrs + [("Location", "/" + "a" * 8192)]))
        elif path == "/nul":
            conn.send(response(302, headers=hdrs) .replace(b"\r\n\r\n", b"\r\nLocation: /lo\x00gin\r\n\r\n", 1))
        elif path == "/cr":
            conn.send(response(302, headers=hdrs) .replace(b"\r\n\r\n", b"\r\nLocation: /lo\rSet-Cookie: x=1\r\n\r\n", 1))
        elif path == "/bad-uri":
            conn.send(response(302, headers=hdrs + [("Location", "http://[::1/%zz")]))
        else:
            conn.send(response(200, headers=hdrs, body=b"path " + req.target.encode() + b"\n"))
        return True
    return handler


def _setup(ctx, host_opt=" host=cam.local", extra_routes=(), route_opts=""):
    seen = []
    cam = ctx.device(camera(seen), name="cam1")
    other = ctx.device(camera([]), name="other")
    pools = ["pool cam1" + host_opt, "device cam1 %s" % cam.addr,
             "pool other", "device other %s" % other.addr]
    routes = ["route path=/cam1/ pool=cam1 rewrite=/" + route_opts] + list(extra_routes)
    ctx.start(ctx.config(pools=pools, routes=routes))
    return cam, other, seen


@test("pathmap: /cam1/img/a.jpg?x=1 reaches the device as /img/a.jpg?x=1 with pool host=")
def t_pathmap_request(ctx):
    cam, other, seen = _setup(ctx, extra_routes=["route path=/api/ pool=other rewrite=/api/v2/",
                                                 "route pool=other"])
    c, r = get(ctx, "/cam1/img/a.jpg?x=1&y=/z", host="gw.local")
    eq(r.status, 200, "status")
    eq(r.get("X-Echo-Target"), "/img/a.jpg?x=1&y=/z", "path the device got")
    eq(r.get("X-Echo-Host"), "cam.local", "Host the device got (pool host=)")
    eq(cam.requests[-1].get("X-Forwarded-Host"), "gw.local", "X-Forwarded-Host is the client's")
    c, r = get(ctx, "/cam1/", host="gw.local")
    eq(cam.requests[-1].target, "/", "/cam1/ -> /")
    c, r = get(ctx, "/api/x?q=1", host="gw.local")
    eq(r.get("X-Echo-Target"), "/api/v2/x?q=1", "rewrite=/api/v2/")
    eq(r.get("X-Echo-Host"), "gw.local", "no host=: the client's Host")
    c, r = get(ctx, "/plain/x", host="gw.local")
    eq(r.get("X-Echo-Target"), "/plain/x", "a route without rewrite= forwards the path unchanged")


@test("pathmap: /cam1 and /cam10/ are not under /cam1/; /cam1/../admin and %2e%2e refused")
def t_pathmap_prefix(ctx):
    cam, other, seen = _setup(ctx, extra_routes=["route path=/cam10/ pool=other"])
    n = len(cam.requests)
    c, r = get(ctx, "/cam10/x")
    eq(r.status, 200, "/cam10/x status")
    eq(other.requests[-1].target, "/cam10/x", "/cam10/x went to the /cam10/ route")
    c, r = get(ctx, "/cam1")
    eq(r.status, 404, "/cam1 (no slash) matches no route here")
    for bad in ("/cam1/../admin", "/cam1/%2e%2E/admin", "/cam1/..%2fadmin", "/cam1/./x"):
        c, r = get(ctx, bad)
        eq(r.status, 400, "%s refused" % bad)
    eq(len(cam.requests), n, "the camera got none of them")
    c, r = get(ctx, "/cam1/a..b/...")
    eq(r.status, 200, "dots inside names are fine")
    eq(cam.requests[-1].target, "/a..b/...", "as sent")


@test("pathmap: Location, Content-Location, Refresh url=, Set-Cookie Path= mapped back")
def t_pathmap_response(ctx):
    cam, other, seen = _setup(ctx, host_opt="", extra_routes=["route path=/cl pool=other"])
    c, r = get(ctx, "/cam1/", host="gw.local:8443")
    eq(r.status, 302, "status")
    eq(r.get("Location"), "/cam1/login", "path-absolute Location")
    c, r = get(ctx, "/cam1/abs", host="gw.local:8443")
    eq(r.get("Location"), "http://gw.local:8443/cam1/login?x=1",
       "Location with the device's address: the client's scheme and Host")
    c, r = get(ctx, "/cam1/other", host="gw.local")
    eq(r.get("Location"), "http://other.example/login", "another host's Location untouched")
    c, r = get(ctx, "/cam1/refresh", host="gw.local")
    eq(r.get("Refresh"), "0; url=/cam1/login", "Refresh url=")
    c, r = get(ctx, "/cam1/cl", host="gw.local")
    eq(r.get("Content-Location"), "/cam1/cl/x.json", "Content-Location")
    eq(r.get("Set-Cookie"), "a=1; path=/cam1/ui; Secure", "Set-Cookie path=")
    c, r = get(ctx, "/cam1/bad-uri", host="gw.local")
    eq(r.get("Location"), "http://[::1/%zz", "a malformed URI is passed unchanged")
    c, r = get(ctx, "/cl", host="gw.local")
    eq(r.get("Content-Location"), "/cl/x.json", "no rewrite=: nothing mapped")
    eq(r.get("Set-Cookie"), "a=1; path=/ui; Secure", "no rewrite=: cookie untouched")


@test("pathmap: curl -L login flow through /cam1/ ends on the device's page with its cookie")
def t_pathmap_login(ctx):
    cam, other, seen = _setup(ctx)
    jar = ctx.path("jar.txt")
    rc, out, err = ctx.curl("-L", "-c", jar, "-b", jar, ctx.url("/cam1/"))
    eq(rc, 0, "curl exit (%s)" % err)
    eq(out, b"login form\n", "unauthenticated /cam1/ ends on the login form")
    rc, out, err = ctx.curl("-L", "-c", jar, "-b", jar, "-d", "user=admin&pass=x",
                            ctx.url("/cam1/login"))
    eq(rc, 0, "curl exit (%s)" % err)
    eq(out, b"camera home page\n", "after POST /cam1/login: the device's page")
    with open(jar) as f:
        j = f.read()
    check("\t/cam1/\t" in j and "sid\tok" in j, "cookie sid=ok kept for /cam1/", "jar: " + j)
    targets = [q.target for q in cam.requests]
    eq(targets[-2:], ["/login", "/"], "device saw its own paths")
    eq(cam.requests[-1].get("Cookie"), "sid=ok", "the cookie came back to the device")
    check(all(h == "cam.local" for h in seen), "every request had Host cam.local", str(seen))


@test("pathmap: a cache hit serves the mapped Content-Location")
def t_pathmap_cache(ctx):
    cam, other, seen = _setup(ctx, route_opts=" cache=on")
    for i in range(2):
        c, r = get(ctx, "/cam1/cached", host="gw.local")
        eq(r.status, 200, "status %d" % i)
        eq(r.get("Content-Location"), "/cam1/cached/v1", "Content-Location on request %d" % i)
    eq(len([q for q in cam.requests if q.target == "/cached"]), 1, "second one was a hit")
    check("hit" in (r.get("Cache-Status") or ""), "Cache-Status says hit", r.get("Cache-Status"))


@test("pathmap: device Location of 8 KB, with NUL or CR: whole or 502, never split")
def t_pathmap_bad_location(ctx):
    cam, other, seen = _setup(ctx)
    c, r = get(ctx, "/cam1/long", host="gw.local")
    if r.status == 302:
        eq(r.get("Location"), "/cam1/" + "a" * 8192, "8 KB Location mapped whole")
    else:
        eq(r.status, 502, "8 KB Location: too long for the head -> 502")
    for p in ("/cam1/nul", "/cam1/cr"):
        c, r = get(ctx, p, host="gw.local")
        eq(r.status, 502, "%s -> 502" % p)
        check(not r.has("Set-Cookie"), "%s: no injected field" % p, r.headers)
    c, r = get(ctx, "/cam1/login", host="gw.local")
    eq(r.status, 200, "rproxy still serves")


# =====================================================================
# header rules
# =====================================================================

def _serverish(conn, req):
    hdrs = [("Server", "lighttpd/1.4"), ("X-Dup", "a"), ("X-Dup", "b"),
            ("Cache-Control", "max-age=60"), ("X-Echo-Target", req.target)]
    conn.send(response(200, headers=hdrs, body=b"device body\n"))
    return True


def _rules_setup(ctx, cache=""):
    dev = ctx.device(_serverish, name="d")
    plain = ctx.device(_serverish, name="plain")
    port, port2 = free_port(), free_port()
    text = "\n".join([
        "listen 127.0.0.1:%d" % port,   # (the harness waits on this one)
        "listen 127.0.0.1:%d headers=site" % port2,
        "pool d", "device d %s" % dev.addr, "pool plain", "device plain %s" % plain.addr,
        "route path=/cam1/ pool=d rewrite=/ headers=secure" + cache,
        "route pool=plain",
        'headers secure response set Strict-Transport-Security "max-age=31536000"',
        "headers secure response del Server",
        'headers secure response set X-Dup "one"',
        'headers secure request  set X-Api-Key "abc \\"123\\""',
        "headers secure request  del Cookie",
        'headers site response add X-Frame-Options "DENY"',
        'headers site response set X-Dup "site"',
        "timeout client_idle=10000 device=5000", ""])
    ctx.start(text)
    ctx.port = port2
    return dev, plain


@test("header rules: set/add/del on requests and responses, route and listener sets")
def t_hrules(ctx):
    dev, plain = _rules_setup(ctx)
    c, r = get(ctx, "/cam1/x", headers=[("Cookie", "sid=1"), ("X-Api-Key", "client's")])
    eq(r.status, 200, "status")
    eq(r.get("Strict-Transport-Security"), "max-age=31536000", "response set")
    eq(r.get_all("Server"), [], "response del Server")
    eq(r.get_all("X-Dup"), ["one"], "set replaces every X-Dup; the route's set wins over the listener's")
    eq(r.get("X-Frame-Options"), "DENY", "the listener's add")
    eq(r.get("Content-Length"), str(len(b"device body\n")), "framing untouched")
    q = dev.requests[-1]
    eq(q.get_all("X-Api-Key"), ['abc "123"'], "request set with a quoted value replaces the client's")
    eq(q.get_all("Cookie"), [], "request del Cookie")
    c, r = get(ctx, "/other", headers=[("Cookie", "sid=1")])
    eq(r.get("Server"), "lighttpd/1.4", "a route without headers= keeps Server")
    eq(r.get_all("X-Dup"), ["site"], "the listener's set alone")
    eq(r.get("X-Frame-Options"), "DENY", "the listener's add on every route")
    eq(r.get("Strict-Transport-Security"), None, "no route rules there")
    eq(plain.requests[-1].get("Cookie"), "sid=1", "Cookie kept without the route's rules")


@test("header rules: a cache hit gets the response rules too")
def t_hrules_cache(ctx):
    dev, plain = _rules_setup(ctx, cache=" cache=on")
    for i in range(2):
        c, r = get(ctx, "/cam1/c")
        eq(r.status, 200, "status %d" % i)
        eq(r.get("Strict-Transport-Security"), "max-age=31536000", "HSTS on request %d" % i)
        eq(r.get_all("Server"), [], "no Server on request %d" % i)
        eq(r.get_all("X-Dup"), ["one"], "X-Dup on request %d" % i)
        eq(r.get("X-Frame-Options"), "DENY", "listener add on request %d" % i)
    check("hit" in (r.get("Cache-Status") or ""), "the second was a hit", r.get("Cache-Status"))
    eq(len(dev.requests), 1, "device asked once")


# =====================================================================
# long-lived streams: device_timeout=, stream_idle=, timeout tunnel=
# =====================================================================

def _read_until(c, needle, timeout=5.0):
    got = b""
    end = time.monotonic() + timeout
    while needle not in got and time.monotonic() < end:
        try:
            got += c.read_exact(1, timeout=max(0.05, end - time.monotonic()))
        except Exception:        # noqa: BLE001 -- closed or timed out: the caller checks
            break
    return got


def _streamer(gate, kind):
    """SSE (chunked) or MJPEG (multipart/x-mixed-replace, close-delimited): one piece,
    wait until the test saw it arrive, stay silent 1.5 s (> timeout device=1000), then
    the second piece and the end."""
    def h(conn, req):
        if req.target.endswith("/slowhead"):
            time.sleep(1.5)
            conn.send(response(200, body=b"late head\n"))
            return True
        if kind == "sse":
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            one, two = b"data: one\n\n", b"data: two\n\n"
            conn.send(b"%x\r\n%s\r\n" % (len(one), one))
        else:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; "
                      b"boundary=frame\r\nConnection: close\r\n\r\n")
            one = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 8\r\n\r\nJPEG-one\r\n"
            two = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 8\r\n\r\nJPEG-two\r\n"
            conn.send(one)
        gate.wait(5)
        time.sleep(1.5)
        if kind == "sse":
            conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(two), two))
            return True
        conn.send(two + b"--frame--\r\n")
        conn.close()
        return False
    return h


def _stream_setup(ctx, kind):
    gate = threading.Event()
    dev = ctx.device(_streamer(gate, kind), name="stream")
    ctx.start(ctx.config(pools=["pool s", "device s %s" % dev.addr],
                         routes=["route path=/live/ pool=s stream_idle=5s device_timeout=4s",
                                 "route path=/off/ pool=s stream_idle=0",
                                 "route pool=s"],
                         timeouts={"device": 1000, "client_idle": 1000}))
    return gate


def _stream_case(ctx, gate, path, first, second):
    c = ctx.client()
    c.send(req_bytes("GET", path))
    r = c.read_head(timeout=5)
    eq(r.status, 200, "status of %s" % path)
    got = _read_until(c, first, 3)
    check(first in got, "%s: the first piece arrives before the device sends more" % path,
          first, got)
    gate.set()
    got = _read_until(c, second, 6)
    return c, got


@test("streams: SSE with a 1.5 s gap passes on a stream_idle=5s route, cut at timeout device=1s elsewhere",
      timeout=40)
def t_stream_sse(ctx):
    gate = _stream_setup(ctx, "sse")
    c, got = _stream_case(ctx, gate, "/live/events", b"data: one", b"data: two")
    check(b"data: two" in got, "second event after the gap (stream_idle=5s)", b"data: two", got)
    check(b"0\r\n\r\n" in _read_until(c, b"0\r\n\r\n", 3) or b"0\r\n\r\n" in got, "the stream ends cleanly",
          "last chunk", "none")
    gate.clear()
    c, got = _stream_case(ctx, gate, "/off/events", b"data: one", b"data: two")
    check(b"data: two" in got, "stream_idle=0: no limit", b"data: two", got)
    gate.clear()
    c, got = _stream_case(ctx, gate, "/default/events", b"data: one", b"data: two")
    check(b"data: two" not in got, "no stream_idle: timeout device=1s cuts the silent stream",
          "cut", got)
    expect_closed(c, "the cut stream")


@test("streams: MJPEG multipart/x-mixed-replace parts forwarded as they come, 1.5 s gap", timeout=30)
def t_stream_mjpeg(ctx):
    gate = _stream_setup(ctx, "mjpeg")
    c, got = _stream_case(ctx, gate, "/live/cam.mjpg", b"JPEG-one", b"JPEG-two")
    check(b"JPEG-two" in got, "second part after the gap", b"JPEG-two", got)
    got += _read_until(c, b"--frame--", 3)
    check(b"--frame--" in got, "closing boundary", b"--frame--", got)


@test("streams: route device_timeout=4s waits 1.5 s for a head; timeout device=1s gives 504", timeout=30)
def t_stream_device_timeout(ctx):
    _stream_setup(ctx, "sse")
    c, r = get(ctx, "/live/slowhead")
    eq(r.status, 200, "device_timeout=4s: the late head")
    eq(r.body, b"late head\n", "its body")
    c, r = get(ctx, "/x/slowhead")
    eq(r.status, 504, "timeout device=1s: 504")


def _ws_echo(conn, req):
    conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    while True:
        d = conn.recv_some(timeout=10)
        if not d:
            break
        conn.send(d)
    conn.close()
    return False


def _ws_open(ctx, path):
    c = ctx.client()
    c.send(req_bytes("GET", path, headers=[("Connection", "Upgrade"), ("Upgrade", "websocket")]))
    r = c.read_head(timeout=5)
    eq(r.status, 101, "101 on %s" % path)
    return c


@test("streams: timeout tunnel=4s keeps a WebSocket silent 1.5 s (> client_idle=1s); stream_idle=1s cuts it",
      timeout=30)
def t_stream_tunnel(ctx):
    dev = ctx.device(_ws_echo, name="ws")
    ctx.start(ctx.config(pools=["pool w", "device w %s" % dev.addr],
                         routes=["route path=/short/ pool=w stream_idle=1s", "route pool=w"],
                         timeouts={"client_idle": 1000, "tunnel": 4000}))
    c = _ws_open(ctx, "/ws")
    time.sleep(1.5)
    c.send(b"ping")
    eq(c.read_exact(4, timeout=3), b"ping", "echo after 1.5 s of silence")
    c = _ws_open(ctx, "/short/ws")
    c.send(b"ping")
    eq(c.read_exact(4, timeout=3), b"ping", "echo at once")
    expect_closed(c, "a tunnel silent past stream_idle=1s", timeout=4)


# =====================================================================
# error pages
# =====================================================================

@test("error_page: rproxy's own 404 and 502 with the configured pages and types, others built in")
def t_error_page(ctx):
    page = b"<!doctype html><title>Not here</title><p>Nothing at this address.</p>\n"
    bad = b'{"error": "device unreachable"}'
    with open(ctx.path("e404.html"), "wb") as f:
        f.write(page)
    with open(ctx.path("e502.json"), "wb") as f:
        f.write(bad)
    dev = ctx.device(name="d")
    ctx.start(ctx.config(pools=["pool d", "device d %s" % dev.addr,
                                "pool dead", "device dead 127.0.0.1:%d" % free_port()],
                         routes=["route path=/dead/ pool=dead", "route path=/ok/ pool=d"],
                         extra='error_page 404 "%s"\nerror_page 502 503 %s'
                               % (ctx.path("e404.html"), ctx.path("e502.json"))))
    c, r = get(ctx, "/nowhere")
    eq(r.status, 404, "status")
    eq(r.get("Content-Type"), "text/html; charset=utf-8", "Content-Type from .html")
    eq(r.body, page, "the page")
    c, r = get(ctx, "/dead/x")
    eq(r.status, 502, "status")
    eq(r.get("Content-Type"), "application/json", "Content-Type from .json")
    eq(r.body, bad, "the 502 page")
    c = ctx.client()
    c.send(req_bytes("HEAD", "/nowhere"))
    r = c.read_response(method="HEAD")
    eq(r.status, 404, "HEAD status")
    eq(r.get("Content-Length"), str(len(page)), "HEAD: the page's length, no body")
    c, r = get(ctx, "/ok/../x", headers=[("Content-Length", "1"), ("Content-Length", "2")])
    eq(r.status, 400, "a status without a page")
    eq(r.body, b"Bad Request\n", "the built-in text")

"""t_forwarding.py -- plain forwarding and the head rproxy forwards: a byte-exact GET,
X-Forwarded-For/-Proto/-Host and Via (also `via NAME`), hop-by-hop headers removed in
both directions, absolute-form targets, two listen lines, and the devsim binary as a
real device.
"""

import hashlib
import json
import os
import socket
import subprocess
import time

from checks import (check, conn_tokens, dev_info, dispatch, eq, fail, get, pattern, req_bytes,
                    seen_header, test)
from devserver import response
from harness import DEVSIM, free_port


@test("basic GET: byte-exact body through curl, request line and Host as sent",
      valgrind=True)
def t_basic_get(ctx):
    body = pattern(200000)
    dev = ctx.device(dispatch({"/bin": lambda c, r: c.send(response(
        200, headers=[("Content-Type", "application/octet-stream")], body=body)) or True}))
    ctx.start(devices=[dev])
    out = ctx.path("out.bin")
    hdr = ctx.path("hdr.txt")
    rc, _, err = ctx.curl("-o", out, "-D", hdr, ctx.url("/bin?x=1&y=%20z"))
    eq(rc, 0, "curl exit code (stderr: %s)" % err.strip())
    with open(out, "rb") as f:
        got = f.read()
    eq(len(got), len(body), "body length")
    eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(body).hexdigest(), "body sha256")
    head = open(hdr, "rb").read().decode("latin-1")
    check(head.startswith("HTTP/1.1 200"), "status line", "HTTP/1.1 200 ...", head[:40])
    check("via: 1.1 rproxy" in head.lower(), "response Via", "Via: 1.1 rproxy", head)
    eq(len(dev.requests), 1, "requests seen by the device")
    r = dev.requests[0]
    eq(r.head_raw.split(b"\r\n")[0], b"GET /bin?x=1&y=%20z HTTP/1.1", "device request line")
    eq(r.get_all("Host"), ["127.0.0.1:%d" % ctx.port], "Host at the device")


@test("forwarded headers: XFF appended, X-Forwarded-Proto/Host replaced, Via appended")
def t_forwarded_headers(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c, r = get(ctx, "/fwd", host="example.test", headers=[
        ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"), ("Via", "1.0 client-proxy")])
    eq(r.status, 200, "status")
    info = dev_info(r)
    eq(seen_header(info, "Host"), ["example.test"], "Host at the device")
    eq(seen_header(info, "X-Forwarded-For"), ["1.2.3.4, 127.0.0.1"], "X-Forwarded-For")
    eq(seen_header(info, "X-Forwarded-Proto"), ["http"], "X-Forwarded-Proto (replaced)")
    eq(seen_header(info, "X-Forwarded-Host"), ["example.test"], "X-Forwarded-Host (replaced)")
    eq(seen_header(info, "Via"), ["1.0 client-proxy, 1.1 rproxy"], "Via (appended)")
    eq(info["version"], "HTTP/1.1", "version toward the device")


@test("forwarded headers: added when the client sent none (curl)")
def t_forwarded_headers_fresh(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    rc, out, err = ctx.curl("-H", "Host: plain.example", ctx.url("/fresh"))
    eq(rc, 0, "curl exit code (%s)" % err.strip())
    info = json.loads(out)
    eq(seen_header(info, "Host"), ["plain.example"], "Host")
    eq(seen_header(info, "X-Forwarded-For"), ["127.0.0.1"], "X-Forwarded-For")
    eq(seen_header(info, "X-Forwarded-Proto"), ["http"], "X-Forwarded-Proto")
    eq(seen_header(info, "X-Forwarded-Host"), ["plain.example"], "X-Forwarded-Host")
    eq(seen_header(info, "Via"), ["1.1 rproxy"], "Via")


HOP_REQ = [("Connection", "keep-alive, x-HOP"), ("X-Hop", "secret"),
           ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
           ("TE", "trailers"), ("Trailer", "X-Trail"), ("Upgrade", "h2c"),
           ("X-End", "kept")]
HOP_NAMES = ["X-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"]


@test("hop-by-hop: request headers (Connection + named, Keep-Alive, TE, ...) removed")
def t_hop_request(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c, r = get(ctx, "/hop", headers=HOP_REQ)
    eq(r.status, 200, "status")
    info = dev_info(r)
    for h in HOP_NAMES:
        eq(seen_header(info, h), [], "device must not see %s" % h)
    toks = conn_tokens(seen_header(info, "Connection"))
    check(set(toks) <= {"keep-alive", "close"}, "Connection at the device names only "
          "keep-alive/close", "no x-hop", toks)
    eq(seen_header(info, "X-End"), ["kept"], "end-to-end header kept")
    c.send(req_bytes("GET", "/again"))
    eq(c.read_response().status, 200, "second request on the connection")


def hop_response(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nConnection: X-Dev-Hop\r\nX-Dev-Hop: secret\r\n"
              b"Keep-Alive: timeout=5, max=100\r\nProxy-Connection: keep-alive\r\n"
              b"Trailer: X-Trail\r\nUpgrade: h2c\r\nTE: trailers\r\nX-End: kept\r\n"
              b"Content-Length: 2\r\n\r\nok")
    return True


@test("hop-by-hop: device's response hop-by-hop headers never reach the client")
def t_hop_response(ctx):
    dev = ctx.device(dispatch({"/hop": hop_response}))
    ctx.start(devices=[dev])
    c, r = get(ctx, "/hop")
    eq(r.status, 200, "status")
    eq(r.body, b"ok", "body")
    for h in ["X-Dev-Hop"] + HOP_NAMES:
        eq(r.get_all(h), [], "client must not see %s" % h)
    check(set(r.conn_tokens()) <= {"keep-alive", "close"}, "Connection to the client",
          "keep-alive/close only", r.get_all("Connection"))
    eq(r.get_all("X-End"), ["kept"], "end-to-end header kept")
    check(any("1.1 rproxy" in v for v in r.get_all("Via")), "Via added to the response",
          "1.1 rproxy", r.get_all("Via"))
    c.send(req_bytes("GET", "/plain"))
    eq(c.read_response().status, 200, "second request on the connection")


@test("absolute-form target: device sees origin-form and Host from the URI")
def t_absolute_form(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c, r = get(ctx, "http://abs.example/p/q?x=1", host="other.example")
    eq(r.status, 200, "status")
    info = dev_info(r)
    eq(info["target"], "/p/q?x=1", "target at the device")
    eq(seen_header(info, "Host"), ["abs.example"], "Host at the device")


@test("via NAME: the pseudonym is used in both directions")
def t_via_name(ctx):
    dev = ctx.device()
    ctx.start(ctx.config(devices=[dev], extra="via gw7"))
    c, r = get(ctx, "/v")
    eq(seen_header(dev_info(r), "Via"), ["1.1 gw7"], "Via at the device")
    eq(r.get_all("Via"), ["1.1 gw7"], "Via in the response")


@test("two listen lines: both listeners serve")
def t_two_listeners(ctx):
    dev = ctx.device()
    p2 = free_port()
    ctx.start(ctx.config(devices=[dev], extra="listen 127.0.0.1:%d" % p2))
    c, r = get(ctx, "/l1")
    eq(r.status, 200, "first listener")
    c = ctx.client(port=p2)
    c.send(req_bytes("GET", "/l2"))
    eq(dev_info(c.read_response())["target"], "/l2", "second listener")


@test("devsim: 20 keep-alive requests through rproxy (curl)")
def t_devsim(ctx):
    if not os.path.exists(DEVSIM):
        fail("devsim binary missing: %s (make build/devsim)" % DEVSIM, "a binary", "missing")
    port = free_port()
    p = subprocess.Popen([DEVSIM, "-p", str(port), "-a", "127.0.0.1", "-n", "sim"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx.popens.append(p)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            time.sleep(0.02)
    ctx.start(devices=["127.0.0.1:%d" % port])
    urls = [ctx.url("/d%d" % i) for i in range(20)]
    rc, out, err = ctx.curl(*urls)
    eq(rc, 0, "curl exit status (%s)" % err.strip())
    eq(out, b"hello from sim\n" * 20, "bodies")

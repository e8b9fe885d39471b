#!/usr/bin/env python3
"""run.py -- rproxy integration tests: the real daemon, real device servers, real clients.

    RPROXY=build/rproxy-asan DEVSIM=build/devsim python3 tests/integration/run.py [-k SUBSTR]
    python3 tests/integration/run.py --valgrind          (short subset under valgrind)
    python3 tests/integration/run.py --list

Every test starts its own rproxy (own generated config, free loopback ports) and its own
device servers (devserver.Device), drives it with curl and raw sockets, and is killed
after a hard timeout.  Output is TAP; diagnostics start with "# ".  Exit status 1 when
anything failed.  Python 3 stdlib only; loopback only.
"""

import argparse
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from devserver import chunked_bytes, echo, response  # noqa: E402
from harness import (DEVSIM, RPROXY, RPROXY_SMALL, Closed, Ctx, TestFailure,  # noqa: E402
                     free_port)

# ==== registry ====

TESTS = []


class Test:
    def __init__(self, name, fn, valgrind=False, serial=False, timeout=20.0):
        self.name = name
        self.fn = fn
        self.valgrind = valgrind
        self.serial = serial
        self.timeout = timeout


def test(name, valgrind=False, serial=False, timeout=20.0):
    def deco(fn):
        TESTS.append(Test(name, fn, valgrind, serial, timeout))
        return fn
    return deco


# ==== assertions ====

def fail(msg, expected=None, got=None):
    e = TestFailure(msg)
    e.expected = expected
    e.got = got
    raise e


def check(cond, msg, expected=None, got=None):
    if not cond:
        fail(msg, expected, got)


def eq(got, expected, what):
    if got != expected:
        fail(what, expected, got)


def short(b, n=300):
    if isinstance(b, (bytes, bytearray)) and len(b) > n:
        return repr(bytes(b[:n])) + "...(%d bytes)" % len(b)
    return repr(b)


# ==== data ====

_PATTERN = None


def pattern_block():
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = random.Random(12345).randbytes(1 << 20)
    return _PATTERN


def pattern(n):
    """n deterministic pseudo-random bytes."""
    blk = pattern_block()
    reps = n // len(blk) + 1
    return (blk * reps)[:n]


def pattern_sha(n):
    h = hashlib.sha256()
    blk = pattern_block()
    left = n
    while left:
        k = min(left, len(blk))
        h.update(blk[:k])
        left -= k
    return h.hexdigest()


# ==== common helpers ====

def dispatch(table, default=echo):
    """A device handler choosing by request path prefix (longest first)."""
    keys = sorted(table, key=len, reverse=True)

    def handler(conn, req):
        for k in keys:
            if req.target.startswith(k):
                return table[k](conn, req)
        return default(conn, req)
    return handler


def hang(conn, req):
    """Accept the request and never answer (until the device stops)."""
    while not conn.dev.stopping:
        time.sleep(0.05)
    return False


def req_bytes(method="GET", path="/", version="HTTP/1.1", host="test.example", headers=(),
              body=b""):
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding")
                        for k, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(ctx, path="/", client=None, **kw):
    """One GET on a (new) raw connection; returns (client, Response)."""
    c = client or ctx.client()
    c.send(req_bytes("GET", path, **kw))
    return c, c.read_response()


def dev_info(resp):
    try:
        return json.loads(resp.body)
    except ValueError:
        fail("device echo body is not JSON", "JSON", short(resp.body))


def seen_header(info, name):
    n = name.lower()
    return [v for k, v in info["headers"] if k.lower() == n]


def conn_tokens(values):
    out = []
    for v in values:
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def expect_closed(c, what, timeout=3.0):
    if not c.closed_within(timeout):
        fail(what + ": connection still open after %.1fs" % timeout, "EOF", "open")


def wait_stderr(px, pred, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = px.stderr()
        if pred(s):
            return s
        time.sleep(0.05)
    return px.stderr()


# =====================================================================
# [1] Basic forwarding and the forwarded head
# =====================================================================

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


# =====================================================================
# [2] Bodies
# =====================================================================

@test("POST 1 MiB Content-Length body arrives byte-exact (sha256)", valgrind=True)
def t_post_1mib(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    body = pattern(1 << 20)
    f = ctx.path("body.bin")
    with open(f, "wb") as fh:
        fh.write(body)
    rc, out, err = ctx.curl("-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                            "--data-binary", "@" + f, ctx.url("/upload"))
    eq(rc, 0, "curl exit code (%s)" % err.strip())
    info = json.loads(out)
    eq(info["method"], "POST", "method")
    eq(info["body_len"], 1 << 20, "body length at the device")
    eq(info["body_sha256"], hashlib.sha256(body).hexdigest(), "body sha256 at the device")
    eq(seen_header(info, "Content-Length"), [str(1 << 20)], "Content-Length at the device")


@test("chunked request body (raw socket, sent in pieces) arrives intact", valgrind=True)
def t_chunked_request(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    parts = [b"hello ", pattern(40000), b"x", pattern(70000)[::-1], b" end"]
    raw = chunked_bytes(parts)
    c = ctx.client()
    c.send(req_bytes("POST", "/chunked", headers=[("Transfer-Encoding", "chunked")]))
    # dribble the body: awkward split points, small pauses
    for i in range(0, len(raw), 7919):
        c.send(raw[i:i + 7919])
        if i < 40000:
            time.sleep(0.01)
    r = c.read_response()
    eq(r.status, 200, "status")
    info = dev_info(r)
    want = b"".join(parts)
    eq(info["body_len"], len(want), "body length at the device")
    eq(info["body_sha256"], hashlib.sha256(want).hexdigest(), "body sha256 at the device")
    check(not (seen_header(info, "Content-Length") and
               seen_header(info, "Transfer-Encoding")),
          "device must not get both Content-Length and Transfer-Encoding", "one",
          info["headers"])
    c.send(req_bytes("GET", "/after"))
    eq(c.read_response().status, 200, "next request on the same connection")


CHUNK_PARTS = [b"first-", pattern(30000), b"", b"-middle-", pattern(100000), b"-last"]


def chunked_resp(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    for p in CHUNK_PARTS:
        if p:
            conn.send(b"%x\r\n" % len(p) + p + b"\r\n")
            time.sleep(0.005)
    conn.send(b"0\r\n\r\n")
    return True


@test("chunked response: curl de-chunks it, HTTP/1.1 client sees Transfer-Encoding: chunked",
      valgrind=True)
def t_chunked_response(ctx):
    dev = ctx.device(dispatch({"/chunked": chunked_resp}))
    ctx.start(devices=[dev])
    hdr = ctx.path("hdr")
    rc, got, err = ctx.curl("-D", hdr, ctx.url("/chunked"), ctx.url("/chunked"))
    eq(rc, 0, "curl exit code (%s)" % err.strip())
    want = b"".join(CHUNK_PARTS) * 2   # both bodies on stdout, one connection
    eq(len(got), len(want), "de-chunked length (two responses)")
    eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(want).hexdigest(), "body sha256")
    head = open(hdr, "rb").read().decode("latin-1").lower()
    eq(head.count("transfer-encoding: chunked"), 2, "Transfer-Encoding: chunked in both "
       "responses")
    check("content-length" not in head, "no Content-Length on a chunked response",
          "none", head)
    # raw: the chunk framing is valid and the connection stays usable
    c, r = get(ctx, "/chunked")
    check(r.chunked, "raw client sees chunked framing", "chunked", r.headers)
    eq(r.body, b"".join(CHUNK_PARTS), "raw de-chunked body")
    c.send(req_bytes("GET", "/x"))
    eq(c.read_response().status, 200, "next request after a chunked response")
    eq(dev.conns, 1, "device connections used (pooled)")


@test("chunked response to an HTTP/1.0 client: de-chunked, no TE, Connection: close, EOF")
def t_chunked_response_http10(ctx):
    dev = ctx.device(dispatch({"/chunked": chunked_resp}))
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(b"GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n")
    r = c.read_head()
    eq(r.status, 200, "status")
    eq(r.get_all("Transfer-Encoding"), [], "Transfer-Encoding to a 1.0 client")
    check("close" in r.conn_tokens(), "Connection: close", "close", r.get_all("Connection"))
    body = c.read_until_close(timeout=5)
    want = b"".join(CHUNK_PARTS)
    if r.has("Content-Length"):
        eq(int(r.get("Content-Length")), len(want), "Content-Length if present")
    eq(len(body), len(want), "body length until close")
    eq(hashlib.sha256(body).hexdigest(), hashlib.sha256(want).hexdigest(), "body sha256")


def head_handler(conn, req):
    if req.method == "HEAD":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n"
                  b"ETag: \"h\"\r\n\r\n")
        return True
    return echo(conn, req)


@test("HEAD: no body, Content-Length kept, same connection serves the next request")
def t_head(ctx):
    dev = ctx.device(head_handler)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("HEAD", "/h"))
    r = c.read_response(method="HEAD")
    eq(r.status, 200, "HEAD status")
    eq(r.get("Content-Length"), "1234", "Content-Length on the HEAD response")
    c.send(req_bytes("GET", "/g"))
    r2 = c.read_response(timeout=3)
    eq(r2.status, 200, "GET after HEAD")
    eq(dev_info(r2)["target"], "/g", "second response is for /g")
    eq(dev.requests[0].method, "HEAD", "device got HEAD")


def continue_handler(conn, req):
    if req.get("Expect", "").lower() == "100-continue":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.read_body(req)
    return echo(conn, req)


@test("Expect: 100-continue: 100 arrives before the body is sent, then 200")
def t_expect_continue(ctx):
    dev = ctx.device(continue_handler)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(b"POST /exp HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
           b"Expect: 100-continue\r\n\r\n")
    try:
        r = c.read_head(timeout=3)
    except (socket.timeout, Closed) as e:
        fail("no 100 Continue before the body was sent", "HTTP/1.1 100", repr(e))
    eq(r.status, 100, "interim status")
    eq(r.version, "HTTP/1.1", "interim version")
    c.send(b"hello world")
    r = c.read_response()
    eq(r.status, 200, "final status")
    info = dev_info(r)
    eq(info["body_len"], 11, "body length at the device")
    eq(info["body_sha256"], hashlib.sha256(b"hello world").hexdigest(), "body at the device")
    eq(seen_header(info, "Expect"), ["100-continue"], "Expect forwarded to the device")


def nobody_handler(conn, req):
    if req.target == "/204":
        conn.send(b"HTTP/1.1 204 No Content\r\nX-Kind: 204\r\n\r\n")
    elif req.target == "/304":
        conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nX-Kind: 304\r\n\r\n")
    elif req.target == "/304cl":
        # a 304 may carry the representation's Content-Length; still no body follows
        conn.send(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 42\r\n\r\n")
    else:
        return echo(conn, req)
    return True


@test("204 and 304 carry no body; the connection serves the next request")
def t_204_304(ctx):
    dev = ctx.device(nobody_handler)
    ctx.start(devices=[dev])
    c = ctx.client()
    for path, status in (("/204", 204), ("/304", 304), ("/304cl", 304)):
        c.send(req_bytes("GET", path))
        r = c.read_response(timeout=3)
        eq(r.status, status, "status for %s" % path)
    c.send(req_bytes("GET", "/next"))
    r = c.read_response(timeout=3)
    eq(r.status, 200, "request after 204/304")
    eq(dev_info(r)["target"], "/next", "response matches /next")
    eq(c.buf, b"", "no stray bytes")


CLOSE_BODY = pattern(300000)


def close_delimited(conn, req):
    conn.send(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    for i in range(0, len(CLOSE_BODY), 50000):
        conn.send(CLOSE_BODY[i:i + 50000])
        time.sleep(0.005)
    conn.close()
    return False


@test("close-delimited device response: whole body, Connection: close, then EOF")
def t_close_delimited(ctx):
    dev = ctx.device(close_delimited)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/cd"))
    r = c.read_head()
    eq(r.status, 200, "status")
    check("close" in r.conn_tokens(), "Connection: close", "close", r.get_all("Connection"))
    eq(r.get_all("Content-Length"), [], "no Content-Length invented")
    eq(r.get_all("Transfer-Encoding"), [], "passed close-delimited (no chunking)")
    body = c.read_until_close(timeout=5)
    eq(len(body), len(CLOSE_BODY), "body length")
    eq(hashlib.sha256(body).hexdigest(), hashlib.sha256(CLOSE_BODY).hexdigest(), "sha256")


# =====================================================================
# [3] Connections: keep-alive, pooling, pipelining, upgrade
# =====================================================================

@test("keep-alive: HTTP/1.1 two requests on one socket", valgrind=True)
def t_keepalive_11(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c, r1 = get(ctx, "/one")
    eq(r1.status, 200, "first status")
    check("close" not in r1.conn_tokens(), "no Connection: close", "keep-alive",
          r1.get_all("Connection"))
    c.send(req_bytes("GET", "/two"))
    r2 = c.read_response()
    eq(r2.status, 200, "second status")
    eq(dev_info(r2)["target"], "/two", "second response is for /two")
    check(c.still_open(0.2), "connection still open after two requests", "open", "closed")


@test("keep-alive: HTTP/1.0 with Connection: keep-alive keeps the connection")
def t_keepalive_10(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client()
    for p in ("/a", "/b"):
        c.send(req_bytes("GET", p, version="HTTP/1.0", headers=[("Connection", "keep-alive")]))
        r = c.read_response(timeout=3)
        eq(r.status, 200, "status for %s" % p)
        check("keep-alive" in r.conn_tokens(), "Connection: keep-alive in the response",
              "keep-alive", r.get_all("Connection"))
        eq(dev_info(r)["target"], p, "response path")
    check(c.still_open(0.2), "connection open after two 1.0 keep-alive requests", "open",
          "closed")


@test("keep-alive: HTTP/1.0 without keep-alive gets Connection: close and EOF")
def t_http10_close(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/x", version="HTTP/1.0"))
    r = c.read_response()
    eq(r.status, 200, "status")
    eq(r.version, "HTTP/1.1", "response version")
    info = dev_info(r)
    eq(info["version"], "HTTP/1.1", "rproxy speaks HTTP/1.1 to the device for a 1.0 client")
    # RFC 9110 7.6.3: Via names the protocol received (1.0 here); the spec says 1.1
    check(seen_header(info, "Via") in (["1.0 rproxy"], ["1.1 rproxy"]), "Via at the device",
          "1.0 rproxy (or 1.1 rproxy)", seen_header(info, "Via"))
    check("close" in r.conn_tokens(), "Connection: close", "close", r.get_all("Connection"))
    expect_closed(c, "HTTP/1.0 without keep-alive")


@test("keep-alive: request with Connection: close -> response Connection: close, EOF")
def t_connection_close(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/x", headers=[("Connection", "close")]))
    r = c.read_response()
    eq(r.status, 200, "status")
    check("close" in r.conn_tokens(), "Connection: close", "close", r.get_all("Connection"))
    expect_closed(c, "after Connection: close")


@test("device pooling: 5 sequential client connections reuse 1 device connection")
def t_pooling(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    for i in range(5):
        c, r = get(ctx, "/p%d" % i)
        eq(r.status, 200, "status of request %d" % i)
        c.close()
        time.sleep(0.02)
    eq(len(dev.requests), 5, "requests at the device")
    eq(dev.conns, 1, "TCP connections accepted by the device")


def slow_first(conn, req):
    if req.target == "/one":
        time.sleep(0.3)
    return echo(conn, req)


@test("pipelining: 3 requests in one send -> 3 responses in order")
def t_pipelining(ctx):
    dev = ctx.device(slow_first)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/one") + req_bytes("GET", "/two") +
           req_bytes("HEAD", "/three") + req_bytes("GET", "/four"))
    got = []
    for m in ("GET", "GET", "HEAD", "GET"):
        r = c.read_response(method=m)
        eq(r.status, 200, "status")
        got.append(r.get("X-Echo-Target"))
    eq(got, ["/one", "/two", "/three", "/four"], "response order")
    eq(c.buf, b"", "no stray bytes")


def ws_handler(conn, req):
    conn.dev.state["upgrade"] = (req.get("Upgrade"), req.get_all("Connection"))
    conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    while True:
        d = conn.recv_some(timeout=10)
        if not d:
            conn.dev.state["ws_eof"] = True
            break
        conn.send(d)
    conn.close()
    return False


@test("WebSocket: 101 relayed with Upgrade/Connection, bytes both ways, close")
def t_websocket(ctx):
    dev = ctx.device(ws_handler)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/ws", headers=[
        ("Connection", "Upgrade"), ("Upgrade", "websocket"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]))
    r = c.read_head()
    eq(r.status, 101, "status")
    eq([v.lower() for v in r.get_all("Upgrade")], ["websocket"], "Upgrade in the 101")
    check("upgrade" in r.conn_tokens(), "Connection: Upgrade in the 101", "upgrade",
          r.get_all("Connection"))
    up, conn_h = dev.state.get("upgrade", (None, []))
    eq((up or "").lower(), "websocket", "Upgrade header at the device")
    check("upgrade" in conn_tokens(conn_h), "Connection: Upgrade at the device", "upgrade",
          conn_h)
    eq(dev.requests[0].get("Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==",
       "Sec-WebSocket-Key forwarded")
    c.send(b"ping")
    eq(c.read_exact(4, timeout=3), b"ping", "echo through the tunnel")
    big = pattern(100000)
    c.send(big)
    eq(c.read_exact(len(big), timeout=5), big, "100 kB echoed through the tunnel")
    c.sock.shutdown(socket.SHUT_WR)
    check(dev.wait_for(lambda d: d.state.get("ws_eof"), 3), "device sees the client's close",
          "EOF at the device", "still open")
    expect_closed(c, "tunnel after both sides closed")


# =====================================================================
# [4] Routing and balancing
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


# =====================================================================
# [5] Errors and timeouts
# =====================================================================

def expect_error(ctx, status, path="/", check_close=True, timeout=5.0):
    c = ctx.client()
    t0 = time.monotonic()
    c.send(req_bytes("GET", path))
    try:
        r = c.read_response(timeout=timeout)
    except Closed as e:
        fail("connection closed without a response", status, short(e.got))
    dt = time.monotonic() - t0
    eq(r.status, status, "status")
    if check_close:
        expect_closed(c, "after a %d" % status)
    return r, dt


@test("502 when the device port is closed")
def t_502_refused(ctx):
    ctx.start(devices=["127.0.0.1:%d" % free_port()])
    expect_error(ctx, 502)


@test("502 for a garbage status line from the device")
def t_502_garbage(ctx):
    dev = ctx.device(lambda c, r: c.send(b"HTTP/1.1 OK 200\r\nContent-Length: 2\r\n\r\nhi")
                     or True)
    ctx.start(devices=[dev])
    expect_error(ctx, 502)


@test("502 for a device response with Content-Length and Transfer-Encoding")
def t_502_cl_te(ctx):
    dev = ctx.device(lambda c, r: c.send(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n") or True)
    ctx.start(devices=[dev])
    expect_error(ctx, 502)


@test("502 for a device response with an invalid Content-Length")
def t_502_bad_cl(ctx):
    dev = ctx.device(lambda c, r: c.send(
        b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nhello world!") or True)
    ctx.start(devices=[dev])
    expect_error(ctx, 502)


@test("503 when every device of the pool has weight=0")
def t_503_weight0(ctx):
    dev = ctx.device()
    ctx.start(ctx.config(pools=["pool p", "device p %s weight=0" % dev.addr]))
    expect_error(ctx, 503)
    eq(dev.conns, 0, "device connections")


@test("504 when the device accepts and never answers (timeout device=500)", serial=True)
def t_504(ctx):
    dev = ctx.device(hang)
    ctx.start(devices=[dev], timeouts={"device": 500})
    r, dt = expect_error(ctx, 504, timeout=8)
    check(dt >= 0.4, "504 not before the timeout", ">= 0.4 s", "%.3f s" % dt)
    check(dt < 5, "504 soon after the timeout", "< 5 s", "%.3f s" % dt)


@test("408 when the client stalls inside its head (client_header=500)", serial=True)
def t_408(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev], timeouts={"client_header": 500})
    c = ctx.client()
    t0 = time.monotonic()
    c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Partial: y")
    try:
        r = c.read_head(timeout=5)
    except Closed as e:
        fail("closed without a 408", "408", short(e.got))
    dt = time.monotonic() - t0
    eq(r.status, 408, "status")
    check(dt >= 0.4, "408 not before the timeout", ">= 0.4 s", "%.3f s" % dt)
    c.read_until_close(timeout=3)
    eq(dev.conns, 0, "device connections")


@test("idle keep-alive client connection closed after client_idle=500", serial=True)
def t_client_idle(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev], timeouts={"client_idle": 500})
    c, r = get(ctx, "/x")
    eq(r.status, 200, "status")
    t0 = time.monotonic()
    expect_closed(c, "idle connection", timeout=4)
    dt = time.monotonic() - t0
    check(dt >= 0.4, "not closed before client_idle", ">= 0.4 s", "%.3f s" % dt)


def die_mid_body(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + pattern(200000))
    time.sleep(0.1)
    conn.close()
    return False


def two_routes(ctx, handler):
    """Two devices behind /one and /two (a device that broke may be marked down)."""
    d1, d2 = ctx.device(handler, name="d1"), ctx.device(handler, name="d2")
    ctx.start(ctx.config(pools=["pool a", "device a %s" % d1.addr,
                                "pool b", "device b %s" % d2.addr],
                         routes=["route path=/one pool=a", "route path=/two pool=b"]))
    return d1, d2


@test("device dies mid-body (Content-Length): curl sees a short transfer (exit 18)")
def t_die_mid_body(ctx):
    two_routes(ctx, die_mid_body)
    rc, out, err = ctx.curl("-o", ctx.path("o"), ctx.url("/one/die"))
    eq(rc, 18, "curl exit code (partial file) (%s)" % err.strip())
    c = ctx.client()
    c.send(req_bytes("GET", "/two/die"))
    r = c.read_head()
    eq(r.status, 200, "status")
    body = c.read_until_close(timeout=5)
    check(len(body) < 1000000, "short body then close", "< 1000000 bytes and EOF", len(body))


def die_mid_chunked(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"10000\r\n" + pattern(0x10000) + b"\r\n" + b"10000\r\n" + pattern(1000))
    time.sleep(0.1)
    conn.close()
    return False


@test("device dies mid-body (chunked): client connection closed, no terminating chunk")
def t_die_mid_chunked(ctx):
    two_routes(ctx, die_mid_chunked)
    c = ctx.client()
    c.send(req_bytes("GET", "/one/die"))
    r = c.read_head()
    eq(r.status, 200, "status")
    data = c.read_until_close(timeout=5)
    check(not data.endswith(b"0\r\n\r\n"), "no last-chunk invented", "truncated stream",
          short(data[-20:]))
    rc, out, err = ctx.curl("-o", ctx.path("o"), ctx.url("/two/die"))
    eq(rc, 18, "curl exit code for a truncated chunked body (%s)" % err.strip())


# =====================================================================
# [6] Backpressure
# =====================================================================

BIG = 64 << 20
BP_LIMIT = 8 << 20


def kernel_queued(ports):
    """Bytes sitting in kernel socket queues (tx_queue + rx_queue from /proc/net/tcp) of
    every established loopback connection touching one of ports."""
    total = 0
    try:
        with open("/proc/net/tcp") as f:
            lines = f.readlines()[1:]
    except OSError:
        return None
    for ln in lines:
        parts = ln.split()
        lport = int(parts[1].split(":")[1], 16)
        rport = int(parts[2].split(":")[1], 16)
        if parts[3] != "01" or not (lport in ports or rport in ports):
            continue
        tx, rx = (int(x, 16) for x in parts[4].split(":"))
        total += tx + rx
    return total


def held_by_proxy(ctx, sent, ports):
    """sent - bytes queued in the kernel = bytes rproxy holds in user space (approx.)."""
    q = kernel_queued(ports)
    if q is None:
        return None
    held = sent - q
    ctx.note("kernel queues hold %d bytes, so rproxy holds about %d bytes itself" % (q, held))
    return held


HELD_LIMIT = 256 << 10  # rproxy's fixed buffers: 2 x 2 x 16 KiB; the rest is slack


def big_download(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Length: %d\r\n\r\n" % BIG)
    blk = pattern_block()
    step = 65536
    left = BIG
    off = 0
    while left:
        k = min(step, left)
        conn.send(blk[off:off + k])
        off = (off + k) % len(blk)
        left -= k
    return True


@test("backpressure: client reading nothing for 2 s stops the device (< 8 MiB sent); "
      "then 64 MiB arrive byte-exact", serial=True, timeout=40)
def t_backpressure_download(ctx):
    dev = ctx.device(big_download, sndbuf=65536)
    ctx.start(devices=[dev])
    c = ctx.client(rcvbuf=65536, timeout=20)
    c.send(req_bytes("GET", "/big"))
    check(dev.wait_requests(1, 3), "device got the request", "1 request", 0)
    time.sleep(2.0)
    sent = dev.sent_total
    ctx.note("device managed to send %d bytes while the client read nothing" % sent)
    check(sent < BP_LIMIT, "device blocked early", "< %d bytes" % BP_LIMIT, sent)
    check(sent > 0, "device sent something", "> 0", sent)
    held = held_by_proxy(ctx, sent, {dev.port, ctx.port})
    if held is not None:
        check(held < HELD_LIMIT, "bytes buffered inside rproxy (sent - kernel queues)",
              "< %d" % HELD_LIMIT, held)
    r = c.read_head(timeout=10)
    eq(r.status, 200, "status")
    eq(r.get("Content-Length"), str(BIG), "Content-Length")
    h = hashlib.sha256()
    n = len(c.buf)
    h.update(c.buf)
    c.buf = b""
    c.sock.settimeout(20)
    while n < BIG:
        d = c.sock.recv(1 << 20)
        if not d:
            break
        n += len(d)
        h.update(d)
    eq(n, BIG, "bytes received")
    eq(h.hexdigest(), pattern_sha(BIG), "sha256 of 64 MiB")


def lazy_upload(conn, req):
    ev = conn.dev.state["go"]
    ev.wait(15)
    n, sha = conn.read_body_chunks(req, None)
    body = json.dumps({"n": n, "sha": sha}).encode()
    conn.send(response(200, body=body))
    return True


@test("backpressure: device not reading an upload blocks the client early (< 8 MiB); "
      "then 64 MiB arrive byte-exact", serial=True, timeout=40)
def t_backpressure_upload(ctx):
    dev = ctx.device(lazy_upload, read_body=False, rcvbuf=65536)
    dev.state["go"] = threading.Event()
    ctx.start(devices=[dev])
    c = ctx.client(sndbuf=65536, timeout=20)
    c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Length: %d\r\n\r\n" % BIG)
    check(dev.wait_requests(1, 3), "device got the request head", "1 request", 0)
    blk = pattern_block()
    sent = 0
    c.sock.setblocking(False)
    t_end = time.monotonic() + 2.0
    while time.monotonic() < t_end:
        off = sent % len(blk)
        try:
            sent += c.sock.send(blk[off:off + 65536])
        except BlockingIOError:
            select.select([], [c.sock], [], 0.05)
    ctx.note("client managed to send %d bytes while the device read nothing" % sent)
    check(sent < BP_LIMIT, "client blocked early", "< %d bytes" % BP_LIMIT, sent)
    held = held_by_proxy(ctx, sent + len(c.log[0][1]), {dev.port, ctx.port})
    if held is not None:
        check(held < HELD_LIMIT, "bytes buffered inside rproxy (sent - kernel queues)",
              "< %d" % HELD_LIMIT, held)
    dev.state["go"].set()
    c.sock.settimeout(20)
    while sent < BIG:
        off = sent % len(blk)
        k = min(len(blk) - off, BIG - sent, 1 << 20)
        sent += c.sock.send(blk[off:off + k])
    r = c.read_response(timeout=20)
    eq(r.status, 200, "status")
    info = json.loads(r.body)
    eq(info["n"], BIG, "bytes at the device")
    eq(info["sha"], pattern_sha(BIG), "sha256 at the device")


# =====================================================================
# [7] Bad input: one line per case
# =====================================================================

CHUNK_BAD = "chunk"   # marker: the head may have reached the device, body must not

BAD = [
    ("CL+TE", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("duplicate Content-Length (equal)", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    ("Content-Length +5", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"),
    ("Content-Length ' 5 5'", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  5 5\r\n\r\nhello"),
    ("Content-Length 0x5", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello"),
    ("Content-Length '5, 5'", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"),
    ("Content-Length -1", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
    ("Transfer-Encoding gzip, chunked", 501,
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("Transfer-Encoding chunked, chunked", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    ("Transfer-Encoding chunked, gzip", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    ("Transfer-Encoding in HTTP/1.0", 400,
     b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("obs-fold", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
    ("whitespace before colon (Host : x)", 400, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("bare CR in a header", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
    ("bare LF ending the request line", 400, b"GET / HTTP/1.1\nHost: x\r\n\r\n"),
    ("bare LF line endings throughout", 400, b"GET / HTTP/1.1\nHost: x\nX-A: b\n\n"),
    ("NUL in a header value", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("invalid method token char", 400, b"GE(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("invalid header name char '('", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX(A: b\r\n\r\n"),
    ("invalid header name char '@'", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n"),
    ("no Host in HTTP/1.1", 400, b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n"),
    ("two Host headers", 400, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
    ("5000-byte target", 414, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("9000-byte header", 431, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000
     + b"\r\n\r\n"),
    ("100 header fields", 431, b"GET / HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n"),
    ("HTTP/2.0", 505, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
    ("HTTP/0.9 style request line (no version)", 400, b"GET /\r\nHost: x\r\n\r\n"),
    ("garbage request line", 400, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    ("Expect: foo", 417, b"GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n"),
    ("CONNECT", 405, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    ("chunk size zz", CHUNK_BAD,
     b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nAFTERBAD\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("chunk size overflow (19 hex digits)", CHUNK_BAD,
     b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"fffffffffffffffffff\r\nAFTERBAD\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("chunk data not followed by CRLF", CHUNK_BAD,
     b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabcXX\r\nAFTERBAD\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"),
]

VALGRIND_BAD = {"CL+TE", "obs-fold", "5000-byte target", "9000-byte header", "chunk size zz"}


def make_bad_test(label, expect, raw):
    def fn(ctx):
        dev = ctx.device()
        ctx.start(devices=[dev])
        good = ctx.client()          # opened (and used) BEFORE the bad one
        good.send(req_bytes("GET", "/before"))
        eq(good.read_response().status, 200, "normal request before the bad one")
        snap = dev.snapshot()
        bad = ctx.client()
        bad.send(raw, ignore_errors=True)
        status = None
        try:
            r = bad.read_head(timeout=5)
            status = r.status
        except Closed:
            pass
        except socket.timeout:
            fail("no response and no close within 5 s", expect, "silence")
        if expect == CHUNK_BAD:
            check(status in (None, 400), "bad chunk: 400 or a plain close", "400/close",
                  status)
        else:
            eq(status, expect, "status")
        try:
            bad.read_until_close(timeout=4)
        except socket.timeout:
            fail("connection not closed after the error", "EOF", "still open")
        time.sleep(0.15)
        with dev.lock:
            delta = bytes(dev.raw[snap["raw"]:])
        if expect == CHUNK_BAD:
            check(b"AFTERBAD" not in delta and b"/second" not in delta,
                  "device got nothing past the bad chunk line", "head at most", short(delta))
            check(delta.count(b" HTTP/1.1\r\n") <= 1, "at most one request head at the device",
                  "<= 1", short(delta))
        else:
            eq(delta, b"", "bytes that reached the device")
        good.send(req_bytes("GET", "/after"))
        r2 = good.read_response(timeout=5)
        eq(r2.status, 200, "the earlier connection still works")
        eq(dev_info(r2)["target"], "/after", "its response")
    fn.__name__ = "t_bad_" + label
    return fn


for _label, _expect, _raw in BAD:
    test("bad input: %s -> %s" % (_label, "400 or close" if _expect == CHUNK_BAD else _expect),
         valgrind=_label in VALGRIND_BAD)(make_bad_test(_label, _expect, _raw))


# =====================================================================
# [7b] More edges: device-side connection reuse, failover, limits, 1xx
# =====================================================================

def close_after_reply(conn, req):
    """Answer keep-alive, then close the connection 100 ms later (a device whose
    idle timeout is shorter than rproxy's)."""
    echo(conn, req)
    time.sleep(0.1)
    conn.close()
    return False


@test("pooled device connection closed by the device (idle) -> next request still 200")
def t_pool_stale_idle(ctx):
    dev = ctx.device(close_after_reply)
    ctx.start(devices=[dev])
    c, r = get(ctx, "/first")
    eq(r.status, 200, "first")
    time.sleep(0.4)
    c.send(req_bytes("GET", "/second"))
    r = c.read_response()
    eq(r.status, 200, "request after the device closed its idle connection")
    eq(dev_info(r)["target"], "/second", "response for /second")


def drop_second_on_conn(conn, req):
    """On connection 0, answer the first request and drop the connection when the
    second arrives (the race of a device closing an idle connection)."""
    if conn.index == 0 and conn.dev.state.get("answered"):
        conn.close()
        return False
    conn.dev.state["answered"] = True
    return echo(conn, req)


@test("request on a pooled connection the device drops without answering is retried "
      "(GET, retries=2 default) on a fresh connection")
def t_pool_retry(ctx):
    dev = ctx.device(drop_second_on_conn)
    ctx.start(devices=[dev])
    c, r = get(ctx, "/first")
    eq(r.status, 200, "first")
    c.send(req_bytes("GET", "/second"))
    r = c.read_response()
    eq(r.status, 200, "second request (retried)")
    eq(dev_info(r)["target"], "/second", "response for /second")
    eq(dev_info(r)["conn"], 1, "served on a fresh device connection")


@test("device_idle: pooled device connection closed by rproxy after device_idle=300",
      serial=True)
def t_device_idle(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev], timeouts={"device_idle": 300})
    c, r = get(ctx, "/x")
    eq(r.status, 200, "status")
    check(dev.wait_for(lambda d: d.eofs >= 1, 3), "device connection closed by rproxy",
          "EOF at the device within 3 s", "still open")


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


@test("via NAME: the pseudonym is used in both directions")
def t_via_name(ctx):
    dev = ctx.device()
    ctx.start(ctx.config(devices=[dev], extra="via gw7"))
    c, r = get(ctx, "/v")
    eq(seen_header(dev_info(r), "Via"), ["1.1 gw7"], "Via at the device")
    eq(r.get_all("Via"), ["1.1 gw7"], "Via in the response")


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


@test("limits: 4096-byte target, 60 header fields and a 7.5 kB head are accepted")
def t_limits_ok(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c, r = get(ctx, "/" + "t" * 4095)
    eq(r.status, 200, "4096-byte target")
    eq(len(dev_info(r)["target"]), 4096, "target length at the device")
    # rproxy adds X-Forwarded-For/-Proto/-Host and Via: 60 client fields
    # reach the device as 64, the most rproxy itself accepts.
    c, r = get(ctx, "/h", headers=[("X-F%d" % i, "v") for i in range(59)])
    eq(r.status, 200, "60 header fields (Host + 59)")
    eq(len(dev_info(r)["headers"]), 64, "fields the device received")
    c, r = get(ctx, "/h", headers=[("X-F%d" % i, "v") for i in range(60)])
    eq(r.status, 431, "61 fields: the forwarded head would pass the 64-field limit")
    c, r = get(ctx, "/b", headers=[("X-Big", "b" * 7500)])
    eq(r.status, 200, "7.5 kB header")
    eq(seen_header(dev_info(r), "X-Big"), ["b" * 7500], "big header forwarded intact")


def big_response_head(conn, req):
    if req.target == "/bighead":
        conn.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * 9000 + b"\r\nContent-Length: 2\r\n\r\nok")
    else:
        conn.send(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-R%d: v\r\n" % i for i in range(100))
                  + b"Content-Length: 2\r\n\r\nok")
    return True


@test("502 for a device response head over 8 kB or with 100 fields")
def t_502_big_head(ctx):
    two_routes(ctx, big_response_head)
    expect_error(ctx, 502, path="/one/bighead")
    expect_error(ctx, 502, path="/two/manyfields")


def early_hints(conn, req):
    conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
    time.sleep(0.05)
    return echo(conn, req)


@test("1xx: a 103 from the device is relayed to HTTP/1.1 clients, not to HTTP/1.0 ones")
def t_1xx(ctx):
    dev = ctx.device(early_hints)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/eh"))
    r = c.read_head()
    eq(r.status, 103, "interim response to the 1.1 client")
    r = c.read_response()
    eq(r.status, 200, "final response")
    c = ctx.client()
    c.send(req_bytes("GET", "/eh", version="HTTP/1.0"))
    r = c.read_head()
    eq(r.status, 200, "HTTP/1.0 client gets no 1xx")


@test("pipelining with bodies: CL POST + chunked POST + GET in one send")
def t_pipelining_bodies(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("POST", "/a", body=b"0123456789") +
           req_bytes("POST", "/b", headers=[("Transfer-Encoding", "chunked")]) +
           chunked_bytes([b"abc", b"defgh"]) + req_bytes("GET", "/c"))
    want = [("/a", b"0123456789"), ("/b", b"abcdefgh"), ("/c", b"")]
    for path, body in want:
        r = c.read_response()
        info = dev_info(r)
        eq(info["target"], path, "response order")
        eq(info["body_sha256"], hashlib.sha256(body).hexdigest(), "body of %s" % path)


@test("client aborts mid-upload: the half-used device connection is not reused")
def t_client_abort_upload(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
    check(dev.wait_requests(1, 3), "device got the head", "1", 0)
    c.close()
    time.sleep(0.2)
    c2, r = get(ctx, "/next")
    eq(r.status, 200, "next request")
    info = dev_info(r)
    eq(info["target"], "/next", "response for /next")
    check(info["conn"] != 0, "not sent on the poisoned device connection", "conn >= 1",
          info["conn"])
    check(dev.wait_for(lambda d: d.eofs + len(d.errors) >= 1, 3),
          "poisoned device connection closed", "closed", "open")


def slow_big(conn, req):
    if req.target.startswith("/big"):
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
        try:
            for _ in range(100):
                conn.send(pattern(100000))
                time.sleep(0.01)
        except OSError:
            conn.close()
            return False
        return True
    return echo(conn, req)


@test("client aborts mid-response: next client gets a correct response")
def t_client_abort_download(ctx):
    dev = ctx.device(slow_big)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/big"))
    r = c.read_head()
    eq(r.status, 200, "status")
    c.read_exact(1000)
    c.close()
    time.sleep(0.2)
    c2, r = get(ctx, "/next")
    eq(r.status, 200, "next request")
    eq(dev_info(r)["target"], "/next", "response for /next")


def stall_mid_body(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
    return hang(conn, req)


@test("device stalls mid-body: client connection closed after timeout device=500",
      serial=True)
def t_device_stall_mid_body(ctx):
    dev = ctx.device(stall_mid_body)
    ctx.start(devices=[dev], timeouts={"device": 500})
    c = ctx.client()
    c.send(req_bytes("GET", "/stall"))
    r = c.read_head()
    eq(r.status, 200, "status")
    t0 = time.monotonic()
    try:
        body = c.read_until_close(timeout=5)
    except socket.timeout:
        fail("client connection still open 5 s after the device went silent", "close",
             "open")
    check(len(body) < 1000, "short body", "< 1000", len(body))
    check(time.monotonic() - t0 >= 0.3, "closed only after the timeout", ">= 0.3 s",
          time.monotonic() - t0)


def head_chunked(conn, req):
    if req.method == "HEAD":
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-H: 1\r\n\r\n")
        return True
    return echo(conn, req)


@test("HEAD answered with Transfer-Encoding: chunked: no body expected, next request works")
def t_head_chunked(ctx):
    dev = ctx.device(head_chunked)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("HEAD", "/h"))
    r = c.read_response(method="HEAD", timeout=3)
    eq(r.status, 200, "HEAD status")
    c.send(req_bytes("GET", "/g"))
    r = c.read_response(timeout=3)
    eq(dev_info(r)["target"], "/g", "GET after HEAD")


def no_reuse_handler(conn, req):
    if req.target == "/close":
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    elif req.target == "/http10":
        conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    else:
        return echo(conn, req)
    return True      # keep our end open: reusing it would be rproxy's mistake


@test("device answers with Connection: close / HTTP/1.0: that connection is not reused")
def t_device_no_reuse(ctx):
    dev = ctx.device(no_reuse_handler)
    ctx.start(devices=[dev])
    for path, want_conn in (("/close", 0), ("/check1", 1), ("/http10", 1), ("/check2", 2)):
        c, r = get(ctx, path)
        eq(r.status, 200, "status for %s" % path)
        eq(r.body if path in ("/close", "/http10") else r.body[:1], b"ok" if path in
           ("/close", "/http10") else b"{", "body for %s" % path)
        time.sleep(0.05)
    conns = [q.conn_index for q in dev.requests]
    eq(conns, [0, 1, 1, 2], "device connection used by each request")


def trailers_handler(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
              b"5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 15\r\n\r\n")
    return True


@test("chunked response with chunk extensions and trailers: valid framing, next request works")
def t_chunked_trailers_response(ctx):
    dev = ctx.device(dispatch({"/t": trailers_handler}))
    ctx.start(devices=[dev])
    c, r = get(ctx, "/t")
    eq(r.status, 200, "status")
    eq(r.body, b"hello0123456789", "body")
    c.send(req_bytes("GET", "/next"))
    r = c.read_response(timeout=3)
    eq(dev_info(r)["target"], "/next", "next response")
    rc, out, err = ctx.curl(ctx.url("/t"))
    eq((rc, out), (0, b"hello0123456789"), "curl result (%s)" % err.strip())


@test("chunked request with extensions, trailers, upper-case hex and 'Chunked' spelling")
def t_chunked_request_ext(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client()
    body = b"a" * 26
    c.send(b"POST /ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
           b"1A;foo=bar\r\n" + body + b"\r\n0\r\nX-Trailer: yes\r\n\r\n")
    r = c.read_response()
    eq(r.status, 200, "status")
    eq(dev_info(r)["body_sha256"], hashlib.sha256(body).hexdigest(), "body at the device")
    c.send(req_bytes("GET", "/next"))
    eq(dev_info(c.read_response())["target"], "/next", "next request on the connection")


@test("requests pipelined after 'Connection: close' are not forwarded")
def t_after_close_ignored(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("GET", "/a", headers=[("Connection", "close")]) + req_bytes("GET", "/b"))
    r = c.read_response()
    eq(dev_info(r)["target"], "/a", "first response")
    try:
        c.read_until_close(timeout=3)
    except socket.timeout:
        fail("connection not closed after Connection: close", "EOF", "open")
    time.sleep(0.1)
    eq(dev.paths(), ["/a"], "requests at the device")


@test("concurrency: 40 clients x 15 keep-alive requests, every response matches", timeout=40)
def t_concurrency(ctx):
    devs = [ctx.device(name="D%d" % i) for i in range(2)]
    ctx.start(devices=devs)
    errors = []

    def one(k):
        try:
            c = ctx.client(timeout=10)
            for i in range(15):
                path = "/k%d/r%d" % (k, i)
                body = b"x" * (k * 37 + i)
                if i % 3 == 0:
                    c.send(req_bytes("POST", path, body=body))
                else:
                    c.send(req_bytes("GET", path))
                r = c.read_response()
                info = json.loads(r.body)
                if r.status != 200 or info["target"] != path or \
                        (i % 3 == 0 and info["body_len"] != len(body)):
                    errors.append("client %d request %d: got %s %s" % (k, i, r.status,
                                                                     info["target"]))
                    return
        except Exception as e:     # noqa: BLE001
            errors.append("client %d: %r" % (k, e))

    ths = [threading.Thread(target=one, args=(k,)) for k in range(40)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    eq(errors[:5], [], "mismatched/failed exchanges")
    eq(sum(len(d.requests) for d in devs), 600, "requests at the devices")


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


@test("device slot exhaustion (RP_MAX_UPSTREAM=4 build): 5th concurrent request gets 503, "
      "the 4 busy ones complete", serial=True)
def t_upstream_exhaustion(ctx):
    if not os.path.exists(RPROXY_SMALL):
        fail("small-limits build missing: %s" % RPROXY_SMALL, "a binary", "missing")
    slow = lambda c, r: (time.sleep(1.0) if r.target.startswith("/slow") else None) or echo(c, r)
    dev = ctx.device(slow)
    ctx.start(devices=[dev], binary=RPROXY_SMALL)
    busy = []
    for i in range(4):
        c = ctx.client()
        c.send(req_bytes("GET", "/slow%d" % i))
        busy.append(c)
    check(dev.wait_requests(4, 3), "4 slow requests at the device", 4, len(dev.requests))
    c = ctx.client()
    c.send(req_bytes("GET", "/fifth"))
    r = c.read_response(timeout=3)
    eq(r.status, 503, "5th concurrent request")
    for i, b in enumerate(busy):
        eq(b.read_response(timeout=5).status, 200, "busy request %d" % i)
    c, r = get(ctx, "/after")
    eq(r.status, 200, "request after the slots freed up")


def expect_reject(conn, req):
    if req.target == "/reject":
        conn.send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        return True     # body (if it ever comes) is read by the framework after this
    return echo(conn, req)


@test("Expect: 100-continue answered with a final 401: body never misread as a request")
def t_expect_rejected(ctx):
    dev = ctx.device(expect_reject)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(b"POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
           b"Expect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=3)
    eq(r.status, 401, "final status without 100")
    c.send(b"hello world" + req_bytes("GET", "/next"), ignore_errors=True)
    try:
        r2 = c.read_response(timeout=3)
    except Closed:
        r2 = None          # closing after the 401 is fine
    if r2 is not None:
        eq(r2.status, 200, "request after the body (if the connection was kept)")
        eq(dev_info(r2)["target"], "/next", "its response")
    time.sleep(0.1)
    check(not any(q.method.startswith("hello") for q in dev.requests),
          "body not parsed as a request at the device", "no 'hello world...' request",
          [q.method for q in dev.requests])


def early_413(conn, req):
    conn.send(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close"
              b"\r\n\r\nbig\n")
    time.sleep(0.2)
    conn.close()
    return False


@test("device answers 413 before reading a 4 MiB upload: client gets the 413")
def t_early_response(ctx):
    dev = ctx.device(early_413, read_body=False)
    ctx.start(devices=[dev])
    c = ctx.client(timeout=5)
    c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (4 << 20))
    check(dev.wait_requests(1, 3), "head at the device", 1, 0)
    sender = threading.Thread(target=c.send, args=(pattern(4 << 20),),
                              kwargs={"ignore_errors": True}, daemon=True)
    sender.start()
    try:
        r = c.read_response(timeout=5)
    except Closed as e:
        fail("connection closed without the device's 413", "413", short(e.got))
    eq(r.status, 413, "status")
    eq(r.body, b"big\n", "body")


@test("pipelining: 150 requests (> 16 KiB of heads) in one send, answered in order")
def t_pipelining_many(ctx):
    dev = ctx.device()
    ctx.start(devices=[dev])
    c = ctx.client(timeout=10)
    reqs = b"".join(req_bytes("GET", "/p%03d" % i, headers=[("X-Pad", "p" * 100)])
                    for i in range(150))
    check(len(reqs) > 16384, "heads exceed one buffer", "> 16384", len(reqs))
    sender = threading.Thread(target=c.send, args=(reqs,), daemon=True)
    sender.start()
    for i in range(150):
        r = c.read_response()
        eq(r.get("X-Echo-Target"), "/p%03d" % i, "response %d" % i)
    sender.join(5)


@test("Expect: 100-continue to a device that ignores it: body sent after a pause gets through")
def t_expect_ignored(ctx):
    dev = ctx.device(lambda c, r: c.read_body(r) is not None and echo(c, r), read_body=False)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(b"POST /exp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Expect: 100-continue\r\n\r\n")
    time.sleep(0.3)
    c.send(b"abcde")
    r = c.read_response(timeout=5)
    eq(r.status, 200, "final status")
    eq(dev_info(r)["body_len"], 5, "body at the device")


@test("SIGINT: graceful stop, exit 0")
def t_sigint(ctx):
    dev = ctx.device()
    px = ctx.start(devices=[dev])
    c, r = get(ctx, "/x")
    eq(r.status, 200, "status")
    c.close()
    px.expect_exit = True
    px.signal(signal.SIGINT)
    eq(px.wait_exit(5), 0, "exit status after SIGINT")


# =====================================================================
# [8] Limits, signals, CLI, access log, devsim
# =====================================================================

@test("slot exhaustion (RP_MAX_CONNS=8 build): 9th client gets 503/close, first 8 still "
      "work", serial=True)
def t_slot_exhaustion(ctx):
    if not os.path.exists(RPROXY_SMALL):
        fail("small-limits build missing: %s (build it with -DRP_MAX_CONNS=8 "
             "-DRP_MAX_UPSTREAM=4; set RPROXY_SMALL)" % RPROXY_SMALL, "a binary", "missing")
    dev = ctx.device()
    ctx.start(devices=[dev], binary=RPROXY_SMALL)
    time.sleep(0.2)   # let the start-up probe connection be reaped
    clients = []
    for i in range(8):
        c, r = get(ctx, "/c%d" % i)
        eq(r.status, 200, "client %d status" % i)
        clients.append(c)
    x = ctx.client()
    x.send(req_bytes("GET", "/ninth"), ignore_errors=True)
    try:
        data = x.read_until_close(timeout=4)
    except socket.timeout:
        fail("9th connection neither refused nor closed", "503 or close", short(x.buf))
    check(data == b"" or data.startswith(b"HTTP/1.1 503"), "9th connection", "503 or close",
          short(data))
    check(b"/ninth" not in bytes(dev.raw), "9th request not forwarded", "absent", "forwarded")
    for i, c in enumerate(clients):
        c.send(req_bytes("GET", "/again%d" % i))
        eq(c.read_response().status, 200, "client %d still works" % i)


def slow_answer(conn, req):
    time.sleep(1.0)
    return echo(conn, req)


@test("SIGTERM: in-flight request completes, new connections refused, exit 0", serial=True)
def t_sigterm(ctx):
    dev = ctx.device(slow_answer)
    px = ctx.start(devices=[dev], args=["-g", "5000"])
    p = ctx.curl_bg("-o", ctx.path("o"), "-w", "%{http_code}", ctx.url("/slow"))
    check(dev.wait_requests(1, 5), "request reached the device", "1", 0)
    px.expect_exit = True
    t0 = time.monotonic()
    px.signal(signal.SIGTERM)
    refused = False
    while time.monotonic() - t0 < 0.8:
        s = socket.socket()
        ctx.sockets.append(s)
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", ctx.port))
            s.close()
            time.sleep(0.05)
        except ConnectionRefusedError:
            refused = True
            break
    check(refused, "new connections refused after SIGTERM", "ECONNREFUSED", "accepted")
    out, err = p.communicate(timeout=8)
    eq(p.returncode, 0, "curl exit code (%s)" % err.decode().strip())
    eq(out, b"200", "in-flight request status")
    rc = px.wait_exit(8)
    eq(rc, 0, "rproxy exit status")


def run_cli(ctx, args, timeout=10):
    p = subprocess.run([RPROXY] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def write_conf(ctx, name, text):
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


GOOD_CONF = """# a good config
listen 127.0.0.1:%d
pool p balance=wrr retries=1
device p 127.0.0.1:9001 weight=3 max_fails=2 fail_timeout=5
device p 127.0.0.1:9002 weight=0
route host=x.example path=/api pool=p
route pool=p
timeout client_header=500 client_idle=500 connect=500 device=500 device_idle=500
via myproxy
"""


@test("CLI: -t -c good.conf prints 'FILE: ok' and exits 0")
def t_cli_good(ctx):
    path = write_conf(ctx, "good.conf", GOOD_CONF % free_port())
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    eq(rc, 0, "exit status (stderr: %r)" % err)
    eq(out.strip(), "%s: ok" % path, "stdout")


BAD_CONFS = [
    ("unknown directive", 3, "listen 127.0.0.1:8080\npool p\nfrobnicate now\n"
     "device p 127.0.0.1:9001\nroute pool=p\n"),
    ("bad port", 1, "listen 127.0.0.1:99999\npool p\ndevice p 127.0.0.1:9001\nroute pool=p\n"),
    ("device names an undefined pool", 3, "listen 8080\npool p\ndevice q 127.0.0.1:9001\n"
     "route pool=p\n"),
    ("route names an undefined pool", 4, "listen 8080\npool p\ndevice p 127.0.0.1:9001\n"
     "route pool=nope\n"),
    ("path without '/'", 5, "listen 8080\n# comment\npool p\ndevice p 127.0.0.1:9001\n"
     "route path=api pool=p\n"),
    ("weight 5000", 4, "listen 8080\n\npool p\ndevice p 127.0.0.1:9001 weight=5000\n"
     "route pool=p\n"),
    ("duplicate pool name", 3, "listen 8080\npool p\npool p\ndevice p 127.0.0.1:9001\n"
     "route pool=p\n"),
    ("unknown option", 2, "listen 8080\npool p colour=blue\ndevice p 127.0.0.1:9001\n"
     "route pool=p\n"),
]


def make_cli_bad(label, line, text):
    def fn(ctx):
        path = write_conf(ctx, "bad.conf", text)
        rc, out, err = run_cli(ctx, ["-t", "-c", path])
        check(rc != 0, "exit status", "non-zero (spec: 1)", rc)
        check("%s:%d:" % (path, line) in err, "stderr names FILE:LINE:",
              "%s:%d: ..." % (path, line), err.strip())
        eq(rc, 1, "exit status (spec: 1)")
    return fn


for _l, _n, _t in BAD_CONFS:
    test("CLI: bad config (%s) -> FILE:%d: and exit 1" % (_l, _n))(make_cli_bad(_l, _n, _t))


@test("CLI: config without listen/route lines is an error; unreadable file too")
def t_cli_missing(ctx):
    path = write_conf(ctx, "nolisten.conf", "pool p\ndevice p 127.0.0.1:9001\nroute pool=p\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    check(rc != 0 and path in err, "no listen line", "non-zero + file name", (rc, err))
    path = write_conf(ctx, "noroute.conf", "listen 8080\npool p\ndevice p 127.0.0.1:9001\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    check(rc != 0 and path in err, "no route line", "non-zero + file name", (rc, err))
    missing = ctx.path("does-not-exist.conf")
    rc, out, err = run_cli(ctx, ["-t", "-c", missing])
    eq(rc, 1, "exit status for an unreadable file")
    check("%s: cannot read" % missing in err, "message", "FILE: cannot read", err)


@test("CLI: running (not -t) with a bad config fails with FILE:LINE:")
def t_cli_bad_run(ctx):
    path = write_conf(ctx, "bad.conf", "listen 127.0.0.1:%d\npool p\nbogus\n" % free_port())
    rc, out, err = run_cli(ctx, ["-c", path], timeout=5)
    check(rc != 0, "exit status", "non-zero", rc)
    check("%s:3:" % path in err, "stderr", "%s:3:" % path, err)


@test("CLI: -v prints the version, -h exits 0, unknown option exits 2")
def t_cli_flags(ctx):
    rc, out, err = run_cli(ctx, ["-v"])
    eq(rc, 0, "-v exit status")
    eq(out.strip(), "rproxy 0.1.0", "-v output")
    rc, out, err = run_cli(ctx, ["-h"])
    eq(rc, 0, "-h exit status")
    check(out.strip() != "", "-h prints usage on stdout", "usage", out)
    rc, out, err = run_cli(ctx, ["-Z"])
    eq(rc, 2, "unknown option exit status")


@test("access log: one ACCESS line per request with method, target, status, device")
def t_access_log(ctx):
    dev = ctx.device()
    px = ctx.start(ctx.config(pools=["pool p", "device p %s" % dev.addr],
                              routes=["route path=/p pool=p", "route path=/q pool=p"]))
    c = ctx.client()
    for path in ("/p", "/q?x=1", "/nothing"):
        c.send(req_bytes("GET", path))
        c.read_response()
    c.close()
    pat = re.compile(r'^ACCESS (\S+) "(\S+) (\S+)" (\d{3}) (\d+) (\S+) (\d+)ms$', re.M)
    err = wait_stderr(px, lambda s: len(pat.findall(s)) >= 3)
    lines = pat.findall(err)
    eq(len(lines), 3, "ACCESS lines (all: %r)" % [ln for ln in err.splitlines()
                                                  if "ACCESS" in ln])
    eq([(l[0], l[1], l[2], l[3]) for l in lines],
       [("127.0.0.1", "GET", "/p", "200"), ("127.0.0.1", "GET", "/q?x=1", "200"),
        ("127.0.0.1", "GET", "/nothing", "404")], "ACCESS fields")
    eq([l[5] for l in lines], [dev.addr, dev.addr, "-"], "DEVICE field")
    check(int(lines[0][4]) > 0, "BYTES field", "> 0", lines[0][4])


@test("access log: -q writes no ACCESS line (the same requests are served)")
def t_access_log_quiet(ctx):
    dev = ctx.device()
    px = ctx.start(ctx.config(pools=["pool p", "device p %s" % dev.addr],
                              routes=["route pool=p"]), args=["-q", "-g", "1000"])
    c = ctx.client()
    for path in ("/a", "/b"):
        c.send(req_bytes("GET", path))
        eq(c.read_response().status, 200, "status of %s" % path)
    c.close()
    time.sleep(0.3)
    eq([ln for ln in px.stderr().splitlines() if ln.startswith("ACCESS")], [],
       "ACCESS lines with -q")


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


# =====================================================================
# runner
# =====================================================================

class Result:
    def __init__(self):
        self.ok = False
        self.diag = []
        self.done = threading.Event()
        self.exit_codes = []


def run_one(t, valgrind):
    res = Result()
    ctx = Ctx(t.name, valgrind=valgrind)

    def body():
        try:
            t.fn(ctx)
            res.ok = True
        except TestFailure as e:
            res.diag.append(str(e))
            if getattr(e, "expected", None) is not None or getattr(e, "got", None) is not None:
                res.diag.append("  expected: %s" % short(e.expected, 500))
                res.diag.append("  got:      %s" % short(e.got, 500))
        except Exception as e:      # noqa: BLE001 -- a test bug or an unexpected condition
            res.diag.append("%s: %s" % (type(e).__name__, e))
            res.diag += traceback.format_exc().rstrip().splitlines()[-6:]
        finally:
            res.done.set()

    th = threading.Thread(target=body, name="test", daemon=True)
    t0 = time.monotonic()
    th.start()
    limit = t.timeout * (4 if valgrind else 1) * float(os.environ.get("RP_IT_TIMEOUT_SCALE",
                                                                       "1"))
    if not res.done.wait(limit):
        res.ok = False
        res.diag.insert(0, "test timed out after %.1f s (hard limit)" % limit)
    problems = ctx.cleanup()
    th.join(2.0)
    res.exit_codes = [(px.proc.returncode, px.valgrind) for px in ctx.proxies]
    if valgrind:
        # exit status under valgrind is reported as a test of its own
        problems = [p for p in problems if "exited with status" not in p]
    if problems:
        res.ok = False
        res.diag += problems
    res.elapsed = time.monotonic() - t0
    res.notes = list(ctx.diag)
    if not res.ok:
        res.diag += ctx.diag
        for d in ctx.devices:
            with d.lock:
                raw = bytes(d.raw)
                errs = list(d.errors)
            res.diag.append("device %s: %d connection(s), received %s"
                            % (d.name, d.conns, short(raw, 400)))
            res.diag += ["device error: %s" % e for e in errs[:5]]
        for k, c in enumerate(ctx.clients[-3:]):
            conv = c.conversation(300)
            if conv:
                res.diag.append("client connection %d (> sent, < received):" % k)
                res.diag += ["  " + ln for ln in conv[-8:]]
        for px in ctx.proxies:
            tail = px.stderr_tail(20)
            res.diag.append("rproxy stderr (last %d lines, %s):" % (len(tail), px.stderr_path))
            res.diag += ["  " + ln for ln in tail]
    else:
        ctx.remove_dir()
    return res, ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", action="append", default=[], help="run tests whose name "
                    "contains SUBSTR (repeatable)")
    ap.add_argument("--valgrind", action="store_true", help="short subset under valgrind")
    ap.add_argument("-j", type=int, default=int(os.environ.get("RP_IT_JOBS", "2")),
                    help="tests run in parallel (serial ones always alone)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    sel = [t for t in TESTS if (not args.valgrind or t.valgrind)
           and (not args.k or any(k.lower() in t.name.lower() for k in args.k))]
    if args.list:
        for t in sel:
            print(t.name)
        return 0
    order = [t for t in sel if not t.serial] + [t for t in sel if t.serial]
    extra = len(order) if args.valgrind else 0
    print("1..%d" % (len(order) + extra))
    print("# rproxy: %s%s" % (RPROXY, " (under valgrind)" if args.valgrind else ""))
    sys.stdout.flush()

    results = [None] * len(order)
    lock = threading.Lock()
    cond = threading.Condition(lock)
    next_i = [0]
    jobs = 1 if args.valgrind else max(1, args.j)

    serial_busy = [False]

    def worker():
        while True:
            with cond:
                while True:
                    i = next_i[0]
                    if i >= len(order):
                        return
                    t = order[i]
                    if serial_busy[0]:
                        cond.wait(0.1)
                        continue
                    if t.serial and any(r is None for r in results[:i]):
                        cond.wait(0.1)      # a serial test runs alone
                        continue
                    break
                next_i[0] += 1
                if t.serial:
                    serial_busy[0] = True
            r = run_one(t, args.valgrind)
            with cond:
                results[i] = r
                if t.serial:
                    serial_busy[0] = False
                cond.notify_all()

    threads = []
    for _ in range(jobs):
        th = threading.Thread(target=worker, daemon=True)
        th.start()
        threads.append(th)

    failed = 0
    n = 0
    t_start = time.monotonic()
    for i, t in enumerate(order):
        with cond:
            while results[i] is None:
                cond.wait(0.2)
        res, ctx = results[i]
        n += 1
        print("%s %d - %s" % ("ok" if res.ok else "not ok", n, t.name))
        if res.ok:
            for ln in res.notes:
                print("#   note: " + ln)
        if not res.ok:
            failed += 1
            for ln in res.diag:
                for sub in str(ln).splitlines():
                    print("#   " + sub)
        sys.stdout.flush()
        if args.valgrind:
            n += 1
            codes = [c for c, _ in res.exit_codes]
            good = bool(codes) and all(c == 0 for c in codes)
            print("%s %d - valgrind: rproxy exit status 0 after SIGTERM (%s)"
                  % ("ok" if good else "not ok", n, t.name))
            if not good:
                failed += 1
                print("#   exit statuses: %r (99 = valgrind found errors)" % codes)
                for px in ctx.proxies:
                    for ln in px.stderr_tail(30):
                        print("#     " + ln)
            sys.stdout.flush()
    for th in threads:
        th.join(1)
    print("# %d tests, %d failed, %.1f s" % (n, failed, time.monotonic() - t_start))
    return 1 if failed else 0


def load_modules():
    """Extra test files: tests/integration/t_*.py, each `from run import ...`
    and registering with @test like the tests above."""
    import glob
    import importlib
    sys.modules.setdefault("run", sys.modules[__name__])
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "t_*.py"))):
        importlib.import_module(os.path.basename(path)[:-3])


if __name__ == "__main__":
    load_modules()
    sys.exit(main())

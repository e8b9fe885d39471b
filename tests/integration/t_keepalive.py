"""t_keepalive.py -- the client side of a connection: HTTP/1.1 and HTTP/1.0 keep-alive,
Connection: close (and requests pipelined after it), pipelining (with bodies, beyond one
buffer), WebSocket upgrade tunnels, and 40 concurrent keep-alive clients.
"""

import hashlib
import json
import socket
import threading
import time

from checks import (check, conn_tokens, dev_info, eq, expect_closed, fail, get, pattern,
                    req_bytes, seen_header, test)
from devserver import chunked_bytes, echo


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

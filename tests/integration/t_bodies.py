"""t_bodies.py -- message bodies and framing: Content-Length and chunked requests and
responses (extensions, trailers, HTTP/1.0 clients), HEAD, 204/304, close-delimited
responses, Expect: 100-continue (answered, rejected, ignored), 1xx relaying, and a
device answering before it read the upload.
"""

import hashlib
import json
import socket
import threading
import time

from checks import (check, dev_info, dispatch, eq, fail, get, pattern, req_bytes, seen_header,
                    short, test)
from devserver import chunked_bytes, echo
from harness import Closed


# =====================================================================
# Content-Length and chunked bodies
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


# =====================================================================
# responses without a body, close-delimited responses
# =====================================================================

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
# 1xx, Expect: 100-continue, early answers
# =====================================================================

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

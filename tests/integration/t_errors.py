"""t_errors.py -- errors rproxy answers and failures mid-exchange: 502 (refused, garbage,
CL+TE, bad Content-Length, oversized response head), 503 (weight=0), 504, 408 and
client_idle timeouts, a device dying or stalling mid-body, a client aborting mid-upload
or mid-download.  t_faults.py has more fault cases.
"""

import socket
import time

from checks import (check, dev_info, eq, expect_closed, fail, get, hang, pattern, req_bytes,
                    short, test)
from devserver import echo
from harness import Closed, free_port


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


# =====================================================================
# 5xx from the device side
# =====================================================================

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


def big_response_head(conn, req):
    if req.target == "/bighead":
        conn.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * 9000 + b"\r\nContent-Length: 2\r\n\r\nok")
    else:
        conn.send(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-R%d: v\r\n" % i for i in range(100))
                  + b"Content-Length: 2\r\n\r\nok")
    return True


def two_routes(ctx, handler):
    """Two devices behind /one and /two (a device that broke may be marked down)."""
    d1, d2 = ctx.device(handler, name="d1"), ctx.device(handler, name="d2")
    ctx.start(ctx.config(pools=["pool a", "device a %s" % d1.addr,
                                "pool b", "device b %s" % d2.addr],
                         routes=["route path=/one pool=a", "route path=/two pool=b"]))
    return d1, d2


@test("502 for a device response head over 8 kB or with 100 fields")
def t_502_big_head(ctx):
    two_routes(ctx, big_response_head)
    expect_error(ctx, 502, path="/one/bighead")
    expect_error(ctx, 502, path="/two/manyfields")


@test("503 when every device of the pool has weight=0")
def t_503_weight0(ctx):
    dev = ctx.device()
    ctx.start(ctx.config(pools=["pool p", "device p %s weight=0" % dev.addr]))
    expect_error(ctx, 503)
    eq(dev.conns, 0, "device connections")


# =====================================================================
# timeouts
# =====================================================================

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


# =====================================================================
# a side failing mid-exchange
# =====================================================================

def die_mid_body(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + pattern(200000))
    time.sleep(0.1)
    conn.close()
    return False


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

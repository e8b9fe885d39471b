"""t_errors.py -- errors rproxy answers and failures mid-exchange: 502 (refused, garbage,
CL+TE, bad Content-Length, oversized response head, a chunked body broken in the head's
read), 503 (weight=0), 504, 408 and client_idle timeouts, a device dying, stalling or
breaking its chunked framing mid-body, a client aborting mid-upload or mid-download; how
the access log names a response cut after its head.  t_faults.py has more fault cases.
"""

import socket
import time

from checks import (access_lines, check, dev_info, eq, expect_closed, fail, get, hang, pattern,
                    req_bytes, short, test, wait_stderr)
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


# =====================================================================
# a device's broken chunked framing; responses cut after their head (issue 21)
# =====================================================================

EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Evil: 1\r\n\r\nevil"


def expect_counted(px, dev, what):
    """rproxy logged dev as taken out (max_fails=1 by default): what counted as a failure
    of the device."""
    want = "device %s down for" % dev.addr
    check(want in wait_stderr(px, lambda s: want in s), what + ": a device failure",
          want + " ...", px.stderr_tail(8))


def until_close(c, what):
    """What client c still receives until rproxy closes the connection."""
    try:
        return c.read_until_close(timeout=5)
    except socket.timeout:
        fail("%s: client connection still open" % what, "close", "open")


def one_device(ctx, handler):
    """rproxy in front of one device answering with handler: (rproxy, device)."""
    dev = ctx.device(handler)
    return ctx.start(devices=[dev]), dev


def ask(ctx, path, version="HTTP/1.1"):
    """A new client that sent GET path."""
    c = ctx.client()
    c.send(req_bytes("GET", path, version=version))
    return c


def chunked_answer(*parts):
    """A device handler that sends a chunked response head and parts, 0.3 s apart."""
    def handler(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + parts[0])
        for part in parts[1:]:
            time.sleep(0.3)
            conn.send(part)
        return True
    return handler


@test("device's first chunk-size line broken in the head's read (zz): 502 instead of its "
      "200, to 1.1 and 1.0 clients; access log 502; a device failure")
def t_bad_first_chunk(ctx):
    px, dev = one_device(ctx, chunked_answer(b"zz\r\n" + EVIL))
    for version, path in (("HTTP/1.1", "/first"), ("HTTP/1.0", "/first10")):
        c = ask(ctx, path, version)
        try:
            r = c.read_response(timeout=5)
        except Closed as e:
            fail("%s: closed without a response" % version, 502, short(e.got))
        eq(r.status, 502, "%s client: status" % version)
        rest = until_close(c, "%s client, after the 502" % version)
        check(b"evil" not in r.body + rest and b"zz" not in r.body + rest,
              "%s client: nothing of the device's body" % version, "absent", short(rest))
        eq([(m[3], m[7]) for m in access_lines(px, path)], [("502", "")],
           "%s client: ACCESS status and cut" % version)
    expect_counted(px, dev, "the broken framing")


@test("device's chunked framing broken after its head went out: head and first chunk "
      "relayed, then the connection cut; access log 200 cut=device-framing; a device failure")
def t_bad_later_chunk(ctx):
    px, dev = one_device(ctx, chunked_answer(b"2\r\nok\r\n", b"zz\r\n" + EVIL))
    c = ask(ctx, "/later")
    r = c.read_head(timeout=5)
    eq(r.status, 200, "status (the head went out before the bad line came)")
    rest = until_close(c, "after the broken chunk line")
    eq(rest, b"2\r\nok\r\n", "body bytes the client got: the good chunk, no last-chunk")
    eq([(m[3], m[7]) for m in access_lines(px, "/later")], [("200", "device-framing")],
       "ACCESS status and cut")
    expect_counted(px, dev, "the broken framing")


@test("access log names why a response was cut after its head: device-closed, "
      "device-timeout, client-closed; a client going away is no device failure",
      serial=True)
def t_cut_logged(ctx):
    die, stall, big = (ctx.device(h, name=n) for h, n in (
        (die_mid_body, "die"), (stall_mid_body, "stall"), (slow_big, "big")))
    px = ctx.start(ctx.config(pools=["pool a", "device a %s" % die.addr,
                                     "pool b", "device b %s" % stall.addr,
                                     "pool c", "device c %s" % big.addr],
                              routes=["route path=/die pool=a", "route path=/stall pool=b",
                                      "route path=/big pool=c"],
                              timeouts={"device": 500}))
    for path in ("/die", "/stall"):
        c = ask(ctx, path)
        eq(c.read_head(timeout=5).status, 200, "%s: status" % path)
        until_close(c, path)
    c = ask(ctx, "/big")
    eq(c.read_head(timeout=5).status, 200, "/big: status")
    c.read_exact(1000)
    c.close()
    for path, why in (("/die", "device-closed"), ("/stall", "device-timeout"),
                      ("/big", "client-closed")):
        eq([(m[3], m[7]) for m in access_lines(px, path)], [("200", why)],
           "%s: ACCESS status and cut" % path)
    for dev, path in ((die, "/die"), (stall, "/stall")):
        expect_counted(px, dev, path)
    check("device %s down" % big.addr not in px.stderr(),
          "a client closing mid-response is no failure of its device", "not down",
          px.stderr_tail(8))

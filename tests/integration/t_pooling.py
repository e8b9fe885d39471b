"""t_pooling.py -- the device connection pool: reuse across client connections, a pooled
connection the device closed or drops (retried on a fresh one), device_idle, and
responses (Connection: close, HTTP/1.0) whose connection must not be reused.
"""

import time

from checks import check, dev_info, eq, get, req_bytes, test
from devserver import echo


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

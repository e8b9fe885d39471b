"""t_limits.py -- the fixed limits: the largest target, field count and head rproxy
accepts, and slot exhaustion on the small-limits build (RPROXY_SMALL: RP_MAX_CONNS=8,
RP_MAX_UPSTREAM=4).  t_faults.py adds crowds, slowloris and EMFILE.
"""

import os
import socket
import time

from checks import check, dev_info, eq, fail, get, req_bytes, seen_header, short, test
from devserver import echo
from harness import RPROXY_SMALL


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

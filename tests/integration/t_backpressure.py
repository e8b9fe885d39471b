"""t_backpressure.py -- flow control: a client that reads nothing stops the device, a
device that reads nothing stops the uploading client, with rproxy holding only its fixed
buffers; then 64 MiB pass byte-exact in each direction.
"""

import hashlib
import json
import select
import threading
import time

from checks import check, eq, pattern_block, pattern_sha, req_bytes, test
from devserver import response


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

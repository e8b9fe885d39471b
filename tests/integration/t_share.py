"""t_share.py -- shared live streams (issue 16, src/23-share.c): `route ... share=on`.

A streaming device on loopback (MJPEG parts with a Content-Length each, or SSE events) that
serves ONE connection at a time (a second one gets a 503 and is counted as refused), real
viewers on raw sockets: every viewer's parts are whole (FF D8 .. FF D9, the announced length,
the bytes the device made for that sequence number) and in order, the device sees one
connection however many viewers, joiners start at a part / event boundary, a stalled viewer
loses parts without slowing the others, the device connection closes when the last viewer
leaves (after share_linger), the device's end or failure ends every viewer's response the way
an unshared one would, non-stream answers on a share=on route are served as without it,
Cookie values separate streams, HTTP/1.0 viewers get a close-delimited stream, and hostile
devices (a boundary never sent, a 100 MB part, an SSE line without end, a malformed boundary=)
break nothing and keep rproxy's memory fixed.
"""

import json
import re
import select
import socket
import struct
import threading
import time

from checks import check, eq, fail, pattern_block, req_bytes, short, test
from harness import TestFailure

HOST = "test.example"
STATUS = "status path=/status"
BND = "frame"


# =====================================================================
# the streaming device
# =====================================================================

def part_size(seq, lo=2000, hi=10000):
    return lo + (seq * 7919) % (hi - lo)


def jpeg(seq, size):
    """A fake JPEG of `size` bytes: FF D8, the sequence number, bytes that depend on it,
    FF D9."""
    blk = pattern_block()
    off = (seq * 104729) % (len(blk) - size)
    return b"\xff\xd8" + struct.pack(">I", seq) + blk[off:off + size - 8] + b"\xff\xd9"


def jpeg_ok(seq, data):
    return len(data) >= 8 and data == jpeg(seq, len(data))


def mjpeg_part(seq, size=None, bnd=BND):
    body = jpeg(seq, size or part_size(seq))
    return (b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
            % (bnd.encode(), len(body))) + body + b"\r\n"


def sse_event(seq):
    """An SSE event whose payload depends on seq; odd events end their lines with CRLF."""
    eol = b"\r\n" if seq % 2 else b"\n"
    n = 40 + (seq * 31) % 400
    pay = (b"%d:" % seq) * (n // 4)
    return (b"id: %d" % seq + eol + b"event: tick" + eol + b"data: " + pay[:n] + eol +
            b"data: end %d" % seq + eol + eol)


BLANK_RE = re.compile(rb"\r?\n\r?\n")
SSE_RE = re.compile(rb"id: (\d+)\r?\nevent: tick\r?\ndata: ([^\r\n]*)\r?\ndata: end (\d+)"
                    rb"\r?\n\r?\n")


class Stream:
    """The device's own record of one stream it served."""

    def __init__(self):
        self.sent = []          # (seq, monotonic time) of every part / event sent
        self.opened = time.monotonic()
        self.eof_at = None      # when it saw the proxy close the connection
        self.ended = None       # why the stream ended ("eof", "limit", "error: ...")


def stream_device(ctx, kind="mjpeg", fps=20, framing="close", max_conns=1, limit=None,
                  end="close", ctype=None, first=None, size=None, extra=None, name="cam",
                  head_delay=0.0, silent_after=None):
    """A device streaming `kind` ("mjpeg" or "sse") on every path but those containing
    "plain" (a 200 with Content-Length, numbered per request, 300 ms late with "slow"),
    "missing" (a 404) or "shortchunked" (a short chunked 200).  At most max_conns streams
    at once: more get a 503 and count in dev.state["refused"].

    framing: "close" (close-delimited) or "chunked" (one chunk per part / event).
    limit:   stop after that many parts, then `end`: "close" (close / the final chunk),
             "cut" (close a chunked stream without its final chunk), "rst" (reset).
    first:   bytes sent right after the head (before part 0).
    extra:   fn(conn, seq) -> bytes sent before part seq (or None), or ("only", bytes)
             sent instead of part seq.
    head_delay: seconds before the head.  silent_after: after that many parts send
             nothing more (the connection stays open)."""
    def handler(conn, req):
        dev = conn.dev
        st = dev.state
        if "plain" in req.target:
            with dev.cond:
                st["plain"] += 1
                n = st["plain"]
            time.sleep(0.3 if "slow" in req.target else 0)
            body = b"plain answer %d" % n
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d"
                      b"\r\n\r\n" % len(body) + body)
            return True
        if "missing" in req.target:
            conn.send(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 9\r\n\r\nnot here\n")
            return True
        if "shortchunked" in req.target:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
                      b"0\r\n\r\n")
            return True
        with dev.cond:
            if st["active"] >= max_conns:
                st["refused"] += 1
                refuse = True
            else:
                st["active"] += 1
                refuse = False
                s = Stream()
                st["streams"].append(s)
                dev.cond.notify_all()
        if refuse:
            conn.send(b"HTTP/1.1 503 Busy\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                      b"busy\n")
            return False
        try:
            ct = ctype or ("multipart/x-mixed-replace; boundary=%s" % BND if kind == "mjpeg"
                           else "text/event-stream")
            head = "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n" % ct
            if framing == "chunked":
                head += "Transfer-Encoding: chunked\r\n"
            time.sleep(head_delay)
            conn.send(head + "\r\n")

            def put(b):
                conn.send(b"%x\r\n%s\r\n" % (len(b), b) if framing == "chunked" else b)
            if first:
                put(first)
            seq = 0
            t_next = time.monotonic()
            while not dev.stopping:
                r, _, _ = select.select([conn.sock], [], [], 0)
                if r:
                    try:
                        d = conn.sock.recv(4096, socket.MSG_PEEK)
                    except OSError:
                        d = b""
                    if not d:
                        s.eof_at = time.monotonic()
                        s.ended = "eof"
                        break
                    conn.sock.recv(len(d))
                if limit is not None and seq >= limit:
                    s.ended = "limit"
                    if end == "close" and framing == "chunked":
                        conn.send(b"0\r\n\r\n")
                    if end == "rst":
                        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                             struct.pack("ii", 1, 0))
                    conn.close()
                    break
                if silent_after is not None and seq >= silent_after:
                    time.sleep(0.05)
                    continue
                only = False
                if extra:
                    x = extra(conn, seq)
                    if isinstance(x, tuple):
                        only, x = True, x[1]
                    if x:
                        put(x)
                if not only:
                    put(mjpeg_part(seq, size) if kind == "mjpeg" else sse_event(seq))
                with dev.cond:
                    s.sent.append((seq, time.monotonic()))
                    dev.cond.notify_all()
                seq += 1
                t_next += 1.0 / fps
                dt = t_next - time.monotonic()
                if dt > 0:
                    time.sleep(dt)
                else:
                    t_next = time.monotonic()
        except OSError as e:
            s.ended = "error: %r" % e
            s.eof_at = s.eof_at or time.monotonic()
        finally:
            with dev.cond:
                st["active"] -= 1
                dev.cond.notify_all()
        return False

    d = ctx.device(handler, name=name, idle_timeout=60.0)
    d.state.update({"active": 0, "refused": 0, "streams": [], "plain": 0})
    return d


def streams(dev):
    with dev.lock:
        return list(dev.state["streams"])


def sent_count(dev):
    with dev.lock:
        return sum(len(s.sent) for s in dev.state["streams"])


def wait_sent(dev, n, timeout=10.0):
    check(dev.wait_for(lambda d: sum(len(s.sent) for s in d.state["streams"]) >= n, timeout),
          "device did not send %d parts within %.0f s" % (n, timeout), n, sent_count(dev))


# =====================================================================
# viewers
# =====================================================================

class Viewer:
    """One viewer on a raw socket: sends the GET, reads the head, then de-chunks (or
    takes close-delimited) the body in a thread, parsing MJPEG parts or SSE events as
    they come.  pause()/resume() stop and restart reading."""

    def __init__(self, ctx, path="/cam", kind="mjpeg", headers=(), version="HTTP/1.1",
                 rcvbuf=None, keep=True, bnd=BND, port=None, half_close=False, tls=None,
                 host=HOST):
        self.ctx = ctx
        self.kind = kind
        self.keep = keep
        self.bnd = b"--" + bnd.encode() + b"\r\n"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        ctx.sockets.append(self.sock)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port or ctx.port))
        if tls:             # an ssl.SSLContext: the viewer speaks TLS
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
            ctx.sockets.append(self.sock)
        self.sock.sendall(req_bytes("GET", path, version=version, host=host,
                                    headers=list(headers)))
        if half_close:      # as `nc -N` and some scripts do after the request
            self.sock.shutdown(socket.SHUT_WR)
        self.lock = threading.Lock()
        self.head = None
        self.status = None
        self.headers = []
        self.chunked = False
        self.raw = bytearray()      # bytes after the head, as on the wire
        self.body = bytearray()     # the payload (de-chunked; trimmed as parsed)
        self.start = b""            # its first 64 bytes
        self.nbody = 0
        self.wpos = 0               # raw bytes consumed by the de-chunker
        self.ended = None           # "final" (0-chunk), "eof", "reset", "error"
        self.ended_at = None
        self.rest = b""             # bytes after the final chunk
        self.parts = []             # (seq, whole, time)
        self.broken = []            # descriptions of parts that were not whole
        self.junk = 0               # bytes between parts that belong to none
        self.ppos = 0               # parser position in body
        self.go = threading.Event()
        self.go.set()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    # ---- reading ----
    def _run(self):
        try:
            while True:
                self.go.wait()
                try:
                    self.sock.settimeout(0.2)
                    d = self.sock.recv(262144)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    self._end("reset")
                    return
                except OSError:
                    self._end("error")
                    return
                if not d:
                    self._end("eof")
                    return
                with self.lock:
                    self._feed(d)
                    if self.ended:
                        return
        except Exception as e:      # noqa: BLE001 -- a parser problem is a finding
            with self.lock:
                self.broken.append("viewer thread: %r" % e)
            self._end("error")

    def _end(self, why):
        with self.lock:
            if not self.ended:
                self.ended = why
                self.ended_at = time.monotonic()

    def _feed(self, d):
        self.raw += d
        if self.head is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = bytes(self.raw[:i + 4])
            del self.raw[:i + 4]
            lines = self.head[:-4].split(b"\r\n")
            self.status = int(lines[0].split()[1])
            for ln in lines[1:]:
                k, _, v = ln.decode("latin-1").partition(":")
                self.headers.append((k.strip(), v.strip()))
            self.chunked = "chunked" in self.get("Transfer-Encoding", "").lower()
        if not self.chunked:
            self._payload(bytes(self.raw))
            del self.raw[:]
            return
        while True:      # de-chunk what is whole
            i = self.raw.find(b"\r\n")
            if i < 0:
                return
            size = int(bytes(self.raw[:i]).split(b";")[0], 16)
            if size == 0:
                if self.raw.find(b"\r\n\r\n", i) == i:
                    self.rest = bytes(self.raw[i + 4:])
                    self.ended = "final"
                    self.ended_at = time.monotonic()
                return
            if len(self.raw) < i + 2 + size + 2:
                return
            if self.raw[i + 2 + size:i + 4 + size] != b"\r\n":
                raise TestFailure("chunk data not followed by CRLF")
            self._payload(bytes(self.raw[i + 2:i + 2 + size]))
            del self.raw[:i + 4 + size]

    def _payload(self, d):
        if len(self.start) < 64:
            self.start += d[:64 - len(self.start)]
        self.nbody += len(d)
        if not self.keep:
            if len(self.body) < 4096:
                self.body += d[:4096]
            return
        self.body += d
        if self.kind == "mjpeg":
            self._parse_mjpeg()
        elif self.kind == "sse":
            self._parse_sse()

    def _parse_mjpeg(self):
        b = self.body
        while True:
            i = b.find(self.bnd, self.ppos)
            if i < 0:
                return
            if i != self.ppos and not (self.parts and i == self.ppos + 2 and
                                       b[self.ppos:i] == b"\r\n"):
                self.junk += i - self.ppos
                self.broken.append("%d junk bytes at %d" % (i - self.ppos, self.ppos))
            h = b.find(b"\r\n\r\n", i)
            if h < 0:
                self.ppos = i
                return
            m = re.search(rb"Content-Length: (\d+)", bytes(b[i:h]))
            if not m:
                self.broken.append("part head without Content-Length at %d" % i)
                self.ppos = i + 1
                continue
            n = int(m.group(1))
            if len(b) < h + 4 + n:
                # a skip may have cut this part: the next boundary comes early
                nxt = b.find(self.bnd, h + 4)
                if nxt < 0:
                    self.ppos = i
                    return
                self.broken.append("part at %d cut (next boundary inside it)" % i)
                self.ppos = nxt
                continue
            data = bytes(b[h + 4:h + 4 + n])
            seq = struct.unpack(">I", data[2:6])[0] if n >= 8 else -1
            if jpeg_ok(seq, data):
                self.parts.append((seq, True, time.monotonic()))
                self.ppos = h + 4 + n
            else:
                nxt = b.find(self.bnd, h + 4)
                if nxt < 0 and len(b) - (h + 4) < 20000:
                    self.ppos = i
                    return
                self.broken.append("part at %d not whole (len %d, starts %r, ends %r)"
                                   % (i, n, data[:4], data[-2:]))
                self.ppos = nxt if nxt >= 0 else len(b)
            if self.ppos > 1 << 20:     # keep the buffer small
                del b[:self.ppos]
                self.ppos = 0

    def _parse_sse(self):
        b = self.body
        while True:
            m = SSE_RE.match(b, self.ppos)
            if m:
                seq = int(m.group(1))
                if int(m.group(3)) == seq and bytes(m.group(0)) == sse_event(seq):
                    self.parts.append((seq, True, time.monotonic()))
                else:
                    self.broken.append("event %d not as sent" % seq)
                self.ppos = m.end()
                continue
            # not a whole event here: still arriving (no blank line yet), or junk
            nxt = BLANK_RE.search(b, self.ppos)
            if nxt is None:
                return
            self.broken.append("not an event at %d: %r"
                               % (self.ppos, bytes(b[self.ppos:self.ppos + 60])))
            self.ppos = nxt.end()

    # ---- control and views ----
    def get(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def pause(self):
        self.go.clear()

    def resume(self):
        self.go.set()

    def nparts(self):
        with self.lock:
            return len(self.parts)

    def seqs(self):
        with self.lock:
            return [s for s, _, _ in self.parts]

    def wait(self, pred, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if pred(self):
                    return True
            time.sleep(0.02)
        with self.lock:
            return pred(self)

    def wait_parts(self, n, timeout=10.0, what="viewer"):
        if not self.wait(lambda v: len(v.parts) >= n or v.ended, timeout):
            fail("%s: fewer than %d whole parts within %.0f s" % (what, n, timeout), n,
                 "%d parts, %d payload bytes, head %r, broken %r" % (
                     len(self.parts), self.nbody, short(self.head, 200), self.broken[:3]))
        check(len(self.parts) >= n, "%s: stream ended after %d parts (%s)"
              % (what, len(self.parts), self.ended), n, len(self.parts))

    def wait_end(self, timeout=10.0):
        return self.wait(lambda v: v.ended is not None, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def expect_whole(v, what, consecutive=True, first=None):
    """v's parts all whole, no junk, in order (consecutive unless not)."""
    with v.lock:
        seqs = [s for s, _, _ in v.parts]
        broken = list(v.broken)
    eq(broken, [], "%s: every part whole, nothing between parts" % what)
    check(seqs, "%s: received no part" % what, ">= 1 part", seqs)
    if first is not None:
        eq(v.start[:len(first)], first, "%s: the body starts at a part boundary" % what)
    if consecutive:
        eq(seqs, list(range(seqs[0], seqs[0] + len(seqs))),
           "%s: parts consecutive and in order" % what)
    else:
        check(all(a < b for a, b in zip(seqs, seqs[1:])),
              "%s: parts in order" % what, "increasing", seqs)


def status_json(ctx):
    s = socket.create_connection(("127.0.0.1", ctx.port), timeout=5)
    ctx.sockets.append(s)
    s.sendall(req_bytes("GET", "/status", host=HOST, headers=[("Connection", "close")]))
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        from devserver import dechunk
        body, _ = dechunk(body)
    try:
        return json.loads(body)
    except ValueError as e:
        fail("status JSON does not parse (%s)" % e, "JSON", short(data, 600))


def share_stats(ctx):
    sh = status_json(ctx).get("share")
    check(isinstance(sh, dict), "status JSON has a share object", "share{}", sh)
    return sh


def start(ctx, dev, linger=None, timeouts=None, routes=None, binary=None):
    share = "share=on" + (" share_linger=%s" % linger if linger else "")
    return ctx.start(pools=["pool p", "device p %s weight=1" % dev.addr],
                     routes=routes or ["route path=/noshare pool=p", "route pool=p " + share],
                     timeouts=timeouts, extra=STATUS, binary=binary)


def one_conn(dev, what):
    with dev.lock:
        n, refused = dev.conns, dev.state["refused"]
    eq((n, refused), (1, 0), "%s: the device saw one connection, refused none "
       "(connections, refusals)" % what)


MJPEG_START = b"--frame\r\nContent-Type: image/jpeg\r\n"


# =====================================================================
# tests
# =====================================================================

@test("share: 20 MJPEG viewers each get >= 30 whole parts in order over ONE device "
      "connection; status lists the stream", timeout=40)
def _(ctx):
    dev = stream_device(ctx)
    start(ctx, dev)
    vs = [Viewer(ctx) for _ in range(20)]
    for k, v in enumerate(vs):
        v.wait_parts(30, 25, "viewer %d" % k)
    sh = share_stats(ctx)
    st = [s for s in sh.get("streams", []) if s.get("url", "").endswith("/cam")]
    check(st, "status lists the stream", "a /cam entry", sh)
    eq((st[0].get("kind"), st[0].get("viewers"), st[0].get("state")),
       ("multipart", 20, "live"), "status: kind, viewers, state")
    check(sh.get("streams_started") == 1 and sh.get("joins") == 19,
          "status counters: one stream started, 19 joins", "1, 19",
          (sh.get("streams_started"), sh.get("joins")))
    for k, v in enumerate(vs):
        eq(v.status, 200, "viewer %d status" % k)
        eq(v.get("Content-Type"), "multipart/x-mixed-replace; boundary=frame",
           "viewer %d Content-Type" % k)
        check(v.chunked and v.get("Content-Length") is None,
              "viewer %d: a chunked response to HTTP/1.1, no Content-Length" % k,
              "chunked", v.head)
        expect_whole(v, "viewer %d" % k, first=b"--frame\r\n")
    one_conn(dev, "20 viewers")


@test("share: a viewer joining mid-stream starts at a part boundary and gets a whole "
      "first part; sequence numbers continue the opener's")
def _(ctx):
    dev = stream_device(ctx)
    start(ctx, dev)
    a = Viewer(ctx)
    a.wait_parts(15, 10, "opener")
    b = Viewer(ctx)
    b.wait_parts(10, 10, "joiner")
    expect_whole(a, "opener", first=MJPEG_START)
    expect_whole(b, "joiner", first=MJPEG_START)
    check(b.seqs()[0] >= 10, "the joiner starts mid-stream, not at part 0", ">= 10",
          b.seqs()[0])
    check(set(b.seqs()) <= set(a.seqs()) | set(range(a.seqs()[-1], a.seqs()[-1] + 100)),
          "the joiner sees the opener's parts", a.seqs()[:5], b.seqs()[:5])
    one_conn(dev, "opener + joiner")


@test("share: a viewer that stops reading for 10 s loses parts (share drops counted), "
      "the others keep the device's rate (>= 90 % of its parts in the window)",
      timeout=45)
def _(ctx):
    # large parts (1 MB/s): the kernel's send buffer toward the stalled viewer grows to
    # tcp_wmem's maximum (4 MB) before rproxy sees it blocked, so 10 s of stream must be
    # well above 4 MB + the ring; client_idle longer than the stall so it is not cut
    dev = stream_device(ctx, fps=25, size=40000)
    start(ctx, dev, timeouts={"client_idle": 30000})
    slow = Viewer(ctx, rcvbuf=4096)
    others = [Viewer(ctx) for _ in range(3)]
    for v in [slow] + others:
        v.wait_parts(5, 10)
    slow.pause()
    t0 = time.monotonic()
    d0, n0 = sent_count(dev), [v.nparts() for v in others]
    time.sleep(10)
    d1, n1 = sent_count(dev), [v.nparts() for v in others]
    dt = time.monotonic() - t0
    slow.resume()
    # it reads what the kernel buffered, then what rproxy gives it after the skip: wait
    # until it has caught up with the device
    check(slow.wait(lambda v: v.parts and v.parts[-1][0] >= d1 + 10, 15),
          "the stalled viewer catches up with the device after it reads again",
          ">= part %d" % (d1 + 10), slow.seqs()[-3:])
    sent = d1 - d0
    ctx.note("device sent %d parts in %.1f s; viewers got %r" % (
        sent, dt, [b - a for a, b in zip(n0, n1)]))
    for k, (a, b) in enumerate(zip(n0, n1)):
        check(b - a >= 0.9 * sent, "viewer %d kept the device's rate during the stall" % k,
              ">= %.0f parts" % (0.9 * sent), b - a)
        expect_whole(others[k], "viewer %d" % k)
    seqs = slow.seqs()
    gaps = [(x, y) for x, y in zip(seqs, seqs[1:]) if y != x + 1]
    check(gaps, "the stalled viewer lost parts (a gap in its sequence)", "a gap",
          seqs[:5] + ["..."] + seqs[-5:])
    check(all(a < b for a, b in zip(seqs, seqs[1:])), "the stalled viewer's parts in order",
          "increasing", gaps)
    check(len(slow.broken) <= 2 * len(gaps),
          "the stalled viewer: at most the part cut at each skip is broken",
          "<= %d" % (2 * len(gaps)), slow.broken[:4])
    last = seqs[-10:]
    eq(last, list(range(last[0], last[0] + 10)), "the stalled viewer is whole again after")
    sh = share_stats(ctx)
    ctx.note("stalled viewer: %d gap(s), %d part(s) lost; share.drops %s"
             % (len(gaps), sum(y - x - 1 for x, y in gaps), sh.get("drops")))
    check(sh.get("drops", 0) > 0, "status share.drops counts the skips", "> 0",
          sh.get("drops"))
    one_conn(dev, "stall")


@test("share: the last viewer leaving closes the device connection at once "
      "(share_linger 0); a new viewer opens a new one")
def _(ctx):
    dev = stream_device(ctx)
    start(ctx, dev)
    vs = [Viewer(ctx) for _ in range(3)]
    for v in vs:
        v.wait_parts(3)
    vs[0].close()
    vs[1].close()
    time.sleep(0.5)
    check(streams(dev)[0].eof_at is None, "the device connection stays while a viewer "
          "remains", None, streams(dev)[0].eof_at)
    t = time.monotonic()
    vs[2].close()
    check(dev.wait_for(lambda d: d.state["streams"][0].eof_at is not None, 3),
          "the device saw EOF after the last viewer left", "EOF within 3 s", "open")
    ctx.note("device EOF %.2f s after the last viewer left" % (streams(dev)[0].eof_at - t))
    v = Viewer(ctx)
    v.wait_parts(3)
    expect_whole(v, "viewer after", first=MJPEG_START)
    eq(v.seqs()[0], 0, "the new stream starts at the device's part 0")
    eq((dev.conns, dev.state["refused"]), (2, 0), "two device connections, one after the "
       "other (connections, refusals)")


@test("share: share_linger=1s keeps the device connection ~1 s after the last viewer "
      "leaves, and a viewer arriving within it reuses it", timeout=30)
def _(ctx):
    dev = stream_device(ctx)
    start(ctx, dev, linger="1s")
    a = Viewer(ctx)
    a.wait_parts(5)
    a.close()
    time.sleep(0.4)
    b = Viewer(ctx)       # within the linger: the same device connection
    b.wait_parts(5)
    expect_whole(b, "viewer within the linger", first=MJPEG_START)
    check(b.seqs()[0] > 5, "the lingering stream went on: the new viewer joins it",
          "> 5", b.seqs()[0])
    one_conn(dev, "viewer within the linger")
    t = time.monotonic()
    b.close()
    time.sleep(0.6)
    check(streams(dev)[0].eof_at is None, "0.6 s into the linger the device connection is "
          "still open", "open", "closed")
    check(dev.wait_for(lambda d: d.state["streams"][0].eof_at is not None, 4),
          "the device connection closed after the linger", "EOF", "open")
    waited = streams(dev)[0].eof_at - t
    ctx.note("device EOF %.2f s after the last viewer left (linger 1s)" % waited)
    check(0.8 <= waited <= 3.5, "closed about share_linger after the last viewer left",
          "0.8 .. 3.5 s", "%.2f s" % waited)
    one_conn(dev, "linger")


@test("share: SSE viewers get whole events in order over one connection; a joiner starts "
      "at an event boundary (LF and CRLF events)")
def _(ctx):
    dev = stream_device(ctx, kind="sse", fps=40)
    start(ctx, dev)
    vs = [Viewer(ctx, path="/events", kind="sse") for _ in range(5)]
    for v in vs:
        v.wait_parts(20)
    j = Viewer(ctx, path="/events", kind="sse")
    j.wait_parts(20)
    for k, v in enumerate(vs):
        eq(v.get("Content-Type"), "text/event-stream", "viewer %d Content-Type" % k)
        expect_whole(v, "SSE viewer %d" % k, first=b"id: ")
    expect_whole(j, "SSE joiner")
    check(j.body.startswith(b"id: ") and j.seqs()[0] > 0,
          "the joiner starts with a whole event mid-stream", "id: N>0", short(j.body, 60))
    sh = share_stats(ctx)
    st = [s for s in sh.get("streams", []) if s.get("url", "").endswith("/events")]
    eq(st and st[0].get("kind"), "event-stream", "status: stream kind")
    one_conn(dev, "SSE")


@test("share: non-stream answers on a share=on route (200 with Content-Length, 404, a "
      "short chunked 200) are served as without share; concurrent identical ones each get "
      "their own")
def _(ctx):
    dev = stream_device(ctx, max_conns=100)
    start(ctx, dev)

    def fetch(path, c=None):
        c = c or ctx.client(timeout=8)
        c.send(req_bytes("GET", path, host=HOST))
        r = c.read_response(timeout=8)
        r.client = c
        return r

    def same(a, b, what):
        eq((a.status, a.body, a.chunked, a.close_delimited),
           (b.status, b.body, b.chunked, b.close_delimited), what + ": status, body, framing")
        drop = {"date"}
        eq(sorted((k.lower(), v) for k, v in a.headers if k.lower() not in drop),
           sorted((k.lower(), v) for k, v in b.headers if k.lower() not in drop),
           what + ": the same header fields (Date aside)")

    for path in ("/missing", "/shortchunked"):
        same(fetch("/x" + path), fetch("/noshare" + path), path)
    a = fetch("/x/plain")
    b = fetch("/noshare/plain")
    eq((a.status, a.body, b.body), (200, b"plain answer 1", b"plain answer 2"),
       "Content-Length answers, one device request each")
    # keep-alive after a non-stream answer on the share route
    r = fetch("/x/missing", c=a.client)
    eq(r.status, 404, "the connection is kept after a non-stream answer")

    results = {}

    def one(k):
        try:
            results[k] = fetch("/x/plainslow").body
        except Exception as e:      # noqa: BLE001
            results[k] = repr(e)
    ths = [threading.Thread(target=one, args=(k,)) for k in range(6)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(15)
    bodies = sorted(results.values())
    eq(len(bodies), 6, "every concurrent request answered")
    check(all(isinstance(x, bytes) and re.match(rb"^plain answer \d+$", x) for x in bodies),
          "every concurrent answer whole", "plain answer N", bodies)
    eq(len(set(bodies)), 6, "each concurrent identical request got its own device answer")
    sh = share_stats(ctx)
    eq(sh.get("streams_started"), 1, "status: the short chunked 200 was the only stream")


@test("share: an HTTP/1.0 viewer gets a close-delimited stream (no chunking) of whole "
      "parts; the device's end closes it")
def _(ctx):
    dev = stream_device(ctx, limit=40)
    start(ctx, dev)
    a = Viewer(ctx)
    v = Viewer(ctx, version="HTTP/1.0")
    v.wait_parts(10)
    check(not v.chunked and v.get("Content-Length") is None and
          v.head.startswith(b"HTTP/1."), "HTTP/1.0 viewer: no chunking, no length",
          "close-delimited", v.head)
    check(v.wait_end(8), "the HTTP/1.0 viewer's response ends with the device's stream",
          "EOF", v.ended)
    eq(v.ended, "eof", "HTTP/1.0: the end is the connection's close")
    expect_whole(v, "HTTP/1.0 viewer", first=MJPEG_START)
    check(a.wait_end(5), "the HTTP/1.1 viewer's response ended", "final", a.ended)
    eq(a.ended, "final", "HTTP/1.1 viewer: the final chunk")
    eq(a.seqs()[-1], 39, "the HTTP/1.1 viewer got every part to the last")
    eq(v.seqs()[-1], 39, "the HTTP/1.0 viewer got every part to the last")
    one_conn(dev, "HTTP/1.0 + HTTP/1.1")


@test("share: requests with different Cookie / Authorization values get their own device "
      "connection, identical values share one")
def _(ctx):
    dev = stream_device(ctx, max_conns=10)
    start(ctx, dev)
    a1 = Viewer(ctx, headers=[("Cookie", "session=a")])
    a2 = Viewer(ctx, headers=[("Cookie", "session=a")])
    b = Viewer(ctx, headers=[("Cookie", "session=b")])
    for v in (a1, a2, b):
        v.wait_parts(5)
        expect_whole(v, "cookie viewer", first=MJPEG_START)
    eq(dev.conns, 2, "device connections: one for session=a (two viewers), one for "
       "session=b")
    n = Viewer(ctx)       # no cookie at all: a third stream
    n.wait_parts(3)
    eq(dev.conns, 3, "a request without Cookie shares with neither")
    with dev.lock:
        cookies = sorted(r.get("Cookie", "") for r in dev.requests)
    eq(cookies, ["", "session=a", "session=b"], "each device request carries its Cookie")
    x1 = Viewer(ctx, headers=[("Authorization", "Bearer x")])
    x2 = Viewer(ctx, headers=[("Authorization", "Bearer x")])
    for v in (x1, x2):
        v.wait_parts(3)
    eq(dev.conns, 4, "identical Authorization values share a fourth connection")
    y = Viewer(ctx, headers=[("Authorization", "Bearer y")])
    y.wait(lambda v: v.status is not None, 5)
    eq(y.status, 200, "a different Authorization value: its own answer (the fifth stream "
       "is served unshared)")
    eq(dev.conns, 5, "a different Authorization value does not share")


def _ends_clean(ctx, framing):
    dev = stream_device(ctx, limit=30, framing=framing, end="close")
    start(ctx, dev)
    vs = [Viewer(ctx) for _ in range(3)]
    for k, v in enumerate(vs):
        check(v.wait_end(10), "viewer %d's response ended" % k, "final chunk", v.ended)
        eq(v.ended, "final", "viewer %d: the response ends with the final chunk" % k)
        expect_whole(v, "viewer %d" % k, first=MJPEG_START)
        eq(v.seqs()[-1], 29, "viewer %d got the last part" % k)
    for k, v in enumerate(vs):    # the connection is kept: a next request on it works
        v.sock.settimeout(5)
        v.sock.sendall(req_bytes("GET", "/noshare/plain", host=HOST))
        data = v.rest
        while b"plain answer" not in data:
            d = v.sock.recv(65536)
            if not d:
                fail("viewer %d: connection closed after the stream ended" % k,
                     "a next answer", data)
            data += d
        check(data.startswith(b"HTTP/1.1 200"), "viewer %d: the next request on the "
              "connection is answered" % k, "HTTP/1.1 200", short(data, 100))
    eq((len(streams(dev)), dev.state["refused"]), (1, 0), "one stream at the device")
    eq(share_stats(ctx).get("streams"), [], "status: no stream left")


@test("share: the device ends a close-delimited stream: every viewer gets the final "
      "chunk and keeps its connection")
def _(ctx):
    _ends_clean(ctx, "close")


@test("share: the device ends a chunked stream (final chunk): every viewer gets the final "
      "chunk and keeps its connection", valgrind=True)
def _(ctx):
    _ends_clean(ctx, "chunked")


def _dies(ctx, framing, end):
    dev = stream_device(ctx, limit=20, framing=framing, end=end)
    start(ctx, dev)
    vs = [Viewer(ctx) for _ in range(3)]
    for k, v in enumerate(vs):
        check(v.wait_end(10), "viewer %d's response ended" % k, "cut", v.ended)
        check(v.ended in ("eof", "reset"), "viewer %d: the response is cut (connection "
              "closed, no final chunk)" % k, "eof or reset", v.ended)
        expect_whole(v, "viewer %d" % k, first=MJPEG_START)
    one_conn(dev, "failed stream")
    eq(share_stats(ctx).get("streams"), [], "status: no stream left")


@test("share: the device closes a chunked stream without its final chunk: every viewer's "
      "response is cut (closed, no terminator)")
def _(ctx):
    _dies(ctx, "chunked", "cut")


@test("share: the device resets a close-delimited stream: every viewer's response is cut")
def _(ctx):
    _dies(ctx, "close", "rst")


# ---- hostile devices ----

@test("share: bad input: a boundary announced and never sent -- the opener gets every "
      "byte, a joiner gets bytes (from the write position, after a ring) in order")
def _(ctx):
    ct = "multipart/x-mixed-replace; boundary=neversent"
    dev = stream_device(ctx, fps=50, size=9000, ctype=ct)
    start(ctx, dev)
    a = Viewer(ctx, kind="mjpeg")
    a.wait_parts(5)
    b = Viewer(ctx, kind="raw")
    check(b.wait(lambda v: v.nbody > 20000, 15), "the joiner gets bytes within a ring's "
          "time", "> 20000 bytes", b.nbody)
    expect_whole(a, "opener", first=MJPEG_START)
    # the joiner's bytes are a contiguous piece of the opener's
    with a.lock, b.lock:
        piece = bytes(b.body[:4096])
        whole = bytes(a.body)
    check(whole.find(piece) > 0, "the joiner's bytes are the stream's bytes, in order",
          "a slice of the opener's stream", short(piece, 80))
    one_conn(dev, "boundary never sent")


@test("share: bad input: a 100 MB part -- viewers keep getting bytes, rproxy's RSS stays "
      "bounded, the stream goes on after it", timeout=60)
def _(ctx):
    big = 100 << 20
    state = {}

    def extra(conn, seq):
        if seq == 3:     # one part of 100 MB, sent in 1 MB writes
            blk = pattern_block()
            h = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % big
            conn.send(b"%x\r\n%s\r\n" % (len(h), h))
            for _ in range(big // len(blk)):
                conn.send(b"%x\r\n" % len(blk) + blk + b"\r\n")
            conn.send(b"2\r\n\r\n\r\n")
            state["big_done"] = time.monotonic()
        return None
    dev = stream_device(ctx, fps=20, limit=40, framing="chunked", extra=extra)
    px = start(ctx, dev)
    a = Viewer(ctx, kind="raw", keep=False)
    time.sleep(0.3)
    rss0 = vmrss(px.proc.pid)
    b = Viewer(ctx, kind="raw", keep=False)
    c = Viewer(ctx, kind="raw", keep=False, rcvbuf=8192)
    c.pause()             # one viewer reads nothing for a while: it is overtaken
    peak = rss0
    end = time.monotonic() + 45
    while time.monotonic() < end and "big_done" not in state:
        peak = max(peak, vmrss(px.proc.pid))
        time.sleep(0.1)
    c.resume()
    check("big_done" in state, "the device sent its 100 MB part", "sent", state)
    for k, v in enumerate((a, b, c)):
        check(v.wait_end(15), "viewer %d's stream ended (after the 100 MB part)" % k,
              "final", (v.ended, v.nbody))
        eq(v.ended, "final", "viewer %d: the final chunk" % k)
    peak = max(peak, vmrss(px.proc.pid))
    ctx.note("rproxy VmRSS %d kB before, peak %d kB; viewers got %r bytes"
             % (rss0, peak, [v.nbody for v in (a, b, c)]))
    check(a.nbody > 50 << 20 and b.nbody > 10 << 20, "viewers got the big part's bytes",
          "> 50 MB, > 10 MB", (a.nbody, b.nbody))
    check(peak - rss0 < 8 << 10, "rproxy's RSS stays bounded (grows < 8 MB over a 100 MB "
          "part)", "< %d kB" % (rss0 + (8 << 10)), "%d kB" % peak)
    check(px.alive(), "rproxy alive", "alive", "dead")
    one_conn(dev, "100 MB part")


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


@test("share: bad input: an SSE line without end for 1.3 MB (longer than the ring) -- a "
      "viewer joining during it gets bytes, one joining after it starts at a whole event")
def _(ctx):
    def extra(conn, seq):
        if 5 <= seq < 25:         # 20 ticks of 64 KiB of one line, no newline
            return ("only", (b"data: " if seq == 5 else b"") + b"x" * 65536)
        if seq == 25:
            return b"\n\n"
        return None
    dev = stream_device(ctx, kind="sse", fps=20, framing="chunked", extra=extra)
    start(ctx, dev)
    a = Viewer(ctx, path="/ev", kind="raw")
    check(a.wait(lambda v: v.nbody > 300000, 10), "the opener gets the endless line's "
          "bytes", "> 300000", a.nbody)
    m = Viewer(ctx, path="/ev", kind="raw")     # joins with no boundary in the ring
    check(m.wait(lambda v: v.nbody > 0, 5), "a viewer joining during the line gets bytes",
          "> 0", m.nbody)
    wait_sent(dev, 30)
    j = Viewer(ctx, path="/ev", kind="sse")
    j.wait_parts(10)
    expect_whole(j, "SSE joiner after the long line")
    check(j.body.startswith(b"id: ") and j.seqs()[0] >= 25, "the joiner starts at an event "
          "after the long line", "id: N>=25", short(j.body, 40))
    check(m.wait(lambda v: b"id: 30" in v.body, 5), "the viewer that joined during the "
          "line goes on to the events after it", "id: 30", short(m.body[-100:]))
    with a.lock:
        body = bytes(a.body)
    eq(body[:len(sse_event(0))], sse_event(0), "the opener's stream starts with event 0")
    check(b"id: 4" in body and b"id: 30" in body and body.count(b"x") >= 20 * 65536,
          "the opener got every byte: events, the whole line, events after",
          "id: 4, 1.3 MB of x, id: 30", len(body))
    one_conn(dev, "SSE long line")


@test("share: bad input: a malformed boundary= (a bad character, unterminated quotes, "
      "too long) is shared by device chunk: a joiner starts at a chunk, kind 'other'")
def _(ctx):
    for k, bad in enumerate(('fr@me', '"frame', 'x' * 71)):
        ct = "multipart/x-mixed-replace; boundary=%s" % bad
        dev = stream_device(ctx, fps=40, framing="chunked", ctype=ct, name="bad%d" % k)
        px = ctx.start(pools=["pool p", "device p %s weight=1" % dev.addr],
                       routes=["route pool=p share=on"], extra=STATUS)
        ctx.port = px.port
        a = Viewer(ctx, port=px.port)
        a.wait_parts(5, what="opener (%s)" % bad)
        j = Viewer(ctx, port=px.port)
        j.wait_parts(5, what="joiner (%s)" % bad)
        expect_whole(a, "opener (%s)" % bad, first=MJPEG_START)
        expect_whole(j, "joiner (%s)" % bad, first=MJPEG_START)
        sh = share_stats(ctx)
        kinds = [s.get("kind") for s in sh.get("streams", [])]
        eq(kinds, ["other"], "boundary=%s: status kind" % bad)
        one_conn(dev, "boundary=%s" % bad)
        a.close()
        j.close()


@test("share: a fifth stream with RP_MAX_STREAMS=4 slots taken is served unshared "
      "(share.full counted), whole, and its own device connection")
def _(ctx):
    dev = stream_device(ctx, max_conns=10)
    start(ctx, dev)
    vs = []
    for k in range(5):
        vs.append(Viewer(ctx, path="/cam%d" % k))
        vs[-1].wait_parts(3)
    extra = Viewer(ctx, path="/cam1")     # joins the shared /cam1
    extra.wait_parts(3)
    for k, v in enumerate(vs + [extra]):
        expect_whole(v, "viewer %d" % k, first=MJPEG_START)
    sh = share_stats(ctx)
    eq((sh.get("streams_started"), sh.get("full"), len(sh.get("streams", []))), (4, 1, 4),
       "status: streams started, full, streams listed")
    eq(dev.conns, 5, "device connections: four shared streams and one unshared request")


@test("share: the opener leaving before the device's head: the waiting viewers still get "
      "whole streams from the first part")
def _(ctx):
    dev = stream_device(ctx, max_conns=10, head_delay=1.0)
    start(ctx, dev)
    a = Viewer(ctx)
    check(dev.wait_requests(1, 5), "the opener's request reached the device", 1,
          len(dev.requests))
    b = Viewer(ctx)
    c = Viewer(ctx)
    time.sleep(0.3)
    a.close()
    for k, v in enumerate((b, c)):
        v.wait_parts(5, 10, "waiting viewer %d" % k)
        expect_whole(v, "waiting viewer %d" % k, first=MJPEG_START)
    # rproxy notices the opener's close when the head comes: the waiters then view the
    # opener's stream (one device connection) -- or go to the device on their own
    ctx.note("device connections: %d" % dev.conns)
    check(dev.conns in (1, 2), "one device connection, or one more for the waiters",
          "1 or 2", dev.conns)
    eq((b.seqs()[0], c.seqs()[0]), (0, 0), "the waiters start at the stream's first part")
    sh = share_stats(ctx)
    eq([s.get("viewers") for s in sh.get("streams", [])], [2], "status: one stream, two "
       "viewers")


@test("share: a device silent longer than timeout device= ends the stream for every viewer "
      "(cut); the slot is freed")
def _(ctx):
    dev = stream_device(ctx, silent_after=5)
    start(ctx, dev, timeouts={"device": 1000})
    vs = [Viewer(ctx) for _ in range(3)]
    for k, v in enumerate(vs):
        check(v.wait_end(6), "viewer %d's response ended after the device went silent" % k,
              "cut", (v.ended, v.seqs()))
        check(v.ended in ("eof", "reset"), "viewer %d: cut, no final chunk" % k, "eof",
              v.ended)
        expect_whole(v, "viewer %d" % k, first=MJPEG_START)
    eq(share_stats(ctx).get("streams"), [], "status: no stream left")
    check(dev.wait_for(lambda d: d.state["streams"][0].eof_at is not None, 3),
          "the device connection was closed", "EOF", "open")


@test("share: an HTTP/1.0 opener and HTTP/1.1 joiners share one stream, each framed for "
      "itself")
def _(ctx):
    dev = stream_device(ctx, limit=30)
    start(ctx, dev)
    a = Viewer(ctx, version="HTTP/1.0")
    a.wait_parts(3)
    b = Viewer(ctx)
    for v, why in ((a, "eof"), (b, "final")):
        check(v.wait_end(8), "the response ended", why, v.ended)
        eq(v.ended, why, "the end of the stream as the viewer's version has it")
        expect_whole(v, "viewer", first=MJPEG_START)
    check(not a.chunked and b.chunked, "1.0 close-delimited, 1.1 chunked", (False, True),
          (a.chunked, b.chunked))
    one_conn(dev, "1.0 opener")


@test("share: a viewer that half-closes after its request (shutdown(SHUT_WR), as nc -N does) "
      "gets the stream as it does without share=on")
def _(ctx):
    dev = stream_device(ctx, max_conns=10)
    start(ctx, dev)
    got = {}
    for path in ("/noshare/cam", "/cam"):
        for role in ("opener", "joiner"):
            if path == "/cam" and role == "joiner":
                o = Viewer(ctx, path=path)          # an ordinary opener first
                o.wait_parts(2)
            v = Viewer(ctx, path=path, half_close=True)
            v.wait(lambda x: len(x.parts) >= 5 or x.ended, 5)
            got["%s %s" % (path, role)] = (v.status, len(v.parts), v.ended)
            v.close()
            if path == "/noshare/cam":
                break
    ctx.note(repr(got))
    for k, (status, n, ended) in got.items():
        check(status == 200 and n >= 5, "%s: the half-closed viewer gets the stream" % k,
              "200 and >= 5 parts", "status %s, %d parts, ended %s" % (status, n, ended))


@test("share: the device ending the stream during share_linger frees it; the next viewer "
      "opens a new stream")
def _(ctx):
    dev = stream_device(ctx, limit=20, framing="chunked")
    start(ctx, dev, linger="5s")
    a = Viewer(ctx)
    a.wait_parts(3)
    a.close()
    check(dev.wait_for(lambda d: d.state["active"] == 0, 5), "the device ended its stream "
          "during the linger", "ended", dev.state["active"])
    time.sleep(0.2)
    eq(share_stats(ctx).get("streams"), [], "status: no stream left")
    b = Viewer(ctx)
    b.wait_parts(3)
    expect_whole(b, "next viewer", first=MJPEG_START)
    eq(b.seqs()[0], 0, "a new stream from the device's part 0")
    eq((dev.conns, dev.state["refused"]), (2, 0), "a second device connection, after the "
       "first ended (connections, refusals)")



@test("share: TLS and plain viewers share one device stream, every part whole on both")
def _(ctx):
    import tlsutil
    ok, msg = tlsutil.tls_built()
    check(ok, "TLS built into %s" % "rproxy", "a TLS build", msg[:200])
    pki = tlsutil.pki(ctx)
    from harness import free_port
    dev = stream_device(ctx)
    tport = free_port()
    conf = ctx.config(pools=["pool p", "device p %s weight=1" % dev.addr],
                      routes=["route pool=p share=on"],
                      extra="listen 127.0.0.1:%d tls\ntls cert=%s key=%s\n%s"
                      % (tport, pki.a_crt, pki.a_key, STATUS))
    ctx.start(conf)
    sc = tlsutil.ssl_context(ctx)
    vs = [Viewer(ctx, host="a.test"), Viewer(ctx, host="a.test", port=tport, tls=sc),
          Viewer(ctx, host="a.test", port=tport, tls=sc), Viewer(ctx, host="a.test")]
    for k, v in enumerate(vs):
        v.wait_parts(20, 15, "viewer %d (%s)" % (k, "TLS" if k in (1, 2) else "plain"))
        expect_whole(v, "viewer %d" % k, first=MJPEG_START)
    one_conn(dev, "TLS + plain viewers")

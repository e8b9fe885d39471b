"""devserver.py -- a flexible threaded HTTP/1.1 "device" for rproxy's integration tests.

Socket level on purpose (not http.server): every test decides exactly which bytes go
back, including broken ones.  The server records everything it receives:

    dev.conns          number of accepted TCP connections
    dev.raw            every byte received, all connections, in arrival order
    dev.requests       parsed requests (Request objects), in arrival order

A handler is called once per request head with (conn, req); it answers by writing
bytes with conn.send() (helpers below build common answers).  The body of the request
is read by the framework before the handler runs (req.body) unless the server was made
with read_body=False, in which case the handler may call conn.read_body(req) itself or
never read it at all.  A handler returns True to keep the connection for another
request, False to close it (it may also just close it itself).

Python 3 stdlib only.
"""

import hashlib
import json
import select
import socket
import threading
import time

__all__ = ["Device", "Request", "DevConn", "HTTPError"]


class HTTPError(Exception):
    pass


class Request:
    """One request as the device saw it."""

    def __init__(self, head_raw, method, target, version, headers, conn_index):
        self.head_raw = head_raw          # bytes, up to and including the blank line
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers            # list of (name, value) as received (str)
        self.conn_index = conn_index      # which accepted connection (0-based)
        self.body = b""
        self.body_complete = False
        self.chunked = False
        self.time = time.monotonic()

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def get(self, name, default=None):
        v = self.get_all(name)
        return v[0] if v else default

    def has(self, name):
        return bool(self.get_all(name))

    def info(self):
        return {
            "method": self.method,
            "target": self.target,
            "version": self.version,
            "headers": [[k, v] for k, v in self.headers],
            "body_len": len(self.body),
            "body_sha256": hashlib.sha256(self.body).hexdigest(),
            "conn": self.conn_index,
        }

    def __repr__(self):
        return "<Request %s %s %s conn=%d>" % (self.method, self.target, self.version,
                                             self.conn_index)


class DevConn:
    """One accepted connection on the device side."""

    def __init__(self, dev, sock, index):
        self.dev = dev
        self.sock = sock
        self.index = index
        self.buf = b""
        self.eof = False
        self.closed = False
        self.sent = 0           # bytes handed to the kernel (for backpressure tests)

    # ---- receiving ----
    def _fill(self, timeout=None):
        """Read more bytes into self.buf; False on EOF/error."""
        if self.eof:
            return False
        try:
            self.sock.settimeout(timeout if timeout is not None else self.dev.io_timeout)
            data = self.sock.recv(65536)
        except socket.timeout:
            raise
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.dev._record(data)
        self.buf += data
        return True

    def recv_some(self, timeout=None):
        """Return whatever is buffered or the next bytes received (b"" on EOF)."""
        if self.buf:
            d, self.buf = self.buf, b""
            return d
        if not self._fill(timeout):
            return b""
        d, self.buf = self.buf, b""
        return d

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise HTTPError("EOF after %d of %d bytes" % (len(self.buf), n))
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_line(self, limit=65536):
        while b"\r\n" not in self.buf:
            if len(self.buf) > limit:
                raise HTTPError("line too long")
            if not self._fill():
                raise HTTPError("EOF in line")
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def read_head(self):
        """Next request head, or None at a clean EOF between requests."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise HTTPError("request head too large")
            if not self._fill(timeout=self.dev.idle_timeout):
                if self.buf:
                    raise HTTPError("EOF inside a request head: %r" % self.buf[:200])
                return None
        i = self.buf.index(b"\r\n\r\n") + 4
        raw, self.buf = self.buf[:i], self.buf[i:]
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            raise HTTPError("bad request line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            s = ln.decode("latin-1")
            if ":" not in s:
                raise HTTPError("bad header line %r" % ln)
            k, v = s.split(":", 1)
            headers.append((k, v.strip(" \t")))
        return Request(raw, parts[0], parts[1], parts[2], headers, self.index)

    def read_body(self, req):
        """Read req's body (Content-Length or chunked) into req.body."""
        te = ",".join(req.get_all("Transfer-Encoding")).lower()
        if "chunked" in te:
            req.chunked = True
            out = []
            while True:
                line = self.read_line()
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_line() != b"":     # trailers
                        pass
                    break
                out.append(self.read_exact(size))
                if self.read_exact(2) != b"\r\n":
                    raise HTTPError("chunk not followed by CRLF")
            req.body = b"".join(out)
        else:
            cl = req.get("Content-Length")
            if cl is not None:
                req.body = self.read_exact(int(cl))
        req.body_complete = True
        return req.body

    def read_body_chunks(self, req, cb):
        """Stream a Content-Length body to cb(bytes) without keeping it."""
        left = int(req.get("Content-Length", "0"))
        h = hashlib.sha256()
        n = 0
        while left > 0:
            if self.buf:
                d = self.buf[:left]
                self.buf = self.buf[len(d):]
            else:
                self.sock.settimeout(self.dev.io_timeout)
                try:
                    d = self.sock.recv(min(left, 1 << 20))
                except OSError:
                    d = b""
                if not d:
                    raise HTTPError("EOF in body after %d bytes" % n)
                self.dev._record_count(len(d))
            left -= len(d)
            n += len(d)
            h.update(d)
            if cb:
                cb(d)
        req.body_complete = True
        return n, h.hexdigest()

    # ---- sending ----
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.settimeout(self.dev.send_timeout)
        view = memoryview(data)
        while view:
            n = self.sock.send(view)
            self.sent += n
            self.dev.sent_total += n
            view = view[n:]

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Device:
    """A threaded device server on 127.0.0.1:<ephemeral>.

    handler(conn, req) -> bool (keep the connection).  Default: echo().
    """

    def __init__(self, handler=None, name="dev", read_body=True, sndbuf=None, rcvbuf=None,
                 io_timeout=10.0, idle_timeout=30.0, port=0, close_on_accept=False,
                 host="127.0.0.1", single=False):
        self.name = name
        # single: a device with one socket (a PLC, a small camera): a second connection
        # while one is open is closed at once (counted in refused).  max_live: the most
        # connections ever open at once, counted at each accept (every device counts).
        self.single = single
        self.max_live = 0
        self.refused = 0
        self.close_on_accept = close_on_accept   # accept, count, close at once
        self.handler = handler or echo
        self.read_body_first = read_body
        self.sndbuf = sndbuf
        self.io_timeout = io_timeout
        self.idle_timeout = idle_timeout
        self.send_timeout = 30.0
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.conns = 0
        self.raw = bytearray()
        self.raw_count = 0            # bytes received (including streamed, unrecorded ones)
        self.requests = []
        self.errors = []
        self.eofs = 0                 # connections that ended with EOF from the proxy
        self.sent_total = 0
        self.stopping = False
        self.state = {}               # free-form per-test state shared with handlers
        self.live = []
        self.threads = []
        self.lsock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                   socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:      # set before listen so accepted sockets inherit it (window scale)
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.bind((host, port))     # host: another loopback address (t_dns.py)
        self.lsock.listen(128)
        self.port = self.lsock.getsockname()[1]
        self.addr = ("[%s]:%d" if ":" in host else "%s:%d") % (host, self.port)
        t = threading.Thread(target=self._accept_loop, name="dev-%s-accept" % name,
                             daemon=True)
        t.start()
        self.threads.append(t)

    # ---- bookkeeping ----
    def _record(self, data):
        with self.cond:
            self.raw += data
            self.raw_count += len(data)
            self.cond.notify_all()

    def _record_count(self, n):
        with self.cond:
            self.raw_count += n
            self.cond.notify_all()

    def snapshot(self):
        with self.lock:
            return {"conns": self.conns, "raw": len(self.raw), "requests": len(self.requests),
                    "raw_count": self.raw_count}

    def wait_for(self, pred, timeout=5.0):
        """Wait until pred(self) is true (checked under the lock)."""
        end = time.monotonic() + timeout
        with self.cond:
            while not pred(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.05))
            return True

    def wait_requests(self, n, timeout=5.0):
        return self.wait_for(lambda d: len(d.requests) >= n, timeout)

    def paths(self):
        with self.lock:
            return [r.target for r in self.requests]

    @staticmethod
    def _peer_closed(c):
        """The proxy has closed (or shut down writing on) c: its FIN has arrived."""
        try:      # poll, not recv: a socket with a timeout waits in recv even to peek
            p = select.poll()
            p.register(c.sock.fileno(), select.POLLRDHUP)
            ev = p.poll(0)
            return bool(ev and ev[0][1] & (select.POLLRDHUP | select.POLLHUP | select.POLLERR |
                                           select.POLLNVAL))
        except (OSError, ValueError):
            return True

    def _open_others(self):
        """Connections open at both ends now (called with the lock held).  One the proxy has
        just closed does not count; one this device closed meanwhile (it was serving) does:
        wait up to 100 ms for a FIN in flight before counting one with none."""
        cands = [c for c in self.live if not c.closed and not self._peer_closed(c)]
        if not self.single or len(cands) == 0:
            return len(cands)           # only a one-socket device waits for a FIN in flight
        end = time.monotonic() + 0.1
        while cands and time.monotonic() < end:
            if any(c.closed for c in cands):
                break                   # served and closed by us: it was really open
            cands = [c for c in cands if not self._peer_closed(c)]
            self.cond.wait(0.01)
        return len(cands)

    # ---- threads ----
    def _accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                break
            if self.stopping:
                s.close()
                break
            if self.sndbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            with self.cond:
                idx = self.conns
                self.conns += 1
                if self.close_on_accept:
                    s.close()
                    self.cond.notify_all()
                    continue
                n = 1 + self._open_others()
                self.max_live = max(self.max_live, n)
                if self.single and n > 1:
                    self.refused += 1
                    s.close()
                    self.cond.notify_all()
                    continue
                c = DevConn(self, s, idx)
                self.live.append(c)
                self.cond.notify_all()
            t = threading.Thread(target=self._serve, args=(c,),
                                 name="dev-%s-%d" % (self.name, idx), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c):
        try:
            while not self.stopping:
                req = c.read_head()
                if req is None:
                    with self.cond:
                        self.eofs += 1
                        self.cond.notify_all()
                    break
                with self.cond:
                    self.requests.append(req)
                    self.cond.notify_all()
                if self.read_body_first and not req.get("Expect", "").lower() == "100-continue":
                    c.read_body(req)
                    with self.cond:
                        self.cond.notify_all()
                keep = self.handler(c, req)
                if not keep or c.closed:
                    break
                if not req.body_complete:
                    c.read_body(req)
        except Exception as e:       # noqa: BLE001 -- record and drop the connection
            if not self.stopping:
                with self.cond:
                    self.errors.append("%s: %r" % (threading.current_thread().name, e))
        finally:
            c.close()
            with self.cond:
                self.cond.notify_all()

    def stop(self):
        self.stopping = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept()
        except OSError:
            pass
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            live = list(self.live)
        for c in live:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self.threads:
            t.join(2.0)


# ==== response helpers (handlers and pieces of handlers) ====

def response(status=200, reason=None, headers=(), body=b"", length=True):
    """Build a response: HTTP/1.1 STATUS REASON, headers, Content-Length when length."""
    reasons = {100: "Continue", 101: "Switching Protocols", 200: "OK", 204: "No Content",
               304: "Not Modified", 404: "Not Found", 500: "Internal Server Error"}
    if isinstance(body, str):
        body = body.encode()
    lines = ["HTTP/1.1 %d %s" % (status, reason or reasons.get(status, "Whatever"))]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def echo_body(conn, req, extra=None):
    info = req.info()
    info["device"] = conn.dev.name
    if extra:
        info.update(extra)
    return json.dumps(info).encode()


def echo(conn, req):
    """200 with a JSON body describing the request as the device saw it."""
    body = echo_body(conn, req)
    hdrs = [("Content-Type", "application/json"), ("X-Device", conn.dev.name),
            ("X-Echo-Target", req.target)]
    if req.method == "HEAD":
        conn.send(response(200, headers=hdrs + [("Content-Length", str(len(body)))],
                           length=False))
    else:
        conn.send(response(200, headers=hdrs, body=body))
    return True


def chunked_bytes(parts, trailers=b""):
    out = b""
    for p in parts:
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


def dechunk(data):
    """Decode a complete chunked body; returns (body, rest) or raises ValueError."""
    out = []
    i = 0
    while True:
        j = data.index(b"\r\n", i)
        size = int(data[i:j].split(b";")[0], 16)
        i = j + 2
        if size == 0:
            while True:
                j = data.index(b"\r\n", i)
                line = data[i:j]
                i = j + 2
                if line == b"":
                    return b"".join(out), data[i:]
        out.append(data[i:i + size])
        if data[i + size:i + size + 2] != b"\r\n":
            raise ValueError("chunk not followed by CRLF at %d" % (i + size))
        i += size + 2

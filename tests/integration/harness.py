"""harness.py -- rproxy process control, raw HTTP clients and curl for the integration tests.

Every test gets a Ctx: its own temp dir, its own rproxy (own config, free ports) and
its own device servers.  Ctx.cleanup() closes every socket, kills every child, stops
every device, so a failing or hanging test cannot leak into the next one.

Python 3 stdlib only.
"""

import os
import re
import shutil
import signal
import random
import socket
import subprocess
import tempfile
import threading
import time

from devserver import Device

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def env_path(var, default):
    p = os.environ.get(var, default)
    if not os.path.isabs(p):
        # relative paths are relative to the repo root (where make runs)
        cand = os.path.join(os.getcwd(), p)
        p = cand if os.path.exists(cand) else os.path.join(ROOT, p)
    return os.path.normpath(p)


RPROXY = env_path("RPROXY", "./rproxy")
RPROXY_SMALL = env_path("RPROXY_SMALL", "build/rproxy-small")
DEVSIM = env_path("DEVSIM", "build/devsim")


class TestFailure(Exception):
    pass


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_LOW = _ephemeral_low()
_GIVEN = set()  # never hand the same port out twice in one run
_GIVEN_LOCK = threading.Lock()


def free_port():
    """A port nobody uses right now, below the kernel's ephemeral range: the
    client sockets of every test (curl, wrk, raw sockets) take their source
    ports from that range, and one of them holding the port between this
    check and rproxy's bind made a start fail with EADDRINUSE."""
    hi = min(_EPHEMERAL_LOW, 65536)
    lo = max(1024, hi - 12000)
    for _ in range(200):
        p = random.randrange(lo, hi)
        with _GIVEN_LOCK:
            if p in _GIVEN:
                continue
            _GIVEN.add(p)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ==== parsed HTTP responses ====

class Response:
    def __init__(self, version, status, reason, headers, head_raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.head_raw = head_raw
        self.body = b""
        self.body_raw = b""             # as on the wire (chunked framing kept)
        self.chunked = False
        self.close_delimited = False

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def get(self, name, default=None):
        v = self.get_all(name)
        return v[0] if v else default

    def has(self, name):
        return bool(self.get_all(name))

    def conn_tokens(self):
        toks = []
        for v in self.get_all("Connection"):
            toks += [t.strip().lower() for t in v.split(",") if t.strip()]
        return toks

    def __repr__(self):
        return "<Response %s %d %s, %d body bytes>" % (self.version, self.status, self.reason,
                                                      len(self.body))


class Closed(Exception):
    """The peer closed before a complete message arrived."""

    def __init__(self, msg, got=b""):
        Exception.__init__(self, msg)
        self.got = got


class Client:
    """A raw TCP client with a read buffer, for byte-level HTTP conversations."""

    def __init__(self, ctx, port=None, timeout=5.0, rcvbuf=None, sndbuf=None, connect=True):
        self.ctx = ctx
        self.port = port or ctx.port
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.reset = False
        self.log = []                   # [('>', bytes) | ('<', bytes)] conversation record
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(timeout)
        ctx.sockets.append(self.sock)
        ctx.clients.append(self)
        if connect:
            self.sock.connect(("127.0.0.1", self.port))

    def send(self, data, ignore_errors=False):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.log.append((">", data))
        try:
            self.sock.sendall(data)
        except OSError:
            if not ignore_errors:
                raise

    def _fill(self, timeout=None):
        if self.eof:
            return False
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            d = self.sock.recv(1 << 20)
        except socket.timeout:
            raise
        except ConnectionResetError:
            self.reset = True
            d = b""
        if not d:
            self.eof = True
            return False
        self.log.append(("<", d))
        self.buf += d
        return True

    def read_head(self, timeout=None):
        """Read one response head; returns Response.  Raises Closed or socket.timeout."""
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n\r\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete response head; got %r" % self.buf[:300])
            if not self._fill(left):
                raise Closed("connection closed before a complete response head", self.buf)
        i = self.buf.index(b"\r\n\r\n") + 4
        raw, self.buf = self.buf[:i], self.buf[i:]
        lines = raw[:-4].split(b"\r\n")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise TestFailure("bad status line %r" % lines[0])
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k, v.strip(" \t")))
        return Response(m.group(1).decode(), int(m.group(2)),
                        (m.group(3) or b"").decode("latin-1"), headers, raw)

    def read_exact(self, n, timeout=None):
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout("wanted %d bytes, have %d" % (n, len(self.buf)))
            if not self._fill(left):
                raise Closed("closed after %d of %d bytes" % (len(self.buf), n), self.buf)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_line(self, timeout=None):
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout("no line; have %r" % self.buf[:100])
            if not self._fill(left):
                raise Closed("closed inside a line", self.buf)
        i = self.buf.index(b"\r\n")
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line

    def read_until_close(self, timeout=None, limit=1 << 30):
        end = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout("connection still open after reading %d bytes"
                                     % len(self.buf))
            self._fill(left)
            if len(self.buf) > limit:
                break
        d, self.buf = self.buf, b""
        return d

    def read_response(self, method="GET", timeout=None, allow_1xx=False):
        """Read one whole response (head + body as framed).  1xx heads are skipped
        unless allow_1xx, in which case a 1xx is returned as is."""
        while True:
            r = self.read_head(timeout)
            if 100 <= r.status < 200 and r.status != 101 and not allow_1xx:
                continue
            break
        if method == "HEAD" or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        te = ",".join(r.get_all("Transfer-Encoding")).lower()
        if te:
            if te.strip() != "chunked":
                raise TestFailure("unexpected Transfer-Encoding %r" % te)
            r.chunked = True
            raw = []
            body = []
            while True:
                line = self.read_line(timeout)
                raw.append(line + b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self.read_line(timeout)
                        raw.append(t + b"\r\n")
                        if t == b"":
                            break
                    break
                d = self.read_exact(size, timeout)
                crlf = self.read_exact(2, timeout)
                if crlf != b"\r\n":
                    raise TestFailure("chunk data not followed by CRLF")
                raw += [d, crlf]
                body.append(d)
            r.body = b"".join(body)
            r.body_raw = b"".join(raw)
        elif r.has("Content-Length"):
            r.body = self.read_exact(int(r.get("Content-Length")), timeout)
            r.body_raw = r.body
        else:
            r.close_delimited = True
            r.body = self.read_until_close(timeout)
            r.body_raw = r.body
        return r

    def closed_within(self, timeout=3.0):
        """True when the peer closes (EOF or RST) within timeout with no more bytes
        buffered; raises TestFailure when extra bytes arrive instead."""
        end = time.monotonic() + timeout
        while not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                self._fill(left)
            except socket.timeout:
                return False
        if self.buf:
            raise TestFailure("unexpected extra bytes before close: %r" % self.buf[:200])
        return True

    def still_open(self, wait=0.3):
        """True when nothing (no EOF, no data) arrives within wait seconds."""
        if self.eof:
            return False
        try:
            self.sock.settimeout(wait)
            d = self.sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            return True
        except OSError:
            return False
        return bool(d)

    def conversation(self, limit=600):
        out = []
        for d, b in self.log:
            s = repr(b[:limit])
            if len(b) > limit:
                s += "...(%d bytes)" % len(b)
            out.append("%s %s" % (d, s))
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ==== rproxy process ====

class RProxy:
    def __init__(self, ctx, conf_text, binary=None, args=(), valgrind=False, wait=True):
        self.ctx = ctx
        self.binary = binary or RPROXY
        self.conf_path = os.path.join(ctx.dir, "rproxy%d.conf" % len(ctx.proxies))
        with open(self.conf_path, "w") as f:
            f.write(conf_text)
        self.stderr_path = os.path.join(ctx.dir, "rproxy%d.stderr" % len(ctx.proxies))
        self.stdout_path = os.path.join(ctx.dir, "rproxy%d.stdout" % len(ctx.proxies))
        self.valgrind = valgrind
        cmd = [self.binary, "-c", self.conf_path] + list(args)
        if valgrind:
            cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "-q"] + cmd
        if not os.path.exists(self.binary):
            raise TestFailure("rproxy binary %s does not exist" % self.binary)
        self.cmd = cmd
        self.errf = open(self.stderr_path, "wb")
        self.outf = open(self.stdout_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.outf,
                                     stderr=self.errf, env=env, start_new_session=True)
        self.expect_exit = False
        self.returncode = None
        ctx.proxies.append(self)
        self.port = ctx.conf_port(conf_text)
        if wait and self.port:
            self.wait_listening()

    def wait_listening(self, timeout=None):
        timeout = timeout or (30.0 if self.valgrind else 5.0)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise TestFailure("rproxy exited with %s during start-up"
                                  % self.proc.returncode)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(0.5)
            try:
                s.connect(("127.0.0.1", self.port))
                s.close()
                return
            except OSError:
                s.close()
                time.sleep(0.02)
        raise TestFailure("rproxy did not accept on port %d within %.0fs"
                          % (self.port, timeout))

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=25):
        lines = self.stderr().splitlines()
        return lines[-n:]

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=5.0):
        """SIGTERM, wait, SIGKILL if needed.  Returns the exit status (or None if it
        had to be killed)."""
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            return self.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout)
            return self.returncode
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close_files(self):
        for f in (self.errf, self.outf):
            try:
                f.close()
            except OSError:
                pass


SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)"
                          r"|runtime error:|==\d+== (Invalid|Conditional jump|Syscall param"
                          r"|Use of uninitialised|Mismatched|Source and destination)"
                          r"|definitely lost in [1-9]")


class Ctx:
    """Per-test resources.  Everything created through it is cleaned up by cleanup()."""

    def __init__(self, name, valgrind=False):
        self.name = name
        self.valgrind = valgrind
        self.dir = tempfile.mkdtemp(prefix="rproxy-it-")
        self.sockets = []
        self.clients = []
        self.devices = []
        self.proxies = []
        self.popens = []
        self.diag = []
        self.port = None
        self.proxy = None
        self.cleaned = False
        self.lock = threading.Lock()

    # ---- building blocks ----
    def device(self, handler=None, **kw):
        d = Device(handler, **kw)
        self.devices.append(d)
        return d

    def conf_port(self, text):
        m = re.search(r"^\s*listen\s+(?:[\d.]+:)?(\d+)\s*$", text, re.M)
        return int(m.group(1)) if m else None

    def config(self, devices=None, pools=None, routes=None, timeouts=None, extra="",
               port=None):
        """Generate a config.  devices: list of Device (one pool "p", route everything)
        unless pools/routes are given explicitly as text lines."""
        port = port or free_port()
        lines = ["# generated for test: %s" % self.name, "listen 127.0.0.1:%d" % port]
        if pools is not None:
            lines += pools
        else:
            lines.append("pool p")
            for d in devices or []:
                if isinstance(d, str):
                    lines.append("device p %s weight=1" % d)
                else:
                    lines.append("device p %s weight=1" % d.addr)
        if routes is not None:
            lines += routes
        else:
            lines.append("route pool=p")
        t = {"client_header": 5000, "client_idle": 10000, "connect": 2000, "device": 5000,
             "device_idle": 10000}
        if timeouts:
            t.update(timeouts)
        lines.append("timeout " + " ".join("%s=%d" % kv for kv in t.items()))
        if extra:
            lines.append(extra)
        return "\n".join(lines) + "\n"

    def start(self, conf_text=None, devices=None, binary=None, args=None, **kw):
        """Start rproxy (with a generated config when conf_text is None)."""
        if conf_text is None:
            conf_text = self.config(devices=devices, **kw)
        if args is None:
            args = ["-g", "1000"]
        p = RProxy(self, conf_text, binary=binary, args=args, valgrind=self.valgrind)
        if self.proxy is None:
            self.proxy = p
            self.port = p.port
        return p

    def client(self, **kw):
        return Client(self, **kw)

    def curl(self, *args, timeout=15, data_file=None):
        """Run curl; returns (exit code, stdout bytes, stderr text)."""
        cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout - 2)] + list(args)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.popens.append(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise TestFailure("curl hung: %s" % " ".join(cmd))
        return p.returncode, out, err.decode("utf-8", "replace")

    def curl_bg(self, *args, timeout=15):
        cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout)] + list(args)
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.popens.append(p)
        return p

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def path(self, name):
        return os.path.join(self.dir, name)

    def note(self, msg):
        self.diag.append(str(msg))

    # ---- teardown ----
    def cleanup(self):
        """Close everything.  Returns a list of problems found while stopping rproxy
        (crash, non-zero exit, sanitizer report, ...)."""
        with self.lock:
            if self.cleaned:
                return []
            self.cleaned = True
        problems = []
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        for p in self.popens:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(2)
                except subprocess.TimeoutExpired:
                    pass
        for px in self.proxies:
            if px.proc.poll() is not None:
                if not px.expect_exit and px.returncode is None:
                    problems.append("rproxy died during the test (exit status %s)"
                                    % px.proc.returncode)
            else:
                rc = px.stop(timeout=30 if px.valgrind else 5)
                if rc is None:
                    problems.append("rproxy did not exit within 5s of SIGTERM (killed)")
                elif rc not in (0, 3):  # 3: the grace period cut what a test left hanging
                    problems.append("rproxy exited with status %s after SIGTERM" % rc)
            px.close_files()
            m = SANITIZER_RE.search(px.stderr())
            if m:
                problems.append("sanitizer/valgrind report in rproxy's stderr: %r" % m.group(0))
        for d in self.devices:
            d.stop()
        return problems

    def remove_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)

"""checks.py -- what the integration test files share: the @test registry, assertions,
deterministic test data and the small request/response helpers.

Topic files (t_*.py) import from here, from harness.py (Ctx, RProxy, clients, free_port,
the binaries' paths) and from devserver.py (device handlers); never from run.py, which
is only the runner.  A helper used by one topic file stays in that file.

    @test(name, valgrind=False, serial=False, timeout=20.0)   register a test (ctx) -> None
    fail / check / eq                      raise TestFailure with expected/got
    pattern(n) / pattern_sha(n)            n deterministic bytes / their sha256
    dispatch({prefix: handler})            device handler choosing by path prefix
    hang                                   device handler that never answers
    req_bytes(...) / get(ctx, path)        a raw request / one GET on a raw connection
    dev_info / seen_header                 the device's JSON echo of the request
    conn_tokens / expect_closed            Connection tokens / wait for EOF
    run_cli(ctx, args)                     run the rproxy binary, (rc, stdout, stderr)
    wait_stderr(px, pred) / access_lines   rproxy's stderr once pred holds / its ACCESS lines
"""

import hashlib
import json
import random
import re
import subprocess
import time

from devserver import echo
from harness import RPROXY, TestFailure


# =====================================================================
# registry
# =====================================================================

TESTS = []


class Test:
    def __init__(self, name, fn, valgrind=False, serial=False, timeout=20.0):
        self.name = name
        self.fn = fn
        self.valgrind = valgrind
        self.serial = serial
        self.timeout = timeout


def test(name, valgrind=False, serial=False, timeout=20.0):
    def deco(fn):
        TESTS.append(Test(name, fn, valgrind, serial, timeout))
        return fn
    return deco


# =====================================================================
# assertions
# =====================================================================

def fail(msg, expected=None, got=None):
    e = TestFailure(msg)
    e.expected = expected
    e.got = got
    raise e


def check(cond, msg, expected=None, got=None):
    if not cond:
        fail(msg, expected, got)


def eq(got, expected, what):
    if got != expected:
        fail(what, expected, got)


def short(b, n=300):
    if isinstance(b, (bytes, bytearray)) and len(b) > n:
        return repr(bytes(b[:n])) + "...(%d bytes)" % len(b)
    return repr(b)


# =====================================================================
# data
# =====================================================================

_PATTERN = None


def pattern_block():
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = random.Random(12345).randbytes(1 << 20)
    return _PATTERN


def pattern(n):
    """n deterministic pseudo-random bytes."""
    blk = pattern_block()
    reps = n // len(blk) + 1
    return (blk * reps)[:n]


def pattern_sha(n):
    h = hashlib.sha256()
    blk = pattern_block()
    left = n
    while left:
        k = min(left, len(blk))
        h.update(blk[:k])
        left -= k
    return h.hexdigest()


# =====================================================================
# request/response helpers
# =====================================================================

def dispatch(table, default=echo):
    """A device handler choosing by request path prefix (longest first)."""
    keys = sorted(table, key=len, reverse=True)

    def handler(conn, req):
        for k in keys:
            if req.target.startswith(k):
                return table[k](conn, req)
        return default(conn, req)
    return handler


def hang(conn, req):
    """Accept the request and never answer (until the device stops)."""
    while not conn.dev.stopping:
        time.sleep(0.05)
    return False


def req_bytes(method="GET", path="/", version="HTTP/1.1", host="test.example", headers=(),
              body=b""):
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding")
                        for k, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(ctx, path="/", client=None, **kw):
    """One GET on a (new) raw connection; returns (client, Response)."""
    c = client or ctx.client()
    c.send(req_bytes("GET", path, **kw))
    return c, c.read_response()


def dev_info(resp):
    try:
        return json.loads(resp.body)
    except ValueError:
        fail("device echo body is not JSON", "JSON", short(resp.body))


def seen_header(info, name):
    n = name.lower()
    return [v for k, v in info["headers"] if k.lower() == n]


def conn_tokens(values):
    out = []
    for v in values:
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def expect_closed(c, what, timeout=3.0):
    if not c.closed_within(timeout):
        fail(what + ": connection still open after %.1fs" % timeout, "EOF", "open")


def run_cli(ctx, args, timeout=10):
    p = subprocess.run([RPROXY] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def wait_stderr(px, pred, timeout=3.0):
    """rproxy px's stderr once pred(stderr) holds (or as it is after timeout)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = px.stderr()
        if pred(s):
            return s
        time.sleep(0.05)
    return px.stderr()


# ACCESS CLIENT "METHOD TARGET" STATUS BYTES DEVICE MSms[ cut=WHY] (boards/host/main.c)
ACCESS_RE = re.compile(r'^ACCESS (\S+) "(\S+) (\S+)" (\d{3}) (\d+) (\S+) (\d+)ms(?: cut=(\S+))?'
                       r'(?: why="[^"]*")?$',
                       re.M)


def access_lines(px, target, timeout=3.0):
    """The ACCESS lines for request target (ACCESS_RE's groups: client, method, target,
    status, bytes, device, ms, cut or ""), waiting up to timeout for one."""
    err = wait_stderr(px, lambda s: any(m[2] == target for m in ACCESS_RE.findall(s)), timeout)
    return [m for m in ACCESS_RE.findall(err) if m[2] == target]

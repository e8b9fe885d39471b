"""t_cache.py -- integration tests for the HTTP response cache (RFC 9111 and the README's
"Cache" section): storability, freshness, Age, HEAD, Vary, revalidation, request
directives, stale-if-error, client conditionals, invalidation, collapsing, Cache-Status,
LRU eviction, pinning, status counters, hostile input and config errors.

Listed in run.py's TOPICS.  Every test runs the real daemon on a route
with cache=on in front of a device whose answers the test scripts per path.  A hit is
proven by the device's request count staying where it was (zero device traffic); bodies
are compared byte for byte; Age and Cache-Status are read from every response; what the
device received (e.g. the If-None-Match of a revalidation) is read from its records.

Timing: freshness is driven by the device's Age / Date fields or max-age=0 wherever
possible; the few real sleeps are about 1 s each.
"""

import email.utils
import hashlib
import json
import re
import socket
import subprocess
import time

from checks import check, eq, fail, pattern, req_bytes, short, test
from harness import RPROXY, Closed, TestFailure, free_port

HOST = "test.example"
STATUS = "status path=/status"
REASONS = {200: "OK", 201: "Created", 203: "Non-Authoritative Information",
           204: "No Content", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
           303: "See Other", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 410: "Gone", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


# ==== the scripted device ====

def httpdate(t, fmt="imf"):
    """t as an HTTP-date: IMF-fixdate, or the obsolete RFC 850 / asctime forms that
    recipients must accept too (RFC 9110 5.6.7)."""
    if fmt == "imf":
        return email.utils.formatdate(t, usegmt=True)
    g = time.gmtime(t)
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    mons = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
            "Dec"]
    if fmt == "rfc850":
        return "%s, %02d-%s-%02d %02d:%02d:%02d GMT" % (days[g.tm_wday], g.tm_mday,
                                                        mons[g.tm_mon - 1], g.tm_year % 100,
                                                        g.tm_hour, g.tm_min, g.tm_sec)
    return "%s %s %2d %02d:%02d:%02d %d" % (days[g.tm_wday][:3], mons[g.tm_mon - 1],
                                            g.tm_mday, g.tm_hour, g.tm_min, g.tm_sec,
                                            g.tm_year)


class R:
    """One scripted device answer.

    framing: "cl" (Content-Length), "chunked" (body sent in `chunk`-byte chunks),
    "close" (no length, connection closed after the body), "raw" (body is the whole
    answer, sent as is).  extra: bytes sent after a Content-Length body (a device that
    sends too much).  truncate: send only that many body bytes, then close.  delay:
    seconds to wait before answering.  HEAD gets the Content-Length but no body; 204
    and 304 get neither (a test adds a Content-Length to `headers` when it wants one)."""

    def __init__(self, status=200, headers=(), body=b"", framing="cl", delay=0.0,
                 reason=None, extra=b"", chunk=4096, truncate=None):
        self.status = status
        self.headers = list(headers)
        self.body = body.encode() if isinstance(body, str) else body
        self.framing = framing
        self.delay = delay
        self.reason = reason
        self.extra = extra
        self.chunk = chunk
        self.truncate = truncate      # Content-Length framing: send only this many, close


def send_r(conn, req, r):
    if r.delay:
        time.sleep(r.delay)
    lines = ["HTTP/1.1 %d %s" % (r.status, r.reason or REASONS.get(r.status, "Whatever"))]
    lines += ["%s: %s" % kv for kv in r.headers]
    nobody = req.method == "HEAD" or r.status in (204, 304)
    if r.framing == "cl":
        if r.status not in (204, 304):
            lines.append("Content-Length: %d" % len(r.body))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if nobody:
            conn.send(head)
            return True
        if r.truncate is not None:
            conn.send(head + r.body[:r.truncate])
            time.sleep(0.1)
            conn.close()
            return False
        conn.send(head + r.body + r.extra)
        return not r.extra
    if r.framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if nobody:
            return True
        for i in range(0, len(r.body), r.chunk):
            part = r.body[i:i + r.chunk]
            conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
            time.sleep(0.002)
        conn.send(b"0\r\n\r\n")
        return True
    if r.framing == "close":
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") +
                  (b"" if nobody else r.body))
        time.sleep(0.05)
        conn.close()
        return False
    if r.framing == "raw":
        conn.send(r.body)
        return True
    raise ValueError(r.framing)


def origin(table, default=None):
    """Device handler: table maps the exact request target to an R, or to a function
    f(req, n) -> R (n: how many requests for this target the device has seen, this one
    included).  Unknown targets get `default` (a plain 404 without freshness)."""
    def handler(conn, req):
        with conn.dev.lock:
            n = sum(1 for q in conn.dev.requests if q.target == req.target)
        spec = table.get(req.target, default)
        if spec is None:
            spec = R(404, body=b"no such path")
        if callable(spec):
            spec = spec(req, n)
        return send_r(conn, req, spec)
    return handler


def nreq(dev, path, method=None):
    """Requests the device received for path (optionally only with method)."""
    with dev.lock:
        return sum(1 for q in dev.requests
                   if q.target == path and (method is None or q.method == method))


def last_req(dev, path):
    with dev.lock:
        got = [q for q in dev.requests if q.target == path]
    if not got:
        fail("device never received %s" % path, path, [q.target for q in dev.requests])
    return got[-1]


def start(ctx, handler, cache="", routes=None, extra="", pools=None, binary=None):
    """A device with handler behind one pool; routes default to everything cache=on."""
    dev = ctx.device(handler)
    lines = []
    if cache:
        lines.append("cache " + cache)
    if extra:
        lines.append(extra)
    conf = ctx.config(pools=(pools or []) + ["pool p", "device p %s" % dev.addr],
                      routes=routes or ["route pool=p cache=on"], extra="\n".join(lines))
    ctx.start(conf, binary=binary)
    return dev


# ==== the client side ====

def fetch(ctx, path, headers=(), method="GET", host=HOST, body=b"", c=None,
          version="HTTP/1.1", timeout=5.0):
    """One request (on c, else on a new connection); returns the Response."""
    c = c or ctx.client(timeout=timeout)
    c.send(req_bytes(method, path, version=version, host=host, headers=list(headers),
                     body=body))
    try:
        r = c.read_response(method=method, timeout=timeout)
    except Closed as e:
        fail("%s %s: connection closed without a (complete) response" % (method, path),
             "a response", short(e.got))
    except socket.timeout:
        fail("%s %s: no response within %.1f s" % (method, path, timeout), "a response",
             short(c.buf))
    r.client = c
    return r


def cs_entries(r):
    out = []
    for v in r.get_all("Cache-Status"):
        out += [e.strip() for e in v.split(",") if e.strip()]
    return out


def cstat(r, what="response"):
    """rproxy's Cache-Status entry as a dict (params without a value map to True).
    Fails unless there is exactly one rproxy entry and it is the last one."""
    entries = cs_entries(r)
    mine = [e for e in entries if e.split(";")[0].strip().lower() == "rproxy"]
    check(len(mine) == 1, "%s: exactly one 'rproxy' Cache-Status entry" % what,
          "1 entry", r.get_all("Cache-Status"))
    check(entries[-1] == mine[0], "%s: rproxy's Cache-Status entry comes last" % what,
          "..., rproxy; ...", r.get_all("Cache-Status"))
    d = {}
    for p in mine[0].split(";")[1:]:
        k, sep, v = p.strip().partition("=")
        d[k.strip().lower()] = v.strip() if sep else True
    return d


def age_of(r, what="response"):
    ages = r.get_all("Age")
    check(len(ages) == 1 and ages[0].isdigit(), "%s: exactly one Age: N" % what,
          "Age: <digits>", ages)
    return int(ages[0])


def expect_hit(r, body, what, ttl=None, age=None, status=200):
    """A hit: status, byte-exact body, one Age, Cache-Status 'rproxy; hit; ttl=N'."""
    eq(r.status, status, what + ": status")
    d = cstat(r, what)
    check(d.get("hit") is True and "fwd" not in d, what + ": Cache-Status says hit",
          "rproxy; hit; ttl=N", r.get_all("Cache-Status"))
    eq(r.body, body, what + ": body (byte-exact)")
    a = age_of(r, what)
    if age is not None:
        check(age[0] <= a <= age[1], what + ": Age", "%d..%d" % age, a)
    check(re.fullmatch(r"-?\d+", str(d.get("ttl", ""))), what + ": ttl=N in Cache-Status",
          "ttl=<int>", r.get_all("Cache-Status"))
    if ttl is not None:
        t = int(d["ttl"])
        check(ttl[0] <= t <= ttl[1], what + ": ttl in Cache-Status", "%d..%d" % ttl, t)
    return d


def expect_fwd(r, what, fwd="miss", fwd_status=None, stored=None):
    """A forwarded response: Cache-Status 'rproxy; fwd=...; fwd-status=N[; stored]'."""
    d = cstat(r, what)
    check("hit" not in d, what + ": not a hit", "fwd=%s" % fwd, r.get_all("Cache-Status"))
    eq(d.get("fwd"), fwd, what + ": Cache-Status fwd=")
    eq(d.get("fwd-status"), str(fwd_status if fwd_status is not None else r.status),
       what + ": Cache-Status fwd-status=")
    if stored is not None:
        eq("stored" in d, stored, what + ": 'stored' in Cache-Status (%s)"
           % r.get_all("Cache-Status"))
    return d


def no_more_bytes(c, wait=0.15):
    """True when nothing but (maybe) EOF follows on client c within wait seconds."""
    if c.buf:
        return False
    if c.eof:
        return True
    try:
        c.sock.settimeout(wait)
        d = c.sock.recv(1, socket.MSG_PEEK)
    except socket.timeout:
        return True
    except OSError:
        return True
    return d == b""


def run_cases(items, fn):
    """fn(*item) for each; every failing case is reported, not just the first."""
    fails = []
    for it in items:
        try:
            fn(*it)
        except TestFailure as e:
            fails.append("%s: %s; expected %s; got %s"
                         % (it[0], e, short(getattr(e, "expected", None), 200),
                            short(getattr(e, "got", None), 200)))
    eq(fails, [], "%d of %d cases failed" % (len(fails), len(items)))


def status_json(ctx):
    r = fetch(ctx, "/status")
    eq(r.status, 200, "status page")
    try:
        return json.loads(r.body)
    except ValueError as e:
        fail("status JSON does not parse (%s)" % e, "JSON", short(r.body, 800))


CC100 = ("Cache-Control", "max-age=100")


def body_for(path, n=0, size=64):
    """A distinct body per path (and per device answer n)."""
    seed = ("%s#%d|" % (path, n)).encode()
    return (seed * (size // len(seed) + 1))[:size]


# =====================================================================
# 1. Miss, hit, keys
# =====================================================================

@test("cache: miss stores, hit has zero device traffic, byte-exact body, one Age/Date/Via, "
      "Cache-Status miss/stored then hit; ttl")
def t_cache_basic(ctx):
    body = pattern(5000)
    dev = start(ctx, origin({"/a": R(200, [CC100, ("X-Custom", "kept"),
                                           ("Content-Type", "application/octet-stream")],
                                     body)}))
    r1 = fetch(ctx, "/a")
    eq(r1.status, 200, "miss status")
    eq(r1.body, body, "miss body")
    eq(len(r1.get_all("Date")), 1, "a Date is added when the device sent none")
    expect_fwd(r1, "miss", "miss", 200, stored=True)
    eq(nreq(dev, "/a"), 1, "device requests after the miss")
    c = ctx.client()
    for i in range(3):
        r = fetch(ctx, "/a", c=c)
        expect_hit(r, body, "hit %d" % i, ttl=(99, 100), age=(0, 1))
        eq(r.get_all("X-Custom"), ["kept"], "hit %d: device's field kept once" % i)
        eq(r.get_all("Content-Type"), ["application/octet-stream"], "hit %d: Content-Type" % i)
        eq(r.get_all("Content-Length"), [str(len(body))], "hit %d: Content-Length" % i)
        eq(len(r.get_all("Date")), 1, "hit %d: exactly one Date" % i)
        eq(len([v for v in r.get_all("Via") if "rproxy" in v]), 1,
           "hit %d: Via names rproxy once (%r)" % (i, r.get_all("Via")))
        check(not r.chunked, "hit %d framed by Content-Length" % i, "Content-Length",
              "chunked")
    eq(nreq(dev, "/a"), 1, "device requests after 3 hits (a hit is zero device traffic)")
    check(c.still_open(0.2), "keep-alive connection open after hits", "open", "closed")


@test("cache: key is lower-cased Host + exact target (query matters, other host misses)")
def t_cache_key(ctx):
    def h(req, n):
        return R(200, [CC100], body_for(req.get("Host") + req.target, n))
    dev = start(ctx, origin({}, default=h))
    r = fetch(ctx, "/k?x=1")
    b = r.body
    expect_fwd(r, "first /k?x=1", stored=True)
    expect_hit(fetch(ctx, "/k?x=1", host="TEST.Example"), b, "upper-case Host")
    r = fetch(ctx, "/k?x=2")
    expect_fwd(r, "/k?x=2 (other query)", stored=True)
    check(r.body != b, "other query gets its own body", "different", r.body)
    r = fetch(ctx, "/k?x=1", host="other.example")
    expect_fwd(r, "/k?x=1 with another Host", stored=True)
    r = fetch(ctx, "/K?x=1")
    expect_fwd(r, "/K?x=1 (target is case-sensitive)", stored=True)
    with dev.lock:
        eq(len(dev.requests), 4, "device requests: 4 distinct keys")


@test("cache: hits pipelined, to an HTTP/1.0 client and through curl (250 kB, sha256)")
def t_cache_hit_framing(ctx):
    big = pattern(250000)
    small = b"small body\n"
    dev = start(ctx, origin({"/big": R(200, [CC100], big), "/s": R(200, [CC100], small)}))
    eq(fetch(ctx, "/s").body, small, "store /s")
    eq(fetch(ctx, "/big").body, big, "store /big")
    c = ctx.client()
    c.send(req_bytes("GET", "/s", host=HOST) + req_bytes("GET", "/big", host=HOST) +
           req_bytes("HEAD", "/s", host=HOST) + req_bytes("GET", "/s", host=HOST))
    for i, (m, want) in enumerate((("GET", small), ("GET", big), ("HEAD", b""),
                                   ("GET", small))):
        r = c.read_response(method=m)
        expect_hit(r, want, "pipelined %d (%s)" % (i, m))
    eq(c.buf, b"", "no stray bytes after pipelined hits")
    r = fetch(ctx, "/s", version="HTTP/1.0")
    expect_hit(r, small, "HTTP/1.0 hit")
    eq(r.version, "HTTP/1.1", "response version")
    check("close" in r.conn_tokens(), "HTTP/1.0 hit: Connection: close", "close",
          r.get_all("Connection"))
    check(r.client.closed_within(3), "HTTP/1.0 hit: connection closed", "EOF", "open")
    r = fetch(ctx, "/s", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
    expect_hit(r, small, "HTTP/1.0 keep-alive hit")
    check("keep-alive" in r.conn_tokens(), "Connection: keep-alive", "keep-alive",
          r.get_all("Connection"))
    out = ctx.path("o")
    rc, _, err = ctx.curl("-o", out, "-H", "Host: " + HOST, ctx.url("/big"), "-o",
                          ctx.path("o2"), ctx.url("/big"))
    eq(rc, 0, "curl exit code (%s)" % err.strip())
    for f in (out, ctx.path("o2")):
        with open(f, "rb") as fh:
            eq(hashlib.sha256(fh.read()).hexdigest(), hashlib.sha256(big).hexdigest(),
               "curl body sha256")
    eq((nreq(dev, "/s"), nreq(dev, "/big")), (1, 1), "device requests (all hits)")


@test("cache: hop-by-hop fields of the device's response (Connection, Keep-Alive, fields "
      "named by Connection) are not stored and not served on hits")
def t_cache_hop(ctx):
    raw = (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n"
           b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
           b"Cache-Control: max-age=100\r\nX-End: kept\r\nContent-Length: 3\r\n\r\nhop")
    dev = start(ctx, origin({"/hop": R(framing="raw", body=raw)}))
    for i in range(2):
        r = fetch(ctx, "/hop")
        eq(r.body, b"hop", "body %d" % i)
        for h in ("X-Hop", "Keep-Alive", "Proxy-Connection"):
            eq(r.get_all(h), [], "response %d must not carry %s" % (i, h))
        check(set(r.conn_tokens()) <= {"keep-alive", "close"}, "Connection", "no x-hop",
              r.get_all("Connection"))
        eq(r.get_all("X-End"), ["kept"], "end-to-end field kept")
    check("hit" in cstat(r), "second is a hit", "hit", r.get_all("Cache-Status"))
    eq(nreq(dev, "/hop"), 1, "device requests")


@test("cache: absolute-form target -- the entry is keyed by the host the device was asked "
      "for, never by a different Host header (no cache poisoning)")
def t_cache_absolute_form(ctx):
    def h(req, n):
        return R(200, [CC100], "for host %s #%d" % (req.get("Host"), n))
    dev = start(ctx, origin({"/x": h}))
    r = fetch(ctx, "http://a.example/x", host="b.example")
    eq(last_req(dev, "/x").get("Host"), "a.example", "device asked for a.example")
    eq(r.body, b"for host a.example #1", "body")
    r = fetch(ctx, "/x", host="b.example")
    eq(r.body, b"for host b.example #2", "Host b.example must not get a.example's response")
    r = fetch(ctx, "/x", host="a.example")
    expect_hit(r, b"for host a.example #1", "origin-form for a.example hits the entry "
               "stored by the absolute-form request")
    r = fetch(ctx, "http://b.example/x", host="a.example")
    expect_hit(r, b"for host b.example #2", "absolute-form for b.example")
    eq(nreq(dev, "/x"), 2, "device requests")


# =====================================================================
# 2. Storability (each MUST NOT of the spec) -- plus controls that are stored
# =====================================================================

def _two(ctx, dev, path, req_headers=(), req2_headers=None, method="GET"):
    r1 = fetch(ctx, path, headers=req_headers, method=method)
    r2 = fetch(ctx, path, headers=req_headers if req2_headers is None else req2_headers,
               method=method)
    return r1, r2, nreq(dev, path)


STORE_CASES = [
    # (label, path, response, request headers, second request headers, stored?)
    ("control: max-age=100", "/ok", R(200, [CC100], "ok"), [], None, True),
    ("control: chunked under max_object", "/okchunk",
     R(200, [CC100], pattern(9000), framing="chunked", chunk=3000), [], None, True),
    ("control: Content-Length == max_object", "/okmax", R(200, [CC100], pattern(10000)),
     [], None, True),
    ("control: 404 with max-age", "/ok404", R(404, [CC100], "gone"), [], None, True),
    ("control: 500 with explicit max-age", "/ok500", R(500, [CC100], "err"), [], None,
     True),
    ("control: 204 with max-age", "/ok204", R(204, [CC100]), [], None, True),
    ("control: Authorization + public", "/authpub",
     R(200, [("Cache-Control", "public, max-age=100")], "a"),
     [("Authorization", "Basic dTpw")], None, True),
    ("control: Authorization + s-maxage", "/authsmax",
     R(200, [("Cache-Control", "s-maxage=100")], "a"),
     [("Authorization", "Basic dTpw")], None, True),
    ("control: Authorization + must-revalidate", "/authmr",
     R(200, [("Cache-Control", "must-revalidate, max-age=100")], "a"),
     [("Authorization", "Basic dTpw")], None, True),
    ("control: Vary with 8 names", "/vary8",
     R(200, [CC100, ("Vary", ", ".join("X-V%d" % i for i in range(8)))], "v"), [], None,
     True),
    ("control: directives are case-insensitive (MAX-AGE=100)", "/okcase",
     R(200, [("Cache-Control", "Public, MAX-AGE=100")], "c"), [], None, True),
    ("NO-STORE in upper case", "/nsupper", R(200, [("Cache-Control", "NO-STORE, max-age=100")],
                                            "x"), [], None, False),
    ("Private in mixed case", "/privcase",
     R(200, [("Cache-Control", "max-age=100"), ("Cache-Control", "Private")], "x"), [], None,
     False),
    ("request Cache-Control: no-store", "/reqns", R(200, [CC100], "x"),
     [("Cache-Control", "no-store")], [], False),
    ("response no-store", "/respns", R(200, [("Cache-Control", "no-store, max-age=100")],
                                       "x"), [], None, False),
    ("response private", "/priv", R(200, [("Cache-Control", "private, max-age=100")], "x"),
     [], None, False),
    ("response private=\"f\" (qualified)", "/privf",
     R(200, [("Cache-Control", "private=\"X-A\", max-age=100")], "x"), [], None, False),
    ("Set-Cookie", "/cookie", R(200, [CC100, ("Set-Cookie", "s=1")], "x"), [], None, False),
    ("Authorization without public/s-maxage/must-revalidate", "/auth",
     R(200, [CC100], "x"), [("Authorization", "Basic dTpw")], None, False),
    ("Vary: *", "/varystar", R(200, [CC100, ("Vary", "*")], "x"), [], None, False),
    ("Vary: Accept, * (star in a list)", "/varystar2",
     R(200, [CC100, ("Vary", "Accept, *")], "x"), [], None, False),
    ("Vary with 9 names", "/vary9",
     R(200, [CC100, ("Vary", ", ".join("X-V%d" % i for i in range(9)))], "x"), [], None,
     False),
    ("206 Partial Content with max-age", "/206",
     R(206, [CC100, ("Content-Range", "bytes 0-1/10")], "xx"), [], None, False),
    ("close-delimited body", "/close", R(200, [CC100], "close body", framing="close"), [],
     None, False),
    ("Content-Length over max_object", "/big", R(200, [CC100], pattern(10001)), [], None,
     False),
    ("no freshness and no validator (heuristic=off)", "/plain", R(200, [], "x"), [], None,
     False),
    ("302 without explicit freshness", "/302",
     R(302, [("Location", "/elsewhere"), ("Last-Modified", httpdate(time.time() - 9999))],
       "x"), [], None, False),
    ("500 without explicit freshness", "/500", R(500, [("ETag", '"e"')], "x"), [], None,
     False),
]


@test("cache: storability -- no-store (req/resp), private, Set-Cookie, Authorization, "
      "Vary */9 names, 206, close-delimited, > max_object, no freshness; controls stored")
def t_cache_storable(ctx):
    table = {c[1]: c[2] for c in STORE_CASES}
    dev = start(ctx, origin(table), cache="max_object=10000")

    def case(label, path, resp, h1, h2, stored):
        r1, r2, n = _two(ctx, dev, path, h1, h2)
        eq(r1.status, resp.status, "first status")
        eq(r1.body, resp.body if resp.status != 204 else b"", "first body")
        expect_fwd(r1, "first", "miss", resp.status, stored=stored if
                   resp.framing != "chunked" else None)
        eq(r2.body, resp.body if resp.status != 204 else b"", "second body")
        if stored:
            expect_hit(r2, r1.body, "second (stored)", status=resp.status)
            eq(n, 1, "device requests (stored: the second is a hit)")
            if resp.framing == "chunked":
                check(not r2.chunked and r2.get_all("Transfer-Encoding") == [],
                      "hit of a chunked response has no Transfer-Encoding", "none",
                      r2.get_all("Transfer-Encoding"))
                eq(r2.get_all("Content-Length"), [str(len(resp.body))],
                   "hit of a chunked response framed by Content-Length")
            if resp.status == 204:
                eq(r2.get_all("Content-Length"), [], "no Content-Length on a 204 hit "
                   "(RFC 9110 8.6)")
                check(no_more_bytes(r2.client), "no body after a 204 hit", "none",
                      short(r2.client.buf))
        else:
            check("hit" not in cstat(r2, "second"), "second is not a hit", "fwd=...",
                  r2.get_all("Cache-Status"))
            eq(n, 2, "device requests (not stored: both reach the device)")
    run_cases(STORE_CASES, case)


@test("cache: chunked body passing max_object is dropped cleanly, the client still gets "
      "every byte; the next request goes to the device")
def t_cache_chunked_too_big(ctx):
    body = pattern(30000)
    dev = start(ctx, origin({"/ch": R(200, [CC100], body, framing="chunked", chunk=4000),
                             "/after": R(200, [CC100], pattern(9000), framing="chunked")}),
                cache="max_object=10000", extra=STATUS)
    c = ctx.client()
    for i in range(2):
        r = fetch(ctx, "/ch", c=c)
        eq(r.status, 200, "status %d" % i)
        check(r.chunked, "response %d relayed chunked" % i, "chunked", r.headers)
        eq(len(r.body), len(body), "body length %d" % i)
        eq(r.body, body, "body %d byte-exact" % i)
        check("hit" not in cstat(r, "response %d" % i), "response %d not a hit" % i,
              "fwd=miss", r.get_all("Cache-Status"))
    eq(nreq(dev, "/ch"), 2, "device requests (not stored)")
    eq(c.buf, b"", "no stray bytes")
    # nothing of the dropped fill is left behind: a storable object still stores
    fetch(ctx, "/after", c=c)
    expect_hit(fetch(ctx, "/after", c=c), pattern(9000), "chunked object under max_object")
    k = status_json(ctx).get("cache") or {}
    check(k.get("store_failures", 0) >= 2, "store_failures counts the dropped fills", ">= 2",
          k)
    eq((k.get("entries"), k.get("stores")), (1, 1), "entries, stores")


@test("cache: POST, PUT and GET with a body on a cache route are forwarded "
      "(fwd=method) and never stored")
def t_cache_method(ctx):
    dev = start(ctx, origin({}, default=lambda req, n: R(200, [CC100], body_for(req.method,
                                                                                 n))))
    for m in ("POST", "PUT"):
        for i in range(2):
            r = fetch(ctx, "/m", method=m, body=b"payload")
            expect_fwd(r, "%s %d" % (m, i), "method", 200, stored=False)
    r = fetch(ctx, "/gb", body=b"a body on a GET")
    expect_fwd(r, "GET with a body", "method", 200, stored=False)
    r = fetch(ctx, "/gb")
    expect_fwd(r, "plain GET after a GET with a body", "miss", 200, stored=True)
    eq(nreq(dev, "/m"), 4, "device requests for POST/PUT")
    eq(nreq(dev, "/gb"), 2, "device requests for /gb (the GET with a body was not stored)")


# =====================================================================
# 3. Freshness and Age
# =====================================================================

def _fresh_case(ctx, dev, label, path, hit, ttl=None, age=None, fwd="stale"):
    r1 = fetch(ctx, path)
    eq(r1.status, 200, "first status")
    r2 = fetch(ctx, path)
    if hit:
        expect_hit(r2, r1.body, "second", ttl=ttl, age=age)
        eq(nreq(dev, path), 1, "device requests (fresh: second is a hit)")
    else:
        check("hit" not in cstat(r2, "second"), "second is not a hit (stale)", "fwd=...",
              r2.get_all("Cache-Status"))
        if fwd:
            expect_fwd(r2, "second", fwd, 200)
        eq(nreq(dev, path), 2, "device requests (stale: second reaches the device)")


def fresh_table():
    # Ages derived from a Date may read one second low: rproxy's clock is time(2), the
    # coarse clock, which can still show the previous second when the device's (precise)
    # clock has already turned; hence the +-1 ranges below.
    def dated(headers, date_off=0, fmt="imf"):
        def f(req, n):
            now = time.time()
            hs = [(k, v(now) if callable(v) else v) for k, v in headers]
            return R(200, [("Date", httpdate(now + date_off, fmt))] + hs,
                     body_for(req.target, n))
        return f
    return [
        # label, path, handler, hit?, ttl range, age range
        ("s-maxage=100 beats max-age=0", "/smax",
         dated([("Cache-Control", "max-age=0, s-maxage=100")]), True, (99, 100), None),
        ("max-age=100 beats an Expires in the past", "/maxexp",
         dated([CC100, ("Expires", lambda t: httpdate(t - 3600))]), True, (99, 100), None),
        ("max-age=0 beats an Expires in the future", "/max0exp",
         dated([("Cache-Control", "max-age=0"),
                ("Expires", lambda t: httpdate(t + 3600))]), False, None, None),
        ("s-maxage=0 beats max-age=100", "/smax0",
         dated([("Cache-Control", "max-age=100, s-maxage=0")]), False, None, None),
        ("Expires - Date = 50", "/exp50", dated([("Expires", lambda t: httpdate(t + 50))]),
         True, (49, 50), None),
        ("Expires == Date", "/expeq", dated([("Expires", lambda t: httpdate(t))]), False,
         None, None),
        ("Expires before Date", "/expold", dated([("Expires", lambda t: httpdate(t - 10))]),
         False, None, None),
        ("device Age: 100 with max-age=60 is stale at once", "/age100",
         dated([("Cache-Control", "max-age=60"), ("Age", "100")]), False, None, None),
        ("device Age: 10 with max-age=60", "/age10",
         dated([("Cache-Control", "max-age=60"), ("Age", "10")]), True, (49, 50), (10, 11)),
        ("Date 30 s in the past (apparent age) with max-age=60", "/date30",
         dated([("Cache-Control", "max-age=60")], -30), True, (29, 31), (29, 31)),
        ("Date 100 s in the past with max-age=60 is stale", "/date100",
         dated([("Cache-Control", "max-age=60")], -100), False, None, None),
        ("device Age + Date: the larger (Age 5, Date 40 s ago) counts", "/agedate",
         dated([("Cache-Control", "max-age=60"), ("Age", "5")], -40), True, (19, 21),
         (39, 41)),
        ("Date 30 s in the past in RFC 850 form", "/d850",
         dated([("Cache-Control", "max-age=60")], -30, "rfc850"), True, (29, 31), (29, 31)),
        ("Date 30 s in the past in asctime form", "/dasc",
         dated([("Cache-Control", "max-age=60")], -30, "asctime"), True, (29, 31), (29, 31)),
        ("Expires - Date = 50, both in asctime form", "/expasc",
         dated([("Expires", lambda t: httpdate(t + 50, "asctime"))], 0, "asctime"), True,
         (49, 50), None),
        ("two Cache-Control lines (public + max-age=100)", "/twocc",
         dated([("Cache-Control", "public"), CC100]), True, (99, 100), None),
        ("quoted max-age=\"100\" (RFC 9111 5.2: accept both forms)", "/quoted",
         dated([("Cache-Control", 'max-age="100"')]), True, (99, 100), None),
        ("Last-Modified only, heuristic=off: stored but stale", "/lmonly",
         dated([("Last-Modified", lambda t: httpdate(t - 100000))]), False, None, None),
    ]


@test("cache: freshness order s-maxage > max-age > Expires-Date; Age arithmetic "
      "(device Age, apparent age from Date)")
def t_cache_freshness(ctx):
    cases = fresh_table()
    dev = start(ctx, origin({c[1]: c[2] for c in cases}))

    def case(label, path, _h, hit, ttl, age):
        _fresh_case(ctx, dev, label, path, hit, ttl, age)
    run_cases(cases, case)


@test("cache: heuristic=on gives 10% of Date - Last-Modified (capped at 1 day), only to "
      "heuristically cacheable statuses")
def t_cache_heuristic(ctx):
    def lm(ago, status=200):
        def f(req, n):
            now = time.time()
            return R(status, [("Date", httpdate(now)), ("Last-Modified", httpdate(now - ago))],
                     body_for(req.target, n))
        return f
    cases = [
        ("LM 1000 s old -> 100 s", "/h1000", lm(1000), True, (99, 100), None),
        ("LM 30 days old -> capped at 86400", "/h30d", lm(30 * 86400), True, (86399, 86400),
         None),
        ("404 with LM 1000 s old -> 100 s", "/h404", lm(1000, 404), True, (99, 100), None),
    ]
    dev = start(ctx, origin({c[1]: c[2] for c in cases} | {"/h302": lm(1000, 302)}),
                cache="heuristic=on")

    def case(label, path, _h, hit, ttl, age):
        r1 = fetch(ctx, path)
        r2 = fetch(ctx, path)
        expect_hit(r2, r1.body, "second", ttl=ttl, status=r1.status)
        eq(nreq(dev, path), 1, "device requests")
    run_cases(cases, case)
    fetch(ctx, "/h302")
    r = fetch(ctx, "/h302")
    eq(r.status, 302, "302 status")
    check("hit" not in cstat(r, "302"), "302 gets no heuristic freshness", "fwd=...",
          r.get_all("Cache-Status"))
    eq(nreq(dev, "/h302"), 2, "device requests for the 302")


@test("cache: route cache_ttl=2 -- a device sending only Last-Modified is a hit for 2 s "
      "(heuristic=on's 10% does not apply there), then revalidated with If-Modified-Since; "
      "max-age, no-store, private and a 500 keep their own rules; other routes unaffected")
def t_cache_ttl(ctx):
    lm_time = time.time() - 100000       # heuristic=on would give 10000 s

    def lm(status=200, extra=()):
        def f(req, n):
            if req.get("If-Modified-Since") == httpdate(lm_time):
                return R(304, [("Last-Modified", httpdate(lm_time))])
            return R(status, [("Last-Modified", httpdate(lm_time))] + list(extra),
                     body_for(req.target, n))
        return f
    table = {"/s/lm": lm(), "/s/maxage": lm(extra=[("Cache-Control", "max-age=100")]),
             "/s/nostore": lm(extra=[("Cache-Control", "no-store")]),
             "/s/private": lm(extra=[("Cache-Control", "private")]),
             "/s/err": lm(500), "/o/lm": lm()}
    dev = start(ctx, origin(table), cache="heuristic=on",
                routes=["route path=/s/ pool=p cache=on cache_ttl=2",
                        "route pool=p cache=on"])
    t0 = time.monotonic()
    r1 = fetch(ctx, "/s/lm")
    expect_fwd(r1, "first", "miss", 200, stored=True)
    r2 = fetch(ctx, "/s/lm")
    expect_hit(r2, r1.body, "second, at once", ttl=(1, 2))
    eq(nreq(dev, "/s/lm"), 1, "device requests within the ttl")
    time.sleep(max(0, 2.2 - (time.monotonic() - t0)))
    r3 = fetch(ctx, "/s/lm")
    eq(last_req(dev, "/s/lm").get("If-Modified-Since"), httpdate(lm_time),
       "after 2.2 s: revalidated with the stored Last-Modified")
    eq(nreq(dev, "/s/lm"), 2, "device requests after the ttl")
    eq(r3.body, r1.body, "the 304 refreshed the stored body")
    expect_hit(fetch(ctx, "/s/lm"), r1.body, "hit again after the 304", ttl=(1, 2))
    r = fetch(ctx, "/s/maxage")
    r = fetch(ctx, "/s/maxage")
    expect_hit(r, r.body, "max-age=100 keeps its own lifetime", ttl=(99, 100))
    for path, what in (("/s/nostore", "no-store"), ("/s/private", "private"),
                       ("/s/err", "a 500")):
        fetch(ctx, path)
        r = fetch(ctx, path)
        check("hit" not in cstat(r, what), what + ": never a hit under cache_ttl", "fwd=...",
              r.get_all("Cache-Status"))
        eq(nreq(dev, path), 2, what + ": both requests reached the device")
    fetch(ctx, "/o/lm")
    expect_hit(fetch(ctx, "/o/lm"), body_for("/o/lm", 1), "the other route keeps "
               "heuristic=on (10% of 100000 s)", ttl=(9990, 10000))


@test("cache: max-age=2 entry is a hit with Age growing (0, then 1 after 1 s), then "
      "stale after 2 s and fetched again")
def t_cache_expiry(ctx):
    def h(req, n):
        return R(200, [("Cache-Control", "max-age=2")], body_for("/t", n))
    dev = start(ctx, origin({"/t": h}))
    t0 = time.monotonic()
    b0 = fetch(ctx, "/t").body
    t1 = time.monotonic()              # the entry was stored between t0 and t1

    def timed_hit(what):
        s0 = time.monotonic()
        r = fetch(ctx, "/t")
        s1 = time.monotonic()
        lo, hi = int(s0 - t1), int(s1 - t0)     # whole seconds of residence
        expect_hit(r, b0, what, ttl=(2 - hi, 2 - lo), age=(lo, hi))
        return lo
    timed_hit("immediate hit")
    time.sleep(max(0, 1.05 - (time.monotonic() - t1)))
    eq(timed_hit("hit after 1.05 s") >= 1, True, "Age grew to at least 1")
    time.sleep(max(0, 2.05 - (time.monotonic() - t1)))
    r = fetch(ctx, "/t")
    expect_fwd(r, "after 2.05 s", "stale", 200, stored=True)
    eq(r.body, body_for("/t", 2), "new body from the device")
    eq(nreq(dev, "/t"), 2, "device requests")
    expect_hit(fetch(ctx, "/t"), body_for("/t", 2), "hit on the replacement", age=(0, 1))


# =====================================================================
# 4. HEAD
# =====================================================================

@test("cache: HEAD answered from a stored GET (no body, stored Content-Length); a HEAD "
      "miss is forwarded as HEAD and not stored")
def t_cache_head(ctx):
    body = pattern(3000)
    dev = start(ctx, origin({"/g": R(200, [CC100, ("ETag", '"g"')], body),
                             "/h": R(200, [CC100, ("ETag", '"h"')], body)}))
    eq(fetch(ctx, "/g").body, body, "GET /g")
    c = ctx.client()
    r = fetch(ctx, "/g", method="HEAD", c=c)
    expect_hit(r, b"", "HEAD from the stored GET")
    eq(r.get("Content-Length"), str(len(body)), "Content-Length of the stored GET")
    eq(r.get("ETag"), '"g"', "ETag on the HEAD hit")
    r = fetch(ctx, "/g", c=c)
    expect_hit(r, body, "GET after the HEAD hit on the same connection (no body was sent)")
    eq(nreq(dev, "/g"), 1, "device requests for /g")
    r = fetch(ctx, "/h", method="HEAD")
    eq(r.status, 200, "HEAD miss status")
    check("hit" not in cstat(r, "HEAD miss"), "HEAD miss not a hit", "fwd=miss",
          r.get_all("Cache-Status"))
    eq(last_req(dev, "/h").method, "HEAD", "device got HEAD for the HEAD miss")
    r = fetch(ctx, "/h")
    expect_fwd(r, "GET after a HEAD miss (HEAD was not stored)", "miss", 200, stored=True)
    eq(r.body, body, "GET /h body")
    eq(last_req(dev, "/h").method, "GET", "device got GET")
    expect_hit(fetch(ctx, "/h", method="HEAD"), b"", "HEAD after the GET was stored")
    eq(nreq(dev, "/h"), 2, "device requests for /h")


# =====================================================================
# 5. Vary
# =====================================================================

def vary_handler(req, n):
    ae = req.get_all("Accept-Encoding")
    return R(200, [CC100, ("Vary", "Accept-Encoding")],
             "variant:%s:%d" % (", ".join(ae) if ae else "<none>", n))


@test("cache: Vary: Accept-Encoding -- gzip / none / br are separate variants; a 5th "
      "variant evicts the least recently used one, not the oldest")
def t_cache_vary(ctx):
    dev = start(ctx, origin({"/v": vary_handler}))
    variants = ["gzip", None, "br", "deflate"]

    def ae(v):
        return [("Accept-Encoding", v)] if v else []
    bodies = {}
    for v in variants:
        r = fetch(ctx, "/v", headers=ae(v))
        expect_fwd(r, "first %s" % v, "miss", 200, stored=True)
        check(r.body.startswith(("variant:%s:" % (v or "<none>")).encode()), "variant body",
              v, r.body)
        bodies[v] = r.body
    eq(nreq(dev, "/v"), 4, "device requests for 4 variants")
    for v in variants:
        expect_hit(fetch(ctx, "/v", headers=ae(v)), bodies[v], "hit for %s" % v)
    eq(nreq(dev, "/v"), 4, "device requests after 4 hits")
    # gzip was stored first but is now used again: the LRU variant is "none"
    expect_hit(fetch(ctx, "/v", headers=ae("gzip")), bodies["gzip"], "touch gzip")
    r = fetch(ctx, "/v", headers=ae("identity"))
    expect_fwd(r, "5th variant (identity)", "miss", 200, stored=True)
    bodies["identity"] = r.body
    for v in ("gzip", "br", "deflate", "identity"):
        expect_hit(fetch(ctx, "/v", headers=ae(v)), bodies[v], "kept variant %s" % v)
    eq(nreq(dev, "/v"), 5, "device requests before asking for the evicted variant")
    r = fetch(ctx, "/v")
    expect_fwd(r, "no Accept-Encoding (the LRU variant, evicted)", "miss", 200)
    eq(nreq(dev, "/v"), 6, "device requests after the evicted variant")


@test("cache: Vary matching -- exact value bytes, header name case-insensitive, several "
      "field lines joined with ', ', absent matches only absent")
def t_cache_vary_match(ctx):
    def h(req, n):
        return R(200, [CC100, ("Vary", "accept-encoding, X-Mode")],
                 "b:%r:%r:%d" % (req.get_all("Accept-Encoding"), req.get_all("X-Mode"), n))
    dev = start(ctx, origin({"/vm": h}))
    b = fetch(ctx, "/vm", headers=[("Accept-Encoding", "gzip, br")]).body
    expect_hit(fetch(ctx, "/vm", headers=[("ACCEPT-ENCODING", "gzip, br")]), b,
               "same value, header name in upper case")
    expect_hit(fetch(ctx, "/vm", headers=[("Accept-Encoding", "gzip"),
                                          ("Accept-Encoding", "br")]), b,
               "two field lines joined with ', '")
    eq(nreq(dev, "/vm"), 1, "device requests so far")
    r = fetch(ctx, "/vm", headers=[("Accept-Encoding", "GZIP, br")])
    check("hit" not in cstat(r), "different value bytes (GZIP) miss", "fwd=miss",
          r.get_all("Cache-Status"))
    r = fetch(ctx, "/vm", headers=[("Accept-Encoding", "gzip, br"), ("X-Mode", "")])
    check("hit" not in cstat(r), "present-but-empty X-Mode is not 'absent'", "fwd=miss",
          r.get_all("Cache-Status"))
    r = fetch(ctx, "/vm", headers=[("Accept-Encoding", "gzip, br"), ("X-Mode", "a")])
    check("hit" not in cstat(r), "X-Mode: a does not match an absent X-Mode", "fwd=miss",
          r.get_all("Cache-Status"))
    eq(nreq(dev, "/vm"), 4, "device requests")


# =====================================================================
# 6. Revalidation
# =====================================================================

@test("cache: revalidation with ETag -- device sees If-None-Match: stored tag (client's "
      "replaced); 304 refreshes the stored head (new field and freshness on the next hit)")
def t_cache_reval_etag(ctx):
    body = pattern(4000)

    def h(req, n):
        if n == 1:
            return R(200, [("Cache-Control", "max-age=0"), ("ETag", '"v1"'), ("X-Ver", "1"),
                           ("X-Orig", "stays")], body)
        return R(304, [("Cache-Control", "max-age=100"), ("ETag", '"v1"'), ("X-Ver", "2"),
                       ("Date", date304)])
    date304 = httpdate(time.time() + 1)
    dev = start(ctx, origin({"/e": h}))
    r = fetch(ctx, "/e")
    expect_fwd(r, "miss", "miss", 200, stored=True)
    r = fetch(ctx, "/e", headers=[("If-None-Match", '"client-tag"'),
                                  ("If-Modified-Since", httpdate(time.time() - 50))])
    eq(nreq(dev, "/e"), 2, "the stale entry was revalidated with the device")
    q = last_req(dev, "/e")
    eq(q.method, "GET", "revalidation method")
    eq(q.get_all("If-None-Match"), ['"v1"'], "If-None-Match at the device (stored ETag "
       "only; the client's replaced)")
    eq(q.get_all("If-Modified-Since"), [], "no If-Modified-Since (no Last-Modified stored; "
       "the client's removed)")
    eq(r.status, 200, "client gets the full stored response after the 304")
    eq(r.body, body, "stored body")
    expect_fwd(r, "revalidated", "stale", 304)
    eq(r.get_all("X-Ver"), ["2"], "X-Ver updated from the 304")
    eq(r.get_all("X-Orig"), ["stays"], "field the 304 did not carry is kept")
    age_of(r, "revalidated")
    r = fetch(ctx, "/e")
    expect_hit(r, body, "hit after the 304", ttl=(99, 100))
    eq(r.get_all("X-Ver"), ["2"], "X-Ver on the next hit")
    eq(r.get_all("Cache-Control"), ["max-age=100"], "Cache-Control replaced by the 304's")
    eq(r.get_all("Date"), [date304], "Date replaced by the 304's (one Date)")
    eq(r.get_all("Content-Length"), [str(len(body))], "Content-Length still the body's")
    eq(nreq(dev, "/e"), 2, "device requests")


@test("cache: revalidation with Last-Modified -- device sees If-Modified-Since: stored "
      "value; a 200 replaces the entry (fwd=stale; fwd-status=200; stored)")
def t_cache_reval_lm(ctx):
    lm1 = httpdate(time.time() - 5000)

    def h(req, n):
        if n == 1:
            return R(200, [("Cache-Control", "no-cache, max-age=100"), ("Last-Modified", lm1)],
                     "version one")
        return R(200, [CC100, ("Last-Modified", httpdate(time.time() - 10))], "version two!")
    dev = start(ctx, origin({"/l": h}))
    eq(fetch(ctx, "/l").body, b"version one", "first body")
    r = fetch(ctx, "/l", headers=[("If-Modified-Since", httpdate(time.time() - 60000))])
    q = last_req(dev, "/l")
    eq(q.get_all("If-Modified-Since"), [lm1], "If-Modified-Since at the device (stored "
       "Last-Modified, client's replaced)")
    eq(q.get_all("If-None-Match"), [], "no If-None-Match (no ETag stored)")
    eq(r.status, 200, "status")
    eq(r.body, b"version two!", "new body")
    expect_fwd(r, "replaced", "stale", 200, stored=True)
    expect_hit(fetch(ctx, "/l"), b"version two!", "hit on the replacement", ttl=(99, 100))
    eq(nreq(dev, "/l"), 2, "device requests")


@test("cache: revalidation sends both validators; a client's matching If-None-Match on a "
      "stale entry gets 304 after the device's 304")
def t_cache_reval_both(ctx):
    lm = httpdate(time.time() - 5000)

    def h(req, n):
        if n == 1:
            return R(200, [("Cache-Control", "max-age=0"), ("ETag", 'W/"w1"'),
                           ("Last-Modified", lm)], "weak body")
        return R(304, [("ETag", 'W/"w1"')])
    dev = start(ctx, origin({"/b": h}))
    fetch(ctx, "/b")
    c = ctx.client()
    r = fetch(ctx, "/b", headers=[("If-None-Match", 'W/"w1"')], c=c)
    q = last_req(dev, "/b")
    eq(q.get_all("If-None-Match"), ['W/"w1"'], "If-None-Match at the device")
    eq(q.get_all("If-Modified-Since"), [lm], "If-Modified-Since at the device")
    eq(r.status, 304, "client's matching conditional answered 304")
    eq(r.get("ETag"), 'W/"w1"', "ETag on the 304")
    cstat(r, "304")
    eq(c.buf, b"", "no body after the 304")
    r = fetch(ctx, "/b", c=c)
    eq(r.status, 200, "unconditional request on the same connection")
    eq(r.body, b"weak body", "stored body")
    eq(nreq(dev, "/b"), 3, "device requests (max-age=0: every use revalidates)")


@test("cache: entry with a validator but no freshness (ETag only) is stored and "
      "revalidated on every use")
def t_cache_validator_only(ctx):
    def h(req, n):
        if n == 1:
            return R(200, [("ETag", '"only"')], "etag only")
        return R(304, [("ETag", '"only"')])
    dev = start(ctx, origin({"/vo": h}))
    r = fetch(ctx, "/vo")
    expect_fwd(r, "miss", "miss", 200, stored=True)
    for i in range(2):
        r = fetch(ctx, "/vo")
        eq(r.body, b"etag only", "body %d" % i)
        expect_fwd(r, "use %d" % i, "stale", 304)
        eq(last_req(dev, "/vo").get_all("If-None-Match"), ['"only"'], "If-None-Match")
    eq(nreq(dev, "/vo"), 3, "device requests")


@test("cache: a client's conditional GET on a miss is forwarded with its validators; the "
      "device's 304 goes back to it and is never stored (with or without Content-Length)")
def t_cache_cond_miss(ctx):
    def h(req, n):
        if req.get("If-None-Match"):
            hs = [CC100, ("ETag", '"x"')]
            if req.target == "/cm0":
                hs.append(("Content-Length", "0"))
            elif req.target == "/cm42":
                hs.append(("Content-Length", "42"))
            return R(304, hs)
        return R(200, [CC100, ("ETag", '"x"')], "full body %s" % req.target)
    dev = start(ctx, origin({}, default=h))

    def case(label, path):
        c = ctx.client()
        r = fetch(ctx, path, headers=[("If-None-Match", '"x"')], c=c)
        eq(r.status, 304, "the device's 304 to the client")
        eq(last_req(dev, path).get_all("If-None-Match"), ['"x"'], "client's If-None-Match "
           "forwarded on a miss")
        r = fetch(ctx, path, c=c)
        eq(r.status, 200, "unconditional GET after the 304 (never a stored 304)")
        eq(r.body, ("full body %s" % path).encode(), "full body")
        eq(nreq(dev, path), 2, "device requests")
        expect_hit(fetch(ctx, path), r.body, "the 200 was stored")
    run_cases([("304 without Content-Length", "/cm"), ("304 with Content-Length: 0", "/cm0"),
               ("304 with Content-Length: 42", "/cm42")], case)


@test("cache: HEAD on a stale entry is passed on as HEAD; the entry is still used and "
      "revalidated by the next GET")
def t_cache_head_stale(ctx):
    def h(req, n):
        if n == 1:
            return R(200, [("Cache-Control", "max-age=0"), ("ETag", '"hs"')], "head stale")
        if req.get("If-None-Match") == '"hs"':
            return R(304, [("ETag", '"hs"'), CC100])
        return R(200, [("Cache-Control", "max-age=0"), ("ETag", '"hs"')], "head stale")
    dev = start(ctx, origin({"/hs": h}))
    fetch(ctx, "/hs")
    c = ctx.client()
    r = fetch(ctx, "/hs", method="HEAD", c=c)
    eq(r.status, 200, "HEAD status")
    eq(last_req(dev, "/hs").method, "HEAD", "device got HEAD")
    cstat(r, "HEAD on a stale entry")
    r = fetch(ctx, "/hs", c=c)
    eq(r.body, b"head stale", "GET after the HEAD on the same connection")
    eq(last_req(dev, "/hs").get_all("If-None-Match"), ['"hs"'], "GET revalidates")
    expect_hit(fetch(ctx, "/hs"), b"head stale", "hit after the 304 (max-age=100)")
    eq(nreq(dev, "/hs"), 3, "device requests")


# =====================================================================
# 7. Request directives
# =====================================================================

@test("cache: request no-cache and Pragma: no-cache revalidate (fwd=request); max-age=0 "
      "revalidates; no-store on a request may still be answered by a fresh entry")
def t_cache_req_nocache(ctx):
    def h(req, n):
        if n == 1:
            return R(200, [CC100, ("ETag", '"n1"')], "stored nc")
        return R(304, [("ETag", '"n1"'), CC100])
    dev = start(ctx, origin({"/nc": h}))
    fetch(ctx, "/nc")
    for k, (hdrs, fwd) in enumerate([
            ([("Cache-Control", "no-cache")], "request"),
            ([("Pragma", "no-cache")], "request"),
            ([("Cache-Control", "max-age=0")], None)]):
        r = fetch(ctx, "/nc", headers=hdrs)
        eq(nreq(dev, "/nc"), 2 + k, "%s reaches the device" % hdrs)
        eq(last_req(dev, "/nc").get_all("If-None-Match"), ['"n1"'],
           "%s: conditional request with the stored ETag" % hdrs)
        eq(r.status, 200, "%s: status" % hdrs)
        eq(r.body, b"stored nc", "%s: stored body" % hdrs)
        d = cstat(r, str(hdrs))
        check("hit" not in d, "%s: not a hit" % hdrs, "fwd=...", r.get_all("Cache-Status"))
        if fwd:
            expect_fwd(r, str(hdrs), fwd, 304)
        else:
            eq(d.get("fwd-status"), "304", "%s: fwd-status" % hdrs)
    r = fetch(ctx, "/nc", headers=[("Cache-Control", "no-store")])
    expect_hit(r, b"stored nc", "request no-store answered by the fresh entry")
    eq(nreq(dev, "/nc"), 4, "device requests")


@test("cache: ignore_client_nocache=on -- request no-cache / Pragma answered from the cache")
def t_cache_ignore_nocache(ctx):
    dev = start(ctx, origin({"/i": R(200, [CC100, ("ETag", '"i"')], "ignore")}),
                cache="ignore_client_nocache=on")
    fetch(ctx, "/i")
    expect_hit(fetch(ctx, "/i", headers=[("Cache-Control", "no-cache")]), b"ignore",
               "no-cache ignored")
    expect_hit(fetch(ctx, "/i", headers=[("Pragma", "no-cache")]), b"ignore",
               "Pragma ignored")
    eq(nreq(dev, "/i"), 1, "device requests")


@test("cache: request max-age=N, min-fresh=N, max-stale[=N] and only-if-cached")
def t_cache_req_directives(ctx):
    def aged(age, cc="max-age=60"):
        def f(req, n):
            return R(200, [("Cache-Control", cc), ("Age", str(age))], body_for(req.target, n))
        return f
    dev = start(ctx, origin({"/a10": aged(10, "max-age=100"), "/st": aged(100),
                             "/fr": R(200, [CC100], "fresh")}))
    b = fetch(ctx, "/a10").body                       # age 10, fresh for 90 more
    expect_hit(fetch(ctx, "/a10", headers=[("Cache-Control", "max-age=50")]), b,
               "request max-age=50 on an entry aged 10")
    r = fetch(ctx, "/a10", headers=[("Cache-Control", "max-age=5")])
    check("hit" not in cstat(r), "request max-age=5 on an entry aged 10 goes to the device",
          "fwd=...", r.get_all("Cache-Status"))
    eq(nreq(dev, "/a10"), 2, "device requests for /a10")
    b = r.body                                        # replaced: age 10 again
    expect_hit(fetch(ctx, "/a10", headers=[("Cache-Control", "min-fresh=50")]), b,
               "min-fresh=50 with ~90 s left")
    r = fetch(ctx, "/a10", headers=[("Cache-Control", "min-fresh=95")])
    check("hit" not in cstat(r), "min-fresh=95 with ~90 s left goes to the device",
          "fwd=...", r.get_all("Cache-Status"))
    eq(nreq(dev, "/a10"), 3, "device requests for /a10")
    # /st: max-age=60, Age: 100 -> stale by 40
    b = fetch(ctx, "/st").body
    expect_hit(fetch(ctx, "/st", headers=[("Cache-Control", "max-stale=100")]), b,
               "max-stale=100 on an entry stale by 40", ttl=(-41, -40), age=(100, 101))
    expect_hit(fetch(ctx, "/st", headers=[("Cache-Control", "max-stale")]), b,
               "max-stale (any) on an entry stale by 40", ttl=(-41, -40))
    eq(nreq(dev, "/st"), 1, "device requests for /st (served stale)")
    r = fetch(ctx, "/st", headers=[("Cache-Control", "max-stale=10")])
    check("hit" not in cstat(r), "max-stale=10 on an entry stale by 40 goes to the device",
          "fwd=...", r.get_all("Cache-Status"))
    eq(nreq(dev, "/st"), 2, "device requests for /st")
    # only-if-cached
    expect_hit(fetch(ctx, "/st", headers=[("Cache-Control", "only-if-cached, max-stale")]),
               r.body, "only-if-cached + max-stale on a stale entry")
    fetch(ctx, "/fr")
    expect_hit(fetch(ctx, "/fr", headers=[("Cache-Control", "only-if-cached")]), b"fresh",
               "only-if-cached on a fresh entry")
    with dev.lock:
        before = len(dev.requests)
        conns = dev.conns
    for path in ("/nothing", "/st"):
        r = fetch(ctx, path, headers=[("Cache-Control", "only-if-cached")])
        eq(r.status, 504, "only-if-cached with nothing usable (%s)" % path)
        cstat(r, "504 (%s)" % path)
    with dev.lock:
        eq((len(dev.requests), dev.conns), (before, conns),
           "device requests/connections after only-if-cached misses (zero traffic)")


@test("cache: must-revalidate, proxy-revalidate and s-maxage forbid serving stale "
      "(max-stale goes to the device)")
def t_cache_no_stale(ctx):
    table = {}
    for path, cc in (("/mr", "max-age=60, must-revalidate"),
                     ("/pr", "max-age=60, proxy-revalidate"),
                     ("/sm", "s-maxage=60"), ("/ctl", "max-age=60")):
        table[path] = (lambda cc_: lambda req, n: R(200, [("Cache-Control", cc_),
                                                          ("Age", "100")],
                                                    body_for(req.target, n)))(cc)
    dev = start(ctx, origin(table))

    def case(label, path):
        b = fetch(ctx, path).body
        r = fetch(ctx, path, headers=[("Cache-Control", "max-stale=1000")])
        if path == "/ctl":
            expect_hit(r, b, "control (no revalidate directive): served stale")
            eq(nreq(dev, path), 1, "device requests")
        else:
            check("hit" not in cstat(r), "stale entry not served", "fwd=stale",
                  r.get_all("Cache-Status"))
            eq(nreq(dev, path), 2, "device requests")
    run_cases([("must-revalidate", "/mr"), ("proxy-revalidate", "/pr"),
               ("s-maxage", "/sm"), ("control", "/ctl")], case)


# =====================================================================
# 8. stale-if-error
# =====================================================================

def sie_handler(cc, fail_status=503):
    def f(req, n):
        if n == 1:
            return R(200, [("Cache-Control", cc), ("Age", "100"), ("ETag", '"s"')],
                     "stale but useful")
        return R(fail_status, [], "device error %d" % fail_status)
    return f


@test("cache: stale-if-error -- device answers 503/500/502/504 -> stale entry served "
      "(hit, detail=stale-if-error); too stale, must-revalidate or 404 -> the device's answer")
def t_cache_sie(ctx):
    cases = [
        ("503, sie=100", "/s503", sie_handler("max-age=60, stale-if-error=100"), True, 503),
        ("500, sie=100", "/s500", sie_handler("max-age=60, stale-if-error=100", 500), True,
         500),
        ("502, sie=100", "/s502", sie_handler("max-age=60, stale-if-error=100", 502), True,
         502),
        ("504, sie=100", "/s504", sie_handler("max-age=60, stale-if-error=100", 504), True,
         504),
        ("stale by 40 > sie=10", "/s10", sie_handler("max-age=60, stale-if-error=10"), False,
         503),
        ("must-revalidate", "/smr",
         sie_handler("max-age=60, must-revalidate, stale-if-error=100"), False, 503),
        ("404 is not an error", "/s404", sie_handler("max-age=60, stale-if-error=100", 404),
         False, 404),
        ("no stale-if-error", "/snone", sie_handler("max-age=60"), False, 503),
    ]
    dev = start(ctx, origin({c[1]: c[2] for c in cases}))

    def case(label, path, _h, served, st):
        eq(fetch(ctx, path).body, b"stale but useful", "first body")
        r = fetch(ctx, path)
        eq(nreq(dev, path), 2, "revalidation reached the device")
        if served:
            eq(r.status, 200, "stale entry served")
            eq(r.body, b"stale but useful", "stale body")
            d = cstat(r)
            check(d.get("hit") is True and d.get("detail") == "stale-if-error",
                  "Cache-Status hit + detail=stale-if-error", "rproxy; hit; ...; "
                  "detail=stale-if-error", r.get_all("Cache-Status"))
            check(age_of(r) >= 100, "Age of the stale entry", ">= 100", age_of(r))
        else:
            eq(r.status, st, "device's answer passed on")
            eq(r.body, ("device error %d" % st).encode(), "device's body")
            expect_fwd(r, "error passed on", "stale", st)
    run_cases(cases, case)


@test("cache: request Cache-Control: stale-if-error=N serves a stale entry when the "
      "device answers 503")
def t_cache_sie_request(ctx):
    def h(req, n):
        if n == 1:
            return R(200, [("Cache-Control", "max-age=60"), ("Age", "100")], "req sie")
        return R(503, [], "busy")
    dev = start(ctx, origin({"/rq": h}))
    eq(fetch(ctx, "/rq").body, b"req sie", "store /rq")
    r = fetch(ctx, "/rq", headers=[("Cache-Control", "stale-if-error=100")])
    eq(nreq(dev, "/rq"), 2, "revalidation of /rq reached the device")
    eq((r.status, r.body), (200, b"req sie"), "request stale-if-error=100: stale entry "
       "served on the device's 503")
    d = cstat(r)
    check(d.get("hit") is True and d.get("detail") == "stale-if-error",
          "Cache-Status for request stale-if-error", "hit; detail=stale-if-error",
          r.get_all("Cache-Status"))
    r = fetch(ctx, "/rq", headers=[("Cache-Control", "stale-if-error=10")])
    eq(r.status, 503, "request stale-if-error=10 on an entry stale by 40: the 503")


@test("cache: stale-if-error when the device is down (connection refused) serves the "
      "stale entry")
def t_cache_sie_down(ctx):
    dev = start(ctx, origin({"/down": R(200, [("Cache-Control",
                                              "max-age=60, stale-if-error=100"),
                                             ("Age", "100")], "down but served")}))
    eq(fetch(ctx, "/down").body, b"down but served", "store /down")
    dev.stop()
    r = fetch(ctx, "/down", timeout=8)
    eq(r.status, 200, "device down: stale entry served")
    eq(r.body, b"down but served", "stale body")
    d = cstat(r)
    check(d.get("hit") is True and d.get("detail") == "stale-if-error",
          "Cache-Status", "hit; detail=stale-if-error", r.get_all("Cache-Status"))
    check(age_of(r) >= 100, "Age of the stale entry", ">= 100", age_of(r))


@test("cache: stale-if-error when the device times out (rproxy's own 504) serves the stale "
      "entry", serial=True)
def t_cache_sie_timeout(ctx):
    def h(req, n):
        if n == 1:
            return R(200, [("Cache-Control", "max-age=60, stale-if-error=100"), ("Age", "100")],
                     "slow device")
        return R(200, [CC100], "too late", delay=1.5)
    dev = ctx.device(origin({"/to": h}))
    ctx.start(ctx.config(pools=["pool p", "device p %s" % dev.addr],
                         routes=["route pool=p cache=on"], timeouts={"device": 500}))
    eq(fetch(ctx, "/to").body, b"slow device", "store /to")
    t0 = time.monotonic()
    r = fetch(ctx, "/to", timeout=6)
    eq((r.status, r.body), (200, b"slow device"), "stale entry served after the device "
       "timeout")
    check(time.monotonic() - t0 < 1.3, "served at the timeout, not after the slow answer",
          "< 1.3 s", time.monotonic() - t0)
    d = cstat(r)
    check(d.get("hit") is True and d.get("detail") == "stale-if-error", "Cache-Status",
          "hit; detail=stale-if-error", r.get_all("Cache-Status"))


# =====================================================================
# 9. Client conditionals answered from the cache
# =====================================================================

@test("cache: client If-None-Match (exact, W/, *, list) and If-Modified-Since answered 304 "
      "from a fresh entry; no body; the right fields; no device traffic")
def t_cache_client_cond(ctx):
    lm_t = time.time() - 5000
    lm = httpdate(lm_t)
    exp = httpdate(time.time() + 3600)
    dev = start(ctx, origin({
        "/c": R(200, [CC100, ("ETag", '"v1"'), ("Last-Modified", lm), ("Expires", exp),
                      ("Content-Location", "/c.txt"), ("Content-Type", "text/plain"),
                      ("X-Other", "o")], "conditional body"),
        "/w": R(200, [CC100, ("ETag", 'W/"weak"')], "weak body")}))
    eq(fetch(ctx, "/c").body, b"conditional body", "store /c")
    eq(fetch(ctx, "/w").body, b"weak body", "store /w")
    c = ctx.client()
    cases304 = [
        ("INM exact", "/c", [("If-None-Match", '"v1"')]),
        ("INM W/ vs strong stored", "/c", [("If-None-Match", 'W/"v1"')]),
        ("INM *", "/c", [("If-None-Match", "*")]),
        ("INM list", "/c", [("If-None-Match", '"a", "v1", "b"')]),
        ("INM strong vs weak stored", "/w", [("If-None-Match", '"weak"')]),
        ("IMS == Last-Modified", "/c", [("If-Modified-Since", lm)]),
        ("IMS after Last-Modified", "/c", [("If-Modified-Since", httpdate(lm_t + 100))]),
        ("IMS == Last-Modified in RFC 850 form", "/c",
         [("If-Modified-Since", httpdate(lm_t, "rfc850"))]),
        ("IMS == Last-Modified in asctime form", "/c",
         [("If-Modified-Since", httpdate(lm_t, "asctime"))]),
    ]
    cases200 = [
        ("INM other tag", "/c", [("If-None-Match", '"nope"')]),
        ("IMS before Last-Modified", "/c", [("If-Modified-Since", httpdate(lm_t - 100))]),
        ("INM non-matching wins over a matching IMS", "/c",
         [("If-None-Match", '"nope"'), ("If-Modified-Since", lm)]),
        ("IMS unparsable", "/c", [("If-Modified-Since", "yesterday")]),
        ("IMS before Last-Modified (asctime)", "/c",
         [("If-Modified-Since", httpdate(lm_t - 100, "asctime"))]),
    ]

    def case304(label, path, hdrs):
        r = fetch(ctx, path, headers=hdrs, c=c)
        eq(r.status, 304, "status")
        d = cstat(r)
        check(d.get("hit") is True, "Cache-Status hit", "hit", r.get_all("Cache-Status"))
        age_of(r)
        eq(c.buf, b"", "no body bytes after the 304")
        if path == "/c":
            eq([r.get_all(h) for h in ("ETag", "Cache-Control", "Last-Modified", "Expires",
                                       "Content-Location")],
               [['"v1"'], ["max-age=100"], [lm], [exp], ["/c.txt"]], "fields repeated on "
               "the 304")
            eq(len(r.get_all("Date")), 1, "one Date on the 304")
            eq(r.get_all("Content-Type"), [], "no Content-Type on the 304")

    def case200(label, path, hdrs):
        r = fetch(ctx, path, headers=hdrs, c=c)
        expect_hit(r, b"conditional body", label)
    run_cases([c3 + (case304,) for c3 in cases304] + [c2 + (case200,) for c2 in cases200],
              lambda label, path, hdrs, fn: fn(label, path, hdrs))
    r = fetch(ctx, "/c", method="HEAD", headers=[("If-None-Match", '"v1"')], c=c)
    eq(r.status, 304, "HEAD with a matching If-None-Match")
    eq((nreq(dev, "/c"), nreq(dev, "/w")), (1, 1), "device requests (everything from the "
       "cache)")


# =====================================================================
# 10. Invalidation
# =====================================================================

def inv_handler(req, n):
    if req.method in ("GET", "HEAD"):
        if req.target == "/vary":
            return vary_handler(req, n)
        return R(200, [CC100], body_for(req.target, n))
    spec = {
        "/act1": R(303, [("Location", "/a")], ""),
        "/act2": R(201, [("Location", "http://test.example/b")], ""),
        "/act3": R(201, [("Location", "http://other.example/c")], ""),
        "/act4": R(200, [("Content-Location", "/d")], ""),
        "/act5": R(201, [("Location", "http://TEST.EXAMPLE/c2")], ""),
        "/h404": R(404, [], "no"),
        "/h500": R(500, [], "no"),
        "/h403": R(403, [], "no"),
    }
    return spec.get(req.target, R(200 if req.method != "PUT" else 204, [], "done"
                                  if req.method != "PUT" else ""))


@test("cache: invalidation -- 2xx/3xx to POST/PUT/DELETE/PATCH removes the URI and "
      "same-host Location/Content-Location; 4xx/5xx, OPTIONS, other hosts do not")
def t_cache_invalidation(ctx):
    dev = start(ctx, origin({}, default=inv_handler))
    cases = [
        # label, stored path, (method, target, host), invalidated?
        ("POST 200 on the URI", "/p", ("POST", "/p", HOST), True),
        ("PUT 204 on the URI", "/u", ("PUT", "/u", HOST), True),
        ("DELETE 200 on the URI", "/del", ("DELETE", "/del", HOST), True),
        ("PATCH 200 on the URI", "/pa", ("PATCH", "/pa", HOST), True),
        ("POST 303 with Location: /a", "/a", ("POST", "/act1", HOST), True),
        ("POST 201 with Location on the same host (absolute)", "/b",
         ("POST", "/act2", HOST), True),
        ("POST 201 with Location on another host", "/c", ("POST", "/act3", HOST), False),
        ("POST 200 with Content-Location: /d", "/d", ("POST", "/act4", HOST), True),
        ("POST with absolute Location, host in other case", "/c2", ("POST", "/act5", HOST),
         True),
        ("POST 404 on the URI", "/h404", ("POST", "/h404", HOST), False),
        ("POST 500 on the URI", "/h500", ("POST", "/h500", HOST), False),
        ("DELETE 403 on the URI", "/h403", ("DELETE", "/h403", HOST), False),
        ("OPTIONS 200 on the URI", "/opt", ("OPTIONS", "/opt", HOST), False),
        ("POST 200 on the same path of another host", "/oh",
         ("POST", "/oh", "other.example"), False),
        ("POST 200 on the URI invalidates every Vary variant", "/vary",
         ("POST", "/vary", HOST), True),
    ]

    def case(label, path, op, invalidated):
        hs = [[("Accept-Encoding", "gzip")], []] if path == "/vary" else [[]]
        bodies = [fetch(ctx, path, headers=h).body for h in hs]
        for h, b in zip(hs, bodies):
            expect_hit(fetch(ctx, path, headers=h), b, "hit before %s" % (op,))
        before = nreq(dev, path, "GET")
        m, target, host = op
        r = fetch(ctx, target, method=m, host=host, body=b"x=1" if m != "OPTIONS" else b"")
        expect_fwd(r, "%s %s" % (m, target), "method")
        for h, b in zip(hs, bodies):
            r = fetch(ctx, path, headers=h)
            if invalidated:
                check("hit" not in cstat(r), "GET after the invalidation is not a hit",
                      "fwd=miss", r.get_all("Cache-Status"))
            else:
                expect_hit(r, b, "GET after a non-invalidating %s" % m)
        eq(nreq(dev, path, "GET"), before + (len(hs) if invalidated else 0),
           "GET requests at the device after %s %s" % (m, target))
    run_cases(cases, case)


# =====================================================================
# 11. Collapsing
# =====================================================================

def _concurrent(ctx, path, n=5, headers=()):
    cs = [ctx.client(timeout=8) for _ in range(n)]
    for c in cs:
        c.send(req_bytes("GET", path, host=HOST, headers=list(headers)))
    out = []
    for i, c in enumerate(cs):
        try:
            out.append(c.read_response(timeout=8))
        except (Closed, socket.timeout) as e:
            fail("concurrent client %d got no response" % i, "a response", repr(e))
    return out


@test("cache: collapsing -- 5 concurrent requests for one slow URL: the device sees 1, all "
      "5 clients get the body (4 marked collapsed hits)")
def t_cache_collapse(ctx):
    body = pattern(40000)
    dev = start(ctx, origin({"/slow": R(200, [CC100], body, delay=0.5)}), extra=STATUS)
    rs = _concurrent(ctx, "/slow")
    for i, r in enumerate(rs):
        eq(r.status, 200, "client %d status" % i)
        eq(r.body, body, "client %d body" % i)
    eq(nreq(dev, "/slow"), 1, "device requests (collapsed)")
    ds = [cstat(r, "client %d" % i) for i, r in enumerate(rs)]
    misses = [d for d in ds if d.get("fwd") == "miss"]
    eq(len(misses), 1, "one response is the miss (%r)" % [r.get_all("Cache-Status")
                                                         for r in rs])
    check("stored" in misses[0], "the miss was stored", "stored", misses[0])
    waiters = [d for d in ds if d.get("fwd") != "miss"]
    for d in waiters:
        check(d.get("hit") is True and d.get("collapsed") is True, "waiters are collapsed hits",
              "rproxy; hit; ttl=N; collapsed", d)
    for i, (r, d) in enumerate(zip(rs, ds)):
        if d.get("hit"):
            age_of(r, "collapsed hit, client %d" % i)
    k = status_json(ctx).get("cache") or {}
    eq([k.get(x) for x in ("collapsed", "stores", "hits")], [4, 1, 4],
       "status counters collapsed, stores, hits (%r)" % k)


@test("cache: collapsing -- the client filling the entry goes away mid-fill: the waiter "
      "still gets the whole body")
def t_cache_collapse_abort(ctx):
    body = pattern(300000)

    def h(req, n):
        return R(200, [CC100], body, framing="chunked", chunk=30000, delay=0.3)
    dev = start(ctx, origin({"/ab": h}), cache="max_object=400000")
    a = ctx.client()
    a.send(req_bytes("GET", "/ab", host=HOST))
    check(dev.wait_requests(1, 3), "first request reached the device", "1", 0)
    b = ctx.client(timeout=8)
    b.send(req_bytes("GET", "/ab", host=HOST))
    time.sleep(0.1)
    a.sock.close()                         # the filling client leaves before the response
    try:
        r = b.read_response(timeout=8)
    except (Closed, socket.timeout) as e:
        fail("waiting client got no response", "a response", repr(e))
    eq(r.status, 200, "waiter status")
    eq(len(r.body), len(body), "waiter body length")
    eq(r.body, body, "waiter body byte-exact")
    cstat(r, "waiter")
    r = fetch(ctx, "/ab")
    eq(r.body, body, "a later request")


@test("cache: collapsing when the fill is not storable, and past lock_timeout: the "
      "waiters go to the device themselves (fwd=miss; collapsed)")
def t_cache_collapse_fallback(ctx):
    dev = start(ctx, origin({"/ns": R(200, [("Cache-Control", "no-store")], "not stored",
                                      delay=0.3),
                             "/lt": R(200, [CC100], "slow fill", delay=1.0)}),
                cache="lock_timeout=200")
    rs = _concurrent(ctx, "/ns", 4)
    for i, r in enumerate(rs):
        eq((r.status, r.body), (200, b"not stored"), "/ns client %d" % i)
    eq(nreq(dev, "/ns"), 4, "device requests for /ns (not storable: everyone asks)")
    ds = [cstat(r) for r in rs]
    eq(sum(1 for d in ds if d.get("fwd") == "miss" and d.get("collapsed") is True), 3,
       "waiters marked fwd=miss; collapsed (%r)" % [r.get_all("Cache-Status") for r in rs])
    t0 = time.monotonic()
    rs = _concurrent(ctx, "/lt", 3)
    for i, r in enumerate(rs):
        eq((r.status, r.body), (200, b"slow fill"), "/lt client %d" % i)
    eq(nreq(dev, "/lt"), 3, "device requests for /lt (waiters gave up after 200 ms)")
    check(time.monotonic() - t0 < 1.9, "waiters did not wait for the whole fill + their own "
          "request serially", "< 1.9 s", time.monotonic() - t0)
    ds = [cstat(r) for r in rs]
    eq(sum(1 for d in ds if d.get("collapsed") is True and d.get("fwd") == "miss"), 2,
       "timed-out waiters marked fwd=miss; collapsed (%r)"
       % [r.get_all("Cache-Status") for r in rs])


# =====================================================================
# 12. Cache-Status placement
# =====================================================================

@test("cache: Cache-Status on every cache-route response (incl. 502/504 errors) and never "
      "on other routes; a device's Cache-Status passes through, rproxy's comes after it")
def t_cache_status_field(ctx):
    dead = "127.0.0.1:%d" % free_port()
    dev = start(ctx, origin({
        "/nc/x": R(200, [CC100], "nc"),
        "/nc/dev": R(200, [CC100, ("Cache-Status", "upstream; hit")], "nc dev"),
        "/c/dev": R(200, [CC100, ("Cache-Status", "upstream; fwd=miss")], "c dev"),
        "/c/x": R(200, [CC100], "c")}),
        pools=["pool dead", "device dead %s" % dead],
        routes=["route path=/nc pool=p", "route path=/dead pool=dead cache=on",
                "route pool=p cache=on"])
    for i in range(2):
        r = fetch(ctx, "/nc/x")
        eq(r.get_all("Cache-Status"), [], "no Cache-Status on a route without cache=on")
        r = fetch(ctx, "/nc/dev")
        eq(r.get_all("Cache-Status"), ["upstream; hit"], "device's Cache-Status unchanged "
           "on a route without cache")
    eq(nreq(dev, "/nc/x"), 2, "route without cache=on stores nothing")
    r = fetch(ctx, "/c/dev")
    eq(cs_entries(r)[0], "upstream; fwd=miss", "device's entry first")
    expect_fwd(r, "miss with a device Cache-Status", "miss", 200, stored=True)
    r = fetch(ctx, "/c/dev")
    expect_hit(r, b"c dev", "hit")
    eq(len(cs_entries(r)), 1, "the device's Cache-Status is not stored (hit: rproxy's only)")
    r = fetch(ctx, "/c/x", method="POST", body=b"x")
    expect_fwd(r, "POST", "method", 200)
    r = fetch(ctx, "/dead/x", timeout=8)
    check(r.status in (502, 503, 504), "dead device: an error status", "502/503",
          r.status)
    cstat(r, "error response on a cache route")
    r = fetch(ctx, "/none", headers=[("Cache-Control", "only-if-cached")])
    eq(r.status, 504, "only-if-cached")
    cstat(r, "504 from only-if-cached")


# =====================================================================
# 13. Eviction, pinning, counters
# =====================================================================

OBJ = 200000


def obj_body(i, size=OBJ):
    return bytes([65 + i]) * 64 + pattern(size - 64)


@test("cache: LRU eviction when the 1 MiB arena is full -- 200 kB objects, the oldest "
      "unused one goes, the recently used one stays; eviction counter", timeout=30)
def t_cache_lru_arena(ctx):
    table = {"/o%d" % i: R(200, [CC100], obj_body(i)) for i in range(1, 8)}
    dev = start(ctx, origin(table), cache="max_object=300000", extra=STATUS)
    for i in range(1, 6):
        r = fetch(ctx, "/o%d" % i)
        eq(r.body, obj_body(i), "store /o%d" % i)
        expect_fwd(r, "/o%d" % i, "miss", 200, stored=True)
    for i in range(1, 6):
        expect_hit(fetch(ctx, "/o%d" % i), obj_body(i), "/o%d stored (5 x 200 kB fit)" % i)
    expect_hit(fetch(ctx, "/o1"), obj_body(1), "touch /o1")
    expect_fwd(fetch(ctx, "/o6"), "/o6 (needs room)", "miss", 200, stored=True)
    for i in (1, 3, 4, 5, 6):
        expect_hit(fetch(ctx, "/o%d" % i), obj_body(i), "/o%d kept" % i)
    eq([nreq(dev, "/o%d" % i) for i in range(1, 7)], [1] * 6, "device requests per object")
    r = fetch(ctx, "/o2")
    expect_fwd(r, "/o2 (the LRU one, evicted)", "miss", 200)
    eq(r.body, obj_body(2), "/o2 body from the device")
    eq(nreq(dev, "/o2"), 2, "device requests for /o2")
    js = status_json(ctx)
    cache = js.get("cache")
    check(isinstance(cache, dict), "status JSON has a 'cache' object", "cache: {...}",
          sorted(js))
    eq((cache.get("evictions"), cache.get("entries")), (2, 5),
       "evictions (/o2 for /o6, one more for /o2) and entries")


@test("cache: status page 'cache' counters (JSON) and rproxy_cache_* Prometheus lines")
def t_cache_status_counters(ctx):
    def h(req, n):
        if req.target == "/s2" and n > 1:
            return R(304, [("ETag", '"s2"')])
        if req.target == "/s2":
            return R(200, [("Cache-Control", "max-age=0"), ("ETag", '"s2"')], pattern(3000))
        return R(200, [CC100], pattern(5000))
    start(ctx, origin({}, default=h), extra=STATUS)
    js = status_json(ctx)
    keys = ["entries", "bytes_used", "bytes_total", "hits", "misses", "revalidated", "stores",
            "evictions", "store_failures", "collapsed", "invalidations"]
    check(isinstance(js.get("cache"), dict), "status JSON has 'cache'", "cache: {...}",
          sorted(js))
    k0 = js["cache"]
    eq(sorted(k for k in keys if k not in k0), [], "cache counters missing")
    eq(k0["bytes_total"], 1 << 20, "bytes_total (RP_CACHE_BYTES)")
    eq([k0[k] for k in ("entries", "bytes_used", "hits", "stores", "invalidations")],
       [0, 0, 0, 0, 0], "counters at start")
    fetch(ctx, "/s1")                    # miss, stored
    fetch(ctx, "/s1")                    # hit
    fetch(ctx, "/s1")                    # hit
    fetch(ctx, "/s2")                    # miss, stored (stale)
    fetch(ctx, "/s2")                    # revalidated by a 304
    k1 = status_json(ctx)["cache"]
    eq([k1[k] for k in ("entries", "hits", "stores", "revalidated", "invalidations")],
       [2, 2, 2, 1, 0], "entries, hits, stores, revalidated, invalidations")
    check(k1["misses"] >= 2, "misses", ">= 2", k1["misses"])
    check(8000 <= k1["bytes_used"] <= k1["bytes_total"], "bytes_used", ">= 8000 (both "
          "bodies)", k1["bytes_used"])
    fetch(ctx, "/s1", method="POST", body=b"x")
    k2 = status_json(ctx)["cache"]
    eq((k2["invalidations"], k2["entries"]), (1, 1), "invalidations, entries after POST")
    check(k2["bytes_used"] < k1["bytes_used"], "bytes_used shrinks after the invalidation",
          "< %d" % k1["bytes_used"], k2["bytes_used"])
    r = fetch(ctx, "/status?format=prometheus")
    eq(r.status, 200, "Prometheus page")
    text = r.body.decode()
    vals = {}
    for ln in text.splitlines():
        m = re.match(r"^(rproxy_cache_[a-z_]+)(?:\{[^}]*\})? (\S+)$", ln)
        if m:
            vals[m.group(1)] = float(m.group(2))
    for k in ("hits", "stores", "invalidations"):
        got = vals.get("rproxy_cache_" + k, vals.get("rproxy_cache_%s_total" % k))
        eq(got, float(k2[k]), "Prometheus rproxy_cache_%s[_total] (lines: %r)"
           % (k, sorted(vals)))


def wmem_max():
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


@test("cache: an entry being sent to a client that does not read is pinned -- neither "
      "eviction nor invalidation overwrite its bytes; every byte arrives intact", timeout=40)
def t_cache_pinned(ctx):
    size = 600000
    big = obj_body(1, size)
    table = {"/pin": lambda req, n: R(200, [CC100], big if n == 1 else b"new version"),
             "/x2": R(200, [CC100], obj_body(2, 300000)),
             "/x3": R(200, [CC100], obj_body(3, 300000))}
    dev = start(ctx, origin(table), cache="max_object=700000")
    eq(fetch(ctx, "/pin").body, big, "store /pin (600 kB)")
    # The kernel takes up to tcp_wmem[2] of a non-reader's data, so pipeline enough hits
    # of /pin that rproxy must stop in the middle of one (the entry is then pinned).
    n = min(60, wmem_max() // size + 3)
    slow = ctx.client(rcvbuf=4096, timeout=20)
    slow.send(req_bytes("GET", "/pin", host=HOST) * n)
    time.sleep(0.5)
    eq(fetch(ctx, "/x2").body, obj_body(2, 300000), "store /x2 (fits next to /pin)")
    # /x3 needs room: /pin is the LRU entry but pinned -> /x2 must go instead
    eq(fetch(ctx, "/x3").body, obj_body(3, 300000), "store /x3 while /pin is being sent")
    # invalidating /pin while it is sent must not free its blocks under the reader
    r = fetch(ctx, "/pin", method="POST", body=b"x")
    eq(r.status, 200, "POST /pin")
    eq(fetch(ctx, "/x2").body, obj_body(2, 300000), "re-store /x2 (may reuse freed blocks)")
    eq(nreq(dev, "/x2"), 2, "/x2 was evicted for /x3 (not the pinned /pin)")
    big_sha = hashlib.sha256(big).hexdigest()
    kinds = []
    for i in range(n):
        try:
            r = slow.read_response(timeout=20)
        except (Closed, socket.timeout) as e:
            fail("pipelined response %d of %d missing" % (i, n), "a response", repr(e))
        eq(r.status, 200, "pipelined response %d status" % i)
        if len(r.body) == size:
            eq(hashlib.sha256(r.body).hexdigest(), big_sha, "response %d: 600 kB body "
               "intact (sha256)" % i)
            check(not kinds or kinds[-1] == "old", "old bodies only before new ones",
                  "old...new", kinds)
            kinds.append("old")
        else:
            eq(r.body, b"new version", "response %d after the invalidation" % i)
            kinds.append("new")
    ctx.note("pipelined /pin responses: %d old (hits), %d after the invalidation"
             % (kinds.count("old"), kinds.count("new")))
    check("new" in kinds, "the invalidation took effect for the later pipelined requests",
          "some 'new version'", kinds)
    r = fetch(ctx, "/pin")
    eq(r.body, b"new version", "GET /pin after the invalidation")


@test("cache: 600 small objects (more than the entry table and the arena hold): LRU "
      "keeps the newest, drops the oldest, the counters stay consistent", timeout=40)
def t_cache_many(ctx):
    def h(req, n):
        return R(200, [CC100, ("ETag", '"%s"' % req.target[1:])], req.target.encode())
    dev = start(ctx, origin({}, default=h), extra=STATUS)
    c = ctx.client(timeout=10)
    total = 600
    for base in range(0, total, 50):
        c.send(b"".join(req_bytes("GET", "/e%d" % i, host=HOST)
                        for i in range(base, base + 50)))
        for i in range(base, base + 50):
            r = c.read_response(timeout=10)
            eq(r.body, ("/e%d" % i).encode(), "store /e%d" % i)
    k = status_json(ctx).get("cache") or {}
    check(0 < k.get("entries", 0) < total, "entries bounded", "< %d" % total, k)
    eq(k.get("stores"), total, "stores")
    eq(k.get("evictions"), total - k.get("entries", 0), "evictions == stores - entries")
    check(k.get("bytes_used", 0) <= k.get("bytes_total", 0), "bytes_used <= bytes_total",
          "<=", k)
    expect_hit(fetch(ctx, "/e%d" % (total - 1)), ("/e%d" % (total - 1)).encode(),
               "newest object")
    r = fetch(ctx, "/e0")
    expect_fwd(r, "oldest object (evicted)", "miss", 200)
    eq(nreq(dev, "/e0"), 2, "device requests for /e0")


@test("cache: 8 threads mixing hits, misses and invalidations on 6 URLs: every GET gets "
      "exactly its URL's body", timeout=40)
def t_cache_concurrent(ctx):
    paths = ["/m%d" % i for i in range(6)]
    size = 30000

    def h(req, n):
        if req.method == "POST":
            return R(200, [], "ok")
        return R(200, [CC100], body_for(req.target, 0, size), delay=0.01 * (n % 3))
    dev = start(ctx, origin({}, default=h))
    errors = []
    gets = []

    def worker(k):
        import random
        rnd = random.Random(k)
        c = None
        try:
            for j in range(25):
                if c is None or rnd.random() < 0.2:
                    c = ctx.client(timeout=10)
                p = rnd.choice(paths)
                if rnd.random() < 0.1:
                    c.send(req_bytes("POST", p, host=HOST, body=b"x"))
                    r = c.read_response(timeout=10)
                    if r.status != 200:
                        errors.append("POST %s: %d" % (p, r.status))
                    continue
                m = "HEAD" if rnd.random() < 0.1 else "GET"
                c.send(req_bytes(m, p, host=HOST))
                r = c.read_response(method=m, timeout=10)
                want = b"" if m == "HEAD" else body_for(p, 0, size)
                gets.append(m)
                if r.status != 200 or r.body != want:
                    errors.append("%s %s: status %d, %d body bytes, %s" % (
                        m, p, r.status, len(r.body), r.get_all("Cache-Status")))
        except Exception as e:      # noqa: BLE001 -- reported below
            errors.append("worker %d: %r" % (k, e))
    import threading
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    check(not any(t.is_alive() for t in ths), "workers finished", "all", "some hang")
    eq(errors, [], "bad responses")
    with dev.lock:
        at_dev = sum(1 for q in dev.requests if q.method in ("GET", "HEAD"))
    ctx.note("%d GET/HEAD from clients, %d reached the device" % (len(gets), at_dev))
    check(at_dev <= 0.6 * len(gets), "the cache answered most of them", "<= 60%% of %d"
          % len(gets), at_dev)


# =====================================================================
# 14. Hostile input
# =====================================================================

BAD_CC = [
    ("unterminated quote", 'max-age="100'),
    ("negative max-age", "max-age=-5"),
    ("max-age=abc", "max-age=abc"),
    ("empty max-age", "max-age="),
    ("duplicate conflicting max-age", "max-age=100, max-age=20"),
    ("conflicting max-age on two lines", None),
    ("malformed s-maxage next to a good max-age", "s-maxage=abc, max-age=100"),
    ("stray text after the value", "max-age=100 junk"),
    ("negative s-maxage", "s-maxage=-1, max-age=100"),
    ("decimal max-age", "max-age=100.5"),
]


@test("cache: malformed Cache-Control (unterminated quote, negative, abc, duplicates, "
      "stray bytes) is never fresh: the second request reaches the device")
def t_cache_bad_cc(ctx):
    table = {}
    for i, (label, cc) in enumerate(BAD_CC):
        hs = [("Cache-Control", "max-age=100"), ("Cache-Control", "max-age=5")] \
            if cc is None else [("Cache-Control", cc)]
        table["/bad%d" % i] = (lambda hs_: lambda req, n: R(200, hs_,
                                                            body_for(req.target, n)))(hs)
    dev = start(ctx, origin(table))

    def case(label, path):
        r1 = fetch(ctx, path)
        eq(r1.status, 200, "first status")
        r2 = fetch(ctx, path)
        eq(r2.status, 200, "second status")
        check("hit" not in cstat(r2), "second is not a hit", "fwd=...",
              r2.get_all("Cache-Status"))
        eq(nreq(dev, path), 2, "device requests")
        eq(r2.body, body_for(path, 2), "second body from the device")
    run_cases([(lab, "/bad%d" % i) for i, (lab, _) in enumerate(BAD_CC)], case)


@test("cache: absurd Age / Date / Expires -- huge or malformed values are never fresh, "
      "huge max-age clamps to 2^31 (no wrap to negative), far-future dates stay sane")
def t_cache_absurd(ctx):
    now = time.time()
    cases = [
        # label, headers, expect: "stale" | "hit"
        ("Age 99999999999999999999 (clamps to 2^31)",
         [CC100, ("Age", "99999999999999999999")], "stale"),
        ("Age -5", [CC100, ("Age", "-5")], "stale"),
        ("Age abc", [CC100, ("Age", "abc")], "stale"),
        ("Expires unparsable", [("Date", httpdate(now)), ("Expires", "yesterday")], "stale"),
        ("Expires: 0", [("Date", httpdate(now)), ("Expires", "0")], "stale"),
        ("Expires in 1994", [("Date", httpdate(now)),
                             ("Expires", "Sun, 06 Nov 1994 08:49:37 GMT")], "stale"),
        ("two different Expires", [("Date", httpdate(now)),
                                   ("Expires", httpdate(now + 100)),
                                   ("Expires", httpdate(now + 200))], "stale"),
        ("Date in 1994 with max-age=100 (apparent age ~30 years)",
         [CC100, ("Date", "Sun, 06 Nov 1994 08:49:37 GMT")], "stale"),
        ("max-age=99999999999999999999 clamps to 2^31", [
            ("Cache-Control", "max-age=99999999999999999999")], "huge"),
        ("Date in year 9999 with max-age=100", [CC100, ("Date",
                                                        "Fri, 31 Dec 9999 23:59:59 GMT")],
         "sane"),
        ("Expires in year 9999", [("Date", httpdate(now)),
                                  ("Expires", "Fri, 31 Dec 9999 23:59:59 GMT")], "sane"),
    ]
    table = {}
    for i, (label, hs, _) in enumerate(cases):
        table["/ab%d" % i] = (lambda hs_: lambda req, n: R(200, hs_,
                                                           body_for(req.target, n)))(hs)
    dev = start(ctx, origin(table))

    def case(label, path, want):
        r1 = fetch(ctx, path)
        eq(r1.body, body_for(path, 1), "first body")
        r2 = fetch(ctx, path)
        d = cstat(r2)
        if want == "stale":
            check("hit" not in d, "second is not a hit", "fwd=...", r2.get_all("Cache-Status"))
            eq(nreq(dev, path), 2, "device requests")
        elif want == "huge":
            expect_hit(r2, r1.body, "huge max-age")
            t = int(d["ttl"])
            check(2147483600 <= t <= 2147483648, "ttl clamped near 2^31", "~2147483648", t)
        else:                         # sane: either a hit with a positive ttl, or stale
            if "hit" in d:
                expect_hit(r2, r1.body, label, age=(0, 1))
                check(0 < int(d["ttl"]) <= 2147483648, "ttl positive and <= 2^31",
                      "1..2^31", d["ttl"])
            else:
                eq(nreq(dev, path), 2, "device requests")
    run_cases([(lab, "/ab%d" % i, w) for i, (lab, _, w) in enumerate(cases)], case)


@test("cache: Vary naming 100 headers is not stored (and does not crash)")
def t_cache_vary_100(ctx):
    names = ", ".join("X-H%d" % i for i in range(100))
    dev = start(ctx, origin({"/v100": R(200, [CC100, ("Vary", names)], "hundred")}))
    hs = [("X-H%d" % i, "v") for i in range(20)]
    for i in range(2):
        r = fetch(ctx, "/v100", headers=hs)
        eq((r.status, r.body), (200, b"hundred"), "response %d" % i)
        check("hit" not in cstat(r), "response %d not a hit" % i, "fwd=miss",
              r.get_all("Cache-Status"))
    eq(nreq(dev, "/v100"), 2, "device requests")


@test("cache: device sends more body bytes than its Content-Length -- the client gets "
      "exactly Content-Length bytes, and never the extra ones later; a truncated body is "
      "not stored")
def t_cache_overlong(ctx):
    def trunc(req, n):
        return R(200, [CC100], pattern(20000), truncate=5000)
    dev = start(ctx, origin({
        "/over": R(200, [CC100], b"0123456789", extra=b"EXTRA-BYTES-HTTP/1.1 200 OK\r\n"),
        "/after": R(200, [CC100], b"after"),
        "/trunc": trunc}))
    c = ctx.client()
    r = fetch(ctx, "/over", c=c)
    eq(r.body, b"0123456789", "first response: exactly Content-Length bytes")
    check(no_more_bytes(c), "no extra bytes after the first response", "none",
          short(c.buf))
    if not c.eof:
        r = fetch(ctx, "/after", c=c)
        eq(r.body, b"after", "next response on the same connection")
    for i in range(2):
        r = fetch(ctx, "/over")
        eq(r.body, b"0123456789", "later response %d for /over" % i)
        check(b"EXTRA" not in r.head_raw + r.body, "extra bytes never served", "absent",
              r.head_raw + r.body)
        check(no_more_bytes(r.client), "nothing more on the connection", "no bytes",
              short(r.client.buf))
    r = fetch(ctx, "/after")
    eq(r.body, b"after", "/after")
    check(b"EXTRA" not in r.head_raw, "extra bytes not read as the next response", "absent",
          r.head_raw)
    # a body cut short by the device is never stored
    for i in range(2):
        c = ctx.client()
        c.send(req_bytes("GET", "/trunc", host=HOST))
        try:
            r = c.read_head(timeout=5)
            eq(r.status, 200, "truncated response status")
            got = c.read_until_close(timeout=5)
            check(len(got) < 20000, "truncated body ends in a close", "< 20000", len(got))
        except Closed:
            pass
    eq(nreq(dev, "/trunc"), 2, "device requests for /trunc (not stored)")


# =====================================================================
# 15. Config errors
# =====================================================================

CACHE_BASE = [
    "listen 127.0.0.1:8080",                                          # 1
    "pool p",                                                         # 2
    "device p 127.0.0.1:9001",                                        # 3
    "cache max_object=100000 heuristic=on ignore_client_nocache=off lock_timeout=250",  # 4
    "route path=/c pool=p cache=on",                                  # 5
    "route pool=p cache=off",                                         # 6
]

BAD_CACHE = [
    ("max_object=abc", {4: "cache max_object=abc"}, 4),
    ("unknown option", {4: "cache bogus=1"}, 4),
    ("heuristic=maybe", {4: "cache heuristic=maybe"}, 4),
    ("ignore_client_nocache=1", {4: "cache ignore_client_nocache=1"}, 4),
    ("lock_timeout=-1", {4: "cache lock_timeout=-1"}, 4),
    ("max_object=0", {4: "cache max_object=0"}, 4),
    ("max_object larger than the arena", {4: "cache max_object=99999999999"}, 4),
    ("cache without options", {4: "cache"}, 4),
    ("route cache=maybe", {5: "route path=/c pool=p cache=maybe"}, 5),
]


@test("config: cache errors (max_object=abc, bogus=1, ...) -> FILE:LINE: and exit 1; the "
      "good cache config passes -t")
def t_cache_config(ctx):
    def run_t(text, name):
        path = ctx.path(name)
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([RPROXY, "-t", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=10)
        return path, p.returncode, p.stdout.decode("utf-8", "replace"), \
            p.stderr.decode("utf-8", "replace")
    path, rc, out, err = run_t("\n".join(CACHE_BASE) + "\n", "good.conf")
    eq(rc, 0, "exit status of the good cache config (stderr: %r)" % err)
    eq(out.strip(), "%s: ok" % path, "stdout for the good config")
    fails = []
    for k, (label, repl, line) in enumerate(BAD_CACHE):
        lines = list(CACHE_BASE)
        for n, text in repl.items():
            lines[n - 1] = text
        path, rc, out, err = run_t("\n".join(lines) + "\n", "bad%d.conf" % k)
        want = "%s:%d:" % (path, line)
        if rc != 1 or not err.startswith(want) or len(err.strip()) <= len(want):
            fails.append("%s: want exit 1 and %r + message, got exit %s, stderr %r"
                         % (label, want, rc, err.strip()))
    eq(fails, [], "bad cache configs not reported as FILE:LINE: message with exit 1")


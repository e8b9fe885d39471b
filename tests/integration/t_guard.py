"""t_guard.py -- the front door (issue 14 items 3-6, src/22-guard.c): a route's allow=
(403), HTTP Basic auth from a users file of `openssl passwd -5/-6` and `mkpasswd` hashes
(401, pass_auth=, the malformed-credentials table, the failed-login lock -> 429), the
status page's auth=, client_limit conns= and rate= (429), and listen ... proxy_protocol
with a real HAProxy in front (send-proxy, send-proxy-v2, a TLS listener) and hand-made
PROXY headers (untrusted peer, none, malformed).

Every loopback address 127.0.0.0/8 is a distinct client: a raw socket bound to
127.0.0.9 is "another client" (curl --interface 127.0.0.5 likewise).  rproxy's start-up
probe comes from 127.0.0.254 and the status page is read from 127.0.0.200, so neither
counts against the addresses a test watches.  Named "guard: ...".
"""

import base64
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import time

from checks import (access_lines, check, eq, expect_closed, fail, req_bytes, run_cli,
                    seen_header, test, wait_stderr)
from devserver import response
from harness import Client, RProxy, free_port
import tlsutil as T

PROBE_ADDR = "127.0.0.254"     # the start-up probe
STATUS_ADDR = "127.0.0.200"    # reads the status page


# =====================================================================
# helpers
# =====================================================================

def client_from(ctx, src, port, timeout=5.0):
    """A harness.Client whose socket is bound to source address src."""
    c = Client(ctx, port=port, timeout=timeout, connect=False)
    c.sock.bind((src, 0))
    c.sock.connect(("127.0.0.1", port))
    return c


def wait_up(px, port, timeout=10.0):
    """Wait until port accepts, probing from PROBE_ADDR."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not px.alive():
            fail("rproxy exited with %s during start-up: %s"
                 % (px.proc.returncode, " | ".join(px.stderr_tail(10))))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.bind((PROBE_ADDR, 0))
            s.connect(("127.0.0.1", port))
            s.close()
            return
        except OSError:
            s.close()
            time.sleep(0.02)
    fail("nothing accepts on port %d within %.0fs" % (port, timeout))


def start_px(ctx, text, ports):
    """rproxy with config text; waits until every port in ports accepts."""
    px = RProxy(ctx, text, args=["-g", "1000"], valgrind=ctx.valgrind, wait=False)
    for pt in ports:
        wait_up(px, pt, 30.0 if ctx.valgrind else 10.0)
    if ctx.proxy is None:
        ctx.proxy = px
        ctx.port = ports[0]
    return px


TIMEOUTS = "timeout client_header=5000 client_idle=10000 connect=2000 device=5000\n"


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def openssl_hash(alg, pw, salt=None):
    cmd = ["openssl", "passwd", "-" + alg]
    if salt:
        cmd += ["-salt", salt]
    out = subprocess.run(cmd + [pw], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         check=True, timeout=10).stdout.decode().strip()
    check(out.startswith("$%s$" % alg), "openssl passwd -%s made a $%s$ hash" % (alg, alg),
          "$%s$..." % alg, out)
    return out


def mkpasswd_hash(method, pw, rounds, salt=None):
    """mkpasswd (Debian package whois) with rounds=; None when it is not installed."""
    if not shutil.which("mkpasswd"):
        return None
    cmd = ["mkpasswd", "-m", method, "-R", str(rounds)]
    if salt:
        cmd += ["-S", salt]
    out = subprocess.run(cmd + [pw], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         check=True, timeout=10).stdout.decode().strip()
    check("$rounds=%d$" % rounds in out, "mkpasswd wrote rounds=%d" % rounds,
          "$N$rounds=%d$..." % rounds, out)
    return out


_HASHES = {}


def users_file(ctx, name="users"):
    """A users file: alice ($5$, openssl -5), bob ($6$, openssl -6 -salt), and when
    mkpasswd is installed carol ($6$ rounds=6000) and dave ($5$ rounds=6000, -S salt).
    Returns (path, {user: password}).  The hashes are made once per run."""
    if not _HASHES:
        rows = [("alice", "s3cret-A", lambda pw: openssl_hash("5", pw)),
                ("bob", "pä55 w0rd:colon", lambda pw: openssl_hash("6", pw, "NaCl4bob")),
                ("carol", "carol-pw", lambda pw: mkpasswd_hash("sha-512", pw, 6000)),
                ("dave", "dave-pw", lambda pw: mkpasswd_hash("sha-256", pw, 6000,
                                                             "DaveSalt1234"))]
        for user, pw, mk in rows:
            h = mk(pw)
            if h is not None:
                _HASHES[user] = (pw, h)
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write("# made by t_guard.py\n")
        for user, (pw, h) in _HASHES.items():
            f.write("%s:%s\n" % (user, h))
    if "carol" not in _HASHES:
        ctx.note("mkpasswd not installed (Debian package whois): rounds= rows not run")
    return path, {u: pw for u, (pw, _) in _HASHES.items()}


def status_json(ctx, port, path="/st", auth=None):
    """The status page's JSON, read from STATUS_ADDR on its own connection."""
    c = client_from(ctx, STATUS_ADDR, port)
    hdrs = [("Connection", "close")]
    if auth:
        hdrs.append(("Authorization", auth))
    c.send(req_bytes("GET", path, headers=hdrs))
    r = c.read_response()
    c.close()
    eq(r.status, 200, "status page answer")
    return json.loads(r.body)


def prometheus(ctx, port, path="/st"):
    c = client_from(ctx, STATUS_ADDR, port)
    c.send(req_bytes("GET", path + "?format=prometheus", headers=[("Connection", "close")]))
    r = c.read_response()
    eq(r.status, 200, "Prometheus status answer")
    return r.body.decode("utf-8", "replace")


def guard(ctx, port, **kw):
    st = status_json(ctx, port, **kw)
    check("guard" in st, "the status JSON has the guard counters", "a \"guard\" object",
          sorted(st))
    return st["guard"]


def send_get(c, path, headers=(), method="GET", body=b""):
    c.send(req_bytes(method, path, headers=list(headers), body=body))
    return c.read_response(method=method)


def dev_paths(dev):
    return dev.paths()


def access_why(px, addr, timeout=3.0):
    """[(status, why)] of the ACCESS lines of client addr (waiting for one)."""
    pat = re.compile(r'^ACCESS %s "[^"]*" (\d{3}) \d+ \S+ \d+ms(?: why="(.*)")?$'
                     % re.escape(addr), re.M)
    err = wait_stderr(px, lambda e: pat.search(e), timeout)
    return pat.findall(err)


def log_has(px, text, timeout=3.0):
    err = wait_stderr(px, lambda s: text in s, timeout)
    check(text in err, "rproxy logged %r" % text, text,
          [ln for ln in err.splitlines() if "ACCESS" not in ln][-8:])
    return err


# =====================================================================
# allow=
# =====================================================================

@test("guard: allow=10.0.0.0/8 refuses 127.0.0.1 with 403 (device untouched, connection "
      "kept); allow=127.0.0.7/32 serves 127.0.0.7 and refuses 127.0.0.1")
def t_allow_v4(ctx):
    dev = ctx.device()
    port, sport = free_port(), free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d\nlisten 127.0.0.1:%d\npool p\ndevice p %s\n"
                        "route path=/ten pool=p allow=10.0.0.0/8\n"
                        "route path=/seven pool=p allow=127.0.0.7/32 allow=192.168.0.0/16\n"
                        "route pool=p\nstatus path=/st allow=127.0.0.0/8\n%s")
                  % (port, sport, dev.addr, TIMEOUTS), [port, sport])
    c = client_from(ctx, "127.0.0.1", port)
    r = send_get(c, "/ten")
    eq(r.status, 403, "127.0.0.1 on an allow=10.0.0.0/8 route")
    eq(r.body, b"Forbidden\n", "403 body")
    check(not r.has("WWW-Authenticate"), "no challenge on a 403", None, r.headers)
    check(c.still_open(), "the 403 keeps the keep-alive connection", "open", "closed")
    r = send_get(c, "/free")
    eq(r.status, 200, "the next request on the same connection (an unrestricted route)")
    r = send_get(c, "/seven")
    eq(r.status, 403, "127.0.0.1 on an allow=127.0.0.7/32 route")
    c7 = client_from(ctx, "127.0.0.7", port)
    r = send_get(c7, "/seven/x")
    eq(r.status, 200, "127.0.0.7 on its allow= route")
    eq(dev_paths(dev), ["/free", "/seven/x"], "requests that reached the device")
    c8 = client_from(ctx, "127.0.0.8", port)
    eq(send_get(c8, "/seven").status, 403, "127.0.0.8 (a /32 is one address)")
    log_has(px, "refused request: 403 Forbidden: client not in the route's allow=")
    acc = access_lines(px, "/ten")
    eq([(a[0], a[3]) for a in acc], [("127.0.0.1", "403")], "ACCESS line of the refusal")
    eq(guard(ctx, sport)["acl_denied"], 3, "status guard.acl_denied")
    prom = prometheus(ctx, sport)
    for name, v in (("acl_denied", 3), ("auth_failures", 0), ("limit_conns", 0),
                    ("proxy_refused", 0)):
        check(re.search(r"^# TYPE rproxy_%s_total counter$" % name, prom, re.M)
              and re.search(r"^rproxy_%s_total %d$" % (name, v), prom, re.M),
              "Prometheus rproxy_%s_total" % name, "rproxy_%s_total %d" % (name, v),
              [ln for ln in prom.splitlines() if name in ln])


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@test("guard: allow= with IPv6: ::1 allowed by allow=::1 (and [::1]/128), refused by "
      "allow=::2/128; 127.0.0.1 refused by allow=::1")
def t_allow_v6(ctx):
    if not have_ipv6():
        ctx.note("no IPv6 loopback on this machine: nothing to test")
        return
    dev = ctx.device()
    p6, p4 = free_port(), free_port()
    start_px(ctx, ("listen [::1]:%d\nlisten 127.0.0.1:%d\npool p\ndevice p %s\n"
                   "route path=/six pool=p allow=::1\n"
                   "route path=/br pool=p allow=[::1]/128\n"
                   "route path=/two pool=p allow=::2/128 allow=127.0.0.0/8\n"
                   "route pool=p\n%s") % (p6, p4, dev.addr, TIMEOUTS), [p4])
    end = time.monotonic() + 5
    while True:         # the IPv6 listener: wait_up probes IPv4 only
        try:
            socket.create_connection(("::1", p6), 0.5).close()
            break
        except OSError:
            if time.monotonic() > end:
                fail("rproxy does not accept on [::1]:%d" % p6)
            time.sleep(0.05)

    def code(url):
        rc, out, err = ctx.curl("-g", "-s", "-o", "/dev/null", "-w", "%{http_code}", url)
        return out.decode()
    eq(code("http://[::1]:%d/six" % p6), "200", "::1 on allow=::1")
    eq(code("http://[::1]:%d/br" % p6), "200", "::1 on allow=[::1]/128")
    eq(code("http://[::1]:%d/two" % p6), "403", "::1 on allow=::2/128 allow=127.0.0.0/8")
    eq(code("http://127.0.0.1:%d/six" % p4), "403", "127.0.0.1 on allow=::1")
    eq(code("http://127.0.0.1:%d/two" % p4), "200", "127.0.0.1 on allow=127.0.0.0/8")
    eq(dev_paths(dev), ["/six", "/br", "/two"], "requests that reached the device")
    xff = [r.get("X-Forwarded-For") for r in dev.requests]
    eq(xff, ["::1", "::1", "127.0.0.1"], "X-Forwarded-For at the device")


# =====================================================================
# Basic auth
# =====================================================================

REALM_CONF = 'realm="Cam \\"1\\""'                       # as written in the config
REALM_HDR = 'Basic realm="Cam \\"1\\"", charset="UTF-8"'  # as it must come back


def auth_conf(ctx, dev, port, extra_routes="", status="status path=/st allow=127.0.0.0/8"):
    path, pws = users_file(ctx)
    text = ("listen 127.0.0.1:%d\nusers cams %s\npool p\ndevice p %s\n"
            "route path=/cam pool=p auth=cams %s\n%s"
            "route pool=p\n%s\n%s") % (port, path, dev.addr, REALM_CONF, extra_routes, status,
                                       TIMEOUTS)
    return text, pws


@test("guard: Basic auth: 401 with the exact challenge (quoted realm), 200 for every user "
      "($5$, $6$, mkpasswd rounds=), 401 for a wrong password and an unknown user; the "
      "device never sees Authorization")
def t_auth_basic(ctx):
    dev = ctx.device()
    port = free_port()
    text, pws = auth_conf(ctx, dev, port)
    px = start_px(ctx, text, [port])
    url = "http://127.0.0.1:%d/cam" % port
    rc, out, err = ctx.curl("-s", "-i", url)
    head = out.split(b"\r\n\r\n")[0].decode("latin-1")
    check(head.startswith("HTTP/1.1 401 Unauthorized"), "no credentials -> 401", "401",
          head[:200])
    ch = re.findall(r"^WWW-Authenticate: (.*)\r?$", head, re.M | re.I)
    eq(ch, [REALM_HDR], "the WWW-Authenticate field")
    log_has(px, "auth: no credentials")
    eq(len(dev.requests), 0, "requests at the device after the 401")
    for user, pw in pws.items():
        rc, out, err = ctx.curl("-s", "-u", "%s:%s" % (user, pw), "-o", "-", "-w",
                                "\n%{http_code}", url + "/" + user)
        body, _, code = out.rpartition(b"\n")
        eq(code, b"200", "%s with the right password (curl: %s)" % (user, err[-200:]))
        info = json.loads(body)
        eq(seen_header(info, "Authorization"), [], "Authorization at the device (%s)" % user)
    for what, cred in (("wrong password", "alice:s3cret-a"), ("unknown user", "mallory:x"),
                       ("another user's password", "bob:s3cret-A")):
        rc, out, err = ctx.curl("-s", "-u", cred, "-o", "/dev/null", "-w", "%{http_code}",
                                url + "/bad")
        eq(out, b"401", what)
    log_has(px, "refused request: 401 Unauthorized: auth: wrong user or password")
    eq(dev_paths(dev), ["/cam/" + u for u in pws], "requests that reached the device")
    for r in dev.requests:
        check(not r.has("Authorization"), "no Authorization at the device", None, r.headers)
    rc, out, err = ctx.curl("-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://127.0.0.1:%d/open" % port)
    eq(out, b"200", "a route without auth= needs none")
    g = guard(ctx, port)
    eq(g["auth_failures"], 4, "status guard.auth_failures (the 401s, 'no credentials' too)")
    eq(g["auth_locked"], 0, "status guard.auth_locked")


@test("guard: Basic auth: the credential cache (a repeated header is a cache hit); "
      "pass_auth=on hands Authorization to the device unchanged")
def t_auth_cache_pass(ctx):
    dev = ctx.device()
    port = free_port()
    text, pws = auth_conf(ctx, dev, port,
                          "route path=/pass pool=p auth=cams pass_auth=on\n")
    start_px(ctx, text, [port])
    c = client_from(ctx, "127.0.0.1", port)
    cred = basic("alice", pws["alice"])
    for i in range(3):
        eq(send_get(c, "/cam/%d" % i, [("Authorization", cred)]).status, 200,
           "request %d with credentials" % i)
    g = guard(ctx, port)
    eq(g["auth_cache_hits"], 2, "status guard.auth_cache_hits (the first one hashes)")
    r = send_get(c, "/pass/x", [("Authorization", cred)])
    eq(r.status, 200, "pass_auth=on route")
    info = json.loads(r.body)
    eq(seen_header(info, "Authorization"), [cred], "Authorization at the device with pass_auth=on")
    r = send_get(c, "/pass/y")
    eq(r.status, 401, "pass_auth=on still needs credentials")
    eq(r.get("WWW-Authenticate"), 'Basic realm="rproxy", charset="UTF-8"',
       "the default realm")
    eq(dev_paths(dev), ["/cam/0", "/cam/1", "/cam/2", "/pass/x"], "device requests")


def b64(s):
    return base64.b64encode(s).decode()


@test("guard: Basic auth bad input: Bearer, bad base64, no colon, empty user, NUL and "
      "CTL inside, over RP_AUTH_CRED_MAX (7 and 8 KB), two Authorization fields -> 401 naming "
      "the rule; 10 KB -> 431 (RP_MAX_HEAD), a raw NUL -> 400; none reaches the device")
def t_auth_bad_input(ctx):
    dev = ctx.device()
    port = free_port()
    text, pws = auth_conf(ctx, dev, port)
    px = start_px(ctx, text, [port])
    good = basic("alice", pws["alice"])
    rows = [
        ("not Basic", [("Authorization", "Bearer x")], 401, "auth: not the Basic scheme"),
        ("Basic, nothing after", [("Authorization", "Basic")], 401,
         "auth: malformed Basic credentials"),
        ("bad base64", [("Authorization", "Basic !!!!bad*base64")], 401,
         "auth: malformed Basic credentials"),
        ("base64 not a multiple of 4", [("Authorization", "Basic YWxpY2U6eA")], 401,
         "auth: malformed Basic credentials"),
        ("no colon", [("Authorization", "Basic " + b64(b"alices3cret-A"))], 401,
         "auth: malformed Basic credentials"),
        ("empty user", [("Authorization", "Basic " + b64(b":s3cret-A"))], 401,
         "auth: malformed Basic credentials"),
        ("NUL inside the credentials", [("Authorization", "Basic " +
                                         b64(b"alice:s3cret-A\x00"))], 401,
         "auth: malformed Basic credentials"),
        ("CTL inside the credentials", [("Authorization", "Basic " +
                                         b64(b"alice\x1b:s3cret-A"))], 401,
         "auth: malformed Basic credentials"),
        ("right credentials + 300 bytes (over RP_AUTH_CRED_MAX)",
         [("Authorization", "Basic " + b64(b"alice:s3cret-A" + b"x" * 300))], 401,
         "auth: credentials longer than RP_AUTH_CRED_MAX"),
        ("two Authorization fields", [("Authorization", good), ("Authorization", good)], 401,
         "auth: several Authorization fields"),
    ]
    # each row from its own address: ten failures from one would lock it (429)
    for i, (label, hdrs, want, why) in enumerate(rows):
        c = client_from(ctx, "127.0.0.%d" % (20 + i), port)
        r = send_get(c, "/cam/bad", hdrs)
        eq(r.status, want, label)
        eq(r.get("WWW-Authenticate"), REALM_HDR, "%s: the challenge" % label)
        eq(access_why(px, "127.0.0.%d" % (20 + i)), [(str(want), why)],
           "%s: the ACCESS line (status, why)" % label)
        c.close()
    # 7 KB and 8,100 bytes fit the head (RP_MAX_HEAD 8192) and auth refuses them; 10 KB
    # is beyond the head limit, which answers 431 before any route is chosen
    for i, (n, want, why) in enumerate((
            (7000, 401, "auth: credentials longer than RP_AUTH_CRED_MAX"),
            (8100, 401, "auth: credentials longer than RP_AUTH_CRED_MAX"),
            (10240, 431, "request head longer than RP_MAX_HEAD"))):
        c = client_from(ctx, "127.0.0.%d" % (40 + i), port)
        r = send_get(c, "/cam/long", [("Authorization", "Basic " + "QUFB" * (n // 4))])
        eq(r.status, want, "a %d-byte Authorization" % n)
        eq([(st, w[:len(why)]) for st, w in access_why(px, "127.0.0.%d" % (40 + i))],
           [(str(want), why)], "the ACCESS line of the %d-byte one (status, why)" % n)
        c.close()
    # a raw NUL byte in the field value: the head parser refuses it (400) before auth
    c = client_from(ctx, "127.0.0.45", port)
    c.send(b"GET /cam/nul HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxp\x00Y2U6eA==\r\n\r\n")
    r = c.read_response()
    eq(r.status, 400, "a raw NUL in Authorization")
    log_has(px, "400 Bad Request: bare CR, bare LF or NUL in the request head")
    expect_closed(c, "after the 400")
    eq(len(dev.requests), 0, "requests that reached the device")
    check(px.alive(), "rproxy still running", "alive", "dead")
    c = client_from(ctx, "127.0.0.1", port)
    eq(send_get(c, "/cam/ok", [("Authorization", good)]).status, 200,
       "right credentials afterwards")
    g = guard(ctx, port)
    eq(g["auth_locked"], 0, "status guard.auth_locked (no address had 10 failures)")
    eq(dev_paths(dev), ["/cam/ok"], "device requests")


@test("guard: Basic auth keep-alive: a 401 without a body keeps the connection (the next "
      "request with credentials succeeds on it; pipelined, HEAD, Content-Length: 0 too); a "
      "POST with a body or Expect: 100-continue and no credentials gets 401 and is closed")
def t_auth_keepalive(ctx):
    dev = ctx.device()
    port = free_port()
    text, pws = auth_conf(ctx, dev, port)
    start_px(ctx, text, [port])
    c = client_from(ctx, "127.0.0.1", port)
    r = send_get(c, "/cam/1")
    eq(r.status, 401, "first request without credentials")
    check("close" not in r.conn_tokens(), "the 401 does not say Connection: close", None,
          r.headers)
    check(c.still_open(), "connection open after the 401", "open", "closed")
    r = send_get(c, "/cam/2", [("Authorization", basic("bob", pws["bob"]))])
    eq(r.status, 200, "second request, same connection, with credentials")
    eq(json.loads(r.body)["target"], "/cam/2", "the device answered it")
    # pipelined: the 401 and the next request in one write
    c.send(req_bytes("GET", "/cam/p1") + req_bytes("GET", "/cam/p2", headers=[
        ("Authorization", basic("alice", pws["alice"]))]))
    eq([c.read_response().status, c.read_response().status], [401, 200],
       "a pipelined request without credentials, then one with")
    r = send_get(c, "/cam/head", method="HEAD")
    eq((r.status, r.body), (401, b""), "HEAD without credentials: 401 without a body")
    r = send_get(c, "/cam/cl0", [("Content-Length", "0")], method="POST")
    eq(r.status, 401, "POST with Content-Length: 0, no credentials")
    check(c.still_open(), "an empty body keeps the connection", "open", "closed")
    eq(send_get(c, "/cam/3", [("Authorization", basic("alice", pws["alice"]))]).status, 200,
       "the same connection after all that")
    ce = client_from(ctx, "127.0.0.1", port)
    ce.send(req_bytes("POST", "/cam/expect", headers=[("Expect", "100-continue"),
                                                       ("Content-Length", "5000")]))
    r = ce.read_response(allow_1xx=True)
    eq(r.status, 401, "Expect: 100-continue without credentials: 401, not 100 Continue")
    expect_closed(ce, "after the 401 to an Expect: 100-continue request (body never sent)")
    c2 = client_from(ctx, "127.0.0.1", port)
    r = send_get(c2, "/cam/post", method="POST", body=b"x" * 100)
    eq(r.status, 401, "POST with a body, no credentials")
    check("close" in r.conn_tokens(), "Connection: close on the 401 with a body unread",
          "close", r.headers)
    expect_closed(c2, "after the 401 to a POST with a body")
    eq(dev_paths(dev), ["/cam/2", "/cam/p2", "/cam/3"], "requests that reached the device")


@test("guard: Basic auth brute force: 10 wrong logins from 127.0.0.9 -> the 11th (right "
      "credentials) gets 429 with Retry-After 1..60; 127.0.0.1 still gets 200; requests "
      "without credentials never lock")
def t_auth_bruteforce(ctx):
    dev = ctx.device()
    port = free_port()
    text, pws = auth_conf(ctx, dev, port)
    px = start_px(ctx, text, [port])
    right = basic("alice", pws["alice"])
    # 12 without credentials from 127.0.0.10: a browser's first try is not a failure
    c10 = client_from(ctx, "127.0.0.10", port)
    for i in range(12):
        eq(send_get(c10, "/cam/n%d" % i).status, 401, "no credentials, try %d" % (i + 1))
    eq(send_get(c10, "/cam/n-ok", [("Authorization", right)]).status, 200,
       "127.0.0.10 after 12 requests without credentials")
    c9 = client_from(ctx, "127.0.0.9", port)
    for i in range(10):
        r = send_get(c9, "/cam/w%d" % i, [("Authorization", basic("alice", "wrong%d" % i))])
        eq(r.status, 401, "wrong password, try %d" % (i + 1))
    log_has(px, "auth: 10 failed logins from 127.0.0.9: refused for 60 s")
    r = send_get(c9, "/cam/right", [("Authorization", right)])
    eq(r.status, 429, "the 11th try, right credentials, from the locked address")
    ra = r.get("Retry-After")
    check(ra is not None and ra.isdigit() and 1 <= int(ra) <= 60, "Retry-After 1..60",
          "1..60", ra)
    check(c9.still_open(), "the 429 keeps the connection", "open", "closed")
    log_has(px, "refused request: 429 Too Many Requests: auth: too many failed logins "
                "from this address")
    eq(send_get(client_from(ctx, "127.0.0.9", port), "/cam/right2",
                [("Authorization", right)]).status, 429, "a new connection from 127.0.0.9")
    c1 = client_from(ctx, "127.0.0.1", port)
    eq(send_get(c1, "/cam/other", [("Authorization", right)]).status, 200,
       "127.0.0.1 with the right credentials meanwhile")
    eq(send_get(c9, "/open").status, 200, "127.0.0.9 on a route without auth=")
    eq(dev_paths(dev), ["/cam/n-ok", "/cam/other", "/open"], "requests at the device")
    g = guard(ctx, port)
    eq(g["auth_locked"], 2, "status guard.auth_locked")


@test("guard: Basic auth with two users files: credentials cached for one route's file "
      "do not open the other's; the scheme is case-insensitive; a route without auth= "
      "passes Authorization through untouched")
def t_auth_two_lists(ctx):
    dev = ctx.device()
    port = free_port()
    path, pws = users_file(ctx)
    other = ctx.path("users2")
    with open(other, "w") as f:
        f.write("zed:%s\n" % openssl_hash("6", "zed-pw"))
    start_px(ctx, ("listen 127.0.0.1:%d\nusers cams %s\nusers ops %s\npool p\ndevice p %s\n"
                   "route path=/cam pool=p auth=cams\nroute path=/ops pool=p auth=ops\n"
                   "route pool=p\n%s") % (port, path, other, dev.addr, TIMEOUTS), [port])
    c = client_from(ctx, "127.0.0.1", port)
    alice = basic("alice", pws["alice"])
    eq(send_get(c, "/cam/1", [("Authorization", alice)]).status, 200, "alice on /cam")
    eq(send_get(c, "/cam/2", [("Authorization", alice)]).status, 200, "alice on /cam (cached)")
    eq(send_get(c, "/ops/1", [("Authorization", alice)]).status, 401,
       "alice's cached credentials on a route of another users file")
    zed = basic("zed", "zed-pw")
    eq(send_get(c, "/ops/2", [("Authorization", zed)]).status, 200, "zed on /ops")
    eq(send_get(c, "/cam/3", [("Authorization", zed)]).status, 401, "zed on /cam")
    low = "basic " + alice.split(" ", 1)[1]
    eq(send_get(c, "/cam/4", [("Authorization", low)]).status, 200,
       "scheme 'basic' in lower case (RFC 9110 11.1: case-insensitive)")
    r = send_get(c, "/free", [("Authorization", "Bearer device-token")])
    eq(r.status, 200, "a route without auth=")
    eq(seen_header(json.loads(r.body), "Authorization"), ["Bearer device-token"],
       "Authorization at the device on a route without auth=")
    eq(dev_paths(dev), ["/cam/1", "/cam/2", "/ops/2", "/cam/4", "/free"], "device requests")
    for r in dev.requests[:4]:
        check(not r.has("Authorization"), "no Authorization behind auth=", None, r.headers)


@test("guard: a users file with CRLF line ends, comments, blank lines and no final newline "
      "logs its users in; user names are case-sensitive")
def t_auth_crlf_file(ctx):
    dev = ctx.device()
    port = free_port()
    h5, h6 = openssl_hash("5", "pw-one"), openssl_hash("6", "pw-two")
    up = ctx.path("users-crlf")
    with open(up, "wb") as f:
        f.write(("# written on Windows\r\n\r\none:%s\r\n  \r\ntwo:%s" % (h5, h6)).encode())
    start_px(ctx, ("listen 127.0.0.1:%d\nusers w %s\npool p\ndevice p %s\n"
                   "route pool=p auth=w\n%s") % (port, up, dev.addr, TIMEOUTS), [port])
    c = client_from(ctx, "127.0.0.1", port)
    eq(send_get(c, "/1", [("Authorization", basic("one", "pw-one"))]).status, 200,
       "a user on a CRLF line")
    eq(send_get(c, "/2", [("Authorization", basic("two", "pw-two"))]).status, 200,
       "the last user, no final newline")
    eq(send_get(c, "/3", [("Authorization", basic("One", "pw-one"))]).status, 401,
       "'One' is not 'one'")
    eq(send_get(c, "/4", [("Authorization", basic("one", "pw-one\r"))]).status, 401,
       "the password with a CR after it")
    eq(dev_paths(dev), ["/1", "/2"], "requests at the device")


def cacheable(conn, req):
    body = ("private page %s" % req.target).encode()
    conn.send(response(200, headers=[("Cache-Control", "public, max-age=60"),
                                     ("Content-Type", "text/plain")], body=body))
    return True


@test("guard: Basic auth with cache=on: a response cached for an authorised request is "
      "never served to a request without (or with wrong) credentials")
def t_auth_cache_on(ctx):
    dev = ctx.device(cacheable)
    port = free_port()
    path, pws = users_file(ctx)
    start_px(ctx, ("listen 127.0.0.1:%d\nusers cams %s\npool p\ndevice p %s\n"
                   "route path=/cam pool=p auth=cams cache=on\nroute pool=p\n%s")
             % (port, path, dev.addr, TIMEOUTS), [port])
    alice = basic("alice", pws["alice"])
    c = client_from(ctx, "127.0.0.1", port)
    r = send_get(c, "/cam/snap", [("Authorization", alice)])
    eq((r.status, r.body), (200, b"private page /cam/snap"), "with credentials")
    r = send_get(c, "/cam/snap", [("Authorization", alice)])
    eq((r.status, r.body), (200, b"private page /cam/snap"), "again with credentials")
    r = send_get(c, "/cam/snap")
    eq(r.status, 401, "the same URL without credentials")
    check(b"private" not in r.body, "no cached body in the 401", None, r.body)
    r = send_get(c, "/cam/snap", [("Authorization", basic("alice", "wrong"))])
    eq(r.status, 401, "the same URL with a wrong password")
    check(b"private" not in r.body, "no cached body in the 401", None, r.body)
    eq(r.get("Age"), None, "the 401 is not a cache hit (no Age)")
    check(1 <= len(dev.requests) <= 2, "the device was asked once or twice", "1..2",
          len(dev.requests))


@test("guard: status page auth=: 401 with its own realm (also right after a route's 401 on "
      "the same connection) without credentials, 401 with wrong ones, 200 with right ones")
def t_auth_status(ctx):
    dev = ctx.device()
    port = free_port()
    text, pws = auth_conf(ctx, dev, port,
                          status='status path=/st allow=127.0.0.0/8 auth=cams realm="Status"')
    start_px(ctx, text, [port])
    c = client_from(ctx, STATUS_ADDR, port)
    r = send_get(c, "/cam/x")
    eq(r.get("WWW-Authenticate"), REALM_HDR, "a route's 401 names the route's realm")
    r = send_get(c, "/st")
    eq(r.status, 401, "status page without credentials")
    eq(r.get("WWW-Authenticate"), 'Basic realm="Status", charset="UTF-8"', "its challenge")
    check(b"accepted" not in r.body, "no status in the 401", None, r.body[:100])
    r = send_get(c, "/st", [("Authorization", basic("alice", "nope"))])
    eq(r.status, 401, "status page, wrong password")
    r = send_get(c, "/st", [("Authorization", basic("bob", pws["bob"]))])
    eq(r.status, 200, "status page with credentials (same connection)")
    st = json.loads(r.body)
    check(st["guard"]["auth_failures"] >= 2, "guard.auth_failures counts both 401s", ">= 2",
          st["guard"])
    eq(len(dev.requests), 0, "requests at the device")


# =====================================================================
# client_limit
# =====================================================================

@test("guard: client_limit conns=2: two keep-alive connections from 127.0.0.1 served, "
      "the third gets a bare 429 and is closed, 127.0.0.3 served, after a close a new "
      "one is served")
def t_limit_conns(ctx):
    dev = ctx.device()
    port = free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d\npool p\ndevice p %s\nroute pool=p\n"
                        "client_limit conns=2\nstatus path=/st\n%s")
                  % (port, dev.addr, TIMEOUTS), [port])
    c1 = client_from(ctx, "127.0.0.1", port)
    c2 = client_from(ctx, "127.0.0.1", port)
    eq(send_get(c1, "/a").status, 200, "first connection")
    eq(send_get(c2, "/b").status, 200, "second connection")
    c3 = client_from(ctx, "127.0.0.1", port)
    got = c3.read_until_close(timeout=3)
    check(got.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"), "third connection: 429",
          "HTTP/1.1 429 ...", got[:200])
    check(b"\r\nConnection: close\r\n" in got, "the 429 says Connection: close", None, got)
    head, _, body = got.partition(b"\r\n\r\n")
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n")
    check(m and int(m.group(1)) == len(body), "the 429's Content-Length matches its body",
          len(body), got)
    log_has(px, "client_limit conns=2: 127.0.0.1 has 2 open: refused")
    c4 = client_from(ctx, "127.0.0.3", port)
    eq(send_get(c4, "/c").status, 200, "127.0.0.3 meanwhile")
    eq(send_get(c1, "/a2").status, 200, "the first connection still works")
    c2.close()
    end = time.monotonic() + 5
    while True:         # rproxy sees the close on its next loop turn
        c5 = client_from(ctx, "127.0.0.1", port)
        c5.send(req_bytes("GET", "/d"))
        try:
            r = c5.read_response()
        except Exception:       # noqa: BLE001 -- the bare 429 + close, or a reset
            r = None
        if r is not None and r.status == 200:
            break
        if time.monotonic() > end:
            fail("a new connection after closing one", "200", r and r.status)
        c5.close()
        time.sleep(0.1)
    eq(sorted(dev_paths(dev)), ["/a", "/a2", "/b", "/c", "/d"], "requests at the device")
    g = guard(ctx, port)
    check(g["limit_conns"] >= 1, "status guard.limit_conns", ">= 1", g)


@test("guard: client_limit rate=5/s burst=5: 5 pipelined requests 200, the 6th 429 with "
      "Retry-After: 1 on a kept connection, 127.0.0.3 unaffected, the same connection "
      "served again after ~1 s")
def t_limit_rate_s(ctx):
    dev = ctx.device()
    port = free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d\npool p\ndevice p %s\nroute pool=p\n"
                        "client_limit rate=5/s burst=5\nstatus path=/st\n%s")
                  % (port, dev.addr, TIMEOUTS), [port])
    c = client_from(ctx, "127.0.0.1", port)
    c.send(b"".join(req_bytes("GET", "/r%d" % i) for i in range(6)))
    t0 = time.monotonic()
    rs = [c.read_response() for _ in range(6)]
    took = time.monotonic() - t0
    codes = [r.status for r in rs]
    if codes[5] == 200 and took > 0.15:
        fail("6 pipelined requests took %.2f s: a token came back meanwhile, "
             "the test proves nothing on a machine this slow" % took)
    eq(codes, [200] * 5 + [429], "statuses of 6 pipelined requests")
    eq(rs[5].get("Retry-After"), "1", "Retry-After on the 429")
    check("close" not in rs[5].conn_tokens(), "the 429 keeps the connection", None,
          rs[5].headers)
    log_has(px, "refused request: 429 Too Many Requests: client_limit rate= exceeded")
    c3 = client_from(ctx, "127.0.0.3", port)
    eq(send_get(c3, "/other").status, 200, "127.0.0.3 has its own bucket")
    time.sleep(1.1)
    eq(send_get(c, "/again").status, 200, "the same connection after 1.1 s")
    eq(sorted(dev_paths(dev)), sorted(["/r%d" % i for i in range(5)] + ["/other", "/again"]),
       "requests at the device")
    g = guard(ctx, port)
    eq(g["limit_rate"], 1, "status guard.limit_rate")


@test("guard: client_limit rate=5/m: the 6th and 7th requests get 429 with Retry-After "
      "11..12 (60 s / 5), the connection kept; a POST with a body then gets 429 and is closed")
def t_limit_rate_m(ctx):
    dev = ctx.device()
    port = free_port()
    start_px(ctx, ("listen 127.0.0.1:%d\npool p\ndevice p %s\nroute pool=p\n"
                   "client_limit rate=5/m\n%s") % (port, dev.addr, TIMEOUTS), [port])
    c = client_from(ctx, "127.0.0.1", port)
    codes = [send_get(c, "/m%d" % i).status for i in range(5)]
    eq(codes, [200] * 5, "the burst (default: the rate's N)")
    for i in (6, 7):
        r = send_get(c, "/m%d" % i)
        eq(r.status, 429, "request %d" % i)
        ra = r.get("Retry-After")
        check(ra in ("11", "12"), "Retry-After of request %d" % i, "11 or 12", ra)
        check("close" not in r.conn_tokens(), "the 429 keeps the connection", None, r.headers)
    r = send_get(c, "/m8", method="POST", body=b"y" * 64)
    eq(r.status, 429, "a POST with a body while limited")
    check("close" in r.conn_tokens(), "Connection: close (the body is not read)", "close",
          r.headers)
    expect_closed(c, "after the 429 to a POST with a body")
    eq(len(dev.requests), 5, "requests at the device")


@test("guard: client table full (RP_CLIENT_TABLE 64): with 64 addresses holding "
      "connections a 65th address is served untracked and counted in client_table_full",
      timeout=30.0)
def t_limit_table_full(ctx):
    dev = ctx.device()
    port = free_port()
    start_px(ctx, ("listen 127.0.0.1:%d\npool p\ndevice p %s\nroute pool=p\n"
                   "client_limit conns=1\nstatus path=/st\n%s")
             % (port, dev.addr, TIMEOUTS), [port])
    held = []
    for i in range(64):
        c = client_from(ctx, "127.0.1.%d" % (i + 1), port)
        eq(send_get(c, "/h%d" % i).status, 200, "connection from 127.0.1.%d" % (i + 1))
        held.append(c)
    c = client_from(ctx, "127.0.1.1", port)
    got = c.read_until_close(timeout=3)
    check(got.startswith(b"HTTP/1.1 429"), "127.0.1.1 is still tracked: a second "
          "connection gets 429", "HTTP/1.1 429 ...", got[:100])
    a = client_from(ctx, "127.0.2.1", port)
    eq(send_get(a, "/untracked").status, 200, "a 65th address with every entry busy")
    b = client_from(ctx, "127.0.2.1", port)
    eq(send_get(b, "/untracked2").status, 200,
       "its second connection (not tracked: conns= cannot count it)")
    held[5].close()
    time.sleep(0.2)
    g = guard(ctx, port)
    check(g["client_table_full"] >= 2, "status guard.client_table_full", ">= 2", g)


@test("guard: client_limit conns=1 on a TLS listener: a second TLS connection from the "
      "same address is closed without a handshake; another address is served")
def t_limit_conns_tls(ctx):
    ok, msg = T.tls_built()
    check(ok, "TLS compiled in", "TLS", msg)
    p = T.pki(ctx)
    dev = ctx.device()
    port = free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d tls\ntls cert=%s key=%s\npool p\ndevice p %s\n"
                        "route pool=p\nclient_limit conns=1\n%s")
                  % (port, p.a_crt, p.a_key, dev.addr, TIMEOUTS), [port])
    time.sleep(0.1)
    sc = T.ssl_context(ctx)
    c1 = Client(ctx, port=port, connect=False)
    c1.sock.bind(("127.0.0.1", 0))
    c1.sock.connect(("127.0.0.1", port))
    c1.sock = sc.wrap_socket(c1.sock, server_hostname="a.test")
    ctx.sockets.append(c1.sock)
    eq(send_get(c1, "/one").status, 200, "the first TLS connection")
    raw = client_from(ctx, "127.0.0.1", port)
    raw.send(T.raw_hello(), ignore_errors=True)
    check(raw.closed_within(3), "a second connection from 127.0.0.1: closed", "EOF", "open")
    log_has(px, "client_limit conns=1: 127.0.0.1 has 1 open: refused")
    c3 = Client(ctx, port=port, connect=False)
    c3.sock.bind(("127.0.0.3", 0))
    c3.sock.connect(("127.0.0.1", port))
    c3.sock = sc.wrap_socket(c3.sock, server_hostname="a.test")
    ctx.sockets.append(c3.sock)
    eq(send_get(c3, "/three").status, 200, "127.0.0.3 over TLS meanwhile")
    eq(send_get(c1, "/one-again").status, 200, "the first connection still served")
    eq(dev_paths(dev), ["/one", "/three", "/one-again"], "requests at the device")


# =====================================================================
# PROXY protocol
# =====================================================================

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src, dst="127.0.0.1", sport=40000, dport=80, cmd=0x21, fam=None):
    """A PROXY v2 header (cmd 0x21 PROXY, 0x20 LOCAL) for TCP over IPv4 or IPv6."""
    six = ":" in src
    a = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, src)
    b = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, dst)
    body = a + b + struct.pack("!HH", sport, dport)
    fam = fam if fam is not None else (0x21 if six else 0x11)
    return V2_SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def v2_with_tlvs(src, tlv_bytes):
    """A v2 PROXY header for TCP over IPv4 from src with tlv_bytes of NOOP TLVs
    (type 0x04) after the addresses."""
    h = v2_header(src)
    tlvs = b""
    left = tlv_bytes
    while left:
        k = min(left - 3, 60000) if left > 3 else None
        if k is None:
            fail("tlv_bytes must be 0 or >= 4")
        tlvs += bytes([0x04]) + struct.pack("!H", k) + b"\0" * k
        left -= 3 + k
    body = h[16:] + tlvs
    return h[:14] + struct.pack("!H", len(body)) + body


def start_haproxy(ctx, backends):
    """HAProxy in the foreground (tcp mode), one frontend per backend
    (name, target port, "send-proxy" | "send-proxy-v2"), its own address 127.0.0.2.
    Returns {name: frontend port}."""
    hp = shutil.which("haproxy")
    if not hp:
        fail("haproxy is not installed (Debian package haproxy)", "haproxy", "missing")
    ports = {}
    lines = ["global", "    maxconn 200", "defaults", "    mode tcp",
             "    timeout connect 2s", "    timeout client 20s", "    timeout server 20s"]
    for name, target, how in backends:
        ports[name] = free_port()
        lines += ["frontend f_%s" % name, "    bind 127.0.0.1:%d" % ports[name],
                  "    default_backend b_%s" % name, "backend b_%s" % name,
                  "    server s 127.0.0.1:%d %s source 127.0.0.2" % (target, how)]
    cfg = ctx.path("haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(ctx.path("haproxy.log"), "wb")
    p = subprocess.Popen([hp, "-db", "-f", cfg], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT)
    ctx.popens.append(p)
    for name, pt in ports.items():
        end = time.monotonic() + 10
        while True:
            if p.poll() is not None:
                with open(ctx.path("haproxy.log"), "rb") as f:
                    fail("haproxy exited with %s: %s" % (p.returncode, f.read()[-500:]))
            try:
                socket.create_connection(("127.0.0.1", pt), 0.5, (PROBE_ADDR, 0)).close()
                break
            except OSError:
                if time.monotonic() > end:
                    fail("haproxy does not accept on %d" % pt)
                time.sleep(0.05)
    return ports


def curl_code(ctx, *args):
    rc, out, err = ctx.curl("-s", "-o", "-", "-w", "\n%{http_code}", *args)
    body, _, code = out.rpartition(b"\n")
    return code.decode(), body, err


@test("guard: PROXY v1 and v2 from HAProxy (send-proxy, send-proxy-v2, source 127.0.0.2): "
      "the device sees X-Forwarded-For 127.0.0.5, the ACCESS line names 127.0.0.5; "
      "allow=127.0.0.5/32 passes through HAProxy, a direct client is refused",
      timeout=30.0)
def t_proxy_haproxy(ctx):
    dev = ctx.device()
    pport, dport = free_port(), free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d proxy_protocol proxy_from=127.0.0.2\n"
                        "listen 127.0.0.1:%d\npool p\ndevice p %s\n"
                        "route path=/only5 pool=p allow=127.0.0.5/32\nroute pool=p\n"
                        "status path=/st\n%s") % (pport, dport, dev.addr, TIMEOUTS),
                  [pport, dport])
    hp = start_haproxy(ctx, [("v1", pport, "send-proxy"), ("v2", pport, "send-proxy-v2")])
    time.sleep(0.2)     # the probes' connections through HAProxy are done with
    n0 = len(dev.requests)
    for ver in ("v1", "v2"):
        code, body, err = curl_code(ctx, "--interface", "127.0.0.5",
                                    "http://127.0.0.1:%d/%s" % (hp[ver], ver))
        eq(code, "200", "GET through HAProxy %s (curl: %s)" % (ver, err[-200:]))
        info = json.loads(body)
        eq(seen_header(info, "X-Forwarded-For"), ["127.0.0.5"],
           "X-Forwarded-For at the device (%s)" % ver)
        acc = access_lines(px, "/" + ver)
        eq([a[0] for a in acc], ["127.0.0.5"], "the ACCESS line's client (%s)" % ver)
        code, body, err = curl_code(ctx, "--interface", "127.0.0.5",
                                    "http://127.0.0.1:%d/only5/%s" % (hp[ver], ver))
        eq(code, "200", "allow=127.0.0.5/32 through HAProxy %s (HAProxy itself is 127.0.0.2)"
           % ver)
        code, body, err = curl_code(ctx, "--interface", "127.0.0.6",
                                    "http://127.0.0.1:%d/only5/%s-6" % (hp[ver], ver))
        eq(code, "403", "127.0.0.6 through HAProxy %s on allow=127.0.0.5/32" % ver)
    code, _, _ = curl_code(ctx, "--interface", "127.0.0.2",
                           "http://127.0.0.1:%d/only5/direct" % dport)
    eq(code, "403", "a direct client (HAProxy's address) on the plain listener")
    code, _, _ = curl_code(ctx, "--interface", "127.0.0.5",
                           "http://127.0.0.1:%d/only5/direct5" % dport)
    eq(code, "200", "127.0.0.5 directly on the plain listener")
    eq(dev_paths(dev)[n0:], ["/v1", "/only5/v1", "/v2", "/only5/v2", "/only5/direct5"],
       "requests at the device")
    g = guard(ctx, dport)
    eq(g["acl_denied"], 3, "status guard.acl_denied")


@test("guard: PROXY through HAProxy: client_limit conns=1 counts the header's address "
      "(a second connection from 127.0.0.5 gets 429, 127.0.0.6 is served)", timeout=30.0)
def t_proxy_limits(ctx):
    dev = ctx.device()
    pport = free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d proxy_protocol proxy_from=127.0.0.2\n"
                        "pool p\ndevice p %s\nroute pool=p\nclient_limit conns=1\n%s")
                  % (pport, dev.addr, TIMEOUTS), [pport])
    hp = start_haproxy(ctx, [("v2", pport, "send-proxy-v2")])
    time.sleep(0.3)     # the probe's connection through HAProxy is done with
    c1 = client_from(ctx, "127.0.0.5", hp["v2"])
    eq(send_get(c1, "/one").status, 200, "first connection from 127.0.0.5 through HAProxy")
    c2 = client_from(ctx, "127.0.0.5", hp["v2"])
    c2.send(req_bytes("GET", "/two"))
    try:
        got = c2.read_until_close(timeout=5)
    except socket.timeout:
        got = b"(still open)"
    check(got.startswith(b"HTTP/1.1 429"), "second connection from 127.0.0.5: 429",
          "HTTP/1.1 429 ...", got[:200])
    log_has(px, "client_limit conns=1: 127.0.0.5 has 1 open: refused")
    c3 = client_from(ctx, "127.0.0.6", hp["v2"])
    eq(send_get(c3, "/three").status, 200, "127.0.0.6 through the same HAProxy")
    eq(send_get(c1, "/one-again").status, 200, "the first connection still served")
    eq(dev_paths(dev), ["/one", "/three", "/one-again"], "requests at the device")


@test("guard: PROXY proxy_from=127.0.0.2: a valid header sent by hand from 127.0.0.1 is "
      "closed unread (untrusted, logged); the same from 127.0.0.2 is served with the "
      "header's address (v1, v2 IPv4, v2 IPv6, v2 LOCAL keeps the peer), which allow= "
      "checks")
def t_proxy_untrusted(ctx):
    dev = ctx.device()
    port, sport = free_port(), free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d proxy_protocol proxy_from=127.0.0.2/32\n"
                        "listen 127.0.0.1:%d\npool p\ndevice p %s\n"
                        "route path=/net6 pool=p allow=2001:db8::/32\nroute pool=p\n"
                        "status path=/st\n%s") % (port, sport, dev.addr, TIMEOUTS),
                  [port, sport])
    v1 = b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 80\r\n"
    c = client_from(ctx, "127.0.0.1", port)
    c.send(v1 + req_bytes("GET", "/untrusted"), ignore_errors=True)
    expect_closed(c, "a PROXY header from an address not in proxy_from=")
    log_has(px, "proxy_protocol: 127.0.0.1 is not in proxy_from=: closed")
    cases = [("v1", v1, "127.0.0.5"),
             ("v2 IPv4", v2_header("127.0.0.6"), "127.0.0.6"),
             ("v2 IPv6", v2_header("2001:db8::7", "2001:db8::1"), "2001:db8::7"),
             ("v2 LOCAL", v2_header("10.9.9.9", cmd=0x20), "127.0.0.2"),
             ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n", "127.0.0.2"),
             ("v2 IPv4-mapped IPv6", v2_header("::ffff:127.0.0.8", "::1"), "127.0.0.8"),
             ("v1 TCP6 ::ffff:a.b.c.d", b"PROXY TCP6 ::ffff:127.0.0.9 ::1 1 80\r\n",
              "127.0.0.9"),
             ("v1 of 104 bytes", b"PROXY TCP6 " + b":".join([b"ffff"] * 8) + b" "
              + b":".join([b"ffff"] * 8) + b" 65535 65535\r\n", ":".join(["ffff"] * 8)),
             ("v2 with 400 bytes of TLVs", v2_with_tlvs("127.0.0.10", 400), "127.0.0.10")]
    for label, hdr, want in cases:
        c = client_from(ctx, "127.0.0.2", port)
        path = "/t-" + label.replace(" ", "-")
        c.send(hdr + req_bytes("GET", path))
        r = c.read_response()
        eq(r.status, 200, "%s header from 127.0.0.2" % label)
        eq(seen_header(json.loads(r.body), "X-Forwarded-For"), [want],
           "X-Forwarded-For at the device (%s)" % label)
        eq([a[0] for a in access_lines(px, path)], [want], "ACCESS client (%s)" % label)
        eq(send_get(c, path + "-2").status, 200, "%s: a second request on it" % label)
    # allow= sees the header's IPv6 address
    for label, hdr, want in (("v2 IPv6 inside", v2_header("2001:db8::7", "2001:db8::1"), 200),
                             ("v1 IPv6 inside", b"PROXY TCP6 2001:db8:1::9 ::1 5 80\r\n", 200),
                             ("v2 IPv6 outside", v2_header("2001:db9::7", "2001:db8::1"), 403),
                             ("v1 IPv4", v1, 403)):
        c = client_from(ctx, "127.0.0.2", port)
        c.send(hdr + req_bytes("GET", "/net6"))
        eq(c.read_response().status, want, "allow=2001:db8::/32, %s" % label)
    check("/untrusted" not in dev_paths(dev), "the untrusted connection reached no device",
          None, dev_paths(dev))
    g = guard(ctx, sport)
    check(g["proxy_refused"] >= 1, "status guard.proxy_refused", ">= 1", g)


@test("guard: PROXY: plain HTTP without a header, v1 with a bad address, v1 without its "
      "CRLF, v2 with a bad version, v2 with a bad family, a header cut by a close -> "
      "closed with no answer, logged, never at the device")
def t_proxy_malformed(ctx):
    dev = ctx.device()
    port, sport = free_port(), free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d proxy_protocol\nlisten 127.0.0.1:%d\n"
                        "pool p\ndevice p %s\nroute pool=p\nstatus path=/st\n%s")
                  % (port, sport, dev.addr, TIMEOUTS), [port, sport])
    time.sleep(0.2)
    before = guard(ctx, sport)["proxy_refused"]
    good_v2 = v2_header("127.0.0.5")
    rows = [
        ("plain HTTP", req_bytes("GET", "/plain"), "no PROXY header"),
        ("v1 bad address", b"PROXY TCP4 127.0.0.256 127.0.0.1 40000 80\r\n"
         + req_bytes("GET", "/v1bad"), "malformed or too long PROXY header"),
        ("v1 IPv6 address in TCP4", b"PROXY TCP4 ::1 127.0.0.1 40000 80\r\n"
         + req_bytes("GET", "/v1fam"), "malformed or too long PROXY header"),
        ("v1 port 70000", b"PROXY TCP4 127.0.0.5 127.0.0.1 70000 80\r\n"
         + req_bytes("GET", "/v1port"), "malformed or too long PROXY header"),
        ("v1 without CRLF (120 bytes)", b"PROXY TCP4 " + b"1" * 109,
         "malformed or too long PROXY header"),
        ("v2 version 3", good_v2[:12] + b"\x31" + good_v2[13:] + req_bytes("GET", "/v2ver"),
         "malformed or too long PROXY header"),
        ("v2 family 0x71", good_v2[:13] + b"\x71" + good_v2[14:] + req_bytes("GET", "/v2fam"),
         "malformed or too long PROXY header"),
        ("v2 length too short for IPv4", good_v2[:14] + b"\x00\x04" + good_v2[16:20]
         + req_bytes("GET", "/v2len"), "malformed or too long PROXY header"),
        ("v2 of 16 + 600 bytes (over RP_PROXY_V2_MAX 512)", v2_with_tlvs("127.0.0.5", 588)
         + req_bytes("GET", "/v2big"), "malformed or too long PROXY header"),
        ("v1 lower case", b"proxy TCP4 127.0.0.5 127.0.0.1 40000 80\r\n"
         + req_bytes("GET", "/v1lc"), "no PROXY header"),
        ("v1 without its ports", b"PROXY TCP4 127.0.0.5 127.0.0.1\r\n"
         + req_bytes("GET", "/v1short"), "malformed or too long PROXY header"),
    ]
    for label, data, why in rows:
        c = client_from(ctx, "127.0.0.1", port)
        c.send(data, ignore_errors=True)
        try:
            closed = c.closed_within(3)
        except Exception as e:      # noqa: BLE001 -- bytes came back
            fail("%s: bytes came back: %s" % (label, e))
        check(closed, "%s: connection closed" % label, "EOF", "open")
        log_has(px, "proxy_protocol: %s from 127.0.0.1: closed" % why)
    c = client_from(ctx, "127.0.0.1", port)
    c.send(good_v2[:10])
    time.sleep(0.1)
    c.sock.shutdown(socket.SHUT_WR)
    check(c.closed_within(3), "a header cut short by the client's close", "EOF", "open")
    log_has(px, "proxy_protocol: connection closed inside its PROXY header from 127.0.0.1")
    eq(len(dev.requests), 0, "requests that reached the device")
    after = guard(ctx, sport)["proxy_refused"]
    eq(after - before, len(rows) + 1, "status guard.proxy_refused grew by the refusals")
    c = client_from(ctx, "127.0.0.1", port)
    c.send(good_v2 + req_bytes("GET", "/fine"))
    eq(c.read_response().status, 200, "a good header afterwards")
    # a good header a byte at a time (v2 and v1), the request after it
    for label, hdr, want in (("v2", v2_header("127.0.0.11"), "127.0.0.11"),
                             ("v1", b"PROXY TCP4 127.0.0.12 127.0.0.1 1 80\r\n",
                              "127.0.0.12")):
        c = client_from(ctx, "127.0.0.1", port)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k in range(len(hdr)):
            c.send(hdr[k:k + 1])
            time.sleep(0.005)
        c.send(req_bytes("GET", "/slow-" + label))
        r = c.read_response()
        eq(r.status, 200, "a %s header a byte at a time" % label)
        eq(seen_header(json.loads(r.body), "X-Forwarded-For"), [want],
           "X-Forwarded-For after a %s header a byte at a time" % label)
    check(px.alive(), "rproxy alive", "alive", "dead")


@test("guard: PROXY: a header begun and then stalled (v1, v2; plain and TLS listener) is "
      "closed after client_header with no HTTP answer, logged as proxy_protocol and counted",
      timeout=30.0)
def t_proxy_stalled(ctx):
    # (Found by this test: rproxy used to answer with a plaintext 408, also on a TLS
    # listener, and did not count it; the PROXY stage now has its own timeout path.)
    ok, msg = T.tls_built()
    check(ok, "TLS compiled in", "TLS", msg)
    p = T.pki(ctx)
    dev = ctx.device()
    port, tport, sport = free_port(), free_port(), free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d proxy_protocol\n"
                        "listen 127.0.0.1:%d tls proxy_protocol\nlisten 127.0.0.1:%d\n"
                        "tls cert=%s key=%s\npool p\ndevice p %s\nroute pool=p\n"
                        "status path=/st\ntimeout client_header=500 client_idle=800\n")
                  % (port, tport, sport, p.a_crt, p.a_key, dev.addr), [port, tport, sport])
    time.sleep(0.3)
    before = guard(ctx, sport)["proxy_refused"]
    rows = [("v2, plain listener", port, V2_SIG[:5]),
            ("v1, plain listener", port, b"PROXY TCP4 127.0.0.5"),
            ("v1, TLS listener", tport, b"PROXY TCP4 127.0.0.5"),
            ("v2, TLS listener", tport, v2_header("127.0.0.5")[:20])]
    problems = []
    for k, (label, pt, data) in enumerate(rows):
        c = client_from(ctx, "127.0.0.%d" % (60 + k), pt)
        c.send(data)
        try:
            got = c.read_until_close(timeout=5)
        except socket.timeout:
            got = None
        if got is None:
            problems.append("%s: still open 5 s after client_header=500" % label)
        elif got:
            problems.append("%s: answered %r" % (label, got[:40]))
        err = wait_stderr(px, lambda e: "from 127.0.0.%d: closed" % (60 + k) in e, 1.0)
        if "proxy_protocol: " not in err or "from 127.0.0.%d: closed" % (60 + k) not in err:
            problems.append("%s: no 'proxy_protocol: ... from 127.0.0.%d: closed' log line"
                            % (label, 60 + k))
    after = guard(ctx, sport)["proxy_refused"]
    if after - before != len(rows):
        problems.append("proxy_refused grew by %d, not %d" % (after - before, len(rows)))
    eq(problems, [], "stalled PROXY headers")
    eq(len(dev.requests), 0, "requests at the device")


def tls_after_header(ctx, port, header, path, src="127.0.0.2", timeout=5.0):
    """One HTTPS request on a TLS connection whose first write is header + the
    ClientHello together (one TCP segment).  Returns (status, head, body)."""
    sc = T.ssl_context(ctx)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = sc.wrap_bio(inc, out, server_hostname="a.test")
    s = socket.create_connection(("127.0.0.1", port), timeout, (src, 0))
    ctx.sockets.append(s)

    def feed():
        d = s.recv(65536)
        if not d:
            raise EOFError("rproxy closed the connection")
        inc.write(d)
    first = True
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            d = out.read()
            if first:
                s.sendall(header + d)
                first = False
            elif d:
                s.sendall(d)
            feed()
    s.sendall(out.read())
    obj.write(req_bytes("GET", path, headers=[("Connection", "close")]))
    s.sendall(out.read())
    got = b""
    while True:
        try:
            d = obj.read(65536)
            if not d:
                break
            got += d
        except ssl.SSLWantReadError:
            try:
                feed()
            except EOFError:
                break
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
    head, _, body = got.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d{3})", head)
    return (int(m.group(1)) if m else None), head, body


@test("guard: PROXY on a TLS listener: HAProxy tcp send-proxy-v2 and send-proxy in front, "
      "curl https through it: 200 and the device sees the original address; a header and "
      "the ClientHello in one segment (v1, v2); a ClientHello without a header is closed",
      timeout=40.0)
def t_proxy_tls(ctx):
    ok, msg = T.tls_built()
    check(ok, "TLS compiled in", "TLS", msg)
    p = T.pki(ctx)
    dev = ctx.device()
    tport, sport = free_port(), free_port()
    px = start_px(ctx, ("listen 127.0.0.1:%d tls proxy_protocol proxy_from=127.0.0.2\n"
                        "listen 127.0.0.1:%d\ntls cert=%s key=%s\npool p\ndevice p %s\n"
                        "route pool=p\nstatus path=/st\n%s")
                  % (tport, sport, p.a_crt, p.a_key, dev.addr, TIMEOUTS), [tport, sport])
    hp = start_haproxy(ctx, [("v2", tport, "send-proxy-v2"), ("v1", tport, "send-proxy")])
    for ver in ("v2", "v1"):
        rc, out, err = T.curl_tls(ctx, hp[ver], "/tls-" + ver,
                                  args=["--interface", "127.0.0.5", "-s", "-o", "-", "-w",
                                        "\n%{http_code}"])
        body, _, code = out.rpartition(b"\n")
        eq(code, b"200", "https through HAProxy %s (curl rc %s: %s)" % (ver, rc, err[-300:]))
        info = json.loads(body)
        eq(seen_header(info, "X-Forwarded-For"), ["127.0.0.5"],
           "X-Forwarded-For at the device (%s)" % ver)
        eq(seen_header(info, "X-Forwarded-Proto"), ["https"], "X-Forwarded-Proto (%s)" % ver)
        eq([a[0] for a in access_lines(px, "/tls-" + ver)], ["127.0.0.5"],
           "ACCESS client (%s)" % ver)
    for ver, hdr, want in (("v1", b"PROXY TCP4 127.0.0.21 127.0.0.1 3 443\r\n", "127.0.0.21"),
                           ("v2", v2_header("127.0.0.22"), "127.0.0.22"),
                           ("v2-tlv", v2_with_tlvs("127.0.0.23", 400), "127.0.0.23")):
        st, head, body = tls_after_header(ctx, tport, hdr, "/one-" + ver)
        eq(st, 200, "%s header and ClientHello in one write (head %r)" % (ver, head[:80]))
        eq(seen_header(json.loads(body), "X-Forwarded-For"), [want],
           "X-Forwarded-For (%s header + ClientHello together)" % ver)
    # a TLS ClientHello straight to the listener, no header: closed, never a handshake
    c = client_from(ctx, "127.0.0.2", tport)
    c.send(T.raw_hello(), ignore_errors=True)
    check(c.closed_within(3), "a ClientHello without a PROXY header: closed", "EOF", "open")
    log_has(px, "proxy_protocol: no PROXY header from 127.0.0.2: closed")
    eq(dev_paths(dev), ["/tls-v2", "/tls-v1", "/one-v1", "/one-v2", "/one-v2-tlv"],
       "requests at the device")


# =====================================================================
# users file errors
# =====================================================================

def check_conf(ctx, users_text, name="users"):
    """rproxy -t on a config whose `users u FILE` (line 2) is users_text (None: no such
    file).  Returns (rc, stderr, the config's path, the users file's path)."""
    up = ctx.path(name)
    if users_text is not None:
        with open(up, "w") as f:
            f.write(users_text)
    cp = ctx.path("c.conf")
    with open(cp, "w") as f:
        f.write("listen 127.0.0.1:8080\nusers u %s\npool p\ndevice p 127.0.0.1:9\n"
                "route pool=p auth=u\n" % up)
    rc, out, err = run_cli(ctx, ["-t", "-c", cp])
    return rc, err, cp, up


@test("guard: users file errors name the config line, the file and its line (no colon, "
      "unknown hash format, $1$, rounds= too high, a missing or unreadable file)")
def t_users_errors(ctx):
    good = openssl_hash("5", "pw")
    rows = [("no colon", "# c\nalice %s\n" % good, 2, "no ':'"),
            ("unknown format", "alice:%s\nbob:$7$abc$def\n" % good, 2, "unknown hash format"),
            ("MD5-crypt", "alice:%s\n\nbob:$1$abc$def\n" % good, 3, "$1$ (MD5-crypt)"),
            ("rounds too high", "alice:$6$rounds=99999999$salt$abc\n", 1,
             "RP_AUTH_MAX_ROUNDS")]
    for k, (label, content, line, word) in enumerate(rows):
        rc, err, cp, up = check_conf(ctx, content, "u%d" % k)
        want = "%s:2: users file '%s':%d: " % (cp, up[:40], line)
        check(rc == 1 and want in err and word in err, "%s: reported at the users line and "
              "the file's line" % label, "exit 1, %s...%s" % (want, word),
              "rc=%s %r" % (rc, err[-300:]))
    rc, err, cp, up = check_conf(ctx, None, "missing")
    check(rc == 1 and ("%s:2:" % cp) in err and "cannot read users file" in err,
          "a missing users file: FILE:2: cannot read users file", "exit 1, %s:2: ..." % cp,
          "rc=%s %r" % (rc, err[-300:]))
    dp = ctx.path("d.conf")
    with open(dp, "w") as f:        # a directory where the file should be: read fails
        f.write("listen 127.0.0.1:8080\nusers u %s\npool p\ndevice p 127.0.0.1:9\n"
                "route pool=p auth=u\n" % ctx.dir)
    rc, out, err = run_cli(ctx, ["-t", "-c", dp])
    check(rc == 1 and ("%s:2:" % dp) in err and "cannot read users file" in err,
          "a directory as the users file: FILE:2: cannot read users file",
          "exit 1, %s:2: ..." % dp, "rc=%s %r" % (rc, err[-300:]))
    if os.geteuid() == 0:
        ctx.note("root reads a mode-000 file: the mode-000 row is not run")
        return
    rc, err, cp, up = check_conf(ctx, "alice:%s\n" % good, "unreadable")
    os.chmod(up, 0)
    rc, out, err = run_cli(ctx, ["-t", "-c", cp])
    check(rc == 1 and ("%s:2:" % cp) in err and "cannot read users file" in err,
          "an unreadable users file: FILE:2: cannot read users file",
          "exit 1, %s:2: ..." % cp, "rc=%s %r" % (rc, err[-300:]))


@test("guard: users file errors keep their whole how-to-fix text (the $1$ and unknown-"
      "format hints end with '(openssl passwd -6)')")
def t_users_error_hint(ctx):
    # (Found by this test: rp_cfg_error.msg was 96 bytes and cut the hint; now 192.)
    for k, (content, hint) in enumerate(
            (("bob:$1$abc$def\n",
              "$1$ (MD5-crypt) is not supported: make a $6$ hash (openssl passwd -6)"),
             ("bob:$7$abc$def\n",
              "unknown hash format: rproxy takes $5$ and $6$ (openssl passwd -6)"))):
        rc, err, cp, up = check_conf(ctx, content, "h%d" % k)
        first = err.splitlines()[0] if err else ""
        check(rc == 1 and first.endswith("user 'bob': " + hint),
              "the message's first line ends with the whole hint",
              "...user 'bob': " + hint, first)

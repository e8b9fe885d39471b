"""t_tls.py -- TLS termination (issue 5): real clients (curl, openssl s_client, Python
ssl) against rproxy's TLS listeners, config errors, and fault cases.

Every test is named "TLS: ..." (run them with -k tls).  The test PKI is generated at
test time (tlsutil.py).  When rproxy was built without TLS (`rproxy -t` on a minimal TLS
config says "TLS not compiled in") every test here fails at once with
"# TLS not built" -- reported, never passed.

Listed in run.py's TOPICS; registers with checks.test like every topic file.
"""

import hashlib
import json
import os
import random
import re
import select
import socket
import ssl
import subprocess
import threading
import time

from checks import (check, dev_info, dispatch, eq, fail, pattern, req_bytes, run_cli,
                    seen_header, short, test)
from devserver import echo, response
from harness import DEVSIM, RPROXY, RPROXY_SMALL, Closed, RProxy, free_port
import tlsutil as T

AEAD_EC = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
           "ECDHE-ECDSA-CHACHA20-POLY1305"}
AEAD_RSA = {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305"}
# every TLS 1.2 CBC suite OpenSSL knows for EC and RSA keys (ECDHE and static RSA)
CBC_ONLY = ":".join([
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA",
    "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA384", "AES128-SHA", "AES256-SHA",
    "AES128-SHA256", "AES256-SHA256"])


# ==== plumbing ====

def need_tls():
    ok, msg = T.tls_built()
    if not ok:
        fail("# TLS not built (%s -t on a minimal TLS config: %r)" % (RPROXY, msg[:300]),
             "a TLS build", "TLS not compiled in")


def tls_test(name, **kw):
    """@test("TLS: " + name), failing as "TLS not built" when TLS is not compiled in."""
    def deco(fn):
        def wrapped(ctx):
            need_tls()
            return fn(ctx)
        wrapped.__name__ = fn.__name__
        wrapped.__doc__ = fn.__doc__
        test("TLS: " + name, **kw)(wrapped)
        return fn
    return deco


def tls_conf(ctx, devices=(), port=None, certs=None, listen_opts="", listens=(),
             timeouts=None, extra=(), sni_first=None):
    """A config with one TLS listener on 127.0.0.1:port (first line), `listens` extra
    listen lines, `tls` lines from certs [(crt, key, sni or None)] (default: a.test EC
    as the only certificate), one pool "p" of devices (Device or "HOST:PORT"), one
    route.  Returns (text, port)."""
    p = T.pki(ctx)
    port = port or free_port()
    lines = ["# generated for test: %s" % ctx.name,
             "listen 127.0.0.1:%d tls%s" % (port, (" " + listen_opts) if listen_opts else "")]
    lines += list(listens)
    for crt, key, sni in (certs if certs is not None else [(p.a_crt, p.a_key, None)]):
        lines.append("tls cert=%s key=%s%s" % (crt, key, (" sni=" + sni) if sni else ""))
    lines.append("pool p")
    for d in devices:
        lines.append("device p %s" % (d if isinstance(d, str) else d.addr))
    lines.append("route pool=p")
    t = {"client_header": 5000, "client_idle": 10000, "connect": 2000, "device": 5000,
         "device_idle": 10000}
    if timeouts:
        t.update(timeouts)
    lines.append("timeout " + " ".join("%s=%d" % kv for kv in t.items()))
    lines += list(extra)
    return "\n".join(lines) + "\n", port


def wait_port(px, port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not px.alive():
            fail("rproxy exited with %s during start-up: %s"
                 % (px.proc.returncode, " | ".join(px.stderr_tail(10))))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            s.close()
            return
        except OSError:
            s.close()
            time.sleep(0.02)
    fail("rproxy did not accept on port %d within %.0fs" % (port, timeout))


def start_tls(ctx, text, ports):
    """Start rproxy with config text; wait until every port in ports accepts.
    (harness.RProxy only waits for a bare `listen ADDR:PORT` line.)"""
    px = RProxy(ctx, text, args=["-g", "1000"], valgrind=ctx.valgrind, wait=False)
    for pt in ports:
        wait_port(px, pt, 30.0 if ctx.valgrind else 10.0)
    if ctx.proxy is None:
        ctx.proxy = px
        ctx.port = ports[0]
    return px


def start(ctx, devices=(), **kw):
    text, port = tls_conf(ctx, devices, **kw)
    px = start_tls(ctx, text, [port])
    return px, port


def start_devsim(ctx, size=None, name="sim"):
    if not os.path.exists(DEVSIM):
        fail("devsim binary missing: %s (make build/devsim)" % DEVSIM, "a binary", "missing")
    port = free_port()
    cmd = [DEVSIM, "-p", str(port), "-a", "127.0.0.1", "-n", name]
    if size is not None:
        cmd += ["-s", str(size)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx.popens.append(p)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return "127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.02)
    fail("devsim did not start")


def devsim_body(size, name="sim"):
    hello = ("hello from %s\n" % name).encode()
    return (hello + b"x" * max(0, size - len(hello)))[:size]


def sc_fail(what, r, expected=None):
    fail("%s\n  %s\n  $ %s\n%s" % (what, r.summary(), " ".join(r.cmd),
                                  "\n".join("    " + ln for ln in r.transcript().splitlines())),
         expected, r.summary())


def expect_handshake(r, what):
    if not r.handshake_ok:
        sc_fail(what + ": handshake failed", r, "a completed handshake")


def expect_refused(r, what):
    """The server refused the handshake -- and the client really tried."""
    if r.local_error:
        sc_fail(what + ": the client could not even offer this (test problem)", r,
                "a ClientHello sent")
    m = re.search(r"written (\d+) bytes", r.out)
    if m and int(m.group(1)) == 0:
        sc_fail(what + ": the client wrote nothing (test problem)", r, "a ClientHello sent")
    if r.handshake_ok:
        sc_fail(what + ": handshake succeeded, should be refused", r, "refused")


def curl_get(ctx, port, path="/", host="a.test", args=(), what="curl"):
    rc, out, err = T.curl_tls(ctx, port, path, host, args)
    if rc != 0:
        fail("%s https://%s:%d%s: curl exit %d: %s" % (what, host, port, path, rc, err.strip()),
             0, rc)
    return out, err


def curl_cipher(err):
    m = re.search(r"SSL connection using (\S+) / (\S+)", err)
    return (m.group(1), m.group(2)) if m else (None, None)


def wait_closed(sock, timeout):
    """Read until EOF/RST; returns (closed, seconds waited, bytes received)."""
    t0 = time.monotonic()
    got = b""
    end = t0 + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False, time.monotonic() - t0, got
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return False, time.monotonic() - t0, got
        except (ConnectionResetError, BrokenPipeError):
            return True, time.monotonic() - t0, got
        except OSError:
            return True, time.monotonic() - t0, got
        if not d:
            return True, time.monotonic() - t0, got
        got += d


def ka_request(c, path, host="a.test"):
    c.send(req_bytes("GET", path, host=host))
    r = c.read_response(timeout=10)
    eq(r.status, 200, "status of %s on the keep-alive TLS connection" % path)
    return r


def assert_serving(ctx, port, what, path="/after"):
    """A brand-new TLS client (curl) gets a normal answer."""
    out, err = curl_get(ctx, port, path, what="after " + what)
    try:
        info = json.loads(out)
    except ValueError:
        fail("after %s: body is not the device's echo" % what, "JSON", short(out))
    eq(info["target"], path, "after %s: target at the device" % what)


# =====================================================================
# basic forwarding over TLS
# =====================================================================

def bin_and_echo(body):
    return dispatch({"/bin": lambda c, r: c.send(response(
        200, headers=[("Content-Type", "application/octet-stream")], body=body)) or True})


@tls_test("curl GET, EC P-256 cert: byte-exact body, TLS 1.2 AEAD suite, "
          "device sees X-Forwarded-Proto: https (client's value replaced)", valgrind=True)
def t_tls_get_ec(ctx):
    body = pattern(200000)
    dev = ctx.device(bin_and_echo(body))
    _, port = start(ctx, [dev])
    out, err = curl_get(ctx, port, "/bin?x=1", args=["-v"])
    eq(len(out), len(body), "body length")
    check(out == body, "body byte-exact", hashlib.sha256(body).hexdigest(),
          hashlib.sha256(out).hexdigest())
    proto, cipher = curl_cipher(err)
    eq(proto, "TLSv1.2", "protocol (curl -v)")
    check(cipher in AEAD_EC, "cipher is ECDHE-ECDSA with AES-GCM or ChaCha20-Poly1305",
          sorted(AEAD_EC), cipher)
    out, err = curl_get(ctx, port, "/echo", args=["-H", "X-Forwarded-Proto: http"])
    info = json.loads(out)
    eq(seen_header(info, "X-Forwarded-Proto"), ["https"], "X-Forwarded-Proto at the device")
    eq(info["target"], "/echo", "target at the device")
    eq(seen_header(info, "Host"), ["a.test:%d" % port], "Host at the device")


@tls_test("curl GET, RSA 2048 cert (only certificate): byte-exact body, ECDHE-RSA AEAD")
def t_tls_get_rsa(ctx):
    p = T.pki(ctx)
    body = pattern(100001)
    dev = ctx.device(bin_and_echo(body))
    _, port = start(ctx, [dev], certs=[(p.b_crt, p.b_key, None)])
    out, err = curl_get(ctx, port, "/bin", host="b.test", args=["-v"])
    check(out == body, "body byte-exact", len(body), len(out))
    proto, cipher = curl_cipher(err)
    eq(proto, "TLSv1.2", "protocol")
    check(cipher in AEAD_RSA, "cipher is ECDHE-RSA AEAD", sorted(AEAD_RSA), cipher)
    out, _ = curl_get(ctx, port, "/echo", host="b.test")
    eq(seen_header(json.loads(out), "X-Forwarded-Proto"), ["https"], "X-Forwarded-Proto")
    r = T.s_client(ctx, port, servername="b.test", verify_host="b.test")
    expect_handshake(r, "s_client to the RSA listener")
    eq(r.key_bits, 2048, "server public key bits")
    check(r.verified, "chain verifies against the test CA with host b.test", "verify 0",
          (r.verify_code, r.verify_msg))


@tls_test("curl GET, EC P-384 cert (PKCS#8 key): handshake and body")
def t_tls_get_p384(ctx):
    p = T.pki(ctx)
    dev = ctx.device()
    _, port = start(ctx, [dev], certs=[(p.c_crt, p.c_key, None)])
    out, err = curl_get(ctx, port, "/p384", host="c.test", args=["-v"])
    eq(json.loads(out)["target"], "/p384", "target at the device")
    proto, cipher = curl_cipher(err)
    check(cipher in AEAD_EC, "ECDHE-ECDSA AEAD suite", sorted(AEAD_EC), cipher)
    r = T.s_client(ctx, port, servername="c.test", verify_host="c.test")
    expect_handshake(r, "s_client to the P-384 listener")
    eq(r.key_bits, 384, "server public key bits")
    check(r.verified, "chain verifies", "verify 0", (r.verify_code, r.verify_msg))


@tls_test("plain and TLS listeners in one config: X-Forwarded-Proto http vs https")
def t_tls_mixed_listeners(ctx):
    dev = ctx.device()
    plain = free_port()
    text, port = tls_conf(ctx, [dev], listens=["listen 127.0.0.1:%d" % plain])
    start_tls(ctx, text, [port, plain])
    out, _ = curl_get(ctx, port, "/s")
    eq(seen_header(json.loads(out), "X-Forwarded-Proto"), ["https"], "over TLS")
    rc, out, err = ctx.curl("-H", "X-Forwarded-Proto: https",
                            "http://127.0.0.1:%d/p" % plain)
    eq(rc, 0, "plain curl (%s)" % err.strip())
    eq(seen_header(json.loads(out), "X-Forwarded-Proto"), ["http"],
       "over the plain listener (client's 'https' replaced)")


@tls_test("PEM chain: the intermediate is sent; a client with only the root verifies")
def t_tls_chain(ctx):
    p = T.pki(ctx)
    dev = ctx.device()
    _, port = start(ctx, [dev], certs=[(p.i_chain, p.i_key, None)])
    r = T.s_client(ctx, port, servername="i.test", verify_host="i.test")
    expect_handshake(r, "s_client")
    eq(len(r.chain), 2, "certificates sent (leaf + intermediate): %r" % (r.chain,))
    check("i.test" in r.chain[0][0] and "intermediate" in r.chain[1][0],
          "chain order leaf, intermediate", "i.test, intermediate", r.chain)
    check(r.verified, "verifies against the root only", "verify 0",
          (r.verify_code, r.verify_msg))
    out, _ = curl_get(ctx, port, "/chain", host="i.test")
    eq(json.loads(out)["target"], "/chain", "curl through the chained cert")


# =====================================================================
# SNI
# =====================================================================

def cn(subject):
    m = re.search(r"CN\s*=\s*([^,/]+)", subject or "")
    return m.group(1).strip() if m else None


@tls_test("SNI: a.test and b.test get their own certificate; unknown name and no SNI "
          "get the first (default) one, whichever comes first")
def t_tls_sni(ctx):
    p = T.pki(ctx)
    dev = ctx.device()
    _, port = start(ctx, [dev], certs=[(p.a_crt, p.a_key, "a.test"),
                                       (p.b_crt, p.b_key, "b.test")])
    for name, want, bits in (("a.test", "a.test", 256), ("b.test", "b.test", 2048),
                             ("zzz.test", "a.test", 256), (None, "a.test", 256)):
        r = T.s_client(ctx, port, servername=name, no_servername=name is None,
                       verify_host=want)
        expect_handshake(r, "SNI %r" % name)
        eq(cn(r.subject), want, "certificate subject CN for SNI %r" % name)
        eq(cn(r.issuer), "rproxy test CA", "issuer CN for SNI %r" % name)
        eq(r.key_bits, bits, "server key bits for SNI %r" % name)
        check(r.verified, "SNI %r: chain verifies for %s" % (name, want), "verify 0",
              (r.verify_code, r.verify_msg))
    out, _ = curl_get(ctx, port, "/b", host="b.test")
    eq(json.loads(out)["target"], "/b", "curl to b.test")
    # the same with b.test first: now b is the default
    _, port2 = start(ctx, [dev], certs=[(p.b_crt, p.b_key, "b.test"),
                                        (p.a_crt, p.a_key, "a.test")])
    for name, want in (("a.test", "a.test"), ("zzz.test", "b.test"), (None, "b.test")):
        r = T.s_client(ctx, port2, servername=name, no_servername=name is None)
        expect_handshake(r, "b-first config, SNI %r" % name)
        eq(cn(r.subject), want, "b-first config: subject CN for SNI %r" % name)


@tls_test("SNI: host names match case-insensitively (B.TEST gets b.test)")
def t_tls_sni_case(ctx):
    p = T.pki(ctx)
    dev = ctx.device()
    _, port = start(ctx, [dev], certs=[(p.a_crt, p.a_key, "a.test"),
                                       (p.b_crt, p.b_key, "b.test")])
    r = T.s_client(ctx, port, servername="B.TEST")
    expect_handshake(r, "SNI B.TEST")
    eq(cn(r.subject), "b.test", "subject CN for SNI B.TEST")


# =====================================================================
# ALPN, versions, suites, groups
# =====================================================================

@tls_test("ALPN: h2,http/1.1 -> http/1.1; h2 alone never gets h2; none -> none; "
          "curl --http2 speaks HTTP/1.1")
def t_tls_alpn(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev])
    r = T.s_client(ctx, port, servername="a.test", alpn="h2,http/1.1")
    expect_handshake(r, "ALPN h2,http/1.1")
    eq(r.alpn, "http/1.1", "ALPN protocol for h2,http/1.1")
    r = T.s_client(ctx, port, servername="a.test", alpn="http/1.1")
    expect_handshake(r, "ALPN http/1.1")
    eq(r.alpn, "http/1.1", "ALPN protocol for http/1.1")
    r = T.s_client(ctx, port, servername="a.test", alpn="h2")
    check(r.alpn != "h2", "h2 alone is never selected", "no ALPN or a refusal", r.summary())
    r = T.s_client(ctx, port, servername="a.test")
    expect_handshake(r, "no ALPN")
    check(r.alpn is None and r.no_alpn, "no ALPN offered -> none negotiated",
          "No ALPN negotiated", r.alpn)
    rc, out, err = T.curl_tls(ctx, port, "/h2", args=["--http2", "-w", "\n%{http_version}"])
    eq(rc, 0, "curl --http2 exit (%s)" % err.strip())
    eq(out.rsplit(b"\n", 1)[-1], b"1.1", "HTTP version curl ended up with")


@tls_test("versions: default profile negotiates TLS 1.2; TLS 1.0, 1.1 and 1.3-only "
          "clients are refused")
def t_tls_versions(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev])
    r = T.s_client(ctx, port, servername="a.test")          # offers 1.3 and 1.2
    expect_handshake(r, "default client")
    eq(r.protocol, "TLSv1.2", "negotiated protocol")
    for v in ("tls1", "tls1_1", "tls1_3"):
        r = T.s_client(ctx, port, servername="a.test", version=v)
        expect_refused(r, "-%s client" % v)
    assert_serving(ctx, port, "refused handshakes")


@tls_test("cipher policy: CBC-only and static-RSA clients refused; server preference; "
          "X25519 and P-256 key exchange")
def t_tls_ciphers(ctx):
    p = T.pki(ctx)
    dev = ctx.device()
    _, port = start(ctx, [dev], certs=[(p.a_crt, p.a_key, "a.test"),
                                       (p.b_crt, p.b_key, "b.test")])
    r = T.s_client(ctx, port, servername="a.test", version="tls1_2", cipher="AES128-SHA")
    expect_refused(r, "-tls1_2 -cipher AES128-SHA")
    for name in ("a.test", "b.test"):
        r = T.s_client(ctx, port, servername=name, version="tls1_2", cipher=CBC_ONLY)
        expect_refused(r, "CBC-only client (%s)" % name)
    r = T.s_client(ctx, port, servername="b.test", version="tls1_2",
                   cipher="AES128-GCM-SHA256:AES256-GCM-SHA384")
    expect_refused(r, "static RSA (no ECDHE) AES-GCM client")
    # server preference: the client's order does not change the choice
    for name, kind in (("a.test", "ECDSA"), ("b.test", "RSA")):
        s1 = "ECDHE-%s-CHACHA20-POLY1305:ECDHE-%s-AES128-GCM-SHA256:ECDHE-%s-AES256-GCM-SHA384" \
            % (kind, kind, kind)
        s2 = ":".join(reversed(s1.split(":")))
        r1 = T.s_client(ctx, port, servername=name, version="tls1_2", cipher=s1)
        r2 = T.s_client(ctx, port, servername=name, version="tls1_2", cipher=s2)
        expect_handshake(r1, "%s, client order %s" % (name, s1))
        expect_handshake(r2, "%s, client order %s" % (name, s2))
        eq(r1.cipher, r2.cipher, "%s: the server's preference decides (client orders %s / %s)"
           % (name, s1, s2))
        check(r1.cipher in AEAD_EC | AEAD_RSA, "AEAD suite", "AEAD", r1.cipher)
    # key exchange groups.  In TLS 1.2 the client's supported_groups also bounds the
    # curve of an ECDSA certificate, so single-group offers go to the RSA cert (b.test).
    r = T.s_client(ctx, port, servername="b.test", groups="X25519")
    expect_handshake(r, "-groups X25519")
    check((r.temp_key or "").startswith("X25519"), "X25519 key exchange", "X25519",
          r.temp_key)
    r = T.s_client(ctx, port, servername="b.test", groups="P-256")
    expect_handshake(r, "-groups P-256")
    check("prime256v1" in (r.temp_key or "") or "P-256" in (r.temp_key or ""),
          "P-256 key exchange", "ECDH, prime256v1", r.temp_key)
    r = T.s_client(ctx, port, servername="a.test", groups="P-256")
    expect_handshake(r, "EC cert, -groups P-256")
    check("prime256v1" in (r.temp_key or "") or "P-256" in (r.temp_key or ""),
          "P-256 key exchange with the EC cert", "ECDH, prime256v1", r.temp_key)


@tls_test("tls_profile=compat: TLS 1.0, 1.1 and a CBC-only TLS 1.2 client accepted")
def t_tls_compat(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev], listen_opts="tls_profile=compat")
    for v, want in (("tls1", "TLSv1"), ("tls1_1", "TLSv1.1")):
        r = T.s_client(ctx, port, servername="a.test", version=v)
        expect_handshake(r, "compat profile, -%s" % v)
        eq(r.protocol, want, "negotiated protocol for -%s" % v)
    r = T.s_client(ctx, port, servername="a.test", version="tls1_2", cipher=CBC_ONLY)
    expect_handshake(r, "compat profile, CBC-only TLS 1.2 client")
    check("SHA" in r.cipher and "GCM" not in r.cipher, "a CBC suite", "CBC", r.cipher)
    r = T.s_client(ctx, port, servername="a.test")
    expect_handshake(r, "compat profile, modern client")
    eq(r.protocol, "TLSv1.2", "modern client still gets TLS 1.2")
    check(r.cipher in AEAD_EC, "modern client still gets an AEAD suite", sorted(AEAD_EC),
          r.cipher)
    # and HTTP works over TLS 1.0 (s_client, raw request)
    r = T.s_client(ctx, port, servername="a.test", version="tls1", extra=["-quiet"],
                   input=b"GET /old HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    check(b'"target": "/old"' in r.out.encode(), "response over TLS 1.0", '"/old" echo',
          r.out[-400:])


@tls_test("tls_profile=modern is the default spelled out")
def t_tls_modern_explicit(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev], listen_opts="tls_profile=modern")
    r = T.s_client(ctx, port, servername="a.test", version="tls1_1")
    expect_refused(r, "modern profile, -tls1_1")
    assert_serving(ctx, port, "a refused TLS 1.1 client")


# =====================================================================
# resumption, keep-alive, bodies
# =====================================================================

@tls_test("session-ID resumption: -sess_out then -sess_in shows Reused (no tickets)")
def t_tls_resume(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev])
    sess = ctx.path("sess.pem")
    r1 = T.s_client(ctx, port, servername="a.test", sess_out=sess, extra=["-no_ticket"])
    expect_handshake(r1, "first connection")
    eq(r1.session_kind, "New", "first connection is a new session")
    check(bool(r1.session_id), "server assigned a session ID", "non-empty Session-ID",
          r1.session_id)
    for i in range(2):
        r2 = T.s_client(ctx, port, servername="a.test", sess_in=sess, extra=["-no_ticket"])
        expect_handshake(r2, "resumed connection %d" % (i + 1))
        if not r2.reused:
            sc_fail("connection %d with -sess_in was not resumed" % (i + 1), r2, "Reused")
        eq(r2.session_id, r1.session_id, "same session ID")
    # the resumed session carries HTTP too
    r3 = T.s_client(ctx, port, servername="a.test", sess_in=sess,
                    extra=["-no_ticket", "-quiet"],
                    input=b"GET /resumed HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    check('"target": "/resumed"' in r3.out, "HTTP over a resumed session", "/resumed echo",
          r3.out[-300:])


@tls_test("keep-alive over TLS: curl two URLs on one connection; raw client 3 requests "
          "+ 3 pipelined", valgrind=True)
def t_tls_keepalive(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev])
    rc, out, err = ctx.curl(*(T.curl_args(ctx, port) + [
        "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n",
        T.https_url(port, "/k1"), T.https_url(port, "/k2")]))
    eq(rc, 0, "curl exit (%s)" % err.strip())
    eq(out.split(), [b"1", b"0"], "new connections per URL (curl %{num_connects})")
    c = T.tls_client(ctx, port)
    for i in range(3):
        r = ka_request(c, "/r%d" % i)
        eq(dev_info(r)["target"], "/r%d" % i, "response %d" % i)
    c.send(b"".join(req_bytes("GET", "/p%d" % i, host="a.test") for i in range(3)))
    for i in range(3):
        r = c.read_response(timeout=10)
        eq(dev_info(r)["target"], "/p%d" % i, "pipelined response %d in order" % i)
        eq(seen_header(dev_info(r), "X-Forwarded-Proto"), ["https"], "X-Forwarded-Proto")


def upload_handler(conn, req):
    if req.get("Expect", "").lower() == "100-continue":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    if not req.body_complete:
        conn.read_body(req)
    return echo(conn, req)


@tls_test("8 MiB POST upload over TLS arrives byte-exact (sha256)", timeout=90)
def t_tls_upload(ctx):
    dev = ctx.device(upload_handler)
    _, port = start(ctx, [dev])
    n = 8 << 20
    body = pattern(n)
    f = ctx.path("up.bin")
    with open(f, "wb") as fh:
        fh.write(body)
    out, _ = curl_get(ctx, port, "/up", args=["-H", "Content-Type: application/octet-stream",
                                              "--data-binary", "@" + f])
    info = json.loads(out)
    eq(info["method"], "POST", "method")
    eq(info["body_len"], n, "body length at the device")
    eq(info["body_sha256"], hashlib.sha256(body).hexdigest(), "body sha256 at the device")


@tls_test("8 MiB download over TLS (devsim -s 8388608) byte-exact", timeout=90)
def t_tls_download_devsim(ctx):
    n = 8 << 20
    addr = start_devsim(ctx, n)
    _, port = start(ctx, [addr])
    f = ctx.path("down.bin")
    curl_get(ctx, port, "/big", args=["-o", f])
    with open(f, "rb") as fh:
        got = fh.read()
    eq(len(got), n, "bytes received")
    check(got == devsim_body(n), "body byte-exact", hashlib.sha256(devsim_body(n)).hexdigest(),
          hashlib.sha256(got).hexdigest())


@tls_test("8 MiB pseudo-random download over TLS (Content-Length and chunked) byte-exact",
          timeout=90)
def t_tls_download_random(ctx):
    n = 8 << 20
    body = pattern(n)

    def chunked(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        step = 100003
        for i in range(0, n, step):
            part = body[i:i + step]
            conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
        conn.send(b"0\r\n\r\n")
        return True

    dev = ctx.device(dispatch({
        "/cl": lambda c, r: c.send(response(200, body=body)) or True,
        "/chunked": chunked}))
    _, port = start(ctx, [dev])
    for path in ("/cl", "/chunked"):
        f = ctx.path("down%s.bin" % path.replace("/", "-"))
        curl_get(ctx, port, path, args=["-o", f])
        with open(f, "rb") as fh:
            got = fh.read()
        eq(len(got), n, "%s: bytes received" % path)
        check(got == body, "%s: body byte-exact" % path, hashlib.sha256(body).hexdigest(),
              hashlib.sha256(got).hexdigest())


@tls_test("max_fragment_length: a client offering 512 gets it; 300 KB arrives intact "
          "in small records")
def t_tls_maxfrag(ctx):
    body = pattern(300000)
    dev = ctx.device(bin_and_echo(body))
    _, port = start(ctx, [dev])
    r = T.s_client(ctx, port, servername="a.test", extra=["-maxfraglen", "512",
                                                          "-tlsextdebug"])
    expect_handshake(r, "-maxfraglen 512")
    check('"max fragment length" (id=1)' in r.out + r.err,
          "server acknowledged max_fragment_length", "ServerHello extension id=1",
          r.transcript(60))
    # OpenSSL rejects records longer than the negotiated 512 bytes
    pr = subprocess.run([T.OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                         "-servername", "a.test", "-maxfraglen", "512", "-quiet",
                         "-CAfile", T.pki(ctx).ca],
                        input=b"GET /bin HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    head, _, got = pr.stdout.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200"), "status line", "HTTP/1.1 200",
          short(pr.stdout[:200]) + " stderr: " + pr.stderr.decode("utf-8", "replace")[-300:])
    eq(len(got), len(body), "body length with 512-byte records (stderr: %s)"
       % pr.stderr.decode("utf-8", "replace")[-300:])
    check(got == body, "body byte-exact", "same", "differs")


@tls_test("32 concurrent TLS clients, 5 keep-alive requests each, every answer right",
          timeout=60)
def t_tls_concurrent(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev])
    errors = []

    def one(k):
        try:
            c = T.tls_client(ctx, port, timeout=15)
            for i in range(5):
                path = "/c%d/%d" % (k, i)
                r = ka_request(c, path)
                if dev_info(r)["target"] != path:
                    errors.append("client %d got %r for %s" % (k, dev_info(r)["target"], path))
            c.close()
        except Exception as e:      # noqa: BLE001
            errors.append("client %d: %r" % (k, e))

    ths = [threading.Thread(target=one, args=(k,)) for k in range(32)]
    for th in ths:
        th.start()
    for th in ths:
        th.join(40)
    eq(errors[:5], [], "client errors (%d in all)" % len(errors))


# =====================================================================
# redirect_https
# =====================================================================

def redirect_case(ctx, port, path, host):
    c = ctx.client(port=port)
    c.send(req_bytes("GET", path, host=host))
    r = c.read_response(timeout=5)
    return r


@tls_test("redirect_https: 301 to https://HOST:TLSPORT/path?q; curl -L follows it; "
          "device untouched by the redirect")
def t_tls_redirect(ctx):
    dev = ctx.device()
    plain = free_port()
    text, port = tls_conf(ctx, [dev], listens=["listen 127.0.0.1:%d redirect_https" % plain])
    start_tls(ctx, text, [port, plain])
    for host in ("a.test", "a.test:%d" % plain):
        r = redirect_case(ctx, plain, "/some/path?q=1&r=%20x", host)
        eq(r.status, 301, "status for Host %s" % host)
        hn = host.split(":")[0]
        eq(r.get("Location"), "https://%s:%d/some/path?q=1&r=%%20x" % (hn, port),
           "Location for Host %s" % host)
    eq(len(dev.requests), 0, "requests that reached the device")
    rc, out, err = ctx.curl("-L", "--cacert", T.pki(ctx).ca,
                            "--resolve", "a.test:%d:127.0.0.1" % plain,
                            "--resolve", "a.test:%d:127.0.0.1" % port,
                            "-w", "\n%{num_redirects} %{url_effective}",
                            "http://a.test:%d/follow?x=1" % plain)
    eq(rc, 0, "curl -L exit (%s)" % err.strip())
    body, _, tail = out.rpartition(b"\n")
    eq(tail.decode(), "1 https://a.test:%d/follow?x=1" % port, "redirects and final URL")
    info = json.loads(body)
    eq(info["target"], "/follow?x=1", "target at the device")
    eq(seen_header(info, "X-Forwarded-Proto"), ["https"], "X-Forwarded-Proto")


@tls_test("redirect_https=PORT: explicit port in Location; port omitted for 443")
def t_tls_redirect_port(ctx):
    dev = ctx.device()
    p1, p2 = free_port(), free_port()
    text, port = tls_conf(ctx, [dev], listens=[
        "listen 127.0.0.1:%d redirect_https=8443" % p1,
        "listen 127.0.0.1:%d redirect_https=443" % p2])
    start_tls(ctx, text, [port, p1, p2])
    r = redirect_case(ctx, p1, "/x?y", "a.test:%d" % p1)
    eq(r.status, 301, "status (redirect_https=8443)")
    eq(r.get("Location"), "https://a.test:8443/x?y", "Location (redirect_https=8443)")
    r = redirect_case(ctx, p2, "/x?y", "a.test:%d" % p2)
    eq(r.status, 301, "status (redirect_https=443)")
    eq(r.get("Location"), "https://a.test/x?y", "Location (redirect_https=443)")
    eq(len(dev.requests), 0, "requests that reached the device")


@tls_test("redirect_https: IPv6 literal Host [::1]:PORT keeps its brackets")
def t_tls_redirect_ipv6(ctx):
    dev = ctx.device()
    plain = free_port()
    text, port = tls_conf(ctx, [dev], listens=["listen 127.0.0.1:%d redirect_https" % plain])
    start_tls(ctx, text, [port, plain])
    r = redirect_case(ctx, plain, "/v6", "[::1]:%d" % plain)
    eq(r.status, 301, "status")
    eq(r.get("Location"), "https://[::1]:%d/v6" % port, "Location")


# =====================================================================
# configuration
# =====================================================================

def _bad_tls_confs(p):
    a, b = p.a_crt, p.a_key
    base = "listen 127.0.0.1:8443 tls\n%s\npool p\ndevice p 127.0.0.1:9001\nroute pool=p\n"
    miss = os.path.join(p.dir, "missing.pem")
    return [
        ("missing cert file", 2, base % ("tls cert=%s key=%s" % (miss, b))),
        ("missing key file", 2, base % ("tls cert=%s key=%s" % (a, miss))),
        ("key does not match the certificate (EC/EC)", 2,
         base % ("tls cert=%s key=%s" % (a, p.bad_key))),
        ("key does not match the certificate (RSA key, EC cert)", 2,
         base % ("tls cert=%s key=%s" % (a, p.b_key))),
        ("mismatch on the second tls line", 3,
         base % ("tls cert=%s key=%s\ntls cert=%s key=%s sni=b.test"
                 % (a, b, p.b_crt, p.a_key))),
        ("cert file is not PEM", 2, base % ("tls cert=%s key=%s" % (p.garbage, b))),
        ("cert file is empty", 2, base % ("tls cert=%s key=%s" % (p.empty, b))),
        ("key file is not PEM", 2, base % ("tls cert=%s key=%s" % (a, p.garbage))),
        ("key file is a certificate", 2, base % ("tls cert=%s key=%s" % (a, a))),
        ("RSA 1024 certificate", 2, base % ("tls cert=%s key=%s" % (p.weak_crt, p.weak_key))),
        ("tls line without key=", 2, base % ("tls cert=%s" % a)),
        ("unknown option on a tls line", 2,
         base % ("tls cert=%s key=%s colour=blue" % (a, b))),
        ("unknown tls_profile", 1,
         ("listen 127.0.0.1:8443 tls tls_profile=legacy\ntls cert=%s key=%s\npool p\n"
          "device p 127.0.0.1:9001\nroute pool=p\n") % (a, b)),
        ("bad handshake timeout", 6,
         base % ("tls cert=%s key=%s" % (a, b)) + "timeout handshake=soon\n"),
    ]


def make_bad_tls(idx):
    def fn(ctx):
        label, line, text = _bad_tls_confs(T.pki(ctx))[idx]
        path = ctx.path("bad.conf")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run_cli(ctx, ["-t", "-c", path])
        check(rc != 0, "%s: exit status" % label, "1", (rc, err.strip()))
        check("%s:%d:" % (path, line) in err, "%s: stderr names FILE:LINE:" % label,
              "%s:%d: ..." % (path, line), err.strip())
        eq(rc, 1, "%s: exit status" % label)
    return fn


# labels only need the PKI paths' shape, not the files
for _i, (_label, _line, _t) in enumerate(_bad_tls_confs(T.PKI("/nonexistent"))):
    tls_test("config error (%s) -> FILE:%d: and exit 1" % (_label, _line))(make_bad_tls(_i))


@tls_test("config error: a tls listener without any tls certificate line")
def t_tls_conf_nocert(ctx):
    path = ctx.path("nocert.conf")
    with open(path, "w") as f:
        f.write("listen 127.0.0.1:8443 tls\npool p\ndevice p 127.0.0.1:9001\nroute pool=p\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    eq(rc, 1, "exit status (stderr %r)" % err.strip())
    check(path in err, "stderr names the file", path, err.strip())


@tls_test("config error when running (not -t): mismatched key -> FILE:LINE:, exit 1")
def t_tls_conf_run_mismatch(ctx):
    p = T.pki(ctx)
    port = free_port()
    path = ctx.path("mm.conf")
    with open(path, "w") as f:
        f.write("listen 127.0.0.1:%d tls\ntls cert=%s key=%s\npool p\ndevice p 127.0.0.1:9001\n"
                "route pool=p\n" % (port, p.a_crt, p.bad_key))
    rc, out, err = run_cli(ctx, ["-c", path], timeout=10)
    eq(rc, 1, "exit status (stderr %r)" % err.strip())
    check("%s:2:" % path in err, "stderr", "%s:2: ..." % path, err.strip())


@tls_test("key formats: SEC1, PKCS#1, PKCS#8 (EC, RSA, P-384), a PEM chain, relative "
          "paths -- all accepted; PKCS#8 keys handshake")
def t_tls_key_formats(ctx):
    p = T.pki(ctx)
    port = free_port()
    tail = "pool p\ndevice p 127.0.0.1:9001\nroute pool=p\n"
    # at most 4 tls lines per config (RP_TLS_MAX_CERTS default)
    confs = {
        "pkcs8.conf": "listen 127.0.0.1:%d tls\ntls cert=%s key=%s\ntls cert=%s key=%s sni=b.test\n"
                      "tls cert=%s key=%s sni=c.test\ntls cert=%s key=%s sni=i.test\n"
                      % (port, p.a_crt, p.a_key_pk8, p.b_crt, p.b_key_pk8, p.c_crt, p.c_key,
                         p.i_chain, p.i_key) + tail,
        "trad.conf": "listen 127.0.0.1:%d tls\ntls cert=%s key=%s\ntls cert=%s key=%s sni=b.test\n"
                     % (port, p.a_crt, p.a_key, p.b_crt, p.b_key) + tail,
    }
    for name, text in sorted(confs.items()):
        path = ctx.path(name)
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run_cli(ctx, ["-t", "-c", path])
        eq(rc, 0, "%s: exit status of -t (stderr %r)" % (name, err.strip()))
        eq(out.strip(), "%s: ok" % path, "%s: stdout of -t" % name)
    # relative paths, resolved against the current directory
    rel = ctx.path("rel.conf")
    with open(rel, "w") as f:
        f.write("listen 127.0.0.1:%d tls\ntls cert=a.crt key=a.key\n" % port + tail)
    pr = subprocess.run([RPROXY, "-t", "-c", rel], cwd=p.dir, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, timeout=10)
    eq(pr.returncode, 0, "relative cert/key paths from the pki directory (stderr %r)"
       % pr.stderr.decode("utf-8", "replace").strip())
    dev = ctx.device()
    _, port = start(ctx, [dev], certs=[(p.a_crt, p.a_key_pk8, None),
                                       (p.b_crt, p.b_key_pk8, "b.test")])
    for name in ("a.test", "b.test"):
        r = T.s_client(ctx, port, servername=name, verify_host=name)
        expect_handshake(r, "PKCS#8 key for %s" % name)
        check(r.verified, "%s verifies" % name, "verify 0", (r.verify_code, r.verify_msg))


# =====================================================================
# fault cases: each must leave the proxy serving others
# =====================================================================

def fault_setup(ctx, **kw):
    dev = ctx.device()
    _, port = start(ctx, [dev], **kw)
    bystander = T.tls_client(ctx, port)      # established before the fault
    ka_request(bystander, "/before")
    return dev, port, bystander


def fault_check(ctx, port, dev, bystander, what, expect_requests):
    ka_request(bystander, "/bystander")
    assert_serving(ctx, port, what)
    paths = dev.paths()
    bad = [x for x in paths if x not in expect_requests + ["/before", "/bystander", "/after"]]
    eq(bad, [], "requests the device got from the bad client")


@tls_test("fault: random bytes to the TLS port -> that connection closed; others served")
def t_tls_fault_random(ctx):
    dev, port, by = fault_setup(ctx)
    rnd = random.Random(7)
    for n in (1, 5, 300, 4096, 70000):
        s = T.raw_socket(ctx, port)
        data = rnd.randbytes(n)
        if n > 5:
            data = b"\x16\x03\x01" + data[3:]          # looks like a handshake record
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)      # then EOF: nothing more will come
        except OSError:
            pass
        closed, took, got = wait_closed(s, 5.0)
        check(closed, "%d random bytes: server closes the connection" % n, "closed",
              "open after %.1fs (received %s)" % (took, short(got)))
        check(not got or got[:1] == b"\x15", "%d random bytes: at most a TLS alert back" % n,
              "b'' or an alert record", short(got))
    # not even a record type, no EOF: closed without waiting for more
    s = T.raw_socket(ctx, port)
    s.sendall(b"\xff" + rnd.randbytes(4095))
    closed, took, got = wait_closed(s, 3.0)
    check(closed, "0xff + 4095 random bytes, no EOF: server closes", "closed",
          "open after %.1fs" % took)
    fault_check(ctx, port, dev, by, "random bytes", [])


@tls_test("fault: plain HTTP sent to the TLS port -> closed, device untouched, others served")
def t_tls_fault_plain_http(ctx):
    dev, port, by = fault_setup(ctx)
    s = T.raw_socket(ctx, port)
    s.sendall(b"GET /plain HTTP/1.1\r\nHost: a.test\r\n\r\n")
    closed, took, got = wait_closed(s, 5.0)
    check(closed, "server closes the plain-HTTP connection", "closed",
          "open after %.1fs (got %s)" % (took, short(got)))
    check(b"/plain" not in got and b"HTTP/1.1 200" not in got, "no proxied answer",
          "no 200", short(got))
    fault_check(ctx, port, dev, by, "plain HTTP", [])


@tls_test("fault: garbage after a completed handshake (bad record MAC) -> closed; "
          "others served")
def t_tls_fault_after_handshake(ctx):
    dev, port, by = fault_setup(ctx)
    c = T.tls_client(ctx, port)
    # a record with the right header and a wrong MAC, written under the TLS layer
    fd = socket.socket(fileno=os.dup(c.sock.fileno()))
    ctx.sockets.append(fd)
    fd.sendall(b"\x17\x03\x03\x00\x40" + bytes(64))
    closed, took, got = wait_closed(fd, 5.0)
    check(closed, "server closes after a bad record", "closed", "open after %.1fs" % took)
    fault_check(ctx, port, dev, by, "a forged record", [])


@tls_test("fault: truncated ClientHello then EOF -> closed; others served")
def t_tls_fault_truncated_hello(ctx):
    dev, port, by = fault_setup(ctx)
    hello, _ = T.client_hello("a.test")
    check(len(hello) > 100 and hello[0] == 0x16, "test ClientHello", "a handshake record",
          short(hello))
    for cut in (1, 5, 9, len(hello) // 2, len(hello) - 1):
        s = T.raw_socket(ctx, port)
        s.sendall(hello[:cut])
        s.shutdown(socket.SHUT_WR)
        closed, took, got = wait_closed(s, 5.0)
        check(closed, "ClientHello cut at %d of %d bytes, then EOF: server closes"
              % (cut, len(hello)), "closed", "open after %.1fs" % took)
    # a ClientHello record announcing 16 KB that never come, then EOF
    s = T.raw_socket(ctx, port)
    s.sendall(b"\x16\x03\x01\x40\x00" + hello[5:60])
    s.shutdown(socket.SHUT_WR)
    closed, took, _ = wait_closed(s, 5.0)
    check(closed, "oversized announced record then EOF: server closes", "closed",
          "open after %.1fs" % took)
    fault_check(ctx, port, dev, by, "truncated ClientHellos", [])


def stall_after_server_flight(ctx, port):
    """Send a real ClientHello, read the server's whole first flight, then stop (the
    server now waits for ClientKeyExchange).  Returns (socket, t_connect, the client's
    second flight: ClientKeyExchange, ChangeCipherSpec, Finished -- not sent)."""
    hello, (obj, inc, out) = T.client_hello("a.test")
    t0 = time.monotonic()
    s = T.raw_socket(ctx, port)
    s.sendall(hello)
    end = time.monotonic() + 3
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            fail("server closed before finishing its first flight", "ServerHelloDone", "EOF")
        inc.write(d)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        if out.pending:         # our second flight is ready: the server waits for it
            return s, t0, out.read()
    fail("no complete server first flight within 3 s", "ServerHello..ServerHelloDone",
         "incomplete")


class CloseWatcher(threading.Thread):
    """Notes when the server closes each watched socket (EOF or RST), reading and
    discarding whatever else arrives (an alert)."""

    def __init__(self):
        threading.Thread.__init__(self, daemon=True)
        self.lock = threading.Lock()
        self.socks = {}             # label -> [sock, t0, closed_at or None]
        self.stop = False

    def add(self, label, sock, t0):
        sock.setblocking(False)
        with self.lock:
            self.socks[label] = [sock, t0, None]

    def run(self):
        while not self.stop:
            with self.lock:
                live = {v[0]: k for k, v in self.socks.items() if v[2] is None}
            if not live:
                time.sleep(0.01)
                continue
            try:
                rd, _, _ = select.select(list(live), [], [], 0.01)
            except (OSError, ValueError):
                rd = []
            now = time.monotonic()
            for sk in rd:
                try:
                    d = sk.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                if not d:
                    with self.lock:
                        self.socks[live[sk]][2] = now

    def took(self, label):
        with self.lock:
            _, t0, at = self.socks[label]
        return None if at is None else at - t0

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if all(v[2] is not None for v in self.socks.values()):
                    return
            time.sleep(0.02)


@tls_test("fault: clients stalling in the handshake are closed after timeout "
          "handshake=500 (within ~1 s); others served meanwhile and after",
          serial=True, timeout=30)
def t_tls_fault_stall(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev], timeouts={"handshake": 500})
    hello, _ = T.client_hello("a.test")
    w = CloseWatcher()
    w.start()
    try:
        t0 = time.monotonic()
        w.add("silent after connect", T.raw_socket(ctx, port), t0)
        t0 = time.monotonic()
        s = T.raw_socket(ctx, port)
        s.sendall(hello[:len(hello) // 2])
        w.add("half a ClientHello", s, t0)
        s, t0, _ = stall_after_server_flight(ctx, port)
        w.add("after the server's first flight", s, t0)
        # while they stall, a normal client is served at once
        t_ok = time.monotonic()
        assert_serving(ctx, port, "stalled handshakes (during)", path="/during")
        check(time.monotonic() - t_ok < 2.0, "a normal client served while others stall",
              "< 2 s", "%.2f s" % (time.monotonic() - t_ok))
        w.wait(3.0)
        labels = ["silent after connect", "half a ClientHello", "after the server's first flight"]
        times = ["%s: %s" % (lb, "open" if w.took(lb) is None else "%.2f s" % w.took(lb))
                 for lb in labels]
        ctx.note("closed after: " + "; ".join(times))
        for lb in labels:
            took = w.took(lb)
            check(took is not None, "stalled client (%s) closed by the server" % lb,
                  "closed within 1.5 s", "still open after 3 s")
            check(took <= 1.5, "stalled client (%s) closed within ~1 s" % lb, "<= 1.5 s",
                  "%.2f s" % took)
            check(took >= 0.4, "stalled client (%s) not closed before the 500 ms timeout" % lb,
                  ">= 0.4 s", "%.2f s" % took)
        # a trickler: one ClientHello byte every 100 ms is activity, but the deadline holds
        t_tr = time.monotonic()
        tr = T.raw_socket(ctx, port)
        w.add("trickler", tr, t_tr)
        for i in range(len(hello) - 1):
            if w.took("trickler") is not None or time.monotonic() - t_tr > 3.0:
                break
            try:
                tr.sendall(hello[i:i + 1])
            except OSError:
                break
            time.sleep(0.1)
        w.wait(0.5)
        took = w.took("trickler")
        ctx.note("trickler closed after %s" % ("%.2f s" % took if took is not None else "-"))
        check(took is not None and took <= 1.5,
              "one-byte-per-100-ms ClientHello cut at the handshake deadline",
              "closed <= 1.5 s", took)
    finally:
        w.stop = True
    assert_serving(ctx, port, "stalled handshakes")
    eq(sorted(dev.paths()), ["/after", "/during"], "requests at the device")


@tls_test("handshake timeout does not apply after the handshake: idle keep-alive TLS "
          "connection survives 1.2 s with handshake=500", serial=True)
def t_tls_handshake_timer_cleared(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev], timeouts={"handshake": 500, "client_idle": 5000})
    c = T.tls_client(ctx, port)
    ka_request(c, "/one")
    time.sleep(1.2)
    ka_request(c, "/two")
    c2 = T.tls_client(ctx, port)        # handshake done, no request yet
    time.sleep(1.2)
    ka_request(c2, "/three")


@tls_test("fault: 3 x 200 connect-and-drop (close, RST, partial hello, full handshake "
          "then drop) leave the proxy serving", timeout=90)
def t_tls_fault_flood(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev])
    hello, _ = T.client_hello("a.test")
    sc = T.ssl_context(ctx)
    for rnd in range(3):
        socks = []
        for i in range(200):
            try:
                s = socket.create_connection(("127.0.0.1", port), 5)
            except OSError as e:
                fail("round %d: connect %d failed: %r" % (rnd, i, e))
            kind = i % 4
            if kind == 0:
                s.sendall(b"\x16")
            elif kind == 1:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            elif kind == 2:
                try:
                    s.sendall(hello[:len(hello) // 3])
                except OSError:
                    pass
            socks.append(s)
        for s in socks:
            s.close()
        # full handshakes, then dropped without close_notify (some mid-request)
        for i in range(30):     # 90 in all: more than RP_MAX_TLS_CONNS (64) would leak
            c = T.tls_client(ctx, port, timeout=10, sc=sc)
            if i % 2:
                c.send(b"GET /dropped HTTP/1.1\r\nHost: a.test\r\n")
            c.sock.close()          # Python's close() sends no close_notify
        assert_serving(ctx, port, "flood round %d" % (rnd + 1), path="/after")
    for i in range(10):
        assert_serving(ctx, port, "the floods (new connection %d)" % i, path="/after")
    check(all(x == "/after" for x in dev.paths()), "only good requests reached the device",
          "/after only", sorted(set(dev.paths())))


@tls_test("TLS slot pool (rproxy-small, RP_MAX_TLS_CONNS=2): a third TLS client waits in the "
          "accept queue until a slot frees, plain clients still served, slots come back after "
          "closes and failed handshakes",
          timeout=40)
def t_tls_pool_exhaustion(ctx):
    if not os.path.exists(RPROXY_SMALL):
        fail("small-limits build missing: %s" % RPROXY_SMALL, "a binary", "missing")
    ok, msg = T.tls_built(RPROXY_SMALL)
    if not ok:
        fail("# TLS not built in %s: %r" % (RPROXY_SMALL, msg[:200]))
    dev = ctx.device()
    plain = free_port()
    text, port = tls_conf(ctx, [dev], listens=["listen 127.0.0.1:%d" % plain])
    px = RProxy(ctx, text, binary=RPROXY_SMALL, args=["-g", "1000"], valgrind=ctx.valgrind,
                wait=False)
    wait_port(px, port)
    wait_port(px, plain)
    time.sleep(0.3)         # let the start-up probe connections be reaped
    hello, _ = T.client_hello("a.test")

    def queued(what):
        """A third TLS client waits in the kernel's queue (not accepted, not dropped)
        while both slots are busy; returns its socket."""
        s = T.raw_socket(ctx, port)
        s.sendall(hello)
        s.settimeout(1.0)
        try:
            got = s.recv(100)
        except socket.timeout:
            got = None
        check(got is None, "%s: third TLS client gets nothing while the slots are busy" % what,
              "no bytes, still open", "closed" if got == b"" else short(got or b""))
        return s

    def served(s, what):
        s.settimeout(5.0)
        try:
            got = s.recv(100)
        except socket.timeout:
            got = b"(timeout)"
        check(got.startswith(b"\x16"), "%s: the queued client gets its ServerHello" % what,
              "a handshake record", short(got))
        s.close()

    def plain_ok(what):
        rc, out, err = ctx.curl("http://127.0.0.1:%d/plain" % plain)
        eq(rc, 0, "%s: plain client (%s)" % (what, err.strip()))
        eq(json.loads(out)["target"], "/plain", "%s: plain client served" % what)

    c1 = T.tls_client(ctx, port)
    ka_request(c1, "/c1")
    c2 = T.tls_client(ctx, port)
    ka_request(c2, "/c2")
    q = queued("2 slots busy")
    plain_ok("TLS pool full")
    c1.close()
    served(q, "after a slot frees")
    time.sleep(0.3)
    c3 = T.tls_client(ctx, port)
    ka_request(c3, "/c3")
    ka_request(c2, "/c2-again")
    q = queued("2 slots busy again")
    c2.close()
    served(q, "after the second slot frees")
    c3.close()
    time.sleep(0.3)
    # failed handshakes give their slot back
    rnd = random.Random(3)
    for i in range(6):
        s = T.raw_socket(ctx, port)
        s.sendall(b"\x16\x03\x01\x00\x10" + rnd.randbytes(16))
        closed, _, _ = wait_closed(s, 3.0)
        check(closed, "bad handshake %d closed" % i, "closed", "open")
        s.close()
    time.sleep(0.3)
    c4 = T.tls_client(ctx, port)
    c5 = T.tls_client(ctx, port)
    ka_request(c4, "/c4")
    ka_request(c5, "/c5")
    q = queued("after failed handshakes")
    c4.close()
    served(q, "after failed handshakes, once c4 closes")


LINGER0 = b"\x01\x00\x00\x00\x00\x00\x00\x00"      # struct linger {1, 0}: close() sends RST


@tls_test("fault: clients that reset while rproxy is sending (mid-handshake, mid-response, "
          "after Connection: close) leave the proxy serving, not spinning", timeout=60)
def t_tls_fault_reset_while_sending(ctx):
    big = pattern(1 << 20)
    dev = ctx.device(dispatch({"/big": lambda c, r: c.send(response(200, body=big)) or True}))
    _, port = start(ctx, [dev])
    hello, _ = T.client_hello("a.test")
    sc = T.ssl_context(ctx)
    for i in range(10):
        # ClientHello, then RST as soon as the server starts answering
        s = T.raw_socket(ctx, port)
        s.sendall(hello)
        try:
            s.recv(1)
        except OSError:
            pass
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()
        # ClientHello and RST at once
        s = T.raw_socket(ctx, port)
        s.sendall(hello)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()
        # a 1 MiB response, reset after its first bytes
        c = T.tls_client(ctx, port, sc=sc)
        c.send(req_bytes("GET", "/big", host="a.test"))
        c.read_exact(100, timeout=10)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.sock.close()
        # Connection: close, reset before reading the answer (and the close_notify)
        c = T.tls_client(ctx, port, sc=sc)
        c.send(req_bytes("GET", "/x", host="a.test", headers=[("Connection", "close")]))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        c.sock.close()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert_serving(ctx, port, "resets while sending")
    check(time.monotonic() - t0 < 5.0, "served promptly", "< 5 s",
          "%.1f s" % (time.monotonic() - t0))


# =====================================================================
# signature hashes and alerts (issue 21)
# =====================================================================

def ab_certs(ctx):
    """tls lines for tls_conf: a.test (EC P-256, the default) and b.test (RSA 2048)."""
    p = T.pki(ctx)
    return [(p.a_crt, p.a_key, "a.test"), (p.b_crt, p.b_key, "b.test")]


def sigalgs_client(ctx, port, name, sigalgs):
    """s_client -tls1_2 offering only sigalgs (OpenSSL 3 offers SHA-1 at @SECLEVEL=0 only),
    with -msg: the alerts either side sends are in .out."""
    return T.s_client(ctx, port, servername=name, version="tls1_2",
                      cipher="DEFAULT:@SECLEVEL=0" if "SHA1" in sigalgs else None,
                      extra=["-sigalgs", sigalgs, "-msg"])


def signing_digest(r):
    m = re.search(r"^Peer signing digest: (\S+)", r.out, re.M)
    return m.group(1) if m else None


def expect_alert_read(r, alert, what):
    """s_client -msg read the fatal alert (its name, as OpenSSL prints it) from the server."""
    check(re.search(r"^<<< .*Alert.*fatal %s" % alert, r.out, re.M) is not None,
          "%s: the client read a fatal %s" % (what, alert), alert, r.transcript(30))


@tls_test("signature hashes: a client offering only SHA-224, SHA-256, SHA-384 or SHA-512 "
          "gets a handshake signed with it (EC and RSA certificates); only SHA-1: refused by "
          "the default profile with handshake_failure")
def t_tls_sigalgs(ctx):
    _, port = start(ctx, [ctx.device()], certs=ab_certs(ctx))
    for name, kind in (("a.test", "ECDSA"), ("b.test", "RSA")):
        for h in ("SHA224", "SHA256", "SHA384", "SHA512"):
            r = sigalgs_client(ctx, port, name, "%s+%s" % (kind, h))
            expect_handshake(r, "%s, -sigalgs %s+%s" % (name, kind, h))
            eq(signing_digest(r), h, "%s, -sigalgs %s+%s: the ServerKeyExchange's hash"
               % (name, kind, h))
        r = sigalgs_client(ctx, port, name, "%s+SHA1" % kind)
        expect_refused(r, "%s, -sigalgs %s+SHA1 on the default profile" % (name, kind))
        expect_alert_read(r, "handshake_failure", "%s, %s+SHA1" % (name, kind))
    assert_serving(ctx, port, "the signature hash handshakes")


@tls_test("signature hashes: tls_profile=compat accepts a client offering only SHA-1; a "
          "default-profile listener of the same rproxy (the same TLS slots) still refuses it")
def t_tls_sigalgs_compat(ctx):
    compat = free_port()
    text, port = tls_conf(ctx, [ctx.device()], certs=ab_certs(ctx),
                          listens=["listen 127.0.0.1:%d tls tls_profile=compat" % compat])
    start_tls(ctx, text, [port, compat])
    for rnd in range(2):        # each slot goes from one profile to the other and back
        for name, kind in (("a.test", "ECDSA"), ("b.test", "RSA")):
            what = "round %d, %s, %s+SHA1" % (rnd + 1, name, kind)
            r = sigalgs_client(ctx, compat, name, kind + "+SHA1")
            expect_handshake(r, "compat listener, " + what)
            eq(signing_digest(r), "SHA1", "compat listener, %s: the hash" % what)
            r = sigalgs_client(ctx, port, name, kind + "+SHA1")
            expect_refused(r, "default listener, " + what)
            expect_alert_read(r, "handshake_failure", "default listener, " + what)


@tls_test("alerts: a TLS 1.1 client on the default profile reads BearSSL's protocol_version "
          "(in a record version it accepts, not 0.0)")
def t_tls_alert_version(ctx):
    dev = ctx.device()
    _, port = start(ctx, [dev])
    r = T.s_client(ctx, port, servername="a.test", version="tls1_1", extra=["-msg"])
    expect_refused(r, "-tls1_1 on the default profile")
    expect_alert_read(r, "protocol_version", "-tls1_1 on the default profile")
    check("wrong version number" not in r.out + r.err, "the alert's record is read",
          "no 'wrong version number'", r.transcript(30))


def raw_exchange(ctx, port, data, shut=True):
    """Send data on a new TCP connection (then EOF), read until the server closes;
    returns what came back (an error as a string if the socket failed first)."""
    s = T.raw_socket(ctx, port)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    closed, took, got = wait_closed(s, 5.0)
    if not closed:
        fail("server still open %.1f s after the bad input" % took, "closed", short(got))
    return got


HS = 22
# (label, bytes sent, alert description expected (None: no alert))
ALERT_ROWS = [
    ("ClientHello with a session ID of 33 bytes", T.record(HS, T.raw_hello(sid=b"s" * 33)), 50),
    ("ClientHello whose length is shorter than its fields",
     T.record(HS, T.raw_hello(hs_len=40)), 50),
    ("a record of 16,385 bytes", T.record(HS, b"\x01" * 16385), 22),
    ("a record of version 2.0", T.record(HS, T.raw_hello(), 0x0200), 70),
    ("a ClientHello split into records of two versions",
     T.record(HS, T.raw_hello()[:20]) + T.record(HS, T.raw_hello()[20:], 0x0302), 70),
    ("ChangeCipherSpec first", T.record(20, b"\x01"), 10),
    ("application data first", T.record(23, b"GET / HTTP/1.1\r\n\r\n"), 10),
    ("a ClientKeyExchange instead of a ClientHello",
     T.record(HS, b"\x10\x00\x00\x21\x20" + b"k" * 32), 10),
    ("a record of unknown type 24", T.record(24, b"\x01\x00\x00"), 10),
    ("a renegotiation_info that is not empty",
     T.record(HS, T.raw_hello(T.HELLO_EXTS + ((0xff01, b"\x01\x05"),))), 40),
    # BearSSL's own alert: no signature_algorithms means SHA-1 (RFC 5246 7.4.1.4.1),
    # which the default profile does not sign with
    ("a TLS 1.2 ClientHello without signature_algorithms",
     T.record(HS, T.raw_hello(T.HELLO_EXTS[:2])), 40),
    ("the client's own fatal alert", T.record(21, b"\x02\x28"), None),
]


def make_alert_test(label, data, want):
    def fn(ctx):
        dev, port, by = fault_setup(ctx)
        got = raw_exchange(ctx, port, data)
        alerts = T.alerts_in(got)
        if want is None:
            eq(got, b"", "%s: bytes the server sent back" % label)
        else:
            eq([(lv, T.ALERTS.get(d, d)) for lv, d in alerts], [(2, T.ALERTS[want])],
               "%s: alerts read back (%s)" % (label, short(got)))
            check(len(got) == 7, "%s: the alert is all the server sent" % label, 7, short(got))
        fault_check(ctx, port, dev, by, label, [])
    fn.__name__ = "t_tls_alert_" + re.sub(r"\W+", "_", label)
    return fn


for _label, _data, _want in ALERT_ROWS:
    tls_test("alerts: %s -> %s" % (_label, T.ALERTS[_want] if _want is not None else
                                  "closed without an alert"))(
        make_alert_test(_label, _data, _want))


@tls_test("alerts: a tampered client Finished -> bad_record_mac, sent in the clear (the "
          "server's ChangeCipherSpec is not out yet)")
def t_tls_alert_finished(ctx):
    dev, port, by = fault_setup(ctx)
    s, _, flight = stall_after_server_flight(ctx, port)
    bad = bytearray(flight)
    bad[-1] ^= 1                # the last byte of the encrypted Finished (its tag)
    s.sendall(bytes(bad))
    closed, took, got = wait_closed(s, 5.0)
    check(closed, "server closes after the tampered Finished", "closed", "open")
    eq([(lv, T.ALERTS.get(d, d)) for lv, d in T.alerts_in(got)], [(2, "bad_record_mac")],
       "alerts read back (%s)" % short(got))
    check(got[1:3] == b"\x03\x03", "the alert's record is TLS 1.2", "03 03", short(got[:5]))
    fault_check(ctx, port, dev, by, "a tampered Finished", [])


@tls_test("alerts: none once the keys are in use -- a record with a bad MAC, or one too long, "
          "after the handshake: the connection closes with nothing sent")
def t_tls_no_alert_after_handshake(ctx):
    dev, port, by = fault_setup(ctx)
    for label, rec in (("a bad MAC", b"\x17\x03\x03\x00\x40" + bytes(64)),
                       ("a record of 18,000 bytes", b"\x17\x03\x03\x46\x50" + bytes(64))):
        c = T.tls_client(ctx, port)
        fd = socket.socket(fileno=os.dup(c.sock.fileno()))   # under the TLS layer
        ctx.sockets.append(fd)
        fd.sendall(rec)
        closed, took, got = wait_closed(fd, 5.0)
        check(closed, "%s: server closes" % label, "closed", "open after %.1fs" % took)
        eq(got, b"", "%s: bytes sent in the clear after the handshake" % label)
    fault_check(ctx, port, dev, by, "records after the handshake", [])

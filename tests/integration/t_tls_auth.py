"""t_tls_auth.py -- client certificates (mTLS) and TLS toward devices (re-encryption).

Devices here are `openssl s_server -www` processes (real TLS servers) on loopback, or
the harness's plain devices behind an mTLS listener.  Named "TLS: ..." like t_tls.py.
"""

import json
import os
import subprocess
import time

from checks import check, eq, run_cli, seen_header
from harness import free_port
import tlsutil as T
from t_tls import expect_alert_read, start, start_tls, tls_test, wait_port


def curl_mtls(ctx, port, path, cert=None, key=None, args=()):
    a = T.curl_args(ctx, port) + list(args)
    if cert:
        a += ["--cert", cert, "--key", key]
    return ctx.curl(*(a + ["-s", "-o", "-", "-w", "\n%{http_code}", T.https_url(port, path)]),
                    timeout=30)


def split_code(out):
    body, _, code = out.rpartition(b"\n")
    return body, code.decode()


def mtls_conf(p, auth):
    return ["client_ca=%s" % p.client_ca, "client_auth=%s" % auth,
            "client_cert_header=X-Client-CN"]


def start_mtls(ctx, auth):
    p = T.pki(ctx)
    dev = ctx.device()
    text = ("listen 127.0.0.1:{port} tls\n"
            "tls cert={crt} key={key} {opts}\n"
            "pool p\ndevice p {dev}\nroute pool=p\n").format(
                port="{port}", crt=p.a_crt, key=p.a_key, opts=" ".join(mtls_conf(p, auth)),
                dev=dev.addr)
    port = free_port()
    start_tls(ctx, text.replace("{port}", str(port)), [port])
    return p, dev, port


@tls_test("mTLS require: a client certificate from client_ca is accepted and its CN "
          "reaches the device; a forged X-Client-CN is replaced")
def t_mtls_require_ok(ctx):
    p, dev, port = start_mtls(ctx, "require")
    rc, out, err = curl_mtls(ctx, port, "/m", p.client_crt, p.client_key,
                             ["-H", "X-Client-CN: admin"])
    body, code = split_code(out)
    eq(code, "200", "status with a good client certificate (curl rc %s: %s)" % (rc, err[-200:]))
    info = json.loads(body)
    eq(seen_header(info, "X-Client-CN"), ["client1"], "verified CN at the device, forged one gone")


@tls_test("mTLS require: no client certificate, or one from another CA -> handshake "
          "refused, device untouched")
def t_mtls_require_refused(ctx):
    p, dev, port = start_mtls(ctx, "require")
    rc, out, _ = curl_mtls(ctx, port, "/none")
    check(rc != 0, "no certificate: curl fails the handshake", "rc != 0", rc)
    rc, out, _ = curl_mtls(ctx, port, "/rogue", p.rogue_crt, p.rogue_key)
    check(rc != 0, "certificate from the wrong CA: refused", "rc != 0", rc)
    eq(len(dev.requests), 0, "requests that reached the device")
    rc, out, _ = curl_mtls(ctx, port, "/after", p.client_crt, p.client_key)
    eq(split_code(out)[1], "200", "a good client is still served afterwards")


@tls_test("mTLS optional: without a certificate the request passes with no X-Client-CN "
          "(a client-sent one is stripped); with one, the CN is passed")
def t_mtls_optional(ctx):
    p, dev, port = start_mtls(ctx, "optional")
    rc, out, _ = curl_mtls(ctx, port, "/anon", args=["-H", "X-Client-CN: admin"])
    body, code = split_code(out)
    eq(code, "200", "anonymous client served")
    eq(seen_header(json.loads(body), "X-Client-CN"), [], "no X-Client-CN for an anonymous client")
    rc, out, _ = curl_mtls(ctx, port, "/cert", p.client_crt, p.client_key)
    body, code = split_code(out)
    eq(code, "200", "client with a certificate served")
    eq(seen_header(json.loads(body), "X-Client-CN"), ["client1"], "CN passed")


def s_server(ctx, crt, key, www=True):
    port = free_port()
    cmd = [T.OPENSSL, "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", crt, "-key", key,
           "-quiet", "-naccept", "50"]
    cmd += ["-www"] if www else []
    pr = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    ctx.popens.append(pr)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        r = subprocess.run([T.OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        if r.returncode == 0:
            return port
        time.sleep(0.1)
    return port


def start_reencrypt(ctx, device_opts, extra=""):
    port = free_port()
    text = ("listen 127.0.0.1:%d\npool p\ndevice p %s\nroute pool=p\n"
            "timeout connect=2000 device=3000\n%s") % (port, device_opts, extra)
    start_tls(ctx, text, [port])
    return port


@tls_test("TLS to a device: chain verified against ca= (good chain -> 200 from the "
          "openssl s_server device; a device cert from another CA -> 502)")
def t_reencrypt_verify(ctx):
    p = T.pki(ctx)
    good = s_server(ctx, p.a_crt, p.a_key)
    bad = s_server(ctx, p.b_crt, p.b_key)
    port = start_reencrypt(ctx, "127.0.0.1:%d tls ca=%s sni=a.test" % (good, p.ca))
    rc, out, _ = ctx.curl("-s", "-o", "-", "-w", "\n%{http_code}",
                          "http://127.0.0.1:%d/x" % port, timeout=20)
    body, code = split_code(out)
    eq(code, "200", "re-encrypted request through a verified chain")
    check(b"s_server" in body or b"Ciphers" in body or len(body) > 0,
          "the body came from openssl s_server", "s_server page", body[:80])
    port2 = start_reencrypt(ctx, "127.0.0.1:%d tls ca=%s" % (bad, p.client_ca))
    rc, out, _ = ctx.curl("-s", "-o", "-", "-w", "\n%{http_code}",
                          "http://127.0.0.1:%d/x" % port2, timeout=20)
    eq(split_code(out)[1], "502", "a device whose chain does not verify -> 502")


@tls_test("TLS to a device: verify=off encrypts without checking; keep-alive over the "
          "device's TLS pools the connection")
def t_reencrypt_nocheck_pool(ctx):
    p = T.pki(ctx)
    dev = ctx.device()
    # a TLS front for the plain device: rproxy itself, so the pooled TLS link is real
    front = free_port()
    plain = free_port()
    start_tls(ctx, ("listen 127.0.0.1:%d tls\nlisten 127.0.0.1:%d\ntls cert=%s key=%s\n"
                    "pool d\ndevice d %s\nroute pool=d\nstatus path=/st\n")
              % (front, plain, p.a_crt, p.a_key, dev.addr), [front, plain])
    port = start_reencrypt(ctx, "127.0.0.1:%d tls verify=off" % front, "status path=/own-st\n")
    rc, out, _ = ctx.curl("-s", "http://127.0.0.1:%d/st" % plain, timeout=10)
    before = json.loads(out)["accepted"]
    for i in range(4):
        rc, out, _ = ctx.curl("-s", "-o", "-", "-w", "\n%{http_code}",
                              "http://127.0.0.1:%d/r%d" % (port, i), timeout=20)
        eq(split_code(out)[1], "200", "request %d through two rproxies, TLS between" % i)
    eq(len(dev.requests), 4, "requests at the device")
    rc, out, _ = ctx.curl("-s", "http://127.0.0.1:%d/st" % plain, timeout=10)
    st = json.loads(out)
    eq(st["accepted"] - before, 2,
       "connections the TLS front accepted for 4 requests + 1 status: one pooled TLS link")
    eq(st["requests"], 6, "requests the TLS front saw (4 relayed + 2 status)")
    rc, out, _ = ctx.curl("-s", "http://127.0.0.1:%d/own-st" % port, timeout=10)
    eq(json.loads(out)["tls_handshakes"], 1,
       "handshakes the re-encrypting rproxy counts: one, however often the pooled link is reused")


@tls_test("config errors: tls device without ca= (and no verify=off), ca= without tls, "
          "client_auth without client_ca -> FILE:LINE:")
def t_tls_auth_config_errors(ctx):
    p = T.pki(ctx)
    cases = [
        ("listen 8080\npool p\ndevice p 127.0.0.1:9 tls\nroute pool=p\n", 3, "ca="),
        ("listen 8080\npool p\ndevice p 127.0.0.1:9 ca=%s\nroute pool=p\n" % p.ca, 3, "tls"),
        ("listen 8443 tls\ntls cert=%s key=%s client_auth=require\npool p\n"
         "device p 127.0.0.1:9\nroute pool=p\n" % (p.a_crt, p.a_key), 2, "client_ca"),
        ("listen 8443 tls\ntls cert=%s key=%s client_ca=%s\npool p\n"
         "device p 127.0.0.1:9\nroute pool=p\n" % (p.a_crt, p.a_key, p.garbage), 2, ""),
    ]
    for text, line, word in cases:
        path = os.path.join(ctx.dir, "bad%d.conf" % line)
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run_cli(ctx, ["-t", "-c", path])
        check(rc == 1 and ("%s:%d:" % (path, line)) in err and word in err,
              "config error reported at line %d mentioning %r" % (line, word),
              "exit 1, %s:%d: ..." % (path, line), "rc=%s err=%r" % (rc, err[-200:]))


@tls_test("alerts: mTLS require: a client certificate from another CA reads unknown_ca, "
          "none at all handshake_failure (rproxy's alerts, in the clear)")
def t_mtls_alerts(ctx):
    p, dev, port = start_mtls(ctx, "require")
    for what, cert, alert in (("a certificate from another CA", p.rogue_crt, "unknown_ca"),
                              ("no certificate", None, "handshake_failure")):
        r = T.s_client(ctx, port, servername="a.test", version="tls1_2", cert=cert,
                       key=p.rogue_key if cert else None, extra=["-msg"], input=b"x")
        # s_client reports the negotiated suite even so: the alert and its exit status tell
        check(r.rc != 0, "%s: s_client fails" % what, "rc != 0", r.summary())
        expect_alert_read(r, alert, what)
    eq(len(dev.requests), 0, "requests that reached the device")

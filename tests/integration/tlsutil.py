"""tlsutil.py -- test PKI and TLS clients for the TLS integration tests (issue 5).

The PKI is generated at test time with the openssl CLI (never committed): once per
test run into a private cache directory (removed at exit), then copied into each
test's own temp dir, so every test names files under ctx.dir only.

    pki = tlsutil.pki(ctx)          # PKI object, files in ctx.dir/pki/
    pki.a_crt, pki.a_key            # "a.test"  EC P-256 leaf (key: SEC1 "EC PRIVATE KEY")
    pki.b_crt, pki.b_key            # "b.test"  RSA 2048 leaf  (key: PKCS#1 "RSA PRIVATE KEY")
    pki.c_crt, pki.c_key            # "c.test"  EC P-384 leaf  (key: PKCS#8 "PRIVATE KEY")
    pki.a_key_pk8, pki.b_key_pk8    # the same a/b keys as PKCS#8
    pki.i_chain, pki.i_key          # "i.test"  EC P-256 leaf under an intermediate CA;
                                    #   i_chain = leaf + intermediate (PEM chain)
    pki.bad_key                     # an EC P-256 key matching no certificate
    pki.weak_crt, pki.weak_key      # "weak.test" RSA 1024 (below the RSA 2048 floor)
    pki.ca                          # root CA (EC P-256) every server cert chains to
    pki.client_ca                   # client CA (EC P-256), for mTLS tests
    pki.client_crt, pki.client_key  # CN=client1, signed by client_ca, clientAuth
    pki.rogue_crt, pki.rogue_key    # CN=rogue, signed by the *server* CA (not client_ca)

Clients:
    s_client(ctx, port, ...) -> SClient   openssl s_client, parsed
    curl_tls(ctx, port, path, ...)        curl over https with --cacert/--resolve
    tls_client(ctx, port, ...)            harness.Client over a Python ssl socket
                                          (raw HTTP over TLS; read_response etc.)
    client_hello(servername)              a real TLS 1.2 ClientHello's bytes (+ state
                                          to continue the handshake by hand)
    record / raw_hello / alerts_in        hand-made records and ClientHellos (bad ones
                                          included); the alerts in what came back

Python 3 stdlib only; loopback only.
"""

import atexit
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading

from harness import RPROXY, Client, TestFailure

OPENSSL = shutil.which("openssl") or "openssl"

_lock = threading.Lock()
_cache_dir = None

_MIN_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
"""

NAMES = {
    "ca": "ca.crt", "ca_key": "ca.key",
    "inter": "inter.crt", "inter_key": "inter.key",
    "a_crt": "a.crt", "a_key": "a.key", "a_key_pk8": "a.pk8.key",
    "b_crt": "b.crt", "b_key": "b.key", "b_key_pk8": "b.pk8.key",
    "c_crt": "c384.crt", "c_key": "c384.key",
    "i_crt": "i.crt", "i_key": "i.key", "i_chain": "i.chain.pem",
    "bad_key": "bad.key",
    "weak_crt": "weak.crt", "weak_key": "weak.key",
    "client_ca": "clientca.crt", "client_ca_key": "clientca.key",
    "client_crt": "client.crt", "client_key": "client.key",
    "rogue_crt": "rogue.crt", "rogue_key": "rogue.key",
    "garbage": "garbage.pem", "empty": "empty.pem",
}


def _run(args, cwd):
    p = subprocess.run([OPENSSL] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0:
        raise TestFailure("openssl %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                         p.stderr.decode("utf-8", "replace")))
    return p.stdout


def _ec_key(d, name, curve="prime256v1"):
    # SEC1 "EC PRIVATE KEY" only (-noout: no "EC PARAMETERS" block before it)
    _run(["ecparam", "-name", curve, "-genkey", "-noout", "-out", name], d)


def _rsa_key(d, name, bits=2048):
    # PKCS#1 "RSA PRIVATE KEY"
    _run(["genrsa", "-traditional", "-out", name, str(bits)], d)


def _pk8(d, src, dst):
    _run(["pkey", "-in", src, "-out", dst], d)       # OpenSSL 3 writes PKCS#8


_serial = [1000]


def _sign(d, key, cn, out, ca, ca_key, ext):
    csr = out + ".csr"
    extf = out + ".ext"
    with open(os.path.join(d, extf), "w") as f:
        f.write(ext)
    _run(["req", "-new", "-config", "min.cnf", "-key", key, "-subj", "/CN=" + cn,
          "-out", csr], d)
    _serial[0] += 1
    _run(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
          "-set_serial", str(_serial[0]), "-days", "30", "-sha256", "-extfile", extf,
          "-out", out], d)
    os.unlink(os.path.join(d, csr))
    os.unlink(os.path.join(d, extf))


def _self_signed(d, key, cn, out):
    _run(["req", "-x509", "-new", "-config", "min.cnf", "-key", key, "-subj", "/CN=" + cn,
          "-days", "30", "-sha256", "-set_serial", "1",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-out", out], d)


def _server_ext(name, rsa=False):
    ku = "digitalSignature,keyEncipherment" if rsa else "digitalSignature"
    return ("basicConstraints=CA:FALSE\nkeyUsage=critical,%s\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % (ku, name))


def _generate(d):
    with open(os.path.join(d, "min.cnf"), "w") as f:
        f.write(_MIN_CNF)
    # root CA (EC P-256)
    _ec_key(d, "ca.key")
    _self_signed(d, "ca.key", "rproxy test CA", "ca.crt")
    # intermediate CA (EC P-256) under the root
    _ec_key(d, "inter.key")
    _sign(d, "inter.key", "rproxy test intermediate", "inter.crt", "ca.crt", "ca.key",
          "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    # a.test: EC P-256
    _ec_key(d, "a.key")
    _pk8(d, "a.key", "a.pk8.key")
    _sign(d, "a.key", "a.test", "a.crt", "ca.crt", "ca.key", _server_ext("a.test"))
    # b.test: RSA 2048
    _rsa_key(d, "b.key", 2048)
    _pk8(d, "b.key", "b.pk8.key")
    _sign(d, "b.key", "b.test", "b.crt", "ca.crt", "ca.key", _server_ext("b.test", rsa=True))
    # c.test: EC P-384, key as PKCS#8
    _ec_key(d, "c384.sec1.key", "secp384r1")
    _pk8(d, "c384.sec1.key", "c384.key")
    os.unlink(os.path.join(d, "c384.sec1.key"))
    _sign(d, "c384.key", "c.test", "c384.crt", "ca.crt", "ca.key", _server_ext("c.test"))
    # i.test: EC P-256 under the intermediate; chain file = leaf + intermediate
    _ec_key(d, "i.key")
    _sign(d, "i.key", "i.test", "i.crt", "inter.crt", "inter.key", _server_ext("i.test"))
    with open(os.path.join(d, "i.chain.pem"), "wb") as out:
        for n in ("i.crt", "inter.crt"):
            with open(os.path.join(d, n), "rb") as f:
                out.write(f.read())
    # a key that matches no certificate
    _ec_key(d, "bad.key")
    # RSA 1024 (too weak)
    _rsa_key(d, "weak.key", 1024)
    _sign(d, "weak.key", "weak.test", "weak.crt", "ca.crt", "ca.key",
          _server_ext("weak.test", rsa=True))
    # client CA and a client certificate (mTLS), and one from the wrong CA
    _ec_key(d, "clientca.key")
    _self_signed(d, "clientca.key", "rproxy test client CA", "clientca.crt")
    cext = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=clientAuth\n")
    _ec_key(d, "client.key")
    _sign(d, "client.key", "client1", "client.crt", "clientca.crt", "clientca.key", cext)
    _ec_key(d, "rogue.key")
    _sign(d, "rogue.key", "rogue", "rogue.crt", "ca.crt", "ca.key", cext)
    # not PEM at all / empty
    with open(os.path.join(d, "garbage.pem"), "wb") as f:
        f.write(b"this is not a certificate\n" * 4)
    open(os.path.join(d, "empty.pem"), "wb").close()


def _cache():
    global _cache_dir
    with _lock:
        if _cache_dir is None:
            d = tempfile.mkdtemp(prefix="rproxy-pki-")
            atexit.register(shutil.rmtree, d, True)
            _generate(d)
            _cache_dir = d
        return _cache_dir


class PKI:
    def __init__(self, d):
        self.dir = d
        for attr, name in NAMES.items():
            setattr(self, attr, os.path.join(d, name))


def pki(ctx):
    """The test PKI, copied into ctx.dir/pki (absolute paths)."""
    if getattr(ctx, "_pki", None) is not None:
        return ctx._pki
    src = _cache()
    dst = os.path.join(ctx.dir, "pki")
    os.makedirs(dst, exist_ok=True)
    for name in NAMES.values():
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    ctx._pki = PKI(dst)
    return ctx._pki


# ==== is TLS compiled in? ====

_tls_state = {}


def tls_built(binary=None):
    """(True, "") when rproxy accepts a minimal TLS config under -t; (False, message)
    when it says "TLS not compiled in".  Any other outcome counts as built (the tests
    then run and fail on their own)."""
    binary = binary or RPROXY
    with _lock:
        if binary in _tls_state:
            return _tls_state[binary]
    d = _cache()
    conf = os.path.join(d, "probe-%d.conf" % threading.get_ident())
    with open(conf, "w") as f:
        f.write("listen 127.0.0.1:1 tls\ntls cert=%s key=%s\npool p\n"
                "device p 127.0.0.1:9\nroute pool=p\n"
                % (os.path.join(d, "a.crt"), os.path.join(d, "a.key")))
    try:
        p = subprocess.run([binary, "-t", "-c", conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=20)
        msg = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        res = (p.returncode == 0 or "TLS not compiled in" not in msg, msg)
    except OSError as e:
        res = (True, str(e))
    finally:
        try:
            os.unlink(conf)
        except OSError:
            pass
    with _lock:
        _tls_state[binary] = res
    return res


# ==== openssl s_client ====

class SClient:
    """Parsed `openssl s_client` run."""

    def __init__(self, cmd, rc, out, err):
        self.cmd = cmd
        self.rc = rc
        self.out = out
        self.err = err
        both = out + "\n" + err
        m = re.search(r"^(New|Reused), (TLSv[\d.]+|SSLv3|\(NONE\)), Cipher is (\S+)", out, re.M)
        self.session_kind = m.group(1) if m else None
        self.cipher = m.group(3) if m and m.group(3) != "(NONE)" else None
        self.handshake_ok = bool(self.cipher)
        self.reused = self.session_kind == "Reused" and self.handshake_ok
        m = re.search(r"^\s*Protocol\s*:\s*(\S+)", out, re.M)
        self.protocol = m.group(1) if m and self.handshake_ok else None
        m = re.search(r"^subject=(.*)$", out, re.M)
        self.subject = m.group(1).strip() if m else None
        m = re.search(r"^issuer=(.*)$", out, re.M)
        self.issuer = m.group(1).strip() if m else None
        m = re.search(r"^ALPN protocol: (.*)$", out, re.M)
        self.alpn = m.group(1).strip() if m else None
        self.no_alpn = "No ALPN negotiated" in out
        m = re.search(r"^Server Temp Key: (.*)$", out, re.M)
        self.temp_key = m.group(1).strip() if m else None
        m = re.search(r"^Server public key is (\d+) bit", out, re.M)
        self.key_bits = int(m.group(1)) if m else None
        m = re.search(r"^Peer signature type: (\S+)", out, re.M)
        self.sig_type = m.group(1) if m else None
        m = re.search(r"^\s*Verify return code: (\d+) \((.*)\)", out, re.M)
        self.verify_code = int(m.group(1)) if m else None
        self.verify_msg = m.group(2) if m else None
        self.verified = self.verify_code == 0
        # certificate chain as sent: [(subject, issuer), ...]
        self.chain = re.findall(r"^\s*\d+ s:(.*)\n\s*i:(.*)$", out, re.M)
        m = re.search(r"^\s*Session-ID: ([0-9A-F]*)\s*$", out, re.M)
        self.session_id = m.group(1) if m else None
        # the client itself could not even try (so a "refused" would prove nothing)
        self.local_error = bool(re.search(
            r"no protocols available|no ciphers available|no cipher match|"
            r"unknown option|Error with command|unsupported protocol.*SSL_CTX|"
            r"Connection refused|connect:errno", both))

    def summary(self):
        return ("rc=%s handshake_ok=%s kind=%s protocol=%s cipher=%s subject=%r alpn=%r "
                "temp_key=%r reused=%s local_error=%s"
                % (self.rc, self.handshake_ok, self.session_kind, self.protocol, self.cipher,
                   self.subject, self.alpn, self.temp_key, self.reused, self.local_error))

    def transcript(self, n=40):
        lines = [ln for ln in (self.out + self.err).splitlines()
                 if not re.match(r"^[A-Za-z0-9+/=]{64}$", ln)]      # drop base64 cert lines
        return "\n".join(lines[:n])


def s_client(ctx, port, servername=None, alpn=None, version=None, cipher=None, groups=None,
             sess_out=None, sess_in=None, cafile=None, verify_host=None, cert=None, key=None,
             input=b"", extra=(), timeout=10, no_servername=False):
    """Run openssl s_client against 127.0.0.1:port.  version: "tls1", "tls1_1",
    "tls1_2", "tls1_3" (exactly that version) or None (client default range).  For
    TLS < 1.2 the client's security level is lowered (@SECLEVEL=0), otherwise OpenSSL 3
    would refuse to offer them itself."""
    p = pki(ctx)
    cmd = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
           "-CAfile", cafile or p.ca]
    if servername:
        cmd += ["-servername", servername]
    elif no_servername:
        cmd += ["-noservername"]
    if verify_host:
        cmd += ["-verify_hostname", verify_host]
    if alpn:
        cmd += ["-alpn", alpn]
    if version:
        cmd += ["-" + version]
    ciphers = cipher
    if version in ("tls1", "tls1_1"):
        ciphers = (cipher or "DEFAULT") + ":@SECLEVEL=0"
    if ciphers:
        cmd += ["-cipher", ciphers]
    if groups:
        cmd += ["-groups", groups]
    if sess_out:
        cmd += ["-sess_out", sess_out]
    if sess_in:
        cmd += ["-sess_in", sess_in]
    if cert:
        cmd += ["-cert", cert, "-key", key or cert]
    if input:
        cmd += ["-ign_eof"]
    cmd += list(extra)
    pr = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=ctx.dir)
    ctx.popens.append(pr)
    try:
        out, err = pr.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        pr.kill()
        out, err = pr.communicate()
        raise TestFailure("openssl s_client hung (%ds): %s\n%s" % (
            timeout, " ".join(cmd), (out + err).decode("utf-8", "replace")[-2000:]))
    return SClient(cmd, pr.returncode, out.decode("utf-8", "replace"),
                   err.decode("utf-8", "replace"))


# ==== curl ====

def curl_args(ctx, port, host="a.test", cafile=None):
    return ["--cacert", cafile or pki(ctx).ca, "--resolve", "%s:%d:127.0.0.1" % (host, port)]


def https_url(port, path="/", host="a.test"):
    return "https://%s:%d%s" % (host, port, path)


def curl_tls(ctx, port, path="/", host="a.test", args=(), cafile=None, timeout=30):
    """curl https://HOST:PORT/PATH (HOST resolved to 127.0.0.1); returns
    (rc, stdout bytes, stderr text)."""
    return ctx.curl(*(curl_args(ctx, port, host, cafile) + list(args)
                      + [https_url(port, path, host)]), timeout=timeout)


# ==== Python ssl clients ====

def ssl_context(ctx, cafile=None, alpn=None, max_version=None, min_version=None,
                verify=True):
    sc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        sc.load_verify_locations(cafile or pki(ctx).ca)
    else:
        sc.check_hostname = False
        sc.verify_mode = ssl.CERT_NONE
    if alpn:
        sc.set_alpn_protocols(alpn)
    if max_version:
        sc.maximum_version = max_version
    if min_version:
        sc.minimum_version = min_version
    return sc


def tls_client(ctx, port, server_hostname="a.test", timeout=5.0, sc=None):
    """A harness.Client whose socket is a TLS socket (handshake done, certificate
    verified against the test CA).  Do not use still_open() (MSG_PEEK) on it."""
    c = Client(ctx, port=port, timeout=timeout, connect=False)
    c.sock.connect(("127.0.0.1", port))
    sc = sc or ssl_context(ctx)
    ss = sc.wrap_socket(c.sock, server_hostname=server_hostname)
    ctx.sockets.append(ss)
    c.sock = ss
    return c


def client_hello(servername="a.test", max_version=ssl.TLSVersion.TLSv1_2):
    """Bytes of a real ClientHello plus (sslobj, incoming, outgoing) to go on."""
    sc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    sc.check_hostname = False
    sc.verify_mode = ssl.CERT_NONE
    sc.maximum_version = max_version
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = sc.wrap_bio(inc, out, server_hostname=servername)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read(), (obj, inc, out)


# ==== hand-made records ====

# TLS alert descriptions (RFC 5246 §7.2), by number
ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
          22: "record_overflow", 40: "handshake_failure", 42: "bad_certificate",
          43: "unsupported_certificate", 45: "certificate_expired", 47: "illegal_parameter",
          48: "unknown_ca", 50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
          80: "internal_error", 110: "unsupported_extension"}


def record(rtype, payload, version=0x0301):
    return struct.pack(">BHH", rtype, version, len(payload)) + payload


# what a raw_hello offers unless told otherwise: X25519 and P-256, uncompressed points,
# ECDSA and RSA with SHA-256
HELLO_EXTS = ((0x000a, b"\x00\x04\x00\x1d\x00\x17"), (0x000b, b"\x01\x00"),
              (0x000d, b"\x00\x04\x04\x03\x04\x01"))


def raw_hello(exts=HELLO_EXTS, sid=b"", suites=(0xc02b, 0xc02f), hs_len=None):
    """A TLS 1.2 ClientHello handshake message (no record header): extensions exts
    ((type, data), ...), session ID sid (any length, even an illegal one), hs_len
    instead of the true body length when given."""
    body = (b"\x03\x03" + os.urandom(32) + bytes([len(sid)]) + sid
            + struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", x) for x in suites)
            + b"\x01\x00")
    ext = b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    body += struct.pack(">H", len(ext)) + ext
    return b"\x01" + (len(body) if hs_len is None else hs_len).to_bytes(3, "big") + body


def alerts_in(data):
    """[(level, description), ...] of the alert records in data (a stream of whole
    records from its start; stops at the first one cut short)."""
    out, i = [], 0
    while i + 5 <= len(data):
        n = struct.unpack(">H", data[i + 3:i + 5])[0]
        if i + 5 + n > len(data):
            break
        if data[i] == 21 and n == 2:
            out.append((data[i + 5], data[i + 6]))
        i += 5 + n
    return out


def raw_socket(ctx, port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout)
    ctx.sockets.append(s)
    return s

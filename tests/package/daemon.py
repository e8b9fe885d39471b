#!/usr/bin/env python3
"""tests/package/daemon.py -- the daemon conventions of issue 18, against a real binary.

    python3 tests/package/daemon.py [--only cross] BINARY [QEMU_PREFIX...]

Each check starts BINARY (./rproxy, or a cross-built one under qemu-user when a
prefix such as `qemu-aarch64 -L /usr/aarch64-linux-gnu` follows) on loopback
in front of a Python device, and prints TAP lines "ok N - name" / "not ok N -
name" (tests/package/run.sh numbers nothing; scripts/runtests.sh counts).

Checked: systemd's notify protocol (a test AF_UNIX datagram socket as
NOTIFY_SOCKET: READY=1 only once the listener accepts, STATUS=, STOPPING=1, no
READY=1 when the start fails), -u (bind and read a root-only key as root, then
/proc/PID/status shows the user), syslog (a test syslog socket), -j (every
line parses, fields as the text line's), SIGUSR1 (reopen), SIGHUP (reload,
says so), and the bad inputs: unknown user, drop without root, an unopenable
log file, /dev/full, a missing syslog socket, a NOTIFY_SOCKET that does not
exist.  --only cross: the subset a cross-built binary under qemu-user runs
(requests, TLS handshake, notify, JSON).
"""
import http.server
import json
import os
import pwd
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ARGS = sys.argv[1:]
ONLY = None
if ARGS[:1] == ["--only"]:
    ONLY, ARGS = ARGS[1], ARGS[2:]
BINARY = os.path.abspath(ARGS[0])
PREFIX = ARGS[1:]
SLOW = 4.0 if PREFIX else 1.0  # qemu-user starts slower
TMP = tempfile.mkdtemp(prefix="rproxy-pkg-")
n_test = 0
failures = 0


def check(name, cond, detail=""):
    global n_test, failures
    n_test += 1
    if cond:
        print("ok %d - %s" % (n_test, name), flush=True)
    else:
        failures += 1
        print("not ok %d - %s" % (n_test, name), flush=True)
        for line in str(detail).splitlines()[-20:]:
            print("#   " + line, flush=True)


# ---- a device, a free port, a certificate ----

class Device(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello from the device\n"
        self.send_response(200)
        if self.path.startswith("/c/"):  # the cache route's answers are cacheable
            self.send_header("Cache-Control", "max-age=60")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class DeviceServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


DEV = DeviceServer(("127.0.0.1", 0), Device)
threading.Thread(target=DEV.serve_forever, daemon=True).start()
DEV_PORT = DEV.server_address[1]


def free_port(low=False):
    """A free TCP port on 127.0.0.1 (below 1024 with low=True)."""
    for port in (range(700, 1000) if low else [0]):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


CERT = os.path.join(TMP, "gw.crt")
KEY = os.path.join(TMP, "gw.key")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "30", "-subj", "/CN=gw.test", "-keyout", KEY, "-out", CERT],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.chmod(KEY, 0o600)  # root-only: -u must read it before the drop
os.chmod(TMP, 0o755)


def config(port, tls_port=None):
    text = "listen 127.0.0.1:%d\n" % port
    if tls_port:
        text += "listen 127.0.0.1:%d tls\ntls cert=%s key=%s\n" % (tls_port, CERT, KEY)
    text += ("pool lan\ndevice lan 127.0.0.1:%d\nroute path=/c/ pool=lan cache=on\nroute pool=lan\n"
             % DEV_PORT)
    path = os.path.join(TMP, "rproxy-%d.conf" % port)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


# ---- running rproxy ----

class Proxy:
    def __init__(self, args, env_extra=None, port=None, tls_port=None, wait=True, pre=()):
        self.port = port or free_port()
        self.tls_port = tls_port
        self.conf = config(self.port, tls_port)
        self.err = open(os.path.join(TMP, "stderr-%d" % self.port), "w+")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.update(env_extra or {})
        self.p = subprocess.Popen(list(pre) + PREFIX + [BINARY, "-c", self.conf] + list(args),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=self.err, env=env)
        if wait:
            self.wait_listening()

    def wait_listening(self, timeout=10):
        end = time.time() + timeout * SLOW
        while time.time() < end and self.p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def stderr(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def get(port, path="/", tls=False, raw=None, timeout=5):
    """(status, body) of one request through rproxy; raw: bytes sent as is."""
    s = socket.create_connection(("127.0.0.1", port), timeout * SLOW)
    if tls:
        ctx = ssl.create_default_context(cafile=CERT)
        ctx.check_hostname = False
        s = ctx.wrap_socket(s, server_hostname="gw.test")
    s.sendall(raw or ("GET %s HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n" % path)
              .encode())
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
    version = s.version() if tls else None
    s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    return (int(m.group(1)) if m else 0), body, version


def wait_for(pred, timeout=5):
    end = time.time() + timeout * SLOW
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def read_file(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class DgramSocket:
    """A bound AF_UNIX datagram socket: the test NOTIFY_SOCKET or syslog."""

    def __init__(self, name):
        self.path = os.path.join(TMP, name)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)
        os.chmod(self.path, 0o666)
        self.got = []

    def recv(self, timeout=5):
        """The next datagram (str), or None after timeout."""
        self.s.settimeout(timeout * SLOW)
        try:
            d = self.s.recv(65536).decode(errors="replace")
            self.got.append(d)
            return d
        except socket.timeout:
            return None

    def until(self, word, timeout=5):
        end = time.time() + timeout * SLOW
        while time.time() < end:
            d = self.recv(max(0.05, end - time.time()) / SLOW)
            if d is not None and word in d:
                return d
        return None

    def close(self):
        self.s.close()
        os.unlink(self.path)


def uid_of(pid):
    m = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", read_file("/proc/%d/status" % pid), re.M)
    return tuple(int(x) for x in m.groups()) if m else None


def child_pid(p):
    """rproxy's pid (qemu-user runs it in its own process: same pid)."""
    return p.p.pid


# ---- the checks ----

def t_notify():
    ns = DgramSocket("notify.sock")
    px = Proxy([], {"NOTIFY_SOCKET": ns.path}, wait=False)
    first = ns.recv(10)
    accepted = False
    if first and "READY=1" in first:
        try:  # at once: READY=1 must mean the listener accepts
            socket.create_connection(("127.0.0.1", px.port), 1).close()
            accepted = True
        except OSError:
            pass
    check("notify: the first datagram is READY=1, and the listener accepts when it comes",
          first is not None and "READY=1" in first and accepted, "%r\n%s" % (first, px.stderr()))
    check("notify: READY=1 comes with STATUS=listening on 127.0.0.1:%d" % px.port,
          first is not None and ("STATUS=listening on 127.0.0.1:%d" % px.port) in first, first)
    status = get(px.port)[0]
    check("notify: serves after READY=1", status == 200, status)
    px.p.send_signal(signal.SIGTERM)
    stopping = ns.until("STOPPING=1")
    try:  # one signal: a second (px.stop's) would cut what is still closing and exit 3
        rc = px.p.wait(12 * SLOW)
    except subprocess.TimeoutExpired:
        rc = px.stop()
    check("notify: SIGTERM sends STOPPING=1 with a STATUS, exit 0",
          stopping is not None and "STATUS=stopping" in stopping and rc == 0,
          "%r rc=%s\n%s" % (ns.got, rc, px.stderr()))
    # a start that fails: no READY=1
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    px = Proxy([], {"NOTIFY_SOCKET": ns.path}, port=busy, wait=False)
    rc = px.p.wait(10 * SLOW)
    got = []
    while True:
        d = ns.recv(0.3)
        if d is None:
            break
        got.append(d)
    blocker.close()
    check("notify: a start that fails (port taken) sends no READY=1, says why in STATUS=, exit 1",
          rc == 1 and not any("READY=1" in d for d in got) and any("STATUS=cannot start" in d for d in got),
          "rc=%s %r\n%s" % (rc, got, px.stderr()))
    ns.close()


def t_notify_abstract():
    name = "rproxy-test-notify-%d" % os.getpid()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(10 * SLOW)
    px = Proxy([], {"NOTIFY_SOCKET": "@" + name}, wait=False)
    try:
        got = s.recv(4096).decode()
    except socket.timeout:
        got = None
    px.stop()
    s.close()
    check("notify: an abstract NOTIFY_SOCKET (@name) gets READY=1", got is not None and "READY=1" in got,
          "%r\n%s" % (got, px.stderr()))


def t_notify_missing():
    path = os.path.join(TMP, "no-such-notify.sock")
    px = Proxy([], {"NOTIFY_SOCKET": path})
    status = get(px.port)[0]
    err = px.stderr()
    px.stop()
    check("bad input: a NOTIFY_SOCKET that does not exist is reported, rproxy serves anyway",
          status == 200 and ("NOTIFY_SOCKET=%s: No such file or directory" % path) in err
          and "serving anyway" in err, "%s\n%s" % (status, err))
    px = Proxy([], {"NOTIFY_SOCKET": "relative/path"})
    status = get(px.port)[0]
    err = px.stderr()
    px.stop()
    check("bad input: a NOTIFY_SOCKET that is no path is reported, rproxy serves anyway",
          status == 200 and "NOTIFY_SOCKET=relative/path: not a socket path" in err, err)


def t_user():
    nobody = pwd.getpwnam("nobody")
    port = free_port(low=True)  # below 1024: bound as root, before the drop
    tls_port = free_port()
    ns = DgramSocket("notify-u.sock")
    px = Proxy(["-u", "nobody"], {"NOTIFY_SOCKET": ns.path}, port=port, tls_port=tls_port,
               wait=False)
    ready = ns.until("READY=1", 10)
    uids = uid_of(px.p.pid)
    status = get(px.port)[0]
    tstatus, _, version = get(tls_port, tls=True)
    err = px.stderr()
    check("-u nobody: /proc/PID/status Uid is nobody's (real, effective, saved, fs) by READY=1",
          ready is not None and uids == (nobody.pw_uid,) * 4, "%r %r\n%s" % (ready, uids, err))
    gids = re.search(r"^Gid:\s+(\d+)", read_file("/proc/%d/status" % px.p.pid), re.M)
    check("-u nobody: gid is nobody's, and it says so",
          gids is not None and int(gids.group(1)) == nobody.pw_gid and "running as user nobody" in err,
          err)
    check("-u nobody: port %d (<1024) bound before the drop serves" % port, status == 200, err)
    check("-u nobody: the root-only (0600) key was read before the drop: TLS handshake and 200",
          tstatus == 200 and version is not None, "%s %s\n%s" % (tstatus, version, err))
    px.stop()
    ns.close()


def t_user_bad():
    px = Proxy(["-u", "no-such-user-rp"], wait=False)
    rc = px.p.wait(10 * SLOW)
    err = px.stderr()
    check("bad input: -u with an unknown user: 'no such user', exit 1, nothing listened",
          rc == 1 and "rproxy: -u no-such-user-rp: no such user" in err and "listening" not in err,
          "rc=%s\n%s" % (rc, err))
    r = subprocess.run(PREFIX + [BINARY, "-t", "-u", "no-such-user-rp"], capture_output=True, text=True)
    check("bad input: -t -u with an unknown user fails the check", r.returncode == 1 and
          "no such user" in r.stderr, r.stderr)
    # not root: the drop cannot happen, and rproxy must not go on
    nobody = pwd.getpwnam("nobody")
    pre = ["setpriv", "--reuid", str(nobody.pw_uid), "--regid", str(nobody.pw_gid), "--clear-groups"]
    px = Proxy(["-u", "daemon"], wait=False, pre=pre)
    rc = px.p.wait(10 * SLOW)
    err = px.stderr()
    check("bad input: -u daemon started as nobody: 'cannot switch users', exit 1",
          rc == 1 and "cannot switch users when not started as root" in err, "rc=%s\n%s" % (rc, err))
    px = Proxy(["-u", "nobody"], pre=pre)
    status = get(px.port)[0]
    px.stop()
    check("-u naming the user rproxy already runs as (systemd's User=) is fine", status == 200,
          px.stderr())


def t_syslog():
    sl = DgramSocket("log.sock")
    px = Proxy(["-l", "syslog:" + sl.path])
    get(px.port, "/via-syslog")
    line = sl.until('"GET /via-syslog"')
    listening = [d for d in sl.got if "listening on" in d]
    px.stop()
    pid = px.p.pid
    check("syslog: the access line reaches the socket as <30>... rproxy[PID]: ACCESS (daemon.info)",
          line is not None and re.match(r"<30>\w{3} [ \d]\d \d\d:\d\d:\d\d rproxy\[%d\]: ACCESS 127\.0\.0\.1 "
                                        r'"GET /via-syslog" 200 ' % pid, line), "%r" % sl.got)
    check("syslog: rproxy's own lines go there too (listening on)", bool(listening), sl.got)
    sl.close()
    # no syslog daemon: serve anyway, say so once, recover when it comes back
    path = os.path.join(TMP, "late.sock")
    px = Proxy(["-l", "syslog:" + path])
    s1 = get(px.port, "/lost")[0]
    s2 = get(px.port, "/lost2")[0]
    err = wait_for(lambda: "cannot write" in px.stderr() and px.stderr())
    late = DgramSocket("late.sock")
    get(px.port, "/back")
    back = late.until('"GET /back"')
    lost = [d for d in late.got if "writing again" in d] or [late.until("writing again") or ""]
    px.stop()
    check("bad input: no syslog socket: requests served, one 'cannot write' on stderr",
          s1 == 200 and s2 == 200 and err and err.count("cannot write") == 1, px.stderr())
    check("syslog: when the socket appears lines flow again, with the count of bytes lost",
          back is not None and lost and re.search(r"writing again, \d+ bytes", lost[0]) is not None,
          "%r\n%s" % (late.got, px.stderr()))
    late.close()


def t_json(tls=True):
    log = os.path.join(TMP, "json-%d.log" % os.getpid())
    tls_port = free_port() if tls else None
    px = Proxy(["-l", log, "-j"], tls_port=tls_port)
    get(px.port, '/a?q="x"\\')
    get(px.port, raw=b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n")
    get(px.port, "/c/x")
    get(px.port, "/c/x")
    if tls:
        get(tls_port, "/secure", tls=True)
    px.stop()
    text = read_file(log)
    objs, bad = [], []
    for line in text.splitlines():
        try:
            objs.append(json.loads(line))
        except ValueError:
            bad.append(line)
    check("-j: every log line is one JSON object", text and not bad, bad or text)
    acc = [o for o in objs if "status" in o]
    want = {"time", "client", "method", "target", "status", "bytes", "device", "ms", "cut", "why",
            "route", "pool", "cache", "tls"}
    ok = [o for o in acc if o.get("target") == '/a?q="x"\\']
    check("-j: a request's object has the access line's fields plus route, pool, cache, tls",
          ok and set(ok[0]) == want and ok[0]["status"] == 200 and ok[0]["method"] == "GET"
          and ok[0]["device"] == "127.0.0.1:%d" % DEV_PORT and ok[0]["pool"] == "lan"
          and ok[0]["route"] == 1 and ok[0]["cache"] is None and ok[0]["tls"] is None and ok[0]["client"] == "127.0.0.1",
          json.dumps(acc))
    cached = [(o["route"], o["cache"], o["device"]) for o in acc if o.get("target") == "/c/x"]
    check("-j: a cache route's objects say route 0 and what the cache did (stored, then hit)",
          len(cached) == 2 and cached[0][:2] in ((0, "stored"), (0, "miss")) and cached[1][:2] == (0, "hit")
          and cached[1][2] is None, cached)
    refused = [o for o in acc if o.get("status") == 400]
    check("-j: an unreadable request line: method/target null, why names the rule",
          refused and refused[0]["method"] is None and refused[0]["why"], json.dumps(acc))
    if tls:
        sec = [o for o in acc if o.get("target") == "/secure"]
        check("-j: a TLS request names its TLS version", sec and sec[0]["tls"] in ("1.2", "1.3"),
              json.dumps(acc))
    own = [o for o in objs if "msg" in o]
    check("-j: rproxy's own lines are objects with level and msg",
          any(o["level"] == "info" and o["msg"].startswith("listening on") for o in own), own)


def t_reopen():
    d = os.path.join(TMP, "logs")
    os.makedirs(d, exist_ok=True)
    log = os.path.join(d, "access.log")
    px = Proxy(["-l", log])
    get(px.port, "/before")
    wait_for(lambda: "/before" in read_file(log))
    os.rename(log, log + ".1")
    px.p.send_signal(signal.SIGUSR1)
    wait_for(lambda: os.path.exists(log))
    get(px.port, "/after")
    after = wait_for(lambda: "/after" in read_file(log))
    old, new = read_file(log + ".1"), read_file(log)
    px.p.send_signal(signal.SIGHUP)
    hup = wait_for(lambda: "reload: " in read_file(log))
    status = get(px.port)[0]
    rc = px.stop()
    check("-l FILE: text lines start with the UTC time",
          re.search(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ACCESS 127\.0\.0\.1 "GET /before" 200 ', old, re.M)
          and re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ rproxy: listening on ", old, re.M), old)
    check("SIGUSR1 reopens the log file: old lines in the rotated file, new ones in the new",
          after and "/before" in old and "/after" not in old and "/after" in new
          and "log %s reopened" % log in new, "old:\n%s\nnew:\n%s" % (old, new))
    check("SIGHUP: the same file re-read and applied (logged), keeps serving",
          hup and re.search(r"reload: \S+ applied: 1 listeners, \d+ pools", read_file(log))
          and status == 200 and rc == 0, read_file(log))
    # reopen as a user that may not create files there: keeps the old file
    os.chmod(d, 0o755)
    log2 = os.path.join(d, "access2.log")
    px = Proxy(["-l", log2, "-u", "nobody"])
    os.rename(log2, log2 + ".1")
    px.p.send_signal(signal.SIGUSR1)
    msg = wait_for(lambda: "cannot reopen" in read_file(log2 + ".1"))
    get(px.port, "/still")
    still = wait_for(lambda: "/still" in read_file(log2 + ".1"))
    px.stop()
    check("bad input: a reopen that fails (-u nobody, root's directory) logs why and keeps the old file",
          msg and still and "Permission denied" in read_file(log2 + ".1"), read_file(log2 + ".1"))


def t_log_bad():
    bad = os.path.join(TMP, "no-such-dir", "x.log")
    r = subprocess.run(PREFIX + [BINARY, "-t", "-l", bad], capture_output=True, text=True)
    check("bad input: -t -l with an unopenable file: 'cannot open', exit 1",
          r.returncode == 1 and ("rproxy: -l %s: cannot open: No such file or directory" % bad) in r.stderr,
          r.stderr)
    px = Proxy(["-l", bad])
    status = get(px.port, "/fallback")[0]
    err = wait_for(lambda: "/fallback" in px.stderr() and px.stderr())
    px.stop()
    check("bad input: started with an unopenable log file: says so, logs to stderr, serves",
          status == 200 and err and "logging to stderr instead" in err and "/fallback" in err, px.stderr())
    px = Proxy(["-l", "/dev/full"])
    statuses = [get(px.port, "/full%d" % i)[0] for i in range(5)]
    err = wait_for(lambda: "cannot write" in px.stderr() and px.stderr())
    alive = px.p.poll() is None
    rc = px.stop()
    err = px.stderr()
    check("bad input: a full disk (/dev/full): every request served, one clear message, clean exit",
          statuses == [200] * 5 and alive and rc == 0 and err.count("cannot write") == 1
          and "No space left on device" in err and "proxying goes on" in err,
          "%r rc=%s\n%s" % (statuses, rc, err))


def t_cross():
    """What a cross-built binary proves under qemu-user."""
    r = subprocess.run(PREFIX + [BINARY, "-v"], capture_output=True, text=True, timeout=60)
    check("cross: the binary runs under qemu-user (-v)", r.returncode == 0 and "rproxy " in r.stdout,
          r.stdout + r.stderr)
    tls_port = free_port()
    ns = DgramSocket("notify-x.sock")
    px = Proxy([], {"NOTIFY_SOCKET": ns.path}, tls_port=tls_port, wait=False)
    ready = ns.until("READY=1", 30)
    statuses = [get(px.port, "/x%d" % i)[0] for i in range(20)]
    tstatus, body, version = get(tls_port, "/tls", tls=True)
    rc = px.stop()
    check("cross: READY=1 under qemu-user", ready is not None, px.stderr())
    check("cross: 20 requests proxied to the device", statuses == [200] * 20, statuses)
    check("cross: a TLS handshake (BearSSL, libbearssl0 of the target) and a proxied request",
          tstatus == 200 and b"hello from the device" in body and version, "%s %s" % (tstatus, version))
    check("cross: SIGTERM stops it, exit 0", rc == 0, px.stderr())


def main():
    if ONLY == "cross":
        t_cross()
    else:
        t_notify()
        t_notify_abstract()
        t_notify_missing()
        t_user()
        t_user_bad()
        t_syslog()
        t_json()
        t_reopen()
        t_log_bad()
    DEV.shutdown()
    subprocess.run(["rm", "-rf", TMP])
    return 1 if failures else 0


sys.exit(main())

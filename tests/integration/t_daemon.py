"""t_daemon.py -- rproxy as a program: the command line (-t, -c, -v, -h, -q), config
errors reported as FILE:LINE:, SIGINT and SIGTERM (graceful stop), the ACCESS log.
"""

import re
import signal
import socket
import time

from checks import check, eq, get, req_bytes, run_cli, test, wait_stderr
from devserver import echo
from harness import free_port


# =====================================================================
# command line and config errors
# =====================================================================

def write_conf(ctx, name, text):
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


GOOD_CONF = """# a good config
listen 127.0.0.1:%d
pool p balance=wrr retries=1
device p 127.0.0.1:9001 weight=3 max_fails=2 fail_timeout=5
device p 127.0.0.1:9002 weight=0
route host=x.example path=/api pool=p
route pool=p
timeout client_header=500 client_idle=500 connect=500 device=500 device_idle=500
via myproxy
"""


@test("CLI: -t -c good.conf prints 'FILE: ok' and exits 0")
def t_cli_good(ctx):
    path = write_conf(ctx, "good.conf", GOOD_CONF % free_port())
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    eq(rc, 0, "exit status (stderr: %r)" % err)
    eq(out.strip(), "%s: ok" % path, "stdout")


BAD_CONFS = [
    ("unknown directive", 3, "listen 127.0.0.1:8080\npool p\nfrobnicate now\n"
     "device p 127.0.0.1:9001\nroute pool=p\n"),
    ("bad port", 1, "listen 127.0.0.1:99999\npool p\ndevice p 127.0.0.1:9001\nroute pool=p\n"),
    ("device names an undefined pool", 3, "listen 8080\npool p\ndevice q 127.0.0.1:9001\n"
     "route pool=p\n"),
    ("route names an undefined pool", 4, "listen 8080\npool p\ndevice p 127.0.0.1:9001\n"
     "route pool=nope\n"),
    ("path without '/'", 5, "listen 8080\n# comment\npool p\ndevice p 127.0.0.1:9001\n"
     "route path=api pool=p\n"),
    ("weight 5000", 4, "listen 8080\n\npool p\ndevice p 127.0.0.1:9001 weight=5000\n"
     "route pool=p\n"),
    ("duplicate pool name", 3, "listen 8080\npool p\npool p\ndevice p 127.0.0.1:9001\n"
     "route pool=p\n"),
    ("unknown option", 2, "listen 8080\npool p colour=blue\ndevice p 127.0.0.1:9001\n"
     "route pool=p\n"),
]


def make_cli_bad(label, line, text):
    def fn(ctx):
        path = write_conf(ctx, "bad.conf", text)
        rc, out, err = run_cli(ctx, ["-t", "-c", path])
        check(rc != 0, "exit status", "non-zero (spec: 1)", rc)
        check("%s:%d:" % (path, line) in err, "stderr names FILE:LINE:",
              "%s:%d: ..." % (path, line), err.strip())
        eq(rc, 1, "exit status (spec: 1)")
    return fn


for _l, _n, _t in BAD_CONFS:
    test("CLI: bad config (%s) -> FILE:%d: and exit 1" % (_l, _n))(make_cli_bad(_l, _n, _t))


@test("CLI: config without listen/route lines is an error; unreadable file too")
def t_cli_missing(ctx):
    path = write_conf(ctx, "nolisten.conf", "pool p\ndevice p 127.0.0.1:9001\nroute pool=p\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    check(rc != 0 and path in err, "no listen line", "non-zero + file name", (rc, err))
    path = write_conf(ctx, "noroute.conf", "listen 8080\npool p\ndevice p 127.0.0.1:9001\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    check(rc != 0 and path in err, "no route line", "non-zero + file name", (rc, err))
    missing = ctx.path("does-not-exist.conf")
    rc, out, err = run_cli(ctx, ["-t", "-c", missing])
    eq(rc, 1, "exit status for an unreadable file")
    eq(err.strip(), "%s: cannot read: No such file or directory" % missing,
       "message names the reason (strerror)")
    rc, out, err = run_cli(ctx, ["-t", "-c", ctx.dir])
    eq((rc, err.strip()), (1, "%s: cannot read: Is a directory" % ctx.dir), "a directory")


@test("CLI: a config error prints the line under the message with a caret under the word")
def t_cli_caret(ctx):
    path = write_conf(ctx, "caret.conf", "listen 8080\npool lan\npool cams\n"
                      "device lan 10.0.0.5:80\ndevice cams 10.0.0.6:80\n"
                      "\troute path=/x pool=lna\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    eq(rc, 1, "exit status")
    eq(err.splitlines(), ["%s:6: undefined pool 'lna' (defined: lan, cams)" % path,
                          "    \troute path=/x pool=lna",
                          "    \t" + " " * len("route path=/x pool=") + "^~~"], "stderr")
    path = write_conf(ctx, "caret2.conf", "listen 8080\ndevcie lan 10.0.0.5:80\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    eq(err.splitlines(), ["%s:2: unknown directive 'devcie' (did you mean 'device'?)" % path,
                          "    devcie lan 10.0.0.5:80", "    ^~~~~~"], "stderr (directive)")
    # an error about no one word: the message alone
    path = write_conf(ctx, "noroute.conf", "listen 8080\npool p\ndevice p 127.0.0.1:9\n")
    rc, out, err = run_cli(ctx, ["-t", "-c", path])
    eq(err.splitlines(), ["%s:3: no route line" % path], "stderr (no route line)")


DAEMON_MESSAGES = [
    ("weight=three", "device p 127.0.0.1:9001 weight=three",
     "weight: 'three' is not a number (0-1000)"),
    ("timeout connect=3s is accepted, connect=3x is not", "timeout connect=3s device=3x",
     "device: '3x' has an unknown unit (ms, s, m, h)"),
    ("device with a malformed host name", "device p cam..local:80",
     "bad device address 'cam..local:80': want IP:PORT or NAME:PORT"),
    ("missing certificate file", "tls cert=/nonexistent/gw.crt key=/nonexistent/gw.key",
     "cannot read certificate file '/nonexistent/gw.crt': not found"),
]


@test("CLI: messages say how to fix it (value, unit, host name, a missing certificate)")
def t_cli_messages(ctx):
    for label, line, msg in DAEMON_MESSAGES:
        path = write_conf(ctx, "m.conf", "listen 8080\npool p\ndevice p 127.0.0.1:9002\n"
                          "route pool=p\n%s\n" % line)
        rc, out, err = run_cli(ctx, ["-t", "-c", path])
        eq((rc, err.splitlines()[0] if err else ""), (1, "%s:5: %s" % (path, msg)), label)


@test("CLI: running (not -t) with a bad config fails with FILE:LINE:")
def t_cli_bad_run(ctx):
    path = write_conf(ctx, "bad.conf", "listen 127.0.0.1:%d\npool p\nbogus\n" % free_port())
    rc, out, err = run_cli(ctx, ["-c", path], timeout=5)
    check(rc != 0, "exit status", "non-zero", rc)
    check("%s:3:" % path in err, "stderr", "%s:3:" % path, err)


@test("CLI: -v prints the version, -h exits 0, unknown option exits 2")
def t_cli_flags(ctx):
    rc, out, err = run_cli(ctx, ["-v"])
    eq(rc, 0, "-v exit status")
    eq(out.strip(), "rproxy 0.1.0", "-v output")
    rc, out, err = run_cli(ctx, ["-h"])
    eq(rc, 0, "-h exit status")
    check(out.strip() != "", "-h prints usage on stdout", "usage", out)
    rc, out, err = run_cli(ctx, ["-Z"])
    eq(rc, 2, "unknown option exit status")


@test("CLI: -h and --help name the signals and the config reference; --help exits 0")
def t_cli_help(ctx):
    rc, out, err = run_cli(ctx, ["-h"])
    for needle in ("SIGTERM", "SIGINT", "-g", "SIGHUP", "Configuration reference",
                   "rproxy.h"):
        check(needle in out, "-h mentions %r" % needle, needle, out)
    eq(run_cli(ctx, ["--help"]), (0, out, ""), "--help: the same text, exit 0")
    eq(run_cli(ctx, ["-q", "--help"])[0], 0, "--help after another option")
    rc, out2, err = run_cli(ctx, ["--helpx"])
    eq((rc, out2), (2, ""), "--helpx is an unknown option (usage on stderr, exit 2)")


# =====================================================================
# signals
# =====================================================================

@test("SIGINT: graceful stop, exit 0")
def t_sigint(ctx):
    dev = ctx.device()
    px = ctx.start(devices=[dev])
    c, r = get(ctx, "/x")
    eq(r.status, 200, "status")
    c.close()
    px.expect_exit = True
    px.signal(signal.SIGINT)
    eq(px.wait_exit(5), 0, "exit status after SIGINT")


def slow_answer(conn, req):
    time.sleep(1.0)
    return echo(conn, req)


@test("SIGTERM: in-flight request completes, new connections refused, exit 0", serial=True)
def t_sigterm(ctx):
    dev = ctx.device(slow_answer)
    px = ctx.start(devices=[dev], args=["-g", "5000"])
    p = ctx.curl_bg("-o", ctx.path("o"), "-w", "%{http_code}", ctx.url("/slow"))
    check(dev.wait_requests(1, 5), "request reached the device", "1", 0)
    px.expect_exit = True
    t0 = time.monotonic()
    px.signal(signal.SIGTERM)
    refused = False
    while time.monotonic() - t0 < 0.8:
        s = socket.socket()
        ctx.sockets.append(s)
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", ctx.port))
            s.close()
            time.sleep(0.05)
        except (ConnectionRefusedError, ConnectionResetError):
            # reset: the connect completed into the listen queue just as
            # rproxy closed the listener (the kernel resets what it queued);
            # refused or reset, the new connection was not served
            refused = True
            break
    check(refused, "new connections refused after SIGTERM", "ECONNREFUSED or ECONNRESET", "accepted")
    out, err = p.communicate(timeout=8)
    eq(p.returncode, 0, "curl exit code (%s)" % err.decode().strip())
    eq(out, b"200", "in-flight request status")
    rc = px.wait_exit(8)
    eq(rc, 0, "rproxy exit status")


def grace_device(conn, req):
    """/stream: 100 MB, 64 KiB every 20 ms (80 s in all); /hang: never answers."""
    if req.target == "/hang":
        while not conn.dev.stopping:
            time.sleep(0.05)
        return False
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (100 << 20))
    try:
        while not conn.dev.stopping:
            conn.send(b"x" * 65536)
            time.sleep(0.02)
    except OSError:
        pass
    conn.close()
    return False


@test("SIGTERM -g 1000: the grace period ends with a download and a waiting request still "
      "open: both cut and logged (cut=shutdown, status 0 why=...), 'grace period expired', "
      "exit 3", serial=True, timeout=30)
def t_grace_expired(ctx):
    dev = ctx.device(grace_device)
    px = ctx.start(devices=[dev], args=["-g", "1000"])
    dl = ctx.client(timeout=10)
    dl.send(req_bytes("GET", "/stream"))
    eq(dl.read_head().status, 200, "download started")
    got = len(dl.read_exact(65536))
    hang = ctx.client(timeout=10)
    hang.send(req_bytes("GET", "/hang"))
    check(dev.wait_requests(2, 5), "both requests reached the device", 2, len(dev.requests))
    px.expect_exit = True
    t0 = time.monotonic()
    px.signal(signal.SIGTERM)
    rc = px.wait_exit(8)
    dt = time.monotonic() - t0
    eq(rc, 3, "exit status when the grace period cut connections")
    check(0.9 < dt < 4, "exited when the 1 s grace period ended", "1-4 s", "%.2f s" % dt)
    try:
        while True:
            chunk = dl.read_exact(65536, timeout=2)
            got += len(chunk)
    except Exception:  # Closed (with what was left) or reset: the download was cut
        pass
    check(got < 100 << 20, "the download was cut", "< 100 MB", got)
    err = px.stderr()
    check("rproxy: grace period (1000 ms) expired: cutting 2 connection(s)" in err,
          "the log says the grace period expired and how many were cut",
          "grace period (1000 ms) expired: cutting 2 connection(s)", px.stderr_tail(6))
    check(re.search(r'^ACCESS 127\.0\.0\.1 "GET /stream" 200 \d+ \S+ \d+ms cut=shutdown$', err,
                    re.M), "the download's access line says cut=shutdown", "cut=shutdown",
          px.stderr_tail(6))
    check(re.search(r'^ACCESS 127\.0\.0\.1 "GET /hang" 0 0 \S+ \d+ms '
                    r'why="shutdown before the response"$', err, re.M),
          "the waiting request's access line: status 0, why=shutdown before the response",
          "status 0", px.stderr_tail(6))
    check("rproxy: stopped (" in err, "then the usual last line", "rproxy: stopped (N requests)",
          px.stderr_tail(3))


# =====================================================================
# access log
# =====================================================================

@test("access log: one ACCESS line per request with method, target, status, device")
def t_access_log(ctx):
    dev = ctx.device()
    px = ctx.start(ctx.config(pools=["pool p", "device p %s" % dev.addr],
                              routes=["route path=/p pool=p", "route path=/q pool=p"]))
    c = ctx.client()
    for path in ("/p", "/q?x=1", "/nothing"):
        c.send(req_bytes("GET", path))
        c.read_response()
    c.close()
    pat = re.compile(r'^ACCESS (\S+) "(\S+) (\S+)" (\d{3}) (\d+) (\S+) (\d+)ms(?: why="([^"]*)")?$',
                     re.M)
    err = wait_stderr(px, lambda s: len(pat.findall(s)) >= 3)
    lines = pat.findall(err)
    eq(len(lines), 3, "ACCESS lines (all: %r)" % [ln for ln in err.splitlines()
                                                  if "ACCESS" in ln])
    eq([(l[0], l[1], l[2], l[3]) for l in lines],
       [("127.0.0.1", "GET", "/p", "200"), ("127.0.0.1", "GET", "/q?x=1", "200"),
        ("127.0.0.1", "GET", "/nothing", "404")], "ACCESS fields")
    eq([l[5] for l in lines], [dev.addr, dev.addr, "-"], "DEVICE field")
    check(int(lines[0][4]) > 0, "BYTES field", "> 0", lines[0][4])


@test("access log: -q writes no ACCESS line (the same requests are served)")
def t_access_log_quiet(ctx):
    dev = ctx.device()
    px = ctx.start(ctx.config(pools=["pool p", "device p %s" % dev.addr],
                              routes=["route pool=p"]), args=["-q", "-g", "1000"])
    c = ctx.client()
    for path in ("/a", "/b"):
        c.send(req_bytes("GET", path))
        eq(c.read_response().status, 200, "status of %s" % path)
    c.close()
    time.sleep(0.3)
    eq([ln for ln in px.stderr().splitlines() if ln.startswith("ACCESS")], [],
       "ACCESS lines with -q")

"""t_demo.py -- `make demo` as CI sees it: scripts/demo.sh run non-interactively on free
ports (DEMO_PORTS) with the binaries under test (RPROXY, DEVSIM), every "  $ " line it
prints run with sh and its output held to what the line under it says to look for, then
the script stopped with SIGTERM; nothing of it may be left running.
"""

import os
import re
import signal
import subprocess
import time

from checks import check, eq, test
from harness import DEVSIM, ROOT, RPROXY, free_port

# What each printed try line must answer, in the order demo.sh prints them.  A line added
# to the demo without an entry here fails the test.
EXPECT = [
    ("weights", lambda out: out.split() == ["hello", "from", "device-a"] * 2 +
     ["hello", "from", "device-b", "hello", "from", "device-a"]),
    ("cache", lambda out: re.fullmatch(r"Cache-Status: rproxy; fwd=miss; fwd-status=200; stored\s+"
                                       r"Cache-Status: rproxy; hit; ttl=\d+\s*", out, re.I)),
    ("status JSON", lambda out: out.startswith("{") and '"pools":[{"name":"demo"' in out
     and '"cache":{' in out),
    ("status Prometheus", lambda out: len(re.findall(
        r"^rproxy_device_requests_total\{pool=\"\w+\",device=\"127\.0\.0\.1:\d+\"\} \d+$",
        out, re.M)) == 5),
    ("TLS", lambda out: re.fullmatch(r"hello from device-[ab]\n", out)),
    ("large download", lambda out: out == "200 20000000 bytes\n"),
    ("slow device", lambda out: re.fullmatch(r"504 after 2\.\d+ s\n", out)),
]


def stop_group(proc):
    """SIGTERM to demo.sh (it stops rproxy and the devices), then whatever of its process
    group is left gets SIGKILL; True when the group was already empty."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    left = True
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        left = False
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return not left


@test("demo: make demo's every curl line gives the answer it describes; stops clean",
      timeout=60.0)
def t_demo(ctx):
    ports = [free_port() for _ in range(7)]
    env = dict(os.environ, DEMO_PORTS=" ".join(map(str, ports)), RPROXY=RPROXY, DEVSIM=DEVSIM)
    out_path, err_path = ctx.path("demo.out"), ctx.path("demo.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(["sh", os.path.join(ROOT, "scripts", "demo.sh")], env=env,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    tmpdir = None
    try:
        end = time.monotonic() + 20
        text = ""
        while "Ctrl-C stops rproxy" not in text and proc.poll() is None \
                and time.monotonic() < end:
            time.sleep(0.1)
            with open(out_path) as f:
                text = f.read()
        check("Ctrl-C stops rproxy" in text, "demo printed its try lines",
              "the full text", (proc.poll(), text, open(err_path).read()[-2000:]))
        m = re.search(r"\(config: (\S+)/demo\.conf\)", text)
        tmpdir = m and m.group(1)
        lines = re.findall(r"^  \$ (.*)$", text, re.M)
        eq(len(lines), len(EXPECT), "number of try lines")
        for (what, ok), line in zip(EXPECT, lines):
            r = subprocess.run(["sh", "-c", line], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=20, stdin=subprocess.DEVNULL)
            got = r.stdout.decode("utf-8", "replace")
            check(ok(got), "%s: %s" % (what, line), "the described answer", got[:600])
    finally:
        clean = stop_group(proc)
    with open(err_path) as f:
        err = f.read()
    check(clean, "demo.sh stopped rproxy and every device itself", "no process left", err[-2000:])
    check("rproxy: stopped (" in err, "rproxy stopped gracefully", "rproxy: stopped (N requests)",
          err[-2000:])
    check(proc.returncode == 143, "demo.sh exit status on SIGTERM", 143, proc.returncode)
    check(tmpdir and not os.path.exists(tmpdir), "temp dir removed", tmpdir, tmpdir)

#!/usr/bin/env python3
"""tests/package/unitrun.py -- start rproxy the way its systemd unit does, without systemd.

    python3 tests/package/unitrun.py UNIT_FILE PORT

Run inside the throwaway root where the .deb was installed (tests/package/run.sh).
Reads the unit's ExecStartPre=, ExecStart=, User=, Group= and
AmbientCapabilities=, runs ExecStartPre (it must pass), then ExecStart through
setpriv(1) as User=/Group= with the ambient capabilities, with NOTIFY_SOCKET a
test AF_UNIX datagram socket, as Type=notify expects.  TAP lines: READY=1
only once the listener on PORT accepts, the process runs as the user
(/proc/PID/status), a request through it is answered by the device, STOPPING=1
on SIGTERM.
"""
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request

unit, port = sys.argv[1], int(sys.argv[2])
n = 0
failed = 0


def check(name, cond, detail=""):
    global n, failed
    n += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, name), flush=True)
    if not cond:
        failed += 1
        for line in str(detail).splitlines()[-15:]:
            print("#   " + line, flush=True)


keys = {}
for line in open(unit):
    m = re.match(r"^(\w+)=(.*)$", line.strip())
    if m:
        keys.setdefault(m.group(1), []).append(m.group(2))

user = keys["User"][0]
group = keys.get("Group", [user])[0]
caps = " ".join(keys.get("AmbientCapabilities", [])).split()
pre = subprocess.run(shlex.split(keys["ExecStartPre"][0]), capture_output=True, text=True)
check("unit: ExecStartPre (rproxy -t) passes on the admin's config", pre.returncode == 0,
      pre.stdout + pre.stderr)

d = tempfile.mkdtemp()
os.chmod(d, 0o755)
path = os.path.join(d, "notify")
ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ns.bind(path)
os.chmod(path, 0o666)
capflags = ",".join("+" + c.lower().replace("cap_", "") for c in caps)
cmd = ["setpriv", "--reuid", user, "--regid", group, "--init-groups"]
if capflags:
    cmd += ["--inh-caps", capflags, "--ambient-caps", capflags]
cmd += shlex.split(keys["ExecStart"][0])
env = dict(os.environ, NOTIFY_SOCKET=path)
p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, text=True)
ns.settimeout(10)
try:
    first = ns.recv(4096).decode()
except socket.timeout:
    first = None
accepts = False
if first and "READY=1" in first:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        accepts = True
    except OSError:
        pass
check("unit: ExecStart as User=%s with %s sends READY=1, and port %d accepts then" %
      (user, ",".join(caps) or "no capabilities", port), accepts, repr(first))
status = open("/proc/%d/status" % p.pid).read()
uid = pwd.getpwnam(user).pw_uid
m = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
check("unit: the packaged daemon runs as %s (uid %d in /proc/PID/status)" % (user, uid),
      m is not None and m.groups() == (str(uid),) * 4, status[:400])
try:
    body = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5).read()
except OSError as e:
    body = repr(e).encode()
check("unit: the packaged binary serves a request from the device", b"hello from" in body, body)
p.send_signal(signal.SIGTERM)
stopping = None
try:
    while True:
        d2 = ns.recv(4096).decode()
        if "STOPPING=1" in d2:
            stopping = d2
            break
except socket.timeout:
    pass
rc = p.wait(15)
check("unit: SIGTERM: STOPPING=1, exit 0", stopping is not None and rc == 0,
      "rc=%s %r\n%s" % (rc, stopping, p.stderr.read()))
sys.exit(1 if failed else 0)

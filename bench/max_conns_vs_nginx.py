#!/usr/bin/env python3
"""bench/max_conns_vs_nginx.py -- one device that serves one connection at a time (200 ms a
request), 10 clients at once, behind open-source nginx (`server ... max_conns=1`) and behind
rproxy (`device ... max_conns=1` + `pool ... queue=50`).  Prints each one's status counts.

    python3 bench/max_conns_vs_nginx.py [RPROXY]      (default ./rproxy; needs nginx in PATH)

nginx's open-source max_conns has no queue (`queue` is nginx Plus only): the requests that
find the server at its limit get 502 ("no live upstreams").  rproxy's queue serves them all.
Loopback only; temporary files under /tmp.
"""

import collections
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from devserver import Device, echo  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def slow(conn, req):
    time.sleep(0.2)
    return echo(conn, req)


def wait_port(port, t=5.0):
    end = time.monotonic() + t
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listening on %d" % port)


def burst(port, n=10):
    out = []
    lock = threading.Lock()

    def one(i):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/r%d" % (port, i), timeout=15) as r:
                st = r.status
        except urllib.error.HTTPError as e:
            st = e.code
        except Exception as e:    # noqa: BLE001
            st = type(e).__name__
        with lock:
            out.append(st)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return dict(collections.Counter(out))


def main():
    rproxy = sys.argv[1] if len(sys.argv) > 1 else "./rproxy"
    d = tempfile.mkdtemp(prefix="maxconns-")
    results = {}
    try:
        dev = Device(slow, single=True)
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off; pid %s/nginx.pid; error_log %s/error.log;
events {}
http { access_log off;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s;
  scgi_temp_path %s;
  upstream dev { server %s max_conns=1; keepalive 4; }
  server { listen 127.0.0.1:%d;
    location / { proxy_pass http://dev; proxy_http_version 1.1;
                 proxy_set_header Connection ""; } } }
""" % (d, d, d, d, d, d, d, dev.addr, port))
        ng = subprocess.Popen(["nginx", "-c", conf, "-p", d], stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            results["nginx max_conns=1"] = burst(port)
        finally:
            ng.terminate()
            ng.wait()
        results["nginx max_conns=1"]["device max at once"] = dev.max_live
        dev.stop()

        dev = Device(slow, single=True)
        port = free_port()
        conf = os.path.join(d, "rproxy.conf")
        with open(conf, "w") as f:
            f.write("listen 127.0.0.1:%d\npool p queue=50\ndevice p %s max_conns=1\n"
                    "route pool=p\n" % (port, dev.addr))
        rp = subprocess.Popen([rproxy, "-q", "-c", conf], stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            results["rproxy max_conns=1 queue=50"] = burst(port)
        finally:
            rp.terminate()
            rp.wait()
        results["rproxy max_conns=1 queue=50"]["device max at once"] = dev.max_live
        dev.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    for k, v in results.items():
        print("%-30s %s" % (k, v))


if __name__ == "__main__":
    main()

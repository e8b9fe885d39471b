#!/usr/bin/env python3
"""soak.py -- the engine behind bench/soak.sh and tests/soak-short.sh (issue 7).

Starts build/devsim and a chunked-answering asyncio device on loopback, rproxy in front
of them (RPROXY, optionally under valgrind), then drives N requests (SOAK_REQUESTS) over
C concurrent connections (SOAK_CONNS) with a fixed mix:

    keep-alive GET          devsim, Content-Length reply
    GET + Connection: close
    HEAD
    POST Content-Length     8 KiB upload
    POST chunked            3 chunks
    GET chunked reply       from the chunked device
    404                     no route (Host: nowhere.invalid)
    400                     malformed request (bare LF) -- connection closed
    502                     pool whose device port is closed
    client abort            request sent, connection dropped before the answer
    cache GET / HEAD / POST a cache=on route over 400 URLs of 3000-byte bodies
                            (max-age=2): more than the 1 MiB arena holds, so
                            hits, misses, expiry, LRU eviction, collapsing and
                            POST invalidation all run; every answer must be the
                            exact body and carry Cache-Status

Every response is checked (status, body length, framing); any mismatch is an error.
After the load: every client closed, the idle device pool expires (device_idle=1000), and
rproxy's open descriptors must be back to the count before the load, its RSS no more than
SOAK_RSS_SLACK_KB above the RSS after the warm-up phase (rproxy's memory is a fixed
pool: pages touched at the peak stay resident, so "no growth after warm-up" is the leak
check).  Prints TAP lines; exit 1 when anything failed.  Loopback only.
"""

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RPROXY = os.environ.get("RPROXY", os.path.join(ROOT, "rproxy"))
DEVSIM = os.environ.get("DEVSIM", os.path.join(ROOT, "build", "devsim"))
N = int(os.environ.get("SOAK_REQUESTS", "1000000"))
CONNS = int(os.environ.get("SOAK_CONNS", "200"))
VALGRIND = os.environ.get("SOAK_VALGRIND", "0") == "1"
RSS_SLACK_KB = int(os.environ.get("SOAK_RSS_SLACK_KB", "2048"))
SEED = int(os.environ.get("SOAK_SEED", "7"))

MIX = [("ka", 40), ("close", 8), ("head", 5), ("post_cl", 10), ("post_chunked", 8),
       ("chunked_reply", 10), ("e404", 5), ("e400", 3), ("e502", 4), ("abort", 2),
       ("pipeline", 5), ("cache_get", 12), ("cache_head", 2), ("cache_post", 2)]
CACHE_URLS = 400
CACHE_BODY = (b"hello from cached\n" + b"x" * 3000)[:3000]

UPLOAD = bytes(random.Random(1).randrange(256) for _ in range(8192))

tap_n = 0
failed = 0


def tap(ok, name, diag=None):
    global tap_n, failed
    tap_n += 1
    if not ok:
        failed += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", tap_n, name))
    if diag and not ok:
        for ln in str(diag).splitlines():
            print("#   " + ln)
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"VmRSS:\s+(\d+)", f.read())
    return int(m.group(1)) if m else -1


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# ==== the chunked device (asyncio, same process) ====

async def chunked_device(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
            if m:
                await reader.readexactly(int(m.group(1)))
            body = b"%x\r\n%s\r\n" % (100, b"c" * 100) + b"%x\r\n%s\r\n" % (28, b"d" * 28) + b"0\r\n\r\n"
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


# ==== client side ====

class Err(Exception):
    pass


async def read_response(reader, head_req=False, info=None):
    head = await reader.readuntil(b"\r\n\r\n")
    if info is not None:
        info["head"] = head
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    if not m:
        raise Err("bad status line %r" % head[:60])
    status = int(m.group(1))
    h = head.lower()
    close = b"\r\nconnection: close" in h
    if head_req or status in (204, 304):
        return status, b"", close
    if b"\r\ntransfer-encoding: chunked" in h:
        body = b""
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            body += (await reader.readexactly(size + 2))[:-2]
        return status, body, close
    m = re.search(rb"\r\ncontent-length: *(\d+)", h)
    if m:
        return status, await reader.readexactly(int(m.group(1))), close
    return status, await reader.read(), True


class Load:
    def __init__(self, port):
        self.port = port
        self.left = N
        self.done = 0
        self.errors = 0
        self.err_samples = []
        self.kinds = [k for k, w in MIX for _ in range(w)]
        self.warm_event = asyncio.Event()
        self.warm_at = max(1, N // 20)

    def take(self):
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def count(self, n=1):
        self.done += n
        if self.done >= self.warm_at:
            self.warm_event.set()

    def error(self, kind, e):
        self.errors += 1
        if len(self.err_samples) < 10:
            self.err_samples.append("%s: %r" % (kind, e))

    async def worker(self, rnd):
        reader = writer = None
        while self.take():
            kind = rnd.choice(self.kinds)
            try:
                if writer is None or kind in ("e400", "abort"):
                    if writer is not None:
                        writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                keep = await self.one(kind, reader, writer)
                if not keep:
                    writer.close()
                    reader = writer = None
            except (Err, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError) as e:
                self.error(kind, e)
                if writer is not None:
                    writer.close()
                reader = writer = None
            self.count()
        if writer is not None:
            writer.close()

    async def one(self, kind, reader, writer):
        host = b"Host: soak.example\r\n"
        if kind == "ka":
            writer.write(b"GET /ka HTTP/1.1\r\n" + host + b"\r\n")
            st, body, close = await read_response(reader)
            if st != 200 or not body.startswith(b"hello from"):
                raise Err("ka: %d %r" % (st, body[:40]))
            return not close
        if kind == "close":
            writer.write(b"GET /close HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
            st, body, close = await read_response(reader)
            if st != 200 or not close:
                raise Err("close: %d close=%s" % (st, close))
            return False
        if kind == "head":
            writer.write(b"HEAD /head HTTP/1.1\r\n" + host + b"\r\n")
            st, _, close = await read_response(reader, head_req=True)
            if st != 200:
                raise Err("head: %d" % st)
            return not close
        if kind == "post_cl":
            writer.write(b"POST /up HTTP/1.1\r\n" + host + b"Content-Length: %d\r\n\r\n"
                         % len(UPLOAD) + UPLOAD)
            st, _, close = await read_response(reader)
            if st != 200:
                raise Err("post_cl: %d" % st)
            return not close
        if kind == "post_chunked":
            writer.write(b"POST /upc HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n"
                         b"400\r\n" + UPLOAD[:1024] + b"\r\n10;x=y\r\n" + UPLOAD[:16]
                         + b"\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
            st, _, close = await read_response(reader)
            if st != 200:
                raise Err("post_chunked: %d" % st)
            return not close
        if kind == "chunked_reply":
            writer.write(b"GET /chunked HTTP/1.1\r\n" + host + b"\r\n")
            st, body, close = await read_response(reader)
            if st != 200 or body != b"c" * 100 + b"d" * 28:
                raise Err("chunked_reply: %d %d bytes" % (st, len(body)))
            return not close
        if kind == "e404":
            writer.write(b"GET /x HTTP/1.1\r\nHost: nowhere.invalid\r\n\r\n")
            st, _, close = await read_response(reader)
            if st != 404:
                raise Err("e404: %d" % st)
            return not close
        if kind == "e400":
            writer.write(b"GET /bad HTTP/1.1\nHost: x\n\n")
            st, _, close = await read_response(reader)
            if st != 400:
                raise Err("e400: %d" % st)
            return False
        if kind == "e502":
            writer.write(b"GET /dead/x HTTP/1.1\r\n" + host + b"\r\n")
            st, _, close = await read_response(reader)
            if st != 502:
                raise Err("e502: %d" % st)
            return not close
        if kind == "abort":
            writer.write(b"POST /up HTTP/1.1\r\n" + host + b"Content-Length: 100000\r\n\r\n"
                         + UPLOAD)
            await writer.drain()
            return False
        if kind == "pipeline":
            writer.write(b"".join(b"GET /p%d HTTP/1.1\r\n" % i + host + b"\r\n" for i in range(4)))
            for _ in range(4):
                st, _, close = await read_response(reader)
                if st != 200:
                    raise Err("pipeline: %d" % st)
            self.count(3)
            return not close
        if kind.startswith("cache_"):
            info = {}
            chost = b"Host: cache.example\r\n"
            url = b"/c/%d" % random.randrange(CACHE_URLS)
            method = {"cache_get": b"GET", "cache_head": b"HEAD", "cache_post": b"POST"}[kind]
            writer.write(method + b" " + url + b" HTTP/1.1\r\n" + chost +
                         (b"Content-Length: 3\r\n\r\nabc" if method == b"POST" else b"\r\n"))
            st, body, close = await read_response(reader, head_req=method == b"HEAD", info=info)
            h = info["head"].lower()
            if st != 200 or b"\r\ncache-status: rproxy" not in h:
                raise Err("%s: %d %r" % (kind, st, info["head"][:200]))
            if method == b"GET" and body != CACHE_BODY:
                raise Err("cache_get: %d-byte body, not the device's" % len(body))
            if method == b"HEAD" and b"\r\ncontent-length: 3000\r\n" not in h:
                raise Err("cache_head: %r" % info["head"][:200])
            return not close
        raise Err("unknown kind " + kind)


async def drive(port, px_pid, out):
    load = Load(port)
    rnd = random.Random(SEED)
    workers = [asyncio.create_task(load.worker(random.Random(rnd.random())))
               for _ in range(CONNS)]
    await load.warm_event.wait()
    await asyncio.sleep(0.2)
    out["warm_rss"] = rss_kb(px_pid)
    t0 = time.monotonic()
    last = t0
    while not all(w.done() for w in workers):
        await asyncio.sleep(0.5)
        if time.monotonic() - last > 30:
            last = time.monotonic()
            print("# %d / %d requests, %d errors, RSS %d kB, %d fds" %
                  (load.done, N, load.errors, rss_kb(px_pid), fds(px_pid)))
            sys.stdout.flush()
    await asyncio.gather(*workers)
    out["secs"] = time.monotonic() - t0
    out["load"] = load


def cache_counters(port):
    """The status page's cache counters (hits, misses, evictions, ...)."""
    import json
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /_status HTTP/1.0\r\nHost: soak.example\r\n\r\n")  # (1.0: no chunks)
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        return json.loads(data.split(b"\r\n\r\n", 1)[1]).get("cache", {})
    except (OSError, ValueError, IndexError) as e:
        return {"error": str(e)}


def main():
    tmp = tempfile.mkdtemp(prefix="rproxy-soak-")
    procs = []
    try:
        dport, lport, dead = free_port(), free_port(), free_port()
        dsim = subprocess.Popen([DEVSIM, "-p", str(dport), "-n", "soak"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(dsim)
        cdport = free_port()
        csim = subprocess.Popen([DEVSIM, "-p", str(cdport), "-n", "cached", "-s", "3000",
                                 "-H", "Cache-Control: public, max-age=2"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(csim)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        csrv = loop.run_until_complete(asyncio.start_server(chunked_device, "127.0.0.1", 0))
        cport = csrv.sockets[0].getsockname()[1]
        conf = os.path.join(tmp, "soak.conf")
        with open(conf, "w") as f:
            f.write("listen 127.0.0.1:%d\n"
                    "pool sim\ndevice sim 127.0.0.1:%d\n"
                    "pool chk\ndevice chk 127.0.0.1:%d\n"
                    "pool dead retries=0\ndevice dead 127.0.0.1:%d max_fails=0\n"
                    "pool csim\ndevice csim 127.0.0.1:%d\n"
                    "route host=cache.example pool=csim cache=on\n"
                    "status path=/_status\n"
                    "route host=nowhere.invalid path=/never pool=sim\n"
                    "route host=soak.example path=/chunked pool=chk\n"
                    "route host=soak.example path=/dead/ pool=dead\n"
                    "route host=soak.example pool=sim\n"
                    "timeout client_header=5000 client_idle=5000 connect=1000 device=5000 "
                    "device_idle=1000\n" % (lport, dport, cport, dead, cdport))
        cmd = [RPROXY, "-c", conf]
        if VALGRIND:
            cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite"] + cmd
        errf = open(os.path.join(tmp, "rproxy.stderr"), "wb")
        px = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=errf)
        procs.append(px)
        end = time.monotonic() + (30 if VALGRIND else 5)
        while True:
            try:
                socket.create_connection(("127.0.0.1", lport), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > end or px.poll() is not None:
                    tap(False, "rproxy starts", "did not listen")
                    return 1
                time.sleep(0.05)
        time.sleep(6 if not VALGRIND else 8)   # the start-up probe connection is reaped
        base_fds = fds(px.pid)
        print("# rproxy %s%s: %d requests over %d connections; baseline %d fds, RSS %d kB"
              % (RPROXY, " under valgrind" if VALGRIND else "", N, CONNS, base_fds,
                 rss_kb(px.pid)))
        sys.stdout.flush()
        out = {}
        loop.run_until_complete(drive(lport, px.pid, out))
        load = out["load"]
        print("# %d requests in %.1f s (%.0f req/s), %d errors" %
              (load.done, out["secs"], load.done / max(out["secs"], 0.001), load.errors))
        tap(load.errors == 0, "soak: every response as expected (%d requests)" % load.done,
            "\n".join(load.err_samples))
        tap(px.poll() is None, "soak: rproxy still running")
        st = cache_counters(lport)
        tap(st.get("hits", 0) > 0 and st.get("misses", 0) > 0 and st.get("evictions", 0) > 0,
            "soak: the cache answered hits, filled misses and evicted (%s)"
            % ", ".join("%s %s" % kv for kv in sorted(st.items())), repr(st))
        # let client closes land and the idle device pool expire (device_idle=1000)
        deadline = time.monotonic() + (15 if VALGRIND else 8)
        now_fds = fds(px.pid)
        while now_fds != base_fds and time.monotonic() < deadline:
            loop.run_until_complete(asyncio.sleep(0.5))
            now_fds = fds(px.pid)
        tap(now_fds == base_fds, "soak: open descriptors back to baseline (%d)" % base_fds,
            "now %d" % now_fds)
        end_rss = rss_kb(px.pid)
        tap(end_rss <= out["warm_rss"] + RSS_SLACK_KB,
            "soak: RSS after the run within %d kB of RSS after warm-up (%d -> %d kB)"
            % (RSS_SLACK_KB, out["warm_rss"], end_rss))
        px.send_signal(signal.SIGTERM)
        try:
            rc = px.wait(60 if VALGRIND else 10)
        except subprocess.TimeoutExpired:
            rc = None
        errf.close()
        err = open(os.path.join(tmp, "rproxy.stderr"), "rb").read().decode("utf-8", "replace")
        bad = re.search(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|==\d+== \w", err)
        tap(rc == 0 and not bad, "soak: rproxy exits 0 after SIGTERM%s, no sanitizer/valgrind "
            "report" % (" (valgrind: 0 errors)" if VALGRIND else ""),
            "exit %s\n%s" % (rc, "\n".join(ln for ln in err.splitlines()
                                          if "ACCESS" not in ln)[-3000:]))
        csrv.close()
        return 1 if failed else 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.call(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())

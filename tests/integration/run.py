#!/usr/bin/env python3
"""run.py -- the rproxy integration test runner: the real daemon, real device servers, real
clients.

    RPROXY=build/rproxy-asan DEVSIM=build/devsim python3 tests/integration/run.py [-k SUBSTR]...
    python3 tests/integration/run.py --valgrind          (short subset under valgrind)
    python3 tests/integration/run.py --list              (names of the selected tests)
    python3 tests/integration/run.py -k keep-alive -k pipelining   (either substring)

-k SUBSTR selects the tests whose name contains SUBSTR (case-insensitive); give -k
several times to run the tests matching any of them.  -k and --list combine with
--valgrind.  RPROXY, RPROXY_SMALL (the RP_MAX_CONNS=8 / RP_MAX_UPSTREAM=4 build) and DEVSIM
name the binaries (harness.py); RP_IT_JOBS sets -j, RP_IT_TIMEOUT_SCALE stretches every
test's hard timeout.

Every test starts its own rproxy (own generated config, free loopback ports) and its own
device servers (devserver.Device), drives it with curl and raw sockets, and is killed
after a hard timeout.  Output is TAP; diagnostics start with "# ".  Exit status 1 when
anything failed.  Python 3 stdlib only; loopback only.

The tests live in topic files (TOPICS below, loaded in that order, so test numbers are
stable); each registers with checks.test and opens with a docstring saying what it
covers.  Shared helpers are in checks.py, process control and clients in harness.py,
device servers in devserver.py.  This file only selects, schedules and reports.
"""

import argparse
import glob
import importlib
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checks import TESTS, short  # noqa: E402
from harness import RPROXY, Ctx, TestFailure  # noqa: E402

TOPICS = [
    "t_forwarding",     # basic GET, forwarded headers, hop-by-hop, absolute-form, via, devsim
    "t_bodies",         # CL/chunked bodies, HEAD, 204/304, close-delimited, 100-continue, 1xx
    "t_keepalive",      # client keep-alive, Connection: close, pipelining, WebSocket
    "t_pooling",        # the device connection pool
    "t_routing",        # routes, weights, failover, backup, leastconn, max_fails
    "t_errors",         # 502/503/504/408, client_idle, failures mid-exchange
    "t_backpressure",   # flow control both ways
    "t_bad_input",      # malformed requests, one row each
    "t_limits",         # accepted head limits, slot exhaustion on the small build
    "t_daemon",         # CLI, config errors, signals, access log
    "t_balance",        # balancing, health checks, retries, status page
    "t_cache",          # the response cache
    "t_faults",         # exhaustion and faults
    "t_smuggling",      # request smuggling / response splitting
    "t_tls",            # TLS termination
    "t_tls_auth",       # client certificates, TLS toward devices
    "t_protect",        # device max_conns/max_idle, the pool queue (RP_ENABLE_LIMITS)
    "t_pathmap",        # issue 15: rewrite=, pool host=, response mapping
    "t_demo",           # scripts/demo.sh (make demo): every printed curl line
    "t_runtime",        # runtime control on the status path: drain/maint/ready, weight
    "t_share",          # shared live streams: one device connection, many viewers
    "t_guard",          # the front door: allow=, Basic auth, client_limit, PROXY protocol
    "t_dns",            # devices by DNS name: a test name server, moves, bad answers
    "t_reload",         # SIGHUP reload: in-flight exchanges, listeners, bad files, carry-over
]


# =====================================================================
# runner
# =====================================================================

class Result:
    def __init__(self):
        self.ok = False
        self.diag = []
        self.done = threading.Event()
        self.exit_codes = []


def run_one(t, valgrind):
    res = Result()
    ctx = Ctx(t.name, valgrind=valgrind)

    def body():
        try:
            t.fn(ctx)
            res.ok = True
        except TestFailure as e:
            res.diag.append(str(e))
            if getattr(e, "expected", None) is not None or getattr(e, "got", None) is not None:
                res.diag.append("  expected: %s" % short(e.expected, 500))
                res.diag.append("  got:      %s" % short(e.got, 500))
        except Exception as e:      # noqa: BLE001 -- a test bug or an unexpected condition
            res.diag.append("%s: %s" % (type(e).__name__, e))
            res.diag += traceback.format_exc().rstrip().splitlines()[-6:]
        finally:
            res.done.set()

    th = threading.Thread(target=body, name="test", daemon=True)
    t0 = time.monotonic()
    th.start()
    limit = t.timeout * (4 if valgrind else 1) * float(os.environ.get("RP_IT_TIMEOUT_SCALE",
                                                                       "1"))
    if not res.done.wait(limit):
        res.ok = False
        res.diag.insert(0, "test timed out after %.1f s (hard limit)" % limit)
    problems = ctx.cleanup()
    th.join(2.0)
    res.exit_codes = [(px.proc.returncode, px.valgrind) for px in ctx.proxies]
    if valgrind:
        # exit status under valgrind is reported as a test of its own
        problems = [p for p in problems if "exited with status" not in p]
    if problems:
        res.ok = False
        res.diag += problems
    res.elapsed = time.monotonic() - t0
    res.notes = list(ctx.diag)
    if not res.ok:
        res.diag += ctx.diag
        for d in ctx.devices:
            with d.lock:
                raw = bytes(d.raw)
                errs = list(d.errors)
            res.diag.append("device %s: %d connection(s), received %s"
                            % (d.name, d.conns, short(raw, 400)))
            res.diag += ["device error: %s" % e for e in errs[:5]]
        for k, c in enumerate(ctx.clients[-3:]):
            conv = c.conversation(300)
            if conv:
                res.diag.append("client connection %d (> sent, < received):" % k)
                res.diag += ["  " + ln for ln in conv[-8:]]
        for px in ctx.proxies:
            tail = px.stderr_tail(20)
            res.diag.append("rproxy stderr (last %d lines, %s):" % (len(tail), px.stderr_path))
            res.diag += ["  " + ln for ln in tail]
    else:
        ctx.remove_dir()
    return res, ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", action="append", default=[], help="run tests whose name "
                    "contains SUBSTR (repeatable)")
    ap.add_argument("--valgrind", action="store_true", help="short subset under valgrind")
    ap.add_argument("-j", type=int, default=int(os.environ.get("RP_IT_JOBS", "2")),
                    help="tests run in parallel (serial ones always alone)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    sel = [t for t in TESTS if (not args.valgrind or t.valgrind)
           and (not args.k or any(k.lower() in t.name.lower() for k in args.k))]
    if args.list:
        for t in sel:
            print(t.name)
        return 0
    order = [t for t in sel if not t.serial] + [t for t in sel if t.serial]
    extra = len(order) if args.valgrind else 0
    print("1..%d" % (len(order) + extra))
    print("# rproxy: %s%s" % (RPROXY, " (under valgrind)" if args.valgrind else ""))
    sys.stdout.flush()

    results = [None] * len(order)
    lock = threading.Lock()
    cond = threading.Condition(lock)
    next_i = [0]
    jobs = 1 if args.valgrind else max(1, args.j)

    serial_busy = [False]

    def worker():
        while True:
            with cond:
                while True:
                    i = next_i[0]
                    if i >= len(order):
                        return
                    t = order[i]
                    if serial_busy[0]:
                        cond.wait(0.1)
                        continue
                    if t.serial and any(r is None for r in results[:i]):
                        cond.wait(0.1)      # a serial test runs alone
                        continue
                    break
                next_i[0] += 1
                if t.serial:
                    serial_busy[0] = True
            r = run_one(t, args.valgrind)
            with cond:
                results[i] = r
                if t.serial:
                    serial_busy[0] = False
                cond.notify_all()

    threads = []
    for _ in range(jobs):
        th = threading.Thread(target=worker, daemon=True)
        th.start()
        threads.append(th)

    failed = 0
    n = 0
    t_start = time.monotonic()
    for i, t in enumerate(order):
        with cond:
            while results[i] is None:
                cond.wait(0.2)
        res, ctx = results[i]
        n += 1
        print("%s %d - %s" % ("ok" if res.ok else "not ok", n, t.name))
        if res.ok:
            for ln in res.notes:
                print("#   note: " + ln)
        if not res.ok:
            failed += 1
            for ln in res.diag:
                for sub in str(ln).splitlines():
                    print("#   " + sub)
        sys.stdout.flush()
        if args.valgrind:
            n += 1
            codes = [c for c, _ in res.exit_codes]
            good = bool(codes) and all(c == 0 for c in codes)
            print("%s %d - valgrind: rproxy exit status 0 after SIGTERM (%s)"
                  % ("ok" if good else "not ok", n, t.name))
            if not good:
                failed += 1
                print("#   exit statuses: %r (99 = valgrind found errors)" % codes)
                for px in ctx.proxies:
                    for ln in px.stderr_tail(30):
                        print("#     " + ln)
            sys.stdout.flush()
    for th in threads:
        th.join(1)
    print("# %d tests, %d failed, %.1f s" % (n, failed, time.monotonic() - t_start))
    return 1 if failed else 0


def load_modules():
    """Import every topic file in TOPICS order; a t_*.py missing from TOPICS is an error
    (its tests would silently never run)."""
    here = os.path.dirname(os.path.abspath(__file__))
    on_disk = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(here, "t_*.py"))}
    unlisted = sorted(on_disk - set(TOPICS))
    if unlisted:
        sys.exit("run.py: topic file(s) not in TOPICS: %s" % ", ".join(unlisted))
    for name in TOPICS:
        importlib.import_module(name)


if __name__ == "__main__":
    load_modules()
    sys.exit(main())

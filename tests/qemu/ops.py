"""ops.py -- the "ops" gateway firmware (make firmware-ops: RP_BOARD_OPS, ops.conf) under
QEMU: devices by DNS name through lwIP's resolver (issue 17 item 5), run by tests/qemu/ops.sh.

On the host's loopback: the name server the firmware asks (tests/integration/dnsserver.py on
127.0.0.1:9153 UDP: the guest's 10.0.2.2:9153 through slirp; records with a TTL of 300 s,
which the firmware's lwIP does not cache: DNS_MAX_TTL 0, resolve= says when to ask again)
and four devices that answer "NAME PATH": cam-a 127.0.0.1:9107 (the guest's 10.0.2.2:9107), cam-b 127.0.0.1:9207
(the guest's 10.0.2.100:9107: a slirp guestfwd running tests/qemu/ops_relay.py per
connection), cam2 127.0.0.1:9109 and the PLC 127.0.0.1:9108 (by address in ops.conf).
Every request is a real curl through the firmware (hostfwd to its :80).  Checked:
  (a) cam1.test resolves at boot: /cam reaches cam-a, the status page shows name and address;
  (c) cam2.test does not resolve at boot (NXDOMAIN): the firmware starts, the PLC serves, /spare
      answers 503 without reaching any device until the name server knows cam2.test, then cam2;
  (b) cam1.test's answer changes to 10.0.2.100: traffic follows (cam-b) within resolve=2 s
      (not the record's 300 s TTL), and cam-a gets no more requests;
  (d) empty, NXDOMAIN, SERVFAIL, truncated, wrong-family and huge answers: the firmware keeps asking
      and keeps the last good address (cam-b serves), logs the failure;
  and a name server that takes 4 s to answer: meanwhile the PLC and the status page answer
  (the lookup "pending"), then its answer moves cam1.test back to cam-a.
TAP on stdout; the UART log is build/qemu-ops-uart.log.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from dnsserver import DNSServer  # noqa: E402

B = os.environ.get("BUILD", "build")
ELF = os.path.join(B, "mps2-an386-ops", "rproxy-gw.elf")
UART = os.path.join(B, "qemu-ops-uart.log")
DNS_PORT = 9153          # lwipopts.h DNS_SERVER_PORT for RP_BOARD_OPS
DEVICES = {"cam-a": 9107, "cam-b": 9207, "plc": 9108, "cam2": 9109}

n = fails = 0


def ok(what):
    global n
    n += 1
    print("ok %d - %s" % (n, what), flush=True)


def nok(what):
    global n, fails
    n += 1
    fails += 1
    print("not ok %d - %s" % (n, what), flush=True)


def check(what, got, want):
    if got == want:
        ok(what)
    else:
        nok("%s (got %r, want %r)" % (what, got, want))


def note(what):
    print("# " + what, flush=True)


# ---- devices: "NAME PATH\n", counted per name
hits = {k: 0 for k in DEVICES}
hits_lock = threading.Lock()


def device(name, port):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            with hits_lock:
                hits[name] += 1
            body = ("%s %s\n" % (name, self.path)).encode()
            if self.path.startswith("/long"):  # 2 s, then 64 KB: in flight across a reload
                time.sleep(2.0)
                body = body + b"x" * 65536
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def hit(name):
    with hits_lock:
        return hits[name]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


PORT = int(os.environ.get("QEMU_PORT") or free_port())


def curl(path, timeout=10):
    """(status, body) of GET path through the firmware, by curl."""
    r = subprocess.run(["curl", "-s", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}",
                        "http://127.0.0.1:%d%s" % (PORT, path)], capture_output=True)
    out = r.stdout.decode("latin-1")
    body, _, code = out.rpartition("\n")
    return code, body


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.2)


def status_device(name):
    code, body = curl("/status")
    if code != "200":
        return {"status": code}
    for p in json.loads(body)["pools"]:
        for d in p["devices"]:
            if d.get("name") == name:
                return d
    return {}


def uart():
    try:
        with open(UART, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def main():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))  # (QEMU stopped in main's finally)
    for p in DEVICES.values():
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            print("Bail out! 127.0.0.1:%d is already in use" % p)
            return 1
        finally:
            s.close()
    try:
        dns = DNSServer(bind=("127.0.0.1", DNS_PORT), ttl=300)
    except OSError as e:
        print("Bail out! %s" % e)
        return 1
    dns.set("cam1.test", "ok", "10.0.2.2")     # cam2.test: not in the table, NXDOMAIN
    servers = [device(k, p) for k, p in DEVICES.items()]
    t0 = time.monotonic()
    relay = "python3 tests/qemu/ops_relay.py %d" % DEVICES["cam-b"]
    with open(UART, "w") as log:
        qemu = subprocess.Popen(
            ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
             "-serial", "stdio", "-kernel", ELF, "-nic",
             "user,model=lan9118,hostfwd=tcp:127.0.0.1:%d-:80,guestfwd=tcp:10.0.2.100:%d-cmd:%s"
             % (PORT, DEVICES["cam-a"], relay)],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)
    try:
        return run(dns, t0, qemu)
    finally:
        qemu.terminate()
        try:
            qemu.wait(5)
        except subprocess.TimeoutExpired:
            qemu.kill()
        dns.close()
        for s in servers:
            s.shutdown()
        if fails:
            note("UART log kept in %s:" % UART)
            for line in uart().splitlines()[-30:]:
                note(line)


def run(dns, t0, qemu):
    booted = wait_for(lambda: "rproxy gateway ready" in uart(), 30)
    if not booted:
        nok("ops firmware booted (no banner in 30 s)")
        return 1
    ok("ops firmware booted in %d ms (%s)" % ((time.monotonic() - t0) * 1000,
                                            uart().split("dns: ")[1].split("\n")[0].strip()))

    # ---- (c) cam2.test does not resolve at boot: the rest serves, /spare is down
    code, body = curl("/x")
    check("the PLC (by address) serves while cam2.test does not resolve", (code, body), ("200", "plc /x\n"))
    c2 = hit("cam2")
    code, body = curl("/spare/a")
    check("/spare (cam2.test, NXDOMAIN: its pool has no device with an address) answers 503",
          code, "503")
    check("... and no device got it", (hit("cam2"), "cam2" in body), (c2, False))
    check("the name server was asked for cam2.test", dns.count("cam2.test") >= 1, True)
    check("status: cam2.test has no address, its lookup failing",
          {k: status_device("cam2.test").get(k) for k in ("addr", "resolve")},
          {"addr": "", "resolve": "failing"})

    # ---- (a) cam1.test resolved at boot to 10.0.2.2: cam-a
    code, body = curl("/cam/a")
    check("/cam reaches cam-a at cam1.test's address (10.0.2.2)", (code, body), ("200", "cam-a /cam/a\n"))
    d = status_device("cam1.test")
    check("status: cam1.test's name, address and lookup state",
          (d.get("name"), d.get("addr"), d.get("resolve")), ("cam1.test", "10.0.2.2:9107", "ok"))

    # ---- (c) then the name server learns cam2.test: /spare serves within resolve=2s
    dns.set("cam2.test", "ok", "10.0.2.2")
    t = time.monotonic()
    got = wait_for(lambda: curl("/spare/b") == ("200", "cam2 /spare/b\n"), 15)
    check("cam2.test resolves later: /spare reaches cam2", got, True)
    note("cam2.test served %.1f s after the name server knew it (resolve=2s)" % (time.monotonic() - t))

    # ---- (b) cam1.test moves to 10.0.2.100 (cam-b): traffic follows
    dns.set("cam1.test", "ok", "10.0.2.100")
    t = time.monotonic()
    got = wait_for(lambda: curl("/cam/b")[1] == "cam-b /cam/b\n", 15)
    moved = time.monotonic() - t
    check("cam1.test's answer changed to 10.0.2.100: /cam reaches cam-b", got, True)
    note("moved %.1f s after the answer changed (resolve=2s; the record's TTL 300 s)" % moved)
    a0 = hit("cam-a")
    res = [curl("/cam/c%d" % i) for i in range(4)]
    check("... and stays there (4 requests)", res, [("200", "cam-b /cam/c%d\n" % i) for i in range(4)])
    check("... cam-a got none of them", hit("cam-a"), a0)
    d = status_device("cam1.test")
    check("status: cam1.test's new address", (d.get("addr"), d.get("resolve")), ("10.0.2.100:9107", "ok"))

    # ---- (d) bad answers keep the last good address
    # Each kind until two more lookups failed (the status page's resolve_failures: the first
    # may still be the previous kind's), and the name server saw the queries.  "huge" (3000
    # bytes claiming 65535 records) is more than one Ethernet frame: it would come in IP
    # fragments, which this lwIP does not reassemble (IP_REASSEMBLY 0), so no answer arrives
    # and each lookup times out after lwIP's 4 tries (~7 s).
    def failures():
        return status_device("cam1.test").get("resolve_failures", -1)
    def bad(kind):
        dns.set("cam1.test", kind)
        q0, f0 = dns.count("cam1.test"), failures()
        t = time.monotonic()
        asked = wait_for(lambda: dns.count("cam1.test") >= q0 + 2 and failures() >= f0 + 2, 30)
        res = [curl("/cam/%s%d" % (kind, i)) for i in range(3)]
        check("%s answers (2 lookups failed in %.1f s, %d queries): cam-b still serves"
              % (kind, time.monotonic() - t, dns.count("cam1.test") - q0),
              (asked, res), (True, [("200", "cam-b /cam/%s%d\n" % (kind, i)) for i in range(3)]))
    for kind in ("empty", "nxdomain", "servfail", "truncated", "wrongfam"):
        bad(kind)
    d = status_device("cam1.test")
    check("status: the last good address kept, the lookup failing",
          (d.get("addr"), d.get("resolve"), d.get("resolve_failures", 0) >= 10),
          ("10.0.2.100:9107", "failing", True))
    check("the failed lookup is logged (UART)", "device cam1.test: lookup failed" in uart(), True)
    bad("huge")
    # ---- a name server that takes 4 s: the loop does not wait for it
    dns.delay = 4.0
    dns.set("cam1.test", "slow", "10.0.2.2")
    q0 = dns.count("cam1.test")
    asked = wait_for(lambda: dns.count("cam1.test") > q0, 10)
    plc = curl("/slow")
    d = status_device("cam1.test")
    check("while a lookup waits 4 s for its answer, the PLC serves and the status page answers",
          (asked, plc, d.get("resolve")), (True, ("200", "plc /slow\n"), "pending"))
    got = wait_for(lambda: curl("/cam/back")[1] == "cam-a /cam/back\n", 15)
    check("the slow answer (10.0.2.2) taken: /cam back at cam-a", got, True)

    reload_checks(qemu)
    size = subprocess.run(["arm-none-eabi-size", ELF], capture_output=True, text=True).stdout
    text_data = sum(int(x) for x in size.splitlines()[1].split()[:2]) if size else -1
    check("the ops firmware's flash (text + data, %d B) fits 128 KiB" % text_data,
          0 < text_data <= 131072, True)
    check("no fault on the UART", "FATAL" in uart(), False)
    return 0


def status_json():
    code, body = curl("/status")
    return json.loads(body) if code == "200" else {}


def reload_checks(qemu):
    """Issue 17 item 5: 'r' on the UART applies the other compiled-in image
    (ops2.conf: /v2 goes to the cameras, every pool index moves) while
    traffic runs; a 2 s request in flight finishes on the image it began
    with; devices keep their counters and resolved address; 'r' again
    switches back."""
    def uart_send(b):
        qemu.stdin.write(b)
        qemu.stdin.flush()
    before = curl("/v2/a")
    st = status_json()
    plc0 = [d for p in st.get("pools", []) for d in p["devices"] if d.get("addr") == "10.0.2.2:9108"]
    gen0 = st.get("reload", {}).get("generation")
    results, longres = [], []
    stop = threading.Event()
    def traffic():
        i = 0
        while not stop.is_set():
            results.append(curl("/plc/%d" % i))
            i += 1
    def long_req():
        longres.append(curl("/long", timeout=20))
    t_long = threading.Thread(target=long_req)
    t_long.start()
    time.sleep(0.5)  # the long request is at the PLC
    t_traffic = threading.Thread(target=traffic)
    t_traffic.start()
    time.sleep(0.5)
    uart_send(b"r")
    applied = wait_for(lambda: "reload: image 2 applied (generation 2)" in uart(), 10)
    time.sleep(1.0)
    stop.set()
    t_traffic.join()
    t_long.join()
    check("'r' on the UART: image 2 applied while requests run (UART log)", bool(applied), True)
    check("before the reload /v2 went to the PLC (image 1's catch-all)", before, ("200", "plc /v2/a\n"))
    check("after it /v2 goes to the cameras (image 2's route)", curl("/v2/b"), ("200", "cam-a /v2/b\n"))
    bad = [r for r in results if r[0] != "200" or not r[1].startswith("plc /plc/")]
    check("%d requests during the reload: every one answered 200 by the PLC" % len(results),
          (len(results) > 5, bad), (True, []))
    check("a 2 s request in flight across the reload finishes whole (64 KB + head line)",
          (longres[0][0], len(longres[0][1])) if longres else None,
          ("200", len("plc /long\n") + 65536))
    st = status_json()
    plc1 = [d for p in st.get("pools", []) for d in p["devices"] if d.get("addr") == "10.0.2.2:9108"]
    cam = [d for p in st.get("pools", []) for d in p["devices"] if d.get("name") == "cam1.test"]
    check("the PLC's request count carried over (not reset by the new image)",
          bool(plc0 and plc1 and plc1[0]["requests"] >= plc0[0]["requests"] + len(results)), True)
    check("cam1.test keeps its resolved address across the switch",
          cam[0].get("addr") if cam else None, "10.0.2.2:9107")
    check("status: generation %s -> 2, reloads 1" % gen0,
          (gen0, st.get("reload", {}).get("generation"), st.get("reload", {}).get("reloads")),
          (1, 2, 1))
    uart_send(b"r")
    back = wait_for(lambda: "reload: image 1 applied (generation 3)" in uart(), 10)
    check("'r' again: image 1 back (generation 3), /v2 at the PLC again",
          (bool(back), curl("/v2/c")), (True, ("200", "plc /v2/c\n")))


if __name__ == "__main__":
    rc = main()
    print("1..%d" % n)
    print("# %d passed, %d failed" % (n - fails, fails))
    sys.exit(1 if rc or fails else 0)

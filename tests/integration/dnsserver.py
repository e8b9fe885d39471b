"""dnsserver.py -- a small scriptable DNS server for the device-name tests (t_dns.py): UDP and
TCP on port 53 of a loopback address of its own (127.53.X.Y), answering A and AAAA queries
from a table the test changes while rproxy runs.

glibc's getaddrinfo (what the POSIX port calls, in its resolver threads) is pointed at it by
running rproxy in a private mount namespace whose /etc/resolv.conf is a bind mount of
`resolv_conf()` (see `wrapper()`): the host's resolver configuration is never touched.

An entry is server.set(name, behaviour, *addrs):
    "ok"        A / AAAA records for addrs (IPv4 ones answer A queries, IPv6 ones AAAA)
    "nxdomain"  rcode 3
    "empty"     NOERROR with no records at all
    "truncated" the answer cut in the middle of its first record (UDP and TCP alike)
    "wrongfam"  an A query answered with a AAAA record and a AAAA query with an A record
    "huge"      an answer claiming 65535 records, 3000 bytes of them, the rest missing
    "servfail"  rcode 2
    "slow"      "ok", but only after `delay` seconds (other queries are answered meanwhile)
Names not in the table get NXDOMAIN.  server.queries counts queries per name.
DNSServer(bind=("127.0.0.1", 9153), ttl=1) listens on that address instead (tests/qemu/ops.py:
the firmware's name server, reached through QEMU's user networking) and gives records that TTL
(default 5 s).
"""

import os
import random
import socket
import struct
import threading
import time

QTYPE_A, QTYPE_AAAA = 1, 28


def _qname(msg, off):
    labels = []
    while off < len(msg):
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        if n & 0xC0:
            raise ValueError("compression in a question")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    raise ValueError("short question")


def _rr(qtype, data, ttl=5):
    # name: a pointer to the question (offset 12)
    return struct.pack(">HHHIH", 0xC00C, qtype, 1, ttl, len(data)) + data


class DNSServer:
    def __init__(self, bind=None, ttl=5):
        self.ttl = ttl
        self.table = {}
        self.queries = {}
        self.answered = {}          # name -> time of the last answer sent
        self.delay = 5.0
        self.lock = threading.Lock()
        self.stopping = False
        self.udp = self.tcp = None
        for _ in range(1 if bind else 50):
            self.ip = bind[0] if bind else "127.53.%d.%d" % (random.randint(0, 255), random.randint(1, 254))
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                u.bind((self.ip, bind[1] if bind else 53))
                t.bind((self.ip, bind[1] if bind else 53))
            except OSError:
                u.close()
                t.close()
                continue
            self.udp, self.tcp = u, t
            break
        if self.udp is None:
            raise OSError("no free %s for the test DNS server" % ("%s:%d" % bind if bind else "127.53.x.y:53"))
        self.tcp.listen(16)
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    def set(self, name, behaviour, *addrs):
        with self.lock:
            self.table[name.lower()] = (behaviour, list(addrs))

    def count(self, name):
        with self.lock:
            return self.queries.get(name.lower(), 0)

    # ---- answers ----
    def answer(self, msg):
        """The reply to query msg, or None for no reply."""
        if len(msg) < 12:
            return None
        qid, flags, qd = struct.unpack(">HHH", msg[:6])
        if qd != 1:
            return None
        name, end = _qname(msg, 12)
        qtype = struct.unpack(">H", msg[end:end + 2])[0]
        question = msg[12:end + 4]
        with self.lock:
            self.queries[name] = self.queries.get(name, 0) + 1
            behaviour, addrs = self.table.get(name, ("nxdomain", []))
        if behaviour == "slow":
            time.sleep(self.delay)
            behaviour = "ok"
        rcode, records, ancount = 0, b"", None
        if behaviour == "nxdomain":
            rcode = 3
        elif behaviour == "servfail":
            rcode = 2
        elif behaviour in ("ok", "truncated"):
            recs = []
            for a in addrs:
                if ":" in a and qtype == QTYPE_AAAA:
                    recs.append(_rr(QTYPE_AAAA, socket.inet_pton(socket.AF_INET6, a), self.ttl))
                elif ":" not in a and qtype == QTYPE_A:
                    recs.append(_rr(QTYPE_A, socket.inet_aton(a), self.ttl))
            records = b"".join(recs)
            ancount = len(recs)
            if behaviour == "truncated" and records:
                records = records[:len(recs[0]) - 3]   # cut inside the first record's data
        elif behaviour == "wrongfam":
            if qtype == QTYPE_A:
                records = _rr(QTYPE_AAAA, socket.inet_pton(socket.AF_INET6, "::1"))
            else:
                records = _rr(QTYPE_A, socket.inet_aton("127.0.0.1"))
            ancount = 1
        elif behaviour == "huge":
            one = _rr(QTYPE_A, socket.inet_aton("127.0.0.1")) if qtype == QTYPE_A else \
                _rr(QTYPE_AAAA, socket.inet_pton(socket.AF_INET6, "::1"))
            records = (one * (3000 // len(one) + 1))[:3000]
            ancount = 65535
        # "empty": NOERROR, nothing
        hflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode   # QR AA RD RA
        head = struct.pack(">HHHHHH", qid, hflags, 1, ancount or 0, 0, 0)
        with self.lock:
            self.answered[name] = time.monotonic()
        return head + question + records

    def _udp_loop(self):
        while not self.stopping:
            try:
                msg, peer = self.udp.recvfrom(4096)
            except OSError:
                return
            threading.Thread(target=self._udp_one, args=(msg, peer), daemon=True).start()

    def _udp_one(self, msg, peer):
        try:
            r = self.answer(msg)
            if r is not None:
                self.udp.sendto(r, peer)
        except (OSError, ValueError, struct.error):
            pass

    def _tcp_loop(self):
        while not self.stopping:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_one, args=(c,), daemon=True).start()

    def _tcp_one(self, c):
        c.settimeout(10)
        try:
            while True:
                hdr = c.recv(2)
                if len(hdr) < 2:
                    return
                n = struct.unpack(">H", hdr)[0]
                msg = b""
                while len(msg) < n:
                    more = c.recv(n - len(msg))
                    if not more:
                        return
                    msg += more
                r = self.answer(msg)
                if r is not None:
                    c.sendall(struct.pack(">H", len(r)) + r)
        except (OSError, ValueError, struct.error):
            pass
        finally:
            c.close()

    # ---- rproxy's side ----
    def resolv_conf(self, directory):
        path = os.path.join(directory, "resolv.conf")
        with open(path, "w") as f:
            f.write("nameserver %s\noptions timeout:10 attempts:1\n" % self.ip)
        return path

    def wrapper(self, directory, binary):
        """A script that runs binary (with its arguments) in a private mount namespace
        whose /etc/resolv.conf names this server: pass it as RProxy's binary."""
        path = os.path.join(directory, "rproxy-dns.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexec unshare -m --propagation private sh -c "
                    "'mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"' %s %s \"$@\"\n"
                    % (self.resolv_conf(directory), os.path.abspath(binary)))
        os.chmod(path, 0o755)
        return path

    def close(self):
        self.stopping = True
        for s in (self.udp, self.tcp):
            try:
                s.close()
            except OSError:
                pass

#!/usr/bin/env python3
"""tinyseg.py -- peers that send tiny TCP segments, for tests/lwip-host/faults.sh.

  tinyseg.py device ADDR PORT
      An HTTP/1.1 device.  GET /drip/N: waits 0.5 s, then sends an N-byte
      body (byte i = (7*i + 3) % 256) in 40-byte writes with TCP_NODELAY, so
      each write leaves as its own segment.  POST (Content-Length): answers
      200 with the sha256 of the body it received, hex.  One thread per
      connection, Connection: close.  Prints "drip N" when a drip starts.

  tinyseg.py post HOST PORT N SIZE
      Sends "POST /sum" with an N*SIZE-byte body: the head ("head" printed),
      then 0.5 s later the body in SIZE-byte writes (TCP_NODELAY, 1 ms
      apart).  Prints "sent"
      when the body is out, then "200 match" when the device's sha256 equals
      the body's (else the status and "mismatch"), and exits 0 either way.
"""
import hashlib
import socket
import socketserver
import sys
import time


def body_byte(i):
    return (7 * i + 3) % 256


def read_head(f):
    head = []
    while True:
        line = f.readline()
        if not line or line in (b"\r\n", b"\n"):
            return head
        head.append(line.decode("latin-1").strip())


class Device(socketserver.StreamRequestHandler):
    def handle(self):
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = read_head(self.rfile)
        if not head:
            return
        method, target = head[0].split()[:2]
        if method == "GET" and target.startswith("/drip/"):
            n = int(target.rsplit("/", 1)[1])
            print("drip", n, flush=True)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n" % n)
            self.wfile.flush()
            time.sleep(0.5)
            data = bytes(body_byte(i) for i in range(n))
            for i in range(0, n, 40):
                self.connection.sendall(data[i:i + 40])
                time.sleep(0.0002)
            return
        length = 0
        for h in head[1:]:
            k, _, v = h.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        body = self.rfile.read(length)
        digest = hashlib.sha256(body).hexdigest().encode()
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(digest), digest))


def post(host, port, n, size):
    body = bytes(body_byte(i) for i in range(n * size))
    s = socket.create_connection((host, port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"POST /sum HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n" % len(body))
    print("head", flush=True)
    time.sleep(0.5)
    for i in range(0, len(body), size):
        s.sendall(body[i:i + size])
        time.sleep(0.001)
    print("sent", flush=True)
    reply = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            reply += d
    except OSError:
        pass
    status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/") else "none"
    got = reply.partition(b"\r\n\r\n")[2].decode("latin-1")
    print(status, "match" if got == hashlib.sha256(body).hexdigest() else "mismatch", flush=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "device":
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.daemon_threads = True
        srv = socketserver.ThreadingTCPServer((sys.argv[2], int(sys.argv[3])), Device)
        print("listening", flush=True)
        srv.serve_forever()
    elif len(sys.argv) == 6 and sys.argv[1] == "post":
        post(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

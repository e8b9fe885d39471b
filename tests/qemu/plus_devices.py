#!/usr/bin/env python3
"""tests/qemu/plus_devices.py -- the two devices gateway-plus.conf names, on the host's
127.0.0.1 (10.0.2.2 from the guest), for tests/qemu/plus.sh:

  9105 plc: answers one connection at a time (a second one waiting in the backlog is only
       accepted after the first closes), 150 ms per request, "plc ok N"; prints the
       most connections it ever had open at once and whether a request carried
       Authorization, on SIGUSR1 and at exit, to stdout ("plc max=1 auth=0 conns=N").
  9106 cam: MJPEG (multipart/x-mixed-replace; boundary=frame), 20 frames/s of 2 KB JPEG-like
       parts (FF D8 ... FF D9, Content-Length each), to ONE client at a time: a second
       connection while one streams gets 503.  Prints "cam conns=N" (connections served)
       and "cam open=N" on SIGUSR1.
"""
import signal
import socket
import sys
import threading
import time

state = {"max": 0, "open": 0, "auth": 0, "plc_conns": 0, "cam_conns": 0, "cam_open": 0}
lock = threading.Lock()


def report(*_):
    with lock:
        print("plc max=%d auth=%d conns=%d" % (state["max"], state["auth"], state["plc_conns"]))
        print("cam conns=%d open=%d" % (state["cam_conns"], state["cam_open"]), flush=True)


def read_head(c, buf):
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d:
            return None, b""
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def plc():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 9105))
    ls.listen(16)
    n = 0
    while True:  # one connection at a time: the next is accepted when this one ends
        c, _ = ls.accept()
        with lock:
            state["open"] += 1
            state["plc_conns"] += 1
            state["max"] = max(state["max"], state["open"])
        buf = b""
        try:
            while True:
                head, buf = read_head(c, buf)
                if head is None:
                    break
                if b"\nauthorization:" in head.lower():
                    with lock:
                        state["auth"] += 1
                time.sleep(0.15)
                n += 1
                target = head.split(b" ")[1] if head.count(b" ") >= 2 else b"?"
                body = b"plc ok %d %s\n" % (n, target)
                extra = b""
                if target == b"/login":  # a device UI that redirects to its own root
                    extra = b"Location: /home\r\n"
                c.sendall(b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n"
                          % (b"302 Found" if extra else b"200 OK", extra, len(body)) + body)
        except OSError:
            pass
        finally:
            c.close()
            with lock:
                state["open"] -= 1


def cam_serve(c):
    try:
        head, _ = read_head(c, b"")
        if head is None:
            return
        with lock:
            busy = state["cam_open"] > 0
            if not busy:
                state["cam_open"] += 1
                state["cam_conns"] += 1
        if busy:
            c.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n"
                      b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
            i = 0
            while True:
                jpg = b"\xff\xd8" + bytes([i % 251]) * 2044 + b"\xff\xd9"
                c.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                          + jpg + b"\r\n")
                i += 1
                time.sleep(0.05)
        finally:
            with lock:
                state["cam_open"] -= 1
    except OSError:
        pass
    finally:
        c.close()


def cam():
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 9106))
    ls.listen(16)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=cam_serve, args=(c,), daemon=True).start()


signal.signal(signal.SIGUSR1, report)
signal.signal(signal.SIGTERM, lambda *_: (report(), sys.exit(0)))
threading.Thread(target=plc, daemon=True).start()
threading.Thread(target=cam, daemon=True).start()
print("devices ready", flush=True)
while True:
    time.sleep(1)

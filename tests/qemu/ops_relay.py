"""ops_relay.py PORT -- one guest connection to 127.0.0.1:PORT, for tests/qemu/ops.py.

QEMU's user networking runs it once per TCP connection the firmware opens to a `guestfwd`
address (10.0.2.100:9107 -> `cmd:python3 tests/qemu/ops_relay.py 9207`), with the connection
on stdin/stdout: it copies both ways until either side closes.  So a second device (cam-b)
is reachable from the guest at an address of its own, 10.0.2.100, while slirp maps only
10.0.2.2 to the host's loopback."""

import os
import select
import socket
import sys

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.settimeout(None)
ends = 0
while True:
    r, _, _ = select.select([0, s], [], [], 60)
    if not r:
        break
    if 0 in r:
        d = os.read(0, 65536)
        if not d:
            s.shutdown(socket.SHUT_WR)
            break
        s.sendall(d)
    if s in r:
        d = s.recv(65536)
        if not d:
            break
        while d:
            d = d[os.write(1, d):]
s.close()

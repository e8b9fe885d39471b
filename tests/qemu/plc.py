#!/usr/bin/env python3
"""tests/qemu/plc.py PORT STATSFILE -- a device that serves one connection at a time (a
second one while one is open is closed at once), 100 ms a request, on 127.0.0.1:PORT;
every 0.1 s it writes "requests N max_live N refused N" to STATSFILE.  For
tests/qemu/protect.sh; stops on SIGTERM."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from devserver import Device, echo  # noqa: E402


def slow(conn, req):
    time.sleep(0.1)
    return echo(conn, req)


def main():
    port, stats = int(sys.argv[1]), sys.argv[2]
    dev = Device(slow, name="plc", single=True, port=port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            with dev.lock:
                line = "requests %d max_live %d refused %d\n" % (len(dev.requests), dev.max_live,
                                                                 dev.refused)
            with open(stats + ".tmp", "w") as f:
                f.write(line)
            os.replace(stats + ".tmp", stats)
            time.sleep(0.1)
    finally:
        dev.stop()


if __name__ == "__main__":
    main()

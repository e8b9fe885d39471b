"""t_bad_input.py -- malformed requests, one table row each (BAD): framing conflicts,
bad Content-Length/Transfer-Encoding, bad characters and line endings, missing or
double Host, oversized target/head, bad versions, Expect, CONNECT, bad chunks.  Every
row: the expected status (or a plain close), the connection closed, nothing (or only
the head) at the device, and an earlier connection still served.  t_smuggling.py has
the desync classes.
"""

import re
import socket
import time

from checks import check, dev_info, eq, fail, req_bytes, short, test
from harness import Closed


CHUNK_BAD = "chunk"   # marker: the head may have reached the device, body must not

BAD = [
    ("CL+TE", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    ("duplicate Content-Length (equal)", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    ("Content-Length +5", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"),
    ("Content-Length ' 5 5'", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  5 5\r\n\r\nhello"),
    ("Content-Length 0x5", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello"),
    ("Content-Length '5, 5'", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"),
    ("Content-Length -1", 400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
    ("Transfer-Encoding gzip, chunked", 501,
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("Transfer-Encoding chunked, chunked", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    ("Transfer-Encoding chunked, gzip", 400,
     b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    ("Transfer-Encoding in HTTP/1.0", 400,
     b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("obs-fold", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
    ("whitespace before colon (Host : x)", 400, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("bare CR in a header", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
    ("bare LF ending the request line", 400, b"GET / HTTP/1.1\nHost: x\r\n\r\n"),
    ("bare LF line endings throughout", 400, b"GET / HTTP/1.1\nHost: x\nX-A: b\n\n"),
    ("NUL in a header value", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("invalid method token char", 400, b"GE(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("invalid header name char '('", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX(A: b\r\n\r\n"),
    ("invalid header name char '@'", 400, b"GET / HTTP/1.1\r\nHost: x\r\nX@A: b\r\n\r\n"),
    ("no Host in HTTP/1.1", 400, b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n"),
    ("two Host headers", 400, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
    ("5000-byte target", 414, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("9000-byte header", 431, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000
     + b"\r\n\r\n"),
    ("100 header fields", 431, b"GET / HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n"),
    ("HTTP/2.0", 505, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
    ("HTTP/0.9 style request line (no version)", 400, b"GET /\r\nHost: x\r\n\r\n"),
    ("garbage request line", 400, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    ("Expect: foo", 417, b"GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n"),
    ("CONNECT", 405, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    ("chunk size zz", CHUNK_BAD,
     b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nAFTERBAD\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("chunk size overflow (19 hex digits)", CHUNK_BAD,
     b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"fffffffffffffffffff\r\nAFTERBAD\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("chunk data not followed by CRLF", CHUNK_BAD,
     b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabcXX\r\nAFTERBAD\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"),
]

# The rule each row breaks, as the log names it: "refused request: STATUS REASON: WHY" and
# the access line's why="WHY" (a regular expression: the limits depend on the build).
WHY = {
    "CL+TE": "both Content-Length and Transfer-Encoding",
    "duplicate Content-Length (equal)": "duplicate Content-Length",
    "Content-Length +5": "Content-Length not a decimal number",
    "Content-Length ' 5 5'": "Content-Length not a decimal number",
    "Content-Length 0x5": "Content-Length not a decimal number",
    "Content-Length '5, 5'": "Content-Length not a decimal number",
    "Content-Length -1": "Content-Length not a decimal number",
    "Transfer-Encoding gzip, chunked": "transfer coding other than chunked",
    "Transfer-Encoding chunked, chunked": "Transfer-Encoding other than one final chunked",
    "Transfer-Encoding chunked, gzip": "Transfer-Encoding other than one final chunked",
    "Transfer-Encoding in HTTP/1.0": r"Transfer-Encoding in an HTTP/1\.0 request",
    "obs-fold": r"field line without a name \(obs-fold\?\)",
    "whitespace before colon (Host : x)": "whitespace before a field's colon",
    "bare CR in a header": "bare CR, bare LF or NUL in the request head",
    "bare LF ending the request line": "bare CR, bare LF or NUL in the request head",
    "bare LF line endings throughout": "bare CR, bare LF or NUL in the request head",
    "NUL in a header value": "bare CR, bare LF or NUL in the request head",
    "invalid method token char": "malformed method",
    "invalid header name char '('": "bad character in a field name",
    "invalid header name char '@'": "bad character in a field name",
    "no Host in HTTP/1.1": r"HTTP/1\.1 request without Host",
    "two Host headers": "duplicate Host",
    "5000-byte target": r"request target longer than RP_MAX_URI \(\d+\)",
    "9000-byte header": r"request head longer than RP_MAX_HEAD \(\d+\)",
    "100 header fields": r"too many header fields \(\d+\)",
    "HTTP/2.0": r"HTTP version other than 1\.0 and 1\.1",
    "HTTP/0.9 style request line (no version)": "request line without an HTTP version",
    "garbage request line": "bare CR, bare LF or NUL in the request head",
    "Expect: foo": "Expect other than 100-continue",
    "CONNECT": "CONNECT is not proxied",
}

# What the access line shows of the request: "-" when its line could not be read.
ACCESS_REQ = {"invalid method token char": "-", "garbage request line": "-",
              "bare LF ending the request line": "-", "CONNECT": "CONNECT example.com:443",
              "duplicate Content-Length (equal)": "POST /"}

VALGRIND_BAD = {"CL+TE", "obs-fold", "5000-byte target", "9000-byte header", "chunk size zz"}


def make_bad_test(label, expect, raw):
    def fn(ctx):
        dev = ctx.device()
        ctx.start(devices=[dev])
        good = ctx.client()          # opened (and used) BEFORE the bad one
        good.send(req_bytes("GET", "/before"))
        eq(good.read_response().status, 200, "normal request before the bad one")
        snap = dev.snapshot()
        bad = ctx.client()
        bad.send(raw, ignore_errors=True)
        status = None
        try:
            r = bad.read_head(timeout=5)
            status = r.status
        except Closed:
            pass
        except socket.timeout:
            fail("no response and no close within 5 s", expect, "silence")
        if expect == CHUNK_BAD:
            check(status in (None, 400), "bad chunk: 400 or a plain close", "400/close",
                  status)
        else:
            eq(status, expect, "status")
        try:
            bad.read_until_close(timeout=4)
        except socket.timeout:
            fail("connection not closed after the error", "EOF", "still open")
        time.sleep(0.15)
        with dev.lock:
            delta = bytes(dev.raw[snap["raw"]:])
        if expect == CHUNK_BAD:
            check(b"AFTERBAD" not in delta and b"/second" not in delta,
                  "device got nothing past the bad chunk line", "head at most", short(delta))
            check(delta.count(b" HTTP/1.1\r\n") <= 1, "at most one request head at the device",
                  "<= 1", short(delta))
        else:
            eq(delta, b"", "bytes that reached the device")
            err = ctx.proxy.stderr()
            why = WHY[label]
            check(re.search(r"^rproxy: refused request: %d [A-Za-z -]+: %s$" % (expect, why), err,
                            re.M), "the log names the rule: 'refused request: %d ...: %s'"
                  % (expect, why), why, ctx.proxy.stderr_tail(6))
            acc = re.findall(r'^ACCESS \S+ "(.*)" %d \d+ - \d+ms why="(.*)"$' % expect, err, re.M)
            check(len(acc) == 1 and re.fullmatch(why, acc[0][1]),
                  "one access line with why=\"%s\"" % why, why, acc)
            if label in ACCESS_REQ:
                eq(acc[0][0], ACCESS_REQ[label], "the request as the access line shows it")
        good.send(req_bytes("GET", "/after"))
        r2 = good.read_response(timeout=5)
        eq(r2.status, 200, "the earlier connection still works")
        eq(dev_info(r2)["target"], "/after", "its response")
    fn.__name__ = "t_bad_" + label
    return fn


for _label, _expect, _raw in BAD:
    test("bad input: %s -> %s" % (_label, "400 or close" if _expect == CHUNK_BAD else _expect),
         valgrind=_label in VALGRIND_BAD)(make_bad_test(_label, _expect, _raw))

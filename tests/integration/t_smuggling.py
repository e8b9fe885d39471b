"""t_smuggling.py -- request smuggling / response splitting table (issue 7).

One row per known desync class.  Each request row sends the row's bytes and then a
legitimate pipelined "GET /follow" on the same connection; smuggled requests hide as
"/smuggled" inside bodies.  A row is proven either

  refused     the client gets one of the listed statuses (or a plain close) and the
              connection closes; what the device received from that connection is
              checked: nothing at all (head rows), or at most the head (body rows) --
              never "/smuggled", never "/follow";
  normalised  the device (devserver, which records the raw bytes) receives exactly
              the expected request(s) with canonical framing, then "/follow" as the
              next separate request; "/smuggled" never arrives as a request.

Response rows make the device answer with broken framing and check what the client
(and the next request, on the same and on a new connection) gets: never the bytes a
device put after its announced body.

Listed in run.py's TOPICS; registers with checks.test like every topic file.
"""

import socket
import time

from checks import check, dev_info, eq, fail, req_bytes, short, test
from devserver import echo
from harness import Closed

FOLLOW = b"GET /follow HTTP/1.1\r\nHost: x\r\n\r\n"
SMUG = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


def post(headers, body=b"", target=b"/p", version=b"HTTP/1.1", host=b"x"):
    h = b"POST " + target + b" " + version + b"\r\n"
    if host is not None:
        h += b"Host: " + host + b"\r\n"
    for k in headers:
        h += k + b"\r\n"
    return h + b"\r\n" + body


def chunks(*parts):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


# (label, bytes, expectation)
#   ("refuse", (statuses...), "head" | "body")   -- "body": the head may reach the device
#   ("ok", [(method, target, body), ...], check_fn or None)
REFUSE_HEAD = "head"
REFUSE_BODY = "body"

ROWS = [
    # ---- Content-Length / Transfer-Encoding conflicts ----
    ("CL.TE: Content-Length then chunked",
     post([b"Content-Length: 6", b"Transfer-Encoding: chunked"], b"0\r\n\r\n" + SMUG),
     ("refuse", (400,), REFUSE_HEAD)),
    ("TE.CL: chunked then Content-Length",
     post([b"Transfer-Encoding: chunked", b"Content-Length: 3"], b"8\r\nSMUGGLED\r\n0\r\n\r\n"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("CL.TE with TE obfuscated by case ('Transfer-encoding: CHUNKED')",
     post([b"Content-Length: 4", b"Transfer-encoding: CHUNKED"], b"0\r\n\r\n" + SMUG),
     ("refuse", (400,), REFUSE_HEAD)),
    ("duplicate Content-Length, different values",
     post([b"Content-Length: 3", b"Content-Length: 38"], b"abc" + SMUG),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length list '3, 3'", post([b"Content-Length: 3, 3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length '3,'", post([b"Content-Length: 3,"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length '-3'", post([b"Content-Length: -3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length '+3'", post([b"Content-Length: +3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length '3 3'", post([b"Content-Length: 3 3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length '0x3'", post([b"Content-Length: 0x3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length '3e0'", post([b"Content-Length: 3e0"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length empty", post([b"Content-Length: "], b""),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length 20 digits (overflow)", post([b"Content-Length: 18446744073709551619"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length with vertical tab", post([b"Content-Length: 3\x0b"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("Content-Length leading zeros '003' (valid: normalised to 3)",
     post([b"Content-Length: 003"], b"abc"),
     ("ok", [("POST", "/p", b"abc")], lambda r: eq(r.get_all("Content-Length"), ["3"],
                                                    "Content-Length at the device"))),
    ("Content-Length with OWS ' \\t3 ' (valid: normalised)",
     post([b"Content-Length: \t3 "], b"abc"),
     ("ok", [("POST", "/p", b"abc")], lambda r: eq(r.get_all("Content-Length"), ["3"],
                                                    "Content-Length at the device"))),
    ("Content-Length whose body hides a request (pipelined request in a body)",
     post([b"Content-Length: %d" % len(SMUG)], SMUG),
     ("ok", [("POST", "/p", SMUG)], None)),
    ("Content_Length (underscore) is not framing: body ends at the head",
     post([b"Content_Length: %d" % len(SMUG)], b""),
     ("ok", [("POST", "/p", b"")], None)),
    # ---- Transfer-Encoding obfuscations ----
    ("TE 'chunked ' (trailing space: OWS, normalised)",
     post([b"Transfer-Encoding: chunked "], chunks(b"abc")),
     ("ok", [("POST", "/p", b"abc")], None)),
    ("TE ' chunked' (leading space: OWS, normalised)",
     post([b"Transfer-Encoding:  chunked"], chunks(b"abc")),
     ("ok", [("POST", "/p", b"abc")], None)),
    ("TE 'Chunked' (case-insensitive, normalised)",
     post([b"Transfer-Encoding: Chunked"], chunks(b"abc")),
     ("ok", [("POST", "/p", b"abc")],
      lambda r: eq(r.get_all("Transfer-Encoding"), ["chunked"], "TE at the device"))),
    ("TE '\\tchunked\\t' (tabs: OWS, normalised)",
     post([b"Transfer-Encoding:\tchunked\t"], chunks(b"abc")),
     ("ok", [("POST", "/p", b"abc")], None)),
    ("TE 'chunked\\x0b' (vertical tab)",
     post([b"Transfer-Encoding: chunked\x0b"], chunks(b"abc")), ("refuse", (400,), REFUSE_HEAD)),
    ("TE 'chunked\\x0c' (form feed)",
     post([b"Transfer-Encoding: chunked\x0c"], chunks(b"abc")), ("refuse", (400,), REFUSE_HEAD)),
    ("TE 'x-chunked'", post([b"Transfer-Encoding: x-chunked"], chunks(b"abc")),
     ("refuse", (400, 501), REFUSE_HEAD)),
    ("TE 'chunkedx'", post([b"Transfer-Encoding: chunkedx"], chunks(b"abc")),
     ("refuse", (400, 501), REFUSE_HEAD)),
    ("TE 'chunked;q=1' (parameter on chunked)",
     post([b"Transfer-Encoding: chunked;q=1"], chunks(b"abc")), ("refuse", (400, 501), REFUSE_HEAD)),
    ("TE '\"chunked\"' (quoted)", post([b'Transfer-Encoding: "chunked"'], chunks(b"abc")),
     ("refuse", (400, 501), REFUSE_HEAD)),
    ("TE 'identity'", post([b"Transfer-Encoding: identity", b"Content-Length: 3"], b"abc"),
     ("refuse", (400, 501), REFUSE_HEAD)),
    ("TE list 'gzip, chunked'", post([b"Transfer-Encoding: gzip, chunked"], chunks(b"abc")),
     ("refuse", (501,), REFUSE_HEAD)),
    ("TE list 'chunked, identity'", post([b"Transfer-Encoding: chunked, identity"], chunks(b"abc")),
     ("refuse", (400, 501), REFUSE_HEAD)),
    ("TE list 'chunked,' (empty element: normalised)",
     post([b"Transfer-Encoding: chunked,"], chunks(b"abc")),
     ("ok", [("POST", "/p", b"abc")],
      lambda r: eq(r.get_all("Transfer-Encoding"), ["chunked"], "TE at the device"))),
    ("TE in two header lines (chunked + chunked)",
     post([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], chunks(b"abc")),
     ("refuse", (400,), REFUSE_HEAD)),
    ("TE in a second line (identity then chunked)",
     post([b"Transfer-Encoding: identity", b"Transfer-Encoding: chunked"], chunks(b"abc")),
     ("refuse", (400, 501), REFUSE_HEAD)),
    ("TE continued by obs-fold",
     post([b"Transfer-Encoding: identity", b" chunked", b"Content-Length: 3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("TE with space before the colon",
     post([b"Transfer-Encoding : chunked", b"Content-Length: 3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("TE name with a trailing tab", post([b"Transfer-Encoding\t: chunked"], chunks(b"abc")),
     ("refuse", (400,), REFUSE_HEAD)),
    ("TE as the first field line, preceded by whitespace (obs-fold of the request line)",
     b"POST /p HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
     ("refuse", (400,), REFUSE_HEAD)),
    ("Transfer_Encoding (underscore) is not framing: Content-Length frames",
     post([b"Transfer_Encoding: chunked", b"Content-Length: 5"], b"0\r\n\r\n"),
     ("ok", [("POST", "/p", b"0\r\n\r\n")], None)),
    ("TE in HTTP/1.0 request",
     post([b"Transfer-Encoding: chunked"], chunks(b"abc"), version=b"HTTP/1.0"),
     ("refuse", (400,), REFUSE_HEAD)),
    # ---- bytes that parsers disagree on ----
    ("bare CR inside Content-Length line",
     post([b"X: 1\rContent-Length: 38"], SMUG), ("refuse", (400,), REFUSE_HEAD)),
    ("bare LF splitting a field (hidden Content-Length)",
     post([b"X: 1\nContent-Length: 38"], SMUG), ("refuse", (400,), REFUSE_HEAD)),
    ("bare LF as the head terminator", b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\nabc",
     ("refuse", (400,), REFUSE_HEAD)),
    ("NUL in a field name", post([b"Content-\x00Length: 3"], b"abc"),
     ("refuse", (400,), REFUSE_HEAD)),
    ("NUL in the target", b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("DEL (0x7f) in a field value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("two spaces in the request line", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("tab as request-line separator", b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("trailing space after the version", b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    # ---- chunked body: sizes, extensions, trailers ----
    ("chunk size 17 hex digits (overflow)",
     post([b"Transfer-Encoding: chunked"], b"10000000000000003\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk size 2^64+3 in 16 digits wraps? (ffffffffffffffff)",
     post([b"Transfer-Encoding: chunked"], b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk size '0x3'", post([b"Transfer-Encoding: chunked"], b"0x3\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk size '+3'", post([b"Transfer-Encoding: chunked"], b"+3\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk size '-3'", post([b"Transfer-Encoding: chunked"], b"-3\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk size empty", post([b"Transfer-Encoding: chunked"], b"\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk size line ended by bare LF",
     post([b"Transfer-Encoding: chunked"], b"3\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk data longer than its size",
     post([b"Transfer-Encoding: chunked"], b"3\r\nabcdef\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk extension with a control character",
     post([b"Transfer-Encoding: chunked"], b"3;a=\x01\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk extension with a bare LF",
     post([b"Transfer-Encoding: chunked"], b"3;a\nb\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk extension over 4 KiB",
     post([b"Transfer-Encoding: chunked"], b"3;" + b"e" * 5000 + b"\r\nabc\r\n0\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("chunk size with leading zeros (valid)",
     post([b"Transfer-Encoding: chunked"], b"0003\r\nabc\r\n00\r\n\r\n"),
     ("ok", [("POST", "/p", b"abc")], None)),
    ("chunk extensions, valid (';a=b;c=\"d\"')",
     post([b"Transfer-Encoding: chunked"], b"3;a=b;c=\"d\"\r\nabc\r\n0;z\r\n\r\n"),
     ("ok", [("POST", "/p", b"abc")], None)),
    ("chunked body hiding a request in its data",
     post([b"Transfer-Encoding: chunked"], chunks(SMUG)),
     ("ok", [("POST", "/p", SMUG)], None)),
    ("trailer injection: Content-Length / Transfer-Encoding / Host as trailers",
     post([b"Transfer-Encoding: chunked"],
          b"3\r\nabc\r\n0\r\nContent-Length: 38\r\nTransfer-Encoding: chunked\r\nHost: evil\r\n\r\n"),
     ("ok", [("POST", "/p", b"abc")], None)),
    ("trailer with a bare CR", post([b"Transfer-Encoding: chunked"],
                                    b"3\r\nabc\r\n0\r\nX: a\rb\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    ("trailer that is obs-fold", post([b"Transfer-Encoding: chunked"],
                                      b"3\r\nabc\r\n0\r\nX: a\r\n b\r\n\r\n" + SMUG),
     ("refuse", (400, None), REFUSE_BODY)),
    # ---- versions ----
    ("HTTP/0.9 simple request 'GET /' alone", b"GET /\r\n\r\n", ("refuse", (400,), REFUSE_HEAD)),
    ("'HTTP/1.2'", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", ("refuse", (505,), REFUSE_HEAD)),
    ("'HTTP/01.1'", b"GET / HTTP/01.1\r\nHost: x\r\n\r\n", ("refuse", (400, 505), REFUSE_HEAD)),
    ("'http/1.1' (lower case)", b"GET / http/1.1\r\nHost: x\r\n\r\n", ("refuse", (400,), REFUSE_HEAD)),
    ("'HTTP/1.1' without the minor ('HTTP/1')", b"GET / HTTP/1\r\nHost: x\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("HTTP/1.0 with Content-Length body, keep-alive, then a request",
     post([b"Connection: keep-alive", b"Content-Length: 3"], b"abc", version=b"HTTP/1.0"),
     ("ok", [("POST", "/p", b"abc")], None)),
    ("HTTP/1.0 without Host: forwarded with a Host field (RFC 9112 3.2: empty if unknown)",
     b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
     ("ok", [("GET", "/old", b"")],
      lambda r: check(r.has("Host"), "HTTP/1.1 request at the device carries Host",
                      "a Host field", r.head_raw))),
    # ---- Host and absolute-form ----
    ("absolute-form target and a conflicting Host: target wins, one Host",
     b"GET http://a.example/abs HTTP/1.1\r\nHost: b.example\r\n\r\n",
     ("ok", [("GET", "/abs", b"")],
      lambda r: eq(r.get_all("Host"), ["a.example"], "Host at the device"))),
    ("absolute-form with userinfo", b"GET http://evil@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("absolute-form with an empty authority", b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", ("refuse", (400,), REFUSE_HEAD)),
    ("Host with '@'", b"GET / HTTP/1.1\r\nHost: evil@a\r\n\r\n", ("refuse", (400,), REFUSE_HEAD)),
    ("Host with a slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ("refuse", (400,), REFUSE_HEAD)),
    ("two Host fields with the same value", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("target that is neither origin- nor absolute-form", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
     ("refuse", (400,), REFUSE_HEAD)),
    ("asterisk-form with GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", ("refuse", (400,), REFUSE_HEAD)),
]


def device_delta(dev, snap):
    with dev.lock:
        return bytes(dev.raw[snap["raw"]:]), list(dev.requests[snap["requests"]:])


def make_req_test(label, raw, expect):
    def fn(ctx):
        dev = ctx.device()
        ctx.start(devices=[dev])
        snap = dev.snapshot()
        c = ctx.client()
        c.send(raw + FOLLOW, ignore_errors=True)
        if expect[0] == "refuse":
            statuses, where = expect[1], expect[2]
            status = None
            try:
                status = c.read_head(timeout=5).status
            except Closed:
                pass
            except socket.timeout:
                fail("neither a response nor a close within 5 s", statuses, "silence")
            check(status in statuses, "refused", " or ".join(map(str, statuses)), status)
            try:
                c.read_until_close(timeout=4)
            except socket.timeout:
                fail("connection still open after the refusal", "close", "open")
            time.sleep(0.1)
            delta, reqs = device_delta(dev, snap)
            check(b"/smuggled" not in delta and b"SMUGGLED" not in delta,
                  "smuggled bytes never reach the device", "absent", short(delta))
            check(b"/follow" not in delta, "nothing after the refused request is forwarded",
                  "absent", short(delta))
            if where == REFUSE_HEAD:
                eq(delta, b"", "bytes that reached the device")
            else:
                check(len(reqs) <= 1, "at most the head reached the device", "<= 1 request",
                      [q.target for q in reqs])
            return
        want, extra = expect[1], expect[2]
        got = []
        for _ in range(len(want) + 1):
            try:
                r = c.read_response(timeout=5)
            except Closed as e:
                fail("connection closed before all responses", len(want) + 1, short(e.got))
            eq(r.status, 200, "status of response %d" % (len(got) + 1))
            got.append(dev_info(r))
        time.sleep(0.05)
        delta, reqs = device_delta(dev, snap)
        eq([(q.method, q.target) for q in reqs], [(m, t) for m, t, _ in want] + [("GET", "/follow")],
           "requests the device received, in order")
        for q, (_, _, body) in zip(reqs, want):
            eq(q.body, body, "body the device received for %s" % q.target)
            te = q.get_all("Transfer-Encoding")
            cl = q.get_all("Content-Length")
            check(not (te and cl), "device never gets both CL and TE", "one", q.head_raw)
            check(len(cl) <= 1 and len(te) <= 1, "framing fields appear once", "<= 1",
                  q.head_raw)
            if extra:
                extra(q)
        check(not any("smuggled" in q.target for q in reqs), "no smuggled request",
              "none", [q.target for q in reqs])
        eq(got[-1]["target"], "/follow", "the follow-up request is answered as itself")
    fn.__name__ = "t_smuggle_" + label
    return fn


for _label, _raw, _expect in ROWS:
    _what = ("refused " + "/".join("close" if s is None else str(s) for s in _expect[1])
             if _expect[0] == "refuse" else "normalised")
    test("smuggling: %s -> %s" % (_label, _what))(make_req_test(_label, _raw, _expect))


# =====================================================================
# Upgrade without 101
# =====================================================================

def upgrade_200(conn, req):
    return echo(conn, req)        # answers 200 to the Upgrade request: no tunnel


@test("smuggling: Upgrade answered 200 (no 101): the next bytes are parsed, never tunnelled")
def t_smuggle_upgrade_200(ctx):
    dev = ctx.device(upgrade_200)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
           + FOLLOW)
    r = c.read_response()
    eq(r.status, 200, "status of the Upgrade request")
    check(not r.has("Upgrade"), "no Upgrade in a 200", "absent", r.head_raw)
    r2 = c.read_response()
    eq(dev_info(r2)["target"], "/follow", "next request answered as itself")
    check(dev.wait_requests(2, 2), "two requests at the device", 2, len(dev.requests))
    q = dev.requests[1]
    check(any("rproxy" in v for v in q.get_all("Via")),
          "the follow-up went through rproxy's parser (re-serialised with Via)", "Via: rproxy",
          q.head_raw)
    # raw (WebSocket frame) bytes after a refused upgrade are a bad request, not tunnel data
    c2 = ctx.client()
    snap = dev.snapshot()
    c2.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            b"\x81\x85\x00\x00\x00\x00GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            ignore_errors=True)
    eq(c2.read_response().status, 200, "status of the Upgrade request")
    try:
        r3 = c2.read_head(timeout=3)
        eq(r3.status, 400, "frame bytes after a 200 are a bad request")
    except Closed:
        pass
    time.sleep(0.2)
    delta, reqs = device_delta(dev, snap)
    eq([q.target for q in reqs], ["/ws"], "only the Upgrade request reached the device")
    check(b"\x81\x85" not in delta and b"/smuggled" not in delta, "frame bytes not tunnelled",
          "absent", short(delta))


# =====================================================================
# Broken device responses (response splitting and friends)
# =====================================================================

EVIL = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Evil: 1\r\n\r\nevil"

RESP_ROWS = [
    # (label, raw response, expected client status or None for "closed", body or None)
    ("extra bytes after Content-Length (a whole second response)",
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + EVIL, 200, b"ok"),
    ("extra bytes after a chunked body",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + EVIL, 200, b"ok"),
    ("204 with a body", b"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n" + EVIL, 204, b""),
    ("304 with a body", b"HTTP/1.1 304 Not Modified\r\n\r\n" + EVIL, 304, b""),
    ("Content-Length and Transfer-Encoding",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n"
     + EVIL, 502, None),
    ("two Content-Length fields, different",
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 60\r\n\r\nok" + EVIL, 502, None),
    ("two Content-Length fields, equal",
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok" + EVIL, 502, None),
    ("negative Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok" + EVIL, 502, None),
    ("Content-Length '+2'", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok" + EVIL, 502, None),
    ("Transfer-Encoding 'xchunked'",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + EVIL, 502, None),
    ("header with a bare CR (response splitting)",
     b"HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 60\r\nContent-Length: 2\r\n\r\nok" + EVIL, 502, None),
    ("header with a bare LF (response splitting)",
     b"HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 60\r\nContent-Length: 2\r\n\r\nok" + EVIL, 502, None),
    ("obs-fold in a response", b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
     502, None),
    ("NUL in a response header", b"HTTP/1.1 200 OK\r\nX-A: a\x00\r\nContent-Length: 2\r\n\r\nok",
     502, None),
    ("101 to a request that did not ask to upgrade",
     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n" + EVIL, 502, None),
    # sent in one write, so the bad line comes in the same read as the head: refused before
    # the head goes out (issue 21); a bad line in a later read: t_errors.py (head, then cut)
    ("bad chunk size mid-body, in the head's read",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n" + EVIL, 502, None),
]


def make_resp_test(label, raw, status, body):
    def handler(conn, req):
        if req.target.startswith("/bad"):
            conn.send(raw)
            return True          # keep our end: reusing it would be rproxy's mistake
        return echo(conn, req)

    def fn(ctx):
        dev = ctx.device(handler)
        ctx.start(devices=[dev])
        c = ctx.client()
        c.send(req_bytes("GET", "/bad"))
        try:
            r = c.read_response(timeout=5)
        except Closed as e:
            r = None
            check(status is None, "a response", status, "closed: " + short(e.got))
            check(b"evil" not in e.got, "no bytes after the broken framing", "absent",
                  short(e.got))
        except socket.timeout:
            fail("no response within 5 s", status, "silence")
        if r is not None:
            if status is None:
                # headers went out before the framing broke: the connection must close
                check(r.status == 200, "status", 200, r.status)
                try:
                    rest = c.read_until_close(timeout=4)
                except socket.timeout:
                    fail("connection not closed after broken framing", "close", "open")
                check(b"evil" not in rest, "extra bytes not served", "absent", short(rest))
            else:
                eq(r.status, status, "status the client got")
                if body is not None:
                    eq(r.body, body, "body the client got")
                check(not r.has("X-Evil"), "not the device's extra response", "absent",
                      r.head_raw)
                if status == 502:
                    try:
                        rest = c.read_until_close(timeout=4)
                    except socket.timeout:
                        fail("connection not closed after a 502", "close", "open")
                    check(b"evil" not in rest, "no bytes after the 502", "absent", short(rest))
                else:
                    # same connection: the next response is the right one
                    c.send(req_bytes("GET", "/next-same"))
                    r2 = c.read_response(timeout=5)
                    check(not r2.has("X-Evil") and r2.body != b"evil",
                          "next response on the same connection is not the extra bytes",
                          "echo of /next-same", short(r2.head_raw + r2.body))
                    eq(dev_info(r2)["target"], "/next-same", "next response on the same "
                       "connection")
        for i in range(3):   # new connections: never get the leftover bytes either
            c2 = ctx.client()
            c2.send(req_bytes("GET", "/next%d" % i))
            r3 = c2.read_response(timeout=5)
            check(not r3.has("X-Evil") and r3.body != b"evil", "a later client never gets "
                  "the extra bytes", "echo", short(r3.head_raw + r3.body))
            eq(dev_info(r3)["target"], "/next%d" % i, "later client's response")
    fn.__name__ = "t_split_" + label
    return fn


for _label, _raw, _status, _body in RESP_ROWS:
    test("response splitting: %s -> %s" % (_label, "close" if _status is None else _status))(
        make_resp_test(_label, _raw, _status, _body))


def early_answer(conn, req):
    if req.target == "/early":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
        time.sleep(0.3)
        return True     # framework then reads (and discards) the body, keeps the connection
    return echo(conn, req)


@test("response splitting: device answers before the request body; the body (a request) is "
      "never parsed as one")
def t_split_early(ctx):
    dev = ctx.device(early_answer, read_body=False)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(b"POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUG))
    r = c.read_response(timeout=5)
    eq(r.status, 200, "early response relayed")
    eq(r.body, b"early", "its body")
    c.send(SMUG, ignore_errors=True)
    try:
        r2 = c.read_response(timeout=3)
        fail("the body bytes were answered as a request", "no response", r2.status)
    except (Closed, socket.timeout):
        pass
    time.sleep(0.3)
    check(not any(q.target == "/smuggled" for q in dev.requests),
          "the body never reaches the device as a request", "absent",
          [q.target for q in dev.requests])
    c2 = ctx.client()
    c2.send(req_bytes("GET", "/after"))
    eq(dev_info(c2.read_response(timeout=5))["target"], "/after", "next client served")


def head_with_body(conn, req):
    if req.method == "HEAD":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + EVIL)
        return True
    return echo(conn, req)


@test("response splitting: HEAD answered with a body: the body is never served as a response")
def t_split_head_body(ctx):
    dev = ctx.device(head_with_body)
    ctx.start(devices=[dev])
    c = ctx.client()
    c.send(req_bytes("HEAD", "/h"))
    r = c.read_response(method="HEAD", timeout=5)
    eq(r.status, 200, "HEAD status")
    c.send(req_bytes("GET", "/g"))
    r2 = c.read_response(timeout=5)
    check(not r2.has("X-Evil"), "next response is not the device's extra bytes", "echo",
          short(r2.head_raw + r2.body))
    eq(dev_info(r2)["target"], "/g", "next response")


@test("response splitting: rproxy's own error reply to HEAD carries no body")
def t_split_head_error(ctx):
    ctx.start(ctx.config(pools=["pool p", "device p 127.0.0.1:1"],
                         routes=["route host=only.example pool=p"]))
    c = ctx.client()
    c.send(req_bytes("HEAD", "/nowhere"))
    r = c.read_head(timeout=5)
    eq(r.status, 404, "status")
    rest = c.read_until_close(timeout=4)
    eq(rest, b"", "bytes after the head of a HEAD response (RFC 9110 9.3.2: none)")

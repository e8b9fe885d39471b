#!/usr/bin/env python3
"""seeds.py -- write the seed corpora in tests/fuzz/corpus/<target>/ (small files).

Run from anywhere: python3 tests/fuzz/seeds.py.  Deterministic; the files are
committed, so this only needs re-running when a seed is added.  The connection
target's seeds are op scripts (see fuzz_conn.c): connect, client send, device
send, close, time.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
C = os.path.join(HERE, "corpus")

REQ = {
    "get": b"GET /x?y=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n\r\n",
    "get10": b"GET / HTTP/1.0\r\n\r\n",
    "get10ka": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n",
    "head": b"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n",
    "post_cl": b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "post_chunked": b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    "absolute": b"GET http://b.example/b/x HTTP/1.1\r\nHost: other\r\n\r\n",
    "options": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "expect": b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "hop": b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\nTE: trailers\r\n"
           b"X-Forwarded-For: 1.2.3.4\r\nVia: 1.0 x\r\n\r\n",
    "clte": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "dup_cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    "te_list": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "obsfold": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "nul": b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n",
    "pipeline": b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    "smuggle_body": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 30\r\n\r\nGET /evil HTTP/1.1\r\nHost: a\r\n\r\n",
    "leading_crlf": b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
}
RESP = {
    "ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody until close",
    "http10": b"HTTP/1.0 200 OK\r\n\r\nold",
    "continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "switch": b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nraw",
    "nocontent": b"HTTP/1.1 204 No Content\r\n\r\n",
    "notmod": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
    "extra": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
    "clte": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "no_reason": b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    "hop": b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Dev\r\nX-Dev: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
}
CHUNKED = {
    "simple": b"5\r\nhello\r\n0\r\n\r\n",
    "ext": b"3;a=b;c=\"d\"\r\nabc\r\n0;x\r\n\r\n",
    "trailer": b"1\r\na\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n",
    "upper": b"A\r\n0123456789\r\n0\r\n\r\n",
    "big": b"fffffffffffffff\r\n",
    "overflow": b"10000000000000000\r\n",
    "bare_lf": b"5\nhello\n0\n\n",
    "0x": b"0x5\r\nhello\r\n0\r\n\r\n",
    "space": b"5 \r\nhello\r\n0\r\n\r\n",
    "leading_zeros": b"0005\r\nhello\r\n0000\r\n\r\n",
}
CONFIG = {
    "issue15": b"listen 8080 headers=site\npool cam1 host=cam.local\ndevice cam1 10.0.0.11:80\n"
               b"route path=/cam1/ pool=cam1 rewrite=/ headers=secure device_timeout=5s stream_idle=0\n"
               b"route path=/ev/ pool=cam1 stream_idle=5m\n"
               b'headers secure response set Strict-Transport-Security "max-age=31536000"\n'
               b"headers secure response del Server\nheaders secure request del Cookie\n"
               b'headers site response add X-Frame-Options "DENY"\ntimeout tunnel=1h\n'
               b"error_page 404 502 missing.html\n",
    "readme": b"listen 8080\npool cams balance=wrr retries=2\ndevice cams 10.0.0.11:80 weight=5\n"
              b"device cams 10.0.0.12:80 weight=1\ndevice cams 10.0.0.13:80 backup\npool plc\n"
              b"device plc 10.0.0.20:8080 max_fails=3 fail_timeout=30\nroute host=plc.local pool=plc\n"
              b"route path=/cam/ pool=cams\nroute pool=cams\ntimeout client_header=5000 device=10000\n",
    "ipv6": b"listen [::1]:8080\nlisten 127.0.0.1:81\npool p balance=leastconn\ndevice p [::1]:9001\n"
            b"route host=*.example.com path=/x pool=p cache=on\nvia gw\n",
    "bad": b"listen 8080\npool p\ndevice q 1.2.3.4:5\n",
    "comments": b"# c\n\n  listen   localhost:8080   # x\r\npool p\ndevice p 127.0.0.1:1 weight=0\nroute pool=p\n",
    "names": b"listen 8080\npool cams resolve=10s\ndevice cams cam1.lan:80\ndevice cams Cam-2.local:8080 backup\n"
             b"device cams x_y.z9:1\nroute pool=cams\n",
}


def op_connect():
    return b"\x00"


def op_client(i, data):
    out = b""
    while data:
        k = data[:0xef]
        data = data[0xef:]
        out += bytes([1, i, len(k)]) + k
    return out


def op_device(i, data):
    out = b""
    while data:
        k = data[:0xef]
        data = data[0xef:]
        out += bytes([7, i, len(k)]) + k
    return out


def op_time(units):
    return bytes([11, units])


CONN = {
    "get": op_connect() + op_client(0, REQ["get"]) + op_device(0, RESP["ok"]),
    "keepalive": op_connect() + op_client(0, REQ["get"]) + op_device(0, RESP["ok"])
                 + op_client(0, REQ["head"]) + op_device(0, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
    "post_chunked": op_connect() + op_client(0, REQ["post_chunked"]) + op_device(0, RESP["chunked"]),
    "upgrade": op_connect() + op_client(0, REQ["upgrade"]) + op_device(0, RESP["switch"])
               + op_client(0, b"client raw bytes") + bytes([6, 0, 0]),
    "upgrade_200": op_connect() + op_client(0, REQ["upgrade"] + b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
                   + op_device(0, RESP["ok"]) + op_device(0, RESP["ok"]),
    "extra": op_connect() + op_client(0, REQ["get"]) + op_device(0, RESP["extra"])
             + op_connect() + op_client(1, REQ["get"]) + op_device(0, RESP["ok"]),
    "timeout": op_connect() + op_client(0, b"GET / HTTP/1.1\r\nHo") + op_time(60),
    "device_timeout": op_connect() + op_client(0, REQ["get"]) + op_time(100),
    "expect": op_connect() + op_client(0, REQ["expect"][:-3]) + op_device(0, b"HTTP/1.1 100 Continue\r\n\r\n")
              + op_client(0, b"abc") + op_device(0, RESP["ok"]),
    "pipeline": op_connect() + op_client(0, REQ["pipeline"]) + op_device(0, RESP["ok"]) + op_device(0, RESP["ok"]),
    "smuggle": op_connect() + op_client(0, REQ["smuggle_body"]) + op_device(0, RESP["ok"]),
    "http10_chunked": op_connect() + op_client(0, REQ["get10ka"]) + op_device(0, RESP["chunked"]),
    "refused": bytes([13, 1]) + op_connect() + op_client(0, REQ["get"]),
    "pending": bytes([13, 3]) + op_connect() + op_client(0, REQ["get"]) + bytes([14, 0, 0])
               + op_device(0, RESP["ok"]),
    "many": b"".join(op_connect() for _ in range(6)) + b"".join(op_client(i, REQ["get"]) for i in range(6)),
    "slow_reader": op_connect() + op_client(0, REQ["get"]) + bytes([12, 0, 0])
                   + op_device(0, b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n") + bytes([7, 0, 0xf5]) + b"x" * 3072,
    "route_b": op_connect() + op_client(0, b"GET /b/x HTTP/1.1\r\nHost: q\r\n\r\n") + op_device(0, RESP["close"])
               + bytes([10, 0, 0]),
    # route path=/s/ share=on: two viewers of one MJPEG stream, then the device ends it
    "share_mjpeg": op_connect() + op_connect() + op_client(0, b"GET /s/v HTTP/1.1\r\nHost: q\r\n\r\n")
                   + op_client(1, b"GET /s/v HTTP/1.1\r\nHost: q\r\n\r\n")
                   + op_device(0, b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=fr\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n10\r\n--fr\r\n\r\n0123456789\r\n")
                   + op_device(0, b"7\r\n\r\n--fr\r\n\r\n0\r\n\r\n"),
    "share_sse": op_connect() + op_client(0, b"GET /s/e HTTP/1.1\r\nHost: q\r\n\r\n")
                 + op_device(0, b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n")
                 + op_connect() + op_client(1, b"GET /s/e HTTP/1.1\r\nHost: q\r\n\r\n")
                 + op_device(0, b"data: 2\n\n") + bytes([10, 0, 0]),
}


# The TLS target's seeds (see fuzz_tls.c): 0 raw client, 1 engine client (BearSSL
# inside the harness, a real handshake), 2 raw bytes on a client's wire, 4 app data
# through an engine, 5 canned request, 6 close, 9 canned device response, 11 time,
# 12 stall, 15 tamper.
def t_engine(cfg=0):
    return bytes([1, cfg])


def t_req(c, which):
    return bytes([5, c, which])


def t_resp(d, which):
    return bytes([9, d, which])


def t_raw(c, data):
    return bytes([2, c, len(data)]) + data


def t_app(c, data):
    return bytes([4, c, len(data)]) + data


TLS = {
    "get": t_engine() + t_req(0, 0) + t_resp(0, 0),
    "get_chapol_nosni": t_engine(2 | 32) + t_req(0, 0) + t_resp(0, 0) + bytes([6, 0, 2]),
    "resume": t_engine() + t_req(0, 0) + t_resp(0, 0) + bytes([6, 0, 2]) + t_engine(128)
              + t_req(1, 0) + t_resp(0, 0),
    "post_chunked": t_engine(1) + t_req(0, 1) + t_resp(0, 1),
    "upgrade": t_engine(3) + t_req(0, 2) + t_resp(0, 2) + t_app(0, b"hello") + bytes([7, 0, 3]) + b"abc",
    "close_delimited": t_engine() + t_req(0, 3) + t_resp(0, 3) + bytes([10, 0, 0]),
    "inject": t_engine() + t_req(0, 0) + t_resp(0, 0) + t_raw(0, b"\x17\x03\x03\x00\x20" + b"\x00" * 32),
    "tamper": t_engine() + bytes([15, 1, 0, 5, 0x40]) + t_req(0, 0),
    "app_fuzz": t_engine() + t_app(0, REQ["post_chunked"]) + t_resp(0, 0),
    "raw_hello": bytes([0]) + t_raw(0, b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"),
    "raw_http": bytes([0]) + t_raw(0, REQ["get"]),
    "hs_timeout": bytes([0]) + t_raw(0, b"\x16\x03\x01") + bytes([11, 60]),
    "exhaust": t_engine() + t_engine(1) + t_engine(2) + bytes([0]) + t_req(0, 0) + t_req(1, 0) + t_req(2, 0),
    "tls10_only": t_engine(8 | 16),
    "renegotiate": t_engine() + t_req(0, 0) + t_resp(0, 0) + bytes([6, 0, 3]) + t_req(0, 0),
    "slow_reader": t_engine() + bytes([12, 0, 5]) + t_req(0, 0) + t_resp(0, 0) + bytes([12, 0, 0]),
}

# The auth target: first byte 0 mod 3 = cap + an Authorization value, 1 mod 3 = a
# users file, 2 mod 3 = a stored hash, NUL, a password (see fuzz_auth.c).
H5 = b"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
H5R = b"$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"
H6 = (b"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiB"
      b"FdcbYEdFCoEOfaS35inz1")
AUTH = {
    "basic": b"\x00\xff" + b"Basic dXNlcjpwYXNz",
    "basic_rfc": b"\x00\x40" + b"basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "basic_pad1": b"\x00\x10" + b"Basic dTpwYWI=",
    "basic_short": b"\x00\x03" + b"Basic dTpwYWI=",
    "bearer": b"\x00\xff" + b"Bearer abc",
    "users": b"\x01" + b"# users\n\nalice:" + H5 + b"\r\n  bob:" + H6 + b"\ncarol:" + H5R + b"\n",
    "users_bad": b"\x01" + b"alice:$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1\nbob:plain\n",
    "crypt5": b"\x02" + H5R + b"\x00the minimum number is still observed",
    "crypt5_wrong": b"\x02" + H5R + b"\x00wrong",
    "crypt6": b"\x02" + b"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZ"
              b"t58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.\x00the minimum number is still observed",
    "crypt_bad": b"\x02" + b"$5$rounds=10$x$abc\x00pw",
}

# The proxyproto target: the first bytes of a connection.
V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PROXYPROTO = {
    "v1_tcp4": b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n",
    "v1_tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 8080\r\n",
    "v1_unknown": b"PROXY UNKNOWN\r\n",
    "v1_unknown_long": b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::1 65535 65535\r\n",
    "v2_tcp4": V2SIG + b"\x21\x11\x00\x0c" + bytes([10, 0, 0, 1, 192, 168, 1, 2, 0x30, 0x39, 0, 80]),
    "v2_tcp6_tlv": V2SIG + b"\x21\x21\x00\x2b" + bytes(15) + b"\x05" + bytes(15) + b"\x01"
                   + b"\x9c\x40\x01\xbb" + b"\x04\x00\x04abcd",
    "v2_local": V2SIG + b"\x20\x00\x00\x00",
    "v2_unix": V2SIG + b"\x21\x31\x00\xd8" + bytes(216),
}

# The pathmap target: a selector byte (bits 0-1 field: Location, Content-Location,
# Refresh, Set-Cookie; 2 rewrite=/api/v2/; 3 https; 4 client Host known; 5 small
# writer), then the value.
PATHMAP = {
    "loc_path": b"\x10/login",
    "loc_abs": b"\x18http://10.0.0.5:80/login?x=1",
    "loc_host": b"\x10HTTPS://cam.local",
    "loc_sr": b"\x14//cam.local/api/v2/x",
    "loc_rel": b"\x10../x",
    "cl_api": b"\x15/api/v2?q",
    "refresh": b"\x12 5; url='/login'",
    "cookie": b"\x13sid=1; Path=/; HttpOnly;path=/ui",
    "cookie_api": b"\x17a=b; Path=/api/v2; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
    "small": b"\x30/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "climb": b"\x10/cam1/%2e%2E/..%5cadmin",
}


def write(target, table):
    d = os.path.join(C, target)
    os.makedirs(d, exist_ok=True)
    for name, data in table.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("request", REQ)
write("response", RESP)
write("chunked", {k: b"\x01\x02\x03\x04" + v for k, v in CHUNKED.items()})
write("config", CONFIG)
write("conn", CONN)
write("tls", TLS)
write("auth", AUTH)
write("proxyproto", PROXYPROTO)
write("pathmap", PATHMAP)

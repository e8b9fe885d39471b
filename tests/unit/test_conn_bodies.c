/*
 * test_conn_bodies.c -- message bodies and their framing: HTTP/1.0 clients
 * (a chunked response de-chunked and closed, keep-alive or not), chunked
 * passed through to a 1.1 client, close-delimited responses, a device dying
 * mid-body, HEAD and 204; request bodies by Content-Length and chunked,
 * a bad chunk size, Expect: 100-continue; Upgrade tunnels (and a 101 nobody
 * asked for); a device's broken chunked framing (a 502 while no head went
 * out, else a cut the access record names) and the other cut responses.
 *
 * SPDX-License-Identifier: MIT
 *
 * The harness (setup, run, take, teardown ...) is conn_scenario.h.
 */
#include "conn_scenario.h"

/* HTTP/1.0 clients: a chunked response de-chunked and closed; keep-alive
 * only when asked for. */
static void
http10_responses(void)
{
    int c, d;
    char *out;

    /* HTTP/1.0 client, chunked response: de-chunked and close-delimited */
    c = client(40001);
    d = forward(c, "GET /c HTTP/1.0\r\nHost: app.example\r\n\r\n");
    out = reply(d, c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n"), "1.0 dechunk: status");
    CHECK(!has(out, "Transfer-Encoding"), "1.0 dechunk: no Transfer-Encoding to a 1.0 client");
    CHECK(has(out, "\r\nConnection: close\r\n"), "1.0 dechunk: Connection: close");
    CHECK(ends(out, "\r\n\r\nhello world"), "1.0 dechunk: body decoded");
    CHECK(fp_shut(c), "1.0 dechunk: connection closed to end the body");

    /* HTTP/1.0 keep-alive */
    c = client(40002);
    d = forward(c, "GET /k HTTP/1.0\r\nHost: app.example\r\nConnection: keep-alive\r\n\r\n");
    out = reply(d, c, RESP_OK);
    CHECK(has(out, "\r\nConnection: keep-alive\r\n") && ends(out, "ok"), "1.0 keep-alive: Connection: keep-alive");
    CHECK(!closing(c), "1.0 keep-alive: stays open");

    /* HTTP/1.0 without keep-alive */
    c = client(40003);
    d = forward(c, "GET /k HTTP/1.0\r\nHost: app.example\r\n\r\n");
    out = reply(d, c, RESP_OK);
    CHECK(has(out, "\r\nConnection: close\r\n") && ends(out, "ok"), "1.0: Connection: close");
    CHECK(fp_shut(c), "1.0: closed after the response");
}

/* Chunked to a 1.1 client passes through chunked. */
static void
chunked_passthrough(void)
{
    int c, d;
    char *out;

    c = client(40004);
    d = forward(c, REQ("/ch"));
    out = reply(d, c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
    CHECK(has(out, "\r\nTransfer-Encoding: chunked\r\n"), "1.1 chunked: Transfer-Encoding kept");
    {
        const char *b = strstr(out, "\r\n\r\n");
        rp_chunked ch;
        char dec[64];
        size_t dn = 0, off = 0, bl = b ? strlen(b + 4) : 0;
        memset(&ch, 0, sizeof ch);
        while (b && off < bl && !ch.done) {
            long r = rp_chunked_step(&ch, b + 4 + off, bl - off);
            if (r <= 0)
                break;
            if (ch.in_data && dn + (size_t)r < sizeof dec)
                memcpy(dec + dn, b + 4 + off, (size_t)r), dn += (size_t)r;
            off += (size_t)r;
        }
        CHECK(ch.done && dn == 5 && memcmp(dec, "hello", 5) == 0, "1.1 chunked: body decodes to the data");
    }
    CHECK(!closing(c), "1.1 chunked: keep-alive");
}

/* A close-delimited response; a device dying mid-body. */
static void
close_delimited(void)
{
    int c, d;
    char *out;

    c = client(40005);
    d = forward(c, REQ("/cl"));
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil");
    run();
    fp_push_str(d, " the end");
    fp_eof(d);
    run();
    out = take(c);
    CHECK(has(out, "\r\nConnection: close\r\n") && ends(out, "\r\n\r\nuntil the end"), "close-delimited: passed with Connection: close");
    CHECK(fp_shut(c), "close-delimited: client connection closed after it");
    CHECK(fp_closed(d), "close-delimited: device connection closed");

    /* device dies mid-body: no short body on a keep-alive connection */
    c = client(40006);
    d = forward(c, REQ("/short"));
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    run();
    fp_eof(d);
    run();
    out = take(c);
    CHECK(closing(c), "mid-body death: client connection closed");
    CHECK(!has(out, "HTTP/1.1 502"), "mid-body death: no second status line after the head");
    CHECK(nacc > 0 && acc[nacc - 1].status == 200 && !strcmp(acc[nacc - 1].cut, "device-closed"),
          "mid-body death: access record 200, cut device-closed");
}

/* A device's broken chunked framing: bytes that came in with the head are
 * checked before the head goes out (502); later ones cut the response.
 * Either way a device failure (max_fails=0: counted, never taken out). */
static void
test_bad_chunked_response(void)
{
    static const char *const bad[] = {
        "zz\r\n", "2\r\nok\r\nzz\r\n", "2\r\nokX\r\n", "5\r\nhello\n0\r\n\r\n",
        "ffffffffffffffffff\r\n"};
    const rp_device *dv;
    size_t i;
    int c, d, v;
    char req[64], *out;
    if (!setup("bad chunked response", CFG))
        return;
    dv = &P->cfg.devices[0];
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        for (v = 0; v < 2; v++) { /* HTTP/1.1 (passed on chunked) and 1.0 (de-chunked) */
            rp_counter failed = dv->failures;
            c = client((unsigned)(41000 + 2 * i + (unsigned)v));
            snprintf(req, sizeof req, "GET /b%u HTTP/1.%d\r\nHost: app.example\r\n\r\n", (unsigned)i, 1 - v);
            d = forward(c, req);
            fp_push_str(d, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            fp_push_str(d, bad[i]); /* one read with the head */
            run();
            out = take(c);
            CHECK(starts(out, "HTTP/1.1 502 ") && !has(out, " 200 "),
                  "bad chunk %u in the head's read (1.%d): a 502, no 200", (unsigned)i, 1 - v);
            CHECK(closing(c) && fp_closed(d), "bad chunk %u (1.%d): both connections closed", (unsigned)i, 1 - v);
            CHECK(nacc > 0 && acc[nacc - 1].status == 502 && !acc[nacc - 1].cut[0],
                  "bad chunk %u (1.%d): access record 502, not cut", (unsigned)i, 1 - v);
            CHECK(dv->failures == failed + 1, "bad chunk %u (1.%d): a device failure", (unsigned)i, 1 - v);
        }
    /* valid so far (a chunk cut short, a body ended and more after it): relayed */
    c = client(41100);
    d = forward(c, REQ("/partial"));
    out = reply(d, c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe");
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && ends(out, "\r\n\r\n5\r\nhe"), "partial first chunk: relayed");
    out = reply(d, c, "llo\r\n0\r\n\r\n");
    CHECK(!strcmp(out, "llo\r\n0\r\n\r\n") && !closing(c), "partial first chunk: the rest follows, kept alive");
    d = forward(c, REQ("/done"));
    out = reply(d, c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nzz\r\n");
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && ends(out, "\r\n\r\n0\r\n\r\n"), "bytes after the last chunk: body relayed");
    CHECK(fp_closed(d), "bytes after the last chunk: that device connection not reused");
    /* broken after the head went out: head and good chunk relayed, then cut */
    {
        rp_counter failed = dv->failures;
        d = forward(c, REQ("/later"));
        out = reply(d, c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n");
        CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && ends(out, "2\r\nok\r\n"), "later bad chunk: head relayed first");
        out = reply(d, c, "zz\r\n" RESP_OK);
        CHECK(!out[0] && closing(c), "later bad chunk: nothing more, the client connection cut");
        CHECK(nacc > 0 && acc[nacc - 1].status == 200 && !strcmp(acc[nacc - 1].cut, "device-framing"),
              "later bad chunk: access record 200, cut device-framing");
        CHECK(dv->failures == failed + 1, "later bad chunk: a device failure");
    }
    teardown();
}

static void
test_response_bodies(void)
{
    if (!setup("bodies", CFG))
        return;
    http10_responses();
    chunked_passthrough();
    close_delimited();
    teardown();
}

/* HEAD: body-less, keep-alive continues; a 204 has no body either. */
static void
test_head_and_204(void)
{
    int c, d;
    char *out;
    if (!setup("head method", CFG))
        return;
    c = client(40001);
    d = forward(c, "HEAD /h HTTP/1.1\r\nHost: app.example\r\n\r\n");
    out = reply(d, c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    CHECK(has(out, "\r\nContent-Length: 5\r\n") && ends(out, "\r\n\r\n"), "HEAD: Content-Length kept, no body");
    get_ok(c, "/after-head");
    CHECK_INT(fp_connect_count(), 1, "HEAD: connection reused afterwards");

    /* 204: no body */
    d = forward(c, REQ("/204"));
    fp_push_str(d, "HTTP/1.1 204 No Content\r\n\r\n");
    run();
    CHECK(starts(take(c), "HTTP/1.1 204 No Content\r\n"), "204: relayed");
    get_ok(c, "/after-204");
    teardown();
}

static void
test_request_bodies(void)
{
    int c, d;
    char *dh, *out;
    if (!setup("request bodies", CFG))
        return;
    c = client(40001);
    fp_push_str(c, "POST /f HTTP/1.1\r\nHost: app.example\r\nContent-Length: 11\r\n\r\nhello world");
    run();
    d = fp_busy_device();
    dh = take(d);
    CHECK(has(dh, "\r\nContent-Length: 11\r\n") && ends(dh, "\r\n\r\nhello world"), "POST CL: head and body forwarded");
    fp_push_str(d, RESP_OK);
    run();
    CHECK(starts(take(c), "HTTP/1.1 200 OK\r\n"), "POST CL: response");

    fp_push_str(c, "POST /g HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\nabc\r\n");
    run();
    fp_push_str(c, "2\r\nde\r\n0\r\n\r\n");
    run();
    d = fp_busy_device();
    dh = take(d);
    CHECK(has(dh, "\r\nTransfer-Encoding: chunked\r\n") && !has(dh, "Content-Length"), "POST chunked: TE forwarded");
    CHECK(ends(dh, "\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "POST chunked: body forwarded");
    fp_push_str(d, RESP_OK);
    run();
    CHECK(starts(take(c), "HTTP/1.1 200 OK\r\n"), "POST chunked: response");

    /* bad chunk size after the head went to the device: connection closed */
    d = forward(c, "POST /h HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n");
    fp_push_str(c, "zz\r\n");
    run();
    CHECK(closing(c), "bad chunk: client connection closed");
    CHECK(fp_closed(d), "bad chunk: device connection closed");
    out = take(c);
    CHECK(!starts(out, "HTTP/1.1 2"), "bad chunk: no success");
    teardown();

    /* Expect: 100-continue forwarded, the device's 100 relayed */
    if (!setup("expect", CFG))
        return;
    c = client(40001);
    fp_push_str(c, "PUT /u HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    run();
    d = fp_busy_device();
    dh = take(d);
    CHECK(has(dh, "\r\nExpect: 100-continue\r\n"), "expect: forwarded to the device");
    out = reply(d, c, "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(starts(out, "HTTP/1.1 100 Continue\r\n\r\n"), "expect: 100 relayed to the client");
    fp_push_str(c, "abc");
    run();
    CHECK_INT(strcmp(take(d), "abc"), 0, "expect: body follows");
    fp_push_str(d, RESP_OK);
    run();
    CHECK(starts(take(c), "HTTP/1.1 200 OK\r\n"), "expect: final response");
    teardown();
}

static void
test_upgrade(void)
{
    int c, d;
    char *dh, *out;
    if (!setup("upgrade", CFG))
        return;
    c = client(40001);
    fp_push_str(c, "GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   "Sec-WebSocket-Key: k\r\n\r\n");
    run();
    d = fp_busy_device();
    dh = take(d);
    CHECK(strcasestr(dh, "\r\nConnection: upgrade\r\n") != NULL, "upgrade: Connection: upgrade forwarded");
    CHECK(has(dh, "\r\nUpgrade: websocket\r\n"), "upgrade: Upgrade forwarded");
    CHECK(has(dh, "\r\nSec-WebSocket-Key: k\r\n"), "upgrade: other fields forwarded");
    out = reply(d, c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    CHECK(starts(out, "HTTP/1.1 101 Switching Protocols\r\n") && has(out, "\r\nUpgrade: websocket\r\n"),
          "upgrade: 101 relayed with Upgrade");
    fp_push_str(c, "ping");
    run();
    CHECK_INT(strcmp(take(d), "ping"), 0, "upgrade: client -> device bytes");
    fp_push_str(d, "pong");
    run();
    CHECK_INT(strcmp(take(c), "pong"), 0, "upgrade: device -> client bytes");
    CHECK_INT(P->stats.tunnels, 1, "upgrade: stats.tunnels");
    fp_eof(d);
    run();
    CHECK(closing(c), "upgrade: device close ends the tunnel");
    CHECK(fp_closed(d), "upgrade: device socket closed");
    teardown();

    /* a 101 nobody asked for is a bad response */
    if (!setup("upgrade unasked", CFG))
        return;
    c = client(40001);
    d = forward(c, REQ("/"));
    fp_push_str(d, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    run();
    CHECK(starts(take(c), "HTTP/1.1 502 "), "upgrade: unasked 101 -> 502");
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(response_bodies),
    TAP_TEST(bad_chunked_response),
    TAP_TEST(head_and_204),
    TAP_TEST(request_bodies),
    TAP_TEST(upgrade),
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

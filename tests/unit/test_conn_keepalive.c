/*
 * test_conn_keepalive.c -- one client connection for many requests, and how
 * connections end: device connections pooled and reused, pipelined requests
 * answered in order (a burst of more than one buffer, a body followed by the
 * next request), heads trickling in a byte at a time, 300 requests on one
 * connection, a client's half-close, Connection: close from either side, an
 * early response to an upload, stale pooled connections (and the retry
 * race, GET against POST), and rp_shutdown with a request in flight.
 *
 * SPDX-License-Identifier: MIT
 *
 * The harness (setup, run, take, teardown ...) is conn_scenario.h.
 */
#include "conn_scenario.h"

static void
test_keepalive_reuse(void)
{
    int c1, c2, d1, d2, d3;
    if (!setup("reuse", CFG))
        return;
    c1 = client(40001);
    d1 = get_ok(c1, "/one");
    d2 = get_ok(c1, "/two");
    CHECK_INT(fp_connect_count(), 1, "reuse: second request on the same device connection");
    CHECK_INT(d2, d1, "reuse: same device socket");
    c2 = client(40002);
    d3 = get_ok(c2, "/three");
    CHECK_INT(d3, d1, "reuse: another client reuses the pooled connection");
    CHECK_INT(fp_connect_count(), 1, "reuse: still one connect");
    CHECK_INT(P->stats.device_reuses, 2, "reuse: stats.device_reuses");
    CHECK_INT(P->stats.responses[2], 3, "reuse: 3 responses");
    teardown();
}

/* Answer every complete request head waiting on any device connection with
 * a body that names its target.  Returns how many were answered. */
static int
serve_round(void)
{
    int i, served = 0;
    for (i = 0; i < fp_connect_count(); i++) {
        int d = fp_connect_sock(i);
        char *b, *p;
        if (d < 0 || fp_closed(d) || fp_pending(d) == 0)
            continue;
        b = take(d);
        for (p = b; (p = strstr(p, "GET ")) != NULL;) {
            char path[64], resp[200];
            char *sp = strchr(p + 4, ' ');
            size_t n = sp ? (size_t)(sp - (p + 4)) : 0;
            if (!sp || n >= sizeof path)
                break;
            memcpy(path, p + 4, n);
            path[n] = 0;
            snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n%s", (unsigned)n, path);
            fp_push_str(d, resp);
            served++;
            p = sp;
        }
    }
    return served;
}

static void
test_pipelining(void)
{
    int c, k;
    char *out;
    const char *a, *b, *e;
    if (!setup("pipeline", CFG))
        return;
    c = client(40001);
    fp_push_str(c, REQ("/1") REQ("/2") REQ("/3"));
    run();
    for (k = 0; k < 10 && serve_round(); k++)
        run();
    out = take(c);
    CHECK_INT(count(out, "HTTP/1.1 200 OK\r\n"), 3, "pipeline: three responses");
    a = strstr(out, "\r\n\r\n/1");
    b = strstr(out, "\r\n\r\n/2");
    e = strstr(out, "\r\n\r\n/3");
    CHECK(a && b && e && a < b && b < e, "pipeline: answered in request order");
    CHECK_INT(nacc, 3, "pipeline: three access records");
    CHECK(nacc == 3 && strcmp(acc[0].target, "/1") == 0 && strcmp(acc[2].target, "/3") == 0,
          "pipeline: access log in order");
    CHECK(!closing(c), "pipeline: connection stays open");
    teardown();
}

/* A large pipelined burst (more than one buffer) and a body followed by
 * the next request in the same segment. */
static void
test_pipelining_burst(void)
{
    static char reqs[60000];
    size_t n = 0;
    int c, k, i, in_order = 1;
    char *out;
    const char *at;
    if (!setup("pipeline burst", CFG))
        return;
    c = client(60001);
    for (i = 0; i < 600; i++)
        n += (size_t)sprintf(reqs + n, "GET /r%d HTTP/1.1\r\nHost: app.example\r\n\r\n", i);
    CHECK(n > RP_BUF_SIZE, "pipeline burst: %lu bytes, more than one buffer", (unsigned long)n);
    fp_push(c, reqs, n);
    run();
    for (k = 0; k < 1000 && serve_round(); k++)
        run();
    out = take(c);
    CHECK_INT(count(out, "HTTP/1.1 200 OK\r\n"), 600, "pipeline burst: 600 responses");
    for (i = 0, at = out; i < 600 && in_order; i++) {
        char want[32];
        sprintf(want, "\r\n\r\n/r%d", i);
        at = strstr(at, want);
        in_order = at != NULL;
    }
    CHECK(in_order, "pipeline burst: in order");
    teardown();

    if (!setup("pipeline body", CFG))
        return;
    c = client(40001);
    fp_push_str(c, "POST /p HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\n\r\nabc" REQ("/next"));
    run();
    {
        int d = fp_busy_device();
        char *dh = take(d);
        CHECK(starts(dh, "POST /p HTTP/1.1\r\n") && ends(dh, "\r\n\r\nabc"), "pipeline body: POST and its body, nothing more");
        fp_push_str(d, RESP_OK);
        run();
        dh = take(d);
        CHECK(starts(dh, "GET /next HTTP/1.1\r\n"), "pipeline body: then the GET");
        fp_push_str(d, RESP_OK);
        run();
        CHECK_INT(count(take(c), "HTTP/1.1 200 OK"), 2, "pipeline body: two responses");
    }
    teardown();
}

/* Heads arriving one byte at a time, on both sides; many requests on one
 * connection (buffers must be reused). */
static void
test_trickle_and_many(void)
{
    static const char req[] = "GET /trickle HTTP/1.1\r\nHost: app.example\r\nX-A: b\r\n\r\n";
    static const char resp[] = "HTTP/1.1 200 OK\r\nX-B: c\r\nContent-Length: 3\r\n\r\nyes";
    size_t i;
    int c, d, k, ok = 1;
    char *out;
    if (!setup("trickle", CFG))
        return;
    c = client(40001);
    for (i = 0; i < sizeof req - 1; i++) {
        fp_push(c, req + i, 1);
        run();
        if (i + 1 < sizeof req - 1 && fp_connect_count() != 0)
            ok = 0;
    }
    CHECK(ok, "trickle: nothing forwarded before the head is complete");
    d = fp_busy_device();
    if (!CHECK(d >= 0, "trickle: byte-by-byte request head forwarded")) {
        teardown();
        return;
    }
    CHECK(starts(take(d), "GET /trickle HTTP/1.1\r\n"), "trickle: request line");
    for (i = 0; i < sizeof resp - 1; i++) {
        fp_push(d, resp + i, 1);
        run();
    }
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && has(out, "\r\nX-B: c\r\n") && ends(out, "\r\n\r\nyes"),
          "trickle: byte-by-byte response relayed");

    for (k = 0, ok = 1; k < 300 && ok; k++) {
        fp_push_str(c, "GET /many HTTP/1.1\r\nHost: app.example\r\nX-Pad: 0123456789012345678901234567890123456789\r\n\r\n");
        run();
        d = fp_busy_device();
        if (d < 0) {
            ok = 0;
            break;
        }
        take(d);
        fp_push_str(d, RESP_OK);
        run();
        ok = starts(take(c), "HTTP/1.1 200 OK\r\n");
    }
    CHECK(ok, "many: 300 sequential requests on one connection (stopped at %d)", k);
    CHECK_INT(fp_connect_count(), 1, "many: one device connection for all");
    teardown();
}

/* Client half-closes after its request: still answered. */
static void
test_half_close(void)
{
    int c, d;
    if (!setup("half-close", CFG))
        return;
    c = client(40001);
    fp_push_str(c, REQ("/hc"));
    fp_eof(c);
    run();
    d = fp_busy_device();
    if (CHECK(d >= 0, "half-close: request forwarded")) {
        take(d);
        fp_push_str(d, RESP_OK);
        run();
        CHECK(starts(take(c), "HTTP/1.1 200 OK\r\n"), "half-close: response delivered");
    }
    CHECK(closing(c), "half-close: connection closed afterwards");
    teardown();

    /* a device that sends bytes past its response is not pooled */
    if (!setup("extra bytes", CFG))
        return;
    c = client(40001);
    d = forward(c, REQ("/x"));
    fp_push_str(d, RESP_OK "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra");
    run();
    CHECK(ends(take(c), "\r\n\r\nok"), "extra bytes: client gets only its response");
    get_ok(c, "/y");
    CHECK_INT(fp_connect_count(), 2, "extra bytes: that device connection was not reused");
    teardown();
}

/* Connection: close from either side. */
static void
test_connection_close(void)
{
    int c, d;
    char *out;
    if (!setup("conn close", CFG))
        return;
    c = client(40001);
    d = forward(c, "GET /bye HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n");
    out = reply(d, c, RESP_OK);
    CHECK(has(out, "\r\nConnection: close\r\n") && ends(out, "ok"), "conn close: client asked: Connection: close in the response");
    CHECK(fp_shut(c), "conn close: client asked: FIN after the response");
    CHECK(!fp_closed(d), "conn close: client asked: device connection still pooled");

    c = client(40002);
    d = forward(c, REQ("/dev-closes"));
    out = reply(d, c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    CHECK(ends(out, "ok") && !has(out, "Connection: close"), "conn close: device asked: client connection unaffected");
    CHECK(!closing(c), "conn close: device asked: client stays");
    CHECK(fp_closed(d), "conn close: device asked: device connection closed");
    get_ok(c, "/next");
    CHECK_INT(fp_connect_count(), 2, "conn close: next request on a new device connection");
    teardown();

    /* the device answers early (before the upload finished): relayed, then close */
    if (!setup("early response", CFG))
        return;
    c = client(40001);
    d = forward(c, "POST /up HTTP/1.1\r\nHost: app.example\r\nContent-Length: 100000\r\n\r\n0123456789");
    out = reply(d, c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig");
    CHECK(starts(out, "HTTP/1.1 413 ") && ends(out, "big"), "early response: relayed to the client");
    CHECK(has(out, "\r\nConnection: close\r\n"), "early response: Connection: close (the body was not read)");
    CHECK(closing(c), "early response: client connection closing");
    teardown();
}

/* An idle pooled connection the device closed. */
static void
test_stale_connection(void)
{
    int c, d1, d2, i;
    char *out;
    if (!setup("stale", CFG))
        return;
    c = client(40001);
    d1 = get_ok(c, "/one");
    /* the device closes while idle: rproxy notices, next request connects anew */
    fp_eof(d1);
    run();
    CHECK(fp_closed(d1), "stale: idle connection closed by the device is dropped");
    d2 = get_ok(c, "/two");
    CHECK(d2 >= 0 && d2 != d1, "stale: new connection for the next request");
    CHECK_INT(fp_connect_count(), 2, "stale: two connects");
    teardown();

    /* the race: request written to the pooled connection, then the device's
     * FIN arrives with no response: GET is retried on a fresh connection */
    if (!setup("stale race", CFG))
        return;
    c = client(40001);
    d1 = get_ok(c, "/one");
    fp_push_str(c, REQ("/again"));
    for (i = 0; i < 10 && fp_pending(d1) == 0; i++)
        rp_poll(P, 0);
    CHECK(fp_pending(d1) > 0, "stale race: request written to the pooled connection");
    take(d1);
    fp_eof(d1);
    run();
    CHECK_INT(fp_connect_count(), 2, "stale race: a fresh connection");
    d2 = fp_connect_sock(1);
    out = take(d2);
    CHECK(starts(out, "GET /again HTTP/1.1\r\n"), "stale race: request replayed on it");
    out = reply(d2, c, RESP_OK);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && !has(out, "502"), "stale race: client gets 200, not an error");
    CHECK_INT(P->stats.retries, 1, "stale race: stats.retries");
    CHECK_INT(P->stats.device_errors, 0, "stale race: a stale pooled connection is not a device error");
    CHECK(fp_closed(d1), "stale race: old connection closed");
    teardown();

    /* the same race with a POST: not replayed (not idempotent) */
    if (!setup("stale race POST", CFG))
        return;
    c = client(40001);
    d1 = get_ok(c, "/one");
    fp_push_str(c, "POST /submit HTTP/1.1\r\nHost: app.example\r\nContent-Length: 0\r\n\r\n");
    for (i = 0; i < 10 && fp_pending(d1) == 0; i++)
        rp_poll(P, 0);
    take(d1);
    fp_eof(d1);
    run();
    out = take(c);
    CHECK_INT(fp_connect_count(), 1, "stale race POST: not replayed");
    CHECK(starts(out, "HTTP/1.1 502 "), "stale race POST: 502 (got %.12s)", out);
    teardown();
}

static void
test_shutdown(void)
{
    int idle, busy, d, l;
    char *out;
    if (!setup("shutdown", CFG))
        return;
    l = fp_listener(8080);
    idle = client(40001);
    get_ok(idle, "/warm");
    busy = client(40002);
    d = forward(busy, REQ("/in-flight"));
    CHECK_INT(rp_active(P), 2, "shutdown: two clients");
    rp_shutdown(P);
    run();
    CHECK(fp_closed(l), "shutdown: listener closed");
    CHECK(closing(idle), "shutdown: idle keep-alive client closed");
    CHECK(!closing(busy), "shutdown: busy client still served");
    out = reply(d, busy, RESP_OK);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && has(out, "\r\nConnection: close\r\n"), "shutdown: in-flight response completes with Connection: close");
    CHECK(closing(busy), "shutdown: busy client closed after its response");
    fp_eof(busy);
    fp_eof(idle);
    run();
    CHECK_INT(rp_active(P), 0, "shutdown: rp_active reaches 0");
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(keepalive_reuse),
    TAP_TEST(pipelining),
    TAP_TEST(pipelining_burst),
    TAP_TEST(trickle_and_many),
    TAP_TEST(half_close),
    TAP_TEST(connection_close),
    TAP_TEST(stale_connection),
    TAP_TEST(shutdown),
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

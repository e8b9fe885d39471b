/*
 * test_conn_timeouts.c -- every timeout, checked just before and just after
 * it is due, and slow peers: client_header (the 408, a slowloris trickle, the
 * next head on a keep-alive connection), client_idle and device_idle, device=
 * (the 504; a dripping body resets it), connect= (with and without a retry);
 * back-pressure from a slow or stalled reader and toward a slow device.
 *
 * SPDX-License-Identifier: MIT
 *
 * The harness (setup, run, take, teardown ...) is conn_scenario.h.
 */
#include "conn_scenario.h"

static const char CFG_NORETRY[] = "listen 8080\n"
                                  "pool a retries=0\n"
                                  "device a 127.0.0.1:9001 max_fails=0\n"
                                  "route host=app.example pool=a\n" TIMEOUTS;


/* A new client sends req; returns its socket, and in *d the first device
 * connection (the request taken from it). */
static int
first_device(const char *req, int *d)
{
    int c = client(40001);
    fp_push_str(c, req);
    run();
    *d = fp_connect_sock(0);
    take(*d);
    return c;
}

static void
test_head_timeout(void)
{
    int c, c2, c3, i;
    char *out;
    if (!setup("head timeout", CFG))
        return;
    c = client(40001);
    fp_push_str(c, "GET / HTTP/1.1\r\nHo");
    run();
    advance(T_HEADER - 1);
    CHECK_INT(fp_pending(c), 0, "head timeout: nothing sent before client_header");
    CHECK(!closing(c), "head timeout: open before client_header");
    advance(2);
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 408 "), "head timeout: 408 after client_header");
    CHECK(has(out, "\r\nConnection: close\r\n"), "head timeout: 408 says Connection: close");
    CHECK(fp_shut(c), "head timeout: FIN after the 408");
    CHECK_INT(fp_connect_count(), 0, "head timeout: no device involved");
    CHECK_INT(P->stats.timeouts, 1, "head timeout: stats.timeouts");
    CHECK_INT(P->stats.responses[4], 1, "head timeout: stats.responses[4xx]");
    CHECK(nacc == 1 && acc[0].status == 408, "head timeout: access record with 408");
    fp_eof(c);
    run();
    CHECK(fp_closed(c), "head timeout: closed once the client closes");

    /* slowloris: bytes keep trickling, the head deadline does not move */
    c2 = client(40002);
    for (i = 0; i < 3; i++) {
        fp_push_str(c2, "X");
        run();
        advance(300);
    }
    CHECK_INT(fp_pending(c2), 0, "head timeout: trickle, 900 ms: nothing yet");
    advance(T_HEADER - 900 + 1);
    CHECK(starts(take(c2), "HTTP/1.1 408 "), "head timeout: trickling client still gets 408 at client_header");

    /* a keep-alive connection's next head times out too, and its access
     * record is not the previous request's */
    c3 = client(40003);
    get_ok(c3, "/first");
    fp_push_str(c3, "GET /second HTTP/1.1\r\nHo");
    run();
    advance(T_HEADER + 1);
    CHECK(starts(take(c3), "HTTP/1.1 408 "), "head timeout: 408 on a keep-alive connection");
    CHECK(nacc >= 2 && acc[nacc - 1].status == 408 && strcmp(acc[nacc - 1].target, "/first") != 0,
          "head timeout: access record for the 408 is not the previous request's (got %s %d, %d records)",
          nacc >= 1 ? acc[nacc - 1].target : "", nacc >= 1 ? acc[nacc - 1].status : 0, nacc);
    teardown();
}

static void
test_idle_timeouts(void)
{
    int c, c2, d;
    if (!setup("idle", CFG))
        return;
    /* a fresh connection owes its first head within client_header; one
     * that never sent a byte is closed then without a 408 */
    c = client(40001);
    advance(T_HEADER - 1);
    CHECK(!closing(c), "idle: silent new connection open just before client_header");
    advance(2);
    CHECK(closing(c), "idle: silent new connection closed after client_header");
    CHECK(!starts(take(c), "HTTP/1.1 408"), "idle: no 408 for a connection that never sent a byte");

    /* after a response: idle again */
    c2 = client(40002);
    d = get_ok(c2, "/");
    advance(T_HEADER + 1);
    CHECK(!closing(c2), "idle: keep-alive connection not closed at client_header");
    advance(T_IDLE - T_HEADER - 2);
    CHECK(!closing(c2), "idle: keep-alive open just before client_idle");
    advance(2);
    CHECK(closing(c2), "idle: keep-alive closed after client_idle");
    CHECK(!fp_closed(d), "idle: device connection still pooled at client_idle");
    advance(T_DIDLE - T_IDLE);
    CHECK(fp_closed(d), "idle: pooled device connection closed after device_idle");
    teardown();
}

static void
test_device_timeout(void)
{
    int c, d;
    char *out;
    if (!setup("device timeout", CFG))
        return;
    c = first_device(REQ("/slow"), &d);
    advance(T_DEVICE - 1);
    CHECK_INT(fp_pending(c), 0, "device timeout: nothing before device=");
    advance(2);
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 504 "), "device timeout: 504 after device=");
    CHECK(fp_closed(d), "device timeout: device connection closed");
    CHECK(closing(c), "device timeout: client connection closing");
    CHECK_INT(P->stats.timeouts, 1, "device timeout: stats.timeouts");
    CHECK_INT(P->stats.device_errors, 1, "device timeout: stats.device_errors");
    CHECK_INT(P->stats.responses[5], 1, "device timeout: stats.responses[5xx]");
    CHECK(nacc == 1 && acc[0].status == 504 && acc[0].ms == T_DEVICE + 1, "device timeout: access record 504, %u ms",
          nacc ? acc[0].ms : 0);
    CHECK(nacc == 1 && acc[0].err == RP_ETIMEDOUT, "device timeout: access record err RP_ETIMEDOUT");
    teardown();

    /* a device that keeps sending body bytes is not timed out */
    if (!setup("device timeout progress", CFG))
        return;
    c = first_device(REQ("/drip"), &d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na");
    run();
    advance(T_DEVICE - 500);
    fp_push_str(d, "b");
    run();
    advance(T_DEVICE - 500);
    fp_push_str(d, "c");
    run();
    advance(T_DEVICE - 500);
    out = reply(d, c, "d");
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && ends(out, "\r\n\r\nabcd"), "device timeout: a dripping body completes");
    CHECK_INT(P->stats.timeouts, 0, "device timeout: progress resets the device timer");
    teardown();
}

static void
test_connect_timeout(void)
{
    int c, d;
    char *out;
    if (!setup("connect timeout", CFG_NORETRY))
        return;
    fp_connect_policy(9001, FP_CONNECT_PENDING);
    c = client(40001);
    fp_push_str(c, REQ("/"));
    run();
    CHECK_INT(fp_connect_count(), 1, "connect timeout: connect started");
    d = fp_connect_sock(0);
    CHECK(fp_interest(d) & RP_EV_WRITE, "connect timeout: waits for writable");
    advance(T_CONNECT - 1);
    CHECK_INT(fp_pending(c), 0, "connect timeout: nothing before connect=");
    advance(2);
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 504 ") || starts(out, "HTTP/1.1 502 "), "connect timeout: 504/502 after connect= (got %.12s)", out);
    CHECK(fp_closed(d), "connect timeout: connecting socket closed");
    CHECK_INT(P->stats.timeouts, 1, "connect timeout: stats.timeouts");
    CHECK_INT(P->stats.device_errors, 1, "connect timeout: stats.device_errors");
    teardown();

    /* with retries=1 and one device: a second attempt or a 5xx, bounded */
    if (!setup("connect timeout retry", CFG))
        return;
    fp_connect_policy(9001, FP_CONNECT_PENDING);
    c = client(40001);
    fp_push_str(c, REQ("/"));
    run();
    advance(T_CONNECT + 1);
    advance(T_CONNECT + 1);
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 504 ") || starts(out, "HTTP/1.1 502 "), "connect timeout retry: 5xx within 2 x connect= (got %.12s)", out);
    CHECK(fp_connect_count() <= 2, "connect timeout retry: at most retries+1 connects");
    teardown();
}

static void
test_slow_reader(void)
{
    static char body[200000];
    static char got[BIG];
    size_t gotn = 0, i, total;
    int c, d, k;
    char head[128];
    for (i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    if (!setup("slow reader", CFG))
        return;
    c = first_device(REQ("/big"), &d);
    fp_set_sendcap(c, 0);
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", (unsigned)sizeof body);
    fp_push_str(d, head);
    fp_push(d, body, sizeof body);
    run();
    CHECK(!(fp_interest(d) & RP_EV_READ), "slow reader: device no longer read while the client is stuck");
    CHECK(fp_interest(c) & RP_EV_WRITE, "slow reader: waits for the client to become writable");
    CHECK(fp_recv_total(d) <= 2 * RP_BUF_SIZE + 1024, "slow reader: at most the buffers read from the device (%lu)",
          (unsigned long)fp_recv_total(d));
    CHECK(fp_unread(d) > 0, "slow reader: the rest waits at the device");
    fp_set_sendcap(c, 1000);
    for (k = 0; k < 1000 && gotn < BIG - 1; k++) {
        size_t n = fp_take(c, got + gotn, BIG - gotn);
        gotn += n;
        run();
        if (n == 0 && fp_pending(c) == 0 && fp_unread(d) == 0)
            break;
    }
    gotn += fp_take(c, got + gotn, BIG - gotn);
    total = sizeof body;
    CHECK(gotn > total && starts(got, "HTTP/1.1 200 OK\r\n"), "slow reader: whole response delivered in 1000-byte sips (%lu)",
          (unsigned long)gotn);
    CHECK(gotn > total && memcmp(got + gotn - total, body, total) == 0, "slow reader: body intact");
    CHECK(!closing(c), "slow reader: keep-alive afterwards");
    teardown();

    /* a client that never reads is dropped after client_idle */
    if (!setup("stalled reader", CFG))
        return;
    c = first_device(REQ("/big"), &d);
    fp_set_sendcap(c, 0);
    fp_push_str(d, head);
    fp_push(d, body, sizeof body);
    run();
    advance(T_IDLE - 1);
    CHECK(!closing(c) && !fp_closed(d), "stalled reader: kept just before client_idle");
    advance(2);
    CHECK(fp_closed(d), "stalled reader: device connection dropped after client_idle");
    /* the queued bytes get one more client_idle to drain, then the socket goes */
    advance(T_IDLE + 1);
    CHECK(fp_closed(c), "stalled reader: client closed within 2 x client_idle");
    teardown();
}

static void
test_slow_device_upload(void)
{
    static char body[200000];
    static char got[BIG];
    size_t gotn = 0, i;
    int c, d, k;
    char head[160];
    for (i = 0; i < sizeof body; i++)
        body[i] = (char)('A' + i % 23);
    if (!setup("slow upload", CFG))
        return;
    c = client(40001);
    snprintf(head, sizeof head, "POST /up HTTP/1.1\r\nHost: app.example\r\nContent-Length: %u\r\n\r\n", (unsigned)sizeof body);
    fp_push_str(c, head);
    run();
    d = fp_connect_sock(0);
    if (!CHECK(d >= 0, "slow upload: device connected")) {
        teardown();
        return;
    }
    gotn = fp_take(d, got, BIG);
    fp_set_sendcap(d, 0);
    fp_push(c, body, sizeof body);
    run();
    CHECK(!(fp_interest(c) & RP_EV_READ), "slow upload: client no longer read while the device is stuck");
    CHECK(fp_recv_total(c) <= strlen(head) + 2 * RP_BUF_SIZE + 1024, "slow upload: bounded read from the client (%lu)",
          (unsigned long)fp_recv_total(c));
    fp_set_sendcap(d, -1);
    for (k = 0; k < 100; k++) {
        run();
        gotn += fp_take(d, got + gotn, BIG - gotn);
        if (fp_unread(c) == 0 && fp_pending(d) == 0)
            break;
    }
    CHECK(starts(got, "POST /up HTTP/1.1\r\n") && has(got, "\r\nContent-Length: 200000\r\n"), "slow upload: head forwarded");
    CHECK(gotn > sizeof body && memcmp(got + gotn - sizeof body, body, sizeof body) == 0, "slow upload: body intact");
    fp_push_str(d, RESP_OK);
    run();
    CHECK(starts(take(c), "HTTP/1.1 200 OK\r\n"), "slow upload: response delivered");
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(head_timeout),
    TAP_TEST(idle_timeouts),
    TAP_TEST(device_timeout),
    TAP_TEST(connect_timeout),
    TAP_TEST(slow_reader),
    TAP_TEST(slow_device_upload),
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

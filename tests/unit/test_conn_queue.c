/*
 * test_conn_queue.c -- a device's max_conns and its pool's queue
 * (RP_ENABLE_LIMITS) on the fake port and the fake clock: FIFO order,
 * hand-off when a response completes (the connection goes idle) and when a
 * device connection closes, 503 + Retry-After at queue_timeout (not a
 * millisecond before), a queued client that disconnects leaving no trace,
 * 503 at once on a full queue, max_idle closing the idle connections beyond
 * it.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conn_scenario.h"

#if RP_ENABLE_LIMITS

#define QCFG(dev_opts, pool_opts)                                                                  \
    "listen 8080\n"                                                                                \
    "pool a retries=1 " pool_opts "\n"                                                             \
    "device a 127.0.0.1:9001 max_fails=0 " dev_opts "\n"                                           \
    "route host=app.example pool=a\n" TIMEOUTS

#define RESP_CLOSE "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

static rp_pool *
pool_a(void)
{
    return &P->cfg.pools[0];
}

/* Client on port sends GET path; returns the client socket. */
static int
ask(unsigned port, const char *path)
{
    char req[128];
    int c = client(port);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", path);
    fp_push_str(c, req);
    run();
    return c;
}

/* What device d got next starts with "GET path ". */
static int
got_req(int d, const char *path)
{
    char want[128];
    snprintf(want, sizeof want, "GET %s HTTP/1.1\r\n", path);
    return starts(take(d), want);
}

static void
test_queue_order(void)
{
    int c1, c2, c3, c4, d;
    if (!setup("queue order", QCFG("max_conns=1", "queue=5")))
        return;
    c1 = ask(41001, "/1");
    d = fp_busy_device();
    CHECK(d >= 0 && got_req(d, "/1"), "order: /1 at the device");
    c2 = ask(41002, "/2");
    c3 = ask(41003, "/3");
    c4 = ask(41004, "/4");
    CHECK_INT(fp_connect_count(), 1, "order: one device connection (max_conns=1)");
    CHECK_INT(pool_a()->queued, 3, "order: 3 queued");
    CHECK_INT(fp_busy_device(), -1, "order: nothing more reached the device");
    /* each response completes; its connection goes idle; the oldest waiter takes it */
    CHECK(starts(reply(d, c1, RESP_OK), "HTTP/1.1 200 OK\r\n"), "order: /1 answered");
    CHECK(got_req(d, "/2"), "order: /2 next, on the same connection");
    CHECK(starts(reply(d, c2, RESP_OK), "HTTP/1.1 200 OK\r\n"), "order: /2 answered");
    CHECK(got_req(d, "/3"), "order: then /3");
    CHECK(starts(reply(d, c3, RESP_OK), "HTTP/1.1 200 OK\r\n"), "order: /3 answered");
    CHECK(got_req(d, "/4"), "order: then /4");
    CHECK(starts(reply(d, c4, RESP_OK), "HTTP/1.1 200 OK\r\n"), "order: /4 answered");
    CHECK_INT(fp_connect_count(), 1, "order: still one device connection");
    CHECK_INT(pool_a()->queued, 0, "order: queue empty");
    CHECK_INT(pool_a()->queued_peak, 3, "order: queued_peak");
    CHECK_INT(pool_a()->queue_timeouts + pool_a()->queue_full, 0, "order: no 503");
    /* a newcomer while the device is idle goes straight through */
    fp_push_str(c1, REQ("/5"));
    run();
    CHECK(got_req(d, "/5"), "order: /5 straight to the idle connection");
    teardown();
}

static void
test_queue_handoff_close(void)
{
    int c1, c2, d1, d2;
    if (!setup("hand-off on close", QCFG("max_conns=1", "queue=5")))
        return;
    c1 = ask(41011, "/1");
    d1 = fp_busy_device();
    take(d1);
    c2 = ask(41012, "/2");
    CHECK_INT(pool_a()->queued, 1, "close: /2 queued");
    /* the device answers and closes: no idle connection, but room for one */
    CHECK(starts(reply(d1, c1, RESP_CLOSE), "HTTP/1.1 200 OK\r\n"), "close: /1 answered");
    fp_eof(d1);
    run();
    CHECK(fp_closed(d1), "close: the first device connection is closed");
    CHECK_INT(fp_connect_count(), 2, "close: /2 on a new device connection");
    d2 = fp_busy_device();
    CHECK(d2 >= 0 && d2 != d1 && got_req(d2, "/2"), "close: /2 reached the device");
    CHECK(starts(reply(d2, c2, RESP_OK), "HTTP/1.1 200 OK\r\n"), "close: /2 answered");
    CHECK_INT(pool_a()->queued, 0, "close: queue empty");

    teardown();
}

static void
test_queue_timeout(void)
{
    int c1, c2, d;
    char *out;
    if (!setup("queue timeout", QCFG("max_conns=1", "queue=5 queue_timeout=1500")))
        return;
    c1 = ask(41021, "/1");
    d = fp_busy_device();
    take(d);
    c2 = ask(41022, "/2");
    CHECK_INT(pool_a()->queued, 1, "timeout: /2 queued");
    advance(1499);
    CHECK_INT(fp_pending(c2), 0, "timeout: nothing before queue_timeout");
    CHECK_INT(pool_a()->queued, 1, "timeout: still queued at 1499 ms");
    advance(2);
    out = take(c2);
    CHECK(starts(out, "HTTP/1.1 503 "), "timeout: 503 at queue_timeout (got %.12s)", out);
    CHECK(has(out, "\r\nRetry-After: 1\r\n"), "timeout: Retry-After");
    CHECK_INT(pool_a()->queued, 0, "timeout: out of the queue");
    CHECK_INT(pool_a()->queue_timeouts, 1, "timeout: queue_timeouts");
    CHECK_INT(fp_pending(d), 0, "timeout: the device never got /2");
    CHECK(starts(reply(d, c1, RESP_OK), "HTTP/1.1 200 OK\r\n"), "timeout: /1 still answered");
    CHECK_INT(fp_pending(d), 0, "timeout: nothing sent to the device after /1");
    teardown();
}

static void
test_queue_disconnect(void)
{
    int c1, c2, c3, d, i, found = 0;
    if (!setup("disconnect while queued", QCFG("max_conns=1", "queue=5")))
        return;
    c1 = ask(41031, "/1");
    d = fp_busy_device();
    take(d);
    c2 = ask(41032, "/gone");
    c3 = ask(41033, "/3");
    CHECK_INT(pool_a()->queued, 2, "disconnect: 2 queued");
    fp_reset(c2);
    run();
    CHECK(fp_closed(c2), "disconnect: the vanished client's connection is closed");
    CHECK_INT(pool_a()->queued, 1, "disconnect: it left the queue");
    CHECK(starts(reply(d, c1, RESP_OK), "HTTP/1.1 200 OK\r\n"), "disconnect: /1 answered");
    CHECK(got_req(d, "/3"), "disconnect: /3 next (the vanished one is not sent)");
    CHECK(starts(reply(d, c3, RESP_OK), "HTTP/1.1 200 OK\r\n"), "disconnect: /3 answered");
    CHECK_INT(pool_a()->queued, 0, "disconnect: queue empty");
    CHECK_INT(pool_a()->queue_timeouts + pool_a()->queue_full, 0, "disconnect: no 503 counted");
    CHECK_INT(P->cfg.devices[0].active, 0, "disconnect: device active back to 0");
    CHECK_INT(P->cfg.devices[0].idle, 1, "disconnect: one idle connection");
    for (i = 0; i < nacc; i++)
        found += strcmp(acc[i].target, "/gone") == 0 && acc[i].dev_port == 0;
    CHECK_INT(found, 1, "disconnect: one access record for /gone, no device");
    /* the last waiter leaving empties the queue: a newcomer is not stuck behind it */
    c2 = ask(41034, "/4");
    CHECK(got_req(d, "/4"), "disconnect: a newcomer goes straight to the idle connection");
    teardown();
}

/* A dispatched request whose pooled device connection closes without an
 * answer is retried (retries=1) ahead of the waiters: not sent to the back
 * of a full queue (503). */
static void
test_queue_retry(void)
{
    int c1, c2, d1, d2;
    if (!setup("retry ahead of the queue", QCFG("max_conns=1", "queue=1")))
        return;
    c1 = client(41071);
    d1 = get_ok(c1, "/0"); /* d1 goes idle, then carries /1 */
    fp_push_str(c1, REQ("/1"));
    run();
    CHECK(got_req(d1, "/1"), "retry: /1 on the pooled connection");
    c2 = ask(41072, "/2");
    CHECK_INT(pool_a()->queued, 1, "retry: /2 queued (the queue is full)");
    fp_eof(d1);
    run();
    CHECK_INT(fp_connect_count(), 2, "retry: /1 retried on a new connection");
    d2 = fp_connect_sock(1);
    CHECK(d2 >= 0 && got_req(d2, "/1"), "retry: /1 sent again");
    CHECK_INT(pool_a()->queue_full, 0, "retry: no queue_full");
    CHECK(starts(reply(d2, c1, RESP_OK), "HTTP/1.1 200 OK\r\n"), "retry: /1 answered");
    CHECK(got_req(d2, "/2"), "retry: then /2");
    CHECK(starts(reply(d2, c2, RESP_OK), "HTTP/1.1 200 OK\r\n"), "retry: /2 answered");
    teardown();
}

static void
test_queue_full(void)
{
    int c[6], d, i;
    char *out;
    if (!setup("queue full", QCFG("max_conns=1", "queue=3")))
        return;
    c[0] = ask(41040, "/0");
    d = fp_busy_device();
    take(d);
    for (i = 1; i <= 3; i++)
        c[i] = ask(41040 + (unsigned)i, "/q");
    CHECK_INT(pool_a()->queued, 3, "full: 3 queued");
    c[4] = ask(41044, "/4");
    out = take(c[4]);
    CHECK(starts(out, "HTTP/1.1 503 "), "full: 503 at once (got %.12s)", out);
    CHECK(has(out, "\r\nRetry-After: 1\r\n"), "full: Retry-After");
    CHECK_INT(pool_a()->queue_full, 1, "full: queue_full");
    CHECK_INT(pool_a()->queued, 3, "full: still 3 queued");
    for (i = 0; i <= 3; i++) {
        CHECK(starts(reply(d, c[i], RESP_OK), "HTTP/1.1 200 OK\r\n"), "full: request %d answered", i);
        if (i < 3)
            CHECK(got_req(d, "/q"), "full: next waiter dispatched after %d", i);
    }
    teardown();
}

static void
test_queue_none(void)
{
    int c1, c2, d;
    char *out;
    if (!setup("max_conns without a queue", QCFG("max_conns=1", "")))
        return;
    c1 = ask(41051, "/1");
    d = fp_busy_device();
    take(d);
    c2 = ask(41052, "/2");
    out = take(c2);
    CHECK(starts(out, "HTTP/1.1 503 "), "no queue: 503 at once (got %.12s)", out);
    CHECK_INT(fp_connect_count(), 1, "no queue: no second device connection");
    CHECK(starts(reply(d, c1, RESP_OK), "HTTP/1.1 200 OK\r\n"), "no queue: /1 answered");
    teardown();
}

static void
test_max_idle(void)
{
    int c[3], d[3], i;
    if (!setup("max_idle", QCFG("max_conns=3 max_idle=1", "")))
        return;
    for (i = 0; i < 3; i++) {
        c[i] = ask(41060 + (unsigned)i, "/x");
        d[i] = fp_busy_device();
        take(d[i]);
    }
    CHECK_INT(fp_connect_count(), 3, "max_idle: 3 device connections (max_conns=3)");
    for (i = 0; i < 3; i++)
        CHECK(starts(reply(d[i], c[i], RESP_OK), "HTTP/1.1 200 OK\r\n"), "max_idle: answered %d", i);
    CHECK_INT(P->cfg.devices[0].idle, 1, "max_idle: one kept idle");
    CHECK(!fp_closed(d[0]) && fp_closed(d[1]) && fp_closed(d[2]),
          "max_idle: the first kept, the others closed");
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(queue_order),
    TAP_TEST(queue_handoff_close),
    TAP_TEST(queue_timeout),
    TAP_TEST(queue_disconnect),
    TAP_TEST(queue_retry),
    TAP_TEST(queue_full),
    TAP_TEST(queue_none),
    TAP_TEST(max_idle),
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

#else
int
main(void)
{
    puts("1..0 # SKIP RP_ENABLE_LIMITS=0");
    return 0;
}
#endif

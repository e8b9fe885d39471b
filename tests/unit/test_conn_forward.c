/*
 * test_conn_forward.c -- what a proxied exchange carries and where it goes:
 * the request line and fields the device gets (hop-by-hop fields removed,
 * X-Forwarded-*, Via), the response the client gets back, the access record
 * and the counters; request-line and Host variants; an IPv6 client in
 * X-Forwarded-For; routing by host and path; weighted balancing and backups.
 *
 * SPDX-License-Identifier: MIT
 *
 * The harness (setup, run, take, teardown ...) is conn_scenario.h.
 */
#include "conn_scenario.h"

static void
test_get_proxied(void)
{
    int c, d;
    char *dh, *out;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                               "Keep-Alive: timeout=9\r\nConnection: keep-alive, X-Dev-Hop\r\nX-Dev-Hop: 1\r\n\r\nhello";
    if (!setup("get", CFG))
        return;
    c = client(40001);
    CHECK_INT(P->stats.accepted, 1, "get: accepted counted");
    fp_push_str(c, "GET /x?y=1 HTTP/1.1\r\nHost: app.example\r\nUser-Agent: t\r\nAccept: */*\r\n"
                   "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
                   "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\n"
                   "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
                   "Via: 1.0 fred\r\n\r\n");
    run();
    CHECK_INT(fp_connect_count(), 1, "get: one device connect");
    CHECK_INT(fp_connect_port(0), 9001, "get: connect to the pool's device");
    d = fp_connect_sock(0);
    dh = take(d);
    CHECK(starts(dh, "GET /x?y=1 HTTP/1.1\r\n"), "get: device gets the request line");
    CHECK(has(dh, "\r\nHost: app.example\r\n"), "get: Host passed");
    CHECK(has(dh, "\r\nUser-Agent: t\r\n") && has(dh, "\r\nAccept: */*\r\n"), "get: end-to-end fields passed");
    CHECK(!has(dh, "X-Hop"), "get: field named by Connection removed");
    CHECK(!has(dh, "Keep-Alive:") && !has(dh, "Proxy-Connection") && !has(dh, "\r\nTE:") &&
              !has(dh, "Trailer:"),
          "get: hop-by-hop fields removed");
    CHECK(has(dh, "\r\nX-Forwarded-For: 1.2.3.4, 10.0.0.7\r\n"), "get: X-Forwarded-For appended");
    CHECK_INT(count(dh, "X-Forwarded-Proto"), 1, "get: one X-Forwarded-Proto");
    CHECK(has(dh, "\r\nX-Forwarded-Proto: http\r\n"), "get: X-Forwarded-Proto: http (client's replaced)");
    CHECK_INT(count(dh, "X-Forwarded-Host"), 1, "get: one X-Forwarded-Host");
    CHECK(has(dh, "\r\nX-Forwarded-Host: app.example\r\n"), "get: X-Forwarded-Host replaced");
    CHECK(has(dh, "\r\nVia: 1.0 fred, 1.1 rproxy\r\n"), "get: Via appended");
    CHECK(ends(dh, "\r\n\r\n"), "get: head ends with an empty line (no body)");
    CHECK(!has(dh, "Content-Length") && !has(dh, "Transfer-Encoding"), "get: no framing invented");

    out = reply(d, c, resp);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n"), "get: client gets the status line");
    CHECK(has(out, "\r\nContent-Type: text/plain\r\n") && has(out, "\r\nContent-Length: 5\r\n"),
          "get: response fields passed");
    CHECK(has(out, "\r\nVia: 1.1 rproxy\r\n"), "get: Via added to the response");
    CHECK(!has(out, "Keep-Alive") && !has(out, "X-Dev-Hop"), "get: response hop-by-hop removed");
    CHECK(!has(out, "Connection: close"), "get: keep-alive response (no Connection: close)");
    CHECK(ends(out, "\r\n\r\nhello"), "get: body");
    CHECK(!closing(c), "get: client connection stays open");
    CHECK(!fp_closed(d), "get: device connection kept for reuse");

    CHECK_INT(nacc, 1, "get: one access record");
    CHECK_INT(acc[0].status, 200, "get: access status");
    CHECK_STR(acc[0].method, "GET", "get: access method");
    CHECK_STR(acc[0].target, "/x?y=1", "get: access target");
    CHECK_INT(acc[0].dev_port, 9001, "get: access device");
    CHECK_INT(acc[0].bytes, strlen(out), "get: access bytes = bytes sent to the client");
    CHECK_INT(P->stats.requests, 1, "get: stats.requests");
    CHECK_INT(P->stats.responses[2], 1, "get: stats.responses[2xx]");
    CHECK_INT(P->stats.device_connects, 1, "get: stats.device_connects");
    CHECK_INT(P->stats.bytes_out, strlen(out), "get: stats.bytes_out");
    CHECK(P->stats.bytes_in > 100, "get: stats.bytes_in counted");
    teardown();
}

/* Variants of the forwarded request line and Host handling. */
static void
test_forward_variants(void)
{
    static const struct {
        const char *name, *req, *line, *host;
    } cases[] = {
        {"absolute-form", "GET http://app.example/abs?q=1 HTTP/1.1\r\nHost: app.example\r\n\r\n", "GET /abs?q=1 HTTP/1.1\r\n", "Host: app.example\r\n"},
        {"absolute-form empty path", "GET http://app.example HTTP/1.1\r\nHost: app.example\r\n\r\n", "GET / HTTP/1.1\r\n", "Host: app.example\r\n"},
        {"absolute-form query only", "GET http://app.example?q HTTP/1.1\r\nHost: app.example\r\n\r\n", "GET /?q HTTP/1.1\r\n", "Host: app.example\r\n"},
        {"host case and port ignored by route", "GET /p HTTP/1.1\r\nHost: APP.Example:8080\r\n\r\n", "GET /p HTTP/1.1\r\n", "Host: APP.Example:8080\r\n"},
        {"HTTP/1.0 request forwarded as 1.1", "GET /old HTTP/1.0\r\nHost: app.example\r\n\r\n", "GET /old HTTP/1.1\r\n", "Host: app.example\r\n"},
        {"empty lines before request", "\r\n\r\nGET /e HTTP/1.1\r\nHost: app.example\r\n\r\n", "GET /e HTTP/1.1\r\n", "Host: app.example\r\n"},
        {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: app.example\r\n\r\n", "OPTIONS * HTTP/1.1\r\n", "Host: app.example\r\n"},
    };
    size_t i;
    if (!setup("forward", CFG))
        return;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int c = client(41000 + (unsigned)i), d;
        char *dh;
        fp_push_str(c, cases[i].req);
        run();
        d = fp_busy_device();
        if (!CHECK(d >= 0, "forward: %s: reaches the device", cases[i].name)) {
            tap_diag("client got: %.200s", take(c));
            continue;
        }
        dh = take(d);
        CHECK(starts(dh, cases[i].line), "forward: %s: request line", cases[i].name);
        CHECK(has(dh, cases[i].host), "forward: %s: Host", cases[i].name);
        fp_push_str(d, RESP_OK);
        run();
        take(c);
    }
    teardown();
}

/* IPv6 client address in X-Forwarded-For, in the shortest form. */
static void
test_ipv6_client(void)
{
    int c, d;
    if (!setup("ipv6 client", CFG))
        return;
    c = fp_client_connect("::1", 40001);
    run();
    fp_push_str(c, REQ("/six"));
    run();
    d = fp_busy_device();
    if (CHECK(d >= 0, "ipv6 client: forwarded"))
        CHECK(has(take(d), "\r\nX-Forwarded-For: ::1\r\n"), "ipv6 client: X-Forwarded-For: ::1");
    teardown();
}

static const char CFG_ROUTES[] = "listen 8080\n"
                                 "pool a\n"
                                 "pool b\n"
                                 "device a 127.0.0.1:9001 max_fails=0\n"
                                 "device b 127.0.0.1:9002 max_fails=0\n"
                                 "route host=*.cams.example pool=b\n"
                                 "route path=/api pool=b\n"
                                 "route host=app.example pool=a\n" TIMEOUTS;

static void
test_routing(void)
{
    static const struct {
        const char *host, *path;
        int port; /* 0: 404 */
    } cases[] = {
        {"x.cams.example", "/", 9002},
        {"X.CAMS.Example:8080", "/", 9002},
        {"a.b.cams.example", "/", 9002},
        {"cams.example", "/", 0},
        {"app.example", "/api/v1", 9002},
        {"other.example", "/api", 9002},
        {"app.example", "/ap", 9001},
        {"app.example", "/", 9001},
        {"other.example", "/", 0},
    };
    size_t i;
    if (!setup("routing", CFG_ROUTES))
        return;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int c = client(44000 + (unsigned)i), d, before = fp_connect_count();
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", cases[i].path, cases[i].host);
        fp_push_str(c, req);
        run();
        if (cases[i].port == 0) {
            CHECK(starts(take(c), "HTTP/1.1 404 "), "routing: %s %s -> 404", cases[i].host, cases[i].path);
            continue;
        }
        d = fp_busy_device();
        CHECK(d >= 0 && fp_sock_addr(d)->port == cases[i].port, "routing: %s %s -> %d", cases[i].host, cases[i].path,
              cases[i].port);
        if (d >= 0) {
            take(d);
            fp_push_str(d, RESP_OK);
            run();
        }
        (void)before;
    }
    teardown();
}

static void
test_balancing(void)
{
    int i, n9001 = 0, n9002 = 0, seq[8];
    if (!setup("wrr", "listen 8080\npool a\ndevice a 127.0.0.1:9001 weight=3\ndevice a 127.0.0.1:9002 weight=1\n"
                      "route pool=a\n" TIMEOUTS))
        return;
    for (i = 0; i < 8; i++) {
        seq[i] = one_request(45000 + (unsigned)i, "/w");
        n9001 += seq[i] == 9001;
        n9002 += seq[i] == 9002;
    }
    CHECK(n9001 == 6 && n9002 == 2, "wrr: weights 3:1 over 8 requests -> 6:2 (got %d:%d)", n9001, n9002);
    /* smooth WRR (nginx): 3:1 gives a a b a, ties to the first device */
    CHECK(seq[0] == 9001 && seq[1] == 9001 && seq[2] == 9002 && seq[3] == 9001 && seq[6] == 9002,
          "wrr: smooth order a a b a (got %d %d %d %d)", seq[0], seq[1], seq[2], seq[3]);
    teardown();

    if (!setup("backup", "listen 8080\npool a\ndevice a 127.0.0.1:9001 max_fails=1 fail_timeout=5\n"
                         "device a 127.0.0.1:9002 backup\nroute pool=a\n" TIMEOUTS))
        return;
    CHECK_INT(one_request(45100, "/b"), 9001, "backup: primary used while up");
    fp_connect_policy(9001, FP_CONNECT_REFUSE);
    CHECK_INT(one_request(45101, "/b"), 9002, "backup: used when the primary fails");
    CHECK_INT(one_request(45102, "/b"), 9002, "backup: used while the primary is down");
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(get_proxied),
    TAP_TEST(forward_variants),
    TAP_TEST(ipv6_client),
    TAP_TEST(routing),
    TAP_TEST(balancing),
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

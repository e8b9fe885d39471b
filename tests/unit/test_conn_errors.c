/*
 * test_conn_errors.c -- failures on either side and what the client gets:
 * refused device connects (502, failover to another device), passive health
 * (a failed device skipped for fail_timeout), requests refused before any
 * device is involved (400, 404, 405, 414, 417, 431, 501, 505 with
 * Connection: close and a lingering close), bad device responses (502), no
 * usable device (503), a client's reset, accept and listen errors.  More
 * clients than RP_MAX_CONNS is left to the integration test (a SKIP line).
 *
 * SPDX-License-Identifier: MIT
 *
 * The harness (setup, run, take, teardown ...) is conn_scenario.h.
 */
#include "conn_scenario.h"

static const char CFG2[] = "listen 8080\n"
                           "pool a retries=2\n"
                           "device a 127.0.0.1:9001 max_fails=1 fail_timeout=3\n"
                           "device a 127.0.0.1:9002 max_fails=1 fail_timeout=3\n"
                           "route host=app.example pool=a\n" TIMEOUTS;


static void
test_connect_refused(void)
{
    static const int modes[] = {FP_CONNECT_REFUSE, FP_CONNECT_FAIL_NOW};
    static const char *const mode_names[] = {"refused later", "refused at once"};
    int m;
    for (m = 0; m < 2; m++) {
        int c;
        char *out, name[64];
        snprintf(name, sizeof name, "refused (%s)", mode_names[m]);
        if (!setup(name, CFG))
            return;
        fp_connect_policy(9001, modes[m]);
        c = client(40001);
        fp_push_str(c, REQ("/"));
        run();
        out = take(c);
        CHECK(starts(out, "HTTP/1.1 502 "), "%s: 502 (got %.12s)", name, out);
        CHECK(closing(c), "%s: client connection closing", name);
        CHECK(P->stats.device_errors >= 1, "%s: stats.device_errors", name);
        CHECK(fp_connect_count() <= 2, "%s: bounded attempts (%d)", name, fp_connect_count());
        CHECK(nacc == 1 && acc[0].status == 502, "%s: access record 502", name);
        fp_eof(c);
        run();
        CHECK_INT(fp_open_count(), 1, "%s: only the listener stays open after the client goes", name);
        teardown();

        /* two devices: the refused one is skipped, the other answers */
        snprintf(name, sizeof name, "refused failover (%s)", mode_names[m]);
        if (!setup(name, CFG2))
            return;
        fp_connect_policy(9001, modes[m]);
        c = client(40001);
        fp_push_str(c, REQ("/"));
        run();
        CHECK_INT(fp_connect_count(), 2, "%s: two connects", name);
        CHECK_INT(fp_connect_port(0), 9001, "%s: first try 9001", name);
        CHECK_INT(fp_connect_port(1), 9002, "%s: then 9002", name);
        if (fp_connect_sock(1) >= 0) {
            take(fp_connect_sock(1));
            fp_push_str(fp_connect_sock(1), RESP_OK);
            run();
        }
        out = take(c);
        CHECK(starts(out, "HTTP/1.1 200 OK\r\n"), "%s: client gets 200 from the other device", name);
        CHECK_INT(P->stats.device_errors, 1, "%s: one device error", name);
        CHECK(nacc == 1 && acc[0].dev_port == 9002, "%s: access record names 9002", name);
        teardown();
    }
}

/* Passive health: a device that failed is skipped for fail_timeout. */
static void
test_health(void)
{
    int i, to9001 = 0;
    if (!setup("health", CFG2))
        return;
    fp_connect_policy(9001, FP_CONNECT_REFUSE);
    CHECK_INT(one_request(40001, "/a"), 9002, "health: failover to 9002");
    fp_connect_policy(9001, FP_CONNECT_OK);
    for (i = 0; i < 3; i++)
        CHECK_INT(one_request(40002 + (unsigned)i, "/b"), 9002, "health: 9001 skipped while down (%d)", i);
    CHECK_INT(fp_connect_count(), 5, "health: no connect to the down device");
    advance(3001);
    for (i = 0; i < 4; i++)
        to9001 += one_request(40010 + (unsigned)i, "/c") == 9001;
    CHECK(to9001 >= 1, "health: 9001 used again after fail_timeout (%d of 4)", to9001);
    CHECK_INT(P->cfg.devices[0].failures, 1, "health: device failures counted");
    teardown();
}

/* Requests refused before any device is involved. */
static const struct {
    const char *name, *req;
    int status;
} bad_cases[] = {
    {"CL + TE", "POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"CL + TE smuggling", "POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.example\r\n\r\n", 400},
    {"duplicate CL", "POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400},
    {"CL with sign", "POST / HTTP/1.1\r\nHost: app.example\r\nContent-Length: +3\r\n\r\nabc", 400},
    {"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
    {"TE chunked, chunked", "POST / HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: app.example\r\nX-A: b\r\n c\r\n\r\n", 400},
    {"space before colon", "GET / HTTP/1.1\r\nHost : app.example\r\n\r\n", 400},
    {"bare LF", "GET / HTTP/1.1\nHost: app.example\n\n", 400},
    {"bare CR", "GET / HTTP/1.1\r\nHost: app.example\rX: y\r\n\r\n", 400},
    {"NUL", "GET / HTTP/1.1\r\nHost: app.ex\0ample\r\n\r\n", 400},
    {"no Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: app.example\r\nHost: app.example\r\n\r\n", 400},
    {"bad method", "G@T / HTTP/1.1\r\nHost: app.example\r\n\r\n", 400},
    {"garbage", "hello there\r\n\r\n", 400},
    {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: app.example\r\n\r\n", 505},
    {"Expect other", "GET / HTTP/1.1\r\nHost: app.example\r\nExpect: fancy\r\n\r\n", 417},
    {"CONNECT", "CONNECT app.example:443 HTTP/1.1\r\nHost: app.example:443\r\n\r\n", 405},
    {"no route", "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n", 404},
};
#define N_BAD_CASES (sizeof bad_cases / sizeof bad_cases[0])

/* Bad request i: bad_cases[i], then three built ones (a target over
 * RP_MAX_URI, a head over RP_MAX_HEAD, a request line over RP_MAX_HEAD that
 * never ends).  Returns its bytes (*len of them), *name and the *want'ed
 * status. */
static const char *
bad_request(size_t i, size_t *len, const char **name, int *want)
{
    static char big[16384];
    if (i < N_BAD_CASES) {
        *name = bad_cases[i].name;
        *len = strlen(bad_cases[i].req);
        if (strcmp(*name, "NUL") == 0) /* the part after the NUL too */
            *len += 1 + strlen(bad_cases[i].req + *len + 1);
        *want = bad_cases[i].status;
        return bad_cases[i].req;
    }
    if (i == N_BAD_CASES) {
        *name = "target over RP_MAX_URI";
        memcpy(big, "GET /", 5);
        memset(big + 5, 'u', RP_MAX_URI + 10);
        *len = 5 + RP_MAX_URI + 10;
        *len += (size_t)sprintf(big + *len, " HTTP/1.1\r\nHost: app.example\r\n\r\n");
        *want = 414;
    } else if (i == N_BAD_CASES + 1) {
        *name = "head over RP_MAX_HEAD";
        *len = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: app.example\r\nX-Big: ");
        memset(big + *len, 'b', RP_MAX_HEAD);
        *len += RP_MAX_HEAD;
        *len += (size_t)sprintf(big + *len, "\r\n\r\n");
        *want = 431;
    } else {
        *name = "request line over RP_MAX_HEAD, no end";
        memcpy(big, "GET /", 5);
        memset(big + 5, 'v', RP_MAX_HEAD + 100);
        *len = 5 + RP_MAX_HEAD + 100;
        *want = 414;
    }
    return big;
}

/* Bad request i from a new client: its status with Connection: close and
 * a FIN, nothing sent to a device, counted; closed after the client's FIN. */
static void
bad_request_refused(size_t i)
{
    int c = client(42000 + (unsigned)i), want, bad_before;
    const char *name;
    char *out, line[32];
    size_t len;
    const char *req = bad_request(i, &len, &name, &want);
    bad_before = (int)P->stats.bad_requests;
    fp_push(c, req, len);
    run();
    out = take(c);
    snprintf(line, sizeof line, "HTTP/1.1 %d ", want);
    CHECK(starts(out, line), "bad: %s -> %d (got %.12s)", name, want, out);
    CHECK(has(out, "\r\nConnection: close\r\n"), "bad: %s: Connection: close", name);
    CHECK(fp_shut(c), "bad: %s: FIN after the reply", name);
    CHECK_INT(fp_connect_count(), 0, "bad: %s: nothing reaches a device", name);
    if (want != 404)
        CHECK_INT(P->stats.bad_requests, bad_before + 1, "bad: %s: stats.bad_requests", name);
    fp_eof(c);
    run();
    CHECK(fp_closed(c), "bad: %s: closed after the client's FIN", name);
}

/* A lingering close without the client's FIN ends after the linger time. */
static void
bad_linger(void)
{
    int c = client(42999);
    fp_push_str(c, "GET / HTTP/1.1\r\n\r\n");
    run();
    CHECK(fp_shut(c) && !fp_closed(c), "bad: linger: half-closed, draining");
    fp_push_str(c, "more junk from the client");
    advance(RP_TIMEOUT_LINGER_MS + 1);
    CHECK(fp_closed(c), "bad: linger: closed after RP_TIMEOUT_LINGER_MS");
}

/* A bad second request on a keep-alive connection gets its reply too. */
static void
bad_second_request(void)
{
    int c;
    char *out;
    if (!setup("bad keep-alive", CFG))
        return;
    c = client(42998);
    get_ok(c, "/fine");
    fp_push_str(c, bad_cases[0].req);
    run();
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 400 "), "bad: CL + TE as the 2nd request of a connection -> 400 (got \"%.12s\")", out);
    CHECK(fp_shut(c), "bad: 2nd request: FIN");
    CHECK(nacc == 2 && acc[1].status == 400, "bad: 2nd request: access record 400 (got %d)", nacc == 2 ? acc[1].status : -1);
    teardown();
}

static void
test_bad_requests(void)
{
    size_t i;
    if (!setup("bad", CFG))
        return;
    for (i = 0; i < N_BAD_CASES + 3; i++)
        bad_request_refused(i);
    bad_linger();
    teardown();
    bad_second_request();
}

static void
test_bad_responses(void)
{
    static const struct {
        const char *name, *resp;
    } cases[] = {
        {"garbage status line", "HTTP/1.1 OK\r\n\r\n"},
        {"CL + TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"},
        {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
        {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"},
    };
    size_t i;
    if (!setup("bad responses", CFG))
        return;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int c = client(43000 + (unsigned)i), d;
        d = forward(c, REQ("/"));
        fp_push_str(d, cases[i].resp);
        run();
        CHECK(starts(take(c), "HTTP/1.1 502 "), "bad response: %s -> 502", cases[i].name);
        CHECK(fp_closed(d), "bad response: %s: device connection closed", cases[i].name);
    }
    /* device closes before any response byte (fresh connection): 502 */
    {
        int c = client(43100), d;
        d = forward(c, REQ("/"));
        fp_eof(d);
        run();
        CHECK(starts(take(c), "HTTP/1.1 502 "), "bad response: closed before a head -> 502");
    }
    /* device resets */
    {
        int c = client(43101), d;
        d = forward(c, REQ("/"));
        fp_reset(d);
        run();
        CHECK(starts(take(c), "HTTP/1.1 502 "), "bad response: reset -> 502");
    }
    teardown();
}

static void
test_no_device(void)
{
    int c;
    if (!setup("no device", "listen 8080\npool a\ndevice a 127.0.0.1:9001 weight=0\nroute pool=a\n"))
        return;
    c = client(40001);
    fp_push_str(c, "GET / HTTP/1.1\r\nHost: any\r\n\r\n");
    run();
    CHECK(starts(take(c), "HTTP/1.1 503 "), "no device: every weight 0 -> 503");
    CHECK_INT(fp_connect_count(), 0, "no device: no connect");
    teardown();
}

static void
test_client_reset(void)
{
    int c, d;
    if (!setup("client reset", CFG))
        return;
    c = client(40001);
    d = forward(c, REQ("/"));
    fp_reset(c);
    run();
    CHECK(fp_closed(c), "client reset: client socket closed");
    CHECK(fp_closed(d), "client reset: mid-exchange device connection closed too");
    CHECK_INT(rp_active(P), 0, "client reset: no active clients");
    teardown();
}

/* A miss waiting for another request's fill of the same URL (CS_CWAIT)
 * whose client resets is freed at once, not when lock_timeout ends; the
 * filling request is not disturbed. */
static void
test_collapsed_reset(void)
{
    static const char cfg[] = "listen 8080\npool a\ndevice a 127.0.0.1:9001\n"
                              "route host=app.example pool=a cache=on\n"
                              "cache lock_timeout=5000\n" TIMEOUTS;
    int a, b, d;
    if (!setup("collapsed reset", cfg))
        return;
    a = client(40001);
    d = forward(a, REQ("/cam.jpg"));
    b = client(40002);
    fp_push_str(b, REQ("/cam.jpg"));
    run();
    CHECK_INT(fp_connect_count(), 1, "collapsed reset: the second miss waits, no second device connection");
    CHECK_INT(rp_active(P), 2, "collapsed reset: both clients active");
    fp_reset(b);
    run();
    CHECK(fp_closed(b), "collapsed reset: the waiting client's socket is closed at once");
    CHECK_INT(rp_active(P), 1, "collapsed reset: only the filling client is left");
    fp_push_str(d, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok");
    run();
    CHECK(has(take(a), "\r\n\r\nok"), "collapsed reset: the filling request gets its response");
    teardown();
}

static void
test_accept_errors(void)
{
    int c;
    if (!setup("accept errors", CFG))
        return;
    fp_accept_fail(1);
    c = fp_client_connect("10.0.0.7", 40001);
    run();
    CHECK_INT(P->stats.accept_errors, 1, "accept errors: counted");
    CHECK_INT(P->stats.accepted, 0, "accept errors: not accepted yet");
    advance(200);
    CHECK_INT(P->stats.accepted, 1, "accept errors: accepted after the pause");
    get_ok(c, "/");
    teardown();

    {
        rp_proxy *p2;
        rp_cfg_error e;
        fp_reset_all();
        p2 = fp_proxy_new();
        rp_init(p2);
        rp_config_parse(p2, CFG, strlen(CFG), &e);
        fp_listen_fail_next();
        CHECK_INT(rp_start(p2), RP_EADDR, "rp_start: listen failure -> RP_EADDR");
        fp_proxy_free(p2);
    }
}

/* More clients than RP_MAX_CONNS: not in the unit build (a SKIP line). */
static void
test_exhaustion(void)
{
    tap_skip("exhaustion: more clients than RP_MAX_CONNS",
             "unit build uses RP_MAX_CONNS=1024; covered by the integration test");
}

static const tap_test tests[] = {
    TAP_TEST(connect_refused),
    TAP_TEST(health),
    TAP_TEST(bad_requests),
    TAP_TEST(bad_responses),
    TAP_TEST(no_device),
    TAP_TEST(client_reset),
    TAP_TEST(collapsed_reset),
    TAP_TEST(accept_errors),
    TAP_TEST(exhaustion),
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

/*
 * test_guard.c -- the front door ([22]) on the fake port and fake clock:
 * client_limit's token bucket to the millisecond and its connection count,
 * the client table when it is full, route allow=, Basic auth's credential
 * cache and failed-login lock, the PROXY header replacing the peer address.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conn_scenario.h"

#define USERS "alice:$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.\n" /* secret */
#define AUTH_OK "Authorization: Basic YWxpY2U6c2VjcmV0\r\n"                    /* alice:secret */
#define AUTH_BAD "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n"                   /* alice:wrong */
#define GREQ(path, extra) "GET " path " HTTP/1.1\r\nHost: app.example\r\n" extra "\r\n"

/* setup() with the users file as a blob (setup's fp_reset_all drops blobs). */
static int
setup_users(const char *name, const char *cfg)
{
    rp_cfg_error e;
    test_name = name;
    run_stuck = 0;
    nacc = 0;
    fp_reset_all();
    fp_set_now(T0);
    fp_blob_add("staff.users", USERS, sizeof(USERS) - 1);
    P = fp_proxy_new();
    if (rp_init(P) != RP_OK || rp_config_parse(P, cfg, strlen(cfg), &e) != RP_OK) {
        CHECK(0, "%s: config parses (line %d: %s)", name, e.line, e.msg);
        return 0;
    }
    P->access_fn = on_access;
    return CHECK_INT(rp_start(P), RP_OK, "%s: rp_start", name);
}

static int
client_from(const char *ip, unsigned port)
{
    int c = fp_client_connect(ip, (uint16_t)port);
    run();
    return c;
}

/* c asks for path (extra header lines); the answer rproxy gave itself, or
 * "" when the request reached a device (answered 200 "ok" then). */
static char *
ask(int c, const char *req, int *reached)
{
    int d;
    fp_push_str(c, req);
    run();
    d = fp_busy_device();
    *reached = d >= 0;
    if (d >= 0) {
        take(d);
        return reply(d, c, RESP_OK);
    }
    return take(c);
}

static void
test_rate(void)
{
    const char *cfg = "listen 8080\npool a\ndevice a 127.0.0.1:9001\nroute pool=a\n"
                      "client_limit rate=2/s burst=3\n" TIMEOUTS;
    int c, c2, i, reached;
    char *out;
    if (!setup("rate", cfg))
        return;
    c = client(40001);
    for (i = 0; i < 3; i++) {
        out = ask(c, REQ("/"), &reached);
        CHECK(reached && starts(out, "HTTP/1.1 200"), "rate: request %d of the burst of 3 passes", i + 1);
    }
    out = ask(c, REQ("/"), &reached);
    CHECK(!reached && starts(out, "HTTP/1.1 429 Too Many Requests\r\n"), "rate: the 4th at once is 429 (%.20s)", out);
    CHECK(has(out, "\r\nRetry-After: 1\r\n"), "rate: Retry-After: 1 (a token is back in 500 ms)");
    CHECK(!has(out, "Connection: close"), "rate: the 429 keeps the connection");
    CHECK(!closing(c), "rate: connection open after the 429");
    CHECK_INT((int)P->stats.limit_rate, 1, "rate: stats.limit_rate");
    /* another address has its own bucket */
    c2 = client_from("10.0.0.8", 40002);
    out = ask(c2, REQ("/"), &reached);
    CHECK(reached, "rate: another address is not limited by the first one's bucket");
    fp_advance(499); /* 998 thousandths of a token */
    out = ask(c, REQ("/"), &reached);
    CHECK(!reached && starts(out, "HTTP/1.1 429"), "rate: 499 ms later still 429");
    fp_advance(1); /* 1000: one whole token */
    out = ask(c, REQ("/"), &reached);
    CHECK(reached && starts(out, "HTTP/1.1 200"), "rate: 500 ms after the burst a request passes");
    out = ask(c, REQ("/"), &reached);
    CHECK(!reached, "rate: and the next is refused again");
    fp_advance(60000); /* refills to burst, not beyond */
    for (i = 0; i < 4; i++)
        ask(c, REQ("/"), &reached);
    CHECK(!reached, "rate: a long pause refills the bucket to burst (3), not more");
    teardown();

    if (!setup("rate per minute", "listen 8080\npool a\ndevice a 127.0.0.1:9001\nroute pool=a\n"
                                  "client_limit rate=1/m\n" TIMEOUTS))
        return;
    c = client(40001);
    ask(c, REQ("/"), &reached);
    CHECK(reached, "rate 1/m: the first passes");
    out = ask(c, REQ("/"), &reached);
    CHECK(!reached && has(out, "\r\nRetry-After: 60\r\n"), "rate 1/m: the second gets Retry-After: 60");
    fp_advance(30000);
    out = ask(c, REQ("/"), &reached);
    CHECK(!reached && has(out, "\r\nRetry-After: 30\r\n"), "rate 1/m: 30 s later Retry-After: 30");
    teardown();
}

static void
test_conns(void)
{
    const char *cfg = "listen 8080\npool a\ndevice a 127.0.0.1:9001\nroute pool=a\n"
                      "client_limit conns=2\n" TIMEOUTS;
    int a, b, c, d, e, reached;
    char *out;
    if (!setup("conns", cfg))
        return;
    a = client(40001);
    b = client(40002);
    c = client(40003);
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 429 Too Many Requests\r\n") && has(out, "Connection: close"),
          "conns: the third connection from one address gets 429 (%.20s)", out);
    CHECK(fp_closed(c), "conns: and is closed");
    CHECK(!closing(a) && !closing(b), "conns: the first two stay");
    CHECK_INT((int)P->stats.limit_conns, 1, "conns: stats.limit_conns");
    CHECK(fp_log_seen("client_limit conns=2: 10.0.0.7 has 2 open: refused"), "conns: log names the rule");
    d = client_from("10.0.0.8", 40004);
    out = ask(d, REQ("/"), &reached);
    CHECK(reached, "conns: another address is served");
    fp_eof(a);
    run();
    e = client(40005);
    out = ask(e, REQ("/"), &reached);
    CHECK(reached, "conns: after one closes, a new one from the address is served");
    teardown();
}

/* More addresses with open connections than the table holds: the rest go
 * untracked (counted), never refused for it. */
static void
test_table_full(void)
{
    const char *cfg = "listen 8080\npool a\ndevice a 127.0.0.1:9001\nroute pool=a\n"
                      "client_limit conns=1\n" TIMEOUTS;
    int i, c, reached;
    char ip[32];
    if (!setup("table full", cfg))
        return;
    for (i = 0; i < RP_CLIENT_TABLE; i++) {
        snprintf(ip, sizeof ip, "10.1.%d.%d", i / 200, i % 200 + 1);
        client_from(ip, 40000 + (unsigned)i);
    }
    CHECK_INT((int)P->stats.client_table_full, 0, "table full: %d addresses fit", RP_CLIENT_TABLE);
    c = client_from("10.9.9.9", 41000);
    ask(c, REQ("/"), &reached);
    CHECK(reached, "table full: one more address is served");
    CHECK_INT((int)P->stats.client_table_full, 1, "table full: counted once");
    c = client_from("10.9.9.9", 41001);
    ask(c, REQ("/"), &reached);
    CHECK(reached, "table full: an untracked address is not limited (its 2nd connection served)");
    teardown();
}

static void
test_acl(void)
{
    const char *cfg = "listen 8080\npool a\ndevice a 127.0.0.1:9001\n"
                      "route path=/lan/ pool=a allow=10.0.0.0/24 allow=fd00::/8\n"
                      "route path=/one/ pool=a allow=10.0.0.8\n"
                      "route pool=a\n" TIMEOUTS;
    int c, reached;
    char *out;
    if (!setup("acl", cfg))
        return;
    c = client_from("10.0.1.7", 40001);
    out = ask(c, REQ("/lan/x"), &reached);
    CHECK(!reached && starts(out, "HTTP/1.1 403 Forbidden\r\n"), "acl: 10.0.1.7 outside 10.0.0.0/24: 403");
    CHECK(!closing(c), "acl: the 403 keeps the connection");
    out = ask(c, REQ("/other"), &reached);
    CHECK(reached, "acl: the same client on a route without allow= is served");
    c = client_from("10.0.0.200", 40002);
    ask(c, REQ("/lan/x"), &reached);
    CHECK(reached, "acl: 10.0.0.200 inside /24 is served");
    ask(c, REQ("/one/x"), &reached);
    CHECK(!reached, "acl: a bare address is /32 (10.0.0.200 is not 10.0.0.8)");
    c = client_from("10.0.0.8", 40003);
    ask(c, REQ("/one/x"), &reached);
    CHECK(reached, "acl: 10.0.0.8 passes allow=10.0.0.8");
    CHECK_INT((int)P->stats.acl_denied, 2, "acl: stats.acl_denied");
    teardown();
}

static void
test_auth(void)
{
    const char *cfg = "listen 8080\npool a\ndevice a 127.0.0.1:9001\nusers staff staff.users\n"
                      "route path=/cam/ pool=a auth=staff realm=\"Cam 1\"\n"
                      "route pool=a\n" TIMEOUTS;
    int c, c2, i, reached;
    char *out;
    if (!setup_users("auth", cfg))
        return;
    c = client(40001);
    out = ask(c, REQ("/cam/"), &reached);
    CHECK(!reached && starts(out, "HTTP/1.1 401 Unauthorized\r\n") &&
              has(out, "\r\nWWW-Authenticate: Basic realm=\"Cam 1\", charset=\"UTF-8\"\r\n"),
          "auth: no credentials: 401 with the challenge");
    CHECK(!closing(c), "auth: the 401 keeps the connection");
    out = ask(c, GREQ("/cam/", AUTH_OK), &reached);
    CHECK(reached && starts(out, "HTTP/1.1 200"), "auth: right credentials reach the device");
    CHECK_INT((int)P->stats.auth_cache_hits, 0, "auth: the first check computed the hash");
    out = ask(c, GREQ("/cam/", AUTH_OK), &reached);
    CHECK(reached, "auth: again");
    CHECK_INT((int)P->stats.auth_cache_hits, 1, "auth: the second came from the credential cache");
    fp_advance(RP_AUTH_CACHE_MS + 1);
    ask(c, GREQ("/cam/", AUTH_OK), &reached);
    CHECK(reached && P->stats.auth_cache_hits == 1, "auth: after RP_AUTH_CACHE_MS the hash is computed again");
    /* 9 failures, then the window passes: no lock */
    c2 = client_from("10.0.0.9", 40002);
    for (i = 0; i < RP_AUTH_FAIL_MAX - 1; i++)
        ask(c2, GREQ("/cam/", AUTH_BAD), &reached);
    fp_advance(RP_AUTH_FAIL_WINDOW_MS + 1);
    out = ask(c2, GREQ("/cam/", AUTH_BAD), &reached);
    CHECK(starts(out, "HTTP/1.1 401"), "auth: failures spread over more than the window: 401, no lock");
    /* RP_AUTH_FAIL_MAX within the window: locked */
    for (i = 1; i < RP_AUTH_FAIL_MAX; i++)
        out = ask(c2, GREQ("/cam/", AUTH_BAD), &reached);
    CHECK(starts(out, "HTTP/1.1 401"), "auth: the %dth failure is still a 401", RP_AUTH_FAIL_MAX);
    out = ask(c2, GREQ("/cam/", AUTH_OK), &reached);
    CHECK(!reached && starts(out, "HTTP/1.1 429") && has(out, "\r\nRetry-After: 60\r\n"),
          "auth: then even right credentials get 429, Retry-After: 60 (%.20s)", out);
    CHECK(fp_log_seen("failed logins from 10.0.0.9"), "auth: the lock is logged");
    c = client(40010); /* the first one idled out */
    ask(c, GREQ("/cam/", AUTH_OK), &reached);
    CHECK(reached, "auth: another address is not locked");
    fp_advance(RP_AUTH_LOCK_MS - 1000);
    out = ask(c2, GREQ("/cam/", AUTH_OK), &reached);
    CHECK(!reached && has(out, "\r\nRetry-After: 1\r\n"), "auth: 1 s before the end still locked");
    fp_advance(1000);
    ask(c2, GREQ("/cam/", AUTH_OK), &reached);
    CHECK(reached, "auth: after RP_AUTH_LOCK_MS the address is let in again");
    CHECK_INT((int)P->stats.auth_locked, 2, "auth: stats.auth_locked");
    teardown();
}

/* A PROXY v1 header's address is the client's: allow= and X-Forwarded-For. */
static void
test_proxy_header(void)
{
    const char *cfg = "listen 8080 proxy_protocol proxy_from=10.0.0.7\npool a\ndevice a 127.0.0.1:9001\n"
                      "route pool=a allow=192.0.2.0/24\n" TIMEOUTS;
    static char got[4096];
    int c, d;
    if (!setup("proxy header", cfg))
        return;
    c = client(40001);
    fp_push_str(c, "PROXY TCP4 192.0.2.1 10.0.0.1 5555 8080\r\n" REQ("/x"));
    run();
    d = fp_busy_device();
    if (CHECK(d >= 0, "proxy header: the request reached the device")) {
        fp_take(d, got, sizeof got - 1);
        CHECK(has(got, "X-Forwarded-For: 192.0.2.1\r\n"), "proxy header: X-Forwarded-For is the header's source");
        reply(d, c, RESP_OK);
    }
    c = client_from("10.0.0.8", 40002);
    fp_push_str(c, "PROXY TCP4 192.0.2.1 10.0.0.1 5555 8080\r\n" REQ("/x"));
    run();
    CHECK(fp_closed(c) && fp_busy_device() < 0, "proxy header: a peer outside proxy_from= is closed");
    c = client(40003);
    fp_push_str(c, REQ("/x"));
    run();
    CHECK(fp_closed(c), "proxy header: a request without the header is closed");
    CHECK_INT((int)P->stats.proxy_refused, 2, "proxy header: stats.proxy_refused");
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(rate), TAP_TEST(conns), TAP_TEST(table_full), TAP_TEST(acl), TAP_TEST(auth),
    TAP_TEST(proxy_header),
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

/*
 * test_conn.c -- the connection state machine driven through the fake port
 * (tests/fakeport.c) and the public API only: rp_init, rp_config_parse,
 * rp_start, rp_poll, rp_shutdown, p->stats and the access-log hook.
 *
 * SPDX-License-Identifier: MIT
 *
 * Each test builds a fresh proxy on a fixed fake clock, plays the client
 * and the device by pushing bytes into fake sockets, turns the event loop
 * until nothing moves (run()), and reads what rproxy sent.  Time moves only
 * when a test says so, so every timeout is checked just before and just
 * after it is due.
 *
 * Not covered here: more clients than RP_MAX_CONNS (the unit build uses the
 * default 1024 slots; the integration test covers exhaustion).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "fakeport.h"
#include "tap.h"

#define T0 1000000u /* fake clock at start (ms) */
#define BIG 300000  /* take buffers */

/* Timeouts in CFG; tests step around them. */
#define T_HEADER 1000
#define T_IDLE 5000
#define T_CONNECT 500
#define T_DEVICE 2000
#define T_DIDLE 10000
#define TIMEOUTS "timeout client_header=1000 client_idle=5000 connect=500 device=2000 device_idle=10000\n"

static const char CFG[] = "listen 8080\n"
                          "pool a retries=1\n"
                          "device a 127.0.0.1:9001 max_fails=0\n"
                          "route host=app.example pool=a\n" TIMEOUTS;

static const char CFG2[] = "listen 8080\n"
                           "pool a retries=2\n"
                           "device a 127.0.0.1:9001 max_fails=1 fail_timeout=3\n"
                           "device a 127.0.0.1:9002 max_fails=1 fail_timeout=3\n"
                           "route host=app.example pool=a\n" TIMEOUTS;

static const char CFG_NORETRY[] = "listen 8080\n"
                                  "pool a retries=0\n"
                                  "device a 127.0.0.1:9001 max_fails=0\n"
                                  "route host=app.example pool=a\n" TIMEOUTS;

#define REQ(path) "GET " path " HTTP/1.1\r\nHost: app.example\r\n\r\n"
#define RESP_OK "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static rp_proxy *P;
static const char *test_name;
static int run_stuck;

/* ==== access log ==== */

static struct {
    int status;
    char method[32], target[128];
    uint64_t bytes;
    unsigned dev_port; /* 0: no device */
    int err;
    uint32_t ms;
} acc[64];
static int nacc;

static void
on_access(void *ud, const rp_access *a)
{
    (void)ud;
    if (nacc < 64) {
        size_t m = a->method.n < 31 ? a->method.n : 31, t = a->target.n < 127 ? a->target.n : 127;
        acc[nacc].status = a->status;
        memcpy(acc[nacc].method, a->method.p, m);
        acc[nacc].method[m] = 0;
        memcpy(acc[nacc].target, a->target.p, t);
        acc[nacc].target[t] = 0;
        acc[nacc].bytes = a->bytes;
        acc[nacc].dev_port = a->device ? a->device->port : 0;
        acc[nacc].err = a->err;
        acc[nacc].ms = a->ms;
    }
    nacc++;
}

/* ==== harness ==== */

/* Turn the loop until two turns in a row handle nothing. */
static int
run(void)
{
    int i, quiet = 0;
    for (i = 0; i < 5000; i++) {
        int n = rp_poll(P, 0);
        if (n < 0) {
            tap_diag("%s: rp_poll returned %d", test_name, n);
            run_stuck++;
            return 0;
        }
        quiet = n ? 0 : quiet + 1;
        if (quiet >= 2)
            return 1;
    }
    tap_diag("%s: event loop still busy after 5000 turns (readiness never goes away)", test_name);
    run_stuck++;
    return 0;
}

static void
advance(uint64_t ms)
{
    fp_advance(ms);
    run();
}

static int
setup(const char *name, const char *cfg)
{
    rp_cfg_error e;
    test_name = name;
    run_stuck = 0;
    nacc = 0;
    fp_reset_all();
    fp_set_now(T0);
    P = fp_proxy_new();
    if (rp_init(P) != RP_OK || rp_config_parse(P, cfg, strlen(cfg), &e) != RP_OK) {
        CHECK(0, "%s: config parses (line %d: %s)", name, e.line, e.msg);
        return 0;
    }
    P->access_fn = on_access;
    if (!CHECK_INT(rp_start(P), RP_OK, "%s: rp_start", name))
        return 0;
    return 1;
}

static void
teardown(void)
{
    CHECK_INT(run_stuck, 0, "%s: event loop always went quiet", test_name);
    CHECK_INT(fp_misuse(), 0, "%s: no port calls on closed/unknown sockets", test_name);
    fp_proxy_free(P);
    P = NULL;
}

/* A client connected and accepted. */
static int
client(unsigned port)
{
    int c = fp_client_connect("10.0.0.7", (uint16_t)port);
    run();
    return c;
}

/* What rproxy sent on s, NUL-terminated (rotating static buffers). */
static char *
take(int s)
{
    static char bufs[4][BIG];
    static int k;
    char *b = bufs[k++ & 3];
    fp_take(s, b, BIG);
    return b;
}

static int
starts(const char *s, const char *pfx)
{
    return strncmp(s, pfx, strlen(pfx)) == 0;
}

static int
has(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

static int
count(const char *s, const char *needle)
{
    int n = 0;
    while ((s = strstr(s, needle)) != NULL)
        n++, s++;
    return n;
}

static int
ends(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && memcmp(s + a - b, sfx, b) == 0;
}

/* The connect socket that has request bytes waiting, newest first. */
static int
busy_device(void)
{
    int i;
    for (i = fp_connect_count() - 1; i >= 0; i--) {
        int d = fp_connect_sock(i);
        if (d >= 0 && fp_pending(d) > 0)
            return d;
    }
    return -1;
}

/* Client c asks for path; whichever device connection receives it answers
 * 200 "ok".  Returns that device socket (or -1). */
static int
get_ok(int c, const char *path)
{
    char req[256];
    char *out;
    int d;
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", path);
    fp_push_str(c, req);
    run();
    d = busy_device();
    if (!CHECK(d >= 0, "%s: GET %s reached a device", test_name, path))
        return -1;
    take(d);
    fp_push_str(d, RESP_OK);
    run();
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && ends(out, "\r\n\r\nok"), "%s: GET %s answered 200", test_name, path);
    return d;
}

/* One GET from a new client, answered with "Connection: close" (so no
 * device connection is pooled); returns the device port that served it. */
static int
one_request(unsigned port, const char *path)
{
    int c = client(port), d;
    char req[128];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", path);
    fp_push_str(c, req);
    run();
    d = busy_device();
    if (d < 0)
        return 0;
    take(d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    run();
    fp_eof(c);
    run();
    return fp_sock_addr(d)->port;
}

/* The client connection is being closed by rproxy (FIN sent or closed). */
static int
closing(int s)
{
    return fp_shut(s) || fp_closed(s);
}

/* ==== tests ==== */

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

    fp_push_str(d, resp);
    run();
    out = take(c);
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
        d = busy_device();
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
test_pipelined(void)
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
test_pipelined_burst(void)
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
        int d = busy_device();
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
    d = busy_device();
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
        d = busy_device();
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
    d = busy_device();
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
    fp_push_str(c, REQ("/x"));
    run();
    d = busy_device();
    take(d);
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
    fp_push_str(c, "GET /bye HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n");
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, RESP_OK);
    run();
    out = take(c);
    CHECK(has(out, "\r\nConnection: close\r\n") && ends(out, "ok"), "conn close: client asked: Connection: close in the response");
    CHECK(fp_shut(c), "conn close: client asked: FIN after the response");
    CHECK(!fp_closed(d), "conn close: client asked: device connection still pooled");

    c = client(40002);
    fp_push_str(c, REQ("/dev-closes"));
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    run();
    out = take(c);
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
    fp_push_str(c, "POST /up HTTP/1.1\r\nHost: app.example\r\nContent-Length: 100000\r\n\r\n0123456789");
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig");
    run();
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 413 ") && ends(out, "big"), "early response: relayed to the client");
    CHECK(has(out, "\r\nConnection: close\r\n"), "early response: Connection: close (the body was not read)");
    CHECK(closing(c), "early response: client connection closing");
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
    d = busy_device();
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
        d = busy_device();
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
    c = client(40001);
    fp_push_str(c, REQ("/slow"));
    run();
    d = fp_connect_sock(0);
    take(d);
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
    c = client(40001);
    fp_push_str(c, REQ("/drip"));
    run();
    d = fp_connect_sock(0);
    take(d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\na");
    run();
    advance(T_DEVICE - 500);
    fp_push_str(d, "b");
    run();
    advance(T_DEVICE - 500);
    fp_push_str(d, "c");
    run();
    advance(T_DEVICE - 500);
    fp_push_str(d, "d");
    run();
    out = take(c);
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
    fp_push_str(d2, RESP_OK);
    run();
    out = take(c);
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
    c = client(40001);
    fp_push_str(c, REQ("/big"));
    run();
    d = fp_connect_sock(0);
    take(d);
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
    c = client(40001);
    fp_push_str(c, REQ("/big"));
    run();
    d = fp_connect_sock(0);
    take(d);
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

/* Requests refused before any device is involved. */
static void
test_bad_requests(void)
{
    static const struct {
        const char *name, *req;
        int status;
    } cases[] = {
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
    static char big[16384];
    size_t i;
    int bad_before;
    if (!setup("bad", CFG))
        return;
    for (i = 0; i < sizeof cases / sizeof cases[0] + 3; i++) {
        int c = client(42000 + (unsigned)i), want;
        const char *name;
        char *out, line[32];
        size_t len;
        const char *req;
        if (i < sizeof cases / sizeof cases[0]) {
            name = cases[i].name;
            req = cases[i].req;
            len = strlen(req);
            if (strcmp(name, "NUL") == 0) /* the part after the NUL too */
                len += 1 + strlen(req + len + 1);
            want = cases[i].status;
        } else if (i == sizeof cases / sizeof cases[0]) {
            name = "target over RP_MAX_URI";
            memcpy(big, "GET /", 5);
            memset(big + 5, 'u', RP_MAX_URI + 10);
            len = 5 + RP_MAX_URI + 10;
            len += (size_t)sprintf(big + len, " HTTP/1.1\r\nHost: app.example\r\n\r\n");
            req = big;
            want = 414;
        } else if (i == sizeof cases / sizeof cases[0] + 1) {
            name = "head over RP_MAX_HEAD";
            len = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: app.example\r\nX-Big: ");
            memset(big + len, 'b', RP_MAX_HEAD);
            len += RP_MAX_HEAD;
            len += (size_t)sprintf(big + len, "\r\n\r\n");
            req = big;
            want = 431;
        } else {
            name = "request line over RP_MAX_HEAD, no end";
            memcpy(big, "GET /", 5);
            memset(big + 5, 'v', RP_MAX_HEAD + 100);
            len = 5 + RP_MAX_HEAD + 100;
            req = big;
            want = 414;
        }
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
    /* lingering close without the client's FIN ends after the linger time */
    {
        int c = client(42999);
        fp_push_str(c, "GET / HTTP/1.1\r\n\r\n");
        run();
        CHECK(fp_shut(c) && !fp_closed(c), "bad: linger: half-closed, draining");
        fp_push_str(c, "more junk from the client");
        advance(RP_TIMEOUT_LINGER_MS + 1);
        CHECK(fp_closed(c), "bad: linger: closed after RP_TIMEOUT_LINGER_MS");
    }
    teardown();

    /* a bad second request on a keep-alive connection gets its reply too */
    if (setup("bad keep-alive", CFG)) {
        int c = client(42998);
        char *out;
        get_ok(c, "/fine");
        fp_push_str(c, cases[0].req);
        run();
        out = take(c);
        CHECK(starts(out, "HTTP/1.1 400 "), "bad: CL + TE as the 2nd request of a connection -> 400 (got \"%.12s\")", out);
        CHECK(fp_shut(c), "bad: 2nd request: FIN");
        CHECK(nacc == 2 && acc[1].status == 400, "bad: 2nd request: access record 400 (got %d)", nacc == 2 ? acc[1].status : -1);
        teardown();
    }
}

static void
test_http10_and_bodies(void)
{
    int c, d;
    char *out;
    if (!setup("bodies", CFG))
        return;

    /* HTTP/1.0 client, chunked response: de-chunked and close-delimited */
    c = client(40001);
    fp_push_str(c, "GET /c HTTP/1.0\r\nHost: app.example\r\n\r\n");
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    run();
    out = take(c);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n"), "1.0 dechunk: status");
    CHECK(!has(out, "Transfer-Encoding"), "1.0 dechunk: no Transfer-Encoding to a 1.0 client");
    CHECK(has(out, "\r\nConnection: close\r\n"), "1.0 dechunk: Connection: close");
    CHECK(ends(out, "\r\n\r\nhello world"), "1.0 dechunk: body decoded");
    CHECK(fp_shut(c), "1.0 dechunk: connection closed to end the body");

    /* HTTP/1.0 keep-alive */
    c = client(40002);
    fp_push_str(c, "GET /k HTTP/1.0\r\nHost: app.example\r\nConnection: keep-alive\r\n\r\n");
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, RESP_OK);
    run();
    out = take(c);
    CHECK(has(out, "\r\nConnection: keep-alive\r\n") && ends(out, "ok"), "1.0 keep-alive: Connection: keep-alive");
    CHECK(!closing(c), "1.0 keep-alive: stays open");

    /* HTTP/1.0 without keep-alive */
    c = client(40003);
    fp_push_str(c, "GET /k HTTP/1.0\r\nHost: app.example\r\n\r\n");
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, RESP_OK);
    run();
    out = take(c);
    CHECK(has(out, "\r\nConnection: close\r\n") && ends(out, "ok"), "1.0: Connection: close");
    CHECK(fp_shut(c), "1.0: closed after the response");

    /* chunked to a 1.1 client passes through chunked */
    c = client(40004);
    fp_push_str(c, REQ("/ch"));
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
    run();
    out = take(c);
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

    /* close-delimited response */
    c = client(40005);
    fp_push_str(c, REQ("/cl"));
    run();
    d = busy_device();
    take(d);
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
    fp_push_str(c, REQ("/short"));
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    run();
    fp_eof(d);
    run();
    out = take(c);
    CHECK(closing(c), "mid-body death: client connection closed");
    CHECK(!has(out, "HTTP/1.1 502"), "mid-body death: no second status line after the head");
    teardown();

    /* HEAD: body-less, keep-alive continues */
    if (!setup("head method", CFG))
        return;
    c = client(40001);
    fp_push_str(c, "HEAD /h HTTP/1.1\r\nHost: app.example\r\n\r\n");
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    run();
    out = take(c);
    CHECK(has(out, "\r\nContent-Length: 5\r\n") && ends(out, "\r\n\r\n"), "HEAD: Content-Length kept, no body");
    get_ok(c, "/after-head");
    CHECK_INT(fp_connect_count(), 1, "HEAD: connection reused afterwards");

    /* 204 and 304: no body */
    fp_push_str(c, REQ("/204"));
    run();
    d = busy_device();
    take(d);
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
    d = busy_device();
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
    d = busy_device();
    dh = take(d);
    CHECK(has(dh, "\r\nTransfer-Encoding: chunked\r\n") && !has(dh, "Content-Length"), "POST chunked: TE forwarded");
    CHECK(ends(dh, "\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "POST chunked: body forwarded");
    fp_push_str(d, RESP_OK);
    run();
    CHECK(starts(take(c), "HTTP/1.1 200 OK\r\n"), "POST chunked: response");

    /* bad chunk size after the head went to the device: connection closed */
    fp_push_str(c, "POST /h HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\n\r\n");
    run();
    d = busy_device();
    take(d);
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
    d = busy_device();
    dh = take(d);
    CHECK(has(dh, "\r\nExpect: 100-continue\r\n"), "expect: forwarded to the device");
    fp_push_str(d, "HTTP/1.1 100 Continue\r\n\r\n");
    run();
    out = take(c);
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
    d = busy_device();
    dh = take(d);
    CHECK(strcasestr(dh, "\r\nConnection: upgrade\r\n") != NULL, "upgrade: Connection: upgrade forwarded");
    CHECK(has(dh, "\r\nUpgrade: websocket\r\n"), "upgrade: Upgrade forwarded");
    CHECK(has(dh, "\r\nSec-WebSocket-Key: k\r\n"), "upgrade: other fields forwarded");
    fp_push_str(d, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    run();
    out = take(c);
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
    fp_push_str(c, REQ("/"));
    run();
    d = busy_device();
    take(d);
    fp_push_str(d, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    run();
    CHECK(starts(take(c), "HTTP/1.1 502 "), "upgrade: unasked 101 -> 502");
    teardown();
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
        fp_push_str(c, REQ("/"));
        run();
        d = busy_device();
        take(d);
        fp_push_str(d, cases[i].resp);
        run();
        CHECK(starts(take(c), "HTTP/1.1 502 "), "bad response: %s -> 502", cases[i].name);
        CHECK(fp_closed(d), "bad response: %s: device connection closed", cases[i].name);
    }
    /* device closes before any response byte (fresh connection): 502 */
    {
        int c = client(43100), d;
        fp_push_str(c, REQ("/"));
        run();
        d = busy_device();
        take(d);
        fp_eof(d);
        run();
        CHECK(starts(take(c), "HTTP/1.1 502 "), "bad response: closed before a head -> 502");
    }
    /* device resets */
    {
        int c = client(43101), d;
        fp_push_str(c, REQ("/"));
        run();
        d = busy_device();
        take(d);
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
    fp_push_str(c, REQ("/"));
    run();
    d = busy_device();
    take(d);
    fp_reset(c);
    run();
    CHECK(fp_closed(c), "client reset: client socket closed");
    CHECK(fp_closed(d), "client reset: mid-exchange device connection closed too");
    CHECK_INT(rp_active(P), 0, "client reset: no active clients");
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
    fp_push_str(busy, REQ("/in-flight"));
    run();
    d = busy_device();
    take(d);
    CHECK_INT(rp_active(P), 2, "shutdown: two clients");
    rp_shutdown(P);
    run();
    CHECK(fp_closed(l), "shutdown: listener closed");
    CHECK(closing(idle), "shutdown: idle keep-alive client closed");
    CHECK(!closing(busy), "shutdown: busy client still served");
    fp_push_str(d, RESP_OK);
    run();
    out = take(busy);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && has(out, "\r\nConnection: close\r\n"), "shutdown: in-flight response completes with Connection: close");
    CHECK(closing(busy), "shutdown: busy client closed after its response");
    fp_eof(busy);
    fp_eof(idle);
    run();
    CHECK_INT(rp_active(P), 0, "shutdown: rp_active reaches 0");
    teardown();
}

int
main(void)
{
    fp_log_quiet(getenv("FP_LOG") == NULL);
    test_get_proxied();
    test_forward_variants();
    test_keepalive_reuse();
    test_pipelined();
    test_pipelined_burst();
    test_trickle_and_many();
    test_half_close();
    test_connection_close();
    test_ipv6_client();
    test_routing();
    test_balancing();
    test_head_timeout();
    test_idle_timeouts();
    test_device_timeout();
    test_connect_timeout();
    test_connect_refused();
    test_health();
    test_stale_connection();
    test_slow_reader();
    test_slow_device_upload();
    test_bad_requests();
    test_http10_and_bodies();
    test_request_bodies();
    test_upgrade();
    test_bad_responses();
    test_no_device();
    test_client_reset();
    test_accept_errors();
    test_shutdown();
    tap_skip("exhaustion: more clients than RP_MAX_CONNS",
             "unit build uses RP_MAX_CONNS=1024; covered by the integration test");
    return tap_done();
}

/*
 * conn_scenario.h -- the scenario harness the test_conn_*.c files share
 * (header-only: each of them is one binary, linked with the sections and
 * tests/fakeport.c).
 *
 * SPDX-License-Identifier: MIT
 *
 * Each test builds a fresh proxy on a fixed fake clock (setup), plays the
 * client and the device by pushing bytes into fake sockets, turns the event
 * loop until nothing moves (run), and reads what rproxy sent (take).  Time
 * moves only when a test says so (advance), so every timeout is checked
 * just before and just after it is due.  teardown() checks that the loop
 * always went quiet and that rproxy never used a closed or unknown socket.
 * Access-log records land in acc[0..nacc).
 *
 * Only the public API is used: rp_init, rp_config_parse, rp_start, rp_poll,
 * rp_shutdown, p->stats and the access-log hook.
 */
#ifndef CONN_SCENARIO_H
#define CONN_SCENARIO_H

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
    char cut[24]; /* "": the response was not cut after its head */
} acc[64];
static int nacc;

TAP_FN void
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
        snprintf(acc[nacc].cut, sizeof acc[nacc].cut, "%s", a->cut ? a->cut : "");
    }
    nacc++;
}

/* ==== harness ==== */

/* Turn the loop until two turns in a row handle nothing. */
TAP_FN int
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

TAP_FN void
advance(uint64_t ms)
{
    fp_advance(ms);
    run();
}

TAP_FN int
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

TAP_FN void
teardown(void)
{
    CHECK_INT(run_stuck, 0, "%s: event loop always went quiet", test_name);
    CHECK_INT(fp_misuse(), 0, "%s: no port calls on closed/unknown sockets", test_name);
    fp_proxy_free(P);
    P = NULL;
}

/* A client connected and accepted. */
TAP_FN int
client(unsigned port)
{
    int c = fp_client_connect("10.0.0.7", (uint16_t)port);
    run();
    return c;
}

/* What rproxy sent on s, NUL-terminated (rotating static buffers). */
TAP_FN char *
take(int s)
{
    static char bufs[4][BIG];
    static int k;
    char *b = bufs[k++ & 3];
    fp_take(s, b, BIG);
    return b;
}

TAP_FN int
starts(const char *s, const char *pfx)
{
    return strncmp(s, pfx, strlen(pfx)) == 0;
}

TAP_FN int
has(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

TAP_FN int
count(const char *s, const char *needle)
{
    int n = 0;
    while ((s = strstr(s, needle)) != NULL)
        n++, s++;
    return n;
}

TAP_FN int
ends(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && memcmp(s + a - b, sfx, b) == 0;
}

/* Client c sends req; returns the device connection that got it (the
 * newest with bytes waiting), its bytes taken. */
TAP_FN int
forward(int c, const char *req)
{
    int d;
    fp_push_str(c, req);
    run();
    d = fp_busy_device();
    take(d);
    return d;
}

/* Device d answers resp; returns what client c got. */
TAP_FN char *
reply(int d, int c, const char *resp)
{
    fp_push_str(d, resp);
    run();
    return take(c);
}

/* Client c asks for path; whichever device connection receives it answers
 * 200 "ok".  Returns that device socket (or -1). */
TAP_FN int
get_ok(int c, const char *path)
{
    char req[256];
    char *out;
    int d;
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", path);
    fp_push_str(c, req);
    run();
    d = fp_busy_device();
    if (!CHECK(d >= 0, "%s: GET %s reached a device", test_name, path))
        return -1;
    take(d);
    out = reply(d, c, RESP_OK);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && ends(out, "\r\n\r\nok"), "%s: GET %s answered 200", test_name, path);
    return d;
}

/* One GET from a new client, answered with "Connection: close" (so no
 * device connection is pooled); returns the device port that served it. */
TAP_FN int
one_request(unsigned port, const char *path)
{
    int c = client(port), d;
    char req[128];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", path);
    fp_push_str(c, req);
    run();
    d = fp_busy_device();
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
TAP_FN int
closing(int s)
{
    return fp_shut(s) || fp_closed(s);
}

/* main() of a test_conn_* binary: the fake port's log lines only with
 * FP_LOG set in the environment, then the tests argv names (see tap.h). */
TAP_FN int
conn_main(int argc, char **argv, const tap_test *tests, size_t n)
{
    fp_log_quiet(getenv("FP_LOG") == NULL);
    return tap_main(argc, argv, tests, n);
}

#endif /* CONN_SCENARIO_H */

/*
 * test_knobs.c -- rproxy built with the knobs boards/mps2-an386 turns off:
 * no IPv6 (RP_ENABLE_IPV6 0, lwIP is IPv4-only there), no wall clock
 * (RP_ENABLE_WALL_CLOCK 0, the board has no RTC), no redirect_https
 * listener (RP_ENABLE_REDIRECT 0), no access callback (RP_ENABLE_ACCESS_LOG 0),
 * no refusal texts (RP_ENABLE_REASONS 0), no device names (RP_ENABLE_DNS 0).
 *
 * SPDX-License-Identifier: MIT
 *
 * The Makefile builds the sections (src/) into this binary with the knobs
 * set on its command line; the check below refuses any other build.  Checked:
 *   - an IPv6 address in listen, device or allow= fails the config at its
 *     line with a message that names the knob; the same lines with IPv4 pass;
 *   - rp_addr_parse says RP_ENOTIMPL for IPv6 and still formats IPv4;
 *   - no Date is added to a response without one, although the fake port's
 *     clock reads a real time (so rp_port_time is not consulted);
 *   - the cache's initial age ignores the wall clock: a response whose Date
 *     is years old but which carries no Age is fresh for its max-age;
 *   - redirect_https fails the config at its line, naming the knob;
 *   - without the access callback, finished exchanges still count by class;
 *   - a device NAME:PORT and a pool's resolve= fail the config at their line,
 *     naming the knob (no resolver is ever asked: the fake port has none);
 *   - without RP_ENABLE_LIMITS, max_conns=/max_idle= and queue=/queue_timeout=
 *     fail the config at their word, naming the knob.
 */
#include "rp_int.h" /* white-box: internal functions too */

#if RP_ENABLE_IPV6 || RP_ENABLE_WALL_CLOCK || RP_ENABLE_REDIRECT || RP_ENABLE_ACCESS_LOG || RP_ENABLE_REASONS || \
    RP_ENABLE_DNS || RP_ENABLE_LIMITS
#error "test_knobs is built with RP_ENABLE_IPV6, _WALL_CLOCK, _REDIRECT, _ACCESS_LOG, _REASONS, _DNS and _LIMITS 0 (see the Makefile)"
#endif

#include <stdio.h>
#include <string.h>

#include "fakeport.h"
#include "tap.h"

static rp_proxy P;

static int
parse(const char *text, rp_cfg_error *e)
{
    rp_init(&P);
    memset(e, 0, sizeof(*e));
    return rp_config_parse(&P, text, strlen(text), e);
}

/* text with "%s" replaced by addr must fail at line (IPv6) or pass (IPv4). */
static void
config_case(const char *what, const char *fmt, const char *v6, const char *v4, int line)
{
    char text[512];
    rp_cfg_error e;
    int rc;
    snprintf(text, sizeof(text), fmt, v6);
    rc = parse(text, &e);
    CHECK(rc == RP_ECONFIG && e.line == line && strstr(e.msg, "RP_ENABLE_IPV6") != NULL,
          "%s %s refused at line %d, naming the knob (rc %d, line %d, \"%s\")", what, v6, line,
          rc, e.line, e.msg);
    snprintf(text, sizeof(text), fmt, v4);
    rc = parse(text, &e);
    CHECK(rc == RP_OK, "%s %s accepted (rc %d, line %d, \"%s\")", what, v4, rc, e.line, e.msg);
}

static void
test_ipv6_off(void)
{
    rp_addr a;
    char buf[48];
    config_case("listen", "listen %s\npool a\ndevice a 127.0.0.1:9000\nroute pool=a\n",
                "[::1]:8080", "127.0.0.1:8080", 1);
    config_case("device", "listen 8080\npool a\ndevice a %s\nroute pool=a\n", "[fe80::1]:9000",
                "10.0.0.7:9000", 3);
#if RP_ENABLE_STATUS
    config_case("status allow=",
                "listen 8080\npool a\ndevice a 127.0.0.1:9000\nroute pool=a\n"
                "status path=/_status allow=%s\n",
                "::1", "192.168.1.0/24", 5);
#endif
    CHECK(rp_addr_parse(&a, "[::1]:80", 8, 1) == RP_ENOTIMPL, "rp_addr_parse: IPv6 is RP_ENOTIMPL");
    CHECK(rp_addr_parse(&a, "10.1.2.3:80", 11, 1) == RP_OK && a.family == 4 && a.port == 80,
          "rp_addr_parse: IPv4 still parses");
    CHECK(rp_addr_format(&a, buf, sizeof(buf)) == 8 && strcmp(buf, "10.1.2.3") == 0,
          "rp_addr_format: IPv4 still formats (\"%s\")", buf);
}

static void
test_no_wall_clock(void)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    static const char old[] = "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2015 00:00:00 GMT\r\n"
                              "Cache-Control: max-age=60\r\nContent-Length: 0\r\n\r\n";
    rp_http_msg m;
    char out[256];
    wbuf w;
    centry e;
    rp_conn c; /* the request: route 0, started now */
    rp_init(&P);
    memset(&c, 0, sizeof(c));
    c.t_start = P.now;
    fp_set_time(1700000000); /* the port has a clock; this build must not ask it */
    CHECK(rp_http_parse_response(resp, sizeof(resp) - 1, &m) == RP_OK, "parse a response without Date");
    w.p = out, w.n = 0, w.cap = sizeof(out), w.full = 0;
    w_via_date(&P, &w, &m);
    CHECK_MEM(out, w.n, "Via: 1.1 rproxy\r\n", "Via and no Date added");
    CHECK(rp_http_parse_response(old, sizeof(old) - 1, &m) == RP_OK, "parse a response dated 2015");
    memset(&e, 0, sizeof(e));
    entry_meta(&P, &e, &m, &c);
    CHECK(e.age0 == 0 && e.lifetime == 60,
          "no apparent age from the port's clock: age0 %lld, lifetime %ld", (long long)e.age0,
          (long)e.lifetime);
}

static void
test_no_redirect_no_access_log(void)
{
    static const char text[] = "pool a\ndevice a 127.0.0.1:9000\nroute pool=a\n"
                               "listen 8080 redirect_https=8443\n";
    rp_cfg_error e;
    rp_conn *c;
    int rc = parse(text, &e);
    CHECK(rc == RP_ECONFIG && e.line == 4 && strstr(e.msg, "RP_ENABLE_REDIRECT") != NULL,
          "redirect_https refused at line 4, naming the knob (rc %d, line %d, \"%s\")", rc, e.line,
          e.msg);
    rp_init(&P);
    c = conn_alloc(&P, K_CLIENT);
    c->status = 204;
    access_log(&P, c);
    c->status = 503;
    access_log(&P, c);
    CHECK(P.stats.responses[2] == 1 && P.stats.responses[5] == 1,
          "responses still counted by class without the access callback (2xx %llu, 5xx %llu)",
          (unsigned long long)P.stats.responses[2], (unsigned long long)P.stats.responses[5]);
}

static void
test_no_dns(void)
{
    static const char name[] = "listen 8080\npool a\ndevice a cam1.lan:80\nroute pool=a\n";
    static const char resolve[] = "listen 8080\npool a resolve=5s\ndevice a 127.0.0.1:80\nroute pool=a\n";
    rp_cfg_error e;
    int rc = parse(name, &e);
    CHECK(rc == RP_ECONFIG && e.line == 3 &&
              strcmp(e.msg, "bad device address 'cam1.lan:80': want IP:PORT (names need a resolver: "
                            "RP_ENABLE_DNS=0)") == 0,
          "a device name refused at line 3, naming the knob (rc %d, line %d, \"%s\")", rc, e.line,
          e.msg);
    rc = parse(resolve, &e);
    CHECK(rc == RP_ECONFIG && e.line == 2 && strstr(e.msg, "RP_ENABLE_DNS=0") != NULL,
          "resolve= refused at line 2, naming the knob (rc %d, line %d, \"%s\")", rc, e.line, e.msg);
}

static void
test_no_limits(void)
{
    static const struct {
        const char *text;
        int col;
    } rows[] = {
        {"pool a\ndevice a 127.0.0.1:9000 max_conns=1\n", 25},
        {"pool a\ndevice a 127.0.0.1:9000 max_idle=1\n", 25},
        {"pool a queue=5\n", 8},
        {"pool a queue_timeout=5s\n", 8},
    };
    size_t i;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        rp_cfg_error e;
        int rc = parse(rows[i].text, &e);
        CHECK(rc == RP_ECONFIG && e.col == rows[i].col && strstr(e.msg, "not compiled in (RP_ENABLE_LIMITS=0)"),
              "no limits: row %d refused at its word, naming the knob (rc %d, col %d, \"%s\")",
              (int)i, rc, e.col, e.msg);
    }
}

static const tap_test tests[] = {
    TAP_TEST(ipv6_off),
    TAP_TEST(no_wall_clock),
    TAP_TEST(no_redirect_no_access_log),
    TAP_TEST(no_dns),
    TAP_TEST(no_limits),
};

int
main(int argc, char **argv)
{
    fp_reset_all();
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

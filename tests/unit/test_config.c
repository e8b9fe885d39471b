/*
 * test_config.c -- rp_config_parse (good configs checked table by table, bad
 * ones by error line and message) and rp_addr_parse / rp_addr_format.
 *
 * SPDX-License-Identifier: MIT
 *
 * Config texts are placed right before a guard page and are not
 * NUL-terminated, so the parser must honour len.  After a parse the text is
 * overwritten: everything the config keeps must live in rproxy's arena.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "fakeport.h"
#include "tap.h"
#include "guard.h"
#include "rp_int.h" /* cfg_qty */

#undef S /* rp_int.h's, the same */
#define S(lit) lit, sizeof(lit) - 1
#define ANY_LINE (-1)

/* A fresh proxy per parse; returns the rp_config_parse result. */
static int
parse(rp_proxy **pp, const char *text, size_t len, rp_cfg_error *e)
{
    rp_proxy *p = fp_proxy_new();
    char *b;
    int rc;
    if (rp_init(p) != RP_OK) {
        CHECK(0, "rp_init");
        *pp = p;
        return RP_EIO;
    }
    b = guard_buf(len);
    memcpy(b, text, len);
    memset(e, 0, sizeof *e);
    e->line = -12345;
    rc = rp_config_parse(p, b, len, e);
    memset(b, 'Z', len); /* the text is gone now */
    *pp = p;
    return rc;
}

static int
addr_is(const rp_addr *a, int family, const char *ip, unsigned port)
{
    unsigned char want[16];
    memset(want, 0, sizeof want);
    if (family == 4) {
        unsigned x[4];
        if (sscanf(ip, "%u.%u.%u.%u", &x[0], &x[1], &x[2], &x[3]) != 4)
            return 0;
        want[0] = (unsigned char)x[0];
        want[1] = (unsigned char)x[1];
        want[2] = (unsigned char)x[2];
        want[3] = (unsigned char)x[3];
        return a->family == 4 && memcmp(a->ip, want, 4) == 0 && a->port == port;
    }
    return 0;
}

static int
str_is(const char *got, const char *want)
{
    if (!got || !want)
        return got == want;
    return strcmp(got, want) == 0;
}

/* ==== good configs ==== */

static const char good_text[] =
    "# rproxy test config\n"
    "\n"
    "listen 8080\n"
    "listen 127.0.0.1:8081\n"
    "pool cams balance=leastconn retries=3\n"
    "pool plcs\n"
    "device cams 10.0.0.5:80 weight=3 max_fails=2 fail_timeout=7\n"
    "   device cams 10.0.0.6:8080 backup\n"
    "device plcs 10.0.0.7:502 weight=0\n"
    "device plcs localhost:9001 weight=1000\n"
    "route host=cam.example path=/video pool=cams cache=on\n"
    "route path=/plc pool=plcs cache=off\n"
    "route pool=cams\n"
    "timeout client_header=1500 client_idle=2500 connect=350 device=4500 device_idle=5500\n"
    "via gw1\n"
    "# trailing comment\n";

static void
test_good(void)
{
    rp_proxy *p;
    rp_cfg_error e;
    const rp_config *c;
    int rc = parse(&p, good_text, sizeof good_text - 1, &e);
    if (!CHECK_INT(rc, RP_OK, "good: parses")) {
        tap_diag("line %d: %s", e.line, e.msg);
        fp_proxy_free(p);
        return;
    }
    c = &p->cfg;
    CHECK_INT(c->nlisteners, 2, "good: 2 listeners");
    CHECK(c->listeners[0].addr.port == 8080 && c->listeners[0].addr.family == 4,
          "good: listen 8080 -> IPv4 port 8080");
    CHECK(addr_is(&c->listeners[0].addr, 4, "0.0.0.0", 8080), "good: listen PORT binds 0.0.0.0");
    CHECK(addr_is(&c->listeners[1].addr, 4, "127.0.0.1", 8081), "good: listen 127.0.0.1:8081");

    CHECK_INT(c->npools, 2, "good: 2 pools");
    CHECK_STR(c->pools[0].name, "cams", "good: pool 0 name");
    CHECK_INT(c->pools[0].balance, RP_BALANCE_LEASTCONN, "good: pool 0 balance=leastconn");
    CHECK_INT(c->pools[0].retries, 3, "good: pool 0 retries=3");
    CHECK_INT(c->pools[0].ndevices, 2, "good: pool 0 has 2 devices");
    CHECK(c->pools[0].devices[0] == 0 && c->pools[0].devices[1] == 1, "good: pool 0 device indexes");
    CHECK_STR(c->pools[1].name, "plcs", "good: pool 1 name");
    CHECK_INT(c->pools[1].balance, RP_BALANCE_WRR, "good: pool 1 balance defaults to wrr");
    CHECK_INT(c->pools[1].retries, RP_DEFAULT_RETRIES, "good: pool 1 retries default");
    CHECK_INT(c->pools[1].ndevices, 2, "good: pool 1 has 2 devices");
    CHECK(c->pools[1].devices[0] == 2 && c->pools[1].devices[1] == 3, "good: pool 1 device indexes");

    CHECK_INT(c->ndevices, 4, "good: 4 devices");
    CHECK(addr_is(&c->devices[0].addr, 4, "10.0.0.5", 80), "good: device 0 address");
    CHECK_INT(c->devices[0].pool, 0, "good: device 0 pool");
    CHECK_INT(c->devices[0].weight, 3, "good: device 0 weight=3");
    CHECK_INT(c->devices[0].max_fails, 2, "good: device 0 max_fails=2");
    CHECK_INT(c->devices[0].fail_timeout_ms, 7000, "good: device 0 fail_timeout=7 s -> 7000 ms");
    CHECK_INT(c->devices[0].backup, 0, "good: device 0 not backup");
    CHECK(addr_is(&c->devices[1].addr, 4, "10.0.0.6", 8080), "good: device 1 address");
    CHECK_INT(c->devices[1].backup, 1, "good: device 1 backup");
    CHECK_INT(c->devices[1].weight, 1, "good: device 1 weight defaults to 1");
    CHECK_INT(c->devices[2].pool, 1, "good: device 2 pool");
    CHECK_INT(c->devices[2].weight, 0, "good: device 2 weight=0 (disabled)");
    CHECK(addr_is(&c->devices[3].addr, 4, "127.0.0.1", 9001), "good: device 3 localhost -> 127.0.0.1");
    CHECK_INT(c->devices[3].weight, 1000, "good: device 3 weight=1000 (the maximum)");

    CHECK_INT(c->nroutes, 3, "good: 3 routes");
    CHECK(str_is(c->routes[0].host, "cam.example"), "good: route 0 host");
    CHECK(str_is(c->routes[0].path, "/video"), "good: route 0 path");
    CHECK_INT(c->routes[0].pool, 0, "good: route 0 pool");
    CHECK_INT(c->routes[0].cache, 1, "good: route 0 cache=on");
    CHECK(c->routes[1].host == NULL, "good: route 1 any host (NULL)");
    CHECK(str_is(c->routes[1].path, "/plc"), "good: route 1 path");
    CHECK_INT(c->routes[1].pool, 1, "good: route 1 pool");
    CHECK_INT(c->routes[1].cache, 0, "good: route 1 cache=off");
    CHECK(c->routes[2].host == NULL && c->routes[2].path == NULL, "good: route 2 matches everything");
    CHECK_INT(c->routes[2].pool, 0, "good: route 2 pool");

    CHECK_INT(c->t_client_header, 1500, "good: timeout client_header");
    CHECK_INT(c->t_client_idle, 2500, "good: timeout client_idle");
    CHECK_INT(c->t_connect, 350, "good: timeout connect");
    CHECK_INT(c->t_device, 4500, "good: timeout device");
    CHECK_INT(c->t_device_idle, 5500, "good: timeout device_idle");
    CHECK(str_is(c->via, "gw1"), "good: via gw1");
    fp_proxy_free(p);
}

/* The smallest config: defaults everywhere; last line without newline. */
static void
test_minimal(void)
{
    static const char text[] = "listen 80\npool a\ndevice a 127.0.0.1:9001\nroute pool=a";
    rp_proxy *p;
    rp_cfg_error e;
    const rp_config *c;
    int rc = parse(&p, text, sizeof text - 1, &e);
    if (!CHECK_INT(rc, RP_OK, "minimal: parses (no final newline)")) {
        tap_diag("line %d: %s", e.line, e.msg);
        fp_proxy_free(p);
        return;
    }
    c = &p->cfg;
    CHECK_INT(c->t_client_header, RP_TIMEOUT_CLIENT_HEADER_MS, "minimal: default client_header");
    CHECK_INT(c->t_client_idle, RP_TIMEOUT_CLIENT_IDLE_MS, "minimal: default client_idle");
    CHECK_INT(c->t_connect, RP_TIMEOUT_CONNECT_MS, "minimal: default connect");
    CHECK_INT(c->t_device, RP_TIMEOUT_DEVICE_MS, "minimal: default device");
    CHECK_INT(c->t_device_idle, RP_TIMEOUT_DEVICE_IDLE_MS, "minimal: default device_idle");
    CHECK(c->via == NULL || strcmp(c->via, "rproxy") == 0, "minimal: via unset or \"rproxy\"");
    CHECK_INT(c->pools[0].retries, RP_DEFAULT_RETRIES, "minimal: default retries");
    CHECK_INT(c->devices[0].weight, 1, "minimal: default weight 1");
    CHECK_INT(c->devices[0].backup, 0, "minimal: not backup");
    CHECK(c->routes[0].host == NULL && c->routes[0].path == NULL, "minimal: catch-all route");
    fp_proxy_free(p);
}

/* Small variants that must parse. */
static const struct {
    const char *name;
    const char *text;
    size_t len;
} ok_cases[] = {
    {"comments and blank lines", S("# a\n\n   \n\t\nlisten 80\n# b\npool a\ndevice a 127.0.0.1:1\nroute pool=a\n")},
    {"options in any order", S("listen 80\npool a retries=0 balance=wrr\ndevice a 127.0.0.1:2\ndevice a 127.0.0.1:1 fail_timeout=1 backup weight=2 max_fails=0\nroute cache=off pool=a path=/ host=x\n")},
    {"IPv6 device", S("listen 80\npool a\ndevice a [::1]:9001\nroute pool=a\n")},
    {"IPv6 listen", S("listen [::1]:8080\npool a\ndevice a 127.0.0.1:1\nroute pool=a\n")},
    {"partial timeout line", S("listen 80\npool a\ndevice a 127.0.0.1:1\nroute pool=a\ntimeout connect=100\n")},
    {"max listeners", S("listen 80\nlisten 81\nlisten 82\nlisten 83\npool a\ndevice a 127.0.0.1:1\nroute pool=a\n")},
    {"weight 0 and 1000", S("listen 80\npool a\ndevice a 127.0.0.1:1 weight=0\ndevice a 127.0.0.1:2 weight=1000\nroute pool=a\n")},
    {"route wildcard host", S("listen 80\npool a\ndevice a 127.0.0.1:1\nroute host=*.example.com pool=a\n")},
    {"CRLF line endings", S("listen 80\r\npool a\r\ndevice a 127.0.0.1:1\r\nroute pool=a\r\n")},
    {"quoted values", S("listen 80\npool \"a\"\ndevice a 127.0.0.1:1 weight=\"3\"0 # c \"\ndevice a 127.0.0.1:2 \"weight=7\"\nroute pool=\"a\" path=\"/a\\\\b\" # \"x\n")},
};

static void
test_ok_variants(void)
{
    size_t i;
    for (i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        rp_proxy *p;
        rp_cfg_error e;
        int rc = parse(&p, ok_cases[i].text, ok_cases[i].len, &e);
        if (!CHECK_INT(rc, RP_OK, "ok: %s", ok_cases[i].name))
            tap_diag("line %d: %s", e.line, e.msg);
        if (rc == RP_OK && i == 2)
            CHECK(p->cfg.devices[0].addr.family == 6 && p->cfg.devices[0].addr.ip[15] == 1 &&
                      p->cfg.devices[0].addr.port == 9001,
                  "ok: IPv6 device is [::1]:9001");
        if (rc == RP_OK && i == RP_COUNT(ok_cases) - 1)
            CHECK(p->cfg.devices[0].weight == 30 && p->cfg.devices[1].weight == 7 &&
                      strcmp(p->cfg.routes[0].path, "/a\\b") == 0,
                  "ok: quoted values unquoted (weight=\"3\"0 is 30, path \"/a\\\\b\" is /a\\b)");
        fp_proxy_free(p);
    }
}

/* ==== bad configs ==== */

#define BASE "listen 8080\npool a\ndevice a 127.0.0.1:9001\nroute pool=a\n" /* 4 lines */

static const struct {
    const char *name;
    const char *text;
    size_t len;
    int line;         /* ANY_LINE: not checked */
    const char *msg;  /* substring (case-insensitive), NULL: not checked */
} bad_cases[] = {
    {"unknown directive", S(BASE "frobnicate 1\n"), 5, "unknown"},
    {"unknown directive after comments", S("# c\n\nlisten 8080\n\n   \nfrobnicate\n"), 6, "unknown"},
    {"unknown pool option", S(BASE "pool b color=red\n"), 5, "color"},
    {"unknown device option", S(BASE "device a 127.0.0.1:9002 speed=9\n"), 5, "speed"},
    {"unknown route option", S(BASE "route pool=a foo=bar\n"), 5, "foo"},
    {"unknown timeout", S(BASE "timeout forever=1\n"), 5, "forever"},
    {"listen extra word", S(BASE "listen 8081 extra\n"), 5, NULL},
    {"bad port 70000", S(BASE "listen 70000\n"), 5, "port"},
    {"bad port letters", S(BASE "listen http\n"), 5, NULL},
    {"listen without argument", S(BASE "listen\n"), 5, NULL},
    {"device with undefined pool", S(BASE "device nope 127.0.0.1:9002\n"), 5, "pool"},
    {"device before its pool", S("listen 8080\ndevice a 127.0.0.1:9001\npool a\nroute pool=a\n"), 2, "pool"},
    {"device without port", S(BASE "device a 127.0.0.1\n"), 5, NULL},
    {"device bad address", S(BASE "device a 999.0.0.1:80\n"), 5, NULL},
    {"device bad host name", S(BASE "device a cam..example:80\n"), 5, NULL},
    {"device port 70000", S(BASE "device a 127.0.0.1:70000\n"), 5, NULL},
    {"device without address", S(BASE "device a\n"), 5, NULL},
    {"weight 5000", S(BASE "device a 127.0.0.1:9002 weight=5000\n"), 5, "weight"},
    {"weight 1001", S(BASE "device a 127.0.0.1:9002 weight=1001\n"), 5, "weight"},
    {"weight -1", S(BASE "device a 127.0.0.1:9002 weight=-1\n"), 5, "weight"},
    {"weight letters", S(BASE "device a 127.0.0.1:9002 weight=abc\n"), 5, "weight"},
    {"weight empty", S(BASE "device a 127.0.0.1:9002 weight=\n"), 5, "weight"},
    {"max_fails letters", S(BASE "device a 127.0.0.1:9002 max_fails=x\n"), 5, "max_fails"},
    {"fail_timeout letters", S(BASE "device a 127.0.0.1:9002 fail_timeout=x\n"), 5, "fail_timeout"},
    {"route with undefined pool", S(BASE "route pool=nope\n"), 5, "pool"},
    {"route without pool", S(BASE "route path=/x\n"), 5, "pool"},
    {"path without /", S(BASE "route path=x pool=a\n"), 5, "path"},
    {"cache=maybe", S(BASE "route path=/c pool=a cache=maybe\n"), 5, "cache"},
    {"duplicate pool", S(BASE "pool a\n"), 5, "duplicate"},
    {"empty pool name", S(BASE "pool\n"), 5, "pool"},
    {"balance=foo", S(BASE "pool b balance=foo\n"), 5, "balance"},
    {"retries letters", S(BASE "pool b retries=x\n"), 5, "retries"},
    {"timeout letters", S(BASE "timeout connect=abc\n"), 5, "connect"},
    {"timeout negative", S(BASE "timeout device=-5\n"), 5, "device"},
    {"via without name", S(BASE "via\n"), 5, "via"},
    {"no listen", S("pool a\ndevice a 127.0.0.1:9001\nroute pool=a\n"), ANY_LINE, "listen"},
    {"no route", S("listen 8080\npool a\ndevice a 127.0.0.1:9001\n"), ANY_LINE, "route"},
    {"empty config", S(""), ANY_LINE, NULL},
    {"too many listeners", S(BASE "listen 8081\nlisten 8082\nlisten 8083\nlisten 8084\n"), 8, NULL},
    {"too many pools", S(BASE "pool p1\npool p2\npool p3\npool p4\npool p5\npool p6\npool p7\npool p8\n"), 12, NULL},
};

static void
check_bad(const char *name, const char *text, size_t len, int line, const char *msg)
{
    rp_proxy *p;
    rp_cfg_error e;
    int rc = parse(&p, text, len, &e);
    if (CHECK_INT(rc, RP_ECONFIG, "bad: %s -> RP_ECONFIG", name)) {
        if (line != ANY_LINE)
            CHECK_INT(e.line, line, "bad: %s: line (msg \"%.96s\")", name, e.msg);
        else
            CHECK(e.line >= 0, "bad: %s: line is set (%d)", name, e.line);
        CHECK(memchr(e.msg, '\0', sizeof e.msg) && e.msg[0], "bad: %s: message set", name);
        if (msg)
            CHECK(strcasestr(e.msg, msg) != NULL, "bad: %s: message \"%.96s\" mentions \"%s\"",
                  name, e.msg, msg);
    }
    fp_proxy_free(p);
}

static void
test_bad(void)
{
    size_t i;
    static char buf[8192];
    size_t n;
    int k;
    for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        check_bad(bad_cases[i].name, bad_cases[i].text, bad_cases[i].len, bad_cases[i].line,
                  bad_cases[i].msg);

    /* RP_MAX_DEVICES + 1 devices: the base has one, the error is on the
     * line of the (RP_MAX_DEVICES+1)-th. */
    n = (size_t)snprintf(buf, sizeof buf, "%s", BASE);
    for (k = 0; k < RP_MAX_DEVICES; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "device a 127.0.0.1:%d\n", 10000 + k);
    check_bad("too many devices", buf, n, 4 + RP_MAX_DEVICES, NULL);

    /* RP_MAX_ROUTES + 1 routes. */
    n = (size_t)snprintf(buf, sizeof buf, "%s", BASE);
    for (k = 0; k < RP_MAX_ROUTES; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "route path=/r%d pool=a\n", k);
    check_bad("too many routes", buf, n, 4 + RP_MAX_ROUTES, NULL);

    /* Strings beyond RP_CFG_STR_BYTES: long route hosts. */
    n = (size_t)snprintf(buf, sizeof buf, "%s", BASE);
    for (k = 0; k < 8; k++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "route host=");
        memset(buf + n, 'h' + k % 3, RP_CFG_STR_BYTES / 4);
        n += RP_CFG_STR_BYTES / 4;
        n += (size_t)snprintf(buf + n, sizeof buf - n, ".example pool=a\n");
    }
    check_bad("config strings over RP_CFG_STR_BYTES", buf, n, ANY_LINE, NULL);

    /* the same bad line reported on the right line past many good ones */
    n = 0;
    for (k = 0; k < 100; k++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "# comment %d\n", k);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", BASE "bogus\n");
    check_bad("line counted past 100 comments", buf, n, 105, "unknown");
}

/* Parsing must stop at len: a good config followed by junk outside len. */
static void
test_len_respected(void)
{
    static const char text[] = "listen 80\npool a\ndevice a 127.0.0.1:1\nroute pool=a\nbogus junk\n";
    size_t len = sizeof text - 1 - 11; /* without "bogus junk\n" */
    rp_proxy *p = fp_proxy_new();
    rp_cfg_error e;
    char *b = guard_buf(sizeof text - 1);
    memcpy(b, text, sizeof text - 1);
    rp_init(p);
    CHECK_INT(rp_config_parse(p, b, len, &e), RP_OK, "len: text after len is not read");
    fp_proxy_free(p);
}

/* ==== every error message, exactly ==== */

/* A line after a good config of six lines (pools lan and cams): the error
 * is on line 7 unless said otherwise; col is where the offending word
 * starts (0: none).  Every message the parser can give with this build's
 * knobs (TLS, cache, status on; the blobs fakeport has: none). */
#define BASE6 "listen 8080\npool lan\ndevice lan 127.0.0.1:9001\npool cams\ndevice cams 127.0.0.1:9002\nroute pool=lan\n"

static const struct {
    const char *line;
    int at, col;
    const char *msg;
} msg_cases[] = {
    {"frobnicate 1", 7, 1, "unknown directive 'frobnicate'"},
    {"devcie lan 10.0.0.5:80", 7, 1, "unknown directive 'devcie' (did you mean 'device'?)"},
    {"Listen 80", 7, 1, "unknown directive 'Listen' (did you mean 'listen'?)"},
    {"listen", 7, 1, "listen needs [ADDR:]PORT 'listen'"},
    {"listen 70000", 7, 8, "bad port '70000' (1-65535)"},
    {"listen http", 7, 8, "bad listen address 'http': want PORT or IP:PORT"},
    {"listen 1.2.3.4", 7, 8, "bad listen address '1.2.3.4': want PORT or IP:PORT"},
    {"listen 8081 tsl", 7, 13, "unknown listen option 'tsl' (did you mean 'tls'?)"},
    {"listen 8081 tls=1", 7, 17, "tls: bad value '1'"},
    {"listen 8081 tls_profile=legacy", 7, 25, "tls_profile: 'legacy' is not modern or compat"},
    {"listen 8081 tls redirect_https", 7, 8, "redirect_https belongs on a plain listener '8081'"},
    {"listen 8081 redirect_https=0", 7, 28, "redirect_https: '0' is out of range (1-65535)"},
    {"listen 8081 redirect_https=x", 7, 28, "redirect_https: 'x' is not a number (1-65535)"},
    {"pool", 7, 1, "pool needs a NAME 'pool'"},
    {"pool a/b", 7, 6, "bad pool name 'a/b': want 1-32 letters, digits, - _ ."},
    {"pool lan", 7, 6, "duplicate pool 'lan'"},
    {"pool x colour=red", 7, 8, "unknown pool option 'colour=red'"},
    {"pool x balanse=wrr", 7, 8, "unknown pool option 'balanse=wrr' (did you mean 'balance'?)"},
    {"pool x balance=rr", 7, 16, "balance: 'rr' is not wrr or leastconn"},
    {"pool x retries=11", 7, 16, "retries: '11' is out of range (0-10)"},
    {"pool x retries=two", 7, 16, "retries: 'two' is not a number (0-10)"},
    {"device", 7, 1, "device needs POOL IP:PORT 'device'"},
    {"device lna 10.0.0.5:80", 7, 8, "undefined pool 'lna' (defined: lan, cams)"},
    {"device lan cam..local:80", 7, 12, "bad device address 'cam..local:80': want IP:PORT or NAME:PORT"},
    {"device lan cam.local", 7, 12, "bad device address 'cam.local': want IP:PORT or NAME:PORT"},
    {"device lan cam.local:0", 7, 12, "bad device address 'cam.local:0': want IP:PORT or NAME:PORT"},
    {"device lan cam!.lan:80", 7, 12, "bad device address 'cam!.lan:80': want IP:PORT or NAME:PORT"},
    {"device lan -cam.lan:80", 7, 12, "bad device address '-cam.lan:80': want IP:PORT or NAME:PORT"},
    {"device lan cam-.lan:80", 7, 12, "bad device address 'cam-.lan:80': want IP:PORT or NAME:PORT"},
    {"pool x resolve=0", 7, 16, "resolve: '0' is out of range (1s-24h)"},
    {"pool x resolve=2d", 7, 16, "resolve: '2d' has an unknown unit (ms, s, m, h)"},
    {"device lan localhost:99999", 7, 12, "bad device address 'localhost:99999': want IP:PORT"},
    {"device lan 999.0.0.1:80", 7, 12, "bad device address '999.0.0.1:80': want IP:PORT"},
    {"device lan 10.0.0.5", 7, 12, "bad device address '10.0.0.5': want IP:PORT"},
    {"device lan [fe80::1", 7, 12, "bad device address '[fe80::1': want IP:PORT"},
    {"device lan 10.0.0.5:80 wieght=3", 7, 24, "unknown device option 'wieght=3' (did you mean 'weight'?)"},
    {"device lan 10.0.0.5:80 weight=three", 7, 31, "weight: 'three' is not a number (0-1000)"},
    {"device lan 10.0.0.5:80 weight=5000", 7, 31, "weight: '5000' is out of range (0-1000)"},
    {"device lan 10.0.0.5:80 weight=-1", 7, 31, "weight: '-1' is negative (0-1000)"},
    {"device lan 10.0.0.5:80 weight=", 7, 31, "weight: no value (0-1000)"},
    {"device lan 10.0.0.5:80 weight=3x", 7, 31, "weight: '3x' is not a number (0-1000)"},
    {"device lan 10.0.0.5:80 max_fails=1001", 7, 34, "max_fails: '1001' is out of range (0-1000)"},
    {"device lan 10.0.0.5:80 fail_timeout=25h", 7, 37, "fail_timeout: '25h' is out of range (0-24h)"},
    {"device lan 10.0.0.5:80 fail_timeout=1d", 7, 37, "fail_timeout: '1d' has an unknown unit (ms, s, m, h)"},
    {"device lan 10.0.0.5:80 backup=1", 7, 31, "backup: bad value '1'"},
    {"device lan 10.0.0.5:80 speed=9", 7, 24, "unknown device option 'speed=9'"},
#if RP_ENABLE_LIMITS && RP_MAX_UPSTREAM < 65535 && RP_MAX_CONNS < 65535
    {"device lan 10.0.0.5:80 max_conns=65535", 7, 24, "max_conns= over RP_MAX_UPSTREAM 'max_conns=65535' ("
     XSTR(RP_MAX_UPSTREAM) "): lower it or build with more"},
    {"pool q queue=65535", 7, 8, "queue= over RP_MAX_CONNS 'queue=65535' (" XSTR(RP_MAX_CONNS)
     "): lower it or build with more"},
#endif
#if RP_ENABLE_LIMITS
    {"device lan 10.0.0.5:80 max_conns=70000", 7, 34, "max_conns: '70000' is out of range (0-65535)"},
    {"device lan 10.0.0.5:80 max_conns=2 max_idle=3", 7, 36, "max_idle= over max_conns= 'max_idle=3': lower it or raise max_conns="},
    {"pool q queue_timeout=0", 7, 22, "queue_timeout: '0' is out of range (1ms-24h)"},
#endif
    {"device lan 10.0.0.5:80 tls", 7, 12, "a tls device needs ca=FILE (or verify=off) '10.0.0.5:80'"},
    {"device lan 10.0.0.5:80 verify=on", 7, 12, "ca=, sni=, verify= need the tls option '10.0.0.5:80'"},
    {"device lan 10.0.0.5:80 tls verify=on", 7, 12, "a tls device needs ca=FILE (or verify=off) '10.0.0.5:80'"},
    {"device lan 10.0.0.5:80 tls verify=maybe", 7, 35, "verify: 'maybe' is not on or off"},
    {"device lan 10.0.0.5:80 tls ca=/nonexistent/ca.pem", 7, 31, "cannot read CA file '/nonexistent/ca.pem': not found"},
    {"route pool=lna", 7, 12, "undefined pool 'lna' (defined: lan, cams)"},
    {"route path=/x", 7, 1, "route needs pool=NAME 'route'"},
    {"route pool=lan cache=maybe", 7, 22, "cache: 'maybe' is not on or off"},
    {"route path=x pool=lan", 7, 12, "path: 'x' is not a path starting with '/'"},
    {"route host= pool=lan", 7, 12, "host: no value"},
    {"route pool=lan pth=/x", 7, 16, "unknown route option 'pth=/x' (did you mean 'path'?)"},
    {"route pool=lan cache_ttl=2s", 7, 16, "cache_ttl= needs cache=on on the same route 'cache_ttl=2s'"},
    {"route pool=lan cache=off cache_ttl=2s", 7, 26, "cache_ttl= needs cache=on on the same route 'cache_ttl=2s'"},
    {"route pool=lan cache=on cache_ttl=1500ms", 7, 35, "cache_ttl is whole seconds (the cache counts age in seconds) '1500ms'"},
    {"route pool=lan cache=on cache_ttl=0", 7, 35, "cache_ttl: '0' is out of range (1s-720h)"},
    {"route pool=lan cache=on cache_ttl=721h", 7, 35, "cache_ttl: '721h' is out of range (1s-720h)"},
    {"route pool=lan cache=on cache_ttl=-2s", 7, 35, "cache_ttl: '-2s' is negative (1s-720h)"},
    {"route pool=lan cache=on cache_ttl=2d", 7, 35, "cache_ttl: '2d' has an unknown unit (ms, s, m, h)"},
    {"route pool=lan cache=on cache_ttl=", 7, 35, "cache_ttl: no value (1s-720h)"},
    {"route pool=lan cache=on cache_tl=5", 7, 25, "unknown route option 'cache_tl=5' (did you mean 'cache_ttl'?)"},
    {"timeout", 7, 1, "timeout needs NAME=DURATION 'timeout'"},
    {"timeout connect=3x", 7, 17, "connect: '3x' has an unknown unit (ms, s, m, h)"},
    {"timeout connect=1.5s", 7, 17, "connect: '1.5s' has junk after the number (1ms-24h)"},
    {"timeout connect=-3", 7, 17, "connect: '-3' is negative (1ms-24h)"},
    {"timeout connect=0", 7, 17, "connect: '0' is out of range (1ms-24h)"},
    {"timeout connect=25h", 7, 17, "connect: '25h' is out of range (1ms-24h)"},
    {"timeout connect=", 7, 17, "connect: no value (1ms-24h)"},
    {"timeout connect=99999999999999999999", 7, 17, "connect: '99999999999999999999' is out of range (1ms-24h)"},
    {"timeout conect=1s", 7, 9, "unknown timeout 'conect=1s' (did you mean 'connect'?)"},
    {"timeout forever=1", 7, 9, "unknown timeout 'forever=1'"},
    {"via", 7, 1, "via needs one NAME 'via'"},
    {"via a b", 7, 7, "via needs one NAME 'b'"},
    {"via a!", 7, 5, "bad via name 'a!': want 1-32 letters, digits, - _ ."},
    {"health", 7, 1, "health needs a POOL 'health'"},
    {"health lna", 7, 8, "undefined pool 'lna' (defined: lan, cams)"},
    {"health lan interval=50", 7, 21, "interval: '50' is out of range (100ms-24h)"},
    {"health lan timeout=11m", 7, 20, "timeout: '11m' is out of range (10ms-10m)"},
    {"health lan intervall=5s", 7, 12, "unknown health option 'intervall=5s' (did you mean 'interval'?)"},
    {"health lan path=hz", 7, 17, "path: 'hz' is not a path starting with '/'"},
    {"health lan rise=0", 7, 17, "rise: '0' is out of range (1-100)"},
    {"health lan expect=600", 7, 19, "expect: '600' is out of range (100-599)"},
    {"status", 7, 1, "status needs path=/PATH 'status'"},
    {"status allow=10.0.0.0/8", 7, 1, "status needs path=/PATH 'status'"},
    {"status path=s", 7, 13, "path: 's' is not a path starting with '/'"},
    {"users", 7, 1, "users needs NAME FILE 'users'"},
    {"users staff nofile", 7, 13, "cannot read users file 'nofile': not found"},
    {"users staff badpw", 7, 13, "users file 'badpw':2: user 'alice': $5$ hash must end in '$' and 43 characters of ./0-9A-Za-z"},
    {"users staff nobody", 7, 13, "users file 'nobody' has no user:hash line (nobody could log in)"},
    {"users st@ff pw", 7, 7, "bad users name 'st@ff': want 1-32 letters, digits, - _ ."},
    {"users lan pw extra", 7, 1, "users needs NAME FILE 'users'"},
    {"route pool=lan auth=nobody", 7, 21, "undefined users 'nobody' (define it above with a `users NAME FILE` line)"},
    {"route pool=lan realm=x", 7, 16, "realm= and pass_auth= need auth=NAME on the same route 'realm=x'"},
    {"route pool=lan pass_auth=on", 7, 16, "realm= and pass_auth= need auth=NAME on the same route 'pass_auth=on'"},
    {"route pool=lan allow=10.0.0.0/40", 7, 16, "bad allow network 'allow=10.0.0.0/40' (want ADDR[/BITS], e.g. 192.168.1.0/24 or fd00::/8)"},
    {"route pool=lan allow=1.0.0.0/8 allow=2.0.0.0/8 allow=3.0.0.0/8 allow=4.0.0.0/8 allow=5.0.0.0/8", 7, 80, "at most 4 allow= networks 'allow=5.0.0.0/8'"},
    {"listen 81 proxy_from=10.0.0.1", 7, 8, "proxy_from= needs proxy_protocol on the same listen line '81'"},
    {"listen 81 proxy_protocol proxy_from=10.0.0", 7, 26, "bad proxy_from network 'proxy_from=10.0.0' (want ADDR[/BITS], e.g. 192.168.1.0/24 or fd00::/8)"},
    {"listen 81 proxy_protocol=on", 7, 11, "proxy_protocol takes no value 'proxy_protocol=on'"},
    {"client_limit", 7, 1, "client_limit needs conns=N, rate=N/s|N/m or burst=N 'client_limit'"},
    {"client_limit rate=5", 7, 14, "rate: want N/s or N/m (requests per second or minute) 'rate=5'"},
    {"client_limit rate=5/h", 7, 14, "rate: want N/s or N/m (requests per second or minute) 'rate=5/h'"},
    {"client_limit rate=0/s", 7, 19, "rate: '0' is out of range (1-100000)"},
    {"client_limit burst=3", 7, 1, "burst= needs rate= on the same line 'client_limit'"},
    {"client_limit conns=0", 7, 20, "conns: '0' is out of range (1-1024)"},
    {"client_limit speed=1", 7, 14, "unknown client_limit option 'speed=1'"},
    {"route pool=lan share=maybe", 7, 22, "share: bad value 'maybe'"},
    {"route pool=lan share_linger=5s", 7, 16, "share_linger= needs share=on on the same route 'share_linger=5s'"},
    {"route pool=lan share=on share_linger=2h", 7, 38, "share_linger: '2h' is out of range (0-1h)"},
    {"route pool=lan share=on cache=on", 7, 16, "share=on and cache=on on one route: a live stream is not cached, choose one 'share=on'"},
    {"status path=/s realm=x", 7, 1, "realm= needs auth=NAME on the status line 'status'"},
    {"status path=/s auth=nobody", 7, 21, "undefined users 'nobody' (define it above with a `users NAME FILE` line)"},
    {"status path=/s alow=1.2.3.4", 7, 16, "unknown status option 'alow=1.2.3.4' (did you mean 'allow'?)"},
    {"status path=/s allow=10.0.0.0/33", 7, 16, "bad allow network 'allow=10.0.0.0/33' (want ADDR[/BITS], e.g. 192.168.1.0/24 or fd00::/8)"},
    {"status path=/s allow=banana", 7, 16, "bad allow network 'allow=banana' (want ADDR[/BITS], e.g. 192.168.1.0/24 or fd00::/8)"},
    {"status path=/s allow=1.1.1.1 allow=1.1.1.2 allow=1.1.1.3 allow=1.1.1.4 allow=1.1.1.5", 7, 72, "at most 4 allow= networks 'allow=1.1.1.5'"},
    {"cache", 7, 1, "cache needs max_object=, heuristic=, ignore_client_nocache= or lock_timeout= 'cache'"},
    {"cache max_object=2m", 7, 18, "max_object: '2m' is out of range (1-1m)"},
    {"cache max_object=2kb", 7, 18, "max_object: '2kb' has an unknown unit (k, m)"},
    {"cache max_object=0", 7, 18, "max_object: '0' is out of range (1-1m)"},
    {"cache lock_timout=1s", 7, 7, "unknown cache option 'lock_timout=1s' (did you mean 'lock_timeout'?)"},
    {"cache heuristic=yes", 7, 17, "heuristic: 'yes' is not on or off"},
    {"cache lock_timeout=11m", 7, 20, "lock_timeout: '11m' is out of range (0-10m)"},
    {"tls", 7, 1, "tls needs cert=FILE key=FILE 'tls'"},
    {"tls cert=a.pem", 7, 1, "tls needs cert=FILE key=FILE 'tls'"},
    {"tls cert=/nonexistent/a.pem key=/nonexistent/a.key", 7, 10, "cannot read certificate file '/nonexistent/a.pem': not found"},
    {"tls cert=a.pem key=a.key client_auth=require", 7, 1, "client_auth needs client_ca=FILE 'tls'"},
    {"tls cert=a.pem key=a.key colour=blue", 7, 26, "unknown tls option 'colour=blue'"},
    {"tls cert=a.pem key=a.key client_auth=maybe", 7, 38, "client_auth: 'maybe' is not require or optional"},
    {"a b c d e f g h i j k l m n o p q", 7, 1, "too many words on one line 'a'"},
    {"device lan 10.0.0.5:80 weight=\"3", 7, 31, "unterminated quoted value: end it with \" '\"3'"},
    {"device lan 10.0.0.5:80 weight=\"three\"", 7, 24, "weight: 'three' is not a number (0-1000)"},
    {"device lan 10.0.0.5:80 weight=\"1#0\"", 7, 24, "weight: '1#0' is not a number (0-1000)"},
    {"device lan 10.0.0.5:80 weight=\"\\x\"", 7, 32, "in a quoted value only \\\" and \\\\ are escapes: write \\\\ for a backslash '\\'"},
    {"device lan 10.0.0.5:80 weight=\"\x01\"", 7, 32, "control character in a quoted value '\x01'"},
    {"pool \"a b\" colour=red", 7, 6, "bad pool name 'a b': want 1-32 letters, digits, - _ ."},
    {"route path=/cam1 pool=lan rewrite=/", 7, 27, "rewrite= needs a path= ending in '/' 'rewrite=/' (so /cam10/ is not /cam1/)"},
    {"route pool=lan rewrite=/", 7, 16, "rewrite= needs a path= ending in '/' 'rewrite=/' (so /cam10/ is not /cam1/)"},
    {"route path=/cam1/ pool=lan rewrite=/x", 7, 28, "bad rewrite= prefix 'rewrite=/x' (a path ending in '/': / or /api/v2/)"},
    {"route path=/cam1/ pool=lan rewrite=x/", 7, 28, "bad rewrite= prefix 'rewrite=x/' (a path ending in '/': / or /api/v2/)"},
    {"route path=/cam1/ pool=lan rewrite=/a?b/", 7, 28, "bad rewrite= prefix 'rewrite=/a?b/' (a path ending in '/': / or /api/v2/)"},
    {"route path=/cam1/ pool=lan rewrte=/", 7, 28, "unknown route option 'rewrte=/' (did you mean 'rewrite'?)"},
    {"pool p host=cam.local:80", 7, 8, "bad pool host 'host=cam.local:80' (a name or address, no port, no '*')"},
    {"pool p host=*.local", 7, 8, "bad pool host 'host=*.local' (a name or address, no port, no '*')"},
    {"pool p host=", 7, 8, "bad pool host 'host=' (a name or address, no port, no '*')"},
    {"headers secure response set Content-Length \"5\"", 7, 29, "header rules cannot touch 'Content-Length': rproxy writes it (framing, hop-by-hop, Host)"},
    {"headers secure request del Transfer-Encoding", 7, 28, "header rules cannot touch 'Transfer-Encoding': rproxy writes it (framing, hop-by-hop, Host)"},
    {"headers secure request add connection \"x\"", 7, 28, "header rules cannot touch 'connection': rproxy writes it (framing, hop-by-hop, Host)"},
    {"headers secure request set Host \"a\"", 7, 28, "header rules cannot touch 'Host': rproxy writes it (framing, hop-by-hop, Host)"},
    {"headers secure response put Server \"x\"", 7, 25, "unknown header action 'put' (set, add or del)"},
    {"headers secure sideways set A \"b\"", 7, 16, "unknown header rule direction 'sideways' (request or response)"},
    {"headers secure response set Server", 7, 29, "set and add need one VALUE (quote it) 'Server'"},
    {"headers secure response del Server \"x\"", 7, 36, "del takes no value 'x'"},
    {"headers secure response set \"Bad Name\" x", 7, 29, "bad header field name 'Bad Name' (letters, digits, -, at most 64)"},
    {"headers secure response set X-A \"unterminated", 7, 33, "unterminated quoted value: end it with \" '\"unterminated'"},
    {"headers secure", 7, 9, "headers needs NAME request|response set|add|del FIELD [\"VALUE\"] 'secure'"},
    {"headers se!cure response del Server", 7, 9, "bad header rule set name 'se!cure': want 1-32 letters, digits, - _ ."},
    {"route pool=lan headers=a!b", 7, 16, "bad header rule set name 'headers=a!b': want 1-32 letters, digits, - _ ."},
    {"listen 81 headerz=a", 7, 11, "unknown listen option 'headerz=a' (did you mean 'headers'?)"},
    {"route pool=lan stream_idle=-1s", 7, 28, "stream_idle: '-1s' is negative (0-24h)"},
    {"route pool=lan stream_idle=25h", 7, 28, "stream_idle: '25h' is out of range (0-24h)"},
    {"route pool=lan device_timeout=0", 7, 31, "device_timeout: '0' is out of range (1ms-24h)"},
    {"route pool=lan stream_idl=1s", 7, 16, "unknown route option 'stream_idl=1s' (did you mean 'stream_idle'?)"},
    {"timeout tunnel=0", 7, 16, "tunnel: '0' is out of range (1ms-24h)"},
    {"timeout tunel=1s", 7, 9, "unknown timeout 'tunel=1s' (did you mean 'tunnel'?)"},
    {"error_page 404", 7, 12, "error_page needs STATUS... FILE '404'"},
    {"error_page 404 /nonexistent/e.html", 7, 16, "cannot read error page '/nonexistent/e.html': not found"},
    {"error_page 399 e.html", 7, 12, "status: '399' is out of range (400-599)"},
    {"error_page 404 50x e.html", 7, 16, "status: '50x' is not a number (400-599)"},
    {"error_page 404 404 e.html", 7, 16, "status already has an error_page '404'"},
};

/* Whole texts: errors found after the last line, or about the text. */
static const struct {
    const char *text;
    size_t len;
    int at, col;
    const char *msg;
} msg_text_cases[] = {
    {S("pool a\ndevice a 127.0.0.1:1\nroute pool=a\n"), 3, 0, "no listen line"},
    {S("listen 80\npool a\ndevice a 127.0.0.1:1\n"), 3, 0, "no route line"},
    {S("listen 80\npool a\npool b\ndevice a 127.0.0.1:1\nroute pool=a\n"), 3, 0, "pool has no devices 'b'"},
    {S("listen 80\npool a\ndevice a 127.0.0.1:1 backup\nroute pool=a\n"), 2, 0, "pool has only backup devices 'a'"},
    {S("listen 80\ndevice a 127.0.0.1:1\n"), 2, 8, "undefined pool 'a' (none defined above)"},
    {S("listen 80\npool a\n\0"), 3, 0, "NUL byte in config"},
    {S("listen 80 tls\npool a\ndevice a 127.0.0.1:1\nroute pool=a\n"), 4, 0,
     "a tls listener needs a `tls cert=FILE key=FILE` line"},
    {S("listen 80 redirect_https\npool a\ndevice a 127.0.0.1:1\nroute pool=a\n"), 4, 0,
     "redirect_https without a tls listener needs =PORT"},
    {S("listen 80\npool a\ndevice a 127.0.0.1:1\nroute pool=a\nhealth a\nhealth a\n"), 6, 8,
     "duplicate health line for pool 'a'"},
    {S("listen 80\npool a\ndevice a 127.0.0.1:1\nroute pool=a\nstatus path=/s\nstatus path=/t\n"), 6, 1,
     "duplicate status line 'status'"},
    {S("listen 80\n\tpool  a   retries=zz\n"), 2, 20, "retries: 'zz' is not a number (0-10)"},
    {S("listen 80\npool a\ndevice a 127.0.0.1:1\nusers staff pw\nroute pool=a auth=staff realm=\"\"\n"), 5, 25, "realm needs 1-64 characters (quote it: realm=\"Camera 1\")"},
    {S("listen 80\npool a\ndevice a 127.0.0.1:1\nusers staff pw\nusers staff pw\n"), 5, 7, "duplicate users 'staff'"},
    {S("listen 80 headers=sec\npool a\ndevice a 127.0.0.1:1\nroute pool=a headers=sec2\nheaders sec response del Server\n"), 4, 0, "header rule set has no `headers` line 'sec2' (add `headers NAME response set FIELD \"VALUE\"`)"},
};

static void
check_msg(const char *name, const char *text, size_t len, int at, int col, const char *msg)
{
    rp_proxy *p;
    rp_cfg_error e;
    int rc = parse(&p, text, len, &e);
    if (CHECK_INT(rc, RP_ECONFIG, "msg: %s: refused", name)) {
        CHECK_STR(e.msg, msg, "msg: %s: message", name);
        CHECK_INT(e.line, at, "msg: %s: line", name);
        CHECK_INT(e.col, col, "msg: %s: column", name);
    }
    fp_proxy_free(p);
}

static void
test_messages(void)
{
    static char buf[1024];
    static const char pw[] = "alice:$5$abcdefgh$gruCpC7VkOTspMQTTSAR8mtlO9Upms.fwqE5y16JVM.\n";
    static const char badpw[] = "# staff\nalice:$5$abcdefgh$tooshort\n";
    size_t i;
    fp_blob_add("pw", pw, sizeof(pw) - 1);
    fp_blob_add("badpw", badpw, sizeof(badpw) - 1);
    fp_blob_add("nobody", "# no users\n", 11);
    for (i = 0; i < sizeof msg_cases / sizeof msg_cases[0]; i++) {
        int n = snprintf(buf, sizeof buf, "%s%s\n", BASE6, msg_cases[i].line);
        check_msg(msg_cases[i].line, buf, (size_t)n, msg_cases[i].at, msg_cases[i].col,
                  msg_cases[i].msg);
    }
    for (i = 0; i < sizeof msg_text_cases / sizeof msg_text_cases[0]; i++)
        check_msg(msg_text_cases[i].msg, msg_text_cases[i].text, msg_text_cases[i].len,
                  msg_text_cases[i].at, msg_text_cases[i].col, msg_text_cases[i].msg);
    /* the list of defined pools is cut with "..." where the message ends */
    {
        int n = snprintf(buf, sizeof buf, "listen 80\n");
        int k;
        for (k = 0; k < RP_MAX_POOLS; k++)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "pool pool-number-%d-with-a-long-name\n", k);
        n += snprintf(buf + n, sizeof buf - (size_t)n, "route pool=nope\n");
        check_msg("many defined pools", buf, (size_t)n, RP_MAX_POOLS + 2, 12,
                  "undefined pool 'nope' (defined: pool-number-0-with-a-long-name, pool-number-1-with-a-long-name, "
                  "pool-number-2-with-a-long-name, pool-number-3-with-a-long-name, ...)");
    }
}

/* ==== durations and sizes (cfg_qty) ==== */

static const struct {
    const char *in;
    int kind, rc;
    uint64_t want;
} qty_cases[] = {
    {"0", CFG_NUM, RP_OK, 0},
    {"1000", CFG_NUM, RP_OK, 1000},
    {"007", CFG_NUM, RP_OK, 7},
    {"3s", CFG_NUM, CFG_QNOTNUM, 0},
    {"three", CFG_NUM, CFG_QNOTNUM, 0},
    {"-1", CFG_NUM, CFG_QNEG, 0},
    {"-", CFG_NUM, CFG_QNOTNUM, 0},
    {"+1", CFG_NUM, CFG_QNOTNUM, 0},
    {"", CFG_NUM, CFG_QEMPTY, 0},
    {"250", CFG_MS, RP_OK, 250},
    {"250ms", CFG_MS, RP_OK, 250},
    {"3s", CFG_MS, RP_OK, 3000},
    {"3S", CFG_MS, RP_OK, 3000},
    {"2m", CFG_MS, RP_OK, 120000},
    {"24h", CFG_MS, RP_OK, 86400000},
    {"0s", CFG_MS, RP_OK, 0},
    {"1d", CFG_MS, CFG_QUNIT, 0},
    {"5sec", CFG_MS, CFG_QUNIT, 0},
    {"1.5s", CFG_MS, CFG_QJUNK, 0},
    {"3s ", CFG_MS, CFG_QJUNK, 0},
    {"3s5", CFG_MS, CFG_QJUNK, 0},
    {"-3s", CFG_MS, CFG_QNEG, 0},
    {"s", CFG_MS, CFG_QNOTNUM, 0},
    {"", CFG_MS, CFG_QEMPTY, 0},
    {"1000000000000", CFG_MS, RP_OK, 1000000000000ull},
    {"1000000000001", CFG_MS, CFG_QBIG, 0},
    {"1000000000000h", CFG_MS, RP_OK, 3600000000000000000ull},
    {"99999999999999999999999999h", CFG_MS, CFG_QBIG, 0},
    {"10", CFG_SEC, RP_OK, 10000},
    {"10s", CFG_SEC, RP_OK, 10000},
    {"500ms", CFG_SEC, RP_OK, 500},
    {"1h", CFG_SEC, RP_OK, 3600000},
    {"4096", CFG_SIZE, RP_OK, 4096},
    {"4k", CFG_SIZE, RP_OK, 4096},
    {"4K", CFG_SIZE, RP_OK, 4096},
    {"2m", CFG_SIZE, RP_OK, 2097152},
    {"2kb", CFG_SIZE, CFG_QUNIT, 0},
    {"2s", CFG_SIZE, CFG_QUNIT, 0},
    {"2g", CFG_SIZE, CFG_QUNIT, 0},
    {"2k!", CFG_SIZE, CFG_QJUNK, 0},
    {"-2k", CFG_SIZE, CFG_QNEG, 0},
};

static void
test_qty(void)
{
    size_t i;
    for (i = 0; i < sizeof qty_cases / sizeof qty_cases[0]; i++) {
        size_t n = strlen(qty_cases[i].in);
        rp_str s;
        uint64_t v = 12345;
        int rc;
        s.p = guard_place(qty_cases[i].in, n), s.n = n;
        rc = cfg_qty(s, qty_cases[i].kind, &v);
        CHECK_INT(rc, qty_cases[i].rc, "qty: '%s' kind %d", qty_cases[i].in, qty_cases[i].kind);
        if (rc == RP_OK)
            CHECK(v == qty_cases[i].want, "qty: '%s' kind %d is %llu (got %llu)", qty_cases[i].in,
                  qty_cases[i].kind, (unsigned long long)qty_cases[i].want, (unsigned long long)v);
        else
            CHECK(v == 12345, "qty: '%s': *out untouched on error", qty_cases[i].in);
    }
}

/* Units land in the fields: timeouts, health, fail_timeout, cache. */
static void
test_units_applied(void)
{
    static const char text[] =
        "listen 80\npool a\ndevice a 127.0.0.1:1 fail_timeout=90s\ndevice a 127.0.0.1:2 fail_timeout=7\n"
        "route pool=a\nroute path=/s pool=a cache=on cache_ttl=2\nroute path=/m pool=a cache=on cache_ttl=5m\n"
        "timeout connect=3s device=2m client_idle=1h client_header=250ms device_idle=900\n"
        "health a interval=10s timeout=1500ms\ncache max_object=64k lock_timeout=2s\n";
    rp_proxy *p;
    rp_cfg_error e;
    const rp_config *c;
    if (!CHECK_INT(parse(&p, text, sizeof text - 1, &e), RP_OK, "units: parses")) {
        tap_diag("line %d: %s", e.line, e.msg);
        fp_proxy_free(p);
        return;
    }
    c = &p->cfg;
    CHECK_INT(c->devices[0].fail_timeout_ms, 90000, "units: fail_timeout=90s");
    CHECK_INT(c->devices[1].fail_timeout_ms, 7000, "units: fail_timeout=7 (bare: seconds)");
    CHECK_INT(c->t_connect, 3000, "units: connect=3s");
    CHECK_INT(c->t_device, 120000, "units: device=2m");
    CHECK_INT(c->t_client_idle, 3600000, "units: client_idle=1h");
    CHECK_INT(c->t_client_header, 250, "units: client_header=250ms");
    CHECK_INT(c->t_device_idle, 900, "units: device_idle=900 (bare: ms)");
    CHECK_INT(c->pools[0].interval_ms, 10000, "units: health interval=10s");
    CHECK_INT(c->pools[0].probe_timeout_ms, 1500, "units: health timeout=1500ms");
    CHECK_INT(c->cache_max_object, 65536, "units: cache max_object=64k");
    CHECK_INT(c->cache_lock_ms, 2000, "units: cache lock_timeout=2s");
    CHECK_INT(c->routes[0].cache_ttl, 0, "units: no cache_ttl: 0");
    CHECK_INT(c->routes[1].cache_ttl, 2, "units: cache_ttl=2 (bare: seconds) is 2 s");
    CHECK_INT(c->routes[2].cache_ttl, 300, "units: cache_ttl=5m is 300 s");
    fp_proxy_free(p);
}

/* ==== addresses ==== */

static const struct {
    const char *name;
    const char *in;
    size_t len;
    int need_port;
    int rc;
    int family;
    const char *ip; /* 4 or 16 bytes, for RP_OK */
    unsigned port;
} addr_cases[] = {
    {"ipv4 with port", S("127.0.0.1:80"), 1, RP_OK, 4, "\x7f\0\0\x01", 80},
    {"ipv4 port 65535", S("10.1.2.3:65535"), 1, RP_OK, 4, "\x0a\x01\x02\x03", 65535},
    {"ipv4 no port, optional", S("10.0.0.5"), 0, RP_OK, 4, "\x0a\0\0\x05", 0},
    {"ipv4 port, optional", S("10.0.0.5:8080"), 0, RP_OK, 4, "\x0a\0\0\x05", 8080},
    {"0.0.0.0", S("0.0.0.0:1"), 1, RP_OK, 4, "\0\0\0\0", 1},
    {"255.255.255.255", S("255.255.255.255:2"), 1, RP_OK, 4, "\xff\xff\xff\xff", 2},
    {"localhost", S("localhost:9001"), 1, RP_OK, 4, "\x7f\0\0\x01", 9001},
    {"ipv6 loopback", S("[::1]:8080"), 1, RP_OK, 6, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 8080},
    {"ipv6 full", S("[2001:db8::1]:443"), 1, RP_OK, 6, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 443},
    {"ipv6 any, no port", S("[::]"), 0, RP_OK, 6, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 0},
    {"ipv6 8 groups", S("[1:2:3:4:5:6:7:8]:1"), 1, RP_OK, 6, "\0\x01\0\x02\0\x03\0\x04\0\x05\0\x06\0\x07\0\x08", 1},
    {"port required", S("10.0.0.5"), 1, RP_EINVAL, 0, NULL, 0},
    {"empty port", S("10.0.0.5:"), 1, RP_EINVAL, 0, NULL, 0},
    {"port 65536", S("10.0.0.5:65536"), 1, RP_EINVAL, 0, NULL, 0},
    {"port 99999999999", S("10.0.0.5:99999999999"), 1, RP_EINVAL, 0, NULL, 0},
    {"port letters", S("10.0.0.5:8a"), 1, RP_EINVAL, 0, NULL, 0},
    {"port negative", S("10.0.0.5:-1"), 1, RP_EINVAL, 0, NULL, 0},
    {"octet 256", S("256.0.0.1:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"three octets", S("1.2.3:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"five octets", S("1.2.3.4.5:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"empty octet", S("1..3.4:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"hostname", S("example.com:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"empty", S(""), 0, RP_EINVAL, 0, NULL, 0},
    {"ipv6 unclosed", S("[::1:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"ipv6 two ::", S("[1::2::3]:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"ipv6 bad group", S("[12345::1]:80"), 1, RP_EINVAL, 0, NULL, 0},
    {"trailing junk", S("10.0.0.5:80x"), 1, RP_EINVAL, 0, NULL, 0},
};

static void
test_addr_parse(void)
{
    size_t i;
    for (i = 0; i < sizeof addr_cases / sizeof addr_cases[0]; i++) {
        rp_addr a;
        const char *b = guard_place(addr_cases[i].in, addr_cases[i].len);
        int rc;
        memset(&a, 0xa5, sizeof a);
        rc = rp_addr_parse(&a, b, addr_cases[i].len, addr_cases[i].need_port);
        if (!CHECK_INT(rc, addr_cases[i].rc, "addr_parse: %s", addr_cases[i].name) || rc != RP_OK)
            continue;
        CHECK_INT(a.family, addr_cases[i].family, "addr_parse: %s: family", addr_cases[i].name);
        CHECK(memcmp(a.ip, addr_cases[i].ip, a.family == 6 ? 16 : 4) == 0, "addr_parse: %s: ip",
              addr_cases[i].name);
        CHECK_INT(a.port, addr_cases[i].port, "addr_parse: %s: port", addr_cases[i].name);
    }
    /* n is respected: "10.0.0.5:8080junk" cut at 13 bytes -> port 8080 */
    {
        static const char in[] = "10.0.0.5:8080junk";
        rp_addr a;
        const char *b = guard_place(in, sizeof in - 1);
        CHECK_INT(rp_addr_parse(&a, b, 13, 1), RP_OK, "addr_parse: stops at n");
        CHECK_INT(a.port, 8080, "addr_parse: stops at n: port");
        CHECK_INT(rp_addr_parse(&a, b, 10, 1), RP_OK, "addr_parse: \"10.0.0.5:8\"");
        CHECK_INT(a.port, 8, "addr_parse: \"10.0.0.5:8\": port");
    }
}

static const struct {
    int family;
    const char *ip;
    const char *want;
} fmt_cases[] = {
    {4, "\x7f\0\0\x01", "127.0.0.1"},
    {4, "\0\0\0\0", "0.0.0.0"},
    {4, "\xff\xff\xff\xff", "255.255.255.255"},
    {4, "\x0a\x00\x00\x05", "10.0.0.5"},
    {6, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", "::1"},
    {6, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", "::"},
    {6, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", "2001:db8::1"},
    {6, "\x20\x01\x0d\xb8\0\0\0\0\0\x01\0\0\0\0\0\x01", "2001:db8::1:0:0:1"},
    {6, "\x20\x01\x0d\xb8\0\0\0\x01\0\x01\0\x01\0\x01\0\x01", "2001:db8:0:1:1:1:1:1"},
    {6, "\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\0\0\0", "fe80::"},
    {6, "\0\x01\0\x02\0\x03\0\x04\0\x05\0\x06\0\x07\0\x08", "1:2:3:4:5:6:7:8"},
    {6, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
};

static void
test_addr_format(void)
{
    size_t i;
    for (i = 0; i < sizeof fmt_cases / sizeof fmt_cases[0]; i++) {
        rp_addr a;
        char *out = guard_buf(46);
        size_t n;
        memset(&a, 0, sizeof a);
        a.family = (uint8_t)fmt_cases[i].family;
        memcpy(a.ip, fmt_cases[i].ip, a.family == 6 ? 16 : 4);
        a.port = 1234;
        n = rp_addr_format(&a, out, 46);
        CHECK_STR(out, fmt_cases[i].want, "addr_format: %s", fmt_cases[i].want);
        CHECK_INT(n, strlen(fmt_cases[i].want), "addr_format: %s: length", fmt_cases[i].want);
    }
    /* a small cap: nothing written past it, still NUL-ended */
    {
        rp_addr a;
        char *out = guard_buf(5);
        memset(&a, 0, sizeof a);
        a.family = 4;
        memcpy(a.ip, "\xc0\xa8\x01\x01", 4);
        rp_addr_format(&a, out, 5);
        CHECK(memchr(out, '\0', 5) != NULL, "addr_format: cap 5 truncates, NUL-ended, no overflow");
    }
    /* round trip through the bracketed form */
    {
        rp_addr a, b;
        char out[64];
        size_t n;
        CHECK_INT(rp_addr_parse(&a, "[2001:db8:0:0:1::]:80", 21, 1), RP_OK, "addr: parse [2001:db8:0:0:1::]:80");
        out[0] = '[';
        n = rp_addr_format(&a, out + 1, sizeof out - 2);
        CHECK_STR(out + 1, "2001:db8:0:0:1::", "addr: format picks the longest zero run");
        out[n + 1] = ']';
        memset(&b, 0, sizeof b);
        CHECK_INT(rp_addr_parse(&b, out, n + 2, 0), RP_OK, "addr: parse(format(x)) round trip");
        CHECK(memcmp(a.ip, b.ip, 16) == 0 && b.family == 6, "addr: round trip same address");
    }
}

static const tap_test tests[] = {
    TAP_TEST(good),
    TAP_TEST(minimal),
    TAP_TEST(ok_variants),
    TAP_TEST(bad),
    TAP_TEST(len_respected),
    TAP_TEST(messages),
    TAP_TEST(qty),
    TAP_TEST(units_applied),
    TAP_TEST(addr_parse),
    TAP_TEST(addr_format),
};

int
main(int argc, char **argv)
{
    fp_log_quiet(1);
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

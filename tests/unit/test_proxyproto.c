/*
 * test_proxyproto.c -- src/21-proxyproto.c (PROXY protocol v1 and v2
 * headers, HAProxy's specification), white-box through src/rp_int.h.
 *
 * SPDX-License-Identifier: MIT
 *
 * Every input sits right before a guard page (guard.h), so a read past the
 * bytes received so far crashes.  Each valid header is also fed byte by
 * byte: every proper prefix must say "need more" (RP_EAGAIN), and bytes
 * after the header (the HTTP request) must not change its length.  Each
 * malformed one must be refused as soon as its first bad byte is there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "tap.h"
#include "guard.h"
#include "rp_int.h"

static long
parse(const void *b, size_t n, rp_addr *a)
{
    return proxy_header_parse((const uint8_t *)guard_place(b, n), n, a);
}

/* A test name without CR, LF or NUL (TAP is line-based). */
static const char *
nm(const char *what)
{
    static char t[4][160];
    static int at;
    char *o = t[at++ % 4];
    size_t i;
    for (i = 0; what[i] && i < sizeof t[0] - 1; i++)
        o[i] = (unsigned char)what[i] < 0x20 ? '.' : what[i];
    o[i] = 0;
    return o;
}

static int
addr_is(const rp_addr *a, const char *ip, int port)
{
    char t[64];
    if (!ip)
        return a->family == 0;
    rp_addr_format(a, t, sizeof t);
    return strcmp(t, ip) == 0 && a->port == port;
}

/* A whole header: each prefix needs more, the header alone and with a
 * request after it give its length and the source. */
static void
good(const char *what, const uint8_t *h, size_t n, const char *ip, int port)
{
    static uint8_t b[1024];
    rp_addr a;
    size_t k;
    long rc;
    int prefixes_ok = 1;
    what = nm(what);
    for (k = 0; k < n; k++) {
        rc = parse(h, k, &a);
        if (rc != RP_EAGAIN) {
            CHECK_INT(rc, RP_EAGAIN, "%s: %zu of %zu bytes need more", what, k, n);
            prefixes_ok = 0;
            break;
        }
    }
    if (prefixes_ok)
        CHECK(1, "%s: every prefix needs more", what);
    rc = parse(h, n, &a);
    CHECK_INT(rc, (long)n, "%s: header length", what);
    CHECK(addr_is(&a, ip, port), "%s: source %s:%d (family %d)", what, ip ? ip : "none", port, a.family);
    memcpy(b, h, n);
    memcpy(b + n, "GET / HTTP/1.1\r\n\r\n", 18);
    rc = parse(b, n + 18, &a);
    CHECK_INT(rc, (long)n, "%s: with a request after it", what);
    CHECK(addr_is(&a, ip, port), "%s: same source with a request after it", what);
}

/* Malformed: refused with all its bytes (and no address left behind), and
 * already with the first `at` (where the first bad byte is), while the
 * ones before need more. */
static void
bad(const char *what, const uint8_t *h, size_t n, size_t at)
{
    rp_addr a;
    what = nm(what);
    memset(&a, 0x55, sizeof a);
    CHECK_INT(parse(h, n, &a), RP_EINVAL, "%s: malformed", what);
    CHECK(a.family == 0 && a.port == 0 && a.ip[0] == 0, "%s: no address", what);
    if (at) {
        CHECK_INT(parse(h, at, &a), RP_EINVAL, "%s: refused at byte %zu", what, at);
        CHECK_INT(parse(h, at - 1, &a), RP_EAGAIN, "%s: not before", what);
    }
}

#define GOOD1(s, ip, port) good(s, (const uint8_t *)(s), sizeof(s) - 1, ip, port)

static void
test_v1_good(void)
{
    GOOD1("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "192.168.0.1", 56324);
    GOOD1("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", "255.255.255.255", 65535);
    GOOD1("PROXY TCP4 0.0.0.0 10.0.0.1 0 80\r\n", "0.0.0.0", 0);
    GOOD1("PROXY TCP6 2001:db8::1 2001:db8::2 40000 8080\r\n", "2001:db8::1", 40000);
    GOOD1("PROXY TCP6 ::1 ::1 1 2\r\n", "::1", 1);
    GOOD1("PROXY TCP6 FFFF:ffff:ffff:ffff:ffff:ffff:ffff:fffe ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535); /* 104 bytes, the longest TCP6 */
    /* an IPv4 client on HAProxy's v6 socket: the IPv4 address it maps */
    GOOD1("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:10.0.0.1 5000 80\r\n", "192.0.2.7", 5000);
    GOOD1("PROXY TCP6 ::FFFF:192.0.2.7 ::1 5000 80\r\n", "192.0.2.7", 5000);
    GOOD1("PROXY TCP6 ::ffff:c000:207 ::1 5000 80\r\n", "192.0.2.7", 5000);
    GOOD1("PROXY TCP6 ::fffe:c000:207 ::1 5000 80\r\n", "::fffe:c000:207", 5000);
    GOOD1("PROXY UNKNOWN\r\n", NULL, 0);
    GOOD1("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
          NULL, 0); /* 107 bytes: the worst case the specification names */
    GOOD1("PROXY UNKNOWN whatever  the sender  put here\r\n", NULL, 0);
}

static void
test_v1_bad(void)
{
    static const struct {
        const char *h;
        size_t at; /* the first bytes that already show it (0: only all of it) */
    } t[] = {
        {"GET / HTTP/1.1\r\n\r\n", 1},
        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 1},
        {"PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 5},
        {"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", 6},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31},          /* bare LF */
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", 32},         /* bare CR */
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", 32},
        {"PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 19},
        {"PROXY UNKNOWN \xff\r\n", 15},                 /* printable ASCII only, even here */
        {"PROXY UNKNOWN \x7f\r\n", 15},
        {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0},
        {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 0},
        {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 0},
        {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 0},
        {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 0},
        {"PROXY UNKNOWNX\r\n", 0},
        {"PROXY \r\n", 0},
        {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 0},        /* leading zero */
        {"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", 0},
        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 0},
        {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8x 1 2\r\n", 0},
        {"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 0},
        {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 0},
        {"PROXY TCP6 ::1 1.2.3.4 1 2\r\n", 0},
        {"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 0},
        {"PROXY TCP6 ::1::2 ::1 1 2\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 099999\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", 0},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", 0},
        {"PROXY TCP6 ::ffff:1.2.3.04 ::1 1 2\r\n", 0},
        {"PROXY TCP6 ::ffff:1.2.3 ::1 1 2\r\n", 0},
        {"PROXY TCP6 ::1:1.2.3.4 ::1 1 2\r\n", 0},
        {"PROXY TCP4 ::ffff:1.2.3.4 5.6.7.8 1 2\r\n", 0},
    };
    size_t i;
    char line[200];
    for (i = 0; i < TAP_COUNT(t); i++) {
        size_t n = strlen(t[i].h);
        if (strstr(t[i].h, "1.2.3.4") && n == 18)
            n = 33; /* the one with a NUL */
        bad(t[i].h, (const uint8_t *)t[i].h, n, t[i].at);
    }
    /* no CRLF in the first 107 bytes: known at 106 without a CR */
    memset(line, 'a', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 106, "\r\n", 2);
    bad("108-byte UNKNOWN line", (const uint8_t *)line, 108, 106);
    memcpy(line + 105, "\r\n", 2);
    good("107-byte UNKNOWN line", (const uint8_t *)line, 107, NULL, 0);
}

/* A v2 header: signature, ver/cmd, fam, length, then body. */
static size_t
v2(uint8_t *b, int vercmd, int fam, const uint8_t *body, size_t n)
{
    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    memcpy(b, sig, 12);
    b[12] = (uint8_t)vercmd, b[13] = (uint8_t)fam;
    b[14] = (uint8_t)(n >> 8), b[15] = (uint8_t)n;
    if (n)
        memcpy(b + 16, body, n);
    return 16 + n;
}

static void
test_v2_good(void)
{
    static uint8_t b[RP_PROXY_V2_MAX + 64], body[RP_PROXY_V2_MAX];
    /* IPv4 TCP: 10.0.0.1:12345 -> 192.168.1.2:80 */
    static const uint8_t in4[12] = {10, 0, 0, 1, 192, 168, 1, 2, 0x30, 0x39, 0, 80};
    /* IPv6 TCP: 2001:db8::5:40000 -> ::1:443, then TLVs: NOOP (3 bytes), UNIQUE_ID (4) */
    static const uint8_t in6[36 + 13] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                         0x9c, 0x40, 0x01, 0xbb,
                                         0x04, 0x00, 0x03, 1, 2, 3, 0x05, 0x00, 0x04, 'a', 'b', 'c', 'd'};
    size_t n;
    n = v2(b, 0x21, 0x11, in4, sizeof in4);
    good("v2 PROXY TCP4", b, n, "10.0.0.1", 12345);
    n = v2(b, 0x21, 0x21, in6, sizeof in6);
    good("v2 PROXY TCP6 with TLVs", b, n, "2001:db8::5", 40000);
    n = v2(b, 0x20, 0x00, NULL, 0);
    good("v2 LOCAL", b, n, NULL, 0);
    n = v2(b, 0x20, 0x11, in4, sizeof in4);
    good("v2 LOCAL with addresses (ignored)", b, n, NULL, 0);
    n = v2(b, 0x20, 0x12, in4, sizeof in4);
    good("v2 LOCAL, UDP family (ignored)", b, n, NULL, 0);
    n = v2(b, 0x20, 0x21, NULL, 0);
    good("v2 LOCAL, TCP6 family without addresses (the family is ignored)", b, n, NULL, 0);
    n = v2(b, 0x21, 0x00, NULL, 0);
    good("v2 PROXY AF_UNSPEC", b, n, NULL, 0);
    n = v2(b, 0x21, 0x10, in4, sizeof in4);
    good("v2 PROXY INET, transport UNSPEC", b, n, NULL, 0);
    {
        static const uint8_t mapped[36] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7,
                                           0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x13, 0x88, 0, 80};
        n = v2(b, 0x21, 0x21, mapped, sizeof mapped);
        good("v2 PROXY TCP6, IPv4-mapped source", b, n, "192.0.2.7", 5000);
    }
    memset(body, 0, sizeof body);
    n = v2(b, 0x21, 0x31, body, 216);
    good("v2 PROXY AF_UNIX stream", b, n, NULL, 0);
    memcpy(body, in4, sizeof in4);
    n = v2(b, 0x21, 0x11, body, RP_PROXY_V2_MAX - 16);
    good("v2 at RP_PROXY_V2_MAX", b, n, "10.0.0.1", 12345);
}

static void
test_v2_bad(void)
{
    static uint8_t b[RP_PROXY_V2_MAX + 64], body[RP_PROXY_V2_MAX];
    static const uint8_t in4[12] = {10, 0, 0, 1, 192, 168, 1, 2, 0x30, 0x39, 0, 80};
    rp_addr a;
    size_t n, k;
    char what[64];
    n = v2(b, 0x21, 0x11, in4, sizeof in4);
    for (k = 0; k < 12; k++) { /* each signature byte */
        b[k] ^= 0x20;
        snprintf(what, sizeof what, "v2 signature byte %zu", k);
        bad(what, b, n, k + 1);
        b[k] ^= 0x20;
    }
    n = v2(b, 0x11, 0x11, in4, sizeof in4);
    bad("v2 version 1", b, n, 13);
    n = v2(b, 0x31, 0x11, in4, sizeof in4);
    bad("v2 version 3", b, n, 13);
    n = v2(b, 0x22, 0x11, in4, sizeof in4);
    bad("v2 command 2", b, n, 13);
    n = v2(b, 0x2f, 0x11, in4, sizeof in4);
    bad("v2 command 15", b, n, 13);
    n = v2(b, 0x21, 0x41, in4, sizeof in4);
    bad("v2 family 4", b, n, 14);
    n = v2(b, 0x21, 0x13, in4, sizeof in4);
    bad("v2 transport 3", b, n, 14);
    n = v2(b, 0x21, 0x12, in4, sizeof in4);
    bad("v2 UDP over IPv4", b, n, 0);
    n = v2(b, 0x21, 0x22, body, 36);
    bad("v2 UDP over IPv6", b, n, 0);
    n = v2(b, 0x21, 0x11, in4, 11);
    bad("v2 IPv4 in 11 bytes", b, n, 16);
    n = v2(b, 0x21, 0x21, body, 35);
    bad("v2 IPv6 in 35 bytes", b, n, 16);
    n = v2(b, 0x21, 0x31, body, 215);
    bad("v2 AF_UNIX in 215 bytes", b, n, 16);
    n = v2(b, 0x21, 0x11, body, RP_PROXY_V2_MAX - 15);
    bad("v2 one byte over RP_PROXY_V2_MAX", b, n, 16);
    b[14] = 0xff, b[15] = 0xff;
    CHECK_INT(parse(b, 16, &a), RP_EINVAL, "v2 length 65535: refused at once");
    CHECK_INT(parse("", 0, &a), RP_EAGAIN, "nothing yet: need more");
    CHECK_INT(parse("\x16\x03\x01", 3, &a), RP_EINVAL, "a TLS ClientHello is not a PROXY header");
}

static const tap_test tests[] = {
    TAP_TEST(v1_good),
    TAP_TEST(v1_bad),
    TAP_TEST(v2_good),
    TAP_TEST(v2_bad),
};

int
main(int argc, char **argv)
{
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

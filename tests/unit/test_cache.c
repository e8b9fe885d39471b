/*
 * test_cache.c -- white-box tests of the response cache: src/11-cache.c and
 * the HTTP-date code at the end of src/04-http.c.
 *
 * SPDX-License-Identifier: MIT
 *
 * This file includes rproxy.c itself (so it can call the static functions)
 * and is linked with tests/fakeport.c only -- see its rule in the Makefile.
 * It shrinks the cache (64 KiB arena of 256-byte blocks, 64 entries) and the
 * connection tables before the include, so eviction, full arenas and block
 * chains of many links happen with small inputs; fakeport.c never looks
 * inside rp_proxy, so the different layout does not matter to it (this
 * file never calls fp_proxy_new).
 *
 * Covered:
 *   - Cache-Control parsing (cc_parse / cc_of): quoted values, duplicates,
 *     unknown directives, malformed lists, clamping, max-stale, Pragma;
 *   - http_date in its three formats and on invalid input, http_date_format
 *     against libc's gmtime/strftime and round trips;
 *   - cache_lifetime, initial_age, entry_use, vary_key / vary_match;
 *   - the arena under ~1,000,000 random operations through the real fill,
 *     commit, abort, lookup, pin/unpin, invalidate and evict functions, with
 *     a full integrity check of blocks, chains, entry lists, LRU and buckets,
 *     and every stored body read back against a per-version byte pattern;
 *   - whole exchanges over the fake port, for faults that only show there.
 * Checks named "BUG:" describe behaviour the spec (notes/cache-spec.md) or
 * RFC 9110/9111 asks for that the code does not do yet.
 */
#include "rp_int.h" /* white-box: the cache's internals */

#if RP_CACHE_BYTES != 65536u || RP_CACHE_BLOCK != 256u || RP_CACHE_ENTRIES != 64 || RP_MAX_CONNS != 8
#error "test_cache is built with the Makefile's CACHE_KNOBS"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fakeport.h"
#include "guard.h"
#include "tap.h"

static rp_proxy P;  /* the white-box tests' proxy: rp_init only, never started */
static rp_proxy P2; /* the exchange tests' proxy: configured and started */

#define STR(s) ((rp_str){(s), sizeof(s) - 1})

static rp_str
cs(const char *s)
{
    rp_str v;
    v.p = s, v.n = strlen(s);
    return v;
}

/* ==== messages ==== */

/* Parse a response head "HTTP/1.1 status X" + fields (each ending in CRLF)
 * into one of a few rotating static messages. */
static const rp_http_msg *
resp(int status, const char *fields)
{
    static char buf[8][6144];
    static rp_http_msg m[8];
    static int k;
    int i = k++ & 7, n = snprintf(buf[i], sizeof(buf[i]), "HTTP/1.1 %d X\r\n%s\r\n", status, fields);
    if (n <= 0 || (size_t)n >= sizeof(buf[i]) ||
        rp_http_parse_response(buf[i], (size_t)n, &m[i]) != RP_OK) {
        printf("# test bug: response does not parse: %s\n", fields);
        abort();
    }
    return &m[i];
}

/* A GET of target with Host: h and the given fields. */
static const rp_http_msg *
reqt(const char *target, const char *host, const char *fields)
{
    static char buf[8][6144];
    static rp_http_msg m[8];
    static int k;
    int i = k++ & 7,
        n = snprintf(buf[i], sizeof(buf[i]), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, host, fields);
    if (n <= 0 || (size_t)n >= sizeof(buf[i]) ||
        rp_http_parse_request(buf[i], (size_t)n, &m[i]) != RP_OK) {
        printf("# test bug: request does not parse: %s\n", fields);
        abort();
    }
    return &m[i];
}

static const rp_http_msg *
req(const char *fields)
{
    return reqt("/p", "h", fields);
}

/* ==== Cache-Control ==== */

static void
cc_init(cc_t *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = cc->sie = -1;
}

/* cc_parse of s, placed right before a guard page (an over-read faults). */
static cc_t
ccp(const char *s)
{
    cc_t cc;
    rp_str v;
    cc_init(&cc);
    v.n = strlen(s);
    v.p = guard_place(s, v.n);
    cc_parse(&cc, v);
    return cc;
}

#define A (-1) /* absent */

static const struct {
    const char *in;
    unsigned f;
    int64_t max_age, s_maxage, max_stale, min_fresh, sie;
} cc_cases[] = {
    {"", 0, A, A, A, A, A},
    {"max-age=60", 0, 60, A, A, A, A},
    {"max-age=0", 0, 0, A, A, A, A},
    {"MAX-AGE=60", 0, 60, A, A, A, A},
    {"max-age=\"60\"", 0, 60, A, A, A, A},
    {"max-age=60, max-age=60", 0, 60, A, A, A, A},
    {"max-age=60,max-age=61", CC_BAD, 60, A, A, A, A},
    {"max-age=-1", CC_BAD, A, A, A, A, A},
    {"max-age=", CC_BAD, A, A, A, A, A},
    {"max-age", CC_BAD, A, A, A, A, A},
    {"max-age=1a", CC_BAD, A, A, A, A, A},
    {"max-age=\"\"", CC_BAD, A, A, A, A, A},
    {"max-age=\"6\"0", CC_BAD, A, A, A, A, A},
    {"max-age =5", CC_BAD, A, A, A, A, A},
    {"max-age= 5", CC_BAD, A, A, A, A, A},
    {"=5", CC_BAD, A, A, A, A, A},
    {"max-age=5;x", CC_BAD, A, A, A, A, A},
    {"max-age=2147483647", 0, 2147483647LL, A, A, A, A},
    {"max-age=2147483648", 0, 2147483648LL, A, A, A, A},
    {"max-age=2147483649", 0, 2147483648LL, A, A, A, A},
    {"max-age=99999999999999999999999999999999", 0, 2147483648LL, A, A, A, A},
    {"max-age=0000000000000000000000000000000000000000007", 0, 7, A, A, A, A},
    {"s-maxage=10, max-age=20", 0, 20, 10, A, A, A},
    {"s-maxage=10, s-maxage=11", CC_BAD, A, 10, A, A, A},
    {"s-maxage=x", CC_BAD, A, A, A, A, A},
    {"foo, bar=baz, baz=\"x,y\", max-age=5", 0, 5, A, A, A, A},
    {"no-cache=\"set-cookie, x\"", CC_NO_CACHE, A, A, A, A, A},
    {"private=\"x\", public", CC_PRIVATE | CC_PUBLIC, A, A, A, A, A},
    {"no-cache=\"a\\\"b\", public", CC_NO_CACHE | CC_PUBLIC, A, A, A, A, A},
    {"max-age=5, no-cache=\"abc", CC_BAD, 5, A, A, A, A},
    {"no-cache=\"abc\\", CC_BAD, A, A, A, A, A},
    {"max-age=\"5", CC_BAD, A, A, A, A, A},
    {"max-stale", CC_MAX_STALE_ANY, A, A, A, A, A},
    {"max-stale=30", 0, A, A, 30, A, A},
    {"max-stale=abc", 0, A, A, A, A, A},
    {"max-stale=5, max-stale=6", 0, A, A, 5, A, A},
    {"min-fresh=10", 0, A, A, A, 10, A},
    {"min-fresh=x", CC_BAD, A, A, A, A, A},
    {"stale-if-error=60", 0, A, A, A, A, 60},
    {"stale-if-error=x", 0, A, A, A, A, A},
    {"public, must-revalidate, proxy-revalidate, only-if-cached, no-store, no-cache, private",
     CC_PUBLIC | CC_MUST_REVAL | CC_PROXY_REVAL | CC_ONLY_IF_CACHED | CC_NO_STORE | CC_NO_CACHE | CC_PRIVATE,
     A, A, A, A, A},
    {"No-Store", CC_NO_STORE, A, A, A, A, A},
    {"no-storex", 0, A, A, A, A, A},
    {" , ,max-age=5", 0, 5, A, A, A, A},
    {"\tmax-age=5\t,\tpublic", CC_PUBLIC, 5, A, A, A, A},
    {"max-age=5 x", CC_BAD, A, A, A, A, A},
    {"max-age=5\"", CC_BAD, A, A, A, A, A},
    {"max-age=5, @, public", CC_BAD | CC_PUBLIC, 5, A, A, A, A},
};

static void
test_cc(void)
{
    size_t i;
    for (i = 0; i < RP_COUNT(cc_cases); i++) {
        cc_t cc = ccp(cc_cases[i].in);
        int ok = cc.f == cc_cases[i].f && cc.max_age == cc_cases[i].max_age &&
                 cc.s_maxage == cc_cases[i].s_maxage && cc.max_stale == cc_cases[i].max_stale &&
                 cc.min_fresh == cc_cases[i].min_fresh && cc.sie == cc_cases[i].sie;
        if (!CHECK(ok, "cc_parse \"%s\"", cc_cases[i].in))
            tap_diag("got f=%#x max-age=%lld s-maxage=%lld max-stale=%lld min-fresh=%lld sie=%lld",
                     cc.f, (long long)cc.max_age, (long long)cc.s_maxage, (long long)cc.max_stale,
                     (long long)cc.min_fresh, (long long)cc.sie);
    }

    /* RFC 9110 §5.6.1: a recipient MUST accept (and ignore) empty list
     * elements, "max-age=5," included. */
    CHECK(!(ccp("max-age=5,").f & CC_BAD), "BUG: cc_parse \"max-age=5,\": an empty last list element is not malformed");
    CHECK(!(ccp("max-age=5, ").f & CC_BAD), "BUG: cc_parse \"max-age=5, \"");
    CHECK(!(ccp(",").f & CC_BAD), "BUG: cc_parse \",\"");

    /* cc_of: every line, duplicates across lines, Pragma. */
    {
        cc_t cc;
        cc_of(resp(200, "Cache-Control: max-age=5\r\nCache-Control: max-age=5\r\n"), &cc);
        CHECK(cc.max_age == 5 && !(cc.f & CC_BAD), "cc_of: equal duplicates on two lines are fine");
        cc_of(resp(200, "Cache-Control: max-age=5\r\nCache-Control: max-age=6\r\n"), &cc);
        CHECK(cc.f & CC_BAD, "cc_of: different duplicates on two lines are bad");
        cc_of(resp(200, "Cache-Control: public\r\nX: y\r\nCache-Control: s-maxage=7\r\n"), &cc);
        CHECK((cc.f & CC_PUBLIC) && cc.s_maxage == 7, "cc_of: directives of every line");
        cc_of(resp(200, "X: y\r\n"), &cc);
        CHECK(cc.f == 0 && cc.max_age == -1 && cc.s_maxage == -1 && cc.max_stale == -1 &&
                  cc.min_fresh == -1 && cc.sie == -1,
              "cc_of: no fields -> all absent");
        cc_of(req("Pragma: no-cache\r\n"), &cc);
        CHECK(cc.f == CC_NO_CACHE, "cc_of: Pragma: no-cache alone -> no-cache");
        cc_of(req("Pragma: NO-CACHE\r\n"), &cc);
        CHECK(cc.f == CC_NO_CACHE, "cc_of: Pragma: NO-CACHE (case)");
        cc_of(req("Pragma: no-cache\r\nCache-Control: max-age=5\r\n"), &cc);
        CHECK(!(cc.f & CC_NO_CACHE) && cc.max_age == 5, "cc_of: Pragma ignored when Cache-Control is present");
        cc_of(req("Cache-Control: max-stale\r\nPragma: no-cache\r\n"), &cc);
        CHECK(!(cc.f & CC_NO_CACHE), "cc_of: Pragma ignored, Cache-Control first");
        cc_of(req("Pragma: no-store\r\n"), &cc);
        CHECK(cc.f == 0, "cc_of: other Pragma values ignored");
    }
}

/* ==== HTTP dates ==== */

static int64_t
hd(const char *s)
{
    size_t n = strlen(s);
    return http_date((rp_str){guard_place(s, n), n});
}

#define D784111777 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

static const struct {
    const char *in;
    int64_t want;
} date_cases[] = {
    /* asctime */
    {"Sun Nov  6 08:49:37 1994", D784111777},
    {"Sun Nov 06 08:49:37 1994", D784111777},
    {"Wed Nov 16 08:49:37 1994", D784111777 + 10 * 86400},
    {"Thu Jan  1 00:00:00 1970", 0},
    {"Fri Dec 31 23:59:59 9999", 253402300799LL},
    {"Tue Feb 29 12:00:00 2000", 951825600},
    {"Sun Nov  6 08:49:60 1994", D784111777 + 23},            /* leap second: accepted */
    {"Mon Feb 30 00:00:00 2015", 1425254400},                 /* Feb 30: accepted as Mar 2 */
    {"Mon Feb 31 00:00:00 2016", 1456876800},                 /* Feb 31 2016 = Mar 2 2016 */
    {"Xxx Nov  6 08:49:37 1994", D784111777},                 /* weekday not checked */
    {"Sun Nox  6 08:49:37 1994", -1},
    {"Sun nov  6 08:49:37 1994", -1},                         /* month is case-sensitive */
    {"Sun Nov  6 08:49:37 1969", -1},
    {"Wed Dec 31 23:59:59 1969", -1},
    {"Sun Nov  6 24:00:00 1994", -1},
    {"Sun Nov  6 08:60:00 1994", -1},
    {"Sun Nov  6 08:49:61 1994", -1},
    {"Sun Nov  0 08:49:37 1994", -1},
    {"Sun Nov 32 08:49:37 1994", -1},
    {"Sun Nov  6 08:49:37 199", -1},
    {"Sun Nov  6 08:49:37 19945", -1},
    {"Sun Nov  6 08-49-37 1994", -1},
    {"Sun Nov  6 0x:49:37 1994", -1},
    {"Sun Nov  6 08:49:37 19x4", -1},
    /* IMF-fixdate / RFC 850 that must be refused */
    {"Sun, 06 Nox 1994 08:49:37 GMT", -1},
    {"Sun, 06 Nov 1994 08:49:37 GM", -1},
    {"Sun, 06 Nov 1994 08:49:37 GMTX", -1},
    {"Sun, 06 Nov 1994 08:49:37 UTC", -1},
    {"Sun, 6 Nov 1994 08:49:37 GMT", -1},
    {"Sun,06 Nov 1994 08:49:37 GMT", -1},
    {"Wed, 31 Dec 1969 23:59:59 GMT", -1},
    {"Sun, 00 Nov 1994 08:49:37 GMT", -1},
    {"Sun, 06 Nov 1994 24:49:37 GMT", -1},
    {"Sunday, 06-Nox-94 08:49:37 GMT", -1},
    {"Sunday, 06-Nov-94 08:49:37 GM", -1},
    /* nothing like a date */
    {"", -1},
    {",", -1},
    {", ", -1},
    {"GMT", -1},
    {"0", -1},
    {"-1", -1},
    {"Sun, ", -1},
    {"x,                                                  ", -1},
};

/* The IMF-fixdate and RFC 850 forms: RFC 9110 §5.6.7 -- a recipient MUST
 * accept all three formats (and IMF-fixdate is what every server sends). */
static const struct {
    const char *in;
    int64_t want;
} date_forms[] = {
    {"Sun, 06 Nov 1994 08:49:37 GMT", D784111777},
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
    {"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799LL},
    {"Sunday, 06-Nov-94 08:49:37 GMT", D784111777},
    {"Thursday, 01-Jan-70 00:00:00 GMT", 0},
    {"Tuesday, 01-Jan-69 00:00:00 GMT", 3124224000LL}, /* 69 -> 2069 */
};

/* libc's rendering of t with fmt (UTC). */
static void
libc_fmt(int64_t t, const char *fmt, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, fmt, &tm);
}

static void
test_dates(void)
{
    size_t i;
    int64_t t, bad_fmt = -1, bad_rt = -1, bad_asc = -1, bad_850 = -1;
    long nfmt = 0, nrt = 0, nasc = 0, n850 = 0, runs = 0;
    uint64_t x = 88172645463325252ull;
    char mine[32], libc[64];

    for (i = 0; i < RP_COUNT(date_cases); i++)
        CHECK_INT(hd(date_cases[i].in), date_cases[i].want, "http_date \"%s\"", date_cases[i].in);
    for (i = 0; i < RP_COUNT(date_forms); i++)
        CHECK_INT(hd(date_forms[i].in), date_forms[i].want, "BUG: http_date \"%s\" (IMF-fixdate / RFC 850)",
                  date_forms[i].in);

    /* The formatter against libc, and every format read back. */
    for (i = 0; i < 200000; i++) {
        if (i < 100000) { /* spread over all years */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t = (int64_t)(x % 253402300800ull);
        } else if (i < 150000) { /* the recent past and future, to the second */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            t = 1600000000 + (int64_t)(x % 1000000000ull);
        } else { /* day boundaries, leap days, century years */
            t = (int64_t)(i - 150000) * 86400 * 73 % 253402300800LL - (int64_t)(i & 1);
            if (t < 0)
                t = 0;
        }
        runs++;
        http_date_format(t, mine);
        mine[29] = 0;
        libc_fmt(t, "%a, %d %b %Y %H:%M:%S GMT", libc, sizeof libc);
        if (strcmp(mine, libc) && nfmt++ == 0)
            bad_fmt = t, tap_diag("http_date_format(%lld) = \"%s\", libc \"%s\"", (long long)t, mine, libc);
        if (hd(mine) != t && nrt++ == 0)
            bad_rt = t, tap_diag("http_date(http_date_format(%lld) = \"%s\") = %lld", (long long)t, mine,
                                 (long long)hd(mine));
        libc_fmt(t, "%a %b %e %H:%M:%S %Y", libc, sizeof libc);
        if (hd(libc) != t && nasc++ == 0)
            bad_asc = t, tap_diag("http_date(\"%s\") = %lld, want %lld", libc, (long long)hd(libc), (long long)t);
        if (t < 3155760000LL) { /* RFC 850 two-digit years: 1970..2069 */
            libc_fmt(t, "%A, %d-%b-%y %H:%M:%S GMT", libc, sizeof libc);
            if (hd(libc) != t && n850++ == 0)
                bad_850 = t, tap_diag("http_date(\"%s\") = %lld, want %lld", libc, (long long)hd(libc), (long long)t);
        }
    }
    CHECK(nfmt == 0, "http_date_format equals libc's IMF-fixdate for %ld times (%ld differ, first %lld)", runs, nfmt,
          (long long)bad_fmt);
    CHECK(nrt == 0, "BUG: http_date(http_date_format(t)) == t for %ld times (%ld differ, first %lld)", runs, nrt,
          (long long)bad_rt);
    CHECK(nasc == 0, "http_date reads libc's asctime form back for %ld times (%ld differ, first %lld)", runs, nasc,
          (long long)bad_asc);
    CHECK(n850 == 0, "BUG: http_date reads the RFC 850 form back (%ld differ, first %lld)", n850, (long long)bad_850);
}

/* ==== freshness ==== */

static int64_t
life(int status, const char *fields, int64_t date, int heuristic)
{
    const rp_http_msg *m = resp(status, fields);
    cc_t cc;
    cc_of(m, &cc);
    return cache_lifetime(m, &cc, date, heuristic);
}

#define DATE0 1000000000 /* Sun Sep  9 01:46:40 2001 */
#define ASC_D0_P100 "Expires: Sun Sep  9 01:48:20 2001\r\n" /* DATE0 + 100 */
#define ASC_D0 "Expires: Sun Sep  9 01:46:40 2001\r\n"      /* DATE0 */
#define ASC_D0_M1 "Expires: Sun Sep  9 01:46:39 2001\r\n"   /* DATE0 - 1 */

static void
test_lifetime(void)
{
    /* precedence */
    CHECK_INT(life(200, "Cache-Control: s-maxage=10, max-age=20\r\n" ASC_D0_P100, DATE0, 1), 10,
              "lifetime: s-maxage before max-age and Expires");
    CHECK_INT(life(200, "Cache-Control: max-age=20, s-maxage=10\r\n", DATE0, 1), 10,
              "lifetime: s-maxage before max-age (order of directives)");
    CHECK_INT(life(200, "Cache-Control: max-age=20\r\n" ASC_D0_P100, DATE0, 1), 20,
              "lifetime: max-age before Expires");
    CHECK_INT(life(200, "Cache-Control: max-age=0\r\n" ASC_D0_P100, DATE0, 1), 0, "lifetime: max-age=0 before Expires");
    CHECK_INT(life(200, ASC_D0_P100 "Last-Modified: Thu Jan  1 00:00:00 1970\r\n", DATE0, 1), 100,
              "lifetime: Expires - Date before the heuristic");
    CHECK_INT(life(200, "Cache-Control: max-age=99999999999\r\n", DATE0, 0), 2147483648LL,
              "lifetime: huge max-age clamps to 2^31");
    CHECK_INT(life(200, "Cache-Control: public\r\n", DATE0, 0), -1, "lifetime: nothing -> -1");
    CHECK_INT(life(200, "", DATE0, 0), -1, "lifetime: no fields -> -1");
    /* Expires */
    CHECK_INT(life(200, ASC_D0, DATE0, 0), 0, "lifetime: Expires == Date -> 0");
    CHECK_INT(life(200, ASC_D0_M1, DATE0, 0), 0, "lifetime: Expires < Date -> 0");
    CHECK_INT(life(200, "Expires: 0\r\n", DATE0, 0), 0, "lifetime: Expires: 0 -> 0");
    CHECK_INT(life(200, "Expires: -1\r\n", DATE0, 0), 0, "lifetime: Expires: -1 -> 0");
    CHECK_INT(life(200, "Expires: soon\r\n" "Last-Modified: Thu Jan  1 00:00:00 1970\r\n", DATE0, 1), 0,
              "lifetime: bad Expires -> 0, not the heuristic");
    CHECK_INT(life(200, ASC_D0_P100 ASC_D0_P100, DATE0, 0), 0, "lifetime: two Expires (equal) -> 0");
    CHECK_INT(life(200, ASC_D0_P100 "Expires: x\r\n", DATE0, 0), 0, "lifetime: two Expires (one bad) -> 0");
    CHECK_INT(life(200, ASC_D0_P100, 0, 0), 0, "lifetime: Expires without a Date or clock -> 0");
    CHECK_INT(life(200, "Expires: Sun, 09 Sep 2001 01:48:20 GMT\r\n", DATE0, 0), 100,
              "BUG: lifetime: Expires as IMF-fixdate (the usual form) - Date");
    /* heuristic: 10% of Date - Last-Modified, at most a day */
    CHECK_INT(life(200, "Last-Modified: Sun Sep  9 01:30:00 2001\r\n", DATE0, 1), 100,
              "lifetime: heuristic 10%% of 1000 s");
    CHECK_INT(life(200, "Last-Modified: Thu Jan  1 00:00:00 1970\r\n", DATE0, 1), -1,
              "lifetime: Last-Modified 0 is not > 0: no heuristic");
    CHECK_INT(life(200, "Last-Modified: Fri Jan  2 00:00:00 1970\r\n", DATE0, 1), 86400,
              "lifetime: heuristic capped at 86400");
    CHECK_INT(life(404, "Last-Modified: Sun Sep  9 01:30:00 2001\r\n", DATE0, 1), 100, "lifetime: heuristic for 404");
    CHECK_INT(life(302, "Last-Modified: Sun Sep  9 01:30:00 2001\r\n", DATE0, 1), -1, "lifetime: no heuristic for 302");
    CHECK_INT(life(500, "Last-Modified: Sun Sep  9 01:30:00 2001\r\n", DATE0, 1), -1, "lifetime: no heuristic for 500");
    CHECK_INT(life(200, "Last-Modified: Sun Sep  9 01:30:00 2001\r\n", DATE0, 0), -1,
              "lifetime: no heuristic when it is off");
    CHECK_INT(life(200, "Last-Modified: Sun Sep  9 01:46:40 2001\r\n", DATE0, 1), -1,
              "lifetime: Last-Modified == Date: no heuristic");
    CHECK_INT(life(200, "Last-Modified: Sun Sep  9 01:46:35 2001\r\n", DATE0, 1), 0,
              "lifetime: Date - Last-Modified < 10 s: 0");
    CHECK_INT(life(200, "Last-Modified: Sun Sep  9 01:30:00 2001\r\nLast-Modified: Sun Sep  9 01:30:00 2001\r\n",
                   DATE0, 1), -1, "lifetime: two Last-Modified: no heuristic");
    {
        static const int hs[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
        static const int nh[] = {201, 202, 302, 303, 307, 400, 403, 500, 502, 503, 504};
        size_t i;
        for (i = 0; i < RP_COUNT(hs); i++)
            CHECK_INT(life(hs[i], "Last-Modified: Sun Sep  9 01:30:00 2001\r\n", DATE0, 1), 100,
                      "lifetime: heuristic for %d", hs[i]);
        for (i = 0; i < RP_COUNT(nh); i++)
            CHECK_INT(life(nh[i], "Last-Modified: Sun Sep  9 01:30:00 2001\r\n", DATE0, 1), -1,
                      "lifetime: no heuristic for %d", nh[i]);
    }
    /* anything malformed -> 0 */
    CHECK_INT(life(200, "Cache-Control: max-age=5, max-age=6\r\n", DATE0, 1), 0, "lifetime: conflicting max-age -> 0");
    CHECK_INT(life(200, "Cache-Control: s-maxage=x, max-age=5\r\n", DATE0, 1), 0, "lifetime: bad s-maxage -> 0");
    CHECK_INT(life(200, "Cache-Control: max-age=-5\r\n" ASC_D0_P100, DATE0, 1), 0,
              "lifetime: negative max-age -> 0 (not Expires)");
    CHECK_INT(life(200, "Cache-Control: max-age=5, \"\r\n", DATE0, 1), 0, "lifetime: stray quote -> 0");
    CHECK_INT(life(200, "Cache-Control: max-age=60\r\nCache-Control: no-cache=\"x\r\n", DATE0, 1), 0,
              "lifetime: unterminated quote on another line -> 0");
    CHECK_INT(life(200, "Cache-Control: min-fresh=x, max-age=60\r\n", DATE0, 1), 0,
              "lifetime: bad min-fresh in a response -> 0");
}

static void
test_initial_age(void)
{
    const int64_t D = DATE0;
    CHECK_INT(initial_age(resp(200, ""), D, D, 1000, 1000), 0, "initial_age: nothing -> 0");
    CHECK_INT(initial_age(resp(200, ""), D, D, 1000, 3500), 2, "initial_age: response delay 2.5 s -> 2");
    CHECK_INT(initial_age(resp(200, "Age: 10\r\n"), D, D, 1000, 3500), 12, "initial_age: Age + delay");
    CHECK_INT(initial_age(resp(200, "Age: 10\r\n"), D, D + 30, 1000, 3500), 30, "initial_age: apparent age wins");
    CHECK_INT(initial_age(resp(200, "Age: 100\r\n"), D, D + 30, 1000, 1000), 100, "initial_age: Age wins");
    CHECK_INT(initial_age(resp(200, ""), D, D - 30, 1000, 1000), 0, "initial_age: Date in the future: apparent 0");
    CHECK_INT(initial_age(resp(200, ""), D, 0, 1000, 1000), 0, "initial_age: no clock: apparent 0");
    CHECK_INT(initial_age(resp(200, ""), 0, D, 1000, 1000), 0, "initial_age: no Date: apparent 0");
    CHECK_INT(initial_age(resp(200, "Age: abc\r\n"), D, D, 1000, 1000), -1, "initial_age: Age abc -> -1");
    CHECK_INT(initial_age(resp(200, "Age: -5\r\n"), D, D, 1000, 1000), -1, "initial_age: Age -5 -> -1");
    CHECK_INT(initial_age(resp(200, "Age: 1.5\r\n"), D, D, 1000, 1000), -1, "initial_age: Age 1.5 -> -1");
    CHECK_INT(initial_age(resp(200, "Age:\r\n"), D, D, 1000, 1000), -1, "initial_age: empty Age -> -1");
    CHECK_INT(initial_age(resp(200, "Age: 10\r\nAge: x\r\n"), D, D, 1000, 1000), -1,
              "initial_age: one bad Age of two -> -1");
    CHECK_INT(initial_age(resp(200, "Age: 10\r\nAge: 20\r\n"), D, D, 1000, 1000), 20,
              "initial_age: two Age lines: the last counts");
    CHECK_INT(initial_age(resp(200, "Age: \"10\"\r\n"), D, D, 1000, 1000), 10,
              "initial_age: quoted Age is read (lenient)");
    CHECK_INT(initial_age(resp(200, "Age: 99999999999999999999\r\n"), D, D, 1000, 2000), 2147483648LL + 1,
              "initial_age: huge Age clamps to 2^31, plus delay");
}

/* ==== entry_use ==== */

static int
use(const char *req_fields, int64_t lifetime, int64_t age, unsigned eflags, int ignore_nc, unsigned *cf,
    int64_t *ttl)
{
    centry *e = &P.cache.e[RP_CACHE_ENTRIES - 1]; /* read only by entry_use */
    cc_t rq;
    int r;
    memset(e, 0, sizeof(*e));
    P.now = 5000000;
    e->lifetime = (int32_t)lifetime;
    e->age0 = age - 7; /* 7 s of it spent resident */
    e->resp_ms = P.now - 7000 - 999;
    e->flags = (uint8_t)eflags;
    P.cfg.cache_ignore_nocache = (uint8_t)ignore_nc;
    cc_of(req(req_fields), &rq);
    *cf = 0;
    r = entry_use(&P, e, &rq, cf, ttl);
    memset(e, 0, sizeof(*e));
    P.cfg.cache_ignore_nocache = 0;
    return r;
}

static void
test_entry_use(void)
{
    static const struct {
        const char *req;
        int64_t lifetime, age;
        unsigned eflags;
        int ignore_nc;
        int want;
        int64_t ttl;
        unsigned cf;
        const char *name;
    } t[] = {
        {"", 100, 10, 0, 0, USE_FRESH, 90, 0, "fresh"},
        {"", 100, 99, 0, 0, USE_FRESH, 1, 0, "fresh, 1 s left"},
        {"", 100, 100, 0, 0, USE_REVALIDATE, 0, 0, "age == lifetime: stale"},
        {"", 0, 0, 0, 0, USE_REVALIDATE, 0, 0, "lifetime 0: stale"},
        {"", 100, 130, 0, 0, USE_REVALIDATE, -30, 0, "stale"},
        {"Cache-Control: max-stale\r\n", 100, 130, 0, 0, USE_STALE, -30, 0, "stale, max-stale"},
        {"Cache-Control: max-stale=30\r\n", 100, 130, 0, 0, USE_STALE, -30, 0, "stale by 30, max-stale=30"},
        {"Cache-Control: max-stale=29\r\n", 100, 130, 0, 0, USE_REVALIDATE, -30, 0, "stale by 30, max-stale=29"},
        {"Cache-Control: max-stale=0\r\n", 100, 100, 0, 0, USE_STALE, 0, 0, "stale by 0, max-stale=0"},
        {"Cache-Control: max-stale\r\n", 100, 130, CE_NO_STALE, 0, USE_REVALIDATE, -30, 0,
         "must-revalidate forbids max-stale"},
        {"Cache-Control: max-stale=1000\r\n", 100, 130, CE_NO_STALE, 0, USE_REVALIDATE, -30, 0,
         "must-revalidate forbids max-stale=N"},
        {"Cache-Control: max-stale\r\n", 100, 10, CE_NO_STALE, 0, USE_FRESH, 90, 0, "must-revalidate, fresh"},
        {"Cache-Control: max-age=10\r\n", 100, 10, 0, 0, USE_FRESH, 90, 0, "request max-age == age"},
        {"Cache-Control: max-age=9\r\n", 100, 10, 0, 0, USE_REVALIDATE, 90, 0, "request max-age < age"},
        {"Cache-Control: max-age=0\r\n", 100, 0, 0, 0, USE_REVALIDATE, 100, 0, "request max-age=0"},
        {"Cache-Control: max-age=x\r\n", 100, 10, 0, 0, USE_REVALIDATE, 90, 0, "bad request max-age"},
        {"Cache-Control: min-fresh=90\r\n", 100, 10, 0, 0, USE_FRESH, 90, 0, "min-fresh == left"},
        {"Cache-Control: min-fresh=91\r\n", 100, 10, 0, 0, USE_REVALIDATE, 90, 0, "min-fresh > left"},
        {"Cache-Control: min-fresh=0\r\n", 100, 100, 0, 0, USE_REVALIDATE, 0, 0, "min-fresh=0 does not make stale fresh"},
        {"Cache-Control: no-cache\r\n", 100, 10, 0, 0, USE_REVALIDATE, 90, CF_REQNC, "request no-cache"},
        {"Pragma: no-cache\r\n", 100, 10, 0, 0, USE_REVALIDATE, 90, CF_REQNC, "request Pragma: no-cache"},
        {"Cache-Control: no-cache\r\n", 100, 10, 0, 1, USE_FRESH, 90, 0, "request no-cache, ignore_client_nocache"},
        {"Pragma: no-cache\r\n", 100, 10, 0, 1, USE_FRESH, 90, 0, "Pragma: no-cache, ignore_client_nocache"},
        {"Cache-Control: no-cache, max-stale\r\n", 100, 130, 0, 1, USE_STALE, -30, 0,
         "ignored no-cache, max-stale"},
        {"", 100, 10, CE_NO_CACHE, 0, USE_REVALIDATE, 90, 0, "response no-cache"},
        {"", 100, 10, CE_NO_CACHE, 1, USE_REVALIDATE, 90, 0, "response no-cache, ignore_client_nocache"},
        {"Cache-Control: max-stale\r\n", 100, 130, CE_NO_CACHE, 0, USE_REVALIDATE, -30, 0,
         "response no-cache, max-stale"},
        {"Cache-Control: only-if-cached\r\n", 100, 10, 0, 0, USE_FRESH, 90, 0, "only-if-cached, fresh"},
    };
    size_t i;
    for (i = 0; i < RP_COUNT(t); i++) {
        unsigned cf;
        int64_t ttl;
        int r = use(t[i].req, t[i].lifetime, t[i].age, t[i].eflags, t[i].ignore_nc, &cf, &ttl);
        if (!CHECK(r == t[i].want && ttl == t[i].ttl && cf == t[i].cf, "entry_use: %s", t[i].name))
            tap_diag("got use %d ttl %lld cf %#x, want %d %lld %#x", r, (long long)ttl, cf, t[i].want,
                     (long long)t[i].ttl, t[i].cf);
    }
}

/* ==== Vary ==== */

static rp_conn VC; /* a fake client for the Vary entry */

/* An entry holding vary[0..n) after a key, as fill_start would leave it. */
static centry *
vary_entry(const char *vary, long n)
{
    VC.ckey = 12345;
    fill_begin(&P, &VC, STR("h"), STR("/v"));
    if (!VC.cfill || chain_put(&P, &P.cache.e[VC.cfill].meta, vary, (size_t)n) != RP_OK) {
        printf("# test bug: no room for a Vary entry\n");
        abort();
    }
    P.cache.e[VC.cfill].vary_len = (uint16_t)n;
    return &P.cache.e[VC.cfill];
}

static void
test_vary(void)
{
    char out[VARY_BYTES], big[1200];
    long n;
    centry *e;

    n = vary_key(resp(200, ""), req("Accept: x\r\n"), out);
    CHECK_INT(n, 0, "vary_key: no Vary -> empty");
    e = vary_entry(out, n);
    CHECK(vary_match(&P, e, req("")) && vary_match(&P, e, req("Accept: y\r\n")), "vary_match: no Vary matches all");
    fill_abort(&P, &VC);

    n = vary_key(resp(200, "Vary: Accept-Encoding\r\n"), req("Accept-Encoding: gzip\r\n"), out);
    CHECK_MEM(out, n > 0 ? (size_t)n : 0, "accept-encoding\ngzip\n", "vary_key: one name");
    e = vary_entry(out, n);
    CHECK(vary_match(&P, e, req("Accept-Encoding: gzip\r\n")), "vary_match: same value");
    CHECK(vary_match(&P, e, req("accept-encoding: gzip\r\n")), "vary_match: name case-insensitive");
    CHECK(!vary_match(&P, e, req("Accept-Encoding: GZIP\r\n")), "vary_match: value bytes exact");
    CHECK(!vary_match(&P, e, req("Accept-Encoding: br\r\n")), "vary_match: other value");
    CHECK(!vary_match(&P, e, req("")), "vary_match: absent != gzip");
    CHECK(!vary_match(&P, e, req("Accept-Encoding: gzip\r\nAccept-Encoding: br\r\n")), "vary_match: extra line");
    fill_abort(&P, &VC);

    n = vary_key(resp(200, "Vary: accept-encoding\r\n"), req(""), out);
    CHECK_MEM(out, n > 0 ? (size_t)n : 0, "accept-encoding\n\x01\n", "vary_key: absent header");
    e = vary_entry(out, n);
    CHECK(vary_match(&P, e, req("")), "vary_match: absent == absent");
    CHECK(!vary_match(&P, e, req("Accept-Encoding:\r\n")), "vary_match: absent != empty");
    fill_abort(&P, &VC);

    n = vary_key(resp(200, "Vary: accept-encoding\r\n"), req("Accept-Encoding:\r\n"), out);
    CHECK_MEM(out, n > 0 ? (size_t)n : 0, "accept-encoding\n\n", "vary_key: empty header");
    e = vary_entry(out, n);
    CHECK(vary_match(&P, e, req("Accept-Encoding:\r\n")), "vary_match: empty == empty");
    CHECK(!vary_match(&P, e, req("")), "vary_match: empty != absent");
    fill_abort(&P, &VC);

    n = vary_key(resp(200, "Vary: X-A, ACCEPT\r\n"), req("X-A: 1\r\nAccept: t\r\nX-A: 2\r\n"), out);
    CHECK_MEM(out, n > 0 ? (size_t)n : 0, "x-a\n1, 2\naccept\nt\n", "vary_key: lines joined, names lower-cased");
    e = vary_entry(out, n);
    CHECK(vary_match(&P, e, req("Accept: t\r\nX-A: 1\r\nX-A: 2\r\n")), "vary_match: several lines");
    CHECK(vary_match(&P, e, req("X-A: 1, 2\r\nAccept: t\r\n")), "vary_match: one line == joined lines");
    CHECK(!vary_match(&P, e, req("X-A: 2\r\nX-A: 1\r\nAccept: t\r\n")), "vary_match: line order counts");
    CHECK(!vary_match(&P, e, req("X-A: 1\r\nAccept: t\r\n")), "vary_match: a line missing");
    fill_abort(&P, &VC);

    n = vary_key(resp(200, "Vary: a, b\r\nVary: c\r\n"), req("C: 3\r\n"), out);
    CHECK_MEM(out, n > 0 ? (size_t)n : 0, "a\n\x01\nb\n\x01\nc\n3\n", "vary_key: several Vary lines");
    CHECK_INT(vary_key(resp(200, "Vary: *\r\n"), req(""), out), -1, "vary_key: * refused");
    CHECK_INT(vary_key(resp(200, "Vary: a, *\r\n"), req(""), out), -1, "vary_key: a, * refused");
    CHECK_INT(vary_key(resp(200, "Vary: a\r\nVary: *\r\n"), req(""), out), -1, "vary_key: * on a second line");
    CHECK(vary_key(resp(200, "Vary: a,b,c,d\r\nVary: e,f,g,h\r\n"), req(""), out) > 0, "vary_key: 8 names");
    CHECK_INT(vary_key(resp(200, "Vary: a,b,c,d,e,f,g,h,i\r\n"), req(""), out), -1, "vary_key: 9 names refused");
    CHECK_INT(vary_key(resp(200, "Vary: a,b,c,d\r\nVary: e,f,g,h\r\nVary: i\r\n"), req(""), out), -1,
              "vary_key: 9 names over three lines refused");
    CHECK(vary_key(resp(200, "Vary: a,,b, ,c\r\n"), req(""), out) == (long)strlen("a\n\x01\nb\n\x01\nc\n\x01\n"),
          "vary_key: empty list elements skipped");
    CHECK_INT(vary_key(resp(200, "Vary:\r\n"), req(""), out), 0, "vary_key: empty Vary");
    memset(big, 'x', sizeof big);
    memcpy(big, "X: ", 3);
    memcpy(big + sizeof big - 3, "\r\n", 3);
    CHECK_INT(vary_key(resp(200, "Vary: X\r\n"), req(big), out), -1, "vary_key: more than VARY_BYTES refused");
}

/* ==== integrity of the arena and the entry table ==== */

static char why[512];
#define BAD(...)                                     \
    do {                                             \
        snprintf(why, sizeof why, __VA_ARGS__);      \
        return 0;                                    \
    } while (0)

#define OWN_FREE 0xffffu

static int
walk_chain(rp_proxy *p, const chain *ch, unsigned owner, uint16_t *own, unsigned *nblk)
{
    const struct rp_cache *k = &p->cache;
    unsigned b = ch->first, n = 0, last = 0, want = (ch->len + RP_CACHE_BLOCK - 1) / RP_CACHE_BLOCK;
    if (ch->len == 0 && (ch->first || ch->last))
        BAD("entry %u: empty chain with blocks %u..%u", owner / 2, ch->first, ch->last);
    while (b) {
        if (b > k->fresh_blk)
            BAD("entry %u: block %u never handed out (fresh %u)", owner / 2, b, k->fresh_blk);
        if (own[b] == OWN_FREE)
            BAD("entry %u: block %u is also free", owner / 2, b);
        if (own[b])
            BAD("block %u in two chains (entries %u and %u)", b, own[b] / 2, owner / 2);
        own[b] = (uint16_t)owner;
        if (++n > want)
            BAD("entry %u: chain %s longer than its length %u", owner / 2, owner & 1 ? "body" : "meta", ch->len);
        last = b;
        b = k->blk_next[b];
    }
    if (n != want || last != ch->last)
        BAD("entry %u: chain %s has %u blocks (want %u), last %u (says %u)", owner / 2, owner & 1 ? "body" : "meta", n,
            want, last, ch->last);
    *nblk += n;
    return 1;
}

/* Everything that must hold between cache operations.  conns: the fake
 * exchanges (their cfill / centry), or NULL to skip the ownership checks. */
static int
integrity(rp_proxy *p, const rp_conn *conns, int nconns)
{
    const struct rp_cache *k = &p->cache;
    static uint16_t own[RP_CACHE_BYTES / RP_CACHE_BLOCK];
    static uint8_t efree[RP_CACHE_ENTRIES], inlru[RP_CACHE_ENTRIES], inb[RP_CACHE_ENTRIES];
    unsigned b, i, n, used = 0, prev, ready = 0;
    memset(own, 0, sizeof own);
    memset(efree, 0, sizeof efree);
    memset(inlru, 0, sizeof inlru);
    memset(inb, 0, sizeof inb);
    if (k->fresh_blk >= CACHE_NBLK || k->fresh_ent >= RP_CACHE_ENTRIES)
        BAD("fresh_blk %u / fresh_ent %u out of range", k->fresh_blk, k->fresh_ent);
    for (b = k->free_blk, n = 0; b; b = k->blk_next[b]) {
        if (b > k->fresh_blk)
            BAD("free block %u never handed out", b);
        if (own[b])
            BAD("free list visits block %u twice", b);
        own[b] = OWN_FREE;
        n++;
    }
    for (i = k->free_ent; i; i = k->e[i].hnext) {
        const centry *e = &k->e[i];
        if (i > k->fresh_ent)
            BAD("free entry %u never handed out", i);
        if (efree[i])
            BAD("entry free list visits %u twice", i);
        efree[i] = 1;
        if (e->state != CE_FREE || e->pins || e->flags || e->meta.first || e->body.first || e->meta.len ||
            e->body.len)
            BAD("free entry %u not clean (state %u pins %u flags %u)", i, e->state, e->pins, e->flags);
    }
    for (i = 1; i <= k->fresh_ent; i++) {
        const centry *e = &k->e[i];
        if (efree[i])
            continue;
        if (e->state != CE_FILLING && e->state != CE_READY)
            BAD("entry %u: state %u but not on the free list (leaked)", i, e->state);
        if (!walk_chain(p, &e->meta, 2 * i, own, &used) || !walk_chain(p, &e->body, 2 * i + 1, own, &used))
            return 0;
        if (e->key_len > e->meta.len)
            BAD("entry %u: key_len %u > meta %u", i, e->key_len, e->meta.len);
        if (e->state == CE_READY &&
            (size_t)e->key_len + e->vary_len + e->etag_len + e->lm_len > e->meta.len)
            BAD("entry %u: key+vary+etag+lm beyond meta", i);
        if ((e->flags & CE_DOOMED) && !e->pins)
            BAD("entry %u: doomed but nobody holds it", i);
        if (conns) {
            int j, pins = 0, fills = 0;
            for (j = 0; j < nconns; j++)
                pins += conns[j].centry == i, fills += conns[j].cfill == i;
            if (pins != e->pins)
                BAD("entry %u: pins %u, %d exchanges hold it", i, e->pins, pins);
            if (fills != (e->state == CE_FILLING))
                BAD("entry %u (state %u): %d exchanges fill it", i, e->state, fills);
        }
    }
    for (b = 1; b <= k->fresh_blk; b++)
        if (!own[b])
            BAD("block %u neither free nor in a chain (leaked)", b);
    if (used != k->nblk_used)
        BAD("nblk_used %u, chains hold %u", k->nblk_used, used);
    /* LRU: the ready entries nobody doomed, linked both ways. */
    for (i = k->lru_head, prev = 0, n = 0; i; prev = i, i = k->e[i].next) {
        if (i > k->fresh_ent || efree[i])
            BAD("LRU holds free or unknown entry %u", i);
        if (inlru[i])
            BAD("LRU visits entry %u twice", i);
        inlru[i] = 1;
        if (k->e[i].prev != prev)
            BAD("LRU: entry %u prev %u, came from %u", i, k->e[i].prev, prev);
        if (k->e[i].state != CE_READY || (k->e[i].flags & CE_DOOMED))
            BAD("LRU holds entry %u in state %u flags %u", i, k->e[i].state, k->e[i].flags);
        n++;
    }
    if (k->lru_tail != prev)
        BAD("LRU tail %u, list ends at %u", k->lru_tail, prev);
    for (i = 1; i <= k->fresh_ent; i++) {
        const centry *e = &k->e[i];
        int live = !efree[i] && !(e->flags & CE_DOOMED);
        if (live && e->state == CE_READY && !inlru[i])
            BAD("ready entry %u not on the LRU list", i);
        if (!efree[i] && (e->flags & CE_DOOMED) && (e->prev || e->next))
            BAD("doomed entry %u keeps LRU links", i);
        ready += live && e->state == CE_READY;
    }
    if (n != k->nentries || ready != k->nentries)
        BAD("nentries %u, LRU has %u, ready entries %u", k->nentries, n, ready);
    /* Buckets: every live entry in its own bucket, once. */
    for (b = 0; b < RP_CACHE_ENTRIES; b++)
        for (i = k->bucket[b], n = 0; i; i = k->e[i].hnext) {
            if (i > k->fresh_ent || efree[i])
                BAD("bucket %u holds free or unknown entry %u", b, i);
            if (inb[i])
                BAD("entry %u in the buckets twice", i);
            inb[i] = 1;
            if (k->e[i].hash % RP_CACHE_ENTRIES != b)
                BAD("entry %u (hash %u) in bucket %u", i, k->e[i].hash, b);
            if (k->e[i].flags & CE_DOOMED)
                BAD("doomed entry %u still in bucket %u", i, b);
        }
    for (i = 1; i <= k->fresh_ent; i++)
        if (!efree[i] && !(k->e[i].flags & CE_DOOMED) && !inb[i])
            BAD("live entry %u (state %u) not in its bucket", i, k->e[i].state);
    return 1;
}

/* ==== the arena under churn ==== */

#define NKEYS 40
#define NVAR 6     /* X-V absent, a..e: more than RP_CACHE_VARIANTS */
#define NCONN 24
#define MAX_FILLS 6 /* fills in progress at once */
#define CHURN_OPS 1000000L
#define CHECK_EVERY 500

static rp_conn CONN[NCONN];
static uint32_t model[NKEYS][NVAR]; /* seed of the version committed last, 0 none */
static struct {
    int key, var;     /* what CONN[i] fills or holds */
    uint32_t seed;
    uint32_t len, put; /* body: announced, appended */
} cs_[NCONN];
static uint32_t seed_next = 1;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static struct {
    long begins, stored, refused, appends, commits, aborts, early, lookups, hits, evicted_seen, pins, unpins,
        invalidates, evicts, checks;
} st;

static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

static uint32_t
mix(uint32_t x)
{
    x ^= x >> 16, x *= 0x7feb352du, x ^= x >> 15, x *= 0x846ca68bu, x ^= x >> 16;
    return x;
}

/* The body of version `seed`: its length and its bytes. */
static uint32_t
seed_len(uint32_t seed)
{
    uint32_t h = mix(seed);
    switch (h & 15) {
    case 0: return 20000 + h % 5000; /* over max_object: not stored */
    case 1: case 2: case 3: case 4: return (h >> 8) % 64; /* small: entries run out first */
    default: return (h >> 8) % 2000;
    }
}

static unsigned char
seed_byte(uint32_t seed, uint32_t off)
{
    return (unsigned char)(mix(seed * 0x9E3779B1u + off / 4) >> (8 * (off & 3)));
}

static int
mvar(int key, int var)
{
    return key % 4 == 0 ? 0 : var; /* every 4th key has no Vary */
}

static const rp_http_msg *
key_req(int key, int var, int upper_host)
{
    char t[16], f[32] = "";
    snprintf(t, sizeof t, "/k%d", key);
    if (var)
        snprintf(f, sizeof f, "X-V: %c\r\n", 'a' + var - 1);
    return reqt(t, upper_host ? "H" : "h", f);
}

static uint32_t
key_ckey(const rp_http_msg *m)
{
    return key_hash(fnv(FNV0, m->host.p, m->host.n, 1), m->target);
}

/* The version an entry holds: its ETag is "%08x" of the seed. */
static uint32_t
entry_seed(rp_proxy *p, const centry *e)
{
    char t[16];
    if (e->etag_len != 10)
        return 0;
    chain_get(p, &e->meta, (size_t)e->key_len + e->vary_len, t, 10);
    t[10] = 0;
    return (uint32_t)strtoul(t + 1, NULL, 16);
}

/* The entry's body is exactly version seed's. */
static int
body_ok(rp_proxy *p, const centry *e, uint32_t seed)
{
    char buf[512];
    uint32_t off = 0, len = seed_len(seed), i;
    if (e->body.len != len)
        BAD("entry %u: body %u bytes, version %08x has %u", (unsigned)(e - p->cache.e), e->body.len, seed, len);
    while (off < len) {
        uint32_t k = RP_MIN(len - off, (uint32_t)sizeof buf);
        chain_get(p, &e->body, off, buf, k);
        for (i = 0; i < k; i++)
            if ((unsigned char)buf[i] != seed_byte(seed, off + i))
                BAD("entry %u: body byte %u of version %08x differs", (unsigned)(e - p->cache.e), off + i, seed);
        off += k;
    }
    return 1;
}

/* Integrity, then every stored body and every pinned one. */
static int
full_check(void)
{
    unsigned i;
    int j;
    st.checks++;
    if (!integrity(&P, CONN, NCONN))
        return 0;
    for (i = 1; i <= P.cache.fresh_ent; i++) {
        const centry *e = &P.cache.e[i];
        if (e->state == CE_READY && !body_ok(&P, e, entry_seed(&P, e)))
            return 0;
    }
    for (j = 0; j < NCONN; j++)
        if (CONN[j].centry && !body_ok(&P, &P.cache.e[CONN[j].centry], cs_[j].seed))
            return 0;
    return 1;
}

static int
idle_conn(void)
{
    int j = (int)rnd(NCONN), n;
    for (n = 0; n < NCONN; n++, j = (j + 1) % NCONN)
        if (!CONN[j].cfill && !CONN[j].centry)
            return j;
    return -1;
}

static int
conn_with(int fill)
{
    int j = (int)rnd(NCONN), n;
    for (n = 0; n < NCONN; n++, j = (j + 1) % NCONN)
        if (fill ? CONN[j].cfill != 0 : CONN[j].centry != 0)
            return j;
    return -1;
}

/* A miss is forwarded and its response starts to be stored (fill_start). */
static int
op_begin(void)
{
    char f[256];
    int j = idle_conn(), key = (int)rnd(NKEYS), var = (int)rnd(NVAR), fills = 0, x;
    const rp_http_msg *rq, *m;
    uint32_t seed = seed_next++;
    for (x = 0; x < NCONN; x++)
        fills += CONN[x].cfill != 0;
    if (j < 0 || fills >= MAX_FILLS)
        return 1;
    st.begins++;
    rq = key_req(key, var, 0);
    snprintf(f, sizeof f, "Cache-Control: max-age=%u\r\nContent-Length: %u\r\nETag: \"%08x\"\r\n%s", rnd(1000),
             seed_len(seed), seed, key % 4 ? "Vary: X-V\r\n" : "");
    m = resp(200, f);
    memset(&CONN[j], 0, sizeof CONN[j]);
    CONN[j].ckey = key_ckey(rq);
    CONN[j].cflags = CF_ON | CF_LOOKUP;
    CONN[j].t_start = P.now;
    fill_start(&P, &CONN[j], rq, m);
    if (!CONN[j].cfill) {
        st.refused++;
        if (seed_len(seed) <= P.cfg.cache_max_object && P.cache.nentries > 0 && !P.cache.lru_tail)
            BAD("fill refused with %u entries but none on the LRU", P.cache.nentries);
        return 1;
    }
    st.stored++;
    if (P.cache.e[CONN[j].cfill].state != CE_FILLING || P.cache.e[CONN[j].cfill].expect != seed_len(seed))
        BAD("fill_start: entry %u state %u expect %llu", CONN[j].cfill, P.cache.e[CONN[j].cfill].state,
            (unsigned long long)P.cache.e[CONN[j].cfill].expect);
    cs_[j].key = key, cs_[j].var = var, cs_[j].seed = seed, cs_[j].len = seed_len(seed), cs_[j].put = 0;
    return 1;
}

static int
op_append(void)
{
    unsigned char buf[1024];
    int j = conn_with(1);
    uint32_t k, i;
    if (j < 0)
        return 1;
    st.appends++;
    k = RP_MIN(cs_[j].len - cs_[j].put, 1 + rnd(rnd(4) ? 300 : 1024));
    for (i = 0; i < k; i++)
        buf[i] = seed_byte(cs_[j].seed, cs_[j].put + i);
    if (k)
        fill_append(&P, &CONN[j], (const char *)buf, k);
    cs_[j].put += k;
    return 1;
}

/* The response ended: commit (an early end must abort). */
static int
op_commit(int early)
{
    int j = conn_with(1), key, var;
    unsigned i, hit, filling, variants, same = 0, pinned = 0;
    int voided;
    const rp_http_msg *rq;
    if (j < 0 || (early ? cs_[j].put == cs_[j].len : cs_[j].put != cs_[j].len))
        return 1;
    i = CONN[j].cfill;
    key = cs_[j].key, var = cs_[j].var;
    voided = (P.cache.e[i].flags & CE_VOID) != 0; /* invalidated mid-fill */
    fill_commit(&P, &CONN[j]);
    if (CONN[j].cfill)
        BAD("fill_commit left cfill %u", CONN[j].cfill);
    rq = key_req(key, var, 0);
    hit = cache_find(&P, key_ckey(rq), rq->host, rq, &filling, &variants);
    if (voided && !early) {
        if (hit == i)
            BAD("a fill invalidated mid-way was committed (entry %u)", i);
        return 1;
    }
    if (early) {
        st.early++;
        if (hit == i)
            BAD("a short body (%u of %u) was committed", cs_[j].put, cs_[j].len);
        return 1;
    }
    st.commits++;
    if (P.cache.e[i].state != CE_READY || hit != i)
        BAD("committed entry %u (state %u) not found: lookup gave %u", i, P.cache.e[i].state, hit);
    model[key][mvar(key, var)] = cs_[j].seed;
    /* at most RP_CACHE_VARIANTS of the URL stay, unless pinned ones block */
    for (i = 1; i <= P.cache.fresh_ent; i++) {
        const centry *e = &P.cache.e[i];
        if (e->state == CE_READY && !(e->flags & CE_DOOMED) && e->hash == CONN[j].ckey)
            same++, pinned += e->pins > 0;
    }
    if (same != variants || same > RP_CACHE_VARIANTS + pinned)
        BAD("key %d: %u variants stored (lookup counted %u, %u pinned)", key, same, variants, pinned);
    return 1;
}

static int
op_abort(void)
{
    int j = conn_with(1);
    if (j < 0)
        return 1;
    st.aborts++;
    fill_abort(&P, &CONN[j]);
    return 1;
}

/* A request: the entry it finds must be the version committed last. */
static int
op_lookup(int pin)
{
    int key = (int)rnd(NKEYS), var = (int)rnd(NVAR), mv = mvar(key, var), j;
    const rp_http_msg *rq = key_req(key, var, rnd(8) == 0);
    unsigned hit, filling, variants;
    uint32_t seed;
    st.lookups++;
    hit = cache_find(&P, key_ckey(rq), rq->host, rq, &filling, &variants);
    if (filling && P.cache.e[filling].state != CE_FILLING)
        BAD("cache_find: filling %u is in state %u", filling, P.cache.e[filling].state);
    if (!hit) {
        st.evicted_seen += model[key][mv] != 0;
        model[key][mv] = 0; /* evicted: whatever comes next is a new version */
        return 1;
    }
    st.hits++;
    seed = entry_seed(&P, &P.cache.e[hit]);
    if (P.cache.e[hit].state != CE_READY || (P.cache.e[hit].flags & CE_DOOMED))
        BAD("lookup found entry %u in state %u flags %u", hit, P.cache.e[hit].state, P.cache.e[hit].flags);
    if (seed != model[key][mv])
        BAD("key %d variant %d: found version %08x, last committed %08x", key, mv, seed, model[key][mv]);
    if (!body_ok(&P, &P.cache.e[hit], seed))
        return 0;
    if (pin && (j = idle_conn()) >= 0) {
        st.pins++;
        memset(&CONN[j], 0, sizeof CONN[j]);
        entry_pin(&P, &CONN[j], hit);
        cs_[j].key = key, cs_[j].var = var, cs_[j].seed = seed;
    }
    /* a hit moves to the front, as hit_begin does */
    lru_unlink(&P.cache, hit);
    lru_front(&P.cache, hit);
    return 1;
}

static int
op_unpin(void)
{
    int j = conn_with(0);
    if (j < 0)
        return 1;
    st.unpins++;
    if (!body_ok(&P, &P.cache.e[CONN[j].centry], cs_[j].seed)) /* served whole while pinned */
        return 0;
    entry_unpin(&P, &CONN[j]);
    return 1;
}

static int
op_invalidate(void)
{
    int key = (int)rnd(NKEYS), v;
    const rp_http_msg *rq = key_req(key, 0, 0);
    uint32_t ck = key_ckey(rq);
    unsigned i;
    st.invalidates++;
    cache_invalidate(&P, ck);
    for (v = 0; v < NVAR; v++)
        model[key][v] = 0;
    for (i = 1; i <= P.cache.fresh_ent; i++)
        if (P.cache.e[i].state == CE_READY && !(P.cache.e[i].flags & CE_DOOMED) && P.cache.e[i].hash == ck)
            BAD("entry %u of key %d survived its invalidation", i, key);
    return 1;
}

static int
op_evict(void)
{
    unsigned i;
    st.evicts++;
    if (evict_one(&P))
        return 1;
    for (i = P.cache.lru_head; i; i = P.cache.e[i].next)
        if (!P.cache.e[i].pins)
            BAD("evict_one found nothing, but entry %u is not pinned", i);
    return 1;
}

static void
test_churn(void)
{
    long op;
    int ok = 1, j;
    clock_t t0 = clock();
    rp_init(&P);
    memset(CONN, 0, sizeof CONN);
    memset(model, 0, sizeof model);
    P.now = 1000000;
    for (op = 0; op < CHURN_OPS && ok; op++) {
        uint32_t r = rnd(1000);
        if (r < 120)
            ok = op_begin();
        else if (r < 520)
            ok = op_append();
        else if (r < 620)
            ok = op_commit(0);
        else if (r < 623)
            ok = op_commit(1);
        else if (r < 628)
            ok = op_abort();
        else if (r < 850)
            ok = op_lookup(0);
        else if (r < 920)
            ok = op_lookup(1);
        else if (r < 975)
            ok = op_unpin();
        else if (r < 982)
            ok = op_invalidate();
        else if (r < 992)
            ok = op_evict();
        else
            P.now += rnd(5000);
        if (ok && op % CHECK_EVERY == 0)
            ok = full_check();
    }
    if (!CHECK(ok && full_check(), "churn: %ld operations keep the arena whole", op))
        tap_diag("after operation %ld: %s", op, why);
    tap_diag("churn: %ld begins (%ld stored, %ld refused), %ld appends, %ld commits, %ld early ends, %ld aborts, "
             "%ld lookups (%ld hits, %ld found evicted), %ld pins, %ld unpins, %ld invalidations, %ld evictions, "
             "%ld full checks; evictions %llu, store failures %llu; %.1f s",
             st.begins, st.stored, st.refused, st.appends, st.commits, st.early, st.aborts, st.lookups, st.hits,
             st.evicted_seen, st.pins, st.unpins, st.invalidates, st.evicts, st.checks,
             (unsigned long long)P.stats.cache_evictions, (unsigned long long)P.stats.cache_store_failures,
             (double)(clock() - t0) / CLOCKS_PER_SEC);
    CHECK(st.commits > 10000 && st.hits > 10000 && P.stats.cache_evictions > 1000 && st.evicted_seen > 1000,
          "churn: the mix really stored, hit and evicted");
    /* Everything let go: all blocks are either free or in a ready entry;
     * then evicting everything returns every block. */
    for (j = 0; j < NCONN; j++) {
        fill_abort(&P, &CONN[j]);
        entry_unpin(&P, &CONN[j]);
    }
    if (!CHECK(full_check(), "churn: exchanges released, still whole"))
        tap_diag("%s", why);
    while (evict_one(&P))
        ;
    CHECK(integrity(&P, CONN, NCONN) && P.cache.nblk_used == 0 && P.cache.nentries == 0 && !P.cache.lru_head,
          "churn: after evicting everything no block is used (%u blocks, %u entries) %s", P.cache.nblk_used,
          P.cache.nentries, why);
}

/* ==== targeted arena cases ==== */

/* Commit a tiny READY entry for (host, target) with hash `hash`. */
static unsigned
put_entry(rp_conn *c, uint32_t hash, const char *target, const char *vary, const char *rest)
{
    unsigned i;
    memset(c, 0, sizeof *c);
    c->ckey = hash;
    fill_begin(&P, c, STR("h"), cs(target));
    if (!(i = c->cfill))
        return 0;
    chain_put(&P, &P.cache.e[i].meta, vary, strlen(vary));
    P.cache.e[i].vary_len = (uint16_t)strlen(vary);
    chain_put(&P, &P.cache.e[i].meta, rest, strlen(rest));
    P.cache.e[i].expect = ~(uint64_t)0;
    fill_commit(&P, c);
    return P.cache.e[i].state == CE_READY ? i : 0;
}

static void
test_arena_cases(void)
{
    rp_conn a, b, c;
    unsigned i, j, x, fill;
    char buf[3 * RP_CACHE_BLOCK + 7];

    rp_init(&P);
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);

    /* chain_put / chain_get across block edges */
    for (i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 7 + 1);
    a.ckey = 1;
    fill_begin(&P, &a, STR("h"), STR("/c"));
    fill = a.cfill;
    CHECK(fill && chain_put(&P, &P.cache.e[fill].body, buf, RP_CACHE_BLOCK - 1) == RP_OK &&
              chain_put(&P, &P.cache.e[fill].body, buf + RP_CACHE_BLOCK - 1, 1) == RP_OK &&
              chain_put(&P, &P.cache.e[fill].body, buf + RP_CACHE_BLOCK, sizeof buf - RP_CACHE_BLOCK) == RP_OK,
          "chain_put: pieces ending on and across block edges");
    {
        char got[sizeof buf];
        int same = 1;
        for (i = 0; i < sizeof buf && same; i += 37) {
            size_t n = RP_MIN(sizeof buf - i, (size_t)300);
            chain_get(&P, &P.cache.e[fill].body, i, got, n);
            same = memcmp(got, buf + i, n) == 0;
        }
        CHECK(same && P.cache.e[fill].body.len == sizeof buf, "chain_get: every offset reads back");
    }
    CHECK(integrity(&P, NULL, 0), "chain edges: integrity %s", why);
    fill_abort(&P, &a);
    CHECK(integrity(&P, NULL, 0) && P.cache.nblk_used == 0, "fill_abort returns every block (%u) %s",
          P.cache.nblk_used, why);

    /* A pinned entry that is replaced stays whole until unpinned. */
    i = put_entry(&a, 77, "/r", "", "\"v1\"HEAD1");
    entry_pin(&P, &b, i);
    j = put_entry(&c, 77, "/r", "", "\"v2\"HEAD2");
    CHECK(i && j && j != i && (P.cache.e[i].flags & CE_DOOMED) && P.cache.e[i].pins == 1,
          "replaced while pinned: the old entry is doomed, not freed");
    CHECK(integrity(&P, NULL, 0), "replaced while pinned: integrity %s", why);
    entry_unpin(&P, &b);
    CHECK(P.cache.e[i].state == CE_FREE && integrity(&P, NULL, 0), "unpinned: the doomed entry is freed %s", why);
    cache_invalidate(&P, 77);
    CHECK(P.cache.nentries == 0 && P.cache.nblk_used == 0, "invalidate: all gone");

    /* The arena full of pinned entries: a fill is refused, nothing breaks. */
    {
        rp_conn pc[RP_CACHE_ENTRIES];
        unsigned n = 0, refused = 0;
        memset(pc, 0, sizeof pc);
        for (x = 0; x < 200; x++) {
            char t[16];
            rp_conn f;
            snprintf(t, sizeof t, "/p%u", x);
            memset(&f, 0, sizeof f);
            f.ckey = 1000 + x;
            fill_begin(&P, &f, STR("h"), cs(t));
            if (!f.cfill) {
                refused++;
                continue;
            }
            if (chain_put(&P, &P.cache.e[f.cfill].body, buf, 700) != RP_OK) {
                refused++;
                continue; /* fill_append would abort: chain_put left it filling */
            }
            P.cache.e[f.cfill].expect = ~(uint64_t)0;
            j = f.cfill;
            fill_commit(&P, &f);
            if (n < RP_CACHE_ENTRIES)
                entry_pin(&P, &pc[n++], j);
            if (!integrity(&P, NULL, 0))
                break;
        }
        CHECK(integrity(&P, NULL, 0) && refused > 0, "arena full of pinned entries: fills refused (%u), whole %s",
              refused, why);
        for (x = 0; x < n; x++)
            entry_unpin(&P, &pc[x]);
        while (evict_one(&P))
            ;
        CHECK(integrity(&P, NULL, 0) && P.cache.nblk_used == 0, "released and evicted: empty (%u blocks) %s",
              P.cache.nblk_used, why);
    }
}

/* Two URLs whose keys hash alike (FNV-1a, 32 bits: an attacker can make
 * such a pair): committing variants of one evicts the other, because the
 * variant-limit loop in fill_commit compares only e->key_len bytes of the
 * other entry's meta chain and never checks its key_len. */
static void
test_collision(void)
{
    rp_conn c;
    unsigned victim, x, found, filling, variants;
    const rp_http_msg *m;
    rp_init(&P);
    /* victim "h /a": meta = key, no Vary, ETag "x", then its head */
    victim = put_entry(&c, 4242, "/a", "", "\"x\"HTTP/1.1 200 OK\r\n");
    /* attacker: target "/a\"x\"HTTP" -- its key is a prefix of the victim's
     * meta; five Vary variants with the victim's hash */
    for (x = 0; x < 5; x++) {
        char v[16];
        snprintf(v, sizeof v, "x-v\n%u\n", x);
        put_entry(&c, 4242, "/a\"x\"HTTP", v, "\"y\"HTTP/1.1 200 OK\r\n");
    }
    m = reqt("/a", "h", "");
    found = cache_find(&P, 4242, STR("h"), m, &filling, &variants);
    CHECK(victim && found == victim,
          "BUG: another URL's variants do not evict an entry whose key only shares the hash (found %u, want %u)",
          found, victim);
    CHECK(integrity(&P, NULL, 0), "collision: integrity %s", why);
}

/* ==== whole exchanges over the fake port ==== */

#define T0 1000000u
static const char CFG[] = "listen 8080\n"
                          "pool a retries=0\n"
                          "device a 127.0.0.1:9001 max_fails=0\n"
                          "route host=app.example pool=a cache=on\n";

static int
run2(void)
{
    int i, quiet = 0;
    for (i = 0; i < 5000; i++) {
        int n = rp_poll(&P2, 0);
        if (n < 0)
            return 0;
        quiet = n ? 0 : quiet + 1;
        if (quiet >= 2)
            return 1;
    }
    return 0;
}

static char *
take2(int s)
{
    static char bufs[4][65536];
    static int k;
    char *b = bufs[k++ & 3];
    fp_take(s, b, sizeof bufs[0]);
    return b;
}

/* s with CR and LF escaped, cut at 120 bytes, for a diagnostic line. */
static const char *
esc(const char *s)
{
    static char b[256];
    size_t i, n = 0;
    for (i = 0; s[i] && i < 120 && n < sizeof b - 3; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            b[n++] = '\\', b[n++] = s[i] == '\r' ? 'r' : 'n';
        else
            b[n++] = s[i];
    }
    b[n] = 0;
    return b;
}

/* The device socket with request bytes waiting, newest first. */
static int
busy_dev(void)
{
    int i;
    for (i = fp_connect_count() - 1; i >= 0; i--) {
        int d = fp_connect_sock(i);
        if (d >= 0 && fp_pending(d) > 0)
            return d;
    }
    return -1;
}

static int
setup2(void)
{
    rp_cfg_error e;
    fp_reset_all();
    fp_log_quiet(1);
    fp_set_now(T0);
    rp_init(&P2);
    if (rp_config_parse(&P2, CFG, strlen(CFG), &e) != RP_OK) {
        CHECK(0, "config parses (line %d: %s)", e.line, e.msg);
        return 0;
    }
    if (rp_start(&P2) != RP_OK)
        return CHECK(0, "rp_start");
    return 1;
}

/* A GET on a new client connection; the device answers `answer` (NULL: the
 * test answers later).  Returns the client socket; *dev the device's. */
static int
get2(const char *path, const char *answer, int *dev, char **out)
{
    char rq[256];
    int c = fp_client_connect("10.0.0.7", 40000), d;
    run2();
    snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", path);
    fp_push_str(c, rq);
    run2();
    d = busy_dev();
    if (dev)
        *dev = d;
    if (d >= 0) {
        take2(d);
        if (answer) {
            fp_push_str(d, answer);
            run2();
        }
    }
    if (out)
        *out = take2(c);
    return c;
}

/* A stored entry is invalidated by a POST while a revalidation of it is
 * pinned; the device's 304 then serves the doomed entry, and hit_begin
 * moves it to the LRU front with lru_unlink/lru_front although it left the
 * LRU when it was doomed: lru_unlink on an entry with prev = next = 0
 * empties the list (every other ready entry becomes unevictable) and
 * lru_front puts the doomed entry on it; when it is unpinned and freed the
 * LRU still points at the free entry, and the next eviction "evicts" it
 * forever (entry_drop on a free entry pushes it on the free list again, and
 * blk_alloc / entry_alloc loop).  Same through stale_rescue and a hit that
 * waited for room (CF_HEADWAIT). */
static void
test_doomed_hit(void)
{
    int c2, c3, d2, d3;
    char *out;
    if (!setup2())
        return;
    get2("/keep", "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 4\r\n\r\nkeep", NULL, &out);
    CHECK(strstr(out, "stored") != NULL, "doomed hit: another entry stored");
    get2("/x", "HTTP/1.1 200 OK\r\nCache-Control: max-age=0\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\nok",
              NULL, &out);
    CHECK(strstr(out, "stored") != NULL, "doomed hit: /x stored (stale at once)");
    c2 = get2("/x", NULL, &d2, NULL);
    CHECK(d2 >= 0 && P2.cache.nentries == 2, "doomed hit: /x goes to revalidation (pinned)");
    c3 = fp_client_connect("10.0.0.8", 40001);
    run2();
    fp_push_str(c3, "POST /x HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1\r\n\r\nz");
    run2();
    d3 = busy_dev();
    if (!CHECK(d3 >= 0 && d3 != d2, "doomed hit: the POST reaches a device"))
        return;
    take2(d3);
    fp_push_str(d3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    run2();
    take2(c3);
    CHECK(P2.stats.cache_invalidations == 1 && P2.cache.nentries == 1, "doomed hit: the POST invalidated /x");
    CHECK(integrity(&P2, NULL, 0), "doomed hit: integrity before the 304 %s", why);
    fp_push_str(d2, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
    run2();
    out = take2(c2);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(out, "\r\n\r\nok"),
          "doomed hit: the 304 answers the client from the (doomed) entry");
    if (!CHECK(integrity(&P2, NULL, 0), "BUG: doomed hit: the LRU list is intact after serving a doomed entry"))
        tap_diag("%s (lru_head %u lru_tail %u nentries %u)", why, P2.cache.lru_head, P2.cache.lru_tail,
                 P2.cache.nentries);
}

/* Store n responses of 4000 bytes on fresh URLs through P2; 1 when every
 * one was answered and the cache stayed whole. */
static int
store_many(int n, int check)
{
    int x, c, d;
    char path[32], *out;
    static char body[4000];
    memset(body, 'b', sizeof body);
    for (x = 0; x < n; x++) {
        snprintf(path, sizeof path, "/f%d", x);
        c = get2(path, NULL, &d, NULL);
        if (d < 0)
            return 0;
        fp_push_str(d, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 4000\r\n\r\n");
        fp_push(d, body, sizeof body);
        run2();
        out = take2(c);
        fp_eof(c);
        run2();
        if (strncmp(out, "HTTP/1.1 200", 12) || (check && !integrity(&P2, NULL, 0)))
            return 0;
    }
    return 1;
}

/* Control for test_doomed_hang: the same stores without the doomed hit. */
static void
test_store_many(void)
{
    if (!setup2())
        return;
    CHECK(store_many(40, 1) && P2.stats.cache_evictions > 0,
          "store 40 x 4 KiB through the proxy: evictions (%llu), whole %s",
          (unsigned long long)P2.stats.cache_evictions, why);
}

/* The consequences, in a child with a deadline (a corrupt LRU can make
 * eviction loop): after test_doomed_hit's sequence, 40 more stores of 4 KiB
 * (evictions needed), then everything evicted.  Exit 0: the cache is whole
 * and empty at the end; 5: a store failed; 6: integrity broken; 7: blocks
 * or entries left over; SIGALRM: hung. */
static void
test_doomed_after(void)
{
    pid_t pid;
    int status = 0;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        long n = 0;
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1); /* no TAP lines from the child */
        signal(SIGALRM, SIG_DFL);
        alarm(20);
        test_doomed_hit();
        if (!store_many(40, 0))
            _exit(5);
        while (n++ < 100000 && evict_one(&P2))
            ;
        if (!integrity(&P2, NULL, 0)) {
            fprintf(stderr, "# child: %s\n", why);
            _exit(6);
        }
        _exit(P2.cache.nblk_used || P2.cache.nentries ? 7 : 0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        status = -1;
    if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "BUG: after a doomed hit, 40 stores and evicting everything leave a whole, empty cache"))
        tap_diag("child %s %d%s", WIFSIGNALED(status) ? "killed by signal" : "exited",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                 WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (SIGALRM: hung for 20 s)" : "");
}

/* A client's conditional request answered from the cache with a 304:
 * hit_fields parses the stored head to pick the fields a 304 repeats.  The
 * stored head has the device's fields plus Via and Date, so a device head
 * of RP_MAX_HEADERS fields without them does not parse again; hit_fields
 * then returns without writing anything, and the client gets "Age: ...",
 * "Cache-Status: ..." and an empty line: a response without a status line. */
static void
test_304_many_fields(void)
{
    static char r[8192];
    size_t n;
    int i, c;
    char *out;
    if (!setup2())
        return;
    n = (size_t)sprintf(r, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nETag: \"e\"\r\nContent-Length: 2\r\n");
    for (i = 0; i < RP_MAX_HEADERS - 3; i++)
        n += (size_t)sprintf(r + n, "X-%d: v\r\n", i);
    sprintf(r + n, "\r\nok");
    get2("/m", r, NULL, &out);
    CHECK(strstr(out, "stored") != NULL, "304 from a head of RP_MAX_HEADERS fields: stored");
    c = fp_client_connect("10.0.0.9", 40009);
    run2();
    fp_push_str(c, "GET /m HTTP/1.1\r\nHost: app.example\r\nIf-None-Match: \"e\"\r\n\r\n");
    run2();
    out = take2(c);
    if (!CHECK(strncmp(out, "HTTP/1.1 304 ", 13) == 0 || strncmp(out, "HTTP/1.1 200 ", 13) == 0,
               "BUG: a conditional hit on a stored head of %d fields (+ Via, Date) starts with a status line",
               RP_MAX_HEADERS))
        tap_diag("the client got \"%s\"", esc(out));
}

/* The same with a big stored head: hit_fields needs room for it twice in
 * the client's buffer (2 * n + 64 <= RP_BUF_SIZE), so a stored head a
 * little under RP_CACHE_META never fits; hit_begin fails, the exchange waits
 * for room it never gets (CF_HEADWAIT) and the client gets nothing until a
 * timeout.  Every head size that is stored must be answered at once. */
static void
test_304_big_head(void)
{
    static char r[RP_MAX_HEAD + 64];
    size_t n, pad;
    int c, stored = 0, stuck = 0;
    size_t first = 0;
    char *out;
    for (pad = RP_MAX_HEAD - 300; pad < RP_MAX_HEAD - 60; pad += 4) {
        if (!setup2())
            return;
        n = (size_t)sprintf(r, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nETag: \"e\"\r\nContent-Length: 2\r\nX-Pad: ");
        memset(r + n, 'p', pad);
        sprintf(r + n + pad, "\r\n\r\nok");
        get2("/b", r, NULL, &out);
        if (!strstr(out, "stored"))
            continue;
        stored++;
        c = fp_client_connect("10.0.0.9", 40010);
        run2();
        fp_push_str(c, "GET /b HTTP/1.1\r\nHost: app.example\r\nIf-None-Match: \"e\"\r\n\r\n");
        run2();
        out = take2(c);
        if (strncmp(out, "HTTP/1.1 304 ", 13) && strncmp(out, "HTTP/1.1 200 ", 13) && !stuck++)
            first = pad;
    }
    CHECK(stored > 10, "304 from big heads: %d sizes stored", stored);
    if (!CHECK(stuck == 0, "BUG: a conditional hit on a big stored head is answered at once"))
        tap_diag("%d of %d stored sizes got no answer; the first: a device head of %lu bytes", stuck, stored,
                 (unsigned long)(n + first + 4));
}

/* RFC 9111 §4.4: a POST's 2xx invalidates the stored responses of its URI,
 * but cache_invalidate skips an entry still being filled; when that fill
 * completes, the representation fetched before the POST is stored and
 * served as fresh for its whole max-age. */
static void
test_invalidate_during_fill(void)
{
    int c1, d1, c3, d3, c4;
    char *out;
    if (!setup2())
        return;
    c1 = get2("/x", NULL, &d1, NULL);
    if (!CHECK(d1 >= 0, "invalidate during a fill: GET reaches the device"))
        return;
    fp_push_str(d1, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 6\r\n\r\nold");
    run2();
    c3 = fp_client_connect("10.0.0.8", 40001);
    run2();
    fp_push_str(c3, "POST /x HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1\r\n\r\nz");
    run2();
    if (!CHECK((d3 = busy_dev()) >= 0, "invalidate during a fill: the POST reaches a device"))
        return;
    take2(d3);
    fp_push_str(d3, "HTTP/1.1 204 No Content\r\n\r\n");
    run2();
    take2(c3);
    fp_push_str(d1, "old");
    run2();
    take2(c1);
    c4 = fp_client_connect("10.0.0.9", 40002);
    run2();
    fp_push_str(c4, "GET /x HTTP/1.1\r\nHost: app.example\r\n\r\n");
    run2();
    out = take2(c4);
    if (!CHECK(strstr(out, "rproxy; hit") == NULL,
               "BUG: a fill in progress when a POST invalidated its URI is not served afterwards"))
        tap_diag("GET after the POST: %s", esc(strstr(out, "Cache-Status") ? strstr(out, "Cache-Status") : out));
}

/* A corrupt LRU or free list can make eviction loop forever: fail instead. */
static void
on_alarm(int sig)
{
    static const char msg[] = "not ok - test_cache: no progress for 120 s (an endless loop in the cache?)\n";
    (void)sig;
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

int
main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(120);
    rp_init(&P);
    test_cc();
    test_dates();
    test_lifetime();
    test_initial_age();
    test_entry_use();
    test_vary();
    CHECK(integrity(&P, NULL, 0) && P.cache.nblk_used == 0, "after the Vary tests the arena is empty %s", why);
    test_arena_cases();
    test_collision();
    test_churn();
    test_store_many();
    test_doomed_hit();
    test_doomed_after();
    test_304_many_fields();
    test_304_big_head();
    test_invalidate_during_fill();
    return tap_done();
}

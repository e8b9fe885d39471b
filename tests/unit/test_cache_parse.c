/*
 * test_cache_parse.c -- white-box tests of what the cache reads from
 * fields: Cache-Control (cc_parse / cc_of: quoted values, duplicates,
 * unknown directives, malformed and empty list elements, clamping,
 * max-stale, Pragma) and HTTP dates (http_date in its three formats and on
 * invalid input; http_date_format against libc's gmtime/strftime, and
 * every format read back).  Inputs end at a guard page (guard.h), so an
 * over-read faults.
 *
 * SPDX-License-Identifier: MIT
 *
 * cache_scenario.h includes src/rp_int.h (see there and the Makefile).
 */
#include "cache_scenario.h"

#include <time.h>

#include "guard.h"

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

/* The table, and empty list elements. */
static void
test_cc_parse(void)
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
    CHECK(!(ccp("max-age=5,").f & CC_BAD), "cc_parse \"max-age=5,\": an empty last list element is not malformed");
    CHECK(!(ccp("max-age=5, ").f & CC_BAD), "cc_parse \"max-age=5, \": an empty last list element is not malformed");
    CHECK(!(ccp(",").f & CC_BAD), "cc_parse \",\": empty list elements alone are not malformed");
}

/* cc_of: every line, duplicates across lines, Pragma. */
static void
test_cc_of(void)
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
test_http_date(void)
{
    size_t i;
    for (i = 0; i < RP_COUNT(date_cases); i++)
        CHECK_INT(hd(date_cases[i].in), date_cases[i].want, "http_date \"%s\"", date_cases[i].in);
    for (i = 0; i < RP_COUNT(date_forms); i++)
        CHECK_INT(hd(date_forms[i].in), date_forms[i].want, "http_date \"%s\" (IMF-fixdate / RFC 850)",
                  date_forms[i].in);
}

/* The formatter against libc, and every format read back. */
static void
test_http_date_format(void)
{
    size_t i;
    int64_t t, bad_fmt = -1, bad_rt = -1, bad_asc = -1, bad_850 = -1;
    long nfmt = 0, nrt = 0, nasc = 0, n850 = 0, runs = 0;
    uint64_t x = 88172645463325252ull;
    char mine[32], libc[64];

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
    CHECK(nrt == 0, "http_date(http_date_format(t)) == t for %ld times (%ld differ, first %lld)", runs, nrt,
          (long long)bad_rt);
    CHECK(nasc == 0, "http_date reads libc's asctime form back for %ld times (%ld differ, first %lld)", runs, nasc,
          (long long)bad_asc);
    CHECK(n850 == 0, "http_date reads the RFC 850 form back (%ld differ, first %lld)", n850, (long long)bad_850);
}

static const tap_test tests[] = {
    TAP_TEST(cc_parse),
    TAP_TEST(cc_of),
    TAP_TEST(http_date),
    TAP_TEST(http_date_format),
};

int
main(int argc, char **argv)
{
    return cache_main(argc, argv, tests, TAP_COUNT(tests));
}

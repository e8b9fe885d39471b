/*
 * test_cache_use.c -- white-box tests of when a stored response may be
 * used: cache_lifetime (s-maxage, max-age, Expires, the heuristic, anything
 * malformed), initial_age (Age, apparent age, response delay), entry_use
 * (fresh, stale, max-stale, min-fresh, no-cache, must-revalidate) and the
 * Vary key of an entry (vary_key / vary_match).
 *
 * SPDX-License-Identifier: MIT
 *
 * cache_scenario.h includes src/rp_int.h (see there and the Makefile).
 */
#include "cache_scenario.h"

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
              "lifetime: Expires as IMF-fixdate (the usual form) - Date");
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
    CHECK(integrity(&P, NULL, 0) && P.cache.nblk_used == 0, "after the Vary tests the arena is empty %s", why);
}

static const tap_test tests[] = {
    TAP_TEST(lifetime),
    TAP_TEST(initial_age),
    TAP_TEST(entry_use),
    TAP_TEST(vary),
};

int
main(int argc, char **argv)
{
    return cache_main(argc, argv, tests, TAP_COUNT(tests));
}

/*
 * test_pathmap.c -- src/25-pathmap.c (issue 15: device UIs under a path),
 * white-box through src/rp_int.h: the request target rewrite, the
 * dot-segment refusal, Location / Content-Location / Refresh / Set-Cookie
 * mapping, and the config options that feed them.
 *
 * SPDX-License-Identifier: MIT
 *
 * Decisions tested here (README "Configuration reference", route rewrite=):
 * path= and rewrite= both end in '/', so /cam1 and /cam10/ are not under
 * /cam1/; %2F is not a separator for matching (bytes are compared as
 * sent) but counts as one for the dot-segment check; a request path with
 * a dot-segment on a rewrite= route is refused (400), not normalised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "tap.h"
#include "fakeport.h"
#include "rp_int.h"

#if RP_ENABLE_PATH_MAP

static rp_str
sv(const char *s)
{
    rp_str v;
    v.p = s, v.n = strlen(s);
    return v;
}

/* The route's target toward the device. */
static const char *
target(const char *path, const char *rewrite, const char *t)
{
    static char out[512];
    rp_route r;
    wbuf w;
    memset(&r, 0, sizeof r);
    r.path = path, r.rewrite = rewrite;
    w.p = out, w.n = 0, w.cap = sizeof out - 1, w.full = 0;
    w_target_mapped(&w, &r, sv(t));
    out[w.n] = 0;
    return out;
}

static void
test_target(void)
{
    CHECK_STR(target("/cam1/", "/", "/cam1/img/a.jpg"), "/img/a.jpg", "target: /cam1/img/a.jpg");
    CHECK_STR(target("/cam1/", "/", "/cam1/"), "/", "target: /cam1/ is /");
    CHECK_STR(target("/cam1/", "/", "/cam1/?a=1&b=/x"), "/?a=1&b=/x", "target: query kept");
    CHECK_STR(target("/cam1/", "/api/v2/", "/cam1/x?y"), "/api/v2/x?y", "target: rewrite=/api/v2/");
    CHECK_STR(target("/cam1/", "/", "/cam1/a%2Fb"), "/a%2Fb", "target: %2F passed as sent");
}

/* Which paths the route path=/cam1/ takes (route_match: a byte prefix). */
static void
test_prefix_match(void)
{
    rp_config c;
    memset(&c, 0, sizeof c);
    c.routes[0].path = "/cam1/";
    c.routes[0].rewrite = "/";
    c.nroutes = 1;
    CHECK_INT(route_match(&c, sv("gw"), sv("/cam1/")), 0, "match: /cam1/");
    CHECK_INT(route_match(&c, sv("gw"), sv("/cam1/x")), 0, "match: /cam1/x");
    CHECK_INT(route_match(&c, sv("gw"), sv("/cam1")), -1, "match: /cam1 is not under /cam1/");
    CHECK_INT(route_match(&c, sv("gw"), sv("/cam10/x")), -1, "match: /cam10/x is not under /cam1/");
    CHECK_INT(route_match(&c, sv("gw"), sv("/cam1%2Fx")), -1, "match: /cam1%%2Fx is not under /cam1/");
    CHECK_INT(route_match(&c, sv("gw"), sv("/CAM1/x")), -1, "match: paths are case-sensitive");
}

static void
test_climbs(void)
{
    static const char *const bad[] = {
        "/cam1/../admin", "/cam1/..", "/cam1/./x", "/cam1/a/../../admin", "/cam1/%2e%2e/admin",
        "/cam1/.%2E/admin", "/cam1/..%2fadmin", "/cam1/..%5Cadmin", "/cam1/..\\admin",
        "/cam1/..?x", "/cam1/%2e/x",
    };
    static const char *const good[] = {
        "/cam1/", "/cam1/a.b", "/cam1/...", "/cam1/..a", "/cam1/a..", "/cam1/.hidden",
        "/cam1/x?p=../..", "/cam1/%2e%2e%2e", "/cam1/%41", "/cam1/a%2",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(path_climbs(sv(bad[i])), "climbs: %s refused", bad[i]);
    for (i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(!path_climbs(sv(good[i])), "climbs: %s passes", good[i]);
}

static hmap
ctx(const char *cpath, const char *dpath, const char *chost)
{
    hmap hm;
    hm.cpath = sv(cpath), hm.dpath = sv(dpath);
    hm.scheme = sv("https");
    hm.chost = sv(chost);
    hm.dhost = sv("cam.local");
    hm.daddr = sv("10.0.0.5:8080");
    return hm;
}

/* A field written through map_field (or as it came when not one it maps). */
static const char *
field(const hmap *hm, int id, const char *name, const char *value)
{
    static char out[9000];
    rp_header h;
    wbuf w;
    h.id = id, h.name = sv(name), h.value = sv(value);
    w.p = out, w.n = 0, w.cap = sizeof out - 1, w.full = 0;
    if (!map_field(&w, &h, hm))
        w_header(&w, &h);
    if (w.full)
        return "(full)";
    out[w.n] = 0;
    if (w.n >= 2)
        out[w.n - 2] = 0; /* without the CRLF */
    return out + strlen(name) + 2;
}

static void
test_location(void)
{
    hmap a = ctx("/cam1/", "/", "gw.local"), b = ctx("/cam1/", "/api/v2/", "gw.local");
    hmap nohost = ctx("/cam1/", "/", "");
    struct {
        int which;
        const char *in, *out;
    } t[] = {
        {0, "/login", "/cam1/login"},
        {0, "/", "/cam1/"},
        {0, "/a?next=/b", "/cam1/a?next=/b"},
        {0, "http://10.0.0.5:8080/login", "https://gw.local/cam1/login"},
        {0, "HTTP://CAM.LOCAL/login?x=1", "https://gw.local/cam1/login?x=1"},
        {0, "https://cam.local", "https://gw.local/cam1/"},
        {0, "http://cam.local?x", "https://gw.local/cam1/?x"},
        {0, "//cam.local/x", "https://gw.local/cam1/x"},
        {0, "http://other.example/login", "http://other.example/login"},
        {0, "http://10.0.0.5:8081/login", "http://10.0.0.5:8081/login"},
        {0, "http://cam.local.evil/x", "http://cam.local.evil/x"},
        {0, "login", "login"},
        {0, "../x", "../x"},
        {0, "?x", "?x"},
        {0, "", ""},
        {0, "mailto:a@b", "mailto:a@b"},
        {1, "/api/v2/x", "/cam1/x"},
        {1, "/api/v2", "/cam1"},
        {1, "/api/v2?q", "/cam1?q"},
        {1, "/api/v20", "/api/v20"},
        {1, "/other", "/other"},
        {1, "http://cam.local/api/v2/", "https://gw.local/cam1/"},
        {1, "http://cam.local/", "http://cam.local/"},
        {1, "http://cam.local", "http://cam.local"},
        {2, "http://cam.local/login", "/cam1/login"},
    };
    const hmap *hms[3];
    size_t i;
    hms[0] = &a, hms[1] = &b, hms[2] = &nohost;
    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_STR(field(hms[t[i].which], H_LOCATION, "Location", t[i].in), t[i].out,
                  "location[%d]: '%s'", t[i].which, t[i].in);
        CHECK_STR(field(hms[t[i].which], H_CONTENT_LOCATION, "Content-Location", t[i].in),
                  t[i].out, "content-location[%d]: '%s'", t[i].which, t[i].in);
    }
    /* other fields with a URL in them are not touched */
    CHECK_STR(field(&a, H_OTHER, "Link", "</style.css>; rel=preload"), "</style.css>; rel=preload",
              "location: Link untouched");
    CHECK_STR(field(&a, H_OTHER, "X-Location", "/login"), "/login", "location: X-Location untouched");
}

static void
test_refresh(void)
{
    hmap a = ctx("/cam1/", "/", "gw.local");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "5; url=/login"), "5; url=/cam1/login", "refresh: url=");
    CHECK_STR(field(&a, H_OTHER, "refresh", "0;URL=/x"), "0;URL=/cam1/x", "refresh: URL= any case");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "3; url='/x?a=1'"), "3; url='/cam1/x?a=1'",
              "refresh: quoted url");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "3; url = http://cam.local/p"),
              "3; url = https://gw.local/cam1/p", "refresh: spaces, absolute");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "10"), "10", "refresh: no url");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "10; u"), "10; u", "refresh: truncated");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "10; urn=/x"), "10; urn=/x", "refresh: not url=");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "1; url=http://else/x"), "1; url=http://else/x",
              "refresh: another host");
    CHECK_STR(field(&a, H_OTHER, "Refresh", "1; url='"), "1; url='", "refresh: lone quote");
}

static void
test_cookie(void)
{
    hmap a = ctx("/cam1/", "/", "gw.local"), b = ctx("/cam1/", "/api/v2/", "gw.local");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "sid=1; Path=/"), "sid=1; Path=/cam1/",
              "cookie: Path=/");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "sid=1; HttpOnly; path=/ui; Secure"),
              "sid=1; HttpOnly; path=/cam1/ui; Secure", "cookie: path= any case, between");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "path=/x; Max-Age=5"), "path=/x; Max-Age=5",
              "cookie: the name=value pair is never a Path");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "sid=1"), "sid=1", "cookie: no Path");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "sid=1;Path=/;Path=/a"),
              "sid=1;Path=/cam1/;Path=/cam1/a", "cookie: each Path= mapped");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "sid=1; Path=  /x  ; Domain=a"),
              "sid=1; Path=  /x  ; Domain=a", "cookie: spaces after = are not a path: kept");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "sid=1; Path=; Domain=a"),
              "sid=1; Path=; Domain=a", "cookie: empty Path kept");
    CHECK_STR(field(&b, H_SET_COOKIE, "Set-Cookie", "sid=1; Path=/api/v2"), "sid=1; Path=/cam1",
              "cookie: prefix without '/'");
    CHECK_STR(field(&b, H_SET_COOKIE, "Set-Cookie", "sid=1; Path=/"), "sid=1; Path=/",
              "cookie: a Path above the prefix is kept");
    CHECK_STR(field(&a, H_SET_COOKIE, "Set-Cookie", "a=b; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/"),
              "a=b; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/cam1/", "cookie: Expires with a comma");
}

/* 8 KB values: mapped in full or the writer says full (502), never cut. */
static void
test_long(void)
{
    static char big[8200];
    hmap a = ctx("/cam1/", "/", "gw.local");
    const char *r;
    big[0] = '/';
    memset(big + 1, 'a', sizeof big - 2);
    big[sizeof big - 1] = 0;
    r = field(&a, H_LOCATION, "Location", big);
    CHECK(strlen(r) == strlen(big) + 5 && memcmp(r, "/cam1/aaa", 9) == 0, "long: 8 KB Location mapped whole");
}

static void
test_config_ok(void)
{
    static const char text[] = "listen 80\npool cams host=cam.local\ndevice cams 127.0.0.1:1\n"
                               "route path=/cam1/ pool=cams rewrite=/\n"
                               "route path=/api/ pool=cams REWRITE=\"/api/v2/\"\nroute pool=cams\n";
    rp_proxy *p = fp_proxy_new();
    rp_cfg_error e;
    if (rp_init(p) != RP_OK || !CHECK_INT(rp_config_parse(p, text, sizeof text - 1, &e), RP_OK, "config: parses")) {
        tap_diag("line %d: %s", e.line, e.msg);
        fp_proxy_free(p);
        return;
    }
    CHECK_STR(p->cfg.pools[0].host, "cam.local", "config: pool host=");
    CHECK_STR(p->cfg.routes[0].rewrite, "/", "config: rewrite=/");
    CHECK_STR(p->cfg.routes[1].rewrite, "/api/v2/", "config: quoted rewrite=");
    CHECK(p->cfg.routes[2].rewrite == NULL, "config: no rewrite= is NULL");
    fp_proxy_free(p);
}

#if RP_ENABLE_ERROR_PAGES
/* error_page: blobs loaded into the store; too large (one page, all pages). */
static void
test_error_pages(void)
{
    static char big[RP_BUF_SIZE / 2 + 1], third[RP_ERROR_PAGE_BYTES / 3 + 1];
    static const char head[] = "listen 80\npool a\ndevice a 127.0.0.1:1\nroute pool=a\n";
    char text[512];
    rp_proxy *p;
    rp_cfg_error e;
    int rc;
    memset(big, 'b', sizeof big);
    memset(third, 't', sizeof third);
    fp_blob_add("big.html", big, sizeof big);
    fp_blob_add("third.html", third, sizeof third);
    fp_blob_add("ok.json", "{\"error\":1}", 11);
    snprintf(text, sizeof text, "%serror_page 404 502 ok.json\nerror_page 503 third.html\n", head);
    p = fp_proxy_new();
    rp_init(p);
    rc = rp_config_parse(p, text, strlen(text), &e);
    if (CHECK_INT(rc, RP_OK, "error_page: parses (%s)", e.msg)) {
        CHECK_INT(p->cfg.nepages, 3, "error_page: three statuses");
        CHECK_INT(p->cfg.epages[1].status, 502, "error_page: 502");
        CHECK_INT(p->cfg.epages[1].ctype, 3, "error_page: .json is application/json");
        CHECK(p->cfg.epages[1].len == 11 && memcmp(p->cfg.epage_store + p->cfg.epages[1].off, "{\"error\":1}", 11) == 0,
              "error_page: the bytes are in the store");
        CHECK_INT(p->cfg.epages[2].ctype, 1, "error_page: .html is text/html");
    }
    fp_proxy_free(p);
    snprintf(text, sizeof text, "%serror_page 404 big.html\n", head);
    p = fp_proxy_new();
    rp_init(p);
    rc = rp_config_parse(p, text, strlen(text), &e);
    CHECK_INT(rc, RP_ECONFIG, "error_page: a page over RP_BUF_SIZE/2 refused");
    CHECK(strstr(e.msg, "error page too large 'big.html'") != NULL && e.line == 5, "error_page: big: %s", e.msg);
    fp_proxy_free(p);
    snprintf(text, sizeof text, "%serror_page 404 third.html\nerror_page 502 third.html\nerror_page 503 third.html\n", head);
    p = fp_proxy_new();
    rp_init(p);
    rc = rp_config_parse(p, text, strlen(text), &e);
    CHECK_INT(rc, RP_ECONFIG, "error_page: pages over RP_ERROR_PAGE_BYTES refused");
    CHECK(strstr(e.msg, "RP_ERROR_PAGE_BYTES") != NULL && e.line == 7, "error_page: store full: %d: %s", e.line, e.msg);
    fp_proxy_free(p);
}
#endif

static const tap_test tests[] = {
    TAP_TEST(target), TAP_TEST(prefix_match), TAP_TEST(climbs), TAP_TEST(location),
    TAP_TEST(refresh), TAP_TEST(cookie), TAP_TEST(long), TAP_TEST(config_ok),
#if RP_ENABLE_ERROR_PAGES
    TAP_TEST(error_pages),
#endif
};

int
main(int argc, char **argv)
{
    fp_log_quiet(1);
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}
#else
int
main(void)
{
    printf("1..0 # skip RP_ENABLE_PATH_MAP 0\n");
    return 0;
}
#endif

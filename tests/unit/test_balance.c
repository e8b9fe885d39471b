/*
 * test_balance.c -- the balancer and health, through the public API and the
 * fake port (a settable clock, no sleeps): smooth-WRR sequences, leastconn
 * ties, effective-weight recovery, passive health windows, backups, active
 * health probes and the status page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "fakeport.h"
#include "tap.h"

#define T0 1000000u

static rp_proxy *P;

/* Parse cfg into a fresh proxy, start it, set the clock. */
static int
setup(const char *cfg)
{
    rp_cfg_error e;
    fp_reset_all();
    fp_set_now(T0);
    P = fp_proxy_new();
    if (rp_init(P) != RP_OK || rp_config_parse(P, cfg, strlen(cfg), &e) != RP_OK) {
        CHECK(0, "config parses (line %d: %s)", e.line, e.msg);
        return 0;
    }
    return CHECK_INT(rp_start(P), RP_OK, "rp_start");
}

static void
teardown(void)
{
    fp_proxy_free(P);
    P = NULL;
}

/* Let the loop see the fake clock and any readiness. */
static void
turn(void)
{
    int i;
    for (i = 0; i < 50 && rp_poll(P, 0) > 0; i++)
        ;
}

static void
at(uint64_t ms_from_t0)
{
    fp_set_now(T0 + ms_from_t0);
    turn();
}

/* n picks from pool 0 as letters (device index 0 = 'a'). */
static const char *
picks(int n, uint32_t tried)
{
    static char out[128];
    int i;
    for (i = 0; i < n && i < (int)sizeof(out) - 1; i++) {
        int d = rp_pool_pick(P, 0, tried);
        out[i] = d < 0 ? '-' : (char)('a' + d);
    }
    out[i] = 0;
    return out;
}

static void
cfg_for(char *buf, size_t cap, const char *pool_opts, const int *w, int n, const char *extra)
{
    int i, k = snprintf(buf, cap, "listen 8080\npool p %s\n", pool_opts);
    for (i = 0; i < n; i++)
        k += snprintf(buf + k, cap - (size_t)k, "device p 127.0.0.1:%d weight=%d %s\n",
                      9001 + i, w[i], extra);
    snprintf(buf + k, cap - (size_t)k, "route pool=p\n");
}

/* nginx's smooth weighted round-robin, exact sequences (two cycles). */
static void
test_swrr_sequences(void)
{
    static const struct {
        int w[4], n;
        const char *want;
    } cases[] = {
        {{5, 1, 1}, 3, "aabacaaaabacaa"},
        {{1, 1}, 2, "abab"},
        {{3, 1}, 2, "aabaaaba"},
        {{4, 2, 1}, 3, "abacabaabacaba"},
        {{2, 3}, 2, "bababbabab"},
        {{1, 1, 1}, 3, "abcabc"},
        {{10, 1}, 2, "aaaaabaaaaaaaaaabaaaaa"},
        {{1, 0, 1}, 3, "acac"},
    };
    size_t i;
    char cfg[1024];
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_for(cfg, sizeof(cfg), "", cases[i].w, cases[i].n, "");
        if (!setup(cfg))
            continue;
        CHECK_STR(picks((int)strlen(cases[i].want), 0), cases[i].want,
                  "swrr: weights %d,%d,%d,%d", cases[i].w[0], cases[i].w[1], cases[i].w[2],
                  cases[i].w[3]);
        teardown();
    }
}

static void
test_tried_and_disabled(void)
{
    static const int w[] = {1, 1, 0};
    char cfg[1024];
    cfg_for(cfg, sizeof(cfg), "", w, 3, "");
    if (!setup(cfg))
        return;
    CHECK_STR(picks(4, 1u << 0), "bbbb", "tried mask excludes a device");
    CHECK_STR(picks(2, 3u), "--", "all tried or disabled: -1");
    CHECK(!rp_device_up(P, 2), "weight=0 device is not up");
    teardown();
}

static void
test_leastconn(void)
{
    static const int w[] = {1, 1, 2};
    char cfg[1024];
    cfg_for(cfg, sizeof(cfg), "balance=leastconn", w, 3, "");
    if (!setup(cfg))
        return;
    /* all idle: a tie at 0 conns, rotated by weight (c has 2) */
    CHECK_STR(picks(8, 0), "cabccabc", "leastconn: ties rotate by smooth WRR");
    P->cfg.devices[0].active = 3;
    P->cfg.devices[1].active = 1;
    P->cfg.devices[2].active = 4; /* ratios 3, 1, 2 */
    CHECK_STR(picks(3, 0), "bbb", "leastconn: fewest active/weight wins");
    P->cfg.devices[1].active = 2; /* ratios 3, 2, 2: b and c tie */
    {
        const char *s = picks(6, 0);
        CHECK(strchr(s, 'a') == NULL && strchr(s, 'b') && strchr(s, 'c'),
              "leastconn: tie between b and c shares, a excluded (got %s)", s);
    }
    teardown();
}

/* A failure lowers the effective weight by weight/max_fails; each pick in
 * which the device takes part gives one back. */
static void
test_effective_recovery(void)
{
    static const int w[] = {10, 10};
    char cfg[1024];
    int k;
    cfg_for(cfg, sizeof(cfg), "", w, 2, "max_fails=4 fail_timeout=10");
    if (!setup(cfg))
        return;
    rp_device_report(P, 0, RP_EREFUSED);
    CHECK_INT(P->cfg.devices[0].effective, 10 - 10 / 4, "effective drops by weight/max_fails");
    CHECK(rp_device_up(P, 0), "one failure of four: still up");
    for (k = 1; k <= 2; k++) {
        picks(1, 0);
        CHECK_INT(P->cfg.devices[0].effective, 8 + k, "effective recovers by 1 per pick (%d)", k);
    }
    picks(5, 0);
    CHECK_INT(P->cfg.devices[0].effective, 10, "effective never passes the weight");
    /* while recovering, the device gets fewer picks than its peer */
    rp_device_report(P, 0, RP_EREFUSED);
    rp_device_report(P, 0, RP_EREFUSED);
    rp_device_report(P, 0, RP_EREFUSED);
    {
        const char *s = picks(10, 0);
        int na = 0;
        for (; *s; s++)
            na += *s == 'a';
        CHECK(na < 5, "recovering device gets less than its share (%d of 10)", na);
    }
    teardown();
}

/* max_fails within fail_timeout; down for fail_timeout; one failure of the
 * probe request takes it out again; a success clears everything. */
static void
test_passive_window(void)
{
    static const int w[] = {1, 1};
    char cfg[1024];
    cfg_for(cfg, sizeof(cfg), "", w, 2, "max_fails=2 fail_timeout=10");
    if (!setup(cfg))
        return;
    rp_device_report(P, 0, RP_EREFUSED);
    at(11000); /* the first failure falls out of the 10 s window */
    rp_device_report(P, 0, RP_EREFUSED);
    CHECK(rp_device_up(P, 0), "failures 11 s apart do not add up");
    at(12000);
    rp_device_report(P, 0, RP_EREFUSED);
    CHECK(!rp_device_up(P, 0), "two failures within fail_timeout: down");
    CHECK_STR(picks(4, 0), "bbbb", "a down device gets no picks");
    at(12000 + 9999);
    CHECK(!rp_device_up(P, 0), "still down 1 ms before fail_timeout ends");
    at(12000 + 10001);
    CHECK(rp_device_up(P, 0), "back after fail_timeout");
    rp_device_report(P, 0, RP_ETIMEDOUT);
    CHECK(!rp_device_up(P, 0), "the probe after fail_timeout fails: down again at once");
    at(12000 + 20002);
    rp_device_report(P, 0, RP_OK);
    rp_device_report(P, 0, RP_EREFUSED);
    CHECK(rp_device_up(P, 0), "a success clears the count");
    CHECK_INT(P->cfg.devices[0].failures, 5, "failures counted");
    teardown();
}

static void
test_backups(void)
{
    static const char cfg[] = "listen 8080\npool p\n"
                              "device p 127.0.0.1:9001 max_fails=1 fail_timeout=5\n"
                              "device p 127.0.0.1:9002 max_fails=1 fail_timeout=5\n"
                              "device p 127.0.0.1:9003 backup\n"
                              "route pool=p\n";
    if (!setup(cfg))
        return;
    CHECK_STR(picks(4, 0), "abab", "backup idle while primaries are up");
    rp_device_report(P, 0, RP_EREFUSED);
    CHECK_STR(picks(3, 0), "bbb", "one primary down: the other takes it all");
    rp_device_report(P, 1, RP_EREFUSED);
    CHECK_STR(picks(3, 0), "ccc", "every primary down: the backup serves");
    at(5001);
    {
        const char *s = picks(6, 0);
        CHECK(strchr(s, 'c') == NULL && strchr(s, 'a') && strchr(s, 'b'),
              "primaries recover: they take it all back (got %s)", s);
    }
    rp_device_report(P, 0, RP_EREFUSED);
    rp_device_report(P, 1, RP_EREFUSED);
    rp_device_report(P, 2, RP_EREFUSED);
    {
        const char *s = picks(3, 0);
        CHECK(strchr(s, '-') == NULL, "everything down: tried anyway, never refused (%s)", s);
    }
    teardown();
}

/* Active health through the fake port: probes spaced by interval, one at a
 * time, fall and rise counted, expect honoured. */
static void
test_active_health(void)
{
    static const char cfg[] = "listen 8080\npool p\n"
                              "device p 127.0.0.1:9001\n"
                              "device p 127.0.0.1:9002\n"
                              "health p path=/hz interval=1000 timeout=300 rise=2 fall=2 expect=204\n"
                              "route pool=p\n";
    char buf[512];
    int i, n0, s;
    if (!setup(cfg))
        return;
    at(100);
    n0 = fp_connect_count();
    CHECK_INT(n0, 2, "one probe per device after start");
    s = fp_device_sock(9001, 0);
    turn();
    fp_take(s, buf, sizeof(buf));
    CHECK(strncmp(buf, "GET /hz HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n", 40) == 0,
          "probe request line and Host");
    CHECK(strstr(buf, "Connection: close\r\n") != NULL, "probe asks to close");
    fp_push_str(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); /* not the 204 expected */
    turn();
    CHECK(fp_closed(s), "probe connection closed after the status line");
    CHECK(rp_device_up(P, 0), "one failed probe of fall=2: still up");
    at(600);
    CHECK_INT(fp_connect_count(), n0, "no second probe before the interval (9001 and 9002 done?)");
    /* 9002's probe is still open: it times out at 300 ms and counts as failed */
    at(1200);
    for (i = 0; i < 2; i++) {
        int k = fp_connect_count();
        int sk = -1, j;
        for (j = 0; j < k; j++)
            if (fp_connect_port(j) == 9001 && !fp_closed(fp_connect_sock(j)))
                sk = fp_connect_sock(j);
        if (!CHECK(sk >= 0, "a new probe to 9001 (round %d)", i))
            break;
        turn();
        fp_push_str(sk, "HTTP/1.1 500 Oops\r\n\r\n");
        turn();
        at(1200 + 1100 * (uint64_t)(i + 1));
    }
    CHECK(!rp_device_up(P, 0), "fall=2 failed probes: down");
    CHECK(!rp_device_up(P, 1), "probes that time out count as failures");
    teardown();
}

static void
test_status_page(void)
{
    static const char cfg[] = "listen 8080\npool cams\n"
                              "device cams 127.0.0.1:9001 weight=5\n"
                              "device cams 127.0.0.1:9002 backup\n"
                              "route pool=cams\nstatus path=/st allow=10.0.0.0/8\n";
    char buf[8192];
    int c;
    if (!setup(cfg))
        return;
    c = fp_client_connect("10.1.2.3", 5555);
    turn();
    fp_push_str(c, "GET /st HTTP/1.1\r\nHost: g\r\n\r\n");
    turn();
    fp_take(c, buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0, "status: 200 for an allowed client");
    CHECK(strstr(buf, "\"name\":\"cams\"") && strstr(buf, "\"addr\":\"127.0.0.1:9001\"") &&
              strstr(buf, "\"state\":\"backup\"") && strstr(buf, "\"weight\":5"),
          "status JSON names pool, devices, states, weights");
    CHECK(strstr(buf, "0\r\n\r\n") != NULL, "status body is chunked and ends");
    CHECK_INT(fp_sent_total(fp_device_sock(9001, 0)), 0, "status never touches a device");
    fp_push_str(c, "GET /st?format=prometheus HTTP/1.1\r\nHost: g\r\n\r\n");
    turn();
    fp_take(c, buf, sizeof(buf));
    CHECK(strstr(buf, "rproxy_device_up{pool=\"cams\",device=\"127.0.0.1:9001\"} 1\n") != NULL,
          "prometheus sample for a device");
    fp_push_str(c, "GET /st HTTP/1.1\r\nHost: g\r\n\r\n"); /* same connection */
    turn();
    memset(buf, 0, sizeof(buf));
    fp_take(c, buf, sizeof(buf));
    CHECK(strstr(buf, "Content-Type: application/json\r\n") && strstr(buf, "\"name\":\"cams\"") &&
              !strstr(buf, "rproxy_device_up"),
          "JSON again after a Prometheus request on the same keep-alive connection");
    c = fp_client_connect("192.168.1.9", 5556);
    turn();
    fp_push_str(c, "GET /st HTTP/1.1\r\nHost: g\r\n\r\n");
    turn();
    memset(buf, 0, sizeof(buf));
    fp_take(c, buf, sizeof(buf));
    CHECK(strncmp(buf, "HTTP/1.1 403 ", 13) == 0, "status: 403 outside allow=");
    CHECK(strstr(buf, "127.0.0.1") == NULL && strstr(buf, "cams") == NULL, "403 leaks nothing");
    teardown();
}

static void
test_config_errors(void)
{
    static const struct {
        const char *text;
        int line;
        const char *msg;
    } cases[] = {
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nhealth p path=hz\nroute pool=p\n", 4, "path: 'hz' is not a path starting with '/'"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nhealth q\nroute pool=p\n", 4, "undefined pool 'q' (defined: p)"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nhealth p bogus=1\nroute pool=p\n", 4, "unknown health option"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nhealth p rise=0\nroute pool=p\n", 4, "out of range"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nhealth p\nhealth p\nroute pool=p\n", 5, "duplicate health"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80 weight=1001\nroute pool=p\n", 3, "out of range"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80 backup\nroute pool=p\n", 2, "only backup"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nroute pool=p\nstatus allow=10.0.0.0/8\n", 5, "status needs path"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nroute pool=p\nstatus path=/s allow=10.0.0.0/33\n", 5, "bad allow"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nroute pool=p\nstatus path=/s allow=10.0.0.0/\n", 5, "bad allow"},
        {"listen 80\npool p\ndevice p 1.2.3.4:80\nroute pool=p\nstatus path=/s x=1\n", 5, "unknown status option"},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rp_cfg_error e;
        rp_proxy *p = fp_proxy_new();
        int rc;
        rp_init(p);
        rc = rp_config_parse(p, cases[i].text, strlen(cases[i].text), &e);
        CHECK_INT(rc, RP_ECONFIG, "bad config %zu refused", i);
        CHECK_INT(e.line, cases[i].line, "bad config %zu: line (%s)", i, e.msg);
        CHECK(strstr(e.msg, cases[i].msg) != NULL, "bad config %zu: message '%s' has '%s'", i,
              e.msg, cases[i].msg);
        fp_proxy_free(p);
    }
}

static const tap_test tests[] = {
    TAP_TEST(swrr_sequences),
    TAP_TEST(tried_and_disabled),
    TAP_TEST(leastconn),
    TAP_TEST(effective_recovery),
    TAP_TEST(passive_window),
    TAP_TEST(backups),
    TAP_TEST(active_health),
    TAP_TEST(status_page),
    TAP_TEST(config_errors),
};

int
main(int argc, char **argv)
{
    fp_log_quiet(1);
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

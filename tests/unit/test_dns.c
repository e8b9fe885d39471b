/*
 * test_dns.c -- devices by name (RP_ENABLE_DNS) on the fake port: the
 * lookups at start, every resolve=, after a failure; a device is down until
 * its first answer; the last good address is kept while lookups fail; a new
 * address closes the idle connections to the old one; answers that are no
 * address (wrong family, failures) are "not resolved"; a port without a
 * resolver is asked once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "fakeport.h"
#include "tap.h"

#define T0 1000000u

static rp_proxy *P;

static int
setup(const char *cfg)
{
    rp_cfg_error e;
    fp_set_now(T0); /* the test called fp_reset_all and scripted the names */
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
    CHECK_INT(fp_misuse(), 0, "no misuse of the fake port");
    fp_proxy_free(P);
    P = NULL;
}

static void
turn(void)
{
    int i;
    for (i = 0; i < 50 && rp_poll(P, 0) > 0; i++)
        ;
    rp_poll(P, 0);
}

static void
at(uint64_t ms_from_t0)
{
    fp_set_now(T0 + ms_from_t0);
    turn();
}

/* Device 0's address as "ip:port" ("-" before one). */
static const char *
addr0(void)
{
    static char out[64];
    const rp_addr *a = &P->cfg.devices[0].addr;
    char ip[48];
    if (a->family == 0)
        return "-";
    rp_addr_format(a, ip, sizeof(ip));
    snprintf(out, sizeof(out), a->family == 6 ? "[%s]:%u" : "%s:%u", ip, a->port);
    return out;
}

/* One GET through the proxy from a new client: the status line it got
 * (the device, if any, answers 200). */
static int
request(void)
{
    static char buf[4096];
    int c = fp_client_connect("10.9.9.9", 40000), d, n0 = fp_connect_count();
    fp_push_str(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    turn();
    if (fp_connect_count() > n0 && (d = fp_connect_sock(fp_connect_count() - 1)) >= 0) {
        turn();
        fp_take(d, buf, sizeof(buf));
        fp_push_str(d, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        turn();
    }
    fp_take(c, buf, sizeof(buf));
    return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : 0;
}

static void
test_dns_start_and_move(void)
{
    static const char cfg[] = "listen 8080\npool p resolve=2s\n"
                              "device p cam1.test:8000\nroute pool=p\n";
    fp_reset_all();
    fp_dns_hold(1); /* a slow name server: the proxy starts anyway */
    if (!setup(cfg))
        return;
    CHECK_INT(fp_dns_lookups("cam1.test"), 1, "looked up at rp_start");
    CHECK(P->cfg.devices[0].name && strcmp(P->cfg.devices[0].name, "cam1.test") == 0, "name kept");
    CHECK_INT(P->cfg.pools[0].resolve_ms, 2000, "resolve=2s");
    CHECK_STR(addr0(), "-", "no address before the answer");
    CHECK(!rp_device_up(P, 0), "down until it resolves");
    CHECK_INT(rp_pool_pick(P, 0, 0), -1, "never picked without an address");
    CHECK_INT(request(), 503, "503 while the only device has no address");
    CHECK_INT(fp_connect_count(), 0, "no connect to an unresolved device");
    fp_dns_set("cam1.test", "10.0.0.7", RP_OK);
    fp_dns_hold(0);
    turn();
    CHECK_STR(addr0(), "10.0.0.7:8000", "the answer, with the config's port");
    CHECK(rp_device_up(P, 0), "up once resolved");
    CHECK_INT(request(), 200, "traffic goes to it");
    CHECK_INT(fp_connect_port(0), 8000, "connected to the port of the line");
    CHECK_INT(P->cfg.devices[0].idle, 1, "its connection pooled");
    fp_dns_set("cam1.test", "10.0.0.8", RP_OK);
    at(1500);
    CHECK_INT(fp_dns_lookups("cam1.test"), 1, "not again before resolve=");
    CHECK_STR(addr0(), "10.0.0.7:8000", "old address until then");
    at(2100);
    CHECK_INT(fp_dns_lookups("cam1.test"), 2, "looked up again after resolve=");
    CHECK_STR(addr0(), "10.0.0.8:8000", "moved");
    CHECK_INT(P->cfg.devices[0].idle, 0, "idle connections to the old address closed");
    CHECK(fp_closed(fp_connect_sock(0)), "the pooled socket is closed");
    CHECK_INT(request(), 200, "traffic follows");
    {
        const rp_addr *a = fp_sock_addr(fp_connect_sock(fp_connect_count() - 1));
        CHECK(a && a->family == 4 && a->ip[3] == 8 && a->port == 8000, "new connect to 10.0.0.8:8000");
    }
    fp_dns_set("cam1.test", "::1", RP_OK);
    at(4200);
    CHECK_STR(addr0(), "[::1]:8000", "an IPv6 answer is used");
    teardown();
}

static void
test_dns_failures_keep_address(void)
{
    static const char cfg[] = "listen 8080\npool p resolve=1s\n"
                              "device p cam1.test:80\nroute pool=p\n";
    fp_reset_all();
    fp_dns_set("cam1.test", "10.0.0.7", RP_OK);
    if (!setup(cfg))
        return;
    turn();
    CHECK_STR(addr0(), "10.0.0.7:80", "resolved at start");
    fp_dns_set("cam1.test", NULL, RP_EIO); /* a malformed or truncated answer */
    at(1100);
    CHECK_INT(fp_dns_lookups("cam1.test"), 2, "looked up again");
    CHECK_STR(addr0(), "10.0.0.7:80", "failed lookup: last good address kept");
    CHECK(rp_device_up(P, 0), "and the device stays up");
    CHECK_INT(P->cfg.devices[0].resolve_bad, 1, "marked failing");
    fp_dns_set("cam1.test", NULL, RP_OK); /* an answer with no address of a usable family */
    at(2200);
    CHECK_STR(addr0(), "10.0.0.7:80", "no usable address: kept");
    CHECK_INT(P->cfg.devices[0].resolve_fails, 2, "two failed lookups counted");
    fp_dns_set("cam1.test", NULL, RP_ENOTFOUND); /* empty answer */
    at(3300);
    CHECK_STR(addr0(), "10.0.0.7:80", "no such name: kept");
    fp_dns_set("cam1.test", "10.0.0.7", RP_OK);
    at(4400);
    CHECK_INT(P->cfg.devices[0].resolve_bad, 0, "good again");
    CHECK_INT(P->cfg.devices[0].resolve_fails, 0, "failures cleared");
    teardown();
}

static void
test_dns_unresolvable_at_start(void)
{
    static const char cfg[] = "listen 8080\npool p resolve=5s\n"
                              "device p nowhere.test:80\ndevice p 10.0.0.5:81\nroute pool=p\n";
    fp_reset_all();
    if (!setup(cfg))
        return;
    turn();
    CHECK(!rp_device_up(P, 0), "a name that does not resolve: down");
    CHECK(rp_device_up(P, 1), "the address device is up");
    CHECK_INT(rp_pool_pick(P, 0, 0), 1, "pick: the other device");
    CHECK_INT(rp_pool_pick(P, 0, 0), 1, "pick: again the other device");
    CHECK_INT(rp_pool_pick(P, 0, 2), -1, "not even as a last resort");
    fp_dns_set("nowhere.test", "10.0.0.6", RP_OK);
    at(5100);
    CHECK_STR(addr0(), "10.0.0.6:80", "resolves later: in the pool");
    CHECK(rp_device_up(P, 0), "and up");
    teardown();
}

static void
test_dns_failure_reresolves(void)
{
    static const char cfg[] = "listen 8080\npool p resolve=60s\n"
                              "device p cam1.test:8000 max_fails=1\nroute pool=p\n";
    fp_reset_all();
    fp_dns_set("cam1.test", "10.0.0.7", RP_OK);
    if (!setup(cfg))
        return;
    turn();
    fp_connect_policy(8000, FP_CONNECT_FAIL_NOW); /* the device moved away */
    at(100);
    CHECK(request() >= 500, "the connect fails");
    fp_dns_set("cam1.test", "10.0.0.8", RP_OK);
    at(500);
    CHECK_INT(fp_dns_lookups("cam1.test"), 1, "not sooner than RP_RESOLVE_RETRY_MS after the last");
    at(1100);
    CHECK_INT(fp_dns_lookups("cam1.test"), 2, "looked up again after the failure, long before resolve=");
    CHECK_STR(addr0(), "10.0.0.8:8000", "moved");
    CHECK(rp_device_up(P, 0), "a new address clears the passive down mark");
    fp_connect_policy(8000, FP_CONNECT_OK);
    CHECK_INT(request(), 200, "traffic follows");
    teardown();
}

static void
test_dns_no_resolver(void)
{
    static const char cfg[] = "listen 8080\npool p resolve=1s\n"
                              "device p cam1.test:80\ndevice p 10.0.0.5:81\nroute pool=p\n";
    fp_reset_all();
    fp_dns_notimpl(1);
    if (!setup(cfg))
        return;
    at(5000);
    CHECK(fp_log_seen("the port has no resolver"), "logged");
    CHECK(!rp_device_up(P, 0), "the named device stays down");
    CHECK_INT(P->cfg.devices[0].resolving, 0, "nothing in flight");
    CHECK_INT(rp_pool_pick(P, 0, 0), 1, "the other device serves");
    teardown();
}

static void
test_dns_status(void)
{
    static const char cfg[] = "listen 8080\npool p\n"
                              "device p cam1.test:8000\ndevice p cam2.test:8001\nroute pool=p\n"
                              "status path=/st allow=10.0.0.0/8\n";
    static char buf[16384];
    int c;
    fp_reset_all();
    fp_dns_set("cam1.test", "10.0.0.7", RP_OK);
    if (!setup(cfg))
        return;
    turn();
    c = fp_client_connect("10.9.9.9", 40001);
    fp_push_str(c, "GET /st HTTP/1.1\r\nHost: x\r\n\r\n");
    turn();
    fp_take(c, buf, sizeof(buf));
    CHECK(strstr(buf, "{\"addr\":\"10.0.0.7:8000\",\"name\":\"cam1.test\",\"resolve\":\"ok\"") != NULL,
          "JSON: current address and name");
    CHECK(strstr(buf, "{\"addr\":\"\",\"name\":\"cam2.test\",\"resolve\":\"failing\"") != NULL,
          "JSON: no address yet, failing");
    c = fp_client_connect("10.9.9.9", 40002);
    fp_push_str(c, "GET /st?format=prometheus HTTP/1.1\r\nHost: x\r\n\r\n");
    turn();
    fp_take(c, buf, sizeof(buf));
    CHECK(strstr(buf, "rproxy_device_up{pool=\"p\",device=\"cam1.test:8000\"} 1") != NULL,
          "Prometheus: labelled by name, up");
    CHECK(strstr(buf, "rproxy_device_up{pool=\"p\",device=\"cam2.test:8001\"} 0") != NULL,
          "Prometheus: unresolved is down");
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(dns_start_and_move),
    TAP_TEST(dns_failures_keep_address),
    TAP_TEST(dns_unresolvable_at_start),
    TAP_TEST(dns_failure_reresolves),
    TAP_TEST(dns_no_resolver),
    TAP_TEST(dns_status),
};

int
main(int argc, char **argv)
{
    fp_log_quiet(1);
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

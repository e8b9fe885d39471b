/*
 * test_reload.c -- two configuration slots (RP_ENABLE_RELOAD, src/27-reload.c)
 * on the fake port: an exchange in flight finishes on the configuration it
 * started with while the next request on the same keep-alive connection
 * takes the new routes; a device in both files keeps its counters, health
 * and idle connection (the same socket is reused); listeners on the same
 * address keep their socket, removed ones close, new ones open; a bad text,
 * a port that cannot open, a parse while the old slot still has an
 * exchange: refused, nothing changed; max_conns holds across the switch.
 *
 * SPDX-License-Identifier: MIT
 */
#include "conn_scenario.h"

#if RP_ENABLE_RELOAD

#define CFG_A "listen 8080\nlisten 8081\n"                                                          \
              "pool a retries=1\n"                                                                 \
              "device a 127.0.0.1:9001 max_fails=0\n"                                              \
              "route host=app.example pool=a\n" TIMEOUTS
/* 8080 kept, 8081 gone, 8082 new; the route now goes to pool b (9002);
 * pool a and its device 9001 stay. */
#define CFG_B "listen 8080\nlisten 8082\n"                                                          \
              "pool b retries=1\n"                                                                 \
              "device b 127.0.0.1:9002 max_fails=0\n"                                              \
              "pool a retries=1\n"                                                                 \
              "device a 127.0.0.1:9001 max_fails=0\n"                                              \
              "route host=other.example pool=a\n"                                                  \
              "route host=app.example pool=b\n" TIMEOUTS

static int
load(const char *text, rp_cfg_error *e)
{
    memset(e, 0, sizeof(*e));
    return rp_config_parse(P, text, strlen(text), e);
}

static int
reload(const char *text)
{
    rp_cfg_error e;
    int rc = load(text, &e);
    if (rc != RP_OK) {
        tap_diag("%s: reload parse: %d line %d %s", test_name, rc, e.line, e.msg);
        return rc;
    }
    rc = rp_config_apply(P, &e);
    if (rc != RP_OK)
        tap_diag("%s: apply: %d line %d %s", test_name, rc, e.line, e.msg);
    run();
    return rc;
}

static const rp_device *
live_dev(int pool, int k)
{
    const rp_config *c = rp_config_live(P);
    return &c->devices[c->pools[pool].devices[k]];
}

static void
test_in_flight(void)
{
    int c, d, d2, l80, l81;
    char *out;
    if (!setup("in flight", CFG_A))
        return;
    l80 = fp_listener(8080), l81 = fp_listener(8081);
    c = client(41001);
    d = forward(c, REQ("/slow"));
    CHECK(fp_sock_addr(d)->port == 9001, "in flight: /slow at 9001 before the reload");
    CHECK_INT(reload(CFG_B), RP_OK, "in flight: the reload applies with an exchange in flight");
    CHECK_INT((int)P->reload.generation, 2, "in flight: generation 2");
    CHECK_INT(rp_config_draining(P), 2, "in flight: the client and its device connection drain");
    CHECK(fp_listener(8080) == l80 && !fp_closed(l80), "in flight: 8080 keeps its socket");
    CHECK(fp_closed(l81), "in flight: 8081 (gone from the file) is closed");
    CHECK(fp_listener(8082) >= 0, "in flight: 8082 (new) listens");
    out = reply(d, c, RESP_OK);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n") && ends(out, "ok"),
          "in flight: the old exchange finishes with its device's answer");
    CHECK_INT(rp_config_draining(P), 0, "in flight: nothing on the old slot once it is over");
    fp_push_str(c, REQ("/next"));
    run();
    d2 = fp_busy_device();
    CHECK(d2 >= 0 && fp_sock_addr(d2)->port == 9002,
          "in flight: the next request on the same connection follows the new route (9002)");
    take(d2);
    out = reply(d2, c, RESP_OK);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n"), "in flight: and is answered");
    c = fp_client_connect_to(8082, "10.0.0.8", 41002);
    run();
    d2 = forward(c, REQ("/new"));
    CHECK(d2 >= 0 && fp_sock_addr(d2)->port == 9002, "in flight: the new listener serves");
    reply(d2, c, RESP_OK);
    teardown();
}

static void
test_device_state(void)
{
    int c, d, n0;
    const rp_device *dv;
    if (!setup("device state", CFG_A))
        return;
    c = client(41001);
    d = get_ok(c, "/1"); /* 9001's connection goes idle */
    n0 = fp_connect_count();
    CHECK_INT(reload(CFG_B), RP_OK, "device state: reload");
    dv = live_dev(1, 0); /* pool a is the second pool in B */
    CHECK_INT((int)dv->requests, 1, "device state: 9001's request count carried over");
    CHECK_INT(dv->idle, 1, "device state: its idle connection too");
    CHECK(!fp_closed(d), "device state: the idle socket stays open");
    fp_push_str(c, "GET /o HTTP/1.1\r\nHost: other.example\r\n\r\n");
    run();
    CHECK(fp_busy_device() == d, "device state: the next request to 9001 reuses that socket");
    CHECK_INT(fp_connect_count(), n0, "device state: no new connect");
    take(d);
    reply(d, c, RESP_OK);
    CHECK_INT((int)live_dev(1, 0)->requests, 2, "device state: and counts on");
    teardown();
}

static void
test_refused(void)
{
    rp_cfg_error e;
    int c, d;
    if (!setup("refused", CFG_A))
        return;
    CHECK_INT(load("listen 8080\npool a\ndevice a 127.0.0.1:9001 wieght=2\nroute pool=a\n", &e),
              RP_ECONFIG, "refused: a bad file is a config error");
    CHECK_INT(e.line, 3, "refused: at its line");
    CHECK_INT(rp_config_apply(P, &e), RP_EINVAL, "refused: nothing to apply after it");
    CHECK_INT((int)P->reload.generation, 1, "refused: generation unchanged");
    CHECK_INT((int)P->reload.failures, 1, "refused: one failure counted");
    CHECK_INT(load(CFG_B, &e), RP_OK, "refused: a good text parses");
    fp_listen_fail_next(); /* 8082 cannot open */
    CHECK_INT(rp_config_apply(P, &e), RP_EADDR, "refused: a port that cannot open refuses");
    CHECK(e.line == 2 && has(e.msg, "listen 0.0.0.0:8082"), "refused: naming the listen line (%d: %s)",
          e.line, e.msg);
    CHECK(!fp_closed(fp_listener(8081)), "refused: 8081 still open");
    c = client(41001);
    d = forward(c, REQ("/still"));
    CHECK(d >= 0 && fp_sock_addr(d)->port == 9001, "refused: the old routes serve");
    /* busy: an exchange on the old slot blocks the next parse */
    CHECK_INT(rp_config_apply(P, &e), RP_OK, "refused: applies once the port opens");
    CHECK_INT(load(CFG_A, &e), RP_EBUSY, "refused: no parse while the old slot has an exchange");
    reply(d, c, RESP_OK);
    CHECK_INT(load(CFG_A, &e), RP_OK, "refused: parses once it finished");
    CHECK_INT(rp_config_apply(P, &e), RP_OK, "refused: and applies");
    CHECK_INT((int)P->reload.generation, 3, "refused: generation 3");
    teardown();
}

#if RP_ENABLE_LIMITS
static void
test_max_conns(void)
{
    int c1, c2, d, n0;
    char *out;
    if (!setup("max_conns", "listen 8080\npool a retries=1 queue=4\n"
                            "device a 127.0.0.1:9001 max_fails=0 max_conns=1\n"
                            "route host=app.example pool=a\n" TIMEOUTS))
        return;
    c1 = client(41001);
    d = forward(c1, REQ("/old"));
    n0 = fp_connect_count();
    CHECK_INT(reload("listen 8080\npool a retries=1 queue=4\n"
                     "device a 127.0.0.1:9001 max_fails=0 max_conns=1\n"
                     "route path=/ pool=a\n" TIMEOUTS),
              RP_OK, "max_conns: reload");
    CHECK_INT(live_dev(0, 0)->active, 1, "max_conns: the old exchange counts on the new slot");
    c2 = client(41002);
    fp_push_str(c2, REQ("/new"));
    run();
    CHECK_INT(fp_connect_count(), n0, "max_conns: a new request waits, no second connection");
    out = reply(d, c1, RESP_OK);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n"), "max_conns: the old one finishes");
    advance(1);
    CHECK(fp_busy_device() == d && has(take(d), "GET /new "),
          "max_conns: the waiter gets the same device connection");
    out = reply(d, c2, RESP_OK);
    CHECK(starts(out, "HTTP/1.1 200 OK\r\n"), "max_conns: and its answer");
    CHECK_INT(live_dev(0, 0)->active + live_dev(0, 0)->idle, 1, "max_conns: one connection held");
    teardown();
}
#endif

static const tap_test tests[] = {
    TAP_TEST(in_flight),
    TAP_TEST(device_state),
    TAP_TEST(refused),
#if RP_ENABLE_LIMITS
    TAP_TEST(max_conns),
#endif
};

int
main(int argc, char **argv)
{
    return conn_main(argc, argv, tests, TAP_COUNT(tests));
}

#else
int
main(void)
{
    puts("1..0 # SKIP RP_ENABLE_RELOAD=0");
    return 0;
}
#endif

/*
 * test_loop.c -- the event loop's turn bound and its longest-turn record
 * (issue 19 item 5), on the fake port.
 *
 * SPDX-License-Identifier: MIT
 *
 * The Makefile builds the sections (src/) into this binary with
 * RP_TURN_MAX_EVENTS 3 and RP_TURN_MAX_BYTES 4096 (RP_ENABLE_TURN_STATS at
 * its default, 1); the check below refuses any other build.  Checked:
 *   - 10 ready clients, bound 3: each turn serves at most 3; the turns that
 *     follow serve the ones skipped, in order, before clients that became
 *     ready again meanwhile (no starvation), without calling rp_port_wait;
 *     every request is answered in the end;
 *   - a client freed between turns (rp_shutdown) loses its leftover report:
 *     no port call on its closed socket;
 *   - a 64 KiB response from a device that has it all at once: the first
 *     turn moves at most the byte bound and one step over, the client is
 *     left asking for writability, and the rest follows byte-exact;
 *   - p->loop: turns, bounded turns, the longest turn's work; rp_loop_reset.
 */
#include "conn_scenario.h"

#if RP_TURN_MAX_EVENTS != 3 || RP_TURN_MAX_BYTES != 4096 || !RP_ENABLE_TURN_STATS
#error "test_loop is built with RP_TURN_MAX_EVENTS 3, RP_TURN_MAX_BYTES 4096, RP_ENABLE_TURN_STATS 1 (see the Makefile)"
#endif

#define NCLI 10

/* Turn until quiet; returns the most reports one turn served. */
static int
run_bounded(void)
{
    int i, most = 0, quiet = 0;
    for (i = 0; i < 5000 && quiet < 2; i++) {
        int n = rp_poll(P, 0);
        if (n < 0) {
            run_stuck++;
            return most;
        }
        most = n > most ? n : most;
        quiet = n ? 0 : quiet + 1;
    }
    if (quiet < 2)
        run_stuck++;
    return most;
}

/* Clients whose pushed bytes rproxy has read: a mask over cs[]. */
static unsigned
read_mask(const int *cs)
{
    unsigned m = 0;
    int i;
    for (i = 0; i < NCLI; i++)
        if (fp_unread(cs[i]) == 0)
            m |= 1u << i;
    return m;
}

static int
bits(unsigned m)
{
    int n = 0;
    for (; m; m &= m - 1)
        n++;
    return n;
}

static void
test_turn_events(void)
{
    int cs[NCLI], i, n, waits, d, answered = 0;
    unsigned t1, t2, t3, t4;
    if (!setup("turn_events", CFG))
        return;
    for (i = 0; i < NCLI; i++)
        cs[i] = client(8080);
    for (i = 0; i < NCLI; i++)
        fp_push_str(cs[i], REQ("/first"));
    /* turn 1: the port reports 10 clients; 3 are served */
    n = rp_poll(P, 1000);
    t1 = read_mask(cs);
    CHECK_INT(n, 3, "turn 1 serves 3 of 10 ready clients");
    CHECK_INT(bits(t1), 3, "turn 1: 3 clients read (mask %#x)", t1);
    CHECK_INT((int)P->loop.bounded, 1, "turn 1 counted as bounded");
    /* the served ones are ready again, and first in the port's order */
    for (i = 0; i < NCLI; i++)
        if (t1 & (1u << i))
            fp_push_str(cs[i], REQ("/second"));
    waits = fp_wait_count();
    n = rp_poll(P, 1000);
    t2 = read_mask(cs) & ~t1;
    CHECK_INT(n, 3, "turn 2 serves 3 more");
    CHECK_INT(fp_wait_count(), waits, "turn 2 did not wait in the port (work was left)");
    CHECK_INT(bits(t2), 3, "turn 2: 3 clients skipped by turn 1 read (mask %#x)", t2);
    CHECK(t2 == (t1 << 3), "turn 2 resumed where turn 1 stopped (turn 1 %#x, turn 2 %#x)", t1, t2);
    for (i = 0; i < NCLI; i++)
        if (t1 & (1u << i))
            CHECK(fp_unread(cs[i]) > 0, "client %d, ready again, waits for the skipped ones", i);
    n = rp_poll(P, 1000);
    t3 = read_mask(cs) & ~(t1 | t2);
    CHECK(n == 3 && t3 == (t2 << 3), "turn 3 serves the next 3 (%d, mask %#x)", n, t3);
    n = rp_poll(P, 1000);
    t4 = read_mask(cs) & ~(t1 | t2 | t3);
    CHECK(n == 1 && bits(t4) == 1, "turn 4 serves the last skipped one (%d, mask %#x)", n, t4);
    CHECK_INT(fp_wait_count(), waits, "turns 2-4 did not wait in the port");
    CHECK_INT(bits(read_mask(cs)), NCLI - 3, "the 3 ready-again clients not served yet");
    CHECK_INT((int)P->loop.bounded, 3, "turns 1-3 left work, turn 4 none");
    n = rp_poll(P, 1000);
    CHECK(fp_wait_count() == waits + 1 && fp_wait_timeout() > 0 && fp_wait_timeout() <= 1000,
          "turn 5 may block in the port again: the caller's timeout or the next timer's "
          "(%d calls, timeout %d)",
          fp_wait_count() - waits, fp_wait_timeout());
    /* every request is answered in the end, never more than 3 reports a turn */
    CHECK(run_bounded() <= 3, "at most 3 reports a turn while the rest runs");
    for (i = 0; i < 40 && (d = fp_busy_device()) >= 0; i++) {
        take(d);
        fp_push_str(d, RESP_OK);
        CHECK(run_bounded() <= 3, "at most 3 reports a turn (answer %d)", i);
        answered++;
    }
    CHECK_INT(answered, NCLI + 3, "requests that reached a device (10 first, 3 second)");
    for (i = 0; i < NCLI; i++) {
        const char *out = take(cs[i]);
        CHECK_INT(count(out, "HTTP/1.1 200 OK"), (t1 & (1u << i)) ? 2 : 1,
                  "client %d: its responses", i);
    }
    CHECK(P->loop.turns > 10, "turns counted (%llu)", (unsigned long long)P->loop.turns);
    CHECK(P->loop.longest.events >= 1 && P->loop.longest.events <= 3,
          "the longest turn served 1..3 reports (%u)", P->loop.longest.events);
    teardown();
}

static void
test_turn_freed(void)
{
    int cs[NCLI], i, n;
    if (!setup("turn_freed", CFG))
        return;
    for (i = 0; i < NCLI; i++)
        cs[i] = client(8080);
    for (i = 0; i < NCLI; i++)
        fp_push_str(cs[i], REQ("/x"));
    n = rp_poll(P, 0);
    CHECK_INT(n, 3, "turn 1 serves 3");
    rp_shutdown(P); /* frees the idle clients: the 7 whose reports are left */
    for (i = 0; i < NCLI; i++)
        if (fp_unread(cs[i]))
            CHECK(fp_closed(cs[i]), "client %d (report left) closed by rp_shutdown", i);
    n = rp_poll(P, 0);
    CHECK_INT(n, 0, "turn 2: the leftover reports of freed clients are dropped");
    CHECK_INT(fp_misuse(), 0, "no port call on a freed client's socket");
    run_bounded();
    rp_close_all(P);
    teardown();
}

static void
test_turn_bytes(void)
{
    static char body[65536], resp[65536 + 128];
    int c, d, i, n, turns = 1;
    size_t got, head;
    if (!setup("turn_bytes", CFG))
        return;
    for (i = 0; i < (int)sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    head = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                            (int)sizeof body);
    memcpy(resp + head, body, sizeof body);
    c = client(8080);
    d = forward(c, REQ("/big"));
    if (!CHECK(d >= 0, "request reached the device"))
        return teardown();
    rp_loop_reset(P);
    fp_push(d, resp, head + sizeof body);
    n = rp_poll(P, 0);
    got = fp_sent_total(c);
    CHECK_INT(n, 1, "the device's report served");
    CHECK(got > 0 && got < sizeof body,
          "turn 1 moved part of the response, not all (%zu of %zu body bytes to the client)",
          got, sizeof body);
    CHECK(P->loop.longest.bytes >= 4096 && P->loop.longest.bytes <= 4096 + 4 * RP_BUF_SIZE,
          "turn 1's bytes: the bound (4096) and at most one step over (%u)",
          P->loop.longest.bytes);
    CHECK(fp_interest(c) & RP_EV_WRITE, "the cut client asks for writability (interest %u)",
          fp_interest(c));
    while (turns < 1000 && rp_poll(P, 0) > 0) {
        turns++;
        CHECK(P->loop.longest.bytes <= 4096 + 4 * RP_BUF_SIZE,
              "turn %d within the bound and one step (%u)", turns, P->loop.longest.bytes);
    }
    CHECK(turns > 2, "the response took several turns (%d)", turns);
    {
        const char *out = take(c);
        const char *b = strstr(out, "\r\n\r\n");
        CHECK(b && strlen(b + 4) == sizeof body && memcmp(b + 4, body, sizeof body) == 0,
              "the client got the 64 KiB body byte-exact");
    }
    run_bounded();
    CHECK(!(fp_interest(c) & RP_EV_WRITE), "no writability interest once all is sent (%u)",
          fp_interest(c));
    CHECK(P->loop.bounded >= 2, "byte-bounded turns counted (%llu)",
          (unsigned long long)P->loop.bounded);
    /* a turn of timers only: the record after rp_loop_reset */
    rp_loop_reset(P);
    CHECK(P->loop.longest.events == 0 && P->loop.longest.bytes == 0, "rp_loop_reset clears it");
    fp_advance(T_IDLE + 1);
    rp_poll(P, 0);
    CHECK(P->loop.longest.timers >= 1 && P->loop.longest.at_ms == fp_now() - T0,
          "a timer turn recorded (timers %u, at %llu ms)", P->loop.longest.timers,
          (unsigned long long)P->loop.longest.at_ms);
    CHECK(closing(c), "the idle client closed by its timer");
    run_bounded();
    teardown();
}

static const tap_test tests[] = {
    TAP_TEST(turn_events),
    TAP_TEST(turn_freed),
    TAP_TEST(turn_bytes),
};

int
main(int argc, char **argv)
{
    fp_log_quiet(1);
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

/*
 * test_asserts.c -- the state machine's checks are really on in the test
 * builds (RP_ENABLE_ASSERT 1): every other unit test, the integration
 * daemon and the fuzzers pass with them on, which means nothing unless a
 * broken invariant does stop the program.
 *
 * SPDX-License-Identifier: MIT
 *
 * White-box (src/rp_int.h).  Each breach runs in a child process whose
 * output goes to a pipe (the fake port's rp_port_assert prints a "not ok"
 * line and aborts); the parent checks the child died of SIGABRT and named
 * the failed expression.  Checked:
 *   - a change the state table does not allow (a client into DS_BUSY, a
 *     closing client back to CS_FWD), or a device slot in a client state,
 *     stops the program;
 *   - conn_check stops it for a tunnel without a device, an idle device
 *     connection still linked to a client, a free slot with a socket;
 *   - the changes a keep-alive exchange makes (FREE -> HEAD -> FWD -> HEAD
 *     -> CLOSING -> FREE) pass.
 */
#include "rp_int.h" /* white-box: conn_state, conn_check */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakeport.h"
#include "tap.h"

#if !RP_ENABLE_ASSERT
#error "the unit tests are built with RP_ENABLE_ASSERT=1 (see the Makefile)"
#endif

static rp_proxy P;

/* Run fn in a child; 1 when it aborted and its output named `expr`. */
static int
aborts_with(void (*fn)(void), const char *expr)
{
    char out[512];
    int fd[2], status;
    ssize_t n, got = 0;
    pid_t pid;
    fflush(stdout);
    if (pipe(fd) != 0 || (pid = fork()) < 0)
        return 0;
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        fn();
        _exit(0); /* no check fired */
    }
    close(fd[1]);
    while (got < (ssize_t)sizeof(out) - 1 && (n = read(fd[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
        got += n;
    out[got] = 0;
    close(fd[0]);
    waitpid(pid, &status, 0);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)) {
        tap_diag("child did not abort (status %d); it printed: %s", status, out);
        return 0;
    }
    if (!strstr(out, "assertion failed") || !strstr(out, expr)) {
        tap_diag("child aborted, but printed: %s", out);
        return 0;
    }
    return 1;
}

/* A proxy with one device configured (never started), and a client slot. */
static rp_conn *
client(void)
{
    static const char cfg[] = "listen 8080\npool a\ndevice a 127.0.0.1:9001\nroute pool=a\n";
    rp_cfg_error e;
    rp_init(&P);
    rp_config_parse(&P, cfg, sizeof(cfg) - 1, &e);
    return conn_alloc(&P, K_CLIENT);
}

static void
device_into_head(void)
{
    rp_conn *d;
    client();
    d = conn_alloc(&P, K_DEVICE);
    conn_state(d, CS_FREE);
    conn_state(d, CS_HEAD); /* FREE -> HEAD is allowed, but not for a device */
}

static void
client_into_busy(void)
{
    conn_state(client(), DS_BUSY);
}

static void
closing_back_to_fwd(void)
{
    rp_conn *c = client();
    conn_state(c, CS_CLOSING);
    conn_state(c, CS_FWD);
}

static void
tunnel_without_device(void)
{
    rp_conn *c = client();
    c->sock = 3;
    conn_state(c, CS_FWD);
    conn_state(c, CS_TUNNEL);
    conn_check(&P, c);
}

static void
idle_still_linked(void)
{
    rp_conn *c = client(), *d = conn_alloc(&P, K_DEVICE);
    c->sock = 3, d->sock = 4, d->device = 0;
    conn_state(c, CS_FWD);
    conn_state(d, DS_BUSY);
    c->link = d, d->link = c;
    conn_state(d, DS_IDLE);
    conn_check(&P, d);
}

static void
free_with_socket(void)
{
    rp_conn *c = client();
    conn_state(c, CS_FREE);
    c->sock = 5;
    conn_check(&P, c);
}

static void
test_transitions(void)
{
    rp_conn *c = client();
    CHECK(aborts_with(client_into_busy, "next_ok"), "CS_HEAD cannot become DS_BUSY");
    CHECK(aborts_with(device_into_head, "s >= DS_CONNECTING"),
          "a device slot cannot enter a client state");
    CHECK(aborts_with(closing_back_to_fwd, "next_ok"), "CS_CLOSING cannot go back to CS_FWD");
    conn_state(c, CS_FWD);
    conn_state(c, CS_HEAD);
    conn_state(c, CS_FWD);
    conn_state(c, CS_CLOSING);
    conn_state(c, CS_FREE);
    CHECK(c->state == CS_FREE, "FREE -> HEAD -> FWD -> HEAD -> FWD -> CLOSING -> FREE passes");
}

static void
test_invariants(void)
{
    CHECK(aborts_with(tunnel_without_device, "o->mode == M_TUNNEL"),
          "conn_check: CS_TUNNEL needs its DS_BUSY device");
    CHECK(aborts_with(idle_still_linked, "!o && !c->in.d"),
          "conn_check: DS_IDLE has no client and no buffer");
    CHECK(aborts_with(free_with_socket, "c->sock < 0"), "conn_check: a free slot has no socket");
}

static const tap_test tests[] = {
    TAP_TEST(transitions),
    TAP_TEST(invariants),
};

int
main(int argc, char **argv)
{
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

/*
 * main.c -- the rproxy daemon for hosts (Linux, BSD, macOS).
 *
 * SPDX-License-Identifier: MIT
 *
 * Loads a configuration file (or the built-in demo), opens the listeners,
 * writes one ACCESS line per finished request to stderr, and on SIGTERM or
 * SIGINT stops accepting while in-flight requests finish, bounded by the
 * grace period (-g); connections still open then are cut and logged (exit
 * status 3).  A second signal cuts them at once.  This file may allocate
 * (the port reads the file); rproxy.c never does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sigaction, getopt */
#endif
#include "rproxy.h"
#include "posix.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_GRACE_MS 10000
#define EMBEDDED_NAME "(embedded)"

/* The demo: two devsim devices behind 127.0.0.1:8080 (scripts/demo.sh starts
 * them).  Loopback only: a demo should not be reachable from the network. */
static const char demo_config[] =
    "# rproxy built-in demo configuration\n"
    "listen 127.0.0.1:8080\n"
    "pool demo\n"
    "device demo 127.0.0.1:9001 weight=1\n"
    "device demo 127.0.0.1:9002 weight=1\n"
    "route pool=demo\n";

/* -q: no ACCESS lines. */
static int quiet;

/* Stop signals received (SIGTERM, SIGINT). */
static volatile sig_atomic_t stop_signals;

static void
on_signal(int sig)
{
    (void)sig;
    stop_signals = stop_signals + 1;
}

/* SIGTERM/SIGINT set the flag and interrupt the wait (no SA_RESTART);
 * SIGPIPE is ignored (the port sends with MSG_NOSIGNAL anyway). */
static void
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static int
usage(FILE *f, int status)
{
    fputs("usage: rproxy [-t] [-q] [-c FILE] [-g MS] [-h] [-v]\n"
          "  -c FILE  run FILE (default: the built-in demo on 127.0.0.1:8080)\n"
          "  -t       check the configuration, print \"FILE: ok\", exit\n"
          "  -g MS    graceful-shutdown grace period (default 10000)\n"
          "  -q       no access log (nginx's access_log off)\n"
          "  -h, --help  this help\n"
          "  -v       print the version\n"
          "Signals: SIGTERM or SIGINT stops gracefully: the listeners close, requests in\n"
          "  flight finish within the -g grace period, then rproxy exits 0; when the\n"
          "  grace period ends (or a second signal comes) first, the connections left are\n"
          "  cut, logged, and the exit status is 3.  No SIGHUP reload: restart rproxy for\n"
          "  a new configuration.\n"
          "Logs: one ACCESS line per request and rproxy's own messages, on stderr.\n"
          "Configuration: README.md, \"Configuration reference\"; the grammar is in\n"
          "  rproxy.h (\"Configuration\").  Errors print FILE:LINE: and how to fix it.\n",
          f);
    return status;
}

/* "IP:PORT" ("[IP]:PORT" for IPv6), or "-" without an address. */
static void
format_endpoint(const rp_addr *a, char *out, size_t cap)
{
    char ip[48];

    if (!a) {
        snprintf(out, cap, "-");
        return;
    }
    rp_addr_format(a, ip, sizeof ip);
    snprintf(out, cap, a->family == 6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)a->port);
}

/* Append s at out[*n] (capacity cap, NUL kept), writing bytes outside
 * printable ASCII, '"' and '\\' as \xHH so a line cannot be forged. */
static void
append_escaped(char *out, size_t cap, size_t *n, rp_str s)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < s.n && *n + 5 <= cap; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = 'x';
            out[(*n)++] = hex[c >> 4];
            c = (unsigned char)hex[c & 15];
        }
        out[(*n)++] = (char)c;
    }
    out[*n] = '\0';
}

/* Access-log lines gather here and go out in one write per loop turn (a
 * write per request would cost as much as the proxying itself). */
static char alog[1 << 16];
static size_t alog_n;

static void
alog_flush(void)
{
    if (alog_n) {
        fwrite(alog, 1, alog_n, stderr);
        alog_n = 0;
    }
}

/* The access log: ACCESS CLIENT_IP "METHOD TARGET" STATUS BYTES DEVICE MSms,
 * then " cut=WHY" when the response stopped after its head went out and
 * ' why="RULE"' when rproxy refused the request.  "-" for a request line
 * that could not be read. */
static void
on_access(void *ud, const rp_access *a)
{
    static const rp_str space = {" ", 1};
    char client[48], device[64], req[RP_MAX_URI + 64];
    size_t n = 0;

    (void)ud;
    rp_addr_format(a->client, client, sizeof client);
    format_endpoint(a->device, device, sizeof device);
    if (a->method.n) {
        append_escaped(req, sizeof req, &n, a->method);
        append_escaped(req, sizeof req, &n, space);
        append_escaped(req, sizeof req, &n, a->target);
    } else {
        req[n++] = '-', req[n] = 0; /* the request line could not be read */
    }
    if (sizeof alog - alog_n < sizeof req + 512)
        alog_flush();
    n = (size_t)snprintf(alog + alog_n, sizeof alog - alog_n,
                         "ACCESS %s \"%s\" %d %llu %s %lums%s%s%s%s%s\n", client, req, a->status,
                         (unsigned long long)a->bytes, device, (unsigned long)a->ms,
                         a->cut ? " cut=" : "", a->cut ? a->cut : "",
                         a->why ? " why=\"" : "", a->why ? a->why : "", a->why ? "\"" : "");
    alog_n += n < sizeof alog - alog_n ? n : 0;
}

/* -g argument: whole milliseconds, 0..86400000.  0 or -1. */
static int
parse_ms(const char *s, long *ms)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (s[0] < '0' || s[0] > '9' || *end || v > 86400000L)
        return -1;
    *ms = v;
    return 0;
}

/* The config line `line` of text[0..len) to stderr, indented, and under it
 * a caret and tildes under the word at column col (1-based): tabs stay tabs
 * so the caret lines up, other control bytes show as '?'. */
static void
show_line(const char *text, size_t len, int line, int col)
{
    const char *s = text, *end = text + len, *e;
    int i;

    for (i = 1; i < line && s < end; i++)
        s = (s = memchr(s, '\n', (size_t)(end - s))) ? s + 1 : end;
    e = memchr(s, '\n', (size_t)(end - s));
    e = e ? e : end;
    if (col < 1 || col > e - s + 1)
        return;
    fputs("    ", stderr);
    for (i = 0; s + i < e && i < 512; i++)
        fputc(s[i] == '\t' || (unsigned char)s[i] >= 0x20 ? s[i] : '?', stderr);
    fputs("\n    ", stderr);
    for (i = 0; i < col - 1; i++)
        fputc(s[i] == '\t' ? '\t' : ' ', stderr);
    fputc('^', stderr);
    for (i = col; s + i < e && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '#'; i++)
        fputc('~', stderr);
    fputc('\n', stderr);
}

/* Load and parse the configuration (file, or the demo when file is NULL);
 * errors go to stderr as "FILE: cannot read: REASON" or "FILE:LINE:
 * message" with the line and a caret under the offending word. */
static int
configure(rp_proxy *p, const char *file)
{
    const char *name = file ? file : EMBEDDED_NAME, *text = demo_config;
    const void *data;
    size_t len = sizeof demo_config - 1;
    rp_cfg_error e;

    if (file && rp_port_blob(file, &data, &len) != RP_OK) {
        fprintf(stderr, "%s: cannot read: %s\n", file, strerror(errno));
        return -1;
    }
    if (file)
        text = data;
    memset(&e, 0, sizeof e);
    if (rp_init(p) != RP_OK || rp_config_parse(p, text, len, &e) != RP_OK) {
        if (e.line > 0)
            fprintf(stderr, "%s:%d: %s\n", name, e.line, e.msg);
        else
            fprintf(stderr, "%s: %s\n", name, e.msg[0] ? e.msg : "invalid configuration");
        show_line(text, len, e.line, e.col);
        return -1;
    }
    return 0;
}

/* Open the listeners and run the loop until stopped; 0, 1 (cannot start)
 * or 3 (the grace period ended, or a second signal came, with connections
 * still open: they are cut, each logged). */
static int
serve(rp_proxy *p, long grace_ms)
{
    char ep[64];
    uint64_t deadline = 0, now;
    long nofile, need = (long)RP_MAX_CONNS + RP_MAX_UPSTREAM + RP_MAX_LISTENERS + 8;
    int i, rc, wait_ms = 1000, stopping = 0;

    install_signals();
    nofile = rp_posix_raise_nofile();
    if (nofile >= 0 && nofile < need)
        fprintf(stderr, "rproxy: only %ld file descriptors, %ld wanted for RP_MAX_CONNS\n",
                nofile, need);
    p->access_fn = quiet ? NULL : on_access;
    if ((rc = rp_start(p)) != RP_OK) {
        fprintf(stderr, "rproxy: cannot start: %s\n", rp_strerror(rc));
        return 1;
    }
    for (i = 0; i < p->cfg.nlisteners; i++) {
        format_endpoint(&p->cfg.listeners[i].addr, ep, sizeof ep);
        fprintf(stderr, "rproxy: listening on %s\n", ep);
    }
    for (;;) {
        rc = rp_poll(p, wait_ms);
        alog_flush();
        if (rc < 0) {
            fprintf(stderr, "rproxy: event loop failed: %s\n", rp_strerror(rc));
            return 1;
        }
        now = rp_port_now_ms();
        if (stop_signals && !stopping) {
            stopping = 1;
            rp_shutdown(p);
            deadline = now + (uint64_t)grace_ms;
            fprintf(stderr, "rproxy: stopping, %d connection(s) open\n", rp_active(p));
        }
        if (stopping && (rp_active(p) == 0 || now >= deadline || stop_signals > 1))
            break;
        if (stopping) /* wake up for the end of the grace period */
            wait_ms = deadline - now < 1000 ? (int)(deadline - now) : 1000;
    }
    if ((i = rp_active(p)) > 0) {
        if (stop_signals > 1)
            fprintf(stderr, "rproxy: second signal: cutting %d connection(s)\n", i);
        else
            fprintf(stderr, "rproxy: grace period (%ld ms) expired: cutting %d connection(s)\n",
                    grace_ms, i);
        rp_close_all(p);
        alog_flush();
    }
    fprintf(stderr, "rproxy: stopped (%llu requests)\n", (unsigned long long)p->stats.requests);
    return i > 0 ? 3 : 0;
}

int
main(int argc, char **argv)
{
    static rp_proxy p;
    const char *file = NULL;
    long grace_ms = DEFAULT_GRACE_MS;
    int check = 0, c, rc;

    for (c = 1; c < argc && strcmp(argv[c], "--") != 0; c++)
        if (strcmp(argv[c], "--help") == 0)
            return usage(stdout, 0);
    while ((c = getopt(argc, argv, "c:tqg:hv")) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 't': check = 1; break;
        case 'q': quiet = 1; break;
        case 'g':
            if (parse_ms(optarg, &grace_ms) < 0)
                return usage(stderr, 2);
            break;
        case 'h': return usage(stdout, 0);
        case 'v': printf("rproxy %s\n", rp_version()); return 0;
        default: return usage(stderr, 2);
        }
    }
    if (optind < argc)
        return usage(stderr, 2);
    if (configure(&p, file) < 0)
        rc = 1;
    else if (check)
        rc = printf("%s: ok\n", file ? file : EMBEDDED_NAME) < 0;
    else
        rc = serve(&p, grace_ms);
    rp_posix_cleanup();
    return rc;
}

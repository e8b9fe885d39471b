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
 *
 * Daemon conventions (README "Run it on a Linux gateway"): -u USER drops
 * root after the listeners are open and the certificates read; -l TARGET
 * (stderr, syslog[:SOCKET] or a FILE, reopened on SIGUSR1) and -j (JSON)
 * choose where and how the access and error lines go, and a target that
 * fails loses lines, never the service; $NOTIFY_SOCKET gets systemd's
 * READY=1, STATUS= and STOPPING=1 datagrams (sd_notify's protocol, no
 * library).  SIGHUP reads the -c file again (reload(): two configuration slots).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sigaction, getopt */
#endif
#include "rproxy.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef SOCK_CLOEXEC /* macOS */
#define SOCK_CLOEXEC 0
#endif
#ifndef MSG_NOSIGNAL /* macOS: SIGPIPE is ignored anyway */
#define MSG_NOSIGNAL 0
#endif

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

/* Stop signals received (SIGTERM, SIGINT); SIGUSR1 (reopen the log file)
 * and SIGHUP (reload: not yet) pending. */
static volatile sig_atomic_t stop_signals, reopen_signal, hup_signal;
static const char *config_path; /* -c FILE: read again on SIGHUP */

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        reopen_signal = 1;
    else if (sig == SIGHUP)
        hup_signal = 1;
    else
        stop_signals = stop_signals + 1;
}

/* SIGTERM/SIGINT/SIGUSR1/SIGHUP set a flag and interrupt the wait (no
 * SA_RESTART); SIGPIPE is ignored (the port sends with MSG_NOSIGNAL anyway). */
static void
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* ==== The log target (-l, -j) ====
 * Access lines and rproxy's own lines go to one target: stderr (default),
 * syslog (RFC 3164 datagrams to /dev/log or -l syslog:SOCKET, facility
 * daemon, without blocking) or a FILE opened for appending before the drop
 * to -u's user and reopened on SIGUSR1.  A write that fails (a full disk,
 * no syslog daemon) drops the lines, says so once on stderr, and says how
 * many bytes were lost when writing works again: proxying never waits for
 * a log. */
enum { TARGET_STDERR, TARGET_SYSLOG, TARGET_FILE };
static int log_kind = TARGET_STDERR;
static const char *log_path;  /* the FILE, or the syslog socket */
static int log_json;          /* -j */
static int log_fd = 2;        /* FILE or syslog socket; 2 for stderr */
static int log_failing;       /* the last write failed (said once) */
static unsigned long long log_lost; /* bytes lost since */

static const char *
log_name(void)
{
    return log_kind == TARGET_STDERR ? "stderr" : log_path;
}

/* Connect the syslog datagram socket; 0 or -1 (errno). */
static int
syslog_connect(void)
{
    struct sockaddr_un sa;

    if (log_fd < 0 && (log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", log_path);
    return connect(log_fd, (struct sockaddr *)&sa, sizeof sa);
}

/* Open the target; 0, or -1 with errno (the caller says why). */
static int
log_open(void)
{
    if (log_kind == TARGET_FILE) {
        int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
            return -1;
        if (log_fd > 2)
            close(log_fd);
        log_fd = fd;
    } else if (log_kind == TARGET_SYSLOG) {
        log_fd = -1;
        if (syslog_connect() < 0)
            return -1;
    }
    return 0;
}

/* The loss of lines, once per failure spell, on stderr (which is the
 * journal under systemd) unless stderr is the target that failed. */
static void
log_failed(int err)
{
    if (!log_failing && log_kind != TARGET_STDERR)
        fprintf(stderr, "rproxy: log %s: cannot write: %s; log lines are dropped until it "
                        "works again (proxying goes on)\n", log_name(), strerror(err));
    log_failing = 1;
}

static void log_line(int level, const char *msg);

static void
log_recovered(void)
{
    char msg[160];

    if (!log_failing)
        return;
    log_failing = 0;
    snprintf(msg, sizeof msg, "log %s: writing again, %llu bytes of log lines were lost",
             log_name(), log_lost);
    log_lost = 0;
    if (log_kind != TARGET_STDERR)
        fprintf(stderr, "rproxy: %s\n", msg);
    log_line(RP_LOG_WARN, msg);
}

/* One syslog datagram: "<PRI>Mmm dd hh:mm:ss rproxy[PID]: LINE". */
static int
syslog_send(int severity, const char *line, size_t n)
{
    char dg[2048];
    char stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    int h, tries;

    localtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    h = snprintf(dg, sizeof dg, "<%d>%s rproxy[%ld]: ", 3 * 8 + severity, stamp, (long)getpid());
    if (n > sizeof dg - (size_t)h)
        n = sizeof dg - (size_t)h;
    memcpy(dg + h, line, n);
    for (tries = 0; tries < 2; tries++) {
        if (log_fd >= 0 && send(log_fd, dg, (size_t)h + n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return 0;
        if (tries || (log_fd >= 0 && errno != ECONNREFUSED && errno != ENOTCONN &&
                      errno != ENOENT && errno != EDESTADDRREQ))
            break;
        syslog_connect(); /* the syslog daemon restarted: once more */
    }
    return -1;
}

/* Write buf[0..n) (whole lines) to the target; lines that cannot be
 * written are counted as lost. */
static void
log_write(int severity, const char *buf, size_t n)
{
    if (log_kind == TARGET_SYSLOG) {
        while (n) {
            const char *nl = memchr(buf, '\n', n);
            size_t len = nl ? (size_t)(nl - buf) : n;
            if (syslog_send(severity, buf, len) < 0) {
                log_lost += len + 1;
                log_failed(errno);
            } else {
                log_recovered();
            }
            len += nl ? 1 : 0;
            buf += len, n -= len;
        }
        return;
    }
    while (n) {
        ssize_t w = write(log_fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_lost += n;
            log_failed(w < 0 ? errno : EIO);
            return;
        }
        buf += w, n -= (size_t)w;
    }
    log_recovered();
}

/* Append s to out (capacity cap, NUL kept) as the inside of a JSON string:
 * '"', '\\' and bytes outside printable ASCII as \u00XX (so a byte that is
 * not UTF-8 still gives valid JSON; latin-1 reading). */
static void
json_escape(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len && *n + 7 <= cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            if (c == '"' || c == '\\') {
                out[(*n)++] = '\\';
                out[(*n)++] = (char)c;
                continue;
            }
            memcpy(out + *n, "\\u00", 4);
            *n += 4;
            out[(*n)++] = hex[c >> 4];
            out[(*n)++] = hex[c & 15];
            continue;
        }
        out[(*n)++] = (char)c;
    }
    out[*n] = '\0';
}

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC), made once a second: JSON's "time", and
 * the start of each text line in a -l FILE. */
static const char *
log_time(void)
{
    static char stamp[32];
    static time_t last = -1;
    time_t t = time(NULL);
    struct tm tm;

    if (t != last) {
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
        last = t;
    }
    return stamp;
}

/* One of rproxy's own lines ("rproxy: MSG" in text; in JSON
 * {"time":..,"level":"error|warn|info","msg":..}). */
static void
log_line(int level, const char *msg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char out[2048];
    size_t n = 0;

    if (level < 0 || level > RP_LOG_DEBUG)
        level = RP_LOG_ERROR;
    if (log_json) {
        n = (size_t)snprintf(out, sizeof out, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                             log_time(), names[level]);
        json_escape(out, sizeof out - 3, &n, msg, strlen(msg));
        memcpy(out + n, "\"}\n", 3);
        n += 3;
    } else {
        n = (size_t)snprintf(out, sizeof out, "%s%s%s\n",
                             log_kind == TARGET_FILE ? log_time() : "",
                             log_kind == TARGET_SYSLOG ? "" : log_kind == TARGET_FILE ? " rproxy: "
                                                                                      : "rproxy: ",
                             msg);
        n = n < sizeof out ? n : sizeof out - 1;
    }
    log_write(level == RP_LOG_ERROR ? 3 : level == RP_LOG_WARN ? 4 : 6, out, n);
}

static void alog_flush(void);

/* The port's lines (rp_port_log) and the daemon's own, after the access
 * lines gathered so far so the order holds. */
static void
on_port_log(int level, const char *line)
{
    alog_flush();
    log_line(level, line);
}

static void
say(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void
say(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    on_port_log(level, msg);
}

/* SIGUSR1: open the file again (logrotate moved it away); on failure the
 * old descriptor stays in use and the reason is logged. */
static void
log_reopen(void)
{
    if (log_kind != TARGET_FILE) {
        say(RP_LOG_INFO, "SIGUSR1: log target is %s, nothing to reopen", log_name());
        return;
    }
    if (log_open() < 0)
        say(RP_LOG_ERROR, "SIGUSR1: cannot reopen log %s: %s (still writing to the old file)",
            log_path, strerror(errno));
    else
        say(RP_LOG_INFO, "SIGUSR1: log %s reopened", log_path);
}

/* ==== systemd's notify protocol ($NOTIFY_SOCKET) ====
 * The socket is connected before the drop to -u's user; a socket that does
 * not exist or refuses is said once on stderr and rproxy serves anyway
 * (systemd then stops a Type=notify service at its TimeoutStartSec). */
static int notify_fd = -1;
static const char *notify_path;

static void
notify_open(void)
{
    struct sockaddr_un sa;
    socklen_t len;
    const char *path = getenv("NOTIFY_SOCKET");

    if (!path || !*path)
        return;
    notify_path = path;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if ((path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "rproxy: NOTIFY_SOCKET=%s: not a socket path or @name; systemd will "
                        "not be told that rproxy is ready (serving anyway)\n", path);
        return;
    }
    memcpy(sa.sun_path, path, strlen(path));
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    if ((notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(notify_fd, (struct sockaddr *)&sa, len) < 0) {
        fprintf(stderr, "rproxy: NOTIFY_SOCKET=%s: %s; systemd will not be told that rproxy "
                        "is ready (serving anyway)\n", path, strerror(errno));
        if (notify_fd >= 0)
            close(notify_fd);
        notify_fd = -1;
    }
}

static void
notify(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void
notify(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    int n;

    if (notify_fd < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0 || send(notify_fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1,
                      MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        say(RP_LOG_ERROR, "NOTIFY_SOCKET=%s: cannot send: %s (serving anyway)", notify_path,
            strerror(errno));
        close(notify_fd);
        notify_fd = -1;
    }
}

/* ==== -u USER ==== */
static const char *run_user;
static uid_t run_uid;
static gid_t run_gid;

/* Look the user up (before anything is opened); 0 or -1 (said why). */
static int
user_lookup(void)
{
    struct passwd *pw;

    errno = 0;
    if (!(pw = getpwnam(run_user))) {
        fprintf(stderr, "rproxy: -u %s: %s\n", run_user,
                errno ? strerror(errno) : "no such user");
        return -1;
    }
    run_uid = pw->pw_uid;
    run_gid = pw->pw_gid;
    return 0;
}

/* Become run_user: supplementary groups, gid, uid; then make sure root
 * cannot come back.  0, or -1 (said why: rproxy must not go on). */
static int
user_drop(void)
{
    if (geteuid() != 0) {
        if (geteuid() == run_uid && getuid() == run_uid)
            return 0; /* already that user (systemd's User=) */
        say(RP_LOG_ERROR, "-u %s: cannot switch users when not started as root (uid %ld)",
            run_user, (long)geteuid());
        return -1;
    }
    if (initgroups(run_user, run_gid) < 0 && setgroups(1, &run_gid) < 0) {
        say(RP_LOG_ERROR, "-u %s: setgroups: %s; refusing to run as root", run_user,
            strerror(errno));
        return -1;
    }
    if (setgid(run_gid) < 0 || setuid(run_uid) < 0) {
        say(RP_LOG_ERROR, "-u %s: %s; refusing to run as root", run_user, strerror(errno));
        return -1;
    }
    if (run_uid != 0 && (setuid(0) == 0 || geteuid() == 0 || getuid() == 0)) {
        say(RP_LOG_ERROR, "-u %s: root privileges could be regained; refusing to run", run_user);
        return -1;
    }
    say(RP_LOG_INFO, "running as user %s (uid %ld, gid %ld)", run_user, (long)run_uid,
        (long)run_gid);
    return 0;
}

static int
usage(FILE *f, int status)
{
    fputs("usage: rproxy [-t] [-q] [-j] [-c FILE] [-g MS] [-u USER] [-l TARGET] [-h] [-v]\n"
          "  -c FILE    run FILE (default: the built-in demo on 127.0.0.1:8080)\n"
          "  -t         check the configuration (and -u, -l), print \"FILE: ok\", exit\n"
          "  -g MS      graceful-shutdown grace period (default 10000)\n"
          "  -u USER    after opening the listeners and reading the certificates as\n"
          "             root, switch to USER (its groups, gid, uid); exit 1 if that fails\n"
          "  -l TARGET  where log lines go: stderr (default), syslog (/dev/log),\n"
          "             syslog:SOCKET, or a FILE (appended; SIGUSR1 reopens it)\n"
          "  -j         log lines as JSON, one object per line\n"
          "  -q         no access log (nginx's access_log off)\n"
          "  -h, --help  this help\n"
          "  -v         print the version\n"
          "Signals: SIGTERM or SIGINT stops gracefully: the listeners close, requests in\n"
          "  flight finish within the -g grace period, then rproxy exits 0; when the\n"
          "  grace period ends (or a second signal comes) first, the connections left are\n"
          "  cut, logged, and the exit status is 3.  SIGUSR1 reopens the -l FILE.\n"
          "  SIGHUP reads the -c file again: a good one is applied between requests\n"
          "  (exchanges in flight finish on the old one, listeners on the same address\n"
          "  keep their socket), a bad one is logged as FILE:LINE: message and the\n"
          "  running configuration stays.\n"
          "systemd: with $NOTIFY_SOCKET set, rproxy sends READY=1 once it accepts\n"
          "  connections, STATUS= lines, RELOADING=1 around a reload, and STOPPING=1\n"
          "  (Type=notify).\n"
          "Logs: one ACCESS line per request and rproxy's own messages, to -l's target.\n"
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
        size_t n = alog_n;
        alog_n = 0; /* first: a failure report calls back here */
        log_write(6, alog, n);
    }
}

static void on_access_json(const rp_access *a);

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
    if (log_json) {
        on_access_json(a);
        return;
    }
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
    if (log_kind == TARGET_FILE) /* nobody else stamps a file's lines */
        alog_n += (size_t)snprintf(alog + alog_n, sizeof alog - alog_n, "%s ", log_time());
    n = (size_t)snprintf(alog + alog_n, sizeof alog - alog_n,
                         "ACCESS %s \"%s\" %d %llu %s %lums%s%s%s%s%s\n", client, req, a->status,
                         (unsigned long long)a->bytes, device, (unsigned long)a->ms,
                         a->cut ? " cut=" : "", a->cut ? a->cut : "",
                         a->why ? " why=\"" : "", a->why ? a->why : "", a->why ? "\"" : "");
    alog_n += n < sizeof alog - alog_n ? n : 0;
}

/* -j: the access line as one JSON object, with route, pool, cache and TLS
 * version besides the text line's fields; null for what does not apply. */
static void
on_access_json(const rp_access *a)
{
    char client[48], device[64], *o;
    size_t n, cap;

    if (sizeof alog - alog_n < 2 * RP_MAX_URI + 1024)
        alog_flush();
    o = alog + alog_n;
    cap = sizeof alog - alog_n - 2;
    rp_addr_format(a->client, client, sizeof client);
    format_endpoint(a->device, device, sizeof device);
    n = (size_t)snprintf(o, cap, "{\"time\":\"%s\",\"client\":\"%s\",\"method\":", log_time(),
                         client);
    if (a->method.n) {
        o[n++] = '"';
        json_escape(o, cap, &n, a->method.p, a->method.n);
        n += (size_t)snprintf(o + n, cap - n, "\",\"target\":\"");
        json_escape(o, cap, &n, a->target.p, a->target.n);
        o[n++] = '"';
    } else {
        n += (size_t)snprintf(o + n, cap - n, "null,\"target\":null");
    }
    n += (size_t)snprintf(o + n, cap - n, ",\"status\":%d,\"bytes\":%llu,\"device\":", a->status,
                          (unsigned long long)a->bytes);
    n += (size_t)snprintf(o + n, cap - n, a->device ? "\"%s\"" : "null", device);
    n += (size_t)snprintf(o + n, cap - n, ",\"ms\":%lu,\"cut\":", (unsigned long)a->ms);
    n += (size_t)snprintf(o + n, cap - n, a->cut ? "\"%s\"" : "null", a->cut ? a->cut : "");
    n += (size_t)snprintf(o + n, cap - n, ",\"why\":");
    if (a->why) {
        o[n++] = '"';
        json_escape(o, cap, &n, a->why, strlen(a->why));
        o[n++] = '"';
    } else {
        n += (size_t)snprintf(o + n, cap - n, "null");
    }
    n += (size_t)snprintf(o + n, cap - n, ",\"route\":");
    n += (size_t)snprintf(o + n, cap - n, a->route >= 0 ? "%d" : "null", a->route);
    n += (size_t)snprintf(o + n, cap - n, ",\"pool\":");
    if (a->pool) {
        o[n++] = '"';
        json_escape(o, cap, &n, a->pool, strlen(a->pool));
        o[n++] = '"';
    } else {
        n += (size_t)snprintf(o + n, cap - n, "null");
    }
    n += (size_t)snprintf(o + n, cap - n, ",\"cache\":");
    n += (size_t)snprintf(o + n, cap - n, a->cache ? "\"%s\"" : "null", a->cache ? a->cache : "");
    n += (size_t)snprintf(o + n, cap - n, ",\"tls\":");
    if (a->tls >= 0x0301 && a->tls <= 0x0304)
        n += (size_t)snprintf(o + n, cap - n, "\"1.%u\"}\n", a->tls - 0x0301);
    else if (a->tls)
        n += (size_t)snprintf(o + n, cap - n, "\"0x%04x\"}\n", a->tls);
    else
        n += (size_t)snprintf(o + n, cap - n, "null}\n");
    alog_n += n < cap ? n : 0;
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

/* "listening on A, B; N routes, M devices" for STATUS=. */
static void
summary(const rp_proxy *p, char *out, size_t cap)
{
    char ep[64];
    size_t n = (size_t)snprintf(out, cap, "listening on ");
    int i;

    const rp_config *cf = rp_config_live(p);

    for (i = 0; i < cf->nlisteners && n < cap; i++) {
        format_endpoint(&cf->listeners[i].addr, ep, sizeof ep);
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", ep);
    }
    if (n < cap)
        snprintf(out + n, cap - n, "; %d route(s), %d device(s)", cf->nroutes, cf->ndevices);
}

/* SIGHUP: the file again (RP_ENABLE_RELOAD).  While connections still run
 * on the configuration before the last reload, the reload waits for them,
 * at most RELOAD_WAIT_MS, then gives up with a line; a bad file is
 * FILE:LINE: message and the running configuration stays.  1 while it
 * waits (call again after a turn), else 0. */
#define RELOAD_WAIT_MS 10000
static int
reload(rp_proxy *p, uint64_t now, uint64_t *since)
{
#if RP_ENABLE_RELOAD
    const rp_config *cf;
    const void *data;
    size_t len;
    rp_cfg_error e;
    int rc, n;

    if (!config_path) {
        say(RP_LOG_WARN, "reload: no configuration file (-c): the embedded demo stays");
        return 0;
    }
    if ((n = rp_config_draining(p)) > 0) {
        if (!*since) {
            *since = now ? now : 1;
            say(RP_LOG_INFO, "reload: waiting for %d connection(s) on the configuration before "
                             "the last reload", n);
            return 1;
        }
        if (now - *since < RELOAD_WAIT_MS)
            return 1;
        *since = 0;
        p->reload.failures++;
        say(RP_LOG_WARN, "reload: refused: %d connection(s) still run on the configuration "
                         "before the last reload; send SIGHUP again when they finish", n);
        notify("READY=1");
        return 0;
    }
    *since = 0;
    notify("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now * 1000);
    rp_posix_blobs_forget(); /* read the files again: they may have changed */
    if (rp_port_blob(config_path, &data, &len) != RP_OK) {
        say(RP_LOG_ERROR, "reload: %s: cannot read: %s; the running configuration stays",
            config_path, strerror(errno));
        p->reload.failures++; /* (rproxy counts the ones it refuses itself) */
        notify("READY=1");
        return 0;
    }
    if ((rc = rp_config_parse(p, data, len, &e)) == RP_OK)
        rc = rp_config_apply(p, &e); /* (a listen line that cannot open: its line) */
    if (rc != RP_OK) {
        if (e.line > 0)
            say(RP_LOG_ERROR, "reload: %s:%d: %s; the running configuration stays", config_path,
                e.line, e.msg);
        else
            say(RP_LOG_ERROR, "reload: %s: %s; the running configuration stays", config_path,
                e.msg[0] ? e.msg : rp_strerror(rc));
        notify("READY=1");
        return 0;
    }
    cf = rp_config_live(p);
    say(RP_LOG_INFO, "reload: %s applied: %d listeners, %d pools, %d devices, %d routes; %d "
                     "connections finish on the previous configuration", config_path,
        cf->nlisteners, cf->npools, cf->ndevices, cf->nroutes, rp_config_draining(p));
    notify("READY=1");
    return 0;
#else
    (void)p, (void)now, (void)since;
    say(RP_LOG_WARN, "SIGHUP: this build has no reload (RP_ENABLE_RELOAD 0); the configuration "
                     "is unchanged");
    return 0;
#endif
}

/* Open the listeners and run the loop until stopped; 0, 1 (cannot start)
 * or 3 (the grace period ended, or a second signal came, with connections
 * still open: they are cut, each logged). */
static int
serve(rp_proxy *p, long grace_ms)
{
    char ep[64], status[256];
    uint64_t deadline = 0, now, status_at = 0, reload_since = 0;
    long nofile, need = (long)RP_MAX_CONNS + RP_MAX_UPSTREAM + RP_MAX_LISTENERS + 8;
    int i, rc, wait_ms = 1000, stopping = 0, reloading = 0;

    install_signals();
    nofile = rp_posix_raise_nofile();
    if (nofile >= 0 && nofile < need)
        say(RP_LOG_WARN, "only %ld file descriptors, %ld wanted for RP_MAX_CONNS", nofile, need);
    p->access_fn = quiet ? NULL : on_access;
    if ((rc = rp_start(p)) != RP_OK) {
        say(RP_LOG_ERROR, "cannot start: %s", rp_strerror(rc));
        notify("STATUS=cannot start: %s", rp_strerror(rc));
        return 1;
    }
    if (run_user && user_drop() < 0) {
        notify("STATUS=-u %s failed: refusing to run as root", run_user);
        return 1;
    }
    for (i = 0; i < rp_config_live(p)->nlisteners; i++) {
        format_endpoint(&rp_config_live(p)->listeners[i].addr, ep, sizeof ep);
        say(RP_LOG_INFO, "listening on %s", ep);
    }
    summary(p, status, sizeof status);
    notify("READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
    for (;;) {
        rc = rp_poll(p, wait_ms);
        alog_flush();
        if (rc < 0) {
            say(RP_LOG_ERROR, "event loop failed: %s", rp_strerror(rc));
            notify("STATUS=event loop failed: %s", rp_strerror(rc));
            return 1;
        }
        now = rp_port_now_ms();
        if (reopen_signal) {
            reopen_signal = 0;
            log_reopen();
        }
        if ((hup_signal || reloading) && !stopping) {
            hup_signal = 0;
            reloading = reload(p, now, &reload_since);
            if (reloading)
                wait_ms = 50; /* look again soon */
            else if (!stopping)
                summary(p, status, sizeof status);
        }
        if (!reloading && !stopping)
            wait_ms = 1000;
        if (stop_signals && !stopping) {
            stopping = 1;
            rp_shutdown(p);
            deadline = now + (uint64_t)grace_ms;
            say(RP_LOG_INFO, "stopping, %d connection(s) open", rp_active(p));
            notify("STOPPING=1\nSTATUS=stopping, %d connection(s) open", rp_active(p));
        }
        if (stopping && (rp_active(p) == 0 || now >= deadline || stop_signals > 1))
            break;
        if (stopping) /* wake up for the end of the grace period */
            wait_ms = deadline - now < 1000 ? (int)(deadline - now) : 1000;
        else if (notify_fd >= 0 && now >= status_at + 10000) { /* systemctl status */
            status_at = now;
            notify("STATUS=%s; %llu requests, %d connection(s) open", status,
                   (unsigned long long)p->stats.requests, rp_active(p));
        }
    }
    if ((i = rp_active(p)) > 0) {
        if (stop_signals > 1)
            say(RP_LOG_WARN, "second signal: cutting %d connection(s)", i);
        else
            say(RP_LOG_WARN, "grace period (%ld ms) expired: cutting %d connection(s)", grace_ms,
                i);
        rp_close_all(p);
        alog_flush();
    }
    say(RP_LOG_INFO, "stopped (%llu requests)", (unsigned long long)p->stats.requests);
    return i > 0 ? 3 : 0;
}

/* serve() with the log target and $NOTIFY_SOCKET in place. */
static int
serve_logged(rp_proxy *p, long grace_ms)
{
    int rc;

    rp_posix_log_hook = on_port_log;
    notify_open();
    rc = serve(p, grace_ms);
    alog_flush();
    rp_posix_log_hook = NULL;
    return rc;
}

/* -l TARGET */
static int
parse_target(const char *s)
{
    if (strcmp(s, "stderr") == 0) {
        log_kind = TARGET_STDERR;
    } else if (strcmp(s, "syslog") == 0 || strncmp(s, "syslog:", 7) == 0) {
        log_kind = TARGET_SYSLOG;
        log_path = s[6] ? s + 7 : "/dev/log";
        if (!*log_path || strlen(log_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return -1;
    } else if (*s) {
        log_kind = TARGET_FILE;
        log_path = s;
    } else {
        return -1;
    }
    return 0;
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
    while ((c = getopt(argc, argv, "c:tqjg:u:l:hv")) != -1) {
        switch (c) {
        case 'c': file = config_path = optarg; break;
        case 't': check = 1; break;
        case 'q': quiet = 1; break;
        case 'j': log_json = 1; break;
        case 'u': run_user = optarg; break;
        case 'l':
            if (parse_target(optarg) < 0) {
                fprintf(stderr, "rproxy: -l %s: want stderr, syslog, syslog:SOCKET or a file\n",
                        optarg);
                return usage(stderr, 2);
            }
            break;
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
    if (run_user && user_lookup() < 0)
        rc = 1;
    else if (configure(&p, file) < 0)
        rc = 1;
    else if (log_kind == TARGET_FILE && log_open() < 0) {
        /* -t fails; a start goes on, its lines on stderr (the journal) */
        fprintf(stderr, "rproxy: -l %s: cannot open: %s%s\n", log_path, strerror(errno),
                check ? "" : "; logging to stderr instead");
        log_kind = TARGET_STDERR;
        rc = check ? 1 : serve_logged(&p, grace_ms);
    } else if (check)
        rc = printf("%s: ok\n", file ? file : EMBEDDED_NAME) < 0;
    else {
        if (log_kind == TARGET_SYSLOG && log_open() < 0)
            log_failed(errno); /* said once; retried with every line */
        rc = serve_logged(&p, grace_ms);
    }
    rp_posix_cleanup();
    return rc;
}

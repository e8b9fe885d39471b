/*
 * sockets.c -- the rproxy port contract (rproxy.h) on a BSD-style sockets
 * API with poll(): lwIP's sockets (NO_SYS=0, LWIP_SOCKET, LWIP_SOCKET_POLL),
 * Zephyr's zsock_*, or POSIX (see sockets.h for choosing).
 *
 * SPDX-License-Identifier: MIT
 *
 * One task owns rproxy and calls every function here; the stack's own
 * thread (lwIP's tcpip_thread) is reached only through its sockets calls,
 * which do their own locking.  A socket is an index into a static table of
 * the stack's descriptors; rp_port_wait builds a pollfd array on the stack
 * from the watched slots and blocks in the stack's poll().  Sockets are
 * non-blocking, TCP_NODELAY.  Readiness is level-triggered, as poll() is.
 * No proxy logic here.
 *
 * [1] the API  [2] slots  [3] addresses and errors  [4] sockets
 * [5] readiness  [6] clock, randomness, blobs, log, board API
 * [7] names: none (rp_port_resolve says RP_ENOTIMPL)
 */
#include "rproxy.h"
#include "sockets.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== [1] The API ====
 * SK_(call): the stack's name for a call.  RP_SK_WRITEV is optional (else
 * one send per piece). */

#if RP_SK_API == RP_SK_LWIP
#include "lwip/opt.h"
#include "lwip/sockets.h"
#include "lwip/sys.h"
#if !LWIP_SOCKET || NO_SYS || !LWIP_SOCKET_POLL
#error "port/sockets.c on lwIP needs LWIP_SOCKET=1, LWIP_SOCKET_POLL=1, NO_SYS=0 (NO_SYS=1: port/lwip.c)"
#endif
#define SK_(name) lwip_##name
#define SK_HAVE_V6 (LWIP_IPV6 && RP_ENABLE_IPV6)
#ifndef RP_SK_WRITEV
#define RP_SK_WRITEV lwip_writev
#endif
static uint32_t sk_now32(void) { return sys_now(); }

#elif RP_SK_API == RP_SK_ZEPHYR /* untested here: no Zephyr SDK on this machine */
#include <errno.h>
#include <zephyr/kernel.h>
#include <zephyr/net/socket.h>
#define SK_(name) zsock_##name
#define SK_ZEPHYR 1
#ifdef CONFIG_NET_IPV6
#define SK_HAVE_V6 RP_ENABLE_IPV6
#else
#define SK_HAVE_V6 0
#endif
#ifndef F_GETFL
#define F_GETFL ZVFS_F_GETFL
#define F_SETFL ZVFS_F_SETFL
#endif
static uint32_t sk_now32(void) { return k_uptime_get_32(); }

#elif RP_SK_API == RP_SK_POSIX
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#define SK_(name) name
#define SK_HAVE_V6 RP_ENABLE_IPV6
#define SK_SENDFLAGS MSG_NOSIGNAL
#ifndef RP_SK_WRITEV
#define RP_SK_WRITEV writev
#endif
static uint32_t
sk_now32(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}
#else
#error "RP_SK_API: RP_SK_LWIP, RP_SK_ZEPHYR or RP_SK_POSIX"
#endif

#ifdef SK_ZEPHYR
#define SK_POLLFD struct zsock_pollfd
#define SK_P(x) ZSOCK_##x
#define SK_NFDS_T int
#else
#define SK_POLLFD struct pollfd
#define SK_P(x) x
#define SK_NFDS_T nfds_t
#endif
#define SK_POLLERR (SK_P(POLLERR) | SK_P(POLLHUP) | SK_P(POLLNVAL))
#ifndef SK_SENDFLAGS
#define SK_SENDFLAGS 0
#endif
#ifndef RP_SK_SEND /* these five: a test build wraps them to inject faults */
#define RP_SK_SEND SK_(send)
#endif
#ifndef RP_SK_RECV
#define RP_SK_RECV SK_(recv)
#endif
#ifndef RP_SK_SOCKET
#define RP_SK_SOCKET SK_(socket)
#endif
#ifndef RP_SK_ACCEPT
#define RP_SK_ACCEPT SK_(accept)
#endif

/* ==== [2] Slots ====
 * used 0: free.  connected: a connect finished (poll said writable); until
 * then connect_result answers RP_EAGAIN.  backoff_until: ENOBUFS was met,
 * write readiness is not asked for until then. */

typedef struct {
    void *ud;
    uint64_t backoff_until;
    int fd;
    uint8_t used;
    uint8_t events; /* RP_EV_READ | RP_EV_WRITE */
    uint8_t connected;
} sk_slot;

static sk_slot sk_slots[RP_SK_MAX_SOCKS];
static int sk_turn; /* where the next readiness scan starts */
static rp_sockets_hooks sk_hooks;
static const rp_sockets_blob *sk_blobs;
static size_t sk_nblobs;
static rp_sockets_stats sk_stats;
static uint64_t sk_warned_at[3]; /* last warning (ms) per kind, one a second */

/* Take fd into the port: non-blocking (and TCP_NODELAY for connections),
 * in a slot.  The slot, or -1 (fd closed; errno ENFILE when the table is
 * full). */
static int
sk_adopt(int fd, int nodelay)
{
    int i, one = 1, fl = SK_(fcntl)(fd, F_GETFL, 0);

    if (fl < 0 || SK_(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        (void)SK_(close)(fd);
        return -1;
    }
    if (nodelay)
        (void)SK_(setsockopt)(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (i = 0; i < RP_SK_MAX_SOCKS; i++)
        if (!sk_slots[i].used) {
            memset(&sk_slots[i], 0, sizeof sk_slots[i]);
            sk_slots[i].fd = fd;
            sk_slots[i].used = 1;
            if (++sk_stats.socks_used > sk_stats.socks_peak)
                sk_stats.socks_peak = sk_stats.socks_used;
            return i;
        }
    (void)SK_(close)(fd);
    errno = ENFILE;
    return -1;
}

static int
sk_valid(rp_sock s)
{
    return s >= 0 && s < RP_SK_MAX_SOCKS && sk_slots[s].used;
}

/* ==== [3] Addresses and errors ==== */

typedef union {
    struct sockaddr sa;
    struct sockaddr_in v4;
#if SK_HAVE_V6
    struct sockaddr_in6 v6;
#endif
} sk_sockaddr;

/* rp_addr -> sockaddr; its length, 0 for a family this build lacks. */
static int
sk_sockaddr_of(const rp_addr *a, sk_sockaddr *u)
{
    memset(u, 0, sizeof *u);
    if (a->family == 4) {
        u->v4.sin_family = AF_INET;
        u->v4.sin_port = htons(a->port);
        memcpy(&u->v4.sin_addr, a->ip, 4);
        return (int)sizeof u->v4;
    }
#if SK_HAVE_V6
    if (a->family == 6) {
        u->v6.sin6_family = AF_INET6;
        u->v6.sin6_port = htons(a->port);
        memcpy(&u->v6.sin6_addr, a->ip, 16);
        return (int)sizeof u->v6;
    }
#endif
    return 0;
}

static void
sk_addr_of(const sk_sockaddr *u, rp_addr *a)
{
    memset(a, 0, sizeof *a);
#if SK_HAVE_V6
    if (u->sa.sa_family == AF_INET6) {
        a->family = 6;
        a->port = ntohs(u->v6.sin6_port);
        memcpy(a->ip, &u->v6.sin6_addr, 16);
        return;
    }
#endif
    a->family = 4;
    a->port = ntohs(u->v4.sin_port);
    memcpy(a->ip, &u->v4.sin_addr, 4);
}

/* Out of sockets or memory in the stack (lwIP: ENFILE when its
 * MEMP_NUM_NETCONN sockets are taken, ENOMEM/ENOBUFS for pools). */
static int
sk_resource(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* Exhaustion: counted by the caller, logged here at most once a second per
 * kind (0 accept, 1 connect, 2 send/recv). */
static void
sk_warn(int kind, const char *what, int e)
{
    uint64_t now = rp_port_now_ms();

    if (sk_warned_at[kind] && now - sk_warned_at[kind] < 1000)
        return;
    sk_warned_at[kind] = now;
    rp_port_log(RP_LOG_WARN, "%s: out of sockets or buffers (errno %d; refused %u, "
                "no socket for devices %u, nobufs %u)", what, e,
                (unsigned)sk_stats.accept_refused, (unsigned)sk_stats.connect_nomem,
                (unsigned)sk_stats.nobufs);
}

/* errno of a failed send/recv on slot s -> rp_err; counts what is odd. */
static long
sk_io_err(int s, int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
        return RP_EAGAIN;
    if (e == ENOBUFS || e == ENOMEM) { /* transient: retried after a pause */
        sk_stats.nobufs++;
        sk_slots[s].backoff_until = rp_port_now_ms() + RP_SK_BACKOFF_MS;
        sk_warn(2, "send/recv", e);
        return RP_EAGAIN;
    }
    if (e == ECONNRESET || e == ECONNABORTED || e == EPIPE || e == ENOTCONN) {
        sk_stats.resets++;
        return RP_ERESET;
    }
    return e == ETIMEDOUT ? RP_ETIMEDOUT : RP_EIO;
}

/* ==== [4] Sockets ==== */

rp_sock
rp_port_listen(const rp_addr *a, int backlog)
{
    sk_sockaddr u;
    int len = sk_sockaddr_of(a, &u), one = 1, fd, s = -2, e;

    if (len == 0)
        return RP_EADDR;
    fd = RP_SK_SOCKET(u.sa.sa_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd >= 0) {
        (void)SK_(setsockopt)(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (SK_(bind)(fd, &u.sa, (socklen_t)len) == 0 && SK_(listen)(fd, backlog) == 0
            && (s = sk_adopt(fd, 0)) >= 0)
            return s;
    }
    e = errno;
    if (fd >= 0 && s == -2) /* sk_adopt closes what it refuses */
        (void)SK_(close)(fd);
    rp_port_log(RP_LOG_ERROR, "listen port %u: errno %d", (unsigned)a->port, e);
    return RP_EADDR;
}

rp_sock
rp_port_accept(rp_sock l, rp_addr *peer)
{
    sk_sockaddr u;
    socklen_t len = sizeof u;
    int fd, s, e;

    if (!sk_valid(l))
        return RP_EINVAL;
    memset(&u, 0, sizeof u);
    fd = RP_SK_ACCEPT(sk_slots[l].fd, &u.sa, &len);
    if (fd < 0) {
        e = errno;
        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED)
            return RP_EAGAIN; /* that one died in the queue: try the next */
        if (!sk_resource(e))
            return RP_EIO;
        sk_stats.accept_refused++; /* lwIP has closed the connection already */
        sk_warn(0, "accept", e);
        return RP_ENOMEM;
    }
    if ((s = sk_adopt(fd, 1)) < 0) {
        if (errno != ENFILE)
            return RP_EAGAIN;
        sk_stats.accept_refused++;
        sk_warn(0, "accept (port table full)", ENFILE);
        return RP_ENOMEM;
    }
    sk_slots[s].connected = 1;
    sk_addr_of(&u, peer);
    return s;
}

rp_sock
rp_port_connect(const rp_addr *a)
{
    sk_sockaddr u;
    int len = sk_sockaddr_of(a, &u), fd, s, e;

    if (len == 0)
        return RP_EREFUSED;
    fd = RP_SK_SOCKET(u.sa.sa_family, SOCK_STREAM, IPPROTO_TCP);
    if (fd < 0) {
        e = errno;
        if (!sk_resource(e))
            return RP_EREFUSED;
        sk_stats.connect_nomem++; /* lwIP: every MEMP_NUM_NETCONN socket taken */
        sk_warn(1, "connect", e);
        return RP_ENOMEM;
    }
    if ((s = sk_adopt(fd, 1)) < 0) {
        if (errno != ENFILE)
            return RP_EREFUSED;
        sk_stats.connect_nomem++;
        sk_warn(1, "connect (port table full)", ENFILE);
        return RP_ENOMEM;
    }
    if (SK_(connect)(fd, &u.sa, (socklen_t)len) == 0) {
        sk_slots[s].connected = 1;
        return s;
    }
    e = errno;
    if (e == EINPROGRESS || e == EINTR || e == EAGAIN || e == EWOULDBLOCK)
        return s;
    rp_port_close(s);
    if (sk_resource(e) || e == EADDRNOTAVAIL) {
        sk_stats.connect_nomem++;
        sk_warn(1, "connect", e);
        return RP_ENOMEM;
    }
    return RP_EREFUSED;
}

int
rp_port_connect_result(rp_sock s)
{
    int e = 0;
    socklen_t len = sizeof e;

    if (!sk_valid(s))
        return RP_EINVAL;
    if (SK_(getsockopt)(sk_slots[s].fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        e = errno;
    if (e == 0)
        return sk_slots[s].connected ? RP_OK : RP_EAGAIN;
    if (e == ECONNREFUSED || e == ECONNRESET) /* lwIP: a refused SYN is ERR_RST */
        return RP_EREFUSED;
    return e == ETIMEDOUT ? RP_ETIMEDOUT : RP_EIO;
}

long
rp_port_send(rp_sock s, const void *buf, size_t n)
{
    long r;

    if (!sk_valid(s))
        return RP_EINVAL;
    r = (long)RP_SK_SEND(sk_slots[s].fd, buf, n, SK_SENDFLAGS);
    return r >= 0 ? r : sk_io_err(s, errno);
}

long
rp_port_sendv(rp_sock s, const rp_iov *iov, int n)
{
    long r;
    int i;

    if (!sk_valid(s))
        return RP_EINVAL;
    if (n > 16)
        n = 16;
#ifdef RP_SK_WRITEV
    {
        struct iovec v[16];
        for (i = 0; i < n; i++) {
            v[i].iov_base = (void *)(uintptr_t)iov[i].p;
            v[i].iov_len = iov[i].n;
        }
        r = (long)RP_SK_WRITEV(sk_slots[s].fd, v, n);
        return r >= 0 ? r : sk_io_err(s, errno);
    }
#else
    long done = 0;
    for (i = 0; i < n; i++) {
        if (iov[i].n == 0)
            continue;
        r = rp_port_send(s, iov[i].p, iov[i].n);
        if (r < 0)
            return done > 0 ? done : r;
        done += r;
        if ((size_t)r < iov[i].n)
            break;
    }
    return done;
#endif
}

long
rp_port_recv(rp_sock s, void *buf, size_t n)
{
    long r;

    if (!sk_valid(s))
        return RP_EINVAL;
    r = (long)RP_SK_RECV(sk_slots[s].fd, buf, n, 0);
    return r >= 0 ? r : sk_io_err(s, errno);
}

void
rp_port_shutdown(rp_sock s)
{
    if (sk_valid(s))
        (void)SK_(shutdown)(sk_slots[s].fd, SHUT_WR);
}

void
rp_port_close(rp_sock s)
{
    if (!sk_valid(s))
        return;
    (void)SK_(close)(sk_slots[s].fd);
    memset(&sk_slots[s], 0, sizeof sk_slots[s]);
    sk_stats.socks_used--;
}

/* ==== [5] Readiness ==== */

int
rp_port_watch(rp_sock s, unsigned events, void *ud)
{
    if (!sk_valid(s))
        return RP_EINVAL;
    sk_slots[s].events = (uint8_t)(events & (RP_EV_READ | RP_EV_WRITE));
    sk_slots[s].ud = ud;
    return RP_OK;
}

/* Errors and hang-ups are reported as ERROR|READ|WRITE, so the core tries
 * I/O and meets the error there (as port/posix.c does). */
int
rp_port_wait(rp_event *ev, int max, int timeout_ms)
{
    SK_POLLFD pf[RP_SK_MAX_SOCKS];
    int16_t slot[RP_SK_MAX_SOCKS];
    uint64_t now = rp_port_now_ms();
    int i, k = 0, n = 0, r, backoff = 0;

    if (max < 1)
        return RP_EINVAL;
    for (i = 0; i < RP_SK_MAX_SOCKS; i++) {
        int j = (sk_turn + i) % RP_SK_MAX_SOCKS;
        sk_slot *t = &sk_slots[j];
        short want;
        if (!t->used || !t->events)
            continue;
        want = (short)(t->events & RP_EV_READ ? SK_P(POLLIN) : 0);
        if (t->events & RP_EV_WRITE) {
            if (t->backoff_until > now)
                backoff = 1;
            else
                want = (short)(want | SK_P(POLLOUT));
        }
        if (!want)
            continue;
        pf[n].fd = t->fd;
        pf[n].events = want;
        pf[n].revents = 0;
        slot[n++] = (int16_t)j;
    }
    if (backoff && (timeout_ms < 0 || timeout_ms > RP_SK_BACKOFF_MS))
        timeout_ms = RP_SK_BACKOFF_MS;
    r = SK_(poll)(pf, (SK_NFDS_T)n, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : RP_EIO;
    for (i = 0; i < n && k < max; i++) {
        sk_slot *t = &sk_slots[slot[i]];
        short re = pf[i].revents;
        if (re == 0)
            continue;
        if (re & SK_P(POLLOUT))
            t->connected = 1;
        ev[k].ud = t->ud;
        ev[k++].events = re & SK_POLLERR ? RP_EV_ERROR | RP_EV_READ | RP_EV_WRITE
                                         : (re & SK_P(POLLIN) ? RP_EV_READ : 0u)
                                               | (re & SK_P(POLLOUT) ? RP_EV_WRITE : 0u);
    }
    /* fairness: next turn starts after the last one reported */
    if (k > 0)
        sk_turn = (slot[i - 1] + 1) % RP_SK_MAX_SOCKS;
    return k;
}

/* ==== [6] Clock, randomness, blobs, log, board API ==== */

/* The stack's 32-bit millisecond clock, extended past its wrap (49 days). */
uint64_t
rp_port_now_ms(void)
{
    static uint32_t last;
    static uint64_t high;
    uint32_t now = sk_now32();

    high += now < last ? (uint64_t)1 << 32 : 0;
    last = now;
    return high | now;
}

/* No wall clock (0).  A board with an RTC or SNTP defines its own
 * rp_port_time(), which replaces this weak one at link time. */
__attribute__((weak)) int64_t
rp_port_time(void)
{
    return 0;
}

int
rp_port_random(void *buf, size_t n)
{
    return sk_hooks.random ? sk_hooks.random(buf, n) : RP_EIO;
}

int
rp_port_blob(const char *name, const void **data, size_t *len)
{
    size_t i;

    for (i = 0; i < sk_nblobs; i++)
        if (strcmp(sk_blobs[i].name, name) == 0) {
            *data = sk_blobs[i].data;
            *len = sk_blobs[i].len;
            return RP_OK;
        }
    return RP_ENOTFOUND;
}

void
rp_port_log(int level, const char *fmt, ...)
{
    char line[160];
    va_list ap;

    if (!sk_hooks.log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sk_hooks.log(level, line);
}

#if RP_ENABLE_ASSERT
void
rp_port_assert(const char *file, int line, const char *expr)
{
    rp_port_log(RP_LOG_ERROR, "%s:%d: assertion failed: %s", file, line, expr);
    abort(); /* newlib, picolibc and the RTOS C libraries have it */
}
#endif

void
rp_sockets_init(const rp_sockets_hooks *hooks, const rp_sockets_blob *blobs, size_t nblobs)
{
    if (hooks)
        sk_hooks = *hooks;
    sk_blobs = blobs;
    sk_nblobs = blobs ? nblobs : 0;
}

const rp_sockets_stats *
rp_sockets_stats_get(void)
{
    return &sk_stats;
}

/* ==== [7] Names ====
 * This port has no resolver: the stacks' getaddrinfo (lwip_getaddrinfo,
 * zsock_getaddrinfo) block the calling task, and this port's one task is
 * rproxy's loop.  A board that wants `device POOL NAME:PORT` runs a
 * resolver task of its own and implements these two (as port/posix.c does
 * with threads), or builds with RP_ENABLE_DNS 0 so a name in the config is
 * refused at its line.  Here a name's device stays down, logged once. */
#if RP_ENABLE_DNS
int
rp_port_resolve(const char *name, int slot)
{
    (void)name, (void)slot;
    return RP_ENOTIMPL;
}

int
rp_port_resolve_result(int slot, rp_addr *out)
{
    (void)slot, (void)out;
    return RP_EINVAL;
}
#endif

/*
 * posix.c -- the rproxy port contract (rproxy.h) on BSD sockets.
 *
 * SPDX-License-Identifier: MIT
 *
 * Readiness comes from epoll, level-triggered, on Linux and from poll()
 * elsewhere (or on Linux with -DRP_POSIX_USE_POLL).  A static table indexed
 * by descriptor keeps each socket's interest and user pointer, so
 * rp_port_watch knows whether to add, change or remove it.  Sockets are
 * non-blocking and close-on-exec; TCP sockets get TCP_NODELAY.  No proxy
 * logic lives here.
 *
 * [1] descriptor table  [2] addresses and errors  [3] sockets  [4] readiness
 * [5] clock, randomness, blobs, log  [6] host extras (posix.h)
 * [7] names (rp_port_resolve: getaddrinfo in resolver threads)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, getrandom, strdup */
#endif
#include "rproxy.h"
#include "posix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__) && !defined(RP_POSIX_USE_POLL)
#define PX_EPOLL 1
#include <sys/epoll.h>
#else
#define PX_EPOLL 0
#include <poll.h>
#endif
#ifdef __linux__
#include <sys/random.h>
#define PX_SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC) /* else set by fcntl */
#else
#define PX_SOCK_FLAGS 0
#endif
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* SO_NOSIGPIPE is set on the socket instead */
#endif

/* ==== [1] Descriptor table ====
 * One entry per descriptor number: the interest registered with the kernel
 * (0 = not registered) and the pointer reported with its events.  The poll
 * build also keeps a dense pollfd array; slot is an entry's index + 1. */

typedef struct {
    void *ud;
    unsigned events;
#if !PX_EPOLL
    int slot;
#endif
} px_fd;

static px_fd px_fds[RP_POSIX_MAX_FDS];

#if RP_ENABLE_DNS
static int px_dns_wake[2] = {-1, -1}; /* resolver threads -> rp_port_wait ([7]) */
static void px_dns_drain(void);
#define PX_DNS_WOKE(fd) ((fd) == px_dns_wake[0] ? (px_dns_drain(), 1) : 0)
#else
#define PX_DNS_WOKE(fd) 0
#endif

#if PX_EPOLL
#define PX_BATCH 256 /* epoll_wait reports per call */
static int px_epfd = -1;
#else
static struct pollfd px_pfds[RP_POSIX_MAX_FDS];
static int px_npfd; /* entries used in px_pfds */
static int px_next; /* where the next scan starts, for fairness */
#endif

#define PX_BLOBS 16
static struct {
    char *name;
    char *data;
    size_t len;
} px_blobs[PX_BLOBS];

/* ==== [2] Addresses and errors ==== */

/* rp_addr -> sockaddr; returns its length, 0 for an unknown family. */
static socklen_t
px_sockaddr(const rp_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->ip, 4);
        return sizeof *s4;
    }
    if (a->family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->ip, 16);
        return sizeof *s6;
    }
    return 0;
}

/* sockaddr -> rp_addr (IPv6 listeners are v6-only: no mapped addresses). */
static void
px_addr(const struct sockaddr_storage *ss, rp_addr *a)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

    memset(a, 0, sizeof *a);
    a->family = ss->ss_family == AF_INET6 ? 6 : 4;
    a->port = ntohs(a->family == 6 ? s6->sin6_port : s4->sin_port);
    if (a->family == 6)
        memcpy(a->ip, &s6->sin6_addr, 16);
    else
        memcpy(a->ip, &s4->sin_addr, 4);
}

/* Out of descriptors or kernel memory. */
static int
px_resource(int e)
{
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

/* errno of a failed send/recv -> rp_err. */
static int
px_io_err(int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
        return RP_EAGAIN;
    if (e == EPIPE || e == ECONNRESET)
        return RP_ERESET;
    return e == ETIMEDOUT ? RP_ETIMEDOUT : RP_EIO;
}

/* ==== [3] Sockets ==== */

/* Take a fresh descriptor into the port: refuse numbers beyond the table,
 * set what socket()/accept() could not, reset its table entry.  Returns fd,
 * or -1 with errno set (the descriptor is closed). */
static int
px_adopt(int fd, int need_flags, int tcp)
{
    int one = 1;

    if (fd < 0)
        return -1;
    if (fd >= RP_POSIX_MAX_FDS
        || (need_flags && (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0
                           || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0))) {
        close(fd);
        errno = EMFILE;
        return -1;
    }
#ifdef SO_NOSIGPIPE
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    if (tcp)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&px_fds[fd], 0, sizeof px_fds[fd]);
    return fd;
}

/* A new non-blocking, close-on-exec TCP socket, or -1 with errno set. */
static int
px_socket(int family, int tcp_nodelay)
{
    int fd = socket(family, SOCK_STREAM | PX_SOCK_FLAGS, 0);
    return px_adopt(fd, PX_SOCK_FLAGS == 0, tcp_nodelay);
}

rp_sock
rp_port_listen(const rp_addr *a, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len = px_sockaddr(a, &ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int one = 1, fd, e;

    if (len == 0)
        return RP_EADDR;
    fd = px_socket(ss.ss_family, 0);
    if (fd >= 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef IPV6_V6ONLY
        if (a->family == 6) /* predictable: [::] does not take IPv4 too */
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
#endif
        if (bind(fd, (struct sockaddr *)&ss, len) == 0 && listen(fd, backlog) == 0)
            return fd;
    }
    e = errno;
    if (fd >= 0)
        close(fd);
    inet_ntop(ss.ss_family, a->ip, ip, sizeof ip);
    rp_port_log(RP_LOG_ERROR, a->family == 6 ? "listen [%s]:%u: %s" : "listen %s:%u: %s",
                ip, (unsigned)a->port, strerror(e));
    return RP_EADDR;
}

rp_sock
rp_port_accept(rp_sock l, rp_addr *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd;

#ifdef __linux__
    fd = accept4(l, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    fd = accept(l, (struct sockaddr *)&ss, &len);
#endif
    fd = px_adopt(fd, PX_SOCK_FLAGS == 0, 1);
    if (fd < 0 && px_resource(errno))
        return RP_ENOMEM;
    if (fd < 0) /* ECONNABORTED: that one died in the queue, try the next */
        return px_io_err(errno) == RP_EAGAIN || errno == ECONNABORTED ? RP_EAGAIN : RP_EIO;
    px_addr(&ss, peer);
    return fd;
}

rp_sock
rp_port_connect(const rp_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = px_sockaddr(a, &ss);
    int fd, e;

    if (len == 0)
        return RP_EREFUSED;
    fd = px_socket(ss.ss_family, 1);
    if (fd < 0)
        return px_resource(errno) ? RP_ENOMEM : RP_EREFUSED;
    if (connect(fd, (struct sockaddr *)&ss, len) == 0 || errno == EINPROGRESS
        || errno == EINTR)
        return fd;
    e = errno;
    close(fd);
    /* EADDRNOTAVAIL / EAGAIN here mean no free local port */
    if (px_resource(e) || e == EADDRNOTAVAIL || e == EAGAIN)
        return RP_ENOMEM;
    return RP_EREFUSED;
}

int
rp_port_connect_result(rp_sock s)
{
    int e = 0;
    socklen_t len = sizeof e;

    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
        e = errno;
    if (e == 0)
        return RP_OK;
    if (e == ECONNREFUSED)
        return RP_EREFUSED;
    return e == ETIMEDOUT ? RP_ETIMEDOUT : RP_EIO;
}

long
rp_port_send(rp_sock s, const void *buf, size_t n)
{
    ssize_t r;

    do
        r = send(s, buf, n, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r >= 0 ? (long)r : px_io_err(errno);
}

long
rp_port_sendv(rp_sock s, const rp_iov *iov, int n)
{
    struct iovec v[16];
    struct msghdr mh;
    ssize_t r;
    int i;

    if (n > 16)
        n = 16;
    for (i = 0; i < n; i++) {
        v[i].iov_base = (void *)(uintptr_t)iov[i].p;
        v[i].iov_len = iov[i].n;
    }
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = v;
    mh.msg_iovlen = (size_t)n;
    do
        r = sendmsg(s, &mh, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r >= 0 ? (long)r : px_io_err(errno);
}

long
rp_port_recv(rp_sock s, void *buf, size_t n)
{
    ssize_t r;

    do
        r = recv(s, buf, n, 0);
    while (r < 0 && errno == EINTR);
    return r >= 0 ? (long)r : px_io_err(errno);
}

void
rp_port_shutdown(rp_sock s)
{
    (void)shutdown(s, SHUT_WR);
}

/* ==== [4] Readiness ====
 * Interest 0 removes a descriptor from the kernel set (so a hung-up socket
 * nobody reads cannot spin the loop); errors and hang-ups are reported as
 * ERROR|READ|WRITE so the core tries I/O and meets the error there. */

static unsigned
px_report(int in, int out, int err)
{
    if (err)
        return RP_EV_ERROR | RP_EV_READ | RP_EV_WRITE;
    return (in ? RP_EV_READ : 0u) | (out ? RP_EV_WRITE : 0u);
}

#if PX_EPOLL
/* Register, change or remove s's interest with epoll. */
static int
px_set(int s, unsigned events)
{
    struct epoll_event e;
    int op = events == 0 ? EPOLL_CTL_DEL
             : px_fds[s].events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;

    if (px_epfd < 0 && (px_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return RP_EIO;
    memset(&e, 0, sizeof e);
    e.events = (events & RP_EV_READ ? EPOLLIN : 0u) | (events & RP_EV_WRITE ? EPOLLOUT : 0u);
    e.data.fd = s;
    if (epoll_ctl(px_epfd, op, s, &e) < 0 && op != EPOLL_CTL_DEL)
        return px_resource(errno) || errno == ENOSPC ? RP_ENOMEM : RP_EIO;
    px_fds[s].events = events;
    return RP_OK;
}

int
rp_port_wait(rp_event *ev, int max, int timeout_ms)
{
    struct epoll_event e[PX_BATCH];
    int i, n;

    if (max < 1)
        return RP_EINVAL;
    if (px_epfd < 0 && (px_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return RP_EIO;
    n = epoll_wait(px_epfd, e, max < PX_BATCH ? max : PX_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : RP_EIO;
    for (i = 0; i < n; i++) {
        (void)PX_DNS_WOKE(e[i].data.fd); /* its ud is NULL: the core skips it */
        ev[i].ud = px_fds[e[i].data.fd].ud;
        ev[i].events = px_report(e[i].events & EPOLLIN, e[i].events & EPOLLOUT,
                                 e[i].events & (EPOLLERR | EPOLLHUP));
    }
    return n;
}
#else
/* Add, change or remove s in the dense pollfd array (removal moves the last
 * entry into the hole). */
static int
px_set(int s, unsigned events)
{
    px_fd *f = &px_fds[s];

    if (events == 0) {
        int i = f->slot - 1;
        px_pfds[i] = px_pfds[--px_npfd];
        px_fds[px_pfds[i].fd].slot = i + 1;
        f->slot = 0;
    } else {
        if (f->slot == 0) {
            px_pfds[px_npfd].fd = s;
            f->slot = ++px_npfd;
        }
        px_pfds[f->slot - 1].events =
            (short)((events & RP_EV_READ ? POLLIN : 0) | (events & RP_EV_WRITE ? POLLOUT : 0));
    }
    f->events = events;
    return RP_OK;
}

int
rp_port_wait(rp_event *ev, int max, int timeout_ms)
{
    int i, k = 0, n, start = px_npfd ? px_next % px_npfd : 0;

    if (max < 1)
        return RP_EINVAL;
    n = poll(px_pfds, (nfds_t)px_npfd, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : RP_EIO;
    for (i = 0; i < px_npfd && k < max && n > 0; i++) {
        const struct pollfd *pf = &px_pfds[(start + i) % px_npfd];
        if (pf->revents == 0)
            continue;
        n--;
        if (PX_DNS_WOKE(pf->fd))
            continue;
        ev[k].ud = px_fds[pf->fd].ud;
        ev[k++].events = px_report(pf->revents & POLLIN, pf->revents & POLLOUT,
                                   pf->revents & (POLLERR | POLLHUP | POLLNVAL));
    }
    px_next = px_npfd ? (start + i) % px_npfd : 0;
    return k;
}
#endif

int
rp_port_watch(rp_sock s, unsigned events, void *ud)
{
    if (s < 0 || s >= RP_POSIX_MAX_FDS)
        return RP_EINVAL;
    events &= RP_EV_READ | RP_EV_WRITE;
    px_fds[s].ud = ud;
    return events == px_fds[s].events ? RP_OK : px_set(s, events);
}

void
rp_port_close(rp_sock s)
{
    if (s < 0)
        return;
    if (s < RP_POSIX_MAX_FDS) {
        if (px_fds[s].events)
            (void)px_set(s, 0);
        px_fds[s].ud = NULL;
    }
    close(s);
}

/* ==== [5] Clock, randomness, blobs, log ==== */

uint64_t
rp_port_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t
rp_port_time(void)
{
    return (int64_t)time(NULL);
}

int
rp_port_random(void *buf, size_t n)
{
    char *p = buf;
    ssize_t r;

    for (; n > 0; p += r, n -= (size_t)r) {
#ifdef __linux__
        r = getrandom(p, n, 0);
#else
        int fd = open("/dev/urandom", O_RDONLY);
        r = fd < 0 ? -1 : read(fd, p, n);
        if (fd >= 0)
            close(fd);
#endif
        if (r < 0 && errno == EINTR)
            r = 0;
        else if (r <= 0)
            return RP_EIO;
    }
    return RP_OK;
}

/* Read a whole regular file into a malloc'd, NUL-terminated buffer.  0, or
 * -1 with errno saying why (EISDIR for a directory or another non-regular
 * file).  Reading one byte more than its size checks that the end was
 * reached (a file that changed size meanwhile is EIO). */
static int
px_read_file(const char *name, char **data, size_t *len)
{
    FILE *f = fopen(name, "rb");
    struct stat st;
    char *d = NULL;
    size_t n = 0;
    int err = 0;

    if (!f)
        return -1; /* errno from fopen */
    if (fstat(fileno(f), &st) != 0)
        err = errno;
    else if (!S_ISREG(st.st_mode))
        err = EISDIR;
    else if (!(d = malloc((n = (size_t)st.st_size) + 1)))
        err = ENOMEM;
    else if (fread(d, 1, n + 1, f) != n || ferror(f))
        err = EIO;
    fclose(f);
    if (err) {
        free(d);
        errno = err;
        return -1;
    }
    d[n] = '\0';
    *data = d;
    *len = n;
    return 0;
}

/* An rp_port_blob error for errno. */
static int
px_blob_error(int err)
{
    if (err == ENOENT || err == ENOTDIR)
        return RP_ENOTFOUND;
    if (err == EACCES || err == EPERM)
        return RP_EACCES;
    return err == ENOMEM ? RP_ENOMEM : RP_EIO;
}

int
rp_port_blob(const char *name, const void **data, size_t *len)
{
    int i;

    for (i = 0; i < PX_BLOBS && px_blobs[i].name; i++)
        if (strcmp(px_blobs[i].name, name) == 0)
            break;
    if (i == PX_BLOBS) {
        errno = ENOMEM;
        return RP_ENOMEM;
    }
    if (!px_blobs[i].name) {
        if (px_read_file(name, &px_blobs[i].data, &px_blobs[i].len) < 0)
            return px_blob_error(errno);
        if (!(px_blobs[i].name = strdup(name))) {
            free(px_blobs[i].data);
            errno = ENOMEM;
            return RP_ENOMEM;
        }
    }
    *data = px_blobs[i].data;
    *len = px_blobs[i].len;
    return RP_OK;
}

void (*rp_posix_log_hook)(int level, const char *line);

void
rp_port_log(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (rp_posix_log_hook)
        rp_posix_log_hook(level, line);
    else
        fprintf(stderr, "rproxy: %s\n", line);
}

#if RP_ENABLE_ASSERT
void
rp_port_assert(const char *file, int line, const char *expr)
{
    fprintf(stderr, "rproxy: %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
#endif

/* ==== [6] Host extras (posix.h) ==== */

long
rp_posix_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > RP_POSIX_MAX_FDS)
        rl.rlim_cur = RP_POSIX_MAX_FDS;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    return rl.rlim_cur == RLIM_INFINITY ? RP_POSIX_MAX_FDS : (long)rl.rlim_cur;
}

void
rp_posix_blobs_forget(void)
{
    int i;

    for (i = 0; i < PX_BLOBS; i++) {
        free(px_blobs[i].name);
        free(px_blobs[i].data);
        memset(&px_blobs[i], 0, sizeof px_blobs[i]);
    }
}

void
rp_posix_cleanup(void)
{
    rp_posix_blobs_forget();
#if PX_EPOLL
    if (px_epfd >= 0)
        close(px_epfd);
    px_epfd = -1;
#endif
}

/* ==== [7] Names ====
 * rp_port_resolve hands the name to one of PX_DNS_THREADS resolver threads,
 * which call getaddrinfo -- blocking, but not the loop -- and post the
 * answer in a static table (one entry per device slot, no heap) under a
 * mutex, then write a byte to a non-blocking pipe that rp_port_wait
 * watches, so the loop wakes and rproxy collects it with
 * rp_port_resolve_result.  The decision: glibc (or the host's libc)
 * parses the DNS messages, honours /etc/resolv.conf, /etc/hosts and
 * nsswitch.conf (mDNS `.local` names where libnss-mdns is installed); the
 * port has no DNS parser of its own, and a malformed, truncated, empty or
 * wrong-family answer is whatever getaddrinfo refuses: "not resolved".
 * The threads block every signal, so the daemon's handlers run on the
 * loop thread as before.  The first AF_INET (or AF_INET6, with
 * RP_ENABLE_IPV6) answer in getaddrinfo's order (RFC 6724, gai.conf) is
 * the one given. */
#if RP_ENABLE_DNS
#include <netdb.h>
#include <pthread.h>
#include <signal.h>

#ifndef PX_DNS_THREADS
#define PX_DNS_THREADS 2 /* lookups at once: a slow name server holds one */
#endif
enum { PXD_FREE, PXD_QUEUED, PXD_RUNNING, PXD_DONE };
static struct {
    int state;
    int rc;
    rp_addr a;
    char name[254];
} px_dns[RP_MAX_DEVICES];
static pthread_mutex_t px_dns_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t px_dns_cv = PTHREAD_COND_INITIALIZER;
static int px_dns_started;

static void
px_dns_drain(void)
{
    char b[64];
    while (read(px_dns_wake[0], b, sizeof b) > 0)
        ;
}

/* getaddrinfo -> the first usable address, or why none. */
static int
px_lookup(const char *name, rp_addr *out)
{
    struct addrinfo hints, *res = NULL, *r;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = RP_ENABLE_IPV6 ? AF_UNSPEC : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0) {
        if (rc == EAI_NONAME || rc == EAI_FAMILY
#ifdef EAI_NODATA
            || rc == EAI_NODATA
#endif
#ifdef EAI_ADDRFAMILY
            || rc == EAI_ADDRFAMILY
#endif
        )
            return RP_ENOTFOUND;
        return rc == EAI_AGAIN ? RP_ETIMEDOUT : RP_EIO;
    }
    rc = RP_ENOTFOUND;
    for (r = res; r && rc != RP_OK; r = r->ai_next) {
        if (r->ai_family != AF_INET && !(RP_ENABLE_IPV6 && r->ai_family == AF_INET6))
            continue;
        if (r->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        {
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof ss);
            memcpy(&ss, r->ai_addr, r->ai_addrlen);
            px_addr(&ss, out);
        }
        out->port = 0;
        rc = RP_OK;
    }
    freeaddrinfo(res);
    return rc;
}

static void *
px_dns_worker(void *arg)
{
    (void)arg;
    for (;;) {
        char name[254];
        rp_addr a;
        int i, rc;
        pthread_mutex_lock(&px_dns_mu);
        for (;;) {
            for (i = 0; i < RP_MAX_DEVICES && px_dns[i].state != PXD_QUEUED; i++)
                ;
            if (i < RP_MAX_DEVICES)
                break;
            pthread_cond_wait(&px_dns_cv, &px_dns_mu);
        }
        px_dns[i].state = PXD_RUNNING;
        memcpy(name, px_dns[i].name, sizeof name);
        pthread_mutex_unlock(&px_dns_mu);
        memset(&a, 0, sizeof a);
        rc = px_lookup(name, &a);
        pthread_mutex_lock(&px_dns_mu);
        px_dns[i].rc = rc;
        px_dns[i].a = a;
        px_dns[i].state = PXD_DONE;
        pthread_mutex_unlock(&px_dns_mu);
        if (write(px_dns_wake[1], "", 1) < 0) { /* full pipe: a wake is pending anyway */
        }
    }
    return NULL;
}

/* The pipe and the threads, at the first lookup (after the daemon set up
 * its signals and dropped privileges, if it does). */
static int
px_dns_start(void)
{
    sigset_t all, old;
    pthread_t t;
    pthread_attr_t at;
    int i, ok = 0;
    if (pipe2(px_dns_wake, O_NONBLOCK | O_CLOEXEC) < 0)
        return RP_ENOMEM;
    if (px_dns_wake[0] >= RP_POSIX_MAX_FDS || px_set(px_dns_wake[0], RP_EV_READ) != RP_OK)
        goto fail;
    px_fds[px_dns_wake[0]].ud = NULL; /* reported with no ud: the core skips it */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    for (i = 0; i < PX_DNS_THREADS; i++)
        ok += pthread_create(&t, &at, px_dns_worker, NULL) == 0;
    pthread_attr_destroy(&at);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ok) {
        px_dns_started = 1;
        return RP_OK;
    }
fail:
    close(px_dns_wake[0]);
    close(px_dns_wake[1]);
    px_dns_wake[0] = px_dns_wake[1] = -1;
    return RP_ENOMEM;
}

int
rp_port_resolve(const char *name, int slot)
{
    size_t n = strlen(name);
    int rc = RP_OK;
    if (slot < 0 || slot >= RP_MAX_DEVICES || n == 0 || n >= sizeof px_dns[0].name)
        return RP_EINVAL;
    if (!px_dns_started && (rc = px_dns_start()) != RP_OK)
        return rc;
    pthread_mutex_lock(&px_dns_mu);
    if (px_dns[slot].state != PXD_FREE) {
        rc = RP_ENOMEM;
    } else {
        memcpy(px_dns[slot].name, name, n + 1);
        px_dns[slot].state = PXD_QUEUED;
        pthread_cond_signal(&px_dns_cv);
    }
    pthread_mutex_unlock(&px_dns_mu);
    return rc;
}

int
rp_port_resolve_result(int slot, rp_addr *out)
{
    int rc = RP_EAGAIN;
    if (slot < 0 || slot >= RP_MAX_DEVICES)
        return RP_EINVAL;
    pthread_mutex_lock(&px_dns_mu);
    if (px_dns[slot].state == PXD_DONE) {
        rc = px_dns[slot].rc;
        if (rc == RP_OK) {
            out->family = px_dns[slot].a.family;
            memcpy(out->ip, px_dns[slot].a.ip, sizeof out->ip);
        }
        px_dns[slot].state = PXD_FREE;
    } else if (px_dns[slot].state == PXD_FREE) {
        rc = RP_EINVAL; /* nothing asked */
    }
    pthread_mutex_unlock(&px_dns_mu);
    return rc;
}
#endif

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
rp_posix_cleanup(void)
{
    int i;

    for (i = 0; i < PX_BLOBS; i++) {
        free(px_blobs[i].name);
        free(px_blobs[i].data);
        memset(&px_blobs[i], 0, sizeof px_blobs[i]);
    }
#if PX_EPOLL
    if (px_epfd >= 0)
        close(px_epfd);
    px_epfd = -1;
#endif
}

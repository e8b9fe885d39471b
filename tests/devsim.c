/*
 * devsim.c -- a small, fast HTTP/1.1 "device" for rproxy's tests and benchmarks.
 *
 * SPDX-License-Identifier: MIT
 *
 *   devsim -p PORT [-a ADDR] [-n NAME] [-s BYTES] [-d MS] [-H 'Field: value']...
 *
 * Answers every request with
 *
 *   HTTP/1.1 200 OK\r\n
 *   Content-Type: text/plain\r\n
 *   X-Device: NAME\r\n
 *   Content-Length: N\r\n
 *   Field: value\r\n            (each -H, in order; e.g.
 *                                 -H 'Cache-Control: public, max-age=3600')
 *   \r\n
 *   hello from NAME\n            (or exactly BYTES bytes with -s: that text,
 *                                 then 'x' padding, truncated if BYTES is smaller)
 *
 * Single-threaded, non-blocking, level-triggered epoll.  Keep-alive (HTTP/1.1
 * default, HTTP/1.0 with "Connection: keep-alive", answered with
 * "Connection: keep-alive"); "Connection: close" or a plain HTTP/1.0 request
 * gets "Connection: close" and the connection is closed after the reply.
 * Pipelining safe: every complete request in the buffer is answered, in order,
 * and all replies ready at once leave in one sendmsg().  Request bodies
 * (Content-Length, or chunked: the framing is decoded just enough to skip it)
 * are read and discarded; the reply is sent once the body is complete.
 * "Expect: 100-continue" with a body gets "HTTP/1.1 100 Continue" first.  HEAD
 * gets the head only.  A head larger than the buffer or broken framing gets a
 * 400 and a close.  The replies are precomputed at start.
 *
 * -d MS waits MS milliseconds before each answer (not before a 100 Continue
 * or a 400), blocking the whole server: a slow device for demos, one client
 * at a time.
 *
 * With -p 0 the kernel picks the port; the "listening on" line on stderr
 * tells which.  SIGTERM / SIGINT: exit 0.  SIGUSR1: one line on stderr,
 * "devsim: NAME requests N", N = request heads parsed so far (any method,
 * 400s excluded) -- how a benchmark tells whether a cache in front answered.
 *
 * Build: cc -D_GNU_SOURCE -O2 -Wall -Wextra -o build/devsim tests/devsim.c
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 16384     /* request head must fit; bodies stream through */
#define QCAP 64            /* replies queued per connection before we stop reading */
#define LINGER_MS 2000     /* after a "close" reply: drain input this long at most */
#define MAX_EVENTS 256

#if defined(__GNUC__)
#define NORETURN __attribute__((noreturn))
#else
#define NORETURN
#endif

/* The precomputed replies. */
enum {
    K_KA,          /* 200, keep-alive (HTTP/1.1) */
    K_KA_HEAD,     /* same, head only (HEAD) */
    K_CLOSE,       /* 200 + Connection: close */
    K_CLOSE_HEAD,
    K_KA10,        /* 200 + Connection: keep-alive (HTTP/1.0 keep-alive) */
    K_KA10_HEAD,
    K_CONTINUE,    /* 100 Continue */
    K_BAD,         /* 400, closes */
    K_COUNT
};

static struct {
    char *p;
    size_t n;
} reply[K_COUNT];

/* Body-skipping states. */
enum { B_NONE, B_LEN, CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_TRAILER };

/* Connection flags. */
enum {
    F_CLOSING = 1, /* answer what is queued, then close: parse nothing more */
    F_EOF = 2,     /* client closed its side */
    F_LINGER = 4,  /* our side shut down; draining input before close */
    F_BLOCKED = 8  /* parsing stopped because the reply queue was full */
};

typedef struct {
    int fd;
    unsigned interest;   /* epoll events currently registered */
    unsigned flags;
    size_t rlen;         /* bytes in buf */
    int bstate;          /* body being skipped */
    uint64_t bleft;      /* B_LEN / CH_DATA: bytes left; CH_SIZE: size so far */
    int digits;          /* CH_SIZE: hex digits seen */
    int linelen;         /* CH_TRAILER: bytes on the current trailer line */
    int final_kind;      /* reply due once the body is skipped */
    int final_close;     /* ... and close after it */
    uint64_t linger_until;
    unsigned qh, qn;     /* reply ring: head index, count */
    size_t qoff;         /* bytes of the head reply already sent */
    unsigned char q[QCAP];
    char buf[BUF_SIZE];
} conn;

static conn **conns;     /* indexed by fd */
static int nconns_max;   /* size of conns */
static int epfd = -1;
static int lfd = -1;
static int nlinger;
static volatile sig_atomic_t stop;
static volatile sig_atomic_t report;   /* SIGUSR1: print the request count */
static unsigned long long nrequests;   /* request heads parsed */
static long delay_ms;                  /* -d: wait before each answer */
#define MAX_EXTRA 2048                 /* all -H lines together */
static char extra_hdrs[MAX_EXTRA];
static size_t extra_len;

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        report = 1;
    else
        stop = 1;
}

static NORETURN void
die(const char *what)
{
    fprintf(stderr, "devsim: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- replies ---- */

static void
make_reply(int k, const char *name, const char *extra, const char *body, size_t blen,
           int with_body)
{
    char head[512 + MAX_EXTRA];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Device: %s\r\n"
                      "Content-Length: %zu\r\n%s%s\r\n",
                      name, blen, extra_hdrs, extra);
    size_t n = (size_t)hn + (with_body ? blen : 0);
    reply[k].p = malloc(n ? n : 1);
    if (!reply[k].p)
        die("malloc");
    memcpy(reply[k].p, head, (size_t)hn);
    if (with_body)
        memcpy(reply[k].p + hn, body, blen);
    reply[k].n = n;
}

static void
make_replies(const char *name, long long size)
{
    char hello[300];
    int hl = snprintf(hello, sizeof hello, "hello from %s\n", name);
    size_t blen = size < 0 ? (size_t)hl : (size_t)size;
    char *body = malloc(blen ? blen : 1);
    if (!body)
        die("malloc");
    memset(body, 'x', blen);
    memcpy(body, hello, blen < (size_t)hl ? blen : (size_t)hl);
    make_reply(K_KA, name, "", body, blen, 1);
    make_reply(K_KA_HEAD, name, "", body, blen, 0);
    make_reply(K_CLOSE, name, "Connection: close\r\n", body, blen, 1);
    make_reply(K_CLOSE_HEAD, name, "Connection: close\r\n", body, blen, 0);
    make_reply(K_KA10, name, "Connection: keep-alive\r\n", body, blen, 1);
    make_reply(K_KA10_HEAD, name, "Connection: keep-alive\r\n", body, blen, 0);
    free(body);
    static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    static char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 12\r\nConnection: close\r\n\r\nbad request\n";
    reply[K_CONTINUE].p = cont;
    reply[K_CONTINUE].n = sizeof cont - 1;
    reply[K_BAD].p = bad;
    reply[K_BAD].n = sizeof bad - 1;
}

/* ---- connections ---- */

static void
set_interest(conn *c)
{
    unsigned ev = 0;
    if (c->flags & F_LINGER)
        ev = EPOLLIN;
    else {
        if (!(c->flags & (F_CLOSING | F_EOF | F_BLOCKED)) && c->rlen < BUF_SIZE)
            ev |= EPOLLIN;
        if (c->qn)
            ev |= EPOLLOUT;
    }
    if (ev != c->interest) {
        struct epoll_event e;
        memset(&e, 0, sizeof e);
        e.events = ev;
        e.data.fd = c->fd;
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
        c->interest = ev;
    }
}

static void
conn_close(conn *c)
{
    if (c->flags & F_LINGER)
        nlinger--;
    conns[c->fd] = NULL;
    close(c->fd); /* also drops it from the epoll set */
    free(c);
}

static void
enqueue(conn *c, int kind)
{
    if (delay_ms > 0 && kind != K_CONTINUE && kind != K_BAD) {
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop)
            ;
    }
    c->q[(c->qh + c->qn) % QCAP] = (unsigned char)kind;
    c->qn++;
}

/* Send as much of the reply queue as the socket takes, in one sendmsg per
 * call.  Returns -1 if the connection was closed. */
static int
flush(conn *c)
{
    while (c->qn) {
        struct iovec iov[QCAP];
        unsigned i, n = c->qn;
        for (i = 0; i < n; i++) {
            int k = c->q[(c->qh + i) % QCAP];
            iov[i].iov_base = reply[k].p;
            iov[i].iov_len = reply[k].n;
        }
        iov[0].iov_base = (char *)iov[0].iov_base + c->qoff;
        iov[0].iov_len -= c->qoff;
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = n;
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            conn_close(c);
            return -1;
        }
        size_t left = (size_t)w;
        while (c->qn) {
            size_t rest = reply[c->q[c->qh]].n - c->qoff;
            if (left < rest)
                break;
            left -= rest;
            c->qoff = 0;
            c->qh = (c->qh + 1) % QCAP;
            c->qn--;
        }
        c->qoff += left;
        if (c->qn)
            return 0; /* partial: the socket is full, wait for EPOLLOUT */
    }
    return 0;
}

/* Case-insensitive: does the comma-separated list v contain token t? */
static int
has_token(const char *v, size_t vn, const char *t)
{
    size_t tn = strlen(t), i = 0;
    while (i < vn) {
        while (i < vn && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < vn && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tn && strncasecmp(v + s, t, tn) == 0)
            return 1;
    }
    return 0;
}

/* Length of the head at p (through the empty line), or 0 if incomplete.
 * Lenient: bare LF line endings are accepted. */
static size_t
head_end(const char *p, size_t n)
{
    const char *s = p, *end = p + n;
    while (s < end) {
        const char *lf = memchr(s, '\n', (size_t)(end - s));
        if (!lf)
            return 0;
        if (lf + 1 < end && lf[1] == '\n')
            return (size_t)(lf + 2 - p);
        if (lf + 2 < end && lf[1] == '\r' && lf[2] == '\n')
            return (size_t)(lf + 3 - p);
        if (lf + 2 >= end)
            return 0; /* could still become the end */
        s = lf + 1;
    }
    return 0;
}

/* Parse one request head (hn bytes at p) and queue its reply or start
 * skipping its body.  Returns 0, or -1 for a request we answer with 400. */
static int
parse_head(conn *c, const char *p, size_t hn)
{
    const char *end = p + hn;
    const char *eol = memchr(p, '\n', hn);
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (!sp1 || sp1 == p)
        return -1;
    int head = (sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0);
    size_t ln = (size_t)(eol - p);
    if (ln && p[ln - 1] == '\r')
        ln--;
    if (ln < 9 + (size_t)(sp1 - p) || memcmp(p + ln - 8, "HTTP/1.", 7) != 0)
        return -1;
    int v10 = (p[ln - 1] == '0');

    int conn_close_tok = 0, conn_ka_tok = 0, chunked = 0, has_len = 0, expect = 0;
    uint64_t clen = 0;
    const char *l = eol + 1;
    while (l < end) {
        const char *e = memchr(l, '\n', (size_t)(end - l));
        size_t n = (size_t)(e - l);
        if (n && l[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        const char *colon = memchr(l, ':', n);
        if (colon) {
            size_t kn = (size_t)(colon - l);
            const char *v = colon + 1, *ve = l + n;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            size_t vn = (size_t)(ve - v);
            if (kn == 14 && strncasecmp(l, "Content-Length", 14) == 0) {
                uint64_t x = 0;
                size_t i = 0;
                while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                    vn--;
                if (vn == 0 || vn > 18)
                    return -1;
                for (; i < vn; i++) {
                    if (v[i] < '0' || v[i] > '9')
                        return -1;
                    x = x * 10 + (uint64_t)(v[i] - '0');
                }
                clen = x;
                has_len = 1;
            } else if (kn == 17 && strncasecmp(l, "Transfer-Encoding", 17) == 0) {
                while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                    vn--;
                chunked = vn >= 7 && strncasecmp(v + vn - 7, "chunked", 7) == 0;
                if (!chunked)
                    return -1;
            } else if (kn == 10 && strncasecmp(l, "Connection", 10) == 0) {
                conn_close_tok |= has_token(v, vn, "close");
                conn_ka_tok |= has_token(v, vn, "keep-alive");
            } else if (kn == 6 && strncasecmp(l, "Expect", 6) == 0) {
                expect = has_token(v, vn, "100-continue");
            }
        }
        l = e + 1;
    }

    nrequests++;
    int close_after = conn_close_tok || (v10 && !conn_ka_tok);
    int kind = close_after ? K_CLOSE : (v10 ? K_KA10 : K_KA);
    kind += head;
    if (chunked) {
        c->bstate = CH_SIZE;
        c->bleft = 0;
        c->digits = 0;
    } else if (has_len && clen > 0) {
        c->bstate = B_LEN;
        c->bleft = clen;
    }
    if (c->bstate == B_NONE) {
        enqueue(c, kind);
        if (close_after)
            c->flags |= F_CLOSING;
    } else {
        if (expect && !v10)
            enqueue(c, K_CONTINUE);
        c->final_kind = kind;
        c->final_close = close_after;
    }
    return 0;
}

static int
hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Skip body bytes at p; returns bytes consumed, or -1 on broken chunk
 * framing.  c->bstate becomes B_NONE when the body is complete. */
static long
skip_body(conn *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && c->bstate != B_NONE) {
        int ch = (unsigned char)p[i];
        switch (c->bstate) {
        case B_LEN:
        case CH_DATA: {
            size_t take = n - i;
            if (take > c->bleft)
                take = (size_t)c->bleft;
            i += take;
            c->bleft -= take;
            if (c->bleft == 0)
                c->bstate = c->bstate == B_LEN ? B_NONE : CH_DATA_END;
            continue;
        }
        case CH_SIZE:
            if (hexval(ch) >= 0) {
                if (++c->digits > 15)
                    return -1;
                c->bleft = c->bleft * 16 + (uint64_t)hexval(ch);
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->bstate = CH_EXT;
            } else if (ch == '\n') {
                if (!c->digits)
                    return -1;
                c->bstate = c->bleft ? CH_DATA : CH_TRAILER;
                c->linelen = 0;
            } else if (ch != '\r') {
                return -1;
            }
            break;
        case CH_EXT:
            if (ch == '\n') {
                if (!c->digits)
                    return -1;
                c->bstate = c->bleft ? CH_DATA : CH_TRAILER;
                c->linelen = 0;
            }
            break;
        case CH_DATA_END:
            if (ch == '\n') {
                c->bstate = CH_SIZE;
                c->bleft = 0;
                c->digits = 0;
            } else if (ch != '\r') {
                return -1;
            }
            break;
        case CH_TRAILER:
            if (ch == '\n') {
                if (c->linelen == 0)
                    c->bstate = B_NONE;
                c->linelen = 0;
            } else if (ch != '\r') {
                c->linelen++;
            }
            break;
        }
        i++;
    }
    return (long)i;
}

/* Answer every complete request in the buffer (while the queue has room). */
static void
process(conn *c)
{
    size_t pos = 0;
    c->flags &= ~(unsigned)F_BLOCKED;
    while (!(c->flags & F_CLOSING)) {
        if (c->bstate != B_NONE) {
            long used = skip_body(c, c->buf + pos, c->rlen - pos);
            if (used < 0) {
                enqueue(c, K_BAD);
                c->flags |= F_CLOSING;
                break;
            }
            pos += (size_t)used;
            if (c->bstate != B_NONE)
                break;
            enqueue(c, c->final_kind);
            if (c->final_close)
                c->flags |= F_CLOSING;
            continue;
        }
        if (c->qn + 2 > QCAP) {
            c->flags |= F_BLOCKED;
            break;
        }
        /* tolerate empty lines between requests (RFC 9112 2.2) */
        while (pos < c->rlen && (c->buf[pos] == '\r' || c->buf[pos] == '\n'))
            pos++;
        size_t hn = head_end(c->buf + pos, c->rlen - pos);
        if (hn == 0) {
            if (pos == 0 && c->rlen == BUF_SIZE) { /* head too big */
                enqueue(c, K_BAD);
                c->flags |= F_CLOSING;
            }
            break;
        }
        if (parse_head(c, c->buf + pos, hn) < 0) {
            enqueue(c, K_BAD);
            c->flags |= F_CLOSING;
            break;
        }
        pos += hn;
    }
    if (c->flags & F_CLOSING)
        pos = c->rlen; /* nothing more will be parsed */
    if (pos) {
        memmove(c->buf, c->buf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
}

static void
start_linger(conn *c)
{
    shutdown(c->fd, SHUT_WR);
    if (c->flags & F_EOF) {
        conn_close(c);
        return;
    }
    c->flags |= F_LINGER;
    c->linger_until = now_ms() + LINGER_MS;
    nlinger++;
    set_interest(c);
}

/* Parse, answer, repeat while a full queue held parsing back. */
static void
pump(conn *c)
{
    for (;;) {
        process(c);
        if (flush(c) < 0)
            return;
        if (!(c->flags & F_BLOCKED) || c->qn + 2 > QCAP)
            break;
    }
    if (c->qn == 0 && (c->flags & F_CLOSING)) {
        start_linger(c);
        return;
    }
    if (c->qn == 0 && (c->flags & F_EOF)) {
        conn_close(c);
        return;
    }
    set_interest(c);
}

static void
on_readable(conn *c)
{
    if (c->flags & F_LINGER) {
        char junk[4096];
        ssize_t r = recv(c->fd, junk, sizeof junk, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            conn_close(c);
        return;
    }
    if (c->rlen >= BUF_SIZE)
        return;
    ssize_t r = recv(c->fd, c->buf + c->rlen, BUF_SIZE - c->rlen, 0);
    if (r > 0) {
        c->rlen += (size_t)r;
        pump(c);
    } else if (r == 0) {
        c->flags |= F_EOF;
        pump(c);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_close(c);
    }
}

static void
grow_conns(int fd)
{
    int n = nconns_max ? nconns_max : 1024;
    while (n <= fd)
        n *= 2;
    conn **t = realloc(conns, (size_t)n * sizeof *t);
    if (!t)
        die("realloc");
    memset(t + nconns_max, 0, (size_t)(n - nconns_max) * sizeof *t);
    conns = t;
    nconns_max = n;
}

/* Accept everything pending.  Returns -1 when out of descriptors. */
static int
on_accept(void)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                return -1;
            return 0; /* EAGAIN, ECONNABORTED, EINTR ... */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fd >= nconns_max)
            grow_conns(fd);
        conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            return 0;
        }
        memset(c, 0, offsetof(conn, buf));
        c->fd = fd;
        c->interest = EPOLLIN;
        struct epoll_event e;
        memset(&e, 0, sizeof e);
        e.events = EPOLLIN;
        e.data.fd = fd;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
            close(fd);
            free(c);
            continue;
        }
        conns[fd] = c;
    }
    return 0;
}

static void
sweep_lingering(void)
{
    uint64_t now = now_ms();
    for (int fd = 0; fd < nconns_max && nlinger > 0; fd++) {
        conn *c = conns[fd];
        if (c && (c->flags & F_LINGER) && now >= c->linger_until)
            conn_close(c);
    }
}

static NORETURN void
usage(void)
{
    fprintf(stderr, "usage: devsim -p PORT [-a ADDR] [-n NAME] [-s BYTES] [-d MS] [-H 'Field: value']...\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *port = NULL, *name = "device";
    long long size = -1;
    int opt;
    while ((opt = getopt(argc, argv, "p:a:n:s:d:H:h")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 'a': addr = optarg; break;
        case 'n': name = optarg; break;
        case 's': {
            char *e;
            errno = 0;
            size = strtoll(optarg, &e, 10);
            if (errno || *e || e == optarg || size < 0) {
                fprintf(stderr, "devsim: bad -s %s\n", optarg);
                return 2;
            }
            break;
        }
        case 'd': {
            char *e;
            errno = 0;
            delay_ms = strtol(optarg, &e, 10);
            if (errno || *e || e == optarg || delay_ms < 0 || delay_ms > 600000) {
                fprintf(stderr, "devsim: bad -d %s (milliseconds, 0-600000)\n", optarg);
                return 2;
            }
            break;
        }
        case 'H': {
            /* one field line "Name: value": a token, a colon, no CR / LF */
            size_t n = strlen(optarg), i = 0;
            while (i < n && optarg[i] != ':' && optarg[i] > ' ' && optarg[i] < 127)
                i++;
            if (i == 0 || i == n || optarg[i] != ':' || strpbrk(optarg, "\r\n")) {
                fprintf(stderr, "devsim: bad -H '%s' (want 'Field: value')\n", optarg);
                return 2;
            }
            if (extra_len + n + 3 > sizeof extra_hdrs) {
                fprintf(stderr, "devsim: -H lines longer than %d bytes in all\n", MAX_EXTRA);
                return 2;
            }
            memcpy(extra_hdrs + extra_len, optarg, n);
            memcpy(extra_hdrs + extra_len + n, "\r\n", 3);
            extra_len += n + 2;
            break;
        }
        default: usage();
        }
    }
    if (!port || optind != argc)
        usage();
    if (strlen(name) > 200) {
        fprintf(stderr, "devsim: name too long\n");
        return 2;
    }
    make_replies(name, size);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct addrinfo hints, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(addr, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "devsim: %s:%s: %s\n", addr, port, gai_strerror(gai));
        return 1;
    }
    lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0) {
        fprintf(stderr, "devsim: bind %s:%s: %s\n", addr, port, strerror(errno));
        return 1;
    }
    freeaddrinfo(ai);
    if (listen(lfd, 4096) < 0)
        die("listen");
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        fprintf(stderr, "devsim: %s listening on %s:%s\n", name, host, serv);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event le;
    memset(&le, 0, sizeof le);
    le.events = EPOLLIN;
    le.data.fd = lfd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le) < 0)
        die("epoll_ctl");
    grow_conns(lfd);

    int listening = 1;
    uint64_t resume_at = 0, next_sweep = 0;
    struct epoll_event evs[MAX_EVENTS];
    while (!stop) {
        if (report) {
            report = 0;
            fprintf(stderr, "devsim: %s requests %llu\n", name, nrequests);
        }
        int timeout = (nlinger > 0 || !listening) ? 250 : -1;
        int n = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                if (on_accept() < 0) { /* out of fds: pause accepting a moment */
                    epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL);
                    listening = 0;
                    resume_at = now_ms() + 100;
                }
                continue;
            }
            conn *c = fd < nconns_max ? conns[fd] : NULL;
            if (!c)
                continue;
            unsigned ev = evs[i].events;
            if ((ev & EPOLLERR) || ((ev & EPOLLHUP) && !(ev & EPOLLIN))) {
                conn_close(c);
                continue;
            }
            if (ev & EPOLLOUT) {
                if (c->flags & F_LINGER)
                    continue;
                pump(c);
                c = conns[fd];
                if (!c)
                    continue;
            }
            if (ev & (EPOLLIN | EPOLLHUP))
                on_readable(c);
        }
        if (nlinger > 0 && now_ms() >= next_sweep) {
            sweep_lingering();
            next_sweep = now_ms() + 100;
        }
        if (!listening && now_ms() >= resume_at) {
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le) == 0)
                listening = 1;
        }
    }
    return 0;
}

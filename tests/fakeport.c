/*
 * fakeport.c -- the port contract (rproxy.h) faked for unit tests.
 *
 * SPDX-License-Identifier: MIT
 *
 * See fakeport.h for the model.  Everything is static state reset by
 * fp_reset_all(); buffers grow with realloc (this is test code, not the
 * core).  Nothing here blocks, sleeps or touches a real socket.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fakeport.h"

#define FP_BASE 3 /* first socket id, like a file descriptor */
#define FP_MAX_CONNECTS 1024
#define FP_MAX_POLICIES 32
#define FP_MAX_BLOBS 16
#define FP_LOG_KEEP 64

enum { K_FREE = 0, K_LISTEN, K_ACCEPTED, K_CONNECT };
enum { CS_PENDING = 0, CS_OK, CS_REFUSED };

typedef struct {
    int kind;
    int handed;   /* rproxy holds it (accepted / connected / listening) */
    int queued;   /* K_ACCEPTED waiting in the accept queue */
    int listener; /* K_ACCEPTED: the listener's id */
    int closed, shut;
    int cstate;   /* K_CONNECT */
    int eof, reset;
    rp_addr addr;
    unsigned interest;
    void *ud;
    char *in;
    size_t in_len, in_off;
    char *out;
    size_t out_len, out_off;
    long sendcap;
    size_t sent_total, recv_total;
} fsock;

static fsock socks[FP_MAX_SOCKS];
static int nsocks;
static uint64_t now_ms;
static unsigned cursor; /* rp_port_wait fairness */
static int nwaits, last_wait_timeout; /* rp_port_wait calls, the last timeout */
static int listen_fail;
static int accept_fail;
static int misuse;
static int nconnects;
static int connect_socks[FP_MAX_CONNECTS];
static uint16_t connect_ports[FP_MAX_CONNECTS];
static struct {
    uint16_t port;
    int mode;
} policies[FP_MAX_POLICIES];
static int npolicies;
static int default_policy;
static struct {
    const char *name;
    const void *data;
    size_t len;
} blobs[FP_MAX_BLOBS];
static int nblobs;
static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;
static int log_quiet;
static int log_count;
static char log_lines[FP_LOG_KEEP][256];

/* ==== helpers ==== */

static fsock *
get(int s)
{
    int i = s - FP_BASE;
    if (i < 0 || i >= nsocks || socks[i].kind == K_FREE)
        return NULL;
    return &socks[i];
}

static void
fp_misuse_note(const char *what, int s)
{
    misuse++;
    printf("# fakeport: misuse: %s (socket %d)\n", what, s);
    fflush(stdout);
}

/* A socket rproxy may use: known, handed to it, not closed. */
static fsock *
live(int s, const char *what)
{
    fsock *f = get(s);
    if (!f || !f->handed || f->closed) {
        fp_misuse_note(what, s);
        return NULL;
    }
    return f;
}

static int
new_sock(int kind)
{
    fsock *f;
    if (nsocks >= FP_MAX_SOCKS)
        return -1;
    f = &socks[nsocks];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->sendcap = -1;
    return FP_BASE + nsocks++;
}

static void
grow_append(char **buf, size_t *len, size_t *off, const void *data, size_t n)
{
    char *nb;
    if (*off == *len) /* drained: start over */
        *off = *len = 0;
    nb = (char *)realloc(*buf, *len + n + 1);
    if (!nb) {
        fprintf(stderr, "fakeport: out of memory\n");
        abort();
    }
    *buf = nb;
    memcpy(*buf + *len, data, n);
    *len += n;
}

static int
parse_ip(rp_addr *a, const char *ip, uint16_t port)
{
    memset(a, 0, sizeof *a);
    a->port = port;
    if (strchr(ip, ':')) {
        a->family = 6;
        return inet_pton(AF_INET6, ip, a->ip) == 1 ? 0 : -1;
    }
    a->family = 4;
    return inet_pton(AF_INET, ip, a->ip) == 1 ? 0 : -1;
}

static int
policy_for(uint16_t port)
{
    int i;
    for (i = 0; i < npolicies; i++)
        if (policies[i].port == port)
            return policies[i].mode;
    return default_policy;
}

static size_t
pending_out(const fsock *f)
{
    return f->out_len - f->out_off;
}

static int
has_queued(int l)
{
    int i;
    for (i = 0; i < nsocks; i++)
        if (socks[i].kind == K_ACCEPTED && socks[i].queued && socks[i].listener == l)
            return 1;
    return 0;
}

/* ==== test-side API ==== */

#if RP_ENABLE_DNS
/* ---- names ---- */
#define FP_DNS_NAMES 16
static struct {
    char name[256];
    rp_addr a;
    int rc;
    int lookups;
} dns_tab[FP_DNS_NAMES];
static int dns_n, dns_held, dns_noimpl;
static char dns_slot[RP_MAX_DEVICES][256]; /* slot -> name asked ("" free) */

static void
fp_dns_reset(void)
{
    memset(dns_tab, 0, sizeof dns_tab);
    memset(dns_slot, 0, sizeof dns_slot);
    dns_n = dns_held = dns_noimpl = 0;
}

static int
fp_dns_find(const char *name, int add)
{
    int i;
    for (i = 0; i < dns_n; i++)
        if (strcmp(dns_tab[i].name, name) == 0)
            return i;
    if (!add || dns_n == FP_DNS_NAMES)
        return -1;
    snprintf(dns_tab[dns_n].name, sizeof dns_tab[0].name, "%s", name);
    dns_tab[dns_n].rc = RP_ENOTFOUND;
    return dns_n++;
}

void
fp_dns_set(const char *name, const char *ip, int rc)
{
    int i = fp_dns_find(name, 1);
    rp_addr *a;
    if (i < 0)
        return;
    a = &dns_tab[i].a;
    memset(a, 0, sizeof *a);
    dns_tab[i].rc = rc;
    if (ip && inet_pton(AF_INET, ip, a->ip) == 1)
        a->family = 4;
    else if (ip && inet_pton(AF_INET6, ip, a->ip) == 1)
        a->family = 6;
}

void
fp_dns_hold(int hold)
{
    dns_held = hold;
}

void
fp_dns_notimpl(int on)
{
    dns_noimpl = on;
}

int
fp_dns_lookups(const char *name)
{
    int i = fp_dns_find(name, 0);
    return i < 0 ? 0 : dns_tab[i].lookups;
}

int
rp_port_resolve(const char *name, int slot)
{
    int i;
    if (dns_noimpl)
        return RP_ENOTIMPL;
    if (slot < 0 || slot >= RP_MAX_DEVICES || !name[0] || strlen(name) > 253)
        return RP_EINVAL;
    if (dns_slot[slot][0]) {
        misuse++;
        printf("# fakeport: second lookup on slot %d\n", slot);
        return RP_ENOMEM;
    }
    snprintf(dns_slot[slot], sizeof dns_slot[0], "%s", name);
    if ((i = fp_dns_find(name, 1)) >= 0)
        dns_tab[i].lookups++;
    return RP_OK;
}

int
rp_port_resolve_result(int slot, rp_addr *out)
{
    int i;
    if (slot < 0 || slot >= RP_MAX_DEVICES || !dns_slot[slot][0]) {
        misuse++;
        printf("# fakeport: result of slot %d, no lookup\n", slot);
        return RP_EINVAL;
    }
    if (dns_held)
        return RP_EAGAIN;
    i = fp_dns_find(dns_slot[slot], 0);
    dns_slot[slot][0] = 0;
    if (i < 0 || dns_tab[i].rc != RP_OK)
        return i < 0 ? RP_ENOTFOUND : dns_tab[i].rc;
    out->family = dns_tab[i].a.family;
    memcpy(out->ip, dns_tab[i].a.ip, sizeof out->ip);
    return RP_OK;
}
#endif

void
fp_reset_all(void)
{
    int i;
    for (i = 0; i < nsocks; i++) {
        free(socks[i].in);
        free(socks[i].out);
    }
    memset(socks, 0, sizeof socks);
    nsocks = 0;
    now_ms = 0;
    cursor = 0;
    nwaits = last_wait_timeout = 0;
    listen_fail = accept_fail = misuse = 0;
    nconnects = npolicies = nblobs = 0;
#if RP_ENABLE_DNS
    fp_dns_reset();
#endif
    default_policy = FP_CONNECT_OK;
    rnd_state = 0x9E3779B97F4A7C15ull;
    log_count = 0;
}

void
fp_set_now(uint64_t ms)
{
    now_ms = ms;
}

void
fp_advance(uint64_t ms)
{
    now_ms += ms;
}

uint64_t
fp_now(void)
{
    return now_ms;
}

void
fp_listen_fail_next(void)
{
    listen_fail = 1;
}

int
fp_listener(uint16_t port)
{
    int i;
    for (i = 0; i < nsocks; i++)
        if (socks[i].kind == K_LISTEN && !socks[i].closed && socks[i].addr.port == port)
            return FP_BASE + i;
    return -1;
}

int
fp_client_connect_to(uint16_t lport, const char *ip, uint16_t port)
{
    int l = fp_listener(lport), s;
    fsock *f;
    if (l < 0)
        return -1;
    s = new_sock(K_ACCEPTED);
    if (s < 0)
        return -1;
    f = get(s);
    f->queued = 1;
    f->listener = l;
    f->cstate = CS_OK;
    if (parse_ip(&f->addr, ip, port) != 0)
        printf("# fakeport: bad client ip %s\n", ip);
    return s;
}

int
fp_client_connect(const char *ip, uint16_t port)
{
    int i;
    for (i = 0; i < nsocks; i++)
        if (socks[i].kind == K_LISTEN && !socks[i].closed)
            return fp_client_connect_to(socks[i].addr.port, ip, port);
    return -1;
}

void
fp_accept_fail(int n)
{
    accept_fail = n;
}

void
fp_connect_policy(uint16_t port, int mode)
{
    int i;
    if (port == 0) {
        default_policy = mode;
        return;
    }
    for (i = 0; i < npolicies; i++)
        if (policies[i].port == port) {
            policies[i].mode = mode;
            return;
        }
    if (npolicies < FP_MAX_POLICIES) {
        policies[npolicies].port = port;
        policies[npolicies].mode = mode;
        npolicies++;
    }
}

void
fp_connect_ok(int s)
{
    fsock *f = get(s);
    if (f && f->kind == K_CONNECT && f->cstate == CS_PENDING)
        f->cstate = CS_OK;
}

void
fp_connect_refuse(int s)
{
    fsock *f = get(s);
    if (f && f->kind == K_CONNECT && f->cstate == CS_PENDING)
        f->cstate = CS_REFUSED;
}

int
fp_connect_count(void)
{
    return nconnects;
}

int
fp_connect_sock(int i)
{
    if (i < 0 || i >= nconnects || i >= FP_MAX_CONNECTS)
        return -1;
    return connect_socks[i];
}

uint16_t
fp_connect_port(int i)
{
    if (i < 0 || i >= nconnects || i >= FP_MAX_CONNECTS)
        return 0;
    return connect_ports[i];
}

int
fp_device_sock(uint16_t port, int nth)
{
    int i;
    for (i = 0; i < nsocks; i++)
        if (socks[i].kind == K_CONNECT && socks[i].addr.port == port && nth-- == 0)
            return FP_BASE + i;
    return -1;
}

int
fp_busy_device(void)
{
    int i;
    for (i = fp_connect_count() - 1; i >= 0; i--) {
        int d = fp_connect_sock(i);
        if (d >= 0 && fp_pending(d) > 0)
            return d;
    }
    return -1;
}

const rp_addr *
fp_sock_addr(int s)
{
    fsock *f = get(s);
    return f ? &f->addr : NULL;
}

void
fp_push(int s, const void *data, size_t n)
{
    fsock *f = get(s);
    if (!f || f->kind == K_LISTEN) {
        printf("# fakeport: fp_push on unknown socket %d\n", s);
        return;
    }
    if (f->closed)
        printf("# fakeport: fp_push on socket %d that rproxy closed (dropped)\n", s);
    if (f->eof)
        printf("# fakeport: fp_push on socket %d after fp_eof\n", s);
    if (n)
        grow_append(&f->in, &f->in_len, &f->in_off, data, n);
}

void
fp_push_str(int s, const char *str)
{
    fp_push(s, str, strlen(str));
}

void
fp_eof(int s)
{
    fsock *f = get(s);
    if (f)
        f->eof = 1;
}

void
fp_reset(int s)
{
    fsock *f = get(s);
    if (f)
        f->reset = 1;
}

size_t
fp_take(int s, char *buf, size_t cap)
{
    fsock *f = get(s);
    size_t n;
    if (cap == 0)
        return 0;
    if (!f) {
        buf[0] = '\0';
        return 0;
    }
    n = pending_out(f);
    if (n > cap - 1)
        n = cap - 1;
    if (n)
        memcpy(buf, f->out + f->out_off, n);
    buf[n] = '\0';
    f->out_off += n;
    return n;
}

size_t
fp_pending(int s)
{
    fsock *f = get(s);
    return f ? pending_out(f) : 0;
}

size_t
fp_unread(int s)
{
    fsock *f = get(s);
    return f ? f->in_len - f->in_off : 0;
}

size_t
fp_sent_total(int s)
{
    fsock *f = get(s);
    return f ? f->sent_total : 0;
}

size_t
fp_recv_total(int s)
{
    fsock *f = get(s);
    return f ? f->recv_total : 0;
}

void
fp_set_sendcap(int s, long cap)
{
    fsock *f = get(s);
    if (f)
        f->sendcap = cap;
}

unsigned
fp_interest(int s)
{
    fsock *f = get(s);
    return f ? f->interest : 0;
}

int
fp_closed(int s)
{
    fsock *f = get(s);
    return f ? f->closed : 0;
}

int
fp_shut(int s)
{
    fsock *f = get(s);
    return f ? f->shut : 0;
}

int
fp_open_count(void)
{
    int i, n = 0;
    for (i = 0; i < nsocks; i++)
        if (socks[i].handed && !socks[i].closed)
            n++;
    return n;
}

int
fp_misuse(void)
{
    return misuse;
}

void
fp_blob_add(const char *name, const void *data, size_t len)
{
    if (nblobs < FP_MAX_BLOBS) {
        blobs[nblobs].name = name;
        blobs[nblobs].data = data;
        blobs[nblobs].len = len;
        nblobs++;
    }
}

void
fp_log_quiet(int quiet)
{
    log_quiet = quiet;
}

int
fp_log_count(void)
{
    return log_count;
}

int
fp_log_seen(const char *needle)
{
    int i, n = log_count < FP_LOG_KEEP ? log_count : FP_LOG_KEEP;
    for (i = 0; i < n; i++)
        if (strstr(log_lines[i], needle))
            return 1;
    return 0;
}

rp_proxy *
fp_proxy_new(void)
{
    void *m = mmap(NULL, sizeof(rp_proxy), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("fakeport: mmap rp_proxy");
        abort();
    }
    return (rp_proxy *)m;
}

void
fp_proxy_free(rp_proxy *p)
{
    if (p)
        munmap(p, sizeof(rp_proxy));
}

/* ==== the port contract ==== */

rp_sock
rp_port_listen(const rp_addr *a, int backlog)
{
    int s;
    fsock *f;
    (void)backlog;
    if (listen_fail) {
        listen_fail = 0;
        return RP_EADDR;
    }
    s = new_sock(K_LISTEN);
    if (s < 0)
        return RP_EADDR;
    f = get(s);
    f->addr = *a;
    f->handed = 1;
    return s;
}

rp_sock
rp_port_accept(rp_sock l, rp_addr *peer)
{
    int i;
    fsock *lf = live(l, "accept on a closed/unknown socket");
    if (!lf)
        return RP_EIO;
    if (lf->kind != K_LISTEN) {
        fp_misuse_note("accept on a non-listener", l);
        return RP_EIO;
    }
    for (i = 0; i < nsocks; i++) {
        fsock *f = &socks[i];
        if (f->kind == K_ACCEPTED && f->queued && f->listener == l) {
            if (accept_fail > 0) {
                accept_fail--;
                return RP_ENOMEM;
            }
            f->queued = 0;
            f->handed = 1;
            *peer = f->addr;
            return FP_BASE + i;
        }
    }
    return RP_EAGAIN;
}

rp_sock
rp_port_connect(const rp_addr *a)
{
    int mode = policy_for(a->port), s;
    fsock *f;
    int i = nconnects++;
    if (i < FP_MAX_CONNECTS) {
        connect_ports[i] = a->port;
        connect_socks[i] = -1;
    }
    if (mode == FP_CONNECT_FAIL_NOW)
        return RP_EREFUSED;
    s = new_sock(K_CONNECT);
    if (s < 0)
        return RP_ENOMEM;
    f = get(s);
    f->addr = *a;
    f->handed = 1;
    f->cstate = mode == FP_CONNECT_OK ? CS_OK : mode == FP_CONNECT_REFUSE ? CS_REFUSED : CS_PENDING;
    if (i < FP_MAX_CONNECTS)
        connect_socks[i] = s;
    return s;
}

int
rp_port_connect_result(rp_sock s)
{
    fsock *f = live(s, "connect_result on a closed/unknown socket");
    if (!f)
        return RP_EIO;
    if (f->kind != K_CONNECT)
        return RP_OK;
    if (f->cstate == CS_PENDING)
        return RP_EAGAIN;
    return f->cstate == CS_OK ? RP_OK : RP_EREFUSED;
}

long
rp_port_send(rp_sock s, const void *buf, size_t n)
{
    fsock *f = live(s, "send on a closed/unknown socket");
    size_t room;
    if (!f)
        return RP_EIO;
    if (f->kind == K_LISTEN) {
        fp_misuse_note("send on a listener", s);
        return RP_EIO;
    }
    if (f->shut) {
        fp_misuse_note("send after rp_port_shutdown", s);
        return RP_EIO;
    }
    if (f->reset)
        return RP_ERESET;
    if (f->cstate == CS_REFUSED)
        return RP_EREFUSED;
    if (f->cstate == CS_PENDING)
        return RP_EAGAIN;
    if (n == 0)
        return 0;
    room = n;
    if (f->sendcap >= 0) {
        size_t cap = (size_t)f->sendcap, pend = pending_out(f);
        if (pend >= cap)
            return RP_EAGAIN;
        if (room > cap - pend)
            room = cap - pend;
    }
    grow_append(&f->out, &f->out_len, &f->out_off, buf, room);
    f->sent_total += room;
    return (long)room;
}

long
rp_port_recv(rp_sock s, void *buf, size_t n)
{
    fsock *f = live(s, "recv on a closed/unknown socket");
    size_t have;
    if (!f)
        return RP_EIO;
    if (f->kind == K_LISTEN) {
        fp_misuse_note("recv on a listener", s);
        return RP_EIO;
    }
    if (n == 0) {
        fp_misuse_note("recv with n == 0 (a real socket would say EOF)", s);
        return RP_EAGAIN;
    }
    if (f->reset)
        return RP_ERESET;
    if (f->cstate == CS_REFUSED)
        return RP_EREFUSED;
    if (f->cstate == CS_PENDING)
        return RP_EAGAIN;
    have = f->in_len - f->in_off;
    if (have == 0)
        return f->eof ? 0 : RP_EAGAIN;
    if (have > n)
        have = n;
    memcpy(buf, f->in + f->in_off, have);
    f->in_off += have;
    f->recv_total += have;
    return (long)have;
}

void
rp_port_shutdown(rp_sock s)
{
    fsock *f = live(s, "shutdown on a closed/unknown socket");
    if (f)
        f->shut = 1;
}

void
rp_port_close(rp_sock s)
{
    fsock *f = live(s, "close of a closed/unknown socket");
    if (f) {
        f->closed = 1;
        f->interest = 0;
        f->ud = NULL;
    }
}

int
rp_port_watch(rp_sock s, unsigned events, void *ud)
{
    fsock *f = live(s, "watch on a closed/unknown socket");
    if (!f)
        return RP_EIO;
    f->interest = events & (RP_EV_READ | RP_EV_WRITE);
    f->ud = ud;
    return RP_OK;
}

/* Readiness of one socket given its interest (level-triggered). */
static unsigned
readiness(int id, const fsock *f)
{
    unsigned ev = 0, want = f->interest;
    if (!f->handed || f->closed || want == 0)
        return 0;
    if (f->kind == K_LISTEN)
        return (want & RP_EV_READ) && has_queued(id) ? RP_EV_READ : 0;
    if (f->reset || f->cstate == CS_REFUSED)
        return RP_EV_ERROR | (want & (RP_EV_READ | RP_EV_WRITE));
    if (f->cstate == CS_PENDING)
        return 0;
    if ((want & RP_EV_READ) && (f->in_len > f->in_off || f->eof))
        ev |= RP_EV_READ;
    if ((want & RP_EV_WRITE) && !f->shut &&
        (f->sendcap < 0 || pending_out(f) < (size_t)f->sendcap))
        ev |= RP_EV_WRITE;
    return ev;
}

int
rp_port_wait(rp_event *ev, int max, int timeout_ms)
{
    int k, n = 0;
    nwaits++; /* never blocks: the test owns the clock */
    last_wait_timeout = timeout_ms;
    if (nsocks == 0)
        return 0;
    for (k = 0; k < nsocks && n < max; k++) {
        int i = (int)((cursor + (unsigned)k) % (unsigned)nsocks);
        unsigned r = readiness(FP_BASE + i, &socks[i]);
        if (r) {
            ev[n].ud = socks[i].ud;
            ev[n].events = r;
            n++;
            if (n == max)
                cursor = (unsigned)(i + 1);
        }
    }
    return n;
}

int
fp_wait_count(void)
{
    return nwaits;
}

int
fp_wait_timeout(void)
{
    return last_wait_timeout;
}

uint64_t
rp_port_now_ms(void)
{
    return now_ms;
}

static int64_t wall_s = 1700000000; /* 2023-11-14T22:13:20Z */

void
fp_set_time(int64_t s)
{
    wall_s = s;
}

int64_t
rp_port_time(void)
{
    return wall_s + (int64_t)(now_ms / 1000u);
}

long
rp_port_sendv(rp_sock s, const rp_iov *iov, int n)
{
    long total = 0, r;
    int i;
    for (i = 0; i < n; i++) {
        if (iov[i].n == 0)
            continue;
        r = rp_port_send(s, iov[i].p, iov[i].n);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((size_t)r < iov[i].n)
            break;
    }
    return total;
}

int
rp_port_random(void *buf, size_t n)
{
    unsigned char *b = (unsigned char *)buf;
    size_t i;
    for (i = 0; i < n; i++) {
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 7;
        rnd_state ^= rnd_state << 17;
        b[i] = (unsigned char)(rnd_state >> 24);
    }
    return RP_OK;
}

int
rp_port_blob(const char *name, const void **data, size_t *len)
{
    int i;
    for (i = 0; i < nblobs; i++)
        if (strcmp(blobs[i].name, name) == 0) {
            *data = blobs[i].data;
            *len = blobs[i].len;
            return RP_OK;
        }
    return RP_ENOTFOUND;
}

void
rp_port_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    memcpy(log_lines[log_count % FP_LOG_KEEP], line, sizeof line);
    log_count++;
    if (!log_quiet)
        printf("# log: %s: %s\n", level >= 0 && level <= 3 ? names[level] : "?", line);
}

#if RP_ENABLE_ASSERT
void
rp_port_assert(const char *file, int line, const char *expr)
{
    printf("not ok - %s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stdout);
    abort();
}
#endif

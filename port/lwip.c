/*
 * lwip.c -- the rproxy port contract (rproxy.h) on lwIP's raw TCP API.
 *
 * SPDX-License-Identifier: MIT
 *
 * NO_SYS=1: lwIP's callbacks run from the board's main loop (netif input,
 * sys_check_timeouts) and only record state in the socket's slot (a socket
 * is an index into a static table); rproxy reads it from the same loop, so
 * nothing locks.  Received pbufs wait in their slot until rproxy copies them
 * out; only then does tcp_recved reopen the window, so a slow reader pushes
 * back.  After tcp_err the pcb is gone: the slot keeps only the error.
 * Connections lwIP accepted before rproxy did wait in a per-listener
 * backlog.  Readiness is computed, level-triggered.  No proxy logic here.
 *
 * [1] slots  [2] addresses and errors  [3] lwIP callbacks  [4] sockets
 * [5] readiness  [6] clock, randomness, blobs, log, board API
 * [7] names (rp_port_resolve: lwIP's dns_gethostbyname)
 */
#include "rproxy.h"
#include "lwip.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lwip/sys.h"
#include "lwip/tcp.h" /* and opt.h, ip_addr.h, pbuf.h */

#if !LWIP_TCP || !LWIP_CALLBACK_API
#error "port/lwip.c needs LWIP_TCP=1 and the callback API (LWIP_EVENT_API=0)"
#endif
#if TCP_WND > 0xFFFF
#error "port/lwip.c keeps unread data in one pbuf chain: TCP_WND must be <= 0xFFFF"
#endif
#define LW_POOL_BYTES \
    (LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf)) + LWIP_MEM_ALIGN_SIZE(PBUF_POOL_BUFSIZE))

/* ==== [1] Slots ====
 * A slot is a listener or a connection.  pcb is NULL before connect, after
 * tcp_err (lwIP freed it) and after close.  A listener chains its accepted,
 * not yet handed over connections through `next` (indexes, -1 = none). */

enum { LW_FREE = 0, LW_LISTEN = 1, LW_CONN = 2 };

typedef struct lw_sock {
    struct tcp_pcb *pcb;
    struct pbuf *rx;       /* received, unread; one chain */
    void *ud;              /* reported with events (rp_port_watch) */
    rp_addr peer;          /* remote address, kept after the pcb is gone */
    int16_t next;          /* listener's queue link */
    int16_t head, tail;    /* listener: queue of accepted connections */
    uint8_t kind;
    uint8_t interest;      /* RP_EV_READ | RP_EV_WRITE */
    uint8_t connected;     /* handshake done */
    uint8_t fin;           /* peer sent FIN */
    uint8_t wfull;         /* tcp_write said ERR_MEM: wait for sent/poll */
    uint8_t shut;          /* rp_port_shutdown asked, FIN not yet queued */
    uint8_t npend, backlog; /* listener: queued / allowed */
    err_t err;             /* from tcp_err; ERR_OK while none */
} lw_sock;

static lw_sock lw_socks[RP_LWIP_MAX_SOCKS];
#define LW_INDEX(s) ((int)((s) - lw_socks))
static int lw_top;         /* slots at or above this were never used */
static int lw_turn;        /* where the next readiness scan starts */
static rp_lwip_hooks lw_hooks;
static const rp_lwip_blob *lw_blobs;
static size_t lw_nblobs;
static rp_lwip_stats lw_stats;

static lw_sock *
lw_alloc(uint8_t kind)
{
    lw_sock *s = lw_socks;

    while (s->kind != LW_FREE)
        if (++s == lw_socks + RP_LWIP_MAX_SOCKS)
            return NULL;
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->next = s->head = s->tail = -1;
    if (LW_INDEX(s) >= lw_top)
        lw_top = LW_INDEX(s) + 1;
    if (++lw_stats.socks_used > lw_stats.socks_peak)
        lw_stats.socks_peak = lw_stats.socks_used;
    return s;
}

static void
lw_release(lw_sock *s)
{
    s->kind = LW_FREE; /* lw_alloc clears the rest */
    lw_stats.socks_used--;
}

static lw_sock *
lw_get(rp_sock sk)
{
    return sk >= 0 && sk < RP_LWIP_MAX_SOCKS && lw_socks[sk].kind != LW_FREE ? &lw_socks[sk] : NULL;
}

/* ==== [2] Addresses and errors ==== */

/* rp_addr -> ip_addr_t: 0, or -1 for a family lwIP was built without. */
static int
lw_ip(const rp_addr *a, ip_addr_t *ip)
{
    if (a->family == 4) {
        uint32_t v;
        memcpy(&v, a->ip, 4); /* already in network order */
        ip_addr_set_ip4_u32_val(*ip, v);
        return 0;
    }
#if LWIP_IPV6
    if (a->family == 6) {
        uint32_t w[4];
        memcpy(w, a->ip, 16);
        IP_ADDR6(ip, w[0], w[1], w[2], w[3]);
        return 0;
    }
#endif
    return -1;
}

static void
lw_addr(const ip_addr_t *ip, uint16_t port, rp_addr *a)
{
    memset(a, 0, sizeof *a);
    a->port = port;
#if LWIP_IPV6
    if (IP_IS_V6(ip)) {
        a->family = 6;
        memcpy(a->ip, ip_2_ip6(ip)->addr, 16);
        return;
    }
#endif
    a->family = 4;
    memcpy(a->ip, &ip_2_ip4(ip)->addr, 4);
}

/* tcp_err's code -> rp_err for I/O (ABRT: lwIP gave up retransmitting). */
static int
lw_io_err(err_t e)
{
    return e == ERR_RST ? RP_ERESET : e == ERR_CLSD ? RP_ECLOSED
           : e == ERR_ABRT ? RP_ETIMEDOUT : RP_EIO;
}

/* ==== [3] lwIP callbacks ====
 * They only record state.  arg is the slot (tcp_arg); close sets every
 * callback back to NULL first, so none of them can reach a freed slot. */

/* Data waits in s->rx until read.  A segment that fits in the free end of
 * the chain's last pbuf, a pool pbuf (its struct, then PBUF_POOL_BUFSIZE),
 * is copied there: tiny segments would each pin a pool pbuf, and one unread
 * window of them could take them all (every frame dropped, ACKs too). */
static err_t
lw_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    lw_sock *s = (lw_sock *)arg;
    struct pbuf *t = s->rx;

    (void)pcb;
    (void)err; /* always ERR_OK in lwIP 2.x */
    if (!p || !t) { /* FIN, or data for an empty queue */
        s->fin |= !p;
        s->rx = t ? t : p;
        return ERR_OK;
    }
    if ((uint32_t)t->tot_len + p->tot_len > 0xFFFFu)
        return ERR_MEM; /* lwIP keeps it and offers it again later */
    while (t->next)
        t = t->next;
    if (!pbuf_match_allocsrc(t, PBUF_POOL) || t->ref != 1
        || (u8_t *)t->payload + t->len + p->tot_len > (u8_t *)t + LW_POOL_BYTES) {
        pbuf_cat(s->rx, p);
        return ERR_OK;
    }
    pbuf_copy_partial(p, (u8_t *)t->payload + t->len, p->tot_len, 0);
    t->len = (u16_t)(t->len + p->tot_len);
    for (t = s->rx; t; t = t->next)
        t->tot_len = (u16_t)(t->tot_len + p->tot_len);
    pbuf_free(p);
    return ERR_OK;
}

/* Data was acked, or a retry (lw_poll_cb every second, rp_port_shutdown): a
 * write that met ERR_MEM may go again, a pending shutdown is tried. */
static err_t
lw_sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    lw_sock *s = (lw_sock *)arg;

    (void)pcb;
    (void)len;
    s->wfull = 0;
    if (s->shut && s->pcb && tcp_shutdown(s->pcb, 0, 1) != ERR_MEM)
        s->shut = 0;
    return ERR_OK;
}

static err_t
lw_poll_cb(void *arg, struct tcp_pcb *pcb)
{
    return lw_sent_cb(arg, pcb, 0);
}

/* The pcb is already freed: forget it, keep why. */
static void
lw_err_cb(void *arg, err_t err)
{
    lw_sock *s = (lw_sock *)arg;

    s->pcb = NULL;
    s->err = err != ERR_OK ? err : ERR_ABRT;
    lw_stats.resets++;
}

static err_t
lw_connected_cb(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)pcb;
    (void)err; /* always ERR_OK: failures come through lw_err_cb */
    ((lw_sock *)arg)->connected = 1;
    return ERR_OK;
}

/* Give pcb to slot s (its callbacks report there), or with s NULL take
 * every callback away before the pcb is closed or aborted. */
static void
lw_hook(struct tcp_pcb *pcb, lw_sock *s)
{
    tcp_arg(pcb, s);
    tcp_recv(pcb, s ? lw_recv_cb : NULL);
    tcp_sent(pcb, s ? lw_sent_cb : NULL);
    tcp_err(pcb, s ? lw_err_cb : NULL);
    tcp_poll(pcb, s ? lw_poll_cb : NULL, 2); /* 2 * 500 ms */
    tcp_nagle_disable(pcb);                  /* like TCP_NODELAY on the host */
    if (s)
        s->pcb = pcb;
}

/* A connection completed its handshake on listener arg (lwIP's listen
 * backlog counts it until rproxy takes it: more SYNs are dropped, the peer
 * retries), or lwIP had no pcb for a SYN (npcb NULL).  Errors abort (RST). */
static err_t
lw_accept_cb(void *arg, struct tcp_pcb *npcb, err_t err)
{
    lw_sock *l = (lw_sock *)arg, *s;

    if (npcb)
        tcp_arg(npcb, NULL); /* it inherited the listener's arg */
    if (!npcb || err != ERR_OK || !l || l->kind != LW_LISTEN || l->npend >= l->backlog
        || !(s = lw_alloc(LW_CONN))) {
        lw_stats.accept_refused++; /* no pcb (the SYN is dropped), backlog or slots full */
        return ERR_MEM;
    }
    s->connected = 1;
    lw_addr(&npcb->remote_ip, npcb->remote_port, &s->peer);
    lw_hook(npcb, s);
    tcp_backlog_delayed(npcb);
    if (l->tail >= 0)
        lw_socks[l->tail].next = (int16_t)LW_INDEX(s);
    else
        l->head = (int16_t)LW_INDEX(s);
    l->tail = (int16_t)LW_INDEX(s);
    l->npend++;
    return ERR_OK;
}

/* ==== [4] Sockets ==== */

rp_sock
rp_port_listen(const rp_addr *a, int backlog)
{
    lw_sock *s = lw_alloc(LW_LISTEN);
    struct tcp_pcb *pcb = NULL;
    ip_addr_t ip;
    err_t e = ERR_MEM;
    u8_t n = (u8_t)(backlog < RP_LWIP_BACKLOG ? backlog : RP_LWIP_BACKLOG);

    if (!s || lw_ip(a, &ip) < 0 || !(pcb = tcp_new_ip_type(IP_GET_TYPE(&ip))))
        goto fail; /* no slot, no pcb, or a family lwIP was built without */
    ip_set_option(pcb, SOF_REUSEADDR);
    if ((e = tcp_bind(pcb, &ip, a->port)) != ERR_OK
        || !(s->pcb = tcp_listen_with_backlog_and_err(pcb, n, &e)))
        goto fail; /* (tcp_listen freed pcb only when it succeeded) */
    s->backlog = n;
    tcp_arg(s->pcb, s);
    tcp_accept(s->pcb, lw_accept_cb);
    return LW_INDEX(s);
fail:
    if (pcb)
        tcp_close(pcb); /* not listening yet: frees it */
    if (s)
        lw_release(s);
    rp_port_log(RP_LOG_ERROR, "listen port %u: lwIP error %d", (unsigned)a->port, (int)e);
    return RP_EADDR;
}

rp_sock
rp_port_accept(rp_sock l, rp_addr *peer)
{
    lw_sock *ls = lw_get(l), *s;

    if (!ls || ls->kind != LW_LISTEN || ls->head < 0)
        return RP_EAGAIN;
    s = &lw_socks[ls->head];
    if ((ls->head = s->next) < 0)
        ls->tail = -1;
    ls->npend--;
    if (s->pcb)
        tcp_backlog_accepted(s->pcb); /* lwIP may take the next SYN */
    *peer = s->peer; /* even if it died meanwhile: rproxy meets the error */
    return LW_INDEX(s);
}

rp_sock
rp_port_connect(const rp_addr *a)
{
    lw_sock *s;
    struct tcp_pcb *pcb;
    ip_addr_t ip;
    err_t e;

    if (lw_ip(a, &ip) < 0)
        return RP_EREFUSED;
    if (!(s = lw_alloc(LW_CONN)) || !(pcb = tcp_new_ip_type(IP_GET_TYPE(&ip)))) {
        if (s)
            lw_release(s);
        return RP_ENOMEM; /* no slot, or no pcb (MEMP_NUM_TCP_PCB) */
    }
    s->peer = *a;
    lw_hook(pcb, s);
    if ((e = tcp_connect(pcb, &ip, a->port, lw_connected_cb)) != ERR_OK) {
        lw_hook(pcb, NULL);
        tcp_close(pcb); /* still CLOSED: frees it */
        lw_release(s);
        return e == ERR_MEM || e == ERR_BUF || e == ERR_USE ? RP_ENOMEM : RP_EREFUSED;
    }
    return LW_INDEX(s);
}

int
rp_port_connect_result(rp_sock sk)
{
    lw_sock *s = lw_get(sk);

    if (!s || s->connected) /* connected even if it died since: I/O reports that */
        return s ? RP_OK : RP_EIO;
    if (s->err != ERR_OK)
        return s->err == ERR_RST ? RP_EREFUSED : s->err == ERR_ABRT ? RP_ETIMEDOUT : RP_EIO;
    return s->pcb ? RP_EAGAIN : RP_EIO;
}

/* Gather send: tcp_write per piece within tcp_sndbuf, copied (rproxy's
 * buffers move on), MORE (no PSH) on all but the last write, which is the
 * last piece or the first that does not fit whole; then one tcp_output. */
long
rp_port_sendv(rp_sock sk, const rp_iov *iov, int n)
{
    lw_sock *s = lw_get(sk);
    size_t room, k;
    long done = 0;
    err_t e = ERR_OK;

    if (!s || s->kind != LW_CONN)
        return RP_EIO;
    if (!s->pcb)
        return s->err != ERR_OK ? lw_io_err(s->err) : RP_EIO;
    if (!s->connected || s->wfull || (room = tcp_sndbuf(s->pcb)) == 0)
        return RP_EAGAIN;
    room = room > 0xFFFF ? 0xFFFF : room; /* tcp_write takes u16_t lengths */
    while (n > 0 && iov[n - 1].n == 0)
        n--; /* drop empty pieces at the end: iov[n - 1] has data */
    for (; n > 0 && room > 0 && e == ERR_OK; iov++, n--) {
        u8_t f = TCP_WRITE_FLAG_COPY | (iov->n < room && n > 1 ? TCP_WRITE_FLAG_MORE : 0);
        k = iov->n < room ? iov->n : room; /* short: room is 0 after it, the loop ends */
        if (k > 0 && (e = tcp_write(s->pcb, iov->p, (u16_t)k, f)) == ERR_OK)
            done += (long)k, room -= k;
    }
    if (e == ERR_MEM) { /* segment queue or memory full: wait for an ACK */
        s->wfull = 1;
        lw_stats.write_mem++;
    } else if (e != ERR_OK && done == 0)
        return e == ERR_CONN ? RP_ECLOSED : RP_EIO;
    tcp_output(s->pcb);
    return done > 0 ? done : e == ERR_MEM ? RP_EAGAIN : 0;
}

long
rp_port_send(rp_sock sk, const void *buf, size_t n)
{
    rp_iov v = {buf, n};
    return rp_port_sendv(sk, &v, 1);
}

long
rp_port_recv(rp_sock sk, void *buf, size_t n)
{
    lw_sock *s = lw_get(sk);

    if (!s || s->kind != LW_CONN)
        return RP_EIO;
    if (s->rx && n > 0) {
        u16_t take = (u16_t)(n < s->rx->tot_len ? n : s->rx->tot_len);
        pbuf_copy_partial(s->rx, buf, take, 0);
        s->rx = pbuf_free_header(s->rx, take);
        if (s->pcb)
            tcp_recved(s->pcb, take); /* only now the window reopens */
        return (long)take;
    }
    return s->fin ? 0 : s->err != ERR_OK ? lw_io_err(s->err) : RP_EAGAIN;
}

void
rp_port_shutdown(rp_sock sk)
{
    lw_sock *s = lw_get(sk);

    if (s && s->kind == LW_CONN && s->pcb && s->connected) {
        s->shut = 1;
        lw_sent_cb(s, s->pcb, 0); /* ERR_MEM: retried from lw_sent_cb/lw_poll_cb */
    }
}

void
rp_port_close(rp_sock sk)
{
    lw_sock *s = lw_get(sk), *c;

    if (!s)
        return;
    while (s->kind == LW_LISTEN && s->head >= 0) { /* connections rproxy never took: reset */
        c = &lw_socks[s->head];
        s->head = c->next;
        if (c->pcb) {
            lw_hook(c->pcb, NULL);
            tcp_abort(c->pcb);
        }
        if (c->rx)
            pbuf_free(c->rx);
        lw_release(c);
    }
    if (s->rx && s->pcb) /* unread data: give the window back, then FIN (not RST) */
        tcp_recved(s->pcb, s->rx->tot_len);
    if (s->rx)
        pbuf_free(s->rx);
    if (s->pcb && s->kind == LW_LISTEN) {
        tcp_close(s->pcb); /* a listener always closes, calling nothing back */
    } else if (s->pcb) { /* lwIP finishes sending, then frees it; no memory: RST */
        lw_hook(s->pcb, NULL);
        if (tcp_close(s->pcb) != ERR_OK) {
            lw_stats.close_aborts++;
            tcp_abort(s->pcb);
        }
    }
    lw_release(s);
}

/* ==== [5] Readiness ====
 * Computed from the slot each time (level-triggered): a listener is
 * readable with a queued connection; a connection is readable with unread
 * data or a FIN, writable once connected with send space; an error with
 * nothing left to read is ERROR|READ|WRITE (connect failures included). */

static unsigned
lw_ready(const lw_sock *s)
{
    unsigned ev = 0;

    if (s->kind == LW_LISTEN)
        return s->head >= 0 ? RP_EV_READ : 0u;
    if (s->rx || s->fin)
        ev |= RP_EV_READ;
    if (s->pcb && s->connected && !s->wfull && tcp_sndbuf(s->pcb) > 0
        && tcp_sndqueuelen(s->pcb) < TCP_SND_QUEUELEN)
        ev |= RP_EV_WRITE;
    if (!s->pcb && !s->rx)
        ev |= RP_EV_ERROR | RP_EV_READ | RP_EV_WRITE;
    return ev;
}

static int
lw_scan(rp_event *ev, int max)
{
    int i, k = 0, n = lw_top;

    for (i = 0; i < n && k < max; i++) {
        lw_sock *s = &lw_socks[(lw_turn + i) % n];
        unsigned r;
        if (s->kind == LW_FREE || !s->interest || !s->ud)
            continue;
        r = lw_ready(s);
        r = (r & RP_EV_ERROR) ? r : (r & s->interest);
        if (!r)
            continue;
        ev[k].ud = s->ud;
        ev[k++].events = r;
    }
    lw_turn = n ? (lw_turn + i) % n : 0;
    return k;
}

int
rp_port_watch(rp_sock sk, unsigned events, void *ud)
{
    lw_sock *s = lw_get(sk);

    if (!s)
        return RP_EINVAL;
    s->interest = (uint8_t)(events & (RP_EV_READ | RP_EV_WRITE));
    s->ud = ud;
    return RP_OK;
}

int
rp_port_wait(rp_event *ev, int max, int timeout_ms)
{
    int n;

    if (max < 1)
        return RP_EINVAL;
    if ((n = lw_scan(ev, max)) > 0 || timeout_ms == 0 || !lw_hooks.idle)
        return n;
    lw_hooks.idle(timeout_ms); /* drives lwIP; callbacks fill the slots */
    return lw_scan(ev, max);
}

/* ==== [6] Clock, randomness, blobs, log, board API ==== */

/* sys_now() is 32-bit milliseconds and wraps after 49 days: extend it. */
uint64_t
rp_port_now_ms(void)
{
    static uint32_t last;
    static uint64_t high;
    uint32_t now = sys_now();

    high += now < last ? (uint64_t)1 << 32 : 0;
    last = now;
    return high | now;
}

/* No wall clock (0).  A board with an RTC defines its own rp_port_time(),
 * which replaces this weak one at link time. */
__attribute__((weak)) int64_t
rp_port_time(void)
{
    return 0;
}

int
rp_port_random(void *buf, size_t n)
{
    return lw_hooks.random ? lw_hooks.random(buf, n) : RP_EIO;
}

int
rp_port_blob(const char *name, const void **data, size_t *len)
{
    size_t i;

    for (i = 0; i < lw_nblobs; i++)
        if (strcmp(lw_blobs[i].name, name) == 0) {
            *data = lw_blobs[i].data;
            *len = lw_blobs[i].len;
            return RP_OK;
        }
    return RP_ENOTFOUND;
}

void
rp_port_log(int level, const char *fmt, ...)
{
    char line[160];
    va_list ap;

    if (!lw_hooks.log)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lw_hooks.log(level, line);
}

#if RP_ENABLE_ASSERT
void
rp_port_assert(const char *file, int line, const char *expr)
{
    rp_port_log(RP_LOG_ERROR, "%s:%d: assertion failed: %s", file, line, expr);
    LWIP_PLATFORM_ASSERT(expr); /* the board's stop; then never return */
    for (;;)
        ;
}
#endif

void
rp_lwip_init(const rp_lwip_hooks *hooks, const rp_lwip_blob *blobs, size_t nblobs)
{
    if (hooks)
        lw_hooks = *hooks;
    lw_blobs = blobs;
    lw_nblobs = blobs ? nblobs : 0;
}

const rp_lwip_stats *
rp_lwip_stats_get(void)
{
    return &lw_stats;
}

/* ==== [7] Names ====
 * rp_port_resolve asks lwIP's asynchronous resolver (LWIP_DNS): a cached
 * answer is there at once, else lwIP's callback fills the slot's entry from
 * the board's loop (NO_SYS: same thread, nothing locks) and rproxy reads it
 * after its next rp_port_wait.  `.local` names go to mDNS where lwIP has
 * LWIP_DNS_SUPPORT_MDNS_QUERIES.  lwIP parses the DNS messages (its dns.c:
 * a malformed, truncated or empty answer is a failed lookup); IPv6 answers
 * are asked for too when lwIP and rproxy both have IPv6.  Without LWIP_DNS
 * the port has no resolver: RP_ENOTIMPL, and rproxy asks no more. */
#if RP_ENABLE_DNS
#if LWIP_DNS
#include "lwip/dns.h"

enum { LWD_FREE, LWD_WAIT, LWD_DONE };
static struct {
    uint8_t state;
    int rc;
    ip_addr_t ip;
} lw_dns[RP_MAX_DEVICES];

static void
lw_dns_found(const char *name, const ip_addr_t *ip, void *arg)
{
    int slot = (int)(intptr_t)arg;
    (void)name;
    if (slot < 0 || slot >= RP_MAX_DEVICES || lw_dns[slot].state != LWD_WAIT)
        return;
    lw_dns[slot].rc = ip ? RP_OK : RP_ENOTFOUND;
    if (ip)
        ip_addr_copy(lw_dns[slot].ip, *ip);
    lw_dns[slot].state = LWD_DONE;
}

int
rp_port_resolve(const char *name, int slot)
{
    err_t e;
    if (slot < 0 || slot >= RP_MAX_DEVICES || strlen(name) > DNS_MAX_NAME_LENGTH)
        return RP_EINVAL;
    if (lw_dns[slot].state != LWD_FREE)
        return RP_ENOMEM;
    lw_dns[slot].state = LWD_WAIT;
#if LWIP_IPV4 && LWIP_IPV6 && RP_ENABLE_IPV6
    e = dns_gethostbyname_addrtype(name, &lw_dns[slot].ip, lw_dns_found, (void *)(intptr_t)slot,
                                   LWIP_DNS_ADDRTYPE_IPV4_IPV6);
#else
    e = dns_gethostbyname(name, &lw_dns[slot].ip, lw_dns_found, (void *)(intptr_t)slot);
#endif
    if (e == ERR_OK) { /* cached: the answer is there already */
        lw_dns[slot].rc = RP_OK;
        lw_dns[slot].state = LWD_DONE;
    } else if (e != ERR_INPROGRESS) {
        lw_dns[slot].state = LWD_FREE;
        return e == ERR_MEM ? RP_ENOMEM : RP_EINVAL;
    }
    return RP_OK;
}

int
rp_port_resolve_result(int slot, rp_addr *out)
{
    int rc;
    if (slot < 0 || slot >= RP_MAX_DEVICES || lw_dns[slot].state == LWD_FREE)
        return RP_EINVAL;
    if (lw_dns[slot].state == LWD_WAIT)
        return RP_EAGAIN;
    lw_dns[slot].state = LWD_FREE;
    if ((rc = lw_dns[slot].rc) == RP_OK) {
        uint16_t port = out->port;
        lw_addr(&lw_dns[slot].ip, port, out);
        if (out->family != 4 && !(RP_ENABLE_IPV6 && out->family == 6))
            rc = RP_ENOTFOUND;
    }
    return rc;
}
#else /* !LWIP_DNS */
int
rp_port_resolve(const char *name, int slot)
{
    (void)name, (void)slot;
    return RP_ENOTIMPL; /* lwIP built without LWIP_DNS: no resolver */
}

int
rp_port_resolve_result(int slot, rp_addr *out)
{
    (void)slot, (void)out;
    return RP_EINVAL;
}
#endif
#endif

/* ==== [9] Connections: the state machine, slots, interest, timers, closing ====
 * Client and device connections share one struct (rp_conn, in rproxy.h)
 * and live in two fixed arrays with free lists.  Interest (read/write) is
 * computed from buffer levels after every turn and handed to the port only
 * when it changed.  Each connection has at most one timer, whose kind
 * follows from the state (timer_kind).  Every state change goes through
 * conn_state; every report and every timer is dispatched here, by state
 * (conn_event, conn_timeout, client_step).
 *
 * The states.  "Socket flags" are F_EOF F_DEAD F_WBLOCK F_WSHUT F_PROGRESS
 * F_HSDONE F_TLSBYE F_TLSPART (any state but CS_FREE); the exchange and
 * request flags (F_EXCHANGE) are a client's; F_KEEP F_REUSED F_GOT a busy
 * device's.
 *
 *   CS_FREE     in a free list.  No socket, link, timer, buffer, TLS slot.
 *   CS_HEAD     client: waits for a request head.  Timer: T_HANDSHAKE while
 *               its TLS handshake is unfinished, T_HEAD while a head is
 *               partly in (or none came yet), T_IDLE between requests.
 *               Owns `in` (the head so far) and `out` (the last response,
 *               draining).  Flags: socket, F_SERVED; no exchange flag, no
 *               link, nothing held.
 *   CS_FWD      client: an exchange with a device (c->link, DS_CONNECTING
 *               or DS_BUSY): request body out, response in.  Timer: T_CLIENT
 *               while the client must read or send.  Owns `in` (the held
 *               head while HELD, then body) and `out` (response).  Flags:
 *               socket, exchange, request.
 *   CS_TUNNEL   client: after a 101, raw bytes both ways with its DS_BUSY
 *               device (mode M_TUNNEL).  Timer: T_TUNNEL (idle).  Owns `in`
 *               and `out`.  Nothing held.
 *   CS_CLOSING  client: `out` drains, then FIN (after close_notify on TLS),
 *               then the peer's FIN; what arrives is discarded.  Timer:
 *               T_CLIENT while `out` drains, then T_LINGER.  No link, no
 *               F_KEEP, nothing held.
 *   CS_LOCAL    client: the status page, item by item as `out` has room
 *               (c->item).  Timer: T_CLIENT while `out` is blocked.  No link.
 *   CS_CACHE    client: a hit: the head in `out`, the body from the arena
 *               (cblk/coff/cleft; centry pinned).  Timer: T_CLIENT while
 *               blocked.  No link; F_RESP_HEAD set.
 *   CS_CWAIT    client: a miss waiting for another request's fill of the
 *               same key (CF_COLLAPSED).  Timer: T_CWAIT (lock_timeout; a
 *               finished fill sets it due).  Owns `in` (the held head).
 *   CS_QUEUE    client: waits in its pool's queue (RP_ENABLE_LIMITS) for a
 *               device under max_conns; linked through `next`.  Timer:
 *               T_QUEUE (queue_timeout from the head; queue_kick sets the
 *               oldest's due).  Owns `in` (the held head).  No link.
 *   DS_CONNECTING device: its TCP connect (c->link waits in CS_FWD).  Timer:
 *               T_CONNECT.  Owns `out` (the request head).
 *   DS_BUSY     device: serving its client (CS_FWD or CS_TUNNEL).  Timer:
 *               T_DEVICE while a response is due and the client keeps up.
 *               Owns `in` (response) and `out` (request).
 *   DS_IDLE     device: pooled in p->idle[device] for reuse; any report means
 *               it closed or babbled.  Timer: T_DIDLE.  No link, no buffer.
 *   DS_PCONNECT device: a health probe's TCP connect (dv->probe).  Timer:
 *               T_PROBE.  Owns `out` (the probe request).  No link.
 *   DS_PROBE    device: the connected probe, sending its request and
 *               waiting for the status line.  Timer: T_PROBE.  Owns `out`
 *               and `in`.  No link.
 *
 * Changes (the `next_ok` table): FREE -> HEAD | CONNECTING; HEAD -> FWD |
 * LOCAL; FWD -> CACHE | CWAIT | TUNNEL | QUEUE; CWAIT | QUEUE -> FWD; FWD | LOCAL | CACHE ->
 * HEAD (keep-alive); any client state -> CLOSING; CONNECTING -> BUSY |
 * PCONNECT; PCONNECT -> PROBE; BUSY <-> IDLE; any -> FREE.  RP_ENABLE_ASSERT checks each change and, when
 * a turn leaves a connection at rest, the invariants above (conn_check).
 */
#include "rp_int.h"



/* A recv of up to `want` bytes returned n: readiness, progress, counters,
 * FIN and errors.  Returns 1 when something happened (not RP_EAGAIN). */
int
recv_done(rp_proxy *p, rp_conn *c, long n, size_t want)
{
    if (n > 0) {
        c->flags |= F_PROGRESS;
        TURN_BYTES(p, n);
        if ((size_t)n < want)
            c->ready &= ~RP_EV_READ;
        if (c->kind == K_CLIENT)
            p->stats.bytes_in += (uint64_t)n;
        return 1;
    }
    c->ready &= ~RP_EV_READ;
    if (n == RP_EAGAIN)
        return 0;
    if (n < 0) {
        c->flags |= F_DEAD;
        if (!c->err)
            c->err = (int16_t)n;
    }
    c->flags |= F_EOF; /* for TLS: FIN without close_notify */
    return 1;
}

/* A send of len bytes returned n: a short send means the socket is full.
 * Returns 1 when something happened (not RP_EAGAIN). */
int
send_done(rp_proxy *p, rp_conn *c, long n, size_t len)
{
    if (n == RP_EAGAIN || (n >= 0 && (size_t)n < len)) {
        c->flags |= F_WBLOCK;
        c->ready &= ~RP_EV_WRITE;
    } else {
        c->flags &= ~F_WBLOCK;
    }
    if (n == RP_EAGAIN)
        return 0;
    if (n < 0) {
        c->flags |= F_DEAD | F_EOF;
        if (!c->err)
            c->err = (int16_t)n;
        return 1;
    }
    c->flags |= F_PROGRESS;
    TURN_BYTES(p, n);
    if (c->kind == K_CLIENT)
        p->stats.bytes_out += (uint64_t)n;
    return 1;
}

#if RP_ENABLE_STREAM_TIMEOUTS
/* A route's own device_timeout= / stream_idle= for a device's T_DEVICE
 * (head wait, then body silence once the head went out) or a client's
 * T_TUNNEL; else timeout tunnel= for a tunnel; 0: the config's.
 * stream_idle=0 (none) is 2^32-1 ms, 49 days. */
static uint32_t
stream_ms(const rp_proxy *p, const rp_conn *x, int kind)
{
    const rp_conn *c = kind == T_TUNNEL ? x : x->link;
    const rp_route *r;
    if (!c || c->route == NO_ROUTE)
        return 0;
    r = &CFG(p)->routes[c->route];
    if (kind == T_DEVICE && !(c->flags & F_RESP_HEAD))
        return r->device_timeout;
    if (r->stream_idle)
        return r->stream_idle == 1 ? 0xffffffffu : r->stream_idle - 1;
    return kind == T_TUNNEL ? CFG(p)->t_tunnel : 0;
}
#endif

/* How long each kind of timer runs: a field of the config, but for the
 * probe's (its pool's) and lingering (a constant). */
static uint32_t
timer_ms(const rp_proxy *p, const rp_conn *x, int kind)
{
#define T_FIELD(f) (uint16_t)offsetof(rp_config, f)
    static const uint16_t field[] = {
        [T_HEAD] = T_FIELD(t_client_header), [T_IDLE] = T_FIELD(t_client_idle),
        [T_CLIENT] = T_FIELD(t_client_idle), [T_TUNNEL] = T_FIELD(t_client_idle),
        [T_CONNECT] = T_FIELD(t_connect), [T_DEVICE] = T_FIELD(t_device),
        [T_DIDLE] = T_FIELD(t_device_idle), [T_HANDSHAKE] = T_FIELD(t_handshake),
        [T_CWAIT] = T_FIELD(cache_lock_ms),
    };
#undef T_FIELD
    const rp_config *c = CFG(p);
    if (kind == T_PROBE)
        return c->pools[c->devices[x->device].pool].probe_timeout_ms;
    if (kind == T_LINGER)
        return RP_TIMEOUT_LINGER_MS;
#if RP_ENABLE_SHARE
    if (kind == T_SLINGER)
        return c->routes[p->streams[x->stream - 1].route].share_linger_ms;
#endif
#if RP_ENABLE_STREAM_TIMEOUTS
    if (kind == T_DEVICE || kind == T_TUNNEL) {
        uint32_t t = stream_ms(p, x, kind);
        if (t)
            return t;
    }
#endif
#if RP_ENABLE_LIMITS
    if (kind == T_QUEUE) { /* what is left of queue_timeout since the head */
        uint32_t t = c->pools[c->routes[x->route].pool].queue_timeout_ms;
        uint64_t waited = p->now - x->t_start;
        return waited < t ? (uint32_t)(t - waited) : 0;
    }
#endif
    return *(const uint32_t *)(const void *)((const char *)c + field[kind]);
}

/* Output waits on the peer: its socket would block, or its TLS engine holds
 * plaintext back (mid-handshake, renegotiation, records still queued). */
static int
out_blocked(const rp_conn *c)
{
    if (c->tls)
        return (c->flags & F_WBLOCK) || buf_len(&c->out) || HIT_LEFT(c);
    return (c->flags & F_WBLOCK) && (buf_len(&c->out) || HIT_LEFT(c));
}

static int
timer_kind(const rp_conn *c)
{
    const rp_conn *o = c->link;
    switch (c->state) {
    case CS_HEAD: /* a new connection owes its first head in client_header */
        if (c->tls && !(c->flags & (F_HSDONE | F_PROXYHDR)))
            return T_HANDSHAKE;
        return buf_len(&c->in) || !(c->flags & F_SERVED) ? T_HEAD : T_IDLE;
    case CS_FWD:
        if (out_blocked(c) || (!(c->flags & F_REQ_DONE) && o && o->state == DS_BUSY))
            return T_CLIENT;
        return T_NONE;
    case CS_TUNNEL: return T_TUNNEL;
    case CS_LOCAL: case CS_CACHE: return out_blocked(c) ? T_CLIENT : T_NONE;
    case CS_CWAIT: return T_CWAIT;
#if RP_ENABLE_LIMITS
    case CS_QUEUE: return T_QUEUE;
#endif
    case CS_CLOSING: return buf_len(&c->out) ? T_CLIENT : T_LINGER;
    case DS_PCONNECT: case DS_PROBE: return T_PROBE;
    case DS_CONNECTING: return T_CONNECT;
    case DS_IDLE: return T_DIDLE;
#if RP_ENABLE_SHARE
    case DS_STREAM: return (c->flags & F_SNOVIEW) ? T_SLINGER : T_DEVICE;
    case CS_STREAM: return out_blocked(c) ? T_CLIENT : T_NONE;
#endif
    case DS_BUSY:
        if (out_blocked(c))
            return T_DEVICE;
        if (o && o->state == CS_FWD && (o->flags & F_REQ_DONE) && /* (no F_RESP_DONE at rest) */
            !out_blocked(o) && buf_len(&c->in) < RP_BUF_SIZE)
            return T_DEVICE;
        return T_NONE;
    }
    return T_NONE;
}

static unsigned
conn_interest(const rp_conn *c)
{
    unsigned ev = 0;
    if (CONNECTING(c))
        return RP_EV_WRITE;
#if RP_ENABLE_TLS
    if (c->tls && !(c->flags & F_PROXYHDR))
        return tls_interest(c);
#endif
    if (out_blocked(c))
        ev |= RP_EV_WRITE;
    if (!(c->flags & (F_EOF | F_DEAD)) && buf_len(&c->in) < RP_BUF_SIZE)
        ev |= RP_EV_READ;
    return ev;
}

void
timer_hint(rp_proxy *p, uint64_t t)
{
    if (t && (!p->next_timer || t < p->next_timer))
        p->next_timer = t;
}

/* After a turn: arm the timer this state needs, tell the port the interest. */
void
conn_rearm(rp_proxy *p, rp_conn *c)
{
    int k = timer_kind(c);
    unsigned ev;
    int refresh = k == T_IDLE || k == T_CLIENT || k == T_TUNNEL || k == T_DEVICE;
    if (k != c->tkind || (refresh && (c->flags & F_PROGRESS))) {
        c->tkind = (uint8_t)k;
        /* +1: p->now is truncated to the ms; a timeout never fires early */
        c->deadline = k ? p->now + 1 + timer_ms(p, c, k) : 0;
        timer_hint(p, c->deadline);
    }
    c->flags &= ~F_PROGRESS;
    ev = conn_interest(c);
#if RP_TURN_MAX_BYTES
    if (c->flags & F_RESUME) /* writable at once (level-triggered): served again */
        ev |= RP_EV_WRITE;
#endif
    if (ev != c->watched) {
        c->watched = (uint8_t)ev;
        rp_port_watch(c->sock, ev, c);
    }
    conn_check(p, c);
}

/* After a turn: empty buffers go back, then conn_rearm. */
void
conn_settle(rp_proxy *p, rp_conn *c)
{
    buf_release(p, &c->in, 0);
    buf_release(p, &c->out, 0);
    conn_rearm(p, c);
}

rp_conn **
free_list(rp_proxy *p, int kind)
{
    return kind == K_CLIENT ? &p->free_clients : &p->free_devices;
}

rp_conn *
conn_alloc(rp_proxy *p, int kind)
{
    rp_conn **list = free_list(p, kind);
    rp_conn *c = *list;
    if (!c)
        return NULL;
    *list = c->next;
    c->next = NULL; /* sock -1, no link, no timer: as conn_free (or rp_init) left it */
    c->flags = 0;
    c->err = 0;
    c->ready = 0;
    c->watched = 0xff; /* force the first rp_port_watch */
    c->scan = 0;
#if RP_ENABLE_RELOAD
    c->cfs = (uint8_t)CUR_SLOT(p); /* the slot it is opened under */
#endif
    conn_state(c, kind == K_CLIENT ? CS_HEAD : DS_CONNECTING);
    return c;
}

static void
idle_remove(rp_proxy *p, rp_conn *d)
{
    rp_conn **pp = &p->idle[d->device];
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    d->next = NULL;
}

/* Close and return to the free list.  A client takes its device connection
 * with it (it is mid-exchange, so not reusable); a device just unlinks. */
void
conn_free(rp_proxy *p, rp_conn *c)
{
    int i;
    if (c->state == CS_FREE)
        return;
    if (c->kind == K_DEVICE) {
        rp_device *dev = DEVC(p, c);
        if (c->state == DS_IDLE) {
            idle_remove(p, c);
            dev->idle--;
        } else if (PROBING(c)) {
            dev->probe = NULL;
        } else {
            dev->active--;
        }
        if (c->link)
            c->link->link = NULL;
        queue_kick(p); /* room for a waiting request */
    } else if (c->link) {
        conn_free(p, c->link);
    }
#if RP_ENABLE_LIMITS
    else if (c->state == CS_QUEUE) {
        queue_unlink(p, c);
    }
#endif
    if (c->kind == K_CLIENT) {
        CLIENT_GONE(p, c);
        STREAM_LEAVE(p, c);
    }
#if RP_ENABLE_SHARE
    else if (c->stream) { /* a stream's device, closed from elsewhere (shutdown) */
        struct rp_stream *s = &p->streams[c->stream - 1];
        s->dev = NULL;
        if (s->state == SS_LIVE)
            s->state = SS_FAILED;
        c->stream = 0;
    }
#endif
    if (c->sock >= 0)
        rp_port_close(c->sock);
    buf_release(p, &c->in, 1);
    buf_release(p, &c->out, 1);
    tls_release(p, c);
#if RP_ENABLE_CACHE
    if (c->kind == K_CLIENT)
        cache_release(p, c);
#endif
    for (i = p->batch_at; i < p->batch_n; i++) /* drop reports still queued */
        if (p->batch[i].ud == c)
            p->batch[i].ud = NULL;
    c->sock = -1;
    conn_state(c, CS_FREE);
    c->link = NULL;
    c->head_len = 0;
    c->deadline = 0;
    c->tkind = T_NONE;
    c->next = *free_list(p, c->kind);
    *free_list(p, c->kind) = c;
    conn_check(p, c);
}


int
conn_read(rp_proxy *p, rp_conn *c)
{
    size_t room;
    long n;
#if RP_ENABLE_PROXY_PROTOCOL
    if (c->flags & F_PROXYHDR) /* raw, before any TLS */
        return proxy_read(p, c);
#endif
#if RP_ENABLE_TLS
    if (c->tls)
        return tls_pump(p, c);
#endif
    if (!(c->ready & RP_EV_READ) || (c->flags & (F_EOF | F_DEAD)))
        return 0;
    if ((room = buf_room(p, &c->in)) == 0)
        return 0;
    n = rp_port_recv(c->sock, c->in.d + c->in.w, room);
    if (n > 0)
        c->in.w += (uint32_t)n;
    return recv_done(p, c, n, room);
}


int
conn_write(rp_proxy *p, rp_conn *c)
{
    size_t len = buf_len(&c->out);
    long n;
    int hit = 0;
#if RP_ENABLE_TLS
    if (c->tls && !(c->flags & F_PROXYHDR))
        return tls_pump(p, c);
#endif
    if ((!len && !HIT_LEFT(c)) || CONNECTING(c) || (c->flags & F_DEAD))
        return 0;
    if ((c->flags & F_WBLOCK) && !(c->ready & RP_EV_WRITE))
        return 0;
#if RP_ENABLE_CACHE
    if (c->cleft)
        hit = 1, n = hit_send(p, c, &len); /* moves out.r and the reader */
    else
#endif
        n = rp_port_send(c->sock, c->out.d + c->out.r, len);
    if (n > 0 && !hit)
        c->out.r += (uint32_t)n;
    return send_done(p, c, n, len);
}

/* Stop serving c: flush what is queued, send FIN, drain the peer until it
 * closes or the linger timer fires (so an error reply is not lost to a
 * reset caused by unread request bytes -- nginx's lingering close). */
void
closing_begin(rp_proxy *p, rp_conn *c)
{
    STREAM_LEAVE(p, c); /* an opener whose exchange failed: the waiters go alone */
    if (c->link)
        conn_free(p, c->link);
#if RP_ENABLE_LIMITS
    if (c->state == CS_QUEUE)
        queue_unlink(p, c);
#endif
    c->flags &= ~F_KEEP;
    c->head_len = 0; /* no retry from here */
    if (c->flags & F_DEAD) {
        conn_free(p, c);
        return;
    }
    conn_state(c, CS_CLOSING);
}

static int
closing_step(rp_proxy *p, rp_conn *c)
{
    c->in.r = c->in.w; /* discard whatever still arrives */
    if (c->flags & F_DEAD) {
        conn_free(p, c);
        return 0;
    }
    if (buf_len(&c->out))
        return 0;
#if RP_ENABLE_TLS
    if (c->tls && !(c->flags & F_WSHUT)) { /* close_notify first, then FIN */
        if (!(c->flags & F_TLSBYE)) {
            c->flags |= F_TLSBYE;
            br_ssl_engine_close(&c->tls->u.sc.eng);
            return 1;
        }
        if (tls_state(c) & BR_SSL_SENDREC)
            return 0;
    }
#endif
    if (!(c->flags & F_WSHUT)) {
        rp_port_shutdown(c->sock);
        c->flags |= F_WSHUT;
        tls_release(p, c); /* close_notify and FIN are out: drain in the clear */
        return 1;
    }
    if (c->flags & F_EOF)
        conn_free(p, c);
    return 0;
}

/* ---- The dispatcher: every state, every report, every timer ---- */

#if RP_ENABLE_ASSERT
#define B(s) (1u << (s))
/* The changes the state table allows: bit `to` of next_ok[from]. */
static const uint32_t next_ok[RP_NSTATES] = {
    [CS_FREE] = B(CS_HEAD) | B(DS_CONNECTING),
    [CS_HEAD] = B(CS_FWD) | B(CS_LOCAL) | B(CS_CLOSING) | B(CS_FREE),
    [CS_FWD] = B(CS_CACHE) | B(CS_CWAIT) | B(CS_TUNNEL) | B(CS_HEAD) | B(CS_CLOSING) | B(CS_FREE)
#if RP_ENABLE_SHARE
               | B(CS_STREAM)
#endif
#if RP_ENABLE_LIMITS
               | B(CS_QUEUE),
    [CS_QUEUE] = B(CS_FWD) | B(CS_CLOSING) | B(CS_FREE),
#else
    ,
#endif
    [CS_TUNNEL] = B(CS_CLOSING) | B(CS_FREE),
    [CS_CLOSING] = B(CS_FREE),
    [CS_LOCAL] = B(CS_HEAD) | B(CS_CLOSING) | B(CS_FREE),
    [CS_CACHE] = B(CS_HEAD) | B(CS_CLOSING) | B(CS_FREE),
    [CS_CWAIT] = B(CS_FWD) | B(CS_CLOSING) | B(CS_FREE),
    [DS_CONNECTING] = B(DS_BUSY) | B(DS_PCONNECT) | B(CS_FREE),
    [DS_PCONNECT] = B(DS_PROBE) | B(CS_FREE),
    [DS_BUSY] = B(DS_IDLE) | B(CS_FREE)
#if RP_ENABLE_SHARE
                | B(DS_STREAM)
#endif
    ,
    [DS_IDLE] = B(DS_BUSY) | B(CS_FREE),
#if RP_ENABLE_SHARE
    [CS_STREAM] = B(CS_FWD) | B(CS_HEAD) | B(CS_CLOSING) | B(CS_FREE),
    [DS_STREAM] = B(CS_FREE),
#endif
    [DS_PROBE] = B(CS_FREE),
};
#undef B

void
conn_state(rp_conn *c, int s)
{
    RP_ASSERT(s >= 0 && s < RP_NSTATES && c->state < RP_NSTATES);
    RP_ASSERT(s == c->state || (next_ok[c->state] >> s) & 1);
    RP_ASSERT(s == CS_FREE || (c->kind == K_DEVICE) == (s >= DS_CONNECTING));
    c->state = (uint8_t)s;
}

/* What holds for a client in every state. */
static void
client_check(const rp_conn *c, uint32_t f)
{
    RP_ASSERT(!(f & (F_REUSED | F_GOT)));
    RP_ASSERT(!(f & (F_GET | F_HEAD)) || (f & F_SAFE));
    RP_ASSERT(!(f & F_SAFE) || (f & F_IDEMP));
    RP_ASSERT(!(f & (F_WSHUT | F_TLSBYE)) || c->state == CS_CLOSING);
    RP_ASSERT(!c->tries || (f & F_DEVFAIL));
    RP_ASSERT(!(f & F_RESP_DONE) || c->state == CS_CLOSING); /* exchange_end runs in its turn */
    RP_ASSERT(!HELD(c) || buf_len(&c->in) >= HELD(c));
    RP_ASSERT(!HELD(c) || c->state == CS_FWD || c->state == CS_CACHE || c->state == CS_CWAIT ||
              IS_QUEUED(c) || IS_STREAM(c));
}

/* The invariants of c's state (the table above), when a turn leaves it. */
void
conn_check(const rp_proxy *p, const rp_conn *c)
{
    const rp_conn *o = c->link;
    uint32_t f = c->flags;
    if (c->state == CS_FREE) {
        RP_ASSERT(c->sock < 0 && !o && !c->deadline && !c->tls && !c->in.d && !c->out.d);
        return;
    }
    RP_ASSERT(c->in.r <= c->in.w && c->in.w <= RP_BUF_SIZE && (c->in.d || !c->in.w));
    RP_ASSERT(c->out.r <= c->out.w && c->out.w <= RP_BUF_SIZE && (c->out.d || !c->out.w));
    RP_ASSERT(!o || (o->link == c && o->kind != c->kind && o->state != CS_FREE));
    RP_ASSERT(!c->deadline || c->tkind != T_NONE);
    RP_ASSERT(!(f & F_DEAD) || (f & F_EOF));
    RP_ASSERT(!c->next || c->state == DS_IDLE || IS_QUEUED(c)); /* an idle list or a queue */
    if (c->kind == K_CLIENT)
        client_check(c, f);
    else
        RP_ASSERT(c->device < CCFG(p, c)->ndevices && !(f & ((F_EXCHANGE & ~F_KEEP) | F_SERVED)));
    switch (c->state) {
    case CS_HEAD:
        RP_ASSERT(!o && !(f & F_EXCHANGE) && !c->tried);
        break;
    case CS_FWD:
        RP_ASSERT(o && (o->state == DS_CONNECTING || o->state == DS_BUSY));
        break;
    case CS_TUNNEL:
        RP_ASSERT(o && o->state == DS_BUSY && o->mode == M_TUNNEL && (f & F_RESP_HEAD));
        break;
    case CS_CLOSING:
        RP_ASSERT(!o && !(f & F_KEEP) && (!(f & F_WSHUT) || !buf_len(&c->out)));
        break;
    case CS_LOCAL:
        RP_ASSERT(!o && (f & F_RESP_HEAD) && (f & (F_GET | F_HEAD)));
        break;
#if RP_ENABLE_CACHE
    case CS_CACHE:
        RP_ASSERT(!o && c->centry && (f & F_RESP_HEAD));
        break;
    case CS_CWAIT:
        RP_ASSERT(!o && HELD(c) && (c->cflags & CF_COLLAPSED) && !(f & F_RESP_HEAD));
        break;
#endif
#if RP_ENABLE_LIMITS
    case CS_QUEUE:
        RP_ASSERT(!o && HELD(c) && !(f & F_RESP_HEAD) && c->tkind == T_QUEUE);
        break;
#endif
#if RP_ENABLE_SHARE
    case CS_STREAM:
        RP_ASSERT(!o && c->stream && (c->spos != SPOS_HEAD || HELD(c)));
        break;
    case DS_STREAM:
        RP_ASSERT(!o && c->stream);
        break;
#endif
    case DS_CONNECTING:
        RP_ASSERT(o && o->state == CS_FWD && !buf_len(&c->in) && !(f & (F_KEEP | F_REUSED | F_GOT)));
        break;
    case DS_PCONNECT: case DS_PROBE:
        RP_ASSERT(!o && DEVC(p, c)->probe == c && !(f & (F_KEEP | F_REUSED | F_GOT)));
        break;
    case DS_BUSY:
        RP_ASSERT(o && (o->state == CS_FWD || o->state == CS_TUNNEL));
        break;
    case DS_IDLE:
        RP_ASSERT(!o && !c->in.d && !c->out.d && !(f & ~(F_WBLOCK | F_HSDONE | F_TLSPART)));
        break;
    }
}
#endif

/* One step of a client in its state; 1 when anything moved. */
static int
client_step(rp_proxy *p, rp_conn *c)
{
    switch (c->state) {
#if RP_ENABLE_PROXY_PROTOCOL
    case CS_HEAD: return (c->flags & F_PROXYHDR) ? proxy_step(p, c) : client_head(p, c);
#else
    case CS_HEAD: return client_head(p, c);
#endif
    case CS_FWD: return exchange_step(p, c);
    case CS_TUNNEL: return tunnel_step(p, c);
    case CS_CLOSING: return closing_step(p, c);
#if RP_ENABLE_CACHE
    case CS_CACHE: return hit_step(p, c);
#endif
#if RP_ENABLE_STATUS
    case CS_LOCAL: return local_step(p, c);
#endif
#if RP_ENABLE_CACHE
    case CS_CWAIT: /* its timer (or the fill's end) wakes it; a reset frees it */
        return (c->flags & F_DEAD) ? exchange_fail(p, c, 0) : 0;
#endif
#if RP_ENABLE_LIMITS
    case CS_QUEUE: /* its timer (or queue_kick) wakes it; a client gone leaves */
        return (c->flags & (F_EOF | F_DEAD)) ? queue_abandon(p, c) : 0;
#endif
#if RP_ENABLE_SHARE
    case CS_STREAM:
        return stream_step(p, c);
#endif
    }
    return 0; /* CS_FREE; device states are stepped with their client */
}

/* A turn: move a client and its device connection as far as they go. */
#if RP_ENABLE_SHARE
void
client_service(rp_proxy *p, rp_conn *c)
#define pair_service client_service
#else
static void
pair_service(rp_proxy *p, rp_conn *c)
#endif
{
    int moved;
#if RP_TURN_MAX_BYTES
    c->flags &= ~F_RESUME;
#endif
    do {
        rp_conn *d = c->link;
        moved = conn_read(p, c);
        if (d)
            moved |= conn_read(p, d);
        moved |= client_step(p, c);
        if (c->state == CS_FREE)
            return;
        if ((d = c->link) != NULL)
            moved |= conn_write(p, d);
        moved |= conn_write(p, c);
#if RP_TURN_MAX_BYTES
        if (moved && TURN_BYTES_SPENT(p)) { /* the turn's bytes are spent: a later turn goes on */
            c->flags |= F_RESUME;
            break;
        }
#endif
    } while (moved);
    if (c->link)
        conn_settle(p, c->link);
    conn_settle(p, c);
}

/* DS_CONNECTING became writable: connected (DS_BUSY), or failed (the next
 * device, or the client's error reply).  Returns the client to serve. */
static rp_conn *
connect_done(rp_proxy *p, rp_conn *d)
{
    rp_conn *c = d->link;
    int rc = rp_port_connect_result(d->sock);
    if (rc == RP_EAGAIN)
        return NULL;
    if (rc != RP_OK) {
        device_failed(p, c, d, rc, 1); /* frees d: the error is kept in c->err */
    } else {
        conn_state(d, DS_BUSY);
        d->ready |= RP_EV_WRITE;
    }
    return c->state != CS_FREE ? c : NULL;
}

/* The port reported ev on c: what it means in c's state. */
void
conn_event(rp_proxy *p, rp_conn *c, unsigned ev)
{
    if (c->state == CS_FREE) /* freed by an earlier report of this batch */
        return;
    c->ready |= (uint8_t)(ev & (RP_EV_READ | RP_EV_WRITE));
    if (ev & RP_EV_ERROR)
        c->ready |= RP_EV_READ | RP_EV_WRITE;
    switch (c->state) {
    case DS_IDLE: /* the device closed or babbled: drop it */
        conn_free(p, c);
        return;
    case DS_CONNECTING:
        c = connect_done(p, c);
        break;
    case DS_PCONNECT: case DS_PROBE:
        probe_event(p, c);
        return;
#if RP_ENABLE_SHARE
    case DS_STREAM:
        stream_event(p, c);
        return;
#endif
    case DS_BUSY: /* its client drives the pair */
        c = c->link;
        break;
    }
    if (c)
        pair_service(p, c);
}

/* x's timer fired: what that means for its timer kind (its state's). */
void
conn_timeout(rp_proxy *p, rp_conn *x)
{
    rp_conn *c = x->kind == K_CLIENT ? x : x->link;
    int k = x->tkind;
    RP_ASSERT(k == timer_kind(x)); /* no timer outlives the state it was for */
    x->deadline = 0;
    x->tkind = T_NONE;
#if RP_ENABLE_SHARE
    if (x->state == DS_STREAM) {
        stream_timeout(p, x, k);
        return;
    }
#endif
    switch (k) {
    case T_PROBE:
        probe_finish(p, x, 0);
        return;
#if RP_ENABLE_CACHE
    case T_CWAIT: /* the fill ended, or waiting for it took too long */
        cache_resume(p, x);
        break;
#endif
#if RP_ENABLE_LIMITS
    case T_QUEUE: /* a device has room (queue_kick), or queue_timeout passed */
        queue_resume(p, x);
        break;
#endif
    case T_HEAD:
#if RP_ENABLE_PROXY_PROTOCOL
        if (x->flags & F_PROXYHDR) { /* no whole PROXY header in time: closed, no reply */
            p->stats.timeouts++;
            proxy_refuse(p, x, buf_len(&x->in) ? "no whole PROXY header within client_header"
                                                : "no PROXY header within client_header");
            return;
        }
#endif
        if (buf_len(&x->in)) {
            p->stats.timeouts++;
            reply_error(p, x, 408, "no whole request head within client_header");
            break;
        }
        /* a silent probe of the port: just close */
        /* fall through */
    case T_IDLE: case T_LINGER: case T_DIDLE: case T_TUNNEL: case T_HANDSHAKE:
        conn_free(p, x);
        return;
    case T_CLIENT:
        if (x->state == CS_CLOSING) {
            conn_free(p, x);
            return;
        }
        CUT(x, CUT_CLI_TIMEOUT);
        p->stats.timeouts++;
        if (out_blocked(x)) { /* not reading: drop it */
            access_log(p, x);
            conn_free(p, x);
            return;
        }
        exchange_fail(p, x, (x->flags & F_RESP_HEAD) ? 0 : 408);
        break;
    case T_CONNECT: case T_DEVICE:
        if (!c) {
            conn_free(p, x);
            return;
        }
        p->stats.timeouts++;
        CUT(c, CUT_DEV_TIMEOUT);
        device_failed(p, c, x, RP_ETIMEDOUT, k == T_CONNECT); /* 504, or the next device */
        break;
    default:
        return;
    }
    if (c->state != CS_FREE)
        pair_service(p, c);
}

/* ==== [9] Connections: the state machine, slots, interest, timers, closing ====
 * Client and device connections share one struct and live in two fixed
 * arrays with free lists.  Interest (read/write) is computed from buffer
 * levels after every turn and handed to the port only when it changed.
 * Each connection has at most one timer; its kind follows the state:
 *
 *   state          waits for                     timer         owns
 *   CS_HEAD        a request head                head / idle   in: head
 *   CS_FWD         body bytes, the response      client        in, out
 *   CS_TUNNEL      bytes either way              tunnel        in, out
 *   CS_CLOSING     out drained, then peer FIN    client/linger out
 *   DS_CONNECTING  the TCP connect               connect       out: head
 *   DS_BUSY        response bytes                device        in, out
 *   DS_IDLE        reuse (or the device's FIN)   device_idle   --
 *   DS_PROBE       a health probe's status line  probe timeout in, out
 *   CS_LOCAL       room to write the status page client        out
 *   CS_CACHE       room to send a hit's body     client        out, entry
 *   CS_CWAIT       another request's cache fill  cache lock    in: head
 */
#include "rp_int.h"



/* A recv of up to `want` bytes returned n: readiness, progress, counters,
 * FIN and errors.  Returns 1 when something happened (not RP_EAGAIN). */
int
recv_done(rp_proxy *p, rp_conn *c, long n, size_t want)
{
    if (n > 0) {
        c->flags |= F_PROGRESS;
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
    if (c->kind == K_CLIENT)
        p->stats.bytes_out += (uint64_t)n;
    return 1;
}

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
    const rp_config *c = &p->cfg;
    if (kind == T_PROBE)
        return c->pools[c->devices[x->device].pool].probe_timeout_ms;
    if (kind == T_LINGER)
        return RP_TIMEOUT_LINGER_MS;
    return *(const uint32_t *)(const void *)((const char *)c + field[kind]);
}

/* Output waits on the peer: its socket would block, or its TLS engine holds
 * plaintext back (mid-handshake, renegotiation, records still queued). */
int
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
        if (c->tls && !(c->flags & F_HSDONE))
            return T_HANDSHAKE;
        return buf_len(&c->in) || !(c->flags & F_SERVED) ? T_HEAD : T_IDLE;
    case CS_FWD:
        if (out_blocked(c) || (!(c->flags & F_REQ_DONE) && o && o->state == DS_BUSY))
            return T_CLIENT;
        return T_NONE;
    case CS_TUNNEL: return T_TUNNEL;
    case CS_LOCAL: case CS_CACHE: return out_blocked(c) ? T_CLIENT : T_NONE;
    case CS_CWAIT: return T_CWAIT;
    case CS_CLOSING: return buf_len(&c->out) ? T_CLIENT : T_LINGER;
    case DS_PROBE: return T_PROBE;
    case DS_CONNECTING: return T_CONNECT;
    case DS_IDLE: return T_DIDLE;
    case DS_BUSY:
        if (out_blocked(c))
            return T_DEVICE;
        if (o && o->state == CS_FWD && (o->flags & F_REQ_DONE) &&
            !(o->flags & F_RESP_DONE) && !out_blocked(o) && buf_len(&c->in) < RP_BUF_SIZE)
            return T_DEVICE;
        return T_NONE;
    }
    return T_NONE;
}

static unsigned
conn_interest(const rp_conn *c)
{
    unsigned ev = 0;
    if (c->state == DS_CONNECTING || (c->flags & F_PCONN))
        return RP_EV_WRITE;
#if RP_ENABLE_TLS
    if (c->tls)
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
        c->deadline = k ? p->now + timer_ms(p, c, k) : 0;
        timer_hint(p, c->deadline);
    }
    c->flags &= ~F_PROGRESS;
    ev = conn_interest(c);
    if (ev != c->watched) {
        c->watched = (uint8_t)ev;
        rp_port_watch(c->sock, ev, c);
    }
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
    c->state = kind == K_CLIENT ? CS_HEAD : DS_CONNECTING;
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
        rp_device *dev = &p->cfg.devices[c->device];
        if (c->state == DS_IDLE) {
            idle_remove(p, c);
            dev->idle--;
        } else if (c->state == DS_PROBE) {
            dev->probe = NULL;
        } else {
            dev->active--;
        }
        if (c->link)
            c->link->link = NULL;
    } else if (c->link) {
        conn_free(p, c->link);
    }
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
    c->state = CS_FREE;
    c->link = NULL;
    c->deadline = 0;
    c->tkind = T_NONE;
    c->next = *free_list(p, c->kind);
    *free_list(p, c->kind) = c;
}


int
conn_read(rp_proxy *p, rp_conn *c)
{
    size_t room;
    long n;
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
    if (c->tls)
        return tls_pump(p, c);
#endif
    if ((!len && !HIT_LEFT(c)) || c->state == DS_CONNECTING || (c->flags & (F_DEAD | F_PCONN)))
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
    if (c->link)
        conn_free(p, c->link);
    c->flags &= ~(F_KEEP | F_HOLD);
    if (c->flags & F_DEAD) {
        conn_free(p, c);
        return;
    }
    c->state = CS_CLOSING;
}

int
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

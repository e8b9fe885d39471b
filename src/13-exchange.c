/* ==== [13] The exchange: dispatch, retries, response heads, keep-alive ====
 * One exchange = one request and its response.  The client connection
 * drives it; its device connection (c->link) comes from the idle pool or a
 * new connect.  A turn reads what the port reported, moves bytes between the
 * four buffers as far as framing and space allow, and writes; it repeats
 * while anything moved.  The request head stays in the client's buffer
 * (HELD) until body bytes or a response make a retry unsafe.
 * Owns: a client's exchange fields (flags F_EXCHANGE, status, tried, tries,
 * route, head_len) and its device connection while it is linked.
 * Calls: [7] [9] [10] [11] [14] [15] [17].  Called by: [9] (client_step, conn_timeout). */
#include "rp_int.h"

/* The exchange is over: count the response, tell the access callback. */
void
access_log(rp_proxy *p, rp_conn *c)
{
#if RP_ENABLE_ACCESS_LOG
    static const char *const cut_why[] = { /* by CUT_* */
        "device-framing", "device-closed", "device-timeout", "client-timeout", "client-framing",
        "shutdown"};
    rp_access a;
    const rp_addr *dev = c->device != NO_DEVICE
                             ? &DEVP(p, c->device)->addr : NULL;
    uint32_t why;
#endif
    if (c->status >= 100 && c->status < 600)
        p->stats.responses[c->status / 100]++;
#if RP_ENABLE_ACCESS_LOG
    if (!p->access_fn)
        return;
    a.client = &c->peer;
    a.method.p = c->method, a.method.n = strlen(c->method);
    a.target.p = c->target, a.target.n = strlen(c->target);
    a.status = c->status;
    a.bytes = c->sent;
    a.device = dev;
    a.ms = (uint32_t)(p->now - c->t_start);
    a.err = c->err;
    a.cut = NULL;
#if RP_ENABLE_REASONS
    a.why = c->why;
#else
    a.why = NULL;
#endif
    a.route = c->route == NO_ROUTE ? -1 : c->route;
    a.pool = a.route < 0 ? NULL : CFG(p)->pools[CFG(p)->routes[c->route].pool].name;
    a.cache = NULL;
#if RP_ENABLE_CACHE
    a.cache = cache_word(c->cflags);
#endif
    a.tls = 0;
#if RP_ENABLE_TLS
    if (c->tls)
        a.tls = br_ssl_engine_get_version(&c->tls->u.sc.eng);
#endif
    if ((c->flags & (F_RESP_HEAD | F_RESP_DONE)) == F_RESP_HEAD && c->state != CS_TUNNEL) {
        why = (c->flags & F_CUTS) >> F_CUT_SHIFT;
        a.cut = why ? cut_why[why - 1] : (c->flags & (F_EOF | F_DEAD)) ? "client-closed" : "cut";
    }
    p->access_fn(p->access_ud, &a);
#endif
}

/* Give a device connection back: to the idle pool when it is clean and
 * keep-alive, else closed. */
void
device_release(rp_proxy *p, rp_conn *d)
{
    rp_device *dv = DEVC(p, d);
    int at = IDLE_AT(p, d); /* the live slot's index (< 0: the device is gone) */
    d->link = NULL;
    if ((d->flags & F_KEEP) && !buf_len(&d->in) && !buf_len(&d->out) &&
        !(d->flags & (F_EOF | F_DEAD)) && !p->stopping && at >= 0
#if RP_ENABLE_LIMITS
        && (!dv->max_idle || dv->idle < dv->max_idle)
#endif
        ) {
        conn_state(d, DS_IDLE);
        d->flags &= F_WBLOCK | F_HSDONE | F_TLSPART; /* socket flags that still hold */
#if RP_ENABLE_RELOAD
        d->device = (uint8_t)at; /* idle connections are the live slot's */
        d->cfs = p->live;
#endif
        d->next = p->idle[at];
        p->idle[at] = d;
        dv->active--;
        dv->idle++;
        conn_settle(p, d); /* both buffers are empty: they go back */
        queue_kick(p);     /* an idle connection is a free one */
        return;
    }
    conn_free(p, d);
}


/* The exchange cannot go on.  The device connection is dropped; the client
 * gets `status` if no response head went out yet (status 0: nothing), and
 * is closed.  Returns 1 (something changed). */
int
exchange_fail(rp_proxy *p, rp_conn *c, int status)
{
#if RP_ENABLE_CACHE
    if (stale_rescue(p, c, status))
        return 1;
    cache_release(p, c);
#endif
    if (!(c->flags & F_RESP_HEAD) && status) {
        error_write(p, c, status, 0);
        c->status = status;
    }
    access_log(p, c);
    closing_begin(p, c); /* drops the device connection */
    return 1;
}

/* A refusal before any device is involved (bad request, no route); why
 * names the rule (RP_ENABLE_REASONS builds). */
void
refusal_noted_(rp_proxy *p, rp_conn *c, int status WHY_ARG(const char *why))
{
    if (status < 500 || status == 501 || status == 505)
        p->stats.bad_requests++;
#if RP_ENABLE_REASONS
    if (!why)
        why = "-";
    RP_LOG(RP_LOG_INFO, ("refused request: %d %s: %s", status, reason_for(status), why));
#if RP_ENABLE_ACCESS_LOG
    c->why = why;
#endif
#else
    RP_LOG(RP_LOG_INFO, ("refused request: %d %s", status, reason_for(status)));
    (void)c;
#endif
}

int
reply_error_(rp_proxy *p, rp_conn *c, int status WHY_ARG(const char *why))
{
    refusal_noted_(p, c, status WHY_ARG(why));
    return exchange_fail(p, c, status);
}

/* Every device slot taken: close the connection that has idled longest in
 * some device's pool (idle connections must not starve a device that has
 * none).  Returns 1 if one was freed. */
static int
idle_evict(rp_proxy *p)
{
    rp_conn *old = NULL;
    int i;
    for (i = 0; i < RP_MAX_UPSTREAM; i++) {
        rp_conn *d = &p->devices[i];
        if (d->state == DS_IDLE && (!old || d->deadline < old->deadline))
            old = d;
    }
    if (!old)
        return 0;
    conn_free(p, old);
    return 1;
}

/* An idle pooled connection to dev, or a new connect.  Returns RP_OK,
 * RP_ENOMEM (no slot) or the connect error. */
static int
device_get(rp_proxy *p, int dev, rp_conn **out)
{
    rp_device *dv = DEVP(p, dev);
    int at = IDLE_INDEX(p, CUR_SLOT(p), dev);
    rp_conn *d = at >= 0 ? p->idle[at] : NULL;
    if (d) {
        p->idle[at] = d->next;
        dv->idle--;
        dv->active++;
        d->flags = (d->flags & (F_WBLOCK | F_HSDONE | F_TLSPART)) | F_REUSED;
        conn_state(d, DS_BUSY);
        p->stats.device_reuses++;
#if RP_ENABLE_RELOAD
        d->device = (uint8_t)dev; /* in its client's slot */
        d->cfs = (uint8_t)CUR_SLOT(p);
#endif
    } else {
        rp_sock s;
        if ((d = conn_alloc(p, K_DEVICE)) == NULL && idle_evict(p))
            d = conn_alloc(p, K_DEVICE);
        if (d == NULL) {
            p->stats.upstream_full++;
            return RP_ENOMEM;
        }
        d->device = (uint8_t)dev;
        dv->active++; /* a connecting slot is active: conn_free gives it back */
        if ((s = rp_port_connect(&dv->addr)) < 0) {
            conn_free(p, d); /* a free slot's sock is -1: nothing to close */
            return s;
        }
        d->sock = s;
        d->peer = dv->addr;
        p->stats.device_connects++;
#if RP_ENABLE_TLS && RP_ENABLE_TLS_DEVICE
        if (dv->tls && (d->tls = tls_take_client(p, dv)) == NULL) {
            p->stats.tls_refused++;
            conn_free(p, d);
            return RP_ENOMEM;
        }
#endif
    }
    d->next = NULL;
    d->scan = 0; /* the framing (mode, left, ch) waits for response_begin */
    dv->requests++;
    *out = d;
    return RP_OK;
}

#if RP_ENABLE_LIMITS
/* ---- The pools' queues ----
 * A request whose pool has every device it would use at max_conns waits
 * in the pool's FIFO (CS_QUEUE; the list runs through the clients' `next`)
 * with its head held.  When a device connection closes or goes idle,
 * queue_kick makes the oldest waiter of each pool due; its timer
 * (queue_resume) dispatches it on whichever device has room then -- or
 * puts it back at the front.  A newcomer queues behind the waiters.  The
 * wait is bounded by the pool's queue_timeout from the request's head. */

static rp_pool *
pool_of(rp_proxy *p, const rp_conn *c)
{
    return &CFG(p)->pools[CFG(p)->routes[c->route].pool];
}

/* Take c out of its pool's queue, if it is in it. */
void
queue_unlink(rp_proxy *p, rp_conn *c)
{
    rp_pool *pl = pool_of(p, c);
    rp_conn **pp = &pl->qhead, *prev = NULL;
    while (*pp && *pp != c)
        prev = *pp, pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = c->next;
    if (pl->qtail == c)
        pl->qtail = prev;
    c->next = NULL;
    pl->queued--;
}

/* A device connection closed or went idle: the oldest waiter of each pool
 * gets its turn from the timer sweep, not inside the exchange that freed it. */
void
queue_kick(rp_proxy *p)
{
    int i, k;
    for (k = 0; k <= RP_ENABLE_RELOAD; k++) { /* and the queues of the slot before a reload */
#if RP_ENABLE_RELOAD
        const rp_config *cf = SLOT(p, k);
        if (k != p->live && p->spare != RL_OLD)
            continue;
#else
        const rp_config *cf = CFG(p);
#endif
        for (i = 0; i < cf->npools; i++) {
            rp_conn *w = cf->pools[i].qhead;
            if (w && w->deadline > p->now) {
                w->deadline = p->now;
                timer_hint(p, p->now);
            }
        }
    }
}

/* Wait in the pool's queue (at the front: a waiter that found no room
 * after all), or 503 when it is full. */
static int
queue_add(rp_proxy *p, rp_conn *c, int front)
{
    rp_pool *pl = pool_of(p, c);
    if ((!front || !pl->queue_max) && pl->queued >= pl->queue_max) {
        pl->queue_full++;
        return reply_error(p, c, 503, pl->queue_max ? "the pool's queue is full"
                                                    : "every device at max_conns (no queue=)");
    }
    if (front) {
        c->next = pl->qhead;
        pl->qhead = c;
        if (!pl->qtail)
            pl->qtail = c;
    } else {
        c->next = NULL;
        if (pl->qtail)
            pl->qtail->next = c;
        else
            pl->qhead = c;
        pl->qtail = c;
    }
    if (++pl->queued > pl->queued_peak)
        pl->queued_peak = pl->queued;
    conn_state(c, CS_QUEUE);
    return 1;
}

/* c's queue timer: made due by queue_kick (room somewhere: the oldest
 * waiter tries a device), or queue_timeout passed (503 with Retry-After).
 * A kicked waiter that is no longer the oldest (a retry went ahead of it)
 * hands the turn to the front and keeps waiting. */
void
queue_resume(rp_proxy *p, rp_conn *c)
{
    rp_pool *pl = pool_of(p, c);
    if (p->now < c->t_start + pl->queue_timeout_ms) {
        if (pl->qhead != c) {
            queue_kick(p);
            return;
        }
        queue_unlink(p, c);
        dispatch(p, c, NULL); /* a device, or back to the front */
        if (c->state != CS_QUEUE)
            queue_kick(p); /* room for the next one too? */
        return;
    }
    queue_unlink(p, c);
    pl->queue_timeouts++;
    reply_error(p, c, 503, "waited in the pool's queue for queue_timeout");
}

/* A waiting client closed: it leaves the queue (access line, status 0). */
int
queue_abandon(rp_proxy *p, rp_conn *c)
{
    queue_unlink(p, c);
#if RP_ENABLE_REASONS && RP_ENABLE_ACCESS_LOG
    c->why = "client closed while queued";
#endif
    return exchange_fail(p, c, 0);
}
#endif

/* Find a device and send it the request head; m is NULL on a retry (the
 * head is parsed again from the held bytes). */
int
dispatch(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_pool *pl = &CFG(p)->pools[CFG(p)->routes[c->route].pool];
    rp_http_msg again;
    rp_conn *d;
    rp_str cond[2];
    char vbuf[512];
    int dev, rc;
#if RP_ENABLE_LIMITS
    /* a waiter, a retry (or a collapsed miss) had its turn: the queue's front */
    int front = c->state == CS_QUEUE || !m;
#endif
    if (!m) {
        if (rp_http_parse_request(c->in.d + c->in.r, c->head_len, &again) != RP_OK)
            return exchange_fail(p, c, 502);
        m = &again;
    }
#if RP_ENABLE_LIMITS
    if (pl->queued && !front)
        return queue_add(p, c, 0); /* first come, first served */
#endif
    for (;;) {
        if ((dev = pool_pick(p, pl, c->tried)) < 0) {
#if RP_ENABLE_LIMITS
            if (dev == PICK_FULL)
                return queue_add(p, c, front);
#endif
            return exchange_fail(p, c, (c->flags & F_DEVFAIL) ? 502 : 503);
        }
        rc = device_get(p, dev, &d);
        if (rc == RP_OK)
            break;
#if RP_ENABLE_LIMITS
        if (rc == RP_ENOMEM && pl->queue_max) /* every device slot busy: wait too */
            return queue_add(p, c, front);
#endif
        if (rc == RP_ENOMEM)
            return exchange_fail(p, c, 503);
        device_fail(p, dev, rc); /* nothing reached it: on to the next, free */
        c->tried |= 1u << dev;
        c->flags |= F_DEVFAIL;
    }
#if RP_ENABLE_LIMITS
    if (c->state == CS_QUEUE)
        conn_state(c, CS_FWD);
#endif
    c->link = d;
    d->link = c;
#if RP_ENABLE_ACCESS_LOG
    c->device = (uint8_t)dev; /* a client's device is read by the access log only */
#endif
    if (request_head_write(p, c, d, m, revalidators(p, c, vbuf, cond)) != RP_OK)
        return exchange_fail(p, c, 431);
    return 1;
}

/* The device connection failed or timed out: `connecting` when the connect
 * itself did (nothing reached the device: any method may be retried), else
 * only an idempotent request whose head is still held -- none once a
 * response head came. */
int
device_failed(rp_proxy *p, rp_conn *c, rp_conn *d, int err, int connecting)
{
    const rp_pool *pl = &CFG(p)->pools[CFG(p)->routes[c->route].pool];
    int stale = (d->flags & F_REUSED) && !(d->flags & F_GOT) && err != RP_ETIMEDOUT;
    int status = err == RP_ETIMEDOUT ? 504 : 502;
    if (!stale) {
        device_fail(p, d->device, err);
        c->tried |= 1u << d->device;
    }
    if (!c->err)
        c->err = (int16_t)err;
    conn_free(p, d);
    /* A failed connect moves on to the next device without using a retry
     * (nginx tries every server): nothing reached the device.  A request
     * that did reach one is replayed only if idempotent, its head still
     * held, and `retries` allows. */
    if (HELD(c) &&
        (connecting || (c->tries < pl->retries && (stale || err != RP_ETIMEDOUT) &&
                        (c->flags & F_IDEMP)))) {
        c->tries = (uint8_t)(c->tries + !connecting);
        c->flags |= F_DEVFAIL;
        p->stats.retries++;
        return dispatch(p, c, NULL);
    }
    return exchange_fail(p, c, status);
}


/* What the method tells the exchange (RFC 9110 §9.2): HEAD, GET, safe,
 * idempotent; or MF_CONNECT, which is refused.  Other methods carry none. */
#define MF_CONNECT (1u << 31) /* never stored in c->flags */
static uint32_t
method_flags(rp_str m)
{
    static const struct {
        char name[8];
        uint32_t flags;
    } known[] = {
        {"GET", F_GET | F_SAFE | F_IDEMP}, {"HEAD", F_HEAD | F_SAFE | F_IDEMP},
        {"OPTIONS", F_SAFE | F_IDEMP}, {"TRACE", F_SAFE | F_IDEMP},
        {"PUT", F_IDEMP}, {"DELETE", F_IDEMP}, {"CONNECT", MF_CONNECT},
    };
    size_t i;
    for (i = 0; i < RP_COUNT(known); i++)
        if (m.n < sizeof(known[i].name) && !known[i].name[m.n] &&
            memcmp(known[i].name, m.p, m.n) == 0)
            return known[i].flags;
    return 0;
}

#if RP_ENABLE_ACCESS_LOG
static void
copy_cstr(char *dst, size_t cap, rp_str s)
{
    size_t n = RP_MIN(s.n, cap - 1);
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = 0;
}
#endif

#if RP_ENABLE_STATUS
/* Does the target's path (before any '?') equal path? */
static int
path_is(rp_str target, const char *path)
{
    size_t n = strlen(path);
    return target.n >= n && memcmp(target.p, path, n) == 0 &&
           (target.n == n || target.p[n] == '?');
}
#endif

#if RP_ENABLE_REDIRECT
/* `redirect_https`: 301 to the same host and target on the TLS port. */
static int
redirect_reply(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_config *cf = CFG(p);
    unsigned port = cf->listeners[c->lsn].redirect_port;
    int i;
    wbuf w;
    for (i = 0; !port && i < cf->nlisteners; i++)
        if (cf->listeners[i].tls)
            port = cf->listeners[i].addr.port;
    if (!(m->flags & RP_HF_HOST) || !m->host.n)
        return reply_error(p, c, 400, "redirect_https: the request has no Host");
    w = buf_writer(p, &c->out);
    w_put(&w, S("HTTP/1.1 301 Moved Permanently\r\nLocation: https://"));
    w_str(&w, host_only(m->host));
    if (port != 443) {
        w_put(&w, ":", 1);
        w_num(&w, port);
    }
    if (!m->target.n || m->target.p[0] != '/')
        w_put(&w, "/", 1);
    w_str(&w, m->target);
    w_put(&w, S("\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    if (buf_commit(&c->out, &w) != RP_OK)
        return reply_error(p, c, 414, "redirect_https: the Location does not fit RP_BUF_SIZE");
    SENT(c, w.n);
    c->status = 301;
    access_log(p, c);
    closing_begin(p, c);
    return 1;
}
#endif

static int
exchange_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m, size_t head_len)
{
    rp_str meth = m->method;
    uint32_t mf;
    int keep, route, m_keep_off = 0;
#if RP_ENABLE_CACHE || RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_ACL || RP_ENABLE_AUTH
    int rc;
#endif
#if RP_ENABLE_RELOAD
    if (c->cfs != p->live && client_to_live(p, c) == 0)
        m_keep_off = 1; /* its listener is gone: this request on the old slot, then closed */
#endif
    c->flags &= ~F_EXCHANGE;
    if ((mf = method_flags(meth)) == MF_CONNECT)
        return reply_error(p, c, 405, "CONNECT is not proxied");
    c->flags |= mf;
    if (m->minor == 0)
        c->flags |= F_HTTP10;
    keep = m->minor ? !(m->flags & RP_HF_CONN_CLOSE)
                    : (m->flags & RP_HF_CONN_KEEP) && !(m->flags & RP_HF_CONN_CLOSE);
    if (keep && !p->stopping && !m_keep_off)
        c->flags |= F_KEEP;
    if ((m->flags & RP_HF_UPGRADE) && (m->flags & RP_HF_CONN_UPG) && m->minor == 1)
        c->flags |= F_UPG;
    memset(&c->ch, 0, sizeof(c->ch)); /* left matters only with M_LENGTH */
    if (m->flags & RP_HF_CHUNKED)
        c->mode = M_CHUNKED;
    else if (m->content_length > 0)
        c->mode = M_LENGTH, c->left = (uint64_t)m->content_length;
    else
        c->mode = M_NONE, c->flags |= F_REQ_DONE;
    c->head_len = (uint32_t)head_len;
#if RP_ENABLE_CLIENT_LIMIT
    if (CFG(p)->cl_rate && (rc = client_rate(p, c)) != 0)
        return rc;
#endif
#if RP_ENABLE_REDIRECT
    if (CFG(p)->listeners[c->lsn].redirect)
        return redirect_reply(p, c, m);
#endif
#if RP_ENABLE_STATUS
    if (CFG(p)->status_path && (path_is(m->target, CFG(p)->status_path) ||
                               STATUS_CONTROL_PATH(p, m->target)))
        return status_begin(p, c, m);
#endif
    if ((route = route_match(CFG(p), m->host, m->target)) < 0)
        return reply_error(p, c, 404, "no route for this host and path");
    c->route = (uint8_t)route;
#if RP_ENABLE_ACL || RP_ENABLE_AUTH
    if (ROUTE_GUARDED(&CFG(p)->routes[route]) && (rc = route_guard(p, c, m)) != 0)
        return rc;
#endif
#if RP_ENABLE_PATH_MAP
    if (CFG(p)->routes[route].rewrite) {
        if (path_climbs(m->target))
            return reply_error(p, c, 400, "dot-segment in the path on a rewrite= route");
        mhost_keep(c, m->host);
    }
#endif
    conn_state(c, CS_FWD);
#if RP_ENABLE_SHARE
    if (CFG(p)->routes[route].share && stream_request(p, c, m))
        return 1;
#endif
#if RP_ENABLE_CACHE
    if ((rc = cache_request(p, c, m)) != 0)
        return rc;
#endif
    return dispatch(p, c, m);
}

int
client_head(rp_proxy *p, rp_conn *c)
{
    rp_http_msg m;
    size_t len;
    long n;
    int rc;
    while (c->scan == 0 && buf_len(&c->in) >= 2 && c->in.d[c->in.r] == '\r' &&
           c->in.d[c->in.r + 1] == '\n')
        c->in.r += 2; /* RFC 9112 §2.2: ignore empty lines before a request */
    if ((len = buf_len(&c->in)) == 0) {
        if (c->flags & (F_EOF | F_DEAD) || p->stopping) {
            closing_begin(p, c);
            return 1;
        }
        return 0;
    }
    n = rp_http_head_end(c->in.d + c->in.r, len, &c->scan);
    if (n == RP_EAGAIN) {
        if (len >= RP_MAX_HEAD)
            return memchr(c->in.d + c->in.r, '\n', len)
                       ? reply_error(p, c, 431, "request head longer than RP_MAX_HEAD (" XSTR(RP_MAX_HEAD) ")")
                       : reply_error(p, c, 414, "request line longer than RP_MAX_HEAD (" XSTR(RP_MAX_HEAD) ")");
        if (c->flags & (F_EOF | F_DEAD)) {
            closing_begin(p, c); /* gave up mid-head */
            return 1;
        }
        return 0;
    }
    c->scan = 0;
    c->t_start = p->now;
    p->stats.requests++;
    if (n < 0)
        return reply_error(p, c, 400, "bare CR, bare LF or NUL in the request head");
    if (n > RP_MAX_HEAD)
        return reply_error(p, c, 431, "request head longer than RP_MAX_HEAD (" XSTR(RP_MAX_HEAD) ")");
    rc = rp_http_parse_request(c->in.d + c->in.r, (size_t)n, &m);
#if RP_ENABLE_ACCESS_LOG
    copy_cstr(c->method, sizeof(c->method), m.method);
    copy_cstr(c->target, sizeof(c->target), m.target);
#endif
    if (rc != RP_OK)
        return reply_error(p, c, status_for(rc), m.why);
    return exchange_begin(p, c, &m, (size_t)n);
}


/* The device's final response head is parsed: choose the body framing,
 * decide both connections' fate, queue the client's head. */
static int
response_begin(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    if (m->status == 101 && !(c->flags & F_UPG))
        return exchange_fail(p, c, 502);
#if RP_ENABLE_CACHE
    if ((c->cflags & CF_ON) && cache_response(p, c, d, m, n))
        return 1;
#endif
    memset(&d->ch, 0, sizeof(d->ch));
    if (m->status == 101)
        d->mode = M_TUNNEL;
    else if ((c->flags & F_HEAD) || m->status == 204 || m->status == 304)
        d->mode = M_NONE;
    else if (m->flags & RP_HF_CHUNKED) {
        d->mode = (c->flags & F_HTTP10) ? M_DECHUNK : M_CHUNKED;
        if (!body_valid(d, n)) /* no head relayed before a broken chunk line */
            return body_broken(p, c, d);
    } else if (m->flags & RP_HF_LENGTH)
        d->mode = M_LENGTH, d->left = (uint64_t)m->content_length;
    else
        d->mode = M_CLOSE;
#if RP_ENABLE_SHARE
    if (c->stream && share_response(p, c, d, m, n))
        return 1;
#endif
    if (m->minor == 1 && !(m->flags & RP_HF_CONN_CLOSE) && d->mode != M_CLOSE &&
        d->mode != M_TUNNEL)
        d->flags |= F_KEEP;
    if (d->mode == M_CLOSE || d->mode == M_DECHUNK || !(c->flags & F_REQ_DONE) ||
        p->stopping)
        c->flags &= ~F_KEEP;
    c->status = m->status;
    if (response_head_write(p, c, d, m) != RP_OK)
        return exchange_fail(p, c, 502);
    d->in.r += (uint32_t)n;
    head_drop(c);
    c->flags |= F_RESP_HEAD;
    if (d->mode == M_NONE || (d->mode == M_LENGTH && d->left == 0))
        c->flags |= F_RESP_DONE;
    device_ok(p, d->device);
    if (d->mode == M_TUNNEL) {
        conn_state(c, CS_TUNNEL);
        p->stats.tunnels++;
        access_log(p, c);
    }
    return 1;
}

/* Parse response heads from the device: interim 1xx are relayed (to
 * HTTP/1.1 clients) and skipped, the final one starts the response. */
static int
response_head(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    rp_http_msg m;
    int moved = 0;
    for (;;) {
        size_t len = buf_len(&d->in);
        long n;
        if (len == 0) {
            if (d->flags & (F_EOF | F_DEAD))
                return device_failed(p, c, d, d->err ? d->err : RP_ECLOSED, 0);
            return moved;
        }
        d->flags |= F_GOT;
        n = rp_http_head_end(d->in.d + d->in.r, len, &d->scan);
        if (n == RP_EAGAIN) {
            if (len >= RP_MAX_HEAD || (d->flags & (F_EOF | F_DEAD)))
                return exchange_fail(p, c, 502);
            return moved;
        }
        d->scan = 0;
        if (n < 0 || n > RP_MAX_HEAD ||
            rp_http_parse_response(d->in.d + d->in.r, (size_t)n, &m) != RP_OK) {
#if RP_ENABLE_REASONS
            RP_LOG(RP_LOG_WARN, ("device %d sent a malformed response head: %s", d->device,
                                 n < 0 ? "bare CR, bare LF or NUL" : n > RP_MAX_HEAD
                                 ? "longer than RP_MAX_HEAD" : m.why ? m.why : "bad status line"));
#else
            RP_LOG(RP_LOG_WARN, ("device %d sent a malformed response head", d->device));
#endif
            return exchange_fail(p, c, 502);
        }
        if (buf_len(&c->out) && buf_room(p, &c->out) < (size_t)n + 512)
            return moved; /* wait for the client to drain */
        if (m.status >= 200 || m.status == 101)
            return response_begin(p, c, d, &m, (size_t)n);
        if (!(c->flags & F_HTTP10)) {
            wbuf w = buf_writer(p, &c->out);
            w_status_line(&w, m.status, m.reason);
            w_put(&w, S("\r\n"));
            buf_commit(&c->out, &w);
        }
        d->in.r += (uint32_t)n;
        moved = 1;
    }
}

/* Forget the finished request: flags, status and log fields. */
RP_NOINLINE void
request_reset(rp_conn *c)
{
    c->flags &= ~F_EXCHANGE;
    c->status = 0;
    c->tries = 0;
    c->tried = 0;
#if RP_ENABLE_ACCESS_LOG
    c->sent = 0;
    c->device = NO_DEVICE;
    c->method[0] = c->target[0] = 0;
#endif
#if RP_ENABLE_ACCESS_LOG || RP_ENABLE_AUTH
    c->route = NO_ROUTE; /* the status page's 401 names its own realm */
#endif
#if RP_ENABLE_ACCESS_LOG
#if RP_ENABLE_REASONS
    c->why = NULL;
#endif
#endif
#if RP_ENABLE_CACHE
    c->cflags = 0;
#endif
}

int
exchange_end(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
    RP_ASSERT(c->flags & F_RESP_DONE); /* every caller got the whole response out */
#if RP_ENABLE_CACHE
    if (c->cfill)
        fill_commit(p, c);
    cache_release(p, c);
#endif
    access_log(p, c);
    c->link = NULL;
    if (d) {
        if (!(c->flags & F_REQ_DONE))
            d->flags &= ~F_KEEP;
        device_release(p, d);
    }
    head_drop(c);
    c->flags |= F_SERVED;
    if ((c->flags & F_KEEP) && !p->stopping) {
        request_reset(c);
        conn_state(c, CS_HEAD);
        return 1;
    }
    closing_begin(p, c);
    return 1;
}

int
exchange_step(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
    int moved = 0;
    if ((c->flags & F_DEAD) || !d)
        return exchange_fail(p, c, 0);
    if (d->state == DS_CONNECTING)
        return 0;
    if (!(c->flags & F_RESP_DONE)) {
        moved |= request_body(p, c, d);
        if (c->state != CS_FWD || c->link != d)
            return 1;
    }
    if (!(c->flags & F_RESP_HEAD)) {
        moved |= response_head(p, c, d);
        if (c->state != CS_FWD || c->link != d)
            return 1;
    }
    if ((c->flags & F_RESP_HEAD) && !(c->flags & F_RESP_DONE))
        moved |= response_body(p, c, d);
    if (c->state == CS_FWD && (c->flags & F_RESP_DONE) &&
        ((c->flags & F_REQ_DONE) || !(c->flags & F_KEEP)))
        return exchange_end(p, c);
    return moved;
}

/* After a 101: raw bytes both ways until either side closes. */
int
tunnel_step(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
    size_t a, b;
    if (!d || ((c->flags | d->flags) & F_DEAD)) {
        closing_begin(p, c); /* frees d too */
        return 1;
    }
    a = buf_move(p, &d->out, &c->in, (size_t)-1);
    b = buf_move(p, &c->out, &d->in, (size_t)-1);
    if (a || b)
        c->flags |= F_PROGRESS;
    if (((c->flags & F_EOF) && !buf_len(&c->in) && !buf_len(&d->out)) ||
        ((d->flags & F_EOF) && !buf_len(&d->in))) {
        closing_begin(p, c); /* frees d */
        return 1;
    }
    return a || b;
}


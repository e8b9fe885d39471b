/* ==== [12] The exchange state machine ====
 * One exchange = one request and its response.  The client connection
 * drives it; its device connection (c->link) comes from the idle pool or a
 * new connect.  A turn reads what the port reported, moves bytes between the
 * four buffers as far as framing and space allow, and writes; it repeats
 * while anything moved.  The request head stays in the client's buffer
 * (F_HOLD) until body bytes or a response make a retry unsafe. */

/* The exchange is over: count the response, tell the access callback. */
static void
access_log(rp_proxy *p, rp_conn *c)
{
#if RP_ENABLE_ACCESS_LOG
    rp_access a;
    const rp_addr *dev = c->device < p->cfg.ndevices /* <= RP_MAX_DEVICES; 0xff: none */
                             ? &p->cfg.devices[c->device].addr : NULL;
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
    p->access_fn(p->access_ud, &a);
#endif
}

/* Give a device connection back: to the idle pool when it is clean and
 * keep-alive, else closed. */
static void
device_release(rp_proxy *p, rp_conn *d)
{
    rp_device *dv = &p->cfg.devices[d->device];
    d->link = NULL;
    if ((d->flags & F_KEEP) && !buf_len(&d->in) && !buf_len(&d->out) &&
        !(d->flags & (F_EOF | F_DEAD)) && !p->stopping) {
        d->state = DS_IDLE;
        d->flags &= F_WBLOCK;
        d->next = p->idle[d->device];
        p->idle[d->device] = d;
        dv->active--;
        dv->idle++;
        conn_settle(p, d); /* both buffers are empty: they go back */
        return;
    }
    conn_free(p, d);
}

#if RP_ENABLE_CACHE
/* ---- The cache in the exchange ----
 * A request on a cache route is looked up before any device is chosen: a
 * usable entry answers it (CS_CACHE: the head is queued, the body goes
 * from the arena), a stale one is revalidated with a conditional request,
 * a miss waits for a fill in progress (CS_CWAIT) or starts one. */

/* The request head held in the client's buffer (F_HOLD), parsed again. */
static int
held_request(const rp_conn *c, rp_http_msg *m)
{
    return rp_http_parse_request(c->in.d + c->in.r, c->head_len, m);
}

static int
entry_ttl(const rp_proxy *p, unsigned i)
{
    const centry *e = &p->cache.e[i];
    return (int)RP_MAX(RP_MIN((int64_t)e->lifetime - entry_age(p, e), (int64_t)0x7fffffff),
                       -(int64_t)0x7fffffff);
}

/* Answer request m from the pinned entry. */
static int
hit_serve(rp_proxy *p, rp_conn *c, const rp_http_msg *m, int64_t ttl)
{
    if (!(c->cflags & CF_REVAL) || (c->cflags & CF_SIE))
        c->cflags |= CF_HIT; /* else "fwd=stale; fwd-status=304" */
    c->cflags &= (uint16_t)~CF_STORED;
    c->state = CS_CACHE;
    c->flags |= F_REQ_DONE | F_RESP_HEAD;
    if (!hit_begin(p, c, m, ttl))
        c->cflags |= CF_HEADWAIT; /* a previous response still fills `out` */
    return 1;
}

/* The device failed while a stale entry was being revalidated: serve it
 * if its stale-if-error allows (RFC 5861), never past must-revalidate. */
static int
stale_rescue(rp_proxy *p, rp_conn *c, int status)
{
    const centry *e;
    rp_http_msg m;
    cc_t rq;
    int ttl;
    if (!c->centry || !(c->cflags & CF_REVAL) || (c->flags & F_RESP_HEAD) ||
        !(c->flags & F_HOLD) || status < 500 || status == 501 || status > 504)
        return 0;
    e = &p->cache.e[c->centry];
    if ((e->flags & CE_NO_STALE) ||
        held_request(c, &m) != RP_OK)
        return 0;
    cc_of(&m, &rq); /* the client may allow it too (RFC 5861 §4) */
    ttl = entry_ttl(p, c->centry);
    if (-ttl > RP_MAX((int64_t)e->stale_if_error, rq.sie))
        return 0;
    if (c->link)
        conn_free(p, c->link);
    c->link = NULL;
    c->cflags |= CF_SIE;
    return hit_serve(p, c, &m, ttl);
}
#endif

/* The exchange cannot go on.  The device connection is dropped; the client
 * gets `status` if no response head went out yet (status 0: nothing), and
 * is closed.  Returns 1 (something changed). */
static int
exchange_fail(rp_proxy *p, rp_conn *c, int status)
{
#if RP_ENABLE_CACHE
    if (stale_rescue(p, c, status))
        return 1;
    cache_release(p, c);
#endif
    if (!(c->flags & F_RESP_HEAD) && status) {
        error_write(p, c, status);
        c->status = status;
    }
    access_log(p, c);
    closing_begin(p, c); /* drops the device connection */
    return 1;
}

/* A refusal before any device is involved (bad request, no route). */
static int
reply_error(rp_proxy *p, rp_conn *c, int status)
{
    if (status < 500 || status == 501 || status == 505)
        p->stats.bad_requests++;
    RP_LOG(RP_LOG_INFO, ("refused request: %d %s", status, reason_for(status)));
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
    rp_device *dv = &p->cfg.devices[dev];
    rp_conn *d = p->idle[dev];
    if (d) {
        p->idle[dev] = d->next;
        dv->idle--;
        dv->active++;
        d->flags = (d->flags & (F_WBLOCK)) | F_REUSED;
        d->state = DS_BUSY;
        p->stats.device_reuses++;
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

/* The stored validators of the entry being revalidated, or NULL. */
static RP_NOINLINE const rp_str *
revalidators(rp_proxy *p, const rp_conn *c, char *buf, rp_str *cond)
{
#if RP_ENABLE_CACHE
    const centry *e = &p->cache.e[c->centry];
    size_t n = (size_t)e->etag_len + e->lm_len;
    if (!c->centry || !(c->cflags & CF_REVAL) || n > 512)
        return NULL;
    chain_get(p, &e->meta, (size_t)e->key_len + e->vary_len, buf, n);
    cond[0].p = buf, cond[0].n = e->etag_len;
    cond[1].p = buf + e->etag_len, cond[1].n = e->lm_len;
    return cond;
#else
    (void)p, (void)c, (void)buf, (void)cond;
    return NULL;
#endif
}

/* Find a device and send it the request head; m is NULL on a retry (the
 * head is parsed again from the held bytes). */
static int
dispatch(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_pool *pl = &p->cfg.pools[p->cfg.routes[c->route].pool];
    rp_http_msg again;
    rp_conn *d;
    rp_str cond[2];
    char vbuf[512];
    int dev, rc;
    if (!m) {
        if (rp_http_parse_request(c->in.d + c->in.r, c->head_len, &again) != RP_OK)
            return exchange_fail(p, c, 502);
        m = &again;
    }
    for (;;) {
        if ((dev = pool_pick(p, pl, c->tried)) < 0)
            return exchange_fail(p, c, c->tries ? 502 : 503);
        rc = device_get(p, dev, &d);
        if (rc == RP_OK)
            break;
        if (rc == RP_ENOMEM)
            return exchange_fail(p, c, 503);
        device_fail(p, dev, rc); /* nothing reached it: on to the next, free */
        c->tried |= 1u << dev;
        c->tries |= 0x80;        /* remember that a device failed */
    }
    c->link = d;
    d->link = c;
    c->device = (uint8_t)dev;
    if (request_head_write(p, c, d, m, revalidators(p, c, vbuf, cond)) != RP_OK)
        return exchange_fail(p, c, 431);
    return 1;
}

/* The device connection failed or timed out: `connecting` when the connect
 * itself did (nothing reached the device: any method may be retried), else
 * only an idempotent request whose head is still held -- none once a
 * response head came. */
static int
device_failed(rp_proxy *p, rp_conn *c, rp_conn *d, int err, int connecting)
{
    const rp_pool *pl = &p->cfg.pools[p->cfg.routes[c->route].pool];
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
    if ((c->flags & F_HOLD) &&
        (connecting || ((c->tries & 0x7f) < pl->retries && (stale || err != RP_ETIMEDOUT) &&
                        (c->flags & F_IDEMP)))) {
        c->tries = (uint8_t)((c->tries | 0x80) + !connecting);
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

#if RP_ENABLE_STATUS
static int status_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m);
#endif

#if RP_ENABLE_REDIRECT
/* `redirect_https`: 301 to the same host and target on the TLS port. */
static int
redirect_reply(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_config *cf = &p->cfg;
    unsigned port = cf->listeners[c->lsn].redirect_port;
    int i;
    wbuf w;
    for (i = 0; !port && i < cf->nlisteners; i++)
        if (cf->listeners[i].tls)
            port = cf->listeners[i].addr.port;
    if (!(m->flags & RP_HF_HOST) || !m->host.n)
        return reply_error(p, c, 400);
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
        return reply_error(p, c, 414);
    SENT(c, w.n);
    c->status = 301;
    access_log(p, c);
    closing_begin(p, c);
    return 1;
}
#endif

#if RP_ENABLE_CACHE
/* Look request m up on a cache route.  Returns 0 to go to a device (a
 * miss, or a revalidation with c->centry pinned), else what the answer
 * from the cache, the 504 of only-if-cached or the wait returned. */
static int
cache_request(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    unsigned hit, filling, variants, cf;
    int64_t ttl;
    cc_t rq;
    int use;
    c->cflags &= CF_COLLAPSED;
    if (!p->cfg.routes[c->route].cache)
        return c->cflags = 0;
    c->cflags |= CF_ON;
    c->chost = fnv(FNV0, m->host.p, m->host.n, 1);
    c->ckey = key_hash(c->chost, m->target);
    if (c->mode != M_NONE || !(c->flags & (F_HEAD | F_GET)))
        return 0;
    c->cflags |= CF_LOOKUP;
    cc_of(m, &rq);
    if (rq.f & CC_NO_STORE)
        c->cflags |= CF_NOSTORE;
    if (has_field(m, H_AUTHORIZATION))
        c->cflags |= CF_AUTH;
    if ((hit = cache_find(p, c->ckey, m->host, m, &filling, &variants)) != 0) {
        cf = c->cflags;
        use = entry_use(p, &p->cache.e[hit], &rq, &cf, &ttl);
        c->cflags = (uint16_t)cf;
        entry_pin(p, c, hit);
        if (use != USE_REVALIDATE)
            return hit_serve(p, c, m, ttl);
        if (!(rq.f & CC_ONLY_IF_CACHED)) {
            if (c->flags & F_HEAD)
                entry_unpin(p, c); /* a HEAD is passed on as it is */
            c->cflags |= CF_REVAL;
            p->stats.cache_misses++;
            return 0;
        }
    }
    if (rq.f & CC_ONLY_IF_CACHED)
        return reply_error(p, c, 504);
    if (filling && !(c->cflags & CF_COLLAPSED)) {
        c->cflags |= CF_COLLAPSED;
        c->state = CS_CWAIT;
        p->stats.cache_collapsed++;
        return 1;
    }
    p->stats.cache_misses++;
    if (!filling && !(c->flags & F_HEAD) && !(c->cflags & CF_NOSTORE))
        fill_begin(p, c, m->host, m->target);
    return 0;
}

/* A collapsed miss stops waiting (the fill ended or lock_timeout passed):
 * look again, then go to a device if still nothing. */
static void
cache_resume(rp_proxy *p, rp_conn *c)
{
    rp_http_msg m;
    c->state = CS_FWD;
    if (held_request(c, &m) != RP_OK)
        exchange_fail(p, c, 502);
    else if (cache_request(p, c, &m) == 0)
        dispatch(p, c, &m);
}
#endif

static int
exchange_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m, size_t head_len)
{
    rp_str meth = m->method;
    uint32_t mf;
    int keep, route;
#if RP_ENABLE_CACHE
    int rc;
#endif
    c->flags &= ~F_EXCHANGE;
    if ((mf = method_flags(meth)) == MF_CONNECT)
        return reply_error(p, c, 405);
    c->flags |= mf;
    if (m->minor == 0)
        c->flags |= F_HTTP10;
    keep = m->minor ? !(m->flags & RP_HF_CONN_CLOSE)
                    : (m->flags & RP_HF_CONN_KEEP) && !(m->flags & RP_HF_CONN_CLOSE);
    if (keep && !p->stopping)
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
#if RP_ENABLE_REDIRECT
    if (p->cfg.listeners[c->lsn].redirect)
        return redirect_reply(p, c, m);
#endif
#if RP_ENABLE_STATUS
    if (p->cfg.status_path && path_is(m->target, p->cfg.status_path))
        return status_begin(p, c, m);
#endif
    if ((route = route_match(&p->cfg, m->host, m->target)) < 0)
        return reply_error(p, c, 404);
    c->route = (uint8_t)route;
    c->flags |= F_HOLD;
    c->state = CS_FWD;
#if RP_ENABLE_CACHE
    if ((rc = cache_request(p, c, m)) != 0)
        return rc;
#endif
    return dispatch(p, c, m);
}

static int
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
            return reply_error(p, c, memchr(c->in.d + c->in.r, '\n', len) ? 431 : 414);
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
        return reply_error(p, c, 400);
    if (n > RP_MAX_HEAD)
        return reply_error(p, c, 431);
    rc = rp_http_parse_request(c->in.d + c->in.r, (size_t)n, &m);
#if RP_ENABLE_ACCESS_LOG
    copy_cstr(c->method, sizeof(c->method), m.method);
    copy_cstr(c->target, sizeof(c->target), m.target);
#endif
    if (rc != RP_OK)
        return reply_error(p, c, status_for(rc));
    return exchange_begin(p, c, &m, (size_t)n);
}

#if RP_ENABLE_CACHE
#define TEE(c, s, n) ((c) && (c)->cfill && (n) ? fill_append(p, (c), (s), (n)) : (void)0)
#else
#define TEE(c, s, n) ((void)(c))
#endif

/* Move body bytes framed by f's mode from src to dst.  Returns the bytes
 * consumed from src, or RP_EINVAL for broken chunked framing; *done is set
 * when the body ended.  tee: a client whose cache fill gets a copy of the
 * body's data bytes. */
static long
body_move(rp_proxy *p, rp_buf *dst, rp_buf *src, rp_conn *f, int *done, rp_conn *tee)
{
    size_t n, total = 0;
    *done = 0;
    switch (f->mode) {
    case M_NONE:
        *done = 1;
        return 0;
    case M_LENGTH:
        n = buf_move(p, dst, src, (size_t)RP_MIN(f->left, (uint64_t)(size_t)-1));
        TEE(tee, dst->d + dst->w - n, n);
        f->left -= n;
        *done = f->left == 0;
        return (long)n;
    case M_CLOSE: case M_TUNNEL:
        return (long)buf_move(p, dst, src, (size_t)-1);
    }
    while (!f->ch.done && buf_len(src)) { /* M_CHUNKED, M_DECHUNK */
        size_t avail = buf_len(src), room = buf_room(p, dst);
        int copy = f->mode == M_CHUNKED || f->ch.state == CH_DATA;
        long k;
        if (copy && (avail = RP_MIN(avail, room)) == 0)
            break;
        if ((k = rp_chunked_step(&f->ch, src->d + src->r, avail)) < 0)
            return RP_EINVAL;
        if (k == 0)
            break;
        if (f->ch.in_data)
            TEE(tee, src->d + src->r, (size_t)k);
        if (f->mode == M_CHUNKED || f->ch.in_data) {
            memcpy(dst->d + dst->w, src->d + src->r, (size_t)k);
            dst->w += (uint32_t)k;
        }
        src->r += (uint32_t)k;
        total += (size_t)k;
    }
    *done = f->ch.done;
    return (long)total;
}

/* The request head held for a retry is not needed any more. */
static void
head_drop(rp_conn *c)
{
    if (c->flags & F_HOLD) {
        c->in.r += c->head_len;
        c->flags &= ~F_HOLD;
    }
}

static int
request_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    int done;
    long n;
    if (c->flags & F_REQ_DONE)
        return 0;
    if ((c->flags & F_HOLD) && buf_len(&c->in) <= c->head_len)
        return 0; /* no body byte yet: keep the head for a retry */
    head_drop(c);
    if ((n = body_move(p, &d->out, &c->in, c, &done, NULL)) < 0)
        return exchange_fail(p, c, 400);
    if (done)
        c->flags |= F_REQ_DONE;
    else if ((c->flags & (F_EOF | F_DEAD)) && !buf_len(&c->in))
        return exchange_fail(p, c, 0); /* client gave up mid-body */
    return n > 0 || done;
}

#if RP_ENABLE_CACHE
/* Location / Content-Location of a response to an unsafe request: the
 * same-host URI it names is invalidated too (RFC 9111 §4.4). */
static void
invalidate_named(rp_proxy *p, const rp_conn *c, const rp_http_msg *m)
{
    size_t i, k;
    for (i = 0; i < m->nheaders; i++) {
        rp_str v = m->headers[i].value;
        int id = m->headers[i].id;
        if (id != H_LOCATION && id != H_CONTENT_LOCATION)
            continue;
        k = v.n >= 7 && str_ieq((rp_str){v.p, 7}, S("http://")) ? 7
          : v.n >= 8 && str_ieq((rp_str){v.p, 8}, S("https://")) ? 8 : 0;
        if (k) { /* absolute: only for the request's own host */
            const char *slash = memchr(v.p + k, '/', v.n - k);
            size_t an = slash ? (size_t)(slash - (v.p + k)) : v.n - k;
            if (fnv(FNV0, v.p + k, an, 1) != c->chost)
                continue;
            v.p += k + an, v.n -= k + an;
            if (!v.n)
                v.p = "/", v.n = 1;
        }
        if (v.n && v.p[0] == '/')
            cache_invalidate(p, key_hash(c->chost, v));
    }
}

/* The device's 304 (or a failure) ends a revalidation: the response the
 * device sent has no body to pass on, its connection goes back. */
static RP_NOINLINE void
device_done(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    d->in.r += (uint32_t)n;
    if (m->minor == 1 && !(m->flags & RP_HF_CONN_CLOSE) && m->status == 304)
        d->flags |= F_KEEP;
    device_ok(p, d->device);
    c->link = NULL;
    device_release(p, d);
}

/* A final response head on a cache route.  Returns 1 when the answer comes
 * from the cache instead (a 304 refreshed the entry, or stale-if-error). */
static RP_NOINLINE int
cache_response(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    rp_http_msg req;
    int s = m->status;
    if (!(c->cflags & CF_LOOKUP)) {
        if (s >= 200 && s < 400 && !(c->flags & F_SAFE)) {
            cache_invalidate(p, c->ckey);
            invalidate_named(p, c, m);
        }
        return 0;
    }
    if (!(c->flags & F_HOLD) ||
        held_request(c, &req) != RP_OK)
        return 0;
    if (c->centry && (c->cflags & CF_REVAL)) {
        if (s == 304) {
            entry_refresh(p, c, m);
            device_done(p, c, d, m, n);
            return hit_serve(p, c, &req, entry_ttl(p, c->centry));
        }
        if (stale_rescue(p, c, s))
            return 1;
        entry_unpin(p, c);
    }
    fill_start(p, c, &req, m);
    return 0;
}
#endif

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
    else if (m->flags & RP_HF_CHUNKED)
        d->mode = (c->flags & F_HTTP10) ? M_DECHUNK : M_CHUNKED;
    else if (m->flags & RP_HF_LENGTH)
        d->mode = M_LENGTH, d->left = (uint64_t)m->content_length;
    else
        d->mode = M_CLOSE;
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
        c->state = CS_TUNNEL;
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
            RP_LOG(RP_LOG_WARN, ("device %d sent a malformed response head", d->device));
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
static RP_NOINLINE void
request_reset(rp_conn *c)
{
    c->flags &= ~F_EXCHANGE;
    c->status = 0;
#if RP_ENABLE_ACCESS_LOG
    c->sent = 0;
#endif
    c->tries = 0;
    c->tried = 0;
    c->device = 0xff;
#if RP_ENABLE_ACCESS_LOG
    c->method[0] = c->target[0] = 0;
#endif
#if RP_ENABLE_CACHE
    c->cflags = 0;
#endif
}

static int
exchange_end(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
#if RP_ENABLE_CACHE
    if (c->cfill && (c->flags & F_RESP_DONE))
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
        c->state = CS_HEAD;
        return 1;
    }
    closing_begin(p, c);
    return 1;
}

#if RP_ENABLE_CACHE
/* A hit's body has gone out: the exchange ends. */
static int
hit_step(rp_proxy *p, rp_conn *c)
{
    rp_http_msg m;
    if (c->flags & F_DEAD)
        return exchange_fail(p, c, 0);
    if (c->cflags & CF_HEADWAIT) {
        if (held_request(c, &m) != RP_OK ||
            !hit_begin(p, c, &m, entry_ttl(p, c->centry)))
            return 0;
        c->cflags &= (uint16_t)~CF_HEADWAIT;
    }
    if (c->cleft)
        return 0;
    c->flags |= F_RESP_DONE;
    return exchange_end(p, c);
}
#endif

static int
response_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    size_t had = buf_len(&c->out);
    int done;
    long n = body_move(p, &c->out, &d->in, d, &done, c);
    SENT(c, buf_len(&c->out) - had); /* what went to the client: compacting keeps lengths */
    if (n < 0)
        return exchange_fail(p, c, 502);
    if (d->mode == M_CLOSE && (d->flags & F_EOF) && !buf_len(&d->in))
        done = 1;
    if (done) {
        c->flags |= F_RESP_DONE;
        return 1;
    }
    if ((d->flags & (F_EOF | F_DEAD)) && !buf_len(&d->in)) {
        RP_LOG(RP_LOG_WARN, ("device %d closed mid-response", d->device));
        device_fail(p, d->device, RP_ECLOSED);
        return exchange_fail(p, c, 0); /* never a short body on keep-alive */
    }
    return n > 0;
}

static int
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
static int
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

#if RP_ENABLE_STATUS
static int local_step(rp_proxy *p, rp_conn *c);
#endif

static int
client_step(rp_proxy *p, rp_conn *c)
{
    switch (c->state) {
    case CS_HEAD: return client_head(p, c);
    case CS_FWD: return exchange_step(p, c);
    case CS_TUNNEL: return tunnel_step(p, c);
    case CS_CLOSING: return closing_step(p, c);
#if RP_ENABLE_CACHE
    case CS_CACHE: return hit_step(p, c);
#endif
#if RP_ENABLE_STATUS
    case CS_LOCAL: return local_step(p, c);
#endif
    }
    return 0;
}

/* Move a client and its device connection as far as they go. */
static void
pair_service(rp_proxy *p, rp_conn *c)
{
    int moved;
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
    } while (moved);
    if (c->link)
        conn_settle(p, c->link);
    conn_settle(p, c);
}

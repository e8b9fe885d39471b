/* ==== [12] The exchange state machine ====
 * One exchange = one request and its response.  The client connection
 * drives it; its device connection (c->link) comes from the idle pool or a
 * new connect.  A turn reads what the port reported, moves bytes between the
 * four buffers as far as framing and space allow, and writes; it repeats
 * while anything moved.  The request head stays in the client's buffer
 * (F_HOLD) until body bytes or a response make a retry unsafe. */

static void
access_log(rp_proxy *p, rp_conn *c)
{
    rp_access a;
    const rp_addr *dev = c->device < RP_MAX_DEVICES && c->device < p->cfg.ndevices
                             ? &p->cfg.devices[c->device].addr : NULL;
    if (c->status >= 100 && c->status < 600)
        p->stats.responses[c->status / 100]++;
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
}

/* The exchange cannot go on.  The device connection is dropped; the client
 * gets `status` if no response head went out yet (status 0: nothing), and
 * is closed.  Returns 1 (something changed). */
static int
exchange_fail(rp_proxy *p, rp_conn *c, int status)
{
    if (c->link)
        conn_free(p, c->link);
    if (!(c->flags & F_RESP_HEAD) && status) {
        error_write(p, c, status);
        c->status = status;
    }
    access_log(p, c);
    closing_begin(p, c);
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
        d->sock = -1;
        dv->active++; /* conn_free below gives it back */
        if ((s = rp_port_connect(&dv->addr)) < 0) {
            conn_free(p, d);
            return s;
        }
        dv->active--;
        d->sock = s;
        d->peer = dv->addr;
        p->stats.device_connects++;
#if RP_ENABLE_TLS && RP_ENABLE_TLS_DEVICE
        if (dv->tls && (d->tls = tls_take_client(p, dv)) == NULL) {
            p->stats.tls_refused++;
            dv->active++;
            conn_free(p, d);
            return RP_ENOMEM;
        }
#endif
    }
    d->next = NULL;
    d->device = (uint8_t)dev;
    d->scan = 0;
    d->mode = M_NONE;
    d->left = 0;
    memset(&d->ch, 0, sizeof(d->ch));
    dv->active++;
    dv->requests++;
    *out = d;
    return RP_OK;
}

/* Find a device and send it the request head; m is NULL on a retry (the
 * head is parsed again from the held bytes). */
static int
dispatch(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_pool *pl = &p->cfg.pools[p->cfg.routes[c->route].pool];
    rp_http_msg again;
    rp_conn *d;
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
    if (request_head_write(p, c, d, m) != RP_OK)
        return exchange_fail(p, c, 431);
    return 1;
}

/* The device connection failed before a response head: `connecting` when
 * the connect itself failed (nothing reached the device: any method may be
 * retried), else only an idempotent request whose head is still held. */
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

static int
is_method(rp_str m, const char *lit, size_t n)
{
    return m.n == n && memcmp(m.p, lit, n) == 0;
}

static void
copy_cstr(char *dst, size_t cap, rp_str s)
{
    size_t n = RP_MIN(s.n, cap - 1);
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = 0;
}

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
    c->sent += w.n;
    c->status = 301;
    access_log(p, c);
    closing_begin(p, c);
    return 1;
}

static int
exchange_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m, size_t head_len)
{
    rp_str meth = m->method;
    int keep, route;
    c->flags &= ~F_EXCHANGE;
    if (is_method(meth, S("CONNECT")))
        return reply_error(p, c, 405);
    if (is_method(meth, S("HEAD")))
        c->flags |= F_HEAD;
    if (is_method(meth, S("GET")) || is_method(meth, S("HEAD")) ||
        is_method(meth, S("OPTIONS")) || is_method(meth, S("PUT")) ||
        is_method(meth, S("DELETE")) || is_method(meth, S("TRACE")))
        c->flags |= F_IDEMP;
    if (m->minor == 0)
        c->flags |= F_HTTP10;
    keep = m->minor ? !(m->flags & RP_HF_CONN_CLOSE)
                    : (m->flags & RP_HF_CONN_KEEP) && !(m->flags & RP_HF_CONN_CLOSE);
    if (keep && !p->stopping)
        c->flags |= F_KEEP;
    if ((m->flags & RP_HF_UPGRADE) && (m->flags & RP_HF_CONN_UPG) && m->minor == 1)
        c->flags |= F_UPG;
    memset(&c->ch, 0, sizeof(c->ch));
    c->left = 0;
    if (m->flags & RP_HF_CHUNKED)
        c->mode = M_CHUNKED;
    else if (m->content_length > 0)
        c->mode = M_LENGTH, c->left = (uint64_t)m->content_length;
    else
        c->mode = M_NONE, c->flags |= F_REQ_DONE;
    c->head_len = (uint32_t)head_len;
    if (p->cfg.listeners[c->lsn].redirect)
        return redirect_reply(p, c, m);
#if RP_ENABLE_STATUS
    if (p->cfg.status_path && path_is(m->target, p->cfg.status_path))
        return status_begin(p, c, m);
#endif
    if ((route = route_match(&p->cfg, m->host, m->target)) < 0)
        return reply_error(p, c, 404);
    c->route = (uint8_t)route;
    c->flags |= F_HOLD;
    c->state = CS_FWD;
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
    copy_cstr(c->method, sizeof(c->method), m.method);
    copy_cstr(c->target, sizeof(c->target), m.target);
    if (rc != RP_OK)
        return reply_error(p, c, status_for(rc));
    return exchange_begin(p, c, &m, (size_t)n);
}

static int
request_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    uint64_t out = 0;
    int done;
    long n;
    if (c->flags & F_REQ_DONE)
        return 0;
    if (c->flags & F_HOLD) {
        if (buf_len(&c->in) <= c->head_len)
            return 0; /* no body byte yet: keep the head for a retry */
        c->in.r += c->head_len;
        c->flags &= ~F_HOLD;
    }
    if ((n = body_move(p, &d->out, &c->in, c, &done, &out)) < 0)
        return exchange_fail(p, c, 400);
    if (done)
        c->flags |= F_REQ_DONE;
    else if ((c->flags & (F_EOF | F_DEAD)) && !buf_len(&c->in))
        return exchange_fail(p, c, 0); /* client gave up mid-body */
    return n > 0 || done;
}

/* The device's final response head is parsed: choose the body framing,
 * decide both connections' fate, queue the client's head. */
static int
response_begin(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    if (m->status == 101 && !(c->flags & F_UPG))
        return exchange_fail(p, c, 502);
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
    if (c->flags & F_HOLD) {
        c->in.r += c->head_len;
        c->flags &= ~F_HOLD;
    }
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
            w_put(&w, S("HTTP/1.1 "));
            w_num(&w, (uint64_t)m.status);
            w_put(&w, " ", 1);
            w_str(&w, m.reason);
            w_put(&w, S("\r\n\r\n"));
            buf_commit(&c->out, &w);
        }
        d->in.r += (uint32_t)n;
        moved = 1;
    }
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
        buf_release(p, &d->in, 0);
        buf_release(p, &d->out, 0);
        d->next = p->idle[d->device];
        p->idle[d->device] = d;
        dv->active--;
        dv->idle++;
        conn_rearm(p, d);
        return;
    }
    conn_free(p, d);
}

/* Forget the finished request: flags, status and log fields. */
static void
request_reset(rp_conn *c)
{
    c->flags &= ~F_EXCHANGE;
    c->status = 0;
    c->sent = 0;
    c->tries = 0;
    c->tried = 0;
    c->device = 0xff;
    c->method[0] = c->target[0] = 0;
}

static int
exchange_end(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
    access_log(p, c);
    c->link = NULL;
    if (d) {
        if (!(c->flags & F_REQ_DONE))
            d->flags &= ~F_KEEP;
        device_release(p, d);
    }
    if (c->flags & F_HOLD)
        c->in.r += c->head_len;
    c->flags &= ~F_HOLD;
    c->flags |= F_SERVED;
    if ((c->flags & F_KEEP) && !p->stopping) {
        request_reset(c);
        c->state = CS_HEAD;
        return 1;
    }
    closing_begin(p, c);
    return 1;
}

static int
response_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    int done;
    long n = body_move(p, &c->out, &d->in, d, &done, &c->sent);
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
        conn_free(p, d);
        closing_begin(p, c);
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
    buf_release(p, &c->in, 0);
    buf_release(p, &c->out, 0);
    if (c->link) {
        buf_release(p, &c->link->in, 0);
        buf_release(p, &c->link->out, 0);
        conn_rearm(p, c->link);
    }
    conn_rearm(p, c);
}

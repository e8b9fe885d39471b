/* ==== [15] The cache in the exchange: lookup, hits, revalidation, storing ====
 * A request on a cache route is looked up before any device is chosen: a
 * usable entry answers it (CS_CACHE: the head is queued, the body goes
 * from the arena), a stale one is revalidated with a conditional request,
 * a miss waits for a fill in progress (CS_CWAIT) or starts one.  A final
 * response on a cache route may refresh the entry (304), be served stale on
 * a device error (stale-if-error), invalidate (unsafe methods) or start a
 * fill.
 * Owns: the client's CF_ flags.  Calls: [4] [11] [12] [13].
 * Called by: [13] (exchange_begin, response_begin, dispatch), [9]
 * (client_step: CS_CACHE; conn_timeout: CS_CWAIT). */
#include "rp_int.h"

#if RP_ENABLE_CACHE

/* The request head held in the client's buffer (HELD), parsed again. */
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
    conn_state(c, CS_CACHE);
    c->flags |= F_REQ_DONE | F_RESP_HEAD;
    if (!hit_begin(p, c, m, ttl))
        c->cflags |= CF_HEADWAIT; /* a previous response still fills `out` */
    return 1;
}

/* The device failed while a stale entry was being revalidated: serve it
 * if its stale-if-error allows (RFC 5861), never past must-revalidate. */
int
stale_rescue(rp_proxy *p, rp_conn *c, int status)
{
    const centry *e;
    rp_http_msg m;
    cc_t rq;
    int ttl;
    if (!c->centry || !(c->cflags & CF_REVAL) || (c->flags & F_RESP_HEAD) ||
        !HELD(c) || status < 500 || status == 501 || status > 504)
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

/* The stored validators of the entry being revalidated, or NULL. */
RP_NOINLINE const rp_str *
revalidators(rp_proxy *p, const rp_conn *c, char *buf, rp_str *cond)
{
    const centry *e = &p->cache.e[c->centry];
    size_t n = (size_t)e->etag_len + e->lm_len;
    if (!c->centry || !(c->cflags & CF_REVAL) || n > 512)
        return NULL;
    chain_get(p, &e->meta, (size_t)e->key_len + e->vary_len, buf, n);
    cond[0].p = buf, cond[0].n = e->etag_len;
    cond[1].p = buf + e->etag_len, cond[1].n = e->lm_len;
    return cond;
}

/* Look request m up on a cache route.  Returns 0 to go to a device (a
 * miss, or a revalidation with c->centry pinned), else what the answer
 * from the cache, the 504 of only-if-cached or the wait returned. */
int
cache_request(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    unsigned hit, filling, variants, cf;
    int64_t ttl;
    cc_t rq;
    int use;
    c->cflags &= CF_COLLAPSED;
    if (!CFG(p)->routes[c->route].cache)
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
        return reply_error(p, c, 504, "only-if-cached and not in the cache");
    if (filling && !(c->cflags & CF_COLLAPSED)) {
        c->cflags |= CF_COLLAPSED;
        conn_state(c, CS_CWAIT);
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
void
cache_resume(rp_proxy *p, rp_conn *c)
{
    rp_http_msg m;
    conn_state(c, CS_FWD);
    if (held_request(c, &m) != RP_OK)
        exchange_fail(p, c, 502);
    else if (cache_request(p, c, &m) == 0)
        dispatch(p, c, &m);
}

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
RP_NOINLINE int
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
    if (!HELD(c) ||
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

/* A hit's body has gone out: the exchange ends. */
int
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

#endif /* RP_ENABLE_CACHE */

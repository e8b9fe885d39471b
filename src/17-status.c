/* ==== [17] The status page ====
 * The status page is answered by rproxy itself, item by item as the
 * client's buffer has room (chunked), so it fits any RP_BUF_SIZE: JSON, or
 * the Prometheus text format with ?format=prometheus.  Only clients inside
 * `allow=` (default: loopback) see it; others get 403 and nothing else.
 * Owns: CS_LOCAL clients.  Calls: [1] [2] (addr_in_net) [3] [7] [9] [13].
 * Called by: [13] (exchange_begin), [9] (client_step: CS_LOCAL). */
#include "rp_int.h"

#if RP_ENABLE_STATUS
static int
status_allowed(const rp_config *c, const rp_addr *a)
{
    static const rp_addr lo4 = {4, {127}, 0}, lo6 = {6, {0, 0, 0, 0, 0, 0, 0, 0,
                                                           0, 0, 0, 0, 0, 0, 0, 1}, 0};
    if (c->nallow == 0)
        return addr_in_net(a, &lo4, 8) || addr_in_net(a, &lo6, 128);
    return addr_in_nets(a, c->allow, c->nallow);
}

#if RP_ENABLE_RUNTIME
static const char *const admin_names[] = {"ready", "drain", "maint"}; /* RP_ADMIN_* */
#endif

static const char *
device_state(const rp_proxy *p, const rp_device *d)
{
    if (d->weight == 0)
        return "disabled";
    if (!device_is_up(p, d))
        return "down";
    return d->backup ? "backup" : "up";
}

/* The n-th device in pool order, and where it sits in its pool. */
static const rp_device *
status_device(const rp_config *c, uint64_t n, int *pool, int *pos)
{
    int i;
    for (i = 0; i < c->npools; i++) {
        if (n < c->pools[i].ndevices) {
            *pool = i, *pos = (int)n;
            return &c->devices[c->pools[i].devices[n]];
        }
        n -= c->pools[i].ndevices;
    }
    return NULL;
}

static void
json_num(wbuf *w, const char *key, uint64_t v, int comma)
{
    if (comma)
        w_put(w, ",", 1);
    w_put(w, "\"", 1);
    w_cstr(w, key);
    w_put(w, S("\":"));
    w_num(w, v);
}

static void
json_str(wbuf *w, const char *key, const char *v)
{
    w_put(w, S(",\""));
    w_cstr(w, key);
    w_put(w, S("\":\""));
    w_cstr(w, v);
    w_put(w, "\"", 1);
}

static void
json_device(const rp_proxy *p, const rp_device *d, wbuf *w)
{
    w_put(w, S("{\"addr\":\""));
    w_dev_addr(w, d); /* a named device's current address ("" before one) */
    w_put(w, "\"", 1);
#if RP_ENABLE_DNS
    if (d->name) {
        json_str(w, "name", d->name);
        json_str(w, "resolve", d->resolving ? "pending" : d->resolve_bad ? "failing" : "ok");
        json_num(w, "resolves", d->resolves, 1);
        json_num(w, "resolve_failures", d->resolve_fails, 1);
    }
#endif
    json_str(w, "state", device_state(p, d));
#if RP_ENABLE_RUNTIME
    json_str(w, "admin", admin_names[d->admin]);
#endif
    json_num(w, "weight", d->weight, 1);
    json_num(w, "effective_weight", (uint64_t)d->effective, 1);
    json_num(w, "active", d->active, 1);
    json_num(w, "idle", d->idle, 1);
#if RP_ENABLE_LIMITS
    json_num(w, "max_conns", d->max_conns, 1);
    json_num(w, "max_idle", d->max_idle ? d->max_idle : d->max_conns, 1);
#endif
    json_num(w, "requests", d->requests, 1);
    json_num(w, "failures", d->failures, 1);
    json_str(w, "last_failure", d->last_err ? rp_strerror(d->last_err) : "");
    json_str(w, "health", !CFG(p)->pools[d->pool].health ? "none" : d->hc_down ? "down" : "up");
    json_num(w, "probes", d->probes, 1);
    json_num(w, "probe_failures", d->probe_failures, 1);
    w_put(w, "}", 1);
}

#if RP_ENABLE_ACL || RP_ENABLE_AUTH || RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_PROXY_PROTOCOL
#include <stddef.h>
/* The front door's counters ([22]): the JSON key (Prometheus: rproxy_KEY_total). */
#define GUARD(f) {#f, offsetof(rp_stats, f)}
static const struct {
    const char *name;
    size_t off;
} guard_counters[] = {
#if RP_ENABLE_ACL
    GUARD(acl_denied),
#endif
#if RP_ENABLE_AUTH
    GUARD(auth_failures), GUARD(auth_locked), GUARD(auth_cache_hits),
#endif
#if RP_ENABLE_CLIENT_LIMIT
    GUARD(limit_conns), GUARD(limit_rate),
#endif
#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
    GUARD(client_table_full),
#endif
#if RP_ENABLE_PROXY_PROTOCOL
    GUARD(proxy_refused),
#endif
};
#define GUARD_VAL(st, i) (*(const rp_counter *)((const char *)(st) + guard_counters[i].off))
#endif

#if RP_ENABLE_SHARE
static const char *const stream_kinds[] = {"multipart", "event-stream", "other"};

/* ,"share":{counters,"streams":[...]}: the live shared streams. */
static void
json_share(const rp_proxy *p, wbuf *w)
{
    const rp_stats *st = &p->stats;
    int i, n = 0;
    w_put(w, S(",\"share\":{"));
    json_num(w, "streams_started", st->share_streams, 0);
    json_num(w, "joins", st->share_joins, 1);
    json_num(w, "drops", st->share_drops, 1);
    json_num(w, "full", st->share_full, 1);
    w_put(w, S(",\"streams\":["));
    for (i = 0; i < RP_MAX_STREAMS; i++) {
        const struct rp_stream *s = &p->streams[i];
        size_t k;
        if (s->state == SS_FREE)
            continue;
        if (n++)
            w_put(w, ",", 1);
        w_put(w, S("{\"url\":\""));
        for (k = 0; k < s->url_len && k < 200; k++) {
            char ch = s->url[k];
            if (ch == '"' || ch == '\\')
                w_put(w, "\\", 1);
            w_put(w, (unsigned char)ch < 0x20 ? "?" : &ch, 1);
        }
        w_put(w, "\"", 1);
        json_str(w, "state", s->state == SS_PENDING ? "opening" : s->state == SS_LIVE ? "live" : "ended");
        json_str(w, "kind", stream_kinds[s->kind]);
        json_num(w, "viewers", s->viewers, 1);
        json_num(w, "bytes_in", s->wpos, 1);
        json_num(w, "bytes_out", s->bytes_out, 1);
        json_num(w, "dropped", s->drops, 1);
        w_put(w, "}", 1);
    }
    w_put(w, S("]}"));
}
#endif

/* Item k of the JSON page; 0 when there is none. */
static int
status_json(rp_proxy *p, uint64_t k, wbuf *w)
{
    const rp_stats *st = &p->stats;
    const rp_device *d;
    int pool, pos;
    if (k == 0) {
        w_put(w, S("{\"version\":\"" RP_VERSION "\""));
        json_num(w, "uptime_ms", p->now - p->t_started, 1);
        json_num(w, "accepted", st->accepted, 1);
        json_num(w, "refused_conns", st->refused_conns, 1);
        json_num(w, "active_clients", (uint64_t)rp_active(p), 1);
        json_num(w, "requests", st->requests, 1);
        json_num(w, "bad_requests", st->bad_requests, 1);
        json_num(w, "responses_2xx", st->responses[2], 1);
        json_num(w, "responses_4xx", st->responses[4], 1);
        json_num(w, "responses_5xx", st->responses[5], 1);
#ifdef GUARD
        w_put(w, S(",\"guard\":{"));
        for (pos = 0; pos < (int)RP_COUNT(guard_counters); pos++)
            json_num(w, guard_counters[pos].name, GUARD_VAL(st, pos), pos > 0);
        w_put(w, "}", 1);
#endif
#if RP_ENABLE_TURN_STATS
        {
            const rp_turn *t = &p->loop.longest;
            w_put(w, S(",\"loop\":{\"turns\":"));
            w_num(w, p->loop.turns);
            json_num(w, "bounded", p->loop.bounded, 1);
            json_num(w, "max_events", RP_TURN_MAX_EVENTS, 1);
            json_num(w, "max_bytes", RP_TURN_MAX_BYTES, 1);
            w_put(w, S(",\"longest\":{\"ms\":"));
            w_num(w, t->ms);
            json_num(w, "at_ms", t->at_ms, 1);
            json_num(w, "events", t->events, 1);
            json_num(w, "left", t->left, 1);
            json_num(w, "bytes", t->bytes, 1);
            json_num(w, "tls_steps", t->tls_steps, 1);
            json_num(w, "timers", t->timers, 1);
            w_put(w, S("}}"));
        }
#endif
        return 1;
    }
    if (k == 1) {
        json_num(w, "device_connects", st->device_connects, 1);
        json_num(w, "device_reuses", st->device_reuses, 1);
        json_num(w, "device_errors", st->device_errors, 1);
        json_num(w, "retries", st->retries, 1);
        json_num(w, "timeouts", st->timeouts, 1);
        json_num(w, "tunnels", st->tunnels, 1);
        json_num(w, "tls_handshakes", st->tls_handshakes, 1);
        json_num(w, "tls_failures", st->tls_failures, 1);
        json_num(w, "tls_refused", st->tls_refused, 1);
#if RP_ENABLE_RELOAD
        w_put(w, S(",\"reload\":{\"generation\":"));
        w_num(w, p->reload.generation);
        json_num(w, "reloads", p->reload.reloads, 1);
        json_num(w, "failures", p->reload.failures, 1);
        json_num(w, "draining", (uint64_t)rp_config_draining(p), 1);
        w_put(w, "}", 1);
#endif
#if RP_ENABLE_CACHE
        w_put(w, S(",\"cache\":{\"entries\":"));
        w_num(w, p->cache.nentries);
        json_num(w, "bytes_used", (uint64_t)p->cache.nblk_used * RP_CACHE_BLOCK, 1);
        json_num(w, "bytes_total", RP_CACHE_BYTES, 1);
        json_num(w, "hits", st->cache_hits, 1);
        json_num(w, "misses", st->cache_misses, 1);
        json_num(w, "revalidated", st->cache_revalidated, 1);
        json_num(w, "stores", st->cache_stores, 1);
        json_num(w, "evictions", st->cache_evictions, 1);
        json_num(w, "store_failures", st->cache_store_failures, 1);
        json_num(w, "collapsed", st->cache_collapsed, 1);
        json_num(w, "invalidations", st->cache_invalidations, 1);
        w_put(w, "}", 1);
#endif
        w_put(w, S(",\"pools\":["));
        return 1;
    }
    if ((d = status_device(CFG(p), k - 2, &pool, &pos)) == NULL) {
        if (k - 2 > CFG(p)->ndevices)
            return 0;
#if RP_ENABLE_SHARE
        w_put(w, "]", 1);
        json_share(p, w);
        w_put(w, S("}\n"));
#else
        w_put(w, S("]}\n"));
#endif
        return 1;
    }
    if (pos == 0) {
        const rp_pool *pl = &CFG(p)->pools[pool];
        w_put(w, pool ? ",{" : "{", pool ? 2 : 1);
        w_put(w, S("\"name\":\""));
        w_cstr(w, pl->name);
        w_put(w, "\"", 1);
        json_str(w, "balance", pl->balance == RP_BALANCE_LEASTCONN ? "leastconn" : "wrr");
        json_num(w, "retries", pl->retries, 1);
#if RP_ENABLE_LIMITS
        json_num(w, "queue_max", pl->queue_max, 1);
        json_num(w, "queued", pl->queued, 1);
        json_num(w, "queued_peak", pl->queued_peak, 1);
        json_num(w, "queue_timeouts", pl->queue_timeouts, 1);
        json_num(w, "queue_full", pl->queue_full, 1);
#endif
        w_put(w, S(",\"devices\":["));
    } else {
        w_put(w, ",", 1);
    }
    json_device(p, d, w);
    if (pos == CFG(p)->pools[pool].ndevices - 1)
        w_put(w, S("]}"));
    return 1;
}

static const struct {
    const char *name, *type;
} prom_metrics[] = {
    {"rproxy_device_up", "gauge"},
    {"rproxy_device_weight", "gauge"},
    {"rproxy_device_effective_weight", "gauge"},
    {"rproxy_device_active_connections", "gauge"},
    {"rproxy_device_idle_connections", "gauge"},
    {"rproxy_device_requests_total", "counter"},
    {"rproxy_device_failures_total", "counter"},
    {"rproxy_device_probe_failures_total", "counter"},
#if RP_ENABLE_LIMITS
    {"rproxy_device_max_connections", "gauge"},
#endif
#if RP_ENABLE_RUNTIME
    {"rproxy_device_admin_state", "gauge"}, /* 0 ready, 1 drain, 2 maint */
#endif
};

#if RP_ENABLE_LIMITS
static const struct {
    const char *name, *type;
} prom_pool_metrics[] = {
    {"rproxy_pool_queued", "gauge"},
    {"rproxy_pool_queued_peak", "gauge"},
    {"rproxy_pool_queue_timeouts_total", "counter"},
    {"rproxy_pool_queue_full_total", "counter"},
};

/* Pool metric m of pool i, one sample; its TYPE line before the first. */
static void
prom_pool(const rp_proxy *p, uint64_t m, int i, wbuf *w)
{
    const rp_pool *pl = &CFG(p)->pools[i];
    uint64_t v[RP_COUNT(prom_pool_metrics)];
    v[0] = pl->queued, v[1] = pl->queued_peak, v[2] = pl->queue_timeouts, v[3] = pl->queue_full;
    if (i == 0) {
        w_put(w, S("# TYPE "));
        w_cstr(w, prom_pool_metrics[m].name);
        w_put(w, " ", 1);
        w_cstr(w, prom_pool_metrics[m].type);
        w_put(w, "\n", 1);
    }
    w_cstr(w, prom_pool_metrics[m].name);
    w_put(w, S("{pool=\""));
    w_cstr(w, pl->name);
    w_put(w, S("\"} "));
    w_num(w, v[m]);
    w_put(w, "\n", 1);
}
#endif

static void
prom_global(wbuf *w, const char *name, const char *type, uint64_t v)
{
    w_put(w, S("# TYPE "));
    w_cstr(w, name);
    w_put(w, " ", 1);
    w_cstr(w, type);
    w_put(w, "\n", 1);
    w_cstr(w, name);
    w_put(w, " ", 1);
    w_num(w, v);
    w_put(w, "\n", 1);
}

/* Item k of the Prometheus page: globals, then one sample per device and
 * metric, grouped by metric as the format wants. */
static int
status_prom(rp_proxy *p, uint64_t k, wbuf *w)
{
    const rp_stats *st = &p->stats;
    uint64_t nd = CFG(p)->ndevices, m, di;
    const rp_device *d;
    uint64_t v[RP_COUNT(prom_metrics)];
    int i;
    if (k == 0) {
        prom_global(w, "rproxy_uptime_seconds", "gauge", (p->now - p->t_started) / 1000);
        prom_global(w, "rproxy_connections_accepted_total", "counter", st->accepted);
        prom_global(w, "rproxy_connections_refused_total", "counter", st->refused_conns);
        prom_global(w, "rproxy_requests_total", "counter", st->requests);
        prom_global(w, "rproxy_bad_requests_total", "counter", st->bad_requests);
        w_put(w, S("# TYPE rproxy_responses_total counter\n"));
        for (i = 1; i < 6; i++) {
            w_put(w, S("rproxy_responses_total{code=\""));
            w_num(w, (uint64_t)i);
            w_put(w, S("xx\"} "));
            w_num(w, st->responses[i]);
            w_put(w, "\n", 1);
        }
#ifdef GUARD
        for (i = 0; i < (int)RP_COUNT(guard_counters); i++) {
            char name[48];
            wbuf nm;
            nm.p = name, nm.n = 0, nm.cap = sizeof(name) - 1, nm.full = 0;
            w_put(&nm, S("rproxy_"));
            w_cstr(&nm, guard_counters[i].name);
            w_put(&nm, S("_total"));
            name[nm.n] = 0;
            prom_global(w, name, "counter", GUARD_VAL(st, i));
        }
#endif
        return 1;
    }
    if (k == 1) {
        prom_global(w, "rproxy_device_connects_total", "counter", st->device_connects);
        prom_global(w, "rproxy_device_reuses_total", "counter", st->device_reuses);
        prom_global(w, "rproxy_retries_total", "counter", st->retries);
        prom_global(w, "rproxy_timeouts_total", "counter", st->timeouts);
        prom_global(w, "rproxy_tls_handshakes_total", "counter", st->tls_handshakes);
        prom_global(w, "rproxy_tls_failures_total", "counter", st->tls_failures);
#if RP_ENABLE_CACHE
        prom_global(w, "rproxy_cache_entries", "gauge", p->cache.nentries);
        prom_global(w, "rproxy_cache_bytes_used", "gauge",
                    (uint64_t)p->cache.nblk_used * RP_CACHE_BLOCK);
        prom_global(w, "rproxy_cache_hits_total", "counter", st->cache_hits);
        prom_global(w, "rproxy_cache_misses_total", "counter", st->cache_misses);
        prom_global(w, "rproxy_cache_revalidated_total", "counter", st->cache_revalidated);
        prom_global(w, "rproxy_cache_stores_total", "counter", st->cache_stores);
        prom_global(w, "rproxy_cache_evictions_total", "counter", st->cache_evictions);
        prom_global(w, "rproxy_cache_store_failures_total", "counter", st->cache_store_failures);
        prom_global(w, "rproxy_cache_collapsed_total", "counter", st->cache_collapsed);
        prom_global(w, "rproxy_cache_invalidations_total", "counter", st->cache_invalidations);
#endif
        return 1;
    }
    k -= 2;
#if RP_ENABLE_SHARE
    if (k == 0) { /* the shared streams */
        uint64_t live = 0, viewers = 0, in = 0, out = 0;
        for (i = 0; i < RP_MAX_STREAMS; i++)
            if (p->streams[i].state == SS_LIVE)
                live++, viewers += p->streams[i].viewers, in += p->streams[i].wpos,
                    out += p->streams[i].bytes_out;
        prom_global(w, "rproxy_share_streams", "gauge", live);
        prom_global(w, "rproxy_share_viewers", "gauge", viewers);
        prom_global(w, "rproxy_share_live_bytes_in", "gauge", in);
        prom_global(w, "rproxy_share_live_bytes_out", "gauge", out);
        prom_global(w, "rproxy_share_streams_started_total", "counter", st->share_streams);
        prom_global(w, "rproxy_share_joins_total", "counter", st->share_joins);
        prom_global(w, "rproxy_share_drops_total", "counter", st->share_drops);
        prom_global(w, "rproxy_share_full_total", "counter", st->share_full);
        return 1;
    }
    k--;
#endif
#if RP_ENABLE_RELOAD
    if (k == 0) { /* reloads (an item of their own) */
        prom_global(w, "rproxy_config_generation", "gauge", p->reload.generation);
        prom_global(w, "rproxy_config_reloads_total", "counter", p->reload.reloads);
        prom_global(w, "rproxy_config_reload_failures_total", "counter", p->reload.failures);
        prom_global(w, "rproxy_config_draining_connections", "gauge",
                    (uint64_t)rp_config_draining(p));
        return 1;
    }
    k--;
#endif
#if RP_ENABLE_TURN_STATS
    if (k == 0) { /* the event loop's turns (an item of their own: item 0 is full) */
        prom_global(w, "rproxy_loop_turns_total", "counter", p->loop.turns);
        prom_global(w, "rproxy_loop_bounded_turns_total", "counter", p->loop.bounded);
        prom_global(w, "rproxy_loop_longest_turn_ms", "gauge", p->loop.longest.ms);
        prom_global(w, "rproxy_loop_longest_turn_events", "gauge", p->loop.longest.events);
        prom_global(w, "rproxy_loop_longest_turn_bytes", "gauge", p->loop.longest.bytes);
        prom_global(w, "rproxy_loop_longest_turn_tls_steps", "gauge", p->loop.longest.tls_steps);
        prom_global(w, "rproxy_loop_longest_turn_timers", "gauge", p->loop.longest.timers);
        return 1;
    }
    k--;
#endif
#if RP_ENABLE_LIMITS
    if (nd && k >= nd * RP_COUNT(prom_metrics)) { /* then the pools' queues */
        uint64_t np = (uint64_t)CFG(p)->npools;
        k -= nd * RP_COUNT(prom_metrics);
        if ((m = k / np) >= RP_COUNT(prom_pool_metrics))
            return 0;
        prom_pool(p, m, (int)(k % np), w);
        return 1;
    }
#endif
    if (nd == 0 || (m = k / nd) >= RP_COUNT(prom_metrics))
        return 0;
    di = k % nd;
    d = &CFG(p)->devices[di];
    v[0] = (uint64_t)device_is_up(p, d), v[1] = d->weight, v[2] = (uint64_t)d->effective;
    v[3] = d->active, v[4] = d->idle, v[5] = d->requests, v[6] = d->failures;
    v[7] = d->probe_failures;
#if RP_ENABLE_RUNTIME
    v[RP_COUNT(prom_metrics) - 1] = d->admin;
#endif
#if RP_ENABLE_LIMITS
    v[8] = d->max_conns;
#endif
    if (di == 0) {
        w_put(w, S("# TYPE "));
        w_cstr(w, prom_metrics[m].name);
        w_put(w, " ", 1);
        w_cstr(w, prom_metrics[m].type);
        w_put(w, "\n", 1);
    }
    w_cstr(w, prom_metrics[m].name);
    w_put(w, S("{pool=\""));
    w_cstr(w, CFG(p)->pools[d->pool].name);
    w_put(w, S("\",device=\""));
    w_dev_id(w, d); /* a named device by NAME:PORT: the label stays when it moves */
    w_put(w, S("\"} "));
    w_num(w, v[m]);
    w_put(w, "\n", 1);
    return 1;
}

#define STATUS_ITEM 1536 /* bytes one page item may take */
#if RP_BUF_SIZE < STATUS_ITEM + 16
#error "the status page needs RP_BUF_SIZE >= 1552 (one item and its chunk framing): raise it or set RP_ENABLE_STATUS 0"
#endif

/* Write page items while the client's buffer has room; finish the exchange
 * after the last one. */
int
local_step(rp_proxy *p, rp_conn *c)
{
    int chunked = !(c->flags & F_HTTP10), moved = 0;
    for (;;) {
        char item[STATUS_ITEM];
        wbuf w, o;
        int more;
        if (c->flags & F_DEAD)
            return exchange_fail(p, c, 0);
        if (buf_room(p, &c->out) < STATUS_ITEM + 16)
            return moved;
        w.p = item, w.n = 0, w.cap = sizeof(item), w.full = 0;
        more = !(c->flags & F_HEAD) && ((c->flags & F_PROM) ? status_prom(p, c->item, &w)
                                                             : status_json(p, c->item, &w));
        o = buf_writer(p, &c->out);
        if (more && chunked) {
            static const char hex[] = "0123456789abcdef";
            char h[4] = {hex[(w.n >> 8) & 15], hex[(w.n >> 4) & 15], hex[w.n & 15], 0};
            w_put(&o, h, 3);
            w_put(&o, S("\r\n"));
        }
        w_put(&o, item, w.n);
        if (chunked && !(c->flags & F_HEAD))
            w_put(&o, more ? "\r\n" : "0\r\n\r\n", more ? 2 : 5);
        buf_commit(&c->out, &o);
        SENT(c, o.n);
        c->item++;
        if (!more) {
            c->flags |= F_RESP_DONE | F_REQ_DONE;
            return exchange_end(p, c);
        }
        moved = 1;
    }
}

#if RP_ENABLE_RUNTIME
/* ---- Runtime control: POST PATH/device?pool=P&device=ADDR&state=S&weight=N ---- */

int
status_control_path(const rp_proxy *p, rp_str t)
{
    size_t n = strlen(CFG(p)->status_path);
    return t.n >= n + 7 && memcmp(t.p, CFG(p)->status_path, n) == 0 &&
           memcmp(t.p + n, "/device", 7) == 0 && (t.n == n + 7 || t.p[n + 7] == '?');
}

/* A whole JSON answer; the connection is kept unless a body came with the
 * request (it is not read) or the client asked to close. */
static int
control_reply(rp_proxy *p, rp_conn *c, int status, const char *body, size_t n)
{
    wbuf w;
    rp_str reason;
    if (c->mode != M_NONE)
        c->flags &= ~F_KEEP;
    c->in.r += c->head_len;
    c->head_len = 0;
    c->status = status;
    reason.p = status == 200 ? "OK" : reason_for(status), reason.n = strlen(reason.p);
    w = buf_writer(p, &c->out);
    w_status_line(&w, status, reason);
    w_put(&w, S("Content-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: "));
    w_num(&w, (uint64_t)n);
    w_put(&w, S("\r\n"));
    if (!(c->flags & F_KEEP))
        w_put(&w, S("Connection: close\r\n"));
    w_put(&w, S("\r\n"));
    if (!(c->flags & F_HEAD))
        w_put(&w, body, n);
    if (buf_commit(&c->out, &w) == RP_OK)
        SENT(c, w.n);
    c->flags |= F_RESP_HEAD | F_RESP_DONE | F_REQ_DONE;
    return exchange_end(p, c);
}

static int
control_error(rp_proxy *p, rp_conn *c, int status, const char *msg)
{
    char b[160];
    wbuf w;
    w.p = b, w.n = 0, w.cap = sizeof(b), w.full = 0;
    w_put(&w, S("{\"error\":\""));
    w_cstr(&w, msg);
    w_put(&w, S("\"}\n"));
    RP_LOG(RP_LOG_INFO, ("runtime: refused (%d): %s", status, msg));
#if RP_ENABLE_REASONS && RP_ENABLE_ACCESS_LOG
    c->why = msg;
#endif
    p->stats.bad_requests++;
    return control_reply(p, c, status, b, w.n);
}

/* v percent-decoded into buf[0..cap); its length, or -1 (bad or too long). */
static long
pct_decode(rp_str v, char *buf, size_t cap)
{
    size_t i, n = 0;
    for (i = 0; i < v.n; i++) {
        int ch = (unsigned char)v.p[i];
        if (ch == '%') {
            int a = i + 2 < v.n ? hexval(v.p[i + 1]) : -1, b = a >= 0 ? hexval(v.p[i + 2]) : -1;
            if (b < 0)
                return -1;
            ch = a * 16 + b, i += 2;
        }
        if (n == cap || ch < 0x21 || ch > 0x7e)
            return -1;
        buf[n++] = (char)ch;
    }
    return (long)n;
}

static int
runtime_control(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    rp_config *cf = CFG(p);
    rp_str q = m->target, kv, key, pool = {NULL, 0}, dev = {NULL, 0}, state = {NULL, 0},
           weight = {NULL, 0};
    char addr[264], body[512]; /* a NAME:PORT is up to 259 bytes */
    long dn = 0;
    int64_t wt = -1;
    int admin = -1, i, k, idx = -1;
    rp_device *d = NULL;
    wbuf w;
    if (m->method.n != 4 || memcmp(m->method.p, "POST", 4) != 0)
        return control_error(p, c, 405, "runtime control takes POST");
    if (c->mode != M_NONE)
        return control_error(p, c, 400, "runtime control takes no request body");
    while (q.n && q.p[0] != '?')
        q.p++, q.n--;
    while (q.n) {
        q.p++, q.n--; /* '?' or '&' */
        for (kv = q, kv.n = 0; kv.n < q.n && q.p[kv.n] != '&'; kv.n++)
            ;
        q.p += kv.n, q.n -= kv.n;
        for (key = kv, key.n = 0; key.n < kv.n && kv.p[key.n] != '='; key.n++)
            ;
        kv.p += key.n + (key.n < kv.n), kv.n -= key.n + (key.n < kv.n);
        if (str_ieq(key, S("pool")))
            pool = kv;
        else if (str_ieq(key, S("device")))
            dev = kv;
        else if (str_ieq(key, S("state")))
            state = kv;
        else if (str_ieq(key, S("weight")))
            weight = kv;
        else if (key.n)
            return control_error(p, c, 400, "unknown parameter (pool, device, state, weight)");
    }
    if (!pool.n || !dev.n)
        return control_error(p, c, 400, "pool= and device= are required");
    if (!state.n && !weight.n)
        return control_error(p, c, 400, "state= or weight= is required");
    for (i = 0; state.n && i < 3; i++)
        if (str_ieq(state, admin_names[i], strlen(admin_names[i])))
            admin = i;
    if (state.n && admin < 0)
        return control_error(p, c, 400, "state: want ready, drain or maint");
    if (weight.n && ((wt = parse_dec(weight)) < 0 || wt > 1000))
        return control_error(p, c, 400, "weight: want 0-1000");
    if ((dn = pct_decode(dev, addr, sizeof(addr))) < 0)
        return control_error(p, c, 400, "device: want IP:PORT");
    for (i = 0; i < cf->npools && !d; i++) {
        if (strlen(cf->pools[i].name) != pool.n || memcmp(cf->pools[i].name, pool.p, pool.n) != 0)
            continue;
        for (k = 0; k < cf->pools[i].ndevices; k++) {
            char b[264];
            wbuf a;
            a.p = b, a.n = 0, a.cap = sizeof(b), a.full = 0;
            w_dev_id(&a, &cf->devices[cf->pools[i].devices[k]]); /* IP:PORT or NAME:PORT */
            if (a.n == (size_t)dn && memcmp(b, addr, a.n) == 0) {
                idx = cf->pools[i].devices[k];
                d = &cf->devices[idx];
                break;
            }
        }
        if (!d)
            return control_error(p, c, 404, "no such device in the pool");
    }
    if (!d)
        return control_error(p, c, 404, "no such pool");
    RP_LOG(RP_LOG_INFO, ("runtime: pool %.*s device %.*s: state %s -> %s, weight %u -> %u",
                         (int)pool.n, pool.p, (int)dn, addr, admin_names[d->admin],
                         admin_names[admin < 0 ? d->admin : admin], d->weight,
                         (unsigned)(wt < 0 ? d->weight : wt)));
    if (admin >= 0)
        d->admin = (uint8_t)admin;
    if (wt >= 0 && wt != d->weight) {
        d->weight = (uint16_t)wt;
        d->effective = (int32_t)wt;
        d->current = 0;
    }
    if (d->admin == RP_ADMIN_MAINT)
        while (p->idle[idx]) /* nothing more goes there: no idle connections either */
            conn_free(p, p->idle[idx]);
    w.p = body, w.n = 0, w.cap = sizeof(body), w.full = 0;
    w_put(&w, S("{\"pool\":\""));
    w_str(&w, pool);
    w_put(&w, S("\",\"device\":\""));
    w_dev_id(&w, d);
    w_put(&w, "\"", 1);
    json_str(&w, "admin", admin_names[d->admin]);
    json_num(&w, "weight", d->weight, 1);
    json_str(&w, "state", device_state(p, d));
    json_num(&w, "active", d->active, 1);
    w_put(&w, S("}\n"));
    return control_reply(p, c, 200, body, w.n);
}
#endif

/* A request for the status path: answer it here instead of routing it. */
int
status_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    rp_str q = m->target;
    wbuf w;
    size_t i;
    if (!status_allowed(CFG(p), &c->peer))
        return reply_error(p, c, 403, "status page: client not in its allow=");
#if RP_ENABLE_AUTH
    {
        int rc;
        if (CFG(p)->status_auth && (rc = auth_gate(p, c, m, CFG(p)->status_auth - 1)) != 0)
            return rc;
    }
#endif
#if RP_ENABLE_RUNTIME
    if (status_control_path(p, m->target))
        return runtime_control(p, c, m);
#endif
    if (!(c->flags & (F_HEAD | F_GET)))
        return reply_error(p, c, 405, "status page: only GET and HEAD");
    if (c->mode != M_NONE)
        return reply_error(p, c, 400, "status page: a request with a body");
    p->stats.status_requests++;
    for (i = 0; i + 17 <= q.n; i++)
        if (memcmp(q.p + i, "format=prometheus", 17) == 0)
            c->flags |= F_PROM;
    c->in.r += c->head_len; /* answered here: never retried */
    c->head_len = 0;
    if (c->flags & F_HTTP10)
        c->flags &= ~F_KEEP; /* close-delimited */
    c->status = 200;
    c->item = 0;
    conn_state(c, CS_LOCAL);
    w = buf_writer(p, &c->out);
    w_put(&w, S("HTTP/1.1 200 OK\r\nContent-Type: "));
    if (c->flags & F_PROM)
        w_put(&w, S("text/plain; version=0.0.4\r\n"));
    else
        w_put(&w, S("application/json\r\n"));
    w_put(&w, S("Cache-Control: no-store\r\n"));
    if (!(c->flags & F_HTTP10))
        w_put(&w, S("Transfer-Encoding: chunked\r\n"));
    if (!(c->flags & F_KEEP))
        w_put(&w, S("Connection: close\r\n"));
    w_put(&w, S("\r\n"));
    buf_commit(&c->out, &w);
    SENT(c, w.n);
    c->flags |= F_RESP_HEAD;
    return 1;
}
#endif /* RP_ENABLE_STATUS */

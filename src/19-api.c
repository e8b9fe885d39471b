/* ==== [19] Public API ====
 * What rproxy.h declares: init, load, start, poll, shutdown, the balancer's
 * and errors' entry points.  Owns: the proxy's lifetime (started, stopping).
 * Calls: [6] [7] [8] [9] [16] [18] [24]. */
#include "rp_int.h"

const char *
rp_version(void)
{
    return RP_VERSION;
}

size_t
rp_proxy_size(void)
{
    return sizeof(rp_proxy);
}

/* Slots c[0..n) of one kind onto their free list, the first on top. */
static void
slots_init(rp_proxy *p, rp_conn *c, int n, int kind)
{
    rp_conn **list = free_list(p, kind);
    while (n-- > 0) {
        c[n].kind = (uint8_t)kind;
        c[n].sock = -1;
        c[n].slot = (uint16_t)n;
        c[n].next = *list;
        *list = &c[n];
    }
}

/* The configuration's defaults (the RP_* settings), before a text or an
 * image fills it. */
void
cfg_defaults(rp_config *c)
{
    c->t_client_header = RP_TIMEOUT_CLIENT_HEADER_MS;
    c->t_client_idle = RP_TIMEOUT_CLIENT_IDLE_MS;
    c->t_connect = RP_TIMEOUT_CONNECT_MS;
    c->t_device = RP_TIMEOUT_DEVICE_MS;
    c->t_device_idle = RP_TIMEOUT_DEVICE_IDLE_MS;
    c->t_handshake = RP_TIMEOUT_HANDSHAKE_MS;
    c->cache_max_object = RP_CACHE_MAX_OBJECT;
    c->cache_lock_ms = RP_CACHE_LOCK_MS;
    c->via = RP_DEFAULT_VIA;
}

int
rp_init(rp_proxy *p)
{
    int i;
    memset(p, 0, offsetof(rp_proxy, bufs));
    slots_init(p, p->clients, RP_MAX_CONNS, K_CLIENT);
    slots_init(p, p->devices, RP_MAX_UPSTREAM, K_DEVICE);
    for (i = 0; i < RP_MAX_LISTENERS; i++) {
        p->lsocks[i].kind = K_LISTENER;
        p->lsocks[i].sock = -1;
    }
#if RP_ENABLE_RELOAD
    p->cur = &p->cfg;
    p->reload.generation = 1;
#endif
    cfg_defaults(CFG(p));
    return RP_OK;
}

static int
config_load_(rp_proxy *p, const rp_config *image)
{
    int i, k;
    if (image->nlisteners > RP_MAX_LISTENERS || image->npools > RP_MAX_POOLS ||
        image->ndevices > RP_MAX_DEVICES || image->nroutes > RP_MAX_ROUTES)
        return RP_EINVAL;
    for (i = 0; i < image->npools; i++)
        for (k = 0; k < image->pools[i].ndevices; k++)
            if (image->pools[i].devices[k] >= image->ndevices)
                return RP_EINVAL;
    *CFG(p) = *image;
    return RP_OK;
}

int
rp_config_load(rp_proxy *p, const rp_config *image)
{
#if RP_ENABLE_RELOAD
    if (p->started) { /* into the spare slot: rp_config_apply switches */
        int rc = reload_begin(p);
        if (rc == RP_OK)
            reload_end(p, rc = config_load_(p, image));
        return rc;
    }
#endif
    return config_load_(p, image);
}

#if RP_ENABLE_TLS
/* Before the first TLS listener opens: a seeded generator (refuse to run
 * TLS without one), the session cache, and the EC code with its curves
 * narrowed to X25519, P-256 (key exchange) and P-384 (P-384 certificates). */
int
tls_start(rp_proxy *p)
{
    unsigned char probe[16];
    int i, any = 0;
    if (p->tls_ec.supported_curves) /* started already (a reload's) */
        return RP_OK;
    for (i = 0; i < CFG(p)->nlisteners; i++)
        any |= CFG(p)->listeners[i].tls;
    if (!any)
        return RP_OK;
    if (rp_port_random(probe, sizeof(probe)) != RP_OK) {
        RP_LOG(RP_LOG_ERROR, ("no random generator: refusing to start TLS"));
        return RP_EIO;
    }
    p->tls_ec = *br_ec_get_default();
    p->tls_ec.supported_curves &= (1u << BR_EC_curve25519) | (1u << BR_EC_secp256r1) |
                                  (1u << BR_EC_secp384r1);
    br_ssl_session_cache_lru_init(&p->tls_cache, p->tls_cache_buf, sizeof(p->tls_cache_buf));
    return RP_OK;
}
#endif

/* Close the listening sockets that are open (rp_init marks all closed). */
static void
listeners_close(rp_proxy *p)
{
    int i;
    for (i = 0; i < RP_MAX_LISTENERS; i++)
        if (p->lsocks[i].sock >= 0) {
            rp_port_close(p->lsocks[i].sock);
            p->lsocks[i].sock = -1;
        }
}

int
rp_start(rp_proxy *p)
{
    int i;
    p->now = rp_port_now_ms();
#if RP_ENABLE_TLS
    if ((i = tls_start(p)) != RP_OK)
        return i;
#endif
    for (i = 0; i < CFG(p)->nlisteners; i++) {
        rp_sock s = rp_port_listen(&CFG(p)->listeners[i].addr, RP_LISTEN_BACKLOG);
        if (s < 0) {
            listeners_close(p);
            return RP_EADDR;
        }
        p->lsocks[i].sock = s;
        rp_port_watch(s, RP_EV_READ, &p->lsocks[i]);
    }
    p->started = 1;
    p->t_started = p->now;
    for (i = 0; i < CFG(p)->ndevices; i++) { /* first probes, staggered */
        rp_device *dv = &CFG(p)->devices[i];
        const rp_pool *pl = &CFG(p)->pools[dv->pool];
        if (pl->health)
            dv->probe_next = p->now + 1 + (uint32_t)i * RP_HEALTH_STAGGER_MS % pl->interval_ms;
    }
    health_run(p);
#if RP_ENABLE_DNS
    dns_run(p); /* every name now: the proxy runs while they resolve */
#endif
    return RP_OK;
}

#if RP_ENABLE_TURN_STATS
/* The turn that began at t0 served `served` reports and left `left`: keep
 * it if it is the longest (as long -- the clock counts ms: if it did more). */
static void
turn_record(rp_proxy *p, uint64_t t0, int served, int left)
{
    rp_turn *t = &p->turn, *m = &p->loop.longest;
    t->at_ms = t0 - p->t_started;
    t->ms = (uint32_t)(rp_port_now_ms() - t0);
    t->events = (uint32_t)served;
    t->left = (uint32_t)left;
    p->loop.turns++;
    if (left)
        p->loop.bounded++;
    if (t->ms != m->ms ? t->ms > m->ms
                       : t->events + t->tls_steps + t->timers + t->bytes >
                             m->events + m->tls_steps + m->timers + m->bytes)
        *m = *t;
}

void
rp_loop_reset(rp_proxy *p)
{
    memset(&p->loop.longest, 0, sizeof(p->loop.longest));
}
#endif

/* A turn is over when it served RP_TURN_MAX_EVENTS reports or moved
 * RP_TURN_MAX_BYTES (0: no bound). */
#define TURN_DONE(p, served) \
    ((RP_TURN_MAX_EVENTS && (served) >= RP_TURN_MAX_EVENTS) || TURN_BYTES_SPENT(p))

int
rp_poll(rp_proxy *p, int timeout_ms)
{
#if RP_TURN_BOUND_
    rp_event *ev = p->turn_ev; /* survives the turn: what it leaves */
#else
    rp_event ev[64];
#endif
    int i = 0, n, served = 0, wait = timeout_ms;
    p->now = rp_port_now_ms();
#if RP_TURN_BOUND_
    if (p->batch_at < p->batch_n) { /* the last turn's leftovers first, no waiting */
        i = p->batch_at;
        n = p->batch_n;
    } else
#endif
    {
        if (p->next_timer) {
            uint64_t left = p->next_timer > p->now ? p->next_timer - p->now : 0;
            if (wait < 0 || left < (uint64_t)wait)
                wait = (int)left;
        }
        n = rp_port_wait(ev, 64, wait);
        if (n < 0)
            return n;
        p->now = rp_port_now_ms();
    }
#if RP_TURN_TRACK_
    memset(&p->turn, 0, sizeof(p->turn));
#endif
    p->batch = ev;
    p->batch_n = n;
    for (; i < n && !TURN_DONE(p, served); i++) {
        p->batch_at = i + 1;
        if (ev[i].ud) {
            served++;
            on_event(p, ev[i].ud, ev[i].events);
        }
    }
    if (i < n) { /* bounded: conn_free still drops reports of a freed slot */
        p->batch_at = i;
    } else {
        p->batch = NULL;
        p->batch_n = p->batch_at = 0;
    }
#if RP_ENABLE_DNS
    if (p->dns_pending) /* the port woke the wait when an answer came */
        dns_collect(p);
#endif
    if (p->next_timer && p->now >= p->next_timer)
        timers_run(p);
#if RP_ENABLE_TURN_STATS
    turn_record(p, p->now, served, n - i);
#endif
    return served;
}

void
rp_shutdown(rp_proxy *p)
{
    int i;
    p->stopping = 1;
    listeners_close(p);
    for (i = 0; i < RP_MAX_CONNS; i++) {
        rp_conn *c = &p->clients[i];
        if (c->state == CS_HEAD && !buf_len(&c->in) && !buf_len(&c->out))
            conn_free(p, c);
    }
    for (i = 0; i < RP_MAX_UPSTREAM; i++)
        if (p->devices[i].state == DS_IDLE)
            conn_free(p, &p->devices[i]);
}

#if RP_ENABLE_ACCESS_LOG
int
rp_close_all(rp_proxy *p)
{
    int i, n = 0;
    for (i = 0; i < RP_MAX_CONNS; i++) {
        rp_conn *c = &p->clients[i];
        if (c->state == CS_FREE)
            continue;
        n++;
        CFG_ENTER(p, c); /* its exchange's configuration (its access line names its pool) */
        if (c->state != CS_HEAD && c->state != CS_CLOSING) { /* an exchange in flight */
            CUT(c, CUT_SHUTDOWN);
#if RP_ENABLE_REASONS
            if (!(c->flags & F_RESP_HEAD))
                c->why = "shutdown before the response";
#endif
            access_log(p, c);
        }
        conn_free(p, c); /* and its device connection */
        CFG_LIVE(p);
    }
    for (i = 0; i < RP_MAX_UPSTREAM; i++)
        if (p->devices[i].state != CS_FREE)
            conn_free(p, &p->devices[i]);
    return n;
}
#endif

int
rp_pool_pick(rp_proxy *p, int pool, uint32_t tried)
{
    if (pool < 0 || pool >= CFG(p)->npools)
        return -1;
    return pool_pick(p, &CFG(p)->pools[pool], tried);
}

void
rp_device_report(rp_proxy *p, int dev, int err)
{
    if (dev < 0 || dev >= CFG(p)->ndevices)
        return;
    if (err == RP_OK)
        device_ok(p, dev);
    else
        device_fail(p, dev, err);
}

int
rp_device_up(const rp_proxy *p, int dev)
{
    return dev >= 0 && dev < CFG(p)->ndevices && CFG(p)->devices[dev].weight > 0 &&
           device_is_up(p, &CFG(p)->devices[dev]);
}

int
rp_active(const rp_proxy *p)
{
    int i, n = 0;
    for (i = 0; i < RP_MAX_CONNS; i++)
        n += p->clients[i].state != CS_FREE;
    return n;
}

const char *
rp_strerror(int err)
{
    /* -err picks one; the list ends with an empty name */
    static const char names[] =
        "ok\0would block\0malformed input\0out of slots\0connection closed\0"
        "connection reset\0timed out\0connect refused\0I/O error\0"
        "request target too long\0header too large\0not implemented\0"
        "HTTP version not supported\0expectation failed\0bad configuration\0"
        "not found\0bad address\0permission denied\0"
#if RP_ENABLE_RELOAD
        "still in use\0"
#endif
        ;
    const char *s = names;
    for (; err < 0 && *s; err++)
        s += strlen(s) + 1;
    return err || !*s ? "unknown error" : s;
}

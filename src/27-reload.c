/* ==== [27] Reload: two configuration slots ====
 * rp_proxy holds the running configuration (slot p->live: p->cfg or
 * p->cfg2) and room for one more.  After rp_start, rp_config_parse and
 * rp_config_load fill the spare slot (RL_READY); rp_config_apply switches
 * to it between reports and the slot it left becomes RL_OLD until no
 * connection runs on it.  Every connection carries its slot (cfs): a
 * client's is the one its exchange began on, a device connection's its
 * client's; while a report or a timer of a connection is served, CFG(p)
 * is that connection's slot (on_event, timers_run), so the code of every
 * other section reads its exchange's configuration without knowing there
 * are two.  Idle things move at once: idle device connections and probes
 * go to the device's twin in the new slot (same pool name, same address or
 * name: its health, counters and runtime state are copied over), idle
 * keep-alive clients to their listener's twin, and a client between
 * requests takes the live slot at its next request (exchange_begin).  A
 * device connection busy on the old slot counts in its twin (DEVP, DEVC,
 * dev_at): max_conns holds across a reload.  Listeners on the same address
 * keep their socket; the apply opens the new ones first, so a port that is
 * taken refuses the reload with nothing changed.
 * Owns: p->live, p->spare, p->cur, p->dfwd, p->lfwd, p->reload, cfg2.
 * Calls: [3] [7] [8] [9] [13] [16] [24].  Called by: [6] [19] (parse, load),
 * [13] (client_to_live), [18] (CFG_ENTER), the embedder (apply, draining). */
#include "rp_int.h"

#if RP_ENABLE_RELOAD
rp_device *
dev_at(const rp_proxy *p, int slot, int i)
{
    rp_proxy *q = (rp_proxy *)(uintptr_t)p; /* the state is written through it */
    if (slot != p->live && p->dfwd[i])
        return &SLOT(q, p->live)->devices[p->dfwd[i] - 1];
    return &SLOT(q, slot)->devices[i];
}

int
client_to_live(rp_proxy *p, rp_conn *c)
{
    int l = p->lfwd[c->lsn];
    if (!l)
        return 0;
    c->lsn = (uint8_t)(l - 1);
    c->cfs = p->live;
    CFG_LIVE(p);
    return 1;
}

/* A client between requests that may change slots now: no TLS handshake
 * (it uses the slot's certificates) nor PROXY header under way. */
static int
client_movable(const rp_conn *c)
{
    if (c->state != CS_HEAD || (c->tls && !(c->flags & F_HSDONE)))
        return 0;
#if RP_ENABLE_PROXY_PROTOCOL
    if (c->flags & F_PROXYHDR)
        return 0;
#endif
    return 1;
}

int
rp_config_draining(rp_proxy *p)
{
    int i, n = 0, old = !p->live;
    if (p->spare != RL_OLD)
        return 0;
    for (i = 0; i < RP_MAX_CONNS + RP_MAX_UPSTREAM; i++) {
        rp_conn *c = i < RP_MAX_CONNS ? &p->clients[i] : &p->devices[i - RP_MAX_CONNS];
        if (c->state == CS_FREE || c->cfs != old)
            continue;
        if (c->kind == K_CLIENT && client_movable(c)) {
            if (client_to_live(p, c))
                continue;
            if (!buf_len(&c->in) && !buf_len(&c->out)) { /* idle, its listener gone */
                conn_free(p, c);
                continue;
            }
        }
        n++;
    }
    if (!n)
        p->spare = RL_FREE; /* nothing refers to it: it may be filled again */
    return n;
}

/* Before rp_config_parse / rp_config_load fill a slot while running: the
 * spare one, cleared, with rp_init's defaults, as CFG(p).  RP_EBUSY while
 * connections still run on it. */
int
reload_begin(rp_proxy *p)
{
    rp_config *c = SLOT(p, !p->live);
    if (rp_config_draining(p)) {
        p->reload.failures++;
        return RP_EBUSY;
    }
    memset(c, 0, sizeof(*c));
    cfg_defaults(c);
    p->cur = c;
    return RP_OK;
}

void
reload_end(rp_proxy *p, int rc)
{
    CFG_LIVE(p);
    p->spare = rc == RP_OK ? RL_READY : RL_FREE;
    if (rc != RP_OK)
        p->reload.failures++;
}

const rp_config *
rp_config_live(const rp_proxy *p)
{
    return p->live ? &p->cfg2 : &p->cfg;
}

static int
addr_same(const rp_addr *a, const rp_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

/* The old slot's device that is new device j (same pool name, same address
 * or name, the same tls, verify and sni), not yet taken; -1: none. */
static int
twin_of(const rp_config *oc, const rp_config *nc, int j, const uint8_t *taken)
{
    const rp_device *n = &nc->devices[j];
    int i;
    for (i = 0; i < oc->ndevices; i++) {
        const rp_device *o = &oc->devices[i];
        if (taken[i] || strcmp(oc->pools[o->pool].name, nc->pools[n->pool].name) != 0)
            continue;
        if (o->tls != n->tls || o->verify != n->verify || /* its pooled connections would */
            (o->sni || n->sni ? !o->sni || !n->sni || strcmp(o->sni, n->sni) : 0))
            continue; /* speak the old protocol: a new device */
#if RP_ENABLE_DNS
        if (o->name || n->name) {
            if (o->name && n->name && strcmp(o->name, n->name) == 0 &&
                o->addr.port == n->addr.port)
                return i;
            continue;
        }
#endif
        if (addr_same(&o->addr, &n->addr))
            return i;
    }
    return -1;
}

/* Device j of the new slot takes over old device o's state: health,
 * counters, runtime state, connections counted; the file's settings stay. */
static void
device_carry(rp_device *n, const rp_device *o)
{
    n->hc_down = o->hc_down;
    n->hc_rise = o->hc_rise;
    n->hc_fall = o->hc_fall;
#if RP_ENABLE_RUNTIME
    n->admin = o->admin;
#endif
    n->active = o->active;
    n->idle = o->idle;
    n->fails = o->fails;
    /* the shortfall from failures carries over, not the old weight itself */
    n->effective = (int32_t)n->weight - ((int32_t)o->weight - o->effective);
    if (n->effective < 0)
        n->effective = 0;
    if (n->effective > n->weight)
        n->effective = n->weight;
    n->probe = o->probe;
    n->last_err = o->last_err;
    n->probes = o->probes;
    n->probe_failures = o->probe_failures;
    n->requests = o->requests;
    n->failures = o->failures;
    n->checked = o->checked;
    n->down_until = o->down_until;
    n->last_ok = o->last_ok;
    n->probe_next = o->probe_next;
#if RP_ENABLE_DNS
    if (n->name) { /* the last good address, and when to look again */
        n->addr = o->addr;
        n->resolve_bad = o->resolve_bad;
        n->resolve_fails = o->resolve_fails;
        n->resolves = o->resolves;
        n->resolve_next = o->resolve_next;
        n->resolve_at = o->resolve_at;
    }
#endif
}

/* The new slot's listeners: the old socket where the address is the same,
 * else a new one.  On a port that cannot open: those opened here closed,
 * *err names the line, RP_EADDR. */
static int
listeners_take(rp_proxy *p, const rp_config *oc, const rp_config *nc, struct rp_lsock *ls,
               uint8_t *lfwd, rp_cfg_error *err)
{
    uint8_t kept[RP_MAX_LISTENERS];
    int i, j;
    memset(kept, 0, sizeof(kept));
    for (j = 0; j < RP_MAX_LISTENERS; j++) {
        memset(&ls[j], 0, sizeof(ls[j]));
        ls[j].kind = K_LISTENER;
        ls[j].sock = -1;
    }
    for (j = 0; j < nc->nlisteners; j++) {
        for (i = 0; i < oc->nlisteners; i++)
            if (!lfwd[i] && p->lsocks[i].sock >= 0 &&
                addr_same(&oc->listeners[i].addr, &nc->listeners[j].addr))
                break;
        if (i < oc->nlisteners) {
            ls[j] = p->lsocks[i];
            lfwd[i] = (uint8_t)(j + 1);
            kept[j] = 1;
            continue;
        }
        if ((ls[j].sock = rp_port_listen(&nc->listeners[j].addr, RP_LISTEN_BACKLOG)) < 0) {
            wbuf w;
            for (i = 0; i < j; i++) /* the sockets this apply opened */
                if (ls[i].sock >= 0 && !kept[i])
                    rp_port_close(ls[i].sock);
            err->line = nc->listeners[j].line;
            w.p = err->msg, w.n = 0, w.cap = sizeof(err->msg) - 1, w.full = 0;
            w_put(&w, S("listen "));
            w_addr(&w, &nc->listeners[j].addr);
            w_put(&w, S(": cannot open: is the port taken, or the address not this host's?"));
            err->msg[w.full ? w.cap : w.n] = 0;
            return RP_EADDR;
        }
    }
    return RP_OK;
}

int
rp_config_apply(rp_proxy *p, rp_cfg_error *err)
{
    int o = p->live, n = !o, i, j;
    rp_config *oc = SLOT(p, o), *nc = SLOT(p, n);
    struct rp_lsock ls[RP_MAX_LISTENERS];
    uint8_t lfwd[RP_MAX_LISTENERS], dfwd[RP_MAX_DEVICES], taken[RP_MAX_DEVICES];
    rp_conn *idle[RP_MAX_DEVICES];
    err->line = 0, err->col = 0, err->msg[0] = 0;
    if (p->spare != RL_READY || !p->started)
        return RP_EINVAL;
    memset(lfwd, 0, sizeof(lfwd));
    memset(dfwd, 0, sizeof(dfwd));
    memset(taken, 0, sizeof(taken));
#if RP_ENABLE_TLS
    p->cur = nc; /* TLS from a configuration that had none: the generator, the cache */
    i = tls_start(p);
    CFG_LIVE(p);
    if (i != RP_OK) {
        static const char m[] = "a tls listener needs a random generator (the port has none)";
        memcpy(err->msg, m, sizeof(m));
        p->reload.failures++;
        return i;
    }
#endif
    if (listeners_take(p, oc, nc, ls, lfwd, err) != RP_OK) {
        p->reload.failures++;
        return RP_EADDR;
    }
    /* From here nothing fails.  Listeners: the ones dropped close, every
     * kept or new one is watched under its new index. */
    for (i = 0; i < RP_MAX_LISTENERS; i++)
        if (p->lsocks[i].sock >= 0 && !lfwd[i])
            rp_port_close(p->lsocks[i].sock);
    for (i = p->batch_at; i < p->batch_n; i++) /* reports still queued name old indexes */
        if (p->batch[i].ud && *(uint8_t *)p->batch[i].ud == K_LISTENER)
            p->batch[i].ud = NULL; /* (the port reports them again: level-triggered) */
    for (j = 0; j < RP_MAX_LISTENERS; j++) {
        p->lsocks[j] = ls[j];
        if (ls[j].sock >= 0)
            rp_port_watch(ls[j].sock, ls[j].paused_until ? 0 : RP_EV_READ, &p->lsocks[j]);
    }
    /* Devices: twins take the state; idle connections and probes of a
     * device that is gone close, its twin's move. */
    for (j = 0; j < nc->ndevices; j++) {
        rp_device *nd = &nc->devices[j];
        const rp_pool *pl = &nc->pools[nd->pool];
        if ((i = twin_of(oc, nc, j, taken)) >= 0) {
            taken[i] = 1;
            dfwd[i] = (uint8_t)(j + 1);
            device_carry(nd, &oc->devices[i]);
            if (!pl->health || !oc->pools[oc->devices[i].pool].health)
                nd->probe_next = pl->health ? p->now + 1 : 0;
        } else if (pl->health) {
            nd->probe_next = p->now + 1 + (uint32_t)j * RP_HEALTH_STAGGER_MS % pl->interval_ms;
        }
    }
    for (i = 0; i < RP_MAX_UPSTREAM; i++) {
        rp_conn *d = &p->devices[i];
        if (d->state != CS_FREE && d->cfs == o && !dfwd[d->device] &&
            (d->state == DS_IDLE || PROBING(d)))
            conn_free(p, d); /* under the old layout: its device is gone */
    }
    memset(idle, 0, sizeof(idle));
    for (i = 0; i < oc->ndevices; i++)
        if (dfwd[i])
            idle[dfwd[i] - 1] = p->idle[i];
    memcpy(p->idle, idle, sizeof(idle));
    for (i = 0; i < RP_MAX_UPSTREAM; i++) {
        rp_conn *d = &p->devices[i];
        if (d->state != CS_FREE && d->cfs == o && (d->state == DS_IDLE || PROBING(d))) {
            d->device = (uint8_t)(dfwd[d->device] - 1);
            d->cfs = (uint8_t)n;
        }
    }
#if RP_ENABLE_LIMITS
    for (j = 0; j < nc->npools; j++) { /* a pool's queue counters follow its name */
        for (i = 0; i < oc->npools && strcmp(oc->pools[i].name, nc->pools[j].name); i++)
            ;
        if (i < oc->npools) {
            nc->pools[j].queued_peak = oc->pools[i].queued_peak;
            nc->pools[j].queue_timeouts = oc->pools[i].queue_timeouts;
            nc->pools[j].queue_full = oc->pools[i].queue_full;
        }
    }
#endif
#if RP_ENABLE_AUTH
    memset(p->auth_ok, 0, sizeof(p->auth_ok)); /* the users files may have changed */
#endif
#if RP_ENABLE_DNS
    for (i = 0; i < oc->ndevices; i++) /* lookups in flight answer the old indexes: dropped */
        if (oc->devices[i].resolving) {
            p->dns_orphan[i] = 1;
            if (dfwd[i]) /* its twin asks again as soon as its port slot is free */
                nc->devices[dfwd[i] - 1].resolve_next = p->now;
        }
#endif
    memcpy(p->dfwd, dfwd, sizeof(dfwd));
    memcpy(p->lfwd, lfwd, sizeof(lfwd));
    p->live = (uint8_t)n;
    p->spare = RL_OLD;
    CFG_LIVE(p);
    p->reload.generation++;
    p->reload.reloads++;
    rp_config_draining(p); /* clients between requests move now (an idle one whose
                              listener is gone closes); RL_FREE when nothing is left */
    RP_LOG(RP_LOG_INFO, ("configuration applied (generation %u)", (unsigned)p->reload.generation));
    timer_hint(p, p->now); /* probes of new devices, queues: the timers look now */
    health_run(p);
#if RP_ENABLE_DNS
    dns_run(p);
#endif
    return RP_OK;
}
#endif /* RP_ENABLE_RELOAD */

/* ==== [24] Devices by name ====
 * A `device POOL NAME:PORT` line keeps NAME (cfg->str) and looks it up
 * through the port (rp_port_resolve / rp_port_resolve_result): the port
 * answers off the loop -- a resolver thread on POSIX, lwIP's asynchronous
 * dns_gethostbyname on the board stacks -- so the loop never waits for a
 * name server, and this section stays single-threaded and heap-free.  A
 * name is looked up at rp_start, again every `resolve=` of its pool, and
 * soon (RP_RESOLVE_RETRY_MS after the last lookup began) when its device
 * failed a connect or a probe.  Until its first answer the device has no
 * address (family 0): it is down, never picked nor probed.  A failed lookup
 * keeps the last good address.  A new address closes the device's idle
 * connections (they lead to the old one) and clears its passive failures;
 * busy exchanges finish where they are.  The slot given to the port is the
 * device's index: one lookup per device at a time.  A reload ([27]) renumbers
 * the devices: the lookups then in flight are orphans -- their answers are
 * collected and dropped, and that port slot takes no new lookup before.
 * Owns: the devices' resolve fields, p->dns_pending.  Calls: [2] [7] [9].
 * Called by: [7] [16] (dns_soon), [17] (w_dev_id), [18] (dns_run),
 * [19] (dns_collect, from rp_poll). */
#include "rp_int.h"

#if RP_ENABLE_DNS
void
w_dev_id(wbuf *w, const rp_device *d)
{
    if (!d->name) {
        w_addr(w, &d->addr);
        return;
    }
    w_cstr(w, d->name);
    w_put(w, ":", 1);
    w_num(w, d->addr.port);
}

#if RP_ENABLE_STATUS
void
w_dev_addr(wbuf *w, const rp_device *d)
{
    if (HAS_ADDR(d))
        w_addr(w, &d->addr);
}
#endif

static void
dns_start(rp_proxy *p, rp_device *d, int idx)
{
    const rp_pool *pl = &CFG(p)->pools[d->pool];
    int rc = rp_port_resolve(d->name, idx);
    d->resolve_at = p->now;
    d->resolve_next = p->now + pl->resolve_ms;
    if (rc == RP_OK) {
        d->resolving = 1;
        p->dns_pending++;
        return;
    }
    if (rc == RP_ENOTIMPL) {
        d->resolve_next = UINT64_MAX; /* no resolver in this port: never again */
        RP_LOG(RP_LOG_ERROR, ("device %s: the port has no resolver", d->name));
        return;
    }
    RP_LOG(RP_LOG_WARN, ("device %s: lookup not started: %s", d->name, rp_strerror(rc)));
}

void
dns_run(rp_proxy *p)
{
    int i;
    for (i = 0; i < CFG(p)->ndevices; i++) {
        rp_device *d = &CFG(p)->devices[i];
        if (!d->name || d->resolving)
            continue;
#if RP_ENABLE_RELOAD
        if (p->dns_orphan[i]) { /* its port slot still has a lookup from before a reload */
            timer_hint(p, p->now + RP_RESOLVE_RETRY_MS);
            continue;
        }
#endif
        if (d->resolve_next <= p->now)
            dns_start(p, d, i);
        if (!d->resolving && d->resolve_next != UINT64_MAX)
            timer_hint(p, d->resolve_next);
    }
}

void
dns_soon(rp_proxy *p, rp_device *d)
{
    uint64_t t = d->resolve_at + RP_RESOLVE_RETRY_MS;
    if (!d->name || d->resolving || d->resolve_next == UINT64_MAX)
        return;
    if (t < p->now)
        t = p->now;
    if (t < d->resolve_next) {
        d->resolve_next = t;
        timer_hint(p, t);
    }
}

/* Lookup of device idx answered: a usable address, or a failure. */
static void
dns_answer(rp_proxy *p, rp_device *d, int idx, int rc, const rp_addr *a)
{
    char ip[48];
    if (rc == RP_OK && !(a->family == 4 || (RP_ENABLE_IPV6 && a->family == 6)))
        rc = RP_ENOTFOUND; /* a family this build cannot use: not an answer */
    if (rc != RP_OK) {
        d->resolve_fails++;
        if (!d->resolve_bad) /* once per bad spell, not every interval */
            RP_LOG(RP_LOG_WARN, ("device %s: lookup failed (%s): %s", d->name, rp_strerror(rc),
                                 HAS_ADDR(d) ? "keeping the last address" : "down until it resolves"));
        d->resolve_bad = 1;
        return;
    }
    d->resolves++;
    d->resolve_bad = 0;
    d->resolve_fails = 0;
    if (HAS_ADDR(d) && d->addr.family == a->family && memcmp(d->addr.ip, a->ip, 16) == 0)
        return;
    rp_addr_format(a, ip, sizeof(ip));
    RP_LOG(RP_LOG_INFO, ("device %s:%u at %s", d->name, d->addr.port, ip));
    (void)ip;
    d->addr.family = a->family;
    memcpy(d->addr.ip, a->ip, 16);
    while (p->idle[idx]) /* pooled connections lead to the old address */
        conn_free(p, p->idle[idx]);
    d->fails = 0; /* the failures were the old address's */
    d->down_until = 0;
    d->effective = d->weight;
    d->probe_next = p->now; /* a health line checks the new one at once */
    timer_hint(p, p->now);
}

void
dns_collect(rp_proxy *p)
{
    int i;
#if RP_ENABLE_RELOAD
    for (i = 0; i < RP_MAX_DEVICES && p->dns_pending; i++) { /* answers nobody waits for */
        rp_addr a;
        if (!p->dns_orphan[i] || rp_port_resolve_result(i, &a) == RP_EAGAIN)
            continue;
        p->dns_orphan[i] = 0;
        p->dns_pending--;
    }
#endif
    for (i = 0; i < CFG(p)->ndevices && p->dns_pending; i++) {
        rp_device *d = &CFG(p)->devices[i];
        rp_addr a;
        int rc;
        if (!d->resolving)
            continue;
        memset(&a, 0, sizeof(a));
        if ((rc = rp_port_resolve_result(i, &a)) == RP_EAGAIN)
            continue;
        d->resolving = 0;
        p->dns_pending--;
        dns_answer(p, d, i, rc, &a);
        timer_hint(p, d->resolve_next);
    }
}
#endif

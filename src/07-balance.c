/* ==== [7] Router and balancer ====
 * A route matches the request's host (case-insensitive, port ignored; a
 * leading "*." matches any subdomain) and/or a path prefix; the first match
 * wins.  A pool picks a device by nginx's smooth weighted round-robin: every
 * eligible device adds its effective weight to its current weight, the
 * highest wins and gives the total back -- weights 5,1,1 give a a b a c a a.
 * Backups are considered only when no primary is eligible.  Passive health:
 * device_fail / device_ok count failures and mark a device down.
 * Owns: the devices' balancing and health fields.  Calls: [1] [2] [24]. */
#include "rp_int.h"

rp_str
host_only(rp_str h)
{
    size_t i;
    if (h.n && h.p[0] == '[') {
        for (i = 0; i < h.n && h.p[i] != ']'; i++)
            ;
        h.n = i < h.n ? i + 1 : h.n;
        return h;
    }
    for (i = 0; i < h.n && h.p[i] != ':'; i++)
        ;
    h.n = i;
    return h;
}

int
route_host_match(const char *pat, rp_str host)
{
    rp_str ps;
    ps.p = pat, ps.n = strlen(pat);
    if (ps.n > 2 && pat[0] == '*' && pat[1] == '.') {
        rp_str tail;
        ps.p++, ps.n--; /* ".example.com" */
        if (host.n <= ps.n)
            return 0;
        tail.p = host.p + host.n - ps.n, tail.n = ps.n;
        return str_ieq2(tail, ps);
    }
    return str_ieq2(ps, host);
}

int
route_match(const rp_config *c, rp_str host, rp_str path)
{
    int i;
    host = host_only(host);
    for (i = 0; i < c->nroutes; i++) {
        const rp_route *r = &c->routes[i];
        size_t n = r->path ? strlen(r->path) : 0;
        if (r->host && !route_host_match(r->host, host))
            continue;
        if (r->path && (path.n < n || memcmp(path.p, r->path, n) != 0))
            continue;
        return i;
    }
    return -1;
}

/* Up: not taken out by passive failures nor by active health. */
int
device_is_up(const rp_proxy *p, const rp_device *d)
{
    return HAS_ADDR(d) && !d->hc_down && d->down_until <= p->now;
}

#if RP_ENABLE_LIMITS
/* At max_conns with nothing idle to reuse: a new exchange must wait.  Busy,
 * connecting, idle and the health probe all count. */
int
device_full(const rp_device *d)
{
    return d->max_conns && !d->idle && d->active + (d->probe != NULL) >= d->max_conns;
}
#endif

#if RP_ENABLE_RUNTIME
#define ADMIN_READY(d) ((d)->admin == RP_ADMIN_READY)
#else
#define ADMIN_READY(d) 1
#endif

static int
device_eligible(rp_proxy *p, const rp_device *d, uint32_t tried, int idx)
{
    if (!ADMIN_READY(d)) /* drained or in maintenance: no new requests */
        return 0;
    if (!HAS_ADDR(d)) /* a name not resolved yet: not even when all are down */
        return 0;
#if RP_ENABLE_LIMITS
    if (!(d->weight > 0 && !(tried >> idx & 1) && (p->pick_any || device_is_up(p, d))))
        return 0;
    if (device_full(d)) {
        p->pick_full = 1; /* it would take this request, but not now */
        return 0;
    }
    return 1;
#else
    return d->weight > 0 && !(tried >> idx & 1) && (p->pick_any || device_is_up(p, d));
#endif
}

/* a/wa < b/wb without division: weighted least-connections order.  Both
 * factors are 16-bit, so each product fits in 32 bits. */
static int
lc_cmp(const rp_device *a, const rp_device *b)
{
    uint32_t x = (uint32_t)a->active * b->weight, y = (uint32_t)b->active * a->weight;
    return x < y ? -1 : x > y;
}

/* Pool member i when it takes part in this tier's pick, else NULL. */
static rp_device *
tier_member(rp_proxy *p, const rp_pool *pl, int i, uint32_t tried, int backup)
{
    rp_device *d = DEVP(p, pl->devices[i]);
    return d->backup == backup && device_eligible(p, d, tried, pl->devices[i]) ? d : NULL;
}

/* One pick among primaries (backup == 0) or backups (backup == 1).  For
 * leastconn only the devices tied at the lowest active/weight take part in
 * the smooth-WRR round, so ties rotate by weight (nginx's least_conn). */
static int
pool_pick_tier(rp_proxy *p, const rp_pool *pl, uint32_t tried, int backup)
{
    rp_device *d, *best = NULL, *least = NULL;
    int32_t total = 0;
    int i, pick = -1;
    for (i = 0; i < pl->ndevices && pl->balance == RP_BALANCE_LEASTCONN; i++)
        if ((d = tier_member(p, pl, i, tried, backup)) && (!least || lc_cmp(d, least) < 0))
            least = d;
    for (i = 0; i < pl->ndevices; i++) {
        if (!(d = tier_member(p, pl, i, tried, backup)) || (least && lc_cmp(d, least) != 0))
            continue;
        d->current += d->effective;
        total += d->effective;
        if (d->effective < d->weight)
            d->effective++; /* recovery after failures: one step per pick */
        if (!best || d->current > best->current)
            best = d, pick = pl->devices[i];
    }
    if (best)
        best->current -= total;
    return pick;
}

/* Primaries, then backups; when every device is marked down, try them
 * anyway rather than refuse (nginx does the same for a one-server group):
 * a gateway with one camera must not answer 503 for fail_timeout after a
 * single hiccup.  A tier whose devices are up but at max_conns is not
 * skipped for the next: the request waits (PICK_FULL) -- backups stand in
 * for devices that are down, not busy (HAProxy's queue). */
int
pool_pick(rp_proxy *p, const rp_pool *pl, uint32_t tried)
{
    int pick = -1, pass;
#if RP_ENABLE_LIMITS
    p->pick_full = 0;
#endif
    for (pass = 0; pass < 4 && pick < 0; pass++) { /* primaries, backups; again, any */
        p->pick_any = (uint8_t)(pass >> 1);
        pick = pool_pick_tier(p, pl, tried, pass & 1);
#if RP_ENABLE_LIMITS
        if (pick < 0 && p->pick_full)
            pick = PICK_FULL;
#endif
    }
    p->pick_any = 0;
    return pick;
}

/* Passive health (nginx's max_fails/fail_timeout): failures closer together
 * than fail_timeout add up; max_fails of them take the device out for
 * fail_timeout, after which the next request probes it (one more failure
 * takes it out again).  Each failure also lowers the effective weight by
 * weight/max_fails, so a recovered device gets its share back gradually.
 * A success clears the count. */
void
device_fail(rp_proxy *p, int idx, int err)
{
    rp_device *d = DEVP(p, idx);
    uint16_t mf = d->max_fails ? d->max_fails : 1;
    d->failures++;
    d->last_err = err;
    p->stats.device_errors++;
    if (d->fails < d->max_fails && d->checked + d->fail_timeout_ms < p->now)
        d->fails = 0; /* earlier failures are out of the window */
    d->checked = p->now;
    DNS_SOON(p, d); /* a named device may have moved */
    d->effective -= d->weight / mf ? d->weight / mf : 1;
    if (d->effective < 0)
        d->effective = 0;
    if (d->max_fails && ++d->fails >= d->max_fails) {
        char a[48];
        d->down_until = p->now + d->fail_timeout_ms;
        rp_addr_format(&d->addr, a, sizeof(a));
        RP_LOG(RP_LOG_WARN, ("device %s:%u down for %u ms: %s", a, d->addr.port,
                             (unsigned)d->fail_timeout_ms, rp_strerror(err)));
        (void)a;
    }
}

RP_NOINLINE void
device_ok(rp_proxy *p, int idx)
{
    rp_device *d = DEVP(p, idx);
    d->fails = 0;
    d->down_until = 0;
    d->last_ok = p->now;
}

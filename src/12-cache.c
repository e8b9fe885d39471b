/* ==== [12] Cache: arena, entries, freshness (RFC 9111) ====
 * A stored response is an entry plus two chains of fixed-size arena blocks:
 * `meta` (key, Vary values, ETag, Last-Modified and the head as it will be
 * served) and `body`.  Fixed blocks cannot fragment; a hit sends the body
 * straight from its blocks (hit_send, a gather send).  Ready entries sit on
 * an LRU list and in a hash table; an entry being filled is in the table
 * only (a concurrent miss for the same URL waits for it: collapsing) and is
 * never evicted, nor is one that is pinned by an exchange serving or
 * revalidating it.  Anything malformed in the caching fields makes a
 * response stale or unstorable, never fresher.
 * Owns: p->cache, p->cache_arena, a client's cflags/centry/cfill/cblk/coff/
 * cleft.  Calls: [1] [3] [4] [11].  Called by: [9] (hit_send,
 * cache_release), [14] (fill_append), [15]. */
#include "rp_int.h"

#if RP_ENABLE_CACHE

/* ---- Cache-Control (RFC 9111 §5.2) ---- */

/* delta-seconds, quoted or not; -1 when not digits. */
static int64_t
cc_seconds(rp_str v)
{
    uint32_t n = 0; /* at most 2^31 + 1: 32 bits suffice */
    size_t i;
    if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"')
        v.p++, v.n -= 2;
    if (v.n == 0)
        return -1;
    for (i = 0; i < v.n; i++) {
        if (!is_digit((unsigned char)v.p[i]))
            return -1;
        n = n <= CC_SECONDS_MAX / 10 ? n * 10 + (uint32_t)(v.p[i] - '0') : CC_SECONDS_MAX;
    }
    return RP_MIN(n, CC_SECONDS_MAX);
}

/* The directives rproxy reads: a flag, a delta-seconds field (`at`, its
 * offset in cc_t), or both (max-stale: the flag when it has no value).  A
 * malformed or conflicting value of a `critical` one marks the field bad;
 * no-cache="f" and private="f" apply to the whole response. */
static const struct {
    const char *name;
    uint8_t len, flag, at, critical;
} cc_names[] = {
    {"no-store", 8, CC_NO_STORE, 0, 0},
    {"no-cache", 8, CC_NO_CACHE, 0, 0},
    {"private", 7, CC_PRIVATE, 0, 0},
    {"public", 6, CC_PUBLIC, 0, 0},
    {"must-revalidate", 15, CC_MUST_REVAL, 0, 0},
    {"proxy-revalidate", 16, CC_PROXY_REVAL, 0, 0},
    {"only-if-cached", 14, CC_ONLY_IF_CACHED, 0, 0},
    {"max-age", 7, 0, offsetof(cc_t, max_age), 1},
    {"s-maxage", 8, 0, offsetof(cc_t, s_maxage), 1},
    {"max-stale", 9, CC_MAX_STALE_ANY, offsetof(cc_t, max_stale), 0},
    {"min-fresh", 9, 0, offsetof(cc_t, min_fresh), 1},
    {"stale-if-error", 14, 0, offsetof(cc_t, sie), 0},
};

static void
cc_directive(cc_t *cc, rp_str k, rp_str v, int has_v)
{
    size_t i;
    for (i = 0; i < RP_COUNT(cc_names); i++)
        if (str_ieq(k, cc_names[i].name, cc_names[i].len)) {
            int64_t *slot = (int64_t *)((char *)cc + cc_names[i].at), n;
            if (!cc_names[i].at || (!has_v && cc_names[i].flag)) {
                cc->f |= cc_names[i].flag;
            } else if ((n = cc_seconds(v)) < 0 || (*slot >= 0 && *slot != n)) {
                if (cc_names[i].critical)
                    cc->f |= CC_BAD;
            } else {
                *slot = n;
            }
            return;
        }
}

/* One Cache-Control field value.  An unterminated quote or a stray
 * character marks the field bad (a response then counts as stale). */
void
cc_parse(cc_t *cc, rp_str s)
{
    size_t i = 0;
    while (i < s.n) {
        rp_str k, v = {"", 0};
        int has_v = 0;
        while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ','))
            i++;
        if (i == s.n)
            break; /* empty list elements are allowed (RFC 9110 §5.6.1) */
        for (k.p = s.p + i; i < s.n && is_tchar((unsigned char)s.p[i]); i++)
            ;
        k.n = (size_t)(s.p + i - k.p);
        if (i < s.n && s.p[i] == '=') {
            size_t j = ++i;
            has_v = 1;
            if (i < s.n && s.p[i] == '"') {
                for (i++; i < s.n && s.p[i] != '"'; i++)
                    if (s.p[i] == '\\')
                        i++;
                if (i >= s.n) {
                    cc->f |= CC_BAD; /* unterminated quoted-string */
                    return;
                }
                i++;
            } else {
                while (i < s.n && is_tchar((unsigned char)s.p[i]))
                    i++;
            }
            v.p = s.p + j, v.n = i - j;
        }
        while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t'))
            i++;
        if ((i < s.n && s.p[i] != ',') || k.n == 0) {
            cc->f |= CC_BAD;
            while (i < s.n && s.p[i] != ',')
                i++;
            continue;
        }
        cc_directive(cc, k, v, has_v);
    }
}

/* Every Cache-Control line of m (and Pragma: no-cache without one). */
void
cc_of(const rp_http_msg *m, cc_t *cc)
{
    size_t i;
    int any = 0, pragma = 0;
    memset(cc, 0xff, sizeof(*cc)); /* every delta-seconds field -1: absent */
    cc->f = 0;
    for (i = 0; i < m->nheaders; i++) {
        if (m->headers[i].id == H_CACHE_CONTROL)
            cc_parse(cc, m->headers[i].value), any = 1;
        else if (m->headers[i].id == H_PRAGMA)
            pragma |= m->headers[i].value.n >= 8 &&
                      str_ieq(m->headers[i].value, "no-cache", 8);
    }
    if (!any && pragma)
        cc->f |= CC_NO_CACHE; /* RFC 9111 §5.4 */
}

/* ---- Freshness (§4.2) ---- */

/* Statuses cacheable by default (RFC 9110 §15.1). */
int
heuristic_status(int s)
{
    static const uint16_t ok[] = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501};
    size_t i;
    for (i = 0; i < RP_COUNT(ok); i++)
        if (s == ok[i])
            return 1;
    return 0;
}

/* The one value of field id, or -2 when repeated, -1 absent / malformed. */
static int64_t
field_date(const rp_http_msg *m, int id, int *count)
{
    size_t i;
    int64_t t = -1;
    *count = 0;
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == id)
            t = (*count)++ ? -2 : http_date(m->headers[i].value);
    return t;
}

/* Freshness lifetime of response m (s): s-maxage > max-age > Expires - Date
 * > heuristic; 0 when anything it rests on is malformed, -1 when nothing
 * gives one. */
int64_t
cache_lifetime(const rp_http_msg *m, const cc_t *cc, int64_t date, int heuristic)
{
    int n;
    int64_t exp, lm;
    if (cc->f & CC_BAD)
        return 0;
    if (cc->s_maxage >= 0)
        return cc->s_maxage;
    if (cc->max_age >= 0)
        return cc->max_age;
    exp = field_date(m, H_EXPIRES, &n);
    if (n)
        return exp < 0 || date <= 0 || exp <= date ? 0 : exp - date;
    lm = field_date(m, H_LAST_MODIFIED, &n);
    if (heuristic && heuristic_status(m->status) && lm > 0 && date > lm)
        return RP_MIN((date - lm) / 10, 86400);
    return -1;
}

/* §4.2.3: the age at response time, from the device's Age, the response
 * delay and (with a clock) the apparent age.  -1 for a malformed Age. */
int64_t
initial_age(const rp_http_msg *m, int64_t date, int64_t now_wall, uint64_t req_ms,
            uint64_t resp_ms)
{
    size_t i;
    int64_t age = 0, apparent = 0, delay = (int64_t)((resp_ms - req_ms) / 1000);
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == H_AGE && (age = cc_seconds(m->headers[i].value)) < 0)
            return -1;
    if (date > 0 && now_wall > date)
        apparent = now_wall - date;
    return RP_MAX(apparent, age + delay);
}

RP_NOINLINE int64_t
entry_age(const rp_proxy *p, const struct rp_cache_entry *e)
{
    return e->age0 + (int64_t)((p->now - e->resp_ms) / 1000);
}

/* ---- Arena, chains, entries ---- */


static unsigned char *
blk_ptr(rp_proxy *p, unsigned b)
{
    return p->cache_arena + (size_t)b * RP_CACHE_BLOCK;
}

static void
chain_free(rp_proxy *p, chain *ch)
{
    struct rp_cache *k = &p->cache;
    unsigned b = ch->first;
    while (b) {
        unsigned nx = k->blk_next[b];
        k->blk_next[b] = k->free_blk;
        k->free_blk = (uint16_t)b;
        k->nblk_used--;
        b = nx;
    }
    ch->first = ch->last = 0;
    ch->len = 0;
}

void
lru_unlink(struct rp_cache *k, unsigned i)
{
    centry *e = &k->e[i];
    if (e->prev)
        k->e[e->prev].next = e->next;
    else
        k->lru_head = e->next;
    if (e->next)
        k->e[e->next].prev = e->prev;
    else
        k->lru_tail = e->prev;
    e->prev = e->next = 0;
}

RP_NOINLINE void
lru_front(struct rp_cache *k, unsigned i)
{
    centry *e = &k->e[i];
    e->prev = 0;
    e->next = k->lru_head;
    if (k->lru_head)
        k->e[k->lru_head].prev = (uint16_t)i;
    else
        k->lru_tail = (uint16_t)i;
    k->lru_head = (uint16_t)i;
}

static void
bucket_unlink(struct rp_cache *k, unsigned i)
{
    uint16_t *at = &k->bucket[k->e[i].hash % RP_CACHE_ENTRIES];
    while (*at && *at != i)
        at = &k->e[*at].hnext;
    if (*at)
        *at = k->e[i].hnext;
    k->e[i].hnext = 0;
}

/* Entry i leaves the table; its blocks go back now, or when the last
 * exchange using it lets go. */
static void
entry_drop(rp_proxy *p, unsigned i)
{
    struct rp_cache *k = &p->cache;
    centry *e = &k->e[i];
    if (e->flags & CE_DOOMED) {
        if (e->pins)
            return;
    } else {
        bucket_unlink(k, i);
        if (e->state == CE_READY) {
            lru_unlink(k, i);
            k->nentries--;
        }
        e->flags |= CE_DOOMED;
        if (e->pins)
            return;
    }
    chain_free(p, &e->meta);
    chain_free(p, &e->body);
    memset(e, 0, sizeof(*e));
    e->hnext = k->free_ent;
    k->free_ent = (uint16_t)i;
}

/* Evict the least recently used entry nobody is using; 0 when none. */
int
evict_one(rp_proxy *p)
{
    struct rp_cache *k = &p->cache;
    unsigned i = k->lru_tail;
    while (i && k->e[i].pins)
        i = k->e[i].prev;
    if (!i)
        return 0;
    entry_drop(p, i);
    p->stats.cache_evictions++;
    return 1;
}

static unsigned
blk_alloc(rp_proxy *p)
{
    struct rp_cache *k = &p->cache;
    unsigned b;
    for (;;) {
        if ((b = k->free_blk) != 0) {
            k->free_blk = k->blk_next[b];
            break;
        }
        if (k->fresh_blk + 1u < CACHE_NBLK) {
            b = ++k->fresh_blk; /* block 0 is never used */
            break;
        }
        if (!evict_one(p))
            return 0;
    }
    k->blk_next[b] = 0;
    k->nblk_used++;
    return b;
}

static unsigned
entry_alloc(rp_proxy *p)
{
    struct rp_cache *k = &p->cache;
    unsigned i;
    for (;;) {
        if ((i = k->free_ent) != 0) {
            k->free_ent = k->e[i].hnext;
            break;
        }
        if (k->fresh_ent + 1u < RP_CACHE_ENTRIES) {
            i = ++k->fresh_ent;
            break;
        }
        if (!evict_one(p))
            return 0;
    }
    memset(&k->e[i], 0, sizeof(k->e[i]));
    return i;
}

/* Append n bytes to a chain; RP_ENOMEM when the arena has no block left. */
int
chain_put(rp_proxy *p, chain *ch, const void *src, size_t n)
{
    const char *s = (const char *)src;
    while (n) {
        size_t off = ch->len % RP_CACHE_BLOCK, k;
        if (off == 0 && (ch->len || !ch->first)) {
            unsigned b = blk_alloc(p);
            if (!b)
                return RP_ENOMEM;
            if (ch->last)
                p->cache.blk_next[ch->last] = (uint16_t)b;
            else
                ch->first = (uint16_t)b;
            ch->last = (uint16_t)b;
        }
        k = RP_MIN(n, RP_CACHE_BLOCK - off);
        memcpy(blk_ptr(p, ch->last) + off, s, k);
        ch->len += (uint32_t)k, s += k, n -= k;
    }
    return RP_OK;
}

/* Copy n bytes at off out of a chain (the caller keeps off + n <= len). */
void
chain_get(rp_proxy *p, const chain *ch, size_t off, char *dst, size_t n)
{
    unsigned b = ch->first;
    while (off >= RP_CACHE_BLOCK)
        b = p->cache.blk_next[b], off -= RP_CACHE_BLOCK;
    while (n) {
        size_t k = RP_MIN(n, RP_CACHE_BLOCK - off);
        memcpy(dst, blk_ptr(p, b) + off, k);
        dst += k, n -= k, off = 0;
        b = p->cache.blk_next[b];
    }
}

/* Does the chain hold s at off (case-insensitively when ci)? */
static int
chain_eq(rp_proxy *p, const chain *ch, size_t off, rp_str s, int ci)
{
    char t[64];
    size_t i, k;
    while (s.n) {
        k = RP_MIN(s.n, sizeof(t));
        chain_get(p, ch, off, t, k);
        for (i = 0; i < k; i++)
            if (ci ? lower((unsigned char)s.p[i]) != t[i] : s.p[i] != t[i])
                return 0;
        s.p += k, s.n -= k, off += k;
    }
    return 1;
}

/* ---- Keys and Vary ---- */

RP_NOINLINE uint32_t
fnv(uint32_t h, const char *s, size_t n, int ci)
{
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ (uint32_t)(ci ? lower((unsigned char)s[i]) : (unsigned char)s[i])) * 16777619u;
    return h;
}


uint32_t
key_hash(uint32_t host_hash, rp_str target)
{
    return fnv(fnv(host_hash, " ", 1, 0), target.p, target.n, 0);
}

/* The stored key is "host target", the host lower-cased.  The parser lets
 * no SP into a host or a target, so with the lengths equal the one SP of
 * the stored key can only sit between the two: it is not compared. */
static int
key_eq(rp_proxy *p, const centry *e, rp_str host, rp_str target)
{
    return e->key_len == host.n + 1 + target.n && chain_eq(p, &e->meta, 0, host, 1) &&
           chain_eq(p, &e->meta, host.n + 1, target, 0);
}


/* The request's value of header `name` as a Vary key stores it: every
 * line's value joined with ", ", "\x01" when absent. */
static void
vary_value(const rp_http_msg *req, rp_str name, wbuf *w)
{
    size_t j;
    int seen = 0;
    for (j = 0; j < req->nheaders; j++)
        if (str_ieq2(req->headers[j].name, name)) {
            if (seen++)
                w_put(w, S(", "));
            w_str(w, req->headers[j].value);
        }
    if (!seen)
        w_put(w, "\x01", 1);
}

/* The request's values of the headers the response's Vary names, as the
 * entry stores them: "name\nvalue\n" per name.  Returns the length, or -1
 * for "*", more than VARY_MAX_NAMES names or more than VARY_BYTES. */
long
vary_key(const rp_http_msg *resp, const rp_http_msg *req, char *out)
{
    wbuf w;
    size_t i, j, names = 0;
    w.p = out, w.n = 0, w.cap = VARY_BYTES, w.full = 0;
    for (i = 0; i < resp->nheaders; i++) {
        rp_str v = resp->headers[i].value, e;
        if (resp->headers[i].id != H_VARY)
            continue;
        while (list_next(&v, &e)) {
            if ((e.n == 1 && e.p[0] == '*') || ++names > VARY_MAX_NAMES)
                return -1;
            j = w.n;
            w_str(&w, e);
            for (; j < w.n; j++) /* the name, lower-cased */
                out[j] = (char)lower((unsigned char)out[j]);
            w_put(&w, "\n", 1);
            vary_value(req, e, &w);
            w_put(&w, "\n", 1);
        }
    }
    return w.full ? -1 : (long)w.n;
}

/* Does the request select entry e (each stored value equal)? */
int
vary_match(rp_proxy *p, const centry *e, const rp_http_msg *req)
{
    char stored[VARY_BYTES], now[VARY_BYTES];
    size_t i = 0, n = e->vary_len;
    chain_get(p, &e->meta, e->key_len, stored, n);
    while (i < n) {
        const char *nl = memchr(stored + i, '\n', n - i), *vl;
        rp_str name, val;
        wbuf w;
        name.p = stored + i, name.n = (size_t)(nl - name.p);
        vl = memchr(nl + 1, '\n', n - (size_t)(nl + 1 - stored));
        val.p = nl + 1, val.n = (size_t)(vl - val.p);
        w.p = now, w.n = 0, w.cap = sizeof(now), w.full = 0;
        vary_value(req, name, &w);
        if (w.full || w.n != val.n || memcmp(now, val.p, val.n))
            return 0;
        i = (size_t)(vl + 1 - stored);
    }
    return 1;
}

/* ---- Lookup ---- */


/* May entry e answer a request with directives rq without the device?
 * *ttl gets the freshness left (negative: stale by that much). */
RP_NOINLINE int
entry_use(const rp_proxy *p, const centry *e, const cc_t *rq, unsigned *cf, int64_t *ttl)
{
    int64_t age = entry_age(p, e), left = (int64_t)e->lifetime - age;
    *ttl = left;
    if ((rq->f & CC_NO_CACHE) && !CFG(p)->cache_ignore_nocache) {
        *cf |= CF_REQNC;
        return USE_REVALIDATE;
    }
    if ((e->flags & CE_NO_CACHE) || (rq->f & CC_BAD) || rq->max_age == 0 ||
        (rq->max_age > 0 && age > rq->max_age) || (rq->min_fresh >= 0 && left < rq->min_fresh))
        return USE_REVALIDATE;
    if (left > 0)
        return USE_FRESH;
    if (!(e->flags & CE_NO_STALE) &&
        ((rq->f & CC_MAX_STALE_ANY) || (rq->max_stale >= 0 && -left <= rq->max_stale)))
        return USE_STALE;
    return USE_REVALIDATE;
}

/* Find the entry for (host, target) the request selects; *filling gets a
 * fill in progress for the URL, *variants how many are stored. */
unsigned
cache_find(rp_proxy *p, uint32_t key, rp_str host, const rp_http_msg *m, unsigned *filling,
           unsigned *variants)
{
    struct rp_cache *k = &p->cache;
    unsigned i, hit = 0;
    *filling = *variants = 0;
    for (i = k->bucket[key % RP_CACHE_ENTRIES]; i; i = k->e[i].hnext) {
        centry *e = &k->e[i];
        if (e->hash != key || !key_eq(p, e, host, m->target))
            continue;
        if (e->state == CE_FILLING)
            *filling = i;
        else if (++*variants && !hit && vary_match(p, e, m))
            hit = i;
    }
    return hit;
}

void
entry_pin(rp_proxy *p, rp_conn *c, unsigned i)
{
    p->cache.e[i].pins++;
    c->centry = (uint16_t)i;
}

void
entry_unpin(rp_proxy *p, rp_conn *c)
{
    unsigned i = c->centry;
    if (!i)
        return;
    c->centry = 0;
    if (--p->cache.e[i].pins == 0 && (p->cache.e[i].flags & CE_DOOMED))
        entry_drop(p, i);
}

/* A placeholder for the response this miss will fetch: concurrent misses
 * for the URL wait for it instead of all asking the device. */
void
fill_begin(rp_proxy *p, rp_conn *c, rp_str host, rp_str target)
{
    struct rp_cache *k = &p->cache;
    unsigned i = entry_alloc(p), j;
    centry *e;
    if (!i) {
        p->stats.cache_store_failures++;
        return;
    }
    e = &k->e[i];
    e->state = CE_FILLING;
    e->hash = c->ckey;
    for (j = 0; j < host.n; j++) {
        char ch = (char)lower((unsigned char)host.p[j]);
        if (chain_put(p, &e->meta, &ch, 1) != RP_OK)
            break;
    }
    if (j < host.n || chain_put(p, &e->meta, " ", 1) || chain_put(p, &e->meta, target.p, target.n)) {
        entry_drop(p, i);
        p->stats.cache_store_failures++;
        return;
    }
    e->key_len = (uint16_t)e->meta.len;
    e->hnext = k->bucket[e->hash % RP_CACHE_ENTRIES];
    k->bucket[e->hash % RP_CACHE_ENTRIES] = (uint16_t)i;
    c->cfill = (uint16_t)i;
}

/* Clients waiting on a fill of this key look again (next timer turn). */
static void
cache_wake(rp_proxy *p, uint32_t key)
{
    int i;
    for (i = 0; i < RP_MAX_CONNS; i++) {
        rp_conn *w = &p->clients[i];
        if (w->state == CS_CWAIT && w->ckey == key) {
            w->deadline = p->now;
            timer_hint(p, p->now);
        }
    }
}

void
fill_abort(rp_proxy *p, rp_conn *c)
{
    unsigned i = c->cfill;
    if (!i)
        return;
    c->cfill = 0;
    entry_drop(p, i);
    cache_wake(p, c->ckey);
}

/* Every stored variant of a key goes (RFC 9111 §4.4). */
void
cache_invalidate(rp_proxy *p, uint32_t key)
{
    struct rp_cache *k = &p->cache;
    unsigned i = k->bucket[key % RP_CACHE_ENTRIES], nx;
    for (; i; i = nx) {
        nx = k->e[i].hnext;
        if (k->e[i].hash == key && k->e[i].state == CE_READY) {
            entry_drop(p, i);
            p->stats.cache_invalidations++;
        } else if (k->e[i].hash == key && k->e[i].state == CE_FILLING) {
            k->e[i].flags |= CE_VOID; /* its body predates the change */
        }
    }
}

/* ---- Storing ---- */

/* Freshness, age and flags of a response to c's request, kept in its
 * entry.  A route's cache_ttl stands in for the heuristic (RFC 9111 §4.2.2):
 * the lifetime of a response that gives none and may be cached without one. */
int
entry_meta(rp_proxy *p, centry *e, const rp_http_msg *m, const rp_conn *c)
{
    cc_t cc;
    int n;
#if RP_ENABLE_WALL_CLOCK
    int64_t now_wall = rp_port_time();
#else
    int64_t now_wall = 0; /* no clock: no apparent age, Expires needs a Date */
#endif
    int64_t date, life, age;
    cc_of(m, &cc);
    date = field_date(m, H_DATE, &n);
    if (date < 0)
        date = now_wall; /* none (we add one), malformed or repeated */
#if RP_ENABLE_CACHE_TTL
    uint32_t ttl = CFG(p)->routes[c->route].cache_ttl;
    life = cache_lifetime(m, &cc, date, ttl ? 0 : CFG(p)->cache_heuristic);
    if (life < 0 && ttl && heuristic_status(m->status))
        life = ttl;
#else
    life = cache_lifetime(m, &cc, date, CFG(p)->cache_heuristic);
#endif
    age = initial_age(m, date, now_wall, c->t_start, p->now);
    e->flags &= (uint8_t)~(CE_NO_CACHE | CE_NO_STALE);
    if (cc.f & CC_NO_CACHE)
        e->flags |= CE_NO_CACHE;
    if ((cc.f & (CC_MUST_REVAL | CC_PROXY_REVAL)) || cc.s_maxage >= 0)
        e->flags |= CE_NO_STALE;
    e->lifetime = (int32_t)RP_MIN(RP_MAX(life, 0), (int64_t)0x7fffffff);
    if (age < 0)
        e->lifetime = 0, age = 0; /* a malformed Age: stale */
    e->age0 = age;
    e->resp_ms = p->now;
    e->stale_if_error = (int32_t)RP_MIN(cc.sie, (int64_t)0x7fffffff); /* -1: none */
    e->lm = field_date(m, H_LAST_MODIFIED, &n);
    e->status = (uint16_t)m->status;
    return life >= 0 || e->flags & CE_NO_CACHE;
}

/* May response m to a GET be stored (RFC 9111 §3)? */
static int
storable(const rp_proxy *p, const rp_conn *c, const rp_http_msg *m, const cc_t *cc)
{
    if (c->cflags & CF_NOSTORE || m->status < 200 || m->status == 206 || m->status == 304 ||
        (cc->f & (CC_NO_STORE | CC_PRIVATE)) || has_field(m, H_SET_COOKIE))
        return 0;
    if ((m->status != 204 && !(m->flags & (RP_HF_LENGTH | RP_HF_CHUNKED))) ||
        ((m->flags & RP_HF_LENGTH) && (uint64_t)m->content_length > CFG(p)->cache_max_object))
        return 0;
    if ((c->cflags & CF_AUTH) &&
        !(cc->f & (CC_PUBLIC | CC_MUST_REVAL)) && cc->s_maxage < 0)
        return 0;
    return cc->max_age >= 0 || cc->s_maxage >= 0 || has_field(m, H_EXPIRES) ||
           heuristic_status(m->status) || (cc->f & CC_PUBLIC);
}

/* Validators and head (already in stored form) after key and Vary. */
static int
meta_rest(rp_proxy *p, centry *e, const rp_http_msg *m, const char *head, size_t hn)
{
    rp_str etag = header_value(m, H_ETAG), lm = header_value(m, H_LAST_MODIFIED);
    if (e->meta.len + etag.n + lm.n + hn > RP_CACHE_META ||
        chain_put(p, &e->meta, etag.p, etag.n) || chain_put(p, &e->meta, lm.p, lm.n) ||
        chain_put(p, &e->meta, head, hn))
        return RP_ENOMEM;
    e->etag_len = (uint16_t)etag.n;
    e->lm_len = (uint16_t)lm.n;
    return RP_OK;
}

/* Write Vary values, validators and head after the key already in
 * e->meta.  The head is stored as hits will serve it: status line, the
 * device's end-to-end fields but Age and Cache-Status, Via, a Date when it
 * had none.  RP_OK or RP_ENOMEM. */
static int
meta_write(rp_proxy *p, centry *e, const rp_http_msg *m, const char *vary, size_t vn,
           char *scratch HMAP_ARG(const hmap *hmp))
{
    wbuf w;
    w.p = scratch, w.n = 0, w.cap = RP_CACHE_META, w.full = 0;
    w_head_fields(&w, m, 1, hmp);
    w_via_date(p, &w, m);
    if (w.full || e->key_len + vn > RP_CACHE_META || chain_put(p, &e->meta, vary, vn))
        return RP_ENOMEM;
    e->vary_len = (uint16_t)vn;
    return meta_rest(p, e, m, scratch, w.n);
}

/* Start storing response m (request req) if RFC 9111 §3 allows: the
 * placeholder gets Vary values, validators and head; the body follows. */
void
fill_start(rp_proxy *p, rp_conn *c, const rp_http_msg *req, const rp_http_msg *m)
{
    char vary[VARY_BYTES];
    rp_buf t = {0, 0, NULL};
#if RP_ENABLE_PATH_MAP
    hmap hm;
    char abuf[56];
#endif
    cc_t cc;
    centry *e;
    long vn;
    int ok;
    if (!(c->cflags & CF_LOOKUP) || (c->flags & F_HEAD))
        return;
    cc_of(m, &cc);
    if (!storable(p, c, m, &cc) || (vn = vary_key(m, req, vary)) < 0) {
        fill_abort(p, c);
        return;
    }
    if (!c->cfill)
        fill_begin(p, c, req->host, req->target);
    if (!c->cfill)
        return;
    e = &p->cache.e[c->cfill];
    ok = entry_meta(p, e, m, c) || header_value(m, H_ETAG).n ||
         header_value(m, H_LAST_MODIFIED).n;
    if (ok && (!buf_attach(p, &t) || meta_write(p, e, m, vary, (size_t)vn, t.d HMAP_ARG(hmap_of(p, c, c->link, &hm, abuf))) != RP_OK)) {
        p->stats.cache_store_failures++;
        ok = 0;
    }
    buf_release(p, &t, 1);
    if (!ok) {
        fill_abort(p, c);
        return;
    }
    e->expect = m->status == 204             ? 0
              : (m->flags & RP_HF_LENGTH) ? (uint64_t)m->content_length
                                          : ~(uint64_t)0;
    c->cflags |= CF_STORED;
}

void
fill_append(rp_proxy *p, rp_conn *c, const char *s, size_t n)
{
    centry *e = &p->cache.e[c->cfill];
    if (e->body.len + n > CFG(p)->cache_max_object || chain_put(p, &e->body, s, n) != RP_OK) {
        p->stats.cache_store_failures++;
        fill_abort(p, c);
    }
}

/* Do chains a and b hold the same bytes at [off, off + n)? */
static int
chains_same(rp_proxy *p, const chain *a, const chain *b, size_t off, size_t n)
{
    char x[64];
    while (n) {
        size_t k = RP_MIN(n, sizeof(x));
        chain_get(p, a, off, x, k);
        if (!chain_eq(p, b, off, (rp_str){x, k}, 0))
            return 0;
        off += k, n -= k;
    }
    return 1;
}

/* Is o stored under e's key (a variant of the same URL)? */
static RP_NOINLINE int
same_key(rp_proxy *p, const centry *o, const centry *e)
{
    return o->hash == e->hash && o->key_len == e->key_len &&
           chains_same(p, &o->meta, &e->meta, 0, e->key_len);
}

/* The fill is complete: it replaces the variant it matches, the least
 * recently used variant goes when there are too many, and it is served.
 * (The other variants are ready entries, so all on the LRU list.) */
void
fill_commit(rp_proxy *p, rp_conn *c)
{
    struct rp_cache *k = &p->cache;
    unsigned i = c->cfill, j, nx, variants = 0;
    centry *e = &k->e[i];
    if ((e->flags & CE_VOID) || (e->expect != ~(uint64_t)0 && e->body.len != e->expect)) {
        fill_abort(p, c);
        return;
    }
    c->cfill = 0;
    for (j = k->lru_tail; j; j = nx) {
        centry *o = &k->e[j];
        nx = o->prev;
        if (!same_key(p, o, e))
            continue;
        if (o->vary_len == e->vary_len &&
            chains_same(p, &o->meta, &e->meta, e->key_len, e->vary_len))
            entry_drop(p, j); /* the same variant: replaced */
        else
            variants++;
    }
    for (j = k->lru_tail; j && variants >= RP_CACHE_VARIANTS; j = nx) {
        nx = k->e[j].prev;
        if (!k->e[j].pins && same_key(p, &k->e[j], e)) {
            entry_drop(p, j);
            p->stats.cache_evictions++;
            variants--;
        }
    }
    e->state = CE_READY;
    lru_front(k, i);
    k->nentries++;
    p->stats.cache_stores++;
    cache_wake(p, c->ckey);
}

/* Let go of everything an exchange holds in the cache. */
void
cache_release(rp_proxy *p, rp_conn *c)
{
    fill_abort(p, c);
    entry_unpin(p, c);
    c->cleft = 0;
}

/* ---- Serving ---- */

/* Weak comparison (RFC 9110 §8.8.3.2) of an entity-tag with the stored. */
static int
etag_weak_eq(rp_str a, rp_str b)
{
    if (a.n >= 2 && a.p[0] == 'W' && a.p[1] == '/')
        a.p += 2, a.n -= 2;
    if (b.n >= 2 && b.p[0] == 'W' && b.p[1] == '/')
        b.p += 2, b.n -= 2;
    return a.n == b.n && a.n >= 2 && memcmp(a.p, b.p, a.n) == 0;
}

/* Would the client's own conditionals turn this hit into a 304?  An
 * If-None-Match decides alone; else one valid If-Modified-Since. */
static int
not_modified(rp_proxy *p, const centry *e, const rp_http_msg *m)
{
    char tag[256];
    rp_str inm = header_value(m, H_IF_NONE_MATCH), el, stored;
    int n;
    int64_t t;
    if (inm.n) {
        stored.p = tag, stored.n = e->etag_len <= sizeof(tag) ? e->etag_len : 0;
        chain_get(p, &e->meta, e->key_len + e->vary_len, tag, stored.n);
        while (list_next(&inm, &el))
            if ((el.n == 1 && el.p[0] == '*') || (stored.n && etag_weak_eq(el, stored)))
                return 1;
        return 0;
    }
    t = field_date(m, H_IF_MODIFIED_SINCE, &n);
    return n == 1 && t >= 0 && e->lm >= 0 && e->lm <= t;
}

/* Fields a 304 from the cache repeats (RFC 9110 §15.4.5). */
static int
kept_in_304(int id)
{
    return id == H_CACHE_CONTROL || id == H_DATE || id == H_ETAG || id == H_EXPIRES ||
           id == H_VARY || id == H_LAST_MODIFIED || id == H_CONTENT_LOCATION;
}

/* The stored head, whole (200) or cut to what a 304 repeats; returns
 * whether it wrote the 304 (else, when it could not, the whole head). */
static int
hit_fields(rp_proxy *p, const centry *e, int status304, wbuf *w)
{
    size_t off = (size_t)e->key_len + e->vary_len + e->etag_len + e->lm_len;
    size_t n = e->meta.len - off, i;
    rp_http_msg h;
    char *src;
    if (status304 && 2 * n + 64 <= w->cap - w->n) {
        src = w->p + w->cap - (n + 2);
        chain_get(p, &e->meta, off, src, n);
        memcpy(src + n, "\r\n", 2);
        if (rp_http_parse_response(src, n + 2, &h) == RP_OK) {
            w_put(w, S("HTTP/1.1 304 Not Modified\r\n"));
            for (i = 0; i < h.nheaders; i++)
                if (kept_in_304(h.headers[i].id))
                    w_header(w, &h.headers[i]);
            return 1;
        }
    }
    if (n > w->cap - w->n)
        w->full = 1;
    else
        chain_get(p, &e->meta, off, w->p + w->n, n), w->n += n;
    return 0;
}

/* Queue the answer from entry c->centry: a 304 for a matching conditional,
 * else the stored head and (not for HEAD) the body from the arena.  0 when
 * the client's buffer has no room yet. */
int
hit_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m, int64_t ttl)
{
    centry *e = &p->cache.e[c->centry];
    wbuf w = buf_writer(p, &c->out);
    int nm = hit_fields(p, e, not_modified(p, e, m), &w);
    if (!nm && e->status != 204) { /* RFC 9110 §8.6: never on a 204 */
        w_put(&w, S("Content-Length: "));
        w_num(&w, e->body.len);
        w_put(&w, S("\r\n"));
    }
    w_put(&w, S("Age: "));
    w_num(&w, (uint64_t)RP_MAX(entry_age(p, e), 0));
    w_put(&w, S("\r\n"));
    w_cache_status(&w, c, (c->cflags & CF_HIT) ? 0 : 304, ttl);
#if RP_ENABLE_HEADER_RULES
    w_hrules(p, c, &w, 1);
#endif
    if (head_end(c, &w, 1) != RP_OK)
        return 0;
    c->status = nm ? 304 : 200;
    if (!nm && !(c->flags & F_HEAD) && e->body.len) {
        c->cblk = e->body.first, c->coff = 0;
        c->cleft = e->body.len;
        SENT(c, e->body.len);
    }
    if (c->cflags & CF_HIT)
        p->stats.cache_hits++;
    if (!(e->flags & CE_DOOMED)) { /* a dropped entry is off the list */
        lru_unlink(&p->cache, c->centry);
        lru_front(&p->cache, c->centry);
    }
    return 1;
}

/* A 304 answered revalidation: the stored head takes the 304's fields
 * (RFC 9111 §4.3.4) and fresh metadata.  The meta chain is rebuilt.  A 304
 * without Date is dated on receipt (RFC 9110 §6.6.1), as its 200 was: else
 * the stored Date would keep the entry's apparent age growing, stale for
 * good after the first refresh. */
void
entry_refresh(rp_proxy *p, rp_conn *c, const rp_http_msg *r304)
{
    centry *e = &p->cache.e[c->centry];
    size_t off = (size_t)e->key_len + e->vary_len + e->etag_len + e->lm_len, i, j;
    size_t n = e->meta.len - off;
    rp_buf t = {0, 0, NULL};
    rp_http_msg old;
    chain fresh = {0, 0, 0}, stale = e->meta;
    wbuf w;
#if RP_ENABLE_WALL_CLOCK
    char date[30];
    int64_t now = has_field(r304, H_DATE) ? 0 : rp_port_time();
#endif
    if (e->meta.len + 2 + 2 * n + 1024 > RP_BUF_SIZE || !buf_attach(p, &t))
        goto out; /* room for the old meta and a merged head */
    chain_get(p, &e->meta, 0, t.d, e->meta.len);
    memcpy(t.d + e->meta.len, "\r\n", 2);
    if (rp_http_parse_response(t.d + off, n + 2, &old) != RP_OK)
        goto out;
    w.p = t.d + e->meta.len + 2, w.n = 0, w.cap = RP_BUF_SIZE - e->meta.len - 2, w.full = 0;
    w_status_line(&w, old.status, old.reason);
    for (i = 0; i < old.nheaders; i++) {
        for (j = 0; j < r304->nheaders; j++)
            if (str_ieq2(old.headers[i].name, r304->headers[j].name))
                break;
#if RP_ENABLE_WALL_CLOCK
        if (now > 0 && old.headers[i].id == H_DATE)
            continue;
#endif
        if (j == r304->nheaders)
            w_header(&w, &old.headers[i]);
    }
#if RP_ENABLE_WALL_CLOCK
    if (now > 0) {
        http_date_format(now, date);
        w_field(&w, S("Date"), (rp_str){date, 29});
    }
#endif
    for (j = 0; j < r304->nheaders; j++) {
        int id = r304->headers[j].id;
        if ((id == H_OTHER || id >= H_DATE) && id != H_AGE && id != H_CACHE_STATUS)
            w_header(&w, &r304->headers[j]);
    }
    w_put(&w, S("\r\n"));
    if (w.full || rp_http_parse_response(w.p, w.n, &old) != RP_OK)
        goto out;
    w.n -= 2;
    e->meta = fresh;
    if (chain_put(p, &e->meta, t.d, (size_t)e->key_len + e->vary_len) ||
        meta_rest(p, e, &old, w.p, w.n)) {
        chain_free(p, &e->meta);
        e->meta = stale;
        goto out;
    }
    chain_free(p, &stale);
    entry_meta(p, e, &old, c);
    p->stats.cache_revalidated++;
out:
    buf_release(p, &t, 1);
}


/* Step a hit's arena reader past n sent bytes. */
RP_NOINLINE void
hit_advance(rp_proxy *p, rp_conn *c, size_t n)
{
    while (n) {
        size_t k = RP_MIN(n, (size_t)(RP_CACHE_BLOCK - c->coff));
        c->coff = (uint16_t)(c->coff + k);
        c->cleft -= (uint32_t)k;
        n -= k;
        if (c->coff == RP_CACHE_BLOCK)
            c->cblk = p->cache.blk_next[c->cblk], c->coff = 0;
    }
}

/* Send what `out` holds and then a hit's body straight from its arena
 * blocks, in one gather send.  *len gets the bytes offered. */
long
hit_send(rp_proxy *p, rp_conn *c, size_t *len)
{
    rp_iov v[16];
    int n = 0;
    unsigned b = c->cblk, off = c->coff;
    size_t head = buf_len(&c->out), left = c->cleft;
    long r;
    if (head)
        v[n].p = c->out.d + c->out.r, v[n++].n = head;
    *len = head;
    while (n < 16 && left) {
        size_t k = RP_MIN(left, RP_CACHE_BLOCK - off);
        v[n].p = p->cache_arena + (size_t)b * RP_CACHE_BLOCK + off, v[n++].n = k;
        *len += k, left -= k, off = 0;
        b = p->cache.blk_next[b];
    }
    r = rp_port_sendv(c->sock, v, n);
    if (r > 0) {
        size_t k = RP_MIN((size_t)r, head);
        c->out.r += (uint32_t)k;
        hit_advance(p, c, (size_t)r - k);
    }
    return r;
}

/* "Cache-Status: rproxy; ..." (RFC 9211) on every response of a cache
 * route: what the cache did, the device's status when forwarded. */
void
w_cache_status(wbuf *w, const rp_conn *c, int status, int64_t ttl)
{
    unsigned f = c->cflags;
    if (!(f & CF_ON))
        return;
    w_put(w, S("Cache-Status: rproxy"));
    if (f & CF_HIT) {
        w_put(w, S("; hit; ttl="));
        if (ttl < 0)
            w_put(w, "-", 1), ttl = -ttl;
        w_num(w, (uint64_t)ttl);
    } else if (status) {
        w_put(w, S("; fwd="));
        if (!(f & CF_LOOKUP))
            w_put(w, S("method"));
        else if (f & CF_REQNC)
            w_put(w, S("request"));
        else if (f & CF_REVAL)
            w_put(w, S("stale"));
        else
            w_put(w, S("miss"));
        w_put(w, S("; fwd-status="));
        w_num(w, (uint64_t)status);
    }
    if (f & CF_STORED)
        w_put(w, S("; stored"));
    if (f & CF_COLLAPSED)
        w_put(w, S("; collapsed"));
    if (f & CF_SIE)
        w_put(w, S("; detail=stale-if-error"));
    w_put(w, S("\r\n"));
}

#if RP_ENABLE_ACCESS_LOG
/* The access log's word for what the cache did (rp_access.cache). */
const char *
cache_word(unsigned f)
{
    if (!(f & CF_ON))
        return NULL;
    if (f & CF_HIT)
        return f & CF_SIE ? "stale-if-error" : f & CF_REVAL ? "revalidated" : "hit";
    if (!(f & CF_LOOKUP))
        return "method";
    if (f & CF_REQNC)
        return "request";
    return f & CF_STORED ? "stored" : f & CF_REVAL ? "stale" : "miss";
}
#endif

#endif /* RP_ENABLE_CACHE */

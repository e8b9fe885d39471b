/*
 * fuzz_cache.c -- libFuzzer target: the response cache (src/12-cache.c and
 * the HTTP-date code in src/04-http.c), white-box: it includes src/rp_int.h
 * to reach the cache's internal functions (built with the sections, fuzz.mk).  Built with a small arena (see fuzz.mk:
 * 16 KiB of 256-byte blocks, 16 entries) so eviction and a full arena
 * happen within a few operations.
 *
 * SPDX-License-Identifier: MIT
 *
 * The first byte chooses what the rest is:
 *
 * even: caching fields.  Records [tag][len][len bytes]: Cache-Control,
 *   Expires, Date, Age, Vary, Last-Modified, Pragma values of a response,
 *   request fields (for Vary), the status and heuristic=on|off.  Each value
 *   goes raw (an exact-size heap copy) through cc_parse and http_date; the
 *   whole response, if rproxy's parser accepts it, through cc_of,
 *   cache_lifetime, initial_age and vary_key / vary_match.  Checked:
 *     - no crash, no over-read, no UB;
 *     - parsed numbers stay in [-1, 2^31]; parsing a Cache-Control value twice
 *       changes nothing (equal duplicates are fine);
 *     - CC_BAD never yields a positive lifetime, and nothing yields one when
 *       nothing gives it (-1 exactly when no s-maxage, max-age, Expires or
 *       heuristic); the heuristic never exceeds a day;
 *     - http_date is -1 or in range, and http_date(http_date_format(t)) == t,
 *       with http_date_format equal to libc's strftime;
 *     - initial_age is -1 or >= 0;
 *     - a Vary key the request produced matches that request again.
 *
 * odd: a script of cache operations, one opcode byte and its arguments:
 *   begin a fill (fill_start with a parsed response: key, variant, body
 *   size), append body bytes, commit, end early, abort, look up, pin, unpin,
 *   serve a pinned entry (hit_begin, the body walked from the arena as the
 *   sender does), refresh a pinned entry with a 304 (entry_refresh),
 *   invalidate, evict, move the clock.  After every operation the arena is
 *   checked whole: every block free or in exactly one chain, nblk_used, the
 *   entry free list, the LRU list both ways, every live entry in its bucket,
 *   pins and fills owned by the fake exchanges; a lookup finds the version
 *   committed last (or nothing), and bodies (stored, pinned, served) read
 *   back as written.
 */
#include "rp_int.h" /* white-box: the cache's internals */

#include <time.h>

#include "fuzz.h"

static rp_proxy P;

/* ==== input ==== */

typedef struct {
    const uint8_t *p;
    size_t n;
} in_t;

static unsigned
byte(in_t *in)
{
    unsigned b;
    if (!in->n)
        return 0;
    b = *in->p++;
    in->n--;
    return b;
}

static unsigned
u16(in_t *in)
{
    unsigned a = byte(in);
    return a | byte(in) << 8;
}

/* ==== integrity ==== */

static char why[512];
#define BAD(...)                                     \
    do {                                             \
        snprintf(why, sizeof why, __VA_ARGS__);      \
        return 0;                                    \
    } while (0)
#define OWN_FREE 0xffffu

static int
walk_chain(const chain *ch, unsigned owner, uint16_t *own, unsigned *nblk)
{
    const struct rp_cache *k = &P.cache;
    unsigned b = ch->first, n = 0, last = 0, want = (ch->len + RP_CACHE_BLOCK - 1) / RP_CACHE_BLOCK;
    if (ch->len == 0 && (ch->first || ch->last))
        BAD("entry %u: empty chain with blocks", owner / 2);
    while (b) {
        if (b > k->fresh_blk)
            BAD("entry %u: block %u never handed out", owner / 2, b);
        if (own[b] == OWN_FREE)
            BAD("entry %u: block %u is also free", owner / 2, b);
        if (own[b])
            BAD("block %u in two chains (entries %u and %u)", b, own[b] / 2, owner / 2);
        own[b] = (uint16_t)owner;
        if (++n > want)
            BAD("entry %u: chain longer than its length %u", owner / 2, ch->len);
        last = b;
        b = k->blk_next[b];
    }
    if (n != want || last != ch->last)
        BAD("entry %u: chain of %u blocks (want %u), last %u (says %u)", owner / 2, n, want, last, ch->last);
    *nblk += n;
    return 1;
}

#define NCONN 6

static rp_conn CONN[NCONN];

static int
integrity(void)
{
    const struct rp_cache *k = &P.cache;
    static uint16_t own[CACHE_NBLK];
    static uint8_t efree[RP_CACHE_ENTRIES], inlru[RP_CACHE_ENTRIES], inb[RP_CACHE_ENTRIES];
    unsigned b, i, n, used = 0, prev, ready = 0;
    memset(own, 0, sizeof own);
    memset(efree, 0, sizeof efree);
    memset(inlru, 0, sizeof inlru);
    memset(inb, 0, sizeof inb);
    if (k->fresh_blk >= CACHE_NBLK || k->fresh_ent >= RP_CACHE_ENTRIES)
        BAD("fresh_blk %u / fresh_ent %u out of range", k->fresh_blk, k->fresh_ent);
    for (b = k->free_blk; b; b = k->blk_next[b]) {
        if (b > k->fresh_blk || own[b])
            BAD("free block list: block %u unknown or visited twice", b);
        own[b] = OWN_FREE;
    }
    for (i = k->free_ent; i; i = k->e[i].hnext) {
        const centry *e = &k->e[i];
        if (i > k->fresh_ent || efree[i])
            BAD("free entry list: entry %u unknown or visited twice", i);
        efree[i] = 1;
        if (e->state != CE_FREE || e->pins || e->flags || e->meta.first || e->body.first)
            BAD("free entry %u not clean", i);
    }
    for (i = 1; i <= k->fresh_ent; i++) {
        const centry *e = &k->e[i];
        int j, pins = 0, fills = 0;
        if (efree[i])
            continue;
        if (e->state != CE_FILLING && e->state != CE_READY)
            BAD("entry %u: state %u but not on the free list (leaked)", i, e->state);
        if (!walk_chain(&e->meta, 2 * i, own, &used) || !walk_chain(&e->body, 2 * i + 1, own, &used))
            return 0;
        if (e->key_len > e->meta.len ||
            (e->state == CE_READY && (size_t)e->key_len + e->vary_len + e->etag_len + e->lm_len > e->meta.len))
            BAD("entry %u: field lengths beyond its meta chain", i);
        if ((e->flags & CE_DOOMED) && !e->pins)
            BAD("entry %u: doomed but nobody holds it", i);
        for (j = 0; j < NCONN; j++)
            pins += CONN[j].centry == i, fills += CONN[j].cfill == i;
        if (pins != e->pins)
            BAD("entry %u: pins %u, %d exchanges hold it", i, e->pins, pins);
        if (fills != (e->state == CE_FILLING))
            BAD("entry %u (state %u): %d exchanges fill it", i, e->state, fills);
    }
    for (b = 1; b <= k->fresh_blk; b++)
        if (!own[b])
            BAD("block %u neither free nor in a chain (leaked)", b);
    if (used != k->nblk_used)
        BAD("nblk_used %u, chains hold %u", k->nblk_used, used);
    for (i = k->lru_head, prev = 0, n = 0; i; prev = i, i = k->e[i].next) {
        if (i > k->fresh_ent || efree[i] || inlru[i])
            BAD("LRU: entry %u free, unknown or visited twice", i);
        inlru[i] = 1;
        if (k->e[i].prev != prev)
            BAD("LRU: entry %u prev %u, came from %u", i, k->e[i].prev, prev);
        if (k->e[i].state != CE_READY || (k->e[i].flags & CE_DOOMED))
            BAD("LRU holds entry %u in state %u flags %u", i, k->e[i].state, k->e[i].flags);
        n++;
    }
    if (k->lru_tail != prev)
        BAD("LRU tail %u, list ends at %u", k->lru_tail, prev);
    for (i = 1; i <= k->fresh_ent; i++) {
        const centry *e = &k->e[i];
        int live = !efree[i] && !(e->flags & CE_DOOMED);
        if (live && e->state == CE_READY && !inlru[i])
            BAD("ready entry %u not on the LRU list", i);
        ready += live && e->state == CE_READY;
    }
    if (n != k->nentries || ready != k->nentries)
        BAD("nentries %u, LRU has %u, ready entries %u", k->nentries, n, ready);
    for (b = 0; b < RP_CACHE_ENTRIES; b++)
        for (i = k->bucket[b]; i; i = k->e[i].hnext) {
            if (i > k->fresh_ent || efree[i] || inb[i])
                BAD("bucket %u: entry %u free, unknown or visited twice", b, i);
            inb[i] = 1;
            if (k->e[i].hash % RP_CACHE_ENTRIES != b || (k->e[i].flags & CE_DOOMED))
                BAD("entry %u in bucket %u (hash %u, flags %u)", i, b, k->e[i].hash, k->e[i].flags);
        }
    for (i = 1; i <= k->fresh_ent; i++)
        if (!efree[i] && !(k->e[i].flags & CE_DOOMED) && !inb[i])
            BAD("live entry %u not in its bucket", i);
    return 1;
}

/* ==== part 1: caching fields ==== */

static const char *const resp_names[] = {"Cache-Control", "Expires", "Date", "Age", "Vary", "Last-Modified",
                                         "Pragma", "ETag"};
static const char *const req_names[] = {"X-A", "x-b", "Accept", "Cache-Control", "Pragma", "X-A"};

static int
cc_same(const cc_t *a, const cc_t *b)
{
    return a->f == b->f && a->max_age == b->max_age && a->s_maxage == b->s_maxage &&
           a->max_stale == b->max_stale && a->min_fresh == b->min_fresh && a->sie == b->sie;
}

static void
cc_fresh(cc_t *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = cc->sie = -1;
}

static int
in_range(int64_t v)
{
    return v >= -1 && v <= (int64_t)CC_SECONDS_MAX;
}

#define DATE_MAX 253402300799LL /* Fri, 31 Dec 9999 23:59:59 GMT */

static void
check_date_value(const char *v, size_t n)
{
    int64_t t = http_date((rp_str){v, n});
    char f[32];
    FZ_CHECK(t == -1 || (t >= 0 && t <= DATE_MAX + 1), "http_date out of range: %lld", (long long)t);
    if (t >= 0 && t <= DATE_MAX) {
        http_date_format(t, f);
        FZ_CHECK(http_date((rp_str){f, 29}) == t, "http_date(http_date_format(%lld)) = %lld", (long long)t,
                 (long long)http_date((rp_str){f, 29}));
    }
}

static void
check_time(int64_t t)
{
    char f[32], libc[64];
    time_t tt = (time_t)t;
    struct tm tm;
    http_date_format(t, f);
    f[29] = 0;
    gmtime_r(&tt, &tm);
    strftime(libc, sizeof libc, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    FZ_CHECK(strcmp(f, libc) == 0, "http_date_format(%lld) = \"%s\", libc \"%s\"", (long long)t, f, libc);
    FZ_CHECK(http_date((rp_str){f, 29}) == t, "round trip of %lld (\"%s\")", (long long)t, f);
}

static void
fields(in_t *in)
{
    static char rb[12288], qb[12288], vary[VARY_BYTES];
    static rp_http_msg m, q;
    size_t rn, qn;
    int status = 200 + (int)(byte(in) % 400), heuristic = (int)(byte(in) & 1), has_sm = 0, has_ma = 0, has_exp = 0;
    int64_t date = (int64_t)u16(in) * 40000, life, age;
    uint64_t tbits = 0;
    unsigned i;
    cc_t cc, cc2;
    long vn;

    for (i = 0; i < 5; i++)
        tbits = tbits << 8 | byte(in);
    check_time((int64_t)(tbits % (uint64_t)(DATE_MAX + 1)));

    rn = (size_t)snprintf(rb, sizeof rb, "HTTP/1.1 %d X\r\n", status);
    qn = (size_t)snprintf(qb, sizeof qb, "GET /p HTTP/1.1\r\nHost: h\r\n");
    while (in->n) {
        unsigned tag = byte(in), len = byte(in);
        char *v;
        if (len > in->n)
            len = (unsigned)in->n;
        v = fz_copy(in->p, len); /* exact size: an over-read is caught */
        in->p += len, in->n -= len;
        cc_fresh(&cc);
        cc_parse(&cc, (rp_str){v, len});
        FZ_CHECK(in_range(cc.max_age) && in_range(cc.s_maxage) && in_range(cc.max_stale) &&
                     in_range(cc.min_fresh) && in_range(cc.sie),
                 "cc_parse number out of range");
        FZ_CHECK(!(cc.f & ~511u), "cc_parse: unknown flag %#x", cc.f);
        cc2 = cc;
        cc_parse(&cc2, (rp_str){v, len});
        FZ_CHECK(cc_same(&cc, &cc2), "cc_parse: the same value twice changed the result");
        check_date_value(v, len);
        if (tag & 0x80) {
            if (qn + len + 40 < sizeof qb)
                qn += (size_t)snprintf(qb + qn, sizeof qb - qn, "%s: %.*s\r\n", req_names[tag % RP_COUNT(req_names)],
                                       (int)len, v);
        } else if (rn + len + 40 < sizeof rb)
            rn += (size_t)snprintf(rb + rn, sizeof rb - rn, "%s: %.*s\r\n", resp_names[tag % RP_COUNT(resp_names)],
                                   (int)len, v);
        free(v);
    }
    rb[rn++] = '\r', rb[rn++] = '\n';
    qb[qn++] = '\r', qb[qn++] = '\n';
    if (rp_http_parse_response(rb, rn, &m) != RP_OK || rp_http_parse_request(qb, qn, &q) != RP_OK)
        return;

    cc_of(&m, &cc);
    FZ_CHECK(in_range(cc.max_age) && in_range(cc.s_maxage), "cc_of number out of range");
    for (i = 0; i < m.nheaders; i++)
        has_exp |= m.headers[i].id == H_EXPIRES;
    has_sm = cc.s_maxage >= 0, has_ma = cc.max_age >= 0;
    life = cache_lifetime(&m, &cc, date, heuristic);
    FZ_CHECK(life >= -1, "lifetime %lld", (long long)life);
    if (cc.f & CC_BAD)
        FZ_CHECK(life == 0, "CC_BAD but lifetime %lld", (long long)life);
    else if (has_sm)
        FZ_CHECK(life == cc.s_maxage, "s-maxage %lld, lifetime %lld", (long long)cc.s_maxage, (long long)life);
    else if (has_ma)
        FZ_CHECK(life == cc.max_age, "max-age %lld, lifetime %lld", (long long)cc.max_age, (long long)life);
    else if (has_exp)
        FZ_CHECK(life >= 0 && (life == 0 || date > 0), "Expires: lifetime %lld", (long long)life);
    else
        FZ_CHECK(life <= 86400 && (life == -1 || (heuristic && heuristic_status(status))),
                 "heuristic lifetime %lld (heuristic %d, status %d)", (long long)life, heuristic, status);
    FZ_CHECK(cache_lifetime(&m, &cc, date, 0) <= life || (cc.f & CC_BAD), "heuristic=off gives more");

    age = initial_age(&m, date, date + (int64_t)(tbits & 0xffff), 1000, 1000 + (tbits >> 16 & 0xfffff));
    FZ_CHECK(age >= -1, "initial_age %lld", (long long)age);

    vn = vary_key(&m, &q, vary);
    FZ_CHECK(vn >= -1 && vn <= VARY_BYTES, "vary_key %ld", vn);
    if (vn >= 0) {
        rp_conn c;
        memset(&c, 0, sizeof c);
        c.ckey = 7;
        fill_begin(&P, &c, (rp_str){"h", 1}, (rp_str){"/p", 2});
        FZ_CHECK(c.cfill, "no room for one entry in an empty arena");
        if (chain_put(&P, &P.cache.e[c.cfill].meta, vary, (size_t)vn) == RP_OK) {
            P.cache.e[c.cfill].vary_len = (uint16_t)vn;
            FZ_CHECK(vary_match(&P, &P.cache.e[c.cfill], &q), "a Vary key does not match its own request");
        }
        fill_abort(&P, &c);
        FZ_CHECK(P.cache.nblk_used == 0, "fill_abort left %u blocks", P.cache.nblk_used);
    }
}

/* ==== part 2: operations ==== */

#define NKEYS 5
#define NVAR 3

static uint32_t model[NKEYS][NVAR];
static struct {
    int key, var;
    uint32_t seed, len, put;
} cs_[NCONN];
static uint32_t seed_next;

static uint32_t
mix(uint32_t x)
{
    x ^= x >> 16, x *= 0x7feb352du, x ^= x >> 15, x *= 0x846ca68bu, x ^= x >> 16;
    return x;
}

static unsigned char
seed_byte(uint32_t seed, uint32_t off)
{
    return (unsigned char)(mix(seed * 0x9E3779B1u + off / 4) >> (8 * (off & 3)));
}

static int
mvar(int key, int var)
{
    return key == 0 ? 0 : var; /* key 0 has no Vary */
}

static const rp_http_msg *
key_req(int key, int var, const char *extra)
{
    static char buf[2][512];
    static rp_http_msg m[2];
    static int k;
    int i = k++ & 1, n;
    n = snprintf(buf[i], sizeof buf[i], "GET /k%d HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n", key, key & 1 ? "H" : "h",
                 var ? "X-V: " : "", var ? (var == 1 ? "a\r\n" : "b\r\n") : "", extra);
    FZ_CHECK(rp_http_parse_request(buf[i], (size_t)n, &m[i]) == RP_OK, "test request does not parse");
    return &m[i];
}

static uint32_t
ckey_of(const rp_http_msg *m)
{
    return key_hash(fnv(FNV0, m->host.p, m->host.n, 1), m->target);
}

static uint32_t
entry_seed(const centry *e)
{
    char t[16];
    if (e->etag_len != 10)
        return 0;
    chain_get(&P, &e->meta, (size_t)e->key_len + e->vary_len, t, 10);
    t[10] = 0;
    return (uint32_t)strtoul(t + 1, NULL, 16);
}

static int
body_ok(const centry *e, uint32_t seed, uint32_t len)
{
    char buf[256];
    uint32_t off = 0, i;
    if (e->body.len != len)
        BAD("entry %u: body %u bytes, version %u has %u", (unsigned)(e - P.cache.e), e->body.len, seed, len);
    while (off < len) {
        uint32_t k = RP_MIN(len - off, (uint32_t)sizeof buf);
        chain_get(&P, &e->body, off, buf, k);
        for (i = 0; i < k; i++)
            if ((unsigned char)buf[i] != seed_byte(seed, off + i))
                BAD("entry %u: body byte %u of version %u differs", (unsigned)(e - P.cache.e), off + i, seed);
        off += k;
    }
    return 1;
}

/* Body length of version seed, kept in the head ("X-Len") and in cs_;
 * for stored entries it is the body chain's length once committed. */
static uint32_t stored_len[1 << 12];

static int
conn_with(unsigned pick, int fill)
{
    int j, n;
    for (n = 0, j = (int)(pick % NCONN); n < NCONN; n++, j = (j + 1) % NCONN)
        if (fill < 0 ? (!CONN[j].cfill && !CONN[j].centry) : fill ? CONN[j].cfill != 0 : CONN[j].centry != 0)
            return j;
    return -1;
}

static int
op(in_t *in)
{
    unsigned code = byte(in), a = byte(in), b = byte(in);
    int j, key = (int)(a % NKEYS), var = (int)(b % NVAR);
    const rp_http_msg *rq;
    unsigned hit, filling, variants;
    switch (code % 12) {
    case 0: { /* begin: [len16][x]([nx] if x & 0x80)([npad16] if x & 0x40): a response
               * of len body bytes, nx extra fields, a pad field of npad bytes */
        static char f[RP_MAX_HEAD + 256], head[RP_MAX_HEAD + 512];
        static rp_http_msg m;
        uint32_t seed, len = u16(in) % 5000;
        unsigned x = byte(in), nx = x & 0x80 ? byte(in) % 70 : 0, npad = x & 0x40 ? u16(in) % 8192 : 0, i;
        size_t fn;
        int n;
        if ((j = conn_with(a + b, -1)) < 0 || seed_next + 1 >= RP_COUNT(stored_len))
            return 1;
        seed = ++seed_next;
        stored_len[seed] = len;
        rq = key_req(key, var, "");
        fn = (size_t)snprintf(f, sizeof f, "Cache-Control: max-age=%u%s\r\nContent-Length: %u\r\nETag: \"%08x\"\r\n%s",
                              b, a & 0x80 ? ", must-revalidate" : "", len, seed, key ? "Vary: X-V\r\n" : "");
        for (i = 0; i < nx; i++)
            fn += (size_t)snprintf(f + fn, sizeof f - fn, "X-%u: v\r\n", i);
        if (npad && fn + npad + 16 < sizeof f) {
            fn += (size_t)snprintf(f + fn, sizeof f - fn, "X-Pad: ");
            memset(f + fn, 'p', npad);
            fn += npad;
            fn += (size_t)snprintf(f + fn, sizeof f - fn, "\r\n");
        }
        n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n%s\r\n", f);
        if (n >= (int)sizeof head || rp_http_parse_response(head, (size_t)n, &m) != RP_OK)
            return 1; /* more than the parser takes: the device's response is refused */
        memset(&CONN[j], 0, sizeof CONN[j]);
        CONN[j].ckey = ckey_of(rq);
        CONN[j].cflags = CF_ON | CF_LOOKUP;
        CONN[j].t_start = P.now;
        fill_start(&P, &CONN[j], rq, &m);
        cs_[j].key = key, cs_[j].var = var, cs_[j].seed = seed, cs_[j].len = len, cs_[j].put = 0;
        if (CONN[j].cfill)
            FZ_CHECK(P.cache.e[CONN[j].cfill].state == CE_FILLING && P.cache.e[CONN[j].cfill].expect == len,
                     "fill_start: bad placeholder");
        return 1;
    }
    case 1: case 2: { /* append */
        unsigned char buf[1024];
        uint32_t k, i;
        if ((j = conn_with(a, 1)) < 0)
            return 1;
        k = RP_MIN(cs_[j].len - cs_[j].put, 1 + b * 4);
        for (i = 0; i < k; i++)
            buf[i] = seed_byte(cs_[j].seed, cs_[j].put + i);
        if (k)
            fill_append(&P, &CONN[j], (const char *)buf, k);
        cs_[j].put += k;
        return 1;
    }
    case 3: { /* commit, or an early end that must abort */
        unsigned i;
        int voided;
        if ((j = conn_with(a, 1)) < 0)
            return 1;
        i = CONN[j].cfill;
        voided = (P.cache.e[i].flags & CE_VOID) != 0; /* invalidated mid-fill */
        fill_commit(&P, &CONN[j]);
        FZ_CHECK(!CONN[j].cfill, "fill_commit left cfill");
        rq = key_req(cs_[j].key, cs_[j].var, "");
        hit = cache_find(&P, ckey_of(rq), rq->host, rq, &filling, &variants);
        if (cs_[j].put != cs_[j].len || voided) {
            if (hit == i)
                BAD("a short or invalidated fill (%u of %u) was committed", cs_[j].put, cs_[j].len);
            return 1;
        }
        if (hit != i)
            BAD("committed entry %u not found (lookup gave %u)", i, hit);
        model[cs_[j].key][mvar(cs_[j].key, cs_[j].var)] = cs_[j].seed;
        return 1;
    }
    case 4: /* abort */
        if ((j = conn_with(a, 1)) >= 0)
            fill_abort(&P, &CONN[j]);
        return 1;
    case 5: case 6: { /* look up; pin */
        uint32_t seed;
        int mv = mvar(key, var);
        rq = key_req(key, var, "");
        hit = cache_find(&P, ckey_of(rq), rq->host, rq, &filling, &variants);
        if (!hit) {
            model[key][mv] = 0;
            return 1;
        }
        seed = entry_seed(&P.cache.e[hit]);
        if (P.cache.e[hit].state != CE_READY || (P.cache.e[hit].flags & CE_DOOMED))
            BAD("lookup found entry %u in state %u flags %u", hit, P.cache.e[hit].state, P.cache.e[hit].flags);
        if (seed != model[key][mv])
            BAD("key %d variant %d: found version %u, last committed %u", key, mv, seed, model[key][mv]);
        if (!body_ok(&P.cache.e[hit], seed, stored_len[seed]))
            return 0;
        if ((code % 12) == 6 && (j = conn_with(b, -1)) >= 0) {
            memset(&CONN[j], 0, sizeof CONN[j]);
            entry_pin(&P, &CONN[j], hit);
            cs_[j].key = key, cs_[j].var = var, cs_[j].seed = seed, cs_[j].len = stored_len[seed];
        }
        return 1;
    }
    case 7: /* unpin */
        if ((j = conn_with(a, 0)) < 0)
            return 1;
        if (!body_ok(&P.cache.e[CONN[j].centry], cs_[j].seed, cs_[j].len))
            return 0;
        entry_unpin(&P, &CONN[j]);
        return 1;
    case 8: { /* serve a pinned entry, as hit_begin and the sender do */
        rp_conn *c;
        const centry *e;
        char inm[64];
        if ((j = conn_with(a, 0)) < 0)
            return 1;
        c = &CONN[j];
        e = &P.cache.e[c->centry];
        snprintf(inm, sizeof inm, "If-None-Match: \"%08x\"\r\n", b & 1 ? cs_[j].seed : 0u);
        rq = key_req(cs_[j].key, cs_[j].var, b & 2 ? inm : "");
        c->cflags = CF_ON | CF_LOOKUP | CF_HIT;
        c->flags = F_KEEP;
        memset(&c->out, 0, sizeof c->out);
        /* the client's buffer is empty: there is room for any stored head */
        FZ_CHECK(hit_begin(&P, c, rq, 0), "hit_begin found no room in an empty buffer (stored head %u bytes)",
                 e->meta.len - e->key_len - e->vary_len - e->etag_len - e->lm_len);
        FZ_CHECK(c->out.d && c->out.w - c->out.r > 9 && memcmp(c->out.d + c->out.r, "HTTP/1.1 ", 9) == 0,
                 "hit_begin: the answer does not start with a status line: \"%.20s\"",
                 c->out.d ? c->out.d + c->out.r : "");
        {
            /* a matching If-None-Match: 304 (a whole 200 is a correct answer too) */
            FZ_CHECK(c->status == 200 || (c->status == 304 && (b & 3) == 3), "hit_begin: status %d", c->status);
            if (c->status == 200) {
                uint32_t left = c->cleft, off = 0, blk = c->cblk, boff = c->coff;
                FZ_CHECK(left == e->body.len, "hit_begin: %u body bytes to send, entry has %u", left, e->body.len);
                while (left) { /* the walk hit_send (src/12-cache.c) does */
                    uint32_t k = RP_MIN(left, RP_CACHE_BLOCK - boff), i;
                    for (i = 0; i < k; i++)
                        if (P.cache_arena[(size_t)blk * RP_CACHE_BLOCK + boff + i] != seed_byte(cs_[j].seed, off + i))
                            BAD("served body byte %u of version %u differs", off + i, cs_[j].seed);
                    off += k, left -= k, boff += k;
                    if (boff == RP_CACHE_BLOCK)
                        blk = P.cache.blk_next[blk], boff = 0;
                }
            }
        }
        buf_release(&P, &c->out, 1);
        c->cleft = 0;
        return 1;
    }
    case 9: { /* a 304 refreshes a pinned entry */
        char head[2048], pad[1024], etag[32] = "";
        static rp_http_msg m;
        size_t padn = (size_t)b * 4 % sizeof pad;
        int n;
        if ((j = conn_with(a, 0)) < 0)
            return 1;
        memset(pad, 'p', padn);
        if (!(b & 1)) /* the same ETag: the same version */
            snprintf(etag, sizeof etag, "ETag: \"%08x\"\r\n", cs_[j].seed);
        n = snprintf(head, sizeof head, "HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=%u\r\n%sX-Pad: %.*s\r\n\r\n",
                     a, etag, (int)padn, pad);
        FZ_CHECK(rp_http_parse_response(head, (size_t)n, &m) == RP_OK, "test 304 does not parse");
        CONN[j].t_start = P.now;
        entry_refresh(&P, &CONN[j], &m);
        if (!body_ok(&P.cache.e[CONN[j].centry], cs_[j].seed, cs_[j].len))
            return 0;
        FZ_CHECK(entry_seed(&P.cache.e[CONN[j].centry]) == cs_[j].seed, "refresh changed the ETag");
        return 1;
    }
    case 10: { /* invalidate */
        int v;
        rq = key_req(key, 0, "");
        cache_invalidate(&P, ckey_of(rq));
        for (v = 0; v < NVAR; v++)
            model[key][v] = 0;
        return 1;
    }
    case 11: /* evict, or time passes */
        if (b & 1)
            P.now += a * 1000u;
        else if (!evict_one(&P)) {
            unsigned i;
            for (i = P.cache.lru_head; i; i = P.cache.e[i].next)
                FZ_CHECK(P.cache.e[i].pins, "evict_one found nothing, but entry %u is not pinned", i);
        }
        return 1;
    }
    return 1;
}

static void
ops(in_t *in)
{
    int j, n = 0;
    memset(CONN, 0, sizeof CONN);
    memset(model, 0, sizeof model);
    seed_next = 0;
    while (in->n) {
        unsigned code = in->n ? in->p[0] : 0;
        int ok = op(in);
        n++;
        if (ok)
            ok = integrity();
        for (j = 0; ok && j < NCONN; j++)
            if (CONN[j].centry)
                ok = body_ok(&P.cache.e[CONN[j].centry], cs_[j].seed, cs_[j].len);
        FZ_CHECK(ok, "after operation %d (code %u): %s", n, code % 12, why);
    }
    for (j = 0; j < NCONN; j++) {
        fill_abort(&P, &CONN[j]);
        entry_unpin(&P, &CONN[j]);
    }
    FZ_CHECK(integrity(), "after releasing everything: %s", why);
    for (n = 0; n < 100000 && evict_one(&P); n++)
        ;
    FZ_CHECK(integrity() && P.cache.nblk_used == 0 && P.cache.nentries == 0,
             "after evicting everything: %u blocks, %u entries used; %s", P.cache.nblk_used, P.cache.nentries, why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_t in;
    unsigned mode;
    in.p = data, in.n = size;
    rp_init(&P);
    P.now = 1000000;
    why[0] = 0;
    mode = byte(&in);
    if (mode & 1)
        ops(&in);
    else
        fields(&in);
    return 0;
}

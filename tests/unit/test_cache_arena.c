/*
 * test_cache_arena.c -- white-box tests of the cache arena and entry table:
 * block chains across block edges, a pinned entry replaced, an arena full
 * of pinned entries, two URLs whose keys share a hash, and ~1,000,000
 * random operations through the real fill, commit, abort, lookup,
 * pin/unpin, invalidate and evict functions against a model, with a full
 * integrity check (cache_scenario.h) of blocks, chains, entry lists, LRU
 * and buckets, and every stored body read back against a per-version byte
 * pattern.
 *
 * SPDX-License-Identifier: MIT
 *
 * cache_scenario.h includes src/rp_int.h (see there and the Makefile).
 */
#include "cache_scenario.h"

#include <time.h>

/* ==== targeted arena cases ==== */

static rp_str
cs(const char *s)
{
    rp_str v;
    v.p = s, v.n = strlen(s);
    return v;
}

/* Commit a tiny READY entry for (host, target) with hash `hash`. */
static unsigned
put_entry(rp_conn *c, uint32_t hash, const char *target, const char *vary, const char *rest)
{
    unsigned i;
    memset(c, 0, sizeof *c);
    c->ckey = hash;
    fill_begin(&P, c, STR("h"), cs(target));
    if (!(i = c->cfill))
        return 0;
    chain_put(&P, &P.cache.e[i].meta, vary, strlen(vary));
    P.cache.e[i].vary_len = (uint16_t)strlen(vary);
    chain_put(&P, &P.cache.e[i].meta, rest, strlen(rest));
    P.cache.e[i].expect = ~(uint64_t)0;
    fill_commit(&P, c);
    return P.cache.e[i].state == CE_READY ? i : 0;
}

#define EDGE_BUF (3 * RP_CACHE_BLOCK + 7)

/* chain_put / chain_get across block edges, with buf[0..EDGE_BUF). */
static void
chain_edges(const char *buf)
{
    rp_conn a;
    unsigned i, fill;
    memset(&a, 0, sizeof a);
    a.ckey = 1;
    fill_begin(&P, &a, STR("h"), STR("/c"));
    fill = a.cfill;
    CHECK(fill && chain_put(&P, &P.cache.e[fill].body, buf, RP_CACHE_BLOCK - 1) == RP_OK &&
              chain_put(&P, &P.cache.e[fill].body, buf + RP_CACHE_BLOCK - 1, 1) == RP_OK &&
              chain_put(&P, &P.cache.e[fill].body, buf + RP_CACHE_BLOCK, EDGE_BUF - RP_CACHE_BLOCK) == RP_OK,
          "chain_put: pieces ending on and across block edges");
    {
        char got[EDGE_BUF];
        int same = 1;
        for (i = 0; i < EDGE_BUF && same; i += 37) {
            size_t n = RP_MIN(EDGE_BUF - i, (size_t)300);
            chain_get(&P, &P.cache.e[fill].body, i, got, n);
            same = memcmp(got, buf + i, n) == 0;
        }
        CHECK(same && P.cache.e[fill].body.len == EDGE_BUF, "chain_get: every offset reads back");
    }
    CHECK(integrity(&P, NULL, 0), "chain edges: integrity %s", why);
    fill_abort(&P, &a);
    CHECK(integrity(&P, NULL, 0) && P.cache.nblk_used == 0, "fill_abort returns every block (%u) %s",
          P.cache.nblk_used, why);
}

/* A pinned entry that is replaced stays whole until unpinned. */
static void
pinned_replaced(void)
{
    rp_conn a, b, c;
    unsigned i, j;
    memset(&b, 0, sizeof b);
    i = put_entry(&a, 77, "/r", "", "\"v1\"HEAD1");
    entry_pin(&P, &b, i);
    j = put_entry(&c, 77, "/r", "", "\"v2\"HEAD2");
    CHECK(i && j && j != i && (P.cache.e[i].flags & CE_DOOMED) && P.cache.e[i].pins == 1,
          "replaced while pinned: the old entry is doomed, not freed");
    CHECK(integrity(&P, NULL, 0), "replaced while pinned: integrity %s", why);
    entry_unpin(&P, &b);
    CHECK(P.cache.e[i].state == CE_FREE && integrity(&P, NULL, 0), "unpinned: the doomed entry is freed %s", why);
    cache_invalidate(&P, 77);
    CHECK(P.cache.nentries == 0 && P.cache.nblk_used == 0, "invalidate: all gone");
}

/* The arena full of pinned entries (700 bytes of buf each): a fill is
 * refused, nothing breaks. */
static void
full_of_pinned(const char *buf)
{
    rp_conn pc[RP_CACHE_ENTRIES];
    unsigned n = 0, refused = 0, j, x;
    memset(pc, 0, sizeof pc);
    for (x = 0; x < 200; x++) {
        char t[16];
        rp_conn f;
        snprintf(t, sizeof t, "/p%u", x);
        memset(&f, 0, sizeof f);
        f.ckey = 1000 + x;
        fill_begin(&P, &f, STR("h"), cs(t));
        if (!f.cfill) {
            refused++;
            continue;
        }
        if (chain_put(&P, &P.cache.e[f.cfill].body, buf, 700) != RP_OK) {
            refused++;
            continue; /* fill_append would abort: chain_put left it filling */
        }
        P.cache.e[f.cfill].expect = ~(uint64_t)0;
        j = f.cfill;
        fill_commit(&P, &f);
        if (n < RP_CACHE_ENTRIES)
            entry_pin(&P, &pc[n++], j);
        if (!integrity(&P, NULL, 0))
            break;
    }
    CHECK(integrity(&P, NULL, 0) && refused > 0, "arena full of pinned entries: fills refused (%u), whole %s",
          refused, why);
    for (x = 0; x < n; x++)
        entry_unpin(&P, &pc[x]);
    while (evict_one(&P))
        ;
    CHECK(integrity(&P, NULL, 0) && P.cache.nblk_used == 0, "released and evicted: empty (%u blocks) %s",
          P.cache.nblk_used, why);
}

/* The three cases above, one after the other on one arena. */
static void
test_arena_cases(void)
{
    char buf[EDGE_BUF];
    unsigned i;
    rp_init(&P);
    for (i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 7 + 1);
    chain_edges(buf);
    pinned_replaced();
    full_of_pinned(buf);
}

/* Two URLs whose keys hash alike (FNV-1a, 32 bits: an attacker can make
 * such a pair), the one's key a prefix of the other's meta chain:
 * committing variants of the one must not evict the other.  The
 * variant-limit loop in fill_commit tells variants of a URL by same_key,
 * which compares key_len before the key bytes (it once compared only
 * e->key_len bytes of the other entry's meta chain). */
static void
test_collision(void)
{
    rp_conn c;
    unsigned victim, x, found, filling, variants;
    const rp_http_msg *m;
    rp_init(&P);
    /* victim "h /a": meta = key, no Vary, ETag "x", then its head */
    victim = put_entry(&c, 4242, "/a", "", "\"x\"HTTP/1.1 200 OK\r\n");
    /* attacker: target "/a\"x\"HTTP" -- its key is a prefix of the victim's
     * meta; five Vary variants with the victim's hash */
    for (x = 0; x < 5; x++) {
        char v[16];
        snprintf(v, sizeof v, "x-v\n%u\n", x);
        put_entry(&c, 4242, "/a\"x\"HTTP", v, "\"y\"HTTP/1.1 200 OK\r\n");
    }
    m = reqt("/a", "h", "");
    found = cache_find(&P, 4242, STR("h"), m, &filling, &variants);
    CHECK(victim && found == victim,
          "collision: another URL's variants do not evict an entry whose key only shares the hash (found %u, want %u)",
          found, victim);
    CHECK(integrity(&P, NULL, 0), "collision: integrity %s", why);
}

/* ==== the arena under churn ==== */

#define NKEYS 40
#define NVAR 6     /* X-V absent, a..e: more than RP_CACHE_VARIANTS */
#define NCONN 24
#define MAX_FILLS 6 /* fills in progress at once */
#define CHURN_OPS 1000000L
#define CHECK_EVERY 500

static rp_conn CONN[NCONN];
static uint32_t model[NKEYS][NVAR]; /* seed of the version committed last, 0 none */
static struct {
    int key, var;     /* what CONN[i] fills or holds */
    uint32_t seed;
    uint32_t len, put; /* body: announced, appended */
} cs_[NCONN];
static uint32_t seed_next = 1;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static struct {
    long begins, stored, refused, appends, commits, aborts, early, lookups, hits, evicted_seen, pins, unpins,
        invalidates, evicts, checks;
} st;

static uint32_t
rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

static uint32_t
mix(uint32_t x)
{
    x ^= x >> 16, x *= 0x7feb352du, x ^= x >> 15, x *= 0x846ca68bu, x ^= x >> 16;
    return x;
}

/* The body of version `seed`: its length and its bytes. */
static uint32_t
seed_len(uint32_t seed)
{
    uint32_t h = mix(seed);
    switch (h & 15) {
    case 0: return 20000 + h % 5000; /* over max_object: not stored */
    case 1: case 2: case 3: case 4: return (h >> 8) % 64; /* small: entries run out first */
    default: return (h >> 8) % 2000;
    }
}

static unsigned char
seed_byte(uint32_t seed, uint32_t off)
{
    return (unsigned char)(mix(seed * 0x9E3779B1u + off / 4) >> (8 * (off & 3)));
}

static int
mvar(int key, int var)
{
    return key % 4 == 0 ? 0 : var; /* every 4th key has no Vary */
}

static const rp_http_msg *
key_req(int key, int var, int upper_host)
{
    char t[16], f[32] = "";
    snprintf(t, sizeof t, "/k%d", key);
    if (var)
        snprintf(f, sizeof f, "X-V: %c\r\n", 'a' + var - 1);
    return reqt(t, upper_host ? "H" : "h", f);
}

static uint32_t
key_ckey(const rp_http_msg *m)
{
    return key_hash(fnv(FNV0, m->host.p, m->host.n, 1), m->target);
}

/* The version an entry holds: its ETag is "%08x" of the seed. */
static uint32_t
entry_seed(rp_proxy *p, const centry *e)
{
    char t[16];
    if (e->etag_len != 10)
        return 0;
    chain_get(p, &e->meta, (size_t)e->key_len + e->vary_len, t, 10);
    t[10] = 0;
    return (uint32_t)strtoul(t + 1, NULL, 16);
}

/* The entry's body is exactly version seed's. */
static int
body_ok(rp_proxy *p, const centry *e, uint32_t seed)
{
    char buf[512];
    uint32_t off = 0, len = seed_len(seed), i;
    if (e->body.len != len)
        BAD("entry %u: body %u bytes, version %08x has %u", (unsigned)(e - p->cache.e), e->body.len, seed, len);
    while (off < len) {
        uint32_t k = RP_MIN(len - off, (uint32_t)sizeof buf);
        chain_get(p, &e->body, off, buf, k);
        for (i = 0; i < k; i++)
            if ((unsigned char)buf[i] != seed_byte(seed, off + i))
                BAD("entry %u: body byte %u of version %08x differs", (unsigned)(e - p->cache.e), off + i, seed);
        off += k;
    }
    return 1;
}

/* Integrity, then every stored body and every pinned one. */
static int
full_check(void)
{
    unsigned i;
    int j;
    st.checks++;
    if (!integrity(&P, CONN, NCONN))
        return 0;
    for (i = 1; i <= P.cache.fresh_ent; i++) {
        const centry *e = &P.cache.e[i];
        if (e->state == CE_READY && !body_ok(&P, e, entry_seed(&P, e)))
            return 0;
    }
    for (j = 0; j < NCONN; j++)
        if (CONN[j].centry && !body_ok(&P, &P.cache.e[CONN[j].centry], cs_[j].seed))
            return 0;
    return 1;
}

static int
idle_conn(void)
{
    int j = (int)rnd(NCONN), n;
    for (n = 0; n < NCONN; n++, j = (j + 1) % NCONN)
        if (!CONN[j].cfill && !CONN[j].centry)
            return j;
    return -1;
}

static int
conn_with(int fill)
{
    int j = (int)rnd(NCONN), n;
    for (n = 0; n < NCONN; n++, j = (j + 1) % NCONN)
        if (fill ? CONN[j].cfill != 0 : CONN[j].centry != 0)
            return j;
    return -1;
}

/* A miss is forwarded and its response starts to be stored (fill_start). */
static int
op_begin(void)
{
    char f[256];
    int j = idle_conn(), key = (int)rnd(NKEYS), var = (int)rnd(NVAR), fills = 0, x;
    const rp_http_msg *rq, *m;
    uint32_t seed = seed_next++;
    for (x = 0; x < NCONN; x++)
        fills += CONN[x].cfill != 0;
    if (j < 0 || fills >= MAX_FILLS)
        return 1;
    st.begins++;
    rq = key_req(key, var, 0);
    snprintf(f, sizeof f, "Cache-Control: max-age=%u\r\nContent-Length: %u\r\nETag: \"%08x\"\r\n%s", rnd(1000),
             seed_len(seed), seed, key % 4 ? "Vary: X-V\r\n" : "");
    m = resp(200, f);
    memset(&CONN[j], 0, sizeof CONN[j]);
    CONN[j].ckey = key_ckey(rq);
    CONN[j].cflags = CF_ON | CF_LOOKUP;
    CONN[j].t_start = P.now;
    fill_start(&P, &CONN[j], rq, m);
    if (!CONN[j].cfill) {
        st.refused++;
        if (seed_len(seed) <= P.cfg.cache_max_object && P.cache.nentries > 0 && !P.cache.lru_tail)
            BAD("fill refused with %u entries but none on the LRU", P.cache.nentries);
        return 1;
    }
    st.stored++;
    if (P.cache.e[CONN[j].cfill].state != CE_FILLING || P.cache.e[CONN[j].cfill].expect != seed_len(seed))
        BAD("fill_start: entry %u state %u expect %llu", CONN[j].cfill, P.cache.e[CONN[j].cfill].state,
            (unsigned long long)P.cache.e[CONN[j].cfill].expect);
    cs_[j].key = key, cs_[j].var = var, cs_[j].seed = seed, cs_[j].len = seed_len(seed), cs_[j].put = 0;
    return 1;
}

static int
op_append(void)
{
    unsigned char buf[1024];
    int j = conn_with(1);
    uint32_t k, i;
    if (j < 0)
        return 1;
    st.appends++;
    k = RP_MIN(cs_[j].len - cs_[j].put, 1 + rnd(rnd(4) ? 300 : 1024));
    for (i = 0; i < k; i++)
        buf[i] = seed_byte(cs_[j].seed, cs_[j].put + i);
    if (k)
        fill_append(&P, &CONN[j], (const char *)buf, k);
    cs_[j].put += k;
    return 1;
}

/* The response ended: commit (an early end must abort). */
static int
op_commit(int early)
{
    int j = conn_with(1), key, var;
    unsigned i, hit, filling, variants, same = 0, pinned = 0;
    int voided;
    const rp_http_msg *rq;
    if (j < 0 || (early ? cs_[j].put == cs_[j].len : cs_[j].put != cs_[j].len))
        return 1;
    i = CONN[j].cfill;
    key = cs_[j].key, var = cs_[j].var;
    voided = (P.cache.e[i].flags & CE_VOID) != 0; /* invalidated mid-fill */
    fill_commit(&P, &CONN[j]);
    if (CONN[j].cfill)
        BAD("fill_commit left cfill %u", CONN[j].cfill);
    rq = key_req(key, var, 0);
    hit = cache_find(&P, key_ckey(rq), rq->host, rq, &filling, &variants);
    if (voided && !early) {
        if (hit == i)
            BAD("a fill invalidated mid-way was committed (entry %u)", i);
        return 1;
    }
    if (early) {
        st.early++;
        if (hit == i)
            BAD("a short body (%u of %u) was committed", cs_[j].put, cs_[j].len);
        return 1;
    }
    st.commits++;
    if (P.cache.e[i].state != CE_READY || hit != i)
        BAD("committed entry %u (state %u) not found: lookup gave %u", i, P.cache.e[i].state, hit);
    model[key][mvar(key, var)] = cs_[j].seed;
    /* at most RP_CACHE_VARIANTS of the URL stay, unless pinned ones block */
    for (i = 1; i <= P.cache.fresh_ent; i++) {
        const centry *e = &P.cache.e[i];
        if (e->state == CE_READY && !(e->flags & CE_DOOMED) && e->hash == CONN[j].ckey)
            same++, pinned += e->pins > 0;
    }
    if (same != variants || same > RP_CACHE_VARIANTS + pinned)
        BAD("key %d: %u variants stored (lookup counted %u, %u pinned)", key, same, variants, pinned);
    return 1;
}

static int
op_abort(void)
{
    int j = conn_with(1);
    if (j < 0)
        return 1;
    st.aborts++;
    fill_abort(&P, &CONN[j]);
    return 1;
}

/* A request: the entry it finds must be the version committed last. */
static int
op_lookup(int pin)
{
    int key = (int)rnd(NKEYS), var = (int)rnd(NVAR), mv = mvar(key, var), j;
    const rp_http_msg *rq = key_req(key, var, rnd(8) == 0);
    unsigned hit, filling, variants;
    uint32_t seed;
    st.lookups++;
    hit = cache_find(&P, key_ckey(rq), rq->host, rq, &filling, &variants);
    if (filling && P.cache.e[filling].state != CE_FILLING)
        BAD("cache_find: filling %u is in state %u", filling, P.cache.e[filling].state);
    if (!hit) {
        st.evicted_seen += model[key][mv] != 0;
        model[key][mv] = 0; /* evicted: whatever comes next is a new version */
        return 1;
    }
    st.hits++;
    seed = entry_seed(&P, &P.cache.e[hit]);
    if (P.cache.e[hit].state != CE_READY || (P.cache.e[hit].flags & CE_DOOMED))
        BAD("lookup found entry %u in state %u flags %u", hit, P.cache.e[hit].state, P.cache.e[hit].flags);
    if (seed != model[key][mv])
        BAD("key %d variant %d: found version %08x, last committed %08x", key, mv, seed, model[key][mv]);
    if (!body_ok(&P, &P.cache.e[hit], seed))
        return 0;
    if (pin && (j = idle_conn()) >= 0) {
        st.pins++;
        memset(&CONN[j], 0, sizeof CONN[j]);
        entry_pin(&P, &CONN[j], hit);
        cs_[j].key = key, cs_[j].var = var, cs_[j].seed = seed;
    }
    /* a hit moves to the front, as hit_begin does */
    lru_unlink(&P.cache, hit);
    lru_front(&P.cache, hit);
    return 1;
}

static int
op_unpin(void)
{
    int j = conn_with(0);
    if (j < 0)
        return 1;
    st.unpins++;
    if (!body_ok(&P, &P.cache.e[CONN[j].centry], cs_[j].seed)) /* served whole while pinned */
        return 0;
    entry_unpin(&P, &CONN[j]);
    return 1;
}

static int
op_invalidate(void)
{
    int key = (int)rnd(NKEYS), v;
    const rp_http_msg *rq = key_req(key, 0, 0);
    uint32_t ck = key_ckey(rq);
    unsigned i;
    st.invalidates++;
    cache_invalidate(&P, ck);
    for (v = 0; v < NVAR; v++)
        model[key][v] = 0;
    for (i = 1; i <= P.cache.fresh_ent; i++)
        if (P.cache.e[i].state == CE_READY && !(P.cache.e[i].flags & CE_DOOMED) && P.cache.e[i].hash == ck)
            BAD("entry %u of key %d survived its invalidation", i, key);
    return 1;
}

static int
op_evict(void)
{
    unsigned i;
    st.evicts++;
    if (evict_one(&P))
        return 1;
    for (i = P.cache.lru_head; i; i = P.cache.e[i].next)
        if (!P.cache.e[i].pins)
            BAD("evict_one found nothing, but entry %u is not pinned", i);
    return 1;
}

static void
test_churn(void)
{
    long op;
    int ok = 1, j;
    clock_t t0 = clock();
    rp_init(&P);
    memset(CONN, 0, sizeof CONN);
    memset(model, 0, sizeof model);
    P.now = 1000000;
    for (op = 0; op < CHURN_OPS && ok; op++) {
        uint32_t r = rnd(1000);
        if (r < 120)
            ok = op_begin();
        else if (r < 520)
            ok = op_append();
        else if (r < 620)
            ok = op_commit(0);
        else if (r < 623)
            ok = op_commit(1);
        else if (r < 628)
            ok = op_abort();
        else if (r < 850)
            ok = op_lookup(0);
        else if (r < 920)
            ok = op_lookup(1);
        else if (r < 975)
            ok = op_unpin();
        else if (r < 982)
            ok = op_invalidate();
        else if (r < 992)
            ok = op_evict();
        else
            P.now += rnd(5000);
        if (ok && op % CHECK_EVERY == 0)
            ok = full_check();
    }
    if (!CHECK(ok && full_check(), "churn: %ld operations keep the arena whole", op))
        tap_diag("after operation %ld: %s", op, why);
    tap_diag("churn: %ld begins (%ld stored, %ld refused), %ld appends, %ld commits, %ld early ends, %ld aborts, "
             "%ld lookups (%ld hits, %ld found evicted), %ld pins, %ld unpins, %ld invalidations, %ld evictions, "
             "%ld full checks; evictions %llu, store failures %llu; %.1f s",
             st.begins, st.stored, st.refused, st.appends, st.commits, st.early, st.aborts, st.lookups, st.hits,
             st.evicted_seen, st.pins, st.unpins, st.invalidates, st.evicts, st.checks,
             (unsigned long long)P.stats.cache_evictions, (unsigned long long)P.stats.cache_store_failures,
             (double)(clock() - t0) / CLOCKS_PER_SEC);
    CHECK(st.commits > 10000 && st.hits > 10000 && P.stats.cache_evictions > 1000 && st.evicted_seen > 1000,
          "churn: the mix really stored, hit and evicted");
    /* Everything let go: all blocks are either free or in a ready entry;
     * then evicting everything returns every block. */
    for (j = 0; j < NCONN; j++) {
        fill_abort(&P, &CONN[j]);
        entry_unpin(&P, &CONN[j]);
    }
    if (!CHECK(full_check(), "churn: exchanges released, still whole"))
        tap_diag("%s", why);
    while (evict_one(&P))
        ;
    CHECK(integrity(&P, CONN, NCONN) && P.cache.nblk_used == 0 && P.cache.nentries == 0 && !P.cache.lru_head,
          "churn: after evicting everything no block is used (%u blocks, %u entries) %s", P.cache.nblk_used,
          P.cache.nentries, why);
}

static const tap_test tests[] = {
    TAP_TEST(arena_cases),
    TAP_TEST(collision),
    TAP_TEST(churn),
};

int
main(int argc, char **argv)
{
    return cache_main(argc, argv, tests, TAP_COUNT(tests));
}

/*
 * cache_scenario.h -- what the white-box test_cache_*.c files share
 * (header-only: each of them is one binary and one translation unit).
 *
 * SPDX-License-Identifier: MIT
 *
 * This header includes src/rp_int.h, so the tests can call the cache's
 * internal functions; such a binary links the sections built with the
 * Makefile's CACHE_KNOBS (the test_cache_% rule): a small cache (64 KiB
 * arena of 256-byte blocks, 64 entries) and connection tables, so
 * eviction, full arenas and block chains of many links happen with small
 * inputs; fakeport.c never looks inside rp_proxy, so the different layout
 * does not matter to it (these files never call fp_proxy_new).
 *
 * Shared here: the proxy P (rp_init only, never started), response and
 * request heads parsed into rp_http_msg (resp, reqt, req), integrity() --
 * every invariant of the arena and the entry table, with the reason for
 * the first broken one in why[] -- and cache_main(), which every binary's
 * main() calls.
 */
#ifndef CACHE_SCENARIO_H
#define CACHE_SCENARIO_H

#include "rp_int.h" /* white-box: the cache's internal functions */

#if RP_CACHE_BYTES != 65536u || RP_CACHE_BLOCK != 256u || RP_CACHE_ENTRIES != 64 || RP_MAX_CONNS != 8 || \
    RP_MAX_UPSTREAM != 8
#error "the test_cache_* files are built with the Makefile's CACHE_KNOBS"
#endif

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakeport.h"
#include "tap.h"

static rp_proxy P; /* the white-box tests' proxy: rp_init only, never started */

#define STR(s) ((rp_str){(s), sizeof(s) - 1})

/* ==== messages ==== */

/* buf[0..n) (n from snprintf into cap bytes) parsed as a response or a
 * request into m; a test bug (abort) when it does not parse. */
TAP_FN const rp_http_msg *
parsed(int is_resp, const char *buf, int n, size_t cap, rp_http_msg *m, const char *fields)
{
    if (n <= 0 || (size_t)n >= cap ||
        (is_resp ? rp_http_parse_response(buf, (size_t)n, m) : rp_http_parse_request(buf, (size_t)n, m)) != RP_OK) {
        printf("# test bug: %s does not parse: %s\n", is_resp ? "response" : "request", fields);
        abort();
    }
    return m;
}

/* Parse a response head "HTTP/1.1 status X" + fields (each ending in CRLF)
 * into one of a few rotating static messages. */
TAP_FN const rp_http_msg *
resp(int status, const char *fields)
{
    static char buf[8][6144];
    static rp_http_msg m[8];
    static int k;
    int i = k++ & 7, n = snprintf(buf[i], sizeof(buf[i]), "HTTP/1.1 %d X\r\n%s\r\n", status, fields);
    return parsed(1, buf[i], n, sizeof(buf[i]), &m[i], fields);
}

/* A GET of target with Host: h and the given fields. */
TAP_FN const rp_http_msg *
reqt(const char *target, const char *host, const char *fields)
{
    static char buf[8][6144];
    static rp_http_msg m[8];
    static int k;
    int i = k++ & 7,
        n = snprintf(buf[i], sizeof(buf[i]), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, host, fields);
    return parsed(0, buf[i], n, sizeof(buf[i]), &m[i], fields);
}

TAP_FN const rp_http_msg *
req(const char *fields)
{
    return reqt("/p", "h", fields);
}

/* ==== integrity of the arena and the entry table ==== */

static char why[512];
#define BAD(...)                                     \
    do {                                             \
        snprintf(why, sizeof why, __VA_ARGS__);      \
        return 0;                                    \
    } while (0)

#define OWN_FREE 0xffffu

/* What integrity() has seen so far: each block's owner (0 none, OWN_FREE,
 * else 2 * entry, + 1 for its body chain), the free entries, the entries
 * on the LRU list and in the buckets. */
static struct {
    uint16_t own[RP_CACHE_BYTES / RP_CACHE_BLOCK];
    uint8_t efree[RP_CACHE_ENTRIES], inlru[RP_CACHE_ENTRIES], inb[RP_CACHE_ENTRIES];
} ig;

TAP_FN int
walk_chain(rp_proxy *p, const chain *ch, unsigned owner, uint16_t *own, unsigned *nblk)
{
    const struct rp_cache *k = &p->cache;
    unsigned b = ch->first, n = 0, last = 0, want = (ch->len + RP_CACHE_BLOCK - 1) / RP_CACHE_BLOCK;
    if (ch->len == 0 && (ch->first || ch->last))
        BAD("entry %u: empty chain with blocks %u..%u", owner / 2, ch->first, ch->last);
    while (b) {
        if (b > k->fresh_blk)
            BAD("entry %u: block %u never handed out (fresh %u)", owner / 2, b, k->fresh_blk);
        if (own[b] == OWN_FREE)
            BAD("entry %u: block %u is also free", owner / 2, b);
        if (own[b])
            BAD("block %u in two chains (entries %u and %u)", b, own[b] / 2, owner / 2);
        own[b] = (uint16_t)owner;
        if (++n > want)
            BAD("entry %u: chain %s longer than its length %u", owner / 2, owner & 1 ? "body" : "meta", ch->len);
        last = b;
        b = k->blk_next[b];
    }
    if (n != want || last != ch->last)
        BAD("entry %u: chain %s has %u blocks (want %u), last %u (says %u)", owner / 2, owner & 1 ? "body" : "meta", n,
            want, last, ch->last);
    *nblk += n;
    return 1;
}

/* The free block and free entry lists: only what was handed out, each
 * member once, every free entry clean. */
TAP_FN int
integrity_free(const struct rp_cache *k)
{
    unsigned b, i;
    if (k->fresh_blk >= CACHE_NBLK || k->fresh_ent >= RP_CACHE_ENTRIES)
        BAD("fresh_blk %u / fresh_ent %u out of range", k->fresh_blk, k->fresh_ent);
    for (b = k->free_blk; b; b = k->blk_next[b]) {
        if (b > k->fresh_blk)
            BAD("free block %u never handed out", b);
        if (ig.own[b])
            BAD("free list visits block %u twice", b);
        ig.own[b] = OWN_FREE;
    }
    for (i = k->free_ent; i; i = k->e[i].hnext) {
        const centry *e = &k->e[i];
        if (i > k->fresh_ent)
            BAD("free entry %u never handed out", i);
        if (ig.efree[i])
            BAD("entry free list visits %u twice", i);
        ig.efree[i] = 1;
        if (e->state != CE_FREE || e->pins || e->flags || e->meta.first || e->body.first || e->meta.len ||
            e->body.len)
            BAD("free entry %u not clean (state %u pins %u flags %u)", i, e->state, e->pins, e->flags);
    }
    return 1;
}

/* Entry i, not free: filling or ready, its chains whole (their blocks
 * counted in *used), its parts inside its meta chain; with conns, pinned
 * and filled by as many exchanges as it says. */
TAP_FN int
integrity_entry(rp_proxy *p, unsigned i, const rp_conn *conns, int nconns, unsigned *used)
{
    const centry *e = &p->cache.e[i];
    if (e->state != CE_FILLING && e->state != CE_READY)
        BAD("entry %u: state %u but not on the free list (leaked)", i, e->state);
    if (!walk_chain(p, &e->meta, 2 * i, ig.own, used) || !walk_chain(p, &e->body, 2 * i + 1, ig.own, used))
        return 0;
    if (e->key_len > e->meta.len)
        BAD("entry %u: key_len %u > meta %u", i, e->key_len, e->meta.len);
    if (e->state == CE_READY && (size_t)e->key_len + e->vary_len + e->etag_len + e->lm_len > e->meta.len)
        BAD("entry %u: key+vary+etag+lm beyond meta", i);
    if ((e->flags & CE_DOOMED) && !e->pins)
        BAD("entry %u: doomed but nobody holds it", i);
    if (conns) {
        int j, pins = 0, fills = 0;
        for (j = 0; j < nconns; j++)
            pins += conns[j].centry == i, fills += conns[j].cfill == i;
        if (pins != e->pins)
            BAD("entry %u: pins %u, %d exchanges hold it", i, e->pins, pins);
        if (fills != (e->state == CE_FILLING))
            BAD("entry %u (state %u): %d exchanges fill it", i, e->state, fills);
    }
    return 1;
}

/* LRU: the ready entries nobody doomed, linked both ways; nentries counts
 * them. */
TAP_FN int
integrity_lru(const struct rp_cache *k)
{
    unsigned i, prev, n, ready = 0;
    for (i = k->lru_head, prev = 0, n = 0; i; prev = i, i = k->e[i].next) {
        if (i > k->fresh_ent || ig.efree[i])
            BAD("LRU holds free or unknown entry %u", i);
        if (ig.inlru[i])
            BAD("LRU visits entry %u twice", i);
        ig.inlru[i] = 1;
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
        int live = !ig.efree[i] && !(e->flags & CE_DOOMED);
        if (live && e->state == CE_READY && !ig.inlru[i])
            BAD("ready entry %u not on the LRU list", i);
        if (!ig.efree[i] && (e->flags & CE_DOOMED) && (e->prev || e->next))
            BAD("doomed entry %u keeps LRU links", i);
        ready += live && e->state == CE_READY;
    }
    if (n != k->nentries || ready != k->nentries)
        BAD("nentries %u, LRU has %u, ready entries %u", k->nentries, n, ready);
    return 1;
}

/* Buckets: every live entry in its own bucket, once. */
TAP_FN int
integrity_buckets(const struct rp_cache *k)
{
    unsigned b, i;
    for (b = 0; b < RP_CACHE_ENTRIES; b++)
        for (i = k->bucket[b]; i; i = k->e[i].hnext) {
            if (i > k->fresh_ent || ig.efree[i])
                BAD("bucket %u holds free or unknown entry %u", b, i);
            if (ig.inb[i])
                BAD("entry %u in the buckets twice", i);
            ig.inb[i] = 1;
            if (k->e[i].hash % RP_CACHE_ENTRIES != b)
                BAD("entry %u (hash %u) in bucket %u", i, k->e[i].hash, b);
            if (k->e[i].flags & CE_DOOMED)
                BAD("doomed entry %u still in bucket %u", i, b);
        }
    for (i = 1; i <= k->fresh_ent; i++)
        if (!ig.efree[i] && !(k->e[i].flags & CE_DOOMED) && !ig.inb[i])
            BAD("live entry %u (state %u) not in its bucket", i, k->e[i].state);
    return 1;
}

/* Everything that must hold between cache operations (1), or why[] says
 * what does not (0).  conns: the fake exchanges (their cfill / centry), or
 * NULL to skip the ownership checks. */
TAP_FN int
integrity(rp_proxy *p, const rp_conn *conns, int nconns)
{
    const struct rp_cache *k = &p->cache;
    unsigned b, i, used = 0;
    memset(&ig, 0, sizeof ig);
    if (!integrity_free(k))
        return 0;
    for (i = 1; i <= k->fresh_ent; i++)
        if (!ig.efree[i] && !integrity_entry(p, i, conns, nconns, &used))
            return 0;
    for (b = 1; b <= k->fresh_blk; b++)
        if (!ig.own[b])
            BAD("block %u neither free nor in a chain (leaked)", b);
    if (used != k->nblk_used)
        BAD("nblk_used %u, chains hold %u", k->nblk_used, used);
    return integrity_lru(k) && integrity_buckets(k);
}

/* ==== main ==== */

/* A corrupt LRU or free list can make eviction loop forever: fail instead. */
TAP_FN void
on_alarm(int sig)
{
    static const char msg[] = "not ok - test_cache_*: no progress for 120 s (an endless loop in the cache?)\n";
    (void)sig;
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

/* main() of a test_cache_* binary: a 120 s deadline, P initialised, then
 * the tests argv names (see tap.h). */
TAP_FN int
cache_main(int argc, char **argv, const tap_test *tests, size_t n)
{
    signal(SIGALRM, on_alarm);
    alarm(120);
    rp_init(&P);
    return tap_main(argc, argv, tests, n);
}

#endif /* CACHE_SCENARIO_H */

/*
 * test_cache_exchange.c -- the cache in whole exchanges over the fake port,
 * for faults that only show there: storing until eviction, an entry doomed
 * (invalidated) while a revalidation holds it and then served by the 304,
 * conditional hits on stored heads of many fields or many bytes, and a POST
 * invalidating a URI while a response for it is still being stored.
 *
 * SPDX-License-Identifier: MIT
 *
 * cache_scenario.h includes src/rp_int.h (see there and the Makefile).
 */
#include "cache_scenario.h"

#include <fcntl.h>
#include <sys/wait.h>

static rp_proxy P2; /* the exchange tests' proxy: configured and started */

/* ==== whole exchanges over the fake port ==== */

#define T0 1000000u
static const char CFG[] = "listen 8080\n"
                          "pool a retries=0\n"
                          "device a 127.0.0.1:9001 max_fails=0\n"
                          "route host=app.example pool=a cache=on\n";

static int
run2(void)
{
    int i, quiet = 0;
    for (i = 0; i < 5000; i++) {
        int n = rp_poll(&P2, 0);
        if (n < 0)
            return 0;
        quiet = n ? 0 : quiet + 1;
        if (quiet >= 2)
            return 1;
    }
    return 0;
}

static char *
take2(int s)
{
    static char bufs[4][65536];
    static int k;
    char *b = bufs[k++ & 3];
    fp_take(s, b, sizeof bufs[0]);
    return b;
}

/* s with CR and LF escaped, cut at 120 bytes, for a diagnostic line. */
static const char *
esc(const char *s)
{
    static char b[256];
    size_t i, n = 0;
    for (i = 0; s[i] && i < 120 && n < sizeof b - 3; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            b[n++] = '\\', b[n++] = s[i] == '\r' ? 'r' : 'n';
        else
            b[n++] = s[i];
    }
    b[n] = 0;
    return b;
}

static int
setup2(void)
{
    rp_cfg_error e;
    fp_reset_all();
    fp_log_quiet(1);
    fp_set_now(T0);
    rp_init(&P2);
    if (rp_config_parse(&P2, CFG, strlen(CFG), &e) != RP_OK) {
        CHECK(0, "config parses (line %d: %s)", e.line, e.msg);
        return 0;
    }
    if (rp_start(&P2) != RP_OK)
        return CHECK(0, "rp_start");
    return 1;
}

/* A GET on a new client connection; the device answers `answer` (NULL: the
 * test answers later).  Returns the client socket; *dev the device's. */
static int
get2(const char *path, const char *answer, int *dev, char **out)
{
    char rq[256];
    int c = fp_client_connect("10.0.0.7", 40000), d;
    run2();
    snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: app.example\r\n\r\n", path);
    fp_push_str(c, rq);
    run2();
    d = fp_busy_device();
    if (dev)
        *dev = d;
    if (d >= 0) {
        take2(d);
        if (answer) {
            fp_push_str(d, answer);
            run2();
        }
    }
    if (out)
        *out = take2(c);
    return c;
}

/* A stored entry is invalidated by a POST while a revalidation of it is
 * pinned; the device's 304 then serves the doomed entry.  A doomed entry
 * left the LRU list, so hit_begin (the path of a 304, of stale_rescue and
 * of a hit that waited for room, CF_HEADWAIT) must not move it to the
 * front: lru_unlink on an entry with prev = next = 0 would empty the list
 * (every other ready entry unevictable) and lru_front would put the doomed
 * entry on it, and once it was freed the next eviction would "evict" a
 * free entry forever (entry_drop pushing it on the free list again,
 * blk_alloc / entry_alloc looping).  This takes the 304 path. */
static void
test_doomed_hit(void)
{
    int c2, c3, d2, d3;
    char *out;
    if (!setup2())
        return;
    get2("/keep", "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 4\r\n\r\nkeep", NULL, &out);
    CHECK(strstr(out, "stored") != NULL, "doomed hit: another entry stored");
    get2("/x", "HTTP/1.1 200 OK\r\nCache-Control: max-age=0\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\nok",
              NULL, &out);
    CHECK(strstr(out, "stored") != NULL, "doomed hit: /x stored (stale at once)");
    c2 = get2("/x", NULL, &d2, NULL);
    CHECK(d2 >= 0 && P2.cache.nentries == 2, "doomed hit: /x goes to revalidation (pinned)");
    c3 = fp_client_connect("10.0.0.8", 40001);
    run2();
    fp_push_str(c3, "POST /x HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1\r\n\r\nz");
    run2();
    d3 = fp_busy_device();
    if (!CHECK(d3 >= 0 && d3 != d2, "doomed hit: the POST reaches a device"))
        return;
    take2(d3);
    fp_push_str(d3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    run2();
    take2(c3);
    CHECK(P2.stats.cache_invalidations == 1 && P2.cache.nentries == 1, "doomed hit: the POST invalidated /x");
    CHECK(integrity(&P2, NULL, 0), "doomed hit: integrity before the 304 %s", why);
    fp_push_str(d2, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
    run2();
    out = take2(c2);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(out, "\r\n\r\nok"),
          "doomed hit: the 304 answers the client from the (doomed) entry");
    if (!CHECK(integrity(&P2, NULL, 0), "doomed hit: the LRU list is intact after serving a doomed entry"))
        tap_diag("%s (lru_head %u lru_tail %u nentries %u)", why, P2.cache.lru_head, P2.cache.lru_tail,
                 P2.cache.nentries);
}

/* Store n responses of 4000 bytes on fresh URLs through P2; 1 when every
 * one was answered and the cache stayed whole. */
static int
store_many(int n, int check)
{
    int x, c, d;
    char path[32], *out;
    static char body[4000];
    memset(body, 'b', sizeof body);
    for (x = 0; x < n; x++) {
        snprintf(path, sizeof path, "/f%d", x);
        c = get2(path, NULL, &d, NULL);
        if (d < 0)
            return 0;
        fp_push_str(d, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 4000\r\n\r\n");
        fp_push(d, body, sizeof body);
        run2();
        out = take2(c);
        fp_eof(c);
        run2();
        if (strncmp(out, "HTTP/1.1 200", 12) || (check && !integrity(&P2, NULL, 0)))
            return 0;
    }
    return 1;
}

/* Control for test_doomed_after: the same stores without the doomed hit. */
static void
test_store_many(void)
{
    if (!setup2())
        return;
    CHECK(store_many(40, 1) && P2.stats.cache_evictions > 0,
          "store 40 x 4 KiB through the proxy: evictions (%llu), whole %s",
          (unsigned long long)P2.stats.cache_evictions, why);
}

/* The consequences, in a child with a deadline (a corrupt LRU can make
 * eviction loop): after test_doomed_hit's sequence, 40 more stores of 4 KiB
 * (evictions needed), then everything evicted.  Exit 0: the cache is whole
 * and empty at the end; 5: a store failed; 6: integrity broken; 7: blocks
 * or entries left over; SIGALRM: hung. */
static void
test_doomed_after(void)
{
    pid_t pid;
    int status = 0;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        long n = 0;
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1); /* no TAP lines from the child */
        signal(SIGALRM, SIG_DFL);
        alarm(20);
        test_doomed_hit();
        if (!store_many(40, 0))
            _exit(5);
        while (n++ < 100000 && evict_one(&P2))
            ;
        if (!integrity(&P2, NULL, 0)) {
            fprintf(stderr, "# child: %s\n", why);
            _exit(6);
        }
        _exit(P2.cache.nblk_used || P2.cache.nentries ? 7 : 0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        status = -1;
    if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "after a doomed hit, 40 stores and evicting everything leave a whole, empty cache"))
        tap_diag("child %s %d%s", WIFSIGNALED(status) ? "killed by signal" : "exited",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                 WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (SIGALRM: hung for 20 s)" : "");
}

/* A client's conditional request answered from the cache with a 304:
 * hit_fields parses the stored head to pick the fields a 304 repeats.  The
 * stored head has the device's fields plus Via and Date, so a device head
 * of RP_MAX_HEADERS fields without them does not parse again; hit_fields
 * then falls back to the whole stored head (a 200).  The client must get a
 * status line either way (it once got only "Age: ...", "Cache-Status: ..."
 * and an empty line). */
static void
test_304_many_fields(void)
{
    static char r[8192];
    size_t n;
    int i, c;
    char *out;
    if (!setup2())
        return;
    n = (size_t)sprintf(r, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nETag: \"e\"\r\nContent-Length: 2\r\n");
    for (i = 0; i < RP_MAX_HEADERS - 3; i++)
        n += (size_t)sprintf(r + n, "X-%d: v\r\n", i);
    sprintf(r + n, "\r\nok");
    get2("/m", r, NULL, &out);
    CHECK(strstr(out, "stored") != NULL, "304 from a head of RP_MAX_HEADERS fields: stored");
    c = fp_client_connect("10.0.0.9", 40009);
    run2();
    fp_push_str(c, "GET /m HTTP/1.1\r\nHost: app.example\r\nIf-None-Match: \"e\"\r\n\r\n");
    run2();
    out = take2(c);
    if (!CHECK(strncmp(out, "HTTP/1.1 304 ", 13) == 0 || strncmp(out, "HTTP/1.1 200 ", 13) == 0,
               "a conditional hit on a stored head of %d fields (+ Via, Date) starts with a status line",
               RP_MAX_HEADERS))
        tap_diag("the client got \"%s\"", esc(out));
}

/* The same with a big stored head: a 304 needs room for it twice in the
 * client's buffer (2 * n + 64 <= RP_BUF_SIZE), so for a stored head a little
 * under RP_CACHE_META hit_fields falls back to the whole head (a 200).
 * Every head size that is stored must be answered at once, with a 304 or a
 * 200 (hit_begin once failed, and the exchange waited for room it never got,
 * CF_HEADWAIT, until a timeout). */
static void
test_304_big_head(void)
{
    static char r[RP_MAX_HEAD + 64];
    size_t n, pad;
    int c, stored = 0, stuck = 0;
    size_t first = 0;
    char *out;
    for (pad = RP_MAX_HEAD - 300; pad < RP_MAX_HEAD - 60; pad += 4) {
        if (!setup2())
            return;
        n = (size_t)sprintf(r, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nETag: \"e\"\r\nContent-Length: 2\r\nX-Pad: ");
        memset(r + n, 'p', pad);
        sprintf(r + n + pad, "\r\n\r\nok");
        get2("/b", r, NULL, &out);
        if (!strstr(out, "stored"))
            continue;
        stored++;
        c = fp_client_connect("10.0.0.9", 40010);
        run2();
        fp_push_str(c, "GET /b HTTP/1.1\r\nHost: app.example\r\nIf-None-Match: \"e\"\r\n\r\n");
        run2();
        out = take2(c);
        if (strncmp(out, "HTTP/1.1 304 ", 13) && strncmp(out, "HTTP/1.1 200 ", 13) && !stuck++)
            first = pad;
    }
    CHECK(stored > 10, "304 from big heads: %d sizes stored", stored);
    if (!CHECK(stuck == 0, "a conditional hit on a big stored head is answered at once"))
        tap_diag("%d of %d stored sizes got no answer; the first: a device head of %lu bytes", stuck, stored,
                 (unsigned long)(n + first + 4));
}

/* RFC 9111 §4.4: a POST's 2xx invalidates the stored responses of its URI,
 * and also an entry still being filled: cache_invalidate marks it CE_VOID
 * and fill_commit drops it, so the representation fetched before the POST
 * is not served afterwards (it once was, as fresh for its whole max-age). */
static void
test_invalidate_during_fill(void)
{
    int c1, d1, c3, d3, c4;
    char *out;
    if (!setup2())
        return;
    c1 = get2("/x", NULL, &d1, NULL);
    if (!CHECK(d1 >= 0, "invalidate during a fill: GET reaches the device"))
        return;
    fp_push_str(d1, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 6\r\n\r\nold");
    run2();
    c3 = fp_client_connect("10.0.0.8", 40001);
    run2();
    fp_push_str(c3, "POST /x HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1\r\n\r\nz");
    run2();
    if (!CHECK((d3 = fp_busy_device()) >= 0, "invalidate during a fill: the POST reaches a device"))
        return;
    take2(d3);
    fp_push_str(d3, "HTTP/1.1 204 No Content\r\n\r\n");
    run2();
    take2(c3);
    fp_push_str(d1, "old");
    run2();
    take2(c1);
    c4 = fp_client_connect("10.0.0.9", 40002);
    run2();
    fp_push_str(c4, "GET /x HTTP/1.1\r\nHost: app.example\r\n\r\n");
    run2();
    out = take2(c4);
    if (!CHECK(strstr(out, "rproxy; hit") == NULL,
               "a fill in progress when a POST invalidated its URI is not served afterwards"))
        tap_diag("GET after the POST: %s", esc(strstr(out, "Cache-Status") ? strstr(out, "Cache-Status") : out));
}

static const tap_test tests[] = {
    TAP_TEST(store_many),
    TAP_TEST(doomed_hit),
    TAP_TEST(doomed_after),
    TAP_TEST(304_many_fields),
    TAP_TEST(304_big_head),
    TAP_TEST(invalidate_during_fill),
};

int
main(int argc, char **argv)
{
    return cache_main(argc, argv, tests, TAP_COUNT(tests));
}

/*
 * fuzz_config.c -- libFuzzer target: rp_config_parse.
 *
 * SPDX-License-Identifier: MIT
 *
 * The input is a configuration text.  Checked: the result is RP_OK or
 * RP_ECONFIG; an error names a line inside the text (1 .. lines+1) and a
 * NUL-terminated message; an accepted configuration keeps every table
 * within its RP_MAX_* bound, every index points at an existing pool or
 * device, the string arena is not overrun and every kept string is
 * NUL-terminated inside it (or is the built-in default), and timeouts and
 * weights are in their documented ranges; a device by name (RP_ENABLE_DNS)
 * has a well-formed name, a port, no address yet and its pool's resolve=.
 */
#include "fuzz.h"

static rp_proxy P; /* static: zero-filled, like a real caller's */

static int
in_arena(const rp_config *c, const char *s)
{
    return s >= c->str && s < c->str + c->str_used &&
           memchr(s, 0, (size_t)(c->str + c->str_used - s)) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = fz_copy(data, size);
    rp_cfg_error e;
    rp_config *c = &P.cfg;
    size_t i, lines = 1;
    int rc, k;
    for (i = 0; i < size; i++)
        lines += t[i] == '\n';
    rp_init(&P);
    memset(&e, 0x5a, sizeof e);
    rc = rp_config_parse(&P, t, size, &e);
    FZ_CHECK(rc == RP_OK || rc == RP_ECONFIG, "return %d", rc);
    if (rc != RP_OK) {
        FZ_CHECK(e.line >= 1 && (size_t)e.line <= lines + 1, "error line %d of %zu", e.line, lines);
        FZ_CHECK(memchr(e.msg, 0, sizeof e.msg) != NULL && e.msg[0], "error message");
        FZ_CHECK(e.col >= 0 && (size_t)e.col <= size + 1, "error column %d", e.col);
        free(t);
        return 0;
    }
    FZ_CHECK(c->nlisteners <= RP_MAX_LISTENERS && c->npools <= RP_MAX_POOLS &&
                 c->ndevices <= RP_MAX_DEVICES && c->nroutes <= RP_MAX_ROUTES,
             "table counts %d %d %d %d", c->nlisteners, c->npools, c->ndevices, c->nroutes);
    FZ_CHECK(c->str_used <= RP_CFG_STR_BYTES, "arena %zu", c->str_used);
    for (k = 0; k < c->npools; k++) {
        const rp_pool *pl = &c->pools[k];
        FZ_CHECK(pl->name && in_arena(c, pl->name), "pool %d name", k);
        FZ_CHECK(pl->ndevices <= RP_MAX_DEVICES, "pool %d ndevices", k);
        FZ_CHECK(pl->balance <= RP_BALANCE_LEASTCONN && pl->retries <= 10, "pool %d options", k);
        for (i = 0; i < pl->ndevices; i++)
            FZ_CHECK(pl->devices[i] < c->ndevices && c->devices[pl->devices[i]].pool == k,
                     "pool %d device %zu", k, i);
    }
    for (k = 0; k < c->ndevices; k++) {
        const rp_device *d = &c->devices[k];
        FZ_CHECK(d->pool < c->npools, "device %d pool %d", k, d->pool);
        FZ_CHECK(d->weight <= 1000, "device %d weight %d", k, d->weight);
#if RP_ENABLE_DNS
        if (d->name) { /* NAME:PORT: no address until a lookup answers */
            size_t n = strlen(d->name), j;
            FZ_CHECK(in_arena(c, d->name) && n >= 1 && n <= 253, "device %d name", k);
            FZ_CHECK(d->addr.family == 0 && d->addr.port >= 1, "device %d name's address", k);
            for (j = 0; j < n; j++)
                FZ_CHECK(d->name[j] == '.' || d->name[j] == '-' || d->name[j] == '_' ||
                             (d->name[j] >= '0' && d->name[j] <= '9') ||
                             ((d->name[j] | 0x20) >= 'a' && (d->name[j] | 0x20) <= 'z'),
                         "device %d name byte %zu", k, j);
            FZ_CHECK(d->name[0] != '.' && d->name[0] != '-' && d->name[n - 1] != '-' &&
                         strstr(d->name, "..") == NULL && strstr(d->name, "-.") == NULL &&
                         strstr(d->name, ".-") == NULL,
                     "device %d name labels", k);
            FZ_CHECK(c->pools[d->pool].resolve_ms >= 1000 && c->pools[d->pool].resolve_ms <= 86400000,
                     "device %d pool resolve=", k);
            continue;
        }
#endif
        FZ_CHECK(d->addr.family == 4 || d->addr.family == 6, "device %d family", k);
    }
    for (k = 0; k < c->nroutes; k++) {
        const rp_route *r = &c->routes[k];
        FZ_CHECK(r->pool < c->npools, "route %d pool", k);
        FZ_CHECK(!r->host || in_arena(c, r->host), "route %d host", k);
        FZ_CHECK(!r->path || in_arena(c, r->path), "route %d path", k);
    }
    for (k = 0; k < c->nlisteners; k++)
        FZ_CHECK(c->listeners[k].addr.family == 4 || c->listeners[k].addr.family == 6,
                 "listener %d family", k);
    FZ_CHECK(c->via && (strcmp(c->via, "rproxy") == 0 || in_arena(c, c->via)), "via");
    free(t);
    return 0;
}

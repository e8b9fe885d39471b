/* ==== [6] Configuration language ====
 * One directive per line, words separated by blanks, options as key=value,
 * `#` to the end of the line is a comment.  Strings the tables keep are
 * copied into cfg->str so the text can go away.  Every error names its line
 * and stops the parse.
 * Owns: rp_config (p->cfg) while parsing.  Calls: [1] [2] [4] (check_host)
 * [5].  The grammar is in rproxy.h ("Configuration"). */
#include "rp_int.h"

#if RP_ENABLE_CONFIG_TEXT
#define CFG_MAX_WORDS 16

typedef struct {
    rp_proxy *p;
    rp_cfg_error *err;
    int line;
    int pool_line[RP_MAX_POOLS]; /* where each pool was defined */
} cfg_ctx;

/* A writer into the error message from byte `at` (NUL it at w.n after). */
static wbuf
cfg_msg(cfg_ctx *x, size_t at)
{
    wbuf w;
    w.p = x->err->msg, w.n = at, w.cap = sizeof(x->err->msg) - 1, w.full = 0;
    return w;
}

static int
cfg_fail(cfg_ctx *x, const char *msg, rp_str arg)
{
    wbuf w = cfg_msg(x, 0);
    w_put(&w, msg, strlen(msg));
    if (arg.n) {
        w_put(&w, S(" '"));
        w_put(&w, arg.p, RP_MIN(arg.n, (size_t)40));
        w_put(&w, S("'"));
    }
    x->err->msg[w.n] = 0;
    x->err->line = x->line;
    return RP_ECONFIG;
}

/* An address the config cannot take (rc from rp_addr_parse): an IPv6 one
 * in a build without IPv6 says so. */
static int
cfg_addr_fail(cfg_ctx *x, int rc, const char *msg, rp_str arg)
{
    return cfg_fail(x, rc == RP_ENOTIMPL ? "IPv6 not compiled in (RP_ENABLE_IPV6=0)" : msg, arg);
}

static const char *
cfg_str(cfg_ctx *x, rp_str s)
{
    rp_config *c = &x->p->cfg;
    char *d;
    if (s.n + 1 > sizeof(c->str) - c->str_used)
        return NULL;
    d = c->str + c->str_used;
    memcpy(d, s.p, s.n);
    d[s.n] = 0;
    c->str_used += s.n + 1;
    return d;
}

/* Split "key=value"; a word without '=' has an empty value view. */
static rp_str
opt_key(rp_str word, rp_str *val)
{
    size_t i;
    rp_str k = word;
    val->p = word.p + word.n, val->n = 0;
    for (i = 0; i < word.n; i++)
        if (word.p[i] == '=') {
            k.n = i;
            val->p = word.p + i + 1, val->n = word.n - i - 1;
            break;
        }
    return k;
}

/* A decimal lo..hi into *out; else the error names key and the range. */
static int
opt_num(cfg_ctx *x, rp_str key, rp_str val, uint32_t lo, uint32_t hi, uint32_t *out)
{
    int64_t v = parse_dec(val);
    wbuf w;
    if (v >= lo && v <= hi) {
        *out = (uint32_t)v;
        return RP_OK;
    }
    cfg_fail(x, "value out of range for", key);
    w = cfg_msg(x, strlen(x->err->msg));
    w_put(&w, S(" ("));
    w_num(&w, lo);
    w_put(&w, S(".."));
    w_num(&w, hi);
    w_put(&w, S(")"));
    x->err->msg[w.n] = 0;
    return RP_ECONFIG;
}

/* A numeric option `name=N`: lo <= N <= hi, stored as N * scale (seconds
 * -> ms: 1000) into the field `off` bytes into its object, `size` bytes
 * wide (1, 2 or 4).  NUM makes the row from the field itself. */
typedef struct {
    const char *name;
    uint32_t off;
    uint8_t size;
    uint16_t scale;
    uint32_t lo, hi;
} cfg_num;

#define NUM(T, field, name, scale, lo, hi) \
    {name, offsetof(T, field), sizeof(((T *)0)->field), scale, lo, hi}

/* The option `word` (key=N) by table t[0..n) into obj: RP_OK, or RP_ECONFIG
 * with the error set.  A key t does not have is the error `unknown`, or,
 * when unknown is NULL, RP_ENOTFOUND for the caller's own options. */
static int
opt_set(cfg_ctx *x, const cfg_num *t, size_t n, void *obj, rp_str word, const char *unknown)
{
    rp_str val, key = opt_key(word, &val);
    char *f;
    uint32_t v;
    for (; n > 0 && !str_ieq(key, t->name, strlen(t->name)); n--)
        t++;
    if (n == 0)
        return unknown ? cfg_fail(x, unknown, word) : RP_ENOTFOUND;
    if (opt_num(x, key, val, t->lo, t->hi, &v) != RP_OK)
        return RP_ECONFIG;
    v *= t->scale;
    f = (char *)obj + t->off;
    if (t->size == 1)
        *(uint8_t *)f = (uint8_t)v;
    else if (t->size == 2)
        *(uint16_t *)f = (uint16_t)v;
    else
        *(uint32_t *)f = v;
    return RP_OK;
}
#define OPT_SET(x, t, obj, word, unknown) opt_set(x, t, RP_COUNT(t), obj, word, unknown)

/* The numeric options, a table per directive; the directives parse the
 * others by hand.  A new one is a row here and its field; a default other
 * than 0 is an RP_* setting in rproxy.h (applied where its object's
 * defaults are), whose checks hold it to the row's range. */
static const cfg_num pool_nums[] = {
    NUM(rp_pool, retries, "retries", 1, 0, 10),
};
static const cfg_num device_nums[] = {
    NUM(rp_device, weight, "weight", 1, 0, 1000),
    NUM(rp_device, max_fails, "max_fails", 1, 0, 1000),
    NUM(rp_device, fail_timeout_ms, "fail_timeout", 1000, 0, 86400),
};
#define TIMEOUT(field, name) NUM(rp_config, field, name, 1, 1, 86400000) /* ms */
static const cfg_num timeout_nums[] = {
    TIMEOUT(t_client_header, "client_header"),
    TIMEOUT(t_client_idle, "client_idle"),
    TIMEOUT(t_connect, "connect"),
    TIMEOUT(t_device, "device"),
    TIMEOUT(t_device_idle, "device_idle"),
    TIMEOUT(t_handshake, "handshake"),
};
static const cfg_num health_nums[] = {
    NUM(rp_pool, interval_ms, "interval", 1, 100, 86400000),
    NUM(rp_pool, probe_timeout_ms, "timeout", 1, 10, 600000),
    NUM(rp_pool, rise, "rise", 1, 1, 100),
    NUM(rp_pool, fall, "fall", 1, 1, 100),
    NUM(rp_pool, expect, "expect", 1, 100, 599),
};
#if RP_ENABLE_CACHE
static const cfg_num cache_nums[] = {
    NUM(rp_config, cache_max_object, "max_object", 1, 1, RP_CACHE_BYTES),
    NUM(rp_config, cache_lock_ms, "lock_timeout", 1, 0, 600000),
};
#endif

static int
cfg_pool_find(rp_config *c, rp_str name)
{
    int i;
    for (i = 0; i < c->npools; i++)
        if (strlen(c->pools[i].name) == name.n &&
            memcmp(c->pools[i].name, name.p, name.n) == 0)
            return i;
    return -1;
}

static int
cfg_listen_opt(cfg_ctx *x, rp_listener_cfg *l, rp_str word)
{
    rp_str val, key = opt_key(word, &val);
    uint32_t v;
    if (str_ieq(key, S("tls")) && word.n == 3) {
        l->tls = 1;
    } else if (str_ieq(key, S("tls_profile")) &&
               (str_ieq(val, S("modern")) || str_ieq(val, S("compat")))) {
        l->compat = str_ieq(val, S("compat"));
#if RP_ENABLE_TLS && !RP_ENABLE_TLS_COMPAT
        if (l->compat)
            return cfg_fail(x, "tls_profile=compat not compiled in (RP_ENABLE_TLS_COMPAT=0)", word);
#endif
    } else if (str_ieq(key, S("redirect_https"))) {
        if (!RP_ENABLE_REDIRECT)
            return cfg_fail(x, "redirect_https not compiled in (RP_ENABLE_REDIRECT=0)", word);
        if (val.n && opt_num(x, key, val, 1, 65535, &v) != RP_OK)
            return RP_ECONFIG;
        l->redirect = 1;
        l->redirect_port = val.n ? (uint16_t)v : 0;
    } else {
        return cfg_fail(x, "unknown listen option", word);
    }
    return RP_OK;
}

static int
cfg_listen(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_listener_cfg *l;
    int64_t port;
    int i, rc;
    if (n < 2)
        return cfg_fail(x, "listen needs [ADDR:]PORT", w[0]);
    if (c->nlisteners == RP_MAX_LISTENERS)
        return cfg_fail(x, "too many listen lines (RP_MAX_LISTENERS)", w[0]);
    l = &c->listeners[c->nlisteners];
    memset(l, 0, sizeof(*l));
    if ((port = parse_dec(w[1])) >= 0) {
        l->addr.family = 4;
        l->addr.port = (uint16_t)port;
        if (port < 1 || port > 65535)
            return cfg_fail(x, "bad port", w[1]);
    } else if ((rc = rp_addr_parse(&l->addr, w[1].p, w[1].n, 1)) != RP_OK) {
        return cfg_addr_fail(x, rc, "bad listen address", w[1]);
    }
    for (i = 2; i < n; i++)
        if (cfg_listen_opt(x, l, w[i]) != RP_OK)
            return RP_ECONFIG;
    if (l->tls && l->redirect)
        return cfg_fail(x, "redirect_https belongs on a plain listener", w[1]);
#if !RP_ENABLE_TLS
    if (l->tls)
        return cfg_fail(x, "TLS not compiled in (build with RP_ENABLE_TLS=1)", w[1]);
#endif
    c->nlisteners++;
    return RP_OK;
}

static int
cfg_name_ok(rp_str s)
{
    size_t i;
    for (i = 0; i < s.n; i++) {
        char ch = s.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
            return 0;
    }
    return s.n > 0 && s.n <= RP_CFG_NAME_MAX;
}

static int
cfg_pool(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_pool *pl;
    int i;
    if (n < 2 || !cfg_name_ok(w[1]))
        return cfg_fail(x, "pool needs a NAME of letters, digits, - _ .", n < 2 ? w[0] : w[1]);
    if (cfg_pool_find(c, w[1]) >= 0)
        return cfg_fail(x, "duplicate pool", w[1]);
    if (c->npools == RP_MAX_POOLS)
        return cfg_fail(x, "too many pools (RP_MAX_POOLS)", w[1]);
    pl = &c->pools[c->npools];
    pl->retries = RP_DEFAULT_RETRIES; /* its default; balance stays WRR (0) */
    for (i = 2; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("balance")) && str_ieq(val, S("wrr")))
            pl->balance = RP_BALANCE_WRR;
        else if (str_ieq(key, S("balance")) && str_ieq(val, S("leastconn")))
            pl->balance = RP_BALANCE_LEASTCONN;
        else if (str_ieq(key, S("balance")))
            return cfg_fail(x, "balance must be wrr or leastconn", val);
        else if (OPT_SET(x, pool_nums, pl, w[i], "unknown pool option") != RP_OK)
            return RP_ECONFIG;
    }
    if ((pl->name = cfg_str(x, w[1])) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[1]);
    x->pool_line[c->npools++] = x->line;
    return RP_OK;
}

/* `tls`, `ca=FILE`, `sni=NAME`, `verify=on|off` on a device line. */
static int
cfg_device_tls_opt(cfg_ctx *x, rp_device *d, rp_str word, rp_str key, rp_str val)
{
#if RP_ENABLE_TLS
#if RP_ENABLE_TLS_DEVICE
    char f[256];
    const char *err;
#else
    if (str_ieq(key, S("tls")) || str_ieq(key, S("ca")) || str_ieq(key, S("sni")) ||
        str_ieq(key, S("verify")))
        return cfg_fail(x, "TLS to devices not compiled in (RP_ENABLE_TLS_DEVICE=0)", word);
#endif
    if (str_ieq(key, S("tls")) && word.n == 3) {
        d->tls = 1;
    } else if (str_ieq(key, S("verify")) && (str_ieq(val, S("on")) || str_ieq(val, S("off")))) {
        d->verify = str_ieq(val, S("on")) ? 1 : 2; /* 2: off, said so */
    } else if (str_ieq(key, S("sni")) && val.n && check_host(val) == RP_OK) {
        if ((d->sni = cfg_str(x, val)) == NULL)
            return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
#if RP_ENABLE_TLS_DEVICE
    } else if (str_ieq(key, S("ca")) && val.n && val.n < sizeof(f)) {
        memcpy(f, val.p, val.n), f[val.n] = 0;
        if ((err = tls_ca_load(x->p, d->tas, &d->ntas, f)) != NULL)
            return cfg_fail(x, err, val);
#endif
    } else {
        return cfg_fail(x, "unknown device option", word);
    }
    return RP_OK;
#else
    (void)d, (void)key, (void)val;
    return cfg_fail(x, "unknown device option (TLS options need RP_ENABLE_TLS=1)", word);
#endif
}

static int
cfg_device_opt(cfg_ctx *x, rp_device *d, rp_str word)
{
    rp_str val, key = opt_key(word, &val);
    int rc;
    if (str_ieq(key, S("backup")) && val.n == 0 && word.n == key.n) {
        d->backup = 1;
        return RP_OK;
    }
    rc = OPT_SET(x, device_nums, d, word, NULL);
    return rc != RP_ENOTFOUND ? rc : cfg_device_tls_opt(x, d, word, key, val);
}

/* A device line's defaults (rproxy.h); the rest of it starts zeroed. */
static void
device_defaults(rp_device *d)
{
    d->weight = RP_DEFAULT_WEIGHT;
    d->max_fails = RP_DEFAULT_MAX_FAILS;
    d->fail_timeout_ms = RP_DEFAULT_FAIL_TIMEOUT_MS;
}

static int
cfg_device(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_device *d;
    rp_pool *pl;
    int i, pool, rc;
    if (n < 3)
        return cfg_fail(x, "device needs POOL HOST:PORT", w[0]);
    if ((pool = cfg_pool_find(c, w[1])) < 0)
        return cfg_fail(x, "undefined pool", w[1]);
    pl = &c->pools[pool];
    if (c->ndevices == RP_MAX_DEVICES || pl->ndevices == RP_MAX_DEVICES)
        return cfg_fail(x, "too many devices (RP_MAX_DEVICES)", w[2]);
    d = &c->devices[c->ndevices];
    memset(d, 0, sizeof(*d));
    if ((rc = rp_addr_parse(&d->addr, w[2].p, w[2].n, 1)) != RP_OK)
        return cfg_addr_fail(x, rc, "bad device address (want IP:PORT)", w[2]);
    d->pool = (uint8_t)pool;
    device_defaults(d);
    for (i = 3; i < n; i++)
        if (cfg_device_opt(x, d, w[i]) != RP_OK)
            return RP_ECONFIG;
#if RP_ENABLE_TLS
    if ((d->ntas || d->sni || d->verify) && !d->tls)
        return cfg_fail(x, "ca=, sni=, verify= need the tls option", w[2]);
    if (d->tls && d->verify != 2 && !d->ntas)
        return cfg_fail(x, "a tls device needs ca=FILE (or verify=off)", w[2]);
    if (d->verify == 1 && !d->ntas)
        return cfg_fail(x, "verify=on needs ca=FILE", w[2]);
    d->verify = d->tls && d->verify != 2;
#endif
    d->effective = d->weight;
    pl->devices[pl->ndevices++] = c->ndevices++;
    return RP_OK;
}

static int
cfg_route(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_route *r;
    int i, pool = -1;
    if (c->nroutes == RP_MAX_ROUTES)
        return cfg_fail(x, "too many routes (RP_MAX_ROUTES)", w[0]);
    r = &c->routes[c->nroutes];
    memset(r, 0, sizeof(*r));
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        const char **dst = NULL;
        if (str_ieq(key, S("pool"))) {
            if ((pool = cfg_pool_find(c, val)) < 0)
                return cfg_fail(x, "undefined pool", val);
        } else if (str_ieq(key, S("cache")) && (str_ieq(val, S("on")) || str_ieq(val, S("off")))) {
            r->cache = str_ieq(val, S("on"));
        } else if (str_ieq(key, S("host")) && val.n && check_host(val) == RP_OK) {
            dst = &r->host;
        } else if (str_ieq(key, S("path")) && val.n && val.p[0] == '/') {
            dst = &r->path;
        } else if (str_ieq(key, S("path")) || str_ieq(key, S("host")) ||
                   str_ieq(key, S("cache"))) {
            return cfg_fail(x, "bad value (path must start with '/', cache on|off)", w[i]);
        } else {
            return cfg_fail(x, "unknown route option", w[i]);
        }
        if (dst && (*dst = cfg_str(x, val)) == NULL)
            return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
    }
    if (pool < 0)
        return cfg_fail(x, "route needs pool=NAME", w[0]);
    r->pool = (uint8_t)pool;
    c->nroutes++;
    return RP_OK;
}

static int
cfg_timeout(cfg_ctx *x, rp_str *w, int n)
{
    int i;
    if (n < 2)
        return cfg_fail(x, "timeout needs NAME=MS", w[0]);
    for (i = 1; i < n; i++)
        if (OPT_SET(x, timeout_nums, &x->p->cfg, w[i], "unknown timeout") != RP_OK)
            return RP_ECONFIG;
    return RP_OK;
}

static int
cfg_via(cfg_ctx *x, rp_str *w, int n)
{
    if (n != 2 || !cfg_name_ok(w[1]))
        return cfg_fail(x, "via needs one NAME of letters, digits, - _ .", w[n - 1]);
    if ((x->p->cfg.via = cfg_str(x, w[1])) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[1]);
    return RP_OK;
}

#if RP_ENABLE_CACHE
/* on|off into *out; RP_ECONFIG otherwise. */
static int
opt_onoff(cfg_ctx *x, rp_str word, rp_str val, uint8_t *out)
{
    if (!str_ieq(val, S("on")) && !str_ieq(val, S("off")))
        return cfg_fail(x, "expected on or off", word);
    *out = str_ieq(val, S("on"));
    return RP_OK;
}

static int
cfg_cache(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    int i, rc;
    if (n < 2)
        return cfg_fail(x, "cache needs max_object=, heuristic=, ignore_client_nocache= "
                           "or lock_timeout=", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("heuristic")))
            rc = opt_onoff(x, w[i], val, &c->cache_heuristic);
        else if (str_ieq(key, S("ignore_client_nocache")))
            rc = opt_onoff(x, w[i], val, &c->cache_ignore_nocache);
        else
            rc = OPT_SET(x, cache_nums, c, w[i], "unknown cache option");
        if (rc != RP_OK)
            return RP_ECONFIG;
    }
    return RP_OK;
}
#endif

/* A path for probes and the status page: "/" then visible ASCII. */
static int
cfg_path_ok(rp_str v)
{
    size_t i;
    if (v.n == 0 || v.p[0] != '/' || v.n > RP_CFG_PATH_MAX)
        return 0;
    for (i = 0; i < v.n; i++)
        if ((unsigned char)v.p[i] <= ' ' || (unsigned char)v.p[i] >= 0x7f)
            return 0;
    return 1;
}

static int
cfg_health_opt(cfg_ctx *x, rp_pool *pl, rp_str word)
{
    rp_str val, key = opt_key(word, &val);
    if (!str_ieq(key, S("path")))
        return OPT_SET(x, health_nums, pl, word, "unknown health option");
    if (!cfg_path_ok(val))
        return cfg_fail(x, "health path must start with '/'", word);
    if ((pl->health_path = cfg_str(x, val)) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
    return RP_OK;
}

/* A health line's defaults (rproxy.h); expect 0: any 2xx/3xx. */
static void
health_defaults(rp_pool *pl)
{
    pl->health = 1;
    pl->health_path = RP_HEALTH_PATH;
    pl->interval_ms = RP_HEALTH_INTERVAL_MS;
    pl->probe_timeout_ms = RP_HEALTH_TIMEOUT_MS;
    pl->rise = RP_HEALTH_RISE;
    pl->fall = RP_HEALTH_FALL;
}

static int
cfg_health(cfg_ctx *x, rp_str *w, int n)
{
    rp_pool *pl;
    int i, pool;
    if (n < 2 || (pool = cfg_pool_find(&x->p->cfg, w[1])) < 0)
        return cfg_fail(x, "health needs a defined POOL", n < 2 ? w[0] : w[1]);
    pl = &x->p->cfg.pools[pool];
    if (pl->health)
        return cfg_fail(x, "duplicate health line for pool", w[1]);
    health_defaults(pl);
    for (i = 2; i < n; i++)
        if (cfg_health_opt(x, pl, w[i]) != RP_OK)
            return RP_ECONFIG;
    return RP_OK;
}

#if RP_ENABLE_STATUS
/* "10.0.0.0/8", "::1/128", or an address alone (all bits). */
static int
cidr_parse(rp_str v, rp_addr *net, uint8_t *bits)
{
    size_t i;
    int64_t b = -1;
    int rc;
    for (i = 0; i < v.n && v.p[i] != '/'; i++)
        ;
    if (i < v.n) {
        rp_str bs;
        bs.p = v.p + i + 1, bs.n = v.n - i - 1;
        b = parse_dec(bs);
    }
    if (v.n && v.p[0] != '[' && memchr(v.p, ':', i)) { /* bare IPv6 */
        memset(net, 0, sizeof(*net));
        net->family = 6;
        if ((rc = parse_ip6(v.p, i, net->ip)) != RP_OK)
            return rc;
    } else if ((rc = rp_addr_parse(net, v.p, i, 0)) != RP_OK || net->port) {
        return rc ? rc : RP_EINVAL;
    }
    if (i < v.n && b < 0)
        return RP_EINVAL; /* "/" without bits */
    if (b < 0)
        b = net->family == 4 ? 32 : 128;
    if (b > (net->family == 4 ? 32 : 128))
        return RP_EINVAL;
    *bits = (uint8_t)b;
    return RP_OK;
}

static int
cfg_status(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    int i;
    if (c->status_path)
        return cfg_fail(x, "duplicate status line", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("path"))) {
            if (!cfg_path_ok(val))
                return cfg_fail(x, "status path must start with '/'", w[i]);
            if ((c->status_path = cfg_str(x, val)) == NULL)
                return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
        } else if (str_ieq(key, S("allow"))) {
            if (c->nallow == RP_COUNT(c->allow))
                return cfg_fail(x, "at most 4 allow= networks", w[i]);
            int rc = cidr_parse(val, &c->allow[c->nallow].net, &c->allow[c->nallow].bits);
            if (rc != RP_OK)
                return cfg_addr_fail(x, rc, "bad allow network (want ADDR[/BITS])", w[i]);
            c->nallow++;
        } else {
            return cfg_fail(x, "unknown status option", w[i]);
        }
    }
    if (!c->status_path)
        return cfg_fail(x, "status needs path=/PATH", w[0]);
    return RP_OK;
}
#else
static int
cfg_status(cfg_ctx *x, rp_str *w, int n)
{
    (void)n;
    return cfg_fail(x, "status page not compiled in (RP_ENABLE_STATUS=0)", w[0]);
}
#endif

/* `tls cert=FILE key=FILE [sni=HOST]`: loaded now, so errors have a line. */
static int
cfg_tls(cfg_ctx *x, rp_str *w, int n)
{
#if RP_ENABLE_TLS
    rp_config *c = &x->p->cfg;
    rp_str cert = {0, 0}, key = {0, 0}, sni = {0, 0}, ca = {0, 0}, hdr = {0, 0};
    char cf[256], kf[256];
    int auth = -1;
    rp_tls_cert *ct;
    const char *err;
    int i;
    for (i = 1; i < n; i++) {
        rp_str val, k = opt_key(w[i], &val);
        if (str_ieq(k, S("cert")) && val.n && val.n < sizeof(cf))
            cert = val;
        else if (str_ieq(k, S("key")) && val.n && val.n < sizeof(kf))
            key = val;
        else if (str_ieq(k, S("sni")) && val.n && check_host(val) == RP_OK)
            sni = val;
        else if (str_ieq(k, S("client_ca")) && val.n && val.n < sizeof(cf))
            ca = val;
        else if (str_ieq(k, S("client_auth")) && str_ieq(val, S("require")))
            auth = 2;
        else if (str_ieq(k, S("client_auth")) && str_ieq(val, S("optional")))
            auth = 1;
        else if (str_ieq(k, S("client_cert_header")) && cfg_name_ok(val))
            hdr = val;
        else
            return cfg_fail(x, "unknown or bad tls option", w[i]);
    }
    if (auth >= 0 && !ca.n)
        return cfg_fail(x, "client_auth needs client_ca=FILE", w[0]);
    if (!cert.n || !key.n)
        return cfg_fail(x, "tls needs cert=FILE key=FILE", w[0]);
    if (c->ncerts == RP_TLS_MAX_CERTS)
        return cfg_fail(x, "too many tls lines (RP_TLS_MAX_CERTS)", w[0]);
    ct = &c->certs[c->ncerts];
    memcpy(cf, cert.p, cert.n), cf[cert.n] = 0;
    memcpy(kf, key.p, key.n), kf[key.n] = 0;
    if ((err = tls_cert_load(x->p, ct, cf, kf)) != NULL)
        return cfg_fail(x, err, cert);
    if (ca.n) {
#if RP_ENABLE_TLS_CLIENT_AUTH
        memcpy(cf, ca.p, ca.n), cf[ca.n] = 0;
        if ((err = tls_ca_load(x->p, ct->tas, &ct->ntas, cf)) != NULL)
            return cfg_fail(x, err, ca);
        ct->client_auth = (uint8_t)(auth < 0 ? 2 : auth);
#else
        return cfg_fail(x, "client certificates not compiled in (RP_ENABLE_TLS_CLIENT_AUTH=0)", ca);
#endif
    }
    if (hdr.n && (c->client_cert_header = cfg_str(x, hdr)) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", hdr);
    if (sni.n && (ct->sni = cfg_str(x, sni)) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", sni);
    c->ncerts++;
    return RP_OK;
#else
    (void)n;
    return cfg_fail(x, "TLS not compiled in (build with RP_ENABLE_TLS=1)", w[0]);
#endif
}

static int
cfg_line(cfg_ctx *x, const char *s, size_t n)
{
    static const struct {
        const char *name;
        size_t len;
        int (*fn)(cfg_ctx *, rp_str *, int);
    } dirs[] = {
        {"listen", 6, cfg_listen}, {"pool", 4, cfg_pool},
        {"device", 6, cfg_device}, {"route", 5, cfg_route},
        {"timeout", 7, cfg_timeout}, {"via", 3, cfg_via},
        {"health", 6, cfg_health}, {"status", 6, cfg_status},
        {"tls", 3, cfg_tls},
#if RP_ENABLE_CACHE
        {"cache", 5, cfg_cache},
#endif
    };
    rp_str w[CFG_MAX_WORDS];
    int nw = 0;
    size_t i = 0, k;
    while (i < n && s[i] != '#') {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
            i++;
            continue;
        }
        if (nw == CFG_MAX_WORDS)
            return cfg_fail(x, "too many words on one line", w[0]);
        w[nw].p = s + i;
        while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '#')
            i++;
        w[nw].n = (size_t)(s + i - w[nw].p);
        nw++;
    }
    if (nw == 0)
        return RP_OK;
    for (k = 0; k < RP_COUNT(dirs); k++)
        if (w[0].n == dirs[k].len && memcmp(w[0].p, dirs[k].name, dirs[k].len) == 0)
            return dirs[k].fn(x, w, nw);
    return cfg_fail(x, "unknown directive", w[0]);
}

/* Whole-config checks once every line is read. */
static int
cfg_finish(cfg_ctx *x)
{
    rp_config *c = &x->p->cfg;
    rp_str none = {0, 0};
    int i;
    if (c->nlisteners == 0)
        return cfg_fail(x, "no listen line", none);
    if (c->nroutes == 0)
        return cfg_fail(x, "no route line", none);
    for (i = 0; i < c->nlisteners; i++) {
        int k, tls = 0;
        for (k = 0; k < c->nlisteners; k++)
            tls += c->listeners[k].tls;
#if RP_ENABLE_TLS
        if (c->listeners[i].tls && c->ncerts == 0)
            return cfg_fail(x, "a tls listener needs a `tls cert=FILE key=FILE` line", none);
#endif
        if (c->listeners[i].redirect && !c->listeners[i].redirect_port && !tls)
            return cfg_fail(x, "redirect_https without a tls listener needs =PORT", none);
    }
    for (i = 0; i < c->npools; i++) {
        const rp_pool *pl = &c->pools[i];
        rp_str name;
        int k, primaries = 0;
        for (k = 0; k < pl->ndevices; k++)
            primaries += !c->devices[pl->devices[k]].backup;
        name.p = pl->name, name.n = strlen(name.p);
        x->line = x->pool_line[i];
        if (pl->ndevices == 0)
            return cfg_fail(x, "pool has no devices", name);
        if (primaries == 0)
            return cfg_fail(x, "pool has only backup devices", name);
    }
    return RP_OK;
}

int
rp_config_parse(rp_proxy *p, const char *text, size_t len, rp_cfg_error *err)
{
    cfg_ctx x;
    size_t i = 0;
    x.p = p, x.err = err, x.line = 0;
    err->line = 0, err->msg[0] = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        x.line++;
        if (memchr(text + i, 0, j - i) != NULL)
            return cfg_fail(&x, "NUL byte in config", (rp_str){0, 0});
        if (cfg_line(&x, text + i, j - i) != RP_OK)
            return RP_ECONFIG;
        i = j + 1;
    }
    if (x.line == 0)
        x.line = 1;
    return cfg_finish(&x);
}
#endif /* RP_ENABLE_CONFIG_TEXT */

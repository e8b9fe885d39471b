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
#define CFG_QUOTED 1024 /* unescaped bytes of a line's quoted words */

typedef struct {
    rp_proxy *p;
    rp_cfg_error *err;
    const char *ltext; /* the line being read (err->col), NULL after */
    size_t llen;
    const char *qb; /* cfg_line's buffer of words with quotes, NULL after */
    size_t qn;
    int nq;
    uint16_t qoff[CFG_MAX_WORDS], qat[CFG_MAX_WORDS]; /* word k: at qb+qoff, line col qat */
    int line;
    int pool_line[RP_MAX_POOLS]; /* where each pool was defined */
#if RP_ENABLE_HEADER_RULES
    int hset_line[RP_MAX_HEADER_SETS]; /* where each rule set was first named */
#endif
} cfg_ctx;

/* A writer into the error message from byte `at` (NUL it at w.n after). */
static wbuf
cfg_msg(cfg_ctx *x, size_t at)
{
    wbuf w;
    w.p = x->err->msg, w.n = at, w.cap = sizeof(x->err->msg) - 1, w.full = 0;
    return w;
}

/* Append what fits of n bytes at s (a long message is cut, not dropped). */
static void
cfg_put(wbuf *w, const char *s, size_t n)
{
    w_put(w, s, RP_MIN(n, w->cap - w->n));
}

/* A new message at the current line: err->col is where arg stands in the
 * line (1-based), 0 when it is not there. */
static wbuf
cfg_start(cfg_ctx *x, rp_str arg)
{
    uintptr_t a = (uintptr_t)arg.p, l = (uintptr_t)x->ltext, q = (uintptr_t)x->qb;
    x->err->line = x->line;
    x->err->col = x->ltext && a >= l && a <= l + x->llen ? (int)(a - l) + 1 : 0;
    if (x->qb && a >= q && a <= q + x->qn) { /* a word unquoted into qb: its start */
        int k = x->nq;
        while (k > 1 && q + x->qoff[k - 1] > a)
            k--;
        x->err->col = x->nq ? x->qat[k - 1] + 1 : 0;
    }
    return cfg_msg(x, 0);
}

/* " 'arg'" (its first 40 bytes) then post. */
static void
cfg_quote(wbuf *w, rp_str arg, const char *post)
{
    cfg_put(w, S(" '"));
    cfg_put(w, arg.p, RP_MIN(arg.n, (size_t)40));
    cfg_put(w, S("'"));
    cfg_put(w, post, strlen(post));
}

static int
cfg_end(cfg_ctx *x, const wbuf *w)
{
    x->err->msg[w->n] = 0;
    return RP_ECONFIG;
}

/* Append what fits of s, then end the message. */
static int
cfg_end2(cfg_ctx *x, wbuf *w, const char *s)
{
    cfg_put(w, s, strlen(s));
    return cfg_end(x, w);
}

/* The error "msg 'arg'" (just msg when arg is empty), then note. */
static int
cfg_fail2(cfg_ctx *x, const char *msg, rp_str arg, const char *note)
{
    wbuf w = cfg_start(x, arg);
    cfg_put(&w, msg, strlen(msg));
    if (arg.n)
        cfg_quote(&w, arg, "");
    return cfg_end2(x, &w, note);
}

static int
cfg_fail(cfg_ctx *x, const char *msg, rp_str arg)
{
    return cfg_fail2(x, msg, arg, "");
}

/* An address the config cannot take (rc from rp_addr_parse): "msg 'arg'"
 * then note; an IPv6 one in a build without IPv6 says so. */
static int
cfg_addr_fail(cfg_ctx *x, int rc, const char *msg, rp_str arg, const char *note)
{
    if (rc == RP_ENOTIMPL)
        return cfg_fail(x, "IPv6 not compiled in (RP_ENABLE_IPV6=0)", arg);
    return cfg_fail2(x, msg, arg, note);
}

static const char *
cfg_str(cfg_ctx *x, rp_str s)
{
    rp_config *c = CFG(x->p);
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

/* ---- Suggestions: the known name nearest a misspelled one ---- */

/* Edit distance of a and b (insertions, deletions, substitutions and
 * swaps of neighbours, regardless of case); 9 when either is over 24. */
static int
cfg_dist(rp_str a, const char *b)
{
    uint8_t d[3][25];
    size_t i, j, m = strlen(b);
    if (a.n > 24 || m > 24)
        return 9;
    for (j = 0; j <= m; j++)
        d[0][j] = (uint8_t)j;
    for (i = 1; i <= a.n; i++) {
        uint8_t *cur = d[i % 3], *up = d[(i - 1) % 3], *up2 = d[(i + 1) % 3];
        int ca = lower((unsigned char)a.p[i - 1]);
        cur[0] = (uint8_t)i;
        for (j = 1; j <= m; j++) {
            int v = RP_MIN(up[j], cur[j - 1]) + 1;
            v = RP_MIN(v, up[j - 1] + (ca != lower((unsigned char)b[j - 1])));
            if (i > 1 && j > 1 && ca == lower((unsigned char)b[j - 2]) &&
                lower((unsigned char)a.p[i - 2]) == lower((unsigned char)b[j - 1]))
                v = RP_MIN(v, up2[j - 2] + 1);
            cur[j] = (uint8_t)v;
        }
    }
    return d[a.n % 3][m];
}

/* Of the n names at base (each the first member of a stride-byte
 * element), the one nearer key than best (NULL: than 1 edit, 2 from 5
 * letters on, none for 1 letter), or best. */
static const char *
cfg_near(rp_str key, const void *base, size_t stride, size_t n, const char *best)
{
    int d, bd = best ? cfg_dist(key, best) : (key.n >= 5 ? 3 : key.n >= 2 ? 2 : 0);
    for (; n > 0; n--, base = (const char *)base + stride) {
        const char *name = *(const char *const *)base;
        if ((d = cfg_dist(key, name)) < bd)
            best = name, bd = d;
    }
    return best;
}
#define NEAR(key, arr, best) cfg_near(key, arr, sizeof((arr)[0]), RP_COUNT(arr), best)

/* What the options parsed by hand take, for "key: 'v' is not ...". */
static const struct {
    const char *name, *want;
} cfg_wants[] = {
    {"tls_profile", "modern or compat"}, {"verify", "on or off"}, {"cache", "on or off"},
    {"client_auth", "require or optional"}, {"sni", "a host name"}, {"host", "a host name"},
    {"path", "a path starting with '/'"}, {"client_cert_header", "a NAME"},
    {"balance", "wrr or leastconn"}, {"heuristic", "on or off"},
    {"ignore_client_nocache", "on or off"},
};

/* A known option `word` (key=value) with a bad value: "key: 'v' is not on
 * or off" (what cfg_wants says), else "key: bad value 'v'"; or "key: no
 * value". */
static int
cfg_bad_value(cfg_ctx *x, rp_str word)
{
    rp_str val, key = opt_key(word, &val);
    const char *want = NULL;
    size_t i;
    wbuf w = cfg_start(x, val);
    for (i = 0; i < RP_COUNT(cfg_wants); i++)
        want = str_ieq(key, cfg_wants[i].name, strlen(cfg_wants[i].name)) ? cfg_wants[i].want : want;
    cfg_put(&w, key.p, key.n);
    if (!val.n)
        return cfg_end2(x, &w, ": no value");
    w_cstr(&w, want ? ":" : ": bad value");
    cfg_quote(&w, val, want ? " is not " : "");
    return cfg_end2(x, &w, want ? want : "");
}

/* "msg 'word'", with " (did you mean 'near'?)" when near is not NULL. */
static int
cfg_suggest(cfg_ctx *x, const char *msg, rp_str word, const char *near)
{
    wbuf w;
    cfg_fail(x, msg, word);
    if (!near)
        return RP_ECONFIG;
    w = cfg_msg(x, strlen(x->err->msg));
    cfg_put(&w, S(" (did you mean '"));
    cfg_put(&w, near, strlen(near));
    return cfg_end2(x, &w, "'?)");
}

/* An option no branch took: unknown (cfg_suggest), or, when its key is
 * near itself, a known option with a bad value. */
static int
cfg_unknown(cfg_ctx *x, const char *msg, rp_str word, const char *near)
{
    rp_str val, key = opt_key(word, &val);
    if (near && str_ieq(key, near, strlen(near)))
        return cfg_bad_value(x, word);
    return cfg_suggest(x, msg, word, near);
}

/* ---- Numbers, durations and sizes ---- */

/* Units after a number: durations (stored in ms), then sizes (bytes). */
static const struct {
    const char *name;
    uint32_t mul;
} cfg_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"k", 1024}, {"m", 1048576},
};
#define UNIT_FROM(kind) ((kind) == CFG_SIZE ? 4u : 0u)
#define UNIT_TO(kind) ((kind) == CFG_SIZE ? 6u : (kind) == CFG_NUM ? 0u : 4u)

/* s as a `kind` quantity into *out (ms for durations, bytes for sizes):
 * RP_OK or why not (CFG_Q*).  Values past 10^12 are CFG_QBIG before any
 * unit multiplies them, so nothing overflows. */
int
cfg_qty(rp_str s, int kind, uint64_t *out)
{
    const uint64_t big = 1000000000000ull;
    uint64_t v = 0, mul = kind == CFG_SEC ? 1000 : 1;
    size_t i, u;
    rp_str unit;
    if (s.n == 0)
        return CFG_QEMPTY;
    if (s.p[0] == '-' && s.n > 1 && s.p[1] >= '0' && s.p[1] <= '9')
        return CFG_QNEG;
    for (i = 0; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++)
        v = v > big ? v : v * 10 + (uint64_t)(s.p[i] - '0');
    unit.p = s.p + i, unit.n = s.n - i;
    if (i == 0 || (unit.n && kind == CFG_NUM))
        return CFG_QNOTNUM;
    if (unit.n) {
        for (u = UNIT_FROM(kind); u < UNIT_TO(kind); u++)
            if (str_ieq(unit, cfg_units[u].name, strlen(cfg_units[u].name)))
                break;
        if (u == UNIT_TO(kind)) {
            for (i = 0; i < unit.n && lower((unsigned char)unit.p[i]) >= 'a' &&
                        lower((unsigned char)unit.p[i]) <= 'z'; i++)
                ;
            return i == unit.n ? CFG_QUNIT : CFG_QJUNK;
        }
        mul = cfg_units[u].mul;
    }
    if (v > big)
        return CFG_QBIG;
    *out = v * mul;
    return RP_OK;
}

/* v the shortest way: the largest unit that divides it ("24h", "256k"). */
static void
w_qty(wbuf *w, int kind, uint64_t v)
{
    unsigned u = UNIT_TO(kind);
    while (u > UNIT_FROM(kind) && v % cfg_units[u - 1].mul)
        u--;
    if (u == UNIT_FROM(kind) || v == 0) {
        w_num(w, v);
        return;
    }
    w_num(w, v / cfg_units[u - 1].mul);
    cfg_put(w, cfg_units[u - 1].name, strlen(cfg_units[u - 1].name));
}

/* A `kind` value lo..hi into *out; else the error names key, the value,
 * what is wrong with it and the range: "weight: 'three' is not a number
 * (0-1000)". */
static int
opt_num(cfg_ctx *x, rp_str key, rp_str val, int kind, uint32_t lo, uint32_t hi, uint32_t *out)
{
    static const char *const what[] = {"number", "duration", "duration", "size"};
    static const char *const why[] = {"", "", " is negative", " is not a ",
                                      " has an unknown unit", " has junk after the number",
                                      " is out of range"};
    uint64_t v = 0;
    int rc = cfg_qty(val, kind, &v);
    wbuf w;
    if (rc == RP_OK && v >= lo && v <= hi) {
        *out = (uint32_t)v;
        return RP_OK;
    }
    rc = rc == RP_OK ? CFG_QBIG : rc;
    w = cfg_start(x, val);
    cfg_put(&w, key.p, RP_MIN(key.n, (size_t)24));
    cfg_put(&w, S(":"));
    if (rc == CFG_QEMPTY)
        cfg_put(&w, S(" no value"));
    else
        cfg_quote(&w, val, why[rc]);
    if (rc == CFG_QNOTNUM)
        cfg_put(&w, what[kind], strlen(what[kind]));
    if (rc == CFG_QUNIT)
        return cfg_end2(x, &w, kind == CFG_SIZE ? " (k, m)" : " (ms, s, m, h)");
    cfg_put(&w, S(" ("));
    w_qty(&w, kind, lo);
    cfg_put(&w, S("-"));
    w_qty(&w, kind, hi);
    return cfg_end2(x, &w, ")");
}

/* A numeric option `name=N`: a `kind` quantity lo..hi (in ms for
 * durations: CFG_SEC's bare number is seconds), stored into the field
 * `off` bytes into its object, `size` bytes wide (1, 2 or 4).  NUM makes
 * the row from the field itself. */
typedef struct {
    const char *name;
    uint32_t off;
    uint8_t size, kind;
    uint32_t lo, hi;
} cfg_num;

#define NUM(T, field, name, kind, lo, hi) \
    {name, offsetof(T, field), sizeof(((T *)0)->field), kind, lo, hi}

/* The option `word` (key=N) by table t[0..n) into obj: RP_OK, RP_ECONFIG
 * with the error set, or RP_ENOTFOUND for a key t does not have. */
static int
opt_set(cfg_ctx *x, const cfg_num *t, size_t n, void *obj, rp_str word)
{
    rp_str val, key = opt_key(word, &val);
    char *f;
    uint32_t v = 0; /* opt_num sets it on RP_OK; -O1 cannot see that */
    for (; n > 0 && !str_ieq(key, t->name, strlen(t->name)); n--)
        t++;
    if (n == 0)
        return RP_ENOTFOUND;
    if (opt_num(x, key, val, t->kind, t->lo, t->hi, &v) != RP_OK)
        return RP_ECONFIG;
    f = (char *)obj + t->off;
    if (t->size == 1)
        *(uint8_t *)f = (uint8_t)v;
    else if (t->size == 2)
        *(uint16_t *)f = (uint16_t)v;
    else
        *(uint32_t *)f = v;
    return RP_OK;
}
#define OPT_SET(x, t, obj, word) opt_set(x, t, RP_COUNT(t), obj, word)

/* OPT_SET, a key neither t nor the directive's other options (names)
 * have being the error `unknown` with a suggestion from both. */
#define OPT_SET_OR(x, t, obj, word, unknown, names) \
    opt_set_or(x, t, RP_COUNT(t), obj, word, unknown, names, RP_COUNT(names))

static int
opt_set_or(cfg_ctx *x, const cfg_num *t, size_t n, void *obj, rp_str word, const char *unknown,
           const char *const *names, size_t nn)
{
    rp_str val, key = opt_key(word, &val);
    int rc = opt_set(x, t, n, obj, word);
    if (rc != RP_ENOTFOUND)
        return rc;
    return cfg_unknown(x, unknown, word, cfg_near(key, t, sizeof(*t), n,
                                                  cfg_near(key, names, sizeof(*names), nn, NULL)));
}

/* The numeric options, a table per directive; the directives parse the
 * others by hand.  A new one is a row here and its field; a default other
 * than 0 is an RP_* setting in rproxy.h (applied where its object's
 * defaults are), whose checks hold it to the row's range. */
static const cfg_num pool_nums[] = {
    NUM(rp_pool, retries, "retries", CFG_NUM, 0, 10),
#if RP_ENABLE_DNS
    NUM(rp_pool, resolve_ms, "resolve", CFG_SEC, 1000, 86400000),
#endif
#if RP_ENABLE_LIMITS
    NUM(rp_pool, queue_max, "queue", CFG_NUM, 0, 65535),
    NUM(rp_pool, queue_timeout_ms, "queue_timeout", CFG_MS, 1, 86400000),
#endif
};
static const cfg_num device_nums[] = {
    NUM(rp_device, weight, "weight", CFG_NUM, 0, 1000),
    NUM(rp_device, max_fails, "max_fails", CFG_NUM, 0, 1000),
    NUM(rp_device, fail_timeout_ms, "fail_timeout", CFG_SEC, 0, 86400000),
#if RP_ENABLE_LIMITS
    NUM(rp_device, max_conns, "max_conns", CFG_NUM, 0, 65535),
    NUM(rp_device, max_idle, "max_idle", CFG_NUM, 0, 65535),
#endif
};
#define TIMEOUT(field, name) NUM(rp_config, field, name, CFG_MS, 1, 86400000)
static const cfg_num timeout_nums[] = {
    TIMEOUT(t_client_header, "client_header"),
    TIMEOUT(t_client_idle, "client_idle"),
    TIMEOUT(t_connect, "connect"),
    TIMEOUT(t_device, "device"),
    TIMEOUT(t_device_idle, "device_idle"),
    TIMEOUT(t_handshake, "handshake"),
#if RP_ENABLE_STREAM_TIMEOUTS
    TIMEOUT(t_tunnel, "tunnel"),
#endif
};
static const cfg_num health_nums[] = {
    NUM(rp_pool, interval_ms, "interval", CFG_MS, 100, 86400000),
    NUM(rp_pool, probe_timeout_ms, "timeout", CFG_MS, 10, 600000),
    NUM(rp_pool, rise, "rise", CFG_NUM, 1, 100),
    NUM(rp_pool, fall, "fall", CFG_NUM, 1, 100),
    NUM(rp_pool, expect, "expect", CFG_NUM, 100, 599),
};
#if RP_ENABLE_CACHE
static const cfg_num cache_nums[] = {
    NUM(rp_config, cache_max_object, "max_object", CFG_SIZE, 1, RP_CACHE_BYTES),
    NUM(rp_config, cache_lock_ms, "lock_timeout", CFG_MS, 0, 600000),
};
#endif

/* The options each directive parses by hand, for suggestions. */
static const char *const listen_opts[] = {"tls", "tls_profile", "redirect_https", "proxy_protocol",
                                          "proxy_from"
#if RP_ENABLE_HEADER_RULES
                                           , "headers"
#endif
};
#if RP_ENABLE_PATH_MAP
static const char *const pool_opts[] = {"balance", "host"};
#else
static const char *const pool_opts[] = {"balance"};
#endif
static const char *const device_opts[] = {"backup", "tls", "ca", "sni", "verify"};
static const char *const route_opts[] = {"host", "path", "pool", "cache", "cache_ttl", "allow",
                                         "auth", "realm", "pass_auth", "share", "share_linger"
#if RP_ENABLE_PATH_MAP
                                          , "rewrite"
#endif
#if RP_ENABLE_HEADER_RULES
                                          , "headers"
#endif
#if RP_ENABLE_STREAM_TIMEOUTS
                                          , "device_timeout", "stream_idle"
#endif
};
static const char *const health_opts[] = {"path"};
#if RP_ENABLE_STATUS
static const char *const status_opts[] = {"path", "allow", "auth", "realm"};
#endif
#if RP_ENABLE_TLS
static const char *const tls_opts[] = {"cert", "key", "sni", "client_ca", "client_auth",
                                       "client_cert_header"};
#endif
#if RP_ENABLE_CACHE
static const char *const cache_opts[] = {"heuristic", "ignore_client_nocache"};
#endif

/* "undefined pool 'name' (defined: a, b)": the pools defined so far. */
static int
cfg_no_pool(cfg_ctx *x, rp_str name)
{
    rp_config *c = CFG(x->p);
    wbuf w;
    int i;
    cfg_fail2(x, "undefined pool", name, c->npools ? " (defined: " : " (none defined above)");
    w = cfg_msg(x, strlen(x->err->msg));
    for (i = 0; i < c->npools; i++) {
        size_t n = strlen(c->pools[i].name);
        if (i)
            cfg_put(&w, S(", "));
        if (n + 5 > w.cap - w.n) {
            cfg_put(&w, S("..."));
            break;
        }
        cfg_put(&w, c->pools[i].name, n);
    }
    return cfg_end2(x, &w, c->npools ? ")" : "");
}

#if RP_ENABLE_TLS || RP_ENABLE_AUTH || RP_ENABLE_ERROR_PAGES
/* "msg 'file'" and why it could not be read (an rp_port_blob error). */
static int
cfg_file_fail(cfg_ctx *x, const char *msg, rp_str file, int why)
{
    wbuf w;
    cfg_fail2(x, msg, file, why ? ": " : "");
    w = cfg_msg(x, strlen(x->err->msg));
    return cfg_end2(x, &w, why ? rp_strerror(why) : "");
}
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

#if RP_ENABLE_STATUS || RP_ENABLE_ACL || RP_ENABLE_PROXY_PROTOCOL
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

/* One more network (the value of `word`, a key=ADDR[/BITS]) into nets[*n]. */
static int
cfg_net(cfg_ctx *x, rp_str word, rp_str val, rp_net *nets, uint8_t *n)
{
    int rc;
    rp_str key = opt_key(word, &val);
    if (*n == 4) {
        wbuf w = cfg_start(x, word);
        cfg_put(&w, S("at most 4 "));
        cfg_put(&w, key.p, key.n);
        cfg_put(&w, S("= networks"));
        cfg_quote(&w, word, "");
        return cfg_end(x, &w);
    }
    if ((rc = cidr_parse(val, &nets[*n].net, &nets[*n].bits)) != RP_OK) {
        wbuf w;
        if (rc == RP_ENOTIMPL)
            return cfg_fail(x, "IPv6 not compiled in (RP_ENABLE_IPV6=0)", word);
        w = cfg_start(x, word);
        cfg_put(&w, S("bad "));
        cfg_put(&w, key.p, key.n);
        cfg_put(&w, S(" network"));
        cfg_quote(&w, word, " (want ADDR[/BITS], e.g. 192.168.1.0/24 or fd00::/8)");
        return cfg_end(x, &w);
    }
    (*n)++;
    return RP_OK;
}
#endif

#if RP_ENABLE_HEADER_RULES
static int cfg_name_ok(rp_str s);

/* The rule set named v (created on its first mention, from a `headers`
 * line or a headers= option before its lines): its index, or -1 after an
 * error naming `word`. */
static int
cfg_hset(cfg_ctx *x, rp_str v, rp_str word)
{
    rp_config *c = CFG(x->p);
    int i;
    if (!cfg_name_ok(v))
        return cfg_fail2(x, "bad header rule set name", word,
                         ": want 1-" XSTR(RP_CFG_NAME_MAX) " letters, digits, - _ ."), -1;
    for (i = 0; i < c->nhsets; i++)
        if (str_ieq(v, c->hsets[i], strlen(c->hsets[i])))
            return i;
    if (c->nhsets == RP_MAX_HEADER_SETS)
        return cfg_fail(x, "too many header rule sets (RP_MAX_HEADER_SETS)", word), -1;
    if ((c->hsets[i] = cfg_str(x, v)) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", word), -1;
    x->hset_line[i] = x->line;
    c->nhsets++;
    return i;
}

/* `headers NAME request|response set|add|del FIELD ["VALUE"]` */
static int
cfg_headers(cfg_ctx *x, rp_str *w, int n)
{
    /* rproxy writes these itself (framing, hop-by-hop, Host): no rule may touch them */
    static const char *const own[] = {"Content-Length", "Transfer-Encoding", "Connection", "Host",
                                      "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"};
    rp_config *c = CFG(x->p);
    rp_hrule *r;
    size_t i;
    int set;
    if (n < 5)
        return cfg_fail(x, "headers needs NAME request|response set|add|del FIELD [\"VALUE\"]",
                        w[n - 1]);
    if (c->nhrules == RP_MAX_HEADER_RULES)
        return cfg_fail(x, "too many header rules (RP_MAX_HEADER_RULES)", w[0]);
    r = &c->hrules[c->nhrules];
    if (str_ieq(w[2], S("request")) || str_ieq(w[2], S("response")))
        r->response = str_ieq(w[2], S("response"));
    else
        return cfg_fail2(x, "unknown header rule direction", w[2], " (request or response)");
    if (str_ieq(w[3], S("set")))
        r->action = RP_HR_SET;
    else if (str_ieq(w[3], S("add")))
        r->action = RP_HR_ADD;
    else if (str_ieq(w[3], S("del")))
        r->action = RP_HR_DEL;
    else
        return cfg_fail2(x, "unknown header action", w[3], " (set, add or del)");
    for (i = 0; i < w[4].n; i++)
        if (!is_tchar((unsigned char)w[4].p[i]))
            break;
    if (w[4].n == 0 || i < w[4].n || w[4].n > RP_CFG_NAME_MAX * 2)
        return cfg_fail2(x, "bad header field name", w[4], " (letters, digits, -, at most 64)");
    for (i = 0; i < RP_COUNT(own); i++)
        if (str_ieq(w[4], own[i], strlen(own[i])))
            return cfg_fail2(x, "header rules cannot touch", w[4],
                             ": rproxy writes it (framing, hop-by-hop, Host)");
    if (r->action == RP_HR_DEL ? n != 5 : n != 6)
        return cfg_fail(x, r->action == RP_HR_DEL ? "del takes no value" : "set and add need one VALUE (quote it)",
                        w[n - 1]);
    if ((set = cfg_hset(x, w[1], w[1])) < 0)
        return RP_ECONFIG;
    r->set = (uint8_t)set;
    if ((r->name = cfg_str(x, w[4])) == NULL ||
        (n == 6 && (r->value = cfg_str(x, w[5])) == NULL))
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[n - 1]);
    c->nhrules++;
    return RP_OK;
}
#endif

#if RP_ENABLE_ERROR_PAGES
/* The Content-Type of a page named f, by extension (rp_errpage.ctype). */
static uint8_t
cfg_ctype(rp_str f)
{
    static const char *const ext[] = {"", ".html", ".htm", ".txt", ".json", ".svg", ".png", ".css"};
    static const uint8_t type[] = {0, 1, 1, 2, 3, 4, 5, 6};
    size_t i, n;
    for (i = 1; i < RP_COUNT(ext); i++) {
        n = strlen(ext[i]);
        if (f.n > n && str_ieq((rp_str){f.p + f.n - n, n}, ext[i], n))
            return type[i];
    }
    return 0;
}

/* `error_page STATUS... FILE` */
static int
cfg_error_page(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = CFG(x->p);
    rp_str f = w[n - 1];
    char fname[256];
    const void *data;
    size_t len;
    int i, k, why;
    if (n < 3)
        return cfg_fail(x, "error_page needs STATUS... FILE", w[n - 1]);
    if (f.n >= sizeof(fname))
        return cfg_fail(x, "file name longer than 255 bytes", f);
    for (i = 1; i < n - 1; i++) {
        uint32_t st = 0;
        if (opt_num(x, (rp_str){"status", 6}, w[i], CFG_NUM, 400, 599, &st) != RP_OK)
            return RP_ECONFIG;
        for (k = 0; k < c->nepages; k++)
            if (c->epages[k].status == st)
                return cfg_fail(x, "status already has an error_page", w[i]);
        for (k = 1; k < i; k++)
            if (parse_dec(w[k]) == (int64_t)st)
                return cfg_fail(x, "status already has an error_page", w[i]);
        if (c->nepages + i - 1 >= RP_MAX_ERROR_PAGES)
            return cfg_fail(x, "too many error_page statuses (RP_MAX_ERROR_PAGES)", w[i]);
    }
    memcpy(fname, f.p, f.n), fname[f.n] = 0;
    if ((why = rp_port_blob(fname, &data, &len)) != RP_OK)
        return cfg_file_fail(x, "cannot read error page", f, why);
    if (len > RP_BUF_SIZE / 2 || len > RP_ERROR_PAGE_BYTES - c->epage_used)
        return cfg_fail2(x, "error page too large", f,
                         len > RP_BUF_SIZE / 2 ? " (at most RP_BUF_SIZE/2 = " XSTR(RP_BUF_SIZE) "/2 bytes)"
                                               : " (all pages: RP_ERROR_PAGE_BYTES = " XSTR(RP_ERROR_PAGE_BYTES) ")");
    memcpy(c->epage_store + c->epage_used, data, len);
    for (i = 1; i < n - 1; i++) {
        rp_errpage *e = &c->epages[c->nepages++];
        e->status = (uint16_t)parse_dec(w[i]);
        e->ctype = cfg_ctype(f);
        e->off = c->epage_used, e->len = (uint32_t)len;
    }
    c->epage_used += (uint32_t)len;
    return RP_OK;
}
#endif

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
        if (val.n && opt_num(x, key, val, CFG_NUM, 1, 65535, &v) != RP_OK)
            return RP_ECONFIG;
        l->redirect = 1;
        l->redirect_port = val.n ? (uint16_t)v : 0;
    } else if (str_ieq(key, S("proxy_protocol")) || str_ieq(key, S("proxy_from"))) {
#if RP_ENABLE_PROXY_PROTOCOL
        if (key.n == 14 && word.n == 14)
            l->proxy = 1;
        else if (key.n == 10 && val.n)
            return cfg_net(x, word, val, l->proxy_from, &l->nproxy_from);
        else
            return cfg_fail(x, key.n == 14 ? "proxy_protocol takes no value"
                                           : "proxy_from needs =ADDR[/BITS]", word);
#else
        return cfg_fail(x, "the PROXY protocol not compiled in (RP_ENABLE_PROXY_PROTOCOL=0)", word);
#endif
#if RP_ENABLE_HEADER_RULES
    } else if (str_ieq(key, S("headers"))) {
        int k = cfg_hset(x, val, word);
        if (k < 0)
            return RP_ECONFIG;
        l->headers = (uint8_t)(k + 1);
#endif
    } else {
        return cfg_unknown(x, "unknown listen option", word, NEAR(key, listen_opts, NULL));
    }
    return RP_OK;
}

static int
cfg_listen(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = CFG(x->p);
    rp_listener_cfg *l;
    int64_t port;
    int i, rc;
    if (n < 2)
        return cfg_fail(x, "listen needs [ADDR:]PORT", w[0]);
    if (c->nlisteners == RP_MAX_LISTENERS)
        return cfg_fail(x, "too many listen lines (RP_MAX_LISTENERS)", w[0]);
    l = &c->listeners[c->nlisteners];
    memset(l, 0, sizeof(*l));
#if RP_ENABLE_RELOAD
    l->line = (uint16_t)x->line;
#endif
    if ((port = parse_dec(w[1])) >= 0) {
        l->addr.family = 4;
        l->addr.port = (uint16_t)port;
        if (port < 1 || port > 65535)
            return cfg_fail2(x, "bad port", w[1], " (1-65535)");
    } else if ((rc = rp_addr_parse(&l->addr, w[1].p, w[1].n, 1)) != RP_OK) {
        return cfg_addr_fail(x, rc, "bad listen address", w[1], ": want PORT or IP:PORT");
    }
    for (i = 2; i < n; i++)
        if (cfg_listen_opt(x, l, w[i]) != RP_OK)
            return RP_ECONFIG;
    if (l->tls && l->redirect)
        return cfg_fail(x, "redirect_https belongs on a plain listener", w[1]);
#if RP_ENABLE_PROXY_PROTOCOL
    if (l->nproxy_from && !l->proxy)
        return cfg_fail(x, "proxy_from= needs proxy_protocol on the same listen line", w[1]);
#endif
#if !RP_ENABLE_TLS
    if (l->tls)
        return cfg_fail(x, "TLS not compiled in (build with RP_ENABLE_TLS=1)", w[1]);
#endif
    c->nlisteners++;
    return RP_OK;
}

#define CFG_STR2(n) #n
#define CFG_STR(n) CFG_STR2(n)
#define CFG_NAME_WANT ": want 1-" CFG_STR(RP_CFG_NAME_MAX) " letters, digits, - _ ."

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

#if RP_ENABLE_AUTH
/* `auth=NAME`: a users line above; *out = 1 + its index. */
static int
cfg_users_ref(cfg_ctx *x, rp_str name, uint8_t *out)
{
    const rp_config *c = CFG(x->p);
    int i;
    for (i = 0; i < c->nusers; i++)
        if (strlen(c->users_name[i]) == name.n && memcmp(c->users_name[i], name.p, name.n) == 0) {
            *out = (uint8_t)(i + 1);
            return RP_OK;
        }
    return cfg_fail2(x, "undefined users", name,
                     " (define it above with a `users NAME FILE` line)");
}

/* `realm="TEXT"`: printable, at most 64 bytes (it goes into a header). */
static int
cfg_realm(cfg_ctx *x, rp_str val, const char **out)
{
    size_t i;
    if (val.n == 0 || val.n > 64)
        return cfg_fail(x, "realm needs 1-64 characters (quote it: realm=\"Camera 1\")", val);
    for (i = 0; i < val.n; i++)
        if ((unsigned char)val.p[i] < 0x20 || val.p[i] == 0x7f)
            return cfg_fail(x, "realm: control character", val);
    if ((*out = cfg_str(x, val)) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
    return RP_OK;
}

/* `users NAME FILE`: the file (a blob) read now into rp_config.users. */
static int
cfg_users(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = CFG(x->p);
    rp_cfg_error ue;
    const void *data;
    size_t len;
    char f[256];
    uint8_t dup;
    int why;
    if (n != 3)
        return cfg_fail(x, "users needs NAME FILE", w[0]);
    if (!cfg_name_ok(w[1]))
        return cfg_fail2(x, "bad users name", w[1], CFG_NAME_WANT);
    if (cfg_users_ref(x, w[1], &dup) == RP_OK)
        return cfg_fail(x, "duplicate users", w[1]);
    if (c->nusers == RP_MAX_USER_LISTS)
        return cfg_fail(x, "too many users lines (RP_MAX_USER_LISTS = " XSTR(RP_MAX_USER_LISTS) ")",
                        w[1]);
    if (w[2].n >= sizeof(f))
        return cfg_fail(x, "file name longer than 255 bytes", w[2]);
    memcpy(f, w[2].p, w[2].n), f[w[2].n] = 0;
    if ((why = rp_port_blob(f, &data, &len)) != RP_OK)
        return cfg_file_fail(x, "cannot read users file", w[2], why);
    if (users_parse(&c->users[c->nusers], (const char *)data, len, &ue) != RP_OK) {
        wbuf m = cfg_start(x, w[2]); /* "users file 'pw':3: message" */
        cfg_put(&m, S("users file"));
        cfg_quote(&m, w[2], ":");
        w_num(&m, (uint64_t)ue.line);
        cfg_put(&m, S(": "));
        cfg_put(&m, ue.msg, strlen(ue.msg));
        return cfg_end(x, &m);
    }
    if (c->users[c->nusers].nusers == 0)
        return cfg_fail2(x, "users file", w[2], " has no user:hash line (nobody could log in)");
    if ((c->users_name[c->nusers] = cfg_str(x, w[1])) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[1]);
    c->nusers++;
    return RP_OK;
}
#else
static int
cfg_users(cfg_ctx *x, rp_str *w, int n)
{
    (void)n;
    return cfg_fail(x, "Basic auth not compiled in (RP_ENABLE_AUTH=0)", w[0]);
}
#endif

#if RP_ENABLE_CLIENT_LIMIT
/* `client_limit [conns=N] [rate=N/s|N/m] [burst=N]` */
static int
cfg_client_limit(cfg_ctx *x, rp_str *w, int n)
{
    static const char *const opts[] = {"conns", "rate", "burst"};
    rp_config *c = CFG(x->p);
    int i, burst = 0;
    uint32_t v;
    if (n < 2)
        return cfg_fail(x, "client_limit needs conns=N, rate=N/s|N/m or burst=N", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("conns"))) {
            if (opt_num(x, key, val, CFG_NUM, 1, RP_MAX_CONNS, &v) != RP_OK)
                return RP_ECONFIG;
            c->cl_conns = (uint16_t)v;
        } else if (str_ieq(key, S("rate"))) {
            rp_str num = val;
            uint32_t per = 0;
            if (val.n > 2 && val.p[val.n - 2] == '/') {
                num.n -= 2;
                per = val.p[val.n - 1] == 's' ? 1000u : val.p[val.n - 1] == 'm' ? 60000u : 0;
            }
            if (!per)
                return cfg_fail(x, "rate: want N/s or N/m (requests per second or minute)", w[i]);
            if (opt_num(x, key, num, CFG_NUM, 1, 100000, &v) != RP_OK)
                return RP_ECONFIG;
            c->cl_rate = v, c->cl_period_ms = per;
        } else if (str_ieq(key, S("burst"))) {
            if (opt_num(x, key, val, CFG_NUM, 1, 65535, &v) != RP_OK)
                return RP_ECONFIG;
            c->cl_burst = (uint16_t)v, burst = 1;
        } else {
            return cfg_unknown(x, "unknown client_limit option", w[i], NEAR(key, opts, NULL));
        }
    }
    if (burst && !c->cl_rate)
        return cfg_fail(x, "burst= needs rate= on the same line", w[0]);
    if (!burst)
        c->cl_burst = (uint16_t)RP_MIN(RP_MAX(c->cl_rate, 1u), 65535u);
    return RP_OK;
}
#else
static int
cfg_client_limit(cfg_ctx *x, rp_str *w, int n)
{
    (void)n;
    return cfg_fail(x, "client_limit not compiled in (RP_ENABLE_CLIENT_LIMIT=0)", w[0]);
}
#endif

static int
cfg_pool(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = CFG(x->p);
    rp_pool *pl;
    int i;
    if (n < 2)
        return cfg_fail(x, "pool needs a NAME", w[0]);
    if (!cfg_name_ok(w[1]))
        return cfg_fail2(x, "bad pool name", w[1], CFG_NAME_WANT);
    if (cfg_pool_find(c, w[1]) >= 0)
        return cfg_fail(x, "duplicate pool", w[1]);
    if (c->npools == RP_MAX_POOLS)
        return cfg_fail(x, "too many pools (RP_MAX_POOLS)", w[1]);
    pl = &c->pools[c->npools];
    pl->retries = RP_DEFAULT_RETRIES; /* its default; balance stays WRR (0) */
#if RP_ENABLE_DNS
    pl->resolve_ms = RP_RESOLVE_INTERVAL_MS;
#endif
#if RP_ENABLE_LIMITS
    pl->queue_timeout_ms = RP_QUEUE_TIMEOUT_MS;
#endif
    for (i = 2; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("balance")) && str_ieq(val, S("wrr")))
            pl->balance = RP_BALANCE_WRR;
        else if (str_ieq(key, S("balance")) && str_ieq(val, S("leastconn")))
            pl->balance = RP_BALANCE_LEASTCONN;
        else if (str_ieq(key, S("balance")))
            return cfg_bad_value(x, w[i]);
#if !RP_ENABLE_DNS
        else if (str_ieq(key, S("resolve")))
            return cfg_fail(x, "device names not compiled in (RP_ENABLE_DNS=0)", w[i]);
#endif
#if !RP_ENABLE_LIMITS
        else if (str_ieq(key, S("queue")) || str_ieq(key, S("queue_timeout")))
            return cfg_fail(x, "queue=/queue_timeout= not compiled in (RP_ENABLE_LIMITS=0)", w[i]);
#endif
#if RP_ENABLE_PATH_MAP
        else if (str_ieq(key, S("host"))) {
            if (!val.n || check_host(val) != RP_OK || host_only(val).n != val.n ||
                val.p[0] == '*')
                return cfg_fail2(x, "bad pool host", w[i], " (a name or address, no port, no '*')");
            if ((pl->host = cfg_str(x, val)) == NULL)
                return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
        }
#endif
        else if (OPT_SET_OR(x, pool_nums, pl, w[i], "unknown pool option", pool_opts) != RP_OK)
            return RP_ECONFIG;
#if RP_ENABLE_LIMITS
        if (pl->queue_max > RP_MAX_CONNS) /* a waiting request holds a client slot */
            return cfg_fail2(x, "queue= over RP_MAX_CONNS", w[i],
                             " (" XSTR(RP_MAX_CONNS) "): lower it or build with more");
#endif
    }
    if ((pl->name = cfg_str(x, w[1])) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[1]);
    x->pool_line[c->npools++] = x->line;
    return RP_OK;
}

/* `tls`, `ca=FILE`, `sni=NAME`, `verify=on|off` on a device line;
 * RP_ENOTFOUND for another key. */
static int
cfg_device_tls_opt(cfg_ctx *x, rp_device *d, rp_str word, rp_str key, rp_str val)
{
#if RP_ENABLE_TLS && RP_ENABLE_TLS_DEVICE
    char f[256];
    const char *err;
    int why;
#else
    size_t k;
    for (k = 1; k < RP_COUNT(device_opts); k++) /* the TLS ones */
        if (str_ieq(key, device_opts[k], strlen(device_opts[k])))
            return cfg_fail(x, RP_ENABLE_TLS ? "TLS to devices not compiled in (RP_ENABLE_TLS_DEVICE=0)"
                                             : "TLS not compiled in (build with RP_ENABLE_TLS=1)", word);
#endif
#if RP_ENABLE_TLS
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
        if ((err = tls_ca_load(x->p, d->tas, &d->ntas, f, &why)) != NULL)
            return cfg_file_fail(x, err, val, why);
#endif
    } else {
        return RP_ENOTFOUND;
    }
    return RP_OK;
#else
    (void)d, (void)val;
    return RP_ENOTFOUND;
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
    rc = OPT_SET(x, device_nums, d, word);
    if (rc == RP_ENOTFOUND)
        rc = cfg_device_tls_opt(x, d, word, key, val);
    if (rc != RP_ENOTFOUND)
        return rc;
#if !RP_ENABLE_LIMITS
    if (str_ieq(key, S("max_conns")) || str_ieq(key, S("max_idle")))
        return cfg_fail(x, "max_conns=/max_idle= not compiled in (RP_ENABLE_LIMITS=0)", word);
#endif
    return cfg_unknown(x, "unknown device option", word,
                       NEAR(key, device_nums, NEAR(key, device_opts, NULL)));
}

/* Why `a` is no device address: a name (letters before its one ':', not
 * localhost) is not resolved. */
static const char *
cfg_addr_want(rp_str a)
{
    size_t i, colons = 0, letters = 0, head = a.n;
    rp_str h;
    for (i = 0; i < a.n; i++) {
        head = colons || a.p[i] != ':' ? head : i;
        colons += a.p[i] == ':';
        letters += !colons && lower((unsigned char)a.p[i]) >= 'a' && lower((unsigned char)a.p[i]) <= 'z';
    }
    h.p = a.p, h.n = head;
    if (letters && colons <= 1 && !str_ieq(h, S("localhost")))
        return RP_ENABLE_DNS ? ": want IP:PORT or NAME:PORT"
                             : ": want IP:PORT (names need a resolver: RP_ENABLE_DNS=0)";
    return ": want IP:PORT";
}

#if RP_ENABLE_DNS
/* `NAME:PORT`: a DNS name (labels of letters, digits, - and _, 1..63 bytes,
 * not beginning or ending with -, dots between, at most 253 bytes, a letter
 * somewhere so that a mistyped address is not taken for a name) and a port
 * 1..65535.  Kept in d->name, the port in d->addr (family 0 until the first
 * lookup answers).  RP_OK, RP_EINVAL (not such a word) or RP_ECONFIG (no
 * room for the name). */
static int
cfg_device_name(cfg_ctx *x, rp_device *d, rp_str a)
{
    size_t i, colon = a.n, label = 0, letters = 0;
    int64_t port;
    rp_str h, ps;
    for (i = 0; i < a.n && colon == a.n; i++)
        colon = a.p[i] == ':' ? i : colon;
    h.p = a.p, h.n = colon;
    ps.p = a.p + colon + 1, ps.n = colon < a.n ? a.n - colon - 1 : 0;
    if (h.n == 0 || h.n > 253 || ps.n == 0 || ps.n > 5 || (port = parse_dec(ps)) < 1 || port > 65535)
        return RP_EINVAL;
    for (i = 0; i < h.n; i++) {
        int ch = lower((unsigned char)h.p[i]);
        if ((ch == '.' || ch == '-') && label == 0)
            return RP_EINVAL; /* an empty label ("a..b", ".a") or a leading '-' */
        if (ch == '.' && h.p[i - 1] == '-')
            return RP_EINVAL; /* a label ending in '-' */
        label = ch == '.' ? 0 : label + 1;
        letters += ch >= 'a' && ch <= 'z';
        if (label > 63 || !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                            ch == '_' || ch == '.'))
            return RP_EINVAL;
    }
    if (!letters || h.p[h.n - 1] == '-')
        return RP_EINVAL;
    if ((d->name = cfg_str(x, h)) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", a);
    memset(&d->addr, 0, sizeof(d->addr));
    d->addr.port = (uint16_t)port;
    return RP_OK;
}
#endif

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
    rp_config *c = CFG(x->p);
    rp_device *d;
    rp_pool *pl;
    int i, pool, rc;
    if (n < 3)
        return cfg_fail(x, "device needs POOL IP:PORT", w[0]);
    if ((pool = cfg_pool_find(c, w[1])) < 0)
        return cfg_no_pool(x, w[1]);
    pl = &c->pools[pool];
    if (c->ndevices == RP_MAX_DEVICES || pl->ndevices == RP_MAX_DEVICES)
        return cfg_fail(x, "too many devices (RP_MAX_DEVICES)", w[2]);
    d = &c->devices[c->ndevices];
    memset(d, 0, sizeof(*d));
    rc = rp_addr_parse(&d->addr, w[2].p, w[2].n, 1);
#if RP_ENABLE_DNS
    if (rc == RP_EINVAL && (rc = cfg_device_name(x, d, w[2])) == RP_ECONFIG)
        return rc;
#endif
    if (rc != RP_OK)
        return cfg_addr_fail(x, rc, "bad device address", w[2], cfg_addr_want(w[2]));
    d->pool = (uint8_t)pool;
    device_defaults(d);
    for (i = 3; i < n; i++) {
        if (cfg_device_opt(x, d, w[i]) != RP_OK)
            return RP_ECONFIG;
#if RP_ENABLE_LIMITS
        if (d->max_conns > RP_MAX_UPSTREAM)
            return cfg_fail2(x, "max_conns= over RP_MAX_UPSTREAM", w[i],
                             " (" XSTR(RP_MAX_UPSTREAM) "): lower it or build with more");
#endif
    }
#if RP_ENABLE_LIMITS
    if (d->max_idle && d->max_conns && d->max_idle > d->max_conns)
        for (i = 3; i < n; i++) {
            rp_str v;
            if (str_ieq(opt_key(w[i], &v), S("max_idle")))
                return cfg_fail2(x, "max_idle= over max_conns=", w[i], ": lower it or raise max_conns=");
        }
#endif
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

#if RP_ENABLE_CACHE || RP_ENABLE_AUTH
/* on|off into *out; RP_ECONFIG otherwise. */
static int
opt_onoff(cfg_ctx *x, rp_str word, rp_str val, uint8_t *out)
{
    if (!str_ieq(val, S("on")) && !str_ieq(val, S("off")))
        return cfg_bad_value(x, word);
    *out = str_ieq(val, S("on"));
    return RP_OK;
}
#endif

#if RP_ENABLE_CACHE
static int
cfg_cache(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = CFG(x->p);
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
            rc = OPT_SET_OR(x, cache_nums, c, w[i], "unknown cache option", cache_opts);
        if (rc != RP_OK)
            return RP_ECONFIG;
    }
    return RP_OK;
}
#endif

#if RP_ENABLE_PATH_MAP
static int cfg_path_ok(rp_str v);
#endif

static int
cfg_route(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = CFG(x->p);
    rp_route *r;
    rp_str ttl = {NULL, 0}; /* the cache_ttl= word */
#if RP_ENABLE_AUTH
    rp_str realm = {NULL, 0}; /* a realm= or pass_auth= word */
#endif
#if RP_ENABLE_SHARE
    rp_str share = {NULL, 0}, linger = {NULL, 0};
#endif
#if RP_ENABLE_PATH_MAP
    rp_str rw = {NULL, 0}; /* the rewrite= word */
#endif
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
                return cfg_no_pool(x, val);
        } else if (str_ieq(key, S("cache")) && (str_ieq(val, S("on")) || str_ieq(val, S("off")))) {
            r->cache = str_ieq(val, S("on"));
        } else if (str_ieq(key, S("cache_ttl"))) {
#if RP_ENABLE_CACHE_TTL
            uint32_t v = 0;
            if (opt_num(x, key, val, CFG_SEC, 1000, 2592000000u, &v) != RP_OK)
                return RP_ECONFIG;
            if (v % 1000)
                return cfg_fail(x, "cache_ttl is whole seconds (the cache counts age in seconds)",
                                val);
            r->cache_ttl = v / 1000;
            ttl = w[i];
#else
            return cfg_fail(x, "cache_ttl not compiled in (RP_ENABLE_CACHE_TTL=0)", w[i]);
#endif
#if RP_ENABLE_ACL
        } else if (str_ieq(key, S("allow"))) {
            if (cfg_net(x, w[i], val, r->allow, &r->nallow) != RP_OK)
                return RP_ECONFIG;
#endif
#if RP_ENABLE_SHARE
        } else if (str_ieq(key, S("share"))) {
            if (opt_onoff(x, w[i], val, &r->share) != RP_OK)
                return RP_ECONFIG;
            share = w[i];
        } else if (str_ieq(key, S("share_linger"))) {
            if (opt_num(x, key, val, CFG_MS, 0, 3600000, &r->share_linger_ms) != RP_OK)
                return RP_ECONFIG;
            linger = w[i];
#else
        } else if (str_ieq(key, S("share")) || str_ieq(key, S("share_linger"))) {
            return cfg_fail(x, "stream sharing not compiled in (RP_ENABLE_SHARE=0)", w[i]);
#endif
#if RP_ENABLE_AUTH
        } else if (str_ieq(key, S("auth"))) {
            if (cfg_users_ref(x, val, &r->auth) != RP_OK)
                return RP_ECONFIG;
        } else if (str_ieq(key, S("realm"))) {
            if (cfg_realm(x, val, &r->realm) != RP_OK)
                return RP_ECONFIG;
            realm = w[i];
        } else if (str_ieq(key, S("pass_auth"))) {
            if (opt_onoff(x, w[i], val, &r->pass_auth) != RP_OK)
                return RP_ECONFIG;
            realm = w[i];
#else
        } else if (str_ieq(key, S("auth")) || str_ieq(key, S("realm")) || str_ieq(key, S("pass_auth"))) {
            return cfg_fail(x, "Basic auth not compiled in (RP_ENABLE_AUTH=0)", w[i]);
#endif
        } else if (str_ieq(key, S("host")) && val.n && check_host(val) == RP_OK) {
            dst = &r->host;
        } else if (str_ieq(key, S("path")) && val.n && val.p[0] == '/') {
            dst = &r->path;
#if RP_ENABLE_STREAM_TIMEOUTS
        } else if (str_ieq(key, S("device_timeout"))) {
            if (opt_num(x, key, val, CFG_MS, 1, 86400000, &r->device_timeout) != RP_OK)
                return RP_ECONFIG;
        } else if (str_ieq(key, S("stream_idle"))) {
            uint32_t v = 0;
            if (opt_num(x, key, val, CFG_MS, 0, 86400000, &v) != RP_OK)
                return RP_ECONFIG;
            r->stream_idle = v + 1;
#endif
#if RP_ENABLE_HEADER_RULES
        } else if (str_ieq(key, S("headers"))) {
            int k = cfg_hset(x, val, w[i]);
            if (k < 0)
                return RP_ECONFIG;
            r->headers = (uint8_t)(k + 1);
#endif
#if RP_ENABLE_PATH_MAP
        } else if (str_ieq(key, S("rewrite"))) {
            if (!cfg_path_ok(val) || val.p[val.n - 1] != '/' || memchr(val.p, '?', val.n) ||
                memchr(val.p, '#', val.n))
                return cfg_fail2(x, "bad rewrite= prefix", w[i], " (a path ending in '/': / or /api/v2/)");
            dst = &r->rewrite;
            rw = w[i];
#endif
        } else {
            return cfg_unknown(x, "unknown route option", w[i], NEAR(key, route_opts, NULL));
        }
        if (dst && (*dst = cfg_str(x, val)) == NULL)
            return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
    }
    if (pool < 0)
        return cfg_fail(x, "route needs pool=NAME", w[0]);
    if (ttl.n && !r->cache)
        return cfg_fail(x, "cache_ttl= needs cache=on on the same route", ttl);
#if RP_ENABLE_SHARE
    if (linger.n && !r->share)
        return cfg_fail(x, "share_linger= needs share=on on the same route", linger);
    if (r->share && r->cache)
        return cfg_fail(x, "share=on and cache=on on one route: a live stream is not cached, "
                           "choose one", share);
#endif
#if RP_ENABLE_AUTH
    if (realm.n && !r->auth)
        return cfg_fail(x, "realm= and pass_auth= need auth=NAME on the same route", realm);
#endif
#if RP_ENABLE_PATH_MAP
    if (rw.n && (!r->path || r->path[strlen(r->path) - 1] != '/'))
        return cfg_fail2(x, "rewrite= needs a path= ending in '/'", rw,
                         " (so /cam10/ is not /cam1/)");
#endif
    r->pool = (uint8_t)pool;
    c->nroutes++;
    return RP_OK;
}

static int
cfg_timeout(cfg_ctx *x, rp_str *w, int n)
{
    int i;
    if (n < 2)
        return cfg_fail(x, "timeout needs NAME=DURATION", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        int rc = OPT_SET(x, timeout_nums, CFG(x->p), w[i]);
        if (rc == RP_ENOTFOUND)
            return cfg_unknown(x, "unknown timeout", w[i], NEAR(key, timeout_nums, NULL));
        if (rc != RP_OK)
            return RP_ECONFIG;
    }
    return RP_OK;
}

static int
cfg_via(cfg_ctx *x, rp_str *w, int n)
{
    if (n != 2)
        return cfg_fail(x, "via needs one NAME", w[n - 1]);
    if (!cfg_name_ok(w[1]))
        return cfg_fail2(x, "bad via name", w[1], CFG_NAME_WANT);
    if ((CFG(x->p)->via = cfg_str(x, w[1])) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[1]);
    return RP_OK;
}


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
        return OPT_SET_OR(x, health_nums, pl, word, "unknown health option", health_opts);
    if (!cfg_path_ok(val))
        return cfg_bad_value(x, word);
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
    if (n < 2)
        return cfg_fail(x, "health needs a POOL", w[0]);
    if ((pool = cfg_pool_find(CFG(x->p), w[1])) < 0)
        return cfg_no_pool(x, w[1]);
    pl = &CFG(x->p)->pools[pool];
    if (pl->health)
        return cfg_fail(x, "duplicate health line for pool", w[1]);
    health_defaults(pl);
    for (i = 2; i < n; i++)
        if (cfg_health_opt(x, pl, w[i]) != RP_OK)
            return RP_ECONFIG;
    return RP_OK;
}

#if RP_ENABLE_STATUS
static int
cfg_status(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = CFG(x->p);
    int i;
    if (c->status_path)
        return cfg_fail(x, "duplicate status line", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("path"))) {
            if (!cfg_path_ok(val))
                return cfg_bad_value(x, w[i]);
            if ((c->status_path = cfg_str(x, val)) == NULL)
                return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
        } else if (str_ieq(key, S("allow"))) {
            if (cfg_net(x, w[i], val, c->allow, &c->nallow) != RP_OK)
                return RP_ECONFIG;
#if RP_ENABLE_AUTH
        } else if (str_ieq(key, S("auth"))) {
            if (cfg_users_ref(x, val, &c->status_auth) != RP_OK)
                return RP_ECONFIG;
        } else if (str_ieq(key, S("realm"))) {
            if (cfg_realm(x, val, &c->status_realm) != RP_OK)
                return RP_ECONFIG;
#endif
        } else {
            return cfg_unknown(x, "unknown status option", w[i], NEAR(key, status_opts, NULL));
        }
    }
    if (!c->status_path)
        return cfg_fail(x, "status needs path=/PATH", w[0]);
#if RP_ENABLE_AUTH
    if (c->status_realm && !c->status_auth)
        return cfg_fail(x, "realm= needs auth=NAME on the status line", w[0]);
#endif
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
    rp_config *c = CFG(x->p);
    rp_str cert = {0, 0}, key = {0, 0}, sni = {0, 0}, ca = {0, 0}, hdr = {0, 0};
    char cf[256], kf[256];
    int auth = -1;
    rp_tls_cert *ct;
    const char *err;
    int i, why;
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
            return cfg_unknown(x, "unknown tls option", w[i], NEAR(k, tls_opts, NULL));
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
    if ((err = tls_cert_load(x->p, ct, cf, &why)) != NULL)
        return cfg_file_fail(x, err, cert, why);
    if ((err = tls_key_load(x->p, ct, kf, &why)) != NULL)
        return cfg_file_fail(x, err, key, why);
    if (ca.n) {
#if RP_ENABLE_TLS_CLIENT_AUTH
        memcpy(cf, ca.p, ca.n), cf[ca.n] = 0;
        if ((err = tls_ca_load(x->p, ct->tas, &ct->ntas, cf, &why)) != NULL)
            return cfg_file_fail(x, err, ca, why);
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

/* The rest of word *w (its unquoted start w->p..w->n, s[*i] == '"') with
 * its "..." parts unquoted: the word, copied into x->qb, runs to the next
 * blank or `#` outside quotes; inside, `\"` and `\\` are the only escapes
 * and control bytes other than tab are refused. */
static int
cfg_quoted(cfg_ctx *x, const char *s, size_t n, size_t *i, rp_str *w)
{
    char *q = (char *)x->qb;
    size_t at = x->qn, j = *i;
    int in = 0;
    rp_str here;
    if (w->n > CFG_QUOTED - at)
        goto long_;
    memcpy(q + at, w->p, w->n);
    x->qoff[x->nq] = (uint16_t)at, x->qat[x->nq] = (uint16_t)(w->p - s), x->nq++;
    x->qn = at + w->n;
    for (; j < n; j++) {
        char ch = s[j];
        here.p = s + j, here.n = 1;
        if (!in && (ch == ' ' || ch == '\t' || ch == '\r' || ch == '#'))
            break;
        if (ch == '"') {
            in = !in;
            continue;
        }
        if (in && ch == '\\') {
            if (j + 1 == n || (s[j + 1] != '"' && s[j + 1] != '\\'))
                return cfg_fail(x, "in a quoted value only \\\" and \\\\ are escapes: write \\\\ for a backslash", here);
            ch = s[++j];
        } else if (((unsigned char)ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return cfg_fail(x, "control character in a quoted value", here);
        }
        if (x->qn == CFG_QUOTED)
            goto long_;
        q[x->qn++] = ch;
    }
    if (in) {
        here.p = s + *i, here.n = j - *i;
        return cfg_fail(x, "unterminated quoted value: end it with \"", here);
    }
    w->p = q + at, w->n = x->qn - at;
    *i = j;
    return RP_OK;
long_:
    here.p = s + *i, here.n = 0;
    return cfg_fail(x, "quoted words of one line longer than 1024 bytes", here);
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
        {"tls", 3, cfg_tls}, {"users", 5, cfg_users},
        {"client_limit", 12, cfg_client_limit},
#if RP_ENABLE_CACHE
        {"cache", 5, cfg_cache},
#endif
#if RP_ENABLE_HEADER_RULES
        {"headers", 7, cfg_headers},
#endif
#if RP_ENABLE_ERROR_PAGES
        {"error_page", 10, cfg_error_page},
#endif
    };
    rp_str w[CFG_MAX_WORDS];
    char q[CFG_QUOTED];
    int nw = 0, rc = RP_OK;
    size_t i = 0, k;
    x->qb = q, x->qn = 0, x->nq = 0;
    while (i < n && s[i] != '#' && rc == RP_OK) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
            i++;
            continue;
        }
        if (nw == CFG_MAX_WORDS)
            return cfg_fail(x, "too many words on one line", w[0]);
        w[nw].p = s + i;
        while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '#' && s[i] != '"')
            i++;
        w[nw].n = (size_t)(s + i - w[nw].p);
        if (i < n && s[i] == '"')
            rc = cfg_quoted(x, s, n, &i, &w[nw]);
        nw++;
    }
    if (rc != RP_OK)
        return rc;
    if (nw == 0)
        return RP_OK;
    for (k = 0; k < RP_COUNT(dirs); k++)
        if (w[0].n == dirs[k].len && memcmp(w[0].p, dirs[k].name, dirs[k].len) == 0)
            return dirs[k].fn(x, w, nw);
    return cfg_suggest(x, "unknown directive", w[0], NEAR(w[0], dirs, NULL));
}

/* Whole-config checks once every line is read. */
static int
cfg_finish(cfg_ctx *x)
{
    rp_config *c = CFG(x->p);
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
#if RP_ENABLE_HEADER_RULES
    for (i = 0; i < c->nhsets; i++) {
        int k, used = 0;
        rp_str name;
        for (k = 0; k < c->nhrules; k++)
            used |= c->hrules[k].set == i;
        name.p = c->hsets[i], name.n = strlen(name.p);
        x->line = x->hset_line[i];
        if (!used)
            return cfg_fail2(x, "header rule set has no `headers` line", name,
                             " (add `headers NAME response set FIELD \"VALUE\"`)");
    }
#endif
    return RP_OK;
}

static int
config_parse_(rp_proxy *p, const char *text, size_t len, rp_cfg_error *err)
{
    cfg_ctx x;
    size_t i = 0;
    int rc;
    x.p = p, x.err = err, x.line = 0, x.qb = NULL, x.qn = 0, x.nq = 0;
    err->line = 0, err->col = 0, err->msg[0] = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        x.line++;
        x.ltext = text + i, x.llen = j - i;
        if (memchr(text + i, 0, j - i) != NULL)
            return cfg_fail(&x, "NUL byte in config", (rp_str){0, 0});
        rc = cfg_line(&x, text + i, j - i);
        x.qb = NULL; /* cfg_line's buffer is gone */
        if (rc != RP_OK)
            return RP_ECONFIG;
        i = j + 1;
    }
    if (x.line == 0)
        x.line = 1;
    x.ltext = NULL;
    return cfg_finish(&x);
}

int
rp_config_parse(rp_proxy *p, const char *text, size_t len, rp_cfg_error *err)
{
#if RP_ENABLE_RELOAD
    if (p->started) { /* into the spare slot: rp_config_apply switches */
        const char *why = "connections still run on the configuration before the last "
                          "reload: try again when they finish";
        int rc = reload_begin(p);
        if (rc == RP_OK && !buf_attach(p, &p->scratch)) { /* [5]'s decoders: TLS slot 0 is busy */
            reload_end(p, rc = RP_ENOMEM);
            why = "no free buffer for the certificate decoders: try again";
        }
        if (rc == RP_OK) {
            rc = config_parse_(p, text, len, err);
            buf_release(p, &p->scratch, 1);
            reload_end(p, rc);
        } else {
            err->line = 0, err->col = 0;
            memcpy(err->msg, why, strlen(why) + 1);
        }
        return rc;
    }
#endif
    return config_parse_(p, text, len, err);
}
#endif /* RP_ENABLE_CONFIG_TEXT */

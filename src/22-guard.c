/* ==== [22] The front door: client limits, route ACLs, Basic auth, PROXY ====
 * What stands between a client and a device before any device is asked:
 * - the client table: one entry per client address (RP_CLIENT_TABLE, the
 *   least recently seen one without open connections reused), counting
 *   open connections, a request-rate token bucket and failed logins;
 * - `client_limit conns=` (a connection over it gets a bare 429 and is
 *   closed; a TLS one is just closed) and `rate=`/`burst=` (429 with
 *   Retry-After, the connection kept when the request has no body);
 * - a route's `allow=` networks (403);
 * - `auth=` on a route or the status page: HTTP Basic (RFC 7617) against a
 *   users file ([20]), a verified credential remembered for
 *   RP_AUTH_CACHE_MS by its SHA-256, failed logins per address limited
 *   (RP_AUTH_FAIL_MAX within RP_AUTH_FAIL_WINDOW_MS: 429 for RP_AUTH_LOCK_MS);
 * - a `listen ... proxy_protocol` connection's PROXY header ([21]), read
 *   raw before TLS and HTTP: its source address replaces the peer's for
 *   everything above, the log and X-Forwarded-For.
 * Owns: p->clients_seen, p->auth_ok.  Calls: [2] [9] [13] [20] [21].
 * Called by: [9] (conn_read, conn_free, client_step), [13]
 * (exchange_begin), [17] (status_begin), [18] (accept). */
#include "rp_int.h"

#if RP_ENABLE_AUTH
#include <bearssl.h>
#endif


/* A refusal that keeps the connection when it can: a request without a
 * body on a keep-alive connection gets its answer and the next request is
 * read (a browser retries a 401 on the same connection); else as
 * reply_error. */
#if RP_ENABLE_ACL || RP_ENABLE_AUTH || RP_ENABLE_CLIENT_LIMIT
static int
refuse_(rp_proxy *p, rp_conn *c, int status WHY_ARG(const char *why))
{
    if (c->mode != M_NONE || !(c->flags & F_KEEP) || (c->flags & F_UPG) || p->stopping)
        return reply_error_(p, c, status WHY_ARG(why));
    refusal_noted_(p, c, status WHY_ARG(why));
    c->in.r += c->head_len; /* answered here: never retried */
    c->head_len = 0;
    c->status = status;
    error_write(p, c, status, 1);
    c->flags |= F_RESP_HEAD | F_RESP_DONE | F_REQ_DONE;
    return exchange_end(p, c);
}
#define refuse(p, c, status, why) refuse_(p, c, status WHY_ARG(why))
#endif

/* ---- The client table ---- */
#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
/* a's entry; with add, a new one if a has none (NULL when every entry has
 * open connections: a is then not tracked, counted). */
static struct rp_client *
client_find(rp_proxy *p, const rp_addr *a, int add)
{
    struct rp_client *e, *old = NULL;
    size_t n = a->family == 4 ? 4 : 16;
    int i;
    for (i = 0; i < RP_CLIENT_TABLE; i++) {
        e = &p->clients_seen[i];
        if (e->family == a->family && memcmp(e->ip, a->ip, n) == 0) {
            e->seen = p->now;
            return e;
        }
        if (!e->conns && (!old || !e->family || (old->family && e->seen < old->seen)))
            old = e;
    }
    if (!add)
        return NULL;
    if (!old) {
        p->stats.client_table_full++;
        return NULL;
    }
    memset(old, 0, sizeof(*old));
    old->family = a->family;
    memcpy(old->ip, a->ip, n);
    old->seen = old->refill = p->now;
#if RP_ENABLE_CLIENT_LIMIT
    old->tokens = (uint32_t)CFG(p)->cl_burst * 1000u;
#endif
    return old;
}
#endif

int
client_admit(rp_proxy *p, rp_conn *c)
{
#if RP_ENABLE_CLIENT_LIMIT
    static const char busy[] = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 18\r\nConnection: close\r\n\r\n"
                               "Too Many Requests\n";
    struct rp_client *e;
    if (!CFG(p)->cl_conns || (e = client_find(p, &c->peer, 1)) == NULL)
        return 0;
    if (e->conns >= CFG(p)->cl_conns) {
        char ip[48];
        p->stats.limit_conns++;
        rp_addr_format(&c->peer, ip, sizeof(ip));
        RP_LOG(RP_LOG_INFO, ("client_limit conns=%u: %s has %u open: refused", CFG(p)->cl_conns,
                             ip, e->conns));
        if (!c->tls) /* nothing else was read or written on it yet */
            rp_port_send(c->sock, busy, sizeof(busy) - 1);
        conn_free(p, c);
        return 1;
    }
    e->conns++;
    c->cl = (uint16_t)(e - p->clients_seen + 1);
#else
    (void)p, (void)c;
#endif
    return 0;
}

#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
void
client_gone(rp_proxy *p, rp_conn *c)
{
    if (c->cl)
        p->clients_seen[c->cl - 1].conns--;
    c->cl = 0;
}
#endif

#if RP_ENABLE_CLIENT_LIMIT
/* The request rate: a token a request, burst tokens at most, rate per
 * period coming back.  0 to go on, else the 429 was given. */
int
client_rate(rp_proxy *p, rp_conn *c)
{
    const rp_config *cf = CFG(p);
    struct rp_client *e;
    uint64_t el, cap = (uint64_t)cf->cl_burst * 1000u, t;
    if (!cf->cl_rate)
        return 0;
    e = c->cl ? &p->clients_seen[c->cl - 1] : client_find(p, &c->peer, 1);
    if (!e)
        return 0;
    el = RP_MIN(p->now - e->refill, (uint64_t)cf->cl_period_ms * cf->cl_burst);
    t = e->tokens + el * cf->cl_rate * 1000u / cf->cl_period_ms;
    e->tokens = (uint32_t)RP_MIN(t, cap);
    e->refill = p->now;
    if (e->tokens >= 1000u) {
        e->tokens -= 1000u;
        return 0;
    }
    p->stats.limit_rate++;
    /* seconds until a whole token is back, rounded up */
    t = ((1000u - e->tokens) * (uint64_t)cf->cl_period_ms / ((uint64_t)cf->cl_rate * 1000u) + 999) /
        1000;
    c->retry_after = (uint16_t)RP_MAX(t, 1u);
    return refuse(p, c, 429, "client_limit rate= exceeded");
}
#endif

/* ---- Basic auth ---- */
#if RP_ENABLE_AUTH
/* The cache key of value for users table `list`. */
static void
auth_key(int list, rp_str value, uint8_t *out)
{
    br_sha256_context h;
    uint8_t d[32], l = (uint8_t)list;
    br_sha256_init(&h);
    br_sha256_update(&h, &l, 1);
    br_sha256_update(&h, value.p, value.n);
    br_sha256_out(&h, d);
    memcpy(out, d, 24);
}

static int
same24(const uint8_t *a, const uint8_t *b)
{
    unsigned d = 0;
    int i;
    for (i = 0; i < 24; i++)
        d |= (unsigned)(a[i] ^ b[i]);
    return d == 0;
}

/* A failed login from c's address: counted; the RP_AUTH_FAIL_MAX-th within
 * the window starts the lock. */
static void
auth_failed(rp_proxy *p, rp_conn *c)
{
    struct rp_client *e = client_find(p, &c->peer, 1);
    p->stats.auth_failures++;
    if (!e)
        return;
    if (!e->fails || p->now - e->fail_t > RP_AUTH_FAIL_WINDOW_MS)
        e->fails = 0, e->fail_t = p->now;
    if (++e->fails >= RP_AUTH_FAIL_MAX) {
        char ip[48];
        e->fails = RP_AUTH_FAIL_MAX;
        e->fail_t = p->now; /* locked from now */
        rp_addr_format(&c->peer, ip, sizeof(ip));
        RP_LOG(RP_LOG_WARN, ("auth: %d failed logins from %s: refused for %u s", RP_AUTH_FAIL_MAX,
                             ip, (unsigned)(RP_AUTH_LOCK_MS / 1000)));
    }
}

/* HTTP Basic against users table `list`: 0 to go on, else the 401 or 429
 * was given. */
int
auth_gate(rp_proxy *p, rp_conn *c, const rp_http_msg *m, int list)
{
    struct rp_client *e = client_find(p, &c->peer, 0);
    struct rp_auth_ok *slot = NULL;
    char buf[RP_AUTH_CRED_MAX];
    rp_str v = {NULL, 0}, user, pass;
    uint8_t key[24];
    size_t i, nauth = 0;
    int rc;
    if (e && e->fails >= RP_AUTH_FAIL_MAX) {
        if (p->now - e->fail_t < RP_AUTH_LOCK_MS) {
            p->stats.auth_locked++;
            c->retry_after = (uint16_t)((e->fail_t + RP_AUTH_LOCK_MS - p->now + 999) / 1000);
            return refuse(p, c, 429, "auth: too many failed logins from this address");
        }
        e->fails = 0;
    }
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == H_AUTHORIZATION)
            v = m->headers[i].value, nauth++;
    if (nauth == 0) { /* a browser's first try: not a failure */
        p->stats.auth_failures++;
        return refuse(p, c, 401, "auth: no credentials");
    }
    if (nauth > 1) {
        auth_failed(p, c);
        return refuse(p, c, 401, "auth: several Authorization fields");
    }
    auth_key(list, v, key);
    for (i = 0; i < RP_AUTH_CACHE; i++) {
        struct rp_auth_ok *k = &p->auth_ok[i];
        if (k->until > p->now && same24(k->h, key)) {
            p->stats.auth_cache_hits++;
            return 0;
        }
        if (!slot || k->until < slot->until)
            slot = k; /* the one that expires first gives way */
    }
    rc = basic_credentials(v, buf, sizeof(buf), &user, &pass);
    if (rc == RP_OK && users_check(&CFG(p)->users[list], user, pass) == 1) {
        memcpy(slot->h, key, sizeof(key));
        slot->until = p->now + RP_AUTH_CACHE_MS;
        memset(buf, 0, sizeof(buf));
        return 0;
    }
    memset(buf, 0, sizeof(buf));
    auth_failed(p, c);
    return refuse(p, c, 401, rc == RP_ENOTIMPL  ? "auth: not the Basic scheme"
                             : rc == RP_ETOOLONG ? "auth: credentials longer than RP_AUTH_CRED_MAX"
                             : rc != RP_OK       ? "auth: malformed Basic credentials"
                                                 : "auth: wrong user or password");
}

/* `WWW-Authenticate: Basic realm="...", charset="UTF-8"` for c's 401. */
void
w_auth_challenge(const rp_proxy *p, const rp_conn *c, wbuf *w)
{
    const char *r = c->route != NO_ROUTE ? CFG(p)->routes[c->route].realm : CFG(p)->status_realm;
    w_put(w, S("WWW-Authenticate: Basic realm=\""));
    for (r = r ? r : "rproxy"; *r; r++) {
        if (*r == '"' || *r == '\\')
            w_put(w, "\\", 1);
        w_put(w, r, 1);
    }
    w_put(w, S("\", charset=\"UTF-8\"\r\n"));
}
#endif

/* The route c's request matched: its allow=, then its auth=.  0 to go on,
 * else the refusal was given. */
#if RP_ENABLE_ACL || RP_ENABLE_AUTH
int
route_guard(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_route *r = &CFG(p)->routes[c->route];
    int rc;
    (void)m, (void)rc;
#if RP_ENABLE_ACL
    if (r->nallow && !addr_in_nets(&c->peer, r->allow, r->nallow)) {
        p->stats.acl_denied++;
        return refuse(p, c, 403, "client not in the route's allow=");
    }
#endif
#if RP_ENABLE_AUTH
    if (r->auth && (rc = auth_gate(p, c, m, r->auth - 1)) != 0)
        return rc;
#endif
    return 0;
}
#endif

/* ---- The PROXY protocol header ---- */
#if RP_ENABLE_PROXY_PROTOCOL
/* A new connection on a proxy_protocol listener: from a proxy_from= peer
 * (else closed: 0 when it was), its header awaited. */
int
proxy_accept(rp_proxy *p, rp_conn *c)
{
    const rp_listener_cfg *l = &CFG(p)->listeners[c->lsn];
    if (l->nproxy_from && !addr_in_nets(&c->peer, l->proxy_from, l->nproxy_from)) {
        char ip[48];
        p->stats.proxy_refused++;
        rp_addr_format(&c->peer, ip, sizeof(ip));
        RP_LOG(RP_LOG_INFO, ("proxy_protocol: %s is not in proxy_from=: closed", ip));
        conn_free(p, c);
        return 0;
    }
    c->flags |= F_PROXYHDR;
    return 1;
}

/* Read the header's bytes raw (before any TLS).  A TLS connection reads no
 * further than the header can reach (16 bytes, then the v2 length, or v1's
 * line a byte at a time), so at most one byte of the TLS record follows it. */
int
proxy_read(rp_proxy *p, rp_conn *c)
{
    size_t room, have = buf_len(&c->in);
    long n;
    if (!(c->ready & RP_EV_READ) || (c->flags & (F_EOF | F_DEAD)))
        return 0;
    if ((room = buf_room(p, &c->in)) == 0)
        return 0;
    if (c->tls)
        room = RP_MIN(room, proxy_header_want((const uint8_t *)c->in.d + c->in.r, have));
    n = rp_port_recv(c->sock, c->in.d + c->in.w, room);
    if (n > 0)
        c->in.w += (uint32_t)n;
    return recv_done(p, c, n, room);
}

int
proxy_refuse(rp_proxy *p, rp_conn *c, const char *why)
{
    char ip[48];
    p->stats.proxy_refused++;
    rp_addr_format(&c->peer, ip, sizeof(ip));
    RP_LOG(RP_LOG_INFO, ("proxy_protocol: %s from %s: closed", why, ip));
    (void)why;
    conn_free(p, c);
    return 1;
}

/* CS_HEAD with F_PROXYHDR: the header, then the connection goes on as its
 * listener's (TLS or plain) with the address the header gave. */
int
proxy_step(rp_proxy *p, rp_conn *c)
{
    rp_addr src;
    size_t len = buf_len(&c->in);
    long n = len ? proxy_header_parse((const uint8_t *)c->in.d + c->in.r, len, &src) : RP_EAGAIN;
    if (n == RP_EAGAIN) {
        if (c->flags & (F_EOF | F_DEAD))
            return proxy_refuse(p, c, len ? "connection closed inside its PROXY header"
                                           : "connection closed before a PROXY header");
        return 0;
    }
    if (n < 0)
        return proxy_refuse(p, c, c->in.d[c->in.r] != 'P' && c->in.d[c->in.r] != '\r'
                                      ? "no PROXY header"
                                      : "malformed or too long PROXY header");
    c->in.r += (uint32_t)n;
    c->flags &= ~F_PROXYHDR;
    if (src.family)
        c->peer = src;
#if RP_ENABLE_TLS
    if (c->tls) { /* what followed the header is the TLS engine's */
        br_ssl_engine_context *e = &c->tls->u.sc.eng;
        while (buf_len(&c->in)) {
            size_t room, k;
            unsigned char *b = br_ssl_engine_recvrec_buf(e, &room);
            if (!b)
                return proxy_refuse(p, c, "TLS engine not reading after the PROXY header");
            k = RP_MIN(room, buf_len(&c->in));
            memcpy(b, c->in.d + c->in.r, k);
            c->in.r += (uint32_t)k;
            br_ssl_engine_recvrec_ack(e, k);
        }
    }
#endif
    client_admit(p, c);
    return 1;
}
#endif

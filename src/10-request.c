/* ==== [10] Request head: what the device is sent ====
 * The head is re-serialised, never copied blindly (RFC 9110 §7.6.1): the
 * request line in origin form, Host first, hop-by-hop fields dropped
 * (Connection and every field it names, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Upgrade unless tunnelling), framing re-emitted canonically, and
 * X-Forwarded-For (appended), -Proto, -Host and Via added.
 * Owns: nothing.  Calls: [1] [2] [3].  Called by: [13] (dispatch). */
#include "rp_int.h"

/* The field names a message's Connection headers list (bounded). */
size_t
conn_tokens(const rp_http_msg *m, rp_str *tok)
{
    size_t i, n = 0;
    for (i = 0; i < m->nheaders; i++) {
        rp_str v = m->headers[i].value, e;
        if (m->headers[i].id != H_CONNECTION)
            continue;
        while (n < MAX_CONN_TOKENS && list_next(&v, &e))
            tok[n++] = e;
    }
    return n;
}

/* Is header i passed on?  Hop-by-hop fields, framing (re-emitted) and the
 * fields this proxy writes itself are not. */
int
field_passes(const rp_http_msg *m, size_t i, const rp_str *tok, size_t ntok)
{
    size_t k;
    int id = m->headers[i].id;
    if (id != H_OTHER && id != H_EXPECT && id < H_DATE)
        return 0;
    if (memchr(m->headers[i].name.p, '_', m->headers[i].name.n))
        return 0; /* "Content_Length" may mean Content-Length to a device's CGI
                     layer: dropped, as nginx does by default */
    for (k = 0; k < ntok; k++)
        if (str_ieq2(m->headers[i].name, tok[k]))
            return 0;
    return 1;
}

/* "Name: v1, v2, extra\r\n" joining every field with this id. */
void
w_joined(wbuf *w, const char *name, size_t n, const rp_http_msg *m, int id,
         rp_str extra)
{
    size_t i;
    w_put(w, name, n);
    w_put(w, S(": "));
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == id && m->headers[i].value.n) {
            w_str(w, m->headers[i].value);
            w_put(w, S(", "));
        }
    w_str(w, extra);
    w_put(w, S("\r\n"));
}

#if RP_ENABLE_CACHE || RP_ENABLE_WALL_CLOCK
RP_NOINLINE int
has_field(const rp_http_msg *m, int id)
{
    size_t i;
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == id)
            return 1;
    return 0;
}
#endif

rp_str
header_value(const rp_http_msg *m, int id)
{
    size_t i;
    rp_str none = {"", 0};
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == id)
            return m->headers[i].value;
    return none;
}

/* "1.1 rproxy": the protocol received and this proxy's pseudonym. */
RP_NOINLINE rp_str
via_value(const rp_proxy *p, int minor, char *buf)
{
    rp_str v;
    size_t n = RP_MIN(strlen(CFG(p)->via), (size_t)40);
    memcpy(buf, minor ? "1.1 " : "1.0 ", 4);
    memcpy(buf + 4, CFG(p)->via, n);
    v.p = buf, v.n = 4 + n;
    return v;
}

/* cond (cache revalidation, else NULL): the stored ETag and Last-Modified,
 * sent as If-None-Match / If-Modified-Since instead of the client's own. */
int
request_head_write(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m,
                   const rp_str *cond)
{
    rp_str tok[MAX_CONN_TOKENS], ip, via, proto = {"https", c->tls ? 5 : 4};
    rp_str cert = {CFG(p)->client_cert_header, 0};
    char ipbuf[48], viabuf[48];
    size_t i, ntok = conn_tokens(m, tok), nf = 4; /* Host, XFF, XFP, Via */
    wbuf w = buf_writer(p, &d->out);
#if RP_ENABLE_AUTH /* the credentials rproxy checked stay here (RFC 7235 §4.2) */
    const rp_route *rt = &CFG(p)->routes[c->route];
    int drop_auth = rt->auth && !rt->pass_auth;
#else
    int drop_auth = 0;
#endif
    if (cert.p)
        cert.n = strlen(cert.p);
    w_str(&w, m->method);
    w_put(&w, " ", 1);
    if (m->target.n == 0 || (m->target.p[0] != '/' && m->target.p[0] != '*'))
        w_put(&w, "/", 1); /* absolute-form without a path */
#if RP_ENABLE_PATH_MAP
    if (c->route != NO_ROUTE && CFG(p)->routes[c->route].rewrite)
        w_target_mapped(&w, &CFG(p)->routes[c->route], m->target);
    else
#endif
        w_str(&w, m->target);
    w_put(&w, S(" HTTP/1.1\r\n"));
#if RP_ENABLE_PATH_MAP
    if (c->route != NO_ROUTE && CFG(p)->pools[CFG(p)->routes[c->route].pool].host)
        w_field(&w, S("Host"), (rp_str){CFG(p)->pools[CFG(p)->routes[c->route].pool].host,
                                        strlen(CFG(p)->pools[CFG(p)->routes[c->route].pool].host)});
    else
#endif
        w_field(&w, S("Host"), m->host); /* empty when unknown (RFC 9112 §3.2) */
    for (i = 0; i < m->nheaders; i++) {
        const rp_header *h = &m->headers[i];
        /* a client's own cert header is never trusted (no name is empty, so
         * an empty cert matches none) */
        if (!field_passes(m, i, tok, ntok) || str_ieq2(h->name, cert) ||
            (drop_auth && h->id == H_AUTHORIZATION) ||
            (cond && (h->id == H_IF_NONE_MATCH || h->id == H_IF_MODIFIED_SINCE)))
            continue;
        w_field(&w, h->name.p, h->name.n, h->value);
        nf++;
    }
#if RP_ENABLE_TLS && RP_ENABLE_TLS_CLIENT_AUTH /* else no CN is ever extracted */
    if (cert.p && c->tls && c->tls->cn_elt.status > 0)
        w_field(&w, cert.p, cert.n, (rp_str){c->tls->cn, strlen(c->tls->cn)}), nf++;
#endif
    ip.p = ipbuf, ip.n = rp_addr_format(&c->peer, ipbuf, sizeof(ipbuf));
    w_joined(&w, S("X-Forwarded-For"), m, H_XFF, ip);
    w_field(&w, S("X-Forwarded-Proto"), proto);
    if (m->flags & RP_HF_HOST)
        w_field(&w, S("X-Forwarded-Host"), m->host);
    via = via_value(p, m->minor, viabuf);
    w_joined(&w, S("Via"), m, H_VIA, via);
    if (m->flags & RP_HF_CHUNKED)
        w_put(&w, S("Transfer-Encoding: chunked\r\n"));
    else if (m->flags & RP_HF_LENGTH) {
        w_put(&w, S("Content-Length: "));
        w_num(&w, (uint64_t)m->content_length);
        w_put(&w, S("\r\n"));
    }
    if (cond && cond[0].n)
        w_field(&w, S("If-None-Match"), cond[0]), nf++;
    if (cond && cond[1].n)
        w_field(&w, S("If-Modified-Since"), cond[1]), nf++;
    if (c->flags & F_UPG) {
        w_put(&w, S("Connection: upgrade\r\n"));
        w_field(&w, S("Upgrade"), header_value(m, H_UPGRADE));
    }
#if RP_ENABLE_HEADER_RULES
    w_hrules(p, c, &w, 0);
#endif
    w_put(&w, S("\r\n"));
    /* What is added must not make a head rproxy itself would refuse:
     * a device with the same limits would answer 431 anyway. */
    nf += !!(m->flags & RP_HF_HOST) + !!(m->flags & (RP_HF_CHUNKED | RP_HF_LENGTH)) +
          2 * !!(c->flags & F_UPG); /* X-Forwarded-Host, framing, Connection + Upgrade */
    if (nf > RP_MAX_HEADERS || w.n > RP_MAX_HEAD)
        return RP_EHDRTOOBIG;
    return buf_commit(&d->out, &w);
}

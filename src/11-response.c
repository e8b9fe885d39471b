/* ==== [11] Response head: what the client is sent, error replies ====
 * The response head gets the same treatment as the request's, plus the
 * connection's fate: "Connection: close" when rproxy will close,
 * "keep-alive" for an HTTP/1.0 client that keeps.  Error replies are
 * canned (status_for maps a parse error to its status).  The head writers
 * (w_status_line, w_head_fields, w_via_date) also build the heads the
 * cache stores and serves.
 * Owns: nothing.  Calls: [1] [3] [4] [10].  Called by: [12] [13] [15]. */
#include "rp_int.h"

RP_NOINLINE const char *
reason_for(int status)
{
    static const struct {
        uint16_t status;
        const char *reason;
    } reasons[] = {
        {400, "Bad Request"},
#if RP_ENABLE_AUTH
        {401, "Unauthorized"},
#endif
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {414, "URI Too Long"},
        {417, "Expectation Failed"},
#if RP_ENABLE_AUTH || RP_ENABLE_CLIENT_LIMIT
        {429, "Too Many Requests"},
#endif
        {431, "Request Header Fields Too Large"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    size_t i;
    for (i = 0; i < RP_COUNT(reasons); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Error";
}

int
status_for(int err)
{
    switch (err) {
    case RP_ETOOLONG: return 414;
    case RP_EHDRTOOBIG: return 431;
    case RP_ENOTIMPL: return 501;
    case RP_EVERSION: return 505;
    case RP_EEXPECT: return 417;
    }
    return 400;
}

/* "HTTP/1.1 status reason\r\n" */
void
w_status_line(wbuf *w, int status, rp_str reason)
{
    w_put(w, S("HTTP/1.1 "));
    w_num(w, (uint64_t)status);
    w_put(w, " ", 1);
    w_str(w, reason);
    w_put(w, S("\r\n"));
}

#if RP_ENABLE_ERROR_PAGES
/* The configured page for status, or NULL. */
static const rp_errpage *
epage_for(const rp_proxy *p, int status)
{
    int i;
    for (i = 0; i < CFG(p)->nepages; i++)
        if (CFG(p)->epages[i].status == status)
            return &CFG(p)->epages[i];
    return NULL;
}
#endif

/* Queue "HTTP/1.1 status ..." with a short text body (or its error_page),
 * and Connection: close unless keep. */
void
error_write(rp_proxy *p, rp_conn *c, int status, int keep)
{
    rp_str reason;
    wbuf w = buf_writer(p, &c->out);
#if RP_ENABLE_ERROR_PAGES
    static const char *const ctypes[] = {"application/octet-stream", "text/html; charset=utf-8",
                                         "text/plain; charset=utf-8", "application/json",
                                         "image/svg+xml", "image/png", "text/css"};
    const rp_errpage *ep = epage_for(p, status);
#endif
    reason.p = reason_for(status), reason.n = strlen(reason.p);
    w_status_line(&w, status, reason);
#if RP_ENABLE_ERROR_PAGES
    if (ep) {
        w_put(&w, S("Content-Type: "));
        w_cstr(&w, ctypes[ep->ctype]);
        w_put(&w, S("\r\nContent-Length: "));
        w_num(&w, (uint64_t)ep->len);
        w_put(&w, S("\r\n"));
    } else
#endif
    {
        w_put(&w, S("Content-Type: text/plain\r\nContent-Length: "));
        w_num(&w, (uint64_t)reason.n + 1);
        w_put(&w, S("\r\n"));
    }
    w_cache_status(&w, c, 0, 0);
#if RP_ENABLE_LIMITS
    if (status == 503) /* busy, not broken: worth trying again soon (RFC 9110 §10.2.3) */
        w_put(&w, S("Retry-After: 1\r\n"));
#endif
#if RP_ENABLE_AUTH
    if (status == 401)
        w_auth_challenge(p, c, &w);
#endif
#if RP_ENABLE_AUTH || RP_ENABLE_CLIENT_LIMIT
    if (status == 429) {
        w_put(&w, S("Retry-After: "));
        w_num(&w, c->retry_after);
        w_put(&w, S("\r\n"));
    }
#endif
#if !(RP_ENABLE_ACL || RP_ENABLE_AUTH || RP_ENABLE_CLIENT_LIMIT)
    keep = 0; /* only [22]'s refusals keep the connection */
#endif
    if (!keep)
        w_put(&w, S("Connection: close\r\n"));
    w_put(&w, S("\r\n"));
    if (!(c->flags & F_HEAD)) { /* a HEAD reply has no body */
#if RP_ENABLE_ERROR_PAGES
        if (ep)
            w_put(&w, CFG(p)->epage_store + ep->off, ep->len);
        else
#endif
        {
            w_str(&w, reason);
            w_put(&w, "\n", 1);
        }
    }
    if (buf_commit(&c->out, &w) == RP_OK)
        SENT(c, w.n);
}

/* "Name: value\r\n" as header h came. */
void
w_header(wbuf *w, const rp_header *h)
{
    w_field(w, h->name.p, h->name.n, h->value);
}

/* The status line and the fields of m that are passed on (RFC 9110
 * §7.6.1); the cache's stored form (`stored`) also leaves out Age and
 * Cache-Status, which a hit writes afresh. */
void
w_head_fields_(wbuf *w, const rp_http_msg *m, int stored HMAP_ARG(const hmap *hm))
{
    rp_str tok[MAX_CONN_TOKENS];
    size_t i, ntok = conn_tokens(m, tok);
    w_status_line(w, m->status, m->reason);
    for (i = 0; i < m->nheaders; i++)
        if (field_passes(m, i, tok, ntok) &&
            !(stored && (m->headers[i].id == H_AGE || m->headers[i].id == H_CACHE_STATUS))) {
#if RP_ENABLE_PATH_MAP
            if (hm && map_field(w, &m->headers[i], hm))
                continue;
#endif
            w_header(w, &m->headers[i]);
        }
}

/* Via, and the Date a device left out: RFC 9110 §6.6.1, a proxy with a
 * clock adds one. */
void
w_via_date(rp_proxy *p, wbuf *w, const rp_http_msg *m)
{
    char buf[48];
    w_joined(w, S("Via"), m, H_VIA, via_value(p, m->minor, buf));
#if RP_ENABLE_WALL_CLOCK
    {
        int64_t now;
        if (has_field(m, H_DATE) || (now = rp_port_time()) <= 0)
            return;
        http_date_format(now, buf);
        w_field(w, S("Date"), (rp_str){buf, 29});
    }
#endif
}

/* The end of a head for the client: its connection's fate (unless the
 * caller wrote it: `fate` 0), the blank line; then queued in `out`.
 * RP_ENOMEM when it does not fit. */
int
head_end(rp_conn *c, wbuf *w, int fate)
{
    if (fate && !(c->flags & F_KEEP))
        w_put(w, S("Connection: close\r\n"));
    else if (fate && (c->flags & F_HTTP10))
        w_put(w, S("Connection: keep-alive\r\n"));
    w_put(w, S("\r\n"));
    if (buf_commit(&c->out, w) != RP_OK)
        return RP_ENOMEM;
    SENT(c, w->n);
    return RP_OK;
}

RP_NOINLINE int
response_head_write(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m)
{
    wbuf w = buf_writer(p, &c->out);
#if RP_ENABLE_PATH_MAP
    hmap hm;
    char abuf[56];
    const hmap *hmp = hmap_of(p, c, d, &hm, abuf);
#endif
    w_head_fields(&w, m, 0, hmp);
    if ((m->flags & RP_HF_LENGTH) && m->status != 204 && d->mode != M_DECHUNK) {
        w_put(&w, S("Content-Length: "));
        w_num(&w, (uint64_t)m->content_length);
        w_put(&w, S("\r\n"));
    }
    if (d->mode == M_CHUNKED || ((c->flags & F_HEAD) && (m->flags & RP_HF_CHUNKED)))
        w_put(&w, S("Transfer-Encoding: chunked\r\n"));
    w_via_date(p, &w, m);
    w_cache_status(&w, c, m->status, 0);
    if (m->status == 101) {
        w_put(&w, S("Connection: upgrade\r\n"));
        w_field(&w, S("Upgrade"), header_value(m, H_UPGRADE));
    }
#if RP_ENABLE_HEADER_RULES
    w_hrules(p, c, &w, 1);
#endif
    return head_end(c, &w, m->status != 101);
}

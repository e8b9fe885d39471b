/* ==== [10] Response forwarding: the client-bound head and bodies ====
 * The response head gets the same treatment as the request's, plus the
 * connection's fate: "Connection: close" when rproxy will close,
 * "keep-alive" for an HTTP/1.0 client that keeps.  Bodies move between
 * buffers by framing mode; chunked passes through raw to HTTP/1.1 clients
 * and is decoded for HTTP/1.0 ones.  Error replies are canned. */

static const char *
reason_for(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Error";
}

static int
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

/* Queue "HTTP/1.1 status ..." with a short text body and Connection: close. */
static void
error_write(rp_proxy *p, rp_conn *c, int status)
{
    const char *reason = reason_for(status);
    size_t rn = strlen(reason);
    wbuf w = buf_writer(p, &c->out);
    w_put(&w, S("HTTP/1.1 "));
    w_num(&w, (uint64_t)status);
    w_put(&w, " ", 1);
    w_put(&w, reason, rn);
    w_put(&w, S("\r\nContent-Type: text/plain\r\nContent-Length: "));
    w_num(&w, (uint64_t)rn + 1);
    w_put(&w, S("\r\nConnection: close\r\n\r\n"));
    if (!(c->flags & F_HEAD)) { /* a HEAD reply has no body */
        w_put(&w, reason, rn);
        w_put(&w, "\n", 1);
    }
    if (buf_commit(&c->out, &w) == RP_OK)
        c->sent += w.n;
}

static int
response_head_write(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m)
{
    rp_str tok[MAX_CONN_TOKENS], via;
    char viabuf[48];
    size_t i, ntok = conn_tokens(m, tok);
    wbuf w = buf_writer(p, &c->out);
    w_put(&w, S("HTTP/1.1 "));
    w_num(&w, (uint64_t)m->status);
    w_put(&w, " ", 1);
    w_str(&w, m->reason);
    w_put(&w, S("\r\n"));
    for (i = 0; i < m->nheaders; i++)
        if (field_passes(m, i, tok, ntok))
            w_field(&w, m->headers[i].name.p, m->headers[i].name.n, m->headers[i].value);
    if ((m->flags & RP_HF_LENGTH) && m->status != 204 && d->mode != M_DECHUNK) {
        w_put(&w, S("Content-Length: "));
        w_num(&w, (uint64_t)m->content_length);
        w_put(&w, S("\r\n"));
    }
    if (d->mode == M_CHUNKED || ((c->flags & F_HEAD) && (m->flags & RP_HF_CHUNKED)))
        w_put(&w, S("Transfer-Encoding: chunked\r\n"));
    via = via_value(p, m->minor, viabuf);
    w_joined(&w, S("Via"), m, H_VIA, via);
    if (m->status == 101) {
        w_put(&w, S("Connection: upgrade\r\n"));
        w_field(&w, S("Upgrade"), header_value(m, H_UPGRADE));
    } else if (!(c->flags & F_KEEP)) {
        w_put(&w, S("Connection: close\r\n"));
    } else if (c->flags & F_HTTP10) {
        w_put(&w, S("Connection: keep-alive\r\n"));
    }
    w_put(&w, S("\r\n"));
    if (buf_commit(&c->out, &w) != RP_OK)
        return RP_ENOMEM;
    c->sent += w.n;
    return RP_OK;
}

/* Move body bytes framed by f's mode from src to dst.  Returns the bytes
 * consumed from src, or RP_EINVAL for broken chunked framing; *done is set
 * when the body ended and *out grows by the bytes written to dst. */
static long
body_move(rp_proxy *p, rp_buf *dst, rp_buf *src, rp_conn *f, int *done, uint64_t *out)
{
    size_t n, total = 0;
    *done = 0;
    switch (f->mode) {
    case M_NONE:
        *done = 1;
        return 0;
    case M_LENGTH:
        n = buf_move(p, dst, src, (size_t)RP_MIN(f->left, (uint64_t)(size_t)-1));
        f->left -= n;
        *out += n;
        *done = f->left == 0;
        return (long)n;
    case M_CLOSE: case M_TUNNEL:
        n = buf_move(p, dst, src, (size_t)-1);
        *out += n;
        return (long)n;
    }
    while (!f->ch.done && buf_len(src)) { /* M_CHUNKED, M_DECHUNK */
        size_t avail = buf_len(src), room = buf_room(p, dst);
        int copy = f->mode == M_CHUNKED || f->ch.state == CH_DATA;
        long k;
        if (copy && (avail = RP_MIN(avail, room)) == 0)
            break;
        if ((k = rp_chunked_step(&f->ch, src->d + src->r, avail)) < 0)
            return RP_EINVAL;
        if (k == 0)
            break;
        if (f->mode == M_CHUNKED || f->ch.in_data) {
            memcpy(dst->d + dst->w, src->d + src->r, (size_t)k);
            dst->w += (uint32_t)k;
            *out += (uint64_t)k;
        }
        src->r += (uint32_t)k;
        total += (size_t)k;
    }
    *done = f->ch.done;
    return (long)total;
}

/* ==== [23] Shared live streams: one device stream, many viewers ====
 * On a `share=on` route a GET whose response turns out to be a live stream
 * -- multipart/x-mixed-replace (MJPEG), text/event-stream (SSE), or a
 * chunked or close-delimited 200 -- is opened once: the first request goes
 * to the device as usual (the opener); identical requests meanwhile wait for
 * its head (CS_STREAM, SPOS_HEAD).  When the head shows a stream, the device
 * connection leaves the exchange and feeds the stream (DS_STREAM): its
 * payload (de-chunked) goes into a static ring, RP_STREAM_RING bytes per
 * stream, and every viewer -- the opener too -- copies from the ring at its
 * own position into its own response (chunked to HTTP/1.1, close-delimited
 * to HTTP/1.0).  Viewers join at a part boundary: the newest one still in
 * the ring (an MJPEG part's "--boundary" line, the start of an SSE event,
 * a device chunk otherwise), so their first part is whole.  A viewer the
 * ring has overtaken skips to the oldest boundary still in it (a dropped
 * part, counted): the device is never slowed.  When the last viewer leaves
 * the device connection closes after share_linger; when the device ends
 * or fails, each viewer's response ends the way an unshared one would once
 * it has the bytes before that.  A response that is not a stream is
 * served as without share=on, and the requests that waited for it go to
 * the device on their own.
 * Matching: host + target (exactly), and requests with Authorization or
 * Cookie only with the same values (a SHA-256 of them; without BearSSL in
 * the build such requests are not shared).  Vary is not looked at: a route
 * whose stream differs by another request field must not share.
 * Owns: p->streams, p->stream_ring, CS_STREAM clients, DS_STREAM devices.
 * Calls: [1] [3] [4] [9] [10] [11] [13].  Called by: [9] (conn_event,
 * client_step, conn_free, timers), [13] (exchange_begin, response_begin),
 * [17] (status). */
#include "rp_int.h"

#if RP_ENABLE_SHARE
#if RP_ENABLE_TLS || RP_ENABLE_AUTH
#include <bearssl.h>
#define SHARE_CREDS 1
#else
#define SHARE_CREDS 0
#endif

enum { SK_MULTIPART, SK_EVENTS, SK_OTHER };
#define RING_MASK ((uint64_t)RP_STREAM_RING - 1)

static struct rp_stream *
stream_of(rp_proxy *p, const rp_conn *c)
{
    return &p->streams[c->stream - 1];
}

/* ---- The key: URL and credentials ---- */

/* url = host + target into buf; 0 when too long to share. */
static size_t
stream_url(const rp_http_msg *m, char *buf)
{
    size_t n = m->host.n + m->target.n;
    if (n > sizeof(((struct rp_stream *)0)->url))
        return 0;
    memcpy(buf, m->host.p, m->host.n);
    memcpy(buf + m->host.n, m->target.p, m->target.n);
    return n;
}

/* The request's Authorization and Cookie values, hashed into out (24
 * bytes, zero when it has neither).  0 when the request cannot be shared. */
static int
stream_cred(const rp_http_msg *m, uint8_t *out)
{
    size_t i, k = 0;
    memset(out, 0, 24);
    for (i = 0; i < m->nheaders; i++)
        k += m->headers[i].id == H_AUTHORIZATION || str_ieq(m->headers[i].name, S("Cookie"));
    if (!k)
        return 1;
#if SHARE_CREDS
    {
        br_sha256_context h;
        uint8_t d[32];
        br_sha256_init(&h);
        for (i = 0; i < m->nheaders; i++)
            if (m->headers[i].id == H_AUTHORIZATION || str_ieq(m->headers[i].name, S("Cookie"))) {
                br_sha256_update(&h, m->headers[i].name.p, m->headers[i].name.n);
                br_sha256_update(&h, ":", 1);
                br_sha256_update(&h, m->headers[i].value.p, m->headers[i].value.n);
                br_sha256_update(&h, "\n", 1);
            }
        br_sha256_out(&h, d);
        memcpy(out, d, 24);
        out[0] |= 1; /* never all zero */
        return 1;
    }
#else
    return 0;
#endif
}

/* ---- Viewers ---- */

static void
viewer_add(rp_proxy *p, rp_conn *c, int i, uint64_t pos)
{
    c->stream = (uint8_t)(i + 1);
    c->spos = pos;
    p->streams[i].viewers++;
    conn_state(c, CS_STREAM);
}

int
stream_request(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    char url[256];
    uint8_t cred[24];
    size_t n;
    int i, free_ = -1;
    if (!CFG(p)->routes[c->route].share || !(c->flags & F_GET) || (c->flags & F_HEAD) ||
        c->mode != M_NONE || (c->flags & F_UPG))
        return 0;
    if ((n = stream_url(m, url)) == 0 || !stream_cred(m, cred))
        return 0;
    for (i = 0; i < RP_MAX_STREAMS; i++) {
        struct rp_stream *s = &p->streams[i];
        if (s->state == SS_FREE) {
            if (free_ < 0)
                free_ = i;
            continue;
        }
        if ((s->state != SS_PENDING && s->state != SS_LIVE) || s->url_len != n ||
            memcmp(s->url, url, n) != 0 || memcmp(s->cred, cred, 24) != 0)
            continue;
#if RP_ENABLE_RELOAD
        if (s->cfs != CUR_SLOT(p)) /* opened before a reload: new viewers open their own */
            continue;
#endif
        p->stats.share_joins++;
        if (s->state == SS_PENDING) {
            viewer_add(p, c, i, SPOS_HEAD); /* its head stays held: it may go alone yet */
            return 1;
        }
        head_drop(c);
        viewer_add(p, c, i, SPOS_SYNC);
        if (s->dev && (s->dev->flags & F_SNOVIEW)) { /* it was lingering */
            s->dev->flags &= ~F_SNOVIEW;
            conn_rearm(p, s->dev);
        }
        return 1;
    }
    if (free_ < 0) {
        p->stats.share_full++;
        return 0;
    }
    {
        struct rp_stream *s = &p->streams[free_];
        memset(s, 0, sizeof(*s));
        s->state = SS_PENDING;
        s->route = c->route;
#if RP_ENABLE_RELOAD
        s->cfs = (uint8_t)CUR_SLOT(p);
#endif
        s->url_len = (uint16_t)n;
        memcpy(s->url, url, n);
        memcpy(s->cred, cred, 24);
        s->owner = c;
        s->viewers = 1;
        c->stream = (uint8_t)(free_ + 1);
        c->spos = 0;
    }
    return 0;
}

/* The stream's ring: byte `pos` of its payload. */
static unsigned char *
ring_at(rp_proxy *p, const struct rp_stream *s, uint64_t pos)
{
    return p->stream_ring[s - p->streams] + (size_t)(pos & RING_MASK);
}

static void
sync_add(struct rp_stream *s, uint64_t pos)
{
    if (s->nsync && s->sync[(s->sync_at + RP_STREAM_SYNCS - 1) % RP_STREAM_SYNCS] == pos)
        return;
    s->sync[s->sync_at] = pos;
    s->sync_at = (uint8_t)((s->sync_at + 1) % RP_STREAM_SYNCS);
    if (s->nsync < RP_STREAM_SYNCS)
        s->nsync++;
}

/* A boundary still whole in the ring at or after `from`: the newest
 * (newest != 0) or the oldest; SPOS_SYNC when there is none. */
static uint64_t
sync_find(const struct rp_stream *s, uint64_t from, int newest)
{
    uint64_t best = SPOS_SYNC, low = s->wpos > RP_STREAM_RING ? s->wpos - RP_STREAM_RING : 0;
    int k;
    for (k = 0; k < s->nsync; k++) {
        uint64_t v = s->sync[k];
        if (v < low || v < from)
            continue;
        if (best == SPOS_SYNC || (newest ? v > best : v < best))
            best = v;
    }
    return best;
}

/* The newest boundary (0: none yet, the stream's start). */
static uint64_t
sync_last(const struct rp_stream *s)
{
    return s->nsync ? s->sync[(s->sync_at + RP_STREAM_SYNCS - 1) % RP_STREAM_SYNCS] : 0;
}

/* The stream's head, then this viewer's framing and connection fate. */
static int
viewer_head(rp_proxy *p, rp_conn *c, const struct rp_stream *s)
{
    wbuf w;
    if (buf_room(p, &c->out) < (size_t)s->head_len + 64)
        return 0;
    w = buf_writer(p, &c->out);
    w_put(&w, s->head, s->head_len);
    if (c->flags & F_HTTP10)
        c->flags &= ~F_KEEP; /* close-delimited */
    else
        w_put(&w, S("Transfer-Encoding: chunked\r\n"));
    head_end(c, &w, 1);
    c->status = 200;
    c->flags |= F_RESP_HEAD;
    return 1;
}

/* The viewer is done with the stream (its response ended, or it left). */
static void
viewer_end(rp_proxy *p, rp_conn *c)
{
    stream_leave(p, c);
}

int
stream_step(rp_proxy *p, rp_conn *c)
{
    struct rp_stream *s = stream_of(p, c);
    int moved = 0, chunked = !(c->flags & F_HTTP10);
    if (c->flags & F_DEAD) { /* the viewer left (a send failed, or a reset) */
        viewer_end(p, c);
        return exchange_fail(p, c, 0);
    }
    if (c->flags & F_EOF) /* a half-close after the request: it still gets the stream */
        c->flags &= ~F_KEEP;
    if (s->state == SS_PENDING)
        return 0;
    if (!(c->flags & F_RESP_HEAD)) {
        if (!viewer_head(p, c, s))
            return 0;
        moved = 1;
    }
    for (;;) {
        uint64_t avail;
        size_t room, n, k, at;
        wbuf w;
        if (c->spos == SPOS_SYNC && (c->spos = sync_find(s, 0, 1)) == SPOS_SYNC) {
            /* no boundary in the ring: wait for one -- unless the stream
             * ended, or a whole ring went by without one (a boundary
             * announced and never sent): then from here, as chunks */
            if (s->state == SS_LIVE && s->wpos - sync_last(s) < RP_STREAM_RING)
                return moved;
            c->spos = s->wpos;
        }
        if (s->wpos - c->spos > RP_STREAM_RING) { /* overtaken: skip to a boundary */
            s->drops++;
            p->stats.share_drops++;
            c->spos = sync_find(s, c->spos, 0);
            continue;
        }
        avail = s->wpos - c->spos;
        room = buf_room(p, &c->out);
        if (avail == 0 || room < 32)
            break;
        n = (size_t)RP_MIN(avail, (uint64_t)(room - 16));
        w = buf_writer(p, &c->out);
        if (chunked) {
            static const char hex[] = "0123456789abcdef";
            char h[8];
            int d = 0;
            size_t v = n;
            do
                h[7 - d++] = hex[v & 15], v >>= 4;
            while (v);
            w_put(&w, h + 8 - d, (size_t)d);
            w_put(&w, S("\r\n"));
        }
        at = (size_t)(c->spos & RING_MASK);
        k = RP_MIN(n, (size_t)RP_STREAM_RING - at);
        w_put(&w, (const char *)ring_at(p, s, c->spos), k);
        if (k < n)
            w_put(&w, (const char *)p->stream_ring[s - p->streams], n - k);
        if (chunked)
            w_put(&w, S("\r\n"));
        if (buf_commit(&c->out, &w) != RP_OK)
            break;
        SENT(c, w.n);
        c->spos += n;
        s->bytes_out += n;
        moved = 1;
    }
    if (s->state == SS_DONE && c->spos == s->wpos) { /* the device ended it */
        if (buf_room(p, &c->out) < 8)
            return moved;
        if (chunked) {
            wbuf w = buf_writer(p, &c->out);
            w_put(&w, S("0\r\n\r\n"));
            buf_commit(&c->out, &w);
            SENT(c, 5);
        }
        viewer_end(p, c);
        c->flags |= F_RESP_DONE | F_REQ_DONE;
        return exchange_end(p, c);
    }
    if (s->state == SS_FAILED && c->spos == s->wpos) {
        CUT(c, CUT_DEV_CLOSED);
        viewer_end(p, c);
        return exchange_fail(p, c, 0);
    }
    return moved;
}

/* Every viewer of stream i gets a turn. */
static void
viewers_wake(rp_proxy *p, int i)
{
    int k;
    for (k = 0; k < RP_MAX_CONNS; k++) {
        rp_conn *c = &p->clients[k];
        if (c->state == CS_STREAM && c->stream == i + 1)
            client_service(p, c);
    }
}

/* ---- The device side ---- */

/* "--boundary" of a Content-Type's boundary= parameter (RFC 2046 §5.1.1:
 * 1-70 characters, token or quoted-string) into s->bnd after "\n"; 0 when
 * there is none or it is malformed. */
int
multipart_boundary(rp_str ct, char *out, size_t cap)
{
    size_t i = 0, n = 0;
    while (i < ct.n && ct.p[i] != ';')
        i++;
    while (i < ct.n) {
        rp_str name;
        i++; /* ';' */
        while (i < ct.n && (ct.p[i] == ' ' || ct.p[i] == '\t'))
            i++;
        name.p = ct.p + i;
        while (i < ct.n && ct.p[i] != '=' && ct.p[i] != ';')
            i++;
        name.n = (size_t)(ct.p + i - name.p);
        while (name.n && (name.p[name.n - 1] == ' ' || name.p[name.n - 1] == '\t'))
            name.n--;
        if (i == ct.n || ct.p[i] == ';')
            continue;
        i++; /* '=' */
        if (!str_ieq(name, S("boundary"))) {
            int q = i < ct.n && ct.p[i] == '"';
            for (i += (size_t)q; i < ct.n && (q ? ct.p[i] != '"' : ct.p[i] != ';'); i++)
                if (q && ct.p[i] == '\\')
                    i++;
            while (i < ct.n && ct.p[i] != ';')
                i++;
            continue;
        }
        if (cap < 74)
            return 0;
        memcpy(out, "\n--", 3), n = 3;
        if (i < ct.n && ct.p[i] == '"') {
            for (i++; i < ct.n && ct.p[i] != '"'; i++) {
                if (ct.p[i] == '\\' && ++i == ct.n)
                    return 0;
                if (n == 73 || (unsigned char)ct.p[i] < 0x20 || ct.p[i] == 0x7f)
                    return 0;
                out[n++] = ct.p[i];
            }
            if (i == ct.n)
                return 0; /* unterminated */
        } else {
            for (; i < ct.n && ct.p[i] != ';' && ct.p[i] != ' ' && ct.p[i] != '\t'; i++) {
                if (n == 73 || !is_tchar((unsigned char)ct.p[i]))
                    return 0;
                out[n++] = ct.p[i];
            }
        }
        return n > 3 ? (int)n : 0;
    }
    return 0;
}

/* Append payload b[0..n) to the ring, noting the part boundaries in it. */
static void
stream_put(rp_proxy *p, struct rp_stream *s, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)b[i];
        *ring_at(p, s, s->wpos) = ch;
        s->wpos++;
        if (s->kind == SK_MULTIPART) { /* "\n--boundary": its only \n is first */
            if (ch == (unsigned char)s->bnd[s->match])
                s->match++;
            else
                s->match = ch == '\n';
            if (s->match == s->bnd_len) {
                sync_add(s, s->wpos - s->bnd_len + 1); /* at the "--" */
                s->match = 0;
            }
        } else if (s->kind == SK_EVENTS) { /* after a blank line (LF or CRLF) */
            if (ch == '\n') {
                if (s->match)
                    sync_add(s, s->wpos);
                s->match = 1;
            } else if (ch != '\r' || !s->match) {
                s->match = 0;
            }
        }
    }
}

/* Move what the device sent into the ring; 1 when anything came. */
static int
stream_pump(rp_proxy *p, struct rp_stream *s, rp_conn *d)
{
    int moved = 0;
    while (buf_len(&d->in)) {
        if (d->mode == M_CLOSE) {
            if (s->kind == SK_OTHER)
                sync_add(s, s->wpos);
            stream_put(p, s, d->in.d + d->in.r, buf_len(&d->in));
            d->in.r = d->in.w;
        } else { /* chunked (M_CHUNKED or M_DECHUNK): the data only */
            int was = d->ch.in_data;
            long k = rp_chunked_step(&d->ch, d->in.d + d->in.r, buf_len(&d->in));
            if (k < 0) {
                device_fail(p, d->device, RP_EINVAL);
                s->state = SS_FAILED;
                return 1;
            }
            if (k == 0)
                break;
            if (d->ch.in_data) {
                if (!was && s->kind == SK_OTHER)
                    sync_add(s, s->wpos);
                stream_put(p, s, d->in.d + d->in.r, (size_t)k);
            }
            d->in.r += (uint32_t)k;
            if (d->ch.done) {
                s->state = SS_DONE;
                return 1;
            }
        }
        moved = 1;
    }
    if ((d->flags & (F_EOF | F_DEAD)) && !buf_len(&d->in)) {
        s->state = d->mode == M_CLOSE && !(d->flags & F_DEAD) ? SS_DONE : SS_FAILED;
        moved = 1;
    }
    return moved;
}

/* The stream ended (done or failed), or nobody watches it any more: the
 * device connection goes (a clean end could be pooled; a stream's device
 * is not worth keeping), the slot once no viewer is left. */
static void
stream_ended(rp_proxy *p, struct rp_stream *s)
{
    rp_conn *d = s->dev;
    s->dev = NULL;
    if (d) {
        d->stream = 0;
        conn_free(p, d);
    }
    if (!s->viewers)
        s->state = SS_FREE;
}

void
stream_event(rp_proxy *p, rp_conn *d)
{
    struct rp_stream *s = stream_of(p, d);
    int i = d->stream - 1;
    conn_read(p, d);
    stream_pump(p, s, d);
    if (s->state != SS_LIVE)
        stream_ended(p, s);
    else
        conn_settle(p, d);
    viewers_wake(p, i);
}

void
stream_timeout(rp_proxy *p, rp_conn *d, int kind)
{
    struct rp_stream *s = stream_of(p, d);
    int i = d->stream - 1;
    if (kind == T_SLINGER) {
        stream_ended(p, s);
        return;
    }
    p->stats.timeouts++; /* the device went silent: the stream ends for all */
    device_fail(p, d->device, RP_ETIMEDOUT);
    s->state = SS_FAILED;
    stream_ended(p, s);
    viewers_wake(p, i);
}

/* The opener's response head: a stream, or not (then the waiters go on
 * their own). */
int
share_response(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    struct rp_stream *s = stream_of(p, c);
    int i = c->stream - 1, k;
    rp_str ct = {"", 0}, v;
    wbuf w;
    for (k = 0; k < (int)m->nheaders; k++)
        if (str_ieq(m->headers[k].name, S("Content-Type")))
            ct = m->headers[k].value;
    v = ct;
    for (k = 0; k < (int)v.n && v.p[k] != ';'; k++)
        ;
    v.n = (size_t)k;
    str_trim(&v);
    if (m->status != 200 || (d->mode != M_CHUNKED && d->mode != M_DECHUNK && d->mode != M_CLOSE)) {
        stream_leave(p, c); /* not a stream: as without share=on */
        return 0;
    }
    s->kind = str_ieq(v, S("multipart/x-mixed-replace")) ? SK_MULTIPART
            : str_ieq(v, S("text/event-stream"))       ? SK_EVENTS
                                                         : SK_OTHER;
    if (s->kind == SK_MULTIPART) {
        int bn = multipart_boundary(ct, s->bnd, sizeof(s->bnd));
        if (bn <= 0)
            s->kind = SK_OTHER; /* no boundary known: share by chunk */
        else
            s->bnd_len = (uint8_t)bn, s->match = 1; /* the body starts a line */
    } else if (s->kind == SK_EVENTS) {
        s->match = 1;
        sync_add(s, 0);
    }
    w.p = s->head, w.n = 0, w.cap = sizeof(s->head), w.full = 0;
    {
#if RP_ENABLE_PATH_MAP /* a rewrite= route's Location & co. mapped back, as unshared */
        hmap hm;
        char abuf[56];
        const hmap *hmp = hmap_of(p, c, d, &hm, abuf);
#endif
        w_head_fields(&w, m, 0, hmp);
    }
    w_via_date(p, &w, m);
#if RP_ENABLE_HEADER_RULES /* the opener's listener and route rules, kept for every viewer */
    w_hrules(p, c, &w, 1);
#endif
    if (w.full) {
        stream_leave(p, c);
        return 0;
    }
    s->head_len = (uint16_t)w.n;
    d->in.r += (uint32_t)n;
    if (d->mode == M_DECHUNK)
        d->mode = M_CHUNKED;
    device_ok(p, d->device);
    p->stats.share_streams++;
    s->state = SS_LIVE;
    s->owner = NULL;
    s->dev = d;
    d->stream = (uint8_t)(i + 1);
    c->link = NULL;
    d->link = NULL;
    head_drop(c);
    conn_state(d, DS_STREAM);
    c->spos = 0;
    conn_state(c, CS_STREAM);
    for (k = 0; k < RP_MAX_CONNS; k++) { /* those that waited start at 0 too */
        rp_conn *o = &p->clients[k];
        if (o->state == CS_STREAM && o->stream == i + 1 && o->spos == SPOS_HEAD) {
            head_drop(o);
            o->spos = 0;
        }
    }
    stream_pump(p, s, d); /* body bytes that came with the head */
    if (s->state != SS_LIVE)
        stream_ended(p, s);
    else
        conn_settle(p, d);
    viewers_wake(p, i);
    return 1;
}

/* c no longer views (or opens) its stream.  An opener whose request is
 * gone before a stream head: those waiting on it go to the device alone. */
void
stream_leave(rp_proxy *p, rp_conn *c)
{
    struct rp_stream *s = stream_of(p, c);
    int i = c->stream - 1, k;
    c->stream = 0;
    s->viewers--;
    if (s->state == SS_PENDING && s->owner == c) {
        s->state = SS_FREE;
        for (k = 0; k < RP_MAX_CONNS; k++) {
            rp_conn *o = &p->clients[k];
            rp_http_msg m;
            if (o->state != CS_STREAM || o->stream != i + 1)
                continue;
            o->stream = 0;
            conn_state(o, CS_FWD);
            if (rp_http_parse_request(o->in.d + o->in.r, o->head_len, &m) != RP_OK)
                exchange_fail(p, o, 502);
            else
                dispatch(p, o, &m);
            if (o->state != CS_FREE)
                client_service(p, o);
        }
        return;
    }
    if (s->viewers)
        return;
    if (s->state != SS_LIVE) { /* done or failed and now unwatched */
        s->state = SS_FREE;
        return;
    }
    if (!CFG(p)->routes[s->route].share_linger_ms) {
        stream_ended(p, s);
    } else if (s->dev) {
        s->dev->flags |= F_SNOVIEW; /* T_SLINGER now */
        conn_rearm(p, s->dev);
    }
}
#endif /* RP_ENABLE_SHARE */

/* ==== [14] Bodies: framing-aware moves between buffers ====
 * A body moves from one connection's `in` to the other's `out` by the
 * sender's framing (c->mode): a length counts down, chunked passes through
 * raw (M_CHUNKED) or is decoded for an HTTP/1.0 client (M_DECHUNK), a
 * close-delimited body ends at the device's FIN.  A cache fill gets a copy
 * of the body's data bytes on the way (TEE).  Never a whole body in memory.
 * Owns: c->mode, c->left, c->ch of the sending side.  Calls: [3] [4] (the
 * chunked parser) [7] (device_fail) [12] (fill_append) [13] (exchange_fail).
 * Called by: [13] (exchange_step). */
#include "rp_int.h"

#if RP_ENABLE_CACHE
#define TEE(c, s, n) ((c) && (c)->cfill && (n) ? fill_append(p, (c), (s), (n)) : (void)0)
#else
#define TEE(c, s, n) ((void)(c))
#endif

/* Move body bytes framed by f's mode from src to dst.  Returns the bytes
 * consumed from src, or RP_EINVAL for broken chunked framing; *done is set
 * when the body ended.  tee: a client whose cache fill gets a copy of the
 * body's data bytes. */
static long
body_move(rp_proxy *p, rp_buf *dst, rp_buf *src, rp_conn *f, int *done, rp_conn *tee)
{
    size_t n, total = 0;
    *done = 0;
    switch (f->mode) {
    case M_NONE:
        *done = 1;
        return 0;
    case M_LENGTH:
        n = buf_move(p, dst, src, (size_t)RP_MIN(f->left, (uint64_t)(size_t)-1));
        TEE(tee, dst->d + dst->w - n, n);
        f->left -= n;
        *done = f->left == 0;
        return (long)n;
    case M_CLOSE: case M_TUNNEL:
        return (long)buf_move(p, dst, src, (size_t)-1);
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
        if (f->ch.in_data)
            TEE(tee, src->d + src->r, (size_t)k);
        if (f->mode == M_CHUNKED || f->ch.in_data) {
            memcpy(dst->d + dst->w, src->d + src->r, (size_t)k);
            dst->w += (uint32_t)k;
        }
        src->r += (uint32_t)k;
        total += (size_t)k;
    }
    *done = f->ch.done;
    return (long)total;
}

/* The request head held for a retry is not needed any more. */
void
head_drop(rp_conn *c)
{
    c->in.r += HELD(c);
    c->head_len = 0;
}

int
request_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    int done;
    long n;
    if (c->flags & F_REQ_DONE)
        return 0;
    if (HELD(c) && buf_len(&c->in) <= HELD(c))
        return 0; /* no body byte yet: keep the head for a retry */
    head_drop(c);
    if ((n = body_move(p, &d->out, &c->in, c, &done, NULL)) < 0) {
        CUT(c, CUT_CLI_FRAMING); /* when the device answered early */
        return exchange_fail(p, c, 400);
    }
    if (done)
        c->flags |= F_REQ_DONE;
    else if ((c->flags & (F_EOF | F_DEAD)) && !buf_len(&c->in))
        return exchange_fail(p, c, 0); /* client gave up mid-body */
    return n > 0 || done;
}

/* Do the bytes that came in with a chunked response head (from `off` on in
 * d->in) keep the chunked framing so far?  Checked before the head is
 * relayed (response_begin): a device whose first chunk line is bad gets its
 * client a 502, not a 200 and a cut. */
int
body_valid(const rp_conn *d, size_t off)
{
    rp_chunked ch;
    size_t i = d->in.r + off;
    long k = 1;
    memset(&ch, 0, sizeof(ch));
    while (k > 0 && i < d->in.w && !ch.done) {
        k = rp_chunked_step(&ch, d->in.d + i, d->in.w - i);
        i += (size_t)k; /* on an error (k < 0) the loop ends without using i */
    }
    return k >= 0;
}

/* The device broke its body's framing: a device failure; its client gets a
 * 502 when no head went out yet, else the response is cut there. */
int
body_broken(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    device_fail(p, d->device, RP_EINVAL);
    CUT(c, CUT_DEV_FRAMING);
    return exchange_fail(p, c, 502);
}

int
response_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    size_t had = buf_len(&c->out);
    int done;
    long n = body_move(p, &c->out, &d->in, d, &done, c);
    SENT(c, buf_len(&c->out) - had); /* what went to the client: compacting keeps lengths */
    if (n < 0)
        return body_broken(p, c, d);
    if (d->mode == M_CLOSE && (d->flags & F_EOF) && !buf_len(&d->in))
        done = 1;
    if (done) {
        c->flags |= F_RESP_DONE;
        return 1;
    }
    if ((d->flags & (F_EOF | F_DEAD)) && !buf_len(&d->in)) {
        RP_LOG(RP_LOG_WARN, ("device %d closed mid-response", d->device));
        device_fail(p, d->device, RP_ECLOSED);
        CUT(c, CUT_DEV_CLOSED);
        return exchange_fail(p, c, 0); /* never a short body on keep-alive */
    }
    return n > 0;
}

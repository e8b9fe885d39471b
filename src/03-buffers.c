/* ==== [3] Buffers: the block pool ====
 * Bytes live in d[r..w) of a buffer taken from one pool of RP_BUF_SIZE
 * blocks.  A connection holds a block only while it has bytes in it: empty
 * buffers go back after every turn, and the pool hands out the most
 * recently returned block first, so the pages in use stay few and hot (a
 * busy keep-alive connection waiting on its device holds one block, not
 * four).  The pool has a block for every buffer of every slot, so taking
 * one cannot fail while the slot tables do not; blocks never used are never
 * touched.  Space is reclaimed by resetting when empty and by sliding the
 * data down when the tail is short -- only between parses, so views never
 * dangle.
 * Owns: p->bufs, the free stack.  Calls: nothing. */
#include "rp_int.h"


size_t
buf_len(const rp_buf *b)
{
    return b->w - b->r;
}

int
buf_attach(rp_proxy *p, rp_buf *b)
{
    if (b->d)
        return 1;
    if (p->buf_top)
        b->d = p->buf_free[--p->buf_top];
    else if (p->buf_fresh < RP_NBUFS)
        b->d = p->bufs[p->buf_fresh++];
    else
        return 0;
    b->r = b->w = 0;
    return 1;
}

/* Give an empty buffer's block back (any buffer's, when force). */
void
buf_release(rp_proxy *p, rp_buf *b, int force)
{
    if (b->d && (force || b->r == b->w)) {
        p->buf_free[p->buf_top++] = b->d;
        b->d = NULL;
        b->r = b->w = 0;
    }
}

size_t
buf_room(rp_proxy *p, rp_buf *b)
{
    if (!buf_attach(p, b))
        return 0;
    if (b->r == b->w)
        b->r = b->w = 0;
    else if (b->r && RP_BUF_SIZE - b->w < RP_BUF_SIZE / 4) {
        memmove(b->d, b->d + b->r, b->w - b->r);
        b->w -= b->r;
        b->r = 0;
    }
    return RP_BUF_SIZE - b->w;
}

/* Copy up to n bytes from src to dst; returns how many moved. */
size_t
buf_move(rp_proxy *p, rp_buf *dst, rp_buf *src, size_t n)
{
    size_t room = buf_room(p, dst);
    n = RP_MIN(n, RP_MIN(room, buf_len(src)));
    if (n == 0)
        return 0;
    memcpy(dst->d + dst->w, src->d + src->r, n);
    dst->w += (uint32_t)n;
    src->r += (uint32_t)n;
    return n;
}

/* A writer over the free tail of b; commit with buf_commit. */
wbuf
buf_writer(rp_proxy *p, rp_buf *b)
{
    wbuf w;
    w.cap = buf_room(p, b);
    w.p = b->d ? b->d + b->w : NULL;
    w.n = 0;
    w.full = 0;
    return w;
}

int
buf_commit(rp_buf *b, const wbuf *w)
{
    if (w->full)
        return RP_ENOMEM;
    b->w += (uint32_t)w->n;
    return RP_OK;
}

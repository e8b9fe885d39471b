/*
 * fuzz_chunked.c -- libFuzzer target: the incremental chunked decoder.
 *
 * SPDX-License-Identifier: MIT
 *
 * The first 4 input bytes seed the splitter, the rest is a chunked body
 * (as a client or device would send it).  The body is decoded three ways:
 * in one buffer, in random splits, and one byte at a time.  Checked at every
 * step: a call consumes at most what it was given, a data span never
 * exceeds the chunk's remaining size, nothing is consumed after `done`; and
 * all three ways agree on the outcome (done / error / needs more), on where
 * the body ended, and on the data bytes -- so where a read happens to end
 * can never change how the proxy frames a body (a desync).
 */
#include "fuzz.h"

enum { MORE, DONE, ERR };

typedef struct {
    int outcome;
    size_t consumed; /* bytes used up to done (or up to the error/end) */
    size_t ndata;
    char *data;
} result;

/* Decode p[0..n) in pieces of size chosen by split(): 0 = everything left. */
static void
decode(const char *p, size_t n, uint32_t seed, int mode, result *r)
{
    rp_chunked c;
    size_t off = 0;
    memset(&c, 0, sizeof c);
    memset(r, 0, sizeof *r);
    r->data = (char *)malloc(n ? n : 1);
    while (off < n) {
        size_t piece = n - off, used = 0;
        char *slice;
        if (mode == 1)
            piece = 1 + fz_rand(&seed) % (piece < 64 ? piece : 64);
        else if (mode == 2)
            piece = 1;
        slice = fz_copy(p + off, piece); /* exact size: over-reads trap */
        while (used < piece && !c.done) {
            uint64_t left_before = c.left;
            long k = rp_chunked_step(&c, slice + used, piece - used);
            if (k == RP_EINVAL) {
                free(slice);
                r->outcome = ERR;
                r->consumed = off + used;
                return;
            }
            FZ_CHECK(k > 0 && (size_t)k <= piece - used, "step returned %ld of %zu", k, piece - used);
            if (c.in_data) {
                FZ_CHECK((uint64_t)k <= left_before, "data span %ld > chunk left %llu", k,
                         (unsigned long long)left_before);
                FZ_CHECK(r->ndata + (size_t)k <= n, "more data than input");
                memcpy(r->data + r->ndata, slice + used, (size_t)k);
                r->ndata += (size_t)k;
            }
            used += (size_t)k;
        }
        free(slice);
        off += used;
        if (c.done) {
            char x = 'x';
            FZ_CHECK(rp_chunked_step(&c, &x, 1) == 0, "consumed after done");
            r->outcome = DONE;
            r->consumed = off;
            return;
        }
    }
    r->outcome = MORE;
    r->consumed = off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    result a, b, c;
    uint32_t seed = 0x12345678;
    const char *p = (const char *)data;
    if (size >= 4) {
        memcpy(&seed, data, 4);
        seed |= 1;
        p += 4, size -= 4;
    }
    decode(p, size, seed, 0, &a);
    decode(p, size, seed, 1, &b);
    decode(p, size, seed, 2, &c);
    FZ_CHECK(a.outcome == b.outcome && a.outcome == c.outcome, "outcomes %d %d %d", a.outcome,
             b.outcome, c.outcome);
    if (a.outcome == DONE)
        FZ_CHECK(a.consumed == b.consumed && a.consumed == c.consumed, "end at %zu %zu %zu",
                 a.consumed, b.consumed, c.consumed);
    FZ_CHECK(a.ndata == b.ndata && a.ndata == c.ndata, "data lengths %zu %zu %zu", a.ndata,
             b.ndata, c.ndata);
    FZ_CHECK(memcmp(a.data, b.data, a.ndata) == 0 && memcmp(a.data, c.data, a.ndata) == 0,
             "data differs between splits");
    free(a.data), free(b.data), free(c.data);
    return 0;
}

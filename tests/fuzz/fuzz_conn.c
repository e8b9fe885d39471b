/*
 * fuzz_conn.c -- libFuzzer target: whole connections through the state
 * machine, over the fake port (tests/fakeport.c), with a fake clock.
 *
 * SPDX-License-Identifier: MIT
 *
 * The input is a script of operations, each an opcode byte and arguments:
 * clients connect, send bytes, close, reset, stop reading; devices (every
 * connection rproxy opens) send bytes, close, reset, stop reading; connects
 * succeed, fail, or hang; the clock moves.  After every operation the event
 * loop runs until it is quiet, and the invariants below are checked.  Built
 * with tiny pools and buffers (see fuzz.mk) so exhaustion, full buffers and
 * backpressure happen with small inputs.
 *
 * Invariants (a violation aborts, so libFuzzer keeps the input):
 *   - no ASan/UBSan report; no port call on a closed or unknown socket;
 *   - the loop goes quiet (no busy spin on a readiness it never consumes);
 *   - open sockets = listeners + rp_active() + device connections the
 *     balancer counts (active + idle): no leaked or forgotten socket, and
 *     0 <= rp_active() <= RP_MAX_CONNS;
 *   - every device connection receives a well-formed stream: request heads
 *     that rproxy's own parser accepts, each followed by exactly the body
 *     its framing announces, until a 101 tunnel (the only place raw client
 *     bytes may flow) -- so no smuggled or half request is ever forwarded;
 *   - the request heads all devices received are at most the heads rproxy
 *     parsed from clients plus its retries (nothing invented or duplicated);
 *   - every client receives well-formed responses: heads that parse, bodies
 *     exactly as framed (HEAD/204/304/1xx without), nothing after a
 *     "Connection: close" response -- so a device's extra bytes never become
 *     the next client response (response splitting);
 *   - at the end, with every peer gone and the clock far ahead, every slot,
 *     socket and buffer block is back.
 */
#include "fuzz.h"
#include "fakeport.h"

#define MAX_CLIENTS 24
#define MAX_DEVS 64
#define STREAM_CAP 65536
#define T0 1000000u

/* rproxy.c's CS_TUNNEL (private): a client in a 101 tunnel.  Used only to
 * tell the device-stream check that raw bytes may follow. */
#define FZ_CS_TUNNEL 3

static const char CFG[] =
    "listen 8080\n"
    "pool a retries=1\n"
    "device a 127.0.0.1:9001 max_fails=2 fail_timeout=1\n"
    "device a 127.0.0.1:9002 weight=2\n"
    "pool b balance=leastconn retries=0\n"
    "device b 127.0.0.1:9003\n"
    "device b 127.0.0.1:9004 backup\n"
    "route host=b.example pool=b\n"
    "route path=/b/ pool=b\n"
    "route path=/s/ pool=a share=on share_linger=300\n"
    "route path=/ pool=a\n"
    "timeout client_header=1000 client_idle=3000 connect=500 device=2000 device_idle=4000\n";

#if RP_ENABLE_RELOAD
/* What a reload switches to and back (op 15): the pools in the other order,
 * 9002 gone, 9005 new, the routes reordered -- every index moves. */
static const char CFG_R[] =
    "listen 8080\n"
    "pool b balance=leastconn retries=0\n"
    "device b 127.0.0.1:9004 backup\n"
    "device b 127.0.0.1:9003\n"
    "pool a retries=1\n"
    "device a 127.0.0.1:9005\n"
    "device a 127.0.0.1:9001 max_fails=2 fail_timeout=1\n"
    "route path=/s/ pool=a share=on share_linger=300\n"
    "route path=/b/ pool=b\n"
    "route pool=a\n"
    "timeout client_header=1000 client_idle=3000 connect=500 device=2000 device_idle=4000\n";
static int reload_flip;
#endif

/* A byte stream checked as it grows: HTTP messages one after another. */
typedef struct {
    int sock;
    int dead;        /* 1: stop checking (tunnel, close-delimited); 2: closing */
    int stalled;     /* the peer stopped reading */
    int upg;         /* the last head asked for an upgrade */
    int tun;         /* a 101 tunnel may have started (sticky, conservative) */
    int eof;         /* the peer closed or reset */
    int state;       /* 0 head, 1 length body, 2 chunked body */
    uint64_t left;
    rp_chunked ch;
    size_t scan;
    size_t n;
    char buf[STREAM_CAP];
} stream;

/* Client side: what the client sent, mirrored through rproxy's parser to
 * know each request's method (HEAD responses have no body). */
typedef struct {
    stream rx;       /* responses rproxy sent to this client */
    int tx_state;    /* mirror of the client's requests: 0 head, 1 body, 2 stop */
    uint64_t tx_left;
    rp_chunked tx_ch;
    size_t tx_scan, tx_n;
    char tx[STREAM_CAP];
    int heads[64];   /* 1 = HEAD request, queue of requests awaiting answers */
    int nq, qr;
    int eof;         /* the client closed or reset */
} fclient;

static rp_proxy *P;
static fclient *cl[MAX_CLIENTS];
static int ncl;
static stream *dv[MAX_DEVS];
static int ndv;
static long dev_heads;
static uint64_t tunnels; /* P->stats.tunnels at the last check */

static const uint8_t *in;
static size_t in_left;

static unsigned
next(void)
{
    if (!in_left)
        return 0;
    in_left--;
    return *in++;
}

/* ---- stream checks ---- */

static void
drop(char *b, size_t *n, size_t k)
{
    memmove(b, b + k, *n - k);
    *n -= k;
}

/* Consume body bytes of s; returns 1 when the body is complete. */
static int
body_eat(stream *s)
{
    if (s->state == 1) {
        size_t k = (size_t)(s->left < s->n ? s->left : s->n);
        drop(s->buf, &s->n, k);
        s->left -= k;
        return s->left == 0;
    }
    while (s->n && !s->ch.done) {
        long k = rp_chunked_step(&s->ch, s->buf, s->n);
        FZ_CHECK(k > 0, "bad chunked framing forwarded (sock %d): %.60s", s->sock, s->buf);
        drop(s->buf, &s->n, (size_t)k);
    }
    return s->ch.done;
}

static int
has_field(const char *h, size_t n, const char *line)
{
    size_t k = strlen(line), i;
    for (i = 0; i + k <= n; i++)
        if (memcmp(h + i, line, k) == 0)
            return 1;
    return 0;
}

/* A device connection's stream: request heads and their bodies. */
static void
device_check(stream *s, int tunnel)
{
    static rp_http_msg m;
    if (tunnel)
        s->tun = 1;
    if (s->tun && s->upg && !s->state)
        s->dead = 1; /* the upgrade head was answered 101: raw bytes follow */
    while (s->n && !s->dead) {
        long h;
        int rc;
        if (s->state) {
            if (!body_eat(s))
                return;
            s->state = 0;
            continue;
        }
        h = rp_http_head_end(s->buf, s->n, &s->scan);
        FZ_CHECK(h != RP_EINVAL, "device got a bare CR/LF or NUL in a head: %.80s", s->buf);
        if (h == RP_EAGAIN) {
            FZ_CHECK(s->n < STREAM_CAP / 2, "device got a huge unterminated head");
            return;
        }
        s->scan = 0;
        rc = rp_http_parse_request(s->buf, (size_t)h, &m);
        FZ_CHECK(rc == RP_OK, "device got a head rproxy itself refuses (%d): %.*s", rc, (int)h,
                 s->buf);
        dev_heads++;
        FZ_CHECK(m.minor == 1, "device head not HTTP/1.1");
        memset(&s->ch, 0, sizeof s->ch);
        s->state = (m.flags & RP_HF_CHUNKED) ? 2 : m.content_length > 0 ? 1 : 0;
        s->left = m.content_length > 0 ? (uint64_t)m.content_length : 0;
        s->upg = has_field(s->buf, (size_t)h, "\r\nConnection: upgrade\r\n");
        if (s->tun && s->upg)
            s->dead = 1; /* raw bytes may follow the 101 */
        drop(s->buf, &s->n, (size_t)h);
    }
}

/* The client mirror: heads the client sent, so responses can be framed. */
static void
client_mirror(fclient *f)
{
    static rp_http_msg m;
    while (f->tx_n && f->tx_state != 2) {
        long h;
        if (f->tx_state == 1) {
            if (f->tx_left) {
                size_t k = (size_t)(f->tx_left < f->tx_n ? f->tx_left : f->tx_n);
                drop(f->tx, &f->tx_n, k);
                if ((f->tx_left -= k))
                    return;
            } else {
                while (f->tx_n && !f->tx_ch.done) {
                    long k = rp_chunked_step(&f->tx_ch, f->tx, f->tx_n);
                    if (k <= 0) {
                        f->tx_state = 2;
                        return;
                    }
                    drop(f->tx, &f->tx_n, (size_t)k);
                }
                if (!f->tx_ch.done)
                    return;
            }
            f->tx_state = 0;
            continue;
        }
        while (f->tx_scan == 0 && f->tx_n >= 2 && f->tx[0] == '\r' && f->tx[1] == '\n')
            drop(f->tx, &f->tx_n, 2);
        if (!f->tx_n)
            return;
        h = rp_http_head_end(f->tx, f->tx_n, &f->tx_scan);
        if (h == RP_EAGAIN && f->tx_n < RP_MAX_HEAD)
            return;
        if (h <= 0 || h > RP_MAX_HEAD || rp_http_parse_request(f->tx, (size_t)h, &m) != RP_OK) {
            f->tx_state = 2; /* rproxy refuses it and closes */
            return;
        }
        f->tx_scan = 0;
        if (f->nq < 64)
            f->heads[f->nq++] = m.method.n == 4 && memcmp(m.method.p, "HEAD", 4) == 0;
        memset(&f->tx_ch, 0, sizeof f->tx_ch);
        f->tx_left = m.content_length > 0 ? (uint64_t)m.content_length : 0;
        f->tx_state = (m.flags & RP_HF_CHUNKED) || f->tx_left ? 1 : 0;
        drop(f->tx, &f->tx_n, (size_t)h);
    }
}

/* What rproxy sent a client: responses, each framed exactly, and nothing
 * after the body of a "Connection: close" response. */
static void
client_check(fclient *f)
{
    static rp_http_msg m;
    stream *s = &f->rx;
    while (s->n && s->dead != 1) {
        long h;
        int is_head;
        if (s->state) {
            if (!body_eat(s))
                return;
            s->state = 0;
            continue;
        }
        FZ_CHECK(s->dead != 2, "bytes after a Connection: close response: %.60s", s->buf);
        FZ_CHECK(s->n < 9 || memcmp(s->buf, "HTTP/1.1 ", 9) == 0,
                 "client got something that is not a response: %.60s", s->buf);
        h = rp_http_head_end(s->buf, s->n, &s->scan);
        FZ_CHECK(h != RP_EINVAL, "client got a head with a bare CR/LF or NUL: %.80s", s->buf);
        if (h == RP_EAGAIN)
            return;
        s->scan = 0;
        FZ_CHECK(rp_http_parse_response(s->buf, (size_t)h, &m) == RP_OK,
                 "client got a malformed response head: %.*s", (int)h, s->buf);
        drop(s->buf, &s->n, (size_t)h);
        if (m.status < 200) {
            if (m.status == 101)
                s->dead = 1;
            continue;
        }
        is_head = f->qr < f->nq ? f->heads[f->qr] : 0;
        f->qr++;
        memset(&s->ch, 0, sizeof s->ch);
        if (is_head || m.status == 204 || m.status == 304)
            s->state = 0;
        else if (m.flags & RP_HF_CHUNKED)
            s->state = 2;
        else if (m.flags & RP_HF_LENGTH)
            s->state = m.content_length ? 1 : 0, s->left = (uint64_t)m.content_length;
        else
            s->dead = 1; /* close-delimited: the rest is body */
        if ((m.flags & RP_HF_CONN_CLOSE) && !s->dead)
            s->dead = 2;
    }
}

static int trace; /* FZ_TRACE=1: print every byte taken (debugging a crash) */

static void
take_into(stream *s)
{
    size_t room, got;
    if (s->stalled)
        return;
    room = STREAM_CAP - 1 - s->n;
    if (s->dead == 1) { /* no longer checked: discard */
        static char junk[STREAM_CAP];
        while (fp_take(s->sock, junk, sizeof junk))
            ;
        return;
    }
    got = fp_take(s->sock, s->buf + s->n, room + 1);
    if (trace && got)
        fprintf(stderr, "[sock %d got %zu] %.*s\n", s->sock, got, (int)got, s->buf + s->n);
    s->n += got;
}

/* ---- the loop ---- */

static int
device_tunnel(int sock)
{
    int i;
    for (i = 0; i < RP_MAX_UPSTREAM; i++) {
        const struct rp_conn *d = &P->devices[i];
        if (d->sock == sock && d->state && d->link && d->link->state == FZ_CS_TUNNEL)
            return 1;
    }
    return 0;
}

static void
collect(void)
{
    int i, k, new_tunnel = P->stats.tunnels != tunnels;
    for (k = 0; k < fp_connect_count() && ndv < MAX_DEVS; k++) {
        int s = fp_connect_sock(k), known = 0;
        for (i = 0; i < ndv; i++)
            known |= dv[i]->sock == s;
        if (s >= 0 && !known) {
            dv[ndv] = (stream *)calloc(1, sizeof(stream));
            dv[ndv++]->sock = s;
        }
    }
    for (i = 0; i < ndv; i++) {
        /* A tunnel that started (and maybe ended) in this step: any stream
         * may be the one, so every stream stops trusting upgrade heads. */
        int tunnel = new_tunnel || device_tunnel(dv[i]->sock);
        take_into(dv[i]);
        device_check(dv[i], tunnel);
        FZ_CHECK(dev_heads <= (long)(P->stats.requests + P->stats.retries),
                 "devices got %ld heads, clients sent %llu (+%llu retries)", dev_heads,
                 (unsigned long long)P->stats.requests, (unsigned long long)P->stats.retries);
    }
    tunnels = P->stats.tunnels;
    for (i = 0; i < ncl; i++) {
        take_into(&cl[i]->rx);
        client_check(cl[i]);
    }
}

static void
invariants(void)
{
    int k, active = rp_active(P), devconns = 0;
    FZ_CHECK(fp_misuse() == 0, "port misuse");
    FZ_CHECK(active >= 0 && active <= RP_MAX_CONNS, "rp_active %d", active);
    for (k = 0; k < rp_config_live(P)->ndevices; k++)
        devconns += rp_config_live(P)->devices[k].active + rp_config_live(P)->devices[k].idle;
#if RP_ENABLE_RELOAD
    if (P->spare == 2) { /* RL_OLD: devices gone from the file count on the old slot */
        const rp_config *old = P->live ? &P->cfg : &P->cfg2;
        for (k = 0; k < old->ndevices; k++)
            if (!P->dfwd[k])
                devconns += old->devices[k].active + old->devices[k].idle;
    }
#endif
    FZ_CHECK(fp_open_count() == rp_config_live(P)->nlisteners * !P->stopping + active + devconns,
             "open sockets %d != listeners + %d clients + %d device conns", fp_open_count(),
             active, devconns);
}

static void
run(void)
{
    int i, quiet = 0;
    for (i = 0; i < 20000 && quiet < 2; i++) {
        int n = rp_poll(P, 0);
        FZ_CHECK(n >= 0, "rp_poll %d", n);
        quiet = n ? 0 : quiet + 1;
    }
    if (quiet < 2) { /* say which sockets keep reporting */
        int k;
        for (k = 3; fp_sock_addr(k); k++)
            fprintf(stderr, "sock %d port %u: interest %u closed %d shut %d unread %zu pending %zu\n",
                    k, fp_sock_addr(k)->port, fp_interest(k), fp_closed(k), fp_shut(k),
                    fp_unread(k), fp_pending(k));
        for (k = 0; k < RP_MAX_CONNS + RP_MAX_UPSTREAM; k++) {
            const struct rp_conn *c = k < RP_MAX_CONNS ? &P->clients[k] : &P->devices[k - RP_MAX_CONNS];
            if (c->state)
                fprintf(stderr, "%s %d: sock %d state %d flags %#x mode %d in %u out %u watched %u "
                        "ready %u link %d\n", k < RP_MAX_CONNS ? "client" : "device", c->slot,
                        c->sock, c->state, c->flags, c->mode, c->in.w - c->in.r,
                        c->out.w - c->out.r, c->watched, c->ready, c->link ? c->link->sock : -1);
        }
    }
    FZ_CHECK(quiet >= 2, "event loop still busy after 20000 turns");
    collect();
    invariants();
}

static stream *
dev_stream(int sock)
{
    int i;
    for (i = 0; i < ndv; i++)
        if (dv[i]->sock == sock)
            return dv[i];
    return NULL;
}

static int
dev_eof(int sock)
{
    stream *s = dev_stream(sock);
    return s && s->eof;
}

static void
set_dev_eof(int sock)
{
    stream *s = dev_stream(sock);
    if (s)
        s->eof = 1;
}

static fclient *
pick_client(void)
{
    return ncl ? cl[next() % ncl] : NULL;
}

static int
pick_device(void)
{
    return ndv ? dv[next() % ndv]->sock : -1;
}

static size_t
arg_len(void)
{
    size_t n = next();
    if (n >= 0xf0)
        n = (n - 0xf0 + 1) * 512; /* now and then a big write */
    return n < in_left ? n : in_left;
}

static void
op(void)
{
    unsigned o = next() % 16;
    fclient *f;
    int s;
    size_t n;
    switch (o) {
    case 0: /* a client connects */
        if (ncl < MAX_CLIENTS && (s = fp_client_connect("10.0.0.7", (uint16_t)(40000 + ncl))) >= 0) {
            f = (fclient *)calloc(1, sizeof(fclient)); /* (no listener after rp_shutdown) */
            f->rx.sock = s;
            cl[ncl++] = f;
        }
        break;
    case 1: case 2: case 3: case 4: case 5: /* a client sends */
        if ((f = pick_client()) == NULL)
            break;
        n = arg_len();
        if (!fp_closed(f->rx.sock) && !f->eof) /* the fake would complain on stdout */
            fp_push(f->rx.sock, in, n);
        if (f->tx_n + n < STREAM_CAP) {
            memcpy(f->tx + f->tx_n, in, n);
            f->tx_n += n;
            client_mirror(f);
        } else {
            f->tx_state = 2;
        }
        in += n, in_left -= n;
        break;
    case 6: /* a client closes or resets */
        if ((f = pick_client()) != NULL) {
            if (next() & 1)
                fp_reset(f->rx.sock);
            else
                fp_eof(f->rx.sock);
            f->eof = 1;
        }
        break;
    case 7: case 8: case 9: /* a device sends */
        s = pick_device();
        n = arg_len();
        if (s >= 0 && !fp_closed(s) && !dev_eof(s))
            fp_push(s, in, n);
        in += n, in_left -= n;
        break;
    case 10: /* a device closes or resets */
        if ((s = pick_device()) >= 0) {
            /* A connect still pending completes first: a real socket cannot
             * report a reset while connecting yet have no connect error
             * (the fake would say "still connecting" forever). */
            fp_connect_ok(s);
            if (next() & 1)
                fp_reset(s);
            else
                fp_eof(s);
            set_dev_eof(s);
        }
        break;
    case 11: /* time passes */
        fp_advance((uint64_t)next() * 40);
        break;
    case 12: { /* a peer stops (or resumes) reading */
        unsigned w = next();
        stream *st = (w & 1) ? (ndv ? dv[(w >> 1) % ndv] : NULL)
                             : (ncl ? &cl[(w >> 1) % ncl]->rx : NULL);
        if (st) {
            st->stalled = !st->stalled;
            fp_set_sendcap(st->sock, st->stalled ? (long)(next() % 64) : -1);
        }
        break;
    }
    case 13: /* how the next device connects go */
        fp_connect_policy(0, (int)(next() % 4));
        break;
    case 14: { /* a pending connect finishes */
        int k = fp_connect_count();
        if (k) {
            s = fp_connect_sock((int)(next() % (unsigned)k));
            if (s >= 0) {
                if (next() & 1)
                    fp_connect_refuse(s);
                else
                    fp_connect_ok(s);
            }
        }
        break;
    }
    case 15: { /* graceful shutdown (rarely), or a reload */
        unsigned v = next();
        if (v == 0x5d)
            rp_shutdown(P);
#if RP_ENABLE_RELOAD
        else if (v >= 0xe0 && !P->stopping) {
            rp_cfg_error e;
            const char *t = reload_flip ? CFG : CFG_R;
            int rc = rp_config_parse(P, t, strlen(t), &e);
            FZ_CHECK(rc == RP_OK || rc == RP_EBUSY, "reload parse: %d line %d %s", rc, e.line,
                     e.msg);
            if (rc == RP_OK) {
                FZ_CHECK(rp_config_apply(P, &e) == RP_OK, "apply: %s", e.msg);
                reload_flip = !reload_flip;
            }
        }
#endif
        break;
    }
    }
}

/* Every peer goes away and time runs out: everything must be given back. */
static void
finish(void)
{
    int i, k;
    for (i = 0; i < ncl; i++) {
        cl[i]->rx.stalled = 0;
        fp_set_sendcap(cl[i]->rx.sock, -1);
    }
    for (i = 0; i < ndv; i++) {
        dv[i]->stalled = 0;
        fp_set_sendcap(dv[i]->sock, -1);
    }
    run();
    for (i = 0; i < ncl; i++)
        fp_eof(cl[i]->rx.sock);
    for (i = 0; i < fp_connect_count(); i++)
        fp_connect_refuse(fp_connect_sock(i));
    for (i = 0; i < ndv; i++)
        fp_eof(dv[i]->sock);
    for (k = 0; k < 20; k++) {
        fp_advance(5000);
        run();
    }
    FZ_CHECK(rp_active(P) == 0, "%d clients still open after every peer left", rp_active(P));
    FZ_CHECK(fp_open_count() == rp_config_live(P)->nlisteners * !P->stopping, "%d sockets still open",
             fp_open_count());
    FZ_CHECK(P->buf_top == P->buf_fresh, "buffer blocks not returned: %d of %d", P->buf_top,
             P->buf_fresh);
    for (k = 0; k < rp_config_live(P)->ndevices; k++) {
        const rp_device *d = &rp_config_live(P)->devices[k];
        FZ_CHECK(d->active == 0 && d->idle == 0, "device %d: active %d idle %d", k, d->active,
                 d->idle);
    }
#if RP_ENABLE_RELOAD
    FZ_CHECK(rp_config_draining(P) == 0, "%d connections still on the old slot",
             rp_config_draining(P));
#endif
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    trace = getenv("FZ_TRACE") != NULL;
    fp_log_quiet(!trace);
    P = fp_proxy_new();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_cfg_error e;
    int i;
    fp_reset_all();
    fp_set_now(T0);
    ncl = ndv = 0;
#if RP_ENABLE_RELOAD
    reload_flip = 0;
#endif
    dev_heads = 0;
    tunnels = 0;
    FZ_CHECK(rp_init(P) == RP_OK, "rp_init");
    FZ_CHECK(rp_config_parse(P, CFG, sizeof CFG - 1, &e) == RP_OK, "config line %d: %s", e.line,
             e.msg);
    FZ_CHECK(rp_start(P) == RP_OK, "rp_start");
    in = data, in_left = size;
    while (in_left) {
        op();
        run();
    }
    finish();
    for (i = 0; i < ncl; i++)
        free(cl[i]);
    for (i = 0; i < ndv; i++)
        free(dv[i]);
    return 0;
}

/*
 * rproxy.c -- the portable core of rproxy, an HTTP/1.1 reverse proxy.
 *
 * SPDX-License-Identifier: MIT
 *
 * This file is the whole proxy: configuration language, HTTP/1.1 parser,
 * router, balancer, response cache, connection state machine and event
 * loop.  It makes no OS calls (the port in port/ does, through the contract
 * at the end of rproxy.h) and never allocates: every object lives in the
 * caller's rp_proxy.  Read it top-down; each section uses only those above.
 *
 * Generated: the sections live in src/ (one file each); scripts/amalgamate.sh
 * concatenates them into this file, which is what a firmware drops in.  Edit
 * src/, run make; CI checks that this file matches.
 *
 * Contents  (grep -n '^/\* ==== \[' rproxy.c)
 *   [1] Basics: views, characters, numbers, a bounded writer
 *   [2] Errors and addresses
 *   [3] Buffers
 *   [4] HTTP/1.1 parser: head end, request, response, chunked
 *   [5] TLS certificate store
 *   [6] Configuration language
 *   [7] Router and balancer
 *   [8] Connections: slots, interest, timers, closing
 *   [9] Request forwarding: the device-bound head
 *  [10] Response forwarding: the client-bound head and bodies
 *  [11] Cache: arena, entries, freshness (RFC 9111)
 *  [12] The exchange state machine
 *  [13] Health probes and the status page
 *  [14] Event loop
 *  [15] Public API
 */
#include "rproxy.h"

#include <string.h>

/* For small functions called from several paths that GCC's -Os would copy
 * into every caller although one shared copy is smaller (each marked one
 * measured: at least 16 bytes of the board build). */
#ifdef __GNUC__
#define RP_NOINLINE __attribute__((noinline))
#else
#define RP_NOINLINE
#endif

/* ==== [1] Basics: views, characters, numbers, a bounded writer ====
 * Small helpers everything else leans on.  Character classes are RFC 9110's:
 * tchar for tokens (methods, field names), vchar/obs-text for values. */

#define RP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RP_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) lit, (sizeof(lit) - 1)

/* Character classes as bitmaps over 0..127 (nothing above is in one). */
static int
in_class(const uint32_t *map, unsigned char c)
{
    return c < 128 && (map[c >> 5] >> (c & 31)) & 1;
}

/* tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA */
static const uint32_t tchar_map[4] = {0, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff};

static int
is_tchar(unsigned char c)
{
    return in_class(tchar_map, c);
}

/* CTL but HTAB: not allowed in a field value or a chunk extension. */
static int
is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

#if RP_ENABLE_CACHE
static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
#endif

static int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Case-insensitive compare of a view with n bytes at b. */
static int
str_ieq(rp_str a, const char *b, size_t n)
{
    size_t i;
    if (a.n != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static int
str_ieq2(rp_str a, rp_str b)
{
    return str_ieq(a, b.p, b.n);
}

/* A view without its leading and trailing spaces and tabs. */
static void
str_trim(rp_str *s)
{
    while (s->n && (s->p[0] == ' ' || s->p[0] == '\t'))
        s->p++, s->n--;
    while (s->n && (s->p[s->n - 1] == ' ' || s->p[s->n - 1] == '\t'))
        s->n--;
}

/* Next comma-separated element of a list value; returns 0 when none left.
 * Empty elements ("a,,b") are skipped, as RFC 9110 §5.6.1 allows. */
static int
list_next(rp_str *rest, rp_str *elem)
{
    while (rest->n) {
        size_t i = 0;
        while (i < rest->n && rest->p[i] != ',')
            i++;
        elem->p = rest->p;
        elem->n = i;
        str_trim(elem);
        rest->p += i + (i < rest->n);
        rest->n -= i + (i < rest->n);
        if (elem->n)
            return 1;
    }
    return 0;
}

/* Decimal digits only, at most 18 of them (fits int64).  -1 if invalid. */
static int64_t
parse_dec(rp_str s)
{
    int64_t v = 0;
    size_t i;
    if (s.n == 0 || s.n > 18)
        return -1;
    for (i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    return v;
}

/* A bounded writer: appends until full, then remembers it overflowed. */
typedef struct {
    char *p;
    size_t n, cap;
    int full;
} wbuf;

static void
w_put(wbuf *w, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (w->full || n > w->cap - w->n) {
        w->full = 1;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void
w_str(wbuf *w, rp_str s)
{
    w_put(w, s.p, s.n);
}

static void
w_num(wbuf *w, uint64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    w_put(w, t + i, sizeof(t) - i);
}

/* "Name: value\r\n" */
static void
w_field(wbuf *w, const char *name, size_t n, rp_str value)
{
    w_put(w, name, n);
    w_put(w, S(": "));
    w_str(w, value);
    w_put(w, S("\r\n"));
}

/* ==== [2] Errors and addresses ====
 * rp_err is one signed space (lwIP's err_t).  Addresses are parsed from the
 * config ("10.0.0.5:80", "[fe80::1]:80", "localhost:80") without any
 * resolver: a gateway names its devices by address. */

const char *
rp_strerror(int err)
{
    /* -err picks one; the list ends with an empty name */
    static const char names[] =
        "ok\0would block\0malformed input\0out of slots\0connection closed\0"
        "connection reset\0timed out\0connect refused\0I/O error\0"
        "request target too long\0header too large\0not implemented\0"
        "HTTP version not supported\0expectation failed\0bad configuration\0"
        "not found\0bad address\0";
    const char *s = names;
    for (; err < 0 && *s; err++)
        s += strlen(s) + 1;
    return err || !*s ? "unknown error" : s;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

#if RP_ENABLE_CONFIG_TEXT
static int
parse_ip4(const char *s, size_t n, uint8_t *ip)
{
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4)
            v = v * 10 + (unsigned)(s[i++] - '0'), digits++;
        if (digits == 0 || digits > 3 || v > 255)
            return RP_EINVAL;
        ip[part] = (uint8_t)v;
        if (part < 3 && (i >= n || s[i++] != '.'))
            return RP_EINVAL;
    }
    return i == n ? RP_OK : RP_EINVAL;
}

#if RP_ENABLE_IPV6
/* RFC 4291 text form, with one "::" allowed (no embedded IPv4). */
static int
parse_ip6(const char *s, size_t n, uint8_t *ip)
{
    uint16_t g[8];
    int ng = 0, gap = -1, i;
    size_t k = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':')
        gap = 0, k = 2;
    while (k < n) {
        unsigned v = 0, digits = 0;
        while (k < n && hexval(s[k]) >= 0 && digits < 5)
            v = v * 16 + (unsigned)hexval(s[k++]), digits++;
        if (digits == 0 || digits > 4 || ng == 8)
            return RP_EINVAL;
        g[ng++] = (uint16_t)v;
        if (k == n)
            break;
        if (s[k++] != ':' || k == n)
            return RP_EINVAL;
        if (s[k] == ':') {
            if (gap >= 0)
                return RP_EINVAL;
            gap = ng, k++;
        }
    }
    if ((gap < 0 && ng != 8) || (gap >= 0 && ng > 7))
        return RP_EINVAL;
    memset(ip, 0, 16);
    for (i = 0; i < ng; i++) {
        int at = (gap >= 0 && i >= gap) ? i + (8 - ng) : i;
        ip[2 * at] = (uint8_t)(g[i] >> 8);
        ip[2 * at + 1] = (uint8_t)g[i];
    }
    return RP_OK;
}
#else
#define parse_ip6(s, n, ip) ((void)(s), (void)(n), (void)(ip), RP_ENOTIMPL)
#endif

int
rp_addr_parse(rp_addr *a, const char *s, size_t n, int need_port)
{
    size_t hn = n, i;
    const char *h = s;
    int64_t port = 0;
    memset(a, 0, sizeof(*a));
    if (n && s[0] == '[') { /* [v6]:port */
        for (i = 1; i < n && s[i] != ']'; i++)
            ;
        if (i == n)
            return RP_EINVAL;
        h = s + 1, hn = i - 1;
        i++;
    } else {
        for (i = n; i > 0 && s[i - 1] != ':'; i--)
            ;
        i = i ? i - 1 : n;
        hn = i;
    }
    if (i < n) {
        rp_str ps;
        if (s[i] != ':')
            return RP_EINVAL;
        ps.p = s + i + 1, ps.n = n - i - 1;
        port = parse_dec(ps);
        if (port < 1 || port > 65535)
            return RP_EINVAL;
    } else if (need_port) {
        return RP_EINVAL;
    }
    a->port = (uint16_t)port;
    if (h != s) {
        a->family = 6;
        return parse_ip6(h, hn, a->ip);
    }
    a->family = 4;
    if (hn == 9 && memcmp(h, "localhost", 9) == 0) {
        a->ip[0] = 127, a->ip[3] = 1;
        return RP_OK;
    }
    return parse_ip4(h, hn, a->ip);
}
#endif

#if RP_ENABLE_IPV6
/* RFC 5952: lower-case hex, no leading zeros, the longest run of two or
 * more zero groups (the first on a tie) written as "::". */
static void
addr6_format(const uint8_t *ip, wbuf *w)
{
    static const char hex[] = "0123456789abcdef";
    int i, run = 0, best = -1, bestlen = 1;
    for (i = 0; i < 8; i++) {
        run = (ip[2 * i] | ip[2 * i + 1]) ? 0 : run + 1;
        if (run > bestlen)
            bestlen = run, best = i - run + 1;
    }
    for (i = 0; i < 8; i++) {
        unsigned v = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
        int shift, started = 0;
        if (i == best) {
            w_put(w, "::", 2);
            i += bestlen - 1;
            continue;
        }
        if (i && i != best + bestlen)
            w_put(w, ":", 1);
        for (shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (v >> shift) & 15;
            if (d || started || shift == 0)
                w_put(w, &hex[d], 1), started = 1;
        }
    }
}
#endif

size_t
rp_addr_format(const rp_addr *a, char *out, size_t cap)
{
    char t[48];
    wbuf w;
    int i;
    w.p = t, w.n = 0, w.cap = sizeof(t), w.full = 0;
    if (a->family == 4 || !RP_ENABLE_IPV6) {
        for (i = 0; i < 4; i++) {
            if (i)
                w_put(&w, ".", 1);
            w_num(&w, a->ip[i]);
        }
    }
#if RP_ENABLE_IPV6
    else {
        addr6_format(a->ip, &w);
    }
#endif
    if (cap == 0)
        return 0;
    if (w.n >= cap)
        w.n = cap - 1;
    memcpy(out, t, w.n);
    out[w.n] = 0;
    return w.n;
}

/* ==== [3] Buffers ====
 * Bytes live in d[r..w) of a buffer taken from one pool of RP_BUF_SIZE
 * blocks.  A connection holds a block only while it has bytes in it: empty
 * buffers go back after every turn, and the pool hands out the most
 * recently returned block first, so the pages in use stay few and hot (a
 * busy keep-alive connection waiting on its device holds one block, not
 * four).  The pool has a block for every buffer of every slot, so taking
 * one cannot fail while the slot tables do not; blocks never used are never
 * touched.  Space is reclaimed by resetting when empty and by sliding the
 * data down when the tail is short -- only between parses, so views never
 * dangle. */

static size_t
buf_len(const rp_buf *b)
{
    return b->w - b->r;
}

static int
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
static void
buf_release(rp_proxy *p, rp_buf *b, int force)
{
    if (b->d && (force || b->r == b->w)) {
        p->buf_free[p->buf_top++] = b->d;
        b->d = NULL;
        b->r = b->w = 0;
    }
}

static size_t
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
static size_t
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
static wbuf
buf_writer(rp_proxy *p, rp_buf *b)
{
    wbuf w;
    w.cap = buf_room(p, b);
    w.p = b->d ? b->d + b->w : NULL;
    w.n = 0;
    w.full = 0;
    return w;
}

static int
buf_commit(rp_buf *b, const wbuf *w)
{
    if (w->full)
        return RP_ENOMEM;
    b->w += (uint32_t)w->n;
    return RP_OK;
}

/* ==== [4] HTTP/1.1 parser: head end, request, response, chunked ====
 * Three steps, like picohttpparser: rp_http_head_end finds the end of a head
 * incrementally (and rejects bare CR, bare LF and NUL on the way), the
 * message parsers split a complete head into views, and one semantic pass
 * derives the framing.  Anything ambiguous is an error: the proxy refuses
 * what a device might read differently (RFC 9112 §6.3, §11.2). */

enum {
    H_OTHER, H_HOST, H_CONTENT_LENGTH, H_TRANSFER_ENCODING, H_CONNECTION,
    H_KEEP_ALIVE, H_PROXY_CONNECTION, H_TE, H_TRAILER, H_UPGRADE, H_EXPECT,
    H_XFF, H_XFPROTO, H_XFHOST, H_VIA,
    /* end-to-end fields the cache reads; forwarded like H_OTHER */
    H_DATE, H_AGE, H_CACHE_CONTROL, H_PRAGMA, H_EXPIRES, H_ETAG, H_LAST_MODIFIED,
    H_VARY, H_SET_COOKIE, H_AUTHORIZATION, H_IF_NONE_MATCH, H_IF_MODIFIED_SINCE,
    H_LOCATION, H_CONTENT_LOCATION, H_CACHE_STATUS
};

/* Index of s in words (lower-case, each ended by a NUL, the list by an
 * empty one), case-insensitively; -1 when absent. */
static int
word_index(rp_str s, const char *words)
{
    size_t n;
    int i;
    for (i = 0; (n = strlen(words)) > 0; i++, words += n + 1)
        if (str_ieq(s, words, n))
            return i;
    return -1;
}

/* The names of H_HOST.. in enum order: word i is id i + 1, and a name not
 * there gets H_OTHER (0). */
static const char header_names[] =
    "host\0" "content-length\0" "transfer-encoding\0" "connection\0" "keep-alive\0"
    "proxy-connection\0" "te\0" "trailer\0" "upgrade\0" "expect\0" "x-forwarded-for\0"
    "x-forwarded-proto\0" "x-forwarded-host\0" "via\0" "date\0" "age\0"
    "cache-control\0" "pragma\0" "expires\0" "etag\0" "last-modified\0" "vary\0"
    "set-cookie\0" "authorization\0" "if-none-match\0" "if-modified-since\0"
    "location\0" "content-location\0" "cache-status\0";

static int
header_id(rp_str name)
{
    return word_index(name, header_names) + 1;
}

long
rp_http_head_end(const char *buf, size_t len, size_t *scan)
{
    size_t i = *scan;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c > '\r')
            continue;
        if (c == 0 || c == '\n')
            return RP_EINVAL; /* NUL, or LF without its CR */
        if (c != '\r')
            continue;
        if (i + 1 == len)
            break; /* look at this CR again with the next byte */
        if (buf[i + 1] != '\n')
            return RP_EINVAL; /* bare CR */
        i++;
        if (i >= 3 && buf[i - 2] == '\n')
            return (long)(i + 1);
    }
    *scan = i;
    return RP_EAGAIN;
}

/* Field lines from p to the final CRLF (end points past it; the caller has
 * checked that the head ends in CRLF CRLF, so every scan stops in bounds,
 * and has zeroed nheaders). */
static int
parse_fields(const char *p, const char *end, rp_http_msg *m)
{
    while (p < end - 2) {
        rp_header *h;
        const char *q = p;
        while (is_tchar((unsigned char)*q))
            q++;
        if (q == p || *q != ':')
            return RP_EINVAL; /* empty name (obs-fold or leading whitespace
                                 too), bad char, space before colon */
        if (m->nheaders == RP_MAX_HEADERS)
            return RP_EHDRTOOBIG;
        h = &m->headers[m->nheaders++];
        h->name.p = p, h->name.n = (size_t)(q - p);
        h->id = header_id(h->name); /* once: every later pass reads it */
        p = ++q;
        while (*q != '\r') {
            unsigned char c = (unsigned char)*q++;
            if (is_ctl(c))
                return RP_EINVAL;
        }
        if (q[1] != '\n')
            return RP_EINVAL;
        h->value.p = p, h->value.n = (size_t)(q - p);
        str_trim(&h->value);
        p = q + 2;
    }
    return RP_OK;
}

/* Transfer-Encoding: exactly "chunked" is fine; a list that ends in chunked
 * names a coding we do not implement (501); anything else is ambiguous. */
static int
check_te(rp_str v)
{
    rp_str e;
    int n = 0, chunked = 0, last = 0;
    while (list_next(&v, &e)) {
        n++;
        last = str_ieq(e, S("chunked"));
        chunked += last;
    }
    if (chunked != 1 || !last)
        return RP_EINVAL;
    return n == 1 ? RP_OK : RP_ENOTIMPL;
}

/* reg-name / IP-literal / port characters (RFC 3986 host + ":" port):
 * "!#$%&'()*+,-.:;=[]_~", DIGIT, ALPHA. */
static const uint32_t host_map[4] = {0, 0x2fff7ffa, 0xaffffffe, 0x47fffffe};

static int
check_host(rp_str h)
{
    size_t i;
    for (i = 0; i < h.n; i++)
        if (!in_class(host_map, (unsigned char)h.p[i]))
            return RP_EINVAL;
    return RP_OK;
}

/* The semantic pass: framing and connection flags.  One rule set for both
 * directions; request-only rules are applied by the caller. */
static int
scan_fields(rp_http_msg *m, int is_request)
{
    size_t i;
    int te = 0, host = 0, rc, k;
    m->content_length = -1;
    for (i = 0; i < m->nheaders; i++) {
        rp_str v = m->headers[i].value, e;
        switch (m->headers[i].id) {
        case H_CONTENT_LENGTH:
            if (m->flags & RP_HF_LENGTH || (m->content_length = parse_dec(v)) < 0)
                return RP_EINVAL; /* duplicate, list, sign, hex, space */
            m->flags |= RP_HF_LENGTH;
            break;
        case H_TRANSFER_ENCODING:
            if (te++ || (rc = check_te(v)) == RP_EINVAL)
                return RP_EINVAL;
            if (rc != RP_OK)
                return is_request ? rc : RP_EINVAL;
            m->flags |= RP_HF_CHUNKED;
            break;
        case H_CONNECTION:
            /* the three options have consecutive flags, in this order */
            while (list_next(&v, &e))
                if ((k = word_index(e, "close\0keep-alive\0upgrade\0")) >= 0)
                    m->flags |= RP_HF_CONN_CLOSE << k;
            break;
        case H_UPGRADE:
            m->flags |= RP_HF_UPGRADE;
            break;
        case H_HOST:
            if (!is_request)
                break;
            if (host++ || check_host(v) != RP_OK)
                return RP_EINVAL;
            if (!(m->flags & RP_HF_ABSOLUTE))
                m->host = v;
            m->flags |= RP_HF_HOST;
            break;
        case H_EXPECT:
            if (!is_request)
                break;
            if (!str_ieq(v, S("100-continue")))
                return RP_EEXPECT;
            m->flags |= RP_HF_EXPECT100;
            break;
        }
    }
    if ((m->flags & RP_HF_LENGTH) && (m->flags & RP_HF_CHUNKED))
        return RP_EINVAL; /* CL + TE: the classic desync */
    return RP_OK;
}

/* "HTTP/1.x" at p: returns the minor version, or an error. */
static int
parse_version(const char *p, const char *end)
{
    if (end - p < 8 || memcmp(p, "HTTP/", 5) != 0)
        return RP_EINVAL;
    if (p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9')
        return RP_EINVAL;
    if (p[5] != '1' || p[7] > '1')
        return RP_EVERSION;
    return p[7] - '0';
}

/* Does t go on past a case-insensitive lit? */
static int
starts_with(rp_str t, const char *lit, size_t n)
{
    if (t.n <= n)
        return 0;
    t.n = n;
    return str_ieq(t, lit, n);
}

/* Request target: origin-form, absolute-form (authority moves to host),
 * asterisk-form for OPTIONS, authority-form for CONNECT (refused later). */
static int
parse_target(rp_http_msg *m)
{
    rp_str t = m->target;
    size_t i, skip;
    if (t.n > RP_MAX_URI)
        return RP_ETOOLONG;
    if (t.p[0] == '/')
        return RP_OK;
    if (t.n == 1 && t.p[0] == '*')
        return str_ieq(m->method, S("options")) ? RP_OK : RP_EINVAL;
    if (starts_with(t, S("http://")))
        skip = 7;
    else if (starts_with(t, S("https://")))
        skip = 8;
    else
        return m->method.n == 7 && memcmp(m->method.p, "CONNECT", 7) == 0
                   ? RP_OK : RP_EINVAL;
    for (i = skip; i < t.n && t.p[i] != '/' && t.p[i] != '?'; i++)
        if (t.p[i] == '@')
            return RP_EINVAL; /* no userinfo */
    if (i == skip)
        return RP_EINVAL;
    m->host.p = t.p + skip, m->host.n = i - skip;
    m->target.p = t.p + i, m->target.n = t.n - i;
    m->flags |= RP_HF_ABSOLUTE | RP_HF_HOST;
    return check_host(m->host);
}

/* "METHOD target HTTP/1.x\r\n" at buf: the offset past its CRLF, or an
 * error.  The head ends in CRLF CRLF: the scans stop at a CR at the latest,
 * and as the version holds neither, the CRLF after it is in bounds. */
static long
request_line(const char *buf, const char *end, rp_http_msg *m)
{
    const char *p = buf, *q;
    int rc;
    for (q = p; is_tchar((unsigned char)*q); q++)
        ;
    if (q == p || *q != ' ')
        return RP_EINVAL;
    m->method.p = p, m->method.n = (size_t)(q - p);
    for (p = ++q; *q > ' ' && *q < 0x7f; q++)
        ;
    if (q == p || *q != ' ')
        return q - p > RP_MAX_URI ? RP_ETOOLONG : RP_EINVAL;
    m->target.p = p, m->target.n = (size_t)(q - p);
    if ((rc = parse_version(q + 1, end)) < 0)
        return rc;
    m->minor = rc;
    p = q + 9;
    if (p[0] != '\r' || p[1] != '\n')
        return RP_EINVAL;
    if ((rc = parse_target(m)) != RP_OK)
        return rc;
    return p + 2 - buf;
}

/* "HTTP/1.x 200 reason\r\n" at buf, likewise. */
static long
status_line(const char *buf, const char *end, rp_http_msg *m)
{
    const char *p = buf;
    int rc, i;
    if ((rc = parse_version(p, end)) < 0)
        return RP_EINVAL;
    m->minor = rc;
    p += 8;
    if (end - p < 6 || *p++ != ' ')
        return RP_EINVAL;
    for (i = 0; i < 3; i++, p++) {
        if (*p < '0' || *p > '9')
            return RP_EINVAL;
        m->status = m->status * 10 + (*p - '0');
    }
    if (m->status < 100 || (*p != ' ' && *p != '\r'))
        return RP_EINVAL;
    if (*p == ' ')
        p++;
    for (m->reason.p = p; *p != '\r'; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return RP_EINVAL;
    m->reason.n = (size_t)(p - m->reason.p);
    if (p[1] != '\n')
        return RP_EINVAL;
    return p + 2 - buf;
}

/* A complete head: start line, field lines, then the semantic pass. */
static int
parse_head(const char *buf, size_t len, rp_http_msg *m, int is_request)
{
    const char *end = buf + len;
    long at;
    int rc;
    memset(m, 0, offsetof(rp_http_msg, headers));
    if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
        return RP_EINVAL;
    at = is_request ? request_line(buf, end, m) : status_line(buf, end, m);
    if (at < 0)
        return (int)at;
    if ((rc = parse_fields(buf + at, end, m)) != RP_OK)
        return rc;
    return scan_fields(m, is_request);
}

int
rp_http_parse_request(const char *buf, size_t len, rp_http_msg *m)
{
    int rc = parse_head(buf, len, m, 1);
    if (rc != RP_OK)
        return rc;
    if (m->minor == 0 && (m->flags & RP_HF_CHUNKED))
        return RP_EINVAL; /* RFC 9112 §6.1: TE in 1.0 is faulty framing */
    if (m->minor == 1 && !(m->flags & RP_HF_HOST))
        return RP_EINVAL;
    return RP_OK;
}

int
rp_http_parse_response(const char *buf, size_t len, rp_http_msg *m)
{
    return parse_head(buf, len, m, 0); /* scan_fields: only RP_EINVAL here */
}

/* Chunked framing (RFC 9112 §7.1) as a byte-at-a-time state machine over
 * everything but chunk data, which it hands back in spans.  Sizes are capped
 * at 2^60, extension and trailer lines at 4 KiB each. */
enum {
    CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
    CH_TRAILER, CH_TRAILER_LINE, CH_TRAILER_LF, CH_END_LF, CH_BWS
};
#define CH_MAX_LINE 4096

/* One framing byte, already counted into its line and known not NUL. */
static int
chunked_byte(rp_chunked *c, unsigned char b)
{
    int h;
    switch (c->state) {
    case CH_SIZE:
        if ((h = hexval(b)) >= 0) {
            if (c->linelen > 16 || c->left >> 56)
                return RP_EINVAL; /* 16 digits at most, value below 2^60 */
            c->left = c->left * 16 + (uint64_t)h;
            return RP_OK;
        }
        if (c->linelen == 1)
            return RP_EINVAL; /* no digits */
        if (b == '\r') {
            c->state = CH_SIZE_LF;
            return RP_OK;
        }
        c->state = CH_BWS; /* optional whitespace, then ";" (RFC 9112 §7.1.1) */
        /* fall through */
    case CH_BWS:
        if (b == ';')
            c->state = CH_EXT;
        else if (b != ' ' && b != '\t')
            return RP_EINVAL; /* "5 x", "5 \r\n" */
        return RP_OK;
    case CH_EXT:
        if (b == '\r')
            c->state = CH_SIZE_LF;
        else if (is_ctl(b))
            return RP_EINVAL;
        return RP_OK;
    case CH_SIZE_LF:
        if (b != '\n')
            return RP_EINVAL;
        c->state = c->left ? CH_DATA : CH_TRAILER;
        c->linelen = 0;
        return RP_OK;
    case CH_DATA_CR:
        c->state = CH_DATA_LF;
        return b == '\r' ? RP_OK : RP_EINVAL;
    case CH_DATA_LF:
        c->state = CH_SIZE;
        c->linelen = 0;
        return b == '\n' ? RP_OK : RP_EINVAL;
    case CH_TRAILER:
        if (b == '\r') {
            c->state = CH_END_LF;
            return RP_OK;
        }
        if (!is_tchar(b))
            return RP_EINVAL;
        c->state = CH_TRAILER_LINE;
        return RP_OK;
    case CH_TRAILER_LINE:
        if (b == '\r')
            c->state = CH_TRAILER_LF;
        else if (is_ctl(b))
            return RP_EINVAL;
        return RP_OK;
    case CH_TRAILER_LF:
        c->state = CH_TRAILER;
        c->linelen = 0;
        return b == '\n' ? RP_OK : RP_EINVAL;
    case CH_END_LF:
        if (b != '\n')
            return RP_EINVAL;
        c->done = 1;
        return RP_OK;
    }
    return RP_EINVAL;
}

long
rp_chunked_step(rp_chunked *c, const char *p, size_t n)
{
    size_t i = 0;
    if (n == 0 || c->done)
        return 0;
    if (c->state == CH_DATA) {
        size_t take = (size_t)RP_MIN((uint64_t)n, c->left);
        c->left -= take;
        if (c->left == 0)
            c->state = CH_DATA_CR;
        c->in_data = 1;
        return (long)take;
    }
    c->in_data = 0;
    while (i < n && c->state != CH_DATA && !c->done) {
        unsigned char b = (unsigned char)p[i++];
        if (++c->linelen > CH_MAX_LINE || b == 0 || chunked_byte(c, b) != RP_OK)
            return RP_EINVAL;
    }
    return (long)i;
}

/* HTTP-date (RFC 9110 §5.6.7): the cache reads them, responses get a Date
 * when the device sent none.  Both directions cover 1970..9999, the years
 * an IMF-fixdate can carry, in 32-bit arithmetic: a day count there stays
 * below 2^22 (Howard Hinnant's days_from_civil, unsigned because no year
 * before 1969 gets this far). */

#if RP_ENABLE_CACHE || RP_ENABLE_WALL_CLOCK
static const char month_names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* Days since 1970-01-01 for y >= 1970 (exact while that fits 32 bits);
 * d may overshoot the month (Feb 30 is Mar 2).  Years start in March, so
 * a leap day ends one; 719468 is 1970-01-01 counted from 0000-03-01. */
static uint32_t
days_from_civil(unsigned y, unsigned m, unsigned d)
{
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    y -= m <= 2;
    return y * 365 + y / 4 - y / 100 + y / 400 + doy - 719468;
}
#endif

#if RP_ENABLE_CACHE

static int
date_num(const char *s, size_t n, int *out)
{
    size_t i;
    *out = 0;
    for (i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return 0;
        *out = *out * 10 + (s[i] - '0');
    }
    return n > 0;
}

static int
date_month(const char *s)
{
    int i;
    for (i = 0; i < 12; i++)
        if (memcmp(s, month_names + 3 * i, 3) == 0)
            return i + 1;
    return 0;
}

/* IMF-fixdate, RFC 850 or asctime; -1 when none of them.  The forms place
 * the fields differently; one pass then reads them. */
static int64_t
http_date(rp_str v)
{
    const char *s = v.p, *c = memchr(v.p, ',', v.n);
    int day, mon, year, t[3], k; /* t: hour, minute, second */
    size_t n = v.n, at, dpos, dlen = 2, mpos, ypos, ylen = 4;
    if (c) { /* "Sun, 06 Nov 1994 08:49:37 GMT" / "Sunday, 06-Nov-94 08:49:37 GMT" */
        dpos = (size_t)(c - s) + 2;
        ylen = n - dpos == 24 ? 4 : 2;
        if (n - dpos != 20 + ylen || s[dpos - 1] != ' ' || memcmp(s + n - 4, " GMT", 4))
            return -1;
        mpos = dpos + 3, ypos = dpos + 7, at = ypos + ylen;
    } else { /* "Sun Nov  6 08:49:37 1994" */
        if (n != 24)
            return -1;
        dpos = 8 + (s[8] == ' '), dlen = 10 - dpos;
        mpos = 4, ypos = 20, at = 10;
    }
    /* four digits at most keep year <= 9999 */
    if ((mon = date_month(s + mpos)) == 0 || !date_num(s + dpos, dlen, &day) ||
        !date_num(s + ypos, ylen, &year))
        return -1;
    for (k = 0; k < 3; k++, at += 3) /* at: the space, then each ':' */
        if (s[at] != (k ? ':' : ' ') || !date_num(s + at + 1, 2, &t[k]))
            return -1;
    if (ylen == 2) /* RFC 850 */
        year += year < 70 ? 2000 : 1900;
    if (day < 1 || day > 31 || t[0] > 23 || t[1] > 59 || t[2] > 60 || year < 1970)
        return -1;
    return (int64_t)days_from_civil((unsigned)year, (unsigned)mon, (unsigned)day) * 86400 +
           t[0] * 3600 + t[1] * 60 + t[2];
}
#endif

#if RP_ENABLE_WALL_CLOCK
/* The last n decimal digits of v, ending before end. */
static void
put_digits(char *end, unsigned v, int n)
{
    while (n--) {
        *--end = (char)('0' + v % 10);
        v /= 10;
    }
}

/* t as IMF-fixdate into out (29 bytes); t >= 0.  The month is searched
 * for downwards with days_from_civil (24 steps at most), from December of
 * a year never short of the right one and at most one over: whole 400-year
 * cycles of 146097 days, then the rest over 365.  Years past 9999, which
 * no IMF-fixdate can carry, are written modulo 10000; from about 2^32
 * days (year 11,700,000) on, the 32-bit day count wraps. */
static void
http_date_format(int64_t t, char *out)
{
    static const char wd[] = "ThuFriSatSunMonTueWed";
    uint32_t days = (uint32_t)((uint64_t)t / 86400), secs = (uint32_t)((uint64_t)t % 86400);
    unsigned y = 1970 + days / 146097 * 400 + days % 146097 / 365, m = 12;
    while (days_from_civil(y, m, 1) > days)
        if (--m == 0)
            m = 12, y--;
    memcpy(out, wd + 3 * (days % 7), 3);
    memcpy(out + 3, ", 00 Jan 0000 00:00:00 GMT", 26);
    put_digits(out + 7, days - days_from_civil(y, m, 1) + 1, 2);
    memcpy(out + 8, month_names + 3 * (m - 1), 3);
    put_digits(out + 16, y, 4);
    put_digits(out + 19, secs / 3600, 2);
    put_digits(out + 22, secs / 60 % 60, 2);
    put_digits(out + 25, secs % 60, 2);
}
#endif

/* ==== [5] TLS certificate store ==== */

#if RP_ENABLE_TLS && RP_ENABLE_CONFIG_TEXT
/* TLS certificate store.  `tls cert= key=` lines are loaded as they are
 * parsed, so a bad file is a `file:line:` error: PEM is decoded, DER chains
 * are kept in cfg->store, private keys are decoded and their parts copied
 * there too, and the key must match the leaf certificate's public key.  The
 * BearSSL decoders need ~4 KB: they borrow TLS slot 0's input buffer, idle
 * until rp_start. */

struct tls_scratch;

typedef struct {
    rp_config *c;
    struct tls_scratch *s;
    size_t start;
    int overflow, key;
} der_sink;

typedef struct tls_scratch {
    br_pem_decoder_context pem;
    br_skey_decoder_context sk;
    br_x509_decoder_context xd;
    der_sink sink;
    unsigned char pub[BR_EC_KBUF_PUB_MAX_SIZE];
    unsigned char mod[512];
    size_t keylen;
    unsigned char keyder[8192];
} tls_scratch;

typedef char tls_scratch_fits[sizeof(tls_scratch) <= BR_SSL_BUFSIZE_INPUT ? 1 : -1];

static void
der_append(void *ctx, const void *data, size_t len)
{
    der_sink *d = (der_sink *)ctx;
    rp_config *c = d->c;
    if (d->key) {
        if (len > sizeof(d->s->keyder) - d->s->keylen)
            d->overflow = 1;
        else
            memcpy(d->s->keyder + d->s->keylen, data, len), d->s->keylen += len;
    } else if (len > sizeof(c->store) - c->store_used) {
        d->overflow = 1;
    } else {
        memcpy(c->store + c->store_used, data, len);
        c->store_used += len;
    }
}

static void
der_discard(void *ctx, const void *data, size_t len)
{
    (void)ctx, (void)data, (void)len;
}

static unsigned char *
store_put(rp_config *c, const void *data, size_t n)
{
    unsigned char *d = c->store + c->store_used;
    if (n > sizeof(c->store) - c->store_used)
        return NULL;
    memcpy(d, data, n);
    c->store_used += n;
    return d;
}

static int
ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && memcmp(s + a - b, tail, b) == 0;
}

/* Decode the PEM objects of one file: certificates go to ct's chain
 * (want_key 0), or the private key's DER to the scratch (want_key 1). */
static const char *
tls_pem_load(rp_config *c, rp_tls_cert *ct, const unsigned char *src, size_t len,
             tls_scratch *s, int want_key)
{
    der_sink *d = &s->sink;
    int in_obj = 0, keep = 0;
    d->c = c, d->s = s, d->start = 0, d->overflow = 0, d->key = want_key;
    br_pem_decoder_init(&s->pem);
    while (len > 0) {
        size_t k = br_pem_decoder_push(&s->pem, src, len);
        const char *name;
        src += k, len -= k;
        switch (br_pem_decoder_event(&s->pem)) {
        case BR_PEM_BEGIN_OBJ:
            name = br_pem_decoder_name(&s->pem);
            keep = want_key ? ends_with(name, "PRIVATE KEY") && s->keylen == 0
                            : strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0;
            d->start = c->store_used;
            br_pem_decoder_setdest(&s->pem, keep ? der_append : der_discard, d);
            in_obj = 1;
            break;
        case BR_PEM_END_OBJ:
            if (d->overflow)
                return "TLS store full (raise RP_TLS_STORE_BYTES)";
            if (keep && !want_key) {
                if (ct->chain_len == RP_TLS_MAX_CHAIN)
                    return "certificate chain too long (RP_TLS_MAX_CHAIN)";
                ct->chain[ct->chain_len].data = c->store + d->start;
                ct->chain[ct->chain_len++].data_len = c->store_used - d->start;
            }
            in_obj = 0;
            break;
        case BR_PEM_ERROR:
            return "malformed PEM";
        }
    }
    return in_obj ? "truncated PEM" : NULL;
}

static const char *
tls_key_take(rp_config *c, rp_tls_cert *ct, tls_scratch *s)
{
    br_skey_decoder_init(&s->sk);
    br_skey_decoder_push(&s->sk, s->keyder, s->keylen);
    if (br_skey_decoder_last_error(&s->sk) != 0)
        return "cannot decode the private key";
    ct->key_type = br_skey_decoder_key_type(&s->sk);
    if (ct->key_type == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *k = br_skey_decoder_get_rsa(&s->sk);
        if (k->n_bitlen < 2048)
            return "RSA keys under 2048 bits are refused";
        ct->rsa = *k;
        ct->rsa.p = store_put(c, k->p, k->plen);
        ct->rsa.q = store_put(c, k->q, k->qlen);
        ct->rsa.dp = store_put(c, k->dp, k->dplen);
        ct->rsa.dq = store_put(c, k->dq, k->dqlen);
        ct->rsa.iq = store_put(c, k->iq, k->iqlen);
        return ct->rsa.iq ? NULL : "TLS store full (raise RP_TLS_STORE_BYTES)";
    }
    if (ct->key_type == BR_KEYTYPE_EC) {
        const br_ec_private_key *k = br_skey_decoder_get_ec(&s->sk);
        if (k->curve != BR_EC_secp256r1 && k->curve != BR_EC_secp384r1)
            return "EC keys must be P-256 or P-384";
        ct->ec = *k;
        ct->ec.x = store_put(c, k->x, k->xlen);
        return ct->ec.x ? NULL : "TLS store full (raise RP_TLS_STORE_BYTES)";
    }
    return "unsupported private key type";
}

static size_t
strip_zeros(const unsigned char **p, size_t n)
{
    while (n && **p == 0)
        (*p)++, n--;
    return n;
}

/* The key must be the one the leaf certificate names. */
static const char *
tls_key_matches(rp_tls_cert *ct, tls_scratch *s)
{
    const br_x509_pkey *pk;
    br_x509_decoder_init(&s->xd, NULL, NULL);
    br_x509_decoder_push(&s->xd, ct->chain[0].data, ct->chain[0].data_len);
    if ((pk = br_x509_decoder_get_pkey(&s->xd)) == NULL)
        return "cannot decode the certificate";
    ct->issuer_key_type = br_x509_decoder_get_signer_key_type(&s->xd);
    if ((int)pk->key_type != ct->key_type)
        return "key does not match the certificate";
    if (ct->key_type == BR_KEYTYPE_EC) {
        br_ec_public_key pub;
        if (!br_ec_compute_pub(br_ec_get_default(), &pub, s->pub, &ct->ec) ||
            pub.curve != pk->key.ec.curve || pub.qlen != pk->key.ec.qlen ||
            memcmp(pub.q, pk->key.ec.q, pub.qlen) != 0)
            return "key does not match the certificate";
    } else {
        br_rsa_compute_modulus mod = br_rsa_compute_modulus_get_default();
        const unsigned char *a = s->mod, *b = pk->key.rsa.n;
        size_t na, nb;
        if (mod(NULL, &ct->rsa) > sizeof(s->mod) || (na = mod(s->mod, &ct->rsa)) == 0)
            return "RSA key too large";
        na = strip_zeros(&a, na);
        nb = strip_zeros(&b, pk->key.rsa.nlen);
        if (na != nb || memcmp(a, b, na) != 0)
            return "key does not match the certificate";
    }
    return NULL;
}

#if RP_ENABLE_TLS_DEVICE || RP_ENABLE_TLS_CLIENT_AUTH
static void
dn_append(void *ctx, const void *data, size_t len)
{
    der_sink *d = (der_sink *)ctx;
    if (!d->overflow && !store_put(d->c, data, len))
        d->overflow = 1;
}

/* `client_ca=FILE`: every certificate in it becomes a trust anchor (its
 * subject DN and public key, copied to the store). */
static const char *
tls_ca_load(rp_proxy *p, br_x509_trust_anchor *tas, size_t *ntas, const char *file)
{
    tls_scratch *s = (tls_scratch *)(void *)p->tls[0].ibuf;
    rp_config *c = &p->cfg;
    rp_tls_cert tmp;
    const void *data;
    const char *err;
    size_t len, i;
    memset(&tmp, 0, sizeof(tmp));
    if (rp_port_blob(file, &data, &len) != RP_OK)
        return "cannot read client_ca file";
    if ((err = tls_pem_load(c, &tmp, (const unsigned char *)data, len, s, 0)) != NULL)
        return err;
    if (tmp.chain_len == 0 || tmp.chain_len > RP_TLS_MAX_CAS)
        return "client_ca needs 1 to RP_TLS_MAX_CAS certificates";
    for (i = 0; i < tmp.chain_len; i++) {
        br_x509_trust_anchor *ta = &tas[i];
        const br_x509_pkey *pk;
        size_t dn0 = c->store_used;
        s->sink.c = c, s->sink.overflow = 0;
        br_x509_decoder_init(&s->xd, dn_append, &s->sink);
        br_x509_decoder_push(&s->xd, tmp.chain[i].data, tmp.chain[i].data_len);
        if ((pk = br_x509_decoder_get_pkey(&s->xd)) == NULL || s->sink.overflow)
            return "cannot decode a client_ca certificate";
        ta->dn.data = c->store + dn0;
        ta->dn.len = c->store_used - dn0;
        ta->flags = BR_X509_TA_CA;
        ta->pkey = *pk;
        if (pk->key_type == BR_KEYTYPE_RSA) {
            ta->pkey.key.rsa.n = store_put(c, pk->key.rsa.n, pk->key.rsa.nlen);
            ta->pkey.key.rsa.e = store_put(c, pk->key.rsa.e, pk->key.rsa.elen);
            if (!ta->pkey.key.rsa.n || !ta->pkey.key.rsa.e)
                return "TLS store full (raise RP_TLS_STORE_BYTES)";
        } else if ((ta->pkey.key.ec.q = store_put(c, pk->key.ec.q, pk->key.ec.qlen)) == NULL) {
            return "TLS store full (raise RP_TLS_STORE_BYTES)";
        }
    }
    *ntas = tmp.chain_len;
    return NULL;
}
#endif

/* Load `file` (cert chain) and `keyfile` into ct. */
static const char *
tls_cert_load(rp_proxy *p, rp_tls_cert *ct, const char *file, const char *keyfile)
{
    tls_scratch *s = (tls_scratch *)(void *)p->tls[0].ibuf;
    const void *data;
    size_t len;
    const char *err;
    memset(ct, 0, sizeof(*ct));
    if (rp_port_blob(file, &data, &len) != RP_OK)
        return "cannot read certificate file";
    if ((err = tls_pem_load(&p->cfg, ct, (const unsigned char *)data, len, s, 0)) != NULL)
        return err;
    if (ct->chain_len == 0)
        return "no CERTIFICATE in the certificate file";
    if (rp_port_blob(keyfile, &data, &len) != RP_OK)
        return "cannot read key file";
    s->keylen = 0;
    if ((err = tls_pem_load(&p->cfg, ct, (const unsigned char *)data, len, s, 1)) != NULL)
        return err;
    if (s->keylen == 0)
        return "no PRIVATE KEY in the key file";
    if ((err = tls_key_take(&p->cfg, ct, s)) != NULL)
        return err;
    err = tls_key_matches(ct, s);
    memset(s, 0, sizeof(*s)); /* no key material left in the scratch */
    return err;
}
#endif /* RP_ENABLE_TLS && RP_ENABLE_CONFIG_TEXT */

/* ==== [6] Configuration language ====
 * One directive per line, words separated by blanks, options as key=value,
 * `#` to the end of the line is a comment.  Strings the tables keep are
 * copied into cfg->str so the text can go away.  Every error names its line
 * and stops the parse. */

#if RP_ENABLE_CONFIG_TEXT
#define CFG_MAX_WORDS 16

typedef struct {
    rp_proxy *p;
    rp_cfg_error *err;
    int line;
    int pool_line[RP_MAX_POOLS]; /* where each pool was defined */
} cfg_ctx;

static int
cfg_fail(cfg_ctx *x, const char *msg, rp_str arg)
{
    wbuf w;
    w.p = x->err->msg, w.n = 0, w.cap = sizeof(x->err->msg) - 1, w.full = 0;
    w_put(&w, msg, strlen(msg));
    if (arg.n) {
        w_put(&w, S(" '"));
        w_put(&w, arg.p, RP_MIN(arg.n, (size_t)40));
        w_put(&w, S("'"));
    }
    x->err->msg[w.n] = 0;
    x->err->line = x->line;
    return RP_ECONFIG;
}

/* An address the config cannot take (rc from rp_addr_parse): an IPv6 one
 * in a build without IPv6 says so. */
static int
cfg_addr_fail(cfg_ctx *x, int rc, const char *msg, rp_str arg)
{
    return cfg_fail(x, rc == RP_ENOTIMPL ? "IPv6 not compiled in (RP_ENABLE_IPV6=0)" : msg, arg);
}

static const char *
cfg_str(cfg_ctx *x, rp_str s)
{
    rp_config *c = &x->p->cfg;
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

static int
opt_num(cfg_ctx *x, rp_str key, rp_str val, int64_t lo, int64_t hi, uint32_t *out)
{
    int64_t v = parse_dec(val);
    if (v < lo || v > hi)
        return cfg_fail(x, "value out of range for", key);
    *out = (uint32_t)v;
    return RP_OK;
}

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
        if (val.n && opt_num(x, key, val, 1, 65535, &v) != RP_OK)
            return RP_ECONFIG;
        l->redirect = 1;
        l->redirect_port = val.n ? (uint16_t)v : 0;
    } else {
        return cfg_fail(x, "unknown listen option", word);
    }
    return RP_OK;
}

static int
cfg_listen(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_listener_cfg *l;
    int64_t port;
    int i, rc;
    if (n < 2)
        return cfg_fail(x, "listen needs [ADDR:]PORT", w[0]);
    if (c->nlisteners == RP_MAX_LISTENERS)
        return cfg_fail(x, "too many listen lines (RP_MAX_LISTENERS)", w[0]);
    l = &c->listeners[c->nlisteners];
    memset(l, 0, sizeof(*l));
    if ((port = parse_dec(w[1])) >= 0) {
        l->addr.family = 4;
        l->addr.port = (uint16_t)port;
        if (port < 1 || port > 65535)
            return cfg_fail(x, "bad port", w[1]);
    } else if ((rc = rp_addr_parse(&l->addr, w[1].p, w[1].n, 1)) != RP_OK) {
        return cfg_addr_fail(x, rc, "bad listen address", w[1]);
    }
    for (i = 2; i < n; i++)
        if (cfg_listen_opt(x, l, w[i]) != RP_OK)
            return RP_ECONFIG;
    if (l->tls && l->redirect)
        return cfg_fail(x, "redirect_https belongs on a plain listener", w[1]);
#if !RP_ENABLE_TLS
    if (l->tls)
        return cfg_fail(x, "TLS not compiled in (build with RP_ENABLE_TLS=1)", w[1]);
#endif
    c->nlisteners++;
    return RP_OK;
}

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
    return s.n > 0 && s.n <= 32;
}

static int
cfg_pool(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_pool *pl;
    uint32_t v = 0;
    int i;
    if (n < 2 || !cfg_name_ok(w[1]))
        return cfg_fail(x, "pool needs a NAME of letters, digits, - _ .", n < 2 ? w[0] : w[1]);
    if (cfg_pool_find(c, w[1]) >= 0)
        return cfg_fail(x, "duplicate pool", w[1]);
    if (c->npools == RP_MAX_POOLS)
        return cfg_fail(x, "too many pools (RP_MAX_POOLS)", w[1]);
    pl = &c->pools[c->npools];
    pl->retries = RP_DEFAULT_RETRIES;
    for (i = 2; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("balance")) && str_ieq(val, S("wrr")))
            pl->balance = RP_BALANCE_WRR;
        else if (str_ieq(key, S("balance")) && str_ieq(val, S("leastconn")))
            pl->balance = RP_BALANCE_LEASTCONN;
        else if (str_ieq(key, S("balance")))
            return cfg_fail(x, "balance must be wrr or leastconn", val);
        else if (str_ieq(key, S("retries"))) {
            if (opt_num(x, key, val, 0, 10, &v) != RP_OK)
                return RP_ECONFIG;
            pl->retries = (uint8_t)v;
        } else
            return cfg_fail(x, "unknown pool option", w[i]);
    }
    if ((pl->name = cfg_str(x, w[1])) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[1]);
    x->pool_line[c->npools++] = x->line;
    return RP_OK;
}

/* `tls`, `ca=FILE`, `sni=NAME`, `verify=on|off` on a device line. */
static int
cfg_device_tls_opt(cfg_ctx *x, rp_device *d, rp_str word, rp_str key, rp_str val)
{
#if RP_ENABLE_TLS
#if RP_ENABLE_TLS_DEVICE
    char f[256];
    const char *err;
#else
    if (str_ieq(key, S("tls")) || str_ieq(key, S("ca")) || str_ieq(key, S("sni")) ||
        str_ieq(key, S("verify")))
        return cfg_fail(x, "TLS to devices not compiled in (RP_ENABLE_TLS_DEVICE=0)", word);
#endif
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
        if ((err = tls_ca_load(x->p, d->tas, &d->ntas, f)) != NULL)
            return cfg_fail(x, err, val);
#endif
    } else {
        return cfg_fail(x, "unknown device option", word);
    }
    return RP_OK;
#else
    (void)d, (void)key, (void)val;
    return cfg_fail(x, "unknown device option (TLS options need RP_ENABLE_TLS=1)", word);
#endif
}

static int
cfg_device_opt(cfg_ctx *x, rp_device *d, rp_str word)
{
    rp_str val, key = opt_key(word, &val);
    uint32_t v = 0;
    if (str_ieq(key, S("backup")) && val.n == 0 && word.n == key.n) {
        d->backup = 1;
        return RP_OK;
    }
    if (str_ieq(key, S("weight"))) {
        if (opt_num(x, key, val, 0, 1000, &v) != RP_OK)
            return RP_ECONFIG;
        d->weight = (uint16_t)v;
    } else if (str_ieq(key, S("max_fails"))) {
        if (opt_num(x, key, val, 0, 1000, &v) != RP_OK)
            return RP_ECONFIG;
        d->max_fails = (uint16_t)v;
    } else if (str_ieq(key, S("fail_timeout"))) {
        if (opt_num(x, key, val, 0, 86400, &v) != RP_OK)
            return RP_ECONFIG;
        d->fail_timeout_ms = v * 1000;
    } else {
        return cfg_device_tls_opt(x, d, word, key, val);
    }
    return RP_OK;
}

static int
cfg_device(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_device *d;
    rp_pool *pl;
    int i, pool, rc;
    if (n < 3)
        return cfg_fail(x, "device needs POOL HOST:PORT", w[0]);
    if ((pool = cfg_pool_find(c, w[1])) < 0)
        return cfg_fail(x, "undefined pool", w[1]);
    pl = &c->pools[pool];
    if (c->ndevices == RP_MAX_DEVICES || pl->ndevices == RP_MAX_DEVICES)
        return cfg_fail(x, "too many devices (RP_MAX_DEVICES)", w[2]);
    d = &c->devices[c->ndevices];
    memset(d, 0, sizeof(*d));
    if ((rc = rp_addr_parse(&d->addr, w[2].p, w[2].n, 1)) != RP_OK)
        return cfg_addr_fail(x, rc, "bad device address (want IP:PORT)", w[2]);
    d->pool = (uint8_t)pool;
    d->weight = 1;
    d->max_fails = 1;
    d->fail_timeout_ms = 10000;
    for (i = 3; i < n; i++)
        if (cfg_device_opt(x, d, w[i]) != RP_OK)
            return RP_ECONFIG;
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

static int
cfg_route(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    rp_route *r;
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
                return cfg_fail(x, "undefined pool", val);
        } else if (str_ieq(key, S("cache")) && (str_ieq(val, S("on")) || str_ieq(val, S("off")))) {
            r->cache = str_ieq(val, S("on"));
        } else if (str_ieq(key, S("host")) && val.n && check_host(val) == RP_OK) {
            dst = &r->host;
        } else if (str_ieq(key, S("path")) && val.n && val.p[0] == '/') {
            dst = &r->path;
        } else if (str_ieq(key, S("path")) || str_ieq(key, S("host")) ||
                   str_ieq(key, S("cache"))) {
            return cfg_fail(x, "bad value (path must start with '/', cache on|off)", w[i]);
        } else {
            return cfg_fail(x, "unknown route option", w[i]);
        }
        if (dst && (*dst = cfg_str(x, val)) == NULL)
            return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
    }
    if (pool < 0)
        return cfg_fail(x, "route needs pool=NAME", w[0]);
    r->pool = (uint8_t)pool;
    c->nroutes++;
    return RP_OK;
}

static int
cfg_timeout(cfg_ctx *x, rp_str *w, int n)
{
    static const struct {
        const char *name;
        size_t len, off;
    } keys[] = {
        {"client_header", 13, offsetof(rp_config, t_client_header)},
        {"client_idle", 11, offsetof(rp_config, t_client_idle)},
        {"connect", 7, offsetof(rp_config, t_connect)},
        {"device", 6, offsetof(rp_config, t_device)},
        {"device_idle", 11, offsetof(rp_config, t_device_idle)},
        {"handshake", 9, offsetof(rp_config, t_handshake)},
    };
    int i;
    size_t k;
    if (n < 2)
        return cfg_fail(x, "timeout needs NAME=MS", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        for (k = 0; k < RP_COUNT(keys); k++)
            if (str_ieq(key, keys[k].name, keys[k].len))
                break;
        if (k == RP_COUNT(keys))
            return cfg_fail(x, "unknown timeout", w[i]);
        if (opt_num(x, key, val, 1, 86400000,
                    (uint32_t *)((char *)&x->p->cfg + keys[k].off)) != RP_OK)
            return RP_ECONFIG;
    }
    return RP_OK;
}

static int
cfg_via(cfg_ctx *x, rp_str *w, int n)
{
    if (n != 2 || !cfg_name_ok(w[1]))
        return cfg_fail(x, "via needs one NAME of letters, digits, - _ .", w[n - 1]);
    if ((x->p->cfg.via = cfg_str(x, w[1])) == NULL)
        return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", w[1]);
    return RP_OK;
}

#if RP_ENABLE_CACHE
/* on|off into *out; RP_ECONFIG otherwise. */
static int
opt_onoff(cfg_ctx *x, rp_str word, rp_str val, uint8_t *out)
{
    if (!str_ieq(val, S("on")) && !str_ieq(val, S("off")))
        return cfg_fail(x, "expected on or off", word);
    *out = str_ieq(val, S("on"));
    return RP_OK;
}

static int
cfg_cache(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    int i, rc;
    if (n < 2)
        return cfg_fail(x, "cache needs max_object=, heuristic=, ignore_client_nocache= "
                           "or lock_timeout=", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("max_object")))
            rc = opt_num(x, key, val, 1, RP_CACHE_BYTES, &c->cache_max_object);
        else if (str_ieq(key, S("lock_timeout")))
            rc = opt_num(x, key, val, 0, 600000, &c->cache_lock_ms);
        else if (str_ieq(key, S("heuristic")))
            rc = opt_onoff(x, w[i], val, &c->cache_heuristic);
        else if (str_ieq(key, S("ignore_client_nocache")))
            rc = opt_onoff(x, w[i], val, &c->cache_ignore_nocache);
        else
            return cfg_fail(x, "unknown cache option", w[i]);
        if (rc != RP_OK)
            return RP_ECONFIG;
    }
    return RP_OK;
}
#endif

/* A path for probes and the status page: "/" then visible ASCII. */
static int
cfg_path_ok(rp_str v)
{
    size_t i;
    if (v.n == 0 || v.p[0] != '/' || v.n > 200)
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
    uint32_t v;
    if (str_ieq(key, S("path"))) {
        if (!cfg_path_ok(val))
            return cfg_fail(x, "health path must start with '/'", word);
        if ((pl->health_path = cfg_str(x, val)) == NULL)
            return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
        return RP_OK;
    }
    if (str_ieq(key, S("interval")))
        return opt_num(x, key, val, 100, 86400000, &pl->interval_ms);
    if (str_ieq(key, S("timeout")))
        return opt_num(x, key, val, 10, 600000, &pl->probe_timeout_ms);
    if (str_ieq(key, S("rise")) || str_ieq(key, S("fall"))) {
        if (opt_num(x, key, val, 1, 100, &v) != RP_OK)
            return RP_ECONFIG;
        *(str_ieq(key, S("rise")) ? &pl->rise : &pl->fall) = (uint8_t)v;
        return RP_OK;
    }
    if (str_ieq(key, S("expect"))) {
        if (opt_num(x, key, val, 100, 599, &v) != RP_OK)
            return RP_ECONFIG;
        pl->expect = (uint16_t)v;
        return RP_OK;
    }
    return cfg_fail(x, "unknown health option", word);
}

static int
cfg_health(cfg_ctx *x, rp_str *w, int n)
{
    rp_pool *pl;
    int i, pool;
    if (n < 2 || (pool = cfg_pool_find(&x->p->cfg, w[1])) < 0)
        return cfg_fail(x, "health needs a defined POOL", n < 2 ? w[0] : w[1]);
    pl = &x->p->cfg.pools[pool];
    if (pl->health)
        return cfg_fail(x, "duplicate health line for pool", w[1]);
    pl->health = 1;
    pl->health_path = "/";
    pl->interval_ms = 5000;
    pl->probe_timeout_ms = 2000;
    pl->rise = 2;
    pl->fall = 3;
    for (i = 2; i < n; i++)
        if (cfg_health_opt(x, pl, w[i]) != RP_OK)
            return RP_ECONFIG;
    return RP_OK;
}

#if RP_ENABLE_STATUS
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

static int
cfg_status(cfg_ctx *x, rp_str *w, int n)
{
    rp_config *c = &x->p->cfg;
    int i;
    if (c->status_path)
        return cfg_fail(x, "duplicate status line", w[0]);
    for (i = 1; i < n; i++) {
        rp_str val, key = opt_key(w[i], &val);
        if (str_ieq(key, S("path"))) {
            if (!cfg_path_ok(val))
                return cfg_fail(x, "status path must start with '/'", w[i]);
            if ((c->status_path = cfg_str(x, val)) == NULL)
                return cfg_fail(x, "config strings exceed RP_CFG_STR_BYTES", val);
        } else if (str_ieq(key, S("allow"))) {
            if (c->nallow == RP_COUNT(c->allow))
                return cfg_fail(x, "at most 4 allow= networks", w[i]);
            int rc = cidr_parse(val, &c->allow[c->nallow].net, &c->allow[c->nallow].bits);
            if (rc != RP_OK)
                return cfg_addr_fail(x, rc, "bad allow network (want ADDR[/BITS])", w[i]);
            c->nallow++;
        } else {
            return cfg_fail(x, "unknown status option", w[i]);
        }
    }
    if (!c->status_path)
        return cfg_fail(x, "status needs path=/PATH", w[0]);
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
    rp_config *c = &x->p->cfg;
    rp_str cert = {0, 0}, key = {0, 0}, sni = {0, 0}, ca = {0, 0}, hdr = {0, 0};
    char cf[256], kf[256];
    int auth = -1;
    rp_tls_cert *ct;
    const char *err;
    int i;
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
            return cfg_fail(x, "unknown or bad tls option", w[i]);
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
    if ((err = tls_cert_load(x->p, ct, cf, kf)) != NULL)
        return cfg_fail(x, err, cert);
    if (ca.n) {
#if RP_ENABLE_TLS_CLIENT_AUTH
        memcpy(cf, ca.p, ca.n), cf[ca.n] = 0;
        if ((err = tls_ca_load(x->p, ct->tas, &ct->ntas, cf)) != NULL)
            return cfg_fail(x, err, ca);
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
        {"tls", 3, cfg_tls},
#if RP_ENABLE_CACHE
        {"cache", 5, cfg_cache},
#endif
    };
    rp_str w[CFG_MAX_WORDS];
    int nw = 0;
    size_t i = 0, k;
    while (i < n && s[i] != '#') {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
            i++;
            continue;
        }
        if (nw == CFG_MAX_WORDS)
            return cfg_fail(x, "too many words on one line", w[0]);
        w[nw].p = s + i;
        while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '#')
            i++;
        w[nw].n = (size_t)(s + i - w[nw].p);
        nw++;
    }
    if (nw == 0)
        return RP_OK;
    for (k = 0; k < RP_COUNT(dirs); k++)
        if (w[0].n == dirs[k].len && memcmp(w[0].p, dirs[k].name, dirs[k].len) == 0)
            return dirs[k].fn(x, w, nw);
    return cfg_fail(x, "unknown directive", w[0]);
}

/* Whole-config checks once every line is read. */
static int
cfg_finish(cfg_ctx *x)
{
    rp_config *c = &x->p->cfg;
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
    return RP_OK;
}

int
rp_config_parse(rp_proxy *p, const char *text, size_t len, rp_cfg_error *err)
{
    cfg_ctx x;
    size_t i = 0;
    x.p = p, x.err = err, x.line = 0;
    err->line = 0, err->msg[0] = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        x.line++;
        if (memchr(text + i, 0, j - i) != NULL)
            return cfg_fail(&x, "NUL byte in config", (rp_str){0, 0});
        if (cfg_line(&x, text + i, j - i) != RP_OK)
            return RP_ECONFIG;
        i = j + 1;
    }
    if (x.line == 0)
        x.line = 1;
    return cfg_finish(&x);
}
#endif /* RP_ENABLE_CONFIG_TEXT */

/* ==== [7] Router and balancer ====
 * A route matches the request's host (case-insensitive, port ignored; a
 * leading "*." matches any subdomain) and/or a path prefix; the first match
 * wins.  A pool picks a device by nginx's smooth weighted round-robin: every
 * eligible device adds its effective weight to its current weight, the
 * highest wins and gives the total back -- weights 5,1,1 give a a b a c a a.
 * Backups are considered only when no primary is eligible. */

static rp_str
host_only(rp_str h)
{
    size_t i;
    if (h.n && h.p[0] == '[') {
        for (i = 0; i < h.n && h.p[i] != ']'; i++)
            ;
        h.n = i < h.n ? i + 1 : h.n;
        return h;
    }
    for (i = 0; i < h.n && h.p[i] != ':'; i++)
        ;
    h.n = i;
    return h;
}

static int
route_host_match(const char *pat, rp_str host)
{
    rp_str ps;
    ps.p = pat, ps.n = strlen(pat);
    if (ps.n > 2 && pat[0] == '*' && pat[1] == '.') {
        rp_str tail;
        ps.p++, ps.n--; /* ".example.com" */
        if (host.n <= ps.n)
            return 0;
        tail.p = host.p + host.n - ps.n, tail.n = ps.n;
        return str_ieq2(tail, ps);
    }
    return str_ieq2(ps, host);
}

static int
route_match(const rp_config *c, rp_str host, rp_str path)
{
    int i;
    host = host_only(host);
    for (i = 0; i < c->nroutes; i++) {
        const rp_route *r = &c->routes[i];
        size_t n = r->path ? strlen(r->path) : 0;
        if (r->host && !route_host_match(r->host, host))
            continue;
        if (r->path && (path.n < n || memcmp(path.p, r->path, n) != 0))
            continue;
        return i;
    }
    return -1;
}

/* Up: not taken out by passive failures nor by active health. */
static int
device_is_up(const rp_proxy *p, const rp_device *d)
{
    return !d->hc_down && d->down_until <= p->now;
}

static int
device_eligible(const rp_proxy *p, const rp_device *d, uint32_t tried, int idx)
{
    return d->weight > 0 && !(tried >> idx & 1) && (p->pick_any || device_is_up(p, d));
}

/* a/wa < b/wb without division: weighted least-connections order.  Both
 * factors are 16-bit, so each product fits in 32 bits. */
static int
lc_cmp(const rp_device *a, const rp_device *b)
{
    uint32_t x = (uint32_t)a->active * b->weight, y = (uint32_t)b->active * a->weight;
    return x < y ? -1 : x > y;
}

/* Pool member i when it takes part in this tier's pick, else NULL. */
static rp_device *
tier_member(rp_proxy *p, const rp_pool *pl, int i, uint32_t tried, int backup)
{
    rp_device *d = &p->cfg.devices[pl->devices[i]];
    return d->backup == backup && device_eligible(p, d, tried, pl->devices[i]) ? d : NULL;
}

/* One pick among primaries (backup == 0) or backups (backup == 1).  For
 * leastconn only the devices tied at the lowest active/weight take part in
 * the smooth-WRR round, so ties rotate by weight (nginx's least_conn). */
static int
pool_pick_tier(rp_proxy *p, const rp_pool *pl, uint32_t tried, int backup)
{
    rp_device *d, *best = NULL, *least = NULL;
    int32_t total = 0;
    int i, pick = -1;
    for (i = 0; i < pl->ndevices && pl->balance == RP_BALANCE_LEASTCONN; i++)
        if ((d = tier_member(p, pl, i, tried, backup)) && (!least || lc_cmp(d, least) < 0))
            least = d;
    for (i = 0; i < pl->ndevices; i++) {
        if (!(d = tier_member(p, pl, i, tried, backup)) || (least && lc_cmp(d, least) != 0))
            continue;
        d->current += d->effective;
        total += d->effective;
        if (d->effective < d->weight)
            d->effective++; /* recovery after failures: one step per pick */
        if (!best || d->current > best->current)
            best = d, pick = pl->devices[i];
    }
    if (best)
        best->current -= total;
    return pick;
}

/* Primaries, then backups; when every device is marked down, try them
 * anyway rather than refuse (nginx does the same for a one-server group):
 * a gateway with one camera must not answer 503 for fail_timeout after a
 * single hiccup. */
static int
pool_pick(rp_proxy *p, const rp_pool *pl, uint32_t tried)
{
    int pick = -1, pass;
    for (pass = 0; pass < 4 && pick < 0; pass++) { /* primaries, backups; again, any */
        p->pick_any = (uint8_t)(pass >> 1);
        pick = pool_pick_tier(p, pl, tried, pass & 1);
    }
    p->pick_any = 0;
    return pick;
}

/* Passive health (nginx's max_fails/fail_timeout): failures closer together
 * than fail_timeout add up; max_fails of them take the device out for
 * fail_timeout, after which the next request probes it (one more failure
 * takes it out again).  Each failure also lowers the effective weight by
 * weight/max_fails, so a recovered device gets its share back gradually.
 * A success clears the count. */
static void
device_fail(rp_proxy *p, int idx, int err)
{
    rp_device *d = &p->cfg.devices[idx];
    uint16_t mf = d->max_fails ? d->max_fails : 1;
    d->failures++;
    d->last_err = err;
    p->stats.device_errors++;
    if (d->fails < d->max_fails && d->checked + d->fail_timeout_ms < p->now)
        d->fails = 0; /* earlier failures are out of the window */
    d->checked = p->now;
    d->effective -= d->weight / mf ? d->weight / mf : 1;
    if (d->effective < 0)
        d->effective = 0;
    if (d->max_fails && ++d->fails >= d->max_fails) {
        char a[48];
        d->down_until = p->now + d->fail_timeout_ms;
        rp_addr_format(&d->addr, a, sizeof(a));
        RP_LOG(RP_LOG_WARN, ("device %s:%u down for %u ms: %s", a, d->addr.port,
                             (unsigned)d->fail_timeout_ms, rp_strerror(err)));
        (void)a;
    }
}

static RP_NOINLINE void
device_ok(rp_proxy *p, int idx)
{
    rp_device *d = &p->cfg.devices[idx];
    d->fails = 0;
    d->down_until = 0;
    d->last_ok = p->now;
}

/* ==== [8] Connections: slots, interest, timers, closing ====
 * Client and device connections share one struct and live in two fixed
 * arrays with free lists.  Interest (read/write) is computed from buffer
 * levels after every turn and handed to the port only when it changed.
 * Each connection has at most one timer; its kind follows the state:
 *
 *   state          waits for                     timer         owns
 *   CS_HEAD        a request head                head / idle   in: head
 *   CS_FWD         body bytes, the response      client        in, out
 *   CS_TUNNEL      bytes either way              tunnel        in, out
 *   CS_CLOSING     out drained, then peer FIN    client/linger out
 *   DS_CONNECTING  the TCP connect               connect       out: head
 *   DS_BUSY        response bytes                device        in, out
 *   DS_IDLE        reuse (or the device's FIN)   device_idle   --
 *   DS_PROBE       a health probe's status line  probe timeout in, out
 *   CS_LOCAL       room to write the status page client        out
 *   CS_CACHE       room to send a hit's body     client        out, entry
 *   CS_CWAIT       another request's cache fill  cache lock    in: head
 */

typedef struct rp_conn rp_conn;

enum { K_LISTENER = 1, K_CLIENT, K_DEVICE };
enum {
    CS_FREE, CS_HEAD, CS_FWD, CS_TUNNEL, CS_CLOSING, CS_LOCAL, CS_CACHE, CS_CWAIT,
    DS_CONNECTING, DS_BUSY, DS_IDLE, DS_PROBE
};
enum { M_NONE, M_LENGTH, M_CHUNKED, M_DECHUNK, M_CLOSE, M_TUNNEL };
enum {
    T_NONE, T_HEAD, T_IDLE, T_CLIENT, T_TUNNEL, T_LINGER,
    T_CONNECT, T_DEVICE, T_DIDLE, T_PROBE, T_HANDSHAKE, T_CWAIT
};

/* Bytes of a cache hit's body still to send from the arena. */
#if RP_ENABLE_CACHE
#define HIT_LEFT(c) ((c)->cleft)
#else
#define HIT_LEFT(c) 0
#endif

#define F_EOF (1u << 0)       /* peer sent FIN */
#define F_DEAD (1u << 1)      /* socket failed (reset, send error) */
#define F_WBLOCK (1u << 2)    /* last send would block */
#define F_WSHUT (1u << 3)     /* we sent FIN */
#define F_KEEP (1u << 4)      /* keep the connection after this exchange */
#define F_REQ_DONE (1u << 5)  /* request fully moved to the device */
#define F_RESP_HEAD (1u << 6) /* final response head queued to the client */
#define F_RESP_DONE (1u << 7) /* response fully queued to the client */
#define F_HOLD (1u << 8)      /* request head still in `in`: retry possible */
#define F_REUSED (1u << 9)    /* device connection came from the idle pool */
#define F_GOT (1u << 10)      /* device sent bytes in this exchange */
#define F_HEAD (1u << 11)     /* request method is HEAD */
#define F_HTTP10 (1u << 12)   /* client speaks HTTP/1.0 */
#define F_UPG (1u << 13)      /* client asked for an Upgrade */
#define F_IDEMP (1u << 14)    /* method is idempotent (RFC 9110 §9.2.2) */
#define F_PROGRESS (1u << 15) /* bytes moved since the timer was armed */
#define F_SERVED (1u << 16)   /* a request was answered on this connection */
#define F_PCONN (1u << 17)    /* health probe still connecting */
#define F_PROM (1u << 18)     /* status page in Prometheus format */
#define F_HSDONE (1u << 19)   /* TLS handshake finished */
#define F_TLSBYE (1u << 20)   /* TLS close_notify queued */
#define F_GET (1u << 21)      /* request method is GET */
#define F_SAFE (1u << 22)     /* method is safe (RFC 9110 §9.2.1) */
#if RP_ENABLE_CACHE
/* The one forward reference: a freed client lets go of its cache entries
 * (section 11) whichever path freed it. */
static void cache_release(rp_proxy *p, rp_conn *c);
#endif

/* Bytes queued to the client for this request, for the access log. */
#if RP_ENABLE_ACCESS_LOG
#define SENT(c, n) ((c)->sent += (uint64_t)(n))
#else
#define SENT(c, n) ((void)(c), (void)(n))
#endif

#define F_EXCHANGE (F_REQ_DONE | F_RESP_HEAD | F_RESP_DONE | F_HOLD | F_HEAD | \
                    F_HTTP10 | F_UPG | F_IDEMP | F_KEEP | F_GET | F_SAFE)

#if RP_ENABLE_CACHE
/* Step a hit's arena reader past n sent bytes. */
static RP_NOINLINE void
hit_advance(rp_proxy *p, rp_conn *c, size_t n)
{
    while (n) {
        size_t k = RP_MIN(n, (size_t)(RP_CACHE_BLOCK - c->coff));
        c->coff = (uint16_t)(c->coff + k);
        c->cleft -= (uint32_t)k;
        n -= k;
        if (c->coff == RP_CACHE_BLOCK)
            c->cblk = p->cache.blk_next[c->cblk], c->coff = 0;
    }
}

#endif

/* A recv of up to `want` bytes returned n: readiness, progress, counters,
 * FIN and errors.  Returns 1 when something happened (not RP_EAGAIN). */
static int
recv_done(rp_proxy *p, rp_conn *c, long n, size_t want)
{
    if (n > 0) {
        c->flags |= F_PROGRESS;
        if ((size_t)n < want)
            c->ready &= ~RP_EV_READ;
        if (c->kind == K_CLIENT)
            p->stats.bytes_in += (uint64_t)n;
        return 1;
    }
    c->ready &= ~RP_EV_READ;
    if (n == RP_EAGAIN)
        return 0;
    if (n < 0) {
        c->flags |= F_DEAD;
        if (!c->err)
            c->err = (int16_t)n;
    }
    c->flags |= F_EOF; /* for TLS: FIN without close_notify */
    return 1;
}

/* A send of len bytes returned n: a short send means the socket is full.
 * Returns 1 when something happened (not RP_EAGAIN). */
static int
send_done(rp_proxy *p, rp_conn *c, long n, size_t len)
{
    if (n == RP_EAGAIN || (n >= 0 && (size_t)n < len)) {
        c->flags |= F_WBLOCK;
        c->ready &= ~RP_EV_WRITE;
    } else {
        c->flags &= ~F_WBLOCK;
    }
    if (n == RP_EAGAIN)
        return 0;
    if (n < 0) {
        c->flags |= F_DEAD | F_EOF;
        if (!c->err)
            c->err = (int16_t)n;
        return 1;
    }
    c->flags |= F_PROGRESS;
    if (c->kind == K_CLIENT)
        p->stats.bytes_out += (uint64_t)n;
    return 1;
}

#if RP_ENABLE_TLS
/* TLS, pumped (BearSSL's engine API, never br_sslio): each turn moves
 * records socket -> engine and engine -> socket, plaintext engine -> `in`
 * and `out` -> engine, each `_buf` -> copy -> `_ack`, until nothing moves.
 * The engine's input buffer is the TLS connection's receive buffer, so a
 * full `in` stops record reading: backpressure as for plain TCP.  A slot
 * is configured on first use; every connection re-seeds it from the port's
 * generator and resets it with the listener's profile. */

static const uint16_t tls_suites_modern[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
#if RP_ENABLE_TLS_COMPAT
    /* tls_profile=compat adds, for old clients: CBC with ECDHE, then RSA key exchange */
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
    BR_TLS_RSA_WITH_AES_128_GCM_SHA256, BR_TLS_RSA_WITH_AES_128_CBC_SHA256,
    BR_TLS_RSA_WITH_AES_128_CBC_SHA,
#endif
};
#define TLS_MODERN_SUITES 6
#if RP_ENABLE_TLS_COMPAT
#define TLS_COMPAT(l) ((l)->compat)
#else
#define TLS_COMPAT(l) ((void)(l), 0) /* the config refuses tls_profile=compat */
#endif

static const char *const tls_alpn[] = {"http/1.1"};

static const br_ssl_server_policy_class tls_chooser_class;

/* mTLS for the chosen certificate: ask for a client certificate chaining
 * to its client_ca, verified by BearSSL's minimal X.509 engine, which also
 * extracts the subject CN for client_cert_header. */
static void
tls_client_auth(struct rp_tls *t, br_ssl_server_context *sc, const rp_tls_cert *ct)
{
#if RP_ENABLE_TLS_CLIENT_AUTH
    static const unsigned char cn_oid[] = {3, 0x55, 0x04, 0x03};
    t->cn[0] = 0;
    t->cn_elt.status = 0;
    if (!ct->ntas) {
        br_ssl_server_set_trust_anchor_names_alt(sc, NULL, 0);
        return;
    }
    br_x509_minimal_init(&t->xc.min, &br_sha256_vtable, ct->tas, ct->ntas);
    br_x509_minimal_set_hash(&t->xc.min, br_sha1_ID, &br_sha1_vtable);
    br_x509_minimal_set_hash(&t->xc.min, br_sha256_ID, &br_sha256_vtable);
    br_x509_minimal_set_hash(&t->xc.min, br_sha384_ID, &br_sha384_vtable);
    br_x509_minimal_set_hash(&t->xc.min, br_sha512_ID, &br_sha512_vtable);
    br_x509_minimal_set_rsa(&t->xc.min, br_rsa_pkcs1_vrfy_get_default());
    br_x509_minimal_set_ecdsa(&t->xc.min, br_ec_get_default(), br_ecdsa_vrfy_asn1_get_default());
    t->cn_elt.oid = cn_oid;
    t->cn_elt.buf = t->cn;
    t->cn_elt.len = sizeof(t->cn);
    br_x509_minimal_set_name_elements(&t->xc.min, &t->cn_elt, 1);
    br_ssl_engine_set_x509(&sc->eng, &t->xc.min.vtable);
    br_ssl_server_set_trust_anchor_names_alt(sc, ct->tas, ct->ntas);
    if (ct->client_auth == 1)
        br_ssl_engine_add_flags(&sc->eng, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
    else
        br_ssl_engine_remove_flags(&sc->eng, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
#else
    (void)t, (void)sc, (void)ct;
#endif
}

/* Pick the certificate by SNI (the first entry is the default) and hand
 * the handshake to BearSSL's single-chain policy for it.  BearSSL passes the
 * context as const; the policy slot it holds is ours to set. */
static int
tls_choose(const br_ssl_server_policy_class **pctx, const br_ssl_server_context *cc,
           br_ssl_server_choices *choices)
{
    struct rp_tls *t = (struct rp_tls *)(void *)((char *)pctx - offsetof(struct rp_tls, chooser));
    br_ssl_server_context *sc = (br_ssl_server_context *)(uintptr_t)cc;
    const rp_config *c = &t->owner->cfg;
    const char *sni = br_ssl_engine_get_server_name(&cc->eng);
    const rp_tls_cert *ct = &c->certs[0];
    unsigned usage = BR_KEYTYPE_SIGN;
#if RP_TLS_MAX_CERTS > 1
    int i;
    for (i = 0; i < c->ncerts && sni && *sni; i++)
        if (c->certs[i].sni && route_host_match(c->certs[i].sni, (rp_str){sni, strlen(sni)})) {
            ct = &c->certs[i];
            break;
        }
#else
    (void)sni; /* one certificate: it answers every name */
#endif
    if (RP_ENABLE_TLS_COMPAT && (br_ssl_engine_get_version(&cc->eng) < BR_TLS12 ||
                                 t->u.sc.eng.suites_num > TLS_MODERN_SUITES))
        usage |= BR_KEYTYPE_KEYX; /* compat: static RSA allowed */
    tls_client_auth(t, sc, ct);
    if (ct->key_type == BR_KEYTYPE_EC)
        br_ssl_server_set_single_ec(sc, ct->chain, ct->chain_len, &ct->ec, usage,
                                    ct->issuer_key_type, &t->owner->tls_ec,
                                    br_ecdsa_sign_asn1_get_default());
    else
        br_ssl_server_set_single_rsa(sc, ct->chain, ct->chain_len, &ct->rsa, usage,
                                     br_rsa_private_get_default(),
                                     br_rsa_pkcs1_sign_get_default());
    return (*sc->policy_vtable)->choose(sc->policy_vtable, cc, choices);
}

static const br_ssl_server_policy_class tls_chooser_class = {
    sizeof(const br_ssl_server_policy_class *), tls_choose, 0, 0};

static int
tls_any_client_auth(const rp_config *c)
{
    int i;
    for (i = 0; i < c->ncerts; i++)
        if (c->certs[i].ntas)
            return 1;
    return 0;
}

static void
tls_slot_setup(rp_proxy *p, struct rp_tls *t)
{
    br_ssl_engine_context *e = &t->u.sc.eng;
    br_ssl_server_zero(&t->u.sc);
#if RP_ENABLE_TLS_COMPAT
    br_ssl_engine_set_hash(e, br_md5_ID, &br_md5_vtable);
    br_ssl_engine_set_hash(e, br_sha1_ID, &br_sha1_vtable);
    br_ssl_engine_set_prf10(e, &br_tls10_prf);
    br_ssl_engine_set_default_aes_cbc(e);
#endif
    br_ssl_engine_set_hash(e, br_sha256_ID, &br_sha256_vtable);
    br_ssl_engine_set_hash(e, br_sha384_ID, &br_sha384_vtable);
    br_ssl_engine_set_prf_sha256(e, &br_tls12_sha256_prf);
    br_ssl_engine_set_prf_sha384(e, &br_tls12_sha384_prf);
    br_ssl_engine_set_default_aes_gcm(e); /* AES-NI + PCLMUL where the CPU has them */
    br_ssl_engine_set_default_chapol(e);
    br_ssl_engine_set_ec(e, &p->tls_ec);
#if RP_ENABLE_TLS_CLIENT_AUTH
    br_ssl_engine_set_default_rsavrfy(e); /* client CertificateVerify */
    br_ssl_engine_set_default_ecdsa(e);
#endif
    br_ssl_engine_set_buffers_bidi(e, t->ibuf, sizeof(t->ibuf), t->obuf, sizeof(t->obuf));
    if (!RP_ENABLE_TLS_CLIENT_AUTH || !tls_any_client_auth(&p->cfg)) /* resuming skips it */
        br_ssl_server_set_cache(&t->u.sc, &p->tls_cache.vtable);
    br_ssl_engine_set_protocol_names(e, (const char **)(uintptr_t)tls_alpn, 1); /* read only */
    br_ssl_engine_add_flags(e, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
    t->chooser = &tls_chooser_class;
    t->owner = p;
    t->ready = 1;
}

/* Fresh entropy from the port for every connection, before its reset. */
static int
tls_seed(br_ssl_engine_context *e)
{
    unsigned char seed[32];
    if (rp_port_random(seed, sizeof(seed)) != RP_OK)
        return 0;
    br_ssl_engine_inject_entropy(e, seed, sizeof(seed));
    memset(seed, 0, sizeof(seed));
    return 1;
}

static struct rp_tls *
tls_slot(rp_proxy *p)
{
    if (p->tls_top)
        return p->tls_stack[--p->tls_top];
    if (p->tls_fresh < RP_MAX_TLS_CONNS)
        return &p->tls[p->tls_fresh++];
    return NULL;
}

#if RP_ENABLE_TLS_DEVICE
/* verify=off toward a device: take the server's key from its first
 * certificate without checking the chain (the link is still encrypted). */
static void
xa_start_chain(const br_x509_class **ctx, const char *server_name)
{
    ((struct rp_x509_any *)(void *)ctx)->first = 1;
    (void)server_name;
}

static void
xa_start_cert(const br_x509_class **ctx, uint32_t length)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(void *)ctx;
    if (x->first)
        br_x509_decoder_init(&x->dec, 0, 0);
    (void)length;
}

static void
xa_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(void *)ctx;
    if (x->first)
        br_x509_decoder_push(&x->dec, buf, len);
}

static void
xa_end_cert(const br_x509_class **ctx)
{
    ((struct rp_x509_any *)(void *)ctx)->first = 0;
}

static unsigned
xa_end_chain(const br_x509_class **ctx)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(void *)ctx;
    return br_x509_decoder_get_pkey(&x->dec) ? 0 : BR_ERR_X509_BAD_SERVER_NAME;
}

static const br_x509_pkey *
xa_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(uintptr_t)ctx;
    if (usages)
        *usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
    return br_x509_decoder_get_pkey(&x->dec);
}

static const br_x509_class x509_any_class = {
    sizeof(struct rp_x509_any), xa_start_chain, xa_start_cert, xa_append,
    xa_end_cert, xa_end_chain, xa_get_pkey};

/* A TLS slot as a client toward device dev (`device … tls`), or NULL. */
static struct rp_tls *
tls_take_client(rp_proxy *p, const rp_device *dv)
{
    struct rp_tls *t = tls_slot(p);
    br_ssl_client_context *cc;
    if (!t)
        return NULL;
    cc = &t->u.cc;
    if (t->ready != 2) {
        br_ssl_client_init_full(cc, &t->xc.min, NULL, 0);
        br_ssl_engine_set_versions(&cc->eng, BR_TLS12, BR_TLS12);
        br_ssl_engine_set_suites(&cc->eng, tls_suites_modern, TLS_MODERN_SUITES);
        br_ssl_engine_set_buffers_bidi(&cc->eng, t->ibuf, sizeof(t->ibuf), t->obuf,
                                       sizeof(t->obuf));
        br_ssl_engine_set_protocol_names(&cc->eng, (const char **)(uintptr_t)tls_alpn, 1);
        t->owner = p;
        t->ready = 2;
    }
    if (dv->verify) {
        br_x509_minimal_init_full(&t->xc.min, dv->tas, dv->ntas);
        br_ssl_engine_set_x509(&cc->eng, &t->xc.min.vtable);
    } else {
        t->xc.any.vtable = &x509_any_class;
        br_ssl_engine_set_x509(&cc->eng, &t->xc.any.vtable);
    }
    if (!tls_seed(&cc->eng) || !br_ssl_client_reset(cc, dv->sni, 0)) {
        p->tls_stack[p->tls_top++] = t;
        return NULL;
    }
    return t;
}

/* A TLS slot reset for a new client of listener l, or NULL. */
#endif /* RP_ENABLE_TLS_DEVICE */

static struct rp_tls *
tls_take(rp_proxy *p, const rp_listener_cfg *l)
{
    struct rp_tls *t = tls_slot(p);
    if (!t)
        return NULL;
    if (t->ready != 1)
        tls_slot_setup(p, t);
    br_ssl_engine_set_versions(&t->u.sc.eng, TLS_COMPAT(l) ? BR_TLS10 : BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(&t->u.sc.eng, tls_suites_modern,
                             TLS_COMPAT(l) ? RP_COUNT(tls_suites_modern) : TLS_MODERN_SUITES);
    br_ssl_server_set_policy(&t->u.sc, &t->chooser);
    if (!tls_seed(&t->u.sc.eng) || !br_ssl_server_reset(&t->u.sc)) {
        p->tls_stack[p->tls_top++] = t;
        return NULL;
    }
    return t;
}

static unsigned
tls_state(const rp_conn *c)
{
    return br_ssl_engine_current_state(&c->tls->u.sc.eng);
}

/* One round of the pump; returns 1 if anything moved. */
static int
tls_pump_once(rp_proxy *p, rp_conn *c)
{
    br_ssl_engine_context *e = &c->tls->u.sc.eng; /* same place for a client */
    unsigned st = br_ssl_engine_current_state(e);
    unsigned char *b;
    size_t len, room;
    long n;
    if (c->flags & F_DEAD)
        return 0; /* the socket failed: nothing more moves */
    if (st & BR_SSL_CLOSED) {
        if (!(c->flags & F_EOF) && br_ssl_engine_last_error(e) != BR_ERR_OK) {
            c->flags |= F_DEAD;
            p->stats.tls_failures++;
            RP_LOG(RP_LOG_INFO, ("TLS failed: BearSSL error %d", br_ssl_engine_last_error(e)));
        }
        c->flags |= F_EOF;
        return 0;
    }
    if ((st & BR_SSL_SENDAPP) && !(c->flags & F_HSDONE)) {
        c->flags |= F_HSDONE | F_PROGRESS;
        p->stats.tls_handshakes++;
    }
    if ((st & BR_SSL_SENDREC) && (!(c->flags & F_WBLOCK) || (c->ready & RP_EV_WRITE))) {
        b = br_ssl_engine_sendrec_buf(e, &len);
        n = rp_port_send(c->sock, b, len);
        if (n > 0)
            br_ssl_engine_sendrec_ack(e, (size_t)n);
        if (send_done(p, c, n, len))
            return 1;
    }
    if ((st & BR_SSL_RECVAPP) && (room = buf_room(p, &c->in)) != 0) {
        b = br_ssl_engine_recvapp_buf(e, &len);
        len = RP_MIN(len, room);
        memcpy(c->in.d + c->in.w, b, len);
        c->in.w += (uint32_t)len;
        br_ssl_engine_recvapp_ack(e, len);
        return 1;
    }
    if ((st & BR_SSL_SENDAPP) && (buf_len(&c->out) || HIT_LEFT(c))) {
        b = br_ssl_engine_sendapp_buf(e, &len);
        if (buf_len(&c->out)) {
            len = RP_MIN(len, buf_len(&c->out));
            memcpy(b, c->out.d + c->out.r, len);
            c->out.r += (uint32_t)len;
        }
#if RP_ENABLE_CACHE
        else { /* a hit's body, from the arena */
            len = RP_MIN(len, RP_MIN((size_t)c->cleft, (size_t)(RP_CACHE_BLOCK - c->coff)));
            memcpy(b, p->cache_arena + (size_t)c->cblk * RP_CACHE_BLOCK + c->coff, len);
            hit_advance(p, c, len);
        }
#endif
        br_ssl_engine_sendapp_ack(e, len);
        if (!buf_len(&c->out) && !HIT_LEFT(c))
            br_ssl_engine_flush(e, 0);
        return 1;
    }
    if ((st & BR_SSL_RECVREC) && (c->ready & RP_EV_READ) && !(c->flags & F_EOF)) {
        b = br_ssl_engine_recvrec_buf(e, &len);
        n = rp_port_recv(c->sock, b, len);
        if (n > 0)
            br_ssl_engine_recvrec_ack(e, (size_t)n);
        return recv_done(p, c, n, len);
    }
    if ((c->flags & F_EOF) && !(st & (BR_SSL_SENDAPP | BR_SSL_SENDREC)) &&
        (buf_len(&c->out) || HIT_LEFT(c))) {
        c->flags |= F_DEAD; /* the engine waits for records a closed peer will not send */
        return 1;
    }
    return 0;
}

/* Pump c's engine until nothing moves; a device's waits for its connect
 * (only with RP_ENABLE_TLS_DEVICE: else only clients have engines). */
static RP_NOINLINE int
tls_pump(rp_proxy *p, rp_conn *c)
{
    int moved = 0;
    if (RP_ENABLE_TLS_DEVICE && (c->state == DS_CONNECTING || (c->flags & F_PCONN)))
        return 0;
    while (tls_pump_once(p, c))
        moved = 1;
    return moved;
}

/* Interest of a TLS connection: what its engine waits for. */
static unsigned
tls_interest(const rp_conn *c)
{
    unsigned st = tls_state(c), ev = 0;
    if (st & BR_SSL_CLOSED)
        return 0;
    if ((st & BR_SSL_SENDREC) && (c->flags & F_WBLOCK))
        ev |= RP_EV_WRITE;
    if ((st & BR_SSL_RECVREC) && !(c->flags & (F_EOF | F_DEAD)))
        ev |= RP_EV_READ;
    return ev;
}
#endif /* RP_ENABLE_TLS */

/* Give c's TLS slot back; a TLS listener that paused for want of one
 * resumes accepting. */
static void
tls_release(rp_proxy *p, rp_conn *c)
{
#if RP_ENABLE_TLS
    int i;
    if (!c->tls)
        return;
    p->tls_stack[p->tls_top++] = c->tls;
    c->tls = NULL;
    for (i = 0; i < RP_MAX_LISTENERS; i++)
        if (p->lsocks[i].slot_wait && p->lsocks[i].sock >= 0) {
            p->lsocks[i].slot_wait = 0;
            rp_port_watch(p->lsocks[i].sock, RP_EV_READ, &p->lsocks[i]);
        }
#else
    (void)p, (void)c;
#endif
}

/* How long each kind of timer runs: a field of the config, but for the
 * probe's (its pool's) and lingering (a constant). */
static uint32_t
timer_ms(const rp_proxy *p, const rp_conn *x, int kind)
{
#define T_FIELD(f) (uint16_t)offsetof(rp_config, f)
    static const uint16_t field[] = {
        [T_HEAD] = T_FIELD(t_client_header), [T_IDLE] = T_FIELD(t_client_idle),
        [T_CLIENT] = T_FIELD(t_client_idle), [T_TUNNEL] = T_FIELD(t_client_idle),
        [T_CONNECT] = T_FIELD(t_connect), [T_DEVICE] = T_FIELD(t_device),
        [T_DIDLE] = T_FIELD(t_device_idle), [T_HANDSHAKE] = T_FIELD(t_handshake),
        [T_CWAIT] = T_FIELD(cache_lock_ms),
    };
#undef T_FIELD
    const rp_config *c = &p->cfg;
    if (kind == T_PROBE)
        return c->pools[c->devices[x->device].pool].probe_timeout_ms;
    if (kind == T_LINGER)
        return RP_TIMEOUT_LINGER_MS;
    return *(const uint32_t *)(const void *)((const char *)c + field[kind]);
}

/* Output waits on the peer: its socket would block, or its TLS engine holds
 * plaintext back (mid-handshake, renegotiation, records still queued). */
static int
out_blocked(const rp_conn *c)
{
    if (c->tls)
        return (c->flags & F_WBLOCK) || buf_len(&c->out) || HIT_LEFT(c);
    return (c->flags & F_WBLOCK) && (buf_len(&c->out) || HIT_LEFT(c));
}

static int
timer_kind(const rp_conn *c)
{
    const rp_conn *o = c->link;
    switch (c->state) {
    case CS_HEAD: /* a new connection owes its first head in client_header */
        if (c->tls && !(c->flags & F_HSDONE))
            return T_HANDSHAKE;
        return buf_len(&c->in) || !(c->flags & F_SERVED) ? T_HEAD : T_IDLE;
    case CS_FWD:
        if (out_blocked(c) || (!(c->flags & F_REQ_DONE) && o && o->state == DS_BUSY))
            return T_CLIENT;
        return T_NONE;
    case CS_TUNNEL: return T_TUNNEL;
    case CS_LOCAL: case CS_CACHE: return out_blocked(c) ? T_CLIENT : T_NONE;
    case CS_CWAIT: return T_CWAIT;
    case CS_CLOSING: return buf_len(&c->out) ? T_CLIENT : T_LINGER;
    case DS_PROBE: return T_PROBE;
    case DS_CONNECTING: return T_CONNECT;
    case DS_IDLE: return T_DIDLE;
    case DS_BUSY:
        if (out_blocked(c))
            return T_DEVICE;
        if (o && o->state == CS_FWD && (o->flags & F_REQ_DONE) &&
            !(o->flags & F_RESP_DONE) && !out_blocked(o) && buf_len(&c->in) < RP_BUF_SIZE)
            return T_DEVICE;
        return T_NONE;
    }
    return T_NONE;
}

static unsigned
conn_interest(const rp_conn *c)
{
    unsigned ev = 0;
    if (c->state == DS_CONNECTING || (c->flags & F_PCONN))
        return RP_EV_WRITE;
#if RP_ENABLE_TLS
    if (c->tls)
        return tls_interest(c);
#endif
    if (out_blocked(c))
        ev |= RP_EV_WRITE;
    if (!(c->flags & (F_EOF | F_DEAD)) && buf_len(&c->in) < RP_BUF_SIZE)
        ev |= RP_EV_READ;
    return ev;
}

static void
timer_hint(rp_proxy *p, uint64_t t)
{
    if (t && (!p->next_timer || t < p->next_timer))
        p->next_timer = t;
}

/* After a turn: arm the timer this state needs, tell the port the interest. */
static void
conn_rearm(rp_proxy *p, rp_conn *c)
{
    int k = timer_kind(c);
    unsigned ev;
    int refresh = k == T_IDLE || k == T_CLIENT || k == T_TUNNEL || k == T_DEVICE;
    if (k != c->tkind || (refresh && (c->flags & F_PROGRESS))) {
        c->tkind = (uint8_t)k;
        c->deadline = k ? p->now + timer_ms(p, c, k) : 0;
        timer_hint(p, c->deadline);
    }
    c->flags &= ~F_PROGRESS;
    ev = conn_interest(c);
    if (ev != c->watched) {
        c->watched = (uint8_t)ev;
        rp_port_watch(c->sock, ev, c);
    }
}

/* After a turn: empty buffers go back, then conn_rearm. */
static void
conn_settle(rp_proxy *p, rp_conn *c)
{
    buf_release(p, &c->in, 0);
    buf_release(p, &c->out, 0);
    conn_rearm(p, c);
}

static rp_conn **
free_list(rp_proxy *p, int kind)
{
    return kind == K_CLIENT ? &p->free_clients : &p->free_devices;
}

static rp_conn *
conn_alloc(rp_proxy *p, int kind)
{
    rp_conn **list = free_list(p, kind);
    rp_conn *c = *list;
    if (!c)
        return NULL;
    *list = c->next;
    c->next = NULL; /* sock -1, no link, no timer: as conn_free (or rp_init) left it */
    c->flags = 0;
    c->err = 0;
    c->ready = 0;
    c->watched = 0xff; /* force the first rp_port_watch */
    c->scan = 0;
    c->state = kind == K_CLIENT ? CS_HEAD : DS_CONNECTING;
    return c;
}

static void
idle_remove(rp_proxy *p, rp_conn *d)
{
    rp_conn **pp = &p->idle[d->device];
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    d->next = NULL;
}

/* Close and return to the free list.  A client takes its device connection
 * with it (it is mid-exchange, so not reusable); a device just unlinks. */
static void
conn_free(rp_proxy *p, rp_conn *c)
{
    int i;
    if (c->state == CS_FREE)
        return;
    if (c->kind == K_DEVICE) {
        rp_device *dev = &p->cfg.devices[c->device];
        if (c->state == DS_IDLE) {
            idle_remove(p, c);
            dev->idle--;
        } else if (c->state == DS_PROBE) {
            dev->probe = NULL;
        } else {
            dev->active--;
        }
        if (c->link)
            c->link->link = NULL;
    } else if (c->link) {
        conn_free(p, c->link);
    }
    if (c->sock >= 0)
        rp_port_close(c->sock);
    buf_release(p, &c->in, 1);
    buf_release(p, &c->out, 1);
    tls_release(p, c);
#if RP_ENABLE_CACHE
    if (c->kind == K_CLIENT)
        cache_release(p, c);
#endif
    for (i = p->batch_at; i < p->batch_n; i++) /* drop reports still queued */
        if (p->batch[i].ud == c)
            p->batch[i].ud = NULL;
    c->sock = -1;
    c->state = CS_FREE;
    c->link = NULL;
    c->deadline = 0;
    c->tkind = T_NONE;
    c->next = *free_list(p, c->kind);
    *free_list(p, c->kind) = c;
}


static int
conn_read(rp_proxy *p, rp_conn *c)
{
    size_t room;
    long n;
#if RP_ENABLE_TLS
    if (c->tls)
        return tls_pump(p, c);
#endif
    if (!(c->ready & RP_EV_READ) || (c->flags & (F_EOF | F_DEAD)))
        return 0;
    if ((room = buf_room(p, &c->in)) == 0)
        return 0;
    n = rp_port_recv(c->sock, c->in.d + c->in.w, room);
    if (n > 0)
        c->in.w += (uint32_t)n;
    return recv_done(p, c, n, room);
}

#if RP_ENABLE_CACHE
/* Send what `out` holds and then a hit's body straight from its arena
 * blocks, in one gather send.  *len gets the bytes offered. */
static long
hit_send(rp_proxy *p, rp_conn *c, size_t *len)
{
    rp_iov v[16];
    int n = 0;
    unsigned b = c->cblk, off = c->coff;
    size_t head = buf_len(&c->out), left = c->cleft;
    long r;
    if (head)
        v[n].p = c->out.d + c->out.r, v[n++].n = head;
    *len = head;
    while (n < 16 && left) {
        size_t k = RP_MIN(left, RP_CACHE_BLOCK - off);
        v[n].p = p->cache_arena + (size_t)b * RP_CACHE_BLOCK + off, v[n++].n = k;
        *len += k, left -= k, off = 0;
        b = p->cache.blk_next[b];
    }
    r = rp_port_sendv(c->sock, v, n);
    if (r > 0) {
        size_t k = RP_MIN((size_t)r, head);
        c->out.r += (uint32_t)k;
        hit_advance(p, c, (size_t)r - k);
    }
    return r;
}
#endif


static int
conn_write(rp_proxy *p, rp_conn *c)
{
    size_t len = buf_len(&c->out);
    long n;
    int hit = 0;
#if RP_ENABLE_TLS
    if (c->tls)
        return tls_pump(p, c);
#endif
    if ((!len && !HIT_LEFT(c)) || c->state == DS_CONNECTING || (c->flags & (F_DEAD | F_PCONN)))
        return 0;
    if ((c->flags & F_WBLOCK) && !(c->ready & RP_EV_WRITE))
        return 0;
#if RP_ENABLE_CACHE
    if (c->cleft)
        hit = 1, n = hit_send(p, c, &len); /* moves out.r and the reader */
    else
#endif
        n = rp_port_send(c->sock, c->out.d + c->out.r, len);
    if (n > 0 && !hit)
        c->out.r += (uint32_t)n;
    return send_done(p, c, n, len);
}

/* Stop serving c: flush what is queued, send FIN, drain the peer until it
 * closes or the linger timer fires (so an error reply is not lost to a
 * reset caused by unread request bytes -- nginx's lingering close). */
static void
closing_begin(rp_proxy *p, rp_conn *c)
{
    if (c->link)
        conn_free(p, c->link);
    c->flags &= ~(F_KEEP | F_HOLD);
    if (c->flags & F_DEAD) {
        conn_free(p, c);
        return;
    }
    c->state = CS_CLOSING;
}

static int
closing_step(rp_proxy *p, rp_conn *c)
{
    c->in.r = c->in.w; /* discard whatever still arrives */
    if (c->flags & F_DEAD) {
        conn_free(p, c);
        return 0;
    }
    if (buf_len(&c->out))
        return 0;
#if RP_ENABLE_TLS
    if (c->tls && !(c->flags & F_WSHUT)) { /* close_notify first, then FIN */
        if (!(c->flags & F_TLSBYE)) {
            c->flags |= F_TLSBYE;
            br_ssl_engine_close(&c->tls->u.sc.eng);
            return 1;
        }
        if (tls_state(c) & BR_SSL_SENDREC)
            return 0;
    }
#endif
    if (!(c->flags & F_WSHUT)) {
        rp_port_shutdown(c->sock);
        c->flags |= F_WSHUT;
        tls_release(p, c); /* close_notify and FIN are out: drain in the clear */
        return 1;
    }
    if (c->flags & F_EOF)
        conn_free(p, c);
    return 0;
}

/* ==== [9] Request forwarding: the device-bound head ====
 * The head is re-serialised, never copied blindly (RFC 9110 §7.6.1): the
 * request line in origin form, Host first, hop-by-hop fields dropped
 * (Connection and every field it names, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Upgrade unless tunnelling), framing re-emitted canonically, and
 * X-Forwarded-For (appended), -Proto, -Host and Via added. */

#define MAX_CONN_TOKENS 16

/* The field names a message's Connection headers list (bounded). */
static size_t
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
static int
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
static void
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
static RP_NOINLINE int
has_field(const rp_http_msg *m, int id)
{
    size_t i;
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == id)
            return 1;
    return 0;
}
#endif

static rp_str
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
static RP_NOINLINE rp_str
via_value(const rp_proxy *p, int minor, char *buf)
{
    rp_str v;
    size_t n = RP_MIN(strlen(p->cfg.via), (size_t)40);
    memcpy(buf, minor ? "1.1 " : "1.0 ", 4);
    memcpy(buf + 4, p->cfg.via, n);
    v.p = buf, v.n = 4 + n;
    return v;
}

/* cond (cache revalidation, else NULL): the stored ETag and Last-Modified,
 * sent as If-None-Match / If-Modified-Since instead of the client's own. */
static int
request_head_write(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m,
                   const rp_str *cond)
{
    rp_str tok[MAX_CONN_TOKENS], ip, via, proto = {"https", c->tls ? 5 : 4};
    rp_str cert = {p->cfg.client_cert_header, 0};
    char ipbuf[48], viabuf[48];
    size_t i, ntok = conn_tokens(m, tok), nf = 4; /* Host, XFF, XFP, Via */
    wbuf w = buf_writer(p, &d->out);
    if (cert.p)
        cert.n = strlen(cert.p);
    w_str(&w, m->method);
    w_put(&w, " ", 1);
    if (m->target.n == 0 || (m->target.p[0] != '/' && m->target.p[0] != '*'))
        w_put(&w, "/", 1); /* absolute-form without a path */
    w_str(&w, m->target);
    w_put(&w, S(" HTTP/1.1\r\n"));
    w_field(&w, S("Host"), m->host); /* empty when unknown (RFC 9112 §3.2) */
    for (i = 0; i < m->nheaders; i++) {
        const rp_header *h = &m->headers[i];
        /* a client's own cert header is never trusted (no name is empty, so
         * an empty cert matches none) */
        if (!field_passes(m, i, tok, ntok) || str_ieq2(h->name, cert) ||
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
    w_put(&w, S("\r\n"));
    /* What is added must not make a head rproxy itself would refuse:
     * a device with the same limits would answer 431 anyway. */
    nf += !!(m->flags & RP_HF_HOST) + !!(m->flags & (RP_HF_CHUNKED | RP_HF_LENGTH)) +
          2 * !!(c->flags & F_UPG); /* X-Forwarded-Host, framing, Connection + Upgrade */
    if (nf > RP_MAX_HEADERS || w.n > RP_MAX_HEAD)
        return RP_EHDRTOOBIG;
    return buf_commit(&d->out, &w);
}

/* ==== [10] Response forwarding: the client-bound head and bodies ====
 * The response head gets the same treatment as the request's, plus the
 * connection's fate: "Connection: close" when rproxy will close,
 * "keep-alive" for an HTTP/1.0 client that keeps.  Bodies move between
 * buffers by framing mode; chunked passes through raw to HTTP/1.1 clients
 * and is decoded for HTTP/1.0 ones.  Error replies are canned. */

static RP_NOINLINE const char *
reason_for(int status)
{
    static const struct {
        uint16_t status;
        const char *reason;
    } reasons[] = {
        {400, "Bad Request"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {414, "URI Too Long"},
        {417, "Expectation Failed"},
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

#if RP_ENABLE_CACHE
/* What an exchange on a cache route did (rp_conn.cflags). */
#define CF_ON 1u        /* route has cache=on */
#define CF_LOOKUP 2u    /* method and request allow using the cache */
#define CF_NOSTORE 4u   /* request no-store: store nothing */
#define CF_REVAL 8u     /* forwarded to revalidate a stale entry */
#define CF_REQNC 16u    /* forwarded because the request said no-cache */
#define CF_STORED 32u   /* the response is being stored */
#define CF_COLLAPSED 64u /* waited on another request's fill */
#define CF_AUTH 128u    /* request has Authorization */
#define CF_SIE 256u     /* served stale because the device failed */
#define CF_HIT 512u     /* answered from the cache */
#define CF_HEADWAIT 1024u /* hit head waits for room in `out` */

/* "Cache-Status: rproxy; ..." (RFC 9211) on every response of a cache
 * route: what the cache did, the device's status when forwarded. */
static void
w_cache_status(wbuf *w, const rp_conn *c, int status, int64_t ttl)
{
    unsigned f = c->cflags;
    if (!(f & CF_ON))
        return;
    w_put(w, S("Cache-Status: rproxy"));
    if (f & CF_HIT) {
        w_put(w, S("; hit; ttl="));
        if (ttl < 0)
            w_put(w, "-", 1), ttl = -ttl;
        w_num(w, (uint64_t)ttl);
    } else if (status) {
        w_put(w, S("; fwd="));
        if (!(f & CF_LOOKUP))
            w_put(w, S("method"));
        else if (f & CF_REQNC)
            w_put(w, S("request"));
        else if (f & CF_REVAL)
            w_put(w, S("stale"));
        else
            w_put(w, S("miss"));
        w_put(w, S("; fwd-status="));
        w_num(w, (uint64_t)status);
    }
    if (f & CF_STORED)
        w_put(w, S("; stored"));
    if (f & CF_COLLAPSED)
        w_put(w, S("; collapsed"));
    if (f & CF_SIE)
        w_put(w, S("; detail=stale-if-error"));
    w_put(w, S("\r\n"));
}
#else
#define w_cache_status(w, c, status, ttl) ((void)0)
#endif

/* "HTTP/1.1 status reason\r\n" */
static void
w_status_line(wbuf *w, int status, rp_str reason)
{
    w_put(w, S("HTTP/1.1 "));
    w_num(w, (uint64_t)status);
    w_put(w, " ", 1);
    w_str(w, reason);
    w_put(w, S("\r\n"));
}

/* Queue "HTTP/1.1 status ..." with a short text body and Connection: close. */
static void
error_write(rp_proxy *p, rp_conn *c, int status)
{
    rp_str reason;
    wbuf w = buf_writer(p, &c->out);
    reason.p = reason_for(status), reason.n = strlen(reason.p);
    w_status_line(&w, status, reason);
    w_put(&w, S("Content-Type: text/plain\r\nContent-Length: "));
    w_num(&w, (uint64_t)reason.n + 1);
    w_put(&w, S("\r\n"));
    w_cache_status(&w, c, 0, 0);
    w_put(&w, S("Connection: close\r\n\r\n"));
    if (!(c->flags & F_HEAD)) { /* a HEAD reply has no body */
        w_str(&w, reason);
        w_put(&w, "\n", 1);
    }
    if (buf_commit(&c->out, &w) == RP_OK)
        SENT(c, w.n);
}

/* "Name: value\r\n" as header h came. */
static void
w_header(wbuf *w, const rp_header *h)
{
    w_field(w, h->name.p, h->name.n, h->value);
}

/* The status line and the fields of m that are passed on (RFC 9110
 * §7.6.1); the cache's stored form (`stored`) also leaves out Age and
 * Cache-Status, which a hit writes afresh. */
static void
w_head_fields(wbuf *w, const rp_http_msg *m, int stored)
{
    rp_str tok[MAX_CONN_TOKENS];
    size_t i, ntok = conn_tokens(m, tok);
    w_status_line(w, m->status, m->reason);
    for (i = 0; i < m->nheaders; i++)
        if (field_passes(m, i, tok, ntok) &&
            !(stored && (m->headers[i].id == H_AGE || m->headers[i].id == H_CACHE_STATUS)))
            w_header(w, &m->headers[i]);
}

/* Via, and the Date a device left out: RFC 9110 §6.6.1, a proxy with a
 * clock adds one. */
static void
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
static int
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

static RP_NOINLINE int
response_head_write(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m)
{
    wbuf w = buf_writer(p, &c->out);
    w_head_fields(&w, m, 0);
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
    return head_end(c, &w, m->status != 101);
}

/* ==== [11] Cache: arena, entries, freshness (RFC 9111) ====
 * A stored response is an entry plus two chains of fixed-size arena blocks:
 * `meta` (key, Vary values, ETag, Last-Modified and the head as it will be
 * served) and `body`.  Fixed blocks cannot fragment; a hit sends the body
 * straight from its blocks.  Ready entries sit on an LRU list and in a hash
 * table; an entry being filled is in the table only (a concurrent miss for
 * the same URL waits for it: collapsing) and is never evicted, nor is one
 * that is pinned by an exchange serving or revalidating it.  Anything
 * malformed in the caching fields makes a response stale or unstorable,
 * never fresher. */

#if RP_ENABLE_CACHE

#define CACHE_NBLK (RP_CACHE_BYTES / RP_CACHE_BLOCK)

enum { CE_FREE, CE_FILLING, CE_READY };
#define CE_NO_CACHE 1u  /* response no-cache: revalidate before each use */
#define CE_NO_STALE 2u  /* must-revalidate, proxy-revalidate, s-maxage */
#define CE_DOOMED 4u    /* replaced or invalidated while pinned */
#define CE_VOID 8u      /* a fill its URI was invalidated during: not kept */

/* ---- Cache-Control (RFC 9111 §5.2) ---- */

#define CC_NO_STORE 1u
#define CC_NO_CACHE 2u
#define CC_PRIVATE 4u
#define CC_PUBLIC 8u
#define CC_MUST_REVAL 16u
#define CC_PROXY_REVAL 32u
#define CC_ONLY_IF_CACHED 64u
#define CC_MAX_STALE_ANY 128u
#define CC_BAD 256u      /* a freshness directive was malformed or repeated */

typedef struct {
    unsigned f;
    int64_t max_age, s_maxage, max_stale, min_fresh, sie; /* -1: absent */
} cc_t;

#define CC_SECONDS_MAX 2147483648u /* §1.2.2: larger values mean this */

/* delta-seconds, quoted or not; -1 when not digits. */
static int64_t
cc_seconds(rp_str v)
{
    uint32_t n = 0; /* at most 2^31 + 1: 32 bits suffice */
    size_t i;
    if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"')
        v.p++, v.n -= 2;
    if (v.n == 0)
        return -1;
    for (i = 0; i < v.n; i++) {
        if (!is_digit((unsigned char)v.p[i]))
            return -1;
        n = n <= CC_SECONDS_MAX / 10 ? n * 10 + (uint32_t)(v.p[i] - '0') : CC_SECONDS_MAX;
    }
    return RP_MIN(n, CC_SECONDS_MAX);
}

/* The directives rproxy reads: a flag, a delta-seconds field (`at`, its
 * offset in cc_t), or both (max-stale: the flag when it has no value).  A
 * malformed or conflicting value of a `critical` one marks the field bad;
 * no-cache="f" and private="f" apply to the whole response. */
static const struct {
    const char *name;
    uint8_t len, flag, at, critical;
} cc_names[] = {
    {"no-store", 8, CC_NO_STORE, 0, 0},
    {"no-cache", 8, CC_NO_CACHE, 0, 0},
    {"private", 7, CC_PRIVATE, 0, 0},
    {"public", 6, CC_PUBLIC, 0, 0},
    {"must-revalidate", 15, CC_MUST_REVAL, 0, 0},
    {"proxy-revalidate", 16, CC_PROXY_REVAL, 0, 0},
    {"only-if-cached", 14, CC_ONLY_IF_CACHED, 0, 0},
    {"max-age", 7, 0, offsetof(cc_t, max_age), 1},
    {"s-maxage", 8, 0, offsetof(cc_t, s_maxage), 1},
    {"max-stale", 9, CC_MAX_STALE_ANY, offsetof(cc_t, max_stale), 0},
    {"min-fresh", 9, 0, offsetof(cc_t, min_fresh), 1},
    {"stale-if-error", 14, 0, offsetof(cc_t, sie), 0},
};

static void
cc_directive(cc_t *cc, rp_str k, rp_str v, int has_v)
{
    size_t i;
    for (i = 0; i < RP_COUNT(cc_names); i++)
        if (str_ieq(k, cc_names[i].name, cc_names[i].len)) {
            int64_t *slot = (int64_t *)((char *)cc + cc_names[i].at), n;
            if (!cc_names[i].at || (!has_v && cc_names[i].flag)) {
                cc->f |= cc_names[i].flag;
            } else if ((n = cc_seconds(v)) < 0 || (*slot >= 0 && *slot != n)) {
                if (cc_names[i].critical)
                    cc->f |= CC_BAD;
            } else {
                *slot = n;
            }
            return;
        }
}

/* One Cache-Control field value.  An unterminated quote or a stray
 * character marks the field bad (a response then counts as stale). */
static void
cc_parse(cc_t *cc, rp_str s)
{
    size_t i = 0;
    while (i < s.n) {
        rp_str k, v = {"", 0};
        int has_v = 0;
        while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ','))
            i++;
        if (i == s.n)
            break; /* empty list elements are allowed (RFC 9110 §5.6.1) */
        for (k.p = s.p + i; i < s.n && is_tchar((unsigned char)s.p[i]); i++)
            ;
        k.n = (size_t)(s.p + i - k.p);
        if (i < s.n && s.p[i] == '=') {
            size_t j = ++i;
            has_v = 1;
            if (i < s.n && s.p[i] == '"') {
                for (i++; i < s.n && s.p[i] != '"'; i++)
                    if (s.p[i] == '\\')
                        i++;
                if (i >= s.n) {
                    cc->f |= CC_BAD; /* unterminated quoted-string */
                    return;
                }
                i++;
            } else {
                while (i < s.n && is_tchar((unsigned char)s.p[i]))
                    i++;
            }
            v.p = s.p + j, v.n = i - j;
        }
        while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t'))
            i++;
        if ((i < s.n && s.p[i] != ',') || k.n == 0) {
            cc->f |= CC_BAD;
            while (i < s.n && s.p[i] != ',')
                i++;
            continue;
        }
        cc_directive(cc, k, v, has_v);
    }
}

/* Every Cache-Control line of m (and Pragma: no-cache without one). */
static void
cc_of(const rp_http_msg *m, cc_t *cc)
{
    size_t i;
    int any = 0, pragma = 0;
    memset(cc, 0xff, sizeof(*cc)); /* every delta-seconds field -1: absent */
    cc->f = 0;
    for (i = 0; i < m->nheaders; i++) {
        if (m->headers[i].id == H_CACHE_CONTROL)
            cc_parse(cc, m->headers[i].value), any = 1;
        else if (m->headers[i].id == H_PRAGMA)
            pragma |= m->headers[i].value.n >= 8 &&
                      str_ieq(m->headers[i].value, "no-cache", 8);
    }
    if (!any && pragma)
        cc->f |= CC_NO_CACHE; /* RFC 9111 §5.4 */
}

/* ---- Freshness (§4.2) ---- */

/* Statuses cacheable by default (RFC 9110 §15.1). */
static int
heuristic_status(int s)
{
    static const uint16_t ok[] = {200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501};
    size_t i;
    for (i = 0; i < RP_COUNT(ok); i++)
        if (s == ok[i])
            return 1;
    return 0;
}

/* The one value of field id, or -2 when repeated, -1 absent / malformed. */
static int64_t
field_date(const rp_http_msg *m, int id, int *count)
{
    size_t i;
    int64_t t = -1;
    *count = 0;
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == id)
            t = (*count)++ ? -2 : http_date(m->headers[i].value);
    return t;
}

/* Freshness lifetime of response m (s): s-maxage > max-age > Expires - Date
 * > heuristic; 0 when anything it rests on is malformed, -1 when nothing
 * gives one. */
static int64_t
cache_lifetime(const rp_http_msg *m, const cc_t *cc, int64_t date, int heuristic)
{
    int n;
    int64_t exp, lm;
    if (cc->f & CC_BAD)
        return 0;
    if (cc->s_maxage >= 0)
        return cc->s_maxage;
    if (cc->max_age >= 0)
        return cc->max_age;
    exp = field_date(m, H_EXPIRES, &n);
    if (n)
        return exp < 0 || date <= 0 || exp <= date ? 0 : exp - date;
    lm = field_date(m, H_LAST_MODIFIED, &n);
    if (heuristic && heuristic_status(m->status) && lm > 0 && date > lm)
        return RP_MIN((date - lm) / 10, 86400);
    return -1;
}

/* §4.2.3: the age at response time, from the device's Age, the response
 * delay and (with a clock) the apparent age.  -1 for a malformed Age. */
static int64_t
initial_age(const rp_http_msg *m, int64_t date, int64_t now_wall, uint64_t req_ms,
            uint64_t resp_ms)
{
    size_t i;
    int64_t age = 0, apparent = 0, delay = (int64_t)((resp_ms - req_ms) / 1000);
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == H_AGE && (age = cc_seconds(m->headers[i].value)) < 0)
            return -1;
    if (date > 0 && now_wall > date)
        apparent = now_wall - date;
    return RP_MAX(apparent, age + delay);
}

static RP_NOINLINE int64_t
entry_age(const rp_proxy *p, const struct rp_cache_entry *e)
{
    return e->age0 + (int64_t)((p->now - e->resp_ms) / 1000);
}

/* ---- Arena, chains, entries ---- */

typedef struct rp_cache_entry centry;
typedef struct rp_chain chain;

static unsigned char *
blk_ptr(rp_proxy *p, unsigned b)
{
    return p->cache_arena + (size_t)b * RP_CACHE_BLOCK;
}

static void
chain_free(rp_proxy *p, chain *ch)
{
    struct rp_cache *k = &p->cache;
    unsigned b = ch->first;
    while (b) {
        unsigned nx = k->blk_next[b];
        k->blk_next[b] = k->free_blk;
        k->free_blk = (uint16_t)b;
        k->nblk_used--;
        b = nx;
    }
    ch->first = ch->last = 0;
    ch->len = 0;
}

static void
lru_unlink(struct rp_cache *k, unsigned i)
{
    centry *e = &k->e[i];
    if (e->prev)
        k->e[e->prev].next = e->next;
    else
        k->lru_head = e->next;
    if (e->next)
        k->e[e->next].prev = e->prev;
    else
        k->lru_tail = e->prev;
    e->prev = e->next = 0;
}

static RP_NOINLINE void
lru_front(struct rp_cache *k, unsigned i)
{
    centry *e = &k->e[i];
    e->prev = 0;
    e->next = k->lru_head;
    if (k->lru_head)
        k->e[k->lru_head].prev = (uint16_t)i;
    else
        k->lru_tail = (uint16_t)i;
    k->lru_head = (uint16_t)i;
}

static void
bucket_unlink(struct rp_cache *k, unsigned i)
{
    uint16_t *at = &k->bucket[k->e[i].hash % RP_CACHE_ENTRIES];
    while (*at && *at != i)
        at = &k->e[*at].hnext;
    if (*at)
        *at = k->e[i].hnext;
    k->e[i].hnext = 0;
}

/* Entry i leaves the table; its blocks go back now, or when the last
 * exchange using it lets go. */
static void
entry_drop(rp_proxy *p, unsigned i)
{
    struct rp_cache *k = &p->cache;
    centry *e = &k->e[i];
    if (e->flags & CE_DOOMED) {
        if (e->pins)
            return;
    } else {
        bucket_unlink(k, i);
        if (e->state == CE_READY) {
            lru_unlink(k, i);
            k->nentries--;
        }
        e->flags |= CE_DOOMED;
        if (e->pins)
            return;
    }
    chain_free(p, &e->meta);
    chain_free(p, &e->body);
    memset(e, 0, sizeof(*e));
    e->hnext = k->free_ent;
    k->free_ent = (uint16_t)i;
}

/* Evict the least recently used entry nobody is using; 0 when none. */
static int
evict_one(rp_proxy *p)
{
    struct rp_cache *k = &p->cache;
    unsigned i = k->lru_tail;
    while (i && k->e[i].pins)
        i = k->e[i].prev;
    if (!i)
        return 0;
    entry_drop(p, i);
    p->stats.cache_evictions++;
    return 1;
}

static unsigned
blk_alloc(rp_proxy *p)
{
    struct rp_cache *k = &p->cache;
    unsigned b;
    for (;;) {
        if ((b = k->free_blk) != 0) {
            k->free_blk = k->blk_next[b];
            break;
        }
        if (k->fresh_blk + 1u < CACHE_NBLK) {
            b = ++k->fresh_blk; /* block 0 is never used */
            break;
        }
        if (!evict_one(p))
            return 0;
    }
    k->blk_next[b] = 0;
    k->nblk_used++;
    return b;
}

static unsigned
entry_alloc(rp_proxy *p)
{
    struct rp_cache *k = &p->cache;
    unsigned i;
    for (;;) {
        if ((i = k->free_ent) != 0) {
            k->free_ent = k->e[i].hnext;
            break;
        }
        if (k->fresh_ent + 1u < RP_CACHE_ENTRIES) {
            i = ++k->fresh_ent;
            break;
        }
        if (!evict_one(p))
            return 0;
    }
    memset(&k->e[i], 0, sizeof(k->e[i]));
    return i;
}

/* Append n bytes to a chain; RP_ENOMEM when the arena has no block left. */
static int
chain_put(rp_proxy *p, chain *ch, const void *src, size_t n)
{
    const char *s = (const char *)src;
    while (n) {
        size_t off = ch->len % RP_CACHE_BLOCK, k;
        if (off == 0 && (ch->len || !ch->first)) {
            unsigned b = blk_alloc(p);
            if (!b)
                return RP_ENOMEM;
            if (ch->last)
                p->cache.blk_next[ch->last] = (uint16_t)b;
            else
                ch->first = (uint16_t)b;
            ch->last = (uint16_t)b;
        }
        k = RP_MIN(n, RP_CACHE_BLOCK - off);
        memcpy(blk_ptr(p, ch->last) + off, s, k);
        ch->len += (uint32_t)k, s += k, n -= k;
    }
    return RP_OK;
}

/* Copy n bytes at off out of a chain (the caller keeps off + n <= len). */
static void
chain_get(rp_proxy *p, const chain *ch, size_t off, char *dst, size_t n)
{
    unsigned b = ch->first;
    while (off >= RP_CACHE_BLOCK)
        b = p->cache.blk_next[b], off -= RP_CACHE_BLOCK;
    while (n) {
        size_t k = RP_MIN(n, RP_CACHE_BLOCK - off);
        memcpy(dst, blk_ptr(p, b) + off, k);
        dst += k, n -= k, off = 0;
        b = p->cache.blk_next[b];
    }
}

/* Does the chain hold s at off (case-insensitively when ci)? */
static int
chain_eq(rp_proxy *p, const chain *ch, size_t off, rp_str s, int ci)
{
    char t[64];
    size_t i, k;
    while (s.n) {
        k = RP_MIN(s.n, sizeof(t));
        chain_get(p, ch, off, t, k);
        for (i = 0; i < k; i++)
            if (ci ? lower((unsigned char)s.p[i]) != t[i] : s.p[i] != t[i])
                return 0;
        s.p += k, s.n -= k, off += k;
    }
    return 1;
}

/* ---- Keys and Vary ---- */

static RP_NOINLINE uint32_t
fnv(uint32_t h, const char *s, size_t n, int ci)
{
    size_t i;
    for (i = 0; i < n; i++)
        h = (h ^ (uint32_t)(ci ? lower((unsigned char)s[i]) : (unsigned char)s[i])) * 16777619u;
    return h;
}

#define FNV0 2166136261u

static uint32_t
key_hash(uint32_t host_hash, rp_str target)
{
    return fnv(fnv(host_hash, " ", 1, 0), target.p, target.n, 0);
}

/* The stored key is "host target", the host lower-cased.  The parser lets
 * no SP into a host or a target, so with the lengths equal the one SP of
 * the stored key can only sit between the two: it is not compared. */
static int
key_eq(rp_proxy *p, const centry *e, rp_str host, rp_str target)
{
    return e->key_len == host.n + 1 + target.n && chain_eq(p, &e->meta, 0, host, 1) &&
           chain_eq(p, &e->meta, host.n + 1, target, 0);
}

#define VARY_MAX_NAMES 8
#define VARY_BYTES 1024

/* The request's value of header `name` as a Vary key stores it: every
 * line's value joined with ", ", "\x01" when absent. */
static void
vary_value(const rp_http_msg *req, rp_str name, wbuf *w)
{
    size_t j;
    int seen = 0;
    for (j = 0; j < req->nheaders; j++)
        if (str_ieq2(req->headers[j].name, name)) {
            if (seen++)
                w_put(w, S(", "));
            w_str(w, req->headers[j].value);
        }
    if (!seen)
        w_put(w, "\x01", 1);
}

/* The request's values of the headers the response's Vary names, as the
 * entry stores them: "name\nvalue\n" per name.  Returns the length, or -1
 * for "*", more than VARY_MAX_NAMES names or more than VARY_BYTES. */
static long
vary_key(const rp_http_msg *resp, const rp_http_msg *req, char *out)
{
    wbuf w;
    size_t i, j, names = 0;
    w.p = out, w.n = 0, w.cap = VARY_BYTES, w.full = 0;
    for (i = 0; i < resp->nheaders; i++) {
        rp_str v = resp->headers[i].value, e;
        if (resp->headers[i].id != H_VARY)
            continue;
        while (list_next(&v, &e)) {
            if ((e.n == 1 && e.p[0] == '*') || ++names > VARY_MAX_NAMES)
                return -1;
            j = w.n;
            w_str(&w, e);
            for (; j < w.n; j++) /* the name, lower-cased */
                out[j] = (char)lower((unsigned char)out[j]);
            w_put(&w, "\n", 1);
            vary_value(req, e, &w);
            w_put(&w, "\n", 1);
        }
    }
    return w.full ? -1 : (long)w.n;
}

/* Does the request select entry e (each stored value equal)? */
static int
vary_match(rp_proxy *p, const centry *e, const rp_http_msg *req)
{
    char stored[VARY_BYTES], now[VARY_BYTES];
    size_t i = 0, n = e->vary_len;
    chain_get(p, &e->meta, e->key_len, stored, n);
    while (i < n) {
        const char *nl = memchr(stored + i, '\n', n - i), *vl;
        rp_str name, val;
        wbuf w;
        name.p = stored + i, name.n = (size_t)(nl - name.p);
        vl = memchr(nl + 1, '\n', n - (size_t)(nl + 1 - stored));
        val.p = nl + 1, val.n = (size_t)(vl - val.p);
        w.p = now, w.n = 0, w.cap = sizeof(now), w.full = 0;
        vary_value(req, name, &w);
        if (w.full || w.n != val.n || memcmp(now, val.p, val.n))
            return 0;
        i = (size_t)(vl + 1 - stored);
    }
    return 1;
}

/* ---- Lookup ---- */

enum { USE_FRESH, USE_STALE, USE_REVALIDATE };

/* May entry e answer a request with directives rq without the device?
 * *ttl gets the freshness left (negative: stale by that much). */
static RP_NOINLINE int
entry_use(const rp_proxy *p, const centry *e, const cc_t *rq, unsigned *cf, int64_t *ttl)
{
    int64_t age = entry_age(p, e), left = (int64_t)e->lifetime - age;
    *ttl = left;
    if ((rq->f & CC_NO_CACHE) && !p->cfg.cache_ignore_nocache) {
        *cf |= CF_REQNC;
        return USE_REVALIDATE;
    }
    if ((e->flags & CE_NO_CACHE) || (rq->f & CC_BAD) || rq->max_age == 0 ||
        (rq->max_age > 0 && age > rq->max_age) || (rq->min_fresh >= 0 && left < rq->min_fresh))
        return USE_REVALIDATE;
    if (left > 0)
        return USE_FRESH;
    if (!(e->flags & CE_NO_STALE) &&
        ((rq->f & CC_MAX_STALE_ANY) || (rq->max_stale >= 0 && -left <= rq->max_stale)))
        return USE_STALE;
    return USE_REVALIDATE;
}

/* Find the entry for (host, target) the request selects; *filling gets a
 * fill in progress for the URL, *variants how many are stored. */
static unsigned
cache_find(rp_proxy *p, uint32_t key, rp_str host, const rp_http_msg *m, unsigned *filling,
           unsigned *variants)
{
    struct rp_cache *k = &p->cache;
    unsigned i, hit = 0;
    *filling = *variants = 0;
    for (i = k->bucket[key % RP_CACHE_ENTRIES]; i; i = k->e[i].hnext) {
        centry *e = &k->e[i];
        if (e->hash != key || !key_eq(p, e, host, m->target))
            continue;
        if (e->state == CE_FILLING)
            *filling = i;
        else if (++*variants && !hit && vary_match(p, e, m))
            hit = i;
    }
    return hit;
}

static void
entry_pin(rp_proxy *p, rp_conn *c, unsigned i)
{
    p->cache.e[i].pins++;
    c->centry = (uint16_t)i;
}

static void
entry_unpin(rp_proxy *p, rp_conn *c)
{
    unsigned i = c->centry;
    if (!i)
        return;
    c->centry = 0;
    if (--p->cache.e[i].pins == 0 && (p->cache.e[i].flags & CE_DOOMED))
        entry_drop(p, i);
}

/* A placeholder for the response this miss will fetch: concurrent misses
 * for the URL wait for it instead of all asking the device. */
static void
fill_begin(rp_proxy *p, rp_conn *c, rp_str host, rp_str target)
{
    struct rp_cache *k = &p->cache;
    unsigned i = entry_alloc(p), j;
    centry *e;
    if (!i) {
        p->stats.cache_store_failures++;
        return;
    }
    e = &k->e[i];
    e->state = CE_FILLING;
    e->hash = c->ckey;
    for (j = 0; j < host.n; j++) {
        char ch = (char)lower((unsigned char)host.p[j]);
        if (chain_put(p, &e->meta, &ch, 1) != RP_OK)
            break;
    }
    if (j < host.n || chain_put(p, &e->meta, " ", 1) || chain_put(p, &e->meta, target.p, target.n)) {
        entry_drop(p, i);
        p->stats.cache_store_failures++;
        return;
    }
    e->key_len = (uint16_t)e->meta.len;
    e->hnext = k->bucket[e->hash % RP_CACHE_ENTRIES];
    k->bucket[e->hash % RP_CACHE_ENTRIES] = (uint16_t)i;
    c->cfill = (uint16_t)i;
}

/* Clients waiting on a fill of this key look again (next timer turn). */
static void
cache_wake(rp_proxy *p, uint32_t key)
{
    int i;
    for (i = 0; i < RP_MAX_CONNS; i++) {
        rp_conn *w = &p->clients[i];
        if (w->state == CS_CWAIT && w->ckey == key) {
            w->deadline = p->now;
            timer_hint(p, p->now);
        }
    }
}

static void
fill_abort(rp_proxy *p, rp_conn *c)
{
    unsigned i = c->cfill;
    if (!i)
        return;
    c->cfill = 0;
    entry_drop(p, i);
    cache_wake(p, c->ckey);
}

/* Every stored variant of a key goes (RFC 9111 §4.4). */
static void
cache_invalidate(rp_proxy *p, uint32_t key)
{
    struct rp_cache *k = &p->cache;
    unsigned i = k->bucket[key % RP_CACHE_ENTRIES], nx;
    for (; i; i = nx) {
        nx = k->e[i].hnext;
        if (k->e[i].hash == key && k->e[i].state == CE_READY) {
            entry_drop(p, i);
            p->stats.cache_invalidations++;
        } else if (k->e[i].hash == key && k->e[i].state == CE_FILLING) {
            k->e[i].flags |= CE_VOID; /* its body predates the change */
        }
    }
}

/* ---- Storing ---- */

/* Freshness, age and flags of a response, kept in its entry. */
static int
entry_meta(rp_proxy *p, centry *e, const rp_http_msg *m, uint64_t req_ms)
{
    cc_t cc;
    int n;
#if RP_ENABLE_WALL_CLOCK
    int64_t now_wall = rp_port_time();
#else
    int64_t now_wall = 0; /* no clock: no apparent age, Expires needs a Date */
#endif
    int64_t date, life, age;
    cc_of(m, &cc);
    date = field_date(m, H_DATE, &n);
    if (date < 0)
        date = now_wall; /* none (we add one), malformed or repeated */
    life = cache_lifetime(m, &cc, date, p->cfg.cache_heuristic);
    age = initial_age(m, date, now_wall, req_ms, p->now);
    e->flags &= (uint8_t)~(CE_NO_CACHE | CE_NO_STALE);
    if (cc.f & CC_NO_CACHE)
        e->flags |= CE_NO_CACHE;
    if ((cc.f & (CC_MUST_REVAL | CC_PROXY_REVAL)) || cc.s_maxage >= 0)
        e->flags |= CE_NO_STALE;
    e->lifetime = (int32_t)RP_MIN(RP_MAX(life, 0), (int64_t)0x7fffffff);
    if (age < 0)
        e->lifetime = 0, age = 0; /* a malformed Age: stale */
    e->age0 = age;
    e->resp_ms = p->now;
    e->stale_if_error = (int32_t)RP_MIN(cc.sie, (int64_t)0x7fffffff); /* -1: none */
    e->lm = field_date(m, H_LAST_MODIFIED, &n);
    e->status = (uint16_t)m->status;
    return life >= 0 || e->flags & CE_NO_CACHE;
}

/* May response m to a GET be stored (RFC 9111 §3)? */
static int
storable(const rp_proxy *p, const rp_conn *c, const rp_http_msg *m, const cc_t *cc)
{
    if (c->cflags & CF_NOSTORE || m->status < 200 || m->status == 206 || m->status == 304 ||
        (cc->f & (CC_NO_STORE | CC_PRIVATE)) || has_field(m, H_SET_COOKIE))
        return 0;
    if ((m->status != 204 && !(m->flags & (RP_HF_LENGTH | RP_HF_CHUNKED))) ||
        ((m->flags & RP_HF_LENGTH) && (uint64_t)m->content_length > p->cfg.cache_max_object))
        return 0;
    if ((c->cflags & CF_AUTH) &&
        !(cc->f & (CC_PUBLIC | CC_MUST_REVAL)) && cc->s_maxage < 0)
        return 0;
    return cc->max_age >= 0 || cc->s_maxage >= 0 || has_field(m, H_EXPIRES) ||
           heuristic_status(m->status) || (cc->f & CC_PUBLIC);
}

/* Validators and head (already in stored form) after key and Vary. */
static int
meta_rest(rp_proxy *p, centry *e, const rp_http_msg *m, const char *head, size_t hn)
{
    rp_str etag = header_value(m, H_ETAG), lm = header_value(m, H_LAST_MODIFIED);
    if (e->meta.len + etag.n + lm.n + hn > RP_CACHE_META ||
        chain_put(p, &e->meta, etag.p, etag.n) || chain_put(p, &e->meta, lm.p, lm.n) ||
        chain_put(p, &e->meta, head, hn))
        return RP_ENOMEM;
    e->etag_len = (uint16_t)etag.n;
    e->lm_len = (uint16_t)lm.n;
    return RP_OK;
}

/* Write Vary values, validators and head after the key already in
 * e->meta.  The head is stored as hits will serve it: status line, the
 * device's end-to-end fields but Age and Cache-Status, Via, a Date when it
 * had none.  RP_OK or RP_ENOMEM. */
static int
meta_write(rp_proxy *p, centry *e, const rp_http_msg *m, const char *vary, size_t vn,
           char *scratch)
{
    wbuf w;
    w.p = scratch, w.n = 0, w.cap = RP_CACHE_META, w.full = 0;
    w_head_fields(&w, m, 1);
    w_via_date(p, &w, m);
    if (w.full || e->key_len + vn > RP_CACHE_META || chain_put(p, &e->meta, vary, vn))
        return RP_ENOMEM;
    e->vary_len = (uint16_t)vn;
    return meta_rest(p, e, m, scratch, w.n);
}

/* Start storing response m (request req) if RFC 9111 §3 allows: the
 * placeholder gets Vary values, validators and head; the body follows. */
static void
fill_start(rp_proxy *p, rp_conn *c, const rp_http_msg *req, const rp_http_msg *m)
{
    char vary[VARY_BYTES];
    rp_buf t = {0, 0, NULL};
    cc_t cc;
    centry *e;
    long vn;
    int ok;
    if (!(c->cflags & CF_LOOKUP) || (c->flags & F_HEAD))
        return;
    cc_of(m, &cc);
    if (!storable(p, c, m, &cc) || (vn = vary_key(m, req, vary)) < 0) {
        fill_abort(p, c);
        return;
    }
    if (!c->cfill)
        fill_begin(p, c, req->host, req->target);
    if (!c->cfill)
        return;
    e = &p->cache.e[c->cfill];
    ok = entry_meta(p, e, m, c->t_start) || header_value(m, H_ETAG).n ||
         header_value(m, H_LAST_MODIFIED).n;
    if (ok && (!buf_attach(p, &t) || meta_write(p, e, m, vary, (size_t)vn, t.d) != RP_OK)) {
        p->stats.cache_store_failures++;
        ok = 0;
    }
    buf_release(p, &t, 1);
    if (!ok) {
        fill_abort(p, c);
        return;
    }
    e->expect = m->status == 204             ? 0
              : (m->flags & RP_HF_LENGTH) ? (uint64_t)m->content_length
                                          : ~(uint64_t)0;
    c->cflags |= CF_STORED;
}

static void
fill_append(rp_proxy *p, rp_conn *c, const char *s, size_t n)
{
    centry *e = &p->cache.e[c->cfill];
    if (e->body.len + n > p->cfg.cache_max_object || chain_put(p, &e->body, s, n) != RP_OK) {
        p->stats.cache_store_failures++;
        fill_abort(p, c);
    }
}

/* Do chains a and b hold the same bytes at [off, off + n)? */
static int
chains_same(rp_proxy *p, const chain *a, const chain *b, size_t off, size_t n)
{
    char x[64];
    while (n) {
        size_t k = RP_MIN(n, sizeof(x));
        chain_get(p, a, off, x, k);
        if (!chain_eq(p, b, off, (rp_str){x, k}, 0))
            return 0;
        off += k, n -= k;
    }
    return 1;
}

/* Is o stored under e's key (a variant of the same URL)? */
static RP_NOINLINE int
same_key(rp_proxy *p, const centry *o, const centry *e)
{
    return o->hash == e->hash && o->key_len == e->key_len &&
           chains_same(p, &o->meta, &e->meta, 0, e->key_len);
}

/* The fill is complete: it replaces the variant it matches, the least
 * recently used variant goes when there are too many, and it is served.
 * (The other variants are ready entries, so all on the LRU list.) */
static void
fill_commit(rp_proxy *p, rp_conn *c)
{
    struct rp_cache *k = &p->cache;
    unsigned i = c->cfill, j, nx, variants = 0;
    centry *e = &k->e[i];
    if ((e->flags & CE_VOID) || (e->expect != ~(uint64_t)0 && e->body.len != e->expect)) {
        fill_abort(p, c);
        return;
    }
    c->cfill = 0;
    for (j = k->lru_tail; j; j = nx) {
        centry *o = &k->e[j];
        nx = o->prev;
        if (!same_key(p, o, e))
            continue;
        if (o->vary_len == e->vary_len &&
            chains_same(p, &o->meta, &e->meta, e->key_len, e->vary_len))
            entry_drop(p, j); /* the same variant: replaced */
        else
            variants++;
    }
    for (j = k->lru_tail; j && variants >= RP_CACHE_VARIANTS; j = nx) {
        nx = k->e[j].prev;
        if (!k->e[j].pins && same_key(p, &k->e[j], e)) {
            entry_drop(p, j);
            p->stats.cache_evictions++;
            variants--;
        }
    }
    e->state = CE_READY;
    lru_front(k, i);
    k->nentries++;
    p->stats.cache_stores++;
    cache_wake(p, c->ckey);
}

/* Let go of everything an exchange holds in the cache. */
static void
cache_release(rp_proxy *p, rp_conn *c)
{
    fill_abort(p, c);
    entry_unpin(p, c);
    c->cleft = 0;
}

/* ---- Serving ---- */

/* Weak comparison (RFC 9110 §8.8.3.2) of an entity-tag with the stored. */
static int
etag_weak_eq(rp_str a, rp_str b)
{
    if (a.n >= 2 && a.p[0] == 'W' && a.p[1] == '/')
        a.p += 2, a.n -= 2;
    if (b.n >= 2 && b.p[0] == 'W' && b.p[1] == '/')
        b.p += 2, b.n -= 2;
    return a.n == b.n && a.n >= 2 && memcmp(a.p, b.p, a.n) == 0;
}

/* Would the client's own conditionals turn this hit into a 304?  An
 * If-None-Match decides alone; else one valid If-Modified-Since. */
static int
not_modified(rp_proxy *p, const centry *e, const rp_http_msg *m)
{
    char tag[256];
    rp_str inm = header_value(m, H_IF_NONE_MATCH), el, stored;
    int n;
    int64_t t;
    if (inm.n) {
        stored.p = tag, stored.n = e->etag_len <= sizeof(tag) ? e->etag_len : 0;
        chain_get(p, &e->meta, e->key_len + e->vary_len, tag, stored.n);
        while (list_next(&inm, &el))
            if ((el.n == 1 && el.p[0] == '*') || (stored.n && etag_weak_eq(el, stored)))
                return 1;
        return 0;
    }
    t = field_date(m, H_IF_MODIFIED_SINCE, &n);
    return n == 1 && t >= 0 && e->lm >= 0 && e->lm <= t;
}

/* Fields a 304 from the cache repeats (RFC 9110 §15.4.5). */
static int
kept_in_304(int id)
{
    return id == H_CACHE_CONTROL || id == H_DATE || id == H_ETAG || id == H_EXPIRES ||
           id == H_VARY || id == H_LAST_MODIFIED || id == H_CONTENT_LOCATION;
}

/* The stored head, whole (200) or cut to what a 304 repeats; returns
 * whether it wrote the 304 (else, when it could not, the whole head). */
static int
hit_fields(rp_proxy *p, const centry *e, int status304, wbuf *w)
{
    size_t off = (size_t)e->key_len + e->vary_len + e->etag_len + e->lm_len;
    size_t n = e->meta.len - off, i;
    rp_http_msg h;
    char *src;
    if (status304 && 2 * n + 64 <= w->cap - w->n) {
        src = w->p + w->cap - (n + 2);
        chain_get(p, &e->meta, off, src, n);
        memcpy(src + n, "\r\n", 2);
        if (rp_http_parse_response(src, n + 2, &h) == RP_OK) {
            w_put(w, S("HTTP/1.1 304 Not Modified\r\n"));
            for (i = 0; i < h.nheaders; i++)
                if (kept_in_304(h.headers[i].id))
                    w_header(w, &h.headers[i]);
            return 1;
        }
    }
    if (n > w->cap - w->n)
        w->full = 1;
    else
        chain_get(p, &e->meta, off, w->p + w->n, n), w->n += n;
    return 0;
}

/* Queue the answer from entry c->centry: a 304 for a matching conditional,
 * else the stored head and (not for HEAD) the body from the arena.  0 when
 * the client's buffer has no room yet. */
static int
hit_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m, int64_t ttl)
{
    centry *e = &p->cache.e[c->centry];
    wbuf w = buf_writer(p, &c->out);
    int nm = hit_fields(p, e, not_modified(p, e, m), &w);
    if (!nm && e->status != 204) { /* RFC 9110 §8.6: never on a 204 */
        w_put(&w, S("Content-Length: "));
        w_num(&w, e->body.len);
        w_put(&w, S("\r\n"));
    }
    w_put(&w, S("Age: "));
    w_num(&w, (uint64_t)RP_MAX(entry_age(p, e), 0));
    w_put(&w, S("\r\n"));
    w_cache_status(&w, c, (c->cflags & CF_HIT) ? 0 : 304, ttl);
    if (head_end(c, &w, 1) != RP_OK)
        return 0;
    c->status = nm ? 304 : 200;
    if (!nm && !(c->flags & F_HEAD) && e->body.len) {
        c->cblk = e->body.first, c->coff = 0;
        c->cleft = e->body.len;
        SENT(c, e->body.len);
    }
    if (c->cflags & CF_HIT)
        p->stats.cache_hits++;
    if (!(e->flags & CE_DOOMED)) { /* a dropped entry is off the list */
        lru_unlink(&p->cache, c->centry);
        lru_front(&p->cache, c->centry);
    }
    return 1;
}

/* A 304 answered revalidation: the stored head takes the 304's fields
 * (RFC 9111 §4.3.4) and fresh metadata.  The meta chain is rebuilt. */
static void
entry_refresh(rp_proxy *p, rp_conn *c, const rp_http_msg *r304)
{
    centry *e = &p->cache.e[c->centry];
    size_t off = (size_t)e->key_len + e->vary_len + e->etag_len + e->lm_len, i, j;
    size_t n = e->meta.len - off;
    rp_buf t = {0, 0, NULL};
    rp_http_msg old;
    chain fresh = {0, 0, 0}, stale = e->meta;
    wbuf w;
    if (e->meta.len + 2 + 2 * n + 1024 > RP_BUF_SIZE || !buf_attach(p, &t))
        goto out; /* room for the old meta and a merged head */
    chain_get(p, &e->meta, 0, t.d, e->meta.len);
    memcpy(t.d + e->meta.len, "\r\n", 2);
    if (rp_http_parse_response(t.d + off, n + 2, &old) != RP_OK)
        goto out;
    w.p = t.d + e->meta.len + 2, w.n = 0, w.cap = RP_BUF_SIZE - e->meta.len - 2, w.full = 0;
    w_status_line(&w, old.status, old.reason);
    for (i = 0; i < old.nheaders; i++) {
        for (j = 0; j < r304->nheaders; j++)
            if (str_ieq2(old.headers[i].name, r304->headers[j].name))
                break;
        if (j == r304->nheaders)
            w_header(&w, &old.headers[i]);
    }
    for (j = 0; j < r304->nheaders; j++) {
        int id = r304->headers[j].id;
        if ((id == H_OTHER || id >= H_DATE) && id != H_AGE && id != H_CACHE_STATUS)
            w_header(&w, &r304->headers[j]);
    }
    w_put(&w, S("\r\n"));
    if (w.full || rp_http_parse_response(w.p, w.n, &old) != RP_OK)
        goto out;
    w.n -= 2;
    e->meta = fresh;
    if (chain_put(p, &e->meta, t.d, (size_t)e->key_len + e->vary_len) ||
        meta_rest(p, e, &old, w.p, w.n)) {
        chain_free(p, &e->meta);
        e->meta = stale;
        goto out;
    }
    chain_free(p, &stale);
    entry_meta(p, e, &old, c->t_start);
    p->stats.cache_revalidated++;
out:
    buf_release(p, &t, 1);
}

#endif /* RP_ENABLE_CACHE */

/* ==== [12] The exchange state machine ====
 * One exchange = one request and its response.  The client connection
 * drives it; its device connection (c->link) comes from the idle pool or a
 * new connect.  A turn reads what the port reported, moves bytes between the
 * four buffers as far as framing and space allow, and writes; it repeats
 * while anything moved.  The request head stays in the client's buffer
 * (F_HOLD) until body bytes or a response make a retry unsafe. */

/* The exchange is over: count the response, tell the access callback. */
static void
access_log(rp_proxy *p, rp_conn *c)
{
#if RP_ENABLE_ACCESS_LOG
    rp_access a;
    const rp_addr *dev = c->device < p->cfg.ndevices /* <= RP_MAX_DEVICES; 0xff: none */
                             ? &p->cfg.devices[c->device].addr : NULL;
#endif
    if (c->status >= 100 && c->status < 600)
        p->stats.responses[c->status / 100]++;
#if RP_ENABLE_ACCESS_LOG
    if (!p->access_fn)
        return;
    a.client = &c->peer;
    a.method.p = c->method, a.method.n = strlen(c->method);
    a.target.p = c->target, a.target.n = strlen(c->target);
    a.status = c->status;
    a.bytes = c->sent;
    a.device = dev;
    a.ms = (uint32_t)(p->now - c->t_start);
    a.err = c->err;
    p->access_fn(p->access_ud, &a);
#endif
}

/* Give a device connection back: to the idle pool when it is clean and
 * keep-alive, else closed. */
static void
device_release(rp_proxy *p, rp_conn *d)
{
    rp_device *dv = &p->cfg.devices[d->device];
    d->link = NULL;
    if ((d->flags & F_KEEP) && !buf_len(&d->in) && !buf_len(&d->out) &&
        !(d->flags & (F_EOF | F_DEAD)) && !p->stopping) {
        d->state = DS_IDLE;
        d->flags &= F_WBLOCK;
        d->next = p->idle[d->device];
        p->idle[d->device] = d;
        dv->active--;
        dv->idle++;
        conn_settle(p, d); /* both buffers are empty: they go back */
        return;
    }
    conn_free(p, d);
}

#if RP_ENABLE_CACHE
/* ---- The cache in the exchange ----
 * A request on a cache route is looked up before any device is chosen: a
 * usable entry answers it (CS_CACHE: the head is queued, the body goes
 * from the arena), a stale one is revalidated with a conditional request,
 * a miss waits for a fill in progress (CS_CWAIT) or starts one. */

/* The request head held in the client's buffer (F_HOLD), parsed again. */
static int
held_request(const rp_conn *c, rp_http_msg *m)
{
    return rp_http_parse_request(c->in.d + c->in.r, c->head_len, m);
}

static int
entry_ttl(const rp_proxy *p, unsigned i)
{
    const centry *e = &p->cache.e[i];
    return (int)RP_MAX(RP_MIN((int64_t)e->lifetime - entry_age(p, e), (int64_t)0x7fffffff),
                       -(int64_t)0x7fffffff);
}

/* Answer request m from the pinned entry. */
static int
hit_serve(rp_proxy *p, rp_conn *c, const rp_http_msg *m, int64_t ttl)
{
    if (!(c->cflags & CF_REVAL) || (c->cflags & CF_SIE))
        c->cflags |= CF_HIT; /* else "fwd=stale; fwd-status=304" */
    c->cflags &= (uint16_t)~CF_STORED;
    c->state = CS_CACHE;
    c->flags |= F_REQ_DONE | F_RESP_HEAD;
    if (!hit_begin(p, c, m, ttl))
        c->cflags |= CF_HEADWAIT; /* a previous response still fills `out` */
    return 1;
}

/* The device failed while a stale entry was being revalidated: serve it
 * if its stale-if-error allows (RFC 5861), never past must-revalidate. */
static int
stale_rescue(rp_proxy *p, rp_conn *c, int status)
{
    const centry *e;
    rp_http_msg m;
    cc_t rq;
    int ttl;
    if (!c->centry || !(c->cflags & CF_REVAL) || (c->flags & F_RESP_HEAD) ||
        !(c->flags & F_HOLD) || status < 500 || status == 501 || status > 504)
        return 0;
    e = &p->cache.e[c->centry];
    if ((e->flags & CE_NO_STALE) ||
        held_request(c, &m) != RP_OK)
        return 0;
    cc_of(&m, &rq); /* the client may allow it too (RFC 5861 §4) */
    ttl = entry_ttl(p, c->centry);
    if (-ttl > RP_MAX((int64_t)e->stale_if_error, rq.sie))
        return 0;
    if (c->link)
        conn_free(p, c->link);
    c->link = NULL;
    c->cflags |= CF_SIE;
    return hit_serve(p, c, &m, ttl);
}
#endif

/* The exchange cannot go on.  The device connection is dropped; the client
 * gets `status` if no response head went out yet (status 0: nothing), and
 * is closed.  Returns 1 (something changed). */
static int
exchange_fail(rp_proxy *p, rp_conn *c, int status)
{
#if RP_ENABLE_CACHE
    if (stale_rescue(p, c, status))
        return 1;
    cache_release(p, c);
#endif
    if (!(c->flags & F_RESP_HEAD) && status) {
        error_write(p, c, status);
        c->status = status;
    }
    access_log(p, c);
    closing_begin(p, c); /* drops the device connection */
    return 1;
}

/* A refusal before any device is involved (bad request, no route). */
static int
reply_error(rp_proxy *p, rp_conn *c, int status)
{
    if (status < 500 || status == 501 || status == 505)
        p->stats.bad_requests++;
    RP_LOG(RP_LOG_INFO, ("refused request: %d %s", status, reason_for(status)));
    return exchange_fail(p, c, status);
}

/* Every device slot taken: close the connection that has idled longest in
 * some device's pool (idle connections must not starve a device that has
 * none).  Returns 1 if one was freed. */
static int
idle_evict(rp_proxy *p)
{
    rp_conn *old = NULL;
    int i;
    for (i = 0; i < RP_MAX_UPSTREAM; i++) {
        rp_conn *d = &p->devices[i];
        if (d->state == DS_IDLE && (!old || d->deadline < old->deadline))
            old = d;
    }
    if (!old)
        return 0;
    conn_free(p, old);
    return 1;
}

/* An idle pooled connection to dev, or a new connect.  Returns RP_OK,
 * RP_ENOMEM (no slot) or the connect error. */
static int
device_get(rp_proxy *p, int dev, rp_conn **out)
{
    rp_device *dv = &p->cfg.devices[dev];
    rp_conn *d = p->idle[dev];
    if (d) {
        p->idle[dev] = d->next;
        dv->idle--;
        dv->active++;
        d->flags = (d->flags & (F_WBLOCK)) | F_REUSED;
        d->state = DS_BUSY;
        p->stats.device_reuses++;
    } else {
        rp_sock s;
        if ((d = conn_alloc(p, K_DEVICE)) == NULL && idle_evict(p))
            d = conn_alloc(p, K_DEVICE);
        if (d == NULL) {
            p->stats.upstream_full++;
            return RP_ENOMEM;
        }
        d->device = (uint8_t)dev;
        dv->active++; /* a connecting slot is active: conn_free gives it back */
        if ((s = rp_port_connect(&dv->addr)) < 0) {
            conn_free(p, d); /* a free slot's sock is -1: nothing to close */
            return s;
        }
        d->sock = s;
        d->peer = dv->addr;
        p->stats.device_connects++;
#if RP_ENABLE_TLS && RP_ENABLE_TLS_DEVICE
        if (dv->tls && (d->tls = tls_take_client(p, dv)) == NULL) {
            p->stats.tls_refused++;
            conn_free(p, d);
            return RP_ENOMEM;
        }
#endif
    }
    d->next = NULL;
    d->scan = 0; /* the framing (mode, left, ch) waits for response_begin */
    dv->requests++;
    *out = d;
    return RP_OK;
}

/* The stored validators of the entry being revalidated, or NULL. */
static RP_NOINLINE const rp_str *
revalidators(rp_proxy *p, const rp_conn *c, char *buf, rp_str *cond)
{
#if RP_ENABLE_CACHE
    const centry *e = &p->cache.e[c->centry];
    size_t n = (size_t)e->etag_len + e->lm_len;
    if (!c->centry || !(c->cflags & CF_REVAL) || n > 512)
        return NULL;
    chain_get(p, &e->meta, (size_t)e->key_len + e->vary_len, buf, n);
    cond[0].p = buf, cond[0].n = e->etag_len;
    cond[1].p = buf + e->etag_len, cond[1].n = e->lm_len;
    return cond;
#else
    (void)p, (void)c, (void)buf, (void)cond;
    return NULL;
#endif
}

/* Find a device and send it the request head; m is NULL on a retry (the
 * head is parsed again from the held bytes). */
static int
dispatch(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_pool *pl = &p->cfg.pools[p->cfg.routes[c->route].pool];
    rp_http_msg again;
    rp_conn *d;
    rp_str cond[2];
    char vbuf[512];
    int dev, rc;
    if (!m) {
        if (rp_http_parse_request(c->in.d + c->in.r, c->head_len, &again) != RP_OK)
            return exchange_fail(p, c, 502);
        m = &again;
    }
    for (;;) {
        if ((dev = pool_pick(p, pl, c->tried)) < 0)
            return exchange_fail(p, c, c->tries ? 502 : 503);
        rc = device_get(p, dev, &d);
        if (rc == RP_OK)
            break;
        if (rc == RP_ENOMEM)
            return exchange_fail(p, c, 503);
        device_fail(p, dev, rc); /* nothing reached it: on to the next, free */
        c->tried |= 1u << dev;
        c->tries |= 0x80;        /* remember that a device failed */
    }
    c->link = d;
    d->link = c;
    c->device = (uint8_t)dev;
    if (request_head_write(p, c, d, m, revalidators(p, c, vbuf, cond)) != RP_OK)
        return exchange_fail(p, c, 431);
    return 1;
}

/* The device connection failed or timed out: `connecting` when the connect
 * itself did (nothing reached the device: any method may be retried), else
 * only an idempotent request whose head is still held -- none once a
 * response head came. */
static int
device_failed(rp_proxy *p, rp_conn *c, rp_conn *d, int err, int connecting)
{
    const rp_pool *pl = &p->cfg.pools[p->cfg.routes[c->route].pool];
    int stale = (d->flags & F_REUSED) && !(d->flags & F_GOT) && err != RP_ETIMEDOUT;
    int status = err == RP_ETIMEDOUT ? 504 : 502;
    if (!stale) {
        device_fail(p, d->device, err);
        c->tried |= 1u << d->device;
    }
    if (!c->err)
        c->err = (int16_t)err;
    conn_free(p, d);
    /* A failed connect moves on to the next device without using a retry
     * (nginx tries every server): nothing reached the device.  A request
     * that did reach one is replayed only if idempotent, its head still
     * held, and `retries` allows. */
    if ((c->flags & F_HOLD) &&
        (connecting || ((c->tries & 0x7f) < pl->retries && (stale || err != RP_ETIMEDOUT) &&
                        (c->flags & F_IDEMP)))) {
        c->tries = (uint8_t)((c->tries | 0x80) + !connecting);
        p->stats.retries++;
        return dispatch(p, c, NULL);
    }
    return exchange_fail(p, c, status);
}


/* What the method tells the exchange (RFC 9110 §9.2): HEAD, GET, safe,
 * idempotent; or MF_CONNECT, which is refused.  Other methods carry none. */
#define MF_CONNECT (1u << 31) /* never stored in c->flags */
static uint32_t
method_flags(rp_str m)
{
    static const struct {
        char name[8];
        uint32_t flags;
    } known[] = {
        {"GET", F_GET | F_SAFE | F_IDEMP}, {"HEAD", F_HEAD | F_SAFE | F_IDEMP},
        {"OPTIONS", F_SAFE | F_IDEMP}, {"TRACE", F_SAFE | F_IDEMP},
        {"PUT", F_IDEMP}, {"DELETE", F_IDEMP}, {"CONNECT", MF_CONNECT},
    };
    size_t i;
    for (i = 0; i < RP_COUNT(known); i++)
        if (m.n < sizeof(known[i].name) && !known[i].name[m.n] &&
            memcmp(known[i].name, m.p, m.n) == 0)
            return known[i].flags;
    return 0;
}

#if RP_ENABLE_ACCESS_LOG
static void
copy_cstr(char *dst, size_t cap, rp_str s)
{
    size_t n = RP_MIN(s.n, cap - 1);
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = 0;
}
#endif

#if RP_ENABLE_STATUS
/* Does the target's path (before any '?') equal path? */
static int
path_is(rp_str target, const char *path)
{
    size_t n = strlen(path);
    return target.n >= n && memcmp(target.p, path, n) == 0 &&
           (target.n == n || target.p[n] == '?');
}
#endif

#if RP_ENABLE_STATUS
static int status_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m);
#endif

#if RP_ENABLE_REDIRECT
/* `redirect_https`: 301 to the same host and target on the TLS port. */
static int
redirect_reply(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    const rp_config *cf = &p->cfg;
    unsigned port = cf->listeners[c->lsn].redirect_port;
    int i;
    wbuf w;
    for (i = 0; !port && i < cf->nlisteners; i++)
        if (cf->listeners[i].tls)
            port = cf->listeners[i].addr.port;
    if (!(m->flags & RP_HF_HOST) || !m->host.n)
        return reply_error(p, c, 400);
    w = buf_writer(p, &c->out);
    w_put(&w, S("HTTP/1.1 301 Moved Permanently\r\nLocation: https://"));
    w_str(&w, host_only(m->host));
    if (port != 443) {
        w_put(&w, ":", 1);
        w_num(&w, port);
    }
    if (!m->target.n || m->target.p[0] != '/')
        w_put(&w, "/", 1);
    w_str(&w, m->target);
    w_put(&w, S("\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    if (buf_commit(&c->out, &w) != RP_OK)
        return reply_error(p, c, 414);
    SENT(c, w.n);
    c->status = 301;
    access_log(p, c);
    closing_begin(p, c);
    return 1;
}
#endif

#if RP_ENABLE_CACHE
/* Look request m up on a cache route.  Returns 0 to go to a device (a
 * miss, or a revalidation with c->centry pinned), else what the answer
 * from the cache, the 504 of only-if-cached or the wait returned. */
static int
cache_request(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    unsigned hit, filling, variants, cf;
    int64_t ttl;
    cc_t rq;
    int use;
    c->cflags &= CF_COLLAPSED;
    if (!p->cfg.routes[c->route].cache)
        return c->cflags = 0;
    c->cflags |= CF_ON;
    c->chost = fnv(FNV0, m->host.p, m->host.n, 1);
    c->ckey = key_hash(c->chost, m->target);
    if (c->mode != M_NONE || !(c->flags & (F_HEAD | F_GET)))
        return 0;
    c->cflags |= CF_LOOKUP;
    cc_of(m, &rq);
    if (rq.f & CC_NO_STORE)
        c->cflags |= CF_NOSTORE;
    if (has_field(m, H_AUTHORIZATION))
        c->cflags |= CF_AUTH;
    if ((hit = cache_find(p, c->ckey, m->host, m, &filling, &variants)) != 0) {
        cf = c->cflags;
        use = entry_use(p, &p->cache.e[hit], &rq, &cf, &ttl);
        c->cflags = (uint16_t)cf;
        entry_pin(p, c, hit);
        if (use != USE_REVALIDATE)
            return hit_serve(p, c, m, ttl);
        if (!(rq.f & CC_ONLY_IF_CACHED)) {
            if (c->flags & F_HEAD)
                entry_unpin(p, c); /* a HEAD is passed on as it is */
            c->cflags |= CF_REVAL;
            p->stats.cache_misses++;
            return 0;
        }
    }
    if (rq.f & CC_ONLY_IF_CACHED)
        return reply_error(p, c, 504);
    if (filling && !(c->cflags & CF_COLLAPSED)) {
        c->cflags |= CF_COLLAPSED;
        c->state = CS_CWAIT;
        p->stats.cache_collapsed++;
        return 1;
    }
    p->stats.cache_misses++;
    if (!filling && !(c->flags & F_HEAD) && !(c->cflags & CF_NOSTORE))
        fill_begin(p, c, m->host, m->target);
    return 0;
}

/* A collapsed miss stops waiting (the fill ended or lock_timeout passed):
 * look again, then go to a device if still nothing. */
static void
cache_resume(rp_proxy *p, rp_conn *c)
{
    rp_http_msg m;
    c->state = CS_FWD;
    if (held_request(c, &m) != RP_OK)
        exchange_fail(p, c, 502);
    else if (cache_request(p, c, &m) == 0)
        dispatch(p, c, &m);
}
#endif

static int
exchange_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m, size_t head_len)
{
    rp_str meth = m->method;
    uint32_t mf;
    int keep, route;
#if RP_ENABLE_CACHE
    int rc;
#endif
    c->flags &= ~F_EXCHANGE;
    if ((mf = method_flags(meth)) == MF_CONNECT)
        return reply_error(p, c, 405);
    c->flags |= mf;
    if (m->minor == 0)
        c->flags |= F_HTTP10;
    keep = m->minor ? !(m->flags & RP_HF_CONN_CLOSE)
                    : (m->flags & RP_HF_CONN_KEEP) && !(m->flags & RP_HF_CONN_CLOSE);
    if (keep && !p->stopping)
        c->flags |= F_KEEP;
    if ((m->flags & RP_HF_UPGRADE) && (m->flags & RP_HF_CONN_UPG) && m->minor == 1)
        c->flags |= F_UPG;
    memset(&c->ch, 0, sizeof(c->ch)); /* left matters only with M_LENGTH */
    if (m->flags & RP_HF_CHUNKED)
        c->mode = M_CHUNKED;
    else if (m->content_length > 0)
        c->mode = M_LENGTH, c->left = (uint64_t)m->content_length;
    else
        c->mode = M_NONE, c->flags |= F_REQ_DONE;
    c->head_len = (uint32_t)head_len;
#if RP_ENABLE_REDIRECT
    if (p->cfg.listeners[c->lsn].redirect)
        return redirect_reply(p, c, m);
#endif
#if RP_ENABLE_STATUS
    if (p->cfg.status_path && path_is(m->target, p->cfg.status_path))
        return status_begin(p, c, m);
#endif
    if ((route = route_match(&p->cfg, m->host, m->target)) < 0)
        return reply_error(p, c, 404);
    c->route = (uint8_t)route;
    c->flags |= F_HOLD;
    c->state = CS_FWD;
#if RP_ENABLE_CACHE
    if ((rc = cache_request(p, c, m)) != 0)
        return rc;
#endif
    return dispatch(p, c, m);
}

static int
client_head(rp_proxy *p, rp_conn *c)
{
    rp_http_msg m;
    size_t len;
    long n;
    int rc;
    while (c->scan == 0 && buf_len(&c->in) >= 2 && c->in.d[c->in.r] == '\r' &&
           c->in.d[c->in.r + 1] == '\n')
        c->in.r += 2; /* RFC 9112 §2.2: ignore empty lines before a request */
    if ((len = buf_len(&c->in)) == 0) {
        if (c->flags & (F_EOF | F_DEAD) || p->stopping) {
            closing_begin(p, c);
            return 1;
        }
        return 0;
    }
    n = rp_http_head_end(c->in.d + c->in.r, len, &c->scan);
    if (n == RP_EAGAIN) {
        if (len >= RP_MAX_HEAD)
            return reply_error(p, c, memchr(c->in.d + c->in.r, '\n', len) ? 431 : 414);
        if (c->flags & (F_EOF | F_DEAD)) {
            closing_begin(p, c); /* gave up mid-head */
            return 1;
        }
        return 0;
    }
    c->scan = 0;
    c->t_start = p->now;
    p->stats.requests++;
    if (n < 0)
        return reply_error(p, c, 400);
    if (n > RP_MAX_HEAD)
        return reply_error(p, c, 431);
    rc = rp_http_parse_request(c->in.d + c->in.r, (size_t)n, &m);
#if RP_ENABLE_ACCESS_LOG
    copy_cstr(c->method, sizeof(c->method), m.method);
    copy_cstr(c->target, sizeof(c->target), m.target);
#endif
    if (rc != RP_OK)
        return reply_error(p, c, status_for(rc));
    return exchange_begin(p, c, &m, (size_t)n);
}

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
static void
head_drop(rp_conn *c)
{
    if (c->flags & F_HOLD) {
        c->in.r += c->head_len;
        c->flags &= ~F_HOLD;
    }
}

static int
request_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    int done;
    long n;
    if (c->flags & F_REQ_DONE)
        return 0;
    if ((c->flags & F_HOLD) && buf_len(&c->in) <= c->head_len)
        return 0; /* no body byte yet: keep the head for a retry */
    head_drop(c);
    if ((n = body_move(p, &d->out, &c->in, c, &done, NULL)) < 0)
        return exchange_fail(p, c, 400);
    if (done)
        c->flags |= F_REQ_DONE;
    else if ((c->flags & (F_EOF | F_DEAD)) && !buf_len(&c->in))
        return exchange_fail(p, c, 0); /* client gave up mid-body */
    return n > 0 || done;
}

#if RP_ENABLE_CACHE
/* Location / Content-Location of a response to an unsafe request: the
 * same-host URI it names is invalidated too (RFC 9111 §4.4). */
static void
invalidate_named(rp_proxy *p, const rp_conn *c, const rp_http_msg *m)
{
    size_t i, k;
    for (i = 0; i < m->nheaders; i++) {
        rp_str v = m->headers[i].value;
        int id = m->headers[i].id;
        if (id != H_LOCATION && id != H_CONTENT_LOCATION)
            continue;
        k = v.n >= 7 && str_ieq((rp_str){v.p, 7}, S("http://")) ? 7
          : v.n >= 8 && str_ieq((rp_str){v.p, 8}, S("https://")) ? 8 : 0;
        if (k) { /* absolute: only for the request's own host */
            const char *slash = memchr(v.p + k, '/', v.n - k);
            size_t an = slash ? (size_t)(slash - (v.p + k)) : v.n - k;
            if (fnv(FNV0, v.p + k, an, 1) != c->chost)
                continue;
            v.p += k + an, v.n -= k + an;
            if (!v.n)
                v.p = "/", v.n = 1;
        }
        if (v.n && v.p[0] == '/')
            cache_invalidate(p, key_hash(c->chost, v));
    }
}

/* The device's 304 (or a failure) ends a revalidation: the response the
 * device sent has no body to pass on, its connection goes back. */
static RP_NOINLINE void
device_done(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    d->in.r += (uint32_t)n;
    if (m->minor == 1 && !(m->flags & RP_HF_CONN_CLOSE) && m->status == 304)
        d->flags |= F_KEEP;
    device_ok(p, d->device);
    c->link = NULL;
    device_release(p, d);
}

/* A final response head on a cache route.  Returns 1 when the answer comes
 * from the cache instead (a 304 refreshed the entry, or stale-if-error). */
static RP_NOINLINE int
cache_response(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    rp_http_msg req;
    int s = m->status;
    if (!(c->cflags & CF_LOOKUP)) {
        if (s >= 200 && s < 400 && !(c->flags & F_SAFE)) {
            cache_invalidate(p, c->ckey);
            invalidate_named(p, c, m);
        }
        return 0;
    }
    if (!(c->flags & F_HOLD) ||
        held_request(c, &req) != RP_OK)
        return 0;
    if (c->centry && (c->cflags & CF_REVAL)) {
        if (s == 304) {
            entry_refresh(p, c, m);
            device_done(p, c, d, m, n);
            return hit_serve(p, c, &req, entry_ttl(p, c->centry));
        }
        if (stale_rescue(p, c, s))
            return 1;
        entry_unpin(p, c);
    }
    fill_start(p, c, &req, m);
    return 0;
}
#endif

/* The device's final response head is parsed: choose the body framing,
 * decide both connections' fate, queue the client's head. */
static int
response_begin(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n)
{
    if (m->status == 101 && !(c->flags & F_UPG))
        return exchange_fail(p, c, 502);
#if RP_ENABLE_CACHE
    if ((c->cflags & CF_ON) && cache_response(p, c, d, m, n))
        return 1;
#endif
    memset(&d->ch, 0, sizeof(d->ch));
    if (m->status == 101)
        d->mode = M_TUNNEL;
    else if ((c->flags & F_HEAD) || m->status == 204 || m->status == 304)
        d->mode = M_NONE;
    else if (m->flags & RP_HF_CHUNKED)
        d->mode = (c->flags & F_HTTP10) ? M_DECHUNK : M_CHUNKED;
    else if (m->flags & RP_HF_LENGTH)
        d->mode = M_LENGTH, d->left = (uint64_t)m->content_length;
    else
        d->mode = M_CLOSE;
    if (m->minor == 1 && !(m->flags & RP_HF_CONN_CLOSE) && d->mode != M_CLOSE &&
        d->mode != M_TUNNEL)
        d->flags |= F_KEEP;
    if (d->mode == M_CLOSE || d->mode == M_DECHUNK || !(c->flags & F_REQ_DONE) ||
        p->stopping)
        c->flags &= ~F_KEEP;
    c->status = m->status;
    if (response_head_write(p, c, d, m) != RP_OK)
        return exchange_fail(p, c, 502);
    d->in.r += (uint32_t)n;
    head_drop(c);
    c->flags |= F_RESP_HEAD;
    if (d->mode == M_NONE || (d->mode == M_LENGTH && d->left == 0))
        c->flags |= F_RESP_DONE;
    device_ok(p, d->device);
    if (d->mode == M_TUNNEL) {
        c->state = CS_TUNNEL;
        p->stats.tunnels++;
        access_log(p, c);
    }
    return 1;
}

/* Parse response heads from the device: interim 1xx are relayed (to
 * HTTP/1.1 clients) and skipped, the final one starts the response. */
static int
response_head(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    rp_http_msg m;
    int moved = 0;
    for (;;) {
        size_t len = buf_len(&d->in);
        long n;
        if (len == 0) {
            if (d->flags & (F_EOF | F_DEAD))
                return device_failed(p, c, d, d->err ? d->err : RP_ECLOSED, 0);
            return moved;
        }
        d->flags |= F_GOT;
        n = rp_http_head_end(d->in.d + d->in.r, len, &d->scan);
        if (n == RP_EAGAIN) {
            if (len >= RP_MAX_HEAD || (d->flags & (F_EOF | F_DEAD)))
                return exchange_fail(p, c, 502);
            return moved;
        }
        d->scan = 0;
        if (n < 0 || n > RP_MAX_HEAD ||
            rp_http_parse_response(d->in.d + d->in.r, (size_t)n, &m) != RP_OK) {
            RP_LOG(RP_LOG_WARN, ("device %d sent a malformed response head", d->device));
            return exchange_fail(p, c, 502);
        }
        if (buf_len(&c->out) && buf_room(p, &c->out) < (size_t)n + 512)
            return moved; /* wait for the client to drain */
        if (m.status >= 200 || m.status == 101)
            return response_begin(p, c, d, &m, (size_t)n);
        if (!(c->flags & F_HTTP10)) {
            wbuf w = buf_writer(p, &c->out);
            w_status_line(&w, m.status, m.reason);
            w_put(&w, S("\r\n"));
            buf_commit(&c->out, &w);
        }
        d->in.r += (uint32_t)n;
        moved = 1;
    }
}

/* Forget the finished request: flags, status and log fields. */
static RP_NOINLINE void
request_reset(rp_conn *c)
{
    c->flags &= ~F_EXCHANGE;
    c->status = 0;
#if RP_ENABLE_ACCESS_LOG
    c->sent = 0;
#endif
    c->tries = 0;
    c->tried = 0;
    c->device = 0xff;
#if RP_ENABLE_ACCESS_LOG
    c->method[0] = c->target[0] = 0;
#endif
#if RP_ENABLE_CACHE
    c->cflags = 0;
#endif
}

static int
exchange_end(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
#if RP_ENABLE_CACHE
    if (c->cfill && (c->flags & F_RESP_DONE))
        fill_commit(p, c);
    cache_release(p, c);
#endif
    access_log(p, c);
    c->link = NULL;
    if (d) {
        if (!(c->flags & F_REQ_DONE))
            d->flags &= ~F_KEEP;
        device_release(p, d);
    }
    head_drop(c);
    c->flags |= F_SERVED;
    if ((c->flags & F_KEEP) && !p->stopping) {
        request_reset(c);
        c->state = CS_HEAD;
        return 1;
    }
    closing_begin(p, c);
    return 1;
}

#if RP_ENABLE_CACHE
/* A hit's body has gone out: the exchange ends. */
static int
hit_step(rp_proxy *p, rp_conn *c)
{
    rp_http_msg m;
    if (c->flags & F_DEAD)
        return exchange_fail(p, c, 0);
    if (c->cflags & CF_HEADWAIT) {
        if (held_request(c, &m) != RP_OK ||
            !hit_begin(p, c, &m, entry_ttl(p, c->centry)))
            return 0;
        c->cflags &= (uint16_t)~CF_HEADWAIT;
    }
    if (c->cleft)
        return 0;
    c->flags |= F_RESP_DONE;
    return exchange_end(p, c);
}
#endif

static int
response_body(rp_proxy *p, rp_conn *c, rp_conn *d)
{
    size_t had = buf_len(&c->out);
    int done;
    long n = body_move(p, &c->out, &d->in, d, &done, c);
    SENT(c, buf_len(&c->out) - had); /* what went to the client: compacting keeps lengths */
    if (n < 0)
        return exchange_fail(p, c, 502);
    if (d->mode == M_CLOSE && (d->flags & F_EOF) && !buf_len(&d->in))
        done = 1;
    if (done) {
        c->flags |= F_RESP_DONE;
        return 1;
    }
    if ((d->flags & (F_EOF | F_DEAD)) && !buf_len(&d->in)) {
        RP_LOG(RP_LOG_WARN, ("device %d closed mid-response", d->device));
        device_fail(p, d->device, RP_ECLOSED);
        return exchange_fail(p, c, 0); /* never a short body on keep-alive */
    }
    return n > 0;
}

static int
exchange_step(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
    int moved = 0;
    if ((c->flags & F_DEAD) || !d)
        return exchange_fail(p, c, 0);
    if (d->state == DS_CONNECTING)
        return 0;
    if (!(c->flags & F_RESP_DONE)) {
        moved |= request_body(p, c, d);
        if (c->state != CS_FWD || c->link != d)
            return 1;
    }
    if (!(c->flags & F_RESP_HEAD)) {
        moved |= response_head(p, c, d);
        if (c->state != CS_FWD || c->link != d)
            return 1;
    }
    if ((c->flags & F_RESP_HEAD) && !(c->flags & F_RESP_DONE))
        moved |= response_body(p, c, d);
    if (c->state == CS_FWD && (c->flags & F_RESP_DONE) &&
        ((c->flags & F_REQ_DONE) || !(c->flags & F_KEEP)))
        return exchange_end(p, c);
    return moved;
}

/* After a 101: raw bytes both ways until either side closes. */
static int
tunnel_step(rp_proxy *p, rp_conn *c)
{
    rp_conn *d = c->link;
    size_t a, b;
    if (!d || ((c->flags | d->flags) & F_DEAD)) {
        closing_begin(p, c); /* frees d too */
        return 1;
    }
    a = buf_move(p, &d->out, &c->in, (size_t)-1);
    b = buf_move(p, &c->out, &d->in, (size_t)-1);
    if (a || b)
        c->flags |= F_PROGRESS;
    if (((c->flags & F_EOF) && !buf_len(&c->in) && !buf_len(&d->out)) ||
        ((d->flags & F_EOF) && !buf_len(&d->in))) {
        closing_begin(p, c); /* frees d */
        return 1;
    }
    return a || b;
}

#if RP_ENABLE_STATUS
static int local_step(rp_proxy *p, rp_conn *c);
#endif

static int
client_step(rp_proxy *p, rp_conn *c)
{
    switch (c->state) {
    case CS_HEAD: return client_head(p, c);
    case CS_FWD: return exchange_step(p, c);
    case CS_TUNNEL: return tunnel_step(p, c);
    case CS_CLOSING: return closing_step(p, c);
#if RP_ENABLE_CACHE
    case CS_CACHE: return hit_step(p, c);
#endif
#if RP_ENABLE_STATUS
    case CS_LOCAL: return local_step(p, c);
#endif
    }
    return 0;
}

/* Move a client and its device connection as far as they go. */
static void
pair_service(rp_proxy *p, rp_conn *c)
{
    int moved;
    do {
        rp_conn *d = c->link;
        moved = conn_read(p, c);
        if (d)
            moved |= conn_read(p, d);
        moved |= client_step(p, c);
        if (c->state == CS_FREE)
            return;
        if ((d = c->link) != NULL)
            moved |= conn_write(p, d);
        moved |= conn_write(p, c);
    } while (moved);
    if (c->link)
        conn_settle(p, c->link);
    conn_settle(p, c);
}

/* ==== [13] Health probes and the status page ====
 * Active health: each device of a pool with a `health` line gets one probe
 * at a time -- connect, "GET path" with Connection: close, read the status
 * line -- at most once per interval, and not at all while real traffic
 * keeps proving it alive (a battery sensor is not woken for nothing).
 * `fall` failed probes in a row take it out, `rise` passes bring it back.
 *
 * The status page is answered by rproxy itself, item by item as the
 * client's buffer has room (chunked), so it fits any RP_BUF_SIZE: JSON, or
 * the Prometheus text format with ?format=prometheus.  Only clients inside
 * `allow=` (default: loopback) see it; others get 403 and nothing else. */

/* "ip:port", IPv6 in brackets. */
static void
w_addr(wbuf *w, const rp_addr *a)
{
    char ip[48];
    size_t n = rp_addr_format(a, ip, sizeof(ip));
    int v6 = RP_ENABLE_IPV6 && a->family == 6;
    if (v6)
        w_put(w, "[", 1);
    w_put(w, ip, n);
    if (v6)
        w_put(w, "]", 1);
    w_put(w, ":", 1);
    w_num(w, a->port);
}

static void
w_cstr(wbuf *w, const char *s)
{
    w_put(w, s, strlen(s));
}

/* Probe d ended, passed or not; it is freed. */
static void
probe_finish(rp_proxy *p, rp_conn *d, int ok)
{
    int idx = d->device;
    rp_device *dv = &p->cfg.devices[idx];
    const rp_pool *pl = &p->cfg.pools[dv->pool];
    conn_free(p, d); /* a DS_PROBE slot: dv->probe goes back to NULL */
    dv->probes++;
    dv->probe_next = p->now + pl->interval_ms;
    timer_hint(p, dv->probe_next);
    if (ok) {
        dv->hc_fall = 0;
        if (dv->hc_down && ++dv->hc_rise >= pl->rise) {
            dv->hc_down = 0;
            dv->hc_rise = 0;
            RP_LOG(RP_LOG_WARN, ("device %d up: %d health probes passed", idx, pl->rise));
        }
        return;
    }
    dv->probe_failures++;
    dv->hc_rise = 0;
    if (!dv->hc_down && ++dv->hc_fall >= pl->fall) {
        dv->hc_down = 1;
        dv->hc_fall = 0;
        RP_LOG(RP_LOG_WARN, ("device %d down: %d health probes failed", idx, pl->fall));
    }
}

static void
probe_start(rp_proxy *p, int idx)
{
    rp_device *dv = &p->cfg.devices[idx];
    const rp_pool *pl = &p->cfg.pools[dv->pool];
    rp_conn *d = conn_alloc(p, K_DEVICE);
    rp_sock s;
    wbuf w;
    if (!d) { /* every slot busy with traffic: that is not the device's fault */
        dv->probe_next = p->now + pl->interval_ms;
        return;
    }
    d->device = (uint8_t)idx;
    d->state = DS_PROBE; /* a free slot's sock is -1 */
    if ((s = rp_port_connect(&dv->addr)) < 0) {
        probe_finish(p, d, 0);
        return;
    }
    d->sock = s;
    d->flags |= F_PCONN;
    dv->probe = d;
#if RP_ENABLE_TLS && RP_ENABLE_TLS_DEVICE
    if (dv->tls && (d->tls = tls_take_client(p, dv)) == NULL) {
        dv->probe_next = p->now + pl->interval_ms; /* no TLS slot: not its fault */
        conn_free(p, d);
        return;
    }
#endif
    w = buf_writer(p, &d->out);
    w_put(&w, S("GET "));
    w_cstr(&w, pl->health_path);
    w_put(&w, S(" HTTP/1.1\r\nHost: "));
    w_addr(&w, &dv->addr);
    w_put(&w, S("\r\nUser-Agent: rproxy-health\r\nConnection: close\r\n\r\n"));
    buf_commit(&d->out, &w);
    conn_rearm(p, d);
}

static void
probe_event(rp_proxy *p, rp_conn *d)
{
    rp_device *dv = &p->cfg.devices[d->device];
    const rp_pool *pl = &p->cfg.pools[dv->pool];
    if (d->flags & F_PCONN) {
        int rc = rp_port_connect_result(d->sock);
        if (rc == RP_EAGAIN)
            return;
        if (rc != RP_OK) {
            probe_finish(p, d, 0);
            return;
        }
        d->flags &= ~F_PCONN;
        d->ready |= RP_EV_WRITE;
    }
    conn_write(p, d);
    conn_read(p, d);
    if (buf_len(&d->in) >= 12) { /* "HTTP/1.x NNN" */
        const char *b = d->in.d + d->in.r;
        int st = 0, i, ok;
        if (memcmp(b, "HTTP/1.", 7) == 0 && b[8] == ' ')
            for (i = 9; i < 12 && b[i] >= '0' && b[i] <= '9'; i++)
                st = st * 10 + (b[i] - '0');
        ok = pl->expect ? st == pl->expect : (st >= 200 && st < 400);
        probe_finish(p, d, ok);
        return;
    }
    if (d->flags & (F_EOF | F_DEAD)) {
        probe_finish(p, d, 0);
        return;
    }
    conn_rearm(p, d);
}

/* Start the probes that are due; hint the loop at the next ones. */
static void
health_run(rp_proxy *p)
{
    int i;
    for (i = 0; i < p->cfg.ndevices; i++) {
        rp_device *dv = &p->cfg.devices[i];
        const rp_pool *pl = &p->cfg.pools[dv->pool];
        if (!pl->health || dv->probe || dv->weight == 0)
            continue;
        if (dv->probe_next <= p->now) {
            if (!dv->hc_down && dv->last_ok && dv->last_ok + pl->interval_ms > p->now)
                dv->probe_next = dv->last_ok + pl->interval_ms; /* traffic vouched */
            else
                probe_start(p, i);
        }
        if (!dv->probe)
            timer_hint(p, dv->probe_next);
    }
}

#if RP_ENABLE_STATUS
static int
cidr_match(const rp_addr *net, int bits, const rp_addr *a)
{
    int full = bits / 8, rest = bits % 8;
    if (net->family != a->family || memcmp(net->ip, a->ip, (size_t)full) != 0)
        return 0;
    return !rest || ((net->ip[full] ^ a->ip[full]) & (0xff00 >> rest) & 0xff) == 0;
}

static int
status_allowed(const rp_config *c, const rp_addr *a)
{
    static const rp_addr lo4 = {4, {127}, 0}, lo6 = {6, {0, 0, 0, 0, 0, 0, 0, 0,
                                                           0, 0, 0, 0, 0, 0, 0, 1}, 0};
    int i;
    if (c->nallow == 0)
        return cidr_match(&lo4, 8, a) || cidr_match(&lo6, 128, a);
    for (i = 0; i < c->nallow; i++)
        if (cidr_match(&c->allow[i].net, c->allow[i].bits, a))
            return 1;
    return 0;
}

static const char *
device_state(const rp_proxy *p, const rp_device *d)
{
    if (d->weight == 0)
        return "disabled";
    if (!device_is_up(p, d))
        return "down";
    return d->backup ? "backup" : "up";
}

/* The n-th device in pool order, and where it sits in its pool. */
static const rp_device *
status_device(const rp_config *c, uint64_t n, int *pool, int *pos)
{
    int i;
    for (i = 0; i < c->npools; i++) {
        if (n < c->pools[i].ndevices) {
            *pool = i, *pos = (int)n;
            return &c->devices[c->pools[i].devices[n]];
        }
        n -= c->pools[i].ndevices;
    }
    return NULL;
}

static void
json_num(wbuf *w, const char *key, uint64_t v, int comma)
{
    if (comma)
        w_put(w, ",", 1);
    w_put(w, "\"", 1);
    w_cstr(w, key);
    w_put(w, S("\":"));
    w_num(w, v);
}

static void
json_str(wbuf *w, const char *key, const char *v)
{
    w_put(w, S(",\""));
    w_cstr(w, key);
    w_put(w, S("\":\""));
    w_cstr(w, v);
    w_put(w, "\"", 1);
}

static void
json_device(const rp_proxy *p, const rp_device *d, wbuf *w)
{
    w_put(w, S("{\"addr\":\""));
    w_addr(w, &d->addr);
    w_put(w, "\"", 1);
    json_str(w, "state", device_state(p, d));
    json_num(w, "weight", d->weight, 1);
    json_num(w, "effective_weight", (uint64_t)d->effective, 1);
    json_num(w, "active", d->active, 1);
    json_num(w, "idle", d->idle, 1);
    json_num(w, "requests", d->requests, 1);
    json_num(w, "failures", d->failures, 1);
    json_str(w, "last_failure", d->last_err ? rp_strerror(d->last_err) : "");
    json_str(w, "health", !p->cfg.pools[d->pool].health ? "none" : d->hc_down ? "down" : "up");
    json_num(w, "probes", d->probes, 1);
    json_num(w, "probe_failures", d->probe_failures, 1);
    w_put(w, "}", 1);
}

/* Item k of the JSON page; 0 when there is none. */
static int
status_json(rp_proxy *p, uint64_t k, wbuf *w)
{
    const rp_stats *st = &p->stats;
    const rp_device *d;
    int pool, pos;
    if (k == 0) {
        w_put(w, S("{\"version\":\"" RP_VERSION "\""));
        json_num(w, "uptime_ms", p->now - p->t_started, 1);
        json_num(w, "accepted", st->accepted, 1);
        json_num(w, "refused_conns", st->refused_conns, 1);
        json_num(w, "active_clients", (uint64_t)rp_active(p), 1);
        json_num(w, "requests", st->requests, 1);
        json_num(w, "bad_requests", st->bad_requests, 1);
        json_num(w, "responses_2xx", st->responses[2], 1);
        json_num(w, "responses_4xx", st->responses[4], 1);
        json_num(w, "responses_5xx", st->responses[5], 1);
        return 1;
    }
    if (k == 1) {
        json_num(w, "device_connects", st->device_connects, 1);
        json_num(w, "device_reuses", st->device_reuses, 1);
        json_num(w, "device_errors", st->device_errors, 1);
        json_num(w, "retries", st->retries, 1);
        json_num(w, "timeouts", st->timeouts, 1);
        json_num(w, "tunnels", st->tunnels, 1);
        json_num(w, "tls_handshakes", st->tls_handshakes, 1);
        json_num(w, "tls_failures", st->tls_failures, 1);
        json_num(w, "tls_refused", st->tls_refused, 1);
#if RP_ENABLE_CACHE
        w_put(w, S(",\"cache\":{\"entries\":"));
        w_num(w, p->cache.nentries);
        json_num(w, "bytes_used", (uint64_t)p->cache.nblk_used * RP_CACHE_BLOCK, 1);
        json_num(w, "bytes_total", RP_CACHE_BYTES, 1);
        json_num(w, "hits", st->cache_hits, 1);
        json_num(w, "misses", st->cache_misses, 1);
        json_num(w, "revalidated", st->cache_revalidated, 1);
        json_num(w, "stores", st->cache_stores, 1);
        json_num(w, "evictions", st->cache_evictions, 1);
        json_num(w, "store_failures", st->cache_store_failures, 1);
        json_num(w, "collapsed", st->cache_collapsed, 1);
        json_num(w, "invalidations", st->cache_invalidations, 1);
        w_put(w, "}", 1);
#endif
        w_put(w, S(",\"pools\":["));
        return 1;
    }
    if ((d = status_device(&p->cfg, k - 2, &pool, &pos)) == NULL) {
        if (k - 2 > p->cfg.ndevices)
            return 0;
        w_put(w, S("]}\n"));
        return 1;
    }
    if (pos == 0) {
        const rp_pool *pl = &p->cfg.pools[pool];
        w_put(w, pool ? ",{" : "{", pool ? 2 : 1);
        w_put(w, S("\"name\":\""));
        w_cstr(w, pl->name);
        w_put(w, "\"", 1);
        json_str(w, "balance", pl->balance == RP_BALANCE_LEASTCONN ? "leastconn" : "wrr");
        json_num(w, "retries", pl->retries, 1);
        w_put(w, S(",\"devices\":["));
    } else {
        w_put(w, ",", 1);
    }
    json_device(p, d, w);
    if (pos == p->cfg.pools[pool].ndevices - 1)
        w_put(w, S("]}"));
    return 1;
}

static const struct {
    const char *name, *type;
} prom_metrics[] = {
    {"rproxy_device_up", "gauge"},
    {"rproxy_device_weight", "gauge"},
    {"rproxy_device_effective_weight", "gauge"},
    {"rproxy_device_active_connections", "gauge"},
    {"rproxy_device_idle_connections", "gauge"},
    {"rproxy_device_requests_total", "counter"},
    {"rproxy_device_failures_total", "counter"},
    {"rproxy_device_probe_failures_total", "counter"},
};

static void
prom_global(wbuf *w, const char *name, const char *type, uint64_t v)
{
    w_put(w, S("# TYPE "));
    w_cstr(w, name);
    w_put(w, " ", 1);
    w_cstr(w, type);
    w_put(w, "\n", 1);
    w_cstr(w, name);
    w_put(w, " ", 1);
    w_num(w, v);
    w_put(w, "\n", 1);
}

/* Item k of the Prometheus page: globals, then one sample per device and
 * metric, grouped by metric as the format wants. */
static int
status_prom(rp_proxy *p, uint64_t k, wbuf *w)
{
    const rp_stats *st = &p->stats;
    uint64_t nd = p->cfg.ndevices, m, di;
    const rp_device *d;
    uint64_t v[RP_COUNT(prom_metrics)];
    int i;
    if (k == 0) {
        prom_global(w, "rproxy_uptime_seconds", "gauge", (p->now - p->t_started) / 1000);
        prom_global(w, "rproxy_connections_accepted_total", "counter", st->accepted);
        prom_global(w, "rproxy_connections_refused_total", "counter", st->refused_conns);
        prom_global(w, "rproxy_requests_total", "counter", st->requests);
        prom_global(w, "rproxy_bad_requests_total", "counter", st->bad_requests);
        w_put(w, S("# TYPE rproxy_responses_total counter\n"));
        for (i = 1; i < 6; i++) {
            w_put(w, S("rproxy_responses_total{code=\""));
            w_num(w, (uint64_t)i);
            w_put(w, S("xx\"} "));
            w_num(w, st->responses[i]);
            w_put(w, "\n", 1);
        }
        return 1;
    }
    if (k == 1) {
        prom_global(w, "rproxy_device_connects_total", "counter", st->device_connects);
        prom_global(w, "rproxy_device_reuses_total", "counter", st->device_reuses);
        prom_global(w, "rproxy_retries_total", "counter", st->retries);
        prom_global(w, "rproxy_timeouts_total", "counter", st->timeouts);
        prom_global(w, "rproxy_tls_handshakes_total", "counter", st->tls_handshakes);
        prom_global(w, "rproxy_tls_failures_total", "counter", st->tls_failures);
#if RP_ENABLE_CACHE
        prom_global(w, "rproxy_cache_entries", "gauge", p->cache.nentries);
        prom_global(w, "rproxy_cache_bytes_used", "gauge",
                    (uint64_t)p->cache.nblk_used * RP_CACHE_BLOCK);
        prom_global(w, "rproxy_cache_hits_total", "counter", st->cache_hits);
        prom_global(w, "rproxy_cache_misses_total", "counter", st->cache_misses);
        prom_global(w, "rproxy_cache_revalidated_total", "counter", st->cache_revalidated);
        prom_global(w, "rproxy_cache_stores_total", "counter", st->cache_stores);
        prom_global(w, "rproxy_cache_evictions_total", "counter", st->cache_evictions);
        prom_global(w, "rproxy_cache_store_failures_total", "counter", st->cache_store_failures);
        prom_global(w, "rproxy_cache_collapsed_total", "counter", st->cache_collapsed);
        prom_global(w, "rproxy_cache_invalidations_total", "counter", st->cache_invalidations);
#endif
        return 1;
    }
    k -= 2;
    if (nd == 0 || (m = k / nd) >= RP_COUNT(prom_metrics))
        return 0;
    di = k % nd;
    d = &p->cfg.devices[di];
    v[0] = (uint64_t)device_is_up(p, d), v[1] = d->weight, v[2] = (uint64_t)d->effective;
    v[3] = d->active, v[4] = d->idle, v[5] = d->requests, v[6] = d->failures;
    v[7] = d->probe_failures;
    if (di == 0) {
        w_put(w, S("# TYPE "));
        w_cstr(w, prom_metrics[m].name);
        w_put(w, " ", 1);
        w_cstr(w, prom_metrics[m].type);
        w_put(w, "\n", 1);
    }
    w_cstr(w, prom_metrics[m].name);
    w_put(w, S("{pool=\""));
    w_cstr(w, p->cfg.pools[d->pool].name);
    w_put(w, S("\",device=\""));
    w_addr(w, &d->addr);
    w_put(w, S("\"} "));
    w_num(w, v[m]);
    w_put(w, "\n", 1);
    return 1;
}

#define STATUS_ITEM 1536 /* bytes one page item may take */

/* Write page items while the client's buffer has room; finish the exchange
 * after the last one. */
static int
local_step(rp_proxy *p, rp_conn *c)
{
    int chunked = !(c->flags & F_HTTP10), moved = 0;
    for (;;) {
        char item[STATUS_ITEM];
        wbuf w, o;
        int more;
        if (c->flags & F_DEAD)
            return exchange_fail(p, c, 0);
        if (buf_room(p, &c->out) < STATUS_ITEM + 16)
            return moved;
        w.p = item, w.n = 0, w.cap = sizeof(item), w.full = 0;
        more = !(c->flags & F_HEAD) && ((c->flags & F_PROM) ? status_prom(p, c->left, &w)
                                                             : status_json(p, c->left, &w));
        o = buf_writer(p, &c->out);
        if (more && chunked) {
            static const char hex[] = "0123456789abcdef";
            char h[4] = {hex[(w.n >> 8) & 15], hex[(w.n >> 4) & 15], hex[w.n & 15], 0};
            w_put(&o, h, 3);
            w_put(&o, S("\r\n"));
        }
        w_put(&o, item, w.n);
        if (chunked && !(c->flags & F_HEAD))
            w_put(&o, more ? "\r\n" : "0\r\n\r\n", more ? 2 : 5);
        buf_commit(&c->out, &o);
        SENT(c, o.n);
        c->left++;
        if (!more) {
            c->flags |= F_RESP_DONE | F_REQ_DONE;
            return exchange_end(p, c);
        }
        moved = 1;
    }
}

/* A request for the status path: answer it here instead of routing it. */
static int
status_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m)
{
    rp_str q = m->target;
    wbuf w;
    size_t i;
    if (!status_allowed(&p->cfg, &c->peer))
        return reply_error(p, c, 403);
    if (!(c->flags & (F_HEAD | F_GET)))
        return reply_error(p, c, 405);
    if (c->mode != M_NONE)
        return reply_error(p, c, 400);
    p->stats.status_requests++;
    for (i = 0; i + 17 <= q.n; i++)
        if (memcmp(q.p + i, "format=prometheus", 17) == 0)
            c->flags |= F_PROM;
    c->in.r += c->head_len;
    c->flags &= ~F_HOLD;
    if (c->flags & F_HTTP10)
        c->flags &= ~F_KEEP; /* close-delimited */
    c->status = 200;
    c->left = 0;
    c->state = CS_LOCAL;
    w = buf_writer(p, &c->out);
    w_put(&w, S("HTTP/1.1 200 OK\r\nContent-Type: "));
    if (c->flags & F_PROM)
        w_put(&w, S("text/plain; version=0.0.4\r\n"));
    else
        w_put(&w, S("application/json\r\n"));
    w_put(&w, S("Cache-Control: no-store\r\n"));
    if (!(c->flags & F_HTTP10))
        w_put(&w, S("Transfer-Encoding: chunked\r\n"));
    if (!(c->flags & F_KEEP))
        w_put(&w, S("Connection: close\r\n"));
    w_put(&w, S("\r\n"));
    buf_commit(&c->out, &w);
    SENT(c, w.n);
    c->flags |= F_RESP_HEAD;
    return 1;
}
#endif /* RP_ENABLE_STATUS */

/* ==== [14] Event loop ====
 * rp_poll waits in the port, hands each report to its connection, then runs
 * the timers that are due.  Timers are a deadline per connection and one
 * "earliest deadline" hint; the full sweep runs only when the hint is due.
 * A listener that hits EMFILE pauses for 100 ms instead of spinning. */

#define LISTEN_PAUSE_MS 100
#define TLS_EVICT_AGE_MS 1000 /* a handshake this old may lose its slot */

#if RP_ENABLE_TLS
/* Out of TLS slots: the client that has waited longest in its handshake
 * (at least min_age ms) gives its slot up, so floods of half-open
 * handshakes cannot lock real clients out until the handshake timeout.
 * Returns 1 if one was freed. */
static int
tls_evict(rp_proxy *p, const rp_conn *keep, uint64_t min_age)
{
    rp_conn *old = NULL;
    int i;
    for (i = 0; i < RP_MAX_CONNS; i++) {
        rp_conn *c = &p->clients[i];
        if (c != keep && c->state == CS_HEAD && c->tls && !(c->flags & F_HSDONE) &&
            (!old || c->t_start < old->t_start))
            old = c;
    }
    if (!old || old->t_start + min_age > p->now)
        return 0;
    p->stats.tls_failures++;
    conn_free(p, old);
    return 1;
}
#endif

/* Stop watching listener l for ms; timers_run resumes it. */
static void
listener_pause(rp_proxy *p, struct rp_lsock *l, uint32_t ms)
{
    rp_port_watch(l->sock, 0, l);
    l->paused_until = p->now + ms;
    timer_hint(p, l->paused_until);
}

static void
listener_event(rp_proxy *p, struct rp_lsock *l)
{
    int lsn = (int)(l - p->lsocks);
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    int i;
    for (i = 0; i < 64; i++) {
        rp_addr peer;
        rp_conn *c;
        rp_sock s;
#if RP_ENABLE_TLS
        if (p->cfg.listeners[lsn].tls && !p->tls_top && p->tls_fresh == RP_MAX_TLS_CONNS &&
            !tls_evict(p, NULL, TLS_EVICT_AGE_MS)) {
            /* no TLS slot: leave new clients in the kernel's queue until one
             * frees (tls_release), rather than accept and drop them */
            l->slot_wait = 1;
            listener_pause(p, l, TLS_EVICT_AGE_MS); /* look again then */
            return;
        }
#endif
        if ((s = rp_port_accept(l->sock, &peer)) == RP_EAGAIN)
            return;
        if (s < 0) {
            p->stats.accept_errors++;
            listener_pause(p, l, LISTEN_PAUSE_MS);
            RP_LOG(RP_LOG_WARN, ("accept failed (%s): pausing", rp_strerror(s)));
            return;
        }
        if ((c = conn_alloc(p, K_CLIENT)) == NULL) {
            p->stats.refused_conns++;
            rp_port_send(s, busy, sizeof(busy) - 1);
            rp_port_close(s);
            continue;
        }
        p->stats.accepted++;
        request_reset(c);
        c->sock = s;
        c->peer = peer;
        c->lsn = (uint8_t)lsn;
#if RP_ENABLE_TLS
        if (p->cfg.listeners[lsn].tls && (c->tls = tls_take(p, &p->cfg.listeners[lsn])) == NULL &&
            (!tls_evict(p, c, 0) || (c->tls = tls_take(p, &p->cfg.listeners[lsn])) == NULL)) {
            p->stats.tls_refused++;
            conn_free(p, c);
            continue;
        }
#endif
        c->t_start = p->now;
        conn_rearm(p, c);
    }
}

static void
connect_done(rp_proxy *p, rp_conn *d)
{
    rp_conn *c = d->link;
    int rc = rp_port_connect_result(d->sock);
    if (rc == RP_EAGAIN)
        return;
    if (rc != RP_OK) {
        device_failed(p, c, d, rc, 1); /* frees d: the error is kept in c->err */
    } else {
        d->state = DS_BUSY;
        d->ready |= RP_EV_WRITE;
    }
    if (c->state != CS_FREE)
        pair_service(p, c);
}

static void
on_event(rp_proxy *p, void *ud, unsigned ev)
{
    rp_conn *c = (rp_conn *)ud;
    if (*(uint8_t *)ud == K_LISTENER) {
        listener_event(p, (struct rp_lsock *)ud);
        return;
    }
    if (c->state == CS_FREE)
        return;
    c->ready |= (uint8_t)(ev & (RP_EV_READ | RP_EV_WRITE));
    if (ev & RP_EV_ERROR)
        c->ready |= RP_EV_READ | RP_EV_WRITE;
    if (c->kind == K_DEVICE) {
        if (c->state == DS_IDLE) { /* the device closed or babbled: drop it */
            conn_free(p, c);
            return;
        }
        if (c->state == DS_CONNECTING) {
            connect_done(p, c);
            return;
        }
        if (c->state == DS_PROBE) {
            probe_event(p, c);
            return;
        }
        if ((c = c->link) == NULL)
            return;
    }
    pair_service(p, c);
}

static void
conn_timeout(rp_proxy *p, rp_conn *x)
{
    rp_conn *c = x->kind == K_CLIENT ? x : x->link;
    int k = x->tkind;
    x->deadline = 0;
    x->tkind = T_NONE;
    switch (k) {
    case T_PROBE:
        probe_finish(p, x, 0);
        return;
#if RP_ENABLE_CACHE
    case T_CWAIT: /* the fill ended, or waiting for it took too long */
        cache_resume(p, x);
        break;
#endif
    case T_HEAD:
        if (buf_len(&x->in)) {
            p->stats.timeouts++;
            reply_error(p, x, 408);
            break;
        }
        /* a silent probe of the port: just close */
        /* fall through */
    case T_IDLE: case T_LINGER: case T_DIDLE: case T_TUNNEL: case T_HANDSHAKE:
        conn_free(p, x);
        return;
    case T_CLIENT:
        if (x->state == CS_CLOSING) {
            conn_free(p, x);
            return;
        }
        p->stats.timeouts++;
        if (out_blocked(x)) { /* not reading: drop it */
            access_log(p, x);
            conn_free(p, x);
            return;
        }
        exchange_fail(p, x, (x->flags & F_RESP_HEAD) ? 0 : 408);
        break;
    case T_CONNECT: case T_DEVICE:
        if (!c) {
            conn_free(p, x);
            return;
        }
        p->stats.timeouts++;
        device_failed(p, c, x, RP_ETIMEDOUT, k == T_CONNECT); /* 504, or the next device */
        break;
    default:
        return;
    }
    if (c->state != CS_FREE)
        pair_service(p, c);
}

static void
timers_run(rp_proxy *p)
{
    int i;
    p->next_timer = 0;
    for (i = 0; i < RP_MAX_LISTENERS; i++) {
        struct rp_lsock *l = &p->lsocks[i];
        if (l->sock < 0 || !l->paused_until)
            continue;
        if (l->paused_until <= p->now) {
            l->paused_until = 0;
            rp_port_watch(l->sock, RP_EV_READ, l);
        } else {
            timer_hint(p, l->paused_until);
        }
    }
    for (i = 0; i < RP_MAX_CONNS + RP_MAX_UPSTREAM; i++) {
        rp_conn *c = i < RP_MAX_CONNS ? &p->clients[i] : &p->devices[i - RP_MAX_CONNS];
        if (c->state == CS_FREE || !c->deadline)
            continue;
        if (c->deadline <= p->now)
            conn_timeout(p, c);
        else
            timer_hint(p, c->deadline);
    }
    health_run(p);
}

/* ==== [15] Public API ==== */

const char *
rp_version(void)
{
    return RP_VERSION;
}

size_t
rp_proxy_size(void)
{
    return sizeof(rp_proxy);
}

/* Slots c[0..n) of one kind onto their free list, the first on top. */
static void
slots_init(rp_proxy *p, rp_conn *c, int n, int kind)
{
    rp_conn **list = free_list(p, kind);
    while (n-- > 0) {
        c[n].kind = (uint8_t)kind;
        c[n].sock = -1;
        c[n].slot = (uint16_t)n;
        c[n].next = *list;
        *list = &c[n];
    }
}

int
rp_init(rp_proxy *p)
{
    int i;
    memset(p, 0, offsetof(rp_proxy, bufs));
    slots_init(p, p->clients, RP_MAX_CONNS, K_CLIENT);
    slots_init(p, p->devices, RP_MAX_UPSTREAM, K_DEVICE);
    for (i = 0; i < RP_MAX_LISTENERS; i++) {
        p->lsocks[i].kind = K_LISTENER;
        p->lsocks[i].sock = -1;
    }
    p->cfg.t_client_header = RP_TIMEOUT_CLIENT_HEADER_MS;
    p->cfg.t_client_idle = RP_TIMEOUT_CLIENT_IDLE_MS;
    p->cfg.t_connect = RP_TIMEOUT_CONNECT_MS;
    p->cfg.t_device = RP_TIMEOUT_DEVICE_MS;
    p->cfg.t_device_idle = RP_TIMEOUT_DEVICE_IDLE_MS;
    p->cfg.t_handshake = RP_TIMEOUT_HANDSHAKE_MS;
    p->cfg.cache_max_object = RP_CACHE_BYTES / 4;
    p->cfg.cache_lock_ms = 5000;
    p->cfg.via = "rproxy";
    return RP_OK;
}

int
rp_config_load(rp_proxy *p, const rp_config *image)
{
    int i, k;
    if (image->nlisteners > RP_MAX_LISTENERS || image->npools > RP_MAX_POOLS ||
        image->ndevices > RP_MAX_DEVICES || image->nroutes > RP_MAX_ROUTES)
        return RP_EINVAL;
    for (i = 0; i < image->npools; i++)
        for (k = 0; k < image->pools[i].ndevices; k++)
            if (image->pools[i].devices[k] >= image->ndevices)
                return RP_EINVAL;
    p->cfg = *image;
    return RP_OK;
}

#if RP_ENABLE_TLS
/* Before the first TLS listener opens: a seeded generator (refuse to run
 * TLS without one), the session cache, and the EC code with its curves
 * narrowed to X25519, P-256 (key exchange) and P-384 (P-384 certificates). */
static int
tls_start(rp_proxy *p)
{
    unsigned char probe[16];
    int i, any = 0;
    for (i = 0; i < p->cfg.nlisteners; i++)
        any |= p->cfg.listeners[i].tls;
    if (!any)
        return RP_OK;
    if (rp_port_random(probe, sizeof(probe)) != RP_OK) {
        RP_LOG(RP_LOG_ERROR, ("no random generator: refusing to start TLS"));
        return RP_EIO;
    }
    p->tls_ec = *br_ec_get_default();
    p->tls_ec.supported_curves &= (1u << BR_EC_curve25519) | (1u << BR_EC_secp256r1) |
                                  (1u << BR_EC_secp384r1);
    br_ssl_session_cache_lru_init(&p->tls_cache, p->tls_cache_buf, sizeof(p->tls_cache_buf));
    return RP_OK;
}
#endif

/* Close the listening sockets that are open (rp_init marks all closed). */
static void
listeners_close(rp_proxy *p)
{
    int i;
    for (i = 0; i < RP_MAX_LISTENERS; i++)
        if (p->lsocks[i].sock >= 0) {
            rp_port_close(p->lsocks[i].sock);
            p->lsocks[i].sock = -1;
        }
}

int
rp_start(rp_proxy *p)
{
    int i;
    p->now = rp_port_now_ms();
#if RP_ENABLE_TLS
    if ((i = tls_start(p)) != RP_OK)
        return i;
#endif
    for (i = 0; i < p->cfg.nlisteners; i++) {
        rp_sock s = rp_port_listen(&p->cfg.listeners[i].addr, 511);
        if (s < 0) {
            listeners_close(p);
            return RP_EADDR;
        }
        p->lsocks[i].sock = s;
        rp_port_watch(s, RP_EV_READ, &p->lsocks[i]);
    }
    p->started = 1;
    p->t_started = p->now;
    for (i = 0; i < p->cfg.ndevices; i++) { /* first probes, staggered */
        rp_device *dv = &p->cfg.devices[i];
        const rp_pool *pl = &p->cfg.pools[dv->pool];
        if (pl->health)
            dv->probe_next = p->now + 1 + (uint32_t)i * 37 % pl->interval_ms;
    }
    health_run(p);
    return RP_OK;
}

int
rp_poll(rp_proxy *p, int timeout_ms)
{
    rp_event ev[64];
    int i, n, wait = timeout_ms;
    p->now = rp_port_now_ms();
    if (p->next_timer) {
        uint64_t left = p->next_timer > p->now ? p->next_timer - p->now : 0;
        if (wait < 0 || left < (uint64_t)wait)
            wait = (int)left;
    }
    n = rp_port_wait(ev, (int)RP_COUNT(ev), wait);
    if (n < 0)
        return n;
    p->now = rp_port_now_ms();
    p->batch = ev;
    p->batch_n = n;
    for (i = 0; i < n; i++) {
        p->batch_at = i + 1;
        if (ev[i].ud)
            on_event(p, ev[i].ud, ev[i].events);
    }
    p->batch = NULL;
    p->batch_n = p->batch_at = 0;
    if (p->next_timer && p->now >= p->next_timer)
        timers_run(p);
    return n;
}

void
rp_shutdown(rp_proxy *p)
{
    int i;
    p->stopping = 1;
    listeners_close(p);
    for (i = 0; i < RP_MAX_CONNS; i++) {
        rp_conn *c = &p->clients[i];
        if (c->state == CS_HEAD && !buf_len(&c->in) && !buf_len(&c->out))
            conn_free(p, c);
    }
    for (i = 0; i < RP_MAX_UPSTREAM; i++)
        if (p->devices[i].state == DS_IDLE)
            conn_free(p, &p->devices[i]);
}

int
rp_pool_pick(rp_proxy *p, int pool, uint32_t tried)
{
    if (pool < 0 || pool >= p->cfg.npools)
        return -1;
    return pool_pick(p, &p->cfg.pools[pool], tried);
}

void
rp_device_report(rp_proxy *p, int dev, int err)
{
    if (dev < 0 || dev >= p->cfg.ndevices)
        return;
    if (err == RP_OK)
        device_ok(p, dev);
    else
        device_fail(p, dev, err);
}

int
rp_device_up(const rp_proxy *p, int dev)
{
    return dev >= 0 && dev < p->cfg.ndevices && p->cfg.devices[dev].weight > 0 &&
           device_is_up(p, &p->cfg.devices[dev]);
}

int
rp_active(const rp_proxy *p)
{
    int i, n = 0;
    for (i = 0; i < RP_MAX_CONNS; i++)
        n += p->clients[i].state != CS_FREE;
    return n;
}

/*
 * test_parser.c -- table-driven tests of the HTTP/1.1 head parser and the
 * chunked-body scanner: rp_http_head_end, rp_http_parse_request,
 * rp_http_parse_response, rp_chunked_step.
 *
 * SPDX-License-Identifier: MIT
 *
 * Every input is copied right before a PROT_NONE page (guard.h), so a read
 * one byte past the end crashes.  One table row per case; a row's expected
 * result is what the proxy would conclude: rp_http_head_end on the whole
 * input first (bare CR/LF and NUL are its job), then the parse on the head
 * length it returned.
 */
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "tap.h"
#include "guard.h"

#define S(lit) lit, sizeof(lit) - 1 /* a literal and its length (NULs kept) */
#define SKIP_FLAGS 0xFFFFFFFFu       /* do not compare flags */
#define NO_CL (-1)                  /* content_length when absent */
#define SKIP_CL (-2)                /* do not compare content_length */

/* Flag shorthands for the tables. */
#define CH RP_HF_CHUNKED
#define LEN RP_HF_LENGTH
#define CLOSE RP_HF_CONN_CLOSE
#define KEEP RP_HF_CONN_KEEP
#define CUPG RP_HF_CONN_UPG
#define UPG RP_HF_UPGRADE
#define E100 RP_HF_EXPECT100
#define ABS RP_HF_ABSOLUTE
#define HOST RP_HF_HOST

/* ==== helpers ==== */

/* v equals want; want "" accepts any pointer with n == 0. */
static int
check_view(rp_str v, const char *want, const char *what, const char *name)
{
    if (!want)
        return 1;
    if (!*want)
        return CHECK_INT(v.n, 0, "%s: %s is empty", name, what);
    return CHECK_MEM(v.p, v.n, want, "%s: %s", name, what);
}

/* v lies inside b[0..len) (zero-copy views) or is empty. */
static int
view_inside(rp_str v, const char *b, size_t len)
{
    return v.n == 0 || (v.p >= b && v.p + v.n <= b + len);
}

/* The value of the first header named name (case-insensitive), or NULL. */
static const rp_str *
find_header(const rp_http_msg *m, const char *name)
{
    size_t i, n = strlen(name);
    for (i = 0; i < m->nheaders; i++)
        if (m->headers[i].name.n == n && strncasecmp(m->headers[i].name.p, name, n) == 0)
            return &m->headers[i].value;
    return NULL;
}

/* head_end on the whole placed input, then the parse on what it found.
 * *hl gets head_end's answer.  The placed copy is returned in *bp. */
static int
run_parse(int response, const char *in, size_t len, rp_http_msg *m, long *hl,
          const char **bp)
{
    size_t scan = 0;
    const char *b = guard_place(in, len);
    long h;
    memset(m, 0x5a, sizeof *m); /* catch fields the parser forgets to set */
    *bp = b;
    h = rp_http_head_end(b, len, &scan);
    *hl = h;
    if (h < 0)
        return (int)h;
    if (response)
        return rp_http_parse_response(b, (size_t)h, m);
    return rp_http_parse_request(b, (size_t)h, m);
}

/* ==== request table ==== */

struct req_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    unsigned flags;       /* exact, when rc == RP_OK; SKIP_FLAGS: skip */
    const char *method;   /* NULL: skip; "": empty */
    const char *target;
    const char *host;
    int minor;            /* -1: skip */
    long long cl;         /* NO_CL when absent, SKIP_CL: skip */
    int nheaders;         /* -1: skip */
};

static const struct req_case req_cases[] = {
    /* valid requests */
    {"origin-form GET", S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_OK, HOST, "GET", "/", "a", 1, NO_CL, 1},
    {"path and query", S("GET /x/y?z=1&w=%20 HTTP/1.1\r\nHost: example.com\r\n\r\n"), RP_OK, HOST, "GET", "/x/y?z=1&w=%20", "example.com", 1, NO_CL, 1},
    {"host with port", S("GET /p HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), RP_OK, HOST, "GET", "/p", "example.com:8080", 1, NO_CL, 1},
    {"host header name any case", S("GET / HTTP/1.1\r\nhOsT: a.b\r\n\r\n"), RP_OK, HOST, "GET", "/", "a.b", 1, NO_CL, 1},
    {"absolute-form with port", S("GET http://h.example:81/p?x=1 HTTP/1.1\r\nHost: h.example:81\r\n\r\n"), RP_OK, ABS | HOST, "GET", "/p?x=1", "h.example:81", 1, NO_CL, 1},
    {"absolute-form no port", S("GET http://h.example/p HTTP/1.1\r\nHost: h.example\r\n\r\n"), RP_OK, ABS | HOST, "GET", "/p", "h.example", 1, NO_CL, 1},
    {"absolute-form authority wins over Host", S("GET http://a.example/p HTTP/1.1\r\nHost: b.example\r\n\r\n"), RP_OK, ABS | HOST, "GET", "/p", "a.example", 1, NO_CL, 1},
    /* an empty path stays empty here; forwarding writes "/" (test_conn_forward) */
    {"absolute-form empty path", S("GET http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n"), RP_OK, ABS | HOST, "GET", "", "h.example", 1, NO_CL, 1},
    {"absolute-form query only", S("GET http://h.example?q=1 HTTP/1.1\r\nHost: h.example\r\n\r\n"), RP_OK, ABS | HOST, "GET", "?q=1", "h.example", 1, NO_CL, 1},
    {"absolute-form userinfo", S("GET http://u@h.example/ HTTP/1.1\r\nHost: h.example\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"absolute-form empty authority", S("GET http:///p HTTP/1.1\r\nHost: h.example\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"absolute-form scheme in upper case", S("GET HTTP://h.example/q HTTP/1.1\r\nHost: h.example\r\n\r\n"), RP_OK, ABS | HOST, "GET", "/q", "h.example", 1, NO_CL, 1},
    {"OPTIONS *", S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), RP_OK, HOST, "OPTIONS", "*", "a", 1, NO_CL, 1},
    {"HTTP/1.0 without Host", S("GET /old HTTP/1.0\r\n\r\n"), RP_OK, 0, "GET", "/old", "", 0, NO_CL, 0},
    {"HTTP/1.0 with Host", S("GET / HTTP/1.0\r\nHost: a\r\n\r\n"), RP_OK, HOST, "GET", "/", "a", 0, NO_CL, 1},
    {"HTTP/1.0 keep-alive", S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), RP_OK, KEEP, "GET", "/", "", 0, NO_CL, 1},
    {"OWS trimmed around Host", S("GET / HTTP/1.1\r\nHost: \t a.b \t\r\n\r\n"), RP_OK, HOST, "GET", "/", "a.b", 1, NO_CL, 1},
    {"no OWS at all", S("GET / HTTP/1.1\r\nHost:a\r\n\r\n"), RP_OK, HOST, "GET", "/", "a", 1, NO_CL, 1},
    {"empty header value", S("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Sp:   \r\n\r\n"), RP_OK, HOST, "GET", "/", "a", 1, NO_CL, 3},
    {"value with inner spaces and obs-text", S("GET / HTTP/1.1\r\nHost: a\r\nX-V: one  two\xc3\xa9 three\r\n\r\n"), RP_OK, HOST, "GET", "/", "a", 1, NO_CL, 2},
    {"POST Content-Length", S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n"), RP_OK, HOST | LEN, "POST", "/u", "a", 1, 42, 2},
    {"Content-Length 0", S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), RP_OK, HOST | LEN, "POST", "/u", "a", 1, 0, 2},
    {"Content-Length leading zeros", S("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), RP_OK, HOST | LEN, "POST", "/u", "a", 1, 7, 2},
    {"Content-Length big", S("PUT /u HTTP/1.1\r\nHost: a\r\ncontent-length: 1099511627776\r\n\r\n"), RP_OK, HOST | LEN, "PUT", "/u", "a", 1, 1099511627776LL, 2},
    {"chunked", S("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), RP_OK, HOST | CH, "POST", "/u", "a", 1, NO_CL, 2},
    {"Connection: close", S("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), RP_OK, HOST | CLOSE, "GET", "/", "a", 1, NO_CL, 2},
    {"Connection: Close (case)", S("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"), RP_OK, HOST | CLOSE, "GET", "/", "a", 1, NO_CL, 2},
    {"Connection: keep-alive", S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"), RP_OK, HOST | KEEP, "GET", "/", "a", 1, NO_CL, 2},
    {"Connection list", S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Foo ,close\r\n\r\n"), RP_OK, HOST | KEEP | CLOSE, "GET", "/", "a", 1, NO_CL, 2},
    {"Connection: Upgrade + Upgrade", S("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), RP_OK, HOST | CUPG | UPG, "GET", "/ws", "a", 1, NO_CL, 3},
    {"two Connection headers", S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"), RP_OK, HOST | KEEP | CUPG | UPG, "GET", "/", "a", 1, NO_CL, 4},
    {"Upgrade without Connection", S("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), RP_OK, HOST | UPG, "GET", "/", "a", 1, NO_CL, 2},
    {"Expect: 100-continue", S("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"), RP_OK, HOST | LEN | E100, "PUT", "/u", "a", 1, 3, 3},
    {"Expect: 100-Continue (case)", S("PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"), RP_OK, HOST | LEN | E100, "PUT", "/u", "a", 1, 3, 3},
    {"token method with tchars", S("M-SEARCH! /x HTTP/1.1\r\nHost: a\r\n\r\n"), RP_OK, HOST, "M-SEARCH!", "/x", "a", 1, NO_CL, 1},
    {"field name tchars", S("GET / HTTP/1.1\r\nHost: a\r\nX-A_b.c~d!#$%&'*+^`|: v\r\n\r\n"), RP_OK, HOST, "GET", "/", "a", 1, NO_CL, 2},
    {"DELETE", S("DELETE /item/7 HTTP/1.1\r\nHost: a\r\n\r\n"), RP_OK, HOST, "DELETE", "/item/7", "a", 1, NO_CL, 1},
    {"HEAD", S("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_OK, HOST, "HEAD", "/", "a", 1, NO_CL, 1},

    /* request line */
    {"HTTP/2.0 -> 505", S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), RP_EVERSION, 0, 0, 0, 0, -1, 0, -1},
    {"HTTP/1.2 -> 505", S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), RP_EVERSION, 0, 0, 0, 0, -1, 0, -1},
    {"HTTP/0.9 -> 505", S("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), RP_EVERSION, 0, 0, 0, 0, -1, 0, -1},
    {"HTTP/3.0 -> 505", S("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), RP_EVERSION, 0, 0, 0, 0, -1, 0, -1},
    {"lowercase http/1.1", S("GET / http/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"HTTX version", S("GET / HTTX/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"version HTTP/11", S("GET / HTTP/11\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"version trailing junk", S("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"space after version", S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"missing version", S("GET /\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"missing target", S("GET HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"double space", S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"tab separator", S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"leading space", S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"garbage request line", S("hello\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"bad method char @", S("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"bad method char (", S("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"method with 8-bit byte", S("G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"target not / or absolute", S("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"control char in target", S("GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"DEL in target", S("GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},

    /* Host */
    {"HTTP/1.1 without Host", S("GET / HTTP/1.1\r\nX-A: b\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"two Host headers", S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"two Host headers differ", S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},

    /* Content-Length / Transfer-Encoding framing */
    {"CL + TE", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"TE + CL", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"duplicate CL equal", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"duplicate CL differ", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL +5", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL -5", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL inner space", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL hex", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL hex digits", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL comma list", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL comma list no space", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL empty", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"CL overflow", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"TE gzip, chunked -> 501", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), RP_ENOTIMPL, 0, 0, 0, 0, -1, 0, -1},
    {"TE chunked, chunked", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"TE chunked, gzip", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"TE gzip only", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"two TE headers chunked", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"TE chunkedx", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"TE in HTTP/1.0", S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},

    /* header syntax */
    {"obs-fold SP", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"obs-fold HTAB", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"obs-fold first line", S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"space before colon", S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"tab before colon", S("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"space in field name", S("GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"bad char in field name", S("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"field name with /", S("GET / HTTP/1.1\r\nHost: a\r\nX/A: b\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"empty field name", S("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"no colon", S("GET / HTTP/1.1\r\nHost: a\r\nXA\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"control char in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01" "c\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"Expect other -> 417", S("GET / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n"), RP_EEXPECT, 0, 0, 0, 0, -1, 0, -1},
    {"Expect 200-ok -> 417", S("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\n"), RP_EEXPECT, 0, 0, 0, 0, -1, 0, -1},

    /* line endings and NUL (found by rp_http_head_end) */
    {"bare LF endings", S("GET / HTTP/1.1\nHost: a\n\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"bare LF in one header", S("GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"bare LF as final line", S("GET / HTTP/1.1\r\nHost: a\r\n\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"bare CR in request line", S("GET / HTTP/1.1\rHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"bare CR in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"NUL in value", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"NUL in target", S("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
    {"NUL in method", S("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n"), RP_EINVAL, 0, 0, 0, 0, -1, 0, -1},
};

static void
test_request_table(void)
{
    size_t i;
    for (i = 0; i < sizeof req_cases / sizeof req_cases[0]; i++) {
        const struct req_case *c = &req_cases[i];
        rp_http_msg m;
        long hl;
        const char *b;
        int rc = run_parse(0, c->in, c->len, &m, &hl, &b);
        size_t k;
        int inside = 1;
        if (!CHECK_INT(rc, c->rc, "req: %s -> %s", c->name, rp_strerror(c->rc)))
            continue;
        if (c->rc != RP_OK)
            continue;
        CHECK_INT(hl, (long)c->len, "req: %s: head length", c->name);
        if (c->flags != SKIP_FLAGS)
            CHECK_INT(m.flags, c->flags, "req: %s: flags", c->name);
        check_view(m.method, c->method, "method", c->name);
        check_view(m.target, c->target, "target", c->name);
        check_view(m.host, c->host, "host", c->name);
        if (c->minor >= 0)
            CHECK_INT(m.minor, c->minor, "req: %s: minor", c->name);
        if (c->cl != SKIP_CL)
            CHECK_INT(m.content_length, c->cl, "req: %s: content_length", c->name);
        if (c->nheaders >= 0)
            CHECK_INT(m.nheaders, c->nheaders, "req: %s: nheaders", c->name);
        for (k = 0; k < m.nheaders && k < RP_MAX_HEADERS; k++)
            inside &= view_inside(m.headers[k].name, b, c->len) &&
                      view_inside(m.headers[k].value, b, c->len);
        inside &= view_inside(m.method, b, c->len) && view_inside(m.host, b, c->len);
        CHECK(inside, "req: %s: views point into the input", c->name);
    }
}

/* Header values are trimmed of OWS; names kept as sent. */
static void
test_request_headers(void)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Lead:   lead\r\nX-Trail: trail \t \r\n"
                             "X-Both: \t both words \t\r\nX-Empty:\r\nX-Sp: \t \r\nX-Colon: a:b: c\r\n\r\n";
    rp_http_msg m;
    long hl;
    const char *b;
    const rp_str *v;
    int rc = run_parse(0, in, sizeof in - 1, &m, &hl, &b);
    if (!CHECK_INT(rc, RP_OK, "headers: parse"))
        return;
    CHECK_INT(m.nheaders, 7, "headers: count");
    CHECK_MEM(m.headers[1].name.p, m.headers[1].name.n, "X-Lead", "headers: name kept as sent");
    v = find_header(&m, "x-lead");
    CHECK(v && v->n == 4 && memcmp(v->p, "lead", 4) == 0, "headers: leading OWS trimmed");
    v = find_header(&m, "X-Trail");
    CHECK(v && v->n == 5 && memcmp(v->p, "trail", 5) == 0, "headers: trailing OWS trimmed");
    v = find_header(&m, "X-Both");
    CHECK(v && v->n == 10 && memcmp(v->p, "both words", 10) == 0, "headers: both sides trimmed, inner kept");
    v = find_header(&m, "X-Empty");
    CHECK(v && v->n == 0, "headers: empty value");
    v = find_header(&m, "X-Sp");
    CHECK(v && v->n == 0, "headers: whitespace-only value is empty");
    v = find_header(&m, "X-Colon");
    CHECK(v && v->n == 6 && memcmp(v->p, "a:b: c", 6) == 0, "headers: colons inside value");
}

/* Build "GET <target> HTTP/1.1\r\nHost: a\r\n" + nh extra headers + pad so
 * the whole head is total bytes (when total > 0). */
static size_t
build_req(char *out, size_t cap, size_t target_len, int nh, size_t total)
{
    size_t n = 0;
    int i;
    memcpy(out + n, "GET /", 5);
    n += 5;
    memset(out + n, 'a', target_len - 1);
    n += target_len - 1;
    memcpy(out + n, " HTTP/1.1\r\nHost: a\r\n", 20);
    n += 20;
    for (i = 0; i < nh; i++)
        n += (size_t)snprintf(out + n, cap - n, "X-H%d: v%d\r\n", i, i);
    if (total) { /* "X-Pad: " + pad + "\r\n", then the final "\r\n" */
        size_t pad = total - (n + 7 + 2 + 2);
        memcpy(out + n, "X-Pad: ", 7);
        n += 7;
        memset(out + n, 'p', pad);
        n += pad;
        memcpy(out + n, "\r\n", 2);
        n += 2;
    }
    memcpy(out + n, "\r\n", 2);
    n += 2;
    return n;
}

/* Limits: target length (414) and header count (431).  The head-size limit
 * (RP_MAX_HEAD -> 431) is the connection's job (test_conn_errors). */
static void
test_request_limits(void)
{
    static char buf[32768];
    static const struct {
        const char *name;
        size_t target_len;
        int nh; /* extra headers besides Host */
        size_t total;
        int rc;
    } cases[] = {
        {"target of RP_MAX_URI bytes", RP_MAX_URI, 0, 0, RP_OK},
        {"target of RP_MAX_URI+1 bytes -> 414", RP_MAX_URI + 1, 0, 0, RP_ETOOLONG},
        {"target 3/2 RP_MAX_URI bytes -> 414", RP_MAX_URI * 3 / 2, 0, 0, RP_ETOOLONG},
        {"RP_MAX_HEADERS fields", 1, RP_MAX_HEADERS - 1, 0, RP_OK},
        {"RP_MAX_HEADERS+1 fields -> 431", 1, RP_MAX_HEADERS, 0, RP_EHDRTOOBIG},
        {"200 fields -> 431", 1, 200, 0, RP_EHDRTOOBIG},
        {"head of RP_MAX_HEAD bytes", 1, 0, RP_MAX_HEAD, RP_OK},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rp_http_msg m;
        long hl;
        const char *b;
        size_t n = build_req(buf, sizeof buf, cases[i].target_len, cases[i].nh, cases[i].total);
        int rc;
        if (cases[i].total)
            CHECK_INT(n, cases[i].total, "limits: %s: built size", cases[i].name);
        rc = run_parse(0, buf, n, &m, &hl, &b);
        CHECK_INT(rc, cases[i].rc, "limits: %s", cases[i].name);
        if (rc == RP_OK && cases[i].nh)
            CHECK_INT(m.nheaders, cases[i].nh + 1, "limits: %s: nheaders", cases[i].name);
        if (rc == RP_OK && cases[i].target_len > 1)
            CHECK_INT(m.target.n, cases[i].target_len, "limits: %s: target length", cases[i].name);
    }
}

/* ==== response table ==== */

struct resp_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    unsigned flags;
    int status;
    const char *reason;
    int minor;
    long long cl;
};

static const struct resp_case resp_cases[] = {
    {"200 OK with CL", S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), RP_OK, LEN, 200, "OK", 1, 5},
    {"HTTP/1.0 404", S("HTTP/1.0 404 Not Found\r\n\r\n"), RP_OK, 0, 404, "Not Found", 0, NO_CL},
    {"reason with spaces and tab", S("HTTP/1.1 500 Internal \tServer Error\r\nContent-Length: 0\r\n\r\n"), RP_OK, LEN, 500, "Internal \tServer Error", 1, 0},
    {"empty reason", S("HTTP/1.1 204 \r\n\r\n"), RP_OK, 0, 204, "", 1, NO_CL},
    {"chunked", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), RP_OK, CH, 200, "OK", 1, NO_CL},
    {"close-delimited", S("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"), RP_OK, CLOSE, 200, "OK", 1, NO_CL},
    {"keep-alive", S("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n"), RP_OK, KEEP | LEN, 200, "OK", 0, 2},
    {"101 upgrade", S("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), RP_OK, CUPG | UPG, 101, "Switching Protocols", 1, NO_CL},
    {"100 continue", S("HTTP/1.1 100 Continue\r\n\r\n"), RP_OK, 0, 100, "Continue", 1, NO_CL},
    {"304 with CL", S("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"), RP_OK, LEN, 304, "Not Modified", 1, 99},
    {"599", S("HTTP/1.1 599 X\r\n\r\n"), RP_OK, 0, 599, "X", 1, NO_CL},
    {"OWS header values", S("HTTP/1.1 200 OK\r\nContent-Length:\t 12 \t\r\n\r\n"), RP_OK, LEN, 200, "OK", 1, 12},

    {"CL + TE", S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"duplicate CL", S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"CL not a number", S("HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"CL negative", S("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"status 2 digits", S("HTTP/1.1 20 OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"status 4 digits", S("HTTP/1.1 2000 OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"status letters", S("HTTP/1.1 abc OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"status mixed", S("HTTP/1.1 2x0 OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"status missing", S("HTTP/1.1 \r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"status signed", S("HTTP/1.1 +20 OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"garbage status line", S("hello world\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"HTTX version", S("HTTX/1.1 200 OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"HTTP/2 version", S("HTTP/2 200 OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"double space before status", S("HTTP/1.1  200 OK\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"bad field name", S("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"space before colon", S("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"obs-fold", S("HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"bare LF", S("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"NUL in reason", S("HTTP/1.1 200 O\0K\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
    {"TE chunked, chunked", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), RP_EINVAL, 0, 0, 0, -1, 0},
};

static void
test_response_table(void)
{
    size_t i;
    for (i = 0; i < sizeof resp_cases / sizeof resp_cases[0]; i++) {
        const struct resp_case *c = &resp_cases[i];
        rp_http_msg m;
        long hl;
        const char *b;
        int rc = run_parse(1, c->in, c->len, &m, &hl, &b);
        if (!CHECK_INT(rc, c->rc, "resp: %s -> %s", c->name, rp_strerror(c->rc)))
            continue;
        if (c->rc != RP_OK)
            continue;
        CHECK_INT(m.status, c->status, "resp: %s: status", c->name);
        check_view(m.reason, c->reason, "reason", c->name);
        CHECK_INT(m.minor, c->minor, "resp: %s: minor", c->name);
        CHECK_INT(m.flags, c->flags, "resp: %s: flags", c->name);
        CHECK_INT(m.content_length, c->cl, "resp: %s: content_length", c->name);
    }
}

static void
test_response_limits(void)
{
    static char buf[16384];
    size_t n = 0;
    int i;
    rp_http_msg m;
    long hl;
    const char *b;
    n += (size_t)snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n");
    for (i = 0; i < RP_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X-H%d: %d\r\n", i, i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    CHECK_INT(run_parse(1, buf, n, &m, &hl, &b), RP_OK, "resp: RP_MAX_HEADERS fields");
    CHECK_INT(m.nheaders, RP_MAX_HEADERS, "resp: RP_MAX_HEADERS fields: nheaders");
    n -= 2;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "X-One-More: 1\r\n\r\n");
    CHECK_INT(run_parse(1, buf, n, &m, &hl, &b), RP_EHDRTOOBIG, "resp: RP_MAX_HEADERS+1 fields -> RP_EHDRTOOBIG");
}

/* ==== rp_http_head_end ==== */

/* Feed in[0..len) growing one byte at a time (each prefix placed before the
 * guard page), scan carried between calls.  Returns the first non-EAGAIN
 * answer and sets *at to the prefix length that produced it. */
static long
head_end_bytewise(const char *in, size_t len, size_t *at, int *scan_ok)
{
    size_t k, scan = 0;
    *scan_ok = 1;
    for (k = 1; k <= len; k++) {
        const char *b = guard_place(in, k);
        long r = rp_http_head_end(b, k, &scan);
        if (scan > k)
            *scan_ok = 0;
        if (r != RP_EAGAIN) {
            *at = k;
            return r;
        }
    }
    *at = len;
    return RP_EAGAIN;
}

struct head_case {
    const char *name;
    const char *in;
    size_t len;
    long want; /* head length, or an error */
};

static const struct head_case head_cases[] = {
    {"request", S("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n"), 35},
    {"request + body bytes after", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"), 47},
    {"two pipelined heads: first only", S("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"), 28},
    {"response", S("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 38},
    {"CR LF CR then LF only at end", S("GET / HTTP/1.1\r\nA: \rb\r\n\r\n"), RP_EINVAL},
    {"bare CR", S("GET / HTTP/1.1\rHost: a\r\n\r\n"), RP_EINVAL},
    {"bare CR before CRLF", S("GET / HTTP/1.1\r\r\n\r\n"), RP_EINVAL},
    {"bare LF", S("GET / HTTP/1.1\nHost: a\r\n\r\n"), RP_EINVAL},
    {"bare LF at end", S("GET / HTTP/1.1\r\nHost: a\r\n\n"), RP_EINVAL},
    {"LF LF", S("GET / HTTP/1.1\n\n"), RP_EINVAL},
    {"NUL", S("GET / HTTP/1.1\r\nHost: a\0\r\n\r\n"), RP_EINVAL},
    {"NUL first byte", S("\0GET / HTTP/1.1\r\n\r\n"), RP_EINVAL},
    {"incomplete", S("GET / HTTP/1.1\r\nHost: a\r\n"), RP_EAGAIN},
    {"incomplete CR LF CR", S("GET / HTTP/1.1\r\nHost: a\r\n\r"), RP_EAGAIN},
};

static void
test_head_end(void)
{
    size_t i;
    for (i = 0; i < sizeof head_cases / sizeof head_cases[0]; i++) {
        const struct head_case *c = &head_cases[i];
        size_t scan = 0, at = 0;
        int scan_ok;
        const char *b = guard_place(c->in, c->len);
        long r = rp_http_head_end(b, c->len, &scan);
        CHECK_INT(r, c->want, "head_end whole: %s", c->name);
        r = head_end_bytewise(c->in, c->len, &at, &scan_ok);
        CHECK_INT(r, c->want, "head_end byte by byte: %s", c->name);
        CHECK(scan_ok, "head_end byte by byte: %s: scan never past len", c->name);
        if (c->want > 0)
            CHECK_INT(at, c->want, "head_end byte by byte: %s: EAGAIN until the last head byte", c->name);
    }
    /* len 0 */
    {
        size_t scan = 0;
        CHECK_INT(rp_http_head_end(guard_buf(0), 0, &scan), RP_EAGAIN, "head_end: empty input");
    }
    /* no size limit in head_end itself */
    {
        static char big[20000 + 64];
        size_t n = build_req(big, sizeof big, 1, 0, 20000), scan = 0;
        const char *b = guard_place(big, n);
        CHECK_INT(rp_http_head_end(b, n, &scan), (long)n, "head_end: 20000-byte head (no limit here)");
    }
    /* resume: 10 bytes, then the rest in chunks of 7 */
    {
        static const char in[] = "GET /resume HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789\r\n\r\n";
        size_t n = sizeof in - 1, k, scan = 0;
        long r = RP_EAGAIN;
        for (k = 10; k < n + 7; k += 7) {
            size_t m = k < n ? k : n;
            r = rp_http_head_end(guard_place(in, m), m, &scan);
            if (r != RP_EAGAIN || m == n)
                break;
        }
        CHECK_INT(r, (long)n, "head_end: resumes over uneven pieces");
    }
}

/* ==== chunked ==== */

struct chunk_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;            /* RP_OK: must end done; RP_EINVAL: must fail */
    const char *data;  /* decoded data (RP_OK) */
    long consumed;     /* bytes consumed until done; -1: all of in */
};

static const struct chunk_case chunk_cases[] = {
    {"two chunks", S("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), RP_OK, "hello world", -1},
    {"last chunk only", S("0\r\n\r\n"), RP_OK, "", -1},
    {"uppercase hex", S("A\r\n0123456789\r\n0\r\n\r\n"), RP_OK, "0123456789", -1},
    {"lowercase hex", S("a\r\n0123456789\r\n0\r\n\r\n"), RP_OK, "0123456789", -1},
    {"two-digit hex 1f", S("1f\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n"), RP_OK, "0123456789abcdef0123456789abcde", -1},
    {"leading zeros", S("0005\r\nhello\r\n000\r\n\r\n"), RP_OK, "hello", -1},
    {"16 hex digits", S("0000000000000005\r\nhello\r\n0\r\n\r\n"), RP_OK, "hello", -1},
    {"extension", S("5;a=b\r\nhello\r\n0\r\n\r\n"), RP_OK, "hello", -1},
    {"extensions, quoted", S("5;a=b;c=\"x y\"\r\nhello\r\n0;z\r\n\r\n"), RP_OK, "hello", -1},
    {"trailers", S("5\r\nhello\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n"), RP_OK, "hello", -1},
    {"CRLF inside data", S("4\r\n\r\n\r\n\r\n0\r\n\r\n"), RP_OK, "\r\n\r\n", -1},
    {"binary data", S("3\r\n\0\xff\n\r\n0\r\n\r\n"), RP_OK, NULL, -1},
    {"stops after last chunk", S("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), RP_OK, "x", 11},
    {"many small chunks", S("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n2\r\nde\r\n0\r\n\r\n"), RP_OK, "abcde", -1},

    {"non-hex size", S("g\r\nx\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"empty size", S("\r\nx\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"negative size", S("-1\r\nx\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"size with 0x", S("0x5\r\nhello\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"size leading space", S(" 5\r\nhello\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"17 hex digits overflow", S("11111111111111111\r\nhello\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"overflow 20 digits", S("FFFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"missing CRLF after data", S("5\r\nhelloX\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"LF only after data", S("5\r\nhello\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"bare LF after size", S("5\nhello\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"bare CR after size", S("5\rhello\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
    {"bare LF ends last chunk", S("5\r\nhello\r\n0\n\r\n"), RP_EINVAL, NULL, 0},
    {"bare LF ends trailers", S("5\r\nhello\r\n0\r\n\n"), RP_EINVAL, NULL, 0},
    {"bare LF in trailer line", S("5\r\nhello\r\n0\r\nX-T: 1\n\r\n"), RP_EINVAL, NULL, 0},
    {"NUL in size line", S("5\0\r\nhello\r\n0\r\n\r\n"), RP_EINVAL, NULL, 0},
};

/* Feed in[0..len) in pieces of at most step bytes (each piece placed before
 * the guard page).  Collects data spans.  Returns RP_OK when done, the error,
 * or RP_EAGAIN if input ran out; *used = bytes consumed. */
static int
chunk_feed(const char *in, size_t len, size_t step, char *out, size_t *outn,
           size_t *used, int *contract_ok)
{
    rp_chunked c;
    size_t off = 0;
    memset(&c, 0, sizeof c);
    *outn = 0;
    *contract_ok = 1;
    while (off < len && !c.done) {
        size_t k = len - off < step ? len - off : step;
        const char *b = guard_place(in + off, k);
        long r = rp_chunked_step(&c, b, k);
        if (r < 0) {
            *used = off;
            return (int)r;
        }
        if (r == 0 && !c.done) { /* must consume when given bytes */
            *contract_ok = 0;
            break;
        }
        if ((size_t)r > k) {
            *contract_ok = 0;
            break;
        }
        if (c.in_data) {
            memcpy(out + *outn, b, (size_t)r);
            *outn += (size_t)r;
        }
        off += (size_t)r;
    }
    *used = off;
    if (c.done) {
        /* once done, nothing more is consumed */
        if (off < len) {
            const char *b = guard_place(in + off, len - off);
            if (rp_chunked_step(&c, b, len - off) != 0)
                *contract_ok = 0;
        }
        return RP_OK;
    }
    return RP_EAGAIN;
}

static void
test_chunked_table(void)
{
    static const size_t steps[] = {(size_t)-1, 1, 2, 3, 7};
    static const char *const step_names[] = {"whole", "1 byte", "2 bytes", "3 bytes", "7 bytes"};
    size_t i, s;
    for (i = 0; i < sizeof chunk_cases / sizeof chunk_cases[0]; i++) {
        const struct chunk_case *c = &chunk_cases[i];
        for (s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            char out[256];
            size_t outn, used;
            int ok;
            int rc = chunk_feed(c->in, c->len, steps[s], out, &outn, &used, &ok);
            if (!CHECK_INT(rc, c->rc, "chunked %s: %s", step_names[s], c->name))
                continue;
            CHECK(ok, "chunked %s: %s: consumes > 0 per call until done, 0 after", step_names[s], c->name);
            if (c->rc != RP_OK)
                continue;
            CHECK_INT(used, c->consumed < 0 ? (long)c->len : c->consumed, "chunked %s: %s: consumed", step_names[s], c->name);
            if (c->data)
                CHECK_MEM(out, outn, c->data, "chunked %s: %s: data", step_names[s], c->name);
            else
                CHECK(outn == 3 && memcmp(out, "\0\xff\n", 3) == 0, "chunked %s: %s: binary data", step_names[s], c->name);
        }
    }
}

/* Returned spans: all framing or all data; data spans never exceed the
 * chunk; n == 0 consumes nothing; large sizes do not need the data yet. */
static void
test_chunked_misc(void)
{
    rp_chunked c;
    long r;
    memset(&c, 0, sizeof c);
    CHECK_INT(rp_chunked_step(&c, guard_buf(0), 0), 0, "chunked: n == 0 consumes nothing");

    memset(&c, 0, sizeof c);
    {
        static const char in[] = "3\r\nabcdef";
        const char *b = guard_place(in, sizeof in - 1);
        size_t off = 0;
        int framing_seen = 0;
        while (off < sizeof in - 1) {
            r = rp_chunked_step(&c, b + off, sizeof in - 1 - off);
            if (r <= 0)
                break;
            if (c.in_data) {
                CHECK_MEM(b + off, (size_t)r, "abc", "chunked: data span stops at chunk end");
                break;
            }
            framing_seen = 1;
            off += (size_t)r;
        }
        CHECK(framing_seen, "chunked: size line returned as a framing span");
    }

    memset(&c, 0, sizeof c);
    {
        static const char in[] = "FFFFFFFF\r\nxyz";
        const char *b = guard_place(in, sizeof in - 1);
        size_t off = 0;
        long total_data = 0;
        while (off < sizeof in - 1) {
            r = rp_chunked_step(&c, b + off, sizeof in - 1 - off);
            if (r <= 0)
                break;
            if (c.in_data)
                total_data += r;
            off += (size_t)r;
        }
        CHECK_INT(total_data, 3, "chunked: 4 GiB chunk streams what is there");
        CHECK(!c.done, "chunked: 4 GiB chunk not done");
    }
}

static const tap_test tests[] = {
    TAP_TEST(request_table),
    TAP_TEST(request_headers),
    TAP_TEST(request_limits),
    TAP_TEST(response_table),
    TAP_TEST(response_limits),
    TAP_TEST(head_end),
    TAP_TEST(chunked_table),
    TAP_TEST(chunked_misc),
};

int
main(int argc, char **argv)
{
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

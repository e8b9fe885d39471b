/*
 * fuzz_request.c -- libFuzzer target: rp_http_head_end + rp_http_parse_request.
 *
 * SPDX-License-Identifier: MIT
 *
 * The input is what a client sends.  Checked:
 *   - rp_http_head_end gives the same answer scanning the whole input at
 *     once and scanning it as it grows byte by byte (the resumable *scan);
 *     a head length is within the input and ends in CRLF CRLF;
 *   - rp_http_parse_request on that head returns only documented codes and,
 *     when it accepts, every view lies inside the head, no value holds CR, LF
 *     or NUL, framing is unambiguous (never both chunked and a length), the
 *     version is 1.0 or 1.1, and HTTP/1.1 has a host;
 *   - parsing is deterministic (same input -> same result and views).
 */
#include "fuzz.h"

static void
check_request(const char *h, size_t n)
{
    static rp_http_msg m, m2;
    size_t i;
    int rc = rp_http_parse_request(h, n, &m);
    FZ_CHECK(rc == RP_OK || rc == RP_EINVAL || rc == RP_ETOOLONG || rc == RP_EHDRTOOBIG ||
                 rc == RP_ENOTIMPL || rc == RP_EVERSION || rc == RP_EEXPECT,
             "undocumented return %d", rc);
    FZ_CHECK(rp_http_parse_request(h, n, &m2) == rc, "not deterministic");
    if (rc != RP_OK)
        return;
    FZ_CHECK(m.method.n > 0 && fz_within(m.method, h, n) && fz_clean(m.method), "method view");
    FZ_CHECK(fz_within(m.target, h, n) && fz_clean(m.target), "target view");
    FZ_CHECK(m.target.n <= RP_MAX_URI, "target %zu > RP_MAX_URI", m.target.n);
    FZ_CHECK(fz_within(m.host, h, n) && fz_clean(m.host), "host view");
    for (i = 0; i < m.host.n; i++)
        FZ_CHECK(m.host.p[i] != ' ' && m.host.p[i] != '\t', "whitespace in host");
    FZ_CHECK(m.minor == 0 || m.minor == 1, "minor %d", m.minor);
    FZ_CHECK(!((m.flags & RP_HF_CHUNKED) && (m.flags & RP_HF_LENGTH)), "CL and TE both");
    FZ_CHECK(m.content_length >= -1, "content_length %lld", (long long)m.content_length);
    FZ_CHECK((m.content_length >= 0) == !!(m.flags & RP_HF_LENGTH), "length flag");
    FZ_CHECK(m.minor == 0 || (m.flags & RP_HF_HOST), "HTTP/1.1 without host accepted");
    FZ_CHECK(!(m.minor == 0 && (m.flags & RP_HF_CHUNKED)), "chunked in HTTP/1.0 accepted");
    FZ_CHECK(m.nheaders <= RP_MAX_HEADERS, "nheaders");
    for (i = 0; i < m.nheaders; i++) {
        rp_header *f = &m.headers[i];
        FZ_CHECK(f->name.n > 0 && fz_within(f->name, h, n) && fz_clean(f->name), "name %zu", i);
        FZ_CHECK(fz_within(f->value, h, n) && fz_clean(f->value), "value %zu", i);
        FZ_CHECK(memchr(f->name.p, ':', f->name.n) == NULL, "colon in name");
        FZ_CHECK(f->value.n == 0 || (f->value.p[0] != ' ' && f->value.p[f->value.n - 1] != ' '),
                 "value not trimmed");
    }
    FZ_CHECK(memcmp(&m, &m2, offsetof(rp_http_msg, headers)) == 0, "views differ between runs");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *b = fz_copy(data, size);
    size_t scan = 0, scan2 = 0, len;
    long whole = rp_http_head_end(b, size, &scan), inc = RP_EAGAIN;
    FZ_CHECK(whole == RP_EAGAIN || whole == RP_EINVAL || (whole >= 4 && (size_t)whole <= size),
             "head_end returned %ld for %zu bytes", whole, size);
    FZ_CHECK(scan <= size, "scan %zu past %zu", scan, size);
    for (len = 1; len <= size && inc == RP_EAGAIN; len++) {
        inc = rp_http_head_end(b, len, &scan2);
        FZ_CHECK(scan2 <= len, "scan %zu past %zu", scan2, len);
    }
    FZ_CHECK(inc == whole, "incremental head_end %ld, whole %ld", inc, whole);
    if (whole > 0) {
        char *h = fz_copy(b, (size_t)whole);
        FZ_CHECK(memcmp(h + whole - 4, "\r\n\r\n", 4) == 0, "head does not end in CRLF CRLF");
        check_request(h, (size_t)whole);
        free(h);
    }
    free(b);
    return 0;
}

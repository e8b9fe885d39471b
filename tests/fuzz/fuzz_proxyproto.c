/*
 * fuzz_proxyproto.c -- libFuzzer target: proxy_header_parse
 * (src/21-proxyproto.c), white-box (src/rp_int.h).
 *
 * SPDX-License-Identifier: MIT
 *
 * The input is the first bytes of a connection (an exact-size heap copy).
 * Checked: the result is RP_EAGAIN, RP_EINVAL or a length 1..size, at most
 * 107 for a v1 line ("PROXY ...\r\n", ending in CRLF) and RP_PROXY_V2_MAX
 * for v2 (16 + its length field); the source is family 0, 4 or 6 (with a
 * port only then); a TCP4 line's source formats back to its text;
 * "need more" only below those limits; the header alone parses the same
 * (length and source), every shorter prefix needs more, and a prefix that
 * is malformed makes every longer input malformed.
 */
#include "fuzz.h"
#include "rp_int.h"

static long
pp(const uint8_t *d, size_t n, rp_addr *a)
{
    char *c = fz_copy(d, n);
    long rc = proxy_header_parse((const uint8_t *)c, n, a);
    free(c);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rp_addr a, b;
    long rc = pp(data, size, &a), r2;
    size_t k;
    FZ_CHECK(rc == RP_EAGAIN || rc == RP_EINVAL || (rc > 0 && (size_t)rc <= size), "rc %ld of %zu", rc, size);
    if (rc == RP_EAGAIN)
        FZ_CHECK(size < RP_PROXY_V2_MAX, "need more at %zu bytes", size);
    if (rc <= 0) {
        /* a malformed prefix: malformed from there on */
        if (rc == RP_EAGAIN)
            for (k = size / 2; k < size; k += (size - k + 1) / 2)
                FZ_CHECK(pp(data, k, &b) == RP_EAGAIN, "prefix %zu malformed, %zu bytes need more", k, size);
        return 0;
    }
    FZ_CHECK(a.family == 0 || a.family == 4 || a.family == 6, "family %d", a.family);
    FZ_CHECK(a.family || a.port == 0, "port without an address");
    if (data[0] == 'P') {
        FZ_CHECK(rc <= 107 && data[rc - 2] == '\r' && data[rc - 1] == '\n', "v1 length %ld", rc);
        if (size > 11 && memcmp(data, "PROXY TCP4 ", 11) == 0) {
            char t[48];
            size_t n = rp_addr_format(&a, t, sizeof t);
            FZ_CHECK(a.family == 4 && memcmp(data + 11, t, n) == 0 && data[11 + n] == ' ', "TCP4 source %s", t);
        }
    } else {
        FZ_CHECK(rc >= 16 && rc <= RP_PROXY_V2_MAX && (size_t)rc == 16u + (data[14] << 8 | data[15]),
                 "v2 length %ld", rc);
    }
    r2 = pp(data, (size_t)rc, &b);
    FZ_CHECK(r2 == rc && memcmp(&a, &b, sizeof a) == 0, "the header alone: %ld", r2);
    for (k = 0; k < (size_t)rc; k += 1 + (size_t)rc / 16)
        FZ_CHECK(pp(data, k, &b) == RP_EAGAIN, "prefix %zu of a %ld-byte header", k, rc);
    FZ_CHECK(pp(data, (size_t)rc - 1, &b) == RP_EAGAIN, "one byte short");
    return 0;
}

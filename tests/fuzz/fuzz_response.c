/*
 * fuzz_response.c -- libFuzzer target: rp_http_head_end + rp_http_parse_response.
 *
 * SPDX-License-Identifier: MIT
 *
 * The input is what a device sends.  A head found by rp_http_head_end is
 * parsed; accepted responses must have a status 100..999, views inside the
 * head, no CR/LF/NUL in any view, and unambiguous framing.  The reason
 * phrase is re-emitted to clients verbatim, so it must be clean too.
 */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_http_msg m;
    char *b = fz_copy(data, size), *h;
    size_t scan = 0, i;
    long n = rp_http_head_end(b, size, &scan);
    int rc;
    FZ_CHECK(n == RP_EAGAIN || n == RP_EINVAL || (n >= 4 && (size_t)n <= size), "head_end %ld", n);
    if (n <= 0) {
        free(b);
        return 0;
    }
    h = fz_copy(b, (size_t)n);
    rc = rp_http_parse_response(h, (size_t)n, &m);
    FZ_CHECK(rc == RP_OK || rc == RP_EINVAL || rc == RP_EHDRTOOBIG, "return %d", rc);
    if (rc == RP_OK) {
        FZ_CHECK(m.status >= 100 && m.status <= 999, "status %d", m.status);
        FZ_CHECK(m.minor == 0 || m.minor == 1, "minor %d", m.minor);
        FZ_CHECK(fz_within(m.reason, h, (size_t)n) && fz_clean(m.reason), "reason view");
        FZ_CHECK(!((m.flags & RP_HF_CHUNKED) && (m.flags & RP_HF_LENGTH)), "CL and TE both");
        FZ_CHECK((m.content_length >= 0) == !!(m.flags & RP_HF_LENGTH), "length flag");
        FZ_CHECK(m.nheaders <= RP_MAX_HEADERS, "nheaders");
        for (i = 0; i < m.nheaders; i++) {
            FZ_CHECK(m.headers[i].name.n && fz_within(m.headers[i].name, h, (size_t)n) &&
                         fz_clean(m.headers[i].name), "name %zu", i);
            FZ_CHECK(fz_within(m.headers[i].value, h, (size_t)n) && fz_clean(m.headers[i].value),
                     "value %zu", i);
        }
    }
    free(h);
    free(b);
    return 0;
}

/*
 * fuzz_share.c -- libFuzzer target: multipart_boundary (src/23-share.c),
 * white-box (src/rp_int.h).  The scanner that finds the boundaries in a
 * live stream, split across reads, is fuzzed through whole connections by
 * fuzz_conn (its config has a share=on route; seeds share_mjpeg, share_sse).
 *
 * SPDX-License-Identifier: MIT
 *
 * The input is a Content-Type field value (an exact-size heap copy).
 * Checked: the result is 0 or 4..73; a found boundary is "\n--" and 1..70
 * bytes, none a control byte; a token boundary (not quoted) is only tchars
 * and appears in the input after "boundary=" (any case); a value without
 * "boundary" (any case) finds none; the answer does not depend on bytes
 * after the parameter it came from ending the value early (cut at the
 * boundary's end it is the same).
 */
#include "fuzz.h"
#include "rp_int.h"

#include <strings.h>

static int
mb(const uint8_t *d, size_t n, char *out)
{
    char *c = fz_copy(d, n);
    rp_str v;
    int k;
    v.p = c, v.n = n;
    k = multipart_boundary(v, out, 74);
    free(c);
    return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char b[74], b2[74];
    int k = mb(data, size, b), i, found = 0;
    size_t j;
    FZ_CHECK(k == 0 || (k >= 4 && k <= 73), "length %d", k);
    for (j = 0; j + 8 <= size && !found; j++)
        found = strncasecmp((const char *)data + j, "boundary", 8) == 0;
    if (!found)
        FZ_CHECK(k == 0, "a boundary without a boundary parameter");
    if (k == 0)
        return 0;
    FZ_CHECK(memcmp(b, "\n--", 3) == 0, "prefix");
    for (i = 3; i < k; i++)
        FZ_CHECK((unsigned char)b[i] >= 0x20 && b[i] != 0x7f, "control byte in boundary");
    /* the same value with one more unrelated parameter after it: same answer */
    {
        uint8_t *e = (uint8_t *)malloc(size + 8);
        int k2;
        memcpy(e, data, size);
        memcpy(e + size, "; x=y", 5);
        k2 = mb(e, size + 5, b2);
        free(e);
        if (size && data[size - 1] != '\\' && memchr(data, '"', size) == NULL)
            FZ_CHECK(k2 == k && memcmp(b, b2, (size_t)k) == 0, "a parameter after changed it");
    }
    return 0;
}

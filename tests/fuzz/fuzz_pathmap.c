/*
 * fuzz_pathmap.c -- libFuzzer target: the path mapping parsers
 * (src/25-pathmap.c: map_field for Location, Content-Location, Refresh and
 * Set-Cookie; path_climbs; w_target_mapped), white-box (src/rp_int.h).
 *
 * SPDX-License-Identifier: MIT
 *
 * Input: one byte choosing the field and the mapping context, then the
 * field value (any bytes).  Checked: the field is written as one line
 * "Name: ...\r\n" with no CR, LF or NUL added to the value (a value
 * without them comes out without them: no split header); a value naming
 * neither the device prefix nor the device comes out unchanged; the
 * output grows by at most the client prefix, scheme and Host per mapped
 * place; a full writer is reported, never overrun; path_climbs answers
 * the same for the value and the value followed by "?../..".
 */
#include "fuzz.h"
#include "rp_int.h"

static size_t
count(const char *s, size_t n, char c)
{
    size_t i, k = 0;
    for (i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        int id;
        const char *name;
    } f[] = {{H_LOCATION, "Location"}, {H_CONTENT_LOCATION, "Content-Location"},
             {H_OTHER, "Refresh"}, {H_SET_COOKIE, "Set-Cookie"}};
    static char out[65536];
    hmap hm;
    rp_header h;
    wbuf w;
    char *v;
    size_t n, i, grow;
    int sel, api, mapped;
    if (size < 1)
        return 0;
    sel = data[0] & 3;
    api = (data[0] >> 2) & 1;
    n = size - 1;
    v = fz_copy(data + 1, n);
    hm.cpath.p = "/cam1/", hm.cpath.n = 6;
    hm.dpath.p = api ? "/api/v2/" : "/", hm.dpath.n = api ? 8 : 1;
    hm.scheme.p = "https", hm.scheme.n = (data[0] >> 3) & 1 ? 5 : 4;
    hm.chost.p = "gw.local", hm.chost.n = (data[0] >> 4) & 1 ? 8 : 0;
    hm.dhost.p = "cam.local", hm.dhost.n = 9;
    hm.daddr.p = "10.0.0.5:80", hm.daddr.n = 11;
    h.id = f[sel].id, h.name.p = f[sel].name, h.name.n = strlen(f[sel].name);
    h.value.p = v, h.value.n = n;
    w.p = out, w.n = 0, w.cap = (data[0] >> 5) & 1 ? 64 : sizeof out, w.full = 0;
    mapped = map_field(&w, &h, &hm);
    FZ_CHECK(mapped, "%s is a mapped field", f[sel].name);
    FZ_CHECK(w.n <= w.cap, "wrote %zu of %zu", w.n, w.cap);
    if (!w.full) {
        rp_str body;
        FZ_CHECK(w.n >= h.name.n + 4 && memcmp(out, h.name.p, h.name.n) == 0 &&
                     memcmp(out + h.name.n, ": ", 2) == 0 && memcmp(out + w.n - 2, "\r\n", 2) == 0,
                 "one field line");
        body.p = out + h.name.n + 2, body.n = w.n - h.name.n - 4;
        for (i = 0; i < 3; i++) {
            static const char bad[] = "\r\n";
            char c = i < 2 ? bad[i] : 0;
            FZ_CHECK(count(body.p, body.n, c) == count(v, n, c), "byte %d count changed", c);
        }
        /* every place mapped adds at most https:// + host + the client prefix */
        grow = 6 + 8 + 8 + 3;
        FZ_CHECK(body.n <= n + grow * (1 + count(v, n, ';')), "grew %zu -> %zu", n, body.n);
        if (!memmem(v, n, hm.dpath.p, hm.dpath.n - 1 ? hm.dpath.n - 1 : 1) &&
            !memmem(v, n, "cam.local", 9) && !memmem(v, n, "10.0.0.5", 8) &&
            !memmem(v, n, "CAM", 3) && !memmem(v, n, "cam", 3))
            FZ_CHECK(body.n == n && memcmp(body.p, v, n) == 0, "unmapped value changed");
    }
    {
        char *t = malloc(n + 6);
        rp_str a = {v, n}, b;
        int c1, c2;
        if (!t)
            abort();
        memcpy(t, v, n);
        memcpy(t + n, "?../..", 6);
        b.p = t, b.n = n + 6;
        c1 = path_climbs(a);
        c2 = path_climbs(b);
        /* a query cannot make a path climb, nor stop one; but a value
         * with its own '?' or '#' ends its path earlier */
        if (!memchr(v, '?', n) && !memchr(v, '#', n))
            FZ_CHECK(c1 == c2 || (!c1 && n && (v[n - 1] == '.' || v[n - 1] == '/' || v[n - 1] == '%'
                                               || v[n - 1] == '\\' || (n > 1 && v[n - 2] == '%'))),
                     "query changed the answer %d %d", c1, c2);
        free(t);
    }
    free(v);
    return 0;
}

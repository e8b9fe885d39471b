/*
 * fuzz_auth.c -- libFuzzer target: src/20-auth.c, white-box (src/rp_int.h).
 *
 * SPDX-License-Identifier: MIT
 *
 * Built with RP_ENABLE_AUTH=1 and RP_AUTH_MAX_ROUNDS=2000 (fuzz.mk), so a
 * hash costs at most 2,000 rounds.  The first byte chooses what the rest
 * (an exact-size heap copy) is:
 *
 * 0 mod 3: an Authorization value, decoded into a buffer of the second
 *   byte's size (0..255, a heap block of exactly that size).  Checked: the
 *   result is one of RP_OK, RP_EINVAL, RP_ENOTIMPL, RP_ETOOLONG; RP_OK only
 *   for a "Basic" scheme, a non-empty user without ':', no CTL byte in
 *   either part, and the credentials base64-encoded again give back the
 *   value's token exactly (strict, canonical decoding).
 * 1 mod 3: a users file.  Checked: RP_OK or RP_ECONFIG; an error names a
 *   line of the text and a NUL-ended message; an accepted table keeps its
 *   bounds, every name and hash NUL-ended inside its arena, names unique,
 *   every hash one sha_crypt_check takes.
 * 2 mod 3: a stored hash (up to the first NUL), then a password.  Checked:
 *   sha_crypt_check and sha_crypt_verify agree on malformed ones; for a
 *   valid one, verify says 0 or 1, and sha_crypt(password, hash) makes a
 *   hash that verify takes for the password, equal to the input exactly
 *   when verify said 1.
 */
#include "fuzz.h"
#include "rp_int.h"

#undef S
#define S(lit) lit, sizeof(lit) - 1

static void
fz_basic(const uint8_t *d, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t cap, i, o = 0, tok;
    char *v, *buf, *enc;
    rp_str val, u, p;
    int rc;
    if (n < 1)
        return;
    cap = d[0];
    v = fz_copy(d + 1, n - 1);
    buf = (char *)malloc(cap ? cap : 1);
    val.p = v, val.n = n - 1;
    u.p = p.p = NULL;
    rc = basic_credentials(val, buf, cap, &u, &p);
    FZ_CHECK(rc == RP_OK || rc == RP_EINVAL || rc == RP_ENOTIMPL || rc == RP_ETOOLONG, "rc %d", rc);
    if (rc == RP_OK) {
        size_t len = u.n + 1 + p.n;
        FZ_CHECK(val.n >= 6 && strncasecmp(v, "basic ", 6) == 0, "scheme");
        FZ_CHECK(u.p == buf && u.n >= 1 && p.p == buf + u.n + 1 && len <= cap, "views %zu %zu", u.n, p.n);
        FZ_CHECK(buf[u.n] == ':' && !memchr(u.p, ':', u.n), "split at the first colon");
        for (i = 0; i < len; i++)
            FZ_CHECK((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f, "CTL at %zu", i);
        for (tok = 5; tok < val.n && v[tok] == ' '; tok++)
            ;
        enc = (char *)malloc(len / 3 * 4 + 8);
        for (i = 0; i < len; i += 3) {
            unsigned b0 = (unsigned char)buf[i], b1 = i + 1 < len ? (unsigned char)buf[i + 1] : 0;
            unsigned b2 = i + 2 < len ? (unsigned char)buf[i + 2] : 0, w = b0 << 16 | b1 << 8 | b2;
            enc[o++] = b64[w >> 18 & 63], enc[o++] = b64[w >> 12 & 63];
            enc[o++] = i + 1 < len ? b64[w >> 6 & 63] : '=';
            enc[o++] = i + 2 < len ? b64[w & 63] : '=';
        }
        FZ_CHECK(o == val.n - tok && memcmp(enc, v + tok, o) == 0, "base64 round trip");
        free(enc);
    } else {
        FZ_CHECK(u.p == NULL && p.p == NULL, "views left alone on error");
    }
    free(buf);
    free(v);
}

static rp_users U;

static void
fz_users(const uint8_t *d, size_t n)
{
    char *t = fz_copy(d, n);
    rp_cfg_error e;
    size_t i, lines = 1;
    int rc, k, j;
    for (i = 0; i < n; i++)
        lines += t[i] == '\n';
    memset(&e, 0x5a, sizeof e);
    rc = users_parse(&U, t, n, &e);
    FZ_CHECK(rc == RP_OK || rc == RP_ECONFIG, "rc %d", rc);
    if (rc != RP_OK) {
        FZ_CHECK(e.line >= 1 && (size_t)e.line <= lines, "line %d of %zu", e.line, lines);
        FZ_CHECK(memchr(e.msg, 0, sizeof e.msg) && e.msg[0], "message");
        FZ_CHECK(e.col >= 1, "column %d", e.col);
        free(t);
        return;
    }
    FZ_CHECK(U.nusers <= RP_MAX_USERS && U.used <= RP_AUTH_STR_BYTES, "bounds %d %d", U.nusers, U.used);
    for (k = 0; k < U.nusers; k++) {
        const char *name = U.str + U.u[k].user, *h = U.str + U.u[k].hash;
        rp_str hs;
        FZ_CHECK(U.u[k].user < U.used && U.u[k].hash < U.used, "offsets");
        FZ_CHECK(memchr(name, 0, (size_t)(U.used - U.u[k].user)) && memchr(h, 0, (size_t)(U.used - U.u[k].hash)),
                 "NUL-ended");
        FZ_CHECK(*name && strlen(name) <= RP_AUTH_USER_MAX && !strchr(name, ':'), "name %d", k);
        hs.p = h, hs.n = strlen(h);
        FZ_CHECK(sha_crypt_check(hs, NULL) == RP_OK, "hash %d", k);
        for (j = 0; j < k; j++)
            FZ_CHECK(strcmp(name, U.str + U.u[j].user) != 0, "duplicate %d %d", j, k);
    }
    free(t);
}

static void
fz_crypt(const uint8_t *d, size_t n)
{
    const uint8_t *z = memchr(d, 0, n);
    size_t hn = z ? (size_t)(z - d) : n;
    char *h = fz_copy(d, hn), *pw = fz_copy(z ? z + 1 : d + n, z ? n - hn - 1 : 0);
    rp_str hs, ps;
    const char *why = NULL;
    char out[160];
    int rc, v;
    long m;
    hs.p = h, hs.n = hn;
    ps.p = pw, ps.n = z ? n - hn - 1 : 0;
    rc = sha_crypt_check(hs, &why);
    FZ_CHECK(rc == RP_OK || ((rc == RP_EINVAL || rc == RP_ENOTIMPL) && why && *why), "check %d", rc);
    v = sha_crypt_verify(ps, hs);
    if (rc != RP_OK) {
        FZ_CHECK(v == rc, "verify %d check %d", v, rc);
    } else {
        FZ_CHECK(v == 0 || v == 1, "verify %d", v);
        if (ps.n <= RP_AUTH_CRED_MAX) {
            m = sha_crypt(ps, hs, out, sizeof out);
            FZ_CHECK(m > 0 && (size_t)m == strlen(out), "sha_crypt %ld", m);
            hs.p = out, hs.n = (size_t)m;
            FZ_CHECK(sha_crypt_verify(ps, hs) == 1, "own hash verifies: %s", out);
            FZ_CHECK(v == ((size_t)m == hn && memcmp(out, h, hn) == 0), "verify %d vs equal strings", v);
        }
    }
    free(h);
    free(pw);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        fz_basic(data + 1, size - 1);
        break;
    case 1:
        fz_users(data + 1, size - 1);
        break;
    default:
        fz_crypt(data + 1, size - 1);
        break;
    }
    return 0;
}

/* ==== [20] Authentication: SHA-crypt, Basic credentials, users files ====
 * The parts of HTTP Basic auth (RFC 7617) that need no connection:
 * SHA-crypt ($5$ SHA-256, $6$ SHA-512: Ulrich Drepper's "Unix crypt using
 * SHA-256 and SHA-512", the format glibc's crypt(3), `openssl passwd -5/-6`
 * and `mkpasswd -m sha-256|sha-512` share) computed with BearSSL's SHA-2;
 * the decoding of an `Authorization: Basic` value; the parsing of a users
 * file into a static rp_users table.  No allocation, nothing kept between
 * calls.
 * Stack, arm-none-eabi-gcc 12 -Os -mcpu=cortex-m4 -fstack-usage: users_check
 * 64 B -> sha_crypt_verify 232 -> sc_digest 400 -> BearSSL br_sha512_out
 * 216 -> its block function 800 (W[80] of 64-bit words): 1,712 B at the
 * deepest ($5$: 64 + 232 + 400 + 120 + 328 = 1,144 B).  users_parse 120 B,
 * basic_credentials 64 B.  Code: 4.2 KB of Cortex-M4 text (x86_64 -O2:
 * 8.6 KB) for this section (sha_crypt, the tests' generator, is 188 B of it and drops out
 * where nothing calls it), plus BearSSL's SHA-256 (1.6 KB) and SHA-384/512
 * (3.9 KB) where TLS does not link them already.
 * Time: a 5,000-round verify takes 3.1 ms ($5$) / 2.4 ms ($6$) on one
 * x86_64 core of the build machine (-O2); not measured on a Cortex-M4.
 * Owns: nothing (an rp_users belongs to its caller).  Calls: [1] and
 * BearSSL (br_sha256_vtable, br_sha512_vtable).  Called by: nothing yet:
 * [6] is to call users_parse for `users NAME FILE`, [13] basic_credentials
 * and users_check for a route's or the status page's auth=. */
#include "rp_int.h"

#if RP_ENABLE_AUTH
#include <bearssl.h>

/* ---- SHA-crypt ---- */

#define SC_ROUNDS_MIN 1000u
#define SC_ROUNDS_MAX 999999999u
#define SC_ROUNDS_DEFAULT 5000u
#define SC_SALT_MAX 16u

/* One parsed "$5$[rounds=N$]SALT$HASH" (or a setting, HASH absent). */
typedef struct {
    const br_hash_class *h;
    size_t dlen;     /* digest bytes: 32 or 64 */
    size_t elen;     /* encoded digest: 43 or 86 characters */
    uint32_t rounds;
    int custom;      /* rounds= was given */
    rp_str salt, hash;
} sc_hash;

static const char sc_b64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int
sc_b64val(unsigned char c)
{
    const char *q = c ? memchr(sc_b64, c, 64) : NULL;
    return q ? (int)(q - sc_b64) : -1;
}

/* A salt byte: visible ASCII but '$' (the separator) and ':' (the users
 * file's).  The specification takes any byte but '$'; every generator
 * uses ./0-9A-Za-z. */
static int
sc_salt_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '$' && c != ':';
}

/* Parse s.  strict (a stored hash): rounds= in 1000..999999999 without
 * leading zeros, salt of at most 16 then '$' and exactly elen characters
 * of the alphabet, nothing after.  Not strict (a setting, as crypt(3)
 * takes it): rounds clamped, salt cut at 16, anything after it ignored.
 * Both refuse rounds above RP_AUTH_MAX_ROUNDS. */
static int
sc_parse(rp_str s, sc_hash *o, int strict, const char **why)
{
    size_t i = 3, k;
    const char *w;
    if (!why)
        why = &w;
    if (s.n < 3 || s.p[0] != '$' || (s.p[1] != '5' && s.p[1] != '6') || s.p[2] != '$') {
        if (s.n >= 3 && s.p[0] == '$' && s.p[1] == '1' && s.p[2] == '$')
            *why = "$1$ (MD5-crypt) is not supported: make a $6$ hash (openssl passwd -6)";
        else if (s.n && s.p[0] == '$')
            *why = "unknown hash format: rproxy takes $5$ and $6$ (openssl passwd -6)";
        else
            *why = "not a crypt hash (plain text?): make one with openssl passwd -6";
        return RP_ENOTIMPL;
    }
    o->h = s.p[1] == '5' ? &br_sha256_vtable : &br_sha512_vtable;
    o->dlen = s.p[1] == '5' ? 32 : 64;
    o->elen = s.p[1] == '5' ? 43 : 86;
    o->rounds = SC_ROUNDS_DEFAULT;
    o->custom = 0;
    if (s.n - i >= 7 && memcmp(s.p + i, "rounds=", 7) == 0) {
        uint64_t v = 0;
        size_t d = 0;
        for (k = i + 7; k < s.n && s.p[k] >= '0' && s.p[k] <= '9'; k++, d++)
            v = v < 10000000000ull ? v * 10 + (uint64_t)(s.p[k] - '0') : v;
        if (d && k < s.n && s.p[k] == '$') {
            if (strict && (s.p[i + 7] == '0' || v < SC_ROUNDS_MIN || v > SC_ROUNDS_MAX)) {
                *why = "rounds= must be 1000..999999999, no leading zero";
                return RP_EINVAL;
            }
            v = v < SC_ROUNDS_MIN ? SC_ROUNDS_MIN : v > SC_ROUNDS_MAX ? SC_ROUNDS_MAX : v;
            if (v > RP_AUTH_MAX_ROUNDS) {
                *why = "rounds= above RP_AUTH_MAX_ROUNDS: use fewer or raise it";
                return RP_EINVAL;
            }
            o->rounds = (uint32_t)v, o->custom = 1;
            i = k + 1;
        } else if (strict) {
            *why = "rounds= wants digits and '$'";
            return RP_EINVAL;
        }
    }
    for (k = i; k < s.n && s.p[k] != '$'; k++) {
        if (strict && k - i == SC_SALT_MAX) {
            *why = "salt longer than 16 characters";
            return RP_EINVAL;
        }
        if (!sc_salt_ok((unsigned char)s.p[k])) {
            *why = "salt has a blank, ':' or control byte";
            return RP_EINVAL;
        }
    }
    o->salt.p = s.p + i, o->salt.n = RP_MIN(k - i, (size_t)SC_SALT_MAX);
    o->hash.p = s.p + s.n, o->hash.n = 0;
    if (!strict)
        return RP_OK;
    if (k < s.n)
        o->hash.p = s.p + k + 1, o->hash.n = s.n - k - 1;
    if (o->hash.n != o->elen) {
        *why = o->elen == 43 ? "$5$ hash must end in '$' and 43 characters of ./0-9A-Za-z"
                             : "$6$ hash must end in '$' and 86 characters of ./0-9A-Za-z";
        return RP_EINVAL;
    }
    for (k = 0; k < o->hash.n; k++)
        if (sc_b64val((unsigned char)o->hash.p[k]) < 0) {
            *why = "hash has a character outside ./0-9A-Za-z";
            return RP_EINVAL;
        }
    return RP_OK;
}

#if RP_ENABLE_CONFIG_TEXT /* the users file's reader only */
int
sha_crypt_check(rp_str h, const char **why)
{
    sc_hash o;
    return sc_parse(h, &o, 1, why);
}
#endif

/* Add n bytes of d (dlen bytes) repeated: the specification's P and S
 * sequences, and its "B for each 32/64 bytes of the password". */
static void
sc_rep(const br_hash_class *h, br_hash_compat_context *x, const uint8_t *d, size_t dlen, size_t n)
{
    for (; n > dlen; n -= dlen)
        h->update(&x->vtable, d, dlen);
    h->update(&x->vtable, d, n);
}

static void
sc_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
}

/* The specification's steps 1-21: the final digest C into out[0..dlen). */
static void
sc_digest(const sc_hash *o, rp_str pass, uint8_t *out)
{
    const br_hash_class *h = o->h;
    br_hash_compat_context x;
    uint8_t dp[64], ds[64];
    const uint8_t *p = (const uint8_t *)pass.p, *s = (const uint8_t *)o->salt.p;
    size_t dl = o->dlen, k;
    uint32_t i;
    /* B = H(P S P) */
    h->init(&x.vtable);
    h->update(&x.vtable, p, pass.n);
    h->update(&x.vtable, s, o->salt.n);
    h->update(&x.vtable, p, pass.n);
    h->out(&x.vtable, out);
    /* A = H(P S, B for each byte of P, then per bit of len(P): B or P) */
    h->init(&x.vtable);
    h->update(&x.vtable, p, pass.n);
    h->update(&x.vtable, s, o->salt.n);
    sc_rep(h, &x, out, dl, pass.n);
    for (k = pass.n; k; k >>= 1) {
        if (k & 1)
            h->update(&x.vtable, out, dl);
        else
            h->update(&x.vtable, p, pass.n);
    }
    h->out(&x.vtable, out);
    /* DP = H(P len(P) times); DS = H(S 16 + A[0] times) */
    h->init(&x.vtable);
    for (k = 0; k < pass.n; k++)
        h->update(&x.vtable, p, pass.n);
    h->out(&x.vtable, dp);
    h->init(&x.vtable);
    for (k = 0; k < 16u + out[0]; k++)
        h->update(&x.vtable, s, o->salt.n);
    h->out(&x.vtable, ds);
    /* The rounds; P-sequence = DP repeated to len(P), S-sequence = DS's
     * first len(S) bytes. */
    for (i = 0; i < o->rounds; i++) {
        h->init(&x.vtable);
        if (i & 1)
            sc_rep(h, &x, dp, dl, pass.n);
        else
            h->update(&x.vtable, out, dl);
        if (i % 3)
            h->update(&x.vtable, ds, o->salt.n);
        if (i % 7)
            sc_rep(h, &x, dp, dl, pass.n);
        if (i & 1)
            h->update(&x.vtable, out, dl);
        else
            sc_rep(h, &x, dp, dl, pass.n);
        h->out(&x.vtable, out);
    }
    sc_wipe(dp, sizeof(dp));
    sc_wipe(&x, sizeof(x));
}

/* The specification's step 22: the digest as elen characters, three bytes
 * at a time (bytes i, i + n/3, i + 2n/3, their order turning with i; n =
 * 30 or 63), the one or two bytes left at the end. */
static void
sc_encode(const sc_hash *o, const uint8_t *d, char *e)
{
    static const uint8_t ord[3][3] = {{0, 1, 2}, {2, 0, 1}, {1, 2, 0}};
    size_t step = o->dlen == 32 ? 10 : 21, i;
    uint32_t w;
    int c;
    for (i = 0; i < step; i++) {
        size_t at[3];
        const uint8_t *r = ord[o->dlen == 32 ? i % 3 : (3 - i % 3) % 3];
        at[0] = i, at[1] = i + step, at[2] = i + 2 * step;
        w = (uint32_t)d[at[r[0]]] << 16 | (uint32_t)d[at[r[1]]] << 8 | d[at[r[2]]];
        for (c = 0; c < 4; c++, w >>= 6)
            *e++ = sc_b64[w & 63];
    }
    if (o->dlen == 32)
        w = (uint32_t)d[31] << 8 | d[30], c = 3;
    else
        w = d[63], c = 2;
    for (; c > 0; c--, w >>= 6)
        *e++ = sc_b64[w & 63];
}

int
sha_crypt_verify(rp_str pass, rp_str h)
{
    sc_hash o;
    uint8_t d[64];
    char e[86];
    unsigned diff = 0;
    size_t k;
    int rc = sc_parse(h, &o, 1, NULL);
    if (rc != RP_OK)
        return rc;
    if (pass.n > RP_AUTH_CRED_MAX)
        return 0; /* never accepted: bounds the time a hash takes */
    sc_digest(&o, pass, d);
    sc_encode(&o, d, e);
    for (k = 0; k < o.elen; k++)
        diff |= (unsigned)(unsigned char)(e[k] ^ o.hash.p[k]);
    sc_wipe(d, sizeof(d));
    return (int)(1u & ((diff - 1u) >> 8)); /* diff 0..255: 1 only for 0 */
}

long
sha_crypt(rp_str pass, rp_str setting, char *out, size_t cap)
{
    sc_hash o;
    uint8_t d[64];
    wbuf w;
    if (cap < 124 || sc_parse(setting, &o, 0, NULL) != RP_OK || pass.n > RP_AUTH_CRED_MAX)
        return RP_EINVAL;
    w.p = out, w.n = 0, w.cap = cap - 1, w.full = 0;
    w_put(&w, setting.p, 3);
    if (o.custom) {
        w_put(&w, S("rounds="));
        w_num(&w, o.rounds);
        w_put(&w, S("$"));
    }
    w_str(&w, o.salt);
    w_put(&w, S("$"));
    sc_digest(&o, pass, d);
    sc_encode(&o, d, out + w.n);
    sc_wipe(d, sizeof(d));
    w.n += o.elen;
    out[w.n] = 0;
    return (long)w.n;
}

/* ---- Basic credentials (RFC 7617; RFC 9110 §11) ---- */

/* RFC 4648 §4 base64: the value of c, -1 outside the alphabet. */
static int
b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int
basic_credentials(rp_str v, char *buf, size_t cap, rp_str *user, rp_str *pass)
{
    size_t i, n, k, out = 0, pad = 0, colon;
    rp_str scheme, t;
    for (i = 0; i < v.n && v.p[i] != ' '; i++)
        ;
    scheme.p = v.p, scheme.n = i;
    if (!str_ieq(scheme, S("Basic")))
        return RP_ENOTIMPL;
    while (i < v.n && v.p[i] == ' ')
        i++;
    t.p = v.p + i, t.n = n = v.n - i;
    if (n == 0 || n % 4)
        return RP_EINVAL;
    if (t.p[n - 1] == '=')
        pad = t.p[n - 2] == '=' ? 2 : 1;
    if (n / 4 * 3 - pad > cap)
        return RP_ETOOLONG;
    for (k = 0; k < n; k += 4) {
        int a = b64val((unsigned char)t.p[k]), b = b64val((unsigned char)t.p[k + 1]);
        int c = b64val((unsigned char)t.p[k + 2]), d = b64val((unsigned char)t.p[k + 3]);
        int last = k + 4 == n;
        if (a < 0 || b < 0)
            return RP_EINVAL;
        if (last && pad == 2)
            c = d = 0;
        else if (last && pad == 1)
            d = 0;
        if (c < 0 || d < 0)
            return RP_EINVAL;
        /* canonical: the bits the padding leaves over are zero */
        if (last && ((pad == 2 && (b & 15)) || (pad == 1 && (c & 3))))
            return RP_EINVAL;
        buf[out++] = (char)(a << 2 | b >> 4);
        if (!last || pad < 2)
            buf[out++] = (char)((b & 15) << 4 | c >> 2);
        if (!last || pad < 1)
            buf[out++] = (char)((c & 3) << 6 | d);
    }
    for (k = 0, colon = out; k < out; k++) {
        unsigned char ch = (unsigned char)buf[k];
        if (ch < 0x20 || ch == 0x7f)
            return RP_EINVAL;
        if (ch == ':' && colon == out)
            colon = k;
    }
    if (colon == out || colon == 0)
        return RP_EINVAL;
    user->p = buf, user->n = colon;
    pass->p = buf + colon + 1, pass->n = out - colon - 1;
    return RP_OK;
}

/* ---- Users files ---- */
#if RP_ENABLE_CONFIG_TEXT /* (a board without the parser gets its tables built in) */

/* Append what fits of n bytes at s (a long message is cut, not dropped). */
static void
u_put(wbuf *w, const char *s, size_t n)
{
    w_put(w, s, RP_MIN(n, w->cap - w->n));
}

/* err at line:col: msg, then 'arg' (its first 24 bytes) and ": " when
 * arg.p, then note. */
static int
u_fail(rp_cfg_error *err, int line, size_t col, const char *msg, rp_str arg, const char *note)
{
    wbuf w;
    w.p = err->msg, w.n = 0, w.cap = sizeof(err->msg) - 1, w.full = 0;
    err->line = line, err->col = (int)col;
    u_put(&w, msg, strlen(msg));
    if (arg.p) {
        u_put(&w, S(" '"));
        u_put(&w, arg.p, RP_MIN(arg.n, (size_t)24));
        u_put(&w, S("'"));
    }
    if (arg.p && *note != ' ')
        u_put(&w, S(": "));
    u_put(&w, note, strlen(note));
    err->msg[w.n] = 0;
    return RP_ECONFIG;
}

/* Copy s NUL-ended into u->str; its offset, or -1 when it is full. */
static long
u_str(rp_users *u, rp_str s)
{
    size_t at = u->used;
    if (s.n + 1 > sizeof(u->str) - at)
        return -1;
    memcpy(u->str + at, s.p, s.n);
    u->str[at + s.n] = 0;
    u->used = (uint16_t)(at + s.n + 1);
    return (long)at;
}

int
users_parse(rp_users *u, const char *text, size_t n, rp_cfg_error *err)
{
    size_t pos = 0;
    int line = 0;
    static const rp_str none = {NULL, 0};
    memset(u, 0, sizeof(*u));
    while (pos < n) {
        const char *l = text + pos;
        size_t len, b = 0, e, k, colon;
        rp_str user, hash;
        const char *why;
        long uo, ho;
        int i;
        for (len = 0; pos + len < n && l[len] != '\n'; len++)
            ;
        pos += len + 1;
        line++;
        e = len;
        while (e > 0 && (l[e - 1] == '\r' || l[e - 1] == ' ' || l[e - 1] == '\t'))
            e--;
        while (b < e && (l[b] == ' ' || l[b] == '\t'))
            b++;
        if (b == e || l[b] == '#')
            continue;
        for (k = b; k < e; k++)
            if (l[k] == 0 || ((unsigned char)l[k] < 0x20 && l[k] != '\t') || l[k] == 0x7f)
                return u_fail(err, line, k + 1, "control byte in the line: remove it", none, "");
        for (colon = b; colon < e && l[colon] != ':'; colon++)
            ;
        if (colon == e)
            return u_fail(err, line, b + 1, "no ':' in the line", none,
                          " (want USER:HASH, the hash from openssl passwd -6)");
        user.p = l + b, user.n = colon - b;
        hash.p = l + colon + 1, hash.n = e - colon - 1;
        if (user.n == 0)
            return u_fail(err, line, b + 1, "empty user name (want USER:HASH)", none, "");
        if (user.n > RP_AUTH_USER_MAX)
            return u_fail(err, line, b + 1, "user name longer than RP_AUTH_USER_MAX", user, "shorten it");
        for (k = 0; k < user.n; k++)
            if (user.p[k] == ' ' || user.p[k] == '\t')
                return u_fail(err, line, b + k + 1, "blank in user name", user, "remove it");
        for (i = 0; i < u->nusers; i++) {
            const char *o = u->str + u->u[i].user;
            if (strlen(o) == user.n && memcmp(o, user.p, user.n) == 0)
                return u_fail(err, line, b + 1, "duplicate user", user, "keep one line");
        }
        if (sha_crypt_check(hash, &why) != RP_OK)
            return u_fail(err, line, colon + 2, "user", user, why);
        if (u->nusers == RP_MAX_USERS)
            return u_fail(err, line, b + 1, "more users than RP_MAX_USERS", none,
                          ": raise it or split the file");
        uo = u_str(u, user);
        ho = uo < 0 ? -1 : u_str(u, hash);
        if (ho < 0)
            return u_fail(err, line, b + 1, "users file needs more than RP_AUTH_STR_BYTES", none,
                          ": raise it");
        u->u[u->nusers].user = (uint16_t)uo;
        u->u[u->nusers].hash = (uint16_t)ho;
        u->nusers++;
    }
    return RP_OK;
}

#endif /* RP_ENABLE_CONFIG_TEXT */

int
users_check(const rp_users *u, rp_str user, rp_str pass)
{
    int i, found = -1, ok;
    const char *h;
    rp_str hs;
    if (u->nusers == 0)
        return 0;
    for (i = 0; i < u->nusers; i++) {
        const char *o = u->str + u->u[i].user;
        if (strlen(o) == user.n && memcmp(o, user.p, user.n) == 0)
            found = i;
    }
    h = u->str + u->u[found >= 0 ? found : 0].hash;
    hs.p = h, hs.n = strlen(h);
    ok = sha_crypt_verify(pass, hs) == 1;
    return found >= 0 && ok;
}
#endif

/*
 * test_auth.c -- src/20-auth.c (SHA-crypt, Basic credentials, users files)
 * and the CIDR match of src/02-addr.c, white-box through src/rp_int.h.
 *
 * SPDX-License-Identifier: MIT
 *
 * SHA-crypt is checked against Ulrich Drepper's published vectors ("Unix
 * crypt using SHA-256 and SHA-512", its tests2[] table: defaults, rounds=,
 * a salt cut at 16, rounds below 1000 clamped) and against hashes `openssl
 * passwd -5/-6` and `mkpasswd -m sha-256/sha-512 [-R N]` make here, at run
 * time.  Inputs sit right before a guard
 * page (guard.h) where a parser could read past them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"
#include "tap.h"
#include "guard.h"
#include "rp_int.h"

#undef S
#define S(lit) lit, sizeof(lit) - 1

static rp_str
V(const char *s)
{
    rp_str r;
    r.p = s, r.n = strlen(s);
    return r;
}

/* Drepper's tests2[]: setting, password, crypt(3)'s output. */
static const struct {
    const char *setting, *pass, *out;
} drepper[] = {
    {"$5$saltstring", "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
    {"$5$rounds=10000$saltstringsaltstring", "Hello world!",
     "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
    {"$5$rounds=5000$toolongsaltstring", "This is just a test",
     "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
    {"$5$rounds=1400$anotherlongsaltstring",
     "a very much longer text to encrypt.  This one even stretches over morethan one line.",
     "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1"},
    {"$5$rounds=77777$short", "we have a short salt string but not a short password",
     "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/"},
    {"$5$rounds=123456$asaltof16chars..", "a short string",
     "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD"},
    {"$5$rounds=10$roundstoolow", "the minimum number is still observed",
     "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},
    {"$6$saltstring", "Hello world!",
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
    {"$6$rounds=10000$saltstringsaltstring", "Hello world!",
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/"
     "YTBmSK6H9qs/y3RnOaw5v."},
    {"$6$rounds=5000$toolongsaltstring", "This is just a test",
     "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/"
     "e1JSbq3y6JMxxl8audkUEm0"},
    {"$6$rounds=1400$anotherlongsaltstring",
     "a very much longer text to encrypt.  This one even stretches over morethan one line.",
     "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7U"
     "mJEiDwGqd8p4ur1"},
    {"$6$rounds=77777$short", "we have a short salt string but not a short password",
     "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5C"
     "xtgfiAc0"},
    {"$6$rounds=123456$asaltof16chars..", "a short string",
     "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgM"
     "NrCzIMVcgEJAstJeonj1"},
    {"$6$rounds=10$roundstoolow", "the minimum number is still observed",
     "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0"
     "dqbpBYYBaHHrsX."},
};

/* sha_crypt over the setting gives crypt(3)'s string; sha_crypt_verify
 * takes that string for the password and refuses a wrong one, a changed
 * last character and a one-byte-shorter password. */
static void
test_crypt_drepper(void)
{
    size_t i;
    for (i = 0; i < TAP_COUNT(drepper); i++) {
        char out[160], h[160];
        rp_str pw = V(drepper[i].pass);
        long n = sha_crypt(pw, V(drepper[i].setting), out, sizeof out);
        size_t ln = strlen(drepper[i].out);
        CHECK_INT(n, (long)ln, "drepper[%zu] length", i);
        CHECK_STR(out, drepper[i].out, "drepper[%zu] %s", i, drepper[i].setting);
        CHECK_INT(sha_crypt_verify(pw, V(drepper[i].out)), 1, "drepper[%zu] verifies", i);
        CHECK_INT(sha_crypt_check(V(drepper[i].out), NULL), RP_OK, "drepper[%zu] is a valid hash", i);
        pw.n--;
        CHECK_INT(sha_crypt_verify(pw, V(drepper[i].out)), 0, "drepper[%zu] shorter password", i);
        CHECK_INT(sha_crypt_verify(V("Hello world?"), V(drepper[i].out)), 0, "drepper[%zu] wrong", i);
        memcpy(h, drepper[i].out, ln + 1);
        h[ln - 1] = h[ln - 1] == 'a' ? 'b' : 'a';
        CHECK_INT(sha_crypt_verify(V(drepper[i].pass), V(h)), 0, "drepper[%zu] last char changed", i);
        h[ln - 1] = drepper[i].out[ln - 1];
        h[ln - 20] = h[ln - 20] == '.' ? '/' : '.';
        CHECK_INT(sha_crypt_verify(V(drepper[i].pass), V(h)), 0, "drepper[%zu] middle char changed", i);
    }
    /* the as-given rounds=10 string is not what any generator writes */
    CHECK_INT(sha_crypt_verify(V("the minimum number is still observed"),
                               V("$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC")),
              RP_EINVAL, "stored rounds=10 refused");
}

/* Run cmd, return its first output line (without newline) in out. */
static int
run_line(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    size_t n;
    if (!f || !fgets(out, (int)cap, f)) {
        if (f)
            pclose(f);
        return 0;
    }
    n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = 0;
    return pclose(f) == 0;
}

/* The empty password: openssl 3.0's passwd prints "<NULL>" for it, so
 * these were made by libxcrypt (Debian 12, python3 -c 'import crypt;
 * print(crypt.crypt("", "$5$emptypass"))' and so on). */
static void
test_crypt_empty(void)
{
    static const char *const h[] = {
        "$5$emptypass$Bh4SIy//QKbNx8fAGKCOViKGs8qCUp9A.3KSqNCMvA0",
        "$6$emptypass$DXYxVq9JSp6Mz8bpkAaUo/UZNiHtY0ggnxxAlkd23qzUQMb2NYhljk/MJ3CxLfeSyhIScVhh98c4IKXN0msYr.",
        "$5$rounds=1000$x$kIBhdUvT3pHpfTjzR8s1XJu3y/HRJeFxMSffBtF8jx9",
        "$6$rounds=1000$$NPMepfN3/Cv.LPoa7suAzCVH3BhfhhB2wHuwY51WjZgqg.e601K6RWCJ7AHYXHZcp4ilHQ0xlpG1yRxSYX3TP/",
    };
    size_t i;
    for (i = 0; i < TAP_COUNT(h); i++) {
        CHECK_INT(sha_crypt_verify(V(""), V(h[i])), 1, "empty password: %s", h[i]);
        CHECK_INT(sha_crypt_verify(V(" "), V(h[i])), 0, "a blank is not empty: %s", h[i]);
    }
}

/* Hashes openssl makes now: -5 and -6, given salts and random ones, short
 * and long passwords (past one SHA-256 and one SHA-512 block). */
static void
test_crypt_openssl(void)
{
    static const char *const pw[] = {"secret", "correct horse battery staple",
                                     "a password longer than sixty-four bytes, which is one sha-512 "
                                     "digest and two sha-256 ones", "x", "p@ss w0rd!"};
    static const char *const salt[] = {"", "-salt abcdefgh", "-salt 0123456789abcdef", "-salt ./"};
    size_t i, j;
    int alg;
    for (alg = 5; alg <= 6; alg++)
        for (i = 0; i < TAP_COUNT(pw); i++)
            for (j = 0; j < TAP_COUNT(salt); j++) {
                char cmd[512], h[200], again[200];
                snprintf(cmd, sizeof cmd, "openssl passwd -%d %s '%s'", alg, salt[j], pw[i]);
                if (!CHECK(run_line(cmd, h, sizeof h), "openssl runs: %s", cmd))
                    continue;
                CHECK(h[1] == '0' + alg, "openssl made $%d$: %s", alg, h);
                CHECK_INT(sha_crypt_check(V(h), NULL), RP_OK, "valid: %s", h);
                CHECK_INT(sha_crypt_verify(V(pw[i]), V(h)), 1, "$%d$ '%s' %s verifies", alg, pw[i], salt[j]);
                CHECK_INT(sha_crypt_verify(V("secreT"), V(h)), 0, "$%d$ '%s' %s: wrong password", alg,
                          pw[i], salt[j]);
                CHECK_INT((int)sha_crypt(V(pw[i]), V(h), again, sizeof again), (int)strlen(h),
                          "sha_crypt over openssl's own hash");
                CHECK_STR(again, h, "sha_crypt reproduces openssl's hash");
            }
}

/* Hashes mkpasswd (Debian's whois package, libxcrypt) makes now: $5$ and
 * $6$, with and without rounds= (-R 1000, 12345; -R 5000 is written
 * without it), given and random salts. */
static void
test_crypt_mkpasswd(void)
{
    static const char *const m[] = {"sha-256", "sha-512"};
    static const char *const opt[] = {"", "-R 1000", "-R 5000", "-R 12345", "-S abcdefgh", "-R 2000 -S 0123456789abcdef"};
    static const char *const pw[] = {"secret", "a much longer password, past one sha-256 digest of 32 bytes"};
    char h[200];
    size_t a, o, i;
    if (!CHECK(run_line("command -v mkpasswd", h, sizeof h), "mkpasswd is installed (package whois: sh scripts/deps.sh)"))
        return;
    for (a = 0; a < TAP_COUNT(m); a++)
        for (o = 0; o < TAP_COUNT(opt); o++)
            for (i = 0; i < TAP_COUNT(pw); i++) {
                char cmd[300];
                snprintf(cmd, sizeof cmd, "mkpasswd -m %s %s '%s'", m[a], opt[o], pw[i]);
                if (!CHECK(run_line(cmd, h, sizeof h), "runs: %s", cmd))
                    continue;
                CHECK(h[0] == '$' && h[1] == (a ? '6' : '5'), "made $%c$: %s", a ? '6' : '5', h);
                /* libxcrypt leaves the default (5000) out */
                CHECK(!strstr(opt[o], "-R") || strstr(opt[o], "5000") || strstr(h, "$rounds="),
                      "rounds= written: %s", h);
                CHECK_INT(sha_crypt_check(V(h), NULL), RP_OK, "valid: %s", h);
                CHECK_INT(sha_crypt_verify(V(pw[i]), V(h)), 1, "verifies: %s", cmd);
                CHECK_INT(sha_crypt_verify(V("secreT"), V(h)), 0, "wrong password: %s", cmd);
            }
}

/* Stored hashes: what sha_crypt_check refuses, and that verify refuses
 * them the same way whatever the password. */
static void
test_crypt_malformed(void)
{
    static const struct {
        const char *h;
        int rc;
        const char *why;
    } bad[] = {
        {"", RP_ENOTIMPL, "plain text"},
        {"secret", RP_ENOTIMPL, "plain text"},
        {"$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1", RP_ENOTIMPL, "MD5"},
        {"$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", RP_ENOTIMPL, "unknown hash format"},
        {"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", RP_ENOTIMPL,
         "unknown hash format"},
        {"$7$", RP_ENOTIMPL, "unknown"},
        {"$5", RP_ENOTIMPL, "unknown"},
        {"$5$", RP_EINVAL, "43 characters"},
        {"$5$saltstring", RP_EINVAL, "43 characters"},
        {"$5$saltstring$", RP_EINVAL, "43 characters"},
        {"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc", RP_EINVAL, "43 characters"},
        {"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5x", RP_EINVAL, "43 characters"},
        {"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc*", RP_EINVAL, "outside"},
        {"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWE$5", RP_EINVAL, "outside"},
        {"$6$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "86 characters"},
        {"$5$saltstringsaltst1$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "longer than 16"},
        {"$5$salt string$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "blank"},
        {"$5$salt:$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "blank, ':'"},
        {"$5$rounds=999$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "1000..999999999"},
        {"$5$rounds=0$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "1000..999999999"},
        {"$5$rounds=01000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "leading zero"},
        {"$5$rounds=1000000000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "1000..999999999"},
        {"$5$rounds=99999999999999999999999$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL,
         "1000..999999999"},
        {"$5$rounds=1000001$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "RP_AUTH_MAX_ROUNDS"},
        {"$5$rounds=$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "digits"},
        {"$5$rounds=12a4$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "digits"},
        {"$5$rounds=-5000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", RP_EINVAL, "digits"},
    };
    size_t i;
    char *g;
    for (i = 0; i < TAP_COUNT(bad); i++) {
        const char *why = NULL;
        size_t n = strlen(bad[i].h);
        rp_str h;
        g = (char *)guard_place(bad[i].h, n);
        h.p = g, h.n = n;
        CHECK_INT(sha_crypt_check(h, &why), bad[i].rc, "bad[%zu] %s", i, bad[i].h);
        CHECK(why && strstr(why, bad[i].why), "bad[%zu] says '%s' (%s)", i, bad[i].why, why ? why : "-");
        CHECK_INT(sha_crypt_verify(V("Hello world!"), h), bad[i].rc, "bad[%zu] never verifies", i);
    }
    /* at the limits: 1000 and RP_AUTH_MAX_ROUNDS rounds, a 16-char salt, an empty salt */
    {
        rp_str h;
        h.n = strlen("$5$rounds=1000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5");
        h.p = (const char *)guard_place("$5$rounds=1000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", h.n);
        CHECK_INT(sha_crypt_check(h, NULL), RP_OK, "rounds=1000");
    }
    CHECK_INT(sha_crypt_check(V("$5$rounds=1000000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"), NULL),
              RP_OK, "rounds=RP_AUTH_MAX_ROUNDS");
    CHECK_INT(sha_crypt_check(V("$5$saltstringsaltst$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"), NULL),
              RP_OK, "16-char salt");
    CHECK_INT(sha_crypt_check(V("$5$$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"), NULL), RP_OK,
              "empty salt");
    /* a setting with too many rounds is refused by sha_crypt too */
    {
        char out[160];
        CHECK_INT(sha_crypt(V("x"), V("$5$rounds=2000000$s"), out, sizeof out), RP_EINVAL,
                  "sha_crypt: rounds above RP_AUTH_MAX_ROUNDS");
        CHECK_INT(sha_crypt(V("x"), V("$5$s"), out, 100), RP_EINVAL, "sha_crypt: small buffer");
        CHECK_INT(sha_crypt(V("x"), V("$1$s"), out, sizeof out), RP_EINVAL, "sha_crypt: $1$");
        CHECK_INT(sha_crypt(V("x"), V("$5$"), out, sizeof out), 47, "sha_crypt: empty salt");
        CHECK_INT(sha_crypt_verify(V("x"), V(out)), 1, "empty salt verifies");
    }
    /* a password longer than RP_AUTH_CRED_MAX never matches */
    {
        static char big[RP_AUTH_CRED_MAX + 2];
        char out[160];
        memset(big, 'p', sizeof big - 1);
        big[RP_AUTH_CRED_MAX] = 0;
        CHECK(sha_crypt(V(big), V("$5$s"), out, sizeof out) > 0, "RP_AUTH_CRED_MAX bytes hash");
        CHECK_INT(sha_crypt_verify(V(big), V(out)), 1, "RP_AUTH_CRED_MAX bytes verify");
        big[RP_AUTH_CRED_MAX] = 'p';
        CHECK_INT(sha_crypt_verify(V(big), V(out)), 0, "RP_AUTH_CRED_MAX + 1 bytes never match");
    }
}

/* ---- Basic credentials ---- */

static int
basic(const char *value, size_t vn, char *buf, size_t cap, rp_str *u, rp_str *p)
{
    rp_str v;
    v.p = (const char *)guard_place(value, vn);
    v.n = vn;
    return basic_credentials(v, buf, cap, u, p);
}

static void
test_basic_good(void)
{
    static const struct {
        const char *v, *user, *pass;
    } good[] = {
        {"Basic dXNlcjpwYXNz", "user", "pass"},
        {"basic dXNlcjpwYXNz", "user", "pass"},
        {"BASIC dXNlcjpwYXNz", "user", "pass"},
        {"bAsIc    dXNlcjpwYXNz", "user", "pass"},
        {"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame"}, /* RFC 7617 §2 */
        {"Basic dGVzdDoxMjPCow==", "test", "123\xc2\xa3"},                 /* RFC 7617 §2.1 */
        {"Basic dTo=", "u", ""},
        {"Basic dTpwOnE6cg==", "u", "p:q:r"},
        {"Basic dTpwYQ==", "u", "pa"},
        {"Basic dTpwYWI=", "u", "pab"},
    };
    size_t i;
    for (i = 0; i < TAP_COUNT(good); i++) {
        char buf[RP_AUTH_CRED_MAX];
        rp_str u, p;
        if (!CHECK_INT(basic(good[i].v, strlen(good[i].v), buf, sizeof buf, &u, &p), RP_OK, "good[%zu] %s", i,
                       good[i].v))
            continue;
        CHECK_MEM(u.p, u.n, good[i].user, "good[%zu] user", i);
        CHECK_MEM(p.p, p.n, good[i].pass, "good[%zu] pass", i);
    }
}

static void
test_basic_bad(void)
{
    static const struct {
        const char *v;
        int rc;
    } bad[] = {
        {"Bearer dXNlcjpwYXNz", RP_ENOTIMPL},
        {"Digest username=\"u\"", RP_ENOTIMPL},
        {"Basicx dXNlcjpwYXNz", RP_ENOTIMPL},
        {"Basi dXNlcjpwYXNz", RP_ENOTIMPL},
        {"Basic\tdXNlcjpwYXNz", RP_ENOTIMPL},
        {"", RP_ENOTIMPL},
        {"dXNlcjpwYXNz", RP_ENOTIMPL},
        {"Basic", RP_EINVAL},
        {"Basic ", RP_EINVAL},
        {"Basic    ", RP_EINVAL},
        {"Basic dXNlcjpwYXM", RP_EINVAL},     /* unpadded */
        {"Basic dXNlcjpwYXN", RP_EINVAL},
        {"Basic dXNlcjpwYXNz=", RP_EINVAL},
        {"Basic dXNlcjpwYX=z", RP_EINVAL},    /* '=' inside */
        {"Basic dXNl=jpwYXNz", RP_EINVAL},
        {"Basic ====", RP_EINVAL},
        {"Basic d===", RP_EINVAL},
        {"Basic dTpwYR==", RP_EINVAL},        /* non-canonical: "u:pa" is dTpwYQ== */
        {"Basic dTpwYWJ=", RP_EINVAL},        /* non-canonical: "u:pab" is dTpwYWI= */
        {"Basic dXNlcjpwYXNz ", RP_EINVAL},
        {"Basic dXNlcjpw YXNz", RP_EINVAL},
        {"Basic dXNlcjpw*XNz", RP_EINVAL},
        {"Basic dXNlcjpw-XNz", RP_EINVAL},    /* base64url is not base64 */
        {"Basic dXNlcjpw_XNz", RP_EINVAL},
        {"Basic dXNlcg==", RP_EINVAL},        /* "user": no colon */
        {"Basic OnBhc3M=", RP_EINVAL},        /* ":pass": empty user */
        {"Basic dXNlcjpwAHNz", RP_EINVAL},    /* "user:p\0ss" */
        {"Basic dQB4OnA=", RP_EINVAL},        /* "u\0x:p" */
        {"Basic dXNlcjpwCnNz", RP_EINVAL},    /* "user:p\nss" */
        {"Basic dXNlcjpwf3Nz", RP_EINVAL},    /* DEL */
        {"Basic dQ06cA==", RP_EINVAL},        /* "u\r:p" */
    };
    size_t i;
    for (i = 0; i < TAP_COUNT(bad); i++) {
        char buf[RP_AUTH_CRED_MAX];
        rp_str u = {NULL, 0}, p = {NULL, 0};
        CHECK_INT(basic(bad[i].v, strlen(bad[i].v), buf, sizeof buf, &u, &p), bad[i].rc, "bad[%zu] '%s'", i,
                  bad[i].v);
        CHECK(u.p == NULL && p.p == NULL, "bad[%zu] leaves user and pass alone", i);
    }
    /* a NUL in the header value itself */
    {
        char buf[64];
        rp_str u, p;
        CHECK_INT(basic("Basic dXNl\0jpwYXNz", 18, buf, sizeof buf, &u, &p), RP_EINVAL, "NUL in the value");
    }
}

/* Lengths: exactly cap decodes, one more is RP_ETOOLONG (the decode never
 * writes past cap: buf ends at the guard page), and 10 KB is refused. */
static void
test_basic_long(void)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static char v[16 * 1024];
    char *buf;
    rp_str u, p;
    size_t n, k, cap;
    for (cap = 4; cap <= 9; cap++) {
        static char plain[16];
        size_t len;
        for (len = cap - 1; len <= cap + 1; len++) {
            /* "u:" then len-2 bytes of 'x', base64-encoded by hand */
            size_t i, o = 6;
            memcpy(v, "Basic ", 6);
            memset(plain, 'x', sizeof plain);
            plain[0] = 'u', plain[1] = ':';
            for (i = 0; i < len; i += 3) {
                unsigned b0 = (unsigned char)plain[i], b1 = i + 1 < len ? (unsigned char)plain[i + 1] : 0;
                unsigned b2 = i + 2 < len ? (unsigned char)plain[i + 2] : 0;
                unsigned w = b0 << 16 | b1 << 8 | b2;
                v[o++] = alpha[w >> 18 & 63], v[o++] = alpha[w >> 12 & 63];
                v[o++] = i + 1 < len ? alpha[w >> 6 & 63] : '=';
                v[o++] = i + 2 < len ? alpha[w & 63] : '=';
            }
            {
                char *vv = (char *)malloc(o);
                rp_str vs;
                int rc;
                memcpy(vv, v, o);
                buf = (char *)guard_buf(cap);
                vs.p = vv, vs.n = o;
                rc = basic_credentials(vs, buf, cap, &u, &p);
                if (len <= cap) {
                    CHECK_INT(rc, RP_OK, "%zu bytes into %zu", len, cap);
                    CHECK(rc != RP_OK || (u.n == 1 && p.n == len - 2), "%zu bytes: pass %zu", len, p.n);
                } else {
                    CHECK_INT(rc, RP_ETOOLONG, "%zu bytes into %zu: too long", len, cap);
                }
                free(vv);
            }
        }
    }
    memcpy(v, "Basic ", 6);
    for (k = 6, n = 0; k < sizeof v; k++, n++)
        v[k] = alpha[n % 64];
    { static char none[1]; CHECK_INT(basic(v, sizeof v - 2, none, 0, &u, &p), RP_ETOOLONG, "16 KB, no buffer"); }
    {
        char b[RP_AUTH_CRED_MAX];
        CHECK_INT(basic(v, 6 + 10240, b, sizeof b, &u, &p), RP_ETOOLONG, "10 KB");
        CHECK_INT(basic(v, 6 + 10241, b, sizeof b, &u, &p), RP_EINVAL, "10 KB + 1: not a multiple of 4");
    }
}

/* ---- Users files ---- */

static rp_users U;

static int
users(const char *text, size_t n, rp_cfg_error *e)
{
    memset(e, 0, sizeof *e);
    return users_parse(&U, (const char *)guard_place(text, n), n, e);
}

static void
test_users_good(void)
{
    static const char file[] =
        "# rproxy users\n"
        "\n"
        "alice:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\r\n"
        "   # indented comment\n"
        "  bob:$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1  \n"
        "\t\r\n"
        "carol@example:$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1";
    rp_cfg_error e = {0, 0, {0}};
    static const char longer[] = "a very much longer text to encrypt.  This one even stretches over morethan one line.";
    if (!CHECK_INT(users(file, sizeof file - 1, &e), RP_OK, "parses (%d: %s)", e.line, e.msg))
        return;
    CHECK_INT(U.nusers, 3, "three users");
    CHECK_STR(U.str + U.u[1].user, "bob", "bob's name (blanks trimmed)");
    CHECK_INT(users_check(&U, V("alice"), V("Hello world!")), 1, "alice");
    CHECK_INT(users_check(&U, V("bob"), V("Hello world!")), 1, "bob");
    CHECK_INT(users_check(&U, V("carol@example"), V(longer)), 1, "carol");
    CHECK_INT(users_check(&U, V("alice"), V("Hello world")), 0, "alice, wrong password");
    CHECK_INT(users_check(&U, V("bob"), V(longer)), 0, "bob with carol's password");
    CHECK_INT(users_check(&U, V("Alice"), V("Hello world!")), 0, "user names are case-sensitive");
    CHECK_INT(users_check(&U, V("alic"), V("Hello world!")), 0, "a prefix is not a user");
    CHECK_INT(users_check(&U, V("mallory"), V("Hello world!")), 0, "unknown user");
    CHECK_INT(users_check(&U, V(""), V("")), 0, "empty user");
    /* an empty file and one of comments are valid, with nobody in them */
    CHECK_INT(users(S("# nobody yet\n\n"), &e), RP_OK, "comments only");
    CHECK_INT(U.nusers, 0, "no users");
    CHECK_INT(users_check(&U, V("alice"), V("Hello world!")), 0, "nobody passes an empty table");
    CHECK_INT(users("", 0, &e), RP_OK, "empty file");
}

static void
test_users_bad(void)
{
    static const char h5[] = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5";
    static const struct {
        const char *text;
        int line, col;
        const char *msg;
    } bad[] = {
        {"alice\n", 1, 1, "no ':' in the line (want USER:HASH"},
        {"# c\n\nalice:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\nbob secret\n", 4, 1, "no ':'"},
        {":$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n", 1, 1, "empty user name"},
        {"bob:secret\n", 1, 5, "user 'bob': not a crypt hash (plain text?): make one with openssl passwd -6"},
        {"bob:\n", 1, 5, "user 'bob': not a crypt hash"},
        {"bob:$1$saltstri$YMyguxXMBpd2TEZ.vS/3q1\n", 1, 5, "user 'bob': $1$ (MD5-crypt) is not supported"},
        {"bob:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7\n", 1, 5,
         "user 'bob': unknown hash format: rproxy takes $5$ and $6$"},
        {"bob:$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\n", 1, 5, "unknown hash format"},
        {"bob:$5$saltstring$5B8vYYiY\n", 1, 5, "user 'bob': $5$ hash must end in '$' and 43 characters"},
        {"bob:$6$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n", 1, 5, "86 characters"},
        {"  bob:$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC\n", 1, 7,
         "rounds= must be 1000..999999999"},
        {"bob:$5$rounds=5000000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n", 1, 5, "RP_AUTH_MAX_ROUNDS"},
        {"bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5 # me\n", 1, 5, "43 characters"},
        {"bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n"
         "bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n",
         2, 1, "duplicate user 'bob': keep one line"},
        {"b ob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n", 1, 2, "blank in user name"},
        {"bob:$5$salt\x01string$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n", 1, 12, "control byte"},
        {"\n\nb\x7f:x\n", 3, 2, "control byte"},
        {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx:"
         "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\n",
         1, 1, "user name longer than RP_AUTH_USER_MAX"},
        {"bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5\rX\n", 1, 62, "control byte"},
    };
    size_t i;
    rp_cfg_error e = {0, 0, {0}};
    for (i = 0; i < TAP_COUNT(bad); i++) {
        CHECK_INT(users(bad[i].text, strlen(bad[i].text), &e), RP_ECONFIG, "bad[%zu]", i);
        CHECK_INT(e.line, bad[i].line, "bad[%zu] line", i);
        CHECK_INT(e.col, bad[i].col, "bad[%zu] column", i);
        CHECK(strstr(e.msg, bad[i].msg) != NULL, "bad[%zu] message '%s' has '%s'", i, e.msg, bad[i].msg);
        CHECK(strlen(e.msg) < sizeof e.msg, "bad[%zu] message ends", i);
    }
    /* a NUL byte in the file */
    CHECK_INT(users(S("bob:$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hs\0Y/GNooZaBBGWEc5\n"), &e), RP_ECONFIG,
              "NUL in the file");
    CHECK(e.line == 1 && strstr(e.msg, "control byte"), "NUL: line 1 (%d: %s)", e.line, e.msg);
    /* one user more than RP_MAX_USERS */
    {
        static char text[(RP_MAX_USERS + 1) * 80];
        size_t n = 0;
        int k;
        for (k = 0; k <= RP_MAX_USERS; k++)
            n += (size_t)snprintf(text + n, sizeof text - n, "u%d:%s\n", k, h5);
        CHECK_INT(users(text, n, &e), RP_ECONFIG, "%d users", RP_MAX_USERS + 1);
        CHECK_INT(e.line, RP_MAX_USERS + 1, "the line past RP_MAX_USERS");
        CHECK(strstr(e.msg, "RP_MAX_USERS") != NULL, "names RP_MAX_USERS: %s", e.msg);
        n -= strlen(h5) + 5 + (RP_MAX_USERS >= 10);
        CHECK_INT(users(text, n, &e), RP_OK, "%d users fit (%d: %s)", RP_MAX_USERS, e.line, e.msg);
        CHECK_INT(U.nusers, RP_MAX_USERS, "RP_MAX_USERS users");
        CHECK_INT(users_check(&U, V("u0"), V("Hello world!")), 1, "the first user");
    }
    /* names and hashes past RP_AUTH_STR_BYTES */
    {
        static const char h6[] = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiB"
                                 "FdcbYEdFCoEOfaS35inz1";
        static char text[RP_MAX_USERS * 200];
        char name[RP_AUTH_USER_MAX + 1];
        size_t n = 0, used = 0;
        int k, line = 0;
        memset(name, 'n', RP_AUTH_USER_MAX);
        name[RP_AUTH_USER_MAX] = 0;
        for (k = 0; k < RP_MAX_USERS && used <= RP_AUTH_STR_BYTES; k++) {
            name[0] = (char)('a' + k % 26), name[1] = (char)('a' + k / 26);
            n += (size_t)snprintf(text + n, sizeof text - n, "%s:%s\n", name, h6);
            used += RP_AUTH_USER_MAX + 1 + strlen(h6) + 1;
            line++;
        }
        if (used > RP_AUTH_STR_BYTES) {
            CHECK_INT(users(text, n, &e), RP_ECONFIG, "names past RP_AUTH_STR_BYTES");
            CHECK_INT(e.line, line, "the line that does not fit");
            CHECK(strstr(e.msg, "RP_AUTH_STR_BYTES") != NULL, "names RP_AUTH_STR_BYTES: %s", e.msg);
        } else {
            CHECK(0, "RP_AUTH_STR_BYTES holds %d long names: raise them in this test", RP_MAX_USERS);
        }
    }
}

/* ---- CIDR (src/02-addr.c addr_in_net) ---- */

/* An address from text: IPv4 dotted or bare IPv6. */
static rp_addr
ADDR(const char *s)
{
    rp_addr r;
    memset(&r, 0, sizeof r);
    if (strchr(s, ':')) {
        r.family = 6;
        if (parse_ip6(s, strlen(s), r.ip) != RP_OK)
            r.family = 99;
    } else if (rp_addr_parse(&r, s, strlen(s), 0) != RP_OK) {
        r.family = 99;
    }
    return r;
}

static void
test_cidr(void)
{
    static const struct {
        const char *addr, *net;
        int bits, in;
    } t[] = {
        {"10.1.2.77", "10.1.2.0", 24, 1},   {"10.1.3.77", "10.1.2.0", 24, 0},
        {"10.1.3.77", "10.1.2.0", 22, 1},   {"10.1.4.0", "10.1.2.0", 22, 0},
        {"10.255.0.1", "10.1.2.0", 8, 1},   {"11.1.2.0", "10.1.2.0", 8, 0},
        {"192.168.0.1", "10.1.2.0", 0, 1},  {"10.1.2.0", "10.1.2.0", 32, 1},
        {"10.1.2.1", "10.1.2.0", 32, 0},    {"10.1.2.1", "10.1.2.0", 31, 1},
        {"10.1.2.2", "10.1.2.0", 31, 0},    {"172.31.255.255", "172.16.0.0", 12, 1},
        {"172.32.0.0", "172.16.0.0", 12, 0}, {"172.15.255.255", "172.16.0.0", 12, 0},
        {"::ffff:ac10:1", "172.16.0.0", 0, 0}, /* IPv6 is never in an IPv4 net, even /0 */
        {"127.0.0.1", "2001:db8:1:2::", 0, 0},
        {"2001:db8:1:2:aaaa::1", "2001:db8:1:2::", 64, 1}, {"2001:db8:1:3::1", "2001:db8:1:2::", 64, 0},
        {"2001:db8:1:3::1", "2001:db8:1:2::", 63, 1},      {"2001:db8:ffff::1", "2001:db8:1:2::", 32, 1},
        {"2001:db9::1", "2001:db8:1:2::", 32, 0},          {"::1", "2001:db8:1:2::", 0, 1},
        {"2001:db8:1:2::", "2001:db8:1:2::", 128, 1},      {"::1", "::1", 128, 1},
        {"::2", "::1", 128, 0},             {"::", "::1", 127, 1},
        {"::3", "::1", 127, 0},             {"fe80::1", "fe80::", 10, 1},
        {"febf::1", "fe80::", 10, 1},       {"fec0::1", "fe80::", 10, 0},
    };
    size_t i;
    for (i = 0; i < TAP_COUNT(t); i++) {
        rp_addr a = ADDR(t[i].addr), n = ADDR(t[i].net);
        if (!CHECK(a.family != 99 && n.family != 99, "cidr[%zu] addresses parse", i))
            continue;
        CHECK_INT(addr_in_net(&a, &n, t[i].bits), t[i].in, "cidr[%zu] %s %s %s/%d", i, t[i].addr,
                  t[i].in ? "in" : "not in", t[i].net, t[i].bits);
    }
}

static const tap_test tests[] = {
    TAP_TEST(crypt_drepper), TAP_TEST(crypt_empty), TAP_TEST(crypt_openssl), TAP_TEST(crypt_mkpasswd), TAP_TEST(crypt_malformed), TAP_TEST(basic_good),
    TAP_TEST(basic_bad),     TAP_TEST(basic_long),    TAP_TEST(users_good),      TAP_TEST(users_bad),
    TAP_TEST(cidr),
};

int
main(int argc, char **argv)
{
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

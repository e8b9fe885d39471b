/* ==== [4] HTTP/1.1 parser: head end, request, response, chunked, dates ====
 * Three steps, like picohttpparser: rp_http_head_end finds the end of a head
 * incrementally (and rejects bare CR, bare LF and NUL on the way), the
 * message parsers split a complete head into views, and one semantic pass
 * derives the framing.  Anything ambiguous is an error: the proxy refuses
 * what a device might read differently (RFC 9112 §6.3, §11.2).  HTTP-dates
 * (RFC 9110 §5.6.7) are read for the cache and written for Date.
 * Owns: nothing (views into the caller's buffer).  Calls: [1]. */
#include "rp_int.h"



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
        if (q == p || *q != ':') /* empty name (obs-fold or leading
                                    whitespace too), bad char, space before colon */
            return FAIL(m, RP_EINVAL, q == p ? "field line without a name (obs-fold?)"
                                      : *q == ' ' || *q == '\t' ? "whitespace before a field's colon"
                                      : "bad character in a field name");
        if (m->nheaders == RP_MAX_HEADERS)
            return FAIL(m, RP_EHDRTOOBIG, "too many header fields (" XSTR(RP_MAX_HEADERS) ")");
        h = &m->headers[m->nheaders++];
        h->name.p = p, h->name.n = (size_t)(q - p);
        h->id = header_id(h->name); /* once: every later pass reads it */
        p = ++q;
        while (*q != '\r') {
            unsigned char c = (unsigned char)*q++;
            if (is_ctl(c))
                return FAIL(m, RP_EINVAL, "control character in a field value");
        }
        if (q[1] != '\n')
            return FAIL(m, RP_EINVAL, "CR without LF in a field line");
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

int
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
            if (m->flags & RP_HF_LENGTH)
                return FAIL(m, RP_EINVAL, "duplicate Content-Length");
            if ((m->content_length = parse_dec(v)) < 0) /* list, sign, hex, space */
                return FAIL(m, RP_EINVAL, "Content-Length not a decimal number");
            m->flags |= RP_HF_LENGTH;
            break;
        case H_TRANSFER_ENCODING:
            if (te++)
                return FAIL(m, RP_EINVAL, "duplicate Transfer-Encoding");
            if ((rc = check_te(v)) == RP_EINVAL)
                return FAIL(m, RP_EINVAL, "Transfer-Encoding other than one final chunked");
            if (rc != RP_OK)
                return FAIL(m, is_request ? rc : RP_EINVAL, "transfer coding other than chunked");
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
            if (host++)
                return FAIL(m, RP_EINVAL, "duplicate Host");
            if (check_host(v) != RP_OK)
                return FAIL(m, RP_EINVAL, "bad character in Host");
            if (!(m->flags & RP_HF_ABSOLUTE))
                m->host = v;
            m->flags |= RP_HF_HOST;
            break;
        case H_EXPECT:
            if (!is_request)
                break;
            if (!str_ieq(v, S("100-continue")))
                return FAIL(m, RP_EEXPECT, "Expect other than 100-continue");
            m->flags |= RP_HF_EXPECT100;
            break;
        }
    }
    if ((m->flags & RP_HF_LENGTH) && (m->flags & RP_HF_CHUNKED)) /* the classic desync */
        return FAIL(m, RP_EINVAL, "both Content-Length and Transfer-Encoding");
    return RP_OK;
}

/* "HTTP/1.x" at p: returns the minor version, or an error. */
static int
parse_version(const char *p, const char *end, rp_http_msg *m)
{
    if (end - p < 8 || memcmp(p, "HTTP/", 5) != 0 ||
        p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9')
        return FAIL(m, RP_EINVAL, "malformed HTTP version");
    if (p[5] != '1' || p[7] > '1')
        return FAIL(m, RP_EVERSION, "HTTP version other than 1.0 and 1.1");
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
        return FAIL(m, RP_ETOOLONG, "request target longer than RP_MAX_URI (" XSTR(RP_MAX_URI) ")");
    if (t.p[0] == '/')
        return RP_OK;
    if (t.n == 1 && t.p[0] == '*')
        return str_ieq(m->method, S("options")) ? RP_OK
                                               : FAIL(m, RP_EINVAL, "target * with a method but OPTIONS");
    if (starts_with(t, S("http://")))
        skip = 7;
    else if (starts_with(t, S("https://")))
        skip = 8;
    else
        return m->method.n == 7 && memcmp(m->method.p, "CONNECT", 7) == 0
                   ? RP_OK : FAIL(m, RP_EINVAL, "request target neither /path nor http(s)://");
    for (i = skip; i < t.n && t.p[i] != '/' && t.p[i] != '?'; i++)
        if (t.p[i] == '@')
            return FAIL(m, RP_EINVAL, "user@ in the request target");
    if (i == skip)
        return FAIL(m, RP_EINVAL, "no host in an absolute target");
    m->host.p = t.p + skip, m->host.n = i - skip;
    m->target.p = t.p + i, m->target.n = t.n - i;
    m->flags |= RP_HF_ABSOLUTE | RP_HF_HOST;
    return check_host(m->host) ? FAIL(m, RP_EINVAL, "bad character in the target's host") : RP_OK;
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
        return FAIL(m, RP_EINVAL, "malformed method");
    m->method.p = p, m->method.n = (size_t)(q - p);
    for (p = ++q; *q > ' ' && *q < 0x7f; q++)
        ;
    if (q == p || *q != ' ')
        return q - p > RP_MAX_URI ? FAIL(m, RP_ETOOLONG, "request target longer than RP_MAX_URI ("
                                                          XSTR(RP_MAX_URI) ")")
                                  : FAIL(m, RP_EINVAL, *q == '\r' ? "request line without an HTTP version"
                                                                  : "malformed request target");
    m->target.p = p, m->target.n = (size_t)(q - p);
    if ((rc = parse_version(q + 1, end, m)) < 0)
        return rc;
    m->minor = rc;
    p = q + 9;
    if (p[0] != '\r' || p[1] != '\n')
        return FAIL(m, RP_EINVAL, "junk after the HTTP version");
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
    if ((rc = parse_version(p, end, m)) < 0)
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
    if (m->minor == 0 && (m->flags & RP_HF_CHUNKED)) /* RFC 9112 §6.1: faulty framing */
        return FAIL(m, RP_EINVAL, "Transfer-Encoding in an HTTP/1.0 request");
    if (m->minor == 1 && !(m->flags & RP_HF_HOST))
        return FAIL(m, RP_EINVAL, "HTTP/1.1 request without Host");
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
int64_t
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
void
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

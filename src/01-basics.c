/* ==== [1] Basics: views, characters, numbers, a bounded writer ====
 * Small helpers everything else leans on.  Character classes are RFC 9110's:
 * tchar for tokens (methods, field names), vchar/obs-text for values.
 * Owns: nothing but code.  Calls: nothing.  wbuf, the bounded writer every
 * head, page and log line is built with, is in rp_int.h. */
#include "rp_int.h"

/* Character classes as bitmaps over 0..127 (nothing above is in one). */
int
in_class(const uint32_t *map, unsigned char c)
{
    return c < 128 && (map[c >> 5] >> (c & 31)) & 1;
}

/* tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA */
static const uint32_t tchar_map[4] = {0, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff};

int
is_tchar(unsigned char c)
{
    return in_class(tchar_map, c);
}

/* CTL but HTAB: not allowed in a field value or a chunk extension. */
int
is_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

#if RP_ENABLE_CACHE
int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
#endif

int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Case-insensitive compare of a view with n bytes at b. */
int
str_ieq(rp_str a, const char *b, size_t n)
{
    size_t i;
    if (a.n != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)a.p[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int
str_ieq2(rp_str a, rp_str b)
{
    return str_ieq(a, b.p, b.n);
}

/* A view without its leading and trailing spaces and tabs. */
void
str_trim(rp_str *s)
{
    while (s->n && (s->p[0] == ' ' || s->p[0] == '\t'))
        s->p++, s->n--;
    while (s->n && (s->p[s->n - 1] == ' ' || s->p[s->n - 1] == '\t'))
        s->n--;
}

/* Next comma-separated element of a list value; returns 0 when none left.
 * Empty elements ("a,,b") are skipped, as RFC 9110 §5.6.1 allows. */
int
list_next(rp_str *rest, rp_str *elem)
{
    while (rest->n) {
        size_t i = 0;
        while (i < rest->n && rest->p[i] != ',')
            i++;
        elem->p = rest->p;
        elem->n = i;
        str_trim(elem);
        rest->p += i + (i < rest->n);
        rest->n -= i + (i < rest->n);
        if (elem->n)
            return 1;
    }
    return 0;
}

/* Decimal digits only, at most 18 of them (fits int64).  -1 if invalid. */
int64_t
parse_dec(rp_str s)
{
    int64_t v = 0;
    size_t i;
    if (s.n == 0 || s.n > 18)
        return -1;
    for (i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    return v;
}


void
w_put(wbuf *w, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (w->full || n > w->cap - w->n) {
        w->full = 1;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

void
w_str(wbuf *w, rp_str s)
{
    w_put(w, s.p, s.n);
}

void
w_num(wbuf *w, uint64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    w_put(w, t + i, sizeof(t) - i);
}

/* "Name: value\r\n" */
void
w_field(wbuf *w, const char *name, size_t n, rp_str value)
{
    w_put(w, name, n);
    w_put(w, S(": "));
    w_str(w, value);
    w_put(w, S("\r\n"));
}

void
w_cstr(wbuf *w, const char *s)
{
    w_put(w, s, strlen(s));
}

int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* ==== [2] Addresses: parse and format ====
 * Addresses are parsed from the config ("10.0.0.5:80", "[fe80::1]:80",
 * "localhost:80") without any resolver: a gateway names its devices by
 * address.  RP_ENABLE_IPV6 0 leaves the IPv6 parser and formatter out.
 * addr_in_net is the one CIDR match (status allow=; route ACLs and PROXY
 * protocol proxy_from= to come); parse_ip6 also reads PROXY v1 lines ([21]).
 * Owns: nothing.  Calls: [1]. */
#include "rp_int.h"

#if RP_ENABLE_CONFIG_TEXT
static int
parse_ip4(const char *s, size_t n, uint8_t *ip)
{
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 4)
            v = v * 10 + (unsigned)(s[i++] - '0'), digits++;
        if (digits == 0 || digits > 3 || v > 255)
            return RP_EINVAL;
        ip[part] = (uint8_t)v;
        if (part < 3 && (i >= n || s[i++] != '.'))
            return RP_EINVAL;
    }
    return i == n ? RP_OK : RP_EINVAL;
}
#endif

#if RP_ENABLE_IPV6 && (RP_ENABLE_CONFIG_TEXT || RP_ENABLE_PROXY_PROTOCOL)
/* RFC 4291 text form, with one "::" allowed (no embedded IPv4). */
int
parse_ip6(const char *s, size_t n, uint8_t *ip)
{
    uint16_t g[8];
    int ng = 0, gap = -1, i;
    size_t k = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':')
        gap = 0, k = 2;
    while (k < n) {
        unsigned v = 0, digits = 0;
        while (k < n && hexval(s[k]) >= 0 && digits < 5)
            v = v * 16 + (unsigned)hexval(s[k++]), digits++;
        if (digits == 0 || digits > 4 || ng == 8)
            return RP_EINVAL;
        g[ng++] = (uint16_t)v;
        if (k == n)
            break;
        if (s[k++] != ':' || k == n)
            return RP_EINVAL;
        if (s[k] == ':') {
            if (gap >= 0)
                return RP_EINVAL;
            gap = ng, k++;
        }
    }
    if ((gap < 0 && ng != 8) || (gap >= 0 && ng > 7))
        return RP_EINVAL;
    memset(ip, 0, 16);
    for (i = 0; i < ng; i++) {
        int at = (gap >= 0 && i >= gap) ? i + (8 - ng) : i;
        ip[2 * at] = (uint8_t)(g[i] >> 8);
        ip[2 * at + 1] = (uint8_t)g[i];
    }
    return RP_OK;
}
#endif

#if RP_ENABLE_CONFIG_TEXT
int
rp_addr_parse(rp_addr *a, const char *s, size_t n, int need_port)
{
    size_t hn = n, i;
    const char *h = s;
    int64_t port = 0;
    memset(a, 0, sizeof(*a));
    if (n && s[0] == '[') { /* [v6]:port */
        for (i = 1; i < n && s[i] != ']'; i++)
            ;
        if (i == n)
            return RP_EINVAL;
        h = s + 1, hn = i - 1;
        i++;
    } else {
        for (i = n; i > 0 && s[i - 1] != ':'; i--)
            ;
        i = i ? i - 1 : n;
        hn = i;
    }
    if (i < n) {
        rp_str ps;
        if (s[i] != ':')
            return RP_EINVAL;
        ps.p = s + i + 1, ps.n = n - i - 1;
        port = parse_dec(ps);
        if (port < 1 || port > 65535)
            return RP_EINVAL;
    } else if (need_port) {
        return RP_EINVAL;
    }
    a->port = (uint16_t)port;
    if (h != s) {
        a->family = 6;
        return parse_ip6(h, hn, a->ip);
    }
    a->family = 4;
    if (hn == 9 && memcmp(h, "localhost", 9) == 0) {
        a->ip[0] = 127, a->ip[3] = 1;
        return RP_OK;
    }
    return parse_ip4(h, hn, a->ip);
}
#endif

#if RP_ENABLE_STATUS || RP_ENABLE_PROXY_PROTOCOL || RP_ENABLE_ACL
int
addr_in_net(const rp_addr *a, const rp_addr *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (net->family != a->family || memcmp(net->ip, a->ip, (size_t)full) != 0)
        return 0;
    return !rest || ((net->ip[full] ^ a->ip[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* 1 when a is inside one of nets[0..n). */
int
addr_in_nets(const rp_addr *a, const rp_net *nets, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (addr_in_net(a, &nets[i].net, nets[i].bits))
            return 1;
    return 0;
}
#endif

#if RP_ENABLE_IPV6
/* RFC 5952: lower-case hex, no leading zeros, the longest run of two or
 * more zero groups (the first on a tie) written as "::". */
static void
addr6_format(const uint8_t *ip, wbuf *w)
{
    static const char hex[] = "0123456789abcdef";
    int i, run = 0, best = -1, bestlen = 1;
    for (i = 0; i < 8; i++) {
        run = (ip[2 * i] | ip[2 * i + 1]) ? 0 : run + 1;
        if (run > bestlen)
            bestlen = run, best = i - run + 1;
    }
    for (i = 0; i < 8; i++) {
        unsigned v = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
        int shift, started = 0;
        if (i == best) {
            w_put(w, "::", 2);
            i += bestlen - 1;
            continue;
        }
        if (i && i != best + bestlen)
            w_put(w, ":", 1);
        for (shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (v >> shift) & 15;
            if (d || started || shift == 0)
                w_put(w, &hex[d], 1), started = 1;
        }
    }
}
#endif

size_t
rp_addr_format(const rp_addr *a, char *out, size_t cap)
{
    char t[48];
    wbuf w;
    int i;
    w.p = t, w.n = 0, w.cap = sizeof(t), w.full = 0;
    if (a->family == 4 || !RP_ENABLE_IPV6) {
        for (i = 0; i < 4; i++) {
            if (i)
                w_put(&w, ".", 1);
            w_num(&w, a->ip[i]);
        }
    }
#if RP_ENABLE_IPV6
    else {
        addr6_format(a->ip, &w);
    }
#endif
    if (cap == 0)
        return 0;
    if (w.n >= cap)
        w.n = cap - 1;
    memcpy(out, t, w.n);
    out[w.n] = 0;
    return w.n;
}

/* "ip:port", IPv6 in brackets. */
void
w_addr(wbuf *w, const rp_addr *a)
{
    char ip[48];
    size_t n = rp_addr_format(a, ip, sizeof(ip));
    int v6 = RP_ENABLE_IPV6 && a->family == 6;
    if (v6)
        w_put(w, "[", 1);
    w_put(w, ip, n);
    if (v6)
        w_put(w, "]", 1);
    w_put(w, ":", 1);
    w_num(w, a->port);
}

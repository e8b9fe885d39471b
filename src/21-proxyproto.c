/* ==== [21] The PROXY protocol header ====
 * A load balancer in front (HAProxy `send-proxy` / `send-proxy-v2`, cloud
 * balancers) puts a header before the client's first byte saying whose
 * connection this is: version 1 a text line of at most 107 bytes, version
 * 2 a 16-byte binary head and up to 65,535 bytes of addresses and TLVs
 * (HAProxy's "The PROXY protocol", versions 1 and 2).  proxy_header_parse
 * reads it from the bytes received so far: the source address and port, or
 * none (LOCAL, UNKNOWN, UNSPEC, AF_UNIX), TLVs skipped.  Strict: any byte
 * that does not fit the specification makes the header malformed, and
 * that is known as soon as the byte arrives (a v1 line is printable ASCII
 * to its CRLF, an UNKNOWN one too).  No state between calls.
 * Stack (Cortex-M4 -Os): 140 B (proxy_header_parse 96, pp1_ip6 24, pp1_ip4
 * 20).  Code: 1,044 B of Cortex-M4 text (x86_64 -O2: 2.0 KB).  The board
 * has it off (RP_ENABLE_PROXY_PROTOCOL 0).
 * Owns: nothing.  Calls: [1] [2] (parse_ip6).  Called by: nothing yet: [9] is
 * to call it on a `listen ... proxy_protocol` connection before the first
 * request, and to check the peer with addr_in_net against proxy_from=. */
#include "rp_int.h"

#if RP_ENABLE_PROXY_PROTOCOL

/* Version 1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n". */
#define PP1_MAX 107

/* Dotted IPv4, exactly four numbers 0..255 without leading zeros. */
static int
pp1_ip4(const uint8_t *s, size_t n, uint8_t *ip)
{
    size_t i = 0;
    int part;
    for (part = 0; part < 4; part++) {
        unsigned v = 0, d = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && d < 4)
            v = v * 10 + (unsigned)(s[i++] - '0'), d++;
        if (d == 0 || d > 3 || v > 255 || (d > 1 && s[i - d] == '0'))
            return RP_EINVAL;
        ip[part] = (uint8_t)v;
        if (part < 3 && (i >= n || s[i++] != '.'))
            return RP_EINVAL;
    }
    return i == n ? RP_OK : RP_EINVAL;
}

/* An IPv4-mapped IPv6 address (::ffff:0:0/96) is the IPv4 client it maps:
 * rproxy's own listeners are v6-only, so that is how the rest of rproxy
 * (allow= networks, logs) knows such a client.  In place, a family 6 a. */
static void
pp_unmap(rp_addr *a)
{
    static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a->family == 6 && memcmp(a->ip, pre, 12) == 0) {
        memmove(a->ip, a->ip + 12, 4);
        memset(a->ip + 4, 0, 12);
        a->family = 4;
    }
}

/* A TCP6 address: RFC 4291 text (as [2] reads it), or "::ffff:" and a
 * dotted IPv4 address (what HAProxy writes for a v4 client on a v6
 * socket), into a (family 6, or 4 for a mapped one). */
static int
pp1_ip6(const uint8_t *s, size_t n, rp_addr *a)
{
    rp_str pre;
    pre.p = (const char *)s, pre.n = 7;
    if (n > 7 && str_ieq(pre, S("::ffff:")) && memchr(s + 7, '.', n - 7)) {
        a->family = 4;
        return pp1_ip4(s + 7, n - 7, a->ip);
    }
    a->family = 6;
    if (!RP_ENABLE_IPV6 || parse_ip6((const char *)s, n, a->ip) != RP_OK)
        return RP_EINVAL;
    pp_unmap(a);
    return RP_OK;
}

/* A port 0..65535 without leading zeros; -1 when it is not one. */
static long
pp1_port(const uint8_t *s, size_t n)
{
    long v = 0;
    size_t i;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

static long
pp_v1(const uint8_t *b, size_t n, rp_addr *src)
{
    const uint8_t *f[5]; /* TCP4|TCP6, source, destination, ports */
    size_t fl[5], i, end, k = 0;
    rp_addr dst;
    long sport;
    if (memcmp(b, "PROXY ", RP_MIN(n, (size_t)6)) != 0)
        return RP_EINVAL;
    for (i = 6;; i++) {
        if (i >= PP1_MAX - 1)
            return RP_EINVAL; /* no CRLF in the first 107 bytes */
        if (i >= n)
            return RP_EAGAIN;
        if (b[i] == '\r')
            break;
        if (b[i] < 0x20 || b[i] > 0x7e)
            return RP_EINVAL; /* bare LF, NUL, binary */
    }
    if (i + 1 >= n)
        return RP_EAGAIN;
    if (b[i + 1] != '\n')
        return RP_EINVAL;
    end = i;
    if (end - 6 >= 7 && memcmp(b + 6, "UNKNOWN", 7) == 0 && (end == 13 || b[13] == ' '))
        return (long)end + 2; /* the rest of the line is ignored */
    /* the fields after "PROXY ", separated by exactly one space */
    f[0] = b + 6;
    for (i = 6; i < end; i++) {
        if (b[i] != ' ')
            continue;
        if (k == 4)
            return RP_EINVAL;
        fl[k] = (size_t)(b + i - f[k]);
        f[++k] = b + i + 1;
    }
    fl[k] = (size_t)(b + end - f[k]);
    if (k != 4 || fl[0] != 4 || memcmp(f[0], "TCP", 3) != 0 || (f[0][3] != '4' && f[0][3] != '6'))
        return RP_EINVAL;
    for (i = 1; i < 5; i++)
        if (fl[i] == 0)
            return RP_EINVAL;
    if (f[0][3] == '6') {
        if (pp1_ip6(f[1], fl[1], src) != RP_OK || pp1_ip6(f[2], fl[2], &dst) != RP_OK)
            return RP_EINVAL;
    } else if (pp1_ip4(f[1], fl[1], src->ip) != RP_OK || pp1_ip4(f[2], fl[2], dst.ip) != RP_OK) {
        return RP_EINVAL;
    } else {
        src->family = 4;
    }
    sport = pp1_port(f[3], fl[3]);
    if (sport < 0 || pp1_port(f[4], fl[4]) < 0)
        return RP_EINVAL;
    src->port = (uint16_t)sport;
    return (long)end + 2;
}

/* Version 2: signature, version/command, family/transport, length. */
static const uint8_t pp2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static long
pp_v2(const uint8_t *b, size_t n, rp_addr *src)
{
    size_t len, need;
    unsigned cmd, af, tp;
    if (memcmp(b, pp2_sig, RP_MIN(n, sizeof(pp2_sig))) != 0)
        return RP_EINVAL;
    if (n > 12 && ((b[12] >> 4) != 2 || (b[12] & 15) > 1))
        return RP_EINVAL; /* version 2; LOCAL (0) or PROXY (1) */
    if (n > 13 && ((b[13] >> 4) > 3 || (b[13] & 15) > 2))
        return RP_EINVAL; /* AF_UNSPEC/INET/INET6/UNIX; UNSPEC/STREAM/DGRAM */
    if (n < 16)
        return RP_EAGAIN;
    cmd = b[12] & 15, af = b[13] >> 4, tp = b[13] & 15;
    len = (size_t)b[14] << 8 | b[15];
    if (16 + len > RP_PROXY_V2_MAX)
        return RP_EINVAL;
    need = af == 1 ? 12 : af == 2 ? 36 : af == 3 ? 216 : 0;
    if (cmd == 1 && len < need)
        return RP_EINVAL; /* the addresses do not fit the length */
    if (n < 16 + len)
        return RP_EAGAIN;
    if (cmd == 0)
        return (long)(16 + len); /* LOCAL: the balancer's own connection */
    if (tp == 2 && af != 0)
        return RP_EINVAL; /* a datagram flow is never an HTTP connection */
    if (tp == 1 && af == 1) {
        memcpy(src->ip, b + 16, 4);
        src->family = 4;
        src->port = (uint16_t)(b[24] << 8 | b[25]);
    } else if (tp == 1 && af == 2) {
        memcpy(src->ip, b + 16, 16);
        src->family = 6;
        src->port = (uint16_t)(b[48] << 8 | b[49]);
        pp_unmap(src);
        if (!RP_ENABLE_IPV6 && src->family == 6)
            return RP_EINVAL;
    }
    return (long)(16 + len); /* TLVs after the addresses skipped */
}

long
proxy_header_parse(const uint8_t *b, size_t n, rp_addr *src)
{
    long rc = RP_EINVAL;
    memset(src, 0, sizeof(*src));
    if (n == 0)
        return RP_EAGAIN;
    if (b[0] == 'P')
        rc = pp_v1(b, n, src);
    else if (b[0] == 0x0d)
        rc = pp_v2(b, n, src);
    if (rc <= 0)
        memset(src, 0, sizeof(*src)); /* no half-read address */
    return rc;
}
/* How many bytes may be read after b[0..have) without passing the end of
 * the header (at least 1): the 16 bytes every header begins with, then a v2
 * header's stated length, then v1's line a byte at a time. */
size_t
proxy_header_want(const uint8_t *b, size_t have)
{
    size_t end;
    if (have < 16)
        return 16 - have;
    if (memcmp(b, pp2_sig, sizeof(pp2_sig)) != 0)
        return 1;
    end = 16 + ((size_t)b[14] << 8 | b[15]);
    return end > have ? end - have : 1;
}
#endif

/*
 * rp_int.h -- what the sections of the core (src/NN-name.c) share: internal
 * types, constants and the functions one section calls in another.
 *
 * SPDX-License-Identifier: MIT
 *
 * Each src/NN-name.c includes this header and compiles on its own (the
 * development, test and fuzz builds); scripts/amalgamate.sh pastes this
 * header once and every section after it into rproxy.c, the drop-in file.
 * Functions shared between sections are declared here with RP_INTERNAL,
 * which is `static` in rproxy.c (one translation unit, nothing leaks to the
 * linker but rp_*) and `extern` in the per-file build.  A function used by
 * one section only stays `static` in it and is not declared here.
 *
 * Grouped by the section that defines them, in the order of rproxy.c.
 */
#ifndef RP_INT_H
#define RP_INT_H

#include "rproxy.h"

#include <string.h>

typedef struct rp_conn rp_conn; /* a client or device connection (rproxy.h) */

#ifdef RP_AMALGAMATION
#define RP_INTERNAL static
#else
#define RP_INTERNAL extern
#endif

/* For small functions called from several paths that GCC's -Os would copy
 * into every caller although one shared copy is smaller (each marked one
 * measured: at least 16 bytes of the board build). */
#ifdef __GNUC__
#define RP_NOINLINE __attribute__((noinline))
#else
#define RP_NOINLINE
#endif

/* Invariants (RP_ENABLE_ASSERT in rproxy.h): off, they compile to nothing. */
#if RP_ENABLE_ASSERT
#define RP_ASSERT(e) ((e) ? (void)0 : rp_port_assert(__FILE__, __LINE__, #e))
#else
#define RP_ASSERT(e) ((void)0)
#endif

/* The configuration the code runs under (RP_ENABLE_RELOAD: a connection's
 * slot while its report or timer is served, else the live one; [27]).
 * DEVP(p, i): the device that keeps index i's state -- under the slot
 * before the last reload, its twin in the live slot when it has one.
 * DEVC(p, d): the same for device connection d, by d's own slot. */
#if RP_ENABLE_RELOAD
#define CFG(p) ((p)->cur)
#define SLOT(p, k) ((k) ? &(p)->cfg2 : &(p)->cfg)
#define CFG_ENTER(p, c) ((p)->cur = SLOT(p, (c)->cfs))
#define CFG_LIVE(p) ((p)->cur = SLOT(p, (p)->live))
#define DEVP(p, i) (CFG(p) == SLOT(p, (p)->live) ? &CFG(p)->devices[i] /* (most often) */ \
                                                 : dev_at(p, !(p)->live, i))
#define DEVC(p, d) ((d)->cfs == (p)->live ? &SLOT(p, (d)->cfs)->devices[(d)->device] \
                                           : dev_at(p, (d)->cfs, (d)->device))
#define CCFG(p, c) SLOT(p, (c)->cfs) /* connection c's configuration */
#define CUR_SLOT(p) (CFG(p) == &(p)->cfg2)
enum { RL_FREE, RL_READY, RL_OLD }; /* rp_proxy.spare */
#else
#define CFG(p) (&(p)->cfg)
#define CFG_ENTER(p, c) ((void)0)
#define CFG_LIVE(p) ((void)0)
#define DEVP(p, i) (&CFG(p)->devices[i])
#define DEVC(p, d) (&CFG(p)->devices[(d)->device])
#define CCFG(p, c) (&(p)->cfg)
#define CUR_SLOT(p) 0
#endif

/* ==== [1] Basics: views, characters, numbers, a bounded writer ==== */
#define RP_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RP_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) lit, (sizeof(lit) - 1)

/* Refusal reasons (RP_ENABLE_REASONS): FAIL(m, rc, "text") is rc after
 * naming the rule in m->why; WHY_ARG(x) is ", x" only in builds that keep
 * the texts, so a board without them passes no argument at all.  XSTR(N)
 * spells a setting's value ("too many header fields (" XSTR(RP_MAX_HEADERS) ")"). */
#if RP_ENABLE_REASONS
#define FAIL(m, rc, text) ((m)->why = (text), (rc))
#define WHY_ARG(x) , x
#else
#define FAIL(m, rc, text) ((void)(m), (rc))
#define WHY_ARG(x)
#endif
#define XSTR_(x) #x
#define XSTR(x) XSTR_(x)

/* A bounded writer: appends until full, then remembers it overflowed. */
typedef struct {
    char *p;
    size_t n, cap;
    int full;
} wbuf;

RP_INTERNAL int in_class(const uint32_t *map, unsigned char c);
RP_INTERNAL int is_tchar(unsigned char c);
RP_INTERNAL int is_ctl(unsigned char c);
#if RP_ENABLE_CACHE
RP_INTERNAL int is_digit(unsigned char c);
#endif
RP_INTERNAL int lower(int c);
RP_INTERNAL int str_ieq(rp_str a, const char *b, size_t n);
RP_INTERNAL int str_ieq2(rp_str a, rp_str b);
RP_INTERNAL void str_trim(rp_str *s);
RP_INTERNAL int list_next(rp_str *rest, rp_str *elem);
RP_INTERNAL int64_t parse_dec(rp_str s);
RP_INTERNAL void w_put(wbuf *w, const char *s, size_t n);
RP_INTERNAL void w_str(wbuf *w, rp_str s);
RP_INTERNAL void w_num(wbuf *w, uint64_t v);
RP_INTERNAL void w_field(wbuf *w, const char *name, size_t n, rp_str value);
RP_INTERNAL void w_cstr(wbuf *w, const char *s);
RP_INTERNAL int hexval(int c);

/* ==== [2] Addresses ==== */
RP_INTERNAL void w_addr(wbuf *w, const rp_addr *a);
#if RP_ENABLE_IPV6 && (RP_ENABLE_CONFIG_TEXT || RP_ENABLE_PROXY_PROTOCOL)
RP_INTERNAL int parse_ip6(const char *s, size_t n, uint8_t *ip);
#elif !RP_ENABLE_IPV6
#define parse_ip6(s, n, ip) ((void)(s), (void)(n), (void)(ip), RP_ENOTIMPL)
#endif

/* ==== [3] Buffers ==== */
RP_INTERNAL size_t buf_len(const rp_buf *b);
RP_INTERNAL int buf_attach(rp_proxy *p, rp_buf *b);
RP_INTERNAL void buf_release(rp_proxy *p, rp_buf *b, int force);
RP_INTERNAL size_t buf_room(rp_proxy *p, rp_buf *b);
RP_INTERNAL size_t buf_move(rp_proxy *p, rp_buf *dst, rp_buf *src, size_t n);
RP_INTERNAL wbuf buf_writer(rp_proxy *p, rp_buf *b);
RP_INTERNAL int buf_commit(rp_buf *b, const wbuf *w);

/* ==== [4] HTTP/1.1 parser ==== */
/* Header fields the proxy acts on, by rp_header.id. */
enum {
    H_OTHER, H_HOST, H_CONTENT_LENGTH, H_TRANSFER_ENCODING, H_CONNECTION,
    H_KEEP_ALIVE, H_PROXY_CONNECTION, H_TE, H_TRAILER, H_UPGRADE, H_EXPECT,
    H_XFF, H_XFPROTO, H_XFHOST, H_VIA,
    /* end-to-end fields the cache reads; forwarded like H_OTHER */
    H_DATE, H_AGE, H_CACHE_CONTROL, H_PRAGMA, H_EXPIRES, H_ETAG, H_LAST_MODIFIED,
    H_VARY, H_SET_COOKIE, H_AUTHORIZATION, H_IF_NONE_MATCH, H_IF_MODIFIED_SINCE,
    H_LOCATION, H_CONTENT_LOCATION, H_CACHE_STATUS
};

/* rp_chunked.state */
enum {
    CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
    CH_TRAILER, CH_TRAILER_LINE, CH_TRAILER_LF, CH_END_LF, CH_BWS
};

RP_INTERNAL int check_host(rp_str h);
#if RP_ENABLE_CACHE
RP_INTERNAL int64_t http_date(rp_str v);
#endif
#if RP_ENABLE_WALL_CLOCK
RP_INTERNAL void http_date_format(int64_t t, char *out);
#endif

/* ==== [5] TLS certificate store ==== */
#if RP_ENABLE_TLS && RP_ENABLE_CONFIG_TEXT
#if RP_ENABLE_TLS_DEVICE || RP_ENABLE_TLS_CLIENT_AUTH
RP_INTERNAL const char * tls_ca_load(rp_proxy *p, br_x509_trust_anchor *tas, size_t *ntas, const char *file, int *why);
#endif
#endif
#if RP_ENABLE_TLS && RP_ENABLE_CONFIG_TEXT
RP_INTERNAL const char * tls_cert_load(rp_proxy *p, rp_tls_cert *ct, const char *file, int *why);
RP_INTERNAL const char * tls_key_load(rp_proxy *p, rp_tls_cert *ct, const char *keyfile, int *why);
#endif

/* ==== [6] Configuration ==== */
#if RP_ENABLE_CONFIG_TEXT
/* What a number in the config is (cfg_qty): a count; a duration in ms, a
 * bare number being ms (CFG_MS) or seconds (CFG_SEC), or with a unit ms,
 * s, m, h; a size in bytes, bare or with k, m (KiB, MiB). */
enum { CFG_NUM, CFG_MS, CFG_SEC, CFG_SIZE };
/* Why cfg_qty refused one (it returns RP_OK or one of these). */
enum { CFG_QEMPTY = 1, CFG_QNEG, CFG_QNOTNUM, CFG_QUNIT, CFG_QJUNK, CFG_QBIG };
RP_INTERNAL int cfg_qty(rp_str s, int kind, uint64_t *out);
#endif

/* ==== [7] Router and balancer ==== */
RP_INTERNAL rp_str host_only(rp_str h);
RP_INTERNAL int route_host_match(const char *pat, rp_str host);
RP_INTERNAL int route_match(const rp_config *c, rp_str host, rp_str path);
RP_INTERNAL int device_is_up(const rp_proxy *p, const rp_device *d);
RP_INTERNAL int pool_pick(rp_proxy *p, const rp_pool *pl, uint32_t tried);
#define PICK_FULL (-2) /* pool_pick: every device it would use is at max_conns */
#if RP_ENABLE_LIMITS
RP_INTERNAL int device_full(const rp_device *d);
#else
#define device_full(d) 0
#endif
RP_INTERNAL void device_fail(rp_proxy *p, int idx, int err);
RP_INTERNAL RP_NOINLINE void device_ok(rp_proxy *p, int idx);

/* ==== [8] TLS sessions ==== */
#if RP_ENABLE_TLS
#if RP_ENABLE_TLS_DEVICE
RP_INTERNAL struct rp_tls * tls_take_client(rp_proxy *p, const rp_device *dv);
#endif
#endif
#if RP_ENABLE_TLS
RP_INTERNAL struct rp_tls * tls_take(rp_proxy *p, const rp_listener_cfg *l);
RP_INTERNAL unsigned tls_state(const rp_conn *c);
RP_INTERNAL RP_NOINLINE int tls_pump(rp_proxy *p, rp_conn *c);
RP_INTERNAL unsigned tls_interest(const rp_conn *c);
#endif
RP_INTERNAL void tls_release(rp_proxy *p, rp_conn *c);
#if RP_ENABLE_TLS
RP_INTERNAL int tls_evict(rp_proxy *p, const rp_conn *keep, uint64_t min_age);
RP_INTERNAL int tls_start(rp_proxy *p); /* [19] before the first TLS listener opens */
#endif

/* ==== [9] Connections (the state table is in 09-conn.c) ==== */
enum { K_LISTENER = 1, K_CLIENT, K_DEVICE };
/* rp_conn.state: CS_ for client connections, DS_ for device ones. */
enum {
    CS_FREE, CS_HEAD, CS_FWD, CS_TUNNEL, CS_CLOSING, CS_LOCAL, CS_CACHE, CS_CWAIT,
#if RP_ENABLE_LIMITS
    CS_QUEUE, /* (only where there is a queue: the states after it keep their numbers) */
#endif
#if RP_ENABLE_SHARE
    CS_STREAM, /* a viewer of a shared stream (or waiting for its head) */
#endif
    DS_CONNECTING, DS_PCONNECT, DS_PROBE, DS_BUSY, DS_IDLE,
#if RP_ENABLE_SHARE
    DS_STREAM, /* feeding a shared stream: no client linked */
#endif
    RP_NSTATES
};
/* The device's TCP connect is pending (an exchange's or a probe's). */
#define CONNECTING(c) ((unsigned)((c)->state - DS_CONNECTING) <= 1u)
/* A health probe: connecting or waiting for its status line. */
#define PROBING(c) ((unsigned)((c)->state - DS_PCONNECT) <= 1u)
/* rp_conn.mode: how the body in `in` is framed. */
enum { M_NONE, M_LENGTH, M_CHUNKED, M_DECHUNK, M_CLOSE, M_TUNNEL };
/* rp_conn.tkind: which timer is armed (timer_kind derives it from the state). */
enum {
    T_NONE, T_HEAD, T_IDLE, T_CLIENT, T_TUNNEL, T_LINGER,
    T_CONNECT, T_DEVICE, T_DIDLE, T_PROBE, T_HANDSHAKE, T_CWAIT, T_QUEUE, T_SLINGER
};
#define NO_DEVICE 0xff /* rp_conn.device of a client no device serves yet */
#if RP_ENABLE_LIMITS
#define IS_QUEUED(c) ((c)->state == CS_QUEUE)
#else
#define IS_QUEUED(c) 0
#endif
#if RP_ENABLE_SHARE
#define IS_STREAM(c) ((c)->state == CS_STREAM)
#else
#define IS_STREAM(c) 0
#endif
#define NO_ROUTE 0xff  /* rp_conn.route before a route matched (access log, auth builds) */

/* Bytes of a cache hit's body still to send from the arena. */
#if RP_ENABLE_CACHE
#define HIT_LEFT(c) ((c)->cleft)
#else
#define HIT_LEFT(c) 0
#endif

/* rp_conn.flags, by lifetime.  Socket: the connection's whole life. */
#define F_EOF (1u << 0)       /* peer sent FIN */
#define F_DEAD (1u << 1)      /* socket failed (reset, send error) */
#define F_WBLOCK (1u << 2)    /* last send would block */
#define F_WSHUT (1u << 3)     /* we sent FIN */
#define F_PROGRESS (1u << 4)  /* bytes moved since the timer was armed */
#define F_SERVED (1u << 5)    /* client: a request was answered on it */
#define F_HSDONE (1u << 6)    /* TLS handshake finished */
#define F_TLSBYE (1u << 7)    /* TLS close_notify queued */
#define F_TLSPART (1u << 8)   /* a TLS record is partly sent: no alert may follow */
/* Exchange: how far this request/response got (client; F_KEEP on both). */
#define F_KEEP (1u << 9)      /* keep the connection after this exchange */
#define F_REQ_DONE (1u << 10) /* request fully moved to the device */
#define F_RESP_HEAD (1u << 11) /* final response head queued to the client */
#define F_RESP_DONE (1u << 12) /* response fully queued to the client */
#define F_DEVFAIL (1u << 13)  /* a device failed for this request (502, not 503) */
#define F_PROM (1u << 14)     /* CS_LOCAL: the status page in Prometheus format */
#define F_REUSED (1u << 15)   /* device: came from the idle pool */
#define F_GOT (1u << 16)      /* device: sent bytes in this exchange */
/* Request: what its head said (client, set by exchange_begin). */
#define F_HEAD (1u << 17)     /* method is HEAD */
#define F_GET (1u << 18)      /* method is GET */
#define F_SAFE (1u << 19)     /* method is safe (RFC 9110 §9.2.1) */
#define F_IDEMP (1u << 20)    /* method is idempotent (RFC 9110 §9.2.2) */
#define F_HTTP10 (1u << 21)   /* client speaks HTTP/1.0 */
#define F_UPG (1u << 22)      /* client asked for an Upgrade */
#define F_PROXYHDR (1u << 23) /* client: its PROXY header is still to come */
#define F_SNOVIEW (1u << 23)  /* device (DS_STREAM): its stream has no viewer: share_linger */
#define F_RESUME (1u << 27)   /* client: the turn's byte bound cut its service (socket) */
/* Response: why it was cut after its head (CUT_*, the access log's only). */
#if RP_ENABLE_ACCESS_LOG
#define F_CUT_SHIFT 24
#define F_CUT(why) ((uint32_t)(why) << F_CUT_SHIFT)
#define F_CUTS F_CUT(7)
#else
#define F_CUTS 0u
#endif

/* The current rp_poll turn's work (p->turn): bytes moved, TLS handshake
 * steps and timers for the longest-turn record, bytes for the bound. */
#if RP_TURN_TRACK_
#define TURN_BYTES(p, n) ((p)->turn.bytes += (uint32_t)(n))
#else
#define TURN_BYTES(p, n) ((void)0)
#endif
#if RP_ENABLE_TURN_STATS
#define TURN_COUNT(p, field) ((p)->turn.field++)
#else
#define TURN_COUNT(p, field) ((void)0)
#endif
#if RP_TURN_MAX_BYTES
#define TURN_BYTES_SPENT(p) ((p)->turn.bytes >= (uint32_t)RP_TURN_MAX_BYTES)
#else
#define TURN_BYTES_SPENT(p) 0
#endif

/* Cleared when a client starts its next request. */
#define F_EXCHANGE (F_KEEP | F_REQ_DONE | F_RESP_HEAD | F_RESP_DONE | F_DEVFAIL | F_PROM | \
                    F_HEAD | F_GET | F_SAFE | F_IDEMP | F_HTTP10 | F_UPG | F_CUTS)

/* The request head still in the client's `in` (a retry is possible): its
 * length, 0 once the first body byte or the response made a retry unsafe. */
#define HELD(c) ((c)->head_len)

/* Bytes queued to the client for this request, for the access log. */
#if RP_ENABLE_ACCESS_LOG
#define SENT(c, n) ((c)->sent += (uint64_t)(n))
#else
#define SENT(c, n) ((void)(c), (void)(n))
#endif

/* Why a response stopped after its head went out, for the access log's
 * `cut`: kept in the flags (F_CUTS) once a head went out (before, the
 * status tells).  No flag, and no reason, without the access log. */
enum { CUT_NONE, CUT_DEV_FRAMING, CUT_DEV_CLOSED, CUT_DEV_TIMEOUT, CUT_CLI_TIMEOUT, CUT_CLI_FRAMING,
       CUT_SHUTDOWN };
#if RP_ENABLE_ACCESS_LOG
#define CUT(c, why) \
    ((c)->flags & F_RESP_HEAD ? (void)((c)->flags = ((c)->flags & ~F_CUTS) | F_CUT(why)) : (void)0)
#else
#define CUT(c, why) ((void)(c))
#endif

/* Every state change goes through conn_state; with RP_ENABLE_ASSERT the
 * change is checked against the table in 09-conn.c, and conn_check checks
 * a connection's invariants whenever a turn leaves it at rest. */
#if RP_ENABLE_ASSERT
RP_INTERNAL void conn_state(rp_conn *c, int s);
RP_INTERNAL void conn_check(const rp_proxy *p, const rp_conn *c);
#else
#define conn_state(c, s) ((void)((c)->state = (uint8_t)(s)))
#define conn_check(p, c) ((void)0)
#endif
RP_INTERNAL int recv_done(rp_proxy *p, rp_conn *c, long n, size_t want);
RP_INTERNAL int send_done(rp_proxy *p, rp_conn *c, long n, size_t len);
RP_INTERNAL void timer_hint(rp_proxy *p, uint64_t t);
RP_INTERNAL void conn_rearm(rp_proxy *p, rp_conn *c);
RP_INTERNAL void conn_settle(rp_proxy *p, rp_conn *c);
RP_INTERNAL rp_conn ** free_list(rp_proxy *p, int kind);
RP_INTERNAL rp_conn * conn_alloc(rp_proxy *p, int kind);
RP_INTERNAL void conn_free(rp_proxy *p, rp_conn *c);
RP_INTERNAL int conn_read(rp_proxy *p, rp_conn *c);
RP_INTERNAL int conn_write(rp_proxy *p, rp_conn *c);
RP_INTERNAL void closing_begin(rp_proxy *p, rp_conn *c);
RP_INTERNAL void conn_event(rp_proxy *p, rp_conn *c, unsigned ev);
RP_INTERNAL void conn_timeout(rp_proxy *p, rp_conn *x);

/* ==== [10] Request head ==== */
#define MAX_CONN_TOKENS 16

RP_INTERNAL size_t conn_tokens(const rp_http_msg *m, rp_str *tok);
RP_INTERNAL int field_passes(const rp_http_msg *m, size_t i, const rp_str *tok, size_t ntok);
RP_INTERNAL void w_joined(wbuf *w, const char *name, size_t n, const rp_http_msg *m, int id, rp_str extra);
#if RP_ENABLE_CACHE || RP_ENABLE_WALL_CLOCK
RP_INTERNAL RP_NOINLINE int has_field(const rp_http_msg *m, int id);
#endif
RP_INTERNAL rp_str header_value(const rp_http_msg *m, int id);
RP_INTERNAL RP_NOINLINE rp_str via_value(const rp_proxy *p, int minor, char *buf);
RP_INTERNAL int request_head_write(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, const rp_str *cond);

/* ==== [25] Path mapping (declared early: [11] [12] take its context) ==== */
#if RP_ENABLE_PATH_MAP
/* What a response's URLs are mapped with (hmap_of). */
typedef struct {
    rp_str cpath, dpath; /* the route's path= (client) and rewrite= (device) prefixes */
    rp_str scheme;       /* the client's: "http" or "https" */
    rp_str chost;        /* the client's Host; empty: not known */
    rp_str dhost;        /* the Host the device was sent */
    rp_str daddr;        /* the device's "ip:port" */
} hmap;
#define HMAP_ARG(x) , x
RP_INTERNAL void w_target_mapped(wbuf *w, const rp_route *r, rp_str target);
RP_INTERNAL int path_climbs(rp_str target);
RP_INTERNAL const hmap *hmap_of(const rp_proxy *p, const rp_conn *c, const rp_conn *d, hmap *hm, char *buf);
RP_INTERNAL int map_url(wbuf *w, rp_str v, const hmap *hm);
RP_INTERNAL int map_field(wbuf *w, const rp_header *h, const hmap *hm);
RP_INTERNAL void mhost_keep(rp_conn *c, rp_str host);
#else
#define HMAP_ARG(x)
#endif

/* ==== [26] Header rules ==== */
#if RP_ENABLE_HEADER_RULES
RP_INTERNAL void w_hrules(const rp_proxy *p, const rp_conn *c, wbuf *w, int resp);
#endif

/* ==== [11] Response head ==== */
RP_INTERNAL RP_NOINLINE const char * reason_for(int status);
RP_INTERNAL int status_for(int err);
RP_INTERNAL void w_status_line(wbuf *w, int status, rp_str reason);
/* keep: no Connection: close (the connection goes on after it) */
RP_INTERNAL void error_write(rp_proxy *p, rp_conn *c, int status, int keep);
RP_INTERNAL void w_header(wbuf *w, const rp_header *h);
RP_INTERNAL void w_head_fields_(wbuf *w, const rp_http_msg *m, int stored HMAP_ARG(const hmap *hm));
/* hm: the path mapping (NULL: none); dropped unread without RP_ENABLE_PATH_MAP */
#define w_head_fields(w, m, stored, hm) w_head_fields_(w, m, stored HMAP_ARG(hm))
RP_INTERNAL void w_via_date(rp_proxy *p, wbuf *w, const rp_http_msg *m);
RP_INTERNAL int head_end(rp_conn *c, wbuf *w, int fate);
RP_INTERNAL RP_NOINLINE int response_head_write(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m);

/* ==== [12] Cache ==== */
#if RP_ENABLE_CACHE
/* What an exchange on a cache route did (rp_conn.cflags). */
#define CF_ON 1u        /* route has cache=on */
#define CF_LOOKUP 2u    /* method and request allow using the cache */
#define CF_NOSTORE 4u   /* request no-store: store nothing */
#define CF_REVAL 8u     /* forwarded to revalidate a stale entry */
#define CF_REQNC 16u    /* forwarded because the request said no-cache */
#define CF_STORED 32u   /* the response is being stored */
#define CF_COLLAPSED 64u /* waited on another request's fill */
#define CF_AUTH 128u    /* request has Authorization */
#define CF_SIE 256u     /* served stale because the device failed */
#define CF_HIT 512u     /* answered from the cache */
#define CF_HEADWAIT 1024u /* hit head waits for room in `out` */
#define CACHE_NBLK (RP_CACHE_BYTES / RP_CACHE_BLOCK)

enum { CE_FREE, CE_FILLING, CE_READY };
#define CE_NO_CACHE 1u  /* response no-cache: revalidate before each use */
#define CE_NO_STALE 2u  /* must-revalidate, proxy-revalidate, s-maxage */
#define CE_DOOMED 4u    /* replaced or invalidated while pinned */
#define CE_VOID 8u      /* a fill its URI was invalidated during: not kept */

/* ---- Cache-Control (RFC 9111 §5.2) ---- */

#define CC_NO_STORE 1u
#define CC_NO_CACHE 2u
#define CC_PRIVATE 4u
#define CC_PUBLIC 8u
#define CC_MUST_REVAL 16u
#define CC_PROXY_REVAL 32u
#define CC_ONLY_IF_CACHED 64u
#define CC_MAX_STALE_ANY 128u
#define CC_BAD 256u      /* a freshness directive was malformed or repeated */

typedef struct {
    unsigned f;
    int64_t max_age, s_maxage, max_stale, min_fresh, sie; /* -1: absent */
} cc_t;

#define CC_SECONDS_MAX 2147483648u /* §1.2.2: larger values mean this */

typedef struct rp_cache_entry centry;
typedef struct rp_chain chain;

#define FNV0 2166136261u
#define VARY_MAX_NAMES 8 /* fields one Vary may name */
#define VARY_BYTES 1024  /* their request values, stored with the entry */

enum { USE_FRESH, USE_STALE, USE_REVALIDATE };

#if RP_ENABLE_CACHE
RP_INTERNAL void cc_of(const rp_http_msg *m, cc_t *cc);
RP_INTERNAL RP_NOINLINE int64_t entry_age(const rp_proxy *p, const struct rp_cache_entry *e);
RP_INTERNAL void chain_get(rp_proxy *p, const chain *ch, size_t off, char *dst, size_t n);
RP_INTERNAL RP_NOINLINE uint32_t fnv(uint32_t h, const char *s, size_t n, int ci);
RP_INTERNAL uint32_t key_hash(uint32_t host_hash, rp_str target);
RP_INTERNAL RP_NOINLINE int entry_use(const rp_proxy *p, const centry *e, const cc_t *rq, unsigned *cf, int64_t *ttl);
RP_INTERNAL unsigned cache_find(rp_proxy *p, uint32_t key, rp_str host, const rp_http_msg *m, unsigned *filling, unsigned *variants);
RP_INTERNAL void entry_pin(rp_proxy *p, rp_conn *c, unsigned i);
RP_INTERNAL void entry_unpin(rp_proxy *p, rp_conn *c);
RP_INTERNAL void fill_begin(rp_proxy *p, rp_conn *c, rp_str host, rp_str target);
RP_INTERNAL void cache_invalidate(rp_proxy *p, uint32_t key);
RP_INTERNAL void fill_start(rp_proxy *p, rp_conn *c, const rp_http_msg *req, const rp_http_msg *m);
RP_INTERNAL void fill_append(rp_proxy *p, rp_conn *c, const char *s, size_t n);
RP_INTERNAL void fill_commit(rp_proxy *p, rp_conn *c);
RP_INTERNAL void cache_release(rp_proxy *p, rp_conn *c);
RP_INTERNAL int hit_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m, int64_t ttl);
RP_INTERNAL void entry_refresh(rp_proxy *p, rp_conn *c, const rp_http_msg *r304);
RP_INTERNAL RP_NOINLINE void hit_advance(rp_proxy *p, rp_conn *c, size_t n);
RP_INTERNAL long hit_send(rp_proxy *p, rp_conn *c, size_t *len);
RP_INTERNAL void w_cache_status(wbuf *w, const rp_conn *c, int status, int64_t ttl);
#if RP_ENABLE_ACCESS_LOG
RP_INTERNAL const char *cache_word(unsigned cflags);
#endif
#endif

/* and the parts the white-box tests (test_cache, fuzz_cache) check alone */
RP_INTERNAL void cc_parse(cc_t *cc, rp_str s);
RP_INTERNAL int heuristic_status(int s);
RP_INTERNAL int64_t cache_lifetime(const rp_http_msg *m, const cc_t *cc, int64_t date, int heuristic);
RP_INTERNAL int64_t initial_age(const rp_http_msg *m, int64_t date, int64_t now_wall, uint64_t req_ms, uint64_t resp_ms);
RP_INTERNAL void lru_unlink(struct rp_cache *k, unsigned i);
RP_INTERNAL RP_NOINLINE void lru_front(struct rp_cache *k, unsigned i);
RP_INTERNAL int evict_one(rp_proxy *p);
RP_INTERNAL int chain_put(rp_proxy *p, chain *ch, const void *src, size_t n);
RP_INTERNAL long vary_key(const rp_http_msg *resp, const rp_http_msg *req, char *out);
RP_INTERNAL int vary_match(rp_proxy *p, const centry *e, const rp_http_msg *req);
RP_INTERNAL void fill_abort(rp_proxy *p, rp_conn *c);
RP_INTERNAL int entry_meta(rp_proxy *p, centry *e, const rp_http_msg *m, const rp_conn *c);
#else
#define w_cache_status(w, c, status, ttl) ((void)0)
#define revalidators(p, c, buf, cond) ((void)(buf), (void)(cond), (const rp_str *)NULL)
#endif

/* ==== [13] The exchange ==== */
RP_INTERNAL void access_log(rp_proxy *p, rp_conn *c);
RP_INTERNAL void device_release(rp_proxy *p, rp_conn *d);
RP_INTERNAL int exchange_fail(rp_proxy *p, rp_conn *c, int status);
/* reply_error(p, c, status, "rule"): the text reaches the log only with
 * RP_ENABLE_REASONS (WHY_ARG) */
RP_INTERNAL int reply_error_(rp_proxy *p, rp_conn *c, int status WHY_ARG(const char *why));
/* The count and the log line of a refusal (reply_error's, and [22]'s that
 * keep the connection). */
RP_INTERNAL void refusal_noted_(rp_proxy *p, rp_conn *c, int status WHY_ARG(const char *why));
#define reply_error(p, c, status, why) reply_error_(p, c, status WHY_ARG(why))
RP_INTERNAL int dispatch(rp_proxy *p, rp_conn *c, const rp_http_msg *m);
#if RP_ENABLE_LIMITS
RP_INTERNAL void queue_unlink(rp_proxy *p, rp_conn *c);
RP_INTERNAL void queue_kick(rp_proxy *p);
RP_INTERNAL void queue_resume(rp_proxy *p, rp_conn *c);
RP_INTERNAL int queue_abandon(rp_proxy *p, rp_conn *c);
#else
#define queue_kick(p) ((void)0)
#endif
RP_INTERNAL int device_failed(rp_proxy *p, rp_conn *c, rp_conn *d, int err, int connecting);
RP_INTERNAL RP_NOINLINE void request_reset(rp_conn *c);
RP_INTERNAL int exchange_end(rp_proxy *p, rp_conn *c);
/* the steps the dispatcher ([9] client_step) calls, by state */
RP_INTERNAL int client_head(rp_proxy *p, rp_conn *c);   /* CS_HEAD */
RP_INTERNAL int exchange_step(rp_proxy *p, rp_conn *c); /* CS_FWD */
RP_INTERNAL int tunnel_step(rp_proxy *p, rp_conn *c);   /* CS_TUNNEL */

/* ==== [14] Bodies ==== */
RP_INTERNAL void head_drop(rp_conn *c);
RP_INTERNAL int body_valid(const rp_conn *d, size_t off);
RP_INTERNAL int body_broken(rp_proxy *p, rp_conn *c, rp_conn *d);
RP_INTERNAL int request_body(rp_proxy *p, rp_conn *c, rp_conn *d);
RP_INTERNAL int response_body(rp_proxy *p, rp_conn *c, rp_conn *d);

/* ==== [15] The cache in the exchange ==== */
#if RP_ENABLE_CACHE
RP_INTERNAL int stale_rescue(rp_proxy *p, rp_conn *c, int status);
RP_INTERNAL RP_NOINLINE const rp_str * revalidators(rp_proxy *p, const rp_conn *c, char *buf, rp_str *cond);
RP_INTERNAL int cache_request(rp_proxy *p, rp_conn *c, const rp_http_msg *m);
RP_INTERNAL void cache_resume(rp_proxy *p, rp_conn *c);
RP_INTERNAL RP_NOINLINE int cache_response(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n);
RP_INTERNAL int hit_step(rp_proxy *p, rp_conn *c);
#endif

/* ==== [16] Health probes ==== */
RP_INTERNAL void probe_finish(rp_proxy *p, rp_conn *d, int ok);
RP_INTERNAL void probe_event(rp_proxy *p, rp_conn *d);
RP_INTERNAL void health_run(rp_proxy *p);

/* ==== [17] The status page ==== */
#if RP_ENABLE_STATUS
RP_INTERNAL int local_step(rp_proxy *p, rp_conn *c);
RP_INTERNAL int status_begin(rp_proxy *p, rp_conn *c, const rp_http_msg *m);
#if RP_ENABLE_RUNTIME
/* target is the status path + "/device" (runtime control) */
RP_INTERNAL int status_control_path(const rp_proxy *p, rp_str target);
#define STATUS_CONTROL_PATH(p, t) status_control_path(p, t)
#else
#define STATUS_CONTROL_PATH(p, t) 0
#endif
#endif

/* ==== [18] Event loop ==== */
RP_INTERNAL void on_event(rp_proxy *p, void *ud, unsigned ev);
RP_INTERNAL void timers_run(rp_proxy *p);

/* ==== Issue 14: [2] networks, [20] authentication, [21] PROXY protocol ====
 * RP_UNWIRED: a function no other section calls yet (the config parser
 * and the connection code take them up); it keeps rproxy.c, where these
 * are static, free of -Wunused-function until they do.  Drop it from a
 * prototype once the function is called. */
#ifdef __GNUC__
#define RP_UNWIRED __attribute__((unused))
#else
#define RP_UNWIRED
#endif

/* [2] 1 when a is inside net/bits (same family, the first `bits` bits
 * equal; bits 0..32 for IPv4, 0..128 for IPv6), else 0.  Used by the status
 * page's allow=; the route ACLs and proxy_from= are to use it too (unwired
 * while only they would call it: RP_ENABLE_STATUS 0). */
#if RP_ENABLE_STATUS || RP_ENABLE_PROXY_PROTOCOL || RP_ENABLE_ACL
RP_INTERNAL int addr_in_net(const rp_addr *a, const rp_addr *net, int bits);
RP_INTERNAL int addr_in_nets(const rp_addr *a, const rp_net *nets, int n); /* one of them */
#endif

#if RP_ENABLE_AUTH
/* [20] SHA-crypt ($5$ / $6$, Drepper's specification).  A stored hash is
 * "$5$[rounds=N$]SALT$HASH" (43 chars of HASH) or "$6$..." (86): what
 * `openssl passwd -5/-6` and `mkpasswd -m sha-256/sha-512` print. */
/* RP_OK when h is a $5$/$6$ hash this code verifies; RP_ENOTIMPL when it is
 * another format (plain text, $1$, $2b$, $y$, ...); RP_EINVAL when it is a
 * $5$/$6$ one that is malformed.  *why (may be NULL) gets a short
 * reason for both errors. */
#if RP_ENABLE_CONFIG_TEXT
RP_INTERNAL int sha_crypt_check(rp_str h, const char **why);
#endif
/* 1 when pass hashes to h, 0 when not, RP_EINVAL/RP_ENOTIMPL when h is
 * not a valid $5$/$6$ hash (sha_crypt_check).  The digest is compared in
 * constant time; the time taken depends on h's rounds and pass's length
 * only.  A password over RP_AUTH_CRED_MAX bytes never matches (0). */
RP_INTERNAL RP_UNWIRED int sha_crypt_verify(rp_str pass, rp_str h);
/* crypt(3) for $5$/$6$: setting is "$5$[rounds=N$]SALT[$...]", rounds
 * clamped to 1000..999999999 and the salt cut at 16 as the specification
 * says; writes the NUL-ended hash string to out and returns its length, or
 * RP_EINVAL (bad setting, rounds above RP_AUTH_MAX_ROUNDS, cap < 124). */
RP_INTERNAL RP_UNWIRED long sha_crypt(rp_str pass, rp_str setting, char *out, size_t cap);

/* [20] An Authorization field value (OWS already trimmed, as the HTTP
 * parser leaves it): "Basic" (any case), 1*SP, strict base64 (RFC 4648,
 * padded, canonical) decoded into buf[0..cap), split at the first colon
 * into *user and *pass (views into buf).  RP_OK; RP_ENOTIMPL for another
 * scheme; RP_ETOOLONG when the decoded credentials exceed cap; RP_EINVAL
 * for the rest: bad base64, no colon, an empty user, a CTL byte (NUL..US,
 * DEL) in either part.  Any error means 401, never a pass. */
RP_INTERNAL int basic_credentials(rp_str value, char *buf, size_t cap, rp_str *user,
                                             rp_str *pass);

/* [20] Parse a users file (text[0..n), from a blob) into u: lines
 * "user:hash", `#` comment lines and blank lines, CRLF or LF.  RP_OK, or
 * RP_ECONFIG with err->line (1-based line of the file), err->col and
 * err->msg saying what to change; the caller prefixes the file name.
 * u is cleared first and holds nothing usable after an error. */
#if RP_ENABLE_CONFIG_TEXT
RP_INTERNAL int users_parse(rp_users *u, const char *text, size_t n, rp_cfg_error *err);
#endif
/* 1 when user is in u and pass matches its hash, else 0.  An unknown user
 * costs a hash too (u's first one), so timing does not tell which users
 * exist. */
RP_INTERNAL int users_check(const rp_users *u, rp_str user, rp_str pass);
#endif

#if RP_ENABLE_PROXY_PROTOCOL
/* [21] The PROXY protocol header at the start of a connection, b[0..n)
 * being the bytes received so far.  Returns the header's length (> 0: the
 * bytes to drop before the HTTP request) with *src filled (family 4 or 6,
 * ip, port; an IPv4-mapped IPv6 source becomes family 4), or family 0 for
 * a LOCAL (v2) / UNKNOWN (v1) / AF_UNIX or UNSPEC header: then keep the
 * connection's own peer address.  RP_EAGAIN while the bytes so far are a
 * valid beginning of a header: call again with more; RP_EINVAL when
 * malformed (wrong signature, v1 without CRLF in 107 bytes, v2 longer than
 * RP_PROXY_V2_MAX, bad fields; an IPv6 source with RP_ENABLE_IPV6 0):
 * close.  *src is family 0 unless the result is > 0. */
RP_INTERNAL long proxy_header_parse(const uint8_t *b, size_t n, rp_addr *src);
RP_INTERNAL size_t proxy_header_want(const uint8_t *b, size_t have);
#endif

/* [22] The front door (client limits, route ACLs, Basic auth, PROXY). */
/* A client's address is known (accept, or its PROXY header): counted for
 * client_limit conns=; 1 when refused (c is freed), else 0. */
RP_INTERNAL int client_admit(rp_proxy *p, rp_conn *c);
#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
RP_INTERNAL void client_gone(rp_proxy *p, rp_conn *c); /* conn_free of a client */
#define CLIENT_GONE(p, c) client_gone(p, c)
#else
#define CLIENT_GONE(p, c) ((void)0)
#endif
#if RP_ENABLE_CLIENT_LIMIT
RP_INTERNAL int client_rate(rp_proxy *p, rp_conn *c); /* 0, or the 429 given */
#endif
#if RP_ENABLE_ACL || RP_ENABLE_AUTH
RP_INTERNAL int route_guard(rp_proxy *p, rp_conn *c, const rp_http_msg *m); /* 0, or refused */
#if RP_ENABLE_ACL && RP_ENABLE_AUTH
#define ROUTE_GUARDED(r) ((r)->nallow | (r)->auth)
#elif RP_ENABLE_ACL
#define ROUTE_GUARDED(r) ((r)->nallow)
#else
#define ROUTE_GUARDED(r) ((r)->auth)
#endif
#endif
#if RP_ENABLE_AUTH
RP_INTERNAL int auth_gate(rp_proxy *p, rp_conn *c, const rp_http_msg *m, int list);
RP_INTERNAL void w_auth_challenge(const rp_proxy *p, const rp_conn *c, wbuf *w);
#endif
#if RP_ENABLE_PROXY_PROTOCOL
RP_INTERNAL int proxy_accept(rp_proxy *p, rp_conn *c); /* 0: refused and freed */
RP_INTERNAL int proxy_read(rp_proxy *p, rp_conn *c);
RP_INTERNAL int proxy_step(rp_proxy *p, rp_conn *c);
/* close c (no reply: the peer is a proxy), logged with why, counted */
RP_INTERNAL int proxy_refuse(rp_proxy *p, rp_conn *c, const char *why);
#endif

/* [23] Shared live streams (route share=on). */
#if RP_ENABLE_SHARE
enum { SS_FREE, SS_PENDING, SS_LIVE, SS_DONE, SS_FAILED }; /* rp_stream.state */
#define SPOS_HEAD UINT64_MAX        /* viewer waits for the stream's head */
#define SPOS_SYNC (UINT64_MAX - 1)  /* viewer waits for a part boundary */
/* exchange_begin: 1 when c joined a stream (CS_STREAM), 0 to go on (it
 * may now be the one opening a stream: c->stream set). */
RP_INTERNAL int stream_request(rp_proxy *p, rp_conn *c, const rp_http_msg *m);
/* response_begin of an opener: 1 when the response became a shared stream
 * (c a viewer, d feeding it), 0 to go on unshared. */
RP_INTERNAL int share_response(rp_proxy *p, rp_conn *c, rp_conn *d, const rp_http_msg *m, size_t n);
RP_INTERNAL int stream_step(rp_proxy *p, rp_conn *c);        /* CS_STREAM */
RP_INTERNAL void stream_event(rp_proxy *p, rp_conn *d);      /* DS_STREAM report */
RP_INTERNAL void stream_timeout(rp_proxy *p, rp_conn *d, int kind);
RP_INTERNAL void stream_leave(rp_proxy *p, rp_conn *c);      /* c stops viewing/opening */
RP_INTERNAL void client_service(rp_proxy *p, rp_conn *c);    /* [9] a client's turn */
/* "\n--BOUNDARY" from a Content-Type's boundary= (token or quoted, 1-70
 * characters) into out[0..cap >= 74); its length, or 0: none or malformed. */
RP_INTERNAL int multipart_boundary(rp_str content_type, char *out, size_t cap);
#define STREAM_LEAVE(p, c) ((c)->stream ? stream_leave(p, c) : (void)0)
#else
#define STREAM_LEAVE(p, c) ((void)0)
#endif

RP_INTERNAL void cfg_defaults(rp_config *c); /* [19] the RP_* defaults */

/* [24] Devices by name (RP_ENABLE_DNS): lookups through the port. */
#if RP_ENABLE_DNS
#define HAS_ADDR(d) ((d)->addr.family != 0) /* a named device before its first answer: no */
RP_INTERNAL void dns_run(rp_proxy *p);     /* start the lookups that are due (timers) */
RP_INTERNAL void dns_collect(rp_proxy *p); /* take the answers that came (each turn) */
RP_INTERNAL void dns_soon(rp_proxy *p, rp_device *d); /* d failed: look its name up again soon */
RP_INTERNAL void w_dev_id(wbuf *w, const rp_device *d);   /* NAME:PORT, or IP:PORT */
RP_INTERNAL void w_dev_addr(wbuf *w, const rp_device *d); /* IP:PORT, "" before an answer */
#define DNS_SOON(p, d) dns_soon(p, d)
#else
#define HAS_ADDR(d) 1
#define DNS_SOON(p, d) ((void)0)
#define w_dev_id(w, d) w_addr(w, &(d)->addr)
#define w_dev_addr(w, d) w_addr(w, &(d)->addr)
#endif

/* [27] Reload (RP_ENABLE_RELOAD): two configuration slots. */
#if RP_ENABLE_RELOAD
RP_INTERNAL rp_device *dev_at(const rp_proxy *p, int slot, int i);
RP_INTERNAL int reload_begin(rp_proxy *p);       /* parse/load into the spare slot */
RP_INTERNAL void reload_end(rp_proxy *p, int rc);
/* c's next request takes the live slot (its listener's twin); 0: its
 * listener is gone, it stays on its slot for this last request. */
RP_INTERNAL int client_to_live(rp_proxy *p, rp_conn *c);
/* p->idle's index for device i of slot k (idle connections are the live
 * slot's): i itself, or its twin's; < 0: the device is gone. */
#define IDLE_INDEX(p, k, i) ((k) == (p)->live ? (int)(i) : (p)->dfwd[i] - 1)
#else
#define IDLE_INDEX(p, k, i) ((int)(i))
#endif
#define IDLE_AT(p, d) IDLE_INDEX(p, (d)->cfs, (d)->device)

#endif /* RP_INT_H */

/*
 * rp_config.h -- rproxy knobs for the mps2-an386 gateway (Cortex-M4).
 *
 * SPDX-License-Identifier: MIT
 *
 * 8 clients and 8 device connections with 2 KiB buffers, of which up to 2
 * clients at once over TLS (BearSSL): the whole rp_proxy is 147,704 B with
 * the 16 KiB cache arena
 * (printed at boot and by `make size-firmware`).  gateway.conf is parsed on
 * the build host (scripts/cfgimage.c): no parser in the firmware.
 *
 * RAM per TLS connection: BearSSL's 16,709-byte input buffer (a full record:
 * a client may send one) + RP_TLS_OBUF_SIZE output buffer (smaller records
 * out) + ~7.4 KB server/X.509 contexts, on top of the plain connection.
 */
#ifndef RP_CONFIG_MPS2_H
#define RP_CONFIG_MPS2_H

#define RP_MAX_CONNS      8     /* clients at once */
#define RP_MAX_UPSTREAM   8     /* device connections, busy + pooled */
#define RP_BUF_SIZE       2048  /* bytes per direction per connection */
#define RP_MAX_HEAD       2048  /* largest request/response head */
#define RP_MAX_URI        1024  /* longest request target */
#define RP_MAX_HEADERS    32    /* fields per head (20 B each on the stack) */
#define RP_MAX_LISTENERS  2
#define RP_MAX_POOLS      4
#define RP_MAX_DEVICES    8
#define RP_MAX_ROUTES     8
#define RP_CFG_STR_BYTES  512
#ifndef RP_ENABLE_CONFIG_TEXT   /* (1 in the build host's cfgimage) */
#define RP_ENABLE_CONFIG_TEXT 0 /* gateway.conf parsed at build time: -9 KB */
#endif
#define RP_ENABLE_STATUS  0     /* no status page on the board: ~2.5 KB of flash */
#define RP_ENABLE_REDIRECT 0   /* no redirect_https listener */
#define RP_ENABLE_ACCESS_LOG 0 /* no access callback: -112 B RAM per slot */
#define RP_ENABLE_REASONS 0    /* refusals logged by status only: -1.5 KB of texts */
#define RP_ENABLE_WALL_CLOCK 0 /* no RTC: no Date added (RFC 9110 6.6.1) */
#define RP_ENABLE_IPV6    0     /* lwIP is built IPv4-only (LWIP_IPV6 0) */
#define RP_COUNTER uint32_t   /* counters wrap at 4 G: half the code per count */
#define RP_ENABLE_AUTH    0     /* no Basic auth yet (issue 14: measure, then decide) */
#define RP_ENABLE_PROXY_PROTOCOL 0 /* no PROXY protocol header parser yet (issue 14) */
#define RP_ENABLE_ACL     0     /* no route allow= (issue 14) */
#define RP_ENABLE_CLIENT_LIMIT 0 /* no client_limit (issue 14) */
#define RP_ENABLE_SHARE   0     /* no stream sharing (issue 16) */
#define RP_ENABLE_DNS     0     /* devices by address only: no resolver calls (issue 17) */
#ifndef RP_ENABLE_RELOAD         /* (1 in `make firmware-ops`) */
#define RP_ENABLE_RELOAD  0     /* no second configuration slot (issue 17) */
#endif
#define RP_ENABLE_CACHE   1     /* sensors answer the same reads again and again */
#define RP_CACHE_BYTES    16384 /* arena: 32 blocks of 512 B */
#define RP_CACHE_BLOCK    512
#define RP_CACHE_ENTRIES  16
#define RP_CACHE_VARIANTS 2
#define RP_CACHE_META     2048  /* key + Vary + validators + head per entry */
#define RP_ENABLE_CACHE_TTL 0  /* no route cache_ttl= (-78 B) */
#ifndef RP_ENABLE_LIMITS         /* (1 in `make firmware-protect`) */
#define RP_ENABLE_LIMITS  0     /* no max_conns / queue (issue 14): +837 B */
#endif
#define RP_ENABLE_PATH_MAP 0   /* no route rewrite= / pool host= (issue 15) */
#define RP_ENABLE_HEADER_RULES 0 /* no `headers` rule sets (issue 15) */
#define RP_ENABLE_STREAM_TIMEOUTS 0 /* no route device_timeout= / stream_idle=, timeout tunnel= (issue 15) */
#define RP_ENABLE_ERROR_PAGES 0 /* no error_page (issue 15) */
/* The loop's turn (issue 19): main.c times each rp_poll itself (LAN9118 counter, us)
 * and prints the longest; the core's record and the bounds cost flash
 * (README knob table).  #ifndef: a measurement build sets them with FW_EXTRA. */
#ifndef RP_ENABLE_TURN_STATS
#define RP_ENABLE_TURN_STATS 0  /* no core longest-turn record */
#endif
#ifndef RP_TURN_MAX_EVENTS
#define RP_TURN_MAX_EVENTS 4    /* at most 4 reports a turn (+28 B; reports kept in rp_proxy) */
#endif
#ifndef RP_TURN_MAX_BYTES
#define RP_TURN_MAX_BYTES 0     /* no bound on bytes per turn */
#endif

/* TLS termination: one EC P-256 certificate (gw.crt/gw.key in flash). */
#define RP_ENABLE_TLS     1
#define RP_ENABLE_TLS_DEVICE      0  /* no TLS toward devices: -13.5 KB BearSSL */
#define RP_ENABLE_TLS_CLIENT_AUTH 0  /* no client certificates: -6 KB X.509 */
#define RP_ENABLE_TLS_COMPAT      0  /* TLS 1.2 AEAD only: -5 KB CBC/MD5/TLS 1.0 */
#define RP_ENABLE_TLS_ALERTS      0  /* no TLS alerts of rproxy's own: a bare close (-147 B) */
#define RP_MAX_TLS_CONNS  2     /* TLS clients at once (~28 KB each) */
#define RP_TLS_OBUF_SIZE  4096  /* records out of at most ~4 KB of plaintext */
#define RP_TLS_SESSION_CACHE_BYTES 1024 /* ~10 resumable sessions */
#define RP_TLS_STORE_BYTES 2048 /* DER chain + private key */
#define RP_TLS_MAX_CERTS  1
#define RP_TLS_MAX_CHAIN  2
#define RP_TLS_MAX_CAS    1

/* The "plus" firmware (make firmware-plus, tests/qemu/plus.sh): the same
 * board with issue 14's and 16's features on -- device max_conns + the pool
 * queue, Basic auth, one shared stream -- sized for its 256 KB of RAM.  Its
 * rproxy.o is larger than the default's 24 KiB budget (board README). */
#ifdef RP_BOARD_PLUS
#undef RP_ENABLE_LIMITS
#define RP_ENABLE_LIMITS  1
#undef RP_ENABLE_AUTH
#define RP_ENABLE_AUTH    1     /* SHA-crypt with BearSSL's SHA-2 (linked for TLS anyway) */
#define RP_MAX_USERS      4
#define RP_AUTH_STR_BYTES 512
#define RP_MAX_USER_LISTS 1
#define RP_AUTH_CACHE     4
#define RP_AUTH_MAX_ROUNDS 5000
#define RP_CLIENT_TABLE   8     /* the failed-login lock's addresses */
#undef RP_ENABLE_SHARE
#define RP_ENABLE_SHARE   1
#define RP_MAX_STREAMS    1
#define RP_STREAM_RING    8192  /* two 4 KB camera frames */
#define RP_STREAM_HEAD    512
#define RP_STREAM_SYNCS   8
#undef RP_ENABLE_PATH_MAP
#define RP_ENABLE_PATH_MAP 1    /* issue 15: a device UI under /sensor/ */
#define RP_MAP_HOST_MAX   32
#undef RP_ENABLE_HEADER_RULES
#define RP_ENABLE_HEADER_RULES 1 /* issue 15: one response header set */
#define RP_MAX_HEADER_RULES 4
#define RP_MAX_HEADER_SETS 1
#endif

/* The "ops" firmware (make firmware-ops, tests/qemu/ops.sh): issue 17 on the
 * board -- devices by DNS name (ops.conf), looked up through lwIP's
 * resolver (lwipopts.h: LWIP_UDP + LWIP_DNS for this variant only) from a
 * name server main.c sets; reload without a reboot (ops2.conf, a second
 * image, applied when 'r' arrives on the UART).  Its rproxy.o is larger than the default's 24 KiB
 * budget (board README). */
#ifndef RP_BOARD_OPS
#define RP_BOARD_OPS 0
#endif
#if RP_BOARD_OPS
#undef RP_ENABLE_DNS
#define RP_ENABLE_DNS     1
#undef RP_ENABLE_STATUS
#define RP_ENABLE_STATUS  1     /* each named device's name, address and lookups */
#undef RP_ENABLE_RELOAD
#define RP_ENABLE_RELOAD  1     /* a second config image applied on a UART command (main.c) */
#undef RP_ENABLE_CACHE
#define RP_ENABLE_CACHE   0     /* (no route of ops.conf caches: its flash keeps 128 KiB) */
#endif

#endif

/*
 * sockets.h -- board side of the sockets port (port/sockets.c).
 *
 * SPDX-License-Identifier: MIT
 *
 * The port contract itself is declared in rproxy.h.  port/sockets.c runs
 * rproxy on a BSD-style sockets API with poll(): lwIP's sockets
 * (LWIP_SOCKET=1, NO_SYS=0: FreeRTOS+lwIP, ESP-IDF), Zephyr's zsock_*, or a
 * POSIX system.  rproxy runs in one task that owns every rproxy call:
 *
 *     rp_sockets_init(&hooks, blobs, nblobs);
 *     ...stack up (tcpip_init / netif), rp_init/rp_config_parse/rp_start...
 *     for (;;)
 *         rp_poll(&p, 1000);        // sleeps in poll() until ready or a timer
 *
 * The API is chosen at compile time (RP_SK_API, below); each call the port
 * makes is a macro RP_SK_<NAME> that a build may also define itself (to
 * wrap it, say).  Sockets are indexes into a static table of
 * RP_SK_MAX_SOCKS slots; nothing here allocates.  See port/README.md.
 */
#ifndef RP_PORT_SOCKETS_H
#define RP_PORT_SOCKETS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Which sockets API: RP_SK_LWIP (lwip_* names; the default),
 *  RP_SK_ZEPHYR (zsock_* names) or RP_SK_POSIX (the host's own). */
#define RP_SK_LWIP 1
#define RP_SK_ZEPHYR 2
#define RP_SK_POSIX 3
#ifndef RP_SK_API
#define RP_SK_API RP_SK_LWIP
#endif

/** Socket slots: listeners, client and device connections.  Cost: ~16 B
 *  each, plus a pollfd (8 B) per slot on the loop task's stack.  The stack's
 *  own limit (lwIP: MEMP_NUM_NETCONN) may be lower: then its refusals are
 *  what rproxy meets, counted below. */
#ifndef RP_SK_MAX_SOCKS
#define RP_SK_MAX_SOCKS (RP_MAX_CONNS + RP_MAX_UPSTREAM + RP_MAX_LISTENERS)
#endif

/** After ENOBUFS/ENOMEM on a send, the socket's write readiness is left
 *  out of poll for this long (ms), so a stack out of buffers is retried,
 *  not spun on. */
#ifndef RP_SK_BACKOFF_MS
#define RP_SK_BACKOFF_MS 5
#endif

/** What the board supplies.  Any hook may be NULL. */
typedef struct {
    /** One finished log line (no newline) at an RP_LOG_* level. */
    void (*log)(int level, const char *line);
    /** n strong random bytes (the TRNG): RP_OK or RP_EIO.  NULL:
     *  rp_port_random fails (and TLS with it). */
    int (*random)(void *buf, size_t n);
} rp_sockets_hooks;

/** A named blob compiled into flash (certificate, key). */
typedef struct {
    const char *name;
    const void *data;
    size_t len;
} rp_sockets_blob;

/** Port counters, for the board's status output. */
typedef struct {
    uint32_t accept_refused;  /**< accept failed: the stack had no socket/memory */
    uint32_t connect_nomem;   /**< socket() for a device failed: no socket/memory */
    uint32_t resets;          /**< send/recv met a reset or abort */
    uint32_t nobufs;          /**< send/recv said ENOBUFS/ENOMEM (retried later) */
    uint32_t socks_used;      /**< slots in use now */
    uint32_t socks_peak;      /**< most slots ever in use */
} rp_sockets_stats;

/** Register the board's hooks (copied) and its blob table (kept, not
 *  copied: it must live as long as the program).  Call before rp_start. */
void rp_sockets_init(const rp_sockets_hooks *hooks, const rp_sockets_blob *blobs,
                     size_t nblobs);

/** The port's counters (never NULL). */
const rp_sockets_stats *rp_sockets_stats_get(void);

#ifdef __cplusplus
}
#endif
#endif /* RP_PORT_SOCKETS_H */

/*
 * lwip.h -- board side of the lwIP port (port/lwip.c).
 *
 * SPDX-License-Identifier: MIT
 *
 * The port contract itself is declared in rproxy.h.  A board using lwIP
 * (NO_SYS=1, raw TCP API) registers its hooks once before rp_start and runs
 * one loop:
 *
 *     rp_lwip_init(&hooks, blobs, nblobs);
 *     ...lwip_init(), netif_add(), rp_init/rp_config_parse/rp_start...
 *     for (;;) {
 *         board_netif_poll();       // frames in -> netif->input()
 *         sys_check_timeouts();     // lwIP timers
 *         rp_poll(&p, 0);           // never blocks on bare metal
 *     }
 *
 * All lwIP callbacks of the port run inside board_netif_poll() and
 * sys_check_timeouts(); rproxy is never called from them.  Nothing here
 * allocates: sockets are indexes into a static table of RP_LWIP_MAX_SOCKS
 * slots, received data stays in lwIP's pbufs until rproxy reads it.
 */
#ifndef RP_PORT_LWIP_H
#define RP_PORT_LWIP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Connections accepted by lwIP but not yet by rproxy, per listener (the
 *  port's backlog; lwIP's own TCP_LISTEN_BACKLOG bounds half-open ones). */
#ifndef RP_LWIP_BACKLOG
#define RP_LWIP_BACKLOG 4
#endif

/** Socket slots: listeners, client and device connections, plus the
 *  backlog.  Cost: ~56 B each (32-bit target). */
#ifndef RP_LWIP_MAX_SOCKS
#define RP_LWIP_MAX_SOCKS \
    (RP_MAX_CONNS + RP_MAX_UPSTREAM + RP_MAX_LISTENERS * (1 + RP_LWIP_BACKLOG))
#endif

/** What the board supplies.  Any hook may be NULL. */
typedef struct {
    /** One finished log line (no newline) at an RP_LOG_* level. */
    void (*log)(int level, const char *line);
    /** n strong random bytes: RP_OK or RP_EIO.  NULL: rp_port_random fails. */
    int (*random)(void *buf, size_t n);
    /** Called by rp_port_wait when nothing is ready and rproxy would wait
     *  (timeout_ms > 0, or -1 = no limit): poll the netif and run
     *  sys_check_timeouts(), sleeping at most timeout_ms for a frame.  NULL:
     *  rp_port_wait never waits (the usual bare-metal loop, rp_poll(p, 0)). */
    void (*idle)(int timeout_ms);
} rp_lwip_hooks;

/** A named blob compiled into flash (certificate, key). */
typedef struct {
    const char *name;
    const void *data;
    size_t len;
} rp_lwip_blob;

/** Port counters, for the board's status output. */
typedef struct {
    uint32_t accept_refused; /**< SYNs dropped: no pcb, backlog or slots full */
    uint32_t resets;         /**< connections lost to tcp_err (RST, abort) */
    uint32_t write_mem;      /**< tcp_write said ERR_MEM (retried later) */
    uint32_t close_aborts;   /**< tcp_close failed, tcp_abort used instead */
    uint32_t socks_used;     /**< slots in use now */
    uint32_t socks_peak;     /**< most slots ever in use */
} rp_lwip_stats;

/** Register the board's hooks (copied) and its blob table (kept, not
 *  copied: it must live as long as the program).  Call before rp_start. */
void rp_lwip_init(const rp_lwip_hooks *hooks, const rp_lwip_blob *blobs, size_t nblobs);

/** The port's counters (never NULL). */
const rp_lwip_stats *rp_lwip_stats_get(void);

#ifdef __cplusplus
}
#endif
#endif /* RP_PORT_LWIP_H */

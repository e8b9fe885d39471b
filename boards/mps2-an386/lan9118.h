/*
 * lan9118.h -- lwIP netif driver for the SMSC LAN9118 that QEMU's mps2
 * machines emulate (polled, no interrupts).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RP_LAN9118_H
#define RP_LAN9118_H

#include <stdint.h>
#include "lwip/netif.h"

/** Driver counters (board status line). */
typedef struct {
    uint32_t rx_frames, rx_nopbuf, rx_errors, rx_fifo_over;
    uint32_t tx_frames, tx_errors;
    uint32_t link_changes;
} lan9118_stats;

/** netif_add() init function: resets the chip, reads its MAC address,
 *  enables TX and RX.  ERR_IF when no LAN9118 answers. */
err_t lan9118_init(struct netif *netif);

/** Move received frames into lwIP (at most a few per call) and follow the
 *  PHY link state; call from the main loop. */
void lan9118_poll(struct netif *netif);

/** The counters (never NULL). */
const lan9118_stats *lan9118_stats_get(void);

#endif

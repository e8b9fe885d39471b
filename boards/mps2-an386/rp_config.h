/*
 * rp_config.h -- rproxy knobs for the mps2-an386 gateway (Cortex-M4).
 *
 * SPDX-License-Identifier: MIT
 *
 * 8 clients and 8 device connections with 2 KiB buffers: the whole
 * rp_proxy is ~75 KB (printed at boot and by `make size-firmware`).
 */
#ifndef RP_CONFIG_MPS2_H
#define RP_CONFIG_MPS2_H

#define RP_MAX_CONNS      8     /* clients at once */
#define RP_MAX_UPSTREAM   8     /* device connections, busy + pooled */
#define RP_BUF_SIZE       2048  /* bytes per direction per connection */
#define RP_MAX_HEAD       2048  /* largest request/response head */
#define RP_MAX_URI        1024  /* longest request target */
#define RP_MAX_HEADERS    32    /* fields per head (32 B each on the stack) */
#define RP_MAX_LISTENERS  2
#define RP_MAX_POOLS      4
#define RP_MAX_DEVICES    8
#define RP_MAX_ROUTES     8
#define RP_CFG_STR_BYTES  512
#define RP_ENABLE_STATUS  0     /* no status page on the board: ~2.5 KB of flash */

#endif

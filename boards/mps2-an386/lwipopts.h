/*
 * lwipopts.h -- lwIP sized for a Cortex-M4 gateway (mps2-an386 under QEMU).
 *
 * SPDX-License-Identifier: MIT
 *
 * NO_SYS=1, raw API only, IPv4 + TCP + ARP + ICMP, static address.  RAM
 * this implies (`make size-firmware` prints the real bss): PBUF_POOL
 * 24 x ~1.6 KB = ~38 KB, heap (tcp_write copies) 24 KB, TCP pcbs/segments
 * ~6 KB: about 70 KB for lwIP.  TCP_WND stays at 4 segments because the
 * LAN9118's RX FIFO holds only ~7 full frames between polls.
 */
#ifndef RP_LWIPOPTS_MPS2_H
#define RP_LWIPOPTS_MPS2_H

#define NO_SYS                  1
#define SYS_LIGHTWEIGHT_PROT    0
#define LWIP_SOCKET             0
#define LWIP_NETCONN            0
#define LWIP_NETIF_API          0

#define MEM_ALIGNMENT           4
#define MEM_SIZE                (24 * 1024)
#define MEMP_NUM_PBUF           16
#define MEMP_NUM_TCP_PCB        24      /* 8 clients + 8 devices + TIME_WAIT */
#define MEMP_NUM_TCP_PCB_LISTEN 2
#define MEMP_NUM_TCP_SEG        64
#define PBUF_POOL_SIZE          24
#define PBUF_POOL_BUFSIZE       1536

#define LWIP_ETHERNET           1
#define LWIP_ARP                1
#define ARP_TABLE_SIZE          4
#define ARP_QUEUEING            1
#define LWIP_IPV4               1
#define LWIP_IPV6               0
#define LWIP_ICMP               1
#define LWIP_UDP                0
#define LWIP_DHCP               0
#define LWIP_DNS                0
#define LWIP_IGMP               0
#define LWIP_RAW                0
#define IP_REASSEMBLY           0
#define IP_FRAG                 0

#define LWIP_TCP                1
#define TCP_MSS                 1460
#define TCP_WND                 (4 * TCP_MSS)
#define TCP_SND_BUF             (4 * TCP_MSS)
#define TCP_SND_QUEUELEN        (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_LISTEN_BACKLOG      1
#define TCP_DEFAULT_LISTEN_BACKLOG 8
#define LWIP_TCP_KEEPALIVE      0

#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_STATS              0
#define LWIP_CHECKSUM_ON_COPY   1

/* The "ops" firmware (make firmware-ops: -DRP_BOARD_OPS=1): lwIP's DNS
 * resolver for rproxy's devices by name (port/lwip.c [7]), over UDP.  The
 * name server is set by main.c (10.0.2.2: under QEMU's user networking, the
 * host's 127.0.0.1) on port 9153, where tests/qemu/ops.sh runs its own (an
 * unprivileged port; a real gateway keeps 53 and takes its server from DHCP).
 * Each outstanding query gets its own random source port (LWIP_DNS_SECURE's
 * default), so the UDP pcbs match the requests: 4.  lwIP's table holds the
 * names being looked up; answers are not kept (DNS_MAX_TTL 0). */
#if defined(RP_BOARD_OPS) && RP_BOARD_OPS
#undef LWIP_UDP
#define LWIP_UDP                1
#undef LWIP_DNS
#define LWIP_DNS                1
#define DNS_TABLE_SIZE          4       /* names looked up at once */
#define DNS_MAX_NAME_LENGTH     64      /* (256 by default: 4 x 192 B of RAM saved) */
#define DNS_MAX_SERVERS         1
#define DNS_SERVER_PORT         9153
#define DNS_MAX_TTL             0       /* no answer cached: rproxy's resolve= alone says when
                                         * a name is asked again (default: the record's TTL,
                                         * up to a week, would hide a moved device that long) */
#define MEMP_NUM_UDP_PCB        4
#endif

#endif

/*
 * lwipopts.h -- lwIP options for the lwIP-on-host test build (Linux, TAP).
 *
 * SPDX-License-Identifier: MIT
 *
 * NO_SYS=1 and the raw API only, like the boards; pools sized for the test
 * (a few dozen connections), not for an MCU (see boards/mps2-an386).
 * LWIP_STATS is on: the fault tests read memp and heap use (-C, main.c).
 */
#ifndef RP_LWIPOPTS_HOST_H
#define RP_LWIPOPTS_HOST_H

#define NO_SYS                  1
#define SYS_LIGHTWEIGHT_PROT    0
#define LWIP_SOCKET             0
#define LWIP_NETCONN            0
#define LWIP_NETIF_API          0

#define MEM_ALIGNMENT           8       /* 64-bit host: aligned for UBSan */
#define MEM_SIZE                (512 * 1024)
#define MEMP_NUM_PBUF           64
#define MEMP_NUM_TCP_PCB        64
#define MEMP_NUM_TCP_PCB_LISTEN 4
#define MEMP_NUM_TCP_SEG        512
#define MEMP_NUM_SYS_TIMEOUT    16
#define PBUF_POOL_SIZE          512
#define PBUF_POOL_BUFSIZE       1536

#define LWIP_ETHERNET           1
#define LWIP_ARP                1
#define ARP_QUEUEING            1
#define LWIP_IPV4               1
#define LWIP_IPV6               0
#define LWIP_ICMP               1
#define LWIP_UDP                0
#define LWIP_DHCP               0
#define LWIP_DNS                0
#define LWIP_IGMP               0
#define LWIP_RAW                0

#define LWIP_TCP                1
#define TCP_MSS                 1460
#define TCP_WND                 (16 * TCP_MSS)
#define TCP_SND_BUF             (16 * TCP_MSS)
#define TCP_SND_QUEUELEN        (4 * TCP_SND_BUF / TCP_MSS)
#define TCP_LISTEN_BACKLOG      1
#define TCP_DEFAULT_LISTEN_BACKLOG 16
#define LWIP_TCP_KEEPALIVE      0

#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_STATS              1
#define LWIP_STATS_DISPLAY      0
#define LWIP_CHECKSUM_ON_COPY   1

#endif

/*
 * lwipopts.h -- lwIP options for the Cortex-M4 compile check of
 * port/sockets.c (tests/lwip-rtos/lwip-rtos.mk): an RTOS build (NO_SYS=0)
 * with lwIP's own sockets headers, as FreeRTOS+lwIP (CubeMX) and ESP-IDF
 * use them.  Sized like a small gateway; see port/README.md.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RP_LWIPOPTS_M4_H
#define RP_LWIPOPTS_M4_H

#define NO_SYS                  0
#define LWIP_TCPIP_CORE_LOCKING 1
#define LWIP_SOCKET             1
#define LWIP_NETCONN            1
#define LWIP_SOCKET_POLL        1
#define LWIP_COMPAT_SOCKETS     0       /* the port calls lwip_* */
#define LWIP_SO_RCVBUF          1
#define LWIP_TIMEVAL_PRIVATE    0       /* newlib has struct timeval */
#define MEMP_NUM_NETCONN        16      /* >= listeners + RP_MAX_CONNS + RP_MAX_UPSTREAM */
#define MEMP_NUM_TCP_PCB        16
#define MEMP_NUM_TCP_PCB_LISTEN 2
#define MEM_ALIGNMENT           4
#define MEM_SIZE                (24 * 1024)
#define PBUF_POOL_SIZE          16
#define TCP_MSS                 1460
#define TCP_WND                 (4 * TCP_MSS)
#define TCP_SND_BUF             (4 * TCP_MSS)
#define LWIP_IPV6               0
#define LWIP_ETHERNET           1

#endif

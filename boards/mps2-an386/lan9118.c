/*
 * lan9118.c -- lwIP netif driver for the SMSC LAN9118 (QEMU mps2-an386).
 *
 * SPDX-License-Identifier: MIT
 *
 * Polled from the main loop: RX frames are copied from the RX data FIFO
 * into PBUF_POOL pbufs, TX frames are written into the TX data FIFO as one
 * segment (command A/B words, then the data packed little-endian).  The MAC
 * filters on our own address plus broadcast.  The chip's RX FIFO holds only
 * ~10 KB, so lwipopts.h keeps TCP_WND small and the loop polls often; a
 * frame lost to overflow or pbuf exhaustion is counted and TCP resends it.
 *
 * [1] registers  [2] MAC/PHY access  [3] TX  [4] RX and link  [5] init
 */
#include "lan9118.h"

#include <string.h>

#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "netif/ethernet.h"

/* ==== [1] Registers ==== */

#define ETH_BASE     0x40200000u
#define REG(off)     (*(volatile uint32_t *)(ETH_BASE + (off)))
#define RX_DATA      0x00
#define TX_DATA      0x20
#define RX_STATUS    0x40
#define TX_STATUS    0x48
#define IRQ_CFG      0x54
#define INT_STS      0x58
#define INT_EN       0x5c
#define BYTE_TEST    0x64
#define RX_CFG       0x6c
#define TX_CFG       0x70
#define HW_CFG       0x74
#define RX_FIFO_INF  0x7c
#define TX_FIFO_INF  0x80
#define PMT_CTRL     0x84
#define MAC_CSR_CMD  0xa4
#define MAC_CSR_DATA 0xa8

#define CSR_BUSY     0x80000000u
#define CSR_READ     0x40000000u
#define MAC_CR       1
#define MAC_ADDRH    2
#define MAC_ADDRL    3
#define MAC_MII_ACC  6
#define MAC_MII_DATA 7
#define MAC_CR_FDPX  0x00100000u
#define MAC_CR_TXEN  0x00000008u
#define MAC_CR_RXEN  0x00000004u
#define TX_CFG_ON    0x2u
#define TX_CFG_SAO   0x4u /* TX status FIFO may overflow: we never read it */
#define INT_RXDF     0x40u /* RX data FIFO overflowed: a frame was lost */
#define PHY_ADDR     1
#define FRAME_MAX    1522

static lan9118_stats st;
static uint32_t rxbuf[(FRAME_MAX + 4 + 3) / 4];
static uint32_t link_checked;

/* ==== [2] MAC and PHY access ==== */

static void
csr_wait(void)
{
    int i;
    for (i = 0; i < 100000 && (REG(MAC_CSR_CMD) & CSR_BUSY); i++)
        ;
}

static uint32_t
mac_read(int reg)
{
    csr_wait();
    REG(MAC_CSR_CMD) = CSR_BUSY | CSR_READ | (uint32_t)reg;
    csr_wait();
    return REG(MAC_CSR_DATA);
}

static void
mac_write(int reg, uint32_t v)
{
    csr_wait();
    REG(MAC_CSR_DATA) = v;
    REG(MAC_CSR_CMD) = CSR_BUSY | (uint32_t)reg;
    csr_wait();
}

static uint32_t
phy_read(int reg)
{
    int i;
    mac_write(MAC_MII_ACC, (PHY_ADDR << 11) | ((uint32_t)reg << 6) | 1u);
    for (i = 0; i < 100000 && (mac_read(MAC_MII_ACC) & 1u); i++)
        ;
    return mac_read(MAC_MII_DATA) & 0xffffu;
}

static void
phy_write(int reg, uint32_t v)
{
    int i;
    mac_write(MAC_MII_DATA, v);
    mac_write(MAC_MII_ACC, (PHY_ADDR << 11) | ((uint32_t)reg << 6) | 2u | 1u);
    for (i = 0; i < 100000 && (mac_read(MAC_MII_ACC) & 1u); i++)
        ;
}

/* ==== [3] TX ==== */

static err_t
lan9118_output(struct netif *netif, struct pbuf *p)
{
    uint32_t word = 0, free_bytes;
    unsigned have = 0, len = p->tot_len;
    const struct pbuf *q;
    int i;

    (void)netif;
    if (len > FRAME_MAX) {
        st.tx_errors++;
        return ERR_BUF;
    }
    for (i = 0; i < 100000; i++) { /* room for the frame and both commands */
        free_bytes = REG(TX_FIFO_INF) & 0xffffu;
        if (free_bytes >= len + 8)
            break;
    }
    if (i == 100000) {
        st.tx_errors++;
        return ERR_IF;
    }
    REG(TX_DATA) = (1u << 13) | (1u << 12) | len; /* A: first+last segment */
    REG(TX_DATA) = (len << 16) | len;            /* B: tag, packet length */
    for (q = p; q; q = q->next) {
        const uint8_t *b = (const uint8_t *)q->payload;
        unsigned k;
        for (k = 0; k < q->len; k++) {
            word |= (uint32_t)b[k] << (8 * have);
            if (++have == 4) {
                REG(TX_DATA) = word;
                word = 0;
                have = 0;
            }
        }
    }
    if (have)
        REG(TX_DATA) = word;
    st.tx_frames++;
    return ERR_OK;
}

/* ==== [4] RX and link ==== */

static void
rx_one(struct netif *netif)
{
    uint32_t status = REG(RX_STATUS);
    unsigned len = (status >> 16) & 0x3fffu, words = (len + 3) / 4, i;
    struct pbuf *p;

    if (words > sizeof rxbuf / 4) { /* cannot be: drain it word by word */
        for (i = 0; i < words; i++)
            (void)REG(RX_DATA);
        st.rx_errors++;
        return;
    }
    for (i = 0; i < words; i++)
        rxbuf[i] = REG(RX_DATA);
    if ((status & (1u << 15)) || len < 14 + 4) { /* error summary, runt */
        st.rx_errors++;
        return;
    }
    len -= 4; /* the FCS */
    if (!(p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL))) {
        st.rx_nopbuf++;
        return;
    }
    pbuf_take(p, rxbuf, (u16_t)len);
    st.rx_frames++;
    if (netif->input(p, netif) != ERR_OK)
        pbuf_free(p);
}

static void
link_check(struct netif *netif)
{
    int up = (phy_read(1) & 0x4u) != 0;

    if (up == !!netif_is_link_up(netif))
        return;
    st.link_changes++;
    if (up)
        netif_set_link_up(netif);
    else
        netif_set_link_down(netif);
}

void
lan9118_poll(struct netif *netif)
{
    int k;

    for (k = 0; k < 32 && ((REG(RX_FIFO_INF) >> 16) & 0xffu); k++)
        rx_one(netif);
    if (REG(INT_STS) & INT_RXDF) {
        REG(INT_STS) = INT_RXDF;
        st.rx_fifo_over++;
    }
    if (sys_now() - link_checked >= 500) {
        link_checked = sys_now();
        link_check(netif);
    }
}

const lan9118_stats *
lan9118_stats_get(void)
{
    return &st;
}

/* ==== [5] Init ==== */

err_t
lan9118_init(struct netif *netif)
{
    uint32_t lo, hi;
    int i;

    if (REG(BYTE_TEST) != 0x87654321u)
        return ERR_IF;
    REG(HW_CFG) = 1; /* soft reset */
    for (i = 0; i < 100000 && (REG(HW_CFG) & 1u); i++)
        ;
    for (i = 0; i < 100000 && !(REG(PMT_CTRL) & 1u); i++) /* READY */
        ;
    REG(INT_EN) = 0;
    REG(INT_STS) = 0xffffffffu;
    REG(IRQ_CFG) = 0;
    lo = mac_read(MAC_ADDRL); /* loaded from the EEPROM (QEMU: -nic mac=) */
    hi = mac_read(MAC_ADDRH);
    if (lo == 0 && (hi & 0xffffu) == 0) {
        lo = 0x12005452u; /* 52:54:00:12:34:56, locally administered */
        hi = 0x5634u;
        mac_write(MAC_ADDRL, lo);
        mac_write(MAC_ADDRH, hi);
    }
    for (i = 0; i < 4; i++)
        netif->hwaddr[i] = (uint8_t)(lo >> (8 * i));
    netif->hwaddr[4] = (uint8_t)hi;
    netif->hwaddr[5] = (uint8_t)(hi >> 8);
    netif->hwaddr_len = 6;
    phy_write(0, 0x1000u); /* auto-negotiation on */
    REG(TX_CFG) = TX_CFG_ON | TX_CFG_SAO;
    REG(RX_CFG) = 0;
    mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX);
    netif->name[0] = 'e';
    netif->name[1] = 'n';
    netif->mtu = 1500;
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP;
    netif->output = etharp_output;
    netif->linkoutput = lan9118_output;
    if (phy_read(1) & 0x4u)
        netif->flags |= NETIF_FLAG_LINK_UP;
    link_checked = sys_now();
    return ERR_OK;
}

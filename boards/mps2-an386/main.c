/*
 * main.c -- rproxy gateway firmware for QEMU's mps2-an386 (Cortex-M4).
 *
 * SPDX-License-Identifier: MIT
 *
 * Bare metal, no RTOS: CMSDK UART0 console, SysTick 1 ms time base, the
 * LAN9118 as lwIP's netif (NO_SYS=1), static address 10.0.2.15/24 with
 * gateway 10.0.2.2 (QEMU user networking), the config text from
 * gateway.conf and its TLS certificate and key compiled into flash and
 * handed to the port as named blobs ("gw.crt", "gw.key").  The main loop polls the NIC, runs
 * lwIP's timers and gives rproxy one non-blocking turn.
 *
 * Randomness: QEMU models no TRNG.  This demo seeds a xorshift generator
 * from the LAN9118 free-running counter and SysTick, which is NOT
 * cryptographically strong -- a real board must feed rp_port_random from
 * its hardware TRNG (the banner says so).  It is what seeds every TLS
 * engine here: the gateway's TLS is a DEMO, its session keys are guessable
 * by anyone who can model the seed.  (rproxy refuses TLS when
 * rp_port_random fails; this demo source never fails.)
 */
#include "rproxy.h"
#include "lwip.h"
#include "lan9118.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

#define UART0_DATA  (*(volatile uint32_t *)0x40004000u)
#define UART0_STATE (*(volatile uint32_t *)0x40004004u)
#define UART0_CTRL  (*(volatile uint32_t *)0x40004008u)
#define UART0_BAUD  (*(volatile uint32_t *)0x40004010u)
#define SYST_CSR    (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR    (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR    (*(volatile uint32_t *)0xE000E018u)
#define ETH_FREE_RUN (*(volatile uint32_t *)0x4020009Cu)
#define SYSCLK_HZ   25000000u

#if RP_ENABLE_CONFIG_TEXT
extern const char gw_conf[], gw_conf_end[];
extern const char gw_crt[], gw_crt_end[], gw_key[], gw_key_end[];
#else
extern const rp_config rp_gw_config; /* gateway.conf, parsed at build time */
#endif

static volatile uint32_t ticks;
static struct netif eth;
static rp_proxy proxy;
static uint32_t rng;
static uint32_t long_n, long_ms; /* rp_poll turns of 5 ms or more (crypto) */
/* The longest rp_poll turn, timed here (the LAN9118 25 MHz counter, us): no
 * cost in rproxy.o.  A TLS handshake's ECDHE + ECDSA sign run inside one turn; what
 * the turn did comes from rp_poll's count and p->stats deltas. */
static struct {
    uint32_t us, at;       /* how long; when (ticks, ms since boot) */
    uint32_t events;       /* reports served (rp_poll's return) */
    uint32_t bytes;        /* client-side bytes received + sent */
    uint32_t handshakes;   /* TLS handshakes finished in it */
    uint32_t accepted;     /* clients accepted in it */
} turn_max;

/* ==== Console, clock, randomness ==== */

static void
uart_putc(char c)
{
    while (UART0_STATE & 1u) /* TX buffer full */
        ;
    UART0_DATA = (uint32_t)(unsigned char)c;
}

static void
uart_puts(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            uart_putc('\r');
        uart_putc(*s);
    }
}

void
board_printf(const char *fmt, ...)
{
    char line[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    uart_puts(line);
}

void
board_fault(const char *what)
{
    uart_puts("\nFATAL: ");
    uart_puts(what);
    uart_puts("\n");
    for (;;)
        ;
}

void
board_systick(void)
{
    ticks++;
}

u32_t
sys_now(void)
{
    return ticks;
}


/* xorshift32, stirred with the cycle-level SysTick value on every call.
 * DEMO quality only, NOT a cryptographic source: see the top of this file. */
unsigned
board_rand(void)
{
    rng ^= SYST_CVR;
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static int
hook_random(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n--)
        *p++ = (unsigned char)(board_rand() >> 11);
    return RP_OK;
}

static void
hook_log(int level, const char *line)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    board_printf("[%lu] rproxy %s: %s\n", (unsigned long)ticks,
                 names[level >= 0 && level <= 3 ? level : 3], line);
}

/* ==== Status ==== */

static void
print_stats(void)
{
    const lan9118_stats *e = lan9118_stats_get();
    const rp_lwip_stats *l = rp_lwip_stats_get();

    board_printf("[%lu] stats: accepted %lu requests %lu dev_connects %lu dev_errors %lu | "
                 "eth rx %lu tx %lu nopbuf %lu rxerr %lu fifo_over %lu | "
                 "port socks %lu/%lu refused %lu resets %lu write_mem %lu | "
                 "long turns %lu (%lu ms), longest %lu us\n",
                 (unsigned long)ticks, (unsigned long)proxy.stats.accepted,
                 (unsigned long)proxy.stats.requests, (unsigned long)proxy.stats.device_connects,
                 (unsigned long)proxy.stats.device_errors, (unsigned long)e->rx_frames,
                 (unsigned long)e->tx_frames, (unsigned long)e->rx_nopbuf,
                 (unsigned long)e->rx_errors, (unsigned long)e->rx_fifo_over,
                 (unsigned long)l->socks_used, (unsigned long)l->socks_peak,
                 (unsigned long)l->accept_refused, (unsigned long)l->resets,
                 (unsigned long)l->write_mem, (unsigned long)long_n, (unsigned long)long_ms,
                 (unsigned long)turn_max.us);
#if RP_ENABLE_TURN_STATS
    board_printf("[%lu] core longest turn: %lu ms at %lu ms, events %lu left %lu, bytes %lu, "
                 "tls steps %lu, timers %lu; turns %lu bounded %lu\n",
                 (unsigned long)ticks, (unsigned long)proxy.loop.longest.ms,
                 (unsigned long)proxy.loop.longest.at_ms, (unsigned long)proxy.loop.longest.events,
                 (unsigned long)proxy.loop.longest.left, (unsigned long)proxy.loop.longest.bytes,
                 (unsigned long)proxy.loop.longest.tls_steps,
                 (unsigned long)proxy.loop.longest.timers, (unsigned long)proxy.loop.turns,
                 (unsigned long)proxy.loop.bounded);
#endif
}

/* One rp_poll turn, timed; the longest is kept and printed when it grows
 * past 10 ms (the main loop, which polls the NIC, waited that long). */
static void
poll_timed(void)
{
    uint32_t b0 = (uint32_t)(proxy.stats.bytes_in + proxy.stats.bytes_out);
    uint32_t h0 = (uint32_t)proxy.stats.tls_handshakes, a0 = (uint32_t)proxy.stats.accepted;
    uint32_t c0 = ETH_FREE_RUN, us;
    int n = rp_poll(&proxy, 0);
    us = (ETH_FREE_RUN - c0) / 25u; /* 25 MHz counts */
    if (us >= 5000u)
        long_n++, long_ms += us / 1000u;
    if (us <= turn_max.us)
        return;
    turn_max.us = us;
    turn_max.at = ticks;
    turn_max.events = n > 0 ? (uint32_t)n : 0;
    turn_max.bytes = (uint32_t)(proxy.stats.bytes_in + proxy.stats.bytes_out) - b0;
    turn_max.handshakes = (uint32_t)proxy.stats.tls_handshakes - h0;
    turn_max.accepted = (uint32_t)proxy.stats.accepted - a0;
    if (us >= 10000u)
        board_printf("[%lu] longest rp_poll turn so far: %lu us (events %lu, bytes %lu, "
                     "handshakes done %lu, accepted %lu)\n",
                     (unsigned long)ticks, (unsigned long)us, (unsigned long)turn_max.events,
                     (unsigned long)turn_max.bytes, (unsigned long)turn_max.handshakes,
                     (unsigned long)turn_max.accepted);
}

/* ==== The "ops" firmware (make firmware-ops) ====
 * Issue 17 on the board: ops.conf names devices by DNS name, looked up by
 * the port's rp_port_resolve through lwIP's resolver (LWIP_DNS, lwipopts.h)
 * from the name server set here: 10.0.2.2, which QEMU's user networking
 * forwards to the host's 127.0.0.1 (UDP too), on lwIP's DNS_SERVER_PORT
 * (9153 in this variant), where tests/qemu/ops.sh runs a name server of its
 * own.  (slirp's own 10.0.2.3 would ask the host's resolver: not used.)  A
 * real gateway would take its name server from DHCP. */
#if RP_BOARD_OPS
#include "lwip/dns.h"

static void
ops_init(void)
{
    ip_addr_t ns;

    IP_ADDR4(&ns, 10, 0, 2, 2);
    dns_setserver(0, &ns);
    board_printf("dns: name server 10.0.2.2:%u (lwIP resolver, %u lookups at once)\n",
                 (unsigned)DNS_SERVER_PORT, (unsigned)DNS_TABLE_SIZE);
    UART0_CTRL = 3u; /* TX and RX: 'r' reloads (ops_uart) */
}

/* Reload without a reboot: 'r' on the UART applies the other compiled-in
 * image (ops.conf <-> ops2.conf) with the same calls a host uses --
 * rp_config_load fills the spare slot, rp_config_apply switches between
 * turns.  Exchanges in flight finish on the image they began with; while
 * they still run on the one before the last switch, the next waits for
 * them (RP_EBUSY) at most 10 s. */
extern const rp_config rp_gw_config2;

static void
ops_uart(void)
{
    static int image, pending;
    static uint32_t since;
    rp_cfg_error err;
    int rc;

    if (UART0_STATE & 2u) { /* RX buffer full */
        char ch = (char)UART0_DATA;
        if ((ch == 'r' || ch == 'R') && !pending) {
            pending = 1;
            since = ticks;
            board_printf("[%lu] reload: image %d requested\n", (unsigned long)ticks, 2 - image);
        }
    }
    if (!pending)
        return;
    rc = rp_config_load(&proxy, image ? &rp_gw_config : &rp_gw_config2);
    if (rc == RP_EBUSY && ticks - since < 10000u)
        return; /* the image before the last switch still has exchanges */
    pending = 0;
    if (rc != RP_OK) {
        board_printf("reload: refused: %s (%d connections on the image before)\n",
                     rp_strerror(rc), rp_config_draining(&proxy));
        return;
    }
    rc = rp_config_apply(&proxy, &err);
    if (rc != RP_OK) {
        board_printf("reload: image %d not applied: %s\n", 2 - image, err.msg);
        return;
    }
    image = !image;
    board_printf("[%lu] reload: image %d applied (generation %lu), %d connection(s) finish on "
                 "the one before\n", (unsigned long)ticks, image + 1,
                 (unsigned long)proxy.reload.generation, rp_config_draining(&proxy));
}
#endif

/* ==== Main ==== */

int
main(void)
{
    static const rp_lwip_hooks hooks = {hook_log, hook_random, NULL};
    ip4_addr_t ip, mask, gw;
    uint32_t last_stats = 0, last_req = 0;
    int link_was;

    UART0_BAUD = SYSCLK_HZ / 115200u;
    UART0_CTRL = 1u; /* TX enable */
    SYST_RVR = SYSCLK_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
    rng = ETH_FREE_RUN ^ 0x9e3779b9u;

    board_printf("\nrproxy %s gateway on mps2-an386 (Cortex-M4, lwIP %s, NO_SYS)\n",
                 rp_version(), LWIP_VERSION_STRING);
    board_printf("WARNING: no TRNG in QEMU: randomness is a SysTick-seeded xorshift, "
                 "not for production; a real board must use its TRNG\n");
    board_printf("WARNING: TLS on :443 is a DEMO: its keys come from that generator and "
                 "its certificate is a build-time test certificate\n");
    lwip_init();
    IP4_ADDR(&ip, 10, 0, 2, 15);
    IP4_ADDR(&mask, 255, 255, 255, 0);
    IP4_ADDR(&gw, 10, 0, 2, 2);
    if (!netif_add(&eth, &ip, &mask, &gw, NULL, lan9118_init, ethernet_input))
        board_fault("no LAN9118 found");
    netif_set_default(&eth);
    netif_set_up(&eth);
    board_printf("eth: %02x:%02x:%02x:%02x:%02x:%02x 10.0.2.15/24 gw 10.0.2.2 link %s\n",
                 eth.hwaddr[0], eth.hwaddr[1], eth.hwaddr[2], eth.hwaddr[3], eth.hwaddr[4],
                 eth.hwaddr[5], netif_is_link_up(&eth) ? "up" : "down");
#if RP_BOARD_OPS
    ops_init();
#endif

#if RP_ENABLE_CONFIG_TEXT
    {
        static rp_lwip_blob blobs[2];
        rp_cfg_error err;
        blobs[0].name = "gw.crt", blobs[0].data = gw_crt;
        blobs[0].len = (size_t)(gw_crt_end - gw_crt);
        blobs[1].name = "gw.key", blobs[1].data = gw_key;
        blobs[1].len = (size_t)(gw_key_end - gw_key);
        rp_lwip_init(&hooks, blobs, 2);
        rp_init(&proxy);
        if (rp_config_parse(&proxy, gw_conf, (size_t)(gw_conf_end - gw_conf), &err) != RP_OK) {
            board_printf("gateway.conf:%d: %s\n", err.line, err.msg);
            board_fault("bad embedded config");
        }
    }
#else
    rp_lwip_init(&hooks, NULL, 0);
    rp_init(&proxy);
    if (rp_config_load(&proxy, &rp_gw_config) != RP_OK)
        board_fault("the config image does not fit rp_config.h");
#endif
    if (rp_start(&proxy) != RP_OK)
        board_fault("rp_start failed");
    board_printf("rproxy: rp_proxy %lu bytes, %u devices, listening on 10.0.2.15:80 and "
                 ":443 (TLS, %d slots)\n",
                 (unsigned long)rp_proxy_size(), (unsigned)rp_config_live(&proxy)->ndevices, RP_MAX_TLS_CONNS);
    board_printf("rproxy gateway ready\n");

    link_was = netif_is_link_up(&eth) != 0;
    for (;;) {
        lan9118_poll(&eth);
        if ((netif_is_link_up(&eth) != 0) != link_was) { /* (the driver checks every 500 ms) */
            link_was = !link_was;
            board_printf("[%lu] eth: link %s (%lu changes)\n", (unsigned long)ticks,
                         link_was ? "up" : "down",
                         (unsigned long)lan9118_stats_get()->link_changes);
            print_stats();
        }
        sys_check_timeouts();
        poll_timed(); /* (a watchdog would be fed here, between turns) */
#if RP_BOARD_OPS
        ops_uart();
#endif
        if (ticks - last_stats >= 10000u && proxy.stats.requests != last_req) {
            last_stats = ticks;
            last_req = (uint32_t)proxy.stats.requests;
            print_stats();
        }
    }
}

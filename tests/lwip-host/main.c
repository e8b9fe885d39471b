/*
 * main.c -- rproxy over lwIP on Linux: the lwIP-on-host test program.
 *
 * SPDX-License-Identifier: MIT
 *
 *   rproxy-lwip -t TAP -i IP -m MASK -g GW -c CONFIG
 *
 * Runs the same loop a bare-metal board runs (NO_SYS=1: poll the netif,
 * sys_check_timeouts, rp_poll) with rproxy.c + port/lwip.c + lwIP core and a
 * tiny TAP driver as the netif.  The TAP device must already exist (the test
 * creates it inside its own network namespace).  Prints "ready" on stdout
 * once listening; SIGTERM/SIGINT: exits 0 after printing the port counters.
 */
#include "rproxy.h"
#include "lwip.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

static int tap_fd = -1;
static struct netif tap_netif;
static volatile sig_atomic_t stop;
static rp_proxy proxy;

/* ==== TAP netif ==== */

static err_t
tap_linkoutput(struct netif *n, struct pbuf *p)
{
    char frame[1600];

    (void)n;
    if (p->tot_len > sizeof frame)
        return ERR_BUF;
    pbuf_copy_partial(p, frame, p->tot_len, 0);
    if (write(tap_fd, frame, p->tot_len) != (ssize_t)p->tot_len)
        return ERR_IF; /* TAP queue full: TCP retransmits */
    return ERR_OK;
}

static err_t
tap_netif_init(struct netif *n)
{
    static const uint8_t mac[6] = {0x02, 0x00, 0x00, 0x00, 0x72, 0x70};

    n->name[0] = 't';
    n->name[1] = 'p';
    n->output = etharp_output;
    n->linkoutput = tap_linkoutput;
    n->mtu = 1500;
    n->hwaddr_len = 6;
    memcpy(n->hwaddr, mac, 6);
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_LINK_UP;
    return ERR_OK;
}

static int
tap_open(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Frames from the TAP into lwIP, a bounded number per call. */
static void
tap_poll(void)
{
    char frame[1600];
    int i;

    for (i = 0; i < 64; i++) {
        ssize_t n = read(tap_fd, frame, sizeof frame);
        struct pbuf *p;
        if (n <= 0)
            return;
        if (!(p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL)))
            return; /* pool empty: the frame is dropped, TCP retransmits */
        pbuf_take(p, frame, (u16_t)n);
        if (tap_netif.input(p, &tap_netif) != ERR_OK)
            pbuf_free(p);
    }
}

/* ==== Board hooks ==== */

u32_t
sys_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (u32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void
hook_log(int level, const char *line)
{
    (void)level;
    fprintf(stderr, "rproxy-lwip: %s\n", line);
}

static int
hook_random(void *buf, size_t n)
{
    return getrandom(buf, n, 0) == (ssize_t)n ? RP_OK : RP_EIO;
}

/* Nothing ready: sleep on the TAP until a frame or lwIP's next timer. */
static void
hook_idle(int timeout_ms)
{
    u32_t t = sys_timeouts_sleeptime();
    struct timeval tv;
    fd_set r;

    if (timeout_ms < 0 || (u32_t)timeout_ms > t)
        timeout_ms = (int)(t > 100 ? 100 : t);
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    FD_ZERO(&r);
    FD_SET(tap_fd, &r);
    if (select(tap_fd + 1, &r, NULL, NULL, &tv) > 0)
        tap_poll();
    sys_check_timeouts();
}

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static char *
read_file(const char *name, size_t *len)
{
    FILE *f = fopen(name, "rb");
    char *d = NULL;
    long n;

    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0
        && (d = malloc((size_t)n + 1)) && fread(d, 1, (size_t)n, f) == (size_t)n) {
        d[n] = '\0';
        *len = (size_t)n;
    } else {
        free(d);
        d = NULL;
    }
    if (f)
        fclose(f);
    return d;
}

int
main(int argc, char **argv)
{
    const char *tap = "rptap0", *ip = "192.168.77.2", *mask = "255.255.255.0";
    const char *gw = "192.168.77.1", *cfg = NULL;
    static const rp_lwip_hooks hooks = {hook_log, hook_random, hook_idle};
    ip4_addr_t a, m, g;
    rp_cfg_error e;
    char *text;
    size_t len = 0;
    int opt;

    while ((opt = getopt(argc, argv, "t:i:m:g:c:")) != -1) {
        switch (opt) {
        case 't': tap = optarg; break;
        case 'i': ip = optarg; break;
        case 'm': mask = optarg; break;
        case 'g': gw = optarg; break;
        case 'c': cfg = optarg; break;
        default:
            fprintf(stderr, "usage: rproxy-lwip -t TAP -i IP -m MASK -g GW -c CONFIG\n");
            return 2;
        }
    }
    if (!cfg || !(text = read_file(cfg, &len))) {
        fprintf(stderr, "rproxy-lwip: cannot read config %s\n", cfg ? cfg : "(none)");
        return 2;
    }
    if ((tap_fd = tap_open(tap)) < 0 || !ip4addr_aton(ip, &a) || !ip4addr_aton(mask, &m)
        || !ip4addr_aton(gw, &g)) {
        fprintf(stderr, "rproxy-lwip: tap %s: %s (or a bad address)\n", tap, strerror(errno));
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lwip_init();
    netif_add(&tap_netif, &a, &m, &g, NULL, tap_netif_init, ethernet_input);
    netif_set_default(&tap_netif);
    netif_set_up(&tap_netif);
    rp_lwip_init(&hooks, NULL, 0);
    rp_init(&proxy);
    if (rp_config_parse(&proxy, text, len, &e) != RP_OK) {
        fprintf(stderr, "%s:%d: %s\n", cfg, e.line, e.msg);
        return 1;
    }
    free(text);
    if (rp_start(&proxy) != RP_OK)
        return 1;
    printf("ready %s\n", ip);
    fflush(stdout);
    while (!stop) {
        tap_poll();
        sys_check_timeouts();
        rp_poll(&proxy, 50);
    }
    {
        const rp_lwip_stats *st = rp_lwip_stats_get();
        fprintf(stderr, "rproxy-lwip: accepted %llu requests %llu; port: refused %u resets %u "
                "write_mem %u close_aborts %u socks_used %u peak %u\n",
                (unsigned long long)proxy.stats.accepted,
                (unsigned long long)proxy.stats.requests, st->accept_refused, st->resets,
                st->write_mem, st->close_aborts, st->socks_used, st->socks_peak);
    }
    return 0;
}

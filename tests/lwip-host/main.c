/*
 * main.c -- rproxy over lwIP on Linux: the lwIP-on-host test program.
 *
 * SPDX-License-Identifier: MIT
 *
 *   rproxy-lwip -t TAP -i IP -m MASK -g GW -c CONFIG [-C FIFO]
 *
 * Runs the same loop a bare-metal board runs (NO_SYS=1: poll the netif,
 * sys_check_timeouts, rp_poll) with rproxy.c + port/lwip.c + lwIP core and a
 * tiny TAP driver as the netif.  The TAP device must already exist (the test
 * creates it inside its own network namespace).  Prints "ready" on stdout
 * once listening; SIGTERM/SIGINT: exits 0 after printing the port counters.
 *
 * -C FIFO: fault control for tests/lwip-host/faults.sh.  Lines "ID COMMAND"
 * are read from the FIFO between turns of the loop; each is answered on
 * stdout with one line "ctl ID COMMAND ok" (or "... bad"):
 *
 *   link down|up     netif_set_link_down/up; while down the driver drops
 *                    every frame both ways (the cable is out)
 *   netif down|up    netif_set_down/up (lwIP drops what arrives, flushes ARP)
 *   addr drop|restore  netif_set_ipaddr to 0.0.0.0 and back (a lost lease:
 *                    lwIP aborts every connection on the old address)
 *   pause|resume     stop / restart calling rp_poll (rproxy reads nothing;
 *                    lwIP keeps running, so the TCP windows fill)
 *   hog KIND         take every free pool pbuf (pool), TCP pcb (pcb, with
 *                    tcp_new: TIME_WAIT ones are reclaimed as lwIP would),
 *                    TCP segment (seg) or heap byte (heap); answers n=COUNT
 *   free KIND [N]    give N of them back (all by default)
 *   stats            the line ends with key=value counters: lwIP's memp and
 *                    heap use (used/max/err), TCP pcbs by kind, bytes lwIP
 *                    received that nobody read yet (held), the port's,
 *                    rproxy's and the driver's counters
 *
 * The host has a clock, so rp_port_time is defined (hostboard.h, time(2)): it
 * replaces the port's weak one (0, no clock; what the QEMU board runs).
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
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "hostboard.h"

static int tap_fd = -1, ctl_fd = -1;
static struct netif tap_netif;
static ip4_addr_t tap_addr;
static volatile sig_atomic_t stop;
static int cable = 1, paused;
static unsigned long rx_nopbuf, cable_drops; /* driver counters */
static rp_proxy proxy;

/* ==== TAP netif ==== */

static err_t
tap_linkoutput(struct netif *n, struct pbuf *p)
{
    (void)n;
    if (!cable) {
        cable_drops++;
        return ERR_IF;
    }
    return tap_write_frame(tap_fd, p);
}

static err_t
tap_netif_init(struct netif *n)
{
    tap_netif_setup(n, 0x70, tap_linkoutput);
    return ERR_OK;
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
        if (!cable) { /* link down: the frame never arrived */
            cable_drops++;
            continue;
        }
        if (!(p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL))) {
            rx_nopbuf++; /* pool empty: the frame is dropped, TCP retransmits */
            continue;
        }
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
    if (ctl_fd >= 0)
        FD_SET(ctl_fd, &r);
    if (select((tap_fd > ctl_fd ? tap_fd : ctl_fd) + 1, &r, NULL, NULL, &tv) > 0)
        tap_poll();
    sys_check_timeouts();
}

/* ==== Fault control (-C FIFO) ==== */

static void
ctl_mem(FILE *f, const char *name, const struct stats_mem *m)
{
    fprintf(f, " %s=%u/%u/%u", name, (unsigned)m->used, (unsigned)m->max, (unsigned)m->err);
}

static void
ctl_stats(FILE *f)
{
    const rp_lwip_stats *st = rp_lwip_stats_get();
    const rp_stats *ps = &proxy.stats;
    const struct tcp_pcb *pcb;
    unsigned live = 0, tw = 0, zero_wnd = 0, refused = 0, orphans = 0, held = 0;

    for (pcb = tcp_active_pcbs; pcb; pcb = pcb->next) {
        live++;
        held += (unsigned)(TCP_WND - pcb->rcv_wnd); /* received, not yet read */
        zero_wnd += pcb->rcv_wnd == 0;
        refused += pcb->refused_data != NULL;
        /* a connection nobody owns that lwIP will not close by itself */
        orphans += pcb->callback_arg == NULL
                   && (pcb->state == ESTABLISHED || pcb->state == CLOSE_WAIT);
    }
    for (pcb = tcp_tw_pcbs; pcb; pcb = pcb->next)
        tw++;
    fprintf(f, " link=%d netif=%d paused=%d", netif_is_link_up(&tap_netif) ? 1 : 0,
            netif_is_up(&tap_netif) ? 1 : 0, paused);
    ctl_mem(f, "heap", &lwip_stats.mem);
    ctl_mem(f, "pbuf_pool", lwip_stats.memp[MEMP_PBUF_POOL]);
    ctl_mem(f, "pbuf", lwip_stats.memp[MEMP_PBUF]);
    ctl_mem(f, "tcp_pcb", lwip_stats.memp[MEMP_TCP_PCB]);
    ctl_mem(f, "tcp_seg", lwip_stats.memp[MEMP_TCP_SEG]);
    ctl_mem(f, "arp_queue", lwip_stats.memp[MEMP_ARP_QUEUE]);
    fprintf(f, " tcp_live=%u tcp_tw=%u held=%u zero_wnd=%u refused_data=%u orphans=%u", live,
            tw, held, zero_wnd, refused, orphans);
    fprintf(f, " socks=%u refused=%u resets=%u write_mem=%u close_aborts=%u",
            (unsigned)st->socks_used, (unsigned)st->accept_refused, (unsigned)st->resets,
            (unsigned)st->write_mem, (unsigned)st->close_aborts);
    fprintf(f, " accepted=%llu requests=%llu r2xx=%llu r5xx=%llu device_errors=%llu"
            " timeouts=%llu upstream_full=%llu cache_hits=%llu",
            (unsigned long long)ps->accepted, (unsigned long long)ps->requests,
            (unsigned long long)ps->responses[2], (unsigned long long)ps->responses[5],
            (unsigned long long)ps->device_errors, (unsigned long long)ps->timeouts,
            (unsigned long long)ps->upstream_full, (unsigned long long)ps->cache_hits);
    fprintf(f, " nopbuf=%lu cable_drops=%lu", rx_nopbuf, cable_drops);
}

/* What "hog" took, per kind: pool pbufs, pcbs, segments, heap blocks. */
enum { HOG_POOL, HOG_PCB, HOG_SEG, HOG_HEAP, HOG_KINDS };
static const char *const hog_names[HOG_KINDS] = {"pool", "pcb", "seg", "heap"};
static void *hog[HOG_KINDS][2048];
static int nhog[HOG_KINDS];

static void *
hog_one(int kind)
{
    static const mem_size_t sizes[] = {4096, 512, 64, 16};
    void *m = NULL;
    size_t i;

    switch (kind) {
    case HOG_POOL: return pbuf_alloc(PBUF_RAW, 1, PBUF_POOL);
    case HOG_PCB: return tcp_new();
    case HOG_SEG: return memp_malloc(MEMP_TCP_SEG);
    default:
        for (i = 0; i < sizeof sizes / sizeof sizes[0] && !m; i++)
            m = mem_malloc(sizes[i]);
        return m;
    }
}

static void
hog_free(int kind, void *m)
{
    switch (kind) {
    case HOG_POOL: pbuf_free((struct pbuf *)m); break;
    case HOG_PCB: tcp_close((struct tcp_pcb *)m); break; /* never used: frees it */
    case HOG_SEG: memp_free(MEMP_TCP_SEG, m); break;
    default: mem_free(m); break;
    }
}

/* "hog KIND" / "free KIND [N]": 1 if done (n: how many now held), 0 if bad. */
static int
ctl_hog(const char *cmd, int *n)
{
    int kind, take = strncmp(cmd, "hog ", 4) == 0, give = 1 << 30;
    void *m;

    if (!take && strncmp(cmd, "free ", 5) != 0)
        return 0;
    cmd += take ? 4 : 5;
    for (kind = 0; kind < HOG_KINDS; kind++)
        if (strncmp(cmd, hog_names[kind], strlen(hog_names[kind])) == 0)
            break;
    if (kind == HOG_KINDS)
        return 0;
    if (!take && cmd[strlen(hog_names[kind])] == ' ')
        give = atoi(cmd + strlen(hog_names[kind]) + 1);
    while (take && nhog[kind] < 2048 && (m = hog_one(kind)))
        hog[kind][nhog[kind]++] = m;
    while (!take && give-- > 0 && nhog[kind] > 0)
        hog_free(kind, hog[kind][--nhog[kind]]);
    *n = nhog[kind];
    return 1;
}

static void
ctl_run(char *line)
{
    char *cmd = strchr(line, ' ');
    int ok = 1, n;

    if (!cmd)
        return;
    *cmd++ = '\0';
    printf("ctl %s %s", line, cmd);
    if (strcmp(cmd, "link down") == 0) {
        cable = 0;
        netif_set_link_down(&tap_netif);
    } else if (strcmp(cmd, "link up") == 0) {
        cable = 1;
        netif_set_link_up(&tap_netif);
    } else if (strcmp(cmd, "netif down") == 0) {
        netif_set_down(&tap_netif);
    } else if (strcmp(cmd, "netif up") == 0) {
        netif_set_up(&tap_netif);
    } else if (strcmp(cmd, "addr drop") == 0) {
        netif_set_ipaddr(&tap_netif, IP4_ADDR_ANY4);
    } else if (strcmp(cmd, "addr restore") == 0) {
        netif_set_ipaddr(&tap_netif, &tap_addr);
    } else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
        paused = cmd[0] == 'p';
    } else if (strcmp(cmd, "stats") == 0) {
        ctl_stats(stdout);
    } else if (ctl_hog(cmd, &n)) {
        printf(" n=%d", n);
    } else {
        ok = 0;
    }
    printf(" %s\n", ok ? "ok" : "bad");
    fflush(stdout);
}

static void
ctl_poll(void)
{
    static char buf[256];
    static size_t len;
    char *nl;
    ssize_t n;

    if (ctl_fd < 0 || (n = read(ctl_fd, buf + len, sizeof buf - 1 - len)) <= 0)
        return;
    len += (size_t)n;
    buf[len] = '\0';
    while ((nl = strchr(buf, '\n'))) {
        *nl = '\0';
        ctl_run(buf);
        len -= (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, len + 1);
    }
    if (len == sizeof buf - 1)
        len = 0; /* a line too long: dropped */
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
    const char *gw = "192.168.77.1", *cfg = NULL, *ctl = NULL;
    static const rp_lwip_hooks hooks = {hook_log, hook_random, hook_idle};
    ip4_addr_t a, m, g;
    rp_cfg_error e;
    char *text;
    size_t len = 0;
    int opt;

    while ((opt = getopt(argc, argv, "t:i:m:g:c:C:")) != -1) {
        switch (opt) {
        case 't': tap = optarg; break;
        case 'i': ip = optarg; break;
        case 'm': mask = optarg; break;
        case 'g': gw = optarg; break;
        case 'c': cfg = optarg; break;
        case 'C': ctl = optarg; break;
        default:
            fprintf(stderr, "usage: rproxy-lwip -t TAP -i IP -m MASK -g GW -c CONFIG [-C FIFO]\n");
            return 2;
        }
    }
    if (!cfg || !(text = read_file(cfg, &len))) {
        fprintf(stderr, "rproxy-lwip: cannot read config %s\n", cfg ? cfg : "(none)");
        return 2;
    }
    if ((tap_fd = tap_open(tap, O_NONBLOCK)) < 0 || !ip4addr_aton(ip, &a) || !ip4addr_aton(mask, &m)
        || !ip4addr_aton(gw, &g)) {
        fprintf(stderr, "rproxy-lwip: tap %s: %s (or a bad address)\n", tap, strerror(errno));
        return 1;
    }
    /* read-write: the FIFO always has a writer, so no EOF between commands */
    if (ctl && (ctl_fd = open(ctl, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
        fprintf(stderr, "rproxy-lwip: control %s: %s\n", ctl, strerror(errno));
        return 1;
    }
    tap_addr = a;
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
        ctl_poll();
        if (paused)
            hook_idle(50); /* lwIP runs, rproxy reads nothing */
        else
            rp_poll(&proxy, 50);
    }
    {
        const rp_lwip_stats *st = rp_lwip_stats_get();
        fprintf(stderr, "rproxy-lwip: accepted %llu requests %llu; port: refused %u resets %u "
                "write_mem %u close_aborts %u socks_used %u peak %u; driver: nopbuf %lu\n",
                (unsigned long long)proxy.stats.accepted,
                (unsigned long long)proxy.stats.requests, st->accept_refused, st->resets,
                st->write_mem, st->close_aborts, st->socks_used, st->socks_peak, rx_nopbuf);
    }
    return 0;
}

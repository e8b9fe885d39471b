/*
 * main.c -- rproxy on Debian's lwIP (liblwip-dev: NO_SYS=0, pthreads as the
 * RTOS, sockets API, core locking, tapif) on Linux: the RTOS host test.
 *
 * SPDX-License-Identifier: MIT
 *
 *   rproxy-lwsock -t TAP -i IP -m MASK -g GW -c CONFIG [-b BLOB]...
 *   rproxy-lwrtos -t TAP -i IP -m MASK -g GW -c CONFIG [-b BLOB]... [-x callback]
 *
 * Built twice (tests/lwip-rtos/lwip-rtos.mk):
 *   rproxy-lwsock  port/sockets.c: the loop task calls rp_poll(p, 100) and
 *                  sleeps in lwip_poll();
 *   rproxy-lwrtos  port/lwip.c (raw API) under the RTOS: by default every
 *                  rproxy call is made under LOCK_TCPIP_CORE() from the loop
 *                  task; with -x callback every rproxy call runs in the
 *                  tcpip thread (tcpip_callback, then a 1 ms sys_timeout).
 * lwIP's tcpip thread is the library's own.  The library asserts its core
 * lock on every raw call (LWIP_ASSERT_CORE_LOCKED is on in the Debian
 * build), so a call outside the recipe aborts the test.
 *
 * The TAP netif is this file's, not the library's tapif: Debian's
 * liblwip0 2.1.3+dfsg1-2 allocates PBUF_POOL pbufs of 616 bytes (memp) but
 * fills them as 1536-byte ones (pbuf.c), so tapif's input, which copies each
 * frame into one pool pbuf, overflows the heap on every frame over ~590
 * bytes (ASan: heap-buffer-overflow in pbuf_take).  Frames here go into
 * PBUF_RAM pbufs of their exact size, from an input thread, to tcpip_input.
 *
 * The loop task runs on a 256 KiB stack painted with 0xA5; at exit the
 * untouched part gives the high-water mark (lock and sockets modes), and
 * what a thread doing nothing takes of it (glibc's descriptor and TLS).
 * -b BLOB: the file BLOB is read and served by rp_port_blob under that
 * name (the flash blob table of a board).  Sockets build: after SIGUSR1
 * the next 20 send/writev calls fail with ENOBUFS (a stack out of
 * buffers); after SIGUSR2 the next 2 socket() calls, after SIGHUP the next
 * 2 accept() calls fail with ENFILE (out of sockets; see test_accept).  Prints "ready" when listening; SIGTERM: exits 0 after one line
 * of counters on stderr.
 */
#include "rproxy.h"
#ifdef RP_TEST_RAW
#include "lwip.h"
#else
#include "sockets.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sockets.h"
#include "lwip/tcpip.h"
#include "lwip/timeouts.h"
#include "tests/lwip-host/hostboard.h"

#define STACK_SIZE (256 * 1024)
#define MAX_BLOBS 8

static struct netif tap_netif;
static rp_proxy proxy;
static volatile sig_atomic_t stop;
static volatile int inject_nobufs, inject_nfile_socket, inject_nfile_accept;
static sem_t started;
static const char *cfg_name;
static char *cfg_text;
static size_t cfg_len;
static int start_rc = -1, callback_mode;
static unsigned char loop_stack[STACK_SIZE] __attribute__((aligned(4096)));

#ifdef RP_TEST_RAW
static rp_lwip_blob blobs[MAX_BLOBS];
#else
static rp_sockets_blob blobs[MAX_BLOBS];
#endif
static size_t nblobs;

/* ==== TAP netif ==== */

static int tap_fd = -1;

static err_t
tap_linkoutput(struct netif *n, struct pbuf *p)
{
    (void)n;
    return tap_write_frame(tap_fd, p); /* ERR_IF while the kernel side is down */
}

static err_t
tap_netif_init(struct netif *n)
{
    tap_netif_setup(n, 0x71, tap_linkoutput);
    return ERR_OK;
}

/* The driver's receive task: each frame into an exact-size PBUF_RAM pbuf,
 * handed to the tcpip thread (netif->input is tcpip_input). */
static void *
tap_rx_task(void *arg)
{
    char frame[1600];

    (void)arg;
    for (;;) {
        ssize_t n = read(tap_fd, frame, sizeof frame);
        struct pbuf *p;
        if (n <= 0) {
            if (n < 0 && errno != EINTR && errno != EAGAIN)
                usleep(10000);
            continue;
        }
        if (!(p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_RAM)))
            continue; /* out of memory: dropped, TCP retransmits */
        pbuf_take(p, frame, (u16_t)n);
        if (tap_netif.input(p, &tap_netif) != ERR_OK)
            pbuf_free(p);
    }
    return NULL;
}

/* ==== Fault injection (sockets build) ==== */

#ifndef RP_TEST_RAW
/* port/sockets.c's send and writev (RP_SK_SEND, RP_SK_WRITEV): lwIP's, or
 * ENOBUFS while an injection is pending. */
#include "inject.h"

ssize_t
test_send(int s, const void *b, size_t n, int flags)
{
    if (inject_nobufs > 0 && __sync_fetch_and_sub(&inject_nobufs, 1) > 0) {
        errno = ENOBUFS;
        return -1;
    }
    return lwip_send(s, b, n, flags);
}

ssize_t
test_writev(int s, const struct iovec *v, int n)
{
    if (inject_nobufs > 0 && __sync_fetch_and_sub(&inject_nobufs, 1) > 0) {
        errno = ENOBUFS;
        return -1;
    }
    return lwip_writev(s, v, n);
}

/* While an ENFILE injection is pending, socket() fails, or accept() takes
 * the connection and closes it: what lwIP does when every one of its
 * MEMP_NUM_NETCONN sockets is taken (alloc_socket fails in lwip_accept). */
int
test_socket(int domain, int type, int protocol)
{
    if (inject_nfile_socket > 0 && __sync_fetch_and_sub(&inject_nfile_socket, 1) > 0) {
        errno = ENFILE;
        return -1;
    }
    return lwip_socket(domain, type, protocol);
}

int
test_accept(int s, struct sockaddr *a, socklen_t *len)
{
    int fd = lwip_accept(s, a, len);

    if (fd >= 0 && inject_nfile_accept > 0
        && __sync_fetch_and_sub(&inject_nfile_accept, 1) > 0) {
        lwip_close(fd);
        errno = ENFILE;
        return -1;
    }
    return fd;
}
#endif

/* ==== rproxy: configure and start (in whichever context owns rproxy) ==== */

static void
proxy_start(void)
{
    rp_cfg_error e;

    rp_init(&proxy);
    if (rp_config_parse(&proxy, cfg_text, cfg_len, &e) != RP_OK) {
        fprintf(stderr, "%s:%d: %s\n", cfg_name, e.line, e.msg);
        start_rc = 1;
    } else {
        start_rc = rp_start(&proxy) == RP_OK ? 0 : 1;
    }
}

#ifdef RP_TEST_RAW
/* -x callback: rproxy lives in the tcpip thread. */
static void
cb_tick(void *arg)
{
    (void)arg;
    rp_poll(&proxy, 0);
    if (!stop)
        sys_timeout(1, cb_tick, NULL);
    else
        sem_post(&started); /* last turn done: main may print and exit */
}

static void
cb_start(void *arg)
{
    (void)arg;
    proxy_start();
    sem_post(&started);
    if (start_rc == 0)
        sys_timeout(1, cb_tick, NULL);
}
#endif

/* The loop task (lock mode and the sockets build). */
static void *
loop_task(void *arg)
{
    (void)arg;
#ifdef RP_TEST_RAW
    LOCK_TCPIP_CORE();
    proxy_start();
    UNLOCK_TCPIP_CORE();
#else
    proxy_start();
#endif
    sem_post(&started);
    while (start_rc == 0 && !stop) {
#ifdef RP_TEST_RAW
        LOCK_TCPIP_CORE();
        rp_poll(&proxy, 0); /* the raw port never waits (no idle hook) */
        UNLOCK_TCPIP_CORE();
        usleep(1000);       /* a firmware task would block on a semaphore */
#else
        rp_poll(&proxy, 100); /* sleeps in lwip_poll() */
#endif
    }
    return NULL;
}

/* ==== Setup ==== */

static char *
read_file(const char *name, size_t *len)
{
    FILE *f = fopen(name, "rb");
    char *d = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0
        && (d = malloc((size_t)n + 1)) && fread(d, 1, (size_t)n, f) == (size_t)n) {
        d[n] = '\0';
        *len = (size_t)n;
    } else {
        free(d);
        d = NULL;
    }
    fclose(f);
    return d;
}

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        inject_nobufs = 20;
    else if (sig == SIGUSR2)
        inject_nfile_socket = 2;
    else if (sig == SIGHUP)
        inject_nfile_accept = 2;
    else
        stop = 1;
}

static void
tcpip_ready(void *arg)
{
    sem_post((sem_t *)arg);
}

static size_t
stack_high_water(void)
{
    size_t i = 0;

    while (i < STACK_SIZE && loop_stack[i] == 0xA5)
        i++;
    return STACK_SIZE - i;
}

static void *
idle_task(void *arg)
{
    return arg;
}

/* What a thread that does nothing takes of the same painted stack: glibc
 * keeps the thread descriptor and TLS there.  Subtracted from the loop's. */
static size_t
thread_overhead(void)
{
    pthread_attr_t attr;
    pthread_t t;
    size_t n;

    memset(loop_stack, 0xA5, sizeof loop_stack);
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, loop_stack, sizeof loop_stack);
    if (pthread_create(&t, &attr, idle_task, NULL) != 0)
        return 0;
    pthread_join(t, NULL);
    n = stack_high_water();
    return n;
}

int
main(int argc, char **argv)
{
    const char *tap = NULL, *ip = NULL, *mask = "255.255.255.0", *gw = NULL;
    ip4_addr_t a, m, g;
    pthread_attr_t attr;
    pthread_t loop, rx;
    sem_t up;
    int o;
    size_t len, overhead = 0;
    struct sigaction sa;
#ifdef RP_TEST_RAW
    rp_lwip_hooks hooks = {hook_log, hook_random, NULL};
#else
    rp_sockets_hooks hooks = {hook_log, hook_random};
#endif

    while ((o = getopt(argc, argv, "t:i:m:g:c:b:x:")) != -1) {
        switch (o) {
        case 't': tap = optarg; break;
        case 'i': ip = optarg; break;
        case 'm': mask = optarg; break;
        case 'g': gw = optarg; break;
        case 'c': cfg_name = optarg; break;
        case 'x': callback_mode = strcmp(optarg, "callback") == 0; break;
        case 'b':
            if (nblobs == MAX_BLOBS || !(blobs[nblobs].data = read_file(optarg, &len))) {
                fprintf(stderr, "rproxy-lwip: cannot read blob %s\n", optarg);
                return 2;
            }
            blobs[nblobs].name = optarg;
            blobs[nblobs++].len = len;
            break;
        default:
            fprintf(stderr, "usage: %s -t TAP -i IP -m MASK -g GW -c CONFIG [-b BLOB]... "
                    "[-x callback]\n", argv[0]);
            return 2;
        }
    }
    if (!tap || !ip || !gw || !cfg_name || !(cfg_text = read_file(cfg_name, &cfg_len))
        || !ip4addr_aton(ip, &a) || !ip4addr_aton(mask, &m) || !ip4addr_aton(gw, &g)) {
        fprintf(stderr, "rproxy-lwip: bad arguments or unreadable config\n");
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    /* lwIP: the tcpip thread, then the TAP netif and its receive task */
    if ((tap_fd = tap_open(tap, 0)) < 0) {
        fprintf(stderr, "rproxy-lwip: tap %s: %s\n", tap, strerror(errno));
        return 1;
    }
    sem_init(&up, 0, 0);
    sem_init(&started, 0, 0);
    tcpip_init(tcpip_ready, &up);
    sem_wait(&up);
    LOCK_TCPIP_CORE();
    netif_add(&tap_netif, &a, &m, &g, NULL, tap_netif_init, tcpip_input);
    netif_set_default(&tap_netif);
    netif_set_up(&tap_netif);
    UNLOCK_TCPIP_CORE();
    if (pthread_create(&rx, NULL, tap_rx_task, NULL) != 0)
        return 1;

#ifdef RP_TEST_RAW
    rp_lwip_init(&hooks, blobs, nblobs);
    if (callback_mode) {
        tcpip_callback(cb_start, NULL);
        sem_wait(&started);
    }
#else
    rp_sockets_init(&hooks, blobs, nblobs);
#endif
    if (!callback_mode) {
        overhead = thread_overhead();
        memset(loop_stack, 0xA5, sizeof loop_stack);
        pthread_attr_init(&attr);
        pthread_attr_setstack(&attr, loop_stack, sizeof loop_stack);
        if (pthread_create(&loop, &attr, loop_task, NULL) != 0) {
            fprintf(stderr, "rproxy-lwip: cannot start the loop task\n");
            return 1;
        }
        sem_wait(&started);
    }
    if (start_rc != 0)
        return 1;
    printf("ready %s\n", ip);
    fflush(stdout);
    while (!stop)
        pause();
    if (callback_mode)
        sem_wait(&started); /* cb_tick saw stop */
    else
        pthread_join(loop, NULL);

    fprintf(stderr, "rproxy-lwip: accepted %llu requests %llu r2xx %llu r5xx %llu timeouts %llu "
            "accept_errors %llu;",
            (unsigned long long)proxy.stats.accepted, (unsigned long long)proxy.stats.requests,
            (unsigned long long)proxy.stats.responses[2],
            (unsigned long long)proxy.stats.responses[5],
            (unsigned long long)proxy.stats.timeouts,
            (unsigned long long)proxy.stats.accept_errors);
#ifdef RP_TEST_RAW
    {
        const rp_lwip_stats *st = rp_lwip_stats_get();
        fprintf(stderr, " port: refused %u resets %u write_mem %u close_aborts %u peak %u;",
                st->accept_refused, st->resets, st->write_mem, st->close_aborts, st->socks_peak);
    }
#else
    {
        const rp_sockets_stats *st = rp_sockets_stats_get();
        fprintf(stderr, " port: refused %u connect_nomem %u resets %u nobufs %u peak %u;",
                st->accept_refused, st->connect_nomem, st->resets, st->nobufs,
                st->socks_peak);
    }
#endif
    if (!callback_mode)
        fprintf(stderr, " loop stack high-water %zu bytes (of which the thread's descriptor"
                " and TLS %zu)", stack_high_water(), overhead);
    fprintf(stderr, "\n");
    return 0;
}

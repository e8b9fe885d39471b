/*
 * hostboard.h -- what the two lwIP host test programs share as a "board"
 * (tests/lwip-host/main.c, NO_SYS=1; tests/lwip-rtos/main.c, NO_SYS=0): the
 * TAP device under their netif, and the board hooks (clock, log, random).
 *
 * SPDX-License-Identifier: MIT
 *
 * For one translation unit; the includer has included rproxy.h, <fcntl.h>,
 * <sys/ioctl.h>, <sys/random.h>, <time.h>, <linux/if_tun.h>, an <*if.h> with
 * struct ifreq, lwip/netif.h and lwip/etharp.h.
 */
#ifndef RP_TEST_HOSTBOARD_H
#define RP_TEST_HOSTBOARD_H

/* Open the existing TAP device `name` (flags: O_NONBLOCK or 0): the fd or -1. */
static int
tap_open(const char *name, int flags)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | flags);

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

/* One frame out: ERR_OK, ERR_BUF (too big) or ERR_IF (the TAP refused it:
 * queue full, or its kernel side down; TCP retransmits). */
static err_t
tap_write_frame(int fd, struct pbuf *p)
{
    char frame[1600];

    if (p->tot_len > sizeof frame)
        return ERR_BUF;
    pbuf_copy_partial(p, frame, p->tot_len, 0);
    return write(fd, frame, p->tot_len) == (ssize_t)p->tot_len ? ERR_OK : ERR_IF;
}

/* The netif's init: Ethernet with ARP, MTU 1500, MAC 02:00:00:00:72:mac5,
 * link up, frames out through out. */
static void
tap_netif_setup(struct netif *n, uint8_t mac5, netif_linkoutput_fn out)
{
    static const uint8_t mac[5] = {0x02, 0x00, 0x00, 0x00, 0x72};

    n->name[0] = 't';
    n->name[1] = 'p';
    n->output = etharp_output;
    n->linkoutput = out;
    n->mtu = 1500;
    n->hwaddr_len = 6;
    memcpy(n->hwaddr, mac, 5);
    n->hwaddr[5] = mac5;
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_LINK_UP;
}

/* The host has a clock: this replaces the port's weak rp_port_time (0). */
int64_t
rp_port_time(void)
{
    return (int64_t)time(NULL);
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

#endif

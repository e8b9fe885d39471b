/* bench/shareview.c -- N viewers of one stream for bench/share.sh: opens N
 * connections to 127.0.0.1:PORT, sends "GET PATH HTTP/1.1" on each, and
 * counts the bytes that come back for SECS seconds (epoll, one thread).
 * Prints one line:
 *   viewers N connected C ok200 K bytes B secs S min M max X closed Z
 * ok200: responses whose status line says 200; min/max: bytes of the viewer
 * that got the least / the most; closed: connections the proxy closed.
 *
 *   shareview PORT PATH N SECS
 * Linux, C99 + POSIX/epoll; no dependencies. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int port, n, i, ep, connected = 0, ok = 0, closed = 0;
    double secs, t0, end;
    unsigned long long total = 0, *got, mn = ~0ull, mx = 0;
    char req[512], buf[65536];
    int *seen;
    struct epoll_event ev, evs[256];
    if (argc != 5)
        return fprintf(stderr, "usage: shareview PORT PATH N SECS\n"), 2;
    port = atoi(argv[1]), n = atoi(argv[3]), secs = atof(argv[4]);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: cam.example\r\nUser-Agent: shareview\r\n\r\n", argv[2]);
    got = calloc((size_t)n, sizeof *got);
    seen = calloc((size_t)n, sizeof *seen);
    ep = epoll_create1(0);
    t0 = now();
    for (i = 0; i < n; i++) {
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET, a.sin_port = htons((unsigned short)port), a.sin_addr.s_addr = htonl(0x7f000001);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) || write(fd, req, strlen(req)) < 0) {
            close(fd);
            continue;
        }
        connected++;
        ev.events = EPOLLIN, ev.data.u64 = ((uint64_t)i << 32) | (uint32_t)fd;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    end = t0 + secs;
    while (now() < end) {
        int k, m = epoll_wait(ep, evs, 256, 100);
        for (k = 0; k < m; k++) {
            int fd = (int)(uint32_t)evs[k].data.u64, v = (int)(evs[k].data.u64 >> 32);
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                closed++;
                continue;
            }
            if (!seen[v]) {
                seen[v] = 1;
                if (r > 12 && !memcmp(buf + 8, " 200", 4))
                    ok++;
            }
            got[v] += (unsigned long long)r;
            total += (unsigned long long)r;
        }
    }
    for (i = 0; i < n; i++) {
        if (got[i] < mn) mn = got[i];
        if (got[i] > mx) mx = got[i];
    }
    printf("viewers %d connected %d ok200 %d bytes %llu secs %.3f min %llu max %llu closed %d\n",
           n, connected, ok, total, now() - t0, n ? mn : 0, mx, closed);
    return 0;
}

/* bench/sharedev.c -- the MJPEG camera for bench/share.sh: every connection
 * that sends a request head gets the same close-delimited
 * multipart/x-mixed-replace stream, FPS parts a second of SIZE bytes each
 * (FF D8 .. FF D9), all connections fed from one timer.  Unlike a real
 * camera it accepts any number of connections (nginx and HAProxy open one
 * per viewer).  A connection that has not taken the previous part yet skips
 * the next one (counted), as a camera would.  It rewrites STATSFILE after
 * every accept and close: "accepted N\nlive N\nmaxlive N\nskipped N\n".
 *
 *   sharedev PORT FPS SIZE STATSFILE
 * Linux, C99 + POSIX/epoll; no dependencies. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAXC 4096
struct conn { int fd, streaming; size_t hlen, off, len; char head[4096]; };
static struct conn *conns[MAXC];
static unsigned long accepted, live, maxlive, skipped;
static const char *statsfile;
static char *frame;
static size_t flen;

static void stats(void)
{
    char tmp[512];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", statsfile);
    if (!(f = fopen(tmp, "w")))
        return;
    fprintf(f, "accepted %lu\nlive %lu\nmaxlive %lu\nskipped %lu\n", accepted, live, maxlive, skipped);
    fclose(f);
    rename(tmp, statsfile);
}

static void drop(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c);
    live--;
    stats();
}

/* write what is pending; 0 when the connection died */
static int pump(int ep, struct conn *c)
{
    while (c->off < c->len) {
        const char *src = c->streaming == 1 ? c->head : frame;
        ssize_t n = write(c->fd, src + c->off, c->len - c->off);
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            drop(ep, c);
            return 0;
        }
        c->off += (size_t)n;
    }
    if (c->off == c->len && c->streaming == 1)
        c->streaming = 2; /* the head is out: parts from now on */
    {
        struct epoll_event ev = {.events = EPOLLIN | (c->off < c->len ? EPOLLOUT : 0), .data.fd = c->fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 1;
}

int main(int argc, char **argv)
{
    int port, fps, size, ls, ep, tf, one = 1, i;
    struct sockaddr_in a;
    struct itimerspec it;
    struct epoll_event ev, evs[256];
    static const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n"
                              "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    if (argc != 5)
        return fprintf(stderr, "usage: sharedev PORT FPS SIZE STATSFILE\n"), 2;
    port = atoi(argv[1]), fps = atoi(argv[2]), size = atoi(argv[3]), statsfile = argv[4];
    signal(SIGPIPE, SIG_IGN);
    frame = malloc((size_t)size + 128);
    flen = (size_t)sprintf(frame, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", size);
    frame[flen] = (char)0xff, frame[flen + 1] = (char)0xd8;
    for (i = 2; i < size - 2; i++)
        frame[flen + (size_t)i] = (char)(i * 131 + (i >> 8));
    frame[flen + (size_t)size - 2] = (char)0xff, frame[flen + (size_t)size - 1] = (char)0xd9;
    memcpy(frame + flen + (size_t)size, "\r\n", 2);
    flen += (size_t)size + 2;
    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET, a.sin_port = htons((unsigned short)port), a.sin_addr.s_addr = htonl(0x7f000001);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1024))
        return perror("sharedev: bind/listen"), 1;
    ep = epoll_create1(0);
    ev.events = EPOLLIN, ev.data.fd = ls;
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    tf = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    it.it_interval.tv_sec = 0, it.it_interval.tv_nsec = 1000000000L / fps;
    it.it_value = it.it_interval;
    timerfd_settime(tf, 0, &it, NULL);
    ev.events = EPOLLIN, ev.data.fd = tf;
    epoll_ctl(ep, EPOLL_CTL_ADD, tf, &ev);
    stats();
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1), k;
        for (k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (fd == ls) {
                int cfd;
                while ((cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *c;
                    if (cfd >= MAXC) { close(cfd); continue; }
                    c = calloc(1, sizeof *c);
                    c->fd = cfd;
                    conns[cfd] = c;
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    ev.events = EPOLLIN, ev.data.fd = cfd;
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
                    accepted++, live++;
                    if (live > maxlive)
                        maxlive = live;
                    stats();
                }
            } else if (fd == tf) {
                uint64_t x;
                int j;
                if (read(tf, &x, sizeof x) < 0)
                    continue;
                for (j = 0; j < MAXC; j++) {
                    struct conn *c = conns[j];
                    if (!c || c->streaming != 2)
                        continue;
                    if (c->off < c->len) { skipped++; continue; }
                    c->off = 0, c->len = flen;
                    pump(ep, c);
                }
            } else if (conns[fd]) {
                struct conn *c = conns[fd];
                if (evs[k].events & EPOLLIN) {
                    char b[4096];
                    ssize_t r = read(fd, b, sizeof b);
                    if (r == 0 || (r < 0 && errno != EAGAIN)) { drop(ep, c); continue; }
                    if (r > 0 && !c->streaming) {
                        size_t m = (size_t)r < sizeof c->head - c->hlen - 1 ? (size_t)r : sizeof c->head - c->hlen - 1;
                        memcpy(c->head + c->hlen, b, m);
                        c->hlen += m;
                        c->head[c->hlen] = 0;
                        if (strstr(c->head, "\r\n\r\n")) {
                            memcpy(c->head, hdr, sizeof hdr - 1);
                            c->streaming = 1, c->off = 0, c->len = sizeof hdr - 1;
                            if (!pump(ep, c))
                                continue;
                        }
                    }
                }
                if ((evs[k].events & EPOLLOUT) && conns[fd])
                    pump(ep, c);
            }
        }
    }
}

/*
 * template.c -- skeleton of the rproxy port contract for another TCP stack.
 *
 * SPDX-License-Identifier: MIT
 *
 * Copy to port/<stack>.c, drop the #if 0, fill in each function, and link it
 * instead of port/posix.c.  The contract is declared (and documented) at the
 * end of rproxy.h; port/posix.c is a complete example.  Rules for every
 * function: never block, never call back into rproxy, keep no proxy logic.
 * Sockets are small non-negative integers of your choosing (an index into a
 * table of your stack's connection handles works well).
 */
#if 0
#include "rproxy.h"

/* Open a listening socket on a (family 4/6, ip in network order, port in
 * host order), backlog connections queued.  Return it, or RP_EADDR. */
rp_sock
rp_port_listen(const rp_addr *a, int backlog)
{
    return RP_EADDR;
}

/* Take one pending connection from l: fill *peer, return a new
 * non-blocking socket; RP_EAGAIN if none is pending; RP_ENOMEM if no
 * socket or memory is left (rproxy pauses accepting for a while). */
rp_sock
rp_port_accept(rp_sock l, rp_addr *peer)
{
    return RP_EAGAIN;
}

/* Start a non-blocking connect to a.  Return the socket while the connect is
 * in progress (write readiness reports its end), RP_EREFUSED if it failed at
 * once, RP_ENOMEM when out of sockets. */
rp_sock
rp_port_connect(const rp_addr *a)
{
    return RP_EREFUSED;
}

/* Called once the connecting socket s reported write readiness: RP_OK if
 * connected, else RP_EREFUSED, RP_ETIMEDOUT or RP_EIO. */
int
rp_port_connect_result(rp_sock s)
{
    return RP_EIO;
}

/* Queue up to n bytes for sending.  Return how many were taken (> 0), or
 * RP_EAGAIN when the send buffer is full (report write readiness when it
 * drains), RP_ERESET / RP_EIO when the connection is gone. */
long
rp_port_send(rp_sock s, const void *buf, size_t n)
{
    return RP_EIO;
}

/* Copy up to n received bytes into buf.  Return the count (> 0), 0 once the
 * peer closed and everything was read, RP_EAGAIN if nothing is there, or
 * RP_ERESET / RP_EIO.  Only bytes consumed here should reopen the peer's
 * window (lwIP: tcp_recved), so a slow reader pushes back. */
long
rp_port_recv(rp_sock s, void *buf, size_t n)
{
    return RP_EIO;
}

/* Half-close: send FIN after the queued data; receiving continues. */
void
rp_port_shutdown(rp_sock s)
{
}

/* Close s (abort if it cannot close gracefully), free its slot, and forget
 * any readiness not yet reported: no event for s may come out after this. */
void
rp_port_close(rp_sock s)
{
}

/* Remember the interest (RP_EV_READ | RP_EV_WRITE, 0 = none) and the
 * pointer ud to report with s's events.  Return RP_OK or an error. */
int
rp_port_watch(rp_sock s, unsigned events, void *ud)
{
    return RP_OK;
}

/* Wait up to timeout_ms (0 = just check, -1 = forever) for readiness that
 * matches the interest: fill ev[0..max) with {ud, RP_EV_* bits} and return
 * the count.  Level-triggered: report again while still ready.  Report an
 * error or a reset as RP_EV_ERROR|RP_EV_READ|RP_EV_WRITE.  On a bare-metal
 * stack this is where the stack is driven (poll the NIC, run timers). */
int
rp_port_wait(rp_event *ev, int max, int timeout_ms)
{
    return 0;
}

/* Milliseconds from a monotonic clock (SysTick count, sys_now()). */
uint64_t
rp_port_now_ms(void)
{
    return 0;
}

/* Wall-clock seconds since 1970 (an RTC, SNTP), or 0 when unknown. */
int64_t
rp_port_time(void)
{
    return 0;
}

/* Gather send: the pieces in order, as rp_port_send would send them one
 * after another (a port without writev may loop over rp_port_send and stop
 * at the first short send). */
long
rp_port_sendv(rp_sock s, const rp_iov *iov, int n)
{
    long total = 0, r;
    int i;
    for (i = 0; i < n; i++) {
        if (iov[i].n == 0)
            continue;
        r = rp_port_send(s, iov[i].p, iov[i].n);
        if (r < 0)
            return total ? total : r;
        total += r;
        if ((size_t)r < iov[i].n)
            break;
    }
    return total;
}

/* Fill buf with n bytes from a cryptographically strong source (a hardware
 * RNG); RP_EIO if there is none. */
int
rp_port_random(void *buf, size_t n)
{
    return RP_EIO;
}

/* Find the blob called name (certificate, key): on a board, arrays compiled
 * into flash; *data must stay valid for the program's life.  RP_OK or
 * RP_ENOTFOUND. */
int
rp_port_blob(const char *name, const void **data, size_t *len)
{
    return RP_ENOTFOUND;
}

/* Write one log line (printf-style, without the trailing newline) to the
 * UART or console; may drop it. */
void
rp_port_log(int level, const char *fmt, ...)
{
}

#if RP_ENABLE_DNS
/* Only in builds with RP_ENABLE_DNS (`device POOL NAME:PORT`): start looking
 * up name for slot (a device index) without blocking -- your stack's
 * asynchronous resolver, or a resolver task -- and make rp_port_wait return
 * when the answer is in.  RP_OK (started), RP_ENOMEM (busy), RP_EINVAL, or
 * RP_ENOTIMPL when there is no resolver (rproxy then never asks again). */
int
rp_port_resolve(const char *name, int slot)
{
    return RP_ENOTIMPL;
}

/* The answer for slot: RP_EAGAIN while pending; RP_OK with out->family and
 * out->ip (leave out->port alone) set to the first usable address; or
 * RP_ENOTFOUND / RP_ETIMEDOUT / RP_EIO.  The slot is free afterwards. */
int
rp_port_resolve_result(int slot, rp_addr *out)
{
    return RP_EINVAL;
}
#endif

#if RP_ENABLE_ASSERT
/* Only in builds with RP_ENABLE_ASSERT (tests): an internal invariant broke.
 * Report file:line and the expression (UART), then stop -- never return. */
void
rp_port_assert(const char *file, int line, const char *expr)
{
    for (;;)
        ;
}
#endif
#endif

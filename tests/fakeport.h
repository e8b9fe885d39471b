/*
 * fakeport.h -- a fake implementation of rproxy's port contract for unit
 * tests: no sockets, no clock, no randomness; the test decides everything.
 *
 * SPDX-License-Identifier: MIT
 *
 * Sockets are indexes into a static table (numbered from 3, like file
 * descriptors, and never reused until fp_reset_all, so a test can still ask
 * about a socket after rproxy closed it).  The fake keeps, per socket:
 *
 *   inbound   bytes the test pushed (fp_push) that rproxy has not received
 *             yet, then EOF (fp_eof) or a reset (fp_reset);
 *   outbound  bytes rproxy sent that the test has not taken (fp_take);
 *   sendcap   how many untaken bytes may pile up before rp_port_send says
 *             RP_EAGAIN (-1 = unlimited, 0 = a reader that reads nothing);
 *   interest  what rproxy last asked for with rp_port_watch, and its ud.
 *
 * rp_port_wait never blocks and is level-triggered: it reports READ when
 * interest has READ and inbound has bytes, EOF or a reset (or, for a
 * listener, a queued client); WRITE when interest has WRITE and the socket
 * is connected with send capacity left, or its connect just finished; ERROR
 * (with READ/WRITE as asked) for a reset or refused socket with any interest.
 *
 * Clients: fp_client_connect() queues a connection on a listener and
 * returns the socket rproxy will get from rp_port_accept.  Devices:
 * rp_port_connect records the target and applies the connect policy for
 * the target port (fp_connect_policy): complete at once, refuse (at once in
 * rp_port_connect, or later through readiness), or stay pending until the
 * test calls fp_connect_ok / fp_connect_refuse.
 *
 * Misuse by rproxy (any call on a socket it already closed or never got,
 * watch on a closed socket, ...) is counted in fp_misuse() and logged as
 * "# fakeport: ..." so tests can assert it stays 0.
 */
#ifndef FAKEPORT_H
#define FAKEPORT_H

#include <stddef.h>
#include <stdint.h>

#include "rproxy.h"

/** Socket table size (ids 3 .. FP_MAX_SOCKS+2). */
#define FP_MAX_SOCKS 512

/** Forget every socket, policy, blob and counter; clock back to 0. */
void fp_reset_all(void);

/* ---- clock ---- */
void fp_set_now(uint64_t ms);      /**< rp_port_now_ms() returns ms */
void fp_set_time(int64_t s);      /**< rp_port_time() = s + now_ms / 1000 */
void fp_advance(uint64_t ms);      /**< clock += ms */
uint64_t fp_now(void);

/* ---- listeners and clients ---- */
/** Make the next rp_port_listen fail with RP_EADDR (once). */
void fp_listen_fail_next(void);
/** The listener socket bound to port, or -1. */
int fp_listener(uint16_t port);
/** Queue a client from ip:port on the first listener; returns the socket
 *  rproxy will accept (-1 if there is no listener). */
int fp_client_connect(const char *ip, uint16_t port);
/** Same, on the listener bound to lport. */
int fp_client_connect_to(uint16_t lport, const char *ip, uint16_t port);
/** Make the next n rp_port_accept calls fail with RP_ENOMEM. */
void fp_accept_fail(int n);

/* ---- device connects ---- */
enum {
    FP_CONNECT_OK = 0,      /**< connected at once (reported writable) */
    FP_CONNECT_REFUSE,      /**< refused: readiness WRITE|ERROR, result RP_EREFUSED */
    FP_CONNECT_FAIL_NOW,    /**< rp_port_connect itself returns RP_EREFUSED */
    FP_CONNECT_PENDING      /**< never completes unless the test says so */
};
/** Policy for connects to port (0 = the default for every port). */
void fp_connect_policy(uint16_t port, int mode);
/** Finish a pending connect. */
void fp_connect_ok(int s);
void fp_connect_refuse(int s);
/** rp_port_connect calls so far (including ones that failed at once). */
int fp_connect_count(void);
/** The socket returned by the i-th rp_port_connect (0-based), or -1 when
 *  that call failed at once or i is out of range. */
int fp_connect_sock(int i);
/** The port the i-th rp_port_connect targeted (0 if out of range). */
uint16_t fp_connect_port(int i);
/** The nth (0-based) socket rproxy connected to port, or -1. */
int fp_device_sock(uint16_t port, int nth);
/** The newest connect socket with bytes rproxy sent on it that the test
 *  has not taken (a device with a request to answer), or -1. */
int fp_busy_device(void);
/** Connect target (device sockets) or peer (accepted sockets). */
const rp_addr *fp_sock_addr(int s);

/* ---- data ---- */
/** Bytes arrive on s for rproxy to receive. */
void fp_push(int s, const void *data, size_t n);
void fp_push_str(int s, const char *str);
/** The peer closed its side: after the pushed bytes, recv returns 0. */
void fp_eof(int s);
/** The peer reset: recv/send fail with RP_ERESET. */
void fp_reset(int s);
/** Take up to cap-1 bytes rproxy sent on s, NUL-terminate; returns the
 *  number taken.  Frees that much send capacity. */
size_t fp_take(int s, char *buf, size_t cap);
/** Bytes rproxy sent on s not yet taken. */
size_t fp_pending(int s);
/** Bytes pushed on s that rproxy has not received yet. */
size_t fp_unread(int s);
/** Total bytes rproxy ever sent / received on s. */
size_t fp_sent_total(int s);
size_t fp_recv_total(int s);
/** Untaken bytes allowed before send returns RP_EAGAIN (-1: unlimited). */
void fp_set_sendcap(int s, long cap);

/* ---- state rproxy left on a socket ---- */
unsigned fp_interest(int s);   /**< last rp_port_watch events */
int fp_closed(int s);          /**< rproxy called rp_port_close */
int fp_shut(int s);            /**< rproxy called rp_port_shutdown */
int fp_open_count(void);       /**< sockets handed to rproxy, not closed */
int fp_misuse(void);           /**< calls on closed/unknown sockets */

/* ---- the event loop ---- */
/** rp_port_wait calls so far, and the timeout the last one was given
 *  (the fake never blocks; a test checks rproxy did not ask it to). */
int fp_wait_count(void);
int fp_wait_timeout(void);

/* ---- misc ---- */
/** Register a blob for rp_port_blob (data is not copied). */
void fp_blob_add(const char *name, const void *data, size_t len);
/** 0: print "# log: ..." lines (default); 1: keep quiet. */
void fp_log_quiet(int quiet);
/** Log lines written so far, and whether any contained needle. */
int fp_log_count(void);
int fp_log_seen(const char *needle);

#if RP_ENABLE_DNS
/* ---- names (rp_port_resolve) ----
 * Each lookup rproxy starts is answered from the script below at its next
 * rp_port_resolve_result, unless answers are held (then RP_EAGAIN until
 * fp_dns_hold(0)).  A name with no script entry answers RP_ENOTFOUND. */
/** Answer name with ip ("10.0.0.7", "::1"; NULL for none) and rc (RP_OK,
 *  or a failure such as RP_ENOTFOUND / RP_EIO); replaces an earlier entry. */
void fp_dns_set(const char *name, const char *ip, int rc);
/** 1: lookups stay pending (a slow name server); 0: they answer. */
void fp_dns_hold(int hold);
/** 1: rp_port_resolve returns RP_ENOTIMPL (a port without a resolver). */
void fp_dns_notimpl(int on);
/** rp_port_resolve calls for name so far. */
int fp_dns_lookups(const char *name);
#endif

/* ---- proxies ---- */
/** A zero-filled rp_proxy from fresh anonymous pages (no RSS until
 *  touched), and its release. */
rp_proxy *fp_proxy_new(void);
void fp_proxy_free(rp_proxy *p);

#endif /* FAKEPORT_H */

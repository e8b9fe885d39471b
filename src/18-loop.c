/* ==== [18] Event loop: readiness, timers, listeners ====
 * rp_poll waits in the port, hands each report to its connection, then runs
 * the timers that are due.  Timers are a deadline per connection and one
 * "earliest deadline" hint; the full sweep runs only when the hint is due.
 * A listener that hits EMFILE pauses for RP_LISTEN_PAUSE_MS instead of
 * spinning.  Reports on connections go to the dispatcher of [9].  A turn
 * may be bounded (RP_TURN_MAX_EVENTS, RP_TURN_MAX_BYTES): rp_poll keeps the
 * reports it left in p->turn_ev for the next turn, and conn_free drops a
 * freed slot's from them as it does within a turn.
 * Owns: p->lsocks, p->batch, p->next_timer.  Calls: [8] [9] [13] [16] [24].
 * Called by: [19] (rp_poll). */
#include "rp_int.h"

/* Stop watching listener l for ms; timers_run resumes it. */
static void
listener_pause(rp_proxy *p, struct rp_lsock *l, uint32_t ms)
{
    rp_port_watch(l->sock, 0, l);
    l->paused_until = p->now + ms;
    timer_hint(p, l->paused_until);
}

static void
listener_event(rp_proxy *p, struct rp_lsock *l)
{
    int lsn = (int)(l - p->lsocks);
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    int i;
    for (i = 0; i < 64; i++) {
        rp_addr peer;
        rp_conn *c;
        rp_sock s;
#if RP_ENABLE_TLS
        if (CFG(p)->listeners[lsn].tls && !p->tls_top && p->tls_fresh == RP_MAX_TLS_CONNS &&
            !tls_evict(p, NULL, RP_TLS_EVICT_AGE_MS)) {
            /* no TLS slot: leave new clients in the kernel's queue until one
             * frees (tls_release), rather than accept and drop them */
            l->slot_wait = 1;
            listener_pause(p, l, RP_TLS_EVICT_AGE_MS); /* look again then */
            return;
        }
#endif
        if ((s = rp_port_accept(l->sock, &peer)) == RP_EAGAIN)
            return;
        if (s < 0) {
            p->stats.accept_errors++;
            listener_pause(p, l, RP_LISTEN_PAUSE_MS);
            RP_LOG(RP_LOG_WARN, ("accept failed (%s): pausing", rp_strerror(s)));
            return;
        }
        if ((c = conn_alloc(p, K_CLIENT)) == NULL) {
            p->stats.refused_conns++;
            rp_port_send(s, busy, sizeof(busy) - 1);
            rp_port_close(s);
            continue;
        }
        p->stats.accepted++;
        request_reset(c);
        c->sock = s;
        c->peer = peer;
        c->lsn = (uint8_t)lsn;
#if RP_ENABLE_TLS
        if (CFG(p)->listeners[lsn].tls && (c->tls = tls_take(p, &CFG(p)->listeners[lsn])) == NULL &&
            (!tls_evict(p, c, 0) || (c->tls = tls_take(p, &CFG(p)->listeners[lsn])) == NULL)) {
            p->stats.tls_refused++;
            conn_free(p, c);
            continue;
        }
#endif
#if RP_ENABLE_PROXY_PROTOCOL
        if (CFG(p)->listeners[lsn].proxy ? !proxy_accept(p, c) : client_admit(p, c))
            continue;
#else
        if (client_admit(p, c))
            continue;
#endif
        c->t_start = p->now;
        conn_rearm(p, c);
    }
}

/* A report from the port: a listener's, or a connection's (conn_event). */
void
on_event(rp_proxy *p, void *ud, unsigned ev)
{
    if (*(uint8_t *)ud == K_LISTENER) {
        listener_event(p, (struct rp_lsock *)ud);
    } else {
        CFG_ENTER(p, (rp_conn *)ud); /* its exchange's configuration */
        conn_event(p, (rp_conn *)ud, ev);
        CFG_LIVE(p);
    }
}

void
timers_run(rp_proxy *p)
{
    int i;
    p->next_timer = 0;
    for (i = 0; i < RP_MAX_LISTENERS; i++) {
        struct rp_lsock *l = &p->lsocks[i];
        if (l->sock < 0 || !l->paused_until)
            continue;
        if (l->paused_until <= p->now) {
            l->paused_until = 0;
            rp_port_watch(l->sock, RP_EV_READ, l);
        } else {
            timer_hint(p, l->paused_until);
        }
    }
    for (i = 0; i < RP_MAX_CONNS + RP_MAX_UPSTREAM; i++) {
        rp_conn *c = i < RP_MAX_CONNS ? &p->clients[i] : &p->devices[i - RP_MAX_CONNS];
        if (c->state == CS_FREE || !c->deadline)
            continue;
        if (c->deadline <= p->now) {
            TURN_COUNT(p, timers);
            CFG_ENTER(p, c);
            conn_timeout(p, c);
            CFG_LIVE(p);
        }
        else
            timer_hint(p, c->deadline);
    }
    health_run(p);
#if RP_ENABLE_DNS
    dns_run(p);
#endif
}

/* ==== [16] Health probes ====
 * Active health: each device of a pool with a `health` line gets one probe
 * at a time -- connect, "GET path" with Connection: close, read the status
 * line -- at most once per interval, and not at all while real traffic
 * keeps proving it alive (a battery sensor is not woken for nothing).
 * `fall` failed probes in a row take it out, `rise` passes bring it back.
 * Owns: DS_PCONNECT / DS_PROBE connections, the devices' probe fields.  Calls: [7] [8]
 * [9] [24].  Called by: [9] (conn_event, conn_timeout), [18] (timers). */
#include "rp_int.h"

/* Probe d ended, passed or not; it is freed. */
void
probe_finish(rp_proxy *p, rp_conn *d, int ok)
{
    int idx = d->device;
    rp_device *dv = &CFG(p)->devices[idx];
    const rp_pool *pl = &CFG(p)->pools[dv->pool];
    conn_free(p, d); /* a probe's slot: dv->probe goes back to NULL */
    dv->probes++;
    dv->probe_next = p->now + pl->interval_ms;
    timer_hint(p, dv->probe_next);
    if (ok) {
        dv->hc_fall = 0;
        if (dv->hc_down && ++dv->hc_rise >= pl->rise) {
            dv->hc_down = 0;
            dv->hc_rise = 0;
            RP_LOG(RP_LOG_WARN, ("device %d up: %d health probes passed", idx, pl->rise));
        }
        return;
    }
    dv->probe_failures++;
    dv->hc_rise = 0;
    DNS_SOON(p, dv); /* a named device may have moved */
    if (!dv->hc_down && ++dv->hc_fall >= pl->fall) {
        dv->hc_down = 1;
        dv->hc_fall = 0;
        RP_LOG(RP_LOG_WARN, ("device %d down: %d health probes failed", idx, pl->fall));
    }
}

static void
probe_start(rp_proxy *p, int idx)
{
    rp_device *dv = &CFG(p)->devices[idx];
    const rp_pool *pl = &CFG(p)->pools[dv->pool];
    rp_conn *d = conn_alloc(p, K_DEVICE);
    rp_sock s;
    wbuf w;
#if RP_ENABLE_LIMITS
    if (d && dv->max_conns && dv->active + dv->idle >= dv->max_conns) {
        conn_free(p, d); /* the probe counts toward max_conns: traffic vouches now */
        d = NULL;
    }
#endif
    if (!d) { /* every slot busy with traffic: that is not the device's fault */
        dv->probe_next = p->now + pl->interval_ms;
        return;
    }
    d->device = (uint8_t)idx;
    conn_state(d, DS_PCONNECT); /* a free slot's sock is -1 */
    if ((s = rp_port_connect(&dv->addr)) < 0) {
        probe_finish(p, d, 0);
        return;
    }
    d->sock = s;
    dv->probe = d;
#if RP_ENABLE_TLS && RP_ENABLE_TLS_DEVICE
    if (dv->tls && (d->tls = tls_take_client(p, dv)) == NULL) {
        dv->probe_next = p->now + pl->interval_ms; /* no TLS slot: not its fault */
        conn_free(p, d);
        return;
    }
#endif
    w = buf_writer(p, &d->out);
    w_put(&w, S("GET "));
    w_cstr(&w, pl->health_path);
    w_put(&w, S(" HTTP/1.1\r\nHost: "));
    w_dev_id(&w, dv); /* NAME:PORT for a named device */
    w_put(&w, S("\r\nUser-Agent: rproxy-health\r\nConnection: close\r\n\r\n"));
    buf_commit(&d->out, &w);
    conn_rearm(p, d);
}

void
probe_event(rp_proxy *p, rp_conn *d)
{
    rp_device *dv = &CFG(p)->devices[d->device];
    const rp_pool *pl = &CFG(p)->pools[dv->pool];
    if (d->state == DS_PCONNECT) {
        int rc = rp_port_connect_result(d->sock);
        if (rc == RP_EAGAIN)
            return;
        if (rc != RP_OK) {
            probe_finish(p, d, 0);
            return;
        }
        conn_state(d, DS_PROBE);
        d->ready |= RP_EV_WRITE;
    }
    conn_write(p, d);
    conn_read(p, d);
    if (buf_len(&d->in) >= 12) { /* "HTTP/1.x NNN" */
        const char *b = d->in.d + d->in.r;
        int st = 0, i, ok;
        if (memcmp(b, "HTTP/1.", 7) == 0 && b[8] == ' ')
            for (i = 9; i < 12 && b[i] >= '0' && b[i] <= '9'; i++)
                st = st * 10 + (b[i] - '0');
        ok = pl->expect ? st == pl->expect : (st >= 200 && st < 400);
        probe_finish(p, d, ok);
        return;
    }
    if (d->flags & (F_EOF | F_DEAD)) {
        probe_finish(p, d, 0);
        return;
    }
    conn_rearm(p, d);
}

/* Start the probes that are due; hint the loop at the next ones. */
void
health_run(rp_proxy *p)
{
    int i;
    for (i = 0; i < CFG(p)->ndevices; i++) {
        rp_device *dv = &CFG(p)->devices[i];
        const rp_pool *pl = &CFG(p)->pools[dv->pool];
        if (!pl->health || dv->probe || dv->weight == 0 || !HAS_ADDR(dv))
            continue;
#if RP_ENABLE_RUNTIME
        if (dv->admin == RP_ADMIN_MAINT)
            continue;
#endif
        if (dv->probe_next <= p->now) {
            if (!dv->hc_down && dv->last_ok && dv->last_ok + pl->interval_ms > p->now)
                dv->probe_next = dv->last_ok + pl->interval_ms; /* traffic vouched */
            else
                probe_start(p, i);
        }
        if (!dv->probe)
            timer_hint(p, dv->probe_next);
    }
}

/* ==== [26] Header rules (issue 15) ====
 * Named sets of `headers NAME request|response set|add|del FIELD "VALUE"`
 * lines, used by `listen ... headers=NAME` and `route ... headers=NAME`.
 * They edit a head rproxy has already written (after its own hop-by-hop
 * handling, so they see what the peer would): every field a set or del
 * rule names is dropped, then set and add rules append theirs, the
 * listener's first, then the route's; a route rule that sets or deletes a
 * name overrides the listener's rules for it.  The config refuses rules on
 * framing, hop-by-hop fields and Host, so the framing rproxy wrote stays.
 * Response rules run when the head goes to the client -- forwarded or a
 * cache hit -- never on the head the cache stores.
 * Owns: nothing.  Calls: [1].  Called by: [10] [11] [12]. */
#include "rp_int.h"

#if RP_ENABLE_HEADER_RULES

/* Does a set or del rule of set s (index + 1; 0: none) for this direction
 * name the field? */
static int
hr_claims(const rp_config *cf, int s, int resp, rp_str name)
{
    int i;
    for (i = 0; s && i < cf->nhrules; i++) {
        const rp_hrule *r = &cf->hrules[i];
        if (r->set + 1 == s && r->response == resp && r->action != RP_HR_ADD &&
            str_ieq(name, r->name, strlen(r->name)))
            return 1;
    }
    return 0;
}

/* Apply c's listener and route rules for requests (resp 0) or responses
 * (resp 1) to the head in w: a start line, then "Name: value\r\n" lines
 * (no blank line yet). */
void
w_hrules(const rp_proxy *p, const rp_conn *c, wbuf *w, int resp)
{
    const rp_config *cf = CFG(p);
    int sets[2], k, i;
    size_t at, e, j;
    sets[0] = c->lsn < cf->nlisteners ? cf->listeners[c->lsn].headers : 0;
    sets[1] = c->route != NO_ROUTE ? cf->routes[c->route].headers : 0;
    if (sets[0] == sets[1])
        sets[0] = 0; /* one set on both: applied once */
    if ((!sets[0] && !sets[1]) || w->full)
        return;
    for (at = 0; at + 1 < w->n && !(w->p[at] == '\r' && w->p[at + 1] == '\n'); at++)
        ;
    at += 2; /* past the start line */
    while (at < w->n) {
        rp_str name;
        for (e = at; e + 1 < w->n && !(w->p[e] == '\r' && w->p[e + 1] == '\n'); e++)
            ;
        if (e + 1 >= w->n)
            break;
        for (j = at; j < e && w->p[j] != ':'; j++)
            ;
        name.p = w->p + at, name.n = j - at;
        if (hr_claims(cf, sets[0], resp, name) || hr_claims(cf, sets[1], resp, name)) {
            memmove(w->p + at, w->p + e + 2, w->n - (e + 2));
            w->n -= e + 2 - at;
        } else {
            at = e + 2;
        }
    }
    for (k = 0; k < 2; k++)
        for (i = 0; sets[k] && i < cf->nhrules; i++) {
            const rp_hrule *r = &cf->hrules[i];
            rp_str name, v;
            if (r->set + 1 != sets[k] || r->response != resp || r->action == RP_HR_DEL)
                continue;
            name.p = r->name, name.n = strlen(r->name);
            if (k == 0 && hr_claims(cf, sets[1], resp, name))
                continue; /* the route's rule for this name wins */
            v.p = r->value, v.n = strlen(r->value);
            w_field(w, name.p, name.n, v);
        }
}

#endif /* RP_ENABLE_HEADER_RULES */

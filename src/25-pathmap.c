/* ==== [25] Path mapping: device UIs mounted under a path (issue 15) ====
 * `route path=/cam1/ pool=cam1 rewrite=/`: the request's path prefix
 * /cam1/ becomes / toward the device (the rest and the query kept), and
 * what the device's response says about its own URLs comes back under
 * /cam1/: Location, Content-Location, Refresh's url= and Set-Cookie's
 * Path= (nginx's proxy_redirect default and proxy_cookie_path).  A value
 * is mapped when it is path-absolute under the device prefix, or absolute
 * (http://, https://, //) with the device's address or the Host it was
 * sent as authority and a path under the prefix; it then gets the client's
 * scheme and Host (path-absolute when the client's Host is not known).
 * Relative references, other hosts and paths outside the prefix pass
 * unchanged.  Bodies are never rewritten.
 * Both prefixes end in '/' (the config checks), so /cam1/ never matches
 * /cam10/; a path with a dot-segment (".", "..", "%2e", also between "\",
 * "%2f", "%5c") on such a route is refused with 400 (path_climbs), so a
 * request cannot climb out of the mount on the device.
 * Owns: nothing.  Calls: [1] [2].  Called by: [10] [11] [12] [13]. */
#include "rp_int.h"

#if RP_ENABLE_PATH_MAP

/* The request target toward the device: route r's rewrite= in place of
 * its path= prefix (which the target has: the route matched it). */
void
w_target_mapped(wbuf *w, const rp_route *r, rp_str target)
{
    size_t n = strlen(r->path);
    w_cstr(w, r->rewrite);
    if (target.n >= n) /* always: the route matched this prefix */
        w_put(w, target.p + n, target.n - n);
}

/* 1 when the path part of target (before '?') has a dot-segment, with
 * '/', '\', %2f, %5c as separators and '.', %2e as dots. */
int
path_climbs(rp_str t)
{
    size_t i = 0, dots = 0, other = 0;
    for (;;) {
        int sep = i == t.n || t.p[i] == '?' || t.p[i] == '#' || t.p[i] == '/' || t.p[i] == '\\';
        size_t adv = 1;
        if (!sep && t.p[i] == '%' && t.n - i >= 3) {
            int c = lower((unsigned char)t.p[i + 2]);
            if (t.p[i + 1] == '2' && c == 'f')
                sep = 1;
            else if (t.p[i + 1] == '5' && c == 'c')
                sep = 1;
            else if (t.p[i + 1] == '2' && c == 'e')
                dots++, sep = -1;
            adv = 3;
        }
        if (sep == 1) {
            if (!other && (dots == 1 || dots == 2))
                return 1;
            dots = other = 0;
            if (i == t.n || t.p[i] == '?' || t.p[i] == '#')
                return 0;
        } else if (sep == 0) {
            if (t.p[i] == '.')
                dots++;
            else
                other++;
        }
        i += adv;
    }
}

/* The mapping context of client c's exchange with device d (or NULL when
 * c's route has no rewrite=); buf (>= 56 bytes) holds the device address. */
const hmap *
hmap_of(const rp_proxy *p, const rp_conn *c, const rp_conn *d, hmap *hm, char *buf)
{
    const rp_route *r;
    const rp_pool *pl;
    wbuf w;
    if (c->route == NO_ROUTE || !(r = &CFG(p)->routes[c->route])->rewrite)
        return NULL;
    pl = &CFG(p)->pools[r->pool];
    hm->cpath.p = r->path, hm->cpath.n = strlen(r->path);
    hm->dpath.p = r->rewrite, hm->dpath.n = strlen(r->rewrite);
    hm->scheme.p = "https", hm->scheme.n = c->tls ? 5 : 4;
    hm->chost.p = c->mhost, hm->chost.n = strlen(c->mhost);
    hm->dhost = hm->chost;
    if (pl->host)
        hm->dhost.p = pl->host, hm->dhost.n = strlen(pl->host);
    w.p = buf, w.n = 0, w.cap = 56, w.full = 0;
    if (d && d->device != NO_DEVICE)
        w_addr(&w, &DEVC(p, d)->addr);
    hm->daddr.p = buf, hm->daddr.n = w.full ? 0 : w.n;
    return hm;
}

/* How path maps: the bytes of it the device prefix covers (*skip) and the
 * client prefix they become (*to); 0 when it is not under the prefix.
 * "/api/v2" (the prefix without its '/') maps to "/cam1" too. */
static int
path_under(rp_str path, const hmap *hm, size_t *skip, rp_str *to)
{
    size_t n = hm->dpath.n;
    *to = hm->cpath;
    if (path.n >= n && memcmp(path.p, hm->dpath.p, n) == 0) {
        *skip = n;
        return 1;
    }
    if (n > 1 && path.n >= n - 1 && memcmp(path.p, hm->dpath.p, n - 1) == 0 &&
        (path.n == n - 1 || path.p[n - 1] == '?' || path.p[n - 1] == '#')) {
        *skip = n - 1, to->n--;
        return 1;
    }
    return 0;
}

/* Path under the device prefix: written mapped, 1; else 0, nothing written. */
static int
map_path(wbuf *w, rp_str path, const hmap *hm)
{
    rp_str to;
    size_t n;
    if (!path_under(path, hm, &n, &to))
        return 0;
    w_str(w, to);
    w_put(w, path.p + n, path.n - n);
    return 1;
}

/* Does authority a name the device (its address or the Host it was sent)? */
static int
is_device(rp_str a, const hmap *hm)
{
    return a.n && (str_ieq2(a, hm->daddr) || str_ieq2(a, hm->dhost));
}

/* A URI reference v mapped (1, written) or left alone (0, nothing written). */
int
map_url(wbuf *w, rp_str v, const hmap *hm)
{
    rp_str a, path;
    size_t i, start;
    if (v.n >= 2 && v.p[0] == '/' && v.p[1] == '/')
        start = 2;
    else if (v.n > 7 && str_ieq((rp_str){v.p, 7}, S("http://")))
        start = 7;
    else if (v.n > 8 && str_ieq((rp_str){v.p, 8}, S("https://")))
        start = 8;
    else if (v.n && v.p[0] == '/')
        return map_path(w, v, hm);
    else
        return 0; /* relative: resolves against the client's URL as it is */
    for (i = start; i < v.n && v.p[i] != '/' && v.p[i] != '?' && v.p[i] != '#'; i++)
        ;
    a.p = v.p + start, a.n = i - start;
    path.p = v.p + i, path.n = v.n - i;
    if (!is_device(a, hm))
        return 0;
    if (path.n == 0 || path.p[0] != '/') { /* "http://dev" or "http://dev?q": path "/" */
        if (hm->dpath.n != 1)
            return 0;
    } else {
        rp_str to;
        size_t n;
        if (!path_under(path, hm, &n, &to))
            return 0;
    }
    if (hm->chost.n) {
        w_str(w, hm->scheme);
        w_put(w, S("://"));
        w_str(w, hm->chost);
    }
    if (path.n == 0 || path.p[0] != '/') {
        w_str(w, hm->cpath);
        w_str(w, path);
    } else {
        map_path(w, path, hm);
    }
    return 1;
}

/* Refresh: "5; url=/login" (url= any case, optionally quoted). */
static void
map_refresh(wbuf *w, rp_str v, const hmap *hm)
{
    size_t i = 0, j;
    rp_str u;
    while (i < v.n && v.p[i] != ';' && v.p[i] != ',')
        i++;
    for (j = i + 1; j < v.n && (v.p[j] == ' ' || v.p[j] == '\t'); j++)
        ;
    if (j + 4 > v.n || !str_ieq((rp_str){v.p + j, 3}, S("url")))
        goto plain;
    j += 3;
    while (j < v.n && (v.p[j] == ' ' || v.p[j] == '\t'))
        j++;
    if (j >= v.n || v.p[j] != '=')
        goto plain;
    j++;
    while (j < v.n && (v.p[j] == ' ' || v.p[j] == '\t'))
        j++;
    if (j < v.n && (v.p[j] == '\'' || v.p[j] == '"'))
        j++;
    u.p = v.p + j, u.n = v.n - j;
    if (u.n && j > 0 && (v.p[j - 1] == '\'' || v.p[j - 1] == '"') && v.p[v.n - 1] == v.p[j - 1])
        u.n--;
    w_put(w, v.p, j);
    if (!map_url(w, u, hm))
        w_str(w, u);
    w_put(w, u.p + u.n, v.n - j - u.n);
    return;
plain:
    w_str(w, v);
}

/* Set-Cookie: its Path= attribute (not the name=value pair) mapped. */
static void
map_cookie(wbuf *w, rp_str v, const hmap *hm)
{
    size_t i = 0, k;
    while (i < v.n && v.p[i] != ';')
        i++;
    w_put(w, v.p, i);
    while (i < v.n) { /* at a ';' */
        rp_str at;
        size_t s = i + 1;
        for (k = s; k < v.n && v.p[k] != ';'; k++)
            ;
        at.p = v.p + s, at.n = k - s;
        str_trim(&at);
        if (at.n >= 5 && str_ieq((rp_str){at.p, 5}, S("path="))) {
            rp_str pv = {at.p + 5, at.n - 5};
            w_put(w, v.p + i, (size_t)(pv.p - (v.p + i)));
            if (!(pv.n && pv.p[0] == '/' && map_path(w, pv, hm)))
                w_str(w, pv);
            w_put(w, pv.p + pv.n, (size_t)(v.p + k - (pv.p + pv.n)));
        } else {
            w_put(w, v.p + i, k - i);
        }
        i = k;
    }
}

/* Header h as the client sees it (1: written), or 0: not one mapped. */
int
map_field(wbuf *w, const rp_header *h, const hmap *hm)
{
    int refresh = h->id == H_OTHER && str_ieq(h->name, S("refresh"));
    if (h->id != H_LOCATION && h->id != H_CONTENT_LOCATION && h->id != H_SET_COOKIE &&
        !refresh)
        return 0;
    w_str(w, h->name);
    w_put(w, S(": "));
    if (h->id == H_SET_COOKIE)
        map_cookie(w, h->value, hm);
    else if (refresh)
        map_refresh(w, h->value, hm);
    else if (!map_url(w, h->value, hm))
        w_str(w, h->value);
    w_put(w, S("\r\n"));
    return 1;
}

/* Keep the client's Host for the mapping ("" when longer than the slot). */
void
mhost_keep(rp_conn *c, rp_str host)
{
    size_t n = host.n < sizeof(c->mhost) ? host.n : 0;
    memcpy(c->mhost, host.p, n);
    c->mhost[n] = 0;
}

#endif /* RP_ENABLE_PATH_MAP */

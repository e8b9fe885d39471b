/* ==== [8] Connections: slots, interest, timers, closing ====
 * Client and device connections share one struct and live in two fixed
 * arrays with free lists.  Interest (read/write) is computed from buffer
 * levels after every turn and handed to the port only when it changed.
 * Each connection has at most one timer; its kind follows the state:
 *
 *   state          waits for                     timer         owns
 *   CS_HEAD        a request head                head / idle   in: head
 *   CS_FWD         body bytes, the response      client        in, out
 *   CS_TUNNEL      bytes either way              tunnel        in, out
 *   CS_CLOSING     out drained, then peer FIN    client/linger out
 *   DS_CONNECTING  the TCP connect               connect       out: head
 *   DS_BUSY        response bytes                device        in, out
 *   DS_IDLE        reuse (or the device's FIN)   device_idle   --
 *   DS_PROBE       a health probe's status line  probe timeout in, out
 *   CS_LOCAL       room to write the status page client        out
 *   CS_CACHE       room to send a hit's body     client        out, entry
 *   CS_CWAIT       another request's cache fill  cache lock    in: head
 */

typedef struct rp_conn rp_conn;

enum { K_LISTENER = 1, K_CLIENT, K_DEVICE };
enum {
    CS_FREE, CS_HEAD, CS_FWD, CS_TUNNEL, CS_CLOSING, CS_LOCAL, CS_CACHE, CS_CWAIT,
    DS_CONNECTING, DS_BUSY, DS_IDLE, DS_PROBE
};
enum { M_NONE, M_LENGTH, M_CHUNKED, M_DECHUNK, M_CLOSE, M_TUNNEL };
enum {
    T_NONE, T_HEAD, T_IDLE, T_CLIENT, T_TUNNEL, T_LINGER,
    T_CONNECT, T_DEVICE, T_DIDLE, T_PROBE, T_HANDSHAKE, T_CWAIT
};

/* Bytes of a cache hit's body still to send from the arena. */
#if RP_ENABLE_CACHE
#define HIT_LEFT(c) ((c)->cleft)
#else
#define HIT_LEFT(c) 0
#endif

#define F_EOF (1u << 0)       /* peer sent FIN */
#define F_DEAD (1u << 1)      /* socket failed (reset, send error) */
#define F_WBLOCK (1u << 2)    /* last send would block */
#define F_WSHUT (1u << 3)     /* we sent FIN */
#define F_KEEP (1u << 4)      /* keep the connection after this exchange */
#define F_REQ_DONE (1u << 5)  /* request fully moved to the device */
#define F_RESP_HEAD (1u << 6) /* final response head queued to the client */
#define F_RESP_DONE (1u << 7) /* response fully queued to the client */
#define F_HOLD (1u << 8)      /* request head still in `in`: retry possible */
#define F_REUSED (1u << 9)    /* device connection came from the idle pool */
#define F_GOT (1u << 10)      /* device sent bytes in this exchange */
#define F_HEAD (1u << 11)     /* request method is HEAD */
#define F_HTTP10 (1u << 12)   /* client speaks HTTP/1.0 */
#define F_UPG (1u << 13)      /* client asked for an Upgrade */
#define F_IDEMP (1u << 14)    /* method is idempotent (RFC 9110 §9.2.2) */
#define F_PROGRESS (1u << 15) /* bytes moved since the timer was armed */
#define F_SERVED (1u << 16)   /* a request was answered on this connection */
#define F_PCONN (1u << 17)    /* health probe still connecting */
#define F_PROM (1u << 18)     /* status page in Prometheus format */
#define F_HSDONE (1u << 19)   /* TLS handshake finished */
#define F_TLSBYE (1u << 20)   /* TLS close_notify queued */
#define F_GET (1u << 21)      /* request method is GET */
#define F_SAFE (1u << 22)     /* method is safe (RFC 9110 §9.2.1) */
#if RP_ENABLE_CACHE
/* The one forward reference: a freed client lets go of its cache entries
 * (section 11) whichever path freed it. */
static void cache_release(rp_proxy *p, rp_conn *c);
#endif

/* Bytes queued to the client for this request, for the access log. */
#if RP_ENABLE_ACCESS_LOG
#define SENT(c, n) ((c)->sent += (uint64_t)(n))
#else
#define SENT(c, n) ((void)(c), (void)(n))
#endif

#define F_EXCHANGE (F_REQ_DONE | F_RESP_HEAD | F_RESP_DONE | F_HOLD | F_HEAD | \
                    F_HTTP10 | F_UPG | F_IDEMP | F_KEEP | F_GET | F_SAFE)

#if RP_ENABLE_CACHE
/* Step a hit's arena reader past n sent bytes. */
static RP_NOINLINE void
hit_advance(rp_proxy *p, rp_conn *c, size_t n)
{
    while (n) {
        size_t k = RP_MIN(n, (size_t)(RP_CACHE_BLOCK - c->coff));
        c->coff = (uint16_t)(c->coff + k);
        c->cleft -= (uint32_t)k;
        n -= k;
        if (c->coff == RP_CACHE_BLOCK)
            c->cblk = p->cache.blk_next[c->cblk], c->coff = 0;
    }
}

#endif

/* A recv of up to `want` bytes returned n: readiness, progress, counters,
 * FIN and errors.  Returns 1 when something happened (not RP_EAGAIN). */
static int
recv_done(rp_proxy *p, rp_conn *c, long n, size_t want)
{
    if (n > 0) {
        c->flags |= F_PROGRESS;
        if ((size_t)n < want)
            c->ready &= ~RP_EV_READ;
        if (c->kind == K_CLIENT)
            p->stats.bytes_in += (uint64_t)n;
        return 1;
    }
    c->ready &= ~RP_EV_READ;
    if (n == RP_EAGAIN)
        return 0;
    if (n < 0) {
        c->flags |= F_DEAD;
        if (!c->err)
            c->err = (int16_t)n;
    }
    c->flags |= F_EOF; /* for TLS: FIN without close_notify */
    return 1;
}

/* A send of len bytes returned n: a short send means the socket is full.
 * Returns 1 when something happened (not RP_EAGAIN). */
static int
send_done(rp_proxy *p, rp_conn *c, long n, size_t len)
{
    if (n == RP_EAGAIN || (n >= 0 && (size_t)n < len)) {
        c->flags |= F_WBLOCK;
        c->ready &= ~RP_EV_WRITE;
    } else {
        c->flags &= ~F_WBLOCK;
    }
    if (n == RP_EAGAIN)
        return 0;
    if (n < 0) {
        c->flags |= F_DEAD | F_EOF;
        if (!c->err)
            c->err = (int16_t)n;
        return 1;
    }
    c->flags |= F_PROGRESS;
    if (c->kind == K_CLIENT)
        p->stats.bytes_out += (uint64_t)n;
    return 1;
}

#if RP_ENABLE_TLS
/* TLS, pumped (BearSSL's engine API, never br_sslio): each turn moves
 * records socket -> engine and engine -> socket, plaintext engine -> `in`
 * and `out` -> engine, each `_buf` -> copy -> `_ack`, until nothing moves.
 * The engine's input buffer is the TLS connection's receive buffer, so a
 * full `in` stops record reading: backpressure as for plain TCP.  A slot
 * is configured on first use; every connection re-seeds it from the port's
 * generator and resets it with the listener's profile. */

static const uint16_t tls_suites_modern[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
#if RP_ENABLE_TLS_COMPAT
    /* tls_profile=compat adds, for old clients: CBC with ECDHE, then RSA key exchange */
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
    BR_TLS_RSA_WITH_AES_128_GCM_SHA256, BR_TLS_RSA_WITH_AES_128_CBC_SHA256,
    BR_TLS_RSA_WITH_AES_128_CBC_SHA,
#endif
};
#define TLS_MODERN_SUITES 6
#if RP_ENABLE_TLS_COMPAT
#define TLS_COMPAT(l) ((l)->compat)
#else
#define TLS_COMPAT(l) ((void)(l), 0) /* the config refuses tls_profile=compat */
#endif

static const char *const tls_alpn[] = {"http/1.1"};

static const br_ssl_server_policy_class tls_chooser_class;

/* mTLS for the chosen certificate: ask for a client certificate chaining
 * to its client_ca, verified by BearSSL's minimal X.509 engine, which also
 * extracts the subject CN for client_cert_header. */
static void
tls_client_auth(struct rp_tls *t, br_ssl_server_context *sc, const rp_tls_cert *ct)
{
#if RP_ENABLE_TLS_CLIENT_AUTH
    static const unsigned char cn_oid[] = {3, 0x55, 0x04, 0x03};
    t->cn[0] = 0;
    t->cn_elt.status = 0;
    if (!ct->ntas) {
        br_ssl_server_set_trust_anchor_names_alt(sc, NULL, 0);
        return;
    }
    br_x509_minimal_init(&t->xc.min, &br_sha256_vtable, ct->tas, ct->ntas);
    br_x509_minimal_set_hash(&t->xc.min, br_sha1_ID, &br_sha1_vtable);
    br_x509_minimal_set_hash(&t->xc.min, br_sha256_ID, &br_sha256_vtable);
    br_x509_minimal_set_hash(&t->xc.min, br_sha384_ID, &br_sha384_vtable);
    br_x509_minimal_set_hash(&t->xc.min, br_sha512_ID, &br_sha512_vtable);
    br_x509_minimal_set_rsa(&t->xc.min, br_rsa_pkcs1_vrfy_get_default());
    br_x509_minimal_set_ecdsa(&t->xc.min, br_ec_get_default(), br_ecdsa_vrfy_asn1_get_default());
    t->cn_elt.oid = cn_oid;
    t->cn_elt.buf = t->cn;
    t->cn_elt.len = sizeof(t->cn);
    br_x509_minimal_set_name_elements(&t->xc.min, &t->cn_elt, 1);
    br_ssl_engine_set_x509(&sc->eng, &t->xc.min.vtable);
    br_ssl_server_set_trust_anchor_names_alt(sc, ct->tas, ct->ntas);
    if (ct->client_auth == 1)
        br_ssl_engine_add_flags(&sc->eng, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
    else
        br_ssl_engine_remove_flags(&sc->eng, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
#else
    (void)t, (void)sc, (void)ct;
#endif
}

/* Pick the certificate by SNI (the first entry is the default) and hand
 * the handshake to BearSSL's single-chain policy for it.  BearSSL passes the
 * context as const; the policy slot it holds is ours to set. */
static int
tls_choose(const br_ssl_server_policy_class **pctx, const br_ssl_server_context *cc,
           br_ssl_server_choices *choices)
{
    struct rp_tls *t = (struct rp_tls *)(void *)((char *)pctx - offsetof(struct rp_tls, chooser));
    br_ssl_server_context *sc = (br_ssl_server_context *)(uintptr_t)cc;
    const rp_config *c = &t->owner->cfg;
    const char *sni = br_ssl_engine_get_server_name(&cc->eng);
    const rp_tls_cert *ct = &c->certs[0];
    unsigned usage = BR_KEYTYPE_SIGN;
#if RP_TLS_MAX_CERTS > 1
    int i;
    for (i = 0; i < c->ncerts && sni && *sni; i++)
        if (c->certs[i].sni && route_host_match(c->certs[i].sni, (rp_str){sni, strlen(sni)})) {
            ct = &c->certs[i];
            break;
        }
#else
    (void)sni; /* one certificate: it answers every name */
#endif
    if (RP_ENABLE_TLS_COMPAT && (br_ssl_engine_get_version(&cc->eng) < BR_TLS12 ||
                                 t->u.sc.eng.suites_num > TLS_MODERN_SUITES))
        usage |= BR_KEYTYPE_KEYX; /* compat: static RSA allowed */
    tls_client_auth(t, sc, ct);
    if (ct->key_type == BR_KEYTYPE_EC)
        br_ssl_server_set_single_ec(sc, ct->chain, ct->chain_len, &ct->ec, usage,
                                    ct->issuer_key_type, &t->owner->tls_ec,
                                    br_ecdsa_sign_asn1_get_default());
    else
        br_ssl_server_set_single_rsa(sc, ct->chain, ct->chain_len, &ct->rsa, usage,
                                     br_rsa_private_get_default(),
                                     br_rsa_pkcs1_sign_get_default());
    return (*sc->policy_vtable)->choose(sc->policy_vtable, cc, choices);
}

static const br_ssl_server_policy_class tls_chooser_class = {
    sizeof(const br_ssl_server_policy_class *), tls_choose, 0, 0};

static int
tls_any_client_auth(const rp_config *c)
{
    int i;
    for (i = 0; i < c->ncerts; i++)
        if (c->certs[i].ntas)
            return 1;
    return 0;
}

static void
tls_slot_setup(rp_proxy *p, struct rp_tls *t)
{
    br_ssl_engine_context *e = &t->u.sc.eng;
    br_ssl_server_zero(&t->u.sc);
#if RP_ENABLE_TLS_COMPAT
    br_ssl_engine_set_hash(e, br_md5_ID, &br_md5_vtable);
    br_ssl_engine_set_hash(e, br_sha1_ID, &br_sha1_vtable);
    br_ssl_engine_set_prf10(e, &br_tls10_prf);
    br_ssl_engine_set_default_aes_cbc(e);
#endif
    br_ssl_engine_set_hash(e, br_sha256_ID, &br_sha256_vtable);
    br_ssl_engine_set_hash(e, br_sha384_ID, &br_sha384_vtable);
    br_ssl_engine_set_prf_sha256(e, &br_tls12_sha256_prf);
    br_ssl_engine_set_prf_sha384(e, &br_tls12_sha384_prf);
    br_ssl_engine_set_default_aes_gcm(e); /* AES-NI + PCLMUL where the CPU has them */
    br_ssl_engine_set_default_chapol(e);
    br_ssl_engine_set_ec(e, &p->tls_ec);
#if RP_ENABLE_TLS_CLIENT_AUTH
    br_ssl_engine_set_default_rsavrfy(e); /* client CertificateVerify */
    br_ssl_engine_set_default_ecdsa(e);
#endif
    br_ssl_engine_set_buffers_bidi(e, t->ibuf, sizeof(t->ibuf), t->obuf, sizeof(t->obuf));
    if (!RP_ENABLE_TLS_CLIENT_AUTH || !tls_any_client_auth(&p->cfg)) /* resuming skips it */
        br_ssl_server_set_cache(&t->u.sc, &p->tls_cache.vtable);
    br_ssl_engine_set_protocol_names(e, (const char **)(uintptr_t)tls_alpn, 1); /* read only */
    br_ssl_engine_add_flags(e, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
    t->chooser = &tls_chooser_class;
    t->owner = p;
    t->ready = 1;
}

/* Fresh entropy from the port for every connection, before its reset. */
static int
tls_seed(br_ssl_engine_context *e)
{
    unsigned char seed[32];
    if (rp_port_random(seed, sizeof(seed)) != RP_OK)
        return 0;
    br_ssl_engine_inject_entropy(e, seed, sizeof(seed));
    memset(seed, 0, sizeof(seed));
    return 1;
}

static struct rp_tls *
tls_slot(rp_proxy *p)
{
    if (p->tls_top)
        return p->tls_stack[--p->tls_top];
    if (p->tls_fresh < RP_MAX_TLS_CONNS)
        return &p->tls[p->tls_fresh++];
    return NULL;
}

#if RP_ENABLE_TLS_DEVICE
/* verify=off toward a device: take the server's key from its first
 * certificate without checking the chain (the link is still encrypted). */
static void
xa_start_chain(const br_x509_class **ctx, const char *server_name)
{
    ((struct rp_x509_any *)(void *)ctx)->first = 1;
    (void)server_name;
}

static void
xa_start_cert(const br_x509_class **ctx, uint32_t length)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(void *)ctx;
    if (x->first)
        br_x509_decoder_init(&x->dec, 0, 0);
    (void)length;
}

static void
xa_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(void *)ctx;
    if (x->first)
        br_x509_decoder_push(&x->dec, buf, len);
}

static void
xa_end_cert(const br_x509_class **ctx)
{
    ((struct rp_x509_any *)(void *)ctx)->first = 0;
}

static unsigned
xa_end_chain(const br_x509_class **ctx)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(void *)ctx;
    return br_x509_decoder_get_pkey(&x->dec) ? 0 : BR_ERR_X509_BAD_SERVER_NAME;
}

static const br_x509_pkey *
xa_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
    struct rp_x509_any *x = (struct rp_x509_any *)(uintptr_t)ctx;
    if (usages)
        *usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
    return br_x509_decoder_get_pkey(&x->dec);
}

static const br_x509_class x509_any_class = {
    sizeof(struct rp_x509_any), xa_start_chain, xa_start_cert, xa_append,
    xa_end_cert, xa_end_chain, xa_get_pkey};

/* A TLS slot as a client toward device dev (`device … tls`), or NULL. */
static struct rp_tls *
tls_take_client(rp_proxy *p, const rp_device *dv)
{
    struct rp_tls *t = tls_slot(p);
    br_ssl_client_context *cc;
    if (!t)
        return NULL;
    cc = &t->u.cc;
    if (t->ready != 2) {
        br_ssl_client_init_full(cc, &t->xc.min, NULL, 0);
        br_ssl_engine_set_versions(&cc->eng, BR_TLS12, BR_TLS12);
        br_ssl_engine_set_suites(&cc->eng, tls_suites_modern, TLS_MODERN_SUITES);
        br_ssl_engine_set_buffers_bidi(&cc->eng, t->ibuf, sizeof(t->ibuf), t->obuf,
                                       sizeof(t->obuf));
        br_ssl_engine_set_protocol_names(&cc->eng, (const char **)(uintptr_t)tls_alpn, 1);
        t->owner = p;
        t->ready = 2;
    }
    if (dv->verify) {
        br_x509_minimal_init_full(&t->xc.min, dv->tas, dv->ntas);
        br_ssl_engine_set_x509(&cc->eng, &t->xc.min.vtable);
    } else {
        t->xc.any.vtable = &x509_any_class;
        br_ssl_engine_set_x509(&cc->eng, &t->xc.any.vtable);
    }
    if (!tls_seed(&cc->eng) || !br_ssl_client_reset(cc, dv->sni, 0)) {
        p->tls_stack[p->tls_top++] = t;
        return NULL;
    }
    return t;
}

/* A TLS slot reset for a new client of listener l, or NULL. */
#endif /* RP_ENABLE_TLS_DEVICE */

static struct rp_tls *
tls_take(rp_proxy *p, const rp_listener_cfg *l)
{
    struct rp_tls *t = tls_slot(p);
    if (!t)
        return NULL;
    if (t->ready != 1)
        tls_slot_setup(p, t);
    br_ssl_engine_set_versions(&t->u.sc.eng, TLS_COMPAT(l) ? BR_TLS10 : BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(&t->u.sc.eng, tls_suites_modern,
                             TLS_COMPAT(l) ? RP_COUNT(tls_suites_modern) : TLS_MODERN_SUITES);
    br_ssl_server_set_policy(&t->u.sc, &t->chooser);
    if (!tls_seed(&t->u.sc.eng) || !br_ssl_server_reset(&t->u.sc)) {
        p->tls_stack[p->tls_top++] = t;
        return NULL;
    }
    return t;
}

static unsigned
tls_state(const rp_conn *c)
{
    return br_ssl_engine_current_state(&c->tls->u.sc.eng);
}

/* One round of the pump; returns 1 if anything moved. */
static int
tls_pump_once(rp_proxy *p, rp_conn *c)
{
    br_ssl_engine_context *e = &c->tls->u.sc.eng; /* same place for a client */
    unsigned st = br_ssl_engine_current_state(e);
    unsigned char *b;
    size_t len, room;
    long n;
    if (c->flags & F_DEAD)
        return 0; /* the socket failed: nothing more moves */
    if (st & BR_SSL_CLOSED) {
        if (!(c->flags & F_EOF) && br_ssl_engine_last_error(e) != BR_ERR_OK) {
            c->flags |= F_DEAD;
            p->stats.tls_failures++;
            RP_LOG(RP_LOG_INFO, ("TLS failed: BearSSL error %d", br_ssl_engine_last_error(e)));
        }
        c->flags |= F_EOF;
        return 0;
    }
    if ((st & BR_SSL_SENDAPP) && !(c->flags & F_HSDONE)) {
        c->flags |= F_HSDONE | F_PROGRESS;
        p->stats.tls_handshakes++;
    }
    if ((st & BR_SSL_SENDREC) && (!(c->flags & F_WBLOCK) || (c->ready & RP_EV_WRITE))) {
        b = br_ssl_engine_sendrec_buf(e, &len);
        n = rp_port_send(c->sock, b, len);
        if (n > 0)
            br_ssl_engine_sendrec_ack(e, (size_t)n);
        if (send_done(p, c, n, len))
            return 1;
    }
    if ((st & BR_SSL_RECVAPP) && (room = buf_room(p, &c->in)) != 0) {
        b = br_ssl_engine_recvapp_buf(e, &len);
        len = RP_MIN(len, room);
        memcpy(c->in.d + c->in.w, b, len);
        c->in.w += (uint32_t)len;
        br_ssl_engine_recvapp_ack(e, len);
        return 1;
    }
    if ((st & BR_SSL_SENDAPP) && (buf_len(&c->out) || HIT_LEFT(c))) {
        b = br_ssl_engine_sendapp_buf(e, &len);
        if (buf_len(&c->out)) {
            len = RP_MIN(len, buf_len(&c->out));
            memcpy(b, c->out.d + c->out.r, len);
            c->out.r += (uint32_t)len;
        }
#if RP_ENABLE_CACHE
        else { /* a hit's body, from the arena */
            len = RP_MIN(len, RP_MIN((size_t)c->cleft, (size_t)(RP_CACHE_BLOCK - c->coff)));
            memcpy(b, p->cache_arena + (size_t)c->cblk * RP_CACHE_BLOCK + c->coff, len);
            hit_advance(p, c, len);
        }
#endif
        br_ssl_engine_sendapp_ack(e, len);
        if (!buf_len(&c->out) && !HIT_LEFT(c))
            br_ssl_engine_flush(e, 0);
        return 1;
    }
    if ((st & BR_SSL_RECVREC) && (c->ready & RP_EV_READ) && !(c->flags & F_EOF)) {
        b = br_ssl_engine_recvrec_buf(e, &len);
        n = rp_port_recv(c->sock, b, len);
        if (n > 0)
            br_ssl_engine_recvrec_ack(e, (size_t)n);
        return recv_done(p, c, n, len);
    }
    if ((c->flags & F_EOF) && !(st & (BR_SSL_SENDAPP | BR_SSL_SENDREC)) &&
        (buf_len(&c->out) || HIT_LEFT(c))) {
        c->flags |= F_DEAD; /* the engine waits for records a closed peer will not send */
        return 1;
    }
    return 0;
}

/* Pump c's engine until nothing moves; a device's waits for its connect
 * (only with RP_ENABLE_TLS_DEVICE: else only clients have engines). */
static RP_NOINLINE int
tls_pump(rp_proxy *p, rp_conn *c)
{
    int moved = 0;
    if (RP_ENABLE_TLS_DEVICE && (c->state == DS_CONNECTING || (c->flags & F_PCONN)))
        return 0;
    while (tls_pump_once(p, c))
        moved = 1;
    return moved;
}

/* Interest of a TLS connection: what its engine waits for. */
static unsigned
tls_interest(const rp_conn *c)
{
    unsigned st = tls_state(c), ev = 0;
    if (st & BR_SSL_CLOSED)
        return 0;
    if ((st & BR_SSL_SENDREC) && (c->flags & F_WBLOCK))
        ev |= RP_EV_WRITE;
    if ((st & BR_SSL_RECVREC) && !(c->flags & (F_EOF | F_DEAD)))
        ev |= RP_EV_READ;
    return ev;
}
#endif /* RP_ENABLE_TLS */

/* Give c's TLS slot back; a TLS listener that paused for want of one
 * resumes accepting. */
static void
tls_release(rp_proxy *p, rp_conn *c)
{
#if RP_ENABLE_TLS
    int i;
    if (!c->tls)
        return;
    p->tls_stack[p->tls_top++] = c->tls;
    c->tls = NULL;
    for (i = 0; i < RP_MAX_LISTENERS; i++)
        if (p->lsocks[i].slot_wait && p->lsocks[i].sock >= 0) {
            p->lsocks[i].slot_wait = 0;
            rp_port_watch(p->lsocks[i].sock, RP_EV_READ, &p->lsocks[i]);
        }
#else
    (void)p, (void)c;
#endif
}

/* How long each kind of timer runs: a field of the config, but for the
 * probe's (its pool's) and lingering (a constant). */
static uint32_t
timer_ms(const rp_proxy *p, const rp_conn *x, int kind)
{
#define T_FIELD(f) (uint16_t)offsetof(rp_config, f)
    static const uint16_t field[] = {
        [T_HEAD] = T_FIELD(t_client_header), [T_IDLE] = T_FIELD(t_client_idle),
        [T_CLIENT] = T_FIELD(t_client_idle), [T_TUNNEL] = T_FIELD(t_client_idle),
        [T_CONNECT] = T_FIELD(t_connect), [T_DEVICE] = T_FIELD(t_device),
        [T_DIDLE] = T_FIELD(t_device_idle), [T_HANDSHAKE] = T_FIELD(t_handshake),
        [T_CWAIT] = T_FIELD(cache_lock_ms),
    };
#undef T_FIELD
    const rp_config *c = &p->cfg;
    if (kind == T_PROBE)
        return c->pools[c->devices[x->device].pool].probe_timeout_ms;
    if (kind == T_LINGER)
        return RP_TIMEOUT_LINGER_MS;
    return *(const uint32_t *)(const void *)((const char *)c + field[kind]);
}

/* Output waits on the peer: its socket would block, or its TLS engine holds
 * plaintext back (mid-handshake, renegotiation, records still queued). */
static int
out_blocked(const rp_conn *c)
{
    if (c->tls)
        return (c->flags & F_WBLOCK) || buf_len(&c->out) || HIT_LEFT(c);
    return (c->flags & F_WBLOCK) && (buf_len(&c->out) || HIT_LEFT(c));
}

static int
timer_kind(const rp_conn *c)
{
    const rp_conn *o = c->link;
    switch (c->state) {
    case CS_HEAD: /* a new connection owes its first head in client_header */
        if (c->tls && !(c->flags & F_HSDONE))
            return T_HANDSHAKE;
        return buf_len(&c->in) || !(c->flags & F_SERVED) ? T_HEAD : T_IDLE;
    case CS_FWD:
        if (out_blocked(c) || (!(c->flags & F_REQ_DONE) && o && o->state == DS_BUSY))
            return T_CLIENT;
        return T_NONE;
    case CS_TUNNEL: return T_TUNNEL;
    case CS_LOCAL: case CS_CACHE: return out_blocked(c) ? T_CLIENT : T_NONE;
    case CS_CWAIT: return T_CWAIT;
    case CS_CLOSING: return buf_len(&c->out) ? T_CLIENT : T_LINGER;
    case DS_PROBE: return T_PROBE;
    case DS_CONNECTING: return T_CONNECT;
    case DS_IDLE: return T_DIDLE;
    case DS_BUSY:
        if (out_blocked(c))
            return T_DEVICE;
        if (o && o->state == CS_FWD && (o->flags & F_REQ_DONE) &&
            !(o->flags & F_RESP_DONE) && !out_blocked(o) && buf_len(&c->in) < RP_BUF_SIZE)
            return T_DEVICE;
        return T_NONE;
    }
    return T_NONE;
}

static unsigned
conn_interest(const rp_conn *c)
{
    unsigned ev = 0;
    if (c->state == DS_CONNECTING || (c->flags & F_PCONN))
        return RP_EV_WRITE;
#if RP_ENABLE_TLS
    if (c->tls)
        return tls_interest(c);
#endif
    if (out_blocked(c))
        ev |= RP_EV_WRITE;
    if (!(c->flags & (F_EOF | F_DEAD)) && buf_len(&c->in) < RP_BUF_SIZE)
        ev |= RP_EV_READ;
    return ev;
}

static void
timer_hint(rp_proxy *p, uint64_t t)
{
    if (t && (!p->next_timer || t < p->next_timer))
        p->next_timer = t;
}

/* After a turn: arm the timer this state needs, tell the port the interest. */
static void
conn_rearm(rp_proxy *p, rp_conn *c)
{
    int k = timer_kind(c);
    unsigned ev;
    int refresh = k == T_IDLE || k == T_CLIENT || k == T_TUNNEL || k == T_DEVICE;
    if (k != c->tkind || (refresh && (c->flags & F_PROGRESS))) {
        c->tkind = (uint8_t)k;
        c->deadline = k ? p->now + timer_ms(p, c, k) : 0;
        timer_hint(p, c->deadline);
    }
    c->flags &= ~F_PROGRESS;
    ev = conn_interest(c);
    if (ev != c->watched) {
        c->watched = (uint8_t)ev;
        rp_port_watch(c->sock, ev, c);
    }
}

/* After a turn: empty buffers go back, then conn_rearm. */
static void
conn_settle(rp_proxy *p, rp_conn *c)
{
    buf_release(p, &c->in, 0);
    buf_release(p, &c->out, 0);
    conn_rearm(p, c);
}

static rp_conn **
free_list(rp_proxy *p, int kind)
{
    return kind == K_CLIENT ? &p->free_clients : &p->free_devices;
}

static rp_conn *
conn_alloc(rp_proxy *p, int kind)
{
    rp_conn **list = free_list(p, kind);
    rp_conn *c = *list;
    if (!c)
        return NULL;
    *list = c->next;
    c->next = NULL; /* sock -1, no link, no timer: as conn_free (or rp_init) left it */
    c->flags = 0;
    c->err = 0;
    c->ready = 0;
    c->watched = 0xff; /* force the first rp_port_watch */
    c->scan = 0;
    c->state = kind == K_CLIENT ? CS_HEAD : DS_CONNECTING;
    return c;
}

static void
idle_remove(rp_proxy *p, rp_conn *d)
{
    rp_conn **pp = &p->idle[d->device];
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    d->next = NULL;
}

/* Close and return to the free list.  A client takes its device connection
 * with it (it is mid-exchange, so not reusable); a device just unlinks. */
static void
conn_free(rp_proxy *p, rp_conn *c)
{
    int i;
    if (c->state == CS_FREE)
        return;
    if (c->kind == K_DEVICE) {
        rp_device *dev = &p->cfg.devices[c->device];
        if (c->state == DS_IDLE) {
            idle_remove(p, c);
            dev->idle--;
        } else if (c->state == DS_PROBE) {
            dev->probe = NULL;
        } else {
            dev->active--;
        }
        if (c->link)
            c->link->link = NULL;
    } else if (c->link) {
        conn_free(p, c->link);
    }
    if (c->sock >= 0)
        rp_port_close(c->sock);
    buf_release(p, &c->in, 1);
    buf_release(p, &c->out, 1);
    tls_release(p, c);
#if RP_ENABLE_CACHE
    if (c->kind == K_CLIENT)
        cache_release(p, c);
#endif
    for (i = p->batch_at; i < p->batch_n; i++) /* drop reports still queued */
        if (p->batch[i].ud == c)
            p->batch[i].ud = NULL;
    c->sock = -1;
    c->state = CS_FREE;
    c->link = NULL;
    c->deadline = 0;
    c->tkind = T_NONE;
    c->next = *free_list(p, c->kind);
    *free_list(p, c->kind) = c;
}


static int
conn_read(rp_proxy *p, rp_conn *c)
{
    size_t room;
    long n;
#if RP_ENABLE_TLS
    if (c->tls)
        return tls_pump(p, c);
#endif
    if (!(c->ready & RP_EV_READ) || (c->flags & (F_EOF | F_DEAD)))
        return 0;
    if ((room = buf_room(p, &c->in)) == 0)
        return 0;
    n = rp_port_recv(c->sock, c->in.d + c->in.w, room);
    if (n > 0)
        c->in.w += (uint32_t)n;
    return recv_done(p, c, n, room);
}

#if RP_ENABLE_CACHE
/* Send what `out` holds and then a hit's body straight from its arena
 * blocks, in one gather send.  *len gets the bytes offered. */
static long
hit_send(rp_proxy *p, rp_conn *c, size_t *len)
{
    rp_iov v[16];
    int n = 0;
    unsigned b = c->cblk, off = c->coff;
    size_t head = buf_len(&c->out), left = c->cleft;
    long r;
    if (head)
        v[n].p = c->out.d + c->out.r, v[n++].n = head;
    *len = head;
    while (n < 16 && left) {
        size_t k = RP_MIN(left, RP_CACHE_BLOCK - off);
        v[n].p = p->cache_arena + (size_t)b * RP_CACHE_BLOCK + off, v[n++].n = k;
        *len += k, left -= k, off = 0;
        b = p->cache.blk_next[b];
    }
    r = rp_port_sendv(c->sock, v, n);
    if (r > 0) {
        size_t k = RP_MIN((size_t)r, head);
        c->out.r += (uint32_t)k;
        hit_advance(p, c, (size_t)r - k);
    }
    return r;
}
#endif


static int
conn_write(rp_proxy *p, rp_conn *c)
{
    size_t len = buf_len(&c->out);
    long n;
    int hit = 0;
#if RP_ENABLE_TLS
    if (c->tls)
        return tls_pump(p, c);
#endif
    if ((!len && !HIT_LEFT(c)) || c->state == DS_CONNECTING || (c->flags & (F_DEAD | F_PCONN)))
        return 0;
    if ((c->flags & F_WBLOCK) && !(c->ready & RP_EV_WRITE))
        return 0;
#if RP_ENABLE_CACHE
    if (c->cleft)
        hit = 1, n = hit_send(p, c, &len); /* moves out.r and the reader */
    else
#endif
        n = rp_port_send(c->sock, c->out.d + c->out.r, len);
    if (n > 0 && !hit)
        c->out.r += (uint32_t)n;
    return send_done(p, c, n, len);
}

/* Stop serving c: flush what is queued, send FIN, drain the peer until it
 * closes or the linger timer fires (so an error reply is not lost to a
 * reset caused by unread request bytes -- nginx's lingering close). */
static void
closing_begin(rp_proxy *p, rp_conn *c)
{
    if (c->link)
        conn_free(p, c->link);
    c->flags &= ~(F_KEEP | F_HOLD);
    if (c->flags & F_DEAD) {
        conn_free(p, c);
        return;
    }
    c->state = CS_CLOSING;
}

static int
closing_step(rp_proxy *p, rp_conn *c)
{
    c->in.r = c->in.w; /* discard whatever still arrives */
    if (c->flags & F_DEAD) {
        conn_free(p, c);
        return 0;
    }
    if (buf_len(&c->out))
        return 0;
#if RP_ENABLE_TLS
    if (c->tls && !(c->flags & F_WSHUT)) { /* close_notify first, then FIN */
        if (!(c->flags & F_TLSBYE)) {
            c->flags |= F_TLSBYE;
            br_ssl_engine_close(&c->tls->u.sc.eng);
            return 1;
        }
        if (tls_state(c) & BR_SSL_SENDREC)
            return 0;
    }
#endif
    if (!(c->flags & F_WSHUT)) {
        rp_port_shutdown(c->sock);
        c->flags |= F_WSHUT;
        tls_release(p, c); /* close_notify and FIN are out: drain in the clear */
        return 1;
    }
    if (c->flags & F_EOF)
        conn_free(p, c);
    return 0;
}

/* ==== [8] TLS sessions: the slot pool, engine setup, the pump ====
 * TLS, pumped (BearSSL's engine API, never br_sslio): each turn moves
 * records socket -> engine and engine -> socket, plaintext engine -> `in`
 * and `out` -> engine, each `_buf` -> copy -> `_ack`, until nothing moves.
 * The engine's input buffer is the TLS connection's receive buffer, so a
 * full `in` stops record reading: backpressure as for plain TCP.  A slot
 * is configured on first use; every connection re-seeds it from the port's
 * generator and resets it with the listener's profile.  Out of slots, the
 * oldest unfinished handshake gives its slot up (tls_evict).
 * Owns: p->tls[] and its free stack, the session cache, c->tls.
 * Calls: [3] [7] (SNI: route_host_match), recv_done/send_done of [9], the
 * port's send/recv.  Called by: [9] (conn_read/conn_write/conn_free),
 * [13] [16] (TLS toward devices), [18] (accept). */
#include "rp_int.h"

#if RP_ENABLE_TLS

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
    const rp_config *c = CFG(t->owner);
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
    br_ssl_engine_set_hash(e, br_md5_ID, &br_md5_vtable); /* SHA-1: tls_take, by profile */
    br_ssl_engine_set_prf10(e, &br_tls10_prf);
    br_ssl_engine_set_default_aes_cbc(e);
#endif
    /* The hashes the engine knows are the ones a ServerKeyExchange (and a
     * client's CertificateVerify) may be signed with: every SHA-2 a client
     * may offer alone in signature_algorithms. */
    br_ssl_engine_set_hash(e, br_sha224_ID, &br_sha224_vtable);
    br_ssl_engine_set_hash(e, br_sha256_ID, &br_sha256_vtable);
    br_ssl_engine_set_hash(e, br_sha384_ID, &br_sha384_vtable);
    br_ssl_engine_set_hash(e, br_sha512_ID, &br_sha512_vtable);
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
    if (!RP_ENABLE_TLS_CLIENT_AUTH || !tls_any_client_auth(CFG(p))) /* resuming skips it */
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
struct rp_tls *
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

struct rp_tls *
tls_take(rp_proxy *p, const rp_listener_cfg *l)
{
    struct rp_tls *t = tls_slot(p);
    br_ssl_engine_context *e;
    if (!t)
        return NULL;
    if (t->ready != 1)
        tls_slot_setup(p, t);
    e = &t->u.sc.eng;
    br_ssl_engine_set_versions(e, TLS_COMPAT(l) ? BR_TLS10 : BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(e, tls_suites_modern,
                             TLS_COMPAT(l) ? RP_COUNT(tls_suites_modern) : TLS_MODERN_SUITES);
#if RP_ENABLE_TLS_COMPAT
    /* SHA-1 signatures (and TLS 1.0/1.1, CBC's HMAC) for compat listeners
     * only: unregistered, the engine offers and accepts none. */
    br_ssl_engine_set_hash(e, br_sha1_ID, TLS_COMPAT(l) ? &br_sha1_vtable : NULL);
#endif
    br_ssl_server_set_policy(&t->u.sc, &t->chooser);
    if (!tls_seed(e) || !br_ssl_server_reset(&t->u.sc)) {
        p->tls_stack[p->tls_top++] = t;
        return NULL;
    }
    /* BearSSL leaves 0.0 as the record version until its ServerHello, so
     * its own early alert (protocol_version to a too old client) and ours
     * would go out in records clients drop ("wrong version number"). */
    e->version_out = BR_TLS10;
    return t;
}

unsigned
tls_state(const rp_conn *c)
{
    return br_ssl_engine_current_state(&c->tls->u.sc.eng);
}

#if RP_ENABLE_TLS_ALERTS
/* The fatal alert (RFC 5246 §7.2) for each BearSSL engine error below 32,
 * 0 for none (not the peer's doing). */
static const uint8_t tls_alert_for[32] = {
    [BR_ERR_BAD_PARAM] = 50, /* decode_error: a malformed handshake message */
    [BR_ERR_BAD_STATE] = 80, /* internal_error */
    [BR_ERR_UNSUPPORTED_VERSION] = 70, [BR_ERR_BAD_VERSION] = 70, /* protocol_version */
    [BR_ERR_BAD_LENGTH] = 22, [BR_ERR_TOO_LARGE] = 22, /* record_overflow */
    [BR_ERR_BAD_MAC] = 20, /* bad_record_mac */
    [BR_ERR_NO_RANDOM] = 80,
    [BR_ERR_UNKNOWN_TYPE] = 10, [BR_ERR_UNEXPECTED] = 10, /* unexpected_message */
    [BR_ERR_BAD_CCS] = 50, [BR_ERR_BAD_ALERT] = 50, [BR_ERR_BAD_HANDSHAKE] = 50,
    [BR_ERR_OVERSIZED_ID] = 50, [BR_ERR_BAD_SNI] = 50, [BR_ERR_BAD_HELLO_DONE] = 50,
    [BR_ERR_BAD_CIPHER_SUITE] = 47, [BR_ERR_BAD_COMPRESSION] = 47, /* illegal_parameter */
    [BR_ERR_BAD_FRAGLEN] = 47, [BR_ERR_RESUME_MISMATCH] = 47, [BR_ERR_INVALID_ALGORITHM] = 47,
    [BR_ERR_BAD_SECRENEG] = 40, [BR_ERR_LIMIT_EXCEEDED] = 40, /* handshake_failure */
    [BR_ERR_NO_CLIENT_AUTH] = 40,
    [BR_ERR_EXTRA_EXTENSION] = 110, /* unsupported_extension */
    [BR_ERR_BAD_FINISHED] = 51, [BR_ERR_BAD_SIGNATURE] = 51, /* decrypt_error */
    [BR_ERR_WRONG_KEY_USAGE] = 43, /* unsupported_certificate */
};

/* c's engine failed with err: tell the peer why with a fatal alert of our
 * own, as long as its records still go out in the clear (before our
 * ChangeCipherSpec) and the last one went out whole.  Past that it would
 * take the engine's keys: the peer sees the connection close (README, TLS).
 * None for the engine's own alert (BR_ERR_SEND_FATAL_ALERT + x) or the
 * peer's (BR_ERR_RECV_FATAL_ALERT + x).  Best effort: never waits. */
static void
tls_alert(rp_conn *c, const br_ssl_engine_context *e, unsigned err)
{
    unsigned char rec[7] = {21, 0, 0, 0, 2, 2, 0}; /* alert record, level fatal */
    if (err < 32)
        rec[6] = tls_alert_for[err];
#if RP_ENABLE_TLS_CLIENT_AUTH || RP_ENABLE_TLS_DEVICE
    else if (err < 64) /* X.509: the peer's certificate */
        rec[6] = err == BR_ERR_X509_NOT_TRUSTED ? 48 : err == BR_ERR_X509_EXPIRED ? 45 : 42;
#endif
    if (!rec[6] || e->out.vtable != &br_sslrec_out_clear_vtable || (c->flags & F_TLSPART))
        return;
    rec[1] = (unsigned char)(e->version_out >> 8);
    rec[2] = (unsigned char)e->version_out;
    (void)rp_port_send(c->sock, rec, sizeof(rec));
}
#define TLS_ALERT(c, e, err) tls_alert((c), (e), (unsigned)(err))
#define TLS_PART(c, part) ((c)->flags = (part) ? (c)->flags | F_TLSPART : (c)->flags & ~F_TLSPART)
#else
#define TLS_ALERT(c, e, err) ((void)0)
#define TLS_PART(c, part) ((void)0)
#endif

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
        int err = br_ssl_engine_last_error(e);
        if (!(c->flags & F_EOF) && err != BR_ERR_OK) {
            c->flags |= F_DEAD;
            p->stats.tls_failures++;
            RP_LOG(RP_LOG_INFO, ("TLS failed: BearSSL error %d", err));
            TLS_ALERT(c, e, err);
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
        if (n > 0) {
            br_ssl_engine_sendrec_ack(e, (size_t)n);
            TLS_PART(c, (size_t)n < len); /* len: what is left of one record */
        }
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
RP_NOINLINE int
tls_pump(rp_proxy *p, rp_conn *c)
{
    int moved = 0;
    if (RP_ENABLE_TLS_DEVICE && CONNECTING(c))
        return 0;
#if RP_ENABLE_TURN_STATS
    if (!(c->flags & F_HSDONE))
        TURN_COUNT(p, tls_steps);
#endif
    while (tls_pump_once(p, c))
        moved = 1;
    return moved;
}

/* Interest of a TLS connection: what its engine waits for. */
unsigned
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
void
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

#if RP_ENABLE_TLS
/* Out of TLS slots: the client that has waited longest in its handshake
 * (at least min_age ms) gives its slot up, so floods of half-open
 * handshakes cannot lock real clients out until the handshake timeout.
 * Returns 1 if one was freed. */
int
tls_evict(rp_proxy *p, const rp_conn *keep, uint64_t min_age)
{
    rp_conn *old = NULL;
    int i;
    for (i = 0; i < RP_MAX_CONNS; i++) {
        rp_conn *c = &p->clients[i];
        if (c != keep && c->state == CS_HEAD && c->tls && !(c->flags & F_HSDONE) &&
            (!old || c->t_start < old->t_start))
            old = c;
    }
    if (!old || old->t_start + min_age > p->now)
        return 0;
    p->stats.tls_failures++;
    conn_free(p, old);
    return 1;
}
#endif

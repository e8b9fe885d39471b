/* ==== [5] TLS certificate store: PEM, keys, trust anchors ====
 * `tls cert= key=` and `ca=` files, loaded as the config is parsed, so a bad
 * file is a `file:line:` error: PEM is decoded, DER chains are kept in
 * cfg->store, private keys are decoded and their parts copied there too, and
 * the key must match the leaf certificate's public key.  The BearSSL
 * decoders need ~4 KB: they borrow TLS slot 0's input buffer, idle until
 * rp_start.
 * Owns: cfg->store, cfg->certs, the trust anchors.  Calls: the port's blob
 * hook (rp_port_blob), BearSSL's decoders.  Called by: [6]. */
#include "rp_int.h"

#if RP_ENABLE_TLS && RP_ENABLE_CONFIG_TEXT

struct tls_scratch;

typedef struct {
    rp_config *c;
    struct tls_scratch *s;
    size_t start;
    int overflow, key;
} der_sink;

typedef struct tls_scratch {
    br_pem_decoder_context pem;
    br_skey_decoder_context sk;
    br_x509_decoder_context xd;
    der_sink sink;
    unsigned char pub[BR_EC_KBUF_PUB_MAX_SIZE];
    unsigned char mod[512];
    size_t keylen;
    unsigned char keyder[8192];
} tls_scratch;

/* The decoders' room: TLS slot 0's input buffer before rp_start; while
 * running (a reload's parse) the buffer block rp_config_parse took for it;
 * NULL when a block is too small for them (RP_BUF_SIZE): NO_SCRATCH. */
static tls_scratch *
tls_scratch_of(rp_proxy *p)
{
#if RP_ENABLE_RELOAD
    if (p->started)
        return sizeof(tls_scratch) <= RP_BUF_SIZE ? (tls_scratch *)(void *)p->scratch.d : NULL;
#endif
    return (tls_scratch *)(void *)p->tls[0].ibuf;
}
#define NO_SCRATCH "a reload cannot decode certificates in this build (RP_BUF_SIZE too small)"

typedef char tls_scratch_fits[sizeof(tls_scratch) <= BR_SSL_BUFSIZE_INPUT ? 1 : -1];

static void
der_append(void *ctx, const void *data, size_t len)
{
    der_sink *d = (der_sink *)ctx;
    rp_config *c = d->c;
    if (d->key) {
        if (len > sizeof(d->s->keyder) - d->s->keylen)
            d->overflow = 1;
        else
            memcpy(d->s->keyder + d->s->keylen, data, len), d->s->keylen += len;
    } else if (len > sizeof(c->store) - c->store_used) {
        d->overflow = 1;
    } else {
        memcpy(c->store + c->store_used, data, len);
        c->store_used += len;
    }
}

static void
der_discard(void *ctx, const void *data, size_t len)
{
    (void)ctx, (void)data, (void)len;
}

static unsigned char *
store_put(rp_config *c, const void *data, size_t n)
{
    unsigned char *d = c->store + c->store_used;
    if (n > sizeof(c->store) - c->store_used)
        return NULL;
    memcpy(d, data, n);
    c->store_used += n;
    return d;
}

static int
ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && memcmp(s + a - b, tail, b) == 0;
}

/* Decode the PEM objects of one file: certificates go to ct's chain
 * (want_key 0), or the private key's DER to the scratch (want_key 1). */
static const char *
tls_pem_load(rp_config *c, rp_tls_cert *ct, const unsigned char *src, size_t len,
             tls_scratch *s, int want_key)
{
    der_sink *d = &s->sink;
    int in_obj = 0, keep = 0;
    d->c = c, d->s = s, d->start = 0, d->overflow = 0, d->key = want_key;
    br_pem_decoder_init(&s->pem);
    while (len > 0) {
        size_t k = br_pem_decoder_push(&s->pem, src, len);
        const char *name;
        src += k, len -= k;
        switch (br_pem_decoder_event(&s->pem)) {
        case BR_PEM_BEGIN_OBJ:
            name = br_pem_decoder_name(&s->pem);
            keep = want_key ? ends_with(name, "PRIVATE KEY") && s->keylen == 0
                            : strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0;
            d->start = c->store_used;
            br_pem_decoder_setdest(&s->pem, keep ? der_append : der_discard, d);
            in_obj = 1;
            break;
        case BR_PEM_END_OBJ:
            if (d->overflow)
                return "TLS store full (raise RP_TLS_STORE_BYTES)";
            if (keep && !want_key) {
                if (ct->chain_len == RP_TLS_MAX_CHAIN)
                    return "certificate chain too long (RP_TLS_MAX_CHAIN)";
                ct->chain[ct->chain_len].data = c->store + d->start;
                ct->chain[ct->chain_len++].data_len = c->store_used - d->start;
            }
            in_obj = 0;
            break;
        case BR_PEM_ERROR:
            return "malformed PEM";
        }
    }
    return in_obj ? "truncated PEM" : NULL;
}

static const char *
tls_key_take(rp_config *c, rp_tls_cert *ct, tls_scratch *s)
{
    br_skey_decoder_init(&s->sk);
    br_skey_decoder_push(&s->sk, s->keyder, s->keylen);
    if (br_skey_decoder_last_error(&s->sk) != 0)
        return "cannot decode the private key";
    ct->key_type = br_skey_decoder_key_type(&s->sk);
    if (ct->key_type == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *k = br_skey_decoder_get_rsa(&s->sk);
        if (k->n_bitlen < 2048)
            return "RSA keys under 2048 bits are refused";
        ct->rsa = *k;
        ct->rsa.p = store_put(c, k->p, k->plen);
        ct->rsa.q = store_put(c, k->q, k->qlen);
        ct->rsa.dp = store_put(c, k->dp, k->dplen);
        ct->rsa.dq = store_put(c, k->dq, k->dqlen);
        ct->rsa.iq = store_put(c, k->iq, k->iqlen);
        return ct->rsa.iq ? NULL : "TLS store full (raise RP_TLS_STORE_BYTES)";
    }
    if (ct->key_type == BR_KEYTYPE_EC) {
        const br_ec_private_key *k = br_skey_decoder_get_ec(&s->sk);
        if (k->curve != BR_EC_secp256r1 && k->curve != BR_EC_secp384r1)
            return "EC keys must be P-256 or P-384";
        ct->ec = *k;
        ct->ec.x = store_put(c, k->x, k->xlen);
        return ct->ec.x ? NULL : "TLS store full (raise RP_TLS_STORE_BYTES)";
    }
    return "unsupported private key type";
}

static size_t
strip_zeros(const unsigned char **p, size_t n)
{
    while (n && **p == 0)
        (*p)++, n--;
    return n;
}

/* The key must be the one the leaf certificate names. */
static const char *
tls_key_matches(rp_tls_cert *ct, tls_scratch *s)
{
    const br_x509_pkey *pk;
    br_x509_decoder_init(&s->xd, NULL, NULL);
    br_x509_decoder_push(&s->xd, ct->chain[0].data, ct->chain[0].data_len);
    if ((pk = br_x509_decoder_get_pkey(&s->xd)) == NULL)
        return "cannot decode the certificate";
    ct->issuer_key_type = br_x509_decoder_get_signer_key_type(&s->xd);
    if ((int)pk->key_type != ct->key_type)
        return "key does not match the certificate";
    if (ct->key_type == BR_KEYTYPE_EC) {
        br_ec_public_key pub;
        if (!br_ec_compute_pub(br_ec_get_default(), &pub, s->pub, &ct->ec) ||
            pub.curve != pk->key.ec.curve || pub.qlen != pk->key.ec.qlen ||
            memcmp(pub.q, pk->key.ec.q, pub.qlen) != 0)
            return "key does not match the certificate";
    } else {
        br_rsa_compute_modulus mod = br_rsa_compute_modulus_get_default();
        const unsigned char *a = s->mod, *b = pk->key.rsa.n;
        size_t na, nb;
        if (mod(NULL, &ct->rsa) > sizeof(s->mod) || (na = mod(s->mod, &ct->rsa)) == 0)
            return "RSA key too large";
        na = strip_zeros(&a, na);
        nb = strip_zeros(&b, pk->key.rsa.nlen);
        if (na != nb || memcmp(a, b, na) != 0)
            return "key does not match the certificate";
    }
    return NULL;
}

#if RP_ENABLE_TLS_DEVICE || RP_ENABLE_TLS_CLIENT_AUTH
static void
dn_append(void *ctx, const void *data, size_t len)
{
    der_sink *d = (der_sink *)ctx;
    if (!d->overflow && !store_put(d->c, data, len))
        d->overflow = 1;
}

/* `client_ca=FILE`: every certificate in it becomes a trust anchor (its
 * subject DN and public key, copied to the store). */
const char *
tls_ca_load(rp_proxy *p, br_x509_trust_anchor *tas, size_t *ntas, const char *file, int *why)
{
    tls_scratch *s = tls_scratch_of(p);
    rp_config *c = CFG(p);
    rp_tls_cert tmp;
    const void *data;
    const char *err;
    size_t len, i;
    if (!s)
        return *why = RP_ENOMEM, NO_SCRATCH;
    memset(&tmp, 0, sizeof(tmp));
    if ((*why = rp_port_blob(file, &data, &len)) != RP_OK)
        return "cannot read CA file";
    if ((err = tls_pem_load(c, &tmp, (const unsigned char *)data, len, s, 0)) != NULL)
        return err;
    if (tmp.chain_len == 0 || tmp.chain_len > RP_TLS_MAX_CAS)
        return "client_ca needs 1 to RP_TLS_MAX_CAS certificates";
    for (i = 0; i < tmp.chain_len; i++) {
        br_x509_trust_anchor *ta = &tas[i];
        const br_x509_pkey *pk;
        size_t dn0 = c->store_used;
        s->sink.c = c, s->sink.overflow = 0;
        br_x509_decoder_init(&s->xd, dn_append, &s->sink);
        br_x509_decoder_push(&s->xd, tmp.chain[i].data, tmp.chain[i].data_len);
        if ((pk = br_x509_decoder_get_pkey(&s->xd)) == NULL || s->sink.overflow)
            return "cannot decode a client_ca certificate";
        ta->dn.data = c->store + dn0;
        ta->dn.len = c->store_used - dn0;
        ta->flags = BR_X509_TA_CA;
        ta->pkey = *pk;
        if (pk->key_type == BR_KEYTYPE_RSA) {
            ta->pkey.key.rsa.n = store_put(c, pk->key.rsa.n, pk->key.rsa.nlen);
            ta->pkey.key.rsa.e = store_put(c, pk->key.rsa.e, pk->key.rsa.elen);
            if (!ta->pkey.key.rsa.n || !ta->pkey.key.rsa.e)
                return "TLS store full (raise RP_TLS_STORE_BYTES)";
        } else if ((ta->pkey.key.ec.q = store_put(c, pk->key.ec.q, pk->key.ec.qlen)) == NULL) {
            return "TLS store full (raise RP_TLS_STORE_BYTES)";
        }
    }
    *ntas = tmp.chain_len;
    return NULL;
}
#endif

/* Load `file` (the certificate chain) into ct; *why is rp_port_blob's
 * error when it cannot be read, else RP_OK. */
const char *
tls_cert_load(rp_proxy *p, rp_tls_cert *ct, const char *file, int *why)
{
    tls_scratch *s = tls_scratch_of(p);
    const void *data;
    size_t len;
    const char *err;
    if (!s)
        return *why = RP_ENOMEM, NO_SCRATCH;
    memset(ct, 0, sizeof(*ct));
    if ((*why = rp_port_blob(file, &data, &len)) != RP_OK)
        return "cannot read certificate file";
    if ((err = tls_pem_load(CFG(p), ct, (const unsigned char *)data, len, s, 0)) != NULL)
        return err;
    return ct->chain_len ? NULL : "no CERTIFICATE in the certificate file";
}

/* Then `keyfile`, the leaf's key, into ct (*why as for the chain). */
const char *
tls_key_load(rp_proxy *p, rp_tls_cert *ct, const char *keyfile, int *why)
{
    tls_scratch *s = tls_scratch_of(p);
    const void *data;
    size_t len;
    const char *err;
    if (!s)
        return *why = RP_ENOMEM, NO_SCRATCH;
    if ((*why = rp_port_blob(keyfile, &data, &len)) != RP_OK)
        return "cannot read key file";
    s->keylen = 0;
    if ((err = tls_pem_load(CFG(p), ct, (const unsigned char *)data, len, s, 1)) == NULL)
        err = s->keylen == 0 ? "no PRIVATE KEY in the key file" : tls_key_take(CFG(p), ct, s);
    if (err == NULL)
        err = tls_key_matches(ct, s);
    memset(s, 0, sizeof(*s)); /* no key material left in the scratch */
    return err;
}
#endif /* RP_ENABLE_TLS && RP_ENABLE_CONFIG_TEXT */

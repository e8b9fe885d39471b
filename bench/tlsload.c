/*
 * tlsload.c -- full-TLS-handshake load for bench/tls.sh.  A benchmark helper,
 * not part of rproxy.
 *
 *   tlsload -p PORT -C CERT.pem [-a ADDR] [-n SNI] [-c WORKERS] [-d SECS] [-r]
 *
 * WORKERS processes each loop until SECS are up: connect, TLS handshake,
 * "GET / HTTP/1.1" with "Connection: close", read the response to EOF,
 * close.  Every handshake is a full one (new session, ECDHE) unless -r, which
 * offers the previous connection's session ID for resumption.  The client is
 * BearSSL's (AES-NI where the CPU has it); the server's key is taken from
 * CERT.pem and trusted as is (BearSSL's "known key" engine: no chain
 * building), and an ECDSA ServerKeyExchange signature is NOT verified (a
 * stub verifier accepts it) -- a load generator, not a client to copy --
 * so the client's cost per handshake is one ECDHE and stays below the
 * server's (ECDHE + signature).  bench/tls.sh also reports each proxy's own
 * CPU time, so a client-bound run still gives a per-core figure.
 *
 * Prints one line:  conns N secs S rate R errors E reused U
 * (rate = successful request/response exchanges per second, each on its own
 * connection; reused = how many of them resumed a session).  Exit 0 when at
 * least one exchange succeeded.
 *
 * Build: cc -O2 -o tlsload bench/tlsload.c -lbearssl
 *
 * SPDX-License-Identifier: MIT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bearssl.h>

static unsigned char der[16384];
static size_t der_len;

static void
der_append(void *ctx, const void *buf, size_t len)
{
    (void)ctx;
    if (der_len + len <= sizeof(der)) {
        memcpy(der + der_len, buf, len);
        der_len += len;
    }
}

/* The first CERTIFICATE of a PEM file as DER into der[]. */
static int
load_cert(const char *path)
{
    static unsigned char pem[65536];
    br_pem_decoder_context pc;
    FILE *f = fopen(path, "rb");
    size_t n, off = 0;
    int inobj = 0;
    if (!f)
        return -1;
    n = fread(pem, 1, sizeof(pem), f);
    fclose(f);
    br_pem_decoder_init(&pc);
    while (off < n) {
        off += br_pem_decoder_push(&pc, pem + off, n - off);
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ:
            inobj = strcmp(br_pem_decoder_name(&pc), "CERTIFICATE") == 0;
            br_pem_decoder_setdest(&pc, inobj ? der_append : NULL, NULL);
            break;
        case BR_PEM_END_OBJ:
            if (inobj && der_len)
                return 0;
            break;
        case BR_PEM_ERROR:
            return -1;
        default:
            break;
        }
    }
    return -1;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
sock_read(void *ctx, unsigned char *buf, size_t len)
{
    int fd = *(int *)ctx;
    for (;;) {
        ssize_t r = read(fd, buf, len);
        if (r > 0)
            return (int)r;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

static int
sock_write(void *ctx, const unsigned char *buf, size_t len)
{
    int fd = *(int *)ctx;
    for (;;) {
        ssize_t r = write(fd, buf, len);
        if (r > 0)
            return (int)r;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/* Load generator only: accept every ServerKeyExchange signature. */
static uint32_t
vrfy_ecdsa_any(const br_ec_impl *impl, const void *hash, size_t hash_len,
               const br_ec_public_key *pk, const void *sig, size_t sig_len)
{
    (void)impl; (void)hash; (void)hash_len; (void)pk; (void)sig; (void)sig_len;
    return 1;
}

struct result {
    long ok, err, reused;
};

static void
worker(const struct sockaddr_in *sa, const char *sni, double end, int resume, struct result *res)
{
    static unsigned char iobuf[BR_SSL_BUFSIZE_BIDI];
    static br_ssl_client_context cc;
    static br_x509_minimal_context xm;
    static br_x509_knownkey_context xk;
    static br_x509_decoder_context xd;
    const br_x509_pkey *pk;
    char req[256];
    int reqlen;
    unsigned char resp[512];
    unsigned char prev_id[32];
    size_t prev_len = 0;

    br_x509_decoder_init(&xd, NULL, NULL);
    br_x509_decoder_push(&xd, der, der_len);
    pk = br_x509_decoder_get_pkey(&xd);
    if (!pk) {
        fprintf(stderr, "tlsload: cannot decode the certificate\n");
        exit(1);
    }
    if (pk->key_type == BR_KEYTYPE_EC)
        br_x509_knownkey_init_ec(&xk, &pk->key.ec, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
    else
        br_x509_knownkey_init_rsa(&xk, &pk->key.rsa, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
    br_ssl_client_init_full(&cc, &xm, NULL, 0);
    br_ssl_engine_set_x509(&cc.eng, &xk.vtable);
    br_ssl_engine_set_ecdsa(&cc.eng, vrfy_ecdsa_any);
    /* (an RSA server key keeps BearSSL's real RSA verifier) */
    br_ssl_engine_set_versions(&cc.eng, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_buffer(&cc.eng, iobuf, sizeof(iobuf), 1);
    reqlen = snprintf(req, sizeof(req),
                      "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", sni);

    while (now_s() < end) {
        br_sslio_context io;
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, got = 0;
        size_t have = 0;
        if (fd < 0) {
            res->err++;
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
            res->err++;
            close(fd);
            usleep(1000);
            continue;
        }
        if (!br_ssl_client_reset(&cc, sni, resume)) {
            res->err++;
            close(fd);
            continue;
        }
        br_sslio_init(&io, &cc.eng, sock_read, &fd, sock_write, &fd);
        if (br_sslio_write_all(&io, req, (size_t)reqlen) == 0 && br_sslio_flush(&io) == 0) {
            for (;;) {
                int r = br_sslio_read(&io, resp + (have < 64 ? have : 0),
                                      sizeof(resp) - (have < 64 ? have : 0));
                if (r <= 0)
                    break;
                have += (size_t)r;
                got = 1;
            }
        }
        if (got && have >= 12 && memcmp(resp, "HTTP/1.1 200", 12) == 0) {
            br_ssl_session_parameters now;
            br_ssl_engine_get_session_parameters(&cc.eng, &now);
            res->ok++;
            /* resumed: the server took back the session ID we offered */
            if (resume && prev_len && now.session_id_len == prev_len &&
                memcmp(now.session_id, prev_id, prev_len) == 0)
                res->reused++;
            prev_len = now.session_id_len;
            memcpy(prev_id, now.session_id, prev_len);
        } else {
            res->err++;
        }
        close(fd);
    }
}

static void
usage(void)
{
    fprintf(stderr, "usage: tlsload -p PORT -C CERT.pem [-a ADDR] [-n SNI] [-c WORKERS] "
                    "[-d SECS] [-r]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *addr = "127.0.0.1", *sni = "bench.test", *cert = NULL;
    int port = 0, workers = 16, secs = 10, resume = 0, opt, i;
    struct sockaddr_in sa;
    int pfd[2];
    double t0, end;
    struct result total = {0, 0, 0};

    while ((opt = getopt(argc, argv, "p:a:n:c:d:C:r")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'a': addr = optarg; break;
        case 'n': sni = optarg; break;
        case 'c': workers = atoi(optarg); break;
        case 'd': secs = atoi(optarg); break;
        case 'C': cert = optarg; break;
        case 'r': resume = 1; break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || !cert || workers < 1 || secs < 1)
        usage();
    if (load_cert(cert) != 0) {
        fprintf(stderr, "tlsload: no CERTIFICATE in %s\n", cert);
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        usage();
    signal(SIGPIPE, SIG_IGN);
    if (pipe(pfd) != 0)
        return 1;
    t0 = now_s();
    end = t0 + secs;
    for (i = 0; i < workers; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            struct result r = {0, 0, 0};
            close(pfd[0]);
            worker(&sa, sni, end, resume, &r);
            if (write(pfd[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
                _exit(1);
            _exit(0);
        }
    }
    close(pfd[1]);
    for (i = 0; i < workers; i++) {
        struct result r;
        if (read(pfd[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
            total.ok += r.ok;
            total.err += r.err;
            total.reused += r.reused;
        }
    }
    while (wait(NULL) > 0)
        ;
    {
        double el = now_s() - t0;
        printf("conns %ld secs %.2f rate %.0f errors %ld reused %ld\n", total.ok, el,
               (double)total.ok / el, total.err, total.reused);
    }
    return total.ok > 0 ? 0 : 1;
}

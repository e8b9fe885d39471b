/*
 * test_cfgimage.c -- a configuration parsed at run time and the same text
 * turned into an rp_config image at build time (scripts/cfgimage.c, the path
 * a board with RP_ENABLE_CONFIG_TEXT 0 takes) must be the same rp_config.
 *
 * SPDX-License-Identifier: MIT
 *
 * tests/unit/cfgimage.conf sets every directive and option away from its
 * default.  The Makefile builds build/cfgimage with these knobs, makes the
 * certificates in build/unit/cfgimage/ and prints build/unit/cfgimage-all.c
 * (symbol cfgimage_all), which this file includes.  The comparison knows no
 * field: word by word, equal words pass; a word that differs passes only
 * when both are pointers to the same thing -- into the parsed config at the
 * same offset as into the image (cfg->str, cfg->store), or to equal strings
 * (defaults rproxy.c points at).  A field cfgimage.c forgot stays 0 in the
 * image and fails here.  Also: cfgimage on a bad config says FILE:LINE and
 * exits 1, and rp_config_load refuses an image that does not fit.
 */
#include "rproxy.h"
#include "fakeport.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgimage-all.c"

#ifndef CFG_DIR
#define CFG_DIR "build/unit/cfgimage"
#endif
#ifndef CFGIMAGE
#define CFGIMAGE "build/cfgimage"
#endif

static rp_proxy parsed, loaded;

/* Inside this executable's image (GNU ld's symbols), where string literals
 * are: only such words are read as strings. */
extern char __executable_start[], _end[];

static int
looks_like_pointer(uintptr_t v)
{
    return v >= (uintptr_t)__executable_start && v < (uintptr_t)_end;
}

/* Offset of the first word where a (parsed) and b (loaded from img)
 * differ, or -1 when they are the same configuration. */
static long
first_difference(const rp_config *a, const rp_config *b, const rp_config *img)
{
    const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;
    size_t off;
    for (off = 0; off + sizeof(uintptr_t) <= sizeof(rp_config); off += sizeof(uintptr_t)) {
        uintptr_t wa, wb;
        memcpy(&wa, pa + off, sizeof(wa));
        memcpy(&wb, pb + off, sizeof(wb));
        if (wa == wb)
            continue;
        if (wa >= (uintptr_t)a && wa <= (uintptr_t)(a + 1)) {
            if (wb - (uintptr_t)img == wa - (uintptr_t)a)
                continue; /* into str / store, same place */
        } else if (looks_like_pointer(wa) && looks_like_pointer(wb) &&
                   strcmp((const char *)wa, (const char *)wb) == 0) {
            continue; /* a default string rproxy.c points at */
        }
        return (long)off;
    }
    for (; off < sizeof(rp_config); off++)
        if (pa[off] != pb[off])
            return (long)off;
    return -1;
}

static size_t
read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) {
        printf("Bail out! cannot open %s (make builds it)\n", path);
        exit(1);
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void
add_blob(const char *name)
{
    static char data[8][8192];
    static int n;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", CFG_DIR, name);
    fp_blob_add(name, data[n], read_file(path, data[n], sizeof(data[n])));
    n++;
}

/* The parsed config and the build-time image are the same rp_config, the
 * comparison finds a difference when there is one, and the image serves. */
static void
test_image(void)
{
    static char text[8192];
    rp_cfg_error e;
    size_t len = read_file("tests/unit/cfgimage.conf", text, sizeof(text));
    long d;

    memset(&e, 0, sizeof(e));
    rp_init(&parsed);
    if (!CHECK_INT(rp_config_parse(&parsed, text, len, &e), RP_OK, "cfgimage.conf parses (%d: %s)",
                   e.line, e.msg))
        return;
    CHECK(parsed.cfg.ncerts == 2 && parsed.cfg.certs[1].key_type == BR_KEYTYPE_RSA &&
              parsed.cfg.devices[1].ntas == 1 && parsed.cfg.nallow == 2 &&
              parsed.cfg.cache_heuristic == 1 && parsed.cfg.routes[1].cache_ttl == 5,
          "the config exercises certificates, CAs, allow=, cache options and cache_ttl");
    CHECK(parsed.cfg.nusers == 1 && parsed.cfg.users[0].nusers == 2 && parsed.cfg.routes[0].auth == 1 &&
              parsed.cfg.routes[0].nallow == 2 && parsed.cfg.listeners[3].nproxy_from == 2 &&
              parsed.cfg.status_auth == 1 && parsed.cfg.cl_rate == 30 && parsed.cfg.cl_burst == 7 &&
              parsed.cfg.routes[2].share && parsed.cfg.routes[2].share_linger_ms == 3000,
          "... and users, auth=, route allow=, proxy_from=, status auth=, client_limit, share=");
#if RP_ENABLE_HEADER_RULES && RP_ENABLE_PATH_MAP
    CHECK(parsed.cfg.nhrules == 3 && parsed.cfg.nhsets == 2 && parsed.cfg.routes[4].rewrite &&
              parsed.cfg.routes[4].headers == 2 && parsed.cfg.listeners[0].headers == 1 &&
              parsed.cfg.pools[1].host,
          "the config exercises header rules, rewrite= and pool host=");
#endif

    rp_init(&loaded);
    CHECK_INT(rp_config_load(&loaded, &cfgimage_all), RP_OK, "rp_config_load takes the image");
    d = first_difference(&parsed.cfg, &loaded.cfg, &cfgimage_all);
    CHECK(d < 0, "parsed config and build-time image are the same rp_config (first difference "
                 "at byte %ld of %zu)", d, sizeof(rp_config));

    /* The comparison can fail: a changed number, a pointer elsewhere. */
    loaded.cfg.devices[2].weight++;
    CHECK(first_difference(&parsed.cfg, &loaded.cfg, &cfgimage_all) ==
              (long)(offsetof(rp_config, devices) + 2 * sizeof(rp_device) +
                     offsetof(rp_device, weight)) / (long)sizeof(uintptr_t) * (long)sizeof(uintptr_t),
          "a changed device weight is found at its word");
    loaded.cfg.devices[2].weight--;
    loaded.cfg.routes[1].path = loaded.cfg.routes[1].host;
    CHECK(first_difference(&parsed.cfg, &loaded.cfg, &cfgimage_all) ==
              (long)(offsetof(rp_config, routes) + sizeof(rp_route) + offsetof(rp_route, path)),
          "a route path pointing at another string is found");
    loaded.cfg.routes[1].path = cfgimage_all.routes[1].path;
    loaded.cfg.certs[1].rsa.iq++;
    CHECK(first_difference(&parsed.cfg, &loaded.cfg, &cfgimage_all) >= 0,
          "a key part one byte off in the store is found");
    loaded.cfg.certs[1].rsa.iq--;
    CHECK(first_difference(&parsed.cfg, &loaded.cfg, &cfgimage_all) < 0, "and put back, the same");

    /* The image serves: the proxy starts on it (TLS listeners included). */
    CHECK_INT(rp_start(&loaded), RP_OK, "rp_start on the loaded image");
    rp_shutdown(&loaded);
}

/* An image that does not fit this build's knobs is refused. */
static void
test_image_refused(void)
{
    static rp_config bad;
    bad = cfgimage_all;
    bad.ndevices = RP_MAX_DEVICES + 1;
    rp_init(&loaded);
    CHECK_INT(rp_config_load(&loaded, &bad), RP_EINVAL, "an image with too many devices refused");
    bad = cfgimage_all;
    bad.pools[0].devices[0] = (uint8_t)bad.ndevices;
    CHECK_INT(rp_config_load(&loaded, &bad), RP_EINVAL, "a pool naming a missing device refused");
}

/* A bad config fails the image build with FILE:LINE: message, exit 1. */
static void
test_bad_config(void)
{
    char line[512] = "";
    FILE *pipe = popen(CFGIMAGE " tests/unit/cfgimage-bad.conf x 2>&1 >/dev/null; echo \"exit $?\"", "r");
    if (pipe) {
        size_t n = fread(line, 1, sizeof(line) - 1, pipe);
        line[n] = 0;
        pclose(pipe);
    }
    CHECK_STR(line, "tests/unit/cfgimage-bad.conf:3: unknown directive 'bogus'\nexit 1\n",
              "cfgimage on a bad config: FILE:LINE: message and exit 1");
}

static const tap_test tests[] = {
    TAP_TEST(image),
    TAP_TEST(image_refused),
    TAP_TEST(bad_config),
};

int
main(int argc, char **argv)
{
    fp_reset_all();
    add_blob("ec.crt");
    add_blob("ec.key");
    add_blob("rsa.crt");
    add_blob("rsa.key");
    add_blob("ca.crt");
    add_blob("staff.users");
    return tap_main(argc, argv, tests, TAP_COUNT(tests));
}

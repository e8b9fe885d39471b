/* blobs.S -- files compiled into flash: the gateway's config text (NUL-ended)
 * and its TLS certificate and key (PEM, generated at build time into
 * build/mps2-an386/tls/ by board.mk; registered by main.c as "gw.crt" and
 * "gw.key" in the port's blob table).  Only for RP_ENABLE_CONFIG_TEXT 1: else
 * the config is an rp_config image (scripts/cfgimage.c) and this is empty. */
#include "rp_config.h"
#if !defined(RP_ENABLE_CONFIG_TEXT) || RP_ENABLE_CONFIG_TEXT
    .section .rodata.blobs, "a"
    .global gw_conf
    .global gw_conf_end
    .global gw_crt
    .global gw_crt_end
    .global gw_key
    .global gw_key_end
    .balign 4
gw_conf:
    .incbin "gateway.conf"
gw_conf_end:
    .byte 0
    .balign 4
gw_crt:
    .incbin "gw.crt"
gw_crt_end:
    .balign 4
gw_key:
    .incbin "gw.key"
gw_key_end:
#endif

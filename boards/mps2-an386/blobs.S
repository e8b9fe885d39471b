/* blobs.S -- files compiled into flash: the gateway's config text (NUL-ended). */
    .section .rodata.blobs, "a"
    .global gw_conf
    .global gw_conf_end
    .balign 4
gw_conf:
    .incbin "gateway.conf"
gw_conf_end:
    .byte 0

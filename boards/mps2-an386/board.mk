# boards/mps2-an386/board.mk -- the Cortex-M4 gateway firmware for QEMU's
# mps2-an386 (included by the top Makefile; run from the repository root).
#
#   make firmware        build/mps2-an386/rproxy-gw.elf (arm-none-eabi-gcc -Os)
#   make qemu            start its devices (qemu.sh), boot it: UART on stdio,
#                        127.0.0.1:$(FW_PORT) (8088) -> gateway :80,
#                        127.0.0.1:$(FW_TLS_PORT) (8443) -> gateway :443 (TLS)
#   make size-firmware   text/data/bss of rproxy.o and of the firmware per component
#   make firmware-protect build/mps2-an386-protect/rproxy-gw.elf: the same board
#                        with RP_ENABLE_LIMITS 1 and protect.conf (a device that
#                        serves one connection at a time behind max_conns=1 and
#                        a queue; tests/qemu/protect.sh)
#   make firmware-ops    build/mps2-an386-ops/rproxy-gw.elf: RP_BOARD_OPS (issue
#                        17: devices by DNS name through lwIP's resolver, to a
#                        name server at 10.0.2.2:9153) and ops.conf;
#                        tests/qemu/ops.sh
#
# lwIP and BearSSL come from deps/ (scripts/fetch-deps.sh).  BearSSL is
# built for the Cortex-M4 into $(FW_BUILD)/bearssl/libbearssl.a (bearssl.mk).
# The gateway's test certificate (EC P-256, self-signed, CN rproxy-gw, SAN
# localhost + 127.0.0.1) is generated with openssl at build time into
# $(FW_BUILD)/tls/ -- never committed -- and compiled into flash (blobs.S)
# next to gateway.conf.  The embedded gateway.conf is checked at build time
# by the real parser built with the board's knobs, loading that certificate:
# a config error fails the build.
include port/lwip.mk

FW_DIR     = boards/mps2-an386
# FW_VARIANT=plus (make firmware-plus): issue 14/16's features on
# (rp_config.h RP_BOARD_PLUS), gateway-plus.conf, its own build directory.
FW_VARIANT ?=
ifeq ($(FW_VARIANT),plus)
FW_BUILD   = build/mps2-an386-plus
FW_CONF    = $(FW_DIR)/gateway-plus.conf
FW_VDEF    = -DRP_BOARD_PLUS
FW_BLOBS   = $(FW_BUILD)/tls/staff.users
FW_CONF2   =
FW_LWIP_MORE =
else ifeq ($(FW_VARIANT),ops)
# FW_VARIANT=ops (make firmware-ops): issue 17 on the board (rp_config.h and
# lwipopts.h RP_BOARD_OPS: RP_ENABLE_DNS, LWIP_UDP + LWIP_DNS), ops.conf.
FW_BUILD   = build/mps2-an386-ops
FW_CONF    = $(FW_DIR)/ops.conf
FW_CONF2   = $(FW_DIR)/ops2.conf
FW_VDEF    = -DRP_BOARD_OPS=1
FW_BLOBS   =
FW_LWIP_MORE = $(LWIP_DIR)/core/dns.c
else
FW_BUILD   = build/mps2-an386
FW_CONF    = $(FW_DIR)/gateway.conf
FW_CONF2   =
FW_VDEF    =
FW_BLOBS   =
FW_LWIP_MORE =
endif
FW_ELF     = $(FW_BUILD)/rproxy-gw.elf
FW_PORT   ?= 8088
FW_TLS_PORT ?= 8443
FW_CC      = arm-none-eabi-gcc
FW_ARCH    = -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
FW_WARN    = -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Wpointer-arith
FW_SSL_DIR = deps/bearssl
FW_SSL_LIB = $(FW_BUILD)/bearssl/libbearssl.a
FW_TLS     = $(FW_BUILD)/tls
FW_KNOBS   ?=
FW_EXTRA  ?=
FW_CPP     = $(FW_EXTRA) -DRP_CONFIG_FILE='"rp_config.h"' $(FW_VDEF) $(FW_KNOBS) -I$(FW_DIR) -I. -Iport $(LWIP_INC) -isystem $(FW_SSL_DIR)/inc
FW_CFLAGS  = $(FW_ARCH) -Os -g -ffunction-sections -fdata-sections
FW_LDFLAGS = $(FW_ARCH) -T$(FW_DIR)/mps2-an386.ld -Wl,--gc-sections -Wl,-Map=$(FW_BUILD)/rproxy-gw.map \
             -specs=nano.specs -specs=nosys.specs
FW_BOARD   = $(FW_BUILD)/board/main.o $(FW_BUILD)/board/startup.o $(FW_BUILD)/board/lan9118.o \
             $(FW_BUILD)/board/blobs.o $(FW_BUILD)/board/gateway-cfg.o \
             $(if $(FW_CONF2),$(FW_BUILD)/board/gateway-cfg2.o)
FW_LWIP    = $(patsubst $(LWIP_DIR)/%.c,$(FW_BUILD)/lwip/%.o,$(LWIP_SRC) $(FW_LWIP_MORE))
FW_OBJ     = $(FW_BUILD)/rproxy.o $(FW_BUILD)/port/lwip.o $(FW_BOARD) $(FW_LWIP)
FW_HDRS    = rproxy.h $(FW_DIR)/rp_config.h $(FW_DIR)/lwipopts.h port/lwip.h $(FW_SSL_DIR)/inc/bearssl.h

.PHONY: firmware firmware-plus firmware-protect firmware-ops qemu size-firmware size-firmware-plus \
        size-firmware-ops

firmware: $(FW_ELF)

firmware-plus: $(FW_SSL_LIB)
	@$(MAKE) --no-print-directory firmware FW_VARIANT=plus FW_SSL_LIB=$(FW_SSL_LIB)

size-firmware-plus:
	@$(MAKE) --no-print-directory size-firmware FW_VARIANT=plus

firmware-ops: $(FW_SSL_LIB)
	@$(MAKE) --no-print-directory firmware FW_VARIANT=ops FW_SSL_LIB=$(FW_SSL_LIB)

size-firmware-ops:
	@$(MAKE) --no-print-directory size-firmware FW_VARIANT=ops

# The plus firmware's users file (user "admin", password "gw-secret"), made at
# build time like the certificate.
$(FW_BUILD)/tls/staff.users:
	@mkdir -p $(dir $@)
	printf 'admin:%s\n' "$$(openssl passwd -5 -salt plusboardsalt gw-secret)" >$@

# A variant build: its own build directory and config, the same BearSSL.
firmware-protect: $(FW_SSL_LIB)
	@$(MAKE) --no-print-directory firmware FW_BUILD=$(FW_BUILD)-protect FW_SSL_LIB=$(FW_SSL_LIB) \
	    FW_CONF=$(FW_DIR)/protect.conf FW_KNOBS=-DRP_ENABLE_LIMITS=1

$(FW_BUILD)/rproxy.o: rproxy.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) -Werror $(FW_CFLAGS) -c -o $@ $<

$(FW_BUILD)/port/lwip.o: port/lwip.c $(FW_HDRS) $(LWIP_DIR)/core/init.c
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) $(FW_CFLAGS) -c -o $@ $<

$(FW_BUILD)/board/%.o: $(FW_DIR)/%.c $(FW_HDRS) $(FW_DIR)/lan9118.h $(LWIP_DIR)/core/init.c
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) $(FW_CFLAGS) -c -o $@ $<

$(FW_BUILD)/board/blobs.o: $(FW_DIR)/blobs.S $(FW_CONF) $(FW_BUILD)/gateway-cfg.c \
                          $(FW_TLS)/gw.crt $(FW_TLS)/gw.key $(FW_DIR)/rp_config.h
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_ARCH) $(FW_KNOBS) -I$(dir $(FW_CONF)) -I$(FW_DIR) -I$(FW_TLS) -c -o $@ $<

# Test certificate and key (build time only; a real gateway gets its own).
$(FW_TLS)/gw.crt $(FW_TLS)/gw.key &:
	@mkdir -p $(FW_TLS)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	    -subj /CN=rproxy-gw -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -keyout $(FW_TLS)/gw.key -out $(FW_TLS)/gw.crt 2>/dev/null

# BearSSL for the Cortex-M4 (sub-make: its source list exists only once
# deps/bearssl has been fetched).
$(FW_SSL_DIR)/inc/bearssl.h:
	@sh scripts/fetch-deps.sh bearssl

$(FW_SSL_LIB): $(FW_SSL_DIR)/inc/bearssl.h boards/mps2-an386/bearssl.mk
	@$(MAKE) -s -f boards/mps2-an386/bearssl.mk BEARSSL=$(FW_SSL_DIR) OUT=$(FW_BUILD)/bearssl

$(FW_BUILD)/lwip/%.o: $(LWIP_DIR)/%.c $(FW_DIR)/lwipopts.h
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_CFLAGS) -w -c -o $@ $<

# The embedded config, parsed on the build host by the same rproxy.c with the
# board's knobs (host build: the host's libbearssl-dev; `tls cert=` files are
# read from $(FW_TLS)): a bad line fails the build as gateway.conf:LINE: msg.
# With RP_ENABLE_CONFIG_TEXT 0 (rp_config.h) the firmware takes the printed
# rp_config image and carries no parser; with 1 it parses the text at boot
# (blobs.S) and the linker drops the image.
$(FW_BUILD)/cfgimage: scripts/cfgimage.c rproxy.c rproxy.h port/posix.c $(FW_DIR)/rp_config.h
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -DRP_CONFIG_FILE='"rp_config.h"' $(FW_VDEF) -DRP_ENABLE_CONFIG_TEXT=1 $(FW_KNOBS) -I$(FW_DIR) -I. -Iport \
	    -std=c99 -Wall -Wextra -O1 -o $@ scripts/cfgimage.c rproxy.c port/posix.c -lbearssl

$(FW_BUILD)/gateway-cfg.c: $(FW_CONF) $(FW_BUILD)/cfgimage $(FW_TLS)/gw.crt $(FW_TLS)/gw.key $(FW_BLOBS)
	cd $(FW_TLS) && ../cfgimage $(CURDIR)/$(FW_CONF) rp_gw_config >../gateway-cfg.c.tmp
	mv $(FW_BUILD)/gateway-cfg.c.tmp $@
	@echo "$(FW_CONF): ok"

# The ops firmware's second image (FW_CONF2: ops2.conf), rp_gw_config2: what
# a reload on the UART switches to (and back).
$(FW_BUILD)/gateway-cfg2.c: $(FW_CONF2) $(FW_BUILD)/cfgimage $(FW_TLS)/gw.crt $(FW_TLS)/gw.key
	cd $(FW_TLS) && ../cfgimage $(CURDIR)/$(FW_CONF2) rp_gw_config2 >../gateway-cfg2.c.tmp
	mv $(FW_BUILD)/gateway-cfg2.c.tmp $@
	@echo "$(FW_CONF2): ok"

$(FW_BUILD)/board/gateway-cfg2.o: $(FW_BUILD)/gateway-cfg2.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) -Werror $(FW_CFLAGS) -c -o $@ $<

$(FW_BUILD)/board/gateway-cfg.o: $(FW_BUILD)/gateway-cfg.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) -Werror $(FW_CFLAGS) -c -o $@ $<

$(FW_ELF): $(FW_OBJ) $(FW_SSL_LIB) $(FW_DIR)/mps2-an386.ld
	$(FW_CC) $(FW_LDFLAGS) -o $@ $(FW_OBJ) $(FW_SSL_LIB)
	@arm-none-eabi-size $@

# The devices gateway.conf names are started on 127.0.0.1:9101-9104 first and
# stopped when QEMU exits (qemu.sh).
qemu: $(FW_ELF) $(BUILD)/devsim
	@sh $(FW_DIR)/qemu.sh $(FW_ELF) $(FW_PORT) $(FW_TLS_PORT)

size-firmware: $(FW_ELF)
	@sh $(FW_DIR)/size.sh $(FW_BUILD)

# boards/mps2-an386/board.mk -- the Cortex-M4 gateway firmware for QEMU's
# mps2-an386 (included by the top Makefile; run from the repository root).
#
#   make firmware        build/mps2-an386/rproxy-gw.elf (arm-none-eabi-gcc -Os)
#   make qemu            boot it: UART on stdio, 127.0.0.1:$(FW_PORT) (8088) -> gateway :80
#   make size-firmware   text/data/bss of rproxy.o and of the firmware per component
#
# lwIP comes from deps/ (scripts/fetch-deps.sh).  The embedded gateway.conf
# is checked at build time by the real parser built with the board's knobs:
# a config error fails the build.
include port/lwip.mk

FW_DIR     = boards/mps2-an386
FW_BUILD   = build/mps2-an386
FW_ELF     = $(FW_BUILD)/rproxy-gw.elf
FW_PORT   ?= 8088
FW_CC      = arm-none-eabi-gcc
FW_ARCH    = -mcpu=cortex-m4 -mthumb -mfloat-abi=soft
FW_WARN    = -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Wpointer-arith
FW_CPP     = -DRP_CONFIG_FILE='"rp_config.h"' -I$(FW_DIR) -I. -Iport $(LWIP_INC)
FW_CFLAGS  = $(FW_ARCH) -Os -g -ffunction-sections -fdata-sections
FW_LDFLAGS = $(FW_ARCH) -T$(FW_DIR)/mps2-an386.ld -Wl,--gc-sections -Wl,-Map=$(FW_BUILD)/rproxy-gw.map \
             -specs=nano.specs -specs=nosys.specs
FW_BOARD   = $(FW_BUILD)/board/main.o $(FW_BUILD)/board/startup.o $(FW_BUILD)/board/lan9118.o \
             $(FW_BUILD)/board/blobs.o
FW_LWIP    = $(patsubst $(LWIP_DIR)/%.c,$(FW_BUILD)/lwip/%.o,$(LWIP_SRC))
FW_OBJ     = $(FW_BUILD)/rproxy.o $(FW_BUILD)/port/lwip.o $(FW_BOARD) $(FW_LWIP)
FW_HDRS    = rproxy.h $(FW_DIR)/rp_config.h $(FW_DIR)/lwipopts.h port/lwip.h

.PHONY: firmware qemu size-firmware

firmware: $(FW_ELF)

$(FW_BUILD)/rproxy.o: rproxy.c $(FW_HDRS)
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) $(FW_CFLAGS) -c -o $@ $<

$(FW_BUILD)/port/lwip.o: port/lwip.c $(FW_HDRS) $(LWIP_DIR)/core/init.c
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) $(FW_CFLAGS) -c -o $@ $<

$(FW_BUILD)/board/%.o: $(FW_DIR)/%.c $(FW_HDRS) $(FW_DIR)/lan9118.h $(LWIP_DIR)/core/init.c
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_WARN) $(FW_CFLAGS) -c -o $@ $<

$(FW_BUILD)/board/blobs.o: $(FW_DIR)/blobs.S $(FW_DIR)/gateway.conf $(FW_BUILD)/gateway.conf.ok
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_ARCH) -I$(FW_DIR) -c -o $@ $<

$(FW_BUILD)/lwip/%.o: $(LWIP_DIR)/%.c $(FW_DIR)/lwipopts.h
	@mkdir -p $(dir $@)
	$(FW_CC) $(FW_CPP) $(FW_CFLAGS) -w -c -o $@ $<

# The embedded config, parsed by the same rproxy.c with the board's knobs.
$(FW_BUILD)/conf-check: rproxy.c rproxy.h port/posix.c boards/host/main.c $(FW_DIR)/rp_config.h
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -DRP_CONFIG_FILE='"rp_config.h"' -I$(FW_DIR) -I. -Iport -Iboards/host \
	    -O1 -o $@ rproxy.c port/posix.c boards/host/main.c

$(FW_BUILD)/gateway.conf.ok: $(FW_DIR)/gateway.conf $(FW_BUILD)/conf-check
	$(FW_BUILD)/conf-check -t -c $(FW_DIR)/gateway.conf && touch $@

$(FW_ELF): $(FW_OBJ) $(FW_DIR)/mps2-an386.ld
	$(FW_CC) $(FW_LDFLAGS) -o $@ $(FW_OBJ)
	@arm-none-eabi-size $@

qemu: $(FW_ELF)
	qemu-system-arm -M mps2-an386 -nographic -kernel $(FW_ELF) \
	    -nic user,model=lan9118,hostfwd=tcp:127.0.0.1:$(FW_PORT)-:80

size-firmware: $(FW_ELF)
	@sh $(FW_DIR)/size.sh $(FW_BUILD)

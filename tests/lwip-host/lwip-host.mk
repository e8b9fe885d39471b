# tests/lwip-host/lwip-host.mk -- rproxy + port/lwip.c + lwIP core on Linux (TAP),
# under ASan+UBSan, RP_ASSERT on.   make -f tests/lwip-host/lwip-host.mk   ->  build/rproxy-lwip
BUILD ?= build
.DEFAULT_GOAL := $(BUILD)/rproxy-lwip
include port/lwip.mk
CC    ?= cc
WARN   = -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Wpointer-arith
SAN    = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LH_INC = -D_GNU_SOURCE -I. -Iport -Itests/lwip-host $(LWIP_INC)
LH_OBJ = $(patsubst $(LWIP_DIR)/%.c,$(BUILD)/lwip-host/%.o,$(LWIP_SRC))

$(BUILD)/lwip-host/%.o: $(LWIP_DIR)/%.c tests/lwip-host/lwipopts.h
	@mkdir -p $(dir $@)
	$(CC) $(LH_INC) -O1 -g $(SAN) -c -o $@ $<

$(BUILD)/rproxy-lwip: rproxy.c rproxy.h port/lwip.c port/lwip.h tests/lwip-host/main.c tests/lwip-host/hostboard.h \
                      tests/lwip-host/lwipopts.h $(LH_OBJ)
	$(CC) $(LH_INC) $(WARN) -O1 -g $(SAN) -DRP_ENABLE_ASSERT=1 -o $@ rproxy.c port/lwip.c tests/lwip-host/main.c $(LH_OBJ)

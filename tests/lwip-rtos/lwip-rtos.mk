# tests/lwip-rtos/lwip-rtos.mk -- rproxy on Debian's lwIP (liblwip-dev: NO_SYS=0,
# sockets, core locking, tapif), under ASan+UBSan, RP_ASSERT on, TLS on:
#   build/rproxy-lwsock      port/sockets.c
#   build/rproxy-lwrtos      port/lwip.c (raw API) under the RTOS
#   build/rproxy-lwsock-hw   port/sockets.c at -O2 without sanitizers: the
#                            loop task's stack high-water mark is measured on it
#   build/sockets-m4.o       port/sockets.c for Cortex-M4, -Werror, compile only
# The library's sockets come from the heap (Debian's max_sockets patch,
# LWIP_SOCKET_OPEN_COUNT=1), not from MEMP_NUM_NETCONN (4 there): its
# socket exhaustion is injected (tests/lwip-rtos/inject.h).
BUILD  ?= build
CC     ?= cc
WARN    = -std=c99 -Wall -Wextra -Wundef -Wshadow -Wstrict-prototypes -Wpointer-arith
SAN     = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LR_INC  = -D_GNU_SOURCE -I. -Iport -I/usr/include/lwip
LR_KNOB = -DRP_ENABLE_TLS=1 -DRP_MAX_CONNS=32 -DRP_MAX_UPSTREAM=16 -DRP_MAX_TLS_CONNS=4 \
          -DRP_MAX_LISTENERS=2
LR_LIB  = -llwip -lbearssl -lpthread
LR_DEP  = rproxy.c rproxy.h tests/lwip-host/hostboard.h tests/lwip-rtos/main.c tests/lwip-rtos/inject.h tests/lwip-rtos/lwip-rtos.mk
.DEFAULT_GOAL := all

all: $(BUILD)/rproxy-lwsock $(BUILD)/rproxy-lwrtos $(BUILD)/rproxy-lwsock-hw $(BUILD)/sockets-m4.o

$(BUILD)/rproxy-lwsock: $(LR_DEP) port/sockets.c port/sockets.h
	@mkdir -p $(BUILD)
	$(CC) $(LR_INC) $(WARN) -Werror -O1 -g $(SAN) -DRP_ENABLE_ASSERT=1 $(LR_KNOB) \
	    -DRP_SK_SEND=test_send -DRP_SK_WRITEV=test_writev -DRP_SK_SOCKET=test_socket -DRP_SK_ACCEPT=test_accept -include tests/lwip-rtos/inject.h \
	    -o $@ rproxy.c port/sockets.c tests/lwip-rtos/main.c $(LR_LIB)

$(BUILD)/rproxy-lwsock-hw: $(LR_DEP) port/sockets.c port/sockets.h
	@mkdir -p $(BUILD)
	$(CC) $(LR_INC) $(WARN) -Werror -O2 -g $(LR_KNOB) \
	    -DRP_SK_SEND=test_send -DRP_SK_WRITEV=test_writev -DRP_SK_SOCKET=test_socket -DRP_SK_ACCEPT=test_accept -include tests/lwip-rtos/inject.h \
	    -o $@ rproxy.c port/sockets.c tests/lwip-rtos/main.c $(LR_LIB)

# -Wno-empty-body: tcp_backlog_accepted() is an empty macro when TCP_LISTEN_BACKLOG=0 (Debian).
# With TCP_LISTEN_BACKLOG=0 lwIP completes every handshake and the port resets
# those beyond its own backlog (RP_LWIP_BACKLOG, 4): 16 here, for the burst of
# 16 clients in tests/lwip-host/scenarios.sh (with TCP_LISTEN_BACKLOG=1 the
# extra SYNs are dropped and retried instead; port/README.md).
$(BUILD)/rproxy-lwrtos: $(LR_DEP) port/lwip.c port/lwip.h
	@mkdir -p $(BUILD)
	$(CC) $(LR_INC) $(WARN) -Werror -Wno-empty-body -O1 -g $(SAN) -DRP_ENABLE_ASSERT=1 $(LR_KNOB) -DRP_TEST_RAW \
	    -DRP_LWIP_BACKLOG=16 \
	    -o $@ rproxy.c port/lwip.c tests/lwip-rtos/main.c $(LR_LIB)

# Cortex-M4 (hard float), newlib headers, lwIP's own socket headers (no
# external POSIX ones): tests/lwip-rtos/m4/lwipopts.h, arch/cc.h, sys_arch.h.
M4_CC   = arm-none-eabi-gcc
M4_FLAGS = -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os -ffunction-sections
$(BUILD)/sockets-m4.o: port/sockets.c port/sockets.h rproxy.h tests/lwip-rtos/m4/*.h tests/lwip-rtos/m4/arch/*.h
	@mkdir -p $(BUILD)
	$(M4_CC) $(M4_FLAGS) $(WARN) -Werror -I. -Iport -Itests/lwip-rtos/m4 -Ideps/lwip/src/include \
	    -DRP_MAX_CONNS=8 -DRP_MAX_UPSTREAM=4 -c -o $@ port/sockets.c

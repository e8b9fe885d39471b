# boards/mps2-an386/bearssl.mk -- BearSSL for the Cortex-M4 as a static library.
#
#   make -f boards/mps2-an386/bearssl.mk OUT=build/mps2-an386/bearssl
#
# Run by board.mk as a sub-make once deps/bearssl exists (the source list is
# read when this file is parsed, after scripts/fetch-deps.sh has run).  Every
# deps/bearssl/src/**/*.c is compiled with -ffunction-sections
# -fdata-sections; the firmware link (--gc-sections) keeps only what rproxy.c
# reaches.  Bare metal: no /dev/urandom, no OS clock (rproxy seeds every
# engine from rp_port_random and gives the X.509 engine its own time).  The
# 32-bit implementations (i31/m31, ct AES, ctmul GHASH, ...) are BearSSL's
# defaults on this target.
BEARSSL ?= deps/bearssl
OUT     ?= build/mps2-an386/bearssl
CC       = arm-none-eabi-gcc
CFLAGS   = -mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os -g -ffunction-sections -fdata-sections \
           -DBR_USE_URANDOM=0 -DBR_USE_WIN32_RAND=0 -DBR_USE_UNIX_TIME=0 -DBR_USE_WIN32_TIME=0 \
           -DBR_RDRAND=0 -DBR_AES_X86NI=0 -DBR_SSE2=0 -DBR_POWER8=0 -DBR_INT128=0 -DBR_UMUL128=0 \
           -I$(BEARSSL)/inc -I$(BEARSSL)/src -w
SRC      = $(shell find $(BEARSSL)/src -name '*.c' | LC_ALL=C sort)
OBJ      = $(patsubst $(BEARSSL)/src/%.c,$(OUT)/%.o,$(SRC))

$(OUT)/libbearssl.a: $(OBJ)
	@rm -f $@
	arm-none-eabi-ar rcs $@ $(OBJ)

$(OUT)/%.o: $(BEARSSL)/src/%.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) -c -o $@ $<

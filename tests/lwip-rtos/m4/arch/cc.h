/* arch/cc.h -- lwIP's compiler/platform header for the Cortex-M4 compile
 * check (newlib, arm-none-eabi-gcc).  SPDX-License-Identifier: MIT */
#ifndef RP_M4_ARCH_CC_H
#define RP_M4_ARCH_CC_H
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#define LWIP_ERRNO_STDINCLUDE 1
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) do { printf("lwip assert: %s\n", x); abort(); } while (0)
#endif

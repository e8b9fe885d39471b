/*
 * arch/cc.h -- lwIP compiler/platform glue for arm-none-eabi-gcc + newlib.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RP_LWIP_ARCH_CC_H
#define RP_LWIP_ARCH_CC_H

void board_printf(const char *fmt, ...);
void board_fault(const char *what);
unsigned board_rand(void);

#define LWIP_PLATFORM_DIAG(x)   do { board_printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) board_fault(x)
#define LWIP_RAND()             ((u32_t)board_rand())
#define LWIP_NO_UNISTD_H        1
#define LWIP_ERRNO_STDINCLUDE   1

#endif

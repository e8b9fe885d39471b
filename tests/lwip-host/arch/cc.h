/*
 * arch/cc.h -- lwIP compiler/platform glue for the lwIP-on-host test build.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef RP_LWIP_ARCH_CC_H
#define RP_LWIP_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>

#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) do { fprintf(stderr, "lwIP assert: %s (%s:%d)\n", \
                                       x, __FILE__, __LINE__); abort(); } while (0)
#define LWIP_RAND() ((u32_t)random())
#define LWIP_ERRNO_STDINCLUDE 1

#endif

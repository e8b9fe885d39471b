/*
 * rp_config.h -- compile-time knobs for the host board (Linux, BSD, macOS).
 *
 * SPDX-License-Identifier: MIT
 *
 * The defaults in rproxy.h are sized for a host, so this file sets nothing.
 * It is read only when the build passes -DRP_CONFIG_FILE='"rp_config.h"'
 * (the Makefile puts boards/host on the include path).  To build a smaller
 * or larger daemon, uncomment and adjust; every knob and its byte cost is
 * documented in rproxy.h.
 */
#ifndef RP_CONFIG_HOST_H
#define RP_CONFIG_HOST_H

/* #define RP_MAX_CONNS     1024 */ /* clients at once: 2*RP_BUF_SIZE each */
/* #define RP_MAX_UPSTREAM  1024 */ /* device connections, busy + pooled */
/* #define RP_BUF_SIZE     16384 */ /* bytes per direction per connection */
/* #define RP_MAX_HEAD      8192 */ /* largest request/response head */
/* #define RP_MAX_URI       4096 */ /* longest request target */
/* #define RP_ENABLE_LOG       1 */ /* RP_LOG lines to stderr */
/* #define RP_LOG_LEVEL RP_LOG_INFO */

#endif /* RP_CONFIG_HOST_H */

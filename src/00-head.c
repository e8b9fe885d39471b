/*
 * rproxy.c -- the portable core of rproxy, an HTTP/1.1 reverse proxy.
 *
 * SPDX-License-Identifier: MIT
 *
 * This file is the whole proxy: configuration language, HTTP/1.1 parser,
 * router, balancer, response cache, connection state machine and event
 * loop.  It makes no OS calls (the port in port/ does, through the contract
 * at the end of rproxy.h) and never allocates: every object lives in the
 * caller's rp_proxy.  Read it top-down; each section uses only those above.
 *
 * Generated: the sections live in src/ (one file each); scripts/amalgamate.sh
 * concatenates them into this file, which is what a firmware drops in.  Edit
 * src/, run make; CI checks that this file matches.
 *
 * Contents  (grep -n '^/\* ==== \[' rproxy.c)
 *   [1] Basics: views, characters, numbers, a bounded writer
 *   [2] Errors and addresses
 *   [3] Buffers
 *   [4] HTTP/1.1 parser: head end, request, response, chunked
 *   [5] TLS certificate store
 *   [6] Configuration language
 *   [7] Router and balancer
 *   [8] Connections: slots, interest, timers, closing
 *   [9] Request forwarding: the device-bound head
 *  [10] Response forwarding: the client-bound head and bodies
 *  [11] Cache: arena, entries, freshness (RFC 9111)
 *  [12] The exchange state machine
 *  [13] Health probes and the status page
 *  [14] Event loop
 *  [15] Public API
 */
#include "rproxy.h"

#include <string.h>

/* For small functions called from several paths that GCC's -Os would copy
 * into every caller although one shared copy is smaller (each marked one
 * measured: at least 16 bytes of the board build). */
#ifdef __GNUC__
#define RP_NOINLINE __attribute__((noinline))
#else
#define RP_NOINLINE
#endif

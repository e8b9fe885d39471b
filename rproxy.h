/*
 * rproxy.h -- a small HTTP/1.1 reverse proxy for gateways and small Linux boxes.
 *
 * SPDX-License-Identifier: MIT
 *
 * ==== Overview ====
 *
 * rproxy forwards HTTP/1.1 from clients to a few "devices" (cameras, PLCs,
 * sensors with tiny HTTP servers) behind it: keep-alive on both sides, a pool
 * of idle device connections reused across clients, streamed bodies
 * (Content-Length, chunked, close-delimited), WebSocket tunnels, routing by
 * Host and path prefix, balancing by weight, strict parsing that refuses
 * ambiguous framing.
 *
 * The core is one drop-in file, rproxy.c, beside this header.  rproxy.c is
 * generated (scripts/amalgamate.sh; `make rproxy.c`) from src/: the internal
 * header src/rp_int.h and 19 sections src/NN-*.c, each of which compiles on
 * its own.  Read and edit src/, never rproxy.c: rproxy.c's preamble lists
 * the sections ([1] basics ... [19] public API) and each section opens with
 * what it owns and what it calls.  The core makes no OS calls and never
 * allocates: everything lives in one caller-declared `rp_proxy` whose size
 * is fixed by the RP_* macros below.  It reaches the network through the
 * port contract near the end of this header, implemented by exactly one
 * file in port/ (posix.c: epoll/poll on BSD sockets; lwip.c: lwIP's raw
 * API; template.c: a skeleton for another stack).
 *
 * ==== This header ====
 *
 * The public part, in order: quick start, conventions, memory (below); the
 * compile-time configuration (every RP_* knob and default, with its cost or
 * range); errors; the public types with their functions (views and
 * addresses, the HTTP/1.1 parser, the configuration language and
 * rp_config, statistics and the access log); the proxy's API; the port
 * contract; logging.  Then, fenced off at the end, "Private: the layout of
 * rp_proxy": there only so that the compiler knows sizeof(rp_proxy);
 * nothing in it is API.
 *
 * ==== Quick start ====
 *
 *     static rp_proxy p;                         // zero-filled: static storage
 *     rp_cfg_error e;
 *     if (rp_init(&p) != RP_OK) ...
 *     if (rp_config_parse(&p, text, strlen(text), &e) != RP_OK)
 *         printf("cfg:%d: %s\n", e.line, e.msg);
 *     if (rp_start(&p) != RP_OK) ...            // opens the listeners
 *     for (;;) rp_poll(&p, 1000);               // the whole event loop
 *
 * ==== Conventions ====
 *
 * - Threading: single-threaded.  Every rp_* call on one rp_proxy must come
 *   from the same thread (or the lwIP main loop); nothing inside locks.
 * - Ownership: rproxy never frees or keeps caller memory.  rp_config_parse
 *   copies every string it keeps into the proxy's own arena, so the config
 *   text may be freed afterwards.  Views (rp_str) point into rproxy's buffers
 *   and are valid only during the call that hands them out.
 * - NULL: pointers are never NULL unless a doc block says so.
 * - Errors: functions return RP_OK (0) or a negative rp_err; functions that
 *   move or consume bytes return a count >= 0 or a negative rp_err.
 *   rp_strerror() names every code.
 * - Memory: rp_proxy must start zero-filled (declare it static, or memset it
 *   once).  rp_init() touches only bookkeeping, never the big buffers, so
 *   untouched buffer pages cost no RSS on a hosted OS.
 * - Fields: of rp_proxy, read `cfg` and `stats` and set `access_fn` /
 *   `access_ud`; every other field is private (see the last section).  Each
 *   public type's doc block says which of its fields the caller fills and
 *   which rproxy (the parser, the configuration, the port) fills.
 *
 * ==== Memory ====
 *
 * All of rproxy's RAM is the one rp_proxy; rp_proxy_size() returns its size
 * for the knobs compiled.  Its parts in bytes, for the host daemon (this
 * header's defaults with RP_ENABLE_TLS 1, as `make` builds it, x86_64) and
 * for the mps2-an386 board (boards/mps2-an386/rp_config.h, Cortex-M4).  The
 * block is scripts/size.sh's output (`make size` prints it, `make
 * size-tables` writes it here and into README.md; tests/header_check.sh
 * fails when either differs):
 *
 *   ---- BEGIN generated: scripts/size.sh --table h (make size-tables) ----
 *   bytes                                       host daemon  mps2 board
 *   rp_conn: one connection slot                        408         160
 *     all connection slots                          835,584       2,560
 *   buffer block                                     16,392       2,052
 *     buffer pool, all blocks                    67,141,632      65,664
 *   rp_tls: one TLS slot                             40,600      27,728
 *     of which engine and X.509 contexts              7,422       6,923
 *     all TLS slots                               2,598,400      55,456
 *   TLS session cache                                16,384       1,024
 *   rp_config: the configuration                     43,752       4,344
 *     of which certificates and their store          18,272       2,176
 *   second configuration slot                        43,752           -
 *   rp_cache: the cache tables                       43,032       1,400
 *   cache arena                                   1,048,576      16,384
 *   client table                                      3,072           -
 *   shared streams                                    6,272           -
 *   shared stream rings                           1,048,576           -
 *   everything else                                   2,976         872
 *   rp_proxy: all of rproxy's RAM                72,832,008     147,704
 *   rp_http_msg: a parsed head, on the stack          2,664         704
 *   ---- END generated: scripts/size.sh --table h ----
 *
 * A connection slot (rp_conn) is a client or a device connection: there
 * are RP_MAX_CONNS + RP_MAX_UPSTREAM of them.  A buffer block is
 * RP_BUF_SIZE and a pointer; the pool has two per slot (RP_NBUFS).  A TLS
 * slot is BearSSL's 16,709-byte input buffer (a client may send full
 * records), RP_TLS_OBUF_SIZE of output buffer and the engine and X.509
 * contexts; there are RP_MAX_TLS_CONNS.  The configuration holds the
 * RP_MAX_* tables, RP_CFG_STR_BYTES of strings and, with TLS, the
 * certificates and RP_TLS_STORE_BYTES.  The cache is its tables
 * (RP_CACHE_ENTRIES) and its arena (RP_CACHE_BYTES).
 *
 * Reserved is not resident: rp_init clears only what comes before the
 * buffer pool; a buffer block is taken only while a buffer holds bytes (a
 * busy keep-alive pair usually holds one, not four), the arena only as
 * objects are stored, a TLS slot only when a TLS connection needs one.
 * Pages never used cost no RSS on a hosted OS.
 *
 * ==== Features ====
 *
 * HTTP/1.1 forwarding (always); balancing, passive and active health;
 * the status page (RP_ENABLE_STATUS); the response cache (RP_ENABLE_CACHE);
 * TLS termination, TLS toward devices and client certificates with BearSSL
 * (RP_ENABLE_TLS and its parts).
 */
#ifndef RPROXY_H
#define RPROXY_H

#ifdef RP_CONFIG_FILE
#include RP_CONFIG_FILE
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Compile-time configuration ====
 * Every knob has a default here; override it in RP_CONFIG_FILE or with -D.
 * Byte costs are per instance of the thing counted. */

/** Client connections served at once.  Cost each: a connection slot
 *  (rp_conn) and two buffer blocks (the memory table above). */
#ifndef RP_MAX_CONNS
#define RP_MAX_CONNS 1024
#endif

/** Device (upstream) connections, busy and idle-pooled together.
 *  Cost each: a connection slot (rp_conn) and two buffer blocks. */
#ifndef RP_MAX_UPSTREAM
#define RP_MAX_UPSTREAM RP_MAX_CONNS
#endif

/** Buffer blocks in the pool: one per direction per slot, so a slot never
 *  waits for a block.  Cost: RP_BUF_SIZE + a pointer each.  Blocks are
 *  handed out on demand and returned when empty, so on a hosted OS only
 *  the blocks in use at the busiest moment ever cost RSS. */
#ifndef RP_NBUFS
#define RP_NBUFS (2 * (RP_MAX_CONNS + RP_MAX_UPSTREAM))
#endif

/** Bytes per direction per connection (each side has an in and an out
 *  buffer).  A request or response head must fit in RP_MAX_HEAD.  At least
 *  1,024 (an error reply); at least 1,552 with RP_ENABLE_STATUS (one status
 *  page item and its chunk framing; src/17-status.c refuses less). */
#ifndef RP_BUF_SIZE
#define RP_BUF_SIZE 16384
#endif

/** Largest request/response head accepted (bytes); larger -> 431 / 502. */
#ifndef RP_MAX_HEAD
#define RP_MAX_HEAD 8192
#endif

/** Longest request target (bytes); longer -> 414. */
#ifndef RP_MAX_URI
#define RP_MAX_URI 4096
#endif

/** Header fields per message; more -> 431 (request) or 502 (response).
 *  Cost: an rp_header each in every rp_http_msg, which lives on the stack
 *  while a head is parsed (the memory table gives its size). */
#ifndef RP_MAX_HEADERS
#define RP_MAX_HEADERS 64
#endif

/** Configuration tables. */
#ifndef RP_MAX_LISTENERS
#define RP_MAX_LISTENERS 4
#endif
#ifndef RP_MAX_POOLS
#define RP_MAX_POOLS 8
#endif
#ifndef RP_MAX_DEVICES
#define RP_MAX_DEVICES 16
#endif
#ifndef RP_MAX_ROUTES
#define RP_MAX_ROUTES 16
#endif
/** Bytes for strings kept from the config (names, hosts, paths). */
#ifndef RP_CFG_STR_BYTES
#define RP_CFG_STR_BYTES 1024
#endif

/* ---- Defaults ----
 * What an option left out of the config is, and the few fixed delays and
 * limits around it.  Each is a constant in the code: changing one costs no
 * RAM and no code.  The option that overrides it and the range the config
 * accepts are given; the checks at the end of this section refuse a
 * default outside that range. */

/** Default timeouts in milliseconds; `timeout` in the config overrides. */
#ifndef RP_TIMEOUT_CLIENT_HEADER_MS
#define RP_TIMEOUT_CLIENT_HEADER_MS 10000 /* whole request head must arrive */
#endif
#ifndef RP_TIMEOUT_CLIENT_IDLE_MS
#define RP_TIMEOUT_CLIENT_IDLE_MS 60000 /* keep-alive wait; stalled client */
#endif
#ifndef RP_TIMEOUT_CONNECT_MS
#define RP_TIMEOUT_CONNECT_MS 3000 /* device TCP connect */
#endif
#ifndef RP_TIMEOUT_DEVICE_MS
#define RP_TIMEOUT_DEVICE_MS 30000 /* device silence while a response is due */
#endif
#ifndef RP_TIMEOUT_DEVICE_IDLE_MS
#define RP_TIMEOUT_DEVICE_IDLE_MS 30000 /* idle pooled device connection */
#endif
#ifndef RP_TIMEOUT_LINGER_MS
#define RP_TIMEOUT_LINGER_MS 2000 /* drain after an error reply, then close */
#endif

/** How long a request may wait in its pool's queue (`pool ... queue=N`)
 *  for a device under max_conns; `queue_timeout=` overrides. */
#ifndef RP_QUEUE_TIMEOUT_MS
#define RP_QUEUE_TIMEOUT_MS 10000
#endif

/** Retries of a request on another device (or a fresh connection) when
 *  nothing of it can have been processed; `pool ... retries=N` overrides. */
#ifndef RP_DEFAULT_RETRIES
#define RP_DEFAULT_RETRIES 2
#endif

/** A device's share of its pool's requests (count, 0 = disabled);
 *  `device ... weight=N` (0..1000) overrides. */
#ifndef RP_DEFAULT_WEIGHT
#define RP_DEFAULT_WEIGHT 1
#endif
/** Failures within the fail timeout that take a device out (count, 0 =
 *  never); `device ... max_fails=N` (0..1000) overrides. */
#ifndef RP_DEFAULT_MAX_FAILS
#define RP_DEFAULT_MAX_FAILS 1
#endif
/** Window for max_fails and how long a device then stays out (ms);
 *  `device ... fail_timeout=S` (seconds, 0..86400) overrides. */
#ifndef RP_DEFAULT_FAIL_TIMEOUT_MS
#define RP_DEFAULT_FAIL_TIMEOUT_MS 10000
#endif

/** Active health (a `health POOL` line): the path probed (a string that
 *  starts with '/'); `path=/PATH` overrides. */
#ifndef RP_HEALTH_PATH
#define RP_HEALTH_PATH "/"
#endif
/** Time between probes of one device (ms); `interval=MS` (100..86400000)
 *  overrides. */
#ifndef RP_HEALTH_INTERVAL_MS
#define RP_HEALTH_INTERVAL_MS 5000
#endif
/** A probe's answer must arrive within (ms); `timeout=MS` (10..600000)
 *  overrides. */
#ifndef RP_HEALTH_TIMEOUT_MS
#define RP_HEALTH_TIMEOUT_MS 2000
#endif
/** Probes passed in a row that bring a device back, failed in a row that
 *  take it out (counts); `rise=N`, `fall=N` (1..100) override. */
#ifndef RP_HEALTH_RISE
#define RP_HEALTH_RISE 2
#endif
#ifndef RP_HEALTH_FALL
#define RP_HEALTH_FALL 3
#endif
/** First probes after rp_start, spread out (ms): device i's is due at
 *  1 + (i * RP_HEALTH_STAGGER_MS modulo its pool's interval) ms after the
 *  start.  No option. */
#ifndef RP_HEALTH_STAGGER_MS
#define RP_HEALTH_STAGGER_MS 37
#endif

/** Largest response the cache stores (bytes); `cache max_object=BYTES`
 *  (1..RP_CACHE_BYTES) overrides. */
#ifndef RP_CACHE_MAX_OBJECT
#define RP_CACHE_MAX_OBJECT (RP_CACHE_BYTES / 4)
#endif
/** How long concurrent misses for one URL wait for the first one's fill
 *  (ms); `cache lock_timeout=MS` (0..600000) overrides. */
#ifndef RP_CACHE_LOCK_MS
#define RP_CACHE_LOCK_MS 5000
#endif

/** Pseudonym in Via headers (a string of at most RP_CFG_NAME_MAX letters,
 *  digits, - _ .); `via NAME` overrides. */
#ifndef RP_DEFAULT_VIA
#define RP_DEFAULT_VIA "rproxy"
#endif
/** Longest NAME in the config (bytes): pool names, `via`,
 *  `client_cert_header=`.  At most 40 (a Via pseudonym is cut there). */
#ifndef RP_CFG_NAME_MAX
#define RP_CFG_NAME_MAX 32
#endif
/** Longest `health path=` and `status path=` (bytes).  At most RP_MAX_URI
 *  (a longer target is refused with 414, so such a path never matches). */
#ifndef RP_CFG_PATH_MAX
#define RP_CFG_PATH_MAX 200
#endif

/** Connections the OS may queue on a listener before rproxy accepts them
 *  (count; port/lwip.c caps it at RP_LWIP_BACKLOG).  No option. */
#ifndef RP_LISTEN_BACKLOG
#define RP_LISTEN_BACKLOG 511
#endif
/** A listener whose accept failed (EMFILE: out of descriptors) rests this
 *  long before it accepts again, instead of spinning (ms).  No option. */
#ifndef RP_LISTEN_PAUSE_MS
#define RP_LISTEN_PAUSE_MS 100
#endif
/** With every TLS slot taken, a new client may evict a handshake at least
 *  this old; when none is, its listener waits this long before looking again
 *  (ms).  RP_ENABLE_TLS only.  No option. */
#ifndef RP_TLS_EVICT_AGE_MS
#define RP_TLS_EVICT_AGE_MS 1000
#endif

/** TLS termination with BearSSL (0/1): `listen PORT tls` and `tls` lines.
 *  Needs <bearssl.h> and libbearssl.  Cost: see RP_MAX_TLS_CONNS. */
#ifndef RP_ENABLE_TLS
#define RP_ENABLE_TLS 0
#endif

/** TLS connections at once (their own pool: BearSSL's 16,709-byte input
 *  buffer dominates).  Cost each: a TLS slot (rp_tls in the memory table):
 *  the 16,709 B input buffer, RP_TLS_OBUF_SIZE of output buffer, and the
 *  engine and X.509 contexts.  Clients beyond it are refused. */
#ifndef RP_MAX_TLS_CONNS
#define RP_MAX_TLS_CONNS 64
#endif

/** TLS output buffer per connection (bytes).  Full records need 16,469;
 *  smaller buffers send smaller records (fine for HTTP; at least 1,024). */
#ifndef RP_TLS_OBUF_SIZE
#define RP_TLS_OBUF_SIZE 16469
#endif

/** Session-ID cache for resumption (bytes; ~100 B per session). */
#ifndef RP_TLS_SESSION_CACHE_BYTES
#define RP_TLS_SESSION_CACHE_BYTES 16384
#endif

/** Certificates (`tls` lines), chain length each, and the bytes kept for
 *  their DER chains and private keys. */
#ifndef RP_TLS_MAX_CERTS
#define RP_TLS_MAX_CERTS 4
#endif
#ifndef RP_TLS_MAX_CHAIN
#define RP_TLS_MAX_CHAIN 4
#endif
#ifndef RP_TLS_STORE_BYTES
#define RP_TLS_STORE_BYTES 16384
#endif
/** CA certificates per `client_ca=` file (client certificate trust). */
#ifndef RP_TLS_MAX_CAS
#define RP_TLS_MAX_CAS 4
#endif

/** Parts of TLS a small board may leave out (each 0/1, default 1):
 *  TLS toward devices (`device … tls`, BearSSL's client handshake),
 *  client certificates (`client_ca=`, BearSSL's X.509 engine), and the
 *  compat profile (TLS 1.0/1.1, CBC, RSA key exchange).  Leaving all three
 *  out saves ~25 KB of BearSSL and ~3 KB of rproxy on a Cortex-M4. */
#ifndef RP_ENABLE_TLS_DEVICE
#define RP_ENABLE_TLS_DEVICE 1
#endif
#ifndef RP_ENABLE_TLS_CLIENT_AUTH
#define RP_ENABLE_TLS_CLIENT_AUTH 1
#endif
#ifndef RP_ENABLE_TLS_COMPAT
#define RP_ENABLE_TLS_COMPAT 1
#endif

/** Fatal TLS alerts of rproxy's own (0/1, default 1).  BearSSL's engine sends
 *  none when it fails on the peer's input; with this, while records still
 *  go out in the clear (before our ChangeCipherSpec), the peer gets the
 *  alert RFC 5246 §7.2.2 names for the error (decode_error, record_overflow,
 *  protocol_version, unexpected_message, bad_record_mac, ...) just before
 *  the close.  0: a bare close (the README's TLS section says what a client
 *  sees).  Cost: ~150 B of Cortex-M4 code (boards/mps2-an386 sets 0). */
#ifndef RP_ENABLE_TLS_ALERTS
#define RP_ENABLE_TLS_ALERTS 1
#endif

#ifndef RP_TIMEOUT_HANDSHAKE_MS
#define RP_TIMEOUT_HANDSHAKE_MS 10000 /* TLS handshake must finish */
#endif

/** The `status` page (JSON / Prometheus), 0/1.  Cost: ~2.5 KB of code. */
#ifndef RP_ENABLE_STATUS
#define RP_ENABLE_STATUS 1
#endif
/** Runtime control on the status path (HAProxy's `set server state|weight`):
 *  `POST /PATH/device?pool=P&device=ADDR&state=ready|drain|maint&weight=N`
 *  from the status page's allow= (and auth=), 0/1; needs RP_ENABLE_STATUS.
 *  Cost: 1 byte per device and the handler. */
#ifndef RP_ENABLE_RUNTIME
#define RP_ENABLE_RUNTIME RP_ENABLE_STATUS
#endif
#if RP_ENABLE_RUNTIME && !RP_ENABLE_STATUS
#error "RP_ENABLE_RUNTIME needs RP_ENABLE_STATUS (the control path is under the status path)"
#endif

/** Reload without a restart, 0/1: rp_proxy holds a second configuration
 *  slot (cfg2, sizeof(rp_config) more: see the memory table) that
 *  rp_config_parse / rp_config_load fill while the proxy runs and
 *  rp_config_apply switches to between requests; every connection carries
 *  the slot its exchange started on (1 byte), so what is in flight finishes
 *  on the configuration it began with.  Cost: ~2.5 KB of Cortex-M4 code
 *  (src/27-reload.c and a slot switch per report), sizeof(rp_config) of RAM
 *  (boards/mps2-an386 sets 0; its ops firmware 1). */
#ifndef RP_ENABLE_RELOAD
#define RP_ENABLE_RELOAD 1
#endif

/** The configuration language, 0/1: rp_config_parse() and what it needs
 *  (address parsing, PEM and key decoding).  0 on a board whose config is
 *  fixed at build time: scripts/cfgimage.c parses the text on the build
 *  host and prints an rp_config initializer, rp_config_load() takes it.
 *  Cost: ~9 KB of Cortex-M4 code. */
#ifndef RP_ENABLE_CONFIG_TEXT
#define RP_ENABLE_CONFIG_TEXT 1
#endif

/** The response cache (RFC 9111), 0/1.  Routes opt in with `cache=on`. */
#ifndef RP_ENABLE_CACHE
#define RP_ENABLE_CACHE 1
#endif
/** Protecting small devices, 0/1: `device ... max_conns=N max_idle=N` (every
 *  connection rproxy holds to it, and the idle pooled ones) and `pool ...
 *  queue=N queue_timeout=DURATION` (requests wait, first in first out, for
 *  a device under its max_conns instead of failing).  The queue is a list
 *  through the waiting client slots: no table; 48 bytes per pool and 8 per
 *  device on a 64-bit host, 28 and 8 on a Cortex-M4 (+837 B of its code). */
#ifndef RP_ENABLE_LIMITS
#define RP_ENABLE_LIMITS 1
#endif

/** `route ... cache=on cache_ttl=DURATION`: a fixed freshness for responses
 *  that give none (nginx's proxy_cache_valid), 0/1; 4 bytes per route. */
#ifndef RP_ENABLE_CACHE_TTL
#define RP_ENABLE_CACHE_TTL RP_ENABLE_CACHE
#endif
/** Cache arena, bytes: stored heads and bodies, in RP_CACHE_BLOCK blocks.
 *  Lives behind the buffer pool in rp_proxy; pages are touched only as
 *  objects land. */
#ifndef RP_CACHE_BYTES
#define RP_CACHE_BYTES (1024u * 1024u)
#endif
/** Arena block size (bytes).  An object takes whole blocks, so small
 *  blocks waste less and large ones need fewer sends per hit. */
#ifndef RP_CACHE_BLOCK
#define RP_CACHE_BLOCK 2048u
#endif
/** Stored responses (entries), each an entry and a hash bucket in the
 *  cache's tables (rp_cache in the memory table). */
#ifndef RP_CACHE_ENTRIES
#define RP_CACHE_ENTRIES 512
#endif
/** Variants (Vary) kept per URL; more evicts the least recently used. */
#ifndef RP_CACHE_VARIANTS
#define RP_CACHE_VARIANTS 4
#endif
/** Bytes of stored key + Vary values + validators + head per entry (all
 *  must fit one parse); larger responses are not stored. */
#ifndef RP_CACHE_META
#define RP_CACHE_META (RP_BUF_SIZE < 8192u ? RP_BUF_SIZE : 8192u)
#endif

/** The per-request access callback (rp_proxy.access_fn): each connection
 *  keeps the request's method, target and byte count for it (120 bytes of
 *  RAM per connection slot).  A board that logs no accesses sets 0: no
 *  callback, no copies; rp_stats still counts responses by class. */
#ifndef RP_ENABLE_ACCESS_LOG
#define RP_ENABLE_ACCESS_LOG 1
#endif

/** Device UIs mounted under a path (issue 15): `route ... rewrite=/PREFIX/`
 *  swaps the matched path prefix before the request goes to the device,
 *  and maps Location, Content-Location, Refresh url= and Set-Cookie Path=
 *  in its responses back (nginx's proxy_redirect default and
 *  proxy_cookie_path); `pool ... host=NAME` sends that Host to the pool's
 *  devices.  8 bytes per route, 4 per pool, RP_MAP_HOST_MAX per connection
 *  slot (the client's Host, for absolute Locations). */
#ifndef RP_ENABLE_PATH_MAP
#define RP_ENABLE_PATH_MAP 1
#endif
/** Longest client Host kept per connection for mapping absolute Location
 *  values back (with the NUL); a longer Host gets path-absolute ones. */
#ifndef RP_MAP_HOST_MAX
#define RP_MAP_HOST_MAX 64
#endif

/** Header rules (issue 15): named sets of `headers NAME request|response
 *  set|add|del FIELD ["VALUE"]` lines, used by `route ... headers=NAME` and
 *  `listen ... headers=NAME`; response rules apply to cache hits too.
 *  RP_MAX_HEADER_RULES rules (a name and a value pointer and 3 bytes each)
 *  in RP_MAX_HEADER_SETS sets; 1 byte per route and listener. */
#ifndef RP_ENABLE_HEADER_RULES
#define RP_ENABLE_HEADER_RULES 1
#endif
/** `headers` lines in all (each one rule). */
#ifndef RP_MAX_HEADER_RULES
#define RP_MAX_HEADER_RULES 16
#endif
/** Named header rule sets. */
#ifndef RP_MAX_HEADER_SETS
#define RP_MAX_HEADER_SETS 4
#endif

/** Long-lived streams (issue 15): `route ... device_timeout=DURATION
 *  stream_idle=DURATION` (the wait for the response head; silence inside
 *  a body once started, and in WebSocket tunnels, 0 = none) and `timeout
 *  tunnel=DURATION` (tunnels' default, else client_idle).  8 bytes per
 *  route, 4 in the config. */
#ifndef RP_ENABLE_STREAM_TIMEOUTS
#define RP_ENABLE_STREAM_TIMEOUTS 1
#endif

/** `error_page STATUS... FILE` (issue 15): rproxy's own answers (404,
 *  502, 503, 504, ...) with a page loaded at config time (rp_port_blob)
 *  into a static store, Content-Type from the file's extension. */
#ifndef RP_ENABLE_ERROR_PAGES
#define RP_ENABLE_ERROR_PAGES 1
#endif
/** Bytes of the error page store (all pages; each at most RP_BUF_SIZE/2). */
#ifndef RP_ERROR_PAGE_BYTES
#define RP_ERROR_PAGE_BYTES 8192
#endif
/** Statuses that may have a page. */
#ifndef RP_MAX_ERROR_PAGES
#define RP_MAX_ERROR_PAGES 16
#endif

/** `listen ... redirect_https`: a plain listener that answers 301 to the
 *  https URL.  0 for a board that serves no such listener: the config
 *  refuses the option (file:line). */
#ifndef RP_ENABLE_REDIRECT
#define RP_ENABLE_REDIRECT 1
#endif

/** The board has a wall clock (rp_port_time): rproxy adds the Date a device
 *  left out (RFC 9110 §6.6.1 asks it of a recipient with a clock) and the
 *  cache counts apparent age (RFC 9111 §4.2.3).  A board without an RTC sets
 *  0: rp_port_time is never called and no date formatter is compiled in;
 *  ages then rest on the devices' Age fields and the response delay. */
#ifndef RP_ENABLE_WALL_CLOCK
#define RP_ENABLE_WALL_CLOCK 1
#endif

/** IPv6 addresses in the configuration and the logs.  A board whose IP
 *  stack is IPv4-only (lwIP with LWIP_IPV6 0) sets 0: the config then
 *  refuses IPv6 addresses (file:line) and no IPv6 formatter is compiled in. */
#ifndef RP_ENABLE_IPV6
#define RP_ENABLE_IPV6 1
#endif

/** Devices by DNS name (`device POOL NAME:PORT`), 0/1: the names are looked
 *  up through the port's resolver (rp_port_resolve, never blocking the
 *  loop), at rp_start, every pool `resolve=` and soon after a failure;
 *  the last good address is kept while a lookup fails.  0: a name in the
 *  config is an error that names this knob, and no resolver is called.
 *  Cost: 40 bytes per device (32 on a 32-bit target), 4 per pool, a byte
 *  in rp_proxy; ~2.7 KB of x86-64 code, 877 B of Cortex-M4 code. */
#ifndef RP_ENABLE_DNS
#define RP_ENABLE_DNS 1
#endif
/** How often a device name is looked up again, ms (`resolve=` of a pool,
 *  1 s..24 h); RP_ENABLE_DNS only. */
#ifndef RP_RESOLVE_INTERVAL_MS
#define RP_RESOLVE_INTERVAL_MS 30000
#endif
/** After a failure of a named device (a connect, a probe), its name is looked
 *  up again, but no sooner than this after its last lookup began (ms). */
#ifndef RP_RESOLVE_RETRY_MS
#define RP_RESOLVE_RETRY_MS 1000
#endif
#if RP_ENABLE_DNS && (RP_RESOLVE_INTERVAL_MS < 1000 || RP_RESOLVE_INTERVAL_MS > 86400000)
#error "RP_RESOLVE_INTERVAL_MS must be 1000..86400000 (the range of `resolve=`)"
#endif

/* ---- Authentication and the PROXY protocol (issue 14) ---- */

/** HTTP Basic auth (RFC 7617) against `users` files of crypt hashes ($5$
 *  SHA-256-crypt, $6$ SHA-512-crypt, as `openssl passwd -5/-6` and
 *  `mkpasswd -m sha-256|sha-512` make them), 0/1.  The hashes are computed
 *  with BearSSL's SHA-256/512, so the default follows RP_ENABLE_TLS (BearSSL
 *  is linked anyway); 1 without TLS needs <bearssl.h> and libbearssl too.
 *  Cost (Cortex-M4 -Os): ~4.0 KB of code and no RAM of its own (an rp_users
 *  per users file, below); a password check needs 1.7 KB of stack at the
 *  deepest, BearSSL's SHA-512 included (figures in src/20-auth.c). */
#ifndef RP_ENABLE_AUTH
#define RP_ENABLE_AUTH RP_ENABLE_TLS
#endif
/** Users per `users` file (an rp_users table).  Cost: 4 B each. */
#ifndef RP_MAX_USERS
#define RP_MAX_USERS 16
#endif
/** Bytes of user names and hashes per rp_users table, each NUL-ended: a
 *  $6$ hash with rounds= is up to 123 bytes, a $5$ one up to 80.  Cost: 1 B
 *  each; an rp_users is 4 + 4 * RP_MAX_USERS + RP_AUTH_STR_BYTES (2,116 B
 *  with the defaults).  At most 65,535. */
#ifndef RP_AUTH_STR_BYTES
#define RP_AUTH_STR_BYTES 2048
#endif
/** Longest user name in a users file (bytes). */
#ifndef RP_AUTH_USER_MAX
#define RP_AUTH_USER_MAX 64
#endif
/** Bytes of decoded `user:password` a Basic header may carry: the caller
 *  of basic_credentials gives a buffer this big (on the stack: 256 B);
 *  longer credentials are refused (-> 401). */
#ifndef RP_AUTH_CRED_MAX
#define RP_AUTH_CRED_MAX 256
#endif
/** Most `rounds=` a users file may ask for.  The crypt spec allows
 *  1000..999,999,999; every round is a SHA-256/512 over ~100-200 bytes on
 *  the event loop's thread (5,000 rounds: ~3 ms on an x86_64 core), so a
 *  hash above this is refused when the file is read, naming this setting.
 *  A board lowers it (a Cortex-M4 is far slower; not measured yet). */
#ifndef RP_AUTH_MAX_ROUNDS
#define RP_AUTH_MAX_ROUNDS 1000000
#endif

/** `listen ... proxy_protocol`: the PROXY protocol v1 (text) and v2
 *  (binary) header from a load balancer in front, HAProxy's specification,
 *  0/1.  Cost: the parser (src/21-proxyproto.c), ~1.0 KB of Cortex-M4 code
 *  (and the 78-byte CIDR match where the status page does not bring it);
 *  no RAM of its own, ~140 B of stack. */
#ifndef RP_ENABLE_PROXY_PROTOCOL
#define RP_ENABLE_PROXY_PROTOCOL 1
#endif
/** Largest PROXY v2 header taken, bytes (16 + addresses + TLVs); a longer
 *  one is malformed (the connection is closed).  v1 is at most 107 bytes
 *  by the specification.  At least 232 (16 + AF_UNIX's 216). */
#ifndef RP_PROXY_V2_MAX
#define RP_PROXY_V2_MAX 512
#endif
#if RP_ENABLE_AUTH && (RP_MAX_USERS < 1 || RP_MAX_USERS > 255)
#error "RP_MAX_USERS must be 1..255"
#endif
#if RP_ENABLE_AUTH && (RP_AUTH_STR_BYTES < 128 || RP_AUTH_STR_BYTES > 65535)
#error "RP_AUTH_STR_BYTES must be 128..65535 (one $6$ line needs up to 123 B and its name)"
#endif
#if RP_ENABLE_AUTH && (RP_AUTH_MAX_ROUNDS < 1000 || RP_AUTH_MAX_ROUNDS > 999999999)
#error "RP_AUTH_MAX_ROUNDS must be 1000..999999999 (the crypt spec's range of rounds=)"
#endif
#if RP_ENABLE_AUTH && (RP_AUTH_CRED_MAX < 2 || RP_AUTH_USER_MAX < 1)
#error "RP_AUTH_CRED_MAX must be at least 2 and RP_AUTH_USER_MAX at least 1"
#endif
#if RP_ENABLE_PROXY_PROTOCOL && (RP_PROXY_V2_MAX < 232 || RP_PROXY_V2_MAX > 65551)
#error "RP_PROXY_V2_MAX must be 232..65551 (16 + AF_UNIX's 216 up to 16 + 65535)"
#endif
/** `route ... allow=ADDR[/BITS]`: per-route access control by client
 *  network (the same matcher as the status page's allow=), 0/1.  Cost: an
 *  rp_net list per route (4 x 20 B + 1). */
#ifndef RP_ENABLE_ACL
#define RP_ENABLE_ACL 1
#endif
/** `client_limit conns=N rate=N/s|N/m burst=N`: per client address, open
 *  connections and a request-rate token bucket, 0/1.  Needs the client
 *  table below. */
#ifndef RP_ENABLE_CLIENT_LIMIT
#define RP_ENABLE_CLIENT_LIMIT 1
#endif
/** Client addresses tracked at once (client_limit's counts and Basic auth's
 *  failed attempts); the least recently seen address without open
 *  connections is reused.  Cost: 48 B each (3 KB with 64). */
#ifndef RP_CLIENT_TABLE
#define RP_CLIENT_TABLE 64
#endif
/** `users` lines (rp_users tables in rp_config, each 4 + 4 * RP_MAX_USERS +
 *  RP_AUTH_STR_BYTES bytes). */
#ifndef RP_MAX_USER_LISTS
#define RP_MAX_USER_LISTS 2
#endif
/** Recently verified Basic credentials kept (a SHA-256 of the users table
 *  and the header value, 32 B each), so a 5000-round hash is not computed on
 *  every request; each is trusted for RP_AUTH_CACHE_MS. */
#ifndef RP_AUTH_CACHE
#define RP_AUTH_CACHE 16
#endif
#ifndef RP_AUTH_CACHE_MS
#define RP_AUTH_CACHE_MS 60000
#endif
/** Failed Basic logins from one address within RP_AUTH_FAIL_WINDOW_MS after
 *  which it gets 429 for RP_AUTH_LOCK_MS (nothing is checked meanwhile). */
#ifndef RP_AUTH_FAIL_MAX
#define RP_AUTH_FAIL_MAX 10
#endif
#ifndef RP_AUTH_FAIL_WINDOW_MS
#define RP_AUTH_FAIL_WINDOW_MS 60000
#endif
#ifndef RP_AUTH_LOCK_MS
#define RP_AUTH_LOCK_MS 60000
#endif
#if (RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH) && (RP_CLIENT_TABLE < 1 || RP_CLIENT_TABLE > 65534)
#error "RP_CLIENT_TABLE must be 1..65534"
#endif
#if RP_ENABLE_AUTH && (RP_MAX_USER_LISTS < 1 || RP_MAX_USER_LISTS > 254 || RP_AUTH_CACHE < 1)
#error "RP_MAX_USER_LISTS must be 1..254 and RP_AUTH_CACHE at least 1"
#endif
/* ---- end of issue 14's knobs ---- */

/** `route ... share=on`: one device connection per live stream (MJPEG
 *  multipart/x-mixed-replace, Server-Sent Events, a chunked or
 *  close-delimited 200), however many viewers, 0/1.  Cost: the stream
 *  table (RP_MAX_STREAMS x ~1.4 KB, cleared by rp_init) and the rings
 *  behind it (RP_MAX_STREAMS x RP_STREAM_RING, touched only when used). */
#ifndef RP_ENABLE_SHARE
#define RP_ENABLE_SHARE 1
#endif
/** Live streams shared at once; a stream request beyond them is served
 *  unshared (counted in share_full). */
#ifndef RP_MAX_STREAMS
#define RP_MAX_STREAMS 4
#endif
/** Bytes of a stream kept for its viewers: a viewer further behind skips to
 *  the next part boundary (a dropped frame).  Hold at least two of the
 *  stream's largest parts (an MJPEG frame), or a joiner never gets a whole
 *  one.  A power of two. */
#ifndef RP_STREAM_RING
#define RP_STREAM_RING (256u * 1024u)
#endif
/** The response head stored per stream for later viewers, bytes. */
#ifndef RP_STREAM_HEAD
#define RP_STREAM_HEAD 1024
#endif
/** Part boundaries remembered per stream (where a viewer may start). */
#ifndef RP_STREAM_SYNCS
#define RP_STREAM_SYNCS 16
#endif
#if RP_ENABLE_SHARE && (RP_STREAM_RING & (RP_STREAM_RING - 1))
#error "RP_STREAM_RING must be a power of two"
#endif
#if RP_ENABLE_SHARE && (RP_MAX_STREAMS < 1 || RP_MAX_STREAMS > 254)
#error "RP_MAX_STREAMS must be 1..254"
#endif

/* ---- The event loop's turn: a watchdog-friendly loop (issue 19) ---- */

/** The longest rp_poll turn, 0/1: how long it took (the port's clock, ms)
 *  and what it did -- reports served and left, bytes moved, TLS handshake
 *  steps, timers fired (p->loop, rp_loop_reset; the status page shows it).
 *  For a loop task that feeds a watchdog: the figure its timeout must
 *  cover.  Cost: p->loop (48 B with 64-bit counters) and the turn's record
 *  (32 B), one more rp_port_now_ms per turn, and 192 B of Cortex-M4 code
 *  (the board README's knob table). */
#ifndef RP_ENABLE_TURN_STATS
#define RP_ENABLE_TURN_STATS 1
#endif
/** Most readiness reports (a connection's or a listener's) one rp_poll turn
 *  serves, 1..64; 0 = no bound (all the port returned, up to 64).  What a
 *  turn leaves is served first by the next one, in the port's order and
 *  before anything reported later (no connection waits more than
 *  64 / RP_TURN_MAX_EVENTS turns), and that turn does not wait in the port.
 *  Cost with a bound: the reports are kept in rp_proxy (1,024 B on a 64-bit
 *  host, 512 B on a Cortex-M4) instead of rp_poll's stack. */
#ifndef RP_TURN_MAX_EVENTS
#define RP_TURN_MAX_EVENTS 16
#endif
/** Most bytes one turn moves (received + sent on every socket, TLS records
 *  as they cross the socket), 0 = no bound.  Checked before each report and
 *  after each step of a connection's service, so a turn goes over by at most
 *  one step (a buffer, or a TLS record, each way): a client and its device
 *  connection cut short ask the port for writability and are served on by
 *  a later turn. */
#ifndef RP_TURN_MAX_BYTES
#define RP_TURN_MAX_BYTES 262144
#endif
#if RP_TURN_MAX_EVENTS < 0 || RP_TURN_MAX_EVENTS > 64
#error "RP_TURN_MAX_EVENTS must be 0..64 (0: no bound; a turn takes at most 64 reports)"
#endif
#if RP_TURN_MAX_BYTES < 0 || RP_TURN_MAX_BYTES > 1073741824
#error "RP_TURN_MAX_BYTES must be 0..1073741824 (0: no bound)"
#endif
/* (internal) what the turn keeps: its reports, its own record */
#define RP_TURN_BOUND_ (RP_TURN_MAX_EVENTS || RP_TURN_MAX_BYTES)
#define RP_TURN_TRACK_ (RP_ENABLE_TURN_STATS || RP_TURN_MAX_BYTES)

/** The type of the counters (rp_stats and the per-device ones): 64-bit by
 *  default; a small board may set uint32_t (they then wrap after 4 G, like
 *  lwIP's counters without LWIP_STATS_LARGE) and halve each increment's code. */
#ifndef RP_COUNTER
#define RP_COUNTER uint64_t
#endif

/** Logging: RP_LOG(level, (fmt, ...)) compiles away when RP_ENABLE_LOG is 0. */
#ifndef RP_ENABLE_LOG
#define RP_ENABLE_LOG 1
#endif

/** Refusals say which rule fired: the request parser names it in
 *  rp_http_msg.why ("duplicate Content-Length", "too many header fields
 *  (32)"), and rproxy's "refused request" log line and the access callback
 *  (rp_access.why) carry it.  0 for a board short of flash: the texts
 *  (~1.5 KB) go, the status codes stay. */
#ifndef RP_ENABLE_REASONS
#define RP_ENABLE_REASONS RP_ENABLE_LOG
#endif

/** Internal invariant checks (RP_ASSERT in src/): 0 compiles them out (the
 *  default: no code, no cost).  1 checks the connection state machine's
 *  invariants at every transition and calls rp_port_assert on a breach; the
 *  unit, integration and fuzz builds turn it on. */
#ifndef RP_ENABLE_ASSERT
#define RP_ENABLE_ASSERT 0
#endif

#if RP_ENABLE_CACHE && (RP_CACHE_BYTES / RP_CACHE_BLOCK > 65534u || RP_CACHE_BYTES / RP_CACHE_BLOCK < 4u)
#error "RP_CACHE_BYTES / RP_CACHE_BLOCK must be 4..65534 blocks: change RP_CACHE_BLOCK"
#endif
#if RP_ENABLE_CACHE && (RP_CACHE_ENTRIES > 65534 || RP_CACHE_ENTRIES < 2)
#error "RP_CACHE_ENTRIES must be 2..65534"
#endif
#if RP_ENABLE_CACHE && RP_CACHE_META > RP_BUF_SIZE
#error "RP_CACHE_META must not exceed RP_BUF_SIZE (a stored head is rebuilt in one buffer)"
#endif
#if RP_ENABLE_CACHE_TTL && !RP_ENABLE_CACHE
#error "RP_ENABLE_CACHE_TTL needs RP_ENABLE_CACHE"
#endif
#if RP_MAX_HEAD > RP_BUF_SIZE
#error "RP_MAX_HEAD must not exceed RP_BUF_SIZE: raise RP_BUF_SIZE or lower RP_MAX_HEAD"
#endif
#if RP_BUF_SIZE < 1024
#error "RP_BUF_SIZE below 1024 cannot hold an error reply: raise RP_BUF_SIZE"
#endif
#if RP_MAX_URI >= RP_MAX_HEAD
#error "RP_MAX_URI must be smaller than RP_MAX_HEAD"
#endif
#if RP_ENABLE_TLS
#include <bearssl.h>
#if RP_TLS_OBUF_SIZE < 1024
#error "RP_TLS_OBUF_SIZE below 1024 cannot carry a handshake record: raise it"
#endif
#if RP_MAX_TLS_CONNS < 1
#error "RP_MAX_TLS_CONNS must be at least 1 with RP_ENABLE_TLS (or set RP_ENABLE_TLS 0)"
#endif
#endif
#if RP_NBUFS < 2 * (RP_MAX_CONNS + RP_MAX_UPSTREAM)
#error "RP_NBUFS must give every connection slot its two buffers: raise RP_NBUFS"
#endif
#if RP_MAX_DEVICES > 32
#error "RP_MAX_DEVICES above 32 does not fit the per-request tried mask"
#endif
#if RP_MAX_CONNS < 1 || RP_MAX_UPSTREAM < 1
#error "RP_MAX_CONNS and RP_MAX_UPSTREAM must be at least 1"
#endif
/* Defaults the config itself would refuse (the ranges of their options). */
#if RP_TIMEOUT_CLIENT_HEADER_MS < 1 || RP_TIMEOUT_CLIENT_IDLE_MS < 1 || RP_TIMEOUT_CONNECT_MS < 1 || \
    RP_TIMEOUT_DEVICE_MS < 1 || RP_TIMEOUT_DEVICE_IDLE_MS < 1 || RP_TIMEOUT_HANDSHAKE_MS < 1 || \
    RP_TIMEOUT_CLIENT_HEADER_MS > 86400000 || RP_TIMEOUT_CLIENT_IDLE_MS > 86400000 || \
    RP_TIMEOUT_CONNECT_MS > 86400000 || RP_TIMEOUT_DEVICE_MS > 86400000 || \
    RP_TIMEOUT_DEVICE_IDLE_MS > 86400000 || RP_TIMEOUT_HANDSHAKE_MS > 86400000
#error "RP_TIMEOUT_*_MS must be 1..86400000 (the range of `timeout NAME=MS`)"
#endif
#if RP_DEFAULT_RETRIES < 0 || RP_DEFAULT_RETRIES > 10
#error "RP_DEFAULT_RETRIES must be 0..10 (the range of `retries=`)"
#endif
#if RP_DEFAULT_WEIGHT < 0 || RP_DEFAULT_WEIGHT > 1000
#error "RP_DEFAULT_WEIGHT must be 0..1000 (the range of `weight=`)"
#endif
#if RP_DEFAULT_MAX_FAILS < 0 || RP_DEFAULT_MAX_FAILS > 1000
#error "RP_DEFAULT_MAX_FAILS must be 0..1000 (the range of `max_fails=`)"
#endif
#if RP_DEFAULT_FAIL_TIMEOUT_MS < 0 || RP_DEFAULT_FAIL_TIMEOUT_MS > 86400000
#error "RP_DEFAULT_FAIL_TIMEOUT_MS must be 0..86400000 (`fail_timeout=` is 0..86400 s)"
#endif
#if RP_HEALTH_INTERVAL_MS < 100 || RP_HEALTH_INTERVAL_MS > 86400000
#error "RP_HEALTH_INTERVAL_MS must be 100..86400000 (the range of `interval=`)"
#endif
#if RP_HEALTH_TIMEOUT_MS < 10 || RP_HEALTH_TIMEOUT_MS > 600000
#error "RP_HEALTH_TIMEOUT_MS must be 10..600000 (the range of `timeout=`)"
#endif
#if RP_HEALTH_RISE < 1 || RP_HEALTH_RISE > 100 || RP_HEALTH_FALL < 1 || RP_HEALTH_FALL > 100
#error "RP_HEALTH_RISE and RP_HEALTH_FALL must be 1..100 (the range of `rise=`, `fall=`)"
#endif
#if RP_HEALTH_STAGGER_MS < 0
#error "RP_HEALTH_STAGGER_MS must not be negative"
#endif
#if RP_ENABLE_CACHE && (RP_CACHE_MAX_OBJECT < 1 || RP_CACHE_MAX_OBJECT > RP_CACHE_BYTES)
#error "RP_CACHE_MAX_OBJECT must be 1..RP_CACHE_BYTES (the range of `max_object=`)"
#endif
#if RP_CACHE_LOCK_MS < 0 || RP_CACHE_LOCK_MS > 600000
#error "RP_CACHE_LOCK_MS must be 0..600000 (the range of `lock_timeout=`)"
#endif
#if RP_CFG_NAME_MAX < 1 || RP_CFG_NAME_MAX > 40
#error "RP_CFG_NAME_MAX must be 1..40 (a Via pseudonym is cut at 40 bytes)"
#endif
#if RP_CFG_PATH_MAX < 1 || RP_CFG_PATH_MAX > RP_MAX_URI
#error "RP_CFG_PATH_MAX must be 1..RP_MAX_URI (a longer path could never be requested)"
#endif
#if RP_LISTEN_BACKLOG < 1 || RP_LISTEN_PAUSE_MS < 1 || RP_TLS_EVICT_AGE_MS < 1
#error "RP_LISTEN_BACKLOG, RP_LISTEN_PAUSE_MS and RP_TLS_EVICT_AGE_MS must be at least 1"
#endif

/* ==== Errors ==== */

/** One signed error space (lwIP's err_t): RP_OK, or a negative failure. */
typedef enum {
    RP_OK = 0,
    RP_EAGAIN = -1,      /**< would block / message incomplete: try later */
    RP_EINVAL = -2,      /**< malformed input (-> 400 / 502) */
    RP_ENOMEM = -3,      /**< a fixed pool is exhausted */
    RP_ECLOSED = -4,     /**< peer closed the connection */
    RP_ERESET = -5,      /**< connection reset */
    RP_ETIMEDOUT = -6,   /**< a timeout expired */
    RP_EREFUSED = -7,    /**< connect refused */
    RP_EIO = -8,         /**< other I/O failure */
    RP_ETOOLONG = -9,    /**< request target too long (-> 414) */
    RP_EHDRTOOBIG = -10, /**< head too big or too many fields (-> 431) */
    RP_ENOTIMPL = -11,   /**< unknown transfer coding / method (-> 501) */
    RP_EVERSION = -12,   /**< HTTP version not supported (-> 505) */
    RP_EEXPECT = -13,    /**< unsupported Expect (-> 417) */
    RP_ECONFIG = -14,    /**< bad configuration */
    RP_ENOTFOUND = -15,  /**< no route / no such name */
    RP_EADDR = -16,      /**< cannot bind or resolve an address */
    RP_EACCES = -17,     /**< permission denied (rp_port_blob) */
    RP_EBUSY = -18       /**< still in use (rp_config_parse while draining) */
} rp_err;

/** Name of an error code ("RP_OK", "connect refused", ...); never NULL. */
const char *rp_strerror(int err);

/* ==== Small shared types ==== */

/** A counter in rp_stats and rp_device: RP_COUNTER (uint64_t unless the
 *  board narrows it), filled by rproxy, read by the caller. */
typedef RP_COUNTER rp_counter;

/** A view: n bytes at p, not NUL-terminated, owned by someone else.  Views
 *  rproxy hands out point into its buffers or the caller's (the parser's
 *  input) and are valid only as long as those bytes are. */
typedef struct {
    const char *p;
    size_t n;
} rp_str;

/** A network address.  family 4 or 6; ip in network order (4 or 16 bytes
 *  used); port in host order.  Filled by rp_addr_parse (the config's
 *  addresses) and by the port (rp_port_accept's peer); the port reads it in
 *  rp_port_listen and rp_port_connect. */
typedef struct {
    uint8_t family;
    uint8_t ip[16];
    uint16_t port;
} rp_addr;

#if RP_ENABLE_CONFIG_TEXT
/** Parse "A.B.C.D", "[v6]" or "localhost" with a ":PORT" (port required when
 *  need_port, else optional and left 0).  Returns RP_OK or RP_EINVAL
 *  (RP_ENOTIMPL for an IPv6 address when RP_ENABLE_IPV6 is 0). */
int rp_addr_parse(rp_addr *a, const char *s, size_t n, int need_port);
#endif

/** Format an address without port ("10.0.0.5", "::1") into out (NUL-ended);
 *  returns the length.  cap >= 46 is always enough. */
size_t rp_addr_format(const rp_addr *a, char *out, size_t cap);

#if RP_ENABLE_AUTH
/** A users file, parsed (src/20-auth.c users_parse): up to RP_MAX_USERS
 *  `user:hash` entries, each user name and hash NUL-ended in str (offsets
 *  into it).  Filled by users_parse only; read by users_check. */
typedef struct {
    uint16_t nusers;
    uint16_t used;                /**< bytes of str taken */
    struct {
        uint16_t user, hash;      /**< offsets into str */
    } u[RP_MAX_USERS];
    char str[RP_AUTH_STR_BYTES];
} rp_users;
#endif

/* ==== HTTP/1.1 message parser ====
 * Zero-copy: every rp_str points into the caller's buffer.  The parser
 * validates a whole head at once and is strict (RFC 9112): bare CR or LF,
 * NUL, obs-fold, whitespace before a colon, invalid token characters,
 * conflicting or malformed framing are errors. */

/** Flags describing a parsed message (rp_http_msg.flags). */
enum {
    RP_HF_CHUNKED = 1 << 0,    /**< Transfer-Encoding: chunked (final) */
    RP_HF_LENGTH = 1 << 1,     /**< valid Content-Length present */
    RP_HF_CONN_CLOSE = 1 << 2, /**< Connection: close */
    RP_HF_CONN_KEEP = 1 << 3,  /**< Connection: keep-alive */
    RP_HF_CONN_UPG = 1 << 4,   /**< Connection: upgrade */
    RP_HF_UPGRADE = 1 << 5,    /**< Upgrade header present */
    RP_HF_EXPECT100 = 1 << 6,  /**< Expect: 100-continue */
    RP_HF_ABSOLUTE = 1 << 7,   /**< request target was absolute-form */
    RP_HF_HOST = 1 << 8        /**< a host was given (header or target) */
};

/** One header field, filled by the parser: name and value views into the
 *  parsed buffer, the value without surrounding OWS.  The caller only
 *  reads it. */
typedef struct {
    rp_str name;
    rp_str value;
    int id;      /**< rproxy's number for a well-known name (0: other),
                      set once by the parser */
} rp_header;

/** A parsed request or response head.  The caller provides it (any
 *  contents: the parse overwrites every field) and the buffer; the parser
 *  fills all of it.  For requests: method, target (the path+query in origin
 *  form; for absolute-form the authority is moved to host), host (from the
 *  target or the Host header, without port check).  For responses: status
 *  and reason.  content_length is -1 when absent. */
typedef struct {
    rp_str method, target, host, reason;
    int minor;   /**< HTTP/1.minor */
    int status;  /**< responses only */
    unsigned flags;          /**< RP_HF_* */
    int64_t content_length;
    size_t nheaders;         /**< headers[0..nheaders) are filled */
#if RP_ENABLE_REASONS
    const char *why;         /**< after an error: the rule that fired */
#endif
    rp_header headers[RP_MAX_HEADERS];
} rp_http_msg;

/** Length of the head at buf[0..len) including the final empty line, once
 *  it is complete.  *scan carries the offset already checked between calls
 *  (start with 0) so a trickling sender costs only its new bytes.  Returns
 *  the head length > 0, RP_EAGAIN when incomplete, RP_EINVAL on a bare CR,
 *  bare LF or NUL.  Does not enforce size limits. */
long rp_http_head_end(const char *buf, size_t len, size_t *scan);

/** Parse a complete request head of length len (as returned by
 *  rp_http_head_end).  Returns RP_OK, or RP_EINVAL (400), RP_ETOOLONG (414),
 *  RP_EHDRTOOBIG (431), RP_ENOTIMPL (501), RP_EVERSION (505),
 *  RP_EEXPECT (417). */
int rp_http_parse_request(const char *buf, size_t len, rp_http_msg *m);

/** Parse a complete response head.  Returns RP_OK or RP_EINVAL /
 *  RP_EHDRTOOBIG (both mean 502 to the proxy). */
int rp_http_parse_response(const char *buf, size_t len, rp_http_msg *m);

/** Incremental chunked-body scanner.  The caller zero-initialises it and
 *  feeds bytes with rp_chunked_step until `done`; rp_chunked_step fills
 *  every field.  The caller reads `done` and `in_data` (and may read
 *  `left`); `state` and `linelen` are the scanner's own. */
typedef struct {
    uint8_t state;
    uint8_t done;      /**< last chunk and trailers seen */
    uint8_t in_data;   /**< the span just returned was chunk data */
    uint16_t linelen;  /**< bytes of the current size/trailer line */
    uint64_t left;     /**< data bytes left in the current chunk */
} rp_chunked;

/** Consume bytes from p[0..n).  Returns how many were consumed (> 0 unless
 *  n == 0 or done) -- all framing or all data, see c->in_data -- or RP_EINVAL
 *  for a bad size (not hex, overflow), bad line ending or bad trailer. */
long rp_chunked_step(rp_chunked *c, const char *p, size_t n);

/* ==== Configuration ====
 * The text rp_config_parse reads (scripts/cfgimage.c parses the same text
 * on the build host for a board built without the parser:
 * RP_ENABLE_CONFIG_TEXT 0).  One directive per line; words are separated
 * by spaces, tabs or CRs, at most 16 a line; `#` starts a comment, also
 * inside a word.  A word may have "..." parts (`realm="Cam 1"`,
 * `"/a b"`): inside them blanks and `#` are kept, `\"` and `\\` are the
 * only escapes, control bytes other than tab are refused; the quotes
 * themselves are dropped (at most 1024 bytes of such words a line).
 * Directive names are lower case; option keys and the
 * words wrr/leastconn, on/off, modern/compat, require/optional are matched
 * without regard to case.  Options are `key=value` words (a few are a bare
 * key) in any order.  An option left out takes the default named under its
 * line (the RP_* settings above); a number outside the range given there,
 * an unknown option, a pool defined twice, a second `health` line for a
 * pool or a second `status` line is an error at its line.  The first error
 * stops the parse: rp_cfg_error has its line, the column of the offending
 * word and a message that says what would fix it.  Strings the tables keep
 * (names, hosts, paths) are copied into RP_CFG_STR_BYTES.  A DURATION is
 * digits and a unit ms, s, m or h ("500ms", "3s", "2m", "1h"), a bare
 * number being milliseconds (seconds for fail_timeout=); a SIZE is bytes,
 * or KiB/MiB with k/m ("64k").  Ranges below are in ms and bytes.
 *
 *   listen [ADDR:]PORT [tls] [tls_profile=modern|compat]
 *          [redirect_https[=PORT]] [headers=NAME]
 *          [proxy_protocol [proxy_from=ADDR[/BITS]]...]
 *        accept clients: PORT alone is 0.0.0.0:PORT; ADDR is A.B.C.D,
 *        [IPv6] (RP_ENABLE_IPV6) or localhost; PORT 1..65535.  At most
 *        RP_MAX_LISTENERS lines.
 *        tls: a TLS listener (RP_ENABLE_TLS; needs a `tls` line).
 *        tls_profile: modern (the default: TLS 1.2, ECDHE, AES-GCM and
 *        ChaCha20-Poly1305) or compat (adds TLS 1.0/1.1, CBC and RSA key
 *        exchange; RP_ENABLE_TLS_COMPAT).
 *        redirect_https: a plain listener that answers every request with
 *        301 to https://HOST[:PORT]/target (RP_ENABLE_REDIRECT); PORT
 *        1..65535, default the first TLS listener's, required when there
 *        is none.  Not with tls.  headers: a header rule set (below).
 *        proxy_protocol: each connection begins with a PROXY v1 or v2
 *        header (before TLS or HTTP) whose source address is the
 *        client's from then on (RP_ENABLE_PROXY_PROTOCOL); proxy_from=:
 *        at most 4 networks whose peers may connect (default any); a
 *        missing, malformed or untrusted header closes the connection.
 *   pool NAME [balance=wrr|leastconn] [retries=N] [queue=N]
 *        [queue_timeout=DURATION] [resolve=DURATION] [host=NAME]
 *        a group of devices, defined before its devices, routes and health
 *        line; at most RP_MAX_POOLS; each needs a device that is not a
 *        backup.  balance wrr (smooth weighted round-robin); retries
 *        RP_DEFAULT_RETRIES (0..10): replays of an idempotent request after
 *        a device closed without answering.  queue (RP_ENABLE_LIMITS;
 *        0..RP_MAX_CONNS, default 0 = none): requests that may wait, first
 *        in first out, while every device they could use is at max_conns;
 *        the oldest takes whichever device connection frees first.  Full
 *        (or none): 503 at once; waited queue_timeout (RP_QUEUE_TIMEOUT_MS,
 *        1..86400000, from the request head): 503 with Retry-After.  A
 *        waiting client that closes leaves the queue; a dispatched request
 *        is retried as any other, ahead of the waiters.
 *        resolve RP_RESOLVE_INTERVAL_MS (1s..24h, a bare number is seconds;
 *        RP_ENABLE_DNS): how often its devices' names are looked up again
 *        host (RP_ENABLE_PATH_MAP): the Host its devices are sent (a name
 *        or address, no port, no '*'; default the client's)
 *   device POOL IP:PORT|NAME:PORT [weight=N] [backup] [max_fails=N]
 *          [fail_timeout=DURATION] [max_conns=N] [max_idle=N]
 *          [tls] [ca=FILE] [sni=HOST] [verify=on|off]
 *        a device in POOL at A.B.C.D:PORT, [IPv6]:PORT or localhost:PORT,
 *        or at a DNS NAME (RP_ENABLE_DNS: labels of letters, digits, - and
 *        _, 1..63 bytes, not beginning or ending with -, at most 253 bytes,
 *        a letter somewhere), looked up through rp_port_resolve at rp_start,
 *        every `resolve=` and soon after a failure; down until the first
 *        answer, the last good address kept while lookups fail;
 *        at most RP_MAX_DEVICES in all.  weight RP_DEFAULT_WEIGHT (0..1000,
 *        0 = disabled); backup: used only while every primary is down;
 *        max_fails RP_DEFAULT_MAX_FAILS (0..1000, 0 = never marked down);
 *        fail_timeout RP_DEFAULT_FAIL_TIMEOUT_MS (0..86400000, bare: s).
 *        max_conns (RP_ENABLE_LIMITS; 0..RP_MAX_UPSTREAM, 0 = no limit):
 *        every connection rproxy holds to it (busy, connecting, idle, the
 *        health probe); max_idle (0..max_conns, 0 = max_conns): the idle
 *        pooled ones.  Without RP_ENABLE_LIMITS both (and queue=,
 *        queue_timeout=) are an error naming the knob.
 *        TLS toward the device (RP_ENABLE_TLS and RP_ENABLE_TLS_DEVICE):
 *        tls re-encrypts; ca=FILE: PEM CAs its chain must chain to (at
 *        most RP_TLS_MAX_CAS, loaded with rp_port_blob), required unless
 *        verify=off; sni=HOST: the server name sent (default none);
 *        verify on (the default) or off (encrypt, check nothing).  ca=,
 *        sni=, verify= need tls.
 *   route [host=HOST] [path=/PREFIX] pool=NAME [cache=on|off]
 *         [cache_ttl=DURATION] [allow=ADDR[/BITS]]... [auth=NAME
 *         [realm="TEXT"] [pass_auth=on|off]] [share=on|off
 *         [share_linger=DURATION]]
 *         [rewrite=/PREFIX/] [headers=NAME]
 *         [device_timeout=DURATION] [stream_idle=DURATION]
 *        requests whose host (case-insensitive, port ignored,
 *        "*.example.com" for subdomains) and path prefix match go to NAME;
 *        a route without host= or path= matches any.  First match wins;
 *        no match: 404.  At most RP_MAX_ROUTES.  cache off; on sends the
 *        route's GET and HEAD through the response cache (RP_ENABLE_CACHE;
 *        ignored without).  cache_ttl (with cache=on only; whole seconds,
 *        1s..720h, a bare number is seconds; RP_ENABLE_CACHE_TTL) is the
 *        freshness of a response that gives none (no max-age, s-maxage,
 *        Expires) and has a heuristically cacheable status; it replaces the
 *        heuristic on that route.  no-store, private, no-cache still rule.
 *        allow=: at most 4 networks (as status's); others get 403
 *        (RP_ENABLE_ACL).  auth=: HTTP Basic against the users line NAME
 *        (defined above; RP_ENABLE_AUTH): 401 with realm (1..64
 *        characters, default "rproxy"); Authorization reaches the device
 *        only with pass_auth=on; realm= and pass_auth= need auth=.
 *        share=on: a GET answered with a live stream (multipart/x-mixed-
 *        replace, text/event-stream, a chunked or close-delimited 200) is
 *        opened once and shared by every identical request
 *        (RP_ENABLE_SHARE; not with cache=on); share_linger (0..1h,
 *        default 0) keeps the device connection after the last viewer.
 *        rewrite (RP_ENABLE_PATH_MAP; a path ending in '/', needs a path=
 *        ending in '/'): the path= prefix becomes this one toward the
 *        device, and Location, Content-Location, Refresh url= and
 *        Set-Cookie Path= under it come back under path= (absolute ones
 *        naming the device get the client's scheme and Host); a request
 *        path with a dot-segment ("..", "%2e", ...) on the route gets 400.
 *        headers: the route's header rule set (below).
 *        device_timeout (1..86400000; RP_ENABLE_STREAM_TIMEOUTS): the wait
 *        for this route's response heads (default timeout device=);
 *        stream_idle (0..86400000, 0 = none): silence allowed inside a
 *        response body once its head went out, and in the route's
 *        WebSocket tunnels (default timeout device=, tunnels timeout
 *        tunnel=).
 *   headers NAME request|response set|add|del FIELD ["VALUE"]
 *        a rule of the header rule set NAME (RP_ENABLE_HEADER_RULES; at
 *        most RP_MAX_HEADER_RULES lines, RP_MAX_HEADER_SETS names), used by
 *        listen and route headers=NAME.  set replaces every FIELD with one
 *        FIELD: VALUE, add appends one, del removes all (no VALUE); run on
 *        the head rproxy wrote, the listener's set first, then the route's
 *        (whose set/del of a name overrides the listener's).  FIELD may not
 *        be Content-Length, Transfer-Encoding, Connection, Host, Keep-Alive,
 *        Proxy-Connection, TE, Trailer or Upgrade.  Response rules apply to
 *        cache hits too.  A set named by headers= needs a line.
 *   error_page STATUS... FILE
 *        rproxy's own answers with STATUS (400..599) carry FILE's bytes
 *        (RP_ENABLE_ERROR_PAGES), Content-Type from its extension (.html
 *        .htm .txt .json .svg .png .css, else application/octet-stream),
 *        loaded with rp_port_blob into RP_ERROR_PAGE_BYTES (a page at
 *        most RP_BUF_SIZE/2); at most RP_MAX_ERROR_PAGES statuses, each once.
 *   timeout NAME=DURATION...
 *        NAME client_header (RP_TIMEOUT_CLIENT_HEADER_MS), client_idle
 *        (RP_TIMEOUT_CLIENT_IDLE_MS), connect (RP_TIMEOUT_CONNECT_MS),
 *        device (RP_TIMEOUT_DEVICE_MS), device_idle
 *        (RP_TIMEOUT_DEVICE_IDLE_MS), handshake (RP_TIMEOUT_HANDSHAKE_MS),
 *        tunnel (WebSocket silence, default client_idle's;
 *        RP_ENABLE_STREAM_TIMEOUTS); each 1..86400000
 *   via NAME
 *        the pseudonym in Via headers (RP_DEFAULT_VIA)
 *   health POOL [path=/PATH] [interval=DURATION] [timeout=DURATION] [rise=N] [fall=N]
 *          [expect=STATUS]
 *        active probes (GET PATH) of every device in POOL; one line a pool.
 *        path RP_HEALTH_PATH; interval RP_HEALTH_INTERVAL_MS (100..86400000);
 *        timeout RP_HEALTH_TIMEOUT_MS (10..600000); rise RP_HEALTH_RISE and
 *        fall RP_HEALTH_FALL (1..100); expect any 2xx/3xx (100..599)
 *   status path=/PATH [allow=ADDR[/BITS]]... [auth=NAME [realm="TEXT"]]
 *        the JSON / Prometheus status page at PATH (RP_ENABLE_STATUS); one
 *        line.  At most 4 allow= networks, IPv4 or IPv6 (bare or in [ ]),
 *        BITS 0..32 or 0..128, default all; none: loopback only.  auth=
 *        and realm= as on a route.  POST PATH/device?pool=P&device=IP:PORT
 *        (or NAME:PORT)
 *        [&state=ready|drain|maint][&weight=0..1000] changes a device at
 *        runtime (RP_ENABLE_RUNTIME), answered in JSON.
 *   users NAME FILE
 *        a users file (read with rp_port_blob; RP_ENABLE_AUTH): lines
 *        user:hash with $5$/$6$ crypt hashes, # comments; at most
 *        RP_MAX_USER_LISTS lines, RP_MAX_USERS users each.  An error in
 *        the file is reported as "users file 'FILE':LINE: message".
 *   client_limit [conns=N] [rate=N/s|N/m] [burst=N]
 *        per client address (RP_ENABLE_CLIENT_LIMIT, RP_CLIENT_TABLE
 *        addresses): conns 1..RP_MAX_CONNS open connections (the next gets
 *        429 and is closed); rate 1..100000 requests a second or minute,
 *        burst 1..65535 (default the rate's N; needs rate=): over it 429
 *        with Retry-After, the connection kept.
 *   tls cert=FILE key=FILE [sni=HOST] [client_ca=FILE]
 *       [client_auth=require|optional] [client_cert_header=NAME]
 *        a certificate for TLS listeners (RP_ENABLE_TLS), loaded at once
 *        with rp_port_blob: cert a PEM chain (at most RP_TLS_MAX_CHAIN),
 *        key the leaf's PEM key (RSA >= 2048 bits or EC P-256/P-384, raw
 *        or PKCS#8).  At most RP_TLS_MAX_CERTS lines, DER kept in
 *        RP_TLS_STORE_BYTES.  sni= picks this one for the names it
 *        matches ("*.x" too; default none); the first line answers every
 *        name no sni= matches.  client_ca=FILE asks
 *        clients for a certificate chaining to its PEM CAs (at most
 *        RP_TLS_MAX_CAS; RP_ENABLE_TLS_CLIENT_AUTH); client_auth (with
 *        client_ca= only) require (the default) or optional: let clients
 *        without one through unauthenticated.  client_cert_header=NAME:
 *        the verified subject CN goes to devices in the field NAME (one
 *        for all lines: the last given)
 *   cache [max_object=SIZE] [heuristic=on|off]
 *         [ignore_client_nocache=on|off] [lock_timeout=DURATION]
 *        response cache tuning (RP_ENABLE_CACHE; routes opt in with
 *        cache=on); at least one option.  max_object RP_CACHE_MAX_OBJECT
 *        (1..RP_CACHE_BYTES); heuristic off (on: 10% of Last-Modified age
 *        for responses without explicit freshness); ignore_client_nocache
 *        off; lock_timeout RP_CACHE_LOCK_MS (0..600000)
 *
 * A NAME is 1..RP_CFG_NAME_MAX letters, digits, - _ .; a health or status
 * PATH is '/' and visible ASCII, at most RP_CFG_PATH_MAX bytes; a FILE name
 * is at most 255 bytes (what rp_port_blob is given).  Asking for what a
 * knob compiled out (tls and `listen ... tls`, status, device TLS,
 * client_ca=, tls_profile=compat, redirect_https, IPv6 addresses, device
 * names and resolve=) is an
 * error that names the knob; without RP_ENABLE_CACHE, `cache` is an unknown
 * directive.  The whole text must have a listen and a route line.
 *
 * README.md's "Configuration reference" explains every directive (with
 * nginx and HAProxy equivalents); the parser is src/06-config.c. */

/** Where a configuration error is, filled by rp_config_parse: the 1-based
 *  line, the 1-based column (byte) in it where the offending word starts
 *  (0: the error is about no one word, like "no listen line"), and a
 *  NUL-ended message that quotes that word and says what would fix it
 *  ("unknown listen option 'tsl' (did you mean 'tls'?)"). */
typedef struct {
    int line;
    int col;
    char msg[192];
} rp_cfg_error;

/** Balancing algorithms (rp_pool.balance). */
enum { RP_BALANCE_WRR = 0, RP_BALANCE_LEASTCONN = 1 };

struct rp_conn;

/** A device's administrative state (RP_ENABLE_RUNTIME): READY takes
 *  requests; DRAIN takes no new ones (those in flight finish, health probes
 *  go on); MAINT takes none and is not probed (its idle connections close). */
enum { RP_ADMIN_READY = 0, RP_ADMIN_DRAIN = 1, RP_ADMIN_MAINT = 2 };

/** A device (upstream server), a `device` line, and its runtime balancing
 *  and health state.  The parser fills pool, backup, tls, verify, weight,
 *  max_fails, fail_timeout_ms, sni, addr and the trust anchors (ntas, tas);
 *  every other field is state that the balancer and the health checks keep
 *  while rproxy runs (the caller may read it, as the status page does, and
 *  must not write it). */
typedef struct {
    /* Runtime state and the fields every pick reads first, by width, so a
     * Thumb-2 short load reaches them; the address and CAs last. */
    uint8_t pool;             /**< index into rp_config.pools */
    uint8_t backup;           /**< `backup`: only while every primary is down */
    uint8_t tls;              /**< `tls`: re-encrypt to this device */
    uint8_t verify;           /**< check its chain against `ca=` */
    uint8_t hc_down;          /**< active health says down */
    uint8_t hc_rise, hc_fall; /**< consecutive probe passes / failures */
#if RP_ENABLE_RUNTIME
    uint8_t admin;            /**< RP_ADMIN_*: set through the status path */
#endif
    uint16_t weight;          /**< configured (or set at runtime), 0 = disabled */
    uint16_t max_fails;       /**< passive: failures that take it out */
    uint16_t active;          /**< busy connections now */
    uint16_t idle;            /**< idle pooled connections now */
#if RP_ENABLE_LIMITS
    uint16_t max_conns;       /**< `max_conns=`: all connections held; 0 = no limit */
    uint16_t max_idle;        /**< `max_idle=`: idle pooled ones; 0 = max_conns */
#endif
    uint16_t fails;           /**< passive failures in the current window */
    uint32_t fail_timeout_ms; /**< passive: window and time out */
    int32_t current;          /**< smooth WRR current weight */
    int32_t effective;        /**< smooth WRR effective weight (drops on
                                   failure, recovers by 1 per pick) */
    struct rp_conn *probe;    /**< probe in flight, or NULL */
    int last_err;             /**< last failure (rp_err) */
    rp_counter probes, probe_failures;
    rp_counter requests, failures;
    uint64_t checked;         /**< time of the last passive failure (ms) */
    uint64_t down_until;      /**< passively out until this time (ms) */
    uint64_t last_ok;         /**< last response head received (ms) */
    uint64_t probe_next;      /**< next active probe due (ms) */
    const char *sni;          /**< `sni=` (default: none) */
#if RP_ENABLE_DNS
    const char *name;         /**< NAME of `NAME:PORT` (looked up; addr holds
                                   its last good address, family 0 until the
                                   first lookup answers); NULL: an address */
    uint8_t resolving;        /**< a lookup is in flight in the port */
    uint8_t resolve_bad;      /**< the last lookup failed */
    uint16_t resolve_fails;   /**< lookups that failed since the last good one */
    rp_counter resolves;      /**< lookups that gave an address */
    uint64_t resolve_next;    /**< next lookup due (ms) */
    uint64_t resolve_at;      /**< last lookup started (ms) */
#endif
    rp_addr addr;             /**< HOST:PORT */
#if RP_ENABLE_TLS
    size_t ntas;              /**< CAs from `ca=` */
    br_x509_trust_anchor tas[RP_TLS_MAX_CAS];
#endif
} rp_device;

/** A pool of devices (a `pool` line, and its `health` line), filled by the
 *  parser; the caller reads it. */
typedef struct {
    const char *name;
    uint8_t balance;          /**< `balance=`: RP_BALANCE_WRR or _LEASTCONN */
    uint8_t retries;          /**< `retries=` */
    uint8_t ndevices;         /**< devices[0..ndevices) */
    uint8_t devices[RP_MAX_DEVICES]; /**< indexes into rp_config.devices */
    /* active health (`health` line); health == 0: none */
    uint8_t health;
    uint8_t rise, fall;       /**< `rise=`, `fall=` */
    uint16_t expect;          /**< status a probe wants; 0 = any 2xx/3xx */
    uint32_t interval_ms, probe_timeout_ms; /**< `interval=`, `timeout=` */
    const char *health_path;  /**< `path=` */
#if RP_ENABLE_DNS
    uint32_t resolve_ms;      /**< `resolve=`: its named devices looked up again */
#endif
#if RP_ENABLE_LIMITS
    uint16_t queue_max;       /**< `queue=`: requests that may wait; 0 = none */
    uint16_t queued;          /**< state: waiting now */
    uint16_t queued_peak;     /**< state: most ever waiting at once */
    uint32_t queue_timeout_ms; /**< `queue_timeout=` */
    struct rp_conn *qhead, *qtail; /**< state: the waiting clients, oldest first */
    rp_counter queue_timeouts; /**< state: 503 after queue_timeout */
    rp_counter queue_full;    /**< state: 503 because the queue was full (or none) */
#endif
#if RP_ENABLE_PATH_MAP
    const char *host;         /**< `host=`: the Host its devices are sent; NULL: the client's */
#endif
} rp_pool;

/** A network: an address and how many leading bits of it count
 *  (`allow=`, `proxy_from=`). */
typedef struct {
    rp_addr net;
    uint8_t bits;
} rp_net;

/** A route (a `route` line), filled by the parser; the caller reads it. */
typedef struct {
    const char *host;   /**< NULL = any host; "*.x" matches subdomains */
    const char *path;   /**< NULL = any path; else a prefix */
    uint8_t pool;       /**< index into rp_config.pools */
    uint8_t cache;      /**< `cache=on` */
#if RP_ENABLE_AUTH
    uint8_t auth;       /**< `auth=`: 1 + index into rp_config.users; 0: none */
    uint8_t pass_auth;  /**< `pass_auth=on`: Authorization goes to the device */
    const char *realm;  /**< `realm=` (default: "rproxy") */
#endif
#if RP_ENABLE_CACHE_TTL
    uint32_t cache_ttl; /**< `cache_ttl=` in seconds; 0: none */
#endif
#if RP_ENABLE_ACL
    uint8_t nallow;     /**< `allow=` networks; 0 = every client */
    rp_net allow[4];
#endif
#if RP_ENABLE_SHARE
    uint8_t share;            /**< `share=on`: live streams shared */
    uint32_t share_linger_ms; /**< `share_linger=`: the device stays after the last viewer */
#endif
#if RP_ENABLE_PATH_MAP
    const char *rewrite; /**< `rewrite=`: replaces `path` toward the device; NULL: none */
#endif
#if RP_ENABLE_HEADER_RULES
    uint8_t headers;     /**< `headers=`: rule set index + 1; 0: none */
#endif
#if RP_ENABLE_STREAM_TIMEOUTS
    uint32_t device_timeout; /**< `device_timeout=` ms; 0: `timeout device=` */
    uint32_t stream_idle;    /**< `stream_idle=` ms + 1; 0: not given (`timeout
                                  device=`, tunnels `timeout tunnel=`); 1: none */
#endif
} rp_route;

/** A listener (a `listen` line), filled by the parser; the caller reads
 *  it. */
typedef struct {
    rp_addr addr;
    uint8_t tls;             /**< `tls`: a TLS listener */
    uint8_t compat;          /**< `tls_profile=compat` */
    uint8_t redirect;        /**< `redirect_https`: answer 301 to https */
    uint16_t redirect_port;  /**< port in the Location (0: first TLS port) */
#if RP_ENABLE_PROXY_PROTOCOL
    uint8_t proxy;           /**< `proxy_protocol`: a PROXY v1/v2 header first */
    uint8_t nproxy_from;     /**< `proxy_from=` networks; 0 = any peer */
    rp_net proxy_from[4];
#endif
#if RP_ENABLE_HEADER_RULES
    uint8_t headers;         /**< `headers=`: rule set index + 1; 0: none */
#endif
#if RP_ENABLE_RELOAD
    uint16_t line;           /**< its line in the text (a reload's errors) */
#endif
} rp_listener_cfg;

#if RP_ENABLE_ERROR_PAGES
/** An error page (one status of an `error_page` line): its bytes in the
 *  config's epage_store. */
typedef struct {
    uint16_t status;
    uint8_t ctype;           /**< Content-Type, by the file's extension */
    uint32_t off, len;       /**< in epage_store */
} rp_errpage;
#endif

#if RP_ENABLE_HEADER_RULES
/** Header rule actions (rp_hrule.action). */
enum { RP_HR_SET = 0, RP_HR_ADD = 1, RP_HR_DEL = 2 };
/** A header rule (a `headers` line), filled by the parser. */
typedef struct {
    uint8_t set;             /**< index into rp_config.hsets */
    uint8_t response;        /**< 1: `response`, 0: `request` */
    uint8_t action;          /**< RP_HR_SET, _ADD, _DEL */
    const char *name;        /**< the field name */
    const char *value;       /**< its value (set, add); NULL for del */
} rp_hrule;
#endif

#if RP_ENABLE_TLS
/** A certificate chain and its private key (a `tls` line), filled by the
 *  parser: DER and key parts in the config's store, the client CAs loaded.
 *  The caller reads it. */
typedef struct {
    const char *sni;         /**< `sni=`; NULL: no name (the first line is
                                  the default for names no `sni=` matches) */
    br_x509_certificate chain[RP_TLS_MAX_CHAIN];
    size_t chain_len;
    int key_type;            /**< BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
    unsigned issuer_key_type;
    br_rsa_private_key rsa;
    br_ec_private_key ec;
    uint8_t client_auth;     /**< 0 none, 1 optional, 2 require */
    size_t ntas;             /**< client CAs (`client_ca=`) */
    br_x509_trust_anchor tas[RP_TLS_MAX_CAS];
} rp_tls_cert;
#endif

/** The parsed configuration, p->cfg.  rp_init sets the defaults (the RP_*
 *  settings), rp_config_parse fills it from the text or rp_config_load
 *  copies a build-time image (scripts/cfgimage.c) in; the caller reads it.
 *  Its devices also carry their runtime state (rp_device). */
typedef struct {
    rp_listener_cfg listeners[RP_MAX_LISTENERS];
    rp_pool pools[RP_MAX_POOLS];
    rp_device devices[RP_MAX_DEVICES];
    rp_route routes[RP_MAX_ROUTES];
    uint8_t nlisteners, npools, ndevices, nroutes;
#if RP_ENABLE_HEADER_RULES
    rp_hrule hrules[RP_MAX_HEADER_RULES]; /**< `headers` lines, in order */
    const char *hsets[RP_MAX_HEADER_SETS]; /**< rule set names */
    uint8_t nhrules, nhsets;
#endif
    uint32_t t_client_header, t_client_idle, t_connect, t_device, t_device_idle;
    uint32_t t_handshake;       /**< the `timeout` options, ms */
#if RP_ENABLE_STREAM_TIMEOUTS
    uint32_t t_tunnel;          /**< `timeout tunnel=` ms; 0: client_idle's */
#endif
#if RP_ENABLE_ERROR_PAGES
    rp_errpage epages[RP_MAX_ERROR_PAGES]; /**< `error_page` statuses */
    uint8_t nepages;
    uint32_t epage_used;        /**< bytes of epage_store taken */
    char epage_store[RP_ERROR_PAGE_BYTES];
#endif
    uint32_t cache_max_object;  /**< `cache max_object=`: larger is not stored */
    uint32_t cache_lock_ms;     /**< `cache lock_timeout=`: collapsed misses wait */
    uint8_t cache_heuristic;    /**< `cache heuristic=on`: 10% of Last-Modified age */
    uint8_t cache_ignore_nocache; /**< `cache ignore_client_nocache=on` */
    const char *via;            /**< `via` */
    const char *status_path;  /**< `status path=`; NULL = no status page */
    const char *client_cert_header; /**< `client_cert_header=`: verified CN */
    uint8_t nallow;           /**< `allow=` networks; 0 = loopback only */
    rp_net allow[4];
#if RP_ENABLE_AUTH
    uint8_t status_auth;      /**< status `auth=`: 1 + users index; 0: none */
    const char *status_realm; /**< status `realm=` */
    uint8_t nusers;           /**< `users` lines */
    const char *users_name[RP_MAX_USER_LISTS];
    rp_users users[RP_MAX_USER_LISTS]; /**< the users files, read at parse time */
#endif
#if RP_ENABLE_CLIENT_LIMIT
    uint16_t cl_conns;        /**< `client_limit conns=`; 0: no limit */
    uint16_t cl_burst;        /**< `burst=` (default: the rate's N) */
    uint32_t cl_rate;         /**< `rate=` N; 0: no rate limit */
    uint32_t cl_period_ms;    /**< 1000 (N/s) or 60000 (N/m) */
#endif
#if RP_ENABLE_TLS
    rp_tls_cert certs[RP_TLS_MAX_CERTS]; /**< `tls` lines, in order */
    uint8_t ncerts;
    size_t store_used;        /**< bytes of store[] taken */
    unsigned char store[RP_TLS_STORE_BYTES]; /**< DER chains, key parts */
#endif
    size_t str_used;          /**< bytes of str[] taken */
    char str[RP_CFG_STR_BYTES]; /**< the strings the tables point to */
} rp_config;

/* ==== Statistics and the access log ==== */

/** Counters since rp_init (monotonic), p->stats: filled by rproxy, read by
 *  the caller. */
typedef struct {
    rp_counter accepted;        /**< client connections accepted */
    rp_counter refused_conns;   /**< clients refused: no free slot */
    rp_counter accept_errors;   /**< accept failed (e.g. EMFILE) */
    rp_counter requests;        /**< request heads parsed */
    rp_counter bad_requests;    /**< requests refused as malformed (4xx/5xx) */
    rp_counter responses[6];    /**< responses sent to clients by class 1xx..5xx */
    rp_counter device_connects; /**< new device connections opened */
    rp_counter device_reuses;   /**< requests sent on a pooled connection */
    rp_counter device_errors;   /**< connect/read failures toward devices */
    rp_counter upstream_full;   /**< no free device connection slot */
    rp_counter retries;         /**< requests retried on another connection */
    rp_counter timeouts;        /**< any timeout fired */
    rp_counter tunnels;         /**< upgraded (WebSocket) tunnels */
    rp_counter status_requests; /**< status page answers */
    rp_counter tls_handshakes;  /**< TLS handshakes completed */
    rp_counter tls_failures;    /**< TLS connections that failed (handshake, alert) */
    rp_counter tls_refused;     /**< TLS clients refused: no TLS slot */
    rp_counter bytes_in, bytes_out; /**< client-side bytes received / sent */
    rp_counter cache_hits;      /**< answered from the cache (fresh or allowed stale) */
    rp_counter cache_misses;    /**< cacheable requests forwarded (miss or stale) */
    rp_counter cache_revalidated; /**< stale entries a 304 refreshed */
    rp_counter cache_stores;    /**< responses stored */
    rp_counter cache_evictions; /**< entries evicted to make room */
    rp_counter cache_store_failures; /**< storable responses dropped: too big, no room */
    rp_counter cache_collapsed; /**< misses that waited on another's fill */
    rp_counter cache_invalidations; /**< entries removed by unsafe requests */
#if RP_ENABLE_ACL
    rp_counter acl_denied;      /**< 403: client not in the route's allow= */
#endif
#if RP_ENABLE_AUTH
    rp_counter auth_failures;   /**< 401: missing or wrong credentials */
    rp_counter auth_locked;     /**< 429: too many failed logins from an address */
    rp_counter auth_cache_hits; /**< credentials found verified in the cache */
#endif
#if RP_ENABLE_CLIENT_LIMIT
    rp_counter limit_conns;     /**< connections refused: client_limit conns= */
    rp_counter limit_rate;      /**< 429: client_limit rate= */
#endif
#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
    rp_counter client_table_full; /**< an address not tracked: every entry busy */
#endif
#if RP_ENABLE_SHARE
    rp_counter share_streams;   /**< streams started (one device connection each) */
    rp_counter share_joins;     /**< viewers that joined a stream another one opened */
    rp_counter share_drops;     /**< parts a slow viewer skipped */
    rp_counter share_full;      /**< stream requests served unshared: no free stream */
#endif
#if RP_ENABLE_PROXY_PROTOCOL
    rp_counter proxy_refused;   /**< closed: PROXY header missing, malformed,
                                     too long or from a peer not in proxy_from= */
#endif
} rp_stats;

/** One rp_poll turn: how long it took and what it did. */
typedef struct {
    uint64_t at_ms;      /**< when it began, ms since rp_start */
    uint32_t ms;         /**< how long it took (the port's clock, ms) */
    uint32_t events;     /**< readiness reports served */
    uint32_t left;       /**< reports the bound left to the next turn */
    uint32_t bytes;      /**< bytes received and sent, every socket */
    uint32_t tls_steps;  /**< TLS engine runs of connections mid-handshake
                              (0: no handshake advanced) */
    uint32_t timers;     /**< timers that fired */
} rp_turn;

/** The event loop's figures, p->loop (RP_ENABLE_TURN_STATS): filled by
 *  rproxy, read by the caller. */
typedef struct {
    rp_turn longest;     /**< the longest turn since rp_start or
                              rp_loop_reset (as long: the one that did more) */
    rp_counter turns;    /**< rp_poll turns */
    rp_counter bounded;  /**< turns that left reports to the next (the bound) */
} rp_loop_stats;

/** One finished request, filled by rproxy and handed to the access
 *  callback (the access log); valid only during the call.  device is NULL
 *  when no device was involved; status 0 means the client got no
 *  response. */
typedef struct {
    const rp_addr *client;
    rp_str method, target;   /**< as far as kept (16 and 96 bytes) */
    int status;
    uint64_t bytes;          /**< bytes sent to the client for this request */
    const rp_addr *device;
    uint32_t ms;             /**< head received -> response finished */
    int err;                 /**< first error on the connection (rp_err) */
    /** NULL, or why the response stopped after its head went out (status is
     *  the head's; the client got a truncated body and a close):
     *  "device-framing" (broken chunked framing), "device-closed",
     *  "device-timeout", "client-closed", "client-timeout", "client-framing"
     *  (a bad request body after the device answered). */
    const char *cut;
    /** NULL, or the rule that refused the request ("duplicate
     *  Content-Length", "no route for this host and path"; RP_ENABLE_REASONS
     *  builds).  method and target are empty when the request line could not
     *  be read. */
    const char *why;
    const char *pool;        /**< the route's pool; NULL before a route matched */
    int route;               /**< the route's index in the config, -1: none */
    /** NULL off cache routes, else what the cache did: "hit", "miss",
     *  "stored" (a miss being stored), "revalidated" (a stale entry the
     *  device confirmed with 304), "stale" (revalidation got a new response),
     *  "stale-if-error" (served stale, the device failed), "request" (the
     *  request said no-cache), "method" (not a GET/HEAD). */
    const char *cache;
    unsigned tls;            /**< 0: plain TCP; else the TLS version (0x0303: 1.2) */
} rp_access;

/** The access callback, set by the caller in p->access_fn (with its
 *  p->access_ud) after rp_init; RP_ENABLE_ACCESS_LOG builds only.  It must
 *  not call back into rproxy. */
typedef void (*rp_access_fn)(void *ud, const rp_access *a);

/* ==== The proxy: lifecycle ====
 * rp_proxy is everything rproxy has: the caller declares one, zero-filled
 * (static storage), and passes its address.  Its layout is at the end of
 * this header ("Private"); the caller reads `cfg` and `stats` and sets
 * `access_fn` / `access_ud`, nothing else. */
typedef struct rp_proxy rp_proxy;

/** Prepare p for configuration: resets the bookkeeping (not the buffers,
 *  so their pages stay untouched until used) and sets the configuration's
 *  defaults.  RP_OK. */
int rp_init(rp_proxy *p);

#if RP_ENABLE_CONFIG_TEXT
/** Parse a whole configuration text into p->cfg, replacing nothing: call
 *  once after rp_init.  Returns RP_OK or RP_ECONFIG with *err filled. */
int rp_config_parse(rp_proxy *p, const char *text, size_t len, rp_cfg_error *err);
#endif

/** Take a configuration parsed at build time (scripts/cfgimage.c prints it
 *  as C, for the same knobs): call once after rp_init, instead of
 *  rp_config_parse.  Its strings and certificate store stay where they are
 *  (flash).  RP_OK, or RP_EINVAL when its counts do not fit these knobs. */
int rp_config_load(rp_proxy *p, const rp_config *image);

/** Open the listeners.  Returns RP_OK or the port's error (RP_EADDR). */
int rp_start(rp_proxy *p);

#if RP_ENABLE_RELOAD
/** Reload counters, p->reload: generation (1 at start, +1 per applied
 *  configuration), reloads applied, failures (parse or apply refused while
 *  running; the caller adds the reloads it could not start, such as a file
 *  it could not read: the one field it may write). */
typedef struct {
    uint32_t generation, reloads, failures;
} rp_reload;

/** After rp_start, rp_config_parse and rp_config_load fill the spare slot
 *  instead (the running configuration is untouched; a bad text is
 *  RP_ECONFIG with *err, as at start); RP_EBUSY while connections still run
 *  on the configuration before the last apply (rp_config_draining).
 *  rp_config_apply then switches to the spare slot between reports: new
 *  requests (also the next one on an open keep-alive connection) take the
 *  new routes, pools and listeners at once; exchanges in flight, tunnels
 *  and shared streams finish on the configuration they started with;
 *  listeners on the same address keep their socket, removed ones close,
 *  new ones open; a device with the same pool name and address (or name)
 *  keeps its health, counters, runtime state and idle connections.
 *  Returns RP_OK; RP_EADDR with *err naming the `listen` line when a new
 *  listener cannot open (nothing changed); RP_EINVAL with nothing parsed.
 *  Device lookups in flight are dropped (the devices' twins ask again). */
int rp_config_apply(rp_proxy *p, rp_cfg_error *err);

/** Connections still on the configuration before the last apply (0: the
 *  spare slot may be filled again). */
int rp_config_draining(rp_proxy *p);

/** The running configuration (p->cfg until a reload switches slots). */
const rp_config *rp_config_live(const rp_proxy *p);
#else
#define rp_config_live(p) ((const rp_config *)&(p)->cfg)
#endif

/** Run one turn of the event loop: wait up to timeout_ms for I/O, handle it,
 *  fire due timers.  Returns the number of events handled (>= 0) or an
 *  error from the port.  With a bound on a turn's work (RP_TURN_MAX_EVENTS,
 *  RP_TURN_MAX_BYTES) a turn may leave reports: the next call serves them
 *  first and returns without waiting, so a loop task can feed its watchdog
 *  between calls; the longest turn is in p->loop (RP_ENABLE_TURN_STATS). */
int rp_poll(rp_proxy *p, int timeout_ms);

#if RP_ENABLE_TURN_STATS
/** Forget the longest turn (p->loop.longest): the next turn starts a new
 *  record, e.g. per reporting period or after the start-up's first turns. */
void rp_loop_reset(rp_proxy *p);
#endif

/** Graceful stop: close the listeners and idle keep-alive connections; busy
 *  connections finish their current request, then close. */
void rp_shutdown(rp_proxy *p);

/** Client connections still open (0 after rp_shutdown once all finished). */
int rp_active(const rp_proxy *p);

#if RP_ENABLE_ACCESS_LOG
/** The end of a grace period: close every connection now.  An exchange in
 *  flight is logged (cut="shutdown" when its response head went out, else
 *  status 0 and why="shutdown before the response").  Returns how many
 *  client connections were cut.  (A board without the access log has
 *  nothing to report: it stops calling rp_poll.) */
int rp_close_all(rp_proxy *p);
#endif

/** sizeof(rp_proxy) for the compiled configuration. */
size_t rp_proxy_size(void);

/** Library version string, e.g. "0.1.0". */
const char *rp_version(void);

#define RP_VERSION "0.1.0"

/* ==== Balancing ====
 * Exposed for embedders that want to steer traffic themselves, and for the
 * unit tests that pin the picker's sequences down. */

/** Pick a device of pool `pool` (index into cfg.pools) for one request,
 *  skipping devices whose bit is set in `tried`: smooth weighted round-robin
 *  or weighted least-connections among eligible primaries, then backups;
 *  when every device is marked down they are tried anyway.  Returns a
 *  device index, or -1 when none can take it (all weight 0 or tried). */
int rp_pool_pick(rp_proxy *p, int pool, uint32_t tried);

/** Report the outcome of a request to device `dev`: err == RP_OK is a
 *  success (clears the failure count), else a failure counted toward
 *  max_fails within fail_timeout and lowering the effective weight. */
void rp_device_report(rp_proxy *p, int dev, int err);

/** Is device `dev` taking traffic now (not passively or actively down)? */
int rp_device_up(const rp_proxy *p, int dev);

/* ==== Port contract ====
 * Implemented by exactly one file in port/ and bound at link time: 17
 * functions, rp_port_listen .. rp_port_assert below and rp_port_log under
 * "Logging" -- 16 in a build without RP_ENABLE_ASSERT, which never calls
 * rp_port_assert; 2 more with RP_ENABLE_DNS (rp_port_resolve,
 * rp_port_resolve_result: the only calls a port may answer from another
 * thread's work, through its own lock).  Sockets are small non-negative integers chosen by the
 * port; every call is non-blocking.  rproxy calls nothing else outside
 * this list (and memcpy, memmove, memcmp, memset, strlen). */

/** A socket: a small non-negative integer the port chooses (an index into
 *  its own table); negative values are rp_err codes. */
typedef int rp_sock;

/** Readiness / interest bits. */
enum { RP_EV_READ = 1, RP_EV_WRITE = 2, RP_EV_ERROR = 4 };

/** One readiness report, filled by the port in rp_port_wait: ud as given
 *  to rp_port_watch, events RP_EV_* bits. */
typedef struct {
    void *ud;
    unsigned events;
} rp_event;

/** One piece of a gather send, filled by rproxy for rp_port_sendv. */
typedef struct {
    const void *p;
    size_t n;
} rp_iov;

/** Listen on a (backlog connections queued).  Returns a socket or RP_EADDR. */
rp_sock rp_port_listen(const rp_addr *a, int backlog);

/** Accept one pending connection; *peer gets its address.  Returns a socket,
 *  RP_EAGAIN when none is pending, RP_ENOMEM when out of descriptors. */
rp_sock rp_port_accept(rp_sock l, rp_addr *peer);

/** Start a non-blocking connect.  Returns a socket (connect in progress or
 *  done: writable readiness tells), or RP_EREFUSED / RP_ENOMEM. */
rp_sock rp_port_connect(const rp_addr *a);

/** After a connecting socket turned writable: RP_OK if connected,
 *  RP_EAGAIN if still connecting, else why not (RP_EREFUSED, RP_ETIMEDOUT,
 *  RP_EIO).  A port must not report a socket writable while its connect is
 *  still in progress (level-triggered readiness would spin until the
 *  connect timeout). */
int rp_port_connect_result(rp_sock s);

/** Send up to n bytes.  Returns bytes taken (> 0), RP_EAGAIN, or an error
 *  (RP_ERESET, RP_EIO). */
long rp_port_send(rp_sock s, const void *buf, size_t n);

/** Send iov[0..n) in order as one stream (writev): returns bytes taken
 *  (> 0, may end inside any piece), RP_EAGAIN, or an error; n <= 16.  Cache hits
 *  send the head and the body straight from the arena with it. */
long rp_port_sendv(rp_sock s, const rp_iov *iov, int n);

/** Receive up to n bytes.  Returns bytes (> 0), 0 at end of stream,
 *  RP_EAGAIN, or an error. */
long rp_port_recv(rp_sock s, void *buf, size_t n);

/** Half-close: no more sends (FIN after queued data). */
void rp_port_shutdown(rp_sock s);

/** Close; pending readiness reports for s are dropped. */
void rp_port_close(rp_sock s);

/** Set the interest for s (RP_EV_READ | RP_EV_WRITE, 0 for none) and the
 *  pointer reported with its events.  Returns RP_OK, or RP_EINVAL for a
 *  socket the port cannot track. */
int rp_port_watch(rp_sock s, unsigned events, void *ud);

/** Wait up to timeout_ms (0 = poll, -1 = forever) for readiness; fills at
 *  most max reports.  Returns how many (>= 0) or an error.  Readiness is
 *  level-triggered: a socket is reported for as long as the condition holds.
 *  On bare metal (lwIP, NO_SYS) it may return at once whatever the timeout:
 *  the board's main loop does the waiting. */
int rp_port_wait(rp_event *ev, int max, int timeout_ms);

/** Monotonic milliseconds. */
uint64_t rp_port_now_ms(void);

/** Wall-clock seconds since 1970-01-01 UTC, or 0 when the board has no
 *  clock.  Only HTTP dates use it (the cache's Date and apparent age). */
int64_t rp_port_time(void);

/** Fill buf with n cryptographically strong random bytes: RP_OK or RP_EIO. */
int rp_port_random(void *buf, size_t n);

/** Load a named blob (certificate, key): files on a host, flash arrays on a
 *  board.  *data stays valid until the port is torn down.  RP_OK,
 *  RP_ENOTFOUND (no such blob), RP_EACCES (not allowed to read it), RP_EIO
 *  (it exists but could not be read), or RP_ENOMEM when the port has no
 *  room to keep it: configuration errors name the reason. */
int rp_port_blob(const char *name, const void **data, size_t *len);

#if RP_ENABLE_DNS
/** Start looking up a device name (RP_ENABLE_DNS builds only; two more
 *  functions in the contract).  name is NUL-ended, at most 253 bytes (the
 *  port copies it); slot is the device's index, 0..RP_MAX_DEVICES-1, and
 *  rproxy starts at most one lookup per slot at a time.  The call must not
 *  block: the port answers from another thread (POSIX: getaddrinfo in a
 *  resolver thread) or from its stack's asynchronous resolver (lwIP:
 *  dns_gethostbyname) and, when an answer is ready, makes rp_port_wait
 *  return (with 0 reports if need be).  Returns RP_OK (started), RP_ENOMEM
 *  (no room now: rproxy tries again at the next interval), RP_EINVAL (a
 *  name the port cannot ask for), or RP_ENOTIMPL (the port has no
 *  resolver: rproxy does not ask again). */
int rp_port_resolve(const char *name, int slot);

/** The outcome of slot's lookup, asked by rproxy after every rp_port_wait
 *  while it is in flight: RP_EAGAIN (not yet), RP_OK with out->family and
 *  out->ip set to the first usable answer (IPv4, or IPv6 where the build
 *  has RP_ENABLE_IPV6; out->port is rproxy's), or a failure -- RP_ENOTFOUND
 *  (no such name, or no answer of a usable family), RP_ETIMEDOUT, RP_EIO
 *  (the server failed or its answer was malformed, truncated or too big).
 *  After an answer other than RP_EAGAIN the slot is free again. */
int rp_port_resolve_result(int slot, rp_addr *out);
#endif

#if RP_ENABLE_ASSERT
/** An internal invariant failed (RP_ENABLE_ASSERT builds only): report
 *  file:line and the expression, then stop; must not return. */
void rp_port_assert(const char *file, int line, const char *expr);
#endif

/* ==== Logging ==== */

/** Log levels for rp_port_log. */
enum { RP_LOG_ERROR = 0, RP_LOG_WARN = 1, RP_LOG_INFO = 2, RP_LOG_DEBUG = 3 };

/** Write one log line (printf-style, no trailing newline needed): the
 *  port's last function. */
void rp_port_log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** RP_LOG(level, (fmt, ...)): lwIP-style double parentheses; compiles away
 *  when RP_ENABLE_LOG is 0 or level is above RP_LOG_LEVEL. */
#ifndef RP_LOG_LEVEL
#define RP_LOG_LEVEL RP_LOG_INFO
#endif
#define RP_UNPAREN_(...) __VA_ARGS__
#define RP_LOG_CALL_(level, ...) rp_port_log(level, __VA_ARGS__)
#if RP_ENABLE_LOG
#define RP_LOG(level, args)                                    \
    do {                                                       \
        if ((level) <= RP_LOG_LEVEL)                           \
            RP_LOG_CALL_(level, RP_UNPAREN_ args);             \
    } while (0)
#else
#define RP_LOG(level, args) ((void)0)
#endif

/* ======================================================================
 * Private: the layout of rp_proxy
 *
 * Declare an rp_proxy (static storage, or memset it to zero), pass its
 * address, read only `cfg` and `stats`, and set `access_fn` / `access_ud`
 * (RP_ENABLE_ACCESS_LOG) after rp_init.  Every other field, and every type
 * in this section, may change in any release: they are here only so that
 * the compiler knows sizeof(rp_proxy) and the caller can own the memory.
 *
 * The order of the fields is chosen for the code, not for reading: on a
 * Cortex-M a Thumb-2 load reaches only so far from its base register in
 * one short instruction, so the board's code size depends on these
 * offsets (see the comments in the structs).  Move nothing without
 * comparing `arm-none-eabi-size` of the board's rproxy.o before and after.
 * ====================================================================== */

/** A connection's buffer: a block from the pool while it holds bytes (d is
 *  NULL otherwise); the data is d[r..w). */
typedef struct {
    uint32_t r, w;
    char *d;
} rp_buf;

/** A listening socket (one per `listen` line). */
struct rp_lsock {
    uint8_t kind;      /* must stay first: reports carry &kind */
    uint8_t slot_wait; /* paused until a TLS slot frees */
    int sock;
    uint64_t paused_until;
};

#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
/** A client address's entry in the client table (src/20-auth.c): what
 *  client_limit and the failed-login limit count.  family 0: free. */
struct rp_client {
    uint8_t family;
    uint8_t fails;       /* failed logins in the window that began at fail_t */
    uint16_t conns;      /* open connections now */
    uint32_t tokens;     /* rate bucket, in thousandths of a request */
    uint8_t ip[16];
    uint64_t seen;       /* last used (ms): the oldest idle entry is reused */
    uint64_t refill;     /* bucket last topped up (ms) */
    uint64_t fail_t;     /* first failure of the window; locked until
                            fail_t + RP_AUTH_LOCK_MS once fails > max */
};
#endif
#if RP_ENABLE_AUTH
/** A verified Basic credential (src/20-auth.c): the SHA-256 of the users
 *  table index and the Authorization value (24 of its bytes), until `until`. */
struct rp_auth_ok {
    uint8_t h[24];
    uint64_t until;
};
#endif

#if RP_ENABLE_SHARE
/** A shared live stream (src/23-share.c): the device connection feeding it,
 *  the head every viewer gets, where its parts begin.  Its bytes are in
 *  rp_proxy.stream_ring[i].  state 0: free. */
struct rp_stream {
    uint8_t state;       /* SS_*: free, pending (the head awaited), live, done, failed */
    uint8_t kind;        /* SK_*: multipart, event-stream, other */
    uint8_t route;
    uint8_t match;       /* boundary scanner state */
#if RP_ENABLE_RELOAD
    uint8_t cfs;         /* its configuration slot: joined only from the same */
#endif
    uint16_t viewers;    /* clients on it (the opener included) */
    uint16_t head_len;
    uint8_t bnd_len;     /* "\n--" + boundary */
    uint8_t nsync;       /* sync[] entries (at most RP_STREAM_SYNCS, a ring) */
    uint8_t sync_at;     /* next sync[] slot */
    uint8_t cred[24];    /* SHA-256 of Authorization and Cookie (or zero) */
    uint16_t url_len;
    uint64_t wpos;       /* payload bytes written since the stream began */
    uint64_t bytes_out;  /* payload bytes queued to viewers */
    uint64_t drops;      /* parts skipped by slow viewers */
    uint64_t sync[RP_STREAM_SYNCS]; /* where parts begin (payload offsets) */
    struct rp_conn *owner; /* pending: the client whose request opens it */
    struct rp_conn *dev;   /* live: the device connection */
    char bnd[76];
    char url[256];       /* host + target, the key */
    char head[RP_STREAM_HEAD];
};
#endif

#if RP_ENABLE_CACHE
/** The cache's tables (the arena itself is rp_proxy.cache_arena).  Index 0
 *  of entries and blocks is never used, so 0 means "none" and rp_init's
 *  memset is the whole initialisation. */
struct rp_cache {
    uint16_t bucket[RP_CACHE_ENTRIES];   /* hash -> first entry */
    uint16_t blk_next[RP_CACHE_BYTES / RP_CACHE_BLOCK];
    uint16_t free_blk, fresh_blk;        /* free list; never used from */
    uint16_t free_ent, fresh_ent;
    uint16_t lru_head, lru_tail;         /* most / least recently used */
    uint32_t nblk_used;
    uint32_t nentries;                   /* stored (ready) entries */
    struct rp_cache_entry {
        struct rp_chain {
            uint16_t first, last; /* arena blocks, linked by blk_next */
            uint32_t len;         /* bytes in the chain */
        } meta, body;          /* key, Vary values, ETag, Last-Modified,
                                  head; and the body */
        uint32_t hash;         /* of the key */
        uint16_t hnext;        /* bucket chain */
        uint16_t prev, next;   /* LRU list (ready entries) */
        uint16_t key_len, vary_len, etag_len, lm_len;
        uint16_t pins;         /* exchanges reading or revalidating it */
        uint16_t status;
        uint8_t state;         /* free, filling, ready */
        uint8_t flags;         /* no-cache, no stale, doomed, ... */
        int32_t lifetime;      /* freshness lifetime, s */
        int32_t stale_if_error;/* s, -1 none */
        int64_t age0;          /* corrected initial age, s */
        uint64_t resp_ms;      /* response time (monotonic ms) */
        int64_t lm;            /* Last-Modified, s since 1970, -1 none */
        uint64_t expect;       /* Content-Length being filled, or ~0 */
    } e[RP_CACHE_ENTRIES];
};
#endif

/** A connection slot: a client or a device connection (src/09-conn.c has
 *  its state machine).  RP_MAX_CONNS client slots and RP_MAX_UPSTREAM
 *  device slots, each with two buffers from the pool. */
struct rp_conn {
    /* Ordered for the Thumb-2 short loads: bytes in the first 32,
     * halfwords in the first 64, words in the first 128; the 64-bit
     * fields (always a 32-bit ldrd/strd) and the cold ones after. */
    uint8_t kind;      /* must stay first: reports carry &kind */
    uint8_t state;
    uint8_t watched;   /* interest last given to the port */
    uint8_t ready;     /* readiness last reported by the port */
    uint8_t mode;      /* framing of the body in `in` */
    uint8_t tkind;     /* which timer is armed */
    uint8_t device;    /* device index; a client's is kept for the access log only
                          (NO_DEVICE before one is picked) */
    uint8_t route;     /* route index (client side) */
    uint8_t tries;     /* retries used for the current request */
    uint8_t lsn;       /* listener index (client side) */
#if RP_ENABLE_RELOAD
    uint8_t cfs;       /* configuration slot its exchange runs on (0 cfg, 1 cfg2) */
#endif
    uint16_t slot;
    int16_t err;       /* first error (sticky) */
#if RP_ENABLE_CACHE
    uint16_t cflags;   /* cache: what this exchange did (CF_*) */
    uint16_t centry;   /* entry pinned: being served or revalidated */
    uint16_t cfill;    /* entry this exchange fills */
    uint16_t cblk;     /* hit body: current arena block, offset in it */
    uint16_t coff;
#endif
    uint32_t flags;
    int sock;
    int status;        /* response status being forwarded */
    uint32_t tried;    /* devices tried for this request (bit mask) */
    uint32_t head_len; /* request head held in `in` for a retry; 0: none */
#if RP_ENABLE_CACHE
    uint32_t cleft;    /* hit body bytes still to send */
#endif
    size_t scan;       /* rp_http_head_end resume offset */
    struct rp_tls *tls;    /* TLS engine, or NULL for plain TCP */
    struct rp_conn *link;  /* the other side of the exchange */
    struct rp_conn *next;  /* free list / idle list */
    rp_buf in, out;
#if RP_ENABLE_CACHE
    uint32_t chost;    /* hash of the request's host, and of its key */
    uint32_t ckey;
#endif
    rp_chunked ch;     /* chunked framing of the body in `in` */
    uint64_t left;     /* body bytes left (M_LENGTH framing) */
    uint64_t deadline; /* timer, 0 = none */
    uint64_t t_start;  /* request head started (access log) */
#if RP_ENABLE_ACCESS_LOG
    uint64_t sent;     /* bytes queued to the client for this request */
#endif
    rp_addr peer;      /* client address / device address */
#if RP_ENABLE_STATUS
    uint32_t item;     /* CS_LOCAL: the status page's next item */
#endif
#if RP_ENABLE_SHARE
    uint8_t stream;    /* stream + 1 this client views (or opens), or this device feeds */
    uint64_t spos;     /* viewer: the next stream byte it gets (SPOS_* while not placed) */
#endif
#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
    uint16_t cl;       /* client table entry + 1 counting this connection; 0: none */
    uint16_t retry_after; /* a 429's Retry-After, seconds */
#endif
#if RP_ENABLE_PATH_MAP
    char mhost[RP_MAP_HOST_MAX]; /* client: its Host ("" none or too long), for mapping */
#endif
#if RP_ENABLE_ACCESS_LOG
    char method[16];   /* for the access log */
    char target[96];
#if RP_ENABLE_REASONS
    const char *why;   /* the rule that refused the request, or NULL */
#endif
#endif
};

#if RP_ENABLE_TLS
/** A TLS slot: BearSSL's buffers and contexts for one TLS connection
 *  (RP_MAX_TLS_CONNS of them, handed out on demand). */
struct rp_tls {
    unsigned char ibuf[BR_SSL_BUFSIZE_INPUT]; /* first: aligned, so the
                               config loader may borrow slot 0's */
    unsigned char obuf[RP_TLS_OBUF_SIZE];
    union {
        br_ssl_server_context sc;              /* client-facing */
        br_ssl_client_context cc;              /* device-facing */
    } u;
    union {
        br_x509_minimal_context min;           /* chains checked */
        struct rp_x509_any {                   /* verify=off: key only */
            const br_x509_class *vtable;
            br_x509_decoder_context dec;
            int first;
        } any;
    } xc;
    br_name_element cn_elt;                    /* their subject CN */
    char cn[64];
    const br_ssl_server_policy_class *chooser; /* SNI: picks a cert */
    struct rp_proxy *owner;
    uint8_t ready;     /* engine configured: 1 server, 2 client */
};
#endif

/** Everything rproxy has.  The small fields every turn touches come first
 *  and the configuration after them: a Thumb-2 load reaches 4 KB from `p`
 *  in one instruction, and the config's certificate store would push
 *  everything behind it out of that reach.  rp_init clears everything
 *  before `bufs`; what follows is touched only when used. */
struct rp_proxy {
    rp_stats stats;        /* public: read */
#if RP_ENABLE_TURN_STATS
    rp_loop_stats loop;    /* public: read */
#endif
#if RP_ENABLE_ACCESS_LOG
    rp_access_fn access_fn; /* public: set after rp_init (NULL: none) */
    void *access_ud;
#endif
    /* private, but for cfg */
    uint64_t now;
    uint64_t next_timer;
    uint64_t t_started;    /* rp_start time, for uptime */
    uint8_t started, stopping;
    uint8_t pick_any;      /* balancer: ignore passive down marks */
    uint8_t pick_full;     /* balancer: a device was passed over at max_conns */
#if RP_ENABLE_DNS
    uint8_t dns_pending;   /* devices whose lookup is in flight in the port */
#endif
#if RP_ENABLE_RELOAD
    rp_config *cur;        /* the slot the code runs under now (CFG): a
                              connection's while its report is served */
    uint8_t live;          /* slot of the running configuration */
    uint8_t spare;         /* the other slot: RL_FREE, RL_READY, RL_OLD */
    uint8_t dfwd[RP_MAX_DEVICES];   /* RL_OLD: device -> its live twin + 1 (0: gone) */
    uint8_t lfwd[RP_MAX_LISTENERS]; /* RL_OLD: listener -> live one + 1 (0: gone) */
#if RP_ENABLE_DNS
    uint8_t dns_orphan[RP_MAX_DEVICES]; /* port slots whose lookup predates a reload */
#endif
    rp_reload reload;      /* public: read */
    rp_buf scratch;        /* a reload's parse: the certificate decoders' room */
#endif
    rp_event *batch;       /* reports of the current rp_poll turn */
    int batch_at, batch_n; /* (with a bound: what the last turn left) */
#if RP_TURN_TRACK_
    rp_turn turn;          /* the current turn's work */
#endif
    struct rp_lsock lsocks[RP_MAX_LISTENERS];
    struct rp_conn *free_clients, *free_devices;
    struct rp_conn *idle[RP_MAX_DEVICES]; /* pooled device connections */
#if RP_ENABLE_TLS
    struct rp_tls *tls_stack[RP_MAX_TLS_CONNS]; /* free TLS slots */
    int tls_top, tls_fresh;
    br_ssl_session_cache_lru tls_cache;
    br_ec_impl tls_ec;     /* the default EC code, curves narrowed */
#endif
#if RP_ENABLE_CACHE
    struct rp_cache cache; /* the cache's tables */
#endif
#if RP_ENABLE_CLIENT_LIMIT || RP_ENABLE_AUTH
    struct rp_client clients_seen[RP_CLIENT_TABLE]; /* per client address */
#endif
#if RP_ENABLE_AUTH
    struct rp_auth_ok auth_ok[RP_AUTH_CACHE]; /* credentials verified lately */
#endif
#if RP_ENABLE_SHARE
    struct rp_stream streams[RP_MAX_STREAMS];
#endif
#if RP_TURN_BOUND_
    rp_event turn_ev[64];  /* the port's reports, kept for the next turn */
#endif
    rp_config cfg;         /* public: read */
    struct rp_conn clients[RP_MAX_CONNS], devices[RP_MAX_UPSTREAM];
    int buf_top;           /* free blocks stacked in buf_free */
    int buf_fresh;         /* blocks never handed out start here */
    char *buf_free[RP_NBUFS];
    char bufs[RP_NBUFS][RP_BUF_SIZE];
#if RP_ENABLE_CACHE
    unsigned char cache_arena[RP_CACHE_BYTES]; /* untouched until stored to */
#endif
#if RP_ENABLE_SHARE
    unsigned char stream_ring[RP_MAX_STREAMS][RP_STREAM_RING]; /* untouched until streamed */
#endif
#if RP_ENABLE_TLS
    /* Past the bookkeeping rp_init clears: touched only when used. */
    unsigned char tls_cache_buf[RP_TLS_SESSION_CACHE_BYTES];
    struct rp_tls tls[RP_MAX_TLS_CONNS];
#endif
#if RP_ENABLE_RELOAD
    rp_config cfg2;        /* the second slot: cleared when filled */
#endif
};

#ifdef __cplusplus
}
#endif
#endif /* RPROXY_H */

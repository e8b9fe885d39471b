/*
 * posix.h -- host-only extras of the POSIX port (port/posix.c).
 *
 * SPDX-License-Identifier: MIT
 *
 * The port contract itself is declared in rproxy.h.  These few functions are
 * for the host daemon (boards/host/main.c) only; the core never calls them.
 */
#ifndef RP_PORT_POSIX_H
#define RP_PORT_POSIX_H

#ifdef __cplusplus
extern "C" {
#endif

/** Largest descriptor number the port tracks (per-descriptor table entries,
 *  ~16 B each, in .bss).  Descriptors at or above it are refused. */
#ifndef RP_POSIX_MAX_FDS
#define RP_POSIX_MAX_FDS 65536
#endif

/** Raise the RLIMIT_NOFILE soft limit to the hard limit, capped at
 *  RP_POSIX_MAX_FDS so the kernel refuses descriptors the port could not
 *  track.  Returns the soft limit now in force, or -1 if it is unknown. */
long rp_posix_raise_nofile(void);

/* rp_port_blob reads files: a failure leaves errno saying why (ENOENT,
 * EACCES, EISDIR for a directory, ...), for a caller's strerror; its return
 * is RP_ENOTFOUND, RP_EACCES, RP_ENOMEM or RP_EIO by that errno. */

/** Where rp_port_log's lines go: NULL (the default) writes "rproxy: LINE"
 *  to stderr; the daemon sets its log target here (boards/host/main.c). */
extern void (*rp_posix_log_hook)(int level, const char *line);

/** Forget the files rp_port_blob read (they are read again when asked
 *  for): before a reload's rp_config_parse, which copies what it keeps. */
void rp_posix_blobs_forget(void);

/** Tear the port down: free every blob loaded by rp_port_blob and close the
 *  event descriptor.  Call at exit, after the last rp_* call. */
void rp_posix_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif /* RP_PORT_POSIX_H */

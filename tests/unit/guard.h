/*
 * guard.h -- place test inputs right before an unreadable page
 * (header-only; picohttpparser's trick).
 *
 * SPDX-License-Identifier: MIT
 *
 * guard_place(data, n) copies n bytes so that they END exactly where a
 * PROT_NONE page begins and returns the copy: a parser that reads even one
 * byte past data[n-1] takes SIGSEGV at once, where ASan alone might miss a
 * read into some other valid memory.  The arena is mapped once (GUARD_CAP
 * bytes plus the guard page); each call overwrites the previous input, so a
 * test keeps only one placed input alive at a time (or copies it first).
 *
 *     const char *b = guard_place(req, len);
 *     rc = rp_http_parse_request(b, len, &m);
 *
 * guard_buf(n) returns n writable bytes ending at the guard page, for
 * output-side checks (a formatter must not write past cap).
 */
#ifndef GUARD_H
#define GUARD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/** Largest input guard_place accepts. */
#ifndef GUARD_CAP
#define GUARD_CAP (256 * 1024)
#endif

/* Helpers a test does not call must not warn (-Wunused-function). */
#if defined(__GNUC__)
#define GUARD_FN static __attribute__((unused))
#else
#define GUARD_FN static
#endif

static char *guard_end_; /* first byte of the PROT_NONE page */

GUARD_FN char *
guard_arena_(void)
{
    if (!guard_end_) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t body = (GUARD_CAP + page - 1) / page * page;
        char *base = (char *)mmap(NULL, body + page, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) {
            perror("guard: mmap");
            abort();
        }
        if (mprotect(base + body, page, PROT_NONE) != 0) {
            perror("guard: mprotect");
            abort();
        }
        guard_end_ = base + body;
    }
    return guard_end_;
}

/** n writable bytes whose last byte sits right before the guard page. */
GUARD_FN char *
guard_buf(size_t n)
{
    char *end = guard_arena_();
    if (n > GUARD_CAP) {
        fprintf(stderr, "guard: %lu bytes is over GUARD_CAP\n", (unsigned long)n);
        abort();
    }
    return end - n;
}

/** Copy data[0..n) so that it ends at the guard page; returns the copy. */
GUARD_FN const char *
guard_place(const void *data, size_t n)
{
    char *b = guard_buf(n);
    if (n)
        memmove(b, data, n);
    return b;
}

#endif /* GUARD_H */

/*
 * fuzz.h -- shared bits of rproxy's libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * SPDX-License-Identifier: MIT
 *
 * FZ_CHECK(cond, fmt, ...) is an invariant: when it fails it prints the
 * reason and aborts, so libFuzzer saves the input as a crash-* file.
 * fz_copy() puts the input in a heap block of exactly its size, so ASan
 * reports any read past the end (libFuzzer's own copy is exact too, but a
 * target that slices the input needs its own).
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rproxy.h"

#define FZ_CHECK(cond, ...)                                             \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "fuzz invariant failed: %s:%d: %s: ",       \
                    __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            abort();                                                    \
        }                                                               \
    } while (0)

/* An exact-size heap copy of p[0..n) (n may be 0). */
static inline char *
fz_copy(const void *p, size_t n)
{
    char *b = (char *)malloc(n ? n : 1);
    if (!b)
        abort();
    if (n)
        memcpy(b, p, n);
    return b;
}

/* The view v lies inside [base, base+n). */
static inline int
fz_within(rp_str v, const char *base, size_t n)
{
    if (v.n == 0)
        return 1;
    return v.p >= base && v.p + v.n <= base + n;
}

/* No CR, LF or NUL in v. */
static inline int
fz_clean(rp_str v)
{
    size_t i;
    for (i = 0; i < v.n; i++)
        if (v.p[i] == '\r' || v.p[i] == '\n' || v.p[i] == 0)
            return 0;
    return 1;
}

/* Small deterministic PRNG for splitting inputs. */
static inline uint32_t
fz_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

#endif /* FUZZ_H */

/*
 * tap.h -- a tiny TAP producer for the unit tests (header-only).
 *
 * SPDX-License-Identifier: MIT
 *
 * Plan-less TAP: every check prints "ok N - name" or "not ok N - name",
 * failures add "# file:line: ..." diagnostics, and tap_done() prints the
 * plan "1..N" last and returns the exit status (1 when anything failed).
 * Names are printf formats so table-driven tests can say which row failed:
 *
 *     CHECK(p != NULL, "alloc");
 *     CHECK_INT(rc, RP_OK, "req[%d] %s", i, cases[i].name);
 *     CHECK_STR(got, "GET", "method");
 *     CHECK_MEM(v.p, v.n, "/p", "target");   // a view against a C string
 *     return tap_done();
 *
 * Every macro evaluates to 1 when the check passed, 0 when it failed, so a
 * test can stop early:  if (!CHECK(fd >= 0, "open")) return tap_done();
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Helpers a test does not call must not warn (-Wunused-function). */
#if defined(__GNUC__)
#define TAP_FN static __attribute__((unused))
#else
#define TAP_FN static
#endif

static int tap_count_;
static int tap_failed_;

/* Print one "ok"/"not ok" line; name is a printf format. */
TAP_FN int
tap_result_(int ok, const char *fmt, va_list ap)
{
    tap_count_++;
    if (!ok)
        tap_failed_++;
    printf("%s %d - ", ok ? "ok" : "not ok", tap_count_);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    return ok;
}

/** A diagnostic line: "# " + printf. */
TAP_FN void
tap_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    fflush(stdout);
}

/* Print up to 200 bytes of s[0..n) with C escapes. */
TAP_FN void
tap_escaped_(const char *s, size_t n)
{
    size_t i, lim = n > 200 ? 200 : n;
    putchar('"');
    for (i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (n > lim)
        printf("... (%lu bytes)", (unsigned long)n);
}

TAP_FN int
tap_ok_(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_result_(ok, fmt, ap);
    va_end(ap);
    if (!ok)
        printf("# %s:%d: check failed: %s\n", file, line, expr);
    return ok;
}

TAP_FN int
tap_int_(long long got, long long want, const char *file, int line,
         const char *expr, const char *fmt, ...)
{
    va_list ap;
    int ok = got == want;
    va_start(ap, fmt);
    tap_result_(ok, fmt, ap);
    va_end(ap);
    if (!ok)
        printf("# %s:%d: %s: expected %lld, got %lld\n", file, line, expr, want, got);
    return ok;
}

/* got[0..gotn) against want (NUL-ended); got may be NULL (then gotn is
 * ignored and it only equals a NULL want). */
TAP_FN int
tap_mem_(const char *got, size_t gotn, const char *want, const char *file,
         int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    int ok;
    if (got == NULL || want == NULL)
        ok = got == want;
    else
        ok = gotn == strlen(want) && memcmp(got, want, gotn) == 0;
    va_start(ap, fmt);
    tap_result_(ok, fmt, ap);
    va_end(ap);
    if (!ok) {
        printf("# %s:%d: %s: expected ", file, line, expr);
        if (want)
            tap_escaped_(want, strlen(want));
        else
            fputs("NULL", stdout);
        fputs(", got ", stdout);
        if (got)
            tap_escaped_(got, gotn);
        else
            fputs("NULL", stdout);
        putchar('\n');
    }
    return ok;
}

/** A skipped test: "ok N - name # SKIP reason". */
TAP_FN void
tap_skip(const char *name, const char *reason)
{
    tap_count_++;
    printf("ok %d - %s # SKIP %s\n", tap_count_, name, reason);
    fflush(stdout);
}

/** Print the plan; returns the process exit status (0 = all passed). */
TAP_FN int
tap_done(void)
{
    printf("1..%d\n", tap_count_);
    if (tap_failed_)
        printf("# %d of %d checks FAILED\n", tap_failed_, tap_count_);
    fflush(stdout);
    return tap_failed_ ? 1 : 0;
}

/** Number of failed checks so far. */
TAP_FN int
tap_failures(void)
{
    return tap_failed_;
}

/* The name arguments (__VA_ARGS__) are a printf format and its arguments. */
#define CHECK(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)
#define CHECK_INT(got, want, ...)                                                \
    tap_int_((long long)(got), (long long)(want), __FILE__, __LINE__, #got,     \
             __VA_ARGS__)
#define CHECK_STR(got, want, ...)                                                \
    tap_str_wrap_((got), (want), __FILE__, __LINE__, #got, __VA_ARGS__)
#define CHECK_MEM(gotp, gotn, want, ...)                                         \
    tap_mem_((gotp), (gotn), (want), __FILE__, __LINE__, #gotp, __VA_ARGS__)

TAP_FN int
tap_str_wrap_(const char *got, const char *want, const char *file, int line,
              const char *expr, const char *fmt, ...)
{
    va_list ap;
    int ok = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
    va_start(ap, fmt);
    tap_result_(ok, fmt, ap);
    va_end(ap);
    if (!ok) {
        printf("# %s:%d: %s: expected ", file, line, expr);
        if (want)
            tap_escaped_(want, strlen(want));
        else
            fputs("NULL", stdout);
        fputs(", got ", stdout);
        if (got)
            tap_escaped_(got, strlen(got));
        else
            fputs("NULL", stdout);
        putchar('\n');
    }
    return ok;
}

#endif /* TAP_H */

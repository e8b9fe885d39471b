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
 *
 * Named tests: a binary lists its test functions (each void test_NAME(void))
 * in a table and hands it to tap_main, which runs them in table order:
 *
 *     static const tap_test tests[] = {TAP_TEST(keepalive), TAP_TEST(pipelining)};
 *     int main(int argc, char **argv) { return tap_main(argc, argv, tests, TAP_COUNT(tests)); }
 *
 *     build/unit/test_x                     every test
 *     build/unit/test_x keepalive pipe      the tests these NAMEs select
 *     build/unit/test_x --list              the names, one a line
 *
 * A NAME selects the test of exactly that name; when there is none, every
 * test whose name contains it (so a prefix or any part of a name will do).
 * A NAME that selects nothing is an error (a message, exit status 2), unless
 * --allow-unknown is given (`make unit T=...` passes it, since a name belongs
 * to one binary): then such NAMEs are ignored, and a binary left with
 * nothing to run prints "1..0 # SKIP ..." and exits 0.  "# test: NAME"
 * precedes each test's checks.
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

/* ---- named tests ---- */

/** One test: its name and the function that runs its checks. */
typedef struct {
    const char *name;
    void (*fn)(void);
} tap_test;

/** The table row for the function test_NAME, named "NAME". */
#define TAP_TEST(name) {#name, test_##name}
/** Rows in a table (an array, not a pointer). */
#define TAP_COUNT(t) (sizeof(t) / sizeof((t)[0]))

/* Does arg select test i: its exact name, or (no test has that name) a
 * part of it? */
TAP_FN int
tap_selects_(const tap_test *t, size_t n, size_t i, const char *arg)
{
    size_t j;
    for (j = 0; j < n; j++)
        if (strcmp(t[j].name, arg) == 0)
            return j == i;
    return strstr(t[i].name, arg) != NULL;
}

/* Does any of the NAMEs in argv[1..argc) select test i? */
TAP_FN int
tap_selected_(const tap_test *t, size_t n, size_t i, int argc, char **argv)
{
    int a;
    for (a = 1; a < argc; a++)
        if (argv[a][0] != '-' && tap_selects_(t, n, i, argv[a]))
            return 1;
    return 0;
}

TAP_FN void
tap_usage_(FILE *f, const char *prog)
{
    fprintf(f, "usage: %s [--list] [--allow-unknown] [NAME...]\n"
               "  runs every test, or those NAMEs select: the test of that exact name,\n"
               "  else every test whose name contains NAME (--list: the names)\n",
            prog);
}

/* Check the options and the NAMEs; -1 to go on, else the exit status. */
TAP_FN int
tap_args_(const tap_test *t, size_t n, int argc, char **argv, int *names)
{
    int a, lenient = 0, list = 0;
    size_t i;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--list") == 0)
            list = 1;
        else if (strcmp(argv[a], "--allow-unknown") == 0)
            lenient = 1;
        else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            tap_usage_(stdout, argv[0]);
            return 0;
        } else if (argv[a][0] == '-') {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], argv[a]);
            tap_usage_(stderr, argv[0]);
            return 2;
        } else
            ++*names;
    }
    for (i = 0; list && i < n; i++)
        puts(t[i].name);
    if (list)
        return 0;
    for (a = 1; a < argc && !lenient; a++) {
        if (argv[a][0] == '-')
            continue;
        for (i = 0; i < n && !tap_selects_(t, n, i, argv[a]); i++)
            ;
        if (i == n) {
            fprintf(stderr, "%s: no test is named like \"%s\" (%s --list shows the names)\n", argv[0], argv[a],
                    argv[0]);
            return 2;
        }
    }
    return -1;
}

/** Run the tests argv selects (all of them without NAMEs) and finish with
 *  tap_done(); see the top of this file. */
TAP_FN int
tap_main(int argc, char **argv, const tap_test *t, size_t n)
{
    int names = 0, ran = 0, rc = tap_args_(t, n, argc, argv, &names);
    size_t i;
    if (rc >= 0)
        return rc;
    for (i = 0; i < n; i++) {
        if (names && !tap_selected_(t, n, i, argc, argv))
            continue;
        tap_diag("test: %s", t[i].name);
        t[i].fn();
        ran++;
    }
    if (!ran) {
        printf("1..0 # SKIP %s has no test of these names\n", argv[0]);
        return 0;
    }
    return tap_done();
}

#endif /* TAP_H */

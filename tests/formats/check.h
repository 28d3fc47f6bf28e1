/*
 * check.h - tiny assertion helpers for the formats tests (failures are counted, not fatal).
 */
#ifndef LOOM_TESTS_FORMATS_CHECK_H
#define LOOM_TESTS_FORMATS_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                                                  \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                 \
            check_failures++;                                                                        \
        }                                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                         \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                            \
            fputc('\n', stderr);                                                                     \
            check_failures++;                                                                        \
        }                                                                                            \
    } while (0)

#define CHECK_DONE()                                                                                 \
    do {                                                                                             \
        if (check_failures) fprintf(stderr, "%d check(s) failed\n", check_failures);                 \
        return check_failures ? 1 : 0;                                                               \
    } while (0)

#endif

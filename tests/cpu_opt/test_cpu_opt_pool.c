/*
 * test_cpu_opt_pool.c - the cpu_opt thread pool: every index runs exactly once per run, the
 * in-run barrier orders phases, the dynamic counter hands out each chunk once, and workers that
 * went to sleep wake up again.
 */
#define _GNU_SOURCE
#include "cpu_opt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static int g_fail;
#define CHECK(c, ...)                                                                                              \
    do {                                                                                                           \
        if (!(c)) {                                                                                                \
            g_fail++;                                                                                              \
            fprintf(stderr, "FAIL %d: ", __LINE__);                                                                \
            fprintf(stderr, __VA_ARGS__);                                                                          \
            fputc('\n', stderr);                                                                                   \
        }                                                                                                          \
    } while (0)

typedef struct job {
    co_pool *pool;
    atomic_int hits[8];
    int phase1[8];
    atomic_int bad;
    atomic_int chunks[1000];
} job;

static void task(void *arg, int ith, int nth) {
    job *j = arg;
    atomic_fetch_add(&j->hits[ith], 1);
    j->phase1[ith] = ith + 1;
    co_pool_barrier(j->pool, nth);
    for (int i = 0; i < nth; i++)
        if (j->phase1[i] != i + 1) atomic_fetch_add(&j->bad, 1);
    co_pool_barrier(j->pool, nth);
    for (;;) {
        int64_t c = co_pool_next(j->pool);
        if (c >= 1000) break;
        atomic_fetch_add(&j->chunks[c], 1);
    }
}

int main(void) {
    for (int n = 1; n <= 4; n++) {
        co_pool *pool = co_pool_create(n, n == 3 ? 10 : 100000); /* n == 3: workers sleep at once */
        CHECK(co_pool_size(pool) == n, "size");
        for (int rep = 0; rep < 200; rep++) {
            static job j;
            memset(&j, 0, sizeof j);
            j.pool = pool;
            int nth = 1 + rep % n;
            co_pool_reset_counter(pool, 0);
            co_pool_run(pool, task, &j, nth);
            for (int i = 0; i < 8; i++) CHECK(atomic_load(&j.hits[i]) == (i < nth), "n=%d nth=%d index %d ran %d times", n, nth, i, atomic_load(&j.hits[i]));
            CHECK(atomic_load(&j.bad) == 0, "barrier did not order phases");
            for (int c = 0; c < 1000; c++) CHECK(atomic_load(&j.chunks[c]) == 1, "chunk %d taken %d times", c, atomic_load(&j.chunks[c]));
            if (rep == 100) {
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL); /* let spinning workers fall asleep */
            }
        }
        co_pool_free(pool);
    }
    printf("%s\n", g_fail ? "FAILED" : "ok");
    return g_fail ? 1 : 0;
}

/*
 * test_cpu_opt_pool.c - the cpu_opt thread pool: the caller always takes part and no index runs
 * twice, the dynamic counter hands out each chunk exactly once, the completion counter orders
 * two phases of one run, parallel_for covers its range, and workers that slept wake up again.
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
    atomic_int bad;
    int phase1[100];
    atomic_int chunks[1100];
} job;

/* Two phases on one counter: items 0..99 write phase1[], items 100..1099 check all of them. */
static void task(void *arg, int ith, int nth) {
    job *j = arg;
    (void)nth;
    atomic_fetch_add(&j->hits[ith], 1);
    int ready = 0;
    for (;;) {
        int64_t c = co_pool_next(j->pool);
        if (c >= 1100) break;
        atomic_fetch_add(&j->chunks[c], 1);
        if (c < 100) {
            j->phase1[c] = (int)c + 1;
            co_pool_done(j->pool, 1);
            continue;
        }
        if (!ready) {
            co_pool_wait_done(j->pool, 100);
            ready = 1;
        }
        if (j->phase1[c % 100] != (int)(c % 100) + 1) atomic_fetch_add(&j->bad, 1);
    }
}

typedef struct sum_job {
    atomic_llong sum;
    atomic_int calls;
} sum_job;

static void range(void *arg, int64_t i0, int64_t i1, int ith) {
    sum_job *s = arg;
    (void)ith;
    for (int64_t i = i0; i < i1; i++) atomic_fetch_add(&s->sum, i);
    atomic_fetch_add(&s->calls, 1);
}

int main(void) {
    for (int n = 1; n <= 4; n++) {
        co_pool *pool = co_pool_create(n, n == 3 ? 10 : 100000); /* n == 3: workers sleep at once */
        CHECK(co_pool_size(pool) == n, "size");
        for (int rep = 0; rep < 300; rep++) {
            static job j;
            memset(&j, 0, sizeof j);
            j.pool = pool;
            int nth = 1 + rep % n;
            co_pool_reset_counter(pool, 0);
            co_pool_run(pool, task, &j, nth);
            CHECK(atomic_load(&j.hits[0]) == 1, "the caller did not take part");
            int total = 0;
            for (int i = 0; i < 8; i++) {
                int h = atomic_load(&j.hits[i]);
                CHECK(h <= 1 && (h == 0 || i < nth), "n=%d nth=%d index %d ran %d times", n, nth, i, h);
                total += h;
            }
            CHECK(total <= nth, "too many participants");
            CHECK(atomic_load(&j.bad) == 0, "phase 2 ran before phase 1 finished");
            for (int c = 0; c < 1100; c++)
                CHECK(atomic_load(&j.chunks[c]) == 1, "chunk %d taken %d times", c, atomic_load(&j.chunks[c]));
            sum_job s;
            atomic_init(&s.sum, 0);
            atomic_init(&s.calls, 0);
            co_parallel_for(pool, nth, 1000 + rep, 7, range, &s);
            long long n_items = 1000 + rep;
            CHECK(atomic_load(&s.sum) == n_items * (n_items - 1) / 2, "parallel_for sum");
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

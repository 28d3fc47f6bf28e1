/*
 * threadpool.c - persistent worker threads with cheap synchronisation.
 *
 * A run publishes (fn, arg, nth) and bumps a generation counter; workers spin on it for a
 * while (pause loops) and only then sleep on a condition variable, so back-to-back ops of a
 * decode step cost a few hundred nanoseconds of hand-over instead of a futex round trip. The
 * caller is thread 0 and takes part in the work. In-run barriers spin and then yield.
 */
#include "cpu_opt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define co_relax() _mm_pause()
#else
#define co_relax() ((void)0)
#endif

typedef struct co_worker {
    co_pool *pool;
    int index;
    pthread_t thread;
} co_worker;

struct co_pool {
    int n;
    int spin_iters;
    co_worker *workers; /* n - 1 */
    /* current job */
    co_task_fn fn;
    void *arg;
    int nth;
    _Alignas(64) atomic_uint gen;
    _Alignas(64) atomic_int n_done;
    _Alignas(64) atomic_llong counter;
    _Alignas(64) atomic_int bar_count;
    _Alignas(64) atomic_uint bar_gen;
    _Alignas(64) atomic_int n_sleeping;
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *worker_main(void *p) {
    co_worker *w = p;
    co_pool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->gen, memory_order_acquire)) == seen) {
            if (++spins < pool->spin_iters) {
                co_relax();
                continue;
            }
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->n_sleeping, 1);
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->quit)) pthread_cond_wait(&pool->cv, &pool->mu);
            atomic_fetch_sub(&pool->n_sleeping, 1);
            pthread_mutex_unlock(&pool->mu);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&pool->quit)) break;
        if (w->index < pool->nth) pool->fn(pool->arg, w->index, pool->nth);
        atomic_fetch_add_explicit(&pool->n_done, 1, memory_order_release);
    }
    return NULL;
}

co_pool *co_pool_create(int n_threads, int spin_iters) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > CO_MAX_THREADS) n_threads = CO_MAX_THREADS;
    co_pool *pool = aligned_alloc(64, (sizeof(co_pool) + 63) & ~(size_t)63);
    if (!pool) return NULL;
    memset(pool, 0, sizeof *pool);
    pool->n = n_threads;
    pool->spin_iters = spin_iters > 0 ? spin_iters : 1;
    atomic_init(&pool->gen, 0);
    atomic_init(&pool->n_done, 0);
    atomic_init(&pool->counter, 0);
    atomic_init(&pool->bar_count, 0);
    atomic_init(&pool->bar_gen, 0);
    atomic_init(&pool->n_sleeping, 0);
    atomic_init(&pool->quit, 0);
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof(co_worker));
        if (!pool->workers) {
            pool->n = 1;
            return pool;
        }
        for (int i = 1; i < n_threads; i++) {
            co_worker *w = &pool->workers[i - 1];
            w->pool = pool;
            w->index = i;
            if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
                /* Run with the threads we got. */
                pool->n = i;
                break;
            }
        }
    }
    return pool;
}

void co_pool_free(co_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->quit, 1);
    atomic_fetch_add(&pool->gen, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n; i++) pthread_join(pool->workers[i - 1].thread, NULL);
    free(pool->workers);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

int co_pool_size(const co_pool *pool) { return pool ? pool->n : 1; }

void co_pool_run(co_pool *pool, co_task_fn fn, void *arg, int nth) {
    if (nth > pool->n) nth = pool->n;
    if (nth <= 1 || pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->nth = nth;
    atomic_store_explicit(&pool->n_done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->bar_count, 0, memory_order_relaxed);
    atomic_fetch_add(&pool->gen, 1); /* seq_cst: ordered before the n_sleeping read below */
    if (atomic_load(&pool->n_sleeping) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    fn(arg, 0, nth);
    int spins = 0;
    while (atomic_load_explicit(&pool->n_done, memory_order_acquire) < pool->n - 1) {
        if (++spins < 4096) {
            co_relax();
        } else {
            sched_yield();
            spins = 0;
        }
    }
}

void co_pool_barrier(co_pool *pool, int nth) {
    if (nth <= 1) return;
    unsigned g = atomic_load_explicit(&pool->bar_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool->bar_count, 1, memory_order_acq_rel) == nth - 1) {
        atomic_store_explicit(&pool->bar_count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&pool->bar_gen, 1, memory_order_release);
        return;
    }
    int spins = 0;
    while (atomic_load_explicit(&pool->bar_gen, memory_order_acquire) == g) {
        if (++spins < 4096) {
            co_relax();
        } else {
            sched_yield();
            spins = 0;
        }
    }
}

int64_t co_pool_next(co_pool *pool) { return atomic_fetch_add_explicit(&pool->counter, 1, memory_order_relaxed); }

void co_pool_reset_counter(co_pool *pool, int64_t value) {
    atomic_store_explicit(&pool->counter, value, memory_order_relaxed);
}

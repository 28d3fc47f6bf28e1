/*
 * threadpool.c - persistent worker threads with cheap synchronisation, robust to preemption.
 *
 * A run publishes (fn, arg, nth) and bumps a generation counter; workers spin on it for a
 * while (pause loops) and only then sleep on a condition variable, so back-to-back ops of a
 * decode step cost a few hundred nanoseconds of hand-over instead of a futex round trip.
 *
 * Work is never assigned to a particular thread: tasks take chunks from a shared counter
 * (co_pool_next) until none are left. A worker joins a run by a compare-and-swap on the run's
 * state word (generation, closed bit, joined count); when the caller (thread 0) has run out of
 * chunks it closes the run, so it only waits for workers that actually joined. On a shared
 * machine where a worker is preempted, the caller does that worker's share instead of waiting
 * for the scheduler to bring it back. Phases inside a run are ordered by a completion counter
 * (co_pool_done / co_pool_wait_done) rather than a barrier, for the same reason.
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

#define STATE_CLOSED (1ull << 31)
#define STATE_JOINED_MASK (STATE_CLOSED - 1)

typedef struct co_worker {
    co_pool *pool;
    int index;
    pthread_t thread;
} co_worker;

struct co_pool {
    int n;
    int spin_iters;
    co_worker *workers; /* n - 1 */
    /* current run */
    co_task_fn fn;
    void *arg;
    int nth;
    _Alignas(64) atomic_uint gen;
    _Alignas(64) atomic_ullong state; /* gen << 32 | closed << 31 | joined */
    _Alignas(64) atomic_int n_finished;
    _Alignas(64) atomic_llong counter;
    _Alignas(64) atomic_llong done;
    _Alignas(64) atomic_int n_sleeping;
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void wait_spin(int *spins) {
    if (++*spins < 2048) {
        co_relax();
    } else {
        sched_yield();
        *spins = 0;
    }
}

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
        /* Join run g unless it is closed (or already replaced by a newer one). */
        unsigned long long s = atomic_load_explicit(&pool->state, memory_order_acquire);
        int joined = 0;
        while ((unsigned)(s >> 32) == g && !(s & STATE_CLOSED) && w->index < pool->nth) {
            if (atomic_compare_exchange_weak_explicit(&pool->state, &s, s + 1, memory_order_acq_rel,
                                                      memory_order_acquire)) {
                joined = 1;
                break;
            }
        }
        if (!joined) continue;
        pool->fn(pool->arg, w->index, pool->nth);
        atomic_fetch_add_explicit(&pool->n_finished, 1, memory_order_release);
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
    atomic_init(&pool->state, 0);
    atomic_init(&pool->n_finished, 0);
    atomic_init(&pool->counter, 0);
    atomic_init(&pool->done, 0);
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
                pool->n = i; /* run with the threads we got */
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
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    if (nth > pool->n) nth = pool->n;
    if (nth <= 1 || pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->nth = nth;
    unsigned g = atomic_load_explicit(&pool->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&pool->n_finished, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->state, (unsigned long long)g << 32, memory_order_release);
    atomic_store(&pool->gen, g); /* seq_cst: ordered before the n_sleeping read below */
    if (atomic_load(&pool->n_sleeping) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    fn(arg, 0, nth);
    /* Close the run: workers that have not joined yet never will. */
    unsigned long long s = atomic_fetch_or_explicit(&pool->state, STATE_CLOSED, memory_order_acq_rel);
    int joined = (int)(s & STATE_JOINED_MASK);
    int spins = 0;
    while (atomic_load_explicit(&pool->n_finished, memory_order_acquire) < joined) wait_spin(&spins);
}

int64_t co_pool_next(co_pool *pool) { return atomic_fetch_add_explicit(&pool->counter, 1, memory_order_relaxed); }

void co_pool_reset_counter(co_pool *pool, int64_t value) {
    atomic_store_explicit(&pool->counter, value, memory_order_relaxed);
}

void co_pool_done(co_pool *pool, int64_t k) { atomic_fetch_add_explicit(&pool->done, k, memory_order_release); }

void co_pool_wait_done(co_pool *pool, int64_t target) {
    int spins = 0;
    while (atomic_load_explicit(&pool->done, memory_order_acquire) < target) wait_spin(&spins);
}

/* ---- parallel for over dynamic chunks ---- */

typedef struct pfor_job {
    co_pool *pool;
    co_range_fn fn;
    void *arg;
    int64_t n, chunk;
} pfor_job;

static void pfor_task(void *p, int ith, int nth) {
    (void)nth;
    pfor_job *j = p;
    for (;;) {
        int64_t c = co_pool_next(j->pool);
        int64_t i0 = c * j->chunk;
        if (i0 >= j->n) break;
        int64_t i1 = i0 + j->chunk < j->n ? i0 + j->chunk : j->n;
        j->fn(j->arg, i0, i1, ith);
    }
}

void co_parallel_for(co_pool *pool, int nth, int64_t n, int64_t chunk, co_range_fn fn, void *arg) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (nth <= 1 || n <= chunk) { /* inline, still chunk by chunk (callers may rely on it) */
        for (int64_t i0 = 0; i0 < n; i0 += chunk) fn(arg, i0, i0 + chunk < n ? i0 + chunk : n, 0);
        return;
    }
    pfor_job j = {pool, fn, arg, n, chunk};
    co_pool_reset_counter(pool, 0);
    co_pool_run(pool, pfor_task, &j, nth);
}

/*
 * cpu_pool.c - a simple pthread pool: the calling thread and n-1 workers run one job at a time.
 */
#include "cpu_internal.h"

#include <stdlib.h>

typedef struct worker_arg {
    cpu_pool *pool;
    int ith;
} worker_arg;

static void *worker_main(void *arg) {
    worker_arg *wa = (worker_arg *)arg;
    cpu_pool *pool = wa->pool;
    int ith = wa->ith;
    free(wa);
    uint64_t seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stop && pool->generation == seen)
            pthread_cond_wait(&pool->start_cv, &pool->lock);
        if (pool->stop) break;
        seen = pool->generation;
        cpu_job_fn fn = pool->fn;
        void *ctx = pool->ctx;
        int active = pool->active;
        pthread_mutex_unlock(&pool->lock);
        if (ith < active) fn(ctx, ith, active);
        pthread_mutex_lock(&pool->lock);
        if (--pool->pending == 0) pthread_cond_signal(&pool->done_cv);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int cpu_pool_init(cpu_pool *pool, int n_threads) {
    pool->n_threads = 1;
    pool->threads = NULL;
    pool->generation = 0;
    pool->pending = 0;
    pool->active = 1;
    pool->stop = 0;
    pool->fn = NULL;
    pool->ctx = NULL;
    if (pthread_mutex_init(&pool->lock, NULL) != 0) return -1;
    if (pthread_cond_init(&pool->start_cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->lock);
        return -1;
    }
    if (pthread_cond_init(&pool->done_cv, NULL) != 0) {
        pthread_cond_destroy(&pool->start_cv);
        pthread_mutex_destroy(&pool->lock);
        return -1;
    }
    if (n_threads <= 1) return 0;
    pool->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t));
    if (!pool->threads) {
        cpu_pool_destroy(pool);
        return -1;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            cpu_pool_destroy(pool);
            return -1;
        }
        wa->pool = pool;
        wa->ith = i;
        if (pthread_create(&pool->threads[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            cpu_pool_destroy(pool);
            return -1;
        }
        pool->n_threads = i + 1;
    }
    return 0;
}

void cpu_pool_destroy(cpu_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->start_cv);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->n_threads; i++)
        pthread_join(pool->threads[i - 1], NULL);
    free(pool->threads);
    pool->threads = NULL;
    pool->n_threads = 1;
    pthread_cond_destroy(&pool->done_cv);
    pthread_cond_destroy(&pool->start_cv);
    pthread_mutex_destroy(&pool->lock);
}

void cpu_pool_run(cpu_pool *pool, cpu_job_fn fn, void *ctx, int nth) {
    if (nth > pool->n_threads) nth = pool->n_threads;
    if (nth <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->active = nth;
    pool->pending = pool->n_threads - 1;
    pool->generation++;
    pthread_cond_broadcast(&pool->start_cv);
    pthread_mutex_unlock(&pool->lock);
    fn(ctx, 0, nth);
    pthread_mutex_lock(&pool->lock);
    while (pool->pending > 0)
        pthread_cond_wait(&pool->done_cv, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

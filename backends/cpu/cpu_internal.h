/*
 * cpu_internal.h - shared declarations of the CPU reference backend (not installed).
 */
#ifndef LOOM_CPU_INTERNAL_H
#define LOOM_CPU_INTERNAL_H

#include "loom_backend_util.h"
#include "loom_plugin.h"

#include <pthread.h>

#if defined(__GNUC__)
#define LOOM_CPU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOOM_CPU_PRINTF(a, b)
#endif

/* ---- thread pool (cpu_pool.c) ---- */

/* A job runs as fn(ctx, ith, nth) on nth threads at once (ith = 0 is the caller). */
typedef void (*cpu_job_fn)(void *ctx, int ith, int nth);

typedef struct cpu_pool {
    int n_threads; /* including the calling thread */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t start_cv;
    pthread_cond_t done_cv;
    uint64_t generation;
    int pending;
    int active; /* threads taking part in the current job */
    int stop;
    cpu_job_fn fn;
    void *ctx;
} cpu_pool;

/* Start n_threads - 1 workers. Returns 0 on success. */
int cpu_pool_init(cpu_pool *pool, int n_threads);
void cpu_pool_destroy(cpu_pool *pool);
/* Run fn on min(nth, n_threads) threads and wait for all of them. */
void cpu_pool_run(cpu_pool *pool, cpu_job_fn fn, void *ctx, int nth);

/* ---- device ---- */

typedef struct cpu_device {
    cpu_pool pool;
    int n_threads;
    float **scratch;      /* per thread */
    size_t *scratch_size; /* floats per thread */
    char last_error[512];
} cpu_device;

/* One op invocation, shared by the threads that run it. */
typedef struct cpu_task {
    cpu_device *dev;
    const loom_op_params *p;
    const loom_tensor_view *dst;
    const loom_tensor_view *const *src;
    uint32_t n_src;
} cpu_task;

/* Per-thread scratch of at least `floats` floats, grown before a job starts. */
static inline float *cpu_scratch(const cpu_task *t, int ith) { return t->dev->scratch[ith]; }

/* Kernels (cpu_ops.c, cpu_matmul.c). Each handles its share ith of nth. */
void cpu_get_rows(void *task, int ith, int nth);
void cpu_rms_norm(void *task, int ith, int nth);
void cpu_layer_norm(void *task, int ith, int nth);
void cpu_add_mul(void *task, int ith, int nth);
void cpu_unary(void *task, int ith, int nth); /* SCALE, SILU, GELU */
void cpu_swiglu(void *task, int ith, int nth);
void cpu_matmul(void *task, int ith, int nth);
void cpu_rope(void *task, int ith, int nth);
void cpu_softmax(void *task, int ith, int nth);
void cpu_grouped_softmax(void *task, int ith, int nth);
void cpu_attention(void *task, int ith, int nth);
void cpu_copy(void *task, int ith, int nth);
void cpu_weighted_sum(void *task, int ith, int nth);
void cpu_hadamard(void *task, int ith, int nth);

/* Floats of per-thread scratch the kernel of this op needs. */
size_t cpu_scratch_floats(const loom_op_params *p, const loom_tensor_view *dst, const loom_tensor_view *const *src,
                          uint32_t n_src);

/* Rows in the matmul weight tile (weight rows dequantized together). */
#define CPU_MATMUL_TILE 8

/* Deterministic dot product: 8 lanes, lane l sums elements i = l (mod 8) in order, then
 * ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
float cpu_dot(const float *a, const float *b, int64_t n);

/* Split `total` items into nth nearly equal contiguous ranges; range of thread ith. */
static inline void cpu_range(int64_t total, int ith, int nth, int64_t *begin, int64_t *end) {
    *begin = total * ith / nth;
    *end = total * (ith + 1) / nth;
}

/* Address of row (i1, i2, i3) of a host view. */
static inline char *cpu_row(const loom_tensor_view *v, int64_t i1, int64_t i2, int64_t i3) {
    return (char *)v->data + i1 * v->nb[1] + i2 * v->nb[2] + i3 * v->nb[3];
}

#endif /* LOOM_CPU_INTERNAL_H */

/*
 * norm.c - RMS norm and layer norm per row, with optional gain (and bias). Reductions use 16
 * independent partial sums so they vectorize without reassociation flags.
 */
#include "cpu_opt.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CO_CLONES
#endif

CO_CLONES static float sum_sq(const float *x, int64_t n) {
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] += x[i + j] * x[i + j];
    float s = 0;
    for (; i < n; i++) s += x[i] * x[i];
    for (int j = 0; j < 16; j++) s += lanes[j];
    return s;
}

CO_CLONES static float sum_v(const float *x, int64_t n) {
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] += x[i + j];
    float s = 0;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < 16; j++) s += lanes[j];
    return s;
}

CO_CLONES static float sum_dev_sq(const float *x, float m, int64_t n) {
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] += (x[i + j] - m) * (x[i + j] - m);
    float s = 0;
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    for (int j = 0; j < 16; j++) s += lanes[j];
    return s;
}

CO_CLONES static void scale_gain(float *d, const float *x, float s, const float *g, int64_t n) {
    if (g)
        for (int64_t i = 0; i < n; i++) d[i] = x[i] * s * g[i];
    else
        for (int64_t i = 0; i < n; i++) d[i] = x[i] * s;
}

CO_CLONES static void norm_affine(float *d, const float *x, float m, float s, const float *g, const float *b,
                                  int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - m) * s;
        if (g) v *= g[i];
        if (b) v += b[i];
        d[i] = v;
    }
}

static int f32_rows(co_cview v) { return v && v->type == LOOM_TYPE_F32 && v->nb[0] == 4 && v->data; }

static int vec_ok(co_cview v, int64_t n) {
    /* A gain or bias: one row of n values (broadcast over all rows). */
    return !v || (f32_rows(v) && v->ne[0] == n && co_nrows(v) == 1);
}

int co_supports_norm(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    if (n < 1 || !f32_rows(src[0]) || !f32_rows(dst)) return 0;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (dst->ne[d] != src[0]->ne[d]) return 0;
    int64_t d0 = src[0]->ne[0];
    if (!vec_ok(n > 1 ? src[1] : NULL, d0)) return 0;
    if (p->op == LOOM_OP_LAYER_NORM && !vec_ok(n > 2 ? src[2] : NULL, d0)) return 0;
    return 1;
}

typedef struct norm_job {
    int layer;
    float eps;
    co_cview dst, x, g, b;
} norm_job;

static void norm_task(void *arg, int64_t r0, int64_t r1, int ith) {
    (void)ith;
    norm_job *j = arg;
    int64_t n = j->dst->ne[0];
    const float *g = j->g ? (const float *)j->g->data : NULL;
    const float *b = j->b ? (const float *)j->b->data : NULL;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1 = r % j->dst->ne[1], i2 = (r / j->dst->ne[1]) % j->dst->ne[2], i3 = r / (j->dst->ne[1] * j->dst->ne[2]);
        const float *x = co_row_f32(j->x, i1, i2, i3);
        float *d = co_row_f32(j->dst, i1, i2, i3);
        if (!j->layer) {
            float ms = sum_sq(x, n) / (float)n;
            scale_gain(d, x, 1.0f / sqrtf(ms + j->eps), g, n);
        } else {
            float m = sum_v(x, n) / (float)n;
            float var = sum_dev_sq(x, m, n) / (float)n;
            norm_affine(d, x, m, 1.0f / sqrtf(var + j->eps), g, b, n);
        }
    }
}

static loom_status run_norm(co_device *dev, norm_job *j) {
    int64_t rows = co_nrows(j->dst);
    int nth = co_nelem(j->dst) < 32768 ? 1 : dev->n_threads;
    if (rows < nth) nth = (int)rows;
    if (nth < 1) nth = 1;
    co_parallel_for(dev->pool, nth, rows, co_chunk(rows, nth), norm_task, j);
    return LOOM_OK;
}

loom_status co_op_rms_norm(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview g) {
    norm_job j = {0, p->f[0], dst, x, g, NULL};
    return run_norm(dev, &j);
}

loom_status co_op_layer_norm(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview g,
                             co_cview b) {
    norm_job j = {1, p->f[0], dst, x, g, b};
    return run_norm(dev, &j);
}

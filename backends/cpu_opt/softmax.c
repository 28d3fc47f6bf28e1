/*
 * softmax.c - row softmax of x * scale (+ mask), with an optional causal limit: row r (ne[1]
 * index) sees columns c <= i[1] + r; hidden columns (and -inf mask entries)
 * get probability 0, a row with nothing visible is all zeros. A scale of 0 means 1.
 */
#include "cpu_opt.h"

#include <math.h>

int co_supports_softmax(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    (void)p;
    if (n < 1 || !src[0]) return 0;
    co_cview x = src[0], m = n > 1 ? src[1] : NULL;
    if (x->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || x->nb[0] != 4 || dst->nb[0] != 4) return 0;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (dst->ne[d] != x->ne[d]) return 0;
    if (m) {
        if (m->type != LOOM_TYPE_F32 || m->nb[0] != 4 || m->ne[0] != x->ne[0]) return 0;
        for (int d = 1; d < LOOM_MAX_DIMS; d++)
            if (m->ne[d] <= 0 || x->ne[d] % m->ne[d]) return 0;
    }
    return 1;
}

typedef struct sm_job {
    co_cview dst, x, mask;
    float scale;
    int causal;
    int64_t past;
} sm_job;

static void sm_task(void *arg, int64_t r0, int64_t r1, int ith) {
    (void)ith;
    sm_job *j = arg;
    co_cview x = j->x, dst = j->dst, mk = j->mask;
    int64_t n = x->ne[0];
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1 = r % x->ne[1], i2 = (r / x->ne[1]) % x->ne[2], i3 = r / (x->ne[1] * x->ne[2]);
        const float *xs = co_row_f32(x, i1, i2, i3);
        float *d = co_row_f32(dst, i1, i2, i3);
        const float *m = mk ? co_row_f32(mk, i1 % mk->ne[1], i2 % mk->ne[2], i3 % mk->ne[3]) : NULL;
        int64_t lim = n;
        if (j->causal) {
            lim = j->past + i1 + 1;
            if (lim > n) lim = n;
            if (lim < 0) lim = 0;
        }
        float mx = -INFINITY;
        for (int64_t c = 0; c < lim; c++) {
            float v = xs[c] * j->scale + (m ? m[c] : 0.0f);
            d[c] = v;
            if (v > mx) mx = v;
        }
        if (lim == 0 || mx == -INFINITY) {
            /* Nothing visible: all zeros (no NaN). */
            for (int64_t c = 0; c < n; c++) d[c] = 0.0f;
            continue;
        }
        float s = co_exp_sum(d, d, lim, mx);
        float inv = 1.0f / s;
        for (int64_t c = 0; c < lim; c++) d[c] *= inv;
        for (int64_t c = lim; c < n; c++) d[c] = 0.0f;
    }
}

loom_status co_op_softmax(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview mask) {
    sm_job j = {dst, x, mask, p->f[0] != 0.0f ? p->f[0] : 1.0f, p->i[0] == 1, p->i[1]};
    int64_t rows = co_nrows(x);
    int nth = co_nelem(x) < 16384 ? 1 : dev->n_threads;
    if (rows < nth) nth = (int)rows;
    if (nth < 1) nth = 1;
    co_parallel_for(dev->pool, nth, rows, co_chunk(rows, nth), sm_task, &j);
    return LOOM_OK;
}

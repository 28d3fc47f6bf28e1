/*
 * grouped_softmax.c - the grouped softmax of landmark attention (LOOM_OP_GROUPED_SOFTMAX).
 *
 * Per row of scores x (times the scale; -inf and, when causal, columns past i[1] + r hidden)
 * with landmark flags (I32, broadcast over rows): a landmark closes its block; c is the block of
 * the last visible column. One joint softmax over the visible regular columns of block c and the
 * visible landmarks of earlier blocks; a regular column of an earlier block b gets (joint weight
 * of landmark b) x (its softmax within block b); landmarks and hidden columns get 0, a row with
 * nothing visible is all zeros. The exponentials run on the vector exp (co_exp_sum), one block
 * at a time; rows are spread over the thread pool. dst may be x (the row is staged first).
 */
#include "cpu_opt.h"

#include <math.h>

int co_supports_grouped_softmax(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    (void)p;
    if (n != 2 || !src[0] || !src[1]) return 0;
    co_cview x = src[0], f = src[1];
    if (x->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || x->nb[0] != 4 || dst->nb[0] != 4) return 0;
    if (f->type != LOOM_TYPE_I32 || f->nb[0] != 4 || f->ne[0] != x->ne[0]) return 0;
    for (int d = 0; d < LOOM_MAX_DIMS; d++) {
        if (dst->ne[d] != x->ne[d]) return 0;
        if (d > 0 && (f->ne[d] <= 0 || x->ne[d] % f->ne[d])) return 0;
    }
    return 1;
}

typedef struct gs_job {
    co_device *dev;
    co_cview dst, x, flags;
    float scale;
    int causal;
    int64_t past;
    size_t local_bytes;
} gs_job;

static void zero_row(float *d, int64_t n) {
    for (int64_t c = 0; c < n; c++)
        d[c] = 0.0f;
}

static void gs_task(void *arg, int64_t r0, int64_t r1, int ith) {
    gs_job *j = arg;
    co_cview x = j->x, dst = j->dst, fl = j->flags;
    const int64_t n = x->ne[0];
    float *v = co_scratch_get(&j->dev->local[ith], j->local_bytes); /* allocated before the run */
    float *w = v + n;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t i1 = r % x->ne[1], i2 = (r / x->ne[1]) % x->ne[2], i3 = r / (x->ne[1] * x->ne[2]);
        const float *xs = co_row_f32(x, i1, i2, i3);
        const int32_t *lm =
            (const int32_t *)(const void *)co_row_f32(fl, i1 % fl->ne[1], i2 % fl->ne[2], i3 % fl->ne[3]);
        float *d = co_row_f32(dst, i1, i2, i3);
        int64_t lim = n;
        if (j->causal) {
            lim = j->past + i1 + 1;
            if (lim > n) lim = n;
            if (lim < 0) lim = 0;
        }
        /* scaled scores (hidden = -inf) and the current block */
        int64_t cur = -1, blk = 0;
        for (int64_t c = 0; c < n; c++) {
            float s = c < lim ? xs[c] * j->scale : -INFINITY;
            if (!(s > -INFINITY)) s = -INFINITY;
            v[c] = s;
            if (s > -INFINITY) cur = blk;
            blk += lm[c] != 0;
        }
        if (cur < 0) {
            zero_row(d, n);
            continue;
        }
        /* joint group scores in w (-inf outside it), then their exponentials */
        float jmax = -INFINITY;
        blk = 0;
        for (int64_t c = 0; c < n; c++) {
            const int joint = lm[c] ? blk < cur : blk == cur;
            w[c] = joint ? v[c] : -INFINITY;
            if (w[c] > jmax) jmax = w[c];
            blk += lm[c] != 0;
        }
        if (jmax == -INFINITY) { /* only the current block's own landmark is visible */
            zero_row(d, n);
            continue;
        }
        const float jinv = 1.0f / co_exp_sum(w, w, n, jmax);
        /* earlier blocks: softmax within the block times its landmark's joint weight */
        int64_t c = 0;
        for (blk = 0; blk < cur; blk++) {
            int64_t end = c; /* the block's landmark (exists: a later block is visible) */
            while (!lm[end])
                end++;
            float bmax = -INFINITY;
            for (int64_t i = c; i < end; i++)
                if (v[i] > bmax) bmax = v[i];
            const float g = w[end] * jinv;
            if (bmax == -INFINITY || g == 0.0f) {
                zero_row(d + c, end + 1 - c);
            } else {
                const float s = g / co_exp_sum(v + c, d + c, end - c, bmax);
                for (int64_t i = c; i < end; i++)
                    d[i] *= s;
                d[end] = 0.0f;
            }
            c = end + 1;
        }
        /* the current block's regular columns; its landmark and later columns get 0 */
        for (; c < n; c++)
            d[c] = lm[c] ? 0.0f : w[c] * jinv;
    }
}

loom_status co_op_grouped_softmax(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview flags) {
    const int64_t rows = co_nrows(x);
    gs_job j = {dev,
                dst,
                x,
                flags,
                p->f[0] != 0.0f ? p->f[0] : 1.0f,
                p->i[0] == 1,
                p->i[1],
                2 * (size_t)x->ne[0] * sizeof(float)};
    int nth = co_nelem(x) < 16384 ? 1 : dev->n_threads;
    if (rows < nth) nth = (int)rows;
    if (nth < 1) nth = 1;
    for (int i = 0; i < nth; i++)
        if (!co_scratch_get(&dev->local[i], j.local_bytes))
            return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "grouped_softmax: cannot allocate %zu bytes", j.local_bytes);
    co_parallel_for(dev->pool, nth, rows, co_chunk(rows, nth), gs_task, &j);
    return LOOM_OK;
}

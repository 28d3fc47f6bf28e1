/*
 * hadamard.c - normalised fast Walsh-Hadamard transform along ne[0] in groups of i[0] values
 * (a power of two; 0 = the whole row): y = H x / sqrt(group).
 */
#include "cpu_opt.h"

#include <math.h>

static int pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

int co_supports_hadamard(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    if (n < 1 || !src[0]) return 0;
    co_cview x = src[0];
    if (x->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || x->nb[0] != 4 || dst->nb[0] != 4) return 0;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (dst->ne[d] != x->ne[d]) return 0;
    int64_t g = p->i[0] ? p->i[0] : x->ne[0];
    return pow2(g) && x->ne[0] % g == 0;
}

typedef struct had_job {
    co_cview dst, x;
    int64_t g;
} had_job;

static void had_task(void *arg, int64_t r0, int64_t r1, int ith) {
    (void)ith;
    had_job *j = arg;
    int64_t n = j->x->ne[0], g = j->g;
    float norm = 1.0f / sqrtf((float)g);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1 = r % j->x->ne[1], i2 = (r / j->x->ne[1]) % j->x->ne[2], i3 = r / (j->x->ne[1] * j->x->ne[2]);
        const float *xs = co_row_f32(j->x, i1, i2, i3);
        float *d = co_row_f32(j->dst, i1, i2, i3);
        if (d != xs) memmove(d, xs, (size_t)n * sizeof(float));
        for (int64_t b = 0; b < n; b += g) {
            float *v = d + b;
            for (int64_t h = 1; h < g; h *= 2)
                for (int64_t i = 0; i < g; i += 2 * h)
                    for (int64_t k = i; k < i + h; k++) {
                        float a = v[k], c = v[k + h];
                        v[k] = a + c;
                        v[k + h] = a - c;
                    }
            for (int64_t i = 0; i < g; i++) v[i] *= norm;
        }
    }
}

loom_status co_op_hadamard(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x) {
    had_job j = {dst, x, p->i[0] ? p->i[0] : x->ne[0]};
    int64_t rows = co_nrows(x);
    int nth = co_nelem(x) < 32768 ? 1 : dev->n_threads;
    if (rows < nth) nth = (int)rows;
    if (nth < 1) nth = 1;
    co_parallel_for(dev->pool, nth, rows, co_chunk(rows, nth), had_task, &j);
    return LOOM_OK;
}

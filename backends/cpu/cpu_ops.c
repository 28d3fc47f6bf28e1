/*
 * cpu_ops.c - reference kernels of the row-wise ops: norms, elementwise ops, RoPE, softmax,
 * copies, weighted sums and the Walsh-Hadamard transform. Written for clarity; see docs/ops.md
 * for the exact semantics and the precision choices.
 *
 * Every kernel splits the rows of its destination into contiguous ranges, one per thread, so
 * each output value is computed the same way whatever the thread count.
 */
#include "cpu_internal.h"

#include <math.h>
#include <string.h>

/* Decompose a flat row index into (i1, i2, i3) for shape ne. */
static void row_index(const int64_t *ne, int64_t r, int64_t *i1, int64_t *i2, int64_t *i3) {
    *i1 = r % ne[1];
    r /= ne[1];
    *i2 = r % ne[2];
    *i3 = r / ne[2];
}

static int64_t n_rows(const loom_tensor_view *v) { return v->ne[1] * v->ne[2] * v->ne[3]; }

/*
 * Row (i1, i2, i3) of a broadcast operand b (f32, f16 or bf16) as floats: b's own row
 * (i1 % ne1, i2 % ne2, i3 % ne3), converted into `tmp` unless it is already packed f32.
 */
static const float *bcast_row(const loom_tensor_view *b, int64_t i1, int64_t i2, int64_t i3, float *tmp) {
    const char *row = cpu_row(b, i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]);
    if (b->type == LOOM_TYPE_F32) return (const float *)(const void *)row;
    lbu_to_float_row(b->type, row, tmp, b->ne[0]);
    return tmp;
}

/* ---- norms ---- */

void cpu_rms_norm(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *x = t->src[0], *g = t->n_src > 1 ? t->src[1] : NULL, *y = t->dst;
    const int64_t n = x->ne[0];
    const float eps = t->p->f[0];
    float *tmp = cpu_scratch(t, ith);
    int64_t r0, r1;
    cpu_range(n_rows(x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(x->ne, r, &i1, &i2, &i3);
        const float *xr = (const float *)(const void *)cpu_row(x, i1, i2, i3);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            sum += (double)xr[i] * (double)xr[i];
        const float scale = (float)(1.0 / sqrt(sum / (double)n + (double)eps));
        const float *gr = g ? bcast_row(g, i1, i2, i3, tmp) : NULL;
        for (int64_t i = 0; i < n; i++)
            yr[i] = gr ? xr[i] * scale * gr[i] : xr[i] * scale;
    }
}

void cpu_layer_norm(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *x = t->src[0], *y = t->dst;
    const loom_tensor_view *g = t->n_src > 1 ? t->src[1] : NULL, *b = t->n_src > 2 ? t->src[2] : NULL;
    const int64_t n = x->ne[0];
    const float eps = t->p->f[0];
    float *tmp_g = cpu_scratch(t, ith);
    float *tmp_b = tmp_g + n;
    int64_t r0, r1;
    cpu_range(n_rows(x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(x->ne, r, &i1, &i2, &i3);
        const float *xr = (const float *)(const void *)cpu_row(x, i1, i2, i3);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            sum += (double)xr[i];
        const double mean = sum / (double)n;
        double var = 0.0;
        for (int64_t i = 0; i < n; i++)
            var += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        var /= (double)n;
        const float scale = (float)(1.0 / sqrt(var + (double)eps));
        const float meanf = (float)mean;
        const float *gr = g ? bcast_row(g, i1, i2, i3, tmp_g) : NULL;
        const float *br = b ? bcast_row(b, i1, i2, i3, tmp_b) : NULL;
        for (int64_t i = 0; i < n; i++) {
            float v = (xr[i] - meanf) * scale;
            if (gr) v *= gr[i];
            if (br) v += br[i];
            yr[i] = v;
        }
    }
}

/* ---- elementwise ---- */

void cpu_add_mul(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *a = t->src[0], *b = t->src[1], *y = t->dst;
    const int64_t n = a->ne[0];
    const int is_add = t->p->op == LOOM_OP_ADD;
    float *tmp = cpu_scratch(t, ith);
    int64_t r0, r1;
    cpu_range(n_rows(a), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(a->ne, r, &i1, &i2, &i3);
        const float *ar = (const float *)(const void *)cpu_row(a, i1, i2, i3);
        const float *br = bcast_row(b, i1, i2, i3, tmp);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        if (is_add) {
            for (int64_t i = 0; i < n; i++)
                yr[i] = ar[i] + br[i];
        } else {
            for (int64_t i = 0; i < n; i++)
                yr[i] = ar[i] * br[i];
        }
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

void cpu_unary(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *a = t->src[0], *y = t->dst;
    const int64_t n = a->ne[0];
    const uint32_t op = t->p->op;
    const float s = t->p->f[0];
    int64_t r0, r1;
    cpu_range(n_rows(a), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(a->ne, r, &i1, &i2, &i3);
        const float *ar = (const float *)(const void *)cpu_row(a, i1, i2, i3);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        if (op == LOOM_OP_SCALE) {
            for (int64_t i = 0; i < n; i++)
                yr[i] = ar[i] * s;
        } else if (op == LOOM_OP_SILU) {
            for (int64_t i = 0; i < n; i++)
                yr[i] = silu(ar[i]);
        } else {
            for (int64_t i = 0; i < n; i++)
                yr[i] = 0.5f * ar[i] * (1.0f + erff(ar[i] * 0.70710678118654752f));
        }
    }
}

void cpu_swiglu(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *a = t->src[0], *b = t->src[1], *y = t->dst;
    const int64_t n = a->ne[0];
    int64_t r0, r1;
    cpu_range(n_rows(a), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(a->ne, r, &i1, &i2, &i3);
        const float *ar = (const float *)(const void *)cpu_row(a, i1, i2, i3);
        const float *br = (const float *)(const void *)cpu_row(b, i1, i2, i3);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        for (int64_t i = 0; i < n; i++)
            yr[i] = silu(ar[i]) * br[i];
    }
}

/* ---- RoPE ---- */

void cpu_rope(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *x = t->src[0], *pos = t->src[1], *y = t->dst;
    const int64_t hd = x->ne[0];
    const int64_t n_rot = t->p->i[1] ? t->p->i[1] : hd;
    const int64_t half = n_rot / 2;
    const int mode = t->p->i[0];
    const double base = (double)t->p->f[0];
    const double pscale = t->p->f[1] != 0.0f ? (double)t->p->f[1] : 1.0;
    float *cs = cpu_scratch(t, ith); /* cos[half], sin[half] of the current token */
    int64_t cached_tok = -1;
    int64_t r0, r1;
    cpu_range(n_rows(x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(x->ne, r, &i1, &i2, &i3);
        if (i2 != cached_tok) {
            int32_t p;
            memcpy(&p, (const char *)pos->data + i2 * pos->nb[0], sizeof p);
            const double pp = (double)p * pscale;
            for (int64_t i = 0; i < half; i++) {
                const double theta = pp * pow(base, -2.0 * (double)i / (double)n_rot);
                cs[i] = (float)cos(theta);
                cs[half + i] = (float)sin(theta);
            }
            cached_tok = i2;
        }
        const float *xr = (const float *)(const void *)cpu_row(x, i1, i2, i3);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        for (int64_t i = 0; i < half; i++) {
            const int64_t j0 = mode == 0 ? 2 * i : i;
            const int64_t j1 = mode == 0 ? 2 * i + 1 : i + half;
            const float c = cs[i], s = cs[half + i];
            const float x0 = xr[j0], x1 = xr[j1];
            yr[j0] = x0 * c - x1 * s;
            yr[j1] = x0 * s + x1 * c;
        }
        if (yr != xr)
            for (int64_t i = n_rot; i < hd; i++)
                yr[i] = xr[i];
    }
}

/* ---- softmax ---- */

/* Columns visible to row i1 under the causal rule of SOFTMAX / GROUPED_SOFTMAX: 0 .. first+i1. */
static int64_t causal_limit(int64_t last, int64_t n) { return last < 0 ? 0 : (last + 1 < n ? last + 1 : n); }

void cpu_softmax(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *x = t->src[0], *m = t->n_src > 1 ? t->src[1] : NULL, *y = t->dst;
    const int64_t n = x->ne[0];
    const float scale = t->p->f[0] != 0.0f ? t->p->f[0] : 1.0f;
    const int causal = t->p->i[0] == 1;
    const int64_t first = t->p->i[1];
    float *tmp = cpu_scratch(t, ith);
    int64_t r0, r1;
    cpu_range(n_rows(x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(x->ne, r, &i1, &i2, &i3);
        const float *xr = (const float *)(const void *)cpu_row(x, i1, i2, i3);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        const float *mr = m ? bcast_row(m, i1, i2, i3, tmp) : NULL;
        /* columns >= limit are masked by causality */
        const int64_t limit = causal ? causal_limit(first + i1, n) : n;
        float mx = -INFINITY;
        for (int64_t i = 0; i < limit; i++) {
            float v = xr[i] * scale + (mr ? mr[i] : 0.0f);
            yr[i] = v;
            if (v > mx) mx = v;
        }
        if (mx == -INFINITY) { /* every column masked */
            for (int64_t i = 0; i < n; i++)
                yr[i] = 0.0f;
            continue;
        }
        double sum = 0.0;
        for (int64_t i = 0; i < limit; i++) {
            float e = expf(yr[i] - mx);
            yr[i] = e;
            sum += (double)e;
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < limit; i++)
            yr[i] *= inv;
        for (int64_t i = limit; i < n; i++)
            yr[i] = 0.0f;
    }
}

/* ---- grouped softmax (landmark attention) ---- */

/*
 * Per row: v = x * scale over the visible columns (not -inf, and c <= i[1] + r when causal),
 * -inf elsewhere, kept in scratch so that dst may be x. A landmark (flag != 0) closes its
 * block; c is the block of the last visible column. One joint softmax over the visible regular
 * columns of block c and the visible landmarks of earlier blocks; a regular column of an
 * earlier block b gets (joint weight of landmark b) x (its softmax within block b).
 */
void cpu_grouped_softmax(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *x = t->src[0], *f = t->src[1], *y = t->dst;
    const int64_t n = x->ne[0];
    const float scale = t->p->f[0] != 0.0f ? t->p->f[0] : 1.0f;
    const int causal = t->p->i[0] == 1;
    const int64_t first = t->p->i[1];
    float *v = cpu_scratch(t, ith);
    int64_t r0, r1;
    cpu_range(n_rows(x), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(x->ne, r, &i1, &i2, &i3);
        const float *xr = (const float *)(const void *)cpu_row(x, i1, i2, i3);
        const int32_t *lm = (const int32_t *)(const void *)cpu_row(f, i1 % f->ne[1], i2 % f->ne[2], i3 % f->ne[3]);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        const int64_t limit = causal ? causal_limit(first + i1, n) : n;
        /* scaled scores and the current block (that of the last visible column) */
        int64_t cur = -1, blk = 0;
        for (int64_t j = 0; j < n; j++) {
            v[j] = j < limit ? xr[j] * scale : -INFINITY;
            if (!(v[j] > -INFINITY)) v[j] = -INFINITY; /* NaN counts as hidden */
            if (v[j] > -INFINITY) cur = blk;
            if (lm[j]) blk++;
        }
        if (cur < 0) { /* nothing visible */
            for (int64_t j = 0; j < n; j++)
                yr[j] = 0.0f;
            continue;
        }
        /* the joint group: regular columns of block cur, landmarks of earlier blocks */
        float jmax = -INFINITY;
        blk = 0;
        for (int64_t j = 0; j < n; j++) {
            const int joint = lm[j] ? blk < cur : blk == cur;
            if (joint && v[j] > jmax) jmax = v[j];
            if (lm[j]) blk++;
        }
        double jsum = 0.0;
        blk = 0;
        for (int64_t j = 0; j < n; j++) {
            const int joint = lm[j] ? blk < cur : blk == cur;
            if (joint && v[j] > -INFINITY) jsum += (double)expf(v[j] - jmax);
            if (lm[j]) blk++;
        }
        if (!(jsum > 0.0)) { /* only the current block's own landmark is visible */
            for (int64_t j = 0; j < n; j++)
                yr[j] = 0.0f;
            continue;
        }
        const float jinv = (float)(1.0 / jsum);
        /* earlier blocks: softmax within the block times the joint weight of its landmark */
        int64_t j = 0;
        for (blk = 0; blk < cur; blk++) {
            int64_t end = j; /* the block's landmark (exists: a later block is visible) */
            while (!lm[end])
                end++;
            float bmax = -INFINITY;
            for (int64_t i = j; i < end; i++)
                if (v[i] > bmax) bmax = v[i];
            double bsum = 0.0;
            for (int64_t i = j; i < end; i++) {
                yr[i] = v[i] > -INFINITY ? expf(v[i] - bmax) : 0.0f;
                bsum += (double)yr[i];
            }
            const float g = v[end] > -INFINITY ? expf(v[end] - jmax) * jinv : 0.0f;
            const float s = bsum > 0.0 ? (float)((double)g / bsum) : 0.0f;
            for (int64_t i = j; i < end; i++)
                yr[i] *= s;
            yr[end] = 0.0f;
            j = end + 1;
        }
        /* the current block's regular columns; its landmark and everything later get 0 */
        for (; j < n; j++)
            yr[j] = !lm[j] && v[j] > -INFINITY ? expf(v[j] - jmax) * jinv : 0.0f;
    }
}

/* ---- copy ---- */

static float load_elem(uint32_t type, const char *p) {
    switch (type) {
    case LOOM_TYPE_F32: {
        float f;
        memcpy(&f, p, sizeof f);
        return f;
    }
    case LOOM_TYPE_F16: return lbu_fp16_to_fp32(lbu_read_u16((const uint8_t *)p));
    default: return lbu_bf16_to_fp32(lbu_read_u16((const uint8_t *)p));
    }
}

static void store_elem(uint32_t type, char *p, float v) {
    uint16_t h;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(p, &v, sizeof v); return;
    case LOOM_TYPE_F16: h = lbu_fp32_to_fp16(v); break;
    default: h = lbu_fp32_to_bf16(v); break;
    }
    memcpy(p, &h, sizeof h);
}

static void copy_elem(const loom_tensor_view *s, const char *sp, const loom_tensor_view *d, char *dp) {
    if (s->type == LOOM_TYPE_I32 || s->type == d->type)
        memcpy(dp, sp, (size_t)lbu_type_block_bytes(s->type));
    else
        store_elem(d->type, dp, load_elem(s->type, sp));
}

void cpu_copy(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *s = t->src[0], *d = t->dst;
    int64_t r0, r1;
    cpu_range(n_rows(s), ith, nth, &r0, &r1);
    if (s->ne[0] == d->ne[0]) {
        /* row r of the source is row r of the destination */
        for (int64_t r = r0; r < r1; r++) {
            int64_t a1, a2, a3, b1, b2, b3;
            row_index(s->ne, r, &a1, &a2, &a3);
            row_index(d->ne, r, &b1, &b2, &b3);
            const char *sr = cpu_row(s, a1, a2, a3);
            char *dr = cpu_row(d, b1, b2, b3);
            for (int64_t i = 0; i < s->ne[0]; i++)
                copy_elem(s, sr + i * s->nb[0], d, dr + i * d->nb[0]);
        }
        return;
    }
    /* general case: flat element index e = r * ne0 + i, decomposed with the destination's shape */
    for (int64_t r = r0; r < r1; r++) {
        int64_t a1, a2, a3;
        row_index(s->ne, r, &a1, &a2, &a3);
        const char *sr = cpu_row(s, a1, a2, a3);
        for (int64_t i = 0; i < s->ne[0]; i++) {
            int64_t e = r * s->ne[0] + i;
            int64_t b0 = e % d->ne[0];
            int64_t b1, b2, b3;
            row_index(d->ne, e / d->ne[0], &b1, &b2, &b3);
            copy_elem(s, sr + i * s->nb[0], d, cpu_row(d, b1, b2, b3) + b0 * d->nb[0]);
        }
    }
}

/* ---- weighted sum ---- */

void cpu_weighted_sum(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *a = t->src[0], *w = t->src[1], *y = t->dst;
    const int64_t n = a->ne[0], n_states = a->ne[2];
    float *wt = cpu_scratch(t, ith);
    for (int64_t s = 0; s < n_states; s++) { /* weights as a flat list, whatever their shape */
        int64_t w0 = s % w->ne[0], w1, w2, w3;
        row_index(w->ne, s / w->ne[0], &w1, &w2, &w3);
        memcpy(&wt[s], cpu_row(w, w1, w2, w3) + w0 * w->nb[0], sizeof(float));
    }
    int64_t r0, r1;
    cpu_range(a->ne[1], ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        float *yr = (float *)(void *)cpu_row(y, r, 0, 0);
        for (int64_t i = 0; i < n; i++) {
            float acc = 0.0f;
            for (int64_t s = 0; s < n_states; s++)
                acc += wt[s] * ((const float *)(const void *)cpu_row(a, r, s, 0))[i];
            yr[i] = acc;
        }
    }
}

/* ---- Walsh-Hadamard ---- */

void cpu_hadamard(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *a = t->src[0], *y = t->dst;
    const int64_t n = a->ne[0];
    const int64_t g = t->p->i[0] ? t->p->i[0] : n;
    const float norm = (float)(1.0 / sqrt((double)g));
    float *buf = cpu_scratch(t, ith);
    int64_t r0, r1;
    cpu_range(n_rows(a), ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1, i2, i3;
        row_index(a->ne, r, &i1, &i2, &i3);
        const float *ar = (const float *)(const void *)cpu_row(a, i1, i2, i3);
        float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
        for (int64_t g0 = 0; g0 < n; g0 += g) {
            memcpy(buf, ar + g0, (size_t)g * sizeof(float));
            for (int64_t h = 1; h < g; h *= 2) {
                for (int64_t i = 0; i < g; i += 2 * h) {
                    for (int64_t j = i; j < i + h; j++) {
                        const float u = buf[j], v = buf[j + h];
                        buf[j] = u + v;
                        buf[j + h] = u - v;
                    }
                }
            }
            for (int64_t i = 0; i < g; i++)
                yr[g0 + i] = buf[i] * norm;
        }
    }
}

/*
 * rope.c - rotary position embedding, interleaved pairs (2i, 2i+1) or half-split (i, i + n/2).
 * cos/sin of pos * scale * base^(-2i/n_rot) are computed in double once per position and kept
 * in a table that grows with the positions seen (no trigonometry in the decode loop).
 */
#include "cpu_opt.h"

#include <math.h>
#include <stdlib.h>

#define ROPE_MAX_CACHED_POS (1 << 20)
#define ROPE_MAX_ROT 1024

typedef struct co_rope_cache {
    double base, scale;
    int n_rot;
    int64_t n_pos;  /* positions in the table */
    int64_t cap;    /* positions allocated */
    float *cs;      /* [pos][i] interleaved cos, sin: n_rot floats per position */
} co_rope_cache;

void co_rope_cache_free(co_device *dev) {
    if (!dev->rope) return;
    free(dev->rope->cs);
    free(dev->rope);
    dev->rope = NULL;
}

static void fill(float *cs, int64_t pos, double base, double scale, int n_rot) {
    for (int i = 0; i < n_rot / 2; i++) {
        double th = (double)pos * scale * pow(base, -2.0 * i / n_rot);
        cs[2 * i] = (float)cos(th);
        cs[2 * i + 1] = (float)sin(th);
    }
}

/* Table rows for positions up to max_pos (inclusive); NULL if the table cannot serve them. */
static const float *table(co_device *dev, double base, double scale, int n_rot, int64_t max_pos) {
    if (max_pos < 0 || max_pos >= ROPE_MAX_CACHED_POS) return NULL;
    co_rope_cache *c = dev->rope;
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return NULL;
        dev->rope = c;
    }
    if (c->base != base || c->scale != scale || c->n_rot != n_rot) {
        c->base = base;
        c->scale = scale;
        c->n_rot = n_rot;
        c->n_pos = 0;
        free(c->cs);
        c->cs = NULL;
        c->cap = 0;
    }
    if (max_pos >= c->n_pos) {
        if (max_pos >= c->cap) {
            int64_t cap = c->cap ? c->cap : 1024;
            while (cap <= max_pos) cap *= 2;
            float *cs = realloc(c->cs, (size_t)cap * (size_t)n_rot * sizeof(float));
            if (!cs) return NULL;
            c->cs = cs;
            c->cap = cap;
        }
        for (int64_t p = c->n_pos; p <= max_pos; p++) fill(c->cs + p * n_rot, p, base, scale, n_rot);
        c->n_pos = max_pos + 1;
    }
    return c->cs;
}

int co_supports_rope(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    if (n < 2 || !src[0] || !src[1]) return 0;
    co_cview x = src[0], pos = src[1];
    if (x->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || x->nb[0] != 4 || dst->nb[0] != 4) return 0;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (dst->ne[d] != x->ne[d]) return 0;
    if (pos->type != LOOM_TYPE_I32 || pos->nb[0] != 4 || pos->ne[0] != x->ne[2]) return 0;
    int64_t hd = x->ne[0];
    int64_t n_rot = p->i[1] ? p->i[1] : hd;
    if (p->i[0] != 0 && p->i[0] != 1) return 0;
    if (n_rot <= 0 || n_rot > hd || n_rot % 2 || n_rot > ROPE_MAX_ROT) return 0;
    return 1;
}

typedef struct rope_job {
    co_cview dst, x;
    const int32_t *pos;
    const float *tab; /* NULL: compute directly */
    int mode, n_rot;
    double base, scale;
} rope_job;

static void rope_task(void *arg, int64_t r0, int64_t r1, int ith) {
    (void)ith;
    rope_job *j = arg;
    co_cview x = j->x, dst = j->dst;
    int64_t hd = x->ne[0], n_head = x->ne[1], n_tok = x->ne[2];
    int half = j->n_rot / 2;
    float local[ROPE_MAX_ROT];
    for (int64_t r = r0; r < r1; r++) {
        int64_t h = r % n_head, t = (r / n_head) % n_tok, i3 = r / (n_head * n_tok);
        const float *cs;
        if (j->tab) {
            cs = j->tab + (int64_t)j->pos[t] * j->n_rot;
        } else { /* positions outside the table (negative or huge), rare */
            fill(local, j->pos[t], j->base, j->scale, j->n_rot);
            cs = local;
        }
        const float *xs = co_row_f32(x, h, t, i3);
        float *d = co_row_f32(dst, h, t, i3);
        if (j->mode == 0) {
            for (int i = 0; i < half; i++) {
                float c = cs[2 * i], s = cs[2 * i + 1];
                float x0 = xs[2 * i], x1 = xs[2 * i + 1];
                d[2 * i] = x0 * c - x1 * s;
                d[2 * i + 1] = x0 * s + x1 * c;
            }
        } else {
            for (int i = 0; i < half; i++) {
                float c = cs[2 * i], s = cs[2 * i + 1];
                float x0 = xs[i], x1 = xs[i + half];
                d[i] = x0 * c - x1 * s;
                d[i + half] = x0 * s + x1 * c;
            }
        }
        if (j->n_rot < hd) {
            if (d != xs) memmove(d + j->n_rot, xs + j->n_rot, (size_t)(hd - j->n_rot) * sizeof(float));
        }
    }
}

loom_status co_op_rope(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview pos) {
    rope_job j;
    j.dst = dst;
    j.x = x;
    j.pos = (const int32_t *)pos->data;
    j.mode = p->i[0];
    j.n_rot = (int)(p->i[1] ? p->i[1] : x->ne[0]);
    j.base = (double)p->f[0];
    j.scale = p->f[1] != 0.0f ? (double)p->f[1] : 1.0;
    int64_t mn = 0, mx = 0;
    for (int64_t t = 0; t < x->ne[2]; t++) {
        int64_t v = j.pos[t];
        if (t == 0 || v < mn) mn = v;
        if (t == 0 || v > mx) mx = v;
    }
    j.tab = mn >= 0 ? table(dev, j.base, j.scale, j.n_rot, mx) : NULL;
    int64_t rows = x->ne[1] * x->ne[2] * x->ne[3];
    int nth = co_nelem(x) < 32768 ? 1 : dev->n_threads;
    if (rows < nth) nth = (int)rows;
    if (nth < 1) nth = 1;
    co_parallel_for(dev->pool, nth, rows, co_chunk(rows, nth), rope_task, &j);
    return LOOM_OK;
}

/*
 * matmul.c - the matmul driver: dst[.., m, n] = sum_k a[.., m, k] * w[.., n, k].
 *
 * Phase 1 prepares the activations once for all threads: int8 rows with block metadata for
 * quantized weights, or k-major token blocks for float kernels. Phase 2 hands out groups of
 * weight tiles dynamically (an atomic counter: a thread that the shared machine preempts does
 * not hold the others back); each group streams its tiles once and runs every token block over
 * them while they are in cache. Weights that were not prepared (or activations used as the
 * right operand) are packed into tiles on the fly in per-thread scratch.
 * Nothing is allocated once the scratch buffers have grown to the largest shapes seen.
 */
#include "cpu_opt.h"

#include <stdlib.h>

int co_family_of_type(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32: return CO_FAM_F32;
    case LOOM_TYPE_F16: return CO_FAM_F16;
    case LOOM_TYPE_BF16: return CO_FAM_BF16;
    case LOOM_TYPE_Q8_0: return CO_FAM_Q8_0;
    case LOOM_TYPE_Q4_0: return CO_FAM_Q4_0;
    case LOOM_TYPE_Q4_1: return CO_FAM_Q4_1;
    default: return -1;
    }
}

static int is_quant(uint32_t type) {
    return type == LOOM_TYPE_Q8_0 || type == LOOM_TYPE_Q4_0 || type == LOOM_TYPE_Q4_1;
}

int co_supports_matmul(const co_device *dev, co_cview dst, co_cview a, co_cview w) {
    (void)dev;
    if (!dst || !a || !w || !dst->data || !a->data || !w->data) return 0;
    if (dst->type != LOOM_TYPE_F32 || a->type != LOOM_TYPE_F32) return 0;
    if (dst->nb[0] != 4 || a->nb[0] != 4) return 0;
    if (!co_tile_type_ok(w->type, w->ne[0])) return 0;
    if (w->nb[0] != (int64_t)co_type_block_bytes(w->type)) return 0;
    if (a->ne[0] != w->ne[0] || dst->ne[0] != w->ne[1] || dst->ne[1] != a->ne[1]) return 0;
    if (dst->ne[2] != a->ne[2] || dst->ne[3] != a->ne[3]) return 0;
    if (w->ne[2] <= 0 || w->ne[3] <= 0 || a->ne[2] % w->ne[2] || a->ne[3] % w->ne[3]) return 0;
    if (dst->nb[1] % 4 || a->nb[1] % 4) return 0;
    return 1;
}

typedef struct mm_job {
    co_device *dev;
    co_mm_params pp;
    const co_kernels *kern;
    uint32_t wtype;   /* tile type */
    int quant;        /* int8 activations + quantized kernels */
    int deq;          /* quantized tiles through the float kernels (exact path) */
    const co_weight *pw; /* prepared weight or NULL */
    co_cview w, a, dst;
    int64_t M, N, K, n_tiles;
    int64_t nb2, nb3;    /* batches of dst (ne[2], ne[3]) */
    int64_t r2, r3;      /* broadcast ratios a/w */
    int T;               /* tokens per kernel call / token block */
    int G;               /* tiles per work item */
    int64_t n_items;
    size_t act_row;      /* bytes per quantized activation row */
    size_t act_batch;    /* bytes of activations per batch */
    uint8_t *act;        /* shared activations */
    int redundant;       /* each thread prepares its own copy of the activations */
    int64_t n_units;     /* activation preparation items (0 when redundant) */
    size_t local_bytes;  /* per-thread scratch needed */
} mm_job;

static const float *a_row(const mm_job *j, int64_t b, int64_t m) {
    int64_t i2 = b % j->nb2, i3 = b / j->nb2;
    return (const float *)(const void *)((const uint8_t *)j->a->data + m * j->a->nb[1] + i2 * j->a->nb[2] +
                                         i3 * j->a->nb[3]);
}

/* Prepare activations of batch rows [r0, r1) (flattened batch*M + m) into `out`. */
static void prep_rows(const mm_job *j, uint8_t *out, int64_t r0, int64_t r1) {
    if (j->quant) {
        for (int64_t r = r0; r < r1; r++) {
            int64_t b = r / j->M, m = r % j->M;
            j->kern->quant_act(a_row(j, b, m), out + (size_t)b * j->act_batch + (size_t)m * j->act_row, j->K);
        }
        return;
    }
    /* Float: token blocks of T rows, k-major inside a block. Rows r0..r1 are whole blocks. */
    for (int64_t r = r0; r < r1;) {
        int64_t b = r / j->M, m = r % j->M;
        int64_t tb = m / j->T;
        int64_t m0 = tb * j->T;
        int tc = (int)(j->M - m0 < j->T ? j->M - m0 : j->T);
        float *xp = (float *)(void *)(out + (size_t)b * j->act_batch) + m0 * j->K;
        for (int t = 0; t < tc; t++) {
            const float *x = a_row(j, b, m0 + t);
            for (int64_t k = 0; k < j->K; k++) xp[k * tc + t] = x[k];
        }
        r = b * j->M + m0 + tc;
    }
}

static void mm_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    co_device *dev = j->dev;
    uint8_t *local = co_scratch_get(&dev->local[ith], j->local_bytes);
    if (!local) return; /* cannot happen: sized before the run */
    uint8_t *act = j->act;
    (void)nth;
    if (j->redundant) {
        act = local;
        prep_rows(j, act, 0, j->M * j->nb2 * j->nb3);
        local += (j->act_batch * (size_t)(j->nb2 * j->nb3) + 63) & ~(size_t)63;
    }
    size_t tb = j->pw ? j->pw->tile_bytes : co_tile_bytes(j->wtype, j->K);
    uint8_t *pack = local;                                                  /* G tiles, when not prepared */
    float *deq = (float *)(void *)(local + (((size_t)j->G * tb + 63) & ~(size_t)63)); /* G f32 tiles */
    const int64_t items_per_batch = (j->n_tiles + j->G - 1) / j->G;
    /* Items [0, n_units) prepare activations (rows, or token blocks for the float layout);
     * items after them compute tile groups once every preparation is finished. */
    const int64_t n_units = j->n_units;
    int ready = n_units == 0;
    for (;;) {
        int64_t c = co_pool_next(dev->pool);
        if (c >= n_units + j->n_items) break;
        if (c < n_units) {
            int64_t unit = j->quant ? 1 : j->T;
            int64_t bpb = (j->M + unit - 1) / unit; /* units per batch */
            int64_t b = c / bpb, u = c % bpb;
            prep_rows(j, act, b * j->M + u * unit, b * j->M + u * unit + 1);
            co_pool_done(dev->pool, 1);
            continue;
        }
        if (!ready) {
            co_pool_wait_done(dev->pool, n_units);
            ready = 1;
        }
        int64_t item = c - n_units;
        int64_t b = item / items_per_batch, g = item % items_per_batch;
        int64_t t0 = g * j->G;
        int nt = (int)(j->n_tiles - t0 < j->G ? j->n_tiles - t0 : j->G);
        int64_t i2 = b % j->nb2, i3 = b / j->nb2;
        int64_t w2 = i2 / j->r2, w3 = i3 / j->r3;
        const uint8_t *tiles;
        if (j->pw) {
            tiles = j->pw->data + (size_t)(w2 + w3 * j->pw->ne2) * j->pw->mat_bytes + (size_t)t0 * tb;
        } else {
            const uint8_t *wm = (const uint8_t *)j->w->data + w2 * j->w->nb[2] + w3 * j->w->nb[3];
            for (int i = 0; i < nt; i++) {
                int64_t row0 = (t0 + i) * CO_TILE;
                int nr = (int)(j->N - row0 < CO_TILE ? j->N - row0 : CO_TILE);
                co_tile_pack(j->wtype, wm + row0 * j->w->nb[1], j->w->nb[1], nr, j->K, pack + (size_t)i * tb);
            }
            tiles = pack;
        }
        uint32_t ktype = j->wtype;
        size_t ktb = tb;
        if (j->deq) {
            for (int i = 0; i < nt; i++)
                co_tile_to_f32(j->wtype, tiles + (size_t)i * tb, j->K, deq + (size_t)i * j->K * CO_TILE);
            tiles = (const uint8_t *)deq;
            ktype = LOOM_TYPE_F32;
            ktb = (size_t)j->K * CO_TILE * sizeof(float);
        }
        int64_t row_end = (t0 + nt) * CO_TILE;
        int nr_last = (int)(row_end <= j->N ? CO_TILE : CO_TILE - (row_end - j->N));
        float *d0 = (float *)(void *)((uint8_t *)j->dst->data + i2 * j->dst->nb[2] + i3 * j->dst->nb[3]) +
                    t0 * CO_TILE;
        int64_t ldd = j->dst->nb[1] / 4;
        const uint8_t *ab = act + (size_t)b * j->act_batch;
        int T = j->T;
        for (int64_t m0 = 0; m0 < j->M; m0 += T) {
            int tc = (int)(j->M - m0 < T ? j->M - m0 : T);
            if (j->quant)
                j->kern->qgemm(ktype, tiles, ktb, nt, j->K, ab + (size_t)m0 * j->act_row, j->act_row, tc,
                               d0 + m0 * ldd, ldd, nr_last);
            else
                j->kern->fgemm(ktype, tiles, ktb, nt, j->K, (const float *)(const void *)ab + m0 * j->K, tc,
                               d0 + m0 * ldd, ldd, nr_last);
        }
    }
}

/* Rows up to which each thread prepares its own activations instead of sharing them. */
#define CO_REDUNDANT_ROWS 2

loom_status co_op_matmul(co_device *dev, co_cview dst, co_cview a, co_cview w) {
    mm_job j;
    memset(&j, 0, sizeof j);
    j.dev = dev;
    j.w = w;
    j.a = a;
    j.dst = dst;
    j.pw = (const co_weight *)w->extra;
    j.wtype = w->type;
    j.K = a->ne[0];
    j.M = a->ne[1];
    j.N = w->ne[1];
    j.nb2 = dst->ne[2];
    j.nb3 = dst->ne[3];
    j.r2 = a->ne[2] / w->ne[2];
    j.r3 = a->ne[3] / w->ne[3];
    if (j.pw && (j.pw->K != j.K || j.pw->N != j.N || j.pw->type != w->type)) j.pw = NULL;
    j.n_tiles = (j.N + CO_TILE - 1) / CO_TILE;
    int fam = co_family_of_type(w->type);
    j.quant = is_quant(w->type) && !dev->exact;
    j.deq = is_quant(w->type) && dev->exact;
    if (j.deq) fam = CO_FAM_F32;
    co_tune_family(dev, fam);
    j.pp = dev->mm[fam];
    int64_t batches = j.nb2 * j.nb3;
    int64_t rows = j.M * batches;
    if (j.M == 1) {
        j.T = 1;
        j.G = j.pp.gemv_nt;
        j.kern = &dev->kern[j.pp.gemv_isa];
    } else {
        j.T = j.pp.gemm_t < j.M ? j.pp.gemm_t : (int)j.M;
        j.G = j.pp.gemm_nt;
        j.kern = &dev->kern[j.pp.gemm_isa];
    }
    int nth = dev->n_threads;
    /* Enough tiles per item for few atomics, but enough items to balance. */
    if (j.M == 1) {
        int64_t per = j.n_tiles * batches / ((int64_t)nth * 8);
        if (per > j.G) j.G = (int)((per / j.G) * j.G);
        if (j.G > 64) j.G = 64;
    }
    j.n_items = ((j.n_tiles + j.G - 1) / j.G) * batches;
    /* Tiny problems: one thread. */
    double work = (double)j.N * (double)j.K * (double)rows;
    if (work < 32768.0) nth = 1;
    if (j.n_items < nth) nth = (int)j.n_items;
    if (nth < 1) nth = 1;

    j.act_row = j.quant ? co_qact_row_bytes(j.K) : (size_t)j.K * sizeof(float);
    j.act_batch = j.act_row * (size_t)j.M;
    j.act_batch = (j.act_batch + 63) & ~(size_t)63;
    size_t act_total = j.act_batch * (size_t)batches;
    j.redundant = rows <= CO_REDUNDANT_ROWS || nth == 1;
    size_t tb = j.pw ? j.pw->tile_bytes : co_tile_bytes(j.wtype, j.K);
    size_t local = 0;
    if (j.redundant) local += (act_total + 63) & ~(size_t)63;
    local += ((size_t)j.G * tb + 63) & ~(size_t)63;
    if (j.deq) local += (size_t)j.G * (size_t)j.K * CO_TILE * sizeof(float);
    j.local_bytes = local + 64;
    for (int i = 0; i < nth; i++)
        if (!co_scratch_get(&dev->local[i], j.local_bytes))
            return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "matmul: cannot allocate %zu bytes of scratch", local);
    if (!j.redundant) {
        j.n_units = j.quant ? rows : ((j.M + j.T - 1) / j.T) * batches;
        j.act = co_scratch_get(&dev->shared, act_total);
        if (!j.act) return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "matmul: cannot allocate %zu bytes", act_total);
    }
    co_pool_reset_counter(dev->pool, 0);
    co_pool_run(dev->pool, mm_task, &j, nth);
    return LOOM_OK;
}

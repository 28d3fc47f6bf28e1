/*
 * dnnl_matmul.c - LOOM_OP_MATMUL on oneDNN: which matmuls are taken, weight preparation for the
 * device's path, the primitive cache (keyed by path and shape) and the compute itself.
 *
 * y[n, m] = sum_k x[n, k] w[m, k]: in oneDNN terms src = x (M x K, row stride lda), weights =
 * w^T (K x N, read in place from w's [N, K] rows: strides {1, ldw}) and dst (M x N, stride ldd).
 *   f32  : x and w as f32 (weights of other types decoded once at weight_prepare)
 *   bf16 : x rounded to bf16 per call, w rounded to bf16 once; f32 accumulation and result
 *   int8 : k is cut into groups of 32 (as llama.cpp's 8-bit blocks); x is quantized per row and
 *          group to u8 (q + 128, scale max|x|/127). Q8_0/Q4_0/Q4_1 weights keep their own block
 *          values (w = d q + m: exact); other types are quantized once per row and group to s8
 *          (m = 0). One batched oneDNN matmul gives the exact s32 sum of every group (VNNI
 *          only), and y = sum_g (sx_g d_g (sum_g - 128 rowsum_g(q)) + m_g sum_g(x)). Per-row
 *          scales (one group) and requantized Q4_1 blocks each lost far more (perplexity +5%).
 * Matmuls whose right operand was not prepared (activations, e.g. attention scores) use f32.
 */
#include "dnnl_internal.h"

#include <stdlib.h>
#include <string.h>

/* ============================================================================================ */
/* Primitives                                                                                   */
/* ============================================================================================ */

/* A [rows, cols] matrix, or with batch > 1 a [batch, rows, cols] stack of them. */
static dnnl_status_t make_md(dnnl_memory_desc_t *md, int64_t batch, int64_t stride_batch, int64_t rows, int64_t cols,
                             dnnl_data_type_t dt, int64_t stride_rows, int64_t stride_cols) {
    if (batch > 1) {
        dnnl_dims_t dims = {batch, rows, cols}, strides = {stride_batch, stride_rows, stride_cols};
        return odnn.dnnl_memory_desc_init_by_strides(md, 3, dims, dt, strides);
    } else {
        dnnl_dims_t dims = {rows, cols}, strides = {stride_rows, stride_cols};
        return odnn.dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
    }
}

/* g > 1 (int8 groups): g matmuls of k-wide slices of the same rows: src (i, r, c) at
 * i*k + r*lda + c, weights (i, c, col) at i*k + c + col*ldw, dst (i, r, col) at i*m*n + r*ldd + col. */
static dnnl_status_t create_prim(dnnl_engine_t engine, int path, int64_t g, int64_t m, int64_t k, int64_t n,
                                 int64_t lda, int64_t ldw, int64_t ldd, dnnl_primitive_t *prim,
                                 dnnl_memory_desc_t *src_md, dnnl_memory_desc_t *wei_md, dnnl_memory_desc_t *dst_md) {
    dnnl_data_type_t st = path == ODNN_BF16 ? dnnl_bf16 : path == ODNN_INT8 ? dnnl_u8 : dnnl_f32;
    dnnl_data_type_t wt = path == ODNN_BF16 ? dnnl_bf16 : path == ODNN_INT8 ? dnnl_s8 : dnnl_f32;
    dnnl_data_type_t dt = path == ODNN_INT8 ? dnnl_s32 : dnnl_f32;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s;
    *prim = NULL;
    if ((s = make_md(src_md, g, k, m, k, st, lda, 1)) != dnnl_success ||
        (s = make_md(wei_md, g, k, k, n, wt, 1, ldw)) != dnnl_success ||
        (s = make_md(dst_md, g, m * n, m, n, dt, ldd, 1)) != dnnl_success)
        return s;
    if ((s = odnn.dnnl_matmul_desc_init(&desc, src_md, wei_md, NULL, dst_md)) != dnnl_success) return s;
    if ((s = odnn.dnnl_primitive_desc_create(&pd, &desc, NULL, engine, NULL)) != dnnl_success) return s;
    s = odnn.dnnl_primitive_create(prim, pd);
    odnn.dnnl_primitive_desc_destroy(pd);
    return s;
}

int odnn_probe_path(dnnl_engine_t engine, int path) {
    dnnl_memory_desc_t a, b, c;
    dnnl_primitive_t prim = NULL;
    dnnl_status_t s = path == ODNN_INT8 ? create_prim(engine, path, 2, 4, 32, 16, 64, 64, 16, &prim, &a, &b, &c)
                                        : create_prim(engine, path, 1, 4, 64, 16, 64, 64, 16, &prim, &a, &b, &c);
    if (prim != NULL) odnn.dnnl_primitive_destroy(prim);
    return s == dnnl_success ? 0 : -1;
}

static void prim_destroy(odnn_prim *p) {
    if (p->prim != NULL) odnn.dnnl_primitive_destroy(p->prim);
    if (p->src != NULL) odnn.dnnl_memory_destroy(p->src);
    if (p->wei != NULL) odnn.dnnl_memory_destroy(p->wei);
    if (p->dst != NULL) odnn.dnnl_memory_destroy(p->dst);
    memset(p, 0, sizeof *p);
}

void odnn_cache_clear(odnn_device *dev) {
    for (int i = 0; i < ODNN_CACHE; i++)
        if (dev->cache[i].used) prim_destroy(&dev->cache[i]);
}

/* The cached primitive for this path and shape, created on a miss (evicting the least recently
 * used entry). */
/* Matmuls under this many multiply-adds run on one thread: waking OpenMP workers costs more. */
#define ODNN_SMALL_WORK ((int64_t)1 << 21)

static void set_threads(int nthr) {
    if (odnn.omp_set_num_threads != NULL) odnn.omp_set_num_threads(nthr);
}

static loom_status get_prim(odnn_device *dev, int path, int64_t g, int64_t m, int64_t k, int64_t n, int64_t lda,
                            int64_t ldw, int64_t ldd, odnn_prim **out) {
    int nthr = g * m * k * n < ODNN_SMALL_WORK ? 1 : dev->threads;
    odnn_prim *victim = &dev->cache[0];
    dnnl_memory_desc_t smd, wmd, dmd;
    dnnl_status_t s;
    dev->clock++;
    for (int i = 0; i < ODNN_CACHE; i++) {
        odnn_prim *p = &dev->cache[i];
        if (p->used && p->path == path && p->nthr == nthr && p->g == g && p->m == m && p->k == k && p->n == n &&
            p->lda == lda && p->ldw == ldw && p->ldd == ldd) {
            p->stamp = dev->clock;
            set_threads(nthr);
            dev->cache_hits++;
            *out = p;
            return LOOM_OK;
        }
        if (!p->used || (victim->used && p->stamp < victim->stamp)) victim = p;
    }
    dev->cache_misses++;
    if (victim->used) prim_destroy(victim);
    set_threads(nthr);
    s = create_prim(dev->engine, path, g, m, k, n, lda, ldw, ldd, &victim->prim, &smd, &wmd, &dmd);
    if (s == dnnl_success) s = odnn.dnnl_memory_create(&victim->src, &smd, dev->engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = odnn.dnnl_memory_create(&victim->wei, &wmd, dev->engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = odnn.dnnl_memory_create(&victim->dst, &dmd, dev->engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) {
        prim_destroy(victim);
        return odnn_fail(dev, LOOM_ERR_BACKEND, "oneDNN matmul (%s, M=%lld K=%lld N=%lld) could not be created: %s",
                         path == ODNN_BF16   ? "bf16"
                         : path == ODNN_INT8 ? "int8"
                                             : "f32",
                         (long long)m, (long long)k, (long long)n, odnn.dnnl_status2str(s));
    }
    victim->used = 1;
    victim->path = path;
    victim->nthr = nthr;
    victim->g = g;
    victim->m = m;
    victim->k = k;
    victim->n = n;
    victim->lda = lda;
    victim->ldw = ldw;
    victim->ldd = ldd;
    victim->stamp = dev->clock;
    *out = victim;
    return LOOM_OK;
}

static loom_status run_prim(odnn_device *dev, odnn_prim *p, const void *src, const void *wei, void *dst) {
    dnnl_exec_arg_t args[3];
    dnnl_status_t s;
    if ((s = odnn.dnnl_memory_set_data_handle(p->src, (void *)(uintptr_t)src)) != dnnl_success ||
        (s = odnn.dnnl_memory_set_data_handle(p->wei, (void *)(uintptr_t)wei)) != dnnl_success ||
        (s = odnn.dnnl_memory_set_data_handle(p->dst, dst)) != dnnl_success)
        return odnn_fail(dev, LOOM_ERR_BACKEND, "oneDNN set_data_handle failed: %s", odnn.dnnl_status2str(s));
    args[0].arg = DNNL_ARG_SRC;
    args[0].memory = p->src;
    args[1].arg = DNNL_ARG_WEIGHTS;
    args[1].memory = p->wei;
    args[2].arg = DNNL_ARG_DST;
    args[2].memory = p->dst;
    s = odnn.dnnl_primitive_execute(p->prim, dev->stream, 3, args);
    if (s == dnnl_success) s = odnn.dnnl_stream_wait(dev->stream);
    if (s != dnnl_success)
        return odnn_fail(dev, LOOM_ERR_BACKEND, "oneDNN matmul execution failed: %s", odnn.dnnl_status2str(s));
    return LOOM_OK;
}

/* ============================================================================================ */
/* Which matmuls                                                                                */
/* ============================================================================================ */

static const void *view_data(const loom_tensor_view *v) {
    if (v->data != NULL) return v->data;
    if (v->buffer != NULL) return (const char *)v->buffer + v->offset;
    return NULL;
}

static const char *check_matmul(const loom_op_params *p, const loom_tensor_view *dst,
                                const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    const loom_tensor_view *x, *w;
    int64_t block, bytes;
    if (p == NULL || dst == NULL || srcs == NULL || n_srcs < 2 || srcs[0] == NULL || srcs[1] == NULL)
        return "missing operands";
    if (p->op != LOOM_OP_MATMUL) return "the oneDNN backend only runs matmuls";
    x = srcs[0];
    w = srcs[1];
    odnn_type_size(w->type, &block, &bytes);
    if (x->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32) return "matmul takes F32 activations and an F32 dst";
    if (bytes == 0) return "weight type not supported";
    for (int i = 0; i < LOOM_MAX_DIMS; i++)
        if (x->ne[i] < 1 || w->ne[i] < 1 || dst->ne[i] < 1 || x->nb[i] < 0 || w->nb[i] < 0 || dst->nb[i] < 0)
            return "bad shape or stride";
    if (w->ne[0] != x->ne[0] || w->ne[0] % block != 0 || w->nb[0] != bytes)
        return "weights must be contiguous along k with src0's k";
    if (x->nb[0] != 4 || dst->nb[0] != 4) return "activations and dst must be contiguous along their rows";
    for (int i = 1; i < LOOM_MAX_DIMS; i++)
        if (x->nb[i] % 4 != 0 || dst->nb[i] % 4 != 0) return "activation and dst strides must be multiples of 4 bytes";
    if (dst->ne[0] != w->ne[1] || dst->ne[1] != x->ne[1] || dst->ne[2] != x->ne[2] || dst->ne[3] != x->ne[3])
        return "dst must be [.., n, m]";
    if (x->ne[2] % w->ne[2] != 0 || x->ne[3] % w->ne[3] != 0)
        return "weight batches must divide the activation batches";
    return NULL;
}

int32_t odnn_supports_op(void *handle, const loom_op_params *params, const loom_tensor_view *dst,
                         const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    const odnn_device *dev = handle;
    if (dev == NULL || dev->refused) return 0;
    return check_matmul(params, dst, srcs, n_srcs) == NULL;
}

/* ============================================================================================ */
/* Weights                                                                                      */
/* ============================================================================================ */

static void weight_free(odnn_weight *pw) {
    if (pw == NULL) return;
    odnn_free(pw->data);
    odnn_free(pw->scale);
    odnn_free(pw->rowsum);
    odnn_free(pw->offset);
    free(pw);
}

loom_status odnn_weight_prepare(void *handle, const loom_tensor_view *w, void **extra) {
    odnn_device *dev = handle;
    odnn_weight *pw;
    const char *base;
    int64_t block, bytes, k, rows, elem;
    int path;
    float *tmp;
    if (extra != NULL) *extra = NULL;
    if (dev == NULL || w == NULL || extra == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    if (dev->refused) return LOOM_OK; /* nothing will run here */
    odnn_type_size(w->type, &block, &bytes);
    /* Nothing to do for what matmuls never read as weights (norm gains, ...) or for f32 weights
     * on the f32 path (read in place). */
    if (bytes == 0 || w->ne[1] < 2 || w->ne[0] % block != 0 || w->nb[0] != bytes) return LOOM_OK;
    path = dev->mode;
    if (path == ODNN_AUTO) /* quantization error dwarfs bf16 rounding; keep float weights exact */
        path = w->type == LOOM_TYPE_F32 || w->type == LOOM_TYPE_F16 || w->type == LOOM_TYPE_BF16 ? ODNN_F32 : ODNN_BF16;
    if (path == ODNN_F32 && w->type == LOOM_TYPE_F32) return LOOM_OK;
    base = view_data(w);
    if (base == NULL)
        return odnn_fail(dev, LOOM_ERR_INVALID_ARGUMENT, "weight_prepare: the weight has no host address");
    k = w->ne[0];
    rows = w->ne[1] * w->ne[2] * w->ne[3];
    elem = path == ODNN_BF16 ? 2 : path == ODNN_INT8 ? 1 : 4;
    pw = calloc(1, sizeof *pw);
    tmp = malloc((size_t)k * sizeof *tmp);
    if (pw == NULL || tmp == NULL) goto oom;
    pw->magic = ODNN_WEIGHT_MAGIC;
    pw->path = path;
    pw->k = k;
    pw->n = w->ne[1];
    pw->b2 = w->ne[2];
    pw->b3 = w->ne[3];
    pw->data = odnn_alloc((size_t)(rows * k * elem));
    if (pw->data == NULL) goto oom;
    pw->group = k % ODNN_INT8_GROUP == 0 ? ODNN_INT8_GROUP : k;
    if (path == ODNN_INT8) {
        pw->scale = odnn_alloc((size_t)(rows * (k / pw->group)) * sizeof(float));
        pw->rowsum = odnn_alloc((size_t)(rows * (k / pw->group)) * sizeof(int32_t));
        if (w->type == LOOM_TYPE_Q4_1) pw->offset = odnn_alloc((size_t)(rows * (k / pw->group)) * sizeof(float));
        if (pw->scale == NULL || pw->rowsum == NULL || (w->type == LOOM_TYPE_Q4_1 && pw->offset == NULL)) goto oom;
    }
    for (int64_t i3 = 0, r = 0; i3 < w->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < w->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < w->ne[1]; i1++, r++) {
                const char *row = base + i1 * w->nb[1] + i2 * w->nb[2] + i3 * w->nb[3];
                if (path == ODNN_F32) {
                    odnn_decode_row(w->type, row, (float *)pw->data + r * k, k);
                } else if (path == ODNN_BF16) {
                    uint16_t *o = (uint16_t *)pw->data + r * k;
                    odnn_decode_row(w->type, row, tmp, k);
                    for (int64_t j = 0; j < k; j++)
                        o[j] = odnn_f32_to_bf16(tmp[j]);
                } else if (pw->group == ODNN_INT8_GROUP &&
                           odnn_blocks_s8(w->type, row, k, (int8_t *)pw->data + r * k, pw->scale + r * (k / 32),
                                          pw->offset != NULL ? pw->offset + r * (k / 32) : tmp,
                                          pw->rowsum + r * (k / 32)) == 0) {
                    /* Q8_0 / Q4_0 / Q4_1: block values kept as they are (exact); for the first two
                     * the offsets (all 0) went to tmp. */
                } else {
                    int64_t g = k / pw->group;
                    if (pw->offset != NULL) memset(pw->offset + r * g, 0, (size_t)g * sizeof(float));
                    odnn_decode_row(w->type, row, tmp, k);
                    for (int64_t i = 0; i < g; i++)
                        pw->scale[r * g + i] =
                            odnn_quantize_row_s8(tmp + i * pw->group, (int8_t *)pw->data + r * k + i * pw->group,
                                                 pw->group, &pw->rowsum[r * g + i]);
                }
            }
    free(tmp);
    *extra = pw;
    return LOOM_OK;
oom:
    free(tmp);
    weight_free(pw);
    return odnn_fail(dev, LOOM_ERR_OUT_OF_MEMORY, "out of memory preparing a %lld x %lld weight", (long long)k,
                     (long long)w->ne[1]);
}

void odnn_weight_release(void *handle, void *extra) {
    odnn_weight *pw = extra;
    (void)handle;
    if (pw != NULL && pw->magic == ODNN_WEIGHT_MAGIC) {
        pw->magic = 0;
        weight_free(pw);
    }
}

/* ============================================================================================ */
/* Compute                                                                                      */
/* ============================================================================================ */

typedef struct mm_job {
    int64_t m, k, n;
    const char *x; /* activations of this batch */
    int64_t lda;   /* elements */
    char *d;       /* dst of this batch */
    int64_t ldd;   /* elements */
} mm_job;

static loom_status mm_f32(odnn_device *dev, const mm_job *j, const float *w, int64_t ldw) {
    odnn_prim *p;
    loom_status rc = get_prim(dev, ODNN_F32, 1, j->m, j->k, j->n, j->lda, ldw, j->ldd, &p);
    return rc != LOOM_OK ? rc : run_prim(dev, p, j->x, w, j->d);
}

static loom_status mm_bf16(odnn_device *dev, const mm_job *j, const uint16_t *w, uint16_t *xs) {
    odnn_prim *p;
    loom_status rc;
    for (int64_t r = 0; r < j->m; r++) {
        const float *xr = (const float *)j->x + r * j->lda;
        for (int64_t i = 0; i < j->k; i++)
            xs[r * j->k + i] = odnn_f32_to_bf16(xr[i]);
    }
    rc = get_prim(dev, ODNN_BF16, 1, j->m, j->k, j->n, j->k, j->k, j->ldd, &p);
    return rc != LOOM_OK ? rc : run_prim(dev, p, xs, w, j->d);
}

/* int8 scratch per chunk of rows: the s32 sums of every group are kept, so rows are done in
 * chunks of at most this many sums. */
#define ODNN_INT8_SUMS ((int64_t)1 << 22)

static int64_t int8_rows_per_chunk(int64_t m, int64_t g, int64_t n) {
    int64_t mc = ODNN_INT8_SUMS / (g * n);
    return mc < 1 ? 1 : mc > m ? m : mc;
}

static loom_status mm_int8(odnn_device *dev, const mm_job *j, const odnn_weight *pw, int64_t wrow0, uint8_t *xq,
                           float *sx, int32_t *acc) {
    const int64_t k = j->k, n = j->n, gs = pw->group, g = k / gs;
    const int8_t *w = (const int8_t *)pw->data + wrow0 * k;
    const float *sw = pw->scale + wrow0 * g;
    const float *ow = pw->offset != NULL ? pw->offset + wrow0 * g : NULL;
    const int32_t *rs = pw->rowsum + wrow0 * g;
    float *xs = sx + int8_rows_per_chunk(j->m, g, n) * g; /* sums of x per row and group */
    const int64_t mc = int8_rows_per_chunk(j->m, g, n);
    for (int64_t r0 = 0; r0 < j->m; r0 += mc) {
        int64_t rows = j->m - r0 < mc ? j->m - r0 : mc;
        odnn_prim *p;
        loom_status rc;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < g; i++) {
                const float *xg = (const float *)j->x + (r0 + r) * j->lda + i * gs;
                float t = 0.0f;
                sx[r * g + i] = odnn_quantize_row_u8(xg, xq + r * k + i * gs, gs);
                if (ow != NULL) {
                    for (int64_t e = 0; e < gs; e++)
                        t += xg[e];
                    xs[r * g + i] = t;
                }
            }
        rc = get_prim(dev, ODNN_INT8, g, rows, gs, n, k, k, n, &p);
        if (rc == LOOM_OK) rc = run_prim(dev, p, xq, w, acc);
        if (rc != LOOM_OK) return rc;
        for (int64_t r = 0; r < rows; r++) {
            float *dr = (float *)j->d + (r0 + r) * j->ldd;
            for (int64_t c = 0; c < n; c++) {
                float y = 0.0f;
                for (int64_t i = 0; i < g; i++)
                    y += sx[r * g + i] * sw[c * g + i] * (float)(acc[(i * rows + r) * n + c] - 128 * rs[c * g + i]);
                if (ow != NULL)
                    for (int64_t i = 0; i < g; i++)
                        y += ow[c * g + i] * xs[r * g + i];
                dr[c] = y;
            }
        }
    }
    return LOOM_OK;
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static loom_status matmul(odnn_device *dev, const loom_tensor_view *dst, const loom_tensor_view *x,
                          const loom_tensor_view *w) {
    const odnn_weight *pw = w->extra;
    const char *xb = view_data(x), *wb = view_data(w);
    char *db = (char *)(uintptr_t)view_data(dst);
    int64_t m = x->ne[1], k = x->ne[0], n = w->ne[1];
    int64_t r2 = x->ne[2] / w->ne[2], r3 = x->ne[3] / w->ne[3];
    int path = ODNN_F32;
    int direct = 0; /* f32 weights read in place */
    size_t off_w = 0, off_x = 0, off_s = 0, off_a = 0, need = 0;
    loom_status rc;

    if (xb == NULL || wb == NULL || db == NULL)
        return odnn_fail(dev, LOOM_ERR_INVALID_ARGUMENT, "matmul operands must be in host memory");
    if (pw != NULL &&
        (pw->magic != ODNN_WEIGHT_MAGIC || pw->k != k || pw->n != n || pw->b2 != w->ne[2] || pw->b3 != w->ne[3]))
        pw = NULL; /* not ours, or prepared for another shape: ignore */
    if (pw != NULL)
        path = pw->path;
    else
        direct = w->type == LOOM_TYPE_F32 && w->nb[1] % 4 == 0 && w->nb[2] % 4 == 0 && w->nb[3] % 4 == 0;

    /* Scratch: decoded weights (f32, unprepared non-f32 weights), converted activations,
     * activation scales and s32 sums (int8). */
    if (pw == NULL && !direct) {
        off_w = need;
        need += align64((size_t)(n * k) * sizeof(float));
    }
    if (path == ODNN_BF16) {
        off_x = need;
        need += align64((size_t)(m * k) * 2);
    } else if (path == ODNN_INT8) {
        int64_t g = k / pw->group, mc = int8_rows_per_chunk(m, g, n);
        off_x = need;
        need += align64((size_t)(mc * k));
        off_s = need;
        need += align64((size_t)(2 * mc * g) * sizeof(float)); /* scales, then sums of x */
        off_a = need;
        need += align64((size_t)(mc * g * n) * sizeof(int32_t));
    }
    if ((rc = odnn_scratch(dev, need)) != LOOM_OK) return rc;

    for (int64_t i3 = 0; i3 < x->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < x->ne[2]; i2++) {
            int64_t w2 = i2 / r2, w3 = i3 / r3;
            mm_job j = {m,
                        k,
                        n,
                        xb + i2 * x->nb[2] + i3 * x->nb[3],
                        x->nb[1] / 4,
                        db + i2 * dst->nb[2] + i3 * dst->nb[3],
                        dst->nb[1] / 4};
            int64_t wrow0 = (w3 * w->ne[2] + w2) * n;
            char *scratch = dev->scratch;
            if (pw != NULL && path == ODNN_F32) {
                rc = mm_f32(dev, &j, (const float *)pw->data + wrow0 * k, k);
            } else if (pw != NULL && path == ODNN_BF16) {
                rc = mm_bf16(dev, &j, (const uint16_t *)pw->data + wrow0 * k, (uint16_t *)(void *)(scratch + off_x));
            } else if (pw != NULL) {
                rc = mm_int8(dev, &j, pw, wrow0, (uint8_t *)(scratch + off_x), (float *)(void *)(scratch + off_s),
                             (int32_t *)(void *)(scratch + off_a));
            } else if (direct) {
                rc = mm_f32(dev, &j, (const float *)(const void *)(wb + w2 * w->nb[2] + w3 * w->nb[3]), w->nb[1] / 4);
            } else {
                float *wf = (float *)(void *)(scratch + off_w);
                for (int64_t r = 0; r < n; r++)
                    odnn_decode_row(w->type, wb + r * w->nb[1] + w2 * w->nb[2] + w3 * w->nb[3], wf + r * k, k);
                rc = mm_f32(dev, &j, wf, k);
            }
            if (rc != LOOM_OK) return rc;
        }
    return LOOM_OK;
}

loom_status odnn_compute(void *handle, const loom_op_params *params, const loom_tensor_view *dst,
                         const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    odnn_device *dev = handle;
    const char *why;
    loom_status rc;
    if (dev == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    if (dev->refused) return LOOM_ERR_UNAVAILABLE; /* dev->error says why */
    why = check_matmul(params, dst, srcs, n_srcs);
    if (why != NULL)
        return odnn_fail(dev, LOOM_ERR_UNSUPPORTED, "op %u: %s", params != NULL ? (unsigned)params->op : 0u, why);
    pthread_mutex_lock(&dev->lock);
    rc = matmul(dev, dst, srcs[0], srcs[1]);
    pthread_mutex_unlock(&dev->lock);
    return rc;
}

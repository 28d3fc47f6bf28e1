/*
 * cpu_matmul.c - reference kernels that read weights: row lookup (GET_ROWS), MATMUL of F32
 * activations by weights of any type, and fused causal ATTENTION over an F32/F16 KV cache.
 *
 * Weights are dequantized row by row to float (backends/common/loom_backend_util.h) and
 * multiplied in float with a fixed summation order (cpu_dot), so results do not depend on the
 * thread count.
 */
#include "cpu_internal.h"

#include <math.h>
#include <string.h>

float cpu_dot(const float *a, const float *b, int64_t n) {
    float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; i++, l++)
        acc[l] += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* ---- GET_ROWS ---- */

void cpu_get_rows(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *table = t->src[0], *ids = t->src[1], *y = t->dst;
    const int64_t n = ids->ne[0] * ids->ne[1] * ids->ne[2];
    int64_t r0, r1;
    cpu_range(n, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t i0 = r % ids->ne[0], i1 = (r / ids->ne[0]) % ids->ne[1], i2 = r / (ids->ne[0] * ids->ne[1]);
        int32_t id;
        memcpy(&id, cpu_row(ids, i1, i2, 0) + i0 * ids->nb[0], sizeof id);
        /* ids were range-checked before the job started */
        lbu_to_float_row(table->type, cpu_row(table, id, 0, 0), (float *)(void *)cpu_row(y, i0, i1, i2), table->ne[0]);
    }
}

/* ---- MATMUL ---- */

/*
 * dst[i3, i2, i1, j] = dot(src0[i3, i2, i1, :], src1[i3 / r3, i2 / r2, j, :]). The work is the
 * list of (i3, i2, tile of CPU_MATMUL_TILE weight rows); each thread takes a contiguous range,
 * dequantizes the tile's weight rows once and multiplies them with every activation row.
 */
void cpu_matmul(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *x = t->src[0], *w = t->src[1], *y = t->dst;
    const int64_t k = x->ne[0], n = x->ne[1], m = w->ne[1];
    const int64_t r2 = x->ne[2] / w->ne[2], r3 = x->ne[3] / w->ne[3];
    const int64_t tiles = (m + CPU_MATMUL_TILE - 1) / CPU_MATMUL_TILE;
    const int direct = w->type == LOOM_TYPE_F32;
    float *wbuf = cpu_scratch(t, ith);
    const float *wrow[CPU_MATMUL_TILE];
    int64_t b0, b1;
    cpu_range(x->ne[3] * x->ne[2] * tiles, ith, nth, &b0, &b1);
    for (int64_t b = b0; b < b1; b++) {
        const int64_t tile = b % tiles, i2 = (b / tiles) % x->ne[2], i3 = b / (tiles * x->ne[2]);
        const int64_t j0 = tile * CPU_MATMUL_TILE;
        const int64_t nj = m - j0 < CPU_MATMUL_TILE ? m - j0 : CPU_MATMUL_TILE;
        for (int64_t jj = 0; jj < nj; jj++) {
            const char *src = cpu_row(w, j0 + jj, i2 / r2, i3 / r3);
            if (direct) {
                wrow[jj] = (const float *)(const void *)src;
            } else {
                lbu_to_float_row(w->type, src, wbuf + jj * k, k);
                wrow[jj] = wbuf + jj * k;
            }
        }
        for (int64_t i1 = 0; i1 < n; i1++) {
            const float *xr = (const float *)(const void *)cpu_row(x, i1, i2, i3);
            float *yr = (float *)(void *)cpu_row(y, i1, i2, i3);
            for (int64_t jj = 0; jj < nj; jj++)
                yr[j0 + jj] = cpu_dot(xr, wrow[jj], k);
        }
    }
}

/* ---- ATTENTION ---- */

/*
 * For query token t (ne2) and head h (ne1): keys 0..min(i[0] + t, n_kv - 1) of KV head
 * h / (n_head / n_head_kv); scores = scale * q.k, softmax, output = sum p_j v_j.
 */
void cpu_attention(void *task, int ith, int nth) {
    const cpu_task *t = task;
    const loom_tensor_view *q = t->src[0], *kc = t->src[1], *vc = t->src[2], *y = t->dst;
    const int64_t hd = q->ne[0], n_head = q->ne[1], n_tok = q->ne[2];
    const int64_t n_kv = kc->ne[2], group = n_head / kc->ne[1];
    const int64_t first = t->p->i[0];
    const float scale = t->p->f[0] != 0.0f ? t->p->f[0] : (float)(1.0 / sqrt((double)hd));
    float *scores = cpu_scratch(t, ith); /* n_kv */
    float *krow = scores + n_kv;         /* hd */
    float *acc = krow + hd;              /* hd */
    int64_t r0, r1;
    cpu_range(n_tok * n_head, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const int64_t h = r % n_head, tok = r / n_head, kvh = h / group;
        int64_t len = first + tok + 1;
        if (len > n_kv) len = n_kv;
        const float *qr = (const float *)(const void *)cpu_row(q, h, tok, 0);
        float mx = -INFINITY;
        for (int64_t j = 0; j < len; j++) {
            const char *kr = cpu_row(kc, kvh, j, 0);
            const float *kf = (const float *)(const void *)kr;
            if (kc->type != LOOM_TYPE_F32) {
                lbu_to_float_row(kc->type, kr, krow, hd);
                kf = krow;
            }
            scores[j] = cpu_dot(qr, kf, hd) * scale;
            if (scores[j] > mx) mx = scores[j];
        }
        double sum = 0.0;
        for (int64_t j = 0; j < len; j++) {
            scores[j] = expf(scores[j] - mx);
            sum += (double)scores[j];
        }
        const float inv = (float)(1.0 / sum);
        for (int64_t i = 0; i < hd; i++)
            acc[i] = 0.0f;
        for (int64_t j = 0; j < len; j++) {
            const char *vr = cpu_row(vc, kvh, j, 0);
            const float *vf = (const float *)(const void *)vr;
            if (vc->type != LOOM_TYPE_F32) {
                lbu_to_float_row(vc->type, vr, krow, hd);
                vf = krow;
            }
            const float p = scores[j] * inv;
            for (int64_t i = 0; i < hd; i++)
                acc[i] += p * vf[i];
        }
        float *yr = (float *)(void *)cpu_row(y, h, tok, 0);
        memcpy(yr, acc, (size_t)hd * sizeof(float));
    }
}

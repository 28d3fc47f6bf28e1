/*
 * attention.c - fused causal attention: for query token t and head h (KV head h / (n_head /
 * n_head_kv)), out = softmax(scale * q . K[0..i0+t]) V. Work items are (KV head, block of query
 * tokens): F16 keys and values are converted once per item and serve every query head of the
 * group and every token of the block.
 */
#include "cpu_opt.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CO_CLONES
#endif

#define ATT_TBLOCK 16

CO_CLONES static float dot(const float *a, const float *b, int64_t n) {
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] += a[i + j] * b[i + j];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    for (int j = 0; j < 16; j++) s += lanes[j];
    return s;
}

CO_CLONES static void axpy(float *d, const float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += s * x[i];
}

static int kv_ok(co_cview v, int64_t hd) {
    return v && (v->type == LOOM_TYPE_F32 || v->type == LOOM_TYPE_F16) && v->nb[0] == (int64_t)co_type_size(v->type) &&
           v->ne[0] == hd && v->ne[3] == 1 && v->data;
}

int co_supports_attention(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    (void)p;
    if (n < 3 || !src[0]) return 0;
    co_cview q = src[0], k = src[1], v = src[2];
    if (q->type != LOOM_TYPE_F32 || q->nb[0] != 4 || dst->type != LOOM_TYPE_F32 || dst->nb[0] != 4) return 0;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (dst->ne[d] != q->ne[d]) return 0;
    int64_t hd = q->ne[0];
    if (q->ne[3] != 1 || !kv_ok(k, hd) || !kv_ok(v, hd)) return 0;
    if (k->ne[1] != v->ne[1] || k->ne[2] != v->ne[2]) return 0;
    if (k->ne[1] <= 0 || q->ne[1] % k->ne[1]) return 0;
    return 1;
}

typedef struct att_job {
    co_device *dev;
    co_cview dst, q, k, v;
    float scale;
    int64_t i0;
    int64_t n_items;
    size_t local_bytes;
} att_job;

/* Rows 0..n-1 of KV head g as f32 with a row stride (floats): in place for F32, converted
 * into buf for F16. */
static const float *kv_rows(co_cview t, int64_t g, int64_t n, float *buf, int64_t *stride) {
    int64_t hd = t->ne[0];
    if (t->type == LOOM_TYPE_F32 && t->nb[2] % 4 == 0) {
        *stride = t->nb[2] / 4;
        return (const float *)(const void *)((const uint8_t *)t->data + g * t->nb[1]);
    }
    *stride = hd;
    for (int64_t j = 0; j < n; j++) {
        const uint8_t *row = (const uint8_t *)t->data + g * t->nb[1] + j * t->nb[2];
        if (t->type == LOOM_TYPE_F32) memcpy(buf + j * hd, row, (size_t)hd * 4);
        else co_f16_to_f32_row((const uint16_t *)(const void *)row, buf + j * hd, hd);
    }
    return buf;
}

static void att_task(void *arg, int64_t i0, int64_t i1, int ith) {
    att_job *j = arg;
    co_cview q = j->q, dst = j->dst;
    int64_t hd = q->ne[0], n_head = q->ne[1], n_tok = q->ne[2];
    int64_t n_kv = j->k->ne[2], n_kvh = j->k->ne[1], grp = n_head / n_kvh;
    int64_t n_tb = (n_tok + ATT_TBLOCK - 1) / ATT_TBLOCK;
    uint8_t *local = co_scratch_get(&j->dev->local[ith], j->local_bytes);
    float *kb = (float *)(void *)local;
    float *vb = kb + n_kv * hd;
    float *sc = vb + n_kv * hd;
    for (int64_t it = i0; it < i1; it++) {
        int64_t g = it / n_tb, tb = it % n_tb;
        int64_t t0 = tb * ATT_TBLOCK, t1 = t0 + ATT_TBLOCK < n_tok ? t0 + ATT_TBLOCK : n_tok;
        int64_t vis_max = j->i0 + t1;
        if (vis_max > n_kv) vis_max = n_kv;
        if (vis_max < 0) vis_max = 0;
        int64_t ks, vs;
        const float *K = kv_rows(j->k, g, vis_max, kb, &ks);
        const float *V = kv_rows(j->v, g, vis_max, vb, &vs);
        for (int64_t t = t0; t < t1; t++) {
            int64_t nv = j->i0 + t + 1;
            if (nv > n_kv) nv = n_kv;
            if (nv < 0) nv = 0;
            for (int64_t h = g * grp; h < (g + 1) * grp; h++) {
                const float *qr = co_row_f32(q, h, t, 0);
                float *o = co_row_f32(dst, h, t, 0);
                memset(o, 0, (size_t)hd * sizeof(float));
                if (nv == 0) continue;
                float mx = -INFINITY;
                for (int64_t k = 0; k < nv; k++) {
                    float s = dot(qr, K + k * ks, hd) * j->scale;
                    sc[k] = s;
                    if (s > mx) mx = s;
                }
                float sum = co_exp_sum(sc, sc, nv, mx);
                for (int64_t k = 0; k < nv; k++) axpy(o, V + k * vs, sc[k], hd);
                float inv = 1.0f / sum;
                for (int64_t d = 0; d < hd; d++) o[d] *= inv;
            }
        }
    }
}

loom_status co_op_attention(co_device *dev, const loom_op_params *p, co_cview dst, co_cview q, co_cview k,
                            co_cview v) {
    att_job j;
    memset(&j, 0, sizeof j);
    j.dev = dev;
    j.dst = dst;
    j.q = q;
    j.k = k;
    j.v = v;
    j.scale = p->f[0] != 0.0f ? p->f[0] : 1.0f / sqrtf((float)q->ne[0]);
    j.i0 = p->i[0];
    int64_t n_tok = q->ne[2], hd = q->ne[0], n_kv = k->ne[2];
    j.n_items = k->ne[1] * ((n_tok + ATT_TBLOCK - 1) / ATT_TBLOCK);
    j.local_bytes = ((size_t)n_kv * (size_t)hd * 2 + (size_t)n_kv + 16) * sizeof(float);
    int nth = dev->n_threads;
    if (j.n_items < nth) nth = (int)j.n_items;
    if ((double)n_tok * (double)q->ne[1] * (double)n_kv * (double)hd < 16384.0) nth = 1;
    for (int i = 0; i < nth; i++)
        if (!co_scratch_get(&dev->local[i], j.local_bytes))
            return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "attention: cannot allocate %zu bytes", j.local_bytes);
    co_parallel_for(dev->pool, nth < 1 ? 1 : nth, j.n_items, 1, att_task, &j);
    return LOOM_OK;
}

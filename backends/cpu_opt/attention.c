/*
 * attention.c - fused causal attention: for query token t and head h (KV head h / (n_head /
 * n_head_kv)), out = softmax(scale * q . K[0..i0+t]) V. Work items are (KV head, block of query
 * tokens); the keys and values an item needs are packed once into matmul tiles and serve every
 * query head of the group and every token of the block; both products run on the tile kernels.
 */
#include "cpu_opt.h"

#include <math.h>

#define ATT_TBLOCK 16

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
    co_fgemm_fn fgemm;
    float scale;
    int64_t i0;
    int64_t n_items;
    int64_t nq_max; /* queries per item: heads per KV head x tokens per block */
    size_t local_bytes;
} att_job;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/*
 * One item = one KV head g and a block of query tokens [t0, t1): nq = grp * (t1 - t0) queries
 * (q = (t - t0) * grp + head within the group). Keys 0 .. vis-1 are packed as tiles of 16 keys
 * (k-major over hd, K's own type), values as tiles of 16 head dimensions (k-major over keys),
 * so that both products run on the matmul tile kernels: S = (scale q) K^T gives 16 scores per
 * register, O = P V gives 16 output dimensions per register.
 */
static void att_task(void *arg, int64_t i0, int64_t i1, int ith) {
    att_job *j = arg;
    co_cview q = j->q, dst = j->dst, K = j->k, V = j->v;
    const int64_t hd = q->ne[0], n_head = q->ne[1], n_tok = q->ne[2];
    const int64_t n_kv = K->ne[2], n_kvh = K->ne[1], grp = n_head / n_kvh;
    const int64_t n_tb = (n_tok + ATT_TBLOCK - 1) / ATT_TBLOCK;
    const int64_t n_vt = (hd + CO_TILE - 1) / CO_TILE;
    const size_t ves = co_type_size(V->type);
    uint8_t *local = co_scratch_get(&j->dev->local[ith], j->local_bytes);
    const int64_t kv16 = (n_kv + CO_TILE - 1) / CO_TILE * CO_TILE;
    const size_t ktb = co_tile_bytes(K->type, hd);
    uint8_t *ktiles = local;
    uint8_t *vtiles = ktiles + align64(ktb * (size_t)(kv16 / CO_TILE));
    const size_t vtb = align64((size_t)kv16 * CO_TILE * ves);
    float *xq = (float *)(void *)(vtiles + vtb * (size_t)n_vt);
    float *S = xq + align64((size_t)(hd * j->nq_max) * 4) / 4;
    float *pp = S + align64((size_t)(j->nq_max * kv16) * 4) / 4;
    float *O = pp + align64((size_t)(kv16 * j->nq_max) * 4) / 4;
    for (int64_t it = i0; it < i1; it++) {
        const int64_t g = it / n_tb, tb = it % n_tb;
        const int64_t t0 = tb * ATT_TBLOCK, t1 = t0 + ATT_TBLOCK < n_tok ? t0 + ATT_TBLOCK : n_tok;
        const int64_t nq = grp * (t1 - t0);
        int64_t vis = j->i0 + t1;
        if (vis > n_kv) vis = n_kv;
        if (vis <= 0) { /* nothing visible: zeros */
            for (int64_t t = t0; t < t1; t++)
                for (int64_t h = g * grp; h < (g + 1) * grp; h++) memset(co_row_f32(dst, h, t, 0), 0, (size_t)hd * 4);
            continue;
        }
        const int64_t n_kt = (vis + CO_TILE - 1) / CO_TILE;
        /* keys: tiles of 16 keys */
        const uint8_t *kbase = (const uint8_t *)K->data + g * K->nb[1];
        for (int64_t kt = 0; kt < n_kt; kt++) {
            int nr = (int)(vis - kt * CO_TILE < CO_TILE ? vis - kt * CO_TILE : CO_TILE);
            co_tile_pack(K->type, kbase + kt * CO_TILE * K->nb[2], K->nb[2], nr, hd, ktiles + (size_t)kt * ktb);
        }
        /* values: tile i holds dimensions 16i .. 16i+15 of every key, key-major */
        const uint8_t *vbase = (const uint8_t *)V->data + g * V->nb[1];
        const size_t vtb_used = align64((size_t)vis * CO_TILE * ves);
        for (int64_t vt = 0; vt < n_vt; vt++) {
            uint8_t *tile = vtiles + (size_t)vt * vtb_used;
            int64_t d0 = vt * CO_TILE, nd = hd - d0 < CO_TILE ? hd - d0 : CO_TILE;
            for (int64_t key = 0; key < vis; key++) {
                uint8_t *o = tile + (size_t)key * CO_TILE * ves;
                memcpy(o, vbase + key * V->nb[2] + d0 * (int64_t)ves, (size_t)nd * ves);
                if (nd < CO_TILE) memset(o + nd * ves, 0, (size_t)(CO_TILE - nd) * ves);
            }
        }
        /* queries, scaled, packed k-major */
        for (int64_t t = t0; t < t1; t++)
            for (int64_t hh = 0; hh < grp; hh++) {
                const float *qr = co_row_f32(q, g * grp + hh, t, 0);
                int64_t qi = (t - t0) * grp + hh;
                for (int64_t d = 0; d < hd; d++) xq[d * nq + qi] = qr[d] * j->scale;
            }
        const int64_t lds = n_kt * CO_TILE;
        j->fgemm(K->type, ktiles, ktb, (int)n_kt, hd, xq, (int)nq, S, lds, (int)(vis - (n_kt - 1) * CO_TILE));
        /* softmax per query over its visible keys; probabilities packed key-major */
        for (int64_t qi = 0; qi < nq; qi++) {
            int64_t t = t0 + qi / grp;
            int64_t nv = j->i0 + t + 1;
            if (nv > vis) nv = vis;
            if (nv < 0) nv = 0;
            float *row = S + qi * lds;
            float inv = 0.0f;
            if (nv > 0) {
                float mx = row[0];
                for (int64_t k = 1; k < nv; k++) mx = row[k] > mx ? row[k] : mx;
                inv = 1.0f / co_exp_sum(row, row, nv, mx);
            }
            for (int64_t k = 0; k < nv; k++) pp[k * nq + qi] = row[k] * inv;
            for (int64_t k = nv; k < vis; k++) pp[k * nq + qi] = 0.0f;
        }
        const int64_t ldo = n_vt * CO_TILE;
        j->fgemm(V->type, vtiles, vtb_used, (int)n_vt, vis, pp, (int)nq, O, ldo, (int)(hd - (n_vt - 1) * CO_TILE));
        for (int64_t qi = 0; qi < nq; qi++) {
            int64_t t = t0 + qi / grp, h = g * grp + qi % grp;
            memcpy(co_row_f32(dst, h, t, 0), O + qi * ldo, (size_t)hd * 4);
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
    j.fgemm = dev->kern[dev->isa].fgemm;
    j.scale = p->f[0] != 0.0f ? p->f[0] : 1.0f / sqrtf((float)q->ne[0]);
    j.i0 = p->i[0];
    int64_t n_tok = q->ne[2], hd = q->ne[0], n_kv = k->ne[2], grp = q->ne[1] / k->ne[1];
    j.n_items = k->ne[1] * ((n_tok + ATT_TBLOCK - 1) / ATT_TBLOCK);
    j.nq_max = grp * (n_tok < ATT_TBLOCK ? n_tok : ATT_TBLOCK);
    size_t kv16 = (size_t)((n_kv + CO_TILE - 1) / CO_TILE * CO_TILE), hd16 = (size_t)((hd + CO_TILE - 1) / CO_TILE);
    size_t nq = (size_t)j.nq_max;
    j.local_bytes = align64(co_tile_bytes(k->type, hd) * (kv16 / CO_TILE)) +
                    align64(kv16 * CO_TILE * co_type_size(v->type)) * hd16 + align64((size_t)hd * nq * 4) +
                    align64(nq * kv16 * 4) + align64(kv16 * nq * 4) + align64(nq * hd16 * CO_TILE * 4) + 64;
    int nth = dev->n_threads;
    if (j.n_items < nth) nth = (int)j.n_items;
    if ((double)n_tok * (double)q->ne[1] * (double)n_kv * (double)hd < 16384.0) nth = 1;
    for (int i = 0; i < nth; i++)
        if (!co_scratch_get(&dev->local[i], j.local_bytes))
            return co_error(dev, LOOM_ERR_OUT_OF_MEMORY, "attention: cannot allocate %zu bytes", j.local_bytes);
    co_parallel_for(dev->pool, nth < 1 ? 1 : nth, j.n_items, 1, att_task, &j);
    return LOOM_OK;
}

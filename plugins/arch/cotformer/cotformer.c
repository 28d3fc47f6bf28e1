/*
 * cotformer.c - CoTFormer (Mohtashami et al., 2024) as in the official code
 * (github.com/epfml/CoTFormer): begin layers, a middle stack run n_repeat times with shared
 * weights, end layers, ln_f and the tied head.
 *
 *  - Cross-repeat attention: every middle layer keeps K/V for every repeat; the query of token i
 *    at repeat r attends to (token j, repeat s) with j <= i and s <= r. RoPE uses the token
 *    position at every repeat. With a KV cache each middle layer holds one cache per repeat
 *    (slots r * n_ctx + j); begin / end layers hold ordinary caches.
 *  - LN-CoTFormer (cotformer_full_depth_lnmid_depthemb): before repeat r (0-based) the depth
 *    embedding of index R-1-r is added ("linear_learned": (R-1-r) * e, zero at the last repeat;
 *    "learned": row R-1-r of a table); after every repeat ln_mid.
 *  - Adaptive mixture of repeats (adaptive_cotformer_..._single_final): after repeat r < R-1 the
 *    router r scores each token, w = sigmoid(score); a token that continues gets
 *    x = x_in * (1 - w) + x_new * w from its next repeat. The official evaluation picks the
 *    top tokens of the whole sequence (not causal); here a token continues when
 *    w >= cotformer.halt_threshold (default 0: every token runs every repeat, which is the
 *    official result with all length factors 1). A halted token keeps its output and adds no
 *    K/V to later repeats.
 */
#include "arch_common.h"

#include <math.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#define CF_NAME       "cotformer"
#define CF_MAX_LAYERS 512
#define CF_MAX_REPEAT 64

enum { CF_DEPTH_NONE = 0, CF_DEPTH_LINEAR = 1, CF_DEPTH_LEARNED = 2 };

typedef struct cf_model {
    ac_model base;
    int64_t n_begin, n_mid, n_end, n_repeat;
    int32_t depth_emb; /* CF_DEPTH_* */
    int32_t adaptive;
    float halt_threshold;
    ac_block *blocks;         /* begin, mid, end: n_layer */
    loom_tensor *depth_table; /* [C, 1] or [C, R] */
    loom_tensor *ln_mid;      /* or NULL */
    loom_tensor **routers;    /* [R]: transformer.mod.{r}.mod_router.weight [C, 1] or NULL */
} cf_model;
_Static_assert(offsetof(cf_model, base) == 0, "ac_model_dims reads the model as its ac_model");

typedef struct cf_ctx {
    cf_model *model;
    ac_kv *kv; /* n_layer; middle layers have n_repeat * n_ctx slots */
    int64_t n_ctx;
    uint8_t *depth; /* repeats run by each cached token */
} cf_ctx;

static const loom_host_api *g_host;

static int32_t cf_match(void *state, const loom_model *model) {
    (void)state;
    ac_model m;
    ac_probe_init(&m, g_host, model, CF_NAME);
    const int32_t by_name = ac_match_name(&m);
    if (by_name >= 0) return by_name;
    if (ac_weight(&m, "transformer.h_mid.0.attn.c_attn.weight")) return 80;
    return 0;
}

static int64_t count_blocks(const ac_model *m, const char *stack) {
    int64_t n = 0;
    while (n < CF_MAX_LAYERS && ac_weightf(m, "transformer.%s.%lld.ln_1.weight", stack, (long long)n))
        n++;
    return n;
}

static void cf_model_free(void *arch_model) {
    cf_model *cm = arch_model;
    if (!cm) return;
    g_host->free(cm->blocks);
    g_host->free(cm->routers);
    g_host->free(cm);
}

static loom_status cf_model_init(void *state, const loom_model *model, void **arch_model, char *err, size_t err_size) {
    (void)state;
    static const char *const k_begin[] = {"n_layer_begin", NULL};
    static const char *const k_end[] = {"n_layer_end", NULL};
    static const char *const k_rep[] = {"n_repeat", NULL};
    static const char *const k_depth[] = {"depth_embedding", NULL};
    static const char *const emb[] = {"transformer.wte.weight", NULL};
    static const char *const norm[] = {"transformer.ln_f.weight", NULL};
    static const char *const head[] = {"lm_head.weight", NULL};
    *arch_model = NULL;
    cf_model *cm = g_host->alloc(sizeof *cm);
    if (!cm) return LOOM_ERR_OUT_OF_MEMORY;
    memset(cm, 0, sizeof *cm);
    ac_model *m = &cm->base;
    m->host = g_host;
    m->model = model;
    m->arch = CF_NAME;
    loom_status st = LOOM_ERR_FORMAT;

    /* Stack sizes: from the metadata when present, checked against the weights. */
    const int64_t nb = count_blocks(m, "h_begin"), nm = count_blocks(m, "h_mid"), ne = count_blocks(m, "h_end");
    if (ac_get_int(m, "layer_count_begin", k_begin, &cm->n_begin) != LOOM_OK) cm->n_begin = nb;
    if (ac_get_int(m, "layer_count_end", k_end, &cm->n_end) != LOOM_OK) cm->n_end = ne;
    cm->n_mid = nm;
    if (cm->n_begin != nb || cm->n_end != ne || nm == 0) {
        snprintf(err, err_size,
                 "cotformer: metadata says %lld begin / %lld end layers, weights have %lld / %lld "
                 "(and %lld middle layers)",
                 (long long)cm->n_begin, (long long)cm->n_end, (long long)nb, (long long)ne, (long long)nm);
        goto fail;
    }
    m->n_layer = cm->n_begin + cm->n_mid + cm->n_end;
    int64_t n_layer_meta = 0;
    static const char *const k_layer[] = {"n_layer", NULL};
    if (ac_get_int(m, "block_count", k_layer, &n_layer_meta) == LOOM_OK && n_layer_meta != m->n_layer) {
        snprintf(err, err_size, "cotformer: n_layer %lld does not match the %lld blocks found", (long long)n_layer_meta,
                 (long long)m->n_layer);
        goto fail;
    }
    if (ac_get_int(m, "repeat_count", k_rep, &cm->n_repeat) != LOOM_OK || cm->n_repeat < 1 ||
        cm->n_repeat > CF_MAX_REPEAT) {
        snprintf(err, err_size, "cotformer: n_repeat (cotformer.repeat_count) is missing or not in 1..%d",
                 CF_MAX_REPEAT);
        goto fail;
    }
    if ((st = ac_model_init_gpt(m, emb, norm, head, err, err_size))) goto fail;
    st = LOOM_ERR_FORMAT;

    /* Depth embedding. */
    const char *de = NULL;
    cm->depth_table = ac_weight(m, "depth_emb.embs.weight");
    if (ac_get_string(m, "depth_embedding", k_depth, &de) == LOOM_OK && strcmp(de, "none") != 0) {
        if (!strcmp(de, "linear_learned")) {
            cm->depth_emb = CF_DEPTH_LINEAR;
        } else if (!strcmp(de, "learned")) {
            cm->depth_emb = CF_DEPTH_LEARNED;
        } else {
            snprintf(err, err_size, "cotformer: unknown depth_embedding '%s'", de);
            goto fail;
        }
    } else if (cm->depth_table && !de) {
        cm->depth_emb = ac_weight_shape_is(m, cm->depth_table, m->n_embd, 1) ? CF_DEPTH_LINEAR : CF_DEPTH_LEARNED;
    }
    if (cm->depth_emb != CF_DEPTH_NONE) {
        const int64_t rows = cm->depth_emb == CF_DEPTH_LINEAR ? 1 : cm->n_repeat;
        if (!cm->depth_table || !ac_weight_shape_is(m, cm->depth_table, m->n_embd, rows)) {
            snprintf(err, err_size, "cotformer: depth_emb.embs.weight is missing or not [%lld, %lld]",
                     (long long)m->n_embd, (long long)rows);
            goto fail;
        }
    } else {
        cm->depth_table = NULL;
    }
    int64_t disable_ln_mid = 0;
    static const char *const k_dis[] = {"disable_ln_mid", NULL};
    if (ac_get_int(m, "ln_mid", NULL, &disable_ln_mid) == LOOM_OK)
        disable_ln_mid = !disable_ln_mid;
    else if (ac_get_int(m, NULL, k_dis, &disable_ln_mid) != LOOM_OK)
        disable_ln_mid = 0;
    cm->ln_mid = disable_ln_mid ? NULL : ac_weight(m, "transformer.ln_mid.weight");
    if (cm->ln_mid && !ac_weight_shape_is(m, cm->ln_mid, m->n_embd, 1)) {
        snprintf(err, err_size, "cotformer: transformer.ln_mid.weight is not [%lld]", (long long)m->n_embd);
        goto fail;
    }

    /* Routers (adaptive mixture of repeats). Router r weights the update of repeat r+1. */
    st = LOOM_ERR_OUT_OF_MEMORY;
    cm->routers = g_host->alloc(sizeof(loom_tensor *) * (size_t)cm->n_repeat);
    cm->blocks = g_host->alloc(sizeof(ac_block) * (size_t)m->n_layer);
    if (!cm->routers || !cm->blocks) goto fail;
    st = LOOM_ERR_FORMAT;
    int64_t n_routers = 0;
    for (int64_t r = 0; r < cm->n_repeat; r++) {
        cm->routers[r] =
            r + 1 < cm->n_repeat ? ac_weightf(m, "transformer.mod.%lld.mod_router.weight", (long long)r) : NULL;
        if (cm->routers[r]) {
            n_routers++;
            if (!ac_weight_shape_is(m, cm->routers[r], m->n_embd, 1)) {
                snprintf(err, err_size, "cotformer: router %lld is not [%lld]", (long long)r, (long long)m->n_embd);
                goto fail;
            }
        }
    }
    cm->adaptive = n_routers > 0;
    if (cm->adaptive && n_routers != cm->n_repeat - 1) {
        snprintf(err, err_size, "cotformer: %lld routers found, an adaptive model needs %lld", (long long)n_routers,
                 (long long)(cm->n_repeat - 1));
        goto fail;
    }
    double thr = 0;
    if (ac_get_float(m, "halt_threshold", NULL, &thr) != LOOM_OK) thr = 0;
    if (!(thr >= 0 && thr <= 1)) {
        snprintf(err, err_size, "cotformer: halt_threshold %g is not in [0, 1]", thr);
        goto fail;
    }
    cm->halt_threshold = (float)thr;

    for (int64_t l = 0; l < m->n_layer; l++) {
        char prefix[64];
        if (l < cm->n_begin)
            ac_fmt(prefix, sizeof prefix, "transformer.h_begin.%lld.", (long long)l);
        else if (l < cm->n_begin + cm->n_mid)
            ac_fmt(prefix, sizeof prefix, "transformer.h_mid.%lld.", (long long)(l - cm->n_begin));
        else
            ac_fmt(prefix, sizeof prefix, "transformer.h_end.%lld.", (long long)(l - cm->n_begin - cm->n_mid));
        if ((st = ac_block_load_gpt(m, prefix, &cm->blocks[l], err, err_size))) goto fail;
    }
    *arch_model = cm;
    return LOOM_OK;
fail:
    cf_model_free(cm);
    return st ? st : LOOM_ERR_FORMAT;
}

static void cf_context_free(void *arch_ctx) {
    cf_ctx *c = arch_ctx;
    if (!c) return;
    g_host->free(c->kv);
    g_host->free(c->depth);
    g_host->free(c);
}

static loom_status cf_context_init(void *arch_model, loom_exec *exec, const loom_arch_params *params, void **arch_ctx) {
    cf_model *cm = arch_model;
    const ac_model *m = &cm->base;
    *arch_ctx = NULL;
    cf_ctx *c = g_host->alloc(sizeof *c);
    if (!c) return LOOM_ERR_OUT_OF_MEMORY;
    memset(c, 0, sizeof *c);
    c->model = cm;
    c->n_ctx = params->n_ctx;
    c->kv = g_host->alloc(sizeof(ac_kv) * (size_t)m->n_layer);
    c->depth = g_host->alloc((size_t)c->n_ctx + 1);
    if (!c->kv || !c->depth) {
        cf_context_free(c);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    memset(c->depth, 0, (size_t)c->n_ctx + 1);
    ac_env e;
    ac_env_init(&e, m, exec);
    for (int64_t l = 0; l < m->n_layer && !e.status; l++) {
        const int mid = l >= cm->n_begin && l < cm->n_begin + cm->n_mid;
        ac_kv_alloc(&e, &c->kv[l], mid ? cm->n_repeat * c->n_ctx : c->n_ctx, params->kv_type);
        if (mid) {
            /* Slots of halted tokens are masked but read: they must hold finite values. */
            static const uint8_t zeros[4096];
            const uint64_t es = c->kv[l].type == LOOM_TYPE_F16 ? 2 : 4;
            const uint64_t bytes = (uint64_t)c->kv[l].n_slots * (uint64_t)(m->head_dim * m->n_head_kv) * es;
            for (uint64_t off = 0; off < bytes && !e.status; off += sizeof zeros) {
                const uint64_t n = bytes - off < sizeof zeros ? bytes - off : sizeof zeros;
                ac_write(&e, c->kv[l].k, off, zeros, n);
                ac_write(&e, c->kv[l].v, off, zeros, n);
            }
        }
    }
    if (e.status) {
        cf_context_free(c);
        return e.status;
    }
    *arch_ctx = c;
    return LOOM_OK;
}

static loom_status cf_context_reset(void *arch_ctx) {
    cf_ctx *c = arch_ctx;
    memset(c->depth, 0, (size_t)c->n_ctx + 1);
    return LOOM_OK;
}

/* Per-chunk bookkeeping of the repeat loop. */
typedef struct cf_pass {
    int64_t n_past, T, n_alive;
    int32_t *alive_idx; /* [T]: chunk indices of alive tokens (first n_alive) */
    uint8_t *ran;       /* [R][T]: token t ran repeat s */
    float *w;           /* [T]: router weight for the next update */
    float *mask;        /* [n_alive][(r+1) * n_kv] */
} cf_pass;

/* Additive mask for repeat r: key (s, j) at index s * n_kv + j. */
static void build_mask(const cf_ctx *c, const cf_pass *p, int64_t r, float *mask) {
    const int64_t n_kv = p->n_past + p->T, nk = (r + 1) * n_kv;
    for (int64_t i = 0; i < p->n_alive; i++) {
        const int64_t P = p->n_past + p->alive_idx[i];
        float *row = mask + i * nk;
        for (int64_t s = 0; s <= r; s++) {
            for (int64_t j = 0; j < n_kv; j++) {
                int vis = j <= P;
                if (vis) vis = j < p->n_past ? c->depth[j] > s : p->ran[s * p->T + (j - p->n_past)];
                row[s * n_kv + j] = vis ? 0.0f : -INFINITY;
            }
        }
    }
}

/* One middle block at repeat r for the alive tokens xa [C, n_alive]. */
static loom_tensor *mid_block(ac_env *e, cf_ctx *c, const cf_pass *p, int64_t l, int64_t r, loom_tensor *xa,
                              loom_tensor *pos) {
    const cf_model *cm = c->model;
    const ac_model *m = &cm->base;
    const ac_block *b = &cm->blocks[l];
    ac_kv *kv = &c->kv[l];
    const int64_t hd = m->head_dim, H = m->n_head_kv, n_kv = p->n_past + p->T;
    loom_tensor *q, *k, *v;
    ac_qkv(e, b, ac_norm(e, xa, b->attn_norm), pos, &q, &k, &v);
    if (p->n_alive == p->T) {
        ac_kv_store(e, kv, r * c->n_ctx + p->n_past, k, v);
    } else {
        const int64_t one[3] = {hd, H, 1};
        for (int64_t i = 0; i < p->n_alive && !e->status; i++) {
            const uint64_t off = (uint64_t)(i * H * hd * 4);
            ac_kv_store(e, kv, r * c->n_ctx + p->n_past + p->alive_idx[i], ac_view(e, k, 3, one, NULL, off),
                        ac_view(e, v, 3, one, NULL, off));
        }
    }
    /* Keys of repeats 0..r, tokens 0..n_kv-1, compacted to [hd, H, (r+1) * n_kv]. */
    loom_tensor *K, *V;
    if (r == 0) {
        K = ac_kv_view_k(e, kv, 0, n_kv);
        V = ac_kv_view_v(e, kv, 0, n_kv);
    } else {
        const int64_t es = kv->type == LOOM_TYPE_F16 ? 2 : 4;
        const int64_t ne4[4] = {hd, H, n_kv, r + 1};
        const int64_t nb4[4] = {es, hd * es, H * hd * es, c->n_ctx * H * hd * es};
        const int64_t ne3[3] = {hd, H, n_kv * (r + 1)};
        K = ac_view(e, ac_cont(e, ac_view(e, kv->k, 4, ne4, nb4, 0), kv->type), 3, ne3, NULL, 0);
        V = ac_view(e, ac_cont(e, ac_view(e, kv->v, 4, ne4, nb4, 0), kv->type), 3, ne3, NULL, 0);
    }
    loom_tensor *a = ac_attention_masked(e, q, K, V, p->mask);
    xa = ac_add(e, xa, ac_attn_out(e, b, a));
    return ac_ffn_residual(e, b, xa);
}

static loom_status cf_forward(void *arch_ctx, loom_exec *exec, const int32_t *tokens, uint32_t n_tokens,
                              uint32_t n_past, loom_tensor *logits) {
    cf_ctx *c = arch_ctx;
    const cf_model *cm = c->model;
    const ac_model *m = &cm->base;
    const int64_t C = m->n_embd, T = n_tokens, R = cm->n_repeat;
    ac_env e;
    ac_env_init(&e, m, exec);
    if (n_tokens == 0) return LOOM_OK;
    if (ac_check_tokens(&e, tokens, n_tokens, n_past, c->n_ctx)) return e.status;
    cf_pass p;
    memset(&p, 0, sizeof p);
    p.n_past = n_past;
    p.T = T;
    p.n_alive = T;
    const int64_t n_kv = n_past + T;
    p.alive_idx = g_host->alloc(sizeof(int32_t) * (size_t)T);
    p.ran = g_host->alloc((size_t)(R * T));
    p.w = g_host->alloc(sizeof(float) * (size_t)T);
    p.mask = g_host->alloc(sizeof(float) * (size_t)(T * R * n_kv));
    float *rows = g_host->alloc(sizeof(float) * (size_t)(3 * T * C));
    if (!p.alive_idx || !p.ran || !p.w || !p.mask || !rows) {
        ac_fail(&e, LOOM_ERR_OUT_OF_MEMORY, "scratch for %u tokens", n_tokens);
        goto done;
    }
    memset(p.ran, 0, (size_t)(R * T));
    for (int64_t t = 0; t < T; t++) {
        p.alive_idx[t] = (int32_t)t;
        p.w[t] = 1.0f;
    }

    loom_tensor *x = ac_get_rows(&e, m->tok_embd, ac_i32(&e, tokens, T));
    loom_tensor *pos = ac_positions(&e, n_past, T);
    int64_t l = 0;
    for (; l < cm->n_begin; l++)
        x = ac_block_forward_cached(&e, &cm->blocks[l], x, pos, &c->kv[l], n_past);

    for (int64_t r = 0; r < R && p.n_alive > 0 && !e.status; r++) {
        const int all = p.n_alive == T;
        loom_tensor *xa = x, *pa = pos;
        if (!all) {
            int32_t *posv = g_host->alloc(sizeof(int32_t) * (size_t)p.n_alive);
            if (!posv) {
                ac_fail(&e, LOOM_ERR_OUT_OF_MEMORY, "positions");
                break;
            }
            for (int64_t i = 0; i < p.n_alive; i++)
                posv[i] = (int32_t)(n_past + p.alive_idx[i]);
            xa = ac_get_rows(&e, x, ac_i32(&e, p.alive_idx, p.n_alive));
            pa = ac_i32(&e, posv, p.n_alive);
            g_host->free(posv);
        }
        for (int64_t i = 0; i < p.n_alive; i++)
            p.ran[r * T + p.alive_idx[i]] = 1;
        loom_tensor *x_in = xa;
        if (cm->depth_emb == CF_DEPTH_LINEAR && R - 1 - r != 0) {
            const int32_t zero = 0;
            loom_tensor *ev = ac_get_rows(&e, cm->depth_table, ac_i32(&e, &zero, 1));
            xa = ac_add(&e, xa, ac_scale(&e, ev, (float)(R - 1 - r)));
        } else if (cm->depth_emb == CF_DEPTH_LEARNED) {
            const int32_t idx = (int32_t)(R - 1 - r);
            xa = ac_add(&e, xa, ac_get_rows(&e, cm->depth_table, ac_i32(&e, &idx, 1)));
        }
        build_mask(c, &p, r, p.mask);
        for (int64_t j = 0; j < cm->n_mid; j++)
            xa = mid_block(&e, c, &p, cm->n_begin + j, r, xa, pa);
        if (cm->ln_mid) xa = ac_layer_norm(&e, xa, cm->ln_mid, m->norm_eps);
        const int64_t nA = p.n_alive;
        if (cm->adaptive && r >= 1) {
            /* x = x_in * (1 - w) + x_new * w, per token (w from the previous repeat's router). */
            float *xi = rows, *xn = rows + T * C;
            ac_read(&e, x_in, 0, xi, (uint64_t)(nA * C) * 4);
            ac_read(&e, xa, 0, xn, (uint64_t)(nA * C) * 4);
            for (int64_t i = 0; i < nA; i++) {
                const float w = p.w[p.alive_idx[i]];
                for (int64_t d = 0; d < C; d++)
                    xn[i * C + d] = xi[i * C + d] * (1.0f - w) + xn[i * C + d] * w;
            }
            xa = ac_new_f32_2d(&e, C, nA);
            ac_write(&e, xa, 0, xn, (uint64_t)(nA * C) * 4);
        }
        if (all) {
            x = xa;
        } else {
            float *xn = rows + 2 * T * C;
            ac_read(&e, xa, 0, xn, (uint64_t)(nA * C) * 4);
            for (int64_t i = 0; i < nA; i++)
                ac_write(&e, x, (uint64_t)(p.alive_idx[i] * C) * 4, xn + i * C, (uint64_t)C * 4);
        }
        if (cm->adaptive && r + 1 < R && !e.status) {
            float *s = rows;
            ac_read(&e, ac_matmul(&e, xa, cm->routers[r]), 0, s, (uint64_t)nA * 4);
            int64_t kept = 0;
            for (int64_t i = 0; i < nA && !e.status; i++) {
                const float w = 1.0f / (1.0f + expf(-s[i]));
                const int32_t t = p.alive_idx[i];
                p.w[t] = w;
                if (w >= cm->halt_threshold) p.alive_idx[kept++] = t;
            }
            p.n_alive = kept;
        }
    }
    for (int64_t t = 0; t < T; t++) {
        uint8_t d = 0;
        for (int64_t s = 0; s < R; s++)
            d = (uint8_t)(d + p.ran[s * T + t]);
        c->depth[n_past + t] = d;
    }
    for (l = cm->n_begin + cm->n_mid; l < m->n_layer; l++)
        x = ac_block_forward_cached(&e, &cm->blocks[l], x, pos, &c->kv[l], n_past);
    ac_head(&e, x, logits);
done:
    g_host->free(p.alive_idx);
    g_host->free(p.ran);
    g_host->free(p.w);
    g_host->free(p.mask);
    g_host->free(rows);
    return e.status;
}

static loom_status cf_describe_weights(void *arch_model, loom_weight_visit_fn visit, void *user_data) {
    const cf_model *cm = arch_model;
    const ac_model *m = &cm->base;
    int32_t r = ac_describe_ends(m, visit, user_data);
    for (int64_t l = 0; l < m->n_layer && !r; l++)
        r = ac_describe_block(m, &cm->blocks[l], (int32_t)l, visit, user_data);
    r = r ? r : ac_describe(m, cm->depth_table, LOOM_ROLE_MIXING, -1, 0, NULL, NULL, visit, user_data);
    r = r ? r : ac_describe(m, cm->ln_mid, LOOM_ROLE_NORM, -1, 0, NULL, NULL, visit, user_data);
    for (int64_t k = 0; k < cm->n_repeat && !r; k++)
        r = ac_describe(m, cm->routers[k], LOOM_ROLE_MIXING, -1, 0, NULL, NULL, visit, user_data);
    return LOOM_OK;
}

static loom_status cf_export_metadata(void *arch_model, loom_meta_visit_fn visit, void *user_data) {
    const cf_model *cm = arch_model;
    ac_exporter x = {visit, user_data, CF_NAME, 0};
    ac_export_common(&x, &cm->base);
    ac_export_u32(&x, "layer_count_begin", (uint32_t)cm->n_begin);
    ac_export_u32(&x, "layer_count_mid", (uint32_t)cm->n_mid);
    ac_export_u32(&x, "layer_count_end", (uint32_t)cm->n_end);
    ac_export_u32(&x, "repeat_count", (uint32_t)cm->n_repeat);
    ac_export_str(&x, "depth_embedding",
                  cm->depth_emb == CF_DEPTH_LINEAR    ? "linear_learned"
                  : cm->depth_emb == CF_DEPTH_LEARNED ? "learned"
                                                      : "none");
    ac_export_bool(&x, "ln_mid", cm->ln_mid != NULL);
    ac_export_bool(&x, "adaptive", cm->adaptive != 0);
    ac_export_f32(&x, "halt_threshold", cm->halt_threshold);
    return LOOM_OK;
}

static const loom_arch_api cf_api = {
    sizeof(loom_arch_api), cf_match,         cf_model_init, cf_model_free,       ac_model_dims,      cf_context_init,
    cf_context_free,       cf_context_reset, cf_forward,    cf_describe_weights, cf_export_metadata,
};

static const loom_plugin_desc cf_desc = {
    sizeof(loom_plugin_desc),
    LOOM_ABI_MAJOR,
    LOOM_ABI_MINOR,
    LOOM_PLUGIN_KIND_ARCHITECTURE,
    0,
    CF_NAME,
    "0.1.0",
    "Loom",
    "CoTFormer: repeated middle layers with cross-repeat KV, LN-CoTFormer, adaptive repeats",
    0,
    NULL,
    &cf_api,
    ac_plugin_init,
    NULL,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR || !host) return NULL;
    g_host = host;
    return &cf_desc;
}

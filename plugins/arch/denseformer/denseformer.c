/*
 * denseformer.c - DenseFormer (Pagliardini et al., 2024): Depth-Weighted Averages (DWA) after
 * transformer blocks, as in the official code (github.com/epfml/DenseFormer).
 *
 * Let S_0 be the token embeddings and S_u the u-th stored state (a raw block output, never an
 * average). After stored state u, when a DWA applies there, the next block's input is
 *     Y_u = sum_{j=0..u//k} alpha_u[j] * S_{(u mod k) + j*k}          (k: dilation)
 * otherwise the block output passes on unchanged. Two official semantics:
 *  - "experiments" (experiments/models/denseformer.py): blocks in groups of p
 *    (transformer.h.{group}.{b}); a state is stored after every group and a DWA follows every
 *    group (weights.{u-1}.weight); the dilation applies to the group index;
 *  - "package" (denseformer/denseformer.py DWAModules): a state after every block; a DWA only
 *    after blocks t with t % p == 0 (dwa_modules.alphas.{t-1}.weight); the dilation applies to
 *    the block index.
 * Both are "store every s blocks, DWA every d stored states" with (s, d) = (p, 1) or (1, p).
 * The semantics is recorded in a converted file as denseformer.dwa.semantics.
 *
 * DWA mixes across depth for the same token only, so with a KV cache only the current tokens'
 * states are kept (scratch per forward call); the weighted sums run in fp32
 * (LOOM_OP_WEIGHTED_SUM).
 */
#include "arch_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#define DF_NAME       "denseformer"
#define DF_MAX_LAYERS 1024

enum { DF_EXPERIMENTS = 0, DF_PACKAGE = 1 };

typedef struct df_model {
    ac_model base;
    int32_t semantics;    /* DF_EXPERIMENTS / DF_PACKAGE */
    int64_t dilation;     /* k */
    int64_t period;       /* p */
    int64_t n_states;     /* stored states after the embedding */
    int64_t store_every;  /* blocks per stored state */
    int64_t dwa_every;    /* stored states per DWA */
    ac_block *blocks;     /* n_layer */
    loom_tensor **alphas; /* [n_states + 1]: alphas[u] or NULL */
} df_model;
_Static_assert(offsetof(df_model, base) == 0, "ac_model_dims reads the model as its ac_model");

typedef struct df_ctx {
    df_model *model;
    ac_kv *kv;             /* n_layer */
    loom_tensor **alpha32; /* F32 copies of the DWA weights, [n_states + 1] */
    int64_t n_ctx;
} df_ctx;

static const loom_host_api *g_host;

/* ---------------------------------------------------------------------------------------- */

static int has_package_alphas(const ac_model *m) {
    for (int i = 0; i < DF_MAX_LAYERS; i++)
        if (ac_weightf(m, "dwa_modules.alphas.%d.weight", i)) return 1;
    return 0;
}

static int32_t df_match(void *state, const loom_model *model) {
    (void)state;
    ac_model m;
    ac_probe_init(&m, g_host, model, DF_NAME);
    const int32_t by_name = ac_match_name(&m);
    if (by_name >= 0) return by_name;
    if (ac_weight(&m, "weights.0.weight") && ac_weight(&m, "transformer.h.0.0.attn.c_attn.weight")) return 80;
    if (has_package_alphas(&m)) return 80;
    return 0;
}

static void df_model_free(void *arch_model) {
    df_model *dm = arch_model;
    if (!dm) return;
    g_host->free(dm->blocks);
    g_host->free(dm->alphas);
    g_host->free(dm);
}

static loom_status df_model_init(void *state, const loom_model *model, void **arch_model, char *err, size_t err_size) {
    (void)state;
    static const char *const k_layer[] = {"n_layer", "n_blocks", NULL};
    static const char *const k_period_pkg[] = {"dwa_period", NULL};
    static const char *const k_period_exp[] = {"increase_T_every", NULL};
    static const char *const k_dil_pkg[] = {"dilation", NULL};
    static const char *const k_dil_exp[] = {"dilation_factor", NULL};
    static const char *const k_sem[] = {"dwa_semantics", NULL};
    *arch_model = NULL;
    df_model *dm = g_host->alloc(sizeof *dm);
    if (!dm) return LOOM_ERR_OUT_OF_MEMORY;
    memset(dm, 0, sizeof *dm);
    ac_model *m = &dm->base;
    m->host = g_host;
    m->model = model;
    m->arch = DF_NAME;
    loom_status st = LOOM_ERR_FORMAT;

    /* Which semantics: recorded, else from the weight names, else from the config. */
    const char *sem = NULL;
    if (ac_get_string(m, "dwa.semantics", k_sem, &sem) == LOOM_OK) {
        if (!strcmp(sem, "experiments")) {
            dm->semantics = DF_EXPERIMENTS;
        } else if (!strcmp(sem, "package")) {
            dm->semantics = DF_PACKAGE;
        } else {
            snprintf(err, err_size, "denseformer: unknown dwa.semantics '%s' (experiments or package)", sem);
            goto fail;
        }
    } else if (ac_weight(m, "weights.0.weight")) {
        dm->semantics = DF_EXPERIMENTS;
    } else if (has_package_alphas(m)) {
        dm->semantics = DF_PACKAGE;
    } else {
        int64_t tmp;
        if (ac_get_int(m, NULL, k_period_pkg, &tmp) == LOOM_OK) {
            dm->semantics = DF_PACKAGE;
        } else if (ac_get_int(m, NULL, k_period_exp, &tmp) == LOOM_OK) {
            dm->semantics = DF_EXPERIMENTS;
        } else {
            snprintf(err, err_size, "denseformer: cannot tell the DWA semantics (no DWA weights, no config)");
            goto fail;
        }
    }
    const int exp = dm->semantics == DF_EXPERIMENTS;
    if (ac_get_int(m, "block_count", k_layer, &m->n_layer) != LOOM_OK || m->n_layer <= 0 ||
        m->n_layer > DF_MAX_LAYERS) {
        snprintf(err, err_size, "denseformer: the number of blocks (block_count / n_layer) is missing or invalid");
        goto fail;
    }
    if (ac_get_int(m, "dwa.period", exp ? k_period_exp : k_period_pkg, &dm->period) != LOOM_OK) dm->period = 1;
    if (ac_get_int(m, "dwa.dilation", exp ? k_dil_exp : k_dil_pkg, &dm->dilation) != LOOM_OK) dm->dilation = 1;
    if (dm->period < 1 || dm->dilation < 1) {
        snprintf(err, err_size, "denseformer: period %lld and dilation %lld must be >= 1", (long long)dm->period,
                 (long long)dm->dilation);
        goto fail;
    }
    if (exp && m->n_layer % dm->period != 0) {
        snprintf(err, err_size, "denseformer: %lld blocks are not a multiple of the group size %lld",
                 (long long)m->n_layer, (long long)dm->period);
        goto fail;
    }
    dm->store_every = exp ? dm->period : 1;
    dm->dwa_every = exp ? 1 : dm->period;
    dm->n_states = m->n_layer / dm->store_every;

    static const char *const emb_exp[] = {"transformer.wte.weight", NULL};
    static const char *const emb_pkg[] = {"wte.weight", "transformer.wte.weight", NULL};
    static const char *const norm_exp[] = {"transformer.ln_f.weight", NULL};
    static const char *const norm_pkg[] = {"ln_f.weight", "transformer.ln_f.weight", NULL};
    static const char *const head[] = {"lm_head.weight", NULL};
    if ((st = ac_model_init_gpt(m, exp ? emb_exp : emb_pkg, exp ? norm_exp : norm_pkg, head, err, err_size))) goto fail;
    st = LOOM_ERR_OUT_OF_MEMORY;
    dm->blocks = g_host->alloc(sizeof(ac_block) * (size_t)m->n_layer);
    dm->alphas = g_host->alloc(sizeof(loom_tensor *) * (size_t)(dm->n_states + 1));
    if (!dm->blocks || !dm->alphas) goto fail;
    memset(dm->alphas, 0, sizeof(loom_tensor *) * (size_t)(dm->n_states + 1));
    for (int64_t t = 0; t < m->n_layer; t++) {
        char prefix[96];
        if (exp) {
            ac_fmt(prefix, sizeof prefix, "transformer.h.%lld.%lld.", (long long)(t / dm->period),
                   (long long)(t % dm->period));
        } else {
            ac_fmt(prefix, sizeof prefix, "blocks.%lld.", (long long)t);
            char probe[128];
            if (!ac_weight(m, ac_fmt(probe, sizeof probe, "%sln_1.weight", prefix)))
                ac_fmt(prefix, sizeof prefix, "transformer.h.%lld.", (long long)t);
        }
        if ((st = ac_block_load_gpt(m, prefix, &dm->blocks[t], err, err_size))) goto fail;
    }
    for (int64_t u = 1; u <= dm->n_states; u++) {
        if (u % dm->dwa_every != 0) continue;
        const int64_t n_w = u / dm->dilation + 1;
        char name[96];
        if (exp)
            ac_fmt(name, sizeof name, "weights.%lld.weight", (long long)(u - 1));
        else
            ac_fmt(name, sizeof name, "dwa_modules.alphas.%lld.weight", (long long)(u - 1));
        loom_tensor *w = ac_weight(m, name);
        if (!w) {
            /* The package semantics without any DWA module (period > n_blocks) is a plain model. */
            snprintf(err, err_size, "denseformer: DWA weight '%s' is missing", name);
            st = LOOM_ERR_FORMAT;
            goto fail;
        }
        if (!ac_weight_shape_is(m, w, n_w, 1)) {
            snprintf(err, err_size, "denseformer: DWA weight '%s' must hold %lld values (dilation %lld)", name,
                     (long long)n_w, (long long)dm->dilation);
            st = LOOM_ERR_FORMAT;
            goto fail;
        }
        dm->alphas[u] = w;
    }
    *arch_model = dm;
    return LOOM_OK;
fail:
    df_model_free(dm);
    return st ? st : LOOM_ERR_FORMAT;
}

static void df_context_free(void *arch_ctx) {
    df_ctx *c = arch_ctx;
    if (!c) return;
    g_host->free(c->kv);
    g_host->free(c->alpha32);
    g_host->free(c);
}

static loom_status df_context_init(void *arch_model, loom_exec *exec, const loom_arch_params *params, void **arch_ctx) {
    df_model *dm = arch_model;
    const ac_model *m = &dm->base;
    *arch_ctx = NULL;
    df_ctx *c = g_host->alloc(sizeof *c);
    if (!c) return LOOM_ERR_OUT_OF_MEMORY;
    memset(c, 0, sizeof *c);
    c->model = dm;
    c->n_ctx = params->n_ctx;
    c->kv = g_host->alloc(sizeof(ac_kv) * (size_t)m->n_layer);
    c->alpha32 = g_host->alloc(sizeof(loom_tensor *) * (size_t)(dm->n_states + 1));
    if (!c->kv || !c->alpha32) {
        df_context_free(c);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    memset(c->alpha32, 0, sizeof(loom_tensor *) * (size_t)(dm->n_states + 1));
    ac_env e;
    ac_env_init(&e, m, exec);
    for (int64_t l = 0; l < m->n_layer && !e.status; l++)
        ac_kv_alloc(&e, &c->kv[l], c->n_ctx, params->kv_type);
    /* fp32 copies of the DWA weights (the file may hold them as F16). */
    for (int64_t u = 1; u <= dm->n_states && !e.status; u++) {
        if (!dm->alphas[u]) continue;
        const int64_t ne[1] = {u / dm->dilation + 1};
        c->alpha32[u] = ac_copy_into(&e, ac_new(&e, LOOM_TYPE_F32, 1, ne, LOOM_TENSOR_PERSISTENT), dm->alphas[u]);
    }
    if (e.status) {
        df_context_free(c);
        return e.status;
    }
    *arch_ctx = c;
    return LOOM_OK;
}

static loom_status df_context_reset(void *arch_ctx) {
    (void)arch_ctx; /* the KV cache is addressed by position: nothing to clear */
    return LOOM_OK;
}

static loom_status df_forward(void *arch_ctx, loom_exec *exec, const int32_t *tokens, uint32_t n_tokens,
                              uint32_t n_past, loom_tensor *logits) {
    df_ctx *c = arch_ctx;
    const df_model *dm = c->model;
    const ac_model *m = &dm->base;
    const int64_t C = m->n_embd, T = n_tokens, k = dm->dilation;
    ac_env e;
    ac_env_init(&e, m, exec);
    if (n_tokens == 0) return LOOM_OK;
    if (ac_check_tokens(&e, tokens, n_tokens, n_past, c->n_ctx)) return e.status;
    loom_tensor *x = ac_get_rows(&e, m->tok_embd, ac_i32(&e, tokens, T));
    loom_tensor *pos = ac_positions(&e, n_past, T);

    /* Accumulators per dilation class g: states S_g, S_{g+k}, ... as [C, T, cap_g]. */
    loom_tensor *acc[64];
    if (k > 64) {
        ac_fail(&e, LOOM_ERR_UNSUPPORTED, "dilation %lld is larger than 64", (long long)k);
        return e.status;
    }
    for (int64_t g = 0; g < k; g++) {
        const int64_t cap = g <= dm->n_states ? (dm->n_states - g) / k + 1 : 0;
        acc[g] = cap > 0 ? ac_new_f32_3d(&e, C, T, cap) : NULL;
    }
    const int64_t state_ne[2] = {C, T};
#define DF_STORE(u, val)                                                                                               \
    ac_copy_into(&e, ac_view(&e, acc[(u) % k], 2, state_ne, NULL, (uint64_t)(((u) / k) * C * T * 4)), (val))
    DF_STORE(0, x);
    int64_t t = 0;
    for (int64_t u = 1; u <= dm->n_states && !e.status; u++) {
        for (int64_t b = 0; b < dm->store_every; b++, t++)
            x = ac_block_forward_cached(&e, &dm->blocks[t], x, pos, &c->kv[t], n_past);
        DF_STORE(u, x);
        if (c->alpha32[u]) {
            const int64_t vne[3] = {C, T, u / k + 1};
            x = ac_weighted_sum(&e, ac_view(&e, acc[u % k], 3, vne, NULL, 0), c->alpha32[u]);
        }
    }
#undef DF_STORE
    ac_head(&e, x, logits);
    return e.status;
}

static loom_status df_describe_weights(void *arch_model, loom_weight_visit_fn visit, void *user_data) {
    const df_model *dm = arch_model;
    const ac_model *m = &dm->base;
    int32_t r = ac_describe_ends(m, visit, user_data);
    for (int64_t t = 0; t < m->n_layer && !r; t++)
        r = ac_describe_block(m, &dm->blocks[t], (int32_t)t, visit, user_data);
    for (int64_t u = 1; u <= dm->n_states && !r; u++)
        r = ac_describe(m, dm->alphas[u], LOOM_ROLE_MIXING, (int32_t)(u * dm->store_every - 1), 0, NULL, NULL, visit,
                        user_data);
    return LOOM_OK;
}

static loom_status df_export_metadata(void *arch_model, loom_meta_visit_fn visit, void *user_data) {
    const df_model *dm = arch_model;
    ac_exporter x = {visit, user_data, DF_NAME, 0};
    ac_export_common(&x, &dm->base);
    ac_export_str(&x, "dwa.semantics", dm->semantics == DF_EXPERIMENTS ? "experiments" : "package");
    ac_export_u32(&x, "dwa.dilation", (uint32_t)dm->dilation);
    ac_export_u32(&x, "dwa.period", (uint32_t)dm->period);
    return LOOM_OK;
}

static const loom_arch_api df_api = {
    sizeof(loom_arch_api), df_match,         df_model_init, df_model_free,       ac_model_dims,      df_context_init,
    df_context_free,       df_context_reset, df_forward,    df_describe_weights, df_export_metadata,
};

static const loom_plugin_desc df_desc = {
    sizeof(loom_plugin_desc),
    LOOM_ABI_MAJOR,
    LOOM_ABI_MINOR,
    LOOM_PLUGIN_KIND_ARCHITECTURE,
    0,
    DF_NAME,
    "0.1.0",
    "Loom",
    "DenseFormer: depth-weighted averages (experiments and package semantics)",
    0,
    NULL,
    &df_api,
    ac_plugin_init,
    NULL,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR || !host) return NULL;
    g_host = host;
    return &df_desc;
}

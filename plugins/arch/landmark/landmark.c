/*
 * landmark.c - landmark attention (Mohtashami & Jaggi, 2023) as in the official code
 * (github.com/epfml/landmark-attention): the GPT-style model of lm_benchmark and the LLaMA
 * variant (llama/llama_mem.py).
 *
 * Blocks of mem_freq tokens are closed by a landmark token. Attention uses the grouped softmax:
 * for a query in block c, one softmax over {the visible tokens of block c} U {the landmark keys
 * of earlier blocks}; a token of an earlier block b gets (joint weight of landmark b) x (its
 * softmax within block b); landmark keys end with weight 0 (the current block's own landmark is
 * masked).
 *
 * Two ways to run a model, recorded in the model file (landmark.cache):
 *  - "none": the input carries its landmark tokens (the training layout); every token attends
 *    to all earlier tokens with the grouped softmax; an ordinary cache of rotated keys.
 *  - "mem" (retrieval): the input is raw text; a landmark is inserted after every mem_freq raw
 *    tokens. Complete blocks go to a block store in host memory with their keys BEFORE RoPE;
 *    the last incomplete block stays as the tail. Input is processed in chunks that end on
 *    multiples of landmark.chunk_length raw tokens (block boundaries). For a chunk, with N
 *    stored blocks and k_eff = min(cache_top_k, N): each (head, query) scores every stored
 *    block by its landmark key (the k_eff most recent at window slots 1..k_eff, older ones at
 *    slot 0), keeps its top k_eff blocks (by the softmax of those scores, equal ones resolved in
 *    torch.topk's order over the ring slots, see topk_select) in time order and attends to
 *    [retrieved blocks | tail | chunk] with the grouped softmax; the j-th retrieved block sits at
 *    window slot j (+1 when it is one of the k_eff most recent), the tail and chunk follow at
 *    min(N, k+1) blocks. When every block is retrieved (k >= N) the blocks sit at their true
 *    positions, so the result equals one full pass. Logits come back for the raw tokens (or,
 *    with landmark.logits_at_landmark, from the landmark that a raw token completes, as the
 *    LLaMA variant samples).
 *
 * Attention runs through ops on the context's backend: scores = MATMUL(q, K) (one batched
 * product over the keys every query of a head shares, plus one per (head, query) over its own
 * retrieved blocks), LOOM_OP_GROUPED_SOFTMAX (scale, causal limit, landmark flags), then
 * MATMUL(P, V^T). The host keeps what is specific to landmark attention: RoPE at per-query window
 * positions (in fp32 as the official code computes it), the block store (host memory), the top-k
 * selection of blocks, and the gathering of the retrieved blocks' rotated keys and values, which
 * are written into backend tensors with tensor_write. In full mode (cache none) the rotated keys
 * and the transposed values live in persistent backend tensors. Projections, norms and MLPs run
 * through host->op as in every architecture.
 */
#include "arch_common.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define LM_NAME "landmark"

enum { LM_GPT = 0, LM_LLAMA = 1 };

typedef struct lm_model {
    ac_model base;
    int32_t variant;
    int32_t retrieval; /* landmark.cache == "mem" */
    int32_t logits_at_landmark;
    int32_t landmark_id;
    int64_t mem_freq;     /* F: tokens per block before the landmark */
    int64_t top_k;        /* cache_top_k */
    int64_t cache_blocks; /* ring size of the block store (0 = the whole context) */
    int64_t chunk_raw;    /* raw tokens per prefill chunk (multiple of F; 0 = no chunking) */
    float inv_freq[512];  /* RoPE frequencies, head_dim / 2 of them */
    ac_block *blocks;
} lm_model;

/* Per-layer storage: the block store in host memory (retrieval) or a backend cache (full). */
typedef struct lm_layer {
    float *k;      /* retrieval: raw block keys [cap_blocks][F+1][H][hd] */
    float *v;      /* retrieval: block values [cap_blocks][F+1][H][hd] */
    float *lm;     /* retrieval: raw landmark keys [H][cap_blocks][hd] */
    float *tail_k; /* retrieval: raw keys of the incomplete block [F+1][H][hd] */
    float *tail_v;
    loom_tensor *kc; /* full mode: rotated keys [hd, cap, H] (persistent, backend) */
    loom_tensor *vt; /* full mode: values transposed [cap, hd, H] (persistent, backend) */
} lm_layer;

/* A candidate block of the top-k selection: its landmark probability and its ring slot. */
typedef struct lm_cand {
    float p;
    int32_t slot;
} lm_cand;

typedef struct lm_ctx {
    lm_model *model;
    lm_layer *layers;
    int64_t n_ctx;      /* raw tokens (retrieval) or tokens (full) the engine may feed */
    int64_t cap;        /* full: token slots; retrieval: block slots */
    loom_tensor *flags; /* full mode: landmark flag (I32) per token slot [cap] (persistent) */
    /* retrieval state */
    int64_t n_blocks; /* blocks stored (<= cap) */
    int64_t oldest;   /* ring slot of the oldest block */
    int64_t tail_len;
    int64_t raw_seen;
    int64_t n_seen; /* full mode: tokens seen */
    /* retrieval scratch (host) */
    float *lmrot;  /* rotated landmark keys [H][cap][hd] */
    float *loc_k;  /* rotated keys of tail + chunk [H][nloc][hd] */
    float *loc_vt; /* their values transposed [H][hd][nloc] */
    float *ret_k;  /* rotated retrieved keys of a slab of queries [ts][n_head][K*B][hd] */
    float *ret_vt; /* their values transposed [ts][n_head][hd][K*B] */
    lm_cand *cand;
    /* retrieval: backend staging of the retrieved blocks of a slab (persistent) */
    loom_tensor *rk;   /* rotated keys [hd, K*B, n_head, ts] */
    loom_tensor *rvt;  /* values transposed [K*B, hd, n_head, ts] */
    loom_tensor *o2;   /* their part of the output [hd, 1, n_head, ts] */
    int64_t max_local; /* most tail + chunk keys */
    int64_t slab;      /* queries per slab of retrieved keys (ts) */
    int64_t max_keys;
} lm_ctx;

static const loom_host_api *g_host;

/* ======================================================================================== */
/* Model                                                                                    */
/* ======================================================================================== */

static int32_t lm_match(void *state, const loom_model *model) {
    (void)state;
    ac_model m;
    ac_probe_init(&m, g_host, model, LM_NAME);
    const int32_t by_name = ac_match_name(&m);
    if (by_name >= 0) return by_name;
    const char *s = NULL;
    if (ac_meta_string(&m, "config.model_type", &s) == LOOM_OK && !strcmp(s, "llama_with_landmark")) return 90;
    return 0;
}

static void lm_model_free(void *arch_model) {
    lm_model *lm = arch_model;
    if (!lm) return;
    g_host->free(lm->blocks);
    g_host->free(lm);
}

static loom_status init_llama_dims(ac_model *m, char *err, size_t err_size) {
    static const char *const k_layer[] = {"num_hidden_layers", NULL};
    static const char *const k_head[] = {"num_attention_heads", NULL};
    static const char *const k_kv[] = {"num_key_value_heads", NULL};
    static const char *const k_ctx[] = {"train_context_length", "max_position_embeddings", NULL};
    static const char *const k_eps[] = {"rms_norm_eps", NULL};
    static const char *const k_theta[] = {"rope_theta", NULL};
    static const char *const emb[] = {"model.embed_tokens.weight", NULL};
    m->style = AC_BLOCK_LLAMA;
    m->tok_embd = ac_weight_any(m, emb);
    m->out_norm = ac_weight(m, "model.norm.weight");
    m->output = ac_weight(m, "lm_head.weight");
    int64_t ne[4];
    if (!m->tok_embd || ac_tensor_shape(m->host, m->tok_embd, ne) != 2) {
        snprintf(err, err_size, "landmark: model.embed_tokens.weight is missing");
        return LOOM_ERR_FORMAT;
    }
    m->n_embd = ne[0];
    m->n_vocab = ne[1];
    if (ac_get_int(m, "block_count", k_layer, &m->n_layer) != LOOM_OK ||
        ac_get_int(m, "attention.head_count", k_head, &m->n_head) != LOOM_OK) {
        snprintf(err, err_size, "landmark: num_hidden_layers / num_attention_heads missing");
        return LOOM_ERR_FORMAT;
    }
    if (ac_get_int(m, "attention.head_count_kv", k_kv, &m->n_head_kv) != LOOM_OK) m->n_head_kv = m->n_head;
    if (m->n_head <= 0 || m->n_head_kv <= 0 || m->n_embd % m->n_head || m->n_head % m->n_head_kv) {
        snprintf(err, err_size, "landmark: invalid head counts %lld / %lld", (long long)m->n_head,
                 (long long)m->n_head_kv);
        return LOOM_ERR_FORMAT;
    }
    m->head_dim = m->n_embd / m->n_head;
    if (!m->output) m->output = m->tok_embd;
    if (!m->out_norm || !ac_weight_shape_is(m, m->output, m->n_embd, m->n_vocab)) {
        snprintf(err, err_size, "landmark: model.norm.weight or lm_head.weight missing or of the wrong shape");
        return LOOM_ERR_FORMAT;
    }
    loom_tensor *up = ac_weight(m, "model.layers.0.mlp.up_proj.weight");
    if (!up || ac_tensor_shape(m->host, up, ne) != 2) {
        snprintf(err, err_size, "landmark: model.layers.0.mlp.up_proj.weight is missing");
        return LOOM_ERR_FORMAT;
    }
    m->n_ff = ne[1];
    if (ac_get_int(m, "context_length", k_ctx, &m->n_ctx_train) != LOOM_OK) m->n_ctx_train = 0;
    if (ac_get_float(m, "attention.layer_norm_rms_epsilon", k_eps, &m->norm_eps) != LOOM_OK) m->norm_eps = 1e-6;
    if (ac_get_float(m, "rope.freq_base", k_theta, &m->rope_base) != LOOM_OK) m->rope_base = 10000.0;
    return LOOM_OK;
}

static loom_status lm_model_init(void *state, const loom_model *model, void **arch_model, char *err, size_t err_size) {
    (void)state;
    static const char *const emb[] = {"transformer.wte.weight", NULL};
    static const char *const norm[] = {"transformer.ln_f.weight", NULL};
    static const char *const head[] = {"lm_head.weight", NULL};
    static const char *const k_layer[] = {"n_layer", NULL};
    static const char *const k_cache[] = {"lm_cache", NULL};
    static const char *const k_topk[] = {"cache_topk", "cache_top_k", NULL};
    static const char *const k_csize[] = {"mem_cache_size", NULL};
    static const char *const k_chunk[] = {"mid_length", NULL};
    static const char *const k_sel[] = {"cache_selection_method", NULL};
    static const char *const k_id[] = {"landmark_id", "mem_id", NULL};
    *arch_model = NULL;
    lm_model *lm = g_host->alloc(sizeof *lm);
    if (!lm) return LOOM_ERR_OUT_OF_MEMORY;
    memset(lm, 0, sizeof *lm);
    ac_model *m = &lm->base;
    m->host = g_host;
    m->model = model;
    m->arch = LM_NAME;
    loom_status st = LOOM_ERR_FORMAT;
    const char *s = NULL;

    if ((ac_get_string(m, "variant", NULL, &s) == LOOM_OK && !strcmp(s, "llama")) ||
        (ac_meta_string(m, "config.model_type", &s) == LOOM_OK && !strcmp(s, "llama_with_landmark")) ||
        ac_weight(m, "model.embed_tokens.weight"))
        lm->variant = LM_LLAMA;
    if (lm->variant == LM_LLAMA) {
        if ((st = init_llama_dims(m, err, err_size))) goto fail;
    } else {
        if (ac_get_int(m, "block_count", k_layer, &m->n_layer) != LOOM_OK) {
            snprintf(err, err_size, "landmark: n_layer (landmark.block_count) is missing");
            goto fail;
        }
        if ((st = ac_model_init_gpt(m, emb, norm, head, err, err_size))) goto fail;
    }
    st = LOOM_ERR_FORMAT;
    if (m->n_layer <= 0 || m->n_layer > 4096 || m->head_dim > 1024) {
        snprintf(err, err_size, "landmark: unsupported sizes (n_layer %lld, head size %lld)", (long long)m->n_layer,
                 (long long)m->head_dim);
        goto fail;
    }

    /* Landmark token and block length. */
    int64_t id = -1;
    if (ac_get_int(m, "token_id", k_id, &id) != LOOM_OK) id = lm->variant == LM_LLAMA ? 32001 : 50260;
    if (id < 0 || id >= m->n_vocab) {
        snprintf(err, err_size, "landmark: landmark token id %lld is outside the vocabulary of %lld", (long long)id,
                 (long long)m->n_vocab);
        goto fail;
    }
    lm->landmark_id = (int32_t)id;
    const char *cache = NULL;
    if (ac_get_string(m, "cache", k_cache, &cache) != LOOM_OK) cache = lm->variant == LM_LLAMA ? "mem" : "none";
    if (!strcmp(cache, "mem")) {
        lm->retrieval = 1;
    } else if (strcmp(cache, "none") != 0) {
        snprintf(err, err_size, "landmark: cache '%s' is not supported (none or mem)", cache);
        goto fail;
    }
    static const char *const k_freq_mem[] = {"mem_cache_freq", "mem_freq", NULL};
    static const char *const k_freq[] = {"mem_freq", "mem_cache_freq", NULL};
    if (ac_get_int(m, "mem_freq", lm->retrieval ? k_freq_mem : k_freq, &lm->mem_freq) != LOOM_OK)
        lm->mem_freq = lm->variant == LM_LLAMA ? 50 : 0;
    if (lm->mem_freq <= 0 || lm->mem_freq > 100000) {
        snprintf(err, err_size, "landmark: mem_freq (tokens per block) is missing or invalid");
        goto fail;
    }
    const int64_t B = lm->mem_freq + 1;
    if (ac_get_int(m, "cache_top_k", k_topk, &lm->top_k) != LOOM_OK) lm->top_k = 5;
    if (ac_get_int(m, "cache_size", k_csize, &lm->cache_blocks) != LOOM_OK) lm->cache_blocks = 0;
    if (lm->top_k < 0 || lm->cache_blocks < 0) {
        snprintf(err, err_size, "landmark: cache_top_k and cache_size must be >= 0");
        goto fail;
    }
    if (lm->retrieval && ac_get_string(m, "cache_selection_method", k_sel, &s) == LOOM_OK &&
        strcmp(s, "per_token_and_head") != 0) {
        snprintf(err, err_size, "landmark: cache_selection_method '%s' is not supported (per_token_and_head)", s);
        st = LOOM_ERR_UNSUPPORTED;
        goto fail;
    }
    if (ac_get_int(m, "chunk_length", k_chunk, &lm->chunk_raw) != LOOM_OK) {
        /* Official: the training window minus the retrieval window, whole blocks. */
        const int64_t win = m->n_ctx_train - m->n_ctx_train % B - (lm->top_k + 1) * B;
        lm->chunk_raw = win > 0 ? win / B * lm->mem_freq : lm->mem_freq;
    }
    if (lm->retrieval && (lm->chunk_raw < 0 || lm->chunk_raw % lm->mem_freq != 0)) {
        snprintf(err, err_size, "landmark: chunk_length %lld is not a multiple of mem_freq %lld",
                 (long long)lm->chunk_raw, (long long)lm->mem_freq);
        goto fail;
    }
    int64_t lal = lm->variant == LM_LLAMA;
    ac_get_int(m, "logits_at_landmark", NULL, &lal);
    lm->logits_at_landmark = lal != 0;

    /* RoPE frequencies as the official code computes them (fp32). */
    const int64_t hd = m->head_dim;
    for (int64_t i = 0; i < hd / 2; i++) {
        if (lm->variant == LM_LLAMA)
            lm->inv_freq[i] = (float)(1.0 / pow(m->rope_base, (double)(2 * i) / (double)hd));
        else
            lm->inv_freq[i] = powf(10.0f, -4.0f * (float)(2 * i) / (float)hd);
    }

    st = LOOM_ERR_OUT_OF_MEMORY;
    lm->blocks = g_host->alloc(sizeof(ac_block) * (size_t)m->n_layer);
    if (!lm->blocks) goto fail;
    for (int64_t l = 0; l < m->n_layer; l++) {
        char prefix[64];
        if (lm->variant == LM_LLAMA) {
            ac_fmt(prefix, sizeof prefix, "model.layers.%lld.", (long long)l);
            st = ac_block_load_llama(m, prefix, &lm->blocks[l], err, err_size);
        } else {
            ac_fmt(prefix, sizeof prefix, "transformer.h.%lld.", (long long)l);
            st = ac_block_load_gpt(m, prefix, &lm->blocks[l], err, err_size);
        }
        if (st) goto fail;
    }
    *arch_model = lm;
    return LOOM_OK;
fail:
    lm_model_free(lm);
    return st ? st : LOOM_ERR_FORMAT;
}

static loom_status lm_model_dims(void *arch_model, int64_t *n_vocab, int64_t *n_ctx_train, int64_t *n_embd,
                                 int64_t *n_layer) {
    const lm_model *lm = arch_model;
    *n_vocab = lm->base.n_vocab;
    /* With retrieval the training window does not bound the context (older blocks are
     * retrieved, the paper's point): no training context is reported, so the engine's default
     * context (option ctx_size, else 4096) applies without a warning. */
    *n_ctx_train = lm->retrieval ? 0 : lm->base.n_ctx_train;
    *n_embd = lm->base.n_embd;
    *n_layer = lm->base.n_layer;
    return LOOM_OK;
}

/* ======================================================================================== */
/* Host-side attention                                                                      */
/* ======================================================================================== */

/* RoPE of one head vector at position pos (interleaved pairs for GPT, half-split for LLaMA). */
static void rope(const lm_model *lm, float *dst, const float *src, float pos) {
    const int64_t hd = lm->base.head_dim, half = hd / 2;
    for (int64_t i = 0; i < half; i++) {
        const float a = pos * lm->inv_freq[i];
        const float c = cosf(a), s = sinf(a);
        if (lm->variant == LM_LLAMA) {
            const float x0 = src[i], x1 = src[i + half];
            dst[i] = x0 * c - x1 * s;
            dst[i + half] = x1 * c + x0 * s;
        } else {
            const float x0 = src[2 * i], x1 = src[2 * i + 1];
            dst[2 * i] = x0 * c - x1 * s;
            dst[2 * i + 1] = x1 * c + x0 * s;
        }
    }
}

static float dot(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/*
 * Top-k block selection with torch.topk's choice among equal probabilities.
 *
 * The official retrieval takes torch.topk(k) of the landmark probabilities of the stored blocks
 * (in ring-slot order). Exact ties are common: in the first layer every landmark key is the same
 * vector (the landmark embedding) and every block outside the k most recent is scored at the same
 * position, so those blocks tie bit for bit, and which of them is retrieved changes the logits.
 * torch.topk on the CPU orders (probability, slot) pairs by "NaN first, then larger" and, for
 * k * 64 > n, runs the C++ library's nth_element at k - 1 (introselect: median-of-three pivot
 * moved to the front, Hoare partition, insertion sort below four elements, heap selection past
 * the depth limit 2 floor(log2 n)); for k * 64 <= n a heap selection of the first k. The
 * selected set is the first k entries afterwards. The functions below perform the same element
 * moves, so equal probabilities resolve to the same blocks.
 */
static int cand_before(const lm_cand *a, const lm_cand *b) { return (isnan(a->p) && !isnan(b->p)) || a->p > b->p; }

static void cand_swap(lm_cand *a, lm_cand *b) {
    const lm_cand t = *a;
    *a = *b;
    *b = t;
}

/* Fill hole `hole` of the n-entry heap h with v: move the better child up to the bottom, then
 * move v up from there (heap order: the worst entry in cand_before order on top). */
static void heap_fill(lm_cand *h, int64_t hole, int64_t n, lm_cand v) {
    const int64_t top = hole;
    int64_t child = hole;
    while (child < (n - 1) / 2) {
        child = 2 * (child + 1);
        if (cand_before(&h[child], &h[child - 1])) child--;
        h[hole] = h[child];
        hole = child;
    }
    if ((n & 1) == 0 && child == (n - 2) / 2) {
        child = 2 * (child + 1);
        h[hole] = h[child - 1];
        hole = child - 1;
    }
    while (hole > top) {
        const int64_t parent = (hole - 1) / 2;
        if (!cand_before(&h[parent], &v)) break;
        h[hole] = h[parent];
        hole = parent;
    }
    h[hole] = v;
}

/* Keep the best m of the n entries in a[0, m) (a heap with the worst of them on top). */
static void heap_keep_best(lm_cand *a, int64_t m, int64_t n) {
    if (m >= 2)
        for (int64_t parent = (m - 2) / 2;; parent--) {
            heap_fill(a, parent, m, a[parent]);
            if (parent == 0) break;
        }
    for (int64_t i = m; i < n; i++) {
        if (cand_before(&a[i], &a[0])) {
            const lm_cand v = a[i];
            a[i] = a[0];
            heap_fill(a, 0, m, v);
        }
    }
}

/* Rearrange a[0, n) so that a[nth] is the entry of rank nth and no earlier entry ranks after it. */
static void select_nth(lm_cand *a, int64_t n, int64_t nth) {
    int64_t f = 0, l = n, depth = 0;
    if (nth >= n) return;
    for (int64_t t = n; t > 1; t >>= 1)
        depth += 2;
    while (l - f > 3) {
        if (depth == 0) {
            heap_keep_best(a + f, nth + 1 - f, l - f);
            cand_swap(&a[f], &a[nth]);
            return;
        }
        depth--;
        /* the median of a[f + 1], a[mid], a[l - 1] becomes the pivot a[f] */
        const int64_t x = f + 1, y = f + (l - f) / 2, z = l - 1;
        int64_t med;
        if (cand_before(&a[x], &a[y]))
            med = cand_before(&a[y], &a[z]) ? y : cand_before(&a[x], &a[z]) ? z : x;
        else
            med = cand_before(&a[x], &a[z]) ? x : cand_before(&a[y], &a[z]) ? z : y;
        cand_swap(&a[f], &a[med]);
        int64_t lo = f + 1, hi = l;
        for (;;) {
            while (cand_before(&a[lo], &a[f]))
                lo++;
            hi--;
            while (cand_before(&a[f], &a[hi]))
                hi--;
            if (lo >= hi) break;
            cand_swap(&a[lo], &a[hi]);
            lo++;
        }
        if (lo <= nth)
            f = lo;
        else
            l = lo;
    }
    for (int64_t i = f + 1; i < l; i++) { /* insertion sort of the last few */
        const lm_cand v = a[i];
        int64_t j = i;
        if (cand_before(&v, &a[f])) {
            for (; j > f; j--)
                a[j] = a[j - 1];
        } else {
            for (; cand_before(&v, &a[j - 1]); j--)
                a[j] = a[j - 1];
        }
        a[j] = v;
    }
}

/* The top-k set of a[0, n) (k >= 1) into a[0, k), as torch.topk(largest) chooses it on the CPU. */
static void topk_select(lm_cand *a, int64_t n, int64_t k) {
    if (k * 64 <= n)
        heap_keep_best(a, k, n);
    else
        select_nth(a, n, k - 1);
}

/* ======================================================================================== */
/* Context                                                                                  */
/* ======================================================================================== */

/* Bytes of rotated retrieved keys (and as many of values) gathered for one slab of queries. */
#define LM_SLAB_BYTES ((int64_t)8 << 20)

static void lm_context_free(void *arch_ctx) {
    lm_ctx *c = arch_ctx;
    if (!c) return;
    if (c->layers) {
        for (int64_t l = 0; l < c->model->base.n_layer; l++) {
            g_host->free(c->layers[l].k);
            g_host->free(c->layers[l].v);
            g_host->free(c->layers[l].lm);
            g_host->free(c->layers[l].tail_k);
            g_host->free(c->layers[l].tail_v);
        }
    }
    g_host->free(c->layers);
    g_host->free(c->lmrot);
    g_host->free(c->loc_k);
    g_host->free(c->loc_vt);
    g_host->free(c->ret_k);
    g_host->free(c->ret_vt);
    g_host->free(c->cand);
    g_host->free(c);
}

static void *zalloc(size_t n) {
    void *p = g_host->alloc(n ? n : 1);
    if (p) memset(p, 0, n ? n : 1);
    return p;
}

static loom_status lm_context_init(void *arch_model, loom_exec *exec, const loom_arch_params *params, void **arch_ctx) {
    lm_model *lm = arch_model;
    const ac_model *m = &lm->base;
    *arch_ctx = NULL;
    lm_ctx *c = zalloc(sizeof *c);
    if (!c) return LOOM_ERR_OUT_OF_MEMORY;
    c->model = lm;
    c->n_ctx = params->n_ctx;
    const int64_t F = lm->mem_freq, B = F + 1, H = m->n_head, Hkv = m->n_head_kv, hd = m->head_dim;
    const size_t row = (size_t)(Hkv * hd) * sizeof(float);
    loom_status st = LOOM_ERR_OUT_OF_MEMORY;
    c->layers = zalloc(sizeof(lm_layer) * (size_t)m->n_layer);
    if (!c->layers) goto fail;
    if (lm->retrieval) {
        c->cap = lm->cache_blocks > 0 ? lm->cache_blocks : c->n_ctx / F + 1;
        const int64_t chunk = lm->chunk_raw > 0 ? lm->chunk_raw : c->n_ctx;
        const int64_t batch = params->n_batch > 0 && params->n_batch < chunk ? params->n_batch : chunk;
        const int64_t chunk_stream = batch + batch / F + 1; /* most tokens of one chunk (with landmarks) */
        for (int64_t l = 0; l < m->n_layer; l++) {
            lm_layer *L = &c->layers[l];
            L->k = g_host->alloc((size_t)(c->cap * B) * row);
            L->v = g_host->alloc((size_t)(c->cap * B) * row);
            L->lm = g_host->alloc((size_t)(c->cap * Hkv * hd) * sizeof(float));
            L->tail_k = g_host->alloc((size_t)B * row);
            L->tail_v = g_host->alloc((size_t)B * row);
            if (!L->k || !L->v || !L->lm || !L->tail_k || !L->tail_v) goto fail;
        }
        const int64_t kmax = lm->top_k < c->cap ? lm->top_k : c->cap;
        const int64_t per_query = H * kmax * B * hd; /* retrieved floats of one query */
        c->max_local = B + chunk_stream;
        c->max_keys = kmax * B + c->max_local;
        c->slab = per_query > 0 ? LM_SLAB_BYTES / (per_query * 4) : chunk_stream;
        if (c->slab > chunk_stream) c->slab = chunk_stream;
        if (c->slab < 1) c->slab = 1;
        c->lmrot = g_host->alloc((size_t)(c->cap * Hkv * hd) * sizeof(float));
        c->cand = g_host->alloc((size_t)c->cap * sizeof(lm_cand));
        c->loc_k = g_host->alloc((size_t)c->max_local * row);
        c->loc_vt = g_host->alloc((size_t)c->max_local * row);
        c->ret_k = g_host->alloc((size_t)(c->slab * per_query) * sizeof(float) + 4);
        c->ret_vt = g_host->alloc((size_t)(c->slab * per_query) * sizeof(float) + 4);
        if (!c->lmrot || !c->cand || !c->loc_k || !c->loc_vt || !c->ret_k || !c->ret_vt) goto fail;
        if (kmax > 0) {
            ac_env e;
            ac_env_init(&e, m, exec);
            const int64_t n_all[1] = {c->slab * per_query}, o2ne[1] = {c->slab * H * hd};
            c->rk = ac_new(&e, LOOM_TYPE_F32, 1, n_all, LOOM_TENSOR_PERSISTENT);
            c->rvt = ac_new(&e, LOOM_TYPE_F32, 1, n_all, LOOM_TENSOR_PERSISTENT);
            c->o2 = ac_new(&e, LOOM_TYPE_F32, 1, o2ne, LOOM_TENSOR_PERSISTENT);
            if (e.status) {
                st = e.status;
                goto fail;
            }
        }
    } else {
        /* Rotated keys [hd, cap, H] and transposed values [cap, hd, H] on the backend, so that
         * the scores and the output are one product each per layer. */
        c->cap = c->n_ctx;
        ac_env e;
        ac_env_init(&e, m, exec);
        const int64_t kne[3] = {hd, c->cap, Hkv}, vne[3] = {c->cap, hd, Hkv}, fne[1] = {c->cap};
        for (int64_t l = 0; l < m->n_layer; l++) {
            c->layers[l].kc = ac_new(&e, LOOM_TYPE_F32, 3, kne, LOOM_TENSOR_PERSISTENT);
            c->layers[l].vt = ac_new(&e, LOOM_TYPE_F32, 3, vne, LOOM_TENSOR_PERSISTENT);
        }
        c->flags = ac_new(&e, LOOM_TYPE_I32, 1, fne, LOOM_TENSOR_PERSISTENT);
        if (e.status) {
            st = e.status;
            goto fail;
        }
        c->max_keys = c->cap;
    }
    *arch_ctx = c;
    return LOOM_OK;
fail:
    lm_context_free(c);
    return st;
}

static loom_status lm_context_reset(void *arch_ctx) {
    lm_ctx *c = arch_ctx;
    c->n_blocks = c->oldest = c->tail_len = c->raw_seen = c->n_seen = 0;
    return LOOM_OK;
}

/* ======================================================================================== */
/* Forward                                                                                  */
/* ======================================================================================== */

/* Host arrays of one layer's projections for T tokens: [T][H][hd] each; o is staging. */
typedef struct lm_qkv {
    float *q, *k, *v, *o;
} lm_qkv;

/* q, k (and v unless v_out takes the tensor) of one layer into host arrays. */
static int read_qkv(ac_env *e, const ac_block *b, loom_tensor *x, lm_qkv *h, int64_t T, loom_tensor **v_out) {
    const ac_model *m = e->m;
    loom_tensor *q, *k, *v;
    ac_qkv(e, b, ac_norm(e, x, b->attn_norm), NULL, &q, &k, &v);
    const uint64_t qb = (uint64_t)(T * m->n_head * m->head_dim) * 4,
                   kb = (uint64_t)(T * m->n_head_kv * m->head_dim) * 4;
    ac_read(e, q, 0, h->q, qb);
    ac_read(e, k, 0, h->k, kb);
    if (v_out)
        *v_out = v;
    else
        ac_read(e, v, 0, h->v, kb);
    return e->status == LOOM_OK;
}

/* x + attn_out(o) + mlp, with o the attention output [hd, H, T]. */
static loom_tensor *finish_block(ac_env *e, const ac_block *b, loom_tensor *x, loom_tensor *o) {
    x = ac_add(e, x, ac_attn_out(e, b, o));
    return ac_ffn_residual(e, b, x);
}

/* A 4-D F32 view of t: shape (n0, n1, n2, n3), strides of dims 1..3 and the offset in floats. */
static loom_tensor *view4(ac_env *e, loom_tensor *t, int64_t n0, int64_t n1, int64_t n2, int64_t n3, int64_t s1,
                          int64_t s2, int64_t s3, int64_t off) {
    const int64_t ne[4] = {n0, n1, n2, n3}, nb[4] = {4, s1 * 4, s2 * 4, s3 * 4};
    return ac_view(e, t, 4, ne, nb, (uint64_t)off * 4);
}

/* Grouped softmax (in place) of scores s [n, T, H] with landmark flags [n]: row t sees
 * columns <= first + t. */
static void grouped_softmax(ac_env *e, loom_tensor *s, loom_tensor *flags, float scale, int64_t first) {
    loom_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.op = LOOM_OP_GROUPED_SOFTMAX;
    p.f[0] = scale;
    p.i[0] = 1;
    p.i[1] = (int32_t)first;
    loom_tensor *src[2] = {s, flags};
    ac_op(e, &p, s, src, 2);
}

/* ADD b into a (in place). */
static void add_into(ac_env *e, loom_tensor *a, loom_tensor *b) {
    loom_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.op = LOOM_OP_ADD;
    loom_tensor *src[2] = {a, b};
    ac_op(e, &p, a, src, 2);
}

/* Full mode: every token attends to all earlier tokens (rotated keys in the backend cache). */
static loom_tensor *layer_full(ac_env *e, lm_ctx *c, int64_t l, loom_tensor *x, lm_qkv *h, int64_t T) {
    const lm_model *lm = c->model;
    const ac_model *m = &lm->base;
    const int64_t H = m->n_head, Hkv = m->n_head_kv, hd = m->head_dim, n0 = c->n_seen, n = n0 + T, cap = c->cap;
    const float scale = 1.0f / sqrtf((float)hd);
    lm_layer *L = &c->layers[l];
    loom_tensor *v = NULL;
    if (!read_qkv(e, &lm->blocks[l], x, h, T, &v)) return NULL;
    /* RoPE on the host: q in place, k into [Hkv][T][hd] for the cache. */
    for (int64_t t = 0; t < T; t++) {
        const float pos = (float)(n0 + t);
        for (int64_t hh = 0; hh < H; hh++)
            rope(lm, h->q + (t * H + hh) * hd, h->q + (t * H + hh) * hd, pos);
        for (int64_t j = 0; j < Hkv; j++)
            rope(lm, h->o + (j * T + t) * hd, h->k + (t * Hkv + j) * hd, pos);
    }
    for (int64_t j = 0; j < Hkv; j++)
        ac_write(e, L->kc, (uint64_t)((j * cap + n0) * hd) * 4, h->o + j * T * hd, (uint64_t)(T * hd) * 4);
    const int64_t vne[3] = {hd, Hkv, T}, vnb[3] = {cap * 4, hd * cap * 4, 4};
    ac_copy_into(e, ac_view(e, L->vt, 3, vne, vnb, (uint64_t)n0 * 4), v);
    const int64_t qne[3] = {hd, H, T}, sne[3] = {n, H, T}, fne[1] = {n};
    loom_tensor *q = ac_f32_from(e, h->q, 3, qne);
    /* scores [n] per (token, head), as [n, T, H] for the causal rule */
    loom_tensor *sc = ac_new(e, LOOM_TYPE_F32, 3, sne, 0);
    loom_tensor *s = view4(e, sc, n, T, H, 1, H * n, n, H * n * T, 0);
    ac_matmul_into(e, s, view4(e, q, hd, T, H, 1, H * hd, hd, H * hd * T, 0),
                   view4(e, L->kc, hd, n, Hkv, 1, hd, cap * hd, cap * hd * Hkv, 0));
    grouped_softmax(e, s, ac_view(e, c->flags, 1, fne, NULL, 0), scale, n0);
    loom_tensor *o = ac_new_f32_3d(e, hd, H, T);
    ac_matmul_into(e, view4(e, o, hd, T, H, 1, H * hd, hd, H * hd * T, 0), s,
                   view4(e, L->vt, n, hd, Hkv, 1, cap, cap * hd, cap * hd * Hkv, 0));
    return finish_block(e, &lm->blocks[l], x, o);
}

/* Retrieval state of one chunk (the same for every layer). */
typedef struct lm_chunk {
    int64_t T;          /* stream tokens in the chunk */
    int64_t N;          /* stored blocks before the chunk */
    int64_t k_eff;      /* blocks retrieved per (head, query) */
    int64_t inc;        /* tail length before the chunk */
    int64_t P0;         /* position of the tail's first token */
    int64_t ws;         /* position of window slot 0 */
    const uint8_t *ism; /* [T] landmark flags of the chunk */
    loom_tensor *flags; /* I32 [k_eff (F+1) + inc + T]: the flags of every key column */
    int32_t *sel;       /* [T][n_head][k_eff]: retrieved block ages per (query, head), scratch */
} lm_chunk;

static int64_t ring_slot(const lm_ctx *c, int64_t age) { return (c->oldest + age) % c->cap; }

/* Gather the retrieved blocks of queries [t0, t0 + tc): rotated keys into ret_k
 * [tc][H][K*B][hd] and/or values transposed into ret_vt [tc][H][hd][K*B]. */
static void gather_retrieved(const lm_ctx *c, const lm_layer *L, const lm_chunk *ck, int64_t t0, int64_t tc, int keys,
                             int values) {
    const lm_model *lm = c->model;
    const ac_model *m = &lm->base;
    const int64_t H = m->n_head, Hkv = m->n_head_kv, hd = m->head_dim, g = H / Hkv, B = lm->mem_freq + 1;
    const int64_t K = ck->k_eff, N = ck->N, KB = K * B;
    for (int64_t tt = 0; tt < tc; tt++) {
        for (int64_t hh = 0; hh < H; hh++) {
            const int64_t kvh = hh / g, q = tt * H + hh;
            const int32_t *sel = ck->sel + ((t0 + tt) * H + hh) * K;
            for (int64_t i = 0; i < K; i++) {
                const int64_t a = sel[i], slot = ring_slot(c, a);
                const int64_t recent = a >= N - K ? 1 : 0;
                const int64_t base = ck->ws + (i + recent) * B;
                for (int64_t u = 0; u < B; u++) {
                    const int64_t src = ((slot * B + u) * Hkv + kvh) * hd, col = i * B + u;
                    if (keys) rope(lm, c->ret_k + (q * KB + col) * hd, L->k + src, (float)(base + u));
                    if (values)
                        for (int64_t d = 0; d < hd; d++)
                            c->ret_vt[(q * hd + d) * KB + col] = L->v[src + d];
                }
            }
        }
    }
}

static loom_tensor *layer_retrieval(ac_env *e, lm_ctx *c, int64_t l, loom_tensor *x, lm_qkv *h, const lm_chunk *ck) {
    const lm_model *lm = c->model;
    const ac_model *m = &lm->base;
    const int64_t H = m->n_head, Hkv = m->n_head_kv, hd = m->head_dim, g = H / Hkv, F = lm->mem_freq, B = F + 1;
    const int64_t T = ck->T, N = ck->N, K = ck->k_eff, inc = ck->inc;
    const float scale = 1.0f / sqrtf((float)hd);
    lm_layer *L = &c->layers[l];
    if (!read_qkv(e, &lm->blocks[l], x, h, T, NULL)) return NULL;

    /* Keys of the tail and the chunk rotated at positions P0 + i ([Hkv][nloc][hd]) and their
     * values transposed ([Hkv][hd][nloc]); queries rotated in place. */
    const int64_t nloc = inc + T, KB = K * B, n = KB + nloc;
    for (int64_t i = 0; i < nloc; i++) {
        const float *ks = i < inc ? L->tail_k + i * Hkv * hd : h->k + (i - inc) * Hkv * hd;
        const float *vs = i < inc ? L->tail_v + i * Hkv * hd : h->v + (i - inc) * Hkv * hd;
        for (int64_t j = 0; j < Hkv; j++) {
            rope(lm, c->loc_k + (j * nloc + i) * hd, ks + j * hd, (float)(ck->P0 + i));
            for (int64_t d = 0; d < hd; d++)
                c->loc_vt[(j * hd + d) * nloc + i] = vs[j * hd + d];
        }
    }
    for (int64_t t = 0; t < T; t++)
        for (int64_t hh = 0; hh < H; hh++)
            rope(lm, h->q + (t * H + hh) * hd, h->q + (t * H + hh) * hd, (float)(ck->P0 + inc + t));

    /* Choose K blocks (ages, in time order) per (query, head). Landmark keys of the stored
     * blocks are rotated at their scoring positions (only when a selection is needed: K < N). */
    const int scoring = K > 0 && K < N;
    if (scoring) {
        for (int64_t a = 0; a < N; a++) {
            const int64_t mi = a >= N - K ? a - (N - K) + 1 : 0;
            const float p = (float)(ck->ws + mi * B + F);
            const int64_t slot = ring_slot(c, a);
            for (int64_t j = 0; j < Hkv; j++)
                rope(lm, c->lmrot + (j * c->cap + a) * hd, L->lm + (j * c->cap + slot) * hd, p);
        }
    }
    for (int64_t t = 0; t < T; t++) {
        for (int64_t hh = 0; hh < H; hh++) {
            const int64_t kvh = hh / g;
            const float *qr = h->q + (t * H + hh) * hd;
            int32_t *sel = ck->sel + (t * H + hh) * K;
            if (scoring) {
                /* Softmax over the landmark scores, candidates in ring-slot order (the order of
                 * the official block store), then the top-K set exactly as torch.topk picks it. */
                lm_cand *cd = c->cand;
                float mx = -INFINITY, sum = 0;
                for (int64_t a = 0; a < N; a++) {
                    const int64_t slot = ring_slot(c, a);
                    cd[slot].p = dot(qr, c->lmrot + (kvh * c->cap + a) * hd, hd) * scale;
                    cd[slot].slot = (int32_t)slot;
                    if (cd[slot].p > mx) mx = cd[slot].p;
                }
                for (int64_t i = 0; i < N; i++) {
                    cd[i].p = expf(cd[i].p - mx);
                    sum += cd[i].p;
                }
                const float inv = 1.0f / sum;
                for (int64_t i = 0; i < N; i++)
                    cd[i].p *= inv;
                topk_select(cd, N, K);
                for (int64_t i = 0; i < K; i++)
                    sel[i] = (int32_t)((cd[i].slot - c->oldest + c->cap) % c->cap);
                for (int64_t i = 1; i < K; i++) { /* insertion sort by age */
                    const int32_t v = sel[i];
                    int64_t j = i - 1;
                    while (j >= 0 && sel[j] > v) {
                        sel[j + 1] = sel[j];
                        j--;
                    }
                    sel[j + 1] = v;
                }
            } else {
                for (int64_t i = 0; i < K; i++)
                    sel[i] = (int32_t)i;
            }
        }
    }

    /* Attention through ops over the key columns [retrieved K*B | tail | chunk]: scores
     * sc [n, H, T] (viewed [n, T, H] for the causal rule), the grouped softmax, then P V. */
    const int64_t qne[3] = {hd, H, T}, lkne[3] = {hd, nloc, Hkv}, lvne[3] = {nloc, hd, Hkv}, sne[3] = {n, H, T};
    loom_tensor *q = ac_f32_from(e, h->q, 3, qne);
    loom_tensor *lk = ac_f32_from(e, c->loc_k, 3, lkne);
    loom_tensor *lvt = ac_f32_from(e, c->loc_vt, 3, lvne);
    loom_tensor *sc = ac_new(e, LOOM_TYPE_F32, 3, sne, 0);
    loom_tensor *s = view4(e, sc, n, T, H, 1, H * n, n, H * n * T, 0);
    loom_tensor *s_loc = view4(e, sc, nloc, T, H, 1, H * n, n, H * n * T, KB);
    ac_matmul_into(e, s_loc, view4(e, q, hd, T, H, 1, H * hd, hd, H * hd * T, 0), lk);
    /* Retrieved blocks differ per (query, head): one product per pair (batched), in slabs of
     * queries whose gathered keys fit the staging buffers. */
    const int64_t ts = c->slab < T ? c->slab : T, n_slabs = (T + ts - 1) / ts;
    loom_tensor *rk = c->rk, *rvt = c->rvt, *o2 = c->o2;
    if (K > 0) {
        for (int64_t t0 = 0; t0 < T && !e->status; t0 += ts) {
            const int64_t tc = T - t0 < ts ? T - t0 : ts;
            gather_retrieved(c, L, ck, t0, tc, 1, n_slabs == 1);
            ac_write(e, rk, 0, c->ret_k, (uint64_t)(tc * H * KB * hd) * 4);
            if (n_slabs == 1) ac_write(e, rvt, 0, c->ret_vt, (uint64_t)(tc * H * KB * hd) * 4);
            ac_matmul_into(e, view4(e, sc, KB, 1, H, tc, n, n, H * n, t0 * H * n),
                           view4(e, q, hd, 1, H, tc, hd, hd, H * hd, t0 * H * hd),
                           view4(e, rk, hd, KB, H, tc, hd, KB * hd, H * KB * hd, 0));
        }
    }
    grouped_softmax(e, s, ck->flags, scale, KB + inc);
    loom_tensor *o = ac_new_f32_3d(e, hd, H, T);
    ac_matmul_into(e, view4(e, o, hd, T, H, 1, H * hd, hd, H * hd * T, 0), s_loc, lvt);
    if (K > 0) {
        for (int64_t t0 = 0; t0 < T && !e->status; t0 += ts) {
            const int64_t tc = T - t0 < ts ? T - t0 : ts;
            if (n_slabs > 1) {
                gather_retrieved(c, L, ck, t0, tc, 0, 1);
                ac_write(e, rvt, 0, c->ret_vt, (uint64_t)(tc * H * KB * hd) * 4);
            }
            loom_tensor *part = view4(e, o2, hd, 1, H, tc, hd, hd, H * hd, 0);
            ac_matmul_into(e, part, view4(e, sc, KB, 1, H, tc, n, n, H * n, t0 * H * n),
                           view4(e, rvt, KB, hd, H, tc, KB, KB * hd, H * KB * hd, 0));
            add_into(e, view4(e, o, hd, 1, H, tc, hd, hd, H * hd, t0 * H * hd), part);
        }
    }
    if (e->status) return NULL;

    /* Store the chunk's raw keys / values: complete blocks to the ring, the rest to the tail. */
    int64_t tl = inc, nb = N, oldest = c->oldest;
    for (int64_t t = 0; t < T; t++) {
        memcpy(L->tail_k + tl * Hkv * hd, h->k + t * Hkv * hd, (size_t)(Hkv * hd) * 4);
        memcpy(L->tail_v + tl * Hkv * hd, h->v + t * Hkv * hd, (size_t)(Hkv * hd) * 4);
        tl++;
        if (ck->ism[t]) { /* the block is complete */
            int64_t slot;
            if (nb < c->cap) {
                slot = (oldest + nb) % c->cap;
                nb++;
            } else {
                slot = oldest;
                oldest = (oldest + 1) % c->cap;
            }
            if (tl == B) {
                memcpy(L->k + slot * B * Hkv * hd, L->tail_k, (size_t)(B * Hkv * hd) * 4);
                memcpy(L->v + slot * B * Hkv * hd, L->tail_v, (size_t)(B * Hkv * hd) * 4);
            }
            for (int64_t j = 0; j < Hkv; j++)
                memcpy(L->lm + (j * c->cap + slot) * hd, L->tail_k + (F * Hkv + j) * hd, (size_t)hd * 4);
            tl = 0;
        }
    }
    return finish_block(e, &lm->blocks[l], x, o);
}

/* Head rows: x rows `rows` (stream indices) into logits rows [first, first + n). */
static void head_rows(ac_env *e, loom_tensor *x, const int32_t *rows, int64_t n, loom_tensor *logits, int64_t first) {
    const ac_model *m = e->m;
    if (n <= 0) return;
    loom_tensor *xr = ac_get_rows(e, x, ac_i32(e, rows, n));
    const int64_t ne[2] = {m->n_vocab, n};
    ac_head(e, xr, ac_view(e, logits, 2, ne, NULL, (uint64_t)(first * m->n_vocab) * 4));
}

static int alloc_qkv(const ac_model *m, lm_qkv *h, int64_t T) {
    const size_t q = (size_t)(T * m->n_head * m->head_dim) * 4 + 4,
                 k = (size_t)(T * m->n_head_kv * m->head_dim) * 4 + 4;
    h->q = g_host->alloc(q);
    h->o = g_host->alloc(q);
    h->k = g_host->alloc(k);
    h->v = g_host->alloc(k);
    return h->q && h->o && h->k && h->v;
}

static void free_qkv(lm_qkv *h) {
    g_host->free(h->q);
    g_host->free(h->o);
    g_host->free(h->k);
    g_host->free(h->v);
}

static loom_status forward_full(lm_ctx *c, ac_env *e, const int32_t *tokens, int64_t T, loom_tensor *logits,
                                int64_t rows) {
    const lm_model *lm = c->model;
    const ac_model *m = &lm->base;
    if (c->n_seen + T > c->cap) {
        ac_fail(e, LOOM_ERR_CONTEXT_FULL, "%lld + %lld tokens exceed the context of %lld", (long long)c->n_seen,
                (long long)T, (long long)c->cap);
        return e->status;
    }
    lm_qkv h;
    if (!alloc_qkv(m, &h, T)) {
        free_qkv(&h);
        ac_fail(e, LOOM_ERR_OUT_OF_MEMORY, "activations");
        return e->status;
    }
    /* landmark flags of the new tokens into the cache's flag tensor (h.o as staging) */
    int32_t *fl = (int32_t *)(void *)h.o;
    for (int64_t t = 0; t < T; t++)
        fl[t] = tokens[t] == lm->landmark_id;
    ac_write(e, c->flags, (uint64_t)c->n_seen * 4, fl, (uint64_t)T * 4);
    loom_tensor *x = ac_get_rows(e, m->tok_embd, ac_i32(e, tokens, T));
    for (int64_t l = 0; l < m->n_layer && !e->status; l++)
        x = layer_full(e, c, l, x, &h, T);
    free_qkv(&h);
    if (e->status) return e->status;
    c->n_seen += T;
    int32_t last = (int32_t)(T - 1);
    if (rows == 1) {
        head_rows(e, x, &last, 1, logits, 0);
    } else {
        ac_head(e, x, logits);
    }
    return e->status;
}

/* One retrieval chunk of n raw tokens; logits rows for them start at out_row (or only the
 * last one when `last_only`). */
static loom_status forward_chunk(lm_ctx *c, ac_env *e, const int32_t *raw, int64_t n, loom_tensor *logits,
                                 int64_t out_row, int last_only) {
    const lm_model *lm = c->model;
    const ac_model *m = &lm->base;
    const int64_t F = lm->mem_freq, B = F + 1;
    const int64_t maxT = n + n / F + 1;
    int32_t *ids = g_host->alloc(sizeof(int32_t) * (size_t)maxT);
    int32_t *rows = g_host->alloc(sizeof(int32_t) * (size_t)(n + 1));
    uint8_t *ism = g_host->alloc((size_t)maxT);
    const int64_t kmax = lm->top_k < c->n_blocks ? lm->top_k : c->n_blocks;
    int32_t *flags = g_host->alloc(sizeof(int32_t) * (size_t)(kmax * B + c->tail_len + maxT));
    int32_t *sel = g_host->alloc(sizeof(int32_t) * (size_t)(maxT * m->n_head * kmax) + 4);
    lm_qkv h;
    int ok = alloc_qkv(m, &h, maxT);
    if (!ids || !rows || !ism || !flags || !sel || !ok) {
        ac_fail(e, LOOM_ERR_OUT_OF_MEMORY, "chunk of %lld tokens", (long long)n);
        goto done;
    }
    /* Stream with landmarks inserted after every F raw tokens (counting from the first). */
    int64_t T = 0;
    for (int64_t i = 0; i < n; i++) {
        rows[i] = (int32_t)T;
        ism[T] = 0;
        ids[T++] = raw[i];
        if ((c->raw_seen + i + 1) % F == 0) {
            if (lm->logits_at_landmark) rows[i] = (int32_t)T;
            ism[T] = 1;
            ids[T++] = lm->landmark_id;
        }
    }
    lm_chunk ck;
    ck.T = T;
    ck.N = c->n_blocks;
    ck.k_eff = lm->top_k < ck.N ? lm->top_k : ck.N;
    ck.inc = c->tail_len;
    ck.P0 = (ck.N < lm->top_k + 1 ? ck.N : lm->top_k + 1) * B;
    ck.ws = ck.P0 - (ck.k_eff + 1) * B;
    ck.ism = ism;
    ck.sel = sel;
    if (ck.k_eff * B + ck.inc + T > c->max_keys || ck.inc + T > c->max_local) {
        ac_fail(e, LOOM_ERR_INTERNAL, "chunk of %lld tokens is larger than planned", (long long)T);
        goto done;
    }
    /* Landmark flags of the key columns [retrieved blocks (each closed by its landmark) | tail |
     * chunk], the same for every layer, head and query. */
    int64_t nf = 0;
    for (int64_t i = 0; i < ck.k_eff * B; i++)
        flags[nf++] = i % B == F;
    for (int64_t i = 0; i < ck.inc; i++)
        flags[nf++] = 0;
    for (int64_t t = 0; t < T; t++)
        flags[nf++] = ism[t];
    ck.flags = ac_i32(e, flags, nf);
    loom_tensor *x = ac_get_rows(e, m->tok_embd, ac_i32(e, ids, T));
    for (int64_t l = 0; l < m->n_layer && !e->status; l++)
        x = layer_retrieval(e, c, l, x, &h, &ck);
    if (e->status) goto done;
    /* Commit the cache counters (every layer stored the same slots). */
    for (int64_t t = 0; t < T; t++) {
        c->tail_len++;
        if (ism[t]) {
            if (c->n_blocks < c->cap)
                c->n_blocks++;
            else
                c->oldest = (c->oldest + 1) % c->cap;
            c->tail_len = 0;
        }
    }
    c->raw_seen += n;
    if (last_only)
        head_rows(e, x, rows + n - 1, 1, logits, 0);
    else
        head_rows(e, x, rows, n, logits, out_row);
done:
    g_host->free(ids);
    g_host->free(rows);
    g_host->free(ism);
    g_host->free(flags);
    g_host->free(sel);
    free_qkv(&h);
    return e->status;
}

static loom_status lm_forward(void *arch_ctx, loom_exec *exec, const int32_t *tokens, uint32_t n_tokens,
                              uint32_t n_past, loom_tensor *logits) {
    lm_ctx *c = arch_ctx;
    const lm_model *lm = c->model;
    const ac_model *m = &lm->base;
    ac_env e;
    ac_env_init(&e, m, exec);
    if (n_tokens == 0) return LOOM_OK;
    int64_t lne[4];
    ac_tensor_shape(g_host, logits, lne);
    const int64_t rows = lne[1];
    for (uint32_t i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->n_vocab || (lm->retrieval && tokens[i] == lm->landmark_id)) {
            ac_fail(&e, LOOM_ERR_INVALID_ARGUMENT,
                    tokens[i] == lm->landmark_id ? "token %d at %u is the landmark, which the cache inserts itself"
                                                 : "token %d at %u is outside the vocabulary",
                    tokens[i], i);
            return e.status;
        }
    }
    if (!lm->retrieval) {
        if ((int64_t)n_past != c->n_seen) {
            ac_fail(&e, LOOM_ERR_UNSUPPORTED, "n_past %u differs from the %lld cached tokens (no rewinding)", n_past,
                    (long long)c->n_seen);
            return e.status;
        }
        return forward_full(c, &e, tokens, n_tokens, logits, rows);
    }
    if ((int64_t)n_past != c->raw_seen) {
        ac_fail(&e, LOOM_ERR_UNSUPPORTED, "n_past %u differs from the %lld cached tokens (no rewinding)", n_past,
                (long long)c->raw_seen);
        return e.status;
    }
    if (c->raw_seen + n_tokens > c->n_ctx) {
        ac_fail(&e, LOOM_ERR_CONTEXT_FULL, "%lld + %u tokens exceed the context of %lld", (long long)c->raw_seen,
                n_tokens, (long long)c->n_ctx);
        return e.status;
    }
    /* Chunks end on multiples of chunk_raw raw tokens (block boundaries). */
    int64_t i = 0;
    while (i < (int64_t)n_tokens && !e.status) {
        int64_t n = (int64_t)n_tokens - i;
        if (lm->chunk_raw > 0) {
            const int64_t to_boundary = lm->chunk_raw - (c->raw_seen % lm->chunk_raw);
            if (n > to_boundary) n = to_boundary;
        }
        const int last = i + n == (int64_t)n_tokens;
        if (rows == 1)
            forward_chunk(c, &e, tokens + i, n, logits, 0, last);
        else
            forward_chunk(c, &e, tokens + i, n, logits, i, 0);
        i += n;
    }
    return e.status;
}

/* ======================================================================================== */
/* Description, metadata, plugin                                                            */
/* ======================================================================================== */

static loom_status lm_describe_weights(void *arch_model, loom_weight_visit_fn visit, void *user_data) {
    const lm_model *lm = arch_model;
    const ac_model *m = &lm->base;
    int32_t r = ac_describe_ends(m, visit, user_data);
    for (int64_t l = 0; l < m->n_layer && !r; l++)
        r = ac_describe_block(m, &lm->blocks[l], (int32_t)l, visit, user_data);
    return LOOM_OK;
}

static loom_status lm_export_metadata(void *arch_model, loom_meta_visit_fn visit, void *user_data) {
    const lm_model *lm = arch_model;
    ac_exporter x = {visit, user_data, LM_NAME, 0};
    ac_export_common(&x, &lm->base);
    ac_export_str(&x, "variant", lm->variant == LM_LLAMA ? "llama" : "gpt");
    ac_export_u32(&x, "mem_freq", (uint32_t)lm->mem_freq);
    ac_export_u32(&x, "token_id", (uint32_t)lm->landmark_id);
    ac_export_str(&x, "cache", lm->retrieval ? "mem" : "none");
    ac_export_u32(&x, "cache_top_k", (uint32_t)lm->top_k);
    ac_export_u32(&x, "cache_size", (uint32_t)lm->cache_blocks);
    ac_export_u32(&x, "chunk_length", (uint32_t)lm->chunk_raw);
    ac_export_bool(&x, "logits_at_landmark", lm->logits_at_landmark != 0);
    return LOOM_OK;
}

static const loom_arch_api lm_api = {
    sizeof(loom_arch_api), lm_match,         lm_model_init, lm_model_free,       lm_model_dims,      lm_context_init,
    lm_context_free,       lm_context_reset, lm_forward,    lm_describe_weights, lm_export_metadata,
};

static const loom_plugin_desc lm_desc = {
    sizeof(loom_plugin_desc),
    LOOM_ABI_MAJOR,
    LOOM_ABI_MINOR,
    LOOM_PLUGIN_KIND_ARCHITECTURE,
    0,
    LM_NAME,
    "0.1.0",
    "Loom",
    "Landmark attention: grouped softmax, block retrieval cache (GPT-style and LLaMA variant)",
    0,
    NULL,
    &lm_api,
    ac_plugin_init,
    NULL,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR || !host) return NULL;
    g_host = host;
    return &lm_desc;
}

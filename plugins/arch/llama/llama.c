/*
 * llama.c - the Llama family (Llama 2/3, Mistral without sliding windows, TinyLlama, MEDITRON,
 * SmolLM2) as an architecture plugin. It sees only abi/ headers: weights, metadata, tensors and
 * ops come through the host table.
 *
 * Two weight layouts are read:
 *   - GGUF names (token_embd.weight, blk.N.attn_q.weight, ...). llama.cpp's converter permutes
 *     the rows of Q and K so that RoPE rotates adjacent pairs (2i, 2i+1): interleaved mode.
 *   - Hugging Face names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight,
 *     ...), whether they come from a safetensors folder or from a GGUF written by `loom convert`:
 *     Q and K are unpermuted, so RoPE rotates (i, i + d/2): half-split mode.
 * Hyperparameters come from "<arch>.*" GGUF keys or from "config.*" keys (config.json flattened
 * by the file layer), whichever is present.
 *
 * The forward pass (llama_forward) reads top to bottom like llama2.c's: every activation lives in
 * a buffer sized for n_batch tokens at context creation, and each call takes views of the first
 * n rows, so nothing is allocated per token but view headers.
 */
#include "loom_plugin.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PLUGIN_NAME "llama"

static const loom_host_api *H; /* the host table, set by the entry point */

/* ============================================================================================ */
/* Model: hyperparameters and weights                                                           */
/* ============================================================================================ */

enum { ROPE_INTERLEAVED = 0, ROPE_HALF_SPLIT = 1 };

typedef struct llama_hparams {
    int64_t n_vocab, n_ctx_train, n_embd, n_ff, n_layer;
    int64_t n_head, n_head_kv, head_dim, n_rot;
    float norm_eps;
    float rope_base;
    float rope_pos_scale; /* linear scaling: positions are multiplied by this (1/factor) */
    int32_t rope_mode;    /* ROPE_* */
} llama_hparams;

typedef struct llama_layer {
    loom_tensor *attn_norm, *wq, *wk, *wv, *wo;
    loom_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} llama_layer;

typedef struct llama_model {
    const loom_model *model;
    llama_hparams hp;
    bool hf_names; /* Hugging Face tensor names (half-split RoPE) */
    bool tied;     /* output projection shares the embedding */
    loom_tensor *tok_embd, *out_norm, *output;
    llama_layer *layers;
} llama_model;

/* Tensor names of both layouts, per role. `%d` is the block index. */
typedef struct name_set {
    const char *embd, *out_norm, *output;
    const char *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
    const char *q_bias; /* presence means an unsupported variant */
} name_set;

static const name_set GGUF_NAMES = {
    "token_embd.weight",      "output_norm.weight",     "output.weight",        "blk.%d.attn_norm.weight",
    "blk.%d.attn_q.weight",   "blk.%d.attn_k.weight",   "blk.%d.attn_v.weight", "blk.%d.attn_output.weight",
    "blk.%d.ffn_norm.weight", "blk.%d.ffn_gate.weight", "blk.%d.ffn_up.weight", "blk.%d.ffn_down.weight",
    "blk.%d.attn_q.bias",
};

static const name_set HF_NAMES = {
    "model.embed_tokens.weight",
    "model.norm.weight",
    "lm_head.weight",
    "model.layers.%d.input_layernorm.weight",
    "model.layers.%d.self_attn.q_proj.weight",
    "model.layers.%d.self_attn.k_proj.weight",
    "model.layers.%d.self_attn.v_proj.weight",
    "model.layers.%d.self_attn.o_proj.weight",
    "model.layers.%d.post_attention_layernorm.weight",
    "model.layers.%d.mlp.gate_proj.weight",
    "model.layers.%d.mlp.up_proj.weight",
    "model.layers.%d.mlp.down_proj.weight",
    "model.layers.%d.self_attn.q_proj.bias",
};

/* ---- metadata helpers: "<arch>.<gguf_key>" first, then "config.<hf_key>" ---- */

static bool meta_int(const loom_model *m, const char *arch, const char *gguf_key, const char *hf_key, int64_t *out) {
    char key[160];
    if (gguf_key) {
        snprintf(key, sizeof key, "%s.%s", arch, gguf_key);
        if (H->meta_get_int(m, key, out) == LOOM_OK) return true;
    }
    if (hf_key) {
        snprintf(key, sizeof key, "config.%s", hf_key);
        if (H->meta_get_int(m, key, out) == LOOM_OK) return true;
    }
    return false;
}

static bool meta_float(const loom_model *m, const char *arch, const char *gguf_key, const char *hf_key, double *out) {
    char key[160];
    if (gguf_key) {
        snprintf(key, sizeof key, "%s.%s", arch, gguf_key);
        if (H->meta_get_float(m, key, out) == LOOM_OK) return true;
    }
    if (hf_key) {
        snprintf(key, sizeof key, "config.%s", hf_key);
        if (H->meta_get_float(m, key, out) == LOOM_OK) return true;
    }
    return false;
}

static bool meta_str(const loom_model *m, const char *arch, const char *gguf_key, const char *hf_key,
                     const char **out) {
    char key[160];
    if (gguf_key) {
        snprintf(key, sizeof key, "%s.%s", arch, gguf_key);
        if (H->meta_get_string(m, key, out) == LOOM_OK) return true;
    }
    if (hf_key) {
        snprintf(key, sizeof key, "config.%s", hf_key);
        if (H->meta_get_string(m, key, out) == LOOM_OK) return true;
    }
    return false;
}

/* Expand the "%d" in a name pattern with the block index (no printf on a variable format). */
static void weight_name(char *buf, size_t size, const char *fmt, int layer) {
    const char *at = strstr(fmt, "%d");
    if (!at || layer < 0) {
        snprintf(buf, size, "%s", fmt);
        return;
    }
    snprintf(buf, size, "%.*s%d%s", (int)(at - fmt), fmt, layer, at + 2);
}

/* Look up weight `fmt` (with block index `layer`, or -1) and check its shape. */
static loom_status get_weight(const loom_model *m, const char *fmt, int layer, int64_t ne0, int64_t ne1,
                              loom_tensor **out, char *err, size_t err_size) {
    char name[160];
    weight_name(name, sizeof name, fmt, layer);
    loom_status st = H->model_tensor(m, name, out);
    if (st != LOOM_OK) {
        snprintf(err, err_size, "llama: weight '%s' is missing", name);
        return LOOM_ERR_FORMAT;
    }
    loom_tensor_info info = {.struct_size = sizeof info};
    st = H->tensor_info(*out, &info);
    if (st != LOOM_OK) return st;
    int64_t want1 = ne1 > 0 ? ne1 : 1;
    bool ok = info.ne[0] == ne0 && info.ne[1] == want1 && info.ne[2] == 1 && info.ne[3] == 1;
    if (!ok) {
        snprintf(err, err_size, "llama: weight '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                 (long long)info.ne[0], (long long)info.ne[1], (long long)info.ne[2], (long long)info.ne[3],
                 (long long)ne0, (long long)want1);
        return LOOM_ERR_FORMAT;
    }
    return LOOM_OK;
}

static bool has_tensor(const loom_model *m, const char *fmt, int layer) {
    char name[160];
    weight_name(name, sizeof name, fmt, layer);
    loom_tensor *t = NULL;
    return H->model_tensor(m, name, &t) == LOOM_OK;
}

static const char *model_arch(const loom_model *m) {
    const char *arch = NULL;
    if (H->meta_get_string(m, "general.architecture", &arch) == LOOM_OK) return arch;
    return "llama";
}

static int32_t llama_match(void *state, const loom_model *m) {
    (void)state;
    const char *s = NULL;
    if (H->meta_get_string(m, "general.architecture", &s) == LOOM_OK) return strcmp(s, "llama") == 0 ? 100 : 0;
    if (H->meta_get_string(m, "config.model_type", &s) == LOOM_OK) {
        if (!strcmp(s, "llama") || !strcmp(s, "mistral")) return 100;
        return 0;
    }
    return 0;
}

/* Read and check the hyperparameters. */
static loom_status read_hparams(llama_model *lm, char *err, size_t err_size) {
    const loom_model *m = lm->model;
    const char *arch = model_arch(m);
    llama_hparams *hp = &lm->hp;
    int64_t v = 0;
    double f = 0;

    if (!meta_int(m, arch, "embedding_length", "hidden_size", &hp->n_embd) ||
        !meta_int(m, arch, "block_count", "num_hidden_layers", &hp->n_layer) ||
        !meta_int(m, arch, "attention.head_count", "num_attention_heads", &hp->n_head)) {
        snprintf(err, err_size,
                 "llama: metadata lacks %s.embedding_length/block_count/attention.head_count "
                 "(or config.hidden_size/num_hidden_layers/num_attention_heads)",
                 arch);
        return LOOM_ERR_FORMAT;
    }
    hp->n_head_kv = meta_int(m, arch, "attention.head_count_kv", "num_key_value_heads", &v) ? v : hp->n_head;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_layer > 100000 ||
        hp->n_head % hp->n_head_kv != 0) {
        snprintf(err, err_size,
                 "llama: bad shape: n_embd %lld, n_layer %lld, n_head %lld, n_head_kv %lld "
                 "(n_head must be a multiple of n_head_kv)",
                 (long long)hp->n_embd, (long long)hp->n_layer, (long long)hp->n_head, (long long)hp->n_head_kv);
        return LOOM_ERR_FORMAT;
    }
    hp->head_dim = meta_int(m, arch, "attention.key_length", "head_dim", &v) ? v : hp->n_embd / hp->n_head;
    if (hp->head_dim <= 0 || hp->head_dim % 2 != 0) {
        snprintf(err, err_size, "llama: head dimension %lld is not a positive even number", (long long)hp->head_dim);
        return LOOM_ERR_FORMAT;
    }
    hp->n_rot = meta_int(m, arch, "rope.dimension_count", NULL, &v) ? v : hp->head_dim;
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0) {
        snprintf(err, err_size, "llama: rope.dimension_count %lld is invalid for head dimension %lld",
                 (long long)hp->n_rot, (long long)hp->head_dim);
        return LOOM_ERR_FORMAT;
    }
    hp->n_ctx_train = meta_int(m, arch, "context_length", "max_position_embeddings", &v) ? v : 2048;
    hp->norm_eps = meta_float(m, arch, "attention.layer_norm_rms_epsilon", "rms_norm_eps", &f) ? (float)f : 1e-5f;
    hp->rope_base = meta_float(m, arch, "rope.freq_base", "rope_theta", &f) ? (float)f : 10000.0f;
    if (!(hp->rope_base > 0.0f)) {
        snprintf(err, err_size, "llama: rope frequency base %g is not positive", (double)hp->rope_base);
        return LOOM_ERR_FORMAT;
    }

    /* RoPE scaling: linear (positions / factor) and static NTK (a larger base). */
    hp->rope_pos_scale = 1.0f;
    const char *type = NULL;
    double factor = 1.0;
    bool have_type = meta_str(m, arch, "rope.scaling.type", "rope_scaling.type", &type) ||
                     meta_str(m, NULL, NULL, "rope_scaling.rope_type", &type);
    bool have_factor = meta_float(m, arch, "rope.scaling.factor", "rope_scaling.factor", &factor);
    if (!have_type && meta_float(m, arch, "rope.scale_linear", NULL, &factor)) {
        type = "linear";
        have_type = have_factor = true;
    }
    if (have_type && strcmp(type, "none") != 0 && strcmp(type, "default") != 0) {
        if (!have_factor || !(factor > 0.0)) {
            snprintf(err, err_size, "llama: rope scaling '%s' without a positive factor", type);
            return LOOM_ERR_FORMAT;
        }
        if (!strcmp(type, "linear")) {
            hp->rope_pos_scale = (float)(1.0 / factor);
        } else if (!strcmp(type, "ntk")) {
            double d = (double)hp->n_rot;
            hp->rope_base = (float)((double)hp->rope_base * pow(factor, d / (d - 2.0)));
        } else {
            snprintf(err, err_size, "llama: rope scaling type '%s' is not supported (linear and ntk are)", type);
            return LOOM_ERR_UNSUPPORTED;
        }
    }
    return LOOM_OK;
}

static void llama_model_free(void *arch_model) {
    llama_model *lm = arch_model;
    if (!lm) return;
    H->free(lm->layers);
    H->free(lm);
}

static loom_status llama_model_init(void *state, const loom_model *m, void **arch_model, char *err, size_t err_size) {
    (void)state;
    *arch_model = NULL;
    llama_model *lm = H->alloc(sizeof *lm);
    if (!lm) return LOOM_ERR_OUT_OF_MEMORY;
    memset(lm, 0, sizeof *lm);
    lm->model = m;

    loom_status st = read_hparams(lm, err, err_size);
    if (st != LOOM_OK) goto fail;
    llama_hparams *hp = &lm->hp;

    /* Which naming (and so which RoPE layout) does the file use? */
    loom_tensor *t = NULL;
    if (H->model_tensor(m, GGUF_NAMES.embd, &t) == LOOM_OK) {
        lm->hf_names = false;
    } else if (H->model_tensor(m, HF_NAMES.embd, &t) == LOOM_OK) {
        lm->hf_names = true;
    } else {
        snprintf(err, err_size, "llama: no embedding weight ('%s' or '%s')", GGUF_NAMES.embd, HF_NAMES.embd);
        st = LOOM_ERR_FORMAT;
        goto fail;
    }
    const name_set *N = lm->hf_names ? &HF_NAMES : &GGUF_NAMES;
    hp->rope_mode = lm->hf_names ? ROPE_HALF_SPLIT : ROPE_INTERLEAVED;

    loom_tensor_info info = {.struct_size = sizeof info};
    if ((st = H->tensor_info(t, &info)) != LOOM_OK) goto fail;
    hp->n_vocab = info.ne[1];
    int64_t v = 0;
    if (meta_int(m, model_arch(m), "vocab_size", "vocab_size", &v) && v != hp->n_vocab) {
        H->log(LOOM_LOG_WARN, PLUGIN_NAME, "vocab_size %lld differs from the embedding's %lld rows; using %lld",
               (long long)v, (long long)hp->n_vocab, (long long)hp->n_vocab);
    }
    if (has_tensor(m, N->q_bias, 0)) {
        snprintf(err, err_size, "llama: attention biases are not supported by this plugin");
        st = LOOM_ERR_UNSUPPORTED;
        goto fail;
    }

    /* Feed-forward width: the key, else the gate weight's rows. */
    if (!meta_int(m, model_arch(m), "feed_forward_length", "intermediate_size", &hp->n_ff)) {
        char name[160];
        weight_name(name, sizeof name, N->w_gate, 0);
        if (H->model_tensor(m, name, &t) != LOOM_OK || H->tensor_info(t, &info) != LOOM_OK) {
            snprintf(err, err_size, "llama: no feed_forward_length and no '%s'", name);
            st = LOOM_ERR_FORMAT;
            goto fail;
        }
        hp->n_ff = info.ne[1];
    }

    const int64_t d = hp->n_embd, q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
    if ((st = get_weight(m, N->embd, -1, d, hp->n_vocab, &lm->tok_embd, err, err_size)) != LOOM_OK) goto fail;
    if ((st = get_weight(m, N->out_norm, -1, d, 1, &lm->out_norm, err, err_size)) != LOOM_OK) goto fail;
    if (H->model_tensor(m, N->output, &t) == LOOM_OK) {
        if ((st = get_weight(m, N->output, -1, d, hp->n_vocab, &lm->output, err, err_size)) != LOOM_OK) goto fail;
    } else {
        lm->output = lm->tok_embd;
        lm->tied = true;
    }

    lm->layers = H->alloc(sizeof *lm->layers * (size_t)hp->n_layer);
    if (!lm->layers) {
        st = LOOM_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    for (int l = 0; l < (int)hp->n_layer; l++) {
        llama_layer *L = &lm->layers[l];
        if ((st = get_weight(m, N->attn_norm, l, d, 1, &L->attn_norm, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->wq, l, d, q_dim, &L->wq, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->wk, l, d, kv_dim, &L->wk, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->wv, l, d, kv_dim, &L->wv, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->wo, l, q_dim, d, &L->wo, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->ffn_norm, l, d, 1, &L->ffn_norm, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->w_gate, l, d, hp->n_ff, &L->w_gate, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->w_up, l, d, hp->n_ff, &L->w_up, err, err_size)) != LOOM_OK ||
            (st = get_weight(m, N->w_down, l, hp->n_ff, d, &L->w_down, err, err_size)) != LOOM_OK)
            goto fail;
    }
    H->log(LOOM_LOG_DEBUG, PLUGIN_NAME,
           "%lld layers, n_embd %lld, n_ff %lld, heads %lld/%lld x %lld, vocab %lld, rope %s base %g scale %g%s",
           (long long)hp->n_layer, (long long)d, (long long)hp->n_ff, (long long)hp->n_head, (long long)hp->n_head_kv,
           (long long)hp->head_dim, (long long)hp->n_vocab, hp->rope_mode ? "half-split" : "interleaved",
           (double)hp->rope_base, (double)hp->rope_pos_scale, lm->tied ? ", tied output" : "");
    *arch_model = lm;
    return LOOM_OK;
fail:
    llama_model_free(lm);
    return st;
}

static loom_status llama_model_dims(void *arch_model, int64_t *n_vocab, int64_t *n_ctx_train, int64_t *n_embd,
                                    int64_t *n_layer) {
    const llama_model *lm = arch_model;
    if (n_vocab) *n_vocab = lm->hp.n_vocab;
    if (n_ctx_train) *n_ctx_train = lm->hp.n_ctx_train;
    if (n_embd) *n_embd = lm->hp.n_embd;
    if (n_layer) *n_layer = lm->hp.n_layer;
    return LOOM_OK;
}

/* ============================================================================================ */
/* Context: KV cache and activation buffers                                                     */
/* ============================================================================================ */

typedef struct llama_ctx {
    const llama_model *lm;
    uint32_t n_ctx, n_batch, kv_type;
    loom_tensor **k_cache, **v_cache; /* per layer: [n_ctx, n_head_kv, head_dim] */
    /* Activations for up to n_batch tokens (llama2.c's RunState). */
    loom_tensor *ids, *pos;       /* I32 [n_batch] */
    loom_tensor *x, *x2;          /* residual stream, ping-pong [n_batch, n_embd] */
    loom_tensor *h;               /* normed stream [n_batch, n_embd] */
    loom_tensor *q, *k, *v;       /* projections [n_batch, n_head(_kv) * head_dim] */
    loom_tensor *qr, *kr;         /* rotated q, k */
    loom_tensor *att;             /* attention output [n_batch, n_head * head_dim] */
    loom_tensor *o;               /* attention or FFN output [n_batch, n_embd] */
    loom_tensor *gate, *up, *act; /* FFN [n_batch, n_ff] */
} llama_ctx;

static loom_status new_tensor(loom_exec *e, uint32_t type, int64_t ne0, int64_t ne1, int64_t ne2, uint32_t flags,
                              loom_tensor **out) {
    const int64_t ne[3] = {ne0, ne1, ne2};
    return H->tensor_new(e, type, ne2 > 1 ? 3 : ne1 > 1 ? 2 : 1, ne, flags, out);
}

static void llama_context_free(void *arch_ctx) {
    llama_ctx *c = arch_ctx;
    if (!c) return;
    /* The tensors are persistent tensors of the exec; the engine frees them with it. */
    H->free(c->k_cache);
    H->free(c->v_cache);
    H->free(c);
}

static loom_status llama_context_init(void *arch_model, loom_exec *e, const loom_arch_params *params, void **arch_ctx) {
    const llama_model *lm = arch_model;
    const llama_hparams *hp = &lm->hp;
    *arch_ctx = NULL;
    if (!params || params->n_ctx == 0 || params->n_batch == 0) return LOOM_ERR_INVALID_ARGUMENT;
    if (params->kv_type != LOOM_TYPE_F32 && params->kv_type != LOOM_TYPE_F16) {
        H->exec_set_error(e, "llama: KV cache type %u is not supported (f32 or f16)", (unsigned)params->kv_type);
        return LOOM_ERR_UNSUPPORTED;
    }
    llama_ctx *c = H->alloc(sizeof *c);
    if (!c) return LOOM_ERR_OUT_OF_MEMORY;
    memset(c, 0, sizeof *c);
    c->lm = lm;
    c->n_ctx = params->n_ctx;
    c->n_batch = params->n_batch < params->n_ctx ? params->n_batch : params->n_ctx;
    c->kv_type = params->kv_type;
    c->k_cache = H->alloc(sizeof *c->k_cache * (size_t)hp->n_layer);
    c->v_cache = H->alloc(sizeof *c->v_cache * (size_t)hp->n_layer);
    if (!c->k_cache || !c->v_cache) {
        llama_context_free(c);
        return LOOM_ERR_OUT_OF_MEMORY;
    }

    const uint32_t P = LOOM_TENSOR_PERSISTENT, F32 = LOOM_TYPE_F32;
    const int64_t nb = c->n_batch, d = hp->n_embd, hd = hp->head_dim;
    const int64_t q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    loom_status st = LOOM_OK;
    for (int64_t l = 0; l < hp->n_layer && st == LOOM_OK; l++) {
        st = new_tensor(e, c->kv_type, hd, hp->n_head_kv, c->n_ctx, P, &c->k_cache[l]);
        if (st == LOOM_OK) st = new_tensor(e, c->kv_type, hd, hp->n_head_kv, c->n_ctx, P, &c->v_cache[l]);
    }
    if (st == LOOM_OK) st = new_tensor(e, LOOM_TYPE_I32, nb, 1, 1, P | LOOM_TENSOR_INPUT, &c->ids);
    if (st == LOOM_OK) st = new_tensor(e, LOOM_TYPE_I32, nb, 1, 1, P | LOOM_TENSOR_INPUT, &c->pos);
    if (st == LOOM_OK) st = new_tensor(e, F32, d, nb, 1, P, &c->x);
    if (st == LOOM_OK) st = new_tensor(e, F32, d, nb, 1, P, &c->x2);
    if (st == LOOM_OK) st = new_tensor(e, F32, d, nb, 1, P, &c->h);
    if (st == LOOM_OK) st = new_tensor(e, F32, q_dim, nb, 1, P, &c->q);
    if (st == LOOM_OK) st = new_tensor(e, F32, kv_dim, nb, 1, P, &c->k);
    if (st == LOOM_OK) st = new_tensor(e, F32, kv_dim, nb, 1, P, &c->v);
    if (st == LOOM_OK) st = new_tensor(e, F32, q_dim, nb, 1, P, &c->qr);
    if (st == LOOM_OK) st = new_tensor(e, F32, kv_dim, nb, 1, P, &c->kr);
    if (st == LOOM_OK) st = new_tensor(e, F32, q_dim, nb, 1, P, &c->att);
    if (st == LOOM_OK) st = new_tensor(e, F32, d, nb, 1, P, &c->o);
    if (st == LOOM_OK) st = new_tensor(e, F32, hp->n_ff, nb, 1, P, &c->gate);
    if (st == LOOM_OK) st = new_tensor(e, F32, hp->n_ff, nb, 1, P, &c->up);
    if (st == LOOM_OK) st = new_tensor(e, F32, hp->n_ff, nb, 1, P, &c->act);
    if (st != LOOM_OK) {
        llama_context_free(c);
        return st;
    }
    *arch_ctx = c;
    return LOOM_OK;
}

static loom_status llama_context_reset(void *arch_ctx) {
    /* Positions are passed by the engine (n_past); stale cache rows are never read. */
    (void)arch_ctx;
    return LOOM_OK;
}

/* ============================================================================================ */
/* Forward pass                                                                                 */
/* ============================================================================================ */

/* A contiguous view of `base` with shape ne[0..n_dims), starting `offset` bytes in. */
static loom_tensor *view(loom_exec *e, loom_tensor *base, int64_t ne0, int64_t ne1, int64_t ne2, uint64_t offset) {
    const int64_t ne[3] = {ne0, ne1, ne2};
    loom_tensor *t = NULL;
    if (H->tensor_view(e, base, ne2 > 1 ? 3 : 2, ne, NULL, offset, &t) != LOOM_OK) return NULL;
    return t;
}

static loom_status run(loom_exec *e, uint32_t op, const int32_t *ip, const float *fp, loom_tensor *dst, loom_tensor *a,
                       loom_tensor *b, loom_tensor *c) {
    if (!dst || !a) return LOOM_ERR_OUT_OF_MEMORY; /* a view could not be made */
    loom_op_params p = {.struct_size = sizeof p, .op = op};
    for (int i = 0; i < 2; i++) {
        if (ip) p.i[i] = ip[i];
        if (fp) p.f[i] = fp[i];
    }
    loom_tensor *const srcs[3] = {a, b, c};
    return H->op(e, &p, dst, srcs, c ? 3u : b ? 2u : 1u);
}

#define TRY(expr)                                                                                                      \
    do {                                                                                                               \
        loom_status st_ = (expr);                                                                                      \
        if (st_ != LOOM_OK) return st_;                                                                                \
    } while (0)

static loom_status rms_norm(loom_exec *e, loom_tensor *dst, loom_tensor *x, loom_tensor *w, float eps) {
    const float f[2] = {eps, 0.0f};
    return run(e, LOOM_OP_RMS_NORM, NULL, f, dst, x, w, NULL);
}
static loom_status matmul(loom_exec *e, loom_tensor *dst, loom_tensor *x, loom_tensor *w) {
    return run(e, LOOM_OP_MATMUL, NULL, NULL, dst, x, w, NULL);
}
static loom_status rope(loom_exec *e, loom_tensor *dst, loom_tensor *x, loom_tensor *pos, const llama_hparams *hp) {
    const int32_t i[2] = {hp->rope_mode, (int32_t)hp->n_rot};
    const float f[2] = {hp->rope_base, hp->rope_pos_scale};
    return run(e, LOOM_OP_ROPE, i, f, dst, x, pos, NULL);
}

/*
 * Tokens tokens[0..n) at positions n_past.. -> logits [n, n_vocab] (or [1, n_vocab]: last only).
 */
static loom_status llama_forward(void *arch_ctx, loom_exec *e, const int32_t *tokens, uint32_t n, uint32_t n_past,
                                 loom_tensor *logits) {
    llama_ctx *c = arch_ctx;
    const llama_model *lm = c->lm;
    const llama_hparams *hp = &lm->hp;
    const int64_t d = hp->n_embd, hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv, ff = hp->n_ff;
    if (n == 0 || n > c->n_batch) {
        H->exec_set_error(e, "llama: %u tokens in one forward call (1..%u allowed)", n, c->n_batch);
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    if ((uint64_t)n_past + n > c->n_ctx) {
        H->exec_set_error(e, "llama: %u + %u tokens exceed the context of %u", n_past, n, c->n_ctx);
        return LOOM_ERR_CONTEXT_FULL;
    }
    loom_tensor_info li = {.struct_size = sizeof li};
    TRY(H->tensor_info(logits, &li));
    const bool last_only = li.ne[1] == 1 && n > 1;
    for (uint32_t t = 0; t < n; t++) {
        if (tokens[t] < 0 || tokens[t] >= hp->n_vocab) {
            H->exec_set_error(e, "llama: token id %d out of range (vocabulary of %lld)", tokens[t],
                              (long long)hp->n_vocab);
            return LOOM_ERR_INVALID_ARGUMENT;
        }
        const int32_t p = (int32_t)(n_past + t);
        TRY(H->tensor_write(e, c->pos, (uint64_t)t * sizeof p, &p, sizeof p));
    }
    TRY(H->tensor_write(e, c->ids, 0, tokens, (uint64_t)n * sizeof *tokens));

    /* Views of the first n rows of every buffer. */
    loom_tensor *ids = view(e, c->ids, n, 1, 1, 0), *pos = view(e, c->pos, n, 1, 1, 0);
    loom_tensor *x = view(e, c->x, d, n, 1, 0), *x2 = view(e, c->x2, d, n, 1, 0), *h = view(e, c->h, d, n, 1, 0);
    loom_tensor *q = view(e, c->q, hd * nh, n, 1, 0), *q3 = view(e, c->q, hd, nh, n, 0);
    loom_tensor *k = view(e, c->k, hd * nkv, n, 1, 0), *k3 = view(e, c->k, hd, nkv, n, 0);
    loom_tensor *v = view(e, c->v, hd * nkv, n, 1, 0), *v3 = view(e, c->v, hd, nkv, n, 0);
    loom_tensor *qr = view(e, c->qr, hd, nh, n, 0), *kr = view(e, c->kr, hd, nkv, n, 0);
    loom_tensor *att3 = view(e, c->att, hd, nh, n, 0), *att = view(e, c->att, hd * nh, n, 1, 0);
    loom_tensor *o = view(e, c->o, d, n, 1, 0);
    loom_tensor *gate = view(e, c->gate, ff, n, 1, 0), *up = view(e, c->up, ff, n, 1, 0);
    loom_tensor *act = view(e, c->act, ff, n, 1, 0);
    if (!ids || !pos || !x || !x2 || !h || !q || !q3 || !k || !k3 || !v || !v3 || !qr || !kr || !att3 || !att || !o ||
        !gate || !up || !act)
        return LOOM_ERR_OUT_OF_MEMORY;

    const uint64_t kv_row = (uint64_t)(hd * nkv) * (c->kv_type == LOOM_TYPE_F16 ? 2u : 4u);
    const float att_scale[2] = {1.0f / sqrtf((float)hd), 0.0f};
    const int32_t att_pos[2] = {(int32_t)n_past, 0};

    TRY(run(e, LOOM_OP_GET_ROWS, NULL, NULL, x, lm->tok_embd, ids, NULL));
    for (int64_t l = 0; l < hp->n_layer; l++) {
        const llama_layer *L = &lm->layers[l];

        /* Attention: project, rotate, append to the cache, attend over all cached positions. */
        TRY(rms_norm(e, h, x, L->attn_norm, hp->norm_eps));
        TRY(matmul(e, q, h, L->wq));
        TRY(matmul(e, k, h, L->wk));
        TRY(matmul(e, v, h, L->wv));
        TRY(rope(e, qr, q3, pos, hp));
        TRY(rope(e, kr, k3, pos, hp));
        loom_tensor *k_new = view(e, c->k_cache[l], hd, nkv, n, n_past * kv_row);
        loom_tensor *v_new = view(e, c->v_cache[l], hd, nkv, n, n_past * kv_row);
        loom_tensor *k_all = view(e, c->k_cache[l], hd, nkv, n_past + n, 0);
        loom_tensor *v_all = view(e, c->v_cache[l], hd, nkv, n_past + n, 0);
        if (!k_new || !v_new || !k_all || !v_all) return LOOM_ERR_OUT_OF_MEMORY;
        TRY(run(e, LOOM_OP_COPY, NULL, NULL, k_new, kr, NULL, NULL));
        TRY(run(e, LOOM_OP_COPY, NULL, NULL, v_new, v3, NULL, NULL));
        TRY(run(e, LOOM_OP_ATTENTION, att_pos, att_scale, att3, qr, k_all, v_all));
        TRY(matmul(e, o, att, L->wo));
        TRY(run(e, LOOM_OP_ADD, NULL, NULL, x2, x, o, NULL));

        /* Feed-forward (SwiGLU). */
        TRY(rms_norm(e, h, x2, L->ffn_norm, hp->norm_eps));
        TRY(matmul(e, gate, h, L->w_gate));
        TRY(matmul(e, up, h, L->w_up));
        TRY(run(e, LOOM_OP_SWIGLU, NULL, NULL, act, gate, up, NULL));
        TRY(matmul(e, o, act, L->w_down));
        TRY(run(e, LOOM_OP_ADD, NULL, NULL, x, x2, o, NULL));
    }

    /* Final norm and the output projection (of the last row only when asked). */
    loom_tensor *x_out = x, *h_out = h;
    if (last_only) {
        x_out = view(e, c->x, d, 1, 1, (uint64_t)(n - 1) * (uint64_t)d * sizeof(float));
        h_out = view(e, c->h, d, 1, 1, 0);
        if (!x_out || !h_out) return LOOM_ERR_OUT_OF_MEMORY;
    }
    TRY(rms_norm(e, h_out, x_out, lm->out_norm, hp->norm_eps));
    TRY(matmul(e, logits, h_out, lm->output));
    return LOOM_OK;
}

/* ============================================================================================ */
/* Weight roles and metadata export                                                             */
/* ============================================================================================ */

static const char *tensor_name(loom_tensor *t) {
    loom_tensor_info info = {.struct_size = sizeof info};
    return H->tensor_info(t, &info) == LOOM_OK ? info.name : "";
}

static int32_t visit_weight(loom_weight_visit_fn visit, void *user, uint32_t role, int32_t layer, int32_t head_dim,
                            loom_tensor *t, loom_tensor *norm, const char *group) {
    loom_weight_desc w = {
        .struct_size = sizeof w,
        .role = role,
        .layer = layer,
        .head_dim = head_dim,
        .name = tensor_name(t),
        .norm = norm ? tensor_name(norm) : NULL,
        .group = group,
    };
    return visit(&w, user);
}

/* Roles: the embedding reads the stream; Q/K/V and gate/up read the normed stream (grouped by
 * shared input); O and down write it; the head reads the final norm. A tied head is reported
 * as a HEAD entry naming the embedding tensor, after its EMBEDDING entry. */
static loom_status llama_describe_weights(void *arch_model, loom_weight_visit_fn visit, void *user) {
    const llama_model *lm = arch_model;
    const int32_t hd = (int32_t)lm->hp.head_dim;
    if (visit_weight(visit, user, LOOM_ROLE_EMBEDDING, -1, 0, lm->tok_embd, NULL, NULL)) return LOOM_OK;
    for (int32_t l = 0; l < (int32_t)lm->hp.n_layer; l++) {
        const llama_layer *L = &lm->layers[l];
        if (visit_weight(visit, user, LOOM_ROLE_NORM, l, 0, L->attn_norm, NULL, NULL) ||
            visit_weight(visit, user, LOOM_ROLE_RESIDUAL_READER, l, hd, L->wq, L->attn_norm, "attn_in") ||
            visit_weight(visit, user, LOOM_ROLE_RESIDUAL_READER, l, hd, L->wk, L->attn_norm, "attn_in") ||
            visit_weight(visit, user, LOOM_ROLE_RESIDUAL_READER, l, hd, L->wv, L->attn_norm, "attn_in") ||
            visit_weight(visit, user, LOOM_ROLE_RESIDUAL_WRITER, l, 0, L->wo, NULL, NULL) ||
            visit_weight(visit, user, LOOM_ROLE_NORM, l, 0, L->ffn_norm, NULL, NULL) ||
            visit_weight(visit, user, LOOM_ROLE_RESIDUAL_READER, l, 0, L->w_gate, L->ffn_norm, "ffn_in") ||
            visit_weight(visit, user, LOOM_ROLE_RESIDUAL_READER, l, 0, L->w_up, L->ffn_norm, "ffn_in") ||
            visit_weight(visit, user, LOOM_ROLE_RESIDUAL_WRITER, l, 0, L->w_down, NULL, NULL))
            return LOOM_OK;
    }
    if (visit_weight(visit, user, LOOM_ROLE_NORM, -1, 0, lm->out_norm, NULL, NULL)) return LOOM_OK;
    visit_weight(visit, user, LOOM_ROLE_HEAD, -1, 0, lm->output, lm->out_norm, NULL);
    return LOOM_OK;
}

/* Metadata for a converted GGUF: llama.cpp's key names. Values of type string are passed as a
 * pointer to a `const char *`. Tensors keep their names, and the names decide the RoPE layout. */
static loom_status llama_export_metadata(void *arch_model, loom_meta_visit_fn visit, void *user) {
    const llama_model *lm = arch_model;
    const llama_hparams *hp = &lm->hp;
    const char *arch = "llama";
    struct {
        const char *key;
        uint32_t u;
    } ints[] = {
        {"llama.context_length", (uint32_t)hp->n_ctx_train},
        {"llama.embedding_length", (uint32_t)hp->n_embd},
        {"llama.block_count", (uint32_t)hp->n_layer},
        {"llama.feed_forward_length", (uint32_t)hp->n_ff},
        {"llama.attention.head_count", (uint32_t)hp->n_head},
        {"llama.attention.head_count_kv", (uint32_t)hp->n_head_kv},
        {"llama.attention.key_length", (uint32_t)hp->head_dim},
        {"llama.attention.value_length", (uint32_t)hp->head_dim},
        {"llama.rope.dimension_count", (uint32_t)hp->n_rot},
        {"llama.vocab_size", (uint32_t)hp->n_vocab},
    };
    if (visit("general.architecture", LOOM_META_STRING, 0, 1, &arch, user)) return LOOM_OK;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (visit(ints[i].key, LOOM_META_U32, 0, 1, &ints[i].u, user)) return LOOM_OK;
    }
    const float base = hp->rope_base, eps = hp->norm_eps;
    if (visit("llama.rope.freq_base", LOOM_META_F32, 0, 1, &base, user)) return LOOM_OK;
    if (visit("llama.attention.layer_norm_rms_epsilon", LOOM_META_F32, 0, 1, &eps, user)) return LOOM_OK;
    if (hp->rope_pos_scale != 1.0f) {
        const char *type = "linear";
        const float factor = 1.0f / hp->rope_pos_scale;
        if (visit("llama.rope.scaling.type", LOOM_META_STRING, 0, 1, &type, user)) return LOOM_OK;
        if (visit("llama.rope.scaling.factor", LOOM_META_F32, 0, 1, &factor, user)) return LOOM_OK;
    }
    return LOOM_OK;
}

/* ============================================================================================ */
/* Descriptor                                                                                   */
/* ============================================================================================ */

static const loom_arch_api ARCH_API = {
    .struct_size = sizeof(loom_arch_api),
    .match = llama_match,
    .model_init = llama_model_init,
    .model_free = llama_model_free,
    .model_dims = llama_model_dims,
    .context_init = llama_context_init,
    .context_free = llama_context_free,
    .context_reset = llama_context_reset,
    .forward = llama_forward,
    .describe_weights = llama_describe_weights,
    .export_metadata = llama_export_metadata,
};

static loom_status llama_init(const loom_host_api *host, void **state, char *reason, size_t reason_size) {
    (void)reason;
    (void)reason_size;
    H = host;
    *state = NULL;
    return LOOM_OK;
}

static const loom_plugin_desc DESC = {
    .struct_size = sizeof(loom_plugin_desc),
    .abi_major = LOOM_ABI_MAJOR,
    .abi_minor = LOOM_ABI_MINOR,
    .kind = LOOM_PLUGIN_KIND_ARCHITECTURE,
    .n_options = 0,
    .name = PLUGIN_NAME,
    .version = "0.1.0",
    .vendor = "Loom",
    .description = "Llama family: Llama 2/3, Mistral, TinyLlama, SmolLM2 (GGUF and Hugging Face layouts)",
    .capabilities = 0,
    .options = NULL,
    .api = &ARCH_API,
    .init = llama_init,
    .shutdown = NULL,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);
LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR || !host) return NULL;
    if (host->struct_size < offsetof(loom_host_api, exec_set_error) + sizeof host->exec_set_error) return NULL;
    H = host;
    return &DESC;
}

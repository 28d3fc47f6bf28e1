/*
 * arch_common.h - shared code of the seed architecture plugins (DenseFormer, CoTFormer, landmark
 * attention), compiled into each plugin. It uses only the plugin ABI (abi/loom_plugin.h) and the
 * host table.
 *
 * Two block flavours:
 *  - GPT-style (nanoGPT, as in the official code of the three papers): pre-norm LayerNorm without
 *    bias (eps 1e-5), fused c_attn split into q, k, v (head h uses columns [h*hs, (h+1)*hs)),
 *    interleaved rotary embedding over the whole head (pairs (2i, 2i+1), base 10000), exact erf
 *    GELU MLP, tied wte / lm_head, final ln_f;
 *  - Llama-style (landmark attention's LLaMA variant): RMSNorm, separate q/k/v/o projections,
 *    half-split rotary embedding, SwiGLU MLP, untied head.
 *
 * Ops run through host->op. Wrappers return NULL on failure after recording the first error in
 * the ac_env, and return NULL at once when an input is NULL, so a forward pass reads top to
 * bottom and checks the status at a few points.
 */
#ifndef LOOM_ARCH_COMMON_H
#define LOOM_ARCH_COMMON_H

#include "loom_plugin.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define AC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AC_PRINTF(a, b)
#endif

enum { AC_BLOCK_GPT = 0, AC_BLOCK_LLAMA = 1 };

/* ---------------------------------------------------------------------------------------- */
/* Model-level facts and lookups                                                              */
/* ---------------------------------------------------------------------------------------- */

typedef struct ac_model {
    const loom_host_api *host;
    const loom_model *model;
    const char *arch; /* canonical architecture name ("denseformer", ...) */
    int32_t style;    /* AC_BLOCK_* */
    int64_t n_vocab;
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_head;
    int64_t n_head_kv;
    int64_t head_dim;
    int64_t n_ff;
    int64_t n_layer;
    double norm_eps;
    double rope_base;
    loom_tensor *tok_embd; /* [n_embd, n_vocab] */
    loom_tensor *out_norm; /* ln_f / norm */
    loom_tensor *output;   /* head (== tok_embd when tied) */
} ac_model;

/* One transformer block's weights. GPT style uses wqkv; Llama style wq/wk/wv and ffn_gate. */
typedef struct ac_block {
    loom_tensor *attn_norm;
    loom_tensor *wqkv;
    loom_tensor *wq, *wk, *wv;
    loom_tensor *wo;
    loom_tensor *ffn_norm;
    loom_tensor *ffn_up; /* c_fc / up_proj */
    loom_tensor *ffn_gate;
    loom_tensor *ffn_down; /* mlp.c_proj / down_proj */
} ac_block;

/* Integer hyperparameter: "<arch>.<key>" (a converted file) first, then each of `cfg` (a
 * NULL-terminated list of names) under "config.model_hparams.", "config." and "config.args."
 * (an official checkpoint with the fixture-style config.json, flattened by the file layer).
 * LOOM_ERR_NOT_FOUND when none exists. */
loom_status ac_get_int(const ac_model *m, const char *key, const char *const *cfg, int64_t *out);
loom_status ac_get_float(const ac_model *m, const char *key, const char *const *cfg, double *out);
/* String hyperparameter (borrowed from the model). JSON null counts as absent. */
loom_status ac_get_string(const ac_model *m, const char *key, const char *const *cfg, const char **out);
/* A raw metadata key (no prefixes added). */
loom_status ac_meta_int(const ac_model *m, const char *full_key, int64_t *out);
loom_status ac_meta_string(const ac_model *m, const char *full_key, const char **out);

/* A weight by its official name, also under the "_orig_mod." / "module." prefixes checkpoints
 * may carry. NULL when absent. */
loom_tensor *ac_weight(const ac_model *m, const char *name);
/* printf-style name. */
loom_tensor *ac_weightf(const ac_model *m, const char *fmt, ...) AC_PRINTF(2, 3);
/* First existing name of a NULL-terminated list. */
loom_tensor *ac_weight_any(const ac_model *m, const char *const *names);
/* True when the weight exists and has 2 dims [ne0, ne1] (ne1 = 1 also accepts 1-D [ne0]). */
int ac_weight_shape_is(const ac_model *m, const loom_tensor *t, int64_t ne0, int64_t ne1);
/* Shape of a tensor (ne[0..3], unused dims 1); returns the number of dims or 0 on failure. */
uint32_t ac_tensor_shape(const loom_host_api *host, const loom_tensor *t, int64_t ne[4]);

/* Fill the common GPT-style dimensions of `m` (style GPT): the embedding (names `emb_names`),
 * ln_f (`norm_names`), the head (`head_names`, falling back to the embedding: tied), the width
 * from the embedding, heads from "<arch>.attention.head_count" / n_head, context length,
 * eps 1e-5, rope base 10000. `n_layer` must already be set by the caller (or 0). */
loom_status ac_model_init_gpt(ac_model *m, const char *const *emb_names, const char *const *norm_names,
                              const char *const *head_names, char *err, size_t err_size);
/* Load a GPT-style block whose weights are named "<prefix>ln_1.weight", "<prefix>attn.c_attn.weight",
 * ... and check their shapes. */
loom_status ac_block_load_gpt(const ac_model *m, const char *prefix, ac_block *b, char *err, size_t err_size);
/* Load a Llama-style block ("<prefix>input_layernorm.weight", "<prefix>self_attn.q_proj.weight",
 * ... in Hugging Face naming, or GGUF naming "blk.N.attn_q.weight" when prefix ends with '.'
 * and the HF names are absent). */
loom_status ac_block_load_llama(const ac_model *m, const char *prefix, ac_block *b, char *err, size_t err_size);

/* ---------------------------------------------------------------------------------------- */
/* Forward-pass environment and op wrappers                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct ac_env {
    const loom_host_api *host;
    loom_exec *exec;
    const ac_model *m;
    loom_status status; /* first failure */
} ac_env;

void ac_env_init(ac_env *e, const ac_model *m, loom_exec *exec);
/* Record a failure (first one wins) with a message on the exec; returns NULL. */
loom_tensor *ac_fail(ac_env *e, loom_status st, const char *fmt, ...) AC_PRINTF(3, 4);

/* New scratch F32 tensor of shape ne[0..n) (or persistent with LOOM_TENSOR_PERSISTENT). */
loom_tensor *ac_new(ac_env *e, uint32_t type, uint32_t n_dims, const int64_t *ne, uint32_t flags);
loom_tensor *ac_new_f32_2d(ac_env *e, int64_t ne0, int64_t ne1);
loom_tensor *ac_new_f32_3d(ac_env *e, int64_t ne0, int64_t ne1, int64_t ne2);
/* View with shape and byte strides (nb may be NULL: contiguous). */
loom_tensor *ac_view(ac_env *e, loom_tensor *base, uint32_t n_dims, const int64_t *ne, const int64_t *nb,
                     uint64_t offset);
/* Host <-> tensor. */
int ac_write(ac_env *e, loom_tensor *t, uint64_t offset, const void *src, uint64_t size);
int ac_read(ac_env *e, const loom_tensor *t, uint64_t offset, void *dst, uint64_t size);
/* I32 tensor from host values. */
loom_tensor *ac_i32(ac_env *e, const int32_t *v, int64_t n);
/* F32 tensor of shape ne from host values. */
loom_tensor *ac_f32_from(ac_env *e, const float *v, uint32_t n_dims, const int64_t *ne);

/* Run an op into an existing dst. Returns dst or NULL. */
loom_tensor *ac_op(ac_env *e, const loom_op_params *p, loom_tensor *dst, loom_tensor *const *src, uint32_t n);

loom_tensor *ac_get_rows(ac_env *e, loom_tensor *table, loom_tensor *ids);
loom_tensor *ac_layer_norm(ac_env *e, loom_tensor *x, loom_tensor *w, double eps);
loom_tensor *ac_rms_norm(ac_env *e, loom_tensor *x, loom_tensor *w, double eps);
/* The model's block norm (LayerNorm for GPT style, RMSNorm for Llama style). */
loom_tensor *ac_norm(ac_env *e, loom_tensor *x, loom_tensor *w);
loom_tensor *ac_add(ac_env *e, loom_tensor *a, loom_tensor *b);
loom_tensor *ac_mul(ac_env *e, loom_tensor *a, loom_tensor *b);
loom_tensor *ac_scale(ac_env *e, loom_tensor *a, float s);
/* y = x W^T: x [k, n...], W [k, m] -> [m, n...]. */
loom_tensor *ac_matmul(ac_env *e, loom_tensor *x, loom_tensor *w);
/* Same into an existing dst. */
loom_tensor *ac_matmul_into(ac_env *e, loom_tensor *dst, loom_tensor *x, loom_tensor *w);
loom_tensor *ac_gelu(ac_env *e, loom_tensor *x);
loom_tensor *ac_swiglu(ac_env *e, loom_tensor *gate, loom_tensor *up);
/* Contiguous copy (with type conversion) of any view. */
loom_tensor *ac_cont(ac_env *e, loom_tensor *x, uint32_t type);
/* dst <- src (shapes hold the same number of elements). */
loom_tensor *ac_copy_into(ac_env *e, loom_tensor *dst, loom_tensor *src);
/* Rotary embedding of x [hd, n_head, n_tok] at positions pos (I32 [n_tok]). */
loom_tensor *ac_rope(ac_env *e, loom_tensor *x, loom_tensor *pos, int32_t mode);
/* Softmax of x * scale (+ mask). */
loom_tensor *ac_softmax(ac_env *e, loom_tensor *x, loom_tensor *mask, float scale);
/* dst[n, d] = sum_s w[s] * states[s, n, d]. */
loom_tensor *ac_weighted_sum(ac_env *e, loom_tensor *states, loom_tensor *w);

/* ---------------------------------------------------------------------------------------- */
/* Blocks                                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* q, k, v of a normalised input xn [n_embd, n_tok] as contiguous [hd, n_head(_kv), n_tok]
 * tensors. When pos is not NULL, q and k are rotated (mode by the model's style). */
int ac_qkv(ac_env *e, const ac_block *b, loom_tensor *xn, loom_tensor *pos, loom_tensor **q, loom_tensor **k,
           loom_tensor **v);
/* Attention output [hd, n_head, n_tok] -> residual contribution [n_embd, n_tok] via wo. */
loom_tensor *ac_attn_out(ac_env *e, const ac_block *b, loom_tensor *attn);
/* The block's MLP applied to x (includes the ffn norm): returns x + mlp(norm(x)). */
loom_tensor *ac_ffn_residual(ac_env *e, const ac_block *b, loom_tensor *x);

/* A per-layer K/V cache: [hd, n_head_kv, n_slots] persistent tensors of kv_type. */
typedef struct ac_kv {
    loom_tensor *k;
    loom_tensor *v;
    int64_t n_slots;
    uint32_t type;
} ac_kv;
loom_status ac_kv_alloc(ac_env *e, ac_kv *kv, int64_t n_slots, uint32_t type);
/* Write k, v [hd, n_head_kv, n] at slot `slot`. */
int ac_kv_store(ac_env *e, ac_kv *kv, int64_t slot, loom_tensor *k, loom_tensor *v);
/* View of slots [first, first+n) as [hd, n_head_kv, n]. */
loom_tensor *ac_kv_view_k(ac_env *e, ac_kv *kv, int64_t first, int64_t n);
loom_tensor *ac_kv_view_v(ac_env *e, ac_kv *kv, int64_t first, int64_t n);

/* Causal attention of q [hd, H, n_tok] over cached keys 0..n_past+n_tok-1 (ATTENTION op). */
loom_tensor *ac_attention_causal(ac_env *e, loom_tensor *q, loom_tensor *k_all, loom_tensor *v_all, int64_t n_past);
/* Masked attention of q [hd, H, n_tok] over keys K, V [hd, H_kv, n_keys] with an additive mask
 * (host floats [n_tok][n_keys], 0 or -INFINITY), composed of COPY, MATMUL, SOFTMAX. */
loom_tensor *ac_attention_masked(ac_env *e, loom_tensor *q, loom_tensor *k, loom_tensor *v, const float *mask);

/* A whole standard block with a KV cache (attention over slots 0..n_past+n_tok-1). */
loom_tensor *ac_block_forward_cached(ac_env *e, const ac_block *b, loom_tensor *x, loom_tensor *pos, ac_kv *kv,
                                     int64_t n_past);

/* Final norm + head for the last `n_rows` rows of x [n_embd, n_tok] into logits [n_vocab, n_rows]. */
int ac_head(ac_env *e, loom_tensor *x, loom_tensor *logits);

/* Positions n_past .. n_past+n-1 as an I32 tensor. */
loom_tensor *ac_positions(ac_env *e, int64_t n_past, int64_t n);

/* ---------------------------------------------------------------------------------------- */
/* Metadata export helpers (for export_metadata)                                             */
/* ---------------------------------------------------------------------------------------- */

typedef struct ac_exporter {
    loom_meta_visit_fn visit;
    void *user_data;
    const char *arch;
    int32_t stopped;
} ac_exporter;

void ac_export_u32(ac_exporter *x, const char *key, uint32_t v);
void ac_export_i32(ac_exporter *x, const char *key, int32_t v);
void ac_export_f32(ac_exporter *x, const char *key, float v);
void ac_export_bool(ac_exporter *x, const char *key, bool v);
void ac_export_str(ac_exporter *x, const char *key, const char *v);
void ac_export_f32_array(ac_exporter *x, const char *key, const float *v, uint64_t n);
/* "general.architecture", "<arch>.block_count", embedding_length, feed_forward_length,
 * attention.head_count(_kv), attention.layer_norm(_rms)_epsilon, rope.freq_base,
 * rope.dimension_count, context_length, vocab_size, "<arch>.block_style". */
void ac_export_common(ac_exporter *x, const ac_model *m);

/* ---------------------------------------------------------------------------------------- */
/* Weight roles (describe_weights)                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Visit one weight (skipped when NULL). Returns non-zero when the visitor asked to stop. */
int32_t ac_describe(const ac_model *m, loom_tensor *w, uint32_t role, int32_t layer, int32_t head_dim,
                    loom_tensor *norm, const char *group, loom_weight_visit_fn visit, void *user_data);
/* Every weight of a block, with its norm and group. */
int32_t ac_describe_block(const ac_model *m, const ac_block *b, int32_t layer, loom_weight_visit_fn visit,
                          void *user_data);
/* Embedding, final norm and head. */
int32_t ac_describe_ends(const ac_model *m, loom_weight_visit_fn visit, void *user_data);

/* ---------------------------------------------------------------------------------------- */
/* Plugin glue shared by the three plugins                                                    */
/* ---------------------------------------------------------------------------------------- */

/* A probe model for match(): host, model and arch set, everything else zero. */
void ac_probe_init(ac_model *m, const loom_host_api *host, const loom_model *model, const char *arch);
/* The name checks of match(): 100 / 0 when the file names its architecture
 * (general.architecture), 90 when an official checkpoint's config names m->arch (config.arch),
 * -1 when neither decides (the caller then looks at weight names). */
int32_t ac_match_name(const ac_model *m);
/* model_dims for a plugin model struct whose first member is its ac_model. */
loom_status ac_model_dims(void *arch_model, int64_t *n_vocab, int64_t *n_ctx_train, int64_t *n_embd, int64_t *n_layer);
/* The plugin's init: nothing to set up (the entry point keeps the host table). */
loom_status ac_plugin_init(const loom_host_api *host, void **state, char *reason, size_t reason_size);
/* forward()'s checks: n_past + n_tokens within n_ctx, every token id within the vocabulary.
 * Records the error in e and returns its status. */
loom_status ac_check_tokens(ac_env *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_past, int64_t n_ctx);

/* Small string helper: snprintf into a fixed buffer. */
const char *ac_fmt(char *buf, size_t size, const char *fmt, ...) AC_PRINTF(3, 4);

#endif /* LOOM_ARCH_COMMON_H */

/*
 * loom.h - the application API of Loom.
 *
 * Conventions: every fallible call returns loom_status (LOOM_OK = 0); out-parameters come last
 * and are set to NULL/0 on failure; objects come in _create/_free (or _load/_free) pairs and
 * _free(NULL) does nothing; loom_<object>_last_error() returns a detailed message for the last
 * failure on that handle (borrowed, valid until the next call on the handle).
 *
 * Threads: an engine and a model may be shared between threads (read-only use); a context is
 * used by one thread at a time. Several contexts of one model may run in parallel.
 */
#ifndef LOOM_H
#define LOOM_H

#include "loom_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================ */
/* Opaque handles                                                                               */
/* ============================================================================================ */

typedef struct loom_options loom_options;
typedef struct loom_engine loom_engine;
typedef struct loom_model loom_model;
typedef struct loom_context loom_context;
typedef struct loom_sampler loom_sampler;

/* ============================================================================================ */
/* Library                                                                                      */
/* ============================================================================================ */

/* Run-time version as (major << 16) | (minor << 8) | patch. */
LOOM_API uint32_t loom_version(void);
/* Run-time version string, e.g. "0.1.0" (static). */
LOOM_API const char *loom_version_string(void);
/* Static English text for a status code ("unknown status" for unknown codes). */
LOOM_API const char *loom_status_string(loom_status status);
/* Replace the process-wide log sink (NULL restores the default: stderr). Messages above
 * `max_level` (LOOM_LOG_*) are dropped. Thread-safe. */
LOOM_API void loom_log_set_callback(loom_log_fn fn, void *user_data, int32_t max_level);

/* ============================================================================================ */
/* Options: one flat, namespaced key/value model                                                */
/* ============================================================================================ */

/*
 * Keys: "backend", "threads", "ctx_size", "batch_size", "plugin_path", "plugins.enable",
 * "plugins.disable", "log_level", "kv_type", "seed", and "plugin.<name>.<key>" for plugin
 * options. Precedence: defaults < file < environment (LOOM_OPT_<KEY>, dots as "__") < command
 * line / API. See docs/configuration.md.
 */
LOOM_API loom_status loom_options_create(loom_options **out);
LOOM_API void loom_options_free(loom_options *options);
/* Set `key` to `value` from `source` (LOOM_SOURCE_*). A value from a lower-precedence source
 * never replaces one from a higher source. Copies both strings. */
LOOM_API loom_status loom_options_set(loom_options *options, const char *key, const char *value, int32_t source);
/* Read a configuration file ("key = value" lines, '#' comments, [section] prefixes). */
LOOM_API loom_status loom_options_load_file(loom_options *options, const char *path);
/* Read LOOM_OPT_* variables (secure_getenv). */
LOOM_API loom_status loom_options_load_env(loom_options *options);
/* Effective value of `key` (borrowed, valid until the next change) or LOOM_ERR_NOT_FOUND. */
LOOM_API loom_status loom_options_get(const loom_options *options, const char *key, const char **value,
                                      int32_t *source);
LOOM_API uint32_t loom_options_count(const loom_options *options);
/* Entry i in sorted key order (borrowed strings). */
LOOM_API loom_status loom_options_at(const loom_options *options, uint32_t index, const char **key, const char **value,
                                     int32_t *source);
LOOM_API const char *loom_options_last_error(const loom_options *options);

/* ============================================================================================ */
/* Engine: plugin discovery and configuration                                                   */
/* ============================================================================================ */

/* Create an engine: validate options, discover and load plugins. `options` is copied and may
 * be NULL (defaults + environment). Unknown keys fail with LOOM_ERR_CONFIG; keys of plugins
 * that are not loaded only warn. On failure *out is NULL and, when `error` is not NULL, a
 * message is written there. */
LOOM_API loom_status loom_engine_create(const loom_options *options, loom_engine **out, char *error, size_t error_size);
LOOM_API void loom_engine_free(loom_engine *engine);
LOOM_API const char *loom_engine_last_error(const loom_engine *engine);
/* The engine's effective options, with defaults filled in (borrowed, engine-owned). */
LOOM_API const loom_options *loom_engine_options(const loom_engine *engine);

typedef struct loom_plugin_info {
    uint32_t struct_size;
    uint32_t kind;      /* LOOM_PLUGIN_KIND_* (0 when rejected before the descriptor) */
    uint32_t state;     /* LOOM_PLUGIN_AVAILABLE / _UNAVAILABLE / _REJECTED */
    uint32_t n_devices; /* backends: devices found */
    uint32_t abi_major;
    uint32_t abi_minor; /* negotiated minor */
    const char *name;   /* borrowed from the engine; "" when unknown */
    const char *version;
    const char *vendor;
    const char *description;
    const char *path;   /* real path of the shared object */
    const char *reason; /* why unavailable or rejected; "" when available */
} loom_plugin_info;

LOOM_API uint32_t loom_engine_plugin_count(const loom_engine *engine);
/* `out->struct_size` must be set by the caller; fields beyond it are not written. */
LOOM_API loom_status loom_engine_plugin_info(const loom_engine *engine, uint32_t index, loom_plugin_info *out);

typedef struct loom_device_desc {
    uint32_t struct_size;
    uint32_t compute_units;
    uint64_t memory_bytes;
    uint64_t max_alloc_bytes;
    uint64_t capabilities;
    char name[128];
    char description[256];
} loom_device_desc;

/* Device `device` of backend plugin number `plugin` (an index of loom_engine_plugin_info). */
LOOM_API loom_status loom_engine_device_info(const loom_engine *engine, uint32_t plugin, uint32_t device,
                                             loom_device_desc *out);

/* ============================================================================================ */
/* Models                                                                                       */
/* ============================================================================================ */

/* Progress callback for long work: `done` of `total` units; return false to cancel. */
typedef bool (*loom_progress_fn)(uint64_t done, uint64_t total, void *user_data);

typedef struct loom_model_params {
    uint32_t struct_size;
    uint32_t reserved;
    loom_progress_fn progress; /* may be NULL */
    void *progress_user_data;
} loom_model_params;

/* Load a model from a .gguf file, a .safetensors file or a Hugging Face folder. `params` may be
 * NULL. The weights stay memory-mapped (zero copy) where the backend can use them directly. */
LOOM_API loom_status loom_model_load(loom_engine *engine, const char *path, const loom_model_params *params,
                                     loom_model **out);
LOOM_API void loom_model_free(loom_model *model);
/* Last error of loom_model_load is reported by loom_engine_last_error. */
LOOM_API const char *loom_model_last_error(const loom_model *model);

typedef struct loom_model_info {
    uint32_t struct_size;
    uint32_t n_tensors;
    int64_t n_vocab;
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_layer;
    int32_t bos_token; /* -1 when none */
    int32_t eos_token; /* -1 when none */
    uint64_t file_bytes;
    uint64_t weight_bytes;
    double load_seconds;
    const char *architecture; /* borrowed */
    const char *arch_plugin;  /* name of the plugin running it */
    const char *name;         /* general.name or "" */
    const char *path;
    const char *tokenizer; /* "llama" (SentencePiece BPE), "gpt2" (byte-level BPE) or "" */
} loom_model_info;

LOOM_API loom_status loom_model_get_info(const loom_model *model, loom_model_info *out);

/* Metadata entry i rendered as text (arrays abbreviated). Borrowed until the next call. */
LOOM_API uint32_t loom_model_meta_count(const loom_model *model);
LOOM_API loom_status loom_model_meta_at(const loom_model *model, uint32_t index, const char **key,
                                        const char **value_text);

typedef struct loom_tensor_desc {
    uint32_t struct_size;
    uint32_t type; /* LOOM_TYPE_* */
    uint32_t n_dims;
    uint32_t reserved;
    int64_t ne[4];
    uint64_t bytes;
    uint64_t file_offset;
    const char *name; /* borrowed */
} loom_tensor_desc;

LOOM_API loom_status loom_model_tensor_at(const loom_model *model, uint32_t index, loom_tensor_desc *out);
/* Name of a LOOM_TYPE_* ("f32", "q4_1", ...), static. */
LOOM_API const char *loom_type_name(uint32_t type);

/* ---- tokenizer ---- */
enum {
    LOOM_TOKENIZE_ADD_BOS = 1u << 0,      /* add BOS when the model asks for it */
    LOOM_TOKENIZE_PARSE_SPECIAL = 1u << 1 /* turn special-token text (<|im_start|>) into ids */
};

/* Tokenize `text_len` bytes. On LOOM_ERR_BUFFER_TOO_SMALL *n_tokens holds the needed count. */
LOOM_API loom_status loom_model_tokenize(const loom_model *model, const char *text, size_t text_len, uint32_t flags,
                                         int32_t *tokens, size_t capacity, size_t *n_tokens);
/* The text of one token (special tokens rendered only with `render_special`). */
LOOM_API loom_status loom_model_token_piece(const loom_model *model, int32_t token, bool render_special, char *buf,
                                            size_t capacity, size_t *length);
/* Detokenize a whole sequence (handles the leading-space rule of SentencePiece models). */
LOOM_API loom_status loom_model_detokenize(const loom_model *model, const int32_t *tokens, size_t n_tokens,
                                           bool render_special, char *buf, size_t capacity, size_t *length);

typedef struct loom_chat_message {
    uint32_t struct_size;
    uint32_t reserved;
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} loom_chat_message;

/* Render a conversation with the model's chat template (ChatML, Llama-2 [INST], ...).
 * LOOM_ERR_UNSUPPORTED with a message naming the template when it is not recognised. */
LOOM_API loom_status loom_model_chat_format(const loom_model *model, const loom_chat_message *messages,
                                            size_t n_messages, bool add_assistant_prompt, char *buf, size_t capacity,
                                            size_t *length);

/* `type` of loom_model_save that keeps every stored tensor type. */
#define LOOM_SAVE_KEEP_TYPES 0xffffffffu

/* Write `model` as a GGUF file at `path`: every tensor of its file (LOOM_SAVE_KEEP_TYPES keeps
 * every type; LOOM_TYPE_F32 or LOOM_TYPE_F16 converts every float and quantized tensor, as
 * llama.cpp's quantize tool with ALL_F32; LOOM_TYPE_Q8_0 quantizes the weight matrices that
 * llama.cpp's MOSTLY_Q8_0 quantizes (2-D weights, the token embedding and the output; norms and
 * other tensors keep their type; rows that are not whole 32-element blocks become F32); integer
 * tensors are always kept), the file's metadata (less the flattened "config.*" keys of a checkpoint's config.json)
 * and the canonical metadata its architecture plugin exports, so that an official checkpoint
 * (safetensors + config.json) becomes a self-describing model file (`loom convert`). On failure
 * the message is in loom_engine_last_error of the model's engine. */
LOOM_API loom_status loom_model_save(loom_model *model, const char *path, uint32_t type);
/* Recover fine-tuned weights published as a difference to a base model (landmark attention's
 * LLaMA-7B weight diff): `diff` is the loaded difference (its config.json names the fine-tuned
 * model), `base_path` the base checkpoint. Each tensor becomes base + diff; vocabulary rows the
 * base lacks ([PAD], <landmark>) start from the mean of the base rows, as the official recover()
 * resizes the embeddings; the sum of all recovered weights is checked against the diff folder's
 * checksum_psum.txt (tolerance 1e-2); the result is written as a GGUF file at `path` with F32
 * or F16 tensors (`type`; LOOM_SAVE_KEEP_TYPES means F32). On failure the message is in loom_engine_last_error of the model's engine. */
LOOM_API loom_status loom_model_save_weight_diff(loom_model *diff, const char *base_path, const char *path,
                                                 uint32_t type);
/* Write a Llama-family GGUF model (general.architecture llama, llama.cpp tensor names, a
 * byte-level BPE vocabulary) as a Hugging Face folder `dir` (created when absent, files replaced):
 * model.safetensors (every tensor dequantized to F32 under its Hugging Face name, the rows of Q
 * and K un-permuted back to the half-split RoPE layout that llama.cpp's converter interleaves),
 * config.json, tokenizer.json and tokenizer_config.json (with the chat template). Other models
 * give LOOM_ERR_UNSUPPORTED; on failure the message is in loom_engine_last_error of the model's
 * engine. */
LOOM_API loom_status loom_model_save_hf(loom_model *model, const char *dir);

/* ============================================================================================ */
/* Inference contexts                                                                           */
/* ============================================================================================ */

typedef struct loom_context_params {
    uint32_t struct_size;
    uint32_t n_ctx;      /* 0 = option "ctx_size" or the model's training context */
    uint32_t n_batch;    /* 0 = option "batch_size" */
    uint32_t n_threads;  /* 0 = option "threads" */
    const char *backend; /* NULL = option "backend" (e.g. "cpu", "opencl", "cuda:0,cpu") */
} loom_context_params;

/* Create an inference context (KV cache, scratch memory) on the chosen backend. */
LOOM_API loom_status loom_context_create(loom_model *model, const loom_context_params *params, loom_context **out);
LOOM_API void loom_context_free(loom_context *ctx);
LOOM_API const char *loom_context_last_error(const loom_context *ctx);
/* Forget all tokens (the context can be reused for a new sequence). */
LOOM_API loom_status loom_context_reset(loom_context *ctx);
/* Tokens currently in the context. */
LOOM_API uint32_t loom_context_n_past(const loom_context *ctx);
LOOM_API uint32_t loom_context_n_ctx(const loom_context *ctx);

enum {
    LOOM_EVAL_LOGITS_LAST = 0, /* keep logits of the last token only */
    LOOM_EVAL_LOGITS_ALL = 1   /* keep logits of every token of the call */
};

/* Append `n_tokens` tokens (batched in chunks of n_batch) and compute logits. */
LOOM_API loom_status loom_context_eval(loom_context *ctx, const int32_t *tokens, size_t n_tokens, uint32_t flags);
/* Logits of token i of the last eval call (i = -1: the last token). Borrowed until the next
 * eval or reset; NULL when not kept. */
LOOM_API const float *loom_context_logits(const loom_context *ctx, int32_t index);
/* A text report of where each op ran (op, types, backend, count). Borrowed until the next call. */
LOOM_API const char *loom_context_placement(loom_context *ctx);

/* ============================================================================================ */
/* Sampling and generation                                                                      */
/* ============================================================================================ */

typedef struct loom_sampler_params {
    uint32_t struct_size;
    int32_t top_k;         /* 0 = off */
    float temperature;     /* 0 = greedy */
    float top_p;           /* 1 = off */
    float min_p;           /* 0 = off */
    float repeat_penalty;  /* 1 = off */
    int32_t repeat_last_n; /* tokens considered for the penalty */
    uint32_t reserved;
    uint64_t seed;
} loom_sampler_params;

/* Defaults: greedy, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1, last_n 64, seed 0. */
LOOM_API void loom_sampler_params_default(loom_sampler_params *out);
LOOM_API loom_status loom_sampler_create(const loom_sampler_params *params, loom_sampler **out);
LOOM_API void loom_sampler_free(loom_sampler *sampler);
/* Choose a token from `logits` (n_vocab values; not modified). */
LOOM_API loom_status loom_sampler_sample(loom_sampler *sampler, const float *logits, int64_t n_vocab, int32_t *token);
/* Tell the sampler a token was emitted (for the repetition penalty). */
LOOM_API void loom_sampler_accept(loom_sampler *sampler, int32_t token);

/* Streaming callback: one emitted token and its text (borrowed). Return false to stop. */
typedef bool (*loom_token_fn)(int32_t token, const char *piece, size_t piece_len, void *user_data);

typedef struct loom_generate_params {
    uint32_t struct_size;
    int32_t max_tokens;      /* tokens to generate at most */
    const char *const *stop; /* stop strings (may be NULL) */
    uint32_t n_stop;
    uint32_t reserved;
    loom_token_fn on_token; /* may be NULL */
    void *user_data;
} loom_generate_params;

typedef struct loom_generate_stats {
    uint32_t struct_size;
    uint32_t n_prompt;
    uint32_t n_generated;
    uint32_t stop_reason; /* 0 max tokens, 1 EOS, 2 stop string, 3 cancelled, 4 context full */
    double prompt_seconds;
    double generate_seconds;
} loom_generate_stats;

/* Evaluate `prompt` then sample up to max_tokens tokens, streaming them through on_token.
 * Stops on EOS (and the model's end-of-turn tokens) and on any stop string. stats may be NULL. */
LOOM_API loom_status loom_generate(loom_context *ctx, loom_sampler *sampler, const int32_t *prompt, size_t n_prompt,
                                   const loom_generate_params *params, loom_generate_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* LOOM_H */

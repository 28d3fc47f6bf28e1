/*
 * internal.h - declarations shared between the engine's source files. Never installed; plugins
 * and applications never see it (they include only abi/).
 *
 * Ownership map of the engine (one subsystem per file):
 *   core.c        status strings, version, logging
 *   options.c     the key/value option model (defaults < file < env < cli)
 *   plugin.c      plugin discovery (libltdl), negotiation, states; the host table
 *   engine.c      loom_engine_* (options validation, plugin list, devices)
 *   quants.c      type traits, fp16/bf16, reference (de)quantisation of every block type
 *   gguf.c        GGUF v2/v3 reader and writer
 *   safetensors.c safetensors reader (single and sharded) + Hugging Face config.json (json-c)
 *   file.c        loom_file: one model-file abstraction over GGUF / safetensors / HF folders
 *   tokenizer.c   SentencePiece-style and byte-level BPE tokenizers (PCRE2); the algorithms are
 *                 in tokenizer_spm.c and tokenizer_bpe.c, tokenizer.json loading in tokenizer_hf.c
 *   chat.c        chat templates
 *   model.c       loom_model_* (file + architecture plugin + tokenizer)
 *   exec.c        tensors, scratch arenas, op dispatch to backends with CPU fallback, placement
 *   context.c     loom_context_*
 *   sample.c      loom_sampler_*
 *   generate.c    loom_generate
 */
#ifndef LOOM_ENGINE_INTERNAL_H
#define LOOM_ENGINE_INTERNAL_H

#include "loom.h"
#include "loom_plugin.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LOOM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOOM_PRINTF(a, b)
#endif

/* ============================================================================================ */
/* core.c                                                                                       */
/* ============================================================================================ */

/* Log through the application's callback. `who` may be NULL ("loom"). */
void loom_log(int32_t level, const char *who, const char *fmt, ...) LOOM_PRINTF(3, 4);
void loom_logv(int32_t level, const char *who, const char *fmt, va_list ap);
/* Change only the level filter of the current sink. */
void loom_log_set_level(int32_t max_level);
/* snprintf into an error buffer (NULL or size 0 is fine); returns `status` for tail calls. */
loom_status loom_err(char *buf, size_t size, loom_status status, const char *fmt, ...) LOOM_PRINTF(4, 5);
/* Duplicate a string with malloc (NULL in -> NULL out). */
char *loom_strdup(const char *s);
/* Monotonic seconds. */
double loom_now(void);

/* ============================================================================================ */
/* quants.c: data types                                                                         */
/* ============================================================================================ */

typedef struct loom_type_traits {
    const char *name;     /* "f32", "q4_1", ... */
    uint32_t block_size;  /* elements per block (1 for plain types) */
    uint32_t block_bytes; /* bytes per block */
    bool quantized;
} loom_type_traits;

/* Traits of a LOOM_TYPE_*, or NULL for an unknown type. */
const loom_type_traits *loom_type_get_traits(uint32_t type);
/* Bytes of a row of n elements (n must be a multiple of the block size; returns 0 otherwise). */
uint64_t loom_type_row_bytes(uint32_t type, int64_t n);

float loom_fp16_to_fp32(uint16_t h);
uint16_t loom_fp32_to_fp16(float f); /* round to nearest even */
float loom_bf16_to_fp32(uint16_t h);
uint16_t loom_fp32_to_bf16(float f); /* round to nearest even */

/* Reference conversions of n elements (n a multiple of the block size). */
loom_status loom_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
loom_status loom_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* ============================================================================================ */
/* file.c / gguf.c / safetensors.c: model files                                                 */
/* ============================================================================================ */

/* One metadata entry. Arrays of strings hold `const char *` NUL-terminated copies. */
typedef struct loom_meta {
    char *key;
    uint32_t type;      /* LOOM_META_* */
    uint32_t elem_type; /* for arrays */
    uint64_t count;     /* for arrays */
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
        char *str;
        void *arr; /* count elements of elem_type (strings: char *[count]) */
    } v;
} loom_meta;

typedef struct loom_file_tensor {
    char *name;
    uint32_t type; /* LOOM_TYPE_* */
    uint32_t n_dims;
    int64_t ne[4];    /* ne[0] innermost */
    uint64_t size;    /* bytes */
    uint64_t offset;  /* absolute offset in its file */
    const void *data; /* mapped data (zero copy), never NULL for an open file */
} loom_file_tensor;

typedef struct loom_file loom_file;

/* Open a .gguf file, a .safetensors file, a sharded index .json or a Hugging Face folder.
 * Everything is validated; on failure `err` names what is wrong and where (byte offset). */
loom_status loom_file_open(const char *path, loom_file **out, char *err, size_t err_size);
void loom_file_close(loom_file *file);
/* "gguf" or "safetensors". */
const char *loom_file_format(const loom_file *file);
uint64_t loom_file_size(const loom_file *file);
uint32_t loom_file_meta_count(const loom_file *file);
const loom_meta *loom_file_meta_at(const loom_file *file, uint32_t index);
const loom_meta *loom_file_meta_find(const loom_file *file, const char *key);
uint32_t loom_file_tensor_count(const loom_file *file);
const loom_file_tensor *loom_file_tensor_at(const loom_file *file, uint32_t index);
const loom_file_tensor *loom_file_tensor_find(const loom_file *file, const char *name);

/* GGUF writer: collect metadata and tensors, then write (alignment 32 unless set). */
typedef struct loom_gguf_writer loom_gguf_writer;
loom_status loom_gguf_writer_create(loom_gguf_writer **out);
void loom_gguf_writer_free(loom_gguf_writer *w);
loom_status loom_gguf_writer_set_meta(loom_gguf_writer *w, const loom_meta *entry); /* copied */
/* Adds a tensor; `data` (size bytes) is copied. */
loom_status loom_gguf_writer_add_tensor(loom_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                        const int64_t *ne, const void *data, uint64_t size);
loom_status loom_gguf_writer_write(loom_gguf_writer *w, const char *path, char *err, size_t err_size);

/* ---- additions by the formats layer (file.c / gguf.c / safetensors.c) ---- */

/* Scalars: unsigned integers in v.u64, signed in v.i64, f32 (widened) and f64 in v.f64.
 * Nested arrays (elem_type LOOM_META_ARRAY): v.arr holds `count` loom_meta values (key NULL).
 * Bool arrays hold `bool` elements; numeric arrays their C type (uint8_t ... float, double). */

/* Open a file image held in memory (borrowed: it must outlive the file). `format` is "gguf" or
 * "safetensors". Used by the fuzz targets and tests; same validation as loom_file_open. */
loom_status loom_file_open_memory(const void *data, size_t size, const char *format, loom_file **out, char *err,
                                  size_t err_size);
/* The path given to loom_file_open ("" for memory images). */
const char *loom_file_path(const loom_file *file);
/* Typed lookups with the host API's semantics: LOOM_ERR_NOT_FOUND when absent, LOOM_ERR_FORMAT
 * when of another type (int: any integer or bool; float: f32/f64 or any integer). */
loom_status loom_file_meta_int(const loom_file *file, const char *key, int64_t *out);
loom_status loom_file_meta_float(const loom_file *file, const char *key, double *out);
loom_status loom_file_meta_string(const loom_file *file, const char *key, const char **out);
loom_status loom_meta_as_int(const loom_meta *m, int64_t *out);
loom_status loom_meta_as_float(const loom_meta *m, double *out);
/* Render a value as text (arrays: "[type; count] first elements ..." abbreviated after
 * `max_elems` elements). Returns the length it needed (snprintf semantics). */
size_t loom_meta_format(const loom_meta *m, uint32_t max_elems, char *buf, size_t size);
/* Name of a LOOM_META_* type ("u32", "string", ...). */
const char *loom_meta_type_name(uint32_t type);
/* GGUF tensor type number <-> LOOM_TYPE_* (UINT32_MAX when there is none). */
uint32_t loom_gguf_type_to_loom(uint32_t gguf_type);
uint32_t loom_gguf_type_from_loom(uint32_t loom_type);

/* Used between file.c and the readers: file.c owns the loom_file struct. */
loom_file *loom_file_new(const char *format, const char *path);
/* Take ownership of a mapping (munmap'd at close) or of a malloc'd buffer (free'd at close). */
loom_status loom_file_keep_mapping(loom_file *file, void *addr, size_t size, bool is_mmap);
/* Append an entry, taking over what it points to (the struct is copied; on failure the entry's
 * contents are freed). */
loom_status loom_file_push_meta(loom_file *file, loom_meta *entry);
loom_status loom_file_push_tensor(loom_file *file, loom_file_tensor *tensor);
/* Writable access for the readers while they fill the file. */
loom_file_tensor *loom_file_tensor_mut(loom_file *file, uint32_t index);
/* Build the lookup indexes; fails (LOOM_ERR_FORMAT) on a duplicate key or tensor name. */
loom_status loom_file_finish(loom_file *file, char *err, size_t err_size);
void loom_meta_clear(loom_meta *entry);
/* Parse a complete GGUF / safetensors image into `file` (tensor offsets relative to `image`). */
loom_status loom_gguf_parse(loom_file *file, const uint8_t *image, uint64_t size, char *err, size_t err_size);
loom_status loom_safetensors_parse(loom_file *file, const uint8_t *image, uint64_t size, const char *what,
                                   char *err, size_t err_size);
/* Open a sharded index .json / a Hugging Face folder (safetensors.c). */
loom_status loom_safetensors_open_index(loom_file *file, const char *index_path, char *err, size_t err_size);
loom_status loom_hf_folder_open(loom_file *file, const char *dir, char *err, size_t err_size);
/* Map a whole file read-only; the mapping is kept by `file` (file.c). Empty files fail with
 * LOOM_ERR_FORMAT, unreadable ones with LOOM_ERR_IO. */
loom_status loom_file_map(loom_file *file, const char *path, const uint8_t **data, uint64_t *size, char *err,
                          size_t err_size);

/* ============================================================================================ */
/* tokenizer.c (+ tokenizer_spm.c, tokenizer_bpe.c, tokenizer_hf.c): tokenizers                 */
/* ============================================================================================ */

/*
 * A tokenizer: SentencePiece-style BPE ("llama") or byte-level BPE ("gpt2"), read from GGUF
 * `tokenizer.ggml.*` metadata or from a Hugging Face tokenizer.json. Immutable once created:
 * every function below may be called from several threads at once. Token ids follow llama.cpp
 * exactly (see docs/tokenizers.md for what was compared and the documented differences).
 */
typedef struct loom_tokenizer loom_tokenizer;

/* Token attributes (llama.cpp's llama_token_attr values). */
enum {
    LOOM_TOKEN_ATTR_UNDEFINED = 0,
    LOOM_TOKEN_ATTR_UNKNOWN = 1 << 0,
    LOOM_TOKEN_ATTR_UNUSED = 1 << 1,
    LOOM_TOKEN_ATTR_NORMAL = 1 << 2,
    LOOM_TOKEN_ATTR_CONTROL = 1 << 3,
    LOOM_TOKEN_ATTR_USER_DEFINED = 1 << 4,
    LOOM_TOKEN_ATTR_BYTE = 1 << 5,
    LOOM_TOKEN_ATTR_LSTRIP = 1 << 7,
    LOOM_TOKEN_ATTR_RSTRIP = 1 << 8
};

/* A vocabulary handed over directly (tests, converters, tokenizer.json). Everything is copied. */
typedef struct loom_vocab_desc {
    const char *model;               /* "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE) */
    const char *pre;                 /* pre-tokenizer name for "gpt2" (NULL = "default") */
    uint32_t n_tokens;
    const char *const *tokens;       /* NUL-terminated texts */
    const float *scores;             /* NULL: all 0 */
    const int32_t *token_types;      /* GGUF token types (1 normal .. 6 byte); NULL: all normal */
    const uint32_t *token_attrs;     /* LOOM_TOKEN_ATTR_* overriding token_types; may be NULL */
    uint32_t n_merges;
    const char *const *merges;       /* "left right" */
    int64_t bos, eos, eot, eom, unk, pad, sep; /* -1: none; -2: the model type's default */
    int32_t add_bos, add_eos, add_space_prefix; /* 0/1, or -1 for the model type's default */
    const char *chat_template;       /* may be NULL */
    const char *general_name;        /* may be NULL */
} loom_vocab_desc;

/* Fill a descriptor with "defaults everywhere" (ids -2, flags -1). */
void loom_vocab_desc_init(loom_vocab_desc *desc);
loom_status loom_tokenizer_create(const loom_vocab_desc *desc, loom_tokenizer **out, char *err, size_t err_size);
/* From an open model file: GGUF tokenizer.ggml.* keys, or for Hugging Face folders the
 * tokenizer.json named by the metadata key "hf.tokenizer_json". */
loom_status loom_tokenizer_create_from_file(const loom_file *file, loom_tokenizer **out, char *err, size_t err_size);
/* From a Hugging Face tokenizer.json (plus tokenizer_config.json next to it, when present). */
loom_status loom_tokenizer_create_from_hf_json(const char *path, loom_tokenizer **out, char *err, size_t err_size);
void loom_tokenizer_free(loom_tokenizer *tok);

/* Text to ids. flags: LOOM_TOKENIZE_ADD_BOS (= llama.cpp add_special: BOS/EOS when the model
 * asks for them), LOOM_TOKENIZE_PARSE_SPECIAL (= llama.cpp parse_special). On
 * LOOM_ERR_BUFFER_TOO_SMALL *n holds the needed count (tokens may be NULL with cap 0). */
loom_status loom_tokenizer_encode(const loom_tokenizer *tok, const char *text, size_t len, uint32_t flags,
                                  int32_t *tokens, size_t cap, size_t *n);
/* The bytes of one token (control/unknown tokens only with render_special). On
 * LOOM_ERR_BUFFER_TOO_SMALL *len holds the needed size. No NUL is written. */
loom_status loom_tokenizer_piece(const loom_tokenizer *tok, int32_t token, bool render_special, char *buf,
                                 size_t cap, size_t *len);
/* Ids to text: the pieces concatenated, minus the space SentencePiece models put in front of
 * the text (so that decode(encode(x)) == x). A NUL is written when there is room for it. */
loom_status loom_tokenizer_decode(const loom_tokenizer *tok, const int32_t *tokens, size_t n, bool render_special,
                                  char *buf, size_t cap, size_t *len);

int32_t loom_tokenizer_n_vocab(const loom_tokenizer *tok);
int32_t loom_tokenizer_bos(const loom_tokenizer *tok); /* -1 when none */
int32_t loom_tokenizer_eos(const loom_tokenizer *tok);
int32_t loom_tokenizer_eot(const loom_tokenizer *tok); /* end of turn (<|im_end|>, <|eot_id|>, ...) */
int32_t loom_tokenizer_unk(const loom_tokenizer *tok);
int32_t loom_tokenizer_pad(const loom_tokenizer *tok);
bool loom_tokenizer_add_bos(const loom_tokenizer *tok);
/* End of generation: EOS, EOT and the other end-of-turn tokens of the vocabulary. */
bool loom_tokenizer_is_eog(const loom_tokenizer *tok, int32_t token);
/* "llama" or "gpt2" (static). */
const char *loom_tokenizer_model(const loom_tokenizer *tok);
/* Pre-tokenizer name ("smollm", "llama3", ...; "" for SentencePiece). Borrowed. */
const char *loom_tokenizer_pre(const loom_tokenizer *tok);
/* The Jinja chat template of the model, or NULL. Borrowed. */
const char *loom_tokenizer_chat_template(const loom_tokenizer *tok);
/* Raw vocabulary text and attributes (LOOM_TOKEN_ATTR_*) of a token; NULL / 0 when out of range. */
const char *loom_tokenizer_token_text(const loom_tokenizer *tok, int32_t token);
uint32_t loom_tokenizer_token_attr(const loom_tokenizer *tok, int32_t token);
float loom_tokenizer_token_score(const loom_tokenizer *tok, int32_t token);
/* True for a byte vocabulary: byte-level BPE, exactly 256 normal tokens, token b the GPT-2
 * bytes_to_unicode character of byte b, no merges. Every input byte is then its own id. */
bool loom_tokenizer_is_byte_vocab(const loom_tokenizer *tok);
/* The text of byte b in a byte-level BPE vocabulary (GPT-2's bytes_to_unicode character as
 * UTF-8, 1 or 2 bytes, no NUL written); returns its length. */
size_t loom_tokenizer_byte_text(uint8_t b, char out[4]);

/* chat.c: render a conversation with a chat template. The family (ChatML, Llama-2 [INST],
 * Llama-3, ...) is recognised from the Jinja text; no Jinja is interpreted. `template_text`
 * NULL means ChatML. bos/eos are the token texts (may be NULL: ""). Unknown templates give
 * LOOM_ERR_UNSUPPORTED with a message naming the template. The output is NUL-terminated; when
 * len + 1 > cap the result is LOOM_ERR_BUFFER_TOO_SMALL and *len holds the length needed
 * (without the NUL). */
loom_status loom_chat_apply(const char *template_text, const char *bos, const char *eos, const loom_chat_message *msgs,
                            size_t n, bool add_assistant, char *buf, size_t cap, size_t *len, char *err,
                            size_t err_size);
/* The family name loom_chat_apply would use ("chatml", "llama2", ...), or NULL when unknown. */
const char *loom_chat_template_family(const char *template_text);

/* ============================================================================================ */
/* plugin.c / engine.c                                                                          */
/* ============================================================================================ */

typedef struct loom_plugin_rec {
    char *path;     /* as found */
    char *realpath; /* resolved */
    void *handle;   /* lt_dlhandle */
    const loom_plugin_desc *desc;
    void *state; /* from desc->init */
    uint32_t kind;
    uint32_t state_code; /* LOOM_PLUGIN_* */
    uint32_t abi_minor;  /* negotiated */
    uint32_t n_devices;
    char *name;
    char reason[512];
} loom_plugin_rec;

struct loom_engine {
    loom_options *options; /* effective options */
    loom_plugin_rec *plugins;
    uint32_t n_plugins;
    bool plugins_loaded; /* loom_plugins_load ran (unload must balance it) */
    char last_error[1024];
};

/* The host table handed to every plugin (static, process-wide). */
const loom_host_api *loom_host_table(void);
/* Discover and load plugins per the options into engine->plugins. */
loom_status loom_plugins_load(loom_engine *engine, char *err, size_t err_size);
void loom_plugins_unload(loom_engine *engine);
/* Available plugin of `kind` named `name`, or NULL. */
const loom_plugin_rec *loom_engine_find_plugin(const loom_engine *engine, uint32_t kind, const char *name);
/* Record the engine's last error (printf-style); returns status. */
loom_status loom_engine_set_error(loom_engine *engine, loom_status status, const char *fmt, ...) LOOM_PRINTF(3, 4);
/* Integer option with default (parses the effective value). */
int64_t loom_engine_option_int(const loom_engine *engine, const char *key, int64_t def);
const char *loom_engine_option_str(const loom_engine *engine, const char *key, const char *def);

/*
 * Host-table functions implemented outside plugin.c, with exactly the loom_host_api member
 * signatures: model.c implements the metadata and weight lookups, exec.c the tensor and op
 * functions. plugin.c assembles them into the table (loom_host_table).
 */
loom_status loom_host_meta_get_int(const loom_model *model, const char *key, int64_t *out);
loom_status loom_host_meta_get_float(const loom_model *model, const char *key, double *out);
loom_status loom_host_meta_get_string(const loom_model *model, const char *key, const char **out);
loom_status loom_host_meta_get_array(const loom_model *model, const char *key, uint32_t *elem_type, uint64_t *count,
                                     const void **data);
loom_status loom_host_model_tensor(const loom_model *model, const char *name, loom_tensor **out);
loom_status loom_host_tensor_info(const loom_tensor *tensor, loom_tensor_info *out);
loom_status loom_host_tensor_new(loom_exec *exec, uint32_t type, uint32_t n_dims, const int64_t *ne, uint32_t flags,
                                 loom_tensor **out);
loom_status loom_host_tensor_view(loom_exec *exec, loom_tensor *base, uint32_t n_dims, const int64_t *ne,
                                  const int64_t *nb, uint64_t offset, loom_tensor **out);
loom_status loom_host_tensor_write(loom_exec *exec, loom_tensor *tensor, uint64_t offset, const void *src,
                                   uint64_t size);
loom_status loom_host_tensor_read(loom_exec *exec, const loom_tensor *tensor, uint64_t offset, void *dst,
                                  uint64_t size);
loom_status loom_host_op(loom_exec *exec, const loom_op_params *params, loom_tensor *dst, loom_tensor *const *srcs,
                         uint32_t n_srcs);
const char *loom_host_exec_last_error(const loom_exec *exec);
void loom_host_exec_set_error(loom_exec *exec, const char *fmt, ...) LOOM_PRINTF(2, 3);

/* options.c: keys the engine itself knows (NULL-terminated static table). */
typedef struct loom_option_spec {
    const char *key;
    const char *default_value;
    const char *help;
} loom_option_spec;
const loom_option_spec *loom_engine_option_specs(void);

/* ============================================================================================ */
/* exec.c: tensors, execution scopes, dispatch                                                  */
/* ============================================================================================ */

/* The engine's tensor. `view` describes where its bytes live now: device == -1 means host
 * memory (a mapped weight or malloc'd scratch, view.data valid); otherwise index of the exec's
 * device holding it. Views share `base`'s memory. */
struct loom_tensor {
    loom_tensor_view view;
    uint32_t n_dims;
    uint32_t flags; /* LOOM_TENSOR_* */
    int32_t device;
    int32_t reserved;
    const char *name;         /* borrowed (weights: the model's name string) */
    struct loom_tensor *base; /* for views, else NULL */
    void *owner;              /* engine bookkeeping (exec or model) */
};

/* Wrap host memory (e.g. a mapped weight) as a tensor; `data` and `name` are borrowed and must
 * outlive it. Free with loom_tensor_free_wrapped. */
loom_status loom_tensor_wrap_host(const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne, const void *data,
                                  uint32_t flags, loom_tensor **out);
void loom_tensor_free_wrapped(loom_tensor *tensor);

/* An execution scope: the devices a context runs on (first = preferred, the CPU reference last
 * as fallback), its persistent and scratch tensors, per-device copies of weights, placement
 * statistics. `backend_spec` is a priority list such as "opencl,cpu" or "cpu". */
loom_status loom_exec_create(loom_engine *engine, const char *backend_spec, uint32_t n_threads, loom_exec **out,
                             char *err, size_t err_size);
void loom_exec_free(loom_exec *exec);
/* Free scratch tensors (end of a forward pass). Persistent tensors stay. */
void loom_exec_reset_scratch(loom_exec *exec);
/* Drop every per-device copy of weights (device uploads, weight_prepare data). Call before the
 * host memory of a weight the exec has used goes away while the exec lives on. */
void loom_exec_release_weights(loom_exec *exec);
/* Text report: one line per (op, operand types, device) with counts. Borrowed. */
const char *loom_exec_placement_report(loom_exec *exec);
/* Name of the preferred device ("cpu", "opencl:0", ...). */
const char *loom_exec_device_name(const loom_exec *exec);
/* Devices of the exec in priority order (the CPU reference last), their names, and the index of
 * the device that ran the last successful op (-1 before any): for tests and reports. */
uint32_t loom_exec_device_count(const loom_exec *exec);
const char *loom_exec_device_name_at(const loom_exec *exec, uint32_t index);
int32_t loom_exec_last_device(const loom_exec *exec);

/* ============================================================================================ */
/* model.c                                                                                      */
/* ============================================================================================ */

/* The model's file (borrowed). */
const loom_file *loom_model_file(const loom_model *model);
/* Architecture plugin table and its per-model state. */
const loom_arch_api *loom_model_arch(const loom_model *model, void **arch_model);
loom_engine *loom_model_engine(const loom_model *model);
/* True for tokens that end a generation: EOS and the model's end-of-turn tokens. */
bool loom_model_token_is_eog(const loom_model *model, int32_t token);
/* The vocabulary size (the length of a row of logits), from the architecture plugin. */
int64_t loom_model_n_vocab(const loom_model *model);


/* ============================================================================================ */
/* context.c                                                                                    */
/* ============================================================================================ */

/* The model a context runs (borrowed). */
loom_model *loom_context_model(const loom_context *ctx);

#ifdef __cplusplus
}
#endif

#endif /* LOOM_ENGINE_INTERNAL_H */

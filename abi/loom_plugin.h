/*
 * loom_plugin.h - the plugin ABI of Loom.
 *
 * A plugin is a shared object that exports exactly one symbol, LOOM_PLUGIN_ENTRY_SYMBOL:
 *
 *     LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);
 *
 * The host passes its ABI version (LOOM_ABI_VERSION) and its host table. The plugin returns a
 * static descriptor (or NULL to refuse). Majors must match; the host uses
 * min(host minor, plugin minor). Every struct below starts with its size; newer members are
 * read only when the size covers them (LOOM_HAS_MEMBER). Tables and enums only grow at the end.
 *
 * Ownership: descriptors, tables and strings returned by a plugin are static and stay valid
 * until the plugin is unloaded. Memory a plugin hands to the host is allocated with
 * host->alloc; the host frees it with host->free (and vice versa).
 */
#ifndef LOOM_PLUGIN_H
#define LOOM_PLUGIN_H

#include "loom_types.h"

#define LOOM_PLUGIN_ENTRY_SYMBOL "loom_plugin_entry"

/* True when a struct of reported size `size` contains member `member` of type `type`. */
#define LOOM_HAS_MEMBER(ptr, type, member)                                                                             \
    ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, member) + sizeof(((type *)0)->member))

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================ */
/* Opaque host-side handles seen by plugins                                                     */
/* ============================================================================================ */

typedef struct loom_model loom_model;   /* a loaded model file (weights + metadata) */
typedef struct loom_exec loom_exec;     /* an execution scope of one inference context */
typedef struct loom_tensor loom_tensor; /* an engine tensor (weight, activation, cache) */

/* ============================================================================================ */
/* Tensors and ops (the contract between architectures, the engine and backends)                */
/* ============================================================================================ */

#define LOOM_MAX_DIMS 4
#define LOOM_MAX_SRC  6

/*
 * The op set. Shapes use ne[0] as the innermost (contiguous) dimension, as GGUF does.
 * "rows" are the slices along dimensions 1..3. Activations are F32 unless stated otherwise.
 */
enum {
    LOOM_OP_NONE = 0,
    /* dst[n, d] F32 = rows src1 (I32 ids, ne[0] = n) of src0 (table [rows, d], any type). */
    LOOM_OP_GET_ROWS = 1,
    /* dst = x / sqrt(mean(x^2) + f[0]) * (src1 if given), per row of src0. */
    LOOM_OP_RMS_NORM = 2,
    /* dst = (x - mean) / sqrt(var + f[0]) * (src1 if given) + (src2 if given), per row. */
    LOOM_OP_LAYER_NORM = 3,
    /* dst = src0 + src1, src1 broadcast over rows when it has fewer. */
    LOOM_OP_ADD = 4,
    /* dst = src0 * src1, src1 broadcast over rows when it has fewer. */
    LOOM_OP_MUL = 5,
    /* dst = src0 * f[0]. */
    LOOM_OP_SCALE = 6,
    /*
     * dst[.., n, m] = src0[.., n, k] x src1[.., m, k]^T  (y = x W^T; W stored [out, in] with
     * ne[0] = in). src1 may be any weight type; dims 2 and 3 broadcast from src1 to src0
     * (src0.ne[2] a multiple of src1.ne[2]).
     */
    LOOM_OP_MATMUL = 7,
    /*
     * Rotary embedding on src0 [n_tok (ne2), n_head (ne1), head_dim (ne0)] with positions src1
     * (I32, ne[0] = n_tok). i[0] = mode (0 interleaved pairs (2i, 2i+1), 1 half-split (i, i+d/2)),
     * i[1] = rotated dims (0 = all of head_dim), f[0] = frequency base, f[1] = position scale
     * (linear scaling: pos * f[1]; 0 means 1).
     */
    LOOM_OP_ROPE = 8,
    /*
     * Row softmax of src0 * f[0] (+ src1 mask if given). i[0] = 1 for a causal mask where row r
     * (ne1 index) sees columns c <= i[1] + r.
     */
    LOOM_OP_SOFTMAX = 9,
    /*
     * Fused causal attention. src0 = q [n_tok, n_head, hd], src1 = K [n_kv, n_head_kv, hd],
     * src2 = V [n_kv, n_head_kv, hd] (F32 or F16). i[0] = position of the first query in the
     * key sequence (query t sees keys 0..i[0]+t), f[0] = scale. dst [n_tok, n_head, hd].
     */
    LOOM_OP_ATTENTION = 10,
    LOOM_OP_SILU = 11,   /* dst = x * sigmoid(x) */
    LOOM_OP_GELU = 12,   /* exact erf GELU */
    LOOM_OP_SWIGLU = 13, /* dst = silu(src0) * src1 */
    /* dst = src0 converted to dst's type; shapes must hold the same number of elements in the
     * same order; both may be strided views (KV-cache writes, permutes). */
    LOOM_OP_COPY = 14,
    /* dst[n, d] = sum_s src1[s] * src0[s, n, d]  (src0 [n_states, n, d], src1 F32 [n_states]);
     * sums in F32 (DenseFormer's depth-weighted average). */
    LOOM_OP_WEIGHTED_SUM = 15,
    /* Normalised fast Walsh-Hadamard transform along ne[0] in groups of i[0] (power of two;
     * 0 = the whole row). */
    LOOM_OP_HADAMARD = 16,
    /*
     * Grouped softmax of landmark attention, per row of src0 (F32 scores) times f[0] (0 means 1).
     * src1 (I32, same ne[0], broadcast over rows like ADD) flags landmark columns (non-zero);
     * a landmark closes its block: column j is in block blk(j) = number of landmarks before j.
     * Visible columns: not -inf and, with i[0] = 1, c <= i[1] + r (r = ne1 index, as SOFTMAX).
     * With c = blk(last visible column): one joint softmax p over the visible regular columns of
     * block c and the visible landmarks of blocks b < c; a visible regular column of block b < c
     * gets p(landmark of b) x its softmax within block b; a regular column of block c gets p;
     * landmarks, hidden columns and rows with nothing visible get 0. dst may be src0.
     */
    LOOM_OP_GROUPED_SOFTMAX = 17,
    LOOM_OP_COUNT = 18 /* grows; not part of the ABI contract */
};

/* Parameters of one op. Slots not documented for an op are zero. */
typedef struct loom_op_params {
    uint32_t struct_size;
    uint32_t op; /* LOOM_OP_* */
    int32_t i[8];
    float f[8];
} loom_op_params;

/* What a backend sees of a tensor. */
typedef struct loom_tensor_view {
    uint32_t struct_size;
    uint32_t type;             /* LOOM_TYPE_* */
    int64_t ne[LOOM_MAX_DIMS]; /* elements per dimension, ne[0] innermost; unused dims are 1 */
    int64_t nb[LOOM_MAX_DIMS]; /* byte strides; nb[0] is the element (or block) size */
    void *data;                /* host-addressable address of element 0, or NULL (device) */
    void *buffer;              /* the backend buffer holding it (from buffer_alloc), or NULL */
    uint64_t offset;           /* byte offset of element 0 inside `buffer` */
    void *extra;               /* backend-private data attached by weight_prepare, or NULL */
    uint32_t flags;            /* LOOM_TENSOR_* */
    uint32_t reserved;
} loom_tensor_view;

enum {
    LOOM_TENSOR_WEIGHT = 1u << 0,     /* a model weight: constant for the model's life */
    LOOM_TENSOR_PERSISTENT = 1u << 1, /* lives across forward passes (KV cache) */
    LOOM_TENSOR_INPUT = 1u << 2       /* written from the host each pass */
};

/* Shape and type of an engine tensor, as returned by host->tensor_info. */
typedef struct loom_tensor_info {
    uint32_t struct_size;
    uint32_t type;
    uint32_t n_dims;
    uint32_t flags;
    int64_t ne[LOOM_MAX_DIMS];
    int64_t nb[LOOM_MAX_DIMS];
    const char *name; /* borrowed; valid while the tensor lives; "" when unnamed */
} loom_tensor_info;

/* ============================================================================================ */
/* Host table: what the engine offers plugins                                                   */
/* ============================================================================================ */

/* Metadata value types (GGUF's numbering). */
enum {
    LOOM_META_U8 = 0,
    LOOM_META_I8 = 1,
    LOOM_META_U16 = 2,
    LOOM_META_I16 = 3,
    LOOM_META_U32 = 4,
    LOOM_META_I32 = 5,
    LOOM_META_F32 = 6,
    LOOM_META_BOOL = 7,
    LOOM_META_STRING = 8,
    LOOM_META_ARRAY = 9,
    LOOM_META_U64 = 10,
    LOOM_META_I64 = 11,
    LOOM_META_F64 = 12
};

typedef struct loom_host_api {
    uint32_t struct_size;
    uint32_t abi_version; /* LOOM_ABI_VERSION of the host */

    /* ---- logging and memory ---- */
    /* printf-style log line from plugin `who` (its name); thread-safe. */
    void (*log)(int32_t level, const char *who, const char *fmt, ...);
    /* Allocation shared across the boundary; alloc returns NULL on failure; free(NULL) is a no-op. */
    void *(*alloc)(size_t size);
    void (*free)(void *ptr);

    /* ---- model metadata (borrowed values valid while the model lives) ---- */
    /* Integer (any integer or bool type) / float (f32, f64, or integer) / string lookups.
     * LOOM_ERR_NOT_FOUND when absent, LOOM_ERR_FORMAT when of another type. */
    loom_status (*meta_get_int)(const loom_model *model, const char *key, int64_t *out);
    loom_status (*meta_get_float)(const loom_model *model, const char *key, double *out);
    loom_status (*meta_get_string)(const loom_model *model, const char *key, const char **out);
    /* Array: element type (LOOM_META_*), count and a pointer to the elements (strings are
     * returned as an array of `const char *` NUL-terminated copies owned by the model). */
    loom_status (*meta_get_array)(const loom_model *model, const char *key, uint32_t *elem_type, uint64_t *count,
                                  const void **data);

    /* ---- weights ---- */
    /* Find a weight by name. The handle is owned by the model. */
    loom_status (*model_tensor)(const loom_model *model, const char *name, loom_tensor **out);

    /* ---- tensors inside an execution scope ---- */
    loom_status (*tensor_info)(const loom_tensor *tensor, loom_tensor_info *out);
    /* A new tensor of `type` and shape ne[0..n_dims). Without LOOM_TENSOR_PERSISTENT it is
     * scratch: freed when the current forward pass ends (loom_exec reset). Persistent tensors
     * live until the context is freed. Contents are uninitialised. */
    loom_status (*tensor_new)(loom_exec *exec, uint32_t type, uint32_t n_dims, const int64_t *ne, uint32_t flags,
                              loom_tensor **out);
    /* A view into `base` (shares its memory) with its own shape and byte strides, starting
     * `offset` bytes into it. Lives as long as a scratch tensor. nb may be NULL (contiguous). */
    loom_status (*tensor_view)(loom_exec *exec, loom_tensor *base, uint32_t n_dims, const int64_t *ne,
                               const int64_t *nb, uint64_t offset, loom_tensor **out);
    /* Host <-> tensor copies of raw bytes (contiguous tensors only). */
    loom_status (*tensor_write)(loom_exec *exec, loom_tensor *tensor, uint64_t offset, const void *src, uint64_t size);
    loom_status (*tensor_read)(loom_exec *exec, const loom_tensor *tensor, uint64_t offset, void *dst, uint64_t size);
    /* Run one op now: dst = op(srcs). The engine places it on the context's backend or falls
     * back to the CPU reference, copying operands as needed. */
    loom_status (*op)(loom_exec *exec, const loom_op_params *params, loom_tensor *dst, loom_tensor *const *srcs,
                      uint32_t n_srcs);
    /* The error text of the last failing call on `exec` (borrowed). */
    const char *(*exec_last_error)(const loom_exec *exec);
    /* Record a detailed error on `exec` (printf-style), returned later to the application. */
    void (*exec_set_error)(loom_exec *exec, const char *fmt, ...);
} loom_host_api;

/* ============================================================================================ */
/* Backend plugins                                                                              */
/* ============================================================================================ */

enum {
    LOOM_BACKEND_CAP_HOST_MEMORY = 1u << 0, /* buffers are host memory; view.data is valid */
    LOOM_BACKEND_CAP_REFERENCE = 1u << 1,   /* the reference implementation (the oracle) */
    LOOM_BACKEND_CAP_ASYNC = 1u << 2        /* ops may run asynchronously until synchronize */
};

typedef struct loom_device_info {
    uint32_t struct_size;
    uint32_t compute_units;
    uint64_t memory_bytes;    /* total device memory (0 if unknown) */
    uint64_t max_alloc_bytes; /* largest single allocation (0 = no limit known) */
    uint64_t capabilities;    /* LOOM_BACKEND_CAP_* */
    char name[128];
    char description[256]; /* free text: ISA, driver, version */
} loom_device_info;

/* Options handed to a device when it is opened: effective key/value pairs (global keys such
 * as "threads" and the plugin's own "plugin.<name>.*" keys). Borrowed for the call. */
typedef struct loom_kv_list {
    uint32_t struct_size;
    uint32_t count;
    const char *const *keys;
    const char *const *values;
} loom_kv_list;

typedef struct loom_backend_api {
    uint32_t struct_size;
    /* Devices this backend can drive here (0 is valid: then the plugin is unavailable). */
    uint32_t (*device_count)(void *state);
    loom_status (*device_info)(void *state, uint32_t index, loom_device_info *out);
    loom_status (*device_open)(void *state, uint32_t index, const loom_kv_list *options, void **dev);
    void (*device_close)(void *dev);
    /* Non-zero when the device can run this op with these operand types and shapes. */
    int32_t (*supports_op)(void *dev, const loom_op_params *params, const loom_tensor_view *dst,
                           const loom_tensor_view *const *srcs, uint32_t n_srcs);
    /* Device memory. For LOOM_BACKEND_CAP_HOST_MEMORY devices *host_ptr receives the address. */
    loom_status (*buffer_alloc)(void *dev, uint64_t size, void **buffer, void **host_ptr);
    void (*buffer_free)(void *dev, void *buffer);
    loom_status (*buffer_write)(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
    loom_status (*buffer_read)(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
    /* Compute dst = op(srcs); all operands live on this device. */
    loom_status (*compute)(void *dev, const loom_op_params *params, const loom_tensor_view *dst,
                           const loom_tensor_view *const *srcs, uint32_t n_srcs);
    /* Wait until all queued work is done. May be NULL for synchronous backends. */
    loom_status (*synchronize)(void *dev);
    /* Optional (may be NULL): prepare a weight once after it is resident (repacking, upload of
     * a private layout); *extra is then passed in view.extra. */
    loom_status (*weight_prepare)(void *dev, const loom_tensor_view *weight, void **extra);
    void (*weight_release)(void *dev, void *extra);
    /* Optional: the last error text of this device (borrowed), or NULL. */
    const char *(*last_error)(void *dev);
} loom_backend_api;

/* ============================================================================================ */
/* Architecture plugins                                                                         */
/* ============================================================================================ */

/* The role of a weight in the model, so that quantizers (QuaRot) can rotate and fuse any
 * architecture without knowing it. */
enum {
    LOOM_ROLE_OTHER = 0,
    LOOM_ROLE_EMBEDDING = 1,       /* rows are residual-stream vectors (reads the stream) */
    LOOM_ROLE_RESIDUAL_READER = 2, /* linear whose input is (a norm of) the residual stream */
    LOOM_ROLE_RESIDUAL_WRITER = 3, /* linear whose output is added to the residual stream */
    LOOM_ROLE_NORM = 4,            /* norm gain applied to the residual stream */
    LOOM_ROLE_HEAD = 5,            /* output projection to the vocabulary */
    LOOM_ROLE_INNER_READER = 6,    /* linear reading an inner (FFN/attention) activation */
    LOOM_ROLE_MIXING = 7           /* depth/repeat mixing weights (DWA alphas, routers) */
};

typedef struct loom_weight_desc {
    uint32_t struct_size;
    uint32_t role;     /* LOOM_ROLE_* */
    int32_t layer;     /* block index, -1 for none */
    int32_t head_dim;  /* > 0 when rows (outputs) are grouped per attention head */
    const char *name;  /* tensor name in the model */
    const char *norm;  /* name of the norm feeding this linear's input, or NULL */
    const char *group; /* linears sharing one input (e.g. "attn_in", "ffn_in"), or NULL */
} loom_weight_desc;

/* Called once per weight by describe_weights. Return non-zero to stop. */
typedef int32_t (*loom_weight_visit_fn)(const loom_weight_desc *desc, void *user_data);

/* Called once per metadata entry by export_metadata: `value` points to one value of `type`
 * (LOOM_META_*; strings as `const char *`), or to `count` elements of `elem_type` for arrays.
 * Return non-zero to stop. */
typedef int32_t (*loom_meta_visit_fn)(const char *key, uint32_t type, uint32_t elem_type, uint64_t count,
                                      const void *value, void *user_data);

typedef struct loom_arch_params {
    uint32_t struct_size;
    uint32_t n_ctx;   /* tokens the context must hold */
    uint32_t n_batch; /* largest number of tokens per forward call */
    uint32_t kv_type; /* LOOM_TYPE_F32 or LOOM_TYPE_F16 for the KV cache */
} loom_arch_params;

typedef struct loom_arch_api {
    uint32_t struct_size;
    /* How well this plugin handles `model` (0 = not at all; higher wins). */
    int32_t (*match)(void *state, const loom_model *model);
    /* Read hyperparameters, check and look up weights. *arch_model is the plugin's. */
    loom_status (*model_init)(void *state, const loom_model *model, void **arch_model, char *err, size_t err_size);
    void (*model_free)(void *arch_model);
    /* Model facts for the application (vocabulary size, training context, embedding width). */
    loom_status (*model_dims)(void *arch_model, int64_t *n_vocab, int64_t *n_ctx_train, int64_t *n_embd,
                              int64_t *n_layer);
    /* Create per-context state (KV cache) in `exec` with persistent tensors. */
    loom_status (*context_init)(void *arch_model, loom_exec *exec, const loom_arch_params *params, void **arch_ctx);
    void (*context_free)(void *arch_ctx);
    /* Forget all cached tokens. */
    loom_status (*context_reset)(void *arch_ctx);
    /*
     * Process n_tokens tokens at positions n_past..n_past+n_tokens-1 and write F32 logits for
     * each of them into `logits` [n_tokens, n_vocab] (a tensor the engine created), or for the
     * last one only when `logits` has a single row.
     */
    loom_status (*forward)(void *arch_ctx, loom_exec *exec, const int32_t *tokens, uint32_t n_tokens, uint32_t n_past,
                           loom_tensor *logits);
    /* Optional: describe every weight's role (for quantizers). */
    loom_status (*describe_weights)(void *arch_model, loom_weight_visit_fn visit, void *user_data);
    /* Optional: the canonical metadata a converted model file gets (`loom convert` writes the
     * model's tensors plus these keys, e.g. "general.architecture" and "<arch>.*"), so that
     * an official checkpoint becomes a self-describing GGUF. */
    loom_status (*export_metadata)(void *arch_model, loom_meta_visit_fn visit, void *user_data);
} loom_arch_api;

/* ============================================================================================ */
/* Quantizer plugins                                                                            */
/* ============================================================================================ */

typedef struct loom_quant_format {
    uint32_t struct_size;
    uint32_t type;        /* LOOM_TYPE_* it implements */
    uint32_t block_size;  /* weights per block */
    uint32_t block_bytes; /* bytes per block */
    const char *name;
    /* Reference conversions of n values (n a multiple of block_size). */
    void (*dequantize_row)(const void *src, float *dst, int64_t n);
    void (*quantize_row)(const float *src, void *dst, int64_t n);
} loom_quant_format;

typedef struct loom_quantizer_api {
    uint32_t struct_size;
    uint32_t n_formats;
    const loom_quant_format *const *formats;
} loom_quantizer_api;

/* ============================================================================================ */
/* The plugin descriptor and entry point                                                        */
/* ============================================================================================ */

typedef struct loom_plugin_desc {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t kind; /* LOOM_PLUGIN_KIND_* */
    uint32_t n_options;
    const char *name;    /* unique, [a-z0-9_]+ */
    const char *version; /* semantic version "1.2.3" */
    const char *vendor;
    const char *description;
    uint64_t capabilities;          /* kind-specific flags (LOOM_BACKEND_CAP_* for backends) */
    const loom_option_def *options; /* n_options entries, keys relative to plugin.<name>. */
    const void *api;                /* loom_backend_api / loom_arch_api / loom_quantizer_api */
    /*
     * Called once after the descriptor is accepted. Return LOOM_OK (available),
     * LOOM_ERR_UNAVAILABLE (cannot run here: write why into `reason`), or another code
     * (rejected: init failed). *state is passed back to every api call. May be NULL.
     */
    loom_status (*init)(const loom_host_api *host, void **state, char *reason, size_t reason_size);
    void (*shutdown)(void *state);
} loom_plugin_desc;

typedef const loom_plugin_desc *(*loom_plugin_entry_fn)(uint32_t host_abi_version, const loom_host_api *host);

#ifdef __cplusplus
}
#endif

#endif /* LOOM_PLUGIN_H */

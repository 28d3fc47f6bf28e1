/*
 * loom_types.h - types shared by the application API (loom.h) and the plugin API (loom_plugin.h).
 *
 * Stability rules (see docs/architecture.md):
 *  - enums only grow at the end and every constant has an explicit value that is never reused;
 *  - every struct that crosses the library/plugin boundary starts with `uint32_t struct_size`
 *    and only grows at the end; readers check the size before reading a newer member;
 *  - only fixed-width fields in ABI structs (no long, no enum-typed fields, no bitfields).
 * Only <stddef.h>, <stdint.h> and <stdbool.h> are included. Compiles as C11 -pedantic and C++.
 */
#ifndef LOOM_TYPES_H
#define LOOM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define LOOM_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define LOOM_EXPORT __attribute__((visibility("default")))
#else
#define LOOM_EXPORT
#endif

#ifdef LOOM_BUILDING_LIBRARY
#define LOOM_API LOOM_EXPORT
#else
#define LOOM_API
#endif

/* Library version (semantic). loom_version() returns the run-time value. */
#define LOOM_VERSION_MAJOR  0
#define LOOM_VERSION_MINOR  1
#define LOOM_VERSION_PATCH  0
#define LOOM_VERSION_STRING "0.1.0"

/* Plugin ABI version: majors must match exactly, minors are negotiated down. */
#define LOOM_ABI_MAJOR            1
#define LOOM_ABI_MINOR            0
#define LOOM_ABI_VERSION          ((uint32_t)((LOOM_ABI_MAJOR << 16) | LOOM_ABI_MINOR))
#define LOOM_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define LOOM_ABI_VERSION_MINOR(v) ((uint32_t)(v)&0xffffu)

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================ */
/* Status codes                                                                                 */
/* ============================================================================================ */

/* Every call that can fail returns a loom_status. 0 is success; codes are never reused. */
typedef int32_t loom_status;
enum {
    LOOM_OK = 0,
    LOOM_ERR_INVALID_ARGUMENT = 1, /* a NULL or out-of-range argument */
    LOOM_ERR_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
    LOOM_ERR_IO = 3,               /* a file could not be opened, read, mapped or written */
    LOOM_ERR_FORMAT = 4,           /* a file is corrupt, truncated or not of the expected format */
    LOOM_ERR_UNSUPPORTED = 5,      /* valid, but not supported (data type, architecture, op, ...) */
    LOOM_ERR_NOT_FOUND = 6,        /* a named thing (plugin, tensor, key, backend) does not exist */
    LOOM_ERR_ABI = 7,              /* ABI version or struct-size mismatch */
    LOOM_ERR_PLUGIN = 8,           /* a plugin failed to load, initialise or behave */
    LOOM_ERR_UNAVAILABLE = 9,      /* a plugin or device cannot run here (no device, no ISA) */
    LOOM_ERR_CONFIG = 10,          /* unknown option key or invalid option value */
    LOOM_ERR_BACKEND = 11,         /* a backend failed while computing */
    LOOM_ERR_CONTEXT_FULL = 12,    /* the context's KV cache has no room for more tokens */
    LOOM_ERR_CANCELLED = 13,       /* a callback asked to stop */
    LOOM_ERR_INTERNAL = 14,        /* an internal invariant failed (a bug: please report it) */
    LOOM_ERR_TOKENIZER = 15,       /* tokenization failed (bad vocabulary, buffer too small) */
    LOOM_ERR_BUFFER_TOO_SMALL = 16 /* an output buffer is too small; the needed size is returned */
};

/* ============================================================================================ */
/* Logging                                                                                      */
/* ============================================================================================ */

enum { LOOM_LOG_ERROR = 0, LOOM_LOG_WARN = 1, LOOM_LOG_INFO = 2, LOOM_LOG_DEBUG = 3 };

/* A log sink. `message` is borrowed for the duration of the call only; no trailing newline. */
typedef void (*loom_log_fn)(int32_t level, const char *message, void *user_data);

/* ============================================================================================ */
/* Data types                                                                                   */
/* ============================================================================================ */

/* Element types of tensors. Quantized types are stored in blocks along dimension 0. */
enum {
    LOOM_TYPE_F32 = 0,
    LOOM_TYPE_F16 = 1,
    LOOM_TYPE_BF16 = 2,
    LOOM_TYPE_Q8_0 = 3, /* 34 bytes / 32: fp16 d, int8 q[32]; x = q*d */
    LOOM_TYPE_Q4_0 = 4, /* 18 bytes / 32: fp16 d, nibbles; x = (q-8)*d */
    LOOM_TYPE_Q4_1 = 5, /* 20 bytes / 32: fp16 d, fp16 m, nibbles; x = q*d + m */
    LOOM_TYPE_Q4_K = 6, /* 144 bytes / 256 (llama.cpp k-quant) */
    LOOM_TYPE_Q6_K = 7, /* 210 bytes / 256 (llama.cpp k-quant) */
    LOOM_TYPE_I8 = 8,
    LOOM_TYPE_I16 = 9,
    LOOM_TYPE_I32 = 10,
    LOOM_TYPE_I64 = 11,
    LOOM_TYPE_F64 = 12,
    LOOM_TYPE_U8 = 13,
    LOOM_TYPE_I4X2 = 14, /* two signed 4-bit values per byte (low nibble first), QuaRot int4 */
    LOOM_TYPE_COUNT = 15 /* grows; not part of the ABI contract */
};

/* ============================================================================================ */
/* Plugins                                                                                      */
/* ============================================================================================ */

enum { LOOM_PLUGIN_KIND_BACKEND = 1, LOOM_PLUGIN_KIND_ARCHITECTURE = 2, LOOM_PLUGIN_KIND_QUANTIZER = 3 };

/* Final state of a discovered plugin. */
enum {
    LOOM_PLUGIN_AVAILABLE = 0,   /* loaded and usable */
    LOOM_PLUGIN_UNAVAILABLE = 1, /* loaded, but cannot run here (reason says why) */
    LOOM_PLUGIN_REJECTED = 2     /* not loaded: not a plugin, wrong ABI, init failed, duplicate */
};

/* Option value kinds, for option schemas. */
enum { LOOM_OPT_STRING = 0, LOOM_OPT_INT = 1, LOOM_OPT_FLOAT = 2, LOOM_OPT_BOOL = 3 };

/* Where an effective option value came from (lowest to highest precedence). */
enum {
    LOOM_SOURCE_DEFAULT = 0,
    LOOM_SOURCE_FILE = 1,
    LOOM_SOURCE_ENV = 2,
    LOOM_SOURCE_CLI = 3, /* command line or explicit API call */
    LOOM_SOURCE_UNSET = 4
};

/* One option a plugin (or the engine) accepts. Strings are static for the plugin's lifetime. */
typedef struct loom_option_def {
    uint32_t struct_size;
    uint32_t type;             /* LOOM_OPT_* */
    const char *key;           /* e.g. "device" -> full key "plugin.<name>.device" */
    const char *default_value; /* may be NULL */
    const char *help;
} loom_option_def;

#ifdef __cplusplus
}
#endif

#endif /* LOOM_TYPES_H */

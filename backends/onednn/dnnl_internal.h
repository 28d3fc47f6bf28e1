/*
 * dnnl_internal.h - shared declarations of the oneDNN backend plugin (never installed).
 *
 *   dnnl_loader.c   dlopen of libdnnl.so.2 (and the OpenMP wait policy) at init
 *   dnnl_plugin.c   entry point, CPU/ISA probing, the single device, options, host buffers
 *   dnnl_matmul.c   supports_op, weight preparation, the primitive cache and matmul compute
 *   dnnl_convert.c  weight decoding (every weight type -> f32), bf16 rounding,
 *                   per-row int8 quantization of weights and activations
 */
#ifndef LOOM_DNNL_INTERNAL_H
#define LOOM_DNNL_INTERNAL_H

#include "loom_plugin.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <pthread.h>

#define DNNL_NAME "onednn"

/* ---- dnnl_loader.c: the oneDNN functions used, resolved at run time ---- */
#define ODNN_FUNCS(X)                                                                                                  \
    X(dnnl_version)                                                                                                    \
    X(dnnl_status2str)                                                                                                 \
    X(dnnl_get_effective_cpu_isa)                                                                                      \
    X(dnnl_engine_create)                                                                                              \
    X(dnnl_engine_destroy)                                                                                             \
    X(dnnl_stream_create)                                                                                              \
    X(dnnl_stream_destroy)                                                                                             \
    X(dnnl_stream_wait)                                                                                                \
    X(dnnl_memory_desc_init_by_strides)                                                                                \
    X(dnnl_matmul_desc_init)                                                                                           \
    X(dnnl_primitive_desc_create)                                                                                      \
    X(dnnl_primitive_desc_destroy)                                                                                     \
    X(dnnl_primitive_create)                                                                                           \
    X(dnnl_primitive_destroy)                                                                                          \
    X(dnnl_primitive_execute)                                                                                          \
    X(dnnl_memory_create)                                                                                              \
    X(dnnl_memory_set_data_handle)                                                                                     \
    X(dnnl_memory_destroy)

typedef struct odnn_lib {
    void *handle;
#define ODNN_MEMBER(f) __typeof__(f) *f;
    ODNN_FUNCS(ODNN_MEMBER)
#undef ODNN_MEMBER
    void (*omp_set_num_threads)(int); /* NULL without an OpenMP runtime */
    int (*omp_get_max_threads)(void);
} odnn_lib;

extern odnn_lib odnn;
/* Load libdnnl once (thread-safe). 0 on success, else -1 with the reason. */
int odnn_lib_load(char *reason, size_t reason_size);

/* Compute paths of a matmul. */
enum {
    ODNN_F32 = 0,  /* f32 x f32 -> f32 */
    ODNN_BF16 = 1, /* bf16 x bf16 -> f32 (activations rounded to bf16 per call) */
    ODNN_INT8 = 2, /* u8 x s8 -> s32, per-row scales applied afterwards */
    ODNN_AUTO = 3  /* device mode only: bf16 for quantized weights where bf16 is native, else f32 */
};

typedef struct odnn_state {
    const loom_host_api *host;
    dnnl_cpu_isa_t isa; /* oneDNN's effective ISA (honours ONEDNN_MAX_CPU_ISA) */
    int bf16_ok;        /* a bf16 matmul primitive can be created */
    int bf16_native;    /* the ISA has avx512_bf16 (or AMX) */
    int int8_ok;        /* u8 x s8 gives exact s32 sums: needs VNNI */
    char bf16_why[160]; /* why bf16 is unavailable */
    char int8_why[200]; /* why int8 is unavailable */
    loom_device_info info;
} odnn_state;

/* One cached primitive with its memory objects (data handles set per call). */
typedef struct odnn_prim {
    int used;
    int path;
    int nthr;  /* OpenMP threads it was created for */
    int64_t g; /* batched groups (int8) */
    int64_t m, k, n, lda, ldw, ldd;
    uint64_t stamp;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
} odnn_prim;

#define ODNN_CACHE 48

typedef struct odnn_device {
    odnn_state *state;
    int mode;    /* ODNN_* for prepared weights, or ODNN_AUTO */
    int threads; /* OpenMP threads for large matmuls */
    int refused; /* the requested path is unavailable here: every matmul is declined (error says why) */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    odnn_prim cache[ODNN_CACHE];
    uint64_t clock;
    uint64_t cache_hits, cache_misses;
    void *scratch; /* grow-only scratch (converted activations, s32 results, decoded weights) */
    size_t scratch_size;
    pthread_mutex_t lock;
    char error[1024];
} odnn_device;

/* A weight prepared for the device's mode (the `extra` of weight_prepare). */
typedef struct odnn_weight {
    uint32_t magic;
    int path;        /* ODNN_* of `data` */
    int64_t k, n;    /* row length and rows per batch */
    int64_t b2, b3;  /* batches */
    void *data;      /* [b3][b2][n][k] f32, bf16 (uint16) or s8 */
    int64_t group;   /* int8: k per group (ODNN_INT8_GROUP, or k when it does not divide) */
    float *scale;    /* int8: per row and group [rows][k / group] */
    float *offset;   /* int8: w = scale * q + offset per row and group (Q4_1), or NULL */
    int32_t *rowsum; /* int8: sum of the s8 values per row and group */
} odnn_weight;

#define ODNN_WEIGHT_MAGIC 0x6f646e77u
#define ODNN_INT8_GROUP   32

/* ---- dnnl_plugin.c ---- */
loom_status odnn_fail(odnn_device *dev, loom_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void odnn_log(int32_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* 64-byte aligned allocation / free (NULL on failure). */
void *odnn_alloc(size_t size);
void odnn_free(void *p);
/* Make sure dev->scratch holds `size` bytes. */
loom_status odnn_scratch(odnn_device *dev, size_t size);

/* ---- dnnl_convert.c ---- */
/* Block size and bytes of a weight type this backend decodes (0 bytes: not supported). */
void odnn_type_size(uint32_t type, int64_t *block, int64_t *bytes);
/* Decode n values (n a multiple of the block size) of `type` to f32. */
void odnn_decode_row(uint32_t type, const void *src, float *dst, int64_t n);
uint16_t odnn_f32_to_bf16(float f);
/* Symmetric per-row int8: q = round(x / s), s = max|x| / 127; returns s (0 for a zero row) and
 * stores the sum of q in *sum. */
float odnn_quantize_row_s8(const float *x, int8_t *q, int64_t n, int32_t *sum);
/* The same, stored as u8 = q + 128. */
float odnn_quantize_row_u8(const float *x, uint8_t *q, int64_t n);
/* Q8_0, Q4_0 and Q4_1 rows exactly: per block of 32, s8 values q, a scale d and an offset m
 * (Q4_1 only; 0 otherwise) with w = d * q + m, and the sum of q. -1 for other types. */
int odnn_blocks_s8(uint32_t type, const void *row, int64_t k, int8_t *q, float *scale, float *offset, int32_t *sums);

/* ---- dnnl_matmul.c ---- */
int32_t odnn_supports_op(void *dev, const loom_op_params *params, const loom_tensor_view *dst,
                         const loom_tensor_view *const *srcs, uint32_t n_srcs);
loom_status odnn_compute(void *dev, const loom_op_params *params, const loom_tensor_view *dst,
                         const loom_tensor_view *const *srcs, uint32_t n_srcs);
loom_status odnn_weight_prepare(void *dev, const loom_tensor_view *weight, void **extra);
void odnn_weight_release(void *dev, void *extra);
/* Can a primitive for `path` be created here (tiny probe)? 0 on success. */
int odnn_probe_path(dnnl_engine_t engine, int path);
void odnn_cache_clear(odnn_device *dev);

#endif /* LOOM_DNNL_INTERNAL_H */

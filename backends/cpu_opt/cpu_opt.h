/*
 * cpu_opt.h - internal declarations of the optimised CPU backend plugin ("cpu_opt").
 *
 * Layout of the plugin (one kernel family per file):
 *   plugin.c          descriptor, devices, buffers, supports_op, compute dispatch, weight_prepare
 *   isa.c             run-time ISA detection (CPUID + XGETBV), variant names
 *   threadpool.c      persistent worker threads, spin-then-sleep start and barrier
 *   tune.c            kernel variant choice by a short measurement, cached per machine
 *   quant.c           fp16/bf16 helpers, activation quantization (q8 per block of 32), row dequant
 *   repack.c          weight repacking into 16-row tiles (all types), tile row extraction
 *   matmul.c          matmul driver: shapes, partitioning, variant dispatch, fallback repacking
 *   matmul_scalar.c   portable tile kernels (every type)
 *   matmul_avx2.c     AVX2/FMA/F16C tile kernels
 *   matmul_avx512.c   AVX-512 F/BW/VL + VNNI tile kernels
 *   norm.c            RMS and layer norm
 *   elementwise.c     add, mul, scale, silu, gelu, swiglu, weighted sum
 *   rope.c softmax.c attention.c copy.c (copy + get_rows) hadamard.c
 *   grouped_softmax.c the grouped softmax of landmark attention
 *
 * Nothing here is part of the ABI; only loom_plugin_entry is exported.
 */
#ifndef LOOM_CPU_OPT_H
#define LOOM_CPU_OPT_H

#include "loom_plugin.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CO_NAME "cpu_opt"

#if defined(__x86_64__) && !defined(CO_NO_X86_KERNELS)
#define CO_X86_KERNELS 1
#else
#define CO_X86_KERNELS 0
#endif
#define CO_MAX_THREADS 256
#define CO_TILE 16 /* rows of a weight tile (one 512-bit register of f32 / int32 lanes) */
#define CO_QK 32   /* elements per quantization block */

#if defined(__GNUC__)
#define CO_INLINE static inline __attribute__((always_inline))
#define CO_UNUSED __attribute__((unused))
#else
#define CO_INLINE static inline
#define CO_UNUSED
#endif

/* ============================================================================================ */
/* isa.c                                                                                        */
/* ============================================================================================ */

enum {
    CO_ISA_SCALAR = 0,
    CO_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C (OS saves YMM) */
    CO_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ + VNNI + F16C (OS saves ZMM) */
    CO_ISA_COUNT = 3
};

typedef struct co_isa_info {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16, avxvnni;
    int os_ymm, os_zmm;
    int best; /* highest CO_ISA_* usable here */
    char cpu_name[64];
    char summary[192];
} co_isa_info;

/* Detect once (thread-safe); returns a static record. */
const co_isa_info *co_isa_detect(void);
const char *co_isa_name(int isa);
/* Parse "auto", "scalar", "avx2", "avx512"; -1 if unknown. */
int co_isa_parse(const char *s);

/* ============================================================================================ */
/* threadpool.c                                                                                 */
/* ============================================================================================ */

typedef struct co_pool co_pool;
/*
 * A task: called by each participating thread with its index (0 = the calling thread; distinct
 * indexes, usable for per-thread scratch). Up to nth threads take part, but only the caller is
 * certain to: tasks must take their work from co_pool_next until it runs out, never assume a
 * share per index.
 */
typedef void (*co_task_fn)(void *arg, int ith, int nth);
/* A range task for co_parallel_for: items [i0, i1), run by thread ith. */
typedef void (*co_range_fn)(void *arg, int64_t i0, int64_t i1, int ith);

/* n_threads >= 1 (the caller counts as one). spin_iters: pause loops before sleeping. */
co_pool *co_pool_create(int n_threads, int spin_iters);
void co_pool_free(co_pool *pool);
int co_pool_size(const co_pool *pool);
/* Run fn on up to nth threads (1 <= nth <= size); returns when every participant is done. */
void co_pool_run(co_pool *pool, co_task_fn fn, void *arg, int nth);
/* Shared work counter of the current run: returns the next chunk index (dynamic scheduling). */
int64_t co_pool_next(co_pool *pool);
/* Set the work counter (before co_pool_run). */
void co_pool_reset_counter(co_pool *pool, int64_t value);
/* Completion counter of the current run (zero at its start): add k finished items; wait until
 * at least target items are finished (orders the phases of a run). */
void co_pool_done(co_pool *pool, int64_t k);
void co_pool_wait_done(co_pool *pool, int64_t target);
/* Chunk size giving each of nth threads about 4 chunks. */
CO_INLINE int64_t co_chunk(int64_t n, int nth) {
    int64_t c = n / ((int64_t)nth * 4);
    return c < 1 ? 1 : c;
}
/* fn over [0, n) in chunks of `chunk` items on up to nth threads (inline when one chunk). */
void co_parallel_for(co_pool *pool, int nth, int64_t n, int64_t chunk, co_range_fn fn, void *arg);

/* ============================================================================================ */
/* quant.c                                                                                      */
/* ============================================================================================ */

float co_fp16_to_fp32(uint16_t h);
uint16_t co_fp32_to_fp16(float f);
CO_INLINE float co_bf16_to_fp32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
uint16_t co_fp32_to_bf16(float f);

/* Bytes per block and elements per block of a type (0 for unknown types). */
uint32_t co_type_block_size(uint32_t type);
uint32_t co_type_block_bytes(uint32_t type);
/* Bytes of a row of n elements, 0 if n is not a multiple of the block size or type unknown. */
uint64_t co_type_row_bytes(uint32_t type, int64_t n);
/* Types whose rows can be converted to f32 by co_dequant_row. */
int co_type_dequant_ok(uint32_t type);
/* Convert n elements of a row (n a multiple of the block size) to f32. */
void co_dequant_row(uint32_t type, const void *src, float *dst, int64_t n);
/* Quantize n f32 values into a row of `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_1). */
int co_quant_row_ok(uint32_t type);
void co_quant_row(uint32_t type, const float *src, void *dst, int64_t n);

/* f rounded to the nearest fp16 value (as a float). */
CO_INLINE float co_fp16_round(float f) { return co_fp16_to_fp32(co_fp32_to_fp16(f)); }

/*
 * Activations quantized per block of 32 to int8 (symmetric: q = round-to-even(x * 127 / max|x|),
 * d = max|x| / 127), with per-block metadata for the weight kernels: d, d * sum(q), -8 * sum(q),
 * -128 * sum(q). d and d * sum(q) are rounded to fp16 as in llama.cpp's q8_0 / q8_1 activation
 * blocks, so that quantized models give llama.cpp's numbers more closely.
 * One row: K int8 values, then nblk co_qmeta (row stride co_qact_row_bytes).
 */
typedef struct co_qmeta {
    float d;
    float ds;     /* d * sum(q) */
    int32_t n8;   /* -8 * sum(q)   (Q4_0 weights: (w - 8)) */
    int32_t n128; /* -128 * sum(q) (Q8_0 weights stored as w + 128) */
} co_qmeta;

CO_INLINE size_t co_qact_row_bytes(int64_t K) {
    size_t b = (size_t)K + (size_t)(K / CO_QK) * sizeof(co_qmeta);
    return (b + 63) & ~(size_t)63;
}
CO_INLINE const co_qmeta *co_qact_meta(const uint8_t *row, int64_t K) {
    return (const co_qmeta *)(const void *)(row + K);
}
typedef void (*co_quant_act_fn)(const float *x, uint8_t *row, int64_t K);
void co_quant_act_scalar(const float *x, uint8_t *row, int64_t K);
void co_quant_act_avx2(const float *x, uint8_t *row, int64_t K);
void co_quant_act_avx512(const float *x, uint8_t *row, int64_t K);

/* ============================================================================================ */
/* repack.c: 16-row tiles                                                                       */
/* ============================================================================================ */

/*
 * A weight matrix [N rows, K columns] (ne[0] = K) is stored as ceil(N/16) tiles; the last
 * tile is padded with zero rows. Each tile holds 16 rows:
 *   F32 / F16 / BF16: k-major: element (r, k) at index k*16 + r.
 *   Q8_0: per block b of 32 columns: 512 bytes, register g (0..7) = 64 bytes holding for each
 *         row r the 4 bytes (w(r, 32b + 4g + i) + 128) as unsigned; then the scales: nblk x 16
 *         fp16 (d of block b of row r at b*16 + r).
 *   Q4_0 / Q4_1: per block: 256 bytes, register p (0..3) holds for each row r 4 bytes whose low
 *         nibbles are q(r, 32b + 4p + i) and high nibbles q(r, 32b + 16 + 4p + i); then nblk x 16
 *         fp16 d, then (Q4_1) nblk x 16 fp16 m.
 * Tile byte sizes are rounded up to 64.
 */
typedef struct co_weight {
    uint32_t type;      /* LOOM_TYPE_* of the tiles (same as the source) */
    uint32_t exact;     /* non-zero: quantized tiles were dequantized to f32 (exact float path) */
    int64_t K, N;       /* columns and rows of each matrix */
    int64_t n_mat;      /* matrices (ne[2] * ne[3]) */
    int64_t ne2;        /* matrices along dim 2 */
    int64_t n_tiles;    /* tiles per matrix */
    size_t tile_bytes;  /* bytes per tile */
    size_t mat_bytes;   /* bytes per matrix */
    uint8_t *data;      /* n_mat * mat_bytes */
    size_t map_size;    /* for munmap; 0 if malloc'd */
} co_weight;

/* Tile byte size for a type and K (0 if the type cannot be tiled). */
size_t co_tile_bytes(uint32_t type, int64_t K);
int co_tile_type_ok(uint32_t type, int64_t K);
/* Pack rows [0, nr) (nr <= 16) of a matrix with row stride `nb1` bytes into one tile. */
void co_tile_pack(uint32_t type, const uint8_t *src, int64_t nb1, int nr, int64_t K, uint8_t *tile);
/* Convert f32 rows (nr <= 16, row stride ld floats) into an F32 tile. */
void co_tile_pack_f32(const float *src, int64_t ld, int nr, int64_t K, float *tile);
/* Row r of a tile back to f32 (K values). */
void co_tile_row_f32(uint32_t type, const uint8_t *tile, int64_t K, int r, float *dst);
/* Dequantize a whole tile of `type` into an F32 tile. */
void co_tile_to_f32(uint32_t type, const uint8_t *tile, int64_t K, float *dst);

/* ============================================================================================ */
/* Tile kernels (matmul_scalar.c, matmul_avx2.c, matmul_avx512.c)                               */
/* ============================================================================================ */

/*
 * Float kernels: dst[t * ldd + r] = sum_k tile[k*16 + r] * x(t, k) for t < T, r < nr, over nt
 * consecutive tiles (tile i at tile + i * tile_bytes, writing rows 16*i + r). x is packed
 * k-major per token block: x(t, k) = xp[k * T + t]. T <= CO_MAX_T. Tiles: F32, F16 or BF16.
 */
#define CO_MAX_T 16
typedef void (*co_fgemm_fn)(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                            const float *xp, int T, float *dst, int64_t ldd, int nr_last);
/*
 * Quantized kernels: same, with activations quantized rows (co_qact layout, stride `ars` bytes,
 * token t at act + t * ars). Tiles: Q8_0, Q4_0, Q4_1.
 */
typedef void (*co_qgemm_fn)(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                            const uint8_t *act, size_t ars, int T, float *dst, int64_t ldd, int nr_last);

typedef struct co_kernels {
    int isa;
    co_fgemm_fn fgemm;  /* any T, nt */
    co_qgemm_fn qgemm;  /* any T, nt */
    co_quant_act_fn quant_act;
} co_kernels;

void co_fgemm_scalar(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K, const float *xp,
                     int T, float *dst, int64_t ldd, int nr_last);
void co_qgemm_scalar(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                     const uint8_t *act, size_t ars, int T, float *dst, int64_t ldd, int nr_last);
void co_fgemm_avx2(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K, const float *xp,
                   int T, float *dst, int64_t ldd, int nr_last);
void co_qgemm_avx2(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                   const uint8_t *act, size_t ars, int T, float *dst, int64_t ldd, int nr_last);
void co_fgemm_avx512(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K, const float *xp,
                     int T, float *dst, int64_t ldd, int nr_last);
void co_qgemm_avx512(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                     const uint8_t *act, size_t ars, int T, float *dst, int64_t ldd, int nr_last);

/* Kernel table for an ISA level (falls back to lower levels for missing entries). */
void co_kernels_for_isa(int isa, co_kernels *out);

/* ============================================================================================ */
/* Device                                                                                       */
/* ============================================================================================ */

/* Blocking parameters of the matmul driver (chosen by tune.c). */
typedef struct co_mm_params {
    int gemv_isa;   /* kernel ISA for one token (decode) */
    int gemm_isa;   /* kernel ISA for token blocks (prefill) */
    int gemv_nt;    /* tiles per kernel call for one token */
    int gemm_nt;    /* tiles per kernel call for token blocks */
    int gemm_t;     /* tokens per kernel call */
} co_mm_params;

/* Kernel families that are tuned separately. */
enum { CO_FAM_F32 = 0, CO_FAM_F16, CO_FAM_BF16, CO_FAM_Q8_0, CO_FAM_Q4_0, CO_FAM_Q4_1, CO_FAM_COUNT };
int co_family_of_type(uint32_t type);

typedef struct co_scratch {
    void *ptr;
    size_t size;
} co_scratch;

typedef struct co_device {
    const loom_host_api *host;
    co_pool *pool;
    int n_threads;
    int isa;              /* highest ISA allowed (option "isa") */
    int exact;            /* exact float path for quantized weights */
    int release_mapped;   /* drop the pages of mapped weights after repacking */
    int tune_mode;        /* 0 off (defaults), 1 auto (cache), 2 force re-measure */
    co_kernels kern[CO_ISA_COUNT];
    co_mm_params mm[CO_FAM_COUNT];
    int mm_tuned[CO_FAM_COUNT];
    co_scratch shared;                     /* shared between the threads of one op */
    struct co_rope_cache *rope;            /* cos/sin tables (rope.c) */
    co_scratch local[CO_MAX_THREADS];      /* per thread */
    char err[512];
} co_device;

/* Grow-only scratch (64-byte aligned). Returns NULL on failure. Never shrinks. */
void *co_scratch_get(co_scratch *s, size_t size);
void co_scratch_release(co_scratch *s);

/* Record an error text on the device; returns status. */
loom_status co_error(co_device *dev, loom_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ============================================================================================ */
/* Ops                                                                                          */
/* ============================================================================================ */

typedef const loom_tensor_view *co_cview;

/* Helpers on views. */
CO_INLINE int64_t co_nrows(co_cview v) { return v->ne[1] * v->ne[2] * v->ne[3]; }
CO_INLINE int64_t co_nelem(co_cview v) { return v->ne[0] * v->ne[1] * v->ne[2] * v->ne[3]; }
int co_is_contiguous(co_cview v);
int co_rows_contiguous(co_cview v); /* nb[0] is the element size (rows may be strided) */
size_t co_type_size(uint32_t type);  /* element size of plain types, 0 for block types */
CO_INLINE float *co_row_f32(co_cview v, int64_t i1, int64_t i2, int64_t i3) {
    return (float *)(void *)((uint8_t *)v->data + i1 * v->nb[1] + i2 * v->nb[2] + i3 * v->nb[3]);
}

/* supports_* return non-zero when the op with these operands can run here. */
int co_supports_matmul(const co_device *dev, co_cview dst, co_cview a, co_cview w);
loom_status co_op_matmul(co_device *dev, co_cview dst, co_cview a, co_cview w);

int co_supports_norm(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_rms_norm(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview g);
loom_status co_op_layer_norm(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview g,
                             co_cview b);

int co_supports_elementwise(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_elementwise(co_device *dev, const loom_op_params *p, co_cview dst, co_cview const *src,
                              uint32_t n);

int co_supports_rope(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
void co_rope_cache_free(co_device *dev);
loom_status co_op_rope(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview pos);

int co_supports_softmax(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_softmax(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x, co_cview mask);

int co_supports_grouped_softmax(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_grouped_softmax(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x,
                                  co_cview flags);

int co_supports_attention(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_attention(co_device *dev, const loom_op_params *p, co_cview dst, co_cview q, co_cview k,
                            co_cview v);

int co_supports_copy(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_copy(co_device *dev, co_cview dst, co_cview src);
int co_supports_get_rows(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_get_rows(co_device *dev, co_cview dst, co_cview table, co_cview ids);

int co_supports_hadamard(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n);
loom_status co_op_hadamard(co_device *dev, const loom_op_params *p, co_cview dst, co_cview x);

/* Row conversions with F16C where available (quant.c dispatches). */
void co_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void co_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n);
void co_f16_to_f32_row_f16c(const uint16_t *src, float *dst, int64_t n);
void co_f32_to_f16_row_f16c(const float *src, uint16_t *dst, int64_t n);

/* AVX-512 activations (act_avx512.c). */
void co_silu_avx512(float *d, const float *a, int64_t n);
void co_swiglu_avx512(float *d, const float *a, const float *b, int64_t n);
float co_exp_sum_avx512(const float *x, float *y, int64_t n, float m);

/* Vector math (elementwise.c), exported for attention and softmax. */
float co_expf(float x);
/* y[i] = exp(x[i] - m), returns the sum (n any). */
float co_exp_sum(const float *x, float *y, int64_t n, float m);

/* ============================================================================================ */
/* tune.c                                                                                       */
/* ============================================================================================ */

/* Choose matmul parameters for a family (measures at first use unless cached or tuning off). */
void co_tune_family(co_device *dev, int fam);
/* Defaults without measurement. */
void co_mm_defaults(int isa, int fam, co_mm_params *out);
double co_now(void);

#endif /* LOOM_CPU_OPT_H */

/*
 * loom_backend_util.h - small header-only helpers shared by backend plugins (and the engine's
 * dispatcher): data type sizes, fp16/bf16 conversions, row dequantization of every weight type,
 * op names and the shape rules of every op (docs/ops.md).
 *
 * Plugins may not link the engine, so this lives here as static inline functions. It includes
 * only the ABI headers and the C library.
 */
#ifndef LOOM_BACKEND_UTIL_H
#define LOOM_BACKEND_UTIL_H

#include "loom_plugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ============================================================================================ */
/* Data types                                                                                   */
/* ============================================================================================ */

/* Elements per block (1 for plain types); 0 for an unknown type. */
static inline int64_t lbu_type_block_size(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32:
    case LOOM_TYPE_F16:
    case LOOM_TYPE_BF16:
    case LOOM_TYPE_I8:
    case LOOM_TYPE_I16:
    case LOOM_TYPE_I32:
    case LOOM_TYPE_I64:
    case LOOM_TYPE_F64:
    case LOOM_TYPE_U8: return 1;
    case LOOM_TYPE_I4X2: return 2;
    case LOOM_TYPE_Q8_0:
    case LOOM_TYPE_Q4_0:
    case LOOM_TYPE_Q4_1: return 32;
    case LOOM_TYPE_Q4_K:
    case LOOM_TYPE_Q6_K: return 256;
    default: return 0;
    }
}

/* Bytes per block; 0 for an unknown type. */
static inline int64_t lbu_type_block_bytes(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32:
    case LOOM_TYPE_I32: return 4;
    case LOOM_TYPE_F16:
    case LOOM_TYPE_BF16:
    case LOOM_TYPE_I16: return 2;
    case LOOM_TYPE_I8:
    case LOOM_TYPE_U8:
    case LOOM_TYPE_I4X2: return 1;
    case LOOM_TYPE_I64:
    case LOOM_TYPE_F64: return 8;
    case LOOM_TYPE_Q8_0: return 34;
    case LOOM_TYPE_Q4_0: return 18;
    case LOOM_TYPE_Q4_1: return 20;
    case LOOM_TYPE_Q4_K: return 144;
    case LOOM_TYPE_Q6_K: return 210;
    default: return 0;
    }
}

static inline const char *lbu_type_name(uint32_t type) {
    static const char *const names[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q6_k",
                                        "i8",  "i16", "i32",  "i64",  "f64",  "u8",   "i4x2"};
    return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

/* Types a weight (MATMUL src1, GET_ROWS src0) may have. */
static inline int lbu_is_weight_type(uint32_t type) {
    return type == LOOM_TYPE_F32 || type == LOOM_TYPE_F16 || type == LOOM_TYPE_BF16 || type == LOOM_TYPE_Q8_0 ||
           type == LOOM_TYPE_Q4_0 || type == LOOM_TYPE_Q4_1 || type == LOOM_TYPE_Q4_K || type == LOOM_TYPE_Q6_K;
}

/* Plain floating types an activation-side operand may have (converted to float on load). */
static inline int lbu_is_float_type(uint32_t type) {
    return type == LOOM_TYPE_F32 || type == LOOM_TYPE_F16 || type == LOOM_TYPE_BF16;
}

/* ============================================================================================ */
/* fp16 / bf16                                                                                  */
/* ============================================================================================ */

static inline float lbu_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t lbu_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float lbu_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return lbu_bits_to_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return lbu_bits_to_f32(sign);
        /* subnormal: man * 2^-24 (exact in float) */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return lbu_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

/* Round to nearest even; overflow gives infinity, NaN stays NaN. */
static inline uint16_t lbu_fp32_to_fp16(float f) {
    uint32_t u = lbu_f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t man = u & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0u));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        /* subnormal half (or zero): value = m * 2^-24 with m = round(full_mantissa * 2^(e-1-13)) */
        if (e < -10) return sign;
        uint32_t full = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t m = full >> shift;
        uint32_t rem = full & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (m & 1u))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t m = man >> 13;
    uint32_t rem = man & 0x1fffu;
    uint32_t r = ((uint32_t)e << 10) | m;
    if (rem > 0x1000u || (rem == 0x1000u && (m & 1u))) r++; /* may carry into the exponent: fine */
    return (uint16_t)(sign | r);
}

static inline float lbu_bf16_to_fp32(uint16_t h) { return lbu_bits_to_f32((uint32_t)h << 16); }

static inline uint16_t lbu_fp32_to_bf16(float f) {
    uint32_t u = lbu_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline uint16_t lbu_read_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* ============================================================================================ */
/* Dequantization (block layouts: ../shared/docs/formats.md)                                    */
/* ============================================================================================ */

/* Q4_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void lbu_q4k_scale_min(const uint8_t *s, int j, int *scale, int *min) {
    if (j < 4) {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    } else {
        *scale = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/*
 * Convert n elements of `type` at `src` to float (n a multiple of the block size). Returns 0 on
 * success, -1 for a type that is not a float or weight type.
 */
static inline int lbu_to_float_row(uint32_t type, const void *restrict src, float *restrict dst, int64_t n) {
    const uint8_t *p = (const uint8_t *)src;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return 0;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = lbu_fp16_to_fp32(lbu_read_u16(p + 2 * i));
        return 0;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = lbu_bf16_to_fp32(lbu_read_u16(p + 2 * i));
        return 0;
    case LOOM_TYPE_Q8_0:
        for (int64_t b = 0; b < n / 32; b++, p += 34) {
            float d = lbu_fp16_to_fp32(lbu_read_u16(p));
            for (int j = 0; j < 32; j++)
                dst[b * 32 + j] = (float)(int8_t)p[2 + j] * d;
        }
        return 0;
    case LOOM_TYPE_Q4_0:
        for (int64_t b = 0; b < n / 32; b++, p += 18) {
            float d = lbu_fp16_to_fp32(lbu_read_u16(p));
            for (int j = 0; j < 16; j++) {
                dst[b * 32 + j] = (float)((p[2 + j] & 0x0f) - 8) * d;
                dst[b * 32 + j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
            }
        }
        return 0;
    case LOOM_TYPE_Q4_1:
        for (int64_t b = 0; b < n / 32; b++, p += 20) {
            float d = lbu_fp16_to_fp32(lbu_read_u16(p));
            float m = lbu_fp16_to_fp32(lbu_read_u16(p + 2));
            for (int j = 0; j < 16; j++) {
                dst[b * 32 + j] = (float)(p[4 + j] & 0x0f) * d + m;
                dst[b * 32 + j + 16] = (float)(p[4 + j] >> 4) * d + m;
            }
        }
        return 0;
    case LOOM_TYPE_Q4_K:
        for (int64_t b = 0; b < n / 256; b++, p += 144) {
            float d = lbu_fp16_to_fp32(lbu_read_u16(p));
            float dmin = lbu_fp16_to_fp32(lbu_read_u16(p + 2));
            const uint8_t *sc = p + 4;
            const uint8_t *qs = p + 16;
            float *y = dst + b * 256;
            for (int run = 0; run < 4; run++) { /* 4 runs of 32 bytes = 64 weights */
                int s0, m0, s1, m1;
                lbu_q4k_scale_min(sc, 2 * run, &s0, &m0);
                lbu_q4k_scale_min(sc, 2 * run + 1, &s1, &m1);
                float d0 = d * (float)s0, mm0 = dmin * (float)m0;
                float d1 = d * (float)s1, mm1 = dmin * (float)m1;
                const uint8_t *q = qs + 32 * run;
                for (int l = 0; l < 32; l++) {
                    y[64 * run + l] = d0 * (float)(q[l] & 0x0f) - mm0;
                    y[64 * run + 32 + l] = d1 * (float)(q[l] >> 4) - mm1;
                }
            }
        }
        return 0;
    case LOOM_TYPE_Q6_K:
        for (int64_t b = 0; b < n / 256; b++, p += 210) {
            const uint8_t *ql = p;
            const uint8_t *qh = p + 128;
            const int8_t *sc = (const int8_t *)(const void *)(p + 192);
            float d = lbu_fp16_to_fp32(lbu_read_u16(p + 208));
            float *y = dst + b * 256;
            for (int half = 0; half < 2; half++) { /* 128 weights each */
                const uint8_t *l4 = ql + 64 * half;
                const uint8_t *h2 = qh + 32 * half;
                const int8_t *s = sc + 8 * half;
                float *yy = y + 128 * half;
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = ((l4[l] & 0x0f) | (((h2[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((l4[l + 32] & 0x0f) | (((h2[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) - 32;
                    yy[l] = d * (float)s[is + 0] * (float)q1;
                    yy[l + 32] = d * (float)s[is + 2] * (float)q2;
                    yy[l + 64] = d * (float)s[is + 4] * (float)q3;
                    yy[l + 96] = d * (float)s[is + 6] * (float)q4;
                }
            }
        }
        return 0;
    default: return -1;
    }
}

/* ============================================================================================ */
/* Views                                                                                        */
/* ============================================================================================ */

static inline int64_t lbu_view_nelements(const loom_tensor_view *v) {
    return v->ne[0] * v->ne[1] * v->ne[2] * v->ne[3];
}

/* True when the view is densely packed in the natural order. */
static inline int lbu_view_contiguous(const loom_tensor_view *v) {
    int64_t bs = lbu_type_block_size(v->type), bb = lbu_type_block_bytes(v->type);
    if (bs == 0 || v->ne[0] % bs != 0) return 0;
    if (v->ne[0] > bs && v->nb[0] != bb) return 0;
    int64_t expect = bb * (v->ne[0] / bs);
    for (int d = 1; d < LOOM_MAX_DIMS; d++) {
        if (v->ne[d] > 1 && v->nb[d] != expect) return 0;
        expect *= v->ne[d];
    }
    return 1;
}

/* True when every row (dimension 0) is densely packed. */
static inline int lbu_view_rows_packed(const loom_tensor_view *v) {
    return v->ne[0] <= lbu_type_block_size(v->type) || v->nb[0] == lbu_type_block_bytes(v->type);
}

/* Bytes from element 0 to one past the last byte the view touches (strides must be >= 0). */
static inline uint64_t lbu_view_extent(const loom_tensor_view *v) {
    int64_t bs = lbu_type_block_size(v->type), bb = lbu_type_block_bytes(v->type);
    if (bs == 0) return 0;
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (v->ne[d] <= 0) return 0;
    uint64_t last = 0;
    last += (uint64_t)((v->ne[0] + bs - 1) / bs - 1) * (uint64_t)v->nb[0];
    for (int d = 1; d < LOOM_MAX_DIMS; d++)
        last += (uint64_t)(v->ne[d] - 1) * (uint64_t)v->nb[d];
    return last + (uint64_t)bb;
}

/* ============================================================================================ */
/* Ops: names and shape rules                                                                   */
/* ============================================================================================ */

static inline const char *lbu_op_name(uint32_t op) {
    static const char *const names[] = {"none",         "get_rows", "rms_norm",       "layer_norm", "add",
                                        "mul",          "scale",    "matmul",         "rope",       "softmax",
                                        "attention",    "silu",     "gelu",           "swiglu",     "copy",
                                        "weighted_sum", "hadamard", "grouped_softmax"};
    return op < sizeof names / sizeof names[0] ? names[op] : "unknown";
}

/* Number of sources an op takes: min and max. Returns 0 for an unknown op. */
static inline int lbu_op_arity(uint32_t op, uint32_t *min_src, uint32_t *max_src) {
    uint32_t lo, hi;
    switch (op) {
    case LOOM_OP_GET_ROWS:
        lo = 2;
        hi = 2;
        break;
    case LOOM_OP_RMS_NORM:
        lo = 1;
        hi = 2;
        break;
    case LOOM_OP_LAYER_NORM:
        lo = 1;
        hi = 3;
        break;
    case LOOM_OP_ADD:
    case LOOM_OP_MUL:
        lo = 2;
        hi = 2;
        break;
    case LOOM_OP_SCALE:
        lo = 1;
        hi = 1;
        break;
    case LOOM_OP_MATMUL:
        lo = 2;
        hi = 2;
        break;
    case LOOM_OP_ROPE:
        lo = 2;
        hi = 2;
        break;
    case LOOM_OP_SOFTMAX:
        lo = 1;
        hi = 2;
        break;
    case LOOM_OP_ATTENTION:
        lo = 3;
        hi = 3;
        break;
    case LOOM_OP_SILU:
    case LOOM_OP_GELU:
        lo = 1;
        hi = 1;
        break;
    case LOOM_OP_SWIGLU:
        lo = 2;
        hi = 2;
        break;
    case LOOM_OP_COPY:
        lo = 1;
        hi = 1;
        break;
    case LOOM_OP_WEIGHTED_SUM:
        lo = 2;
        hi = 2;
        break;
    case LOOM_OP_HADAMARD:
        lo = 1;
        hi = 1;
        break;
    case LOOM_OP_GROUPED_SOFTMAX:
        lo = 2;
        hi = 2;
        break;
    default: return 0;
    }
    *min_src = lo;
    *max_src = hi;
    return 1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int
lbu_fail(char *err, size_t err_size, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static inline int lbu_same_shape(const loom_tensor_view *a, const loom_tensor_view *b) {
    return a->ne[0] == b->ne[0] && a->ne[1] == b->ne[1] && a->ne[2] == b->ne[2] && a->ne[3] == b->ne[3];
}

/* b broadcasts over a: same ne[0], and b's ne[1..3] divide a's. */
static inline int lbu_broadcasts(const loom_tensor_view *a, const loom_tensor_view *b) {
    if (a->ne[0] != b->ne[0]) return 0;
    for (int d = 1; d < LOOM_MAX_DIMS; d++)
        if (b->ne[d] <= 0 || a->ne[d] % b->ne[d] != 0) return 0;
    return 1;
}

#define LBU_SHAPE "[%lld,%lld,%lld,%lld]"
#define LBU_NE(v) (long long)(v)->ne[0], (long long)(v)->ne[1], (long long)(v)->ne[2], (long long)(v)->ne[3]

/*
 * Check the operand count, types and shapes of an op against the rules in docs/ops.md (the
 * semantics every backend implements). Returns 1 when valid; else 0 with a message in `err`.
 * This does not say whether a given backend supports the combination.
 */
static inline int lbu_op_check(const loom_op_params *p, const loom_tensor_view *dst, const loom_tensor_view *const *src,
                               uint32_t n_src, char *err, size_t err_size) {
    uint32_t lo, hi;
    const char *name = lbu_op_name(p ? p->op : 0);
    if (!p || !dst) return lbu_fail(err, err_size, "missing op parameters or destination");
    if (!lbu_op_arity(p->op, &lo, &hi)) return lbu_fail(err, err_size, "unknown op %u", p->op);
    if (n_src < lo || n_src > hi)
        return lbu_fail(err, err_size, "%s takes %u to %u sources, got %u", name, lo, hi, n_src);
    for (uint32_t i = 0; i < n_src; i++)
        if (!src[i]) return lbu_fail(err, err_size, "%s: source %u is missing", name, i);
    const loom_tensor_view *all[LOOM_MAX_SRC + 1];
    all[0] = dst;
    for (uint32_t i = 0; i < n_src; i++)
        all[i + 1] = src[i];
    for (uint32_t i = 0; i <= n_src; i++) {
        const loom_tensor_view *v = all[i];
        int64_t bs = lbu_type_block_size(v->type);
        if (bs == 0) return lbu_fail(err, err_size, "%s: operand %u has unknown type %u", name, i, v->type);
        for (int d = 0; d < LOOM_MAX_DIMS; d++) {
            if (v->ne[d] <= 0) return lbu_fail(err, err_size, "%s: operand %u has an empty dimension", name, i);
            if (v->nb[d] < 0) return lbu_fail(err, err_size, "%s: operand %u has a negative stride", name, i);
        }
        if (v->ne[0] % bs != 0)
            return lbu_fail(err, err_size, "%s: operand %u: ne[0]=%lld is not a multiple of the %s block size", name, i,
                            (long long)v->ne[0], lbu_type_name(v->type));
    }
    const loom_tensor_view *a = src[0];
    const loom_tensor_view *b = n_src > 1 ? src[1] : NULL;
    const loom_tensor_view *c = n_src > 2 ? src[2] : NULL;
    int dst_f32 = dst->type == LOOM_TYPE_F32;
    switch (p->op) {
    case LOOM_OP_GET_ROWS:
        if (!lbu_is_weight_type(a->type))
            return lbu_fail(err, err_size, "get_rows: table type %s", lbu_type_name(a->type));
        if (b->type != LOOM_TYPE_I32) return lbu_fail(err, err_size, "get_rows: ids must be i32");
        if (!dst_f32) return lbu_fail(err, err_size, "get_rows: destination must be f32");
        if (a->ne[2] != 1 || a->ne[3] != 1) return lbu_fail(err, err_size, "get_rows: the table must be 2-D");
        if (b->ne[3] != 1) return lbu_fail(err, err_size, "get_rows: ids must have at most 3 dimensions");
        if (dst->ne[0] != a->ne[0] || dst->ne[1] != b->ne[0] || dst->ne[2] != b->ne[1] || dst->ne[3] != b->ne[2])
            return lbu_fail(err, err_size, "get_rows: destination " LBU_SHAPE " must be [%lld,%lld,%lld,%lld]",
                            LBU_NE(dst), (long long)a->ne[0], (long long)b->ne[0], (long long)b->ne[1],
                            (long long)b->ne[2]);
        return 1;
    case LOOM_OP_RMS_NORM:
    case LOOM_OP_LAYER_NORM:
        if (a->type != LOOM_TYPE_F32 || !dst_f32) return lbu_fail(err, err_size, "%s: x and dst must be f32", name);
        if (!lbu_same_shape(a, dst)) return lbu_fail(err, err_size, "%s: dst shape differs from src0", name);
        for (uint32_t i = 1; i < n_src; i++) {
            if (!lbu_is_float_type(src[i]->type))
                return lbu_fail(err, err_size, "%s: gain/bias must be f32, f16 or bf16", name);
            if (!lbu_broadcasts(a, src[i]))
                return lbu_fail(err, err_size, "%s: src%u " LBU_SHAPE " does not broadcast to " LBU_SHAPE, name, i,
                                LBU_NE(src[i]), LBU_NE(a));
        }
        return 1;
    case LOOM_OP_ADD:
    case LOOM_OP_MUL:
        if (a->type != LOOM_TYPE_F32 || !dst_f32) return lbu_fail(err, err_size, "%s: src0 and dst must be f32", name);
        if (!lbu_is_float_type(b->type)) return lbu_fail(err, err_size, "%s: src1 must be f32, f16 or bf16", name);
        if (!lbu_same_shape(a, dst)) return lbu_fail(err, err_size, "%s: dst shape differs from src0", name);
        if (!lbu_broadcasts(a, b))
            return lbu_fail(err, err_size, "%s: src1 " LBU_SHAPE " does not broadcast to src0 " LBU_SHAPE, name,
                            LBU_NE(b), LBU_NE(a));
        return 1;
    case LOOM_OP_SCALE:
    case LOOM_OP_SILU:
    case LOOM_OP_GELU:
    case LOOM_OP_HADAMARD:
        if (a->type != LOOM_TYPE_F32 || !dst_f32) return lbu_fail(err, err_size, "%s: src0 and dst must be f32", name);
        if (!lbu_same_shape(a, dst)) return lbu_fail(err, err_size, "%s: dst shape differs from src0", name);
        if (p->op == LOOM_OP_HADAMARD) {
            int64_t g = p->i[0] ? p->i[0] : a->ne[0];
            if (g <= 0 || (g & (g - 1)) != 0 || a->ne[0] % g != 0)
                return lbu_fail(err, err_size, "hadamard: group %lld must be a power of two dividing ne[0]=%lld",
                                (long long)g, (long long)a->ne[0]);
        }
        return 1;
    case LOOM_OP_SWIGLU:
        if (a->type != LOOM_TYPE_F32 || b->type != LOOM_TYPE_F32 || !dst_f32)
            return lbu_fail(err, err_size, "swiglu: operands must be f32");
        if (!lbu_same_shape(a, dst) || !lbu_same_shape(a, b)) return lbu_fail(err, err_size, "swiglu: shapes differ");
        return 1;
    case LOOM_OP_MATMUL:
        if (a->type != LOOM_TYPE_F32 || !dst_f32) return lbu_fail(err, err_size, "matmul: src0 and dst must be f32");
        if (!lbu_is_weight_type(b->type))
            return lbu_fail(err, err_size, "matmul: weight type %s", lbu_type_name(b->type));
        if (a->ne[0] != b->ne[0])
            return lbu_fail(err, err_size, "matmul: inner sizes differ (src0 ne[0]=%lld, src1 ne[0]=%lld)",
                            (long long)a->ne[0], (long long)b->ne[0]);
        if (a->ne[2] % b->ne[2] != 0 || a->ne[3] % b->ne[3] != 0)
            return lbu_fail(err, err_size, "matmul: src1 dims 2,3 " LBU_SHAPE " do not broadcast to src0 " LBU_SHAPE,
                            LBU_NE(b), LBU_NE(a));
        if (dst->ne[0] != b->ne[1] || dst->ne[1] != a->ne[1] || dst->ne[2] != a->ne[2] || dst->ne[3] != a->ne[3])
            return lbu_fail(err, err_size, "matmul: destination " LBU_SHAPE " must be [%lld,%lld,%lld,%lld]",
                            LBU_NE(dst), (long long)b->ne[1], (long long)a->ne[1], (long long)a->ne[2],
                            (long long)a->ne[3]);
        return 1;
    case LOOM_OP_ROPE: {
        if (a->type != LOOM_TYPE_F32 || !dst_f32) return lbu_fail(err, err_size, "rope: src0 and dst must be f32");
        if (b->type != LOOM_TYPE_I32) return lbu_fail(err, err_size, "rope: positions must be i32");
        if (!lbu_same_shape(a, dst)) return lbu_fail(err, err_size, "rope: dst shape differs from src0");
        if (b->ne[0] != a->ne[2] || b->ne[1] * b->ne[2] * b->ne[3] != 1)
            return lbu_fail(err, err_size, "rope: %lld positions for %lld tokens", (long long)lbu_view_nelements(b),
                            (long long)a->ne[2]);
        int64_t n_rot = p->i[1] ? p->i[1] : a->ne[0];
        if (p->i[0] != 0 && p->i[0] != 1) return lbu_fail(err, err_size, "rope: unknown mode %d", p->i[0]);
        if (n_rot <= 0 || n_rot > a->ne[0] || n_rot % 2 != 0)
            return lbu_fail(err, err_size, "rope: rotated dims %lld must be even and at most head_dim %lld",
                            (long long)n_rot, (long long)a->ne[0]);
        if (!(p->f[0] > 0.0f)) return lbu_fail(err, err_size, "rope: frequency base must be positive");
        return 1;
    }
    case LOOM_OP_SOFTMAX:
        if (a->type != LOOM_TYPE_F32 || !dst_f32) return lbu_fail(err, err_size, "softmax: src0 and dst must be f32");
        if (!lbu_same_shape(a, dst)) return lbu_fail(err, err_size, "softmax: dst shape differs from src0");
        if (b) {
            if (!lbu_is_float_type(b->type)) return lbu_fail(err, err_size, "softmax: mask must be f32, f16 or bf16");
            if (!lbu_broadcasts(a, b))
                return lbu_fail(err, err_size, "softmax: mask " LBU_SHAPE " does not broadcast to " LBU_SHAPE,
                                LBU_NE(b), LBU_NE(a));
        }
        if (p->i[0] != 0 && p->i[0] != 1) return lbu_fail(err, err_size, "softmax: i[0] must be 0 or 1");
        return 1;
    case LOOM_OP_ATTENTION:
        if (a->type != LOOM_TYPE_F32 || !dst_f32) return lbu_fail(err, err_size, "attention: q and dst must be f32");
        if ((b->type != LOOM_TYPE_F32 && b->type != LOOM_TYPE_F16) ||
            (c->type != LOOM_TYPE_F32 && c->type != LOOM_TYPE_F16))
            return lbu_fail(err, err_size, "attention: K and V must be f32 or f16");
        if (!lbu_same_shape(a, dst)) return lbu_fail(err, err_size, "attention: dst shape differs from q");
        if (!lbu_same_shape(b, c)) return lbu_fail(err, err_size, "attention: K and V shapes differ");
        if (b->ne[0] != a->ne[0]) return lbu_fail(err, err_size, "attention: head sizes of q and K differ");
        if (a->ne[3] != 1 || b->ne[3] != 1) return lbu_fail(err, err_size, "attention: operands must be 3-D");
        if (a->ne[1] % b->ne[1] != 0)
            return lbu_fail(err, err_size, "attention: %lld query heads not a multiple of %lld KV heads",
                            (long long)a->ne[1], (long long)b->ne[1]);
        if (p->i[0] < 0) return lbu_fail(err, err_size, "attention: negative first position");
        if ((int64_t)p->i[0] + a->ne[2] > b->ne[2])
            return lbu_fail(err, err_size, "attention: queries reach key %lld but only %lld keys are given",
                            (long long)p->i[0] + (long long)a->ne[2] - 1, (long long)b->ne[2]);
        return 1;
    case LOOM_OP_COPY:
        if (!lbu_is_float_type(a->type) && a->type != LOOM_TYPE_I32)
            return lbu_fail(err, err_size, "copy: source type %s", lbu_type_name(a->type));
        if (!lbu_is_float_type(dst->type) && dst->type != LOOM_TYPE_I32)
            return lbu_fail(err, err_size, "copy: destination type %s", lbu_type_name(dst->type));
        if ((a->type == LOOM_TYPE_I32) != (dst->type == LOOM_TYPE_I32))
            return lbu_fail(err, err_size, "copy: i32 copies only to i32");
        if (lbu_view_nelements(a) != lbu_view_nelements(dst))
            return lbu_fail(err, err_size, "copy: %lld elements into %lld", (long long)lbu_view_nelements(a),
                            (long long)lbu_view_nelements(dst));
        return 1;
    case LOOM_OP_WEIGHTED_SUM:
        if (a->type != LOOM_TYPE_F32 || b->type != LOOM_TYPE_F32 || !dst_f32)
            return lbu_fail(err, err_size, "weighted_sum: operands must be f32");
        if (a->ne[3] != 1) return lbu_fail(err, err_size, "weighted_sum: src0 must be 3-D");
        if (lbu_view_nelements(b) != a->ne[2])
            return lbu_fail(err, err_size, "weighted_sum: %lld weights for %lld states",
                            (long long)lbu_view_nelements(b), (long long)a->ne[2]);
        if (dst->ne[0] != a->ne[0] || dst->ne[1] != a->ne[1] || dst->ne[2] != 1 || dst->ne[3] != 1)
            return lbu_fail(err, err_size, "weighted_sum: destination " LBU_SHAPE " must be [%lld,%lld,1,1]",
                            LBU_NE(dst), (long long)a->ne[0], (long long)a->ne[1]);
        return 1;
    case LOOM_OP_GROUPED_SOFTMAX:
        if (a->type != LOOM_TYPE_F32 || !dst_f32)
            return lbu_fail(err, err_size, "grouped_softmax: src0 and dst must be f32");
        if (b->type != LOOM_TYPE_I32) return lbu_fail(err, err_size, "grouped_softmax: landmark flags must be i32");
        if (!lbu_same_shape(a, dst)) return lbu_fail(err, err_size, "grouped_softmax: dst shape differs from src0");
        if (!lbu_broadcasts(a, b))
            return lbu_fail(err, err_size, "grouped_softmax: flags " LBU_SHAPE " do not broadcast to " LBU_SHAPE,
                            LBU_NE(b), LBU_NE(a));
        if (p->i[0] != 0 && p->i[0] != 1) return lbu_fail(err, err_size, "grouped_softmax: i[0] must be 0 or 1");
        return 1;
    default: return lbu_fail(err, err_size, "unknown op %u", p->op);
    }
}

#endif /* LOOM_BACKEND_UTIL_H */

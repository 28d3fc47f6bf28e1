/*
 * quants.c - data-type traits, fp16/bf16 conversion and the reference (scalar, exact)
 * dequantisation and quantisation routines of every block type Loom stores.
 *
 * These are the reference implementations other kernels are tested against: plain C, one
 * element at a time, following the value formulas in ../shared/docs/formats.md. The quantisers
 * follow llama.cpp's published reference rounding rules (so files written by Loom match files
 * written by llama.cpp's reference quantiser bit for bit); the code is our own.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ============================================================================================ */
/* Type traits                                                                                  */
/* ============================================================================================ */

static const loom_type_traits type_traits[LOOM_TYPE_COUNT] = {
    [LOOM_TYPE_F32] = {"f32", 1, 4, false},
    [LOOM_TYPE_F16] = {"f16", 1, 2, false},
    [LOOM_TYPE_BF16] = {"bf16", 1, 2, false},
    [LOOM_TYPE_Q8_0] = {"q8_0", 32, 34, true},
    [LOOM_TYPE_Q4_0] = {"q4_0", 32, 18, true},
    [LOOM_TYPE_Q4_1] = {"q4_1", 32, 20, true},
    [LOOM_TYPE_Q4_K] = {"q4_k", 256, 144, true},
    [LOOM_TYPE_Q6_K] = {"q6_k", 256, 210, true},
    [LOOM_TYPE_I8] = {"i8", 1, 1, false},
    [LOOM_TYPE_I16] = {"i16", 1, 2, false},
    [LOOM_TYPE_I32] = {"i32", 1, 4, false},
    [LOOM_TYPE_I64] = {"i64", 1, 8, false},
    [LOOM_TYPE_F64] = {"f64", 1, 8, false},
    [LOOM_TYPE_U8] = {"u8", 1, 1, false},
    [LOOM_TYPE_I4X2] = {"i4x2", 2, 1, true},
};

const loom_type_traits *loom_type_get_traits(uint32_t type) {
    if (type >= LOOM_TYPE_COUNT || !type_traits[type].name) return NULL;
    return &type_traits[type];
}

const char *loom_type_name(uint32_t type) {
    const loom_type_traits *t = loom_type_get_traits(type);
    return t ? t->name : "unknown";
}

uint64_t loom_type_row_bytes(uint32_t type, int64_t n) {
    const loom_type_traits *t = loom_type_get_traits(type);
    if (!t || n < 0 || n % t->block_size) return 0;
    uint64_t blocks = (uint64_t)n / t->block_size;
    if (blocks > UINT64_MAX / t->block_bytes) return 0;
    return blocks * t->block_bytes;
}

/* ============================================================================================ */
/* Half precision and bfloat16                                                                  */
/* ============================================================================================ */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float loom_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: man * 2^-24, exact in fp32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t loom_fp32_to_fp16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t man = u & 0x7fffffu;
    if (exp == 0xff) { /* inf or nan (nan stays quiet nan, keeping the top payload bits) */
        if (man == 0) return (uint16_t)(sign | 0x7c00u);
        return (uint16_t)(sign | 0x7e00u | (man >> 13));
    }
    int32_t e = (int32_t)exp - 127 + 15; /* biased half exponent */
    if (e >= 31) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
    if (e <= 0) {
        /* subnormal half (or zero): value = m * 2^-24 with m = full_mantissa >> (14 - e) */
        if (e < -10) return sign; /* below half the smallest subnormal: rounds to zero */
        uint32_t full = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e); /* 14..24 */
        uint32_t q = full >> shift;
        uint32_t rem = full & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q); /* q may carry into the exponent field: correct */
    }
    uint32_t q = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++; /* may carry up to inf: correct */
    return (uint16_t)(sign | q);
}

float loom_bf16_to_fp32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t loom_fp32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet nan */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* ============================================================================================ */
/* Dequantisation                                                                               */
/* ============================================================================================ */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static void deq_q8_0(const uint8_t *b, float *y) {
    const float d = loom_fp16_to_fp32(rd16(b));
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void deq_q4_0(const uint8_t *b, float *y) {
    const float d = loom_fp16_to_fp32(rd16(b));
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((qs[j] & 0x0f) - 8) * d;
        y[j + 16] = (float)((qs[j] >> 4) - 8) * d;
    }
}

static void deq_q4_1(const uint8_t *b, float *y) {
    const float d = loom_fp16_to_fp32(rd16(b));
    const float m = loom_fp16_to_fp32(rd16(b + 2));
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(qs[j] & 0x0f) * d + m;
        y[j + 16] = (float)(qs[j] >> 4) * d + m;
    }
}

/* Sub-block j (0..7) of a Q4_K block: 6-bit scale and min packed in 12 bytes. */
static void q4k_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

static void deq_q4_k(const uint8_t *b, float *y) {
    const float d = loom_fp16_to_fp32(rd16(b));
    const float dmin = loom_fp16_to_fp32(rd16(b + 2));
    const uint8_t *scales = b + 4;
    const uint8_t *q = b + 16;
    for (int g = 0; g < 4; g++) { /* 4 groups of 64 weights = 32 bytes of nibbles */
        uint8_t sc, m;
        q4k_scale_min(2 * g, scales, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        q4k_scale_min(2 * g + 1, scales, &sc, &m);
        const float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 0x0f) - m1;
        for (int l = 0; l < 32; l++) y[32 + l] = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
        y += 64;
    }
}

static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b;
    const uint8_t *qh = b + 128;
    const int8_t *sc = (const int8_t *)(const void *)(b + 192);
    const float d = loom_fp16_to_fp32(rd16(b + 208));
    for (int half = 0; half < 2; half++) { /* 128 weights each */
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = (int)((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

loom_status loom_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const loom_type_traits *t = loom_type_get_traits(type);
    if (!t || (!src && n) || (!dst && n) || n < 0) return LOOM_ERR_INVALID_ARGUMENT;
    if (n % t->block_size) return LOOM_ERR_INVALID_ARGUMENT;
    const uint8_t *s = src;
    const int64_t nb = n / t->block_size;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = loom_fp16_to_fp32(rd16(s + 2 * i));
        break;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = loom_bf16_to_fp32(rd16(s + 2 * i));
        break;
    case LOOM_TYPE_Q8_0:
        for (int64_t i = 0; i < nb; i++) deq_q8_0(s + i * 34, dst + i * 32);
        break;
    case LOOM_TYPE_Q4_0:
        for (int64_t i = 0; i < nb; i++) deq_q4_0(s + i * 18, dst + i * 32);
        break;
    case LOOM_TYPE_Q4_1:
        for (int64_t i = 0; i < nb; i++) deq_q4_1(s + i * 20, dst + i * 32);
        break;
    case LOOM_TYPE_Q4_K:
        for (int64_t i = 0; i < nb; i++) deq_q4_k(s + i * 144, dst + i * 256);
        break;
    case LOOM_TYPE_Q6_K:
        for (int64_t i = 0; i < nb; i++) deq_q6_k(s + i * 210, dst + i * 256);
        break;
    case LOOM_TYPE_I8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(int8_t)s[i];
        break;
    case LOOM_TYPE_U8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        break;
    case LOOM_TYPE_I16:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(int16_t)rd16(s + 2 * i);
        break;
    case LOOM_TYPE_I32:
        for (int64_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, s + 4 * i, 4);
            dst[i] = (float)v;
        }
        break;
    case LOOM_TYPE_I64:
        for (int64_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        break;
    case LOOM_TYPE_F64:
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        break;
    case LOOM_TYPE_I4X2:
        for (int64_t i = 0; i < nb; i++) {
            /* sign-extend each nibble: low nibble first */
            dst[2 * i] = (float)(((int)(s[i] & 0x0f) ^ 8) - 8);
            dst[2 * i + 1] = (float)(((int)(s[i] >> 4) ^ 8) - 8);
        }
        break;
    default: return LOOM_ERR_UNSUPPORTED;
    }
    return LOOM_OK;
}

/* ============================================================================================ */
/* Quantisation (llama.cpp's reference rounding rules)                                          */
/* ============================================================================================ */

/* Truncating float -> int conversion clamped to [lo, hi] first (no undefined behaviour when a
 * subnormal scale makes the inverse scale infinite; identical results otherwise). */
static int clamp_trunc(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo; /* also nan */
    if (v >= (float)hi) return hi;
    return (int)v;
}

static void q_q8_0(const float *x, uint8_t *b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr16(b, loom_fp32_to_fp16(d));
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)clamp_trunc(roundf(x[j] * id), -127, 127);
}

static void q_q4_0(const float *x, uint8_t *b) {
    float amax = 0.0f, max = 0.0f; /* max: the value of largest magnitude, with its sign */
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr16(b, loom_fp32_to_fp16(d));
    for (int j = 0; j < 16; j++) {
        const int q0 = clamp_trunc(x[j] * id + 8.5f, 0, 15);
        const int q1 = clamp_trunc(x[j + 16] * id + 8.5f, 0, 15);
        b[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

static void q_q4_1(const float *x, uint8_t *b) {
    float min = INFINITY, max = -INFINITY;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr16(b, loom_fp32_to_fp16(d));
    wr16(b + 2, loom_fp32_to_fp16(min));
    for (int j = 0; j < 16; j++) {
        const int q0 = clamp_trunc((x[j] - min) * id + 0.5f, 0, 15);
        const int q1 = clamp_trunc((x[j + 16] - min) * id + 0.5f, 0, 15);
        b[4 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

loom_status loom_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    const loom_type_traits *t = loom_type_get_traits(type);
    if (!t || (!src && n) || (!dst && n) || n < 0) return LOOM_ERR_INVALID_ARGUMENT;
    if (n % t->block_size) return LOOM_ERR_INVALID_ARGUMENT;
    uint8_t *d = dst;
    const int64_t nb = n / t->block_size;
    for (int64_t i = 0; i < n && t->quantized; i++) {
        if (!isfinite(src[i])) return LOOM_ERR_INVALID_ARGUMENT; /* no scale for inf/nan */
    }
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++) wr16(d + 2 * i, loom_fp32_to_fp16(src[i]));
        break;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) wr16(d + 2 * i, loom_fp32_to_bf16(src[i]));
        break;
    case LOOM_TYPE_Q8_0:
        for (int64_t i = 0; i < nb; i++) q_q8_0(src + i * 32, d + i * 34);
        break;
    case LOOM_TYPE_Q4_0:
        for (int64_t i = 0; i < nb; i++) q_q4_0(src + i * 32, d + i * 18);
        break;
    case LOOM_TYPE_Q4_1:
        for (int64_t i = 0; i < nb; i++) q_q4_1(src + i * 32, d + i * 20);
        break;
    default: return LOOM_ERR_UNSUPPORTED;
    }
    return LOOM_OK;
}

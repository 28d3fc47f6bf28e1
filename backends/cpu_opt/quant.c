/*
 * quant.c - half-precision helpers, block types (sizes, row conversions) and the portable
 * activation quantizer (int8 per block of 32, as llama.cpp's q8_0 but with per-block sums).
 */
#include "cpu_opt.h"

#include <math.h>

float co_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t co_fp32_to_fp16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u); /* NaN */
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow (rounds to inf) */
    if (abs < 0x38800000u) {                                   /* subnormal or zero in fp16 */
        if (abs < 0x33000000u) return (uint16_t)sign;          /* below half the smallest subnormal */
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14 + (112 - e) ... gives the subnormal mantissa */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = abs - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t low = r & 0x1fffu;
    r >>= 13;
    if (low > 0x1000u || (low == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

uint16_t co_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

uint32_t co_type_block_size(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32: case LOOM_TYPE_F16: case LOOM_TYPE_BF16: case LOOM_TYPE_I8: case LOOM_TYPE_I16:
    case LOOM_TYPE_I32: case LOOM_TYPE_I64: case LOOM_TYPE_F64: case LOOM_TYPE_U8: return 1;
    case LOOM_TYPE_Q8_0: case LOOM_TYPE_Q4_0: case LOOM_TYPE_Q4_1: return 32;
    case LOOM_TYPE_Q4_K: case LOOM_TYPE_Q6_K: return 256;
    case LOOM_TYPE_I4X2: return 2;
    default: return 0;
    }
}

uint32_t co_type_block_bytes(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32: return 4;
    case LOOM_TYPE_F16: case LOOM_TYPE_BF16: case LOOM_TYPE_I16: return 2;
    case LOOM_TYPE_I8: case LOOM_TYPE_U8: case LOOM_TYPE_I4X2: return 1;
    case LOOM_TYPE_I32: return 4;
    case LOOM_TYPE_I64: case LOOM_TYPE_F64: return 8;
    case LOOM_TYPE_Q8_0: return 34;
    case LOOM_TYPE_Q4_0: return 18;
    case LOOM_TYPE_Q4_1: return 20;
    case LOOM_TYPE_Q4_K: return 144;
    case LOOM_TYPE_Q6_K: return 210;
    default: return 0;
    }
}

uint64_t co_type_row_bytes(uint32_t type, int64_t n) {
    uint32_t bs = co_type_block_size(type);
    if (!bs || n < 0 || n % bs) return 0;
    return (uint64_t)(n / bs) * co_type_block_bytes(type);
}

size_t co_type_size(uint32_t type) { return co_type_block_size(type) == 1 ? co_type_block_bytes(type) : 0; }

int co_type_dequant_ok(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32: case LOOM_TYPE_F16: case LOOM_TYPE_BF16: case LOOM_TYPE_Q8_0: case LOOM_TYPE_Q4_0:
    case LOOM_TYPE_Q4_1: case LOOM_TYPE_Q4_K: case LOOM_TYPE_Q6_K: return 1;
    default: return 0;
    }
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static void q4k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

void co_dequant_row(uint32_t type, const void *src, float *dst, int64_t n) {
    const uint8_t *s = src;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = co_fp16_to_fp32(rd16(s + 2 * i));
        break;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = co_bf16_to_fp32(rd16(s + 2 * i));
        break;
    case LOOM_TYPE_Q8_0:
        for (int64_t b = 0; b < n / 32; b++, s += 34) {
            float d = co_fp16_to_fp32(rd16(s));
            for (int i = 0; i < 32; i++) dst[b * 32 + i] = (float)(int8_t)s[2 + i] * d;
        }
        break;
    case LOOM_TYPE_Q4_0:
        for (int64_t b = 0; b < n / 32; b++, s += 18) {
            float d = co_fp16_to_fp32(rd16(s));
            for (int i = 0; i < 16; i++) {
                dst[b * 32 + i] = (float)((s[2 + i] & 0xf) - 8) * d;
                dst[b * 32 + 16 + i] = (float)((s[2 + i] >> 4) - 8) * d;
            }
        }
        break;
    case LOOM_TYPE_Q4_1:
        for (int64_t b = 0; b < n / 32; b++, s += 20) {
            float d = co_fp16_to_fp32(rd16(s)), m = co_fp16_to_fp32(rd16(s + 2));
            for (int i = 0; i < 16; i++) {
                dst[b * 32 + i] = (float)(s[4 + i] & 0xf) * d + m;
                dst[b * 32 + 16 + i] = (float)(s[4 + i] >> 4) * d + m;
            }
        }
        break;
    case LOOM_TYPE_Q4_K:
        for (int64_t b = 0; b < n / 256; b++, s += 144) {
            float d = co_fp16_to_fp32(rd16(s)), dmin = co_fp16_to_fp32(rd16(s + 2));
            const uint8_t *sc = s + 4, *q = s + 16;
            float *y = dst + b * 256;
            for (int j = 0; j < 8; j += 2) {
                int sc0, m0, sc1, m1;
                q4k_scale_min(j, sc, &sc0, &m0);
                q4k_scale_min(j + 1, sc, &sc1, &m1);
                float d0 = d * (float)sc0, mm0 = dmin * (float)m0, d1 = d * (float)sc1, mm1 = dmin * (float)m1;
                for (int i = 0; i < 32; i++) {
                    y[j * 32 + i] = d0 * (float)(q[i] & 0xf) - mm0;
                    y[(j + 1) * 32 + i] = d1 * (float)(q[i] >> 4) - mm1;
                }
                q += 32;
            }
        }
        break;
    case LOOM_TYPE_Q6_K:
        for (int64_t b = 0; b < n / 256; b++, s += 210) {
            const uint8_t *ql = s, *qh = s + 128;
            const int8_t *sc = (const int8_t *)(s + 192);
            float d = co_fp16_to_fp32(rd16(s + 208));
            float *y = dst + b * 256;
            for (int h = 0; h < 2; h++) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = (int)((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (int)((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
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
        break;
    default: break;
    }
}

int co_quant_row_ok(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F32: case LOOM_TYPE_F16: case LOOM_TYPE_BF16: case LOOM_TYPE_Q8_0: case LOOM_TYPE_Q4_0:
    case LOOM_TYPE_Q4_1: return 1;
    default: return 0;
    }
}

static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void co_quant_row(uint32_t type, const float *x, void *dst, int64_t n) {
    uint8_t *o = dst;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, x, (size_t)n * 4); break;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++) wr16(o + 2 * i, co_fp32_to_fp16(x[i]));
        break;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) wr16(o + 2 * i, co_fp32_to_bf16(x[i]));
        break;
    case LOOM_TYPE_Q8_0:
        for (int64_t b = 0; b < n / 32; b++, o += 34) {
            const float *v = x + b * 32;
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[i]));
            float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            wr16(o, co_fp32_to_fp16(d));
            for (int i = 0; i < 32; i++) o[2 + i] = (uint8_t)(int8_t)lrintf(v[i] * id);
        }
        break;
    case LOOM_TYPE_Q4_0:
        for (int64_t b = 0; b < n / 32; b++, o += 18) {
            const float *v = x + b * 32;
            float amax = 0, mx = 0;
            for (int i = 0; i < 32; i++)
                if (fabsf(v[i]) > amax) {
                    amax = fabsf(v[i]);
                    mx = v[i];
                }
            float d = mx / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            wr16(o, co_fp32_to_fp16(d));
            for (int i = 0; i < 16; i++) {
                int a = (int)(v[i] * id + 8.5f), c = (int)(v[16 + i] * id + 8.5f);
                a = a < 0 ? 0 : a > 15 ? 15 : a;
                c = c < 0 ? 0 : c > 15 ? 15 : c;
                o[2 + i] = (uint8_t)(a | (c << 4));
            }
        }
        break;
    case LOOM_TYPE_Q4_1:
        for (int64_t b = 0; b < n / 32; b++, o += 20) {
            const float *v = x + b * 32;
            float mn = v[0], mx = v[0];
            for (int i = 1; i < 32; i++) {
                mn = fminf(mn, v[i]);
                mx = fmaxf(mx, v[i]);
            }
            float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            wr16(o, co_fp32_to_fp16(d));
            wr16(o + 2, co_fp32_to_fp16(mn));
            for (int i = 0; i < 16; i++) {
                int a = (int)((v[i] - mn) * id + 0.5f), c = (int)((v[16 + i] - mn) * id + 0.5f);
                a = a > 15 ? 15 : a;
                c = c > 15 ? 15 : c;
                o[4 + i] = (uint8_t)(a | (c << 4));
            }
        }
        break;
    default: break;
    }
}

void co_quant_act_scalar(const float *x, uint8_t *row, int64_t K) {
    int8_t *q = (int8_t *)row;
    co_qmeta *m = (co_qmeta *)(void *)(row + K);
    for (int64_t b = 0; b < K / CO_QK; b++) {
        const float *v = x + b * CO_QK;
        float amax = 0;
        for (int i = 0; i < CO_QK; i++) amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < CO_QK; i++) {
            int32_t qi = (int32_t)lrintf(v[i] * id);
            q[b * CO_QK + i] = (int8_t)qi;
            sum += qi;
        }
        m[b].d = co_fp16_round(d);
        m[b].ds = co_fp16_round(d * (float)sum);
        m[b].n8 = -8 * sum;
        m[b].n128 = -128 * sum;
    }
}

void co_f16_to_f32_row(const uint16_t *src, float *dst, int64_t n) {
#if CO_X86_KERNELS
    if (co_isa_detect()->best >= CO_ISA_AVX2) {
        co_f16_to_f32_row_f16c(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = co_fp16_to_fp32(src[i]);
}

void co_f32_to_f16_row(const float *src, uint16_t *dst, int64_t n) {
#if CO_X86_KERNELS
    if (co_isa_detect()->best >= CO_ISA_AVX2) {
        co_f32_to_f16_row_f16c(src, dst, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) dst[i] = co_fp32_to_fp16(src[i]);
}

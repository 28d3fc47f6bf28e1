/*
 * dnnl_convert.c - data conversions of the oneDNN backend: decoding weight blocks to f32 (from
 * the GGUF block layouts), bf16 rounding, and symmetric per-row int8 quantization.
 */
#include "dnnl_internal.h"

#include <math.h>
#include <string.h>

void odnn_type_size(uint32_t type, int64_t *block, int64_t *bytes)
{
    *block = 1;
    switch (type) {
    case LOOM_TYPE_F32: *bytes = 4; break;
    case LOOM_TYPE_F16:
    case LOOM_TYPE_BF16: *bytes = 2; break;
    case LOOM_TYPE_Q8_0: *block = 32; *bytes = 34; break;
    case LOOM_TYPE_Q4_0: *block = 32; *bytes = 18; break;
    case LOOM_TYPE_Q4_1: *block = 32; *bytes = 20; break;
    default: *bytes = 0; break;
    }
}

static float fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    float f;
    if (exp == 0) {
        f = (float)mant * (1.0f / 16777216.0f); /* subnormal: mant * 2^-24 */
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (mant << 13);
    else
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t rd16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

void odnn_decode_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    switch (type) {
    case LOOM_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); return;
    case LOOM_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            dst[i] = fp16_to_f32(rd16(p + 2 * i));
        return;
    case LOOM_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)rd16(p + 2 * i) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return;
    default: break;
    }
    for (int64_t b = 0; b < n / 32; b++) {
        float *y = dst + 32 * b;
        float d = fp16_to_f32(rd16(p));
        if (type == LOOM_TYPE_Q8_0) {
            for (int i = 0; i < 32; i++)
                y[i] = d * (float)(int8_t)p[2 + i];
            p += 34;
        } else if (type == LOOM_TYPE_Q4_0) {
            for (int j = 0; j < 16; j++) {
                y[j] = d * (float)((int)(p[2 + j] & 15) - 8);
                y[j + 16] = d * (float)((int)(p[2 + j] >> 4) - 8);
            }
            p += 18;
        } else { /* Q4_1 */
            float m = fp16_to_f32(rd16(p + 2));
            for (int j = 0; j < 16; j++) {
                y[j] = d * (float)(p[4 + j] & 15) + m;
                y[j + 16] = d * (float)(p[4 + j] >> 4) + m;
            }
            p += 20;
        }
    }
}

uint16_t odnn_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float row_amax(const float *x, int64_t n)
{
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m)
            m = a;
    }
    return m;
}

float odnn_quantize_row_s8(const float *x, int8_t *q, int64_t n, int32_t *sum)
{
    float amax = row_amax(x, n), s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    int32_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[i] = (int8_t)v;
        total += (int32_t)v;
    }
    if (sum != NULL)
        *sum = total;
    return s;
}

float odnn_quantize_row_u8(const float *x, uint8_t *q, int64_t n)
{
    float amax = row_amax(x, n), s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[i] = (uint8_t)(v + 128);
    }
    return s;
}

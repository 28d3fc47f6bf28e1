/*
 * dnnl_convert.c - data conversions of the oneDNN backend: decoding weight rows to f32 (the
 * shared backend helpers, every weight type), bf16 rounding, and symmetric per-row int8
 * quantization.
 */
#include "dnnl_internal.h"
#include "loom_backend_util.h"

#include <math.h>
#include <string.h>

void odnn_type_size(uint32_t type, int64_t *block, int64_t *bytes)
{
    *block = lbu_type_block_size(type);
    *bytes = lbu_is_weight_type(type) ? lbu_type_block_bytes(type) : 0;
}

void odnn_decode_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    lbu_to_float_row(type, src, dst, n);
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

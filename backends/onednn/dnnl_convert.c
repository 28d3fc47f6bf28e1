/*
 * dnnl_convert.c - data conversions of the oneDNN backend: decoding weight rows to f32 (the
 * shared backend helpers, every weight type), bf16 rounding, and symmetric per-row int8
 * quantization.
 */
#include "dnnl_internal.h"
#include "loom_backend_util.h"

#include <math.h>
#include <string.h>

void odnn_type_size(uint32_t type, int64_t *block, int64_t *bytes) {
    *block = lbu_type_block_size(type);
    *bytes = lbu_is_weight_type(type) ? lbu_type_block_bytes(type) : 0;
}

void odnn_decode_row(uint32_t type, const void *src, float *dst, int64_t n) { lbu_to_float_row(type, src, dst, n); }

uint16_t odnn_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float row_amax(const float *x, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m) m = a;
    }
    return m;
}

float odnn_quantize_row_s8(const float *x, int8_t *q, int64_t n, int32_t *sum) {
    float amax = row_amax(x, n), s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    int32_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[i] = (int8_t)v;
        total += (int32_t)v;
    }
    if (sum != NULL) *sum = total;
    return s;
}

float odnn_quantize_row_u8(const float *x, uint8_t *q, int64_t n) {
    float amax = row_amax(x, n), s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv);
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[i] = (uint8_t)(v + 128);
    }
    return s;
}

int odnn_blocks_s8(uint32_t type, const void *row, int64_t k, int8_t *q, float *scale, float *offset, int32_t *sums) {
    const uint8_t *p = row;
    int64_t bytes = type == LOOM_TYPE_Q8_0 ? 34 : type == LOOM_TYPE_Q4_0 ? 18 : type == LOOM_TYPE_Q4_1 ? 20 : 0;
    if (bytes == 0 || k % 32 != 0) return -1;
    for (int64_t b = 0; b < k / 32; b++, p += bytes) {
        int8_t *o = q + 32 * b;
        int32_t sum = 0;
        scale[b] = lbu_fp16_to_fp32(lbu_read_u16(p));
        /* Q4_1: d q + m = d (q - 8) + (m + 8 d): centred values keep the activations' rounding
         * errors from adding up along the row (they multiply d (q - 8), not d q). */
        offset[b] = type == LOOM_TYPE_Q4_1 ? lbu_fp16_to_fp32(lbu_read_u16(p + 2)) + 8.0f * scale[b] : 0.0f;
        for (int i = 0; i < 32; i++) {
            if (type == LOOM_TYPE_Q8_0)
                o[i] = (int8_t)p[2 + i];
            else if (type == LOOM_TYPE_Q4_0)
                o[i] = (int8_t)(((i < 16 ? p[2 + i] : p[2 + i - 16] >> 4) & 15) - 8);
            else
                o[i] = (int8_t)(((i < 16 ? p[4 + i] : p[4 + i - 16] >> 4) & 15) - 8);
            sum += o[i];
        }
        sums[b] = sum;
    }
    return 0;
}

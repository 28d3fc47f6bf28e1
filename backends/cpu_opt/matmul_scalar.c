/*
 * matmul_scalar.c - portable tile kernels (any x86-64 or other CPU). Same contracts as the
 * SIMD kernels (see cpu_opt.h), used where no vector ISA is usable and as the tests' mirror.
 */
#include "cpu_opt.h"

static float tile_f(uint32_t type, const uint8_t *tile, int64_t idx) {
    if (type == LOOM_TYPE_F32) {
        float v;
        memcpy(&v, tile + 4 * idx, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, tile + 2 * idx, 2);
    return type == LOOM_TYPE_F16 ? co_fp16_to_fp32(h) : co_bf16_to_fp32(h);
}

void co_fgemm_scalar(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K, const float *xp,
                     int T, float *dst, int64_t ldd, int nr_last) {
    for (int i = 0; i < nt; i++) {
        const uint8_t *tl = tile + (size_t)i * tile_bytes;
        int nr = i == nt - 1 ? nr_last : CO_TILE;
        for (int t = 0; t < T; t++) {
            float acc[CO_TILE] = {0};
            for (int64_t k = 0; k < K; k++) {
                float x = xp[k * T + t];
                for (int r = 0; r < CO_TILE; r++) acc[r] += tile_f(type, tl, k * CO_TILE + r) * x;
            }
            for (int r = 0; r < nr; r++) dst[t * ldd + i * CO_TILE + r] = acc[r];
        }
    }
}

void co_qgemm_scalar(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                     const uint8_t *act, size_t ars, int T, float *dst, int64_t ldd, int nr_last) {
    int64_t nblk = K / CO_QK;
    size_t qb = type == LOOM_TYPE_Q8_0 ? 512 : 256;
    for (int i = 0; i < nt; i++) {
        const uint8_t *tl = tile + (size_t)i * tile_bytes;
        const uint16_t *sd = (const uint16_t *)(const void *)(tl + nblk * qb);
        const uint16_t *sm = sd + nblk * CO_TILE;
        int nr = i == nt - 1 ? nr_last : CO_TILE;
        for (int t = 0; t < T; t++) {
            const uint8_t *xr = act + (size_t)t * ars;
            const int8_t *xq = (const int8_t *)xr;
            const co_qmeta *m = co_qact_meta(xr, K);
            for (int r = 0; r < nr; r++) {
                float acc = 0;
                for (int64_t b = 0; b < nblk; b++) {
                    const uint8_t *q = tl + b * qb;
                    const int8_t *x = xq + b * CO_QK;
                    int32_t dot = 0;
                    if (type == LOOM_TYPE_Q8_0) {
                        for (int g = 0; g < 8; g++)
                            for (int j = 0; j < 4; j++) dot += (int32_t)q[g * 64 + r * 4 + j] * x[4 * g + j];
                        dot += m[b].n128;
                    } else {
                        for (int p = 0; p < 4; p++)
                            for (int j = 0; j < 4; j++) {
                                uint8_t v = q[p * 64 + r * 4 + j];
                                dot += (int32_t)(v & 0xf) * x[4 * p + j] + (int32_t)(v >> 4) * x[16 + 4 * p + j];
                            }
                        if (type == LOOM_TYPE_Q4_0) dot += m[b].n8;
                    }
                    float dw = co_fp16_to_fp32(sd[b * CO_TILE + r]);
                    acc += dw * ((float)dot * m[b].d);
                    if (type == LOOM_TYPE_Q4_1) acc += co_fp16_to_fp32(sm[b * CO_TILE + r]) * m[b].ds;
                }
                dst[t * ldd + i * CO_TILE + r] = acc;
            }
        }
    }
}

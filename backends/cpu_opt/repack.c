/*
 * repack.c - weight tiles of 16 rows (layouts in cpu_opt.h): packing from the file layout,
 * and the way back (row extraction for get_rows, whole-tile dequantization for the exact path).
 */
#include "cpu_opt.h"

int co_tile_type_ok(uint32_t type, int64_t K) {
    if (K <= 0) return 0;
    switch (type) {
    case LOOM_TYPE_F32: case LOOM_TYPE_F16: case LOOM_TYPE_BF16: return 1;
    case LOOM_TYPE_Q8_0: case LOOM_TYPE_Q4_0: case LOOM_TYPE_Q4_1: return K % CO_QK == 0;
    default: return 0;
    }
}

size_t co_tile_bytes(uint32_t type, int64_t K) {
    size_t nblk = (size_t)(K / CO_QK), b;
    switch (type) {
    case LOOM_TYPE_F32: b = (size_t)K * 64; break;
    case LOOM_TYPE_F16: case LOOM_TYPE_BF16: b = (size_t)K * 32; break;
    case LOOM_TYPE_Q8_0: b = nblk * (512 + 32); break;
    case LOOM_TYPE_Q4_0: b = nblk * (256 + 32); break;
    case LOOM_TYPE_Q4_1: b = nblk * (256 + 64); break;
    default: return 0;
    }
    return (b + 63) & ~(size_t)63;
}

void co_tile_pack(uint32_t type, const uint8_t *src, int64_t nb1, int nr, int64_t K, uint8_t *tile) {
    if (nr < CO_TILE) memset(tile, 0, co_tile_bytes(type, K)); /* padding rows are zeros */
    int64_t nblk = K / CO_QK;
    switch (type) {
    case LOOM_TYPE_F32: {
        float *t = (float *)(void *)tile;
        /* k in runs of 64 so that the 16 source rows stay in L1 */
        for (int64_t k0 = 0; k0 < K; k0 += 64) {
            int64_t k1 = k0 + 64 < K ? k0 + 64 : K;
            for (int r = 0; r < nr; r++) {
                const uint8_t *row = src + r * nb1;
                for (int64_t k = k0; k < k1; k++) memcpy(&t[k * CO_TILE + r], row + 4 * k, 4);
            }
        }
        break;
    }
    case LOOM_TYPE_F16: case LOOM_TYPE_BF16: {
        uint16_t *t = (uint16_t *)(void *)tile;
        for (int64_t k0 = 0; k0 < K; k0 += 64) {
            int64_t k1 = k0 + 64 < K ? k0 + 64 : K;
            for (int r = 0; r < nr; r++) {
                const uint8_t *row = src + r * nb1;
                for (int64_t k = k0; k < k1; k++) memcpy(&t[k * CO_TILE + r], row + 2 * k, 2);
            }
        }
        break;
    }
    case LOOM_TYPE_Q8_0: {
        uint16_t *sc = (uint16_t *)(void *)(tile + nblk * 512);
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = src + r * nb1;
            for (int64_t b = 0; b < nblk; b++, blk += 34) {
                memcpy(&sc[b * CO_TILE + r], blk, 2);
                uint8_t *q = tile + b * 512 + r * 4;
                for (int g = 0; g < 8; g++) {
                    uint32_t v;
                    memcpy(&v, blk + 2 + 4 * g, 4);
                    v ^= 0x80808080u; /* w + 128 as unsigned bytes */
                    memcpy(q + g * 64, &v, 4);
                }
            }
        }
        break;
    }
    case LOOM_TYPE_Q4_0: case LOOM_TYPE_Q4_1: {
        int bb = type == LOOM_TYPE_Q4_0 ? 18 : 20, hdr = type == LOOM_TYPE_Q4_0 ? 2 : 4;
        uint16_t *sd = (uint16_t *)(void *)(tile + nblk * 256);
        uint16_t *sm = sd + nblk * CO_TILE;
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = src + r * nb1;
            for (int64_t b = 0; b < nblk; b++, blk += bb) {
                memcpy(&sd[b * CO_TILE + r], blk, 2);
                if (type == LOOM_TYPE_Q4_1) memcpy(&sm[b * CO_TILE + r], blk + 2, 2);
                uint8_t *q = tile + b * 256 + r * 4;
                for (int p = 0; p < 4; p++) memcpy(q + p * 64, blk + hdr + 4 * p, 4);
            }
        }
        break;
    }
    default: break;
    }
}

void co_tile_pack_f32(const float *src, int64_t ld, int nr, int64_t K, float *tile) {
    if (nr < CO_TILE) memset(tile, 0, (size_t)K * CO_TILE * sizeof(float));
    if (nr == CO_TILE) {
        /* 16 rows: walk k in short runs to keep the 16 source streams in cache. */
        for (int64_t k0 = 0; k0 < K; k0 += 16) {
            int64_t k1 = k0 + 16 < K ? k0 + 16 : K;
            for (int r = 0; r < CO_TILE; r++) {
                const float *row = src + r * ld;
                for (int64_t k = k0; k < k1; k++) tile[k * CO_TILE + r] = row[k];
            }
        }
        return;
    }
    for (int r = 0; r < nr; r++)
        for (int64_t k = 0; k < K; k++) tile[k * CO_TILE + r] = src[r * ld + k];
}

void co_tile_row_f32(uint32_t type, const uint8_t *tile, int64_t K, int r, float *dst) {
    int64_t nblk = K / CO_QK;
    switch (type) {
    case LOOM_TYPE_F32: {
        const float *t = (const float *)(const void *)tile;
        for (int64_t k = 0; k < K; k++) dst[k] = t[k * CO_TILE + r];
        break;
    }
    case LOOM_TYPE_F16: {
        const uint16_t *t = (const uint16_t *)(const void *)tile;
        for (int64_t k = 0; k < K; k++) dst[k] = co_fp16_to_fp32(t[k * CO_TILE + r]);
        break;
    }
    case LOOM_TYPE_BF16: {
        const uint16_t *t = (const uint16_t *)(const void *)tile;
        for (int64_t k = 0; k < K; k++) dst[k] = co_bf16_to_fp32(t[k * CO_TILE + r]);
        break;
    }
    case LOOM_TYPE_Q8_0: {
        const uint16_t *sc = (const uint16_t *)(const void *)(tile + nblk * 512);
        for (int64_t b = 0; b < nblk; b++) {
            float d = co_fp16_to_fp32(sc[b * CO_TILE + r]);
            const uint8_t *q = tile + b * 512;
            for (int g = 0; g < 8; g++)
                for (int i = 0; i < 4; i++) dst[b * 32 + 4 * g + i] = d * (float)((int)q[g * 64 + r * 4 + i] - 128);
        }
        break;
    }
    case LOOM_TYPE_Q4_0: case LOOM_TYPE_Q4_1: {
        const uint16_t *sd = (const uint16_t *)(const void *)(tile + nblk * 256);
        const uint16_t *sm = sd + nblk * CO_TILE;
        for (int64_t b = 0; b < nblk; b++) {
            float d = co_fp16_to_fp32(sd[b * CO_TILE + r]);
            float m = type == LOOM_TYPE_Q4_1 ? co_fp16_to_fp32(sm[b * CO_TILE + r]) : 0.0f;
            int off = type == LOOM_TYPE_Q4_0 ? 8 : 0;
            const uint8_t *q = tile + b * 256;
            for (int p = 0; p < 4; p++)
                for (int i = 0; i < 4; i++) {
                    uint8_t v = q[p * 64 + r * 4 + i];
                    dst[b * 32 + 4 * p + i] = (float)((v & 0xf) - off) * d + m;
                    dst[b * 32 + 16 + 4 * p + i] = (float)((v >> 4) - off) * d + m;
                }
        }
        break;
    }
    default: break;
    }
}

void co_tile_to_f32(uint32_t type, const uint8_t *tile, int64_t K, float *dst) {
    int64_t nblk = K / CO_QK;
    switch (type) {
    case LOOM_TYPE_Q8_0: {
        const uint16_t *sc = (const uint16_t *)(const void *)(tile + nblk * 512);
        for (int64_t b = 0; b < nblk; b++) {
            float d[CO_TILE];
            for (int r = 0; r < CO_TILE; r++) d[r] = co_fp16_to_fp32(sc[b * CO_TILE + r]);
            const uint8_t *q = tile + b * 512;
            for (int g = 0; g < 8; g++)
                for (int i = 0; i < 4; i++) {
                    float *o = dst + (b * 32 + 4 * g + i) * CO_TILE;
                    for (int r = 0; r < CO_TILE; r++) o[r] = d[r] * (float)((int)q[g * 64 + r * 4 + i] - 128);
                }
        }
        break;
    }
    case LOOM_TYPE_Q4_0: case LOOM_TYPE_Q4_1: {
        const uint16_t *sd = (const uint16_t *)(const void *)(tile + nblk * 256);
        const uint16_t *sm = sd + nblk * CO_TILE;
        for (int64_t b = 0; b < nblk; b++) {
            float d[CO_TILE], m[CO_TILE];
            for (int r = 0; r < CO_TILE; r++) {
                d[r] = co_fp16_to_fp32(sd[b * CO_TILE + r]);
                m[r] = type == LOOM_TYPE_Q4_1 ? co_fp16_to_fp32(sm[b * CO_TILE + r]) : 0.0f;
            }
            int off = type == LOOM_TYPE_Q4_0 ? 8 : 0;
            const uint8_t *q = tile + b * 256;
            for (int p = 0; p < 4; p++)
                for (int i = 0; i < 4; i++) {
                    float *lo = dst + (b * 32 + 4 * p + i) * CO_TILE;
                    float *hi = dst + (b * 32 + 16 + 4 * p + i) * CO_TILE;
                    for (int r = 0; r < CO_TILE; r++) {
                        uint8_t v = q[p * 64 + r * 4 + i];
                        lo[r] = (float)((v & 0xf) - off) * d[r] + m[r];
                        hi[r] = (float)((v >> 4) - off) * d[r] + m[r];
                    }
                }
        }
        break;
    }
    default: {
        /* Float tiles. */
        for (int r = 0; r < CO_TILE; r++) {
            for (int64_t k = 0; k < K; k++) {
                const uint16_t *t16 = (const uint16_t *)(const void *)tile;
                const float *t32 = (const float *)(const void *)tile;
                float v = type == LOOM_TYPE_F32   ? t32[k * CO_TILE + r]
                          : type == LOOM_TYPE_F16 ? co_fp16_to_fp32(t16[k * CO_TILE + r])
                                                  : co_bf16_to_fp32(t16[k * CO_TILE + r]);
                dst[k * CO_TILE + r] = v;
            }
        }
        break;
    }
    }
}

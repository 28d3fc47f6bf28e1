/*
 * matmul_avx2.c - AVX2 + FMA + F16C tile kernels (compiled with -mavx2 -mfma -mf16c; called only
 * after isa.c found them with OS support for the YMM state). A 16-row tile is two YMM halves.
 *
 * Quantized tiles use VPMADDUBSW (u8 x s8 -> s16 pairs) and VPMADDWD. Int4 weights (0..15)
 * times int8 activations cannot saturate 16 bits even summed over a whole block, so the 8
 * groups of a block are summed in 16 bits and widened once. Q8_0 weights are stored as
 * w + 128, which could saturate: they are turned back into signed bytes and multiplied with
 * the sign trick (|w| times x carrying w's sign), which needs no offset correction.
 */
#include "cpu_opt.h"

#include <immintrin.h>

#define CO_PRAGMA_UNROLL _Pragma("GCC unroll 16")
#define A2_MAX_T 6

CO_INLINE __m256 load_w8(const int type, const uint8_t *p) {
    if (type == LOOM_TYPE_F32) return _mm256_loadu_ps((const float *)(const void *)p);
    if (type == LOOM_TYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static void store8(float *d, __m256 v, int nr) {
    if (nr >= 8) {
        _mm256_storeu_ps(d, v);
    } else if (nr > 0) {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        memcpy(d, tmp, (size_t)nr * sizeof(float));
    }
}

CO_INLINE void fk2(const int type, const int T, const uint8_t *tile, int64_t K, const float *xp, int64_t xs,
                   float *dst, int64_t ldd, int nr) {
    const size_t es = type == LOOM_TYPE_F32 ? 4 : 2;
    __m256 acc[2][A2_MAX_T];
    CO_PRAGMA_UNROLL for (int h = 0; h < 2; h++) CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) acc[h][t] =
        _mm256_setzero_ps();
    const uint8_t *p = tile;
    for (int64_t k = 0; k < K; k++, p += CO_TILE * es) {
        __m256 w0 = load_w8(type, p), w1 = load_w8(type, p + 8 * es);
        const float *x = xp + k * xs;
        CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) {
            __m256 xb = _mm256_broadcast_ss(x + t);
            acc[0][t] = _mm256_fmadd_ps(w0, xb, acc[0][t]);
            acc[1][t] = _mm256_fmadd_ps(w1, xb, acc[1][t]);
        }
    }
    CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) {
        store8(dst + t * ldd, acc[0][t], nr);
        store8(dst + t * ldd + 8, acc[1][t], nr - 8);
    }
}

typedef void (*fk2_fn)(const uint8_t *, int64_t, const float *, int64_t, float *, int64_t, int);
#define FK2_INST(TY, TN, T)                                                                                        \
    static void fk2_##TN##_##T(const uint8_t *tile, int64_t K, const float *xp, int64_t xs, float *dst,            \
                               int64_t ldd, int nr) {                                                              \
        fk2(TY, T, tile, K, xp, xs, dst, ldd, nr);                                                                 \
    }
#define FK2_TYPE(TY, TN)                                                                                           \
    FK2_INST(TY, TN, 1) FK2_INST(TY, TN, 2) FK2_INST(TY, TN, 3) FK2_INST(TY, TN, 4) FK2_INST(TY, TN, 5)            \
    FK2_INST(TY, TN, 6)
FK2_TYPE(LOOM_TYPE_F32, f32)
FK2_TYPE(LOOM_TYPE_F16, f16)
FK2_TYPE(LOOM_TYPE_BF16, bf16)
#define FK2_ROW(TN) {fk2_##TN##_1, fk2_##TN##_2, fk2_##TN##_3, fk2_##TN##_4, fk2_##TN##_5, fk2_##TN##_6}
static const fk2_fn fk2_table[3][A2_MAX_T] = {FK2_ROW(f32), FK2_ROW(f16), FK2_ROW(bf16)};

void co_fgemm_avx2(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K, const float *xp,
                   int T, float *dst, int64_t ldd, int nr_last) {
    int ty = type == LOOM_TYPE_F32 ? 0 : type == LOOM_TYPE_F16 ? 1 : 2;
    for (int i = 0; i < nt; i++) {
        int nr = i == nt - 1 ? nr_last : CO_TILE;
        for (int t0 = 0; t0 < T; t0 += A2_MAX_T) {
            int tc = T - t0 < A2_MAX_T ? T - t0 : A2_MAX_T;
            fk2_table[ty][tc - 1](tile + (size_t)i * tile_bytes, K, xp + t0, T, dst + t0 * ldd + i * CO_TILE, ldd, nr);
        }
    }
}

/* ---- quantized ---- */

CO_INLINE int32_t ld32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define A2_QMAX_T 4

CO_INLINE void qk2(const int type, const int T, const uint8_t *tile, int64_t K, const uint8_t *act, size_t ars,
                   float *dst, int64_t ldd, int nr) {
    const int64_t nblk = K / CO_QK;
    const size_t qb = type == LOOM_TYPE_Q8_0 ? 512 : 256;
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1), x80 = _mm256_set1_epi8((char)0x80);
    const uint16_t *sd = (const uint16_t *)(const void *)(tile + nblk * qb);
    __m256 acc[2][A2_QMAX_T];
    CO_PRAGMA_UNROLL for (int h = 0; h < 2; h++) CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) acc[h][t] =
        _mm256_setzero_ps();
    for (int64_t b = 0; b < nblk; b++) {
        const uint8_t *q = tile + b * qb;
        CO_PRAGMA_UNROLL for (int h = 0; h < 2; h++) {
            __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(sd + b * CO_TILE + 8 * h)));
            __m256 dm = _mm256_setzero_ps();
            if (type == LOOM_TYPE_Q4_1)
                dm = _mm256_cvtph_ps(
                    _mm_loadu_si128((const __m128i *)(const void *)(sd + (nblk + b) * CO_TILE + 8 * h)));
            CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) {
                const int8_t *xq = (const int8_t *)(act + (size_t)t * ars) + b * CO_QK;
                const co_qmeta *m = co_qact_meta(act + (size_t)t * ars, K) + b;
                __m256i ia;
                if (type == LOOM_TYPE_Q8_0) {
                    ia = _mm256_setzero_si256();
                    CO_PRAGMA_UNROLL for (int g = 0; g < 8; g++) {
                        __m256i ws = _mm256_xor_si256(
                            _mm256_loadu_si256((const __m256i *)(const void *)(q + 64 * g + 32 * h)), x80);
                        __m256i xb = _mm256_set1_epi32(ld32(xq + 4 * g));
                        __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(ws), _mm256_sign_epi8(xb, ws));
                        ia = _mm256_add_epi32(ia, _mm256_madd_epi16(p16, ones));
                    }
                } else {
                    __m256i s16 = _mm256_setzero_si256();
                    CO_PRAGMA_UNROLL for (int p = 0; p < 4; p++) {
                        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(q + 64 * p + 32 * h));
                        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(lo, _mm256_set1_epi32(ld32(xq + 4 * p))));
                        s16 = _mm256_add_epi16(s16,
                                               _mm256_maddubs_epi16(hi, _mm256_set1_epi32(ld32(xq + 16 + 4 * p))));
                    }
                    ia = _mm256_madd_epi16(s16, ones);
                    if (type == LOOM_TYPE_Q4_0) ia = _mm256_add_epi32(ia, _mm256_set1_epi32(m->n8));
                }
                __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(ia), _mm256_set1_ps(m->d));
                acc[h][t] = _mm256_fmadd_ps(dw, f, acc[h][t]);
                if (type == LOOM_TYPE_Q4_1) acc[h][t] = _mm256_fmadd_ps(dm, _mm256_set1_ps(m->ds), acc[h][t]);
            }
        }
    }
    CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) {
        store8(dst + t * ldd, acc[0][t], nr);
        store8(dst + t * ldd + 8, acc[1][t], nr - 8);
    }
}

typedef void (*qk2_fn)(const uint8_t *, int64_t, const uint8_t *, size_t, float *, int64_t, int);
#define QK2_INST(TY, TN, T)                                                                                        \
    static void qk2_##TN##_##T(const uint8_t *tile, int64_t K, const uint8_t *act, size_t ars, float *dst,          \
                               int64_t ldd, int nr) {                                                              \
        qk2(TY, T, tile, K, act, ars, dst, ldd, nr);                                                               \
    }
#define QK2_TYPE(TY, TN) QK2_INST(TY, TN, 1) QK2_INST(TY, TN, 2) QK2_INST(TY, TN, 3) QK2_INST(TY, TN, 4)
QK2_TYPE(LOOM_TYPE_Q8_0, q8_0)
QK2_TYPE(LOOM_TYPE_Q4_0, q4_0)
QK2_TYPE(LOOM_TYPE_Q4_1, q4_1)
#define QK2_ROW(TN) {qk2_##TN##_1, qk2_##TN##_2, qk2_##TN##_3, qk2_##TN##_4}
static const qk2_fn qk2_table[3][A2_QMAX_T] = {QK2_ROW(q8_0), QK2_ROW(q4_0), QK2_ROW(q4_1)};

void co_qgemm_avx2(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                   const uint8_t *act, size_t ars, int T, float *dst, int64_t ldd, int nr_last) {
    int ty = type == LOOM_TYPE_Q8_0 ? 0 : type == LOOM_TYPE_Q4_0 ? 1 : 2;
    for (int i = 0; i < nt; i++) {
        int nr = i == nt - 1 ? nr_last : CO_TILE;
        for (int t0 = 0; t0 < T; t0 += A2_QMAX_T) {
            int tc = T - t0 < A2_QMAX_T ? T - t0 : A2_QMAX_T;
            qk2_table[ty][tc - 1](tile + (size_t)i * tile_bytes, K, act + (size_t)t0 * ars, ars,
                                  dst + t0 * ldd + i * CO_TILE, ldd, nr);
        }
    }
}

void co_quant_act_avx2(const float *x, uint8_t *row, int64_t K) {
    int8_t *q = (int8_t *)row;
    co_qmeta *m = (co_qmeta *)(void *)(row + K);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < K / CO_QK; b++) {
        const float *v = x + b * CO_QK;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
               v3 = _mm256_loadu_ps(v + 24);
        __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 a4 = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        a4 = _mm_max_ps(a4, _mm_movehl_ps(a4, a4));
        a4 = _mm_max_ss(a4, _mm_movehdup_ps(a4));
        float amax = _mm_cvtss_f32(a4);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid)),
                i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        int32_t sum = _mm_cvtsi128_si32(s4);
        /* pack 32 x int32 -> int8 in order */
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(void *)(q + b * CO_QK), p);
        float d = amax / 127.0f;
        /* d and d * sum rounded to fp16 (F16C: two instructions) */
        __m128 r = _mm_cvtph_ps(_mm_cvtps_ph(_mm_setr_ps(d, d * (float)sum, 0.0f, 0.0f), _MM_FROUND_TO_NEAREST_INT));
        m[b].d = _mm_cvtss_f32(r);
        m[b].ds = _mm_cvtss_f32(_mm_movehdup_ps(r));
        m[b].n8 = -8 * sum;
        m[b].n128 = -128 * sum;
    }
}

/* ---- half-precision rows (F16C) ---- */

void co_f16_to_f32_row_f16c(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++) dst[i] = co_fp16_to_fp32(src[i]);
}

void co_f32_to_f16_row_f16c(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = co_fp32_to_fp16(src[i]);
}

/*
 * matmul_avx512.c - AVX-512 tile kernels (compiled with -mavx512f/bw/vl/dq/vnni -mfma -mf16c;
 * only called after isa.c found those features and OS support for the ZMM state).
 *
 * Float tiles: one ZMM holds one k of 16 rows; every token's x(k) is broadcast and FMA'd into
 * a 16-row accumulator (NT tiles x T tokens accumulators in registers).
 * Quantized tiles: per block of 32 columns, the 16 rows' int8/int4 weights sit in 8 registers
 * as unsigned bytes, 4 columns per int32 lane; VPDPBUSD with the token's 4 int8 activations
 * broadcast (embedded broadcast from memory) sums the block into one int32 per row, started
 * from the per-block offset correction (-8 or -128 times the block's activation sum), then
 * scaled by d_w * d_x into the float accumulator.
 */
#include "cpu_opt.h"

#include <immintrin.h>

#define CO_PRAGMA_UNROLL _Pragma("GCC unroll 16")

CO_INLINE __m512 load_w(const int type, const uint8_t *p) {
    if (type == LOOM_TYPE_F32) return _mm512_loadu_ps((const float *)(const void *)p);
    if (type == LOOM_TYPE_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

CO_INLINE void store_rows(float *d, __m512 v, int nr) {
    if (nr == CO_TILE)
        _mm512_storeu_ps(d, v);
    else
        _mm512_mask_storeu_ps(d, (__mmask16)((1u << nr) - 1u), v);
}

/* ---- float tiles ---- */

CO_INLINE void fk(const int type, const int NT, const int T, const uint8_t *tile, size_t tb, int64_t K,
                  const float *xp, int64_t xs, float *dst, int64_t ldd, int nr_last) {
    const size_t es = type == LOOM_TYPE_F32 ? 4 : 2;
    __m512 acc[4][CO_MAX_T];
    CO_PRAGMA_UNROLL for (int i = 0; i < NT; i++) CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) acc[i][t] =
        _mm512_setzero_ps();
    const uint8_t *p = tile;
    for (int64_t k = 0; k < K; k++, p += CO_TILE * es) {
        __m512 w[4];
        CO_PRAGMA_UNROLL for (int i = 0; i < NT; i++) w[i] = load_w(type, p + (size_t)i * tb);
        const float *x = xp + k * xs;
        CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) {
            __m512 xb = _mm512_set1_ps(x[t]);
            CO_PRAGMA_UNROLL for (int i = 0; i < NT; i++) acc[i][t] = _mm512_fmadd_ps(w[i], xb, acc[i][t]);
        }
    }
    CO_PRAGMA_UNROLL for (int i = 0; i < NT; i++) CO_PRAGMA_UNROLL for (int t = 0; t < T; t++)
        store_rows(dst + t * ldd + i * CO_TILE, acc[i][t], i == NT - 1 ? nr_last : CO_TILE);
}

typedef void (*fk_fn)(const uint8_t *, size_t, int64_t, const float *, int64_t, float *, int64_t, int);

#define FK_INST(TY, TN, NT, T)                                                                                     \
    static void fk_##TN##_##NT##_##T(const uint8_t *tile, size_t tb, int64_t K, const float *xp, int64_t xs,      \
                                     float *dst, int64_t ldd, int nr) {                                            \
        fk(TY, NT, T, tile, tb, K, xp, xs, dst, ldd, nr);                                                          \
    }
#define FK_ROW(TY, TN, NT)                                                                                         \
    FK_INST(TY, TN, NT, 1) FK_INST(TY, TN, NT, 2) FK_INST(TY, TN, NT, 3) FK_INST(TY, TN, NT, 4)                    \
    FK_INST(TY, TN, NT, 5) FK_INST(TY, TN, NT, 6) FK_INST(TY, TN, NT, 7) FK_INST(TY, TN, NT, 8)
#define FK_ROW16(TY, TN)                                                                                           \
    FK_INST(TY, TN, 1, 9) FK_INST(TY, TN, 1, 10) FK_INST(TY, TN, 1, 11) FK_INST(TY, TN, 1, 12)                     \
    FK_INST(TY, TN, 1, 13) FK_INST(TY, TN, 1, 14) FK_INST(TY, TN, 1, 15) FK_INST(TY, TN, 1, 16)                    \
    FK_INST(TY, TN, 2, 9) FK_INST(TY, TN, 2, 10) FK_INST(TY, TN, 2, 11) FK_INST(TY, TN, 2, 12)
#define FK_TYPE(TY, TN) FK_ROW(TY, TN, 1) FK_ROW(TY, TN, 2) FK_ROW16(TY, TN) \
    FK_INST(TY, TN, 4, 1) FK_INST(TY, TN, 4, 2) FK_INST(TY, TN, 4, 3) FK_INST(TY, TN, 4, 4) \
    FK_INST(TY, TN, 4, 5) FK_INST(TY, TN, 4, 6)

FK_TYPE(LOOM_TYPE_F32, f32)
FK_TYPE(LOOM_TYPE_F16, f16)
FK_TYPE(LOOM_TYPE_BF16, bf16)

#define FK_T16(TN, NT)                                                                                             \
    {fk_##TN##_##NT##_1, fk_##TN##_##NT##_2, fk_##TN##_##NT##_3, fk_##TN##_##NT##_4, fk_##TN##_##NT##_5,           \
     fk_##TN##_##NT##_6, fk_##TN##_##NT##_7, fk_##TN##_##NT##_8, fk_##TN##_##NT##_9, fk_##TN##_##NT##_10,          \
     fk_##TN##_##NT##_11, fk_##TN##_##NT##_12, fk_##TN##_##NT##_13, fk_##TN##_##NT##_14, fk_##TN##_##NT##_15,      \
     fk_##TN##_##NT##_16}
#define FK_T12(TN, NT)                                                                                             \
    {fk_##TN##_##NT##_1, fk_##TN##_##NT##_2, fk_##TN##_##NT##_3, fk_##TN##_##NT##_4, fk_##TN##_##NT##_5,           \
     fk_##TN##_##NT##_6, fk_##TN##_##NT##_7, fk_##TN##_##NT##_8, fk_##TN##_##NT##_9, fk_##TN##_##NT##_10,          \
     fk_##TN##_##NT##_11, fk_##TN##_##NT##_12, NULL, NULL, NULL, NULL}
#define FK_T6(TN, NT)                                                                                              \
    {fk_##TN##_##NT##_1, fk_##TN##_##NT##_2, fk_##TN##_##NT##_3, fk_##TN##_##NT##_4, fk_##TN##_##NT##_5,           \
     fk_##TN##_##NT##_6, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}

/* [type 0..2][nt index: 1, 2, 4][T - 1] */
static const fk_fn fk_table[3][3][CO_MAX_T] = {
    {FK_T16(f32, 1), FK_T12(f32, 2), FK_T6(f32, 4)},
    {FK_T16(f16, 1), FK_T12(f16, 2), FK_T6(f16, 4)},
    {FK_T16(bf16, 1), FK_T12(bf16, 2), FK_T6(bf16, 4)},
};

static const int fk_max_t[3] = {16, 12, 6};

void co_fgemm_avx512(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K, const float *xp,
                     int T, float *dst, int64_t ldd, int nr_last) {
    int ty = type == LOOM_TYPE_F32 ? 0 : type == LOOM_TYPE_F16 ? 1 : 2;
    for (int t0 = 0; t0 < T; t0 += CO_MAX_T) {
        int tc = T - t0 < CO_MAX_T ? T - t0 : CO_MAX_T;
        const uint8_t *tl = tile;
        float *d = dst + t0 * ldd;
        int left = nt;
        while (left > 0) {
            int ni = left >= 4 ? 2 : left >= 2 ? 1 : 0;
            while (tc > fk_max_t[ni]) ni--;
            int g = 1 << ni;
            int nr = g == left ? nr_last : CO_TILE;
            fk_table[ty][ni][tc - 1](tl, tile_bytes, K, xp + t0, T, d, ldd, nr);
            tl += (size_t)g * tile_bytes;
            d += g * CO_TILE;
            left -= g;
        }
    }
}

/* ---- quantized tiles ---- */

CO_INLINE int32_t ld32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

CO_INLINE void qk(const int type, const int NT, const int T, const uint8_t *tile, size_t tb, int64_t K,
                  const uint8_t *act, size_t ars, float *dst, int64_t ldd, int nr_last) {
    const int64_t nblk = K / CO_QK;
    const size_t qb = type == LOOM_TYPE_Q8_0 ? 512 : 256;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[4][CO_MAX_T];
    CO_PRAGMA_UNROLL for (int i = 0; i < NT; i++) CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) acc[i][t] =
        _mm512_setzero_ps();
    const co_qmeta *meta[CO_MAX_T];
    CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) meta[t] = co_qact_meta(act + (size_t)t * ars, K);
    for (int64_t b = 0; b < nblk; b++) {
        CO_PRAGMA_UNROLL for (int i = 0; i < NT; i++) {
            const uint8_t *q = tile + (size_t)i * tb + b * qb;
            const uint16_t *sd = (const uint16_t *)(const void *)(tile + (size_t)i * tb + nblk * qb);
            __m512i w[8];
            if (type == LOOM_TYPE_Q8_0) {
                CO_PRAGMA_UNROLL for (int g = 0; g < 8; g++) w[g] = _mm512_loadu_si512((const void *)(q + 64 * g));
            } else {
                CO_PRAGMA_UNROLL for (int p = 0; p < 4; p++) {
                    __m512i v = _mm512_loadu_si512((const void *)(q + 64 * p));
                    w[p] = _mm512_and_si512(v, m4);
                    w[p + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                }
            }
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(sd + b * CO_TILE)));
            __m512 dm = _mm512_setzero_ps();
            if (type == LOOM_TYPE_Q4_1)
                dm = _mm512_cvtph_ps(
                    _mm256_loadu_si256((const __m256i *)(const void *)(sd + nblk * CO_TILE + b * CO_TILE)));
            CO_PRAGMA_UNROLL for (int t = 0; t < T; t++) {
                const int8_t *xq = (const int8_t *)(act + (size_t)t * ars) + b * CO_QK;
                const co_qmeta *m = meta[t] + b;
                __m512i ia = type == LOOM_TYPE_Q8_0   ? _mm512_set1_epi32(m->n128)
                             : type == LOOM_TYPE_Q4_0 ? _mm512_set1_epi32(m->n8)
                                                      : _mm512_setzero_si512();
                CO_PRAGMA_UNROLL for (int g = 0; g < 8; g++) ia =
                    _mm512_dpbusd_epi32(ia, w[g], _mm512_set1_epi32(ld32(xq + 4 * g)));
                __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(ia), _mm512_set1_ps(m->d));
                acc[i][t] = _mm512_fmadd_ps(dw, f, acc[i][t]);
                if (type == LOOM_TYPE_Q4_1) acc[i][t] = _mm512_fmadd_ps(dm, _mm512_set1_ps(m->ds), acc[i][t]);
            }
        }
    }
    CO_PRAGMA_UNROLL for (int i = 0; i < NT; i++) CO_PRAGMA_UNROLL for (int t = 0; t < T; t++)
        store_rows(dst + t * ldd + i * CO_TILE, acc[i][t], i == NT - 1 ? nr_last : CO_TILE);
}

typedef void (*qk_fn)(const uint8_t *, size_t, int64_t, const uint8_t *, size_t, float *, int64_t, int);

#define QK_INST(TY, TN, NT, T)                                                                                     \
    static void qk_##TN##_##NT##_##T(const uint8_t *tile, size_t tb, int64_t K, const uint8_t *act, size_t ars,    \
                                     float *dst, int64_t ldd, int nr) {                                            \
        qk(TY, NT, T, tile, tb, K, act, ars, dst, ldd, nr);                                                        \
    }
#define QK_ROW(TY, TN, NT)                                                                                         \
    QK_INST(TY, TN, NT, 1) QK_INST(TY, TN, NT, 2) QK_INST(TY, TN, NT, 3) QK_INST(TY, TN, NT, 4)                    \
    QK_INST(TY, TN, NT, 5) QK_INST(TY, TN, NT, 6) QK_INST(TY, TN, NT, 7) QK_INST(TY, TN, NT, 8)
#define QK_TYPE(TY, TN)                                                                                            \
    QK_ROW(TY, TN, 1) QK_ROW(TY, TN, 2) QK_INST(TY, TN, 4, 1) QK_INST(TY, TN, 4, 2)                                \
    QK_INST(TY, TN, 1, 9) QK_INST(TY, TN, 1, 10) QK_INST(TY, TN, 1, 11) QK_INST(TY, TN, 1, 12)

QK_TYPE(LOOM_TYPE_Q8_0, q8_0)
QK_TYPE(LOOM_TYPE_Q4_0, q4_0)
QK_TYPE(LOOM_TYPE_Q4_1, q4_1)

#define QK_T12(TN, NT)                                                                                             \
    {qk_##TN##_##NT##_1, qk_##TN##_##NT##_2, qk_##TN##_##NT##_3, qk_##TN##_##NT##_4, qk_##TN##_##NT##_5,           \
     qk_##TN##_##NT##_6, qk_##TN##_##NT##_7, qk_##TN##_##NT##_8, qk_##TN##_##NT##_9, qk_##TN##_##NT##_10,          \
     qk_##TN##_##NT##_11, qk_##TN##_##NT##_12}
#define QK_T8(TN, NT)                                                                                              \
    {qk_##TN##_##NT##_1, qk_##TN##_##NT##_2, qk_##TN##_##NT##_3, qk_##TN##_##NT##_4, qk_##TN##_##NT##_5,           \
     qk_##TN##_##NT##_6, qk_##TN##_##NT##_7, qk_##TN##_##NT##_8, NULL, NULL, NULL, NULL}
#define QK_T2(TN, NT) {qk_##TN##_##NT##_1, qk_##TN##_##NT##_2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}

static const qk_fn qk_table[3][3][12] = {
    {QK_T12(q8_0, 1), QK_T8(q8_0, 2), QK_T2(q8_0, 4)},
    {QK_T12(q4_0, 1), QK_T8(q4_0, 2), QK_T2(q4_0, 4)},
    {QK_T12(q4_1, 1), QK_T8(q4_1, 2), QK_T2(q4_1, 4)},
};
static const int qk_max_t[3] = {12, 8, 2};

void co_qgemm_avx512(uint32_t type, const uint8_t *tile, size_t tile_bytes, int nt, int64_t K,
                     const uint8_t *act, size_t ars, int T, float *dst, int64_t ldd, int nr_last) {
    int ty = type == LOOM_TYPE_Q8_0 ? 0 : type == LOOM_TYPE_Q4_0 ? 1 : 2;
    while (T > 0) {
        int tc = T > qk_max_t[0] ? qk_max_t[0] : T;
        const uint8_t *tl = tile;
        float *d = dst;
        int left = nt;
        while (left > 0) {
            int ni = left >= 4 ? 2 : left >= 2 ? 1 : 0;
            while (tc > qk_max_t[ni]) ni--;
            int g = 1 << ni;
            int nr = g == left ? nr_last : CO_TILE;
            qk_table[ty][ni][tc - 1](tl, tile_bytes, K, act, ars, d, ldd, nr);
            tl += (size_t)g * tile_bytes;
            d += g * CO_TILE;
            left -= g;
        }
        act += (size_t)tc * ars;
        dst += tc * ldd;
        T -= tc;
    }
}

/* ---- activation quantization ---- */

void co_quant_act_avx512(const float *x, uint8_t *row, int64_t K) {
    int8_t *q = (int8_t *)row;
    co_qmeta *m = (co_qmeta *)(void *)(row + K);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t b = 0; b < K / CO_QK; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * CO_QK), v1 = _mm512_loadu_ps(x + b * CO_QK + 16);
        __m512 a = _mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1));
        float amax = _mm512_reduce_max_ps(a);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)(void *)(q + b * CO_QK), _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(void *)(q + b * CO_QK + 16), _mm512_cvtsepi32_epi8(i1));
        int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        float d = amax / 127.0f;
        /* d and d * sum rounded to fp16 (F16C: two instructions) */
        __m128 r = _mm_cvtph_ps(_mm_cvtps_ph(_mm_setr_ps(d, d * (float)sum, 0.0f, 0.0f), _MM_FROUND_TO_NEAREST_INT));
        m[b].d = _mm_cvtss_f32(r);
        m[b].ds = _mm_cvtss_f32(_mm_movehdup_ps(r));
        m[b].n8 = -8 * sum;
        m[b].n128 = -128 * sum;
    }
}

/*
 * act_avx512.c - activation and softmax kernels with AVX-512 (compiled with -mavx512f -mfma;
 * called only when isa.c found AVX-512 with OS support).
 *
 * exp: n = round(x / ln 2), r = x - n ln 2 (two-part constant), degree-6 polynomial (Cephes
 * coefficients) with FMAs, scaled by 2^n with VSCALEFPS; results below exp(-87.3) are 0 (never
 * subnormal, which would cost microcode assists). The logistic function uses e = exp(-|a|) <= 1
 * (no overflow) and a reciprocal of 1 + e in [1, 2]: VRCP14PS refined by one Newton step
 * (about 2^-27 relative), instead of a division (a ZMM division costs 10-20 FMAs of time).
 */
#include "cpu_opt.h"

#include <immintrin.h>

CO_INLINE __m512 exp512(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3f);
    __mmask16 ok = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_max_ps(x, lo);
    x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_scalef_ps(ok, p, n);
}

/* a * sigmoid(a) */
CO_INLINE __m512 silu512(__m512 a) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(a)));
    __m512 t = _mm512_add_ps(one, e);
    __m512 rc = _mm512_rcp14_ps(t);
    rc = _mm512_mul_ps(rc, _mm512_fnmadd_ps(t, rc, _mm512_set1_ps(2.0f)));
    /* sigmoid(a) = 1 / (1 + e) for a >= 0, e / (1 + e) below */
    __mmask16 neg = _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 sg = _mm512_mask_mul_ps(rc, neg, rc, e);
    return _mm512_mul_ps(a, sg);
}

void co_silu_avx512(float *d, const float *a, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, silu512(_mm512_loadu_ps(a + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(d + i, m, silu512(_mm512_maskz_loadu_ps(m, a + i)));
    }
}

void co_swiglu_avx512(float *d, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(d + i, _mm512_mul_ps(silu512(_mm512_loadu_ps(a + i)), _mm512_loadu_ps(b + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mul_ps(silu512(_mm512_maskz_loadu_ps(m, a + i)), _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(d + i, m, v);
    }
}

float co_exp_sum_avx512(const float *x, float *y, int64_t n, float mx) {
    __m512 s = _mm512_setzero_ps(), vm = _mm512_set1_ps(mx);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        _mm512_storeu_ps(y + i, e);
        s = _mm512_add_ps(s, e);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm)));
        _mm512_mask_storeu_ps(y + i, m, e);
        s = _mm512_add_ps(s, e);
    }
    return _mm512_reduce_add_ps(s);
}

/*
 * elementwise.c - add, mul, scale, silu, gelu, swiglu and the weighted sum, plus the vector exp
 * used by softmax and attention. Loops are plain C written so the compiler vectorizes them; on
 * x86-64 the hot ones are cloned for AVX-512 and AVX2 and picked at load time (target_clones
 * resolves with the CPU's and the OS's support, like isa.c).
 */
#include "cpu_opt.h"

#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CO_CLONES
#endif

/* ---- exp ---- */

CO_INLINE float bits_to_f(int32_t i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}

/* exp(x) for x in [-87.3, 88] (clamped above, 0 below), about 1 ulp: Cody-Waite reduction, Cephes polynomial. */
CO_INLINE float exp_core(float x) {
    /* Below -87.3 the result would be subnormal: 0 (also for -inf, as softmax masks need). */
    const float keep = x < -87.3f ? 0.0f : 1.0f;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float n = (x * 1.44269504088896341f + shift) - shift;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * bits_to_f(((int32_t)n + 127) << 23) * keep;
}

float co_expf(float x) {
    if (x != x) return x;
    if (x < -87.0f) return expf(x);
    if (x > 88.0f) return expf(x);
    return exp_core(x);
}

CO_CLONES static float exp_sum(const float *x, float *y, int64_t n, float m) {
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float e = exp_core(x[i + j] - m);
            y[i + j] = e;
            lanes[j] += e;
        }
    float s = 0;
    for (; i < n; i++) {
        float e = exp_core(x[i] - m);
        y[i] = e;
        s += e;
    }
    for (int j = 0; j < 16; j++) s += lanes[j];
    return s;
}

/* AVX-512 versions (act_avx512.c) where the CPU and OS have it. */
static int use_avx512(void) {
#if CO_X86_KERNELS
    return co_isa_detect()->best >= CO_ISA_AVX512;
#else
    return 0;
#endif
}

/* The clones of a global function would be exported (ifunc symbols ignore -fvisibility). */
float co_exp_sum(const float *x, float *y, int64_t n, float m) {
#if CO_X86_KERNELS
    if (use_avx512()) return co_exp_sum_avx512(x, y, n, m);
#endif
    return exp_sum(x, y, n, m);
}

/* ---- row kernels ---- */

CO_CLONES static void row_add(float *d, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = a[i] + b[i];
}
CO_CLONES static void row_mul(float *d, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = a[i] * b[i];
}
CO_CLONES static void row_add1(float *d, const float *a, float b, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = a[i] + b;
}
CO_CLONES static void row_scale(float *d, const float *a, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = a[i] * s;
}
CO_CLONES static void row_silu_c(float *d, const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = a[i] / (1.0f + exp_core(-a[i]));
}
CO_CLONES static void row_swiglu_c(float *d, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = a[i] / (1.0f + exp_core(-a[i])) * b[i];
}
static void row_silu(float *d, const float *a, int64_t n) {
#if CO_X86_KERNELS
    if (use_avx512()) {
        co_silu_avx512(d, a, n);
        return;
    }
#endif
    row_silu_c(d, a, n);
}
static void row_swiglu(float *d, const float *a, const float *b, int64_t n) {
#if CO_X86_KERNELS
    if (use_avx512()) {
        co_swiglu_avx512(d, a, b, n);
        return;
    }
#endif
    row_swiglu_c(d, a, b, n);
}
static void row_gelu(float *d, const float *a, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = 0.5f * a[i] * (1.0f + erff(a[i] * 0.70710678118654752f));
}
CO_CLONES static void row_axpy(float *d, const float *a, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] += s * a[i];
}

/* ---- ops ---- */

static int f32_rows(co_cview v) { return v && v->type == LOOM_TYPE_F32 && v->nb[0] == 4 && v->data; }

static int same_shape(co_cview a, co_cview b) {
    for (int d = 0; d < LOOM_MAX_DIMS; d++)
        if (a->ne[d] != b->ne[d]) return 0;
    return 1;
}

static int broadcasts(co_cview big, co_cview small) {
    if (small->ne[0] != big->ne[0] && small->ne[0] != 1) return 0;
    for (int d = 1; d < LOOM_MAX_DIMS; d++)
        if (small->ne[d] <= 0 || big->ne[d] % small->ne[d]) return 0;
    return 1;
}

int co_supports_elementwise(const loom_op_params *p, co_cview dst, co_cview const *src, uint32_t n) {
    if (n < 1 || !f32_rows(src[0]) || !f32_rows(dst)) return 0;
    co_cview a = src[0], b = n > 1 ? src[1] : NULL;
    switch (p->op) {
    case LOOM_OP_ADD: case LOOM_OP_MUL: return f32_rows(b) && same_shape(dst, a) && broadcasts(a, b);
    case LOOM_OP_SWIGLU: return f32_rows(b) && same_shape(dst, a) && same_shape(a, b);
    case LOOM_OP_SCALE: case LOOM_OP_SILU: case LOOM_OP_GELU: return same_shape(dst, a);
    case LOOM_OP_WEIGHTED_SUM:
        return f32_rows(b) && co_is_contiguous(b) && co_nelem(b) == a->ne[2] && a->ne[3] == 1 &&
               dst->ne[0] == a->ne[0] && dst->ne[1] == a->ne[1] && dst->ne[2] == 1 && dst->ne[3] == 1;
    default: return 0;
    }
}

typedef struct ew_job {
    const loom_op_params *p;
    co_cview dst, a, b;
} ew_job;

static void ew_rows(const ew_job *j, int64_t r0, int64_t r1) {
    co_cview dst = j->dst, a = j->a, b = j->b;
    int64_t n = dst->ne[0];
    for (int64_t r = r0; r < r1; r++) {
        int64_t i1 = r % dst->ne[1], i2 = (r / dst->ne[1]) % dst->ne[2], i3 = r / (dst->ne[1] * dst->ne[2]);
        float *d = co_row_f32(dst, i1, i2, i3);
        const float *x = co_row_f32(a, i1, i2, i3);
        switch (j->p->op) {
        case LOOM_OP_ADD: case LOOM_OP_MUL: {
            const float *y = co_row_f32(b, i1 % b->ne[1], i2 % b->ne[2], i3 % b->ne[3]);
            if (b->ne[0] == n) {
                if (j->p->op == LOOM_OP_ADD) row_add(d, x, y, n);
                else row_mul(d, x, y, n);
            } else {
                if (j->p->op == LOOM_OP_ADD) row_add1(d, x, y[0], n);
                else row_scale(d, x, y[0], n);
            }
            break;
        }
        case LOOM_OP_SWIGLU: row_swiglu(d, x, co_row_f32(b, i1, i2, i3), n); break;
        case LOOM_OP_SCALE: row_scale(d, x, j->p->f[0], n); break;
        case LOOM_OP_SILU: row_silu(d, x, n); break;
        case LOOM_OP_GELU: row_gelu(d, x, n); break;
        default: break;
        }
    }
}

static void ew_task(void *arg, int64_t r0, int64_t r1, int ith) {
    (void)ith;
    ew_rows(arg, r0, r1);
}

typedef struct ws_job {
    co_cview dst, a, w;
} ws_job;

static void ws_task(void *arg, int64_t r0, int64_t r1, int ith) {
    (void)ith;
    ws_job *j = arg;
    int64_t n = j->dst->ne[0], S = j->a->ne[2];
    for (int64_t r = r0; r < r1; r++) {
        float *d = co_row_f32(j->dst, r, 0, 0);
        /* dst may alias a state: accumulate in place only after reading state 0. */
        const float *w = (const float *)j->w->data;
        float w0 = w[0];
        row_scale(d, co_row_f32(j->a, r, 0, 0), w0, n);
        for (int64_t s = 1; s < S; s++) row_axpy(d, co_row_f32(j->a, r, s, 0), w[s], n);
    }
}

loom_status co_op_elementwise(co_device *dev, const loom_op_params *p, co_cview dst, co_cview const *src,
                              uint32_t n) {
    if (p->op == LOOM_OP_WEIGHTED_SUM) {
        ws_job j = {dst, src[0], src[1]};
        int64_t work = co_nelem(src[0]);
        int nth = work < 65536 ? 1 : dev->n_threads;
        co_parallel_for(dev->pool, nth, dst->ne[1], co_chunk(dst->ne[1], nth), ws_task, &j);
        return LOOM_OK;
    }
    ew_job j = {p, dst, src[0], n > 1 ? src[1] : NULL};
    int64_t work = co_nelem(dst);
    if (p->op == LOOM_OP_SILU || p->op == LOOM_OP_SWIGLU || p->op == LOOM_OP_GELU) work *= 8;
    int nth = work < 65536 ? 1 : dev->n_threads;
    if (co_nrows(dst) < nth) nth = (int)co_nrows(dst);
    if (nth < 1) nth = 1;
    co_parallel_for(dev->pool, nth, co_nrows(dst), co_chunk(co_nrows(dst), nth), ew_task, &j);
    return LOOM_OK;
}

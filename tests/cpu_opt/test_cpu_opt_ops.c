/*
 * test_cpu_opt_ops.c - the cpu_opt plugin, loaded with dlopen and driven through its backend
 * table only, against straightforward references written here (double accumulation, the block
 * formats as docs/formats.md describes them). Every ISA level this machine has, both the
 * int8-activation and the exact float path, prepared (repacked) and raw weights, 1-3 threads.
 *
 * usage: test_cpu_opt_ops PLUGIN.so
 */
#define _GNU_SOURCE
#include "loom_plugin.h"

#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The references accumulate in double on purpose. */
#pragma GCC diagnostic ignored "-Wdouble-promotion"

static int g_fail, g_checks;
static const loom_backend_api *B;
static void *g_state;

#define CHECK(cond, ...)                                                                                           \
    do {                                                                                                           \
        g_checks++;                                                                                                \
        if (!(cond)) {                                                                                             \
            g_fail++;                                                                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                   \
            fprintf(stderr, __VA_ARGS__);                                                                          \
            fputc('\n', stderr);                                                                                   \
        }                                                                                                          \
    } while (0)

__attribute__((format(printf, 3, 4))) static void host_log(int32_t level, const char *who, const char *fmt, ...);
static void host_log(int32_t level, const char *who, const char *fmt, ...) {
    if (level > LOOM_LOG_INFO) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", who);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- random numbers, halves ---- */

static uint64_t g_rng = 88172645463325252ull;
static double urand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}
static float frand(void) { return (float)(urand() * 2.0 - 1.0); }

static float h2f(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? INFINITY : ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}
static uint16_t f2h(float f) { /* round to nearest (ties away) is enough for test data */
    uint16_t best = 0;
    float a = fabsf(f);
    int e;
    if (a < 6.1e-5f) {
        best = (uint16_t)lrintf(a / 5.9604645e-8f);
    } else {
        frexpf(a, &e);
        int E = e - 1 + 15;
        float m = a / ldexpf(1.0f, e - 1) - 1.0f;
        int M = (int)lrintf(m * 1024.0f);
        if (M == 1024) {
            M = 0;
            E++;
        }
        best = (uint16_t)((E << 10) | M);
    }
    return (uint16_t)(best | (f < 0 ? 0x8000 : 0));
}
static float bf2f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x8000u) >> 16);
}

/* ---- tensors ---- */

typedef struct tensor {
    loom_tensor_view v;
    void *mem;
} tensor;

static size_t block_size(uint32_t t) { return t == LOOM_TYPE_Q8_0 || t == LOOM_TYPE_Q4_0 || t == LOOM_TYPE_Q4_1 ? 32 : 1; }
static size_t block_bytes(uint32_t t) {
    switch (t) {
    case LOOM_TYPE_F32: case LOOM_TYPE_I32: return 4;
    case LOOM_TYPE_F16: case LOOM_TYPE_BF16: return 2;
    case LOOM_TYPE_Q8_0: return 34;
    case LOOM_TYPE_Q4_0: return 18;
    case LOOM_TYPE_Q4_1: return 20;
    default: return 0;
    }
}

static tensor *tnew(uint32_t type, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    tensor *t = calloc(1, sizeof *t);
    t->v.struct_size = sizeof t->v;
    t->v.type = type;
    int64_t ne[4] = {n0, n1, n2, n3};
    memcpy(t->v.ne, ne, sizeof ne);
    t->v.nb[0] = (int64_t)block_bytes(type);
    t->v.nb[1] = t->v.nb[0] * (n0 / (int64_t)block_size(type));
    t->v.nb[2] = t->v.nb[1] * n1;
    t->v.nb[3] = t->v.nb[2] * n2;
    size_t bytes = (size_t)(t->v.nb[3] * n3);
    t->mem = calloc(1, bytes + 64);
    t->v.data = t->mem;
    return t;
}
static void tfree(tensor *t) {
    if (!t) return;
    free(t->mem);
    free(t);
}
static float *f32(tensor *t) { return (float *)t->v.data; }
static void fill(tensor *t, float scale) {
    int64_t n = t->v.ne[0] * t->v.ne[1] * t->v.ne[2] * t->v.ne[3];
    for (int64_t i = 0; i < n; i++) f32(t)[i] = frand() * scale;
}

/* Reference block formats (docs/formats.md). */
static void ref_quant_row(uint32_t type, const float *x, uint8_t *o, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *v = x + 32 * b;
        if (type == LOOM_TYPE_Q8_0) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[i]));
            uint16_t dh = f2h(amax / 127.0f);
            float d = h2f(dh);
            memcpy(o, &dh, 2);
            for (int i = 0; i < 32; i++) {
                long q = d ? lrintf(v[i] / d) : 0;
                o[2 + i] = (uint8_t)(int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
            }
            o += 34;
        } else if (type == LOOM_TYPE_Q4_0) {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(v[i]));
            uint16_t dh = f2h(amax / 7.0f);
            float d = h2f(dh);
            memcpy(o, &dh, 2);
            for (int i = 0; i < 16; i++) {
                long a = d ? lrintf(v[i] / d) + 8 : 8, c = d ? lrintf(v[16 + i] / d) + 8 : 8;
                a = a < 0 ? 0 : a > 15 ? 15 : a;
                c = c < 0 ? 0 : c > 15 ? 15 : c;
                o[2 + i] = (uint8_t)(a | (c << 4));
            }
            o += 18;
        } else {
            float mn = v[0], mx = v[0];
            for (int i = 1; i < 32; i++) {
                mn = fminf(mn, v[i]);
                mx = fmaxf(mx, v[i]);
            }
            uint16_t dh = f2h((mx - mn) / 15.0f), mh = f2h(mn);
            float d = h2f(dh), m = h2f(mh);
            memcpy(o, &dh, 2);
            memcpy(o + 2, &mh, 2);
            for (int i = 0; i < 16; i++) {
                long a = d ? lrintf((v[i] - m) / d) : 0, c = d ? lrintf((v[16 + i] - m) / d) : 0;
                a = a < 0 ? 0 : a > 15 ? 15 : a;
                c = c < 0 ? 0 : c > 15 ? 15 : c;
                o[4 + i] = (uint8_t)(a | (c << 4));
            }
            o += 20;
        }
    }
}

static double ref_get(const tensor *t, int64_t row, int64_t k) {
    const uint8_t *r = (const uint8_t *)t->v.data + row * t->v.nb[1];
    switch (t->v.type) {
    case LOOM_TYPE_F32: return ((const float *)(const void *)r)[k];
    case LOOM_TYPE_F16: {
        uint16_t h;
        memcpy(&h, r + 2 * k, 2);
        return h2f(h);
    }
    case LOOM_TYPE_BF16: {
        uint16_t h;
        memcpy(&h, r + 2 * k, 2);
        return bf2f(h);
    }
    case LOOM_TYPE_Q8_0: {
        const uint8_t *b = r + (k / 32) * 34;
        uint16_t dh;
        memcpy(&dh, b, 2);
        return (double)h2f(dh) * (int8_t)b[2 + k % 32];
    }
    case LOOM_TYPE_Q4_0: case LOOM_TYPE_Q4_1: {
        int q1 = t->v.type == LOOM_TYPE_Q4_1;
        const uint8_t *b = r + (k / 32) * (q1 ? 20 : 18);
        uint16_t dh, mh = 0;
        memcpy(&dh, b, 2);
        if (q1) memcpy(&mh, b + 2, 2);
        int j = (int)(k % 32);
        int q = j < 16 ? b[(q1 ? 4 : 2) + j] & 15 : b[(q1 ? 4 : 2) + j - 16] >> 4;
        return q1 ? (double)h2f(dh) * q + h2f(mh) : (double)h2f(dh) * (q - 8);
    }
    default: return 0;
    }
}

/* A weight [n, k] of `type` from random values. */
static tensor *make_weight(uint32_t type, int64_t k, int64_t n, int64_t n2) {
    tensor *w = tnew(type, k, n, n2, 1);
    float *row = malloc(sizeof(float) * (size_t)k);
    for (int64_t r = 0; r < n * n2; r++) {
        for (int64_t i = 0; i < k; i++) row[i] = frand();
        uint8_t *o = (uint8_t *)w->v.data + r * w->v.nb[1];
        if (type == LOOM_TYPE_F32) memcpy(o, row, sizeof(float) * (size_t)k);
        else if (type == LOOM_TYPE_F16)
            for (int64_t i = 0; i < k; i++) {
                uint16_t h = f2h(row[i]);
                memcpy(o + 2 * i, &h, 2);
            }
        else if (type == LOOM_TYPE_BF16)
            for (int64_t i = 0; i < k; i++) {
                uint16_t h = f2bf(row[i]);
                memcpy(o + 2 * i, &h, 2);
            }
        else ref_quant_row(type, row, o, k);
    }
    free(row);
    w->v.flags = LOOM_TENSOR_WEIGHT;
    return w;
}

static loom_status run_op(void *dev, uint32_t op, const int32_t *iv, const float *fv, tensor *dst, tensor **src, int n) {
    loom_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.op = op;
    if (iv) memcpy(p.i, iv, sizeof p.i);
    if (fv) memcpy(p.f, fv, sizeof p.f);
    const loom_tensor_view *sv[LOOM_MAX_SRC] = {0};
    for (int i = 0; i < n; i++) sv[i] = src[i] ? &src[i]->v : NULL;
    if (!B->supports_op(dev, &p, &dst->v, sv, (uint32_t)n)) return LOOM_ERR_UNSUPPORTED;
    return B->compute(dev, &p, &dst->v, sv, (uint32_t)n);
}

/* ---- matmul ---- */

/* int8 activations per block of 32, the scheme the quantized path promises: q = round-to-even
 * (x * 127 / max|x|), scale d = max|x| / 127 and d * sum(q) both rounded to fp16 (llama.cpp's
 * q8_0 / q8_1 activation blocks). xq gets q * fp16(d); ds[b] = fp16(d * sum q). */
static void act_q8(const float *x, int64_t k, float *xq, float *ds) {
    for (int64_t b = 0; b < k / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
        float d = amax / 127.0f, id = amax ? 127.0f / amax : 0.0f, d16 = h2f(f2h(d));
        long sum = 0;
        for (int i = 0; i < 32; i++) {
            long q = lrintf(x[32 * b + i] * id);
            sum += q;
            xq[32 * b + i] = (float)q * d16;
        }
        ds[b] = h2f(f2h(d * (float)sum));
    }
}

/* The min m of block b of row `row` of a Q4_1 tensor. */
static double q41_min(const tensor *t, int64_t row, int64_t b) {
    uint16_t mh;
    memcpy(&mh, (const uint8_t *)t->v.data + row * t->v.nb[1] + b * 20 + 2, 2);
    return h2f(mh);
}

static void test_matmul(void *dev, const char *tag, int exact, uint32_t type, int64_t K, int64_t N, int64_t M,
                        int64_t na2, int64_t nw2, int prepare) {
    tensor *w = make_weight(type, K, N, nw2);
    tensor *a = tnew(LOOM_TYPE_F32, K, M, na2, 1);
    fill(a, 1.0f);
    tensor *d = tnew(LOOM_TYPE_F32, N, M, na2, 1);
    void *extra = NULL;
    if (prepare && B->weight_prepare) {
        loom_status st = B->weight_prepare(dev, &w->v, &extra);
        CHECK(st == LOOM_OK, "weight_prepare %d", st);
        w->v.extra = extra;
    }
    int quant = type == LOOM_TYPE_Q8_0 || type == LOOM_TYPE_Q4_0 || type == LOOM_TYPE_Q4_1;
    tensor *src[2] = {a, w};
    loom_status st = run_op(dev, LOOM_OP_MATMUL, NULL, NULL, d, src, 2);
    CHECK(st == LOOM_OK, "%s matmul type %u K%lld N%lld M%lld: status %d", tag, type, (long long)K, (long long)N,
          (long long)M, st);
    float *xq = malloc(sizeof(float) * (size_t)K), *ds = malloc(sizeof(float) * (size_t)(K / 32 + 1));
    int q41 = quant && !exact && type == LOOM_TYPE_Q4_1;
    double worst = 0;
    for (int64_t b = 0; b < na2; b++) {
        int64_t wb = b / (na2 / nw2);
        for (int64_t m = 0; m < M; m++) {
            const float *x = f32(a) + (b * M + m) * K;
            if (quant && !exact) act_q8(x, K, xq, ds);
            else memcpy(xq, x, sizeof(float) * (size_t)K);
            for (int64_t n = 0; n < N; n++) {
                double s = 0, mag = 0;
                for (int64_t k = 0; k < K; k++) {
                    double wv = ref_get(w, wb * N + n, k);
                    /* Q4_1: the min's share uses the block's rounded d * sum(q), added below */
                    double wq = q41 ? wv - q41_min(w, wb * N + n, k / 32) : wv;
                    s += wq * xq[k];
                    mag += fabs(wv * xq[k]);
                }
                if (q41)
                    for (int64_t blk = 0; blk < K / 32; blk++) s += q41_min(w, wb * N + n, blk) * ds[blk];
                double got = f32(d)[(b * M + m) * N + n];
                double err = fabs(got - s) / (mag + 1e-6);
                if (err > worst) worst = err;
            }
        }
    }
    CHECK(worst < 2e-5, "%s matmul type %u K%lld N%lld M%lld b%lld/%lld prep%d: relative error %.3g", tag, type,
          (long long)K, (long long)N, (long long)M, (long long)na2, (long long)nw2, prepare, worst);
    free(xq);
    free(ds);
    if (extra) B->weight_release(dev, extra);
    tfree(w);
    tfree(a);
    tfree(d);
}

/* ---- other ops ---- */

static double max_abs_diff(const float *a, const double *b, int64_t n, double *scale) {
    double m = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        if (e > m || e != e) m = e != e ? INFINITY : e;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    if (scale) *scale = s;
    return m;
}

static void test_norms(void *dev, const char *tag) {
    int64_t n = 576, rows = 5;
    tensor *x = tnew(LOOM_TYPE_F32, n, rows, 1, 1), *g = tnew(LOOM_TYPE_F32, n, 1, 1, 1),
           *b = tnew(LOOM_TYPE_F32, n, 1, 1, 1), *d = tnew(LOOM_TYPE_F32, n, rows, 1, 1);
    fill(x, 3.0f);
    fill(g, 1.0f);
    fill(b, 1.0f);
    double *ref = malloc(sizeof(double) * (size_t)(n * rows));
    float eps = 1e-5f;
    for (int layer = 0; layer < 2; layer++) {
        for (int64_t r = 0; r < rows; r++) {
            const float *v = f32(x) + r * n;
            double mean = 0, ss = 0;
            for (int64_t i = 0; i < n; i++) mean += v[i];
            mean /= (double)n;
            for (int64_t i = 0; i < n; i++) ss += layer ? (v[i] - mean) * (v[i] - mean) : (double)v[i] * v[i];
            double sc = 1.0 / sqrt(ss / (double)n + eps);
            for (int64_t i = 0; i < n; i++)
                ref[r * n + i] = layer ? (v[i] - mean) * sc * f32(g)[i] + f32(b)[i] : v[i] * sc * f32(g)[i];
        }
        tensor *src[3] = {x, g, b};
        float fv[8] = {eps};
        loom_status st = run_op(dev, layer ? LOOM_OP_LAYER_NORM : LOOM_OP_RMS_NORM, NULL, fv, d, src, layer ? 3 : 2);
        double s, e = max_abs_diff(f32(d), ref, n * rows, &s);
        CHECK(st == LOOM_OK && e < 1e-5 * s, "%s %s norm: status %d err %.3g", tag, layer ? "layer" : "rms", st, e);
    }
    free(ref);
    tfree(x);
    tfree(g);
    tfree(b);
    tfree(d);
}

static void test_elementwise(void *dev, const char *tag) {
    int64_t n = 1536, rows = 3;
    tensor *x = tnew(LOOM_TYPE_F32, n, rows, 2, 1), *y = tnew(LOOM_TYPE_F32, n, rows, 2, 1),
           *yb = tnew(LOOM_TYPE_F32, n, 1, 1, 1), *d = tnew(LOOM_TYPE_F32, n, rows, 2, 1);
    fill(x, 8.0f);
    fill(y, 2.0f);
    fill(yb, 2.0f);
    int64_t tot = n * rows * 2;
    double *ref = malloc(sizeof(double) * (size_t)tot);
    const uint32_t ops[] = {LOOM_OP_ADD, LOOM_OP_MUL, LOOM_OP_SCALE, LOOM_OP_SILU, LOOM_OP_GELU, LOOM_OP_SWIGLU};
    for (int bc = 0; bc < 2; bc++) {
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
            if (bc && ops[o] != LOOM_OP_ADD && ops[o] != LOOM_OP_MUL) continue;
            for (int64_t i = 0; i < tot; i++) {
                double a = f32(x)[i], b = bc ? f32(yb)[i % n] : f32(y)[i];
                double sg = a / (1.0 + exp(-a));
                switch (ops[o]) {
                case LOOM_OP_ADD: ref[i] = a + b; break;
                case LOOM_OP_MUL: ref[i] = a * b; break;
                case LOOM_OP_SCALE: ref[i] = a * 0.37; break;
                case LOOM_OP_SILU: ref[i] = sg; break;
                case LOOM_OP_GELU: ref[i] = 0.5 * a * (1.0 + erf(a / sqrt(2.0))); break; /* float cancellation below -3 */
                case LOOM_OP_SWIGLU: ref[i] = sg * b; break;
                }
            }
            tensor *src[2] = {x, bc ? yb : y};
            float fv[8] = {0.37f};
            loom_status st = run_op(dev, ops[o], NULL, fv, d, src, ops[o] == LOOM_OP_SCALE || ops[o] == LOOM_OP_SILU ||
                                                                        ops[o] == LOOM_OP_GELU ? 1 : 2);
            double worst = 0;
            for (int64_t i = 0; i < tot; i++) {
                /* GELU as 0.5 x (1 + erf) in float (the reference's formula) loses digits where
                 * 1 + erf cancels: measure its error against |x| there. */
                double mag = fabs(ref[i]) + (ops[o] == LOOM_OP_GELU ? 0.05 * fabs(f32(x)[i]) : 0.0);
                double e = fabs(f32(d)[i] - ref[i]) / (mag + 1e-6);
                if (e > worst) worst = e;
            }
            CHECK(st == LOOM_OK && worst < 2e-6, "%s elementwise op %u bcast %d: status %d rel err %.3g", tag, ops[o], bc,
                  st, worst);
        }
    }
    /* weighted sum over 3 states */
    tensor *s3 = tnew(LOOM_TYPE_F32, n, rows, 3, 1), *al = tnew(LOOM_TYPE_F32, 3, 1, 1, 1),
           *ws = tnew(LOOM_TYPE_F32, n, rows, 1, 1);
    fill(s3, 1.0f);
    fill(al, 1.0f);
    tensor *src[2] = {s3, al};
    loom_status st = run_op(dev, LOOM_OP_WEIGHTED_SUM, NULL, NULL, ws, src, 2);
    double worst = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += (double)f32(al)[k] * f32(s3)[(k * rows + r) * n + i];
            double e = fabs(f32(ws)[r * n + i] - s);
            if (e > worst) worst = e;
        }
    CHECK(st == LOOM_OK && worst < 1e-5, "%s weighted_sum: status %d err %.3g", tag, st, worst);
    free(ref);
    tfree(x);
    tfree(y);
    tfree(yb);
    tfree(d);
    tfree(s3);
    tfree(al);
    tfree(ws);
}

static void test_rope(void *dev, const char *tag) {
    int64_t hd = 64, nh = 3, nt = 5;
    for (int mode = 0; mode < 2; mode++)
        for (int partial = 0; partial < 2; partial++) {
            tensor *x = tnew(LOOM_TYPE_F32, hd, nh, nt, 1), *pos = tnew(LOOM_TYPE_I32, nt, 1, 1, 1),
                   *d = tnew(LOOM_TYPE_F32, hd, nh, nt, 1);
            fill(x, 1.0f);
            for (int t = 0; t < nt; t++) ((int32_t *)pos->v.data)[t] = 3 + 7 * t;
            int n_rot = partial ? 32 : 0, nr = partial ? 32 : (int)hd;
            float base = 10000.0f, sc = partial ? 0.5f : 0.0f;
            int32_t iv[8] = {mode, n_rot};
            float fv[8] = {base, sc};
            tensor *src[2] = {x, pos};
            loom_status st = run_op(dev, LOOM_OP_ROPE, iv, fv, d, src, 2);
            double worst = 0;
            for (int t = 0; t < nt; t++)
                for (int h = 0; h < nh; h++) {
                    const float *v = f32(x) + (t * nh + h) * hd;
                    const float *o = f32(d) + (t * nh + h) * hd;
                    double p = ((int32_t *)pos->v.data)[t] * (sc ? sc : 1.0);
                    for (int i = 0; i < hd; i++) {
                        double r;
                        if (i >= nr) {
                            r = v[i];
                        } else {
                            int pair = mode ? (i < nr / 2 ? i : i - nr / 2) : i / 2;
                            int first = mode ? i < nr / 2 : i % 2 == 0;
                            int a = mode ? pair : 2 * pair, b = mode ? pair + nr / 2 : 2 * pair + 1;
                            double th = p * pow(base, -2.0 * pair / nr);
                            r = first ? v[a] * cos(th) - v[b] * sin(th) : v[a] * sin(th) + v[b] * cos(th);
                        }
                        double e = fabs(o[i] - r);
                        if (e > worst) worst = e;
                    }
                }
            CHECK(st == LOOM_OK && worst < 1e-5, "%s rope mode %d partial %d: status %d err %.3g", tag, mode, partial, st,
                  worst);
            tfree(x);
            tfree(pos);
            tfree(d);
        }
}

static void test_softmax(void *dev, const char *tag) {
    int64_t n = 37, rows = 6;
    for (int variant = 0; variant < 3; variant++) {
        tensor *x = tnew(LOOM_TYPE_F32, n, rows, 2, 1), *m = tnew(LOOM_TYPE_F32, n, rows, 1, 1),
               *d = tnew(LOOM_TYPE_F32, n, rows, 2, 1);
        fill(x, 5.0f);
        fill(m, 2.0f);
        int causal = variant == 2;
        int32_t iv[8] = {causal, 30};
        float fv[8] = {0.7f};
        tensor *src[2] = {x, variant == 1 ? m : NULL};
        loom_status st = run_op(dev, LOOM_OP_SOFTMAX, iv, fv, d, src, variant == 1 ? 2 : 1);
        double worst = 0;
        for (int64_t r = 0; r < rows * 2; r++) {
            double v[64], mx = -1e300, s = 0;
            int64_t lim = causal ? 30 + (r % rows) + 1 : n;
            if (lim > n) lim = n;
            for (int64_t c = 0; c < lim; c++) {
                v[c] = f32(x)[r * n + c] * 0.7 + (variant == 1 ? f32(m)[(r % rows) * n + c] : 0.0);
                if (v[c] > mx) mx = v[c];
            }
            for (int64_t c = 0; c < lim; c++) s += exp(v[c] - mx);
            for (int64_t c = 0; c < n; c++) {
                double ref = c < lim ? exp(v[c] - mx) / s : 0.0;
                double e = fabs(f32(d)[r * n + c] - ref);
                if (e > worst) worst = e;
            }
        }
        CHECK(st == LOOM_OK && worst < 2e-6, "%s softmax variant %d: status %d err %.3g", tag, variant, st, worst);
        tfree(x);
        tfree(m);
        tfree(d);
    }
}

static void test_attention_case(void *dev, const char *tag, int64_t hd, int64_t nh, int64_t nkvh, int64_t nt,
                                int64_t nkv, int64_t i0);
static void test_attention(void *dev, const char *tag) {
    for (int variant = 0; variant < 4; variant++) {
        /* head dims 64 and 40 (a partial value tile), prefill and single-token decode */
        int64_t hd = variant & 1 ? 40 : 64, nh = 6, nkvh = 2, nt = variant & 2 ? 1 : 19, nkv = 40,
                i0 = variant & 2 ? 33 : 21;
        test_attention_case(dev, tag, hd, nh, nkvh, nt, nkv, i0);
    }
}

static void test_attention_case(void *dev, const char *tag, int64_t hd, int64_t nh, int64_t nkvh, int64_t nt,
                                int64_t nkv, int64_t i0) {
    for (int f16 = 0; f16 < 2; f16++) {
        uint32_t kt = f16 ? LOOM_TYPE_F16 : LOOM_TYPE_F32;
        tensor *q = tnew(LOOM_TYPE_F32, hd, nh, nt, 1), *k = tnew(kt, hd, nkvh, nkv, 1), *v = tnew(kt, hd, nkvh, nkv, 1),
               *d = tnew(LOOM_TYPE_F32, hd, nh, nt, 1);
        fill(q, 1.0f);
        int64_t nkve = hd * nkvh * nkv;
        float *kf = malloc(sizeof(float) * (size_t)nkve), *vf = malloc(sizeof(float) * (size_t)nkve);
        for (int64_t i = 0; i < nkve; i++) {
            kf[i] = frand();
            vf[i] = frand();
            if (f16) {
                uint16_t a = f2h(kf[i]), b = f2h(vf[i]);
                kf[i] = h2f(a);
                vf[i] = h2f(b);
                ((uint16_t *)k->v.data)[i] = a;
                ((uint16_t *)v->v.data)[i] = b;
            } else {
                f32(k)[i] = kf[i];
                f32(v)[i] = vf[i];
            }
        }
        int32_t iv[8] = {(int32_t)i0};
        float fv[8] = {0.125f};
        tensor *src[3] = {q, k, v};
        loom_status st = run_op(dev, LOOM_OP_ATTENTION, iv, fv, d, src, 3);
        double worst = 0;
        for (int64_t t = 0; t < nt; t++)
            for (int64_t h = 0; h < nh; h++) {
                int64_t g = h / (nh / nkvh), nv = i0 + t + 1 < nkv ? i0 + t + 1 : nkv;
                double sc[64], mx = -1e300, s = 0;
                const float *qr = f32(q) + (t * nh + h) * hd;
                for (int64_t j = 0; j < nv; j++) {
                    double dt = 0;
                    for (int64_t i = 0; i < hd; i++) dt += (double)qr[i] * kf[(j * nkvh + g) * hd + i];
                    sc[j] = dt * 0.125;
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int64_t j = 0; j < nv; j++) s += (sc[j] = exp(sc[j] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double o = 0;
                    for (int64_t j = 0; j < nv; j++) o += sc[j] * vf[(j * nkvh + g) * hd + i];
                    double e = fabs(f32(d)[(t * nh + h) * hd + i] - o / s);
                    if (e > worst) worst = e;
                }
            }
        CHECK(st == LOOM_OK && worst < 1e-5, "%s attention hd=%lld n_tok=%lld f16=%d: status %d err %.3g", tag,
              (long long)hd, (long long)nt, f16, st, worst);
        free(kf);
        free(vf);
        tfree(q);
        tfree(k);
        tfree(v);
        tfree(d);
    }
}

static void test_copy_get_rows(void *dev, const char *tag) {
    /* F32 -> F16 into a strided view (a KV-cache slot), and back. */
    int64_t hd = 64, nkvh = 3, nkv = 10, nt = 4, off = 5;
    tensor *src = tnew(LOOM_TYPE_F32, hd, nkvh, nt, 1), *cache = tnew(LOOM_TYPE_F16, hd, nkvh, nkv, 1);
    fill(src, 2.0f);
    tensor view = *cache;
    view.v.ne[2] = nt;
    view.v.data = (uint8_t *)cache->v.data + off * cache->v.nb[2];
    tensor *s1[1] = {src};
    loom_status st = run_op(dev, LOOM_OP_COPY, NULL, NULL, &view, s1, 1);
    double worst = 0;
    for (int64_t i = 0; i < hd * nkvh * nt; i++) {
        float back = h2f(((uint16_t *)cache->v.data)[off * hd * nkvh + i]);
        double e = fabs(back - f32(src)[i]) / (fabs(f32(src)[i]) + 1e-3);
        if (e > worst) worst = e;
    }
    CHECK(st == LOOM_OK && worst < 1e-3, "%s copy f32->f16 view: status %d err %.3g", tag, st, worst);
    /* A reshaping copy F16 -> F32 (transpose-free, different shape). */
    tensor *flat = tnew(LOOM_TYPE_F32, hd * nkvh, nt, 1, 1);
    tensor *s2[1] = {&view};
    st = run_op(dev, LOOM_OP_COPY, NULL, NULL, flat, s2, 1);
    worst = 0;
    for (int64_t i = 0; i < hd * nkvh * nt; i++) {
        double e = fabs(f32(flat)[i] - h2f(((uint16_t *)cache->v.data)[off * hd * nkvh + i]));
        if (e > worst) worst = e;
    }
    CHECK(st == LOOM_OK && worst == 0, "%s copy f16->f32 reshape: status %d err %.3g", tag, st, worst);
    tfree(src);
    tfree(cache);
    tfree(flat);

    /* get_rows from every table type, raw and repacked. */
    const uint32_t types[] = {LOOM_TYPE_F32, LOOM_TYPE_F16, LOOM_TYPE_BF16, LOOM_TYPE_Q8_0, LOOM_TYPE_Q4_0, LOOM_TYPE_Q4_1};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int prep = 0; prep < 2; prep++) {
            int64_t d0 = 96, rows = 50, n = 7;
            tensor *tab = make_weight(types[ti], d0, rows, 1);
            void *extra = NULL;
            if (prep) {
                B->weight_prepare(dev, &tab->v, &extra);
                tab->v.extra = extra;
            }
            tensor *ids = tnew(LOOM_TYPE_I32, n, 1, 1, 1), *out = tnew(LOOM_TYPE_F32, d0, n, 1, 1);
            for (int i = 0; i < n; i++) ((int32_t *)ids->v.data)[i] = (int32_t)((i * 17 + 3) % rows);
            tensor *s3[2] = {tab, ids};
            st = run_op(dev, LOOM_OP_GET_ROWS, NULL, NULL, out, s3, 2);
            worst = 0;
            for (int i = 0; i < n; i++)
                for (int64_t k = 0; k < d0; k++) {
                    double e = fabs(f32(out)[i * d0 + k] - ref_get(tab, ((int32_t *)ids->v.data)[i], k));
                    if (e > worst) worst = e;
                }
            CHECK(st == LOOM_OK && worst < 1e-6, "%s get_rows type %u prep %d: status %d err %.3g", tag, types[ti], prep,
                  st, worst);
            ((int32_t *)ids->v.data)[2] = (int32_t)rows; /* out of range: an error, not a crash */
            st = run_op(dev, LOOM_OP_GET_ROWS, NULL, NULL, out, s3, 2);
            CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "%s get_rows out of range: status %d", tag, st);
            if (extra) B->weight_release(dev, extra);
            tfree(tab);
            tfree(ids);
            tfree(out);
        }
}

static void test_hadamard(void *dev, const char *tag) {
    int64_t n = 128, rows = 3;
    for (int g = 0; g <= 32; g += 32) {
        tensor *x = tnew(LOOM_TYPE_F32, n, rows, 1, 1), *d = tnew(LOOM_TYPE_F32, n, rows, 1, 1);
        fill(x, 1.0f);
        int32_t iv[8] = {g};
        tensor *src[1] = {x};
        loom_status st = run_op(dev, LOOM_OP_HADAMARD, iv, NULL, d, src, 1);
        int64_t G = g ? g : n;
        double worst = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t i = 0; i < n; i++) {
                int64_t b = i / G * G, ii = i % G;
                double s = 0;
                for (int64_t j = 0; j < G; j++) s += (__builtin_popcountll((unsigned long long)(ii & j)) & 1 ? -1.0 : 1.0) *
                                                      f32(x)[r * n + b + j];
                double e = fabs(f32(d)[r * n + i] - s / sqrt((double)G));
                if (e > worst) worst = e;
            }
        CHECK(st == LOOM_OK && worst < 1e-5, "%s hadamard g=%d: status %d err %.3g", tag, g, st, worst);
        tfree(x);
        tfree(d);
    }
}

/* Repacking a weight that lives in a read-only file mapping drops its pages; the data must
 * still read back correctly (from the file) and the matmul must use the tiles. */
static void test_mapped_weight(void *dev, const char *tag) {
    int64_t K = 256, N = 64;
    tensor *w = make_weight(LOOM_TYPE_Q4_0, K, N, 1);
    size_t bytes = (size_t)(w->v.nb[1] * N);
    char path[] = "/tmp/cpu_opt_testXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    size_t pad = 4096 * 3;
    uint8_t *zeros = calloc(1, pad + bytes);
    memcpy(zeros + 4096, w->v.data, bytes);
    CHECK(write(fd, zeros, pad + bytes) == (ssize_t)(pad + bytes), "write");
    uint8_t *map = mmap(NULL, pad + bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(map != MAP_FAILED, "mmap");
    tensor mw = *w;
    mw.v.data = map + 4096;
    void *extra = NULL;
    CHECK(B->weight_prepare(dev, &mw.v, &extra) == LOOM_OK && extra, "%s prepare mapped", tag);
    mw.v.extra = extra;
    CHECK(memcmp(mw.v.data, w->v.data, bytes) == 0, "%s mapped weight changed after release", tag);
    tensor *a = tnew(LOOM_TYPE_F32, K, 3, 1, 1), *d1 = tnew(LOOM_TYPE_F32, N, 3, 1, 1), *d2 = tnew(LOOM_TYPE_F32, N, 3, 1, 1);
    fill(a, 1.0f);
    tensor *s1[2] = {a, &mw}, *s2[2] = {a, w};
    run_op(dev, LOOM_OP_MATMUL, NULL, NULL, d1, s1, 2);
    run_op(dev, LOOM_OP_MATMUL, NULL, NULL, d2, s2, 2);
    CHECK(memcmp(f32(d1), f32(d2), sizeof(float) * (size_t)(N * 3)) == 0, "%s repacked vs raw matmul differ", tag);
    B->weight_release(dev, extra);
    munmap(map, pad + bytes);
    close(fd);
    unlink(path);
    free(zeros);
    tfree(w);
    tfree(a);
    tfree(d1);
    tfree(d2);
}

static void run_device(const char *isa, int exact, int threads) {
    char tag[96], th[16];
    snprintf(tag, sizeof tag, "[isa=%s exact=%d threads=%d]", isa, exact, threads);
    snprintf(th, sizeof th, "%d", threads);
    const char *keys[] = {"threads", "plugin.cpu_opt.isa", "plugin.cpu_opt.exact", "plugin.cpu_opt.tune"};
    const char *vals[] = {th, isa, exact ? "true" : "false", "off"};
    loom_kv_list opts = {sizeof opts, 4, keys, vals};
    void *dev = NULL;
    loom_status st = B->device_open(g_state, 0, &opts, &dev);
    CHECK(st == LOOM_OK && dev, "%s device_open %d", tag, st);
    if (!dev) return;
    const uint32_t types[] = {LOOM_TYPE_F32, LOOM_TYPE_F16, LOOM_TYPE_BF16, LOOM_TYPE_Q8_0, LOOM_TYPE_Q4_0, LOOM_TYPE_Q4_1};
    const int64_t shapes[][3] = {{64, 16, 1}, {96, 40, 1}, {576, 100, 1}, {64, 48, 2}, {128, 33, 3}, {96, 70, 7},
                                 {256, 64, 13}, {64, 32, 17}, {160, 50, 33}};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            test_matmul(dev, tag, exact, types[ti], shapes[s][0], shapes[s][1], shapes[s][2], 1, 1, (int)(s % 2));
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        test_matmul(dev, tag, exact, types[ti], 64, 32, 3, 4, 2, 1); /* broadcast over dim 2 */
        test_matmul(dev, tag, exact, types[ti], 64, 32, 1, 4, 2, 0);
    }
    /* An odd float K (float tiles need no whole blocks). */
    test_matmul(dev, tag, exact, LOOM_TYPE_F32, 37, 21, 5, 1, 1, 0);
    test_norms(dev, tag);
    test_elementwise(dev, tag);
    test_rope(dev, tag);
    test_softmax(dev, tag);
    test_attention(dev, tag);
    test_copy_get_rows(dev, tag);
    test_hadamard(dev, tag);
    test_mapped_weight(dev, tag);
    B->device_close(dev);
}

static void test_options(void) {
    const char *keys[] = {"plugin.cpu_opt.exact"};
    const char *vals[] = {"maybe"};
    loom_kv_list opts = {sizeof opts, 1, keys, vals};
    void *dev = NULL;
    CHECK(B->device_open(g_state, 0, &opts, &dev) == LOOM_ERR_CONFIG && !dev, "bad option value accepted");
    const char *k2[] = {"plugin.cpu_opt.isa"};
    const char *v2[] = {"sse9"};
    loom_kv_list o2 = {sizeof o2, 1, k2, v2};
    CHECK(B->device_open(g_state, 0, &o2, &dev) == LOOM_ERR_CONFIG && !dev, "bad isa accepted");
    loom_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(B->device_info(g_state, 0, &info) == LOOM_OK && !strcmp(info.name, "cpu_opt"), "device_info");
    printf("device: %s\n", info.description);
}

/* Variant choice: measured once and cached under $XDG_CACHE_HOME/loom; a second device reads
 * the cache; a corrupt cache line is ignored. */
static void test_tune_cache(void) {
    char dir[] = "/tmp/cpu_opt_tuneXXXXXX";
    if (!mkdtemp(dir)) return;
    setenv("XDG_CACHE_HOME", dir, 1);
    char path[256];
    snprintf(path, sizeof path, "%s/loom/cpu_opt-tune.txt", dir);
    for (int round = 0; round < 3; round++) {
        if (round == 2) { /* garbage in the cache must not matter */
            FILE *f = fopen(path, "a");
            if (f) {
                fputs("v2|junk 99 99 99 99 99\nnot a line\n", f);
                fclose(f);
            }
        }
        const char *keys[] = {"threads", "plugin.cpu_opt.tune"};
        const char *vals[] = {"2", round == 0 ? "force" : "auto"};
        loom_kv_list opts = {sizeof opts, 2, keys, vals};
        void *dev = NULL;
        CHECK(B->device_open(g_state, 0, &opts, &dev) == LOOM_OK, "tune device_open");
        if (!dev) return;
        test_matmul(dev, "[tune]", 0, LOOM_TYPE_Q4_0, 64, 48, 5, 1, 1, 1);
        B->device_close(dev);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL, "no tuning cache at %s", path);
        int found = 0;
        char line[512];
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, "|q4_0 ")) found++;
        if (f) fclose(f);
        CHECK(found == 1, "q4_0 entries in the tuning cache: %d", found);
    }
    unlink(path);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/loom", dir);
    rmdir(sub);
    rmdir(dir);
    unsetenv("XDG_CACHE_HOME");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s plugin.so\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    loom_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, LOOM_PLUGIN_ENTRY_SYMBOL);
    if (!entry) return 1;
    static loom_host_api host;
    host.struct_size = sizeof host;
    host.abi_version = LOOM_ABI_VERSION;
    host.log = host_log;
    host.alloc = malloc;
    host.free = free;
    const loom_plugin_desc *d = entry(LOOM_ABI_VERSION, &host);
    CHECK(d && d->kind == LOOM_PLUGIN_KIND_BACKEND && !strcmp(d->name, "cpu_opt"), "descriptor");
    CHECK(entry(LOOM_ABI_VERSION + (1u << 16), &host) == NULL, "wrong ABI major accepted");
    char reason[256] = "";
    CHECK(d->init(&host, &g_state, reason, sizeof reason) == LOOM_OK, "init: %s", reason);
    B = d->api;
    test_options();
    test_tune_cache();
    const char *isas[] = {"scalar", "avx2", "avx512"};
    int quick = getenv("CPU_OPT_TEST_QUICK") != NULL;
    for (int i = 0; i < 3; i++) {
        /* Levels above this machine's are clamped by the plugin (with a warning): skip them. */
        if (i == 2 && !__builtin_cpu_supports("avx512vnni")) continue;
        if (i == 1 && !__builtin_cpu_supports("avx2")) continue;
        run_device(isas[i], 0, i == 0 ? 1 : 2);
        if (!quick || i == 2) run_device(isas[i], 1, 3);
    }
    if (d->shutdown) d->shutdown(g_state);
    dlclose(h);
    printf("%d checks, %d failures\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}

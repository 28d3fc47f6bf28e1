/*
 * test_opencl_ops.c - every op of the OpenCL backend against the double-precision references of
 * ref.h, through the plugin ABI (dlopen + the backend table), on small shapes: broadcasting,
 * strided views, every matmul weight type, both RoPE layouts, masks, GQA attention with F32 and
 * F16 caches, conversions, and a weight split over several allocations (plugin.opencl.max_alloc).
 * Exits 77 (skipped) when no OpenCL platform/device is available.
 */
#include "harness.h"
#include "ref.h"

#include <string.h>

static hb_plugin P;
static void *D;
static int failures;

#define EXPECT(cond, ...)                                                                                              \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static float *rand_vec(int64_t n, float scale) {
    float *v = malloc((size_t)n * sizeof *v);
    HB_CHECK(v != NULL, "oom");
    for (int64_t i = 0; i < n; i++)
        v[i] = hb_rand() * scale;
    return v;
}

static double *dvec(int64_t n) {
    double *v = calloc((size_t)n, sizeof *v);
    HB_CHECK(v != NULL, "oom");
    return v;
}

/* Upload `vals` (n floats) as a contiguous tensor of `type`; vals are replaced by their decoded
 * values (what the device really holds). */
static hb_tensor *upload(void *dev, uint32_t type, const int64_t ne[4], float *vals) {
    int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
    uint64_t bytes = hb_row_bytes(type, ne[0]) * (uint64_t)(ne[1] * ne[2] * ne[3]);
    void *raw = malloc(bytes);
    hb_tensor *t = hb_tensor_new(&P, dev, type, ne);
    HB_CHECK(raw != NULL, "oom");
    hb_encode(type, vals, raw, n);
    hb_decode(type, raw, vals, n);
    hb_write(t, 0, raw, bytes);
    free(raw);
    return t;
}

static hb_tensor *upload_i32(void *dev, const int32_t *vals, int64_t n) {
    int64_t ne[4] = {n, 1, 1, 1};
    hb_tensor *t = hb_tensor_new(&P, dev, LOOM_TYPE_I32, ne);
    hb_write(t, 0, vals, (uint64_t)n * 4);
    return t;
}

static float *download(hb_tensor *t, int64_t n) {
    float *v = malloc((size_t)n * sizeof *v);
    HB_CHECK(v != NULL, "oom");
    hb_read(t, 0, v, (uint64_t)n * 4);
    return v;
}

static hb_tensor *f32_new(const int64_t ne[4]) { return hb_tensor_new(&P, D, LOOM_TYPE_F32, ne); }

/* ============================================================================================ */

static void test_binary_unary(void) {
    int64_t ne[4] = {37, 5, 3, 2}, nb1[4] = {37, 1, 3, 1}, nb3[4] = {37, 5, 1, 1};
    int64_t n = 37 * 5 * 3 * 2;
    float *a = rand_vec(n, 2.0f), *b = rand_vec(37 * 3, 1.0f), *c = rand_vec(37 * 5, 1.0f);
    hb_tensor *ta = upload(D, LOOM_TYPE_F32, ne, a), *tb = upload(D, LOOM_TYPE_F32, nb1, b),
              *tc = upload(D, LOOM_TYPE_F32, nb3, c), *td = f32_new(ne);
    double *want = dvec(n);
    const uint32_t ops[3] = {LOOM_OP_ADD, LOOM_OP_MUL, LOOM_OP_SWIGLU};
    for (int o = 0; o < 3; o++) {
        for (int which = 0; which < 2; which++) {
            hb_tensor *src1 = which ? tc : tb;
            float *got;
            for (int64_t i = 0; i < n; i++) {
                int64_t i0 = i % 37, i1 = (i / 37) % 5, i2 = (i / 185) % 3;
                double x = a[i], y = which ? c[i1 * 37 + i0] : b[i2 * 37 + i0];
                want[i] = ops[o] == LOOM_OP_ADD ? x + y : ops[o] == LOOM_OP_MUL ? x * y : ref_silu(x) * y;
            }
            EXPECT(hb_op(&P, D, ops[o], NULL, NULL, td, ta, src1, NULL) == LOOM_OK, "binary op %u", ops[o]);
            got = download(td, n);
            EXPECT(hb_close("binary", got, want, n, 1e-6, 1e-5), "binary op %u broadcast %d", ops[o], which);
            free(got);
        }
    }
    /* Unary ops, including a strided (every other row) source view. */
    {
        const uint32_t uops[3] = {LOOM_OP_SCALE, LOOM_OP_SILU, LOOM_OP_GELU};
        int64_t vne[4] = {37, 5, 3, 1}, vnb[4] = {4, 37 * 4 * 2, 37 * 4 * 10, 0};
        int64_t vn = 37 * 5 * 3;
        hb_tensor *view = hb_view(ta, LOOM_TYPE_F32, vne, vnb, 37 * 4);
        hb_tensor *tv = f32_new(vne);
        float f[8] = {-0.75f};
        for (int o = 0; o < 3; o++) {
            float *got;
            for (int64_t i = 0; i < vn; i++) {
                int64_t i0 = i % 37, i1 = (i / 37) % 5, i2 = i / 185;
                double x = a[37 + i0 + i1 * 74 + i2 * 370];
                want[i] = uops[o] == LOOM_OP_SCALE ? x * -0.75 : uops[o] == LOOM_OP_SILU ? ref_silu(x) : ref_gelu(x);
            }
            EXPECT(hb_op(&P, D, uops[o], NULL, f, tv, view, NULL, NULL) == LOOM_OK, "unary op %u", uops[o]);
            got = download(tv, vn);
            EXPECT(hb_close("unary", got, want, vn, 1e-6, 1e-5), "unary op %u", uops[o]);
            free(got);
        }
        hb_tensor_free(view);
        hb_tensor_free(tv);
    }
    hb_tensor_free(ta);
    hb_tensor_free(tb);
    hb_tensor_free(tc);
    hb_tensor_free(td);
    free(a);
    free(b);
    free(c);
    free(want);
}

static void test_norms(void) {
    int64_t d = 96, rows = 7;
    int64_t ne[4] = {d, rows, 1, 1}, nw[4] = {d, 1, 1, 1};
    float *x = rand_vec(d * rows, 3.0f), *w = rand_vec(d, 1.0f), *b = rand_vec(d, 0.5f);
    hb_tensor *tx = upload(D, LOOM_TYPE_F32, ne, x), *tw = upload(D, LOOM_TYPE_F32, nw, w),
              *tb = upload(D, LOOM_TYPE_F32, nw, b), *td = f32_new(ne);
    double *want = dvec(d * rows);
    float f[8] = {1e-5f};
    float *got;

    ref_rms_norm(x, w, want, d, rows, 1e-5);
    EXPECT(hb_op(&P, D, LOOM_OP_RMS_NORM, NULL, f, td, tx, tw, NULL) == LOOM_OK, "rms_norm");
    got = download(td, d * rows);
    EXPECT(hb_close("rms_norm", got, want, d * rows, 1e-6, 1e-5), "rms_norm with gain");
    free(got);

    ref_rms_norm(x, NULL, want, d, rows, 1e-5);
    EXPECT(hb_op(&P, D, LOOM_OP_RMS_NORM, NULL, f, td, tx, NULL, NULL) == LOOM_OK, "rms_norm");
    got = download(td, d * rows);
    EXPECT(hb_close("rms_norm", got, want, d * rows, 1e-6, 1e-5), "rms_norm without gain");
    free(got);

    ref_layer_norm(x, w, b, want, d, rows, 1e-5);
    EXPECT(hb_op(&P, D, LOOM_OP_LAYER_NORM, NULL, f, td, tx, tw, tb) == LOOM_OK, "layer_norm");
    got = download(td, d * rows);
    EXPECT(hb_close("layer_norm", got, want, d * rows, 1e-6, 1e-5), "layer_norm with gain and bias");
    free(got);

    /* In place. */
    ref_rms_norm(x, w, want, d, rows, 1e-5);
    EXPECT(hb_op(&P, D, LOOM_OP_RMS_NORM, NULL, f, tx, tx, tw, NULL) == LOOM_OK, "rms_norm in place");
    got = download(tx, d * rows);
    EXPECT(hb_close("rms_norm in place", got, want, d * rows, 1e-6, 1e-5), "rms_norm in place");
    free(got);

    hb_tensor_free(tx);
    hb_tensor_free(tw);
    hb_tensor_free(tb);
    hb_tensor_free(td);
    free(x);
    free(w);
    free(b);
    free(want);
}

static void test_rope(void) {
    int64_t hd = 16, nh = 3, nt = 5;
    int64_t ne[4] = {hd, nh, nt, 1};
    int64_t n = hd * nh * nt;
    /* The source is a view into a fused qkv-like buffer: rows of 2 * nh heads, q first. */
    int64_t bne[4] = {hd, 2 * nh, nt, 1};
    float *big = rand_vec(hd * 2 * nh * nt, 1.0f);
    float *x = malloc((size_t)n * sizeof *x);
    /* Angles are computed in float: at position 4095 that alone is worth ~2.5e-4 absolute. */
    int32_t pos[5] = {0, 1, 7, 100, 4095};
    hb_tensor *tbig = upload(D, LOOM_TYPE_F32, bne, big), *tpos = upload_i32(D, pos, nt), *td = f32_new(ne);
    int64_t vnb[4] = {4, hd * 4, hd * 2 * nh * 4, 0};
    hb_tensor *view = hb_view(tbig, LOOM_TYPE_F32, ne, vnb, 0);
    double *want = dvec(n);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t h = 0; h < nh; h++)
            memcpy(x + (t * nh + h) * hd, big + (t * 2 * nh + h) * hd, (size_t)hd * 4);
    for (int mode = 0; mode < 2; mode++)
        for (int partial = 0; partial < 2; partial++) {
            int32_t ip[8] = {mode, partial ? 8 : 0};
            float f[8] = {10000.0f, partial ? 0.5f : 0.0f};
            float *got;
            ref_rope(x, pos, want, hd, nh, nt, mode, partial ? 8 : hd, 10000.0, partial ? 0.5 : 1.0);
            EXPECT(hb_op(&P, D, LOOM_OP_ROPE, ip, f, td, view, tpos, NULL) == LOOM_OK, "rope");
            got = download(td, n);
            EXPECT(hb_close("rope", got, want, n, 3e-4, 1e-4), "rope mode %d partial %d", mode, partial);
            free(got);
        }
    hb_tensor_free(view);
    hb_tensor_free(tbig);
    hb_tensor_free(tpos);
    hb_tensor_free(td);
    free(big);
    free(x);
    free(want);
}

static void test_softmax(void) {
    int64_t n = 19, r1 = 6, r2 = 3;
    int64_t ne[4] = {n, r1, r2, 1}, nm[4] = {n, r1, 1, 1};
    int64_t total = n * r1 * r2;
    float *x = rand_vec(total, 4.0f), *m = rand_vec(n * r1, 2.0f);
    hb_tensor *tx = upload(D, LOOM_TYPE_F32, ne, x), *tm = upload(D, LOOM_TYPE_F32, nm, m), *td = f32_new(ne);
    float *mh = malloc((size_t)(n * r1) * sizeof *mh);
    hb_tensor *tmh;
    double *want = dvec(total);
    float f[8] = {0.3f};
    float *got;
    memcpy(mh, m, (size_t)(n * r1) * sizeof *mh);
    tmh = upload(D, LOOM_TYPE_F16, nm, mh);

    ref_softmax(x, NULL, 1, want, n, r1 * r2, r1, 0.3, 0, 0);
    EXPECT(hb_op(&P, D, LOOM_OP_SOFTMAX, NULL, f, td, tx, NULL, NULL) == LOOM_OK, "softmax");
    got = download(td, total);
    EXPECT(hb_close("softmax", got, want, total, 1e-7, 1e-5), "softmax plain");
    free(got);

    ref_softmax(x, m, r1, want, n, r1 * r2, r1, 0.3, 0, 0);
    EXPECT(hb_op(&P, D, LOOM_OP_SOFTMAX, NULL, f, td, tx, tm, NULL) == LOOM_OK, "softmax mask");
    got = download(td, total);
    EXPECT(hb_close("softmax mask", got, want, total, 1e-7, 1e-5), "softmax F32 mask");
    free(got);

    ref_softmax(x, mh, r1, want, n, r1 * r2, r1, 0.3, 0, 0);
    EXPECT(hb_op(&P, D, LOOM_OP_SOFTMAX, NULL, f, td, tx, tmh, NULL) == LOOM_OK, "softmax f16 mask");
    got = download(td, total);
    EXPECT(hb_close("softmax f16 mask", got, want, total, 1e-7, 1e-5), "softmax F16 mask");
    free(got);

    {
        int32_t ip[8] = {1, 12};
        ref_softmax(x, NULL, 1, want, n, r1 * r2, r1, 0.3, 1, 12);
        EXPECT(hb_op(&P, D, LOOM_OP_SOFTMAX, ip, f, td, tx, NULL, NULL) == LOOM_OK, "softmax causal");
        got = download(td, total);
        EXPECT(hb_close("softmax causal", got, want, total, 1e-7, 1e-5), "softmax causal");
        free(got);
    }
    {
        /* A row with no visible column (mask all -inf) comes out as zeros. */
        float inf_row[19];
        int64_t n1[4] = {19, 1, 1, 1};
        hb_tensor *tinf, *t1 = f32_new(n1), *x1 = upload(D, LOOM_TYPE_F32, n1, x);
        for (int i = 0; i < 19; i++)
            inf_row[i] = -INFINITY;
        tinf = upload(D, LOOM_TYPE_F32, n1, inf_row);
        EXPECT(hb_op(&P, D, LOOM_OP_SOFTMAX, NULL, f, t1, x1, tinf, NULL) == LOOM_OK, "softmax masked row");
        got = download(t1, 19);
        for (int i = 0; i < 19; i++)
            EXPECT(got[i] == 0.0f, "fully masked row: %g", (double)got[i]);
        free(got);
        hb_tensor_free(tinf);
        hb_tensor_free(t1);
        hb_tensor_free(x1);
    }
    hb_tensor_free(tx);
    hb_tensor_free(tm);
    hb_tensor_free(tmh);
    hb_tensor_free(td);
    free(x);
    free(m);
    free(mh);
    free(want);
}

static void test_attention(void) {
    int64_t hd = 32, nh = 6, nt = 5, nkh = 2, nkv = 9, cap = 16;
    int64_t qne[4] = {hd, nh, nt, 1}, cne[4] = {hd, nkh, cap, 1}, vne[4] = {hd, nkh, nkv, 1};
    float *q = rand_vec(hd * nh * nt, 1.0f);
    hb_tensor *tq = upload(D, LOOM_TYPE_F32, qne, q), *td = f32_new(qne);
    double *want = dvec(hd * nh * nt);
    for (int f16 = 0; f16 < 2; f16++) {
        uint32_t type = f16 ? LOOM_TYPE_F16 : LOOM_TYPE_F32;
        float *kc = rand_vec(hd * nkh * cap, 1.0f), *vc = rand_vec(hd * nkh * cap, 1.0f);
        hb_tensor *tk = upload(D, type, cne, kc), *tv = upload(D, type, cne, vc);
        /* Views of the first nkv cache rows (a KV cache with room for more). */
        hb_tensor *kv = hb_view(tk, type, vne, tk->v.nb, 0), *vv = hb_view(tv, type, vne, tv->v.nb, 0);
        for (int pos0 = 0; pos0 <= 4; pos0 += 4) {
            int32_t ip[8] = {pos0};
            float fp[8] = {0.25f};
            float *got;
            ref_attention(q, kc, vc, want, hd, nh, nt, nkh, nkv, pos0, 0.25);
            EXPECT(hb_op(&P, D, LOOM_OP_ATTENTION, ip, fp, td, tq, kv, vv) == LOOM_OK, "attention");
            got = download(td, hd * nh * nt);
            EXPECT(hb_close("attention", got, want, hd * nh * nt, 1e-5, 1e-4), "attention f16=%d pos0=%d", f16, pos0);
            free(got);
        }
        hb_tensor_free(kv);
        hb_tensor_free(vv);
        hb_tensor_free(tk);
        hb_tensor_free(tv);
        free(kc);
        free(vc);
    }
    hb_tensor_free(tq);
    hb_tensor_free(td);
    free(q);
    free(want);
}

static void check_matmul(void *dev, uint32_t wtype, int64_t k, int64_t m, int64_t n, int64_t b2x, int64_t b2w) {
    int64_t xne[4] = {k, n, b2x, 1}, wne[4] = {k, m, b2w, 1}, dne[4] = {m, n, b2x, 1};
    float *x = rand_vec(k * n * b2x, 1.0f), *w = rand_vec(k * m * b2w, 0.5f);
    hb_tensor *tx = upload(dev, LOOM_TYPE_F32, xne, x), *tw = upload(dev, wtype, wne, w),
              *td = hb_tensor_new(&P, dev, LOOM_TYPE_F32, dne);
    double *want = dvec(m * n * b2x);
    float *got;
    loom_status rc;
    ref_matmul(x, w, want, k, n, m, b2x, 1, b2w, 1);
    rc = hb_op(&P, dev, LOOM_OP_MATMUL, NULL, NULL, td, tx, tw, NULL);
    EXPECT(rc == LOOM_OK, "matmul type %u: status %d (%s)", (unsigned)wtype, rc,
           P.api->last_error(dev) ? P.api->last_error(dev) : "");
    got = download(td, m * n * b2x);
    EXPECT(hb_close("matmul", got, want, m * n * b2x, 1e-4, 1e-4),
           "matmul type %u k=%lld m=%lld n=%lld batches %lld/%lld", (unsigned)wtype, (long long)k, (long long)m,
           (long long)n, (long long)b2x, (long long)b2w);
    free(got);
    hb_tensor_free(tx);
    hb_tensor_free(tw);
    hb_tensor_free(td);
    free(x);
    free(w);
    free(want);
}

static void test_matmul(void) {
    const uint32_t types[6] = {LOOM_TYPE_F32,  LOOM_TYPE_F16,  LOOM_TYPE_BF16,
                               LOOM_TYPE_Q8_0, LOOM_TYPE_Q4_0, LOOM_TYPE_Q4_1};
    for (int t = 0; t < 6; t++) {
        check_matmul(D, types[t], 96, 37, 1, 1, 1);
        check_matmul(D, types[t], 64, 29, 13, 1, 1);
    }
    check_matmul(D, LOOM_TYPE_F32, 70, 11, 9, 1, 1); /* k not a multiple of 32 */
    check_matmul(D, LOOM_TYPE_F16, 18, 7, 3, 6, 2);  /* batches shared by groups of 3 */
    check_matmul(D, LOOM_TYPE_F32, 32, 5, 17, 4, 4);
}

static void test_copy(void) {
    /* F32 [8, 3, 4] -> a strided F16 view (rows of a wider cache) and back, and a transpose. */
    int64_t ne[4] = {8, 3, 4, 1}, cne[4] = {8, 5, 4, 1};
    int64_t n = 8 * 3 * 4;
    float *x = rand_vec(n, 10.0f);
    hb_tensor *tx = upload(D, LOOM_TYPE_F32, ne, x);
    hb_tensor *cache = hb_tensor_new(&P, D, LOOM_TYPE_F16, cne);
    int64_t vnb[4] = {2, 16, 80, 320};
    hb_tensor *view = hb_view(cache, LOOM_TYPE_F16, ne, vnb, 16 * 2);
    hb_tensor *back = f32_new(ne);
    double *want = dvec(n);
    float *got;
    for (int64_t i = 0; i < n; i++)
        want[i] = hb_f16_to_f32(hb_f32_to_f16(x[i]));
    EXPECT(hb_op(&P, D, LOOM_OP_COPY, NULL, NULL, view, tx, NULL, NULL) == LOOM_OK, "copy f32->f16");
    EXPECT(hb_op(&P, D, LOOM_OP_COPY, NULL, NULL, back, view, NULL, NULL) == LOOM_OK, "copy f16->f32");
    got = download(back, n);
    EXPECT(hb_close("copy f16", got, want, n, 0, 1e-7), "F32 -> F16 -> F32 through a strided view");
    free(got);
    {
        /* Exact rounding of F32 -> F16 (ties to even) on the raw bits. */
        uint16_t raw[8 * 5 * 4];
        hb_read(cache, 0, raw, sizeof raw);
        for (int64_t i = 0; i < n; i++) {
            int64_t i0 = i % 8, i1 = (i / 8) % 3, i2 = i / 24;
            EXPECT(raw[i0 + (i1 + 2) * 8 + i2 * 40] == hb_f32_to_f16(x[i]), "f16 bits at %lld", (long long)i);
        }
    }
    {
        /* BF16 */
        hb_tensor *tb = hb_tensor_new(&P, D, LOOM_TYPE_BF16, ne);
        for (int64_t i = 0; i < n; i++)
            want[i] = hb_bf16_to_f32(hb_f32_to_bf16(x[i]));
        EXPECT(hb_op(&P, D, LOOM_OP_COPY, NULL, NULL, tb, tx, NULL, NULL) == LOOM_OK, "copy f32->bf16");
        EXPECT(hb_op(&P, D, LOOM_OP_COPY, NULL, NULL, back, tb, NULL, NULL) == LOOM_OK, "copy bf16->f32");
        got = download(back, n);
        EXPECT(hb_close("copy bf16", got, want, n, 0, 1e-7), "F32 -> BF16 -> F32");
        free(got);
        hb_tensor_free(tb);
    }
    {
        /* Transpose: a permuted view [3, 8, 4] of x (strides swapped) copied to contiguous. */
        int64_t tne[4] = {3, 8, 4, 1}, tnb[4] = {32, 4, 96, 384};
        hb_tensor *tv = hb_view(tx, LOOM_TYPE_F32, tne, tnb, 0), *tt = f32_new(tne);
        for (int64_t i2 = 0; i2 < 4; i2++)
            for (int64_t i1 = 0; i1 < 8; i1++)
                for (int64_t i0 = 0; i0 < 3; i0++)
                    want[i0 + 3 * i1 + 24 * i2] = x[i1 + 8 * i0 + 24 * i2];
        EXPECT(hb_op(&P, D, LOOM_OP_COPY, NULL, NULL, tt, tv, NULL, NULL) == LOOM_OK, "copy transpose");
        got = download(tt, n);
        EXPECT(hb_close("copy transpose", got, want, n, 0, 0), "transposed copy");
        free(got);
        hb_tensor_free(tv);
        hb_tensor_free(tt);
    }
    hb_tensor_free(view);
    hb_tensor_free(cache);
    hb_tensor_free(back);
    hb_tensor_free(tx);
    free(x);
    free(want);
}

static void check_get_rows(void *dev, uint32_t type, int64_t d, int64_t rows) {
    int64_t ne[4] = {d, rows, 1, 1};
    int32_t ids[6] = {3, 0, (int32_t)rows - 1, 3, (int32_t)rows / 2, 1};
    int64_t dne[4] = {d, 6, 1, 1};
    float *tab = rand_vec(d * rows, 2.0f);
    hb_tensor *tt = upload(dev, type, ne, tab), *ti = upload_i32(dev, ids, 6),
              *td = hb_tensor_new(&P, dev, LOOM_TYPE_F32, dne);
    double *want = dvec(d * 6);
    float *got;
    for (int r = 0; r < 6; r++)
        for (int64_t i = 0; i < d; i++)
            want[r * d + i] = tab[ids[r] * d + i];
    EXPECT(hb_op(&P, dev, LOOM_OP_GET_ROWS, NULL, NULL, td, tt, ti, NULL) == LOOM_OK, "get_rows type %u",
           (unsigned)type);
    got = download(td, d * 6);
    EXPECT(hb_close("get_rows", got, want, d * 6, 0, 0), "get_rows type %u", (unsigned)type);
    free(got);
    /* An id out of range is an error, not a crash. */
    ids[2] = (int32_t)rows;
    hb_write(ti, 0, ids, sizeof ids);
    EXPECT(hb_op(&P, dev, LOOM_OP_GET_ROWS, NULL, NULL, td, tt, ti, NULL) == LOOM_ERR_INVALID_ARGUMENT,
           "get_rows with a bad id must fail");
    hb_tensor_free(tt);
    hb_tensor_free(ti);
    hb_tensor_free(td);
    free(tab);
    free(want);
}

static void test_get_rows(void) {
    const uint32_t types[6] = {LOOM_TYPE_F32,  LOOM_TYPE_F16,  LOOM_TYPE_BF16,
                               LOOM_TYPE_Q8_0, LOOM_TYPE_Q4_0, LOOM_TYPE_Q4_1};
    for (int t = 0; t < 6; t++)
        check_get_rows(D, types[t], 64, 10);
}

static void test_supports(void) {
    int64_t ne[4] = {64, 4, 1, 1}, xne[4] = {256, 2, 1, 1}, wne[4] = {256, 4, 1, 1}, dne[4] = {4, 2, 1, 1};
    int64_t qne[4] = {320, 2, 3, 1}, kne[4] = {320, 1, 5, 1};
    hb_tensor *a = f32_new(ne), *d = f32_new(ne), *dh = hb_tensor_new(&P, D, LOOM_TYPE_F16, ne);
    hb_tensor *xh = hb_tensor_new(&P, D, LOOM_TYPE_F16, xne), *w = f32_new(wne), *dd = f32_new(dne);
    hb_tensor *q = f32_new(qne), *k = f32_new(kne), *qd = f32_new(qne);
    hb_tensor *wi = hb_tensor_new(&P, D, LOOM_TYPE_I32, wne), *x = f32_new(xne);
    EXPECT(hb_supports(&P, D, LOOM_OP_ADD, NULL, NULL, d, a, a, NULL) == 1, "add is implemented");
    EXPECT(hb_supports(&P, D, LOOM_OP_HADAMARD, NULL, NULL, d, a, NULL, NULL) == 1, "hadamard is implemented");
    EXPECT(hb_supports(&P, D, LOOM_OP_ADD, NULL, NULL, dh, a, a, NULL) == 0, "an F16 dst is not");
    EXPECT(hb_supports(&P, D, LOOM_OP_MATMUL, NULL, NULL, dd, xh, w, NULL) == 0, "F16 activations are not");
    EXPECT(hb_supports(&P, D, LOOM_OP_MATMUL, NULL, NULL, dd, x, wi, NULL) == 0, "I32 weights are not");
    EXPECT(hb_supports(&P, D, LOOM_OP_ATTENTION, NULL, NULL, qd, q, k, k) == 0, "head size 320 is not");
    EXPECT(hb_op(&P, D, LOOM_OP_ATTENTION, NULL, NULL, qd, q, k, k) == LOOM_ERR_UNSUPPORTED, "compute refuses too");
    EXPECT(P.api->last_error(D) != NULL && strstr(P.api->last_error(D), "256") != NULL, "with a reason: %s",
           P.api->last_error(D) ? P.api->last_error(D) : "(none)");
    hb_tensor_free(a);
    hb_tensor_free(d);
    hb_tensor_free(dh);
    hb_tensor_free(xh);
    hb_tensor_free(w);
    hb_tensor_free(dd);
    hb_tensor_free(q);
    hb_tensor_free(k);
    hb_tensor_free(qd);
    hb_tensor_free(wi);
    hb_tensor_free(x);
}

/* A device whose allocations are limited to 4 KiB: weights and tables bigger than that are split
 * and must still give the same results. */
static void test_split(void) {
    void *small = NULL;
    loom_status rc = hb_open(&P, 0, &small, "plugin.opencl.max_alloc", "4k", (const char *)NULL);
    EXPECT(rc == LOOM_OK, "open with max_alloc=4k: %d", rc);
    if (rc != LOOM_OK) return;
    {
        /* Raw round trip across chunk boundaries. */
        uint64_t bytes = 50000;
        unsigned char *src = malloc(bytes), *dst = malloc(bytes);
        hb_tensor *b = hb_buffer_new(&P, small, bytes);
        for (uint64_t i = 0; i < bytes; i++)
            src[i] = (unsigned char)(i * 7 + 3);
        hb_write(b, 0, src, bytes);
        hb_write(b, 4000, src + 100, 300); /* a write straddling the first overlap */
        memcpy(src + 4000, src + 100, 300);
        memset(dst, 0, bytes);
        hb_read(b, 0, dst, bytes);
        EXPECT(memcmp(src, dst, bytes) == 0, "split buffer round trip");
        hb_read(b, 6000, dst, 9000);
        EXPECT(memcmp(src + 6000, dst, 9000) == 0, "split buffer partial read");
        {
            /* An activation crossing a chunk boundary by more than the overlap is refused. */
            int64_t ne[4] = {900, 1, 1, 1};
            hb_tensor *v = hb_view(b, LOOM_TYPE_F32, ne, NULL, 3000),
                      *out = hb_tensor_new(&P, small, LOOM_TYPE_F32, ne);
            float f[8] = {2.0f};
            EXPECT(hb_op(&P, small, LOOM_OP_SCALE, NULL, f, out, v, NULL, NULL) == LOOM_ERR_UNSUPPORTED,
                   "a view across split allocations is refused with UNSUPPORTED");
            hb_tensor_free(v);
            hb_tensor_free(out);
        }
        hb_tensor_free(b);
        free(src);
        free(dst);
    }
    check_matmul(small, LOOM_TYPE_Q8_0, 64, 300, 3, 1, 1); /* 20400 bytes of weights */
    check_matmul(small, LOOM_TYPE_F32, 40, 200, 2, 1, 1);  /* 32000 bytes */
    check_get_rows(small, LOOM_TYPE_Q4_1, 64, 500);        /* 20000 bytes */
    check_get_rows(small, LOOM_TYPE_F16, 24, 500);
    P.api->device_close(small);
}

int main(void) {
    loom_device_info info;
    loom_status rc;
    if (hb_load("opencl", &P) != 0) return 1;
    if (P.init_status == LOOM_ERR_UNAVAILABLE) {
        printf("SKIP: OpenCL backend unavailable: %s\n", P.reason);
        hb_unload(&P);
        return HB_SKIP;
    }
    HB_CHECK(P.init_status == LOOM_OK, "init failed: %d %s", P.init_status, P.reason);
    HB_CHECK(P.api->device_count(P.state) >= 1, "no devices");
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    HB_CHECK(P.api->device_info(P.state, 0, &info) == LOOM_OK, "device_info");
    printf("device 0: %s (%s), %u compute units, %llu bytes\n", info.name, info.description, info.compute_units,
           (unsigned long long)info.memory_bytes);
    rc = hb_open(&P, 0, &D, (const char *)NULL);
    HB_CHECK(rc == LOOM_OK, "device_open: %d", rc);

    test_binary_unary();
    test_norms();
    test_rope();
    test_softmax();
    test_attention();
    test_matmul();
    test_copy();
    test_get_rows();
    test_supports();
    test_split();
    P.api->device_close(D);

    /* The reduction kernels again with work-groups of 16 (the GPU code path: local memory and
     * barriers), whatever the device type. */
    rc = hb_open(&P, 0, &D, "plugin.opencl.work_group", "16", (const char *)NULL);
    HB_CHECK(rc == LOOM_OK, "device_open with work_group=16: %d", rc);
    test_norms();
    test_softmax();
    test_attention();
    P.api->device_close(D);
    hb_unload(&P);
    if (failures != 0) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all OpenCL op tests passed\n");
    return 0;
}

/*
 * test_ops_reference.c - the CPU reference backend, run through the engine's exec, against
 * (1) literal hand-worked values, (2) the `gguf` Python package's decoding of every weight type
 * (fixtures/quant_rows.bin, written by make_quant_fixture.py), (3) the suite's independent
 * double-precision expectations for every op, type and view kind, plus error handling,
 * thread-count determinism and scratch reuse.
 */
#include "ops_suite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
        }                                                                                                              \
    } while (0)

/* ---- small helpers over the host functions ---- */

static loom_tensor *f32_tensor(loom_exec *exec, uint32_t n_dims, int64_t n0, int64_t n1, int64_t n2, const float *v) {
    int64_t ne[4] = {n0, n1, n2, 1};
    loom_tensor *t = NULL;
    loom_status st = loom_host_tensor_new(exec, LOOM_TYPE_F32, n_dims, ne, 0, &t);
    CHECK(st == LOOM_OK, "tensor_new: %s", loom_host_exec_last_error(exec));
    if (v && t) loom_host_tensor_write(exec, t, 0, v, (uint64_t)(n0 * n1 * n2) * sizeof(float));
    return t;
}

static loom_tensor *i32_tensor(loom_exec *exec, int64_t n, const int32_t *v) {
    int64_t ne[1] = {n};
    loom_tensor *t = NULL;
    loom_host_tensor_new(exec, LOOM_TYPE_I32, 1, ne, 0, &t);
    if (t) loom_host_tensor_write(exec, t, 0, v, (uint64_t)n * 4);
    return t;
}

static loom_status run_op(loom_exec *exec, uint32_t op, const int32_t *iv, const float *fv, loom_tensor *dst,
                          loom_tensor *s0, loom_tensor *s1, loom_tensor *s2) {
    loom_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.op = op;
    for (int i = 0; i < 8; i++) {
        if (iv) p.i[i] = iv[i];
        if (fv) p.f[i] = fv[i];
    }
    loom_tensor *srcs[3] = {s0, s1, s2};
    uint32_t n = s2 ? 3 : s1 ? 2 : 1;
    return loom_host_op(exec, &p, dst, srcs, n);
}

/* |got - want| <= tol * (1 + |want|): tol 1e-7 is about one float rounding; 0 means exact. */
static void expect_values(loom_exec *exec, loom_tensor *t, const float *want, size_t n, double tol, const char *what) {
    float got[64];
    loom_status st = loom_host_tensor_read(exec, t, 0, got, n * sizeof(float));
    CHECK(st == LOOM_OK, "%s: read failed: %s", what, loom_host_exec_last_error(exec));
    for (size_t i = 0; i < n; i++)
        CHECK(fabs((double)got[i] - (double)want[i]) <= tol * (1.0 + fabs((double)want[i])),
              "%s[%zu] = %.8g, want %.8g", what, i, (double)got[i], (double)want[i]);
}

/* ---- (1) literal hand-worked values ---- */

static void literal_checks(loom_exec *exec) {
    static const int32_t no_i[8] = {0};
    /* softmax([1, 2, 3]) = e^k / (e + e^2 + e^3) */
    {
        const float x[3] = {1, 2, 3}, want[3] = {0.09003057f, 0.24472847f, 0.66524096f};
        const float f[8] = {1};
        loom_tensor *a = f32_tensor(exec, 1, 3, 1, 1, x), *y = f32_tensor(exec, 1, 3, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_SOFTMAX, no_i, f, y, a, NULL, NULL) == LOOM_OK, "softmax: %s",
              loom_host_exec_last_error(exec));
        expect_values(exec, y, want, 3, 1e-7, "softmax([1,2,3])");
    }
    /* causal softmax: row 0 sees column 0 only, row 1 columns 0..1 (i[1] = 0) */
    {
        const float x[6] = {5, 1, 1, 0, 0, 0}, want[6] = {1, 0, 0, 0.5f, 0.5f, 0};
        const int32_t iv[8] = {1, 0};
        const float f[8] = {1};
        loom_tensor *a = f32_tensor(exec, 2, 3, 2, 1, x), *y = f32_tensor(exec, 2, 3, 2, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_SOFTMAX, iv, f, y, a, NULL, NULL) == LOOM_OK, "causal softmax");
        expect_values(exec, y, want, 6, 1e-7, "causal softmax");
    }
    /* grouped softmax: block 0 = columns 0, 1 closed by the landmark at 2; column 3 is in block
     * 1. With every column visible block 1 is current: joint softmax over {landmark 2, column 3}
     * (scores 0, 0) = 1/2 each, and block 0 splits its landmark's 1/2 as softmax(ln 3, 0) =
     * (3/4, 1/4). Causal rows (row r sees c <= i[1] + r): seeing only columns 0..1 or 0..2, block
     * 0 is current (its own landmark masked): a plain softmax; seeing nothing: zeros. */
    {
        const float l3 = logf(3.0f);
        const float x[12] = {l3, 0, 0, 0, l3, 0, 0, 0, l3, 0, 0, 0};
        const int32_t flags[4] = {0, 0, 1, 0};
        const float f[8] = {1};
        loom_tensor *fl = i32_tensor(exec, 4, flags);
        loom_tensor *a = f32_tensor(exec, 1, 4, 1, 1, x), *y = f32_tensor(exec, 1, 4, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_GROUPED_SOFTMAX, no_i, f, y, a, fl, NULL) == LOOM_OK, "grouped softmax: %s",
              loom_host_exec_last_error(exec));
        const float want[4] = {0.375f, 0.125f, 0, 0.5f};
        expect_values(exec, y, want, 4, 1e-7, "grouped softmax");
        const int32_t iv1[8] = {1, -1}, iv2[8] = {1, 2};
        loom_tensor *a3 = f32_tensor(exec, 2, 4, 3, 1, x), *y3 = f32_tensor(exec, 2, 4, 3, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_GROUPED_SOFTMAX, iv1, f, y3, a3, fl, NULL) == LOOM_OK, "causal grouped softmax");
        const float want1[12] = {0, 0, 0, 0, 1, 0, 0, 0, 0.75f, 0.25f, 0, 0};
        expect_values(exec, y3, want1, 12, 1e-7, "causal grouped softmax, i[1] = -1");
        CHECK(run_op(exec, LOOM_OP_GROUPED_SOFTMAX, iv2, f, y3, a3, fl, NULL) == LOOM_OK, "causal grouped softmax");
        const float want2[12] = {0.75f, 0.25f, 0, 0, 0.375f, 0.125f, 0, 0.5f, 0.375f, 0.125f, 0, 0.5f};
        expect_values(exec, y3, want2, 12, 1e-7, "causal grouped softmax, i[1] = 2");
    }
    /* RoPE of x = [1, 0, 0, 1] at position 1, base 10000, head_dim 4: the pair angles are
     * 1 * 10000^0 = 1 rad and 1 * 10000^(-1/2) = 0.01 rad. */
    {
        const float x[4] = {1, 0, 0, 1};
        const int32_t pos[1] = {1};
        const float f[8] = {10000.0f, 0};
        /* interleaved pairs (0,1), (2,3) */
        const float want0[4] = {0.54030231f, 0.84147098f, -0.0099998333f, 0.99995000f};
        /* half-split pairs (0,2), (1,3) */
        const float want1[4] = {0.54030231f, -0.0099998333f, 0.84147098f, 0.99995000f};
        for (int mode = 0; mode < 2; mode++) {
            const int32_t iv[8] = {mode, 0};
            loom_tensor *a = f32_tensor(exec, 3, 4, 1, 1, x), *p = i32_tensor(exec, 1, pos);
            loom_tensor *y = f32_tensor(exec, 3, 4, 1, 1, NULL);
            CHECK(run_op(exec, LOOM_OP_ROPE, iv, f, y, a, p, NULL) == LOOM_OK, "rope: %s",
                  loom_host_exec_last_error(exec));
            expect_values(exec, y, mode ? want1 : want0, 4, 1e-7, mode ? "rope half-split" : "rope interleaved");
        }
    }
    /* RMS norm of [3, 4]: mean square 12.5 -> [3, 4] / 3.5355339 */
    {
        const float x[2] = {3, 4}, want[2] = {0.84852814f, 1.1313708f}, f[8] = {0};
        loom_tensor *a = f32_tensor(exec, 1, 2, 1, 1, x), *y = f32_tensor(exec, 1, 2, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_RMS_NORM, no_i, f, y, a, NULL, NULL) == LOOM_OK, "rms_norm");
        expect_values(exec, y, want, 2, 1e-7, "rms_norm([3,4])");
    }
    /* layer norm of [1, 2, 3, 4]: mean 2.5, variance 1.25; gain 2, bias 1 */
    {
        const float x[4] = {1, 2, 3, 4}, g[4] = {2, 2, 2, 2}, b[4] = {1, 1, 1, 1};
        const float want[4] = {-1.6832816f, 0.10557281f, 1.8944272f, 3.6832816f}, f[8] = {0};
        loom_tensor *a = f32_tensor(exec, 1, 4, 1, 1, x), *y = f32_tensor(exec, 1, 4, 1, 1, NULL);
        loom_tensor *tg = f32_tensor(exec, 1, 4, 1, 1, g), *tb = f32_tensor(exec, 1, 4, 1, 1, b);
        CHECK(run_op(exec, LOOM_OP_LAYER_NORM, no_i, f, y, a, tg, tb) == LOOM_OK, "layer_norm");
        expect_values(exec, y, want, 4, 2e-7, "layer_norm([1,2,3,4])");
    }
    /* silu(1) = 1 / (1 + e^-1); gelu(1) = 0.5 (1 + erf(1/sqrt 2)) = Phi(1); gelu(-1) = -Phi(-1) */
    {
        const float x[2] = {1, -1};
        const float want_silu[2] = {0.73105858f, -0.26894142f}, want_gelu[2] = {0.84134475f, -0.15865525f};
        loom_tensor *a = f32_tensor(exec, 1, 2, 1, 1, x), *y = f32_tensor(exec, 1, 2, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_SILU, NULL, NULL, y, a, NULL, NULL) == LOOM_OK, "silu");
        expect_values(exec, y, want_silu, 2, 1e-7, "silu(1,-1)");
        CHECK(run_op(exec, LOOM_OP_GELU, NULL, NULL, y, a, NULL, NULL) == LOOM_OK, "gelu");
        expect_values(exec, y, want_gelu, 2, 1e-7, "gelu(1,-1)");
    }
    /* Hadamard of [1, 2, 3, 4]: (1+2+3+4, 1-2+3-4, 1+2-3-4, 1-2-3+4) / 2 */
    {
        const float x[4] = {1, 2, 3, 4}, want[4] = {5, -1, -2, 0};
        loom_tensor *a = f32_tensor(exec, 1, 4, 1, 1, x), *y = f32_tensor(exec, 1, 4, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_HADAMARD, no_i, NULL, y, a, NULL, NULL) == LOOM_OK, "hadamard");
        expect_values(exec, y, want, 4, 1e-6, "hadamard([1,2,3,4])");
    }
    /* y = x W^T with x = [1, 2, 3], W = [[1, 0, -1], [2, 2, 2]] -> [-2, 12] */
    {
        const float x[3] = {1, 2, 3}, w[6] = {1, 0, -1, 2, 2, 2}, want[2] = {-2, 12};
        loom_tensor *a = f32_tensor(exec, 2, 3, 1, 1, x), *tw = f32_tensor(exec, 2, 3, 2, 1, w);
        loom_tensor *y = f32_tensor(exec, 2, 2, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_MATMUL, NULL, NULL, y, a, tw, NULL) == LOOM_OK, "matmul: %s",
              loom_host_exec_last_error(exec));
        expect_values(exec, y, want, 2, 0, "matmul 2x3");
    }
    /* Q4_0 block with d = 0.5 (fp16 0x3800) and nibbles j % 16: weight j = ((j%16 for the low
     * nibbles) - 8) * 0.5, the high nibbles hold 15 - (j%16). Matmul with x = e_0 + e_17. */
    {
        unsigned char blk[18];
        blk[0] = 0x00, blk[1] = 0x38;
        for (int j = 0; j < 16; j++)
            blk[2 + j] = (unsigned char)(j | ((15 - j) << 4));
        int64_t ne[2] = {32, 1};
        loom_tensor *w = NULL;
        CHECK(loom_tensor_wrap_host("q4_0.literal", LOOM_TYPE_Q4_0, 2, ne, blk, LOOM_TENSOR_WEIGHT, &w) == LOOM_OK,
              "wrap");
        float x[32] = {0};
        x[0] = 1.0f;  /* weight 0 = (0 - 8) * 0.5 = -4 */
        x[17] = 2.0f; /* weight 17 = high nibble of byte 1 = 14 -> (14 - 8) * 0.5 = 3 */
        loom_tensor *a = f32_tensor(exec, 2, 32, 1, 1, x), *y = f32_tensor(exec, 2, 1, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_MATMUL, NULL, NULL, y, a, w, NULL) == LOOM_OK, "q4_0 matmul");
        const float want[1] = {-4.0f + 2.0f * 3.0f};
        expect_values(exec, y, want, 1, 0, "q4_0 literal matmul");
        const int32_t id[1] = {0};
        loom_tensor *ids = i32_tensor(exec, 1, id), *row = f32_tensor(exec, 2, 32, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_GET_ROWS, NULL, NULL, row, w, ids, NULL) == LOOM_OK, "q4_0 get_rows");
        float wantrow[32];
        for (int j = 0; j < 32; j++)
            wantrow[j] = (float)((j < 16 ? j : 15 - (j - 16)) - 8) * 0.5f;
        expect_values(exec, row, wantrow, 32, 0, "q4_0 literal row");
        loom_exec_release_weights(exec);
        loom_tensor_free_wrapped(w);
    }
    /* attention with a single visible key returns that key's value row */
    {
        const float q[4] = {0.3f, -1, 2, 0.5f}, k[8] = {1, 2, 3, 4, 5, 6, 7, 8}, v[8] = {9, 8, 7, 6, 5, 4, 3, 2};
        loom_tensor *tq = f32_tensor(exec, 3, 4, 1, 1, q), *tk = f32_tensor(exec, 3, 4, 1, 2, k);
        loom_tensor *tv = f32_tensor(exec, 3, 4, 1, 2, v), *y = f32_tensor(exec, 3, 4, 1, 1, NULL);
        const int32_t iv[8] = {0};
        CHECK(run_op(exec, LOOM_OP_ATTENTION, iv, NULL, y, tq, tk, tv) == LOOM_OK, "attention: %s",
              loom_host_exec_last_error(exec));
        expect_values(exec, y, v, 4, 0, "attention one key");
    }
    loom_exec_reset_scratch(exec);
}

/* ---- (2) weight decoding against the gguf package ---- */

static void fixture_checks(loom_exec *exec) {
    const char *path = LOOM_OPS_FIXTURE_DIR "/quant_rows.bin";
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    int n_types = 0;
    uint32_t hdr[4];
    while (fread(hdr, 4, 4, f) == 4) {
        uint32_t type = hdr[0], rows = hdr[1], cols = hdr[2], nbytes = hdr[3];
        unsigned char *raw = malloc(nbytes);
        float *vals = malloc(sizeof(float) * rows * cols);
        if (fread(raw, 1, nbytes, f) != nbytes ||
            fread(vals, sizeof(float), (size_t)rows * cols, f) != (size_t)rows * cols) {
            CHECK(0, "truncated fixture");
            free(raw);
            free(vals);
            break;
        }
        n_types++;
        int64_t ne[2] = {cols, rows};
        loom_tensor *w = NULL;
        CHECK(loom_tensor_wrap_host("fixture", type, 2, ne, raw, LOOM_TENSOR_WEIGHT, &w) == LOOM_OK, "wrap type %u",
              type);
        /* every row through GET_ROWS, in reverse order */
        int32_t ids[8];
        for (uint32_t r = 0; r < rows; r++)
            ids[r] = (int32_t)(rows - 1 - r);
        loom_tensor *tid = i32_tensor(exec, rows, ids), *out = f32_tensor(exec, 2, cols, rows, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_GET_ROWS, NULL, NULL, out, w, tid, NULL) == LOOM_OK, "get_rows type %u: %s", type,
              loom_host_exec_last_error(exec));
        float *got = malloc(sizeof(float) * rows * cols);
        loom_host_tensor_read(exec, out, 0, got, sizeof(float) * rows * cols);
        int bad = 0;
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t i = 0; i < cols; i++) {
                float want = vals[(rows - 1 - r) * cols + i], g = got[r * cols + i];
                if (fabsf(g - want) > 1e-6f * fabsf(want) + 1e-9f && bad++ < 3)
                    CHECK(0, "type %u row %u col %u: %.9g, gguf says %.9g", type, rows - 1 - r, i, (double)g,
                          (double)want);
            }
        CHECK(bad == 0, "type %u: %d values differ from the gguf package", type, bad);
        /* matmul with x = a ramp, against a double sum over the gguf values */
        float *x = malloc(sizeof(float) * cols);
        for (uint32_t i = 0; i < cols; i++)
            x[i] = (float)((int)(i % 13) - 6) / 8.0f;
        loom_tensor *tx = f32_tensor(exec, 2, cols, 1, 1, x), *ty = f32_tensor(exec, 2, rows, 1, 1, NULL);
        CHECK(run_op(exec, LOOM_OP_MATMUL, NULL, NULL, ty, tx, w, NULL) == LOOM_OK, "matmul type %u", type);
        float y[8];
        loom_host_tensor_read(exec, ty, 0, y, sizeof(float) * rows);
        for (uint32_t r = 0; r < rows; r++) {
            double s = 0, mag = 0;
            for (uint32_t i = 0; i < cols; i++) {
                s += (double)x[i] * (double)vals[r * cols + i];
                mag += fabs((double)x[i] * (double)vals[r * cols + i]);
            }
            CHECK(fabs((double)y[r] - s) <= 1e-6 * mag + 1e-9, "matmul type %u row %u: %.9g, want %.9g", type, r,
                  (double)y[r], s);
        }
        free(x);
        free(got);
        loom_exec_reset_scratch(exec);
        loom_exec_release_weights(exec);
        loom_tensor_free_wrapped(w);
        free(raw);
        free(vals);
    }
    fclose(f);
    CHECK(n_types == 7, "fixture holds %d types, expected 7", n_types);
}

/* ---- (3) the suite against its expectations ---- */

static void suite_checks(loom_exec *exec, loom_exec *exec1, const th_case *cases, size_t n_cases) {
    size_t failed = 0;
    for (size_t ci = 0; ci < n_cases; ci++) {
        const th_case *c = &cases[ci];
        double *got = malloc(c->n_out * sizeof(double)), *got1 = malloc(c->n_out * sizeof(double));
        loom_status st = th_case_run(exec, c, got);
        if (st != LOOM_OK) {
            CHECK(0, "case '%s': %s: %s", c->name, loom_status_string(st), loom_host_exec_last_error(exec));
            failed++;
        } else {
            size_t bad = 0;
            for (size_t i = 0; i < c->n_out; i++) {
                double tol = c->atol + c->rtol * c->mag[i];
                int ok = fabs(got[i] - c->expect[i]) <= tol || (isnan(got[i]) && isnan(c->expect[i]));
                if (!ok && bad++ < 3)
                    fprintf(stderr, "  case '%s' [%zu]: got %.9g want %.9g (tol %.3g)\n", c->name, i, got[i],
                            c->expect[i], tol);
            }
            CHECK(bad == 0, "case '%s': %zu of %zu values out of tolerance", c->name, bad, c->n_out);
            if (bad) failed++;
            /* one thread must give bit-identical results */
            st = th_case_run(exec1, c, got1);
            CHECK(st == LOOM_OK && !memcmp(got, got1, c->n_out * sizeof(double)),
                  "case '%s': results differ between 1 and 3 threads", c->name);
        }
        free(got);
        free(got1);
    }
    printf("reference suite: %zu cases, %zu failed\n", n_cases, failed);
}

/* ---- errors, scratch reuse, placement ---- */

static void error_checks(loom_exec *exec) {
    /* out-of-range row id: an error on the exec, not a crash */
    const float table[6] = {1, 2, 3, 4, 5, 6};
    const int32_t bad_ids[2] = {0, 7};
    loom_tensor *t = f32_tensor(exec, 2, 3, 2, 1, table), *ids = i32_tensor(exec, 2, bad_ids);
    loom_tensor *y = f32_tensor(exec, 2, 3, 2, 1, NULL);
    loom_status st = run_op(exec, LOOM_OP_GET_ROWS, NULL, NULL, y, t, ids, NULL);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "bad row id: status %d", st);
    CHECK(strstr(loom_host_exec_last_error(exec), "out of range") != NULL, "bad row id message: '%s'",
          loom_host_exec_last_error(exec));
    /* mismatched matmul shapes */
    loom_tensor *x = f32_tensor(exec, 2, 4, 1, 1, NULL), *w = f32_tensor(exec, 2, 3, 2, 1, NULL);
    loom_tensor *o = f32_tensor(exec, 2, 2, 1, 1, NULL);
    st = run_op(exec, LOOM_OP_MATMUL, NULL, NULL, o, x, w, NULL);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT && strstr(loom_host_exec_last_error(exec), "matmul"),
          "matmul mismatch: %d '%s'", st, loom_host_exec_last_error(exec));
    /* unknown op */
    loom_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.op = 999;
    loom_tensor *srcs[1] = {x};
    st = loom_host_op(exec, &p, x, srcs, 1);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "unknown op: %d", st);
    /* a view past the end of its base */
    int64_t ne[1] = {5};
    loom_tensor *v = NULL;
    st = loom_host_tensor_view(exec, x, 1, ne, NULL, 0, &v);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT && v == NULL, "oversized view: %d", st);
    /* reading past the end */
    float buf[8];
    st = loom_host_tensor_read(exec, x, 8, buf, 16);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "read past end: %d", st);
    /* writing a weight */
    int64_t wne[1] = {6};
    loom_tensor *wt = NULL;
    loom_tensor_wrap_host("w", LOOM_TYPE_F32, 1, wne, table, LOOM_TENSOR_WEIGHT, &wt);
    st = loom_host_tensor_write(exec, wt, 0, table, 4);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "weight write: %d", st);
    loom_tensor *ws[1] = {x};
    p.op = LOOM_OP_SCALE;
    st = loom_host_op(exec, &p, wt, ws, 1);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "weight as dst: %d", st);
    loom_tensor_free_wrapped(wt);
    /* bad types */
    int64_t qne[2] = {32, 1};
    loom_tensor *q = NULL;
    st = loom_host_tensor_new(exec, LOOM_TYPE_Q4_0, 2, qne, 0, &q);
    CHECK(st == LOOM_OK, "q4_0 scratch tensor");
    srcs[0] = q;
    p.op = LOOM_OP_SILU;
    loom_tensor *qo = f32_tensor(exec, 2, 32, 1, 1, NULL);
    st = loom_host_op(exec, &p, qo, srcs, 1);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "silu of q4_0: %d", st);
    int64_t odd[1] = {33};
    st = loom_host_tensor_new(exec, LOOM_TYPE_Q8_0, 1, odd, 0, &q);
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT, "q8_0 of 33 elements: %d", st);
    loom_exec_reset_scratch(exec);

    /* scratch memory is reused after a reset (no allocation in the steady state) */
    int64_t sne[1] = {1000};
    loom_tensor *a = NULL, *b = NULL;
    loom_host_tensor_new(exec, LOOM_TYPE_F32, 1, sne, 0, &a);
    void *pa = a ? a->view.data : NULL;
    loom_exec_reset_scratch(exec);
    loom_host_tensor_new(exec, LOOM_TYPE_F32, 1, sne, 0, &b);
    CHECK(b && pa == b->view.data && a == b, "scratch not reused after reset");
    /* persistent tensors survive a reset */
    loom_tensor *kv = NULL;
    const float val[2] = {42, 43};
    int64_t kne[1] = {2};
    loom_host_tensor_new(exec, LOOM_TYPE_F32, 1, kne, LOOM_TENSOR_PERSISTENT, &kv);
    loom_host_tensor_write(exec, kv, 0, val, sizeof val);
    loom_exec_reset_scratch(exec);
    float back[2] = {0, 0};
    CHECK(loom_host_tensor_read(exec, kv, 0, back, sizeof back) == LOOM_OK && back[0] == 42 && back[1] == 43,
          "persistent tensor lost");
    loom_tensor_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(loom_host_tensor_info(kv, &info) == LOOM_OK && info.n_dims == 1 && info.ne[0] == 2 &&
              info.type == LOOM_TYPE_F32 && (info.flags & LOOM_TENSOR_PERSISTENT) && info.name && !info.name[0],
          "tensor_info");
}

int main(void) {
    loom_engine *engine = th_engine_create();
    if (!engine) return 1;
    char err[512] = "";
    loom_exec *exec = NULL, *exec1 = NULL;
    loom_status st = loom_exec_create(engine, "cpu", 3, &exec, err, sizeof err);
    if (st != LOOM_OK) {
        fprintf(stderr, "cannot create a cpu exec: %s\n", err);
        loom_engine_free(engine);
        return 1;
    }
    st = loom_exec_create(engine, "cpu", 1, &exec1, err, sizeof err);
    CHECK(st == LOOM_OK, "second exec: %s", err);
    CHECK(!strcmp(loom_exec_device_name(exec), "cpu"), "device name '%s'", loom_exec_device_name(exec));
    CHECK(loom_exec_device_count(exec) == 1, "a cpu exec has %u devices", loom_exec_device_count(exec));

    literal_checks(exec);
    fixture_checks(exec);
    size_t n_cases = 0;
    th_case *cases = th_cases_build(&n_cases);
    suite_checks(exec, exec1, cases, n_cases);
    th_cases_free(cases, n_cases);
    error_checks(exec);

    const char *report = loom_exec_placement_report(exec);
    CHECK(strstr(report, "matmul") && strstr(report, "cpu") && strstr(report, "q4_k"), "placement report:\n%s", report);
    printf("%s", report);

    /* unknown backends are reported clearly */
    loom_exec *bad = NULL;
    st = loom_exec_create(engine, "no_such_backend", 1, &bad, err, sizeof err);
    CHECK(st == LOOM_ERR_NOT_FOUND && bad == NULL && strstr(err, "no_such_backend"), "unknown backend: %d '%s'", st,
          err);

    loom_exec_free(exec1);
    loom_exec_free(exec);
    loom_engine_free(engine);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}

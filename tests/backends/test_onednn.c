/*
 * test_onednn.c - the oneDNN backend through the plugin ABI.
 *
 *   test_onednn matmul    every path (f32, bf16, int8 where available, auto) and weight type,
 *                         prepared and unprepared, batched and strided, against a double
 *                         reference with each path's worst-case rounding bound
 *   test_onednn devices   device listing and options
 *   test_onednn no-vnni   run under ONEDNN_MAX_CPU_ISA=AVX2: the int8 path must be refused with
 *                         a reason (the device declines its matmuls: the engine falls back),
 *                         auto must still work (f32)
 */
#include "harness.h"
#include "ref.h"

#include <string.h>

static hb_plugin P;
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

enum { PATH_F32, PATH_BF16, PATH_INT8 };

static double row_amax(const float *v, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fabs((double)v[i]) > m ? fabs((double)v[i]) : m;
    return m;
}

/*
 * y = x w^T on `dev` for a weight of `wtype`, optionally prepared; checks every output against
 * the double reference on the decoded weights within the path's rounding bound:
 *   f32 : 1e-5 * sum |x||w| + 1e-6
 *   bf16: each operand rounded to bf16 (relative 2^-9 each): 2^-7 * sum |x||w|
 *   int8: |x - x~| <= sx/2, |w - w~| <= sw/2: sum (|x| sw/2 + |w| sx/2 + sx sw / 4), *1.01
 */
static void check(void *dev, int path, uint32_t wtype, int prepare, int64_t k, int64_t m, int64_t n, int64_t b2x,
                  int64_t b2w, int64_t x_pad) {
    int64_t wne[4] = {k, m, b2w, 1}, dne[4] = {m, n, b2x, 1};
    int64_t xne[4] = {k, n, b2x, 1}, xbig[4] = {k + x_pad, n, b2x, 1};
    int64_t nx = (k + x_pad) * n * b2x, nw = k * m * b2w, nd = m * n * b2x;
    float *xv = malloc((size_t)nx * 4), *wv = malloc((size_t)nw * 4), *got = malloc((size_t)nd * 4);
    double *want = calloc((size_t)nd, sizeof *want);
    void *raw = malloc(hb_row_bytes(wtype, k) * (uint64_t)(m * b2w));
    hb_tensor *tx, *xview, *tw, *td;
    int64_t xnb[4];
    void *extra = NULL;
    loom_status rc;
    for (int64_t i = 0; i < nx; i++)
        xv[i] = hb_rand() * 2.0f;
    for (int64_t i = 0; i < nw; i++)
        wv[i] = hb_rand() * 0.5f;
    hb_encode(wtype, wv, raw, nw);
    hb_decode(wtype, raw, wv, nw);
    tx = hb_tensor_new(&P, dev, LOOM_TYPE_F32, xbig);
    hb_write(tx, 0, xv, (uint64_t)nx * 4);
    xnb[0] = 4;
    xnb[1] = (k + x_pad) * 4;
    xnb[2] = xnb[1] * n;
    xnb[3] = xnb[2] * b2x;
    xview = hb_view(tx, LOOM_TYPE_F32, xne, xnb, 0);
    tw = hb_tensor_new(&P, dev, wtype, wne);
    hb_write(tw, 0, raw, hb_row_bytes(wtype, k) * (uint64_t)(m * b2w));
    td = hb_tensor_new(&P, dev, LOOM_TYPE_F32, dne);
    if (prepare) {
        tw->v.flags = LOOM_TENSOR_WEIGHT;
        rc = P.api->weight_prepare(dev, &tw->v, &extra);
        EXPECT(rc == LOOM_OK, "weight_prepare: %d", rc);
        tw->v.extra = extra;
    }
    rc = hb_op(&P, dev, LOOM_OP_MATMUL, NULL, NULL, td, xview, tw, NULL);
    EXPECT(rc == LOOM_OK, "matmul: %d (%s)", rc, P.api->last_error(dev) ? P.api->last_error(dev) : "");
    hb_read(td, 0, got, (uint64_t)nd * 4);
    {
        /* Reference on the contiguous activations. */
        float *xc = malloc((size_t)(k * n * b2x) * 4);
        int64_t bad = 0;
        double worst = 0;
        for (int64_t r = 0; r < n * b2x; r++)
            memcpy(xc + r * k, xv + r * (k + x_pad), (size_t)k * 4);
        ref_matmul(xc, wv, want, k, n, m, b2x, 1, b2w, 1);
        for (int64_t b = 0; b < b2x; b++)
            for (int64_t r = 0; r < n; r++)
                for (int64_t c = 0; c < m; c++) {
                    const float *xr = xc + (b * n + r) * k;
                    const float *wr = wv + ((b / (b2x / b2w)) * m + c) * k;
                    double sabs = 0, sx_sum = 0, sw_sum = 0, tol;
                    double sx = row_amax(xr, k) / 127.0, sw = row_amax(wr, k) / 127.0;
                    double g = (double)got[(b * n + r) * m + c], wnt = want[(b * n + r) * m + c];
                    for (int64_t j = 0; j < k; j++) {
                        sabs += fabs((double)xr[j] * (double)wr[j]);
                        sx_sum += fabs((double)xr[j]);
                        sw_sum += fabs((double)wr[j]);
                    }
                    if (path == PATH_F32)
                        tol = 1e-5 * sabs + 1e-6;
                    else if (path == PATH_BF16)
                        tol = (1.0 / 128.0) * sabs + 1e-6;
                    else
                        tol = 1.01 * (sx_sum * sw / 2 + sw_sum * sx / 2 + (double)k * sx * sw / 4) + 1e-6;
                    if (!(fabs(g - wnt) <= tol)) {
                        if (bad++ == 0)
                            fprintf(stderr, "  at [%lld,%lld,%lld]: got %.7g want %.7g tol %.3g\n", (long long)b,
                                    (long long)r, (long long)c, g, wnt, tol);
                    }
                    if (fabs(g - wnt) / (tol > 0 ? tol : 1) > worst) worst = fabs(g - wnt) / (tol > 0 ? tol : 1);
                }
        EXPECT(bad == 0, "path %d type %u prepared %d k=%lld m=%lld n=%lld b=%lld/%lld: %lld outside the bound", path,
               (unsigned)wtype, prepare, (long long)k, (long long)m, (long long)n, (long long)b2x, (long long)b2w,
               (long long)bad);
        free(xc);
    }
    if (extra != NULL) P.api->weight_release(dev, extra);
    hb_tensor_free(xview);
    hb_tensor_free(tx);
    hb_tensor_free(tw);
    hb_tensor_free(td);
    free(xv);
    free(wv);
    free(got);
    free(want);
    free(raw);
}

static void run_path(const char *mode, int path) {
    const uint32_t types[6] = {LOOM_TYPE_F32,  LOOM_TYPE_F16,  LOOM_TYPE_BF16,
                               LOOM_TYPE_Q8_0, LOOM_TYPE_Q4_0, LOOM_TYPE_Q4_1};
    void *dev = NULL;
    loom_status rc = hb_open(&P, 0, &dev, "plugin.onednn.mode", mode, (const char *)NULL);
    EXPECT(rc == LOOM_OK, "open mode=%s: %d", mode, rc);
    if (rc != LOOM_OK) return;
    for (int t = 0; t < 6; t++) {
        /* Prepared weights go through the path; F32 weights on the f32 path are read in place. */
        check(dev, path, types[t], 1, 96, 37, 1, 1, 1, 0);
        check(dev, path, types[t], 1, 64, 29, 13, 1, 1, 8);
        /* Unprepared weights always take the f32 path. */
        check(dev, PATH_F32, types[t], 0, 64, 17, 5, 1, 1, 0);
    }
    check(dev, path, LOOM_TYPE_F16, 1, 32, 7, 3, 6, 2, 0); /* batches shared by groups of 3 */
    check(dev, PATH_F32, LOOM_TYPE_F32, 0, 40, 9, 4, 4, 4, 4);
    check(dev, path, LOOM_TYPE_Q4_1, 1, 576, 192, 64, 1, 1, 0); /* SmolLM2's attn_k shape */
    check(dev, path, LOOM_TYPE_Q4_1, 1, 576, 192, 64, 1, 1, 0); /* the same again: cached primitive */
    P.api->device_close(dev);
}

static int describe(loom_device_info *info) {
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    HB_CHECK(P.api->device_info(P.state, 0, info) == LOOM_OK, "device_info");
    printf("onednn:0  %s\n    %s\n    %u compute units, %llu bytes, caps 0x%llx\n", info->name, info->description,
           info->compute_units, (unsigned long long)info->memory_bytes, (unsigned long long)info->capabilities);
    return 0;
}

static int load(void) {
    if (hb_load("onednn", &P) != 0) return 1;
    if (P.init_status == LOOM_ERR_UNAVAILABLE) {
        printf("SKIP: oneDNN backend unavailable: %s\n", P.reason);
        hb_unload(&P);
        return HB_SKIP;
    }
    HB_CHECK(P.init_status == LOOM_OK, "init: %d %s", P.init_status, P.reason);
    return 0;
}

static int test_matmul(void) {
    loom_device_info info;
    int rc = load();
    if (rc != 0) return rc;
    describe(&info);
    run_path("f32", PATH_F32);
    if (strstr(info.description, "bf16 (unavailable") == NULL)
        run_path("bf16", PATH_BF16);
    else
        printf("bf16 path not available here: not tested\n");
    if (strstr(info.description, "int8 (unavailable") == NULL)
        run_path("int8", PATH_INT8);
    else
        printf("int8 path not available here: not tested\n");
    run_path("auto", strstr(info.description, "bf16 (native)") != NULL ? PATH_BF16 : PATH_F32);
    {
        /* Everything but matmul is left to the CPU reference. */
        void *dev = NULL;
        int64_t ne[4] = {8, 2, 1, 1};
        hb_tensor *a, *d;
        HB_CHECK(hb_open(&P, 0, &dev, (const char *)NULL) == LOOM_OK, "open");
        a = hb_tensor_new(&P, dev, LOOM_TYPE_F32, ne);
        d = hb_tensor_new(&P, dev, LOOM_TYPE_F32, ne);
        EXPECT(hb_supports(&P, dev, LOOM_OP_ADD, NULL, NULL, d, a, a, NULL) == 0, "add is not supported");
        EXPECT(hb_supports(&P, dev, LOOM_OP_RMS_NORM, NULL, NULL, d, a, NULL, NULL) == 0, "rms_norm is not supported");
        EXPECT(hb_op(&P, dev, LOOM_OP_SOFTMAX, NULL, NULL, d, a, NULL, NULL) == LOOM_ERR_UNSUPPORTED,
               "compute refuses other ops");
        hb_tensor_free(a);
        hb_tensor_free(d);
        P.api->device_close(dev);
    }
    hb_unload(&P);
    if (failures != 0) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("all oneDNN matmul tests passed\n");
    return 0;
}

static int test_devices(void) {
    loom_device_info info;
    void *dev = NULL;
    int rc = load();
    if (rc != 0) return rc;
    HB_CHECK(P.api->device_count(P.state) == 1, "one device");
    describe(&info);
    HB_CHECK(info.name[0] != '\0' && info.compute_units > 0 && info.memory_bytes > 0, "device info filled");
    HB_CHECK(info.capabilities & LOOM_BACKEND_CAP_HOST_MEMORY, "host memory");
    HB_CHECK(strstr(info.description, "f32") != NULL, "paths listed");
    HB_CHECK(hb_open(&P, 1, &dev, (const char *)NULL) == LOOM_ERR_NOT_FOUND, "device 1 does not exist");
    HB_CHECK(hb_open(&P, 0, &dev, "plugin.onednn.mode", "fp64", (const char *)NULL) == LOOM_ERR_CONFIG, "unknown mode");
    HB_CHECK(hb_open(&P, 0, &dev, "plugin.onednn.mode", "f32", "threads", "2", (const char *)NULL) == LOOM_OK,
             "open f32");
    P.api->device_close(dev);
    hb_unload(&P);
    printf("device listing and options OK\n");
    return 0;
}

static int test_no_vnni(void) {
    loom_device_info info;
    void *dev = NULL;
    loom_status rc;
    int r = load();
    if (r != 0) return r;
    describe(&info);
    if (getenv("ONEDNN_MAX_CPU_ISA") == NULL) {
        printf("SKIP: run with ONEDNN_MAX_CPU_ISA=AVX2\n");
        hb_unload(&P);
        return HB_SKIP;
    }
    HB_CHECK(strstr(info.description, "int8 (unavailable: no VNNI)") != NULL, "int8 listed as unavailable: %s",
             info.description);
    rc = hb_open(&P, 0, &dev, "plugin.onednn.mode", "int8", (const char *)NULL);
    printf("mode=int8: status %d, logged: %s\n", rc, hb_last_log());
    HB_CHECK(rc == LOOM_OK && dev != NULL, "the device opens (and declines its matmuls)");
    HB_CHECK(strstr(hb_last_log(), "no VNNI") != NULL && strstr(hb_last_log(), "AVX2") != NULL &&
                 strstr(hb_last_log(), "fall back") != NULL,
             "the reason names the missing VNNI, the ISA and the fallback");
    {
        /* Every matmul is declined, so the engine runs it on the CPU reference; compute refuses
         * with the reason rather than computing saturated sums. */
        int64_t xne[4] = {64, 2, 1, 1}, wne[4] = {64, 4, 1, 1}, dne[4] = {4, 2, 1, 1};
        hb_tensor *x = hb_tensor_new(&P, dev, LOOM_TYPE_F32, xne), *w = hb_tensor_new(&P, dev, LOOM_TYPE_Q8_0, wne),
                  *d = hb_tensor_new(&P, dev, LOOM_TYPE_F32, dne);
        HB_CHECK(hb_supports(&P, dev, LOOM_OP_MATMUL, NULL, NULL, d, x, w, NULL) == 0, "matmul declined");
        HB_CHECK(hb_op(&P, dev, LOOM_OP_MATMUL, NULL, NULL, d, x, w, NULL) == LOOM_ERR_UNAVAILABLE, "compute refuses");
        HB_CHECK(P.api->last_error(dev) != NULL && strstr(P.api->last_error(dev), "no VNNI") != NULL,
                 "last_error gives the reason");
        hb_tensor_free(x);
        hb_tensor_free(w);
        hb_tensor_free(d);
        P.api->device_close(dev);
    }
    /* auto (and f32) still work: f32 here, since AVX2 has no native bf16. */
    run_path("auto", PATH_F32);
    hb_unload(&P);
    if (failures != 0) return 1;
    printf("int8 refused without VNNI (matmuls declined); auto runs f32\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "matmul") == 0) return test_matmul();
    if (argc >= 2 && strcmp(argv[1], "devices") == 0) return test_devices();
    if (argc >= 2 && strcmp(argv[1], "no-vnni") == 0) return test_no_vnni();
    fprintf(stderr, "usage: test_onednn matmul | devices | no-vnni\n");
    return 2;
}

/*
 * test_exec_dispatch.c - the engine's exec with the fake device-memory backend "testdev" first
 * and the CPU reference as fallback: device list, weight upload once per exec, exec-owned
 * weights that change, failure reporting, and mixed placement inside one computation.
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

static unsigned long long bytes_in(loom_exec *exec, const char *dev) {
    const char *r = loom_exec_placement_report(exec);
    char key[64];
    snprintf(key, sizeof key, "transfers %s: ", dev);
    const char *p = strstr(r, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static loom_tensor *f32(loom_exec *e, int64_t n0, int64_t n1, const float *v, uint32_t flags) {
    int64_t ne[2] = {n0, n1};
    loom_tensor *t = NULL;
    CHECK(loom_host_tensor_new(e, LOOM_TYPE_F32, 2, ne, flags, &t) == LOOM_OK, "tensor_new: %s",
          loom_host_exec_last_error(e));
    if (t && v) CHECK(loom_host_tensor_write(e, t, 0, v, (uint64_t)(n0 * n1) * 4) == LOOM_OK, "write");
    return t;
}

static loom_status op(loom_exec *e, uint32_t code, float f0, loom_tensor *dst, loom_tensor *a, loom_tensor *b) {
    loom_op_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.op = code;
    p.f[0] = f0;
    loom_tensor *s[2] = {a, b};
    return loom_host_op(e, &p, dst, s, b ? 2 : 1);
}

int main(void) {
    loom_engine *engine = th_engine_create();
    if (!engine) return 1;
    if (!loom_engine_find_plugin(engine, LOOM_PLUGIN_KIND_BACKEND, "testdev")) {
        fprintf(stderr, "the testdev plugin was not found (LOOM_OPT_PLUGIN_PATH)\n");
        loom_engine_free(engine);
        return 1;
    }
    char err[512] = "";
    loom_exec *e = NULL;
    CHECK(loom_exec_create(engine, " testdev , cpu,testdev", 2, &e, err, sizeof err) == LOOM_OK, "exec: %s", err);
    if (!e) return 1;
    CHECK(loom_exec_device_count(e) == 2, "%u devices", loom_exec_device_count(e));
    CHECK(!strcmp(loom_exec_device_name(e), "testdev") && !strcmp(loom_exec_device_name_at(e, 1), "cpu"),
          "device names %s, %s", loom_exec_device_name(e), loom_exec_device_name_at(e, 1));

    /* a host weight is uploaded once, however many ops use it */
    const float wv[6] = {1, 2, 3, 4, 5, 6}, xv[3] = {1, 1, 1};
    int64_t wne[2] = {3, 2};
    loom_tensor *w = NULL;
    loom_tensor_wrap_host("w", LOOM_TYPE_F32, 2, wne, wv, LOOM_TENSOR_WEIGHT, &w);
    unsigned long long before = bytes_in(e, "testdev");
    for (int it = 0; it < 3; it++) {
        loom_tensor *x = f32(e, 3, 1, xv, 0), *y = f32(e, 2, 1, NULL, 0);
        CHECK(op(e, LOOM_OP_MATMUL, 0, y, x, w) == LOOM_OK, "matmul: %s", loom_host_exec_last_error(e));
        CHECK(loom_exec_last_device(e) == 0, "matmul ran on device %d", loom_exec_last_device(e));
        float out[2] = {0, 0};
        loom_host_tensor_read(e, y, 0, out, sizeof out);
        CHECK(out[0] == 6 && out[1] == 15, "matmul result %g %g", (double)out[0], (double)out[1]);
        loom_exec_reset_scratch(e);
    }
    CHECK(bytes_in(e, "testdev") - before == sizeof wv, "weight uploaded %llu bytes for %zu",
          bytes_in(e, "testdev") - before, sizeof wv);

    /* an exec-owned weight rewritten between uses gives the new result */
    loom_tensor *ow = f32(e, 3, 2, wv, LOOM_TENSOR_WEIGHT | LOOM_TENSOR_PERSISTENT);
    for (int it = 0; it < 2; it++) {
        if (it) {
            const float w2[6] = {0, 0, 1, 0, 1, 0};
            CHECK(loom_host_tensor_write(e, ow, 0, w2, sizeof w2) == LOOM_OK, "rewrite: %s",
                  loom_host_exec_last_error(e));
        }
        loom_tensor *x = f32(e, 3, 1, xv, 0), *y = f32(e, 2, 1, NULL, 0);
        CHECK(op(e, LOOM_OP_MATMUL, 0, y, x, ow) == LOOM_OK, "matmul owned weight: %s", loom_host_exec_last_error(e));
        float out[2];
        loom_host_tensor_read(e, y, 0, out, sizeof out);
        CHECK(out[0] == (it ? 1 : 6) && out[1] == (it ? 1 : 15), "owned weight result %g %g", (double)out[0],
              (double)out[1]);
        loom_exec_reset_scratch(e);
    }

    /* a chain mixing devices: silu (testdev) -> gelu (cpu fallback) -> scale (testdev) */
    const float v[4] = {-1, 0, 0.5f, 2};
    loom_tensor *a = f32(e, 4, 1, v, 0), *b = f32(e, 4, 1, NULL, 0), *c = f32(e, 4, 1, NULL, 0);
    CHECK(op(e, LOOM_OP_SILU, 0, b, a, NULL) == LOOM_OK && loom_exec_last_device(e) == 0, "silu on testdev");
    CHECK(op(e, LOOM_OP_GELU, 0, c, b, NULL) == LOOM_OK && loom_exec_last_device(e) == 1, "gelu on cpu");
    CHECK(op(e, LOOM_OP_SCALE, 2.0f, b, c, NULL) == LOOM_OK && loom_exec_last_device(e) == 0, "scale on testdev");
    float out[4];
    CHECK(loom_host_tensor_read(e, b, 0, out, sizeof out) == LOOM_OK, "read chain");
    for (int i = 0; i < 4; i++) {
        double s = (double)v[i] / (1.0 + exp(-(double)v[i]));
        double g = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
        CHECK(fabs((double)out[i] - 2.0 * g) < 1e-6, "chain[%d] = %g, want %g", i, (double)out[i], 2.0 * g);
    }

    /* a failing backend call is an error on the exec, naming the device and its reason */
    loom_status st = op(e, LOOM_OP_SCALE, 12345.0f, b, c, NULL);
    CHECK(st == LOOM_ERR_BACKEND, "injected failure status %d", st);
    CHECK(strstr(loom_host_exec_last_error(e), "testdev") && strstr(loom_host_exec_last_error(e), "injected failure"),
          "error text '%s'", loom_host_exec_last_error(e));
    loom_exec_reset_scratch(e);

    const char *report = loom_exec_placement_report(e);
    CHECK(strstr(report, "gelu") && strstr(report, "(fallback)") && strstr(report, "testdev"), "report:\n%s", report);
    printf("%s", report);

    loom_exec_free(e);
    loom_tensor_free_wrapped(w);
    loom_engine_free(engine);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}

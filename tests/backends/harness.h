/*
 * harness.h - a small stand-alone host for backend plugin tests: dlopens a backend plugin from
 * the build tree, gives it a minimal host table, and moves tensors in and out of its devices.
 * It uses only abi/ headers (the tests exercise the plugin ABI exactly as the engine does), plus
 * independent helpers for test data: fp16/bf16 conversion and block quantizers written from the
 * format description in docs (not shared with any backend).
 */
#ifndef LOOM_TEST_HARNESS_H
#define LOOM_TEST_HARNESS_H

#include "loom_plugin.h"

#include <stdio.h>
#include <stdlib.h>

#define HB_SKIP 77

/* Fail the test with a message (file:line). */
#define HB_CHECK(cond, ...)                                                                                            \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                                   \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

typedef struct hb_plugin {
    void *handle;
    const loom_plugin_desc *desc;
    const loom_backend_api *api;
    void *state;
    loom_status init_status;
    char reason[512];
} hb_plugin;

/* Load build/lib/loom/plugins/loom-backend-<name>.so and run its init. Returns 0 on success
 * (init_status tells whether the plugin is available), -1 if it cannot be loaded at all. */
int hb_load(const char *name, hb_plugin *out);
void hb_unload(hb_plugin *p);

/* The last error or warning a plugin logged through the host table ("" if none). */
const char *hb_last_log(void);

/* Open device `index` with options given as key, value, ..., NULL. */
loom_status hb_open(hb_plugin *p, uint32_t index, void **dev, ...);

/* A tensor with its own device buffer (contiguous), or a view into another's. */
typedef struct hb_tensor {
    loom_tensor_view v;
    hb_plugin *p;
    void *dev;
    void *buffer;   /* owned when own != 0 */
    void *host_ptr; /* for host-memory devices */
    uint64_t bytes;
    int own;
} hb_tensor;

/* Bytes of one row of n elements of `type` (block types: n a multiple of the block). */
uint64_t hb_row_bytes(uint32_t type, int64_t n);
int64_t hb_block_size(uint32_t type);

/* New contiguous tensor of `type` with shape ne (4 dims, unused = 1) on dev. */
hb_tensor *hb_tensor_new(hb_plugin *p, void *dev, uint32_t type, const int64_t ne[4]);
/* A buffer of `bytes` raw bytes viewed as nothing yet (use hb_view on it). */
hb_tensor *hb_buffer_new(hb_plugin *p, void *dev, uint64_t bytes);
/* A view of `base`'s buffer with its own type, shape, strides (nb NULL: contiguous), offset. */
hb_tensor *hb_view(hb_tensor *base, uint32_t type, const int64_t ne[4], const int64_t *nb, uint64_t offset);
void hb_tensor_free(hb_tensor *t);
/* Raw bytes of the whole buffer (tensors: offset 0 .. bytes). */
void hb_write(hb_tensor *t, uint64_t offset, const void *src, uint64_t size);
void hb_read(hb_tensor *t, uint64_t offset, void *dst, uint64_t size);

/* Run an op: returns the backend's status (after synchronize). */
loom_status hb_op(hb_plugin *p, void *dev, uint32_t op, const int32_t *i, const float *f, hb_tensor *dst, hb_tensor *s0,
                  hb_tensor *s1, hb_tensor *s2);
int32_t hb_supports(hb_plugin *p, void *dev, uint32_t op, const int32_t *i, const float *f, hb_tensor *dst,
                    hb_tensor *s0, hb_tensor *s1, hb_tensor *s2);

/* ---- data helpers ---- */
float hb_rand(void); /* uniform in [-1, 1) from a fixed LCG */
void hb_seed(unsigned s);
uint16_t hb_f32_to_f16(float f);
float hb_f16_to_f32(uint16_t h);
uint16_t hb_f32_to_bf16(float f);
float hb_bf16_to_f32(uint16_t h);
/* Encode n floats (n a multiple of the block size) as `type` into dst. */
void hb_encode(uint32_t type, const float *src, void *dst, int64_t n);
/* Decode (reference dequantization from the documented block layouts). */
void hb_decode(uint32_t type, const void *src, float *dst, int64_t n);

/* Max |a - b| / (atol + rtol * |b|) over n values: <= 1 passes. Prints the worst on failure. */
int hb_close(const char *what, const float *got, const double *want, int64_t n, double atol, double rtol);

#endif

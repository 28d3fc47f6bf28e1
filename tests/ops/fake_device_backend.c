/*
 * fake_device_backend.c - a test backend plugin ("testdev") whose buffers behave like device
 * memory: the host never gets their address (no LOOM_BACKEND_CAP_HOST_MEMORY), so the engine
 * must upload weights, stage operands and copy results back. It supports a few ops (add, mul,
 * scale, silu, rms_norm, matmul with f32/f16 weights, contiguous f32 copies) and declines the
 * rest, which then fall back to the CPU reference. It checks what the engine hands it: views of
 * its own buffers only (view.data NULL, offsets inside the buffer), and weight_prepare data on
 * whole weights. Asynchronous in name (it has synchronize) to exercise the engine's syncs.
 */
#include "loom_plugin.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MAGIC   0x7e57b0ffu
#define EXTRA_MAGIC 0x7e57e47au

typedef struct fbuf {
    uint32_t magic;
    unsigned char *mem;
    uint64_t size;
} fbuf;

typedef struct fextra {
    uint32_t magic;
    int64_t rows;
} fextra;

typedef struct fdev {
    char err[256];
    int queued;
    int open_extras;
} fdev;

static uint32_t f_count(void *s) {
    (void)s;
    return 1;
}

static loom_status f_info(void *s, uint32_t index, loom_device_info *out) {
    (void)s;
    if (index != 0) return LOOM_ERR_NOT_FOUND;
    out->compute_units = 1;
    out->capabilities = LOOM_BACKEND_CAP_ASYNC;
    snprintf(out->name, sizeof out->name, "testdev");
    snprintf(out->description, sizeof out->description, "fake device-memory backend for tests");
    return LOOM_OK;
}

static loom_status f_open(void *s, uint32_t index, const loom_kv_list *o, void **dev) {
    (void)s, (void)o;
    if (index != 0) return LOOM_ERR_NOT_FOUND;
    *dev = calloc(1, sizeof(fdev));
    return *dev ? LOOM_OK : LOOM_ERR_OUT_OF_MEMORY;
}

static void f_close(void *dev) {
    fdev *d = dev;
    if (d && d->open_extras) fprintf(stderr, "testdev: %d prepared weights were never released\n", d->open_extras);
    free(dev);
}

static int packed_f32(const loom_tensor_view *v) {
    return v->type == LOOM_TYPE_F32 && (v->ne[0] == 1 || v->nb[0] == 4);
}

static int32_t f_supports(void *dev, const loom_op_params *p, const loom_tensor_view *dst,
                          const loom_tensor_view *const *src, uint32_t n) {
    (void)dev;
    if (!packed_f32(dst)) return 0;
    switch (p->op) {
    case LOOM_OP_ADD:
    case LOOM_OP_MUL: return n == 2 && packed_f32(src[0]) && packed_f32(src[1]);
    case LOOM_OP_SCALE:
    case LOOM_OP_SILU: return n == 1 && packed_f32(src[0]);
    case LOOM_OP_RMS_NORM:
        return packed_f32(src[0]) && (n == 1 || (packed_f32(src[1]) && src[1]->ne[1] == 1 && src[1]->ne[2] == 1));
    case LOOM_OP_MATMUL:
        return n == 2 && packed_f32(src[0]) && (src[1]->type == LOOM_TYPE_F32 || src[1]->type == LOOM_TYPE_F16) &&
               (src[1]->ne[0] == 1 || src[1]->nb[0] == (src[1]->type == LOOM_TYPE_F32 ? 4 : 2));
    case LOOM_OP_COPY: { /* contiguous f32 -> f32 of the same shape */
        const loom_tensor_view *s = src[0];
        if (n != 1 || s->type != LOOM_TYPE_F32) return 0;
        for (int d = 0; d < 4; d++)
            if (s->ne[d] != dst->ne[d]) return 0;
        return s->nb[0] == 4 && s->nb[1] == 4 * s->ne[0] && dst->nb[1] == 4 * dst->ne[0] &&
               s->nb[2] == s->nb[1] * s->ne[1] && dst->nb[2] == dst->nb[1] * dst->ne[1] &&
               s->nb[3] == s->nb[2] * s->ne[2] && dst->nb[3] == dst->nb[2] * dst->ne[2];
    }
    default: return 0;
    }
}

static loom_status f_alloc(void *dev, uint64_t size, void **buffer, void **host_ptr) {
    (void)dev;
    fbuf *b = calloc(1, sizeof *b);
    if (!b) return LOOM_ERR_OUT_OF_MEMORY;
    b->magic = BUF_MAGIC;
    b->size = size;
    b->mem = malloc(size ? (size_t)size : 1);
    if (!b->mem) {
        free(b);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    memset(b->mem, 0xAB, (size_t)size); /* garbage, like real device memory */
    *buffer = b;
    if (host_ptr) *host_ptr = NULL;
    return LOOM_OK;
}

static void f_free(void *dev, void *buffer) {
    (void)dev;
    fbuf *b = buffer;
    if (!b) return;
    b->magic = 0;
    free(b->mem);
    free(b);
}

static loom_status f_write(void *dev, void *buffer, uint64_t off, const void *src, uint64_t size) {
    fdev *d = dev;
    fbuf *b = buffer;
    if (!b || b->magic != BUF_MAGIC || off > b->size || size > b->size - off) {
        snprintf(d->err, sizeof d->err, "bad buffer write");
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    memcpy(b->mem + off, src, (size_t)size);
    return LOOM_OK;
}

static loom_status f_read(void *dev, void *buffer, uint64_t off, void *dst, uint64_t size) {
    fdev *d = dev;
    fbuf *b = buffer;
    if (!b || b->magic != BUF_MAGIC || off > b->size || size > b->size - off) {
        snprintf(d->err, sizeof d->err, "bad buffer read");
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    if (d->queued) {
        snprintf(d->err, sizeof d->err, "read while work is queued (the engine forgot to synchronize)");
        return LOOM_ERR_BACKEND;
    }
    memcpy(dst, b->mem + off, (size_t)size);
    return LOOM_OK;
}

/* Address of a view's element 0 in its buffer, after checking the view stays inside it. */
static unsigned char *addr(fdev *d, const loom_tensor_view *v) {
    fbuf *b = v->buffer;
    if (v->data != NULL || !b || b->magic != BUF_MAGIC) {
        snprintf(d->err, sizeof d->err, "operand is not in a testdev buffer");
        return NULL;
    }
    uint64_t last = v->offset;
    int64_t es = v->type == LOOM_TYPE_F16 ? 2 : 4;
    for (int k = 0; k < 4; k++)
        last += (uint64_t)((v->ne[k] - 1) * v->nb[k]);
    if (last + (uint64_t)es > b->size) {
        snprintf(d->err, sizeof d->err, "operand view exceeds its buffer");
        return NULL;
    }
    return b->mem + v->offset;
}

static float half_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    float v = e ? ldexpf((float)(1024 + m), e - 25) : ldexpf((float)m, -24);
    return s ? -v : v;
}

#define ROW(base, v, i1, i2, i3) ((base) + (i1) * (v)->nb[1] + (i2) * (v)->nb[2] + (i3) * (v)->nb[3])

static loom_status f_compute(void *dev, const loom_op_params *p, const loom_tensor_view *dst,
                             const loom_tensor_view *const *src, uint32_t n) {
    fdev *d = dev;
    unsigned char *y = addr(d, dst), *a = addr(d, src[0]), *b = n > 1 ? addr(d, src[1]) : NULL;
    if (!y || !a || (n > 1 && !b)) return LOOM_ERR_INVALID_ARGUMENT;
    const loom_tensor_view *va = src[0], *vb = n > 1 ? src[1] : NULL;
    if (p->op == LOOM_OP_MATMUL && vb->extra) {
        const fextra *x = vb->extra;
        if (x->magic != EXTRA_MAGIC || x->rows != vb->ne[1] * vb->ne[2] * vb->ne[3]) {
            snprintf(d->err, sizeof d->err, "weight_prepare data does not match the weight");
            return LOOM_ERR_INVALID_ARGUMENT;
        }
    }
    if (p->op == LOOM_OP_SCALE && p->f[0] == 12345.0f) { /* failure injection for the tests */
        snprintf(d->err, sizeof d->err, "injected failure");
        return LOOM_ERR_BACKEND;
    }
    d->queued = 1;
    for (int64_t i3 = 0; i3 < dst->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < dst->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < dst->ne[1]; i1++) {
                float *yr = (float *)(void *)ROW(y, dst, i1, i2, i3);
                if (p->op == LOOM_OP_MATMUL) {
                    const float *xr = (const float *)(const void *)ROW(a, va, i1, i2, i3);
                    int64_t w2 = i2 / (va->ne[2] / vb->ne[2]), w3 = i3 / (va->ne[3] / vb->ne[3]);
                    for (int64_t j = 0; j < dst->ne[0]; j++) {
                        const unsigned char *wr = ROW(b, vb, j, w2, w3);
                        float s = 0;
                        for (int64_t k = 0; k < va->ne[0]; k++) {
                            float w;
                            if (vb->type == LOOM_TYPE_F32) {
                                memcpy(&w, wr + 4 * k, 4);
                            } else {
                                uint16_t h;
                                memcpy(&h, wr + 2 * k, 2);
                                w = half_value(h);
                            }
                            s += xr[k] * w;
                        }
                        yr[j] = s;
                    }
                    continue;
                }
                const float *ar = (const float *)(const void *)ROW(a, va, i1, i2, i3);
                const float *br = NULL;
                if (vb) {
                    if (p->op == LOOM_OP_RMS_NORM)
                        br = (const float *)(const void *)b;
                    else
                        br = (const float *)(const void *)ROW(b, vb, i1 % vb->ne[1], i2 % vb->ne[2], i3 % vb->ne[3]);
                }
                int64_t ne0 = dst->ne[0];
                if (p->op == LOOM_OP_RMS_NORM) {
                    double ss = 0;
                    for (int64_t i = 0; i < ne0; i++)
                        ss += (double)ar[i] * (double)ar[i];
                    float sc = (float)(1.0 / sqrt(ss / (double)ne0 + (double)p->f[0]));
                    for (int64_t i = 0; i < ne0; i++)
                        yr[i] = ar[i] * sc * (br ? br[i] : 1.0f);
                    continue;
                }
                for (int64_t i = 0; i < ne0; i++) {
                    switch (p->op) {
                    case LOOM_OP_ADD: yr[i] = ar[i] + br[i]; break;
                    case LOOM_OP_MUL: yr[i] = ar[i] * br[i]; break;
                    case LOOM_OP_SCALE: yr[i] = ar[i] * p->f[0]; break;
                    case LOOM_OP_SILU: yr[i] = ar[i] / (1.0f + expf(-ar[i])); break;
                    default: yr[i] = ar[i]; break; /* COPY */
                    }
                }
            }
    return LOOM_OK;
}

static loom_status f_sync(void *dev) {
    ((fdev *)dev)->queued = 0;
    return LOOM_OK;
}

static loom_status f_prepare(void *dev, const loom_tensor_view *w, void **extra) {
    fdev *d = dev;
    if (!addr(d, w)) return LOOM_ERR_INVALID_ARGUMENT;
    fextra *x = malloc(sizeof *x);
    if (!x) return LOOM_ERR_OUT_OF_MEMORY;
    x->magic = EXTRA_MAGIC;
    x->rows = w->ne[1] * w->ne[2] * w->ne[3];
    d->open_extras++;
    *extra = x;
    return LOOM_OK;
}

static void f_release(void *dev, void *extra) {
    ((fdev *)dev)->open_extras--;
    ((fextra *)extra)->magic = 0;
    free(extra);
}

static const char *f_error(void *dev) { return ((fdev *)dev)->err[0] ? ((fdev *)dev)->err : NULL; }

static const loom_backend_api f_api = {
    sizeof(loom_backend_api),
    f_count,
    f_info,
    f_open,
    f_close,
    f_supports,
    f_alloc,
    f_free,
    f_write,
    f_read,
    f_compute,
    f_sync,
    f_prepare,
    f_release,
    f_error,
};

static const loom_plugin_desc f_desc = {
    sizeof(loom_plugin_desc),
    LOOM_ABI_MAJOR,
    LOOM_ABI_MINOR,
    LOOM_PLUGIN_KIND_BACKEND,
    0,
    "testdev",
    "0.0.1",
    "loom tests",
    "fake device-memory backend (tests only)",
    LOOM_BACKEND_CAP_ASYNC,
    NULL,
    &f_api,
    NULL,
    NULL,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);
LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    (void)host;
    return LOOM_ABI_VERSION_MAJOR(host_abi) == LOOM_ABI_MAJOR ? &f_desc : NULL;
}

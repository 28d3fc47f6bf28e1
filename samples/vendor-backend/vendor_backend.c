/*
 * vendor_backend.c - a complete, minimal Loom backend plugin to copy.
 *
 * It drives one "device" (host memory here; a real vendor allocates device memory in
 * buffer_alloc and copies in buffer_write/buffer_read) and implements a few element-wise ops on
 * contiguous F32 tensors. Everything else it declines in supports_op, and the engine runs
 * those ops on the CPU reference backend, copying operands as needed (`loom run
 * --backend vendor_sample --show-placement` shows the split).
 *
 * Rules a plugin follows (docs/writing-a-backend.md): include only Loom's ABI headers; export
 * only loom_plugin_entry; return static descriptors and tables; never abort; report "no device"
 * from init as LOOM_ERR_UNAVAILABLE with a reason instead of failing.
 */
#include <loom_plugin.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const loom_host_api *host;

typedef struct vendor_device {
    int threads; /* an example option, read from the engine's options */
} vendor_device;

static uint32_t device_count(void *state) {
    (void)state;
    return 1;
}

static loom_status device_info(void *state, uint32_t index, loom_device_info *out) {
    (void)state;
    if (index != 0) return LOOM_ERR_NOT_FOUND;
    snprintf(out->name, sizeof out->name, "vendor sample device");
    snprintf(out->description, sizeof out->description, "element-wise F32 ops on host memory");
    out->compute_units = 1;
    out->capabilities = LOOM_BACKEND_CAP_HOST_MEMORY;
    return LOOM_OK;
}

static loom_status device_open(void *state, uint32_t index, const loom_kv_list *options, void **out) {
    (void)state;
    if (index != 0) return LOOM_ERR_NOT_FOUND;
    vendor_device *d = calloc(1, sizeof *d);
    if (!d) return LOOM_ERR_OUT_OF_MEMORY;
    d->threads = 1;
    for (uint32_t i = 0; options && i < options->count; i++) {
        if (!strcmp(options->keys[i], "plugin.vendor_sample.threads")) d->threads = atoi(options->values[i]);
    }
    *out = d;
    return LOOM_OK;
}

static void device_close(void *dev) { free(dev); }

static bool contiguous_f32(const loom_tensor_view *t) {
    if (t->type != LOOM_TYPE_F32 || t->nb[0] != 4) return false;
    for (int i = 1; i < LOOM_MAX_DIMS; i++) {
        if (t->nb[i] != t->nb[i - 1] * t->ne[i - 1]) return false;
    }
    return true;
}

static int64_t nelements(const loom_tensor_view *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

static int32_t supports_op(void *dev, const loom_op_params *p, const loom_tensor_view *dst,
                           const loom_tensor_view *const *srcs, uint32_t n) {
    (void)dev;
    if (!contiguous_f32(dst)) return 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!srcs[i] || !contiguous_f32(srcs[i])) return 0;
    }
    switch (p->op) {
    case LOOM_OP_SCALE:
    case LOOM_OP_SILU: return n == 1 && nelements(srcs[0]) == nelements(dst);
    case LOOM_OP_ADD:
    case LOOM_OP_MUL:
    case LOOM_OP_SWIGLU: /* same shapes only: broadcasting is left to the reference */
        return n == 2 && nelements(srcs[0]) == nelements(dst) && nelements(srcs[1]) == nelements(dst);
    default: return 0;
    }
}

static loom_status buffer_alloc(void *dev, uint64_t size, void **buffer, void **host_ptr) {
    (void)dev;
    void *p = malloc(size ? size : 1);
    if (!p) return LOOM_ERR_OUT_OF_MEMORY;
    *buffer = p;
    *host_ptr = p;
    return LOOM_OK;
}

static void buffer_free(void *dev, void *buffer) {
    (void)dev;
    free(buffer);
}

static loom_status buffer_write(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size) {
    (void)dev;
    memcpy((char *)buffer + offset, src, size);
    return LOOM_OK;
}

static loom_status buffer_read(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size) {
    (void)dev;
    memcpy(dst, (const char *)buffer + offset, size);
    return LOOM_OK;
}

static loom_status compute(void *dev, const loom_op_params *p, const loom_tensor_view *dst,
                           const loom_tensor_view *const *srcs, uint32_t n) {
    (void)dev;
    if (!supports_op(dev, p, dst, srcs, n)) return LOOM_ERR_UNSUPPORTED;
    float *y = dst->data;
    const float *a = srcs[0]->data, *b = n > 1 ? srcs[1]->data : NULL;
    int64_t count = nelements(dst);
    for (int64_t i = 0; i < count; i++) {
        switch (p->op) {
        case LOOM_OP_SCALE: y[i] = a[i] * p->f[0]; break;
        case LOOM_OP_SILU: y[i] = a[i] / (1.0f + expf(-a[i])); break;
        case LOOM_OP_ADD: y[i] = a[i] + b[i]; break;
        case LOOM_OP_MUL: y[i] = a[i] * b[i]; break;
        case LOOM_OP_SWIGLU: y[i] = a[i] / (1.0f + expf(-a[i])) * b[i]; break;
        default: return LOOM_ERR_UNSUPPORTED;
        }
    }
    return LOOM_OK;
}

static const loom_backend_api api = {
    .struct_size = sizeof(loom_backend_api),
    .device_count = device_count,
    .device_info = device_info,
    .device_open = device_open,
    .device_close = device_close,
    .supports_op = supports_op,
    .buffer_alloc = buffer_alloc,
    .buffer_free = buffer_free,
    .buffer_write = buffer_write,
    .buffer_read = buffer_read,
    .compute = compute,
};

static loom_status init(const loom_host_api *h, void **state, char *reason, size_t reason_size) {
    (void)reason, (void)reason_size;
    host = h;
    *state = NULL;
    /* A real plugin probes its driver here (dlopen it, never link it) and returns
     * LOOM_ERR_UNAVAILABLE with a reason when there is no driver or device. */
    return LOOM_OK;
}

static const loom_option_def options[] = {
    {sizeof(loom_option_def), LOOM_OPT_INT, "threads", "1", "worker threads (example option)"},
};

static const loom_plugin_desc descriptor = {
    .struct_size = sizeof(loom_plugin_desc),
    .abi_major = LOOM_ABI_MAJOR,
    .abi_minor = LOOM_ABI_MINOR,
    .kind = LOOM_PLUGIN_KIND_BACKEND,
    .n_options = 1,
    .name = "vendor_sample",
    .version = "0.1.0",
    .vendor = "Example Hardware Inc.",
    .description = "sample backend: element-wise F32 ops",
    .capabilities = LOOM_BACKEND_CAP_HOST_MEMORY,
    .options = options,
    .api = &api,
    .init = init,
    .shutdown = NULL,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *h);
LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *h) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR || !h) return NULL;
    return &descriptor;
}

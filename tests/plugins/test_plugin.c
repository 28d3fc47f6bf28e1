/*
 * test_plugin.c - one source, compiled into many deliberately good and broken plugins (see
 * CMakeLists.txt: each variant is selected by a TP_* macro).
 */
#include "loom_plugin.h"

#include <stdio.h>
#include <string.h>

#ifndef TP_NAME
#define TP_NAME "test_good"
#endif

/* A backend with one fake device and nothing else (it is never used for compute). */
static uint32_t dev_count(void *state) {
    (void)state;
#ifdef TP_NO_DEVICES
    return 0;
#else
    return 1;
#endif
}
static loom_status dev_info(void *state, uint32_t index, loom_device_info *out) {
    (void)state;
    (void)index;
    snprintf(out->name, sizeof out->name, "test device");
    out->compute_units = 1;
    return LOOM_OK;
}
static loom_status dev_open(void *state, uint32_t index, const loom_kv_list *options, void **dev) {
    (void)state, (void)index, (void)options;
    *dev = NULL;
    return LOOM_ERR_UNSUPPORTED;
}
static void dev_close(void *dev) { (void)dev; }
static int32_t supports(void *dev, const loom_op_params *p, const loom_tensor_view *d, const loom_tensor_view *const *s,
                        uint32_t n) {
    (void)dev, (void)p, (void)d, (void)s, (void)n;
    return 0;
}
static loom_status balloc(void *dev, uint64_t size, void **buffer, void **host_ptr) {
    (void)dev, (void)size, (void)buffer, (void)host_ptr;
    return LOOM_ERR_UNSUPPORTED;
}
static void bfree(void *dev, void *buffer) { (void)dev, (void)buffer; }
static loom_status bwrite(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size) {
    (void)dev, (void)buffer, (void)offset, (void)src, (void)size;
    return LOOM_ERR_UNSUPPORTED;
}
static loom_status bread(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size) {
    (void)dev, (void)buffer, (void)offset, (void)dst, (void)size;
    return LOOM_ERR_UNSUPPORTED;
}
static loom_status compute(void *dev, const loom_op_params *p, const loom_tensor_view *d,
                           const loom_tensor_view *const *s, uint32_t n) {
    (void)dev, (void)p, (void)d, (void)s, (void)n;
    return LOOM_ERR_UNSUPPORTED;
}

static const loom_backend_api api = {
    .struct_size = sizeof(loom_backend_api),
    .device_count = dev_count,
    .device_info = dev_info,
    .device_open = dev_open,
    .device_close = dev_close,
    .supports_op = supports,
    .buffer_alloc = balloc,
    .buffer_free = bfree,
    .buffer_write = bwrite,
    .buffer_read = bread,
    .compute = compute,
};

#ifdef TP_UNRESOLVED
/* Declared, never defined anywhere: loading must fail cleanly with eager binding. */
extern int loom_test_symbol_that_does_not_exist(int);
#endif

static int init_calls;

static loom_status init(const loom_host_api *host, void **state, char *reason, size_t reason_size) {
    (void)host;
    *state = &init_calls;
    init_calls++;
#if defined(TP_INIT_FAILS)
    snprintf(reason, reason_size, "the test plugin always fails its init");
    return LOOM_ERR_PLUGIN;
#elif defined(TP_UNAVAILABLE)
    snprintf(reason, reason_size, "needs hardware this machine does not have");
    return LOOM_ERR_UNAVAILABLE;
#else
    (void)reason, (void)reason_size;
#ifdef TP_UNRESOLVED
    return loom_test_symbol_that_does_not_exist(1) ? LOOM_OK : LOOM_ERR_PLUGIN;
#endif
    return LOOM_OK;
#endif
}

static void shutdown_fn(void *state) { (void)state; }

static const loom_option_def options[] = {
    {sizeof(loom_option_def), LOOM_OPT_INT, "level", "3", "a test option"},
};

/* A descriptor from a future minor version: one appended member the host does not know. */
typedef struct future_desc {
    loom_plugin_desc base;
    uint64_t appended_field;
} future_desc;

static const future_desc desc = {
    .base =
        {
#if defined(TP_SMALL_DESC)
            .struct_size = 8,
#elif defined(TP_NEWER_MINOR)
            .struct_size = sizeof(future_desc),
#else
            .struct_size = sizeof(loom_plugin_desc),
#endif
#ifdef TP_WRONG_MAJOR
            .abi_major = LOOM_ABI_MAJOR + 1,
#else
            .abi_major = LOOM_ABI_MAJOR,
#endif
#ifdef TP_NEWER_MINOR
            .abi_minor = LOOM_ABI_MINOR + 7,
#else
            .abi_minor = LOOM_ABI_MINOR,
#endif
            .kind = LOOM_PLUGIN_KIND_BACKEND,
            .n_options = 1,
            .name = TP_NAME,
            .version = "1.2.3",
            .vendor = "Loom tests",
            .description = "a test plugin",
            .capabilities = 0,
            .options = options,
            .api = &api,
            .init = init,
            .shutdown = shutdown_fn,
        },
    .appended_field = 42,
};

#ifndef TP_NO_ENTRY
LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);
LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    (void)host_abi;
    if (!host || host->struct_size < sizeof(uint32_t)) return NULL;
#ifdef TP_ENTRY_NULL
    return NULL;
#else
    return &desc.base;
#endif
}
#else
LOOM_EXPORT int some_other_symbol(void);
LOOM_EXPORT int some_other_symbol(void) { return (int)desc.base.struct_size; }
#endif

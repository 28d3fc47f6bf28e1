/*
 * dnnl_plugin.c - the oneDNN backend plugin: entry point, probing of what the CPU (as oneDNN
 * sees it) can do, the one device, its options, and host-memory buffers.
 *
 * Paths: f32 always; bf16 when oneDNN can build a bf16 matmul here; int8 (u8 x s8) only with
 * VNNI: without it oneDNN's int8 kernels multiply-add pairs into saturating 16-bit sums, so the
 * results would be wrong, and the path is reported unavailable instead. ONEDNN_MAX_CPU_ISA
 * (read by oneDNN) lowers the ISA, which is how the tests simulate an older CPU.
 */
#include "dnnl_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const loom_host_api *g_host;

/* ============================================================================================ */
/* Helpers                                                                                      */
/* ============================================================================================ */

void odnn_log(int32_t level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    if (g_host == NULL || g_host->log == NULL) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g_host->log(level, DNNL_NAME, "%s", msg);
}

loom_status odnn_fail(odnn_device *dev, loom_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dev->error, sizeof dev->error, fmt, ap);
    va_end(ap);
    odnn_log(LOOM_LOG_DEBUG, "%s", dev->error);
    return status;
}

void *odnn_alloc(size_t size) {
    size_t rounded = (size + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded != 0 ? rounded : 64);
}

void odnn_free(void *p) { free(p); }

loom_status odnn_scratch(odnn_device *dev, size_t size) {
    void *p;
    if (size <= dev->scratch_size) return LOOM_OK;
    p = odnn_alloc(size);
    if (p == NULL) return odnn_fail(dev, LOOM_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes of scratch", size);
    odnn_free(dev->scratch);
    dev->scratch = p;
    dev->scratch_size = size;
    return LOOM_OK;
}

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_all: return "all";
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2 with AVX-VNNI";
    case dnnl_cpu_isa_avx512_mic: return "AVX-512 (MIC)";
    case dnnl_cpu_isa_avx512_mic_4ops: return "AVX-512 (MIC 4ops)";
    case dnnl_cpu_isa_avx512_core: return "AVX-512";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 with VNNI";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 with VNNI and BF16";
    case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 with AMX";
    default: return "unknown";
    }
}

static int isa_has(dnnl_cpu_isa_t isa, dnnl_cpu_isa_t feature) {
    return ((unsigned)isa & (unsigned)feature) == (unsigned)feature;
}

/* ============================================================================================ */
/* Init and the device                                                                          */
/* ============================================================================================ */

static loom_status odnn_init(const loom_host_api *host, void **state_out, char *reason, size_t reason_size) {
    odnn_state *st;
    dnnl_engine_t engine = NULL;
    dnnl_status_t s;
    const dnnl_version_t *ver;
    int saved_threads = 0;
    const char *max_isa = getenv("ONEDNN_MAX_CPU_ISA");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

    *state_out = NULL;
    if (host != NULL) g_host = host;
    if (odnn_lib_load(reason, reason_size) != 0) return LOOM_ERR_UNAVAILABLE;
    ver = odnn.dnnl_version();
    if (ver == NULL || ver->major != 2) {
        snprintf(reason, reason_size, "oneDNN 2.x is required (found %d.%d)", ver ? ver->major : 0,
                 ver ? ver->minor : 0);
        return LOOM_ERR_UNAVAILABLE;
    }
    s = odnn.dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        snprintf(reason, reason_size, "oneDNN could not create a CPU engine: %s", odnn.dnnl_status2str(s));
        return LOOM_ERR_UNAVAILABLE;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL) {
        odnn.dnnl_engine_destroy(engine);
        snprintf(reason, reason_size, "out of memory");
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    st->host = host;
    st->isa = odnn.dnnl_get_effective_cpu_isa();
    /* The probes are tiny: run them on this thread only (and restore the thread's setting). */
    if (odnn.omp_set_num_threads != NULL && odnn.omp_get_max_threads != NULL) {
        saved_threads = odnn.omp_get_max_threads();
        odnn.omp_set_num_threads(1);
    }

    if (odnn_probe_path(engine, ODNN_BF16) == 0) {
        st->bf16_ok = 1;
        st->bf16_native = isa_has(st->isa, dnnl_cpu_isa_avx512_core_bf16);
    } else {
        snprintf(st->bf16_why, sizeof st->bf16_why, "bf16 path unavailable: oneDNN has no bf16 matmul for ISA %s",
                 isa_name(st->isa));
    }
    if (isa_has(st->isa, dnnl_cpu_isa_avx512_core_vnni) || isa_has(st->isa, dnnl_cpu_isa_avx2_vnni)) {
        if (odnn_probe_path(engine, ODNN_INT8) == 0)
            st->int8_ok = 1;
        else
            snprintf(st->int8_why, sizeof st->int8_why, "int8 path unavailable: oneDNN refused a u8 x s8 matmul");
    } else {
        snprintf(st->int8_why, sizeof st->int8_why,
                 "int8 path unavailable: the effective ISA (%s%s%s) has no VNNI, and oneDNN's u8 x s8 "
                 "matmul saturates 16-bit sums without it",
                 isa_name(st->isa), max_isa != NULL ? ", ONEDNN_MAX_CPU_ISA=" : "", max_isa != NULL ? max_isa : "");
    }
    odnn.dnnl_engine_destroy(engine);
    if (saved_threads > 0) odnn.omp_set_num_threads(saved_threads);

    st->info.struct_size = sizeof st->info;
    st->info.compute_units = ncpu > 0 ? (uint32_t)ncpu : 1;
    st->info.memory_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    st->info.max_alloc_bytes = 0;
    st->info.capabilities = LOOM_BACKEND_CAP_HOST_MEMORY;
    snprintf(st->info.name, sizeof st->info.name, "oneDNN CPU (%s)", isa_name(st->isa));
    snprintf(st->info.description, sizeof st->info.description, "oneDNN %d.%d.%d; matmul paths: f32, bf16 %s, int8 %s",
             ver->major, ver->minor, ver->patch,
             st->bf16_ok ? (st->bf16_native ? "(native)" : "(emulated)") : "(unavailable)",
             st->int8_ok ? "(VNNI)" : "(unavailable: no VNNI)");
    *state_out = st;
    return LOOM_OK;
}

static void odnn_shutdown(void *state) { free(state); }

static uint32_t odnn_device_count(void *state) { return state != NULL ? 1u : 0u; }

static loom_status odnn_device_info(void *state, uint32_t index, loom_device_info *out) {
    const odnn_state *st = state;
    uint32_t size;
    if (st == NULL || out == NULL || index != 0) return LOOM_ERR_INVALID_ARGUMENT;
    size = out->struct_size != 0 && out->struct_size < sizeof *out ? out->struct_size : (uint32_t)sizeof *out;
    memcpy(out, &st->info, size);
    out->struct_size = size;
    return LOOM_OK;
}

static const char *kv_find(const loom_kv_list *kv, const char *key) {
    if (kv == NULL || kv->keys == NULL || kv->values == NULL) return NULL;
    for (uint32_t i = 0; i < kv->count; i++)
        if (kv->keys[i] != NULL && strcmp(kv->keys[i], key) == 0) return kv->values[i];
    return NULL;
}

static void odnn_device_close(void *handle) {
    odnn_device *dev = handle;
    if (dev == NULL) return;
    odnn_cache_clear(dev);
    if (dev->stream != NULL) odnn.dnnl_stream_destroy(dev->stream);
    if (dev->engine != NULL) odnn.dnnl_engine_destroy(dev->engine);
    odnn_free(dev->scratch);
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

static const char *path_name(int path) {
    return path == ODNN_BF16   ? "bf16"
           : path == ODNN_INT8 ? "int8"
           : path == ODNN_AUTO ? "auto (bf16 for quantized weights, f32 otherwise)"
                               : "f32";
}

static loom_status odnn_device_open(void *state, uint32_t index, const loom_kv_list *options, void **out) {
    odnn_state *st = state;
    odnn_device *dev;
    const char *mode = kv_find(options, "plugin.onednn.mode");
    const char *threads = kv_find(options, "threads");
    int path;
    const char *refused = NULL;
    dnnl_status_t s;

    if (out == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (st == NULL) return LOOM_ERR_UNAVAILABLE;
    if (index != 0) return LOOM_ERR_NOT_FOUND;
    if (mode == NULL || mode[0] == '\0' || strcmp(mode, "auto") == 0) {
        path = st->bf16_native ? ODNN_AUTO : ODNN_F32;
    } else if (strcmp(mode, "f32") == 0) {
        path = ODNN_F32;
    } else if (strcmp(mode, "bf16") == 0) {
        path = ODNN_BF16;
        if (!st->bf16_ok) refused = st->bf16_why;
    } else if (strcmp(mode, "int8") == 0) {
        path = ODNN_INT8;
        if (!st->int8_ok) refused = st->int8_why;
    } else {
        odnn_log(LOOM_LOG_ERROR, "plugin.onednn.mode=%s: expected f32, bf16, int8 or auto", mode);
        return LOOM_ERR_CONFIG;
    }
    dev = calloc(1, sizeof *dev);
    if (dev == NULL) return LOOM_ERR_OUT_OF_MEMORY;
    pthread_mutex_init(&dev->lock, NULL);
    dev->state = st;
    dev->mode = path;
    if (refused != NULL) {
        /* The path asked for cannot give right numbers here: the device opens but declines every
         * matmul, so the engine runs them on the CPU reference (never wrong results). */
        dev->refused = 1;
        snprintf(dev->error, sizeof dev->error, "plugin.onednn.mode=%s: %s; matmuls fall back to the CPU reference",
                 mode, refused);
        odnn_log(LOOM_LOG_WARN, "%s", dev->error);
    }
    /* OpenMP threads for large matmuls: the global "threads" option, else OpenMP's default.
     * Set before every primitive creation and execution (the setting is per calling thread). */
    dev->threads = threads != NULL && atoi(threads) > 0 ? atoi(threads)
                   : odnn.omp_get_max_threads != NULL   ? odnn.omp_get_max_threads()
                                                        : 1;
#if defined(__SANITIZE_ADDRESS__)
    /* Sanitizer builds only: GCC 12's LeakSanitizer crashes (SIGSEGV in its tracer) walking the
     * dynamic TLS of libgomp worker threads that run oneDNN, so oneDNN runs on one thread. */
    dev->threads = 1;
#endif
    s = odnn.dnnl_engine_create(&dev->engine, dnnl_cpu, 0);
    if (s == dnnl_success) s = odnn.dnnl_stream_create(&dev->stream, dev->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        odnn_log(LOOM_LOG_ERROR, "oneDNN engine/stream creation failed: %s", odnn.dnnl_status2str(s));
        odnn_device_close(dev);
        return LOOM_ERR_UNAVAILABLE;
    }
    odnn_log(LOOM_LOG_INFO, "opened %s: matmul path %s, %d threads%s%s", st->info.name, path_name(path), dev->threads,
             st->int8_ok ? "" : "; ", st->int8_ok ? "" : st->int8_why);
    *out = dev;
    return LOOM_OK;
}

/* ============================================================================================ */
/* Host-memory buffers                                                                          */
/* ============================================================================================ */

static loom_status odnn_buffer_alloc(void *handle, uint64_t size, void **buffer, void **host_ptr) {
    odnn_device *dev = handle;
    void *p;
    if (buffer != NULL) *buffer = NULL;
    if (host_ptr != NULL) *host_ptr = NULL;
    if (dev == NULL || buffer == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    if (size > SIZE_MAX - 64)
        return odnn_fail(dev, LOOM_ERR_OUT_OF_MEMORY, "buffer of %llu bytes is too large", (unsigned long long)size);
    p = odnn_alloc((size_t)size);
    if (p == NULL)
        return odnn_fail(dev, LOOM_ERR_OUT_OF_MEMORY, "out of memory for a %llu-byte buffer", (unsigned long long)size);
    *buffer = p;
    if (host_ptr != NULL) *host_ptr = p;
    return LOOM_OK;
}

static void odnn_buffer_free(void *handle, void *buffer) {
    (void)handle;
    odnn_free(buffer);
}

/* Buffers carry no size, so bounds are the caller's contract (as for host memory). */
static loom_status odnn_buffer_write(void *handle, void *buffer, uint64_t offset, const void *src, uint64_t size) {
    if (handle == NULL || buffer == NULL || (src == NULL && size != 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (size != 0) memcpy((char *)buffer + offset, src, (size_t)size);
    return LOOM_OK;
}

static loom_status odnn_buffer_read(void *handle, void *buffer, uint64_t offset, void *dst, uint64_t size) {
    if (handle == NULL || buffer == NULL || (dst == NULL && size != 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (size != 0) memcpy(dst, (const char *)buffer + offset, (size_t)size);
    return LOOM_OK;
}

static const char *odnn_last_error(void *handle) {
    odnn_device *dev = handle;
    return dev != NULL && dev->error[0] != '\0' ? dev->error : NULL;
}

/* ============================================================================================ */
/* Descriptor and entry point                                                                   */
/* ============================================================================================ */

static const loom_option_def odnn_options[] = {
    {sizeof(loom_option_def), LOOM_OPT_STRING, "mode", "auto",
     "matmul path: f32, bf16 (needs oneDNN bf16 support), int8 (u8 x s8, needs VNNI), or auto (bf16 for "
     "quantized weights where the CPU has native bf16, f32 for everything else)"},
};

static const loom_backend_api odnn_api = {
    .struct_size = sizeof(loom_backend_api),
    .device_count = odnn_device_count,
    .device_info = odnn_device_info,
    .device_open = odnn_device_open,
    .device_close = odnn_device_close,
    .supports_op = odnn_supports_op,
    .buffer_alloc = odnn_buffer_alloc,
    .buffer_free = odnn_buffer_free,
    .buffer_write = odnn_buffer_write,
    .buffer_read = odnn_buffer_read,
    .compute = odnn_compute,
    .synchronize = NULL,
    .weight_prepare = odnn_weight_prepare,
    .weight_release = odnn_weight_release,
    .last_error = odnn_last_error,
};

static const loom_plugin_desc odnn_desc = {
    .struct_size = sizeof(loom_plugin_desc),
    .abi_major = LOOM_ABI_MAJOR,
    .abi_minor = LOOM_ABI_MINOR,
    .kind = LOOM_PLUGIN_KIND_BACKEND,
    .n_options = sizeof odnn_options / sizeof odnn_options[0],
    .name = DNNL_NAME,
    .version = "0.1.0",
    .vendor = "Loom",
    .description = "oneDNN 2.x CPU matmuls (f32, bf16, int8 with VNNI); other ops fall back to the CPU reference",
    .capabilities = LOOM_BACKEND_CAP_HOST_MEMORY,
    .options = odnn_options,
    .api = &odnn_api,
    .init = odnn_init,
    .shutdown = odnn_shutdown,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR) return NULL;
    g_host = host;
    return &odnn_desc;
}

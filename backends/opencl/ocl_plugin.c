/*
 * ocl_plugin.c - the OpenCL backend plugin: entry point, discovery of platforms and devices,
 * device open/close with its options, and the per-device cache of built programs and kernels.
 *
 * The plugin links only the OpenCL ICD loader. Whatever drivers the loader finds are used; when
 * it finds none (no vendor file, no platform, no device with a compiler) init answers
 * LOOM_ERR_UNAVAILABLE with the reason and the engine carries on without this backend.
 */
#include "ocl_internal.h"
#include "ocl_kernels.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

static const loom_host_api *g_host;

/* ============================================================================================ */
/* Errors and logging                                                                           */
/* ============================================================================================ */

const char *ocl_error_string(cl_int err) {
    switch (err) {
#define E(x)                                                                                                           \
    case x: return #x;
        E(CL_SUCCESS)
        E(CL_DEVICE_NOT_FOUND)
        E(CL_DEVICE_NOT_AVAILABLE)
        E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        E(CL_OUT_OF_RESOURCES)
        E(CL_OUT_OF_HOST_MEMORY)
        E(CL_BUILD_PROGRAM_FAILURE)
        E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        E(CL_INVALID_VALUE)
        E(CL_INVALID_DEVICE)
        E(CL_INVALID_CONTEXT)
        E(CL_INVALID_COMMAND_QUEUE)
        E(CL_INVALID_MEM_OBJECT)
        E(CL_INVALID_PROGRAM)
        E(CL_INVALID_PROGRAM_EXECUTABLE)
        E(CL_INVALID_KERNEL_NAME)
        E(CL_INVALID_KERNEL)
        E(CL_INVALID_ARG_INDEX)
        E(CL_INVALID_ARG_VALUE)
        E(CL_INVALID_ARG_SIZE)
        E(CL_INVALID_KERNEL_ARGS)
        E(CL_INVALID_WORK_DIMENSION)
        E(CL_INVALID_WORK_GROUP_SIZE)
        E(CL_INVALID_WORK_ITEM_SIZE)
        E(CL_INVALID_GLOBAL_OFFSET)
        E(CL_INVALID_BUFFER_SIZE)
        E(CL_INVALID_GLOBAL_WORK_SIZE)
        E(CL_INVALID_OPERATION)
        E(CL_INVALID_BUILD_OPTIONS)
        E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
#undef E
    case CL_PLATFORM_NOT_FOUND_KHR: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

loom_status ocl_fail(ocl_device *dev, loom_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dev->error, sizeof dev->error, fmt, ap);
    va_end(ap);
    if (g_host != NULL && g_host->log != NULL) g_host->log(LOOM_LOG_DEBUG, OCL_NAME, "%s", dev->error);
    return status;
}

static void say(char *buf, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void say(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    if (buf == NULL || size == 0) return;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

/* ============================================================================================ */
/* Discovery                                                                                    */
/* ============================================================================================ */

static void describe_device(ocl_device_rec *rec) {
    char version[128] = "", driver[128] = "", vendor[128] = "";
    cl_uint cu = 0;
    cl_ulong mem = 0, max_alloc = 0;
    cl_device_type type = 0;
    memset(&rec->info, 0, sizeof rec->info);
    rec->info.struct_size = sizeof rec->info;
    clGetDeviceInfo(rec->device, CL_DEVICE_NAME, sizeof rec->info.name - 1, rec->info.name, NULL);
    clGetDeviceInfo(rec->device, CL_DEVICE_VENDOR, sizeof vendor - 1, vendor, NULL);
    clGetDeviceInfo(rec->device, CL_DEVICE_VERSION, sizeof version - 1, version, NULL);
    clGetDeviceInfo(rec->device, CL_DRIVER_VERSION, sizeof driver - 1, driver, NULL);
    clGetDeviceInfo(rec->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(rec->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(rec->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    clGetDeviceInfo(rec->device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    rec->type = type;
    rec->max_alloc = max_alloc;
    rec->info.compute_units = cu;
    rec->info.memory_bytes = mem;
    rec->info.max_alloc_bytes = max_alloc;
    rec->info.capabilities = LOOM_BACKEND_CAP_ASYNC;
    snprintf(rec->info.description, sizeof rec->info.description, "%s %.32s; %.90s; driver %.32s; platform %u '%.40s'",
             (type & CL_DEVICE_TYPE_GPU)   ? "GPU"
             : (type & CL_DEVICE_TYPE_CPU) ? "CPU"
                                           : "accelerator",
             vendor, version, driver, rec->platform_index, rec->platform_name);
}

static loom_status ocl_init(const loom_host_api *host, void **state_out, char *reason, size_t reason_size) {
    cl_uint n_plat = 0;
    cl_platform_id *plats = NULL;
    ocl_state *st = NULL;
    uint32_t cap = 0;
    char seen[256] = "";
    cl_int err;

    *state_out = NULL;
    if (host != NULL) g_host = host;
    err = clGetPlatformIDs(0, NULL, &n_plat);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && n_plat == 0)) {
        const char *env = getenv("OCL_ICD_VENDORS");
        say(reason, reason_size,
            "no OpenCL platform: the ICD loader found no vendor driver (searched %s%s; install one, "
            "e.g. pocl-opencl-icd)",
            env != NULL ? "OCL_ICD_VENDORS=" : "/etc/OpenCL/vendors", env != NULL ? env : "");
        return LOOM_ERR_UNAVAILABLE;
    }
    if (err != CL_SUCCESS) {
        say(reason, reason_size, "clGetPlatformIDs failed: %s (%d)", ocl_error_string(err), (int)err);
        return LOOM_ERR_UNAVAILABLE;
    }
    plats = calloc(n_plat, sizeof *plats);
    st = calloc(1, sizeof *st);
    if (plats == NULL || st == NULL) goto oom;
    st->host = host;
    clGetPlatformIDs(n_plat, plats, NULL);
    for (cl_uint p = 0; p < n_plat; p++) {
        char pname[128] = "";
        cl_uint n_dev = 0;
        cl_device_id *devs;
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname - 1, pname, NULL);
        if (strlen(seen) + strlen(pname) + 4 < sizeof seen)
            snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s'%s'", seen[0] ? ", " : "", pname);
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n_dev);
        if (err != CL_SUCCESS || n_dev == 0) continue;
        devs = calloc(n_dev, sizeof *devs);
        if (devs == NULL) goto oom;
        clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, n_dev, devs, NULL);
        for (cl_uint d = 0; d < n_dev; d++) {
            cl_bool avail = CL_FALSE, compiler = CL_FALSE;
            ocl_device_rec *rec;
            clGetDeviceInfo(devs[d], CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
            if (!avail || !compiler) continue;
            if (st->n_devices == cap) {
                uint32_t ncap = cap ? cap * 2 : 4;
                ocl_device_rec *grown = realloc(st->devices, ncap * sizeof *grown);
                if (grown == NULL) {
                    free(devs);
                    goto oom;
                }
                st->devices = grown;
                cap = ncap;
            }
            rec = &st->devices[st->n_devices++];
            memset(rec, 0, sizeof *rec);
            rec->platform = plats[p];
            rec->device = devs[d];
            rec->platform_index = p;
            rec->device_index = d;
            snprintf(rec->platform_name, sizeof rec->platform_name, "%s", pname);
            describe_device(rec);
        }
        free(devs);
    }
    free(plats);
    if (st->n_devices == 0) {
        say(reason, reason_size, "OpenCL platform(s) %s found, but none has an available device with a compiler", seen);
        free(st->devices);
        free(st);
        return LOOM_ERR_UNAVAILABLE;
    }
    *state_out = st;
    return LOOM_OK;
oom:
    free(plats);
    if (st != NULL) free(st->devices);
    free(st);
    say(reason, reason_size, "out of memory while listing OpenCL devices");
    return LOOM_ERR_OUT_OF_MEMORY;
}

static void ocl_shutdown(void *state) {
    ocl_state *st = state;
    if (st == NULL) return;
    free(st->devices);
    free(st);
}

static uint32_t ocl_device_count(void *state) {
    const ocl_state *st = state;
    return st != NULL ? st->n_devices : 0;
}

static loom_status ocl_device_info(void *state, uint32_t index, loom_device_info *out) {
    const ocl_state *st = state;
    uint32_t size;
    if (st == NULL || out == NULL || index >= st->n_devices) return LOOM_ERR_INVALID_ARGUMENT;
    /* Copy no more than the caller's struct holds (it may be an older, smaller one). */
    size = out->struct_size != 0 && out->struct_size < sizeof *out ? out->struct_size : (uint32_t)sizeof *out;
    memcpy(out, &st->devices[index].info, size);
    out->struct_size = size;
    return LOOM_OK;
}

/* ============================================================================================ */
/* Options                                                                                      */
/* ============================================================================================ */

static const loom_option_def ocl_options[] = {
    {sizeof(loom_option_def), LOOM_OPT_STRING, "platform", "",
     "OpenCL platform to use: its index or part of its name (empty: the device index counts over "
     "all platforms)"},
    {sizeof(loom_option_def), LOOM_OPT_INT, "device", "-1",
     "device index within the chosen platform (-1: the index the backend was opened with)"},
    {sizeof(loom_option_def), LOOM_OPT_STRING, "max_alloc", "0",
     "largest single device allocation in bytes (suffix k/m/g allowed; 0: the device's "
     "CL_DEVICE_MAX_MEM_ALLOC_SIZE); larger buffers are split"},
    {sizeof(loom_option_def), LOOM_OPT_INT, "work_group", "0",
     "work-group size of the reduction kernels (power of two; 0: 1 on CPU devices, 64 otherwise)"},
    {sizeof(loom_option_def), LOOM_OPT_STRING, "disable_ops", "",
     "comma-separated ops this device declines (e.g. rope,attention): they run on the CPU reference, "
     "for testing mixed placement"},
};

static const char *const op_names[LOOM_OP_COUNT] = {
    "none",    "get_rows",  "rms_norm", "layer_norm", "add",    "mul",  "scale",        "matmul",  "rope",
    "softmax", "attention", "silu",     "gelu",       "swiglu", "copy", "weighted_sum", "hadamard"};

/* Parse a comma list of op names into a bit mask; -1 on an unknown name. */
static int parse_ops(const char *s, uint32_t *mask) {
    *mask = 0;
    while (*s) {
        size_t len = strcspn(s, ", ");
        int found = 0;
        for (uint32_t op = 1; op < LOOM_OP_COUNT && len > 0; op++)
            if (op_names[op] != NULL && strlen(op_names[op]) == len && strncmp(op_names[op], s, len) == 0) {
                *mask |= 1u << op;
                found = 1;
            }
        if (len > 0 && !found) return -1;
        s += len;
        while (*s == ',' || *s == ' ')
            s++;
    }
    return 0;
}

static const char *kv_find(const loom_kv_list *kv, const char *key) {
    if (kv == NULL || kv->keys == NULL || kv->values == NULL) return NULL;
    for (uint32_t i = 0; i < kv->count; i++)
        if (kv->keys[i] != NULL && strcmp(kv->keys[i], key) == 0) return kv->values[i];
    return NULL;
}

/* Parse a non-negative size with an optional k/m/g suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out) {
    char *end = NULL;
    unsigned long long v;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '-' || *s == '\0') return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) return -1;
    switch (tolower((unsigned char)*end)) {
    case 'k':
        v <<= 10;
        end++;
        break;
    case 'm':
        v <<= 20;
        end++;
        break;
    case 'g':
        v <<= 30;
        end++;
        break;
    default: break;
    }
    if (tolower((unsigned char)*end) == 'b' || tolower((unsigned char)*end) == 'i') end++;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0') return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, long *out) {
    char *end = NULL;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s) return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0') return -1;
    *out = v;
    return 0;
}

static int contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static void log_msg(int32_t level, const char *fmt, const char *a, const char *b) {
    if (g_host != NULL && g_host->log != NULL) g_host->log(level, OCL_NAME, fmt, a, b);
}

/* Pick the device record per the index and the platform/device options. */
static loom_status select_device(const ocl_state *st, uint32_t index, const loom_kv_list *kv,
                                 const ocl_device_rec **out) {
    const char *plat = kv_find(kv, "plugin.opencl.platform");
    const char *devs = kv_find(kv, "plugin.opencl.device");
    long dev_index = -1;
    if (devs != NULL && devs[0] != '\0' && parse_int(devs, &dev_index) != 0) {
        log_msg(LOOM_LOG_ERROR, "plugin.opencl.device: '%s' is not an integer%s", devs, "");
        return LOOM_ERR_CONFIG;
    }
    if (plat != NULL && plat[0] != '\0') {
        long pidx = -1;
        int by_index = parse_int(plat, &pidx) == 0;
        long want = dev_index >= 0 ? dev_index : (long)index;
        long k = 0;
        int any_platform = 0;
        for (uint32_t i = 0; i < st->n_devices; i++) {
            const ocl_device_rec *r = &st->devices[i];
            int match = by_index ? (long)r->platform_index == pidx : contains_nocase(r->platform_name, plat);
            if (!match) continue;
            any_platform = 1;
            if (k++ == want) {
                *out = r;
                return LOOM_OK;
            }
        }
        log_msg(LOOM_LOG_ERROR, "plugin.opencl.platform=%s: %s", plat,
                any_platform ? "no device with that index on it" : "no such OpenCL platform with a device");
        return LOOM_ERR_NOT_FOUND;
    }
    if (dev_index >= 0) index = (uint32_t)dev_index;
    if (index >= st->n_devices) {
        char msg[64];
        snprintf(msg, sizeof msg, "%u (there are %u)", (unsigned)index, (unsigned)st->n_devices);
        log_msg(LOOM_LOG_ERROR, "OpenCL device index %s out of range%s", msg, "");
        return LOOM_ERR_NOT_FOUND;
    }
    *out = &st->devices[index];
    return LOOM_OK;
}

/* ============================================================================================ */
/* Device open/close                                                                            */
/* ============================================================================================ */

static void ocl_device_close(void *handle) {
    ocl_device *dev = handle;
    if (dev == NULL) return;
    if (dev->queue != NULL) clFinish(dev->queue);
    for (int i = 0; i < OCL_K_COUNT; i++)
        if (dev->kernels[i] != NULL) clReleaseKernel(dev->kernels[i]);
    for (int i = 0; i < OCL_PROG_COUNT; i++)
        if (dev->programs[i] != NULL) clReleaseProgram(dev->programs[i]);
    if (dev->flags != NULL) clReleaseMemObject(dev->flags);
    if (dev->queue != NULL) clReleaseCommandQueue(dev->queue);
    if (dev->ctx != NULL) clReleaseContext(dev->ctx);
    pthread_mutex_destroy(&dev->lock);
    free(dev);
}

static loom_status ocl_device_open(void *state, uint32_t index, const loom_kv_list *options, void **out) {
    ocl_state *st = state;
    const ocl_device_rec *rec = NULL;
    ocl_device *dev;
    const char *s;
    cl_int err;
    cl_uint zero = 0;
    size_t max_wg = 1;
    loom_status rc;

    if (out == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (st == NULL || st->n_devices == 0) return LOOM_ERR_UNAVAILABLE;
    rc = select_device(st, index, options, &rec);
    if (rc != LOOM_OK) return rc;
    dev = calloc(1, sizeof *dev);
    if (dev == NULL) return LOOM_ERR_OUT_OF_MEMORY;
    pthread_mutex_init(&dev->lock, NULL);
    dev->state = st;
    dev->rec = rec;

    dev->max_alloc = rec->max_alloc != 0 ? rec->max_alloc : ((uint64_t)1 << 30);
    s = kv_find(options, "plugin.opencl.max_alloc");
    if (s != NULL && s[0] != '\0') {
        uint64_t v = 0;
        if (parse_size(s, &v) != 0 || (v != 0 && v < 4096)) {
            log_msg(LOOM_LOG_ERROR, "plugin.opencl.max_alloc=%s: %s", s,
                    "expected a size of at least 4096 bytes (suffix k/m/g) or 0");
            ocl_device_close(dev);
            return LOOM_ERR_CONFIG;
        }
        if (v != 0 && v < dev->max_alloc) dev->max_alloc = v;
    }
    /* Split buffers overlap by `margin`: half the limit, at most 16 MiB, a multiple of 256. */
    dev->margin = dev->max_alloc / 2;
    if (dev->margin > ((uint64_t)16 << 20)) dev->margin = (uint64_t)16 << 20;
    dev->margin &= ~(uint64_t)255;

    clGetDeviceInfo(rec->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    dev->wg = (rec->type & CL_DEVICE_TYPE_CPU) ? 1 : 64;
    s = kv_find(options, "plugin.opencl.work_group");
    if (s != NULL && s[0] != '\0') {
        long v = 0;
        if (parse_int(s, &v) != 0 || v < 0 || v > 1024 || (v & (v - 1)) != 0) {
            log_msg(LOOM_LOG_ERROR, "plugin.opencl.work_group=%s: %s", s, "expected 0 or a power of two <= 1024");
            ocl_device_close(dev);
            return LOOM_ERR_CONFIG;
        }
        if (v > 0) dev->wg = (size_t)v;
    }
    while (dev->wg > max_wg && dev->wg > 1)
        dev->wg /= 2;
    s = kv_find(options, "plugin.opencl.disable_ops");
    if (s != NULL && parse_ops(s, &dev->disabled) != 0) {
        log_msg(LOOM_LOG_ERROR, "plugin.opencl.disable_ops=%s: %s", s,
                "unknown op name (use names such as rope,attention)");
        ocl_device_close(dev);
        return LOOM_ERR_CONFIG;
    }
    snprintf(dev->build_options, sizeof dev->build_options, "-cl-std=CL1.2 -DLOOM_WG=%u", (unsigned)dev->wg);

    dev->ctx = clCreateContext(NULL, 1, &rec->device, NULL, NULL, &err);
    if (dev->ctx == NULL || err != CL_SUCCESS) {
        log_msg(LOOM_LOG_ERROR, "clCreateContext failed: %s%s", ocl_error_string(err), "");
        ocl_device_close(dev);
        return LOOM_ERR_UNAVAILABLE;
    }
    dev->queue = clCreateCommandQueue(dev->ctx, rec->device, 0, &err);
    if (dev->queue == NULL || err != CL_SUCCESS) {
        log_msg(LOOM_LOG_ERROR, "clCreateCommandQueue failed: %s%s", ocl_error_string(err), "");
        ocl_device_close(dev);
        return LOOM_ERR_UNAVAILABLE;
    }
    dev->flags = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, sizeof zero, NULL, &err);
    if (dev->flags == NULL || err != CL_SUCCESS) {
        ocl_device_close(dev);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    err = clEnqueueWriteBuffer(dev->queue, dev->flags, CL_TRUE, 0, sizeof zero, &zero, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        ocl_device_close(dev);
        return LOOM_ERR_UNAVAILABLE;
    }
    if (g_host != NULL && g_host->log != NULL)
        g_host->log(LOOM_LOG_INFO, OCL_NAME, "opened %s (%s), max allocation %llu bytes, work-group %u", rec->info.name,
                    rec->platform_name, (unsigned long long)dev->max_alloc, (unsigned)dev->wg);
    *out = dev;
    return LOOM_OK;
}

static loom_status ocl_synchronize(void *handle) {
    ocl_device *dev = handle;
    cl_int err;
    if (dev == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    err = clFinish(dev->queue);
    if (err != CL_SUCCESS)
        return ocl_fail(dev, LOOM_ERR_BACKEND, "clFinish failed: %s (%d)", ocl_error_string(err), (int)err);
    return LOOM_OK;
}

static const char *ocl_last_error(void *handle) {
    ocl_device *dev = handle;
    return dev != NULL && dev->error[0] != '\0' ? dev->error : NULL;
}

/* ============================================================================================ */
/* Programs and kernels                                                                         */
/* ============================================================================================ */

static const struct {
    const char *name;
    uint32_t program;
} kernel_table[OCL_K_COUNT] = {
    [OCL_K_BINARY] = {"k_binary", OCL_PROG_ELEMENTWISE},
    [OCL_K_UNARY] = {"k_unary", OCL_PROG_ELEMENTWISE},
    [OCL_K_RMS_NORM] = {"k_rms_norm", OCL_PROG_NORM},
    [OCL_K_LAYER_NORM] = {"k_layer_norm", OCL_PROG_NORM},
    [OCL_K_ROPE] = {"k_rope", OCL_PROG_ROPE},
    [OCL_K_SOFTMAX] = {"k_softmax", OCL_PROG_SOFTMAX},
    [OCL_K_ATTENTION_F32] = {"k_attention_f32", OCL_PROG_ATTENTION},
    [OCL_K_ATTENTION_F16] = {"k_attention_f16", OCL_PROG_ATTENTION},
    [OCL_K_MM_F32] = {"k_mm_f32", OCL_PROG_MATMUL},
    [OCL_K_MM_F16] = {"k_mm_f16", OCL_PROG_MATMUL},
    [OCL_K_MM_Q8_0] = {"k_mm_q8_0", OCL_PROG_MATMUL},
    [OCL_K_MM_Q4_0] = {"k_mm_q4_0", OCL_PROG_MATMUL},
    [OCL_K_MM_Q4_1] = {"k_mm_q4_1", OCL_PROG_MATMUL},
    [OCL_K_MM_BF16] = {"k_mm_bf16", OCL_PROG_MATMUL},
    [OCL_K_MM_Q4_K] = {"k_mm_q4_k", OCL_PROG_MATMUL},
    [OCL_K_MM_Q6_K] = {"k_mm_q6_k", OCL_PROG_MATMUL},
    [OCL_K_COPY] = {"k_copy", OCL_PROG_COPY},
    [OCL_K_GET_ROWS] = {"k_get_rows", OCL_PROG_COPY},
    [OCL_K_WEIGHTED_SUM] = {"k_weighted_sum", OCL_PROG_TRANSFORM},
    [OCL_K_HADAMARD] = {"k_hadamard", OCL_PROG_TRANSFORM},
};

static const char *program_source(uint32_t program) {
    switch (program) {
    case OCL_PROG_ELEMENTWISE: return ocl_src_elementwise;
    case OCL_PROG_NORM: return ocl_src_norm;
    case OCL_PROG_ROPE: return ocl_src_rope;
    case OCL_PROG_SOFTMAX: return ocl_src_softmax;
    case OCL_PROG_ATTENTION: return ocl_src_attention;
    case OCL_PROG_MATMUL: return ocl_src_matmul;
    case OCL_PROG_COPY: return ocl_src_copy;
    case OCL_PROG_TRANSFORM: return ocl_src_transforms;
    default: return NULL;
    }
}

static const char *program_name(uint32_t program) {
    static const char *names[OCL_PROG_COUNT] = {"elementwise", "norm",   "rope", "softmax",
                                                "attention",   "matmul", "copy", "transforms"};
    return program < OCL_PROG_COUNT ? names[program] : "?";
}

static loom_status build_program(ocl_device *dev, uint32_t program) {
    const char *srcs[2] = {ocl_src_common, program_source(program)};
    cl_int err;
    cl_program prog = clCreateProgramWithSource(dev->ctx, 2, srcs, NULL, &err);
    if (prog == NULL || err != CL_SUCCESS)
        return ocl_fail(dev, LOOM_ERR_BACKEND, "clCreateProgramWithSource(%s) failed: %s", program_name(program),
                        ocl_error_string(err));
    err = clBuildProgram(prog, 1, &dev->rec->device, dev->build_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[768] = "";
        clGetProgramBuildInfo(prog, dev->rec->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        clReleaseProgram(prog);
        return ocl_fail(dev, LOOM_ERR_BACKEND, "building the OpenCL program '%s' failed (%s): %s",
                        program_name(program), ocl_error_string(err), log);
    }
    dev->programs[program] = prog;
    return LOOM_OK;
}

loom_status ocl_kernel_get(ocl_device *dev, uint32_t id, cl_kernel *out) {
    uint32_t prog;
    cl_int err;
    if (id >= OCL_K_COUNT) return ocl_fail(dev, LOOM_ERR_INTERNAL, "bad kernel id %u", (unsigned)id);
    if (dev->kernels[id] != NULL) {
        *out = dev->kernels[id];
        return LOOM_OK;
    }
    prog = kernel_table[id].program;
    if (dev->programs[prog] == NULL) {
        loom_status rc = build_program(dev, prog);
        if (rc != LOOM_OK) return rc;
    }
    dev->kernels[id] = clCreateKernel(dev->programs[prog], kernel_table[id].name, &err);
    if (dev->kernels[id] == NULL || err != CL_SUCCESS) {
        dev->kernels[id] = NULL;
        return ocl_fail(dev, LOOM_ERR_BACKEND, "clCreateKernel(%s) failed: %s", kernel_table[id].name,
                        ocl_error_string(err));
    }
    *out = dev->kernels[id];
    return LOOM_OK;
}

/* ============================================================================================ */
/* Descriptor and entry point                                                                   */
/* ============================================================================================ */

static const loom_backend_api ocl_api = {
    .struct_size = sizeof(loom_backend_api),
    .device_count = ocl_device_count,
    .device_info = ocl_device_info,
    .device_open = ocl_device_open,
    .device_close = ocl_device_close,
    .supports_op = ocl_supports_op,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .buffer_write = ocl_buffer_write,
    .buffer_read = ocl_buffer_read,
    .compute = ocl_compute,
    .synchronize = ocl_synchronize,
    .weight_prepare = NULL,
    .weight_release = NULL,
    .last_error = ocl_last_error,
};

static const loom_plugin_desc ocl_desc = {
    .struct_size = sizeof(loom_plugin_desc),
    .abi_major = LOOM_ABI_MAJOR,
    .abi_minor = LOOM_ABI_MINOR,
    .kind = LOOM_PLUGIN_KIND_BACKEND,
    .n_options = sizeof ocl_options / sizeof ocl_options[0],
    .name = OCL_NAME,
    .version = "0.1.0",
    .vendor = "Loom",
    .description = "OpenCL 1.2 backend (any ICD: PoCL, GPU drivers): every op, every weight type",
    .capabilities = LOOM_BACKEND_CAP_ASYNC,
    .options = ocl_options,
    .api = &ocl_api,
    .init = ocl_init,
    .shutdown = ocl_shutdown,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR) return NULL;
    g_host = host;
    return &ocl_desc;
}

/*
 * cpu_plugin.c - the CPU reference backend: plugin descriptor, device, host-memory buffers,
 * op support and dispatch of kernels onto a thread pool.
 *
 * This backend is the oracle every other backend is compared with: it favours clarity and
 * exactness over speed. It accepts every op of abi/loom_plugin.h with the operand types listed
 * in docs/ops.md; all operands except COPY's must have packed rows (nb[0] = element size).
 */
#include "cpu_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_MAX_THREADS 256

static const loom_host_api *g_host;

static void cpu_set_error(cpu_device *dev, const char *fmt, ...) LOOM_CPU_PRINTF(2, 3);

/* ============================================================================================ */
/* Device                                                                                       */
/* ============================================================================================ */

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CPU_MAX_THREADS ? CPU_MAX_THREADS : (int)n;
}

static void cpu_set_error(cpu_device *dev, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dev->last_error, sizeof dev->last_error, fmt, ap);
    va_end(ap);
}

static uint32_t cpu_device_count(void *state) {
    (void)state;
    return 1;
}

static void cpu_model_name(char *out, size_t size) {
    snprintf(out, size, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            if (colon) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                snprintf(out, size, "%s", colon);
                size_t len = strlen(out);
                while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
                    out[--len] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

static loom_status cpu_device_info(void *state, uint32_t index, loom_device_info *out) {
    (void)state;
    if (index != 0 || !out) return LOOM_ERR_INVALID_ARGUMENT;
    loom_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.compute_units = (uint32_t)online_cpus();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    info.memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    info.max_alloc_bytes = 0;
    info.capabilities = LOOM_BACKEND_CAP_HOST_MEMORY | LOOM_BACKEND_CAP_REFERENCE;
    snprintf(info.name, sizeof info.name, "cpu");
    char model[200];
    cpu_model_name(model, sizeof model);
    snprintf(info.description, sizeof info.description, "reference C backend on %s (%u logical CPUs)", model,
             info.compute_units);
    /* copy no more than the caller's struct holds */
    uint32_t size = out->struct_size && out->struct_size < sizeof info ? out->struct_size : (uint32_t)sizeof info;
    memcpy(out, &info, size);
    out->struct_size = size;
    return LOOM_OK;
}

/* "plugin.cpu.threads", else the global "threads"; 0 or absent = every online CPU; -1 if invalid. */
static int threads_option(const loom_kv_list *options) {
    const char *value = NULL;
    if (options && options->keys && options->values) {
        for (uint32_t i = 0; i < options->count; i++) {
            if (!options->keys[i] || !options->values[i]) continue;
            if (!strcmp(options->keys[i], "plugin.cpu.threads")) value = options->values[i];
            if (!strcmp(options->keys[i], "threads") && !value) value = options->values[i];
        }
    }
    if (!value) return online_cpus();
    char *end = NULL;
    long v = strtol(value, &end, 10);
    if (end == value || *end != '\0' || v < 0) return -1;
    if (v == 0) return online_cpus();
    return v > CPU_MAX_THREADS ? CPU_MAX_THREADS : (int)v;
}

static void cpu_device_close(void *devp) {
    cpu_device *dev = devp;
    if (!dev) return;
    cpu_pool_destroy(&dev->pool);
    if (dev->scratch)
        for (int i = 0; i < dev->n_threads; i++)
            free(dev->scratch[i]);
    free(dev->scratch);
    free(dev->scratch_size);
    free(dev);
}

static loom_status cpu_device_open(void *state, uint32_t index, const loom_kv_list *options, void **out) {
    (void)state;
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (index != 0) return LOOM_ERR_NOT_FOUND;
    int n_threads = threads_option(options);
    if (n_threads < 1) {
        if (g_host && g_host->log) g_host->log(LOOM_LOG_ERROR, "cpu", "option threads must be a number >= 0");
        return LOOM_ERR_CONFIG;
    }
    cpu_device *dev = calloc(1, sizeof *dev);
    if (!dev) return LOOM_ERR_OUT_OF_MEMORY;
    dev->scratch = calloc((size_t)n_threads, sizeof *dev->scratch);
    dev->scratch_size = calloc((size_t)n_threads, sizeof *dev->scratch_size);
    if (!dev->scratch || !dev->scratch_size || cpu_pool_init(&dev->pool, n_threads) != 0) {
        free(dev->scratch);
        free(dev->scratch_size);
        free(dev);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    dev->n_threads = dev->pool.n_threads;
    *out = dev;
    return LOOM_OK;
}

static const char *cpu_last_error(void *devp) {
    cpu_device *dev = devp;
    return dev && dev->last_error[0] ? dev->last_error : NULL;
}

/* ============================================================================================ */
/* Buffers: host memory                                                                         */
/* ============================================================================================ */

typedef struct cpu_buffer {
    void *data;
    uint64_t size;
} cpu_buffer;

static loom_status cpu_buffer_alloc(void *devp, uint64_t size, void **buffer, void **host_ptr) {
    cpu_device *dev = devp;
    if (!buffer) return LOOM_ERR_INVALID_ARGUMENT;
    *buffer = NULL;
    if (host_ptr) *host_ptr = NULL;
    uint64_t rounded = (size + 63u) & ~(uint64_t)63u;
    if (rounded == 0) rounded = 64;
    if (rounded < size || rounded > (uint64_t)SIZE_MAX) return LOOM_ERR_OUT_OF_MEMORY;
    cpu_buffer *b = malloc(sizeof *b);
    if (!b) return LOOM_ERR_OUT_OF_MEMORY;
    b->data = aligned_alloc(64, (size_t)rounded);
    if (!b->data) {
        free(b);
        if (dev) cpu_set_error(dev, "cannot allocate %llu bytes", (unsigned long long)size);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    b->size = size;
    *buffer = b;
    if (host_ptr) *host_ptr = b->data;
    return LOOM_OK;
}

static void cpu_buffer_free(void *devp, void *buffer) {
    (void)devp;
    cpu_buffer *b = buffer;
    if (!b) return;
    free(b->data);
    free(b);
}

static loom_status cpu_buffer_write(void *devp, void *buffer, uint64_t offset, const void *src, uint64_t size) {
    cpu_device *dev = devp;
    cpu_buffer *b = buffer;
    if (!b || (!src && size)) return LOOM_ERR_INVALID_ARGUMENT;
    if (offset > b->size || size > b->size - offset) {
        if (dev)
            cpu_set_error(dev, "write of %llu bytes at %llu past the end of a %llu-byte buffer",
                          (unsigned long long)size, (unsigned long long)offset, (unsigned long long)b->size);
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    if (size) memcpy((char *)b->data + offset, src, (size_t)size);
    return LOOM_OK;
}

static loom_status cpu_buffer_read(void *devp, void *buffer, uint64_t offset, void *dst, uint64_t size) {
    cpu_device *dev = devp;
    cpu_buffer *b = buffer;
    if (!b || (!dst && size)) return LOOM_ERR_INVALID_ARGUMENT;
    if (offset > b->size || size > b->size - offset) {
        if (dev)
            cpu_set_error(dev, "read of %llu bytes at %llu past the end of a %llu-byte buffer",
                          (unsigned long long)size, (unsigned long long)offset, (unsigned long long)b->size);
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    if (size) memcpy(dst, (const char *)b->data + offset, (size_t)size);
    return LOOM_OK;
}

/* ============================================================================================ */
/* Ops                                                                                          */
/* ============================================================================================ */

static int32_t cpu_supports_op(void *devp, const loom_op_params *params, const loom_tensor_view *dst,
                               const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    (void)devp;
    if (!params || !dst || (n_srcs && !srcs)) return 0;
    if (!lbu_op_check(params, dst, srcs, n_srcs, NULL, 0)) return 0;
    if (params->op == LOOM_OP_COPY) return 1;
    if (!lbu_view_rows_packed(dst)) return 0;
    for (uint32_t i = 0; i < n_srcs; i++)
        if (!lbu_view_rows_packed(srcs[i])) return 0;
    return 1;
}

size_t cpu_scratch_floats(const loom_op_params *p, const loom_tensor_view *dst, const loom_tensor_view *const *src,
                          uint32_t n_src) {
    (void)dst;
    (void)n_src;
    const loom_tensor_view *a = src[0];
    switch (p->op) {
    case LOOM_OP_RMS_NORM:
    case LOOM_OP_ADD:
    case LOOM_OP_MUL:
    case LOOM_OP_SOFTMAX:
    case LOOM_OP_GROUPED_SOFTMAX: return (size_t)a->ne[0];
    case LOOM_OP_LAYER_NORM: return 2 * (size_t)a->ne[0];
    case LOOM_OP_MATMUL: return src[1]->type == LOOM_TYPE_F32 ? 0 : (size_t)CPU_MATMUL_TILE * (size_t)a->ne[0];
    case LOOM_OP_ROPE: return (size_t)(p->i[1] ? p->i[1] : a->ne[0]);
    case LOOM_OP_ATTENTION: return (size_t)src[1]->ne[2] + 2 * (size_t)a->ne[0];
    case LOOM_OP_WEIGHTED_SUM: return (size_t)a->ne[2];
    case LOOM_OP_HADAMARD: return (size_t)(p->i[0] ? p->i[0] : a->ne[0]);
    default: return 0;
    }
}

/* Rough amount of work, to decide how many threads are worth waking. */
static double op_work(const loom_op_params *p, const loom_tensor_view *dst, const loom_tensor_view *const *src) {
    switch (p->op) {
    case LOOM_OP_MATMUL: return (double)lbu_view_nelements(dst) * (double)src[0]->ne[0];
    case LOOM_OP_ATTENTION: return (double)lbu_view_nelements(src[0]) * (double)src[1]->ne[2] * 2.0;
    case LOOM_OP_ROPE:
    case LOOM_OP_GELU:
    case LOOM_OP_SILU:
    case LOOM_OP_SWIGLU: return (double)lbu_view_nelements(dst) * 8.0;
    case LOOM_OP_GET_ROWS: return (double)lbu_view_nelements(dst) * 4.0;
    default: return (double)lbu_view_nelements(dst);
    }
}

static cpu_job_fn kernel_of(uint32_t op) {
    switch (op) {
    case LOOM_OP_GET_ROWS: return cpu_get_rows;
    case LOOM_OP_RMS_NORM: return cpu_rms_norm;
    case LOOM_OP_LAYER_NORM: return cpu_layer_norm;
    case LOOM_OP_ADD:
    case LOOM_OP_MUL: return cpu_add_mul;
    case LOOM_OP_SCALE:
    case LOOM_OP_SILU:
    case LOOM_OP_GELU: return cpu_unary;
    case LOOM_OP_SWIGLU: return cpu_swiglu;
    case LOOM_OP_MATMUL: return cpu_matmul;
    case LOOM_OP_ROPE: return cpu_rope;
    case LOOM_OP_SOFTMAX: return cpu_softmax;
    case LOOM_OP_ATTENTION: return cpu_attention;
    case LOOM_OP_COPY: return cpu_copy;
    case LOOM_OP_WEIGHTED_SUM: return cpu_weighted_sum;
    case LOOM_OP_HADAMARD: return cpu_hadamard;
    case LOOM_OP_GROUPED_SOFTMAX: return cpu_grouped_softmax;
    default: return NULL;
    }
}

static loom_status check_ids(cpu_device *dev, const loom_tensor_view *ids, int64_t n_rows) {
    for (int64_t i2 = 0; i2 < ids->ne[2]; i2++)
        for (int64_t i1 = 0; i1 < ids->ne[1]; i1++)
            for (int64_t i0 = 0; i0 < ids->ne[0]; i0++) {
                int32_t id;
                memcpy(&id, cpu_row(ids, i1, i2, 0) + i0 * ids->nb[0], sizeof id);
                if (id < 0 || id >= n_rows) {
                    cpu_set_error(dev, "get_rows: row id %d out of range [0, %lld)", id, (long long)n_rows);
                    return LOOM_ERR_INVALID_ARGUMENT;
                }
            }
    return LOOM_OK;
}

static loom_status cpu_compute(void *devp, const loom_op_params *params, const loom_tensor_view *dst,
                               const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    cpu_device *dev = devp;
    if (!dev) return LOOM_ERR_INVALID_ARGUMENT;
    char why[256];
    if (!params || !dst || (n_srcs && !srcs) || !lbu_op_check(params, dst, srcs, n_srcs, why, sizeof why)) {
        cpu_set_error(dev, "%s", params && dst ? why : "missing parameters");
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    if (!cpu_supports_op(dev, params, dst, srcs, n_srcs)) {
        cpu_set_error(dev, "%s: operands must have packed rows", lbu_op_name(params->op));
        return LOOM_ERR_UNSUPPORTED;
    }
    if (!dst->data) {
        cpu_set_error(dev, "%s: destination is not in host memory", lbu_op_name(params->op));
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    for (uint32_t i = 0; i < n_srcs; i++)
        if (!srcs[i]->data) {
            cpu_set_error(dev, "%s: source %u is not in host memory", lbu_op_name(params->op), i);
            return LOOM_ERR_INVALID_ARGUMENT;
        }
    if (params->op == LOOM_OP_GET_ROWS) {
        loom_status st = check_ids(dev, srcs[1], srcs[0]->ne[1]);
        if (st != LOOM_OK) return st;
    }
    if (params->op == LOOM_OP_ROPE) {
        /* positions must be non-negative (they index the rotation) */
        for (int64_t i = 0; i < srcs[1]->ne[0]; i++) {
            int32_t pos;
            memcpy(&pos, (const char *)srcs[1]->data + i * srcs[1]->nb[0], sizeof pos);
            if (pos < 0) {
                cpu_set_error(dev, "rope: negative position %d", pos);
                return LOOM_ERR_INVALID_ARGUMENT;
            }
        }
    }
    size_t need = cpu_scratch_floats(params, dst, srcs, n_srcs);
    for (int i = 0; i < dev->n_threads; i++) {
        if (dev->scratch_size[i] >= need) continue;
        float *p = realloc(dev->scratch[i], need * sizeof(float));
        if (!p) {
            cpu_set_error(dev, "cannot allocate %zu bytes of scratch", need * sizeof(float));
            return LOOM_ERR_OUT_OF_MEMORY;
        }
        dev->scratch[i] = p;
        dev->scratch_size[i] = need;
    }
    double work = op_work(params, dst, srcs);
    int nth = (int)(work / 32768.0) + 1;
    if (nth > dev->n_threads) nth = dev->n_threads;
    cpu_task task = {dev, params, dst, srcs, n_srcs};
    cpu_pool_run(&dev->pool, kernel_of(params->op), &task, nth);
    return LOOM_OK;
}

/* ============================================================================================ */
/* Plugin                                                                                       */
/* ============================================================================================ */

static loom_status cpu_init(const loom_host_api *host, void **state, char *reason, size_t reason_size) {
    (void)host;
    (void)reason;
    (void)reason_size;
    *state = NULL;
    return LOOM_OK;
}

static void cpu_shutdown(void *state) { (void)state; }

static const loom_backend_api cpu_api = {
    .struct_size = sizeof(loom_backend_api),
    .device_count = cpu_device_count,
    .device_info = cpu_device_info,
    .device_open = cpu_device_open,
    .device_close = cpu_device_close,
    .supports_op = cpu_supports_op,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .compute = cpu_compute,
    .synchronize = NULL,
    .weight_prepare = NULL,
    .weight_release = NULL,
    .last_error = cpu_last_error,
};

static const loom_option_def cpu_options[] = {
    {sizeof(loom_option_def), LOOM_OPT_INT, "threads", NULL,
     "worker threads of the reference backend (overrides the global 'threads'; 0 = all cores)"},
};

static const loom_plugin_desc cpu_desc = {
    .struct_size = sizeof(loom_plugin_desc),
    .abi_major = LOOM_ABI_MAJOR,
    .abi_minor = LOOM_ABI_MINOR,
    .kind = LOOM_PLUGIN_KIND_BACKEND,
    .n_options = 1,
    .name = "cpu",
    .version = "0.1.0",
    .vendor = "loom",
    .description = "CPU reference backend (plain C, pthreads): every op and weight type, the oracle for other backends",
    .capabilities = LOOM_BACKEND_CAP_HOST_MEMORY | LOOM_BACKEND_CAP_REFERENCE,
    .options = cpu_options,
    .api = &cpu_api,
    .init = cpu_init,
    .shutdown = cpu_shutdown,
};

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host);

LOOM_EXPORT const loom_plugin_desc *loom_plugin_entry(uint32_t host_abi, const loom_host_api *host) {
    if (LOOM_ABI_VERSION_MAJOR(host_abi) != LOOM_ABI_MAJOR) return NULL;
    g_host = host;
    return &cpu_desc;
}

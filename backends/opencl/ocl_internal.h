/*
 * ocl_internal.h - shared declarations of the OpenCL backend plugin (never installed).
 *
 *   ocl_plugin.c  entry point, platform/device discovery, device open/close, options, the
 *                 per-device program and kernel cache
 *   ocl_buffer.c  device buffers (split into several allocations past the allocation limit)
 *   ocl_ops.c     supports_op and compute: argument set-up and launches of kernels/<family>.cl
 */
#ifndef LOOM_OCL_INTERNAL_H
#define LOOM_OCL_INTERNAL_H

#include "loom_plugin.h"

#include <CL/cl.h>
#include <pthread.h>

#define OCL_NAME "opencl"

/* Program families (one kernels/<family>.cl each, built lazily once per device). */
enum {
    OCL_PROG_ELEMENTWISE = 0,
    OCL_PROG_NORM,
    OCL_PROG_ROPE,
    OCL_PROG_SOFTMAX,
    OCL_PROG_ATTENTION,
    OCL_PROG_MATMUL,
    OCL_PROG_COPY,
    OCL_PROG_TRANSFORM,
    OCL_PROG_COUNT
};

/* Kernels (see the table in ocl_plugin.c). */
enum {
    OCL_K_BINARY = 0,
    OCL_K_UNARY,
    OCL_K_RMS_NORM,
    OCL_K_LAYER_NORM,
    OCL_K_ROPE,
    OCL_K_SOFTMAX,
    OCL_K_ATTENTION_F32,
    OCL_K_ATTENTION_F16,
    OCL_K_MM_F32,
    OCL_K_MM_F16,
    OCL_K_MM_Q8_0,
    OCL_K_MM_Q4_0,
    OCL_K_MM_Q4_1,
    OCL_K_MM_BF16,
    OCL_K_MM_Q4_K,
    OCL_K_MM_Q6_K,
    OCL_K_COPY,
    OCL_K_GET_ROWS,
    OCL_K_WEIGHTED_SUM,
    OCL_K_HADAMARD,
    OCL_K_COUNT
};

/* One OpenCL device found at init. */
typedef struct ocl_device_rec {
    cl_platform_id platform;
    cl_device_id device;
    uint32_t platform_index;
    uint32_t device_index; /* within its platform */
    uint64_t max_alloc;
    cl_device_type type;
    char platform_name[128];
    loom_device_info info;
} ocl_device_rec;

typedef struct ocl_state {
    const loom_host_api *host;
    uint32_t n_devices;
    ocl_device_rec *devices;
} ocl_state;

/*
 * A device buffer. Buffers up to the device's allocation limit are one cl_mem. Larger ones are
 * split into chunks: chunk k holds bytes [k*step, k*step + span) of the buffer (the last one
 * less), i.e. consecutive chunks overlap by `margin` = span - step bytes and every write goes to
 * all chunks that hold the bytes. Any byte range of at most `margin` bytes therefore lies
 * entirely inside one chunk, so kernels never see a row cut in two: a weight bigger than one
 * allocation is processed chunk by chunk, a row range at a time.
 */
typedef struct ocl_buffer {
    uint64_t size;
    uint64_t step;
    uint64_t span;
    uint32_t n_chunks;
    cl_mem mem[]; /* n_chunks */
} ocl_buffer;

typedef struct ocl_device {
    ocl_state *state;
    const ocl_device_rec *rec;
    cl_context ctx;
    cl_command_queue queue;
    uint64_t max_alloc; /* effective limit of one allocation (device's, or the option) */
    uint64_t margin;    /* chunk overlap of split buffers (see ocl_buffer) */
    size_t wg;          /* work-group size of the reduction kernels (power of two) */
    uint32_t disabled;  /* bit op: declined through plugin.opencl.disable_ops */
    cl_mem flags;       /* 4 bytes: error flags written by kernels (bad row ids) */
    cl_program programs[OCL_PROG_COUNT];
    cl_kernel kernels[OCL_K_COUNT];
    char build_options[256];
    pthread_mutex_t lock; /* serialises kernel argument set-up and launches, program builds */
    char error[1024];
} ocl_device;

/* ---- ocl_plugin.c ---- */
/* Record an error on the device (printf-style) and return `status`. */
loom_status ocl_fail(ocl_device *dev, loom_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Text of an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *ocl_error_string(cl_int err);
/* The kernel `id`, building its program on first use. Caller holds dev->lock. */
loom_status ocl_kernel_get(ocl_device *dev, uint32_t id, cl_kernel *out);

/* ---- ocl_buffer.c ---- */
loom_status ocl_buffer_alloc(void *dev, uint64_t size, void **buffer, void **host_ptr);
void ocl_buffer_free(void *dev, void *buffer);
loom_status ocl_buffer_write(void *dev, void *buffer, uint64_t offset, const void *src, uint64_t size);
loom_status ocl_buffer_read(void *dev, void *buffer, uint64_t offset, void *dst, uint64_t size);
/* The allocation holding bytes [offset, offset + extent) of `buf` entirely, and the byte offset
 * of `offset` inside it. LOOM_ERR_UNSUPPORTED when the range crosses a chunk boundary by more
 * than the overlap. */
loom_status ocl_buffer_locate(const ocl_buffer *buf, uint64_t offset, uint64_t extent, cl_mem *mem,
                              int64_t *local_offset);

/* ---- ocl_ops.c ---- */
int32_t ocl_supports_op(void *dev, const loom_op_params *params, const loom_tensor_view *dst,
                        const loom_tensor_view *const *srcs, uint32_t n_srcs);
loom_status ocl_compute(void *dev, const loom_op_params *params, const loom_tensor_view *dst,
                        const loom_tensor_view *const *srcs, uint32_t n_srcs);

#endif /* LOOM_OCL_INTERNAL_H */

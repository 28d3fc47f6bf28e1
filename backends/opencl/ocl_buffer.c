/*
 * ocl_buffer.c - device buffers of the OpenCL backend.
 *
 * A buffer no larger than the device's allocation limit is one cl_mem. A larger one (a big
 * embedding table, or anything under a small plugin.opencl.max_alloc) is split into chunks that
 * overlap by dev->margin bytes (see ocl_buffer in ocl_internal.h); writes go to every chunk
 * holding the bytes, so any range of at most `margin` bytes can be read whole from one chunk.
 */
#include "ocl_internal.h"

#include <stdlib.h>
#include <string.h>

loom_status ocl_buffer_alloc(void *handle, uint64_t size, void **buffer, void **host_ptr) {
    ocl_device *dev = handle;
    ocl_buffer *buf;
    uint64_t step, span;
    uint32_t n;
    if (buffer != NULL) *buffer = NULL;
    if (host_ptr != NULL) *host_ptr = NULL;
    if (dev == NULL || buffer == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    if (size == 0) size = 4;
    if (size <= dev->max_alloc) {
        step = size;
        span = size;
        n = 1;
    } else {
        span = dev->max_alloc;
        step = dev->max_alloc - dev->margin;
        n = (uint32_t)((size - dev->margin + step - 1) / step);
        if (n < 2) n = 2;
    }
    buf = calloc(1, sizeof *buf + n * sizeof(cl_mem));
    if (buf == NULL) return ocl_fail(dev, LOOM_ERR_OUT_OF_MEMORY, "out of host memory for a buffer record");
    buf->size = size;
    buf->step = step;
    buf->span = span;
    buf->n_chunks = n;
    for (uint32_t k = 0; k < n; k++) {
        uint64_t begin = (uint64_t)k * step;
        uint64_t len = size - begin < span ? size - begin : span;
        cl_int err;
        buf->mem[k] = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, (size_t)len, NULL, &err);
        if (buf->mem[k] == NULL || err != CL_SUCCESS) {
            buf->mem[k] = NULL;
            ocl_buffer_free(dev, buf);
            return ocl_fail(dev, LOOM_ERR_OUT_OF_MEMORY, "clCreateBuffer(%llu bytes, chunk %u of %u) failed: %s",
                            (unsigned long long)len, (unsigned)k + 1, (unsigned)n, ocl_error_string(err));
        }
    }
    *buffer = buf;
    return LOOM_OK;
}

void ocl_buffer_free(void *handle, void *buffer) {
    ocl_buffer *buf = buffer;
    (void)handle;
    if (buf == NULL) return;
    for (uint32_t k = 0; k < buf->n_chunks; k++)
        if (buf->mem[k] != NULL) clReleaseMemObject(buf->mem[k]);
    free(buf);
}

static uint64_t chunk_len(const ocl_buffer *buf, uint32_t k) {
    uint64_t begin = (uint64_t)k * buf->step;
    return buf->size - begin < buf->span ? buf->size - begin : buf->span;
}

loom_status ocl_buffer_write(void *handle, void *buffer, uint64_t offset, const void *src, uint64_t size) {
    ocl_device *dev = handle;
    ocl_buffer *buf = buffer;
    if (dev == NULL || buf == NULL || (src == NULL && size != 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (offset > buf->size || size > buf->size - offset)
        return ocl_fail(dev, LOOM_ERR_INVALID_ARGUMENT, "buffer_write of %llu bytes at %llu past the end (%llu bytes)",
                        (unsigned long long)size, (unsigned long long)offset, (unsigned long long)buf->size);
    for (uint32_t k = 0; k < buf->n_chunks && size != 0; k++) {
        uint64_t begin = (uint64_t)k * buf->step, end = begin + chunk_len(buf, k);
        uint64_t lo = offset > begin ? offset : begin, hi = offset + size < end ? offset + size : end;
        cl_int err;
        if (lo >= hi) continue;
        err = clEnqueueWriteBuffer(dev->queue, buf->mem[k], CL_TRUE, (size_t)(lo - begin), (size_t)(hi - lo),
                                   (const char *)src + (lo - offset), 0, NULL, NULL);
        if (err != CL_SUCCESS)
            return ocl_fail(dev, LOOM_ERR_BACKEND, "clEnqueueWriteBuffer failed: %s", ocl_error_string(err));
    }
    return LOOM_OK;
}

loom_status ocl_buffer_read(void *handle, void *buffer, uint64_t offset, void *dst, uint64_t size) {
    ocl_device *dev = handle;
    ocl_buffer *buf = buffer;
    if (dev == NULL || buf == NULL || (dst == NULL && size != 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (offset > buf->size || size > buf->size - offset)
        return ocl_fail(dev, LOOM_ERR_INVALID_ARGUMENT, "buffer_read of %llu bytes at %llu past the end (%llu bytes)",
                        (unsigned long long)size, (unsigned long long)offset, (unsigned long long)buf->size);
    /* Each byte is read from the chunk whose own (non-overlap) part [k*step, (k+1)*step) holds it. */
    while (size != 0) {
        uint32_t k = (uint32_t)(offset / buf->step);
        uint64_t begin, end, n;
        cl_int err;
        if (k >= buf->n_chunks) k = buf->n_chunks - 1;
        begin = (uint64_t)k * buf->step;
        end = begin + chunk_len(buf, k);
        n = end - offset < size ? end - offset : size;
        err = clEnqueueReadBuffer(dev->queue, buf->mem[k], CL_TRUE, (size_t)(offset - begin), (size_t)n, dst, 0, NULL,
                                  NULL);
        if (err != CL_SUCCESS)
            return ocl_fail(dev, LOOM_ERR_BACKEND, "clEnqueueReadBuffer failed: %s", ocl_error_string(err));
        offset += n;
        size -= n;
        dst = (char *)dst + n;
    }
    return LOOM_OK;
}

loom_status ocl_buffer_locate(const ocl_buffer *buf, uint64_t offset, uint64_t extent, cl_mem *mem,
                              int64_t *local_offset) {
    uint32_t k;
    uint64_t begin;
    if (buf == NULL || offset > buf->size || extent > buf->size - offset) return LOOM_ERR_INVALID_ARGUMENT;
    k = (uint32_t)(offset / buf->step);
    if (k >= buf->n_chunks) k = buf->n_chunks - 1;
    begin = (uint64_t)k * buf->step;
    if (offset + extent > begin + chunk_len(buf, k)) return LOOM_ERR_UNSUPPORTED;
    *mem = buf->mem[k];
    *local_offset = (int64_t)(offset - begin);
    return LOOM_OK;
}

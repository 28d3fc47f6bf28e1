/*
 * ocl_ops.c - which ops the OpenCL backend runs (supports_op) and how (compute): operand checks,
 * resolution of buffers to allocations, kernel arguments and launch sizes for kernels/<family>.cl.
 *
 * supports_op and compute apply the same checks (check_op), so the engine never hands compute
 * an op it would refuse; everything else falls back to the CPU reference in the engine.
 */
#include "ocl_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ============================================================================================ */
/* Types and views                                                                              */
/* ============================================================================================ */

/* Block size and bytes of the types this backend reads or writes (0 for others). */
static void type_size(uint32_t type, int64_t *block, int64_t *bytes) {
    *block = 1;
    switch (type) {
    case LOOM_TYPE_F32: *bytes = 4; break;
    case LOOM_TYPE_F16: *bytes = 2; break;
    case LOOM_TYPE_BF16: *bytes = 2; break;
    case LOOM_TYPE_I32: *bytes = 4; break;
    case LOOM_TYPE_Q8_0:
        *block = 32;
        *bytes = 34;
        break;
    case LOOM_TYPE_Q4_0:
        *block = 32;
        *bytes = 18;
        break;
    case LOOM_TYPE_Q4_1:
        *block = 32;
        *bytes = 20;
        break;
    case LOOM_TYPE_Q4_K:
        *block = 256;
        *bytes = 144;
        break;
    case LOOM_TYPE_Q6_K:
        *block = 256;
        *bytes = 210;
        break;
    default: *bytes = 0; break;
    }
}

static int is_float_type(uint32_t t) { return t == LOOM_TYPE_F32 || t == LOOM_TYPE_F16 || t == LOOM_TYPE_BF16; }

static int is_quant_type(uint32_t t) {
    return t == LOOM_TYPE_Q8_0 || t == LOOM_TYPE_Q4_0 || t == LOOM_TYPE_Q4_1 || t == LOOM_TYPE_Q4_K ||
           t == LOOM_TYPE_Q6_K;
}

static int is_weight_type(uint32_t t) { return is_float_type(t) || is_quant_type(t); }

static int64_t nelements(const loom_tensor_view *v) { return v->ne[0] * v->ne[1] * v->ne[2] * v->ne[3]; }

static int same_shape(const loom_tensor_view *a, const loom_tensor_view *b) {
    for (int i = 0; i < LOOM_MAX_DIMS; i++)
        if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

/* b repeats evenly over a along every dimension >= first. */
static int repeats(const loom_tensor_view *a, const loom_tensor_view *b, int first) {
    for (int i = first; i < LOOM_MAX_DIMS; i++)
        if (b->ne[i] <= 0 || a->ne[i] % b->ne[i] != 0) return 0;
    return 1;
}

/* A view the kernels can address: known type, sane shape and strides, the element (block)
 * stride at least the element size, every count within int range. */
static int view_ok(const loom_tensor_view *v) {
    int64_t block, bytes;
    if (v == NULL) return 0;
    type_size(v->type, &block, &bytes);
    if (bytes == 0) return 0;
    for (int i = 0; i < LOOM_MAX_DIMS; i++) {
        if (v->ne[i] < 1 || v->ne[i] > INT32_MAX || v->nb[i] < 0) return 0;
    }
    if (v->ne[0] % block != 0) return 0;
    if (block > 1 && v->nb[0] != bytes) return 0; /* blocks are read contiguously */
    if (v->nb[0] < bytes && v->ne[0] > 1) return 0;
    if (v->offset % (uint64_t)(block > 1 ? 2 : bytes) != 0) return 0;
    for (int i = 1; i < LOOM_MAX_DIMS; i++)
        if (v->ne[i] > 1 && v->nb[i] % (block > 1 ? 2 : bytes) != 0) return 0;
    return 1;
}

/* Bytes from element 0 to the end of the last element of a view. */
static uint64_t view_extent(const loom_tensor_view *v) {
    int64_t block, bytes, e;
    type_size(v->type, &block, &bytes);
    e = (v->ne[0] / block - 1) * v->nb[0] + bytes;
    for (int i = 1; i < LOOM_MAX_DIMS; i++)
        e += (v->ne[i] - 1) * v->nb[i];
    return (uint64_t)e;
}

static const loom_tensor_view *src_at(const loom_tensor_view *const *srcs, uint32_t n, uint32_t i) {
    return srcs != NULL && i < n ? srcs[i] : NULL;
}

/* ============================================================================================ */
/* What is supported                                                                            */
/* ============================================================================================ */

/* NULL when (op, operands) is supported, else why not (static text). */
static const char *check_op(const ocl_device *dev, const loom_op_params *p, const loom_tensor_view *dst,
                            const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    const loom_tensor_view *a = src_at(srcs, n_srcs, 0), *b = src_at(srcs, n_srcs, 1), *c = src_at(srcs, n_srcs, 2);
    if (p == NULL || dst == NULL || a == NULL) return "missing params, dst or src0";
    if (p->op < 32 && (dev->disabled & (1u << p->op)) != 0) return "op declined by plugin.opencl.disable_ops";
    if (!view_ok(dst) || !view_ok(a) || (b != NULL && !view_ok(b)) || (c != NULL && !view_ok(c)))
        return "an operand has a type, shape or stride the kernels cannot address";
    switch (p->op) {
    case LOOM_OP_ADD:
    case LOOM_OP_MUL:
    case LOOM_OP_SWIGLU:
        if (b == NULL || a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || !is_float_type(b->type) ||
            (p->op == LOOM_OP_SWIGLU && b->type != LOOM_TYPE_F32))
            return "binary ops take F32 src0 and dst, src1 F32 (or F16/BF16 for add and mul)";
        if (!same_shape(a, dst) || !repeats(a, b, 0))
            return "dst must have src0's shape and src1 must repeat evenly over src0";
        return NULL;
    case LOOM_OP_SCALE:
    case LOOM_OP_SILU:
    case LOOM_OP_GELU:
        if (a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || !same_shape(a, dst))
            return "unary ops take F32 src0 and dst of the same shape";
        return NULL;
    case LOOM_OP_RMS_NORM:
    case LOOM_OP_LAYER_NORM:
        if (a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || !same_shape(a, dst))
            return "norms take F32 src0 and dst of the same shape";
        for (int i = 1; i <= (p->op == LOOM_OP_RMS_NORM ? 1 : 2); i++) {
            const loom_tensor_view *g = src_at(srcs, n_srcs, (uint32_t)i);
            if (g != NULL && (!is_float_type(g->type) || g->ne[0] != a->ne[0] || !repeats(a, g, 1)))
                return "norm gain/bias must be F32, F16 or BF16 with src0's row length, repeating over rows";
        }
        return NULL;
    case LOOM_OP_MATMUL: {
        int64_t block, bytes;
        if (b == NULL || a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || a->nb[0] != 4)
            return "matmul takes F32 activations contiguous along k and an F32 dst";
        if (!is_weight_type(b->type)) return "matmul weights must be F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K";
        type_size(b->type, &block, &bytes);
        if (b->nb[0] != bytes || b->ne[0] != a->ne[0])
            return "matmul weights must be contiguous along k, with src0's k";
        if (dst->ne[0] != b->ne[1] || dst->ne[1] != a->ne[1] || dst->ne[2] != a->ne[2] || dst->ne[3] != a->ne[3])
            return "matmul dst must be [.., n, m]";
        if (!repeats(a, b, 2)) return "matmul weight batches must divide the activation batches";
        return NULL;
    }
    case LOOM_OP_ROPE: {
        int32_t n_rot = p->i[1] != 0 ? p->i[1] : (int32_t)a->ne[0];
        if (b == NULL || a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || !same_shape(a, dst))
            return "rope takes F32 src0 and dst of the same shape and I32 positions";
        if (b->type != LOOM_TYPE_I32 || b->ne[0] != a->ne[2] || nelements(b) != b->ne[0])
            return "rope positions must be I32 with one entry per token (src0 ne[2])";
        if (p->i[0] != 0 && p->i[0] != 1) return "rope mode must be 0 (interleaved) or 1 (half-split)";
        if (a->ne[0] % 2 != 0 || n_rot <= 0 || n_rot % 2 != 0 || n_rot > a->ne[0])
            return "rope needs an even head size and an even rotated count <= head size";
        return NULL;
    }
    case LOOM_OP_SOFTMAX:
        if (a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || !same_shape(a, dst))
            return "softmax takes F32 src0 and dst of the same shape";
        if (b != NULL && (!is_float_type(b->type) || b->ne[0] < a->ne[0] || !repeats(a, b, 1)))
            return "softmax mask must be F32, F16 or BF16, at least a row long, repeating over rows";
        return NULL;
    case LOOM_OP_ATTENTION: {
        int64_t kv_bytes = b != NULL && b->type == LOOM_TYPE_F16 ? 2 : 4;
        if (b == NULL || c == NULL || a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || !same_shape(a, dst))
            return "attention takes F32 q and dst of the same shape, and K and V";
        if ((b->type != LOOM_TYPE_F32 && b->type != LOOM_TYPE_F16) || c->type != b->type)
            return "attention K and V must both be F32 or both F16";
        if (a->nb[0] != 4 || dst->nb[0] != 4 || b->nb[0] != kv_bytes || c->nb[0] != kv_bytes)
            return "attention operands must be contiguous along the head dimension";
        if (b->ne[0] != a->ne[0] || c->ne[0] != a->ne[0] || a->ne[0] > 256)
            return "attention head sizes must match and be at most 256";
        if (c->ne[1] != b->ne[1] || a->ne[1] % b->ne[1] != 0 || c->ne[2] < b->ne[2])
            return "attention K/V heads must divide the query heads and V hold every key";
        if (a->ne[3] != 1 || b->ne[3] != 1 || c->ne[3] != 1) return "attention operands are 3-D";
        return NULL;
    }
    case LOOM_OP_COPY:
        if (nelements(a) != nelements(dst)) return "copy needs the same number of elements";
        if ((is_float_type(a->type) && is_float_type(dst->type)) ||
            (a->type == LOOM_TYPE_I32 && dst->type == LOOM_TYPE_I32))
            return NULL;
        return "copy converts between F32, F16 and BF16, or copies I32";
    case LOOM_OP_GET_ROWS:
        if (b == NULL || !is_weight_type(a->type) || b->type != LOOM_TYPE_I32 || dst->type != LOOM_TYPE_F32)
            return "get_rows takes a table of a weight type, I32 ids and an F32 dst";
        if (a->ne[2] != 1 || a->ne[3] != 1 || b->ne[3] != 1 || dst->ne[0] != a->ne[0] || dst->ne[1] != b->ne[0] ||
            dst->ne[2] != b->ne[1] || dst->ne[3] != b->ne[2])
            return "get_rows takes a 2-D table, ids [n, a, b] and a [row, n, a, b] dst";
        return NULL;
    case LOOM_OP_WEIGHTED_SUM:
        if (b == NULL || a->type != LOOM_TYPE_F32 || b->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32)
            return "weighted_sum operands must be F32";
        if (a->ne[3] != 1 || nelements(b) != a->ne[2] || dst->ne[0] != a->ne[0] || dst->ne[1] != a->ne[1] ||
            dst->ne[2] != 1 || dst->ne[3] != 1)
            return "weighted_sum takes [d, n, S] states, S weights and a [d, n] dst";
        return NULL;
    case LOOM_OP_HADAMARD: {
        int64_t g = p->i[0] != 0 ? p->i[0] : a->ne[0];
        if (a->type != LOOM_TYPE_F32 || dst->type != LOOM_TYPE_F32 || !same_shape(a, dst))
            return "hadamard takes F32 src0 and dst of the same shape";
        if (g <= 0 || (g & (g - 1)) != 0 || a->ne[0] % g != 0)
            return "hadamard groups must be a power of two dividing the row";
        return NULL;
    }
    default: return "op not implemented by the OpenCL backend";
    }
}

int32_t ocl_supports_op(void *handle, const loom_op_params *params, const loom_tensor_view *dst,
                        const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    return check_op(handle, params, dst, srcs, n_srcs) == NULL;
}

/* ============================================================================================ */
/* Launch helpers                                                                               */
/* ============================================================================================ */

typedef struct operand {
    cl_mem mem;
    int64_t off;
} operand;

typedef struct launch {
    ocl_device *dev;
    cl_kernel k;
    cl_uint idx;
    cl_int err;
} launch;

static loom_status resolve(ocl_device *dev, const loom_tensor_view *v, const char *what, operand *out) {
    loom_status rc;
    if (v->buffer == NULL) return ocl_fail(dev, LOOM_ERR_INVALID_ARGUMENT, "%s is not in an OpenCL buffer", what);
    rc = ocl_buffer_locate(v->buffer, v->offset, view_extent(v), &out->mem, &out->off);
    if (rc == LOOM_ERR_UNSUPPORTED)
        return ocl_fail(dev, rc,
                        "%s (%llu bytes at offset %llu) crosses the boundary of a buffer split over several "
                        "allocations (max_alloc %llu)",
                        what, (unsigned long long)view_extent(v), (unsigned long long)v->offset,
                        (unsigned long long)dev->max_alloc);
    if (rc != LOOM_OK) return ocl_fail(dev, rc, "%s lies outside its buffer", what);
    return LOOM_OK;
}

static void arg(launch *l, size_t size, const void *value) {
    cl_int err = clSetKernelArg(l->k, l->idx++, size, value);
    if (err != CL_SUCCESS && l->err == CL_SUCCESS) l->err = err;
}

static void arg_i(launch *l, int32_t v) {
    cl_int x = v;
    arg(l, sizeof x, &x);
}

static void arg_f(launch *l, float v) {
    cl_float x = v;
    arg(l, sizeof x, &x);
}

static void arg_l(launch *l, int64_t v) {
    cl_long x = v;
    arg(l, sizeof x, &x);
}

/* The 10 arguments of a tensor (T_ARGS in common.cl); v may be NULL for an absent operand. */
static void arg_tensor(launch *l, const operand *o, const loom_tensor_view *v) {
    cl_mem none = NULL;
    arg(l, sizeof(cl_mem), o != NULL ? &o->mem : &none);
    arg_l(l, o != NULL ? o->off : 0);
    for (int i = 0; i < 4; i++)
        arg_i(l, v != NULL ? (int32_t)v->ne[i] : 1);
    for (int i = 0; i < 4; i++)
        arg_l(l, v != NULL ? v->nb[i] : 0);
}

static loom_status begin(ocl_device *dev, uint32_t kernel, launch *l) {
    l->dev = dev;
    l->idx = 0;
    l->err = CL_SUCCESS;
    return ocl_kernel_get(dev, kernel, &l->k);
}

static loom_status run(launch *l, const char *what, cl_uint dims, const size_t *global, const size_t *local) {
    cl_int err;
    if (l->err != CL_SUCCESS)
        return ocl_fail(l->dev, LOOM_ERR_BACKEND, "%s: clSetKernelArg failed: %s", what, ocl_error_string(l->err));
    for (cl_uint i = 0; i < dims; i++)
        if (global[i] == 0) return LOOM_OK;
    err = clEnqueueNDRangeKernel(l->dev->queue, l->k, dims, NULL, global, local, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(l->dev, LOOM_ERR_BACKEND, "%s: clEnqueueNDRangeKernel failed: %s (%d)", what,
                        ocl_error_string(err), (int)err);
    return LOOM_OK;
}

/* ============================================================================================ */
/* Ops                                                                                          */
/* ============================================================================================ */

static loom_status op_elementwise(ocl_device *dev, const loom_op_params *p, const loom_tensor_view *dst,
                                  const loom_tensor_view *a, const loom_tensor_view *b) {
    operand oa, ob, od;
    launch l;
    size_t global[3] = {(size_t)dst->ne[0], (size_t)dst->ne[1], (size_t)(dst->ne[2] * dst->ne[3])};
    loom_status rc;
    int binary = p->op == LOOM_OP_ADD || p->op == LOOM_OP_MUL || p->op == LOOM_OP_SWIGLU;
    if ((rc = resolve(dev, a, "src0", &oa)) || (binary && (rc = resolve(dev, b, "src1", &ob))) ||
        (rc = resolve(dev, dst, "dst", &od)))
        return rc;
    if ((rc = begin(dev, binary ? OCL_K_BINARY : OCL_K_UNARY, &l)) != LOOM_OK) return rc;
    if (binary) {
        arg_i(&l, p->op == LOOM_OP_ADD ? 0 : p->op == LOOM_OP_MUL ? 1 : 2);
        arg_i(&l, (int32_t)b->type);
        arg_tensor(&l, &oa, a);
        arg_tensor(&l, &ob, b);
    } else {
        arg_i(&l, p->op == LOOM_OP_SCALE ? 0 : p->op == LOOM_OP_SILU ? 1 : 2);
        arg_f(&l, p->f[0]);
        arg_tensor(&l, &oa, a);
    }
    arg_tensor(&l, &od, dst);
    return run(&l, "elementwise", 3, global, NULL);
}

static loom_status op_norm(ocl_device *dev, const loom_op_params *p, const loom_tensor_view *dst,
                           const loom_tensor_view *a, const loom_tensor_view *w, const loom_tensor_view *bias) {
    operand oa, ow, ob, od;
    launch l;
    size_t rows = (size_t)(a->ne[1] * a->ne[2] * a->ne[3]);
    size_t global = rows * dev->wg, local = dev->wg;
    loom_status rc;
    int layer = p->op == LOOM_OP_LAYER_NORM;
    if ((rc = resolve(dev, a, "src0", &oa)) || (w != NULL && (rc = resolve(dev, w, "norm gain", &ow))) ||
        (bias != NULL && (rc = resolve(dev, bias, "norm bias", &ob))) || (rc = resolve(dev, dst, "dst", &od)))
        return rc;
    if ((rc = begin(dev, layer ? OCL_K_LAYER_NORM : OCL_K_RMS_NORM, &l)) != LOOM_OK) return rc;
    arg_f(&l, p->f[0]);
    arg_i(&l, w != NULL ? (int32_t)w->type : -1);
    if (layer) arg_i(&l, bias != NULL ? (int32_t)bias->type : -1);
    arg_tensor(&l, &oa, a);
    arg_tensor(&l, w != NULL ? &ow : NULL, w);
    if (layer) arg_tensor(&l, bias != NULL ? &ob : NULL, bias);
    arg_tensor(&l, &od, dst);
    return run(&l, "norm", 1, &global, &local);
}

static loom_status op_rope(ocl_device *dev, const loom_op_params *p, const loom_tensor_view *dst,
                           const loom_tensor_view *a, const loom_tensor_view *pos) {
    operand oa, op, od;
    launch l;
    size_t global[3] = {(size_t)(a->ne[0] / 2), (size_t)a->ne[1], (size_t)(a->ne[2] * a->ne[3])};
    loom_status rc;
    if ((rc = resolve(dev, a, "src0", &oa)) || (rc = resolve(dev, pos, "positions", &op)) ||
        (rc = resolve(dev, dst, "dst", &od)))
        return rc;
    if ((rc = begin(dev, OCL_K_ROPE, &l)) != LOOM_OK) return rc;
    arg_i(&l, p->i[0]);
    arg_i(&l, p->i[1] != 0 ? p->i[1] : (int32_t)a->ne[0]);
    arg_f(&l, p->f[0]);
    arg_f(&l, p->f[1] != 0.0f ? p->f[1] : 1.0f);
    arg_tensor(&l, &oa, a);
    arg_tensor(&l, &op, pos);
    arg_tensor(&l, &od, dst);
    return run(&l, "rope", 3, global, NULL);
}

static loom_status op_softmax(ocl_device *dev, const loom_op_params *p, const loom_tensor_view *dst,
                              const loom_tensor_view *a, const loom_tensor_view *mask) {
    operand oa, om, od;
    launch l;
    size_t rows = (size_t)(a->ne[1] * a->ne[2] * a->ne[3]);
    size_t global = rows * dev->wg, local = dev->wg;
    loom_status rc;
    if ((rc = resolve(dev, a, "src0", &oa)) || (mask != NULL && (rc = resolve(dev, mask, "mask", &om))) ||
        (rc = resolve(dev, dst, "dst", &od)))
        return rc;
    if ((rc = begin(dev, OCL_K_SOFTMAX, &l)) != LOOM_OK) return rc;
    arg_f(&l, p->f[0] != 0.0f ? p->f[0] : 1.0f); /* scale 0 means 1 */
    arg_i(&l, mask != NULL);
    arg_i(&l, mask != NULL ? (int32_t)mask->type : 0);
    arg_i(&l, p->i[0] == 1);
    arg_i(&l, p->i[1]);
    arg_tensor(&l, &oa, a);
    arg_tensor(&l, mask != NULL ? &om : NULL, mask);
    arg_tensor(&l, &od, dst);
    return run(&l, "softmax", 1, &global, &local);
}

static loom_status op_attention(ocl_device *dev, const loom_op_params *p, const loom_tensor_view *dst,
                                const loom_tensor_view *q, const loom_tensor_view *k, const loom_tensor_view *v) {
    operand oq, ok, ov, od;
    launch l;
    size_t global[2] = {(size_t)q->ne[1] * dev->wg, (size_t)q->ne[2]};
    size_t local[2] = {dev->wg, 1};
    loom_status rc;
    if ((rc = resolve(dev, q, "q", &oq)) || (rc = resolve(dev, k, "K", &ok)) || (rc = resolve(dev, v, "V", &ov)) ||
        (rc = resolve(dev, dst, "dst", &od)))
        return rc;
    if ((rc = begin(dev, k->type == LOOM_TYPE_F16 ? OCL_K_ATTENTION_F16 : OCL_K_ATTENTION_F32, &l)) != LOOM_OK)
        return rc;
    arg_f(&l, p->f[0] != 0.0f ? p->f[0] : (float)(1.0 / sqrt((double)q->ne[0]))); /* 0: 1/sqrt(hd) */
    arg_i(&l, p->i[0]);
    arg_tensor(&l, &oq, q);
    arg_tensor(&l, &ok, k);
    arg_tensor(&l, &ov, v);
    arg_tensor(&l, &od, dst);
    return run(&l, "attention", 2, global, local);
}

static uint32_t mm_kernel(uint32_t type) {
    switch (type) {
    case LOOM_TYPE_F16: return OCL_K_MM_F16;
    case LOOM_TYPE_Q8_0: return OCL_K_MM_Q8_0;
    case LOOM_TYPE_Q4_0: return OCL_K_MM_Q4_0;
    case LOOM_TYPE_Q4_1: return OCL_K_MM_Q4_1;
    case LOOM_TYPE_BF16: return OCL_K_MM_BF16;
    case LOOM_TYPE_Q4_K: return OCL_K_MM_Q4_K;
    case LOOM_TYPE_Q6_K: return OCL_K_MM_Q6_K;
    default: return OCL_K_MM_F32;
    }
}

/*
 * Calls visit(first, count, mem, off) for consecutive ranges of rows of a 2-D (rows along ne[1])
 * operand, each range inside one allocation, with `off` such that row r of the range starts at
 * off + r * nb[1] in `mem` (off may be negative). A view that fits one allocation is one range.
 */
typedef loom_status (*row_visit_fn)(ocl_device *dev, void *ctx, int64_t first, int64_t count, const operand *o);

static loom_status for_row_ranges(ocl_device *dev, const loom_tensor_view *v, const char *what, row_visit_fn visit,
                                  void *ctx) {
    const ocl_buffer *buf = v->buffer;
    int64_t block, bytes, row_bytes, rows = v->ne[1];
    operand o;
    if (buf == NULL) return ocl_fail(dev, LOOM_ERR_INVALID_ARGUMENT, "%s is not in an OpenCL buffer", what);
    if (ocl_buffer_locate(buf, v->offset, view_extent(v), &o.mem, &o.off) == LOOM_OK)
        return visit(dev, ctx, 0, rows, &o);
    if (v->ne[2] != 1 || v->ne[3] != 1 || v->nb[1] <= 0) return resolve(dev, v, what, &o); /* reports the crossing */
    type_size(v->type, &block, &bytes);
    row_bytes = (v->ne[0] / block - 1) * v->nb[0] + bytes;
    for (int64_t r = 0; r < rows;) {
        uint64_t start = v->offset + (uint64_t)(r * v->nb[1]);
        uint64_t chunk_end = (start / buf->step + 1) * buf->step;
        int64_t r_end = (int64_t)((chunk_end - v->offset + (uint64_t)v->nb[1] - 1) / (uint64_t)v->nb[1]);
        loom_status rc;
        if (r_end > rows) r_end = rows;
        if (r_end <= r) r_end = r + 1;
        rc = ocl_buffer_locate(buf, start, (uint64_t)((r_end - 1 - r) * v->nb[1] + row_bytes), &o.mem, &o.off);
        if (rc != LOOM_OK)
            return ocl_fail(dev, LOOM_ERR_UNSUPPORTED,
                            "%s: rows of %lld bytes do not fit the %llu-byte overlap of its split buffer", what,
                            (long long)row_bytes, (unsigned long long)dev->margin);
        o.off -= r * v->nb[1];
        rc = visit(dev, ctx, r, r_end - r, &o);
        if (rc != LOOM_OK) return rc;
        r = r_end;
    }
    return LOOM_OK;
}

typedef struct mm_ctx {
    const loom_tensor_view *x, *w, *d;
    operand ox, od;
} mm_ctx;

static loom_status mm_visit(ocl_device *dev, void *ctx, int64_t first, int64_t count, const operand *ow) {
    mm_ctx *c = ctx;
    launch l;
    size_t global[3] = {(size_t)count, (size_t)((c->x->ne[1] + 7) / 8), (size_t)(c->x->ne[2] * c->x->ne[3])};
    loom_status rc = begin(dev, mm_kernel(c->w->type), &l);
    if (rc != LOOM_OK) return rc;
    arg_i(&l, (int32_t)first);
    arg_i(&l, (int32_t)count);
    arg_tensor(&l, &c->ox, c->x);
    arg_tensor(&l, ow, c->w);
    arg_tensor(&l, &c->od, c->d);
    return run(&l, "matmul", 3, global, NULL);
}

static loom_status op_matmul(ocl_device *dev, const loom_tensor_view *dst, const loom_tensor_view *x,
                             const loom_tensor_view *w) {
    mm_ctx c = {x, w, dst, {NULL, 0}, {NULL, 0}};
    loom_status rc;
    if ((rc = resolve(dev, x, "src0", &c.ox)) || (rc = resolve(dev, dst, "dst", &c.od))) return rc;
    return for_row_ranges(dev, w, "matmul weight", mm_visit, &c);
}

typedef struct gr_ctx {
    const loom_tensor_view *t, *ids, *d;
    operand oi, od;
} gr_ctx;

static loom_status gr_visit(ocl_device *dev, void *ctx, int64_t first, int64_t count, const operand *ot) {
    gr_ctx *c = ctx;
    launch l;
    size_t global[2] = {(size_t)c->d->ne[0], (size_t)(c->ids->ne[0] * c->ids->ne[1] * c->ids->ne[2])};
    loom_status rc = begin(dev, OCL_K_GET_ROWS, &l);
    if (rc != LOOM_OK) return rc;
    arg_i(&l, (int32_t)c->t->type);
    arg_i(&l, (int32_t)c->t->ne[1]);
    arg_i(&l, (int32_t)first);
    arg_i(&l, (int32_t)count);
    arg_tensor(&l, ot, c->t);
    arg_tensor(&l, &c->oi, c->ids);
    arg_tensor(&l, &c->od, c->d);
    arg(&l, sizeof(cl_mem), &dev->flags);
    return run(&l, "get_rows", 2, global, NULL);
}

static loom_status op_get_rows(ocl_device *dev, const loom_tensor_view *dst, const loom_tensor_view *table,
                               const loom_tensor_view *ids) {
    gr_ctx c = {table, ids, dst, {NULL, 0}, {NULL, 0}};
    cl_int flag = 0, zero = 0, err;
    loom_status rc;
    if ((rc = resolve(dev, ids, "ids", &c.oi)) || (rc = resolve(dev, dst, "dst", &c.od))) return rc;
    rc = for_row_ranges(dev, table, "get_rows table", gr_visit, &c);
    if (rc != LOOM_OK) return rc;
    err = clEnqueueReadBuffer(dev->queue, dev->flags, CL_TRUE, 0, sizeof flag, &flag, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return ocl_fail(dev, LOOM_ERR_BACKEND, "get_rows: reading the error flag failed: %s", ocl_error_string(err));
    if (flag != 0) {
        clEnqueueWriteBuffer(dev->queue, dev->flags, CL_TRUE, 0, sizeof zero, &zero, 0, NULL, NULL);
        return ocl_fail(dev, LOOM_ERR_INVALID_ARGUMENT, "get_rows: a row id is outside [0, %lld)",
                        (long long)table->ne[1]);
    }
    return LOOM_OK;
}

static loom_status op_copy(ocl_device *dev, const loom_tensor_view *dst, const loom_tensor_view *a) {
    operand oa, od;
    launch l;
    int64_t n = nelements(a);
    size_t global = (size_t)n;
    loom_status rc;
    if ((rc = resolve(dev, a, "src0", &oa)) || (rc = resolve(dev, dst, "dst", &od))) return rc;
    if ((rc = begin(dev, OCL_K_COPY, &l)) != LOOM_OK) return rc;
    arg_l(&l, n);
    arg_tensor(&l, &oa, a);
    arg_tensor(&l, &od, dst);
    arg_i(&l, (int32_t)a->type);
    arg_i(&l, (int32_t)dst->type);
    return run(&l, "copy", 1, &global, NULL);
}

static loom_status op_weighted_sum(ocl_device *dev, const loom_tensor_view *dst, const loom_tensor_view *a,
                                   const loom_tensor_view *w) {
    operand oa, ow, od;
    launch l;
    size_t global[2] = {(size_t)dst->ne[0], (size_t)dst->ne[1]};
    loom_status rc;
    if ((rc = resolve(dev, a, "states", &oa)) || (rc = resolve(dev, w, "weights", &ow)) ||
        (rc = resolve(dev, dst, "dst", &od)))
        return rc;
    if ((rc = begin(dev, OCL_K_WEIGHTED_SUM, &l)) != LOOM_OK) return rc;
    arg_tensor(&l, &oa, a);
    arg_tensor(&l, &ow, w);
    arg_tensor(&l, &od, dst);
    return run(&l, "weighted_sum", 2, global, NULL);
}

static loom_status op_hadamard(ocl_device *dev, const loom_op_params *p, const loom_tensor_view *dst,
                               const loom_tensor_view *a) {
    operand oa, od;
    launch l;
    int64_t g = p->i[0] != 0 ? p->i[0] : a->ne[0];
    size_t global[2] = {(size_t)(a->ne[0] / g), (size_t)(a->ne[1] * a->ne[2] * a->ne[3])};
    loom_status rc;
    if ((rc = resolve(dev, a, "src0", &oa)) || (rc = resolve(dev, dst, "dst", &od))) return rc;
    if ((rc = begin(dev, OCL_K_HADAMARD, &l)) != LOOM_OK) return rc;
    arg_i(&l, (int32_t)g);
    arg_tensor(&l, &oa, a);
    arg_tensor(&l, &od, dst);
    return run(&l, "hadamard", 2, global, NULL);
}

loom_status ocl_compute(void *handle, const loom_op_params *p, const loom_tensor_view *dst,
                        const loom_tensor_view *const *srcs, uint32_t n_srcs) {
    ocl_device *dev = handle;
    const loom_tensor_view *a = src_at(srcs, n_srcs, 0), *b = src_at(srcs, n_srcs, 1), *c = src_at(srcs, n_srcs, 2);
    const char *why;
    loom_status rc;
    if (dev == NULL) return LOOM_ERR_INVALID_ARGUMENT;
    why = check_op(dev, p, dst, srcs, n_srcs);
    if (why != NULL) return ocl_fail(dev, LOOM_ERR_UNSUPPORTED, "op %u: %s", p != NULL ? (unsigned)p->op : 0u, why);
    pthread_mutex_lock(&dev->lock);
    switch (p->op) {
    case LOOM_OP_ADD:
    case LOOM_OP_MUL:
    case LOOM_OP_SWIGLU:
    case LOOM_OP_SCALE:
    case LOOM_OP_SILU:
    case LOOM_OP_GELU: rc = op_elementwise(dev, p, dst, a, b); break;
    case LOOM_OP_RMS_NORM:
    case LOOM_OP_LAYER_NORM: rc = op_norm(dev, p, dst, a, b, p->op == LOOM_OP_LAYER_NORM ? c : NULL); break;
    case LOOM_OP_MATMUL: rc = op_matmul(dev, dst, a, b); break;
    case LOOM_OP_ROPE: rc = op_rope(dev, p, dst, a, b); break;
    case LOOM_OP_SOFTMAX: rc = op_softmax(dev, p, dst, a, b); break;
    case LOOM_OP_ATTENTION: rc = op_attention(dev, p, dst, a, b, c); break;
    case LOOM_OP_COPY: rc = op_copy(dev, dst, a); break;
    case LOOM_OP_GET_ROWS: rc = op_get_rows(dev, dst, a, b); break;
    case LOOM_OP_WEIGHTED_SUM: rc = op_weighted_sum(dev, dst, a, b); break;
    case LOOM_OP_HADAMARD: rc = op_hadamard(dev, p, dst, a); break;
    default: rc = ocl_fail(dev, LOOM_ERR_UNSUPPORTED, "op %u is not implemented", (unsigned)p->op); break;
    }
    pthread_mutex_unlock(&dev->lock);
    return rc;
}

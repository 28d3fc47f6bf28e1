/*
 * ops_suite.h - the op-conformance suite shared by test_ops_reference (the CPU reference against
 * independent double-precision expectations) and test_ops_backends (every other backend against
 * the CPU reference).
 *
 * A case is a complete description of one op call: input tensors (host bytes, type, shape, an
 * optional strided view into them, or a host weight), the destination (a base tensor filled
 * with a known pattern and an optional view into it), the parameters, and the expected contents
 * of the whole destination base computed by the test's own loops (so bytes outside a view must
 * stay untouched).
 */
#ifndef LOOM_TEST_OPS_SUITE_H
#define LOOM_TEST_OPS_SUITE_H

#include "internal.h"

typedef struct th_tensor {
    uint32_t type;
    uint32_t base_dims;
    int64_t base_ne[4];
    unsigned char *bytes; /* contents of the base tensor */
    size_t n_bytes;
    int weight; /* a host weight (loom_tensor_wrap_host, LOOM_TENSOR_WEIGHT) */
    int is_view;
    uint32_t n_dims;
    int64_t ne[4];
    int64_t nb[4];
    uint64_t offset;
} th_tensor;

typedef struct th_case {
    char name[160];
    loom_op_params p;
    uint32_t n_src;
    th_tensor src[LOOM_MAX_SRC];
    th_tensor dst;
    int inplace;    /* dst is src0's tensor itself (dst spec unused) */
    double *expect; /* every element of the destination base */
    double *mag;    /* tolerance scale per element */
    size_t n_out;
    double rtol; /* reference vs expectation: |got - expect| <= atol + rtol * mag */
    double atol;
    double btol; /* backend vs reference: |b - r| <= btol * (mag + 1e-6) */
} th_case;

/* All cases of the suite (allocated; free with th_cases_free). */
th_case *th_cases_build(size_t *count);
void th_cases_free(th_case *cases, size_t count);

/* Run a case on `exec`; `out` receives n_out values of the destination base. */
loom_status th_case_run(loom_exec *exec, const th_case *c, double *out);

/* Decode n elements of a plain type (f32, f16, bf16, i32) to double. */
void th_decode_plain(uint32_t type, const unsigned char *bytes, double *out, size_t n);

/* An engine with plugins discovered the normal way (the build tree). NULL + message on failure. */
loom_engine *th_engine_create(void);

#endif

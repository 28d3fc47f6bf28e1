/*
 * ops_suite.c - the op-conformance cases and their independent expectations.
 *
 * Everything here is written from the op definitions in docs/ops.md and the block layouts in
 * ../shared/docs/formats.md, without using the backends' code: values are decoded element by
 * element, sums are taken in double in the obvious order, the Walsh-Hadamard transform uses the
 * explicit matrix, and so on.
 */
#include "ops_suite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================================================ */
/* Random data                                                                                  */
/* ============================================================================================ */

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint32_t rnd_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Uniform in [-1, 1). */
static float rnd_f(void) { return (float)((double)rnd_u32() / 2147483648.0 - 1.0); }

/* ============================================================================================ */
/* Element decoding (test-side, per element)                                                    */
/* ============================================================================================ */

static double half_to_double(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e ? ldexp(1024.0 + m, e - 25) : ldexp((double)m, -24);
    return s ? -v : v;
}

static double bf16_to_double(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return (double)f;
}

static uint16_t u16_at(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static int64_t type_block(uint32_t t) {
    switch (t) {
    case LOOM_TYPE_Q8_0:
    case LOOM_TYPE_Q4_0:
    case LOOM_TYPE_Q4_1: return 32;
    case LOOM_TYPE_Q4_K:
    case LOOM_TYPE_Q6_K: return 256;
    default: return 1;
    }
}

static int64_t type_bytes(uint32_t t) {
    switch (t) {
    case LOOM_TYPE_F32:
    case LOOM_TYPE_I32: return 4;
    case LOOM_TYPE_F16:
    case LOOM_TYPE_BF16: return 2;
    case LOOM_TYPE_Q8_0: return 34;
    case LOOM_TYPE_Q4_0: return 18;
    case LOOM_TYPE_Q4_1: return 20;
    case LOOM_TYPE_Q4_K: return 144;
    case LOOM_TYPE_Q6_K: return 210;
    default: return 0;
    }
}

/* Element j of the block (or plain element) at p. */
static double elem_at(uint32_t type, const unsigned char *p, int j) {
    switch (type) {
    case LOOM_TYPE_F32: {
        float f;
        memcpy(&f, p, 4);
        return (double)f;
    }
    case LOOM_TYPE_I32: {
        int32_t i;
        memcpy(&i, p, 4);
        return (double)i;
    }
    case LOOM_TYPE_F16: return half_to_double(u16_at(p));
    case LOOM_TYPE_BF16: return bf16_to_double(u16_at(p));
    case LOOM_TYPE_Q8_0: return half_to_double(u16_at(p)) * (double)(int8_t)p[2 + j];
    case LOOM_TYPE_Q4_0: {
        int b = p[2 + j % 16];
        int q = j < 16 ? (b & 15) : (b >> 4);
        return (q - 8) * half_to_double(u16_at(p));
    }
    case LOOM_TYPE_Q4_1: {
        int b = p[4 + j % 16];
        int q = j < 16 ? (b & 15) : (b >> 4);
        return q * half_to_double(u16_at(p)) + half_to_double(u16_at(p + 2));
    }
    case LOOM_TYPE_Q4_K: {
        const unsigned char *s = p + 4;
        int sub = j / 32, l = j % 32, sc, mn;
        if (sub < 4) {
            sc = s[sub] & 63;
            mn = s[sub + 4] & 63;
        } else {
            sc = (s[sub + 4] & 15) | ((s[sub - 4] >> 6) << 4);
            mn = (s[sub + 4] >> 4) | ((s[sub] >> 6) << 4);
        }
        int byte = p[16 + 32 * (sub / 2) + l];
        int q = sub % 2 ? byte >> 4 : byte & 15;
        return half_to_double(u16_at(p)) * sc * q - half_to_double(u16_at(p + 2)) * mn;
    }
    case LOOM_TYPE_Q6_K: {
        int h = j / 128, r = j % 128, qd = r / 32, l = r % 32;
        int lo = p[64 * h + l + (qd & 1) * 32];
        lo = qd >= 2 ? lo >> 4 : lo & 15;
        int hi = (p[128 + 32 * h + l] >> (2 * qd)) & 3;
        int sc = (int8_t)p[192 + 8 * h + l / 16 + 2 * qd];
        return half_to_double(u16_at(p + 208)) * sc * ((lo | (hi << 4)) - 32);
    }
    default: return (double)NAN;
    }
}

void th_decode_plain(uint32_t type, const unsigned char *bytes, double *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        out[i] = elem_at(type, bytes + i * (size_t)type_bytes(type), 0);
}

/* ============================================================================================ */
/* Tensors                                                                                      */
/* ============================================================================================ */

static size_t base_bytes(uint32_t type, const int64_t *ne) {
    return (size_t)(ne[0] / type_block(type) * type_bytes(type) * ne[1] * ne[2] * ne[3]);
}

static void contiguous_nb(uint32_t type, const int64_t *ne, int64_t *nb) {
    nb[0] = type_bytes(type);
    nb[1] = nb[0] * (ne[0] / type_block(type));
    nb[2] = nb[1] * ne[1];
    nb[3] = nb[2] * ne[2];
}

/* Fill with random valid data of the type. */
static void fill_random(uint32_t type, unsigned char *p, size_t n_bytes, double range) {
    static const uint16_t scales[] = {0x2000, 0x2400, 0x1c00, 0xa000, 0x2a00, 0x2266}; /* 2^-7, 2^-6, ... */
    size_t bb = (size_t)type_bytes(type);
    for (size_t i = 0; i < n_bytes; i++)
        p[i] = (unsigned char)rnd_u32();
    for (size_t off = 0; off + bb <= n_bytes; off += bb) {
        unsigned char *b = p + off;
        uint16_t s1 = scales[rnd_u32() % 6], s2 = scales[rnd_u32() % 6] & 0x7fff;
        switch (type) {
        case LOOM_TYPE_F32: {
            float f = (float)((double)rnd_f() * range);
            memcpy(b, &f, 4);
            break;
        }
        case LOOM_TYPE_F16: { /* |x| in [2^-5, 2^1) * range scale kept by choosing the exponent */
            uint16_t h = (uint16_t)((rnd_u32() & 0x8000u) | ((10u + rnd_u32() % 6u) << 10) | (rnd_u32() & 0x3ffu));
            memcpy(b, &h, 2);
            break;
        }
        case LOOM_TYPE_BF16: {
            uint16_t h = (uint16_t)((rnd_u32() & 0x8000u) | ((122u + rnd_u32() % 6u) << 7) | (rnd_u32() & 0x7fu));
            memcpy(b, &h, 2);
            break;
        }
        case LOOM_TYPE_Q8_0:
        case LOOM_TYPE_Q4_0: memcpy(b, &s1, 2); break;
        case LOOM_TYPE_Q4_1:
            memcpy(b, &s1, 2);
            memcpy(b + 2, &s2, 2);
            break;
        case LOOM_TYPE_Q4_K:
            s1 &= 0x7fff;
            memcpy(b, &s1, 2);
            memcpy(b + 2, &s2, 2);
            break;
        case LOOM_TYPE_Q6_K: memcpy(b + 208, &s1, 2); break;
        default: break;
        }
    }
}

/* A contiguous tensor with random contents. */
static th_tensor t_dense(uint32_t type, uint32_t n_dims, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    th_tensor t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.base_dims = n_dims;
    t.base_ne[0] = n0, t.base_ne[1] = n1, t.base_ne[2] = n2, t.base_ne[3] = n3;
    t.n_bytes = base_bytes(type, t.base_ne);
    t.bytes = malloc(t.n_bytes);
    fill_random(type, t.bytes, t.n_bytes, 1.0);
    return t;
}

static th_tensor t_scaled(uint32_t type, uint32_t n_dims, int64_t n0, int64_t n1, int64_t n2, double range) {
    th_tensor t = t_dense(type, n_dims, n0, n1, n2, 1);
    fill_random(type, t.bytes, t.n_bytes, range);
    return t;
}

static th_tensor t_i32(int64_t n0, int64_t n1, const int32_t *values) {
    th_tensor t;
    memset(&t, 0, sizeof t);
    t.type = LOOM_TYPE_I32;
    t.base_dims = n1 > 1 ? 2 : 1;
    t.base_ne[0] = n0, t.base_ne[1] = n1, t.base_ne[2] = 1, t.base_ne[3] = 1;
    t.n_bytes = (size_t)(n0 * n1) * 4;
    t.bytes = malloc(t.n_bytes);
    memcpy(t.bytes, values, t.n_bytes);
    return t;
}

/* A view of shape ne whose rows are padded (pad elements, a multiple of the block size) and
 * which starts one row plus half the padding into its base. */
static th_tensor t_padded(uint32_t type, uint32_t n_dims, int64_t n0, int64_t n1, int64_t n2, int64_t pad) {
    int64_t rows = n1 * n2;
    th_tensor t = t_dense(type, 2, n0 + pad, rows + 1, 1, 1);
    t.is_view = 1;
    t.n_dims = n_dims;
    t.ne[0] = n0, t.ne[1] = n1, t.ne[2] = n2, t.ne[3] = 1;
    int64_t row = (n0 + pad) / type_block(type) * type_bytes(type);
    t.nb[0] = type_bytes(type);
    t.nb[1] = row;
    t.nb[2] = row * n1;
    t.nb[3] = row * n1 * n2;
    t.offset = (uint64_t)(row + (pad / type_block(type) / 2) * type_bytes(type));
    return t;
}

/* A view [n0, n1, n2] of a contiguous base stored as [n0, n2, n1] (dims 1 and 2 swapped). */
static th_tensor t_permuted(uint32_t type, int64_t n0, int64_t n1, int64_t n2) {
    th_tensor t = t_dense(type, 3, n0, n2, n1, 1);
    t.is_view = 1;
    t.n_dims = 3;
    t.ne[0] = n0, t.ne[1] = n1, t.ne[2] = n2, t.ne[3] = 1;
    int64_t row = n0 / type_block(type) * type_bytes(type);
    t.nb[0] = type_bytes(type);
    t.nb[1] = row * n2;
    t.nb[2] = row;
    t.nb[3] = row * n1 * n2;
    return t;
}

/* A view [n1, n0] of a contiguous [n0, n1] base (transposed: elements of a row are strided). */
static th_tensor t_transposed(uint32_t type, int64_t n0, int64_t n1) {
    th_tensor t = t_dense(type, 2, n0, n1, 1, 1);
    t.is_view = 1;
    t.n_dims = 2;
    t.ne[0] = n1, t.ne[1] = n0, t.ne[2] = 1, t.ne[3] = 1;
    t.nb[0] = type_bytes(type) * n0;
    t.nb[1] = type_bytes(type);
    t.nb[2] = t.nb[3] = type_bytes(type) * n0 * n1;
    return t;
}

static th_tensor t_copy(const th_tensor *src) {
    th_tensor t = *src;
    t.bytes = malloc(src->n_bytes);
    memcpy(t.bytes, src->bytes, src->n_bytes);
    return t;
}

static void eff_view(const th_tensor *t, int64_t *ne, int64_t *nb, uint64_t *off) {
    if (t->is_view) {
        memcpy(ne, t->ne, sizeof t->ne);
        memcpy(nb, t->nb, sizeof t->nb);
        *off = t->offset;
    } else {
        memcpy(ne, t->base_ne, sizeof t->base_ne);
        contiguous_nb(t->type, ne, nb);
        *off = 0;
    }
}

static int64_t view_count(const th_tensor *t) {
    int64_t ne[4], nb[4];
    uint64_t off;
    eff_view(t, ne, nb, &off);
    return ne[0] * ne[1] * ne[2] * ne[3];
}

/* The view's elements in natural order (ne[0] fastest), as doubles (malloc'd). */
static double *dense(const th_tensor *t, int64_t *ne_out) {
    int64_t ne[4], nb[4];
    uint64_t off;
    eff_view(t, ne, nb, &off);
    if (ne_out) memcpy(ne_out, ne, sizeof ne);
    double *d = malloc(sizeof(double) * (size_t)(ne[0] * ne[1] * ne[2] * ne[3]));
    int64_t bs = type_block(t->type), k = 0;
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t i2 = 0; i2 < ne[2]; i2++)
            for (int64_t i1 = 0; i1 < ne[1]; i1++)
                for (int64_t i0 = 0; i0 < ne[0]; i0++) {
                    uint64_t pos = off + (uint64_t)(i1 * nb[1] + i2 * nb[2] + i3 * nb[3] + (i0 / bs) * nb[0]);
                    d[k++] = elem_at(t->type, t->bytes + pos, (int)(i0 % bs));
                }
    return d;
}

/* ============================================================================================ */
/* Cases                                                                                        */
/* ============================================================================================ */

typedef struct case_list {
    th_case *v;
    size_t n, cap;
} case_list;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static th_case *
case_add(case_list *l, uint32_t op, const char *fmt, ...) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    th_case *c = &l->v[l->n++];
    memset(c, 0, sizeof *c);
    c->p.struct_size = sizeof c->p;
    c->p.op = op;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
    c->rtol = 2e-6;
    c->atol = 1e-7;
    c->btol = 1e-5;
    return c;
}

static void add_src(th_case *c, th_tensor t) { c->src[c->n_src++] = t; }

/* Destination: a contiguous base filled with a known pattern. */
static void set_dst(th_case *c, uint32_t type, uint32_t n_dims, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    c->dst = t_dense(type, n_dims, n0, n1, n2, n3);
}

/* Destination view with padded rows inside a base filled with a known pattern. */
static void set_dst_padded(th_case *c, uint32_t type, uint32_t n_dims, int64_t n0, int64_t n1, int64_t n2) {
    c->dst = t_padded(type, n_dims, n0, n1, n2, 3);
}

static void set_inplace(th_case *c) {
    c->inplace = 1;
    c->dst = t_copy(&c->src[0]);
}

/* Expected destination values (view shape, natural order) and their tolerance scales. */
typedef void (*expect_fn)(const th_case *c, double *y, double *m);

static void finish(th_case *c, expect_fn fn) {
    int64_t ne[4], nb[4];
    uint64_t off;
    eff_view(&c->dst, ne, nb, &off);
    size_t n = (size_t)(ne[0] * ne[1] * ne[2] * ne[3]);
    double *y = calloc(n, sizeof *y), *m = calloc(n, sizeof *m);
    fn(c, y, m);
    size_t eb = (size_t)type_bytes(c->dst.type);
    c->n_out = c->dst.n_bytes / eb;
    c->expect = malloc(c->n_out * sizeof(double));
    c->mag = calloc(c->n_out, sizeof(double));
    th_decode_plain(c->dst.type, c->dst.bytes, c->expect, c->n_out);
    size_t k = 0;
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t i2 = 0; i2 < ne[2]; i2++)
            for (int64_t i1 = 0; i1 < ne[1]; i1++)
                for (int64_t i0 = 0; i0 < ne[0]; i0++, k++) {
                    uint64_t pos = off + (uint64_t)(i0 * nb[0] + i1 * nb[1] + i2 * nb[2] + i3 * nb[3]);
                    c->expect[pos / eb] = y[k];
                    c->mag[pos / eb] = m[k];
                }
    free(y);
    free(m);
}

/* ---- expectations ---- */

static void ex_get_rows(const th_case *c, double *y, double *m) {
    int64_t tne[4], ine[4];
    double *tab = dense(&c->src[0], tne), *ids = dense(&c->src[1], ine);
    int64_t n = ine[0] * ine[1] * ine[2], d = tne[0];
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < d; i++) {
            y[r * d + i] = tab[(int64_t)ids[r] * d + i];
            m[r * d + i] = fabs(y[r * d + i]);
        }
    free(tab);
    free(ids);
}

/* Index of the broadcast row of b (shape bne) for row (i1, i2, i3). */
static int64_t brow(const int64_t *bne, int64_t i1, int64_t i2, int64_t i3) {
    return ((i3 % bne[3]) * bne[2] + (i2 % bne[2])) * bne[1] + (i1 % bne[1]);
}

static void ex_norm(const th_case *c, double *y, double *m) {
    int64_t ne[4], gne[4], bne[4];
    double *x = dense(&c->src[0], ne);
    double *g = c->n_src > 1 ? dense(&c->src[1], gne) : NULL;
    double *b = c->n_src > 2 ? dense(&c->src[2], bne) : NULL;
    int layer = c->p.op == LOOM_OP_LAYER_NORM;
    int64_t n = ne[0];
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t i2 = 0; i2 < ne[2]; i2++)
            for (int64_t i1 = 0; i1 < ne[1]; i1++) {
                int64_t r = (i3 * ne[2] + i2) * ne[1] + i1;
                const double *xr = x + r * n;
                double mean = 0, var = 0;
                if (layer) {
                    for (int64_t i = 0; i < n; i++)
                        mean += xr[i];
                    mean /= (double)n;
                }
                for (int64_t i = 0; i < n; i++)
                    var += (xr[i] - mean) * (xr[i] - mean);
                var /= (double)n;
                double s = 1.0 / sqrt(var + (double)c->p.f[0]);
                for (int64_t i = 0; i < n; i++) {
                    double gv = g ? g[brow(gne, i1, i2, i3) * n + i] : 1.0;
                    double bv = b ? b[brow(bne, i1, i2, i3) * n + i] : 0.0;
                    y[r * n + i] = (xr[i] - mean) * s * gv + bv;
                    m[r * n + i] = fabs((xr[i] - mean) * s * gv) + fabs(bv);
                }
            }
    free(x);
    free(g);
    free(b);
}

static void ex_binary(const th_case *c, double *y, double *m) {
    int64_t ne[4], bne[4];
    double *a = dense(&c->src[0], ne), *b = dense(&c->src[1], bne);
    int64_t n = ne[0];
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t i2 = 0; i2 < ne[2]; i2++)
            for (int64_t i1 = 0; i1 < ne[1]; i1++) {
                int64_t r = (i3 * ne[2] + i2) * ne[1] + i1;
                for (int64_t i = 0; i < n; i++) {
                    double av = a[r * n + i];
                    double bv = c->p.op == LOOM_OP_SWIGLU ? b[r * n + i] : b[brow(bne, i1, i2, i3) * n + i];
                    switch (c->p.op) {
                    case LOOM_OP_ADD:
                        y[r * n + i] = av + bv;
                        m[r * n + i] = fabs(av) + fabs(bv);
                        break;
                    case LOOM_OP_MUL:
                        y[r * n + i] = av * bv;
                        m[r * n + i] = fabs(av * bv);
                        break;
                    default: /* SWIGLU */
                        y[r * n + i] = av / (1.0 + exp(-av)) * bv;
                        m[r * n + i] = fabs(av * bv) + fabs(y[r * n + i]);
                        break;
                    }
                }
            }
    free(a);
    free(b);
}

static void ex_unary(const th_case *c, double *y, double *m) {
    int64_t ne[4];
    double *x = dense(&c->src[0], ne);
    int64_t n = ne[0] * ne[1] * ne[2] * ne[3];
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        switch (c->p.op) {
        case LOOM_OP_SCALE: y[i] = v * (double)c->p.f[0]; break;
        case LOOM_OP_SILU: y[i] = v / (1.0 + exp(-v)); break;
        default: y[i] = 0.5 * v * (1.0 + erf(v / sqrt(2.0))); break; /* GELU */
        }
        m[i] = fabs(y[i]) + 1e-3 * fabs(v);
    }
    free(x);
}

static void ex_matmul(const th_case *c, double *y, double *m) {
    int64_t xne[4], wne[4];
    double *x = dense(&c->src[0], xne), *w = dense(&c->src[1], wne);
    int64_t k = xne[0], n = xne[1], mm = wne[1];
    int64_t r2 = xne[2] / wne[2], r3 = xne[3] / wne[3];
    for (int64_t i3 = 0; i3 < xne[3]; i3++)
        for (int64_t i2 = 0; i2 < xne[2]; i2++)
            for (int64_t i1 = 0; i1 < n; i1++)
                for (int64_t j = 0; j < mm; j++) {
                    const double *xr = x + ((i3 * xne[2] + i2) * n + i1) * k;
                    const double *wr = w + (((i3 / r3) * wne[2] + i2 / r2) * mm + j) * k;
                    double s = 0, a = 0;
                    for (int64_t i = 0; i < k; i++) {
                        s += xr[i] * wr[i];
                        a += fabs(xr[i] * wr[i]);
                    }
                    int64_t o = ((i3 * xne[2] + i2) * n + i1) * mm + j;
                    y[o] = s;
                    m[o] = a;
                }
    free(x);
    free(w);
}

static void ex_rope(const th_case *c, double *y, double *m) {
    int64_t ne[4], pne[4];
    double *x = dense(&c->src[0], ne), *pos = dense(&c->src[1], pne);
    int64_t hd = ne[0], n_rot = c->p.i[1] ? c->p.i[1] : hd, half = n_rot / 2;
    double pscale = c->p.f[1] != 0.0f ? (double)c->p.f[1] : 1.0;
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t t = 0; t < ne[2]; t++)
            for (int64_t h = 0; h < ne[1]; h++) {
                int64_t r = ((i3 * ne[2] + t) * ne[1] + h) * hd;
                for (int64_t i = 0; i < hd; i++) {
                    y[r + i] = x[r + i];
                    m[r + i] = fabs(x[r + i]);
                }
                for (int64_t i = 0; i < half; i++) {
                    double theta = pos[t] * pscale * pow((double)c->p.f[0], -2.0 * (double)i / (double)n_rot);
                    int64_t a = c->p.i[0] == 0 ? 2 * i : i, b = c->p.i[0] == 0 ? 2 * i + 1 : i + half;
                    double x0 = x[r + a], x1 = x[r + b];
                    y[r + a] = x0 * cos(theta) - x1 * sin(theta);
                    y[r + b] = x0 * sin(theta) + x1 * cos(theta);
                    m[r + a] = m[r + b] = fabs(x0) + fabs(x1);
                }
            }
    free(x);
    free(pos);
}

static void ex_softmax(const th_case *c, double *y, double *m) {
    int64_t ne[4], mne[4];
    double *x = dense(&c->src[0], ne);
    double *mask = c->n_src > 1 ? dense(&c->src[1], mne) : NULL;
    double scale = c->p.f[0] != 0.0f ? (double)c->p.f[0] : 1.0;
    int64_t n = ne[0];
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t i2 = 0; i2 < ne[2]; i2++)
            for (int64_t i1 = 0; i1 < ne[1]; i1++) {
                int64_t r = ((i3 * ne[2] + i2) * ne[1] + i1) * n;
                double mx = (double)-INFINITY, sum = 0;
                for (int64_t i = 0; i < n; i++) {
                    double v = x[r + i] * scale + (mask ? mask[brow(mne, i1, i2, i3) * n + i] : 0.0);
                    if (c->p.i[0] == 1 && i > (int64_t)c->p.i[1] + i1) v = (double)-INFINITY;
                    y[r + i] = v;
                    if (v > mx) mx = v;
                }
                for (int64_t i = 0; i < n; i++) {
                    y[r + i] = mx == (double)-INFINITY ? 0.0 : exp(y[r + i] - mx);
                    sum += y[r + i];
                }
                for (int64_t i = 0; i < n; i++) {
                    if (sum > 0) y[r + i] /= sum;
                    m[r + i] = fabs(y[r + i]);
                }
            }
    free(x);
    free(mask);
}

/*
 * Grouped softmax from its definition, one row at a time in double: the block of column j is
 * the number of landmarks before it; the current block c is that of the last visible column;
 * joint softmax over the visible regular columns of c and the visible landmarks of blocks < c;
 * a regular column of block b < c gets joint(landmark of b) x softmax within b.
 */
static void ex_grouped_softmax(const th_case *c, double *y, double *m) {
    int64_t ne[4], fne[4];
    double *x = dense(&c->src[0], ne), *fl = dense(&c->src[1], fne);
    const double scale = c->p.f[0] != 0.0f ? (double)c->p.f[0] : 1.0;
    const int64_t n = ne[0];
    int64_t *blk = malloc(sizeof(int64_t) * (size_t)n);
    int *vis = malloc(sizeof(int) * (size_t)n);
    for (int64_t i3 = 0; i3 < ne[3]; i3++)
        for (int64_t i2 = 0; i2 < ne[2]; i2++)
            for (int64_t i1 = 0; i1 < ne[1]; i1++) {
                const int64_t r = ((i3 * ne[2] + i2) * ne[1] + i1) * n;
                const double *lm = fl + brow(fne, i1, i2, i3) * n;
                int64_t cur = -1, b = 0;
                for (int64_t j = 0; j < n; j++) {
                    blk[j] = b;
                    vis[j] = x[r + j] > (double)-INFINITY && !(c->p.i[0] == 1 && j > (int64_t)c->p.i[1] + i1);
                    if (vis[j]) cur = b;
                    if (lm[j] != 0) b++;
                }
                for (int64_t j = 0; j < n; j++)
                    y[r + j] = 0.0;
                double jmax = (double)-INFINITY, jsum = 0.0;
                for (int64_t j = 0; j < n; j++)
                    if (vis[j] && (lm[j] != 0 ? blk[j] < cur : blk[j] == cur) && x[r + j] * scale > jmax)
                        jmax = x[r + j] * scale;
                for (int64_t j = 0; j < n; j++)
                    if (vis[j] && (lm[j] != 0 ? blk[j] < cur : blk[j] == cur)) jsum += exp(x[r + j] * scale - jmax);
                for (int64_t j = 0; cur >= 0 && jsum > 0 && j < n; j++) {
                    if (!vis[j] || lm[j] != 0) continue;
                    if (blk[j] == cur) {
                        y[r + j] = exp(x[r + j] * scale - jmax) / jsum;
                        continue;
                    }
                    /* block blk[j] < cur: its landmark, its max and sum */
                    int64_t land = j;
                    while (lm[land] == 0)
                        land++;
                    if (!vis[land]) continue;
                    double bmax = (double)-INFINITY, bsum = 0.0;
                    for (int64_t i = 0; i < n; i++)
                        if (vis[i] && lm[i] == 0 && blk[i] == blk[j] && x[r + i] * scale > bmax)
                            bmax = x[r + i] * scale;
                    for (int64_t i = 0; i < n; i++)
                        if (vis[i] && lm[i] == 0 && blk[i] == blk[j]) bsum += exp(x[r + i] * scale - bmax);
                    y[r + j] = exp(x[r + land] * scale - jmax) / jsum * exp(x[r + j] * scale - bmax) / bsum;
                }
                for (int64_t j = 0; j < n; j++)
                    m[r + j] = fabs(y[r + j]);
            }
    free(blk);
    free(vis);
    free(x);
    free(fl);
}

static void ex_attention(const th_case *c, double *y, double *m) {
    int64_t qne[4], kne[4], vne[4];
    double *q = dense(&c->src[0], qne), *k = dense(&c->src[1], kne), *v = dense(&c->src[2], vne);
    int64_t hd = qne[0], nh = qne[1], nt = qne[2], nkh = kne[1], nkv = kne[2];
    double scale = c->p.f[0] != 0.0f ? (double)c->p.f[0] : 1.0 / sqrt((double)hd);
    double *p = malloc(sizeof(double) * (size_t)nkv);
    for (int64_t t = 0; t < nt; t++)
        for (int64_t h = 0; h < nh; h++) {
            int64_t kh = h / (nh / nkh), last = c->p.i[0] + t;
            double mx = (double)-INFINITY, sum = 0;
            for (int64_t j = 0; j <= last && j < nkv; j++) {
                double s = 0;
                for (int64_t i = 0; i < hd; i++)
                    s += q[(t * nh + h) * hd + i] * k[(j * nkh + kh) * hd + i];
                p[j] = s * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int64_t j = 0; j <= last && j < nkv; j++)
                sum += (p[j] = exp(p[j] - mx));
            for (int64_t i = 0; i < hd; i++) {
                double o = 0, a = 0;
                for (int64_t j = 0; j <= last && j < nkv; j++) {
                    o += p[j] / sum * v[(j * nkh + kh) * hd + i];
                    a += p[j] / sum * fabs(v[(j * nkh + kh) * hd + i]);
                }
                y[(t * nh + h) * hd + i] = o;
                m[(t * nh + h) * hd + i] = a;
            }
        }
    free(p);
    free(q);
    free(k);
    free(v);
}

static void ex_copy(const th_case *c, double *y, double *m) {
    double *x = dense(&c->src[0], NULL);
    int64_t n = view_count(&c->src[0]);
    for (int64_t i = 0; i < n; i++) {
        y[i] = x[i];
        m[i] = fabs(x[i]);
    }
    free(x);
}

static void ex_weighted_sum(const th_case *c, double *y, double *m) {
    int64_t ne[4];
    double *a = dense(&c->src[0], ne), *w = dense(&c->src[1], NULL);
    for (int64_t r = 0; r < ne[1]; r++)
        for (int64_t i = 0; i < ne[0]; i++) {
            double s = 0, mag = 0;
            for (int64_t st = 0; st < ne[2]; st++) {
                s += w[st] * a[(st * ne[1] + r) * ne[0] + i];
                mag += fabs(w[st] * a[(st * ne[1] + r) * ne[0] + i]);
            }
            y[r * ne[0] + i] = s;
            m[r * ne[0] + i] = mag;
        }
    free(a);
    free(w);
}

static int popcount64(uint64_t v) {
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

static void ex_hadamard(const th_case *c, double *y, double *m) {
    int64_t ne[4];
    double *x = dense(&c->src[0], ne);
    int64_t n = ne[0], g = c->p.i[0] ? c->p.i[0] : n, rows = ne[1] * ne[2] * ne[3];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g0 = 0; g0 < n; g0 += g)
            for (int64_t i = 0; i < g; i++) {
                double s = 0, a = 0;
                for (int64_t j = 0; j < g; j++) {
                    double h = popcount64((uint64_t)(i & j)) % 2 ? -1.0 : 1.0;
                    s += h * x[r * n + g0 + j];
                    a += fabs(x[r * n + g0 + j]);
                }
                y[r * n + g0 + i] = s / sqrt((double)g);
                m[r * n + g0 + i] = a / sqrt((double)g);
            }
    free(x);
}

/* ---- the case list ---- */

static const uint32_t weight_types[] = {LOOM_TYPE_F32,  LOOM_TYPE_F16,  LOOM_TYPE_BF16, LOOM_TYPE_Q8_0,
                                        LOOM_TYPE_Q4_0, LOOM_TYPE_Q4_1, LOOM_TYPE_Q4_K, LOOM_TYPE_Q6_K};

static const char *tname(uint32_t t) {
    static const char *const names[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q4_k", "q6_k",
                                        "i8",  "i16", "i32",  "i64",  "f64",  "u8",   "i4x2"};
    return t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void cases_get_rows(case_list *l) {
    static const int32_t ids3[] = {6, 0, 3};
    static const int32_t ids22[] = {1, 1, 5, 2};
    for (size_t w = 0; w < sizeof weight_types / sizeof weight_types[0]; w++) {
        uint32_t t = weight_types[w];
        int64_t bs = type_block(t);
        int64_t widths[2] = {bs == 1 ? 5 : bs, bs == 1 ? 64 : 2 * bs};
        for (int wi = 0; wi < 2; wi++) {
            int64_t d = widths[wi];
            th_case *c = case_add(l, LOOM_OP_GET_ROWS, "get_rows %s d=%lld ids[3]", tname(t), (long long)d);
            th_tensor tab = t_dense(t, 2, d, 7, 1, 1);
            tab.weight = 1;
            add_src(c, tab);
            add_src(c, t_i32(3, 1, ids3));
            set_dst(c, LOOM_TYPE_F32, 2, d, 3, 1, 1);
            finish(c, ex_get_rows);
            c->btol = 1e-6;
        }
        th_case *c = case_add(l, LOOM_OP_GET_ROWS, "get_rows %s ids[2,2] padded dst", tname(t));
        int64_t d = bs == 1 ? 9 : bs;
        th_tensor tab = t_dense(t, 2, d, 6, 1, 1);
        add_src(c, tab); /* not a weight: an ordinary tensor of the exec */
        add_src(c, t_i32(2, 2, ids22));
        set_dst_padded(c, LOOM_TYPE_F32, 3, d, 2, 2);
        finish(c, ex_get_rows);
        c->btol = 1e-6;
    }
}

static void cases_norms(case_list *l) {
    static const int64_t shapes[][3] = {{7, 3, 1}, {64, 5, 2}, {1, 2, 1}, {100, 1, 1}};
    for (int op = LOOM_OP_RMS_NORM; op <= LOOM_OP_LAYER_NORM; op++) {
        const char *on = op == LOOM_OP_RMS_NORM ? "rms_norm" : "layer_norm";
        for (size_t s = 0; s < 4; s++) {
            const int64_t *sh = shapes[s];
            for (int gain = 0; gain < 3; gain++) {
                if (op == LOOM_OP_LAYER_NORM && sh[0] == 1) continue; /* variance 0 */
                th_case *c = case_add(l, (uint32_t)op, "%s [%lld,%lld,%lld] %s", on, (long long)sh[0], (long long)sh[1],
                                      (long long)sh[2],
                                      gain == 0   ? "no gain"
                                      : gain == 1 ? "f32 gain"
                                                  : "f16 gain+bias");
                c->p.f[0] = s % 2 ? 1e-6f : 1e-5f;
                add_src(c, t_dense(LOOM_TYPE_F32, 3, sh[0], sh[1], sh[2], 1));
                if (gain) add_src(c, t_dense(gain == 1 ? LOOM_TYPE_F32 : LOOM_TYPE_F16, 1, sh[0], 1, 1, 1));
                if (gain == 2 && op == LOOM_OP_LAYER_NORM) add_src(c, t_dense(LOOM_TYPE_F32, 2, sh[0], sh[1], 1, 1));
                set_dst(c, LOOM_TYPE_F32, 3, sh[0], sh[1], sh[2], 1);
                finish(c, ex_norm);
            }
        }
        th_case *c = case_add(l, (uint32_t)op, "%s padded views", on);
        c->p.f[0] = 1e-5f;
        add_src(c, t_padded(LOOM_TYPE_F32, 3, 33, 3, 2, 5));
        add_src(c, t_dense(LOOM_TYPE_F32, 1, 33, 1, 1, 1));
        set_dst_padded(c, LOOM_TYPE_F32, 3, 33, 3, 2);
        finish(c, ex_norm);
        c = case_add(l, (uint32_t)op, "%s in place", on);
        c->p.f[0] = 1e-5f;
        add_src(c, t_dense(LOOM_TYPE_F32, 2, 16, 3, 1, 1));
        set_inplace(c);
        finish(c, ex_norm);
    }
}

static void cases_elementwise(case_list *l) {
    for (int op = LOOM_OP_ADD; op <= LOOM_OP_MUL; op++) {
        const char *on = op == LOOM_OP_ADD ? "add" : "mul";
        struct {
            int64_t a[3], b[3];
            uint32_t bt;
        } v[] = {{{7, 3, 2}, {7, 3, 2}, LOOM_TYPE_F32},   {{7, 3, 2}, {7, 1, 1}, LOOM_TYPE_F32},
                 {{5, 4, 2}, {5, 2, 1}, LOOM_TYPE_F32},   {{1, 5, 1}, {1, 5, 1}, LOOM_TYPE_F32},
                 {{64, 3, 1}, {64, 1, 1}, LOOM_TYPE_F16}, {{9, 2, 2}, {9, 2, 2}, LOOM_TYPE_BF16}};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            th_case *c = case_add(l, (uint32_t)op, "%s [%lld,%lld,%lld] + %s[%lld,%lld,%lld]", on, (long long)v[i].a[0],
                                  (long long)v[i].a[1], (long long)v[i].a[2], tname(v[i].bt), (long long)v[i].b[0],
                                  (long long)v[i].b[1], (long long)v[i].b[2]);
            add_src(c, t_dense(LOOM_TYPE_F32, 3, v[i].a[0], v[i].a[1], v[i].a[2], 1));
            add_src(c, t_dense(v[i].bt, 3, v[i].b[0], v[i].b[1], v[i].b[2], 1));
            set_dst(c, LOOM_TYPE_F32, 3, v[i].a[0], v[i].a[1], v[i].a[2], 1);
            finish(c, ex_binary);
        }
        th_case *c = case_add(l, (uint32_t)op, "%s permuted src0, padded dst", on);
        add_src(c, t_permuted(LOOM_TYPE_F32, 6, 3, 4));
        add_src(c, t_dense(LOOM_TYPE_F32, 1, 6, 1, 1, 1));
        set_dst_padded(c, LOOM_TYPE_F32, 3, 6, 3, 4);
        finish(c, ex_binary);
        c = case_add(l, (uint32_t)op, "%s in place", on);
        add_src(c, t_dense(LOOM_TYPE_F32, 2, 10, 3, 1, 1));
        add_src(c, t_dense(LOOM_TYPE_F32, 1, 10, 1, 1, 1));
        set_inplace(c);
        finish(c, ex_binary);
    }
    static const uint32_t unary[] = {LOOM_OP_SCALE, LOOM_OP_SILU, LOOM_OP_GELU};
    static const char *const unames[] = {"scale", "silu", "gelu"};
    for (int u = 0; u < 3; u++) {
        th_case *c = case_add(l, unary[u], "%s [37,3,2] range 6", unames[u]);
        c->p.f[0] = 0.37f;
        add_src(c, t_scaled(LOOM_TYPE_F32, 3, 37, 3, 2, 6.0));
        set_dst(c, LOOM_TYPE_F32, 3, 37, 3, 2, 1);
        finish(c, ex_unary);
        c = case_add(l, unary[u], "%s [1,1] and padded", unames[u]);
        c->p.f[0] = -2.0f;
        add_src(c, t_padded(LOOM_TYPE_F32, 2, 1, 4, 1, 2));
        set_dst_padded(c, LOOM_TYPE_F32, 2, 1, 4, 1);
        finish(c, ex_unary);
        c = case_add(l, unary[u], "%s in place", unames[u]);
        c->p.f[0] = 3.0f;
        add_src(c, t_scaled(LOOM_TYPE_F32, 2, 20, 2, 1, 3.0));
        set_inplace(c);
        finish(c, ex_unary);
    }
    th_case *c = case_add(l, LOOM_OP_SWIGLU, "swiglu [37,3,2]");
    add_src(c, t_scaled(LOOM_TYPE_F32, 3, 37, 3, 2, 5.0));
    add_src(c, t_dense(LOOM_TYPE_F32, 3, 37, 3, 2, 1));
    set_dst(c, LOOM_TYPE_F32, 3, 37, 3, 2, 1);
    finish(c, ex_binary);
    c = case_add(l, LOOM_OP_SWIGLU, "swiglu padded");
    add_src(c, t_padded(LOOM_TYPE_F32, 2, 16, 3, 1, 4));
    add_src(c, t_padded(LOOM_TYPE_F32, 2, 16, 3, 1, 2));
    set_dst_padded(c, LOOM_TYPE_F32, 2, 16, 3, 1);
    finish(c, ex_binary);
}

static void cases_matmul(case_list *l) {
    for (size_t w = 0; w < sizeof weight_types / sizeof weight_types[0]; w++) {
        uint32_t t = weight_types[w];
        int64_t bs = type_block(t);
        int quant = bs > 1;
        int64_t ks[2] = {bs == 1 ? 37 : bs, bs == 1 ? 64 : 2 * bs};
        for (int ki = 0; ki < 2; ki++) {
            for (int64_t n = 1; n <= 3; n += 2) {
                int64_t k = ks[ki], m = ki ? 11 : 7;
                th_case *c = case_add(l, LOOM_OP_MATMUL, "matmul %s k=%lld m=%lld n=%lld", tname(t), (long long)k,
                                      (long long)m, (long long)n);
                add_src(c, t_dense(LOOM_TYPE_F32, 2, k, n, 1, 1));
                th_tensor wt = t_dense(t, 2, k, m, 1, 1);
                wt.weight = 1;
                add_src(c, wt);
                set_dst(c, LOOM_TYPE_F32, 2, m, n, 1, 1);
                finish(c, ex_matmul);
                c->rtol = 1e-5;
                c->btol = quant ? 1e-2 : 1e-4;
            }
        }
        th_case *c = case_add(l, LOOM_OP_MATMUL, "matmul %s padded x, padded dst", tname(t));
        int64_t k = bs == 1 ? 20 : bs;
        add_src(c, t_padded(LOOM_TYPE_F32, 2, k, 4, 1, 3));
        th_tensor wt = t_dense(t, 2, k, 9, 1, 1);
        wt.weight = 1;
        add_src(c, wt);
        set_dst_padded(c, LOOM_TYPE_F32, 2, 9, 4, 1);
        finish(c, ex_matmul);
        c->rtol = 1e-5;
        c->btol = quant ? 1e-2 : 1e-4;
    }
    /* batched with broadcast of dims 2 (like grouped-query attention scores) */
    th_case *c = case_add(l, LOOM_OP_MATMUL, "matmul f32 batched [16,3,4] x [16,5,2]");
    add_src(c, t_dense(LOOM_TYPE_F32, 3, 16, 3, 4, 1));
    add_src(c, t_dense(LOOM_TYPE_F32, 3, 16, 5, 2, 1));
    set_dst(c, LOOM_TYPE_F32, 3, 5, 3, 4, 1);
    finish(c, ex_matmul);
    c->rtol = 1e-5;
    c->btol = 1e-4;
    c = case_add(l, LOOM_OP_MATMUL, "matmul f32 permuted operands");
    add_src(c, t_permuted(LOOM_TYPE_F32, 8, 3, 2));
    add_src(c, t_permuted(LOOM_TYPE_F32, 8, 5, 2));
    set_dst(c, LOOM_TYPE_F32, 3, 5, 3, 2, 1);
    finish(c, ex_matmul);
    c->rtol = 1e-5;
    c->btol = 1e-4;
    c = case_add(l, LOOM_OP_MATMUL, "matmul f16 batched weight [32,4,2,1], x [32,2,4,1]");
    add_src(c, t_dense(LOOM_TYPE_F32, 3, 32, 2, 4, 1));
    add_src(c, t_dense(LOOM_TYPE_F16, 3, 32, 4, 2, 1));
    set_dst(c, LOOM_TYPE_F32, 3, 4, 2, 4, 1);
    finish(c, ex_matmul);
    c->rtol = 1e-5;
    c->btol = 1e-4;
}

static void cases_rope(case_list *l) {
    static const int32_t pos[] = {0, 5, 17, 1000};
    for (int mode = 0; mode < 2; mode++)
        for (int v = 0; v < 4; v++) {
            int32_t n_rot = v >= 2 ? 4 : 0;
            float fscale = v % 2 ? 0.5f : 0.0f;
            th_case *c =
                case_add(l, LOOM_OP_ROPE, "rope mode %d n_rot %d scale %g [8,3,4]", mode, n_rot, (double)fscale);
            c->p.i[0] = mode;
            c->p.i[1] = n_rot;
            c->p.f[0] = v == 3 ? 500000.0f : 10000.0f;
            c->p.f[1] = fscale;
            add_src(c, t_dense(LOOM_TYPE_F32, 3, 8, 3, 4, 1));
            add_src(c, t_i32(4, 1, pos));
            set_dst(c, LOOM_TYPE_F32, 3, 8, 3, 4, 1);
            finish(c, ex_rope);
            c->rtol = 1e-5;
        }
    for (int mode = 0; mode < 2; mode++) {
        th_case *c = case_add(l, LOOM_OP_ROPE, "rope mode %d permuted src, padded dst [64,2,4]", mode);
        c->p.i[0] = mode;
        c->p.f[0] = 10000.0f;
        add_src(c, t_permuted(LOOM_TYPE_F32, 64, 2, 4));
        add_src(c, t_i32(4, 1, pos));
        set_dst_padded(c, LOOM_TYPE_F32, 3, 64, 2, 4);
        finish(c, ex_rope);
        c->rtol = 1e-5;
        c = case_add(l, LOOM_OP_ROPE, "rope mode %d in place", mode);
        c->p.i[0] = mode;
        c->p.f[0] = 10000.0f;
        add_src(c, t_dense(LOOM_TYPE_F32, 3, 16, 2, 4, 1));
        add_src(c, t_i32(4, 1, pos));
        set_inplace(c);
        finish(c, ex_rope);
        c->rtol = 1e-5;
    }
}

static void cases_softmax(case_list *l) {
    struct {
        float scale;
        int mask; /* 0 none, 1 f32 [n, rows], 2 f16 */
        int causal;
        int first;
    } v[] = {{1, 0, 0, 0}, {0, 0, 0, 0}, {0.3f, 0, 0, 0}, {1, 1, 0, 0},   {0.5f, 2, 0, 0},
             {1, 0, 1, 5}, {1, 0, 1, 0}, {1, 0, 1, -1},   {0.7f, 1, 1, 2}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        th_case *c = case_add(l, LOOM_OP_SOFTMAX, "softmax [9,4,2] scale %g mask %d causal %d first %d",
                              (double)v[i].scale, v[i].mask, v[i].causal, v[i].first);
        c->p.f[0] = v[i].scale;
        c->p.i[0] = v[i].causal;
        c->p.i[1] = v[i].first;
        add_src(c, t_scaled(LOOM_TYPE_F32, 3, 9, 4, 2, 4.0));
        if (v[i].mask) add_src(c, t_dense(v[i].mask == 1 ? LOOM_TYPE_F32 : LOOM_TYPE_F16, 2, 9, 4, 1, 1));
        set_dst(c, LOOM_TYPE_F32, 3, 9, 4, 2, 1);
        finish(c, ex_softmax);
    }
    th_case *c = case_add(l, LOOM_OP_SOFTMAX, "softmax padded [33,3]");
    c->p.f[0] = 1.0f;
    add_src(c, t_padded(LOOM_TYPE_F32, 2, 33, 3, 1, 2));
    set_dst_padded(c, LOOM_TYPE_F32, 2, 33, 3, 1);
    finish(c, ex_softmax);
    c = case_add(l, LOOM_OP_SOFTMAX, "softmax in place [1,3]");
    c->p.f[0] = 1.0f;
    add_src(c, t_dense(LOOM_TYPE_F32, 2, 1, 3, 1, 1));
    set_inplace(c);
    finish(c, ex_softmax);
}

/* Set F32 element k of a tensor's base to -inf (hidden columns). */
static void set_neg_inf(th_tensor *t, const int64_t *idx, size_t n) {
    const float v = -INFINITY;
    for (size_t i = 0; i < n; i++)
        memcpy(t->bytes + 4 * idx[i], &v, 4);
}

/* Landmark flags with a landmark after every `freq` columns, starting `phase` columns in. */
static void flags_every(int32_t *f, int64_t n, int64_t freq, int64_t phase) {
    for (int64_t j = 0; j < n; j++)
        f[j] = j >= phase && (j - phase) % (freq + 1) == freq;
}

static void cases_grouped_softmax(case_list *l) {
    th_case *c;
    int32_t f[64 * 5];
    /* training layout: blocks of 3 + landmark, causal with several first positions */
    struct {
        float scale;
        int causal, first;
    } v[] = {{1, 0, 0}, {0, 0, 0}, {0.5f, 1, 0}, {1, 1, 7}, {1, 1, -1}, {0.25f, 1, -3}};
    flags_every(f, 13, 3, 0);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "grouped_softmax [13,6,2] blocks 3+1 scale %g causal %d first %d",
                     (double)v[i].scale, v[i].causal, v[i].first);
        c->p.f[0] = v[i].scale;
        c->p.i[0] = v[i].causal;
        c->p.i[1] = v[i].first;
        add_src(c, t_scaled(LOOM_TYPE_F32, 3, 13, 6, 2, 4.0));
        add_src(c, t_i32(13, 1, f));
        set_dst(c, LOOM_TYPE_F32, 3, 13, 6, 2, 1);
        finish(c, ex_grouped_softmax);
        c->rtol = 1e-5;
    }
    /* retrieval layout [2 retrieved blocks of 4 | tail of 2 | chunk of 9 with landmarks at 1, 5],
     * 3 heads; rows see the tail and the chunk causally (first = 10) */
    {
        static const int32_t fr[19] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
        c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "grouped_softmax retrieval layout [19,9,3]");
        c->p.f[0] = 0.3f;
        c->p.i[0] = 1;
        c->p.i[1] = 10;
        add_src(c, t_scaled(LOOM_TYPE_F32, 3, 19, 9, 3, 6.0));
        add_src(c, t_i32(19, 1, fr));
        set_dst(c, LOOM_TYPE_F32, 3, 19, 9, 3, 1);
        finish(c, ex_grouped_softmax);
        c->rtol = 1e-5;
    }
    /* flags per row (broadcast over dimension 2): blocks of different sizes, empty blocks,
     * consecutive landmarks, no landmark at all, every column a landmark */
    {
        static const int32_t fr[11 * 5] = {
            1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, /* */
            0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, /* */
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* */
            1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* */
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        };
        for (int causal = 0; causal < 2; causal++) {
            c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "grouped_softmax irregular blocks per row [11,5,3] causal %d",
                         causal);
            c->p.i[0] = causal;
            c->p.i[1] = 6;
            add_src(c, t_scaled(LOOM_TYPE_F32, 3, 11, 5, 3, 4.0));
            add_src(c, t_i32(11, 5, fr));
            set_dst(c, LOOM_TYPE_F32, 3, 11, 5, 3, 1);
            finish(c, ex_grouped_softmax);
            c->rtol = 1e-5;
        }
    }
    /* -inf scores: a hidden regular column, a hidden landmark (its block gets 0), a whole hidden
     * earlier block, a fully hidden row, a row where only the current block's landmark shows */
    {
        flags_every(f, 12, 2, 0); /* landmarks at 2, 5, 8, 11 */
        c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "grouped_softmax with -inf columns [12,5]");
        add_src(c, t_scaled(LOOM_TYPE_F32, 2, 12, 5, 1, 3.0));
        add_src(c, t_i32(12, 1, f));
        static const int64_t hide[] = {/* row 0 */ 1,
                                       5,
                                       /* row 1: block 1 (3, 4) hidden */ 12 + 3,
                                       12 + 4,
                                       /* row 2: everything */ 24,
                                       25,
                                       26,
                                       27,
                                       28,
                                       29,
                                       30,
                                       31,
                                       32,
                                       33,
                                       34,
                                       35,
                                       /* row 3: only the landmark 2 visible */ 36,
                                       37,
                                       39,
                                       40,
                                       41,
                                       42,
                                       43,
                                       44,
                                       45,
                                       46,
                                       47,
                                       /* row 4: landmark 8 hidden */ 48 + 8};
        set_neg_inf(&c->src[0], hide, sizeof hide / sizeof hide[0]);
        set_dst(c, LOOM_TYPE_F32, 2, 12, 5, 1, 1);
        finish(c, ex_grouped_softmax);
        c->rtol = 1e-5;
    }
    /* strided views and in place */
    flags_every(f, 33, 6, 2);
    c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "grouped_softmax padded [33,3]");
    c->p.i[0] = 1;
    c->p.i[1] = 20;
    add_src(c, t_padded(LOOM_TYPE_F32, 2, 33, 3, 1, 2));
    add_src(c, t_i32(33, 1, f));
    set_dst_padded(c, LOOM_TYPE_F32, 2, 33, 3, 1);
    finish(c, ex_grouped_softmax);
    c->rtol = 1e-5;
    c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "grouped_softmax permuted [33,4,3]");
    c->p.f[0] = 0.5f;
    add_src(c, t_permuted(LOOM_TYPE_F32, 33, 4, 3));
    add_src(c, t_i32(33, 1, f));
    set_dst(c, LOOM_TYPE_F32, 3, 33, 4, 3, 1);
    finish(c, ex_grouped_softmax);
    c->rtol = 1e-5;
    c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "grouped_softmax in place [33,2]");
    add_src(c, t_scaled(LOOM_TYPE_F32, 2, 33, 2, 1, 5.0));
    add_src(c, t_i32(33, 1, f));
    set_inplace(c);
    finish(c, ex_grouped_softmax);
    c->rtol = 1e-5;
}

static void cases_attention(case_list *l) {
    for (int kvt = 0; kvt < 2; kvt++) {
        uint32_t t = kvt ? LOOM_TYPE_F16 : LOOM_TYPE_F32;
        struct {
            int64_t hd, nh, nkh, nt, nkv;
            int first;
            float scale;
        } v[] = {{8, 4, 2, 3, 6, 3, 0}, {8, 4, 4, 1, 5, 0, 0.5f}, {16, 2, 1, 4, 4, 0, 0}, {64, 3, 1, 2, 9, 7, 0.125f}};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            th_case *c =
                case_add(l, LOOM_OP_ATTENTION, "attention %s hd %lld heads %lld/%lld tok %lld kv %lld first %d",
                         tname(t), (long long)v[i].hd, (long long)v[i].nh, (long long)v[i].nkh, (long long)v[i].nt,
                         (long long)v[i].nkv, v[i].first);
            c->p.i[0] = v[i].first;
            c->p.f[0] = v[i].scale;
            add_src(c, t_dense(LOOM_TYPE_F32, 3, v[i].hd, v[i].nh, v[i].nt, 1));
            add_src(c, t_dense(t, 3, v[i].hd, v[i].nkh, v[i].nkv, 1));
            add_src(c, t_dense(t, 3, v[i].hd, v[i].nkh, v[i].nkv, 1));
            set_dst(c, LOOM_TYPE_F32, 3, v[i].hd, v[i].nh, v[i].nt, 1);
            finish(c, ex_attention);
            c->rtol = 1e-5;
            c->btol = kvt ? 1e-3 : 1e-4;
        }
        /* a cache larger than used, read through strided views, and a permuted query */
        th_case *c = case_add(l, LOOM_OP_ATTENTION, "attention %s views into a padded cache", tname(t));
        c->p.i[0] = 2;
        add_src(c, t_permuted(LOOM_TYPE_F32, 8, 4, 3));
        add_src(c, t_padded(t, 3, 8, 2, 5, 2));
        add_src(c, t_padded(t, 3, 8, 2, 5, 4));
        set_dst_padded(c, LOOM_TYPE_F32, 3, 8, 4, 3);
        finish(c, ex_attention);
        c->rtol = 1e-5;
        c->btol = kvt ? 1e-3 : 1e-4;
    }
}

static void cases_copy(case_list *l) {
    static const uint32_t ft[] = {LOOM_TYPE_F32, LOOM_TYPE_F16, LOOM_TYPE_BF16};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            th_case *c = case_add(l, LOOM_OP_COPY, "copy %s -> %s [13,3,2]", tname(ft[a]), tname(ft[b]));
            add_src(c, t_dense(ft[a], 3, 13, 3, 2, 1));
            set_dst(c, ft[b], 3, 13, 3, 2, 1);
            finish(c, ex_copy);
            c->rtol = ft[b] == LOOM_TYPE_F16 ? 1.0 / 2048 : ft[b] == LOOM_TYPE_BF16 ? 1.0 / 256 : 0;
            c->atol = ft[b] == LOOM_TYPE_F16 ? 6e-8 : 0;
            c->btol = ft[b] == LOOM_TYPE_F32 ? 1e-7 : c->rtol;
        }
    static const int32_t iv[] = {1, -2, 3, 2147483647, -2147483647 - 1, 0};
    th_case *c = case_add(l, LOOM_OP_COPY, "copy i32 -> i32 [3,2]");
    add_src(c, t_i32(3, 2, iv));
    set_dst(c, LOOM_TYPE_I32, 2, 3, 2, 1, 1);
    finish(c, ex_copy);
    c->rtol = c->atol = 0;
    c->btol = 0;
    c = case_add(l, LOOM_OP_COPY, "copy transposed f32 -> f16 [5,7]");
    add_src(c, t_transposed(LOOM_TYPE_F32, 5, 7));
    set_dst(c, LOOM_TYPE_F16, 2, 7, 5, 1, 1);
    finish(c, ex_copy);
    c->rtol = c->btol = 1.0 / 2048;
    c->atol = 6e-8;
    c = case_add(l, LOOM_OP_COPY, "copy f32 [12,2] -> [6,4] (reshape)");
    add_src(c, t_dense(LOOM_TYPE_F32, 2, 12, 2, 1, 1));
    set_dst(c, LOOM_TYPE_F32, 2, 6, 4, 1, 1);
    finish(c, ex_copy);
    c->rtol = c->btol = 0;
    c = case_add(l, LOOM_OP_COPY, "copy f32 permuted -> padded f32 view");
    add_src(c, t_permuted(LOOM_TYPE_F32, 5, 3, 4));
    set_dst_padded(c, LOOM_TYPE_F32, 3, 5, 3, 4);
    finish(c, ex_copy);
    c->rtol = c->btol = 0;
    /* KV-cache write: 2 tokens into positions 3..4 of an f16 cache [8, 2 heads, 6 positions] */
    for (int kvt = 0; kvt < 2; kvt++) {
        uint32_t t = kvt ? LOOM_TYPE_F16 : LOOM_TYPE_F32;
        c = case_add(l, LOOM_OP_COPY, "copy f32 -> %s cache slot view", tname(t));
        add_src(c, t_dense(LOOM_TYPE_F32, 3, 8, 2, 2, 1));
        c->dst = t_dense(t, 3, 8, 2, 6, 1);
        c->dst.is_view = 1;
        c->dst.n_dims = 3;
        c->dst.ne[0] = 8, c->dst.ne[1] = 2, c->dst.ne[2] = 2, c->dst.ne[3] = 1;
        contiguous_nb(t, c->dst.base_ne, c->dst.nb);
        c->dst.offset = (uint64_t)(3 * c->dst.nb[2]);
        finish(c, ex_copy);
        c->rtol = c->btol = kvt ? 1.0 / 2048 : 0;
        c->atol = kvt ? 6e-8 : 0;
    }
}

static void cases_misc(case_list *l) {
    th_case *c = case_add(l, LOOM_OP_WEIGHTED_SUM, "weighted_sum [5,3] x 4 states");
    add_src(c, t_dense(LOOM_TYPE_F32, 3, 5, 3, 4, 1));
    add_src(c, t_dense(LOOM_TYPE_F32, 1, 4, 1, 1, 1));
    set_dst(c, LOOM_TYPE_F32, 2, 5, 3, 1, 1);
    finish(c, ex_weighted_sum);
    c = case_add(l, LOOM_OP_WEIGHTED_SUM, "weighted_sum [64,2] x 1 state");
    add_src(c, t_dense(LOOM_TYPE_F32, 3, 64, 2, 1, 1));
    add_src(c, t_dense(LOOM_TYPE_F32, 1, 1, 1, 1, 1));
    set_dst(c, LOOM_TYPE_F32, 2, 64, 2, 1, 1);
    finish(c, ex_weighted_sum);
    c = case_add(l, LOOM_OP_WEIGHTED_SUM, "weighted_sum permuted states, padded dst");
    add_src(c, t_permuted(LOOM_TYPE_F32, 7, 2, 3));
    add_src(c, t_dense(LOOM_TYPE_F32, 1, 3, 1, 1, 1));
    set_dst_padded(c, LOOM_TYPE_F32, 2, 7, 2, 1);
    finish(c, ex_weighted_sum);
    struct {
        int64_t n, rows;
        int32_t g;
    } h[] = {{8, 3, 0}, {16, 2, 4}, {1, 3, 0}, {32, 1, 0}, {64, 2, 8}, {256, 1, 0}};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        c = case_add(l, LOOM_OP_HADAMARD, "hadamard [%lld,%lld] group %d", (long long)h[i].n, (long long)h[i].rows,
                     h[i].g);
        c->p.i[0] = h[i].g;
        add_src(c, t_dense(LOOM_TYPE_F32, 2, h[i].n, h[i].rows, 1, 1));
        set_dst(c, LOOM_TYPE_F32, 2, h[i].n, h[i].rows, 1, 1);
        finish(c, ex_hadamard);
        c->rtol = 1e-5;
    }
    c = case_add(l, LOOM_OP_HADAMARD, "hadamard padded [16,3]");
    add_src(c, t_padded(LOOM_TYPE_F32, 2, 16, 3, 1, 2));
    set_dst_padded(c, LOOM_TYPE_F32, 2, 16, 3, 1);
    finish(c, ex_hadamard);
    c->rtol = 1e-5;
}

/* Cases large enough to be split across threads (and to keep parallel backends honest). */
static void cases_large(case_list *l) {
    th_case *c;
    for (int w = 0; w < 3; w++) {
        uint32_t t = w == 0 ? LOOM_TYPE_F32 : w == 1 ? LOOM_TYPE_Q4_K : LOOM_TYPE_Q8_0;
        c = case_add(l, LOOM_OP_MATMUL, "large matmul %s k=512 m=300 n=5", tname(t));
        add_src(c, t_dense(LOOM_TYPE_F32, 2, 512, 5, 1, 1));
        th_tensor wt = t_dense(t, 2, 512, 300, 1, 1);
        wt.weight = 1;
        add_src(c, wt);
        set_dst(c, LOOM_TYPE_F32, 2, 300, 5, 1, 1);
        finish(c, ex_matmul);
        c->rtol = 1e-5;
        c->btol = w ? 1e-2 : 1e-4;
    }
    static const int32_t ids[] = {5, 250, 17, 0, 299, 123, 64, 1};
    c = case_add(l, LOOM_OP_GET_ROWS, "large get_rows q6_k [512,300] x 8");
    th_tensor tab = t_dense(LOOM_TYPE_Q6_K, 2, 512, 300, 1, 1);
    tab.weight = 1;
    add_src(c, tab);
    add_src(c, t_i32(8, 1, ids));
    set_dst(c, LOOM_TYPE_F32, 2, 512, 8, 1, 1);
    finish(c, ex_get_rows);
    c->btol = 1e-6;
    c = case_add(l, LOOM_OP_RMS_NORM, "large rms_norm [4096,16]");
    c->p.f[0] = 1e-6f;
    add_src(c, t_dense(LOOM_TYPE_F32, 2, 4096, 16, 1, 1));
    add_src(c, t_dense(LOOM_TYPE_F32, 1, 4096, 1, 1, 1));
    set_dst(c, LOOM_TYPE_F32, 2, 4096, 16, 1, 1);
    finish(c, ex_norm);
    c = case_add(l, LOOM_OP_SOFTMAX, "large causal softmax [700,40,2]");
    c->p.f[0] = 0.125f;
    c->p.i[0] = 1;
    c->p.i[1] = 660;
    add_src(c, t_scaled(LOOM_TYPE_F32, 3, 700, 40, 2, 8.0));
    set_dst(c, LOOM_TYPE_F32, 3, 700, 40, 2, 1);
    finish(c, ex_softmax);
    {
        int32_t *fl = malloc(sizeof(int32_t) * 700);
        flags_every(fl, 700, 50, 0);
        c = case_add(l, LOOM_OP_GROUPED_SOFTMAX, "large causal grouped_softmax [700,40,2] blocks 50+1");
        c->p.f[0] = 0.125f;
        c->p.i[0] = 1;
        c->p.i[1] = 660;
        add_src(c, t_scaled(LOOM_TYPE_F32, 3, 700, 40, 2, 8.0));
        add_src(c, t_i32(700, 1, fl));
        set_dst(c, LOOM_TYPE_F32, 3, 700, 40, 2, 1);
        finish(c, ex_grouped_softmax);
        c->rtol = 1e-5;
        free(fl);
    }
    c = case_add(l, LOOM_OP_ROPE, "large rope [128,32,16] half-split");
    static const int32_t pos16[] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 4000};
    c->p.i[0] = 1;
    c->p.f[0] = 10000.0f;
    add_src(c, t_dense(LOOM_TYPE_F32, 3, 128, 32, 16, 1));
    add_src(c, t_i32(16, 1, pos16));
    set_dst(c, LOOM_TYPE_F32, 3, 128, 32, 16, 1);
    finish(c, ex_rope);
    c->rtol = 1e-5;
    for (int kvt = 0; kvt < 2; kvt++) {
        uint32_t t = kvt ? LOOM_TYPE_F16 : LOOM_TYPE_F32;
        c = case_add(l, LOOM_OP_ATTENTION, "large attention %s hd 64 heads 8/2 tok 7 kv 300", tname(t));
        c->p.i[0] = 290;
        add_src(c, t_dense(LOOM_TYPE_F32, 3, 64, 8, 7, 1));
        add_src(c, t_dense(t, 3, 64, 2, 300, 1));
        add_src(c, t_dense(t, 3, 64, 2, 300, 1));
        set_dst(c, LOOM_TYPE_F32, 3, 64, 8, 7, 1);
        finish(c, ex_attention);
        c->rtol = 1e-5;
        c->btol = kvt ? 1e-3 : 1e-4;
    }
    c = case_add(l, LOOM_OP_COPY, "large copy transposed f32 -> f16 [300,200]");
    add_src(c, t_transposed(LOOM_TYPE_F32, 300, 200));
    set_dst(c, LOOM_TYPE_F16, 2, 200, 300, 1, 1);
    finish(c, ex_copy);
    c->rtol = c->btol = 1.0 / 2048;
    c->atol = 6e-8;
    c = case_add(l, LOOM_OP_HADAMARD, "large hadamard [1024,40]");
    add_src(c, t_dense(LOOM_TYPE_F32, 2, 1024, 40, 1, 1));
    set_dst(c, LOOM_TYPE_F32, 2, 1024, 40, 1, 1);
    finish(c, ex_hadamard);
    c->rtol = 1e-5;
    c = case_add(l, LOOM_OP_SWIGLU, "large swiglu [1536,24]");
    add_src(c, t_scaled(LOOM_TYPE_F32, 2, 1536, 24, 1, 6.0));
    add_src(c, t_dense(LOOM_TYPE_F32, 2, 1536, 24, 1, 1));
    set_dst(c, LOOM_TYPE_F32, 2, 1536, 24, 1, 1);
    finish(c, ex_binary);
}

th_case *th_cases_build(size_t *count) {
    case_list l = {NULL, 0, 0};
    rng_state = 0x853c49e6748fea9bull;
    cases_get_rows(&l);
    cases_norms(&l);
    cases_elementwise(&l);
    cases_matmul(&l);
    cases_rope(&l);
    cases_softmax(&l);
    cases_grouped_softmax(&l);
    cases_attention(&l);
    cases_copy(&l);
    cases_misc(&l);
    cases_large(&l);
    *count = l.n;
    return l.v;
}

void th_cases_free(th_case *cases, size_t count) {
    for (size_t i = 0; i < count; i++) {
        for (uint32_t s = 0; s < cases[i].n_src; s++)
            free(cases[i].src[s].bytes);
        free(cases[i].dst.bytes);
        free(cases[i].expect);
        free(cases[i].mag);
    }
    free(cases);
}

/* ============================================================================================ */
/* Running a case                                                                               */
/* ============================================================================================ */

/* Create the tensor (and view) of a case operand in `exec`. *wrapped is set for host weights. */
static loom_status make_tensor(loom_exec *exec, const th_tensor *t, loom_tensor **out, loom_tensor **wrapped) {
    loom_tensor *base = NULL;
    loom_status st;
    *wrapped = NULL;
    if (t->weight) {
        st = loom_tensor_wrap_host("test.weight", t->type, t->base_dims, t->base_ne, t->bytes, LOOM_TENSOR_WEIGHT,
                                   &base);
        if (st != LOOM_OK) return st;
        *wrapped = base;
    } else {
        st = loom_host_tensor_new(exec, t->type, t->base_dims, t->base_ne, 0, &base);
        if (st == LOOM_OK) st = loom_host_tensor_write(exec, base, 0, t->bytes, t->n_bytes);
        if (st != LOOM_OK) return st;
    }
    if (!t->is_view) {
        *out = base;
        return LOOM_OK;
    }
    return loom_host_tensor_view(exec, base, t->n_dims, t->ne, t->nb, t->offset, out);
}

loom_status th_case_run(loom_exec *exec, const th_case *c, double *out) {
    loom_tensor *srcs[LOOM_MAX_SRC], *wrapped[LOOM_MAX_SRC + 1] = {NULL}, *dst = NULL, *dst_base = NULL;
    loom_status st = LOOM_OK;
    for (uint32_t i = 0; i < c->n_src && st == LOOM_OK; i++)
        st = make_tensor(exec, &c->src[i], &srcs[i], &wrapped[i]);
    if (st == LOOM_OK) {
        if (c->inplace) {
            dst = srcs[0];
            dst_base = dst->base ? dst->base : dst;
        } else {
            st = make_tensor(exec, &c->dst, &dst, &wrapped[LOOM_MAX_SRC]);
            if (st == LOOM_OK) dst_base = dst->base ? dst->base : dst;
        }
    }
    if (st == LOOM_OK) st = loom_host_op(exec, &c->p, dst, srcs, c->n_src);
    if (st == LOOM_OK) {
        unsigned char *bytes = malloc(c->dst.n_bytes);
        st = loom_host_tensor_read(exec, dst_base, 0, bytes, c->dst.n_bytes);
        if (st == LOOM_OK) th_decode_plain(c->dst.type, bytes, out, c->n_out);
        free(bytes);
    }
    loom_exec_reset_scratch(exec);
    loom_exec_release_weights(exec); /* the wrapped weights die now */
    for (uint32_t i = 0; i <= LOOM_MAX_SRC; i++)
        loom_tensor_free_wrapped(wrapped[i]);
    return st;
}

loom_engine *th_engine_create(void) {
    loom_engine *engine = NULL;
    char err[512] = "";
    loom_status st = loom_engine_create(NULL, &engine, err, sizeof err);
    if (st != LOOM_OK) {
        fprintf(stderr, "loom_engine_create failed: %s (%s)\n", loom_status_string(st), err);
        return NULL;
    }
    return engine;
}

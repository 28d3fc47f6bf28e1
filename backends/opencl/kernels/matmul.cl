/*
 * matmul.cl - dst[.., n, m] = sum_k x[.., n, k] * w[.., m, k] for F32 activations x and weights
 * w of type F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K. Dims 2 and 3 of w repeat over groups of x's
 * (x.ne2 / w.ne2 consecutive x batches share one w batch).
 * One work-item computes weight row m for MM_NT consecutive rows n of x, dequantizing each
 * block of 32 weights once into two float16 vectors (16 partial sums per row, added at the end): global (m_count, ceil(n / MM_NT), ne2 * ne3). The launch covers
 * weight rows m_begin .. m_begin + m_count (a weight split over several allocations is done one
 * allocation at a time). x must be contiguous along k (nb0 = 4).
 */
#define MM_NT 8

/* Weights k = 32 kb .. 32 kb + 31 of a row: elements 0..15 in *w0, 16..31 in *w1. */
void deq_block(int type, __global const char *wrow, long blk_bytes, int kb, float16 *w0, float16 *w1)
{
    if (type == TY_F32) {
        *w0 = vload16(kb * 2, (__global const float *)wrow);
        *w1 = vload16(kb * 2 + 1, (__global const float *)wrow);
    } else if (type == TY_F16) {
        *w0 = vload_half16(kb * 2, (__global const half *)wrow);
        *w1 = vload_half16(kb * 2 + 1, (__global const half *)wrow);
    } else if (type == TY_BF16) {
        *w0 = as_float16(convert_uint16(vload16(kb * 2, (__global const ushort *)wrow)) << 16);
        *w1 = as_float16(convert_uint16(vload16(kb * 2 + 1, (__global const ushort *)wrow)) << 16);
    } else if (type == TY_Q8_0) {
        __global const char *blk = wrow + kb * blk_bytes;
        float dd = ld_half(blk);
        *w0 = convert_float16(vload16(0, blk + 2)) * dd;
        *w1 = convert_float16(vload16(1, blk + 2)) * dd;
    } else if (type == TY_Q4_0) {
        __global const char *blk = wrow + kb * blk_bytes;
        float dd = ld_half(blk);
        uchar16 q = vload16(0, (__global const uchar *)(blk + 2));
        *w0 = (convert_float16(q & (uchar16)(15)) - 8.0f) * dd;
        *w1 = (convert_float16(q >> (uchar16)(4)) - 8.0f) * dd;
    } else if (type == TY_Q4_1) {
        __global const char *blk = wrow + kb * blk_bytes;
        float dd = ld_half(blk), mm = ld_half(blk + 2);
        uchar16 q = vload16(0, (__global const uchar *)(blk + 4));
        *w0 = convert_float16(q & (uchar16)(15)) * dd + mm;
        *w1 = convert_float16(q >> (uchar16)(4)) * dd + mm;
    } else if (type == TY_Q4_K) {
        /* 32 values of one sub-block: one scale and min; low or high nibbles of a 32-byte run. */
        __global const char *blk = wrow + (kb / 8) * blk_bytes;
        __global const uchar *u = (__global const uchar *)blk;
        int j = kb % 8, sc, mn;
        float dd, dm;
        uchar16 q0, q1;
        q4_k_scale_min(u + 4, j, &sc, &mn);
        dd = ld_half(blk) * (float)sc;
        dm = ld_half(blk + 2) * (float)mn;
        q0 = vload16(0, u + 16 + (j / 2) * 32);
        q1 = vload16(1, u + 16 + (j / 2) * 32);
        if (j & 1) {
            q0 = q0 >> (uchar16)(4);
            q1 = q1 >> (uchar16)(4);
        } else {
            q0 = q0 & (uchar16)(15);
            q1 = q1 & (uchar16)(15);
        }
        *w0 = convert_float16(q0) * dd - dm;
        *w1 = convert_float16(q1) * dd - dm;
    } else { /* TY_Q6_K */
        __global const char *blk = wrow + (kb / 8) * blk_bytes;
        float v[32];
        for (int i = 0; i < 32; i++)
            v[i] = ld_q6_k(blk, (kb % 8) * 32 + i);
        *w0 = vload16(0, v);
        *w1 = vload16(1, v);
    }
}

float hsum16(float16 v)
{
    float8 a = v.lo + v.hi;
    float4 b = a.lo + a.hi;
    return (b.x + b.y) + (b.z + b.w);
}

void mm_body(int type, int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    int mi = get_global_id(0), n0 = get_global_id(1) * MM_NT, b = get_global_id(2);
    int m = m_begin + mi;
    int i2 = b % x_ne2, i3 = b / x_ne2;
    int w2 = i2 / (x_ne2 / w_ne2), w3 = i3 / (x_ne3 / w_ne3);
    int K = x_ne0, nb_full = K / 32;
    int nn = min(MM_NT, x_ne1 - n0);
    __global const char *wrow = T_ROW(w, m, w2, w3);
    float16 acc[MM_NT];
    float res[MM_NT];
    float16 w0, w1;
    if (mi >= m_count)
        return;
    for (int t = 0; t < MM_NT; t++)
        acc[t] = (float16)(0.0f);
    for (int kb = 0; kb < nb_full; kb++) {
        deq_block(type, wrow, w_nb0, kb, &w0, &w1);
        for (int t = 0; t < nn; t++) {
            __global const float *xr = (__global const float *)T_ROW(x, n0 + t, i2, i3) + kb * 32;
            acc[t] += w0 * vload16(0, xr) + w1 * vload16(1, xr);
        }
    }
    for (int t = 0; t < MM_NT; t++)
        res[t] = hsum16(acc[t]);
    if (type == TY_F32 || type == TY_F16 || type == TY_BF16) {
        for (int k = nb_full * 32; k < K; k++) {
            float wk = ld_elem(type, wrow + (long)k * w_nb0);
            for (int t = 0; t < nn; t++)
                res[t] += wk * ((__global const float *)T_ROW(x, n0 + t, i2, i3))[k];
        }
    }
    for (int t = 0; t < nn; t++)
        *(__global float *)T_AT(d, m, n0 + t, i2, i3) = res[t];
}

__kernel void k_mm_f32(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_F32, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

__kernel void k_mm_f16(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_F16, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

__kernel void k_mm_bf16(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_BF16, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

__kernel void k_mm_q4_k(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_Q4_K, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

__kernel void k_mm_q6_k(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_Q6_K, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

__kernel void k_mm_q8_0(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_Q8_0, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

__kernel void k_mm_q4_0(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_Q4_0, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

__kernel void k_mm_q4_1(int m_begin, int m_count, T_ARGS(x), T_ARGS(w), T_ARGS(d))
{
    mm_body(TY_Q4_1, m_begin, m_count, T_PASS(x), T_PASS(w), T_PASS(d));
}

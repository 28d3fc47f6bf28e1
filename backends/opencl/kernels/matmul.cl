/*
 * matmul.cl - dst[.., n, m] = sum_k x[.., n, k] * w[.., m, k] for F32 activations x and weights
 * w of type F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K or Q6_K. Dims 2 and 3 of w repeat over groups of x's
 * (x.ne2 / w.ne2 consecutive x batches share one w batch).
 * One work-item computes weight row m for MM_NT consecutive rows n of x, dequantizing each
 * block of 32 weights once: global (m_count, ceil(n / MM_NT), ne2 * ne3). The launch covers
 * weight rows m_begin .. m_begin + m_count (a weight split over several allocations is done one
 * allocation at a time). x must be contiguous along k (nb0 = 4).
 */
#define MM_NT 8

/* Weights k = 32 kb .. 32 kb + 31 of a row into wv[0..7] (elements 4j .. 4j+3 in wv[j]). */
void deq_block(int type, __global const char *wrow, long blk_bytes, int kb, float4 *wv)
{
    if (type == TY_F32) {
        for (int j = 0; j < 8; j++)
            wv[j] = vload4(kb * 8 + j, (__global const float *)wrow);
    } else if (type == TY_F16) {
        for (int j = 0; j < 8; j++)
            wv[j] = vload_half4(kb * 8 + j, (__global const half *)wrow);
    } else if (type == TY_BF16) {
        for (int j = 0; j < 8; j++)
            wv[j] = as_float4(convert_uint4(vload4(kb * 8 + j, (__global const ushort *)wrow)) << 16);
    } else if (type == TY_Q4_K) {
        /* 32 values of one sub-block: one scale and min. */
        __global const char *blk = wrow + (kb / 8) * blk_bytes;
        __global const uchar *u = (__global const uchar *)blk;
        int j = kb % 8, sc, mn;
        float dd, dm;
        q4_k_scale_min(u + 4, j, &sc, &mn);
        dd = ld_half(blk) * (float)sc;
        dm = ld_half(blk + 2) * (float)mn;
        for (int i = 0; i < 8; i++) {
            uchar4 q = vload4(i, u + 16 + (j / 2) * 32);
            q = (j & 1) ? q >> (uchar4)(4) : q & (uchar4)(15);
            wv[i] = convert_float4(q) * dd - dm;
        }
    } else if (type == TY_Q6_K) {
        __global const char *blk = wrow + (kb / 8) * blk_bytes;
        for (int i = 0; i < 8; i++)
            wv[i] = (float4)(ld_q6_k(blk, (kb % 8) * 32 + 4 * i), ld_q6_k(blk, (kb % 8) * 32 + 4 * i + 1),
                             ld_q6_k(blk, (kb % 8) * 32 + 4 * i + 2), ld_q6_k(blk, (kb % 8) * 32 + 4 * i + 3));
    } else if (type == TY_Q8_0) {
        __global const char *blk = wrow + kb * blk_bytes;
        float dd = ld_half(blk);
        for (int j = 0; j < 8; j++)
            wv[j] = convert_float4(vload4(j, blk + 2)) * dd;
    } else if (type == TY_Q4_0) {
        __global const char *blk = wrow + kb * blk_bytes;
        float dd = ld_half(blk);
        for (int j = 0; j < 4; j++) {
            uchar4 q = vload4(j, (__global const uchar *)(blk + 2));
            wv[j] = (convert_float4(q & (uchar4)(15)) - 8.0f) * dd;
            wv[4 + j] = (convert_float4(q >> (uchar4)(4)) - 8.0f) * dd;
        }
    } else {
        __global const char *blk = wrow + kb * blk_bytes;
        float dd = ld_half(blk), mm = ld_half(blk + 2);
        for (int j = 0; j < 4; j++) {
            uchar4 q = vload4(j, (__global const uchar *)(blk + 4));
            wv[j] = convert_float4(q & (uchar4)(15)) * dd + mm;
            wv[4 + j] = convert_float4(q >> (uchar4)(4)) * dd + mm;
        }
    }
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
    float acc[MM_NT];
    float4 wv[8];
    if (mi >= m_count)
        return;
    for (int t = 0; t < MM_NT; t++)
        acc[t] = 0.0f;
    for (int kb = 0; kb < nb_full; kb++) {
        deq_block(type, wrow, w_nb0, kb, wv);
        for (int t = 0; t < nn; t++) {
            __global const float *xr = (__global const float *)T_ROW(x, n0 + t, i2, i3) + kb * 32;
            float4 s = wv[0] * vload4(0, xr);
            for (int j = 1; j < 8; j++)
                s += wv[j] * vload4(j, xr);
            acc[t] += (s.x + s.y) + (s.z + s.w);
        }
    }
    if (type == TY_F32 || type == TY_F16 || type == TY_BF16) {
        for (int k = nb_full * 32; k < K; k++) {
            float wk = ld_elem(type, wrow + (long)k * w_nb0);
            for (int t = 0; t < nn; t++)
                acc[t] += wk * ((__global const float *)T_ROW(x, n0 + t, i2, i3))[k];
        }
    }
    for (int t = 0; t < nn; t++)
        *(__global float *)T_AT(d, m, n0 + t, i2, i3) = acc[t];
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

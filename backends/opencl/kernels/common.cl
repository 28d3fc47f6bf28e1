/*
 * common.cl - definitions shared by every Loom OpenCL program (prepended to each family).
 *
 * A tensor operand is passed as 10 kernel arguments: the buffer, a signed byte offset, the four
 * element counts ne0..ne3 and the four byte strides nb0..nb3 (nb0 = element or block size).
 * Byte offsets are summed as 64-bit integers before they are added to the buffer pointer.
 * Needs OpenCL C 1.2; half values are read and written with vload_half/vstore_half only, so
 * cl_khr_fp16 is not required. LOOM_WG (work-group size of the reduction kernels, a power of
 * two) comes from the build options.
 */
#ifndef LOOM_WG
#define LOOM_WG 1
#endif

/* Accumulators of statistics (norms, softmax sums) and RoPE angles: double where the device has
 * it (matching the CPU reference's choices), float otherwise. */
#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
#else
typedef float acc_t;
#endif

#define T_ARGS(t)                                                                                  \
    __global char *t##_p, long t##_off, int t##_ne0, int t##_ne1, int t##_ne2, int t##_ne3,       \
        long t##_nb0, long t##_nb1, long t##_nb2, long t##_nb3

/* Address of element (i0, i1, i2, i3) of a plain (non-block) tensor. */
#define T_AT(t, i0, i1, i2, i3)                                                                    \
    (t##_p + (t##_off + (long)(i0)*t##_nb0 + (long)(i1)*t##_nb1 + (long)(i2)*t##_nb2 +            \
              (long)(i3)*t##_nb3))
/* Address of row (i1, i2, i3). */
#define T_ROW(t, i1, i2, i3) (t##_p + (t##_off + (long)(i1)*t##_nb1 + (long)(i2)*t##_nb2 + (long)(i3)*t##_nb3))

/* LOOM_TYPE_* values used by the kernels. */
#define TY_F32 0
#define TY_F16 1
#define TY_BF16 2
#define TY_Q8_0 3
#define TY_Q4_0 4
#define TY_Q4_1 5
#define TY_Q4_K 6
#define TY_Q6_K 7
#define TY_I32 10

float ld_half(__global const char *p)
{
    return vload_half(0, (__global const half *)p);
}

float ld_bf16(__global const char *p)
{
    return as_float(((uint)(*(__global const ushort *)p)) << 16);
}

/* Load one element of a plain float type. */
float ld_elem(int type, __global const char *p)
{
    if (type == TY_F32)
        return *(__global const float *)p;
    if (type == TY_F16)
        return ld_half(p);
    return ld_bf16(p);
}

ushort f32_to_bf16_rne(float f)
{
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (ushort)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (ushort)(u >> 16);
}

/* Store one element of a plain float type. */
void st_elem(int type, __global char *p, float v)
{
    if (type == TY_F32)
        *(__global float *)p = v;
    else if (type == TY_F16)
        vstore_half_rte(v, 0, (__global half *)p);
    else
        *(__global ushort *)p = f32_to_bf16_rne(v);
}

/* Element i (0..31) of a quantized block at p. */
float ld_q(int type, __global const char *blk, int i)
{
    if (type == TY_Q8_0)
        return ld_half(blk) * (float)((__global const char *)blk)[2 + i];
    {
        int j = i & 15;
        int shift = i < 16 ? 0 : 4;
        if (type == TY_Q4_0) {
            uchar b = ((__global const uchar *)blk)[2 + j];
            return ld_half(blk) * (float)((int)((b >> shift) & 15) - 8);
        } else {
            uchar b = ((__global const uchar *)blk)[4 + j];
            return ld_half(blk) * (float)((b >> shift) & 15) + ld_half(blk + 2);
        }
    }
}

/* Element e (0..255) of a Q4_K block (144 bytes: fp16 d, fp16 dmin, 12 bytes of 6-bit
 * scale/min pairs for 8 sub-blocks of 32, 128 bytes of nibbles in 32-byte runs: 32 low nibbles
 * (sub-block 2r) then 32 high nibbles (2r + 1)): d * scale * q - dmin * min. */
void q4_k_scale_min(__global const uchar *sc, int j, int *s, int *m)
{
    if (j < 4) {
        *s = sc[j] & 63;
        *m = sc[j + 4] & 63;
    } else {
        *s = (sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4);
        *m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
    }
}

float ld_q4_k(__global const char *blk, int e)
{
    __global const uchar *u = (__global const uchar *)blk;
    int j = e / 32, l = e % 32, s, m;
    uchar b = u[16 + (j / 2) * 32 + l];
    q4_k_scale_min(u + 4, j, &s, &m);
    return ld_half(blk) * (float)s * (float)((j & 1) ? (b >> 4) : (b & 15)) - ld_half(blk + 2) * (float)m;
}

/* Element e (0..255) of a Q6_K block (210 bytes: ql[128] low 4 bits, qh[64] high 2 bits,
 * int8 scales[16] (one per 16 values), fp16 d last). Each half of 128 values uses 64 ql bytes,
 * 32 qh bytes and 8 scales; its quarter q (32 values, l = 0..31) takes the low (q < 2) or high
 * nibble of ql[l + 32 (q & 1)] and bits 2q, 2q+1 of qh[l], with scale l / 16 + 2q. */
float ld_q6_k(__global const char *blk, int e)
{
    __global const uchar *u = (__global const uchar *)blk;
    int h = e / 128, r = e % 128, q = r / 32, l = r % 32;
    int lo = u[h * 64 + l + 32 * (q & 1)];
    int hi = (u[128 + h * 32 + l] >> (2 * q)) & 3;
    int sc = ((__global const char *)blk)[192 + h * 8 + l / 16 + 2 * q];
    lo = q >= 2 ? lo >> 4 : lo & 15;
    return ld_half(blk + 208) * (float)sc * (float)((lo | (hi << 4)) - 32);
}

/* Element i0 of a row of any weight type. */
float ld_row_elem(int type, __global const char *row, long nb0, int i0)
{
    if (type == TY_F32 || type == TY_F16 || type == TY_BF16)
        return ld_elem(type, row + (long)i0 * nb0);
    if (type == TY_Q4_K)
        return ld_q4_k(row + (long)(i0 / 256) * nb0, i0 % 256);
    if (type == TY_Q6_K)
        return ld_q6_k(row + (long)(i0 / 256) * nb0, i0 % 256);
    return ld_q(type, row + (long)(i0 / 32) * nb0, i0 % 32);
}

/* Sum of v over the work-group (every work-item gets the result). scratch: LOOM_WG values. */
acc_t wg_sum(acc_t v, __local acc_t *scratch)
{
#if LOOM_WG == 1
    return v;
#else
    int lid = get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LOOM_WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    v = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return v;
#endif
}

/* Maximum of v over the work-group. */
float wg_max(float v, __local float *scratch)
{
#if LOOM_WG == 1
    return v;
#else
    int lid = get_local_id(0);
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = LOOM_WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            scratch[lid] = fmax(scratch[lid], scratch[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    v = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return v;
#endif
}

/* Forward a tensor's 10 arguments to a helper function declared with T_ARGS. */
#define T_PASS(t) t##_p, t##_off, t##_ne0, t##_ne1, t##_ne2, t##_ne3, t##_nb0, t##_nb1, t##_nb2, t##_nb3

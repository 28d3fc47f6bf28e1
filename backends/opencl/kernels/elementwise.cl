/*
 * elementwise.cl - ADD, MUL, SWIGLU (binary, src1 broadcast by repetition along every
 * dimension) and SCALE, SILU, GELU (unary). F32 operands, any strides. One work-item per
 * element of dst: global size (ne0, ne1, ne2 * ne3).
 */
#define BIN_ADD 0
#define BIN_MUL 1
#define BIN_SWIGLU 2

#define UN_SCALE 0
#define UN_SILU 1
#define UN_GELU 2

__kernel void k_binary(int op, int b_type, T_ARGS(a), T_ARGS(b), T_ARGS(d))
{
    int i0 = get_global_id(0), i1 = get_global_id(1), i23 = get_global_id(2);
    int i2 = i23 % d_ne2, i3 = i23 / d_ne2;
    float x = *(__global const float *)T_AT(a, i0, i1, i2, i3);
    float y = ld_elem(b_type, T_AT(b, i0 % b_ne0, i1 % b_ne1, i2 % b_ne2, i3 % b_ne3));
    float r;
    if (op == BIN_ADD)
        r = x + y;
    else if (op == BIN_MUL)
        r = x * y;
    else
        r = x / (1.0f + exp(-x)) * y;
    *(__global float *)T_AT(d, i0, i1, i2, i3) = r;
}

__kernel void k_unary(int op, float f0, T_ARGS(a), T_ARGS(d))
{
    int i0 = get_global_id(0), i1 = get_global_id(1), i23 = get_global_id(2);
    int i2 = i23 % d_ne2, i3 = i23 / d_ne2;
    float x = *(__global const float *)T_AT(a, i0, i1, i2, i3);
    float r;
    if (op == UN_SCALE)
        r = x * f0;
    else if (op == UN_SILU)
        r = x / (1.0f + exp(-x));
    else
        r = 0.5f * x * (1.0f + erf(x * M_SQRT1_2_F));
    *(__global float *)T_AT(d, i0, i1, i2, i3) = r;
}

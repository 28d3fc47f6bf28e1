/*
 * norm.cl - RMS_NORM and LAYER_NORM over ne0, one work-group of LOOM_WG items per row
 * (global size n_rows * LOOM_WG). The optional gain w (and bias b) have ne0 elements per row and
 * repeat over rows when they have fewer; they may be F32, F16 or BF16 (type -1: absent). x and
 * dst are F32; any strides. Statistics accumulate in acc_t (double where available).
 */
__kernel void k_rms_norm(float eps, int w_type, T_ARGS(a), T_ARGS(w), T_ARGS(d))
{
    __local acc_t scratch[LOOM_WG];
    int row = get_group_id(0), lid = get_local_id(0);
    int i1 = row % a_ne1, i2 = (row / a_ne1) % a_ne2, i3 = row / (a_ne1 * a_ne2);
    acc_t s = 0;
    float scale;
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        acc_t x = *(__global const float *)T_AT(a, i0, i1, i2, i3);
        s += x * x;
    }
    s = wg_sum(s, scratch);
    scale = (float)(1 / sqrt(s / a_ne0 + eps));
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        float y = *(__global const float *)T_AT(a, i0, i1, i2, i3) * scale;
        if (w_type >= 0)
            y *= ld_elem(w_type, T_AT(w, i0, i1 % w_ne1, i2 % w_ne2, i3 % w_ne3));
        *(__global float *)T_AT(d, i0, i1, i2, i3) = y;
    }
}

__kernel void k_layer_norm(float eps, int w_type, int b_type, T_ARGS(a), T_ARGS(w), T_ARGS(b), T_ARGS(d))
{
    __local acc_t scratch[LOOM_WG];
    int row = get_group_id(0), lid = get_local_id(0);
    int i1 = row % a_ne1, i2 = (row / a_ne1) % a_ne2, i3 = row / (a_ne1 * a_ne2);
    acc_t s = 0, mean, var = 0;
    float fmean, scale;
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG)
        s += *(__global const float *)T_AT(a, i0, i1, i2, i3);
    mean = wg_sum(s, scratch) / a_ne0;
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        acc_t x = *(__global const float *)T_AT(a, i0, i1, i2, i3) - mean;
        var += x * x;
    }
    var = wg_sum(var, scratch) / a_ne0;
    scale = (float)(1 / sqrt(var + eps));
    fmean = (float)mean;
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        float y = (*(__global const float *)T_AT(a, i0, i1, i2, i3) - fmean) * scale;
        if (w_type >= 0)
            y *= ld_elem(w_type, T_AT(w, i0, i1 % w_ne1, i2 % w_ne2, i3 % w_ne3));
        if (b_type >= 0)
            y += ld_elem(b_type, T_AT(b, i0, i1 % b_ne1, i2 % b_ne2, i3 % b_ne3));
        *(__global float *)T_AT(d, i0, i1, i2, i3) = y;
    }
}

/*
 * norm.cl - RMS_NORM and LAYER_NORM over ne0, one work-group of LOOM_WG items per row
 * (global size n_rows * LOOM_WG). The optional gain w (and bias b) have ne0 elements per row and
 * repeat over rows when they have fewer. F32, any strides.
 */
__kernel void k_rms_norm(float eps, int has_w, T_ARGS(a), T_ARGS(w), T_ARGS(d))
{
    __local float scratch[LOOM_WG];
    int row = get_group_id(0), lid = get_local_id(0);
    int i1 = row % a_ne1, i2 = (row / a_ne1) % a_ne2, i3 = row / (a_ne1 * a_ne2);
    float s = 0.0f, scale;
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        float x = *(__global const float *)T_AT(a, i0, i1, i2, i3);
        s += x * x;
    }
    s = wg_sum(s, scratch);
    scale = 1.0f / sqrt(s / (float)a_ne0 + eps);
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        float y = *(__global const float *)T_AT(a, i0, i1, i2, i3) * scale;
        if (has_w)
            y *= *(__global const float *)T_AT(w, i0, i1 % w_ne1, i2 % w_ne2, i3 % w_ne3);
        *(__global float *)T_AT(d, i0, i1, i2, i3) = y;
    }
}

__kernel void k_layer_norm(float eps, int has_w, int has_b, T_ARGS(a), T_ARGS(w), T_ARGS(b), T_ARGS(d))
{
    __local float scratch[LOOM_WG];
    int row = get_group_id(0), lid = get_local_id(0);
    int i1 = row % a_ne1, i2 = (row / a_ne1) % a_ne2, i3 = row / (a_ne1 * a_ne2);
    float s = 0.0f, mean, var = 0.0f, scale;
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG)
        s += *(__global const float *)T_AT(a, i0, i1, i2, i3);
    mean = wg_sum(s, scratch) / (float)a_ne0;
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        float x = *(__global const float *)T_AT(a, i0, i1, i2, i3) - mean;
        var += x * x;
    }
    var = wg_sum(var, scratch) / (float)a_ne0;
    scale = 1.0f / sqrt(var + eps);
    for (int i0 = lid; i0 < a_ne0; i0 += LOOM_WG) {
        float y = (*(__global const float *)T_AT(a, i0, i1, i2, i3) - mean) * scale;
        if (has_w)
            y *= *(__global const float *)T_AT(w, i0, i1 % w_ne1, i2 % w_ne2, i3 % w_ne3);
        if (has_b)
            y += *(__global const float *)T_AT(b, i0, i1 % b_ne1, i2 % b_ne2, i3 % b_ne3);
        *(__global float *)T_AT(d, i0, i1, i2, i3) = y;
    }
}

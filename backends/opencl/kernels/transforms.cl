/*
 * transforms.cl - WEIGHTED_SUM (dst[d, n] = sum_s w[s] * x[d, n, s], F32, states in order; w has
 * S elements in any shape) and HADAMARD (normalised fast Walsh-Hadamard transform of groups of g
 * values along ne0: log2 g butterfly stages in place in dst, then the 1/sqrt(g) factor).
 */
__kernel void k_weighted_sum(T_ARGS(a), T_ARGS(w), T_ARGS(d))
{
    int i0 = get_global_id(0), i1 = get_global_id(1);
    float s = 0.0f;
    for (int k = 0; k < a_ne2; k++) {
        int w0 = k % w_ne0, r = k / w_ne0;
        int w1 = r % w_ne1, w2 = (r / w_ne1) % w_ne2, w3 = r / (w_ne1 * w_ne2);
        s += *(__global const float *)T_AT(w, w0, w1, w2, w3) * *(__global const float *)T_AT(a, i0, i1, k, 0);
    }
    *(__global float *)T_AT(d, i0, i1, 0, 0) = s;
}

/* One work-item per group of g values: global (ne0 / g, ne1 * ne2 * ne3). */
__kernel void k_hadamard(int g, T_ARGS(a), T_ARGS(d))
{
    int grp = get_global_id(0), row = get_global_id(1);
    int i1 = row % a_ne1, i2 = (row / a_ne1) % a_ne2, i3 = row / (a_ne1 * a_ne2);
    int e0 = grp * g;
    float scale = 1.0f / sqrt((float)g);
    for (int i = 0; i < g; i++)
        *(__global float *)T_AT(d, e0 + i, i1, i2, i3) = *(__global const float *)T_AT(a, e0 + i, i1, i2, i3);
    for (int h = 1; h < g; h *= 2)
        for (int i = 0; i < g; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                __global float *p0 = (__global float *)T_AT(d, e0 + j, i1, i2, i3);
                __global float *p1 = (__global float *)T_AT(d, e0 + j + h, i1, i2, i3);
                float x = *p0, y = *p1;
                *p0 = x + y;
                *p1 = x - y;
            }
    for (int i = 0; i < g; i++)
        *(__global float *)T_AT(d, e0 + i, i1, i2, i3) *= scale;
}

/*
 * rope.cl - rotary position embedding on x [n_tok (ne2), n_head (ne1), head_dim (ne0)] with
 * positions pos (I32, one per token). mode 0 rotates interleaved pairs (2i, 2i+1), mode 1 the
 * half-split pairs (i, i + n_rot/2); dimensions past n_rot are copied. The angle of pair i is
 * pos * pos_scale * base^(-2i/n_rot), in double where the device has it (acc_t). One work-item per pair: global (ne0/2, ne1, ne2 * ne3).
 * dst may alias src (each item reads its two values before writing them).
 */
__kernel void k_rope(int mode, int n_rot, float base, float pos_scale, T_ARGS(a), T_ARGS(pos), T_ARGS(d))
{
    int p = get_global_id(0), h = get_global_id(1), t23 = get_global_id(2);
    int t = t23 % a_ne2, i3 = t23 / a_ne2;
    int j0, j1;
    float x0, x1;
    if (2 * p < n_rot) {
        if (mode == 0) {
            j0 = 2 * p;
            j1 = 2 * p + 1;
        } else {
            j0 = p;
            j1 = p + n_rot / 2;
        }
    } else {
        j0 = 2 * p;
        j1 = 2 * p + 1;
    }
    x0 = *(__global const float *)T_AT(a, j0, h, t, i3);
    x1 = *(__global const float *)T_AT(a, j1, h, t, i3);
    if (2 * p < n_rot) {
        int ps = *(__global const int *)T_AT(pos, t, 0, 0, 0);
        acc_t theta = (acc_t)ps * (acc_t)pos_scale * pow((acc_t)base, -(acc_t)(2 * p) / (acc_t)n_rot);
        float c = (float)cos(theta), s = (float)sin(theta);
        float y0 = x0 * c - x1 * s;
        float y1 = x0 * s + x1 * c;
        x0 = y0;
        x1 = y1;
    }
    *(__global float *)T_AT(d, j0, h, t, i3) = x0;
    *(__global float *)T_AT(d, j1, h, t, i3) = x1;
}

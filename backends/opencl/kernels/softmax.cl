/*
 * softmax.cl - row softmax of a * scale (+ mask, F32 or F16, repeated over rows when it has
 * fewer; scale 0 means 1), with an optional causal limit: row i1 sees columns c <= causal_off + i1. One work-group
 * of LOOM_WG items per row. A row with no visible column is written as zeros.
 */
float sm_value(float scale, int has_mask, int m_type, int causal, int causal_off, int c, int i1, int i2, int i3,
               T_ARGS(a), T_ARGS(m))
{
    float v;
    if (causal && c > causal_off + i1)
        return -INFINITY;
    v = *(__global const float *)T_AT(a, c, i1, i2, i3) * scale;
    if (has_mask)
        v += ld_elem(m_type, T_AT(m, c % m_ne0, i1 % m_ne1, i2 % m_ne2, i3 % m_ne3));
    return v;
}

#define SM_VALUE(c)                                                                                \
    sm_value(scale, has_mask, m_type, causal, causal_off, (c), i1, i2, i3, T_PASS(a), T_PASS(m))

__kernel void k_softmax(float scale, int has_mask, int m_type, int causal, int causal_off, T_ARGS(a), T_ARGS(m),
                        T_ARGS(d))
{
    __local float scratch[LOOM_WG];
    __local acc_t ascratch[LOOM_WG];
    int row = get_group_id(0), lid = get_local_id(0);
    int i1 = row % a_ne1, i2 = (row / a_ne1) % a_ne2, i3 = row / (a_ne1 * a_ne2);
    float mx = -INFINITY, inv;
    acc_t sum = 0;
    for (int c = lid; c < a_ne0; c += LOOM_WG)
        mx = fmax(mx, SM_VALUE(c));
    mx = wg_max(mx, scratch);
    if (mx == -INFINITY) {
        for (int c = lid; c < a_ne0; c += LOOM_WG)
            *(__global float *)T_AT(d, c, i1, i2, i3) = 0.0f;
        return;
    }
    for (int c = lid; c < a_ne0; c += LOOM_WG)
        sum += exp(SM_VALUE(c) - mx);
    sum = wg_sum(sum, ascratch);
    inv = (float)(1 / sum);
    for (int c = lid; c < a_ne0; c += LOOM_WG)
        *(__global float *)T_AT(d, c, i1, i2, i3) = exp(SM_VALUE(c) - mx) * inv;
}

/*
 * copy.cl - COPY (element i of src in row-major order of its shape goes to element i of dst in
 * the order of dst's shape; F32/F16/BF16 to F32/F16/BF16, any strides) and GET_ROWS (dst[n, :]
 * = table[ids[n], :] as F32 for tables of F32, F16, BF16, Q8_0, Q4_0, Q4_1).
 */
__kernel void k_copy(long n, T_ARGS(a), T_ARGS(d), int a_type, int d_type)
{
    long i = get_global_id(0);
    long r;
    int a0, a1, a2, a3, d0, d1, d2, d3;
    if (i >= n)
        return;
    r = i;
    a0 = (int)(r % a_ne0); r /= a_ne0;
    a1 = (int)(r % a_ne1); r /= a_ne1;
    a2 = (int)(r % a_ne2); a3 = (int)(r / a_ne2);
    r = i;
    d0 = (int)(r % d_ne0); r /= d_ne0;
    d1 = (int)(r % d_ne1); r /= d_ne1;
    d2 = (int)(r % d_ne2); d3 = (int)(r / d_ne2);
    st_elem(d_type, T_AT(d, d0, d1, d2, d3), ld_elem(a_type, T_AT(a, a0, a1, a2, a3)));
}

/*
 * One work-item per (element i0, output row n): global (ne0, n_ids). Only ids in
 * [row_begin, row_begin + row_count) are handled by this launch (a table split over several
 * allocations takes one launch per allocation); ids outside [0, n_rows) set *flags to 1 and
 * their row is written as zeros.
 */
__kernel void k_get_rows(int type, int n_rows, int row_begin, int row_count, T_ARGS(t), T_ARGS(ids), T_ARGS(d),
                         __global int *flags)
{
    int i0 = get_global_id(0), n = get_global_id(1);
    int id = *(__global const int *)T_AT(ids, n, 0, 0, 0);
    float v;
    if (id < 0 || id >= n_rows) {
        if (row_begin == 0) {
            *(__global float *)T_AT(d, i0, n, 0, 0) = 0.0f;
            if (i0 == 0)
                *flags = 1;
        }
        return;
    }
    if (id < row_begin || id >= row_begin + row_count)
        return;
    if (type == TY_F32 || type == TY_F16 || type == TY_BF16)
        v = ld_elem(type, T_AT(t, i0, id, 0, 0));
    else
        v = ld_q(type, T_ROW(t, id, 0, 0) + (long)(i0 / 32) * t_nb0, i0 % 32);
    *(__global float *)T_AT(d, i0, n, 0, 0) = v;
}

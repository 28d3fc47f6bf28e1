/*
 * copy.cl - COPY (element i of src in row-major order of its shape goes to element i of dst in
 * the order of dst's shape; F32/F16/BF16 to F32/F16/BF16, I32 to I32, any strides) and
 * GET_ROWS (dst[:, n, a, b] = table[:, ids[n, a, b]] as F32, for tables of F32, F16, BF16,
 * Q8_0, Q4_0, Q4_1, Q4_K, Q6_K).
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
    if (a_type == TY_I32)
        *(__global int *)T_AT(d, d0, d1, d2, d3) = *(__global const int *)T_AT(a, a0, a1, a2, a3);
    else
        st_elem(d_type, T_AT(d, d0, d1, d2, d3), ld_elem(a_type, T_AT(a, a0, a1, a2, a3)));
}

/*
 * One work-item per (element i0, output row): global (ne0, ids.ne0 * ids.ne1 * ids.ne2). Only ids in
 * [row_begin, row_begin + row_count) are handled by this launch (a table split over several
 * allocations takes one launch per allocation); ids outside [0, n_rows) set *flags to 1 and
 * their row is written as zeros.
 */
__kernel void k_get_rows(int type, int n_rows, int row_begin, int row_count, T_ARGS(t), T_ARGS(ids), T_ARGS(d),
                         __global int *flags)
{
    int i0 = get_global_id(0), r = get_global_id(1);
    int n = r % ids_ne0, a = (r / ids_ne0) % ids_ne1, b = r / (ids_ne0 * ids_ne1);
    int id = *(__global const int *)T_AT(ids, n, a, b, 0);
    if (id < 0 || id >= n_rows) {
        if (row_begin == 0) {
            *(__global float *)T_AT(d, i0, n, a, b) = 0.0f;
            if (i0 == 0)
                *flags = 1;
        }
        return;
    }
    if (id < row_begin || id >= row_begin + row_count)
        return;
    *(__global float *)T_AT(d, i0, n, a, b) = ld_row_elem(type, T_ROW(t, id, 0, 0), t_nb0, i0);
}

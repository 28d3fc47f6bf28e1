/*
 * attention.cl - fused causal attention (online softmax, one pass over the keys).
 * q [n_tok (ne2), n_head (ne1), hd (ne0)] F32; K, V [n_kv (ne2), n_head_kv (ne1), hd] F32 or F16
 * (both the same type); query t sees keys 0 .. pos0 + t; query head h reads key/value head
 * h / (n_head / n_head_kv). One work-group of LOOM_WG items per (head, token): global
 * (n_head * LOOM_WG, n_tok). Keys are scored LOOM_WG at a time (one per item, through local
 * memory); each item accumulates the output dimensions d = lid (mod LOOM_WG). hd <= 256.
 */
#define ATT_MAX_HD 256
#define ATT_ACC ((ATT_MAX_HD + LOOM_WG - 1) / LOOM_WG)

float kv_at(int f16, __global const char *row, int i)
{
    return f16 ? ld_half(row + 2 * i) : ((__global const float *)row)[i];
}

float att_dot(int f16, __global const char *qrow, __global const char *krow, int hd)
{
    __global const float *q = (__global const float *)qrow;
    float4 acc = (float4)(0.0f);
    float s;
    int i = 0;
    if (f16) {
        for (; i + 4 <= hd; i += 4)
            acc += vload4(0, q + i) * vload_half4(0, (__global const half *)(krow + 2 * i));
    } else {
        for (; i + 4 <= hd; i += 4)
            acc += vload4(0, q + i) * vload4(0, (__global const float *)krow + i);
    }
    s = acc.x + acc.y + acc.z + acc.w;
    for (; i < hd; i++)
        s += q[i] * kv_at(f16, krow, i);
    return s;
}

void attention(int f16, float scale, int pos0, T_ARGS(q), T_ARGS(k), T_ARGS(v), T_ARGS(d), __local float *sc)
{
    int lid = get_local_id(0), h = get_group_id(0), t = get_global_id(1);
    int hd = q_ne0;
    int hk = h / (q_ne1 / k_ne1);
    int n_keys = min(k_ne2, pos0 + t + 1);
    __global const char *qrow = T_ROW(q, h, t, 0);
    float acc[ATT_ACC];
    float m = -INFINITY, l = 0.0f;
    for (int i = 0; i < ATT_ACC; i++)
        acc[i] = 0.0f;
    for (int j0 = 0; j0 < n_keys; j0 += LOOM_WG) {
        int j = j0 + lid;
        int cnt = min(LOOM_WG, n_keys - j0);
        float cm = m, corr;
        sc[lid] = j < n_keys ? att_dot(f16, qrow, T_ROW(k, hk, j, 0), hd) * scale : -INFINITY;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int jj = 0; jj < cnt; jj++)
            cm = fmax(cm, sc[jj]);
        corr = exp(m - cm);
        l *= corr;
        for (int i = 0; i < ATT_ACC; i++)
            acc[i] *= corr;
        for (int jj = 0; jj < cnt; jj++) {
            float p = exp(sc[jj] - cm);
            __global const char *vrow = T_ROW(v, hk, j0 + jj, 0);
            l += p;
            for (int i = 0; i < ATT_ACC; i++) {
                int dd = lid + i * LOOM_WG;
                if (dd < hd)
                    acc[i] += p * kv_at(f16, vrow, dd);
            }
        }
        m = cm;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    {
        __global char *drow = T_ROW(d, h, t, 0);
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int i = 0; i < ATT_ACC; i++) {
            int dd = lid + i * LOOM_WG;
            if (dd < hd)
                ((__global float *)drow)[dd] = acc[i] * inv;
        }
    }
}

__kernel void k_attention_f32(float scale, int pos0, T_ARGS(q), T_ARGS(k), T_ARGS(v), T_ARGS(d))
{
    __local float sc[LOOM_WG];
    attention(0, scale, pos0, T_PASS(q), T_PASS(k), T_PASS(v), T_PASS(d), sc);
}

__kernel void k_attention_f16(float scale, int pos0, T_ARGS(q), T_ARGS(k), T_ARGS(v), T_ARGS(d))
{
    __local float sc[LOOM_WG];
    attention(1, scale, pos0, T_PASS(q), T_PASS(k), T_PASS(v), T_PASS(d), sc);
}

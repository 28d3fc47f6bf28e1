/*
 * ref.h - straightforward double-precision reference implementations of the ops, written from
 * the op definitions in abi/loom_plugin.h, for the backend tests. Tensors are described by a
 * host copy of their values (already decoded to float) and their shape; every reference works on
 * contiguous data.
 */
#ifndef LOOM_TEST_REF_H
#define LOOM_TEST_REF_H

#include <math.h>
#include <stdint.h>

/* dst[n, m] (per batch) = sum_k x[n, k] w[m, k]; x batches [b2x, b3x], w batches divide them. */
static inline void ref_matmul(const float *x, const float *w, double *dst, int64_t k, int64_t n, int64_t m, int64_t b2x,
                              int64_t b3x, int64_t b2w, int64_t b3w) {
    for (int64_t i3 = 0; i3 < b3x; i3++)
        for (int64_t i2 = 0; i2 < b2x; i2++) {
            int64_t w2 = i2 / (b2x / b2w), w3 = i3 / (b3x / b3w);
            const float *xb = x + (i3 * b2x + i2) * n * k;
            const float *wb = w + (w3 * b2w + w2) * m * k;
            double *db = dst + (i3 * b2x + i2) * n * m;
            for (int64_t r = 0; r < n; r++)
                for (int64_t c = 0; c < m; c++) {
                    double s = 0;
                    for (int64_t j = 0; j < k; j++)
                        s += (double)xb[r * k + j] * (double)wb[c * k + j];
                    db[r * m + c] = s;
                }
        }
}

static inline void ref_rms_norm(const float *x, const float *w, double *dst, int64_t d, int64_t rows, double eps) {
    for (int64_t r = 0; r < rows; r++) {
        double s = 0;
        for (int64_t i = 0; i < d; i++)
            s += (double)x[r * d + i] * (double)x[r * d + i];
        s = 1.0 / sqrt(s / (double)d + eps);
        for (int64_t i = 0; i < d; i++)
            dst[r * d + i] = (double)x[r * d + i] * s * (w != NULL ? (double)w[i] : 1.0);
    }
}

static inline void ref_layer_norm(const float *x, const float *w, const float *b, double *dst, int64_t d, int64_t rows,
                                  double eps) {
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < d; i++)
            mean += (double)x[r * d + i];
        mean /= (double)d;
        for (int64_t i = 0; i < d; i++)
            var += ((double)x[r * d + i] - mean) * ((double)x[r * d + i] - mean);
        var /= (double)d;
        for (int64_t i = 0; i < d; i++)
            dst[r * d + i] = ((double)x[r * d + i] - mean) / sqrt(var + eps) * (w != NULL ? (double)w[i] : 1.0) +
                             (b != NULL ? (double)b[i] : 0.0);
    }
}

/* x [n_tok, n_head, hd] */
static inline void ref_rope(const float *x, const int32_t *pos, double *dst, int64_t hd, int64_t n_head, int64_t n_tok,
                            int mode, int64_t n_rot, double base, double pscale) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t h = 0; h < n_head; h++) {
            const float *xr = x + (t * n_head + h) * hd;
            double *dr = dst + (t * n_head + h) * hd;
            for (int64_t i = 0; i < hd; i++)
                dr[i] = (double)xr[i];
            for (int64_t i = 0; i < n_rot / 2; i++) {
                double theta = pos[t] * pscale * pow(base, -2.0 * (double)i / (double)n_rot);
                int64_t j0 = mode == 0 ? 2 * i : i, j1 = mode == 0 ? 2 * i + 1 : i + n_rot / 2;
                dr[j0] = (double)xr[j0] * cos(theta) - (double)xr[j1] * sin(theta);
                dr[j1] = (double)xr[j0] * sin(theta) + (double)xr[j1] * cos(theta);
            }
        }
}

/* Rows of length n; mask [mrows, n] repeats over rows (NULL: none); causal: col <= off + row%rows_per. */
static inline void ref_softmax(const float *x, const float *mask, int64_t mrows, double *dst, int64_t n, int64_t rows,
                               int64_t ne1, double scale, int causal, int64_t off) {
    for (int64_t r = 0; r < rows; r++) {
        double mx = -HUGE_VAL, sum = 0;
        double v[4096];
        int64_t i1 = r % ne1;
        for (int64_t c = 0; c < n; c++) {
            v[c] = (double)x[r * n + c] * scale + (mask != NULL ? (double)mask[(r % mrows) * n + c] : 0.0);
            if (causal && c > off + i1) v[c] = -HUGE_VAL;
            if (v[c] > mx) mx = v[c];
        }
        for (int64_t c = 0; c < n; c++)
            sum += mx == -HUGE_VAL ? 0 : exp(v[c] - mx);
        for (int64_t c = 0; c < n; c++)
            dst[r * n + c] = mx == -HUGE_VAL ? 0 : exp(v[c] - mx) / sum;
    }
}

/* q [n_tok, n_head, hd], k/v [n_kv, n_kv_head, hd] */
static inline void ref_attention(const float *q, const float *k, const float *v, double *dst, int64_t hd,
                                 int64_t n_head, int64_t n_tok, int64_t n_kv_head, int64_t n_kv, int64_t pos0,
                                 double scale) {
    double s[4096];
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t h = 0; h < n_head; h++) {
            int64_t hk = h / (n_head / n_kv_head);
            int64_t nk = pos0 + t + 1 < n_kv ? pos0 + t + 1 : n_kv;
            double mx = -HUGE_VAL, sum = 0;
            double *o = dst + (t * n_head + h) * hd;
            for (int64_t j = 0; j < nk; j++) {
                double d = 0;
                for (int64_t i = 0; i < hd; i++)
                    d += (double)q[(t * n_head + h) * hd + i] * (double)k[(j * n_kv_head + hk) * hd + i];
                s[j] = d * scale;
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 0; j < nk; j++) {
                s[j] = exp(s[j] - mx);
                sum += s[j];
            }
            for (int64_t i = 0; i < hd; i++) {
                double acc = 0;
                for (int64_t j = 0; j < nk; j++)
                    acc += s[j] * (double)v[(j * n_kv_head + hk) * hd + i];
                o[i] = nk > 0 ? acc / sum : 0;
            }
        }
}

static inline double ref_silu(double x) { return x / (1.0 + exp(-x)); }

static inline double ref_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

#endif

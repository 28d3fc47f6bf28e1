/*
 * roofline.c - the ceilings of this machine for the benchmark report:
 *   - read bandwidth (STREAM-like: threads sum disjoint parts of a buffer of a given size, the
 *     size of the model's weights by default, so that a model that fits in the last-level cache
 *     gets the cache's bandwidth as its ceiling);
 *   - fp32 FMA, int8 dot (VPDPBUSD) and bf16 dot (VDPBF16PS) peaks with independent register
 *     chains on every thread.
 * usage: loom-roofline [--threads N] [--bytes SIZE[k|m|g]] [--seconds S]
 * Prints a human summary and one "roofline key=value ..." line for scripts.
 */
#define _GNU_SOURCE
#include "cpu_opt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct probe {
    int kind; /* 0 bandwidth, 1 fma, 2 vnni, 3 bf16 */
    int ith, nth;
    const uint8_t *buf;
    size_t bytes;
    long iters;
    pthread_barrier_t *bar;
    double t0, t1;
    double sink;
} probe;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double read_avx512(const uint8_t *p, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps((const float *)(const void *)(p + i)));
        a1 = _mm512_add_ps(a1, _mm512_load_ps((const float *)(const void *)(p + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_load_ps((const float *)(const void *)(p + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_load_ps((const float *)(const void *)(p + i + 192)));
    }
    return (double)_mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
__attribute__((target("avx2"))) static double read_avx2(const uint8_t *p, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps((const float *)(const void *)(p + i)));
        a1 = _mm256_add_ps(a1, _mm256_load_ps((const float *)(const void *)(p + i + 32)));
        a2 = _mm256_add_ps(a2, _mm256_load_ps((const float *)(const void *)(p + i + 64)));
        a3 = _mm256_add_ps(a3, _mm256_load_ps((const float *)(const void *)(p + i + 96)));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    return (double)(t[0] + t[7]);
}
#define NACC 16
__attribute__((target("avx512f,fma"))) static double fma_avx512(long iters) {
    __m512 acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-4f);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < NACC; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < NACC; i++) s = _mm512_add_ps(s, acc[i]);
    return (double)_mm512_reduce_add_ps(s);
}
__attribute__((target("avx512f,avx512vnni"))) static double vnni_avx512(long iters) {
    __m512i acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = _mm512_set1_epi32(i);
    __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < NACC; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    }
    __m512i s = acc[0];
    for (int i = 1; i < NACC; i++) s = _mm512_add_epi32(s, acc[i]);
    return (double)_mm512_reduce_add_epi32(s);
}
__attribute__((target("avx512f,avx512bf16"))) static double bf16_avx512(long iters) {
    __m512 acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = _mm512_setzero_ps();
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3a83);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < NACC; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < NACC; i++) s = _mm512_add_ps(s, acc[i]);
    return (double)_mm512_reduce_add_ps(s);
}
#endif

static void *probe_main(void *arg) {
    probe *p = arg;
    const co_isa_info *in = co_isa_detect();
    pthread_barrier_wait(p->bar);
    p->t0 = co_now();
    double s = 0;
#if defined(__x86_64__)
    if (p->kind == 0) {
        size_t part = (p->bytes / (size_t)p->nth) & ~(size_t)255;
        const uint8_t *b = p->buf + part * (size_t)p->ith;
        for (long it = 0; it < p->iters; it++) s += in->os_zmm && in->avx512f ? read_avx512(b, part) : read_avx2(b, part);
    } else if (p->kind == 1) {
        s = fma_avx512(p->iters);
    } else if (p->kind == 2) {
        s = vnni_avx512(p->iters);
    } else if (p->kind == 3) {
        s = bf16_avx512(p->iters);
    }
#else
    (void)in;
#endif
    p->t1 = co_now();
    p->sink = s;
    return NULL;
}

/* Run `kind` on nth threads; returns the wall time of the slowest thread. */
static double run(int kind, int nth, const uint8_t *buf, size_t bytes, long iters) {
    pthread_t th[CO_MAX_THREADS];
    probe pr[CO_MAX_THREADS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nth);
    for (int i = 0; i < nth; i++) {
        pr[i] = (probe){kind, i, nth, buf, bytes, iters, &bar, 0, 0, 0};
        pthread_create(&th[i], NULL, probe_main, &pr[i]);
    }
    double t0 = 1e300, t1 = 0;
    for (int i = 0; i < nth; i++) {
        pthread_join(th[i], NULL);
        if (pr[i].t0 < t0) t0 = pr[i].t0;
        if (pr[i].t1 > t1) t1 = pr[i].t1;
    }
    pthread_barrier_destroy(&bar);
    return t1 - t0;
}

static size_t parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K') v *= 1024;
    if (*end == 'm' || *end == 'M') v *= 1024 * 1024;
    if (*end == 'g' || *end == 'G') v *= 1024.0 * 1024 * 1024;
    return (size_t)v;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int nth = 2;
    size_t bytes = 512u << 20;
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) nth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc) bytes = parse_size(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--bytes SIZE[k|m|g]] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    if (nth < 1 || nth > CO_MAX_THREADS) nth = 2;
    const co_isa_info *in = co_isa_detect();
    printf("cpu: %s\n", in->summary);
#if !defined(__x86_64__)
    printf("roofline probes need x86-64\n");
    return 0;
#else
    if (!in->os_ymm || !in->avx2) {
        printf("roofline probes need AVX2\n");
        return 0;
    }
    bytes = (bytes + 4095) & ~(size_t)4095;
    uint8_t *buf = aligned_alloc(4096, bytes);
    if (!buf) {
        fprintf(stderr, "cannot allocate %zu bytes\n", bytes);
        return 1;
    }
    for (size_t i = 0; i < bytes; i += 4) {
        float f = (float)(i & 1023) * 1e-3f;
        memcpy(buf + i, &f, 4);
    }
    /* Bandwidth: passes for ~seconds/2, median and best of single passes. */
    long passes = 1;
    double t = run(0, nth, buf, bytes, 1);
    int n_samples = (int)(seconds * 0.5 / (t > 1e-4 ? t : 1e-4));
    if (n_samples < 5) n_samples = 5;
    if (n_samples > 400) {
        passes = n_samples / 400 + 1;
        n_samples = 400;
    }
    double *bw = malloc(sizeof(double) * (size_t)n_samples);
    for (int i = 0; i < n_samples; i++) bw[i] = (double)bytes * (double)passes / run(0, nth, buf, bytes, passes) / 1e9;
    qsort(bw, (size_t)n_samples, sizeof(double), cmp_d);
    double bw_med = bw[n_samples / 2], bw_best = bw[n_samples - 1];
    printf("read bandwidth (%d threads, %.1f MiB working set): median %.1f GB/s, best %.1f GB/s\n", nth,
           (double)bytes / 1048576.0, bw_med, bw_best);
    free(bw);
    free(buf);
    double fma = 0, vnni = 0, bf16 = 0;
    if (in->os_zmm && in->avx512f) {
        long it = 2000000;
        double s = run(1, nth, NULL, 0, it);
        it = (long)((double)it * seconds / 6.0 / s) + 1;
        fma = (double)it * NACC * 16 * 2 * nth / run(1, nth, NULL, 0, it) / 1e9;
        if (in->avx512vnni) vnni = (double)it * NACC * 64 * 2 * nth / run(2, nth, NULL, 0, it) / 1e9;
        if (in->avx512bf16) bf16 = (double)it * NACC * 32 * 2 * nth / run(3, nth, NULL, 0, it) / 1e9;
        printf("fp32 FMA: %.0f GFLOP/s; int8 VNNI: %.0f GOP/s; bf16 dot: %.0f GFLOP/s (%d threads)\n", fma, vnni, bf16,
               nth);
    }
    printf("roofline threads=%d bytes=%zu bw_median_gbs=%.2f bw_best_gbs=%.2f fma_gflops=%.1f vnni_gops=%.1f "
           "bf16_gflops=%.1f\n",
           nth, bytes, bw_med, bw_best, fma, vnni, bf16);
    return 0;
#endif
}

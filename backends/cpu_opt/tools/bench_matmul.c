/*
 * bench_matmul.c - matmul throughput of a backend plugin through its ABI table, against the
 * machine's read bandwidth measured the same way in the same run (alternating).
 *
 *   loom-bench-matmul PLUGIN.so [--type q4_0] [--k 2048] [--n 5632] [--m 1] [--mats 64]
 *                     [--threads 2] [--seconds 3] [-o plugin.cpu_opt.KEY=VALUE]...
 *
 * `mats` distinct weight matrices [n, k] are prepared and multiplied in turn, so the weights
 * stream from memory (or the last-level cache) as in a real forward pass. Decode (m = 1) is
 * reported in GB/s of weights read and as a share of a plain read of as many bytes; prefill
 * (m > 1) in GFLOP/s.
 */
#define _GNU_SOURCE
#include "cpu_opt.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static void quiet_log(int32_t level, const char *who, const char *fmt, ...) {
    (void)level;
    (void)who;
    (void)fmt;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

/* Plain streaming read of the same bytes with `nth` threads: the bandwidth ceiling. */
typedef struct rd_arg {
    const uint8_t *const *bufs;
    int n;
    size_t bytes;
    int ith, nth;
    double sink;
} rd_arg;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double read_part(const uint8_t *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a = _mm512_add_epi64(a, _mm512_loadu_si512((const void *)(p + i)));
        b = _mm512_add_epi64(b, _mm512_loadu_si512((const void *)(p + i + 64)));
        c = _mm512_add_epi64(c, _mm512_loadu_si512((const void *)(p + i + 128)));
        d = _mm512_add_epi64(d, _mm512_loadu_si512((const void *)(p + i + 192)));
    }
    return (double)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
}
#else
static double read_part(const uint8_t *p, size_t n) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i += 64) s += p[i];
    return (double)s;
}
#endif

static void *rd_main(void *p) {
    rd_arg *a = p;
    double s = 0;
    for (int m = 0; m < a->n; m++) {
        size_t part = a->bytes / (size_t)a->nth;
        s += read_part(a->bufs[m] + part * (size_t)a->ith, part);
    }
    a->sink = s;
    return NULL;
}

static double read_all(const uint8_t *const *bufs, int n, size_t bytes, int nth) {
    pthread_t th[CO_MAX_THREADS];
    rd_arg args[CO_MAX_THREADS];
    double t0 = co_now();
    for (int i = 0; i < nth; i++) {
        args[i] = (rd_arg){bufs, n, bytes, i, nth, 0};
        pthread_create(&th[i], NULL, rd_main, &args[i]);
    }
    for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    return co_now() - t0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PLUGIN.so [--type T] [--k K] [--n N] [--m M] [--mats L] [--threads T] [--seconds S]\n",
                argv[0]);
        return 2;
    }
    const char *type_name = "q4_0";
    int64_t K = 2048, N = 5632, M = 1;
    int mats = 64, threads = 2;
    double seconds = 3;
    const char *okeys[16], *ovals[16];
    char obuf[16][128];
    uint32_t nopt = 0;
    char thr[16];
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) return 2;
        if (!strcmp(argv[i], "--type")) type_name = argv[++i];
        else if (!strcmp(argv[i], "--k")) K = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--n")) N = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--m")) M = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--mats")) mats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "-o") && nopt < 15) {
            snprintf(obuf[nopt], sizeof obuf[nopt], "%s", argv[++i]);
            char *eq = strchr(obuf[nopt], '=');
            if (!eq) return 2;
            *eq = 0;
            okeys[nopt] = obuf[nopt];
            ovals[nopt] = eq + 1;
            nopt++;
        } else return 2;
    }
    static const struct {
        const char *n;
        uint32_t t;
    } types[] = {{"f32", LOOM_TYPE_F32}, {"f16", LOOM_TYPE_F16}, {"bf16", LOOM_TYPE_BF16},
                 {"q8_0", LOOM_TYPE_Q8_0}, {"q4_0", LOOM_TYPE_Q4_0}, {"q4_1", LOOM_TYPE_Q4_1}};
    uint32_t type = UINT32_MAX;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].n, type_name)) type = types[i].t;
    if (type == UINT32_MAX || mats < 1 || threads < 1 || threads > CO_MAX_THREADS) return 2;

    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    loom_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, LOOM_PLUGIN_ENTRY_SYMBOL);
    static loom_host_api host;
    host.struct_size = sizeof host;
    host.abi_version = LOOM_ABI_VERSION;
    host.log = quiet_log;
    host.alloc = malloc;
    host.free = free;
    const loom_plugin_desc *d = entry ? entry(LOOM_ABI_VERSION, &host) : NULL;
    void *state = NULL;
    char reason[256];
    if (!d || d->kind != LOOM_PLUGIN_KIND_BACKEND || d->init(&host, &state, reason, sizeof reason) != LOOM_OK) return 1;
    const loom_backend_api *B = d->api;
    snprintf(thr, sizeof thr, "%d", threads);
    okeys[nopt] = "threads";
    ovals[nopt] = thr;
    nopt++;
    loom_kv_list opts = {sizeof opts, nopt, okeys, ovals};
    void *dev = NULL;
    if (B->device_open(state, 0, &opts, &dev) != LOOM_OK) return 1;

    /* weights */
    size_t rb = (size_t)co_type_row_bytes(type, K), wbytes = rb * (size_t)N;
    uint8_t **w = calloc((size_t)mats, sizeof *w);
    loom_tensor_view *wv = calloc((size_t)mats, sizeof *wv);
    float *row = malloc(sizeof(float) * (size_t)K);
    /* One region in 2 MiB pages, like the backend's repacked weights, so the plain read and the
     * matmul see the same TLB behaviour. */
    size_t wstride = (wbytes + 4095) & ~(size_t)4095;
    size_t region = ((wstride * (size_t)mats) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    uint8_t *all = aligned_alloc(2u << 20, region);
    if (!all) return 1;
#ifdef MADV_HUGEPAGE
    madvise(all, region, MADV_HUGEPAGE);
#endif
    for (int m = 0; m < mats; m++) {
        w[m] = all + wstride * (size_t)m;
        for (int64_t r = 0; r < N; r++) {
            for (int64_t k = 0; k < K; k++) row[k] = frand();
            co_quant_row(type, row, w[m] + (size_t)r * rb, K);
        }
        loom_tensor_view *v = &wv[m];
        v->struct_size = sizeof *v;
        v->type = type;
        v->ne[0] = K;
        v->ne[1] = N;
        v->ne[2] = v->ne[3] = 1;
        v->nb[0] = (int64_t)co_type_block_bytes(type);
        v->nb[1] = (int64_t)rb;
        v->nb[2] = v->nb[3] = (int64_t)wbytes;
        v->data = w[m];
        v->flags = LOOM_TENSOR_WEIGHT;
        if (B->weight_prepare) B->weight_prepare(dev, v, &v->extra);
    }
    float *x = aligned_alloc(64, sizeof(float) * (size_t)(K * M)), *y = aligned_alloc(64, sizeof(float) * (size_t)(N * M));
    for (int64_t i = 0; i < K * M; i++) x[i] = frand();
    loom_tensor_view xv = {sizeof xv, LOOM_TYPE_F32, {K, M, 1, 1}, {4, 4 * K, 4 * K * M, 4 * K * M}, x, NULL, 0, NULL, 0, 0};
    loom_tensor_view yv = {sizeof yv, LOOM_TYPE_F32, {N, M, 1, 1}, {4, 4 * N, 4 * N * M, 4 * N * M}, y, NULL, 0, NULL, 0, 0};
    loom_op_params p = {sizeof p, LOOM_OP_MATMUL, {0}, {0}};
    /* warm-up (tuning, first touch) */
    for (int m = 0; m < mats; m++) {
        const loom_tensor_view *src[2] = {&xv, &wv[m]};
        if (B->compute(dev, &p, &yv, src, 2) != LOOM_OK) {
            fprintf(stderr, "compute failed: %s\n", B->last_error ? B->last_error(dev) : "");
            return 1;
        }
    }
    /* alternate: one sweep of matmuls, one plain read of the same bytes */
    double best_mm = 1e30, best_rd = 1e30, sum_mm = 0, sum_rd = 0;
    int rounds = 0;
    double t_start = co_now();
    while (rounds < 3 || co_now() - t_start < seconds) {
        double t0 = co_now();
        for (int m = 0; m < mats; m++) {
            const loom_tensor_view *src[2] = {&xv, &wv[m]};
            B->compute(dev, &p, &yv, src, 2);
        }
        double tm = co_now() - t0;
        double tr = read_all((const uint8_t *const *)w, mats, wbytes, threads);
        if (tm < best_mm) best_mm = tm;
        if (tr < best_rd) best_rd = tr;
        sum_mm += tm;
        sum_rd += tr;
        rounds++;
    }
    double bytes = (double)wbytes * mats, flops = 2.0 * (double)K * (double)N * (double)M * mats;
    printf("%s k=%lld n=%lld m=%lld x%d (%.1f MiB of weights), %d threads, %d rounds\n", type_name, (long long)K,
           (long long)N, (long long)M, mats, bytes / 1048576.0, threads, rounds);
    printf("  matmul: %.2f GB/s of weights, %.1f GFLOP/s (best %.2f GB/s, %.1f GFLOP/s)\n", bytes * rounds / sum_mm / 1e9,
           flops * rounds / sum_mm / 1e9, bytes / best_mm / 1e9, flops / best_mm / 1e9);
    printf("  plain read of the same bytes: %.2f GB/s (best %.2f)\n", bytes * rounds / sum_rd / 1e9, bytes / best_rd / 1e9);
    printf("  matmul / read: %.0f%% (mean), %.0f%% (best)\n", 100.0 * sum_rd / sum_mm, 100.0 * best_rd / best_mm);
    for (int m = 0; m < mats; m++) {
        if (wv[m].extra && B->weight_release) B->weight_release(dev, wv[m].extra);
    }
    free(all);
    free(w);
    free(wv);
    free(row);
    free(x);
    free(y);
    B->device_close(dev);
    if (d->shutdown) d->shutdown(state);
    dlclose(h);
    return 0;
}

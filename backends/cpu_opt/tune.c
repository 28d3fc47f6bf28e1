/*
 * tune.c - choose the matmul kernel variant (ISA level, tiles per call, tokens per call) of each
 * weight family by a short measurement on synthetic data at first use, and cache the choice per
 * machine in $XDG_CACHE_HOME/loom/cpu_opt-tune.txt (or ~/.cache/loom/...). ISA flags alone are
 * not trusted: on some CPUs (double-pumped AVX-512, throttling) a narrower variant wins.
 */
#include "cpu_opt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bump when kernels change so that old cached choices are measured again. */
#define CO_TUNE_VERSION 2

static const char *fam_name[CO_FAM_COUNT] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"};
static const uint32_t fam_type[CO_FAM_COUNT] = {LOOM_TYPE_F32,  LOOM_TYPE_F16,  LOOM_TYPE_BF16,
                                                 LOOM_TYPE_Q8_0, LOOM_TYPE_Q4_0, LOOM_TYPE_Q4_1};

double co_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void co_mm_defaults(int isa, int fam, co_mm_params *out) {
    int quant = fam >= CO_FAM_Q8_0;
    out->gemv_isa = isa;
    out->gemm_isa = isa;
    switch (isa) {
    case CO_ISA_AVX512:
        out->gemv_nt = 2;
        out->gemm_nt = quant ? 1 : 2;
        out->gemm_t = quant ? 8 : 12;
        break;
    case CO_ISA_AVX2:
        out->gemv_nt = 1;
        out->gemm_nt = 1;
        out->gemm_t = quant ? 4 : 6;
        break;
    default:
        out->gemv_nt = 1;
        out->gemm_nt = 1;
        out->gemm_t = 4;
        break;
    }
}

static int cache_path(char *buf, size_t size) {
    const char *x = getenv("XDG_CACHE_HOME");
    if (x && *x) {
        snprintf(buf, size, "%s/loom", x);
    } else {
        const char *h = getenv("HOME");
        if (!h || !*h) return 0;
        snprintf(buf, size, "%s/.cache/loom", h);
    }
    return 1;
}

static void cache_key(const co_device *dev, int fam, char *buf, size_t size) {
    const co_isa_info *in = co_isa_detect();
    char name[64];
    size_t n = 0;
    for (const char *p = in->cpu_name; *p && n + 1 < sizeof name; p++) name[n++] = (*p == ' ') ? '_' : *p;
    name[n] = 0;
    snprintf(buf, size, "v%d|%s|maxisa=%s|%s", CO_TUNE_VERSION, name, co_isa_name(dev->isa), fam_name[fam]);
}

static int cache_lookup(const co_device *dev, int fam, co_mm_params *out) {
    char dir[512], path[600], key[160], line[512];
    if (!cache_path(dir, sizeof dir)) return 0;
    snprintf(path, sizeof path, "%s/cpu_opt-tune.txt", dir);
    cache_key(dev, fam, key, sizeof key);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char k[200];
        int isa, isa2, a, b, c;
        if (sscanf(line, "%199s %d %d %d %d %d", k, &isa, &isa2, &a, &b, &c) == 6 && !strcmp(k, key) &&
            isa >= 0 && isa <= dev->isa && isa2 >= 0 && isa2 <= dev->isa && a >= 1 && a <= 64 && b >= 1 &&
            b <= 8 && c >= 1 && c <= CO_MAX_T) {
            out->gemv_isa = isa;
            out->gemm_isa = isa2;
            out->gemv_nt = a;
            out->gemm_nt = b;
            out->gemm_t = c;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static void cache_store(const co_device *dev, int fam, const co_mm_params *p) {
    char dir[512], path[600], tmp[640], key[160], line[512];
    if (!cache_path(dir, sizeof dir)) return;
    /* mkdir -p of the last two levels (…/.cache/loom). */
    char parent[512];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        mkdir(parent, 0755);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return;
    snprintf(path, sizeof path, "%s/cpu_opt-tune.txt", dir);
    snprintf(tmp, sizeof tmp, "%s/cpu_opt-tune.txt.%ld.%p", dir, (long)getpid(), (const void *)dev);
    cache_key(dev, fam, key, sizeof key);
    FILE *out = fopen(tmp, "w");
    if (!out) return;
    FILE *in = fopen(path, "r");
    if (in) {
        while (fgets(line, sizeof line, in)) {
            char k[200];
            if (sscanf(line, "%199s", k) == 1 && !strcmp(k, key)) continue;
            char ver[16];
            snprintf(ver, sizeof ver, "v%d|", CO_TUNE_VERSION);
            if (strncmp(line, ver, strlen(ver)) != 0) continue; /* choices of older kernels */
            fputs(line, out);
        }
        fclose(in);
    }
    fprintf(out, "%s %d %d %d %d %d\n", key, p->gemv_isa, p->gemm_isa, p->gemv_nt, p->gemm_nt, p->gemm_t);
    if (fclose(out) == 0) rename(tmp, path);
    else remove(tmp);
}

/* ---- measurement ---- */

typedef struct bench_data {
    uint32_t type;
    int64_t K, N, M;
    size_t tb;
    uint8_t *tiles;
    uint8_t *act; /* quantized rows or packed floats */
    size_t act_row;
    float *dst;
} bench_data;

static uint32_t rng_next(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s;
}

static int bench_init(bench_data *b, uint32_t type, int64_t K, int64_t N, int64_t M, const co_kernels *kern) {
    memset(b, 0, sizeof *b);
    b->type = type;
    b->K = K;
    b->N = N;
    b->M = M;
    b->tb = co_tile_bytes(type, K);
    int64_t n_tiles = N / CO_TILE;
    size_t rb = (size_t)co_type_row_bytes(type, K);
    uint8_t *rows = malloc(rb * CO_TILE);
    float *x = malloc((size_t)K * sizeof(float));
    b->tiles = aligned_alloc(64, b->tb * (size_t)n_tiles);
    int quant = type == LOOM_TYPE_Q8_0 || type == LOOM_TYPE_Q4_0 || type == LOOM_TYPE_Q4_1;
    b->act_row = quant ? co_qact_row_bytes(K) : (size_t)K * sizeof(float);
    b->act = aligned_alloc(64, (b->act_row * (size_t)M + 63) & ~(size_t)63);
    b->dst = aligned_alloc(64, ((size_t)M * (size_t)N * sizeof(float) + 63) & ~(size_t)63);
    if (!rows || !x || !b->tiles || !b->act || !b->dst) {
        free(rows);
        free(x);
        return 0;
    }
    uint32_t s = 12345;
    for (int64_t t = 0; t < n_tiles; t++) {
        for (int r = 0; r < CO_TILE; r++) {
            for (int64_t k = 0; k < K; k++) x[k] = (float)(int32_t)(rng_next(&s) >> 16) / 32768.0f - 1.0f;
            co_quant_row(type, x, rows + (size_t)r * rb, K);
        }
        co_tile_pack(type, rows, (int64_t)rb, CO_TILE, K, b->tiles + (size_t)t * b->tb);
    }
    for (int64_t m = 0; m < M; m++) {
        for (int64_t k = 0; k < K; k++) x[k] = (float)(int32_t)(rng_next(&s) >> 16) / 32768.0f - 1.0f;
        if (quant) kern->quant_act(x, b->act + (size_t)m * b->act_row, K);
        else memcpy(b->act + (size_t)m * b->act_row, x, (size_t)K * sizeof(float));
    }
    free(rows);
    free(x);
    return 1;
}

static void bench_free(bench_data *b) {
    free(b->tiles);
    free(b->act);
    free(b->dst);
}

/* One pass over all tiles with (nt, T); returns seconds. Single thread. */
static double bench_pass(const bench_data *b, const co_kernels *kern, int nt, int T) {
    int quant = b->type == LOOM_TYPE_Q8_0 || b->type == LOOM_TYPE_Q4_0 || b->type == LOOM_TYPE_Q4_1;
    int64_t n_tiles = b->N / CO_TILE;
    double t0 = co_now();
    for (int64_t i = 0; i < n_tiles; i += nt) {
        int g = (int)(n_tiles - i < nt ? n_tiles - i : nt);
        for (int64_t m0 = 0; m0 < b->M; m0 += T) {
            int tc = (int)(b->M - m0 < T ? b->M - m0 : T);
            float *d = b->dst + m0 * b->N + i * CO_TILE;
            if (quant)
                kern->qgemm(b->type, b->tiles + (size_t)i * b->tb, b->tb, g, b->K, b->act + (size_t)m0 * b->act_row,
                            b->act_row, tc, d, b->N, CO_TILE);
            else /* the packing layout does not matter for timing */
                kern->fgemm(b->type, b->tiles + (size_t)i * b->tb, b->tb, g, b->K,
                            (const float *)(const void *)b->act + m0 * b->K, tc, d, b->N, CO_TILE);
        }
    }
    return co_now() - t0;
}

/* A candidate variant: ISA, tiles per call, tokens per call. */
typedef struct cand {
    int isa, nt, T;
    double best;
} cand;

/* Time every candidate round-robin (so that load changes on a shared machine hit all of them
 * alike) and keep each one's fastest pass. */
static void race(const bench_data *const *data, const co_device *dev, cand *c, int nc, double budget) {
    double spent = 0;
    for (int i = 0; i < nc; i++) c[i].best = 1e30;
    for (int round = 0; round < 40 && (round < 4 || spent < budget); round++) {
        for (int i = 0; i < nc; i++) {
            double s = bench_pass(data[c[i].isa], &dev->kern[c[i].isa], c[i].nt, c[i].T);
            if (s < c[i].best) c[i].best = s;
            spent += s;
        }
    }
}

static void measure(co_device *dev, int fam, co_mm_params *out) {
    uint32_t type = fam_type[fam];
    int quant = fam >= CO_FAM_Q8_0;
    co_mm_defaults(dev->isa, fam, out);
    const int64_t Kv = 2048, Nv = quant ? 2048 : 512;
    bench_data bv[CO_ISA_COUNT], bm[CO_ISA_COUNT];
    const bench_data *pv[CO_ISA_COUNT] = {NULL}, *pm[CO_ISA_COUNT] = {NULL};
    int ok_v[CO_ISA_COUNT] = {0}, ok_m[CO_ISA_COUNT] = {0};
    cand cv[16], cm[32];
    int nv = 0, nm = 0;
    for (int isa = dev->isa; isa >= 0; isa--) {
        if (isa == CO_ISA_SCALAR && dev->isa != CO_ISA_SCALAR) break; /* scalar never wins */
        const co_kernels *kern = &dev->kern[isa];
        ok_v[isa] = bench_init(&bv[isa], type, Kv, Nv, 1, kern);
        ok_m[isa] = bench_init(&bm[isa], type, 1024, 128, 48, kern);
        pv[isa] = &bv[isa];
        pm[isa] = &bm[isa];
        if (ok_v[isa]) {
            static const int nts[] = {1, 2, 4};
            for (int i = 0; i < 3; i++) {
                if (isa != CO_ISA_AVX512 && nts[i] > 1) break;
                cv[nv++] = (cand){isa, nts[i], 1, 0};
            }
        }
        if (ok_m[isa]) {
            static const int cq[][2] = {{1, 4}, {1, 8}, {1, 12}, {2, 4}, {2, 6}, {2, 8}};
            static const int cf[][2] = {{1, 8}, {1, 16}, {2, 8}, {2, 12}, {4, 4}, {4, 6}};
            static const int c2[][2] = {{1, 4}, {1, 6}};
            const int(*cc)[2] = isa == CO_ISA_AVX512 ? (quant ? cq : cf) : c2;
            int n = isa == CO_ISA_AVX512 ? 6 : 2;
            for (int i = 0; i < n; i++) cm[nm++] = (cand){isa, cc[i][0], cc[i][1], 0};
        }
    }
    race(pv, dev, cv, nv, 0.03);
    race(pm, dev, cm, nm, 0.03);
    double best_v = 1e30, best_m = 1e30;
    for (int i = 0; i < nv; i++)
        if (cv[i].best < best_v) {
            best_v = cv[i].best;
            out->gemv_isa = cv[i].isa;
            out->gemv_nt = cv[i].nt;
        }
    for (int i = 0; i < nm; i++)
        if (cm[i].best < best_m) {
            best_m = cm[i].best;
            out->gemm_isa = cm[i].isa;
            out->gemm_nt = cm[i].nt;
            out->gemm_t = cm[i].T;
        }
    for (int isa = 0; isa < CO_ISA_COUNT; isa++) {
        if (ok_v[isa]) bench_free(&bv[isa]);
        if (ok_m[isa]) bench_free(&bm[isa]);
    }
    double gbs = best_v < 1e29 ? (double)co_tile_bytes(type, Kv) * (double)(Nv / CO_TILE) / best_v / 1e9 : 0.0;
    double gflops = best_m < 1e29 ? 2.0 * 1024.0 * 128.0 * 48.0 / best_m / 1e9 : 0.0;
    dev->host->log(LOOM_LOG_INFO, CO_NAME,
                   "tuned %s: decode %s x%d tiles (%.1f GB/s), prefill %s %d tiles x %d tokens (%.1f GFLOP/s)",
                   fam_name[fam], co_isa_name(out->gemv_isa), out->gemv_nt, gbs, co_isa_name(out->gemm_isa),
                   out->gemm_nt, out->gemm_t, gflops);
}

void co_tune_family(co_device *dev, int fam) {
    if (fam < 0 || fam >= CO_FAM_COUNT || dev->mm_tuned[fam]) return;
    dev->mm_tuned[fam] = 1;
    co_mm_defaults(dev->isa, fam, &dev->mm[fam]);
    if (dev->tune_mode == 0) return;
    if (dev->tune_mode == 1 && cache_lookup(dev, fam, &dev->mm[fam])) return;
    measure(dev, fam, &dev->mm[fam]);
    cache_store(dev, fam, &dev->mm[fam]);
}

/*
 * model_common.c - helpers of the model oracle tests.
 */
#define _POSIX_C_SOURCE 200809L
#include "model_common.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *cache_dir(void) {
    static char buf[1024];
    const char *d = getenv("LOOM_CACHE_DIR");
    if (d && *d) return d;
    const char *home = getenv("HOME");
    snprintf(buf, sizeof buf, "%s/.cache/loom", home ? home : ".");
    return buf;
}

static const char *variants_dir(void) {
    static char buf[1100];
    const char *d = getenv("LOOM_TEST_VARIANTS");
    if (d && *d) return d;
    snprintf(buf, sizeof buf, "%s/variants", cache_dir());
    return buf;
}

const char *test_model_path(const char *variant) {
    static char path[1200];
    struct stat st;
    if (!strcmp(variant, "q4_1")) {
        const char *env = getenv("LOOM_TEST_MODEL");
        if (env && *env) return stat(env, &st) == 0 ? env : NULL;
        snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", cache_dir());
    } else if (!strcmp(variant, "hf")) {
        snprintf(path, sizeof path, "%s/hf", variants_dir());
        char probe[1300];
        snprintf(probe, sizeof probe, "%s/model.safetensors", path);
        return stat(probe, &st) == 0 ? path : NULL;
    } else {
        snprintf(path, sizeof path, "%s/%s.gguf", variants_dir(), variant);
    }
    return stat(path, &st) == 0 ? path : NULL;
}

loom_engine *test_engine(void) {
    loom_options *o = NULL;
    loom_engine *e = NULL;
    char err[1024] = "";
    const char *threads = getenv("LOOM_TEST_THREADS");
    if (loom_options_create(&o) != LOOM_OK) abort();
    loom_options_set(o, "threads", threads && *threads ? threads : "2", LOOM_SOURCE_CLI);
    /* The oracle tests check the architecture and the engine: by default on the CPU reference
     * backend (exact float arithmetic), whatever the engine's default backend is. */
    const char *backend = getenv("LOOM_TEST_BACKEND");
    loom_options_set(o, "backend", backend && *backend ? backend : "cpu", LOOM_SOURCE_CLI);
    loom_options_set(o, "log_level", "warn", LOOM_SOURCE_CLI);
    if (loom_engine_create(o, &e, err, sizeof err) != LOOM_OK) {
        fprintf(stderr, "engine: %s\n", err);
        abort();
    }
    loom_options_free(o);
    return e;
}

static const char *fixture_name(const char *variant) { return !strcmp(variant, "hf") ? "f32" : variant; }

json_object *test_fixture(const char *variant) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", LOOM_MODEL_FIXTURES, fixture_name(variant));
    return json_object_from_file(path);
}

void *test_fixture_logits(const char *variant, unsigned *k, unsigned *n_pos) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.logits.bin", LOOM_MODEL_FIXTURES, fixture_name(variant));
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint32_t head[4];
    void *buf = NULL;
    if (fread(head, sizeof head, 1, f) == 1 && !memcmp(head, "LMLG", 4) && head[1] == 1) {
        size_t size = (size_t)head[2] * 8u * head[3];
        buf = malloc(size ? size : 1);
        if (buf && fread(buf, 1, size, f) != size) {
            free(buf);
            buf = NULL;
        }
        *k = head[2];
        *n_pos = head[3];
    }
    fclose(f);
    return buf;
}

int *test_json_tokens(json_object *arr, size_t *n) {
    *n = json_object_array_length(arr);
    int *t = malloc((*n ? *n : 1) * sizeof *t);
    for (size_t i = 0; t && i < *n; i++)
        t[i] = json_object_get_int(json_object_array_get_idx(arr, i));
    return t;
}

double test_kl_top(const int *ids, const float *ref_logp, unsigned k, const float *logits, long n_vocab, int *top1) {
    double max = logits[0];
    long best = 0;
    for (long i = 1; i < n_vocab; i++) {
        if ((double)logits[i] > max) {
            max = logits[i];
            best = i;
        }
    }
    double sum = 0.0;
    for (long i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - max);
    const double lse = max + log(sum);
    double kl = 0.0, p_top = 0.0, q_top = 0.0;
    for (unsigned j = 0; j < k; j++) {
        const double lp = ref_logp[j], lq = (double)logits[ids[j]] - lse;
        kl += exp(lp) * (lp - lq);
        p_top += exp(lp);
        q_top += exp(lq);
    }
    double p_rest = 1.0 - p_top, q_rest = 1.0 - q_top;
    if (p_rest < 1e-12) p_rest = 1e-12;
    if (q_rest < 1e-12) q_rest = 1e-12;
    kl += p_rest * log(p_rest / q_rest);
    *top1 = best == ids[0];
    return kl;
}

/* ---- SHA-256 (FIPS 180-4), enough for the weights digest ---- */

typedef struct sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} sha256;

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(sha256 *s, const uint8_t *p) {
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        const uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        const uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof v);
    for (int i = 0; i < 64; i++) {
        const uint32_t t1 = v[7] + (ror32(v[4], 6) ^ ror32(v[4], 11) ^ ror32(v[4], 25)) +
                            ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha256_k[i] + w[i];
        const uint32_t t2 =
            (ror32(v[0], 2) ^ ror32(v[0], 13) ^ ror32(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        s->h[i] += v[i];
}

static void sha256_init(sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->bytes = 0;
    s->fill = 0;
}

static void sha256_update(sha256 *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->bytes += n;
    while (n) {
        size_t take = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->block + s->fill, p, take);
        s->fill += take;
        p += take;
        n -= take;
        if (s->fill == 64) {
            sha256_block(s, s->block);
            s->fill = 0;
        }
    }
}

static void sha256_final(sha256 *s, char hex[65]) {
    const uint64_t bits = s->bytes * 8;
    uint8_t pad[72] = {0x80}, len[8];
    const size_t n_pad = (s->fill < 56 ? 56 : 120) - s->fill;
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(s, pad, n_pad);
    sha256_update(s, len, 8);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", (unsigned)s->h[i]);
}

static void put_le(sha256 *s, uint64_t v, int bytes) {
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    sha256_update(s, b, (size_t)bytes);
}

static const loom_model *g_sort_model;

static int by_name(const void *a, const void *b) {
    loom_tensor_desc da = {.struct_size = sizeof da}, db = {.struct_size = sizeof db};
    loom_model_tensor_at(g_sort_model, *(const uint32_t *)a, &da);
    loom_model_tensor_at(g_sort_model, *(const uint32_t *)b, &db);
    return strcmp(da.name, db.name);
}

int test_weights_sha256(const loom_model *model, const char *path, char hex[65]) {
    char file[1400];
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    snprintf(file, sizeof file, S_ISDIR(st.st_mode) ? "%s/model.safetensors" : "%s", path);
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(model, &info);
    FILE *f = fopen(file, "rb");
    uint32_t *order = malloc((info.n_tensors ? info.n_tensors : 1) * sizeof *order);
    uint8_t *buf = malloc(1u << 20);
    int rc = f && order && buf ? 0 : -1;
    for (uint32_t i = 0; i < info.n_tensors; i++)
        if (order) order[i] = i;
    g_sort_model = model;
    if (!rc) qsort(order, info.n_tensors, sizeof *order, by_name);
    sha256 s;
    sha256_init(&s);
    for (uint32_t i = 0; !rc && i < info.n_tensors; i++) {
        loom_tensor_desc d = {.struct_size = sizeof d};
        loom_model_tensor_at(model, order[i], &d);
        const char *type = loom_type_name(d.type);
        sha256_update(&s, d.name, strlen(d.name) + 1);
        sha256_update(&s, type, strlen(type) + 1);
        put_le(&s, d.n_dims, 4);
        for (uint32_t k = 0; k < d.n_dims; k++)
            put_le(&s, (uint64_t)d.ne[k], 8);
        put_le(&s, d.bytes, 8);
        if (fseeko(f, (off_t)d.file_offset, SEEK_SET) != 0) rc = -1;
        for (uint64_t left = d.bytes; !rc && left;) {
            const size_t take = left < (1u << 20) ? (size_t)left : (1u << 20);
            if (fread(buf, 1, take, f) != take) rc = -1;
            sha256_update(&s, buf, take);
            left -= take;
        }
    }
    if (!rc) sha256_final(&s, hex);
    if (f) fclose(f);
    free(order);
    free(buf);
    return rc;
}

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

const char *test_model_path(const char *variant) {
    static char path[1200];
    struct stat st;
    if (!strcmp(variant, "q4_1")) {
        const char *env = getenv("LOOM_TEST_MODEL");
        if (env && *env) return stat(env, &st) == 0 ? env : NULL;
        snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", cache_dir());
    } else if (!strcmp(variant, "hf")) {
        snprintf(path, sizeof path, "%s/variants/hf", cache_dir());
        char probe[1300];
        snprintf(probe, sizeof probe, "%s/model.safetensors", path);
        return stat(probe, &st) == 0 ? path : NULL;
    } else {
        snprintf(path, sizeof path, "%s/variants/%s.gguf", cache_dir(), variant);
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

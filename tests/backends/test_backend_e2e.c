/*
 * test_backend_e2e.c - a backend end to end on a real model, against the CPU reference backend,
 * through the public API only (loom.h).
 *
 *   test_backend_e2e BACKEND VARIANT CHUNKS [KEY=VALUE ...]
 *
 * BACKEND is a backend list ("opencl", "onednn", ...), VARIANT a model of the cache (q4_1: the
 * default SmolLM2-135M-Instruct Q4_1; f32 / q8_0: scripts/make_model_variants.py), CHUNKS the
 * number of 512-token chunks of WikiText-2 (fixtures/wikitext2_smollm2_tokens.txt, llama.cpp's
 * tokenization) to run; KEY=VALUE are extra options (e.g. plugin.onednn.mode=f32);
 * --ctx N uses chunks of N tokens instead of 512 (quicker; perplexity then scores positions
 * N/2 .. N-2); --expect-fallback requires the placement report to show ops run on the CPU reference with
 * bytes copied back from the device (mixed placement, e.g. with plugin.opencl.disable_ops);
 * --expect-fallback-op OP requires every OP of the report to have run on the CPU reference.
 *
 * Each chunk is evaluated from an empty context (logits of every position) on an exec of BACKEND
 * and on one of the CPU reference. Checks:
 *   - mean KL(reference || backend) over every position: < 1e-4 for F32 weights, < 1e-3 for
 *     quantized ones;
 *   - perplexity by llama.cpp's protocol (positions 256..510 of each chunk predict the next
 *     token) within 0.5% of the reference's;
 * and reports top-1 agreement, the speed of both and the backend's op placement.
 * Exits 77 (skipped) when the model or the backend is not available here.
 */
#define _POSIX_C_SOURCE 200809L
#include "loom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SKIP          77
#define CHUNK_DEFAULT 512

#ifndef LOOM_E2E_TOKENS
#error "LOOM_E2E_TOKENS must name the token fixture"
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *model_path(const char *variant) {
    static char path[1200];
    struct stat st;
    const char *dir = getenv("LOOM_CACHE_DIR"), *home = getenv("HOME");
    char cache[1024];
    if (dir != NULL && *dir)
        snprintf(cache, sizeof cache, "%s", dir);
    else
        snprintf(cache, sizeof cache, "%s/.cache/loom", home != NULL ? home : ".");
    if (strcmp(variant, "q4_1") == 0) {
        const char *env = getenv("LOOM_TEST_MODEL");
        if (env != NULL && *env) return stat(env, &st) == 0 ? env : NULL;
        snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
    } else {
        snprintf(path, sizeof path, "%s/variants/%s.gguf", cache, variant);
    }
    return stat(path, &st) == 0 ? path : NULL;
}

static int32_t *load_tokens(size_t *n) {
    FILE *f = fopen(LOOM_E2E_TOKENS, "r");
    char line[64];
    size_t cap = 4096;
    int32_t *t = malloc(cap * sizeof *t);
    *n = 0;
    if (f == NULL || t == NULL) {
        fprintf(stderr, "cannot read %s\n", LOOM_E2E_TOKENS);
        exit(1);
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '#') continue;
        if (*n == cap) {
            int32_t *g = realloc(t, 2 * cap * sizeof *t);
            if (g == NULL) exit(1);
            t = g;
            cap *= 2;
        }
        t[(*n)++] = (int32_t)atoi(line);
    }
    fclose(f);
    return t;
}

/* log-softmax normaliser: max and log(sum exp(x - max)) */
static void log_norm(const float *x, int64_t n, double *mx, double *lse) {
    double m = -HUGE_VAL, s = 0;
    for (int64_t i = 0; i < n; i++)
        if ((double)x[i] > m) m = (double)x[i];
    for (int64_t i = 0; i < n; i++)
        s += exp((double)x[i] - m);
    *mx = m;
    *lse = log(s);
}

static int64_t argmax(const float *x, int64_t n) {
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int backend_available(loom_engine *e, const char *list) {
    char first[64];
    size_t len = strcspn(list, ",:");
    snprintf(first, sizeof first, "%.*s", (int)len, list);
    for (uint32_t i = 0; i < loom_engine_plugin_count(e); i++) {
        loom_plugin_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (loom_engine_plugin_info(e, i, &info) != LOOM_OK || strcmp(info.name, first) != 0) continue;
        if (info.state == LOOM_PLUGIN_AVAILABLE && info.n_devices > 0) return 1;
        printf("SKIP: backend %s is not available: %s\n", first, info.reason);
        return 0;
    }
    printf("SKIP: no backend plugin named %s\n", first);
    return 0;
}

int main(int argc, char **argv) {
    const char *backend, *variant, *path;
    int chunks;
    loom_options *opt = NULL;
    loom_engine *engine = NULL;
    loom_model *model = NULL;
    loom_model_info mi;
    loom_context *ref = NULL, *dev = NULL;
    loom_context_params cp;
    char err[1024] = "";
    const char *threads = getenv("LOOM_TEST_THREADS");
    size_t n_tok;
    int32_t *tokens;
    double kl_sum = 0, nll_ref = 0, nll_dev = 0, t_ref = 0, t_dev = 0, kl_max = 0;
    long n_pos = 0, n_top1 = 0, n_scored = 0;
    int quantized, failed = 0, expect_fallback = 0, CHUNK = CHUNK_DEFAULT;
    const char *fallback_op = NULL;

    if (argc < 4) {
        fprintf(stderr, "usage: test_backend_e2e BACKEND VARIANT CHUNKS [KEY=VALUE ...]\n");
        return 2;
    }
    backend = argv[1];
    variant = argv[2];
    chunks = atoi(argv[3]);
    quantized = strcmp(variant, "f32") != 0;
    path = model_path(variant);
    if (path == NULL) {
        printf("SKIP: model variant %s is not in the cache (scripts/get-model.sh, scripts/make_model_variants.py)\n",
               variant);
        return SKIP;
    }
    tokens = load_tokens(&n_tok);

    loom_options_create(&opt);
    loom_options_set(opt, "threads", threads != NULL && *threads ? threads : "2", LOOM_SOURCE_CLI);
    loom_options_set(opt, "log_level", "warn", LOOM_SOURCE_CLI);
    for (int i = 4; i < argc; i++) {
        char key[256];
        const char *eq = strchr(argv[i], '=');
        if (strcmp(argv[i], "--expect-fallback") == 0) {
            expect_fallback = 1;
            continue;
        }
        if (strcmp(argv[i], "--expect-fallback-op") == 0 && i + 1 < argc) {
            fallback_op = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--ctx") == 0 && i + 1 < argc) {
            CHUNK = atoi(argv[++i]);
            if (CHUNK < 16) {
                fprintf(stderr, "--ctx must be at least 16\n");
                return 2;
            }
            continue;
        }
        if (eq == NULL || (size_t)(eq - argv[i]) >= sizeof key) {
            fprintf(stderr, "bad option %s\n", argv[i]);
            return 2;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - argv[i]), argv[i]);
        loom_options_set(opt, key, eq + 1, LOOM_SOURCE_CLI);
    }
    if ((size_t)chunks * (size_t)CHUNK > n_tok) chunks = (int)(n_tok / (size_t)CHUNK);
    if (loom_engine_create(opt, &engine, err, sizeof err) != LOOM_OK) {
        fprintf(stderr, "engine: %s\n", err);
        return 1;
    }
    loom_options_free(opt);
    if (!backend_available(engine, backend)) {
        loom_engine_free(engine);
        free(tokens);
        return SKIP;
    }
    if (loom_model_load(engine, path, NULL, &model) != LOOM_OK) {
        fprintf(stderr, "model: %s\n", loom_engine_last_error(engine));
        return 1;
    }
    memset(&mi, 0, sizeof mi);
    mi.struct_size = sizeof mi;
    loom_model_get_info(model, &mi);

    memset(&cp, 0, sizeof cp);
    cp.struct_size = sizeof cp;
    cp.n_ctx = CHUNK;
    cp.n_batch = CHUNK;
    cp.backend = "cpu";
    if (loom_context_create(model, &cp, &ref) != LOOM_OK) {
        fprintf(stderr, "reference context: %s\n", loom_engine_last_error(engine));
        return 1;
    }
    cp.backend = backend;
    if (loom_context_create(model, &cp, &dev) != LOOM_OK) {
        fprintf(stderr, "%s context: %s\n", backend, loom_engine_last_error(engine));
        return 1;
    }
    printf("model %s (%s), backend %s, %d chunk(s) of %d tokens\n", path, variant, backend, chunks, CHUNK);

    for (int c = 0; c < chunks; c++) {
        const int32_t *tk = tokens + (size_t)c * CHUNK;
        double t0 = now(), t1, t2;
        if (loom_context_reset(ref) != LOOM_OK || loom_context_eval(ref, tk, CHUNK, LOOM_EVAL_LOGITS_ALL) != LOOM_OK) {
            fprintf(stderr, "reference eval: %s\n", loom_context_last_error(ref));
            return 1;
        }
        t1 = now();
        if (loom_context_reset(dev) != LOOM_OK || loom_context_eval(dev, tk, CHUNK, LOOM_EVAL_LOGITS_ALL) != LOOM_OK) {
            fprintf(stderr, "%s eval: %s\n", backend, loom_context_last_error(dev));
            return 1;
        }
        t2 = now();
        t_ref += t1 - t0;
        t_dev += t2 - t1;
        for (int i = 0; i < CHUNK; i++) {
            const float *p = loom_context_logits(ref, i), *q = loom_context_logits(dev, i);
            double pm, pl, qm, ql, kl = 0;
            if (p == NULL || q == NULL) {
                fprintf(stderr, "no logits at %d\n", i);
                return 1;
            }
            log_norm(p, mi.n_vocab, &pm, &pl);
            log_norm(q, mi.n_vocab, &qm, &ql);
            for (int64_t v = 0; v < mi.n_vocab; v++) {
                double lp = (double)p[v] - pm - pl, lq = (double)q[v] - qm - ql;
                kl += exp(lp) * (lp - lq);
            }
            kl_sum += kl;
            kl_max = kl > kl_max ? kl : kl_max;
            n_pos++;
            n_top1 += argmax(p, mi.n_vocab) == argmax(q, mi.n_vocab);
            if (i >= CHUNK / 2 && i < CHUNK - 1) {
                int32_t next = tk[i + 1];
                nll_ref -= (double)p[next] - pm - pl;
                nll_dev -= (double)q[next] - qm - ql;
                n_scored++;
            }
        }
        printf("chunk %d: reference %.1f s, %s %.1f s; running ppl %.4f vs %.4f\n", c, t1 - t0, backend, t2 - t1,
               exp(nll_ref / (double)n_scored), exp(nll_dev / (double)n_scored));
        fflush(stdout);
    }
    {
        double kl = kl_sum / (double)n_pos, ppl_ref = exp(nll_ref / (double)n_scored),
               ppl_dev = exp(nll_dev / (double)n_scored), rel = fabs(ppl_dev - ppl_ref) / ppl_ref;
        double kl_limit = quantized ? 1e-3 : 1e-4;
        printf("mean KL %.3g (max %.3g, limit %.0e), top-1 agreement %.2f%% over %ld positions\n", kl, kl_max, kl_limit,
               100.0 * (double)n_top1 / (double)n_pos, n_pos);
        printf("perplexity: reference %.4f, %s %.4f (%+.3f%%, limit 0.5%%) over %ld predictions\n", ppl_ref, backend,
               ppl_dev, 100.0 * (ppl_dev - ppl_ref) / ppl_ref, n_scored);
        printf("speed: reference %.1f tok/s, %s %.1f tok/s (prefill of %d)\n", (double)(chunks * CHUNK) / t_ref,
               backend, (double)(chunks * CHUNK) / t_dev, CHUNK);
        printf("placement on %s:\n%s", backend, loom_context_placement(dev));
        if (!(kl < kl_limit)) {
            fprintf(stderr, "FAIL: mean KL %.3g >= %.0e\n", kl, kl_limit);
            failed = 1;
        }
        if (expect_fallback) {
            const char *rep = loom_context_placement(dev);
            char line[64];
            const char *t;
            unsigned long long in = 0, out = 0;
            snprintf(line, sizeof line, "transfers %s:", backend);
            t = strstr(rep, line);
            if (t == NULL || sscanf(t + strlen(line), " %llu bytes in, %llu bytes out", &in, &out) != 2) in = out = 0;
            if (strstr(rep, "(fallback)") == NULL) {
                fprintf(stderr, "FAIL: expected ops on both %s and the CPU reference\n", backend);
                failed = 1;
            }
            if (in == 0 || out == 0) {
                fprintf(stderr, "FAIL: expected bytes copied to and from %s (in %llu, out %llu)\n", backend, in, out);
                failed = 1;
            }
        }
        if (fallback_op != NULL) {
            /* Each report line: op name, types, device, count, "(fallback)" when not the first device. */
            const char *line = loom_context_placement(dev);
            int seen = 0;
            size_t n = strlen(fallback_op);
            while (line != NULL && *line) {
                const char *end = strchr(line, '\n');
                size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
                if (strncmp(line, fallback_op, n) == 0 && line[n] == ' ') {
                    char buf[256];
                    snprintf(buf, sizeof buf, "%.*s", (int)len, line);
                    seen = 1;
                    if (strstr(buf, "(fallback)") == NULL) {
                        fprintf(stderr, "FAIL: %s ran on %s: %s\n", fallback_op, backend, buf);
                        failed = 1;
                    }
                }
                line = end != NULL ? end + 1 : NULL;
            }
            if (!seen) {
                fprintf(stderr, "FAIL: no %s in the placement report\n", fallback_op);
                failed = 1;
            }
        }
        if (!(rel <= 0.005)) {
            fprintf(stderr, "FAIL: perplexity differs by %.3f%%\n", 100.0 * rel);
            failed = 1;
        }
    }
    loom_context_free(dev);
    loom_context_free(ref);
    loom_model_free(model);
    loom_engine_free(engine);
    free(tokens);
    return failed;
}

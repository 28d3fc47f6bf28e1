/*
 * test_arch_fixtures.c - every fixture of ../shared/fixtures/archs (golden logits of the
 * official DenseFormer, CoTFormer and landmark-attention code) against Loom's plugins, loaded
 * at run time through the engine:
 *  - a full forward: all tokens in one eval call;
 *  - incremental decoding with the KV cache: one token per call, or, for the cached landmark
 *    cases, exactly the official call sizes (chunks_raw_token_ranges of the fixture's config).
 * Pass: max |loom - golden| <= 1e-4 * max |golden| over every logit.
 * Optional argument: one case name, --retrieval (the cached landmark cases) or --no-retrieval.
 */
#include "archs_util.h"

#include <json-c/json.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const g_cases[] = {
    "denseformer_exp_k1p1",  "denseformer_exp_k2p2",     "denseformer_pkg_k2p2",
    "cotformer_full_depth",  "cotformer_lnmid_depthemb", "cotformer_adaptive_full",
    "landmark_full",         "landmark_cached_topk2",    "landmark_cached_topk2_decode",
};

/* Official call sizes, when the fixture records them. Returns the count (0 when none). */
static size_t read_ranges(const char *dir, size_t **sizes) {
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_object *root = json_object_from_file(path), *r;
    size_t n = 0;
    *sizes = NULL;
    if (root && json_object_object_get_ex(root, "chunks_raw_token_ranges", &r)) {
        n = json_object_array_length(r);
        *sizes = malloc(n * sizeof(size_t));
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(r, i);
            (*sizes)[i] = (size_t)(json_object_get_int64(json_object_array_get_idx(p, 1)) -
                                   json_object_get_int64(json_object_array_get_idx(p, 0)));
        }
    }
    json_object_put(root);
    return n;
}

static void run_case(loom_engine *e, const char *fixtures, const char *name) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/%s", fixtures, name);
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    st_file g;
    if (st_load(path, &g) != 0) {
        CHECK(0, "%s: cannot read %s", name, path);
        return;
    }
    const st_tensor *ti = st_find(&g, "input_ids"), *tl = st_find(&g, "logits");
    CHECK(ti && tl, "%s: golden lacks input_ids / logits", name);
    if (!ti || !tl) {
        st_free(&g);
        return;
    }
    const size_t n = (size_t)ti->shape[0];
    const int64_t n_vocab = tl->shape[1];
    int32_t *ids = malloc(n * sizeof(int32_t));
    memcpy(ids, ti->data, n * sizeof(int32_t));
    float *golden = st_to_f32(tl, NULL);
    size_t *sizes = NULL;
    const size_t n_sizes = read_ranges(dir, &sizes);

    loom_model *m = archs_load(e, dir);
    CHECK(m != NULL, "%s: model does not load", name);
    if (m) {
        loom_model_info info = {.struct_size = sizeof info};
        loom_model_get_info(m, &info);
        CHECK(info.n_vocab == n_vocab, "%s: n_vocab %lld, golden %lld", name, (long long)info.n_vocab,
              (long long)n_vocab);
        printf("%-30s plugin %-12s", name, info.arch_plugin ? info.arch_plugin : "?");
        float *out = malloc(n * (size_t)n_vocab * sizeof(float));
        /* 1. full forward (not for the decode case, whose procedure is per call) */
        const int per_call_only = n_sizes > 0 && sizes[n_sizes - 1] == 1;
        for (int mode = per_call_only ? 1 : 0; mode < 2; mode++) {
            loom_context *c = archs_context(m, (uint32_t)n, (uint32_t)n);
            CHECK(c != NULL, "%s: no context", name);
            if (!c) break;
            size_t *one = NULL;
            const size_t *sz = NULL;
            size_t nsz = 0;
            if (mode == 1) {
                if (n_sizes) {
                    sz = sizes;
                    nsz = n_sizes;
                } else {
                    one = malloc(n * sizeof(size_t));
                    for (size_t i = 0; i < n; i++) one[i] = 1;
                    sz = one;
                    nsz = n;
                }
            }
            int rc = archs_eval(c, ids, n, sz, nsz, n_vocab, out);
            CHECK(rc == 0, "%s: eval failed (%s)", name, mode ? "incremental" : "full");
            if (rc == 0) {
                double md, mg;
                archs_diff(out, golden, n * (size_t)n_vocab, &md, &mg);
                const int ok = md <= 1e-4 * mg;
                if (!ok && getenv("LOOM_ARCHS_VERBOSE")) {
                    for (size_t r = 0; r < n; r++) {
                        double rd, rg;
                        archs_diff(out + r * (size_t)n_vocab, golden + r * (size_t)n_vocab, (size_t)n_vocab, &rd, &rg);
                        fprintf(stderr, "  row %zu: max|diff| %.3g\n", r, rd);
                    }
                }
                printf("  %s: max|diff| %.9g (%.2g of max|golden| %.3g) %s", mode ? "incremental" : "full", md,
                       md / mg, mg, ok ? "ok" : "FAIL");
                CHECK(ok, "%s (%s): max diff %g > 1e-4 * %g", name, mode ? "incremental" : "full", md, mg);
            }
            free(one);
            loom_context_free(c);
        }
        printf("\n");
        free(out);
        loom_model_free(m);
    }
    free(sizes);
    free(golden);
    free(ids);
    st_free(&g);
}

int main(int argc, char **argv) {
    const char *fixtures = archs_fixture_dir();
    if (!fixtures) {
        fprintf(stderr, "fixtures not found under %s: skipped\n", LOOM_TEST_SHARED_DIR);
        return 77;
    }
    loom_log_set_callback(NULL, NULL, LOOM_LOG_WARN);
    loom_engine *e = archs_engine();
    if (!e) return 1;
    for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++) {
        const int cached = strstr(g_cases[i], "cached") != NULL;
        if (argc > 1 && !strcmp(argv[1], "--no-retrieval")) {
            if (cached) continue;
        } else if (argc > 1 && !strcmp(argv[1], "--retrieval")) {
            if (!cached) continue;
        } else if (argc > 1 && strcmp(argv[1], g_cases[i]) != 0) {
            continue;
        }
        run_case(e, fixtures, g_cases[i]);
    }
    loom_engine_free(e);
    if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}

/*
 * test_arch_identities.c - identities of the seed architectures, each between two different
 * computations in Loom (models built in a temporary folder from the fixtures' weights):
 *  1. DenseFormer with identity DWA weights (last entry 1, others 0) equals the plain model
 *     (the same blocks with no DWA: the package semantics with a period beyond the depth);
 *  2. a CoTFormer with one repeat and no begin/end layers equals the plain model;
 *  3. landmark attention with retrieval (raw input, inserted landmarks, chunked prefill, the
 *     block store) and top-k at least the number of blocks equals one full pass with the grouped
 *     softmax over the stream with its landmarks;
 *  4. landmark attention over a stream without landmarks (one block) equals plain causal
 *     attention (the plain model).
 * The plain model is run by the DenseFormer plugin through the fused ATTENTION op; CoTFormer's
 * middle layers use masked attention composed of MATMUL/SOFTMAX; landmark attention runs on the
 * host: three independent attention implementations.
 * Tolerance: max |a - b| <= 1e-4 * max |b|.
 */
#include "archs_util.h"

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *g_tmp;

/* Write model.safetensors (+ config.json) into a new subfolder of g_tmp; returns its path. */
static char *make_model(const char *sub, const st_writer *w, json_object *config) {
    char *dir = malloc(1200), path[1400];
    snprintf(dir, 1200, "%s/%s", g_tmp, sub);
    if (mkdir_p(dir) != 0) return NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (st_writer_write(w, path) != 0) return NULL;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (json_object_to_file_ext(path, config, JSON_C_TO_STRING_PRETTY) != 0) return NULL;
    return dir;
}

static json_object *read_config(const char *fixtures, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/config.json", fixtures, name);
    return json_object_from_file(path);
}

static json_object *hparams(json_object *cfg) {
    json_object *h = NULL;
    json_object_object_get_ex(cfg, "model_hparams", &h);
    return h;
}

static void set_int(json_object *o, const char *k, int64_t v) { json_object_object_add(o, k, json_object_new_int64(v)); }
static void set_str(json_object *o, const char *k, const char *v) { json_object_object_add(o, k, json_object_new_string(v)); }

/* Logits of tokens through a model folder (one eval call of all tokens, or the given sizes). */
static float *run(loom_engine *e, const char *dir, const int32_t *ids, size_t n, const size_t *sizes, size_t n_sizes,
                  int64_t *n_vocab) {
    loom_model *m = archs_load(e, dir);
    if (!m) return NULL;
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(m, &info);
    *n_vocab = info.n_vocab;
    float *out = malloc(n * (size_t)info.n_vocab * sizeof(float));
    loom_context *c = archs_context(m, (uint32_t)n, (uint32_t)n);
    int rc = c ? archs_eval(c, ids, n, sizes, n_sizes, info.n_vocab, out) : -1;
    loom_context_free(c);
    loom_model_free(m);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void compare(const char *what, const float *a, const float *b, size_t n) {
    if (!a || !b) {
        CHECK(0, "%s: a run failed", what);
        return;
    }
    double md, mg;
    archs_diff(a, b, n, &md, &mg);
    const int ok = md <= 1e-4 * mg;
    printf("%-58s max|diff| %.3g (max|ref| %.3g) %s\n", what, md, mg, ok ? "ok" : "FAIL");
    CHECK(ok, "%s: %g > 1e-4 * %g", what, md, mg);
}

/* Renames for the plain model: official block names -> "transformer.h.{i}." of a 4-block GPT. */
static const char *rename_identity(const char *name, char *buf, size_t size, void *ud) {
    (void)buf;
    (void)size;
    (void)ud;
    return name;
}

static const char *rename_exp_to_flat(const char *name, char *buf, size_t size, void *ud) {
    const int per_group = *(const int *)ud;
    int g, b, n = 0;
    if (sscanf(name, "transformer.h.%d.%d.%n", &g, &b, &n) == 2 && n > 0) {
        snprintf(buf, size, "transformer.h.%d.%s", g * per_group + b, name + n);
        return buf;
    }
    if (!strncmp(name, "weights.", 8)) return NULL;
    return name;
}

static const char *rename_h_to_mid(const char *name, char *buf, size_t size, void *ud) {
    (void)ud;
    int i, n = 0;
    if (sscanf(name, "transformer.h.%d.%n", &i, &n) == 1 && n > 0) {
        snprintf(buf, size, "transformer.h_mid.%d.%s", i, name + n);
        return buf;
    }
    return name;
}

/* A plain GPT (no DWA): the package semantics with a period beyond the depth. */
static json_object *plain_config(int n_layer, int n_head, int seq) {
    json_object *c = json_object_new_object(), *h = json_object_new_object();
    set_str(c, "arch", "denseformer");
    set_int(h, "n_layer", n_layer);
    set_int(h, "n_blocks", n_layer);
    set_int(h, "n_head", n_head);
    set_int(h, "sequence_length", seq);
    set_int(h, "dilation", 1);
    set_int(h, "dwa_period", n_layer + 1);
    json_object_object_add(c, "model_hparams", h);
    return c;
}

static void identity_dwa(loom_engine *e, const char *fixtures, const int32_t *ids, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/denseformer_exp_k2p2/model.safetensors", fixtures);
    st_file f;
    if (st_load(path, &f) != 0) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    /* DenseFormer with identity DWA weights */
    st_writer w = {0};
    for (int i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (!strncmp(t->name, "weights.", 8)) {
            const size_t m = (size_t)t->shape[1];
            uint16_t *v = calloc(m, 2);
            v[m - 1] = f32_to_f16(1.0f);
            st_writer_add(&w, t->name, "F16", t->n_dims, t->shape, v, m * 2);
            free(v);
        } else {
            st_writer_add(&w, t->name, t->dtype, t->n_dims, t->shape, t->data, t->bytes);
        }
    }
    json_object *cfg = read_config(fixtures, "denseformer_exp_k2p2");
    char *d1 = make_model("dwa_identity", &w, cfg);
    json_object_put(cfg);
    st_writer_free(&w);
    /* the plain model: same blocks, flat names, no DWA */
    int per_group = 2;
    st_writer_add_all(&w, &f, rename_exp_to_flat, &per_group);
    cfg = plain_config(8, 4, 48);
    char *d2 = make_model("plain8", &w, cfg);
    json_object_put(cfg);
    st_writer_free(&w);
    st_free(&f);
    int64_t nv = 0;
    float *a = d1 ? run(e, d1, ids, n, NULL, 0, &nv) : NULL;
    float *b = d2 ? run(e, d2, ids, n, NULL, 0, &nv) : NULL;
    compare("denseformer: identity DWA == plain model", a, b, n * (size_t)nv);
    free(a);
    free(b);
    free(d1);
    free(d2);
}

static void one_repeat_cotformer(loom_engine *e, const char *fixtures, const int32_t *ids, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/landmark_full/model.safetensors", fixtures);
    st_file f;
    if (st_load(path, &f) != 0) {
        CHECK(0, "cannot read %s", path);
        return;
    }
    st_writer w = {0};
    st_writer_add_all(&w, &f, rename_h_to_mid, NULL);
    json_object *c = json_object_new_object(), *h = json_object_new_object();
    set_str(c, "arch", "cotformer");
    set_int(h, "n_layer", 4);
    set_int(h, "n_layer_begin", 0);
    set_int(h, "n_layer_end", 0);
    set_int(h, "n_repeat", 1);
    set_int(h, "n_head", 4);
    set_int(h, "sequence_length", 64);
    json_object_object_add(c, "model_hparams", h);
    char *d1 = make_model("cot_r1", &w, c);
    json_object_put(c);
    st_writer_free(&w);
    st_writer_add_all(&w, &f, rename_identity, NULL);
    c = plain_config(4, 4, 64);
    char *d2 = make_model("plain4", &w, c);
    json_object_put(c);
    st_writer_free(&w);
    st_free(&f);
    int64_t nv = 0;
    float *a = d1 ? run(e, d1, ids, n, NULL, 0, &nv) : NULL;
    float *b = d2 ? run(e, d2, ids, n, NULL, 0, &nv) : NULL;
    compare("cotformer: one repeat, no begin/end == plain model", a, b, n * (size_t)nv);
    /* the same through incremental decoding */
    size_t *one = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) one[i] = 1;
    float *a1 = d1 ? run(e, d1, ids, n, one, n, &nv) : NULL;
    compare("cotformer: one repeat, token by token == plain model", a1, b, n * (size_t)nv);
    /* landmark attention without landmarks == plain causal attention */
    snprintf(path, sizeof path, "%s/landmark_full", fixtures);
    float *l = run(e, path, ids, n, NULL, 0, &nv);
    compare("landmark: no landmark in the input == plain attention", l, b, n * (size_t)nv);
    free(one);
    free(a);
    free(a1);
    free(b);
    free(l);
    free(d1);
    free(d2);
}

/* Retrieval with top-k >= blocks == one full pass over the stream with landmarks. */
static void retrieval_all_blocks(loom_engine *e, const char *fixtures, const int32_t *raw, size_t n_raw, int mem_freq,
                                 int chunk) {
    json_object *cfg = read_config(fixtures, "landmark_cached_topk2"), *h = hparams(cfg), *args = NULL;
    json_object_object_get_ex(cfg, "args", &args);
    set_int(h, "cache_topk", 1000);
    set_int(h, "mem_cache_size", 0);
    set_int(h, "mem_cache_freq", mem_freq);
    set_int(h, "mid_length", chunk);
    set_int(args, "cache_topk", 1000);
    set_int(args, "mem_cache_freq", mem_freq);
    set_int(args, "mem_cache_size", 0);
    set_int(args, "mid_length", chunk);
    char path[1200], sub[64];
    snprintf(path, sizeof path, "%s/landmark_full/model.safetensors", fixtures);
    st_file f;
    if (st_load(path, &f) != 0) {
        CHECK(0, "cannot read %s", path);
        json_object_put(cfg);
        return;
    }
    st_writer w = {0};
    st_writer_add_all(&w, &f, rename_identity, NULL);
    snprintf(sub, sizeof sub, "lm_all_%d_%d", mem_freq, chunk);
    char *d1 = make_model(sub, &w, cfg);
    json_object_put(cfg);
    /* full mode, with the landmarks in the input */
    cfg = read_config(fixtures, "landmark_full");
    h = hparams(cfg);
    set_int(h, "mem_freq", mem_freq);
    json_object_object_get_ex(cfg, "args", &args);
    set_int(args, "mem_freq", mem_freq);
    snprintf(sub, sizeof sub, "lm_full_%d", mem_freq);
    char *d2 = make_model(sub, &w, cfg);
    json_object_put(cfg);
    st_writer_free(&w);
    st_free(&f);

    const size_t n_stream = n_raw + n_raw / (size_t)mem_freq;
    int32_t *stream = malloc(n_stream * sizeof(int32_t));
    size_t *where = malloc(n_raw * sizeof(size_t));
    size_t k = 0;
    for (size_t i = 0; i < n_raw; i++) {
        where[i] = k;
        stream[k++] = raw[i];
        if ((i + 1) % (size_t)mem_freq == 0) stream[k++] = 255;
    }
    int64_t nv = 0;
    float *full = d2 ? run(e, d2, stream, n_stream, NULL, 0, &nv) : NULL;
    float *ret = d1 ? run(e, d1, raw, n_raw, NULL, 0, &nv) : NULL;
    size_t *one = malloc(n_raw * sizeof(size_t));
    for (size_t i = 0; i < n_raw; i++) one[i] = 1;
    float *ret1 = d1 ? run(e, d1, raw, n_raw, one, n_raw, &nv) : NULL;
    float *sel = full ? malloc(n_raw * (size_t)nv * sizeof(float)) : NULL;
    for (size_t i = 0; sel && i < n_raw; i++)
        memcpy(sel + i * (size_t)nv, full + where[i] * (size_t)nv, (size_t)nv * sizeof(float));
    char what[128];
    snprintf(what, sizeof what, "landmark: retrieval, top-k >= blocks (F=%d, chunks %d) == full", mem_freq, chunk);
    compare(what, ret, sel, n_raw * (size_t)nv);
    snprintf(what, sizeof what, "landmark: same, token by token (F=%d) == full", mem_freq);
    compare(what, ret1, sel, n_raw * (size_t)nv);
    free(one);
    free(stream);
    free(where);
    free(full);
    free(ret);
    free(ret1);
    free(sel);
    free(d1);
    free(d2);
}

int main(void) {
    const char *fixtures = archs_fixture_dir();
    if (!fixtures) {
        fprintf(stderr, "fixtures not found under %s: skipped\n", LOOM_TEST_SHARED_DIR);
        return 77;
    }
    loom_log_set_callback(NULL, NULL, LOOM_LOG_ERROR);
    g_tmp = make_temp_dir("archs-id");
    loom_engine *e = archs_engine();
    if (!e || !g_tmp) return 1;
    int32_t ids[64], raw[160];
    uint32_t s = 12345;
    for (int i = 0; i < 64; i++) {
        s = s * 1103515245u + 12345u;
        ids[i] = (int32_t)((s >> 16) % 255); /* never the landmark id 255 */
    }
    for (int i = 0; i < 160; i++) {
        s = s * 1103515245u + 12345u;
        raw[i] = (int32_t)((s >> 16) % 255);
    }
    identity_dwa(e, fixtures, ids, 48);
    one_repeat_cotformer(e, fixtures, ids, 64);
    retrieval_all_blocks(e, fixtures, raw, 56, 7, 35);
    retrieval_all_blocks(e, fixtures, raw, 56, 7, 14);
    loom_engine_free(e);
    if (!getenv("LOOM_KEEP_TMP")) rm_tree(g_tmp);
    free(g_tmp);
    if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}

/*
 * test_arch_convert.c - `loom convert` (loom_model_save) and the weight-difference loader:
 *  1. every fixture converted to GGUF (stored types, and f32) reopens with the same plugin from
 *     its own canonical keys and gives the same logits as the official checkpoint;
 *  2. a synthetic landmark LLaMA (vocabulary with [PAD] and <landmark>) published as a weight
 *     difference to a smaller-vocabulary base: loom_model_save_weight_diff recovers the tuned
 *     weights (rows added as the mean of the base rows, checksum verified) and the recovered
 *     model's logits equal the tuned model's; a corrupted diff fails the integrity check;
 *  3. the LLaMA variant: without landmarks in the input it equals the llama plugin on the same
 *     weights; with retrieval and top-k >= blocks it equals the full pass with landmarks;
 *  4. output types: --type q8_0 quantizes the weight matrices exactly as llama.cpp's reference
 *     Q8_0 (norms stay F32), --type f32 dequantizes every tensor back; a type Loom cannot write
 *     and an hf export of a model without llama.cpp tensor names are refused.
 */
#define _POSIX_C_SOURCE 200809L /* unsetenv */
#include "archs_util.h"

#include <json-c/json.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *g_tmp;

static float *run(loom_engine *e, const char *path, const int32_t *ids, size_t n, const size_t *sizes, size_t n_sizes,
                  int64_t *n_vocab, char *arch, size_t arch_size) {
    loom_model *m = archs_load(e, path);
    if (!m) return NULL;
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(m, &info);
    *n_vocab = info.n_vocab;
    if (arch) snprintf(arch, arch_size, "%s", info.arch_plugin ? info.arch_plugin : "");
    float *out = malloc(n * (size_t)info.n_vocab * sizeof(float));
    loom_context *c = archs_context(m, (uint32_t)n, (uint32_t)n);
    int rc = c ? archs_eval(c, ids, n, sizes, n_sizes, info.n_vocab, out) : -1;
    loom_context_free(c);
    loom_model_free(m);
    if (rc) {
        free(out);
        return NULL;
    }
    return out;
}

static void compare(const char *what, const float *a, const float *b, size_t n, double rel) {
    if (!a || !b) {
        CHECK(0, "%s: a run failed", what);
        return;
    }
    double md, mg;
    archs_diff(a, b, n, &md, &mg);
    const int ok = md <= rel * mg;
    printf("%-62s max|diff| %.3g (max|ref| %.3g) %s\n", what, md, mg, ok ? "ok" : "FAIL");
    CHECK(ok, "%s: %g > %g * %g", what, md, rel, mg);
}

/* ---------------------------------------------------------------------------------------- */

static void convert_fixtures(loom_engine *e, const char *fixtures) {
    static const char *const cases[] = {"denseformer_exp_k2p2",    "denseformer_pkg_k2p2", "cotformer_full_depth",
                                        "cotformer_adaptive_full", "landmark_full",        "landmark_cached_topk2"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[1200], gpath[1400];
        snprintf(dir, sizeof dir, "%s/%s", fixtures, cases[i]);
        snprintf(gpath, sizeof gpath, "%s/golden.safetensors", dir);
        st_file g;
        if (st_load(gpath, &g) != 0) {
            CHECK(0, "%s: golden", cases[i]);
            continue;
        }
        const st_tensor *ti = st_find(&g, "input_ids");
        const size_t n = (size_t)ti->shape[0];
        int32_t *ids = malloc(n * sizeof(int32_t));
        memcpy(ids, ti->data, n * sizeof(int32_t));
        int64_t nv = 0;
        char a0[64] = "", a1[64] = "";
        float *ref = run(e, dir, ids, n, NULL, 0, &nv, a0, sizeof a0);
        for (int k = 0; k < 2; k++) {
            char out[1400], what[160];
            snprintf(out, sizeof out, "%s/%s.%s.gguf", g_tmp, cases[i], k ? "f32" : "keep");
            loom_model *m = archs_load(e, dir);
            loom_status st = m ? loom_model_save(m, out, k ? LOOM_TYPE_F32 : LOOM_SAVE_KEEP_TYPES) : LOOM_ERR_IO;
            CHECK(st == LOOM_OK, "%s: save: %s", cases[i], loom_engine_last_error(e));
            loom_model_free(m);
            float *got = st == LOOM_OK ? run(e, out, ids, n, NULL, 0, &nv, a1, sizeof a1) : NULL;
            CHECK(!got || !strcmp(a0, a1), "%s: plugin %s after conversion, %s before", cases[i], a1, a0);
            snprintf(what, sizeof what, "convert %s (%s) == checkpoint", cases[i], k ? "f32" : "stored types");
            compare(what, got, ref, n * (size_t)nv, 0.0);
            free(got);
        }
        free(ref);
        free(ids);
        st_free(&g);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Synthetic LLaMA landmark model                                                             */

enum { LV = 18, LV_BASE = 16, LC = 32, LH = 4, LKV = 2, LFF = 48, LL = 2 };

static uint32_t g_rng = 7;
static float frand(void) {
    g_rng = g_rng * 1664525u + 1013904223u;
    return ((float)(g_rng >> 8) / 16777216.0f - 0.5f) * 2.0f;
}

typedef struct llama_w {
    const char *name;
    int rows, cols; /* torch shape [rows, cols] (cols = 0: 1-D) */
} llama_w;

static void llama_tensors(llama_w *w, int *n, int vocab) {
    static char names[64][192];
    int k = 0;
#define ADD(nm, r, c)                                                                                                  \
    do {                                                                                                               \
        snprintf(names[k], sizeof names[k], "%s", nm);                                                                 \
        w[k].name = names[k];                                                                                          \
        w[k].rows = r;                                                                                                 \
        w[k].cols = c;                                                                                                 \
        k++;                                                                                                           \
    } while (0)
    ADD("model.embed_tokens.weight", vocab, LC);
    for (int l = 0; l < LL; l++) {
        char p[160];
        const int hd = LC / LH;
        snprintf(p, sizeof p, "model.layers.%d.input_layernorm.weight", l);
        ADD(p, LC, 0);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.q_proj.weight", l);
        ADD(p, LH * hd, LC);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.k_proj.weight", l);
        ADD(p, LKV * hd, LC);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD(p, LKV * hd, LC);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.o_proj.weight", l);
        ADD(p, LC, LH * hd);
        snprintf(p, sizeof p, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(p, LC, 0);
        snprintf(p, sizeof p, "model.layers.%d.mlp.gate_proj.weight", l);
        ADD(p, LFF, LC);
        snprintf(p, sizeof p, "model.layers.%d.mlp.up_proj.weight", l);
        ADD(p, LFF, LC);
        snprintf(p, sizeof p, "model.layers.%d.mlp.down_proj.weight", l);
        ADD(p, LC, LFF);
    }
    ADD("model.norm.weight", LC, 0);
    ADD("lm_head.weight", vocab, LC);
#undef ADD
    *n = k;
}

static json_object *llama_config(int vocab, int landmark, int top_k) {
    json_object *c = json_object_new_object();
    json_object_object_add(c, "model_type", json_object_new_string(landmark ? "llama_with_landmark" : "llama"));
    json_object *arch = json_object_new_array();
    json_object_array_add(arch, json_object_new_string("LlamaForCausalLM"));
    json_object_object_add(c, "architectures", arch);
    json_object_object_add(c, "vocab_size", json_object_new_int(vocab));
    json_object_object_add(c, "hidden_size", json_object_new_int(LC));
    json_object_object_add(c, "intermediate_size", json_object_new_int(LFF));
    json_object_object_add(c, "num_hidden_layers", json_object_new_int(LL));
    json_object_object_add(c, "num_attention_heads", json_object_new_int(LH));
    json_object_object_add(c, "num_key_value_heads", json_object_new_int(LKV));
    json_object_object_add(c, "rms_norm_eps", json_object_new_double(1e-6));
    json_object_object_add(c, "max_position_embeddings", json_object_new_int(256));
    json_object_object_add(c, "rope_theta", json_object_new_double(10000.0));
    json_object_object_add(c, "tie_word_embeddings", json_object_new_boolean(0));
    if (landmark) {
        json_object_object_add(c, "mem_id", json_object_new_int(LV - 1));
        json_object_object_add(c, "mem_freq", json_object_new_int(3));
        json_object_object_add(c, "train_context_length", json_object_new_int(64));
        json_object_object_add(c, "cache_top_k", json_object_new_int(top_k));
    }
    return c;
}

static char *write_folder(const char *sub, const st_writer *w, json_object *cfg) {
    char *dir = malloc(1200), p[1400];
    snprintf(dir, 1200, "%s/%s", g_tmp, sub);
    mkdir_p(dir);
    snprintf(p, 1400, "%s/model.safetensors", dir);
    st_writer_write(w, p);
    snprintf(p, 1400, "%s/config.json", dir);
    json_object_to_file_ext(p, cfg, JSON_C_TO_STRING_PRETTY);
    return dir;
}

static void weight_diff(loom_engine *e) {
    llama_w tw[64];
    int nt = 0;
    llama_tensors(tw, &nt, LV);
    st_writer tuned = {0}, base = {0}, diff = {0}, bad = {0};
    double checksum = 0;
    float *tuned_v[64], *base_v[64];
    for (int i = 0; i < nt; i++) {
        const int rows = tw[i].rows, cols = tw[i].cols ? tw[i].cols : 1;
        const int vocab_t = !strcmp(tw[i].name, "model.embed_tokens.weight") || !strcmp(tw[i].name, "lm_head.weight");
        const int brows = vocab_t ? LV_BASE : rows;
        float *t = malloc(sizeof(float) * (size_t)(rows * cols)), *b = malloc(sizeof(float) * (size_t)(brows * cols));
        const int norm = tw[i].cols == 0;
        for (int k = 0; k < rows * cols; k++)
            t[k] = norm ? 1.0f + 0.2f * frand() : 0.4f * frand();
        for (int k = 0; k < brows * cols; k++)
            b[k] = t[k] - 0.05f * frand(); /* the base differs a little */
        tuned_v[i] = t;
        base_v[i] = b;
        /* base resized as the official recover(): new rows = mean of the base rows */
        float *d = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                double bv;
                if (r < brows) {
                    bv = (double)b[r * cols + c];
                } else {
                    bv = 0;
                    for (int q = 0; q < brows; q++)
                        bv += (double)b[q * cols + c];
                    bv /= brows;
                }
                d[r * cols + c] = (float)((double)t[r * cols + c] - bv);
            }
        }
        for (int k = 0; k < rows * cols; k++)
            checksum += (double)t[k];
        const int64_t sh[2] = {rows, cols}, bsh[2] = {brows, cols};
        const int nd = tw[i].cols ? 2 : 1;
        st_writer_add(&tuned, tw[i].name, "F32", nd, sh, t, sizeof(float) * (size_t)(rows * cols));
        st_writer_add(&base, tw[i].name, "F32", nd, bsh, b, sizeof(float) * (size_t)(brows * cols));
        st_writer_add(&diff, tw[i].name, "F32", nd, sh, d, sizeof(float) * (size_t)(rows * cols));
        if (i == 3) d[0] += 0.5f; /* a corrupted copy */
        st_writer_add(&bad, tw[i].name, "F32", nd, sh, d, sizeof(float) * (size_t)(rows * cols));
        free(d);
    }
    json_object *cl = llama_config(LV, 1, 100), *cb = llama_config(LV_BASE, 0, 0);
    char *dt = write_folder("llama_tuned", &tuned, cl);
    char *db = write_folder("llama_base", &base, cb);
    char *dd = write_folder("llama_wdiff", &diff, cl);
    char *dbad = write_folder("llama_wdiff_bad", &bad, cl);
    char p[1400], sum[64];
    snprintf(sum, sizeof sum, "%.6f", checksum);
    snprintf(p, sizeof p, "%s/checksum_psum.txt", dd);
    write_text(p, sum);
    snprintf(p, sizeof p, "%s/checksum_psum.txt", dbad);
    write_text(p, sum);

    /* recover */
    char out[1400];
    snprintf(out, sizeof out, "%s/llama_recovered.gguf", g_tmp);
    loom_model *m = archs_load(e, dd);
    CHECK(m != NULL, "weight diff: the diff does not load");
    loom_status st = m ? loom_model_save_weight_diff(m, db, out, LOOM_TYPE_F32) : LOOM_ERR_IO;
    CHECK(st == LOOM_OK, "weight diff: %s", loom_engine_last_error(e));
    printf("weight diff: recovered %s (%s)\n", st == LOOM_OK ? "ok" : "FAIL",
           st == LOOM_OK ? out : loom_engine_last_error(e));
    loom_model_free(m);
    m = archs_load(e, dbad);
    snprintf(p, sizeof p, "%s/llama_bad.gguf", g_tmp);
    st = m ? loom_model_save_weight_diff(m, db, p, LOOM_TYPE_F32) : LOOM_ERR_IO;
    CHECK(st == LOOM_ERR_FORMAT && strstr(loom_engine_last_error(e), "integrity"),
          "weight diff: a corrupted diff must fail the checksum (got %d: %s)", st, loom_engine_last_error(e));
    printf("weight diff: corrupted diff refused: %s\n", loom_engine_last_error(e));
    loom_model_free(m);

    /* the recovered weights and logits equal the tuned model's */
    int32_t ids[24];
    for (int i = 0; i < 24; i++)
        ids[i] = (int32_t)((i * 7 + 3) % LV_BASE);
    int64_t nv = 0;
    float *a = run(e, out, ids, 24, NULL, 0, &nv, NULL, 0);
    float *b = run(e, dt, ids, 24, NULL, 0, &nv, NULL, 0);
    compare("weight diff: recovered model == tuned model (logits)", a, b, 24 * (size_t)nv, 1e-5);
    free(a);
    free(b);

    /* the LLaMA variant without landmarks == the llama plugin on the same weights */
    json_object *cf = llama_config(LV, 1, 100);
    json_object_object_add(cf, "lm_cache", json_object_new_string("none"));
    char *dfull = write_folder("llama_lm_full", &tuned, cf);
    json_object *cp = llama_config(LV, 0, 0);
    char *dplain = write_folder("llama_plain", &tuned, cp);
    char arch[64] = "";
    float *lf = run(e, dfull, ids, 24, NULL, 0, &nv, arch, sizeof arch);
    CHECK(!lf || !strcmp(arch, "landmark"), "the landmark LLaMA ran on plugin '%s'", arch);
    float *pl = run(e, dplain, ids, 24, NULL, 0, &nv, arch, sizeof arch);
    printf("plain LLaMA checkpoint runs on plugin '%s'\n", arch);
    compare("landmark LLaMA, no landmark in the input == llama plugin", lf, pl, 24 * (size_t)nv, 1e-4);

    /* retrieval with top-k >= blocks == full pass with the landmarks (F = 3) */
    int32_t stream[32];
    size_t where[24], k = 0;
    for (int i = 0; i < 24; i++) {
        where[i] = k;
        stream[k++] = ids[i];
        if ((i + 1) % 3 == 0) stream[k++] = LV - 1;
    }
    float *full = run(e, dfull, stream, k, NULL, 0, &nv, NULL, 0);
    float *ret = run(e, dt, ids, 24, NULL, 0, &nv, NULL, 0); /* tuned: cache mem, top-k 100 */
    if (full && ret) {
        /* the LLaMA variant samples after a completed block from the landmark's logits */
        float *sel = malloc(24 * (size_t)nv * sizeof(float));
        for (int i = 0; i < 24; i++) {
            const size_t row = (i + 1) % 3 == 0 ? where[i] + 1 : where[i];
            memcpy(sel + (size_t)i * (size_t)nv, full + row * (size_t)nv, (size_t)nv * sizeof(float));
        }
        compare("landmark LLaMA: retrieval, top-k >= blocks == full pass", ret, sel, 24 * (size_t)nv, 1e-4);
        free(sel);
    } else {
        CHECK(0, "landmark LLaMA runs failed");
    }
    free(full);
    free(ret);
    free(lf);
    free(pl);
    for (int i = 0; i < nt; i++) {
        free(tuned_v[i]);
        free(base_v[i]);
    }
    json_object_put(cl);
    json_object_put(cb);
    json_object_put(cf);
    json_object_put(cp);
    st_writer_free(&tuned);
    st_writer_free(&base);
    st_writer_free(&diff);
    st_writer_free(&bad);
    free(dt);
    free(db);
    free(dd);
    free(dbad);
    free(dfull);
    free(dplain);
}

/* ---------------------------------------------------------------------------------------- */
/* Output types: q8_0 and f32 round trips                                                     */

static int read_at(const char *path, uint64_t offset, void *buf, size_t n) {
    FILE *f = fopen(path, "rb");
    int ok = f && fseek(f, (long)offset, SEEK_SET) == 0 && fread(buf, 1, n, f) == n;
    if (f) fclose(f);
    return ok;
}

/* llama.cpp's quantize_row_q8_0_ref: d = max|x| / 127 (stored as fp16), q = round(x / d). */
static void ref_q8_0(const float *x, uint8_t *out, size_t n) {
    for (size_t b = 0; b < n / 32; b++, x += 32, out += 34) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        const uint16_t h = f32_to_f16(d);
        out[0] = (uint8_t)(h & 0xff);
        out[1] = (uint8_t)(h >> 8);
        for (int i = 0; i < 32; i++)
            out[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

static void convert_types(loom_engine *e) {
    llama_w tw[64];
    int nt = 0;
    llama_tensors(tw, &nt, LV);
    st_writer w = {0};
    float *vals[64];
    for (int i = 0; i < nt; i++) {
        const int rows = tw[i].rows, cols = tw[i].cols ? tw[i].cols : 1;
        vals[i] = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int k = 0; k < rows * cols; k++)
            vals[i][k] = tw[i].cols ? 0.4f * frand() : 1.0f + 0.2f * frand();
        const int64_t sh[2] = {rows, cols};
        st_writer_add(&w, tw[i].name, "F32", tw[i].cols ? 2 : 1, sh, vals[i], sizeof(float) * (size_t)(rows * cols));
    }
    json_object *cfg = llama_config(LV, 0, 0);
    char *dir = write_folder("llama_types", &w, cfg);
    char q8[1400], f32[1400], bad[1400];
    snprintf(q8, sizeof q8, "%s/llama_types.q8_0.gguf", g_tmp);
    snprintf(f32, sizeof f32, "%s/llama_types.f32.gguf", g_tmp);
    snprintf(bad, sizeof bad, "%s/llama_types.bad", g_tmp);
    loom_model *m = archs_load(e, dir);
    loom_status st = m ? loom_model_save(m, q8, LOOM_TYPE_Q8_0) : LOOM_ERR_IO;
    CHECK(st == LOOM_OK, "save q8_0: %s", loom_engine_last_error(e));
    st = m ? loom_model_save(m, bad, LOOM_TYPE_Q4_K) : LOOM_ERR_IO;
    CHECK(st == LOOM_ERR_INVALID_ARGUMENT && strstr(loom_engine_last_error(e), "not supported"),
          "save q4_k must be refused (got %d: %s)", st, loom_engine_last_error(e));
    st = m ? loom_model_save_hf(m, bad) : LOOM_ERR_IO;
    CHECK(st == LOOM_ERR_UNSUPPORTED, "save hf of a safetensors checkpoint must be refused (got %d)", st);
    printf("convert: q4_k refused; hf export of a non-GGUF model refused: %s\n", loom_engine_last_error(e));
    loom_model_free(m);

    /* q8_0: weight matrices quantized exactly as llama.cpp's reference, norms kept in F32;
     * then --type f32: every tensor dequantized (d * q) */
    loom_model *mq = archs_load(e, q8);
    st = mq ? loom_model_save(mq, f32, LOOM_TYPE_F32) : LOOM_ERR_IO;
    CHECK(st == LOOM_OK, "save f32 from q8_0: %s", loom_engine_last_error(e));
    loom_model *mf = st == LOOM_OK ? archs_load(e, f32) : NULL;
    int n_q8 = 0, n_same = 0, n_checked = 0;
    for (int i = 0; mq && mf && i < nt; i++) {
        loom_tensor_desc dq = {.struct_size = sizeof dq}, df = {.struct_size = sizeof df};
        for (uint32_t k = 0; loom_model_tensor_at(mq, k, &dq) == LOOM_OK && strcmp(dq.name, tw[i].name); k++) {
        }
        for (uint32_t k = 0; loom_model_tensor_at(mf, k, &df) == LOOM_OK && strcmp(df.name, tw[i].name); k++) {
        }
        if (!dq.name || !df.name || strcmp(dq.name, tw[i].name) || strcmp(df.name, tw[i].name)) {
            CHECK(0, "%s missing after conversion", tw[i].name);
            continue;
        }
        const size_t n = (size_t)tw[i].rows * (size_t)(tw[i].cols ? tw[i].cols : 1);
        /* rows that are not whole blocks (down_proj: 48 columns) stay F32 */
        const uint32_t want = tw[i].cols && tw[i].cols % 32 == 0 ? LOOM_TYPE_Q8_0 : LOOM_TYPE_F32;
        CHECK(dq.type == want && df.type == LOOM_TYPE_F32, "%s: types %s, %s", tw[i].name, loom_type_name(dq.type),
              loom_type_name(df.type));
        uint8_t *got = malloc(dq.bytes ? (size_t)dq.bytes : 1), *ref = malloc(n / 32 * 34 + 1);
        float *back = malloc(n * sizeof(float)), *deq = malloc(n * sizeof(float));
        const int ok_read = read_at(q8, dq.file_offset, got, (size_t)dq.bytes) && df.bytes == n * sizeof(float) &&
                            read_at(f32, df.file_offset, back, (size_t)df.bytes);
        if (dq.type == LOOM_TYPE_Q8_0) {
            ref_q8_0(vals[i], ref, n);
            for (size_t b = 0; b < n / 32; b++) {
                const float d = f16_to_f32((uint16_t)(ref[b * 34] | ref[b * 34 + 1] << 8));
                for (int k = 0; k < 32; k++)
                    deq[b * 32 + (size_t)k] = d * (float)(int8_t)ref[b * 34 + 2 + (size_t)k];
            }
            n_q8++;
            const int same = ok_read && dq.bytes == n / 32 * 34 && !memcmp(got, ref, n / 32 * 34);
            CHECK(same, "%s: q8_0 blocks differ from the reference quantizer", tw[i].name);
            n_same += same;
        } else {
            memcpy(deq, vals[i], n * sizeof(float));
            CHECK(ok_read && !memcmp(got, vals[i], n * sizeof(float)), "%s: F32 values changed", tw[i].name);
        }
        CHECK(ok_read && !memcmp(back, deq, n * sizeof(float)), "%s: f32 values are not the dequantized q8_0",
              tw[i].name);
        n_checked++;
        free(got);
        free(ref);
        free(back);
        free(deq);
    }
    printf("convert --type q8_0: %d of %d weight matrices equal llama.cpp's reference Q8_0, the rest F32; --type f32: "
           "%d tensors dequantized exactly\n",
           n_same, n_q8, n_checked);
    CHECK(n_checked == nt && n_q8 > 0, "checked %d of %d tensors", n_checked, nt);
    loom_model_free(mq);
    loom_model_free(mf);
    for (int i = 0; i < nt; i++)
        free(vals[i]);
    json_object_put(cfg);
    st_writer_free(&w);
    free(dir);
}

int main(void) {
    const char *fixtures = archs_fixture_dir();
    loom_log_set_callback(NULL, NULL, LOOM_LOG_ERROR);
    g_tmp = make_temp_dir("archs-conv");
    /* Converted f32 weights must give bit-identical logits: a property of the reference
     * backend, so LOOM_TEST_BACKEND is not followed here. */
    unsetenv("LOOM_TEST_BACKEND");
    loom_engine *e = archs_engine();
    if (!e || !g_tmp) return 1;
    if (fixtures) convert_fixtures(e, fixtures);
    weight_diff(e);
    convert_types(e);
    loom_engine_free(e);
    if (!getenv("LOOM_KEEP_TMP")) rm_tree(g_tmp);
    free(g_tmp);
    if (g_failures) fprintf(stderr, "%d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}

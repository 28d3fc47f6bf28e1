/*
 * test_safetensors.c - safetensors images built by hand (single, padded header, __metadata__),
 * a sharded checkpoint with its index, a Hugging Face folder (config.json flattened, tokenizer
 * paths recorded), and a real fixture folder from ../shared (facts read from its JSON header).
 */
#include "internal.h"

#include "bytes.h"
#include "check.h"

#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void path_in(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", tmpdir, name); }

static void test_single(void) {
    /* a: F32 shape [2, 3] (rows, cols) at [0, 24); b: BF16 [4] at [24, 32); z: empty I32 [0, 5] */
    const char *h = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"z\":{\"dtype\":\"I32\",\"shape\":[0,5],\"data_offsets\":[32,32]}}";
    for (size_t pad = 0; pad <= 8; pad += 8) {
        bytes img = st_image(h, pad, 32);
        size_t hlen = img.p[0] | (size_t)img.p[1] << 8;
        char err[256] = "";
        loom_file *f = NULL;
        CHECK_MSG(loom_file_open_memory(img.p, img.n, "safetensors", &f, err, sizeof err) == LOOM_OK, "%s", err);
        if (f) {
            CHECK(!strcmp(loom_file_format(f), "safetensors"));
            CHECK(loom_file_tensor_count(f) == 3);
            const loom_file_tensor *a = loom_file_tensor_find(f, "a");
            CHECK(a && a->type == LOOM_TYPE_F32 && a->n_dims == 2 && a->ne[0] == 3 && a->ne[1] == 2 && a->ne[2] == 1);
            CHECK(a && a->size == 24 && a->offset == 8 + hlen && a->data == img.p + 8 + hlen);
            const loom_file_tensor *b = loom_file_tensor_find(f, "b");
            CHECK(b && b->type == LOOM_TYPE_BF16 && b->n_dims == 1 && b->ne[0] == 4 && b->offset == 8 + hlen + 24);
            CHECK(b && ((const uint8_t *)b->data)[0] == 24); /* the buffer holds 0, 1, 2, ... */
            const loom_file_tensor *z = loom_file_tensor_find(f, "z");
            CHECK(z && z->size == 0 && z->ne[0] == 5 && z->ne[1] == 0 && z->data != NULL);
            const char *s;
            CHECK(loom_file_meta_string(f, "safetensors.format", &s) == LOOM_OK && !strcmp(s, "pt"));
            CHECK(loom_file_meta_string(f, "safetensors.note", &s) == LOOM_OK && !strcmp(s, "x"));
            CHECK(loom_file_meta_count(f) == 2);
            loom_file_close(f);
        }
        bb_free(&img);
    }
}

static void write_shard(const char *name, const char *header, size_t buf_len) {
    char p[512];
    path_in(p, sizeof p, name);
    bytes img = st_image(header, 8, buf_len);
    CHECK(write_file(p, img.p, img.n) == 0);
    bb_free(&img);
}

static void write_text(const char *name, const char *text) {
    char p[512];
    path_in(p, sizeof p, name);
    CHECK(write_file(p, text, strlen(text)) == 0);
}

static void test_sharded_folder(void) {
    write_shard("model-00001-of-00002.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\"},"
                "\"model.embed_tokens.weight\":{\"dtype\":\"F16\",\"shape\":[10,4],\"data_offsets\":[0,80]},"
                "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[80,96]}}",
                96);
    write_shard("model-00002-of-00002.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\"},"
                "\"lm_head.weight\":{\"dtype\":\"BF16\",\"shape\":[10,4],\"data_offsets\":[0,80]}}",
                80);
    write_text("model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":176},\"weight_map\":{"
               "\"lm_head.weight\":\"model-00002-of-00002.safetensors\","
               "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\","
               "\"model.norm.weight\":\"model-00001-of-00002.safetensors\"}}");
    write_text("config.json",
               "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4,\"rms_norm_eps\":1e-05,"
               "\"tie_word_embeddings\":false,\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0},"
               "\"eos_token_id\":[2,7],\"mixed\":[1,\"a\"],\"ratios\":[1,0.5],\"nothing\":null,"
               "\"layers\":[{\"w\":1},{\"w\":2}],\"flags\":[true,false],\"empty\":[]}");
    write_text("tokenizer.json", "{}");

    char err[256] = "";
    loom_file *f = NULL;
    CHECK_MSG(loom_file_open(tmpdir, &f, err, sizeof err) == LOOM_OK, "%s", err);
    if (f) {
        CHECK(!strcmp(loom_file_format(f), "safetensors"));
        CHECK(loom_file_tensor_count(f) == 3);
        const loom_file_tensor *t = loom_file_tensor_find(f, "lm_head.weight");
        CHECK(t && t->type == LOOM_TYPE_BF16 && t->ne[0] == 4 && t->ne[1] == 10 && t->size == 80);
        t = loom_file_tensor_find(f, "model.norm.weight");
        CHECK(t && t->type == LOOM_TYPE_F32 && ((const uint8_t *)t->data)[0] == 80);
        int64_t iv;
        double dv;
        const char *sv;
        CHECK(loom_file_meta_int(f, "config.hidden_size", &iv) == LOOM_OK && iv == 4);
        CHECK(loom_file_meta_float(f, "config.rms_norm_eps", &dv) == LOOM_OK && dv == 1e-05);
        CHECK(loom_file_meta_int(f, "config.tie_word_embeddings", &iv) == LOOM_OK && iv == 0);
        CHECK(loom_file_meta_string(f, "config.rope_scaling.type", &sv) == LOOM_OK && !strcmp(sv, "linear"));
        CHECK(loom_file_meta_float(f, "config.rope_scaling.factor", &dv) == LOOM_OK && dv == 2.0);
        CHECK(loom_file_meta_find(f, "config.nothing") == NULL);
        const loom_meta *m = loom_file_meta_find(f, "config.architectures");
        CHECK(m && m->elem_type == LOOM_META_STRING && m->count == 1 &&
              !strcmp(((char **)m->v.arr)[0], "LlamaForCausalLM"));
        m = loom_file_meta_find(f, "config.eos_token_id");
        CHECK(m && m->elem_type == LOOM_META_I64 && m->count == 2 && ((int64_t *)m->v.arr)[1] == 7);
        m = loom_file_meta_find(f, "config.ratios");
        CHECK(m && m->elem_type == LOOM_META_F64 && m->count == 2 && ((double *)m->v.arr)[1] == 0.5);
        m = loom_file_meta_find(f, "config.flags");
        CHECK(m && m->elem_type == LOOM_META_BOOL && m->count == 2 && ((bool *)m->v.arr)[0]);
        m = loom_file_meta_find(f, "config.empty");
        CHECK(m && m->type == LOOM_META_ARRAY && m->count == 0);
        CHECK(loom_file_meta_int(f, "config.layers.1.w", &iv) == LOOM_OK && iv == 2);
        CHECK(loom_file_meta_int(f, "config.mixed.0", &iv) == LOOM_OK && iv == 1);
        CHECK(loom_file_meta_string(f, "config.mixed.1", &sv) == LOOM_OK && !strcmp(sv, "a"));
        CHECK(loom_file_meta_int(f, "safetensors.index.total_size", &iv) == LOOM_OK && iv == 176);
        CHECK(loom_file_meta_string(f, "safetensors.format", &sv) == LOOM_OK && !strcmp(sv, "pt"));
        char want[512];
        path_in(want, sizeof want, "tokenizer.json");
        CHECK(loom_file_meta_string(f, "hf.tokenizer_json", &sv) == LOOM_OK && !strcmp(sv, want));
        CHECK(loom_file_meta_find(f, "hf.tokenizer_config_json") == NULL);
        CHECK(loom_file_size(f) > 176);
        loom_file_close(f);
    }
    /* the index path itself opens the same checkpoint */
    char p[512];
    path_in(p, sizeof p, "model.safetensors.index.json");
    CHECK_MSG(loom_file_open(p, &f, err, sizeof err) == LOOM_OK, "%s", err);
    if (f) CHECK(loom_file_tensor_count(f) == 3 && loom_file_meta_find(f, "config.hidden_size"));
    loom_file_close(f);
    /* a single shard on its own */
    path_in(p, sizeof p, "model-00002-of-00002.safetensors");
    CHECK_MSG(loom_file_open(p, &f, err, sizeof err) == LOOM_OK, "%s", err);
    if (f) CHECK(loom_file_tensor_count(f) == 1 && !loom_file_meta_find(f, "config.hidden_size"));
    loom_file_close(f);

    const char *names[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model.safetensors.index.json", "config.json", "tokenizer.json"};
    for (size_t i = 0; i < 5; i++) {
        path_in(p, sizeof p, names[i]);
        unlink(p);
    }
}

/* The architecture fixtures in ../shared: model.safetensors beside config.json and
 * golden.safetensors. Facts below come from the file's JSON header (read with Python's json). */
static void test_shared_fixture(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/archs/denseformer_exp_k1p1", LOOM_SHARED_DIR);
    if (access(dir, R_OK) != 0) {
        fprintf(stderr, "note: %s absent, fixture part skipped\n", dir);
        return;
    }
    char err[512] = "";
    loom_file *f = NULL;
    CHECK_MSG(loom_file_open(dir, &f, err, sizeof err) == LOOM_OK, "%s", err);
    if (!f) return;
    CHECK(loom_file_tensor_count(f) == 45);
    const loom_file_tensor *t = loom_file_tensor_find(f, "transformer.wte.weight");
    CHECK(t && t->type == LOOM_TYPE_F16 && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 256 && t->size == 32768);
    CHECK(t && t->offset == 8 + 4344);
    t = loom_file_tensor_find(f, "transformer.h.0.0.ln_1.weight");
    CHECK(t && t->ne[0] == 64 && t->n_dims == 1 && t->offset == 8 + 4344 + 32768);
    const char *s;
    CHECK(loom_file_meta_string(f, "config.arch", &s) == LOOM_OK && !strcmp(s, "denseformer"));
    CHECK(loom_file_meta_string(f, "safetensors.format", &s) == LOOM_OK && !strcmp(s, "pt"));
    loom_file_close(f);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loom_test_st_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_single();
    test_sharded_folder();
    test_shared_fixture();
    rmdir(tmpdir);
    CHECK_DONE();
}

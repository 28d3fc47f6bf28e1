/*
 * make_random_model.c - write a random-weight Llama GGUF of a real model's shape with Loom's own
 * GGUF writer, for benchmarks (llama.cpp loads the same file).
 *
 *   loom-make-random-model --shape smollm2|tinyllama --type f32|f16|q8_0|q4_0|q4_1 -o FILE [--seed N]
 *
 * Shapes: SmolLM2-135M (576 wide, 30 layers, 9 heads / 3 KV heads, FFN 1536, vocabulary 49152,
 * tied embeddings) and TinyLlama-1.1B (2048 wide, 22 layers, 32 / 4 heads, FFN 5632, vocabulary
 * 32000, separate output). Every matrix (embeddings and output included) gets the requested
 * type, norm gains are F32 ones; weights are uniform in [-a, a] with a = sqrt(3) * 0.02 (std
 * 0.02). A SentencePiece-style vocabulary (<unk>, <s>, </s>, the 256 byte tokens, then
 * placeholders) makes the file loadable by tokenizer-checking loaders; benchmarks use token ids.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    const char *name;
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    double rope_base;
    int tied;
} shape;

static const shape SHAPES[] = {
    {"smollm2", 576, 30, 9, 3, 1536, 49152, 8192, 100000.0, 1},
    {"tinyllama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0, 0},
};

static uint64_t g_rng;
static float urand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

static int set_u32(loom_gguf_writer *w, const char *key, uint32_t v) {
    loom_meta m = {0};
    m.key = (char *)(uintptr_t)key;
    m.type = LOOM_META_U32;
    m.v.u64 = v;
    return loom_gguf_writer_set_meta(w, &m) == LOOM_OK;
}
static int set_f32(loom_gguf_writer *w, const char *key, double v) {
    loom_meta m = {0};
    m.key = (char *)(uintptr_t)key;
    m.type = LOOM_META_F32;
    m.v.f64 = v;
    return loom_gguf_writer_set_meta(w, &m) == LOOM_OK;
}
static int set_str(loom_gguf_writer *w, const char *key, const char *v) {
    loom_meta m = {0};
    m.key = (char *)(uintptr_t)key;
    m.type = LOOM_META_STRING;
    m.v.str = (char *)(uintptr_t)v;
    return loom_gguf_writer_set_meta(w, &m) == LOOM_OK;
}
static int set_arr(loom_gguf_writer *w, const char *key, uint32_t elem, uint64_t count, void *data) {
    loom_meta m = {0};
    m.key = (char *)(uintptr_t)key;
    m.type = LOOM_META_ARRAY;
    m.elem_type = elem;
    m.count = count;
    m.v.arr = data;
    return loom_gguf_writer_set_meta(w, &m) == LOOM_OK;
}

/* A [rows, cols] matrix of `type` with random values (or ones for gains). */
static int add_matrix(loom_gguf_writer *w, const char *name, uint32_t type, int64_t cols, int64_t rows, int ones) {
    uint64_t rb = loom_type_row_bytes(type, cols);
    if (!rb) {
        fprintf(stderr, "%s: %lld columns do not fit the type\n", name, (long long)cols);
        return 0;
    }
    uint8_t *data = malloc((size_t)(rb * (uint64_t)rows));
    float *row = malloc(sizeof(float) * (size_t)cols);
    if (!data || !row) {
        free(data);
        free(row);
        fprintf(stderr, "out of memory\n");
        return 0;
    }
    const float a = sqrtf(3.0f) * 0.02f;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) row[k] = ones ? 1.0f : urand() * a;
        if (loom_quantize_row(type, row, data + (uint64_t)r * rb, cols) != LOOM_OK) {
            fprintf(stderr, "%s: cannot convert to type %u\n", name, type);
            free(data);
            free(row);
            return 0;
        }
    }
    int64_t ne[2] = {cols, rows};
    loom_status st = loom_gguf_writer_add_tensor(w, name, type, rows > 1 ? 2 : 1, ne, data, rb * (uint64_t)rows);
    free(data);
    free(row);
    return st == LOOM_OK;
}

static void usage(void) {
    fprintf(stderr, "usage: loom-make-random-model --shape smollm2|tinyllama --type f32|f16|q8_0|q4_0|q4_1 -o FILE "
                    "[--seed N]\n");
}

int main(int argc, char **argv) {
    const char *shape_name = NULL, *type_name = NULL, *out = NULL;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--shape")) shape_name = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--type")) type_name = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "-o")) out = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--seed")) seed = strtoull(argv[++i], NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    if (!shape_name || !type_name || !out) {
        usage();
        return 2;
    }
    const shape *S = NULL;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++)
        if (!strcmp(SHAPES[i].name, shape_name)) S = &SHAPES[i];
    static const struct {
        const char *name;
        uint32_t type;
        uint32_t ftype; /* general.file_type as llama.cpp numbers it */
    } TYPES[] = {{"f32", LOOM_TYPE_F32, 0}, {"f16", LOOM_TYPE_F16, 1}, {"q8_0", LOOM_TYPE_Q8_0, 7},
                 {"q4_0", LOOM_TYPE_Q4_0, 2}, {"q4_1", LOOM_TYPE_Q4_1, 3}};
    int ti = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(TYPES[i].name, type_name)) ti = i;
    if (!S || ti < 0) {
        usage();
        return 2;
    }
    const uint32_t type = TYPES[ti].type;
    g_rng = seed * 0x9E3779B97F4A7C15ull + 1;

    loom_gguf_writer *w = NULL;
    if (loom_gguf_writer_create(&w) != LOOM_OK) return 1;
    char name[160];
    snprintf(name, sizeof name, "random %s-shaped %s", S->name, type_name);
    int ok = set_str(w, "general.architecture", "llama") && set_str(w, "general.name", name) &&
             set_u32(w, "general.file_type", TYPES[ti].ftype) && set_u32(w, "llama.context_length", (uint32_t)S->n_ctx) &&
             set_u32(w, "llama.embedding_length", (uint32_t)S->n_embd) &&
             set_u32(w, "llama.block_count", (uint32_t)S->n_layer) &&
             set_u32(w, "llama.feed_forward_length", (uint32_t)S->n_ff) &&
             set_u32(w, "llama.attention.head_count", (uint32_t)S->n_head) &&
             set_u32(w, "llama.attention.head_count_kv", (uint32_t)S->n_head_kv) &&
             set_u32(w, "llama.rope.dimension_count", (uint32_t)(S->n_embd / S->n_head)) &&
             set_u32(w, "llama.vocab_size", (uint32_t)S->n_vocab) && set_f32(w, "llama.rope.freq_base", S->rope_base) &&
             set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5) && set_str(w, "tokenizer.ggml.model", "llama") &&
             set_u32(w, "tokenizer.ggml.bos_token_id", 1) && set_u32(w, "tokenizer.ggml.eos_token_id", 2) &&
             set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    /* vocabulary */
    int64_t nv = S->n_vocab;
    char **tokens = calloc((size_t)nv, sizeof *tokens);
    float *scores = calloc((size_t)nv, sizeof *scores);
    int32_t *types = calloc((size_t)nv, sizeof *types);
    char *pool = malloc((size_t)nv * 32);
    if (!tokens || !scores || !types || !pool) ok = 0;
    for (int64_t i = 0; ok && i < nv; i++) {
        char *t = pool + i * 32;
        if (i == 0) snprintf(t, 32, "<unk>");
        else if (i == 1) snprintf(t, 32, "<s>");
        else if (i == 2) snprintf(t, 32, "</s>");
        else if (i < 3 + 256) snprintf(t, 32, "<0x%02X>", (unsigned)(i - 3));
        else snprintf(t, 32, "\xe2\x96\x81t%lld", (long long)i); /* "▁t<i>" */
        tokens[i] = t;
        scores[i] = i < 259 ? 0.0f : -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1; /* unknown, control, byte, normal */
    }
    ok = ok && set_arr(w, "tokenizer.ggml.tokens", LOOM_META_STRING, (uint64_t)nv, tokens) &&
         set_arr(w, "tokenizer.ggml.scores", LOOM_META_F32, (uint64_t)nv, scores) &&
         set_arr(w, "tokenizer.ggml.token_type", LOOM_META_I32, (uint64_t)nv, types);
    free(tokens);
    free(scores);
    free(types);
    free(pool);
    /* weights */
    const int64_t hd = S->n_embd / S->n_head, kv = hd * S->n_head_kv;
    ok = ok && add_matrix(w, "token_embd.weight", type, S->n_embd, S->n_vocab, 0);
    for (int64_t l = 0; ok && l < S->n_layer; l++) {
        char n[96];
#define BLK(suffix) (snprintf(n, sizeof n, "blk.%lld." suffix, (long long)l), n)
        ok = add_matrix(w, BLK("attn_norm.weight"), LOOM_TYPE_F32, S->n_embd, 1, 1) &&
             add_matrix(w, BLK("attn_q.weight"), type, S->n_embd, S->n_embd, 0) &&
             add_matrix(w, BLK("attn_k.weight"), type, S->n_embd, kv, 0) &&
             add_matrix(w, BLK("attn_v.weight"), type, S->n_embd, kv, 0) &&
             add_matrix(w, BLK("attn_output.weight"), type, S->n_embd, S->n_embd, 0) &&
             add_matrix(w, BLK("ffn_norm.weight"), LOOM_TYPE_F32, S->n_embd, 1, 1) &&
             add_matrix(w, BLK("ffn_gate.weight"), type, S->n_embd, S->n_ff, 0) &&
             add_matrix(w, BLK("ffn_up.weight"), type, S->n_embd, S->n_ff, 0) &&
             add_matrix(w, BLK("ffn_down.weight"), type, S->n_ff, S->n_embd, 0);
#undef BLK
    }
    ok = ok && add_matrix(w, "output_norm.weight", LOOM_TYPE_F32, S->n_embd, 1, 1);
    if (ok && !S->tied) ok = add_matrix(w, "output.weight", type, S->n_embd, S->n_vocab, 0);
    char err[512] = "";
    if (ok && loom_gguf_writer_write(w, out, err, sizeof err) != LOOM_OK) {
        fprintf(stderr, "cannot write %s: %s\n", out, err);
        ok = 0;
    }
    loom_gguf_writer_free(w);
    if (!ok) return 1;
    printf("%s: %s\n", out, name);
    return 0;
}

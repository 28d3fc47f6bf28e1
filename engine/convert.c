/*
 * convert.c - writing a loaded model as a GGUF model file (loom_model_save), and recovering
 * weights published as a difference to a base model (loom_model_save_weight_diff: landmark
 * attention's LLaMA-7B weight diff).
 *
 * The written file holds every tensor of the source file, in its stored type or converted as
 * llama.cpp's quantize tool converts (F32: every float or quantized tensor dequantized, as
 * ALL_F32; Q8_0: the weight matrices llama.cpp quantizes, with the same reference quantizer, as
 * MOSTLY_Q8_0), the source metadata except the flattened "config.*" keys of a checkpoint's
 * config.json and the "hf.*" side-file paths, and the canonical keys that the architecture
 * plugin exports (general.architecture, "<arch>.*"): an official checkpoint becomes a
 * self-describing file that the same plugin opens from its own keys.
 */
#include "internal.h"

#include <json-c/json.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ============================================================================================ */
/* Metadata                                                                                     */
/* ============================================================================================ */

typedef struct meta_sink {
    loom_gguf_writer *w;
    loom_status st;
    char bad_key[128];
} meta_sink;

static int32_t on_meta(const char *key, uint32_t type, uint32_t elem_type, uint64_t count, const void *value,
                       void *user_data) {
    meta_sink *s = user_data;
    loom_meta m;
    memset(&m, 0, sizeof m);
    m.key = (char *)(uintptr_t)key; /* copied by the writer */
    m.type = type;
    switch (type) {
    case LOOM_META_U8: m.v.u64 = *(const uint8_t *)value; break;
    case LOOM_META_U16: m.v.u64 = *(const uint16_t *)value; break;
    case LOOM_META_U32: m.v.u64 = *(const uint32_t *)value; break;
    case LOOM_META_U64: m.v.u64 = *(const uint64_t *)value; break;
    case LOOM_META_I8: m.v.i64 = *(const int8_t *)value; break;
    case LOOM_META_I16: m.v.i64 = *(const int16_t *)value; break;
    case LOOM_META_I32: m.v.i64 = *(const int32_t *)value; break;
    case LOOM_META_I64: m.v.i64 = *(const int64_t *)value; break;
    case LOOM_META_F32: m.v.f64 = (double)*(const float *)value; break;
    case LOOM_META_F64: m.v.f64 = *(const double *)value; break;
    case LOOM_META_BOOL: m.v.b = *(const bool *)value; break;
    case LOOM_META_STRING: m.v.str = (char *)(uintptr_t) * (const char *const *)value; break;
    case LOOM_META_ARRAY:
        m.elem_type = elem_type;
        m.count = count;
        m.v.arr = (void *)(uintptr_t)value;
        break;
    default: s->st = LOOM_ERR_PLUGIN; break;
    }
    if (s->st == LOOM_OK) s->st = loom_gguf_writer_set_meta(s->w, &m);
    if (s->st != LOOM_OK) {
        snprintf(s->bad_key, sizeof s->bad_key, "%s", key ? key : "(null)");
        return 1;
    }
    return 0;
}

static int skip_source_key(const char *key) {
    return !strncmp(key, "config.", 7) || !strncmp(key, "hf.", 3) || !strncmp(key, "safetensors.", 12) ||
           !strcmp(key, "general.alignment");
}

/* Source metadata first, then the plugin's canonical keys (which win). */
static loom_status write_meta(loom_model *model, loom_gguf_writer *w, char *err, size_t err_size) {
    const loom_file *file = loom_model_file(model);
    for (uint32_t i = 0; i < loom_file_meta_count(file); i++) {
        const loom_meta *m = loom_file_meta_at(file, i);
        if (skip_source_key(m->key)) continue;
        loom_status st = loom_gguf_writer_set_meta(w, m);
        if (st) return loom_err(err, err_size, st, "cannot copy metadata '%s'", m->key);
    }
    void *arch_model = NULL;
    const loom_arch_api *api = loom_model_arch(model, &arch_model);
    if (!api || !LOOM_HAS_MEMBER(api, loom_arch_api, export_metadata) || !api->export_metadata)
        return loom_err(err, err_size, LOOM_ERR_UNSUPPORTED,
                        "the architecture plugin of this model cannot export canonical metadata");
    meta_sink s = {w, LOOM_OK, ""};
    loom_status st = api->export_metadata(arch_model, on_meta, &s);
    if (st == LOOM_OK && s.st != LOOM_OK) st = s.st;
    if (st) return loom_err(err, err_size, st, "the plugin's metadata '%s' cannot be written", s.bad_key);
    return LOOM_OK;
}

/* The byte vocabulary (option convert.tokenizer = "bytes") for a model trained on raw bytes
 * without a tokenizer (the seed-architecture fixtures): a byte-level BPE ("gpt2") vocabulary of
 * 256 tokens, token b the GPT-2 bytes_to_unicode character of byte b, no merges, so that every
 * input byte is its own id and ids 0..255 are the bytes. Every token is normal (a control
 * token's text would be matched as special-token text); no BOS, EOS or merges are named. */
static loom_status write_byte_vocab(loom_model *model, loom_gguf_writer *w, char *err, size_t err_size) {
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(model, &info);
    if (info.tokenizer && *info.tokenizer)
        return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT,
                        "the model already has a tokenizer ('%s'); convert without a byte vocabulary to keep it",
                        info.tokenizer);
    const int64_t n_vocab = loom_model_n_vocab(model);
    if (n_vocab != 256)
        return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT,
                        "a byte vocabulary needs a model with exactly 256 token ids (one per byte); this model "
                        "has %lld",
                        (long long)n_vocab);
    char texts[256][4];
    const char *tokens[256];
    int32_t types[256];
    for (int b = 0; b < 256; b++) {
        size_t n = loom_tokenizer_byte_text((uint8_t)b, texts[b]);
        texts[b][n] = '\0';
        tokens[b] = texts[b];
        types[b] = 1; /* normal */
    }
    const struct {
        const char *key;
        uint32_t type, elem_type;
        uint64_t count;
        const void *value;
    } keys[] = {
        {"tokenizer.ggml.model", LOOM_META_STRING, 0, 0, "gpt2"},
        {"tokenizer.ggml.pre", LOOM_META_STRING, 0, 0, "default"},
        {"tokenizer.ggml.tokens", LOOM_META_ARRAY, LOOM_META_STRING, 256, tokens},
        {"tokenizer.ggml.token_type", LOOM_META_ARRAY, LOOM_META_I32, 256, types},
        {"tokenizer.ggml.merges", LOOM_META_ARRAY, LOOM_META_STRING, 0, NULL},
        {"tokenizer.ggml.add_bos_token", LOOM_META_BOOL, 0, 0, NULL},
        {"tokenizer.ggml.add_eos_token", LOOM_META_BOOL, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        loom_meta m;
        memset(&m, 0, sizeof m);
        m.key = (char *)(uintptr_t)keys[i].key;
        m.type = keys[i].type;
        if (m.type == LOOM_META_STRING) {
            m.v.str = (char *)(uintptr_t)keys[i].value;
        } else if (m.type == LOOM_META_ARRAY) {
            m.elem_type = keys[i].elem_type;
            m.count = keys[i].count;
            m.v.arr = (void *)(uintptr_t)keys[i].value;
        } else {
            m.v.b = false;
        }
        loom_status st = loom_gguf_writer_set_meta(w, &m);
        if (st) return loom_err(err, err_size, st, "cannot write metadata '%s'", keys[i].key);
    }
    return LOOM_OK;
}

/* The tokenizer the written file gets (option convert.tokenizer): the source's, or bytes. */
static loom_status write_tokenizer(loom_model *model, loom_gguf_writer *w, char *err, size_t err_size) {
    const char *which = loom_engine_option_str(loom_model_engine(model), "convert.tokenizer", "");
    if (!which || !*which) return LOOM_OK;
    if (!strcmp(which, "bytes")) return write_byte_vocab(model, w, err, err_size);
    return loom_err(err, err_size, LOOM_ERR_CONFIG, "option convert.tokenizer must be empty or \"bytes\", not '%s'",
                    which);
}

/* ============================================================================================ */
/* Tensors                                                                                      */
/* ============================================================================================ */

static int is_float_type(uint32_t t) {
    return t == LOOM_TYPE_F32 || t == LOOM_TYPE_F16 || t == LOOM_TYPE_BF16 || t == LOOM_TYPE_F64;
}

static uint64_t n_elements(const loom_file_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        n *= (uint64_t)t->ne[d];
    return n;
}

/* Values of a float tensor as F32 (caller frees). */
static float *to_f32(const loom_file_tensor *t) {
    const uint64_t n = n_elements(t);
    float *out = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!out) return NULL;
    if (t->type == LOOM_TYPE_F64) {
        const double *d = t->data;
        for (uint64_t i = 0; i < n; i++)
            out[i] = (float)d[i];
    } else if (t->type == LOOM_TYPE_F32) {
        memcpy(out, t->data, (size_t)n * sizeof(float));
    } else if (loom_dequantize_row(t->type, t->data, out, (int64_t)n) != LOOM_OK) {
        free(out);
        return NULL;
    }
    return out;
}

/* Add F32 values as `type` (F32 or F16). */
static loom_status add_f32(loom_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                           const float *v, uint64_t n) {
    if (type == LOOM_TYPE_F16) {
        uint16_t *h = malloc((size_t)(n ? n : 1) * 2);
        if (!h) return LOOM_ERR_OUT_OF_MEMORY;
        for (uint64_t i = 0; i < n; i++)
            h[i] = loom_fp32_to_fp16(v[i]);
        loom_status st = loom_gguf_writer_add_tensor(w, name, LOOM_TYPE_F16, n_dims, ne, h, n * 2);
        free(h);
        return st;
    }
    return loom_gguf_writer_add_tensor(w, name, LOOM_TYPE_F32, n_dims, ne, v, n * 4);
}

/*
 * Whether llama.cpp's quantize tool quantizes this tensor (llama-quant.cpp,
 * tensor_allows_quantization): 2-D or larger weight matrices, not norms, positional or
 * token-type embeddings, expert gates or small convolution / RWKV mixing weights. The token
 * embedding and the output projection are quantized (to Q8_0 too under MOSTLY_Q8_0).
 */
static int llama_cpp_quantizes(const loom_file_tensor *t) {
    static const char *const keep[] = {"_norm.weight",
                                       "ffn_gate_inp.weight",
                                       "altup",
                                       "laurel",
                                       "per_layer_model_proj",
                                       "ssm_conv1d",
                                       "shortconv.conv.weight",
                                       "time_mix_",
                                       "attn_rel_b.weight",
                                       "position_embd",
                                       "token_types.weight"};
    const size_t n = strlen(t->name);
    if (t->n_dims < 2 || n < 6 || strcmp(t->name + n - 6, "weight")) return 0;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strstr(t->name, keep[i])) return 0;
    return 1;
}

/* Whether the tensor holds real numbers Loom can read as F32 (floats and quantized blocks). */
static int is_real_type(uint32_t t) {
    const loom_type_traits *tr = loom_type_get_traits(t);
    return is_float_type(t) || (tr && tr->quantized && t != LOOM_TYPE_I4X2);
}

/* The type a tensor is written as (see loom_model_save). */
static uint32_t target_type(const loom_file_tensor *t, uint32_t type) {
    if (type == LOOM_SAVE_KEEP_TYPES || !is_real_type(t->type)) return t->type;
    if (type != LOOM_TYPE_Q8_0) return type;
    if (!llama_cpp_quantizes(t)) return t->type;
    return t->ne[0] % 32 == 0 ? LOOM_TYPE_Q8_0 : LOOM_TYPE_F32; /* rows that are not whole blocks */
}

static loom_status add_tensor(loom_gguf_writer *w, const loom_file_tensor *t, uint32_t type) {
    const uint32_t to = target_type(t, type);
    if (to == t->type) return loom_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
    float *v = to_f32(t);
    if (!v) return LOOM_ERR_OUT_OF_MEMORY;
    const uint64_t n = n_elements(t);
    loom_status st;
    if (to == LOOM_TYPE_Q8_0) {
        const uint64_t bytes = n / 32 * 34;
        void *q = malloc((size_t)(bytes ? bytes : 1));
        st = q ? loom_quantize_row(LOOM_TYPE_Q8_0, v, q, (int64_t)n) : LOOM_ERR_OUT_OF_MEMORY;
        if (st == LOOM_OK) st = loom_gguf_writer_add_tensor(w, t->name, LOOM_TYPE_Q8_0, t->n_dims, t->ne, q, bytes);
        free(q);
    } else {
        st = add_f32(w, t->name, to, t->n_dims, t->ne, v, n);
    }
    free(v);
    return st;
}

static loom_status check_type(loom_engine *engine, uint32_t type) {
    if (type != LOOM_SAVE_KEEP_TYPES && type != LOOM_TYPE_F32 && type != LOOM_TYPE_F16 && type != LOOM_TYPE_Q8_0)
        return loom_engine_set_error(engine, LOOM_ERR_INVALID_ARGUMENT,
                                     "save: output type %u is not supported (f32, f16, q8_0 or keep)", type);
    return LOOM_OK;
}

/* general.file_type as llama.cpp's quantize tool sets it (ALL_F32, MOSTLY_F16, MOSTLY_Q8_0). */
static loom_status set_file_type(loom_gguf_writer *w, uint32_t type) {
    if (type == LOOM_SAVE_KEEP_TYPES) return LOOM_OK;
    static char key[] = "general.file_type";
    loom_meta m;
    memset(&m, 0, sizeof m);
    m.key = key;
    m.type = LOOM_META_U32;
    m.v.u64 = type == LOOM_TYPE_F32 ? 0 : type == LOOM_TYPE_F16 ? 1 : 7;
    return loom_gguf_writer_set_meta(w, &m);
}

static loom_status finish(loom_engine *engine, loom_gguf_writer *w, const char *path) {
    char err[512] = "";
    loom_status st = loom_gguf_writer_write(w, path, err, sizeof err);
    loom_gguf_writer_free(w);
    if (st) return loom_engine_set_error(engine, st, "save: cannot write '%s': %s", path, err);
    return LOOM_OK;
}

loom_status loom_model_save(loom_model *model, const char *path, uint32_t type) {
    if (!model || !path) return LOOM_ERR_INVALID_ARGUMENT;
    loom_engine *engine = loom_model_engine(model);
    loom_status st = check_type(engine, type);
    if (st) return st;
    loom_gguf_writer *w = NULL;
    if ((st = loom_gguf_writer_create(&w))) return loom_engine_set_error(engine, st, "save: out of memory");
    char err[512] = "";
    if ((st = write_meta(model, w, err, sizeof err)) || (st = write_tokenizer(model, w, err, sizeof err))) {
        loom_gguf_writer_free(w);
        return loom_engine_set_error(engine, st, "save: %s", err);
    }
    if ((st = set_file_type(w, type))) {
        loom_gguf_writer_free(w);
        return loom_engine_set_error(engine, st, "save: cannot set general.file_type");
    }
    const loom_file *file = loom_model_file(model);
    for (uint32_t i = 0; i < loom_file_tensor_count(file); i++) {
        const loom_file_tensor *t = loom_file_tensor_at(file, i);
        if ((st = add_tensor(w, t, type))) {
            loom_gguf_writer_free(w);
            return loom_engine_set_error(engine, st, "save: tensor '%s' (%s)", t->name, loom_status_string(st));
        }
    }
    return finish(engine, w, path);
}

/* ============================================================================================ */
/* Weight differences                                                                           */
/* ============================================================================================ */

/* The checksum the official recover() compares against when the diff has no
 * checksum_psum.txt (the first released landmark weights). */
#define WDIFF_DEFAULT_CHECKSUM 49798.7656

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Folder of a model path (the path itself when it is a folder). */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (ends_with(path, ".safetensors") || ends_with(path, ".json") || ends_with(path, ".gguf")) {
        if (!slash) return loom_strdup(".");
        size_t n = (size_t)(slash - path);
        char *d = malloc(n + 1);
        if (!d) return NULL;
        memcpy(d, path, n);
        d[n] = 0;
        return d;
    }
    return loom_strdup(path);
}

static int read_checksum(const char *dir, double *out) {
    char p[4096];
    snprintf(p, sizeof p, "%s/checksum_psum.txt", dir);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int ok = fscanf(f, "%lf", out) == 1;
    fclose(f);
    return ok;
}

loom_status loom_model_save_weight_diff(loom_model *diff, const char *base_path, const char *path, uint32_t type) {
    if (!diff || !base_path || !path) return LOOM_ERR_INVALID_ARGUMENT;
    loom_engine *engine = loom_model_engine(diff);
    loom_status st = check_type(engine, type);
    if (st) return st;
    if (type == LOOM_TYPE_Q8_0)
        return loom_engine_set_error(engine, LOOM_ERR_INVALID_ARGUMENT, "weight diff: the output is f32 or f16");
    const loom_file *df = loom_model_file(diff);
    loom_file *bf = NULL;
    char err[512] = "";
    if ((st = loom_file_open(base_path, &bf, err, sizeof err)))
        return loom_engine_set_error(engine, st, "weight diff: base '%s': %s", base_path, err);
    loom_gguf_writer *w = NULL;
    if ((st = loom_gguf_writer_create(&w))) {
        loom_file_close(bf);
        return loom_engine_set_error(engine, st, "weight diff: out of memory");
    }
    if ((st = write_meta(diff, w, err, sizeof err))) {
        st = loom_engine_set_error(engine, st, "weight diff: %s", err);
        goto fail;
    }
    double head_dim = 0, theta = 10000;
    {
        int64_t hidden = 0, heads = 0;
        if (loom_file_meta_int(df, "config.hidden_size", &hidden) == LOOM_OK &&
            loom_file_meta_int(df, "config.num_attention_heads", &heads) == LOOM_OK && heads > 0)
            head_dim = (double)(hidden / heads);
        loom_file_meta_float(df, "config.rope_theta", &theta);
    }
    double sum = 0;
    for (uint32_t i = 0; i < loom_file_tensor_count(df); i++) {
        const loom_file_tensor *d = loom_file_tensor_at(df, i);
        if (!is_float_type(d->type)) {
            st =
                loom_engine_set_error(engine, LOOM_ERR_UNSUPPORTED, "weight diff: '%s' is not a float tensor", d->name);
            goto fail;
        }
        const uint64_t n = n_elements(d);
        float *v = to_f32(d);
        if (!v) {
            st = loom_engine_set_error(engine, LOOM_ERR_OUT_OF_MEMORY, "weight diff: '%s'", d->name);
            goto fail;
        }
        const loom_file_tensor *b = loom_file_tensor_find(bf, d->name);
        if (!b && ends_with(d->name, "rotary_emb.inv_freq") && head_dim > 0 && (uint64_t)(head_dim / 2) == n) {
            /* a buffer the base checkpoint does not store: recomputed as the model does */
            for (uint64_t k = 0; k < n; k++)
                v[k] += (float)(1.0 / pow(theta, (double)(2 * k) / head_dim));
        } else if (!b) {
            free(v);
            st = loom_engine_set_error(engine, LOOM_ERR_NOT_FOUND, "weight diff: the base has no tensor '%s'", d->name);
            goto fail;
        } else {
            const int64_t cols = d->ne[0];
            const uint64_t rows_d = cols ? n / (uint64_t)cols : 0, nb = n_elements(b);
            const uint64_t rows_b = b->ne[0] == cols && cols ? nb / (uint64_t)cols : 0;
            const int resized = d->n_dims == 2 && b->n_dims == 2 && b->ne[0] == cols && rows_b < rows_d;
            if (!resized && (b->n_dims != d->n_dims || nb != n || memcmp(b->ne, d->ne, sizeof(int64_t) * d->n_dims))) {
                free(v);
                st = loom_engine_set_error(engine, LOOM_ERR_FORMAT, "weight diff: '%s' has another shape in the base",
                                           d->name);
                goto fail;
            }
            float *bv = is_float_type(b->type) ? to_f32(b) : NULL;
            if (!bv) {
                free(v);
                st = loom_engine_set_error(engine, LOOM_ERR_UNSUPPORTED, "weight diff: base '%s' is not readable",
                                           d->name);
                goto fail;
            }
            for (uint64_t k = 0; k < nb; k++)
                v[k] += bv[k];
            if (resized) {
                /* added vocabulary rows ([PAD], <landmark>) start as the mean of the base rows */
                for (int64_t c = 0; c < cols; c++) {
                    double mean = 0;
                    for (uint64_t r = 0; r < rows_b; r++)
                        mean += (double)bv[r * (uint64_t)cols + (uint64_t)c];
                    mean /= (double)rows_b;
                    for (uint64_t r = rows_b; r < rows_d; r++)
                        v[r * (uint64_t)cols + (uint64_t)c] += (float)mean;
                }
            }
            free(bv);
        }
        for (uint64_t k = 0; k < n; k++)
            sum += (double)v[k];
        st = add_f32(w, d->name, type == LOOM_TYPE_F16 ? LOOM_TYPE_F16 : LOOM_TYPE_F32, d->n_dims, d->ne, v, n);
        free(v);
        if (st) {
            st = loom_engine_set_error(engine, st, "weight diff: cannot add '%s'", d->name);
            goto fail;
        }
    }
    {
        loom_model_info info = {.struct_size = sizeof info};
        loom_model_get_info(diff, &info);
        char *dir = info.path ? folder_of(info.path) : NULL;
        double expected = WDIFF_DEFAULT_CHECKSUM;
        if (dir) read_checksum(dir, &expected);
        free(dir);
        /* the official check: |sum - expected| <= 1e-2 (its sum runs in fp32 per tensor) */
        const double tol = fmax(1e-2, 1e-7 * fabs(expected));
        if (!(fabs(sum - expected) <= tol)) {
            st = loom_engine_set_error(engine, LOOM_ERR_FORMAT,
                                       "weight diff: integrity check failed: the recovered weights sum to %.6f, "
                                       "expected %.6f (a wrong base, a corrupt diff or the wrong diff)",
                                       sum, expected);
            goto fail;
        }
    }
    loom_file_close(bf);
    return finish(engine, w, path);
fail:
    loom_gguf_writer_free(w);
    loom_file_close(bf);
    return st;
}

/* ============================================================================================ */
/* Hugging Face folder export                                                                   */
/* ============================================================================================ */

/* GGUF tensor-name suffix (after "blk.N.") -> Hugging Face name (after "model.layers.N."), in the
 * order the folder stores them (that of scripts/make_model_variants.py). */
static const char *const hf_layer_names[][2] = {
    {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
    {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
#define HF_PER_LAYER (sizeof hf_layer_names / sizeof hf_layer_names[0])

typedef struct hf_tensor {
    const loom_file_tensor *t;
    char name[96];
    int64_t n_head; /* Q/K: heads whose rows are un-permuted; 0 otherwise */
} hf_tensor;

typedef struct hf_export {
    loom_engine *engine;
    const loom_file *file;
    const char *dir;
    int64_t n_layer, n_head, n_head_kv;
    hf_tensor *tensors;
    uint32_t n_tensors;
} hf_export;

static loom_status hf_fail(hf_export *x, loom_status st, const char *what) {
    return loom_engine_set_error(x->engine, st, "save hf: %s", what);
}

static loom_status hf_add(hf_export *x, const char *gguf_name, const char *hf_name, int64_t n_head, bool optional) {
    const loom_file_tensor *t = loom_file_tensor_find(x->file, gguf_name);
    if (!t && optional) return LOOM_OK;
    if (!t) return loom_engine_set_error(x->engine, LOOM_ERR_NOT_FOUND, "save hf: no tensor '%s'", gguf_name);
    if (!is_real_type(t->type) || t->n_dims > 2 || (n_head && (t->n_dims != 2 || t->ne[1] % (2 * n_head))))
        return loom_engine_set_error(x->engine, LOOM_ERR_UNSUPPORTED, "save hf: tensor '%s' (%s, %u dims)", gguf_name,
                                     loom_type_name(t->type), t->n_dims);
    hf_tensor *h = &x->tensors[x->n_tensors++];
    h->t = t;
    h->n_head = n_head;
    snprintf(h->name, sizeof h->name, "%s", hf_name);
    return LOOM_OK;
}

/* The tensors in the folder's order, with their Hugging Face names. */
static loom_status hf_collect(hf_export *x) {
    const uint32_t n_file = loom_file_tensor_count(x->file);
    x->tensors = calloc((size_t)x->n_layer * HF_PER_LAYER + 3, sizeof *x->tensors);
    if (!x->tensors) return hf_fail(x, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    loom_status st = hf_add(x, "token_embd.weight", "model.embed_tokens.weight", 0, false);
    if (!st) st = hf_add(x, "output_norm.weight", "model.norm.weight", 0, false);
    if (!st) st = hf_add(x, "output.weight", "lm_head.weight", 0, true);
    for (int64_t l = 0; !st && l < x->n_layer; l++) {
        for (size_t k = 0; !st && k < HF_PER_LAYER; k++) {
            char g[96], h[96];
            snprintf(g, sizeof g, "blk.%" PRId64 ".%s.weight", l, hf_layer_names[k][0]);
            snprintf(h, sizeof h, "model.layers.%" PRId64 ".%s.weight", l, hf_layer_names[k][1]);
            const int64_t heads = k == 2 ? x->n_head : k == 3 ? x->n_head_kv : 0;
            st = hf_add(x, g, h, heads, false);
        }
    }
    if (!st && x->n_tensors != n_file) {
        for (uint32_t i = 0; i < n_file; i++) {
            const char *name = loom_file_tensor_at(x->file, i)->name;
            bool mapped = false;
            for (uint32_t k = 0; k < x->n_tensors && !mapped; k++)
                mapped = x->tensors[k].t == loom_file_tensor_at(x->file, i);
            if (!mapped)
                return loom_engine_set_error(x->engine, LOOM_ERR_UNSUPPORTED,
                                             "save hf: tensor '%s' has no Hugging Face name", name);
        }
    }
    return st;
}

/* Undo llama.cpp's permutation of Q/K rows: within each head of `hd` rows, row 2j + k (adjacent
 * RoPE pairs) goes back to row k * hd/2 + j (half split). */
static loom_status hf_unpermute(float *w, int64_t rows, int64_t cols, int64_t n_head) {
    const int64_t hd = rows / n_head, half = hd / 2;
    float *tmp = malloc((size_t)(hd * cols) * sizeof *tmp);
    if (!tmp) return LOOM_ERR_OUT_OF_MEMORY;
    for (int64_t h = 0; h < n_head; h++) {
        float *head = w + h * hd * cols;
        for (int64_t j = 0; j < half; j++)
            for (int64_t k = 0; k < 2; k++)
                memcpy(tmp + (k * half + j) * cols, head + (2 * j + k) * cols, (size_t)cols * sizeof *tmp);
        memcpy(head, tmp, (size_t)(hd * cols) * sizeof *tmp);
    }
    free(tmp);
    return LOOM_OK;
}

static loom_status hf_write_json(hf_export *x, const char *name, json_object *o, int flags) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", x->dir, name);
    const int rc = json_object_to_file_ext(path, o, flags | JSON_C_TO_STRING_NOSLASHESCAPE);
    json_object_put(o);
    if (rc) return loom_engine_set_error(x->engine, LOOM_ERR_IO, "save hf: cannot write '%s'", path);
    return LOOM_OK;
}

/* model.safetensors: the header, then every tensor as F32 (written through a .tmp file). */
static loom_status hf_write_safetensors(hf_export *x) {
    json_object *hdr = json_object_new_object();
    uint64_t offset = 0;
    for (uint32_t i = 0; i < x->n_tensors; i++) {
        const loom_file_tensor *t = x->tensors[i].t;
        json_object *e = json_object_new_object(), *shape = json_object_new_array(), *off = json_object_new_array();
        for (uint32_t d = t->n_dims; d-- > 0;)
            json_object_array_add(shape, json_object_new_int64(t->ne[d]));
        const uint64_t bytes = n_elements(t) * 4;
        json_object_array_add(off, json_object_new_int64((int64_t)offset));
        json_object_array_add(off, json_object_new_int64((int64_t)(offset + bytes)));
        json_object_object_add(e, "dtype", json_object_new_string("F32"));
        json_object_object_add(e, "shape", shape);
        json_object_object_add(e, "data_offsets", off);
        json_object_object_add(hdr, x->tensors[i].name, e);
        offset += bytes;
    }
    json_object *meta = json_object_new_object();
    json_object_object_add(meta, "format", json_object_new_string("pt"));
    json_object_object_add(meta, "source", json_object_new_string("loom convert --format hf"));
    json_object_object_add(hdr, "__metadata__", meta);
    const char *text = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    const size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", x->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        json_object_put(hdr);
        return loom_engine_set_error(x->engine, LOOM_ERR_IO, "save hf: cannot create '%s'", tmp);
    }
    uint8_t n8[8];
    for (int b = 0; b < 8; b++)
        n8[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    bool ok = fwrite(n8, 8, 1, f) == 1 && fwrite(text, 1, len, f) == len;
    for (size_t p = len; ok && p < padded; p++)
        ok = fputc(' ', f) != EOF;
    json_object_put(hdr);
    loom_status st = ok ? LOOM_OK : LOOM_ERR_IO;
    for (uint32_t i = 0; st == LOOM_OK && i < x->n_tensors; i++) {
        const hf_tensor *h = &x->tensors[i];
        float *v = to_f32(h->t);
        if (!v) {
            st = LOOM_ERR_OUT_OF_MEMORY;
            break;
        }
        if (h->n_head) st = hf_unpermute(v, h->t->ne[1], h->t->ne[0], h->n_head);
        const size_t n = (size_t)n_elements(h->t);
        if (st == LOOM_OK && fwrite(v, sizeof(float), n, f) != n) st = LOOM_ERR_IO;
        free(v);
    }
    if (fclose(f) != 0 && st == LOOM_OK) st = LOOM_ERR_IO;
    if (st == LOOM_OK && rename(tmp, path) != 0) st = LOOM_ERR_IO;
    if (st != LOOM_OK) {
        remove(tmp);
        return loom_engine_set_error(x->engine, st, "save hf: cannot write '%s' (%s)", path, loom_status_string(st));
    }
    return LOOM_OK;
}

static json_object *hf_meta_int(const loom_file *file, const char *key) {
    int64_t v = 0;
    return loom_file_meta_int(file, key, &v) == LOOM_OK ? json_object_new_int64(v) : NULL;
}

static loom_status hf_write_config(hf_export *x, uint64_t n_vocab) {
    const loom_file *f = x->file;
    int64_t n_embd = 0, n_ff = 0, n_ctx = 0;
    double eps = 1e-5, theta = 10000.0;
    loom_file_meta_int(f, "llama.embedding_length", &n_embd);
    loom_file_meta_int(f, "llama.feed_forward_length", &n_ff);
    loom_file_meta_int(f, "llama.context_length", &n_ctx);
    loom_file_meta_float(f, "llama.attention.layer_norm_rms_epsilon", &eps);
    loom_file_meta_float(f, "llama.rope.freq_base", &theta);
    json_object *c = json_object_new_object(), *arch = json_object_new_array();
    json_object_array_add(arch, json_object_new_string("LlamaForCausalLM"));
    json_object_object_add(c, "architectures", arch);
    json_object_object_add(c, "model_type", json_object_new_string("llama"));
    json_object_object_add(c, "hidden_size", json_object_new_int64(n_embd));
    json_object_object_add(c, "intermediate_size", json_object_new_int64(n_ff));
    json_object_object_add(c, "num_hidden_layers", json_object_new_int64(x->n_layer));
    json_object_object_add(c, "num_attention_heads", json_object_new_int64(x->n_head));
    json_object_object_add(c, "num_key_value_heads", json_object_new_int64(x->n_head_kv));
    json_object_object_add(c, "head_dim", json_object_new_int64(n_embd / x->n_head));
    json_object_object_add(c, "hidden_act", json_object_new_string("silu"));
    json_object_object_add(c, "max_position_embeddings", json_object_new_int64(n_ctx));
    json_object_object_add(c, "rms_norm_eps", json_object_new_double(eps));
    json_object_object_add(c, "rope_theta", json_object_new_double(theta));
    json_object_object_add(c, "rope_scaling", NULL);
    json_object_object_add(c, "tie_word_embeddings",
                           json_object_new_boolean(!loom_file_tensor_find(f, "output.weight")));
    json_object_object_add(c, "vocab_size", json_object_new_int64((int64_t)n_vocab));
    json_object_object_add(c, "bos_token_id", hf_meta_int(f, "tokenizer.ggml.bos_token_id"));
    json_object_object_add(c, "eos_token_id", hf_meta_int(f, "tokenizer.ggml.eos_token_id"));
    json_object_object_add(c, "pad_token_id", hf_meta_int(f, "tokenizer.ggml.padding_token_id"));
    json_object_object_add(c, "attention_bias", json_object_new_boolean(0));
    json_object_object_add(c, "mlp_bias", json_object_new_boolean(0));
    json_object_object_add(c, "torch_dtype", json_object_new_string("float32"));
    return hf_write_json(x, "config.json", c, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
}

/* A metadata array of `elem_type` (NULL when absent or of another type). */
static const void *hf_meta_array(const loom_file *f, const char *key, uint32_t elem_type, uint64_t *count) {
    const loom_meta *m = loom_file_meta_find(f, key);
    if (!m || m->type != LOOM_META_ARRAY || m->elem_type != elem_type) return NULL;
    *count = m->count;
    return m->v.arr;
}

static json_object *hf_byte_level(const char *type_name) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string(type_name));
    json_object_object_add(o, "add_prefix_space", json_object_new_boolean(!strcmp(type_name, "decoder")));
    json_object_object_add(o, "trim_offsets", json_object_new_boolean(1));
    json_object_object_add(o, "use_regex", json_object_new_boolean(1));
    return o;
}

/* tokenizer.json and tokenizer_config.json of a byte-level BPE vocabulary (tokenizer.ggml.model
 * "gpt2"), as Hugging Face ships SmolLM2's. */
static loom_status hf_write_tokenizer(hf_export *x, const char *const *tokens, uint64_t n_vocab) {
    const loom_file *f = x->file;
    uint64_t n_types = 0, n_merges = 0;
    const int32_t *types = hf_meta_array(f, "tokenizer.ggml.token_type", LOOM_META_I32, &n_types);
    const char *const *merges = hf_meta_array(f, "tokenizer.ggml.merges", LOOM_META_STRING, &n_merges);
    const char *pre = NULL;
    loom_file_meta_string(f, "tokenizer.ggml.pre", &pre);
    const bool smollm = pre && !strcmp(pre, "smollm");
    if (!merges || (types && n_types != n_vocab) || (pre && !smollm && strcmp(pre, "gpt2") && strcmp(pre, "default")))
        return loom_engine_set_error(x->engine, LOOM_ERR_UNSUPPORTED,
                                     "save hf: the byte-level BPE vocabulary (pre-tokenizer '%s') cannot be written "
                                     "as tokenizer.json",
                                     pre ? pre : "none");
    json_object *tok = json_object_new_object(), *added = json_object_new_array();
    for (uint64_t i = 0; types && i < n_vocab; i++) {
        if (types[i] != 3 && types[i] != 4) continue; /* control, user-defined */
        json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_int64((int64_t)i));
        json_object_object_add(a, "content", json_object_new_string(tokens[i]));
        json_object_object_add(a, "single_word", json_object_new_boolean(0));
        json_object_object_add(a, "lstrip", json_object_new_boolean(0));
        json_object_object_add(a, "rstrip", json_object_new_boolean(0));
        json_object_object_add(a, "normalized", json_object_new_boolean(0));
        json_object_object_add(a, "special", json_object_new_boolean(types[i] == 3));
        json_object_array_add(added, a);
    }
    json_object_object_add(tok, "version", json_object_new_string("1.0"));
    json_object_object_add(tok, "truncation", NULL);
    json_object_object_add(tok, "padding", NULL);
    json_object_object_add(tok, "added_tokens", added);
    json_object_object_add(tok, "normalizer", NULL);
    json_object *pt = hf_byte_level("ByteLevel");
    json_object_object_add(pt, "add_prefix_space", json_object_new_boolean(0));
    if (smollm) { /* digits split one by one, then the GPT-2 byte-level split */
        json_object *seq = json_object_new_object(), *list = json_object_new_array(), *split = json_object_new_object();
        json_object *pat = json_object_new_object();
        json_object_object_add(pat, "Regex", json_object_new_string("\\p{N}"));
        json_object_object_add(split, "type", json_object_new_string("Split"));
        json_object_object_add(split, "pattern", pat);
        json_object_object_add(split, "behavior", json_object_new_string("Isolated"));
        json_object_object_add(split, "invert", json_object_new_boolean(0));
        json_object_array_add(list, split);
        json_object_array_add(list, pt);
        json_object_object_add(seq, "type", json_object_new_string("Sequence"));
        json_object_object_add(seq, "pretokenizers", list);
        pt = seq;
    }
    json_object_object_add(tok, "pre_tokenizer", pt);
    json_object_object_add(tok, "post_processor", NULL);
    json_object *dec = hf_byte_level("ByteLevel");
    json_object_object_add(dec, "add_prefix_space", json_object_new_boolean(1));
    json_object_object_add(tok, "decoder", dec);
    json_object *model = json_object_new_object(), *vocab = json_object_new_object(), *ml = json_object_new_array();
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    json_object_object_add(model, "dropout", NULL);
    json_object_object_add(model, "unk_token", NULL);
    json_object_object_add(model, "continuing_subword_prefix", NULL);
    json_object_object_add(model, "end_of_word_suffix", NULL);
    json_object_object_add(model, "fuse_unk", json_object_new_boolean(0));
    json_object_object_add(model, "byte_fallback", json_object_new_boolean(0));
    for (uint64_t i = 0; i < n_vocab; i++)
        json_object_object_add(vocab, tokens[i], json_object_new_int64((int64_t)i));
    for (uint64_t i = 0; i < n_merges; i++)
        json_object_array_add(ml, json_object_new_string(merges[i]));
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", ml);
    json_object_object_add(tok, "model", model);
    loom_status st = hf_write_json(x, "tokenizer.json", tok, JSON_C_TO_STRING_PLAIN);
    if (st) return st;

    json_object *cfg = json_object_new_object();
    const loom_meta *add_bos = loom_file_meta_find(f, "tokenizer.ggml.add_bos_token");
    json_object_object_add(cfg, "add_bos_token",
                           json_object_new_boolean(add_bos && add_bos->type == LOOM_META_BOOL && add_bos->v.b));
    int64_t id = -1;
    json_object_object_add(cfg, "bos_token",
                           loom_file_meta_int(f, "tokenizer.ggml.bos_token_id", &id) == LOOM_OK && id >= 0 &&
                                   (uint64_t)id < n_vocab
                               ? json_object_new_string(tokens[id])
                               : NULL);
    id = -1;
    json_object_object_add(cfg, "eos_token",
                           loom_file_meta_int(f, "tokenizer.ggml.eos_token_id", &id) == LOOM_OK && id >= 0 &&
                                   (uint64_t)id < n_vocab
                               ? json_object_new_string(tokens[id])
                               : NULL);
    const char *tmpl = NULL;
    loom_file_meta_string(f, "tokenizer.chat_template", &tmpl);
    json_object_object_add(cfg, "chat_template", tmpl ? json_object_new_string(tmpl) : NULL);
    json_object_object_add(cfg, "tokenizer_class", json_object_new_string("GPT2Tokenizer"));
    return hf_write_json(x, "tokenizer_config.json", cfg, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
}

loom_status loom_model_save_hf(loom_model *model, const char *dir) {
    if (!model || !dir || !dir[0]) return LOOM_ERR_INVALID_ARGUMENT;
    hf_export x = {.engine = loom_model_engine(model), .file = loom_model_file(model), .dir = dir};
    const char *arch = NULL, *tok_model = NULL;
    loom_file_meta_string(x.file, "general.architecture", &arch);
    if (!arch || strcmp(arch, "llama") || !loom_file_tensor_find(x.file, "token_embd.weight"))
        return hf_fail(&x, LOOM_ERR_UNSUPPORTED,
                       "only Llama-family GGUF models (general.architecture llama, "
                       "llama.cpp tensor names) can be written as a Hugging Face folder");
    if (loom_file_meta_int(x.file, "llama.block_count", &x.n_layer) ||
        loom_file_meta_int(x.file, "llama.attention.head_count", &x.n_head) || x.n_layer <= 0 || x.n_layer > 4096 ||
        x.n_head <= 0)
        return hf_fail(&x, LOOM_ERR_FORMAT, "llama.block_count or llama.attention.head_count missing or invalid");
    if (loom_file_meta_int(x.file, "llama.attention.head_count_kv", &x.n_head_kv) || x.n_head_kv <= 0)
        x.n_head_kv = x.n_head;
    uint64_t n_vocab = 0;
    const char *const *tokens = hf_meta_array(x.file, "tokenizer.ggml.tokens", LOOM_META_STRING, &n_vocab);
    loom_file_meta_string(x.file, "tokenizer.ggml.model", &tok_model);
    if (!tokens || !tok_model || strcmp(tok_model, "gpt2"))
        return loom_engine_set_error(x.engine, LOOM_ERR_UNSUPPORTED,
                                     "save hf: only byte-level BPE vocabularies (tokenizer.ggml.model gpt2) are "
                                     "written as tokenizer.json, not '%s'",
                                     tok_model ? tok_model : "none");
    loom_status st = hf_collect(&x);
    if (st == LOOM_OK && mkdir(dir, 0777) != 0 && errno != EEXIST)
        st = loom_engine_set_error(x.engine, LOOM_ERR_IO, "save hf: cannot create the folder '%s': %s", dir,
                                   strerror(errno));
    if (st == LOOM_OK) st = hf_write_safetensors(&x);
    if (st == LOOM_OK) st = hf_write_config(&x, n_vocab);
    if (st == LOOM_OK) st = hf_write_tokenizer(&x, tokens, n_vocab);
    free(x.tensors);
    return st;
}

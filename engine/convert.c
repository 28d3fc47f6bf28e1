/*
 * convert.c - writing a loaded model as a GGUF model file (loom_model_save), and recovering
 * weights published as a difference to a base model (loom_model_save_weight_diff: landmark
 * attention's LLaMA-7B weight diff).
 *
 * The written file holds every tensor of the source file (floats converted to F32 or F16 when
 * asked, quantized blocks kept), the source metadata except the flattened "config.*" keys of a
 * checkpoint's config.json and the "hf.*" side-file paths, and the canonical keys that the
 * architecture plugin exports (general.architecture, "<arch>.*"): an official checkpoint becomes
 * a self-describing file that the same plugin opens from its own keys.
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
    return n;
}

/* Values of a float tensor as F32 (caller frees). */
static float *to_f32(const loom_file_tensor *t) {
    const uint64_t n = n_elements(t);
    float *out = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!out) return NULL;
    if (t->type == LOOM_TYPE_F64) {
        const double *d = t->data;
        for (uint64_t i = 0; i < n; i++) out[i] = (float)d[i];
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
        for (uint64_t i = 0; i < n; i++) h[i] = loom_fp32_to_fp16(v[i]);
        loom_status st = loom_gguf_writer_add_tensor(w, name, LOOM_TYPE_F16, n_dims, ne, h, n * 2);
        free(h);
        return st;
    }
    return loom_gguf_writer_add_tensor(w, name, LOOM_TYPE_F32, n_dims, ne, v, n * 4);
}

static loom_status add_tensor(loom_gguf_writer *w, const loom_file_tensor *t, uint32_t type) {
    if (type == LOOM_SAVE_KEEP_TYPES || !is_float_type(t->type) || type == t->type)
        return loom_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
    float *v = to_f32(t);
    if (!v) return LOOM_ERR_OUT_OF_MEMORY;
    loom_status st = add_f32(w, t->name, type, t->n_dims, t->ne, v, n_elements(t));
    free(v);
    return st;
}

static loom_status check_type(loom_engine *engine, uint32_t type) {
    if (type != LOOM_SAVE_KEEP_TYPES && type != LOOM_TYPE_F32 && type != LOOM_TYPE_F16)
        return loom_engine_set_error(engine, LOOM_ERR_INVALID_ARGUMENT,
                                     "save: output type %u is not supported (f32, f16 or keep)", type);
    return LOOM_OK;
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
            st = loom_engine_set_error(engine, LOOM_ERR_UNSUPPORTED, "weight diff: '%s' is not a float tensor", d->name);
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
            for (uint64_t k = 0; k < n; k++) v[k] += (float)(1.0 / pow(theta, (double)(2 * k) / head_dim));
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
            for (uint64_t k = 0; k < nb; k++) v[k] += bv[k];
            if (resized) {
                /* added vocabulary rows ([PAD], <landmark>) start as the mean of the base rows */
                for (int64_t c = 0; c < cols; c++) {
                    double mean = 0;
                    for (uint64_t r = 0; r < rows_b; r++) mean += (double)bv[r * (uint64_t)cols + (uint64_t)c];
                    mean /= (double)rows_b;
                    for (uint64_t r = rows_b; r < rows_d; r++) v[r * (uint64_t)cols + (uint64_t)c] += (float)mean;
                }
            }
            free(bv);
        }
        for (uint64_t k = 0; k < n; k++) sum += (double)v[k];
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

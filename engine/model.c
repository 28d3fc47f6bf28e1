/*
 * model.c - loom_model_*: a model file, the architecture plugin that runs it and its tokenizer.
 *
 * Loading opens the file (weights stay memory-mapped: zero copy), wraps every weight as an engine
 * tensor, faults the mapping in while reporting progress, asks every available architecture
 * plugin how well it matches and lets the best one check the hyperparameters and weights. The
 * tokenizer is optional: a model without a usable one can still be evaluated from token ids.
 * After loading, a model is read-only and may be shared by several threads and contexts.
 *
 * Also here: the model half of the plugin host table (metadata and weight lookups).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loom_model {
    loom_engine *engine;
    loom_file *file;
    char *path;
    const loom_plugin_rec *plugin;
    const loom_arch_api *arch;
    void *arch_model;
    loom_tokenizer *tok;
    char tokenizer_error[512];
    loom_tensor **tensors; /* one per file tensor, in file order */
    loom_tensor **by_name; /* the same tensors sorted by name */
    uint32_t n_tensors;
    int64_t n_vocab, n_ctx_train, n_embd, n_layer;
    uint64_t weight_bytes;
    double load_seconds;
    char meta_text[2048]; /* loom_model_meta_at's rendering */
    char last_error[1024];
};

/* ============================================================================================ */
/* Internal accessors                                                                           */
/* ============================================================================================ */

const loom_file *loom_model_file(const loom_model *model) { return model ? model->file : NULL; }

const loom_arch_api *loom_model_arch(const loom_model *model, void **arch_model) {
    if (arch_model) *arch_model = model ? model->arch_model : NULL;
    return model ? model->arch : NULL;
}

loom_engine *loom_model_engine(const loom_model *model) { return model ? model->engine : NULL; }

int64_t loom_model_n_vocab(const loom_model *model) { return model ? model->n_vocab : 0; }

bool loom_model_token_is_eog(const loom_model *model, int32_t token) {
    if (!model || !model->tok) return false;
    return loom_tokenizer_is_eog(model->tok, token);
}

/* ============================================================================================ */
/* Host table: metadata and weights                                                             */
/* ============================================================================================ */

loom_status loom_host_meta_get_int(const loom_model *model, const char *key, int64_t *out) {
    if (!model || !key || !out) return LOOM_ERR_INVALID_ARGUMENT;
    return loom_file_meta_int(model->file, key, out);
}

loom_status loom_host_meta_get_float(const loom_model *model, const char *key, double *out) {
    if (!model || !key || !out) return LOOM_ERR_INVALID_ARGUMENT;
    return loom_file_meta_float(model->file, key, out);
}

loom_status loom_host_meta_get_string(const loom_model *model, const char *key, const char **out) {
    if (!model || !key || !out) return LOOM_ERR_INVALID_ARGUMENT;
    return loom_file_meta_string(model->file, key, out);
}

loom_status loom_host_meta_get_array(const loom_model *model, const char *key, uint32_t *elem_type, uint64_t *count,
                                     const void **data) {
    if (!model || !key || !elem_type || !count || !data) return LOOM_ERR_INVALID_ARGUMENT;
    *elem_type = 0;
    *count = 0;
    *data = NULL;
    const loom_meta *m = loom_file_meta_find(model->file, key);
    if (!m) return LOOM_ERR_NOT_FOUND;
    if (m->type != LOOM_META_ARRAY) return LOOM_ERR_FORMAT;
    *elem_type = m->elem_type;
    *count = m->count;
    *data = m->v.arr;
    return LOOM_OK;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(loom_tensor *const *)a)->name, (*(loom_tensor *const *)b)->name);
}

loom_status loom_host_model_tensor(const loom_model *model, const char *name, loom_tensor **out) {
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!model || !name) return LOOM_ERR_INVALID_ARGUMENT;
    size_t lo = 0, hi = model->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        loom_tensor *t = model->by_name[mid];
        int c = strcmp(name, t->name);
        if (c == 0) {
            *out = t;
            return LOOM_OK;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return LOOM_ERR_NOT_FOUND;
}

/* ============================================================================================ */
/* Loading                                                                                      */
/* ============================================================================================ */

void loom_model_free(loom_model *m) {
    if (!m) return;
    if (m->arch && m->arch_model) m->arch->model_free(m->arch_model);
    loom_tokenizer_free(m->tok);
    if (m->tensors) {
        for (uint32_t i = 0; i < m->n_tensors; i++)
            loom_tensor_free_wrapped(m->tensors[i]);
    }
    free(m->tensors);
    free(m->by_name);
    loom_file_close(m->file);
    free(m->path);
    free(m);
}

/* Read one byte per page of every weight so the first forward pass does not stall on page
 * faults; reports progress per tensor. Returns false when the callback cancels. */
static bool fault_in(const loom_model *m, const loom_model_params *params) {
    loom_progress_fn progress = NULL;
    void *user = NULL;
    if (LOOM_HAS_MEMBER(params, loom_model_params, progress_user_data)) {
        progress = params->progress;
        user = params->progress_user_data;
    }
    volatile uint8_t sink = 0;
    uint64_t done = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const loom_file_tensor *ft = loom_file_tensor_at(m->file, i);
        const uint8_t *p = ft->data;
        for (uint64_t off = 0; off < ft->size; off += 4096)
            sink ^= p[off];
        done += ft->size;
        if (progress && !progress(done, m->weight_bytes, user)) return false;
    }
    (void)sink;
    return true;
}

static const char *arch_name(const loom_file *f) {
    const char *s = NULL;
    if (loom_file_meta_string(f, "general.architecture", &s) == LOOM_OK) return s;
    if (loom_file_meta_string(f, "config.model_type", &s) == LOOM_OK) return s;
    return "";
}

/* The available architecture plugin with the highest match score. */
static loom_status pick_arch(loom_model *m) {
    int32_t best = 0;
    char names[256] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < m->engine->n_plugins; i++) {
        const loom_plugin_rec *p = &m->engine->plugins[i];
        if (p->kind != LOOM_PLUGIN_KIND_ARCHITECTURE || p->state_code != LOOM_PLUGIN_AVAILABLE || !p->desc) continue;
        const loom_arch_api *api = p->desc->api;
        if (!api || api->struct_size < offsetof(loom_arch_api, forward) + sizeof api->forward) continue;
        if (used < sizeof names) {
            int n = snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "", p->name ? p->name : "?");
            if (n > 0) used += (size_t)n;
        }
        int32_t score = api->match(p->state, m);
        if (score > best) {
            best = score;
            m->plugin = p;
            m->arch = api;
        }
    }
    if (!m->arch) {
        return loom_engine_set_error(m->engine, LOOM_ERR_UNSUPPORTED,
                                     "no architecture plugin runs '%s' (architecture '%s'; available plugins: %s)",
                                     m->path, arch_name(m->file), used ? names : "none");
    }
    return LOOM_OK;
}

loom_status loom_model_load(loom_engine *engine, const char *path, const loom_model_params *params, loom_model **out) {
    if (out) *out = NULL;
    if (!engine || !path || !out) return LOOM_ERR_INVALID_ARGUMENT;
    if (params && params->struct_size < sizeof(uint32_t) * 2) return LOOM_ERR_ABI;
    const double t0 = loom_now();
    char err[1024] = "";
    loom_model *m = calloc(1, sizeof *m);
    if (!m) return LOOM_ERR_OUT_OF_MEMORY;
    m->engine = engine;
    m->path = loom_strdup(path);
    loom_status st = m->path ? loom_file_open(path, &m->file, err, sizeof err) : LOOM_ERR_OUT_OF_MEMORY;
    if (st != LOOM_OK) {
        loom_model_free(m);
        return loom_engine_set_error(engine, st, "cannot load model '%s': %s", path, err);
    }

    /* Every weight as an engine tensor (borrowing the mapping), with a name index. */

    m->n_tensors = loom_file_tensor_count(m->file);
    m->tensors = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *m->tensors);
    m->by_name = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *m->by_name);
    if (!m->tensors || !m->by_name) {
        loom_model_free(m);
        return loom_engine_set_error(engine, LOOM_ERR_OUT_OF_MEMORY, "out of memory loading '%s'", path);
    }
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const loom_file_tensor *ft = loom_file_tensor_at(m->file, i);
        st =
            loom_tensor_wrap_host(ft->name, ft->type, ft->n_dims, ft->ne, ft->data, LOOM_TENSOR_WEIGHT, &m->tensors[i]);
        if (st != LOOM_OK) {
            m->n_tensors = i;
            loom_model_free(m);
            return loom_engine_set_error(engine, st, "cannot use weight '%s' of '%s'", ft->name, path);
        }
        m->tensors[i]->owner = m;
        m->by_name[i] = m->tensors[i];
        m->weight_bytes += ft->size;
    }
    qsort(m->by_name, m->n_tensors, sizeof *m->by_name, cmp_by_name);

    if (!fault_in(m, params)) {
        loom_model_free(m);
        return loom_engine_set_error(engine, LOOM_ERR_CANCELLED, "loading '%s' was cancelled", path);
    }

    /* The architecture plugin. */
    if ((st = pick_arch(m)) != LOOM_OK) {
        loom_model_free(m);
        return st;
    }
    err[0] = '\0';
    st = m->arch->model_init(m->plugin->state, m, &m->arch_model, err, sizeof err);
    if (st != LOOM_OK) {
        m->arch_model = NULL;
        loom_model_free(m);
        return loom_engine_set_error(engine, st, "cannot load model '%s': %s", path,
                                     err[0] ? err : loom_status_string(st));
    }
    m->arch->model_dims(m->arch_model, &m->n_vocab, &m->n_ctx_train, &m->n_embd, &m->n_layer);

    /* The tokenizer (optional). */
    st = loom_tokenizer_create_from_file(m->file, &m->tok, m->tokenizer_error, sizeof m->tokenizer_error);
    if (st != LOOM_OK) {
        m->tok = NULL;
        loom_log(LOOM_LOG_WARN, "model", "%s: no usable tokenizer (%s); token ids only", path, m->tokenizer_error);
    } else if (loom_tokenizer_n_vocab(m->tok) > m->n_vocab) {
        loom_log(LOOM_LOG_WARN, "model", "%s: the tokenizer has %d tokens, the model only %lld logits", path,
                 loom_tokenizer_n_vocab(m->tok), (long long)m->n_vocab);
    }

    m->load_seconds = loom_now() - t0;
    const char *name = NULL;
    if (loom_file_meta_string(m->file, "general.name", &name) != LOOM_OK) name = "";
    loom_log(LOOM_LOG_INFO, "model", "loaded %s%s%s (%s, %lld layers, %u tensors, %.1f MiB) with plugin '%s' in %.2f s",
             path, name[0] ? ": " : "", name, arch_name(m->file), (long long)m->n_layer, m->n_tensors,
             (double)m->weight_bytes / (1024.0 * 1024.0), m->plugin->name, m->load_seconds);
    *out = m;
    return LOOM_OK;
}

const char *loom_model_last_error(const loom_model *model) { return model ? model->last_error : ""; }

/* ============================================================================================ */
/* Information                                                                                  */
/* ============================================================================================ */

loom_status loom_model_get_info(const loom_model *m, loom_model_info *out) {
    if (!m || !out || out->struct_size < sizeof(uint32_t)) return LOOM_ERR_INVALID_ARGUMENT;
    const char *name = NULL;
    if (loom_file_meta_string(m->file, "general.name", &name) != LOOM_OK) name = "";
    loom_model_info info = {
        .struct_size = out->struct_size < sizeof info ? out->struct_size : (uint32_t)sizeof info,
        .n_tensors = m->n_tensors,
        .n_vocab = m->n_vocab,
        .n_ctx_train = m->n_ctx_train,
        .n_embd = m->n_embd,
        .n_layer = m->n_layer,
        .bos_token = m->tok ? loom_tokenizer_bos(m->tok) : -1,
        .eos_token = m->tok ? loom_tokenizer_eos(m->tok) : -1,
        .file_bytes = loom_file_size(m->file),
        .weight_bytes = m->weight_bytes,
        .load_seconds = m->load_seconds,
        .architecture = arch_name(m->file),
        .arch_plugin = m->plugin->name,
        .name = name,
        .path = m->path,
        .tokenizer = m->tok ? loom_tokenizer_model(m->tok) : "",
    };
    memcpy(out, &info, info.struct_size);
    return LOOM_OK;
}

uint32_t loom_model_meta_count(const loom_model *model) { return model ? loom_file_meta_count(model->file) : 0; }

loom_status loom_model_meta_at(const loom_model *model, uint32_t index, const char **key, const char **value_text) {
    if (key) *key = NULL;
    if (value_text) *value_text = NULL;
    if (!model || !key || !value_text) return LOOM_ERR_INVALID_ARGUMENT;
    const loom_meta *e = loom_file_meta_at(model->file, index);
    if (!e) return LOOM_ERR_NOT_FOUND;
    loom_model *m = (loom_model *)(uintptr_t)model; /* the rendering buffer is documented as per-call */
    loom_meta_format(e, 8, m->meta_text, sizeof m->meta_text);
    *key = e->key;
    *value_text = m->meta_text;
    return LOOM_OK;
}

loom_status loom_model_tensor_at(const loom_model *model, uint32_t index, loom_tensor_desc *out) {
    if (!model || !out || out->struct_size < sizeof(uint32_t)) return LOOM_ERR_INVALID_ARGUMENT;
    const loom_file_tensor *ft = loom_file_tensor_at(model->file, index);
    if (!ft) return LOOM_ERR_NOT_FOUND;
    loom_tensor_desc d = {
        .struct_size = out->struct_size < sizeof d ? out->struct_size : (uint32_t)sizeof d,
        .type = ft->type,
        .n_dims = ft->n_dims,
        .bytes = ft->size,
        .file_offset = ft->offset,
        .name = ft->name,
    };
    for (int i = 0; i < 4; i++)
        d.ne[i] = i < (int)ft->n_dims ? ft->ne[i] : 1;
    memcpy(out, &d, d.struct_size);
    return LOOM_OK;
}

/* ============================================================================================ */
/* Tokenizer and chat template                                                                  */
/* ============================================================================================ */

static loom_status no_tokenizer(const loom_model *model) {
    loom_model *m = (loom_model *)(uintptr_t)model;
    snprintf(m->last_error, sizeof m->last_error, "model '%s' has no usable tokenizer: %s", m->path,
             m->tokenizer_error);
    return LOOM_ERR_TOKENIZER;
}

loom_status loom_model_tokenize(const loom_model *model, const char *text, size_t text_len, uint32_t flags,
                                int32_t *tokens, size_t capacity, size_t *n_tokens) {
    if (n_tokens) *n_tokens = 0;
    if (!model || (!text && text_len > 0) || !n_tokens || (!tokens && capacity > 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (!model->tok) return no_tokenizer(model);
    return loom_tokenizer_encode(model->tok, text ? text : "", text_len, flags, tokens, capacity, n_tokens);
}

loom_status loom_model_token_piece(const loom_model *model, int32_t token, bool render_special, char *buf,
                                   size_t capacity, size_t *length) {
    if (length) *length = 0;
    if (!model || !length || (!buf && capacity > 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (!model->tok) return no_tokenizer(model);
    return loom_tokenizer_piece(model->tok, token, render_special, buf, capacity, length);
}

loom_status loom_model_detokenize(const loom_model *model, const int32_t *tokens, size_t n_tokens, bool render_special,
                                  char *buf, size_t capacity, size_t *length) {
    if (length) *length = 0;
    if (!model || !length || (!tokens && n_tokens > 0) || (!buf && capacity > 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (!model->tok) return no_tokenizer(model);
    return loom_tokenizer_decode(model->tok, tokens, n_tokens, render_special, buf, capacity, length);
}

loom_status loom_model_chat_format(const loom_model *model, const loom_chat_message *messages, size_t n_messages,
                                   bool add_assistant_prompt, char *buf, size_t capacity, size_t *length) {
    if (length) *length = 0;
    if (!model || !length || (!messages && n_messages > 0) || (!buf && capacity > 0)) return LOOM_ERR_INVALID_ARGUMENT;
    if (!model->tok) return no_tokenizer(model);
    loom_model *m = (loom_model *)(uintptr_t)model;
    const int32_t bos = loom_tokenizer_bos(m->tok), eos = loom_tokenizer_eos(m->tok);
    const char *bos_text = bos >= 0 ? loom_tokenizer_token_text(m->tok, bos) : NULL;
    const char *eos_text = eos >= 0 ? loom_tokenizer_token_text(m->tok, eos) : NULL;
    char err[512] = "";
    loom_status st = loom_chat_apply(loom_tokenizer_chat_template(m->tok), bos_text, eos_text, messages, n_messages,
                                     add_assistant_prompt, buf, capacity, length, err, sizeof err);
    if (st != LOOM_OK && st != LOOM_ERR_BUFFER_TOO_SMALL) {
        snprintf(m->last_error, sizeof m->last_error, "%s", err[0] ? err : loom_status_string(st));
    }
    return st;
}

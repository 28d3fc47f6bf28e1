/*
 * tokenizer_hf.c - a tokenizer from a Hugging Face tokenizer.json (json-c), with the
 * tokenizer_config.json next to it when present (BOS/EOS, add_bos_token, chat_template).
 *
 * Supported: model.type "BPE" with
 *   - a ByteLevel pre-tokenizer (byte-level BPE, GGUF "gpt2"); the pre-tokenizer flavour is
 *     recognised from its structure and Split patterns (GPT-2, SmolLM/StarCoder, Llama-3,
 *     Qwen2), the same families llama.cpp names in tokenizer.ggml.pre;
 *   - SentencePiece-style vocabularies (byte_fallback, U+2581 for spaces: Metaspace or the
 *     Prepend/Replace normalizers), run with the SentencePiece algorithm, each token scored by
 *     minus the rank of the first merge that forms it (tokenizer.json has no scores; this is
 *     what merge order means for that algorithm).
 * Added tokens become control tokens ("special": true) or user-defined tokens, with their
 * lstrip/rstrip flags. Anything else is refused with a message saying what was found.
 */
#include "tokenizer_impl.h"

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    return o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *get_str(json_object *o, const char *key) {
    json_object *v = get(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool is_type(json_object *o, const char *type) {
    const char *t = get_str(o, "type");
    return t && !strcmp(t, type);
}

/* A token given as "text" or {"content": "text"}. */
static const char *token_text(json_object *v) {
    if (!v) return NULL;
    if (json_object_is_type(v, json_type_string)) return json_object_get_string(v);
    return get_str(v, "content");
}

#define RE_LLAMA3                                                                                                      \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                                       \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"      \
    "\\s+(?!\\S)|\\s+"

/* The llama.cpp pre-tokenizer name for a ByteLevel pre_tokenizer, or NULL. */
static const char *byte_level_pre(json_object *pre, char *why, size_t why_size) {
    if (is_type(pre, "ByteLevel")) {
        json_object *ur = get(pre, "use_regex");
        if (!ur || json_object_get_boolean(ur)) return "gpt-2";
        snprintf(why, why_size, "ByteLevel without its regex");
        return NULL;
    }
    if (!is_type(pre, "Sequence")) {
        snprintf(why, why_size, "pre_tokenizer of type %s", get_str(pre, "type") ? get_str(pre, "type") : "?");
        return NULL;
    }
    json_object *list = get(pre, "pretokenizers");
    size_t n = list && json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
    if (n == 2) {
        json_object *a = json_object_array_get_idx(list, 0), *b = json_object_array_get_idx(list, 1);
        const char *re = is_type(a, "Split") ? get_str(get(a, "pattern"), "Regex") : NULL;
        json_object *ur = get(b, "use_regex");
        bool b_regex = !ur || json_object_get_boolean(ur);
        if (re && is_type(b, "ByteLevel")) {
            if (!strcmp(re, "\\p{N}") && b_regex) return "smollm";
            if (!strcmp(re, RE_LLAMA3) && !b_regex) return "llama-bpe";
            if (!strcmp(re, RE_QWEN2) && !b_regex) return "qwen2";
            snprintf(why, why_size, "Split pattern \"%.120s\"", re);
            return NULL;
        }
    }
    snprintf(why, why_size, "a Sequence of %zu pre-tokenizers", n);
    return NULL;
}

/* Does the normalizer / pre-tokenizer turn spaces into U+2581 (SentencePiece style)? */
static bool uses_metaspace(json_object *root) {
    json_object *pre = get(root, "pre_tokenizer"), *norm = get(root, "normalizer");
    if (is_type(pre, "Metaspace")) return true;
    if (is_type(norm, "Replace") && get_str(norm, "content") && !strcmp(get_str(norm, "content"), "\xe2\x96\x81"))
        return true;
    json_object *list = get(norm, "normalizers");
    if (is_type(norm, "Sequence") && list && json_object_is_type(list, json_type_array))
        for (size_t i = 0; i < json_object_array_length(list); i++) {
            json_object *e = json_object_array_get_idx(list, i);
            if (is_type(e, "Replace") && get_str(e, "content") && !strcmp(get_str(e, "content"), "\xe2\x96\x81"))
                return true;
        }
    return false;
}

static json_object *load_config(const char *json_path) {
    const char *slash = strrchr(json_path, '/');
    size_t dir = slash ? (size_t)(slash - json_path + 1) : 0;
    char *p = malloc(dir + 32);
    if (!p) return NULL;
    memcpy(p, json_path, dir);
    strcpy(p + dir, "tokenizer_config.json");
    FILE *f = fopen(p, "rb");
    json_object *cfg = NULL;
    if (f) {
        fclose(f);
        cfg = json_object_from_file(p);
    }
    free(p);
    return cfg;
}

typedef struct hf_build {
    char **tokens; /* owned texts (NULL where unset) */
    int32_t *types;
    char **merges;
    uint32_t n_tokens, n_merges;
    char *chat_template;
} hf_build;

static void build_free(hf_build *b) {
    if (b->tokens)
        for (uint32_t i = 0; i < b->n_tokens; i++) free(b->tokens[i]);
    if (b->merges)
        for (uint32_t i = 0; i < b->n_merges; i++) free(b->merges[i]);
    free(b->tokens);
    free(b->types);
    free(b->merges);
    free(b->chat_template);
}

static int32_t find_id(const hf_build *b, const char *text) {
    if (!text) return -1;
    for (uint32_t i = 0; i < b->n_tokens; i++)
        if (b->tokens[i] && !strcmp(b->tokens[i], text)) return (int32_t)i;
    return -1;
}

loom_status loom_tokenizer_create_from_hf_json(const char *path, loom_tokenizer **out, char *err, size_t err_size) {
    if (out) *out = NULL;
    if (!path || !out) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "tokenizer: NULL argument");
    json_object *root = json_object_from_file(path);
    if (!root)
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %s is not readable JSON: %s", path,
                        json_util_get_last_err() ? json_util_get_last_err() : "?");
    json_object *cfg = load_config(path);
    hf_build b = {0};
    loom_status st = LOOM_OK;
    json_object *model = get(root, "model");
    const char *mtype = get_str(model, "type");
    if (!mtype || strcmp(mtype, "BPE")) {
        st = loom_err(err, err_size, LOOM_ERR_UNSUPPORTED, "tokenizer: %s: model type %s is not supported (only BPE)",
                      path, mtype ? mtype : "(missing)");
        goto done;
    }
    json_object *vocab = get(model, "vocab"), *merges = get(model, "merges"), *added = get(root, "added_tokens");
    if (!vocab || !json_object_is_type(vocab, json_type_object)) {
        st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %s: model.vocab is missing", path);
        goto done;
    }
    /* Size: the largest id + 1 over the vocabulary and the added tokens. */
    int64_t max_id = -1;
    json_object_object_foreach(vocab, k0, v0) {
        (void)k0;
        int64_t id = json_object_get_int64(v0);
        if (!json_object_is_type(v0, json_type_int) || id < 0 || id >= (1 << 24)) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %s: bad id for vocabulary entry \"%.60s\"", path,
                          k0);
            goto done;
        }
        if (id > max_id) max_id = id;
    }
    size_t n_added = added && json_object_is_type(added, json_type_array) ? json_object_array_length(added) : 0;
    for (size_t i = 0; i < n_added; i++) {
        json_object *id = get(json_object_array_get_idx(added, i), "id");
        int64_t v = id ? json_object_get_int64(id) : -1;
        if (v < 0 || v >= (1 << 24)) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %s: added token %zu has a bad id", path, i);
            goto done;
        }
        if (v > max_id) max_id = v;
    }
    if (max_id < 0) {
        st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %s: the vocabulary is empty", path);
        goto done;
    }
    b.n_tokens = (uint32_t)max_id + 1;
    b.tokens = calloc(b.n_tokens, sizeof *b.tokens);
    b.types = malloc(b.n_tokens * sizeof *b.types);
    if (!b.tokens || !b.types) goto oom;
    for (uint32_t i = 0; i < b.n_tokens; i++) b.types[i] = 1;
    json_object_object_foreach(vocab, key, val) {
        int64_t id = json_object_get_int64(val);
        free(b.tokens[id]);
        if (!(b.tokens[id] = loom_strdup(key))) goto oom;
    }
    for (size_t i = 0; i < n_added; i++) {
        json_object *a = json_object_array_get_idx(added, i);
        int64_t id = json_object_get_int64(get(a, "id"));
        const char *content = get_str(a, "content");
        if (!content) continue;
        free(b.tokens[id]);
        if (!(b.tokens[id] = loom_strdup(content))) goto oom;
        json_object *sp = get(a, "special");
        b.types[id] = sp && json_object_get_boolean(sp) ? 3 : 4;
    }
    /* Holes get placeholder names, as llama.cpp's converter writes them. */
    for (uint32_t i = 0; i < b.n_tokens; i++) {
        if (!b.tokens[i]) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "[PAD%u]", i);
            if (!(b.tokens[i] = loom_strdup(tmp))) goto oom;
            b.types[i] = 5;
        }
    }
    /* Merges: "a b" strings or ["a", "b"] pairs. */
    size_t n_merges = merges && json_object_is_type(merges, json_type_array) ? json_object_array_length(merges) : 0;
    b.merges = calloc(n_merges ? n_merges : 1, sizeof *b.merges);
    if (!b.merges) goto oom;
    for (size_t i = 0; i < n_merges; i++) {
        json_object *m = json_object_array_get_idx(merges, i);
        if (json_object_is_type(m, json_type_string)) {
            b.merges[i] = loom_strdup(json_object_get_string(m));
        } else if (json_object_is_type(m, json_type_array) && json_object_array_length(m) == 2) {
            const char *x = json_object_get_string(json_object_array_get_idx(m, 0));
            const char *y = json_object_get_string(json_object_array_get_idx(m, 1));
            size_t lx = strlen(x ? x : ""), ly = strlen(y ? y : "");
            b.merges[i] = malloc(lx + ly + 2);
            if (b.merges[i]) snprintf(b.merges[i], lx + ly + 2, "%s %s", x ? x : "", y ? y : "");
        } else {
            b.n_merges = (uint32_t)i;
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "tokenizer: %s: merge %zu is malformed", path, i);
            goto done;
        }
        if (!b.merges[i]) {
            b.n_merges = (uint32_t)i;
            goto oom;
        }
    }
    b.n_merges = (uint32_t)n_merges;

    loom_vocab_desc d;
    loom_vocab_desc_init(&d);
    char why[200] = "";
    json_object *pre = get(root, "pre_tokenizer");
    json_object *bf = get(model, "byte_fallback");
    if (pre && (is_type(pre, "ByteLevel") || is_type(pre, "Sequence")) && !uses_metaspace(root)) {
        d.model = "gpt2";
        d.pre = byte_level_pre(pre, why, sizeof why);
        if (!d.pre) {
            st = loom_err(err, err_size, LOOM_ERR_UNSUPPORTED, "tokenizer: %s: unsupported pre-tokenizer: %s", path,
                          why);
            goto done;
        }
        json_object *im = get(model, "ignore_merges");
        (void)im; /* llama.cpp decides this by the pre-tokenizer; so does Loom */
    } else if (uses_metaspace(root) || (bf && json_object_get_boolean(bf))) {
        d.model = "llama";
        for (uint32_t i = 0; i < b.n_tokens; i++) {
            const char *t = b.tokens[i];
            if (b.types[i] == 1 && strlen(t) == 6 && !strncmp(t, "<0x", 3) && t[5] == '>') b.types[i] = 6;
        }
        const char *unk = get_str(model, "unk_token");
        int32_t unk_id = find_id(&b, unk);
        if (unk_id >= 0) b.types[unk_id] = 2, d.unk = unk_id;
        else d.unk = -1;
        json_object *ps = get(root, "pre_tokenizer");
        const char *scheme = get_str(ps, "prepend_scheme");
        json_object *aps = get(ps, "add_prefix_space");
        if ((scheme && !strcmp(scheme, "never")) || (aps && !json_object_get_boolean(aps))) d.add_space_prefix = 0;
    } else {
        st = loom_err(err, err_size, LOOM_ERR_UNSUPPORTED,
                      "tokenizer: %s: neither a byte-level nor a SentencePiece-style BPE vocabulary", path);
        goto done;
    }
    d.n_tokens = b.n_tokens;
    d.tokens = (const char *const *)b.tokens;
    d.token_types = b.types;
    d.n_merges = !strcmp(d.model, "gpt2") ? b.n_merges : 0;
    d.merges = (const char *const *)b.merges;

    /* tokenizer_config.json: special tokens, BOS/EOS flags, chat template. */
    int32_t id;
    if ((id = find_id(&b, token_text(get(cfg, "bos_token")))) >= 0) d.bos = id;
    else if (get(cfg, "bos_token") || !strcmp(d.model, "gpt2")) d.bos = -1;
    if ((id = find_id(&b, token_text(get(cfg, "eos_token")))) >= 0) d.eos = id;
    else if (get(cfg, "eos_token") || !strcmp(d.model, "gpt2")) d.eos = -1;
    if ((id = find_id(&b, token_text(get(cfg, "pad_token")))) >= 0) d.pad = id;
    if (!strcmp(d.model, "llama")) {
        if (d.bos == -2) d.bos = find_id(&b, "<s>");
        if (d.eos == -2) d.eos = find_id(&b, "</s>");
    }
    json_object *ab = get(cfg, "add_bos_token"), *ae = get(cfg, "add_eos_token");
    if (ab && json_object_is_type(ab, json_type_boolean)) d.add_bos = json_object_get_boolean(ab);
    if (ae && json_object_is_type(ae, json_type_boolean)) d.add_eos = json_object_get_boolean(ae);
    json_object *ct = get(cfg, "chat_template");
    if (ct && json_object_is_type(ct, json_type_string)) {
        d.chat_template = json_object_get_string(ct);
    } else if (ct && json_object_is_type(ct, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(ct); i++) {
            json_object *e = json_object_array_get_idx(ct, i);
            const char *name = get_str(e, "name");
            if (name && !strcmp(name, "default")) d.chat_template = get_str(e, "template");
        }
    }
    /* lstrip / rstrip of added tokens go in as attributes. */
    uint32_t *attrs = NULL;
    if (n_added) {
        attrs = malloc(b.n_tokens * sizeof *attrs);
        if (!attrs) goto oom;
        static const uint32_t of_type[] = {0, LOOM_TOKEN_ATTR_NORMAL, LOOM_TOKEN_ATTR_UNKNOWN, LOOM_TOKEN_ATTR_CONTROL,
                                           LOOM_TOKEN_ATTR_USER_DEFINED, LOOM_TOKEN_ATTR_UNUSED, LOOM_TOKEN_ATTR_BYTE};
        for (uint32_t i = 0; i < b.n_tokens; i++) attrs[i] = b.types[i] >= 1 && b.types[i] <= 6 ? of_type[b.types[i]] : 0;
        for (size_t i = 0; i < n_added; i++) {
            json_object *a = json_object_array_get_idx(added, i);
            int64_t tid = json_object_get_int64(get(a, "id"));
            json_object *ls = get(a, "lstrip"), *rs = get(a, "rstrip");
            if (ls && json_object_get_boolean(ls)) attrs[tid] |= LOOM_TOKEN_ATTR_LSTRIP;
            if (rs && json_object_get_boolean(rs)) attrs[tid] |= LOOM_TOKEN_ATTR_RSTRIP;
        }
        d.token_attrs = attrs;
    }
    d.scores = NULL;
    st = loom_tokenizer_create(&d, out, err, err_size);
    free(attrs);
    if (!st && !strcmp(d.model, "llama")) {
        /* SentencePiece scores from merge order: the token formed by merge r scores -r (the
         * first merge forming it counts); tokens no merge forms come last. */
        loom_tokenizer *tok = *out;
        for (uint32_t i = 0; i < tok->n_vocab; i++) tok->tokens[i].score = -1e9f;
        char *joined = NULL;
        size_t cap = 0;
        for (uint32_t r = b.n_merges; r-- > 0;) {
            const char *m = b.merges[r];
            size_t l = strlen(m);
            const char *sp = l > 1 ? strchr(m + 1, ' ') : NULL;
            if (!sp) continue;
            if (l > cap) {
                char *nj = realloc(joined, l);
                if (!nj) {
                    free(joined);
                    loom_tokenizer_free(tok);
                    *out = NULL;
                    goto oom;
                }
                joined = nj;
                cap = l;
            }
            size_t a = (size_t)(sp - m);
            memcpy(joined, m, a);
            memcpy(joined + a, sp + 1, l - a - 1);
            int32_t tid = tok_find(tok, joined, l - 1);
            if (tid >= 0) tok->tokens[tid].score = -(float)r;
        }
        free(joined);
    }
    goto done;
oom:
    st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "tokenizer: out of memory reading %s", path);
done:
    build_free(&b);
    json_object_put(root);
    json_object_put(cfg);
    return st;
}

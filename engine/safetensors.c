/*
 * safetensors.c - safetensors reader (single file and sharded with model.safetensors.index.json)
 * and Hugging Face folders (config.json flattened into metadata). JSON is parsed by json-c.
 *
 * Validation follows the reference implementation's rules: header length at most 100 MB and
 * inside the file, a JSON object, known dtypes, shape product * dtype size == end - begin, and
 * entries covering the byte buffer exactly (no holes, no overlaps). Tensors are exposed with the
 * shape reversed into Loom's order (ne[0] innermost) and point into the mapped file.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000ull /* the reference reader's limit */
#define ST_MAX_JSON_FILE 100000000ull
#define ST_JSON_DEPTH 64

/* ============================================================================================ */
/* JSON helpers                                                                                 */
/* ============================================================================================ */

/* Parse exactly one JSON value from text[0..len) (trailing whitespace allowed). */
static loom_status parse_json(const char *text, size_t len, const char *what, json_object **out, char *err,
                              size_t err_size) {
    *out = NULL;
    if (len > INT32_MAX) return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: JSON text too large", what);
    if (memchr(text, 0, len))
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: JSON text contains a NUL byte at byte %zu", what,
                        (size_t)((const char *)memchr(text, 0, len) - text));
    json_tokener *tok = json_tokener_new_ex(ST_JSON_DEPTH);
    if (!tok) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
    json_object *obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!obj || e != json_tokener_success) {
        json_object_put(obj);
        if (e == json_tokener_continue)
            return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: JSON text ends early (at byte %zu)", what, len);
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: bad JSON near byte %zu: %s", what, end,
                        json_tokener_error_desc(e));
    }
    for (size_t i = end; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
            json_object_put(obj);
            return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: unexpected data after the JSON value at byte %zu",
                            what, i);
        }
    }
    *out = obj;
    return LOOM_OK;
}

/* Read a whole (small) file into a NUL-terminated malloc'd buffer. */
static loom_status read_text_file(const char *path, uint64_t max, char **out, size_t *len, char *err,
                                  size_t err_size) {
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return loom_err(err, err_size, LOOM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return loom_err(err, err_size, LOOM_ERR_IO, "'%s' is not a readable file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "'%s' is too large (%" PRIu64 " bytes, limit %" PRIu64 ")",
                        path, (uint64_t)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory reading '%s'", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return loom_err(err, err_size, LOOM_ERR_IO, "cannot read '%s'", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return LOOM_OK;
}

/* A non-negative JSON integer. */
static bool json_u64(json_object *o, uint64_t *out) {
    if (!o || !json_object_is_type(o, json_type_int)) return false;
    errno = 0;
    int64_t s = json_object_get_int64(o);
    if (s < 0) return false;
    *out = s == INT64_MAX ? json_object_get_uint64(o) : (uint64_t)s;
    return !(s == INT64_MAX && errno);
}

static char *join_key(const char *prefix, const char *key) {
    size_t a = strlen(prefix), b = strlen(key);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, prefix, a);
    s[a] = '.';
    memcpy(s + a + 1, key, b + 1);
    return s;
}

static loom_status push_string_meta(loom_file *file, const char *key, const char *value) {
    loom_meta m;
    memset(&m, 0, sizeof m);
    m.key = loom_strdup(key);
    m.type = LOOM_META_STRING;
    m.v.str = loom_strdup(value);
    if (!m.key || !m.v.str) {
        loom_meta_clear(&m);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    return loom_file_push_meta(file, &m);
}

/* ============================================================================================ */
/* One safetensors image                                                                        */
/* ============================================================================================ */

typedef struct st_dtype {
    const char *name;
    uint32_t bytes;
    uint32_t loom; /* LOOM_TYPE_* or UINT32_MAX */
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, LOOM_TYPE_F32},     {"F16", 2, LOOM_TYPE_F16},       {"BF16", 2, LOOM_TYPE_BF16},
    {"F64", 8, LOOM_TYPE_F64},     {"I8", 1, LOOM_TYPE_I8},         {"I16", 2, LOOM_TYPE_I16},
    {"I32", 4, LOOM_TYPE_I32},     {"I64", 8, LOOM_TYPE_I64},       {"U8", 1, LOOM_TYPE_U8},
    {"BOOL", 1, LOOM_TYPE_U8},     {"U16", 2, UINT32_MAX},          {"U32", 4, UINT32_MAX},
    {"U64", 8, UINT32_MAX},        {"F8_E5M2", 1, UINT32_MAX},      {"F8_E4M3", 1, UINT32_MAX},
    {"F8_E8M0", 1, UINT32_MAX},
};

typedef struct st_span {
    uint64_t begin, end;
    const char *name;
} st_span;

static int st_span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end ? 1 : 0;
}

static loom_status parse_entry(loom_file *file, const char *name, json_object *e, const uint8_t *buffer,
                               uint64_t buffer_off, uint64_t buffer_len, const char *what, st_span *span,
                               const char **unsupported, char *err, size_t err_size) {
    json_object *jd, *js, *jo;
    if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "dtype", &jd) ||
        !json_object_object_get_ex(e, "shape", &js) || !json_object_object_get_ex(e, "data_offsets", &jo))
        return loom_err(err, err_size, LOOM_ERR_FORMAT,
                        "%s: tensor '%s' needs an object with dtype, shape and data_offsets", what, name);
    if (!json_object_is_type(jd, json_type_string))
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", what, name);
    const char *dname = json_object_get_string(jd);
    const st_dtype *dt = NULL;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, dname)) dt = &st_dtypes[i];
    if (!dt) return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", what, name, dname);
    if (!json_object_is_type(js, json_type_array))
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s': shape is not an array", what, name);
    size_t nd = json_object_array_length(js);
    uint64_t dims[64] = {0}, nelem = 1;
    if (nd > 64) return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s': %zu dimensions", what, name, nd);
    for (size_t i = 0; i < nd; i++) {
        if (!json_u64(json_object_array_get_idx(js, i), &dims[i]))
            return loom_err(err, err_size, LOOM_ERR_FORMAT,
                            "%s: tensor '%s': dimension %zu is not a non-negative integer", what, name, i);
        if (dims[i] && nelem > UINT64_MAX / dims[i])
            return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s': the shape's product overflows", what,
                            name);
        nelem *= dims[i];
        if (dims[i] > (uint64_t)INT64_MAX)
            return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s': absurd dimension", what, name);
    }
    if (nelem > (uint64_t)INT64_MAX || nelem > UINT64_MAX / dt->bytes)
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s': absurd shape", what, name);
    uint64_t begin, end;
    if (!json_object_is_type(jo, json_type_array) || json_object_array_length(jo) != 2 ||
        !json_u64(json_object_array_get_idx(jo, 0), &begin) || !json_u64(json_object_array_get_idx(jo, 1), &end))
        return loom_err(err, err_size, LOOM_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets must be two non-negative integers", what, name);
    if (begin > end || end > buffer_len)
        return loom_err(err, err_size, LOOM_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 ") outside the %" PRIu64
                        "-byte buffer at byte %" PRIu64, what, name, begin, end, buffer_len, buffer_off);
    if (nelem * dt->bytes != end - begin)
        return loom_err(err, err_size, LOOM_ERR_FORMAT,
                        "%s: tensor '%s': shape needs %" PRIu64 " bytes of %s but data_offsets span %" PRIu64, what,
                        name, nelem * dt->bytes, dname, end - begin);
    span->begin = begin;
    span->end = end;
    span->name = name;
    if (dt->loom == UINT32_MAX || nd > 4) {
        if (!*unsupported) *unsupported = name;
        return LOOM_OK;
    }
    loom_file_tensor t;
    memset(&t, 0, sizeof t);
    t.type = dt->loom;
    t.n_dims = (uint32_t)nd;
    for (int d = 0; d < 4; d++) t.ne[d] = 1;
    for (size_t d = 0; d < nd; d++) t.ne[d] = (int64_t)dims[nd - 1 - d];
    t.size = end - begin;
    t.offset = buffer_off + begin;
    t.data = buffer + begin;
    if (!(t.name = loom_strdup(name))) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    if (loom_file_push_tensor(file, &t)) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    return LOOM_OK;
}

loom_status loom_safetensors_parse(loom_file *file, const uint8_t *image, uint64_t size, const char *what,
                                   char *err, size_t err_size) {
    if (!what) what = "safetensors";
    if (size < 8)
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: truncated: %" PRIu64 " bytes, the header length needs 8",
                        what, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | image[i];
    if (n > ST_MAX_HEADER)
        return loom_err(err, err_size, LOOM_ERR_FORMAT,
                        "%s: header length %" PRIu64 " at byte 0 exceeds the 100 MB limit", what, n);
    if (n > size - 8)
        return loom_err(err, err_size, LOOM_ERR_FORMAT,
                        "%s: header length %" PRIu64 " at byte 0 runs past the end of the %" PRIu64 "-byte file",
                        what, n, size);
    if (n < 2 || image[8] != '{')
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: the JSON header at byte 8 does not start with '{'", what);
    json_object *root;
    loom_status st = parse_json((const char *)image + 8, (size_t)n, what, &root, err, err_size);
    if (st) return st;
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: the header is not a JSON object", what);
    }
    const uint64_t buffer_off = 8 + n, buffer_len = size - 8 - n;
    const uint8_t *buffer = image + buffer_off;
    size_t n_entries = (size_t)json_object_object_length(root);
    st_span *spans = calloc(n_entries ? n_entries : 1, sizeof *spans);
    if (!spans) {
        json_object_put(root);
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t n_spans = 0;
    const char *unsupported = NULL;
    struct json_object_iterator it = json_object_iter_begin(root), it_end = json_object_iter_end(root);
    for (; !st && !json_object_iter_equal(&it, &it_end); json_object_iter_next(&it)) {
        const char *name = json_object_iter_peek_name(&it);
        json_object *val = json_object_iter_peek_value(&it);
        if (!strcmp(name, "__metadata__")) {
            if (!json_object_is_type(val, json_type_object)) {
                st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: __metadata__ is not an object", what);
                break;
            }
            struct json_object_iterator mi = json_object_iter_begin(val), me = json_object_iter_end(val);
            for (; !json_object_iter_equal(&mi, &me); json_object_iter_next(&mi)) {
                json_object *mv = json_object_iter_peek_value(&mi);
                const char *mk = json_object_iter_peek_name(&mi);
                if (!json_object_is_type(mv, json_type_string)) {
                    st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                                  what, mk);
                    break;
                }
                char *key = join_key("safetensors", mk);
                if (!key) {
                    st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
                    break;
                }
                /* shards repeat the same metadata: the first one wins */
                if (!loom_file_meta_find(file, key) && push_string_meta(file, key, json_object_get_string(mv)))
                    st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
                free(key);
                if (st) break;
            }
            continue;
        }
        st = parse_entry(file, name, val, buffer, buffer_off, buffer_len, what, &spans[n_spans], &unsupported, err,
                         err_size);
        if (!st) n_spans++;
    }
    if (!st) {
        /* the entries must tile the buffer exactly */
        qsort(spans, n_spans, sizeof *spans, st_span_cmp);
        uint64_t at = 0;
        for (size_t i = 0; i < n_spans && !st; i++) {
            if (spans[i].begin < at)
                st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap at buffer byte %" PRIu64
                              " (file byte %" PRIu64 ")", what, spans[i - 1].name, spans[i].name, spans[i].begin,
                              buffer_off + spans[i].begin);
            else if (spans[i].begin > at)
                st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: hole of %" PRIu64 " bytes before tensor '%s' at file "
                              "byte %" PRIu64, what, spans[i].begin - at, spans[i].name, buffer_off + at);
            at = spans[i].end;
        }
        if (!st && at != buffer_len)
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: %" PRIu64 " bytes after the last tensor (from file byte %"
                          PRIu64 ") belong to no tensor", what, buffer_len - at, buffer_off + at);
    }
    if (!st && unsupported)
        st = loom_err(err, err_size, LOOM_ERR_UNSUPPORTED,
                      "%s: tensor '%s' has a dtype or rank (more than 4 dimensions) Loom does not support", what,
                      unsupported);
    free(spans);
    json_object_put(root);
    return st;
}

/* ============================================================================================ */
/* config.json                                                                                  */
/* ============================================================================================ */

static loom_status flatten(loom_file *file, const char *key, json_object *v, int depth);

static loom_status flatten_array(loom_file *file, const char *key, json_object *v, int depth) {
    size_t n = json_object_array_length(v);
    bool all_int = true, all_num = true, all_str = true, all_bool = true;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        enum json_type t = json_object_get_type(e);
        all_int = all_int && t == json_type_int;
        all_num = all_num && (t == json_type_int || t == json_type_double);
        all_str = all_str && t == json_type_string;
        all_bool = all_bool && t == json_type_boolean;
    }
    if (!(all_num || all_str || all_bool)) {
        /* arrays of objects or mixed values: one key per element */
        for (size_t i = 0; i < n; i++) {
            char idx[32];
            snprintf(idx, sizeof idx, "%zu", i);
            char *k = join_key(key, idx);
            if (!k) return LOOM_ERR_OUT_OF_MEMORY;
            loom_status s = flatten(file, k, json_object_array_get_idx(v, i), depth + 1);
            free(k);
            if (s) return s;
        }
        return LOOM_OK;
    }
    loom_meta m;
    memset(&m, 0, sizeof m);
    m.type = LOOM_META_ARRAY;
    m.count = n;
    if (all_str && n) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) total += strlen(json_object_get_string(json_object_array_get_idx(v, i))) + 1;
        char **arr = malloc(n * sizeof(char *) + total);
        if (!arr) return LOOM_ERR_OUT_OF_MEMORY;
        char *bytes = (char *)(arr + n);
        for (size_t i = 0; i < n; i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(v, i));
            size_t l = strlen(s) + 1;
            memcpy(bytes, s, l);
            arr[i] = bytes;
            bytes += l;
        }
        m.elem_type = LOOM_META_STRING;
        m.v.arr = arr;
    } else if (all_bool && n) {
        bool *arr = malloc(n * sizeof *arr);
        if (!arr) return LOOM_ERR_OUT_OF_MEMORY;
        for (size_t i = 0; i < n; i++) arr[i] = json_object_get_boolean(json_object_array_get_idx(v, i));
        m.elem_type = LOOM_META_BOOL;
        m.v.arr = arr;
    } else if (all_int) {
        int64_t *arr = malloc((n ? n : 1) * sizeof *arr);
        if (!arr) return LOOM_ERR_OUT_OF_MEMORY;
        for (size_t i = 0; i < n; i++) arr[i] = json_object_get_int64(json_object_array_get_idx(v, i));
        m.elem_type = LOOM_META_I64;
        m.v.arr = arr;
    } else {
        double *arr = malloc(n * sizeof *arr);
        if (!arr) return LOOM_ERR_OUT_OF_MEMORY;
        for (size_t i = 0; i < n; i++) arr[i] = json_object_get_double(json_object_array_get_idx(v, i));
        m.elem_type = LOOM_META_F64;
        m.v.arr = arr;
    }
    if (!(m.key = loom_strdup(key))) {
        loom_meta_clear(&m);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    return loom_file_push_meta(file, &m);
}

static loom_status flatten(loom_file *file, const char *key, json_object *v, int depth) {
    if (depth > ST_JSON_DEPTH) return LOOM_OK;
    loom_meta m;
    memset(&m, 0, sizeof m);
    switch (json_object_get_type(v)) {
    case json_type_null: return LOOM_OK;
    case json_type_object: {
        struct json_object_iterator it = json_object_iter_begin(v), end = json_object_iter_end(v);
        for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
            char *k = join_key(key, json_object_iter_peek_name(&it));
            if (!k) return LOOM_ERR_OUT_OF_MEMORY;
            loom_status s = flatten(file, k, json_object_iter_peek_value(&it), depth + 1);
            free(k);
            if (s) return s;
        }
        return LOOM_OK;
    }
    case json_type_array: return flatten_array(file, key, v, depth);
    case json_type_boolean:
        m.type = LOOM_META_BOOL;
        m.v.b = json_object_get_boolean(v);
        break;
    case json_type_int:
        m.type = LOOM_META_I64;
        m.v.i64 = json_object_get_int64(v);
        break;
    case json_type_double:
        m.type = LOOM_META_F64;
        m.v.f64 = json_object_get_double(v);
        break;
    case json_type_string: return push_string_meta(file, key, json_object_get_string(v));
    }
    if (!(m.key = loom_strdup(key))) return LOOM_ERR_OUT_OF_MEMORY;
    return loom_file_push_meta(file, &m);
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static bool exists_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* config.json -> "config.*", tokenizer file paths -> "hf.*" (for files present in `dir`). */
static loom_status read_hf_side_files(loom_file *file, const char *dir, char *err, size_t err_size) {
    char *cfg = path_join(dir, "config.json");
    if (!cfg) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    loom_status st = LOOM_OK;
    if (exists_file(cfg)) {
        char *text;
        size_t len;
        json_object *root = NULL;
        st = read_text_file(cfg, ST_MAX_JSON_FILE, &text, &len, err, err_size);
        if (!st) {
            st = parse_json(text, len, cfg, &root, err, err_size);
            free(text);
        }
        if (!st && !json_object_is_type(root, json_type_object))
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: not a JSON object", cfg);
        if (!st && flatten(file, "config", root, 0))
            st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
        json_object_put(root);
    }
    free(cfg);
    static const char *const side[][2] = {{"tokenizer.json", "hf.tokenizer_json"},
                                          {"tokenizer_config.json", "hf.tokenizer_config_json"}};
    for (size_t i = 0; !st && i < 2; i++) {
        char *p = path_join(dir, side[i][0]);
        if (!p) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
        if (exists_file(p) && push_string_meta(file, side[i][1], p))
            st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
        free(p);
    }
    return st;
}

/* ============================================================================================ */
/* Shards and folders                                                                           */
/* ============================================================================================ */

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return loom_strdup(".");
    if (slash == path) return loom_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

static loom_status open_one(loom_file *file, const char *path, char *err, size_t err_size) {
    const uint8_t *data;
    uint64_t size;
    loom_status st = loom_file_map(file, path, &data, &size, err, err_size);
    if (st) return st;
    return loom_safetensors_parse(file, data, size, path, err, err_size);
}

typedef struct shard {
    const char *name; /* borrowed from the JSON */
    uint32_t first, count; /* tensor index range */
} shard;

static loom_status open_index_only(loom_file *file, const char *index_path, char *err, size_t err_size) {
    char *text;
    size_t len;
    loom_status st = read_text_file(index_path, ST_MAX_JSON_FILE, &text, &len, err, err_size);
    if (st) return st;
    json_object *root;
    st = parse_json(text, len, index_path, &root, err, err_size);
    free(text);
    if (st) return st;
    json_object *wm = NULL, *md = NULL;
    if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "weight_map", &wm) ||
        !json_object_is_type(wm, json_type_object)) {
        json_object_put(root);
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: no \"weight_map\" object", index_path);
    }
    char *dir = dir_of(index_path);
    size_t n_names = (size_t)json_object_object_length(wm);
    shard *shards = calloc(n_names ? n_names : 1, sizeof *shards);
    if (!dir || !shards) {
        free(dir);
        free(shards);
        json_object_put(root);
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t n_shards = 0;
    struct json_object_iterator it = json_object_iter_begin(wm), end = json_object_iter_end(wm);
    for (; !st && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        json_object *v = json_object_iter_peek_value(&it);
        const char *tname = json_object_iter_peek_name(&it);
        if (!json_object_is_type(v, json_type_string)) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: weight_map entry '%s' is not a file name", index_path,
                          tname);
            break;
        }
        const char *fname = json_object_get_string(v);
        if (!fname[0] || strchr(fname, '/') || !strcmp(fname, ".") || !strcmp(fname, "..")) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT,
                          "%s: weight_map entry '%s' names '%s', which is not a file beside the index", index_path,
                          tname, fname);
            break;
        }
        bool seen = false;
        for (size_t i = 0; i < n_shards && !seen; i++) seen = !strcmp(shards[i].name, fname);
        if (!seen) shards[n_shards++].name = fname;
    }
    for (size_t i = 0; !st && i < n_shards; i++) {
        char *p = path_join(dir, shards[i].name);
        if (!p) {
            st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        shards[i].first = loom_file_tensor_count(file);
        st = open_one(file, p, err, err_size);
        free(p);
        shards[i].count = loom_file_tensor_count(file) - shards[i].first;
        if (!st) st = loom_file_finish(file, err, err_size); /* duplicates across shards; lookups */
    }
    /* every listed tensor is in the shard the index names, and nothing else is in the shards */
    it = json_object_iter_begin(wm);
    for (; !st && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *tname = json_object_iter_peek_name(&it);
        const char *fname = json_object_get_string(json_object_iter_peek_value(&it));
        const loom_file_tensor *t = loom_file_tensor_find(file, tname);
        if (!t) {
            st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s' is not in shard '%s'", index_path, tname,
                          fname);
            break;
        }
        uint32_t idx = (uint32_t)(t - loom_file_tensor_at(file, 0));
        for (size_t i = 0; i < n_shards; i++) {
            if (!strcmp(shards[i].name, fname) && (idx < shards[i].first || idx >= shards[i].first + shards[i].count))
                st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: tensor '%s' is not in shard '%s'", index_path,
                              tname, fname);
        }
    }
    if (!st && loom_file_tensor_count(file) != n_names)
        st = loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: the shards hold %" PRIu32 " tensors but the index lists %zu",
                      index_path, loom_file_tensor_count(file), n_names);
    if (!st && json_object_object_get_ex(root, "metadata", &md) && json_object_is_type(md, json_type_object)) {
        if (flatten(file, "safetensors.index", md, 0))
            st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    free(shards);
    free(dir);
    json_object_put(root);
    return st;
}

loom_status loom_safetensors_open_index(loom_file *file, const char *index_path, char *err, size_t err_size) {
    loom_status st = open_index_only(file, index_path, err, err_size);
    if (st) return st;
    char *dir = dir_of(index_path);
    if (!dir) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    st = read_hf_side_files(file, dir, err, err_size);
    free(dir);
    return st;
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

loom_status loom_hf_folder_open(loom_file *file, const char *dir, char *err, size_t err_size) {
    char *index = path_join(dir, "model.safetensors.index.json");
    char *single = path_join(dir, "model.safetensors");
    char *found = NULL;
    loom_status st = LOOM_OK;
    if (!index || !single) {
        st = loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    } else if (exists_file(index)) {
        st = open_index_only(file, index, err, err_size);
    } else if (exists_file(single)) {
        st = open_one(file, single, err, err_size);
    } else {
        /* exactly one *.safetensors file, or an index under another name */
        DIR *d = opendir(dir);
        if (!d) {
            st = loom_err(err, err_size, LOOM_ERR_IO, "cannot read folder '%s': %s", dir, strerror(errno));
        } else {
            int n_st = 0, n_idx = 0;
            char *idx_name = NULL;
            for (struct dirent *e; (e = readdir(d));) {
                if (has_suffix(e->d_name, ".safetensors")) {
                    n_st++;
                    if (!found) found = loom_strdup(e->d_name);
                } else if (has_suffix(e->d_name, ".safetensors.index.json")) {
                    n_idx++;
                    if (!idx_name) idx_name = loom_strdup(e->d_name);
                }
            }
            closedir(d);
            if (n_idx == 1 && idx_name) {
                char *p = path_join(dir, idx_name);
                st = p ? open_index_only(file, p, err, err_size)
                       : loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
                free(p);
            } else if (n_st == 1 && found) {
                char *p = path_join(dir, found);
                st = p ? open_one(file, p, err, err_size)
                       : loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
                free(p);
            } else if (n_st > 1 || n_idx > 1) {
                st = loom_err(err, err_size, LOOM_ERR_FORMAT,
                              "folder '%s' holds several .safetensors files or indexes and no "
                              "model.safetensors.index.json", dir);
            } else {
                st = loom_err(err, err_size, LOOM_ERR_NOT_FOUND, "folder '%s' holds no .safetensors model", dir);
            }
            free(idx_name);
        }
    }
    if (!st) st = read_hf_side_files(file, dir, err, err_size);
    free(found);
    free(index);
    free(single);
    return st;
}

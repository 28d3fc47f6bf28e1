/*
 * file.c - loom_file: one model-file abstraction over GGUF files, safetensors files (single or
 * sharded) and Hugging Face folders.
 *
 * The file owns its read-only mappings; tensors point into them (zero copy). Metadata values are
 * small copies. The readers (gguf.c, safetensors.c) fill a loom_file through the push functions
 * below and finish it with loom_file_finish, which builds hash indexes for lookups and rejects
 * duplicate names.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct file_mapping {
    void *addr;
    size_t size;
    bool is_mmap;
} file_mapping;

struct loom_file {
    const char *format;
    char *path;
    uint64_t size; /* bytes of every mapped file together */
    file_mapping *maps;
    uint32_t n_maps, cap_maps;
    loom_meta *meta;
    uint32_t n_meta, cap_meta;
    loom_file_tensor *tensors;
    uint32_t n_tensors, cap_tensors;
    uint32_t *meta_index; /* open addressing: entry index + 1, 0 = empty */
    uint32_t *tensor_index;
    uint32_t meta_mask, tensor_mask;
};

/* ============================================================================================ */
/* Construction                                                                                 */
/* ============================================================================================ */

loom_file *loom_file_new(const char *format, const char *path) {
    loom_file *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->format = format;
    f->path = loom_strdup(path ? path : "");
    if (!f->path) {
        free(f);
        return NULL;
    }
    return f;
}

static bool grow(void **arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap) return true;
    if (n >= UINT32_MAX / 2) return false;
    uint32_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

loom_status loom_file_keep_mapping(loom_file *file, void *addr, size_t size, bool is_mmap) {
    if (!grow((void **)&file->maps, &file->cap_maps, file->n_maps, sizeof *file->maps)) {
        if (is_mmap) munmap(addr, size);
        else free(addr);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    file->maps[file->n_maps++] = (file_mapping){addr, size, is_mmap};
    file->size += size;
    return LOOM_OK;
}

void loom_meta_clear(loom_meta *m) {
    if (!m) return;
    free(m->key);
    if (m->type == LOOM_META_STRING) {
        free(m->v.str);
    } else if (m->type == LOOM_META_ARRAY) {
        if (m->elem_type == LOOM_META_ARRAY && m->v.arr) {
            loom_meta *sub = m->v.arr;
            for (uint64_t i = 0; i < m->count; i++) loom_meta_clear(&sub[i]);
        }
        free(m->v.arr); /* string arrays: pointers and bytes are one block */
    }
    memset(m, 0, sizeof *m);
}

loom_status loom_file_push_meta(loom_file *file, loom_meta *entry) {
    if (!grow((void **)&file->meta, &file->cap_meta, file->n_meta, sizeof *file->meta)) {
        loom_meta_clear(entry);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    file->meta[file->n_meta++] = *entry;
    memset(entry, 0, sizeof *entry);
    return LOOM_OK;
}

loom_status loom_file_push_tensor(loom_file *file, loom_file_tensor *t) {
    if (!grow((void **)&file->tensors, &file->cap_tensors, file->n_tensors, sizeof *file->tensors)) {
        free(t->name);
        t->name = NULL;
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    file->tensors[file->n_tensors++] = *t;
    t->name = NULL;
    return LOOM_OK;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Build a hash index of n names; returns the duplicate's index + 1, or 0 when none. */
static loom_status build_index(uint32_t n, const char *(*name_of)(const loom_file *, uint32_t), const loom_file *f,
                               uint32_t **index, uint32_t *mask, uint32_t *dup) {
    uint32_t size = 16;
    while (size < 2u * n + 2u) size *= 2;
    uint32_t *tab = calloc(size, sizeof *tab);
    if (!tab) return LOOM_ERR_OUT_OF_MEMORY;
    *dup = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *name = name_of(f, i);
        uint32_t slot = (uint32_t)hash_str(name) & (size - 1);
        while (tab[slot]) {
            if (!strcmp(name_of(f, tab[slot] - 1), name)) {
                *dup = i + 1;
                break;
            }
            slot = (slot + 1) & (size - 1);
        }
        if (*dup) break;
        tab[slot] = i + 1;
    }
    *index = tab;
    *mask = size - 1;
    return LOOM_OK;
}

static const char *meta_name(const loom_file *f, uint32_t i) { return f->meta[i].key; }
static const char *tensor_name(const loom_file *f, uint32_t i) { return f->tensors[i].name; }

loom_status loom_file_finish(loom_file *file, char *err, size_t err_size) {
    uint32_t dup = 0;
    free(file->meta_index);
    free(file->tensor_index);
    file->meta_index = file->tensor_index = NULL;
    if (build_index(file->n_meta, meta_name, file, &file->meta_index, &file->meta_mask, &dup))
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory indexing metadata");
    if (dup)
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: duplicate metadata key '%s'", file->format,
                        file->meta[dup - 1].key);
    if (build_index(file->n_tensors, tensor_name, file, &file->tensor_index, &file->tensor_mask, &dup))
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory indexing tensors");
    if (dup)
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "%s: duplicate tensor name '%s'", file->format,
                        file->tensors[dup - 1].name);
    return LOOM_OK;
}

/* ============================================================================================ */
/* Opening                                                                                      */
/* ============================================================================================ */

loom_status loom_file_map(loom_file *file, const char *path, const uint8_t **data, uint64_t *size, char *err,
                          size_t err_size) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return loom_err(err, err_size, LOOM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return loom_err(err, err_size, LOOM_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return loom_err(err, err_size, LOOM_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size <= 0) {
        close(fd);
        return loom_err(err, err_size, LOOM_ERR_FORMAT, "'%s' is empty", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return loom_err(err, err_size, LOOM_ERR_IO, "'%s' is too large to map", path);
    }
    void *addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (addr == MAP_FAILED) return loom_err(err, err_size, LOOM_ERR_IO, "cannot map '%s': %s", path, strerror(e));
    loom_status st2 = loom_file_keep_mapping(file, addr, (size_t)st.st_size, true);
    if (st2) return loom_err(err, err_size, st2, "out of memory");
    *data = addr;
    *size = (uint64_t)st.st_size;
    return LOOM_OK;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static loom_status open_single(loom_file *f, const char *path, char *err, size_t err_size) {
    const uint8_t *data;
    uint64_t size;
    loom_status st = loom_file_map(f, path, &data, &size, err, err_size);
    if (st) return st;
    if (size >= 4 && !memcmp(data, "GGUF", 4)) {
        f->format = "gguf";
        return loom_gguf_parse(f, data, size, err, err_size);
    }
    if (ends_with(path, ".safetensors") || (size >= 9 && data[8] == '{')) {
        f->format = "safetensors";
        return loom_safetensors_parse(f, data, size, path, err, err_size);
    }
    return loom_err(err, err_size, LOOM_ERR_FORMAT,
                    "'%s' is neither a GGUF file (no 'GGUF' magic at byte 0) nor a safetensors file", path);
}

loom_status loom_file_open(const char *path, loom_file **out, char *err, size_t err_size) {
    if (out) *out = NULL;
    if (!path || !out) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "no path given");
    loom_file *f = loom_file_new("gguf", path);
    if (!f) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    struct stat st;
    loom_status s;
    if (stat(path, &st) != 0) {
        s = loom_err(err, err_size, LOOM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        f->format = "safetensors";
        s = loom_hf_folder_open(f, path, err, err_size);
    } else if (ends_with(path, ".json")) {
        f->format = "safetensors";
        s = loom_safetensors_open_index(f, path, err, err_size);
    } else {
        s = open_single(f, path, err, err_size);
    }
    if (!s) s = loom_file_finish(f, err, err_size);
    if (s) {
        loom_file_close(f);
        return s;
    }
    *out = f;
    return LOOM_OK;
}

loom_status loom_file_open_memory(const void *data, size_t size, const char *format, loom_file **out, char *err,
                                  size_t err_size) {
    if (out) *out = NULL;
    if (!out || !format || (!data && size)) return loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "bad argument");
    loom_file *f = loom_file_new(NULL, "");
    if (!f) return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    loom_status s;
    f->size = size;
    if (!strcmp(format, "gguf")) {
        f->format = "gguf";
        s = loom_gguf_parse(f, data, size, err, err_size);
    } else if (!strcmp(format, "safetensors")) {
        f->format = "safetensors";
        s = loom_safetensors_parse(f, data, size, "<memory>", err, err_size);
    } else {
        s = loom_err(err, err_size, LOOM_ERR_INVALID_ARGUMENT, "unknown format '%s'", format);
    }
    if (!s) s = loom_file_finish(f, err, err_size);
    if (s) {
        loom_file_close(f);
        return s;
    }
    *out = f;
    return LOOM_OK;
}

void loom_file_close(loom_file *f) {
    if (!f) return;
    for (uint32_t i = 0; i < f->n_meta; i++) loom_meta_clear(&f->meta[i]);
    for (uint32_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (uint32_t i = 0; i < f->n_maps; i++) {
        if (f->maps[i].is_mmap) munmap(f->maps[i].addr, f->maps[i].size);
        else free(f->maps[i].addr);
    }
    free(f->maps);
    free(f->meta);
    free(f->tensors);
    free(f->meta_index);
    free(f->tensor_index);
    free(f->path);
    free(f);
}

/* ============================================================================================ */
/* Accessors                                                                                    */
/* ============================================================================================ */

const char *loom_file_format(const loom_file *f) { return f ? f->format : NULL; }
const char *loom_file_path(const loom_file *f) { return f ? f->path : NULL; }
uint64_t loom_file_size(const loom_file *f) { return f ? f->size : 0; }
uint32_t loom_file_meta_count(const loom_file *f) { return f ? f->n_meta : 0; }
uint32_t loom_file_tensor_count(const loom_file *f) { return f ? f->n_tensors : 0; }

const loom_meta *loom_file_meta_at(const loom_file *f, uint32_t i) {
    return f && i < f->n_meta ? &f->meta[i] : NULL;
}

const loom_file_tensor *loom_file_tensor_at(const loom_file *f, uint32_t i) {
    return f && i < f->n_tensors ? &f->tensors[i] : NULL;
}

loom_file_tensor *loom_file_tensor_mut(loom_file *f, uint32_t i) {
    return f && i < f->n_tensors ? &f->tensors[i] : NULL;
}

static int64_t lookup(const uint32_t *tab, uint32_t mask, const char *name, const loom_file *f,
                      const char *(*name_of)(const loom_file *, uint32_t)) {
    if (!tab || !name) return -1;
    uint32_t slot = (uint32_t)hash_str(name) & mask;
    while (tab[slot]) {
        if (!strcmp(name_of(f, tab[slot] - 1), name)) return (int64_t)tab[slot] - 1;
        slot = (slot + 1) & mask;
    }
    return -1;
}

const loom_meta *loom_file_meta_find(const loom_file *f, const char *key) {
    if (!f) return NULL;
    int64_t i = lookup(f->meta_index, f->meta_mask, key, f, meta_name);
    return i < 0 ? NULL : &f->meta[i];
}

const loom_file_tensor *loom_file_tensor_find(const loom_file *f, const char *name) {
    if (!f) return NULL;
    int64_t i = lookup(f->tensor_index, f->tensor_mask, name, f, tensor_name);
    return i < 0 ? NULL : &f->tensors[i];
}

/* ============================================================================================ */
/* Typed metadata access and rendering                                                          */
/* ============================================================================================ */

loom_status loom_meta_as_int(const loom_meta *m, int64_t *out) {
    switch (m->type) {
    case LOOM_META_U8:
    case LOOM_META_U16:
    case LOOM_META_U32: *out = (int64_t)m->v.u64; return LOOM_OK;
    case LOOM_META_U64:
        if (m->v.u64 > (uint64_t)INT64_MAX) return LOOM_ERR_FORMAT;
        *out = (int64_t)m->v.u64;
        return LOOM_OK;
    case LOOM_META_I8:
    case LOOM_META_I16:
    case LOOM_META_I32:
    case LOOM_META_I64: *out = m->v.i64; return LOOM_OK;
    case LOOM_META_BOOL: *out = m->v.b ? 1 : 0; return LOOM_OK;
    default: return LOOM_ERR_FORMAT;
    }
}

loom_status loom_meta_as_float(const loom_meta *m, double *out) {
    if (m->type == LOOM_META_F32 || m->type == LOOM_META_F64) {
        *out = m->v.f64;
        return LOOM_OK;
    }
    if (m->type == LOOM_META_U64) {
        *out = (double)m->v.u64;
        return LOOM_OK;
    }
    if (m->type == LOOM_META_BOOL) return LOOM_ERR_FORMAT;
    int64_t i;
    loom_status s = loom_meta_as_int(m, &i);
    if (s) return s;
    *out = (double)i;
    return LOOM_OK;
}

loom_status loom_file_meta_int(const loom_file *f, const char *key, int64_t *out) {
    const loom_meta *m = loom_file_meta_find(f, key);
    if (!m) return LOOM_ERR_NOT_FOUND;
    return loom_meta_as_int(m, out);
}

loom_status loom_file_meta_float(const loom_file *f, const char *key, double *out) {
    const loom_meta *m = loom_file_meta_find(f, key);
    if (!m) return LOOM_ERR_NOT_FOUND;
    return loom_meta_as_float(m, out);
}

loom_status loom_file_meta_string(const loom_file *f, const char *key, const char **out) {
    const loom_meta *m = loom_file_meta_find(f, key);
    if (!m) return LOOM_ERR_NOT_FOUND;
    if (m->type != LOOM_META_STRING) return LOOM_ERR_FORMAT;
    *out = m->v.str;
    return LOOM_OK;
}

const char *loom_meta_type_name(uint32_t type) {
    static const char *const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

/* A growing output with snprintf semantics. */
typedef struct textbuf {
    char *buf;
    size_t size, len;
} textbuf;

static void tb_printf(textbuf *t, const char *fmt, ...) LOOM_PRINTF(2, 3);
static void tb_printf(textbuf *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = t->len < t->size ? t->size - t->len : 0;
    int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}

static void tb_string(textbuf *t, const char *s, size_t max) {
    tb_printf(t, "\"");
    size_t i = 0;
    for (; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') tb_printf(t, "\\%c", c);
        else if (c == '\n') tb_printf(t, "\\n");
        else if (c == '\t') tb_printf(t, "\\t");
        else if (c < 0x20 || c == 0x7f) tb_printf(t, "\\x%02x", c);
        else tb_printf(t, "%c", c);
    }
    tb_printf(t, s[i] ? "...\"" : "\"");
}

static void tb_scalar(textbuf *t, uint32_t type, const void *p) {
    switch (type) {
    case LOOM_META_U8: tb_printf(t, "%u", (unsigned)*(const uint8_t *)p); break;
    case LOOM_META_I8: tb_printf(t, "%d", (int)*(const int8_t *)p); break;
    case LOOM_META_U16: tb_printf(t, "%u", (unsigned)*(const uint16_t *)p); break;
    case LOOM_META_I16: tb_printf(t, "%d", (int)*(const int16_t *)p); break;
    case LOOM_META_U32: tb_printf(t, "%" PRIu32, *(const uint32_t *)p); break;
    case LOOM_META_I32: tb_printf(t, "%" PRId32, *(const int32_t *)p); break;
    case LOOM_META_U64: tb_printf(t, "%" PRIu64, *(const uint64_t *)p); break;
    case LOOM_META_I64: tb_printf(t, "%" PRId64, *(const int64_t *)p); break;
    case LOOM_META_F32: tb_printf(t, "%.9g", (double)*(const float *)p); break;
    case LOOM_META_F64: tb_printf(t, "%.17g", *(const double *)p); break;
    case LOOM_META_BOOL: tb_printf(t, "%s", *(const bool *)p ? "true" : "false"); break;
    case LOOM_META_STRING: tb_string(t, *(const char *const *)p, 200); break;
    default: tb_printf(t, "?"); break;
    }
}

static size_t meta_elem_size(uint32_t type) {
    switch (type) {
    case LOOM_META_U8:
    case LOOM_META_I8: return 1;
    case LOOM_META_U16:
    case LOOM_META_I16: return 2;
    case LOOM_META_U32:
    case LOOM_META_I32: return 4;
    case LOOM_META_F32: return sizeof(float);
    case LOOM_META_BOOL: return sizeof(bool);
    case LOOM_META_STRING: return sizeof(char *);
    case LOOM_META_ARRAY: return sizeof(loom_meta);
    case LOOM_META_U64:
    case LOOM_META_I64: return 8;
    case LOOM_META_F64: return sizeof(double);
    default: return 0;
    }
}

static void tb_meta(textbuf *t, const loom_meta *m, uint32_t max_elems, int depth) {
    switch (m->type) {
    case LOOM_META_U8:
    case LOOM_META_U16:
    case LOOM_META_U32:
    case LOOM_META_U64: tb_printf(t, "%" PRIu64, m->v.u64); break;
    case LOOM_META_I8:
    case LOOM_META_I16:
    case LOOM_META_I32:
    case LOOM_META_I64: tb_printf(t, "%" PRId64, m->v.i64); break;
    case LOOM_META_F32: tb_printf(t, "%.9g", m->v.f64); break;
    case LOOM_META_F64: tb_printf(t, "%.17g", m->v.f64); break;
    case LOOM_META_BOOL: tb_printf(t, "%s", m->v.b ? "true" : "false"); break;
    case LOOM_META_STRING: tb_string(t, m->v.str, 400); break;
    case LOOM_META_ARRAY: {
        tb_printf(t, "[%s; %" PRIu64 "]", loom_meta_type_name(m->elem_type), m->count);
        uint64_t shown = m->count < max_elems ? m->count : max_elems;
        if (depth > 3) shown = 0;
        const uint8_t *p = m->v.arr;
        size_t es = meta_elem_size(m->elem_type);
        for (uint64_t i = 0; i < shown; i++) {
            tb_printf(t, i ? ", " : " ");
            if (m->elem_type == LOOM_META_ARRAY) tb_meta(t, (const loom_meta *)(const void *)(p + i * es), max_elems, depth + 1);
            else tb_scalar(t, m->elem_type, p + i * es);
        }
        if (shown < m->count) tb_printf(t, ", ...");
        break;
    }
    default: tb_printf(t, "?"); break;
    }
}

size_t loom_meta_format(const loom_meta *m, uint32_t max_elems, char *buf, size_t size) {
    textbuf t = {buf, size, 0};
    if (buf && size) buf[0] = 0;
    if (m) tb_meta(&t, m, max_elems, 0);
    return t.len;
}

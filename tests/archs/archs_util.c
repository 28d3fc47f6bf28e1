/*
 * archs_util.c - see archs_util.h.
 */
#define _GNU_SOURCE
#include "archs_util.h"

#include <json-c/json.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int g_failures = 0;

/* ======================================================================================== */
/* fp16                                                                                     */
/* ======================================================================================== */

float f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal */
            float f = (float)man / 1024.0f / 16384.0f;
            return (h >> 15) ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exp = (int32_t)((x >> 23) & 255) - 127 + 15;
    uint32_t man = x & 0x7fffffu;
    if (((x >> 23) & 255) == 255) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000u;
        const uint32_t shift = (uint32_t)(14 - exp);
        uint32_t h = man >> shift;
        const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (man >> 13);
    const uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

/* ======================================================================================== */
/* safetensors                                                                              */
/* ======================================================================================== */

char *read_text(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) {
        buf[n] = 0;
        if (len) *len = (size_t)n;
    }
    return buf;
}

int write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, fp) == n;
    return fclose(fp) == 0 && ok ? 0 : -1;
}

int st_load(const char *path, st_file *f) {
    memset(f, 0, sizeof *f);
    f->buf = (uint8_t *)read_text(path, &f->size);
    if (!f->buf || f->size < 8) return -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | f->buf[i];
    if (hl > f->size - 8) return -1;
    json_tokener *tok = json_tokener_new();
    json_object *root = json_tokener_parse_ex(tok, (const char *)f->buf + 8, (int)hl);
    json_tokener_free(tok);
    if (!root) return -1;
    const uint8_t *data = f->buf + 8 + hl;
    f->tensors = calloc((size_t)json_object_object_length(root) + 1, sizeof(st_tensor));
    json_object_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) continue;
        st_tensor *t = &f->tensors[f->n_tensors++];
        snprintf(t->name, sizeof t->name, "%s", key);
        json_object *o;
        json_object_object_get_ex(val, "dtype", &o);
        snprintf(t->dtype, sizeof t->dtype, "%s", json_object_get_string(o));
        json_object_object_get_ex(val, "shape", &o);
        t->n_dims = (int)json_object_array_length(o);
        for (int i = 0; i < t->n_dims && i < 4; i++) t->shape[i] = json_object_get_int64(json_object_array_get_idx(o, (size_t)i));
        json_object_object_get_ex(val, "data_offsets", &o);
        const int64_t b = json_object_get_int64(json_object_array_get_idx(o, 0)),
                      e = json_object_get_int64(json_object_array_get_idx(o, 1));
        t->data = data + b;
        t->bytes = (size_t)(e - b);
    }
    json_object_put(root);
    return 0;
}

void st_free(st_file *f) {
    free(f->buf);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

float *st_to_f32(const st_tensor *t, size_t *n) {
    size_t es = !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16") ? 2 : 4;
    size_t cnt = t->bytes / es;
    float *out = malloc((cnt ? cnt : 1) * sizeof(float));
    for (size_t i = 0; i < cnt; i++) {
        if (!strcmp(t->dtype, "F16")) {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);
            out[i] = f16_to_f32(h);
        } else if (!strcmp(t->dtype, "BF16")) {
            uint16_t h;
            memcpy(&h, t->data + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[i], &bits, 4);
        } else if (!strcmp(t->dtype, "I32")) {
            int32_t v;
            memcpy(&v, t->data + 4 * i, 4);
            out[i] = (float)v;
        } else {
            memcpy(&out[i], t->data + 4 * i, 4);
        }
    }
    if (n) *n = cnt;
    return out;
}

void st_writer_add(st_writer *w, const char *name, const char *dtype, int n_dims, const int64_t *shape,
                   const void *data, size_t bytes) {
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->tensors = realloc(w->tensors, (size_t)w->cap * sizeof *w->tensors);
        w->blobs = realloc(w->blobs, (size_t)w->cap * sizeof *w->blobs);
    }
    st_tensor *t = &w->tensors[w->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++) t->shape[i] = shape[i];
    t->bytes = bytes;
    w->blobs[w->n] = malloc(bytes ? bytes : 1);
    memcpy(w->blobs[w->n], data, bytes);
    w->n++;
}

void st_writer_add_all(st_writer *w, const st_file *f,
                       const char *(*rename)(const char *name, char *buf, size_t size, void *ud), void *ud) {
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        char buf[256];
        const char *name = rename ? rename(t->name, buf, sizeof buf, ud) : t->name;
        if (name) st_writer_add(w, name, t->dtype, t->n_dims, t->shape, t->data, t->bytes);
    }
}

int st_writer_write(const st_writer *w, const char *path) {
    json_object *root = json_object_new_object();
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const st_tensor *t = &w->tensors[i];
        json_object *o = json_object_new_object(), *shape = json_object_new_array(), *offs = json_object_new_array();
        json_object_object_add(o, "dtype", json_object_new_string(t->dtype));
        for (int d = 0; d < t->n_dims; d++) json_object_array_add(shape, json_object_new_int64(t->shape[d]));
        json_object_object_add(o, "shape", shape);
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + t->bytes)));
        json_object_object_add(o, "data_offsets", offs);
        json_object_object_add(root, t->name, o);
        off += t->bytes;
    }
    const char *hdr = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    FILE *fp = fopen(path, "wb");
    int ok = fp != NULL;
    if (fp) {
        uint8_t len[8];
        for (int i = 0; i < 8; i++) len[i] = (uint8_t)(padded >> (8 * i));
        ok = fwrite(len, 1, 8, fp) == 8 && fwrite(hdr, 1, hl, fp) == hl;
        for (size_t i = hl; i < padded; i++) ok = ok && fputc(' ', fp) != EOF;
        for (int i = 0; i < w->n; i++) ok = ok && fwrite(w->blobs[i], 1, w->tensors[i].bytes, fp) == w->tensors[i].bytes;
        ok = fclose(fp) == 0 && ok;
    }
    json_object_put(root);
    return ok ? 0 : -1;
}

void st_writer_free(st_writer *w) {
    for (int i = 0; i < w->n; i++) free(w->blobs[i]);
    free(w->blobs);
    free(w->tensors);
    memset(w, 0, sizeof *w);
}

/* ======================================================================================== */
/* Paths                                                                                    */
/* ======================================================================================== */

const char *archs_fixture_dir(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/archs", LOOM_TEST_SHARED_DIR);
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? path : NULL;
}

char *make_temp_dir(const char *tag) {
    char tmpl[512];
    const char *base = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/loom-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

int mkdir_p(const char *dir) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ======================================================================================== */
/* Running                                                                                  */
/* ======================================================================================== */

loom_engine *archs_engine(void) {
    loom_options *o = NULL;
    loom_options_create(&o);
    loom_options_set(o, "kv_type", "f32", LOOM_SOURCE_CLI);
    /* the reference backend unless LOOM_TEST_BACKEND names another (e.g. cpu_opt) */
    const char *backend = getenv("LOOM_TEST_BACKEND");
    loom_options_set(o, "backend", backend && *backend ? backend : "cpu", LOOM_SOURCE_CLI);
    loom_engine *e = NULL;
    char err[1024] = "";
    loom_status st = loom_engine_create(o, &e, err, sizeof err);
    loom_options_free(o);
    if (st != LOOM_OK) fprintf(stderr, "engine: %s (%s)\n", loom_status_string(st), err);
    return e;
}

loom_model *archs_load(loom_engine *e, const char *path) {
    loom_model *m = NULL;
    loom_status st = loom_model_load(e, path, NULL, &m);
    if (st != LOOM_OK) fprintf(stderr, "load %s: %s: %s\n", path, loom_status_string(st), loom_engine_last_error(e));
    return m;
}

loom_context *archs_context(loom_model *m, uint32_t n_ctx, uint32_t n_batch) {
    loom_context_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.n_threads = 1;
    loom_context *c = NULL;
    loom_status st = loom_context_create(m, &p, &c);
    if (st != LOOM_OK)
        fprintf(stderr, "context: %s: %s\n", loom_status_string(st), loom_engine_last_error(NULL) ? "" : "");
    return c;
}

int archs_eval(loom_context *ctx, const int32_t *tokens, size_t n, const size_t *sizes, size_t n_sizes,
               int64_t n_vocab, float *out) {
    size_t pos = 0, k = 0;
    while (pos < n) {
        size_t len = sizes && k < n_sizes ? sizes[k] : n - pos;
        if (len > n - pos) len = n - pos;
        k++;
        const uint32_t flags = len == 1 ? LOOM_EVAL_LOGITS_LAST : LOOM_EVAL_LOGITS_ALL;
        loom_status st = loom_context_eval(ctx, tokens + pos, len, flags);
        if (st != LOOM_OK) {
            fprintf(stderr, "eval at %zu (+%zu): %s: %s\n", pos, len, loom_status_string(st),
                    loom_context_last_error(ctx));
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            const float *l = loom_context_logits(ctx, len == 1 ? -1 : (int32_t)i);
            if (!l) {
                fprintf(stderr, "no logits for token %zu\n", pos + i);
                return -1;
            }
            memcpy(out + (pos + i) * (size_t)n_vocab, l, (size_t)n_vocab * sizeof(float));
        }
        pos += len;
    }
    return 0;
}

void archs_diff(const float *got, const float *golden, size_t n, double *max_diff, double *max_golden) {
    double md = 0, mg = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)golden[i]);
        if (!(d <= md)) md = d; /* NaN propagates as the maximum */
        if (fabs((double)golden[i]) > mg) mg = fabs((double)golden[i]);
    }
    *max_diff = md;
    *max_golden = mg;
}

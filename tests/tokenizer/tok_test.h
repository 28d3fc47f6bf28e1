/*
 * tok_test.h - helpers shared by the tokenizer tests: checks, files, the fixture format written by
 * scripts/tokenizer_reference.py (LTOKFIX2, described there), WikiText lines.
 */
#ifndef LOOM_TOK_TEST_H
#define LOOM_TOK_TEST_H

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tt_failures;

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                   \
            tt_failures++;                                                                                             \
        }                                                                                                              \
    } while (0)
#define CHECK_MSG(cond, ...)                                                                                           \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                                   \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            tt_failures++;                                                                                             \
        }                                                                                                              \
    } while (0)

static inline char *tt_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    *len = n;
    return buf;
}

static inline const char *tt_find_model(char *buf, size_t size) {
    const char *env = getenv("LOOM_TEST_MODEL");
    if (env && *env) return access(env, R_OK) == 0 ? env : NULL;
    const char *home = getenv("HOME");
    if (home) {
        snprintf(buf, size, "%s/.cache/loom/SmolLM2-135M-Instruct.Q4_1.gguf", home);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

static inline uint64_t tt_ids_hash(const int32_t *ids, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int k = 0; k < 4; k++) {
            h ^= (v >> (8 * k)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

/* ---- fixtures ---- */
enum { TT_SRC_INLINE = 0, TT_SRC_WIKI_WHOLE = 1, TT_SRC_WIKI_LINES = 2, TT_SRC_PIECES = 3, TT_SRC_PIECES_EMPTY = 4 };

typedef struct tt_record {
    uint32_t flags, src, elem_size;
    bool add_special, parse_special;
    uint32_t aux;
    const char *text; /* aux bytes (inline text / pieces blob) */
    uint32_t n;
    const unsigned char *elems;
} tt_record;

typedef struct tt_fixture {
    char *data;
    size_t size;
    tt_record *rec;
    uint32_t n_rec;
} tt_fixture;

static inline uint32_t tt_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Element i of a record as a 64-bit value (ids, lengths or hashes). */
static inline uint64_t tt_elem(const tt_record *r, uint32_t i) {
    const unsigned char *p = r->elems + (size_t)i * r->elem_size;
    uint64_t v = 0;
    for (uint32_t k = 0; k < r->elem_size; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static inline bool tt_fixture_load(const char *path, tt_fixture *fx) {
    memset(fx, 0, sizeof *fx);
    fx->data = tt_read_file(path, &fx->size);
    if (!fx->data) {
        fprintf(stderr, "cannot read fixture %s\n", path);
        return false;
    }
    const unsigned char *p = (const unsigned char *)fx->data, *end = p + fx->size;
    if (fx->size < 12 || memcmp(p, "LTOKFIX2", 8)) goto bad;
    fx->n_rec = tt_u32(p + 8);
    p += 12;
    fx->rec = calloc(fx->n_rec ? fx->n_rec : 1, sizeof *fx->rec);
    if (!fx->rec) goto bad;
    for (uint32_t i = 0; i < fx->n_rec; i++) {
        tt_record *r = &fx->rec[i];
        if (end - p < 8) goto bad;
        r->flags = tt_u32(p);
        r->aux = tt_u32(p + 4);
        p += 8;
        r->add_special = r->flags & 1;
        r->parse_special = (r->flags >> 1) & 1;
        r->src = (r->flags >> 8) & 0xFF;
        r->elem_size = (r->flags >> 16) & 0xFF;
        if (r->src == TT_SRC_INLINE || r->src == TT_SRC_PIECES) {
            if ((size_t)(end - p) < r->aux) goto bad;
            r->text = (const char *)p;
            p += r->aux;
        }
        if (end - p < 4) goto bad;
        r->n = tt_u32(p);
        p += 4;
        if ((size_t)(end - p) < (size_t)r->n * r->elem_size) goto bad;
        r->elems = p;
        p += (size_t)r->n * r->elem_size;
    }
    return true;
bad:
    fprintf(stderr, "fixture %s is malformed\n", path);
    free(fx->data);
    free(fx->rec);
    memset(fx, 0, sizeof *fx);
    return false;
}

static inline void tt_fixture_free(tt_fixture *fx) {
    free(fx->data);
    free(fx->rec);
}

/* WikiText split after every line feed (each line keeps its '\n'), as the script does. */
typedef struct tt_lines {
    size_t n;
    size_t *off, *len;
} tt_lines;

static inline void tt_split_lines(const char *text, size_t size, tt_lines *l) {
    size_t n = 0;
    for (size_t i = 0; i < size; i++) n += text[i] == '\n';
    l->off = malloc((n + 1) * sizeof *l->off);
    l->len = malloc((n + 1) * sizeof *l->len);
    l->n = 0;
    size_t start = 0;
    for (size_t i = 0; i < size; i++) {
        if (text[i] == '\n') {
            l->off[l->n] = start;
            l->len[l->n++] = i + 1 - start;
            start = i + 1;
        }
    }
    if (start < size) {
        l->off[l->n] = start;
        l->len[l->n++] = size - start;
    }
}

static inline void tt_print_text(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '"') fputs("\\\"", f);
        else if (c < 0x20 || c >= 0x7F) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
    if (n > 200) fputs("...", f);
    fputc('"', f);
}

static inline void tt_print_ids(FILE *f, const int32_t *ids, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n && i < 64; i++) fprintf(f, "%s%d", i ? " " : "", ids[i]);
    if (n > 64) fputs(" ...", f);
    fputc(']', f);
}

/* Encode into a malloc'd array (NULL on error). */
static inline int32_t *tt_encode(const loom_tokenizer *tok, const char *text, size_t len, uint32_t flags, size_t *n,
                                 loom_status *st_out) {
    size_t cap = len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    loom_status st = loom_tokenizer_encode(tok, text, len, flags, ids, cap, n);
    if (st == LOOM_ERR_BUFFER_TOO_SMALL) {
        cap = *n;
        int32_t *more = realloc(ids, (cap ? cap : 1) * sizeof *ids);
        if (more) {
            ids = more;
            st = loom_tokenizer_encode(tok, text, len, flags, ids, cap, n);
        }
    }
    if (st_out) *st_out = st;
    if (st) {
        free(ids);
        return NULL;
    }
    return ids;
}

#endif

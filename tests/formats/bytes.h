/*
 * bytes.h - a growable byte buffer for building GGUF and safetensors images by hand in tests.
 */
#ifndef LOOM_TESTS_FORMATS_BYTES_H
#define LOOM_TESTS_FORMATS_BYTES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static inline void bb_put(bytes *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n) nc *= 2;
        b->p = realloc(b->p, nc);
        if (!b->p) abort();
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}

static inline void bb_le(bytes *b, uint64_t v, unsigned n) {
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, t, n);
}
static inline void bb_u8(bytes *b, uint8_t v) { bb_le(b, v, 1); }
static inline void bb_u32(bytes *b, uint32_t v) { bb_le(b, v, 4); }
static inline void bb_u64(bytes *b, uint64_t v) { bb_le(b, v, 8); }
static inline void bb_str(bytes *b, const char *s) {
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}
static inline void bb_zeros(bytes *b, size_t n) {
    for (size_t i = 0; i < n; i++) bb_u8(b, 0);
}
static inline void bb_align(bytes *b, size_t a) {
    while (b->n % a) bb_u8(b, 0);
}
static inline void bb_free(bytes *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* A safetensors image: u64 header length, header text (padded with spaces to `pad`), buffer of
 * `buf_len` bytes filled with 0, 1, 2, ... */
static inline bytes st_image(const char *header, size_t pad, size_t buf_len) {
    bytes b = {0};
    size_t n = strlen(header);
    size_t padded = pad ? (n + pad - 1) / pad * pad : n;
    bb_u64(&b, padded);
    bb_put(&b, header, n);
    for (size_t i = n; i < padded; i++) bb_u8(&b, ' ');
    for (size_t i = 0; i < buf_len; i++) bb_u8(&b, (uint8_t)i);
    return b;
}

static inline int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static inline int read_file(const char *path, bytes *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint8_t buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) bb_put(out, buf, r);
    fclose(f);
    return 0;
}

#endif

/*
 * fuzz_common.h - what the fuzz targets do with an input: open it as an in-memory model file and,
 * when it opens, use everything it exposes (lookups, metadata rendering, dequantising rows).
 * Inconsistencies abort, so the fuzzer reports them.
 */
#ifndef LOOM_TESTS_FORMATS_FUZZ_COMMON_H
#define LOOM_TESTS_FORMATS_FUZZ_COMMON_H

#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_open(const uint8_t *data, size_t size, const char *format) {
    char err[512];
    err[0] = 0;
    loom_file *f = NULL;
    loom_status st = loom_file_open_memory(data, size, format, &f, err, sizeof err);
    if (st) {
        if (f || !err[0]) abort(); /* a failure clears the output and says why */
        return;
    }
    static float rowbuf[4096];
    for (uint32_t i = 0; i < loom_file_tensor_count(f); i++) {
        const loom_file_tensor *t = loom_file_tensor_at(f, i);
        const uint8_t *p = t->data;
        if (!p || p < data || t->size > size || p + t->size > data + size) abort();
        if (loom_file_tensor_find(f, t->name) != t) abort();
        const loom_type_traits *tr = loom_type_get_traits(t->type);
        if (!tr) abort();
        int64_t n = t->ne[0] < 4096 ? t->ne[0] : 4096;
        n -= n % tr->block_size;
        if (n > 0 && t->size >= loom_type_row_bytes(t->type, n)) {
            if (loom_dequantize_row(t->type, t->data, rowbuf, n) != LOOM_OK) abort();
        }
    }
    for (uint32_t i = 0; i < loom_file_meta_count(f); i++) {
        const loom_meta *m = loom_file_meta_at(f, i);
        char text[256];
        loom_meta_format(m, 16, text, sizeof text);
        if (loom_file_meta_find(f, m->key) != m) abort();
        int64_t iv;
        double dv;
        (void)loom_meta_as_int(m, &iv);
        (void)loom_meta_as_float(m, &dv);
    }
    loom_file_close(f);
}

#endif

/*
 * archs_util.h - helpers of the seed-architecture tests: a small safetensors reader / writer
 * (independent of the engine's readers), fixture paths, running a model through the public API.
 */
#ifndef LOOM_TESTS_ARCHS_UTIL_H
#define LOOM_TESTS_ARCHS_UTIL_H

#include "loom.h"

#include <stddef.h>
#include <stdint.h>

extern int g_failures;
#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            g_failures++;                                                                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                           \
            fprintf(stderr, __VA_ARGS__);                                                                  \
            fprintf(stderr, "\n");                                                                         \
        }                                                                                                  \
    } while (0)

/* ---- safetensors ---- */
typedef struct st_tensor {
    char name[256];
    char dtype[8];
    int n_dims;
    int64_t shape[4]; /* outermost first, as in the file */
    const uint8_t *data;
    size_t bytes;
} st_tensor;

typedef struct st_file {
    uint8_t *buf;
    size_t size;
    st_tensor *tensors;
    int n_tensors;
} st_file;

int st_load(const char *path, st_file *f);
void st_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
/* F32 values of a tensor (F16, BF16, F32 or I32 converted); caller frees. */
float *st_to_f32(const st_tensor *t, size_t *n);

/* A writer: tensors are copied; written in insertion order. */
typedef struct st_writer {
    st_tensor *tensors;
    uint8_t **blobs;
    int n, cap;
} st_writer;
void st_writer_add(st_writer *w, const char *name, const char *dtype, int n_dims, const int64_t *shape,
                   const void *data, size_t bytes);
/* Add every tensor of `f`, renaming through `rename` (return NULL to drop, or the new name in buf). */
void st_writer_add_all(st_writer *w, const st_file *f,
                       const char *(*rename)(const char *name, char *buf, size_t size, void *ud), void *ud);
int st_writer_write(const st_writer *w, const char *path);
void st_writer_free(st_writer *w);

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

/* ---- paths and files ---- */
/* The fixtures folder (../shared/fixtures/archs), or NULL when absent. */
const char *archs_fixture_dir(void);
/* A fresh temporary folder (mkdtemp); caller removes it with rm_tree. */
char *make_temp_dir(const char *tag);
void rm_tree(const char *dir);
int mkdir_p(const char *dir);
/* Read a whole file (NUL-terminated); caller frees. */
char *read_text(const char *path, size_t *len);
int write_text(const char *path, const char *text);

/* ---- running models ---- */
loom_engine *archs_engine(void);
loom_model *archs_load(loom_engine *e, const char *path);
loom_context *archs_context(loom_model *m, uint32_t n_ctx, uint32_t n_batch);
/* Evaluate tokens in the given call sizes (sizes[i] tokens per eval call; NULL: one call) and
 * collect the logits of every token into out [n][n_vocab]. Returns 0 on success. */
int archs_eval(loom_context *ctx, const int32_t *tokens, size_t n, const size_t *sizes, size_t n_sizes,
               int64_t n_vocab, float *out);
/* Largest |a-b| and largest |golden| over n values. */
void archs_diff(const float *got, const float *golden, size_t n, double *max_diff, double *max_golden);

#endif

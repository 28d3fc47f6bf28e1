/*
 * model_common.h - helpers of the model oracle tests: model paths, engine, fixtures.
 */
#ifndef LOOM_TEST_MODEL_COMMON_H
#define LOOM_TEST_MODEL_COMMON_H

#include "loom.h"

#include <json-c/json.h>
#include <stdio.h>

#define SKIP 77

/* Path of a model variant ("q4_1", "f32", "q8_0", "hf"), or NULL when it is not in the cache.
 * q4_1: $LOOM_TEST_MODEL, else ${LOOM_CACHE_DIR:-$HOME/.cache/loom}/SmolLM2-135M-Instruct.Q4_1.gguf;
 * the others: $LOOM_TEST_VARIANTS/{f32.gguf,q8_0.gguf,hf}, by default
 * ${LOOM_CACHE_DIR:-$HOME/.cache/loom}/variants (scripts/make-variants.sh writes them). */
const char *test_model_path(const char *variant);
/* An engine with threads from $LOOM_TEST_THREADS (default 2) on backend $LOOM_TEST_BACKEND
 * (default "cpu", the reference); aborts the test on failure. */
loom_engine *test_engine(void);
/* The fixture JSON of a variant (hf uses f32's), or NULL. */
json_object *test_fixture(const char *variant);
/* The top-K log-probabilities file of a variant: K and the number of positions; rows of
 * K int32 ids then K float log-probs. Returns a malloc'd buffer or NULL. */
void *test_fixture_logits(const char *variant, unsigned *k, unsigned *n_pos);
/* Tokens of a JSON int array (malloc'd). */
int *test_json_tokens(json_object *arr, size_t *n);

/* The digest of the model's tensors (scripts/model_digest.py: SHA-256 over the tensors sorted by
 * name, each as name, type name, dims, size and data), read from the file at `path` (a .gguf file
 * or a folder with one model.safetensors), as 64 hex digits. Returns 0, or -1 when unreadable. */
int test_weights_sha256(const loom_model *model, const char *path, char hex[65]);

/* KL(P_ref || Q) over the reference's top K plus one bucket for the rest, with Q the softmax
 * of `logits` (n_vocab values). *top1 = whether Q's argmax is the reference's best token. */
double test_kl_top(const int *ids, const float *ref_logp, unsigned k, const float *logits, long n_vocab, int *top1);

#endif

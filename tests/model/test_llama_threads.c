/*
 * test_llama_threads.c - several contexts sharing one loaded model, each driven by its own
 * thread at the same time, must give the logits a single context gives (tolerance 1e-4).
 * Also checks reset and reuse: a context evaluates two different sequences in turn.
 */
#include "model_common.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_THREADS 3
#define N_TOK     40

typedef struct job {
    loom_model *model;
    int32_t tokens[N_TOK];
    float *out; /* logits of the last position of each of two rounds */
    long n_vocab;
    int ok;
} job;

static void *worker(void *arg) {
    job *j = arg;
    loom_context_params cp = {.struct_size = sizeof cp, .n_ctx = 128, .n_batch = 16, .n_threads = 1};
    loom_context *ctx = NULL;
    if (loom_context_create(j->model, &cp, &ctx) != LOOM_OK) return NULL;
    j->ok = 1;
    for (int round = 0; round < 2 && j->ok; round++) {
        /* Round 0: all tokens as a prompt (3 chunks of n_batch); round 1: after a reset, one at a time. */
        if (loom_context_reset(ctx) != LOOM_OK) j->ok = 0;
        if (round == 0) {
            if (loom_context_eval(ctx, j->tokens, N_TOK, LOOM_EVAL_LOGITS_LAST) != LOOM_OK) j->ok = 0;
        } else {
            for (int i = 0; i < N_TOK && j->ok; i++)
                if (loom_context_eval(ctx, &j->tokens[i], 1, LOOM_EVAL_LOGITS_LAST) != LOOM_OK) j->ok = 0;
        }
        const float *l = j->ok ? loom_context_logits(ctx, -1) : NULL;
        if (!l || loom_context_n_past(ctx) != N_TOK)
            j->ok = 0;
        else
            memcpy(j->out + round * j->n_vocab, l, (size_t)j->n_vocab * sizeof *l);
    }
    loom_context_free(ctx);
    return NULL;
}

int main(void) {
    const char *path = test_model_path("q4_1");
    if (!path) {
        printf("default model not in the cache: skipped\n");
        return SKIP;
    }
    loom_engine *engine = test_engine();
    loom_model *model = NULL;
    if (loom_model_load(engine, path, NULL, &model) != LOOM_OK) {
        fprintf(stderr, "%s\n", loom_engine_last_error(engine));
        return 1;
    }
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(model, &info);
    job jobs[N_THREADS + 1];
    for (int t = 0; t <= N_THREADS; t++) {
        jobs[t] = (job){.model = model, .n_vocab = (long)info.n_vocab};
        jobs[t].out = malloc(2u * (size_t)info.n_vocab * sizeof(float));
        /* Threads 0 and N_THREADS (the single-threaded reference) share a sequence; others differ. */
        for (int i = 0; i < N_TOK; i++)
            jobs[t].tokens[i] = (int32_t)((1000 + 37 * i + (t % N_THREADS) * 11) % 49000);
    }
    worker(&jobs[N_THREADS]); /* reference, alone */
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++)
        pthread_create(&th[t], NULL, worker, &jobs[t]);
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(th[t], NULL);
    int rc = 0;
    for (int t = 0; t <= N_THREADS; t++) {
        if (!jobs[t].ok) {
            printf("context %d failed\n", t);
            rc = 1;
        }
    }
    double d_ref = 0.0, d_rounds = 0.0, d_other = 0.0;
    for (long v = 0; rc == 0 && v < info.n_vocab; v++) {
        d_ref = fmax(d_ref, fabs((double)jobs[0].out[v] - (double)jobs[N_THREADS].out[v]));
        for (int t = 0; t <= N_THREADS; t++)
            d_rounds = fmax(d_rounds, fabs((double)jobs[t].out[v] - (double)jobs[t].out[info.n_vocab + v]));
        d_other = fmax(d_other, fabs((double)jobs[1].out[v] - (double)jobs[0].out[v]));
    }
    printf("max |logit difference|: parallel vs alone %.3g, batched vs one by one %.3g, different sequences %.3g\n",
           d_ref, d_rounds, d_other);
    if (rc == 0 && (d_ref > 1e-4 || d_rounds > 1e-2 || d_other < 1e-2)) rc = 1;
    for (int t = 0; t <= N_THREADS; t++)
        free(jobs[t].out);
    loom_model_free(model);
    loom_engine_free(engine);
    printf("%s\n", rc ? "FAILED" : "ok");
    return rc;
}

/*
 * context.c - loom_context_*: one inference sequence over a loaded model.
 *
 * A context owns an execution scope (the backends it runs on, its tensors), the architecture
 * plugin's per-context state (the KV cache, activation buffers sized for n_batch tokens) and a
 * host copy of the logits of the last eval call. Evaluation cuts the tokens into chunks of at
 * most n_batch and runs one forward pass per chunk. One thread at a time per context; several
 * contexts of one model may run in parallel (the model is read-only).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loom_context {
    loom_model *model;
    loom_exec *exec;
    const loom_arch_api *arch;
    void *arch_ctx;
    uint32_t n_ctx, n_batch, n_past;
    int64_t n_vocab;
    loom_tensor *logits_t; /* persistent F32 [n_batch, n_vocab] the plugin writes */
    float *logits;         /* host copy: rows of the last eval */
    size_t logits_cap;     /* floats */
    uint32_t logits_rows;  /* rows kept (0: none) */
    uint32_t logits_first; /* token index of the first kept row in the last eval call */
    uint32_t last_n;       /* tokens of the last eval call */
    char last_error[1024];
};

static loom_status set_error(loom_context *ctx, loom_status st, const char *fmt, ...) LOOM_PRINTF(3, 4);
static loom_status set_error(loom_context *ctx, loom_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    va_end(ap);
    return st;
}

loom_model *loom_context_model(const loom_context *ctx) { return ctx ? ctx->model : NULL; }

const char *loom_context_last_error(const loom_context *ctx) { return ctx ? ctx->last_error : ""; }

uint32_t loom_context_n_past(const loom_context *ctx) { return ctx ? ctx->n_past : 0; }

uint32_t loom_context_n_ctx(const loom_context *ctx) { return ctx ? ctx->n_ctx : 0; }

void loom_context_free(loom_context *ctx) {
    if (!ctx) return;
    if (ctx->arch && ctx->arch_ctx) ctx->arch->context_free(ctx->arch_ctx);
    loom_exec_free(ctx->exec); /* frees the persistent tensors (KV cache, logits) */
    free(ctx->logits);
    free(ctx);
}

static loom_status reserve_logits(loom_context *ctx, size_t rows) {
    size_t need = rows * (size_t)ctx->n_vocab;
    if (need <= ctx->logits_cap) return LOOM_OK;
    float *p = realloc(ctx->logits, need * sizeof *p);
    if (!p) return set_error(ctx, LOOM_ERR_OUT_OF_MEMORY, "no memory for %zu rows of logits", rows);
    ctx->logits = p;
    ctx->logits_cap = need;
    return LOOM_OK;
}

loom_status loom_context_create(loom_model *model, const loom_context_params *params, loom_context **out) {
    if (out) *out = NULL;
    if (!model || !out) return LOOM_ERR_INVALID_ARGUMENT;
    if (params && params->struct_size < offsetof(loom_context_params, n_threads) + sizeof params->n_threads)
        return LOOM_ERR_ABI;
    loom_engine *engine = loom_model_engine(model);
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(model, &info);

    /* Sizes: explicit parameters, else options, else the model's training context (<= 4096). */
    int64_t n_ctx = params && params->n_ctx ? params->n_ctx : loom_engine_option_int(engine, "ctx_size", 0);
    if (n_ctx <= 0) n_ctx = info.n_ctx_train > 0 && info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    int64_t n_batch = params && params->n_batch ? params->n_batch : loom_engine_option_int(engine, "batch_size", 512);
    int64_t n_threads = params && params->n_threads ? params->n_threads : loom_engine_option_int(engine, "threads", 0);
    const char *backend = NULL;
    if (LOOM_HAS_MEMBER(params, loom_context_params, backend)) backend = params->backend;
    if (!backend) backend = loom_engine_option_str(engine, "backend", "cpu");
    const char *kv = loom_engine_option_str(engine, "kv_type", "f16");
    uint32_t kv_type = !strcmp(kv, "f32") ? LOOM_TYPE_F32 : LOOM_TYPE_F16;
    if (n_ctx > (1 << 24) || n_batch < 1 || n_threads < 0) {
        return loom_engine_set_error(engine, LOOM_ERR_INVALID_ARGUMENT,
                                     "context: n_ctx %lld (1..%d), n_batch %lld (>= 1), threads %lld (>= 0)",
                                     (long long)n_ctx, 1 << 24, (long long)n_batch, (long long)n_threads);
    }
    if (n_batch > n_ctx) n_batch = n_ctx;
    if (info.n_ctx_train > 0 && n_ctx > info.n_ctx_train) {
        loom_log(LOOM_LOG_WARN, "context", "n_ctx %lld exceeds the model's training context %lld", (long long)n_ctx,
                 (long long)info.n_ctx_train);
    }

    loom_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return LOOM_ERR_OUT_OF_MEMORY;
    ctx->model = model;
    ctx->n_ctx = (uint32_t)n_ctx;
    ctx->n_batch = (uint32_t)n_batch;
    ctx->n_vocab = info.n_vocab;
    ctx->arch = loom_model_arch(model, NULL);
    void *arch_model = NULL;
    loom_model_arch(model, &arch_model);

    char err[512] = "";
    loom_status st = loom_exec_create(engine, backend, (uint32_t)n_threads, &ctx->exec, err, sizeof err);
    if (st != LOOM_OK) {
        loom_context_free(ctx);
        return loom_engine_set_error(engine, st, "context: backend '%s': %s", backend, err);
    }
    const loom_arch_params ap = {
        .struct_size = sizeof ap, .n_ctx = ctx->n_ctx, .n_batch = ctx->n_batch, .kv_type = kv_type};
    st = ctx->arch->context_init(arch_model, ctx->exec, &ap, &ctx->arch_ctx);
    if (st == LOOM_OK) {
        const int64_t ne[2] = {ctx->n_vocab, ctx->n_batch};
        st = loom_host_tensor_new(ctx->exec, LOOM_TYPE_F32, 2, ne, LOOM_TENSOR_PERSISTENT, &ctx->logits_t);
    }
    if (st == LOOM_OK) st = reserve_logits(ctx, 1);
    if (st != LOOM_OK) {
        const char *why = loom_host_exec_last_error(ctx->exec);
        loom_status ret =
            loom_engine_set_error(engine, st, "context: %s", why && why[0] ? why : loom_status_string(st));
        loom_context_free(ctx);
        return ret;
    }
    loom_log(LOOM_LOG_DEBUG, "context", "n_ctx %u, n_batch %u, KV %s, backend %s", ctx->n_ctx, ctx->n_batch,
             kv_type == LOOM_TYPE_F32 ? "f32" : "f16", loom_exec_device_name(ctx->exec));
    *out = ctx;
    return LOOM_OK;
}

loom_status loom_context_reset(loom_context *ctx) {
    if (!ctx) return LOOM_ERR_INVALID_ARGUMENT;
    ctx->n_past = 0;
    ctx->logits_rows = 0;
    ctx->last_n = 0;
    loom_status st = ctx->arch->context_reset(ctx->arch_ctx);
    if (st != LOOM_OK) return set_error(ctx, st, "reset failed: %s", loom_host_exec_last_error(ctx->exec));
    return LOOM_OK;
}

loom_status loom_context_eval(loom_context *ctx, const int32_t *tokens, size_t n_tokens, uint32_t flags) {
    if (!ctx) return LOOM_ERR_INVALID_ARGUMENT;
    if (!tokens || n_tokens == 0) return set_error(ctx, LOOM_ERR_INVALID_ARGUMENT, "eval: no tokens");
    if (flags != LOOM_EVAL_LOGITS_LAST && flags != LOOM_EVAL_LOGITS_ALL)
        return set_error(ctx, LOOM_ERR_INVALID_ARGUMENT, "eval: unknown flags %u", flags);
    if ((uint64_t)ctx->n_past + n_tokens > ctx->n_ctx) {
        return set_error(ctx, LOOM_ERR_CONTEXT_FULL, "eval: %zu tokens do not fit (%u of %u positions used)", n_tokens,
                         ctx->n_past, ctx->n_ctx);
    }
    for (size_t i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= ctx->n_vocab)
            return set_error(ctx, LOOM_ERR_INVALID_ARGUMENT, "eval: token %zu is %d, outside the vocabulary of %lld", i,
                             tokens[i], (long long)ctx->n_vocab);
    }
    const bool all = flags == LOOM_EVAL_LOGITS_ALL;
    loom_status st = reserve_logits(ctx, all ? n_tokens : 1);
    if (st != LOOM_OK) return st;
    ctx->logits_rows = 0;
    ctx->last_n = (uint32_t)n_tokens;

    for (size_t start = 0; start < n_tokens; start += ctx->n_batch) {
        const uint32_t n = (uint32_t)(n_tokens - start < ctx->n_batch ? n_tokens - start : ctx->n_batch);
        const uint32_t rows = all ? n : 1;
        const int64_t ne[2] = {ctx->n_vocab, rows};
        loom_tensor *logits = NULL;
        st = loom_host_tensor_view(ctx->exec, ctx->logits_t, 2, ne, NULL, 0, &logits);
        if (st == LOOM_OK) st = ctx->arch->forward(ctx->arch_ctx, ctx->exec, tokens + start, n, ctx->n_past, logits);
        if (st == LOOM_OK) {
            float *dst = ctx->logits + (all ? start : 0) * (size_t)ctx->n_vocab;
            st =
                loom_host_tensor_read(ctx->exec, logits, 0, dst, (uint64_t)rows * (uint64_t)ctx->n_vocab * sizeof *dst);
        }
        if (st != LOOM_OK) {
            const char *why = loom_host_exec_last_error(ctx->exec);
            set_error(ctx, st, "eval at position %u: %s", ctx->n_past, why && why[0] ? why : loom_status_string(st));
            loom_exec_reset_scratch(ctx->exec);
            return st;
        }
        loom_exec_reset_scratch(ctx->exec);
        ctx->n_past += n;
    }
    ctx->logits_rows = all ? (uint32_t)n_tokens : 1;
    ctx->logits_first = all ? 0 : (uint32_t)n_tokens - 1;
    return LOOM_OK;
}

const float *loom_context_logits(const loom_context *ctx, int32_t index) {
    if (!ctx || ctx->logits_rows == 0) return NULL;
    int64_t i = index < 0 ? (int64_t)ctx->last_n + index : index;
    if (i < (int64_t)ctx->logits_first || i >= (int64_t)ctx->logits_first + ctx->logits_rows) return NULL;
    return ctx->logits + (size_t)(i - ctx->logits_first) * (size_t)ctx->n_vocab;
}

const char *loom_context_placement(loom_context *ctx) {
    if (!ctx) return "";
    const char *r = loom_exec_placement_report(ctx->exec);
    return r ? r : "";
}

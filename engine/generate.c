/*
 * generate.c - loom_generate: evaluate a prompt, then sample, stream and evaluate tokens until
 * max_tokens, an end-of-generation token, a stop string, a cancel or a full context.
 *
 * Stop strings and streaming: text that could still become the start of a stop string is held
 * back; when a stop string completes, the text before it is emitted and generation ends, so the
 * stop string itself is never streamed. Each callback carries the token just sampled and the
 * text released by it (possibly empty, possibly including text held back earlier).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

enum { STOP_MAX_TOKENS = 0, STOP_EOS = 1, STOP_STRING = 2, STOP_CANCELLED = 3, STOP_CONTEXT_FULL = 4 };

typedef struct text_buf {
    char *data;
    size_t len, cap;
} text_buf;

static loom_status buf_append(text_buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return LOOM_ERR_OUT_OF_MEMORY;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return LOOM_OK;
}

/* Position of the first complete stop string in `s`, or -1. */
static long find_stop(const char *s, size_t n, const char *const *stop, uint32_t n_stop) {
    long best = -1;
    for (uint32_t i = 0; i < n_stop; i++) {
        size_t m = stop[i] ? strlen(stop[i]) : 0;
        if (m == 0 || m > n) continue;
        for (size_t at = 0; at + m <= n; at++) {
            if (best >= 0 && (long)at >= best) break;
            if (memcmp(s + at, stop[i], m) == 0) {
                best = (long)at;
                break;
            }
        }
    }
    return best;
}

/* Length of the longest suffix of `s` that is a proper prefix of some stop string. */
static size_t held_suffix(const char *s, size_t n, const char *const *stop, uint32_t n_stop) {
    size_t hold = 0;
    for (uint32_t i = 0; i < n_stop; i++) {
        size_t m = stop[i] ? strlen(stop[i]) : 0;
        for (size_t k = (m > 0 ? m - 1 : 0); k > hold; k--) {
            if (k <= n && memcmp(s + n - k, stop[i], k) == 0) {
                hold = k;
                break;
            }
        }
    }
    return hold;
}

/* Emit pending[0..n) with `token`, keep the rest. Returns false when the callback cancels. */
static bool emit(const loom_generate_params *gp, text_buf *pending, size_t n, int32_t token) {
    bool go = true;
    if (gp->on_token) {
        char saved = pending->data ? pending->data[n] : '\0';
        if (pending->data) pending->data[n] = '\0';
        go = gp->on_token(token, pending->data ? pending->data : "", n, gp->user_data);
        if (pending->data) pending->data[n] = saved;
    }
    if (pending->data) {
        memmove(pending->data, pending->data + n, pending->len - n + 1);
        pending->len -= n;
    }
    return go;
}

loom_status loom_generate(loom_context *ctx, loom_sampler *sampler, const int32_t *prompt, size_t n_prompt,
                          const loom_generate_params *params, loom_generate_stats *stats) {
    if (stats) {
        uint32_t size = stats->struct_size;
        memset(stats, 0, sizeof *stats);
        stats->struct_size = size ? size : sizeof *stats;
    }
    if (!ctx || !sampler || !params || (n_prompt > 0 && !prompt)) return LOOM_ERR_INVALID_ARGUMENT;
    if (params->struct_size < offsetof(loom_generate_params, user_data) + sizeof params->user_data) return LOOM_ERR_ABI;
    if (params->n_stop > 0 && !params->stop) return LOOM_ERR_INVALID_ARGUMENT;
    const loom_model *model = loom_context_model(ctx);
    const int64_t n_vocab = loom_model_n_vocab(model);

    loom_status st = LOOM_OK;
    uint32_t reason = STOP_MAX_TOKENS, n_generated = 0;
    text_buf pending = {0};
    char piece[256];
    int32_t last = -1;

    double t0 = loom_now();
    for (size_t i = 0; i < n_prompt; i++)
        loom_sampler_accept(sampler, prompt[i]);
    if (n_prompt > 0) {
        st = loom_context_eval(ctx, prompt, n_prompt, LOOM_EVAL_LOGITS_LAST);
        if (st == LOOM_ERR_CONTEXT_FULL) reason = STOP_CONTEXT_FULL;
    }
    double t1 = loom_now();

    while (st == LOOM_OK && (int64_t)n_generated < (int64_t)params->max_tokens) {
        const float *logits = loom_context_logits(ctx, -1);
        if (!logits) {
            st = LOOM_ERR_INVALID_ARGUMENT; /* no prompt and nothing evaluated before */
            break;
        }
        int32_t tok = -1;
        if ((st = loom_sampler_sample(sampler, logits, n_vocab, &tok)) != LOOM_OK) break;
        loom_sampler_accept(sampler, tok);
        if (loom_model_token_is_eog(model, tok)) {
            reason = STOP_EOS;
            break;
        }
        n_generated++;
        last = tok;

        size_t len = 0;
        st = loom_model_token_piece(model, tok, false, piece, sizeof piece, &len);
        if (st == LOOM_ERR_BUFFER_TOO_SMALL) {
            len = 0; /* a 256-byte token: not a text token; skip its text */
            st = LOOM_OK;
        }
        if (st != LOOM_OK || (st = buf_append(&pending, piece, len)) != LOOM_OK) break;

        long at = find_stop(pending.data ? pending.data : "", pending.len, params->stop, params->n_stop);
        if (at >= 0) {
            pending.len = (size_t)at;
            if (pending.data) pending.data[at] = '\0';
            if (!emit(params, &pending, pending.len, tok))
                reason = STOP_CANCELLED;
            else
                reason = STOP_STRING;
            break;
        }
        size_t hold = held_suffix(pending.data ? pending.data : "", pending.len, params->stop, params->n_stop);
        if (!emit(params, &pending, pending.len - hold, tok)) {
            reason = STOP_CANCELLED;
            break;
        }
        if ((int64_t)n_generated >= (int64_t)params->max_tokens) break;
        st = loom_context_eval(ctx, &tok, 1, LOOM_EVAL_LOGITS_LAST);
        if (st == LOOM_ERR_CONTEXT_FULL) {
            reason = STOP_CONTEXT_FULL;
            st = LOOM_OK;
            break;
        }
    }
    /* Text held back for a stop string that never completed is released at the end. */
    if (st == LOOM_OK && reason != STOP_STRING && reason != STOP_CANCELLED && pending.len > 0) {
        if (!emit(params, &pending, pending.len, last)) reason = STOP_CANCELLED;
    }
    free(pending.data);
    if (stats) {
        stats->n_prompt = (uint32_t)n_prompt;
        stats->n_generated = n_generated;
        stats->stop_reason = reason;
        stats->prompt_seconds = t1 - t0;
        stats->generate_seconds = loom_now() - t1;
    }
    return st;
}

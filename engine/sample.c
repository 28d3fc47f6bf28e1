/*
 * sample.c - loom_sampler_*: choosing the next token from logits.
 *
 * The chain follows llama.cpp's default order: repetition penalty, then (unless greedy) top-k,
 * top-p, min-p on the untempered distribution, then temperature and a draw from a seeded
 * generator. Greedy (temperature <= 0) is the argmax after the penalty, the lowest id winning
 * ties. Candidate arrays are allocated once per vocabulary size, not per token.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct candidate {
    float logit;
    int32_t id;
    float p;
} candidate;

struct loom_sampler {
    loom_sampler_params params;
    uint64_t rng;
    int32_t *history; /* ring of the last repeat_last_n accepted tokens */
    uint32_t history_len, history_pos;
    candidate *cand;
    int64_t cand_cap;
};

void loom_sampler_params_default(loom_sampler_params *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    out->top_k = 40;
    out->temperature = 0.0f;
    out->top_p = 0.95f;
    out->min_p = 0.05f;
    out->repeat_penalty = 1.0f;
    out->repeat_last_n = 64;
    out->seed = 0;
}

/* splitmix64: small, fast, and good enough to draw tokens. */
static uint64_t next_u64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double next_unit(uint64_t *state) { return (double)(next_u64(state) >> 11) * (1.0 / 9007199254740992.0); }

loom_status loom_sampler_create(const loom_sampler_params *params, loom_sampler **out) {
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    loom_sampler_params p;
    loom_sampler_params_default(&p);
    if (params) {
        if (params->struct_size < offsetof(loom_sampler_params, seed) + sizeof params->seed) return LOOM_ERR_ABI;
        memcpy(&p, params, sizeof p);
        p.struct_size = sizeof p;
    }
    if (isnan(p.temperature) || isnan(p.top_p) || isnan(p.min_p) || isnan(p.repeat_penalty) || p.top_k < 0 ||
        p.top_p <= 0.0f || p.top_p > 1.0f || p.min_p < 0.0f || p.min_p > 1.0f || p.repeat_penalty <= 0.0f ||
        p.repeat_last_n < 0 || p.repeat_last_n > (1 << 24)) {
        loom_log(LOOM_LOG_ERROR, "sampler",
                 "invalid parameters: top_k %d (>= 0), top_p %g (0..1], min_p %g [0..1], repeat_penalty %g (> 0), "
                 "repeat_last_n %d (>= 0)",
                 p.top_k, (double)p.top_p, (double)p.min_p, (double)p.repeat_penalty, p.repeat_last_n);
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    loom_sampler *s = calloc(1, sizeof *s);
    if (!s) return LOOM_ERR_OUT_OF_MEMORY;
    s->params = p;
    s->rng = p.seed;
    if (p.repeat_last_n > 0) {
        s->history = malloc(sizeof *s->history * (size_t)p.repeat_last_n);
        if (!s->history) {
            free(s);
            return LOOM_ERR_OUT_OF_MEMORY;
        }
    }
    *out = s;
    return LOOM_OK;
}

void loom_sampler_free(loom_sampler *s) {
    if (!s) return;
    free(s->history);
    free(s->cand);
    free(s);
}

void loom_sampler_accept(loom_sampler *s, int32_t token) {
    if (!s || s->params.repeat_last_n <= 0) return;
    s->history[s->history_pos] = token;
    s->history_pos = (s->history_pos + 1) % (uint32_t)s->params.repeat_last_n;
    if (s->history_len < (uint32_t)s->params.repeat_last_n) s->history_len++;
}

/* ---- candidate filters ---- */

static int by_logit_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool worse(const candidate *a, const candidate *b) {
    return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}

/* Keep the k best candidates (a min-heap of size k over the array), in the first k slots. */
static void select_top_k(candidate *c, int64_t n, int64_t k) {
    for (int64_t i = k / 2 - 1; i >= 0; i--) { /* heapify c[0..k): root = the worst */
        int64_t j = i;
        for (;;) {
            int64_t l = 2 * j + 1, r = l + 1, m = j;
            if (l < k && worse(&c[l], &c[m])) m = l;
            if (r < k && worse(&c[r], &c[m])) m = r;
            if (m == j) break;
            candidate t = c[j];
            c[j] = c[m];
            c[m] = t;
            j = m;
        }
    }
    for (int64_t i = k; i < n; i++) {
        if (!worse(&c[0], &c[i])) continue;
        c[0] = c[i];
        int64_t j = 0;
        for (;;) {
            int64_t l = 2 * j + 1, r = l + 1, m = j;
            if (l < k && worse(&c[l], &c[m])) m = l;
            if (r < k && worse(&c[r], &c[m])) m = r;
            if (m == j) break;
            candidate t = c[j];
            c[j] = c[m];
            c[m] = t;
            j = m;
        }
    }
}

/* Probabilities of c[0..n) (sorted, best first) at temperature t. */
static void softmax(candidate *c, int64_t n, float t) {
    double sum = 0.0;
    const float max = c[0].logit;
    for (int64_t i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - max) / t);
        sum += (double)c[i].p;
    }
    for (int64_t i = 0; i < n; i++)
        c[i].p = (float)((double)c[i].p / sum);
}

loom_status loom_sampler_sample(loom_sampler *s, const float *logits, int64_t n_vocab, int32_t *token) {
    if (!token) return LOOM_ERR_INVALID_ARGUMENT;
    *token = -1;
    if (!s || !logits || n_vocab <= 0 || n_vocab > INT32_MAX) return LOOM_ERR_INVALID_ARGUMENT;
    if (s->cand_cap < n_vocab) {
        candidate *c = realloc(s->cand, sizeof *c * (size_t)n_vocab);
        if (!c) return LOOM_ERR_OUT_OF_MEMORY;
        s->cand = c;
        s->cand_cap = n_vocab;
    }
    candidate *c = s->cand;
    for (int64_t i = 0; i < n_vocab; i++) {
        c[i].logit = isnan(logits[i]) ? -INFINITY : logits[i];
        c[i].id = (int32_t)i;
    }

    /* Repetition penalty (once per distinct recent token): positive logits are divided by it,
     * negative ones multiplied, as in llama.cpp. */
    const loom_sampler_params *p = &s->params;
    if (p->repeat_penalty != 1.0f) {
        for (uint32_t i = 0; i < s->history_len; i++) {
            int32_t t = s->history[i];
            bool seen = false;
            for (uint32_t j = 0; j < i && !seen; j++)
                seen = s->history[j] == t;
            if (seen || t < 0 || t >= n_vocab) continue;
            c[t].logit = c[t].logit > 0.0f ? c[t].logit / p->repeat_penalty : c[t].logit * p->repeat_penalty;
        }
    }

    if (p->temperature <= 0.0f) {
        int64_t best = 0;
        for (int64_t i = 1; i < n_vocab; i++) {
            if (c[i].logit > c[best].logit) best = i;
        }
        *token = c[best].id;
        return LOOM_OK;
    }

    int64_t n = n_vocab;
    if (p->top_k > 0 && p->top_k < n) {
        select_top_k(c, n, p->top_k);
        n = p->top_k;
    }
    qsort(c, (size_t)n, sizeof *c, by_logit_desc);
    if (p->top_p < 1.0f || p->min_p > 0.0f) {
        softmax(c, n, 1.0f);
        if (p->top_p < 1.0f) {
            double cum = 0.0;
            int64_t keep = n;
            for (int64_t i = 0; i < n; i++) {
                cum += (double)c[i].p;
                if (cum >= (double)p->top_p) {
                    keep = i + 1;
                    break;
                }
            }
            n = keep;
        }
        if (p->min_p > 0.0f) {
            const float floor = c[0].p * p->min_p;
            int64_t keep = 1;
            while (keep < n && c[keep].p >= floor)
                keep++;
            n = keep;
        }
    }
    softmax(c, n, p->temperature);
    double r = next_unit(&s->rng), cum = 0.0;
    int64_t pick = n - 1;
    for (int64_t i = 0; i < n; i++) {
        cum += (double)c[i].p;
        if (r < cum) {
            pick = i;
            break;
        }
    }
    *token = c[pick].id;
    return LOOM_OK;
}

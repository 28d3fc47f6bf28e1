/*
 * test_sampler.c - loom_sampler_* on hand-made logits: greedy, temperature draws against the
 * softmax, top-k, top-p, min-p, repetition penalty, seeds, parameter checks.
 */
#include "model_common.h"

#include <math.h>
#include <stdlib.h>

static int failures;
#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            printf("FAILED line %d: %s\n", __LINE__, #cond);                                                           \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static loom_sampler *make(float temp, int top_k, float top_p, float min_p, float penalty, uint64_t seed) {
    loom_sampler_params p;
    loom_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = penalty;
    p.seed = seed;
    loom_sampler *s = NULL;
    CHECK(loom_sampler_create(&p, &s) == LOOM_OK);
    return s;
}

static int draw(loom_sampler *s, const float *logits, int n) {
    int32_t t = -1;
    CHECK(loom_sampler_sample(s, logits, n, &t) == LOOM_OK);
    return t;
}

int main(void) {
    /* Greedy: the argmax, the lowest id on a tie. */
    const float tie[5] = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f};
    loom_sampler *s = make(0.0f, 40, 0.95f, 0.05f, 1.0f, 1);
    CHECK(draw(s, tie, 5) == 1);
    loom_sampler_free(s);

    /* Temperature 1 without filters follows the softmax: p = 0.1, 0.2, 0.7. */
    const float three[3] = {logf(1.0f), logf(2.0f), logf(7.0f)};
    s = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 42);
    int count[3] = {0, 0, 0};
    const int N = 20000;
    for (int i = 0; i < N; i++)
        count[draw(s, three, 3)]++;
    printf("frequencies %.3f %.3f %.3f (want 0.1 0.2 0.7)\n", count[0] / (double)N, count[1] / (double)N,
           count[2] / (double)N);
    CHECK(fabs(count[0] / (double)N - 0.1) < 0.015 && fabs(count[1] / (double)N - 0.2) < 0.015);
    loom_sampler_free(s);

    /* Temperature 0.5 sharpens: p ~ 1:4:49. */
    s = make(0.5f, 0, 1.0f, 0.0f, 1.0f, 7);
    count[0] = count[1] = count[2] = 0;
    for (int i = 0; i < N; i++)
        count[draw(s, three, 3)]++;
    CHECK(fabs(count[2] / (double)N - 49.0 / 54.0) < 0.015);
    loom_sampler_free(s);

    /* top-k 1 is greedy at any temperature; top-p 0.75 and min-p 0.25 both drop the 0.1 token. */
    s = make(1.5f, 1, 1.0f, 0.0f, 1.0f, 3);
    for (int i = 0; i < 200; i++)
        CHECK(draw(s, three, 3) == 2);
    loom_sampler_free(s);
    s = make(1.0f, 0, 0.75f, 0.0f, 1.0f, 3);
    int zero = 0, one = 0;
    for (int i = 0; i < 2000; i++) {
        int t = draw(s, three, 3);
        zero += t == 0;
        one += t == 1;
    }
    CHECK(zero == 0 && one > 0);
    loom_sampler_free(s);
    s = make(1.0f, 0, 1.0f, 0.25f, 1.0f, 3);
    zero = one = 0;
    for (int i = 0; i < 2000; i++) {
        int t = draw(s, three, 3);
        zero += t == 0;
        one += t == 1;
    }
    CHECK(zero == 0 && one > 0);
    loom_sampler_free(s);

    /* Repetition penalty: a positive logit is divided, a negative one multiplied. */
    const float pos[2] = {2.0f, 1.9f}, neg[2] = {-1.0f, -1.2f};
    s = make(0.0f, 40, 1.0f, 0.0f, 1.5f, 1);
    CHECK(draw(s, pos, 2) == 0);
    loom_sampler_accept(s, 0);
    CHECK(draw(s, pos, 2) == 1);
    CHECK(draw(s, neg, 2) == 1);
    loom_sampler_free(s);

    /* Seeds: the same seed repeats a sequence, another seed gives another. */
    float flat[1000];
    for (int i = 0; i < 1000; i++)
        flat[i] = 0.0f;
    loom_sampler *a = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 5), *b = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 5),
                 *c = make(1.0f, 0, 1.0f, 0.0f, 1.0f, 6);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 50; i++) {
        int x = draw(a, flat, 1000), y = draw(b, flat, 1000), z = draw(c, flat, 1000);
        same_ab &= x == y;
        same_ac &= x == z;
    }
    CHECK(same_ab && !same_ac);
    loom_sampler_free(a);
    loom_sampler_free(b);
    loom_sampler_free(c);

    /* Bad parameters are refused; NULLs are handled. */
    loom_sampler_params p;
    loom_sampler_params_default(&p);
    p.top_p = 0.0f;
    s = (loom_sampler *)1;
    CHECK(loom_sampler_create(&p, &s) == LOOM_ERR_INVALID_ARGUMENT && s == NULL);
    loom_sampler_params_default(&p);
    p.repeat_penalty = -1.0f;
    CHECK(loom_sampler_create(&p, &s) == LOOM_ERR_INVALID_ARGUMENT);
    int32_t t = 0;
    CHECK(loom_sampler_sample(NULL, three, 3, &t) == LOOM_ERR_INVALID_ARGUMENT && t == -1);
    loom_sampler_free(NULL);

    printf("%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

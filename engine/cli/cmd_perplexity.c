/*
 * cmd_perplexity.c - `loom perplexity`: perplexity of a text file, computed the way llama.cpp's
 * `perplexity` tool does it.
 *
 *   loom perplexity [-m MODEL] -f FILE [-c CTX] [--chunks N] [--json]
 *
 * Protocol: the whole file is tokenized at once (a BOS only when the model's vocabulary asks for
 * one); the tokens are cut into chunks of CTX tokens (default 512); each chunk is evaluated
 * from an empty context, its first token replaced by BOS when the model adds BOS; only the
 * second half is scored: logits at positions CTX/2 .. CTX-2 predict the next token (CTX/2 - 1
 * predictions per chunk). PPL = exp(mean negative log-likelihood over all scored tokens).
 * A progress bar with the running value is drawn on stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f, "usage: loom perplexity [-m MODEL] -f FILE [-c CTX] [--chunks N] [--json]\n"
               "  -f, --file PATH   text file (e.g. ../shared/data/wikitext-2/wiki.test.raw)\n"
               "  -c, --ctx N       tokens per chunk (default 512); only the second half is scored\n"
               "  --chunks N        stop after N chunks (default: all)\n"
               "  --json            print the result as JSON (per-chunk values included)\n");
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* -log softmax(logits)[target], in double precision. */
static double nll_of(const float *logits, int64_t n_vocab, int32_t target) {
    float max = logits[0];
    for (int64_t i = 1; i < n_vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - (double)max);
    return log(sum) + (double)max - (double)logits[target];
}

int loom_cmd_perplexity(int argc, char **argv) {
    const char *cmd = "perplexity";
    /* "-c N" with a number is the chunk size here (not the common --config FILE). */
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "-c") && argv[i + 1][0] && strspn(argv[i + 1], "0123456789") == strlen(argv[i + 1]))
            argv[i] = (char *)"--ctx";
    }
    loom_options *opts = NULL;
    int rc = loom_cli_common_options(&argc, argv, &opts);
    if (rc) return rc;
    const char *model_path = NULL, *file = NULL;
    long long n_ctx = 512, max_chunks = 0;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            loom_options_free(opts);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (i + 1 >= argc) {
            loom_cli_error(cmd, "unknown option or missing value: %s", a);
            goto usage_error;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model_path = argv[++i];
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            file = argv[++i];
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "--ctx-size")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 4, &n_ctx)) goto usage_error;
        } else if (!strcmp(a, "--chunks")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 0, &max_chunks)) goto usage_error;
        } else {
            loom_cli_error(cmd, "unknown option: %s", a);
            goto usage_error;
        }
    }
    if (!file) {
        loom_cli_error(cmd, "give the text file with -f FILE");
        goto usage_error;
    }
    if (!model_path) model_path = loom_cli_default_model();

    rc = 1;
    size_t text_len = 0;
    char *text = slurp(file, &text_len);
    int32_t *tokens = NULL;
    double *chunk_nll = NULL;
    loom_model *model = NULL;
    loom_context *ctx = NULL;
    loom_engine *engine = NULL;
    if (!text) {
        loom_cli_error(cmd, "cannot read %s", file);
        goto done;
    }
    if (!(engine = loom_cli_engine(opts))) goto done;
    if (!(model = loom_cli_load_model(engine, cmd, model_path, json))) goto done;

    /* Tokenize the whole file; find whether the model adds BOS. */
    size_t n_tok = 0, n_bos = 0;
    int32_t bos = -1;
    loom_status st = loom_model_tokenize(model, "", 0, LOOM_TOKENIZE_ADD_BOS, &bos, 1, &n_bos);
    const bool add_bos = st == LOOM_OK && n_bos == 1;
    double t0 = seconds();
    st = loom_model_tokenize(model, text, text_len, LOOM_TOKENIZE_ADD_BOS, NULL, 0, &n_tok);
    if (st == LOOM_OK || st == LOOM_ERR_BUFFER_TOO_SMALL) {
        tokens = malloc((n_tok ? n_tok : 1) * sizeof *tokens);
        st = tokens ? loom_model_tokenize(model, text, text_len, LOOM_TOKENIZE_ADD_BOS, tokens, n_tok, &n_tok)
                    : LOOM_ERR_OUT_OF_MEMORY;
    }
    if (st != LOOM_OK) {
        loom_cli_error(cmd, "cannot tokenize %s: %s (%s)", file, loom_model_last_error(model), loom_status_string(st));
        goto done;
    }
    const double tokenize_seconds = seconds() - t0;
    long long n_chunks = (long long)(n_tok / (size_t)n_ctx);
    if (max_chunks > 0 && max_chunks < n_chunks) n_chunks = max_chunks;
    if (n_chunks == 0) {
        loom_cli_error(cmd, "%s has %zu tokens, fewer than one chunk of %lld", file, n_tok, n_ctx);
        goto done;
    }
    loom_context_params cp = {.struct_size = sizeof cp, .n_ctx = (uint32_t)n_ctx};
    if ((st = loom_context_create(model, &cp, &ctx)) != LOOM_OK) {
        loom_cli_error(cmd, "cannot create a context: %s (%s)", loom_engine_last_error(engine), loom_status_string(st));
        goto done;
    }
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(model, &info);
    chunk_nll = calloc((size_t)n_chunks, sizeof *chunk_nll);
    int32_t *chunk = malloc((size_t)n_ctx * sizeof *chunk);
    if (!chunk_nll || !chunk) {
        free(chunk);
        loom_cli_error(cmd, "out of memory");
        goto done;
    }
    if (!json)
        fprintf(stderr, "%zu tokens (%.2f s), %lld chunks of %lld, BOS %s\n", n_tok, tokenize_seconds, n_chunks, n_ctx,
                add_bos ? "at each chunk start" : "not used by this model");
    const long long first = n_ctx / 2;
    const bool tty = isatty(2);
    double nll = 0.0, ppl = 0.0;
    long long scored = 0;
    t0 = seconds();
    for (long long c = 0; c < n_chunks; c++) {
        memcpy(chunk, tokens + c * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (add_bos) chunk[0] = bos;
        if ((st = loom_context_reset(ctx)) != LOOM_OK ||
            (st = loom_context_eval(ctx, chunk, (size_t)n_ctx, LOOM_EVAL_LOGITS_ALL)) != LOOM_OK) {
            if (tty) fputc('\n', stderr);
            loom_cli_error(cmd, "chunk %lld: %s (%s)", c + 1, loom_context_last_error(ctx), loom_status_string(st));
            free(chunk);
            goto done;
        }
        double sum = 0.0;
        for (long long j = first; j < n_ctx - 1; j++) {
            sum += nll_of(loom_context_logits(ctx, (int32_t)j), info.n_vocab, tokens[c * n_ctx + j + 1]);
        }
        chunk_nll[c] = sum;
        nll += sum;
        scored += n_ctx - 1 - first;
        ppl = exp(nll / (double)scored);
        const double el = seconds() - t0, per = el / (double)(c + 1);
        int bar = (int)((c + 1) * 30 / n_chunks);
        if (tty) {
            fprintf(stderr, "\r[%.*s%*s] %lld/%lld chunks  ppl %.4f  %.2f s/chunk  ETA %.0f s ", bar,
                    "==============================", 30 - bar, "", c + 1, n_chunks, ppl, per,
                    per * (double)(n_chunks - c - 1));
        } else if (!json) {
            fprintf(stderr, "[%lld/%lld] ppl %.4f (%.2f s/chunk)\n", c + 1, n_chunks, ppl, per);
        }
        fflush(stderr);
    }
    free(chunk);
    const double total = seconds() - t0;
    if (tty) fputc('\n', stderr);
    if (json) {
        printf("{\"file\": ");
        loom_cli_json_string(stdout, file);
        printf(", \"model\": ");
        loom_cli_json_string(stdout, info.path);
        printf(", \"n_ctx\": %lld, \"n_tokens\": %zu, \"add_bos\": %s, \"chunks\": %lld, \"scored_tokens\": %lld, "
               "\"perplexity\": %.6f, \"seconds\": %.3f, \"tokens_per_second\": %.2f, \"nll_per_chunk\": [",
               n_ctx, n_tok, add_bos ? "true" : "false", n_chunks, scored, ppl, total,
               (double)(n_chunks * n_ctx) / total);
        for (long long c = 0; c < n_chunks; c++)
            printf("%s%.6f", c ? ", " : "", chunk_nll[c]);
        printf("]}\n");
    } else {
        printf("perplexity: %.4f (%lld chunks of %lld, %lld scored tokens, %.1f s)\n", ppl, n_chunks, n_ctx, scored,
               total);
    }
    rc = 0;
done:
    free(text);
    free(tokens);
    free(chunk_nll);
    loom_context_free(ctx);
    loom_model_free(model);
    loom_engine_free(engine);
    loom_options_free(opts);
    return rc;
usage_error:
    usage(stderr);
    loom_options_free(opts);
    return 2;
}

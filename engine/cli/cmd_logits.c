/*
 * cmd_logits.c - `loom logits`: the logits of every position of a token sequence.
 *
 *   loom logits [-m MODEL] (--tokens 1,2,3 | -p TEXT) [-o FILE] [--top N] [--json]
 *
 * (-o with a value without '=' is the output file; -o KEY=VALUE stays the common option.)
 *
 * With -o the full logits are written as raw little-endian float32, one row of n_vocab values
 * per token ([n_tokens, n_vocab], row-major). Without it (or in addition) the top N entries of
 * each row are printed, as text or JSON.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: loom logits [-m MODEL] (--tokens ID,ID,... | -p TEXT) [-o FILE] [--top N] [--json]\n"
               "  --tokens LIST   comma-separated token ids (evaluated from an empty context)\n"
               "  -p TEXT         tokenize TEXT instead (BOS when the model wants one, special tokens parsed)\n"
               "  -o FILE         write all logits as float32 [n_tokens, n_vocab]\n"
               "  --top N         entries printed per position (default 5)\n"
               "  --json          print JSON\n");
}

static int parse_tokens(const char *list, int32_t **out, size_t *n) {
    size_t cap = 16, len = 0;
    int32_t *t = malloc(cap * sizeof *t);
    const char *p = list;
    while (t && *p) {
        char *end = NULL;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(t);
            return -1;
        }
        if (len == cap) {
            int32_t *b = realloc(t, cap * 2 * sizeof *t);
            if (!b) {
                free(t);
                return -1;
            }
            t = b;
            cap *= 2;
        }
        t[len++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (!t || len == 0) {
        free(t);
        return -1;
    }
    *out = t;
    *n = len;
    return 0;
}

int loom_cmd_logits(int argc, char **argv) {
    const char *cmd = "logits";
    /* "-o FILE" (no '=') is the output file here, not the common -o KEY=VALUE. */
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "-o") && !strchr(argv[i + 1], '=')) argv[i] = (char *)"--output";
    }
    loom_options *opts = NULL;
    int rc = loom_cli_common_options(&argc, argv, &opts);
    if (rc) return rc;
    const char *model_path = NULL, *list = NULL, *text = NULL, *out_path = NULL;
    long long top = 5;
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
        } else if (!strcmp(a, "--tokens")) {
            list = argv[++i];
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            text = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            out_path = argv[++i];
        } else if (!strcmp(a, "--top")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 0, &top)) goto usage_error;
        } else {
            loom_cli_error(cmd, "unknown option: %s", a);
            goto usage_error;
        }
    }
    if (!list == !text) {
        loom_cli_error(cmd, "give either --tokens LIST or -p TEXT");
        goto usage_error;
    }
    int32_t *tokens = NULL;
    size_t n = 0;
    if (list && parse_tokens(list, &tokens, &n) != 0) {
        loom_cli_error(cmd, "--tokens expects comma-separated non-negative integers, got '%s'", list);
        goto usage_error;
    }
    if (!model_path) model_path = loom_cli_default_model();

    rc = 1;
    loom_engine *engine = loom_cli_engine(opts);
    loom_model *model = NULL;
    loom_context *ctx = NULL;
    int32_t *best = NULL;
    if (!engine) goto done;
    if (!(model = loom_cli_load_model(engine, cmd, model_path, json))) goto done;
    loom_status st;
    if (text) {
        const uint32_t flags = LOOM_TOKENIZE_ADD_BOS | LOOM_TOKENIZE_PARSE_SPECIAL;
        st = loom_model_tokenize(model, text, strlen(text), flags, NULL, 0, &n);
        if (st == LOOM_OK || st == LOOM_ERR_BUFFER_TOO_SMALL) {
            tokens = malloc((n ? n : 1) * sizeof *tokens);
            st = tokens ? loom_model_tokenize(model, text, strlen(text), flags, tokens, n, &n) : LOOM_ERR_OUT_OF_MEMORY;
        }
        if (st != LOOM_OK || n == 0) {
            loom_cli_error(cmd, "cannot tokenize the text: %s", loom_model_last_error(model));
            goto done;
        }
    }
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(model, &info);
    loom_context_params cp = {.struct_size = sizeof cp, .n_ctx = (uint32_t)(n > 16 ? n : 16)};
    if ((st = loom_context_create(model, &cp, &ctx)) != LOOM_OK) {
        loom_cli_error(cmd, "cannot create a context: %s (%s)", loom_engine_last_error(engine), loom_status_string(st));
        goto done;
    }
    if ((st = loom_context_eval(ctx, tokens, n, LOOM_EVAL_LOGITS_ALL)) != LOOM_OK) {
        loom_cli_error(cmd, "%s (%s)", loom_context_last_error(ctx), loom_status_string(st));
        goto done;
    }
    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        bool ok = f != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            ok = fwrite(loom_context_logits(ctx, (int32_t)i), sizeof(float), (size_t)info.n_vocab, f) ==
                 (size_t)info.n_vocab;
        }
        if (f && fclose(f) != 0) ok = false;
        if (!ok) {
            loom_cli_error(cmd, "cannot write %s", out_path);
            goto done;
        }
    }
    if (top > info.n_vocab) top = info.n_vocab;
    best = malloc((size_t)(top ? top : 1) * sizeof *best);
    if (!best) goto done;
    if (json) {
        printf("{\"model\": ");
        loom_cli_json_string(stdout, info.path);
        printf(", \"n_vocab\": %lld, \"tokens\": [", (long long)info.n_vocab);
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? ", " : "", tokens[i]);
        printf("], \"output\": ");
        loom_cli_json_string(stdout, out_path ? out_path : "");
        printf(", \"top\": [");
    }
    for (size_t i = 0; i < n; i++) {
        const float *l = loom_context_logits(ctx, (int32_t)i);
        /* Selection of the `top` largest (small N: insertion into a sorted list). */
        long long k = 0;
        for (int64_t v = 0; v < info.n_vocab; v++) {
            long long at = k;
            while (at > 0 && l[best[at - 1]] < l[v])
                at--;
            if (at >= top) continue;
            long long end = k < top ? k : top - 1;
            memmove(best + at + 1, best + at, (size_t)(end - at) * sizeof *best);
            best[at] = (int32_t)v;
            if (k < top) k++;
        }
        if (json) {
            printf("%s[", i ? ", " : "");
            for (long long j = 0; j < k; j++)
                printf("%s{\"id\": %d, \"logit\": %.6g}", j ? ", " : "", best[j], (double)l[best[j]]);
            printf("]");
        } else {
            printf("%zu (token %d):", i, tokens[i]);
            for (long long j = 0; j < k; j++)
                printf(" %d:%.4f", best[j], (double)l[best[j]]);
            printf("\n");
        }
    }
    if (json) printf("]}\n");
    rc = 0;
done:
    free(best);
    free(tokens);
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

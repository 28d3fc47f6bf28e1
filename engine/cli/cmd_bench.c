/*
 * cmd_bench.c - `loom bench`: prefill and decode speed.
 *
 *   loom bench [-m MODEL] [-p N] [-n N] [-t THREADS] [-r REPS] [--json]
 *
 * Like llama-bench: the prefill test evaluates N prompt tokens in one call from an empty context
 * (batched by n_batch); the decode test evaluates N tokens one at a time from an empty context.
 * One untimed warm-up run of each comes first; then REPS timed runs; tokens/s is reported as
 * mean and standard deviation over the runs. Token ids are fixed pseudo-random values; with a
 * tokenizer, ids whose text is a single byte that UTF-8 text never contains (0xC0, 0xC1,
 * 0xF5-0xFF) are drawn again, since text cannot produce them (in a byte vocabulary id 255 is
 * byte 0xFF, and landmark attention uses it as its <landmark> token, which its retrieval cache
 * inserts itself and refuses as input).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f, "usage: loom bench [-m MODEL] [-p N] [-n N] [-t THREADS] [-r REPS] [--json]\n"
               "  -p, --n-prompt N   prefill test length (default 512; 0 skips it)\n"
               "  -n, --n-gen N      decode test length (default 128; 0 skips it)\n"
               "  -r, --reps N       timed repetitions (default 5)\n"
               "  -t, --threads N    CPU threads (common option)\n"
               "  --json             print the result as JSON\n");
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void mean_sd(const double *v, int n, double *mean, double *sd) {
    double s = 0.0, q = 0.0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : 0.0;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* True when the token's text is one byte that never occurs in UTF-8 text (false without a
 * tokenizer: every id is then a possible input). */
static bool never_in_text(const loom_model *model, int32_t token) {
    char piece[8];
    size_t len = 0;
    if (loom_model_token_piece(model, token, false, piece, sizeof piece, &len) != LOOM_OK || len != 1) return false;
    const unsigned char b = (unsigned char)piece[0];
    return b == 0xC0 || b == 0xC1 || b >= 0xF5;
}

/* One run: tokens/s of a prefill (n tokens in one call) or a decode (n calls of one token). */
static loom_status run_once(loom_context *ctx, const int32_t *toks, int n, bool decode, double *tps) {
    loom_status st = loom_context_reset(ctx);
    if (st != LOOM_OK) return st;
    double t0 = seconds();
    if (decode) {
        for (int i = 0; i < n && st == LOOM_OK; i++)
            st = loom_context_eval(ctx, toks + i, 1, LOOM_EVAL_LOGITS_LAST);
    } else {
        st = loom_context_eval(ctx, toks, (size_t)n, LOOM_EVAL_LOGITS_LAST);
    }
    double dt = seconds() - t0;
    *tps = dt > 0 ? n / dt : 0.0;
    return st;
}

int loom_cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    loom_options *opts = NULL;
    int rc = loom_cli_common_options(&argc, argv, &opts);
    if (rc) return rc;
    const char *model_path = NULL;
    long long n_prompt = 512, n_gen = 128, reps = 5;
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
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 0, &n_prompt)) goto usage_error;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 0, &n_gen)) goto usage_error;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 1, &reps)) goto usage_error;
        } else {
            loom_cli_error(cmd, "unknown option: %s", a);
            goto usage_error;
        }
    }
    if (n_prompt > 1000000 || n_gen > 1000000 || reps > 1000) {
        loom_cli_error(cmd, "-p and -n at most 1000000, -r at most 1000");
        goto usage_error;
    }
    if (!model_path) model_path = loom_cli_default_model();

    rc = 1;
    loom_engine *engine = loom_cli_engine(opts);
    loom_model *model = NULL;
    loom_context *ctx = NULL;
    int32_t *toks = NULL;
    double *pp = NULL, *tg = NULL;
    if (!engine) goto done;
    if (!(model = loom_cli_load_model(engine, cmd, model_path, json))) goto done;
    loom_model_info info = {.struct_size = sizeof info};
    loom_model_get_info(model, &info);
    const long long n_max = n_prompt > n_gen ? n_prompt : n_gen;
    loom_context_params cp = {.struct_size = sizeof cp, .n_ctx = (uint32_t)(n_max > 16 ? n_max : 16)};
    loom_status st = loom_context_create(model, &cp, &ctx);
    if (st != LOOM_OK) {
        loom_cli_error(cmd, "cannot create a context: %s (%s)", loom_engine_last_error(engine), loom_status_string(st));
        goto done;
    }
    toks = malloc((size_t)(n_max > 0 ? n_max : 1) * sizeof *toks);
    pp = calloc((size_t)reps, sizeof *pp);
    tg = calloc((size_t)reps, sizeof *tg);
    if (!toks || !pp || !tg) goto done;
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (long long i = 0; i < n_max; i++) {
        for (int tries = 0; tries < 64; tries++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            toks[i] = (int32_t)(x % (uint64_t)info.n_vocab);
            if (!never_in_text(model, toks[i])) break;
        }
    }
    const char *threads = NULL;
    loom_options_get(loom_engine_options(engine), "threads", &threads, NULL);
    for (int pass = 0; pass < 2; pass++) {
        const bool decode = pass == 1;
        const long long n = decode ? n_gen : n_prompt;
        double *out = decode ? tg : pp, warm = 0.0;
        if (n == 0) continue;
        st = run_once(ctx, toks, (int)n, decode, &warm);
        for (long long r = 0; r < reps && st == LOOM_OK; r++)
            st = run_once(ctx, toks, (int)n, decode, &out[r]);
        if (st != LOOM_OK) {
            loom_cli_error(cmd, "%s: %s (%s)", decode ? "decode" : "prefill", loom_context_last_error(ctx),
                           loom_status_string(st));
            goto done;
        }
    }
    double pp_mean, pp_sd, tg_mean, tg_sd;
    mean_sd(pp, n_prompt ? (int)reps : 0, &pp_mean, &pp_sd);
    mean_sd(tg, n_gen ? (int)reps : 0, &tg_mean, &tg_sd);
    if (json) {
        printf("{\"model\": ");
        loom_cli_json_string(stdout, info.path);
        printf(", \"threads\": ");
        loom_cli_json_string(stdout, threads ? threads : "0");
        printf(", \"reps\": %lld, \"n_prompt\": %lld, \"n_gen\": %lld, \"prefill_tokens_per_second\": %.3f, "
               "\"prefill_sd\": %.3f, \"decode_tokens_per_second\": %.3f, \"decode_sd\": %.3f, \"prefill_runs\": [",
               reps, n_prompt, n_gen, pp_mean, pp_sd, tg_mean, tg_sd);
        for (long long r = 0; n_prompt && r < reps; r++)
            printf("%s%.3f", r ? ", " : "", pp[r]);
        printf("], \"decode_runs\": [");
        for (long long r = 0; n_gen && r < reps; r++)
            printf("%s%.3f", r ? ", " : "", tg[r]);
        printf("]}\n");
    } else {
        printf("model: %s (%s, %.1f MiB), threads %s, %lld reps\n", info.path, info.architecture,
               (double)info.weight_bytes / 1048576.0, threads ? threads : "0", reps);
        printf("%-10s %8s %14s %10s\n", "test", "tokens", "tokens/s", "sd");
        if (n_prompt) printf("%-10s %8lld %14.2f %10.2f\n", "prefill", n_prompt, pp_mean, pp_sd);
        if (n_gen) printf("%-10s %8lld %14.2f %10.2f\n", "decode", n_gen, tg_mean, tg_sd);
    }
    rc = 0;
done:
    free(toks);
    free(pp);
    free(tg);
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

/*
 * cmd_run.c - `loom run`: generate text from a prompt, streaming tokens to stdout.
 *
 *   loom run [-m MODEL] -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]
 *            [--repeat-penalty R] [--repeat-last-n N] [--seed S] [--stop TEXT]... [--ctx-size N]
 *            [--no-special] [--show-placement] [--json]
 *
 * Also the helpers shared by the other model commands (declared in cli.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ============================================================================================ */
/* Shared helpers                                                                               */
/* ============================================================================================ */

bool loom_cli_parse_int(const char *cmd, const char *opt, const char *text, long long min, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || !*text || *end || errno || v < min) {
        loom_cli_error(cmd, "%s expects an integer >= %lld, got '%s'", opt, min, text ? text : "");
        return false;
    }
    *out = v;
    return true;
}

bool loom_cli_parse_float(const char *cmd, const char *opt, const char *text, float *out) {
    char *end = NULL;
    errno = 0;
    float v = text ? strtof(text, &end) : 0.0f;
    if (!text || !*text || *end || errno || v != v) {
        loom_cli_error(cmd, "%s expects a number, got '%s'", opt, text ? text : "");
        return false;
    }
    *out = v;
    return true;
}

int loom_cli_sampling_option(const char *cmd, int argc, char **argv, int *i, loom_sampler_params *p, bool *seed_set) {
    const char *a = argv[*i];
    static const char *const names[] = {"--temp",           "--top-k",         "--top-p", "--min-p",
                                        "--repeat-penalty", "--repeat-last-n", "--seed"};
    int which = -1;
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++) {
        if (!strcmp(a, names[k])) which = k;
    }
    if (which < 0) return 0;
    if (*i + 1 >= argc) {
        loom_cli_error(cmd, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    long long n = 0;
    switch (which) {
    case 0: return loom_cli_parse_float(cmd, a, v, &p->temperature) ? 1 : -1;
    case 1:
        if (!loom_cli_parse_int(cmd, a, v, 0, &n)) return -1;
        p->top_k = (int32_t)n;
        return 1;
    case 2: return loom_cli_parse_float(cmd, a, v, &p->top_p) ? 1 : -1;
    case 3: return loom_cli_parse_float(cmd, a, v, &p->min_p) ? 1 : -1;
    case 4: return loom_cli_parse_float(cmd, a, v, &p->repeat_penalty) ? 1 : -1;
    case 5:
        if (!loom_cli_parse_int(cmd, a, v, 0, &n)) return -1;
        p->repeat_last_n = (int32_t)n;
        return 1;
    default:
        if (!loom_cli_parse_int(cmd, a, v, 0, &n)) return -1;
        p->seed = (uint64_t)n;
        if (seed_set) *seed_set = true;
        return 1;
    }
}

typedef struct progress_state {
    bool draw;
    int last;
    double start;
} progress_state;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool on_progress(uint64_t done, uint64_t total, void *user) {
    progress_state *s = user;
    if (!s->draw || total == 0) return true;
    int pct = (int)(done * 100 / total);
    if (pct != s->last) {
        s->last = pct;
        int bar = pct * 30 / 100;
        fprintf(stderr, "\rloading [%.*s%*s] %3d%% %.1f s", bar, "==============================", 30 - bar, "", pct,
                now_seconds() - s->start);
        if (done >= total) fputc('\n', stderr);
        fflush(stderr);
    }
    return true;
}

loom_model *loom_cli_load_model(loom_engine *engine, const char *cmd, const char *path, bool quiet) {
    if (!path) {
        loom_cli_error(cmd, "no model: give -m MODEL, set LOOM_MODEL, or run scripts/get-model.sh");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    long long size = 0;
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
        fclose(f);
    }
    progress_state ps = {.draw = !quiet && size > (256ll << 20) && isatty(2), .last = -1, .start = now_seconds()};
    loom_model_params mp = {.struct_size = sizeof mp, .progress = on_progress, .progress_user_data = &ps};
    loom_model *model = NULL;
    loom_status st = loom_model_load(engine, path, &mp, &model);
    if (st != LOOM_OK) {
        loom_cli_error(cmd, "%s (%s)", loom_engine_last_error(engine), loom_status_string(st));
        return NULL;
    }
    return model;
}

/* ============================================================================================ */
/* loom run                                                                                     */
/* ============================================================================================ */

static void usage(FILE *f) {
    fprintf(f, "usage: loom run [-m MODEL] -p PROMPT [-n N] [sampling] [--stop TEXT]... [--ctx-size N]\n"
               "                [--no-special] [--show-placement] [--json]\n"
               "  -m, --model PATH      model file or folder (default: $LOOM_MODEL or the cached SmolLM2)\n"
               "  -p, --prompt TEXT     the prompt (special-token text such as <|im_start|> is parsed\n"
               "                        unless --no-special)\n"
               "  -f, --file PATH       read the prompt from a file (its bytes as they are)\n"
               "  -n, --n-predict N     tokens to generate (default 128)\n"
               "  --temp T              temperature (default 0: greedy)\n"
               "  --top-k K, --top-p P, --min-p P, --repeat-penalty R, --repeat-last-n N, --seed S\n"
               "  --stop TEXT           stop when TEXT is generated (repeatable)\n"
               "  --ctx-size N          context length (default: option ctx_size)\n"
               "  --show-placement      print where each op ran (stderr, or in the JSON)\n"
               "  --json                print one JSON object instead of streaming text\n");
}

typedef struct run_out {
    bool json;
    char *text;
    size_t len, cap;
    int32_t *tokens;
    size_t n_tokens, cap_tokens;
} run_out;

static bool on_token(int32_t token, const char *piece, size_t len, void *user) {
    run_out *o = user;
    if (!o->json) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
        return true;
    }
    if (o->len + len + 1 > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        while (cap < o->len + len + 1)
            cap *= 2;
        char *t = realloc(o->text, cap);
        if (!t) return false;
        o->text = t;
        o->cap = cap;
    }
    memcpy(o->text + o->len, piece, len);
    o->len += len;
    o->text[o->len] = '\0';
    if (token >= 0 && o->n_tokens == o->cap_tokens) {
        size_t cap = o->cap_tokens ? o->cap_tokens * 2 : 64;
        int32_t *t = realloc(o->tokens, cap * sizeof *t);
        if (!t) return false;
        o->tokens = t;
        o->cap_tokens = cap;
    }
    if (token >= 0) o->tokens[o->n_tokens++] = token;
    return true;
}

/* The whole file, NUL-terminated (it may hold NUL bytes itself: *len is its size). */
static char *read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    *len_out = len;
    return buf;
}

static const char *const STOP_REASONS[] = {"max_tokens", "eos", "stop_string", "cancelled", "context_full"};

int loom_cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    loom_options *opts = NULL;
    int rc = loom_cli_common_options(&argc, argv, &opts);
    if (rc) return rc;
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL;
    long long n_predict = 128, n_ctx = 0;
    bool json = false, show_placement = false, special = true, seed_set = false;
    const char *stops[16];
    uint32_t n_stop = 0;
    loom_sampler_params sp;
    loom_sampler_params_default(&sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        int s = loom_cli_sampling_option(cmd, argc, argv, &i, &sp, &seed_set);
        if (s < 0) goto usage_error;
        if (s > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            loom_options_free(opts);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--show-placement")) {
            show_placement = true;
        } else if (!strcmp(a, "--no-special")) {
            special = false;
        } else if (!next) {
            loom_cli_error(cmd, "unknown option or missing value: %s", a);
            goto usage_error;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model_path = argv[++i];
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            prompt = argv[++i];
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            prompt_file = argv[++i];
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 0, &n_predict)) goto usage_error;
        } else if (!strcmp(a, "--ctx-size")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 1, &n_ctx)) goto usage_error;
        } else if (!strcmp(a, "--stop")) {
            if (n_stop == sizeof stops / sizeof stops[0]) {
                loom_cli_error(cmd, "at most %zu --stop strings", sizeof stops / sizeof stops[0]);
                goto usage_error;
            }
            stops[n_stop++] = argv[++i];
        } else {
            loom_cli_error(cmd, "unknown option: %s", a);
            goto usage_error;
        }
    }
    if (!prompt && !prompt_file) {
        loom_cli_error(cmd, "give a prompt with -p TEXT or -f FILE");
        goto usage_error;
    }
    if (!model_path) model_path = loom_cli_default_model();

    char *file_text = NULL;
    size_t len = prompt ? strlen(prompt) : 0;
    if (prompt_file) {
        file_text = read_file(prompt_file, &len);
        if (!file_text) {
            loom_cli_error(cmd, "cannot read %s", prompt_file);
            loom_options_free(opts);
            return 1;
        }
        prompt = file_text;
    }

    rc = 1;
    loom_engine *engine = loom_cli_engine(opts);
    loom_model *model = NULL;
    loom_context *ctx = NULL;
    loom_sampler *sampler = NULL;
    int32_t *tokens = NULL;
    run_out out = {.json = json};
    if (!engine) goto done;
    if (!seed_set) {
        const char *v = NULL;
        if (loom_options_get(loom_engine_options(engine), "seed", &v, NULL) == LOOM_OK && v)
            sp.seed = strtoull(v, NULL, 10);
        if (sp.seed == 0) sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    if (!(model = loom_cli_load_model(engine, cmd, model_path, json))) goto done;

    /* Tokenize the prompt (BOS when the model wants one). */
    size_t n_prompt = 0;
    uint32_t flags = LOOM_TOKENIZE_ADD_BOS | (special ? LOOM_TOKENIZE_PARSE_SPECIAL : 0);
    loom_status st = loom_model_tokenize(model, prompt, len, flags, NULL, 0, &n_prompt);
    if (st == LOOM_ERR_BUFFER_TOO_SMALL || st == LOOM_OK) {
        tokens = malloc((n_prompt ? n_prompt : 1) * sizeof *tokens);
        st = tokens ? loom_model_tokenize(model, prompt, len, flags, tokens, n_prompt, &n_prompt)
                    : LOOM_ERR_OUT_OF_MEMORY;
    }
    if (st != LOOM_OK) {
        loom_cli_error(cmd, "cannot tokenize the prompt: %s (%s)", loom_model_last_error(model),
                       loom_status_string(st));
        goto done;
    }
    if (n_prompt == 0) {
        loom_cli_error(cmd, "the prompt is empty");
        goto done;
    }

    loom_context_params cp = {.struct_size = sizeof cp, .n_ctx = (uint32_t)n_ctx}; /* 0: option ctx_size */
    if ((st = loom_context_create(model, &cp, &ctx)) != LOOM_OK) {
        loom_cli_error(cmd, "cannot create a context: %s (%s)", loom_engine_last_error(engine), loom_status_string(st));
        goto done;
    }
    if ((st = loom_sampler_create(&sp, &sampler)) != LOOM_OK) {
        loom_cli_error(cmd, "bad sampling parameters (%s)", loom_status_string(st));
        goto done;
    }
    loom_generate_params gp = {.struct_size = sizeof gp,
                               .max_tokens = (int32_t)(n_predict > INT32_MAX ? INT32_MAX : n_predict),
                               .stop = stops,
                               .n_stop = n_stop,
                               .on_token = on_token,
                               .user_data = &out};
    loom_generate_stats gs = {.struct_size = sizeof gs};
    if (!json) {
        fwrite(prompt, 1, len, stdout);
        fflush(stdout);
    }
    st = loom_generate(ctx, sampler, tokens, n_prompt, &gp, &gs);
    if (st != LOOM_OK) {
        if (!json) fputc('\n', stdout);
        loom_cli_error(cmd, "generation failed: %s (%s)", loom_context_last_error(ctx), loom_status_string(st));
        goto done;
    }
    const double pp = gs.prompt_seconds > 0 ? gs.n_prompt / gs.prompt_seconds : 0.0;
    const double tg = gs.generate_seconds > 0 ? gs.n_generated / gs.generate_seconds : 0.0;
    const char *reason = gs.stop_reason < 5 ? STOP_REASONS[gs.stop_reason] : "?";
    if (json) {
        loom_model_info info = {.struct_size = sizeof info};
        loom_model_get_info(model, &info);
        printf("{\"model\": ");
        loom_cli_json_string(stdout, info.path);
        printf(", \"architecture\": ");
        loom_cli_json_string(stdout, info.architecture);
        printf(", \"prompt\": ");
        loom_cli_json_bytes(stdout, prompt, len);
        printf(", \"prompt_tokens\": [");
        for (size_t i = 0; i < n_prompt; i++)
            printf("%s%d", i ? ", " : "", tokens[i]);
        printf("], \"text\": ");
        loom_cli_json_bytes(stdout, out.text, out.len);
        printf(", \"tokens\": [");
        for (size_t i = 0; i < out.n_tokens; i++)
            printf("%s%d", i ? ", " : "", out.tokens[i]);
        printf("], \"n_prompt\": %u, \"n_generated\": %u, \"stop_reason\": \"%s\", \"prompt_seconds\": %.6f, "
               "\"generate_seconds\": %.6f, \"prompt_tokens_per_second\": %.3f, \"generate_tokens_per_second\": %.3f",
               gs.n_prompt, gs.n_generated, reason, gs.prompt_seconds, gs.generate_seconds, pp, tg);
        if (show_placement) {
            printf(", \"placement\": ");
            loom_cli_json_string(stdout, loom_context_placement(ctx));
        }
        printf("}\n");
    } else {
        fputc('\n', stdout);
        fprintf(stderr, "\n[prompt %u tokens, %.1f tok/s | generated %u tokens, %.1f tok/s | stop: %s]\n", gs.n_prompt,
                pp, gs.n_generated, tg, reason);
        if (show_placement) fprintf(stderr, "placement:\n%s", loom_context_placement(ctx));
    }
    rc = 0;
done:
    free(out.text);
    free(out.tokens);
    free(tokens);
    free(file_text);
    loom_sampler_free(sampler);
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

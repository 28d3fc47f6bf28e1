/*
 * cmd_chat.c - `loom chat`: a conversation using the model's chat template.
 *
 *   loom chat [-m MODEL] [--system TEXT] [-p MESSAGE] [-n N] [sampling] [--ctx-size N] [--json]
 *
 * Reads one user message per line from stdin ("/reset" starts over, "/quit" or end of input
 * ends), renders the whole conversation with the template (ChatML, Llama-2 [INST], ...) and
 * evaluates only the tokens the context does not hold yet. With -p, answers that one message
 * and exits. --json prints one JSON object per reply instead of streaming text.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f, "usage: loom chat [-m MODEL] [--system TEXT] [-p MESSAGE] [-n N] [sampling] [--ctx-size N] [--json]\n"
               "  --system TEXT     system message\n"
               "  -p, --prompt MSG  answer one message and exit (otherwise: one message per stdin line)\n"
               "  -n N              tokens per reply at most (default 512)\n"
               "  --temp T (default 0.7), --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S\n"
               "  --json            one JSON object per reply\n"
               "commands while chatting: /reset, /quit\n");
}

typedef struct chat_state {
    bool json;
    char *reply;
    size_t len, cap;
    int32_t *gen; /* generated token ids of this reply */
    size_t n_gen, cap_gen;
} chat_state;

static bool on_token(int32_t token, const char *piece, size_t len, void *user) {
    chat_state *s = user;
    if (s->n_gen == s->cap_gen) {
        size_t cap = s->cap_gen ? s->cap_gen * 2 : 256;
        int32_t *g = realloc(s->gen, cap * sizeof *g);
        if (!g) return false;
        s->gen = g;
        s->cap_gen = cap;
    }
    s->gen[s->n_gen++] = token;
    if (!s->json) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        while (cap < s->len + len + 1)
            cap *= 2;
        char *r = realloc(s->reply, cap);
        if (!r) return false;
        s->reply = r;
        s->cap = cap;
    }
    memcpy(s->reply + s->len, piece, len);
    s->len += len;
    s->reply[s->len] = '\0';
    return true;
}

typedef struct conversation {
    loom_chat_message *msgs;
    char **texts; /* owned contents */
    size_t n, cap;
} conversation;

static bool conv_add(conversation *c, const char *role, const char *text) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        loom_chat_message *m = realloc(c->msgs, cap * sizeof *m);
        if (!m) return false;
        c->msgs = m;
        char **t = realloc(c->texts, cap * sizeof *t);
        if (!t) return false;
        c->texts = t;
        c->cap = cap;
    }
    char *copy = malloc(strlen(text) + 1);
    if (!copy) return false;
    strcpy(copy, text);
    c->texts[c->n] = copy;
    c->msgs[c->n] = (loom_chat_message){.struct_size = sizeof(loom_chat_message), .role = role, .content = copy};
    c->n++;
    return true;
}

static void conv_clear(conversation *c, size_t keep) {
    while (c->n > keep)
        free(c->texts[--c->n]);
}

/* Render and tokenize the conversation; *out is malloc'd. */
static loom_status render(loom_model *model, const conversation *c, int32_t bos, int32_t **out, size_t *n) {
    size_t len = 0;
    loom_status st = loom_model_chat_format(model, c->msgs, c->n, true, NULL, 0, &len);
    if (st != LOOM_OK && st != LOOM_ERR_BUFFER_TOO_SMALL) return st;
    char *text = malloc(len + 1);
    if (!text) return LOOM_ERR_OUT_OF_MEMORY;
    st = loom_model_chat_format(model, c->msgs, c->n, true, text, len + 1, &len);
    size_t cnt = 0;
    if (st == LOOM_OK) st = loom_model_tokenize(model, text, len, LOOM_TOKENIZE_PARSE_SPECIAL, NULL, 0, &cnt);
    int32_t *toks = NULL;
    if (st == LOOM_OK || st == LOOM_ERR_BUFFER_TOO_SMALL) {
        toks = malloc((cnt + 1) * sizeof *toks);
        st = toks ? loom_model_tokenize(model, text, len, LOOM_TOKENIZE_PARSE_SPECIAL, toks + 1, cnt, &cnt)
                  : LOOM_ERR_OUT_OF_MEMORY;
    }
    free(text);
    if (st != LOOM_OK) {
        free(toks);
        return st;
    }
    /* A BOS when the model wants one and the template did not write it. */
    if (bos >= 0 && (cnt == 0 || toks[1] != bos)) {
        toks[0] = bos;
        cnt++;
    } else {
        memmove(toks, toks + 1, cnt * sizeof *toks);
    }
    *out = toks;
    *n = cnt;
    return LOOM_OK;
}

int loom_cmd_chat(int argc, char **argv) {
    const char *cmd = "chat";
    loom_options *opts = NULL;
    int rc = loom_cli_common_options(&argc, argv, &opts);
    if (rc) return rc;
    const char *model_path = NULL, *system_text = NULL, *one = NULL;
    long long n_predict = 512, n_ctx = 0;
    bool json = false, seed_set = false;
    loom_sampler_params sp;
    loom_sampler_params_default(&sp);
    sp.temperature = 0.7f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int s = loom_cli_sampling_option(cmd, argc, argv, &i, &sp, &seed_set);
        if (s < 0) goto usage_error;
        if (s > 0) continue;
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
        } else if (!strcmp(a, "--system")) {
            system_text = argv[++i];
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            one = argv[++i];
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 1, &n_predict)) goto usage_error;
        } else if (!strcmp(a, "--ctx-size")) {
            if (!loom_cli_parse_int(cmd, a, argv[++i], 16, &n_ctx)) goto usage_error;
        } else {
            loom_cli_error(cmd, "unknown option: %s", a);
            goto usage_error;
        }
    }
    if (!model_path) model_path = loom_cli_default_model();

    rc = 1;
    loom_engine *engine = loom_cli_engine(opts);
    loom_model *model = NULL;
    loom_context *ctx = NULL;
    loom_sampler *sampler = NULL;
    conversation conv = {0};
    chat_state cs = {.json = json};
    int32_t *hist = NULL, *toks = NULL; /* hist: the tokens the context holds */
    size_t n_hist = 0, cap_hist = 0;
    char *line = NULL;
    size_t line_cap = 0;
    if (!engine) goto done;
    if (!seed_set) {
        const char *v = NULL;
        if (loom_options_get(loom_engine_options(engine), "seed", &v, NULL) == LOOM_OK && v)
            sp.seed = strtoull(v, NULL, 10);
        if (sp.seed == 0) sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    if (!(model = loom_cli_load_model(engine, cmd, model_path, json))) goto done;
    loom_status st;
    /* Does the model want a BOS? (tokenize "" with ADD_BOS) */
    int32_t bos = -1;
    size_t n_bos = 0;
    if (loom_model_tokenize(model, "", 0, LOOM_TOKENIZE_ADD_BOS, &bos, 1, &n_bos) != LOOM_OK || n_bos != 1) bos = -1;
    /* Fail early, with the template's name, when the template is not supported. */
    if (system_text && !conv_add(&conv, "system", system_text)) goto done;
    const size_t n_fixed = conv.n;
    {
        size_t len = 0;
        loom_chat_message probe = {.struct_size = sizeof probe, .role = "user", .content = "hi"};
        st = loom_model_chat_format(model, &probe, 1, true, NULL, 0, &len);
        if (st != LOOM_OK && st != LOOM_ERR_BUFFER_TOO_SMALL) {
            loom_cli_error(cmd, "%s (%s)", loom_model_last_error(model), loom_status_string(st));
            goto done;
        }
    }
    loom_context_params cp = {.struct_size = sizeof cp, .n_ctx = (uint32_t)n_ctx};
    if ((st = loom_context_create(model, &cp, &ctx)) != LOOM_OK) {
        loom_cli_error(cmd, "cannot create a context: %s (%s)", loom_engine_last_error(engine), loom_status_string(st));
        goto done;
    }
    if ((st = loom_sampler_create(&sp, &sampler)) != LOOM_OK) {
        loom_cli_error(cmd, "bad sampling parameters (%s)", loom_status_string(st));
        goto done;
    }
    const bool interactive = !one && isatty(0);
    if (interactive && !json) fprintf(stderr, "chatting (/reset starts over, /quit or Ctrl-D ends)\n");
    for (;;) {
        const char *msg = one;
        if (!one) {
            if (interactive && !json) {
                fprintf(stderr, "\n> ");
                fflush(stderr);
            }
            ssize_t got = getline(&line, &line_cap, stdin);
            if (got < 0) break;
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
                line[--got] = '\0';
            if (!strcmp(line, "/quit")) break;
            if (!strcmp(line, "/reset")) {
                conv_clear(&conv, n_fixed);
                n_hist = 0;
                loom_context_reset(ctx);
                continue;
            }
            if (!line[0]) continue;
            msg = line;
        }
        if (!conv_add(&conv, "user", msg)) goto done;
        size_t n_toks = 0;
        free(toks);
        toks = NULL;
        if ((st = render(model, &conv, bos, &toks, &n_toks)) != LOOM_OK) {
            loom_cli_error(cmd, "cannot render the conversation: %s (%s)", loom_model_last_error(model),
                           loom_status_string(st));
            goto done;
        }
        /* Reuse the cached prefix when the context holds exactly a prefix of the new tokens. */
        size_t common = 0;
        while (common < n_hist && common < n_toks && hist[common] == toks[common])
            common++;
        if (common < n_hist || common == n_toks) {
            loom_context_reset(ctx);
            common = 0;
        }
        if (n_toks - common + 1 > loom_context_n_ctx(ctx) - (common ? loom_context_n_past(ctx) : 0)) {
            loom_cli_error(cmd, "the conversation no longer fits the context of %u tokens: /reset",
                           loom_context_n_ctx(ctx));
            conv_clear(&conv, conv.n - 1);
            if (one) goto done;
            continue;
        }
        if (n_toks + (size_t)n_predict > cap_hist) {
            cap_hist = n_toks + (size_t)n_predict + 64;
            int32_t *h = realloc(hist, cap_hist * sizeof *h);
            if (!h) goto done;
            hist = h;
        }
        memcpy(hist, toks, n_toks * sizeof *hist);
        n_hist = n_toks;
        cs.len = 0;
        cs.n_gen = 0;
        if (cs.reply) cs.reply[0] = '\0';
        loom_generate_params gp = {
            .struct_size = sizeof gp, .max_tokens = (int32_t)n_predict, .on_token = on_token, .user_data = &cs};
        loom_generate_stats gs = {.struct_size = sizeof gs};
        st = loom_generate(ctx, sampler, toks + common, n_toks - common, &gp, &gs);
        if (st != LOOM_OK) {
            loom_cli_error(cmd, "%s (%s)", loom_context_last_error(ctx), loom_status_string(st));
            goto done;
        }
        /* The context holds the prompt and the reply tokens evaluated so far (the last sampled
         * one is evaluated unless generation ended on it). */
        const size_t n_past = loom_context_n_past(ctx);
        for (size_t i = 0; n_hist < n_past && i < cs.n_gen; i++)
            hist[n_hist++] = cs.gen[i];
        if (!conv_add(&conv, "assistant", cs.reply ? cs.reply : "")) goto done;
        if (json) {
            printf("{\"role\": \"assistant\", \"content\": ");
            loom_cli_json_string(stdout, cs.reply ? cs.reply : "");
            printf(", \"n_prompt\": %u, \"n_generated\": %u, \"generate_tokens_per_second\": %.2f}\n", gs.n_prompt,
                   gs.n_generated, gs.generate_seconds > 0 ? gs.n_generated / gs.generate_seconds : 0.0);
        } else {
            fputc('\n', stdout);
        }
        fflush(stdout);
        if (one) break;
    }
    rc = 0;
done:
    free(line);
    free(hist);
    free(toks);
    free(cs.reply);
    free(cs.gen);
    conv_clear(&conv, 0);
    free(conv.msgs);
    free(conv.texts);
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

/*
 * A minimal Loom application: start the engine, list the plugins it found, and, given a model
 * path and a prompt, generate text with greedy sampling.
 *
 *   loom-sample-app                      # list plugins
 *   loom-sample-app MODEL "PROMPT" [N]   # generate N tokens (default 32)
 */
#include <loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool print_token(int32_t token, const char *piece, size_t len, void *user) {
    (void)token, (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return true;
}

int main(int argc, char **argv) {
    char err[1024];
    loom_engine *engine = NULL;
    loom_status s = loom_engine_create(NULL, &engine, err, sizeof err);
    if (s != LOOM_OK) {
        fprintf(stderr, "engine: %s: %s\n", loom_status_string(s), err);
        return 1;
    }
    printf("loom %s, %u plugin(s)\n", loom_version_string(), loom_engine_plugin_count(engine));
    for (uint32_t i = 0; i < loom_engine_plugin_count(engine); i++) {
        loom_plugin_info p = {.struct_size = sizeof p};
        loom_engine_plugin_info(engine, i, &p);
        printf("  %-12s %s %s\n", p.name, p.state == LOOM_PLUGIN_AVAILABLE ? "available" : "not available:",
               p.reason);
    }
    int rc = 0;
    if (argc >= 3) {
        loom_model *model = NULL;
        loom_context *ctx = NULL;
        loom_sampler *sampler = NULL;
        int32_t tokens[4096];
        size_t n = 0;
        loom_sampler_params sp;
        loom_sampler_params_default(&sp);
        loom_generate_params gp = {.struct_size = sizeof gp, .max_tokens = argc > 3 ? atoi(argv[3]) : 32,
                                   .on_token = print_token};
        if ((s = loom_model_load(engine, argv[1], NULL, &model)) != LOOM_OK) {
            fprintf(stderr, "model: %s\n", loom_engine_last_error(engine));
            rc = 1;
        } else if ((s = loom_model_tokenize(model, argv[2], strlen(argv[2]), LOOM_TOKENIZE_ADD_BOS, tokens, 4096,
                                            &n)) != LOOM_OK ||
                   (s = loom_context_create(model, NULL, &ctx)) != LOOM_OK ||
                   (s = loom_sampler_create(&sp, &sampler)) != LOOM_OK ||
                   (s = loom_generate(ctx, sampler, tokens, n, &gp, NULL)) != LOOM_OK) {
            fprintf(stderr, "generation failed: %s %s\n", loom_status_string(s), ctx ? loom_context_last_error(ctx) : "");
            rc = 1;
        }
        printf("\n");
        loom_sampler_free(sampler);
        loom_context_free(ctx);
        loom_model_free(model);
    }
    loom_engine_free(engine);
    return rc;
}

/*
 * main.c - the `loom` command dispatcher.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* Commands whose file is not part of a build resolve to NULL. */
#pragma weak loom_cmd_plugins
#pragma weak loom_cmd_config
#pragma weak loom_cmd_inspect
#pragma weak loom_cmd_tokenize
#pragma weak loom_cmd_run
#pragma weak loom_cmd_chat
#pragma weak loom_cmd_perplexity
#pragma weak loom_cmd_bench
#pragma weak loom_cmd_logits
#pragma weak loom_cmd_convert

typedef struct command {
    const char *name;
    loom_cli_fn fn;
    const char *help;
} command;

static void usage(FILE *f, const command *cmds, size_t n) {
    fprintf(f, "loom %s - LLM inference engine\n\nusage: loom <command> [options]\n\ncommands:\n",
            loom_version_string());
    for (size_t i = 0; i < n; i++) {
        if (cmds[i].fn) fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].help);
    }
    fprintf(f, "\ncommon options: -c/--config FILE, -o/--option KEY=VALUE, --backend NAME, -t/--threads N,\n"
               "  --plugin-path PATHS, -v/--verbose, -q/--quiet. `loom <command> --help` for more.\n");
}

int main(int argc, char **argv) {
    const command cmds[] = {
        {"run", loom_cmd_run, "generate text from a prompt (streams tokens)"},
        {"chat", loom_cmd_chat, "interactive chat with the model's chat template"},
        {"perplexity", loom_cmd_perplexity, "perplexity of a text file"},
        {"bench", loom_cmd_bench, "prefill and decode speed"},
        {"logits", loom_cmd_logits, "dump logits for given token ids"},
        {"tokenize", loom_cmd_tokenize, "text to token ids / pieces"},
        {"inspect", loom_cmd_inspect, "model architecture, tensors, tokenizer, metadata"},
        {"convert", loom_cmd_convert, "convert a checkpoint to a GGUF model file"},
        {"plugins", loom_cmd_plugins, "list discovered plugins and their state"},
        {"config", loom_cmd_config, "show effective configuration (--print)"},
    };
    const size_t n = sizeof cmds / sizeof cmds[0];
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout, cmds, n);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("loom %s (plugin ABI %d.%d)\n", loom_version_string(), LOOM_ABI_MAJOR, LOOM_ABI_MINOR);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(argv[1], cmds[i].name)) {
            if (!cmds[i].fn) {
                fprintf(stderr, "loom: command '%s' is not part of this build\n", argv[1]);
                return 2;
            }
            return cmds[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "loom: unknown command '%s'\n\n", argv[1]);
    usage(stderr, cmds, n);
    return 2;
}

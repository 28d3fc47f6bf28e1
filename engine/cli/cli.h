/*
 * cli.h - the `loom` command-line program. One file per command (cmd_<name>.c), each an
 * application of the public API only (abi/loom.h).
 */
#ifndef LOOM_CLI_H
#define LOOM_CLI_H

#include "loom.h"

#include <stdbool.h>
#include <stdio.h>

/* Every command: argv[0] is the command name. Returns the process exit code. */
typedef int (*loom_cli_fn)(int argc, char **argv);

/* Commands (defined weak in main.c's table so a command file can be absent in a build). */
int loom_cmd_plugins(int argc, char **argv);
int loom_cmd_config(int argc, char **argv);
int loom_cmd_inspect(int argc, char **argv);
int loom_cmd_tokenize(int argc, char **argv);
int loom_cmd_run(int argc, char **argv);
int loom_cmd_chat(int argc, char **argv);
int loom_cmd_perplexity(int argc, char **argv);
int loom_cmd_bench(int argc, char **argv);
int loom_cmd_logits(int argc, char **argv);
int loom_cmd_convert(int argc, char **argv);

/* ---- shared helpers (common.c) ---- */

/*
 * Options shared by every command, parsed out of argv: -c/--config FILE, -o/--option KEY=VALUE,
 * --backend NAME, -t/--threads N, --plugin-path PATH, -v/--verbose, -q/--quiet. Remaining
 * arguments are compacted into argv; *argc is updated. Builds the option set
 * (defaults < file < env < command line). Returns 0 or an exit code (2 = usage error).
 */
int loom_cli_common_options(int *argc, char **argv, loom_options **out);
/* Create the engine from options, printing errors. Returns NULL on failure. */
loom_engine *loom_cli_engine(const loom_options *options);
/* Print "loom <cmd>: <message>" to stderr. */
void loom_cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Write `s` as a JSON string literal (with quotes) to `f`. Bytes that are not part of a valid
 * UTF-8 sequence are written as \ufffd (JSON text is UTF-8). */
void loom_cli_json_string(FILE *f, const char *s);
/* The same for `len` bytes that may contain NUL (written as \u0000). */
void loom_cli_json_bytes(FILE *f, const char *s, size_t len);
/* Default model path: $LOOM_MODEL, else the cached SmolLM2 file, else NULL. */
const char *loom_cli_default_model(void);

/* ---- model and generation helpers shared by run/chat/perplexity/bench/logits (cmd_run.c) ---- */

/* Load a model, drawing a progress bar on stderr for large files when stderr is a terminal and
 * `quiet` is false. Prints "loom <cmd>: ..." and returns NULL on failure. */
loom_model *loom_cli_load_model(loom_engine *engine, const char *cmd, const char *path, bool quiet);
/* Parse one sampling option at argv[*i] (--temp, --top-k, --top-p, --min-p, --repeat-penalty,
 * --repeat-last-n, --seed) into `p`, advancing *i past its value. Returns 1 when consumed, 0
 * when argv[*i] is not a sampling option, -1 on a bad value (already reported). */
int loom_cli_sampling_option(const char *cmd, int argc, char **argv, int *i, loom_sampler_params *p, bool *seed_set);
/* Parse a non-negative integer / a float option value; false (reported) when invalid. */
bool loom_cli_parse_int(const char *cmd, const char *opt, const char *text, long long min, long long *out);
bool loom_cli_parse_float(const char *cmd, const char *opt, const char *text, float *out);

#endif

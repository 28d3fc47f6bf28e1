/*
 * cmd_config.c - `loom config --print [--json]`: each effective option with its source.
 */
#include "cli.h"

#include <string.h>

static const char *source_str(int32_t s) {
    static const char *const names[] = {"default", "file", "env", "cli"};
    return s >= 0 && s <= 3 ? names[s] : "unset";
}

int loom_cmd_config(int argc, char **argv) {
    loom_options *o;
    int rc = loom_cli_common_options(&argc, argv, &o);
    if (rc) return rc;
    bool json = false, print = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = print = true;
        else if (!strcmp(argv[i], "--print"))
            print = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: loom config --print [--json] [-c FILE] [-o KEY=VALUE ...]\n"
                   "Prints every effective option and where it came from\n"
                   "(precedence: default < file < env (LOOM_OPT_*) < cli). See docs/configuration.md.\n");
            loom_options_free(o);
            return 0;
        } else {
            loom_cli_error("config", "unknown argument '%s'", argv[i]);
            loom_options_free(o);
            return 2;
        }
    }
    if (!print) {
        loom_cli_error("config", "nothing to do (use --print)");
        loom_options_free(o);
        return 2;
    }
    loom_engine *e = loom_cli_engine(o);
    loom_options_free(o);
    if (!e) return 1;
    const loom_options *eff = loom_engine_options(e);
    if (json) printf("{");
    for (uint32_t i = 0; i < loom_options_count(eff); i++) {
        const char *k, *v;
        int32_t s;
        loom_options_at(eff, i, &k, &v, &s);
        if (json) {
            printf("%s\n  ", i ? "," : "");
            loom_cli_json_string(stdout, k);
            printf(": {\"value\": ");
            loom_cli_json_string(stdout, v);
            printf(", \"source\": \"%s\"}", source_str(s));
        } else {
            printf("%-32s = %-24s (%s)\n", k, v, source_str(s));
        }
    }
    if (json) printf("\n}\n");
    loom_engine_free(e);
    return 0;
}

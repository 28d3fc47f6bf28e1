/*
 * common.c - option parsing and helpers shared by every `loom` command.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void loom_cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loom %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 when it is not valid (overlong
 * forms, surrogates and values past U+10FFFF included). */
static size_t utf8_valid_len(const unsigned char *p, size_t n) {
    const unsigned char c = p[0];
    size_t len;
    uint32_t cpt, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cpt = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cpt = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cpt = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cpt = (cpt << 6) | (p[i] & 0x3F);
    }
    if (cpt < min || cpt > 0x10FFFF || (cpt >= 0xD800 && cpt <= 0xDFFF)) return 0;
    return len;
}

void loom_cli_json_bytes(FILE *f, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s) len = 0;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        const unsigned char c = p[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20) {
                fprintf(f, "\\u%04x", c);
            } else if (c >= 0x80) {
                const size_t n = utf8_valid_len(p + i, len - i);
                if (n == 0) {
                    fputs("\\ufffd", f); /* JSON text is UTF-8: a byte outside a valid sequence */
                    i++;
                } else {
                    fwrite(p + i, 1, n, f);
                    i += n;
                }
                continue;
            } else {
                fputc(c, f);
            }
        }
        i++;
    }
    fputc('"', f);
}

void loom_cli_json_string(FILE *f, const char *s) { loom_cli_json_bytes(f, s, s ? strlen(s) : 0); }

static int set_cli(loom_options *o, const char *key, const char *value) {
    if (loom_options_set(o, key, value, LOOM_SOURCE_CLI) != LOOM_OK) {
        fprintf(stderr, "loom: %s\n", loom_options_last_error(o));
        return 2;
    }
    return 0;
}

/* Two passes: the configuration file first (it is a lower source), then the rest. */
int loom_cli_common_options(int *argc, char **argv, loom_options **out) {
    loom_options *o = NULL;
    *out = NULL;
    if (loom_options_create(&o) != LOOM_OK) return 1;
    int n = *argc, w = 1, rc = 0;
    for (int i = 1; i < n && !rc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < n ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "-c") || !strcmp(a, "--config") || !strcmp(a, "-o") || !strcmp(a, "--option") ||
                     !strcmp(a, "--backend") || !strcmp(a, "-t") || !strcmp(a, "--threads") ||
                     !strcmp(a, "--plugin-path");
        if (takes && !next) {
            fprintf(stderr, "loom: option %s needs a value\n", a);
            rc = 2;
            break;
        }
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (loom_options_load_file(o, next) != LOOM_OK) {
                fprintf(stderr, "loom: %s\n", loom_options_last_error(o));
                rc = 2;
            }
            i++;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--option")) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq) {
                fprintf(stderr, "loom: -o expects KEY=VALUE, got '%s'\n", next);
                rc = 2;
            } else {
                *eq = '\0';
                rc = set_cli(o, argv[i + 1], eq + 1);
                *eq = '=';
            }
            i++;
        } else if (!strcmp(a, "--backend")) {
            rc = set_cli(o, "backend", next), i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            rc = set_cli(o, "threads", next), i++;
        } else if (!strcmp(a, "--plugin-path")) {
            rc = set_cli(o, "plugin_path", next), i++;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            rc = set_cli(o, "log_level", "debug");
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            rc = set_cli(o, "log_level", "error");
        } else {
            argv[w++] = argv[i];
        }
    }
    if (rc) {
        loom_options_free(o);
        return rc;
    }
    argv[w] = NULL;
    *argc = w;
    *out = o;
    return 0;
}

loom_engine *loom_cli_engine(const loom_options *options) {
    loom_engine *e = NULL;
    char err[1024];
    loom_status s = loom_engine_create(options, &e, err, sizeof err);
    if (s != LOOM_OK) {
        fprintf(stderr, "loom: cannot start the engine: %s (%s)\n", err, loom_status_string(s));
        return NULL;
    }
    return e;
}

const char *loom_cli_default_model(void) {
    static char path[4096];
    const char *env = getenv("LOOM_MODEL");
    if (env && *env) return env;
    const char *dir = getenv("LOOM_CACHE_DIR");
    const char *home = getenv("HOME");
    if (dir && *dir)
        snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", dir);
    else if (home && *home)
        snprintf(path, sizeof path, "%s/.cache/loom/SmolLM2-135M-Instruct.Q4_1.gguf", home);
    else
        return NULL;
    struct stat st;
    return stat(path, &st) == 0 ? path : NULL;
}

/*
 * options.c - the flat, namespaced key/value option model.
 *
 * Every configuration path (API, command line, LOOM_OPT_* environment, configuration files)
 * compiles down to loom_options_set(key, value, source). A value from a lower-precedence source
 * never replaces one from a higher source: defaults < file < environment < command line.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef struct option_entry {
    char *key;
    char *value;
    int32_t source;
} option_entry;

struct loom_options {
    option_entry *entries; /* sorted by key */
    uint32_t count;
    uint32_t capacity;
    char last_error[512];
};

/* The keys the engine itself understands. Plugin keys are "plugin.<name>.<key>". */
static const loom_option_spec engine_specs[] = {
    {"backend", "cpu_opt", "backend priority list, e.g. \"opencl,cpu\" (the CPU reference is always the last fallback)"},
    {"threads", "0", "worker threads for CPU backends (0 = all cores)"},
    {"ctx_size", "0", "context length in tokens (0 = the model's training context, capped at 4096)"},
    {"batch_size", "512", "largest number of tokens per forward pass (prefill chunk)"},
    {"kv_type", "f16", "KV-cache element type: f16 or f32"},
    {"seed", "0", "sampling seed (0 = time-based)"},
    {"plugin_path", "", "extra plugin files or folders, ':'-separated, searched before the defaults"},
    {"plugins.enable", "", "comma list: load only these plugins (empty = all)"},
    {"plugins.disable", "", "comma list: never load these plugins"},
    {"log_level", "info", "error, warn, info or debug"},
    {"convert.tokenizer", "",
     "loom_model_save / loom convert: \"bytes\" writes a byte vocabulary (256 tokens, id = byte) into a "
     "model with 256 token ids and no tokenizer; empty keeps the source's tokenizer"},
    {NULL, NULL, NULL},
};

const loom_option_spec *loom_engine_option_specs(void) { return engine_specs; }

loom_status loom_options_create(loom_options **out) {
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = calloc(1, sizeof **out);
    return *out ? LOOM_OK : LOOM_ERR_OUT_OF_MEMORY;
}

void loom_options_free(loom_options *options) {
    if (!options) return;
    for (uint32_t i = 0; i < options->count; i++) {
        free(options->entries[i].key);
        free(options->entries[i].value);
    }
    free(options->entries);
    free(options);
}

const char *loom_options_last_error(const loom_options *options) {
    return options ? options->last_error : "no options object";
}

/* Binary search: index of key, or -(insertion point) - 1. */
static int64_t find(const loom_options *o, const char *key) {
    int64_t lo = 0, hi = (int64_t)o->count - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int c = strcmp(o->entries[mid].key, key);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

static bool valid_key(const char *key) {
    if (!key || !*key) return false;
    for (const char *p = key; *p; p++) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
            return false;
    }
    return key[0] != '.' && key[strlen(key) - 1] != '.';
}

loom_status loom_options_set(loom_options *o, const char *key, const char *value, int32_t source) {
    if (!o || !key || !value || source < LOOM_SOURCE_DEFAULT || source > LOOM_SOURCE_CLI) {
        return LOOM_ERR_INVALID_ARGUMENT;
    }
    if (!valid_key(key)) {
        return loom_err(o->last_error, sizeof o->last_error, LOOM_ERR_CONFIG,
                        "invalid option key '%s' (lower-case letters, digits, '_', '-' and '.' only)", key);
    }
    int64_t i = find(o, key);
    if (i >= 0) {
        option_entry *e = &o->entries[i];
        if (e->source > source) return LOOM_OK; /* a higher-precedence value stays */
        char *v = loom_strdup(value);
        if (!v) return LOOM_ERR_OUT_OF_MEMORY;
        free(e->value);
        e->value = v;
        e->source = source;
        return LOOM_OK;
    }
    if (o->count == o->capacity) {
        uint32_t cap = o->capacity ? o->capacity * 2 : 16;
        option_entry *n = realloc(o->entries, cap * sizeof *n);
        if (!n) return LOOM_ERR_OUT_OF_MEMORY;
        o->entries = n;
        o->capacity = cap;
    }
    option_entry e = {loom_strdup(key), loom_strdup(value), source};
    if (!e.key || !e.value) {
        free(e.key);
        free(e.value);
        return LOOM_ERR_OUT_OF_MEMORY;
    }
    uint32_t at = (uint32_t)(-i - 1);
    memmove(&o->entries[at + 1], &o->entries[at], (o->count - at) * sizeof *o->entries);
    o->entries[at] = e;
    o->count++;
    return LOOM_OK;
}

loom_status loom_options_get(const loom_options *o, const char *key, const char **value, int32_t *source) {
    if (value) *value = NULL;
    if (source) *source = LOOM_SOURCE_UNSET;
    if (!o || !key) return LOOM_ERR_INVALID_ARGUMENT;
    int64_t i = find(o, key);
    if (i < 0) return LOOM_ERR_NOT_FOUND;
    if (value) *value = o->entries[i].value;
    if (source) *source = o->entries[i].source;
    return LOOM_OK;
}

uint32_t loom_options_count(const loom_options *o) { return o ? o->count : 0; }

loom_status loom_options_at(const loom_options *o, uint32_t index, const char **key, const char **value,
                            int32_t *source) {
    if (!o || index >= o->count) return LOOM_ERR_INVALID_ARGUMENT;
    if (key) *key = o->entries[index].key;
    if (value) *value = o->entries[index].value;
    if (source) *source = o->entries[index].source;
    return LOOM_OK;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/*
 * The file format (docs/configuration.md): UTF-8 text, one "key = value" per line, '#' or ';'
 * starts a comment line, "[section]" prefixes the following keys with "section.", values may
 * be wrapped in double quotes to keep leading/trailing spaces.
 */
loom_status loom_options_load_file(loom_options *o, const char *path) {
    if (!o || !path) return LOOM_ERR_INVALID_ARGUMENT;
    FILE *f = fopen(path, "r");
    if (!f) {
        return loom_err(o->last_error, sizeof o->last_error, LOOM_ERR_IO, "cannot open configuration file '%s': %s",
                        path, strerror(errno));
    }
    char line[4096], section[256] = "";
    unsigned lineno = 0;
    loom_status st = LOOM_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = loom_err(o->last_error, sizeof o->last_error, LOOM_ERR_CONFIG, "%s:%u: line too long", path, lineno);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || end[1] != '\0' || end - s - 1 >= (long)sizeof section) {
                st = loom_err(o->last_error, sizeof o->last_error, LOOM_ERR_CONFIG,
                              "%s:%u: malformed section header '%s'", path, lineno, s);
                break;
            }
            *end = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            st = loom_err(o->last_error, sizeof o->last_error, LOOM_ERR_CONFIG,
                          "%s:%u: expected 'key = value', got '%s'", path, lineno, s);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vn = strlen(value);
        if (vn >= 2 && value[0] == '"' && value[vn - 1] == '"') {
            value[vn - 1] = '\0';
            value++;
        }
        char full[512];
        int n =
            section[0] ? snprintf(full, sizeof full, "%s.%s", section, key) : snprintf(full, sizeof full, "%s", key);
        if (n < 0 || (size_t)n >= sizeof full) {
            st = loom_err(o->last_error, sizeof o->last_error, LOOM_ERR_CONFIG, "%s:%u: key too long", path, lineno);
            break;
        }
        st = loom_options_set(o, full, value, LOOM_SOURCE_FILE);
        if (st != LOOM_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", o->last_error);
            loom_err(o->last_error, sizeof o->last_error, st, "%s:%u: %s", path, lineno, why);
            break;
        }
    }
    fclose(f);
    return st;
}

/* LOOM_OPT_<KEY>: upper case, '.' written as "__" (LOOM_OPT_PLUGIN__OPENCL__DEVICE). */
loom_status loom_options_load_env(loom_options *o) {
    if (!o) return LOOM_ERR_INVALID_ARGUMENT;
    static const char prefix[] = "LOOM_OPT_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0) continue;
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        char name[256], key[256];
        size_t n = (size_t)(eq - *e);
        if (n >= sizeof name) continue;
        memcpy(name, *e, n);
        name[n] = '\0';
        const char *value = secure_getenv(name);
        if (!value) continue;
        size_t k = 0;
        for (const char *p = name + sizeof prefix - 1; *p && k + 1 < sizeof key; p++) {
            if (p[0] == '_' && p[1] == '_') {
                key[k++] = '.';
                p++;
            } else {
                key[k++] = (char)tolower((unsigned char)*p);
            }
        }
        key[k] = '\0';
        loom_status st = loom_options_set(o, key, value, LOOM_SOURCE_ENV);
        if (st != LOOM_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", o->last_error);
            return loom_err(o->last_error, sizeof o->last_error, st, "environment variable %s: %s", name, why);
        }
    }
    return LOOM_OK;
}

/*
 * engine.c - loom_engine_*: option validation, plugin list and devices.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

loom_status loom_engine_set_error(loom_engine *engine, loom_status status, const char *fmt, ...) {
    if (engine) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(engine->last_error, sizeof engine->last_error, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *loom_engine_last_error(const loom_engine *engine) { return engine ? engine->last_error : "no engine"; }

const loom_options *loom_engine_options(const loom_engine *engine) { return engine ? engine->options : NULL; }

const char *loom_engine_option_str(const loom_engine *engine, const char *key, const char *def) {
    const char *v = NULL;
    if (engine && loom_options_get(engine->options, key, &v, NULL) == LOOM_OK && v) return v;
    return def;
}

static bool parse_int(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

int64_t loom_engine_option_int(const loom_engine *engine, const char *key, int64_t def) {
    int64_t v;
    return parse_int(loom_engine_option_str(engine, key, NULL), &v) ? v : def;
}

static const loom_option_spec *engine_spec(const char *key) {
    for (const loom_option_spec *s = loom_engine_option_specs(); s->key; s++) {
        if (!strcmp(s->key, key)) return s;
    }
    return NULL;
}

/* Checks the values of the engine's own keys. */
static loom_status check_engine_values(loom_engine *e) {
    static const char *const ints[] = {"threads", "ctx_size", "batch_size", "seed"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        const char *v = loom_engine_option_str(e, ints[i], "0");
        int64_t n;
        if (!parse_int(v, &n) || n < 0 || n > (int64_t)1 << 40)
            return loom_engine_set_error(e, LOOM_ERR_CONFIG, "option %s: '%s' is not a non-negative integer", ints[i],
                                         v);
    }
    if (loom_engine_option_int(e, "batch_size", 1) < 1)
        return loom_engine_set_error(e, LOOM_ERR_CONFIG, "option batch_size must be at least 1");
    const char *kv = loom_engine_option_str(e, "kv_type", "f16");
    if (strcmp(kv, "f16") && strcmp(kv, "f32"))
        return loom_engine_set_error(e, LOOM_ERR_CONFIG, "option kv_type: '%s' (want f16 or f32)", kv);
    const char *tk = loom_engine_option_str(e, "convert.tokenizer", "");
    if (*tk && strcmp(tk, "bytes"))
        return loom_engine_set_error(e, LOOM_ERR_CONFIG, "option convert.tokenizer: '%s' (want \"bytes\" or empty)",
                                     tk);
    const char *lvl = loom_engine_option_str(e, "log_level", "info");
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    for (int32_t i = 0; i < 4; i++) {
        if (!strcmp(lvl, levels[i])) return LOOM_OK;
    }
    return loom_engine_set_error(e, LOOM_ERR_CONFIG, "option log_level: '%s' (want error, warn, info or debug)", lvl);
}

static int32_t log_level_of(const char *lvl) {
    if (!strcmp(lvl, "error")) return LOOM_LOG_ERROR;
    if (!strcmp(lvl, "warn")) return LOOM_LOG_WARN;
    if (!strcmp(lvl, "debug")) return LOOM_LOG_DEBUG;
    return LOOM_LOG_INFO;
}

/* Plugin keys: "plugin.<name>.<key>". Returns the plugin record with that name (any state). */
static const loom_plugin_rec *plugin_by_name(const loom_engine *e, const char *name, size_t n) {
    for (uint32_t i = 0; i < e->n_plugins; i++) {
        const loom_plugin_rec *p = &e->plugins[i];
        if (p->desc && p->name && strlen(p->name) == n && !strncmp(p->name, name, n)) return p;
    }
    return NULL;
}

static loom_status check_plugin_keys(loom_engine *e) {
    for (uint32_t i = 0; i < loom_options_count(e->options); i++) {
        const char *key;
        loom_options_at(e->options, i, &key, NULL, NULL);
        if (strncmp(key, "plugin.", 7) != 0) continue;
        const char *name = key + 7, *dot = strchr(name, '.');
        if (!dot || !dot[1])
            return loom_engine_set_error(e, LOOM_ERR_CONFIG, "option '%s': plugin keys are plugin.<name>.<key>", key);
        const loom_plugin_rec *p = plugin_by_name(e, name, (size_t)(dot - name));
        if (!p) {
            loom_log(LOOM_LOG_WARN, NULL, "option '%s' names plugin '%.*s', which is not loaded; ignored", key,
                     (int)(dot - name), name);
            continue;
        }
        bool known = false;
        for (uint32_t k = 0; k < p->desc->n_options && !known; k++) {
            known = p->desc->options[k].key && !strcmp(p->desc->options[k].key, dot + 1);
        }
        if (!known)
            return loom_engine_set_error(e, LOOM_ERR_CONFIG, "unknown option '%s': plugin '%s' has no option '%s'", key,
                                         p->name, dot + 1);
    }
    return LOOM_OK;
}

/* Fill in the defaults declared by loaded plugins (source "default"). */
static loom_status add_plugin_defaults(loom_engine *e) {
    for (uint32_t i = 0; i < e->n_plugins; i++) {
        const loom_plugin_rec *p = &e->plugins[i];
        if (!p->desc) continue;
        for (uint32_t k = 0; k < p->desc->n_options; k++) {
            const loom_option_def *d = &p->desc->options[k];
            if (!d->key || !d->default_value) continue;
            char full[256];
            if (snprintf(full, sizeof full, "plugin.%s.%s", p->name, d->key) >= (int)sizeof full) continue;
            loom_status s = loom_options_set(e->options, full, d->default_value, LOOM_SOURCE_DEFAULT);
            if (s != LOOM_OK && s != LOOM_ERR_CONFIG) return s;
        }
    }
    return LOOM_OK;
}

static loom_status copy_options(const loom_options *src, loom_options *dst) {
    for (uint32_t i = 0; i < loom_options_count(src); i++) {
        const char *k, *v;
        int32_t s;
        loom_options_at(src, i, &k, &v, &s);
        loom_status st = loom_options_set(dst, k, v, s);
        if (st != LOOM_OK) return st;
    }
    return LOOM_OK;
}

loom_status loom_engine_create(const loom_options *options, loom_engine **out, char *error, size_t error_size) {
    if (error && error_size) error[0] = '\0';
    if (!out) return LOOM_ERR_INVALID_ARGUMENT;
    *out = NULL;
    loom_engine *e = calloc(1, sizeof *e);
    if (!e) return loom_err(error, error_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    loom_status s = loom_options_create(&e->options);
    if (s == LOOM_OK && options) s = copy_options(options, e->options);
    if (s == LOOM_OK) {
        s = loom_options_load_env(e->options);
        if (s != LOOM_OK) loom_engine_set_error(e, s, "%s", loom_options_last_error(e->options));
    }
    for (const loom_option_spec *sp = loom_engine_option_specs(); s == LOOM_OK && sp->key; sp++) {
        s = loom_options_set(e->options, sp->key, sp->default_value, LOOM_SOURCE_DEFAULT);
    }
    /* Unknown engine keys are errors before any plugin is touched. */
    for (uint32_t i = 0; s == LOOM_OK && i < loom_options_count(e->options); i++) {
        const char *key;
        loom_options_at(e->options, i, &key, NULL, NULL);
        if (strncmp(key, "plugin.", 7) != 0 && !engine_spec(key))
            s = loom_engine_set_error(e, LOOM_ERR_CONFIG, "unknown option '%s' (see `loom config --print`)", key);
    }
    if (s == LOOM_OK) s = check_engine_values(e);
    if (s == LOOM_OK) {
        int32_t lsrc = LOOM_SOURCE_UNSET;
        loom_options_get(e->options, "log_level", NULL, &lsrc);
        if (lsrc != LOOM_SOURCE_DEFAULT) /* an application's own level stays unless configured */
            loom_log_set_level(log_level_of(loom_engine_option_str(e, "log_level", "info")));
        e->plugins_loaded = true;
        s = loom_plugins_load(e, e->last_error, sizeof e->last_error);
        if (s != LOOM_OK) e->plugins_loaded = false;
    }
    if (s == LOOM_OK) s = add_plugin_defaults(e);
    if (s == LOOM_OK) s = check_plugin_keys(e);
    if (s != LOOM_OK) {
        if (!e->last_error[0]) snprintf(e->last_error, sizeof e->last_error, "%s", loom_status_string(s));
        loom_err(error, error_size, s, "%s", e->last_error);
        loom_engine_free(e);
        return s;
    }
    *out = e;
    return LOOM_OK;
}

void loom_engine_free(loom_engine *engine) {
    if (!engine) return;
    if (engine->plugins_loaded) loom_plugins_unload(engine);
    loom_options_free(engine->options);
    free(engine);
}

uint32_t loom_engine_plugin_count(const loom_engine *engine) { return engine ? engine->n_plugins : 0; }

loom_status loom_engine_plugin_info(const loom_engine *engine, uint32_t index, loom_plugin_info *out) {
    if (!engine || !out || index >= engine->n_plugins || out->struct_size < sizeof(uint32_t))
        return LOOM_ERR_INVALID_ARGUMENT;
    const loom_plugin_rec *p = &engine->plugins[index];
    const loom_plugin_desc *d = p->desc;
    loom_plugin_info full = {
        .struct_size = out->struct_size,
        .kind = p->kind,
        .state = p->state_code,
        .n_devices = p->n_devices,
        .abi_major = d ? d->abi_major : 0,
        .abi_minor = d ? p->abi_minor : 0,
        .name = p->name ? p->name : "",
        .version = d && d->version ? d->version : "",
        .vendor = d && d->vendor ? d->vendor : "",
        .description = d && d->description ? d->description : "",
        .path = p->realpath ? p->realpath : "",
        .reason = p->reason,
    };
    size_t n = out->struct_size < sizeof full ? out->struct_size : sizeof full;
    memcpy(out, &full, n);
    out->struct_size = out->struct_size < sizeof full ? out->struct_size : (uint32_t)sizeof full;
    return LOOM_OK;
}

loom_status loom_engine_device_info(const loom_engine *engine, uint32_t plugin, uint32_t device,
                                    loom_device_desc *out) {
    if (!engine || !out || plugin >= engine->n_plugins || out->struct_size < sizeof(uint32_t))
        return LOOM_ERR_INVALID_ARGUMENT;
    const loom_plugin_rec *p = &engine->plugins[plugin];
    if (p->state_code != LOOM_PLUGIN_AVAILABLE || p->kind != LOOM_PLUGIN_KIND_BACKEND) return LOOM_ERR_UNAVAILABLE;
    if (device >= p->n_devices) return LOOM_ERR_NOT_FOUND;
    const loom_backend_api *b = p->desc->api;
    loom_device_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    loom_status s = b->device_info(p->state, device, &info);
    if (s != LOOM_OK) return s;
    loom_device_desc full;
    memset(&full, 0, sizeof full);
    full.struct_size = out->struct_size;
    full.compute_units = info.compute_units;
    full.memory_bytes = info.memory_bytes;
    full.max_alloc_bytes = info.max_alloc_bytes;
    full.capabilities = info.capabilities;
    memcpy(full.name, info.name, sizeof full.name);
    full.name[sizeof full.name - 1] = '\0';
    memcpy(full.description, info.description, sizeof full.description);
    full.description[sizeof full.description - 1] = '\0';
    size_t n = out->struct_size < sizeof full ? out->struct_size : sizeof full;
    memcpy(out, &full, n);
    return LOOM_OK;
}

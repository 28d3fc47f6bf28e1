/*
 * plugin.c - plugin discovery, loading, ABI negotiation and the host table.
 *
 * Search order (docs/architecture.md): explicit paths (option "plugin_path", files or folders),
 * then LOOM_PLUGIN_PATH if set (it replaces the defaults), else the defaults: the folder
 * "loom/plugins" next to the engine library itself, the compiled-in install folder, and the
 * build tree's plugin folder. Folders contribute files named loom-*.so, in sorted order; an
 * explicitly named file is tried whatever its name. Duplicates are dropped by real path and
 * refused by plugin name. Every plugin ends available, unavailable or rejected with a reason.
 *
 * Loading: the object is first bound eagerly with dlopen(RTLD_NOW | RTLD_LOCAL) so that a
 * plugin with an unresolved symbol is refused at load time (libltdl binds lazily, which would
 * turn that into a crash at the first call); libltdl then opens the same object and owns the
 * handle, and the entry symbol is resolved through it.
 */
#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <ltdl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Until every subsystem is linked in, missing host functions resolve to NULL. */
#pragma weak loom_host_meta_get_int
#pragma weak loom_host_meta_get_float
#pragma weak loom_host_meta_get_string
#pragma weak loom_host_meta_get_array
#pragma weak loom_host_model_tensor
#pragma weak loom_host_tensor_info
#pragma weak loom_host_tensor_new
#pragma weak loom_host_tensor_view
#pragma weak loom_host_tensor_write
#pragma weak loom_host_tensor_read
#pragma weak loom_host_op
#pragma weak loom_host_exec_last_error
#pragma weak loom_host_exec_set_error

/* ---- host table -------------------------------------------------------------------------- */

static void host_log(int32_t level, const char *who, const char *fmt, ...) LOOM_PRINTF(3, 4);
static void host_log(int32_t level, const char *who, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    loom_logv(level, who, fmt, ap);
    va_end(ap);
}

static void *host_alloc(size_t size) { return malloc(size ? size : 1); }
static void host_free(void *ptr) { free(ptr); }

const loom_host_api *loom_host_table(void) {
    static const loom_host_api table = {
        .struct_size = sizeof(loom_host_api),
        .abi_version = LOOM_ABI_VERSION,
        .log = host_log,
        .alloc = host_alloc,
        .free = host_free,
        .meta_get_int = loom_host_meta_get_int,
        .meta_get_float = loom_host_meta_get_float,
        .meta_get_string = loom_host_meta_get_string,
        .meta_get_array = loom_host_meta_get_array,
        .model_tensor = loom_host_model_tensor,
        .tensor_info = loom_host_tensor_info,
        .tensor_new = loom_host_tensor_new,
        .tensor_view = loom_host_tensor_view,
        .tensor_write = loom_host_tensor_write,
        .tensor_read = loom_host_tensor_read,
        .op = loom_host_op,
        .exec_last_error = loom_host_exec_last_error,
        .exec_set_error = loom_host_exec_set_error,
    };
    return &table;
}

/* ---- discovery --------------------------------------------------------------------------- */

typedef struct path_list {
    char **items;
    size_t count, capacity;
} path_list;

static loom_status path_list_add(path_list *l, const char *path) {
    if (l->count == l->capacity) {
        size_t cap = l->capacity ? l->capacity * 2 : 16;
        char **n = realloc(l->items, cap * sizeof *n);
        if (!n) return LOOM_ERR_OUT_OF_MEMORY;
        l->items = n;
        l->capacity = cap;
    }
    if (!(l->items[l->count] = loom_strdup(path))) return LOOM_ERR_OUT_OF_MEMORY;
    l->count++;
    return LOOM_OK;
}

static void path_list_free(path_list *l) {
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_plugin_file_name(const char *name) {
    size_t n = strlen(name);
    return n > 8 && !strncmp(name, "loom-", 5) && !strcmp(name + n - 3, ".so");
}

/* Add a file, or the loom-*.so files of a folder (sorted). Missing entries are skipped. */
static loom_status add_location(path_list *files, const char *location, bool explicit_entry) {
    struct stat st;
    if (stat(location, &st) != 0) {
        if (explicit_entry) loom_log(LOOM_LOG_WARN, NULL, "plugin path '%s' does not exist", location);
        return LOOM_OK;
    }
    if (!S_ISDIR(st.st_mode)) return path_list_add(files, location);
    DIR *d = opendir(location);
    if (!d) return LOOM_OK;
    path_list found = {0};
    loom_status s = LOOM_OK;
    struct dirent *de;
    while (s == LOOM_OK && (de = readdir(d)) != NULL) {
        if (!is_plugin_file_name(de->d_name)) continue;
        char full[PATH_MAX];
        if (snprintf(full, sizeof full, "%s/%s", location, de->d_name) >= (int)sizeof full) continue;
        s = path_list_add(&found, full);
    }
    closedir(d);
    if (found.count) qsort(found.items, found.count, sizeof *found.items, cmp_str);
    for (size_t i = 0; s == LOOM_OK && i < found.count; i++)
        s = path_list_add(files, found.items[i]);
    path_list_free(&found);
    return s;
}

static loom_status add_colon_list(path_list *files, const char *list) {
    char *copy = loom_strdup(list);
    if (!copy) return LOOM_ERR_OUT_OF_MEMORY;
    loom_status s = LOOM_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ":", &save); tok && s == LOOM_OK; tok = strtok_r(NULL, ":", &save)) {
        if (*tok) s = add_location(files, tok, true);
    }
    free(copy);
    return s;
}

/* The folder "<dir of libloom>/loom/plugins", found with dladdr on one of our own symbols. */
static bool library_relative_dir(char *out, size_t size) {
    Dl_info info;
    if (!dladdr((void *)(uintptr_t)&loom_version, &info) || !info.dli_fname) return false;
    char real[PATH_MAX];
    if (!realpath(info.dli_fname, real)) return false;
    char *slash = strrchr(real, '/');
    if (!slash) return false;
    *slash = '\0';
    return snprintf(out, size, "%s/%s", real, LOOM_PLUGIN_SUBDIR) < (int)size;
}

static bool in_list(const char *csv, const char *name) {
    if (!csv || !*csv) return false;
    size_t n = strlen(name);
    for (const char *p = csv; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == n && !strncmp(p, name, n)) return true;
        p = e;
    }
    return false;
}

/* ---- validation of one plugin ------------------------------------------------------------ */

static const char *kind_name(uint32_t kind) {
    switch (kind) {
    case LOOM_PLUGIN_KIND_BACKEND: return "backend";
    case LOOM_PLUGIN_KIND_ARCHITECTURE: return "architecture";
    case LOOM_PLUGIN_KIND_QUANTIZER: return "quantizer";
    default: return "unknown";
    }
}

static bool valid_name(const char *name) {
    if (!name || !*name || strlen(name) > 64) return false;
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    }
    return true;
}

/* Check the kind-specific function table; returns NULL when fine, else the reason. */
static const char *check_api(uint32_t kind, const void *api) {
    if (!api) return "descriptor has no function table";
    switch (kind) {
    case LOOM_PLUGIN_KIND_BACKEND: {
        const loom_backend_api *b = api;
        if (!LOOM_HAS_MEMBER(b, loom_backend_api, compute)) return "backend table too small";
        if (!b->device_count || !b->device_info || !b->device_open || !b->device_close || !b->supports_op ||
            !b->buffer_alloc || !b->buffer_free || !b->buffer_write || !b->buffer_read || !b->compute)
            return "backend table lacks a mandatory function";
        return NULL;
    }
    case LOOM_PLUGIN_KIND_ARCHITECTURE: {
        const loom_arch_api *a = api;
        if (!LOOM_HAS_MEMBER(a, loom_arch_api, forward)) return "architecture table too small";
        if (!a->match || !a->model_init || !a->model_free || !a->model_dims || !a->context_init || !a->context_free ||
            !a->context_reset || !a->forward)
            return "architecture table lacks a mandatory function";
        return NULL;
    }
    case LOOM_PLUGIN_KIND_QUANTIZER: {
        const loom_quantizer_api *q = api;
        if (!LOOM_HAS_MEMBER(q, loom_quantizer_api, formats)) return "quantizer table too small";
        if (q->n_formats && !q->formats) return "quantizer declares formats but gives none";
        return NULL;
    }
    default: return "unknown plugin kind";
    }
}

static void set_reason(loom_plugin_rec *p, uint32_t state, const char *fmt, ...) LOOM_PRINTF(3, 4);
static void set_reason(loom_plugin_rec *p, uint32_t state, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
    p->state_code = state;
}

static void close_handle(loom_plugin_rec *p) {
    if (p->handle) lt_dlclose((lt_dlhandle)p->handle);
    p->handle = NULL;
    p->desc = NULL;
}

/* Minimal descriptor size: everything up to and including `shutdown` of ABI 1.0. */
#define DESC_MIN_SIZE (offsetof(loom_plugin_desc, shutdown) + sizeof(((loom_plugin_desc *)0)->shutdown))

static void load_one(loom_engine *engine, loom_plugin_rec *p) {
    /* 1. Eager binding check (libdl), then the libltdl handle. */
    void *probe = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!probe) {
        const char *e = dlerror();
        set_reason(p, LOOM_PLUGIN_REJECTED, "cannot load: %s", e ? e : "unknown dlopen error");
        return;
    }
    lt_dladvise advise;
    lt_dlhandle h = NULL;
    if (!lt_dladvise_init(&advise) && !lt_dladvise_local(&advise)) h = lt_dlopenadvise(p->path, advise);
    lt_dladvise_destroy(&advise);
    dlclose(probe); /* libltdl holds its own reference now */
    if (!h) {
        const char *e = lt_dlerror();
        set_reason(p, LOOM_PLUGIN_REJECTED, "cannot load: %s", e ? e : "unknown libltdl error");
        return;
    }
    p->handle = h;

    /* 2. The entry symbol. */
    loom_plugin_entry_fn entry = NULL;
    *(void **)&entry = lt_dlsym(h, LOOM_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "not a Loom plugin: no exported symbol '%s'", LOOM_PLUGIN_ENTRY_SYMBOL);
        close_handle(p);
        return;
    }
    const loom_plugin_desc *d = entry(LOOM_ABI_VERSION, loom_host_table());
    if (!d) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "the plugin refused this host (entry returned NULL; host ABI %d.%d)",
                   LOOM_ABI_MAJOR, LOOM_ABI_MINOR);
        close_handle(p);
        return;
    }
    /* 3. Negotiation: the size first, then the major, then everything else. */
    if (d->struct_size < DESC_MIN_SIZE) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "descriptor too small: %u bytes, ABI %d.0 needs at least %zu",
                   d->struct_size, LOOM_ABI_MAJOR, (size_t)DESC_MIN_SIZE);
        close_handle(p);
        return;
    }
    if (d->abi_major != LOOM_ABI_MAJOR) {
        set_reason(p, LOOM_PLUGIN_REJECTED,
                   "built for plugin ABI %u.%u; this host speaks ABI %d.%d (majors must match)", d->abi_major,
                   d->abi_minor, LOOM_ABI_MAJOR, LOOM_ABI_MINOR);
        close_handle(p);
        return;
    }
    p->abi_minor = d->abi_minor; /* negotiate down to the host's minor */
    if (p->abi_minor > (uint32_t)LOOM_ABI_MINOR) p->abi_minor = (uint32_t)LOOM_ABI_MINOR;
    p->kind = d->kind;
    if (!valid_name(d->name)) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "invalid plugin name (want 1-64 characters of [a-z0-9_])");
        close_handle(p);
        return;
    }
    if (!(p->name = loom_strdup(d->name))) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "out of memory");
        close_handle(p);
        return;
    }
    const char *why = check_api(d->kind, d->api);
    if (why) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "%s", why);
        close_handle(p);
        return;
    }
    if (d->n_options && !d->options) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "descriptor declares %u options but gives no schema", d->n_options);
        close_handle(p);
        return;
    }
    /* 4. Duplicates by name, then the enable/disable filters. */
    for (uint32_t i = 0; i < engine->n_plugins; i++) {
        const loom_plugin_rec *o = &engine->plugins[i];
        if (o != p && o->desc && o->name && !strcmp(o->name, d->name)) {
            set_reason(p, LOOM_PLUGIN_REJECTED, "duplicate: a plugin named '%s' was already loaded from %s", d->name,
                       o->realpath);
            close_handle(p);
            return;
        }
    }
    const char *enable = loom_engine_option_str(engine, "plugins.enable", "");
    const char *disable = loom_engine_option_str(engine, "plugins.disable", "");
    if ((*enable && !in_list(enable, d->name)) || in_list(disable, d->name)) {
        set_reason(p, LOOM_PLUGIN_REJECTED, "disabled by option %s",
                   in_list(disable, d->name) ? "plugins.disable" : "plugins.enable");
        close_handle(p);
        return;
    }
    p->desc = d;

    /* 5. Initialisation decides between available and unavailable. */
    if (d->init) {
        char reason[sizeof p->reason] = "";
        loom_status s = d->init(loom_host_table(), &p->state, reason, sizeof reason);
        reason[sizeof reason - 1] = '\0';
        if (s == LOOM_ERR_UNAVAILABLE) {
            set_reason(p, LOOM_PLUGIN_UNAVAILABLE, "%s", reason[0] ? reason : "the plugin cannot run here");
            if (d->shutdown) d->shutdown(p->state);
            p->state = NULL;
            return;
        }
        if (s != LOOM_OK) {
            set_reason(p, LOOM_PLUGIN_REJECTED, "init failed (%s)%s%s", loom_status_string(s), reason[0] ? ": " : "",
                       reason);
            p->state = NULL;
            close_handle(p);
            return;
        }
    }
    if (d->kind == LOOM_PLUGIN_KIND_BACKEND) {
        const loom_backend_api *b = d->api;
        p->n_devices = b->device_count(p->state);
        if (p->n_devices == 0) {
            set_reason(p, LOOM_PLUGIN_UNAVAILABLE, "no device found");
            return;
        }
    }
    set_reason(p, LOOM_PLUGIN_AVAILABLE, "%s", "");
    loom_log(LOOM_LOG_DEBUG, NULL, "plugin %s (%s %s) from %s: available", d->name, kind_name(d->kind),
             d->version ? d->version : "?", p->realpath);
}

static int lt_users;
static pthread_mutex_t lt_lock = PTHREAD_MUTEX_INITIALIZER;

static loom_status plugins_load_locked(loom_engine *engine, char *err, size_t err_size);

/* libltdl keeps global state: loading and unloading are serialised process-wide. */
loom_status loom_plugins_load(loom_engine *engine, char *err, size_t err_size) {
    pthread_mutex_lock(&lt_lock);
    loom_status s = LOOM_OK;
    if (lt_users == 0 && lt_dlinit() != 0) {
        s = loom_err(err, err_size, LOOM_ERR_PLUGIN, "libltdl initialisation failed: %s", lt_dlerror());
    } else {
        lt_users++;
        s = plugins_load_locked(engine, err, err_size);
    }
    pthread_mutex_unlock(&lt_lock);
    return s;
}

static loom_status plugins_load_locked(loom_engine *engine, char *err, size_t err_size) {
    path_list files = {0};
    loom_status s = add_colon_list(&files, loom_engine_option_str(engine, "plugin_path", ""));
    const char *env = secure_getenv("LOOM_PLUGIN_PATH");
    if (s == LOOM_OK && env && *env) {
        s = add_colon_list(&files, env);
    } else if (s == LOOM_OK) {
        char dir[PATH_MAX];
        if (library_relative_dir(dir, sizeof dir)) s = add_location(&files, dir, false);
        if (s == LOOM_OK) s = add_location(&files, LOOM_INSTALL_PLUGIN_DIR, false);
        if (s == LOOM_OK) s = add_location(&files, LOOM_BUILD_PLUGIN_DIR, false);
    }
    if (s != LOOM_OK) {
        path_list_free(&files);
        return loom_err(err, err_size, s, "out of memory while listing plugins");
    }
    engine->plugins = calloc(files.count ? files.count : 1, sizeof *engine->plugins);
    if (!engine->plugins) {
        path_list_free(&files);
        return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < files.count; i++) {
        char real[PATH_MAX];
        const char *rp = realpath(files.items[i], real) ? real : files.items[i];
        bool seen = false;
        for (uint32_t j = 0; j < engine->n_plugins && !seen; j++)
            seen = !strcmp(engine->plugins[j].realpath, rp);
        if (seen) continue; /* the same file reached twice: not a second plugin */
        loom_plugin_rec *p = &engine->plugins[engine->n_plugins];
        p->path = loom_strdup(files.items[i]);
        p->realpath = loom_strdup(rp);
        if (!p->path || !p->realpath) {
            free(p->path);
            free(p->realpath);
            memset(p, 0, sizeof *p);
            path_list_free(&files);
            return loom_err(err, err_size, LOOM_ERR_OUT_OF_MEMORY, "out of memory");
        }
        engine->n_plugins++;
        load_one(engine, p);
        if (p->state_code != LOOM_PLUGIN_AVAILABLE) {
            loom_log(p->state_code == LOOM_PLUGIN_REJECTED &&
                             is_plugin_file_name(strrchr(p->path, '/') ? strrchr(p->path, '/') + 1 : p->path)
                         ? LOOM_LOG_WARN
                         : LOOM_LOG_DEBUG,
                     NULL, "plugin %s: %s: %s", p->path,
                     p->state_code == LOOM_PLUGIN_REJECTED ? "rejected" : "unavailable", p->reason);
        }
    }
    path_list_free(&files);
    return LOOM_OK;
}

void loom_plugins_unload(loom_engine *engine) {
    pthread_mutex_lock(&lt_lock);
    for (uint32_t i = 0; i < engine->n_plugins; i++) {
        loom_plugin_rec *p = &engine->plugins[i];
        if (p->desc && p->desc->shutdown && p->state_code == LOOM_PLUGIN_AVAILABLE) p->desc->shutdown(p->state);
        close_handle(p);
        free(p->path);
        free(p->realpath);
        free(p->name);
    }
    free(engine->plugins);
    engine->plugins = NULL;
    engine->n_plugins = 0;
    if (lt_users > 0 && --lt_users == 0) lt_dlexit();
    pthread_mutex_unlock(&lt_lock);
}

const loom_plugin_rec *loom_engine_find_plugin(const loom_engine *engine, uint32_t kind, const char *name) {
    if (!engine || !name) return NULL;
    for (uint32_t i = 0; i < engine->n_plugins; i++) {
        const loom_plugin_rec *p = &engine->plugins[i];
        if (p->state_code == LOOM_PLUGIN_AVAILABLE && p->kind == kind && p->name && !strcmp(p->name, name)) return p;
    }
    return NULL;
}

/*
 * test_core.c - status strings, version, log callback and the option model (precedence, file
 * format, environment, errors).
 */
#define _POSIX_C_SOURCE 200809L
#undef NDEBUG
#include "loom.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                            \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static const char *get(const loom_options *o, const char *key, int32_t *src) {
    const char *v = NULL;
    if (loom_options_get(o, key, &v, src) != LOOM_OK) return NULL;
    return v;
}

static int log_count;
static char last_log[512];
static void on_log(int32_t level, const char *msg, void *user) {
    (void)level;
    *(int *)user += 1;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static char *write_temp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/loom-test-XXXXXX");
    int fd = mkstemp(path);
    assert(fd >= 0);
    assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

int main(void) {
    /* Status strings and version. */
    CHECK(!strcmp(loom_status_string(LOOM_OK), "ok"));
    CHECK(!strcmp(loom_status_string(LOOM_ERR_FORMAT), "corrupt or invalid file format"));
    CHECK(!strcmp(loom_status_string(9999), "unknown status"));
    for (loom_status s = 0; s <= LOOM_ERR_BUFFER_TOO_SMALL; s++)
        CHECK(strcmp(loom_status_string(s), "unknown status"));
    CHECK(!strcmp(loom_version_string(), LOOM_VERSION_STRING));

    /* Precedence: default < file < env < cli, whatever the order of the calls. */
    loom_options *o = NULL;
    CHECK(loom_options_create(&o) == LOOM_OK);
    int32_t src;
    CHECK(loom_options_set(o, "threads", "4", LOOM_SOURCE_CLI) == LOOM_OK);
    CHECK(loom_options_set(o, "threads", "3", LOOM_SOURCE_ENV) == LOOM_OK);
    CHECK(loom_options_set(o, "threads", "1", LOOM_SOURCE_DEFAULT) == LOOM_OK);
    const char *v = get(o, "threads", &src);
    CHECK(v && !strcmp(v, "4") && src == LOOM_SOURCE_CLI);
    CHECK(loom_options_set(o, "ctx_size", "1", LOOM_SOURCE_DEFAULT) == LOOM_OK);
    CHECK(loom_options_set(o, "ctx_size", "2", LOOM_SOURCE_FILE) == LOOM_OK);
    v = get(o, "ctx_size", &src);
    CHECK(v && !strcmp(v, "2") && src == LOOM_SOURCE_FILE);
    CHECK(loom_options_set(o, "Bad Key", "1", LOOM_SOURCE_CLI) == LOOM_ERR_CONFIG);
    CHECK(strstr(loom_options_last_error(o), "Bad Key") != NULL);
    CHECK(loom_options_set(o, "x", "1", 99) == LOOM_ERR_INVALID_ARGUMENT);
    CHECK(loom_options_get(o, "absent", NULL, NULL) == LOOM_ERR_NOT_FOUND);

    /* Sorted iteration. */
    const char *k0 = NULL, *k1 = NULL;
    CHECK(loom_options_count(o) == 2);
    loom_options_at(o, 0, &k0, NULL, NULL);
    loom_options_at(o, 1, &k1, NULL, NULL);
    CHECK(k0 && k1 && strcmp(k0, k1) < 0);

    /* File format: comments, sections, quotes; a file value does not beat the CLI. */
    char *path = write_temp("# comment\n; another\nthreads = 8\nbatch_size=64\n"
                            "[plugin.opencl]\n  device = 1 \nname = \"  spaced  \"\n");
    CHECK(loom_options_load_file(o, path) == LOOM_OK);
    CHECK(!strcmp(get(o, "threads", NULL), "4"));
    CHECK(!strcmp(get(o, "batch_size", &src), "64") && src == LOOM_SOURCE_FILE);
    CHECK(!strcmp(get(o, "plugin.opencl.device", NULL), "1"));
    CHECK(!strcmp(get(o, "plugin.opencl.name", NULL), "  spaced  "));
    unlink(path);
    path = write_temp("threads = 2\nthis line has no equals sign\n");
    CHECK(loom_options_load_file(o, path) == LOOM_ERR_CONFIG);
    CHECK(strstr(loom_options_last_error(o), ":2:") != NULL);
    unlink(path);
    path = write_temp("[unterminated\n");
    CHECK(loom_options_load_file(o, path) == LOOM_ERR_CONFIG);
    unlink(path);
    CHECK(loom_options_load_file(o, "/nonexistent/loom.conf") == LOOM_ERR_IO);

    /* Environment: LOOM_OPT_<KEY>, '__' for '.', below the CLI, above files. */
    setenv("LOOM_OPT_BATCH_SIZE", "128", 1);
    setenv("LOOM_OPT_PLUGIN__OPENCL__DEVICE", "2", 1);
    setenv("LOOM_OPT_THREADS", "6", 1);
    CHECK(loom_options_load_env(o) == LOOM_OK);
    CHECK(!strcmp(get(o, "batch_size", &src), "128") && src == LOOM_SOURCE_ENV);
    CHECK(!strcmp(get(o, "plugin.opencl.device", NULL), "2"));
    CHECK(!strcmp(get(o, "threads", NULL), "4"));
    unsetenv("LOOM_OPT_BATCH_SIZE");
    unsetenv("LOOM_OPT_PLUGIN__OPENCL__DEVICE");
    unsetenv("LOOM_OPT_THREADS");
    loom_options_free(o);
    loom_options_free(NULL);

    /* The engine validates keys and values and logs through the replaceable callback. */
    loom_log_set_callback(on_log, &log_count, LOOM_LOG_DEBUG);
    CHECK(loom_options_create(&o) == LOOM_OK);
    loom_options_set(o, "kv_type", "f8", LOOM_SOURCE_CLI);
    loom_engine *e = NULL;
    char err[256] = "";
    CHECK(loom_engine_create(o, &e, err, sizeof err) == LOOM_ERR_CONFIG && !e && strstr(err, "kv_type"));
    loom_options_free(o);
    CHECK(loom_options_create(&o) == LOOM_OK);
    loom_options_set(o, "plugin.not_loaded_anywhere.key", "1", LOOM_SOURCE_CLI);
    loom_options_set(o, "plugin_path", "/nonexistent/loom/plugins", LOOM_SOURCE_CLI);
    int before = log_count;
    CHECK(loom_engine_create(o, &e, err, sizeof err) == LOOM_OK && e);
    CHECK(log_count > before); /* the unknown-plugin key and the missing path were reported */
    const loom_options *eff = loom_engine_options(e);
    CHECK(!strcmp(get(eff, "batch_size", &src), "512") && src == LOOM_SOURCE_DEFAULT);
    loom_engine_free(e);
    loom_engine_free(NULL);
    loom_options_free(o);
    loom_log_set_callback(NULL, NULL, LOOM_LOG_INFO);

    printf("core tests: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}

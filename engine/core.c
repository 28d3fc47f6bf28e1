/*
 * core.c - status strings, version, logging and small shared helpers.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint32_t loom_version(void) {
    return ((uint32_t)LOOM_VERSION_MAJOR << 16) | ((uint32_t)LOOM_VERSION_MINOR << 8) | (uint32_t)LOOM_VERSION_PATCH;
}

const char *loom_version_string(void) { return LOOM_VERSION_STRING; }

const char *loom_status_string(loom_status status) {
    switch (status) {
    case LOOM_OK: return "ok";
    case LOOM_ERR_INVALID_ARGUMENT: return "invalid argument";
    case LOOM_ERR_OUT_OF_MEMORY: return "out of memory";
    case LOOM_ERR_IO: return "input/output error";
    case LOOM_ERR_FORMAT: return "corrupt or invalid file format";
    case LOOM_ERR_UNSUPPORTED: return "unsupported";
    case LOOM_ERR_NOT_FOUND: return "not found";
    case LOOM_ERR_ABI: return "ABI version or struct size mismatch";
    case LOOM_ERR_PLUGIN: return "plugin error";
    case LOOM_ERR_UNAVAILABLE: return "unavailable on this machine";
    case LOOM_ERR_CONFIG: return "configuration error";
    case LOOM_ERR_BACKEND: return "backend error";
    case LOOM_ERR_CONTEXT_FULL: return "context full";
    case LOOM_ERR_CANCELLED: return "cancelled";
    case LOOM_ERR_INTERNAL: return "internal error";
    case LOOM_ERR_TOKENIZER: return "tokenizer error";
    case LOOM_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    default: return "unknown status";
    }
}

/* ---- logging ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static loom_log_fn log_fn;
static void *log_user;
static int32_t log_max_level = LOOM_LOG_INFO;

void loom_log_set_callback(loom_log_fn fn, void *user_data, int32_t max_level) {
    pthread_mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user_data;
    log_max_level = max_level;
    pthread_mutex_unlock(&log_lock);
}

void loom_log_set_level(int32_t max_level) {
    pthread_mutex_lock(&log_lock);
    log_max_level = max_level;
    pthread_mutex_unlock(&log_lock);
}

void loom_logv(int32_t level, const char *who, const char *fmt, va_list ap) {
    static const char *const names[] = {"error", "warning", "info", "debug"};
    char msg[2048];
    int n = snprintf(msg, sizeof msg, "%s: ", who ? who : "loom");
    if (n < 0 || (size_t)n >= sizeof msg) n = 0;
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    pthread_mutex_lock(&log_lock);
    if (level <= log_max_level) {
        if (log_fn) {
            log_fn(level, msg, log_user);
        } else {
            fprintf(stderr, "[%s] %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
        }
    }
    pthread_mutex_unlock(&log_lock);
}

void loom_log(int32_t level, const char *who, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    loom_logv(level, who, fmt, ap);
    va_end(ap);
}

loom_status loom_err(char *buf, size_t size, loom_status status, const char *fmt, ...) {
    if (buf && size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
    }
    return status;
}

char *loom_strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

double loom_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * dnnl_loader.c - loads oneDNN at run time (dlopen of libdnnl.so.2 inside init) instead of
 * linking it, for two reasons:
 *  - a machine without oneDNN gets an `unavailable` plugin with the reason, not a plugin that
 *    fails to load;
 *  - oneDNN's CPU runtime is OpenMP (libgomp), whose worker threads by default spin for a while
 *    after every parallel region. Between matmuls the engine runs the other ops on the CPU
 *    reference's own thread pool, and spinning OpenMP threads starve it (decode was 7x slower
 *    than the reference alone on 2 cores). libgomp reads OMP_WAIT_POLICY once, when it is
 *    loaded, so it is set to "passive" here (unless the user set it) before libdnnl and libgomp
 *    are loaded.
 * libdnnl stays loaded for the life of the process (RTLD_NODELETE): unmapping libgomp under its
 * idle worker threads would crash.
 */
#include "dnnl_internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LOOM_DNNL_SONAME
#define LOOM_DNNL_SONAME "libdnnl.so.2"
#endif

odnn_lib odnn;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

int odnn_lib_load(char *reason, size_t reason_size) {
    void *h, *gomp;
    int rc = 0;
    pthread_mutex_lock(&load_lock);
    if (odnn.handle != NULL) goto done;
    gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (gomp == NULL) {
        if (getenv("OMP_WAIT_POLICY") == NULL) setenv("OMP_WAIT_POLICY", "passive", 0);
    } else {
        dlclose(gomp);
        odnn_log(LOOM_LOG_DEBUG, "libgomp was already loaded: OMP_WAIT_POLICY left as it is");
    }
    h = dlopen(LOOM_DNNL_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (h == NULL) {
        const char *e = dlerror();
        snprintf(reason, reason_size, "oneDNN is not installed (cannot load %s: %s)", LOOM_DNNL_SONAME,
                 e != NULL ? e : "unknown error");
        rc = -1;
        goto done;
    }
#define ODNN_RESOLVE(f)                                                                                                \
    *(void **)&odnn.f = dlsym(h, #f);                                                                                  \
    if (odnn.f == NULL) {                                                                                              \
        snprintf(reason, reason_size, "%s lacks %s: oneDNN 2.x is required", LOOM_DNNL_SONAME, #f);                    \
        memset(&odnn, 0, sizeof odnn);                                                                                 \
        rc = -1;                                                                                                       \
        goto done;                                                                                                     \
    }
    ODNN_FUNCS(ODNN_RESOLVE)
#undef ODNN_RESOLVE
    /* OpenMP entry points come with libdnnl's dependencies; absent for other CPU runtimes. */
    *(void **)&odnn.omp_set_num_threads = dlsym(h, "omp_set_num_threads");
    *(void **)&odnn.omp_get_max_threads = dlsym(h, "omp_get_max_threads");
    odnn.handle = h;
done:
    pthread_mutex_unlock(&load_lock);
    return rc;
}

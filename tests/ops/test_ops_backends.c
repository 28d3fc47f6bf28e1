/*
 * test_ops_backends.c - every available backend plugin other than the CPU reference, run on the
 * whole op-conformance suite and compared with the CPU reference (tolerances per case and data
 * type, see docs/ops.md). Ops a backend declines fall back to the reference and are reported as
 * such (then the comparison checks the engine's fallback path, copies included).
 *
 * Exits 77 (skipped) when the reference is the only backend. LOOM_TEST_BACKENDS (a comma list)
 * restricts the backends tested.
 */
#include "ops_suite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int listed(const char *list, const char *name) {
    if (!list || !*list) return 1;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n)) return 1;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

/* Compare one backend with the reference over all cases. Returns the number of failed cases. */
static int test_backend(loom_engine *engine, const char *name, loom_exec *ref, const th_case *cases, size_t n_cases) {
    char err[512] = "";
    loom_exec *exec = NULL;
    loom_status st = loom_exec_create(engine, name, 0, &exec, err, sizeof err);
    if (st != LOOM_OK) {
        fprintf(stderr, "FAIL backend %s: cannot create an exec: %s\n", name, err);
        return 1;
    }
    int failed = 0;
    size_t on_backend = 0, fell_back = 0;
    for (size_t ci = 0; ci < n_cases; ci++) {
        const th_case *c = &cases[ci];
        double *want = malloc(c->n_out * sizeof(double)), *got = malloc(c->n_out * sizeof(double));
        st = th_case_run(ref, c, want);
        if (st != LOOM_OK) {
            fprintf(stderr, "FAIL reference on '%s': %s\n", c->name, loom_host_exec_last_error(ref));
            failed++;
        } else if ((st = th_case_run(exec, c, got)) != LOOM_OK) {
            fprintf(stderr, "FAIL %s on '%s': %s: %s\n", name, c->name, loom_status_string(st),
                    loom_host_exec_last_error(exec));
            failed++;
        } else {
            int32_t dev = loom_exec_last_device(exec);
            if (dev == 0)
                on_backend++;
            else
                fell_back++;
            size_t bad = 0;
            for (size_t i = 0; i < c->n_out; i++) {
                double tol = c->btol * (c->mag[i] + 1e-6);
                if (!(fabs(got[i] - want[i]) <= tol) && !(isnan(got[i]) && isnan(want[i])) && bad++ < 3)
                    fprintf(stderr, "  %s '%s' [%zu]: %.9g, reference %.9g (tol %.3g)\n", name, c->name, i, got[i],
                            want[i], tol);
            }
            if (bad) {
                fprintf(stderr, "FAIL %s on '%s' (%s): %zu of %zu values out of tolerance\n", name, c->name,
                        dev == 0 ? "on the backend" : "fallback", bad, c->n_out);
                failed++;
            }
        }
        free(want);
        free(got);
    }
    printf("backend %s: %zu cases, %zu ran on it, %zu fell back to the reference, %d failed\n", name, n_cases,
           on_backend, fell_back, failed);
    printf("%s", loom_exec_placement_report(exec));
    loom_exec_free(exec);
    return failed;
}

int main(void) {
    loom_engine *engine = th_engine_create();
    if (!engine) return 1;
    const char *only = getenv("LOOM_TEST_BACKENDS");
    char err[512] = "";
    loom_exec *ref = NULL;
    if (loom_exec_create(engine, "cpu", 0, &ref, err, sizeof err) != LOOM_OK) {
        fprintf(stderr, "cannot create the reference exec: %s\n", err);
        loom_engine_free(engine);
        return 1;
    }
    size_t n_cases = 0;
    th_case *cases = th_cases_build(&n_cases);
    int tested = 0, failed = 0;
    uint32_t n = loom_engine_plugin_count(engine);
    for (uint32_t i = 0; i < n; i++) {
        loom_plugin_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (loom_engine_plugin_info(engine, i, &info) != LOOM_OK) continue;
        if (info.kind != LOOM_PLUGIN_KIND_BACKEND || !strcmp(info.name, "cpu")) continue;
        if (info.state != LOOM_PLUGIN_AVAILABLE || info.n_devices == 0) {
            printf("backend %s: not available here (%s)\n", info.name, info.reason);
            continue;
        }
        if (!listed(only, info.name)) continue;
        tested++;
        failed += test_backend(engine, info.name, ref, cases, n_cases);
    }
    th_cases_free(cases, n_cases);
    loom_exec_free(ref);
    loom_engine_free(engine);
    if (!tested) {
        printf("no backend other than the CPU reference is available: skipped\n");
        return 77;
    }
    return failed ? 1 : 0;
}

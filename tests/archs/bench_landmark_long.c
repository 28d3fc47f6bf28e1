/*
 * bench_landmark_long.c - a long-context run through landmark attention's retrieval path: the
 * fixture model (4 layers, n_embd 64, blocks of 7 tokens + landmark) with retrieval (top-k 2,
 * an unbounded block store) over N raw tokens (default 16384; argument 1), prefilled in eval
 * calls of 512 tokens (chunked by the plugin on 35-token block boundaries). At each power of
 * two from 1024 it decodes 16 tokens one at a time and records the mean time per token and the
 * process's resident memory, so that the growth per stored block can be read off.
 * Prints a table (also as CSV with --csv). Label "long".
 */
#define _GNU_SOURCE
#include "archs_util.h"

#include <json-c/json.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

int main(int argc, char **argv) {
    const char *fixtures = archs_fixture_dir();
    if (!fixtures) return 77;
    long total = argc > 1 ? atol(argv[1]) : 16384;
    const int csv = argc > 2 && !strcmp(argv[2], "--csv");
    if (total < 2048) total = 2048;
    loom_log_set_callback(NULL, NULL, LOOM_LOG_ERROR);
    char *tmp = make_temp_dir("lm-long");
    char cfgp[1200], dir[1200], src[1200], dst[1400];
    snprintf(cfgp, sizeof cfgp, "%s/landmark_cached_topk2/config.json", fixtures);
    json_object *cfg = json_object_from_file(cfgp), *h = NULL;
    json_object_object_get_ex(cfg, "model_hparams", &h);
    json_object_object_add(h, "mem_cache_size", json_object_new_int(0)); /* keep every block */
    snprintf(dir, sizeof dir, "%s/model", tmp);
    mkdir_p(dir);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    json_object_to_file(dst, cfg);
    json_object_put(cfg);
    snprintf(src, sizeof src, "%s/landmark_cached_topk2/model.safetensors", fixtures);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    if (symlink(src, dst) != 0) return 1;

    loom_engine *e = archs_engine();
    loom_model *m = e ? archs_load(e, dir) : NULL;
    if (!m) return 1;
    const size_t n_ctx = (size_t)total + 16 * 32;
    const double rss0 = rss_mib();
    loom_context *c = archs_context(m, (uint32_t)n_ctx, 512);
    if (!c) return 1;
    int32_t *ids = malloc(n_ctx * sizeof(int32_t));
    uint32_t s = 1;
    for (size_t i = 0; i < n_ctx; i++) {
        s = s * 1103515245u + 12345u;
        ids[i] = (int32_t)((s >> 16) % 255);
    }
    printf(csv ? "context,ms_per_token,rss_mib,blocks\n"
               : "%10s %14s %12s %10s\n", "context", "ms/token", "RSS MiB", "blocks");
    size_t pos = 0;
    double t_prefill = 0;
    int rc = 0;
    for (size_t mark = 1024; mark <= (size_t)total && !rc; mark *= 2) {
        const double t0 = now();
        while (pos < mark && !rc) {
            size_t n = mark - pos < 512 ? mark - pos : 512;
            if (loom_context_eval(c, ids + pos, n, LOOM_EVAL_LOGITS_LAST) != LOOM_OK) {
                fprintf(stderr, "eval: %s\n", loom_context_last_error(c));
                rc = 1;
            }
            pos += n;
        }
        t_prefill += now() - t0;
        const double t1 = now();
        for (int k = 0; k < 16 && !rc; k++, pos++) {
            if (loom_context_eval(c, ids + pos, 1, LOOM_EVAL_LOGITS_LAST) != LOOM_OK) {
                fprintf(stderr, "decode: %s\n", loom_context_last_error(c));
                rc = 1;
            }
        }
        const double ms = (now() - t1) * 1000.0 / 16.0;
        const double rss = rss_mib() - rss0;
        if (csv)
            printf("%zu,%.4f,%.2f,%zu\n", pos, ms, rss, pos / 7);
        else
            printf("%10zu %14.4f %12.2f %10zu\n", pos, ms, rss, pos / 7);
        fflush(stdout);
    }
    const float *l = loom_context_logits(c, -1);
    int finite = l != NULL;
    for (int i = 0; finite && i < 256; i++) finite = l[i] == l[i];
    CHECK(finite, "logits after %zu tokens are not finite", pos);
    printf("%s%zu tokens, prefill %.2f s (%.0f tokens/s)\n", csv ? "# " : "", pos, t_prefill,
           (double)pos / (t_prefill > 0 ? t_prefill : 1));
    free(ids);
    loom_context_free(c);
    loom_model_free(m);
    loom_engine_free(e);
    rm_tree(tmp);
    free(tmp);
    return rc || g_failures ? 1 : 0;
}

/*
 * test_model_file.c - the default model (SmolLM2-135M-Instruct Q4_1 GGUF) opened with loom_file
 * and checked against facts dumped by llama.cpp's own Python reader (package `gguf`) into
 * fixtures/smollm2_q4_1.ref by scripts/gguf_reference.py.
 *
 * The model is found through $LOOM_TEST_MODEL, then $HOME/.cache/loom/...; absent: skip (77).
 */
#include "internal.h"

#include "check.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t fnv64(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define FNV_OFFSET 14695981039346656037ull

static char *hex_of(const char *s, char *buf, size_t size) {
    size_t n = strlen(s), o = 0;
    if (!n) return strcpy(buf, "-");
    for (size_t i = 0; i < n && o + 3 < size; i++) o += (size_t)snprintf(buf + o, size - o, "%02x", (unsigned char)s[i]);
    return buf;
}

static const char *find_model(char *buf, size_t size) {
    const char *env = getenv("LOOM_TEST_MODEL");
    if (env && *env) return env;
    const char *home = getenv("HOME");
    if (home) {
        snprintf(buf, size, "%s/.cache/loom/SmolLM2-135M-Instruct.Q4_1.gguf", home);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

/* Split a line on tabs in place. */
static int split(char *line, char **f, int max) {
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, "\t\n", &save); t && n < max; t = strtok_r(NULL, "\t\n", &save)) f[n++] = t;
    return n;
}

static void check_kv(const loom_file *file, char **f, int n) {
    const loom_meta *m = loom_file_meta_find(file, f[1]);
    CHECK_MSG(m != NULL, "key %s missing", f[1]);
    if (!m) return;
    CHECK_MSG(!strcmp(loom_meta_type_name(m->type), f[2]), "%s: type %s vs %s", f[1], loom_meta_type_name(m->type), f[2]);
    char text[512];
    if (m->type == LOOM_META_STRING && n >= 5) {
        CHECK_MSG(strlen(m->v.str) == strtoull(f[3], NULL, 10), "%s length", f[1]);
        CHECK_MSG(fnv64(m->v.str, strlen(m->v.str), FNV_OFFSET) == strtoull(f[4], NULL, 16), "%s hash", f[1]);
    } else if (m->type == LOOM_META_ARRAY && n >= 8) {
        CHECK_MSG(!strcmp(loom_meta_type_name(m->elem_type), f[3]), "%s elem type", f[1]);
        uint64_t count = strtoull(f[4], NULL, 10);
        CHECK_MSG(m->count == count, "%s count %" PRIu64 " vs %" PRIu64, f[1], m->count, count);
        if (m->count != count || !count) return;
        if (m->elem_type == LOOM_META_STRING) {
            char *const *s = m->v.arr;
            uint64_t h = FNV_OFFSET;
            for (uint64_t i = 0; i < count; i++) h = fnv64(s[i], strlen(s[i]) + 1, h);
            CHECK_MSG(h == strtoull(f[5], NULL, 16), "%s: hash of all strings", f[1]);
            char hx[1024];
            CHECK_MSG(!strcmp(hex_of(s[0], hx, sizeof hx), f[6]), "%s first", f[1]);
            CHECK_MSG(!strcmp(hex_of(s[count - 1], hx, sizeof hx), f[7]), "%s last", f[1]);
        } else if (m->elem_type == LOOM_META_I32) {
            const int32_t *v = m->v.arr;
            int64_t sum = 0;
            for (uint64_t i = 0; i < count; i++) sum += v[i];
            CHECK_MSG(sum == strtoll(f[5], NULL, 10), "%s sum", f[1]);
            CHECK(v[0] == strtoll(f[6], NULL, 10));
            CHECK(v[count - 1] == strtoll(f[7], NULL, 10));
        } else {
            fprintf(stderr, "note: array %s of %s not compared element-wise\n", f[1], f[3]);
        }
    } else {
        loom_meta_format(m, 8, text, sizeof text);
        if (m->type == LOOM_META_BOOL) snprintf(text, sizeof text, "%d", m->v.b ? 1 : 0);
        if (m->type == LOOM_META_F32) snprintf(text, sizeof text, "%.9g", m->v.f64);
        CHECK_MSG(!strcmp(text, f[3]), "%s: %s vs %s", f[1], text, f[3]);
    }
}

int main(void) {
    char buf[4096];
    const char *model = find_model(buf, sizeof buf);
    if (!model || access(model, R_OK) != 0) {
        fprintf(stderr, "skip: no model (set LOOM_TEST_MODEL)\n");
        return 77;
    }
    FILE *ref = fopen(LOOM_FORMATS_FIXTURES "/smollm2_q4_1.ref", "r");
    if (!ref) {
        fprintf(stderr, "cannot open the fixture\n");
        return 1;
    }
    char err[512] = "";
    loom_file *file = NULL;
    double t0 = loom_now();
    loom_status st = loom_file_open(model, &file, err, sizeof err);
    double t1 = loom_now();
    CHECK_MSG(st == LOOM_OK, "open: %s", err);
    if (st) return 1;
    printf("opened %s in %.3f ms\n", model, (t1 - t0) * 1e3);
    CHECK(!strcmp(loom_file_format(file), "gguf"));

    size_t cap = 1u << 20;
    char *line = malloc(cap);
    float *deq = NULL;
    size_t deq_cap = 0;
    uint32_t n_kv_seen = 0, n_tensor_seen = 0, n_values = 0;
    while (fgets(line, (int)cap, ref)) {
        char *f[80];
        int n = split(line, f, 80);
        if (n < 1) continue;
        if (!strcmp(f[0], "header") && n >= 7) {
            CHECK(loom_file_tensor_count(file) == strtoul(f[2], NULL, 10));
            CHECK(loom_file_meta_count(file) == strtoul(f[3], NULL, 10));
            CHECK(loom_file_size(file) == strtoull(f[6], NULL, 10));
            if (loom_file_tensor_count(file)) CHECK(loom_file_tensor_at(file, 0)->offset == strtoull(f[5], NULL, 10));
        } else if (!strcmp(f[0], "kv")) {
            check_kv(file, f, n);
            n_kv_seen++;
        } else if (!strcmp(f[0], "tensor") && n >= 10) {
            const loom_file_tensor *t = loom_file_tensor_find(file, f[1]);
            CHECK_MSG(t != NULL, "tensor %s missing", f[1]);
            if (!t) continue;
            CHECK_MSG(t == loom_file_tensor_at(file, n_tensor_seen), "tensor order at %s", f[1]);
            n_tensor_seen++;
            CHECK_MSG(!strcmp(loom_type_get_traits(t->type)->name, f[2]), "%s type", f[1]);
            CHECK(t->n_dims == strtoul(f[3], NULL, 10));
            for (int d = 0; d < 4; d++) CHECK(t->ne[d] == strtoll(f[4 + d], NULL, 10));
            CHECK(t->offset == strtoull(f[8], NULL, 10));
            CHECK(t->size == strtoull(f[9], NULL, 10));
        } else if ((!strcmp(f[0], "deq") || !strcmp(f[0], "sum")) && n >= 4) {
            const loom_file_tensor *t = loom_file_tensor_find(file, f[1]);
            CHECK(t != NULL);
            if (!t) continue;
            int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            if ((size_t)nel > deq_cap) {
                free(deq);
                deq_cap = (size_t)nel;
                deq = malloc(deq_cap * sizeof *deq);
            }
            CHECK(loom_dequantize_row(t->type, t->data, deq, nel) == LOOM_OK);
            if (!strcmp(f[0], "deq")) {
                int64_t start = strtoll(f[2], NULL, 10), count = strtoll(f[3], NULL, 10);
                for (int64_t i = 0; i < count && 4 + i < n; i++) {
                    float want = strtof(f[4 + i], NULL);
                    CHECK_MSG(deq[start + i] == want, "%s[%" PRId64 "] = %.9g, reference %.9g", f[1], start + i,
                              (double)deq[start + i], (double)want);
                    n_values++;
                }
            } else {
                CHECK(nel == strtoll(f[2], NULL, 10));
                double sum = 0, want = strtod(f[3], NULL);
                for (int64_t i = 0; i < nel; i++) sum += (double)deq[i];
                CHECK_MSG(fabs(sum - want) <= 1e-9 * (fabs(want) + (double)nel), "%s sum %.17g vs %.17g", f[1], sum,
                          want);
            }
        }
    }
    printf("%u keys, %u tensors, %u dequantized values compared\n", n_kv_seen, n_tensor_seen, n_values);
    CHECK(n_kv_seen == loom_file_meta_count(file));
    CHECK(n_tensor_seen == loom_file_tensor_count(file));
    /* lookups of things that are not there */
    CHECK(loom_file_tensor_find(file, "no.such.tensor") == NULL);
    CHECK(loom_file_meta_find(file, "no.such.key") == NULL);
    int64_t iv;
    CHECK(loom_file_meta_int(file, "llama.block_count", &iv) == LOOM_OK && iv == 30);
    const char *sv;
    CHECK(loom_file_meta_string(file, "general.architecture", &sv) == LOOM_OK && !strcmp(sv, "llama"));
    CHECK(loom_file_meta_int(file, "general.architecture", &iv) == LOOM_ERR_FORMAT);
    free(deq);
    free(line);
    fclose(ref);
    loom_file_close(file);
    CHECK_DONE();
}

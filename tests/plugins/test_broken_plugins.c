/*
 * test_broken_plugins.c - the host meets good and deliberately broken plugins (built from
 * test_plugin.c). None may crash, abort or leak; each must end in the right state with a
 * reason a user can act on. LOOM_PLUGIN_PATH points at the folder of test plugins only.
 */
#undef NDEBUG
#include "loom.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                            \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static int find_by_file(const loom_engine *e, const char *file_part, loom_plugin_info *out) {
    int hits = 0;
    for (uint32_t i = 0; i < loom_engine_plugin_count(e); i++) {
        loom_plugin_info p = {.struct_size = sizeof p};
        assert(loom_engine_plugin_info(e, i, &p) == LOOM_OK);
        const char *base = strrchr(p.path, '/');
        if (base && strstr(base, file_part)) {
            *out = p;
            hits++;
        }
    }
    return hits;
}

static void expect(const loom_engine *e, const char *file_part, uint32_t state, const char *reason_part) {
    loom_plugin_info p;
    int hits = find_by_file(e, file_part, &p);
    CHECK(hits == 1, "%s: found %d times", file_part, hits);
    if (hits != 1) return;
    CHECK(p.state == state, "%s: state %u, want %u (reason: %s)", file_part, p.state, state, p.reason);
    if (reason_part)
        CHECK(strstr(p.reason, reason_part) != NULL, "%s: reason '%s' lacks '%s'", file_part, p.reason, reason_part);
    else
        CHECK(p.reason[0] == '\0', "%s: unexpected reason '%s'", file_part, p.reason);
    printf("  %-28s state=%u reason=%s\n", file_part, p.state, p.reason);
}

static loom_engine *make_engine(const char *key, const char *value, loom_status want) {
    loom_options *o = NULL;
    assert(loom_options_create(&o) == LOOM_OK);
    if (key) assert(loom_options_set(o, key, value, LOOM_SOURCE_CLI) == LOOM_OK);
    loom_engine *e = NULL;
    char err[512];
    loom_status s = loom_engine_create(o, &e, err, sizeof err);
    loom_options_free(o);
    CHECK(s == want, "engine_create(%s=%s) = %d (%s), want %d", key ? key : "-", value ? value : "-", s, err, want);
    if (s != LOOM_OK) {
        CHECK(e == NULL, "engine must be NULL on failure");
        CHECK(err[0] != '\0', "an error message is expected");
        printf("  engine refused %s=%s: %s\n", key, value, err);
    }
    return e;
}

int main(void) {
    if (!getenv("LOOM_PLUGIN_PATH")) {
        fprintf(stderr, "LOOM_PLUGIN_PATH must point at the test plugins\n");
        return 1;
    }
    loom_log_set_callback(NULL, NULL, LOOM_LOG_ERROR);
    loom_engine *e = make_engine(NULL, NULL, LOOM_OK);
    assert(e);
    expect(e, "loom-tp-good.so", LOOM_PLUGIN_AVAILABLE, NULL);
    expect(e, "loom-tp-nodev.so", LOOM_PLUGIN_UNAVAILABLE, "no device");
    expect(e, "loom-tp-unavail.so", LOOM_PLUGIN_UNAVAILABLE, "needs hardware");
    expect(e, "loom-tp-entrynull.so", LOOM_PLUGIN_REJECTED, "entry returned NULL");
    expect(e, "loom-tp-wrongmajor.so", LOOM_PLUGIN_REJECTED, "majors must match");
    expect(e, "loom-tp-smalldesc.so", LOOM_PLUGIN_REJECTED, "descriptor too small");
    expect(e, "loom-tp-future.so", LOOM_PLUGIN_AVAILABLE, NULL);
    expect(e, "loom-tp-initfail.so", LOOM_PLUGIN_REJECTED, "always fails its init");
    expect(e, "loom-tp-unresolved.so", LOOM_PLUGIN_REJECTED, "undefined symbol");
    expect(e, "loom-tp-noentry.so", LOOM_PLUGIN_REJECTED, "no exported symbol");
    expect(e, "loom-tp-notso.so", LOOM_PLUGIN_REJECTED, "cannot load");

    /* The newer-minor plugin is accepted at the host's minor. */
    loom_plugin_info p;
    if (find_by_file(e, "loom-tp-future.so", &p) == 1) {
        CHECK(p.abi_minor == LOOM_ABI_MINOR, "negotiated minor %u", p.abi_minor);
        CHECK(!strcmp(p.version, "1.2.3"), "version %s", p.version);
    }
    /* Two copies of one plugin: the first wins, the second is refused as a duplicate. */
    loom_plugin_info d1, d2;
    int h1 = find_by_file(e, "loom-tp-dup1.so", &d1), h2 = find_by_file(e, "loom-tp-dup2.so", &d2);
    CHECK(h1 == 1 && h2 == 1, "duplicate pair listed %d/%d", h1, h2);
    if (h1 == 1 && h2 == 1) {
        CHECK(d1.state == LOOM_PLUGIN_AVAILABLE, "first copy state %u", d1.state);
        CHECK(d2.state == LOOM_PLUGIN_REJECTED && strstr(d2.reason, "duplicate"), "second copy: %s", d2.reason);
    }
    /* The same file reached through a symbolic link is one plugin, not two. */
    CHECK(find_by_file(e, "loom-tp-zlink.so", &p) == 0, "symlink listed as a second plugin");

    /* Devices of an available backend are listed. */
    for (uint32_t i = 0; i < loom_engine_plugin_count(e); i++) {
        loom_plugin_info q = {.struct_size = sizeof q};
        loom_engine_plugin_info(e, i, &q);
        if (!strcmp(q.name, "test_good")) {
            loom_device_desc dd = {.struct_size = sizeof dd};
            CHECK(q.n_devices == 1, "devices %u", q.n_devices);
            CHECK(loom_engine_device_info(e, i, 0, &dd) == LOOM_OK && !strcmp(dd.name, "test device"), "device");
            CHECK(loom_engine_device_info(e, i, 1, &dd) == LOOM_ERR_NOT_FOUND, "device 1 must not exist");
        }
    }
    /* An old application passing a smaller info struct gets only what fits. */
    {
        struct {
            loom_plugin_info info;
            uint32_t guard;
        } small;
        memset(&small, 0xAB, sizeof small);
        small.info.struct_size = (uint32_t)(offsetof(loom_plugin_info, state) + sizeof(uint32_t));
        CHECK(loom_engine_plugin_info(e, 0, &small.info) == LOOM_OK, "small info");
        unsigned char *after = (unsigned char *)&small.info + small.info.struct_size;
        CHECK(*after == 0xAB, "wrote past the caller's struct_size");
    }
    loom_engine_free(e);

    /* Plugin options: known keys pass, unknown keys of a loaded plugin fail, keys of absent
     * plugins only warn. */
    loom_engine_free(make_engine("plugin.test_good.level", "5", LOOM_OK));
    make_engine("plugin.test_good.nope", "1", LOOM_ERR_CONFIG);
    loom_engine_free(make_engine("plugin.absent.key", "1", LOOM_OK));
    make_engine("no_such_key", "1", LOOM_ERR_CONFIG);
    make_engine("threads", "-3", LOOM_ERR_CONFIG);

    /* Filters. */
    e = make_engine("plugins.disable", "test_good", LOOM_OK);
    if (e) {
        expect(e, "loom-tp-good.so", LOOM_PLUGIN_REJECTED, "disabled");
        loom_engine_free(e);
    }
    e = make_engine("plugins.enable", "test_good", LOOM_OK);
    if (e) {
        expect(e, "loom-tp-good.so", LOOM_PLUGIN_AVAILABLE, NULL);
        expect(e, "loom-tp-future.so", LOOM_PLUGIN_REJECTED, "disabled");
        loom_engine_free(e);
    }
    /* Engines can come and go repeatedly (no leak, no stale libltdl state). */
    for (int i = 0; i < 3; i++)
        loom_engine_free(make_engine(NULL, NULL, LOOM_OK));

    printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}

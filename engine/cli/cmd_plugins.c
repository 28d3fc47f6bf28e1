/*
 * cmd_plugins.c - `loom plugins [--json]`: every plugin found, with kind, version, path, state
 * and reason, and each backend's devices.
 */
#include "cli.h"

#include <string.h>

static const char *kind_str(uint32_t k) {
    return k == LOOM_PLUGIN_KIND_BACKEND        ? "backend"
           : k == LOOM_PLUGIN_KIND_ARCHITECTURE ? "architecture"
           : k == LOOM_PLUGIN_KIND_QUANTIZER    ? "quantizer"
                                                : "-";
}

static const char *state_str(uint32_t s) {
    return s == LOOM_PLUGIN_AVAILABLE ? "available" : s == LOOM_PLUGIN_UNAVAILABLE ? "unavailable" : "rejected";
}

static void print_json(const loom_engine *e) {
    printf("{\"loom_version\": \"%s\", \"abi\": \"%d.%d\", \"plugins\": [", loom_version_string(), LOOM_ABI_MAJOR,
           LOOM_ABI_MINOR);
    for (uint32_t i = 0; i < loom_engine_plugin_count(e); i++) {
        loom_plugin_info p = {.struct_size = sizeof p};
        loom_engine_plugin_info(e, i, &p);
        printf("%s\n  {\"name\": ", i ? "," : "");
        loom_cli_json_string(stdout, p.name);
        printf(", \"kind\": \"%s\", \"state\": \"%s\", \"version\": ", kind_str(p.kind), state_str(p.state));
        loom_cli_json_string(stdout, p.version);
        printf(", \"vendor\": ");
        loom_cli_json_string(stdout, p.vendor);
        printf(", \"abi\": \"%u.%u\", \"path\": ", p.abi_major, p.abi_minor);
        loom_cli_json_string(stdout, p.path);
        printf(", \"reason\": ");
        loom_cli_json_string(stdout, p.reason);
        printf(", \"devices\": [");
        for (uint32_t d = 0; d < p.n_devices; d++) {
            loom_device_desc dev = {.struct_size = sizeof dev};
            if (loom_engine_device_info(e, i, d, &dev) != LOOM_OK) continue;
            printf("%s{\"name\": ", d ? ", " : "");
            loom_cli_json_string(stdout, dev.name);
            printf(", \"description\": ");
            loom_cli_json_string(stdout, dev.description);
            printf(", \"compute_units\": %u, \"memory_bytes\": %llu, \"max_alloc_bytes\": %llu}", dev.compute_units,
                   (unsigned long long)dev.memory_bytes, (unsigned long long)dev.max_alloc_bytes);
        }
        printf("]}");
    }
    printf("\n]}\n");
}

static void print_text(const loom_engine *e) {
    printf("%-14s %-13s %-11s %-9s %s\n", "NAME", "KIND", "STATE", "VERSION", "PATH / REASON");
    for (uint32_t i = 0; i < loom_engine_plugin_count(e); i++) {
        loom_plugin_info p = {.struct_size = sizeof p};
        loom_engine_plugin_info(e, i, &p);
        printf("%-14s %-13s %-11s %-9s %s\n", p.name[0] ? p.name : "?", kind_str(p.kind), state_str(p.state),
               p.version[0] ? p.version : "-", p.path);
        if (p.reason[0]) printf("%-14s   reason: %s\n", "", p.reason);
        for (uint32_t d = 0; d < p.n_devices; d++) {
            loom_device_desc dev = {.struct_size = sizeof dev};
            if (loom_engine_device_info(e, i, d, &dev) != LOOM_OK) continue;
            printf("%-14s   device %u: %s, %u compute units", "", d, dev.name, dev.compute_units);
            if (dev.memory_bytes) printf(", %.1f GiB", (double)dev.memory_bytes / (1024.0 * 1024.0 * 1024.0));
            if (dev.description[0]) printf(" (%s)", dev.description);
            printf("\n");
        }
    }
}

int loom_cmd_plugins(int argc, char **argv) {
    loom_options *o;
    int rc = loom_cli_common_options(&argc, argv, &o);
    if (rc) return rc;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: loom plugins [--json] [common options]\n"
                   "Lists every plugin found (explicit paths, LOOM_PLUGIN_PATH or the default folders)\n"
                   "with its kind, version, path, state (available/unavailable/rejected) and reason.\n");
            loom_options_free(o);
            return 0;
        } else {
            loom_cli_error("plugins", "unknown argument '%s'", argv[i]);
            loom_options_free(o);
            return 2;
        }
    }
    loom_engine *e = loom_cli_engine(o);
    loom_options_free(o);
    if (!e) return 1;
    if (json)
        print_json(e);
    else
        print_text(e);
    loom_engine_free(e);
    return 0;
}

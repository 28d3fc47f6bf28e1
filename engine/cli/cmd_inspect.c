/*
 * cmd_inspect.c - `loom inspect [MODEL]`: architecture, shapes, tensor list with types and sizes,
 * tokenizer summary and metadata of a model file (GGUF, safetensors or Hugging Face folder).
 * An application of the public API only.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void inspect_usage(FILE *f) {
    fprintf(f, "usage: loom inspect [MODEL] [--tensors|--no-tensors] [--no-meta] [--json]\n"
               "  MODEL         a .gguf file, a .safetensors file, an index .json or a Hugging Face folder\n"
               "                (default: $LOOM_MODEL or the cached SmolLM2 model)\n"
               "  --no-tensors  leave out the tensor list (by default it is printed)\n"
               "  --no-meta     leave out the metadata list\n"
               "  --json        one JSON object instead of text\n");
}

static void shape_text(const loom_tensor_desc *d, char *buf, size_t size) {
    size_t o = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < d->n_dims && i < 4; i++) {
        int n = snprintf(buf + o, size - o, i ? " x %" PRId64 : "%" PRId64, d->ne[i]);
        if (n < 0 || (size_t)n >= size - o) break;
        o += (size_t)n;
    }
    if (d->n_dims == 0) snprintf(buf, size, "scalar");
}

static void human_bytes(uint64_t b, char *buf, size_t size) {
    if (b >= (1ull << 30)) snprintf(buf, size, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, size, "%.2f MiB", (double)b / (double)(1ull << 20));
    else if (b >= 1024) snprintf(buf, size, "%.2f KiB", (double)b / 1024.0);
    else snprintf(buf, size, "%" PRIu64 " B", b);
}

typedef struct type_total {
    uint32_t type;
    uint32_t count;
    uint64_t bytes;
} type_total;

static void print_text(const loom_model *model, const loom_model_info *info, bool tensors, bool meta) {
    char hb[32], hw[32];
    human_bytes(info->file_bytes, hb, sizeof hb);
    human_bytes(info->weight_bytes, hw, sizeof hw);
    printf("model:         %s\n", info->path ? info->path : "");
    printf("name:          %s\n", info->name && info->name[0] ? info->name : "(none)");
    printf("architecture:  %s (plugin %s)\n", info->architecture ? info->architecture : "?",
           info->arch_plugin && info->arch_plugin[0] ? info->arch_plugin : "none");
    printf("file:          %s (%" PRIu64 " bytes), weights %s, loaded in %.3f s\n", hb, info->file_bytes, hw,
           info->load_seconds);
    printf("shapes:        n_vocab %" PRId64 ", n_ctx_train %" PRId64 ", n_embd %" PRId64 ", n_layer %" PRId64 "\n",
           info->n_vocab, info->n_ctx_train, info->n_embd, info->n_layer);
    printf("tokenizer:     %s, bos %d, eos %d\n", info->tokenizer && info->tokenizer[0] ? info->tokenizer : "(none)",
           (int)info->bos_token, (int)info->eos_token);

    type_total totals[64];
    size_t n_totals = 0;
    for (uint32_t i = 0; i < info->n_tensors; i++) {
        loom_tensor_desc d = {.struct_size = sizeof d};
        if (loom_model_tensor_at(model, i, &d) != LOOM_OK) continue;
        size_t k = 0;
        while (k < n_totals && totals[k].type != d.type) k++;
        if (k == n_totals && n_totals < 64) totals[n_totals++] = (type_total){d.type, 0, 0};
        if (k < n_totals) {
            totals[k].count++;
            totals[k].bytes += d.bytes;
        }
    }
    printf("tensors:       %" PRIu32 " (", info->n_tensors);
    for (size_t k = 0; k < n_totals; k++) {
        char h[32];
        human_bytes(totals[k].bytes, h, sizeof h);
        printf("%s%" PRIu32 " %s, %s", k ? "; " : "", totals[k].count, loom_type_name(totals[k].type), h);
    }
    printf(")\n");

    if (tensors) {
        printf("\n%-5s %-44s %-6s %-22s %12s %12s\n", "#", "tensor", "type", "shape (ne0 first)", "bytes", "offset");
        for (uint32_t i = 0; i < info->n_tensors; i++) {
            loom_tensor_desc d = {.struct_size = sizeof d};
            if (loom_model_tensor_at(model, i, &d) != LOOM_OK) continue;
            char shape[96];
            shape_text(&d, shape, sizeof shape);
            printf("%-5" PRIu32 " %-44s %-6s %-22s %12" PRIu64 " %12" PRIu64 "\n", i, d.name ? d.name : "",
                   loom_type_name(d.type), shape, d.bytes, d.file_offset);
        }
    }
    if (meta) {
        uint32_t n = loom_model_meta_count(model);
        printf("\nmetadata (%" PRIu32 " keys):\n", n);
        for (uint32_t i = 0; i < n; i++) {
            const char *key = NULL, *value = NULL;
            if (loom_model_meta_at(model, i, &key, &value) != LOOM_OK) continue;
            printf("  %-44s = %s\n", key ? key : "", value ? value : "");
        }
    }
}

static void print_json(const loom_model *model, const loom_model_info *info, bool tensors, bool meta) {
    printf("{\"path\": ");
    loom_cli_json_string(stdout, info->path ? info->path : "");
    printf(", \"name\": ");
    loom_cli_json_string(stdout, info->name ? info->name : "");
    printf(", \"architecture\": ");
    loom_cli_json_string(stdout, info->architecture ? info->architecture : "");
    printf(", \"arch_plugin\": ");
    loom_cli_json_string(stdout, info->arch_plugin ? info->arch_plugin : "");
    printf(", \"tokenizer\": ");
    loom_cli_json_string(stdout, info->tokenizer ? info->tokenizer : "");
    printf(",\n \"file_bytes\": %" PRIu64 ", \"weight_bytes\": %" PRIu64 ", \"load_seconds\": %.6f, "
           "\"n_vocab\": %" PRId64 ", \"n_ctx_train\": %" PRId64 ", \"n_embd\": %" PRId64 ", \"n_layer\": %" PRId64
           ", \"bos_token\": %d, \"eos_token\": %d, \"n_tensors\": %" PRIu32,
           info->file_bytes, info->weight_bytes, info->load_seconds, info->n_vocab, info->n_ctx_train, info->n_embd,
           info->n_layer, (int)info->bos_token, (int)info->eos_token, info->n_tensors);
    if (tensors) {
        printf(",\n \"tensors\": [");
        for (uint32_t i = 0; i < info->n_tensors; i++) {
            loom_tensor_desc d = {.struct_size = sizeof d};
            if (loom_model_tensor_at(model, i, &d) != LOOM_OK) continue;
            printf("%s\n  {\"name\": ", i ? "," : "");
            loom_cli_json_string(stdout, d.name ? d.name : "");
            printf(", \"type\": \"%s\", \"ne\": [", loom_type_name(d.type));
            for (uint32_t k = 0; k < d.n_dims && k < 4; k++) printf("%s%" PRId64, k ? ", " : "", d.ne[k]);
            printf("], \"bytes\": %" PRIu64 ", \"offset\": %" PRIu64 "}", d.bytes, d.file_offset);
        }
        printf("]");
    }
    if (meta) {
        printf(",\n \"metadata\": {");
        uint32_t n = loom_model_meta_count(model);
        for (uint32_t i = 0; i < n; i++) {
            const char *key = NULL, *value = NULL;
            if (loom_model_meta_at(model, i, &key, &value) != LOOM_OK) continue;
            printf("%s\n  ", i ? "," : "");
            loom_cli_json_string(stdout, key ? key : "");
            printf(": ");
            loom_cli_json_string(stdout, value ? value : "");
        }
        printf("}");
    }
    printf("}\n");
}

int loom_cmd_inspect(int argc, char **argv) {
    loom_options *options = NULL;
    int rc = loom_cli_common_options(&argc, argv, &options);
    if (rc) return rc;
    bool tensors = true, meta = true, json = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            inspect_usage(stdout);
            loom_options_free(options);
            return 0;
        } else if (!strcmp(argv[i], "--tensors")) {
            tensors = true;
        } else if (!strcmp(argv[i], "--no-tensors")) {
            tensors = false;
        } else if (!strcmp(argv[i], "--no-meta")) {
            meta = false;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) {
            path = argv[++i];
        } else if (argv[i][0] == '-' || path) {
            loom_cli_error("inspect", "unexpected argument '%s'", argv[i]);
            inspect_usage(stderr);
            loom_options_free(options);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) path = loom_cli_default_model();
    if (!path) {
        loom_cli_error("inspect", "no model given (and no $LOOM_MODEL or cached default model)");
        loom_options_free(options);
        return 2;
    }
    loom_engine *engine = loom_cli_engine(options);
    loom_options_free(options);
    if (!engine) return 1;
    loom_model *model = NULL;
    loom_status st = loom_model_load(engine, path, NULL, &model);
    if (st) {
        loom_cli_error("inspect", "cannot load '%s': %s (%s)", path, loom_engine_last_error(engine),
                       loom_status_string(st));
        loom_engine_free(engine);
        return 1;
    }
    loom_model_info info = {.struct_size = sizeof info};
    st = loom_model_get_info(model, &info);
    if (st) {
        loom_cli_error("inspect", "cannot describe the model: %s", loom_status_string(st));
    } else if (json) {
        print_json(model, &info, tensors, meta);
    } else {
        print_text(model, &info, tensors, meta);
    }
    loom_model_free(model);
    loom_engine_free(engine);
    return st ? 1 : 0;
}

/*
 * cmd_convert.c - `loom convert`: an official checkpoint (or any model the engine opens) to a
 * self-describing GGUF model file.
 *
 *   loom convert IN OUT [--type f32|f16|q8_0|keep] [--tokenizer bytes]
 *   loom convert IN OUTDIR --format hf
 *   loom convert DIFF OUT --base BASE [--type f32|f16]
 *
 * IN is opened like any model (a .gguf file, a .safetensors file, a Hugging Face or fixture
 * folder with config.json); the matching architecture plugin exports the canonical metadata
 * (general.architecture, "<arch>.*") that is written with the tensors. With --base, IN is a
 * published weight difference (landmark attention's LLaMA-7B diff) added to BASE, with the
 * vocabulary resize and the checksum of the official recover(). --tokenizer bytes (option
 * convert.tokenizer=bytes) gives a model with 256 token ids and no tokenizer (the seed-architecture
 * fixtures) a byte vocabulary: a byte-level BPE vocabulary whose id b is byte b, so that text files
 * and prompts can be given to `loom run`, `loom perplexity` and the other commands. With --format
 * hf, a Llama GGUF model is written as a Hugging Face folder (F32 safetensors, config.json,
 * tokenizer.json).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: loom convert IN OUT [--type f32|f16|q8_0|keep] [--format gguf|hf] [--tokenizer bytes]\n"
            "                   [--base BASE]\n"
            "  IN               a checkpoint: .safetensors (+ config.json in its folder), a folder, or a .gguf file\n"
            "  OUT              the GGUF file to write (a folder with --format hf)\n"
            "  --type T         keep: the stored types (default); f32, f16: every tensor dequantized to T;\n"
            "                   q8_0: the weight matrices quantized to Q8_0 (as llama.cpp's MOSTLY_Q8_0)\n"
            "  --format F       gguf (default) or hf: a Llama GGUF model as a Hugging Face folder (F32\n"
            "                   model.safetensors, config.json, tokenizer.json, tokenizer_config.json)\n"
            "  --tokenizer bytes\n"
            "                   write a byte vocabulary (for a model with 256 token ids and no tokenizer, e.g.\n"
            "                   the DenseFormer, CoTFormer and landmark fixtures): id b is byte b, no BOS, no\n"
            "                   EOS (GGUF byte-level BPE: 256 tokens, no merges)\n"
            "  --base BASE      IN is a weight difference to add to the base checkpoint BASE\n");
}

int loom_cmd_convert(int argc, char **argv) {
    const char *cmd = "convert";
    loom_options *opts = NULL;
    int rc = loom_cli_common_options(&argc, argv, &opts);
    if (rc) return rc;
    const char *in = NULL, *out = NULL, *base = NULL, *type_name = "keep", *tokenizer = NULL, *format = "gguf";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            loom_options_free(opts);
            return 0;
        } else if (!strcmp(a, "--type") && i + 1 < argc) {
            type_name = argv[++i];
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) {
            tokenizer = argv[++i];
        } else if (!strcmp(a, "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (!strcmp(a, "--base") && i + 1 < argc) {
            base = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            loom_cli_error(cmd, "unknown option or missing value: %s", a);
            goto usage_error;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            loom_cli_error(cmd, "unexpected argument: %s", a);
            goto usage_error;
        }
    }
    if (!in || !out) {
        loom_cli_error(cmd, "IN and OUT are required");
        goto usage_error;
    }
    uint32_t type;
    if (!strcmp(type_name, "f32")) {
        type = LOOM_TYPE_F32;
    } else if (!strcmp(type_name, "f16")) {
        type = LOOM_TYPE_F16;
    } else if (!strcmp(type_name, "q8_0")) {
        type = LOOM_TYPE_Q8_0;
    } else if (!strcmp(type_name, "keep")) {
        type = LOOM_SAVE_KEEP_TYPES;
    } else {
        loom_cli_error(cmd, "--type must be f32, f16, q8_0 or keep, not '%s'", type_name);
        goto usage_error;
    }
    const bool hf = !strcmp(format, "hf");
    if (!hf && strcmp(format, "gguf")) {
        loom_cli_error(cmd, "--format must be gguf or hf, not '%s'", format);
        goto usage_error;
    }
    if (hf && (base || (type != LOOM_SAVE_KEEP_TYPES && type != LOOM_TYPE_F32))) {
        loom_cli_error(cmd, "--format hf writes F32 tensors and takes no --base or --type %s", type_name);
        goto usage_error;
    }
    if (base && type == LOOM_TYPE_Q8_0) {
        loom_cli_error(cmd, "--base writes f32 or f16 tensors, not q8_0");
        goto usage_error;
    }
    if (tokenizer && strcmp(tokenizer, "bytes") != 0) {
        loom_cli_error(cmd, "--tokenizer must be 'bytes', not '%s'", tokenizer);
        goto usage_error;
    }
    if (tokenizer && (base || hf)) {
        loom_cli_error(cmd, "--tokenizer cannot be combined with %s", base ? "--base" : "--format hf");
        goto usage_error;
    }
    if (tokenizer && loom_options_set(opts, "convert.tokenizer", tokenizer, LOOM_SOURCE_CLI) != LOOM_OK) {
        loom_cli_error(cmd, "%s", loom_options_last_error(opts));
        loom_options_free(opts);
        return 1;
    }
    loom_engine *engine = loom_cli_engine(opts);
    loom_options_free(opts);
    if (!engine) return 1;
    loom_model *model = NULL;
    loom_status st = loom_model_load(engine, in, NULL, &model);
    if (st != LOOM_OK) {
        loom_cli_error(cmd, "cannot open '%s': %s", in, loom_engine_last_error(engine));
        loom_engine_free(engine);
        return 1;
    }
    if (hf)
        st = loom_model_save_hf(model, out);
    else
        st = base ? loom_model_save_weight_diff(model, base, out, type) : loom_model_save(model, out, type);
    if (st != LOOM_OK) {
        loom_cli_error(cmd, "%s", loom_engine_last_error(engine));
    } else {
        loom_model_info info = {.struct_size = sizeof info};
        loom_model_get_info(model, &info);
        fprintf(stderr, "loom convert: wrote %s (%s, plugin %s, %u tensors%s)\n", out,
                info.architecture && *info.architecture ? info.architecture : "?",
                info.arch_plugin ? info.arch_plugin : "?", info.n_tensors, tokenizer ? ", byte vocabulary" : "");
    }
    loom_model_free(model);
    loom_engine_free(engine);
    return st == LOOM_OK ? 0 : 1;
usage_error:
    usage(stderr);
    loom_options_free(opts);
    return 2;
}

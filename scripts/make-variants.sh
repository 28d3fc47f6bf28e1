#!/bin/sh
# make-variants.sh - the derived versions of the default model for the oracle tests, written by
# Loom's own converter (no llama.cpp, no Python): the same tensors, bit for bit, as
# scripts/make_model_variants.py makes with llama.cpp's quantize tool, checked by the weights
# digest that every fixture records (scripts/model_digest.py, tests/model/test_llama_oracle.c).
#
#   f32.gguf       every tensor dequantized to F32          loom convert MODEL f32.gguf --type f32
#   q8_0.gguf      f32.gguf's weight matrices to Q8_0        loom convert f32.gguf q8_0.gguf --type q8_0
#   q8_0_f32.gguf  q8_0.gguf dequantized again (only with --all: no test loads it)
#   hf/            a Hugging Face folder of f32.gguf         loom convert f32.gguf hf --format hf
#
# usage: scripts/make-variants.sh LOOM OUTDIR [--all] [--force]
#   LOOM    the loom program (e.g. build/bin/loom)
#   OUTDIR  where to write them (the tests read $LOOM_TEST_VARIANTS, by default
#           ${LOOM_CACHE_DIR:-$HOME/.cache/loom}/variants)
# The model is $LOOM_TEST_MODEL, else scripts/get-model.sh's. Existing files are kept unless --force.
set -eu
[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
loom=$1 out=$2
shift 2
all=0 force=0
for a in "$@"; do
    case $a in
    --all) all=1 ;;
    --force) force=1 ;;
    *) echo "make-variants: unknown option $a" >&2; exit 2 ;;
    esac
done
model=${LOOM_TEST_MODEL:-}
[ -n "$model" ] || model=$("$(dirname "$0")/get-model.sh")
mkdir -p "$out"

# make TARGET PROBE ARGS...: run `loom convert ARGS` unless PROBE exists (written through a
# temporary name, so an interrupted run leaves nothing that looks complete)
make() {
    target=$1 probe=$2
    shift 2
    if [ "$force" = 0 ] && [ -e "$probe" ]; then return 0; fi
    rm -rf "$target.tmp"
    "$loom" convert "$@" "$target.tmp" >&2
    rm -rf "$target"
    mv "$target.tmp" "$target"
}
make "$out/f32.gguf" "$out/f32.gguf" "$model" --type f32
make "$out/q8_0.gguf" "$out/q8_0.gguf" "$out/f32.gguf" --type q8_0
[ "$all" = 0 ] || make "$out/q8_0_f32.gguf" "$out/q8_0_f32.gguf" "$out/q8_0.gguf" --type f32
make "$out/hf" "$out/hf/model.safetensors" "$out/f32.gguf" --format hf
echo "$out"

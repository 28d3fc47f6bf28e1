#!/bin/sh
# Loom vs llama.cpp, side by side and alternating, on the default model and on random-weight
# SmolLM2-135M- and TinyLlama-1.1B-shaped models at F32, F16, Q8_0, Q4_0 and Q4_1, with the
# roofline (read bandwidth at the model's size, FLOP ceilings) measured around the runs.
#
#   scripts/bench_vs_llamacpp_matrix.sh [options of scripts/bench_vs_llamacpp.py]
#
# Needs: a build (cmake --build build --target loom_cli loom-arch-llama loom-backend-cpu_opt
# loom-roofline loom-make-random-model), python3 with llama-cpp-python (and the gguf package for
# the bytes-per-token count). Example for a quick look:
#   scripts/bench_vs_llamacpp_matrix.sh --cases default,smollm2:q4_0 --passes 2 --reps 2
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python3 -c "import llama_cpp" 2>/dev/null || { echo "llama-cpp-python is not installed (pip install llama-cpp-python)" >&2; exit 77; }
exec python3 "$here/bench_vs_llamacpp.py" "$@"

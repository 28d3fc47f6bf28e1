#!/bin/sh
# The README's test command (and what CI runs): on a fresh machine it installs the build and
# test dependencies and the default model, builds with -Werror and runs the whole suite, then
# builds again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite there.
#   LOOM_TEST_LONG=1  also run the long tests (fuzzers for a bounded time, long-context runs)
#   LOOM_JOBS=N       parallel build jobs (default: all cores)
set -eu
cd "$(dirname "$0")/.."
jobs=${LOOM_JOBS:-$(nproc)}

scripts/install-deps.sh
LOOM_TEST_MODEL=$(scripts/get-model.sh)
export LOOM_TEST_MODEL

# long: fuzzers for a bounded time, long-context runs (LOOM_TEST_LONG=1 adds them);
# known-gap: tests of targets not met yet, kept runnable and visible (`ctest -L known-gap`; none at present).
exclude="long|known-gap"
[ "${LOOM_TEST_LONG:-0}" = 1 ] && exclude="known-gap"

echo "== release build (-Werror) and full test suite"
cmake -S . -B build/ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOM_WERROR=ON
cmake --build build/ci -j "$jobs"
# The oracle tests' f32, q8_0 and hf models, written by the loom just built (bit-identical in
# their tensors to llama.cpp's; each test checks the weights digest its fixture records). Both
# builds' tests read them from here.
LOOM_TEST_VARIANTS=$PWD/build/ci/variants
export LOOM_TEST_VARIANTS
scripts/make-variants.sh build/ci/bin/loom "$LOOM_TEST_VARIANTS" --force
(cd build/ci && ctest --output-on-failure -j 2 -LE "$exclude")

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and test suite"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOM_SANITIZE=ON -DLOOM_WERROR=ON
cmake --build build/asan -j "$jobs"
# lsan.supp: leaks inside PoCL's kernel compiler (LLVM), not Loom's, hit by any test using OpenCL.
# The model tests run on the optimised backend here (the release run covers the reference): the
# reference is slow under the sanitizers, and this way cpu_opt's end-to-end path is checked too.
(cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  LOOM_TEST_BACKEND=cpu_opt \
  LSAN_OPTIONS=suppressions="$PWD/../../tests/backends/lsan.supp" \
  ctest --output-on-failure -j 2 -LE "$exclude|perf")

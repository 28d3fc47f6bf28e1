#!/usr/bin/env bash
# Fuzz the tokenizers and chat templates with libFuzzer for a bounded time.
#
#   scripts/fuzz_tokenizer.sh [SECONDS]        (default 300)
#
# Builds build-fuzz/ with clang (-DLOOM_FUZZ=ON), copies the seed corpus (tests/tokenizer/corpus)
# into a scratch folder so the committed corpus is never modified, and runs fuzz_tokenizer with
# the default model's vocabulary when $LOOM_TEST_MODEL or ~/.cache/loom has it (otherwise the
# built-in small vocabularies stand in). Exit status is non-zero on a finding; the reproducer is
# left in build-fuzz/findings/ (add it to tests/tokenizer/corpus/ once fixed: the regression test
# replays the corpus with any compiler).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-300}"
build="$root/build-fuzz"
command -v clang >/dev/null || { echo "fuzz_tokenizer.sh: clang is needed" >&2; exit 2; }
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOM_FUZZ=ON >/dev/null
cmake --build "$build" -j2 --target fuzz_tokenizer >/dev/null
work="$build/corpus-work/tokenizer"
mkdir -p "$work" "$build/findings"
cp -n "$root"/tests/tokenizer/corpus/* "$work"/ 2>/dev/null || true
start=$(date +%s)
status=0
"$build/bin/fuzz_tokenizer" "$work" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$build/findings/fuzz_tokenizer-" >"$build/fuzz_tokenizer.log" 2>&1 || status=1
end=$(date +%s)
runs=$(grep -Eo 'Done [0-9]+ runs' "$build/fuzz_tokenizer.log" | grep -Eo '[0-9]+' || echo "?")
cov=$(grep -Eo 'cov: [0-9]+' "$build/fuzz_tokenizer.log" | tail -1 || true)
echo "fuzz_tokenizer: $((end - start)) s, $runs runs, $cov, corpus $(ls "$work" | wc -l) inputs, $([ $status = 0 ] && echo 'no finding' || echo "FINDING (see $build/fuzz_tokenizer.log)")"
exit $status

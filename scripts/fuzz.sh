#!/usr/bin/env bash
# Fuzz the model-file readers with libFuzzer for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s; targets fuzz_gguf fuzz_safetensors)
#
# Builds build-fuzz/ with clang (-DLOOM_FUZZ=ON), copies the seed corpus of each target into a
# scratch folder (so the committed corpus is never modified), runs the target, and prints the
# libFuzzer summary. Exit status is non-zero when a target found a crash; the reproducer is left
# in build-fuzz/findings/ (add it to tests/formats/corpus/<kind>/ once fixed: the regression
# tests then replay it with any compiler).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_gguf fuzz_safetensors)
build="$root/build-fuzz"
if ! command -v clang >/dev/null; then
  echo "fuzz.sh: clang is needed (apt-get install clang)" >&2
  exit 2
fi
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOOM_FUZZ=ON >/dev/null
cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null
mkdir -p "$build/findings"
status=0
for t in "${targets[@]}"; do
  kind="${t#fuzz_}"
  work="$build/corpus-work/$kind"
  mkdir -p "$work"
  echo "== $t: ${secs}s"
  start=$(date +%s)
  if ! "$build/bin/$t" "$work" "$root/tests/formats/corpus/$kind" -max_total_time="$secs" -max_len=65536 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/findings/$t-" \
      >"$build/$t.log" 2>&1; then
    status=1
    echo "$t: FINDING (see $build/$t.log and $build/findings/)"
  fi
  end=$(date +%s)
  runs=$(grep -Eo 'Done [0-9]+ runs' "$build/$t.log" | grep -Eo '[0-9]+' || echo "?")
  cov=$(grep -Eo 'cov: [0-9]+' "$build/$t.log" | tail -1 || true)
  echo "$t: $((end - start)) s, $runs runs, $cov, corpus $(ls "$work" | wc -l) inputs"
done
exit $status

#!/bin/sh
# abi_check.sh LIBLOOM PROBE BASELINE_DIR [--update]
# Compares the exported ABI of libloom and of the plugin ABI probe with the committed baselines.
# abidiff's exit status is a bit mask: 1 error, 2 usage error, 4 ABI change, 8 incompatible
# change. Any set bit fails: an append (bit 4) must come with a reviewed baseline update
# (scripts/abi-baseline.sh) in the same commit.
set -u
lib=$1 probe=$2 base=$3
if ! command -v abidiff >/dev/null 2>&1; then
  echo "abidiff not installed (Debian package abigail-tools)"; exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0
for pair in "libloom:$lib" "plugin-abi:$probe"; do
  name=${pair%%:*} so=${pair#*:}
  abidw --no-corpus-path --no-comp-dir-path --out-file "$tmp/$name.abi" "$so" || { echo "abidw failed on $so"; exit 1; }
  if [ "${4:-}" = "--update" ]; then
    cp "$tmp/$name.abi" "$base/$name.abi"; echo "updated $base/$name.abi"; continue
  fi
  abidiff --no-added-syms "$base/$name.abi" "$tmp/$name.abi" > "$tmp/$name.diff" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "ABI of $name differs from the baseline (abidiff exit $rc: bits 4=change, 8=incompatible):"
    cat "$tmp/$name.diff"; status=1
  else
    echo "ABI of $name matches the baseline"
  fi
  # Added exported functions are reported by a second, full comparison: an added symbol is an
  # ABI change too and needs a baseline update.
  abidiff "$base/$name.abi" "$tmp/$name.abi" > "$tmp/$name.full" 2>&1
  rc=$?
  if [ $rc -ne 0 ] && [ $status -eq 0 ]; then
    echo "ABI of $name gained symbols (abidiff exit $rc); update the baseline:"; cat "$tmp/$name.full"; status=1
  fi
done
exit $status

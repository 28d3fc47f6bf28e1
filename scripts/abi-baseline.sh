#!/bin/sh
# Regenerate the committed ABI baselines after a deliberate, reviewed ABI append.
# usage: scripts/abi-baseline.sh [BUILD_DIR]   (a RelWithDebInfo or Debug build: needs -g)
set -eu
b=${1:-build}
cmake --build "$b" --target loom loom_abi_probe
exec tests/abi/abi_check.sh "$b/lib/libloom.so" "$b/tests/abi/libloom_abi_probe.so" abi/baseline --update

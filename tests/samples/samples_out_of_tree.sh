#!/bin/sh
# Install Loom into a temporary prefix, build the sample application (CMake package and
# pkg-config) and the sample vendor backend out of tree against the installed headers only,
# then check that `loom plugins` discovers the vendor plugin through LOOM_PLUGIN_PATH.
# usage: samples_out_of_tree.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$src/samples/app" -B "$work/app" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/app" >/dev/null
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cc -std=c11 -Wall -Wextra -Werror $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags loom) \
  -o "$work/app-pc" "$src/samples/app/main.c" $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --libs loom)
cmake -S "$src/samples/vendor-backend" -B "$work/vendor" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/vendor" >/dev/null
plugins=$prefix/lib/loom/plugins
out=$(LD_LIBRARY_PATH="$prefix/lib" LOOM_PLUGIN_PATH="$work/vendor:$plugins" "$prefix/bin/loom" plugins --json)
echo "$out"
echo "$out" | grep -q '"name": "vendor_sample", "kind": "backend", "state": "available"' || {
  echo "FAIL: the vendor sample plugin was not discovered as available"; exit 1; }
LD_LIBRARY_PATH="$prefix/lib" LOOM_PLUGIN_PATH="$work/vendor" "$work/app/loom-sample-app" | grep -q "vendor_sample *available" || {
  echo "FAIL: the sample application (CMake package) did not see the vendor plugin"; exit 1; }
LD_LIBRARY_PATH="$prefix/lib" LOOM_PLUGIN_PATH="$work/vendor" "$work/app-pc" | grep -q "vendor_sample" || {
  echo "FAIL: the sample application (pkg-config) did not run"; exit 1; }
echo "samples built out of tree and the vendor plugin was discovered: passed"

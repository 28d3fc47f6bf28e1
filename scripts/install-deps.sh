#!/bin/sh
# Install what Loom needs to build and test on a fresh Debian 12 machine (run as root, or with
# sudo available). Idempotent.
set -eu
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
PKGS="build-essential cmake pkg-config clang clang-format valgrind libltdl-dev libpcre2-dev libjson-c-dev \
libcmocka-dev abigail-tools ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo libdnnl-dev python3 python3-pip unzip"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  $SUDO apt-get update -q -o DPkg::Lock::Timeout=600
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 $missing
fi

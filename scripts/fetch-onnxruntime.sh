#!/usr/bin/env bash
# fetch-onnxruntime.sh [DIR] — put ONNX Runtime's shared library (libonnxruntime.so) where
# gonnsight's onnx:cpu backend finds it, taken from the npm package onnxruntime-node.
#
# DIR defaults to $GONNSIGHT_HOME/lib, or ~/.local/share/gonnsight/lib. The library is taken
# with `npm pack` (which only downloads the tarball; `npm install` would run the package's
# install scripts, which download more) and unpacked from bin/napi-v6/linux/<arch>/.
# Prints the library's path on stdout. Idempotent: nothing is downloaded when DIR already holds the library of this version.
#
# Afterwards gonnsight picks onnx:cpu automatically when it is faster (see docs/performance.md),
# or on request: GOMLX_BACKEND=onnx:cpu ONNXRUNTIME_SHARED_LIBRARY_PATH=DIR/libonnxruntime.so
set -euo pipefail

VERSION="${ONNXRUNTIME_NODE_VERSION:-1.30.0}"
if [[ -n "${1:-}" ]]; then
  DIR="$1"
elif [[ -n "${GONNSIGHT_HOME:-}" ]]; then
  DIR="$GONNSIGHT_HOME/lib"
else
  DIR="${HOME}/.local/share/gonnsight/lib"
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ARCH=x64 ;;
  Linux/aarch64 | Linux/arm64) ARCH=arm64 ;;
  *)
    echo "fetch-onnxruntime: no ONNX Runtime build in onnxruntime-node for $(uname -s)/$(uname -m)" >&2
    exit 1
    ;;
esac

LIB="$DIR/libonnxruntime.so"
STAMP="$DIR/libonnxruntime.version"
if [[ -s "$LIB" && -f "$STAMP" && "$(cat "$STAMP")" == "onnxruntime-node@$VERSION linux/$ARCH" ]]; then
  echo "fetch-onnxruntime: $LIB is already onnxruntime-node@$VERSION" >&2
  echo "$LIB"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch-onnxruntime: npm is needed (apt-get install -y npm)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "fetch-onnxruntime: npm pack onnxruntime-node@$VERSION" >&2
(cd "$TMP" && npm pack --silent "onnxruntime-node@$VERSION" >/dev/null)
TGZ="$(ls "$TMP"/onnxruntime-node-*.tgz)"
MEMBER="package/bin/napi-v6/linux/$ARCH/libonnxruntime.so.1"
tar -xzf "$TGZ" -C "$TMP" "$MEMBER" || {
  echo "fetch-onnxruntime: $TGZ has no $MEMBER" >&2
  exit 1
}
mkdir -p "$DIR"
# Write next to the target and rename, so a reader never sees half a library.
cp "$TMP/$MEMBER" "$DIR/.libonnxruntime.so.1.tmp"
mv -f "$DIR/.libonnxruntime.so.1.tmp" "$DIR/libonnxruntime.so.1"
ln -sfn libonnxruntime.so.1 "$LIB"
echo "onnxruntime-node@$VERSION linux/$ARCH" >"$STAMP"
echo "fetch-onnxruntime: installed $DIR/libonnxruntime.so.1 (onnxruntime-node@$VERSION)" >&2
echo "$LIB"

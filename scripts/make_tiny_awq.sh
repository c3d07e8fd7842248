#!/usr/bin/env bash
# Makes the AWQ twins of the committed tiny models with `tandem quantize`
# (cached: redone only when the source model, calibration text or binary is newer).
# Usage: scripts/make_tiny_awq.sh [path/to/tandem]
set -euo pipefail
cd "$(dirname "$0")/.."
tandem=${1:-${BUILD_DIR:-build}/tandem}
for name in general coder; do
  src=models/tandem-tiny-$name
  dst=models/tandem-tiny-$name-awq
  if [ -f "$dst/model.safetensors" ] && [ "$dst/model.safetensors" -nt "$src/model.safetensors" ] \
     && [ "$dst/model.safetensors" -nt "$src/calib.txt" ] && [ "$dst/model.safetensors" -nt "$tandem" ]; then
    continue
  fi
  echo "quantize: $src -> $dst (awq, group size 128)"
  rm -rf "$dst.tmp"
  "$tandem" quantize --method awq --bits 4 --group-size 128 --calib "$src/calib.txt" "$src" "$dst.tmp" >/dev/null
  rm -rf "$dst" && mv "$dst.tmp" "$dst"
done

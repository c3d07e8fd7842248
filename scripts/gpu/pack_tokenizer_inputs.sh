#!/usr/bin/env bash
# Prepares what the GPU-machine tokenizer runs carry, small enough for the
# carry limit (the tokenizer folders are 26 MB unpacked and sit behind the
# .cache symlink): out/tokenizers.tar.gz (about 7 MB) and out/bench (the
# stripped benchmark binary and libsentencepiece.so.0, about 4 MB).
# Run here, from the repository root, after building tandem_tokenizer_bench:
#   cmake --build build --target tandem_tokenizer_bench && bash scripts/gpu/pack_tokenizer_inputs.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
mkdir -p out/bench/lib
tar -C .cache/data -czf out/tokenizers.tar.gz tokenizers
if [ -x "$build/bench/tandem_tokenizer_bench" ]; then
  strip -o out/bench/tandem_tokenizer_bench "$build/bench/tandem_tokenizer_bench"
  cp "$build/bench/lib/libsentencepiece.so.0" out/bench/lib/
else
  echo "note: $build/bench/tandem_tokenizer_bench not built; packed the tokenizers only"
fi
du -sh out/tokenizers.tar.gz out/bench

#!/usr/bin/env bash
# `make serve`: set-up, build, then run the default models. Until the server
# lands, it runs `tandem generate` on a committed fixture model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build=${BUILD_DIR:-build}
archive=fixtures/models/golden_models.tar.xz
if [ -f "$archive" ]; then
  mkdir -p "$build/fixtures"
  tar -xJf "$archive" -C "$build/fixtures"
  model="$build/fixtures/golden_models/llama_f16_untied"
  echo "tandem generate --model $model --prompt-ids \"1 15 27 99\" --max-tokens 16 --format json"
  exec "$build/tandem" generate --model "$model" --prompt-ids "1 15 27 99" --max-tokens 16 --format json
fi
exec "$build/tandem" --version

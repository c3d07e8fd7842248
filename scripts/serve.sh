#!/usr/bin/env bash
# `make serve`: set-up, build, then run the default models. Until the server
# lands, it runs `tandem generate` on the committed tiny trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build=${BUILD_DIR:-build}
model=models/tandem-tiny-general
echo "tandem generate --model $model --prompt \"The old man\" --max-tokens 48 --seed 1"
exec "$build/tandem" generate --model "$model" --prompt "The old man" --max-tokens 48 --seed 1

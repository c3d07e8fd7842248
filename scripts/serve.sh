#!/usr/bin/env bash
# `make serve`: set-up, build, then serve the default models (the two tiny
# trained models in models/) on 127.0.0.1:8000. Extra flags: SERVE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec build/tandem serve --model general=models/tandem-tiny-general --model coder=models/tandem-tiny-coder \
  --device "${TANDEM_DEVICE:-auto}" ${SERVE_ARGS:-}

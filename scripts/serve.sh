#!/usr/bin/env bash
# `make serve`: set-up, build, make the AWQ twins of the tiny trained models
# (cached), then serve them as tiny-general and tiny-coder on 127.0.0.1:8000,
# on the GPU when there is one, else the CPU. Extra flags: SERVE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
scripts/setup.sh
scripts/build.sh
scripts/make_tiny_awq.sh "$build/tandem"
port=${TANDEM_PORT:-8000}
cat <<MSG

Tandem is starting on http://127.0.0.1:$port (models tiny-general and tiny-coder). Try:

  curl -s http://127.0.0.1:$port/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "tiny-general", "messages": [{"role": "user", "content": "Tell me about the old house."}], "max_tokens": 48}'

MSG
exec "$build/tandem" serve --model tiny-general=models/tandem-tiny-general-awq \
  --model tiny-coder=models/tandem-tiny-coder-awq --port "$port" --device "${TANDEM_DEVICE:-auto}" ${SERVE_ARGS:-}

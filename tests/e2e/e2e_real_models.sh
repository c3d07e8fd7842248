#!/usr/bin/env bash
# `tandem serve` on the CPU with the two tiny trained models (fp16, models/)
# must reproduce Hugging Face's greedy outputs (fixtures/server/greedy_tiny.json,
# made by scripts/gpu/make_server_fixtures.py), checked with the official
# `openai` client (real_models_e2e.mjs). Every request body it sends must be in
# the fuzz corpus, as for e2e_openai.sh. Usage: e2e_real_models.sh TEST_SERVER TANDEM
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/lib.sh"
command -v node >/dev/null || { echo "node not found: skipped"; exit 77; }
tandem=$(readlink -f "$2")
fixture=$root/fixtures/server/greedy_tiny.json
need_tiny_models "$root" model.safetensors
need_node_modules "$here"
tmp=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
start_server "$tmp/server.log" "$tandem" serve --device cpu --max-model-len 512 \
  --model general="$root/models/tandem-tiny-general" --model coder="$root/models/tandem-tiny-coder"
mkdir "$tmp/bodies"
TANDEM_RECORD_BODIES="$tmp/bodies" node "$here/real_models_e2e.mjs" "http://127.0.0.1:$PORT" "$fixture"
stop_server
check_bodies_in_corpus "$tmp/bodies" "$root/tests/fuzz/corpus"
echo "e2e_real_models: ok"

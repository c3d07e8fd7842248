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
for m in tandem-tiny-general tandem-tiny-coder; do
  [ -f "$root/models/$m/model.safetensors" ] || { echo "models/$m missing: skipped"; exit 77; }
done
need_node_modules "$here"
tmp=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$tmp"' EXIT
start_server "$tmp/server.log" "$tandem" serve --device cpu --max-model-len 512 \
  --model general="$root/models/tandem-tiny-general" --model coder="$root/models/tandem-tiny-coder"
mkdir "$tmp/bodies"
TANDEM_RECORD_BODIES="$tmp/bodies" node "$here/real_models_e2e.mjs" "http://127.0.0.1:$PORT" "$fixture"
stop_server
missing=0
for f in "$tmp/bodies"/*; do
  if [ ! -f "$root/tests/fuzz/corpus/$(basename "$f")" ]; then
    missing=$((missing + 1))
    [ -n "${TANDEM_UPDATE_CORPUS:-}" ] && cp "$f" "$root/tests/fuzz/corpus/"
  fi
done
if [ $missing -gt 0 ] && [ -z "${TANDEM_UPDATE_CORPUS:-}" ]; then
  echo "FAIL: $missing request bodies of this test are not in tests/fuzz/corpus;"
  echo "      rerun with TANDEM_UPDATE_CORPUS=1 and commit the new files"
  exit 1
fi
echo "e2e_real_models: ok"

#!/usr/bin/env bash
# `tandem bench` against `tandem serve` with the two fixture models on CPU:
# every request completes, output lengths are exact (ignore_eos), synthetic
# prompts are exact (server /tokenize, checked through usage), per-model counts
# follow --mix, and the JSON has the documented fields. Skips (77) while this
# build has no `tandem serve` or no inference engine behind it.
set -euo pipefail
tandem=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
coder=$root/models/tandem-tiny-coder
general=$root/models/tandem-tiny-general
"$tandem" --help | grep -q '^  serve ' || { echo "skip: no tandem serve in this build"; exit 77; }
[ -f "$coder/config.json" ] && [ -f "$general/config.json" ] || { echo "skip: fixture models missing"; exit 77; }
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }

work=$(mktemp -d)
log=$work/serve.log
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$tandem" serve --model coder="$coder" --model general="$general" --device cpu --port 0 >"$log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 1 600); do  # up to 30 s to bind
  port=$(sed -n 's/.*listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$port" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    if grep -q "no inference engine" "$log"; then echo "skip: tandem serve has no engine yet"; server_pid=""; exit 77; fi
    echo "tandem serve exited early:"; cat "$log"; server_pid=""; exit 1
  fi
  sleep 0.05
done
[ -n "$port" ] || { echo "tandem serve did not report its port"; cat "$log"; exit 1; }
for _ in $(seq 1 1200); do  # up to 60 s for both models to load
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "tandem serve died:"; cat "$log"; server_pid=""; exit 1; }
  sleep 0.05
done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "tandem serve not healthy:"; cat "$log"; exit 1; }

for endpoint in completions chat; do
  json=$work/bench-$endpoint.json
  timeout 300 "$tandem" bench --base-url "http://127.0.0.1:$port" --model coder --model general --mix 1,1 \
    --num-prompts 8 --input-len 24 --output-len 6 --request-rate 50 --endpoint "$endpoint" \
    --timeout 120 --json "$json"
  python3 - "$json" "$endpoint" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); endpoint = sys.argv[2]
def need(cond, what):
    if not cond: sys.exit(f"{endpoint}: {what}: {json.dumps(j)[:2000]}")
need(j["completed"] == 8 and j["failed"] == 0, "8 completed, 0 failed")
need(j["per_model"]["coder"]["completed"] == 4 and j["per_model"]["general"]["completed"] == 4, "4 per model")
need(j["total_output_tokens"] == 8 * 6, "exact output lengths with ignore_eos")
if endpoint == "completions":
    need(j["total_input_tokens"] == 8 * 24, "exact synthetic prompt lengths")
    need(j["prompts_off_target"] == 0, "no prompt off target")
need(j["completed_without_usage"] == 0, "usage in every stream")
for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
    for p in ("mean", "p50", "p90", "p99"):
        need(isinstance(j[k][p], (int, float)) and j[k][p] >= 0, f"{k}.{p}")
need(j["tpot_ms"]["p50"] > 0 and j["ttft_ms"]["p50"] > 0, "positive latencies")
print(f"{endpoint}: ok")
PY
done

#!/usr/bin/env bash
# `tandem serve --gpu-budget` on the CPU (the budget bounds host memory for
# weights, workspace and KV): the two tiny models are planned before loading;
# a budget they do not fit is refused at start with `tandem plan`'s own text
# (exit 1); one they fit logs the plan, serves both models at once from one
# shared KV pool, and /metrics shows each model's weights and pages
# (guaranteed = the plan's, in use, lent, borrowed) and the step arbiter's
# counts. TANDEM_DEVICE=cuda runs it on the GPU.
set -euo pipefail
tandem=$(readlink -f "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/e2e/lib.sh"
need_tiny_models "$root" config.json
device=${TANDEM_DEVICE:-cpu}
tmp=$(mktemp -d)
SERVER_PID=""
trap 'if [ -n "$SERVER_PID" ]; then kill $SERVER_PID 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
models=(--model general="$root/models/tandem-tiny-general" --model coder="$root/models/tandem-tiny-coder")
limits=(--max-model-len 256 --max-num-seqs 16 --max-num-batched-tokens 512)

# 1. Too small: refused before anything loads, with the plan `tandem plan` prints.
set +e
"$tandem" serve --device "$device" --gpu-budget 64MiB "${models[@]}" "${limits[@]}" --port 0 >"$tmp/small.out" 2>"$tmp/small.err"
rc=$?
"$tandem" plan --device "$device" --gpu-budget 64MiB "${models[@]}" "${limits[@]}" >"$tmp/plan_small.txt"
plan_rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "FAIL: serve with a budget too small: exit $rc, want 1"; cat "$tmp/small.err"; exit 1; }
[ "$plan_rc" -eq 1 ] || { echo "FAIL: plan exit $plan_rc, want 1"; exit 1; }
head -1 "$tmp/small.err" | grep -q "do not fit --gpu-budget" || { echo "FAIL: first line"; cat "$tmp/small.err"; exit 1; }
tail -n +2 "$tmp/small.err" | diff - "$tmp/plan_small.txt" || { echo "FAIL: serve's refusal differs from tandem plan"; exit 1; }
grep -q "DOES NOT FIT" "$tmp/small.err"
if grep -q "listening" "$tmp/small.out" "$tmp/small.err"; then echo "FAIL: it started listening"; exit 1; fi

# A budget per model is refused (one budget for the process).
cat >"$tmp/bad.toml" <<EOF
[models.general]
path = "$root/models/tandem-tiny-general"
gpu_budget = "1GiB"
[models.coder]
path = "$root/models/tandem-tiny-coder"
EOF
set +e
"$tandem" serve --config "$tmp/bad.toml" --port 0 >/dev/null 2>"$tmp/bad.err"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "one budget for all models" "$tmp/bad.err" || { echo "FAIL: per-model budget: $rc"; cat "$tmp/bad.err"; exit 1; }
set +e
"$tandem" serve --gpu-budget 1GiB "${models[@]}" --shared-step-tokens -1 --port 0 >/dev/null 2>"$tmp/bad.err"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q -- "--shared-step-tokens: must be in \[0, 16777216\] (0: no cap), got -1" "$tmp/bad.err" ||
  { echo "FAIL: --shared-step-tokens -1: $rc"; cat "$tmp/bad.err"; exit 1; }

# 2. Fits: serves both; the plan is in the log.
budget=640MiB
"$tandem" plan --device "$device" --gpu-budget $budget "${models[@]}" "${limits[@]}" --weight general=2 --json >"$tmp/plan.json"
# A 64-token step cap while both models have work (the arbiter's shared cap, exercised end to end).
start_server "$tmp/server.log" "$tandem" serve --device "$device" --gpu-budget $budget "${models[@]}" "${limits[@]}" \
  --weight general=2 --shared-step-tokens 64
grep -q "memory plan (--gpu-budget)" "$tmp/server.log" || { echo "FAIL: no plan in the log"; cat "$tmp/server.log"; exit 1; }
grep -q "KV pool" "$tmp/server.log"
python3 - "http://127.0.0.1:$PORT" "$tmp/plan.json" <<'PY'
import json, re, sys, threading, urllib.request
base, plan = sys.argv[1], json.load(open(sys.argv[2]))

def post(body):
    req = urllib.request.Request(base + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())

def metrics():
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(\w+)\{model="(\w+)"\} (\S+)$', line)
        if m: out[(m[1], m[2])] = float(m[3])
    return out

# Both models at once, several requests each; greedy equals the same request alone.
alone = {m: post(dict(model=m, prompt="Once upon a time", temperature=0, max_tokens=16))["choices"][0]["text"]
         for m in ("general", "coder")}
results, errors = {}, []
def run(model, i):
    try:
        r = post(dict(model=model, prompt="Once upon a time", temperature=0, max_tokens=16))
        results[(model, i)] = r["choices"][0]["text"]
    except Exception as e:  # noqa: BLE001
        errors.append(repr(e))
threads = [threading.Thread(target=run, args=(m, i)) for i in range(8) for m in ("general", "coder")]
[t.start() for t in threads]; [t.join() for t in threads]
assert not errors, errors
for (m, i), text in results.items():
    assert text == alone[m], (m, i, text, alone[m])

# Per-model memory metrics: weights, and the pool's pages as the plan set them.
got = metrics()
for p in plan["models"]:
    name = p["name"]
    assert got[("tandem_model_weight_bytes", name)] > 0, name
    assert got[("tandem_kv_pages_guaranteed", name)] == p["guaranteed_chunks"] * p["pages_per_chunk"], (name, got)
    for g in ("tandem_kv_pages_lent", "tandem_kv_pages_borrowed", "tandem_kv_pages_used"):
        assert got[(g, name)] >= 0, (g, name)
    assert got[("tandem_kv_pages_used", name)] == 0, "pages freed after the requests"
    # Online pages come by whole chunks of this model's pages.
    assert got[("tandem_kv_pages_capacity", name)] % p["pages_per_chunk"] == 0, got
    # Every step went through the step arbiter.
    steps = got[("tandem_arbiter_steps_total", name)]
    assert steps >= got[("tandem_engine_steps_total", name)] > 0, (name, got)
    assert got[("tandem_arbiter_tokens_total", name)] > 0, (name, got)
    # Urgent only while the other model is in the round too (a model alone runs low).
    assert 0 <= got[("tandem_arbiter_urgent_steps_total", name)] <= steps, (name, got)
    assert got[("tandem_arbiter_wait_seconds_total", name)] >= 0, (name, got)
print("serve --gpu-budget: both models served from one pool;",
      {p["name"]: p["guaranteed_chunks"] for p in plan["models"]}, "chunks guaranteed")
PY
if command -v promtool >/dev/null; then
  curl -sf "http://127.0.0.1:$PORT/metrics" | promtool check metrics || { echo "FAIL: promtool check metrics"; exit 1; }
fi
stop_server || { echo "FAIL: exit code after SIGTERM"; exit 1; }
echo "serve_budget: ok"

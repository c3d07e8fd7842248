#!/usr/bin/env bash
# `tandem plan` on the seed pairs (configs/models, copies of shared/models):
# JSON fields and values, exit 0 when the set fits and 1 when it does not, 2 on bad input.
set -euo pipefail
tandem=$1
cfg=configs/models
ds=$cfg/deepseek-coder-33b-instruct-awq.json
mi=$cfg/mistral-7b-v0.1-awq.json
qc=$cfg/qwen2.5-coder-32b-instruct-awq.json
q7=$cfg/qwen2.5-7b-instruct.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$tandem" plan --gpu-budget 96GB --model coder=$ds --model general=$mi --json >"$tmp/a.json"
python3 - "$tmp/a.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["budget_bytes"] == 96 * 10**9, p["budget_bytes"]
assert p["fits"] is True
assert p["total_bytes"] <= p["budget_bytes"]
assert p["chunk_bytes"] == 62 * 2**20
names = [m["name"] for m in p["models"]]
assert names == ["coder", "general"], names
want = {"coder": (18008653824, 253952, 16), "general": (4150796288, 131072, 31)}
# As the CUDA backend holds them: int4 zeros unpacked to 16 bits, fp32 norms (memory/weights.h).
resident = {"coder": 18008653824 + 62 * 6214656 + 125 * 7168 * 2,
            "general": 4150796288 + 32 * 2555904 + 65 * 4096 * 2}
for m in p["models"]:
    for key in ("name", "weight_bytes", "kv_bytes_per_token", "kv_cache_bytes", "activation_bytes",
                "overhead_bytes", "max_kv_tokens"):
        assert key in m, key
    w, kv, ppc = want[m["name"]]
    granule = 2 * 2**20
    assert m["weight_bytes"] == w, (m["name"], m["weight_bytes"])
    r = resident[m["name"]]
    assert m["weight_alloc_bytes"] == (r + granule - 1) // granule * granule, (m["name"], m["weight_alloc_bytes"])
    assert m["kv_bytes_per_token"] == kv
    assert m["pages_per_chunk"] == ppc
    assert m["max_kv_tokens"] == p["num_chunks"] * ppc * 16
assert sum(m["kv_cache_bytes"] for m in p["models"]) == p["kv_pool_bytes"]
print("deepseek+mistral 96GB ok:", p["num_chunks"], "chunks")
PY

# A bare folder works as well as a config file: make one.
mkdir -p "$tmp/qwen7"
cp $q7 "$tmp/qwen7/config.json"
"$tandem" plan --gpu-budget 80GiB --model coder=$qc --model general="$tmp/qwen7" --json >"$tmp/b.json"
python3 - "$tmp/b.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["budget_bytes"] == 80 * 2**30 and p["fits"] is True
g = [m for m in p["models"] if m["name"] == "general"][0]
assert g["weights"] == "bfloat16" and g["kv_bytes_per_token"] == 57344
print("qwen pair 80GiB ok")
PY

# Text table prints both units.
out=$("$tandem" plan --gpu-budget 96GB --model coder=$ds --model general=$mi)
grep -q "96.00 GB (89.41 GiB)" <<<"$out"
grep -q "^fits" <<<"$out"

# Does not fit: exit 1, the reason and the alternatives.
set +e
out=$("$tandem" plan --gpu-budget 42GB --model coder=$qc --model general=$q7 2>&1); rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "expected exit 1 when it does not fit, got $rc"; exit 1; }
grep -q "DOES NOT FIT" <<<"$out"
grep -q -- "--max-model-len" <<<"$out"
grep -q "as AWQ int4 g128" <<<"$out"
set +e
"$tandem" plan --gpu-budget 42GB --model coder=$qc --model general=$q7 --json >"$tmp/c.json"; rc=$?
set -e
[ "$rc" -eq 1 ]
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert p["fits"] is False and p["shortfall_bytes"] > 0 and p["alternatives"], p' "$tmp/c.json"

# Bad input: exit 2 with a one-line reason.
expect_bad() {
  local want=$1; shift
  set +e
  local msg; msg=$("$tandem" plan "$@" 2>&1 >/dev/null); local rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "expected exit 2 for: $*; got $rc"; exit 1; }
  grep -q -- "$want" <<<"$msg" || { echo "expected '$want' in: $msg"; exit 1; }
}
expect_bad "ambiguous unit" --gpu-budget 96G --model coder=$ds
expect_bad "gpu-budget is required" --model coder=$ds
expect_bad "is not NAME=PATH" --gpu-budget 96GB --model $ds
expect_bad "does not exist" --gpu-budget 96GB --model coder=/nonexistent/dir
expect_bad "max_position_embeddings 16384" --gpu-budget 96GB --model coder=$ds --max-model-len 32768
expect_bad "given twice" --gpu-budget 96GB --model a=$ds --model a=$mi
expect_bad "which no --model gives" --gpu-budget 96GB --model a=$ds --weight b=2
expect_bad "W must be a positive number" --gpu-budget 96GB --model a=$ds --weight a=-1
# Without the CUDA backend the overhead probe says so (with it, it measures: GPU machine only).
if ! "$tandem" --version | grep -q "cuda"; then
  expect_bad "without the CUDA backend" --measure-overheads
fi
echo "plan_json: all ok"

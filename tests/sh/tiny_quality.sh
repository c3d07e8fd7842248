#!/usr/bin/env bash
# Issue 9's floors on the committed tiny models:
# - `tandem eval ppl` matches transformers' perplexity (fixture from the GPU run) within 0.5%;
# - AWQ perplexity <= 1.10x fp16 on both models, and AWQ no worse than RTN on at least one;
# - the AWQ checkpoints are laid out as AutoAWQ GEMM (qweight [K, N/8] int32, scales fp16).
set -euo pipefail
tandem=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/make_tiny_awq.sh "$tandem"
ppl() {  # model text -> perplexity
  "$tandem" eval ppl --model "$1" --text "$2" --context 256 --stride 128 --device cpu --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity"])'
}
awq_beats_rtn=0
for name in general coder; do
  src=models/tandem-tiny-$name
  text=$src/heldout.txt
  "$tandem" quantize --method rtn --group-size 128 "$src" "$work/$name-rtn" >/dev/null
  fp=$(ppl "$src" "$text")
  rtn=$(ppl "$work/$name-rtn" "$text")
  awq=$(ppl "models/tandem-tiny-$name-awq" "$text")
  hf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["perplexity"])' "$src/ppl_fixture.json")
  echo "$name: hf $hf fp16 $fp rtn $rtn awq $awq"
  python3 - "$hf" "$fp" "$rtn" "$awq" "$name" <<'PY'
import sys
hf, fp, rtn, awq = map(float, sys.argv[1:5])
name = sys.argv[5]
assert abs(fp - hf) / hf < 0.005, f"{name}: eval ppl {fp} vs transformers {hf} differs by more than 0.5%"
assert awq <= 1.10 * fp, f"{name}: AWQ perplexity {awq} is over 1.10x fp16 {fp}"
PY
  if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$awq" "$rtn"; then
    awq_beats_rtn=1
  fi
done
[ "$awq_beats_rtn" = 1 ] || { echo "AWQ was worse than RTN on both models"; exit 1; }
python3 - models/tandem-tiny-general-awq/model.safetensors <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
h = json.loads(data[8:8 + n])
q = h["model.layers.0.mlp.down_proj.qweight"]; s = h["model.layers.0.mlp.down_proj.scales"]
z = h["model.layers.0.mlp.down_proj.qzeros"]
assert q["dtype"] == "I32" and q["shape"] == [512, 128 // 8], q
assert z["dtype"] == "I32" and z["shape"] == [512 // 128, 128 // 8], z
assert s["dtype"] == "F16" and s["shape"] == [512 // 128, 128], s
assert "lm_head.weight" not in h  # tied embeddings stay tied
PY
cfg=models/tandem-tiny-general-awq/config.json
grep -q '"quant_method": "awq"' "$cfg" && grep -q '"version": "gemm"' "$cfg"
echo "tiny quality floors hold"

#!/usr/bin/env bash
# Aggregate decode at batch B on the GPU machine, random weights made in device
# memory (--load-format dummy): B prompts of 512 tokens at once through
# `tandem generate --prompt-ids-file`, aggregate decode tok/s =
# B * 127 / (seconds for 128 new tokens - seconds for 1), load excluded.
#   OUT=DIR scripts/gpu/batch_decode.sh TANDEM CONFIG.json TAG B [B ...]
# Extra environment (e.g. TANDEM_CUDA_INT4_TC=0) passes through; one line per
# batch size and DIR/batch_<config>_<TAG>.jsonl.
set -u
tandem=$1 cfg=$2 tag=$3; shift 3
m=$(basename "$cfg" .json)
out=${OUT:-/tmp/batch}
mkdir -p "$out"
seconds() {  # prompts-file max-tokens
  "$tandem" generate --model "$cfg" --load-format dummy --device cuda --prompt-ids-file "$1" --max-tokens "$2" \
    --ignore-eos --format json > /dev/null 2> /tmp/batch.err || { tail -n 3 /tmp/batch.err >&2; echo 0; return; }
  python3 -c "import json,sys;print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['seconds'])" /tmp/batch.err
}
for B in "$@"; do
  f=/tmp/prompts_$B.txt
  python3 -c "
import sys
for b in range(int(sys.argv[1])): print(' '.join(str(100 + (b * 997 + i) % 30000) for i in range(512)))" "$B" > "$f"
  t1=$(seconds "$f" 1); t128=$(seconds "$f" 128)
  python3 - "$m" "$tag" "$B" "$t1" "$t128" "$out/batch_${m}_$tag.jsonl" <<'PY'
import json, sys
m, tag, B, t1, t128, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
agg = round(B * 127 / (t128 - t1), 1) if t128 > t1 > 0 else 0
print(f"{m} {tag} batch {B}: 1 token {t1:.3f} s, 128 tokens {t128:.3f} s -> aggregate decode {agg} tok/s")
open(path, "a").write(json.dumps({"model": m, "tag": tag, "batch": B, "seconds_1": t1, "seconds_128": t128,
                                  "aggregate_decode_tok_s": agg}) + "\n")
PY
done

#!/usr/bin/env bash
# End-to-end decode and prefill on the GPU machine, random AWQ weights at a
# published config's shapes (scripts/synth_awq.py), through `tandem generate`.
# Run from a folder holding tandem, synth_awq.py and CONFIG.json files:
#   OUT=DIR decode_bench.sh CONFIG_NAME [BATCH ...] [--prefill]
# Prints one line per figure and writes DIR/e2e_<config>.json:
# - batch 1, 512-token prompt, 128 new tokens: decode tok/s with CUDA graphs
#   (default), without (TANDEM_CUDA_GRAPHS=0) and with graphs but without
#   programmatic dependent launch (TANDEM_CUDA_PDL=0), from generate's own timing;
# - batch B (B prompts of 512 tokens at once): aggregate decode tok/s =
#   B * 127 / (time of 128 new tokens - time of 1), both timed around the whole
#   batch inside one process each (load excluded);
# - --prefill: one 2048-token prompt's prefill, warm: (time of 3 prompts - time
#   of 1) / 2 with one new token each.
set -u
m=$1; shift
batches=(); prefill=0
for a in "$@"; do [ "$a" = --prefill ] && prefill=1 || batches+=("$a"); done
dir=/tmp/$m
[ -d $dir ] || python3 synth_awq.py $m.json $dir > /dev/null || exit 1
ids=$(seq -s ' ' 100 611)
res="{\"model\": \"$m\""
one() {  # tag, env...
  local tag=$1; shift
  env "$@" ./tandem generate --model $dir --prompt-ids "$ids" --max-tokens 128 --ignore-eos --device cuda --format json \
    > $OUT/${m}_$tag.json 2> $OUT/${m}_$tag.err || { echo "$m $tag FAILED"; tail -3 $OUT/${m}_$tag.err; return; }
  local v; v=$(python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(round(d['decode_tokens_per_second'],2))" $OUT/${m}_$tag.json)
  echo "$m batch 1 $tag: decode $v tok/s"
  res="$res, \"b1_$tag\": $v"
}
one graphs
one nographs TANDEM_CUDA_GRAPHS=0
one nopdl TANDEM_CUDA_PDL=0
batch_seconds() {  # prompts-file max-tokens -> seconds of generate_batch
  ./tandem generate --model $dir --prompt-ids-file $1 --max-tokens $2 --ignore-eos --device cuda --format json \
    > /dev/null 2> /tmp/batch.err || { tail -3 /tmp/batch.err >&2; echo 0; return; }
  python3 -c "import json,sys;print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])['seconds'])" /tmp/batch.err
}
for B in "${batches[@]}"; do
  f=/tmp/prompts_$B.txt
  python3 -c "
import sys
B=int(sys.argv[1])
for b in range(B): print(' '.join(str(100 + (b * 997 + i) % 30000) for i in range(512)))" $B > $f
  t1=$(batch_seconds $f 1); t128=$(batch_seconds $f 128)
  agg=$(python3 -c "import sys;B,a,b=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]);print(round(B*127/(b-a),1) if b>a>0 else 0)" $B $t1 $t128)
  echo "$m batch $B: 1 token ${t1}s, 128 tokens ${t128}s -> aggregate decode $agg tok/s"
  res="$res, \"b${B}_seconds_1\": $t1, \"b${B}_seconds_128\": $t128, \"b${B}_aggregate_tok_s\": $agg"
done
if [ $prefill = 1 ]; then
  for n in 1 3; do
    python3 -c "
import sys
for b in range(int(sys.argv[1])): print(' '.join(str(100 + (b * 7919 + i * 13) % 30000) for i in range(2048)))" $n > /tmp/prefill_$n.txt
  done
  p1=$(batch_seconds /tmp/prefill_1.txt 1); p3=$(batch_seconds /tmp/prefill_3.txt 1)
  tps=$(python3 -c "import sys;a,b=float(sys.argv[1]),float(sys.argv[2]);print(round(2*2048/(b-a),1) if b>a>0 else 0)" $p1 $p3)
  echo "$m prefill 2048: 1 prompt ${p1}s, 3 prompts ${p3}s -> $tps tok/s (warm, marginal)"
  res="$res, \"prefill2048_seconds_1\": $p1, \"prefill2048_seconds_3\": $p3, \"prefill2048_tok_s\": $tps"
fi
echo "$res}" > $OUT/e2e_$m.json

#!/usr/bin/env bash
# End-to-end batch-1 decode: random AWQ weights at the published shapes, 512-token prompt, 128 new tokens.
# Run from a folder holding tandem, synth_awq.py and the configs (e.g. /work/shared/models/*.json):
#   OUT=/tmp/e2e scripts/cuda_e2e.sh mistral-7b-v0.1-awq deepseek-coder-33b-instruct-awq
ids=$(seq -s ' ' 100 611)
for m in "$@"; do
  python3 synth_awq.py $m.json /tmp/$m > /dev/null || exit 1
  ./tandem generate --model /tmp/$m --prompt-ids "$ids" --max-tokens 128 --ignore-eos --device cuda --format json > $OUT/e2e_$m.json 2> $OUT/e2e_$m.err
  echo "$m rc=$? $(python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print('decode tok/s', round(d['decode_tokens_per_second'],1), 'prefill s', round(d['prefill_seconds'],3))" $OUT/e2e_$m.json)"
  rm -rf /tmp/$m
done

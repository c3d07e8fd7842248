#!/usr/bin/env bash
# The seed's scenario on the GPU machine: DeepSeek-Coder-33B AWQ + Mistral-7B AWQ
# (random weights at the published shapes drawn on the GPU: --load-format dummy)
# served together by one `tandem serve --device cuda`, driven by `tandem bench`
# with mixed traffic; then each model served alone with the same per-model load.
# Run from a folder holding: tandem (+ lib/ with libsentencepiece), the two
# config .json files (configs/models/) and tokenizer/ (a tokenizer folder; both
# vocabularies cover its 32000 ids): dummy weights still need tokenizer files
# next to the config. SERVE_ARGS adds flags to every serve (e.g. "--gpu-budget
# 76GiB"). Results: $OUT/{pair,coder_alone,general_alone}.json + logs.
set -u
OUT=${OUT:-/tmp/pair}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
for m in deepseek-coder-33b-instruct-awq mistral-7b-v0.1-awq; do
  mkdir -p /tmp/$m && cp $m.json /tmp/$m/config.json || exit 1
  cp tokenizer/tokenizer.json tokenizer/tokenizer_config.json /tmp/$m/
done
coder=/tmp/deepseek-coder-33b-instruct-awq
general=/tmp/mistral-7b-v0.1-awq
BENCH=(--base-url http://127.0.0.1:8000 --input-len 512 --output-len 128 --request-rate inf --seed 1 --quiet)

serve_and_wait() {  # tag, serve args...
  local tag=$1; shift
  ./tandem serve --device cuda --load-format dummy --port 8000 --max-model-len 2048 ${SERVE_ARGS:-} "$@" > "$OUT/serve_$tag.log" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 240); do
    local h
    h=$(curl -s http://127.0.0.1:8000/health 2>/dev/null)
    case "$h" in
      *'"status":"ok"'*) return 0 ;;
      *'"status":"degraded"'*|*'"status":"unavailable"'*) echo "serve $tag: $h"; stop; return 1 ;;
    esac
    kill -0 $SERVE_PID 2>/dev/null || { echo "serve $tag exited:"; tail -5 "$OUT/serve_$tag.log"; return 1; }
    sleep 1
  done
  echo "serve $tag not ready"; return 1
}
stop() { kill -TERM $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null; }

if serve_and_wait pair --model coder=$coder --model general=$general; then
  nvidia-smi --query-gpu=memory.used,memory.total --format=csv > "$OUT/pair_gpu_memory.txt"
  ./tandem bench "${BENCH[@]}" --model coder --model general --mix 1,1 --num-prompts 64 --max-concurrency 16 \
    --json "$OUT/pair.json" > "$OUT/pair.txt" 2>&1
  curl -s http://127.0.0.1:8000/metrics > "$OUT/pair_metrics.txt"
  stop
fi
for tag in coder general; do
  dir=$coder; [ $tag = general ] && dir=$general
  if serve_and_wait ${tag}_alone --model $tag=$dir; then
    ./tandem bench "${BENCH[@]}" --model $tag --num-prompts 32 --max-concurrency 8 \
      --json "$OUT/${tag}_alone.json" > "$OUT/${tag}_alone.txt" 2>&1
    stop
  fi
done
tail -n 30 "$OUT"/pair.txt "$OUT"/*_alone.txt

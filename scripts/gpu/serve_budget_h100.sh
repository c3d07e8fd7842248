#!/usr/bin/env bash
# GPU run of `serve --gpu-budget` (docs/memory.md "Accuracy and fairness"):
# overhead probe; plan vs device memory after load and under load for the seed
# pair; fairness (general's TTFT alone vs with the coder flooded, one step at a
# time and with --concurrent-steps 2); then the Qwen pair after load and under
# load (--load-format dummy) if time is left.
# Run from a folder holding tandem.xz (stripped, xz), lib/libsentencepiece.so.0,
# synth_awq.py, the four configs of /work/shared/models and tok/{mistral,qwen2_5}/
# (tokenizer.json + tokenizer_config.json). Results in $OUT (at most 8 files come back).
set -u
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('tandem.xz'), open('tandem','wb'))" && chmod +x tandem
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
mem() { nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits | head -1; }
el "idle: $(mem)"
./tandem plan --measure-overheads --measure-out $OUT/overheads_h100.json > /dev/null || echo "probe failed"
cat $OUT/overheads_h100.json
python3 synth_awq.py deepseek-coder-33b-instruct-awq.json /tmp/ds >/dev/null &
python3 synth_awq.py mistral-7b-v0.1-awq.json /tmp/mi >/dev/null &
wait
for d in ds mi; do cp tok/mistral/tokenizer.json tok/mistral/tokenizer_config.json /tmp/$d/; done
el "synth done"
BUDGET=${BUDGET:-76GiB}
OV=(--overheads $OUT/overheads_h100.json)
serve_wait() {  # log, args
  local log=$1; shift
  ./tandem serve --device cuda --port 8000 "$@" > "$log" 2>&1 &
  SPID=$!
  for _ in $(seq 1 300); do
    h=$(curl -s http://127.0.0.1:8000/health 2>/dev/null)
    case "$h" in *'"status":"ok"'*) return 0;; *degraded*|*unavailable*) echo "health: $h"; tail -5 "$log"; return 1;; esac
    kill -0 $SPID 2>/dev/null || { echo "serve exited"; tail -20 "$log"; return 1; }
    sleep 0.5
  done
  return 1
}
B=(--base-url http://127.0.0.1:8000 --request-rate inf --seed 1 --quiet)
stop() { kill -TERM $SPID 2>/dev/null; wait $SPID 2>/dev/null; }
GEN=(--model general --input-len 512 --output-len 64 --num-prompts 24 --max-concurrency 4)
FLOOD=(--model coder --input-len 1024 --output-len 256 --num-prompts 512 --max-concurrency 256)
./tandem plan --gpu-budget $BUDGET "${OV[@]}" --model coder=/tmp/ds --model general=/tmp/mi \
  --max-num-batched-tokens 2048 --json > $OUT/plan_seed_pair.json
if serve_wait $OUT/serve_seed_pair.log --gpu-budget $BUDGET "${OV[@]}" --model coder=/tmp/ds --model general=/tmp/mi; then
  el "seed pair loaded: $(mem)"
  echo "after_load $(mem)" > $OUT/mem_seed_pair.txt
  ./tandem bench "${B[@]}" "${GEN[@]}" --json $OUT/fair_general_alone.json > $OUT/fair_general_alone.txt 2>&1
  ( while true; do echo "load $(mem)" >> $OUT/mem_seed_pair.txt; sleep 0.5; done ) & MPID=$!
  ./tandem bench "${B[@]}" "${FLOOD[@]}" --json $OUT/fair_coder_flood.json > $OUT/fair_coder_flood.txt 2>&1 & CPID=$!
  sleep 8
  ./tandem bench "${B[@]}" "${GEN[@]}" --json $OUT/fair_general_with_flood.json > $OUT/fair_general_with_flood.txt 2>&1
  kill $CPID 2>/dev/null; wait $CPID 2>/dev/null
  kill $MPID 2>/dev/null
  stop
  el "seed pair stopped"
fi
if [ $(( $(date +%s) - T0 )) -lt ${CONC2_IF_BEFORE:-130} ] && \
   serve_wait $OUT/serve_seed_pair_conc2.log --gpu-budget $BUDGET "${OV[@]}" --concurrent-steps 2 --model coder=/tmp/ds --model general=/tmp/mi; then
  ./tandem bench "${B[@]}" "${FLOOD[@]}" > /dev/null 2>&1 & CPID=$!
  sleep 8
  ./tandem bench "${B[@]}" "${GEN[@]}" --json $OUT/fair_general_with_flood_conc2.json > $OUT/fair_general_with_flood_conc2.txt 2>&1
  kill $CPID 2>/dev/null; wait $CPID 2>/dev/null
  stop
fi
grep -E "TTFT|completed" $OUT/fair_*.txt
sort -t' ' -k2 -n $OUT/mem_seed_pair.txt | tail -2
# The Qwen pair: random weights made in device memory (--load-format dummy, a
# folder of config.json + tokenizer files), plan vs device memory after load
# and while both models are flooded.
if [ $(( $(date +%s) - T0 )) -lt ${QWEN_IF_BEFORE:-140} ]; then
  rm -rf /tmp/ds /tmp/mi /tmp/qc /tmp/q7
  mkdir -p /tmp/qc /tmp/q7
  cp qwen2.5-coder-32b-instruct-awq.json /tmp/qc/config.json
  cp qwen2.5-7b-instruct.json /tmp/q7/config.json
  for d in qc q7; do cp tok/qwen2_5/tokenizer.json tok/qwen2_5/tokenizer_config.json /tmp/$d/; done
  ./tandem plan --gpu-budget $BUDGET "${OV[@]}" --model coder=/tmp/qc --model general=/tmp/q7 \
    --max-num-batched-tokens 2048 --json > $OUT/plan_qwen_pair.json
  if serve_wait $OUT/serve_qwen_pair.log --load-format dummy --gpu-budget $BUDGET "${OV[@]}" \
       --model coder=/tmp/qc --model general=/tmp/q7; then
    el "qwen pair loaded: $(mem)"
    echo "after_load $(mem)" > $OUT/mem_qwen_pair.txt
    ( while true; do echo "load $(mem)" >> $OUT/mem_qwen_pair.txt; sleep 0.5; done ) & MPID=$!
    ./tandem bench "${B[@]}" --model coder --input-len 1024 --output-len 128 --num-prompts 384 \
      --max-concurrency 256 > $OUT/qwen_flood_coder.txt 2>&1 & C1=$!
    ./tandem bench "${B[@]}" --model general --input-len 1024 --output-len 128 --num-prompts 384 \
      --max-concurrency 256 > $OUT/qwen_flood_general.txt 2>&1 & C2=$!
    sleep ${QWEN_LOAD_SECONDS:-40}
    kill $C1 $C2 2>/dev/null; wait $C1 $C2 2>/dev/null
    kill $MPID 2>/dev/null
    stop
    el "qwen pair stopped"
    sort -t' ' -k2 -n $OUT/mem_qwen_pair.txt | tail -2
  fi
fi
el "end"

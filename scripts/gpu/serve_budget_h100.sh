#!/usr/bin/env bash
# GPU run of `serve --gpu-budget` (docs/memory.md "Accuracy and fairness"):
# overhead probe; plan vs device memory after load and under load for the seed
# pair; fairness (general's TTFT alone vs with the coder flooded, for each
# --shared-step-tokens in CAPS, default "512 0", and each --concurrent-steps in
# CONCS, default "1 2": serialised steps vs two at once with the arbiter's
# stream priority; each pair of values ~60-90 s); then the Qwen pair after load
# and under load if less than QWEN_IF_BEFORE seconds have passed (with the four
# default fairness runs it mostly has not: CAPS=512 leaves it time). Every model
# gets random weights in device memory (--load-format dummy).
# Run from a folder holding tandem (or tandem.xz), lib/libsentencepiece.so.0,
# the four configs of /work/shared/models and tok/{mistral,qwen2_5}/
# (tokenizer.json + tokenizer_config.json, each may be .xz). Results in $OUT
# (at most 8 files come back: tar them).
set -u
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -e tandem.xz ] && python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('tandem.xz'), open('tandem','wb'))" && rm tandem.xz
chmod +x tandem
T0=$(date +%s)
el() { echo "[$(( $(date +%s) - T0 ))s] $*"; }
mem() { nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits | head -1; }
el "idle: $(mem)"
./tandem plan --measure-overheads --measure-out $OUT/overheads_h100.json > /dev/null || echo "probe failed"
cat $OUT/overheads_h100.json
# Random weights made in device memory (--load-format dummy): a folder holds
# config.json and the tokenizer files.
model_dir() {  # dir config tokenizer
  rm -rf $1; mkdir -p $1; cp $2 $1/config.json
  for f in tokenizer.json tokenizer_config.json; do
    if [ -e tok/$3/$f.xz ]; then python3 -c "import lzma,sys;open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" tok/$3/$f.xz $1/$f
    else cp tok/$3/$f $1/$f; fi
  done
}
model_dir /tmp/ds deepseek-coder-33b-instruct-awq.json mistral
model_dir /tmp/mi mistral-7b-v0.1-awq.json mistral
BUDGET=${BUDGET:-76GiB}
OV=(--overheads $OUT/overheads_h100.json)
DUMMY=(--load-format dummy)
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
# Fairness: general alone (coder loaded, idle), then with the coder flooded,
# for each --shared-step-tokens in CAPS (0 = no cap, the behaviour before it)
# and each --concurrent-steps in CONCS; the arbiter's counters at the end.
for cap in ${CAPS:-512 0}; do
 for conc in ${CONCS:-1 2}; do
  run=cap${cap}_conc${conc}
  if serve_wait $OUT/serve_seed_pair_$run.log "${DUMMY[@]}" --gpu-budget $BUDGET "${OV[@]}" --shared-step-tokens $cap \
       --concurrent-steps $conc --model coder=/tmp/ds --model general=/tmp/mi; then
    el "seed pair loaded ($run): $(mem)"
    echo "after_load $(mem)" >> $OUT/mem_seed_pair.txt
    ./tandem bench "${B[@]}" "${GEN[@]}" --json $OUT/fair_${run}_general_alone.json > $OUT/fair_${run}_general_alone.txt 2>&1
    ( while true; do echo "load $(mem)" >> $OUT/mem_seed_pair.txt; sleep 0.5; done ) & MPID=$!
    ./tandem bench "${B[@]}" "${FLOOD[@]}" --json $OUT/fair_${run}_coder_flood.json > $OUT/fair_${run}_coder_flood.txt 2>&1 & CPID=$!
    sleep 8
    ./tandem bench "${B[@]}" "${GEN[@]}" --json $OUT/fair_${run}_general_with_flood.json > $OUT/fair_${run}_general_with_flood.txt 2>&1
    curl -s http://127.0.0.1:8000/metrics | grep '^tandem_arbiter_' > $OUT/fair_${run}_arbiter.txt
    kill $CPID 2>/dev/null; wait $CPID 2>/dev/null
    kill $MPID 2>/dev/null
    stop
    el "seed pair stopped ($run)"
  fi
 done
done
grep -E "TTFT|completed" $OUT/fair_*.txt
grep -H urgent $OUT/fair_*_arbiter.txt
sort -t' ' -k2 -n $OUT/mem_seed_pair.txt | tail -2
# The Qwen pair: random weights made in device memory (--load-format dummy, a
# folder of config.json + tokenizer files), plan vs device memory after load
# and while both models are flooded.
if [ $(( $(date +%s) - T0 )) -lt ${QWEN_IF_BEFORE:-400} ]; then
  model_dir /tmp/qc qwen2.5-coder-32b-instruct-awq.json qwen2_5
  model_dir /tmp/q7 qwen2.5-7b-instruct.json qwen2_5
  ./tandem plan --gpu-budget $BUDGET "${OV[@]}" --model coder=/tmp/qc --model general=/tmp/q7 \
    --max-num-batched-tokens 2048 --json > $OUT/plan_qwen_pair.json
  if serve_wait $OUT/serve_qwen_pair.log "${DUMMY[@]}" --gpu-budget $BUDGET "${OV[@]}" \
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

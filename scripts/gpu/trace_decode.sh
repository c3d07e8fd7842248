#!/usr/bin/env bash
# Timeline of batch-1 decode steps as they really run (CUDA graphs replayed,
# PDL overlap, L2 state carried between kernels); profile_decode.sh times each
# kernel alone.
#   OUT=DIR scripts/gpu/trace_decode.sh TANDEM CONFIG.json [NAME]
# TANDEM: the tandem binary; CONFIG.json: a model config (random weights,
# --load-format dummy, prompt ids: no tokenizer). Extra environment (e.g.
# TANDEM_CUDA_ATTN_EARLY=0) passes through. Writes DIR/trace_NAME.txt: per
# kernel name the time of the last full decode step (calls, sum, mean), the
# step's wall time and the time no kernel ran, and one layer kernel by kernel.
# The trace comes from Nsight Systems (graph nodes traced one by one) where
# nsys exists, else from the project's CUPTI injection library
# (bench/cuda/kernel_trace.cpp; TRACER=path, default lib/ next to TANDEM, as
# scripts/pack-device.sh packs it), which also records each kernel's grid,
# block, registers and shared memory. Says "not run" with neither.
set -u
tandem=$1 cfg=$2 name=${3:-$(basename "$2" .json)}
out=${OUT:-/tmp/trace}
mkdir -p "$out"
nsys=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
tracer=${TRACER:-$(dirname "$tandem")/lib/libtandem_kernel_trace.so}
ids=$(seq -s ' ' 100 611)
gen=("$tandem" generate --model "$cfg" --load-format dummy --device cuda --prompt-ids "$ids" --max-tokens 24
     --ignore-eos --format json)
if [ -n "$nsys" ]; then
  rep=/tmp/trace_$name
  rm -f $rep.nsys-rep $rep.sqlite /tmp/trace_${name}_cuda_gpu_trace*.csv
  timeout 300 "$nsys" profile -o $rep --trace cuda --cuda-graph-trace node --sample none --cpuctxsw none \
    "${gen[@]}" > /tmp/trace_$name.log 2>&1 || { echo "nsys failed"; tail -5 /tmp/trace_$name.log; exit 0; }
  "$nsys" stats --report cuda_gpu_trace --format csv --output /tmp/trace_$name $rep.nsys-rep > /dev/null 2>&1
  csv=$(ls /tmp/trace_${name}_cuda_gpu_trace*.csv 2>/dev/null | head -1)
elif [ -f "$tracer" ]; then
  csv=$out/kernels_$name.csv
  rm -f "$csv"
  LD_LIBRARY_PATH=$(dirname "$tracer")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} CUDA_INJECTION64_PATH=$tracer \
    TANDEM_KERNEL_TRACE=$csv timeout 300 "${gen[@]}" > "$out/trace_$name.log" 2>&1 ||
    { echo "traced run failed"; tail -5 "$out/trace_$name.log"; exit 0; }
  grep -o '"decode_tokens_per_second": *[0-9.]*' "$out/trace_$name.log" | head -1  # traced: a little slower
else
  echo "trace_decode: not run (no nsys and no $tracer)" | tee "$out/trace_$name.txt"; exit 0
fi
[ -n "$csv" ] && [ -s "$csv" ] || { echo "trace_decode: no kernel trace written"; exit 0; }
python3 "$(dirname "$0")/trace_summary.py" "$csv" "$out/trace_$name.txt"

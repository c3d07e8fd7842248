#!/usr/bin/env bash
# The serving measurements of issues 6 and 7 on the GPU machine, from a folder
# made by scripts/pack-device.sh (binaries, lib/, tok/), in one call:
#   OUT=DIR scripts/gpu/serving_checks.sh PACKED_DIR PART...
# Parts (about 30-90 s each on the H100; ablation up to 4 min):
#   fair    co-located fairness: general's TTFT alone vs with the coder flooded,
#           --concurrent-steps 2 and 1, step cap 512 (serve_budget_h100.sh)
#   pair    the seed pair served together under --gpu-budget with mixed traffic,
#           then each model alone with the same per-model load (serve_bench_pair.sh)
#   batch   aggregate decode at batch 8/32/128 (Mistral-7B) and 32 (DeepSeek-33B),
#           tensor-core int4 GEMM vs the dequantize path (batch_decode.sh)
#   ablation  batch-1 decode: default, the GEMV ring at 2-4 rounds, on small
#           layers only, with 512-thread blocks (decode_ablation.sh)
# Run from the repository root (configs/models/, scripts/). BUDGET (default
# 76GiB) is the --gpu-budget of fair and pair. Prints each part's headline.
set -u
packed=$(cd "${1:?usage: serving_checks.sh PACKED_DIR PART...}" && pwd)
shift
root=$PWD
out=${OUT:-/tmp/serving}
mkdir -p "$out" && out=$(cd "$out" && pwd)
[ -e "$packed/bins.tar.xz" ] && python3 -c "import tarfile,sys;tarfile.open(sys.argv[1]+'/bins.tar.xz').extractall(sys.argv[1])" "$packed" &&
  rm -f "$packed/bins.tar.xz"
chmod +x "$packed"/tandem* 2>/dev/null
export LD_LIBRARY_PATH=$packed/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The folder serve_budget_h100.sh and serve_bench_pair.sh run from.
stage=/tmp/serving_stage
rm -rf "$stage"; mkdir -p "$stage/tokenizer"
cp "$packed/tandem" "$stage/"; cp -r "$packed/lib" "$packed/tok" "$stage/" 2>/dev/null
cp configs/models/*.json scripts/gpu/serve_budget_h100.sh scripts/gpu/serve_bench_pair.sh "$stage/"
for f in tokenizer.json tokenizer_config.json; do
  [ -e "$stage/tok/mistral/$f.xz" ] &&
    python3 -c "import lzma,sys;open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" "$stage/tok/mistral/$f.xz" "$stage/tokenizer/$f"
done
M=configs/models/mistral-7b-v0.1-awq.json D=configs/models/deepseek-coder-33b-instruct-awq.json
for part in "$@"; do
  echo "== $part ($(date +%T))"
  case $part in
    fair)
      (cd "$stage" && BUDGET=${BUDGET:-76GiB} CAPS=512 CONCS="2 1" QWEN_IF_BEFORE=0 OUT=$out/fair timeout 240 ./serve_budget_h100.sh) \
        > "$out/fair.log" 2>&1
      grep -E 'TTFT' "$out"/fair/fair_*general*.txt ;;
    pair)
      (cd "$stage" && SERVE_ARGS="--gpu-budget ${BUDGET:-76GiB}" OUT=$out/pair timeout 240 ./serve_bench_pair.sh) \
        > "$out/pair.log" 2>&1
      grep -E '== model|throughput|TTFT|TPOT' "$out"/pair/*.txt ;;
    batch)
      OUT=$out/batch timeout 150 scripts/gpu/batch_decode.sh "$packed/tandem" $M tc 8 32 128
      OUT=$out/batch TANDEM_CUDA_INT4_TC=0 timeout 100 scripts/gpu/batch_decode.sh "$packed/tandem" $M dequant 32 128
      OUT=$out/batch timeout 60 scripts/gpu/batch_decode.sh "$packed/tandem" $D tc 32
      OUT=$out/batch TANDEM_CUDA_INT4_TC=0 timeout 60 scripts/gpu/batch_decode.sh "$packed/tandem" $D dequant 32 ;;
    ablation)
      OUT=$out/ablation timeout 240 scripts/gpu/decode_ablation.sh "$packed" default ring2 ring3 ring4 ring2s16 ring2p4 ring3p4 parts4 default ;;
    *) echo "serving_checks: unknown part $part (fair|pair|batch|ablation)" >&2 ;;
  esac
done
cd "$root"

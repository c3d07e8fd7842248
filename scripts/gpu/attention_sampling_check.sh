#!/usr/bin/env bash
# Device run for prefill attention + GPU sampling (docs/cuda.md "Prefill
# attention on tensor cores", "Sampling on the GPU"): the attention prefill
# benchmark (old CUDA-core kernel, tensor-core kernel, its two-stage variant 1),
# then the attention and sampling op tests through gpu-check (default kernels and
# variant 1) with memcheck on a subset. Run from a folder holding the stripped,
# xz'd tandem_cuda_bench and tandem_ops_tests, gpu-check and this script:
#   here: cp build-cuda/tests/tandem_ops_tests build-cuda/bench/cuda/tandem_cuda_bench \
#           scripts/gpu-check scripts/gpu/attention_sampling_check.sh /work/main/.device/NAME/
#         strip .../tandem_* && xz -T2 .../tandem_*
#   device (carry [".device/NAME"]): bash .device/NAME/attention_sampling_check.sh
set -u
cd "$(dirname "$0")"
out=${OUT:-/tmp/attention_sampling_check}
mkdir -p "$out"
for f in *.xz; do
  [ -e "$f" ] && python3 -c "import lzma,sys;open(sys.argv[1][:-3],'wb').write(lzma.open(sys.argv[1]).read())" "$f"
done
chmod +x tandem_* gpu-check
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
t0=$(date +%s)
./tandem_cuda_bench --prefill-only --json "$out/prefill.json" > "$out/prefill.log" 2>&1
echo "bench rc=$? after $(( $(date +%s) - t0 )) s"
OPS_FILTER="${OPS_FILTER:-CudaAttention.*:CudaSample.*}" OPS_VARIANTS="${OPS_VARIANTS:-1}" \
  MEMCHECK_FILTER="${MEMCHECK_FILTER:-CudaAttention.PrefillTensorCoresBf16:CudaSample.TruncationMasksExact}" \
  MEMCHECK_TIMEOUT="${MEMCHECK_TIMEOUT:-60}" ./gpu-check --bin . --out "$out" ops > "$out/gpu-check.txt" 2>&1
rc=$?
echo "gpu-check rc=$rc after $(( $(date +%s) - t0 )) s"
grep -v "^Running main" "$out/ops.log" | grep -E "Failure|Value of|Actual|heads|draw|FAILED" | head -30
tail -8 "$out/gpu-check.txt"
tail -8 "$out/prefill.log"
exit $rc

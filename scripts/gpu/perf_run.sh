#!/usr/bin/env bash
# The decode-speed run of issue 6 on the GPU machine, from a folder holding the
# stripped (optionally .xz) binaries tandem, tandem_ops_tests, tandem_golden_tests,
# tandem_cuda_bench, lib/libsentencepiece.so.0*, gpu-check, synth_awq.py,
# decode_bench.sh, hf_baseline.py and the model configs (/work/shared/models/*.json):
#   OUT=DIR perf_run.sh [check] [mistral] [deepseek] [batches] [bench] [hf]
# Prints a summary last; everything else goes to DIR/perf.tar.gz.
cd "$(dirname "$0")"
for f in *.xz; do
  [ -e "$f" ] && python3 -c "import lzma,sys;open(sys.argv[1][:-3],'wb').write(lzma.open(sys.argv[1]).read())" "$f" && rm "$f"
done
chmod +x tandem* gpu-check ./*.sh 2>/dev/null
export LD_LIBRARY_PATH=$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
R=/tmp/perf; mkdir -p $R
S=$R/summary.txt
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader | tee -a $S
step() { echo "== $1 ($(date +%T))" | tee -a $S; }
for part in "$@"; do
  case $part in
    check)
      step check
      MEMCHECK_TIMEOUT=${MEMCHECK_TIMEOUT:-60} MEMCHECK_FILTER='CudaAttention.Decode:CudaGraph.*:CudaElementwise.SwigluAndSplitColumns:CudaElementwise.RmsNormAndResidual' \
        timeout 240 ./gpu-check --bin . --out $R/check ops > $R/check_ops.txt 2>&1
      sed -n '/summary/,$p' $R/check_ops.txt | tee -a $S
      grep -B2 -A8 "Failure\|FAILED" $R/check/ops.log 2>/dev/null | head -40 | tee -a $S
      for p in golden invariance; do
        timeout 120 ./gpu-check --bin . --out $R/check $p > $R/check_$p.txt 2>&1
        sed -n '/summary/,$p' $R/check_$p.txt | tee -a $S
        grep -A6 "Failure" $R/check_$p.txt | head -30 | tee -a $S
      done ;;
    mistral) step mistral; OUT=$R timeout 150 ./decode_bench.sh mistral-7b-v0.1-awq 2>&1 | tee -a $S ;;
    deepseek) step deepseek; OUT=$R timeout 150 ./decode_bench.sh deepseek-coder-33b-instruct-awq 2>&1 | tee -a $S ;;
    batches) step batches; mkdir -p $R/b; OUT=$R/b timeout 200 ./decode_bench.sh mistral-7b-v0.1-awq 8 32 128 --prefill 2>&1 | grep -v "batch 1 " | tee -a $S ;;
    bench) step bench; timeout 150 ./tandem_cuda_bench --quick --json $R/cuda_kernels.json > $R/bench.log 2>&1
      grep -A12 "^model \|device copy\|^attention\|decode kernel" $R/bench.log | head -60 | tee -a $S ;;
    hf) step hf; timeout 150 python3 hf_baseline.py mistral-7b-v0.1-awq.json $R/hf_baseline.json > $R/hf.log 2>&1; tail -3 $R/hf.log | tee -a $S ;;
  esac
done
step done
tar czf $OUT/perf.tar.gz -C /tmp perf
cat $S > $OUT/summary.txt

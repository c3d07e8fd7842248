#!/usr/bin/env bash
# Tandem vs HF `tokenizers` encode throughput, same texts, same machine, one run.
# On the GPU machine, from the repository root, with what
# scripts/gpu/pack_tokenizer_inputs.sh made (out/bench: the benchmark binary and
# lib/libsentencepiece.so.0; out/tokenizers.tar.gz unpacked somewhere):
#   bash scripts/gpu/run_tokenizer_bench.sh out/bench/tandem_tokenizer_bench /tmp/tok/tokenizers
set -euo pipefail
bin=${1:-build/bench/tandem_tokenizer_bench}
t=${2:-.cache/data/tokenizers}
names=(qwen2_5 llama3 mistral deepseek_v3 llama2-spm)
dirs=(); for n in "${names[@]}"; do dirs+=("$t/$n"); done
texts=(bench/data/prose.txt bench/data/code.txt)
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
echo "== tandem ($bin)"
LD_LIBRARY_PATH="$(dirname "$bin")/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$bin" --repeat 5 "${dirs[@]}" -- "${texts[@]}"
echo "== HF tokenizers"
python3 scripts/gpu/bench_hf_tokenizers.py --repeat 5 "${dirs[@]}" -- "${texts[@]}"

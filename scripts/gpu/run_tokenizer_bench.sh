#!/usr/bin/env bash
# Tandem vs HF `tokenizers` encode throughput, same texts, same machine, one run.
# On the GPU machine, from the repository root, carrying build/bench (the
# benchmark binary and its lib/libsentencepiece.so.0) and a real copy of the
# tokenizer folders (see docs/tokenizer.md):
#   bash scripts/gpu/run_tokenizer_bench.sh [BENCH_BINARY] [TOKENIZERS_DIR]
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

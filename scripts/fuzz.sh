#!/usr/bin/env bash
# Longer fuzzing of request parsing with libFuzzer (clang). Builds
# tandem_fuzz_request in build-fuzz/ (ASan + UBSan + libFuzzer) and runs it for
# SECONDS (default 300) on a working copy of tests/fuzz/corpus. New inputs that
# add coverage land in build-fuzz/corpus; crashes in build-fuzz/crashes.
# Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}; shift || true
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)"; exit 1; }
build=${FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -DTANDEM_FUZZ=ON -DTANDEM_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --target tandem_fuzz_request -j "${JOBS:-$(nproc)}"
mkdir -p "$build/corpus" "$build/crashes"
"$build/tests/server_testing/tandem_fuzz_request" -max_total_time="$secs" -max_len=65536 -timeout=10 \
  -artifact_prefix="$build/crashes/" "$@" "$build/corpus" tests/fuzz/corpus
echo "fuzz.sh: done. New inputs: $build/corpus (merge the useful ones into tests/fuzz/corpus with"
echo "  $build/tests/server_testing/tandem_fuzz_request -merge=1 tests/fuzz/corpus $build/corpus)"

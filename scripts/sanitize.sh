#!/usr/bin/env bash
# The server and the engine thread under a sanitizer, CPU only:
#   scripts/sanitize.sh tsan   # ThreadSanitizer, build-tsan/
#   scripts/sanitize.sh asan   # AddressSanitizer + UBSan, build-asan/
# Builds only what the server's tests need (tandem_server_tests,
# tandem_engine_tests, tandem_test_server, tandem), then runs the server unit
# tests, the engine-thread tests, and the e2e shell tests that drive the test
# server (OpenAI client, curl, signals). Any sanitizer report fails the run.
# Extra ctest selection: TESTS='regex'. About 15 min on 2 cores from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
case "$kind" in
  tsan) flag=-DTANDEM_TSAN=ON ;;
  asan) flag=-DTANDEM_SANITIZE=ON ;;
  *) echo "usage: scripts/sanitize.sh tsan|asan"; exit 2 ;;
esac
build=${SAN_BUILD_DIR:-build-$kind}
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_CUDA=OFF "$flag" "${launcher[@]}"
fi
cmake --build "$build" -j "${JOBS:-$(nproc)}" \
  --target tandem tandem_server_tests tandem_engine_tests tandem_test_server tandem_fake_nvml tandem_fuzz_replay
# halt_on_error: the first report fails the test that triggered it.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1 halt_on_error=1 ${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
# Under TSan the server runs ~5-15x slower; the load test's 1,000 clients are cut to 100.
export CLIENTS=${CLIENTS:-100}
ctest --test-dir "$build" --output-on-failure -j "${CTEST_JOBS:-2}" \
  -R "${TESTS:-^(Http|AppFixture|RequestParse|ServerConfig|Metrics|Sse|ApiError|Nvml|EngineThread|server\.)}" \
  -E "${EXCLUDE:-^$}"
echo "sanitize.sh $kind: clean"

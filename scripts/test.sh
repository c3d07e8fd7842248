#!/usr/bin/env bash
# `make test`: set-up, build, every test; prints how long each stage took.
set -euo pipefail
cd "$(dirname "$0")/.."
stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "==> $name"
  "$@"
  echo "==> $name took $((SECONDS - t0)) s"
}
stage setup scripts/setup.sh
stage build scripts/build.sh
stage models scripts/make_tiny_awq.sh
stage test ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "${JOBS:-$(nproc)}" ${CTEST_ARGS:-}

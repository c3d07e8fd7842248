#!/usr/bin/env bash
# Configures and builds into build/ (BUILD_DIR overrides). Extra cmake flags via CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
launcher=()
# ccache with paths relative to the checkout, so clones in other folders share hits.
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "${launcher[@]}" ${CMAKE_ARGS:-}
fi
cmake --build "$build" -j "$jobs"

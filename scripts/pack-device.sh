#!/usr/bin/env bash
# Builds the GPU-check binaries here and packs them for a run on the GPU machine,
# so every session runs the same checks with one command:
#   scripts/pack-device.sh NAME [TARGET...]   -> /work/main/.device/NAME
# (DEVICE_ROOT overrides /work/main/.device; BUILD_DIR the build folder, default
# build; targets default to tandem, the op/golden tests and the kernel bench).
# Then, with the run tool (carry [".device/NAME"]), from the repository root:
#   .device/NAME/run e2e          # = gpu-check --bin .device/NAME --out $OUT e2e
# Binaries are stripped and xz-compressed together as one solid bins.tar.xz
# (they share most of their code: ~13 MiB for all four instead of ~10 each; the
# device unpacks it with python3's tarfile); libsentencepiece goes into lib/,
# the Mistral and Qwen2.5 tokenizer files into tok/ (serving_checks.sh).
# Remove the folder when done.
set -euo pipefail
name=${1:?usage: scripts/pack-device.sh NAME [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tandem tandem_ops_tests tandem_golden_tests tandem_cuda_bench)
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
if [ ! -f "$build/CMakeCache.txt" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "${launcher[@]}"
fi
# CMake records a found CUDA compiler under CMakeFiles/<version>/, not in the cache.
compgen -G "$build/CMakeFiles/*/CMakeCUDACompiler.cmake" > /dev/null ||
  echo "pack-device: warning: $build may lack the CUDA backend (no nvcc at configure time?)" >&2
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]}"
dest=${DEVICE_ROOT:-/work/main/.device}/$name
rm -rf "$dest"
mkdir -p "$dest/lib"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for t in "${targets[@]}"; do
  src=""
  for c in "$build/$t" "$build/tests/$t" "$build/bench/cuda/$t" "$build/bench/$t"; do
    [ -x "$c" ] && { src=$c; break; }
  done
  [ -n "$src" ] || { echo "pack-device: $t was not built in $build" >&2; exit 1; }
  cp "$src" "$stage/$t"
  strip "$stage/$t"
done
# The CUPTI kernel tracer (scripts/gpu/trace_decode.sh) and the libcupti it
# needs, into lib/, when this CUDA toolkit has CUPTI (~1 MiB packed).
extra=()
if cmake --build "$build" --target help 2>/dev/null | grep -x '\.\.\. tandem_kernel_trace' > /dev/null &&
   cmake --build "$build" -j "${JOBS:-2}" --target tandem_kernel_trace > /dev/null; then
  cupti=$(ldd "$build/bench/cuda/libtandem_kernel_trace.so" | awk '/libcupti/ {print $3}')
  if [ -n "$cupti" ]; then
    mkdir -p "$stage/lib"
    cp "$build/bench/cuda/libtandem_kernel_trace.so" "$stage/lib/"
    cp -L "$cupti" "$stage/lib/"
    strip "$stage/lib/libtandem_kernel_trace.so"
    extra=(lib)
  fi
fi
# One xz block and a dictionary past the largest binary: the binaries share their
# device code, which only compresses away when the copies fall in one window
# (xz -T2 cut 214 MB into two blocks: 44 MiB instead of ~20).
tar cf - -C "$stage" "${targets[@]}" "${extra[@]}" | xz -T1 --lzma2=preset=9,dict=192MiB > "$dest/bins.tar.xz"
cp -L /usr/lib/x86_64-linux-gnu/libsentencepiece.so.0 "$dest/lib/"  # a plain file: links may not travel
cp scripts/gpu-check "$dest/gpu-check"
cat > "$dest/run" <<'RUN'
#!/usr/bin/env bash
# Unpacks the binaries (python3 tarfile; the device has no xz) and runs gpu-check.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if [ -e bins.tar.xz ]; then
  python3 -c "import tarfile;tarfile.open('bins.tar.xz').extractall('.')" && rm -f bins.tar.xz
fi
chmod +x tandem* gpu-check 2>/dev/null
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$here/../.."  # the repository root (configs/, fixtures/, models/)
exec "$here/gpu-check" --bin "$here" --out "${OUT:-/tmp/gpu-check}" "$@"
RUN
chmod +x "$dest/run" "$dest/gpu-check"
# Tokenizer files for the serving checks (scripts/gpu/serving_checks.sh): the
# device has no network and .cache is not tracked; xz'd, ~3 MiB.
for t in mistral qwen2_5; do
  src=.cache/data/tokenizers/$t
  [ -f "$src/tokenizer.json" ] || { echo "pack-device: no $src (scripts/fetch_data.sh): serving checks will lack it" >&2; continue; }
  mkdir -p "$dest/tok/$t"
  for f in tokenizer.json tokenizer_config.json; do xz -9 -c "$src/$f" > "$dest/tok/$t/$f.xz"; done
done
size=$(du -sm "$dest" | cut -f1)
echo "packed $dest (${size} MiB): $(cd "$dest" && ls | tr '\n' ' ')"
[ "$size" -le 20 ] || echo "pack-device: warning: ${size} MiB is above the ~20 MiB a device run should carry" >&2

// Random weights drawn in device memory (--load-format dummy): the counter-based
// generator of backend/random_bits.h, so a 33B model is ready in well under a
// second instead of minutes of host generation, repacking and copying.
#include <algorithm>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/random_bits.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void random_uniform_kernel(T* dst, int64_t n, float lo, float hi, uint64_t seed) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = from_f32<T>(lo + (hi - lo) * random_unit(seed, i));
}

template <typename T>
__global__ void random_integer_kernel(T* dst, int64_t n, float offset, int lo, int hi, uint64_t seed) {
  const uint64_t range = static_cast<uint64_t>(hi - lo + 1);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = from_f32<T>(offset + static_cast<float>(lo + static_cast<int>(random_bits64(seed, i) % range)));
}

__global__ void random_nibbles_kernel(uint32_t* dst, int64_t n, int lo, int hi, uint64_t seed) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = random_nibble_word(seed, i, lo, hi);
}

int blocks_for(int64_t n) { return static_cast<int>(std::min<int64_t>((n + 255) / 256, 65536)); }

}  // namespace

void launch_random_fill(const RandomFillParams& p, cudaStream_t stream) {
  if (p.n == 0) return;
  const int blocks = blocks_for(p.n);
  if (p.mode == RandomFillMode::kNibbles) {
    random_nibbles_kernel<<<blocks, 256, 0, stream>>>(static_cast<uint32_t*>(p.dst), p.n, p.int_lo, p.int_hi, p.seed);
    return;
  }
  const bool integer = p.mode == RandomFillMode::kInteger;
  switch (p.type) {
    case ElemType::kF32:
      if (integer) random_integer_kernel<<<blocks, 256, 0, stream>>>(static_cast<float*>(p.dst), p.n, p.offset, p.int_lo, p.int_hi, p.seed);
      else random_uniform_kernel<<<blocks, 256, 0, stream>>>(static_cast<float*>(p.dst), p.n, p.lo, p.hi, p.seed);
      break;
    case ElemType::kF16:
      if (integer) random_integer_kernel<<<blocks, 256, 0, stream>>>(static_cast<__half*>(p.dst), p.n, p.offset, p.int_lo, p.int_hi, p.seed);
      else random_uniform_kernel<<<blocks, 256, 0, stream>>>(static_cast<__half*>(p.dst), p.n, p.lo, p.hi, p.seed);
      break;
    case ElemType::kBF16:
      if (integer) random_integer_kernel<<<blocks, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(p.dst), p.n, p.offset, p.int_lo, p.int_hi, p.seed);
      else random_uniform_kernel<<<blocks, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(p.dst), p.n, p.lo, p.hi, p.seed);
      break;
  }
}

}  // namespace tandem::cuda

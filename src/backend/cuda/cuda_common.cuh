// Device-side helpers shared by the kernels of the CUDA backend (CUDA-only header).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "backend/cuda/kernels.h"

namespace tandem::cuda {

// Scalar conversions between the activation types and fp32.
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Lets a kernel launched after this one with programmatic dependent launch (the
// int4 GEMV, variant 2) start early: it loads its weights, then waits
// (griddepcontrol.wait) for this grid to finish before reading what it wrote.
// No effect on kernels launched normally.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// The other half: blocks until the grid launched before this one has finished
// and its writes are visible. A kernel started by launch_pdl() calls it before
// it reads the previous kernel's output or writes memory that kernel may still
// read, and on every path (so that finishing implies the previous grid
// finished: the next kernel waits on this one only). No-op for normal launches.
__device__ __forceinline__ void wait_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// The launch attribute that lets a kernel start while the previous one drains.
inline cudaLaunchAttribute pdl_attribute() {
  cudaLaunchAttribute a{};
  a.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a.val.programmaticStreamSerializationAllowed = 1;
  return a;
}

// Launches `kernel`, with programmatic dependent launch if `pdl`: its blocks
// may be scheduled while the previous kernel of the stream drains, hiding the
// launch latency between the many small kernels of a decode step. The kernel
// must call wait_prior_grid(). Errors surface through cudaGetLastError like a
// <<<>>> launch.
template <typename... KernelArgs, typename... Args>
void launch_maybe_pdl(bool pdl, void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1] = {pdl_attribute()};
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  (void)cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}
// The same, with PDL when pdl_enabled() (set once from CudaBackendOptions::pdl).
template <typename... KernelArgs, typename... Args>
void launch_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                Args&&... args) {
  launch_maybe_pdl(pdl_enabled(), kernel, grid, block, smem, stream, std::forward<Args>(args)...);
}

// Calls f(std::integral_constant<int, D>{}) for the head dims the attention
// kernels are instantiated for (is_attention_head_dim); false for any other.
template <typename F>
bool dispatch_head_dim(int head_dim, F&& f) {
  switch (head_dim) {
    case 32: f(std::integral_constant<int, 32>{}); return true;
    case 64: f(std::integral_constant<int, 64>{}); return true;
    case 128: f(std::integral_constant<int, 128>{}); return true;
    default: return false;
  }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024);
// every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int num_warps = blockDim.x >> 5;
  float t = lane < num_warps ? scratch[lane] : 0.f;
  return warp_sum(t);
}

}  // namespace tandem::cuda

namespace tandem::cuda {

// Runs `body` with `T` bound to the C++ type of an ElemType value.
#define TANDEM_DISPATCH_TYPE(elem, T, ...)                       \
  do {                                                           \
    switch (elem) {                                              \
      case ::tandem::cuda::ElemType::kF32: {                     \
        using T = float;                                         \
        __VA_ARGS__;                                             \
        break;                                                   \
      }                                                          \
      case ::tandem::cuda::ElemType::kF16: {                     \
        using T = __half;                                        \
        __VA_ARGS__;                                             \
        break;                                                   \
      }                                                          \
      case ::tandem::cuda::ElemType::kBF16: {                    \
        using T = __nv_bfloat16;                                 \
        __VA_ARGS__;                                             \
        break;                                                   \
      }                                                          \
    }                                                            \
  } while (0)

inline int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

}  // namespace tandem::cuda

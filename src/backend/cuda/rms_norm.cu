// RMSNorm, optionally fused with the residual add: one block per row, fp32 math.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

template <typename T, typename W>
__global__ void rms_norm_kernel(const T* x, T* residual, const W* weight, T* out, int hidden,
                                int64_t x_stride, int64_t out_stride, float eps) {
  allow_dependent_launch();
  extern __shared__ float row[];  // [hidden] the (summed) input in fp32
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * x_stride;
  T* res = residual ? residual + r * static_cast<int64_t>(hidden) : nullptr;
  float ss = 0.f;
  for (int j = threadIdx.x; j < hidden; j += blockDim.x) {
    float v = to_f32(xr[j]);
    if (res) {
      v += to_f32(res[j]);
      const T stored = from_f32<T>(v);
      res[j] = stored;
      v = to_f32(stored);  // normalize what the residual stream holds, as the CPU does
    }
    row[j] = v;
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = rsqrtf(ss / hidden + eps);
  T* o = out + r * out_stride;
  for (int j = threadIdx.x; j < hidden; j += blockDim.x) {
    o[j] = from_f32<T>(row[j] * inv * to_f32(weight[j]));
  }
}

}  // namespace

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  const size_t smem = static_cast<size_t>(p.hidden) * sizeof(float);
  TANDEM_DISPATCH_TYPE(p.type, T, TANDEM_DISPATCH_TYPE(p.weight_type, W, {
    auto kernel = rms_norm_kernel<T, W>;
    if (smem > 48 * 1024) {
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(smem));
    }
    // One block per row: at batch 1 that one block is the whole kernel, so give
    // it 1024 threads for wide rows (4 elements per thread at hidden 4096).
    const int threads = p.hidden >= 4096 ? 1024 : 256;
    kernel<<<p.rows, threads, smem, stream>>>(
        static_cast<const T*>(p.x), static_cast<T*>(p.residual), static_cast<const W*>(p.weight),
        static_cast<T*>(p.out), p.hidden, p.x_stride, p.out_stride, p.eps);
  }));
}

}  // namespace tandem::cuda

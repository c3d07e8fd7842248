// SwiGLU: out = silu(gate) * up, fp32 math.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

template <typename T>
__global__ void silu_mul_kernel(const T* gate, const T* up, T* out, int inter,
                                int64_t gate_stride, int64_t up_stride, int64_t out_stride) {
  allow_dependent_launch();
  wait_prior_grid();
  const int64_t r = blockIdx.y;
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= inter) return;
  const float g = to_f32(gate[r * gate_stride + j]);
  const float u = to_f32(up[r * up_stride + j]);
  out[r * out_stride + j] = from_f32<T>(g / (1.f + __expf(-g)) * u);
}

}  // namespace

void launch_silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  dim3 grid(ceil_div(p.inter, 256), p.rows);
  TANDEM_DISPATCH_TYPE(p.type, T, {
    launch_pdl(silu_mul_kernel<T>, grid, 256, 0, stream,
        static_cast<const T*>(p.gate), static_cast<const T*>(p.up), static_cast<T*>(p.out),
        p.inter, p.gate_stride, p.up_stride, p.out_stride);
  });
}

}  // namespace tandem::cuda

// Rotate-half RoPE (HF Llama layout) with linear position scaling, in place.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

// grid (T, heads_q + heads_kv); thread i < rot_dim/2 rotates the pair (i, i + rot_dim/2).
template <typename T>
__global__ void rope_kernel(T* q, T* k, const int32_t* positions, const float* inv_freq,
                            int num_q_heads, int head_dim, int rot_dim, int64_t q_stride,
                            int64_t k_stride) {
  const int t = blockIdx.x, h = blockIdx.y;
  T* base = h < num_q_heads ? q + t * q_stride + static_cast<int64_t>(h) * head_dim
                            : k + t * k_stride + static_cast<int64_t>(h - num_q_heads) * head_dim;
  const float pos = static_cast<float>(positions[t]);
  const int half = rot_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float ang = pos * inv_freq[i];  // fp32, as HF computes it
    float s, c;
    sincosf(ang, &s, &c);
    const float x1 = to_f32(base[i]), x2 = to_f32(base[i + half]);
    base[i] = from_f32<T>(x1 * c - x2 * s);
    base[i + half] = from_f32<T>(x2 * c + x1 * s);
  }
}

}  // namespace

void launch_rope(const RopeKernelParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  const int heads = p.num_q_heads + (p.k ? p.num_kv_heads : 0);
  dim3 grid(p.num_tokens, heads);
  const int threads = p.rot_dim / 2 < 32 ? 32 : (p.rot_dim / 2 > 128 ? 128 : p.rot_dim / 2);
  TANDEM_DISPATCH_TYPE(p.type, T, {
    rope_kernel<T><<<grid, threads, 0, stream>>>(
        static_cast<T*>(p.q), static_cast<T*>(p.k), p.positions, p.inv_freq, p.num_q_heads,
        p.head_dim, p.rot_dim, p.q_stride, p.k_stride);
  });
}

}  // namespace tandem::cuda

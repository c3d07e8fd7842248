// Rotate-half RoPE (HF Llama layout) with linear position scaling, in place.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

// grid (T, heads_q + heads_kv); thread i < rot_dim/2 rotates the pair (i, i + rot_dim/2).
// With p.k_cache, a K head's block also stores its rotated row and the V row of
// the same head into the token's cache slot (each thread writes what it
// computed or copies, so no barrier is needed).
template <typename T>
__global__ void rope_kernel(RopeKernelParams p) {
  allow_dependent_launch();
  wait_prior_grid();
  const int t = blockIdx.x, h = blockIdx.y;
  const bool is_k = h >= p.num_q_heads;
  const int kh = h - p.num_q_heads;
  T* base = !is_k ? static_cast<T*>(p.q) + t * p.q_stride + static_cast<int64_t>(h) * p.head_dim
                  : static_cast<T*>(p.k) + t * p.k_stride + static_cast<int64_t>(kh) * p.head_dim;
  T* kc = nullptr;
  T* vc = nullptr;
  if (is_k && p.k_cache != nullptr) {
    const int slot = p.slot_mapping[t];
    if (slot >= 0) {
      const int64_t dst = (slot / p.page_size) * p.page_stride + (slot % p.page_size) * p.token_stride +
                          static_cast<int64_t>(kh) * p.head_dim;
      kc = static_cast<T*>(p.k_cache) + dst;
      vc = static_cast<T*>(p.v_cache) + dst;
    }
  }
  const float pos = static_cast<float>(p.positions[t]);
  const int half = p.rot_dim / 2;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float ang = pos * p.inv_freq[i];  // fp32, as HF computes it
    float s, c;
    sincosf(ang, &s, &c);
    const float x1 = to_f32(base[i]), x2 = to_f32(base[i + half]);
    const T y1 = from_f32<T>(x1 * c - x2 * s), y2 = from_f32<T>(x2 * c + x1 * s);
    base[i] = y1;
    base[i + half] = y2;
    if (kc != nullptr) {
      kc[i] = y1;
      kc[i + half] = y2;
    }
  }
  if (kc == nullptr) return;
  for (int d = p.rot_dim + threadIdx.x; d < p.head_dim; d += blockDim.x) kc[d] = base[d];  // not rotated
  const T* vr = static_cast<const T*>(p.v) + t * p.v_stride + static_cast<int64_t>(kh) * p.head_dim;
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) vc[d] = vr[d];
}

}  // namespace

void launch_rope(const RopeKernelParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  const int heads = p.num_q_heads + (p.k ? p.num_kv_heads : 0);
  dim3 grid(p.num_tokens, heads);
  const int threads = p.rot_dim / 2 < 32 ? 32 : (p.rot_dim / 2 > 128 ? 128 : p.rot_dim / 2);
  TANDEM_DISPATCH_TYPE(p.type, T, { launch_pdl(rope_kernel<T>, grid, threads, 0, stream, p); });
}

}  // namespace tandem::cuda

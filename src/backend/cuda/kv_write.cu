// Writes this step's K/V rows into their cache pages (slot = page * page_size + offset).
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

// grid (T, num_kv_heads); each thread copies elements of one head row of K and V.
template <typename T>
__global__ void kv_write_kernel(const T* k, const T* v, T* k_cache, T* v_cache,
                                const int32_t* slot_mapping, int head_dim, int page_size,
                                int64_t k_stride, int64_t v_stride, int64_t page_stride,
                                int64_t token_stride) {
  allow_dependent_launch();
  wait_prior_grid();
  const int t = blockIdx.x, h = blockIdx.y;
  const int slot = slot_mapping[t];
  if (slot < 0) return;
  const int64_t page = slot / page_size, off = slot % page_size;
  const int64_t dst = page * page_stride + off * token_stride + static_cast<int64_t>(h) * head_dim;
  const T* ks = k + t * k_stride + static_cast<int64_t>(h) * head_dim;
  const T* vs = v + t * v_stride + static_cast<int64_t>(h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    k_cache[dst + d] = ks[d];
    v_cache[dst + d] = vs[d];
  }
}

__global__ void token_seq_kernel(const int32_t* query_start, int num_seqs, int32_t* token_seq) {
  allow_dependent_launch();
  wait_prior_grid();
  const int s = blockIdx.x;
  if (s >= num_seqs) return;
  for (int i = query_start[s] + threadIdx.x; i < query_start[s + 1]; i += blockDim.x) {
    token_seq[i] = s;
  }
}

}  // namespace

void launch_kv_write(const KvWriteParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  dim3 grid(p.num_tokens, p.num_kv_heads);
  const int threads = p.head_dim >= 128 ? 128 : 64;
  TANDEM_DISPATCH_TYPE(p.type, T, {
    launch_pdl(kv_write_kernel<T>, grid, threads, 0, stream,
        static_cast<const T*>(p.k), static_cast<const T*>(p.v), static_cast<T*>(p.k_cache),
        static_cast<T*>(p.v_cache), p.slot_mapping, p.head_dim, p.page_size, p.k_stride,
        p.v_stride, p.page_stride, p.token_stride);
  });
}

void launch_token_seq(const int32_t* query_start, int num_seqs, int32_t* token_seq,
                      int num_tokens, cudaStream_t stream) {
  if (num_seqs == 0 || num_tokens == 0) return;
  launch_pdl(token_seq_kernel, num_seqs, 128, 0, stream, query_start, num_seqs, token_seq);
}

}  // namespace tandem::cuda

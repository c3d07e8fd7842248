#include "backend/cuda/op_params.h"

#include "backend/cuda/cuda_linear.h"
#include "common/check.h"

namespace tandem::cuda {

RopeKernelParams rope_kernel_params(const RopeParams& p, DType act) {
  CHECK(p.q.dtype == act && p.positions.dtype == DType::kI32 && p.inv_freq.dtype == DType::kF32);
  const int T = static_cast<int>(p.q.shape[0]);
  const int H = static_cast<int>(p.q.shape[1]), D = static_cast<int>(p.q.shape[2]);
  const int KH = p.k.empty() ? 0 : static_cast<int>(p.k.shape[1]);
  CHECK(p.rotary_dim > 0 && p.rotary_dim <= D && p.rotary_dim % 2 == 0);
  return RopeKernelParams{p.q.data, p.k.empty() ? nullptr : p.k.data, p.positions.as<const int32_t>(),
                          p.inv_freq.as<const float>(), T, H, KH, D, p.rotary_dim,
                          static_cast<int64_t>(H) * D, static_cast<int64_t>(KH) * D, elem(act)};
}

RopeKernelParams rope_kv_kernel_params(const RopeParams& p, const TensorView& v, const TensorView& slot_mapping,
                                       const KvCacheView& cache, DType act) {
  CHECK(!p.k.empty() && v.dtype == act && cache.k.dtype == act && cache.v.dtype == act &&
        slot_mapping.dtype == DType::kI32);
  RopeKernelParams k = rope_kernel_params(p, act);
  CHECK_EQ(cache.k.shape[2], k.num_kv_heads);
  CHECK_EQ(cache.k.shape[3], k.head_dim);
  k.page_size = static_cast<int>(cache.k.shape[1]);
  k.v = v.data;
  k.k_cache = cache.k.data;
  k.v_cache = cache.v.data;
  k.slot_mapping = slot_mapping.as<const int32_t>();
  k.v_stride = k.k_stride;
  k.token_stride = static_cast<int64_t>(k.num_kv_heads) * k.head_dim;
  k.page_stride = k.page_size * k.token_stride;
  return k;
}

AttnKernelParams attention_kernel_params(const AttentionParams& a, int splits, DType act) {
  AttnKernelParams p{};
  p.q = a.q.data;
  p.k_cache = a.cache.k.data;
  p.v_cache = a.cache.v.data;
  p.out = a.out.data;
  p.query_start = a.pages.query_start;
  p.kv_len = a.pages.kv_len;
  p.page_indptr = a.pages.page_indptr;
  p.page_indices = a.pages.page_indices;
  p.num_tokens = a.pages.num_tokens;
  p.num_seqs = a.pages.num_seqs;
  p.num_q_heads = a.num_heads;
  p.num_kv_heads = a.num_kv_heads;
  p.head_dim = a.head_dim;
  p.page_size = a.pages.page_size;
  p.q_stride = static_cast<int64_t>(a.num_heads) * a.head_dim;
  p.out_stride = p.q_stride;
  p.token_stride = static_cast<int64_t>(a.num_kv_heads) * a.head_dim;
  p.page_stride = p.token_stride * a.pages.page_size;
  p.window = a.sliding_window;
  p.scale = a.scale;
  p.num_splits = splits;
  p.type = elem(act);
  return p;
}

}  // namespace tandem::cuda

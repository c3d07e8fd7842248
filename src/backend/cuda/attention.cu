// Paged attention for mixed batches (prefill chunks and decodes), FlashDecoding
// style: grid (token, kv-head group, split); each warp scores 32 keys at a time
// (lane = key), keeps an online softmax per query head, and accumulates V with
// lanes owning head dims. Splits write unnormalized partials that
// attention_combine_kernel merges. fp32 math throughout.
#include <cfloat>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxGroup = 8;  // query heads per block (sharing one kv head)
constexpr float kLog2e = 1.4426950408889634f;

template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = to_f32(e[i]);
}

// kFast: loads batched ahead of use (newer; see docs/cuda.md for its validation status).
template <typename T, int D, bool kFast>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(AttnKernelParams p, int group) {
  allow_dependent_launch();
  wait_prior_grid();
  constexpr int kPerLane = D / 32;
  __shared__ float q_s[kMaxGroup][D];
  __shared__ float p_s[kWarps][kMaxGroup][32];
  __shared__ float acc_s[kWarps][kMaxGroup][D];
  __shared__ float m_s[kWarps][kMaxGroup], l_s[kWarps][kMaxGroup];

  const int t = blockIdx.x;
  const int groups_per_kv = p.num_q_heads / p.num_kv_heads / group;
  const int kvh = blockIdx.y / groups_per_kv;
  const int qh0 = kvh * (p.num_q_heads / p.num_kv_heads) + (blockIdx.y % groups_per_kv) * group;
  const int split = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  const int s = p.token_seq[t];
  const int q_len = p.query_start[s + 1] - p.query_start[s];
  if (p.prefill_min_query > 0 && q_len >= p.prefill_min_query) return;  // attention_prefill.cu's
  const int idx = p.kv_len[s] - q_len + (t - p.query_start[s]);
  int lo = p.window > 0 ? max(0, idx - p.window + 1) : 0;
  const int hi_all = idx + 1;
  lo = lo + split * p.split_size;
  const int hi = min(hi_all, lo + p.split_size);

  const T* qt = static_cast<const T*>(p.q) + t * p.q_stride;
  const float qscale = p.scale * kLog2e;
  for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    q_s[h][d] = to_f32(qt[(qh0 + h) * D + d]) * qscale;
  }
  __syncthreads();

  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  const int32_t* pages = p.page_indices + p.page_indptr[s];
  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kPerLane];
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    m[h] = -FLT_MAX;
    l[h] = 0.f;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) acc[h][e] = 0.f;
  }

  for (int tile = lo + warp * 32; tile < hi; tile += kWarps * 32) {
    // Scores: lane = key.
    const int key = tile + lane;
    int64_t off = -1;
    if (key < hi) {
      const int page = pages[key / p.page_size];
      if (page >= 0) {
        off = page * p.page_stride + (key % p.page_size) * p.token_stride +
              static_cast<int64_t>(kvh) * D;
      }
    }
    float sc[kMaxGroup];
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) sc[h] = 0.f;
    if (off >= 0) {
      if constexpr (kFast) {
        // Issue 8 row loads (128 bytes) before using any: DRAM latency once per chunk.
#pragma unroll
        for (int c0 = 0; c0 < D; c0 += 64) {
          uint4 raw[8];
#pragma unroll
          for (int u = 0; u < 8; ++u) {
            raw[u] = c0 + 8 * u < D ? *reinterpret_cast<const uint4*>(kc + off + c0 + 8 * u) : make_uint4(0, 0, 0, 0);
          }
#pragma unroll
          for (int u = 0; u < 8; ++u) {
            if (c0 + 8 * u >= D) continue;
            const T* e = reinterpret_cast<const T*>(&raw[u]);
#pragma unroll
            for (int h = 0; h < kMaxGroup; ++h) {
              if (h < group) {
#pragma unroll
                for (int i = 0; i < 8; ++i) sc[h] += q_s[h][c0 + 8 * u + i] * to_f32(e[i]);
              }
            }
          }
        }
      } else {
#pragma unroll 4
        for (int d0 = 0; d0 < D; d0 += 8) {
          float kv[8];
          load8(kc + off + d0, kv);
#pragma unroll
          for (int h = 0; h < kMaxGroup; ++h) {
            if (h < group) {
#pragma unroll
              for (int i = 0; i < 8; ++i) sc[h] += q_s[h][d0 + i] * kv[i];
            }
          }
        }
      }
    }
    // Online softmax update per head (base 2).
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h >= group) continue;
      const float sv = off >= 0 ? sc[h] : -FLT_MAX;
      const float m_new = fmaxf(m[h], warp_max(sv));
      const float corr = exp2f(m[h] - m_new);
      const float pv = off >= 0 ? exp2f(sv - m_new) : 0.f;
      l[h] = l[h] * corr + warp_sum(pv);
      m[h] = m_new;
      p_s[warp][h][lane] = pv;
#pragma unroll
      for (int e = 0; e < kPerLane; ++e) acc[h][e] *= corr;
    }
    __syncwarp();
    // P·V: lanes own dims [lane * kPerLane, +kPerLane).
    const int n = min(32, hi - tile);
    if constexpr (kFast) {
      // 8 keys at a time: their V rows are loaded before any is used. Invalid
      // keys have p = 0 and read nothing.
      for (int j0 = 0; j0 < n; j0 += 8) {
        float v[8][kPerLane];
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          const int64_t o = __shfl_sync(0xffffffffu, off, j0 + u);
          const T* vr = vc + (o >= 0 ? o : 0) + lane * kPerLane;
#pragma unroll
          for (int e = 0; e < kPerLane; ++e) v[u][e] = o >= 0 ? to_f32(vr[e]) : 0.f;
        }
#pragma unroll
        for (int u = 0; u < 8; ++u) {
#pragma unroll
          for (int h = 0; h < kMaxGroup; ++h) {
            if (h >= group) continue;
            const float pj = p_s[warp][h][j0 + u];
#pragma unroll
            for (int e = 0; e < kPerLane; ++e) acc[h][e] += pj * v[u][e];
          }
        }
      }
    } else {
      for (int j = 0; j < n; ++j) {
        const int64_t o = __shfl_sync(0xffffffffu, off, j);
        if (o < 0) continue;
        float v[kPerLane];
        const T* vr = vc + o + lane * kPerLane;
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) v[e] = to_f32(vr[e]);
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) {
          if (h >= group) continue;
          const float pj = p_s[warp][h][j];
#pragma unroll
          for (int e = 0; e < kPerLane; ++e) acc[h][e] += pj * v[e];
        }
      }
    }
    __syncwarp();
  }

  // Merge the warps' states.
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    if (h >= group) continue;
    if (lane == 0) {
      m_s[warp][h] = m[h];
      l_s[warp][h] = l[h];
    }
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) acc_s[warp][h][lane * kPerLane + e] = acc[h][e];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < group * D; i += blockDim.x) {
    const int h = i / D, d = i % D;
    float mx = -FLT_MAX;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, m_s[w][h]);
    float lsum = 0.f, o = 0.f;
    for (int w = 0; w < kWarps; ++w) {
      const float f = exp2f(m_s[w][h] - mx);
      lsum += l_s[w][h] * f;
      o += acc_s[w][h][d] * f;
    }
    const int qh = qh0 + h;
    if (p.num_splits == 1) {
      T* out = static_cast<T*>(p.out) + t * p.out_stride + static_cast<int64_t>(qh) * D;
      out[d] = from_f32<T>(lsum > 0.f ? o / lsum : 0.f);
    } else {
      const int64_t base = (static_cast<int64_t>(t) * p.num_q_heads + qh) * p.num_splits + split;
      p.partial_out[base * D + d] = o;
      if (d == 0) {
        p.partial_ml[base * 2] = lsum > 0.f ? mx : -FLT_MAX;
        p.partial_ml[base * 2 + 1] = lsum;
      }
    }
  }
}

// grid (T, Hq), block D threads: merges the splits of one (token, head). The
// splits' (m, l) are read at once (one per thread) and reduced across the
// block, and the weighted sum over splits is unrolled so its loads overlap:
// a loop of dependent loads per split cost ~0.3 us each from L2.
template <typename T>
__global__ void attention_combine_kernel(AttnKernelParams p) {
  allow_dependent_launch();
  wait_prior_grid();
  __shared__ float m_s[kMaxAttentionSplits];  // split max, then its weight 2^(m - max)
  __shared__ float l_s[kMaxAttentionSplits];
  __shared__ float red_s[2][32];
  const int t = blockIdx.x, qh = blockIdx.y, d = threadIdx.x;
  const int lane = d & 31, warp = d >> 5, num_warps = blockDim.x >> 5;
  if (p.prefill_min_query > 0) {
    const int s = p.token_seq[t];
    if (p.query_start[s + 1] - p.query_start[s] >= p.prefill_min_query) return;
  }
  const int n = p.num_splits;
  const int64_t base = (static_cast<int64_t>(t) * p.num_q_heads + qh) * n;
  float mx = -FLT_MAX;
  for (int i = d; i < n; i += blockDim.x) {
    const float m = p.partial_ml[(base + i) * 2], l = p.partial_ml[(base + i) * 2 + 1];
    m_s[i] = m;
    l_s[i] = l;
    if (l > 0.f) mx = fmaxf(mx, m);
  }
  mx = warp_max(mx);
  if (lane == 0) red_s[0][warp] = mx;
  __syncthreads();
  mx = red_s[0][0];
  for (int w = 1; w < num_warps; ++w) mx = fmaxf(mx, red_s[0][w]);
  float lsum = 0.f;
  for (int i = d; i < n; i += blockDim.x) {
    const float f = l_s[i] > 0.f ? exp2f(m_s[i] - mx) : 0.f;  // an empty split weighs nothing
    m_s[i] = f;
    lsum += l_s[i] * f;
  }
  lsum = warp_sum(lsum);
  if (lane == 0) red_s[1][warp] = lsum;
  __syncthreads();
  lsum = 0.f;
  for (int w = 0; w < num_warps; ++w) lsum += red_s[1][w];
  float o = 0.f;
#pragma unroll 8
  for (int i = 0; i < n; ++i) {
    const float f = m_s[i];
    const float v = p.partial_out[(base + i) * p.head_dim + d];
    o += f != 0.f ? v * f : 0.f;  // an empty split's partial may be stale
  }
  T* out = static_cast<T*>(p.out) + t * p.out_stride + static_cast<int64_t>(qh) * p.head_dim;
  out[d] = from_f32<T>(lsum > 0.f ? o / lsum : 0.f);
}

int pick_group(int ratio) {
  for (int g = kMaxGroup; g >= 1; --g) {
    if (ratio % g == 0) return g;
  }
  return 1;
}

}  // namespace

void launch_attention_combine(const AttnKernelParams& p, cudaStream_t stream) {
  const dim3 grid(p.num_tokens, p.num_q_heads);
  if (p.type == ElemType::kBF16) {
    launch_pdl(attention_combine_kernel<__nv_bfloat16>, grid, p.head_dim, 0, stream, p);
  } else {
    launch_pdl(attention_combine_kernel<__half>, grid, p.head_dim, 0, stream, p);
  }
}

void launch_attention(const AttnKernelParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  const int ratio = p.num_q_heads / p.num_kv_heads;
  const int group = pick_group(ratio);
  dim3 grid(p.num_tokens, p.num_kv_heads * (ratio / group), p.num_splits);
  if (p.prefill_min_query > 0 && p.prefill_all) {
    launch_attention_prefill(p, stream);
    return;
  }
  auto run = [&](auto tag) {
    using T = decltype(tag);
    dispatch_head_dim(p.head_dim, [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      if (p.variant == 1) {
        launch_pdl(attention_kernel<T, D, true>, grid, kWarps * 32, 0, stream, p, group);
      } else {
        launch_pdl(attention_kernel<T, D, false>, grid, kWarps * 32, 0, stream, p, group);
      }
    });
    if (p.num_splits > 1) launch_attention_combine(p, stream);
  };
  // The backend checks is_attention_head_dim and a 16-bit type.
  if (p.type == ElemType::kBF16) {
    run(__nv_bfloat16{});
  } else {
    run(__half{});
  }
  if (p.prefill_min_query > 0) launch_attention_prefill(p, stream);
}

}  // namespace tandem::cuda

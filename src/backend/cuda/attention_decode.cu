// Paged attention for decode batches (every sequence has at most one query
// token): grid (sequence, kv-head group, split), 128 threads. The launch shape
// depends only on the batch's shape, never on the context lengths, so a decode
// step can be captured once and replayed (CUDA graphs): each block derives its
// key range from kv_len on the device and exits early when it is empty.
//
// Per tile of 128 keys: (A) each lane scores one key, with its whole K row
// (head_dim * 2 bytes) loaded in one go, against the block's query heads held in
// shared memory; (B) for P·V, thread (row r, chunk c) accumulates 8 head dims
// (one 16-byte V load) over keys r, r + R, ... with several loads in flight.
// The online softmax state is per block; splits write unnormalized partials that
// the combine kernel of attention.cu merges.
#include <algorithm>
#include <cfloat>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 128;    // keys per tile: one per thread in phase A
constexpr int kMaxGroup = 8;  // query heads per block
constexpr float kLog2e = 1.4426950408889634f;

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) attention_decode_kernel(AttnKernelParams p, int group) {
  allow_dependent_launch();
  wait_prior_grid();
  constexpr int kChunks = D / 8;             // 16-byte pieces of a row
  constexpr int kRows = kThreads / kChunks;  // keys in flight in phase B
  __shared__ __align__(16) float q_s[kMaxGroup][D];
  __shared__ float p_s[kMaxGroup][kTile];
  __shared__ int64_t off_s[kTile];
  __shared__ float red_s[kThreads / 32][kMaxGroup];
  __shared__ float acc_s[kRows][kMaxGroup][D];

  const int s = blockIdx.x;
  const int t = p.query_start[s];
  if (p.query_start[s + 1] - t != 1) return;  // no query this step (the backend checks <= 1)
  const int ratio = p.num_q_heads / p.num_kv_heads;
  const int groups_per_kv = ratio / group;
  const int kvh = blockIdx.y / groups_per_kv;
  const int qh0 = kvh * ratio + (blockIdx.y % groups_per_kv) * group;
  const int split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  const int kv_len = p.kv_len[s];
  const int lo_all = p.window > 0 ? max(0, kv_len - p.window) : 0;
  const int chunk = (kv_len - lo_all + p.num_splits - 1) / p.num_splits;
  const int lo = lo_all + split * chunk;
  const int hi = min(kv_len, lo + chunk);

  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  const int32_t* pages = p.page_indices + p.page_indptr[s];
  const int row = tid / kChunks, ch = tid % kChunks;
  // Cache offset of key `key`'s row for this kv head, -1 if none.
  auto key_offset = [&](int key) -> int64_t {
    if (key >= hi) return -1;
    const int page = pages[key / p.page_size];
    return page >= 0 ? page * p.page_stride + (key % p.page_size) * p.token_stride + static_cast<int64_t>(kvh) * D
                     : -1;
  };
  // The first tile's page lookup is issued before the query loads and the
  // barrier, so the two latencies overlap (short contexts are one tile).
  int64_t next_off = key_offset(lo + tid);

  // Queries: 16-byte loads, at most one per thread (group * D / 8 <= 128).
  const T* qt = static_cast<const T*>(p.q) + t * p.q_stride + static_cast<int64_t>(qh0) * D;
  const float qscale = p.scale * kLog2e;
  for (int i = tid; i < group * kChunks; i += kThreads) {
    const uint4 raw = *reinterpret_cast<const uint4*>(qt + 8 * i);
    const T* e = reinterpret_cast<const T*>(&raw);
    float* dst = &q_s[0][0] + 8 * i;  // q_s rows are D floats: the group's heads are contiguous
#pragma unroll
    for (int j = 0; j < 8; ++j) dst[j] = to_f32(e[j]) * qscale;
  }
  __syncthreads();

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][8];
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    m[h] = -FLT_MAX;
    l[h] = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[h][e] = 0.f;
  }

  for (int tile = lo; tile < hi; tile += kTile) {
    // (A) scores, lane = key.
    const int64_t off = next_off;
    off_s[tid] = off;
    float sc[kMaxGroup];
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) sc[h] = 0.f;
    if (off >= 0) {
      uint4 raw[kChunks];
#pragma unroll
      for (int c = 0; c < kChunks; ++c) raw[c] = *reinterpret_cast<const uint4*>(kc + off + 8 * c);
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const T* e = reinterpret_cast<const T*>(&raw[c]);
        float kf[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) kf[i] = to_f32(e[i]);
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) {
          if (h < group) {
            const float4 a = *reinterpret_cast<const float4*>(&q_s[h][8 * c]);
            const float4 b = *reinterpret_cast<const float4*>(&q_s[h][8 * c + 4]);
            sc[h] += a.x * kf[0] + a.y * kf[1] + a.z * kf[2] + a.w * kf[3] + b.x * kf[4] + b.y * kf[5] +
                     b.z * kf[6] + b.w * kf[7];
          }
        }
      }
    }
    // Block max per head, then the new running max and p = 2^(s - m).
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h >= group) continue;
      const float wm = warp_max(off >= 0 ? sc[h] : -FLT_MAX);
      if (lane == 0) red_s[warp][h] = wm;
    }
    __syncthreads();
    float corr[kMaxGroup];
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      corr[h] = 1.f;
      if (h >= group) continue;
      float tm = red_s[0][h];
#pragma unroll
      for (int w = 1; w < kThreads / 32; ++w) tm = fmaxf(tm, red_s[w][h]);
      const float m_new = fmaxf(m[h], tm);
      corr[h] = exp2f(m[h] - m_new);
      m[h] = m_new;
      p_s[h][tid] = off >= 0 ? exp2f(sc[h] - m_new) : 0.f;
    }
    __syncthreads();  // p_s, off_s complete; red_s free again
    // l: every thread sums the tile's p (same order everywhere: identical state).
#pragma unroll
    for (int h = 0; h < kMaxGroup; ++h) {
      if (h >= group) continue;
      float ps = warp_sum(p_s[h][lane] + p_s[h][lane + 32] + p_s[h][lane + 64] + p_s[h][lane + 96]);
      l[h] = l[h] * corr[h] + ps;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[h][e] *= corr[h];
    }
    if (tile + kTile < hi) next_off = key_offset(tile + kTile + tid);
    // (B) P·V: keys row, row + kRows, ...; 4 V loads in flight.
    const int n = min(kTile, hi - tile);
    for (int j0 = row; j0 < n; j0 += 4 * kRows) {
      uint4 raw[4];
      float pj[4][kMaxGroup];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int j = j0 + u * kRows;
        const int64_t o = j < n ? off_s[j] : -1;
        raw[u] = o >= 0 ? *reinterpret_cast<const uint4*>(vc + o + 8 * ch) : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int h = 0; h < kMaxGroup; ++h) pj[u][h] = (h < group && o >= 0) ? p_s[h][j] : 0.f;
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const T* e = reinterpret_cast<const T*>(&raw[u]);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const float v = to_f32(e[i]);
#pragma unroll
          for (int h = 0; h < kMaxGroup; ++h) acc[h][i] += pj[u][h] * v;
        }
      }
    }
    __syncthreads();  // p_s / off_s are rewritten by the next tile
  }

  // Sum the kRows partial accumulators of each (head, dim).
#pragma unroll
  for (int h = 0; h < kMaxGroup; ++h) {
    if (h >= group) continue;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc_s[row][h][8 * ch + e] = acc[h][e];
  }
  __syncthreads();
  for (int i = tid; i < group * D; i += kThreads) {
    const int h = i / D, d = i % D;
    float o = 0.f;
#pragma unroll
    for (int r = 0; r < kRows; ++r) o += acc_s[r][h][d];
    const int qh = qh0 + h;
    // m and l are the same in every thread; pick head h's without a dynamic register index.
    float mh = 0.f, lh = 0.f;
#pragma unroll
    for (int k = 0; k < kMaxGroup; ++k) {
      if (k == h) {
        mh = m[k];
        lh = l[k];
      }
    }
    if (p.num_splits == 1) {
      T* out = static_cast<T*>(p.out) + t * p.out_stride + static_cast<int64_t>(qh) * D;
      out[d] = from_f32<T>(lh > 0.f ? o / lh : 0.f);
    } else {
      const int64_t base = (static_cast<int64_t>(t) * p.num_q_heads + qh) * p.num_splits + split;
      p.partial_out[base * D + d] = o;
      if (d == 0) {
        p.partial_ml[base * 2] = lh > 0.f ? mh : -FLT_MAX;
        p.partial_ml[base * 2 + 1] = lh;
      }
    }
  }
}

int pick_group(int ratio) {
  for (int g = kMaxGroup; g >= 1; --g) {
    if (ratio % g == 0) return g;
  }
  return 1;
}

}  // namespace

int attention_decode_splits(int num_seqs, int num_q_heads, int num_kv_heads, int max_kv_len, int num_sms) {
  const int ratio = num_q_heads / num_kv_heads;
  const int base = num_seqs * num_kv_heads * (ratio / pick_group(ratio));
  int splits = std::min((2 * num_sms + base - 1) / base, 32);
  // A known longest context caps the splits at one per 64 keys; unknown (0, a
  // captured graph) keeps the shape-only count (empty splits exit at once).
  if (max_kv_len > 0) splits = std::min(splits, (max_kv_len + 63) / 64);
  return std::max(splits, 1);
}

void launch_attention_decode(const AttnKernelParams& p, cudaStream_t stream) {
  if (p.num_seqs == 0) return;
  const int ratio = p.num_q_heads / p.num_kv_heads;
  const int group = pick_group(ratio);
  const dim3 grid(p.num_seqs, p.num_kv_heads * (ratio / group), p.num_splits);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    dispatch_head_dim(p.head_dim, [&](auto dim) {
      launch_pdl(attention_decode_kernel<T, decltype(dim)::value>, grid, kThreads, 0, stream, p, group);
    });
  };
  if (p.type == ElemType::kBF16) {
    run(__nv_bfloat16{});
  } else {
    run(__half{});
  }
  if (p.num_splits > 1) launch_attention_combine(p, stream);
}

}  // namespace tandem::cuda

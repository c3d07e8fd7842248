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
// The first V loads of a tile are issued with its K loads (they need only the
// page offsets), so a short context costs one round trip to memory for K and V.
// The online softmax state is per block; splits write unnormalized partials.
// With p.split_counters, the last block of a (sequence, head group) to finish
// merges them (a counter per pair, reset by that block: no second kernel);
// without, the combine kernel of attention.cu does.
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

// Merges the num_splits partials of query heads qh0 .. qh0 + group - 1 of token
// t, as attention_combine_kernel does: weights 2^(m_i - max) over the splits
// that saw keys, out = sum_i w_i o_i / sum_i w_i l_i. The partials come from
// other blocks: read through L2 (ld.cg).
template <typename T, int D, int kG, int kBatch>
__device__ void merge_splits(const AttnKernelParams& p, int t, int qh0, int group) {
  static_assert(kMaxDecodeSplits <= kMaxAttentionSplits && kMaxDecodeSplits <= 32, "one split per lane below");
  __shared__ float w_s[kG][kMaxDecodeSplits];
  __shared__ float lsum_s[kG];
  const int n = p.num_splits, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int h = warp; h < group; h += kThreads / 32) {  // a warp per head, a lane per split
    const int64_t base = (static_cast<int64_t>(t) * p.num_q_heads + qh0 + h) * n;
    const float m = lane < n ? __ldcg(p.partial_ml + (base + lane) * 2) : -FLT_MAX;
    const float l = lane < n ? __ldcg(p.partial_ml + (base + lane) * 2 + 1) : 0.f;
    const float mx = warp_max(l > 0.f ? m : -FLT_MAX);
    const float f = l > 0.f ? exp2f(m - mx) : 0.f;  // an empty split weighs nothing
    if (lane < n) w_s[h][lane] = f;
    const float lsum = warp_sum(l * f);
    if (lane == 0) lsum_s[h] = lsum;
  }
  __syncthreads();
  // A thread per 4 dims of a head: n float4 loads, 8 in flight at once (an empty
  // split's partial may be stale: loaded, but weighed by nothing).
  for (int i = threadIdx.x; i < group * (D / 4); i += kThreads) {
    const int h = i / (D / 4), d = 4 * (i % (D / 4));
    const int qh = qh0 + h;
    const float4* po =
        reinterpret_cast<const float4*>(p.partial_out + (static_cast<int64_t>(t) * p.num_q_heads + qh) * n * D + d);
    float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
    // kBatch partials loaded before any is used: 16 make two L2 round trips
    // for 32 splits, 8 four (the sum keeps the split order).
    for (int j0 = 0; j0 < n; j0 += kBatch) {
      float4 v[kBatch];
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        if (j0 + j < n) v[j] = __ldcg(po + (j0 + j) * (D / 4));
      }
#pragma unroll
      for (int j = 0; j < kBatch; ++j) {
        const float f = j0 + j < n ? w_s[h][j0 + j] : 0.f;
        if (f != 0.f) {
          o.x += v[j].x * f;
          o.y += v[j].y * f;
          o.z += v[j].z * f;
          o.w += v[j].w * f;
        }
      }
    }
    const float inv = lsum_s[h] > 0.f ? 1.f / lsum_s[h] : 0.f;
    T* out = static_cast<T*>(p.out) + t * p.out_stride + static_cast<int64_t>(qh) * D + d;
    out[0] = from_f32<T>(o.x * inv);
    out[1] = from_f32<T>(o.y * inv);
    out[2] = from_f32<T>(o.z * inv);
    out[3] = from_f32<T>(o.w * inv);
  }
}

// Element d < rot_dim of a rotate-half RoPE row, rounded to T as launch_rope
// stores it: pair (j, j + half), angle pos * inv_freq[j].
template <typename T>
__device__ __forceinline__ float rotated(const T* row, int d, int half, float pos, const float* inv_freq) {
  const int j = d < half ? d : d - half;
  float s, c;
  sincosf(pos * inv_freq[j], &s, &c);
  const float x1 = to_f32(row[j]), x2 = to_f32(row[j + half]);
  return to_f32(from_f32<T>(d < half ? x1 * c - x2 * s : x2 * c + x1 * s));
}

// The new token t's K (rotated) and V rows of kv head kvh into its cache slot,
// and into k_row / v_row (shared memory) for this block's own scores; false
// when the token has no slot (nothing written).
template <typename T, int D>
__device__ bool write_new_kv(const RopeKernelParams& r, int t, int kvh, float pos, T* k_row, T* v_row) {
  const int slot = r.slot_mapping[t];
  if (slot < 0) return false;
  const int64_t dst = (slot / r.page_size) * r.page_stride + (slot % r.page_size) * r.token_stride +
                      static_cast<int64_t>(kvh) * D;
  const T* k = static_cast<const T*>(r.k) + t * r.k_stride + static_cast<int64_t>(kvh) * D;
  const T* v = static_cast<const T*>(r.v) + t * r.v_stride + static_cast<int64_t>(kvh) * D;
  T* kc = static_cast<T*>(r.k_cache) + dst;
  T* vc = static_cast<T*>(r.v_cache) + dst;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    const T kd = d < r.rot_dim ? from_f32<T>(rotated<T>(k, d, r.rot_dim / 2, pos, r.inv_freq)) : k[d];
    const T vd = v[d];
    kc[d] = kd;
    vc[d] = vd;
    k_row[d] = kd;
    v_row[d] = vd;
  }
  return true;
}

// G > 0: exactly G query heads a block, known at compile time (the common
// GQA ratios), so the per-head loops below are only G long; G == 0: up to
// kMaxGroup, `group_arg` at run time. The kernel runs once per block, so its
// code is fetched cold on every SM each layer: shorter unrolled head loops are
// less to fetch (91 KB of code for the general kernel, 56 KB for G = 4;
// docs/cuda-decode-history.md, session 8).
template <typename T, int D, int G>
__global__ void __launch_bounds__(kThreads) attention_decode_kernel(AttnKernelParams p, int group_arg) {
  constexpr int kG = G > 0 ? G : kMaxGroup;
  const int group = G > 0 ? G : group_arg;
  allow_dependent_launch();
  // With early loads the block reads the step's metadata and the first tile's
  // K/V rows before waiting for the kernel before it (under PDL: while that
  // one drains). All of it was written before the step began (the host syncs
  // the stream after uploading the step's metadata), except the new token's
  // row, which is reloaded after the wait.
  const bool early = p.early_loads;
  if (!early) wait_prior_grid();
  constexpr int kChunks = D / 8;             // 16-byte pieces of a row
  constexpr int kRows = kThreads / kChunks;  // keys in flight in phase B
  __shared__ __align__(16) float q_s[kG][D];
  __shared__ float p_s[kG][kTile];
  __shared__ int64_t off_s[kTile];
  __shared__ float red_s[kThreads / 32][kG];
  __shared__ float acc_s[kRows][kG][D];

  const int s = blockIdx.x;
  const int t = p.query_start[s];
  if (p.query_start[s + 1] - t != 1) {  // no query this step (the backend checks <= 1)
    if (early) wait_prior_grid();
    return;
  }
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
  // A tile's K row (lane = key) and its first 4 V loads (they need only the
  // page offsets in off_s, so a short context costs one round trip for both).
  uint4 raw[kChunks];
  uint4 vfirst[4];
  auto load_tile = [&](int64_t off, int n) {
    if (off >= 0) {
#pragma unroll
      for (int c = 0; c < kChunks; ++c) raw[c] = *reinterpret_cast<const uint4*>(kc + off + 8 * c);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int j = row + u * kRows;
      const int64_t o = j < n ? off_s[j] : -1;
      vfirst[u] = o >= 0 ? *reinterpret_cast<const uint4*>(vc + o + 8 * ch) : make_uint4(0, 0, 0, 0);
    }
  };
  const bool preloaded = early && lo < hi;
  if (preloaded) {
    off_s[tid] = next_off;
    __syncthreads();
    load_tile(next_off, min(kTile, hi - lo));
  }
  if (early) wait_prior_grid();

  // Queries: 16-byte loads, at most one per thread (group * D / 8 <= 128).
  const T* qt = static_cast<const T*>(p.q) + t * p.q_stride + static_cast<int64_t>(qh0) * D;
  const float qscale = p.scale * kLog2e;
  // With fused RoPE, the block holding the new token writes its rows and
  // keeps them here for its own scores (no reload from L2 after the barrier).
  __shared__ __align__(16) T new_k_s[D];
  __shared__ __align__(16) T new_v_s[D];
  bool new_in_smem = false;  // the same in every thread of the block
  if (p.rope.positions != nullptr) {
    // Fused RoPE: the new token's K and V rows go into the cache before this
    // block reads them (the barrier below orders them); blocks of other head
    // groups of the same kv head write the same values.
    const float pos = static_cast<float>(p.rope.positions[t]);
    if (kv_len - 1 >= lo && kv_len - 1 < hi)
      new_in_smem = write_new_kv<T, D>(p.rope, t, kvh, pos, new_k_s, new_v_s) && p.lean_tail;
    const int half = p.rope.rot_dim / 2;
    for (int i = tid; i < group * D; i += kThreads) {
      const int h = i / D, d = i % D;
      const T* qrow = qt + h * D;
      q_s[h][d] = (d < p.rope.rot_dim ? rotated<T>(qrow, d, half, pos, p.rope.inv_freq) : to_f32(qrow[d])) * qscale;
    }
  } else {
    for (int i = tid; i < group * kChunks; i += kThreads) {
      const uint4 raw = *reinterpret_cast<const uint4*>(qt + 8 * i);
      const T* e = reinterpret_cast<const T*>(&raw);
      float* dst = &q_s[0][0] + 8 * i;  // q_s rows are D floats: the group's heads are contiguous
#pragma unroll
      for (int j = 0; j < 8; ++j) dst[j] = to_f32(e[j]) * qscale;
    }
  }
  __syncthreads();
  if (preloaded) {
    // The new token's K/V row was written after the early loads (by this block
    // with fused RoPE, else by the kernel before): take this block's copy, or
    // load it again from L2 (a line this SM cached early may be stale).
    const int fresh = kv_len - 1 - lo;
    if (fresh >= 0 && fresh < min(kTile, hi - lo)) {
      const uint4* k_new = reinterpret_cast<const uint4*>(new_k_s);
      const uint4* v_new = reinterpret_cast<const uint4*>(new_v_s);
      if (tid == fresh && next_off >= 0) {
#pragma unroll
        for (int c = 0; c < kChunks; ++c)
          raw[c] = new_in_smem ? k_new[c] : __ldcg(reinterpret_cast<const uint4*>(kc + next_off + 8 * c));
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        if (row + u * kRows == fresh && off_s[fresh] >= 0)
          vfirst[u] = new_in_smem ? v_new[ch] : __ldcg(reinterpret_cast<const uint4*>(vc + off_s[fresh] + 8 * ch));
      }
    }
  }

  float m[kG], l[kG], acc[kG][8];
#pragma unroll
  for (int h = 0; h < kG; ++h) {
    m[h] = -FLT_MAX;
    l[h] = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[h][e] = 0.f;
  }

  for (int tile = lo; tile < hi; tile += kTile) {
    // (A) scores, lane = key.
    const int64_t off = next_off;
    const int n = min(kTile, hi - tile);
    if (!preloaded || tile != lo) {
      off_s[tid] = off;
      __syncthreads();  // off_s complete: the first V loads go out with the K loads
      load_tile(off, n);
    }
    float sc[kG];
#pragma unroll
    for (int h = 0; h < kG; ++h) sc[h] = 0.f;
    if (off >= 0) {
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const T* e = reinterpret_cast<const T*>(&raw[c]);
        float kf[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) kf[i] = to_f32(e[i]);
#pragma unroll
        for (int h = 0; h < kG; ++h) {
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
    for (int h = 0; h < kG; ++h) {
      if (h >= group) continue;
      const float wm = warp_max(off >= 0 ? sc[h] : -FLT_MAX);
      if (lane == 0) red_s[warp][h] = wm;
    }
    __syncthreads();
    float corr[kG];
#pragma unroll
    for (int h = 0; h < kG; ++h) {
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
    __syncthreads();  // p_s complete; red_s free again
    // l: every thread sums the tile's p (same order everywhere: identical state).
#pragma unroll
    for (int h = 0; h < kG; ++h) {
      if (h >= group) continue;
      float ps = warp_sum(p_s[h][lane] + p_s[h][lane + 32] + p_s[h][lane + 64] + p_s[h][lane + 96]);
      l[h] = l[h] * corr[h] + ps;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[h][e] *= corr[h];
    }
    if (tile + kTile < hi) next_off = key_offset(tile + kTile + tid);
    // (B) P·V: keys row, row + kRows, ...; 4 V loads in flight (the first 4
    // already loaded with K).
    for (int j0 = row; j0 < n; j0 += 4 * kRows) {
      uint4 vr[4];
      float pj[4][kG];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int j = j0 + u * kRows;
        const int64_t o = j < n ? off_s[j] : -1;
        if (j0 == row) {
          vr[u] = vfirst[u];
        } else {
          vr[u] = o >= 0 ? *reinterpret_cast<const uint4*>(vc + o + 8 * ch) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int h = 0; h < kG; ++h) pj[u][h] = (h < group && o >= 0) ? p_s[h][j] : 0.f;
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const T* e = reinterpret_cast<const T*>(&vr[u]);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const float v = to_f32(e[i]);
#pragma unroll
          for (int h = 0; h < kG; ++h) acc[h][i] += pj[u][h] * v;
        }
      }
    }
    __syncthreads();  // p_s / off_s are rewritten by the next tile
  }

  // Sum the kRows partial accumulators of each (head, dim).
#pragma unroll
  for (int h = 0; h < kG; ++h) {
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
    for (int k = 0; k < kG; ++k) {
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
  if (p.num_splits == 1 || p.split_counters == nullptr) return;

  // The last of the group's split blocks merges (threadfence reduction: every
  // writer fences before the count, so the last counter sees all partials).
  __shared__ bool last_s;
  __threadfence();
  __syncthreads();
  int* counter = p.split_counters + s * gridDim.y + blockIdx.y;
  if (tid == 0) last_s = atomicAdd(counter, 1) == p.num_splits - 1;
  __syncthreads();
  if (!last_s) return;
  __threadfence();
  if (p.lean_tail) merge_splits<T, D, kG, 16>(p, t, qh0, group);
  else merge_splits<T, D, kG, 8>(p, t, qh0, group);
  if (tid == 0) *counter = 0;  // ready for the next step (and graph replay)
}

int pick_group(int ratio) {
  for (int g = kMaxGroup; g >= 1; --g) {
    if (ratio % g == 0) return g;
  }
  return 1;
}

}  // namespace

int attention_decode_splits(int num_seqs, int num_q_heads, int num_kv_heads, int max_kv_len, int num_sms,
                            int max_splits) {
  const int ratio = num_q_heads / num_kv_heads;
  const int base = num_seqs * num_kv_heads * (ratio / pick_group(ratio));
  int splits = std::min((2 * num_sms + base - 1) / base, std::min(max_splits, kMaxDecodeSplits));
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
      constexpr int kD = decltype(dim)::value;
      if (p.exact_group && group == 4) {
        launch_pdl(attention_decode_kernel<T, kD, 4>, grid, kThreads, 0, stream, p, group);
      } else if (p.exact_group && group == 7) {
        launch_pdl(attention_decode_kernel<T, kD, 7>, grid, kThreads, 0, stream, p, group);
      } else if (p.exact_group && group == 8) {
        launch_pdl(attention_decode_kernel<T, kD, 8>, grid, kThreads, 0, stream, p, group);
      } else {
        launch_pdl(attention_decode_kernel<T, kD, 0>, grid, kThreads, 0, stream, p, group);
      }
    });
  };
  if (p.type == ElemType::kBF16) {
    run(__nv_bfloat16{});
  } else {
    run(__half{});
  }
  if (p.num_splits > 1 && p.split_counters == nullptr) launch_attention_combine(p, stream);
}

}  // namespace tandem::cuda

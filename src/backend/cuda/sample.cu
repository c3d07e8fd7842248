// Sampling on the GPU with the semantics of src/sampling/sampler.cpp, so that
// only token ids cross to the host. One block of 1024 threads per draw:
//   copy the draw's logits row to scratch -> penalties (banned -> -inf,
//   repetition, presence/frequency) -> greedy argmax (first index of the max),
//   or: weights w = exp((x - max) / T) -> top-k (k-th largest by a bitwise
//   search over order-preserving keys; ties at the cut kept in ascending id
//   order) -> top-p (the shortest prefix of the (logit desc, id asc) order whose
//   mass reaches p, by the same search over masses) -> min-p (w >= min_p, as
//   the kept maximum has w = 1) -> the first id whose running normalized mass
//   exceeds u, walking ids in ascending order. u comes from the same
//   counter-based hash of (seed, choice, output index) as the CPU sampler.
// Every reduction has a fixed order (no atomics): a draw depends only on its own
// row and key, never on the rest of the batch. Thread t owns the contiguous
// ids [t * chunk, (t + 1) * chunk), so ordered scans are a per-thread walk plus
// a scan over threads. Weights and sums use double where the CPU does.
#include <cfloat>
#include <climits>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// = sample_uniform() of sampling/sampler.cpp.
__device__ double uniform_of(uint64_t seed, int choice_index, int output_index) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<uint64_t>(choice_index));
  h = splitmix64(h ^ (static_cast<uint64_t>(output_index) << 20));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// Order-preserving key: a < b (floats, no NaN) <=> key(a) < key(b).
__device__ __forceinline__ uint32_t order_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <typename V>
__device__ __forceinline__ V warp_total(V v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return __shfl_sync(0xffffffffu, v, 0);  // one value for every lane
}

// Block sum in a fixed order; every thread gets the same value.
template <typename V>
__device__ V block_total(V v, V* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_total(v);
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  return warp_total(lane < kWarps ? sh[lane] : V(0));
}

// Exclusive prefix over threads (thread order = id order); *total gets the sum.
template <typename V>
__device__ V block_exclusive(V v, V* sh, V* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  V inc = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const V n = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += n;
  }
  __syncthreads();
  if (lane == 31) sh[warp] = inc;
  __syncthreads();
  V base = 0, all = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) base += sh[w];
    all += sh[w];
  }
  *total = all;
  return base + inc - v;
}

// (value, first index) of the block's maximum; every thread gets it. NaN never wins.
__device__ void block_argmax(float* best, int* best_i, float* sh_f, int* sh_i) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float b = *best;
  int bi = *best_i;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, b, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > b || (ov == b && oi < bi)) b = ov, bi = oi;
  }
  if (lane == 0) sh_f[warp] = b, sh_i[warp] = bi;
  __syncthreads();
  b = sh_f[0];
  bi = sh_i[0];
  for (int k = 1; k < kWarps; ++k) {
    if (sh_f[k] > b || (sh_f[k] == b && sh_i[k] < bi)) b = sh_f[k], bi = sh_i[k];
  }
  *best = b;
  *best_i = bi;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleKernelParams p) {
  __shared__ double sh_d[kWarps];
  __shared__ int sh_i[kWarps];
  __shared__ float sh_f[kWarps];
  __shared__ int sh_pair[2][kWarps];
  const SampleKernelRow R = p.rows[blockIdx.x];
  const int V = p.vocab, tid = threadIdx.x;
  const float* src = p.logits + static_cast<int64_t>(R.logits_row) * p.logits_stride;
  if (R.temperature < kSampleGreedyEpsilon && R.penalty_begin == R.penalty_end) {
    // Greedy without penalties (the common decode case): one coalesced pass over
    // the row, no scratch copy. Same answer as the general path below.
    float best = -INFINITY;
    int best_i = INT_MAX;
    for (int i = tid; i < V; i += kThreads) {
      const float v = src[i];
      if (v > best) best = v, best_i = i;  // ascending i per thread: first index kept on ties
    }
    block_argmax(&best, &best_i, sh_f, sh_i);
    if (tid == 0) p.out_ids[blockIdx.x] = best == -INFINITY || best_i == INT_MAX ? 0 : best_i;
    return;
  }
  char* row_scratch = static_cast<char*>(p.scratch) + static_cast<int64_t>(blockIdx.x) * p.scratch_row_bytes;
  double* wd = reinterpret_cast<double*>(row_scratch);  // weights exp((x - max) / T), as the CPU's double
  float* x = reinterpret_cast<float*>(wd + V);           // penalized logits
  for (int i = tid; i < V; i += kThreads) x[i] = src[i];
  __syncthreads();
  // Penalties: ids are distinct within a draw, so each is touched by one thread.
  for (int j = R.penalty_begin + tid; j < R.penalty_end; j += kThreads) {
    const SamplePenalty e = p.penalties[j];
    if (e.id < 0 || e.id >= V) continue;
    float v = x[e.id];
    if (e.flags & kSampleBanned) {
      v = -INFINITY;
    } else {
      if ((e.flags & kSampleSeen) && R.repetition_penalty != 1.0f)
        v = v > 0 ? v / R.repetition_penalty : v * R.repetition_penalty;
      if (e.output_count > 0 && (R.presence_penalty != 0.0f || R.frequency_penalty != 0.0f))
        // No fused multiply-add: the CPU rounds the product first.
        v = __fsub_rn(v, __fadd_rn(__fmul_rn(R.frequency_penalty, static_cast<float>(e.output_count)),
                                   R.presence_penalty));
    }
    x[e.id] = v;
  }
  __syncthreads();

  const int chunk = (V + kThreads - 1) / kThreads;
  const int b = min(V, tid * chunk), e = min(V, b + chunk);

  // Greedy, and the max for the weights: (value, first index).
  float best = -INFINITY;
  int best_i = INT_MAX;
  for (int i = b; i < e; ++i) {
    const float v = x[i];
    if (v > best || (v == best && i < best_i)) best = v, best_i = i;  // NaN never wins
  }
  block_argmax(&best, &best_i, sh_f, sh_i);
  if (best_i == INT_MAX) best_i = 0;  // all NaN
  if (R.temperature < kSampleGreedyEpsilon || best == -INFINITY) {
    // Everything banned: the CPU sampler keeps token 0 too.
    if (tid == 0) p.out_ids[blockIdx.x] = best == -INFINITY ? 0 : best_i;
    return;
  }
  const float m = best, inv_t = 1.0f / R.temperature;
  for (int i = b; i < e; ++i) wd[i] = exp(static_cast<double>((x[i] - m) * inv_t));
  // (wd is read back only by the thread that wrote it: no barrier needed.)

  // top-k: kt = the largest key with count(key >= kt) >= k; of the ties at kt,
  // the first need_k (by id) stay.
  bool use_k = false;
  uint32_t kt = 0;
  int need_k = INT_MAX, tie_base_k = 0;
  auto top_k_cut = [&](int k_keep) {
    kt = 0;
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t cand = kt | (1u << bit);
      int c = 0;
      for (int i = b; i < e; ++i) c += order_key(x[i]) >= cand;
      if (block_total(c, sh_i) >= k_keep) kt = cand;
    }
    int above = 0, ties = 0;
    for (int i = b; i < e; ++i) {
      const uint32_t k = order_key(x[i]);
      above += k > kt;
      ties += k == kt;
    }
    need_k = k_keep - block_total(above, sh_i);
    int ties_total;
    tie_base_k = block_exclusive(ties, sh_i, &ties_total);
  };
  if (R.top_k > 0 && R.top_k < V) {
    top_k_cut(R.top_k);
    use_k = true;
  }
  // Walks this thread's ids in order, calling f(i, key, weight) for the top-k keeps.
  auto for_kept_k = [&](auto&& f) {
    int tie = tie_base_k;
    for (int i = b; i < e; ++i) {
      const uint32_t k = order_key(x[i]);
      if (use_k) {
        if (k < kt) continue;
        if (k == kt && tie++ >= need_k) continue;
      }
      f(i, k, wd[i]);
    }
  };

  // top-p over the top-k survivors: position n of the (logit desc, id asc) order
  // stays iff n == 0 or the mass before it is < p * total.
  const bool use_p = R.top_p < 1.0f;
  uint32_t pt = 0;
  double above_p = 0, target_p = 0;
  int tie_base_p = 0;
  if (use_p) {
    double part = 0;
    for_kept_k([&](int, uint32_t, double wi) { part += wi; });
    double total = block_total(part, sh_d);
    if (!use_k && V > 1024) {
      // As the CPU sampler: top-p alone first tries the best 1024 tokens; when
      // they hold p of the mass, they are the candidates (and their mass the total).
      top_k_cut(1024);
      use_k = true;
      double head = 0;
      for_kept_k([&](int, uint32_t, double wi) { head += wi; });
      head = block_total(head, sh_d);
      if (head >= static_cast<double>(R.top_p) * total) {
        total = head;
      } else {
        use_k = false;
      }
    }
    target_p = static_cast<double>(R.top_p) * total;
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t cand = pt | (1u << bit);
      double s = 0;
      for_kept_k([&](int, uint32_t k, double wi) { s += k >= cand ? wi : 0.0; });
      if (block_total(s, sh_d) >= target_p) pt = cand;
    }
    double a = 0;
    int ties = 0;
    for_kept_k([&](int, uint32_t k, double wi) {
      a += k > pt ? wi : 0.0;
      ties += k == pt;
    });
    above_p = block_total(a, sh_d);
    int ties_total;
    tie_base_p = block_exclusive(ties, sh_i, &ties_total);
  }
  const float min_p = R.min_p;
  // The final keep set, walked in id order; f(i, w) gets the CPU's float weight.
  auto for_kept = [&](auto&& f) {
    int tie = tie_base_p;
    for_kept_k([&](int i, uint32_t k, double wi) {
      if (use_p) {
        if (k < pt) return;
        if (k == pt) {
          const int j = tie++;
          // Position above-count + j: kept when first overall or the mass before it is < p * total.
          if (!(above_p == 0 && j == 0) && !(above_p + static_cast<double>(j) * wi < target_p)) return;
        }
      }
      const float wf = static_cast<float>(wi);
      if (min_p > 0.0f && wf < min_p) return;
      f(i, wf);
    });
  };
  // Normalize as the CPU does (float probabilities, double sums), then draw.
  double part = 0;
  for_kept([&](int, float wi) { part += wi; });
  const double sum = block_total(part, sh_d);
  const float inv = static_cast<float>(1.0 / sum);
  double mine = 0;
  int last = -1;
  for_kept([&](int i, float wi) {
    mine += static_cast<double>(wi * inv);
    if (wi * inv > 0.0f) last = i;  // as the CPU's last_nonzero
  });
  double total;
  const double base = block_exclusive(mine, sh_d, &total);
  const double u = uniform_of(R.seed, R.choice_index, R.output_index);
  // The thread whose mass range holds u walks its ids; if rounding leaves u past
  // the total, the last kept id (the largest thread with one) wins.
  int found = INT_MAX;
  if (u >= base && u < base + mine) {
    double cum = base;
    for_kept([&](int i, float wi) {
      if (found != INT_MAX) return;
      cum += static_cast<double>(wi * inv);
      if (u < cum) found = i;
    });
    if (found == INT_MAX) found = last;  // u in range but the walk rounded differently
  }
  // Two block reductions: the smallest found id, the largest last id.
  {
    const int lane = tid & 31, warp = tid >> 5;
    int f = found, l = last;
    for (int o = 16; o > 0; o >>= 1) {
      f = min(f, __shfl_xor_sync(0xffffffffu, f, o));
      l = max(l, __shfl_xor_sync(0xffffffffu, l, o));
    }
    __syncthreads();
    if (lane == 0) sh_pair[0][warp] = f, sh_pair[1][warp] = l;
    __syncthreads();
    if (tid == 0) {
      for (int k = 1; k < kWarps; ++k) {
        f = min(f, sh_pair[0][k]);
        l = max(l, sh_pair[1][k]);
      }
      f = min(f, sh_pair[0][0]);
      l = max(l, sh_pair[1][0]);
      p.out_ids[blockIdx.x] = f != INT_MAX ? f : (l >= 0 ? l : 0);
    }
  }
}

}  // namespace

void launch_sample(const SampleKernelParams& p, cudaStream_t stream) {
  if (p.num_rows == 0) return;
  sample_kernel<<<p.num_rows, kThreads, 0, stream>>>(p);
}

}  // namespace tandem::cuda

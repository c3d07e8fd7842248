// Paged attention for prefill and chunked-prefill query blocks on tensor cores
// (FlashAttention-2 style): a block of 4 warps takes 64 consecutive query rows
// of one sequence and one query head; each warp owns 16 rows. K and V tiles of
// 64 keys are gathered from the pages with cp.async into padded shared memory
// (row stride D + 8 halves: ldmatrix rows fall in distinct banks), S = Q K^T and
// O += P V run as mma.sync m16n8k16 (fp16/bf16 in, fp32 accumulate), the
// softmax is online in base 2 with the row state in registers. The V load of a
// tile overlaps S = Q K^T, the next K load overlaps P V.
//
// Which tokens come here: sequences whose query length this step is at least
// AttnKernelParams::prefill_min_query; attention.cu's kernel skips them. A
// one-block kernel first lists the (sequence, first row) of every 64-row tile,
// heaviest (last) tiles of a sequence first, since the query lengths are on
// the device only.
#include <algorithm>
#include <cfloat>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kBM = 64;  // query rows per block: 4 warps x 16
constexpr int kBN = 64;  // keys per tile
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared; valid == false writes zeros and reads nothing.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a (16x16, row) * b (16x8, col), fp32 accumulate.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// 2^x; 2^-inf = 0 (masked scores).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

template <int D, int kStages>
struct PrefillSmem {
  static constexpr int kStride = D + 8;  // halves per row (16-byte pad)
  static constexpr size_t kBytes = size_t{kBM + kStages * 2 * kBN} * kStride * 2;
};

// tiles[i] = (sequence, first query row) of the i-th 64-row tile, or (-1, 0)
// past the last. One block of 1024 threads: a prefix sum of tile counts per
// chunk of 1024 sequences.
__global__ void __launch_bounds__(1024)
    prefill_tiles_kernel(const int32_t* query_start, int num_seqs, int min_query, int2* tiles, int max_tiles) {
  __shared__ int scan[1024];
  int offset = 0;
  for (int base = 0; base < num_seqs; base += blockDim.x) {
    const int s = base + threadIdx.x;
    int n = 0;
    if (s < num_seqs) {
      const int q = query_start[s + 1] - query_start[s];
      if (q >= min_query) n = (q + kBM - 1) / kBM;
    }
    scan[threadIdx.x] = n;
    __syncthreads();
    for (int o = 1; o < static_cast<int>(blockDim.x); o <<= 1) {
      const int v = static_cast<int>(threadIdx.x) >= o ? scan[threadIdx.x - o] : 0;
      __syncthreads();
      scan[threadIdx.x] += v;
      __syncthreads();
    }
    const int first = offset + scan[threadIdx.x] - n;
    for (int i = 0; i < n; ++i) {
      if (first + i < max_tiles) tiles[first + i] = make_int2(s, (n - 1 - i) * kBM);
    }
    offset += scan[blockDim.x - 1];
    __syncthreads();  // scan is rewritten by the next chunk
  }
  for (int i = offset + threadIdx.x; i < max_tiles; i += blockDim.x) tiles[i] = make_int2(-1, 0);
}

// grid (num_q_heads, max_tiles): the heads of one tile are neighbours, so the
// K/V tiles they share (GQA) are read from L2.
template <typename T, int D, int kStages>
__global__ void __launch_bounds__(kThreads)
    attention_prefill_kernel(AttnKernelParams p, const int2* __restrict__ tiles) {
  allow_dependent_launch();
  const int2 tile = tiles[blockIdx.y];
  if (tile.x < 0) return;
  constexpr int kStride = PrefillSmem<D, kStages>::kStride;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  const int s = tile.x, row0 = tile.y;
  const int h = blockIdx.x;
  const int kvh = h / (p.num_q_heads / p.num_kv_heads);
  const int q0 = p.query_start[s];
  const int q_len = p.query_start[s + 1] - q0;
  const int rows = min(kBM, q_len - row0);
  const int pos0 = p.kv_len[s] - q_len + row0;  // cache index of the tile's first query
  const int hi = pos0 + rows;                   // keys [lo, hi) are read
  const int lo = p.window > 0 ? max(0, pos0 - p.window + 1) : 0;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* q_s = reinterpret_cast<T*>(smem_raw);
  T* kv_s = q_s + kBM * kStride;  // kStages x (K tile, V tile)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  const T* qg = static_cast<const T*>(p.q);
  for (int i = tid; i < kBM * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = r < rows;
    const T* src = ok ? qg + static_cast<int64_t>(q0 + row0 + r) * p.q_stride + static_cast<int64_t>(h) * D + c * 8 : qg;
    cp_async16(smem_u32(q_s + r * kStride + c * 8), src, ok);
  }
  const int32_t* pages = p.page_indices + p.page_indptr[s];
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  // Gathers keys [k0, k0 + kBN) of one cache through the page table; keys past
  // hi and pages of -1 become zero rows (masked below, never read).
  auto load_kv = [&](T* dst, const T* cache, int k0) {
#pragma unroll 4
    for (int i = tid; i < kBN * kChunks; i += kThreads) {
      const int r = i / kChunks, c = i % kChunks;
      const int key = k0 + r;
      const int page = key < hi ? pages[key / p.page_size] : -1;
      const bool ok = page >= 0;
      const T* src = ok ? cache + page * p.page_stride + static_cast<int64_t>(key % p.page_size) * p.token_stride +
                              static_cast<int64_t>(kvh) * D + c * 8
                        : cache;
      cp_async16(smem_u32(dst + r * kStride + c * 8), src, ok);
    }
  };
  uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const float sl2 = p.scale * kLog2e;
  const int pos_a = pos0 + warp * 16 + (lane >> 2);  // this thread's rows: pos_a, pos_a + 8
  const int pos_b = pos_a + 8;
  const int n_tiles = (hi - lo + kBN - 1) / kBN;
  float sc[kBN / 8][4];

  // S = Q K^T for the key tile at k0 in ks, masked, then the online softmax
  // update: sc holds P (unnormalized), o and l are rescaled.
  auto scores_softmax = [&](const T* ks, int k0) {
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 32; ++kk) {
#pragma unroll
      for (int nt = 0; nt < kBN / 8; ++nt) {
        uint32_t b[4];
        ldmatrix_x4(b, smem_u32(ks + (nt * 8 + (lane & 7)) * kStride + kk * 32 + (lane >> 3) * 8));
        mma16816<T>(sc[nt], qf[2 * kk], b[0], b[1]);
        mma16816<T>(sc[nt], qf[2 * kk + 1], b[2], b[3]);
      }
    }
    // Mask only tiles that cross the causal diagonal, the window's edge or hi.
    const bool need_mask = k0 + kBN - 1 > pos0 || (p.window > 0 && k0 <= hi - 1 - p.window);
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float v = sc[nt][e] * sl2;
        if (need_mask) {
          const int key = k0 + nt * 8 + (lane & 3) * 2 + (e & 1);
          const int pos = e < 2 ? pos_a : pos_b;
          if (key > pos || (p.window > 0 && key <= pos - p.window)) v = -INFINITY;
        }
        sc[nt][e] = v;
        mx[e >> 1] = fmaxf(mx[e >> 1], v);
      }
    }
    float corr[2], rs[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      // A row with no key yet keeps m = -inf: subtract 0 instead (exp2(-inf) = 0).
      const float ref = mx[i] == -INFINITY ? 0.f : mx[i];
      corr[i] = fast_exp2(m[i] - ref);
      m[i] = mx[i];
      mx[i] = ref;
    }
#pragma unroll
    for (int nt = 0; nt < kBN / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        sc[nt][e] = fast_exp2(sc[nt][e] - mx[e >> 1]);
        rs[e >> 1] += sc[nt][e];
      }
    }
    // l stays a per-thread partial over its key columns: summed over the quad at the end.
    l[0] = l[0] * corr[0] + rs[0];
    l[1] = l[1] * corr[1] + rs[1];
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= corr[0];
      o[dt][1] *= corr[0];
      o[dt][2] *= corr[1];
      o[dt][3] *= corr[1];
    }
  };
  // O += P V for the value tile in vs.
  auto accumulate_pv = [&](const T* vs) {
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      // The S accumulators of key tiles 2kk, 2kk+1 are exactly P's A fragment.
      const uint32_t a[4] = {pack2<T>(sc[2 * kk][0], sc[2 * kk][1]), pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                             pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                             pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int dt = 0; dt < D / 16; ++dt) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, smem_u32(vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride + dt * 16 +
                                      (lane >> 4) * 8));
        mma16816<T>(o[2 * dt], a, b[0], b[1]);
        mma16816<T>(o[2 * dt + 1], a, b[2], b[3]);
      }
    }
  };
  auto load_q_fragments = [&]() {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk)
      ldmatrix_x4(qf[kk], smem_u32(q_s + (warp * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8));
  };

  if constexpr (kStages == 1) {
    // One K and one V buffer: the V load of a tile overlaps S = Q K^T, the load
    // of the next K tile overlaps P V.
    T* k_s = kv_s;
    T* v_s = kv_s + kBN * kStride;
    load_kv(k_s, kc, lo);
    cp_async_commit();
    for (int j = 0; j < n_tiles; ++j) {
      const int k0 = lo + j * kBN;
      cp_async_wait_all();
      __syncthreads();  // K tile j (and Q) visible; every warp is done with V tile j - 1
      load_kv(v_s, vc, k0);
      cp_async_commit();
      if (j == 0) load_q_fragments();
      scores_softmax(k_s, k0);
      cp_async_wait_all();
      __syncthreads();  // V tile j visible; every warp is done with K tile j
      if (j + 1 < n_tiles) load_kv(k_s, kc, k0 + kBN);
      cp_async_commit();
      accumulate_pv(v_s);
    }
  } else {
    // Two K/V buffers: the loads of tile j + 2 are issued when tile j is done,
    // so each tile's gather has a whole tile of math to arrive. One commit
    // group per tile (empty past the end) keeps wait_group 1 exact.
    auto stage_k = [&](int st) { return kv_s + st * 2 * kBN * kStride; };
    auto stage_v = [&](int st) { return kv_s + (st * 2 + 1) * kBN * kStride; };
    load_kv(stage_k(0), kc, lo);
    load_kv(stage_v(0), vc, lo);
    cp_async_commit();  // with Q
    if (n_tiles > 1) {
      load_kv(stage_k(1), kc, lo + kBN);
      load_kv(stage_v(1), vc, lo + kBN);
    }
    cp_async_commit();
    for (int j = 0; j < n_tiles; ++j) {
      const int k0 = lo + j * kBN, st = j & 1;
      cp_async_wait_one();
      __syncthreads();  // tile j (and Q) visible
      if (j == 0) load_q_fragments();
      scores_softmax(stage_k(st), k0);
      accumulate_pv(stage_v(st));
      __syncthreads();  // every warp is done with stage st
      if (j + 2 < n_tiles) {
        load_kv(stage_k(st), kc, k0 + 2 * kBN);
        load_kv(stage_v(st), vc, k0 + 2 * kBN);
      }
      cp_async_commit();
    }
  }
  cp_async_wait_all();  // the last (empty) group

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
  }
  const float inv[2] = {l[0] > 0.f ? 1.f / l[0] : 0.f, l[1] > 0.f ? 1.f / l[1] : 0.f};
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = warp * 16 + (lane >> 2) + i * 8;
    if (r >= rows) continue;
    T* dst = out + static_cast<int64_t>(q0 + row0 + r) * p.out_stride + static_cast<int64_t>(h) * D + (lane & 3) * 2;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      *reinterpret_cast<uint32_t*>(dst + dt * 8) = pack2<T>(o[dt][2 * i] * inv[i], o[dt][2 * i + 1] * inv[i]);
    }
  }
}

template <typename T, int D, int kStages>
void launch_prefill_typed(const AttnKernelParams& p, int max_tiles, cudaStream_t stream) {
  constexpr size_t kBytes = PrefillSmem<D, kStages>::kBytes;
  // Above 48 KB of dynamic shared memory needs the attribute; set once per instantiation.
  static const cudaError_t attr = cudaFuncSetAttribute(attention_prefill_kernel<T, D, kStages>,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       static_cast<int>(kBytes));
  (void)attr;  // a failure shows as a launch error, which the caller checks
  attention_prefill_kernel<T, D, kStages><<<dim3(p.num_q_heads, max_tiles), kThreads, kBytes, stream>>>(
      p, reinterpret_cast<const int2*>(p.prefill_tiles));
}

}  // namespace

int attention_prefill_max_tiles(int num_tokens, int num_seqs, int min_query) {
  if (min_query <= 0 || num_tokens < min_query) return 0;
  return (num_tokens + kBM - 1) / kBM + std::min(num_seqs, num_tokens / min_query);
}

void launch_attention_prefill(const AttnKernelParams& p, cudaStream_t stream) {
  const int max_tiles = attention_prefill_max_tiles(p.num_tokens, p.num_seqs, p.prefill_min_query);
  if (max_tiles == 0) return;
  prefill_tiles_kernel<<<1, 1024, 0, stream>>>(p.query_start, p.num_seqs, p.prefill_min_query,
                                               reinterpret_cast<int2*>(p.prefill_tiles), max_tiles);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    // Kernel variant 1: the two-stage K/V pipeline (correct, no faster on the H100: docs/cuda.md).
    dispatch_head_dim(p.head_dim, [&](auto dim) {
      constexpr int D = decltype(dim)::value;
      if (p.variant == 1) {
        launch_prefill_typed<T, D, 2>(p, max_tiles, stream);
      } else {
        launch_prefill_typed<T, D, 1>(p, max_tiles, stream);
      }
    });
  };
  if (p.type == ElemType::kBF16) {
    run(__nv_bfloat16{});
  } else {
    run(__half{});
  }
}

}  // namespace tandem::cuda

// int4 GEMM on tensor cores for decode batches (16 < M <= kInt4GemmMaxM): reads
// the packed weights once per 64-row M tile, dequantizes them in registers and
// multiplies with mma.m16n8k16 (fp32 accumulators). Replaces dequantize-to-fp16
// + cuBLASLt there, which moves ~9x the weight bytes.
//
// Block: 8 warps, 64 rows of x (M) x 256 columns (N), K in 128-row tiles (the
// layout's tile height). Warps are 2 (M) x 4 (N); a warp owns 32 rows x 64
// columns = 2 m16 x 8 n8 mma tiles (64 fp32 accumulators per lane).
// Why this shape:
//  - int4 B is 4x smaller than fp16 A, so shared-memory traffic per mma is set
//    by A: a warp with 8 n8 tiles reads each A fragment once for 8 mmas (2 m16
//    tiles: each B fragment, dequantized once, feeds 2 mmas).
//  - 256 columns per block: x is re-read from L2 by every column block
//    (N / 256 times); with 128 columns that was twice the weight bytes at M = 64.
//  - Stages of x, weights, scales and zeros go to shared memory with cp.async,
//    kStages - 1 k-tiles ahead (48 KiB of weights in flight per SM): enough to
//    stream from HBM at M = 17 with one block per SM.
// Grid (M tiles, column blocks, K splits), M tiles fastest, so the blocks that
// read the same weight tiles run together and all but the first hit L2.
//
// x tile in shared memory: row r (0..63) is 256 bytes = 16 chunks of 16 bytes,
// chunk c stored at (c ^ (r & 7)): the 8 rows of an ldmatrix phase hit 8
// different bank groups. Rows past M are zero-filled (up to the warp's 32) and
// their outputs dropped; a warp with no valid row skips the math.
//
// Dequantization (int4_layout.h): a B register is the nibble pair
// `(word >> 4p) & 0x000F000F | magic` = (magic + q); minus the stored
// (magic + zero) it is the exact integer q - zero, then times the scale in
// fp16/bf16. The weights the tensor cores see are therefore bit-identical to
// what int4_dequant.cu writes for cuBLASLt, and accumulation is fp32 in both:
// the same precision as the path this replaces. (Scaling the fp32 accumulators
// per group instead would be exact in the weights but needs a second set of 64
// accumulators and 4 FMAs per tile per group: at G = 32 more than it saves.)
// fp16 takes the odd nibbles as (magic + 16q) without a shift and undoes the 16
// in one exact fma; bf16 has too few mantissa bits for that and shifts.
//
// Split-K (int4_gemm_num_splits): blocks of one split write fp32 partials, the
// shared reduction kernel adds them in split order (deterministic, no atomics).
#include "backend/cuda/int4_layout.h"
#include "backend/cuda/int4_mma.cuh"
#include "backend/cuda/kernels.h"

#include <algorithm>
#include <type_traits>

namespace tandem::cuda {
namespace {

constexpr int kWarpsM = 2, kWarpsN = 4;
constexpr int kThreads = kWarpsM * kWarpsN * 32;
constexpr int kWarpMTiles = 2;  // m16 tiles per warp: 32 rows
constexpr int kWarpNTiles = 8;  // n8 tiles per warp: 64 columns
constexpr int kBM = kWarpsM * kWarpMTiles * 16;  // 64 rows of x per block
constexpr int kBNTiles = kWarpsN * kWarpNTiles;  // 32 n8 tiles
constexpr int kBN = kBNTiles * kInt4TileN;       // 256 columns per block
constexpr int kStages = 4;
constexpr int kBlocksPerSm = 1;  // 4 stages of 36 KiB: one block per SM (launch bounds agree)
constexpr int kMaxGroupsPerTile = kInt4TileK / 32;  // G = 32

// One stage of shared memory (bytes).
constexpr int kXBytes = kBM * kInt4TileK * 2;             // x [64][128], swizzled 16-byte chunks
constexpr int kWBytes = kBNTiles * kInt4TileWords * 4;    // weight tiles as stored (512 B each)
constexpr int kScaleBytes = kMaxGroupsPerTile * kBN * 2;  // scales [groups of the tile][256]
constexpr int kZeroBytes = kBN * 4 * 2;                   // zeros [256][4] (magic + zero)
constexpr int kStageBytes = kXBytes + kWBytes + kScaleBytes + kZeroBytes;  // 36 KiB
constexpr int kSmemBytes = kStages * kStageBytes;                          // 144 KiB
static_assert(kThreads == kBN, "one thread copies each column's zeros");
static_assert(kThreads * 4 == kBM * 16, "each thread copies 4 x chunks of a full tile");
static_assert(kBNTiles * 32 == kThreads * 4, "each thread copies 4 weight chunks");

// Split-K choice (int4_gemm_num_splits).
constexpr int kMaxSplits = 16;
constexpr int kMinTilesPerSplit = 4;  // 512 rows of K: the pipeline fills kStages - 1 = 3 tiles

// The dequantized B fragment pair (b0, b1) of one k16 step from `word` (two k16
// steps of one n8 tile): nibbles 0|4 and 1|5 of word (first step) or of word >> 8.
template <typename T>
struct Dequant {
  using T2 = typename Int4Traits<T>::T2;
  T2 scale, zero_lo, zero_hi;  // zero_hi: fp16 only, -(magic / 16 + zero)

  __device__ __forceinline__ void load(T s, T z) {
    scale = T2{s, s};
    zero_lo = T2{z, z};
    if constexpr (std::is_same_v<T, __half>) zero_hi = __hsub2(from_u32<T2>(0x63806380u), zero_lo);  // 960 - (1024 + z)
  }
  __device__ __forceinline__ void pair(uint32_t word, uint32_t& b0, uint32_t& b1) const {
    constexpr uint32_t kMagic = Int4Traits<T>::kMagic;
    const T2 lo = __hsub2(from_u32<T2>((word & 0x000F000Fu) | kMagic), zero_lo);
    b0 = as_u32(__hmul2(lo, scale));
    if constexpr (std::is_same_v<T, __half>) {
      // (1024 + 16q) / 16 - (64 + z) = q - z, exact in one fma.
      const T2 hi = __hfma2(from_u32<T2>((word & 0x00F000F0u) | kMagic), from_u32<T2>(0x2C002C00u), zero_hi);
      b1 = as_u32(__hmul2(hi, scale));
    } else {
      const T2 hi = __hsub2(from_u32<T2>(((word >> 4) & 0x000F000Fu) | kMagic), zero_lo);
      b1 = as_u32(__hmul2(hi, scale));
    }
  }
};

__device__ __forceinline__ uint32_t word_of(const uint4& v, int w) {
  return w == 0 ? v.x : w == 1 ? v.y : w == 2 ? v.z : v.w;
}

// grid (ceil(M / 64), ceil(N / 256), splits); 256 threads; kSmemBytes of dynamic
// shared memory. partial != null: fp32 partials [splits][M][N] (no bias), else
// y = x W + bias in Y.
template <typename T, typename Y>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    int4_gemm_kernel(const uint4* __restrict__ qweight, const T* __restrict__ scales, const T* __restrict__ x,
                     const T* __restrict__ bias, Y* __restrict__ y, float* __restrict__ partial, int M, int K, int N,
                     int group_size, int64_t x_stride, int64_t y_stride, int tiles_per_split) {
  using T2 = typename Int4Traits<T>::T2;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / kWarpsN, wn = warp % kWarpsN;
  const int num_ktiles = K / kInt4TileK, num_ntiles = N / kInt4TileN;
  const int num_groups = K / group_size;
  const T* zeros = scales + static_cast<int64_t>(num_groups) * N;
  const int m0 = blockIdx.x * kBM;
  const int nt0 = blockIdx.y * kBNTiles;
  const int kt_begin = blockIdx.z * tiles_per_split;
  const int kt_end = min(num_ktiles, kt_begin + tiles_per_split);
  const int rows = min(kBM, M - m0);
  const int rows_loaded = min(kBM, (rows + 31) / 32 * 32);
  const int groups_per_tile = group_size < kInt4TileK ? kInt4TileK / group_size : 1;

  // Copies k-tile kt into `stage` (cp.async; the caller commits).
  auto load_stage = [&](int kt, int stage) {
    unsigned char* base = smem + stage * kStageBytes;
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const int i = tid + t * kThreads, r = i >> 4, c = i & 15;
      if (r < rows_loaded) {
        const int m = min(m0 + r, M - 1);
        cp_async16(base + r * 256 + ((c ^ (r & 7)) << 4), x + m * x_stride + kt * kInt4TileK + c * 8, m0 + r < M);
      }
    }
    uint4* ws = reinterpret_cast<uint4*>(base + kXBytes);
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const int i = tid + t * kThreads, nt = nt0 + (i >> 5);
      cp_async16(ws + i, qweight + (static_cast<int64_t>(min(nt, num_ntiles - 1)) * num_ktiles + kt) * 32 + (i & 31),
                 nt < num_ntiles);
    }
    const int g0 = kt * kInt4TileK / group_size;  // first group of the tile
    T* ss = reinterpret_cast<T*>(base + kXBytes + kWBytes);
    if (tid < groups_per_tile * (kBN / 8)) {
      const int gi = tid / (kBN / 8), c = tid % (kBN / 8), n = nt0 * kInt4TileN + c * 8;
      cp_async16(ss + gi * kBN + c * 8, scales + static_cast<int64_t>(g0 + gi) * N + min(n, N - 8), n < N);
    }
    // Zeros of column n: groups g0.. are contiguous. G = 32: 4 of them (8 bytes,
    // aligned); G = 64: 2 (4 bytes, aligned); G >= 128: the aligned 4 bytes that
    // hold the one needed (the reader picks the half).
    T* zs = reinterpret_cast<T*>(base + kXBytes + kWBytes + kScaleBytes) + tid * 4;
    const int n = nt0 * kInt4TileN + tid;
    const int64_t e = static_cast<int64_t>(min(n, N - 1)) * num_groups + g0;
    if (groups_per_tile == 4) {
      cp_async8(zs, zeros + e, n < N);
    } else {
      cp_async4(zs, zeros + (e & ~int64_t{1}), n < N);
    }
  };

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (kt_begin + s < kt_end) load_stage(kt_begin + s, s);
    cp_async_commit();
  }

  const int g = lane >> 2, q = lane & 3;
  const bool active = m0 + wm * 32 < M;
  // ldmatrix addresses of k16 steps s and s + 4 (+128 bytes) for s = 0..3:
  // row lane % 16 of the m16 tile, chunk (2s + lane / 16) ^ (row & 7).
  uint32_t a_addr[4];
#pragma unroll
  for (int s = 0; s < 4; ++s) {
    const int r = wm * 32 + (lane & 15);
    a_addr[s] = smem_u32(smem) + r * 256 + (((2 * s + (lane >> 4)) ^ (r & 7)) << 4);
  }
  // Scale and zero of this lane's B column (g) of each n8 tile, in the stage.
  const int col = wn * kWarpNTiles * kInt4TileN + g;
  const int words_per_group = min(group_size / 32, 4);  // 1, 2 or 4 (one group per tile)
  const int group_shift = words_per_group == 1 ? 0 : words_per_group == 2 ? 1 : 2;

  float acc[kWarpMTiles][kWarpNTiles][4];
#pragma unroll
  for (int i = 0; i < kWarpMTiles; ++i)
#pragma unroll
    for (int j = 0; j < kWarpNTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  for (int kt = kt_begin; kt < kt_end; ++kt) {
    cp_async_wait<kStages - 2>();  // this thread's copies of tile kt landed
    __syncthreads();               // everyone's; and everyone is done with tile kt - 1
    const int next = kt + kStages - 1;
    if (next < kt_end) load_stage(next, (next - kt_begin) % kStages);
    cp_async_commit();
    if (!active) continue;

    const int stage = (kt - kt_begin) % kStages;
    const unsigned char* base = smem + stage * kStageBytes;
    const uint4* wt = reinterpret_cast<const uint4*>(base + kXBytes) + wn * kWarpNTiles * 32 + lane;
    uint4 bw[kWarpNTiles];
#pragma unroll
    for (int j = 0; j < kWarpNTiles; ++j) bw[j] = wt[j * 32];
    const T* ss = reinterpret_cast<const T*>(base + kXBytes + kWBytes) + col;
    // G >= 128: the needed zero is the odd half when column * num_groups + g0 is odd.
    const int g0 = kt * kInt4TileK / group_size;
    const int zoff = groups_per_tile == 1 ? (((g & num_groups) ^ g0) & 1) : 0;
    const T* zs = reinterpret_cast<const T*>(base + kXBytes + kWBytes + kScaleBytes) + col * 4 + zoff;
    const uint32_t stage_off = stage * kStageBytes;

    Dequant<T> dq[kWarpNTiles];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      if ((w & (words_per_group - 1)) == 0) {
        const int gi = w >> group_shift;
#pragma unroll
        for (int j = 0; j < kWarpNTiles; ++j) dq[j].load(ss[gi * kBN + j * 8], zs[j * 32 + gi]);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int s = 2 * w + h;
        uint32_t a[kWarpMTiles][4];
#pragma unroll
        for (int i = 0; i < kWarpMTiles; ++i) ldmatrix_x4(a[i], a_addr[s & 3] + stage_off + i * 16 * 256 + (s & 4) * 32);
#pragma unroll
        for (int j = 0; j < kWarpNTiles; ++j) {
          uint32_t b0, b1;
          dq[j].pair(word_of(bw[j], w) >> (8 * h), b0, b1);
#pragma unroll
          for (int i = 0; i < kWarpMTiles; ++i) mma_16816<T>(acc[i][j], a[i], b0, b1);
        }
      }
    }
  }
  cp_async_wait<0>();
  if (!active) return;

  // C fragment: rows g and g + 8 of each m16 tile, columns 2q, 2q + 1 of each n8 tile.
#pragma unroll
  for (int j = 0; j < kWarpNTiles; ++j) {
    const int nt = nt0 + wn * kWarpNTiles + j;
    if (nt >= num_ntiles) continue;
    const int n = nt * kInt4TileN + 2 * q;
    float b0 = 0.f, b1 = 0.f;
    if (bias != nullptr && partial == nullptr) {
      const T2 bb = *reinterpret_cast<const T2*>(bias + n);
      b0 = to_f32(bb.x);
      b1 = to_f32(bb.y);
    }
#pragma unroll
    for (int i = 0; i < kWarpMTiles; ++i) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int m = m0 + wm * 32 + i * 16 + g + 8 * hh;
        if (m >= M) continue;
        const float v0 = acc[i][j][2 * hh], v1 = acc[i][j][2 * hh + 1];
        if (partial != nullptr) {
          *reinterpret_cast<float2*>(partial + (static_cast<int64_t>(blockIdx.z) * M + m) * N + n) = make_float2(v0, v1);
        } else if constexpr (std::is_same_v<Y, float>) {
          *reinterpret_cast<float2*>(y + m * y_stride + n) = make_float2(v0 + b0, v1 + b1);
        } else {
          *reinterpret_cast<T2*>(y + m * y_stride + n) = T2{from_f32<T>(v0 + b0), from_f32<T>(v1 + b1)};
        }
      }
    }
  }
}

}  // namespace

bool int4_gemm_supports(int M, int K, int N, int group_size) {
  if (M < 1 || M > kInt4GemmMaxM || K <= 0 || K % kInt4TileK != 0 || N <= 0 || N % kInt4TileN != 0 ||
      group_size <= 0 || group_size % 32 != 0)
    return false;
  // Groups must not straddle 128-row tiles.
  return group_size <= kInt4TileK ? kInt4TileK % group_size == 0 : group_size % kInt4TileK == 0;
}

// Time model, in units of "one block streams one k-tile" (16 KiB of weights):
// waves of blocks (kBlocksPerSm per SM) x k-tiles per split, and when split,
// the partial sums: each block writes rows x 256 fp32 (64 KiB at 64 rows,
// mostly into L2: about rows / 32 units) and the reduction reads all of them
// back over the whole GPU (at about twice the HBM rate). A count must beat
// the best smaller one by 10% (partials also cost L2 room the weights
// could use). Also capped so that the partials (splits * M * N floats) stay
// within N * K * 2 bytes, the dequantize path's scratch, which the memory
// planner counts (memory/planner.cpp): this path never needs more workspace.
int int4_gemm_num_splits(int M, int K, int N, int num_sms) {
  const int num_ktiles = K / kInt4TileK;
  const int64_t blocks = static_cast<int64_t>(ceil_div(M, kBM)) * ceil_div(N / kInt4TileN, kBNTiles);
  const int64_t slots = static_cast<int64_t>(num_sms > 0 ? num_sms : 132) * kBlocksPerSm;
  const int max_splits =
      std::min({kMaxSplits, std::max(1, num_ktiles / kMinTilesPerSplit), std::max(1, K / (2 * M))});
  const double write_cost = (std::min(M, kBM) + 31) / 32;
  const double reduce_cost_per_split = 4.0 * M * N / (static_cast<double>(slots) * kWBytes * 2);
  int best = 1;
  double best_cost = 0;
  for (int s = 1; s <= max_splits; ++s) {
    const int tiles = ceil_div(num_ktiles, s);
    if (ceil_div(num_ktiles, tiles) != s) continue;  // same tiles as a smaller count
    const double waves = static_cast<double>((blocks * s + slots - 1) / slots);
    const double cost = s == 1 ? waves * tiles : waves * (tiles + write_cost) + s * reduce_cost_per_split;
    if (s == 1 || cost < 0.9 * best_cost) best_cost = cost, best = s;
  }
  return best;
}

size_t int4_gemm_workspace_floats(int M, int K, int N, int num_sms) {
  const int splits = int4_gemm_num_splits(M, K, N, num_sms);
  return splits > 1 ? static_cast<size_t>(splits) * M * N : 0;
}

cudaError_t int4_gemm_configure() {
  const void* kernels[] = {reinterpret_cast<const void*>(int4_gemm_kernel<__half, __half>),
                           reinterpret_cast<const void*>(int4_gemm_kernel<__half, float>),
                           reinterpret_cast<const void*>(int4_gemm_kernel<__nv_bfloat16, __nv_bfloat16>),
                           reinterpret_cast<const void*>(int4_gemm_kernel<__nv_bfloat16, float>)};
  for (const void* k : kernels) {
    const cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

void launch_int4_gemm(const Int4GemmParams& p, cudaStream_t stream) {
  if (p.M == 0) return;
  const int K = p.w.K, N = p.w.N;
  const int num_ktiles = K / kInt4TileK;
  const int want = p.splits > 0 ? std::min(p.splits, num_ktiles) : int4_gemm_num_splits(p.M, K, N, p.num_sms);
  const int tiles = ceil_div(num_ktiles, want);
  const int splits = ceil_div(num_ktiles, tiles);
  const dim3 grid(ceil_div(p.M, kBM), ceil_div(N / kInt4TileN, kBNTiles), splits);
  float* partial = splits > 1 ? p.partial : nullptr;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const auto* qw = static_cast<const uint4*>(static_cast<const void*>(p.w.qweight));
    const auto* sz = static_cast<const T*>(p.w.scale_zero);
    const auto* x = static_cast<const T*>(p.x);
    const auto* bias = static_cast<const T*>(p.w.bias);
    // shared-memory limit raised by int4_gemm_configure()
    if (p.y_type == ElemType::kF32) {
      int4_gemm_kernel<T, float><<<grid, kThreads, kSmemBytes, stream>>>(
          qw, sz, x, bias, static_cast<float*>(p.y), partial, p.M, K, N, p.w.group_size, p.x_stride, p.y_stride, tiles);
    } else {
      int4_gemm_kernel<T, T><<<grid, kThreads, kSmemBytes, stream>>>(
          qw, sz, x, bias, static_cast<T*>(p.y), partial, p.M, K, N, p.w.group_size, p.x_stride, p.y_stride, tiles);
    }
    if (splits > 1) launch_int4_splitk_reduce(partial, p.w.bias, p.y, p.M, N, splits, p.y_stride, p.type, p.y_type, stream);
  };
  if (p.type == ElemType::kBF16) {
    run(__nv_bfloat16{});
  } else {
    run(__half{});
  }
}

}  // namespace tandem::cuda

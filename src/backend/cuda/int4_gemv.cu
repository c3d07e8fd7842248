// int4 GEMM for small batches (M <= 16): each warp streams its columns' packed
// weights once (one 16-byte load per lane per 8x128 tile), dequantizes with the
// fp16/bf16 magic-number trick and multiplies on tensor cores (mma.m16n8k16),
// with x staged in shared memory. Split-K over blocks keeps every SM streaming;
// partial sums are reduced in a fixed order (deterministic, independent of M).
#include "backend/cuda/int4_layout.h"
#include "backend/cuda/int4_mma.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

constexpr int kWarps = 4;       // per block
constexpr int kTilesPerWarp = 4;  // n8 tiles (32 columns) per warp -> 128 columns per block
constexpr int kMaxTilesPerSplit = 16;  // 2048 rows of x per block in shared memory
constexpr int kXPad = 8;        // elements of padding per x row (bank-conflict-free A loads)
constexpr int kDefaultBlocksPerSm = 8;
constexpr int kStages = 4;  // weight tiles in flight per warp (cp.async ring in shared memory)
constexpr int kWeightSmemBytes = kWarps * kStages * kTilesPerWarp * 512;  // split-K target: enough loads in flight on every SM

// (pair - (magic + zero)): the exact integers q - zero of nibble pair p of `word`.
template <typename T>
__device__ __forceinline__ uint32_t int_pair(uint32_t word, int shift, typename Int4Traits<T>::T2 zero2) {
  using T2 = typename Int4Traits<T>::T2;
  const uint32_t bits = ((word >> shift) & 0x000F000Fu) | Int4Traits<T>::kMagic;
  return as_u32(__hsub2(from_u32<T2>(bits), zero2));
}

// grid (column blocks, splits); block kWarps warps. Dynamic smem: M rows of x.
// Tensor cores multiply x by the exact integers (q - z); each group's partial
// sum is scaled into the fp32 accumulator when the group (or the tile) ends.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    int4_gemv_kernel(const uint4* __restrict__ qweight, const T* __restrict__ scales,
                     const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ y,
                     float* __restrict__ partial, int M, int K, int N, int group_size,
                     int64_t x_stride, int64_t y_stride, int tiles_per_split) {
  using T2 = typename Int4Traits<T>::T2;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int num_ktiles = K / kInt4TileK;
  const int num_ntiles = N / kInt4TileN;
  const int num_groups = K / group_size;
  const int words_per_group = group_size / 32;
  const T* zeros = scales + static_cast<int64_t>(num_groups) * N;
  const int kt_begin = blockIdx.y * tiles_per_split;
  const int kt_end = min(num_ktiles, kt_begin + tiles_per_split);
  const int rows_k = (kt_end - kt_begin) * kInt4TileK;
  const int xs_stride = tiles_per_split * kInt4TileK + kXPad;
  const int nt0 = (blockIdx.x * kWarps + warp) * kTilesPerWarp;

  // Weight ring: each lane copies (and later reads back) only its own 16 bytes
  // of each tile, so cp.async.wait_group alone orders the reads.
  uint4* ring = reinterpret_cast<uint4*>(smem_raw) + (warp * kStages * kTilesPerWarp) * 32 + lane;
  T* xs = reinterpret_cast<T*>(smem_raw + kWeightSmemBytes);
  auto issue = [&](int kt) {
    const int stage = (kt - kt_begin) % kStages;
#pragma unroll
    for (int j = 0; j < kTilesPerWarp; ++j) {
      const int nt = min(nt0 + j, num_ntiles - 1);
      const bool valid = nt0 + j < num_ntiles && kt < kt_end;
      cp_async16(ring + (stage * kTilesPerWarp + j) * 32,
                 qweight + (static_cast<int64_t>(nt) * num_ktiles + min(kt, num_ktiles - 1)) * 32 + lane, valid);
    }
    cp_async_commit();
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(kt_begin + s);

  // Stage x[0:M, k range] in shared memory (16-byte copies).
  const int vecs_per_row = rows_k / 8;
  for (int i = threadIdx.x; i < M * vecs_per_row; i += blockDim.x) {
    const int m = i / vecs_per_row, v = i % vecs_per_row;
    const uint4 val = *reinterpret_cast<const uint4*>(x + m * x_stride +
                                                      static_cast<int64_t>(kt_begin) * kInt4TileK + v * 8);
    *reinterpret_cast<uint4*>(xs + m * xs_stride + v * 8) = val;
  }
  __syncthreads();

  const int g = lane >> 2, q = lane & 3;
  const bool row_lo = g < M, row_hi = g + 8 < M;
  float acc[kTilesPerWarp][4], tmp[kTilesPerWarp][4];
#pragma unroll
  for (int j = 0; j < kTilesPerWarp; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = tmp[j][e] = 0.f;
  }
  T2 zero2[kTilesPerWarp];

  for (int kt = kt_begin; kt < kt_end; ++kt) {
    issue(kt + kStages - 1);
    cp_async_wait<kStages - 1>();  // tile kt has landed
    uint4 cur[kTilesPerWarp];
#pragma unroll
    for (int j = 0; j < kTilesPerWarp; ++j) cur[j] = ring[(((kt - kt_begin) % kStages) * kTilesPerWarp + j) * 32];
    const int kl = (kt - kt_begin) * kInt4TileK;  // row of the tile inside xs
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const int gw = kt * 4 + w;  // global index of this 32-row word
      const int group = gw / words_per_group;
      if (w == 0 || gw % words_per_group == 0) {
#pragma unroll
        for (int j = 0; j < kTilesPerWarp; ++j) {
          const int n = min(nt0 + j, num_ntiles - 1) * kInt4TileN + g;
          const T z = zeros[static_cast<int64_t>(n) * num_groups + group];
          zero2[j] = T2{z, z};
        }
      }
      // A fragments of steps 2w and 2w+1 (16 rows of k each).
      uint32_t a[2][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int k0 = kl + (2 * w + h) * 16 + 2 * q;
        const T* lo = xs + g * xs_stride + k0;
        const T* hi = xs + (g + 8) * xs_stride + k0;
        a[h][0] = row_lo ? *reinterpret_cast<const uint32_t*>(lo) : 0u;
        a[h][1] = row_hi ? *reinterpret_cast<const uint32_t*>(hi) : 0u;
        a[h][2] = row_lo ? *reinterpret_cast<const uint32_t*>(lo + 8) : 0u;
        a[h][3] = row_hi ? *reinterpret_cast<const uint32_t*>(hi + 8) : 0u;
      }
      const bool flush = w == 3 || (gw + 1) % words_per_group == 0;
#pragma unroll
      for (int j = 0; j < kTilesPerWarp; ++j) {
        const uint32_t word = w == 0 ? cur[j].x : w == 1 ? cur[j].y : w == 2 ? cur[j].z : cur[j].w;
        mma_16816<T>(tmp[j], a[0], int_pair<T>(word, 0, zero2[j]), int_pair<T>(word, 4, zero2[j]));
        mma_16816<T>(tmp[j], a[1], int_pair<T>(word, 8, zero2[j]), int_pair<T>(word, 12, zero2[j]));
        if (flush) {
          // C columns of this lane: 2q, 2q + 1 of the tile.
          const int nc = min(nt0 + j, num_ntiles - 1) * kInt4TileN + 2 * q;
          const T2 s2 = *reinterpret_cast<const T2*>(scales + static_cast<int64_t>(group) * N + nc);
          const float s0 = to_f32(s2.x), s1 = to_f32(s2.y);
          acc[j][0] += tmp[j][0] * s0;
          acc[j][1] += tmp[j][1] * s1;
          acc[j][2] += tmp[j][2] * s0;
          acc[j][3] += tmp[j][3] * s1;
          tmp[j][0] = tmp[j][1] = tmp[j][2] = tmp[j][3] = 0.f;
        }
      }
    }
  }
  cp_async_wait<0>();

  // C fragment: rows g and g + 8, columns 2q, 2q + 1 of each n8 tile.
#pragma unroll
  for (int j = 0; j < kTilesPerWarp; ++j) {
    const int nt = nt0 + j;
    if (nt >= num_ntiles) continue;
    const int n = nt * kInt4TileN + 2 * q;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = g + 8 * h;
      if (m >= M) continue;
      const float v0 = acc[j][2 * h], v1 = acc[j][2 * h + 1];
      if (partial != nullptr) {
        float* dst = partial + (static_cast<int64_t>(blockIdx.y) * M + m) * N + n;
        dst[0] = v0;
        dst[1] = v1;
      } else {
        const float b0 = bias ? to_f32(bias[n]) : 0.f, b1 = bias ? to_f32(bias[n + 1]) : 0.f;
        y[m * y_stride + n] = from_f32<T>(v0 + b0);
        y[m * y_stride + n + 1] = from_f32<T>(v1 + b1);
      }
    }
  }
}

// Variant 1 (newer, opt-in until validated on the GPU; see docs/cuda.md): fewer
// instructions per weight. A fragments come from one ldmatrix.x4 per mma step
// (rows >= M read row M-1; their outputs are dropped). B is the raw magic pair
// (magic + q), exact in fp16/bf16, with no subtraction; each flush removes the
// zero with the x sums of the flushed words:
//   sum_k x (q - z) = sum_k x (magic + q) - (magic + z) * sum_k x.
template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    int4_gemv_v1_kernel(const uint4* __restrict__ qweight, const T* __restrict__ scales,
                        const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ y,
                        float* __restrict__ partial, int M, int K, int N, int group_size,
                        int64_t x_stride, int64_t y_stride, int tiles_per_split) {
  using T2 = typename Int4Traits<T>::T2;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int num_ktiles = K / kInt4TileK;
  const int num_ntiles = N / kInt4TileN;
  const int num_groups = K / group_size;
  const int words_per_group = group_size / 32;
  const T* zeros = scales + static_cast<int64_t>(num_groups) * N;
  const int kt_begin = blockIdx.y * tiles_per_split;
  const int kt_end = min(num_ktiles, kt_begin + tiles_per_split);
  const int rows_k = (kt_end - kt_begin) * kInt4TileK;
  const int xs_stride = tiles_per_split * kInt4TileK + kXPad;
  const int nt0 = (blockIdx.x * kWarps + warp) * kTilesPerWarp;

  uint4* ring = reinterpret_cast<uint4*>(smem_raw) + (warp * kStages * kTilesPerWarp) * 32 + lane;
  T* xs = reinterpret_cast<T*>(smem_raw + kWeightSmemBytes);
  float* xw = reinterpret_cast<float*>(smem_raw + kWeightSmemBytes +
                                       static_cast<size_t>(M) * xs_stride * sizeof(T));  // [M][words]
  const int words_per_row = tiles_per_split * 4;
  const uint4* wbase[kTilesPerWarp];
#pragma unroll
  for (int j = 0; j < kTilesPerWarp; ++j) {
    wbase[j] = qweight + static_cast<int64_t>(min(nt0 + j, num_ntiles - 1)) * num_ktiles * 32 + lane;
  }
  auto issue = [&](int kt) {
    const int stage = (kt - kt_begin) % kStages;
    const int ktc = min(kt, num_ktiles - 1);
#pragma unroll
    for (int j = 0; j < kTilesPerWarp; ++j) {
      cp_async16(ring + (stage * kTilesPerWarp + j) * 32, wbase[j] + ktc * 32, nt0 + j < num_ntiles && kt < kt_end);
    }
    cp_async_commit();
  };
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) issue(kt_begin + st);

  const int vecs_per_row = rows_k / 8;
  for (int i = threadIdx.x; i < M * vecs_per_row; i += blockDim.x) {
    const int m = i / vecs_per_row, v = i % vecs_per_row;
    *reinterpret_cast<uint4*>(xs + m * xs_stride + v * 8) = *reinterpret_cast<const uint4*>(
        x + m * x_stride + static_cast<int64_t>(kt_begin) * kInt4TileK + v * 8);
  }
  __syncthreads();
  const int num_words = rows_k / 32;
  for (int i = threadIdx.x; i < M * num_words; i += blockDim.x) {
    const int m = i / num_words, wd = i % num_words;
    const T* src = xs + m * xs_stride + wd * 32;
    float sum = 0.f;
#pragma unroll 8
    for (int e = 0; e < 32; ++e) sum += to_f32(src[e]);
    xw[m * words_per_row + wd] = sum;
  }
  __syncthreads();

  const int g = lane >> 2, q = lane & 3;
  const int row_a = min((lane & 7) + 8 * ((lane >> 3) & 1), M - 1);  // ldmatrix row of this lane
  const uint32_t a_base = static_cast<uint32_t>(__cvta_generic_to_shared(xs + row_a * xs_stride + 8 * (lane >> 4)));
  const float* xw_lo = xw + min(g, M - 1) * words_per_row;
  const float* xw_hi = xw + min(g + 8, M - 1) * words_per_row;
  float acc[kTilesPerWarp][4], tmp[kTilesPerWarp][4];
#pragma unroll
  for (int j = 0; j < kTilesPerWarp; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = tmp[j][e] = 0.f;
  }
  float seg_lo = 0.f, seg_hi = 0.f;

  for (int kt = kt_begin; kt < kt_end; ++kt) {
    issue(kt + kStages - 1);
    cp_async_wait<kStages - 1>();
    const int stage = (kt - kt_begin) % kStages;
    uint4 cur[kTilesPerWarp];
#pragma unroll
    for (int j = 0; j < kTilesPerWarp; ++j) cur[j] = ring[(stage * kTilesPerWarp + j) * 32];
    const int kl = (kt - kt_begin) * kInt4TileK;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const int gw = kt * 4 + w;
      const int wl = (kt - kt_begin) * 4 + w;
      seg_lo += xw_lo[wl];
      seg_hi += xw_hi[wl];
      uint32_t a[2][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        ldmatrix_x4(a[h], a_base + static_cast<uint32_t>((kl + (2 * w + h) * 16) * sizeof(T)));
      }
#pragma unroll
      for (int j = 0; j < kTilesPerWarp; ++j) {
        const uint32_t word = w == 0 ? cur[j].x : w == 1 ? cur[j].y : w == 2 ? cur[j].z : cur[j].w;
        const uint32_t m = Int4Traits<T>::kMagic;
        mma_16816<T>(tmp[j], a[0], (word & 0x000F000Fu) | m, ((word >> 4) & 0x000F000Fu) | m);
        mma_16816<T>(tmp[j], a[1], ((word >> 8) & 0x000F000Fu) | m, ((word >> 12) & 0x000F000Fu) | m);
      }
      if (w == 3 || (gw + 1) % words_per_group == 0) {
        const int group = gw / words_per_group;
#pragma unroll
        for (int j = 0; j < kTilesPerWarp; ++j) {
          const int nc = min(nt0 + j, num_ntiles - 1) * kInt4TileN + 2 * q;
          const T2 s2 = *reinterpret_cast<const T2*>(scales + static_cast<int64_t>(group) * N + nc);
          const float z0 = to_f32(zeros[static_cast<int64_t>(nc) * num_groups + group]);
          const float z1 = to_f32(zeros[static_cast<int64_t>(nc + 1) * num_groups + group]);
          const float s0 = to_f32(s2.x), s1 = to_f32(s2.y);
          acc[j][0] += s0 * (tmp[j][0] - z0 * seg_lo);
          acc[j][1] += s1 * (tmp[j][1] - z1 * seg_lo);
          acc[j][2] += s0 * (tmp[j][2] - z0 * seg_hi);
          acc[j][3] += s1 * (tmp[j][3] - z1 * seg_hi);
          tmp[j][0] = tmp[j][1] = tmp[j][2] = tmp[j][3] = 0.f;
        }
        seg_lo = seg_hi = 0.f;
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int j = 0; j < kTilesPerWarp; ++j) {
    const int nt = nt0 + j;
    if (nt >= num_ntiles) continue;
    const int n = nt * kInt4TileN + 2 * q;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = g + 8 * h;
      if (m >= M) continue;
      const float v0 = acc[j][2 * h], v1 = acc[j][2 * h + 1];
      if (partial != nullptr) {
        float* dst = partial + (static_cast<int64_t>(blockIdx.y) * M + m) * N + n;
        dst[0] = v0;
        dst[1] = v1;
      } else {
        const float b0 = bias ? to_f32(bias[n]) : 0.f, b1 = bias ? to_f32(bias[n + 1]) : 0.f;
        y[m * y_stride + n] = from_f32<T>(v0 + b0);
        y[m * y_stride + n + 1] = from_f32<T>(v1 + b1);
      }
    }
  }
}

// y[m, n] = sum over splits (in order) + bias.
template <typename T, typename Y>
__global__ void splitk_reduce_kernel(const float* partial, const T* bias, Y* y, int M, int N, int splits,
                                     int64_t y_stride) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(M) * N) return;
  const int m = static_cast<int>(i / N), n = static_cast<int>(i % N);
  float s = 0.f;
  for (int k = 0; k < splits; ++k) s += partial[(static_cast<int64_t>(k) * M + m) * N + n];
  if (bias) s += to_f32(bias[n]);
  y[m * y_stride + n] = from_f32<Y>(s);
}

int tiles_per_split_for(int K, int N, int num_sms, int blocks_per_sm) {
  const int num_ktiles = K / kInt4TileK;
  const int col_blocks = ceil_div(N / kInt4TileN, kWarps * kTilesPerWarp);
  const int target_blocks = (blocks_per_sm > 0 ? blocks_per_sm : kDefaultBlocksPerSm) * (num_sms > 0 ? num_sms : 132);
  int splits = target_blocks / col_blocks;
  if (splits < 1) splits = 1;
  if (splits > num_ktiles) splits = num_ktiles;
  int tiles = ceil_div(num_ktiles, splits);
  if (tiles > kMaxTilesPerSplit) tiles = kMaxTilesPerSplit;
  return tiles;
}

}  // namespace

void launch_int4_splitk_reduce(const float* partial, const void* bias, void* y, int M, int N, int splits,
                               int64_t y_stride, ElemType type, ElemType y_type, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(M) * N;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    TANDEM_DISPATCH_TYPE(y_type, Y, {
      splitk_reduce_kernel<T, Y><<<ceil_div(n, 256), 256, 0, stream>>>(partial, static_cast<const T*>(bias),
                                                                         static_cast<Y*>(y), M, N, splits, y_stride);
    });
  };
  if (type == ElemType::kBF16) {
    run(__nv_bfloat16{});
  } else {
    run(__half{});
  }
}

int int4_gemv_num_splits(int K, int N, int num_sms, int blocks_per_sm) {
  return ceil_div(K / kInt4TileK, tiles_per_split_for(K, N, num_sms, blocks_per_sm));
}

size_t int4_gemv_workspace_floats(int K, int N, int num_sms, int blocks_per_sm) {
  const int splits = int4_gemv_num_splits(K, N, num_sms, blocks_per_sm);
  return static_cast<size_t>(splits) * 16 * N;  // also used by fp32 outputs
}

cudaError_t int4_gemv_configure() {
  const int bytes = kWeightSmemBytes + 16 * (kMaxTilesPerSplit * kInt4TileK + kXPad) * 2 +
                    16 * kMaxTilesPerSplit * 4 * static_cast<int>(sizeof(float));
  const void* kernels[] = {reinterpret_cast<const void*>(int4_gemv_kernel<__half>),
                           reinterpret_cast<const void*>(int4_gemv_kernel<__nv_bfloat16>),
                           reinterpret_cast<const void*>(int4_gemv_v1_kernel<__half>),
                           reinterpret_cast<const void*>(int4_gemv_v1_kernel<__nv_bfloat16>)};
  for (const void* k : kernels) {
    const cudaError_t e = cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e != cudaSuccess) return e;
  }
  return int4_gemv_v2_configure();
}

namespace {
// Whether launch_int4_gemv hands this call to variant 2.
bool runs_v2(const Int4GemvParams& p) {
  return p.variant == 2 && int4_gemv_v2_supports(p.M, p.w.K, p.w.N, p.w.group_size, p.type, p.y_type);
}
}  // namespace

bool int4_gemv_fuses(const Int4GemvParams& p) {
  if (!runs_v2(p) || p.w.perm != nullptr || p.y_type != p.type) return false;
  return !p.fuse.swiglu || (p.fuse.residual == nullptr && int4_gemv_v2_swiglu(p.w.N, p.num_sms));
}

void launch_int4_gemv(const Int4GemvParams& p, cudaStream_t stream) {
  if (p.M == 0) return;
  if (runs_v2(p)) {
    launch_int4_gemv_v2(p, stream);
    return;
  }
  // blocks_per_sm > 100 is variant 2's K-split override: the default here.
  const int tiles = tiles_per_split_for(p.w.K, p.w.N, p.num_sms, p.blocks_per_sm > 100 ? 0 : p.blocks_per_sm);
  const int splits = ceil_div(p.w.K / kInt4TileK, tiles);
  dim3 grid(ceil_div(p.w.N / kInt4TileN, kWarps * kTilesPerWarp), splits);
  const size_t smem = kWeightSmemBytes + static_cast<size_t>(p.M) * (tiles * kInt4TileK + kXPad) * 2 +
                     (p.variant == 1 ? static_cast<size_t>(p.M) * tiles * 4 * sizeof(float) : 0);
  // Direct output needs y in the activation type; fp32 output goes through the reduction.
  const bool direct = splits == 1 && p.y_type == p.type;
  float* partial = direct ? nullptr : p.partial;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    // shared-memory limits raised by int4_gemv_configure()
    auto kernel = p.variant == 1 ? int4_gemv_v1_kernel<T> : int4_gemv_kernel<T>;
    kernel<<<grid, kWarps * 32, smem, stream>>>(
        static_cast<const uint4*>(static_cast<const void*>(p.w.qweight)),
        static_cast<const T*>(p.w.scale_zero), static_cast<const T*>(p.x),
        static_cast<const T*>(p.w.bias), static_cast<T*>(p.y), partial, p.M, p.w.K, p.w.N,
        p.w.group_size, p.x_stride, p.y_stride, tiles);
    if (!direct) launch_int4_splitk_reduce(partial, p.w.bias, p.y, p.M, p.w.N, splits, p.y_stride, p.type, p.y_type, stream);
  };
  if (p.type == ElemType::kBF16) {
    run(__nv_bfloat16{});
  } else {
    run(__half{});
  }
}

}  // namespace tandem::cuda

// int4 GEMV for M <= 4 on CUDA cores (kernel variant 2): the decode path.
//
// Same tiled layout as the tensor-core kernel (int4_layout.h): a tile is 8
// columns x 128 rows = 512 contiguous bytes, and lane t's 16 bytes are the 32
// rows {32w + 16h + 8p' + 2q + {0,1}} of column 8*nt + t/4 (q = t % 4). So one
// warp reading one tile is one fully coalesced 512-byte load, and every lane
// finishes a dot product of 32 weights of a single column; the 4 lanes of a
// column are summed with two shuffles at the end.
//
// Block: kCols (4) column tiles x kparts warps along K (kparts picked at launch
// so the grid fills the GPU); the whole block shares x, staged once in shared
// memory in "lane order" (lane q reads its 4 x pairs of a 32-row word with one
// 16-byte load; the 4 quads hit 4 consecutive 16-byte chunks: no bank
// conflicts). Each warp keeps kUnroll tiles (2 KB) of loads in flight, with
// their scales and zeros. No split-K across blocks: the kparts partial sums are
// added in a fixed order in shared memory, so the result does not depend on M
// or on the launch (deterministic).
//
// Dequantization: ((w >> 4p) & 0x000F000F) | magic gives the pair (magic + q);
// subtracting the stored (magic + zero) gives the exact integers q - zero.
// fp16: 8 products of a word (x pre-scaled by 1/16, exact, so the fp16 partial
// cannot overflow below |x| ~ 8000) are summed with hfma2, then the word's sum
// goes to fp32; the scale is applied once per group in fp32. bf16 (8-bit
// mantissa) multiplies in fp32.
#include "backend/cuda/int4_layout.h"
#include "backend/cuda/int4_mma.cuh"
#include "backend/cuda/kernels.h"

#include <algorithm>
#include <atomic>
#include <type_traits>

namespace tandem::cuda {
namespace {

constexpr int kCols = 4;      // column tiles (8 columns each) per block
constexpr int kMaxParts = 8;  // warps along K per block (block <= 1024 threads)
constexpr int kUnroll = 4;    // tiles loaded ahead per warp
constexpr int kMaxRows = 4;   // M handled by this kernel
constexpr int kMaxSmem = 196608;  // x staging limit (M * K * 2 bytes)

// Dynamic shared memory: x [M][K/8] uint4 in lane order and the kparts partial
// sums (kCols * 8 floats a row and part), then in ring mode each warp's ring
// of `ring` rounds x kUnroll tiles (512 bytes a tile) from ring_offset.
__host__ __device__ constexpr size_t staging_bytes(int rows, int K, int kparts) {
  return static_cast<size_t>(rows) * K * 2 + static_cast<size_t>(kparts) * rows * kCols * 8 * 4;
}
__host__ __device__ constexpr size_t ring_offset(int rows, int K, int kparts) {
  return (staging_bytes(rows, K, kparts) + 15) / 16 * 16;
}
// The opt-in shared memory of a block on this device (int4_gemv_v2_configure;
// backends may be made on several threads).
std::atomic<int> g_smem_limit{kMaxSmem + 4096};

__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// The zero as word_dot takes it: z2 = (magic + zero) in both halves, and for
// fp16 zhi = -(magic / 16 + zero), so that (magic + 16 q) / 16 + zhi = q - zero
// in one exact hfma2 (the nibbles at bits 4-7 need no shift).
template <typename T>
__device__ __forceinline__ typename Int4Traits<T>::T2 zero_hi(typename Int4Traits<T>::T2 z2) {
  if constexpr (std::is_same_v<T, __half>) return __hsub2(__float2half2_rn(960.f), z2);  // 1024 * 15/16 - z2
  else return z2;  // unused: bf16 has no room for a nibble at bits 4-7 (bit 7 is exponent)
}

// (word & kMask) | magic in one LOP3. Written as C++ the compiler emits two
// (LOP3 takes one immediate, and both constants are immediates): 4 extra
// instructions a word, 16 a tile, of ~140 (SASS of session 10). magic is a
// register operand, set once outside the loops.
template <uint32_t kMask>
__device__ __forceinline__ uint32_t and_or(uint32_t word, uint32_t magic) {
  uint32_t r;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(r) : "r"(word), "n"(kMask), "r"(magic));  // (a & b) | c
  return r;
}

// Sum over the 32 rows of one word: x pairs xq (lane order), weights `word`
// (pair p: the nibbles at bits 4p and 16 + 4p), zero pair z2 (magic + zero)
// and zhi (zero_hi). fp16: returns sum / 16 (x was pre-scaled).
template <typename T>
__device__ __forceinline__ float word_dot(uint32_t word, const uint4& xq, typename Int4Traits<T>::T2 z2,
                                          typename Int4Traits<T>::T2 zhi) {
  using T2 = typename Int4Traits<T>::T2;
  const uint32_t xs[4] = {xq.x, xq.y, xq.z, xq.w};
  if constexpr (std::is_same_v<T, __half>) {
    // Pairs 0 and 2 are (magic + q) - z2; pairs 1 and 3, masked in place as
    // (magic + 16 q), are scaled by 1/16 and shifted by zhi: 13 instructions a
    // word instead of 15, with the same exact differences.
    constexpr uint32_t kMagic = Int4Traits<T>::kMagic;
    const uint32_t high = word >> 8;
    const __half2 sixteenth = __float2half2_rn(0.0625f);
    __half2 d[4];
    d[0] = __hsub2(from_u32<__half2>(and_or<0x000F000Fu>(word, kMagic)), z2);
    d[1] = __hfma2(from_u32<__half2>(and_or<0x00F000F0u>(word, kMagic)), sixteenth, zhi);
    d[2] = __hsub2(from_u32<__half2>(and_or<0x000F000Fu>(high, kMagic)), z2);
    d[3] = __hfma2(from_u32<__half2>(and_or<0x00F000F0u>(high, kMagic)), sixteenth, zhi);
    __half2 h = __float2half2_rn(0.f);
#pragma unroll
    for (int p = 0; p < 4; ++p) h = __hfma2(d[p], from_u32<__half2>(xs[p]), h);
    const float2 f = __half22float2(h);
    return f.x + f.y;
  } else {
    float s = 0.f;
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      const uint32_t bits = and_or<0x000F000Fu>(word >> (4 * p), Int4Traits<T>::kMagic);
      const T2 d = __hsub2(from_u32<T2>(bits), z2);
      const float2 df = __bfloat1622float2(d);
      const float2 xf = __bfloat1622float2(from_u32<T2>(xs[p]));
      s = fmaf(df.x, xf.x, s);
      s = fmaf(df.y, xf.y, s);
    }
    return s;
  }
}

// A scale loaded as its 16 bits (the kernel's scale_bits), in fp32.
template <typename T>
__device__ __forceinline__ float scale_f32(uint32_t bits) {
  const unsigned short h = static_cast<unsigned short>(bits & 0xFFFFu);
  if constexpr (std::is_same_v<T, __half>) return __half2float(__ushort_as_half(h));
  else return __bfloat162float(__ushort_as_bfloat16(h));
}

// grid: ceil(N / (8 * kC)); block: 32 * kC * kparts threads. kC = kCols, or 1
// for narrow layers (N < ~2k: k/v projections) so that more SMs get blocks.
// kSwiglu (kC = 4): the block's column tiles are gate tiles 2b, 2b+1 and the
// up tiles N/16 + 2b, N/16 + 2b + 1, and it writes 16 columns of silu(gate) * up;
// grid ceil(N / 32).
// Dynamic smem: x [MR][K/8] uint4 in lane order, then kparts * MR * 32 floats.
template <typename T, typename Y, int MR, bool kTileGroups, int kC, bool kSwiglu>
__global__ void __launch_bounds__(32 * kC * kMaxParts)
    int4_gemv_v2_kernel(const uint4* __restrict__ qweight, const T* __restrict__ scales,
                        const T* __restrict__ x, const T* __restrict__ bias, Y* __restrict__ y, int K, int N,
                        int group_size, uint32_t group_magic, int64_t x_stride, int64_t y_stride, int kparts,
                        bool prefetch,
                        int ring, bool scale_ahead, Int4GemvFusion fuse) {
  static_assert(!kSwiglu || kC == 4, "SwiGLU blocks pair 2 gate tiles with 2 up tiles");
  using T2 = typename Int4Traits<T>::T2;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint4* xs = reinterpret_cast<uint4*>(smem_raw);
  const int words_k = K / 8;  // uint4 per x row (8 elements each)
  float* red = reinterpret_cast<float*>(xs + MR * words_k);

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int ct = warp % kC, kp = warp / kC;
  const int q = lane & 3;
  const int num_ktiles = K / kInt4TileK, num_ntiles = N / kInt4TileN;
  const int num_groups = K / group_size;
  // The group of tile t (kTileGroups) or of packed row k (otherwise) by a
  // multiply-high with group_magic (group_magic_for), not the ~14-instruction
  // signed division the compiler emits for row / group_size, and no branch.
  auto group_of = [&](int i) { return static_cast<int>(__umulhi(2u * static_cast<uint32_t>(i), group_magic)); };
  int nt;  // this warp's column tile, clamped to a real one when inactive
  bool active;
  if constexpr (kSwiglu) {
    const int half = num_ntiles / 2, gi = blockIdx.x * 2 + (ct & 1);
    active = gi < half;
    nt = (ct < 2 ? 0 : half) + min(gi, half - 1);
  } else {
    active = blockIdx.x * kC + ct < num_ntiles;
    nt = min(blockIdx.x * kC + ct, num_ntiles - 1);
  }
  const int n = nt * kInt4TileN + (lane >> 2);
  const int per = (num_ktiles + kparts - 1) / kparts;
  const int kt_begin = kp * per, kt_end = min(num_ktiles, kt_begin + per);
  const uint4* wcol = qweight + static_cast<int64_t>(nt) * num_ktiles * 32 + lane;
  // The lane's zeros (column n, one per group) and scales (group g at g * N):
  // 32-bit offsets from per-lane bases, one IMAD.WIDE an access instead of 64-bit
  // add-and-shift chains (num_groups * N < 2^31: int4_gemv_v2_supports).
  const T* zcol = scales + static_cast<int64_t>(num_groups) * N + static_cast<int64_t>(n) * num_groups;
  const unsigned short* scol = reinterpret_cast<const unsigned short*>(scales) + n;
  // Opaque to the compiler, so that an access is base + 32-bit offset (one
  // IMAD.WIDE.U32) instead of a 64-bit index chain rebuilt from the kernel
  // arguments every time.
  asm("" : "+l"(zcol));
  asm("" : "+l"(scol));
  const uint32_t scale_stride = 2u * static_cast<uint32_t>(N);  // bytes from one group's scales to the next

  // First weight batch in flight before x is staged. Weights are constants, so
  // under programmatic dependent launch (PDL) these loads may start while the
  // kernel before (which writes x) is still running; griddepcontrol.wait then
  // waits for it to finish (a no-op when launched without PDL).
  allow_dependent_launch();
  uint4 wv[kUnroll];
  int kt = kt_begin;
  // Ring mode (ring >= 2): the warp's tiles go through `ring` rounds of kUnroll
  // tiles in shared memory (cp.async, no registers held), refilled as each
  // round is used, so a DRAM round trip overlaps the work on the rounds before.
  // Lane t copies and later reads only its own 16 bytes of every tile, so its
  // own cp.async.wait_group orders them: no barrier between the lanes.
  uint4* wring = reinterpret_cast<uint4*>(smem_raw + ring_offset(MR, K, kparts)) +
                 static_cast<int64_t>(warp) * ring * kUnroll * 32;
  const int nrounds = active ? (kt_end - kt_begin + kUnroll - 1) / kUnroll : 0;
  auto issue_round = [&](int r) {  // round r into slot r % ring; an empty group past the end
    uint4* slot = wring + (r % ring) * kUnroll * 32;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int k = kt_begin + r * kUnroll + u;
      const bool valid = r < nrounds && k < kt_end;
      cp_async16(slot + u * 32 + lane, wcol + (valid ? k * 32 : 0), valid);
    }
    cp_async_commit();
  };
  if (ring >= 2) {
    for (int r = 0; r < ring; ++r) issue_round(r);
  }
  const bool first_full = ring < 2 && active && kt + kUnroll <= kt_end;
  // Scale-ahead (whole-tile groups): each round's scales and zeros are loaded
  // with its weights, so a round waits one memory round trip, not two (the
  // weights, then the scales their dot products need).
  const bool meta_ahead = kTileGroups && scale_ahead && !prefetch;
  // The scale bits of the lane's column n in group g.
  auto scale_bits = [&](int g) -> uint32_t {
    return __ldg(reinterpret_cast<const unsigned short*>(reinterpret_cast<const char*>(scol) +
                                                        static_cast<uint64_t>(static_cast<uint32_t>(g)) * scale_stride));
  };
  T2 zr[kUnroll / 2];  // tile u's zero in element u % 2 of pair u / 2
  uint32_t sr[kUnroll];
  auto load_meta = [&](int k0) {
#pragma unroll
    for (int u = 0; u < kUnroll; u += 2) {
      const int g0 = group_of(k0 + u);
      const int g1 = group_of(k0 + u + 1);
      zr[u / 2] = T2{zcol[static_cast<uint32_t>(g0)], zcol[static_cast<uint32_t>(g1)]};
      sr[u] = scale_bits(g0);
      sr[u + 1] = scale_bits(g1);
    }
  };
  if (first_full) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) wv[u] = ld_stream(wcol + (kt + u) * 32);
    if (meta_ahead) load_meta(kt);
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif

  // Fused RMSNorm: each block computes its rows' 1/rms itself (K elements from
  // L2, cheap next to the weights) and stages x * inv * norm_w, rounded to T as
  // the separate norm kernel stores it.
  __shared__ float inv_s[kMaxRows];
  if (fuse.norm_weight != nullptr) {
    __shared__ float ss_s[kMaxRows][32];
#pragma unroll
    for (int m = 0; m < MR; ++m) {
      float ss = 0.f;
      for (int i = threadIdx.x; i < words_k; i += blockDim.x) {
        const uint4 raw = *reinterpret_cast<const uint4*>(x + m * x_stride + 8 * i);
        const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
        for (int u = 0; u < 8; ++u) ss += to_f32(e[u]) * to_f32(e[u]);
      }
      ss = warp_sum(ss);
      if (lane == 0) ss_s[m][warp] = ss;
    }
    __syncthreads();
    if (threadIdx.x < MR) {
      float t = 0.f;
      for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) t += ss_s[threadIdx.x][w];
      inv_s[threadIdx.x] = rsqrtf(t / K + fuse.eps);
    }
    __syncthreads();
  }

  // Stage x: chunk j = (kt * 4 + w) * 4 + q holds the pairs at rows
  // 128 kt + 32 w + 2 q + {0, 8, 16, 24}.
  // Rows outer, chunks inner: no run-time division by words_k per chunk.
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    for (int j = threadIdx.x; j < words_k; j += blockDim.x) {
      const int k0 = (j >> 4) * 128 + ((j >> 2) & 3) * 32 + (j & 3) * 2;
      const T* src = x + m * x_stride + k0;
      uint32_t v[4];
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        uint32_t b = *reinterpret_cast<const uint32_t*>(src + 8 * p);
        if (fuse.norm_weight != nullptr) {
          const T2 xv = from_u32<T2>(b);
          const float inv = inv_s[m];
          const float2 w = *reinterpret_cast<const float2*>(fuse.norm_weight + k0 + 8 * p);
          T2 o;
          o.x = from_f32<T>(to_f32(xv.x) * inv * w.x);
          o.y = from_f32<T>(to_f32(xv.y) * inv * w.y);
          b = as_u32(o);
        }
        if constexpr (std::is_same_v<T, __half>)
          b = as_u32(__hmul2(from_u32<__half2>(b), __float2half2_rn(0.0625f)));
        v[p] = b;
      }
      xs[m * words_k + j] = make_uint4(v[0], v[1], v[2], v[3]);
    }
  }
  __syncthreads();

  float acc[MR];
#pragma unroll
  for (int m = 0; m < MR; ++m) acc[m] = 0.f;

  // One tile of a whole-tile group with its zero z and scale bits sbits.
  auto tile_meta = [&](const uint4& w4, int t, T z, uint32_t sbits) {
    const uint32_t words[4] = {w4.x, w4.y, w4.z, w4.w};
    const T2 z2{z, z};
    const T2 zhi = zero_hi<T>(z2);
    const float s = scale_f32<T>(sbits);
    float part[MR];
#pragma unroll
    for (int m = 0; m < MR; ++m) part[m] = 0.f;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
#pragma unroll
      for (int m = 0; m < MR; ++m) part[m] += word_dot<T>(words[w], xs[m * words_k + (t * 4 + w) * 4 + q], z2, zhi);
    }
#pragma unroll
    for (int m = 0; m < MR; ++m) acc[m] = fmaf(part[m], s, acc[m]);
  };
  auto tile = [&](const uint4& w4, int t) {
    if constexpr (kTileGroups) {
      const int g = group_of(t);
      tile_meta(w4, t, zcol[static_cast<uint32_t>(g)], scale_bits(g));
    } else {
      const uint32_t words[4] = {w4.x, w4.y, w4.z, w4.w};
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const int g = group_of(t * kInt4TileK + 32 * w);
        const T z = zcol[static_cast<uint32_t>(g)];
        const T2 z2{z, z};
        const T2 zhi = zero_hi<T>(z2);
        const float s = scale_f32<T>(scale_bits(g));
#pragma unroll
        for (int m = 0; m < MR; ++m)
          acc[m] = fmaf(word_dot<T>(words[w], xs[m * words_k + (t * 4 + w) * 4 + q], z2, zhi), s, acc[m]);
      }
    }
  };

  if (ring >= 2) {
    for (int r = 0; r < nrounds; ++r) {
      // Round r landed; the ring - 1 rounds after it may still be in flight.
      if (ring >= 4) cp_async_wait<3>();
      else if (ring == 3) cp_async_wait<2>();
      else cp_async_wait<1>();
      const uint4* slot = wring + (r % ring) * kUnroll * 32;
      const int k0 = kt_begin + r * kUnroll;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (k0 + u < kt_end) tile(slot[u * 32 + lane], k0 + u);
      }
      issue_round(r + ring);  // the slot just used: after its reads (same lane, in order)
    }
    cp_async_wait<0>();
  } else if (active) {
    if (first_full && prefetch) {
      // The 4 loaded tiles as a ring of two halves: use one half while the
      // other is in flight, then reload it (2-4 tiles always in flight, in the
      // same registers; a second 4-tile buffer would spill at 1024 threads).
      constexpr int H = kUnroll / 2;
      for (;;) {  // wv[0, H) holds tiles [kt, kt + H), wv[H, 2H) holds [kt + H, kt + 2H)
#pragma unroll
        for (int u = 0; u < H; ++u) tile(wv[u], kt + u);
        const bool more_a = kt + 3 * H <= kt_end;
        if (more_a) {
#pragma unroll
          for (int u = 0; u < H; ++u) wv[u] = ld_stream(wcol + (kt + 2 * H + u) * 32);
        }
#pragma unroll
        for (int u = 0; u < H; ++u) tile(wv[H + u], kt + H + u);
        kt += 2 * H;
        if (!more_a) break;
        if (kt + 2 * H > kt_end) {  // wv[0, H) holds [kt, kt + H), nothing more whole
#pragma unroll
          for (int u = 0; u < H; ++u) tile(wv[u], kt + u);
          kt += H;
          break;
        }
#pragma unroll
        for (int u = 0; u < H; ++u) wv[H + u] = ld_stream(wcol + (kt + H + u) * 32);
      }
    } else if (first_full && meta_ahead) {
      const uint4* wround = wcol + kt * 32;
      for (;;) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u)
          tile_meta(wv[u], kt + u, u % 2 ? zr[u / 2].y : zr[u / 2].x, sr[u]);
        kt += kUnroll;
        if (kt + kUnroll > kt_end) break;
        wround += kUnroll * 32;  // a running pointer: constant offsets below
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) wv[u] = ld_stream(wround + u * 32);
        load_meta(kt);
      }
    } else if (first_full) {
      for (;;) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) tile(wv[u], kt + u);
        kt += kUnroll;
        if (kt + kUnroll > kt_end) break;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) wv[u] = ld_stream(wcol + (kt + u) * 32);
      }
    }
    for (; kt < kt_end; ++kt) tile(ld_stream(wcol + kt * 32), kt);
  }

  // The 4 lanes of a column, then the kparts warps of a column tile, in order.
  constexpr float kPost = std::is_same_v<T, __half> ? 16.f : 1.f;  // undo the x pre-scale
#pragma unroll
  for (int m = 0; m < MR; ++m) {
    float v = acc[m];
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    v += __shfl_xor_sync(0xffffffffu, v, 2);
    if (q == 0) red[(kp * MR + m) * (kC * 8) + ct * 8 + (lane >> 2)] = v * kPost;
  }
  __syncthreads();
  if constexpr (kSwiglu) {
    // Column c of this block's 16: gate in red column c, up in red column 16 + c.
    const int half_n = N / 2;
    for (int i = threadIdx.x; i < MR * 16; i += blockDim.x) {
      const int m = i / 16, c = i % 16;
      const int col = blockIdx.x * 16 + c;
      if (col >= half_n) continue;
      float g = 0.f, u = 0.f;
      for (int k = 0; k < kparts; ++k) {
        g += red[(k * MR + m) * (kC * 8) + c];
        u += red[(k * MR + m) * (kC * 8) + 16 + c];
      }
      if (bias) {
        g += to_f32(bias[col]);
        u += to_f32(bias[half_n + col]);
      }
      g = to_f32(from_f32<T>(g));  // the gate_up buffer's rounding
      u = to_f32(from_f32<T>(u));
      y[m * y_stride + col] = from_f32<Y>(g / (1.f + __expf(-g)) * u);
    }
  } else {
    for (int i = threadIdx.x; i < MR * kC * 8; i += blockDim.x) {
      const int m = i / (kC * 8), c = i % (kC * 8);
      const int col = blockIdx.x * kC * 8 + c;
      if (col >= N) continue;
      float s = 0.f;
      for (int k = 0; k < kparts; ++k) s += red[(k * MR + m) * (kC * 8) + c];
      if (bias) s += to_f32(bias[col]);
      // Fused residual add (y may alias it: this thread reads then writes its element).
      if (fuse.residual != nullptr) s += to_f32(static_cast<const T*>(fuse.residual)[m * y_stride + col]);
      y[m * y_stride + col] = from_f32<Y>(s);
    }
  }
}

// The kernel shape of a call: rows, whole-tile groups, block width, SwiGLU.
struct V2Shape {
  int rows;
  bool tile_groups;
  int cols;  // column tiles per block: kCols, or 1 for narrow layers
  bool swiglu;
};

// Calls f(kernel pointer) for the instantiation of `s`; SwiGLU exists only for
// y in the activation type and 4-tile blocks.
template <typename T, typename Y, int MR, typename F>
void with_v2_kernel_rows(const V2Shape& s, F&& f) {
  if constexpr (std::is_same_v<T, Y>) {
    if (s.swiglu) {
      if (s.tile_groups) f(int4_gemv_v2_kernel<T, Y, MR, true, kCols, true>, kCols, true);
      else f(int4_gemv_v2_kernel<T, Y, MR, false, kCols, true>, kCols, true);
      return;
    }
  }
  if (s.cols == 1) {
    if (s.tile_groups) f(int4_gemv_v2_kernel<T, Y, MR, true, 1, false>, 1, false);
    else f(int4_gemv_v2_kernel<T, Y, MR, false, 1, false>, 1, false);
  } else {
    if (s.tile_groups) f(int4_gemv_v2_kernel<T, Y, MR, true, kCols, false>, kCols, false);
    else f(int4_gemv_v2_kernel<T, Y, MR, false, kCols, false>, kCols, false);
  }
}

template <typename T, typename Y, typename F>
void with_v2_kernel(const V2Shape& s, F&& f) {
  switch (s.rows) {
    case 1: with_v2_kernel_rows<T, Y, 1>(s, f); break;
    case 2: with_v2_kernel_rows<T, Y, 2>(s, f); break;
    case 3: with_v2_kernel_rows<T, Y, 3>(s, f); break;
    case 4: with_v2_kernel_rows<T, Y, 4>(s, f); break;
    default: break;
  }
}

// The kernel's group_magic: group_of(i) = umulhi(2 i, magic) = i / d, with d
// the group size in tiles (whole-tile groups: i is a tile) or in rows (i is
// a row). Exact: 2^31 / d for a power of two; for other d, floor(2^31 / d) + 1
// errs by less than 2 i / 2^32, which stays below 1 / d while i * d < 2^31
// (int4_gemv_v2_supports).
uint32_t group_magic_for(int group_size) {
  const uint32_t d = group_size % kInt4TileK == 0 ? group_size / kInt4TileK : group_size;
  const uint32_t base = (1u << 31) / d;
  return (d & (d - 1)) == 0 ? base : base + 1;
}

template <typename T, typename Y>
void launch_typed(const Int4GemvParams& p, int kparts, bool narrow, size_t smem, int ring, cudaStream_t stream) {
  const V2Shape shape{p.M, p.w.group_size % kInt4TileK == 0, narrow ? 1 : kCols, p.fuse.swiglu};
  const uint32_t group_magic = group_magic_for(p.w.group_size);
  with_v2_kernel<T, Y>(shape, [&](auto kernel, int cols, bool swiglu) {
    const int ntiles = p.w.N / kInt4TileN;
    const int blocks = swiglu ? ceil_div(ntiles / 2, 2) : ceil_div(ntiles, cols);
    launch_maybe_pdl(p.pdl, kernel, dim3(blocks), dim3(32 * cols * kparts), smem, stream,
                     static_cast<const uint4*>(static_cast<const void*>(p.w.qweight)),
                     static_cast<const T*>(p.w.scale_zero), static_cast<const T*>(p.x),
                     static_cast<const T*>(p.w.bias), static_cast<Y*>(p.y), p.w.K, p.w.N, p.w.group_size, group_magic,
                     p.x_stride, p.y_stride, kparts, p.prefetch, ring, p.scale_ahead, p.fuse);
  });
}

// Each kernel may take optin minus its own static shared memory (inv_s, ss_s)
// as dynamic shared memory: asking for the whole optin is an invalid argument.
// *limit becomes the least of these over the kernels.
template <typename T, typename Y>
void configure_typed(int optin, int* limit, cudaError_t* err) {
  for (int rows = 1; rows <= kMaxRows; ++rows) {
    for (int g = 0; g < 2; ++g) {
      for (int shape = 0; shape < 3; ++shape) {
        const V2Shape s{rows, g == 1, shape == 1 ? 1 : kCols, shape == 2};
        with_v2_kernel<T, Y>(s, [&](auto kernel, int, bool) {
          const void* fn = reinterpret_cast<const void*>(kernel);
          cudaFuncAttributes attr{};
          cudaError_t e = cudaFuncGetAttributes(&attr, fn);
          const int dynamic = optin - static_cast<int>(attr.sharedSizeBytes);
          if (e == cudaSuccess) e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, dynamic);
          if (e == cudaSuccess) *limit = std::min(*limit, dynamic);
          if (e != cudaSuccess && *err == cudaSuccess) *err = e;
        });
      }
    }
  }
}

}  // namespace

bool int4_gemv_v2_supports(int M, int K, int N, int group_size, ElemType type, ElemType y_type) {
  // Scale offsets are 32-bit: (groups - 1) * N + N - 1 < 2^31.
  const int64_t groups = group_size > 0 ? K / group_size : 1;
  // ... and group_magic_for's exactness: row * group_size < 2^31 (groups of rows).
  const bool magic_exact = group_size % kInt4TileK == 0 || static_cast<int64_t>(K) * group_size < (int64_t{1} << 31);
  return M >= 1 && M <= kMaxRows && static_cast<int64_t>(M) * K * 2 <= kMaxSmem && groups * N < (int64_t{1} << 31) &&
         group_size > 0 && magic_exact &&
         staging_bytes(M, K, kMaxParts) <= static_cast<size_t>(g_smem_limit.load()) && type != ElemType::kF32 &&
         (y_type == type || y_type == ElemType::kF32);
}

// Warps along K. Measured on the H100 (docs/cuda.md, run 5) over the Mistral-7B
// and DeepSeek-33B shapes: 2 when there are at least 2 blocks per SM, else 4
// (1 was never best; 8 only for long K with at most one block per SM); at least
// 4 tiles per warp.
namespace {
// Narrow layers (fewer than half as many 4-tile blocks as SMs) get blocks of 1
// column tile. (Also tried: 1-tile blocks wherever 4-tile ones spread unevenly
// over the SMs, or for every layer: 3-5% slower at batch 1, session 10.)
bool v2_narrow(int N, int sms) { return ceil_div(N / kInt4TileN, kCols) * 2 < sms; }
}  // namespace

bool int4_gemv_v2_swiglu(int N, int num_sms) {
  return N % (2 * kInt4TileN) == 0 && !v2_narrow(N, num_sms > 0 ? num_sms : 132);
}


namespace {
int kparts_for(int K, int N, int sms, bool narrow) {
  const int num_ktiles = K / kInt4TileK;
  if (narrow) {
    int kp = kMaxParts;
    while (kp > 1 && num_ktiles / kp < 4) --kp;
    return kp;
  }
  const int blocks = ceil_div(N / kInt4TileN, kCols);
  // Mistral down (K = 14336, 128 blocks): 8 beat 4 in both runs.
  int kp = blocks >= 2 * sms ? 2 : blocks <= sms && num_ktiles >= 64 ? 8 : 4;
  while (kp > 1 && num_ktiles / kp < 4) --kp;
  return kp;
}
}  // namespace

int int4_gemv_v2_kparts(int K, int N, int num_sms) {
  const int sms = num_sms > 0 ? num_sms : 132;
  return kparts_for(K, N, sms, v2_narrow(N, sms));
}

cudaError_t int4_gemv_v2_configure() {
  // As much shared memory as a block may opt into (227 KiB on Hopper, less the
  // kernel's static shared memory), for the ring mode.
  int device = 0, optin = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err != cudaSuccess) return err;
  int limit = optin;
  configure_typed<__half, __half>(optin, &limit, &err);
  configure_typed<__half, float>(optin, &limit, &err);
  configure_typed<__nv_bfloat16, __nv_bfloat16>(optin, &limit, &err);
  configure_typed<__nv_bfloat16, float>(optin, &limit, &err);
  if (err == cudaSuccess) g_smem_limit.store(limit);
  return err;
}

void launch_int4_gemv_v2(const Int4GemvParams& p, cudaStream_t stream) {
  const int sms = p.num_sms > 0 ? p.num_sms : 132;
  const bool narrow = !p.fuse.swiglu && v2_narrow(p.w.N, sms);
  int kparts = p.blocks_per_sm > 100
                   ? p.blocks_per_sm - 100
                   : std::clamp(kparts_for(p.w.K, p.w.N, sms, narrow), 1, std::max(1, p.max_parts));
  size_t smem = staging_bytes(p.M, p.w.K, kparts);
  // Ring mode: the deepest ring of at most p.ring rounds that fits; under 2, none.
  const size_t warp_round = static_cast<size_t>((narrow ? 1 : kCols) * kparts) * kUnroll * kInt4TileWords * 4;
  const size_t ring_base = ring_offset(p.M, p.w.K, kparts);
  int ring = std::min(p.ring, 4);
  const size_t limit = static_cast<size_t>(g_smem_limit.load());
  while (ring >= 2 && ring_base + ring * warp_round > limit) --ring;
  if (ring >= 2) smem = ring_base + ring * warp_round;
  else ring = 0;
  if (p.type == ElemType::kBF16) {
    if (p.y_type == ElemType::kF32) launch_typed<__nv_bfloat16, float>(p, kparts, narrow, smem, ring, stream);
    else launch_typed<__nv_bfloat16, __nv_bfloat16>(p, kparts, narrow, smem, ring, stream);
  } else {
    if (p.y_type == ElemType::kF32) launch_typed<__half, float>(p, kparts, narrow, smem, ring, stream);
    else launch_typed<__half, __half>(p, kparts, narrow, smem, ring, stream);
  }
}

}  // namespace tandem::cuda

// Helpers of the linear layers: int4 -> dense dequantization (the prefill path
// feeds the result to cuBLASLt), act-order column gathers, bias adds.
#include "backend/cuda/int4_layout.h"
#include "backend/cuda/int4_mma.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

// One thread per (tile, lane): 32 values of column n, written into out[n][k].
template <typename T>
__global__ void int4_dequant_kernel(const uint4* qweight, const typename Int4Traits<T>::T2* scale_zero,
                                    T* out, int K, int N, int group_size) {
  using T2 = typename Int4Traits<T>::T2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int num_ktiles = K / kInt4TileK;
  if (i >= static_cast<int64_t>(N / kInt4TileN) * num_ktiles * 32) return;
  const int lane = static_cast<int>(i % 32);
  const int64_t tile = i / 32;
  const int nt = static_cast<int>(tile / num_ktiles), kt = static_cast<int>(tile % num_ktiles);
  const int n = nt * kInt4TileN + lane / 4, q = lane % 4;
  const uint4 raw = qweight[i];
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
  const int num_groups = K / group_size;
  T* row = out + static_cast<int64_t>(n) * K + kt * kInt4TileK;
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const int group = (kt * kInt4TileK + 32 * w) / group_size;
    const T* scales = reinterpret_cast<const T*>(scale_zero);
    const T* zeros = scales + static_cast<int64_t>(num_groups) * N;
    const T s = scales[static_cast<int64_t>(group) * N + n], z = zeros[static_cast<int64_t>(n) * num_groups + group];
    const T2 scale2 = T2{s, s}, zero2 = T2{z, z};
#pragma unroll
    for (int pp = 0; pp < 4; ++pp) {
      const uint32_t bits = ((words[w] >> (4 * pp)) & 0x000F000Fu) | Int4Traits<T>::kMagic;
      const T2 v = __hmul2(__hsub2(*reinterpret_cast<const T2*>(&bits), zero2), scale2);
      const int step = 2 * w + pp / 2;
      const int r = step * 16 + 2 * q + (pp % 2) * 8;
      *reinterpret_cast<T2*>(row + r) = v;
    }
  }
}

// dst[m, k] = src[m, perm[k]]
template <typename T>
__global__ void gather_cols_kernel(const T* src, T* dst, const int32_t* perm, int K,
                                   int64_t src_stride) {
  const int m = blockIdx.y;
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < K) dst[static_cast<int64_t>(m) * K + k] = src[m * src_stride + perm[k]];
}

template <typename Y, typename B>
__global__ void add_bias_kernel(Y* y, const B* bias, int N, int64_t y_stride) {
  const int m = blockIdx.y;
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n < N) {
    Y* p = y + m * y_stride + n;
    *p = from_f32<Y>(to_f32(*p) + to_f32(bias[n]));
  }
}

}  // namespace

void launch_int4_dequant(const Int4Weight& w, void* out, ElemType type, cudaStream_t stream) {
  const int64_t threads = static_cast<int64_t>(w.N / kInt4TileN) * (w.K / kInt4TileK) * 32;
  const int blocks = ceil_div(threads, 256);
  const uint4* qw = static_cast<const uint4*>(static_cast<const void*>(w.qweight));
  if (type == ElemType::kBF16) {
    int4_dequant_kernel<__nv_bfloat16><<<blocks, 256, 0, stream>>>(
        qw, static_cast<const __nv_bfloat162*>(w.scale_zero), static_cast<__nv_bfloat16*>(out),
        w.K, w.N, w.group_size);
  } else {
    int4_dequant_kernel<__half><<<blocks, 256, 0, stream>>>(
        qw, static_cast<const __half2*>(w.scale_zero), static_cast<__half*>(out), w.K, w.N,
        w.group_size);
  }
}

void launch_gather_cols(const void* src, void* dst, const int32_t* perm, int M, int K,
                        int64_t src_stride, ElemType type, cudaStream_t stream) {
  if (M == 0) return;
  dim3 grid(ceil_div(K, 256), M);
  TANDEM_DISPATCH_TYPE(type, T, {
    gather_cols_kernel<T><<<grid, 256, 0, stream>>>(static_cast<const T*>(src),
                                                    static_cast<T*>(dst), perm, K, src_stride);
  });
}

void launch_add_bias(void* y, ElemType y_type, const void* bias, ElemType bias_type, int M, int N,
                     int64_t y_stride, cudaStream_t stream) {
  if (M == 0) return;
  dim3 grid(ceil_div(N, 256), M);
  TANDEM_DISPATCH_TYPE(y_type, Y, TANDEM_DISPATCH_TYPE(bias_type, B, {
    add_bias_kernel<Y, B><<<grid, 256, 0, stream>>>(static_cast<Y*>(y),
                                                    static_cast<const B*>(bias), N, y_stride);
  }));
}

}  // namespace tandem::cuda

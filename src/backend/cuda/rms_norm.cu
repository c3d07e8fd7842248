// RMSNorm, optionally fused with the residual add: one block per row, fp32 math.
#include <cooperative_groups.h>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

// x[j] (+ residual[j], stored back rounded to T): the value to normalize is what
// the residual stream holds, as on the CPU.
template <typename T>
__device__ __forceinline__ float add_residual(const T* x, T* residual, int j) {
  float v = to_f32(x[j]);
  if (residual) {
    const T stored = from_f32<T>(v + to_f32(residual[j]));
    residual[j] = stored;
    v = to_f32(stored);
  }
  return v;
}

template <typename T, typename W>
__global__ void rms_norm_kernel(const T* x, T* residual, const W* weight, T* out, int hidden,
                                int64_t x_stride, int64_t out_stride, float eps) {
  allow_dependent_launch();
  wait_prior_grid();
  extern __shared__ float row[];  // [hidden] the (summed) input in fp32
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const T* xr = x + r * x_stride;
  T* res = residual ? residual + r * static_cast<int64_t>(hidden) : nullptr;
  float ss = 0.f;
  for (int j = threadIdx.x; j < hidden; j += blockDim.x) {
    const float v = add_residual(xr, res, j);
    row[j] = v;
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float inv = rsqrtf(ss / hidden + eps);
  T* o = out + r * out_stride;
  for (int j = threadIdx.x; j < hidden; j += blockDim.x) {
    o[j] = from_f32<T>(row[j] * inv * to_f32(weight[j]));
  }
}

constexpr int kClusterBlocks = 8;    // blocks per row (portable cluster size)
constexpr int kClusterThreads = 256;
constexpr int kClusterPerThread = 8;  // elements per thread: hidden <= 8 * 256 * 8 = 16384

// grid (rows * 8), cluster (8): block `rank` of row r owns the slice
// [rank * slice, (rank + 1) * slice) of the row and reads and writes only that,
// so out may alias x and no block reads what another writes.
template <typename T, typename W>
__global__ void __launch_bounds__(kClusterThreads)
    rms_norm_cluster_kernel(const T* x, T* residual, const W* weight, T* out, int hidden, int64_t x_stride,
                            int64_t out_stride, float eps, int slice) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  allow_dependent_launch();
  wait_prior_grid();
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  __shared__ float scratch[32];
  __shared__ float partial;  // this block's sum of squares, read by the whole cluster
  const int rank = static_cast<int>(cluster.block_rank());
  const int64_t r = blockIdx.x / kClusterBlocks;
  const int lo = rank * slice, hi = min(hidden, lo + slice);
  const T* xr = x + r * x_stride;
  T* res = residual ? residual + r * static_cast<int64_t>(hidden) : nullptr;
  float v[kClusterPerThread];
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < kClusterPerThread; ++i) {
    const int j = lo + threadIdx.x + i * kClusterThreads;
    v[i] = 0.f;
    if (j < hi) {
      const float a = add_residual(xr, res, j);
      v[i] = a;
      ss += a * a;
    }
  }
  ss = block_sum(ss, scratch);
  if (threadIdx.x == 0) partial = ss;
  cluster.sync();
  float total = 0.f;
#pragma unroll
  for (int k = 0; k < kClusterBlocks; ++k) total += *cluster.map_shared_rank(&partial, k);
  cluster.sync();  // every block has read every partial before any block exits
  const float inv = rsqrtf(total / hidden + eps);
  T* o = out + r * out_stride;
#pragma unroll
  for (int i = 0; i < kClusterPerThread; ++i) {
    const int j = lo + threadIdx.x + i * kClusterThreads;
    if (j < hi) o[j] = from_f32<T>(v[i] * inv * to_f32(weight[j]));
  }
#endif
}

}  // namespace

void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  if (p.rows == 0) return;
  const int slice = (p.hidden + kClusterBlocks - 1) / kClusterBlocks;
  // Few rows: one block per row would leave the GPU idle (at batch 1 the whole
  // kernel is one block), so each row gets a cluster of 8 blocks.
  if (p.clusters && p.rows <= 16 && p.hidden >= 1024 && slice <= kClusterThreads * kClusterPerThread) {
    TANDEM_DISPATCH_TYPE(p.type, T, TANDEM_DISPATCH_TYPE(p.weight_type, W, {
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = dim3(p.rows * kClusterBlocks);
      cfg.blockDim = dim3(kClusterThreads);
      cfg.stream = stream;
      cudaLaunchAttribute attr[2];
      attr[0].id = cudaLaunchAttributeClusterDimension;
      attr[0].val.clusterDim.x = kClusterBlocks;
      attr[0].val.clusterDim.y = 1;
      attr[0].val.clusterDim.z = 1;
      attr[1] = pdl_attribute();
      cfg.attrs = attr;
      cfg.numAttrs = pdl_enabled() ? 2 : 1;
      cudaLaunchKernelEx(&cfg, rms_norm_cluster_kernel<T, W>, static_cast<const T*>(p.x), static_cast<T*>(p.residual),
                         static_cast<const W*>(p.weight), static_cast<T*>(p.out), p.hidden, p.x_stride, p.out_stride,
                         p.eps, slice);
    }));
    return;
  }
  const size_t smem = static_cast<size_t>(p.hidden) * sizeof(float);
  TANDEM_DISPATCH_TYPE(p.type, T, TANDEM_DISPATCH_TYPE(p.weight_type, W, {
    auto kernel = rms_norm_kernel<T, W>;
    if (smem > 48 * 1024) {
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           static_cast<int>(smem));
    }
    // One block per row: at batch 1 that one block is the whole kernel, so give
    // it 1024 threads for wide rows (4 elements per thread at hidden 4096).
    const int threads = p.hidden >= 4096 ? 1024 : 256;
    launch_pdl(kernel, p.rows, threads, smem, stream,
        static_cast<const T*>(p.x), static_cast<T*>(p.residual), static_cast<const W*>(p.weight),
        static_cast<T*>(p.out), p.hidden, p.x_stride, p.out_stride, p.eps);
  }));
}

}  // namespace tandem::cuda

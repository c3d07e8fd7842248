// Bulk L2 prefetch of weights the next kernels will read (Backend::prefetch_weights).
// Issued before a kernel that reads little memory (the batch-1 decode
// attention), so HBM streams the o and gate|up weights while the attention
// works through its chain of dependent loads. Fire and forget: nothing waits
// for the data, a linear that finds it in L2 is simply faster.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

struct SpanArgs {
  L2PrefetchSpan s[kMaxL2PrefetchSpans];
  int n;
};

__device__ __forceinline__ void prefetch_to_l2(const char* p, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p), "r"(bytes) : "memory");
#else
  for (uint32_t off = 0; off < bytes; off += 128) asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p + off));
#endif
}

// One chunk per thread (grid-stride). The prefetches are issued before
// griddepcontrol.wait: they read weights only, so under PDL they start while
// the kernel before (the q/k/v GEMV) drains; waiting then keeps the rule that
// a kernel finishing implies its predecessor finished.
__global__ void l2_prefetch_kernel(SpanArgs args) {
  allow_dependent_launch();
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int si = 0; si < args.n; ++si) {
    const L2PrefetchSpan& s = args.s[si];
    const int64_t chunks = s.outer_count * s.inner_count;
    for (int64_t i = first; i < chunks; i += step) {
      const int64_t o = i / s.inner_count, j = i % s.inner_count;
      const int64_t off = j * s.inner_stride;
      const int64_t len = min(s.chunk_bytes, s.inner_limit - off) & ~int64_t{15};
      if (len > 0) prefetch_to_l2(reinterpret_cast<const char*>(s.base + o * s.outer_stride + off), static_cast<uint32_t>(len));
    }
  }
  wait_prior_grid();
}

}  // namespace

void launch_l2_prefetch(const L2PrefetchSpan* spans, int count, int num_sms, cudaStream_t stream) {
  if (count <= 0) return;
  SpanArgs args{};
  args.n = count < kMaxL2PrefetchSpans ? count : kMaxL2PrefetchSpans;
  int64_t chunks = 0;
  for (int i = 0; i < args.n; ++i) {
    args.s[i] = spans[i];
    chunks += spans[i].chunks();
  }
  if (chunks == 0) return;
  constexpr int kThreads = 128;
  // Spread over the SMs: each SM's copy engine issues its own requests.
  const int blocks = static_cast<int>(std::min<int64_t>(2 * num_sms, (chunks + kThreads - 1) / kThreads));
  launch_pdl(l2_prefetch_kernel, dim3(blocks), dim3(kThreads), 0, stream, args);
}

}  // namespace tandem::cuda

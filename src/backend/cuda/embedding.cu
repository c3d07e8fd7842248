// Embedding gather: one block per token, 16-byte copies where rows allow.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

__global__ void embedding_kernel(const int32_t* ids, const char* table, char* out,
                                 int64_t row_bytes, int vocab) {
  allow_dependent_launch();
  wait_prior_grid();
  const int i = blockIdx.x;
  const int id = ids[i];
  char* dst = out + i * row_bytes;
  const bool valid = id >= 0 && id < vocab;
  const char* src = table + (valid ? id : 0) * row_bytes;
  if ((row_bytes % 16) == 0) {
    const int64_t n = row_bytes / 16;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      reinterpret_cast<uint4*>(dst)[j] =
          valid ? reinterpret_cast<const uint4*>(src)[j] : make_uint4(0, 0, 0, 0);
    }
  } else {
    for (int64_t j = threadIdx.x; j < row_bytes; j += blockDim.x) dst[j] = valid ? src[j] : 0;
  }
}

}  // namespace

void launch_embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return;
  const int64_t row_bytes = static_cast<int64_t>(p.hidden) * elem_size(p.type);
  launch_pdl(embedding_kernel, p.num_tokens, 256, 0, stream,
      p.ids, static_cast<const char*>(p.table), static_cast<char*>(p.out), row_bytes, p.vocab);
}

}  // namespace tandem::cuda

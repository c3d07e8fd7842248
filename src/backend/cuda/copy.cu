// Data movement: row gathers, whole-page copies (copy-on-write), type conversion.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace tandem::cuda {
namespace {

template <typename U>
__global__ void gather_rows_kernel(const char* src, char* dst, const int32_t* index,
                                   int64_t row_words, int64_t src_stride, int64_t dst_stride) {
  allow_dependent_launch();
  wait_prior_grid();
  const int i = blockIdx.x;
  const U* s = reinterpret_cast<const U*>(src + index[i] * src_stride);
  U* d = reinterpret_cast<U*>(dst + i * dst_stride);
  for (int64_t j = threadIdx.x; j < row_words; j += blockDim.x) d[j] = s[j];
}

// grid (num_pairs, num_bases)
__global__ void copy_blocks_kernel(void* const* bases, const int32_t* src, const int32_t* dst,
                                   int64_t block_vecs) {
  char* base = static_cast<char*>(bases[blockIdx.y]);
  const int64_t bytes = block_vecs * 16;
  const uint4* s = reinterpret_cast<const uint4*>(base + src[blockIdx.x] * bytes);
  uint4* d = reinterpret_cast<uint4*>(base + dst[blockIdx.x] * bytes);
  for (int64_t j = threadIdx.x; j < block_vecs; j += blockDim.x) d[j] = s[j];
}

// grid (rows, num_outs); U is the widest word that divides every width and stride.
template <typename U>
__global__ void split_columns_kernel(SplitColumnsParams p) {
  allow_dependent_launch();
  wait_prior_grid();
  const int r = blockIdx.x, i = blockIdx.y;
  const U* s = reinterpret_cast<const U*>(static_cast<const char*>(p.src) + r * p.src_stride_bytes + p.col_bytes[i]);
  U* d = reinterpret_cast<U*>(static_cast<char*>(p.dst[i]) + r * p.width_bytes[i]);
  const int64_t n = p.width_bytes[i] / static_cast<int64_t>(sizeof(U));
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) d[j] = s[j];
}

template <typename S, typename D>
__global__ void convert_kernel(const S* src, D* dst, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_f32<D>(to_f32(src[i]));
}

}  // namespace

void launch_gather_rows(const GatherRowsParams& p, cudaStream_t stream) {
  if (p.num_rows == 0) return;
  const bool words = p.row_bytes % 4 == 0 && p.src_stride_bytes % 4 == 0 && p.dst_stride_bytes % 4 == 0;
  if (words) {
    launch_pdl(gather_rows_kernel<uint32_t>, p.num_rows, 256, 0, stream, static_cast<const char*>(p.src),
               static_cast<char*>(p.dst), p.index, p.row_bytes / 4, p.src_stride_bytes, p.dst_stride_bytes);
  } else {  // 16-bit rows of odd length
    launch_pdl(gather_rows_kernel<uint16_t>, p.num_rows, 256, 0, stream, static_cast<const char*>(p.src),
               static_cast<char*>(p.dst), p.index, p.row_bytes / 2, p.src_stride_bytes, p.dst_stride_bytes);
  }
}

void launch_copy_blocks(const CopyBlocksParams& p, cudaStream_t stream) {
  if (p.num_pairs == 0 || p.num_bases == 0) return;
  dim3 grid(p.num_pairs, p.num_bases);
  copy_blocks_kernel<<<grid, 256, 0, stream>>>(p.bases, p.src, p.dst, p.block_bytes / 16);
}

void launch_convert(const void* src, ElemType src_type, void* dst, ElemType dst_type, int64_t n,
                    cudaStream_t stream) {
  if (n == 0) return;
  const int blocks = ceil_div(n, 256);
  TANDEM_DISPATCH_TYPE(src_type, S, TANDEM_DISPATCH_TYPE(dst_type, D, {
    convert_kernel<S, D><<<blocks, 256, 0, stream>>>(static_cast<const S*>(src),
                                                     static_cast<D*>(dst), n);
  }));
}

void launch_split_columns(const SplitColumnsParams& p, cudaStream_t stream) {
  if (p.rows == 0 || p.num_outs == 0) return;
  int64_t all = p.src_stride_bytes | reinterpret_cast<intptr_t>(p.src);
  for (int i = 0; i < p.num_outs; ++i) all |= p.col_bytes[i] | p.width_bytes[i] | reinterpret_cast<intptr_t>(p.dst[i]);
  const dim3 grid(p.rows, p.num_outs);
  if (all % 16 == 0) {
    launch_pdl(split_columns_kernel<uint4>, grid, 128, 0, stream, p);
  } else if (all % 4 == 0) {
    launch_pdl(split_columns_kernel<uint32_t>, grid, 256, 0, stream, p);
  } else {
    launch_pdl(split_columns_kernel<uint16_t>, grid, 256, 0, stream, p);
  }
}

}  // namespace tandem::cuda

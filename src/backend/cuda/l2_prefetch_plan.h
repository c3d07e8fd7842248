// Which bytes of the next linears to bring into L2 while the decode attention
// runs (Backend::prefetch_weights). Plain C++ so the plan is tested without a
// GPU; l2_prefetch.cu issues it as bulk L2 prefetches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cuda/int4_layout.h"

namespace tandem::cuda {

// Chunks at base + o * outer_stride + j * inner_stride (o < outer_count,
// j < inner_count), each chunk_bytes long but cut at inner_limit bytes past
// its outer start (base + o * outer_stride).
struct L2PrefetchSpan {
  uint64_t base = 0;
  int64_t outer_count = 1, outer_stride = 0;
  int64_t inner_count = 0, inner_stride = 0, inner_limit = 0;
  int64_t chunk_bytes = 0;

  int64_t chunks() const { return outer_count * inner_count; }
  int64_t chunk_length(int64_t j) const { return std::max<int64_t>(0, std::min(chunk_bytes, inner_limit - j * inner_stride)); }
  int64_t bytes() const {
    int64_t per_outer = 0;
    for (int64_t j = 0; j < inner_count; ++j) per_outer += chunk_length(j);
    return per_outer * outer_count;
  }
};

// An int4 layer as the batch-1 GEMV (variant 2) reads it: the K tiles of every
// column tile in `kparts` contiguous slices of ceil(K tiles / kparts), one warp
// each, every warp reading its slice front to back.
struct L2PrefetchLayer {
  uint64_t qweight = 0;  // tiled int4 (int4_layout.h), K * N / 2 bytes
  uint64_t scale_zero = 0;
  int64_t scale_zero_bytes = 0;
  int K = 0, N = 0;
  int kparts = 1;
};

inline constexpr int64_t kL2PrefetchChunk = 16 << 10;  // bytes per prefetch of a whole buffer
inline constexpr int kMaxL2PrefetchSpans = 8;

inline L2PrefetchSpan contiguous_span(uint64_t base, int64_t bytes) {
  L2PrefetchSpan s;
  s.base = base;
  s.inner_count = (bytes + kL2PrefetchChunk - 1) / kL2PrefetchChunk;
  s.inner_stride = s.chunk_bytes = kL2PrefetchChunk;
  s.inner_limit = bytes;
  return s;
}

// Spans over at most `budget` bytes of `layers`, in order: whole layers (scales
// and zeros, then the weights) while they fit; of the first one that does not,
// its scales and zeros and then the same number of tiles from the front of
// every warp's slice. A prefix of the buffer would serve only the first column
// tiles' blocks (or the first warp of each), and the GEMV waits for its
// slowest warp. At most kMaxL2PrefetchSpans spans. Returns the bytes planned.
inline int64_t plan_l2_prefetch(const std::vector<L2PrefetchLayer>& layers, int64_t budget,
                                std::vector<L2PrefetchSpan>* out) {
  out->clear();
  int64_t left = budget;
  for (const L2PrefetchLayer& l : layers) {
    if (out->size() + 2 > static_cast<size_t>(kMaxL2PrefetchSpans)) break;
    const int64_t ntiles = l.N / kInt4TileN, ktiles = l.K / kInt4TileK;
    const int64_t tile_bytes = kInt4TileWords * 4;
    const int64_t weight_bytes = ntiles * ktiles * tile_bytes;
    if (left < l.scale_zero_bytes || ntiles <= 0 || ktiles <= 0 || l.kparts < 1) break;
    if (l.scale_zero_bytes > 0) out->push_back(contiguous_span(l.scale_zero, l.scale_zero_bytes));
    left -= l.scale_zero_bytes;
    if (left >= weight_bytes) {
      out->push_back(contiguous_span(l.qweight, weight_bytes));
      left -= weight_bytes;
      continue;
    }
    const int64_t per = (ktiles + l.kparts - 1) / l.kparts;
    const int64_t take = std::min(per, left / (ntiles * l.kparts * tile_bytes));
    if (take > 0) {
      L2PrefetchSpan s;
      s.base = l.qweight;
      s.outer_count = ntiles;
      s.outer_stride = ktiles * tile_bytes;
      s.inner_count = l.kparts;
      s.inner_stride = per * tile_bytes;
      s.inner_limit = ktiles * tile_bytes;
      s.chunk_bytes = take * tile_bytes;
      out->push_back(s);
      left -= s.bytes();
    }
    break;
  }
  return budget - left;
}

}  // namespace tandem::cuda

// The L2 prefetch plan (backend/cuda/l2_prefetch_plan.h): plain C++, runs
// without a GPU. Every planned byte lies inside its layer, whole layers come
// first, and a partial layer gets the same share of every warp's K slice.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "backend/cuda/l2_prefetch_plan.h"

namespace tandem::cuda {
namespace {

constexpr int64_t kTile = 512;

L2PrefetchLayer layer(uint64_t base, int K, int N, int kparts, int64_t sz_bytes) {
  return {base, base + static_cast<uint64_t>(K) * N / 2 + 4096, sz_bytes, K, N, kparts};
}

// Bytes of each chunk, keyed by its address.
std::map<uint64_t, int64_t> chunks_of(const std::vector<L2PrefetchSpan>& spans) {
  std::map<uint64_t, int64_t> c;
  for (const auto& s : spans) {
    for (int64_t o = 0; o < s.outer_count; ++o) {
      for (int64_t j = 0; j < s.inner_count; ++j) {
        const int64_t len = s.chunk_length(j);
        if (len > 0) c[s.base + o * s.outer_stride + j * s.inner_stride] += len;
      }
    }
  }
  return c;
}

TEST(L2PrefetchPlan, WholeLayersWhileTheyFit) {
  const auto o = layer(1 << 20, 4096, 4096, 4, 300000);  // 8 MiB of weights
  const auto gu = layer(1ull << 32, 4096, 28672, 2, 1000);
  std::vector<L2PrefetchSpan> spans;
  const int64_t o_bytes = 4096LL * 4096 / 2 + o.scale_zero_bytes;
  const int64_t gu_bytes = 4096LL * 28672 / 2 + gu.scale_zero_bytes;
  EXPECT_EQ(plan_l2_prefetch({o, gu}, o_bytes + gu_bytes + 5, &spans), o_bytes + gu_bytes);
  ASSERT_EQ(spans.size(), 4u);
  int64_t sum = 0;
  for (const auto& s : spans) sum += s.bytes();
  EXPECT_EQ(sum, o_bytes + gu_bytes);
  // The scale/zero buffer's last chunk is cut at its end, not past it.
  EXPECT_EQ(spans[0].base, o.scale_zero);
  EXPECT_EQ(spans[0].bytes(), 300000);
  for (const auto& [addr, len] : chunks_of({spans[0]})) EXPECT_LE(addr + len, o.scale_zero + 300000);
  EXPECT_EQ(plan_l2_prefetch({o, gu}, 0, &spans), 0);
  EXPECT_TRUE(spans.empty());
  // Less than the first layer's scales and zeros: nothing.
  EXPECT_EQ(plan_l2_prefetch({o, gu}, 299999, &spans), 0);
  EXPECT_TRUE(spans.empty());
}

TEST(L2PrefetchPlan, PartialLayerTakesTheFrontOfEverySlice) {
  // K = 14336: 112 K tiles in 3 slices of 38, 38, 36 (the last one short).
  const int K = 14336, N = 1024, kparts = 3;
  const auto o = layer(1 << 20, 4096, 512, 1, 0);
  const auto down = layer(1ull << 32, K, N, kparts, 65536);
  const int64_t ntiles = N / 8, ktiles = K / 128, per = 38;
  const int64_t o_bytes = 4096LL * 512 / 2;
  for (int64_t take : {1, 20, 36, 37}) {  // 38 of each would be more than the whole layer
    // Budget for `take` tiles of every slice (the plan counts full slices).
    const int64_t budget = o_bytes + down.scale_zero_bytes + take * ntiles * kparts * kTile + 100;
    std::vector<L2PrefetchSpan> spans;
    const int64_t planned = plan_l2_prefetch({o, down}, budget, &spans);
    ASSERT_EQ(spans.size(), 3u) << take;
    EXPECT_LE(planned, budget);
    std::map<int64_t, int64_t> tiles_per_slice;  // (column tile * kparts + slice) -> tiles
    for (const auto& [addr, len] : chunks_of({spans[2]})) {
      ASSERT_GE(addr, down.qweight);
      const int64_t off = static_cast<int64_t>(addr - down.qweight);
      const int64_t nt = off / (ktiles * kTile), kt = (off % (ktiles * kTile)) / kTile;
      EXPECT_EQ(kt % per, 0) << "a chunk starts at the front of its slice";
      EXPECT_LE(kt + len / kTile, ktiles) << "a chunk stays inside its column tile";
      EXPECT_LT(nt, ntiles);
      tiles_per_slice[nt * kparts + kt / per] += len / kTile;
    }
    ASSERT_EQ(static_cast<int64_t>(tiles_per_slice.size()), ntiles * kparts) << take;
    for (const auto& [key, n] : tiles_per_slice) {
      const int64_t slice_len = key % kparts == kparts - 1 ? ktiles - per * (kparts - 1) : per;
      EXPECT_EQ(n, std::min(take, slice_len)) << "take " << take << " slice " << key;
    }
    EXPECT_EQ(planned, o_bytes + down.scale_zero_bytes + spans[2].bytes());
  }
}

TEST(L2PrefetchPlan, NeverMoreSpansThanTheKernelTakes) {
  std::vector<L2PrefetchLayer> many;
  for (int i = 0; i < 10; ++i) many.push_back(layer((i + 1ull) << 32, 128, 8, 1, 16));
  std::vector<L2PrefetchSpan> spans;
  plan_l2_prefetch(many, int64_t{1} << 40, &spans);
  EXPECT_EQ(spans.size(), static_cast<size_t>(kMaxL2PrefetchSpans));
}

}  // namespace
}  // namespace tandem::cuda

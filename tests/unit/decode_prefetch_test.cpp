// The decode prefetch plan's text form (TANDEM_L2_PREFETCH) and the byte
// ranges a prefetch of a tiled int4 layer's rounds covers.
#include "model/decode_prefetch.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "backend/backend.h"
#include "backend/cuda/int4_layout.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_util.h"

namespace tandem {
namespace {

TEST(DecodePrefetch, ParsesCarriersTargetsAndRanges) {
  auto plan = parse_decode_prefetch("attn:o,gu=0-0.25/o:gu=0.25-0.5/down:qkv=0-1");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const auto& attn = plan->by_carrier[static_cast<int>(DecodeOp::kAttn)];
  ASSERT_EQ(attn.size(), 2u);
  EXPECT_EQ(attn[0].target, DecodeOp::kO);
  EXPECT_EQ(attn[0].from, 0.f);
  EXPECT_EQ(attn[0].to, 1.f);
  EXPECT_EQ(attn[1].target, DecodeOp::kGateUp);
  EXPECT_EQ(attn[1].to, 0.25f);
  EXPECT_EQ(plan->by_carrier[static_cast<int>(DecodeOp::kO)][0].from, 0.25f);
  EXPECT_EQ(plan->by_carrier[static_cast<int>(DecodeOp::kDown)][0].target, DecodeOp::kQkv);
  EXPECT_TRUE(plan->by_carrier[static_cast<int>(DecodeOp::kQkv)].empty());
  EXPECT_EQ(plan->to_string(), "attn:o=0-1,gu=0-0.25/o:gu=0.25-0.5/down:qkv=0-1");
  // The text form reads back as the same plan.
  auto again = parse_decode_prefetch(plan->to_string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->to_string(), plan->to_string());
  for (const char* none : {"", "none"}) {
    auto p = parse_decode_prefetch(none);
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p->empty());
    EXPECT_EQ(p->to_string(), "none");
  }
}

TEST(DecodePrefetch, RejectsWhatItCannotDoNamingThePart) {
  const std::pair<const char*, const char*> cases[] = {
      {"attn", "expected carrier:target"},
      {"mlp:o", "unknown carrier \"mlp\""},
      {"attn:lm_head", "unknown target \"lm_head\""},
      {"o:o", "later GEMV"},
      {"gu:o=0-1", "later GEMV"},
      {"qkv:attn", "later GEMV"},
      {"attn:o=0.5-0.5", "0 <= from < to <= 1"},
      {"attn:o=0-2", "0 <= from < to <= 1"},
      {"attn:o=x-1", "0 <= from < to <= 1"},
      {"attn:o=0.5", "0 <= from < to <= 1"},
      {"attn:o/attn:gu", "carrier named twice"},
  };
  for (const auto& [text, why] : cases) {
    auto p = parse_decode_prefetch(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(p.status().message().find(why), std::string::npos) << text << ": " << p.status().message();
  }
}

// Every tile of the ranges lies in the layer, belongs to the warp run whose
// fraction was asked for, and the ranges of [0, a) and [a, 1) together are
// every tile exactly once.
TEST(DecodePrefetch, RoundBytesCoverTheAskedRunsOfEveryWarp) {
  constexpr int64_t kTile = 512;
  struct Shape {
    int64_t K, N;
    int kparts;
  };
  for (const Shape s : {Shape{4096, 6144, 4}, Shape{14336, 4096, 8}, Shape{4096, 28672, 2}, Shape{896, 64, 2},
                        Shape{128, 8, 1}, Shape{1024, 16, 3}}) {
    const int64_t ktiles = s.K / 128, total = s.K * s.N / 2;
    const bool split = ktiles % s.kparts == 0 && s.kparts > 1;
    const int64_t run = split ? ktiles / s.kparts : ktiles;
    for (const double a : {0.1, 0.25, 0.5, 0.9}) {
      std::multiset<int64_t> seen;
      for (const auto& [from, to] : {std::pair{0.0, a}, std::pair{a, 1.0}}) {
        const cuda::Int4RoundBytes b = cuda::int4_round_bytes(s.K, s.N, s.kparts, from, to);
        ASSERT_EQ(b.offset % kTile, 0);
        ASSERT_EQ(b.row_bytes % kTile, 0);
        for (int64_t r = 0; r < b.rows; ++r) {
          for (int64_t o = 0; o < b.row_bytes; o += kTile) {
            const int64_t byte = b.offset + r * b.stride + o;
            ASSERT_LT(byte, total) << s.K << "x" << s.N;
            const int64_t tile_in_run = (byte / kTile) % run;  // runs are contiguous, run tiles each
            EXPECT_GE(tile_in_run, static_cast<int64_t>(from * run)) << s.K << "x" << s.N << " " << from;
            EXPECT_LT(tile_in_run, static_cast<int64_t>(to * run) + 1) << s.K << "x" << s.N << " " << to;
            seen.insert(byte);
          }
        }
      }
      // [0, a) ends in the tile [a, 1) starts with at most: each tile at most twice, all present.
      ASSERT_GE(static_cast<int64_t>(seen.size()), total / kTile) << s.K << "x" << s.N << " a=" << a;
      for (int64_t t = 0; t < total / kTile; ++t) {
        const size_t n = seen.count(t * kTile);
        EXPECT_TRUE(n == 1 || n == 2) << "tile " << t << " seen " << n;
      }
    }
    EXPECT_EQ(cuda::int4_round_bytes(s.K, s.N, s.kparts, 0.5, 0.5).rows, 0);
  }
}

// A plan that cannot be parsed fails the model's load, naming the variable.
TEST(DecodePrefetch, BadPlanInTheEnvironmentFailsTheLoad) {
  testing::TempDir dir("prefetch_env");
  ASSERT_TRUE(write_synthetic_checkpoint(dir.path(), SynthOptions{}).ok());
  auto be = make_cpu_backend(1);
  ::setenv("TANDEM_L2_PREFETCH", "attn:lm_head", 1);
  auto bad = Model::load(dir.path(), be.get());
  ::setenv("TANDEM_L2_PREFETCH", "attn:o,gu=0-0.5/down:qkv", 1);
  auto good = Model::load(dir.path(), be.get());
  ::unsetenv("TANDEM_L2_PREFETCH");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("TANDEM_L2_PREFETCH"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("lm_head"), std::string::npos) << bad.status().message();
  EXPECT_TRUE(good.ok()) << good.status().message();
}

}  // namespace
}  // namespace tandem

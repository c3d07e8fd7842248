// The shared KV pool's chunk owner (memory/block_pool_owner.h) over the real
// BlockPool and Scheduler: chunks arrive and leave while requests run.
#include <gtest/gtest.h>

#include "engine_harness.h"
#include "memory/block_pool_owner.h"

namespace tandem::testing {
namespace {

TEST(MemoryOwner, ChunksComeAndGoWhileRequestsRun) {
  EngineConfig c;
  c.scheduler.max_num_seqs = 8;
  c.scheduler.max_num_batched_tokens = 32;
  c.scheduler.max_model_len = 64;
  Harness h(c, 64, /*num_pages=*/16, /*page_size=*/4, false, 0, /*capacity=*/48);
  Engine& engine = h.engine();
  memory::BlockPoolChunkOwner<BlockPool> owner(&engine.kv().pool(), [&](std::span<const int32_t> pages) {
    engine.scheduler().preempt_holders_of(pages);
  });
  owner.add_pages({16, 16});  // a second chunk of 16 pages
  EXPECT_EQ(engine.kv().pool().num_online(), 32);
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    std::vector<int32_t> p(10 + i * 3);
    for (auto& x : p) x = static_cast<int32_t>(rng() % 64);
    prompts.push_back(p);
    ASSERT_TRUE(h.add("r" + std::to_string(i), p, greedy(20)).ok());
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine.step().ok());
  EXPECT_GT(owner.num_pages_in_use({16, 16}) + owner.num_pages_in_use({0, 16}), 0);
  // Idle-only vacate refuses a range in use; forced vacate preempts and succeeds.
  memory::PageRange busy{0, 16};
  if (owner.num_pages_in_use(busy) > 0) EXPECT_FALSE(owner.vacate(busy, false));
  EXPECT_TRUE(owner.vacate(busy, true));
  EXPECT_TRUE(owner.vacate(busy, true));  // again: harmless
  EXPECT_EQ(engine.kv().pool().num_online(), 16);
  engine.kv().pool().check_invariants();
  owner.add_pages({32, 16});
  h.run();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(h.result("r" + std::to_string(i)).tokens[0], fake_greedy(prompts[i], 64, 20)) << i;
  }
  EXPECT_GT(engine.stats().num_preemptions, 0);
  EXPECT_TRUE(owner.vacate({16, 16}, false));  // idle now
  EXPECT_EQ(engine.kv().pool().num_online(), 16);
}

}  // namespace
}  // namespace tandem::testing

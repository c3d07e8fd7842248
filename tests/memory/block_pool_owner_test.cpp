// BlockPoolChunkOwner against a page pool with kv/BlockPool's capacity API
// (states, add_pages, idempotent withdraw_pages with draining active pages).
#include "memory/block_pool_owner.h"

#include <map>

#include <gtest/gtest.h>

namespace tandem::memory {
namespace {

class MiniBlockPool {
 public:
  enum class State { kFree, kCached, kActive, kOffline };
  explicit MiniBlockPool(int capacity) : state_(static_cast<size_t>(capacity), State::kOffline),
                                         draining_(static_cast<size_t>(capacity), false) {}
  State state(int32_t p) const { return state_[static_cast<size_t>(p)]; }
  void add_pages(std::span<const int32_t> ids) {
    for (int32_t id : ids) {
      ASSERT_EQ(state(id), State::kOffline) << "page " << id << " added twice";
      state_[static_cast<size_t>(id)] = State::kFree;
    }
  }
  int withdraw_pages(std::span<const int32_t> ids) {
    for (int32_t id : ids) {
      auto& s = state_[static_cast<size_t>(id)];
      if (s == State::kFree || s == State::kCached) s = State::kOffline;
      else if (s == State::kActive) draining_[static_cast<size_t>(id)] = true;
    }
    return 0;
  }
  void set(int32_t p, State s) { state_[static_cast<size_t>(p)] = s; }
  // A holder lets go of an active page: a draining one goes offline.
  void release(int32_t p) {
    state_[static_cast<size_t>(p)] = draining_[static_cast<size_t>(p)] ? State::kOffline : State::kFree;
    draining_[static_cast<size_t>(p)] = false;
  }

 private:
  std::vector<State> state_;
  std::vector<bool> draining_;
};

using S = MiniBlockPool::State;

TEST(BlockPoolOwner, AddCountVacate) {
  MiniBlockPool pool(32);
  std::vector<std::vector<int32_t>> preempt_calls;
  BlockPoolChunkOwner<MiniBlockPool> owner(&pool, [&](std::span<const int32_t> pages) {
    preempt_calls.emplace_back(pages.begin(), pages.end());
    for (int32_t p : pages) pool.release(p);  // the scheduler preempts at once
  });
  owner.add_pages({16, 16});
  EXPECT_EQ(pool.state(16), S::kFree);
  EXPECT_EQ(pool.state(15), S::kOffline);
  pool.set(17, S::kActive);
  pool.set(18, S::kCached);
  EXPECT_EQ(owner.num_pages_in_use({16, 16}), 1);
  EXPECT_FALSE(owner.vacate({16, 16}, /*may_preempt=*/false));  // page 17 in use: nothing changes
  EXPECT_EQ(pool.state(16), S::kFree);
  EXPECT_EQ(pool.state(18), S::kCached);
  EXPECT_TRUE(owner.vacate({16, 16}, /*may_preempt=*/true));
  ASSERT_EQ(preempt_calls.size(), 1u);
  EXPECT_EQ(preempt_calls[0], std::vector<int32_t>{17});
  for (int32_t p = 16; p < 32; ++p) EXPECT_EQ(pool.state(p), S::kOffline) << p;
}

TEST(BlockPoolOwner, DrainingOverSteps) {
  MiniBlockPool pool(16);
  bool preempt_now = false;
  BlockPoolChunkOwner<MiniBlockPool> owner(&pool, [&](std::span<const int32_t> pages) {
    if (preempt_now)
      for (int32_t p : pages) pool.release(p);
  });
  owner.add_pages({0, 16});
  pool.set(3, S::kActive);
  EXPECT_FALSE(owner.vacate({0, 16}, true));  // page 3 drains; the scheduler preempts later
  EXPECT_EQ(pool.state(0), S::kOffline);
  EXPECT_EQ(pool.state(3), S::kActive);
  preempt_now = true;
  EXPECT_TRUE(owner.vacate({0, 16}, true));  // called again on the next step: harmless, now done
  EXPECT_EQ(pool.state(3), S::kOffline);
}

}  // namespace
}  // namespace tandem::memory

// The real kv/BlockPool of two models behind one chunk pool: DeepSeek-33B and
// Mistral-7B pages (16 and 31 per 62 MiB chunk), lending and reclaiming.
#include "kv/block_pool.h"

namespace tandem::memory {
namespace {

TEST(BlockPoolOwner, RealBlockPoolLendAndReclaim) {
  const KvPageGeometry ds_geom{62, 16, 8, 128, 2}, mi_geom{32, 16, 8, 128, 2};
  KvChunkPool chunks(4, choose_chunk_bytes({ds_geom, mi_geom}), {{"coder", 2}, {"general", 2}});
  KvPageSource ds(&chunks, 0, ds_geom), mi(&chunks, 1, mi_geom);
  // Every page id exists from the start, offline until a chunk brings it online.
  BlockPool ds_pool(16, /*num_pages=*/0, /*capacity=*/static_cast<int>(ds.max_pages()));
  BlockPool mi_pool(16, 0, static_cast<int>(mi.max_pages()));
  std::vector<int32_t> seq_pages;  // the coder's one sequence
  BlockPoolChunkOwner<BlockPool> ds_owner(&ds_pool, [&](std::span<const int32_t>) {
    for (int32_t p : seq_pages) ds_pool.release(p);  // preempt: the sequence lets go of all its pages
    seq_pages.clear();
  });
  BlockPoolChunkOwner<BlockPool> mi_owner(&mi_pool, [](std::span<const int32_t>) { FAIL() << "nothing to preempt"; });

  for (int i = 0; i < 4; ++i) ASSERT_EQ(ds.grow(ds_owner), AcquireStatus::kOk);
  EXPECT_EQ(ds_pool.num_online(), 64);
  ds_pool.allocate(40, &seq_pages);  // pages 0..39: chunks 0, 1 and half of 2
  ds_pool.check_invariants();

  EXPECT_EQ(mi.grow(mi_owner), AcquireStatus::kLater);
  EXPECT_EQ(mi.grow(mi_owner), AcquireStatus::kLater);
  // Chunk 3 is empty and goes first; chunk 2 has 8 pages in use: the sequence is preempted.
  EXPECT_EQ(ds.service(ds_owner), 2);
  EXPECT_TRUE(seq_pages.empty());
  EXPECT_EQ(ds_pool.num_online(), 32);
  EXPECT_EQ(ds_pool.num_active(), 0);
  EXPECT_EQ(ds_pool.state(47), BlockPool::State::kOffline);
  ds_pool.check_invariants();
  EXPECT_EQ(mi.service(mi_owner), 0);
  EXPECT_EQ(mi_pool.num_online(), 62);
  EXPECT_EQ(mi_pool.num_free(), 62);
  mi_pool.check_invariants();
  EXPECT_EQ(chunks.stats(0).held, 2);
  EXPECT_EQ(chunks.stats(1).held, 2);
}

}  // namespace
}  // namespace tandem::memory

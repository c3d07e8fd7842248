// BlockPool and KvCacheManager: exact page ids, states, eviction order.
#include <gtest/gtest.h>

#include <numeric>

#include "kv/block_pool.h"
#include "kv/kv_cache_manager.h"

namespace tandem {
namespace {

using State = BlockPool::State;

std::vector<int32_t> iota_tokens(int n, int start = 0) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

TEST(BlockPool, AllocatesInIdOrderAndAnswersLaterOrImpossible) {
  BlockPool pool(4, 5);
  EXPECT_EQ(pool.can_allocate(5), AllocStatus::kOk);
  EXPECT_EQ(pool.can_allocate(6), AllocStatus::kImpossible);
  std::vector<int32_t> got;
  pool.allocate(3, &got);
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.can_allocate(3), AllocStatus::kLater);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.state(1), State::kActive);
  pool.retain(1);
  EXPECT_EQ(pool.ref_count(1), 2);
  pool.release(1);
  EXPECT_EQ(pool.state(1), State::kActive);
  pool.release(1);
  EXPECT_EQ(pool.state(1), State::kFree);
  // A released unhashed page is reused first.
  got.clear();
  pool.allocate(1, &got);
  EXPECT_EQ(got, (std::vector<int32_t>{1}));
  pool.check_invariants();
}

TEST(BlockPool, CachedPagesAreEvictedLeastRecentlyReleasedFirst) {
  BlockPool pool(2, 4);
  std::vector<int32_t> got;
  pool.allocate(4, &got);  // 0 1 2 3
  for (int32_t p : got) ASSERT_TRUE(pool.publish(p, 100 + p, iota_tokens(2, 10 * p)));
  pool.release(2);  // LRU order: 2, 0, 3 (1 stays active)
  pool.release(0);
  pool.release(3);
  EXPECT_EQ(pool.state(2), State::kCached);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.lookup(100, iota_tokens(2, 0)), 0);
  EXPECT_EQ(pool.lookup(100, iota_tokens(2, 5)), -1);  // same hash, other tokens: a miss
  // A hit revives page 0; eviction then takes 2, then 3.
  pool.retain(0);
  EXPECT_EQ(pool.state(0), State::kActive);
  std::vector<int32_t> fresh;
  pool.allocate(1, &fresh);
  EXPECT_EQ(fresh, (std::vector<int32_t>{2}));
  EXPECT_EQ(pool.lookup(102, iota_tokens(2, 20)), -1);  // evicted: hash forgotten
  EXPECT_EQ(pool.lookup(103, iota_tokens(2, 30)), 3);
  pool.allocate(1, &fresh);
  EXPECT_EQ(fresh.back(), 3);
  EXPECT_EQ(pool.can_allocate(1), AllocStatus::kLater);
  pool.check_invariants();
}

TEST(BlockPool, SecondPublisherOfAHashStaysPrivate) {
  BlockPool pool(2, 2);
  std::vector<int32_t> got;
  pool.allocate(2, &got);
  EXPECT_TRUE(pool.publish(0, 7, iota_tokens(2)));
  EXPECT_FALSE(pool.publish(1, 7, iota_tokens(2)));
  pool.release(1);
  EXPECT_EQ(pool.state(1), State::kFree);
  pool.check_invariants();
}

TEST(BlockPool, WithdrawAndAddPages) {
  BlockPool pool(4, 4, /*capacity=*/8);
  EXPECT_EQ(pool.num_online(), 4);
  std::vector<int32_t> got;
  pool.allocate(2, &got);  // 0 1 active
  ASSERT_TRUE(pool.publish(1, 55, iota_tokens(4)));
  std::vector<int32_t> take{1, 2, 3};
  EXPECT_EQ(pool.withdraw_pages(take), 1);  // 2, 3 offline now; 1 drains
  EXPECT_EQ(pool.state(2), State::kOffline);
  EXPECT_TRUE(pool.is_draining(1));
  EXPECT_EQ(pool.lookup(55, iota_tokens(4)), -1);  // nobody new may find a draining page
  EXPECT_EQ(pool.can_allocate(3), AllocStatus::kImpossible);  // online 4 - draining 1
  pool.release(1);
  EXPECT_EQ(pool.state(1), State::kOffline);
  EXPECT_EQ(pool.num_online(), 1);
  std::vector<int32_t> add{4, 5, 6};
  pool.add_pages(add);
  EXPECT_EQ(pool.num_online(), 4);
  got.clear();
  pool.allocate(3, &got);
  EXPECT_EQ(got, (std::vector<int32_t>{4, 5, 6}));
  pool.check_invariants();
}

CacheConfig cache(int page_size, bool prefix = true, int window = 0) {
  CacheConfig c;
  c.page_size = page_size;
  c.enable_prefix_caching = prefix;
  c.sliding_window = window;
  return c;
}

TEST(KvCacheManager, PrefixHitReusesExactPagesAndLeavesOneTokenToCompute) {
  KvCacheManager kv(cache(4), 10);
  std::vector<int32_t> a = iota_tokens(10);  // blocks [0..3] [4..7] + 2
  SeqKv sa;
  PrefixHit hit = kv.find_prefix(&sa, a);
  EXPECT_TRUE(hit.pages.empty());
  PageCopies copies;
  ASSERT_EQ(kv.can_allocate(sa, &hit, 0, 10), AllocStatus::kOk);
  kv.allocate(&sa, &hit, 0, 10, &copies);
  EXPECT_EQ(sa.pages, (std::vector<int32_t>{0, 1, 2}));
  kv.on_computed(&sa, a, 10);
  // Same first 8 tokens, different tail: pages 0 and 1 come back.
  std::vector<int32_t> b = iota_tokens(8);
  b.push_back(99);
  SeqKv sb;
  hit = kv.find_prefix(&sb, b);
  EXPECT_EQ(hit.pages, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(hit.num_reviving, 0);  // still held by a
  kv.allocate(&sb, &hit, 8, 9, &copies);
  EXPECT_EQ(sb.pages, (std::vector<int32_t>{0, 1, 3}));
  EXPECT_EQ(kv.pool().ref_count(0), 2);
  // Exactly 8 tokens cached, prompt of 8: only one block may be used (one token recomputed).
  SeqKv sc;
  std::vector<int32_t> c = iota_tokens(8);
  hit = kv.find_prefix(&sc, c);
  EXPECT_EQ(hit.pages, (std::vector<int32_t>{0}));
  // Different first block: nothing, even if the second block's tokens match.
  SeqKv sd;
  std::vector<int32_t> d = iota_tokens(10);
  d[0] = 77;
  EXPECT_TRUE(kv.find_prefix(&sd, d).pages.empty());
  kv.free(&sa);
  kv.free(&sb);
  EXPECT_TRUE(sa.pages.empty());
  kv.pool().check_invariants();
  // Freed tail first: LRU is page 1 then 0 (b's release order: 3 (unhashed), 1, 0).
  EXPECT_EQ(kv.pool().state(0), BlockPool::State::kCached);
  EXPECT_EQ(kv.pool().state(2), BlockPool::State::kFree);
}

TEST(KvCacheManager, EvictionOrderAfterRequestsFinish) {
  KvCacheManager kv(cache(2), 4);
  PageCopies copies;
  std::vector<int32_t> a{1, 2, 3, 4, 5};  // 2 full blocks + 1
  SeqKv sa;
  PrefixHit none;
  kv.allocate(&sa, &none, 0, 5, &copies);
  kv.on_computed(&sa, a, 5);
  EXPECT_EQ(sa.pages, (std::vector<int32_t>{0, 1, 2}));
  kv.free(&sa);  // released 2 (free), 1, 0 (cached, LRU: 1 then 0)
  std::vector<int32_t> got;
  kv.pool().allocate(2, &got);  // free first: 3, 2 (2 was pushed to the front)
  EXPECT_EQ(got, (std::vector<int32_t>{2, 3}));
  got.clear();
  kv.pool().allocate(1, &got);  // then the least recently released cached: block 1 (tail)
  EXPECT_EQ(got, (std::vector<int32_t>{1}));
  SeqKv sb;
  PrefixHit hit = kv.find_prefix(&sb, a);
  EXPECT_EQ(hit.pages, (std::vector<int32_t>{0}));  // head survives, its successor is gone
  EXPECT_EQ(hit.num_reviving, 1);
}

TEST(KvCacheManager, ForkSharesPagesAndCopiesOnWrite) {
  KvCacheManager kv(cache(4, false), 8);
  PageCopies copies;
  SeqKv parent;
  PrefixHit none;
  kv.allocate(&parent, &none, 0, 6, &copies);  // pages 0 1; page 1 holds 2 of 4
  kv.on_computed(&parent, std::vector<int32_t>(6, 1), 6);
  SeqKv child;
  kv.fork(parent, &child);
  EXPECT_EQ(kv.pool().ref_count(1), 2);
  // The child writes position 6 (in shared page 1): copy first.
  ASSERT_EQ(kv.can_allocate(child, nullptr, 6, 7), AllocStatus::kOk);
  kv.allocate(&child, nullptr, 6, 7, &copies);
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0], (std::pair<int32_t, int32_t>{1, 2}));
  EXPECT_EQ(child.pages, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(kv.pool().ref_count(1), 1);
  EXPECT_EQ(kv.pool().ref_count(0), 2);  // the full page stays shared
  copies.clear();
  kv.allocate(&parent, nullptr, 6, 7, &copies);  // sole holder now: in place
  EXPECT_TRUE(copies.empty());
  EXPECT_EQ(parent.pages, (std::vector<int32_t>{0, 1}));
  kv.free(&parent);
  kv.free(&child);
  EXPECT_EQ(kv.pool().num_free(), 8);
  kv.pool().check_invariants();
}

TEST(KvCacheManager, SlidingWindowFreesWhollyOutsidePages) {
  KvCacheManager kv(cache(4, true, /*window=*/6), 16);
  PageCopies copies;
  SeqKv s;
  PrefixHit none;
  std::vector<int32_t> t(20, 3);
  kv.allocate(&s, &none, 0, 20, &copies);
  kv.on_computed(&s, t, 20);
  // Next query at 20 reads keys >= 14: pages 0..2 (positions 0..11) are wholly outside, page 3 (12..15) is not.
  EXPECT_EQ(s.pages, (std::vector<int32_t>{-1, -1, -1, 3, 4}));
  EXPECT_EQ(kv.pool().num_active(), 2);
  EXPECT_EQ(kv.can_allocate(s, nullptr, 20, 21), AllocStatus::kOk);
  kv.free(&s);
  kv.pool().check_invariants();
}

}  // namespace
}  // namespace tandem

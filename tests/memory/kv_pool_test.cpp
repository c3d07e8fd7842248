// The shared KV pool with the real page sizes of the seed pair: DeepSeek-Coder-33B
// (62 layers x 8 kv heads x 128 x fp16: 248 KiB/token, 3.875 MiB per 16-token page)
// and Mistral-7B (32 layers: 128 KiB/token, 2 MiB per page). Chunk 62 MiB = 16 / 31 pages.
#include "memory/kv_pool.h"

#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "memory/byte_size.h"

namespace tandem::memory {
namespace {

const KvPageGeometry kDeepSeek{62, 16, 8, 128, 2};
const KvPageGeometry kMistral{32, 16, 8, 128, 2};
const KvPageGeometry kQwen32{64, 16, 8, 128, 2};
const KvPageGeometry kQwen7{28, 16, 4, 128, 2};

// A model's page pool, enough to follow pages: free list, pages per sequence, preemption.
class FakePagePool : public ChunkedPageOwner {
 public:
  void add_pages(PageRange r) override {
    for (int64_t p = r.first_page; p < r.first_page + r.num_pages; ++p) EXPECT_TRUE(free_.insert(p).second) << p;
  }
  int64_t num_pages_in_use(PageRange r) const override {
    int64_t n = 0;
    for (int64_t p = r.first_page; p < r.first_page + r.num_pages; ++p) n += owner_.count(p);
    return n;
  }
  bool vacate(PageRange r, bool may_preempt) override {
    std::set<int> victims;
    for (int64_t p = r.first_page; p < r.first_page + r.num_pages; ++p)
      if (auto it = owner_.find(p); it != owner_.end()) victims.insert(it->second);
    if (!victims.empty() && !may_preempt) return false;
    if (!victims.empty() && async_) {
      // Like kv/BlockPool: pages drain; the scheduler preempts their holders in its step.
      to_preempt_.insert(victims.begin(), victims.end());
      return false;
    }
    for (int seq : victims) {
      finish(seq);  // preempted: all its pages free, recomputed later
      ++num_preempted_;
    }
    for (int64_t p = r.first_page; p < r.first_page + r.num_pages; ++p) EXPECT_EQ(free_.erase(p), 1u) << p;
    return true;
  }
  // The lowest free pages to `seq`; false (and nothing taken) if too few.
  bool allocate(int seq, int64_t n) {
    if (static_cast<int64_t>(free_.size()) < n) return false;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t p = *free_.begin();
      free_.erase(free_.begin());
      owner_[p] = seq;
      pages_[seq].push_back(p);
    }
    return true;
  }
  void finish(int seq) {
    for (int64_t p : pages_[seq]) {
      owner_.erase(p);
      free_.insert(p);
    }
    pages_.erase(seq);
  }
  // Preemption happens in the engine's step, after vacate returned false.
  void set_async(bool async) { async_ = async; }
  void run_step() {
    for (int seq : to_preempt_) {
      if (!alive(seq)) continue;
      finish(seq);
      ++num_preempted_;
    }
    to_preempt_.clear();
  }
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t num_used() const { return static_cast<int64_t>(owner_.size()); }
  int num_preempted() const { return num_preempted_; }
  bool alive(int seq) const { return pages_.count(seq) > 0; }

 private:
  std::set<int64_t> free_;
  std::map<int64_t, int> owner_;  // page -> sequence
  std::map<int, std::vector<int64_t>> pages_;
  int num_preempted_ = 0;
  bool async_ = false;
  std::set<int> to_preempt_;
};

TEST(KvPool, PageBytesOfTheSeedModels) {
  EXPECT_EQ(kDeepSeek.page_bytes(), 3968 * kKiB);  // 3.875 MiB
  EXPECT_EQ(kMistral.page_bytes(), 2 * kMiB);
  EXPECT_EQ(kQwen32.page_bytes(), 4 * kMiB);
  EXPECT_EQ(kQwen7.page_bytes(), 896 * kKiB);
  EXPECT_EQ(kDeepSeek.layer_page_bytes(), 32 * kKiB);
}

TEST(KvPool, ChunkSizeTilesEveryPage) {
  EXPECT_EQ(choose_chunk_bytes({kDeepSeek, kMistral}), 62 * kMiB);  // 16 x 3.875 = 31 x 2
  EXPECT_EQ(choose_chunk_bytes({kQwen32, kQwen7}), 56 * kMiB);      // lcm 28 MiB, doubled
  EXPECT_EQ(choose_chunk_bytes({kMistral}), 32 * kMiB);
  EXPECT_EQ(choose_chunk_bytes({kDeepSeek}), 62 * kMiB);
  // 61 and 59 layers: the lcm is ~7 GiB, so the fallback: 32 MiB, a multiple of both layer-pages.
  const KvPageGeometry a{61, 16, 8, 128, 2}, b{59, 16, 8, 128, 2};
  const int64_t c = choose_chunk_bytes({a, b});
  EXPECT_EQ(c, 32 * kMiB);
  EXPECT_EQ(c % a.layer_page_bytes(), 0);
}

TEST(KvPool, LendAndReclaimWithExactCounts) {
  const int64_t chunk = choose_chunk_bytes({kDeepSeek, kMistral});
  KvChunkPool pool(10, chunk, {{"coder", 4}, {"general", 4}});  // 2 chunks shared
  KvPageSource ds(&pool, 0, kDeepSeek), mi(&pool, 1, kMistral);
  FakePagePool ds_pages, mi_pages;
  EXPECT_EQ(ds.pages_per_chunk(), 16);
  EXPECT_EQ(mi.pages_per_chunk(), 31);
  EXPECT_EQ(ds.max_pages(), 160);
  EXPECT_EQ(mi.max_pages(), 310);

  // The general model is idle: the coder takes every chunk, its guarantee, the shared two and the general's four.
  for (int i = 0; i < 10; ++i) ASSERT_EQ(ds.grow(ds_pages), AcquireStatus::kOk) << i;
  EXPECT_EQ(ds.grow(ds_pages), AcquireStatus::kExhausted);
  EXPECT_EQ(ds.num_pages(), 160);
  EXPECT_EQ(ds_pages.num_free(), 160);
  EXPECT_EQ(pool.num_free(), 0);
  ChunkPoolStats s0 = pool.stats(0), s1 = pool.stats(1);
  EXPECT_EQ(s0.held, 10);
  EXPECT_EQ(s0.borrowed, 6);
  EXPECT_EQ(s1.lent, 4);  // 6 borrowed = 2 shared + the general's 4
  EXPECT_EQ(s0.lent, 0);

  // Two sequences: 50 pages (chunks 0-2 and 2 pages of chunk 3) and 100 pages (rest of 3, then 4-8, 6 of 9).
  ASSERT_TRUE(ds_pages.allocate(/*seq=*/1, 50));
  ASSERT_TRUE(ds_pages.allocate(/*seq=*/2, 100));
  EXPECT_EQ(ds_pages.num_free(), 10);

  // The general model wakes up: below its guarantee, nothing free -> kLater, forced reclaims from the coder.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(mi.grow(mi_pages), AcquireStatus::kLater);
  EXPECT_EQ(mi.grow(mi_pages), AcquireStatus::kLater);  // its four are on the way; no fifth claim
  EXPECT_EQ(pool.reclaim_request(0).forced, 4);
  EXPECT_EQ(pool.stats(1).waiting, 4);

  // The coder's next step: vacates the chunks with the fewest pages in use. Chunk 9 (6 in use) first,
  // which preempts sequence 2 and empties chunks 4-8; then the empty ones, highest id first: 8, 7, 6.
  EXPECT_EQ(ds.service(ds_pages), 4);
  EXPECT_EQ(ds_pages.num_preempted(), 1);
  EXPECT_TRUE(ds_pages.alive(1));
  EXPECT_FALSE(ds_pages.alive(2));
  EXPECT_EQ(ds.num_pages(), 96);
  EXPECT_EQ(ds_pages.num_free(), 96 - 50);
  EXPECT_EQ(pool.holder(9), 1);
  EXPECT_EQ(pool.holder(8), 1);
  EXPECT_EQ(pool.holder(7), 1);
  EXPECT_EQ(pool.holder(6), 1);
  EXPECT_EQ(pool.holder(5), 0);

  // The general model's next step takes the four chunks: 4 x 31 pages of 2 MiB.
  EXPECT_EQ(mi.service(mi_pages), 0);
  EXPECT_EQ(mi.num_pages(), 124);
  EXPECT_EQ(mi_pages.num_free(), 124);
  s0 = pool.stats(0);
  s1 = pool.stats(1);
  EXPECT_EQ(s0.held, 6);
  EXPECT_EQ(s0.borrowed, 2);  // the two shared chunks
  EXPECT_EQ(s1.held, 4);
  EXPECT_EQ(s1.lent, 0);
  EXPECT_EQ(s1.waiting, 0);
  EXPECT_EQ(pool.reclaim_request(0).forced, 0);

  // At its guarantee the general model asks for more: kExhausted, and an idle-only request to the coder,
  // which gives chunk 5 (no page in use) but keeps chunk 3 (sequence 1 still there).
  EXPECT_EQ(mi.grow(mi_pages), AcquireStatus::kExhausted);
  EXPECT_EQ(pool.reclaim_request(0).idle_only, 1);
  EXPECT_EQ(ds.service(ds_pages), 1);
  EXPECT_EQ(ds_pages.num_preempted(), 1);  // idle-only never preempts
  EXPECT_EQ(pool.holder(5), 1);
  EXPECT_EQ(ds.num_pages(), 80);
  EXPECT_EQ(mi.service(mi_pages), 0);
  EXPECT_EQ(mi.num_pages(), 155);

  // Another idle-only request: chunks 4 is empty too, 0-3 hold sequence 1.
  EXPECT_EQ(mi.grow(mi_pages), AcquireStatus::kExhausted);
  EXPECT_EQ(ds.service(ds_pages), 1);
  EXPECT_EQ(mi.service(mi_pages), 0);
  EXPECT_EQ(mi.num_pages(), 186);
  EXPECT_EQ(ds.num_pages(), 64);  // exactly its guarantee: 4 chunks, all used by sequence 1 bar 14 pages
  EXPECT_EQ(ds_pages.num_free(), 14);
  // Nothing above the coder's guarantee now: no victim, no request.
  EXPECT_EQ(mi.grow(mi_pages), AcquireStatus::kExhausted);
  EXPECT_EQ(pool.reclaim_request(0).idle_only, 0);

  // The general model finishes and goes idle; the coder wants more again and gets an idle chunk back.
  EXPECT_EQ(ds.grow(ds_pages), AcquireStatus::kExhausted);
  EXPECT_EQ(pool.reclaim_request(1).idle_only, 1);
  EXPECT_EQ(mi.service(mi_pages), 1);
  EXPECT_EQ(ds.service(ds_pages), 0);
  EXPECT_EQ(ds.num_pages(), 80);
  EXPECT_EQ(mi.num_pages(), 155);
  // Bytes: every chunk is held by exactly one model and the counts add up.
  EXPECT_EQ(pool.stats(0).held + pool.stats(1).held + pool.num_free(), 10);
  EXPECT_EQ(ds.num_pages() * kDeepSeek.page_bytes() + mi.num_pages() * kMistral.page_bytes(), 10 * chunk);
}

TEST(KvPool, ForcedReclaimWaitsForDrainingPages) {
  const int64_t chunk = choose_chunk_bytes({kDeepSeek, kMistral});
  KvChunkPool pool(2, chunk, {{"coder", 1}, {"general", 1}});
  KvPageSource ds(&pool, 0, kDeepSeek), mi(&pool, 1, kMistral);
  FakePagePool ds_pages, mi_pages;
  ds_pages.set_async(true);
  ASSERT_EQ(ds.grow(ds_pages), AcquireStatus::kOk);
  ASSERT_EQ(ds.grow(ds_pages), AcquireStatus::kOk);
  ASSERT_TRUE(ds_pages.allocate(7, 32));  // both chunks fully in use by one sequence
  EXPECT_EQ(mi.grow(mi_pages), AcquireStatus::kLater);
  EXPECT_EQ(ds.service(ds_pages), 0);  // chunk 1 starts draining: nothing released yet
  EXPECT_EQ(ds.draining_chunks(), std::vector<ChunkId>{1});
  EXPECT_EQ(ds.num_pages(), 16);
  EXPECT_EQ(pool.holder(1), 0);
  EXPECT_EQ(ds.service(ds_pages), 0);  // still draining; no second chunk is started
  EXPECT_EQ(ds.draining_chunks().size(), 1u);
  ds_pages.run_step();  // the scheduler preempts sequence 7
  EXPECT_EQ(ds_pages.num_preempted(), 1);
  EXPECT_EQ(ds.service(ds_pages), 1);
  EXPECT_TRUE(ds.draining_chunks().empty());
  EXPECT_EQ(pool.holder(1), 1);
  EXPECT_EQ(mi.service(mi_pages), 0);
  EXPECT_EQ(mi.num_pages(), 31);
  EXPECT_EQ(ds_pages.num_free(), 16);
}

TEST(KvPool, VoluntaryReleaseServesAWaitingClaimFirst) {
  KvChunkPool pool(4, 62 * kMiB, {{"a", 2}, {"b", 2}});
  int wakes[2] = {0, 0};
  pool.set_wakeup(0, [&] { ++wakes[0]; });
  pool.set_wakeup(1, [&] { ++wakes[1]; });
  ChunkId c = -1;
  for (int i = 0; i < 4; ++i) ASSERT_EQ(pool.acquire(0, &c), AcquireStatus::kOk);
  EXPECT_EQ(pool.acquire(1, &c), AcquireStatus::kLater);
  EXPECT_EQ(pool.reclaim_request(0).forced, 1);
  EXPECT_EQ(wakes[0], 1);  // an idle engine must wake to give the chunk back
  EXPECT_EQ(wakes[1], 0);
  pool.release(0, 0);  // any release settles the claim
  EXPECT_EQ(wakes[1], 1);  // the claimant wakes to take it
  EXPECT_EQ(pool.reclaim_request(0).forced, 0);
  EXPECT_EQ(pool.holder(0), 1);
  EXPECT_EQ(pool.num_free(), 0);
  ASSERT_EQ(pool.acquire(1, &c), AcquireStatus::kOk);  // the delivered chunk
  EXPECT_EQ(c, 0);
  pool.release(1, 0);
  EXPECT_EQ(pool.num_free(), 1);  // no claim: back to the free list
}

TEST(KvPool, LayoutKeepsEveryModelInsideItsChunks) {
  // Both models' K/V rows of every page and layer fall inside their chunk and never overlap.
  constexpr int64_t kChunks = 3;
  const int64_t chunk = choose_chunk_bytes({kDeepSeek, kMistral});
  KvChunkPool pool(kChunks, chunk, {{"coder", 0}, {"general", 0}});
  for (const KvPageGeometry& g : {kDeepSeek, kMistral}) {
    KvPageSource src(&pool, &g == &kDeepSeek ? 0 : 1, g);
    const int64_t row = g.layer_page_bytes();
    std::set<int64_t> starts;
    for (int64_t p = 0; p < src.max_pages(); ++p) {
      const int64_t c = src.chunk_of(p);
      for (int64_t l = 0; l < g.num_layers; ++l) {
        for (bool v : {false, true}) {
          const int64_t off = src.byte_offset(l, v, p);
          ASSERT_GE(off, c * chunk);
          ASSERT_LE(off + row, (c + 1) * chunk);
          ASSERT_EQ(off % row, 0);
          ASSERT_TRUE(starts.insert(off).second) << "overlap at page " << p << " layer " << l;
          // The kernel view of layer l: row kernel_page_id(p) from the view's start, inside the view.
          ASSERT_LT(src.kernel_page_id(p), src.view_num_pages(l, v));
          ASSERT_EQ(src.view_offset(l, v) + src.kernel_page_id(p) * row, off);
        }
      }
    }
    // No waste: rows tile all chunks exactly.
    EXPECT_EQ(static_cast<int64_t>(starts.size()) * row, kChunks * chunk);
  }
  KvPageSource ds(&pool, 0, kDeepSeek);
  EXPECT_EQ(ds.kernel_page_id(0), 0);
  EXPECT_EQ(ds.kernel_page_id(15), 15);
  EXPECT_EQ(ds.kernel_page_id(16), 62 * kMiB / (32 * kKiB));  // chunk 1 starts S = 1984 rows on
}

TEST(KvPool, ConcurrentEnginesKeepCountsConsistent) {
  const int64_t chunk = choose_chunk_bytes({kDeepSeek, kMistral});
  KvChunkPool pool(40, chunk, {{"coder", 10}, {"general", 10}});
  auto engine = [&](int model, const KvPageGeometry& g, int seed) {
    KvPageSource src(&pool, model, g);
    FakePagePool pages;
    unsigned x = static_cast<unsigned>(seed);
    int next_seq = 0;
    std::vector<int> live;
    for (int step = 0; step < 3000; ++step) {
      src.service(pages);
      x = x * 1103515245u + 12345u;
      const int64_t want = 1 + (x >> 16) % 40;
      if (!pages.allocate(next_seq, want)) {
        src.grow(pages);
        if (!live.empty()) {
          pages.finish(live.front());
          live.erase(live.begin());
        }
      } else {
        live.push_back(next_seq++);
      }
      while (live.size() > 6) {
        pages.finish(live.front());
        live.erase(live.begin());
      }
      live.erase(std::remove_if(live.begin(), live.end(), [&](int s) { return !pages.alive(s); }), live.end());
      EXPECT_EQ(pages.num_free() + pages.num_used(), src.num_pages());
    }
  };
  std::thread a(engine, 0, kDeepSeek, 1), b(engine, 1, kMistral, 2);
  a.join();
  b.join();
  EXPECT_LE(pool.stats(0).held + pool.stats(1).held + pool.num_free(), 40);
  EXPECT_EQ(pool.stats(0).held + pool.stats(1).held + pool.num_free(), 40);
}

}  // namespace
}  // namespace tandem::memory

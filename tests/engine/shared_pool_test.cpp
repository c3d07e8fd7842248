// Two engines on one shared KV chunk pool (memory/kv_pool.h), as `serve
// --gpu-budget` wires them: pages arrive by whole chunks on demand, chunks one
// model leaves free are lent to the other, and a model below its guarantee
// takes chunks back (the holder's sequences there are preempted and
// recomputed). Exact chunk and page counts at every hand-over; outputs equal
// the uncached reference, so no page was read after it changed hands.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/engine_thread.h"
#include "engine_harness.h"
#include "memory/arbiter.h"
#include "memory/kv_pool.h"

namespace tandem::testing {
namespace {

constexpr int kVocab = 64;
constexpr int kPageSize = 4;
constexpr int64_t kChunkBytes = 64;

// Model A: 1 layer of 1 KV head of dim 1 in fp16: 16-byte pages, 4 to a chunk.
// Model B: 2 layers: 32-byte pages, 2 to a chunk. 8-byte layer-pages: 8 rows a chunk.
memory::KvPageGeometry geometry(int num_layers) { return {num_layers, kPageSize, 1, 1, 2}; }

std::vector<int32_t> prompt(int seed, int len) {
  std::vector<int32_t> p(len);
  for (int i = 0; i < len; ++i) p[i] = static_cast<int32_t>((seed * 131 + i * 17) % kVocab);
  return p;
}

// Every page of `engine` that is online (free, cached or in use) lies in a
// chunk the pool says this model holds: no model ever touches another's bytes.
void expect_pages_inside_own_chunks(Engine& engine, const memory::KvPageSource& source, int model) {
  const BlockPool& pool = engine.kv().pool();
  for (int32_t p = 0; p < pool.capacity(); ++p) {
    if (pool.state(p) == BlockPool::State::kOffline) continue;
    ASSERT_EQ(source.pool().holder(source.chunk_of(p)), model) << "page " << p << " of model " << model;
  }
  pool.check_invariants();
}

EngineConfig config_for(memory::KvPageSource* source, int max_model_len) {
  EngineConfig c;
  c.scheduler.max_num_seqs = 8;
  c.scheduler.max_num_batched_tokens = 64;
  c.scheduler.max_model_len = max_model_len;
  c.kv_source = source;
  return c;
}

TEST(SharedKvPool, LendAndReclaimExactCounts) {
  // 8 chunks; each model is guaranteed 2 (A: 8 pages = 32 tokens, B: 4 pages = 16 tokens); 4 shared.
  memory::KvChunkPool pool(8, kChunkBytes, {{"a", 2}, {"b", 2}});
  memory::KvPageSource src_a(&pool, 0, geometry(1)), src_b(&pool, 1, geometry(2));
  ASSERT_EQ(src_a.pages_per_chunk(), 4);
  ASSERT_EQ(src_b.pages_per_chunk(), 2);
  Harness a(config_for(&src_a, 32), kVocab, static_cast<int>(src_a.max_pages()), kPageSize, false, 0,
            static_cast<int>(src_a.max_pages()));
  Harness b(config_for(&src_b, 16), kVocab, static_cast<int>(src_b.max_pages()), kPageSize, false, 0,
            static_cast<int>(src_b.max_pages()));
  EXPECT_EQ(a.engine().kv().pool().num_online(), 0);  // nothing until asked
  EXPECT_EQ(pool.num_free(), 8);

  // A floods: 8 sequences of 12 + 8 tokens (5 pages each) want 40 pages; the pool has 32 of A's.
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(a.add("a" + std::to_string(i), prompt(i, 12), greedy(8)).ok());
  for (int i = 0; i < 50 && pool.stats(0).held < 8; ++i) {
    ASSERT_TRUE(a.engine().step().ok());
    expect_pages_inside_own_chunks(a.engine(), src_a, 0);
  }
  // A borrowed all of it: B's unused guarantee is lent to A.
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_EQ(pool.stats(0).held, 8);
  EXPECT_EQ(pool.stats(0).borrowed, 6);
  EXPECT_EQ(pool.stats(1).lent, 2);
  EXPECT_EQ(a.engine().kv().pool().num_online(), 32);
  EXPECT_EQ(a.engine().stats().kv_pages_borrowed, 24);
  EXPECT_EQ(b.engine().stats().kv_pages_lent, 4);
  EXPECT_EQ(b.engine().stats().kv_pages_guaranteed, 4);

  // B's first request needs 3 pages (10 prompt tokens): below its guarantee, it claims a chunk back.
  ASSERT_TRUE(b.add("b0", prompt(100, 10), greedy(4)).ok());
  ASSERT_TRUE(b.engine().step().ok());
  EXPECT_EQ(b.runner().num_forward_calls(), 0);  // waits for the chunk, nothing preempted
  EXPECT_EQ(pool.stats(1).waiting, 1);
  EXPECT_EQ(pool.stats(0).forced_pending, 1);
  EXPECT_EQ(b.engine().kv().pool().num_online(), 0);

  // A's next step vacates one chunk (preempting its holders) and hands it to B.
  const int64_t preempted_before = a.engine().stats().num_preemptions;
  ASSERT_TRUE(a.engine().step().ok());
  EXPECT_EQ(pool.stats(0).held, 7);
  EXPECT_EQ(pool.stats(1).held, 1);
  EXPECT_EQ(pool.stats(0).forced_pending, 0);
  EXPECT_EQ(a.engine().kv().pool().num_online(), 28);
  expect_pages_inside_own_chunks(a.engine(), src_a, 0);

  // B takes it (2 pages), still one page short: a second claim; A gives a second chunk.
  ASSERT_TRUE(b.engine().step().ok());
  EXPECT_EQ(b.engine().kv().pool().num_online(), 2);
  EXPECT_EQ(b.runner().num_forward_calls(), 0);
  EXPECT_EQ(pool.stats(1).waiting, 1);
  ASSERT_TRUE(a.engine().step().ok());
  EXPECT_EQ(pool.stats(0).held, 6);
  EXPECT_EQ(a.engine().kv().pool().num_online(), 24);
  ASSERT_TRUE(b.engine().step().ok());
  EXPECT_EQ(b.engine().kv().pool().num_online(), 4);
  EXPECT_EQ(b.runner().num_forward_calls(), 1);  // B runs on its guarantee
  EXPECT_EQ(pool.stats(1).held, 2);
  EXPECT_EQ(pool.stats(1).lent, 0);
  EXPECT_EQ(pool.stats(0).borrowed, 4);
  EXPECT_GT(a.engine().stats().num_preemptions, preempted_before);
  expect_pages_inside_own_chunks(b.engine(), src_b, 1);

  // Both run to the end, interleaved; every output equals the uncached reference.
  for (int i = 0; i < 2000 && (a.engine().has_work() || b.engine().has_work()); ++i) {
    if (a.engine().has_work()) ASSERT_TRUE(a.engine().step().ok());
    if (b.engine().has_work()) ASSERT_TRUE(b.engine().step().ok());
    expect_pages_inside_own_chunks(a.engine(), src_a, 0);
    expect_pages_inside_own_chunks(b.engine(), src_b, 1);
  }
  ASSERT_FALSE(a.engine().has_work());
  ASSERT_FALSE(b.engine().has_work());
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(a.result("a" + std::to_string(i)).tokens[0], fake_greedy(prompt(i, 12), kVocab, 8)) << i;
  EXPECT_EQ(b.result("b0").tokens[0], fake_greedy(prompt(100, 10), kVocab, 4));
  // Chunks stay where they are (nothing is handed back unasked): 6 + 2.
  EXPECT_EQ(pool.stats(0).held + pool.stats(1).held, 8);
  EXPECT_EQ(a.engine().kv().pool().num_active(), 0);
  EXPECT_EQ(b.engine().kv().pool().num_active(), 0);
}

TEST(SharedKvPool, IdleModelLendsChunksWithNoPageInUse) {
  // 4 chunks, 1 guaranteed to each. A takes 3 on demand and goes idle holding
  // them (cached pages); B, at its guarantee, asks A idle-only: A gives one back.
  memory::KvChunkPool pool(4, kChunkBytes, {{"a", 1}, {"b", 1}});
  memory::KvPageSource src_a(&pool, 0, geometry(1)), src_b(&pool, 1, geometry(2));
  Harness a(config_for(&src_a, 16), kVocab, static_cast<int>(src_a.max_pages()), kPageSize, false, 0,
            static_cast<int>(src_a.max_pages()));
  Harness b(config_for(&src_b, 8), kVocab, static_cast<int>(src_b.max_pages()), kPageSize, false, 0,
            static_cast<int>(src_b.max_pages()));
  // A: three sequences of 12 + 4 tokens = 4 pages each: 12 pages = 3 chunks.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(a.add("a" + std::to_string(i), prompt(i, 12), greedy(4)).ok());
  a.run();
  EXPECT_EQ(pool.stats(0).held, 3);
  EXPECT_EQ(pool.stats(0).borrowed, 2);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(a.engine().kv().pool().num_active(), 0);
  // B: two sequences of 6 + 2 tokens (2 pages, one chunk, each). The free chunk is
  // its guarantee; the second one it can only borrow from idle A.
  ASSERT_TRUE(b.add("b0", prompt(50, 6), greedy(2)).ok());
  ASSERT_TRUE(b.add("b1", prompt(51, 6), greedy(2)).ok());
  ASSERT_TRUE(b.engine().step().ok());
  EXPECT_EQ(pool.stats(1).held, 1);
  EXPECT_EQ(b.engine().kv().pool().num_online(), 2);
  EXPECT_EQ(b.engine().scheduler().num_running(), 1);
  EXPECT_EQ(b.engine().scheduler().num_waiting(), 1);
  EXPECT_EQ(pool.stats(0).idle_pending, 1);
  a.engine().service_kv();  // what A's wake-up runs on its thread while it idles
  EXPECT_EQ(pool.stats(0).held, 2);
  EXPECT_EQ(pool.stats(0).idle_pending, 0);
  EXPECT_EQ(a.engine().kv().pool().num_online(), 8);
  EXPECT_EQ(pool.stats(1).held, 2);
  EXPECT_EQ(pool.stats(1).borrowed, 1);
  EXPECT_EQ(b.engine().stats().kv_pages_borrowed, 2);
  expect_pages_inside_own_chunks(a.engine(), src_a, 0);
  b.run();
  EXPECT_EQ(b.result("b0").tokens[0], fake_greedy(prompt(50, 6), kVocab, 2));
  EXPECT_EQ(b.result("b1").tokens[0], fake_greedy(prompt(51, 6), kVocab, 2));
  expect_pages_inside_own_chunks(b.engine(), src_b, 1);
}

// Two engine threads, one pool, one arbiter, wake-ups as the server wires them;
// both flooded at once. Every request finishes with the reference tokens.
TEST(SharedKvPool, TwoEngineThreadsServeConcurrently) {
  memory::KvChunkPool pool(6, kChunkBytes, {{"a", 2}, {"b", 2}});
  memory::KvPageSource src_a(&pool, 0, geometry(1)), src_b(&pool, 1, geometry(2));
  // Caps of 16 tokens while shared: prompts are chunked finer, outputs stay exact.
  memory::StepArbiter arbiter({"a", "b"}, {1.0, 1.0}, 20, 1, 4, {16, 16});
  FakeModelRunner run_a(kVocab, static_cast<int>(src_a.max_pages()), kPageSize);
  FakeModelRunner run_b(kVocab, static_cast<int>(src_b.max_pages()), kPageSize);
  EngineConfig ca = config_for(&src_a, 32), cb = config_for(&src_b, 16);
  ca.cache.page_size = cb.cache.page_size = kPageSize;
  ca.arbiter = cb.arbiter = &arbiter;
  ca.arbiter_model = 0;
  cb.arbiter_model = 1;
  auto ta = EngineThread::start(ca, &run_a, nullptr);
  auto tb = EngineThread::start(cb, &run_b, nullptr);
  ASSERT_TRUE(ta.ok() && tb.ok());
  EngineThread* threads[2] = {ta->get(), tb->get()};
  for (int m = 0; m < 2; ++m)
    pool.set_wakeup(m, [t = threads[m]] { t->run_on_engine([](Engine& e) { e.service_kv(); }); });

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<int32_t>> tokens;
  int num_done = 0;
  auto submit = [&](int m, const std::string& id, std::vector<int32_t> p, int max_tokens) {
    GenerateRequest r;
    r.request_id = id;
    r.prompt_token_ids = std::move(p);
    r.sampling = greedy(max_tokens);
    r.sink = [&, id](RequestEvent&& ev) {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& t : ev.tokens) tokens[id].push_back(t.token_id);
      if (ev.request_done) {
        EXPECT_EQ(ev.finish, FinishReason::kLength) << id << ": " << ev.error;
        ++num_done;
        cv.notify_all();
      }
    };
    ASSERT_TRUE(threads[m]->submit(std::move(r)).ok());
  };
  constexpr int kPerModel = 24;
  for (int i = 0; i < kPerModel; ++i) {
    submit(0, "a" + std::to_string(i), prompt(i, 10 + i % 10), 8);
    submit(1, "b" + std::to_string(i), prompt(200 + i, 4 + i % 6), 6);
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return num_done == 2 * kPerModel; }))
        << num_done << " of " << 2 * kPerModel << " done";
  }
  for (int i = 0; i < kPerModel; ++i) {
    EXPECT_EQ(tokens["a" + std::to_string(i)], fake_greedy(prompt(i, 10 + i % 10), kVocab, 8)) << i;
    EXPECT_EQ(tokens["b" + std::to_string(i)], fake_greedy(prompt(200 + i, 4 + i % 6), kVocab, 6)) << i;
  }
  EXPECT_GT(arbiter.stats(0).steps, 0);
  EXPECT_GT(arbiter.stats(1).steps, 0);
  // Guarantees hold at the end: each model keeps at least what it was promised or gave it away only to lend.
  EXPECT_EQ(pool.stats(0).held + pool.stats(1).held + pool.num_free(), 6);
  for (int m = 0; m < 2; ++m) pool.set_wakeup(m, nullptr);
  tb->reset();
  ta->reset();
  // Only now: the last event is delivered before its step's end_step.
  EXPECT_EQ(arbiter.in_flight(), 0);
}

}  // namespace
}  // namespace tandem::testing

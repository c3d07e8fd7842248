// Randomized property test: 120,000 random events (add, step, abort, pages
// withdrawn and added back, which preempts) through the engine and pool over a
// tiny KV pool, checking after every event that no page is leaked or freed
// twice and that reference counts equal the block tables' use; at the end every
// request has ended exactly once, and every greedy one that finished produced
// exactly the fake model's continuation despite preemption and prefix reuse.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "engine_harness.h"

namespace tandem::testing {
namespace {

constexpr int kVocab = 32;
constexpr int kPageSize = 4;
constexpr int kPagesOnline = 24;
constexpr int kCapacity = 40;
constexpr int kMaxModelLen = 64;  // 16 pages: the pool never shrinks below this

// Returns an empty string when all holds, else what is wrong.
std::string check_invariants(Engine& engine) {
  const BlockPool& pool = engine.kv().pool();
  pool.check_invariants();  // lists, states and counters (CHECK-fails on its own)
  std::vector<int> refs(pool.capacity(), 0);
  const Scheduler& s = engine.scheduler();
  if (s.num_running() + s.num_seats_held() > s.config().max_num_seqs) return "too many running";
  for (const Sequence* seq : s.running()) {
    if (seq->kv.pages.size() < static_cast<size_t>(engine.kv().pages_for(seq->num_computed)))
      return "running sequence without pages for its computed tokens";
    for (int32_t p : seq->kv.pages) {
      if (p >= 0) ++refs[p];
    }
  }
  for (const Sequence* seq : s.waiting()) {
    if (!seq->kv.pages.empty() || seq->num_computed != 0) return "waiting sequence holds pages";
  }
  int used = 0;
  for (int p = 0; p < pool.capacity(); ++p) {
    if (refs[p] != pool.ref_count(p))
      return "page " + std::to_string(p) + " ref " + std::to_string(pool.ref_count(p)) + " but used by " +
             std::to_string(refs[p]) + " block tables";
    used += refs[p] > 0;
  }
  if (used != pool.num_active()) return "active count differs from pages in use";
  if (pool.num_online() < engine.kv().pages_for(kMaxModelLen)) return "pool shrank below max_model_len";
  return {};
}

TEST(EngineProperty, RandomEventsKeepEveryInvariant) {
  constexpr int kEvents = 120000;
  EngineConfig c;
  c.scheduler.max_num_seqs = 6;
  c.scheduler.max_num_batched_tokens = 20;
  c.scheduler.max_model_len = kMaxModelLen;
  c.eos_token_ids = {0};
  c.seed = 99;
  Harness h(c, kVocab, kPagesOnline, kPageSize, false, 0, kCapacity);
  Engine& engine = h.engine();
  // Pages [kPagesOnline, kCapacity) start offline; the test lends and takes back pages.
  std::mt19937 rng(2024);
  auto rnd = [&](int n) { return static_cast<int>(rng() % n); };
  auto tokens = [&](int n) {
    std::vector<int32_t> v(n);
    for (auto& x : v) x = rnd(kVocab);
    return v;
  };
  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 4; ++i) prefixes.push_back(tokens(8 + 8 * i));
  std::map<std::string, std::vector<int32_t>> prompts;
  std::map<std::string, SamplingParams> params;
  std::vector<std::string> ids;  // every request ever added
  int num_added = 0, num_steps = 0, num_aborts = 0, num_withdrawals = 0;
  for (int e = 0; e < kEvents; ++e) {
    int r = rnd(100);
    if (r < 25) {
      std::vector<int32_t> prompt;
      if (rnd(2)) prompt = prefixes[rnd(4)];
      auto tail = tokens(1 + rnd(12));
      prompt.insert(prompt.end(), tail.begin(), tail.end());
      SamplingParams p;
      p.temperature = 0.0f;
      p.max_tokens = 1 + rnd(std::min(24, kMaxModelLen - static_cast<int>(prompt.size())));
      if (rnd(4) == 0) {
        p.temperature = 0.8f;
        p.top_k = 8;
        p.seed = rng();
        p.n = 1 + rnd(3);
      }
      if (rnd(8) == 0) p.min_tokens = rnd(p.max_tokens + 1);
      std::string id = "q" + std::to_string(num_added++);
      prompts[id] = prompt;
      params[id] = p;
      ids.push_back(id);
      Status st = h.add(id, prompt, p);
      ASSERT_TRUE(st.ok()) << st.to_string();
    } else if (r < 85) {
      ++num_steps;
      Status st = engine.step();
      ASSERT_TRUE(st.ok()) << st.to_string();
    } else if (r < 93) {
      if (!ids.empty()) {
        ++num_aborts;
        engine.abort_request(ids[rnd(static_cast<int>(ids.size()))]);  // maybe long finished: a no-op
      }
    } else if (r < 97) {
      // Withdraw up to 4 online pages (some held: their holders are preempted).
      BlockPool& pool = engine.kv().pool();
      std::vector<int32_t> take;
      int room = pool.num_online() - engine.kv().pages_for(kMaxModelLen);
      for (int k = 0; k < 4 && static_cast<int>(take.size()) < room; ++k) {
        int32_t id = rnd(kCapacity);
        if (pool.state(id) != BlockPool::State::kOffline &&
            std::find(take.begin(), take.end(), id) == take.end())
          take.push_back(id);
      }
      ++num_withdrawals;
      ASSERT_EQ(engine.scheduler().withdraw_pages(take), 0);
    } else {
      BlockPool& pool = engine.kv().pool();
      std::vector<int32_t> give;
      for (int k = 0; k < 4; ++k) {
        int32_t id = rnd(kCapacity);
        if (pool.state(id) == BlockPool::State::kOffline && std::find(give.begin(), give.end(), id) == give.end())
          give.push_back(id);
      }
      engine.scheduler().add_pages(give);
    }
    std::string bad = check_invariants(engine);
    ASSERT_TRUE(bad.empty()) << "after event " << e << ": " << bad;
  }
  h.run();
  ASSERT_TRUE(check_invariants(engine).empty());
  EXPECT_EQ(engine.kv().pool().num_active(), 0);
  EXPECT_GT(engine.stats().num_preemptions, 100);
  EXPECT_GT(engine.stats().num_prefix_hit_tokens, 1000);
  int finished = 0, aborted = 0, checked = 0;
  for (const auto& id : ids) {
    const Result& res = h.result(id);
    ASSERT_EQ(res.num_done_events, 1) << id;
    ASSERT_EQ(res.num_events_after_done, 0) << id;
    const SamplingParams& p = params[id];
    bool any_abort = false;
    for (FinishReason f : res.finish) {
      ASSERT_TRUE(f == FinishReason::kStop || f == FinishReason::kLength || f == FinishReason::kAbort) << id;
      any_abort |= f == FinishReason::kAbort;
    }
    (any_abort ? aborted : finished) += 1;
    if (!any_abort && p.temperature == 0.0f && p.min_tokens == 0) {
      EXPECT_EQ(res.tokens[0], fake_greedy(prompts[id], kVocab, p.max_tokens, 0, {0})) << id;
      ++checked;
    }
    EXPECT_EQ(res.done_event.num_prompt_tokens, static_cast<int>(prompts[id].size()));
  }
  EXPECT_GT(checked, 1000);
  std::printf("events %d: %d requests (%d finished, %d aborted, %d checked against the model), %d steps, "
              "%d abort calls, %d withdrawals, %ld preemptions, %ld prefix-hit tokens\n",
              kEvents, num_added, finished, aborted, checked, num_steps, num_aborts, num_withdrawals,
              static_cast<long>(engine.stats().num_preemptions),
              static_cast<long>(engine.stats().num_prefix_hit_tokens));
}

}  // namespace
}  // namespace tandem::testing

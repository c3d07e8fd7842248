// Two engines on one StepArbiter with a shared step cap (memory/arbiter.h):
// a flooded engine's steps shrink to the cap while the other model is in the
// round, come back to its full budget when it is alone, and the other
// model's prompt runs whole; each step runs at the priority the arbiter gave
// it. Driven from one thread with two step slots, so every step size is exact
// (no timing).
#include <gtest/gtest.h>

#include "engine_harness.h"
#include "memory/arbiter.h"

namespace tandem::testing {
namespace {

constexpr int kVocab = 64;
constexpr int kPageSize = 4;
constexpr int kBudget = 64;  // max_num_batched_tokens of both engines
constexpr int kCap = 8;      // shared_step_tokens of both

std::vector<int32_t> prompt(int seed, int len) {
  std::vector<int32_t> p(len);
  for (int i = 0; i < len; ++i) p[i] = static_cast<int32_t>((seed * 131 + i * 17) % kVocab);
  return p;
}

EngineConfig config_for(memory::StepArbiter* arbiter, int model) {
  EngineConfig c;
  c.scheduler.max_num_seqs = 8;
  c.scheduler.max_num_batched_tokens = kBudget;
  c.arbiter = arbiter;
  c.arbiter_model = model;
  return c;
}

// Two slots: an engine that says it continues keeps one, and the other engine
// still gets the second without blocking this thread.
memory::StepArbiter make_arbiter(int64_t cap = kCap) {
  return memory::StepArbiter({"a", "b"}, {1.0, 1.0}, /*quantum_tokens=*/cap + 4, /*max_concurrent_steps=*/2,
                             /*step_overhead_tokens=*/4, /*shared_step_tokens=*/{cap, cap});
}

int step_tokens(Harness& h) {
  const size_t before = h.runner().batch_tokens().size();
  Status st = h.engine().step();
  EXPECT_TRUE(st.ok()) << st.to_string();
  return h.runner().batch_tokens().size() > before ? h.runner().batch_tokens().back() : 0;
}

TEST(StepCap, FloodedEngineShrinksWhileThePeerHasWorkAndRecoversAlone) {
  memory::StepArbiter arbiter = make_arbiter();
  Harness a(config_for(&arbiter, 0), kVocab, 128, kPageSize);
  Harness b(config_for(&arbiter, 1), kVocab, 32, kPageSize);
  constexpr int kNumA = 6, kPromptA = 40, kOutA = 8;
  for (int i = 0; i < kNumA; ++i) ASSERT_TRUE(a.add("a" + std::to_string(i), prompt(i, kPromptA), greedy(kOutA)).ok());

  // Alone: full steps.
  EXPECT_EQ(step_tokens(a), kBudget);
  EXPECT_EQ(step_tokens(a), kBudget);

  // B gets a 12-token prompt: B's steps were small (none yet), so it runs whole.
  ASSERT_TRUE(b.add("b0", prompt(100, 12), greedy(3)).ok());
  EXPECT_EQ(step_tokens(b), 12);
  ASSERT_TRUE(b.engine().has_work());

  // While B has work, every A step is exactly the cap (A has a backlog).
  int num_capped = 0;
  while (b.engine().has_work()) {
    EXPECT_EQ(step_tokens(a), kCap);
    ++num_capped;
    EXPECT_EQ(step_tokens(b), 1);  // B's decodes
  }
  EXPECT_EQ(num_capped, 2);
  EXPECT_EQ(b.result("b0").tokens[0], fake_greedy(prompt(100, 12), kVocab, 3));
  EXPECT_EQ(arbiter.stats(0).capped, 2);

  // B is idle again: A's next step is full.
  EXPECT_EQ(step_tokens(a), kBudget);
  a.run();
  for (int i = 0; i < kNumA; ++i)
    EXPECT_EQ(a.result("a" + std::to_string(i)).tokens[0], fake_greedy(prompt(i, kPromptA), kVocab, kOutA)) << i;
  EXPECT_EQ(arbiter.in_flight(), 0);
}

TEST(StepCap, RunningDecodesAlwaysFitUnderTheCap) {
  memory::StepArbiter arbiter = make_arbiter(/*cap=*/2);
  Harness a(config_for(&arbiter, 0), kVocab, 64, kPageSize);
  Harness b(config_for(&arbiter, 1), kVocab, 32, kPageSize);
  constexpr int kNumA = 6;
  for (int i = 0; i < kNumA; ++i) ASSERT_TRUE(a.add("a" + std::to_string(i), prompt(i, 5), greedy(6)).ok());
  EXPECT_EQ(step_tokens(a), kNumA * 5);
  ASSERT_TRUE(b.add("b0", prompt(100, 4), greedy(4)).ok());
  EXPECT_EQ(step_tokens(b), 4);
  // A is capped at 2 tokens, but its six running decodes all run.
  EXPECT_EQ(step_tokens(a), kNumA);
  EXPECT_EQ(a.engine().last_schedule().scheduled.size(), static_cast<size_t>(kNumA));
  EXPECT_EQ(arbiter.stats(0).capped, 1);
  b.run();
  a.run();
  for (int i = 0; i < kNumA; ++i)
    EXPECT_EQ(a.result("a" + std::to_string(i)).tokens[0], fake_greedy(prompt(i, 5), kVocab, 6)) << i;
  EXPECT_EQ(arbiter.in_flight(), 0);
}

// Each engine tells its runner, before every forward, whether the arbiter
// made the step urgent: the flooded engine's steps run low, alone or while the
// other model is in the round; the other's run high. The
// arbiter's clock ticks a millisecond a reading, so every step is as long and
// service follows the step counts.
TEST(StepPriority, TheLightEngineRunsHighTheFloodedOneLow) {
  double now = 0;
  memory::ServiceOptions service;
  service.clock = [&now] { return now += 0.001; };
  memory::StepArbiter arbiter({"a", "b"}, {1.0, 1.0}, /*quantum_tokens=*/kBudget, /*max_concurrent_steps=*/2,
                              /*step_overhead_tokens=*/4, /*shared_step_tokens=*/{}, std::move(service));
  Harness a(config_for(&arbiter, 0), kVocab, 128, kPageSize);
  Harness b(config_for(&arbiter, 1), kVocab, 32, kPageSize);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(a.add("a" + std::to_string(i), prompt(i, 40), greedy(8)).ok());
  for (int i = 0; i < 3; ++i) step_tokens(a);  // alone
  ASSERT_TRUE(b.add("b0", prompt(100, 12), greedy(3)).ok());
  while (b.engine().has_work()) {  // B's prompt, then two decodes; its last step ends its work
    step_tokens(b);
    step_tokens(a);
  }
  step_tokens(a);
  EXPECT_EQ(a.runner().batch_priority(), (std::vector<int>{0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(b.runner().batch_priority(), (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(arbiter.stats(0).urgent_steps, 0);
  EXPECT_EQ(arbiter.stats(1).urgent_steps, 3);
  a.run();
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(a.result("a" + std::to_string(i)).tokens[0], fake_greedy(prompt(i, 40), kVocab, 8)) << i;
  EXPECT_EQ(b.result("b0").tokens[0], fake_greedy(prompt(100, 12), kVocab, 3));
  EXPECT_EQ(arbiter.in_flight(), 0);
}

// Without an arbiter the engine never gives the hint.
TEST(StepPriority, NoArbiterNoHint) {
  Harness h(EngineConfig{}, kVocab, 32, kPageSize);
  ASSERT_TRUE(h.add("x", prompt(1, 10), greedy(3)).ok());
  h.run();
  EXPECT_EQ(h.runner().batch_priority(), (std::vector<int>{-1, -1, -1}));
}

}  // namespace
}  // namespace tandem::testing

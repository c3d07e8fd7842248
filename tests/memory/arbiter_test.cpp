#include "memory/arbiter.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::memory {
namespace {

std::string picks(DrrPicker& p, const std::vector<int64_t>& waiting, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    const int m = p.pick(waiting);
    s += m < 0 ? '-' : static_cast<char>('A' + m);
  }
  return s;
}

TEST(Arbiter, WeightedTurnsWhenBothSaturated) {
  DrrPicker p({2.0, 1.0}, 1000);
  // A gets 2000 per turn = 4 steps of 500, B 1000 = 2 steps.
  EXPECT_EQ(picks(p, {500, 500}, 18), "AAAABBAAAABBAAAABB");
}

TEST(Arbiter, TokenCostsNotStepCounts) {
  DrrPicker p({1.0, 1.0}, 1000);
  // Equal weights: A's 1000-token steps vs B's 250-token steps: 1 A step per 4 B steps.
  EXPECT_EQ(picks(p, {1000, 250}, 15), "ABBBBABBBBABBBB");
}

TEST(Arbiter, LeftoverDeficitCarriesWithinABusyPeriod) {
  DrrPicker p({1.0, 1.0}, 1000);
  // A's 600-token steps: turn 1 one step (1000 -> 400 left), turn 2 two (1400 -> 200),
  // turn 3 two (1200 -> 0); B one 1000-token step per turn.
  EXPECT_EQ(picks(p, {600, 1000}, 8), "ABAABAAB");
}

TEST(Arbiter, IdleModelGetsNothingAndBanksNothing) {
  DrrPicker p({1.0, 1.0}, 1000);
  EXPECT_EQ(picks(p, {-1, 300}, 5), "BBBBB");  // work-conserving
  EXPECT_EQ(p.deficit(0), 0);
  EXPECT_EQ(picks(p, {-1, -1}, 2), "--");
  // A flood on B does not starve A: A runs within one turn of B.
  DrrPicker q({1.0, 1.0}, 1000);
  EXPECT_EQ(picks(q, {-1, 1000}, 3), "BBB");
  const std::string mixed = picks(q, {1000, 1000}, 4);
  EXPECT_NE(mixed.find('A'), std::string::npos);
  EXPECT_LE(mixed.find('A'), 1u);
}

TEST(Arbiter, LongRunShareMatchesWeights) {
  int64_t tokens[2] = {0, 0};
  const std::vector<int64_t> cost = {700, 130};
  DrrPicker r({3.0, 1.0}, 2048);
  for (int i = 0; i < 20000; ++i) {
    const int m = r.pick(cost);
    tokens[m] += cost[m];
  }
  const double ratio = static_cast<double>(tokens[0]) / static_cast<double>(tokens[1]);
  EXPECT_NEAR(ratio, 3.0, 0.03);
}

TEST(Arbiter, StepsAreSerialisedAndShareByWeight) {
  // Two engine threads, always busy, one step at a time, weights 3:1, equal steps.
  StepArbiter arb({"a", "b"}, {3.0, 1.0}, /*quantum_tokens=*/100, /*max_concurrent_steps=*/1,
                  /*step_overhead_tokens=*/0);
  std::atomic<int> in_step{0}, max_in_step{0};
  std::mutex mu;
  std::string order;  // who ran, in order
  constexpr int kBSteps = 100;
  std::atomic<bool> stop{false}, a_started{false};
  auto step = [&](char who) {
    const int now = ++in_step;
    int prev = max_in_step.load();
    while (now > prev && !max_in_step.compare_exchange_weak(prev, now)) {}
    {
      std::lock_guard<std::mutex> lock(mu);
      order += who;
    }
    std::this_thread::yield();
    --in_step;
  };
  std::thread a([&] {
    bool continuing = false;
    while (!stop.load()) {
      arb.begin_step(0, 100);
      step('A');
      a_started = true;
      continuing = !stop.load();
      arb.end_step(0, continuing);
    }
    // `stop` may be set after A said it would continue: hand the held turn
    // back, as Engine::give_back_arbiter_turn does.
    if (continuing) {
      arb.begin_step(0, 0);
      arb.end_step(0, false);
    }
  });
  std::thread b([&] {
    while (!a_started.load()) std::this_thread::yield();  // so both are busy from B's first step
    for (int i = 0; i < kBSteps; ++i) {
      arb.begin_step(1, 100);
      step('B');
      arb.end_step(1, i + 1 < kBSteps);
    }
    stop = true;
  });
  b.join();
  a.join();
  EXPECT_EQ(max_in_step.load(), 1);
  EXPECT_EQ(arb.in_flight(), 0);
  EXPECT_EQ(arb.stats(1).steps, kBSteps);
  // While both run: 3 A steps per B step.
  const size_t from = order.find('B');
  const size_t to = order.rfind('B');
  ASSERT_LT(from, to);
  const std::string both = order.substr(from, to - from + 1);
  const auto num_a = std::count(both.begin(), both.end(), 'A');
  const auto num_b = std::count(both.begin(), both.end(), 'B');
  ASSERT_GE(num_b, 10) << order;
  EXPECT_GE(num_a, 3 * num_b - 6) << both;
  EXPECT_LE(num_a, 3 * num_b + 6) << both;
}

TEST(Arbiter, TwoConcurrentStepsLetBothRun) {
  StepArbiter arb({"a", "b"}, {1.0, 1.0}, 100, /*max_concurrent_steps=*/2);
  arb.begin_step(0, 10);
  arb.begin_step(1, 10);  // would block forever with one slot
  EXPECT_EQ(arb.in_flight(), 2);
  arb.end_step(0, false);
  arb.end_step(1, false);
  EXPECT_EQ(arb.in_flight(), 0);
  EXPECT_EQ(arb.stats(0).tokens, 10);
}

TEST(Arbiter, AloneGetsItsOwnBudget) {
  StepArbiter arb({"a", "b"}, {1.0, 1.0}, 12, /*max_concurrent_steps=*/2, /*step_overhead_tokens=*/4,
                  /*shared_step_tokens=*/{8, 8});
  EXPECT_EQ(arb.step_tokens(0, 64), 64);
  arb.begin_step(0, 64);
  arb.end_step(0, /*will_continue=*/true);  // backlogged, but nobody else is in the round
  EXPECT_EQ(arb.step_tokens(0, 64), 64);
  arb.begin_step(0, 64);
  arb.end_step(0, false);
  EXPECT_EQ(arb.stats(0).capped, 0);
}

TEST(Arbiter, BackloggedModelIsCappedWhileAnotherIsInTheRound) {
  StepArbiter arb({"a", "b"}, {1.0, 1.0}, 12, /*max_concurrent_steps=*/2, /*step_overhead_tokens=*/4,
                  /*shared_step_tokens=*/{8, 8});
  arb.begin_step(0, 64);
  arb.end_step(0, true);  // A: continuing, its last step filled the cap
  arb.begin_step(1, 5);   // B running
  EXPECT_EQ(arb.step_tokens(0, 64), 8);
  EXPECT_EQ(arb.step_tokens(0, 6), 6);  // never above the engine's own budget
  EXPECT_EQ(arb.step_tokens(1, 64), 64) << "B's last step was small: its prompt runs whole";
  arb.end_step(1, true);  // B continuing: still in the round
  EXPECT_EQ(arb.step_tokens(0, 64), 8);
  arb.begin_step(1, 20);  // a whole prompt of B
  arb.end_step(1, true);
  EXPECT_EQ(arb.step_tokens(1, 64), 8) << "B's last step filled the cap: both are capped now";
  arb.begin_step(0, 8);
  arb.end_step(0, true);
  EXPECT_EQ(arb.step_tokens(0, 64), 8) << "a capped step still counts as backlogged";
  arb.begin_step(1, 1);
  arb.end_step(1, false);  // B idle
  EXPECT_EQ(arb.step_tokens(0, 64), 64);
  EXPECT_EQ(arb.stats(0).capped, 3);
  EXPECT_EQ(arb.stats(1).capped, 1);
  arb.begin_step(0, 64);
  arb.end_step(0, false);  // A idle: its next work starts light
  arb.begin_step(1, 30);
  EXPECT_EQ(arb.step_tokens(0, 64), 64);
  arb.end_step(1, false);
}

TEST(Arbiter, ZeroSharedStepTokensNeverCaps) {
  StepArbiter arb({"a", "b"}, {1.0, 1.0}, 12, 2, 4, {0, 8});
  arb.begin_step(0, 64);
  arb.end_step(0, true);
  arb.begin_step(1, 64);
  EXPECT_EQ(arb.step_tokens(0, 64), 64);
  EXPECT_EQ(arb.step_tokens(1, 64), 8);
  arb.end_step(1, false);
  arb.begin_step(0, 0);
  arb.end_step(0, false);
}

TEST(Arbiter, CapAppliesWhileThePeerWaitsForTheOneSlot) {
  // Serialised steps: B blocks in begin_step behind A's step; from then on A's
  // next step is capped. The wait is on the arbiter's answer, not on time.
  StepArbiter arb({"a", "b"}, {1.0, 1.0}, 12, /*max_concurrent_steps=*/1, 4, {8, 8});
  arb.begin_step(0, 64);
  std::atomic<bool> b_ran{false};
  std::thread b([&] {
    arb.begin_step(1, 3);
    b_ran = true;
    arb.end_step(1, false);
  });
  while (arb.step_tokens(0, 64) != 8) std::this_thread::yield();  // B is waiting
  EXPECT_FALSE(b_ran.load());
  arb.end_step(0, false);
  b.join();
  EXPECT_TRUE(b_ran.load());
  EXPECT_EQ(arb.step_tokens(0, 64), 64);
  EXPECT_EQ(arb.in_flight(), 0);
}

}  // namespace
}  // namespace tandem::memory

namespace tandem::memory {
namespace {

TEST(ServiceMeter, DecaysByHalfLivesAndDividesByWeight) {
  ServiceMeter m({1.0, 2.0}, /*half_life_seconds=*/0.5);
  m.add(0, 0.8, /*now=*/1.0);
  m.add(1, 0.8, /*now=*/1.0);
  EXPECT_DOUBLE_EQ(m.normalized(0, 1.0), 0.8);
  EXPECT_DOUBLE_EQ(m.normalized(1, 1.0), 0.4);
  EXPECT_DOUBLE_EQ(m.normalized(0, 1.5), 0.4);  // one half-life
  EXPECT_DOUBLE_EQ(m.normalized(0, 2.0), 0.2);
  EXPECT_DOUBLE_EQ(m.normalized(0, 2.0, /*running_seconds=*/0.3), 0.5);
  EXPECT_DOUBLE_EQ(m.normalized(1, 2.0, 0.3), 0.25);
  m.add(0, 0.1, 2.0);  // decayed to 0.2, then + 0.1
  EXPECT_DOUBLE_EQ(m.normalized(0, 2.0), 0.30000000000000004);
}

// A fake clock for StepArbiter: steps take exactly the seconds a test says.
class UrgentSteps : public ::testing::Test {
 protected:
  StepArbiter make(std::vector<double> weights, double half_life = 1.0) {
    ServiceOptions s;
    s.half_life_seconds = half_life;
    s.clock = [this] { return now_; };
    return StepArbiter({"a", "b"}, std::move(weights), /*quantum_tokens=*/100, /*max_concurrent_steps=*/2,
                       /*step_overhead_tokens=*/0, /*shared_step_tokens=*/{}, std::move(s));
  }
  // One whole step of `model` lasting `seconds`; returns whether it was urgent.
  bool step(StepArbiter& arb, int model, double seconds, bool will_continue = true) {
    arb.begin_step(model, 10);
    const bool urgent = arb.urgent(model);
    now_ += seconds;
    arb.end_step(model, will_continue);
    return urgent;
  }
  double now_ = 100.0;
};

// Alone, a model's steps run low however light it is: a model that arrives
// during one of them then goes ahead of it.
TEST_F(UrgentSteps, ALoneModelRunsLow) {
  StepArbiter arb = make({1.0, 1.0});
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(step(arb, 0, 0.2)) << i;
  EXPECT_FALSE(step(arb, 0, 0.2, /*will_continue=*/false));
  EXPECT_EQ(arb.stats(0).urgent_steps, 0);
  EXPECT_EQ(arb.stats(0).steps, 21);
}

TEST_F(UrgentSteps, FreshModelsTieAndAreBothUrgent) {
  StepArbiter arb = make({1.0, 1.0});
  arb.begin_step(0, 10);  // alone when granted: low
  arb.begin_step(1, 10);  // A is running, 0 s so far: a tie
  EXPECT_FALSE(arb.urgent(0));
  EXPECT_TRUE(arb.urgent(1));
  arb.end_step(0, true);
  arb.end_step(1, true);
  arb.begin_step(0, 10);  // both in the round, both ~0 s: urgent
  EXPECT_TRUE(arb.urgent(0));
  arb.end_step(0, false);
  arb.begin_step(1, 10);  // A idle: B alone, low
  EXPECT_FALSE(arb.urgent(1));
  arb.end_step(1, false);
}

TEST_F(UrgentSteps, TheFloodedModelLosesPriorityAndTheLightOneGetsIt) {
  StepArbiter arb = make({1.0, 1.0});
  for (int i = 0; i < 10; ++i) step(arb, 0, 0.2);  // A flooded for 2 s, alone
  // B arrives with a prompt while A is between steps (continuing: in the round).
  EXPECT_TRUE(step(arb, 1, 0.05)) << "B has attained no service";
  // From now on A's steps are not urgent while B is in the round, B's are.
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(step(arb, 0, 0.2)) << i;
    EXPECT_TRUE(step(arb, 1, 0.01, /*will_continue=*/i < 4)) << i;
  }
  // B idle: A is alone again, and low.
  EXPECT_FALSE(step(arb, 0, 0.2));
  EXPECT_EQ(arb.stats(0).urgent_steps, 0);
  EXPECT_EQ(arb.stats(1).urgent_steps, 6);
  EXPECT_EQ(arb.stats(1).steps, 6);
  step(arb, 0, 0.0, false);
}

TEST_F(UrgentSteps, ARunningStepCountsBeforeItEnds) {
  StepArbiter arb = make({1.0, 1.0});
  step(arb, 1, 0.1, /*will_continue=*/false);  // B: 0.1 s attained
  arb.begin_step(0, 10);  // A's long step starts
  now_ += 0.5;
  EXPECT_TRUE(step(arb, 1, 0.01)) << "A's step has run 0.5 s, more than B's 0.1 s (decayed)";
  now_ += 0.5;
  arb.end_step(0, false);
  step(arb, 1, 0.0, false);
}

TEST_F(UrgentSteps, WeightsScaleService) {
  // A (weight 4) had 0.4 s of the GPU, B (weight 1) 0.2 s: per unit of weight
  // A has had less, so A is the urgent one.
  StepArbiter arb = make({4.0, 1.0});
  step(arb, 0, 0.4, false);
  step(arb, 1, 0.2, /*will_continue=*/true);
  EXPECT_TRUE(step(arb, 0, 0.0));
  EXPECT_FALSE(step(arb, 1, 0.0, false));
  step(arb, 0, 0.0, false);
  // The same times with equal weights: B is the urgent one.
  StepArbiter equal = make({1.0, 1.0});
  step(equal, 0, 0.4, false);
  step(equal, 1, 0.2, true);
  EXPECT_FALSE(step(equal, 0, 0.0));
  EXPECT_TRUE(step(equal, 1, 0.0, false));
  step(equal, 0, 0.0, false);
}

TEST_F(UrgentSteps, DecayRestoresAQuietModel) {
  StepArbiter arb = make({1.0, 1.0}, /*half_life=*/1.0);
  for (int i = 0; i < 10; ++i) step(arb, 0, 0.2, /*will_continue=*/i < 9);  // A: 2 s busy, ~1.16 s decayed
  step(arb, 1, 0.4);  // B: 0.4 s, continuing
  EXPECT_FALSE(step(arb, 0, 0.0, false)) << "A's ~0.88 s is above B's 0.4 s";
  step(arb, 1, 0.0, false);
  now_ += 3.0;  // both quiet for three half-lives
  step(arb, 1, 0.4);  // B: ~0.44 s now
  EXPECT_TRUE(step(arb, 0, 0.0, false)) << "A's ~0.08 s is below B's: without decay A would stay behind";
  step(arb, 1, 0.0, false);
}

}  // namespace
}  // namespace tandem::memory

// Sharing GPU steps between engine threads (one per model) by per-model
// weights, when several are saturated.
//
// Policy: weighted deficit round robin over step costs. A step's cost is its
// tokens plus `step_overhead_tokens`, the token-equivalent of what every step
// pays whatever its size (reading all weights once, launches): without it a
// model running one-token decode steps would get thousands of steps per
// prefill step of the other. Engines
// waiting for the GPU are visited in a fixed circular order; at the start of a
// model's turn its deficit grows by quantum x weight; it runs steps while its
// next step's tokens fit its deficit (each step subtracts its tokens), then the
// turn passes on. A model with nothing waiting loses its deficit (no banking
// while idle), so a model that was quiet cannot burst past the others later.
// With one model waiting it runs at once (work-conserving). Over any interval
// in which models A and B both wait, tokens_A / tokens_B tends to
// weight_A / weight_B, off by at most one quantum x weight plus one step each.
//
// An engine that ends a step with more work to do says so (end_step's
// will_continue): it stays in the round with its last step's tokens as the
// estimate, so a saturated engine that is between steps (building its next
// batch) is not mistaken for an idle one; if its turn comes the slot is held
// for it and the estimate is corrected when it asks with the real tokens.
// Without this, serialised steps would simply alternate, whatever the weights.
//
// Short steps while shared (`shared_step_tokens`, per model; 0: off). How long
// model B waits for the GPU is the length of A's turn, and a turn is at least
// one of A's steps: a saturated 33B model's 2048-token step takes hundreds of
// ms. So an engine asks step_tokens() before it schedules, and gets
//   - its own max_num_batched_tokens while no other model is in the round
//     (waiting, granted, running or continuing): alone, nothing is lost;
//   - min(own, shared_step_tokens) while another model is in the round and
//     this model's previous step had at least shared_step_tokens tokens (it
//     has a backlog that fills whatever it is given);
//   - its own budget otherwise: a model whose steps are small (decodes, an
//     occasional prompt) is the latency-bound one, and its prompt then runs
//     whole instead of being split over two turns with the other's step in
//     between. It costs the others at most one such step before it too counts
//     as backlogged.
// A short step only shortens turns if the quantum shrinks with it: the server
// sets quantum = the largest shared_step_tokens + step_overhead_tokens, about
// one capped step per unit of weight per turn (with a 2048-token quantum A
// would run four 512-token steps per turn and B would wait about as long).
// Costs larger than the quantum build up over several turns, so shares by
// weight hold as before. The step a backlogged model scheduled before the
// other arrived still runs at full size (it was chosen before the other
// asked). Under a cap the scheduler still runs every running decode (the cap
// rises to their number; a prompt chunk leaves room for the decodes after it).
//
// `max_concurrent_steps` steps may be in flight at once (each engine runs on
// its own CUDA stream): 1 serialises steps; 2 lets two models overlap while the
// choice of who starts next stays weighted.
//
// Urgent steps (least attained service). When two steps overlap, the GPU runs
// both, and which one's kernels it dispatches first follows the priority of
// their streams (Backend::set_step_priority). The arbiter decides it at each
// grant: a model's attained service is its GPU busy time (wall time from the
// moment a step of it starts running to its end_step; a step still running
// counts up to now), decayed with a half-life (ServiceOptions) and divided by
// its weight. A step is urgent when another model is in the round and its
// model's service is not above that of any other model in the round (ties:
// all of them urgent); a model alone runs low (high would gain it nothing, and
// a model arriving during that step must be able to go ahead of it). So a
// flooded model, busy all the time, runs below a light one, whose prefills and
// decodes go ahead of the flood's kernels; a few half-lives after its flood
// stops it is light again. With one step at a time
// the answer changes nothing on the GPU (nothing overlaps).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "memory/arbiter_stats.h"

namespace tandem::memory {

// The deterministic core: which waiting model runs next. Not thread-safe.
class DrrPicker {
 public:
  // weights > 0; quantum_tokens > 0 (a step costing more than quantum x
  // weight waits for the deficit of several turns).
  DrrPicker(std::vector<double> weights, int64_t quantum_tokens);

  // waiting_tokens[i] = cost of model i's next step, or -1 if it has none.
  // Returns the model to run (its deficit is charged), or -1 if none waits.
  int pick(const std::vector<int64_t>& waiting_tokens);

  // Corrects a charge made on an estimate: deficit += estimated - actual.
  void adjust(int model, double delta) { deficit_[model] += delta; }

  double deficit(int model) const { return deficit_[model]; }
  int num_models() const { return static_cast<int>(weights_.size()); }

 private:
  std::vector<double> weights_;
  int64_t quantum_;
  std::vector<double> deficit_;
  int current_ = 0;
  bool turn_started_ = false;
};

// The deterministic core of urgency: per model, GPU busy seconds decayed
// exponentially with a half-life, divided by the model's weight. Not thread-safe.
class ServiceMeter {
 public:
  // weights > 0; half_life_seconds > 0.
  ServiceMeter(std::vector<double> weights, double half_life_seconds);

  // A step of `model` that kept the GPU busy for busy_seconds, ending at `now`
  // (seconds on the caller's clock; never earlier than a previous call's).
  void add(int model, double busy_seconds, double now);
  // Decayed busy seconds as of `now`, plus running_seconds of a step not yet
  // added, divided by the weight.
  double normalized(int model, double now, double running_seconds = 0) const;

 private:
  std::vector<double> weights_;
  double half_life_;
  std::vector<double> busy_;    // decayed busy seconds as of as_of_
  std::vector<double> as_of_;
};

// NOT YET MEASURED: a decode step of a 4-bit 33B model reads ~18 GB of weights
// (~5.5 ms on an H100), about the time of a 256-token prefill chunk; refine
// from the bench numbers on the GPU machine.
inline constexpr int64_t kDefaultStepOverheadTokens = 256;

// NOT YET MEASURED: a quarter of the default 2048-token step; a 512-token
// prompt of the latency-bound model still runs whole (it is not capped).
inline constexpr int64_t kDefaultSharedStepTokens = 512;

// NOT YET MEASURED: several 50-200 ms steps of a flooded model add up to a
// clear lead within a second, and a model quiet for a few seconds counts as
// light again.
inline constexpr double kDefaultServiceHalfLifeSeconds = 1.0;

// Least-attained-service accounting of StepArbiter (urgent steps).
struct ServiceOptions {
  double half_life_seconds = kDefaultServiceHalfLifeSeconds;  // > 0
  // Seconds on a monotonic clock, for busy and wait times, read from every
  // engine thread; empty: steady_clock. Tests pass a fake one.
  std::function<double()> clock;
};

// Thread-safe gate in front of every engine step.
class StepArbiter {
 public:
  // shared_step_tokens[i] >= 0 (0: model i is never capped); empty: none is.
  StepArbiter(std::vector<std::string> names, std::vector<double> weights, int64_t quantum_tokens,
              int max_concurrent_steps, int64_t step_overhead_tokens = kDefaultStepOverheadTokens,
              std::vector<int64_t> shared_step_tokens = {}, ServiceOptions service = {});
  StepArbiter(const StepArbiter&) = delete;
  StepArbiter& operator=(const StepArbiter&) = delete;

  // Blocks until `model` may run a step of `tokens` tokens. One outstanding
  // request per model (its engine thread). Pair with end_step.
  void begin_step(int model, int64_t tokens);
  // `will_continue`: the engine has more work and calls begin_step next (a
  // zero-token step is fine if the work vanished, e.g. aborted requests).
  void end_step(int model, bool will_continue);
  // Tokens `model` may schedule in its next step, given its own limit
  // `own_max` (policy above). Ask before scheduling, then begin_step.
  int64_t step_tokens(int model, int64_t own_max);
  // Whether the step `model` is running (begun, not yet ended) is urgent
  // (least attained service, above), as decided when begin_step granted it.
  bool urgent(int model) const;

  ArbiterStats stats(int model) const;
  int in_flight() const;

 private:
  void grant_locked();  // REQUIRES(mu_)
  bool in_round_locked(int model) const;  // waiting, granted or running; REQUIRES(mu_)
  bool other_in_round_locked(int model) const;  // REQUIRES(mu_)
  bool least_served_locked(int model, double now) const;  // REQUIRES(mu_)

  std::vector<std::string> names_;
  const int max_concurrent_;
  const int64_t step_overhead_;
  const std::vector<int64_t> shared_step_;  // per model; 0: never capped
  const std::function<double()> clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  DrrPicker picker_;                  // GUARDED_BY(mu_)
  ServiceMeter service_;              // GUARDED_BY(mu_)
  std::vector<double> started_;       // clock when the running step started; GUARDED_BY(mu_)
  std::vector<bool> urgent_;          // of the running step; GUARDED_BY(mu_)
  std::vector<int64_t> waiting_;      // tokens or -1; GUARDED_BY(mu_)
  std::vector<bool> granted_;         // GUARDED_BY(mu_)
  std::vector<bool> running_;         // GUARDED_BY(mu_)
  std::vector<bool> continuing_;      // in the round on an estimate; GUARDED_BY(mu_)
  std::vector<int64_t> charged_;      // cost charged at grant; GUARDED_BY(mu_)
  std::vector<int64_t> last_cost_;    // estimate for a continuing engine; GUARDED_BY(mu_)
  std::vector<bool> backlogged_;      // last step filled shared_step_; GUARDED_BY(mu_)
  std::vector<ArbiterStats> stats_;   // GUARDED_BY(mu_)
  int in_flight_ = 0;                 // GUARDED_BY(mu_)
};

}  // namespace tandem::memory

#include "memory/arbiter.h"

#include <chrono>
#include <cmath>

#include "common/check.h"

namespace tandem::memory {

DrrPicker::DrrPicker(std::vector<double> weights, int64_t quantum_tokens)
    : weights_(std::move(weights)), quantum_(quantum_tokens), deficit_(weights_.size(), 0.0) {
  CHECK(!weights_.empty());
  CHECK_GT(quantum_tokens, 0);
  for (double w : weights_) CHECK_GT(w, 0.0);
}

int DrrPicker::pick(const std::vector<int64_t>& waiting) {
  CHECK_EQ(waiting.size(), weights_.size());
  bool any = false;
  for (int64_t t : waiting) any = any || t >= 0;
  if (!any) {
    for (double& d : deficit_) d = 0;  // all idle: nobody banks credit
    turn_started_ = false;
    return -1;
  }
  const int n = num_models();
  // Each full circle adds quantum x weight to every waiting model, so this ends.
  for (;;) {
    const int i = current_;
    if (waiting[i] < 0) {
      deficit_[i] = 0;  // idle models lose their credit
      turn_started_ = false;
      current_ = (current_ + 1) % n;
      continue;
    }
    if (!turn_started_) {
      deficit_[i] += static_cast<double>(quantum_) * weights_[i];
      turn_started_ = true;
    }
    const auto cost = static_cast<double>(std::max<int64_t>(waiting[i], 1));
    if (cost <= deficit_[i]) {
      deficit_[i] -= cost;
      return i;  // the turn goes on while the deficit lasts
    }
    turn_started_ = false;
    current_ = (current_ + 1) % n;
  }
}

ServiceMeter::ServiceMeter(std::vector<double> weights, double half_life_seconds)
    : weights_(std::move(weights)), half_life_(half_life_seconds), busy_(weights_.size(), 0.0),
      as_of_(weights_.size(), 0.0) {
  CHECK_GT(half_life_seconds, 0.0);
  for (double w : weights_) CHECK_GT(w, 0.0);
}

void ServiceMeter::add(int model, double busy_seconds, double now) {
  busy_[model] = busy_[model] * std::exp2(-(now - as_of_[model]) / half_life_) + busy_seconds;
  as_of_[model] = now;
}

double ServiceMeter::normalized(int model, double now, double running_seconds) const {
  return (busy_[model] * std::exp2(-(now - as_of_[model]) / half_life_) + running_seconds) / weights_[model];
}

namespace {
double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

StepArbiter::StepArbiter(std::vector<std::string> names, std::vector<double> weights, int64_t quantum_tokens,
                         int max_concurrent_steps, int64_t step_overhead_tokens,
                         std::vector<int64_t> shared_step_tokens, ServiceOptions service)
    : names_(std::move(names)), max_concurrent_(max_concurrent_steps), step_overhead_(step_overhead_tokens),
      shared_step_(shared_step_tokens.empty() ? std::vector<int64_t>(names_.size(), 0)
                                              : std::move(shared_step_tokens)),
      clock_(service.clock ? std::move(service.clock) : std::function<double()>(steady_seconds)),
      picker_(weights, quantum_tokens),
      service_(std::move(weights), service.half_life_seconds) {
  CHECK_GE(step_overhead_tokens, 0);
  CHECK_EQ(names_.size(), static_cast<size_t>(picker_.num_models()));
  CHECK_EQ(shared_step_.size(), names_.size());
  for (int64_t t : shared_step_) CHECK_GE(t, 0);
  CHECK_GE(max_concurrent_steps, 1);
  const size_t n = names_.size();
  backlogged_.assign(n, false);
  waiting_.assign(n, -1);
  granted_.assign(n, false);
  running_.assign(n, false);
  continuing_.assign(n, false);
  charged_.assign(n, 0);
  last_cost_.assign(n, 1);
  started_.assign(n, 0.0);
  urgent_.assign(n, false);
  stats_.resize(n);
}

void StepArbiter::grant_locked() {
  while (in_flight_ < max_concurrent_) {
    const int next = picker_.pick(waiting_);
    if (next < 0) return;
    charged_[next] = waiting_[next];
    waiting_[next] = -1;  // waiting -> granted (the slot is held even if it is between steps)
    granted_[next] = true;
    in_flight_++;
  }
}

void StepArbiter::begin_step(int model, int64_t tokens) {
  CHECK_GE(tokens, 0);
  const double t0 = clock_();
  std::unique_lock<std::mutex> lock(mu_);
  CHECK_MSG(!running_[model], "engine " << names_[model] << " began a step while running one");
  if (continuing_[model]) {
    continuing_[model] = false;
    if (!granted_[model]) waiting_[model] = tokens + step_overhead_;  // estimate -> real cost
  } else {
    CHECK_MSG(waiting_[model] < 0 && !granted_[model],
              "engine " << names_[model] << " asked for a step while one is outstanding");
    waiting_[model] = tokens + step_overhead_;  // idle -> waiting
  }
  grant_locked();
  cv_.notify_all();
  cv_.wait(lock, [&] { return granted_[model]; });
  granted_[model] = false;  // granted -> running
  running_[model] = true;
  const double t1 = clock_();
  started_[model] = t1;
  urgent_[model] = least_served_locked(model, t1);
  const int64_t cost = tokens + step_overhead_;
  picker_.adjust(model, static_cast<double>(charged_[model] - cost));
  last_cost_[model] = std::max<int64_t>(cost, 1);
  backlogged_[model] = shared_step_[model] > 0 && tokens >= shared_step_[model];
  stats_[model].steps++;
  stats_[model].tokens += tokens;
  stats_[model].wait_seconds += t1 - t0;
  if (urgent_[model]) stats_[model].urgent_steps++;
}

void StepArbiter::end_step(int model, bool will_continue) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    CHECK_MSG(running_[model], "engine " << names_[model] << " ended a step it did not begin");
    running_[model] = false;  // running -> idle, or -> waiting on an estimate
    in_flight_--;
    const double t = clock_();
    service_.add(model, t - started_[model], t);
    if (will_continue) {
      continuing_[model] = true;
      waiting_[model] = last_cost_[model];
    } else {
      backlogged_[model] = false;  // idle: its next work starts light
    }
    grant_locked();
  }
  cv_.notify_all();
}

bool StepArbiter::in_round_locked(int model) const {
  return waiting_[model] >= 0 || granted_[model] || running_[model];  // continuing: waiting_ or granted_
}

bool StepArbiter::other_in_round_locked(int model) const {
  for (int j = 0; j < static_cast<int>(names_.size()); ++j) {
    if (j != model && in_round_locked(j)) return true;
  }
  return false;
}

// True when alone in the round. A running model's service includes its step
// so far: a long step of the flood counts before it ends.
bool StepArbiter::least_served_locked(int model, double now) const {
  auto service = [&](int j) { return service_.normalized(j, now, running_[j] ? now - started_[j] : 0.0); };
  const double own = service(model);
  bool shared = false;
  for (int j = 0; j < static_cast<int>(names_.size()); ++j) {
    if (j == model || !in_round_locked(j)) continue;
    shared = true;
    if (own > service(j)) return false;
  }
  return shared;  // alone: low, so that a model arriving later goes ahead of this step
}

int64_t StepArbiter::step_tokens(int model, int64_t own_max) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t cap = shared_step_[model];
  if (cap == 0 || cap >= own_max || !backlogged_[model] || !other_in_round_locked(model)) return own_max;
  stats_[model].capped++;
  return cap;
}

bool StepArbiter::urgent(int model) const {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK_MSG(running_[model], "engine " << names_[model] << " asked about a step it is not running");
  return urgent_[model];
}

ArbiterStats StepArbiter::stats(int model) const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_[model];
}

int StepArbiter::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

}  // namespace tandem::memory

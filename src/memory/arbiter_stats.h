// What the step arbiter (memory/arbiter.h) counts per model; plain data, so
// that EngineStats (engine/api.h) can carry it to /metrics.
#pragma once

#include <cstdint>

namespace tandem::memory {

struct ArbiterStats {
  int64_t steps = 0;         // begin_step calls granted
  int64_t tokens = 0;        // their tokens
  double wait_seconds = 0;   // total time spent blocked in begin_step
  int64_t capped = 0;        // step_tokens() answers below the engine's own budget
  int64_t urgent_steps = 0;  // steps granted as urgent (least attained service)
};

}  // namespace tandem::memory

// A single-sequence generation loop straight on a ModelRunner: prefill the
// prompt in one forward, then one forward per new token. `tandem generate` uses
// it until the engine (continuous batching) takes over.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "common/status.h"
#include "engine/forward_batch.h"

namespace tandem {

struct SimpleSamplingOptions {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  float top_p = 1.0f;
  int top_k = 0;             // <= 0: off
  uint64_t seed = 0;
  int max_tokens = 16;
  bool ignore_eos = false;
  std::vector<int32_t> eos_token_ids;
};

struct SimpleGenerateResult {
  std::vector<int32_t> output_ids;
  bool stopped_by_eos = false;
  double prefill_seconds = 0;
  double decode_seconds = 0;  // all steps after the first token
};

// Pages needed: ceil((prompt + max_tokens) / page_size) <= runner.num_pages().
// on_token (optional) is called for each new id as it is produced.
StatusOr<SimpleGenerateResult> generate_simple(ModelRunner& runner, const std::vector<int32_t>& prompt_ids,
                                               const SimpleSamplingOptions& options,
                                               const std::function<void(int32_t)>& on_token = nullptr);

// Picks a token from one row of logits (temperature, top-k, top-p); greedy when
// temperature <= 0. `rng_state` carries the seeded generator between calls.
int32_t sample_token(const float* logits, int vocab, const SimpleSamplingOptions& options, uint64_t* rng_state);

}  // namespace tandem

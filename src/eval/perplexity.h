// Perplexity with a sliding window, exactly as transformers' documented recipe
// for fixed-length models: windows of `context` tokens starting every `stride`;
// each window scores only the tokens no earlier window scored (its last
// end - prev_end tokens), every window runs as a fresh sequence.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "engine/forward_batch.h"

namespace tandem {

struct PerplexityOptions {
  int context = 1024;  // tokens per window
  int stride = 512;    // start-to-start distance of windows (<= context)
};

struct PerplexityResult {
  double perplexity = 0;
  double mean_nll = 0;       // nats per scored token
  int64_t tokens = 0;        // tokens in the text
  int64_t tokens_scored = 0;
  int windows = 0;
};

// `runner` must have pages for `context` tokens.
StatusOr<PerplexityResult> compute_perplexity(ModelRunner& runner, const std::vector<int32_t>& ids,
                                              const PerplexityOptions& options);

}  // namespace tandem

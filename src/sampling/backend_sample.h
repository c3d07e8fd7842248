// Sampling on the backend: builds Backend::sample() rows from requests, and the
// reference implementation of Backend::sample() (the CPU sampler on host copies).
#pragma once

#include "backend/backend.h"
#include "engine/api.h"
#include "sampling/sampler.h"

namespace tandem {

// Appends one draw for `logits_row` with the settings of `params` and the
// penalty state of `ctx` (distinct ids: seen in prompt/output, output counts,
// banned) to *batch. The draw's counter is ctx.output_index (or the output size).
void add_sample_row(const SamplingParams& params, const SamplingContext& ctx, int logits_row,
                    SampleBatch* batch);

// Whether the engine sends this request's draws to Backend::sample: never with
// logprobs (they need the row's logits on the host), and for now only greedy
// ones: the CUDA kernel computes every setting exactly, but its top-k / top-p
// searches measured 1.8 ms (32k vocabulary) to 27 ms (152k, 256 rows) per step on
// the H100, slower than copying the rows to the host sampler (docs/cuda.md).
inline bool backend_can_sample(const SamplingParams& params) {
  return params.logprobs < 0 && params.temperature < kGreedyEpsilon;
}

}  // namespace tandem

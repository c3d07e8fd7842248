// Turning one row of logits into one token, per request parameters.
//
// Order of processing (as vLLM and HF): banned ids (eos/stop ids before
// min_tokens) -> repetition penalty (prompt + output) -> presence/frequency
// penalties (output only) -> greedy argmax, or temperature -> top-k -> top-p ->
// min-p -> draw from the renormalized distribution.
//
// Logprobs are of the RAW model distribution (log-softmax of the logits before
// any penalty, temperature or truncation), as vLLM returns by default: they
// describe the model, not the sampler, so they do not change with settings.
//
// Randomness: each draw uses a counter-based generator keyed by (seed, choice,
// output index), so a draw depends on nothing else in the batch or on the
// history of preemptions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/api.h"

namespace tandem {

struct SamplingContext {
  std::span<const int32_t> prompt_tokens;
  std::span<const int32_t> output_tokens;  // generated so far by this choice
  std::span<const int32_t> banned_tokens;  // forced to -inf (eos/stop ids before min_tokens)
  uint64_t seed = 0;                       // the request's seed
  int choice_index = 0;
  int output_index = -1;                   // the draw's counter; -1: output_tokens.size()
};

// Reusable buffers so a step allocates nothing per row once warm.
struct SamplerScratch {
  std::vector<float> logits;
  std::vector<float> probs;
  std::vector<int32_t> order;
};

// The uniform in [0, 1) for one draw: a pure function of its key.
double sample_uniform(uint64_t seed, int choice_index, int output_index);

// Greedy when temperature < kGreedyEpsilon.
constexpr float kGreedyEpsilon = 1e-5f;

// Samples one token from `logits` (one row, vocab wide).
TokenOutput sample_token(const SamplingParams& params, const SamplingContext& ctx,
                         std::span<const float> logits, SamplerScratch* scratch);

// Pieces, exposed for tests on known distributions.
void apply_penalties(const SamplingParams& params, const SamplingContext& ctx, std::span<float> logits);
// Keeps the tokens that survive top-k, top-p and min-p of softmax(logits / temperature);
// writes their renormalized probabilities into probs (others 0).
void truncated_distribution(const SamplingParams& params, std::span<const float> logits,
                            std::vector<float>* probs, std::vector<int32_t>* order_scratch);
// Log-softmax of logits, the sampled token's logprob and the top-n alternatives.
void fill_logprobs(std::span<const float> raw_logits, int top_n, TokenOutput* out);

}  // namespace tandem

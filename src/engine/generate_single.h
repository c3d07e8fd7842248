// One prompt through an Engine stepped on the calling thread (no engine
// thread, no queue): `tandem generate --prompt/--prompt-ids`, benchmarks and
// tests. The same scheduler, batch building and sampler as serving, so a
// single prompt takes the code path every batched request takes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/api.h"
#include "engine/forward_batch.h"
#include "engine/text_decoder.h"

namespace tandem {

struct SingleGenerateOptions {
  std::vector<int32_t> eos_token_ids;     // default: none
  int sliding_window = 0;                 // the model's uniform window (frees pages behind it); 0: none
  const TextDecoder* decoder = nullptr;   // default: none (ids only, no text, no stop strings)
  // Called with each event as it is produced (text streaming); optional.
  std::function<void(const RequestEvent&)> on_event;
};

struct SingleGenerateResult {
  std::vector<int32_t> output_ids;
  std::string text;                       // empty without a decoder
  FinishReason finish = FinishReason::kNone;
  double prefill_seconds = 0;             // start -> first token
  double decode_seconds = 0;              // first token -> last token
};

// The runner's pages bound prompt + max_tokens (a clear error otherwise);
// choice 0 only (params.n is expected to be 1). An error event becomes the
// returned Status.
StatusOr<SingleGenerateResult> generate_single(ModelRunner& runner, const std::vector<int32_t>& prompt_ids,
                                               const SamplingParams& params,
                                               const SingleGenerateOptions& options = {});

}  // namespace tandem

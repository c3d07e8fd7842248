#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>

namespace tandem {

StatusOr<PerplexityResult> compute_perplexity(ModelRunner& runner, const std::vector<int32_t>& ids,
                                              const PerplexityOptions& o) {
  if (o.context < 2) return invalid_argument("--context must be at least 2, got " + std::to_string(o.context));
  if (o.stride < 1 || o.stride > o.context) {
    return invalid_argument("--stride must be in [1, context=" + std::to_string(o.context) + "], got " +
                            std::to_string(o.stride));
  }
  if (ids.size() < 2) return invalid_argument("the text has fewer than 2 tokens");
  const int64_t needed_pages = (o.context + runner.page_size() - 1) / runner.page_size();
  if (needed_pages > runner.num_pages()) return internal_error("runner has too few KV pages for the context");

  PerplexityResult r;
  r.tokens = static_cast<int64_t>(ids.size());
  const int64_t n = r.tokens;
  const int vocab = runner.vocab_size();
  double nll_sum = 0;
  int64_t prev_end = 0;
  std::vector<float> logits;
  for (int64_t begin = 0; begin < n; begin += o.stride) {
    const int64_t end = std::min(begin + o.context, n);
    const int64_t target_len = end - prev_end;  // tokens this window scores
    std::vector<int32_t> window(ids.begin() + begin, ids.begin() + end);
    logits.clear();
    RETURN_IF_ERROR(runner.forward(single_sequence_prefill(window, runner.page_size(), true), &logits));
    const int64_t len = end - begin;
    // Position i predicts token i + 1; scored targets are the last target_len
    // tokens of the window, except the window's first token (nothing predicts it).
    for (int64_t t = std::max<int64_t>(1, len - target_len); t < len; ++t) {
      const float* row = &logits[static_cast<size_t>((t - 1) * vocab)];
      float mx = *std::max_element(row, row + vocab);
      double sum = 0;
      for (int v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - mx);
      nll_sum += (std::log(sum) + mx) - row[window[t]];
      ++r.tokens_scored;
    }
    ++r.windows;
    prev_end = end;
    if (end == n) break;
  }
  r.mean_nll = nll_sum / static_cast<double>(r.tokens_scored);
  r.perplexity = std::exp(r.mean_nll);
  return r;
}

}  // namespace tandem

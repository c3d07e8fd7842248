#include "model/generate_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

namespace tandem {
namespace {

// splitmix64: a small, seedable generator whose state is one integer.
uint64_t next_random(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int32_t sample_token(const float* logits, int vocab, const SimpleSamplingOptions& o, uint64_t* rng_state) {
  if (o.temperature <= 0.0f) {
    int32_t best = 0;
    for (int i = 1; i < vocab; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int keep = vocab;
  if (o.top_k > 0) keep = std::min(keep, o.top_k);
  std::vector<double> p(keep);
  const double mx = logits[idx[0]] / o.temperature;
  double sum = 0;
  for (int i = 0; i < keep; ++i) sum += p[i] = std::exp(logits[idx[i]] / o.temperature - mx);
  if (o.top_p < 1.0f) {
    double cum = 0;
    int cut = keep;
    for (int i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= o.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  }
  const double u = static_cast<double>(next_random(rng_state) >> 11) * 0x1.0p-53 * sum;
  double cum = 0;
  for (int i = 0; i < keep; ++i) {
    cum += p[i];
    if (u < cum) return idx[i];
  }
  return idx[keep - 1];
}

StatusOr<SimpleGenerateResult> generate_simple(ModelRunner& runner, const std::vector<int32_t>& prompt_ids,
                                               const SimpleSamplingOptions& o,
                                               const std::function<void(int32_t)>& on_token) {
  if (prompt_ids.empty()) return invalid_argument("the prompt is empty");
  if (o.max_tokens < 0) return invalid_argument("max_tokens must not be negative");
  const int ps = runner.page_size();
  const int64_t total = static_cast<int64_t>(prompt_ids.size()) + o.max_tokens;
  const int64_t pages_needed = (total + ps - 1) / ps;
  if (pages_needed > runner.num_pages())
    return invalid_argument("prompt (" + std::to_string(prompt_ids.size()) + ") + max_tokens (" +
                            std::to_string(o.max_tokens) + ") needs " + std::to_string(pages_needed) +
                            " KV pages; the runner has " + std::to_string(runner.num_pages()));
  std::vector<int32_t> pages(pages_needed);
  std::iota(pages.begin(), pages.end(), 0);
  SimpleGenerateResult result;
  uint64_t rng = o.seed;
  std::vector<float> logits;
  int kv_len = 0;
  std::vector<int32_t> step_tokens = prompt_ids;
  auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < o.max_tokens; ++step) {
    ForwardBatch b;
    b.page_size = ps;
    const int n = static_cast<int>(step_tokens.size());
    b.token_ids = step_tokens;
    for (int i = 0; i < n; ++i) {
      const int p = kv_len + i;
      b.positions.push_back(p);
      b.slot_mapping.push_back(pages[p / ps] * ps + p % ps);
    }
    kv_len += n;
    b.query_start = {0, n};
    b.kv_len = {kv_len};
    const int used_pages = (kv_len + ps - 1) / ps;
    b.page_indptr = {0, used_pages};
    b.page_indices.assign(pages.begin(), pages.begin() + used_pages);
    b.last_page_len = {kv_len - (used_pages - 1) * ps};
    b.logits_rows = {n - 1};
    RETURN_IF_ERROR(runner.forward(b, &logits));
    const int32_t tok = sample_token(logits.data(), runner.vocab_size(), o, &rng);
    if (step == 0) {
      result.prefill_seconds = seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
    }
    const bool is_eos = std::find(o.eos_token_ids.begin(), o.eos_token_ids.end(), tok) != o.eos_token_ids.end();
    result.output_ids.push_back(tok);
    if (on_token) on_token(tok);
    if (is_eos && !o.ignore_eos) {
      result.stopped_by_eos = true;
      break;
    }
    step_tokens = {tok};
  }
  if (result.output_ids.size() > 1) result.decode_seconds = seconds_since(t0);
  return result;
}

}  // namespace tandem

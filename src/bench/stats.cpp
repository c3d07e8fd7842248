#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tandem::bench {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "none";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kHttpStatus: return "http_status";
    case ErrorKind::kMalformed: return "malformed_sse";
    case ErrorKind::kServerError: return "server_error";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kNoContent: return "no_content";
    case ErrorKind::kTransport: return "transport";
  }
  return "unknown";
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  double h = (static_cast<double>(values.size()) - 1) * q / 100.0;
  size_t lo = static_cast<size_t>(std::floor(h));
  size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (h - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

nlohmann::json Distribution::to_json() const {
  return {{"mean", mean}, {"p50", p50}, {"p90", p90}, {"p99", p99}};
}

Distribution summarize_ms(const std::vector<double>& seconds) {
  Distribution d;
  d.count = static_cast<int>(seconds.size());
  if (seconds.empty()) return d;
  std::vector<double> ms(seconds.size());
  std::transform(seconds.begin(), seconds.end(), ms.begin(), [](double s) { return s * 1e3; });
  d.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  d.p50 = percentile(ms, 50);
  d.p90 = percentile(ms, 90);
  d.p99 = percentile(ms, 99);
  return d;
}

nlohmann::json Metrics::to_json() const {
  return {
      {"completed", completed},
      {"failed", failed},
      {"duration_s", duration_s},
      {"total_input_tokens", total_input_tokens},
      {"total_output_tokens", total_output_tokens},
      {"request_throughput", request_throughput},
      {"output_throughput", output_throughput},
      {"total_token_throughput", total_token_throughput},
      {"goodput", goodput},
      {"ttft_ms", ttft.to_json()},
      {"tpot_ms", tpot.to_json()},
      {"itl_ms", itl.to_json()},
      {"e2e_ms", e2e.to_json()},
  };
}

Metrics compute_metrics(const std::vector<RequestResult>& results, double duration_s, const Slo& slo,
                        int model_index) {
  Metrics m;
  m.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2es;
  for (const auto& r : results) {
    if (model_index >= 0 && r.model_index != model_index) continue;
    if (!r.success) {
      ++m.failed;
      continue;
    }
    ++m.completed;
    if (!r.usage_seen) ++m.num_without_usage;
    m.total_input_tokens += r.tokens_prompt;
    m.total_output_tokens += r.tokens_output;
    double tpot = 0;  // vLLM: a one-token request has TPOT 0 for goodput, none in the stats
    if (r.tokens_output > 1) {
      tpot = (r.e2e_s - r.ttft_s) / (r.tokens_output - 1);
      tpots.push_back(tpot);
    }
    ttfts.push_back(r.ttft_s);
    e2es.push_back(r.e2e_s);
    itls.insert(itls.end(), r.itl_s.begin(), r.itl_s.end());
    bool good = (!slo.ttft_s || r.ttft_s <= *slo.ttft_s) && (!slo.tpot_s || tpot <= *slo.tpot_s) &&
                (!slo.e2e_s || r.e2e_s <= *slo.e2e_s);
    if (good) ++m.good_completed;
  }
  if (duration_s > 0) {
    m.request_throughput = m.completed / duration_s;
    m.output_throughput = static_cast<double>(m.total_output_tokens) / duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input_tokens + m.total_output_tokens) / duration_s;
    m.goodput = m.good_completed / duration_s;
  }
  m.ttft = summarize_ms(ttfts);
  m.tpot = summarize_ms(tpots);
  m.itl = summarize_ms(itls);
  m.e2e = summarize_ms(e2es);
  return m;
}

nlohmann::json ErrorSummary::to_json() const {
  return {{"counts", counts}, {"first_messages", first_messages}};
}

ErrorSummary summarize_errors(const std::vector<RequestResult>& results, size_t max_messages) {
  ErrorSummary s;
  for (const auto& r : results) {
    if (r.success) continue;
    ++s.counts[error_kind_name(r.error_kind)];
    if (s.first_messages.size() < max_messages &&
        std::find(s.first_messages.begin(), s.first_messages.end(), r.error) == s.first_messages.end())
      s.first_messages.push_back(r.error);
  }
  return s;
}

}  // namespace tandem::bench

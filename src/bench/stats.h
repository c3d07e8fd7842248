// What one streamed request measured, and the metrics of a run computed from
// those measurements with vLLM's benchmark_serving definitions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/options.h"

namespace tandem::bench {

enum class ErrorKind {
  kNone = 0,
  kConnect,      // refused, unreachable
  kHttpStatus,   // 4xx/5xx
  kMalformed,    // an SSE data line that is not JSON, or a chunk of the wrong shape
  kServerError,  // an {"error": ...} object inside the stream
  kTimeout,      // --timeout passed before the stream ended
  kNoContent,    // the stream ended without one content chunk
  kTransport,    // reset or closed mid-stream, other socket errors
};
const char* error_kind_name(ErrorKind kind);

struct RequestResult {
  int index = 0;            // position in the request list
  int model_index = 0;      // into BenchOptions::models
  bool success = false;
  ErrorKind error_kind = ErrorKind::kNone;
  std::string error;        // one line
  double start_s = 0;       // request start, seconds since the run began
  double ttft_s = 0;        // first content chunk - start
  double e2e_s = 0;         // last chunk with choices - start
  std::vector<double> itl_s;  // gaps between consecutive content chunks
  int num_content_chunks = 0;
  int tokens_prompt = 0;    // usage.prompt_tokens, else the planned prompt length
  int tokens_output = 0;    // usage.completion_tokens, else the content chunk count
  bool usage_seen = false;  // the server sent usage
};

// numpy.percentile(values, q) with the default 'linear' method: sorted values v,
// rank h = (n - 1) * q / 100, result v[floor h] + (h - floor h) * (v[floor h + 1] - v[floor h]).
// Empty input gives 0 (vLLM passes `values or 0`).
double percentile(std::vector<double> values, double q);

struct Distribution {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;  // milliseconds
  int count = 0;
  nlohmann::json to_json() const;  // {mean, p50, p90, p99}
};
// Values in seconds -> Distribution in milliseconds.
Distribution summarize_ms(const std::vector<double>& seconds);

struct Metrics {
  int completed = 0;
  int failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0;      // completed / duration
  double output_throughput = 0;       // output tokens / duration
  double total_token_throughput = 0;  // (input + output tokens) / duration
  int good_completed = 0;
  double goodput = 0;                 // requests meeting every SLO / duration
  Distribution ttft, tpot, itl, e2e;
  int num_without_usage = 0;          // completed requests whose server sent no usage
  nlohmann::json to_json() const;
};

// Metrics over the results for which `keep` is true (all when model_index < 0).
// TPOT = (E2E - TTFT) / (output tokens - 1) for requests with more than one
// output token; for goodput a request with one token has TPOT 0, as vLLM.
Metrics compute_metrics(const std::vector<RequestResult>& results, double duration_s, const Slo& slo,
                        int model_index = -1);

// Failures by kind and the first distinct messages (at most max_messages).
struct ErrorSummary {
  std::map<std::string, int> counts;  // kind name -> count
  std::vector<std::string> first_messages;
  nlohmann::json to_json() const;
};
ErrorSummary summarize_errors(const std::vector<RequestResult>& results, size_t max_messages = 5);

}  // namespace tandem::bench

// Options of one `tandem bench` run, parsed from the command line (cli/cmd_bench.cpp)
// or filled in by tests. Defaults are written here once; validate() checks them once.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tandem::bench {

enum class Endpoint { kCompletions, kChat };

const char* endpoint_name(Endpoint e);
// Path on the server: /v1/completions or /v1/chat/completions.
const char* endpoint_path(Endpoint e);

// Per-request service-level objectives, in seconds; a request counts toward
// goodput only when it meets every one that is set (as vLLM's --goodput).
struct Slo {
  std::optional<double> ttft_s;
  std::optional<double> tpot_s;
  std::optional<double> e2e_s;
  bool empty() const { return !ttft_s && !tpot_s && !e2e_s; }
};

// "ttft=200ms,tpot=50ms,e2e=2s" (units ms, s, us; a bare number is ms).
StatusOr<Slo> parse_slo(const std::string& text);
// "1,2,4,8,inf" -> rates in requests/s; inf is +infinity (all at once).
StatusOr<std::vector<double>> parse_rates(const std::string& text);
// "3,1" -> weights; all positive.
StatusOr<std::vector<double>> parse_weights(const std::string& text);
// One rate as text: "inf" or the shortest decimal.
std::string rate_to_string(double rate);

struct BenchOptions {
  std::string base_url = "http://127.0.0.1:8000";  // http:// only
  std::vector<std::string> models;                  // at least one
  std::vector<double> mix;                          // empty: equal weights
  int num_prompts = 100;
  double request_rate = std::numeric_limits<double>::infinity();  // req/s; inf: all at once
  double burstiness = 1.0;                          // gamma shape; 1 = Poisson
  int max_concurrency = 0;                          // 0: unlimited
  int input_len = 1024;                             // synthetic prompt tokens
  int output_len = 128;                             // max_tokens of synthetic requests
  double range_ratio = 0.0;                         // lengths uniform in [L(1-r), L(1+r)]
  std::string dataset;                              // JSONL file; empty: synthetic prompts
  Endpoint endpoint = Endpoint::kCompletions;
  std::vector<std::string> tokenizers;              // local tokenizer paths: one for all models or one per
                                                    // model; empty: server /tokenize
  std::string tokenize_url;                         // server whose /tokenize counts tokens; empty: base_url
  uint64_t seed = 0;
  std::string api_key;                              // sent as "Authorization: Bearer K"
  Slo slo;
  std::string json_path;                            // --json FILE; empty: none
  std::vector<double> sweep_rates;                  // non-empty: one run per rate
  std::string chart_path;                           // SVG of a sweep; default bench-sweep.svg
  double timeout_s = 6 * 3600.0;                    // per request, connect to last byte (vLLM: 6 h)
  int threads = 2;                                  // I/O threads driving all connections
  bool ignore_eos = true;                           // sent so output lengths are exact
  bool progress = true;                             // progress bar (TTY) or lines
  std::vector<std::string> argv;                    // the exact command line, for --json

  Status validate() const;
  nlohmann::json to_json() const;  // every option, as parsed
};

}  // namespace tandem::bench

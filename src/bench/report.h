// What a run prints and writes: the summary table (per model and overall), the
// error summary, and the --json document.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/options.h"
#include "bench/stats.h"

namespace tandem::bench {

// Everything one run at one rate measured.
struct RunReport {
  double request_rate = 0;  // offered load, req/s (inf: all at once)
  Metrics overall;
  std::vector<Metrics> per_model;  // by BenchOptions::models index
  ErrorSummary errors;
  int num_prompts_off_target = 0;  // synthetic prompts whose token count missed --input-len's sample
};

RunReport make_report(const BenchOptions& options, double rate, const std::vector<RequestResult>& results,
                      double duration_s);

// The run's schema: completed, failed, duration_s, request_throughput,
// output_throughput, total_token_throughput, goodput, {ttft,tpot,itl,e2e}_ms as
// {mean,p50,p90,p99}, per_model (same fields per model), errors, request_rate.
nlohmann::json report_to_json(const BenchOptions& options, const RunReport& report);
// The --json document: a single run's fields plus "args", or for a sweep
// {"args", "sweep": [run, ...]}.
nlohmann::json document_json(const BenchOptions& options, const std::vector<RunReport>& reports);

void print_report(std::FILE* out, const BenchOptions& options, const RunReport& report);
// One line per rate of a sweep.
void print_sweep_table(std::FILE* out, const std::vector<RunReport>& reports);

}  // namespace tandem::bench

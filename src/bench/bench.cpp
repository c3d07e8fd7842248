#include "bench/bench.h"

#include <cmath>
#include <fstream>

#include "bench/http.h"
#include "bench/prompts.h"
#include "bench/runner.h"
#include "bench/svg_chart.h"

namespace tandem::bench {
namespace {

StatusOr<std::vector<PlannedRequest>> plan(const BenchOptions& options, const ServerAddress& address,
                                           const BenchOutput& io) {
  if (!options.dataset.empty()) return plan_dataset(options);
  if (!options.tokenizers.empty()) {
    ASSIGN_OR_RETURN(auto local, LocalTokenCounter::load(options.tokenizers, options.models));
    return plan_synthetic(options, *local);
  }
  ServerAddress tokenize_address = address;
  if (!options.tokenize_url.empty()) {
    ASSIGN_OR_RETURN(tokenize_address, parse_base_url(options.tokenize_url));
  }
  ServerTokenCounter counter(tokenize_address, options.api_key, std::min(options.timeout_s, 60.0));
  if (options.progress)
    std::fprintf(io.status, "bench: building %d prompts of ~%d tokens with %s/tokenize\n", options.num_prompts,
                 options.input_len,
                 (options.tokenize_url.empty() ? options.base_url : options.tokenize_url).c_str());
  return plan_synthetic(options, counter);
}

std::string chart_path(const BenchOptions& options) {
  return options.chart_path.empty() ? "bench-sweep.svg" : options.chart_path;
}

std::string join_path(const ServerAddress& a, Endpoint e) { return a.path_prefix + endpoint_path(e); }

Status write_chart(const BenchOptions& options, const std::vector<RunReport>& reports) {
  std::vector<std::string> x;
  for (const auto& r : reports) x.push_back(rate_to_string(r.request_rate));
  auto series = [&](const char* name, auto get) {
    ChartSeries s{name, {}};
    for (const auto& r : reports) s.y.push_back(get(r.overall));
    return s;
  };
  auto latency_panel = [&](const char* title, Distribution Metrics::*field) {
    return ChartPanel{title, "ms",
                      {series("p50", [&](const Metrics& m) { return (m.*field).p50; }),
                       series("p90", [&](const Metrics& m) { return (m.*field).p90; }),
                       series("p99", [&](const Metrics& m) { return (m.*field).p99; }),
                       series("mean", [&](const Metrics& m) { return (m.*field).mean; })}};
  };
  std::vector<ChartPanel> panels = {
      latency_panel("Time to first token", &Metrics::ttft),
      latency_panel("Time per output token", &Metrics::tpot),
      latency_panel("Inter-token latency", &Metrics::itl),
      latency_panel("End-to-end latency", &Metrics::e2e),
      ChartPanel{"Output token throughput", "tokens/s",
                 {series("output", [](const Metrics& m) { return m.output_throughput; }),
                  series("total", [](const Metrics& m) { return m.total_token_throughput; })}},
      ChartPanel{"Request throughput", "requests/s",
                 {series("completed", [](const Metrics& m) { return m.request_throughput; }),
                  series("goodput", [](const Metrics& m) { return m.goodput; })}},
  };
  std::string models;
  for (const auto& m : options.models) models += (models.empty() ? "" : ", ") + m;
  std::string title = "tandem bench: " + models + " at " + options.base_url + " (" +
                      std::to_string(options.num_prompts) + " requests per rate)";
  return write_text_file(chart_path(options), render_svg(title, "offered load (requests/s)", x, panels, 2));
}

}  // namespace

StatusOr<std::vector<RunReport>> run_bench(const BenchOptions& options, const BenchOutput& io) {
  RETURN_IF_ERROR(options.validate());
  ASSIGN_OR_RETURN(ServerAddress address, parse_base_url(options.base_url));
  // Refuse an unwritable output before the run, not after it.
  for (const std::string& path : {options.json_path, options.sweep_rates.empty() ? std::string() : chart_path(options)}) {
    if (path.empty()) continue;
    std::ofstream probe(path, std::ios::app);
    if (!probe) return invalid_argument(path + ": cannot open for writing");
  }
  ASSIGN_OR_RETURN(StreamTarget target, resolve_target(address, options.api_key));

  RunConfig config;
  config.endpoint = options.endpoint;
  config.target = join_path(address, options.endpoint);
  config.max_concurrency = options.max_concurrency;
  config.timeout_s = options.timeout_s;
  config.threads = options.threads;

  std::vector<double> rates = options.sweep_rates.empty() ? std::vector<double>{options.request_rate}
                                                          : options.sweep_rates;
  std::vector<RunReport> reports;
  for (size_t k = 0; k < rates.size(); ++k) {
    const double rate = rates[k];
    // Fresh synthetic prompts for every rate of a sweep, so a prefix cache
    // cannot serve one run from the prompts of the one before.
    BenchOptions run_options = options;
    run_options.seed = options.seed + k;
    ASSIGN_OR_RETURN(std::vector<PlannedRequest> requests, plan(run_options, address, io));
    int off_target = 0;
    for (const auto& r : requests) off_target += r.off_target;
    if (off_target > 0)
      std::fprintf(io.status, "bench: note: %d synthetic prompts could not reach their exact token length\n",
                   off_target);
    auto arrivals = arrival_times(options.num_prompts, rate, options.burstiness, options.seed);
    std::string label = rates.size() > 1 ? "rate " + rate_to_string(rate) + ": " : "";
    ProgressFn progress;
    if (options.progress) progress = make_progress_printer(io.status, io.status_is_tty, label);
    RunOutcome outcome = run_requests(target, requests, arrivals, config, progress);
    RunReport report = make_report(options, rate, outcome.results, outcome.duration_s);
    report.num_prompts_off_target = off_target;
    print_report(io.out, options, report);
    reports.push_back(std::move(report));
  }
  if (rates.size() > 1) print_sweep_table(io.out, reports);
  if (!options.json_path.empty()) {
    RETURN_IF_ERROR(write_text_file(options.json_path, document_json(options, reports).dump(2) + "\n"));
    std::fprintf(io.status, "bench: wrote %s\n", options.json_path.c_str());
  }
  if (!options.sweep_rates.empty()) {
    RETURN_IF_ERROR(write_chart(options, reports));
    std::fprintf(io.status, "bench: wrote %s\n", chart_path(options).c_str());
  }
  return reports;
}

}  // namespace tandem::bench

#include "bench/report.h"

#include <cmath>

namespace tandem::bench {

RunReport make_report(const BenchOptions& options, double rate, const std::vector<RequestResult>& results,
                      double duration_s) {
  RunReport r;
  r.request_rate = rate;
  r.overall = compute_metrics(results, duration_s, options.slo);
  for (size_t m = 0; m < options.models.size(); ++m)
    r.per_model.push_back(compute_metrics(results, duration_s, options.slo, static_cast<int>(m)));
  r.errors = summarize_errors(results);
  return r;
}

nlohmann::json report_to_json(const BenchOptions& options, const RunReport& report) {
  nlohmann::json j = report.overall.to_json();
  j["request_rate"] = std::isinf(report.request_rate) ? nlohmann::json("inf") : nlohmann::json(report.request_rate);
  nlohmann::json per_model = nlohmann::json::object();
  for (size_t m = 0; m < report.per_model.size(); ++m) per_model[options.models[m]] = report.per_model[m].to_json();
  j["per_model"] = per_model;
  j["errors"] = report.errors.to_json();
  j["completed_without_usage"] = report.overall.num_without_usage;
  j["prompts_off_target"] = report.num_prompts_off_target;
  return j;
}

nlohmann::json document_json(const BenchOptions& options, const std::vector<RunReport>& reports) {
  nlohmann::json doc;
  if (options.sweep_rates.empty() && reports.size() == 1) {
    doc = report_to_json(options, reports[0]);
  } else {
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& r : reports) runs.push_back(report_to_json(options, r));
    doc["sweep"] = runs;
  }
  doc["args"] = options.to_json();
  doc["percentile_method"] = "numpy linear interpolation";
  return doc;
}

namespace {

void print_metrics(std::FILE* out, const std::string& title, const Metrics& m, bool slo_set) {
  std::fprintf(out, "== %s: %d completed, %d failed in %.2f s\n", title.c_str(), m.completed, m.failed,
               m.duration_s);
  std::fprintf(out, "   input tokens %lld, output tokens %lld\n", static_cast<long long>(m.total_input_tokens),
               static_cast<long long>(m.total_output_tokens));
  std::fprintf(out, "   throughput: %.2f req/s, %.1f output tok/s, %.1f total tok/s; goodput %.2f req/s%s\n",
               m.request_throughput, m.output_throughput, m.total_token_throughput, m.goodput,
               slo_set ? "" : " (no --slo: every completed request)");
  std::fprintf(out, "   %-6s %10s %10s %10s %10s\n", "ms", "mean", "p50", "p90", "p99");
  auto row = [&](const char* name, const Distribution& d) {
    std::fprintf(out, "   %-6s %10.2f %10.2f %10.2f %10.2f\n", name, d.mean, d.p50, d.p90, d.p99);
  };
  row("TTFT", m.ttft);
  row("TPOT", m.tpot);
  row("ITL", m.itl);
  row("E2E", m.e2e);
}

}  // namespace

void print_report(std::FILE* out, const BenchOptions& options, const RunReport& report) {
  std::fprintf(out, "\n==== tandem bench: %s, rate %s req/s, %s endpoint ====\n", options.base_url.c_str(),
               rate_to_string(report.request_rate).c_str(), endpoint_name(options.endpoint));
  if (report.per_model.size() > 1) {
    for (size_t m = 0; m < report.per_model.size(); ++m)
      print_metrics(out, "model " + options.models[m], report.per_model[m], !options.slo.empty());
  }
  print_metrics(out, report.per_model.size() > 1 ? "overall" : "model " + options.models[0], report.overall,
                !options.slo.empty());
  if (report.overall.num_without_usage > 0)
    std::fprintf(out, "   note: %d completed requests had no usage in the stream; their output tokens are "
                      "the number of content chunks\n", report.overall.num_without_usage);
  if (report.overall.failed > 0) {
    std::fprintf(out, "   errors:");
    for (const auto& [kind, n] : report.errors.counts) std::fprintf(out, " %s=%d", kind.c_str(), n);
    std::fprintf(out, "\n   first error messages:\n");
    for (const auto& msg : report.errors.first_messages) std::fprintf(out, "     - %s\n", msg.c_str());
  }
  std::fflush(out);
}

void print_sweep_table(std::FILE* out, const std::vector<RunReport>& reports) {
  std::fprintf(out, "\n==== sweep ====\n%8s %6s %6s %9s %11s %9s %10s %10s %10s %10s\n", "rate", "done", "failed",
               "req/s", "out tok/s", "goodput", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99");
  for (const auto& r : reports) {
    const auto& m = r.overall;
    std::fprintf(out, "%8s %6d %6d %9.2f %11.1f %9.2f %10.2f %10.2f %10.2f %10.2f\n",
                 rate_to_string(r.request_rate).c_str(), m.completed, m.failed, m.request_throughput,
                 m.output_throughput, m.goodput, m.ttft.p50, m.ttft.p99, m.tpot.p50, m.tpot.p99);
  }
  std::fflush(out);
}

}  // namespace tandem::bench

// `tandem bench`: a serving benchmark client for any OpenAI-compatible server.
// Flags are parsed here; everything else is in src/bench/.
#include <unistd.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "bench/bench.h"
#include "cli/commands.h"

namespace tandem::cli {

int run_bench(int argc, char** argv) {
  bench::BenchOptions o;
  std::string rate = "inf", mix, slo, sweep, endpoint = "completions";
  bool no_ignore_eos = false, quiet = false;

  CLI::App app{"Serving benchmark against an OpenAI-compatible server (vLLM's benchmark_serving definitions)",
               "tandem bench"};
  app.add_option("--base-url", o.base_url, "server URL, http:// only")->capture_default_str();
  app.add_option("--model", o.models, "model name; repeat for several")->required();
  app.add_option("--mix", mix, "weights of the models, e.g. 3,1 (default: equal)");
  app.add_option("--num-prompts", o.num_prompts, "requests per run")->capture_default_str();
  app.add_option("--request-rate", rate, "arrivals per second, or inf (all at once)")->capture_default_str();
  app.add_option("--burstiness", o.burstiness, "gamma shape of the gaps; 1 = Poisson, <1 burstier")
      ->capture_default_str();
  app.add_option("--max-concurrency", o.max_concurrency, "most requests in flight; 0 = unlimited")
      ->capture_default_str();
  app.add_option("--input-len", o.input_len, "synthetic prompt tokens")->capture_default_str();
  app.add_option("--output-len", o.output_len, "synthetic max_tokens")->capture_default_str();
  app.add_option("--range-ratio", o.range_ratio, "lengths uniform in [L(1-r), L(1+r)]")->capture_default_str();
  app.add_option("--dataset", o.dataset, "JSONL of {\"prompt\"|\"messages\", \"max_tokens\"} instead of synthetic");
  app.add_option("--endpoint", endpoint, "completions or chat")
      ->check(CLI::IsMember({"completions", "chat"}))
      ->capture_default_str();
  app.add_option("--tokenizer", o.tokenizers,
                 "local tokenizer (folder or tokenizer.json) for synthetic prompts; once, or once per --model "
                 "(default: the server's /tokenize)");
  app.add_option("--tokenize-url", o.tokenize_url,
                 "server whose POST /tokenize counts prompt tokens (default: --base-url)");
  app.add_option("--seed", o.seed, "seed of prompts, lengths, model mix and arrivals")->capture_default_str();
  app.add_option("--api-key", o.api_key, "sent as Authorization: Bearer")->envname("OPENAI_API_KEY");
  app.add_option("--slo", slo, "goodput objectives, e.g. ttft=200ms,tpot=50ms,e2e=5s");
  app.add_option("--json", o.json_path, "write the results as JSON");
  app.add_option("--sweep-rates", sweep, "run at each rate, e.g. 1,2,4,8,inf, and chart it");
  app.add_option("--chart", o.chart_path, "SVG chart of a sweep (default bench-sweep.svg)");
  app.add_option("--timeout", o.timeout_s, "seconds per request, connect to end of stream")->capture_default_str();
  app.add_option("--threads", o.threads, "I/O threads")->capture_default_str();
  app.add_flag("--no-ignore-eos", no_ignore_eos, "do not send ignore_eos (for servers that reject it)");
  app.add_flag("--quiet", quiet, "no progress output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; any flag CLI11 rejects is 2
  }

  auto fail = [](const Status& s) {
    std::fprintf(stderr, "tandem bench: %s\n", s.message().c_str());
    return 1;
  };
  if (auto r = bench::parse_rates(rate); !r.ok()) {
    return fail(invalid_argument("--request-rate: " + r.status().message()));
  } else if (r->size() != 1) {
    return fail(invalid_argument("--request-rate takes one rate (use --sweep-rates for several)"));
  } else {
    o.request_rate = (*r)[0];
  }
  if (!mix.empty()) {
    auto w = bench::parse_weights(mix);
    if (!w.ok()) return fail(w.status());
    o.mix = *w;
  }
  if (!slo.empty()) {
    auto s = bench::parse_slo(slo);
    if (!s.ok()) return fail(s.status());
    o.slo = *s;
  }
  if (!sweep.empty()) {
    auto r = bench::parse_rates(sweep);
    if (!r.ok()) return fail(invalid_argument("--sweep-rates: " + r.status().message()));
    o.sweep_rates = *r;
  }
  o.endpoint = endpoint == "chat" ? bench::Endpoint::kChat : bench::Endpoint::kCompletions;
  o.ignore_eos = !no_ignore_eos;
  o.progress = !quiet;
  // The command line as given, for --json, without the API key's value.
  o.argv.assign(argv, argv + argc);
  o.argv[0] = "tandem bench";
  for (size_t i = 1; i < o.argv.size(); ++i) {
    if (o.argv[i] == "--api-key" && i + 1 < o.argv.size()) o.argv[++i] = "***";
    else if (o.argv[i].rfind("--api-key=", 0) == 0) o.argv[i] = "--api-key=***";
  }

  bench::BenchOutput io;
  io.status_is_tty = isatty(fileno(stderr));
  auto reports = bench::run_bench(o, io);
  if (!reports.ok()) return fail(reports.status());
  for (const auto& r : *reports)
    if (r.overall.completed > 0) return 0;
  std::fprintf(stderr, "tandem bench: no request completed\n");
  return 3;
}

}  // namespace tandem::cli

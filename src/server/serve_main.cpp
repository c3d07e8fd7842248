// `tandem serve`: flags (CLI11) over the TOML file over defaults, then run.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "common/log.h"
#include "server/server_app.h"

namespace tandem::server {

int serve_main(int argc, char** argv, const ModelServiceFactory& factory, const char* program_name) {
  return serve_main(argc, argv, ModelServiceFactoryMaker([factory](const ServerConfig& config)
                                                             -> StatusOr<ModelServiceFactory> {
                      if (!config.models.empty() && config.models.front().engine.gpu_budget_bytes > 0)
                        return invalid_argument(std::string("gpu_budget is not supported by this server"));
                      return factory;
                    }),
                    program_name);
}

int serve_main(int argc, char** argv, const ModelServiceFactoryMaker& make_factory, const char* program_name) {
  CLI::App app{"Serve models behind one OpenAI-compatible HTTP port", program_name};
  std::vector<std::string> model_flags, weight_flags;
  std::string config_path, host, api_key, api_key_file, log_format, device, gpu_budget, load_format;
  std::optional<int> port, io_threads, max_model_len, max_num_seqs, max_num_batched_tokens, max_queue;
  std::optional<double> request_timeout, idle_timeout, drain_timeout;
  std::string max_body;
  bool auth_health_metrics = false;
  app.add_option("--model", model_flags, "NAME=DIR: a model folder served as NAME (repeatable)");
  app.add_option("--config", config_path, "TOML config file (flags override it)");
  app.add_option("--host", host, "address to bind (default 127.0.0.1)");
  app.add_option("--port", port, "port (default 8000; 0 = any free port)");
  app.add_option("--api-key", api_key, "require 'Authorization: Bearer KEY' (also TANDEM_API_KEY)");
  app.add_option("--api-key-file", api_key_file, "read the API key from a file");
  app.add_flag("--auth-health-metrics", auth_health_metrics, "require the API key on /health and /metrics too");
  app.add_option("--device", device, "auto|cpu|cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--gpu-budget", gpu_budget,
                 "memory for all models, planned before loading (e.g. 96GiB; 96GB = 10^9 bytes); on CPU it "
                 "bounds host memory for weights and KV");
  std::string overheads_path;
  std::optional<int> concurrent_steps, shared_step_tokens;
  app.add_option("--concurrent-steps", concurrent_steps,
                 "with --gpu-budget: model steps that may run at once on their streams, 1 or 2 "
                 "(default: 2 on CUDA, the least served model's on a high-priority stream; 1 on CPU)");
  app.add_option("--shared-step-tokens", shared_step_tokens,
                 "with --gpu-budget: tokens per step of a backlogged model while another model waits for the GPU "
                 "(default 512; 0: no cap; every model)");
  app.add_option("--overheads", overheads_path,
                 "with --gpu-budget on CUDA: measured overheads JSON (tandem plan --measure-overheads)");
  app.add_option("--weight", weight_flags, "NAME=W: with --gpu-budget, the model's share of the KV reserve and "
                                           "of GPU steps (default 1; repeatable)");
  app.add_option("--load-format", load_format,
                 "auto: safetensors; dummy: random weights of each config's shapes (every model; needs tokenizer files)")
      ->check(CLI::IsMember({"auto", "dummy"}));
  app.add_option("--max-model-len", max_model_len, "context length per sequence (every model)");
  app.add_option("--max-num-seqs", max_num_seqs, "running sequences per model");
  app.add_option("--max-num-batched-tokens", max_num_batched_tokens, "tokens per engine step per model");
  app.add_option("--max-queue", max_queue, "waiting requests per model before 429");
  app.add_option("--io-threads", io_threads, "HTTP I/O threads (default 2)");
  app.add_option("--max-body", max_body, "largest request body, e.g. 8MiB (default); larger gets 413");
  app.add_option("--request-timeout", request_timeout, "seconds a request may take (default 600)");
  app.add_option("--idle-timeout", idle_timeout, "seconds a keep-alive connection may idle (default 60)");
  app.add_option("--drain-timeout", drain_timeout, "seconds running requests get after SIGTERM (default 30)");
  app.add_option("--log-format", log_format, "text|json")->check(CLI::IsMember({"text", "json"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  ServerConfig config;
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "%s: %s\n", program_name, s.message().c_str());
    return 2;
  };
  if (!config_path.empty()) {
    Status s = load_config_file(config_path, &config);
    if (!s.ok()) return fail(s);
  }
  for (const auto& m : model_flags) {
    Status s = add_model_flag(m, &config);
    if (!s.ok()) return fail(s);
  }
  for (const auto& spec : weight_flags) {
    const size_t eq = spec.find('=');
    const std::string name = eq == std::string::npos ? spec : spec.substr(0, eq);
    auto it = std::find_if(config.models.begin(), config.models.end(), [&](const ModelEntry& m) { return m.name == name; });
    if (eq == std::string::npos || it == config.models.end())
      return fail(invalid_argument("--weight '" + spec + "': must be NAME=W for a served model"));
    try {
      size_t used = 0;
      const double w = std::stod(spec.substr(eq + 1), &used);
      if (used != spec.size() - eq - 1 || !(w > 0 && w <= 1e6)) throw std::invalid_argument(spec);
      it->overrides.weight = w;
    } catch (const std::exception&) {
      return fail(invalid_argument("--weight '" + spec + "': W must be a number in (0, 1e6]"));
    }
  }
  if (!overheads_path.empty()) config.overheads_path = overheads_path;
  if (concurrent_steps) config.concurrent_steps = *concurrent_steps;
  if (!host.empty()) config.host = host;
  if (port) config.port = *port;
  if (!api_key.empty()) config.api_key = api_key;
  if (!api_key_file.empty()) {
    config.api_key_file = api_key_file;
    if (api_key.empty()) config.api_key.clear();
  }
  if (auth_health_metrics) config.auth_health_metrics = true;
  if (!log_format.empty()) config.log_format = log_format;
  if (io_threads) config.io_threads = *io_threads;
  if (request_timeout) config.request_timeout_s = *request_timeout;
  if (idle_timeout) config.idle_timeout_s = *idle_timeout;
  if (drain_timeout) config.drain_timeout_s = *drain_timeout;
  if (!max_body.empty()) {
    auto b = parse_size(max_body);
    if (!b.ok()) return fail(invalid_argument("--max-body: " + b.status().message()));
    config.max_body_bytes = *b;
  }
  if (!device.empty()) config.engine_cli.device = device;
  if (!load_format.empty()) config.engine_cli.load_format = load_format;
  if (!gpu_budget.empty()) {
    auto b = parse_size(gpu_budget);
    if (!b.ok()) return fail(invalid_argument("--gpu-budget: " + b.status().message()));
    config.engine_cli.gpu_budget_bytes = *b;
  }
  auto positive = [&](const std::optional<int>& v, const char* flag, std::optional<int>* out) -> Status {
    if (!v) return ok_status();
    if (*v < 1) return invalid_argument(std::string(flag) + ": must be >= 1, got " + std::to_string(*v));
    *out = *v;
    return ok_status();
  };
  if (shared_step_tokens) config.engine_cli.shared_step_tokens = *shared_step_tokens;  // checked in finalize_config
  for (Status s : {positive(max_model_len, "--max-model-len", &config.engine_cli.max_model_len),
                   positive(max_num_seqs, "--max-num-seqs", &config.engine_cli.max_num_seqs),
                   positive(max_num_batched_tokens, "--max-num-batched-tokens", &config.engine_cli.max_num_batched_tokens),
                   positive(max_queue, "--max-queue", &config.engine_cli.max_queue)}) {
    if (!s.ok()) return fail(s);
  }
  if (config.request_timeout_s <= 0 || config.idle_timeout_s <= 0 || config.drain_timeout_s < 0) {
    return fail(invalid_argument("timeouts must be positive (drain may be 0)"));
  }
  Status s = finalize_config(&config, std::getenv("TANDEM_API_KEY"));
  if (!s.ok()) return fail(s);
  set_log_json(config.log_format == "json");

  // Thousands of connections need descriptors: raise the soft limit to the hard one.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  // SIGTERM/SIGINT are taken synchronously by run_until_signal(); block them in
  // every thread (the I/O and engine threads inherit this mask). SIGPIPE off.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // With --gpu-budget every model is planned here, before anything loads.
  StatusOr<ModelServiceFactory> factory = make_factory(config);
  if (!factory.ok()) {
    if (factory.status().code() == StatusCode::kResourceExhausted) {
      // The set does not fit: the plan, as `tandem plan` prints it, and exit code 1 as there.
      std::fprintf(stderr, "%s: the models do not fit --gpu-budget; the memory plan:\n%s", program_name,
                   factory.status().message().c_str());
      return 1;
    }
    return fail(factory.status());
  }
  ServerApp server(std::move(config), *factory);
  s = server.start();
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", program_name, s.message().c_str());
    return 1;
  }
  return server.run_until_signal();
}

}  // namespace tandem::server

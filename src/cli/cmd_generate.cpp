// tandem generate: one prompt, one model, from the shell.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "cli/commands.h"
#include "model/config.h"
#include "model/generate_loop.h"
#include "model/model_runner.h"

namespace tandem::cli {
namespace {

StatusOr<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string norm = text;
  for (char& c : norm)
    if (c == ',') c = ' ';
  std::istringstream in(norm);
  std::string tok;
  while (in >> tok) {
    char* end = nullptr;
    const long v = std::strtol(tok.c_str(), &end, 10);
    if (end == tok.c_str() || *end != '\0' || v < 0 || v > INT32_MAX)
      return invalid_argument("--prompt-ids: '" + tok + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return invalid_argument("--prompt-ids: no token ids given");
  return ids;
}

int fail(const Status& s) {
  std::fprintf(stderr, "tandem generate: %s\n", s.message().c_str());
  return 1;
}

}  // namespace

int run_generate(int argc, char** argv) {
  CLI::App app{"Generate a continuation of one prompt with one model", "tandem generate"};
  std::string model_dir, prompt, prompt_ids_text, device = "auto", format = "auto";
  int max_tokens = 16, top_k = 0, cpu_threads = 0;
  float top_p = 1.0f;
  std::optional<float> temperature;
  uint64_t seed = 0;
  bool ignore_eos = false;
  app.add_option("--model", model_dir, "checkpoint folder (config.json + safetensors)")->required();
  auto* p_opt = app.add_option("--prompt", prompt, "prompt text (needs the model's tokenizer)");
  auto* ids_opt = app.add_option("--prompt-ids", prompt_ids_text, "prompt token ids, e.g. \"1 2 3\"");
  p_opt->excludes(ids_opt);
  app.add_option("--max-tokens", max_tokens, "new tokens at most")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", temperature, "0 = greedy (default: generation_config.json, else greedy)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", top_p, "nucleus sampling mass in (0, 1]")->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--top-k", top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "sampling seed");
  app.add_flag("--ignore-eos", ignore_eos, "keep going past end-of-sequence tokens");
  app.add_option("--device", device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  app.add_option("--format", format, "text, ids or json (auto: text when a tokenizer is available, else ids)")
      ->check(CLI::IsMember({"text", "ids", "json", "auto"}));
  app.add_option("--threads", cpu_threads, "CPU threads (default: all cores)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (prompt.empty() && prompt_ids_text.empty())
    return fail(invalid_argument("give --prompt TEXT or --prompt-ids \"1 2 3\""));
  // Text in or out needs src/tokenizer, which lands separately.
  const Status no_tokenizer =
      unimplemented("the tokenizer is not built into this tandem yet; use --prompt-ids and --format ids|json");
  if (!prompt.empty()) return fail(no_tokenizer);
  if (format == "text") return fail(no_tokenizer);
  if (format == "auto") format = "ids";
  if (top_p <= 0.0f) return fail(invalid_argument("--top-p must be in (0, 1]"));

  auto ids = parse_ids(prompt_ids_text);
  if (!ids.ok()) return fail(ids.status());
  auto cfg = ModelConfig::load(model_dir);
  if (!cfg.ok()) return fail(cfg.status());
  for (int32_t id : *ids)
    if (id >= cfg->vocab_size)
      return fail(invalid_argument("--prompt-ids: token id " + std::to_string(id) + " is outside the vocabulary (" +
                                   std::to_string(cfg->vocab_size) + ")"));

  BackendOptions bopts;
  bopts.cpu_threads = cpu_threads;
  auto backend = create_backend(device, bopts);
  if (!backend.ok()) return fail(backend.status());
  ModelRunnerOptions ropts;
  ropts.page_size = 16;
  ropts.num_pages = static_cast<int>((ids->size() + max_tokens + ropts.page_size - 1) / ropts.page_size) + 1;
  auto runner = LocalModelRunner::create(std::move(*backend), model_dir, ropts);
  if (!runner.ok()) return fail(runner.status());

  SimpleSamplingOptions so;
  const GenerationDefaults& gd = cfg->generation;
  so.temperature = temperature.value_or(gd.do_sample.value_or(false) ? gd.temperature.value_or(1.0f) : 0.0f);
  so.top_p = top_p;
  so.top_k = top_k;
  so.seed = seed;
  so.max_tokens = max_tokens;
  so.ignore_eos = ignore_eos;
  so.eos_token_ids = cfg->eos_token_ids;
  auto result = generate_simple(**runner, *ids, so);
  if (!result.ok()) return fail(result.status());
  const auto& out = result->output_ids;
  if (format == "ids") {
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? " " : "", out[i]);
    std::printf("\n");
  } else {
    const double decode_tps =
        result->decode_seconds > 0 ? static_cast<double>(out.size() - 1) / result->decode_seconds : 0.0;
    nlohmann::json j = {{"model", model_dir},
                        {"device", (*runner)->backend().name()},
                        {"prompt_ids", *ids},
                        {"output_ids", out},
                        {"finish_reason", result->stopped_by_eos ? "stop" : "length"},
                        {"num_prompt_tokens", ids->size()},
                        {"num_output_tokens", out.size()},
                        {"prefill_seconds", result->prefill_seconds},
                        {"decode_tokens_per_second", decode_tps}};
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace tandem::cli

// tandem generate: one prompt (or a file of them), one model, from the shell;
// through the engine either way.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "cli/commands.h"
#include "engine/batch_generate.h"
#include "engine/engine_thread.h"
#include "engine/generate_single.h"
#include "engine/tokenizer_text_decoder.h"
#include "memory/weights.h"
#include "model/config.h"
#include "model/model_runner.h"
#include "tokenizer/tokenizer.h"

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

// Flags -> engine sampling parameters; an unset temperature follows the
// model's generation_config.json (sampling only when it says do_sample).
SamplingParams sampling_params(const ModelConfig& cfg, std::optional<float> temperature, float top_p, int top_k,
                               uint64_t seed, int max_tokens, bool ignore_eos) {
  SamplingParams sp;
  const GenerationDefaults& gd = cfg.generation;
  sp.temperature = temperature.value_or(gd.do_sample.value_or(false) ? gd.temperature.value_or(1.0f) : 0.0f);
  sp.top_p = top_p;
  sp.top_k = top_k;
  sp.seed = seed;
  sp.max_tokens = max_tokens;
  sp.ignore_eos = ignore_eos;
  return sp;
}

struct BatchFlags {
  std::string model_dir, device, format;
  int cpu_threads = 0;
  SamplingParams sampling;
  ModelLoadOptions load;
};

// --load-format dummy accepts a folder with only config.json or a config JSON file.
StatusOr<ModelConfig> load_config(const std::string& path, bool dummy) {
  return dummy ? memory::load_model_config(path) : ModelConfig::load(path);
}

// --prompt-ids-file: every line is submitted at once to one engine (continuous
// batching); one output line per prompt, in input order.
int run_batch(const BatchFlags& f, const std::string& file, const ModelConfig& cfg, const Tokenizer* tokenizer) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(not_found("--prompt-ids-file: cannot read " + file));
  std::stringstream ss;
  ss << in.rdbuf();
  auto prompts = parse_prompt_ids(ss.str(), file);
  if (!prompts.ok()) return fail(prompts.status());
  if (prompts->empty()) return fail(invalid_argument("--prompt-ids-file: " + file + " has no prompts"));
  int64_t pages = 0;
  constexpr int kPageSize = 16;
  for (size_t i = 0; i < prompts->size(); ++i) {
    for (int32_t id : (*prompts)[i])
      if (id >= cfg.vocab_size)
        return fail(invalid_argument(file + ":" + std::to_string(i + 1) + ": token id " + std::to_string(id) +
                                     " is outside the vocabulary (" + std::to_string(cfg.vocab_size) + ")"));
    pages += ((*prompts)[i].size() + f.sampling.max_tokens + kPageSize - 1) / kPageSize + 1;
  }
  BackendOptions bopts;
  bopts.cpu_threads = f.cpu_threads;
  auto backend = create_backend(f.device, bopts);
  if (!backend.ok()) return fail(backend.status());
  ModelRunnerOptions ropts;
  ropts.page_size = kPageSize;
  ropts.num_pages = static_cast<int>(pages);
  ropts.load = f.load;
  auto runner = LocalModelRunner::create(std::move(*backend), f.model_dir, ropts);
  if (!runner.ok()) return fail(runner.status());
  std::unique_ptr<TokenizerTextDecoder> decoder;
  if (tokenizer) decoder = std::make_unique<TokenizerTextDecoder>(*tokenizer);
  EngineConfig ec;
  ec.cache.page_size = kPageSize;
  ec.cache.sliding_window = cfg.uniform_sliding_window();
  ec.eos_token_ids = cfg.eos_token_ids;
  ec.scheduler.max_num_seqs = static_cast<int>(prompts->size());
  auto engine = EngineThread::start(ec, runner->get(), decoder.get());
  if (!engine.ok()) return fail(engine.status());
  const auto t0 = std::chrono::steady_clock::now();
  auto results = generate_batch(**engine, *prompts, f.sampling);
  if (!results.ok()) return fail(results.status());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (f.format == "json") {
    // Whole-batch timing (prefill + decode of every prompt) for benchmarks on stderr.
    int64_t out_tokens = 0;
    for (const BatchResult& r : *results) out_tokens += r.num_output_tokens;
    std::fprintf(stderr, "%s\n",
                 nlohmann::json({{"prompts", prompts->size()}, {"output_tokens", out_tokens}, {"seconds", seconds}})
                     .dump()
                     .c_str());
  }
  for (size_t i = 0; i < results->size(); ++i) {
    const BatchResult& r = (*results)[i];
    if (!r.error.empty()) return fail(internal_error("prompt " + std::to_string(i + 1) + ": " + r.error));
    std::vector<int32_t> ids;
    for (const TokenOutput& t : r.tokens[0]) ids.push_back(t.token_id);
    if (f.format == "text") {
      std::string line = r.text[0];
      for (char& c : line)
        if (c == '\n') c = ' ';  // one line per prompt
      std::printf("%s\n", line.c_str());
    } else if (f.format == "ids") {
      for (size_t k = 0; k < ids.size(); ++k) std::printf("%s%d", k ? " " : "", ids[k]);
      std::printf("\n");
    } else {
      nlohmann::json j = {{"index", i},
                          {"prompt_ids", (*prompts)[i]},
                          {"output_ids", ids},
                          {"finish_reason", finish_reason_name(r.finish[0])},
                          {"num_prompt_tokens", r.num_prompt_tokens},
                          {"num_output_tokens", r.num_output_tokens}};
      if (tokenizer) j["text"] = r.text[0];
      std::printf("%s\n", j.dump().c_str());
    }
  }
  return 0;
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
  std::string load_format = "auto";
  app.add_option("--model", model_dir, "checkpoint folder (config.json + safetensors)")->required();
  auto* p_opt = app.add_option("--prompt", prompt, "prompt text (needs the model's tokenizer)");
  auto* ids_opt = app.add_option("--prompt-ids", prompt_ids_text, "prompt token ids, e.g. \"1 2 3\"");
  std::string prompt_ids_file;
  auto* file_opt = app.add_option("--prompt-ids-file", prompt_ids_file,
                                  "one prompt per line (token ids); all run at once through the engine");
  p_opt->excludes(ids_opt);
  file_opt->excludes(p_opt)->excludes(ids_opt);
  app.add_option("--max-tokens", max_tokens, "new tokens at most")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", temperature, "0 = greedy (default: generation_config.json, else greedy)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", top_p, "nucleus sampling mass in (0, 1]")->check(CLI::Range(0.0f, 1.0f));
  app.add_option("--top-k", top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", seed, "sampling seed");
  app.add_flag("--ignore-eos", ignore_eos, "keep going past end-of-sequence tokens");
  app.add_option("--device", device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  app.add_option("--format", format, "text, ids or json (auto: text when the folder has a tokenizer, else ids)")
      ->check(CLI::IsMember({"text", "ids", "json", "auto"}));
  app.add_option("--threads", cpu_threads, "CPU threads (default: all cores)");
  app.add_option("--load-format", load_format,
                 "auto: the folder's safetensors; dummy: random weights of the config's shapes and format, "
                 "drawn in backend memory (--model may be a config JSON file)")
      ->check(CLI::IsMember({"auto", "dummy"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (prompt.empty() && prompt_ids_text.empty() && prompt_ids_file.empty())
    return fail(invalid_argument("give --prompt TEXT, --prompt-ids \"1 2 3\" or --prompt-ids-file FILE"));
  if (top_p <= 0.0f) return fail(invalid_argument("--top-p must be in (0, 1]"));
  // Text in or out needs the model folder's tokenizer; ids in and out do not.
  ModelLoadOptions load;
  load.dummy = load_format == "dummy";
  std::unique_ptr<Tokenizer> tokenizer;
  if (!prompt.empty() || format == "text" || format == "auto") {
    auto tok = Tokenizer::load(memory::model_folder(model_dir));
    if (tok.ok()) {
      tokenizer = std::move(*tok);
    } else if (!prompt.empty() || format == "text") {
      return fail(tok.status());
    }
  }
  if (format == "auto") format = tokenizer ? "text" : "ids";
  if (!prompt_ids_file.empty()) {
    auto cfg = load_config(model_dir, load.dummy);
    if (!cfg.ok()) return fail(cfg.status());
    BatchFlags f{model_dir, device, format, cpu_threads,
                 sampling_params(*cfg, temperature, top_p, top_k, seed, max_tokens, ignore_eos), load};
    return run_batch(f, prompt_ids_file, *cfg, tokenizer.get());
  }
  std::vector<int32_t> prompt_ids;
  if (!prompt.empty()) {
    prompt_ids = tokenizer->encode(prompt, /*add_special_tokens=*/true);
    if (prompt_ids.empty()) return fail(invalid_argument("--prompt: the text encodes to no tokens"));
  } else {
    auto ids = parse_ids(prompt_ids_text);
    if (!ids.ok()) return fail(ids.status());
    prompt_ids = std::move(*ids);
  }
  auto* ids = &prompt_ids;
  auto cfg = load_config(model_dir, load.dummy);
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
  ropts.load = load;
  const auto load_start = std::chrono::steady_clock::now();
  auto runner = LocalModelRunner::create(std::move(*backend), model_dir, ropts);
  if (!runner.ok()) return fail(runner.status());
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();

  SamplingParams sp = sampling_params(*cfg, temperature, top_p, top_k, seed, max_tokens, ignore_eos);
  // Through the engine, stepped on this thread; text streams to stdout as
  // tokens complete (UTF-8 never split).
  std::unique_ptr<TokenizerTextDecoder> decoder;
  if (tokenizer) decoder = std::make_unique<TokenizerTextDecoder>(*tokenizer);
  SingleGenerateOptions go;
  go.eos_token_ids = cfg->eos_token_ids;
  go.sliding_window = cfg->uniform_sliding_window();
  go.decoder = decoder.get();
  if (format == "text") {
    go.on_event = [](const RequestEvent& ev) {
      std::fputs(ev.text.c_str(), stdout);
      std::fflush(stdout);
    };
  }
  SingleGenerateResult empty;  // --max-tokens 0: nothing to run
  empty.finish = FinishReason::kLength;
  auto result = max_tokens == 0 ? StatusOr<SingleGenerateResult>(std::move(empty))
                                : generate_single(**runner, *ids, sp, go);
  if (!result.ok()) return fail(result.status());
  const std::string& text = result->text;
  const auto& out = result->output_ids;
  if (format == "text") {
    std::printf("\n");
  } else if (format == "ids") {
    for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? " " : "", out[i]);
    std::printf("\n");
  } else {
    const double decode_tps =
        result->decode_seconds > 0 ? static_cast<double>(out.size() - 1) / result->decode_seconds : 0.0;
    nlohmann::json j = {{"model", model_dir},
                        {"device", (*runner)->backend().name()},
                        {"prompt_ids", *ids},
                        {"output_ids", out},
                        {"finish_reason", finish_reason_name(result->finish)},
                        {"num_prompt_tokens", ids->size()},
                        {"num_output_tokens", out.size()},
                        {"prefill_seconds", result->prefill_seconds},
                        {"decode_tokens_per_second", decode_tps},
                        {"load_format", load_format},
                        {"load_seconds", load_seconds},
                        // For roofline figures: backend bytes of the weights (the
                        // embedding table among them, of which a step reads one row).
                        {"weight_bytes", (*runner)->model().weight_bytes()},
                        {"embedding_bytes", static_cast<int64_t>(cfg->vocab_size) * cfg->hidden_size *
                                                dtype_size(cfg->torch_dtype)},
                        {"kv_bytes_per_token", cfg->kv_bytes_per_token((*runner)->backend().activation_dtype())}};
    if (tokenizer) j["text"] = text;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace tandem::cli

// tandem eval ppl --model DIR --text FILE [--context N] [--stride S] [--device D] [--json]
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "cli/commands.h"
#include "eval/perplexity.h"
#include "model/model_runner.h"
#include "tokenizer/tokenizer.h"

namespace tandem::cli {
namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "tandem eval ppl: %s\n", message.c_str());
  return 1;
}

}  // namespace

int run_eval(int argc, char** argv) {
  CLI::App app{"Evaluate a model", "tandem eval"};
  app.require_subcommand(1);
  CLI::App* ppl = app.add_subcommand("ppl", "perplexity of a text with a sliding window (transformers' recipe)");
  std::string model_dir, text_file, device = "auto";
  PerplexityOptions o;
  bool json_out = false, no_bos = false;
  ppl->add_option("--model", model_dir, "checkpoint folder (with its tokenizer)")->required();
  ppl->add_option("--text", text_file, "UTF-8 text file")->required();
  ppl->add_option("--context", o.context, "tokens per window");
  ppl->add_option("--stride", o.stride, "tokens between window starts (<= context)");
  ppl->add_option("--device", device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  ppl->add_flag("--no-bos", no_bos, "tokenize without the special tokens (BOS) the tokenizer adds");
  ppl->add_flag("--json", json_out, "print one JSON line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::ifstream in(text_file, std::ios::binary);
  if (!in) return fail("cannot read --text " + text_file);
  std::stringstream ss;
  ss << in.rdbuf();
  auto tok = Tokenizer::load(model_dir);
  if (!tok.ok()) return fail(tok.status().message());
  std::vector<int32_t> ids = (*tok)->encode(ss.str(), !no_bos);

  auto backend = create_backend(device);
  if (!backend.ok()) return fail(backend.status().message());
  std::string backend_name = (*backend)->name();
  ModelRunnerOptions ro;
  ro.num_pages = (o.context + ro.page_size - 1) / ro.page_size;
  auto runner = LocalModelRunner::create(std::move(*backend), model_dir, ro);
  if (!runner.ok()) return fail(runner.status().message());
  auto r = compute_perplexity(**runner, ids, o);
  if (!r.ok()) return fail(r.status().message());
  if (json_out) {
    nlohmann::json j = {{"perplexity", r->perplexity}, {"mean_nll", r->mean_nll},   {"tokens", r->tokens},
                        {"tokens_scored", r->tokens_scored}, {"windows", r->windows}, {"context", o.context},
                        {"stride", o.stride},           {"model", model_dir},        {"device", backend_name}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f over %lld scored tokens (%lld in text, %d windows, context %d, stride %d, %s)\n",
                r->perplexity, static_cast<long long>(r->tokens_scored), static_cast<long long>(r->tokens),
                r->windows, o.context, o.stride, backend_name.c_str());
  }
  return 0;
}

}  // namespace tandem::cli

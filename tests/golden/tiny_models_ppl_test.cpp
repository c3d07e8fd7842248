// The CPU forward pass on the committed trained models (models/tandem-tiny-*)
// against HF transformers' sliding-window perplexity in their ppl_fixture.json
// (scripts/gpu/train_tiny.py: fp32 compute, windows of `context` tokens every
// `stride`, each token scored once, positions restarting in each window),
// computed by the same code as `tandem eval ppl` (eval/perplexity.h).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "eval/perplexity.h"
#include "model/model_runner.h"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

constexpr double kPerplexityRelTolerance = 1e-4;  // fp32 vs fp32; observed ~1e-6

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TinyModelPerplexity : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyModelPerplexity, MatchesTransformers) {
  const std::string dir = std::string(TANDEM_SOURCE_DIR) + "/models/" + GetParam();
  if (!fs::exists(dir + "/ppl_fixture.json")) GTEST_SKIP() << dir << " has no ppl_fixture.json";
  const auto fx = nlohmann::json::parse(read_all(dir + "/ppl_fixture.json"));
  auto tok = Tokenizer::load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  const std::vector<int32_t> ids =
      (*tok)->encode(read_all(dir + "/" + fx["text_file"].get<std::string>()), fx["add_bos"].get<bool>());
  ASSERT_EQ(static_cast<int64_t>(ids.size()), fx["tokens"].get<int64_t>()) << "tokenizer differs from HF's";
  const int context = fx["context"], stride = fx["stride"];
  ModelRunnerOptions ro;
  ro.page_size = 16;
  ro.num_pages = (context + 15) / 16;
  // OpenBLAS prefill: this test is about values, not batch invariance.
  auto runner = LocalModelRunner::create(make_cpu_backend(0, /*blas_prefill=*/true), dir, ro);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  PerplexityOptions po;
  po.context = context;
  po.stride = stride;
  auto r = compute_perplexity(**runner, ids, po);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->tokens_scored, fx["tokens_scored"].get<int64_t>());
  const double want = fx["perplexity"].get<double>();
  EXPECT_LT(std::fabs(r->perplexity - want) / want, kPerplexityRelTolerance)
      << "ours " << r->perplexity << ", HF " << want;
  std::printf("%s: perplexity %.6f (HF %.6f) over %lld tokens\n", GetParam(), r->perplexity, want,
              static_cast<long long>(r->tokens_scored));
}

INSTANTIATE_TEST_SUITE_P(Models, TinyModelPerplexity, ::testing::Values("tandem-tiny-general", "tandem-tiny-coder"),
                         [](const ::testing::TestParamInfo<const char*>& i) {
                           std::string s = i.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace tandem

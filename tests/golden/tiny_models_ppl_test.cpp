// The CPU forward pass on the committed trained models (models/tandem-tiny-*)
// against HF transformers' sliding-window perplexity in their ppl_fixture.json
// (scripts/gpu/train_tiny.py: fp32 compute, windows of `context` tokens every
// `stride`, each token scored once, positions restarting in each window).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
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
  const int vocab = (*runner)->vocab_size();
  const int n = static_cast<int>(ids.size());
  double nll = 0;
  int64_t scored = 0;
  int prev_end = 0;
  for (int begin = 0; begin < n; begin += stride) {
    const int end = std::min(begin + context, n), len = end - begin;
    const int trg = end - prev_end;
    // Row r predicts window token r + 1, scored when r + 1 >= len - trg.
    ForwardBatch b;
    b.page_size = ro.page_size;
    for (int i = 0; i < len; ++i) {
      b.token_ids.push_back(ids[begin + i]);
      b.positions.push_back(i);
      b.slot_mapping.push_back(i);
      if (i + 1 < len && i + 1 >= len - trg) b.logits_rows.push_back(i);
    }
    const int pages = (len + ro.page_size - 1) / ro.page_size;
    b.query_start = {0, len};
    b.kv_len = {len};
    b.page_indptr = {0, pages};
    for (int p = 0; p < pages; ++p) b.page_indices.push_back(p);
    b.last_page_len = {len - (pages - 1) * ro.page_size};
    std::vector<float> logits;
    ASSERT_TRUE((*runner)->forward(b, &logits).ok());
    for (size_t k = 0; k < b.logits_rows.size(); ++k) {
      const float* row = logits.data() + k * vocab;
      double mx = row[0];
      for (int v = 1; v < vocab; ++v) mx = std::max(mx, static_cast<double>(row[v]));
      double sum = 0;
      for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
      const int target = b.token_ids[b.logits_rows[k] + 1];
      nll += -(row[target] - mx - std::log(sum));
      ++scored;
    }
    prev_end = end;
    if (end == n) break;
  }
  EXPECT_EQ(scored, fx["tokens_scored"].get<int64_t>());
  const double ppl = std::exp(nll / scored), want = fx["perplexity"].get<double>();
  EXPECT_LT(std::fabs(ppl - want) / want, kPerplexityRelTolerance) << "ours " << ppl << ", HF " << want;
  std::printf("%s: perplexity %.6f (HF %.6f) over %lld tokens\n", GetParam(), ppl, want,
              static_cast<long long>(scored));
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

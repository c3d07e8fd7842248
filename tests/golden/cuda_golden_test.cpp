// The CUDA engine end to end (skipped visibly without a GPU):
//  - CudaVsCpu: the committed tiny trained models (models/tandem-tiny-*) on the
//    CUDA backend (fp16 activations) against the CPU backend, which the golden
//    fixtures hold to HF transformers: prefill logits within 2e-2 of the logit
//    range, greedy ids identical except where the CPU's top-2 logit gap is a
//    near tie (< 2% of the range), after which the contexts differ.
//  - CudaGolden: the HF fixture archive (when committed) on CUDA, with fp16
//    tolerances.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "engine/generate_single.h"
#include "model/config.h"
#include "model/model_runner.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

constexpr double kLogitTolerance = 2e-2;  // fp16 activations vs fp32

// The repository root: $TANDEM_SOURCE_DIR (scripts/gpu-check sets it when the
// binaries run from a copy) or the source folder this was built from.
std::string source_dir() {
  const char* env = std::getenv("TANDEM_SOURCE_DIR");
  return env != nullptr && *env != 0 ? env : TANDEM_SOURCE_DIR;
}
constexpr double kNearTie = 0.02;         // top-2 gap / logit range

std::unique_ptr<Backend> cuda_backend(DType act) {
  CudaBackendOptions o;
  o.memory_bytes = size_t{1} << 30;
  o.activation_dtype = act;
  if (const char* v = std::getenv("TANDEM_CUDA_KERNEL_VARIANT")) o.kernel_variant = std::atoi(v);
  if (const char* v = std::getenv("TANDEM_CUDA_GRAPHS")) o.graphs = std::atoi(v) != 0;
  if (const char* v = std::getenv("TANDEM_CUDA_GEMV_SCALE_AHEAD")) o.gemv_scale_ahead = std::atoi(v) != 0;
  auto b = make_cuda_backend(o);
  EXPECT_TRUE(b.ok()) << b.status().to_string();
  return b.ok() ? std::move(b).value() : nullptr;
}

DType model_dtype(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str());
  const std::string t = j.value("torch_dtype", j.value("dtype", std::string("float16")));
  return t == "bfloat16" ? DType::kBF16 : DType::kF16;
}

std::vector<float> last_logits(LocalModelRunner& runner, const std::vector<int32_t>& ids) {
  const ForwardBatch b = single_sequence_prefill(ids, runner.page_size(), /*all_logits=*/false);
  std::vector<float> logits;
  Status s = runner.forward(b, &logits);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return logits;
}

double max_abs_over_range(const std::vector<float>& ours, const std::vector<float>& ref) {
  if (ours.size() != ref.size() || ref.empty()) return INFINITY;
  const auto [lo, hi] = std::minmax_element(ref.begin(), ref.end());
  double err = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(ours[i])) return INFINITY;
    err = std::max(err, std::fabs(static_cast<double>(ours[i]) - ref[i]));
  }
  return err / (*hi - *lo);
}

double top2_gap_over_range(const std::vector<float>& l) {
  std::vector<float> s = l;
  std::partial_sort(s.begin(), s.begin() + 2, s.end(), std::greater<float>());
  const auto [lo, hi] = std::minmax_element(l.begin(), l.end());
  return (s[0] - s[1]) / (*hi - *lo);
}

TEST(CudaVsCpu, TinyModels) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: CUDA end-to-end test not run";
  for (const char* name : {"tandem-tiny-coder", "tandem-tiny-general"}) {
    const std::string dir = source_dir() + "/models/" + name;
    ASSERT_TRUE(fs::exists(dir + "/config.json")) << dir;
    ModelRunnerOptions ro;
    ro.page_size = 16;
    ro.num_pages = 32;
    auto cpu = LocalModelRunner::create(make_cpu_backend(0), dir, ro);
    ASSERT_TRUE(cpu.ok()) << cpu.status().to_string();
    auto gpu = LocalModelRunner::create(cuda_backend(model_dtype(dir)), dir, ro);
    ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
    std::mt19937 rng(std::random_device{}());
    for (int len : {1, 7, 40, 130}) {
      std::vector<int32_t> prompt(len);
      for (auto& t : prompt) t = std::uniform_int_distribution<int>(3, (*cpu)->vocab_size() - 1)(rng);
      const auto lc = last_logits(**cpu, prompt);
      const auto lg = last_logits(**gpu, prompt);
      EXPECT_LE(max_abs_over_range(lg, lc), kLogitTolerance) << name << " prompt of " << len;
      SamplingParams so;
      so.temperature = 0.0f;
      so.max_tokens = 24;
      so.ignore_eos = true;
      auto gc = generate_single(**cpu, prompt, so);
      auto gg = generate_single(**gpu, prompt, so);
      ASSERT_TRUE(gc.ok() && gg.ok());
      const auto& a = gc->output_ids;
      const auto& b = gg->output_ids;
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i] == b[i]) continue;
        std::vector<int32_t> ctx = prompt;
        ctx.insert(ctx.end(), a.begin(), a.begin() + i);
        const double gap = top2_gap_over_range(last_logits(**cpu, ctx));
        EXPECT_LT(gap, kNearTie) << name << " prompt of " << len << ": greedy token " << i << " is " << b[i]
                                 << " on CUDA, " << a[i] << " on CPU (CPU top-2 gap " << gap << " of the range)";
        break;  // the contexts differ from here on
      }
    }
    // The decode steps above ran as replayed CUDA graphs (captured at the second step).
    if ((*gpu)->model().backend().supports_graphs())
      EXPECT_GE((*gpu)->model().num_graphs(), 1) << name << ": no decode step ran as a graph";
  }
}

// Batch invariance on CUDA, measured: sequence A's logits alone and batched with
// a 40-token prefill of another sequence. The CUDA kernels are not bitwise
// batch invariant (int4/dense GEMMs switch path at 16 rows; attention split
// counts follow the batch), so this holds A to the fp16 tolerance and the same
// argmax, and prints the bitwise verdict.
TEST(CudaInvariance, BatchedVsAlone) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: CUDA batch-invariance test not run";
  const std::string dir = source_dir() + "/models/tandem-tiny-general";
  ModelRunnerOptions ro;
  ro.page_size = 4;
  ro.num_pages = 32;
  auto runner = LocalModelRunner::create(cuda_backend(model_dtype(dir)), dir, ro);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();
  std::mt19937 rng(std::random_device{}());
  auto tokens = [&](int n) {
    std::vector<int32_t> t(n);
    for (auto& x : t) x = std::uniform_int_distribution<int>(3, (*runner)->vocab_size() - 1)(rng);
    return t;
  };
  const auto a = tokens(9), b = tokens(40);
  auto add_seq = [](ForwardBatch& fb, const std::vector<int32_t>& ids, const std::vector<int32_t>& pages, bool logits) {
    const int n = static_cast<int>(ids.size()), ps = fb.page_size, base = fb.num_tokens();
    if (fb.query_start.empty()) fb.query_start.push_back(0);
    if (fb.page_indptr.empty()) fb.page_indptr.push_back(0);
    for (int i = 0; i < n; ++i) {
      fb.token_ids.push_back(ids[i]);
      fb.positions.push_back(i);
      fb.slot_mapping.push_back(pages[i / ps] * ps + i % ps);
    }
    fb.query_start.push_back(base + n);
    fb.kv_len.push_back(n);
    const int np = (n + ps - 1) / ps;
    for (int p = 0; p < np; ++p) fb.page_indices.push_back(pages[p]);
    fb.page_indptr.push_back(static_cast<int32_t>(fb.page_indices.size()));
    fb.last_page_len.push_back(n - (np - 1) * ps);
    if (logits) fb.logits_rows.push_back(base + n - 1);
  };
  ForwardBatch solo;
  solo.page_size = 4;
  add_seq(solo, a, {0, 1, 2}, true);
  std::vector<float> l1, l2;
  ASSERT_TRUE((*runner)->forward(solo, &l1).ok());
  ForwardBatch both;
  both.page_size = 4;
  add_seq(both, b, {3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, false);
  add_seq(both, a, {13, 14, 15}, true);
  ASSERT_TRUE((*runner)->forward(both, &l2).ok());
  ASSERT_EQ(l1.size(), l2.size());
  EXPECT_LE(max_abs_over_range(l2, l1), kLogitTolerance);
  EXPECT_EQ(std::max_element(l1.begin(), l1.end()) - l1.begin(), std::max_element(l2.begin(), l2.end()) - l2.begin());
  std::printf("[ note     ] CUDA logits alone vs batched: bitwise %s, max-abs/range %.2e\n",
              l1 == l2 ? "identical" : "different", max_abs_over_range(l2, l1));
}

// The HF fixtures (tests/golden/golden_models_test.cpp) on CUDA.
TEST(CudaGolden, FixturesOnCuda) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: CUDA golden test not run";
  const std::string archive = source_dir() + "/fixtures/models/golden_models.tar.xz";
  if (!fs::exists(archive)) GTEST_SKIP() << "fixture archive " << archive << " is absent";
  const std::string tmp = (fs::temp_directory_path() / ("tandem_cuda_golden_" + std::to_string(getpid()))).string();
  fs::create_directories(tmp);
  ASSERT_EQ(std::system(("tar -xJf '" + archive + "' -C '" + tmp + "'").c_str()), 0);
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(tmp + "/golden_models")) {
    const std::string dir = entry.path().string();
    if (!fs::exists(dir + "/reference.json")) continue;
    std::ifstream in(dir + "/reference.json");
    std::stringstream ss;
    ss << in.rdbuf();
    const auto ref = nlohmann::json::parse(ss.str());
    ModelRunnerOptions ro;
    ro.page_size = 16;
    ro.num_pages = 8;
    auto runner = LocalModelRunner::create(cuda_backend(model_dtype(dir)), dir, ro);
    if (!runner.ok() && runner.status().message().find("K % 128") != std::string::npos) {
      std::printf("[ note     ] %s: %s\n", entry.path().filename().c_str(), runner.status().message().c_str());
      continue;  // tiny int4 shapes the CUDA kernels do not take (K % 128)
    }
    ASSERT_TRUE(runner.ok()) << runner.status().to_string();
    for (const auto& p : ref["prompts"]) {
      const auto prompt = p["prompt_ids"].get<std::vector<int32_t>>();
      const auto hf = p["greedy_ids"].get<std::vector<int32_t>>();
      const auto ref_lp = p["logits_prompt"].get<std::vector<double>>();
      const auto lp = last_logits(**runner, prompt);
      std::vector<float> ref_f(ref_lp.begin(), ref_lp.end());
      EXPECT_LE(max_abs_over_range(lp, ref_f), kLogitTolerance) << dir << ": prompt logits";
      SamplingParams so;
      so.temperature = 0.0f;
      so.max_tokens = static_cast<int>(hf.size());
      so.ignore_eos = true;
      auto gen = generate_single(**runner, prompt, so);
      ASSERT_TRUE(gen.ok()) << gen.status().to_string();
      for (size_t i = 0; i < hf.size(); ++i) {
        if (gen->output_ids[i] == hf[i]) continue;
        const auto& step = p["steps"][i];
        const double margin = step["top_logprobs"][0].get<double>() - step["top_logprobs"][1].get<double>();
        EXPECT_LT(margin, 0.1) << dir << ": greedy token " << i << " differs from HF (HF top-2 margin " << margin << ")";
        break;
      }
    }
    ++checked;
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  std::printf("[ note     ] %d fixture models checked on CUDA\n", checked);
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace tandem

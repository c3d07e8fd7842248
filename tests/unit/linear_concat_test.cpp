// Linears concatenated along N (q/k/v, gate/up fusion at load) compute exactly
// the columns of the separate layers, for dense, AWQ and GPTQ (act-order) weights.
#include "model/linear_concat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "backend/dtype.h"

namespace tandem {
namespace {

struct HostLinear {
  std::vector<int32_t> qweight, qzeros, g_idx;
  std::vector<uint16_t> scales;
  std::vector<float> weight, bias;
  LinearWeight w;
};

HostLinear make(WeightFormat f, int K, int N, int G, bool bias, const std::vector<int32_t>& g_idx, std::mt19937& rng,
                const std::string& name) {
  HostLinear h;
  std::uniform_int_distribution<uint32_t> word;
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  LinearWeight& w = h.w;
  w.format = f;
  w.num_out = N;
  w.num_in = K;
  w.name = name;
  if (bias) {
    for (int i = 0; i < N; ++i) h.bias.push_back(u(rng));
    w.bias = TensorView(h.bias.data(), DType::kF32, {N});
  }
  if (f == WeightFormat::kDense) {
    for (int64_t i = 0; i < int64_t{N} * K; ++i) h.weight.push_back(u(rng));
    w.weight = TensorView(h.weight.data(), DType::kF32, {N, K});
    return h;
  }
  const int ng = K / G;
  w.group_size = G;
  h.qweight.resize(static_cast<size_t>(K) * N / 8);
  for (auto& x : h.qweight) x = static_cast<int32_t>(word(rng));
  h.qzeros.resize(static_cast<size_t>(ng) * N / 8);
  for (auto& x : h.qzeros) x = static_cast<int32_t>(word(rng));
  for (int64_t i = 0; i < int64_t{ng} * N; ++i) h.scales.push_back(f32_to_f16(0.002f + (u(rng) + 0.05f) * 0.2f));
  w.qweight = f == WeightFormat::kAwqGemm ? TensorView(h.qweight.data(), DType::kI32, {K, N / 8})
                                          : TensorView(h.qweight.data(), DType::kI32, {K / 8, N});
  w.qzeros = TensorView(h.qzeros.data(), DType::kI32, {ng, N / 8});
  w.scales = TensorView(h.scales.data(), DType::kF16, {ng, N});
  if (!g_idx.empty()) {
    h.g_idx = g_idx;
    w.g_idx = TensorView(h.g_idx.data(), DType::kI32, {K});
  }
  return h;
}

void expect_same_columns(WeightFormat f, bool bias, bool act_order) {
  std::mt19937 rng(7);
  const int K = 256, G = 64;
  std::vector<int32_t> g_idx;
  if (act_order) {
    std::vector<int32_t> perm(K);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    g_idx.resize(K);
    for (int k = 0; k < K; ++k) g_idx[perm[k]] = k / G;
  }
  const std::vector<int> widths = {64, 16, 24};
  std::vector<HostLinear> parts;
  for (size_t i = 0; i < widths.size(); ++i)
    parts.push_back(make(f, K, widths[i], G, bias, g_idx, rng, "layer.p" + std::to_string(i)));
  std::vector<const LinearWeight*> ptrs;
  for (const auto& p : parts) ptrs.push_back(&p.w);
  std::string why;
  ASSERT_TRUE(can_concat_linears(ptrs, &why)) << why;
  auto cat = concat_linears(ptrs, "layer.cat");
  EXPECT_EQ(cat->weight.num_out, 104);

  auto be = make_cpu_backend(1);
  auto fused = be->prepare_linear(cat->weight);
  ASSERT_TRUE(fused.ok()) << fused.status().to_string();
  const int M = 3;
  std::vector<float> x(M * K);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& v : x) v = u(rng);
  std::vector<float> y(M * 104);
  be->linear(TensorView(x.data(), DType::kF32, {M, K}), **fused, TensorView(y.data(), DType::kF32, {M, 104}));
  int col = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto sep = be->prepare_linear(parts[i].w);
    ASSERT_TRUE(sep.ok()) << sep.status().to_string();
    const int n = widths[i];
    std::vector<float> ys(M * n);
    be->linear(TensorView(x.data(), DType::kF32, {M, K}), **sep, TensorView(ys.data(), DType::kF32, {M, n}));
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < n; ++j)
        ASSERT_NEAR(y[m * 104 + col + j], ys[m * n + j], 1e-5f * (1.f + std::fabs(ys[m * n + j])))
            << weight_format_name(f) << " part " << i << " row " << m << " col " << j;
    col += n;
  }
}

TEST(LinearConcat, DenseWithBias) { expect_same_columns(WeightFormat::kDense, true, false); }
TEST(LinearConcat, Awq) { expect_same_columns(WeightFormat::kAwqGemm, false, false); }
TEST(LinearConcat, AwqWithBias) { expect_same_columns(WeightFormat::kAwqGemm, true, false); }
TEST(LinearConcat, GptqActOrder) { expect_same_columns(WeightFormat::kGptq, false, true); }

TEST(LinearConcat, RefusesLayersThatDiffer) {
  std::mt19937 rng(3);
  std::vector<int32_t> g1(128), g2(128);
  for (int k = 0; k < 128; ++k) g1[k] = k / 64, g2[k] = (127 - k) / 64;
  HostLinear a = make(WeightFormat::kGptq, 128, 16, 64, false, g1, rng, "a");
  HostLinear b = make(WeightFormat::kGptq, 128, 16, 64, false, g2, rng, "b");
  HostLinear c = make(WeightFormat::kAwqGemm, 128, 16, 64, false, {}, rng, "c");
  HostLinear d = make(WeightFormat::kAwqGemm, 128, 16, 32, false, {}, rng, "d");
  HostLinear e = make(WeightFormat::kAwqGemm, 128, 16, 64, true, {}, rng, "e");
  std::string why;
  EXPECT_FALSE(can_concat_linears({&a.w, &b.w}, &why));
  EXPECT_NE(why.find("g_idx"), std::string::npos) << why;
  EXPECT_FALSE(can_concat_linears({&a.w, &c.w}, &why));
  EXPECT_NE(why.find("format"), std::string::npos) << why;
  EXPECT_FALSE(can_concat_linears({&c.w, &d.w}, &why));
  EXPECT_NE(why.find("group size"), std::string::npos) << why;
  EXPECT_FALSE(can_concat_linears({&c.w, &e.w}, &why));
  EXPECT_NE(why.find("bias"), std::string::npos) << why;
  EXPECT_TRUE(can_concat_linears({&a.w, &a.w}, &why));
}

TEST(LinearConcat, CpuBackendHasNoGraphs) {
  auto be = make_cpu_backend(1);
  EXPECT_FALSE(be->supports_graphs());
  EXPECT_FALSE(be->prefers_fused_linears());
  EXPECT_EQ(be->begin_capture().code(), StatusCode::kUnimplemented);
  EXPECT_FALSE(be->end_capture().ok());
}

}  // namespace
}  // namespace tandem

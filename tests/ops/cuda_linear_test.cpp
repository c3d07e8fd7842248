// CUDA vs CPU linear layers: dense (fp16 weights, fp16 and fp32 outputs) and int4
// AWQ / GPTQ (v1, v2, act-order) across batch sizes that take the tensor-core
// GEMV (M <= 16) and the dequantize + cuBLASLt path (M > 16).
#include <algorithm>
#include <numeric>

#include "ops/op_test_util.h"

namespace tandem::optest {
namespace {

class CudaLinear : public OpTest {
 protected:
  struct Int4Case {
    WeightFormat format;
    int K, N, G;
    bool act_order, bias;
    int zero_offset;
    float x_range = 1.f;  // x drawn from [-x_range, x_range]
  };

  // Random packed tensors (every 32-bit word is a valid packing of 8 nibbles).
  void check_int4(const Int4Case& c, const std::vector<int>& batch_sizes) {
    const bool awq = c.format == WeightFormat::kAwqGemm;
    const int ng = c.K / c.G;
    std::uniform_int_distribution<uint32_t> word;
    std::vector<int32_t> qweight(static_cast<size_t>(c.K) * c.N / 8), qzeros(static_cast<size_t>(ng) * c.N / 8);
    for (auto& w : qweight) w = static_cast<int32_t>(word(rng_));
    for (auto& w : qzeros) w = static_cast<int32_t>(word(rng_)) & (c.zero_offset ? 0x77777777 : -1);
    std::vector<float> scales = random(int64_t{ng} * c.N, 0.002f, 0.02f);
    std::vector<float> bias = random(c.N, -1, 1);
    std::vector<int32_t> g_idx;
    if (c.act_order) {
      std::vector<int32_t> perm(c.K);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng_);
      g_idx.resize(c.K);
      for (int k = 0; k < c.K; ++k) g_idx[perm[k]] = k / c.G;
    }
    std::vector<uint16_t> scales_h(scales.size());
    for (size_t i = 0; i < scales.size(); ++i) scales_h[i] = f32_to_f16(scales[i]);
    LinearWeight w;
    w.format = c.format;
    w.num_out = c.N;
    w.num_in = c.K;
    w.group_size = c.G;
    w.zero_offset = c.zero_offset;
    w.name = "test.int4";
    w.qweight = awq ? TensorView(qweight.data(), DType::kI32, {c.K, c.N / 8})
                    : TensorView(qweight.data(), DType::kI32, {c.K / 8, c.N});
    w.qzeros = TensorView(qzeros.data(), DType::kI32, {ng, c.N / 8});
    w.scales = TensorView(scales_h.data(), DType::kF16, {ng, c.N});
    if (c.act_order) w.g_idx = TensorView(g_idx.data(), DType::kI32, {c.K});
    if (c.bias) w.bias = TensorView(bias.data(), DType::kF32, {c.N});
    auto lc = cpu_->prepare_linear(w);
    ASSERT_TRUE(lc.ok()) << lc.status().to_string();
    auto lg = gpu_->prepare_linear(w);
    ASSERT_TRUE(lg.ok()) << lg.status().to_string();
    for (int M : batch_sizes) {
      auto x = random(int64_t{M} * c.K, -c.x_range, c.x_range);
      auto xc = put(*cpu_, x, DType::kF32, {M, c.K});
      auto xg = put(*gpu_, x, act(), {M, c.K});
      auto oc = out(*cpu_, DType::kF32, {M, c.N});
      auto og = out(*gpu_, act(), {M, c.N});
      auto og32 = out(*gpu_, DType::kF32, {M, c.N});
      cpu_->linear(xc.view, **lc, oc.view);
      gpu_->linear(xg.view, **lg, og.view);
      gpu_->linear(xg.view, **lg, og32.view);
      const auto ref = get(*cpu_, oc.view);
      const std::string what = std::string(weight_format_name(c.format)) + " K=" + std::to_string(c.K) +
                               " N=" + std::to_string(c.N) + " G=" + std::to_string(c.G) +
                               " act_order=" + std::to_string(c.act_order) + " M=" + std::to_string(M);
      EXPECT_LT(rel_err(get(*gpu_, og.view), ref), 3e-3) << what;
      EXPECT_LT(rel_err(get(*gpu_, og32.view), ref), 2e-3) << what << " (fp32 out)";
    }
  }
};

TEST_F(CudaLinear, Dense) {
  for (auto [K, N, bias] : {std::tuple{64, 32, false}, {4096, 1024, true}, {200, 72, true}, {1024, 32000, false}}) {
    auto w = random(int64_t{N} * K, -0.05f, 0.05f);
    auto b = random(N);
    LinearWeight lw;
    lw.num_out = N;
    lw.num_in = K;
    lw.name = "test.dense";
    lw.weight = TensorView(w.data(), DType::kF32, {N, K});
    if (bias) lw.bias = TensorView(b.data(), DType::kF32, {N});
    auto lc = cpu_->prepare_linear(lw);
    auto lg = gpu_->prepare_linear(lw);
    ASSERT_TRUE(lc.ok() && lg.ok());
    for (int M : {1, 5, 16, 17, 64}) {
      auto x = random(int64_t{M} * K);
      auto xc = put(*cpu_, x, DType::kF32, {M, K});
      auto xg = put(*gpu_, x, act(), {M, K});
      auto oc = out(*cpu_, DType::kF32, {M, N});
      auto og = out(*gpu_, act(), {M, N});
      auto og32 = out(*gpu_, DType::kF32, {M, N});
      cpu_->linear(xc.view, **lc, oc.view);
      gpu_->linear(xg.view, **lg, og.view);
      gpu_->linear(xg.view, **lg, og32.view);
      const auto ref = get(*cpu_, oc.view);
      EXPECT_LT(rel_err(get(*gpu_, og.view), ref), 3e-3) << "K=" << K << " N=" << N << " M=" << M;
      EXPECT_LT(rel_err(get(*gpu_, og32.view), ref), 1e-3) << "K=" << K << " N=" << N << " M=" << M << " fp32";
    }
  }
}

TEST_F(CudaLinear, Awq) {
  for (int G : {32, 64, 128}) check_int4({WeightFormat::kAwqGemm, 512, 136, G, false, false, 0}, {1, 3, 16, 17});
  check_int4({WeightFormat::kAwqGemm, 4096, 1024, 128, false, true, 0}, {1, 8, 9, 16, 40});
  check_int4({WeightFormat::kAwqGemm, 14336, 512, 128, false, false, 0}, {1, 2, 16});
  check_int4({WeightFormat::kAwqGemm, 128, 8, 128, false, true, 0}, {1, 16, 33});
  // Large activations (as down_proj inputs can be): no fp16 overflow in the partial sums.
  check_int4({WeightFormat::kAwqGemm, 4096, 256, 128, false, false, 0, 2000.f}, {1, 4});
}

TEST_F(CudaLinear, Gptq) {
  for (int offset : {0, 1}) {
    for (bool act_order : {false, true}) {
      for (int G : {32, 128}) {
        check_int4({WeightFormat::kGptq, 1024, 264, G, act_order, offset == 0, offset}, {1, 4, 16, 19});
      }
    }
  }
  check_int4({WeightFormat::kGptq, 4096, 4096, 128, true, false, 1}, {1, 16, 64});
}

TEST_F(CudaLinear, RejectsShapesTheKernelsCannotRun) {
  std::vector<int32_t> qweight(96 * 16 / 8), qzeros(3 * 16 / 8);
  std::vector<uint16_t> scales(3 * 16, 0x3c00);
  LinearWeight w;
  w.format = WeightFormat::kAwqGemm;
  w.num_out = 16;
  w.num_in = 96;
  w.group_size = 32;
  w.name = "model.layers.0.mlp.up_proj";
  w.qweight = TensorView(qweight.data(), DType::kI32, {96, 2});
  w.qzeros = TensorView(qzeros.data(), DType::kI32, {3, 2});
  w.scales = TensorView(scales.data(), DType::kF16, {3, 16});
  auto r = gpu_->prepare_linear(w);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model.layers.0.mlp.up_proj"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("K % 128"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace tandem::optest

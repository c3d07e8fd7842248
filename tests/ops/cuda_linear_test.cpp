// CUDA vs CPU linear layers: dense (fp16 weights, fp16 and fp32 outputs) and int4
// AWQ / GPTQ (v1, v2, act-order) across batch sizes that take the GEMVs
// (M <= 16), the tensor-core int4 GEMM (16 < M <= 256) and the dequantize +
// cuBLASLt path (M > 256, or any M > 16 with CudaBackendOptions::int4_tc_gemm off).
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <numeric>
#include <utility>

#include "ops/op_test_util.h"

namespace tandem::optest {
namespace {

// Row counts of decode batches that take the tensor-core int4 GEMM: partial and
// whole 16-row mma tiles, 32-row warp tiles and 64-row block tiles.
const std::vector<int> kTensorCoreRows = {17, 24, 31, 32, 48, 64, 65, 100, 128, 200, 256};

class CudaLinear : public OpTest {
 protected:
  // A CUDA backend with these options (3 GiB unless set, the kernel variant gpu-check asks for).
  std::unique_ptr<Backend> make_gpu(CudaBackendOptions o) {
    o.fused_norms = true;
    o.fused_norms_max_width = std::numeric_limits<int>::max();
    if (o.memory_bytes == CudaBackendOptions{}.memory_bytes) o.memory_bytes = size_t{3} << 30;
    if (const char* v = std::getenv("TANDEM_CUDA_KERNEL_VARIANT")) o.kernel_variant = std::atoi(v);
    auto g = make_cuda_backend(o);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? std::move(g).value() : nullptr;
  }

  struct Int4Case {
    WeightFormat format;
    int K, N, G;
    bool act_order, bias;
    int zero_offset;
    float x_range = 1.f;  // x drawn from [-x_range, x_range]
  };

  // A random int4 layer: its host tensors and the LinearWeight viewing them.
  struct Int4Host {
    std::vector<int32_t> qweight, qzeros, g_idx;
    std::vector<uint16_t> scales_h;
    std::vector<float> bias;
    LinearWeight w;
  };
  // Random packed tensors (every 32-bit word is a valid packing of 8 nibbles).
  std::unique_ptr<Int4Host> make_int4(const Int4Case& c) {
    auto h = std::make_unique<Int4Host>();
    auto& [qweight, qzeros, g_idx, scales_h, bias, w] = *h;
    const bool awq = c.format == WeightFormat::kAwqGemm;
    const int ng = c.K / c.G;
    std::uniform_int_distribution<uint32_t> word;
    qweight.resize(static_cast<size_t>(c.K) * c.N / 8);
    qzeros.resize(static_cast<size_t>(ng) * c.N / 8);
    for (auto& v : qweight) v = static_cast<int32_t>(word(rng_));
    for (auto& v : qzeros) v = static_cast<int32_t>(word(rng_)) & (c.zero_offset ? 0x77777777 : -1);
    std::vector<float> scales = random(int64_t{ng} * c.N, 0.002f, 0.02f);
    bias = random(c.N, -1, 1);
    if (c.act_order) {
      std::vector<int32_t> perm(c.K);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng_);
      g_idx.resize(c.K);
      for (int k = 0; k < c.K; ++k) g_idx[perm[k]] = k / c.G;
    }
    scales_h.resize(scales.size());
    for (size_t i = 0; i < scales.size(); ++i) scales_h[i] = f32_to_f16(scales[i]);
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
    return h;
  }

  // rms_norm(x) * norm_w, then the layer, on the CPU in fp32: [M, N].
  DeviceTensor cpu_normed_linear(const PreparedLinear& lc, const std::vector<float>& x,
                                 const std::vector<float>& norm_w, float eps, int M, int K, int N) {
    auto xc = put(*cpu_, x, DType::kF32, {M, K});
    auto nc = out(*cpu_, DType::kF32, {M, K});
    auto wc = put(*cpu_, norm_w, DType::kF32, {K});
    cpu_->rms_norm(xc.view, wc.view, eps, nc.view);
    auto oc = out(*cpu_, DType::kF32, {M, N});
    cpu_->linear(nc.view, lc, oc.view);
    return oc;
  }

  void check_int4(const Int4Case& c, const std::vector<int>& batch_sizes) {
    const auto host = make_int4(c);
    const LinearWeight& w = host->w;
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
                               " act_order=" + std::to_string(c.act_order) + " M=" + std::to_string(M) +
                               " " + dtype_name(act());
      // bf16 (8-bit mantissa) rounds the scales, the dequantized weights and the
      // output about 8x coarser than fp16.
      const double tol = act() == DType::kBF16 ? 4 : 1;
      EXPECT_LT(rel_err(get(*gpu_, og.view), ref), 3e-3 * tol) << what;
      EXPECT_LT(rel_err(get(*gpu_, og32.view), ref), 2e-3 * tol) << what << " (fp32 out)";
    }
  }

  // The decode GEMV's layers for the tests of its load paths (prefetch, scale
  // order, ring): warps with 4 tiles, 6144- and 4096-wide layers, K = 14336,
  // groups of 64, 128 and 256, GPTQ with zero offset 1 and groups of 32 and 128.
  void check_decode_gemv_layers() {
    check_int4({WeightFormat::kAwqGemm, 4096, 1024, 128, false, true, 0}, {1, 3, 4});
    check_int4({WeightFormat::kAwqGemm, 4096, 6144, 128, false, false, 0}, {1, 2});
    check_int4({WeightFormat::kAwqGemm, 14336, 4096, 128, false, false, 0}, {1, 4});
    check_int4({WeightFormat::kAwqGemm, 2560, 512, 256, false, false, 0}, {1, 2});
    check_int4({WeightFormat::kAwqGemm, 1408, 2048, 64, false, false, 0}, {1, 2});
    check_int4({WeightFormat::kGptq, 2048, 512, 32, false, true, 1}, {1, 4});
    check_int4({WeightFormat::kGptq, 2048, 512, 128, false, true, 1}, {1, 4});
  }
  // The same on a backend made with `o`.
  void check_decode_gemv_layers_with(const CudaBackendOptions& o) {
    gpu_ = make_gpu(o);
    ASSERT_NE(gpu_, nullptr);
    check_decode_gemv_layers();
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

// The decode GEMV with its half-ring reload (CudaBackendOptions::gemv_prefetch):
// warps with 4 tiles, with whole rings and with a remainder after the ring.
TEST_F(CudaLinear, AwqWithGemvPrefetch) {
  CudaBackendOptions o;
  o.gemv_prefetch = true;
  check_decode_gemv_layers_with(o);
}

// The decode GEMV loading each round's scales and zeros after its weights
// (CudaBackendOptions::gemv_scale_ahead off; on by default, which every other
// test takes): whole-tile groups (128, 256), smaller groups (the per-word
// path either way), warps with a partial last round.
TEST_F(CudaLinear, AwqWithoutGemvScaleAhead) {
  CudaBackendOptions o;
  o.gemv_scale_ahead = false;
  check_decode_gemv_layers_with(o);
}

// The decode GEMV with its tiles in flight through a shared-memory ring
// (CudaBackendOptions::gemv_ring): rings of 2, 3 and 4 rounds, warps with
// fewer tiles than a round, partial last rounds, a layer (K = 14336 with
// 8 warps along K) whose ring is cut to what shared memory holds. gpu-check
// also reruns every CudaLinear test with TANDEM_CUDA_GEMV_RING=3.
TEST_F(CudaLinear, AwqWithGemvRing) {
  for (int ring : {2, 3, 4}) {
    CudaBackendOptions o;
    o.memory_bytes = size_t{2} << 30;
    o.gemv_ring = ring;
    auto g = make_cuda_backend(o);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    gpu_ = std::move(g).value();
    check_decode_gemv_layers();
    check_int4({WeightFormat::kAwqGemm, 512, 136, 32, false, false, 0}, {1, 3});
    check_int4({WeightFormat::kGptq, 1024, 264, 32, true, false, 0}, {1, 2});
  }
  // The ring on layers of at most 4 MiB only (4096 x 1024: 2 MiB, rings;
  // 14336 x 4096: 28 MiB, registers), at most 2 warps along K.
  CudaBackendOptions mixed;
  mixed.memory_bytes = size_t{2} << 30;
  mixed.gemv_ring = 3;
  mixed.gemv_ring_max_bytes = size_t{4} << 20;
  mixed.gemv_max_parts = 2;
  auto g = make_cuda_backend(mixed);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  gpu_ = std::move(g).value();
  check_int4({WeightFormat::kAwqGemm, 4096, 1024, 128, false, true, 0}, {1, 3});
  check_int4({WeightFormat::kAwqGemm, 14336, 4096, 128, false, false, 0}, {1, 4});
  for (auto [ring, parts] : {std::pair{5, 8}, std::pair{3, 0}, std::pair{3, 9}}) {
    CudaBackendOptions bad;
    bad.gemv_ring = ring;
    bad.gemv_max_parts = parts;
    EXPECT_FALSE(make_cuda_backend(bad).ok()) << ring << " " << parts;
  }
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

// The tensor-core int4 GEMM (16 < M <= 256; 257 rows dequantize): group sizes
// 32/64/128 and 256 (a group spans tiles), an odd number of groups (the zero
// point is the odd half of its aligned pair), N = 136 (one 256-column block,
// 17 of 32 tiles used), split-K (few column blocks, long K), bias, large x.
TEST_F(CudaLinear, AwqTensorCoreGemm) {
  for (int G : {32, 64, 128}) check_int4({WeightFormat::kAwqGemm, 1024, 136, G, false, G == 64, 0}, kTensorCoreRows);
  check_int4({WeightFormat::kAwqGemm, 4096, 1024, 128, false, true, 0}, kTensorCoreRows);
  check_int4({WeightFormat::kAwqGemm, 14336, 512, 128, false, false, 0}, {17, 64, 65, 256});
  check_int4({WeightFormat::kAwqGemm, 384, 136, 128, false, true, 0}, {17, 100, 256, 257});
  check_int4({WeightFormat::kAwqGemm, 1024, 264, 256, false, false, 0}, {33, 130});
  check_int4({WeightFormat::kAwqGemm, 4096, 2048, 64, false, false, 0}, {40, 256});
  check_int4({WeightFormat::kAwqGemm, 4096, 256, 128, false, false, 0, 2000.f}, {32, 256});
}

TEST_F(CudaLinear, GptqTensorCoreGemm) {
  for (int offset : {0, 1}) {
    for (bool act_order : {false, true}) {
      for (int G : {32, 128}) {
        check_int4({WeightFormat::kGptq, 1024, 264, G, act_order, offset == 0, offset}, {17, 32, 65, 256});
      }
    }
  }
  check_int4({WeightFormat::kGptq, 4096, 4096, 128, true, false, 1}, {48, 200});
}

// bf16 activations on every int4 path: GEMVs, the tensor-core GEMM, dequantize.
TEST_F(CudaLinear, Int4Bf16) {
  CudaBackendOptions o;
  o.activation_dtype = DType::kBF16;
  gpu_ = make_gpu(o);
  ASSERT_NE(gpu_, nullptr);
  for (int G : {32, 64, 128}) check_int4({WeightFormat::kAwqGemm, 1024, 136, G, false, true, 0}, {1, 4, 16, 17, 64, 257});
  check_int4({WeightFormat::kAwqGemm, 4096, 1024, 128, false, false, 0}, {1, 32, 100, 256});
  check_int4({WeightFormat::kGptq, 1024, 264, 128, true, true, 1}, {3, 24, 200});
  check_int4({WeightFormat::kAwqGemm, 384, 136, 128, false, false, 0}, {31});
}

// The tensor-core GEMM against the dequantize + cuBLASLt path it replaces (a
// backend with int4_tc_gemm off): the same dequantized weights and fp32 sums in
// another order. Its split-K reduction has a fixed order: reruns are bit-identical.
TEST_F(CudaLinear, TensorCoreGemmMatchesDequantPath) {
  CudaBackendOptions o;
  o.int4_tc_gemm = false;
  auto deq = make_gpu(o);
  ASSERT_NE(deq, nullptr);
  for (const Int4Case& c : {Int4Case{WeightFormat::kAwqGemm, 4096, 1024, 128, false, true, 0},
                            Int4Case{WeightFormat::kAwqGemm, 1024, 136, 32, false, false, 0},
                            Int4Case{WeightFormat::kGptq, 2048, 520, 64, true, true, 1}}) {
    const auto host = make_int4(c);
    auto lt = gpu_->prepare_linear(host->w);
    auto ld = deq->prepare_linear(host->w);
    ASSERT_TRUE(lt.ok() && ld.ok());
    for (int M : {17, 32, 64, 100, 256}) {
      const auto x = random(int64_t{M} * c.K, -2, 2);
      const std::string what = std::string(weight_format_name(c.format)) + " K=" + std::to_string(c.K) +
                               " N=" + std::to_string(c.N) + " M=" + std::to_string(M);
      for (DType yt : {act(), DType::kF32}) {
        auto xt = put(*gpu_, x, act(), {M, c.K});
        auto xd = put(*deq, x, act(), {M, c.K});
        auto yt1 = out(*gpu_, yt, {M, c.N});
        auto yt2 = out(*gpu_, yt, {M, c.N});
        auto yd = out(*deq, yt, {M, c.N});
        gpu_->linear(xt.view, **lt, yt1.view);
        gpu_->linear(xt.view, **lt, yt2.view);
        deq->linear(xd.view, **ld, yd.view);
        const auto tc = get(*gpu_, yt1.view);
        EXPECT_LT(rel_err(tc, get(*deq, yd.view)), yt == DType::kF32 ? 1e-4 : 2e-3) << what << " " << dtype_name(yt);
        EXPECT_EQ(tc, get(*gpu_, yt2.view)) << what << " " << dtype_name(yt) << ": reruns differ";
      }
    }
  }
}

// A decode-sized int4 linear (M = 32, split-K partials in the backend's scratch)
// captured once into a CUDA graph and replayed on new inputs in the same buffers.
TEST_F(CudaLinear, TensorCoreGemmReplaysInGraph) {
  ASSERT_TRUE(gpu_->supports_graphs());
  const Int4Case c{WeightFormat::kAwqGemm, 4096, 1024, 128, false, true, 0};
  const int M = 32;
  const auto host = make_int4(c);
  auto lc = cpu_->prepare_linear(host->w);
  auto lg = gpu_->prepare_linear(host->w);
  ASSERT_TRUE(lc.ok() && lg.ok());
  auto xg = out(*gpu_, act(), {M, c.K});
  auto yg = out(*gpu_, act(), {M, c.N});
  auto step = [&]() {  // new x in place; the CPU's result for it
    const auto x = random(int64_t{M} * c.K, -2, 2);
    std::vector<uint8_t> raw(xg.view.nbytes());
    for (size_t i = 0; i < x.size(); ++i) store_from_f32(raw.data(), act(), static_cast<int64_t>(i), x[i]);
    gpu_->copy_host_to_device(xg.view.data, raw.data(), raw.size());
    auto xc = put(*cpu_, x, DType::kF32, {M, c.K});
    auto yc = out(*cpu_, DType::kF32, {M, c.N});
    cpu_->linear(xc.view, **lc, yc.view);
    return get(*cpu_, yc.view);
  };
  // Run once directly (sizes the scratch), then capture and replay.
  auto want = step();
  gpu_->linear(xg.view, **lg, yg.view);
  EXPECT_LT(rel_err(get(*gpu_, yg.view), want), 3e-3);
  ASSERT_TRUE(gpu_->begin_capture().ok());
  gpu_->linear(xg.view, **lg, yg.view);
  auto graph = gpu_->end_capture();
  ASSERT_TRUE(graph.ok()) << graph.status().to_string();
  const std::vector<float> nan(yg.view.numel(), std::nanf(""));
  auto poison = put(*gpu_, nan, act(), {M, c.N});
  for (int i = 0; i < 3; ++i) {
    want = step();
    gpu_->copy_device_to_device(yg.view.data, poison.view.data, yg.view.nbytes());  // the replay must write all of y
    ASSERT_TRUE(gpu_->replay(**graph));
    EXPECT_LT(rel_err(get(*gpu_, yg.view), want), 3e-3) << "replay " << i;
  }
}

// The fused RMSNorm prologue and residual epilogue (Backend::linear_fused,
// CUDA variant 2 at M <= 4) against the CPU's separate rms_norm, linear and add.
TEST_F(CudaLinear, FusedNormAndResidual) {
  const char* variant = std::getenv("TANDEM_CUDA_KERNEL_VARIANT");
  if (variant != nullptr && std::atoi(variant) != 2) {
    // Variants 0 and 1 take no fusion: the backend must say so (the model then runs the separate ops).
    const auto host = make_int4({WeightFormat::kAwqGemm, 4096, 1024, 128, false, false, 0});
    auto lg = gpu_->prepare_linear(host->w);
    ASSERT_TRUE(lg.ok());
    auto x1 = put(*gpu_, random(4096), act(), {1, 4096});
    EXPECT_FALSE(gpu_->linear_fuses(x1.view, **lg, LinearFusion{}));
    return;
  }
  for (const Int4Case& c : {Int4Case{WeightFormat::kAwqGemm, 4096, 1024, 128, false, true, 0},
                            Int4Case{WeightFormat::kAwqGemm, 1024, 6144, 64, false, false, 0},
                            Int4Case{WeightFormat::kGptq, 2048, 512, 128, false, false, 1}}) {
    const auto host = make_int4(c);
    auto lc = cpu_->prepare_linear(host->w);
    auto lg = gpu_->prepare_linear(host->w);
    ASSERT_TRUE(lc.ok() && lg.ok());
    const auto norm_w = random(c.K, 0.5f, 1.5f);
    const float eps = 1e-5f;
    for (int M : {1, 2, 4}) {
      const auto x = random(int64_t{M} * c.K, -3, 3);
      const auto res = random(int64_t{M} * c.N, -2, 2);
      // Reference: rms_norm on the CPU, then the linear; the residual added on the host.
      const auto normed_ref = get(*cpu_, cpu_normed_linear(**lc, x, norm_w, eps, M, c.K, c.N).view);
      auto xc = put(*cpu_, x, DType::kF32, {M, c.K});
      auto oc = out(*cpu_, DType::kF32, {M, c.N});
      cpu_->linear(xc.view, **lc, oc.view);
      auto plus_res_ref = get(*cpu_, oc.view);
      for (size_t i = 0; i < plus_res_ref.size(); ++i) plus_res_ref[i] += res[i];

      auto xg = put(*gpu_, x, act(), {M, c.K});
      auto wg = put(*gpu_, norm_w, DType::kF32, {c.K});
      auto rg = put(*gpu_, res, act(), {M, c.N});
      auto og = out(*gpu_, act(), {M, c.N});
      const LinearFusion norm{wg.view, eps, {}}, residual{{}, 0.f, rg.view};
      const std::string what = std::string(weight_format_name(c.format)) + " K=" + std::to_string(c.K) +
                               " N=" + std::to_string(c.N) + " M=" + std::to_string(M);
      ASSERT_TRUE(gpu_->linear_fuses(xg.view, **lg, norm)) << what;
      ASSERT_TRUE(gpu_->linear_fuses(xg.view, **lg, residual)) << what;
      gpu_->linear_fused(xg.view, **lg, og.view, norm);
      EXPECT_LT(rel_err(get(*gpu_, og.view), normed_ref), 3e-3) << what << " (norm)";
      gpu_->linear_fused(xg.view, **lg, rg.view, residual);  // in place, as the model adds into its residual
      EXPECT_LT(rel_err(get(*gpu_, rg.view), plus_res_ref), 3e-3) << what << " (residual)";
    }
    // What the kernels cannot fuse is refused, not run: 5 rows, a norm weight of the wrong size.
    auto x5 = put(*gpu_, random(5 * int64_t{c.K}), act(), {5, c.K});
    auto w_bad = put(*gpu_, random(c.K + 8), DType::kF32, {c.K + 8});
    EXPECT_FALSE(gpu_->linear_fuses(x5.view, **lg, LinearFusion{}));
    auto x1 = put(*gpu_, random(c.K), act(), {1, c.K});
    EXPECT_FALSE(gpu_->linear_fuses(x1.view, **lg, LinearFusion{w_bad.view, eps, {}}));
  }
  // Act-order layers (their input is permuted first) are not fused.
  const auto ao = make_int4({WeightFormat::kGptq, 1024, 264, 32, true, false, 0});
  auto lg = gpu_->prepare_linear(ao->w);
  ASSERT_TRUE(lg.ok());
  auto x1 = put(*gpu_, random(1024), act(), {1, 1024});
  EXPECT_FALSE(gpu_->linear_fuses(x1.view, **lg, LinearFusion{}));
}

// The backend's default fuses a norm into the GEMVs of inputs up to 4096 wide
// (CudaBackendOptions::fused_norms_max_width) and refuses it above, where the
// model then runs its separate norm kernels; a residual add fuses at any
// width. fused_norms off refuses both.
TEST_F(CudaLinear, FusedNormsFollowTheWidthRule) {
  const char* variant = std::getenv("TANDEM_CUDA_KERNEL_VARIANT");
  if (variant != nullptr && std::atoi(variant) != 2) GTEST_SKIP() << "variant 2 only";
  CudaBackendOptions defaults;
  defaults.memory_bytes = size_t{1} << 30;
  auto def = make_cuda_backend(defaults);
  CudaBackendOptions none = defaults;
  none.fused_norms = false;
  auto off = make_cuda_backend(none);
  ASSERT_TRUE(def.ok() && off.ok());
  for (const int K : {4096, 7168}) {
    const auto host = make_int4({WeightFormat::kAwqGemm, K, 512, 128, false, false, 0});
    for (Backend* be : {def->get(), off->get()}) {
      auto lg = be->prepare_linear(host->w);
      ASSERT_TRUE(lg.ok());
      auto x = put(*be, random(K), defaults.activation_dtype, {1, K});
      auto w = put(*be, random(K, 0.5f, 1.5f), DType::kF32, {K});
      auto res = put(*be, random(512), defaults.activation_dtype, {1, 512});
      const bool on = be == def->get();
      EXPECT_EQ(be->linear_fuses(x.view, **lg, LinearFusion{w.view, 1e-5f, {}}), on && K <= 4096) << K;
      EXPECT_EQ(be->linear_fuses(x.view, **lg, LinearFusion{{}, 0.f, res.view}), on) << K;
    }
  }
}

// SwiGLU in the epilogue of a [gate | up] layer (with the fused norm, as the
// model calls it): the same values as the unfused GEMV then swiglu() on the GPU,
// and the CPU reference within fp16 rounding. Odd numbers of gate tiles leave
// the last block half idle.
TEST_F(CudaLinear, FusedSwiglu) {
  const char* variant = std::getenv("TANDEM_CUDA_KERNEL_VARIANT");
  const bool v2 = variant == nullptr || std::atoi(variant) == 2;
  for (const Int4Case& c : {Int4Case{WeightFormat::kAwqGemm, 1024, 2 * 2816, 128, false, false, 0},
                            Int4Case{WeightFormat::kAwqGemm, 512, 2 * 2056, 64, false, true, 0},
                            Int4Case{WeightFormat::kGptq, 2048, 2 * 3072, 128, false, true, 1}}) {
    const auto host = make_int4(c);
    auto lc = cpu_->prepare_linear(host->w);
    auto lg = gpu_->prepare_linear(host->w);
    ASSERT_TRUE(lc.ok() && lg.ok());
    const int I = c.N / 2;
    const auto norm_w = random(c.K, 0.5f, 1.5f);
    const float eps = 1e-5f;
    for (int M : {1, 3, 4}) {
      const std::string what = std::string(weight_format_name(c.format)) + " K=" + std::to_string(c.K) +
                               " N=" + std::to_string(c.N) + " M=" + std::to_string(M);
      const auto x = random(int64_t{M} * c.K, -3, 3);
      auto xg = put(*gpu_, x, act(), {M, c.K});
      auto wg = put(*gpu_, norm_w, DType::kF32, {c.K});
      const LinearFusion fused{wg.view, eps, {}, true};
      if (!v2) {  // variants 0 and 1 fuse nothing
        EXPECT_FALSE(gpu_->linear_fuses(xg.view, **lg, fused)) << what;
        continue;
      }
      ASSERT_TRUE(gpu_->linear_fuses(xg.view, **lg, fused)) << what;
      auto og = out(*gpu_, act(), {M, I});
      gpu_->linear_fused(xg.view, **lg, og.view, fused);
      const auto got = get(*gpu_, og.view);
      // The unfused GPU path: the normed GEMV into [M, N], then swiglu().
      auto gu = out(*gpu_, act(), {M, c.N});
      auto sg = out(*gpu_, act(), {M, I});
      gpu_->linear_fused(xg.view, **lg, gu.view, LinearFusion{wg.view, eps, {}});
      gpu_->swiglu(gu.view, sg.view);
      EXPECT_LT(rel_err(got, get(*gpu_, sg.view)), 1e-4) << what << " (vs unfused GPU)";
      // CPU: rms_norm, linear, swiglu in fp32.
      auto guc = cpu_normed_linear(**lc, x, norm_w, eps, M, c.K, c.N);
      auto sc = out(*cpu_, DType::kF32, {M, I});
      cpu_->swiglu(guc.view, sc.view);
      EXPECT_LT(rel_err(got, get(*cpu_, sc.view)), 5e-3) << what << " (vs CPU)";
    }
  }
  // A residual cannot ride with SwiGLU; a narrow layer (too few blocks) is not fused.
  const auto host = make_int4({WeightFormat::kAwqGemm, 1024, 2 * 2816, 128, false, false, 0});
  auto lg = gpu_->prepare_linear(host->w);
  ASSERT_TRUE(lg.ok());
  auto x1 = put(*gpu_, random(1024), act(), {1, 1024});
  auto r1 = put(*gpu_, random(2 * 2816), act(), {1, 2 * 2816});
  EXPECT_FALSE(gpu_->linear_fuses(x1.view, **lg, LinearFusion{{}, 0.f, r1.view, true}));
  const auto narrow = make_int4({WeightFormat::kAwqGemm, 1024, 2 * 512, 128, false, false, 0});
  auto ln = gpu_->prepare_linear(narrow->w);
  ASSERT_TRUE(ln.ok());
  EXPECT_FALSE(gpu_->linear_fuses(x1.view, **ln, LinearFusion{{}, 0.f, {}, true}));
}

// Scratch that cannot grow inside the arena is an exception the model runner
// turns into a failed step (BackendOutOfMemory), not an abort; the backend
// stays usable.
TEST_F(CudaLinear, ScratchThatCannotGrowThrows) {
  CudaBackendOptions o;
  o.memory_bytes = size_t{44} << 20;  // the 32 MiB cuBLASLt workspace, the layer, little else
  o.int4_tc_gemm = false;
  auto small = make_cuda_backend(o);
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  Backend& b = **small;
  const auto host = make_int4({WeightFormat::kAwqGemm, 4096, 2048, 128, false, false, 0});
  auto lg = b.prepare_linear(host->w);
  ASSERT_TRUE(lg.ok()) << lg.status().to_string();
  auto x = put(b, random(64 * 4096), act(), {64, 4096});
  auto y = out(b, act(), {64, 2048});
  // M = 64 without the tensor-core GEMM dequantizes the layer to fp16 first:
  // 16 MiB of scratch that is not there.
  EXPECT_THROW(b.linear(x.view, **lg, y.view), BackendOutOfMemory);
  auto x1 = put(b, random(4096), act(), {1, 4096});
  auto y1 = out(b, act(), {1, 2048});
  b.linear(x1.view, **lg, y1.view);  // the one-row GEMV needs no such scratch
  for (float v : get(b, y1.view)) ASSERT_TRUE(std::isfinite(v));
}

// With the tensor-core GEMM (the default) the same M = 64 layer fits: its
// split-K partials are 4 MiB, not 16 (and so it really took that path).
TEST_F(CudaLinear, TensorCoreGemmNeedsNoDequantScratch) {
  CudaBackendOptions o;
  o.memory_bytes = size_t{44} << 20;
  auto small = make_cuda_backend(o);
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  Backend& b = **small;
  const auto host = make_int4({WeightFormat::kAwqGemm, 4096, 2048, 128, false, false, 0});
  auto lg = b.prepare_linear(host->w);
  auto lc = cpu_->prepare_linear(host->w);
  ASSERT_TRUE(lg.ok() && lc.ok());
  const auto xv = random(64 * 4096);
  auto x = put(b, xv, act(), {64, 4096});
  auto y = out(b, act(), {64, 2048});
  b.linear(x.view, **lg, y.view);
  auto xc = put(*cpu_, xv, DType::kF32, {64, 4096});
  auto yc = out(*cpu_, DType::kF32, {64, 2048});
  cpu_->linear(xc.view, **lc, yc.view);
  EXPECT_LT(rel_err(get(b, y.view), get(*cpu_, yc.view)), 3e-3);
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

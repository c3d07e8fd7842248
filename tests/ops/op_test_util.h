// Shared pieces of the op tests: every CUDA op against the CPU backend (the
// reference) on fresh random inputs, by normalized error ||out - ref|| / ||ref||.
// GPU outputs are poisoned with NaN first, so unwritten elements fail.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/registry.h"

namespace tandem::optest {

// Inputs are drawn at fp16 precision so both backends see identical values.
inline float round_to(DType t, float v) {
  if (t == DType::kF16) return f16_to_f32(f32_to_f16(v));
  if (t == DType::kBF16) return bf16_to_f32(f32_to_bf16(v));
  return v;
}

class OpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: CUDA op tests not run";
    cpu_ = make_cpu_backend(2);
    CudaBackendOptions o;
    o.memory_bytes = size_t{3} << 30;
    // The fused GEMV prologues and epilogues at every width (the model fuses
    // norms only up to CudaBackendOptions::fused_norms_max_width).
    o.fused_norms = true;
    o.fused_norms_max_width = std::numeric_limits<int>::max();
    // scripts/gpu-check runs the op tests once per kernel variant.
    if (const char* v = std::getenv("TANDEM_CUDA_KERNEL_VARIANT")) o.kernel_variant = std::atoi(v);
    if (const char* v = std::getenv("TANDEM_CUDA_PDL")) o.pdl = std::atoi(v) != 0;
    if (const char* v = std::getenv("TANDEM_CUDA_GEMV_RING")) o.gemv_ring = std::atoi(v);  // gpu-check reruns CudaLinear.*
    if (const char* v = std::getenv("TANDEM_CUDA_GEMV_SCALE_AHEAD")) o.gemv_scale_ahead = std::atoi(v) != 0;
    auto g = make_cuda_backend(o);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    gpu_ = std::move(g).value();
    rng_.seed(std::random_device{}());
  }

  DType act() const { return gpu_->activation_dtype(); }

  std::vector<float> random(int64_t n, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = round_to(act(), d(rng_));
    return v;
  }
  int rand_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // A tensor on backend `b` holding `host` converted to `dtype`.
  DeviceTensor put(Backend& b, const std::vector<float>& host, DType dtype, std::initializer_list<int64_t> shape) {
    TensorView hv(const_cast<float*>(host.data()), DType::kF32, shape);
    EXPECT_EQ(hv.numel(), static_cast<int64_t>(host.size()));
    auto t = b.upload(hv, dtype);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return std::move(t).value();
  }
  DeviceTensor put_i32(Backend& b, const std::vector<int32_t>& host, std::initializer_list<int64_t> shape) {
    TensorView hv(const_cast<int32_t*>(host.data()), DType::kI32, shape);
    auto t = b.upload(hv, DType::kI32);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    return std::move(t).value();
  }
  // An output tensor; on the GPU filled with NaN.
  DeviceTensor out(Backend& b, DType dtype, std::initializer_list<int64_t> shape) {
    TensorView s(nullptr, dtype, shape);
    std::vector<float> nan(s.numel(), std::nanf(""));
    return put(b, nan, dtype, shape);
  }
  static RopeParams rope_params(const TensorView& q, const TensorView& k, const TensorView& positions,
                                const TensorView& inv_freq, int rotary_dim) {
    RopeParams p;
    p.q = q;
    p.k = k;
    p.positions = positions;
    p.inv_freq = inv_freq;
    p.rotary_dim = rotary_dim;
    return p;
  }

  std::vector<float> get(Backend& b, const TensorView& t) {
    b.synchronize();
    std::vector<uint8_t> raw(t.nbytes());
    b.copy_device_to_host(raw.data(), t.data, raw.size());
    std::vector<float> v(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = load_as_f32(raw.data(), t.dtype, i);
    return v;
  }

  std::unique_ptr<Backend> cpu_, gpu_;
  std::mt19937 rng_;
};

// ||out - ref|| / ||ref||; infinity when out has a NaN/inf or sizes differ.
inline double rel_err(const std::vector<float>& out, const std::vector<float>& ref) {
  if (out.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    const double d = static_cast<double>(out[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

}  // namespace tandem::optest

// AWQ against RTN on a synthetic layer whose inputs have a few salient channels,
// plus the group quantizer's definition (AutoAWQ's asymmetric scheme).
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "backend/dtype.h"
#include "quant/int4_group.h"

namespace tandem::quant {
namespace {

TEST(Int4Group, RoundTripsRepresentableValues) {
  // One group whose values are exactly (q - z) * s for s = 0.5, z = 3: RTN is exact.
  const int64_t n = 1, k = 16;
  std::vector<float> w(k);
  for (int i = 0; i < k; ++i) w[i] = (i - 3) * 0.5f;  // q = 0..15
  QuantizedLinear ql = quantize_rtn(w, n, k, 16);
  EXPECT_EQ(ql.zeros[0], 3);
  EXPECT_FLOAT_EQ(f16_to_f32(ql.scales[0]), 0.5f);
  for (int i = 0; i < k; ++i) EXPECT_EQ(ql.q[i], i) << i;
  EXPECT_EQ(dequantize(ql), w);
}

TEST(Int4Group, ClipShrinksTheRange) {
  std::vector<float> w = {-8, -1, 0, 1, 2, 3, 4, 7};
  std::vector<float> clip = {0.5f};
  QuantizedLinear ql = quantize_rtn(w, 1, 8, 8, &clip);
  // Range [-4, 3.5] -> scale 0.5 (7.5 / 15), and -8 saturates at q = 0.
  EXPECT_FLOAT_EQ(f16_to_f32(ql.scales[0]), 0.5f);
  std::vector<float> hat = dequantize(ql);
  EXPECT_FLOAT_EQ(hat[0], -4.0f);
  EXPECT_FLOAT_EQ(hat[7], 3.5f);
}

TEST(Awq, BeatsRtnWhenAFewInputChannelsAreSalient) {
  const int64_t n = 64, k = 256, t = 256;
  const int group = 128;
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(n * k), x(t * k);
  for (auto& v : w) v = normal(rng);
  // Channels 5, 77, 130 and 200 carry 50x larger activations: their weights matter most.
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < k; ++j) {
      float scale = (j == 5 || j == 77 || j == 130 || j == 200) ? 50.0f : 1.0f;
      x[i * k + j] = normal(rng) * scale;
    }
  ScaleSearchResult r = search_scales(x, t, k, {&w}, {n}, group);
  EXPECT_GT(r.alpha, 0.0f);
  EXPECT_LT(r.error, 0.8 * r.error_unscaled) << "AWQ should cut the output error well below RTN's";

  // The same through explicit fake quantization: RTN vs scaled weights fed X / s.
  double err_rtn = output_mse(x, t, k, w, fake_quantize(w, n, k, group), n);
  std::vector<float> scaled = w;
  for (int64_t row = 0; row < n; ++row)
    for (int64_t j = 0; j < k; ++j) scaled[row * k + j] *= r.scales[j];
  std::vector<float> hat = fake_quantize(scaled, n, k, group);
  for (int64_t row = 0; row < n; ++row)
    for (int64_t j = 0; j < k; ++j) hat[row * k + j] /= r.scales[j];
  double err_awq = output_mse(x, t, k, w, hat, n);
  EXPECT_NEAR(err_rtn, r.error_unscaled, 1e-6 * err_rtn);
  EXPECT_LT(err_awq, err_rtn);

  // Clipping minimizes each group's own error; cross-group terms may move the
  // total a little, never by much.
  std::vector<float> clip = search_clip(x, t, k, w, n, group);
  double err_clip = output_mse(x, t, k, w, fake_quantize(w, n, k, group, &clip), n);
  EXPECT_LT(err_clip, err_rtn * 1.05);
}

}  // namespace
}  // namespace tandem::quant

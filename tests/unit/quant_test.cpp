// The int4 unpackers against FORMATS.md, with packed words computed by hand.
#include "model/quant.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

LinearWeight awq_layer(std::vector<int32_t>& qw, std::vector<int32_t>& qz, std::vector<uint16_t>& sc, int k, int n,
                       int g) {
  LinearWeight w;
  w.format = WeightFormat::kAwqGemm;
  w.name = "awq";
  w.num_out = n;
  w.num_in = k;
  w.group_size = g;
  w.qweight = TensorView(qw.data(), DType::kI32, {k, n / 8});
  w.qzeros = TensorView(qz.data(), DType::kI32, {k / g, n / 8});
  w.scales = TensorView(sc.data(), DType::kF16, {k / g, n});
  return w;
}

TEST(Awq, HandComputedWord) {
  // Columns 0..7 hold 0..7. Nibble i holds column ORDER[i] = 0,2,4,6,1,3,5,7,
  // so reading nibbles from the low end gives 0,2,4,6,1,3,5,7: 0x75316420.
  std::vector<int32_t> qw = {0x75316420};
  // Zeros: column j holds 15 - j -> nibbles 15,13,11,9,14,12,10,8 -> 0x8ace9bdf.
  std::vector<int32_t> qz = {static_cast<int32_t>(0x8ace9bdfu)};
  std::vector<uint16_t> sc(8, f32_to_f16(0.5f));
  sc[3] = f32_to_f16(2.0f);
  LinearWeight w = awq_layer(qw, qz, sc, 1, 8, 1);
  for (int col = 0; col < 8; ++col) {
    EXPECT_EQ(awq_q(w, 0, col), col);
    EXPECT_EQ(awq_zero(w, 0, col), 15 - col);
  }
  // The packer reproduces the hand-computed words.
  std::vector<uint8_t> vals = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(pack_awq(vals, 1, 8)[0], 0x75316420);
  std::vector<uint8_t> zeros = {15, 14, 13, 12, 11, 10, 9, 8};
  EXPECT_EQ(static_cast<uint32_t>(pack_awq(zeros, 1, 8)[0]), 0x8ace9bdfu);
  // W = (q - z) * s; laid out [N, K] = [8, 1].
  const auto d = dequantize_reference(w);
  EXPECT_FLOAT_EQ(d[0], (0 - 15) * 0.5f);
  EXPECT_FLOAT_EQ(d[3], (3 - 12) * 2.0f);
  EXPECT_FLOAT_EQ(d[7], (7 - 8) * 0.5f);
}

TEST(Awq, GroupsIndexByRow) {
  // K = 4 rows, G = 2: rows 0-1 use zero/scale row 0, rows 2-3 row 1.
  std::vector<int32_t> qw = {0x11111111, 0x22222222, 0x33333333, 0x44444444};
  std::vector<int32_t> qz = {0x00000000, 0x11111111};
  std::vector<uint16_t> sc(16);
  for (int i = 0; i < 8; ++i) sc[i] = f32_to_f16(1.0f), sc[8 + i] = f32_to_f16(0.25f);
  LinearWeight w = awq_layer(qw, qz, sc, 4, 8, 2);
  ASSERT_TRUE(validate_linear(w).ok());
  const auto d = dequantize_reference(w);  // [8, 4]
  EXPECT_FLOAT_EQ(d[0 * 4 + 0], 1.0f);
  EXPECT_FLOAT_EQ(d[0 * 4 + 1], 2.0f);
  EXPECT_FLOAT_EQ(d[5 * 4 + 2], (3 - 1) * 0.25f);
  EXPECT_FLOAT_EQ(d[5 * 4 + 3], (4 - 1) * 0.25f);
}

TEST(Gptq, HandComputedWordsAndV1Zeros) {
  // K = 8, N = 8. Column 0's word packs k = 0..7 sequentially: values 1..8
  // (8 wraps to nibble 8) -> 0x87654321. Other columns: all 9 (0x99999999).
  std::vector<int32_t> qw(8, static_cast<int32_t>(0x99999999u));
  qw[0] = static_cast<int32_t>(0x87654321u);
  // Symmetric v1: every zero stored as 7 (0x77777777) means zero 8.
  std::vector<int32_t> qz = {0x77777777};
  std::vector<uint16_t> sc(8, f32_to_f16(0.125f));
  LinearWeight w;
  w.format = WeightFormat::kGptq;
  w.name = "gptq";
  w.num_out = 8;
  w.num_in = 8;
  w.group_size = 8;
  w.zero_offset = 1;
  w.qweight = TensorView(qw.data(), DType::kI32, {1, 8});
  w.qzeros = TensorView(qz.data(), DType::kI32, {1, 1});
  w.scales = TensorView(sc.data(), DType::kF16, {1, 8});
  ASSERT_TRUE(validate_linear(w).ok());
  for (int k = 0; k < 8; ++k) EXPECT_EQ(gptq_q(w, k, 0), k + 1);
  EXPECT_EQ(gptq_zero(w, 0, 5), 7);
  const auto d = dequantize_reference(w);  // [N, K]
  EXPECT_FLOAT_EQ(d[0 * 8 + 0], (1 - 8) * 0.125f);
  EXPECT_FLOAT_EQ(d[0 * 8 + 7], (8 - 8) * 0.125f);
  EXPECT_FLOAT_EQ(d[3 * 8 + 4], (9 - 8) * 0.125f);
  // v2 stores the exact zero: the same words mean zero 7.
  w.zero_offset = 0;
  EXPECT_FLOAT_EQ(dequantize_reference(w)[0], (1 - 7) * 0.125f);
  std::vector<uint8_t> q(64, 9);
  for (int k = 0; k < 8; ++k) q[k * 8 + 0] = static_cast<uint8_t>(k + 1);
  EXPECT_EQ(pack_gptq_qweight(q, 8, 8), qw);
  // qzeros pack along N sequentially: columns 0..7 = 0..7 -> 0x76543210.
  std::vector<uint8_t> z = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(pack_gptq_qzeros(z, 1, 8)[0], 0x76543210);
}

TEST(Gptq, ActOrderUsesGIdx) {
  // K = 16, G = 8, two groups; g_idx scatters rows.
  const int k = 16, n = 8;
  std::vector<uint8_t> q(k * n), zeros(2 * n);
  for (int i = 0; i < k * n; ++i) q[i] = static_cast<uint8_t>(i % 16);
  for (int i = 0; i < 2 * n; ++i) zeros[i] = static_cast<uint8_t>(3 + i % 5);
  auto qw = pack_gptq_qweight(q, k, n);
  auto qz = pack_gptq_qzeros(zeros, 2, n);
  std::vector<int32_t> g_idx = {1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0};
  std::vector<uint16_t> sc(2 * n);
  for (int i = 0; i < 2 * n; ++i) sc[i] = f32_to_f16(0.5f + 0.25f * i);
  LinearWeight w;
  w.format = WeightFormat::kGptq;
  w.name = "gptq";
  w.num_out = n;
  w.num_in = k;
  w.group_size = 8;
  w.qweight = TensorView(qw.data(), DType::kI32, {k / 8, n});
  w.qzeros = TensorView(qz.data(), DType::kI32, {2, n / 8});
  w.scales = TensorView(sc.data(), DType::kF16, {2, n});
  w.g_idx = TensorView(g_idx.data(), DType::kI32, {k});
  ASSERT_TRUE(validate_linear(w).ok());
  const auto d = dequantize_reference(w);
  for (int kk = 0; kk < k; ++kk)
    for (int col = 0; col < n; ++col) {
      const int g = g_idx[kk];
      EXPECT_FLOAT_EQ(d[col * k + kk], (q[kk * n + col] - zeros[g * n + col]) * f16_to_f32(sc[g * n + col]));
    }
  g_idx[3] = 2;  // outside [0, 2)
  Status s = validate_linear(w);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("g_idx[3] = 2"), std::string::npos) << s.message();
}

TEST(Quant, ValidateNamesShapes) {
  std::vector<int32_t> qw(4), qz(1);
  std::vector<uint16_t> sc(8);
  LinearWeight w = awq_layer(qw, qz, sc, 4, 8, 4);
  w.name = "model.layers.0.mlp.up_proj";
  w.qzeros.shape[0] = 2;
  Status s = validate_linear(w);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.layers.0.mlp.up_proj"), std::string::npos);
  EXPECT_NE(s.message().find("qzeros is I32 [2, 1], expected I32 [1, 1]"), std::string::npos) << s.message();
}

TEST(DType, HalfConversions) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(f32_to_f16(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), 5.960464477539063e-08f);
  EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  for (uint32_t h = 0; h < 0x7c00; ++h) ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_FLOAT_EQ(bf16_to_f32(0x4049), 3.140625f);
  EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);  // tie rounds to even
}

}  // namespace
}  // namespace tandem

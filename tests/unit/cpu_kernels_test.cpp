// The CPU backend's multi-row dot kernels against its one-row kernels: bitwise
// equal on every row whatever the number of rows (the batch invariance of the
// default CPU linear rests on this), for every weight format and odd lengths.
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/kernels.h"
#include "backend/dtype.h"

namespace tandem::cpu {
namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

class RowKernels : public ::testing::TestWithParam<bool> {};

TEST_P(RowKernels, EqualOneRowKernelsBitwise) {
  const Kernels k = select_kernels(GetParam());
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int kMaxRows = 11;
  for (int64_t n : {1, 5, 8, 9, 15, 16, 17, 24, 31, 32, 40, 127, 128, 136, 1000}) {
    const int64_t ldx = n + 3;  // rows not contiguous: ldx is honoured
    std::vector<float> x(kMaxRows * ldx), wf(n);
    std::vector<uint16_t> wh(n), wb(n);
    for (float& v : x) v = normal(rng);
    for (int64_t i = 0; i < n; ++i) {
      wf[i] = normal(rng);
      wh[i] = f32_to_f16(wf[i]);
      wb[i] = f32_to_bf16(wf[i]);
    }
    for (int rows = 1; rows <= kMaxRows; ++rows) {
      std::vector<float> o32(rows), o16(rows), ob16(rows);
      k.dot_f32_rows(wf.data(), x.data(), ldx, rows, n, o32.data());
      k.dot_f16_rows(wh.data(), x.data(), ldx, rows, n, o16.data());
      k.dot_bf16_rows(wb.data(), x.data(), ldx, rows, n, ob16.data());
      for (int r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * ldx;
        EXPECT_TRUE(same_bits(o32[r], k.dot_f32(wf.data(), xr, n))) << "f32 n=" << n << " rows=" << rows << " r=" << r;
        EXPECT_TRUE(same_bits(o16[r], k.dot_f16(wh.data(), xr, n))) << "f16 n=" << n << " rows=" << rows << " r=" << r;
        EXPECT_TRUE(same_bits(ob16[r], k.dot_bf16(wb.data(), xr, n)))
            << "bf16 n=" << n << " rows=" << rows << " r=" << r;
        // And close to the exact value (the kernels compute a dot at all).
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          ref += static_cast<double>(f16_to_f32(wh[i])) * xr[i];
          mag += std::abs(static_cast<double>(f16_to_f32(wh[i])) * xr[i]);
        }
        EXPECT_NEAR(o16[r], ref, 1e-5 * mag + 1e-6) << "n=" << n;
      }
    }
  }
  for (int64_t nblocks : {1, 2, 3, 4, 7}) {
    const int64_t ldx = nblocks * kQ4Block + 32;
    std::vector<uint8_t> q(nblocks * 16);
    for (auto& b : q) b = static_cast<uint8_t>(rng());
    std::vector<float> x(kMaxRows * ldx);
    for (float& v : x) v = normal(rng);
    for (int rows = 1; rows <= kMaxRows; ++rows) {
      std::vector<float> out(rows);
      k.dot_q4_rows(q.data(), x.data(), ldx, rows, nblocks, out.data());
      for (int r = 0; r < rows; ++r) {
        const float* xr = x.data() + r * ldx;
        EXPECT_TRUE(same_bits(out[r], k.dot_q4(q.data(), xr, nblocks))) << "q4 blocks=" << nblocks << " r=" << r;
        double ref = 0;
        for (int64_t b = 0; b < nblocks; ++b)
          for (int j = 0; j < 16; ++j)
            ref += (q[b * 16 + j] & 15) * static_cast<double>(xr[b * 32 + j]) +
                   (q[b * 16 + j] >> 4) * static_cast<double>(xr[b * 32 + j + 16]);
        EXPECT_NEAR(out[r], ref, 1e-4 * (std::abs(ref) + nblocks * 32));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Simd, RowKernels, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "avx2" : "scalar"; });

}  // namespace
}  // namespace tandem::cpu

// The CPU backend's batched linear kernels: dense panels are one fused chain
// per output, int4 multi-row dots equal the one-row dot, bitwise, whatever the
// number of rows (the batch invariance of the default CPU linear rests on
// this), for every weight format and odd lengths.
#include <cmath>
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

// Dense panels: every output equals the scalar chain y = fmaf(w, x, y) over
// k from 0, bitwise, for any number of rows and panels.
TEST_P(RowKernels, PanelsAreOneFusedChainPerOutput) {
  const Kernels kern = select_kernels(GetParam());
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int kMaxRows = 9, kMaxPanels = 19;
  for (int64_t k : {1, 7, 16, 33, 128}) {
    const int64_t ldx = k + 3;  // rows not contiguous: ldx is honoured
    const int64_t welems = kMaxPanels * k * kPanelWidth;
    std::vector<float> x(kMaxRows * ldx), wf(welems);
    std::vector<uint16_t> wh(welems), wb(welems);
    for (float& v : x) v = normal(rng);
    for (int64_t i = 0; i < welems; ++i) {
      wh[i] = f32_to_f16(normal(rng));
      wb[i] = f32_to_bf16(normal(rng));
      wf[i] = normal(rng);
    }
    for (int rows : {1, 2, 3, 4, 5, 8, 9})
      for (int np : {1, 2, 3, 4, 7, 8, 9, 19}) {
        const int64_t ldo = np * kPanelWidth + 5;
        std::vector<float> o32(rows * ldo), o16(rows * ldo), ob16(rows * ldo);
        kern.panel_f32(wf.data(), k, np, x.data(), ldx, rows, o32.data(), ldo);
        kern.panel_f16(wh.data(), k, np, x.data(), ldx, rows, o16.data(), ldo);
        kern.panel_bf16(wb.data(), k, np, x.data(), ldx, rows, ob16.data(), ldo);
        for (int r = 0; r < rows; ++r)
          for (int p = 0; p < np; ++p)
            for (int j = 0; j < kPanelWidth; ++j) {
              float y32 = 0, y16 = 0, yb16 = 0;
              for (int64_t i = 0; i < k; ++i) {
                const int64_t w = (p * k + i) * kPanelWidth + j;
                const float xi = x[r * ldx + i];
                y32 = std::fma(wf[w], xi, y32);
                y16 = std::fma(f16_to_f32(wh[w]), xi, y16);
                yb16 = std::fma(bf16_to_f32(wb[w]), xi, yb16);
              }
              const int64_t o = r * ldo + p * kPanelWidth + j;
              ASSERT_TRUE(same_bits(o32[o], y32)) << "f32 k=" << k << " rows=" << rows << " panels=" << np;
              ASSERT_TRUE(same_bits(o16[o], y16)) << "f16 k=" << k << " rows=" << rows << " panels=" << np;
              ASSERT_TRUE(same_bits(ob16[o], yb16)) << "bf16 k=" << k << " rows=" << rows << " panels=" << np;
            }
      }
  }
}

// Int4 blocks for several rows equal the one-row kernel on each row, bitwise.
TEST_P(RowKernels, Q4RowsEqualOneRowKernelBitwise) {
  const Kernels k = select_kernels(GetParam());
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int kMaxRows = 11;
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

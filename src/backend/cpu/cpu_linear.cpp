#include "backend/cpu/cpu_linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/check.h"
#include "model/quant.h"

namespace tandem::cpu {
namespace {

// Below this many rows a weight-streaming GEMV wins; above, BLAS sgemm on
// dequantized row blocks.
constexpr int64_t kGemmMinRows = 16;
// Rows of W dequantized per sgemm call (bounded scratch).
constexpr int64_t kGemmBlockElems = int64_t{4} << 20;
// Activation rows per pass over the weights on the streaming path.
constexpr int64_t kRowBlock = 32;

}  // namespace

StatusOr<std::unique_ptr<CpuLinear>> CpuLinear::create(const LinearWeight& w, ThreadPool& pool) {
  RETURN_IF_ERROR(validate_linear(w));
  auto out = std::unique_ptr<CpuLinear>(new CpuLinear());
  out->n_ = w.num_out;
  out->k_ = w.num_in;
  const int64_t n = w.num_out, k = w.num_in;
  if (!w.bias.empty()) {
    out->bias_.resize(n);
    for (int64_t i = 0; i < n; ++i) out->bias_[i] = load_as_f32(w.bias.data, w.bias.dtype, i);
  }
  if (w.format == WeightFormat::kDense) {
    // [N, K] -> panels [ceil(N / 8)][K][8], the last one zero-padded.
    out->dtype_ = w.weight.dtype;
    out->num_panels_ = (n + kPanelWidth - 1) / kPanelWidth;
    const size_t es = dtype_size(w.weight.dtype);
    out->dense_.assign(static_cast<size_t>(out->num_panels_ * k * kPanelWidth) * es, 0);
    auto pack = [&](auto* dst, const auto* src) {
      pool.parallel_for(out->num_panels_, 16, [&](int64_t pb, int64_t pe) {
        for (int64_t p = pb; p < pe; ++p)
          for (int64_t j = 0; j < kPanelWidth && p * kPanelWidth + j < n; ++j) {
            const auto* row = src + (p * kPanelWidth + j) * k;
            auto* lane = dst + p * k * kPanelWidth + j;
            for (int64_t kk = 0; kk < k; ++kk) lane[kk * kPanelWidth] = row[kk];
          }
      });
    };
    if (es == 4) {
      pack(reinterpret_cast<uint32_t*>(out->dense_.data()), static_cast<const uint32_t*>(w.weight.data));
    } else {
      pack(reinterpret_cast<uint16_t*>(out->dense_.data()), static_cast<const uint16_t*>(w.weight.data));
    }
    return out;
  }
  out->quantized_ = true;
  const int64_t groups = num_groups(w);
  out->num_groups_ = groups;
  out->k_group_.resize(k);
  for (int64_t i = 0; i < k; ++i)
    out->k_group_[i] = static_cast<int32_t>(w.format == WeightFormat::kGptq ? gptq_group(w, i) : i / w.group_size);
  // Rows of each group, in increasing k (stable sort by group).
  std::vector<int32_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return out->k_group_[a] < out->k_group_[b]; });
  std::vector<int64_t> count(groups, 0);
  for (int64_t i = 0; i < k; ++i) ++count[out->k_group_[i]];
  out->group_offset_.assign(groups + 1, 0);
  for (int64_t g = 0; g < groups; ++g)
    out->group_offset_[g + 1] = out->group_offset_[g] + (count[g] + kQ4Block - 1) / kQ4Block * kQ4Block;
  out->kp_ = out->group_offset_[groups];
  out->padded_to_k_.assign(out->kp_, -1);
  {
    int64_t idx = 0;
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t j = 0; j < count[g]; ++j) out->padded_to_k_[out->group_offset_[g] + j] = order[idx++];
  }
  out->q_.assign(static_cast<size_t>(n * out->kp_ / 2), 0);
  out->scales_.resize(n * groups);
  out->zeros_.resize(n * groups);
  CpuLinear* self = out.get();
  const bool awq = w.format == WeightFormat::kAwqGemm;
  pool.parallel_for(n, 64, [&](int64_t nb, int64_t ne) {
    std::vector<uint8_t> vals(self->kp_);
    for (int64_t col = nb; col < ne; ++col) {
      for (int64_t p = 0; p < self->kp_; ++p) {
        const int32_t kk = self->padded_to_k_[p];
        vals[p] = kk < 0 ? 0 : static_cast<uint8_t>(awq ? awq_q(w, kk, col) : gptq_q(w, kk, col));
      }
      uint8_t* dst = self->q_.data() + col * (self->kp_ / 2);
      for (int64_t b = 0; b < self->kp_ / kQ4Block; ++b)
        for (int j = 0; j < 16; ++j)
          dst[b * 16 + j] = static_cast<uint8_t>(vals[b * 32 + j] | (vals[b * 32 + j + 16] << 4));
      for (int64_t g = 0; g < groups; ++g) {
        const int z = awq ? awq_zero(w, g, col) : gptq_zero(w, g, col);
        self->zeros_[col * groups + g] = static_cast<float>(z + w.zero_offset);
        self->scales_[col * groups + g] = load_as_f32(w.scales.data, w.scales.dtype, g * n + col);
      }
    }
  });
  return out;
}

size_t CpuLinear::nbytes() const {
  return dense_.size() + q_.size() + 4 * (scales_.size() + zeros_.size() + bias_.size()) +
         4 * (padded_to_k_.size() + k_group_.size());
}

void CpuLinear::dequantize_rows(int64_t n0, int64_t count, float* out, const Kernels& kern) const {
  for (int64_t r = 0; r < count; ++r) {
    const int64_t col = n0 + r;
    float* dst = out + r * k_;
    if (!quantized_) {
      // Column col of its panel: stride kPanelWidth over k.
      const int64_t base = (col / kPanelWidth) * k_ * kPanelWidth + col % kPanelWidth;
      for (int64_t kk = 0; kk < k_; ++kk) dst[kk] = load_as_f32(dense_.data(), dtype_, base + kk * kPanelWidth);
      continue;
    }
    const uint8_t* q = q_.data() + col * (kp_ / 2);
    for (int64_t g = 0; g < num_groups_; ++g) {
      const float s = scales_[col * num_groups_ + g], z = zeros_[col * num_groups_ + g];
      // Groups start on 32-value block boundaries.
      for (int64_t p0 = group_offset_[g]; p0 < group_offset_[g + 1]; p0 += kQ4Block) {
        const uint8_t* bytes = q + p0 / 2;
        const int32_t* ks = padded_to_k_.data() + p0;
        for (int j = 0; j < 16; ++j) {
          if (ks[j] >= 0) dst[ks[j]] = (static_cast<float>(bytes[j] & 15) - z) * s;
          if (ks[j + 16] >= 0) dst[ks[j + 16]] = (static_cast<float>(bytes[j] >> 4) - z) * s;
        }
      }
    }
  }
}

void CpuLinear::gemv_rows(const float* x, int64_t m, float* y, int64_t n_begin, int64_t n_end,
                          const Kernels& kern, const float* xp, const float* xsum) const {
  // Each weight row (dense: panel) is streamed once for all m activation rows;
  // the kernels give every output the same arithmetic whatever m (batch
  // invariance). Dense: [n_begin, n_end) are panels.
  const int rows = static_cast<int>(m);
  if (!quantized_) {
    constexpr int64_t kPanelsPerCall = 16;
    float buf[kRowBlock * kPanelsPerCall * kPanelWidth];  // [rows][panels * 8]
    const size_t es = dtype_size(dtype_);
    const auto panel_fn = dtype_ == DType::kF32   ? kern.panel_f32
                          : dtype_ == DType::kF16 ? kern.panel_f16
                                                  : kern.panel_bf16;
    for (int64_t p0 = n_begin; p0 < n_end; p0 += kPanelsPerCall) {
      const int np = static_cast<int>(std::min(kPanelsPerCall, n_end - p0));
      const int64_t c0 = p0 * kPanelWidth, c1 = std::min(n_, c0 + np * kPanelWidth);
      const uint8_t* w = dense_.data() + p0 * k_ * kPanelWidth * es;
      if (c1 - c0 == np * kPanelWidth) {
        panel_fn(w, k_, np, x, k_, rows, y + c0, n_);  // straight into y
      } else {  // the zero-padded last panel: through buf
        const int64_t ldo = np * kPanelWidth;
        panel_fn(w, k_, np, x, k_, rows, buf, ldo);
        for (int r = 0; r < rows; ++r) std::copy(buf + r * ldo, buf + r * ldo + (c1 - c0), y + r * n_ + c0);
      }
      if (!bias_.empty())
        for (int r = 0; r < rows; ++r)
          for (int64_t c = c0; c < c1; ++c) y[r * n_ + c] += bias_[c];
    }
    return;
  }
  float acc[kRowBlock];
  float d[kRowBlock];
  for (int64_t col = n_begin; col < n_end; ++col) {
    const float b = bias_.empty() ? 0.0f : bias_[col];
    const uint8_t* q = q_.data() + col * (kp_ / 2);
    const float* s = scales_.data() + col * num_groups_;
    const float* z = zeros_.data() + col * num_groups_;
    std::fill(acc, acc + rows, 0.0f);
    for (int64_t g = 0; g < num_groups_; ++g) {
      const int64_t off = group_offset_[g];
      kern.dot_q4_rows(q + off / 2, xp + off, kp_, rows, (group_offset_[g + 1] - off) / kQ4Block, d);
      for (int r = 0; r < rows; ++r) acc[r] += s[g] * (d[r] - z[g] * xsum[r * num_groups_ + g]);
    }
    for (int r = 0; r < rows; ++r) y[r * n_ + col] = acc[r] + b;
  }
}

void CpuLinear::forward(const float* x, int64_t m, float* y, ThreadPool& pool, const Kernels& kern,
                        std::vector<float>& scratch, bool use_blas) const {
  if (use_blas && m >= kGemmMinRows) {
    // BLAS on blocks of dequantized rows: Y[:, n0:n0+nb] = X · Wblk^T.
    {  // dense weights are stored in panels, so f32 too goes through [N, K] blocks
      const int64_t nb = std::max<int64_t>(64, std::min<int64_t>(n_, kGemmBlockElems / k_));
      scratch.resize(static_cast<size_t>(nb * k_));
      for (int64_t n0 = 0; n0 < n_; n0 += nb) {
        const int64_t cnt = std::min(nb, n_ - n0);
        pool.parallel_for(cnt, 8, [&](int64_t b, int64_t e) {
          dequantize_rows(n0 + b, e - b, scratch.data() + b * k_, kern);
        });
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(cnt),
                    static_cast<int>(k_), 1.0f, x, static_cast<int>(k_), scratch.data(), static_cast<int>(k_), 0.0f,
                    y + n0, static_cast<int>(n_));
      }
    }
    if (!bias_.empty())
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < n_; ++c) y[r * n_ + c] += bias_[c];
    return;
  }
  const float* xp = nullptr;
  const float* xsum = nullptr;
  if (quantized_) {
    // Activations in the padded, group-sorted order, and their sum per group.
    scratch.assign(static_cast<size_t>(m * (kp_ + num_groups_)), 0.0f);
    float* p = scratch.data();
    float* sums = p + m * kp_;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t i = 0; i < kp_; ++i) {
        const int32_t kk = padded_to_k_[i];
        if (kk >= 0) {
          const float v = x[r * k_ + kk];
          p[r * kp_ + i] = v;
          sums[r * num_groups_ + k_group_[kk]] += v;
        }
      }
    xp = p;
    xsum = sums;
  }
  // Rows in blocks that stay in cache while each thread streams its columns.
  for (int64_t r0 = 0; r0 < m; r0 += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, m - r0);
    const float* xr = x + r0 * k_;
    const float* xpr = xp == nullptr ? nullptr : xp + r0 * kp_;
    const float* xsr = xsum == nullptr ? nullptr : xsum + r0 * num_groups_;
    // Work items: output columns (int4) or 8-column panels (dense).
    const int64_t items = quantized_ ? n_ : num_panels_;
    pool.parallel_for(items, quantized_ ? 16 : 2,
                      [&](int64_t b, int64_t e) { gemv_rows(xr, rows, y + r0 * n_, b, e, kern, xpr, xsr); });
  }
}

}  // namespace tandem::cpu

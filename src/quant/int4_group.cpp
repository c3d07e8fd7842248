#include "quant/int4_group.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <cblas.h>

#include "backend/dtype.h"
#include "common/check.h"

namespace tandem::quant {
namespace {

constexpr int kMaxQ = 15;

struct GroupParams {
  float scale;  // already rounded through fp16
  int zero;
};

GroupParams group_params(float lo, float hi) {
  // AutoAWQ: scales = clamp(max - min, 1e-5) / 15; zeros = clamp(-round(min / scale), 0, 15).
  float scale = std::max(hi - lo, 1e-5f) / kMaxQ;
  scale = f16_to_f32(f32_to_f16(scale));
  int zero = static_cast<int>(std::lround(-lo / scale));
  return {scale, std::clamp(zero, 0, kMaxQ)};
}

int quantize_value(float w, const GroupParams& p) {
  return std::clamp(static_cast<int>(std::nearbyint(w / p.scale)) + p.zero, 0, kMaxQ);
}

// out [T, N] = x [T, K] · w^T, w [N, K].
std::vector<float> matmul_xt(const std::vector<float>& x, int64_t t, int64_t k, const std::vector<float>& w,
                             int64_t n) {
  std::vector<float> out(static_cast<size_t>(t * n));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(t), static_cast<int>(n),
              static_cast<int>(k), 1.0f, x.data(), static_cast<int>(k), w.data(), static_cast<int>(k), 0.0f,
              out.data(), static_cast<int>(n));
  return out;
}

}  // namespace

QuantizedLinear quantize_rtn(const std::vector<float>& w, int64_t n, int64_t k, int group_size,
                             const std::vector<float>* clip) {
  CHECK_EQ(static_cast<int64_t>(w.size()), n * k);
  CHECK_GT(group_size, 0);
  CHECK_EQ(k % group_size, 0);
  const int64_t groups = k / group_size;
  QuantizedLinear ql;
  ql.num_out = n;
  ql.num_in = k;
  ql.group_size = group_size;
  ql.q.resize(static_cast<size_t>(k * n));
  ql.zeros.resize(static_cast<size_t>(groups * n));
  ql.scales.resize(static_cast<size_t>(groups * n));
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t g = 0; g < groups; ++g) {
      const float* wg = &w[row * k + g * group_size];
      float lo = *std::min_element(wg, wg + group_size);
      float hi = *std::max_element(wg, wg + group_size);
      if (clip) {
        float r = (*clip)[row * groups + g];
        lo *= r;
        hi *= r;
      }
      GroupParams p = group_params(lo, hi);
      ql.zeros[g * n + row] = static_cast<uint8_t>(p.zero);
      ql.scales[g * n + row] = f32_to_f16(p.scale);
      for (int i = 0; i < group_size; ++i) {
        float v = std::clamp(wg[i], lo, hi);
        ql.q[(g * group_size + i) * n + row] = static_cast<uint8_t>(quantize_value(v, p));
      }
    }
  }
  return ql;
}

std::vector<float> dequantize(const QuantizedLinear& ql) {
  const int64_t n = ql.num_out, k = ql.num_in;
  std::vector<float> w(static_cast<size_t>(n * k));
  for (int64_t kk = 0; kk < k; ++kk) {
    const int64_t g = kk / ql.group_size;
    for (int64_t row = 0; row < n; ++row) {
      float s = f16_to_f32(ql.scales[g * n + row]);
      w[row * k + kk] = (static_cast<int>(ql.q[kk * n + row]) - ql.zeros[g * n + row]) * s;
    }
  }
  return w;
}

std::vector<float> fake_quantize(const std::vector<float>& w, int64_t n, int64_t k, int group_size,
                                 const std::vector<float>* clip) {
  return dequantize(quantize_rtn(w, n, k, group_size, clip));
}

double output_mse(const std::vector<float>& x, int64_t t, int64_t k, const std::vector<float>& a,
                  const std::vector<float>& b, int64_t n) {
  std::vector<float> diff(a.size());
  for (size_t i = 0; i < a.size(); ++i) diff[i] = a[i] - b[i];
  std::vector<float> out = matmul_xt(x, t, k, diff, n);
  double sum = 0;
  for (float v : out) sum += static_cast<double>(v) * v;
  return sum / static_cast<double>(out.size());
}

ScaleSearchResult search_scales(const std::vector<float>& x, int64_t t, int64_t k,
                                const std::vector<const std::vector<float>*>& weights,
                                const std::vector<int64_t>& num_out, int group_size, int grid) {
  CHECK_EQ(weights.size(), num_out.size());
  std::vector<double> mean_abs(static_cast<size_t>(k), 0.0);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < k; ++j) mean_abs[j] += std::fabs(x[i * k + j]);
  for (auto& m : mean_abs) m = std::max(m / static_cast<double>(t), 1e-8);

  // Error of quantizing W·diag(s) and feeding X·diag(1/s), summed over layers:
  // equal to X·(fakequant(W·diag(s))·diag(1/s))^T against X·W^T.
  auto error_at = [&](const std::vector<float>& s) {
    double total = 0;
    for (size_t l = 0; l < weights.size(); ++l) {
      const std::vector<float>& w = *weights[l];
      const int64_t n = num_out[l];
      std::vector<float> scaled(w.size());
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j) scaled[r * k + j] = w[r * k + j] * s[j];
      std::vector<float> hat = fake_quantize(scaled, n, k, group_size);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j) hat[r * k + j] /= s[j];
      total += output_mse(x, t, k, w, hat, n);
    }
    return total;
  };

  ScaleSearchResult best;
  best.error = std::numeric_limits<double>::infinity();
  for (int step = 0; step < grid; ++step) {
    const double alpha = static_cast<double>(step) / grid;
    std::vector<float> s(static_cast<size_t>(k));
    double smax = 0, smin = std::numeric_limits<double>::infinity();
    std::vector<double> raw(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) {
      raw[j] = std::max(std::pow(mean_abs[j], alpha), 1e-4);
      smax = std::max(smax, raw[j]);
      smin = std::min(smin, raw[j]);
    }
    const double norm = std::sqrt(smax * smin);
    for (int64_t j = 0; j < k; ++j) s[j] = static_cast<float>(raw[j] / norm);
    double err = error_at(s);
    if (step == 0) best.error_unscaled = err;  // alpha = 0: every s is 1
    if (err < best.error) {
      best.error = err;
      best.alpha = static_cast<float>(alpha);
      best.scales = std::move(s);
    }
  }
  return best;
}

std::vector<float> search_clip(const std::vector<float>& x, int64_t t, int64_t k, const std::vector<float>& w,
                               int64_t n, int group_size, int grid, float max_shrink) {
  const int64_t groups = k / group_size;
  std::vector<float> best_ratio(static_cast<size_t>(n * groups), 1.0f);
  std::vector<double> best_err(static_cast<size_t>(n * groups), std::numeric_limits<double>::infinity());
  const int steps = std::max(1, static_cast<int>(grid * max_shrink));
  for (int step = 0; step < steps; ++step) {
    const float ratio = 1.0f - static_cast<float>(step) / grid;
    std::vector<float> clip(static_cast<size_t>(n * groups), ratio);
    std::vector<float> hat = fake_quantize(w, n, k, group_size, &clip);
    for (int64_t g = 0; g < groups; ++g) {
      // Contribution of group g: X[:, g] · (W - W_hat)[:, g]^T, per output row.
      std::vector<float> xg(static_cast<size_t>(t * group_size)), dg(static_cast<size_t>(n * group_size));
      for (int64_t i = 0; i < t; ++i)
        for (int j = 0; j < group_size; ++j) xg[i * group_size + j] = x[i * k + g * group_size + j];
      for (int64_t r = 0; r < n; ++r)
        for (int j = 0; j < group_size; ++j) {
          int64_t idx = r * k + g * group_size + j;
          dg[r * group_size + j] = w[idx] - hat[idx];
        }
      std::vector<float> out = matmul_xt(xg, t, group_size, dg, n);
      for (int64_t r = 0; r < n; ++r) {
        double e = 0;
        for (int64_t i = 0; i < t; ++i) e += static_cast<double>(out[i * n + r]) * out[i * n + r];
        if (e < best_err[r * groups + g]) {
          best_err[r * groups + g] = e;
          best_ratio[r * groups + g] = ratio;
        }
      }
    }
  }
  return best_ratio;
}

}  // namespace tandem::quant

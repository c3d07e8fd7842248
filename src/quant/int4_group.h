// Int4 group quantization in AutoAWQ's asymmetric scheme, and the AWQ search
// (activation-aware per-input-channel scales, then per-group clipping).
//
// Shapes: a weight W is fp32 [N out, K in] (HF layout); activations X are
// fp32 [T tokens, K]. Groups run along K: group g covers k in [g*G, (g+1)*G).
#pragma once

#include <cstdint>
#include <vector>

namespace tandem::quant {

// One quantized layer before packing (pack_awq turns q and zeros into words).
struct QuantizedLinear {
  int64_t num_out = 0;  // N
  int64_t num_in = 0;   // K
  int group_size = 0;   // G
  std::vector<uint8_t> q;         // [K, N], values 0..15 (AWQ's K-major layout)
  std::vector<uint8_t> zeros;     // [K/G, N], values 0..15
  std::vector<uint16_t> scales;   // [K/G, N] fp16 bits
};

// Round-to-nearest per group: scale = (max - min) / 15 (rounded to fp16, as
// stored), zero = clamp(round(-min / scale), 0, 15), q = clamp(round(w / scale) + zero).
// clip (optional, [N, K/G]) shrinks each group's [min, max] by that ratio first.
QuantizedLinear quantize_rtn(const std::vector<float>& w, int64_t n, int64_t k, int group_size,
                             const std::vector<float>* clip = nullptr);
// W_hat [N, K] = (q - zero) * scale.
std::vector<float> dequantize(const QuantizedLinear& ql);
// Quantize then dequantize (the "fake quant" the searches evaluate).
std::vector<float> fake_quantize(const std::vector<float>& w, int64_t n, int64_t k, int group_size,
                                 const std::vector<float>* clip = nullptr);

// Mean squared difference of X·A^T and X·B^T over all T×N outputs.
double output_mse(const std::vector<float>& x, int64_t t, int64_t k, const std::vector<float>& a,
                  const std::vector<float>& b, int64_t n);

struct ScaleSearchResult {
  std::vector<float> scales;  // [K]; multiply W's columns, divide the input by them
  float alpha = 0;            // exponent chosen: s = mean|x|^alpha (normalized)
  double error = 0;           // summed output MSE at the chosen scales
  double error_unscaled = 0;  // the same with s = 1 (plain RTN)
};

// AWQ: for alpha on a grid in [0, 1), s = mean_t|x|^alpha normalized by
// sqrt(max(s) * min(s)); picks the s minimizing the summed output error of the
// layers sharing the input X when each W·diag(s) is quantized and X·diag(1/s) fed.
ScaleSearchResult search_scales(const std::vector<float>& x, int64_t t, int64_t k,
                                const std::vector<const std::vector<float>*>& weights,
                                const std::vector<int64_t>& num_out, int group_size, int grid = 20);

// Per (output row, group) clip ratio in [1 - max_shrink, 1] minimizing that
// group's contribution to the output error on X. Returns [N, K/G].
std::vector<float> search_clip(const std::vector<float>& x, int64_t t, int64_t k, const std::vector<float>& w,
                               int64_t n, int group_size, int grid = 20, float max_shrink = 0.5f);

}  // namespace tandem::quant

#include "model/quant.h"

#include <string>

#include "common/check.h"

namespace tandem {
namespace {

Status bad(const LinearWeight& w, const std::string& what) {
  return invalid_argument("tensor '" + w.name + "': " + what);
}

Status expect(const LinearWeight& w, const char* part, const TensorView& t, DType dtype,
              std::initializer_list<int64_t> shape) {
  TensorView want(nullptr, dtype, shape);
  if (t.empty()) return bad(w, std::string(part) + " is missing");
  bool same = t.ndim == want.ndim;
  for (int i = 0; same && i < t.ndim; ++i) same = t.shape[i] == want.shape[i];
  if (t.dtype != dtype || !same)
    return bad(w, std::string(part) + " is " + dtype_name(t.dtype) + " " + t.shape_string() + ", expected " +
                      dtype_name(dtype) + " " + want.shape_string() + " from config.json");
  return ok_status();
}

Status expect_float(const LinearWeight& w, const char* part, const TensorView& t, std::initializer_list<int64_t> shape) {
  if (t.empty()) return bad(w, std::string(part) + " is missing");
  DType d = is_float_dtype(t.dtype) ? t.dtype : DType::kF16;
  if (!is_float_dtype(t.dtype))
    return bad(w, std::string(part) + " has dtype " + dtype_name(t.dtype) + ", expected a float type");
  return expect(w, part, t, d, shape);
}

}  // namespace

int awq_q(const LinearWeight& w, int64_t k, int64_t n) {
  return nibble(read_i32(w.qweight, k * (w.num_out / 8) + n / 8), kAwqRev[n % 8]);
}
int awq_zero(const LinearWeight& w, int64_t g, int64_t n) {
  return nibble(read_i32(w.qzeros, g * (w.num_out / 8) + n / 8), kAwqRev[n % 8]);
}
int gptq_q(const LinearWeight& w, int64_t k, int64_t n) {
  return nibble(read_i32(w.qweight, (k / 8) * w.num_out + n), static_cast<int>(k % 8));
}
int gptq_zero(const LinearWeight& w, int64_t g, int64_t n) {
  return nibble(read_i32(w.qzeros, g * (w.num_out / 8) + n / 8), static_cast<int>(n % 8));
}
int64_t gptq_group(const LinearWeight& w, int64_t k) {
  return w.g_idx.empty() ? k / w.group_size : read_i32(w.g_idx, k);
}
int64_t num_groups(const LinearWeight& w) { return (w.num_in + w.group_size - 1) / w.group_size; }

Status validate_linear(const LinearWeight& w) {
  const int64_t n = w.num_out, k = w.num_in;
  if (n <= 0 || k <= 0) return bad(w, "empty shape");
  if (!w.bias.empty()) RETURN_IF_ERROR(expect_float(w, "bias", w.bias, {n}));
  if (w.format == WeightFormat::kDense) return expect_float(w, "weight", w.weight, {n, k});
  const int64_t g = w.group_size;
  if (g <= 0) return bad(w, "group size must be positive");
  if (n % 8 != 0) return bad(w, "out features " + std::to_string(n) + " must be a multiple of 8 for int4");
  if (w.format == WeightFormat::kAwqGemm) {
    if (k % g != 0)
      return bad(w, "group size " + std::to_string(g) + " does not divide in features " + std::to_string(k));
    RETURN_IF_ERROR(expect(w, "qweight", w.qweight, DType::kI32, {k, n / 8}));
    RETURN_IF_ERROR(expect(w, "qzeros", w.qzeros, DType::kI32, {k / g, n / 8}));
    return expect_float(w, "scales", w.scales, {k / g, n});
  }
  // GPTQ
  if (k % 8 != 0) return bad(w, "in features " + std::to_string(k) + " must be a multiple of 8 for int4");
  if (w.g_idx.empty() && k % g != 0)
    return bad(w, "group size " + std::to_string(g) + " does not divide in features " + std::to_string(k));
  const int64_t groups = (k + g - 1) / g;
  RETURN_IF_ERROR(expect(w, "qweight", w.qweight, DType::kI32, {k / 8, n}));
  RETURN_IF_ERROR(expect(w, "qzeros", w.qzeros, DType::kI32, {groups, n / 8}));
  RETURN_IF_ERROR(expect_float(w, "scales", w.scales, {groups, n}));
  if (!w.g_idx.empty()) {
    RETURN_IF_ERROR(expect(w, "g_idx", w.g_idx, DType::kI32, {k}));
    for (int64_t i = 0; i < k; ++i) {
      const int32_t v = read_i32(w.g_idx, i);
      if (v < 0 || v >= groups)
        return bad(w, "g_idx[" + std::to_string(i) + "] = " + std::to_string(v) + " is outside [0, " +
                          std::to_string(groups) + ")");
    }
  }
  if (w.zero_offset != 0 && w.zero_offset != 1) return bad(w, "zero offset must be 0 or 1");
  return ok_status();
}

std::vector<float> dequantize_reference(const LinearWeight& w) {
  const int64_t n_out = w.num_out, k_in = w.num_in;
  std::vector<float> out(static_cast<size_t>(n_out * k_in));
  for (int64_t n = 0; n < n_out; ++n) {
    for (int64_t k = 0; k < k_in; ++k) {
      float v;
      if (w.format == WeightFormat::kDense) {
        v = load_as_f32(w.weight.data, w.weight.dtype, n * k_in + k);
      } else if (w.format == WeightFormat::kAwqGemm) {
        const int64_t g = k / w.group_size;
        v = static_cast<float>(awq_q(w, k, n) - awq_zero(w, g, n) - w.zero_offset) *
            load_as_f32(w.scales.data, w.scales.dtype, g * n_out + n);
      } else {
        const int64_t g = gptq_group(w, k);
        v = static_cast<float>(gptq_q(w, k, n) - (gptq_zero(w, g, n) + w.zero_offset)) *
            load_as_f32(w.scales.data, w.scales.dtype, g * n_out + n);
      }
      out[n * k_in + k] = v;
    }
  }
  return out;
}

std::vector<int32_t> pack_awq(const std::vector<uint8_t>& values, int64_t rows, int64_t cols) {
  CHECK(cols % 8 == 0 && static_cast<int64_t>(values.size()) == rows * cols);
  std::vector<int32_t> out(static_cast<size_t>(rows * cols / 8), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t& word = reinterpret_cast<uint32_t&>(out[r * (cols / 8) + c / 8]);
      word |= static_cast<uint32_t>(values[r * cols + c] & 0xf) << (4 * kAwqRev[c % 8]);
    }
  return out;
}

std::vector<int32_t> pack_gptq_qweight(const std::vector<uint8_t>& q, int64_t k, int64_t n) {
  CHECK(k % 8 == 0 && static_cast<int64_t>(q.size()) == k * n);
  std::vector<int32_t> out(static_cast<size_t>(k / 8 * n), 0);
  for (int64_t r = 0; r < k; ++r)
    for (int64_t c = 0; c < n; ++c) {
      uint32_t& word = reinterpret_cast<uint32_t&>(out[(r / 8) * n + c]);
      word |= static_cast<uint32_t>(q[r * n + c] & 0xf) << (4 * (r % 8));
    }
  return out;
}

std::vector<int32_t> pack_gptq_qzeros(const std::vector<uint8_t>& zeros, int64_t groups, int64_t n) {
  CHECK(n % 8 == 0 && static_cast<int64_t>(zeros.size()) == groups * n);
  std::vector<int32_t> out(static_cast<size_t>(groups * n / 8), 0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t c = 0; c < n; ++c) {
      uint32_t& word = reinterpret_cast<uint32_t&>(out[g * (n / 8) + c / 8]);
      word |= static_cast<uint32_t>(zeros[g * n + c] & 0xf) << (4 * (c % 8));
    }
  return out;
}

}  // namespace tandem

#include "model/linear_concat.h"

#include <cstring>

#include "common/check.h"

namespace tandem {
namespace {

bool same_view_bytes(const TensorView& a, const TensorView& b) {
  if (&a == &b) return true;
  if (a.dtype != b.dtype || a.ndim != b.ndim) return false;
  for (int i = 0; i < a.ndim; ++i)
    if (a.shape[i] != b.shape[i]) return false;
  // Shapes only (--load-format dummy): each act-order layer draws its own permutation.
  if (a.data == nullptr || b.data == nullptr) return false;
  return std::memcmp(a.data, b.data, a.nbytes()) == 0;
}

// Concatenates 2-D tensors along dim 1 (columns) or dim 0 (rows; also 1-D).
TensorView concat(const std::vector<TensorView>& ts, int axis, std::vector<uint8_t>* store) {
  const TensorView& first = ts[0];
  const size_t es = dtype_size(first.dtype);
  int64_t total = 0;
  for (const TensorView& t : ts) total += t.shape[axis];
  if (first.data == nullptr) {  // shapes only (--load-format dummy): nothing to copy
    TensorView v = first;
    v.shape[axis] = total;
    return v;
  }
  size_t bytes = 0;
  for (const TensorView& t : ts) bytes += t.nbytes();
  store->resize(bytes);
  uint8_t* out = store->data();
  if (axis == 0) {
    for (const TensorView& t : ts) {
      std::memcpy(out, t.data, t.nbytes());
      out += t.nbytes();
    }
  } else {
    const int64_t rows = first.shape[0];
    for (int64_t r = 0; r < rows; ++r) {
      for (const TensorView& t : ts) {
        const size_t row_bytes = static_cast<size_t>(t.shape[1]) * es;
        std::memcpy(out, static_cast<const uint8_t*>(t.data) + r * row_bytes, row_bytes);
        out += row_bytes;
      }
    }
  }
  TensorView v = first;
  v.data = store->data();
  v.shape[axis] = total;
  return v;
}

}  // namespace

bool can_concat_linears(const std::vector<const LinearWeight*>& parts, std::string* why) {
  CHECK(!parts.empty());
  const LinearWeight& a = *parts[0];
  auto fail = [&](const LinearWeight& b, const std::string& what) {
    *why = b.name + " differs from " + a.name + " in " + what;
    return false;
  };
  for (const LinearWeight* p : parts) {
    const LinearWeight& b = *p;
    if (b.format != a.format) return fail(b, "format");
    if (b.num_in != a.num_in) return fail(b, "K");
    if (b.group_size != a.group_size || b.zero_offset != a.zero_offset) return fail(b, "group size / zero offset");
    if ((b.bias.ndim > 0) != (a.bias.ndim > 0) || (b.bias.ndim > 0 && b.bias.dtype != a.bias.dtype))
      return fail(b, "bias");
    if (a.format == WeightFormat::kDense) {
      if (b.weight.dtype != a.weight.dtype || b.weight.ndim != 2) return fail(b, "weight dtype");
      continue;
    }
    if (b.qweight.dtype != a.qweight.dtype || b.qzeros.dtype != a.qzeros.dtype || b.scales.dtype != a.scales.dtype)
      return fail(b, "tensor dtypes");
    if (b.qweight.ndim != 2 || b.qzeros.ndim != 2 || b.scales.ndim != 2 ||
        b.qweight.shape[0] != a.qweight.shape[0] || b.qzeros.shape[0] != a.qzeros.shape[0] ||
        b.scales.shape[0] != a.scales.shape[0])
      return fail(b, "packed row counts");
    if ((b.g_idx.ndim > 0) != (a.g_idx.ndim > 0) || (a.g_idx.ndim > 0 && !same_view_bytes(a.g_idx, b.g_idx)))
      return fail(b, "g_idx (act-order permutation)");
  }
  return true;
}

std::unique_ptr<ConcatLinearHost> concat_linears(const std::vector<const LinearWeight*>& parts,
                                                 const std::string& name) {
  std::string why;
  CHECK_MSG(can_concat_linears(parts, &why), why);
  auto out = std::make_unique<ConcatLinearHost>();
  const LinearWeight& a = *parts[0];
  LinearWeight& w = out->weight;
  w.format = a.format;
  w.num_in = a.num_in;
  w.group_size = a.group_size;
  w.zero_offset = a.zero_offset;
  w.g_idx = a.g_idx;  // identical in every part (checked); a view into the checkpoint
  w.name = name;
  for (const LinearWeight* p : parts) w.num_out += p->num_out;
  auto gather = [&](TensorView LinearWeight::*field, int axis) {
    std::vector<TensorView> ts;
    for (const LinearWeight* p : parts) ts.push_back(p->*field);
    out->storage.emplace_back();
    return concat(ts, axis, &out->storage.back());
  };
  out->storage.reserve(5);
  if (a.bias.ndim > 0) w.bias = gather(&LinearWeight::bias, 0);
  if (a.format == WeightFormat::kDense) {
    w.weight = gather(&LinearWeight::weight, 0);  // [N, K]: N is the row
  } else {
    // AWQ qweight [K, N/8], GPTQ qweight [K/8, N], qzeros [K/G, N/8], scales [K/G, N]: N is the column.
    w.qweight = gather(&LinearWeight::qweight, 1);
    w.qzeros = gather(&LinearWeight::qzeros, 1);
    w.scales = gather(&LinearWeight::scales, 1);
  }
  return out;
}

}  // namespace tandem

#include "backend/backend.h"

#include <algorithm>
#include <sstream>

#include "backend/random_weights.h"
#include "common/check.h"

namespace tandem {

TensorView::TensorView(void* d, DType t, std::initializer_list<int64_t> dims) : data(d), dtype(t) {
  CHECK_LE(static_cast<int>(dims.size()), kMaxTensorDims);
  for (int64_t x : dims) shape[ndim++] = x;
}

int64_t TensorView::numel() const {
  if (ndim == 0) return 0;
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

int64_t TensorView::row_numel() const {
  int64_t n = 1;
  for (int i = 1; i < ndim; ++i) n *= shape[i];
  return n;
}

TensorView TensorView::rows(int64_t begin, int64_t end) const {
  CHECK(ndim >= 1 && begin >= 0 && begin <= end && end <= shape[0]);
  TensorView v = *this;
  v.data = static_cast<char*>(data) + begin * row_numel() * static_cast<int64_t>(dtype_size(dtype));
  v.shape[0] = end - begin;
  return v;
}

TensorView TensorView::reshape(std::initializer_list<int64_t> dims) const {
  TensorView v(data, dtype, dims);
  CHECK_EQ(v.numel(), numel());
  return v;
}

std::string TensorView::shape_string() const {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < ndim; ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

void Backend::linear_fused(const TensorView&, const PreparedLinear&, const TensorView&, const LinearFusion&) {
  // A backend that says linear_fuses() overrides this; reaching it is a caller's bug.
  CHECK_MSG(false, name() << " backend has no fused linear (call linear_fused only where linear_fuses() is true)");
}

const char* weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kDense: return "dense";
    case WeightFormat::kAwqGemm: return "awq-gemm";
    case WeightFormat::kGptq: return "gptq";
  }
  return "?";
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    backend_ = o.backend_;
    data_ = o.data_;
    bytes_ = o.bytes_;
    o.backend_ = nullptr;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (backend_ != nullptr && data_ != nullptr) backend_->free_memory(data_, bytes_);
  backend_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

StatusOr<DeviceTensor> Backend::allocate_tensor(DType dtype, std::initializer_list<int64_t> shape) {
  TensorView v(nullptr, dtype, shape);
  ASSIGN_OR_RETURN(DeviceBuffer buf, allocate(std::max<size_t>(v.nbytes(), 1)));
  v.data = buf.data();
  return DeviceTensor{std::move(buf), v};
}

void Backend::download_async(const void* src, size_t bytes) {
  download_.resize(bytes);
  copy_device_to_host(download_.data(), src, bytes);
}

const void* Backend::download_wait() { return download_.data(); }

StatusOr<DeviceTensor> Backend::upload(const TensorView& host, DType dtype) {
  TensorView shape = host;
  shape.dtype = dtype;
  ASSIGN_OR_RETURN(DeviceBuffer buf, allocate(std::max<size_t>(shape.nbytes(), 1)));
  shape.data = buf.data();
  if (host.dtype == dtype) {
    copy_host_to_device(buf.data(), host.data, host.nbytes());
  } else {
    if (!is_float_dtype(host.dtype) || !is_float_dtype(dtype))
      return invalid_argument(std::string("cannot convert ") + dtype_name(host.dtype) + " to " + dtype_name(dtype));
    // Convert on the host through fp32, then copy.
    const int64_t n = host.numel();
    std::vector<uint8_t> tmp(shape.nbytes());
    for (int64_t i = 0; i < n; ++i) store_from_f32(tmp.data(), dtype, i, load_as_f32(host.data, host.dtype, i));
    copy_host_to_device(buf.data(), tmp.data(), tmp.size());
  }
  return DeviceTensor{std::move(buf), shape};
}

void Backend::fill_random_uniform(const TensorView& t, float lo, float hi, uint64_t seed) {
  std::vector<uint8_t> host(t.nbytes());
  random_uniform_host(host.data(), t.dtype, t.numel(), lo, hi, seed);
  copy_host_to_device(t.data, host.data(), host.size());
}

StatusOr<std::unique_ptr<PreparedLinear>> Backend::prepare_random_linear(const LinearWeight& w, uint64_t seed) {
  const RandomLinearHost host = random_linear_host(w, seed);
  return prepare_linear(host.weight);
}

}  // namespace tandem
